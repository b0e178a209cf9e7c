#!/bin/bash
# gateway_boot_test.sh — a simulated CVM boots with `dstack-util setup`,
# registers with a real dstack-gateway and is reached through its proxy (TAP).
#
# Two network namespaces made here and removed on exit, joined by a veth
# pair: "host" runs the collateral service (dstack simtee serve), the real
# dstack-kms (dev auth; its own CVM is a none-provider boot served by our
# agent) and the real dstack-gateway, whose RPC certificate comes from the
# guest agent of its own simulated CVM (KMS provider, so the chain ends at the
# KMS root and carries the gateway's app id). The gateway verifies simulated
# TDX attestation against the simtee dev root (no insecure_skip_attestation).
# "cvm" runs `dstack-util setup` on the simulated TDX with gateway_enabled:
# KMS keys, a KMS-issued client certificate, RegisterCvm (gateway app id
# checked against the KMS's gateway_app_id), WireGuard up (kernel, else
# wireguard-go); then a python3 HTTP server on the WireGuard address, and curl
# in "host" reaches it through the gateway's TLS proxy by app id.
#
# Also: the gateway's Admin.Status lists the instance with the CVM's app id
# and instance id (taken from the KMS-signed certificate); a reboot keeps the
# WireGuard key and address; the compose's port policy is enforced; a KMS
# naming another gateway app id stops the boot with --gateway-required and
# only logs without it.
#
# The KMS side (collateral service, the KMS's CVM and agent, dstack-kms,
# CVM boots) is tests/support/kms-stack.sh, shared with tests/gateway/e2e.sh.
# Host names resolve through /etc/netns/<ns>/hosts (ip netns exec mounts
# them), removed on exit. Needs root, ip, wg, curl, python3, openssl and
# kernel WireGuard or wireguard-go; otherwise the test is skipped.
# Env: UTIL AGENT KMS GATEWAY DSTACK (built programs).
set -u
. "$(cd "$(dirname "$0")" && pwd)/../support/kms-stack.sh"
n=0
fails=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fails=$((fails + 1)); fi; }
skip_all() { echo "1..0 # SKIP $1"; exit 0; }
diag_file() { [ -f "$1" ] && tail -"${2:-25}" "$1" | sed "s|^|# $(basename "$1"): |"; }

[ "$(id -u)" = 0 ] || skip_all "needs root"
for t in ip wg curl python3 openssl; do command -v $t >/dev/null || skip_all "needs $t"; done
for v in UTIL AGENT KMS GATEWAY DSTACK; do [ -x "${!v:-}" ] || skip_all "$v not built"; done

tag=$$
HNS=gwboot-host-$tag
CNS=gwboot-cvm-$tag
HIF=vgh$tag
CIF=vgc$tag
GWWG=gwwg$tag
CVMWG=cvwg$tag
HOST_IP=10.215.0.1
CVM_IP=10.215.0.2
W=$(mktemp -d /tmp/guest-gwboot-XXXXXX)

cleanup() {
	ks_stop
	for ns in "$HNS" "$CNS"; do
		if ip netns list | grep -qw "$ns"; then
			# wireguard-go daemons started inside the namespaces made here
			for p in $(ip netns pids "$ns" 2>/dev/null); do kill "$p" 2>/dev/null; done
			ip netns del "$ns" 2>/dev/null
		fi
	done
	rm -f "/var/run/wireguard/$GWWG.sock" "/var/run/wireguard/$CVMWG.sock"
	[ -z "${KEEP_TEST_DIR:-}" ] && rm -rf "$W"
}
trap cleanup EXIT

