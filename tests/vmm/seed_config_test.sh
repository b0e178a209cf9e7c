#!/bin/bash
# seed_config_test.sh — the production vmm.toml of docs/vmm-operations.md
# ("A production vmm.toml needs nothing more than ...") starts as is in an empty
# directory and answers Version and GetMeta; and `dstack-vmm check-config`
# accepts it and refuses broken configs with a clear message.
#
# The config is read from the guide itself, so the guide and this test cannot
# drift. ONE line is rewritten: `address = "tcp:0.0.0.0:9080"` becomes a free
# loopback port (a fixed well-known port and a wildcard bind are not allowed
# on this shared machine). Everything else is used verbatim; nothing else is
# prepared in the directory (no run/, no supervisor, no images): HOME and
# XDG_RUNTIME_DIR point into the test directory so the default image/run
# paths and the discovery file stay inside it.
# usage: seed_config_test.sh <dstack-vmm> <docs/vmm-operations.md>
set -u
VMM=$1 GUIDE=$2
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
T=$(mktemp -d /tmp/vmm-seed-XXXXXX)
SV_PID_FILE=$T/fresh/run/supervisor.pid
trap finish EXIT
export HOME=$T XDG_RUNTIME_DIR=$T
unset DSTACK_VMM_URL
PORT=$(free_port 20000 4000)

# the fenced block after the guide's sentence
awk '/A production `vmm.toml` needs nothing more than/ {f = 1; next}
     f && /^```toml/ {in_block = 1; next}
     in_block && /^```/ {exit}
     in_block {print}' "$GUIDE" > "$T/guide.toml"
ok "the guide has the production vmm.toml with address tcp:0.0.0.0:9080" \
  "grep -qx 'address = \"tcp:0.0.0.0:9080\"' '$T/guide.toml' && grep -q '^\[key_provider\]' '$T/guide.toml'"

mkdir "$T/fresh"
sed "s|^address = \"tcp:0.0.0.0:9080\"\$|address = \"tcp:127.0.0.1:$PORT\"|" "$T/guide.toml" > "$T/fresh/vmm.toml"
ok "only the address line differs from the guide" \
  "[ \"\$(diff '$T/guide.toml' '$T/fresh/vmm.toml' | grep -c '^[<>]')\" = 2 ]"

cd "$T/fresh"
out=$("$VMM" -c vmm.toml check-config 2>&1); rc=$?
ok "check-config accepts the guide's config (exit 0, Config OK)" \
  "[ $rc = 0 ] && printf '%s' \"\$out\" | grep -q '^Config OK$'"
ok "check-config reports the CID range and port mapping" \
  "printf '%s' \"\$out\" | grep -q 'cid range = 30000..30999' && printf '%s' \"\$out\" | grep -q 'port_mapping = enabled'"
ok "check-config creates nothing" "[ \"\$(ls -A)\" = vmm.toml ]"

"$VMM" -c vmm.toml 2> "$T/vmm.log" & VPID=$!
ver="" meta=""
for _ in $(seq 150); do
  ver=$(curl -s --max-time 2 "http://127.0.0.1:$PORT/prpc/Version") && [ -n "$ver" ] && break
  kill -0 "$VPID" 2>/dev/null || break
  sleep 0.1
done
ok "dstack-vmm serve starts in the empty directory and answers Version 0.6.0" \
  "printf '%s' \"\$ver\" | python3 -c 'import json,sys; assert json.load(sys.stdin)[\"version\"] == \"0.6.0\"' 2>/dev/null"
[ -z "$ver" ] && sed 's/^/# /' "$T/vmm.log"
meta=$(curl -s --max-time 5 "http://127.0.0.1:$PORT/prpc/GetMeta")
ok "GetMeta reports the guide's KMS/gateway URLs and the CID pool size" \
  "printf '%s' \"\$meta\" | python3 -c '
import json, sys
m = json.load(sys.stdin)
assert m[\"kms\"][\"urls\"] == [\"https://kms.example:8000\"], m
assert m[\"gateway\"][\"urls\"] == [\"https://gateway.example:8000\"], m
assert m[\"resources\"][\"max_cvm_number\"] == 1000, m' 2>/dev/null"
ok "the supervisor runs from ./run (socket, pid file, log)" \
  "[ -S run/supervisor.sock ] && [ -s run/supervisor.pid ] && kill -0 \$(cat run/supervisor.pid) && [ -f run/supervisor.log ]"
ok "./run was created private (0700)" "[ \"\$(stat -c %a run)\" = 700 ]"
ok "the default run_path and image.path exist under HOME" \
  "[ -d '$T/.dstack-vmm/vm' ] && [ -d '$T/.dstack-vmm/image' ]"
ok "ListImages and Status answer on the fresh directories" \
  "curl -sf -d '{}' 'http://127.0.0.1:$PORT/prpc/ListImages?json' | grep -q '\"images\"' &&
   curl -sf -d '{}' 'http://127.0.0.1:$PORT/prpc/Status?json' | grep -q '\"total\": *0'"

# check-config refuses broken configs with the reason
check_bad() { # <name> <toml> <expected message fragment>
  printf '%s\n' "$2" > "$T/bad.toml"
  out=$("$VMM" -c "$T/bad.toml" check-config 2>&1); rc=$?
  ok "check-config refuses $1 (exit $rc): $3" "[ $rc != 0 ] && printf '%s' \"\$out\" | grep -qF -- '$3' && ! printf '%s' \"\$out\" | grep -q 'Config OK'"
}
check_bad "cid_start below 3" $'[cvm]\ncid_start = 1' "cvm.cid_start must be >= 3"
check_bad "an empty CID pool" $'[cvm]\ncid_pool_size = 0' "cvm.cid_pool_size must be > 0"
check_bad "a host_api address that is not vsock" $'[host_api]\naddress = "tcp:1.2.3.4"' "host_api.address must be vsock:<cid>"
check_bad "an unknown backend" $'[cvm]\nbackend = "xen"' "cvm.backend: expected auto, process or qemu"
check_bad "an unparsable address" 'address = "carrier-pigeon"' "address"
check_bad "a TOML syntax error" 'address = "tcp:127.0.0.1:1' "bad.toml"
out=$("$VMM" -c "$T/missing.toml" check-config 2>&1); rc=$?
ok "check-config refuses a missing -c file (exit $rc)" "[ $rc != 0 ] && printf '%s' \"\$out\" | grep -q missing.toml"
echo "1..$n"
