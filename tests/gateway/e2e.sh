#!/bin/bash
# e2e.sh — dstack-gateway end to end through WireGuard (TAP).
#
# Three network namespaces created here and removed on exit: "gw" runs
# dstack-gateway (its WireGuard link, proxy and RPC); "cvm1" and "cvm2" play
# two instances of the same app, each joined to "gw" by its own veth pair;
# nothing touches the host's own interfaces. The CVMs' client certificates
# come from a real dstack-kms (SignCert, through the guest agent of a
# simulated CVM booted with dstack-util; tests/support/kms-stack.sh, run in
# "gw"): RA-TLS certificates under the KMS root carrying each CVM's AppInfo
# (extension 1.3.6.1.4.1.62397.1.9), and the gateway accepts client
# certificates under the KMS root only. The gateway runs with
# insecure_skip_attestation (identity from the AppInfo; attestation
# verification is covered by tests/guest/gateway_boot_test.sh). Each CVM
# registers over mTLS with that certificate and its port policy, brings up WireGuard
# (kernel, else wireguard-go) with the returned configuration and serves on
# its WireGuard address: HTTP on 80 and 8080 (different bodies, so the port
# named in the SNI is visible) and HTTPS on 8443 with its own certificate.
# curl inside "gw" then checks, through the proxy:
#   - by instance id and by app id, default port 80 and a custom port 8080;
#   - `-8443s` passthrough: the client sees the CVM's own certificate and a
#     byte-exact copy of a binary file;
#   - a port outside the policy is refused;
#   - failover (spec gateway.md §5 backend selection): with both instances
#     handshaked, requests by app id go to both candidates in parallel and the
#     first connect wins, so when cvm1's server is killed (connect refused)
#     and then its WireGuard link is brought down (connect never answers),
#     every request by app id is still answered, by cvm2, without waiting for
#     the 30 s candidate cache to expire.
# Registration refused for a node that is `down` and for a WireGuard key owned
# by another instance is covered by gateway_test.c (no WireGuard needed).
#
# Needs root, ip, wg, wireguard-go (or kernel WireGuard), python3, curl,
# openssl (scripts/deps/gateway-wg.txt); otherwise the test is skipped.
# Usage: e2e.sh <dstack-gateway>; env UTIL AGENT KMS DSTACK (built programs).
set -u
GW_BIN=$(realpath "$1")
n=0
fails=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fails=$((fails + 1)); fi; }
skip_all() { echo "1..0 # SKIP $1"; exit 0; }

[ "$(id -u)" = 0 ] || skip_all "needs root"
for t in ip wg curl python3 openssl cmp; do command -v $t >/dev/null || skip_all "needs $t"; done
for v in UTIL AGENT KMS DSTACK; do [ -x "${!v:-}" ] || skip_all "$v not built"; done
. "$(cd "$(dirname "$0")" && pwd)/../support/kms-stack.sh"

tag=$$
GWNS=gwe2e-gw-$tag
GWIF=gwt$tag
declare -A NS IF SRV_PID
NS[1]=gwe2e-cvm1-$tag
NS[2]=gwe2e-cvm2-$tag
IF[1]=cva$tag
IF[2]=cvb$tag
WORK=$(mktemp -d /tmp/gateway-e2e-XXXXXX)
GW_PID=

cleanup() {
	[ -n "$GW_PID" ] && kill "$GW_PID" 2>/dev/null && wait "$GW_PID" 2>/dev/null
	ks_stop
	for i in 1 2; do
		[ -n "${SRV_PID[$i]:-}" ] && kill "${SRV_PID[$i]}" 2>/dev/null && wait "${SRV_PID[$i]}" 2>/dev/null
	done
	for ns in "$GWNS" "${NS[1]}" "${NS[2]}"; do
		if ip netns list | grep -qw "$ns"; then
			# only processes inside the namespaces this test created (wireguard-go daemons)
			for p in $(ip netns pids "$ns" 2>/dev/null); do kill "$p" 2>/dev/null; done
			ip netns del "$ns" 2>/dev/null
		fi
	done
	rm -f "/var/run/wireguard/$GWIF.sock" "/var/run/wireguard/${IF[1]}.sock" "/var/run/wireguard/${IF[2]}.sock"
	[ -z "${KEEP_TEST_DIR:-}" ] && rm -rf "$WORK"
}
trap cleanup EXIT