ip netns add "$HNS" || skip_all "cannot create network namespaces"
ip netns add "$CNS"
ip link add "$HIF" netns "$HNS" type veth peer name "$CIF" netns "$CNS"
ip -n "$HNS" addr add $HOST_IP/30 dev "$HIF"
ip -n "$CNS" addr add $CVM_IP/30 dev "$CIF"
for ns in "$HNS" "$CNS"; do ip -n "$ns" link set lo up; done
ip -n "$HNS" link set "$HIF" up
ip -n "$CNS" link set "$CIF" up
if ip -n "$CNS" link add probe$tag type wireguard 2>/dev/null; then
	ip -n "$CNS" link del probe$tag
else
	command -v wireguard-go >/dev/null || skip_all "no kernel WireGuard and no wireguard-go"
fi
ks_init "$HNS" $HOST_IP "$W" gateway.test
ks_hosts "$CNS"
inh() { ip netns exec "$HNS" "$@"; }
inc() { ip netns exec "$CNS" "$@"; }

cd "$W" || exit 1
PCCS=$KS_PCCS
ks_collateral_up
ok $? "collateral service up"

# --- the KMS and its own CVM (provider none) ---
ks_kms_cvm_up
ok $? "KMS's CVM boots (provider none) and its guest agent is up"

GW_COMPOSE='{"manifest_version":2,"name":"dstack-gateway","runner":"docker-compose","docker_compose_file":"services: {}","kms_enabled":true,"key_provider":"kms"}'
printf '%s' "$GW_COMPOSE" >gw-compose.json
GW_APP=$("$DSTACK" app-id gw-compose.json)
ks_kms_start "$GW_APP"
ok $? "dstack-kms up (dev auth, gateway_app_id = the gateway's app id $GW_APP)"

# --- the gateway's CVM (KMS provider) and the gateway ---
ks_setup "$HNS" gwcvm "$GW_COMPOSE" ""
ok $? "gateway's CVM boots with keys from the KMS"
ks_agent_up gwcvm
ok $? "gateway's guest agent up"

mkdir -p gw/certs
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout gw/certs/wildcard.key \
	-out gw/certs/wildcard.crt -subj "/CN=*.app.test" -addext "subjectAltName=DNS:*.app.test" -days 2 2>/dev/null
GW_PRIV=$(wg genkey)
GW_PUB=$(echo "$GW_PRIV" | wg pubkey)
(umask 077 && cat >gw/gateway.toml <<TOML
address = "$HOST_IP"
port = 8010
[tls]
key = "$W/gw/certs/rpc.key"
certs = "$W/gw/certs/rpc.crt"
[tls.mutual]
ca_certs = "$W/gw/certs/kms-root.crt"
mandatory = false
[core]
rpc_domain = "gateway.test"
[core.attestation]
insecure_allow_external_trust_anchors = true
[core.attestation.urls]
pccs = "$PCCS"
[core.attestation.root_ca]
tdx = "$W/pki/root_ca.pem"
[core.admin]
enabled = true
auth_token = "gwboot-token"
address = "127.0.0.1:8011"
[core.wg]
public_key = "$GW_PUB"
private_key = "$GW_PRIV"
ip = "10.0.0.1/24"
listen_port = 51820
interface = "$GWWG"
config_path = "$W/gw/wg.conf"
endpoint = "$HOST_IP:51820"
[core.sync]
data_dir = "$W/gw/state"
[core.proxy]
cert_chain = "$W/gw/certs/wildcard.crt"
cert_key = "$W/gw/certs/wildcard.key"
base_domain = "app.test"
listen_addr = "127.0.0.1"
listen_port = 8443
workers = 2
TOML
)
ks_bg_in "$HNS" gw/gateway.log env DSTACK_AGENT_ADDRESS="$W/gwcvm/dstack.sock" "$GATEWAY" -c gw/gateway.toml
GW_PID=${KS_PIDS[-1]}
ks_wait 150 inh curl -sf --cacert kms/certs/root-ca.crt https://gateway.test:8010/health
ok $? "dstack-gateway up; its RPC certificate chains to the KMS root"
grep -q "issued by the guest agent" gw/gateway.log && cmp -s gw/certs/kms-root.crt kms/certs/root-ca.crt
ok $? "gateway trusts client certificates under the KMS root only (tls.mutual.ca_certs = KMS root)"

