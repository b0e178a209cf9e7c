#!/bin/sh
# install-sdk.sh DIR — installs the official JS SDK (@phala/dstack-sdk) and
# the @noble packages it requires at load time into DIR/node_modules, once.
# Prints nothing on success; on failure prints npm's log as TAP comments and
# exits 1. Used by the SDK tests of the guest agent (simulator mode) and of a
# booted simulated CVM.
set -u
SDK=$1
[ -f "$SDK/node_modules/@phala/dstack-sdk/package.json" ] && [ -f "$SDK/node_modules/@noble/curves/package.json" ] && exit 0
command -v npm >/dev/null || { echo "# npm not found: install npm (scripts/deps/guest.txt)"; exit 1; }
mkdir -p "$SDK" || exit 1
cd "$SDK" || exit 1
[ -f package.json ] || echo '{"private":true}' >package.json
if ! npm install --no-audit --no-fund --loglevel=error @phala/dstack-sdk "@noble/curves@^1.8.1" "@noble/hashes@^1.6.1" >npm.log 2>&1; then
	sed 's/^/# /' npm.log
	echo "# npm could not install @phala/dstack-sdk (is the npm registry reachable?)"
	exit 1
fi
