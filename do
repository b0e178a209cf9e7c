#!/usr/bin/env bash
# ./do — the one entry point for a newcomer (see README).
#
#   ./do up      install dependencies, build, start the local dev stack
#   ./do test    install dependencies, build (ASan+UBSan), run every test
#                and each fuzz harness for FUZZ_SECONDS (30; SKIP_FUZZ=1 skips)
#   ./do deps    install Debian packages only
#   ./do build   build release (build/) and sanitizer (build-asan/) trees
#   ./do fuzz [SECONDS]  build the libFuzzer harnesses with clang and run each
#   ./do down    stop the dev stack
set -euo pipefail
cd "$(dirname "$0")"

# Debian 12 packages: toolchain, libraries, and the real peers tests talk to.
DEB_PACKAGES=(
	build-essential meson ninja-build pkg-config clang libclang-rt-14-dev
	libssl-dev libevent-dev libcurl4-openssl-dev libjansson-dev libsecp256k1-dev
	libprotobuf-c-dev protobuf-c-compiler libsqlite3-dev zlib1g-dev libsodium-dev
	curl openssl python3 iproute2 procps clang-format
)

# Components add their own packages (real peers, benchmark baselines) as one
# package per line in scripts/deps/<area>.txt.
for f in scripts/deps/*.txt; do
	[ -f "$f" ] || continue
	while read -r p _; do
		case "$p" in "" | "#"*) ;; *) DEB_PACKAGES+=("$p") ;; esac
	done <"$f"
done

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

deps() {
	local missing=()
	for p in "${DEB_PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	# npm: bundled with some nodejs builds; Debian's own nodejs needs the npm package.
	if ! command -v npm >/dev/null 2>&1; then missing+=(npm); fi
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "==> installing: ${missing[*]}"
	as_root apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# Components join the build when their meson.build exists, which meson cannot
# watch for; so an existing build tree is always reconfigured (about a second).
setup() {
	local dir=$1
	shift
	if [ -f "$dir/build.ninja" ]; then
		meson setup --reconfigure "$dir" >/dev/null
	else
		meson setup "$dir" "$@"
	fi
}

build() {
	setup build --buildtype=release -Db_ndebug=false
	ninja -C build
}

build_asan() {
	setup build-asan --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false
	ninja -C build-asan
}

run_tests() {
	build
	build_asan
	local rc=0
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		meson test -C build-asan --no-rebuild --print-errorlogs --num-processes 2 \
		--no-suite fuzz "$@" >build-asan/test-output.txt 2>&1 || rc=$?
	grep -E "^ *[0-9]+/[0-9]+ " build-asan/test-output.txt || true
	[ $rc -eq 0 ] || tail -n 80 build-asan/test-output.txt
	local logs=(build-asan/meson-logs/testlog.json)
	if [ "${SKIP_FUZZ:-0}" != 1 ]; then
		fuzz_run "${FUZZ_SECONDS:-30}"
		[ ! -f build-fuzz/meson-logs/testlog.json ] || logs+=(build-fuzz/meson-logs/testlog.json)
	fi
	python3 scripts/test-summary.py "${logs[@]}"
}

fuzz_run() {
	local secs=${1:-30}
	# -Werror is enforced by the gcc release build; clang-only warnings in the
	# fuzz build are shown but do not stop fuzzing.
	CC=clang setup build-fuzz --buildtype=debug -Dwerror=false \
		-Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false -Dfuzz_seconds="$secs"
	meson configure build-fuzz -Dfuzz_seconds="$secs"
	ninja -C build-fuzz
	rm -f build-fuzz/meson-logs/testlog.json
	meson introspect build-fuzz --tests | grep -q ':fuzz"' || return 0
	meson test -C build-fuzz --no-rebuild --suite fuzz --num-processes 2 \
		>build-fuzz/test-output.txt 2>&1 || tail -n 60 build-fuzz/test-output.txt
	grep -E "^ *[0-9]+/[0-9]+ " build-fuzz/test-output.txt || true
}

case "${1:-help}" in
deps) deps ;;
build) deps; build; build_asan ;;
test) shift; deps; run_tests "$@" ;;
fuzz) shift; deps; fuzz_run "$@"; python3 scripts/test-summary.py build-fuzz/meson-logs/testlog.json ;;
up) deps; build; exec build/dstack/dstack dev up "${@:2}" ;;
down) exec build/dstack/dstack dev down ;;
*) sed -n '2,12p' "$0"; exit 2 ;;
esac
