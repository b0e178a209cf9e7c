#!/usr/bin/env bash
# certbot_test.sh — the certbot against real peers: Debian's pebble (an ACME
# server) validating dns-01 through pebble-challtestsrv (a DNS server with a
# management API), and cf_standin.py in place of the Cloudflare API, which
# forwards TXT records into challtestsrv. The certbot's own self-check asks
# challtestsrv too (DSTACK_CERTBOT_DNS_SERVER), and it trusts pebble's TLS
# through DSTACK_CERTBOT_CA_FILE.
#
# Usage: certbot_test.sh CERTBOT_BINARY   (TAP on stdout)
set -uo pipefail
CERTBOT=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
n=0
PIDS=()

ok() { n=$((n + 1)); if eval "$2" >&2; then echo "ok $n - $1"; else echo "not ok $n - $1"; fi; }

if ! command -v pebble >/dev/null || ! command -v pebble-challtestsrv >/dev/null; then
	echo "1..0 # SKIP pebble not installed (scripts/deps/acme.txt)"
	exit 0
fi

T=$(mktemp -d /tmp/certbot-test.XXXXXX)
finish() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	[ -n "${KEEP_TEST_DIR:-}" ] && echo "# kept $T" || rm -rf "$T"
}
trap finish EXIT

# Six distinct free ports below the ephemeral range, from a pid-derived offset.
read -r P_ACME P_MGMT P_DNS P_CTS P_CF P_DEAD < <(python3 - "$(($$ * 13 + RANDOM))" <<'PY'
import socket, sys
salt = int(sys.argv[1]); got = []
for i in range(20000):
    p = 20000 + (salt + i * 7) % 12000
    s = socket.socket(); u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", p)); u.bind(("127.0.0.1", p)); got.append(p)
    except OSError:
        pass
    finally:
        s.close(); u.close()
    if len(got) == 6:
        break
print(*got)
PY
)

