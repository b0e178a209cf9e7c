#!/bin/bash
# e2e.sh — dstack-gateway end to end through WireGuard (TAP).
#
# Two network namespaces created here and removed on exit: "gw" runs
# dstack-gateway (its WireGuard link, proxy and RPC), "cvm" plays a CVM. A
# veth pair joins them; nothing touches the host's own interfaces. The CVM
# registers over mTLS with a client certificate carrying its AppInfo
# (extension 1.3.6.1.4.1.62397.1.9, built here with openssl; no TEE, so the
# gateway runs with insecure_skip_attestation) and its port policy, brings up
# WireGuard (kernel, else wireguard-go) with the returned configuration and
# serves HTTP on its WireGuard address; then curl inside "gw" reaches it
# through the TLS proxy by app id and by instance id.
#
# Needs root, ip, wg, wireguard-go (or kernel WireGuard), python3, curl,
# openssl (scripts/deps/gateway-wg.txt); otherwise the test is skipped.
# Usage: e2e.sh <dstack-gateway>
set -u
GW_BIN=$(realpath "$1")
n=0
fails=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fails=$((fails + 1)); fi; }
skip_all() { echo "1..0 # SKIP $1"; exit 0; }

[ "$(id -u)" = 0 ] || skip_all "needs root"
for t in ip wg curl python3 openssl; do command -v $t >/dev/null || skip_all "needs $t"; done

tag=$$
GWNS=gwe2e-gw-$tag
CVMNS=gwe2e-cvm-$tag
GWIF=gwt$tag
CVMIF=cvm$tag
WORK=$(mktemp -d /tmp/gateway-e2e-XXXXXX)
GW_PID=
HTTP_PID=

cleanup() {
	[ -n "$GW_PID" ] && kill "$GW_PID" 2>/dev/null && wait "$GW_PID" 2>/dev/null
	[ -n "$HTTP_PID" ] && kill "$HTTP_PID" 2>/dev/null && wait "$HTTP_PID" 2>/dev/null
	for ns in "$GWNS" "$CVMNS"; do
		if ip netns list | grep -qw "$ns"; then
			# only processes inside the namespaces this test created (wireguard-go daemons)
			for p in $(ip netns pids "$ns" 2>/dev/null); do kill "$p" 2>/dev/null; done
			ip netns del "$ns" 2>/dev/null
		fi
	done
	rm -f "/var/run/wireguard/$GWIF.sock" "/var/run/wireguard/$CVMIF.sock"
	[ -z "${KEEP_TEST_DIR:-}" ] && rm -rf "$WORK"
}
trap cleanup EXIT

ip netns add "$GWNS" || skip_all "cannot create network namespaces"
ip netns add "$CVMNS"
ip link add veg$tag netns "$GWNS" type veth peer name vec$tag netns "$CVMNS"
ip -n "$GWNS" addr add 10.213.0.1/30 dev veg$tag
ip -n "$CVMNS" addr add 10.213.0.2/30 dev vec$tag
for ns in "$GWNS" "$CVMNS"; do ip -n "$ns" link set lo up; done
ip -n "$GWNS" link set veg$tag up
ip -n "$CVMNS" link set vec$tag up

# does WireGuard work at all here (kernel or wireguard-go)?
if ! ip -n "$CVMNS" link add $CVMIF type wireguard 2>/dev/null; then
	command -v wireguard-go >/dev/null || skip_all "no kernel WireGuard and no wireguard-go"
	ip netns exec "$CVMNS" env WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 wireguard-go $CVMIF >/dev/null 2>&1 ||
		skip_all "wireguard-go cannot create a TUN device"
fi

cd "$WORK" || exit 1
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
GW_PRIV=$(wg genkey)
GW_PUB=$(echo "$GW_PRIV" | wg pubkey)
CVM_PRIV=$(wg genkey)
CVM_PUB=$(echo "$CVM_PRIV" | wg pubkey)
(umask 077 && echo "$CVM_PRIV" >cvm.key)

cat >gateway.toml <<TOML
address = "0.0.0.0"
port = 9201
[tls]
key = "certs/gateway-rpc.key"
certs = "certs/gateway-rpc.crt"
[tls.mutual]
ca_certs = "certs/root-ca.crt"
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

APP=e2e0aa11bb22cc33dd44ee55ff6600778899aabb
INST=e2e1aa11bb22cc33dd44ee55ff6600778899aabb
# AppInfo as rmp-serde writes it: an array of 8 bin fields, wrapped in a DER OCTET STRING
APPINFO_DER=$(python3 - "$APP" "$INST" <<'PY'
import sys
app, inst = sys.argv[1], sys.argv[2]
fields = [app, "c0ffee", inst, "00" * 32, "00" * 32, "00" * 32, "", ""]
m = bytes([0x98]) + b"".join(bytes([0xC4, len(bytes.fromhex(f))]) + bytes.fromhex(f) for f in fields)
hdr = bytes([0x04, len(m)]) if len(m) < 128 else bytes([0x04, 0x81, len(m)])
print((hdr + m).hex())
PY
)
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout cvm-tls.key -out cvm.csr \
	-subj /CN=dstack-guest-agent 2>/dev/null
