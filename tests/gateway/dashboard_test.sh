#!/bin/bash
# dashboard_test.sh — the gateway admin dashboard in a real browser: starts
# dstack-gateway on loopback (no WireGuard link; certificates made here with
# openssl), registers two CVMs through the Debug service, holds one TLS
# connection open through the proxy (insecure_localhost_backend to a local
# HTTP server), then runs dashboard_test.js in headless Chromium.
# usage: dashboard_test.sh <dstack-gateway> <build-dir>
set -u
GW=$(realpath "$1") OUT=$(realpath "$2")
HERE=$(cd "$(dirname "$0")" && pwd)
skip_all() { echo "1..0 # SKIP $1"; exit 0; }
[ -x /usr/bin/chromium ] && command -v node >/dev/null || skip_all "chromium or node not installed (scripts/deps/vmm-web.txt)"
for t in openssl wg curl python3; do command -v $t >/dev/null || skip_all "needs $t"; done
PW=""
for d in "${NODE_PATH:-}" "$OUT/node_modules" "$OUT/../vmm/node_modules" /usr/lib/node_modules; do
	[ -n "$d" ] && [ -d "$d/playwright-core" ] && PW=$d && break
done
if [ -z "$PW" ]; then
	(cd "$OUT" && npm install --no-save --silent playwright-core@1 >/dev/null 2>&1) && PW=$OUT/node_modules
fi
[ -n "$PW" ] && [ -d "$PW/playwright-core" ] || skip_all "playwright-core not available (npm install playwright-core)"

T=$(mktemp -d /tmp/gw-dash-XXXXXX)
cleanup() {
	for p in ${GPID:-} ${HPID:-} ${SPID:-}; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RPC=$(free_port) ADMIN=$(free_port) DEBUG=$(free_port) PROXY=$(free_port) BACK=$(free_port)
TOKEN=dash-$RANDOM$RANDOM

# Certificates: a CA, the RPC certificate and the wildcard for the proxy.
cd "$T" || exit 1
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=test-ca \
	-keyout ca.key -out ca.crt 2>/dev/null
for n in rpc:gateway.local wild:*.app.localhost; do
	f=${n%%:*} cn=${n#*:}
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$cn" \
		-keyout $f.key -out $f.csr 2>/dev/null
	printf 'subjectAltName=DNS:%s\n' "$cn" >$f.ext
	openssl x509 -req -in $f.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
		-extfile $f.ext -out $f.crt 2>/dev/null
done
umask 077
wg genkey >gw.key
umask 022
cat >gateway.toml <<TOML
port = $RPC
[tls]
key = "$T/rpc.key"
certs = "$T/rpc.crt"
[tls.mutual]
ca_certs = "$T/ca.crt"
mandatory = false
[core]
rpc_domain = "gateway.local"
[core.sync]
data_dir = "$T/state"
[core.wg]
interface = ""
config_path = "$T/wg0.conf"
private_key = "$(cat gw.key)"
public_key = "$(wg pubkey <gw.key)"
ip = "10.77.0.1/24"
client_ip_range = "10.77.0.0/24"
reserved_net = ["10.77.0.1/32"]
listen_port = 9
[core.proxy]
cert_chain = "$T/wild.crt"
cert_key = "$T/wild.key"
base_domain = "app.localhost"
listen_addr = "127.0.0.1"
listen_port = $PROXY
workers = 1
[core.debug]
insecure_enable_debug_rpc = true
insecure_skip_attestation = true
insecure_localhost_backend = true
address = "127.0.0.1:$DEBUG"
[core.admin]
enabled = true
address = "127.0.0.1:$ADMIN"
auth_token = "$TOKEN"
TOML
chmod 600 gateway.toml
"$GW" -c "$T/gateway.toml" >gw.log 2>&1 &
GPID=$!
for _ in $(seq 100); do
	curl -s -o /dev/null "http://127.0.0.1:$DEBUG/prpc/Info" && break
	kill -0 $GPID 2>/dev/null || break
	sleep 0.1
done
reg() { # app instance
	curl -sf -X POST -H 'Content-Type: application/json' "http://127.0.0.1:$DEBUG/prpc/RegisterCvm?json" \
		-d "{\"client_public_key\":\"$(wg genkey | wg pubkey)\",\"app_id\":\"$1\",\"instance_id\":\"$2\"}" >/dev/null
}
if ! reg aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 1111111111111111111111111111111111111111 ||
	! reg bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb 2222222222222222222222222222222222222222; then
	echo "not ok 1 - Debug RegisterCvm failed"
	sed 's/^/# /' gw.log
	echo "1..1"
	exit 1
fi
# A live connection: TLS through the proxy to a local HTTP server, held open.
python3 -m http.server "$BACK" --bind 127.0.0.1 >/dev/null 2>&1 &
HPID=$!
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$BACK/" && break; sleep 0.1; done
(sleep 60 | openssl s_client -quiet -connect "127.0.0.1:$PROXY" -servername "localhost-$BACK.app.localhost" \
	-CAfile ca.crt >/dev/null 2>&1) &
SPID=$!
NODE_PATH=$PW node "$HERE/dashboard_test.js" "http://127.0.0.1:$ADMIN" "$TOKEN" "$OUT/gateway-dashboard.png"
rc=$?
[ $rc -eq 0 ] || sed 's/^/# gateway: /' gw.log
pkill -P "$SPID" 2>/dev/null
exit $rc
