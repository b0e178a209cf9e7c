#!/bin/sh
# sdk_test.sh — the official JS SDK against dstack-guest-agent --simulator.
# Installs @phala/dstack-sdk and the @noble packages it requires at load time
# into the build dir (tests/support/install-sdk.sh, once), starts the agent
# on the testdata simulator files and runs sdk_test.js (TAP).
# Env: AGENT (binary), DSTACK (the CLI, for `dstack verify`), TESTDATA (shared/testdata/dstack), WORK (build dir).
set -u
fail() { echo "not ok 1 - $*"; echo "1..1"; exit 1; }
command -v node >/dev/null || fail "node not found: install nodejs and npm (scripts/deps/guest.txt)"
command -v npm >/dev/null || fail "npm not found: install npm (scripts/deps/guest.txt)"
SDK="$WORK/sdk"
"$(dirname "$0")/../support/install-sdk.sh" "$SDK" || fail "npm could not install @phala/dstack-sdk"
DIR=$(mktemp -d)
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DIR"' EXIT
for f in appkeys app-compose sys-config; do cp "$TESTDATA/simulator-$f.json" "$DIR/"; done
cp "$TESTDATA/simulator-attestation.bin" "$DIR/"
"$AGENT" --simulator "$DIR" >"$DIR/agent.log" 2>&1 &
PID=$!
i=0
while [ ! -S "$DIR/dstack.sock" ] || [ ! -S "$DIR/tappd.sock" ]; do
	i=$((i + 1))
	[ $i -gt 300 ] && { sed 's/^/# /' "$DIR/agent.log"; fail "agent did not start"; }
	sleep 0.1
done
SIMTEE_DIR="$DIR/simtee" DSTACK="$DSTACK" \
	DSTACK_SIMULATOR_ENDPOINT="$DIR/dstack.sock" TAPPD_SIMULATOR_ENDPOINT="$DIR/tappd.sock" \
	NODE_PATH="$SDK/node_modules" node "$(dirname "$0")/sdk_test.js" 2>"$DIR/node.err"
rc=$?
[ $rc -ne 0 ] && { sed 's/^/# /' "$DIR/node.err"; sed 's/^/# agent: /' "$DIR/agent.log" | tail -20; }
exit $rc