wait_for() { # seconds cmd...
	local s=$1
	shift
	for _ in $(seq $((s * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
	return 1
}

# --- peers -------------------------------------------------------------------
cd "$T" || exit 1
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 \
	-subj /CN=certbot-test-ca 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key -out srv.csr -subj /CN=localhost \
	2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >ext.cnf
openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile ext.cnf \
	2>/dev/null
cat >pebble.json <<EOF
{"pebble":{"listenAddress":"127.0.0.1:$P_ACME","managementListenAddress":"127.0.0.1:$P_MGMT",
 "certificate":"$T/srv.pem","privateKey":"$T/srv.key","httpPort":$P_DEAD,"tlsPort":$P_DEAD,
 "ocspResponderURL":"","externalAccountBindingRequired":false}}
EOF
pebble-challtestsrv -dns01 "127.0.0.1:$P_DNS" -management "127.0.0.1:$P_CTS" -http01 "" -https01 "" \
	-tlsalpn01 "" >cts.log 2>&1 &
PIDS+=($!)
PEBBLE_VA_NOSLEEP=1 pebble -config pebble.json -dnsserver "127.0.0.1:$P_DNS" >pebble.log 2>&1 &
PEBBLE_PID=$!
PIDS+=($PEBBLE_PID)
TOKEN="cf-test-token-$$-$RANDOM"
CF_STANDIN_TOKEN=$TOKEN python3 "$HERE/cf_standin.py" --port "$P_CF" --zone example --zone test.example \
	--zone nodns.example --filler 120 --challtestsrv "http://127.0.0.1:$P_CTS" --no-forward nodns.example \
	--log "$T/cf.log" >cf.out 2>&1 &
PIDS+=($!)
wait_for 20 curl -sf --cacert ca.pem "https://127.0.0.1:$P_ACME/dir" || { echo "Bail out! pebble did not start"; exit 1; }
wait_for 10 curl -s "http://127.0.0.1:$P_CF/" || { echo "Bail out! stand-in did not start"; exit 1; }
wait_for 10 curl -s "http://127.0.0.1:$P_CTS/" || { echo "Bail out! challtestsrv did not start"; exit 1; }

ACME_URL="https://127.0.0.1:$P_ACME/dir"
CF_URL="http://127.0.0.1:$P_CF/client/v4"
export DSTACK_CERTBOT_DNS_SERVER="127.0.0.1:$P_DNS" DSTACK_CERTBOT_CA_FILE="$T/ca.pem"
W=$T/work

# config NAME [key = value lines...]: certbot.toml with the test defaults, overridden by the lines given.
config() {
	local f=$T/$1.toml
	shift
	python3 - "$f" "$W" "$ACME_URL" "$TOKEN" "$CF_URL" "$T/hook.log" "$@" <<'PY'
import sys
f, w, acme, token, cf, hook, *over = sys.argv[1:]
keys = {"workdir": f'"{w}"', "acme_url": f'"{acme}"', "cf_api_token": f'"{token}"', "cf_api_url": f'"{cf}"',
        "domains": '["test.example"]', "max_dns_wait": "30", "renewed_hook": f'"echo renewed >> {hook}"'}
for line in over:
    k, v = line.split("=", 1)
    keys[k.strip()] = v.strip()
open(f, "w").write("".join(f"{k} = {v}\n" for k, v in keys.items()))
PY
	chmod 600 "$f"
}
# cb NAME ARGS...: run the certbot; output in $T/NAME.out and .err, status in $rc.
cb() {
	local name=$1
	shift
	"$CERTBOT" "$@" >"$T/$name.out" 2>"$T/$name.err"
	rc=$?
}
# records NAME: the stand-in's records at NAME as "TYPE content" lines.
records() {
	python3 - "$CF_URL" "$TOKEN" "$1" <<'PY'
import json, sys, urllib.request
api, token, name = sys.argv[1:]
def get(path):
    req = urllib.request.Request(api + path, headers={"Authorization": "Bearer " + token})
    return json.load(urllib.request.urlopen(req))
zones = []
for page in (1, 2, 3, 4):
    zones += get(f"/zones?page={page}&per_page=50")["result"]
zone = max((z for z in zones if name == z["name"] or name.endswith("." + z["name"])), key=lambda z: len(z["name"]))
for r in get(f"/zones/{zone['id']}/dns_records?name={name}&per_page=100")["result"]:
    print(r["type"], r["content"])
PY
}
# add_record JSON: create a record through the stand-in's API; prints its id.
add_record() {
	python3 - "$CF_URL" "$TOKEN" "$1" <<'PY'
import json, sys, urllib.request
api, token, body = sys.argv[1:]
rec = json.loads(body)
req = urllib.request.Request(api + "/zones?page=3&per_page=50", headers={"Authorization": "Bearer " + token})
zone = [z for z in json.load(urllib.request.urlopen(req))["result"] if z["name"] == "test.example"][0]
req = urllib.request.Request(api + f"/zones/{zone['id']}/dns_records", data=json.dumps(rec).encode(), method="POST",
                             headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
print(json.load(urllib.request.urlopen(req))["result"]["id"])
PY
}
sha() { sha256sum "$1" 2>/dev/null | cut -c1-64; }
mode() { stat -c %a "$1" 2>/dev/null; }
hooks() { [ -f "$T/hook.log" ] && wc -l <"$T/hook.log" || echo 0; }
backups() { find "$W/backup" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | wc -l; }

# --- command line and template ------------------------------------------------
cb noargs
ok "no command: usage error (exit 2)" '[ $rc = 2 ] && grep -q "Usage: certbot" $T/noargs.err'
cb tmpl cfg
ok "cfg prints every certbot.toml key with the reference defaults" 'for k in workdir acme_url cf_api_token \
	cf_api_url dns_txt_ttl auto_set_caa domains renew_interval renew_days_before renew_timeout max_dns_wait \
	renewed_hook; do grep -q "^#* *$k = " $T/tmpl.out || exit 1; done
	grep -qx "acme_url = \"https://acme-staging-v02.api.letsencrypt.org/directory\"" $T/tmpl.out &&
	grep -qx "dns_txt_ttl = 60" $T/tmpl.out && grep -qx "auto_set_caa = true" $T/tmpl.out &&
	grep -qx "renew_interval = 3600" $T/tmpl.out && grep -qx "renew_days_before = 10" $T/tmpl.out &&
	grep -qx "renew_timeout = 120" $T/tmpl.out && grep -qx "max_dns_wait = 300" $T/tmpl.out'
cb tmplw cfg -w "$T/written.toml"
ok "cfg -w writes the same template, mode 600" '[ $rc = 0 ] && cmp -s $T/written.toml $T/tmpl.out &&
	[ "$(mode $T/written.toml)" = 600 ]'

# --- init -----------------------------------------------------------------------
config badtoken 'cf_api_token = "wrong-token"'
cb init_bad init -c "$T/badtoken.toml"
ok "init with a bad Cloudflare token fails with Cloudflare's error" '[ $rc = 1 ] &&
	grep -q "^certbot: init: Cloudflare GET /zones page 1: HTTP 403: error 9109: Invalid access token" $T/init_bad.err'
ok "and creates no account, nor echoes the token" '[ ! -e $W/credentials.json ] && ! grep -q wrong-token $T/init_bad.*'
config main
cb init init -c "$T/main.toml"
ACCOUNT=$(cat "$T/init.out")
ok "init creates an account at pebble and prints its URL" '[ $rc = 0 ] &&
	[[ "$ACCOUNT" == "https://127.0.0.1:$P_ACME/my-account/"* ]]'
ok "credentials.json is 0600 with account_id, acme_url and credentials{id,key_pkcs8,directory}" '
	[ "$(mode $W/credentials.json)" = 600 ] && python3 - "$W/credentials.json" "$ACCOUNT" "$ACME_URL" <<PY
import json, sys
c = json.load(open(sys.argv[1])); acct, url = sys.argv[2:]
assert c["account_id"] == acct and c["acme_url"] == url, c
assert c["credentials"]["id"] == acct and c["credentials"]["directory"] == url
assert len(c["credentials"]["key_pkcs8"]) > 100
PY'
POLICY="letsencrypt.org;validationmethods=dns-01;accounturi=$ACCOUNT"
records test.example >"$T/caa1.txt"
ok "auto_set_caa at account creation: issue and issuewild pinned to the account, guards gone" '
	grep -qxF "CAA 0 issue \"$POLICY\"" $T/caa1.txt && grep -qxF "CAA 0 issuewild \"$POLICY\"" $T/caa1.txt &&
	[ "$(grep -c ^CAA $T/caa1.txt)" = 2 ]'
CRED_SHA=$(sha "$W/credentials.json")
cb init2 init -c "$T/main.toml"
ok "init again keeps the account" '[ $rc = 0 ] && [ "$(cat $T/init2.out)" = "$ACCOUNT" ] &&
	[ "$(sha $W/credentials.json)" = "$CRED_SHA" ]'

# --- set-caa ----------------------------------------------------------------------
add_record '{"type":"CAA","name":"test.example","data":{"flags":0,"tag":"issue","value":"otherca.example"}}' >/dev/null
add_record '{"type":"CAA","name":"test.example","data":{"flags":0,"tag":"iodef","value":"mailto:ops@test.example"}}' \
	>/dev/null
cb setcaa set-caa -c "$T/main.toml"
records test.example >"$T/caa2.txt"
ok "set-caa replaces other issue records with the account's, keeps iodef" '[ $rc = 0 ] &&
	! grep -q otherca $T/caa2.txt && grep -qxF "CAA 0 iodef \"mailto:ops@test.example\"" $T/caa2.txt &&
	[ "$(grep -cxF "CAA 0 issue \"$POLICY\"" $T/caa2.txt)" = 1 ] &&
	[ "$(grep -cxF "CAA 0 issuewild \"$POLICY\"" $T/caa2.txt)" = 1 ] && ! grep -q "\";\"" $T/caa2.txt'

# --- first certificate -----------------------------------------------------------------
STALE=$(add_record '{"type":"TXT","name":"_acme-challenge.test.example","content":"stale-value","ttl":60}')
cb renew1 renew --once -c "$T/main.toml"
ok "renew --once obtains a certificate" '[ $rc = 0 ] && [ -s $W/live/cert.pem ] && [ -s $W/live/key.pem ]'
ok "live/key.pem is 0600, cert.pem 0644" '[ "$(mode $W/live/key.pem)" = 600 ] && [ "$(mode $W/live/cert.pem)" = 644 ]'
curl -s --cacert "$T/ca.pem" "https://127.0.0.1:$P_MGMT/roots/0" >"$T/pebble-root.pem"
ok "the chain verifies up to pebble's root" 'grep -q "BEGIN CERTIFICATE" $T/pebble-root.pem &&
	openssl verify -CAfile $T/pebble-root.pem -untrusted $W/live/cert.pem $W/live/cert.pem'
ok "the certificate is for *.test.example only, with the key in live/key.pem" '
	[ "$(openssl x509 -in $W/live/cert.pem -noout -ext subjectAltName | tail -n +2 | tr -d " ")" = "DNS:*.test.example" ] &&
	[ "$(openssl x509 -in $W/live/cert.pem -noout -pubkey)" = "$(openssl pkey -in $W/live/key.pem -pubout)" ] &&
	openssl pkey -in $W/live/key.pem -noout -text | grep -q "NIST CURVE: P-256"'
ok "the stale _acme-challenge TXT record was deleted first" 'grep -q "DELETE .*/dns_records/$STALE auth-ok" $T/cf.log'
ok "the self-check saw the TXT record through the DNS server" \
	'grep -q "TXT record at _acme-challenge.test.example is visible" $T/renew1.err'
ok "no TXT record is left behind" '! records _acme-challenge.test.example | grep -q .'
ok "the zone was found on page 3 of /zones" 'grep -q "GET /client/v4/zones?page=3&per_page=50 auth-ok" $T/cf.log'
ok "renewed_hook ran once" '[ "$(hooks)" = 1 ]'
CERT1=$(sha "$W/live/cert.pem")
KEY1=$(sha "$W/live/key.pem")

cb renew2 renew --once -c "$T/main.toml"
ok "a second renew --once leaves a fresh certificate alone" '[ $rc = 0 ] && [ "$(sha $W/live/cert.pem)" = "$CERT1" ] &&
	[ "$(hooks)" = 1 ] && [ "$(backups)" = 0 ] && grep -q "is up to date" $T/renew2.err'

cb renew3 renew --once --force -c "$T/main.toml"
BK=$(find "$W/backup" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | head -1)
ok "--force renews: new certificate and a fresh key" '[ $rc = 0 ] && [ "$(sha $W/live/cert.pem)" != "$CERT1" ] &&
	[ "$(sha $W/live/key.pem)" != "$KEY1" ]'
ok "the old pair is in backup/<ISO 8601>/ (key 0600)" '[[ "$(basename "$BK")" =~ ^[0-9]{8}T[0-9]{6}Z(-[0-9]+)?$ ]] &&
	[ "$(sha $BK/cert.pem)" = "$CERT1" ] && [ "$(sha $BK/key.pem)" = "$KEY1" ] && [ "$(mode $BK/key.pem)" = 600 ]'
ok "renewed_hook ran again" '[ "$(hooks)" = 2 ]'

config expiring 'renew_days_before = 36500'
CERT2=$(sha "$W/live/cert.pem")
cb renew4 renew --once -c "$T/expiring.toml"
ok "a certificate expiring within renew_days_before is renewed without --force" '[ $rc = 0 ] &&
	[ "$(sha $W/live/cert.pem)" != "$CERT2" ] && grep -q "within renew_days_before" $T/renew4.err &&
	[ "$(hooks)" = 3 ] && [ "$(backups)" = 2 ]'

# --- failures leave live/ untouched -------------------------------------------------------
CERT3=$(sha "$W/live/cert.pem")
KEY3=$(sha "$W/live/key.pem")
untouched() { [ "$(sha $W/live/cert.pem)" = "$CERT3" ] && [ "$(sha $W/live/key.pem)" = "$KEY3" ] &&
	[ "$(hooks)" = 3 ] && [ "$(backups)" = 2 ]; }

config nodns 'domains = ["nodns.example"]' 'max_dns_wait = 2'
cb nodns renew --once -c "$T/nodns.toml"
ok "DNS that never propagates: the CA's refusal is the error" '[ $rc = 1 ] &&
	grep -q "^certbot: renew: ACME order for \*.nodns.example failed: authorization for nodns.example is invalid: urn:ietf:params:acme:error:" $T/nodns.err'
ok "after max_dns_wait the self-check gave up and asked the CA" \
	'grep -q "TXT record at _acme-challenge.nodns.example not visible after 2 s" $T/nodns.err'
ok "live/ untouched, no hook, TXT record cleaned up" 'untouched && ! records _acme-challenge.nodns.example | grep -q .'

config slow 'domains = ["nodns.example"]' 'max_dns_wait = 300' 'renew_timeout = 3'
START=$SECONDS
cb slow renew --once -c "$T/slow.toml"
ok "renew_timeout bounds the attempt" '[ $rc = 1 ] && [ $((SECONDS - START)) -lt 20 ] &&
	grep -q "^certbot: renew: ACME order for \*.nodns.example failed: renew_timeout (3 s): .*timed out" $T/slow.err'
ok "live/ untouched, TXT record cleaned up" 'untouched && ! records _acme-challenge.nodns.example | grep -q .'

config badtoken2 'cf_api_token = "wrong-token"'
cb renew_bad renew --once --force -c "$T/badtoken2.toml"
ok "renew with a bad token: clear error, live/ untouched" '[ $rc = 1 ] &&
	grep -q "^certbot: renew: Cloudflare GET /zones page 1: HTTP 403: error 9109: Invalid access token" $T/renew_bad.err &&
	untouched && ! grep -q wrong-token $T/renew_bad.err'

# --- the loop ------------------------------------------------------------------------------
config loop 'renew_interval = 1'
"$CERTBOT" renew -c "$T/loop.toml" >"$T/loop.out" 2>"$T/loop.err" &
LOOP=$!
PIDS+=($LOOP)
wait_for 15 bash -c "[ \$(grep -c 'is up to date' $T/loop.err) -ge 2 ]"
ok "renew without --once checks every renew_interval" '[ "$(grep -c "is up to date" $T/loop.err)" -ge 2 ]'
kill -TERM $LOOP
wait_for 5 bash -c "! kill -0 $LOOP"
wait $LOOP
lrc=$?
ok "and stops cleanly on SIGTERM" '[ $lrc = 0 ] && grep -q stopping $T/loop.err && untouched'

# --- another ACME URL: a new account, the old credentials kept ---------------------------------
config other 'acme_url = "https://localhost:'"$P_ACME"'/dir"' 'auto_set_caa = false'
cb other init -c "$T/other.toml"
ok "credentials for another acme_url: a new account, the old file kept in backup/" '[ $rc = 0 ] &&
	[ "$(cat $T/other.out)" != "$ACCOUNT" ] && grep -q "\"acme_url\": \"https://localhost:$P_ACME/dir\"" $W/credentials.json &&
	grep -lq "$ACCOUNT" $W/backup/credentials-*.json && [ "$(mode $(ls $W/backup/credentials-*.json | head -1))" = 600 ]'

# --- the ACME server is gone -----------------------------------------------------------------
kill $PEBBLE_PID
wait $PEBBLE_PID 2>/dev/null
cb noacme renew --once --force -c "$T/other.toml"
ok "unreachable ACME server: clear error, live/ untouched" '[ $rc = 1 ] &&
	grep -q "^certbot: renew: ACME order for \*.test.example failed: ACME directory: GET https://localhost:$P_ACME/dir: " $T/noacme.err &&
	untouched'

ok "the Cloudflare token never appears in any output or log" '! grep -rqF "$TOKEN" $T/*.out $T/*.err $T/cf.log'
# Only the start-up probe (GET /) and the two wrong-token runs come without it.
ok "every other Cloudflare call carried the token as a Bearer header" '[ "$(grep -c "auth-bad$" $T/cf.log)" = 3 ] &&
	[ "$(grep -c "^GET /client/v4/zones?page=1&per_page=50 auth-bad$" $T/cf.log)" = 2 ]'

echo "1..$n"
