#!/usr/bin/env bash
# txt_system_test.sh — the TXT self-check through the system resolver
# (glibc res_nquery and /etc/resolv.conf), not only through a given server:
# in a private network and mount namespace, pebble-challtestsrv answers on
# 127.0.0.1:53 and a bind-mounted resolv.conf points there.
#
# Usage: txt_system_test.sh TXT_PROBE_BINARY   (TAP on stdout)
set -uo pipefail
PROBE=$(realpath "$1")
if ! command -v pebble-challtestsrv >/dev/null || ! command -v unshare >/dev/null; then
	echo "1..0 # SKIP pebble-challtestsrv or unshare missing"
	exit 0
fi
T=$(mktemp -d /tmp/txt-system-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
echo "nameserver 127.0.0.1" >"$T/resolv.conf"
# Everything below runs in the namespaces; it prints the TAP lines itself.
unshare --net --mount --fork bash -s "$PROBE" "$T" <<'INNER'
set -uo pipefail
PROBE=$1 T=$2 n=0
ok() { n=$((n + 1)); if eval "$2" >&2; then echo "ok $n - $1"; else echo "not ok $n - $1"; fi; }
ip link set lo up || { echo "1..0 # SKIP cannot bring up lo in a network namespace"; exit 0; }
mount --bind "$T/resolv.conf" /etc/resolv.conf || { echo "1..0 # SKIP cannot bind-mount resolv.conf"; exit 0; }
pebble-challtestsrv -dns01 127.0.0.1:53 -management 127.0.0.1:8055 -http01 "" -https01 "" -tlsalpn01 "" \
	>"$T/cts.log" 2>&1 &
CTS=$!
trap 'kill $CTS 2>/dev/null; wait $CTS 2>/dev/null' EXIT
for _ in $(seq 100); do curl -s http://127.0.0.1:8055/ >/dev/null && break; sleep 0.1; done
curl -s -X POST -d '{"host":"_acme-challenge.sys.example.","value":"sys-value-1"}' http://127.0.0.1:8055/set-txt
ok "system resolver: the TXT value set in the DNS server is found" \
	'[ "$("$PROBE" "" _acme-challenge.sys.example)" = sys-value-1 ]'
# challtestsrv's NODATA replies carry neither RA nor AA, which glibc takes for
# a lame server (an error); a recursive resolver sets RA. Either way the
# self-check sees no value, which is what these two checks hold to.
ok "system resolver: a name without TXT records gives no value" \
	'out=$("$PROBE" "" nothing-here.sys.example 2>/dev/null); [ -z "$out" ]'
ok "given server: a name without TXT records is an empty answer, not an error" \
	'out=$("$PROBE" 127.0.0.1:53 nothing-here.sys.example) && [ -z "$out" ]'
ok "given server: the same value through the hand-built UDP query" \
	'[ "$("$PROBE" 127.0.0.1:53 _acme-challenge.sys.example)" = sys-value-1 ]'
curl -s -X POST -d '{"host":"_acme-challenge.sys.example."}' http://127.0.0.1:8055/clear-txt
ok "after clear-txt the value is gone" 'out=$("$PROBE" "" _acme-challenge.sys.example 2>/dev/null); [ -z "$out" ]'
ok "a server that does not answer is an error" \
	'! "$PROBE" 127.0.0.1:9 _acme-challenge.sys.example 2>$T/err && grep -q "did not answer\|refused" $T/err'
echo "1..$n"
INNER