# --- the app CVM ---
# Host API stand-in: records Notify events.
cat >notify.py <<'PY'
import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(sys.argv[1], "a") as f:
            f.write(body.decode() + "\n")
        self.send_response(200); self.send_header("Content-Length", "4"); self.end_headers(); self.wfile.write(b"null")
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", 12000), H).serve_forever()
PY
ks_bg_in "$CNS" notify.log python3 notify.py "$W/notified.txt"
ks_wait 50 inc bash -c "exec 3<>/dev/tcp/127.0.0.1/12000"
ok $? "host API stand-in up"
APP_COMPOSE='{"manifest_version":2,"name":"web","runner":"docker-compose","docker_compose_file":"services: {}","kms_enabled":true,"key_provider":"kms","gateway_enabled":true,"port_policy":{"restrict_mode":true,"ports":[{"port":8080,"pp":false}]}}'
APP_SYS="{\"kms_urls\":[\"https://kms.test:8000\"],\"gateway_urls\":[\"https://gateway.test:8010\"],\"host_api_url\":\"http://127.0.0.1:12000/api\",$KS_VMCFG}"
printf '%s' "$APP_COMPOSE" >app-compose.json
APP_ID=$("$DSTACK" app-id app-compose.json)
ks_setup "$CNS" app "$APP_COMPOSE" "$APP_SYS" --wg-interface "$CVMWG" --gateway-required
rc=$?
ok $rc "app CVM boots and registers with the gateway"
[ $rc = 0 ] || diag_file app/setup.log 30
INST=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["instance_id"])' app/work/.instance_info 2>/dev/null)
CLIENT_IP=$(sed -n 's/^Address = \(.*\)\/32$/\1/p' app/work/dstack-wg0.conf 2>/dev/null)
[ -n "$CLIENT_IP" ] && inc ip -4 addr show dev "$CVMWG" | grep -q "inet $CLIENT_IP/32"
ok $? "WireGuard $CVMWG up in the CVM namespace with $CLIENT_IP"
[ "$(stat -c %a app/work/wg-private.key 2>/dev/null)" = 600 ] && [ "$(stat -c %a app/work/dstack-wg0.setconf 2>/dev/null)" = 600 ] &&
	! grep -q Address app/work/dstack-wg0.setconf
ok $? "key and wg(8) file are 0600; the setconf file has no wg-quick keys"
grep -q 'gateway registered' notified.txt 2>/dev/null
ok $? "host told: boot.progress gateway registered"

STATUS=$(inh curl -sf -H 'X-Admin-Token: gwboot-token' "http://127.0.0.1:8011/prpc/Admin.Status?json")
echo "$STATUS" | python3 -c '
import json, sys
h = json.load(sys.stdin)["hosts"]
sys.exit(0 if any(x["app_id"] == sys.argv[1] and x["instance_id"] == sys.argv[2] and x["ip"] == sys.argv[3] for x in h) else 1)' \
	"$APP_ID" "$INST" "$CLIENT_IP"
ok $? "gateway Status lists app $APP_ID instance $INST at $CLIENT_IP (identity from the KMS-signed certificate)"

# GetPeers is for the gateway's own cluster: the caller's certificate must
# carry the gateway's app id (from its guest agent's Info).
grep -q "this gateway's app id is $GW_APP" gw/gateway.log
ok $? "gateway learned its own app id $GW_APP from its guest agent"
PEERS=$(inh curl -s --cacert kms/certs/root-ca.crt --cert gw/certs/rpc.crt --key gw/certs/rpc.key \
	-X POST -H 'Content-Type: application/json' -d '{}' "https://gateway.test:8010/prpc/GetPeers?json")