ip netns add "$GWNS" || skip_all "cannot create network namespaces"
ip -n "$GWNS" link set lo up
# cvm<i> is 10.213.0.<4i-2>/30, its gateway side 10.213.0.<4i-3>; the
# gateway's WireGuard endpoint is 10.213.0.1, reached by cvm2 through its veth.
for i in 1 2; do
	ip netns add "${NS[$i]}"
	ip link add veg$i$tag netns "$GWNS" type veth peer name vec$i$tag netns "${NS[$i]}"
	ip -n "$GWNS" addr add 10.213.0.$((4 * i - 3))/30 dev veg$i$tag
	ip -n "${NS[$i]}" addr add 10.213.0.$((4 * i - 2))/30 dev vec$i$tag
	ip -n "${NS[$i]}" link set lo up
	ip -n "$GWNS" link set veg$i$tag up
	ip -n "${NS[$i]}" link set vec$i$tag up
done
ip -n "${NS[2]}" route add 10.213.0.0/30 via 10.213.0.5

# does WireGuard work at all here (kernel or wireguard-go)?
for i in 1 2; do
	if ! ip -n "${NS[$i]}" link add "${IF[$i]}" type wireguard 2>/dev/null; then
		command -v wireguard-go >/dev/null || skip_all "no kernel WireGuard and no wireguard-go"
		ip netns exec "${NS[$i]}" env WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 \
			wireguard-go "${IF[$i]}" >/dev/null 2>&1 || skip_all "wireguard-go cannot create a TUN device"
	fi
done

cd "$WORK" || exit 1
# The KMS and two app CVMs (same compose: one app id, two instance ids).
ks_init "$GWNS" 10.213.0.1 "$WORK"
ks_kms_up any
ok $? "dstack-kms up on the simulated TDX (its own CVM and guest agent)"
APP_COMPOSE='{"manifest_version":2,"name":"e2e-app","runner":"docker-compose","docker_compose_file":"services: {}","kms_enabled":true,"key_provider":"kms"}'
declare -A INST
for i in 1 2; do
	ks_cvm_boot app$i "$APP_COMPOSE" ""
	ok $? "app CVM $i boots with keys from the KMS; its guest agent is up"
	info=$(ks_agent app$i Info '{}')
	APP=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["app_id"].removeprefix("0x"))' <<<"$info")
	INST[$i]=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["instance_id"].removeprefix("0x"))' <<<"$info")
done
[ -n "$APP" ] && [ -n "${INST[1]}" ] && [ "${INST[1]}" != "${INST[2]}" ]
ok $? "one app id ($APP), two instance ids"

mkdir certs
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout certs/root-ca.key \
	-out certs/root-ca.crt -subj /CN=e2e-root -days 2 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout certs/gateway-rpc.key \
	-out rpc.csr -subj /CN=gateway.local 2>/dev/null
openssl x509 -req -in rpc.csr -CA certs/root-ca.crt -CAkey certs/root-ca.key -out certs/gateway-rpc.crt \
	-days 2 -extfile <(echo "subjectAltName=DNS:gateway.local") 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout certs/wildcard.key \
	-out certs/wildcard.crt -subj "/CN=*.app.localhost" -addext "subjectAltName=DNS:*.app.localhost" \
	-days 2 2>/dev/null
# the app's own certificate for the passthrough port: same names, other key
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout backend.key \
	-out backend.crt -subj "/CN=e2e-app-backend" -addext "subjectAltName=DNS:*.app.localhost" \
	-days 2 2>/dev/null
GW_PRIV=$(wg genkey)
GW_PUB=$(echo "$GW_PRIV" | wg pubkey)

cat >gateway.toml <<TOML
address = "0.0.0.0"
port = 9201
[tls]
key = "certs/gateway-rpc.key"
certs = "certs/gateway-rpc.crt"
[tls.mutual]
ca_certs = "$WORK/kms/certs/root-ca.crt"
mandatory = false
[core.debug]
insecure_skip_attestation = true
[core.admin]
enabled = true
auth_token = "e2e-token"
address = "127.0.0.1:9211"
[core.wg]
public_key = "$GW_PUB"
private_key = "$GW_PRIV"
ip = "10.0.0.1/24"
listen_port = 9202
interface = "$GWIF"
config_path = "$WORK/wg/gw.conf"
endpoint = "10.213.0.1:9202"
[core.sync]
data_dir = "$WORK/state"
[core.proxy]
cert_chain = "certs/wildcard.crt"
cert_key = "certs/wildcard.key"
base_domain = "app.localhost"
listen_addr = "127.0.0.1"
listen_port = 9204
workers = 2
TOML

