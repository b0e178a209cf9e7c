#!/usr/bin/env bash
# The walkthroughs of README.md and docs/dev-stack.md, run as written: every
# fenced ```sh block of the file, in order, as one bash script (set -e), in a
# scratch HOME, with the default ports and WireGuard interface replaced by
# free ones (lib.sh) and the build tree the doc names replaced by this test's. Blocks whose first line is
# "# only with KMS_AUTH=webhook" run only in webhook mode. The doc's own
# commands start every component by hand, deploy the example app with
# `dstack vmm deploy`, reach it in the four URL forms and stop the stack with
# `dstack dev down`; the test checks the app's four answers in their output
# and that nothing is left running.
#
# usage: walkthrough_test.sh <dstack> <source dir> <doc relative to source> <dev|webhook>
set -u
DSTACK=$1
SRC=$2
DOC=$3
MODE=$4
. "$SRC/tests/e2e/lib.sh"
e2e_start /tmp/dstack-walk.XXXXXX home/dstack-dev
W=$STACK

require_or_skip dstack-kms dstack-gateway dstack-vmm auth-simple dstack-util dstack-guest-agent wg ip curl python3

# The state dir the doc uses (~/dstack-dev) with our ports; `dstack hostcfg`
# then generates from it instead of writing the defaults.
mkdir -p "$W"
new_stack "$W" "$MODE"

# The script: the doc's ```sh blocks (indented ones in lists too).
python3 - "$SRC/$DOC" "$MODE" >"$T/walk.sh" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
mode = sys.argv[2]
out = ["set -e"]
for m in re.finditer(r"^( *)```sh\n(.*?)^\1```", text, re.S | re.M):
    ind = len(m.group(1))
    lines = [l[ind:] for l in m.group(2).splitlines()]
    if lines and lines[0].strip() == "# only with KMS_AUTH=webhook" and mode != "webhook":
        continue
    out.append("echo '#### block %d'" % (len(out)))
    out += lines
print("\n".join(out))
PY
blocks=$(grep -c '^echo .#### block' "$T/walk.sh")
ports=(9201:$((BASE + 1)) 9202:$((BASE + 2)) 9203:$((BASE + 3)) 9204:$SERVE 9080:$((BASE + 5)) 9205:$((BASE + 6)) 9206:$((BASE + 7)) 9207:$((BASE + 8)))
for pp in "${ports[@]}"; do
	sed -i "s/\b${pp%%:*}\b/${pp##*:}/g" "$T/walk.sh"
done
sed -i "s/\bdstack-wg0\b/$IFACE/g" "$T/walk.sh"
# The doc puts $DSTACK_SRC/build/... on PATH: this test's build tree instead
# (build-asan/ under ./do test).
sed -i "s#\$DSTACK_SRC/build/#$BUILD/#g" "$T/walk.sh"
check "$DOC has runnable command blocks ($blocks)" '[ "$blocks" -ge 5 ]'

# Run it from the checkout, as the doc says, with a HOME of our own (the
# doc writes ~/dstack-dev and ~/.dstack-vmm).
(cd "$SRC" && HOME=$T/home timeout 400 bash "$T/walk.sh") >"$T/walk.out" 2>&1 </dev/null
rc=$?
check "every command of the $DOC walkthrough succeeds ($MODE auth)" '[ $rc -eq 0 ]'
if [ $rc -ne 0 ]; then
	tail -40 "$T/walk.out" | sed 's/^/# /'
	for f in "$W"/*.log "$W"/logs/*.log; do [ -f "$f" ] && tail -5 "$f" | sed "s|^|# $(basename "$f"): |"; done
fi
out=$(cat "$T/walk.out")
check "the app answered on port 80 with its decrypted GREETING" 'grep -q "proto=http/1.1 port=80 GREETING=hello from an encrypted env" <<<"$out"'
check "... on the custom port 8080" 'grep -q "proto=http/1.1 port=8080 " <<<"$out"'
check "... through TLS passthrough" 'grep -q "proto=https port=443 " <<<"$out"'
check "... over HTTP/2" 'grep -q "proto=h2 port=50051 " <<<"$out"'
check "the gateway log had the app's RegisterCvm" 'grep -q "registered instance .* of app " <<<"$out"'
check "wg show printed the gateway's WireGuard port" 'grep -qE "^(OK)?$((BASE + 8))$" <<<"$out"'
if [ "$MODE" = webhook ]; then
	check "webhook: auth-simple ran and the app was allowed in auth-config.json" 'grep -q "auth-config.json allows the app" <<<"$out" && grep -q "auth-config.json allows the KMS" <<<"$out"'
fi
left=$(for d in /proc/[0-9]*; do
	{
		case "$(readlink "$d/cwd")" in "$T"/*) ;; *) tr '\0' ' ' <"$d/cmdline" | grep -qF -- "$T" || continue ;; esac
		grep -q '^State:.*Z' "$d/status" || echo "${d#/proc/}"
	} 2>/dev/null
done)
check "the doc's dstack dev down left no process of the stack" '[ -z "$left" ]'
check "... and removed the WireGuard interface" '! ip link show "$IFACE" >/dev/null 2>&1'
echo "1..$n"