grep -q '"my_url"' <<<"$PEERS"
ok $? "GetPeers with a certificate carrying the gateway's app id answers ($PEERS)"
PEERS=$(inh curl -s --cacert kms/certs/root-ca.crt -X POST -H 'Content-Type: application/json' -d '{}' \
	"https://gateway.test:8010/prpc/GetPeers?json")
grep -q "no client certificate" <<<"$PEERS"
ok $? "GetPeers without a client certificate is refused ($PEERS)"

mkdir -p www && echo "hello from $INST" >www/hello.txt
ks_bg_in "$CNS" http.log python3 -m http.server 8080 --bind 0.0.0.0 --directory "$W/www"
fetch() { # port
	inh curl -s --max-time 5 --cacert gw/certs/wildcard.crt \
		--resolve "$APP_ID-$1.app.test:8443:127.0.0.1" "https://$APP_ID-$1.app.test:8443/hello.txt"
}
fetch_hello() { # tries: fetch 8080 every 0.5 s until the app's page comes back (in $got)
	for _ in $(seq "$1"); do
		got=$(fetch 8080)
		[ "$got" = "hello from $INST" ] && return 0
		sleep 0.5
	done
	return 1
}
fetch_hello 80 # the app route needs a handshake the gateway has read (10 s timer)
ok $? "curl through the gateway proxy by app id: '$got'"
# The refusal must come from a live gateway: the allowed port answers right after.
got=$(fetch 8081)
after=$(fetch 8080)
[ -z "$got" ] && [ "$after" = "hello from $INST" ] && kill -0 "$GW_PID" 2>/dev/null
ok $? "port outside the compose's port policy refused, while 8080 still answers right after ('$after')"

# --- reboot: same work dir, fresh TD; key and address kept ---
PUB1=$(inc wg show "$CVMWG" public-key)
ks_setup "$CNS" app "$APP_COMPOSE" "$APP_SYS" --wg-interface "$CVMWG" --gateway-required
ok $? "second boot registers again"
PUB2=$(inc wg show "$CVMWG" public-key)
IP2=$(sed -n 's/^Address = \(.*\)\/32$/\1/p' app/work/dstack-wg0.conf)
[ -n "$PUB1" ] && [ "$PUB1" = "$PUB2" ] && [ "$IP2" = "$CLIENT_IP" ] && grep -q "reusing link $CVMWG" app/setup.log
ok $? "same WireGuard key ($PUB1) and address ($IP2), link reused"
fetch_hello 40
ok $? "still reachable through the proxy after the second boot"

# --- a KMS that names another gateway app id ---
ks_kms_start 00000000000000000000000000000000000000aa
ok $? "KMS restarted naming another gateway app id"
ks_setup "$CNS" bad "$APP_COMPOSE" "$APP_SYS" --wg-interface "bad$tag" --gateway-required
rc=$?
[ $rc != 0 ] && grep -q "boot failed: register with gateway: .*gateway app id mismatch: certificate has $GW_APP, the KMS expects 00000000000000000000000000000000000000aa" bad/setup.log
ok $? "gateway with the wrong app id stops the boot (--gateway-required)"
grep -q '"boot.error".*register with gateway: .*gateway app id mismatch' notified.txt
ok $? "host told: boot.error with the cause"
! inc ip link show "bad$tag" >/dev/null 2>&1
ok $? "no WireGuard link for the refused gateway"
ks_setup "$CNS" bad "$APP_COMPOSE" "$APP_SYS" --wg-interface "bad$tag"
rc=$?
[ $rc = 0 ] && grep -q "register with gateway: .*gateway app id mismatch.*boot continues" bad/setup.log
ok $? "without --gateway-required the boot completes and logs the cause"

if [ $fails != 0 ]; then
	diag_file app/setup.log 30
	diag_file gw/gateway.log 30
	diag_file kms/kms.log 20
fi
echo "1..$n"
[ $fails = 0 ]
