#!/usr/bin/env bash
# End-to-end: `dstack dev up` (KMS_AUTH=dev) in a scratch directory with its
# own ports, WireGuard interface and subnet; each component healthy; the
# example app through the gateway in the four URL forms (basic, custom port,
# TLS passthrough `s`, HTTP/2 `g`) with the encrypted GREETING decrypted
# inside the CVM; two instances load-balanced, each in a network namespace of
# its own; `dstack dev down` leaves no process, link or network namespace
# behind; `up` again reuses the state (same KMS root, same keys) and the app
# answers again. Then the refusals: no root (capabilities dropped) stops
# `up` before anything starts, and a gateway without a working WireGuard
# interface stops it as soon as the gateway answers.
#
# Missing programs fail the test on a CI machine (see lib.sh).
set -u
DSTACK=$1
SRC=$2
. "$SRC/tests/e2e/lib.sh"
e2e_start /tmp/dstack-e2e.XXXXXX
VETH=""
cleanup_extra() { [ -n "$VETH" ] && ip link del "$VETH" 2>/dev/null; }

require_or_skip dstack-kms dstack-gateway dstack-vmm dstack-util dstack-guest-agent wg ip curl openssl python3 lsns setpriv
if ! command -v wireguard-go >/dev/null && ! ip link add dsprobe$$ type wireguard 2>/dev/null; then
	require wireguard-go || {
		echo "1..0 # SKIP no WireGuard (kernel module or wireguard-go)"
		exit 0
	}
fi
ip link del dsprobe$$ 2>/dev/null

new_stack "$T" dev
GREETING="e2e-greeting-$RANDOM$RANDOM"
printf 'GREETING=%s\n' "$GREETING" >"$T/env"
UP_ARGS=(--dir "$T" --instances 2 --env-file "$T/env" --compose "$SRC/examples/hello/app-compose.json" --timeout 30 --app-timeout 90)

"$DSTACK" dev up "${UP_ARGS[@]}" >"$T/up.out" 2>&1
rc=$?
check "dev up exits 0" '[ $rc -eq 0 ]'
if [ $rc -ne 0 ]; then
	sed 's/^/# /' "$T/up.out"
	for v in "$T"/vmm/vm/*/; do
		[ -d "$v" ] && tail -20 "$v/stdout.log" "$v/stderr.log" 2>/dev/null | sed 's/^/# vm: /'
	done
fi
check "dev up generated the host configuration" '[ -f "$T/kms.toml" ] && [ -f "$T/gateway.toml" ] && [ -f "$T/vmm.toml" ]'
"$DSTACK" dev status --dir "$T" >"$T/status.out" 2>&1
for c in simtee kms-agent kms gateway-agent gateway vmm; do
	check "$c healthy in dev status" 'grep -Eq "^  $c +healthy" "$T/status.out"'
done
check "auth-simple not used with KMS_AUTH=dev" 'grep -Eq "^  auth-simple +not used" "$T/status.out"'
check "KMS bootstrapped its root keys (auto_bootstrap_domain)" '[ -f "$T/kms-certs/root-ca.key" ] && [ -f "$T/kms-certs/root-k256.key" ]'
check "gateway RPC certificate (from the KMS through its agent) chains to the KMS root for GATEWAY_DOMAIN" 'curl -sf --cacert "$T/kms-certs/root-ca.crt" --resolve gateway.localhost:$((BASE + 2)):127.0.0.1 https://gateway.localhost:$((BASE + 2))/health'
check "gateway proxy serves the wildcard certificate (gateway.<base>/health)" 'curl -sf --cacert "$T/certs/dev-ca.crt" --resolve gateway.app.localhost:$SERVE:127.0.0.1 https://gateway.app.localhost:$SERVE/health'
check "WireGuard interface $IFACE is up and listens on GATEWAY_WG_LISTEN_PORT" '[ "$(wg show $IFACE listen-port)" = $((BASE + 8)) ]'

APP=$("$DSTACK" app-id "$SRC/examples/hello/app-compose.json")
CA=(--cacert "$T/certs/dev-ca.crt")
out=$(app_get "$APP" "${CA[@]}")
check "basic URL <app_id>.<base> answers on port 80" 'grep -q "proto=http/1.1 port=80 " <<<"$out"'
check "the encrypted GREETING is decrypted inside the CVM" 'grep -q "GREETING=$GREETING" <<<"$out"'
out=$(app_get "$APP-8080" "${CA[@]}")
check "custom port <app_id>-8080" 'grep -q "port=8080 " <<<"$out"'
out=$(app_get "$APP-443s" -k)
check "TLS passthrough <app_id>-443s (the app terminates TLS)" 'grep -q "proto=https port=443 " <<<"$out"'
cert_cn=$(echo | openssl s_client -connect 127.0.0.1:$SERVE -servername "$APP-443s.app.localhost" 2>/dev/null | openssl x509 -noout -subject 2>/dev/null)
check "passthrough presents the app's own certificate" 'grep -q "CN *= *hello" <<<"$cert_cn"'
out=$(app_get "$APP-50051g" --http2 "${CA[@]}" -w " %{http_version}")
check "HTTP/2 <app_id>-50051g" 'grep -q "proto=h2 port=50051 " <<<"$out" && grep -q " 2$" <<<"$out"'
ids=$(for i in $(seq 1 30); do app_get "$APP" "${CA[@]}"; done | sed -n 's/^hello from \([0-9a-f]*\) .*/\1/p' | sort -u | wc -l)
check "two instances are load-balanced ($ids distinct instances answered)" '[ "$ids" -ge 2 ]'
check "each simulated CVM relays UDP to the gateway's WireGuard endpoint 127.0.0.1:$((BASE + 8))" \
	'[ "$(grep -l "relay udp 127.0.0.1:$((BASE + 8)) (WireGuard endpoint)" "$T"/vmm/vm/*/stdout.log | wc -l)" = 2 ]'