ip netns exec "$GWNS" "$GW_BIN" -c gateway.toml >gateway.log 2>&1 &
GW_PID=$!
up=1
for _ in $(seq 100); do
	if ip netns exec "$GWNS" curl -sfk https://127.0.0.1:9201/health >/dev/null; then up=0; break; fi
	sleep 0.1
done
ok $up "gateway starts in its namespace"
ip -n "$GWNS" link show "$GWIF" >/dev/null 2>&1
ok $? "gateway created WireGuard link $GWIF"

# Servers of one CVM: HTTP on 80 and 8080, HTTPS (own certificate) on 8443.
cat >cvm_server.py <<'PY'
import functools, http.server, ssl, sys, threading
ip, root = sys.argv[1], sys.argv[2]
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass
def serve(port, sub, tls):
    s = http.server.ThreadingHTTPServer((ip, port), functools.partial(Quiet, directory=root + "/" + sub))
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain("backend.crt", "backend.key")
        s.socket = ctx.wrap_socket(s.socket, server_side=True)
    threading.Thread(target=s.serve_forever, daemon=True).start()
serve(80, "p80", False)
serve(8080, "p8080", False)
serve(8443, "p8443", True)
print("serving", flush=True)
threading.Event().wait()
PY
head -c 300000 /dev/urandom >blob.bin

declare -A CLIENT_IP

# Register CVM $1 (certificate, RegisterCvm, WireGuard, servers).
cvm_up() {
	local i=$1 inst=${INST[$1]} ns=${NS[$1]} wgif=${IF[$1]} gwip=10.213.0.$((4 * $1 - 3))
	local priv pub reply srv srv_pk srv_ip srv_ep policy
	priv=$(wg genkey)
	pub=$(echo "$priv" | wg pubkey)
	(umask 077 && echo "$priv" >cvm$i.key)
	ks_client_cert app$i cvm$i-tls.crt cvm$i-tls.key &&
		openssl verify -CAfile kms/certs/root-ca.crt -untrusted cvm$i-tls.crt cvm$i-tls.crt >/dev/null &&
		openssl x509 -in cvm$i-tls.crt -noout -text | grep -q 1.3.6.1.4.1.62397.1.9
	ok $? "cvm$i: client certificate from the KMS (chains to its root, carries the AppInfo extension)"
	reply=$(ip netns exec "$ns" curl -sf --cacert certs/root-ca.crt --cert cvm$i-tls.crt --key cvm$i-tls.key \
		--resolve gateway.local:9201:$gwip https://gateway.local:9201/prpc/RegisterCvm?json \
		-H 'Content-Type: application/json' -d "{\"client_public_key\":\"$pub\",\"port_policy\":\
{\"restrict_mode\":true,\"ports\":[{\"port\":80},{\"port\":8080},{\"port\":8443}]}}")
	ok $? "cvm$i: registers over mTLS from its namespace"
	CLIENT_IP[$i]=$(echo "$reply" | python3 -c 'import json,sys; print(json.load(sys.stdin)["wg"]["client_ip"])')
	srv=$(echo "$reply" | python3 -c 'import json,sys; s=json.load(sys.stdin)["wg"]["servers"][0]; print(s["pk"], s["ip"].split("/")[0], s["endpoint"])')
	read -r srv_pk srv_ip srv_ep <<<"$srv"
	[ "${CLIENT_IP[$i]}" = 10.0.0.$((i + 1)) ] && [ "$srv_pk" = "$GW_PUB" ] && [ "$srv_ep" = 10.213.0.1:9202 ]
	ok $? "cvm$i: reply: client ip ${CLIENT_IP[$i]}, gateway $srv_ip at $srv_ep"

	policy=$(ip netns exec "$GWNS" curl -sf -H 'Authorization: Bearer e2e-token' \
		-H 'Content-Type: application/json' --data "{\"instance_id\":\"$inst\"}" \
		"http://127.0.0.1:9211/prpc/Admin.GetInstancePortPolicy?json")
	echo "$policy" | grep -q '"source":"instance"' && echo "$policy" | grep -q '"port":8443'
	ok $? "cvm$i: identity from the certificate, port policy from the request"

	# the CVM side, as the guest would configure it
	ip netns exec "$ns" wg set "$wgif" private-key cvm$i.key listen-port 9182 \
		peer "$srv_pk" allowed-ips "$srv_ip/32" endpoint "$srv_ep" persistent-keepalive 25
	ip -n "$ns" addr add "${CLIENT_IP[$i]}/32" dev "$wgif"
	ip -n "$ns" link set "$wgif" up
	ip -n "$ns" route add "$srv_ip/32" dev "$wgif"
	mkdir -p www$i/p80 www$i/p8080 www$i/p8443
	echo "port 80 of $inst" >www$i/p80/hello.txt
	echo "hello from $inst" >www$i/p8080/hello.txt
	cp blob.bin www$i/p8443/blob.bin
	ip netns exec "$ns" python3 cvm_server.py "${CLIENT_IP[$i]}" "www$i" >server$i.log 2>&1 &
	SRV_PID[$i]=$!
	CVM_PUB[$i]=$pub
}
declare -A CVM_PUB
cvm_up 1
cvm_up 2

