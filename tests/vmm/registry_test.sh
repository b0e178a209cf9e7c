#!/bin/bash
# registry_test.sh — ListRegistryImages, PullRegistryImage and DeleteImage of
# a real dstack-vmm against fake_registry.py (an OCI distribution registry:
# Bearer token challenge, paged tag list, index/OCI/Docker manifests, blobs
# redirected to another host). Checks the listing (sha256-* hidden, local and
# pulling flags), a background pull that lands as image.path/dstack-<tag> and
# is listed by ListImages (pax and GNU long names, whiteouts, links not
# created, the amd64 entry of an index), and pulls that must fail cleanly:
# no metadata.json, wrong digest, `..` in a layer, zstd layer, bad tag,
# already present. Also: without [image] registry both methods say so.
# usage: registry_test.sh <dstack-vmm> <supervisor> <fake_registry.py>
set -u
VMM=$1 SV=$2 FAKE=$3
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
T=$(mktemp -d /tmp/vmm-registry-XXXXXX)
trap finish EXIT
export HOME=$T XDG_RUNTIME_DIR=$T NO_PROXY='*' no_proxy='*'
# the fake registry answers on 127.0.0.1 and (blob storage) 127.0.0.2
RP=$(free_port 20000 4000 127.0.0.1 127.0.0.2)
AP=$(free_port 20000 4000)
while [ "$AP" = "$RP" ]; do AP=$(free_port 20000 4000); done
VMM_API=http://127.0.0.1:$AP
python3 "$FAKE" "$RP" "$T/registry.log" 2> "$T/registry.err" & PIDS+=($!)
mkdir -p "$T/img"
cat > "$T/vmm.toml" <<TOML
address = "tcp:127.0.0.1:$AP"
run_path = "$T/run"
[image]
path = "$T/img"
registry = "127.0.0.1:$RP/dstack/guest"
[cvm]
backend = "process"
$(supervisor_toml)
TOML
start_vmm() {
  "$VMM" -c "$T/vmm.toml" 2>> "$T/vmm.log" & VPID=$!
  wait_for 10 curl -sf -o /dev/null "$VMM_API/prpc/Version"
}
code() { curl -s -o "$T/reply" -w '%{http_code}' --max-time 30 -H 'Content-Type: application/json' -d "$2" "$VMM_API/prpc/$1?json"; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(next((i[\"$2\"] for i in d['images'] if i['tag']=='$1'), 'absent'))" 2>/dev/null; }
wait_pulled() { # tag → waits until not pulling (≤ 30 s)
  for _ in $(seq 150); do
    [ "$(rpc ListRegistryImages | field "$1" pulling)" = False ] && return 0
    sleep 0.2
  done
  return 1
}
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$RP/v2/" && break; sleep 0.1; done
ok "dstack-vmm serve is up" "start_vmm"

L=$(rpc ListRegistryImages)
ok "ListRegistryImages lists the registry's tags across pages (token challenge answered)" \
  "printf '%s' '$L' | python3 -c 'import json,sys; t=[i[\"tag\"] for i in json.load(sys.stdin)[\"images\"]]; assert t == [\"0.5.9\",\"0.5.9-docker\",\"badsum\",\"evil\",\"nometa\",\"zstd\"], t'"
ok "sha256-* tags are not listed" "! printf '%s' '$L' | grep -q sha256-"
ok "nothing is local or pulling yet" "[ \"\$(printf '%s' '$L' | field 0.5.9 local)\" = False ] && [ \"\$(printf '%s' '$L' | field 0.5.9 pulling)\" = False ]"
ok "the registry saw a token request and authenticated tag-list calls" \
  "grep -q '^/token ' '$T/registry.log' && grep -q '^/v2/dstack/guest/tags/list auth=yes' '$T/registry.log'"

ok "PullRegistryImage 0.5.9: 200" "[ \"\$(code PullRegistryImage '{\"tag\":\"0.5.9\"}')\" = 200 ]"
ok "the pull finishes in the background" "wait_pulled 0.5.9"
L=$(rpc ListRegistryImages)
ok "after the pull: local, no error" "[ \"\$(printf '%s' '$L' | field 0.5.9 local)\" = True ] && [ -z \"\$(printf '%s' '$L' | field 0.5.9 error)\" ]"
D=$T/img/dstack-0.5.9
ok "image.path/dstack-0.5.9 holds the amd64 image (metadata.json, kernel, initrd)" \
  "grep -q '\"version\": \"0.5.9\"' '$D/metadata.json' && [ \"\$(cat '$D/bzImage')\" = kernel ] && [ -f '$D/initramfs.cpio.gz' ]"
ok "the second layer added digest.txt and its whiteout removed 'obsolete'" "[ -f '$D/digest.txt' ] && [ ! -e '$D/obsolete' ]"
ok "a 150-character pax path is unpacked" "[ \"\$(cat \"$D\"/deep/d*/f*.txt)\" = long ]"
ok "the layer's symlink to /etc was not created" "[ ! -e '$D/etc-link' ] && [ ! -L '$D/etc-link' ]"
ok "no .tmp-pull-* is left behind" "[ -z \"\$(ls -A '$T/img' | grep tmp-pull)\" ]"
ok "blobs were fetched from the storage host without credentials" \
  "grep -q '^/storage/sha256:.* auth=no' '$T/registry.log' && ! grep -q '^/storage/.* auth=yes' '$T/registry.log'"
ok "ListImages lists dstack-0.5.9 with its version" \
  "rpc ListImages | python3 -c 'import json,sys; i=[x for x in json.load(sys.stdin)[\"images\"] if x[\"name\"]==\"dstack-0.5.9\"]; assert i and i[0][\"version\"]==\"0.5.9\"'"
c=$(code PullRegistryImage '{"tag":"0.5.9"}')
ok "pulling a tag whose image exists: 400 already exists" "[ $c = 400 ] && grep -q 'already exists' '$T/reply'"

ok "a Docker v2 manifest with a GNU long name pulls too" \
  "[ \"\$(code PullRegistryImage '{\"tag\":\"0.5.9-docker\"}')\" = 200 ] && wait_pulled 0.5.9-docker && [ \"\$(cat \"$T\"/img/dstack-0.5.9-docker/g/nnnnn*)\" = gnu ]"

bad_pull() { # tag, expected error fragment
  local c
  c=$(code PullRegistryImage "{\"tag\":\"$1\"}")
  ok "pull $1: accepted, then fails with '$2'" \
    "[ $c = 200 ] && wait_pulled $1 && rpc ListRegistryImages | field $1 error | grep -q -- '$2'"
  ok "pull $1: no image directory and no .tmp-pull left" "[ ! -e '$T/img/dstack-$1' ] && [ -z \"\$(ls -A '$T/img' | grep tmp-pull)\" ]"
}
bad_pull nometa "no metadata.json"
bad_pull badsum "digest mismatch"
bad_pull evil "escapes the image directory"
bad_pull zstd "unsupported media type"
ok "the evil layer wrote nothing outside image.path" "[ ! -e '$T/escape.txt' ] && [ ! -e '$T/img/escape.txt' ]"
c=$(code PullRegistryImage '{"tag":"../etc"}')
ok "a tag with a path is refused at once: 400 invalid tag" "[ $c = 400 ] && grep -q 'invalid tag' '$T/reply'"
c=$(code PullRegistryImage '{"tag":"no-such-tag"}')
ok "an unknown tag: accepted, then listed with the registry's 'manifest unknown' error" \
  "[ $c = 200 ] && wait_pulled no-such-tag && rpc ListRegistryImages | field no-such-tag error | grep -q 'manifest unknown'"
ok "an unknown tag: no image directory and no .tmp-pull left" "[ ! -e '$T/img/dstack-no-such-tag' ] && [ -z \"\$(ls -A '$T/img' | grep tmp-pull)\" ]"

ok "DeleteImage dstack-0.5.9: 200" "[ \"\$(code DeleteImage '{\"name\":\"dstack-0.5.9\"}')\" = 200 ]"
ok "after DeleteImage the tag is no longer local" "[ \"\$(rpc ListRegistryImages | field 0.5.9 local)\" = False ] && [ ! -e '$D' ]"

# without a registry
kill "$VPID"; wait "$VPID" 2>/dev/null
sed -i '/^registry = /d' "$T/vmm.toml"
start_vmm
c=$(code ListRegistryImages '{}')
ok "without [image] registry: ListRegistryImages 400 not configured" "[ $c = 400 ] && grep -q 'registry is not configured' '$T/reply'"
c=$(code PullRegistryImage '{"tag":"0.5.9"}')
ok "without [image] registry: PullRegistryImage 400 not configured" "[ $c = 400 ] && grep -q 'registry is not configured' '$T/reply'"
# a registry that is down
sed -i "s|^\[image\]|[image]\nregistry = \"127.0.0.1:1/x/y\"|" "$T/vmm.toml"
kill "$VPID"; wait "$VPID" 2>/dev/null
start_vmm
c=$(code ListRegistryImages '{}')
ok "an unreachable registry: 400 Failed to list registry images" "[ $c = 400 ] && grep -q 'Failed to list registry images' '$T/reply'"
echo "1..$n"