openssl x509 -req -in cvm.csr -CA certs/root-ca.crt -CAkey certs/root-ca.key -out cvm-tls.crt -days 2 \
	-extfile <(printf 'extendedKeyUsage=clientAuth\n1.3.6.1.4.1.62397.1.9=DER:%s\n' "$APPINFO_DER") 2>/dev/null
ok $? "CVM client certificate with an AppInfo extension"
REPLY=$(ip netns exec "$CVMNS" curl -sf --cacert certs/root-ca.crt --cert cvm-tls.crt --key cvm-tls.key \
	--resolve gateway.local:9201:10.213.0.1 https://gateway.local:9201/prpc/RegisterCvm?json \
	-H 'Content-Type: application/json' \
	-d "{\"client_public_key\":\"$CVM_PUB\",\"port_policy\":{\"restrict_mode\":true,\"ports\":[{\"port\":8080}]}}")
ok $? "CVM registers over mTLS from its namespace"
CLIENT_IP=$(echo "$REPLY" | python3 -c 'import json,sys; print(json.load(sys.stdin)["wg"]["client_ip"])')
SRV=$(echo "$REPLY" | python3 -c 'import json,sys; s=json.load(sys.stdin)["wg"]["servers"][0]; print(s["pk"], s["ip"].split("/")[0], s["endpoint"])')
read -r SRV_PK SRV_IP SRV_EP <<<"$SRV"
[ "$CLIENT_IP" = 10.0.0.2 ] && [ "$SRV_PK" = "$GW_PUB" ] && [ "$SRV_EP" = 10.213.0.1:9202 ]
ok $? "reply: client ip $CLIENT_IP, gateway $SRV_IP at $SRV_EP"

POLICY=$(ip netns exec "$GWNS" curl -sf -H 'Authorization: Bearer e2e-token' -H 'Content-Type: application/json' \
	--data "{\"instance_id\":\"$INST\"}" "http://127.0.0.1:9211/prpc/Admin.GetInstancePortPolicy?json")
echo "$POLICY" | grep -q '"source":"instance"' && echo "$POLICY" | grep -q '"port":8080'
ok $? "identity from the certificate, port policy from the request (8080 only)"

# the CVM side, as the guest would configure it
ip netns exec "$CVMNS" wg set $CVMIF private-key cvm.key listen-port 9182 \
	peer "$SRV_PK" allowed-ips "$SRV_IP/32" endpoint "$SRV_EP" persistent-keepalive 25
ip -n "$CVMNS" addr add "$CLIENT_IP/32" dev $CVMIF
ip -n "$CVMNS" link set $CVMIF up
ip -n "$CVMNS" route add "$SRV_IP/32" dev $CVMIF
mkdir www && echo "hello from $INST" >www/hello.txt
ip netns exec "$CVMNS" python3 -m http.server 8080 --bind "$CLIENT_IP" --directory www >http.log 2>&1 &
HTTP_PID=$!

hs=1
for _ in $(seq 100); do
	if ip netns exec "$GWNS" wg show "$GWIF" latest-handshakes | grep -q "$CVM_PUB	[1-9]"; then hs=0; break; fi
	sleep 0.2
done
ok $hs "WireGuard handshake between gateway and CVM"
grep -q "AllowedIPs = 10.0.0.2/32" wg/gw.conf
ok $? "gateway peer file lists the CVM"

fetch() { # host
	ip netns exec "$GWNS" curl -s --max-time 5 --cacert certs/wildcard.crt \
		--resolve "$1:9204:127.0.0.1" "https://$1:9204/hello.txt"
}
got=
for _ in $(seq 60); do
	got=$(fetch "$INST-8080.app.localhost")
	[ "$got" = "hello from $INST" ] && break
	sleep 0.5
done
[ "$got" = "hello from $INST" ]
ok $? "by instance id through the proxy: '$got'"
got=
for _ in $(seq 60); do # the app path needs a handshake the gateway has read (10 s timer)
	got=$(fetch "$APP-8080.app.localhost")
	[ "$got" = "hello from $INST" ] && break
	sleep 0.5
done
[ "$got" = "hello from $INST" ]
ok $? "by app id through the proxy: '$got'"
got=$(fetch "$APP-8081.app.localhost")
[ -z "$got" ]
ok $? "port outside the policy is refused"

STATUS=$(ip netns exec "$GWNS" curl -sf -H 'X-Admin-Token: e2e-token' "http://127.0.0.1:9211/prpc/Admin.Status?json")
echo "$STATUS" | python3 -c 'import json,sys; h=json.load(sys.stdin)["hosts"][0]; sys.exit(0 if h["latest_handshake"] > 0 else 1)'
ok $? "Admin.Status shows the CVM's last handshake"

if [ $fails != 0 ]; then
	echo "# gateway log:"
	sed 's/^/#   /' gateway.log | tail -40
fi
echo "1..$n"
[ $fails = 0 ]