hs=1
for _ in $(seq 150); do
	got=$(ip netns exec "$GWNS" wg show "$GWIF" latest-handshakes)
	if echo "$got" | grep -q "${CVM_PUB[1]}	[1-9]" && echo "$got" | grep -q "${CVM_PUB[2]}	[1-9]"; then
		hs=0
		break
	fi
	sleep 0.2
done
ok $hs "WireGuard handshakes between the gateway and both CVMs"
grep -q "AllowedIPs = 10.0.0.2/32" wg/gw.conf && grep -q "AllowedIPs = 10.0.0.3/32" wg/gw.conf
ok $? "gateway peer file lists both CVMs"

# The app path only uses instances whose handshake the gateway has read
# (10 s timer); wait until Admin.Status shows both.
admin_status() {
	ip netns exec "$GWNS" curl -sf -H 'X-Admin-Token: e2e-token' "http://127.0.0.1:9211/prpc/Admin.Status?json"
}
seen=1
for _ in $(seq 60); do
	if admin_status | python3 -c 'import json,sys; h=json.load(sys.stdin)["hosts"]
sys.exit(0 if len(h) == 2 and all(x["latest_handshake"] > 0 for x in h) else 1)'; then
		seen=0
		break
	fi
	sleep 0.5
done
ok $seen "Admin.Status shows both CVMs' last handshakes"

fetch() { # host [path]
	ip netns exec "$GWNS" curl -s --max-time 5 --cacert certs/wildcard.crt \
		--resolve "$1:9204:127.0.0.1" "https://$1:9204/${2:-hello.txt}"
}
for i in 1 2; do
	got=
	for _ in $(seq 40); do
		got=$(fetch "${INST[$i]}-8080.app.localhost")
		[ "$got" = "hello from ${INST[$i]}" ] && break
		sleep 0.5
	done
	[ "$got" = "hello from ${INST[$i]}" ]
	ok $? "cvm$i by instance id, custom port 8080: '$got'"
	got=$(fetch "${INST[$i]}.app.localhost")
	[ "$got" = "port 80 of ${INST[$i]}" ]
	ok $? "cvm$i by instance id, default port 80: '$got'"
done

# by app id: every request answered, by either instance
declare -A FROM
FROM[1]=0 FROM[2]=0 FROM[none]=0
for _ in $(seq 20); do
	got=$(fetch "$APP-8080.app.localhost")
	case "$got" in
	"hello from ${INST[1]}") FROM[1]=$((FROM[1] + 1)) ;;
	"hello from ${INST[2]}") FROM[2]=$((FROM[2] + 1)) ;;
	*) FROM[none]=$((FROM[none] + 1)) ;;
	esac