ADMIN=$(cat "$T/certs/gateway-admin.token")
check "gateway Status lists both instances of the app" '[ "$(curl -s -H "Authorization: Bearer $ADMIN" http://127.0.0.1:$((BASE + 3))/prpc/Status?json | python3 -c "import json,sys; print(sum(1 for h in json.load(sys.stdin)[\"hosts\"] if h[\"app_id\"]==sys.argv[1]))" "$APP")" = 2 ]'
check "dev status prints the app URLs" '"$DSTACK" dev status --dir "$T" | grep -q "https://$APP.app.localhost:$SERVE/"'
netns_run=$(stack_netns "$T")
check "the two CVMs run in network namespaces of their own ($(echo $netns_run))" '[ "$(echo "$netns_run" | grep -c .)" -ge 2 ]'
all_alive() { local ns; for ns in "$@"; do netns_alive "$ns" || return 1; done; }
check "the leftover-namespace check sees them while the stack runs" '[ -n "$netns_run" ] && all_alive $netns_run'

# down: nothing left behind
down_checks() { # label
	local pids left alive p stale ns
	pids=$(cat "$T"/run/*.pid 2>/dev/null | awk '{print $1}')
	"$DSTACK" dev down --dir "$T" --grace 3 >"$T/down.out" 2>&1
	rc=$?
	check "$1: dev down exits 0" '[ $rc -eq 0 ]'
	alive=""
	for p in $pids; do [ -d /proc/$p ] && ! grep -q '^State:.*Z' /proc/$p/status && alive="$alive $p"; done
	check "$1: no component process left (pids:$(echo $pids))" '[ -z "$alive" ]'
	left=$(for d in /proc/[0-9]*; do { tr '\0' ' ' <"$d/cmdline" | grep -F -- "$T" >/dev/null && ! grep -q '^State:.*Z' "$d/status" && echo "${d#/proc/}"; } 2>/dev/null; done)
	check "$1: no process refers to the state dir" '[ -z "$left" ]'
	check "$1: WireGuard interface removed" '! ip link show $IFACE >/dev/null 2>&1'
	stale=""
	for ns in $netns_run; do netns_alive "$ns" && stale="$stale $ns"; done
	check "$1: none of the CVMs' network namespaces is left (no process in it, no bind mount, not in lsns)" '[ -z "$stale" ]'
}
down_checks "first down"
check "state dir kept: keys and configs" '[ -f "$T/certs/gateway-wg.key" ] && [ -f "$T/kms.toml" ] && [ -f "$T/kms-certs/root-ca.key" ]'
"$DSTACK" dev status --dir "$T" >/dev/null 2>&1
rc=$?
check "dev status reports the stack down (exit 3)" '[ $rc -eq 3 ]'

# up again on the same state
root_before=$(sha256sum <"$T/kms-certs/root-ca.crt")
wg_before=$(sha256sum <"$T/certs/gateway-wg.key")
"$DSTACK" dev up "${UP_ARGS[@]}" --instances 1 >"$T/up2.out" 2>&1
rc=$?
check "dev up again after down exits 0" '[ $rc -eq 0 ]'
[ $rc -eq 0 ] || sed 's/^/# /' "$T/up2.out"
check "up again reuses the state: no new configs, same KMS root, same WireGuard key" 'grep -q "configs up to date" "$T/up2.out" && [ "$(sha256sum <"$T/kms-certs/root-ca.crt")" = "$root_before" ] && [ "$(sha256sum <"$T/certs/gateway-wg.key")" = "$wg_before" ]'
out=$(app_get "$APP" "${CA[@]}")
check "up again: the app answers with its GREETING" 'grep -q "proto=http/1.1 port=80 GREETING=$GREETING" <<<"$out"'
netns_run=$(stack_netns "$T")
check "up again: the CVM runs in a network namespace of its own" '[ -n "$netns_run" ]'
down_checks "second down"

# refusals
rm -rf "$T/np" && mkdir -p "$T/np"
out=$(setpriv --bounding-set -net_admin,-sys_admin "$DSTACK" dev up --dir "$T/np" 2>&1)
rc=$?
check "without root (CAP_NET_ADMIN, CAP_SYS_ADMIN dropped) dev up fails and says root is needed" '[ $rc -ne 0 ] && grep -q "needs root" <<<"$out"'
check "without root nothing was generated or started" '[ -z "$(ls -A "$T/np")" ]'
# A link of that name that is not WireGuard: the gateway uses it and answers,
# but no CVM could reach it.
VETH=$IFACE
if ip link add "$IFACE" type veth peer name "${IFACE}p" 2>/dev/null; then
	out=$("$DSTACK" dev up --dir "$T" --without vmm --timeout 30 2>&1)
	rc=$?
	check "a gateway without a working WireGuard interface fails dev up, naming the interface" '[ $rc -ne 0 ] && grep -q "WireGuard interface $IFACE is missing or not set up" <<<"$out"'
	"$DSTACK" dev down --dir "$T" --grace 2 >/dev/null 2>&1
else
	nok "could not create a veth pair to stand in for a broken WireGuard interface"
fi
echo "1..$n"
