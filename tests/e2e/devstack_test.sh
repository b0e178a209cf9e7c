#!/usr/bin/env bash
# End-to-end: `dstack dev up` in a scratch directory with its own ports,
# WireGuard interface and subnet; each started component healthy; the example
# app through the gateway in the four URL forms (basic, custom port, TLS
# passthrough `s`, HTTP/2 `g`) with the encrypted GREETING decrypted inside
# the CVM; two instances load-balanced; `dstack dev down` leaves no process,
# link or network namespace behind.
#
# Programs not built in this tree (nor in $PATH) are skipped, so the test runs
# against whatever has been merged; each skip names the missing program.
set -u
DSTACK=$1
SRC=$2
BUILD=$(cd "$(dirname "$DSTACK")/.." && pwd)
T=$(mktemp -d /tmp/dstack-e2e.XXXXXX)
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); echo "not ok $n - $1"; }
skip() { n=$((n + 1)); echo "ok $n # SKIP $1"; }
check() { if eval "$2" >/dev/null 2>&1; then ok "$1"; else nok "$1"; fi; }
cleanup() {
	"$DSTACK" dev down --dir "$T" --grace 2 >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup EXIT

find_prog() { # name build-relative-path
	if [ -x "$BUILD/$2" ]; then echo "$BUILD/$2"; else command -v "$1"; fi
}
KMS=$(find_prog dstack-kms kms/dstack-kms)
GW=$(find_prog dstack-gateway gateway/dstack-gateway)
VMM=$(find_prog dstack-vmm vmm/dstack-vmm)
without=()
[ -n "$KMS" ] || without+=(--without kms --without gateway --without vmm)
[ -n "$GW" ] || without+=(--without gateway --without vmm)
[ -n "$VMM" ] || without+=(--without vmm)

# Ports, interface and subnet of our own, so parallel stacks do not collide.
# Below the kernel's ephemeral range (32768+), and free right now.
for try in 1 2 3 4 5 6 7 8 9 10; do
	r=$((RANDOM % 500))
	base=$((20000 + r * 20))
	busy=$(ss -Htaun 2>/dev/null | awk '{print $5}' | sed 's/.*://' | awk -v lo=$base -v hi=$((base + 9)) '$1 >= lo && $1 <= hi' | head -1)
	[ -z "$busy" ] && break
done
cat >"$T/build-config.sh" <<CFG
KMS_DOMAIN=kms.localhost
GATEWAY_DOMAIN=gateway.localhost
GATEWAY_PUBLIC_DOMAIN=app.localhost
BIND_IP=127.0.0.1
KMS_RPC_LISTEN_PORT=$((base + 1))
GATEWAY_RPC_LISTEN_PORT=$((base + 2))
GATEWAY_ADMIN_LISTEN_PORT=$((base + 3))
GATEWAY_SERVING_PORT=$((base + 4))
VMM_RPC_LISTEN_PORT=$((base + 5))
AUTH_LISTEN_PORT=$((base + 6))
SIMTEE_LISTEN_PORT=$((base + 7))
GATEWAY_WG_LISTEN_PORT=$((base + 8))
GATEWAY_WG_INTERFACE=dse2e$r
GATEWAY_WG_IP=10.$((200 + r % 50)).$((r % 250)).1
CID_POOL_START=$((20000 + r * 16))
CID_POOL_SIZE=16
KMS_AUTH=dev
CFG
GREETING="e2e-greeting-$RANDOM$RANDOM"
printf 'GREETING=%s\n' "$GREETING" >"$T/env"
SERVE=$((base + 4))
netns_before=$(ip netns list 2>/dev/null | sort)

"$DSTACK" dev up --dir "$T" --instances 2 --env-file "$T/env" --compose "$SRC/examples/hello/app-compose.json" \
	--timeout 30 --app-timeout 60 "${without[@]}" >"$T/up.out" 2>&1
rc=$?
check "dev up exits 0 (without: ${without[*]:-nothing})" '[ $rc -eq 0 ]'
if [ $rc -ne 0 ]; then
	sed 's/^/# /' "$T/up.out"
	for v in "$T"/vmm/vm/*/; do
		[ -d "$v" ] && tail -20 "$v/stdout.log" "$v/stderr.log" 2>/dev/null | sed 's/^/# vm: /'
	done
fi
check "dev up generated the host configuration" '[ -f "$T/kms.toml" ] && [ -f "$T/gateway.toml" ] && [ -f "$T/vmm.toml" ]'
"$DSTACK" dev status --dir "$T" >"$T/status.out" 2>&1
netns_during=$(ip netns list 2>/dev/null | sort)
check "simtee collateral service healthy" 'grep -Eq "^  simtee +healthy" "$T/status.out"'
for c in kms-agent kms gateway-agent gateway vmm; do
	if grep -q -- "--without ${c%-agent}" <<<"${without[*]:-}"; then
		skip "$c: program not built in $BUILD nor in \$PATH"
	else
		check "$c healthy in dev status" 'grep -Eq "^  $c +healthy" "$T/status.out"'
	fi
done
if [ -n "$KMS" ]; then
	check "KMS bootstrapped its root keys (auto_bootstrap_domain)" '[ -f "$T/kms-certs/root-ca.key" ] && [ -f "$T/kms-certs/root-k256.key" ]'
fi
if [ -n "$GW" ] && [ -n "$KMS" ]; then
	check "gateway RPC certificate (from the KMS through its agent) chains to the KMS root for GATEWAY_DOMAIN" 'curl -sf --cacert "$T/kms-certs/root-ca.crt" --resolve gateway.localhost:$((base + 2)):127.0.0.1 https://gateway.localhost:$((base + 2))/health'
	check "gateway proxy serves the wildcard certificate (gateway.<base>/health)" 'curl -sf --cacert "$T/certs/dev-ca.crt" --resolve gateway.app.localhost:$SERVE:127.0.0.1 https://gateway.app.localhost:$SERVE/health'
	check "WireGuard link $(sed -n 's/^GATEWAY_WG_INTERFACE=//p' "$T/build-config.sh") is up" '[ -e /sys/class/net/dse2e$r ]'
fi

app_tests=9
if [ -n "$VMM" ] && [ -n "$GW" ] && [ -n "$KMS" ]; then
	APP=$("$DSTACK" app-id "$SRC/examples/hello/app-compose.json")
	H=app.localhost
	get() { # host-prefix extra-curl-args...
		local h=$1
		shift
		curl -sS --max-time 10 --resolve "$h.$H:$SERVE:127.0.0.1" "$@" "https://$h.$H:$SERVE/"
	}
	out=$(get "$APP" --cacert "$T/certs/dev-ca.crt")
	check "basic URL <app_id>.<base> answers on port 80" 'grep -q "proto=http/1.1 port=80 " <<<"$out"'
	check "the encrypted GREETING is decrypted inside the CVM" 'grep -q "GREETING=$GREETING" <<<"$out"'
	out=$(get "$APP-8080" --cacert "$T/certs/dev-ca.crt")
	check "custom port <app_id>-8080" 'grep -q "port=8080 " <<<"$out"'
	out=$(get "$APP-443s" -k)
	check "TLS passthrough <app_id>-443s (the app terminates TLS)" 'grep -q "proto=https port=443 " <<<"$out"'
	cert_cn=$(echo | openssl s_client -connect 127.0.0.1:$SERVE -servername "$APP-443s.$H" 2>/dev/null | openssl x509 -noout -subject 2>/dev/null)
	check "passthrough presents the app's own certificate" 'grep -q "CN *= *hello" <<<"$cert_cn"'
	out=$(get "$APP-50051g" --http2 --cacert "$T/certs/dev-ca.crt" -w " %{http_version}")
	check "HTTP/2 <app_id>-50051g" 'grep -q "proto=h2 port=50051 " <<<"$out" && grep -q " 2$" <<<"$out"'
	ids=$(for i in $(seq 1 30); do get "$APP" --cacert "$T/certs/dev-ca.crt"; done | sed -n 's/^hello from \([0-9a-f]*\) .*/\1/p' | sort -u | wc -l)
	check "two instances are load-balanced ($ids distinct instances answered)" '[ "$ids" -ge 2 ]'
	T_ADMIN=$(cat "$T/certs/gateway-admin.token")
	wgport=$((base + 8))
	check "each simulated CVM relays UDP to the gateway's WireGuard endpoint 127.0.0.1:$wgport" \
		'[ "$(grep -l "relay udp 127.0.0.1:$wgport (WireGuard endpoint)" "$T"/vmm/vm/*/stdout.log | wc -l)" = 2 ]'
	check "gateway Status lists both instances of the app" '[ "$(curl -s -H "Authorization: Bearer $T_ADMIN" http://127.0.0.1:$((base + 3))/prpc/Status?json | python3 -c "import json,sys; print(sum(1 for h in json.load(sys.stdin)[\"hosts\"] if h[\"app_id\"]==sys.argv[1]))" "$APP")" = 2 ]'
	check "dev status prints the app URLs" '"$DSTACK" dev status --dir "$T" | grep -q "https://$APP.app.localhost:$SERVE/"'
else
	for i in $(seq 1 $app_tests); do
		skip "app through the gateway: needs dstack-kms, dstack-gateway and dstack-vmm (not built: ${without[*]})"
	done
fi

pids=$(cat "$T"/run/*.pid 2>/dev/null | awk '{print $1}')
"$DSTACK" dev down --dir "$T" --grace 3 >"$T/down.out" 2>&1
rc=$?
check "dev down exits 0" '[ $rc -eq 0 ]'
alive=""
for p in $pids; do [ -d /proc/$p ] && ! grep -q '^State:.*Z' /proc/$p/status && alive="$alive $p"; done
check "no component process left (pids:$(echo $pids))" '[ -z "$alive" ]'
left=$(for d in /proc/[0-9]*; do { tr '\0' ' ' <"$d/cmdline" | grep -F -- "$T" >/dev/null && ! grep -q '^State:.*Z' "$d/status" && echo "${d#/proc/}"; } 2>/dev/null; done)
check "no process refers to the state dir" '[ -z "$left" ]'
check "WireGuard link removed" '[ ! -e /sys/class/net/dse2e$r ]'
# Namespaces that appeared while the stack ran and still exist after down
# (other tests on this host may create their own: a namespace must have
# existed during our run and survive a few seconds after down to count).
sleep 2
stale=$(comm -12 <(comm -13 <(echo "$netns_before") <(echo "$netns_during")) <(ip netns list 2>/dev/null | sort))
check "no network namespace left behind${stale:+ ($stale)}" '[ -z "$stale" ]'
check "state dir reusable: keys and configs kept" '[ -f "$T/certs/gateway-wg.key" ] && [ -f "$T/kms.toml" ]'
"$DSTACK" dev status --dir "$T" >/dev/null 2>&1
rc=$?
check "dev status reports the stack down (exit 3)" '[ $rc -eq 3 ]'
echo "1..$n"