done
[ "${FROM[none]}" = 0 ]
ok $? "by app id, port 8080: 20 requests answered (cvm1 ${FROM[1]}, cvm2 ${FROM[2]}, failed ${FROM[none]})"
got=$(fetch "$APP.app.localhost")
[ "$got" = "port 80 of ${INST[1]}" ] || [ "$got" = "port 80 of ${INST[2]}" ]
ok $? "by app id, default port 80: '$got'"

# passthrough: the CVM terminates TLS with its own certificate
pass() { # host
	ip netns exec "$GWNS" curl -s --max-time 10 --cacert backend.crt \
		--resolve "$1:9204:127.0.0.1" "https://$1:9204/blob.bin" -o "$2"
}
pass "$APP-8443s.app.localhost" got-app.bin && cmp -s blob.bin got-app.bin
ok $? "passthrough by app id (-8443s): backend certificate verified, $(stat -c %s blob.bin) bytes byte-exact"
pass "${INST[2]}-8443s.app.localhost" got-inst.bin && cmp -s blob.bin got-inst.bin
ok $? "passthrough by instance id (-8443s): byte-exact"
fp() { openssl x509 -noout -fingerprint -sha256 | cut -d= -f2; }
seen_fp=$(ip netns exec "$GWNS" openssl s_client -connect 127.0.0.1:9204 \
	-servername "${INST[1]}-8443s.app.localhost" </dev/null 2>/dev/null | fp)
[ -n "$seen_fp" ] && [ "$seen_fp" = "$(fp <backend.crt)" ]
ok $? "passthrough: the client sees the app's certificate ($seen_fp)"
seen_fp=$(ip netns exec "$GWNS" openssl s_client -connect 127.0.0.1:9204 \
	-servername "${INST[1]}-8443.app.localhost" </dev/null 2>/dev/null | fp)
[ "$seen_fp" = "$(fp <certs/wildcard.crt)" ]
ok $? "without -s the gateway terminates with its wildcard certificate"

got=$(fetch "$APP-8081.app.localhost")
alive=$(fetch "${INST[2]}-8080.app.localhost")
[ -z "$got" ] && [ "$alive" = "hello from ${INST[2]}" ]
ok $? "port outside the policy is refused (and the gateway answers the next request: '$alive')"

# Failover 1: cvm1's servers die (its connects are refused); the candidate
# list still holds both (cvm1 keeps handshaking), the parallel connect to
# cvm2 wins every time.
kill "${SRV_PID[1]}" && wait "${SRV_PID[1]}" 2>/dev/null
SRV_PID[1]=
got=$(fetch "${INST[1]}-8080.app.localhost")
alive=$(fetch "${INST[2]}-8080.app.localhost")
[ -z "$got" ] && [ "$alive" = "hello from ${INST[2]}" ]
ok $? "cvm1's server stopped: by instance id no answer (cvm2's still answers)"
bad=0
for _ in $(seq 10); do
	got=$(fetch "$APP-8080.app.localhost")
	[ "$got" = "hello from ${INST[2]}" ] || bad=$((bad + 1))
done
[ $bad = 0 ]
ok $? "connect refused by cvm1: 10 of 10 requests by app id answered by cvm2 ($bad failed)"

# Failover 2: cvm1's WireGuard link goes down (connects to it are never
# answered); its last handshake is recent, so it stays a candidate, and cvm2
# still wins each race well inside the 5 s connect timeout.
ip -n "${NS[1]}" link set "${IF[1]}" down
bad=0 slow=0
for _ in $(seq 5); do
	t0=$(date +%s%N)
	got=$(fetch "$APP-8080.app.localhost")
	t1=$(date +%s%N)
	[ "$got" = "hello from ${INST[2]}" ] || bad=$((bad + 1))
	[ $(((t1 - t0) / 1000000)) -lt 4000 ] || slow=$((slow + 1))
done
[ $bad = 0 ] && [ $slow = 0 ]
ok $? "cvm1's WireGuard down: 5 of 5 requests by app id answered by cvm2, none waited for cvm1 ($bad failed, $slow slow)"
pass "$APP-8443s.app.localhost" got-fail.bin && cmp -s blob.bin got-fail.bin
ok $? "cvm1's WireGuard down: passthrough by app id byte-exact from cvm2"

if [ $fails != 0 ]; then
	echo "# gateway log:"
	sed 's/^/#   /' gateway.log | tail -40
fi
echo "1..$n"
[ $fails = 0 ]
