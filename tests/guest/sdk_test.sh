#!/bin/sh
# sdk_test.sh — the official JS SDK against dstack-guest-agent --simulator.
# Installs @phala/dstack-sdk and the @noble packages it requires at load time
# into the build dir (tests/support/install-sdk.sh, once), starts two agents
# on the testdata simulator files and runs sdk_test.js (TAP):
#   A: the fixture as is (public_tcbinfo/sysinfo/logs on), Worker on TCP,
#      DMI values of its own;
#   B: the same app with public_tcbinfo/sysinfo/logs off and a GPU
#      attestation file (agent.json), Worker on TCP.
# Env: AGENT (binary), DSTACK (the CLI, for `dstack verify`), TESTDATA (shared/testdata/dstack), WORK (build dir).
set -u
fail() { echo "not ok 1 - $*"; echo "1..1"; exit 1; }
command -v node >/dev/null || fail "node not found: install nodejs and npm (scripts/deps/guest.txt)"
command -v npm >/dev/null || fail "npm not found: install npm (scripts/deps/guest.txt)"
SDK="$WORK/sdk"
"$(dirname "$0")/../support/install-sdk.sh" "$SDK" || fail "npm could not install @phala/dstack-sdk"
DIR=$(mktemp -d)
PID=
PID2=
trap 'for p in $PID $PID2; do kill $p 2>/dev/null; wait $p 2>/dev/null; done; rm -rf "$DIR"' EXIT
A="$DIR/a"
B="$DIR/b"
mkdir -p "$A/dmi" "$B"
for f in appkeys app-compose sys-config; do cp "$TESTDATA/simulator-$f.json" "$A/"; done
cp "$TESTDATA/simulator-attestation.bin" "$A/"
printf 'dstack-test-vendor\n' >"$A/dmi/sys_vendor"
printf 'dstack-test-product\n' >"$A/dmi/product_name"
cp "$A"/simulator-* "$B/"
node -e '
const fs = require("fs"), f = process.argv[1];
const c = JSON.parse(fs.readFileSync(f));
Object.assign(c, { public_tcbinfo: false, public_sysinfo: false, public_logs: false });
fs.writeFileSync(f, JSON.stringify(c));' "$B/simulator-app-compose.json" || fail "could not write B's compose"
printf 'gpu evidence \001\002 verbatim\n' >"$B/gpu.out"
printf '{"gpu_attestation_file": "%s/gpu.out"}\n' "$B" >"$B/agent.json"

"$AGENT" --simulator "$A" --external tcp:127.0.0.1:0 >"$A/agent.log" 2>&1 &
PID=$!
"$AGENT" -c "$B/agent.json" --simulator "$B" --external tcp:127.0.0.1:0 \
	>"$B/agent.log" 2>&1 &
PID2=$!
# The Worker's port, as the agent logged it ("listening on tcp:… (port N)").
worker_port() { sed -n 's/.*listening on tcp:127\.0\.0\.1:0 (port \([0-9]*\)).*/\1/p' "$1/agent.log"; }
i=0
while [ ! -S "$A/dstack.sock" ] || [ ! -S "$A/tappd.sock" ] || [ ! -S "$B/dstack.sock" ] ||
	[ -z "$(worker_port "$A")" ] || [ -z "$(worker_port "$B")" ]; do
	i=$((i + 1))
	[ $i -gt 300 ] && { sed 's/^/# A: /' "$A/agent.log"; sed 's/^/# B: /' "$B/agent.log"; fail "agents did not start"; }
	sleep 0.1
done
SIMTEE_DIR="$A/simtee" DSTACK="$DSTACK" APPKEYS="$A/simulator-appkeys.json" \
	SYS_CONFIG="$A/simulator-sys-config.json" \
	WORKER_URL="http://127.0.0.1:$(worker_port "$A")" WORKER_B_URL="http://127.0.0.1:$(worker_port "$B")" \
	DSTACK_B_SOCK="$B/dstack.sock" GPU_FILE="$B/gpu.out" \
	DSTACK_SIMULATOR_ENDPOINT="$A/dstack.sock" TAPPD_SIMULATOR_ENDPOINT="$A/tappd.sock" \
	NODE_PATH="$SDK/node_modules" node "$(dirname "$0")/sdk_test.js" 2>"$DIR/node.err"
rc=$?
[ $rc -ne 0 ] && { sed 's/^/# /' "$DIR/node.err"; sed 's/^/# agent: /' "$A/agent.log" | tail -20; }
exit $rc
