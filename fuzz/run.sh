#!/bin/sh
# Run one libFuzzer harness for a fixed time on a scratch copy of its seed
# corpus, so fuzzing never writes into the source tree.
#   fuzz/run.sh <harness> <seconds> <seed-dir>
set -eu
exe=$1 secs=$2 seeds=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
[ -d "$seeds" ] && cp -r "$seeds"/. "$work"/ 2>/dev/null || true
exec "$exe" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
	-print_final_stats=1 -artifact_prefix="${FUZZ_ARTIFACTS:-/tmp}/" "$work"
