#!/bin/bash
# run_test.sh — `dstack-vmm run VM.json --dry-run`: the VmConfiguration goes
# through the same conversion as CreateVm, so ports, GPUs, hugepages,
# pin_numa and networks reach the QEMU command line it prints; CIDs that
# running processes hold (`guest-cid=N` in their command line, §1) are not
# handed out again; bad requests fail without leaving a work directory.
# usage: run_test.sh <dstack-vmm>
set -u
VMM=$1
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
T=$(mktemp -d /tmp/vmm-run-XXXXXX)
trap finish EXIT
export HOME=$T
CID0=$((40000 + ($$ % 5000) * 10)) # a pool nobody else on this machine is likely to use
fake_image "$T/img/dstack-0.5.3" 0.5.3 console=ttyS0
cat > "$T/vmm.toml" <<TOML
[image]
path = "$T/img"
[cvm]
cid_start = $CID0
cid_pool_size = 10
[cvm.port_mapping]
enabled = true
range = [{protocol = "tcp", from = 1, to = 20000}]
[cvm.gpu]
enabled = true
TOML
# vm.json from python keyword arguments on top of a minimal no-TEE VM
vm() {
  python3 - "$@" <<'PY' > "$T/vm.json"
import json, sys
vm = {"name": "r", "image": "dstack-0.5.3", "vcpu": 2, "memory": 1536, "disk_size": 1, "no_tee": True,
      "compose_file": json.dumps({"manifest_version": 2, "name": "r", "runner": "docker-compose",
                                  "docker_compose_file": "services: {}"})}
for kv in sys.argv[1:]:
    k, v = kv.split("=", 1)
    vm[k] = json.loads(v)
print(json.dumps(vm))
PY
}
run() { "$VMM" -c "$T/vmm.toml" run "$T/vm.json" --workdir "$T/run" --dry-run > "$T/out" 2> "$T/err"; }
# the command as one line per argument, after "command:"
cmdline() { sed -n '/^command:$/,$p' "$T/out" | tail -n +2; }
has() { cmdline | grep -qxF -- "$1"; }
after() { cmdline | grep -A1 -xF -- "$1" | tail -1; } # the argument after the first "$1"
workdirs() { ls "$T/run" 2>/dev/null | wc -l; }

vm
ok "a plain VM: validated, cid_start handed out" "run && grep -q '^validated ' '$T/out' && grep -qx 'cid: $CID0' '$T/out'"

# processes that look like running VMs holding the first two CIDs
python3 -c 'import time; time.sleep(120)' -device "vhost-vsock-pci,guest-cid=$CID0" & PIDS+=($!)
python3 -c 'import time; time.sleep(120)' -object x -device "vhost-vsock-pci,guest-cid=$((CID0 + 1)),id=v" & PIDS+=($!)
sleep 0.3
ok "CIDs held by running processes (guest-cid= in their command line) are skipped" \
  "run && grep -qx 'cid: $((CID0 + 2))' '$T/out'"
for p in "${PIDS[@]}"; do kill "$p"; wait "$p" 2>/dev/null; done
PIDS=()

vm 'ports=[{"protocol":"tcp","host_port":8080,"vm_port":80},{"protocol":"tcp","host_port":8443,"host_address":"0.0.0.0","vm_port":443}]' \
   'networks=[{"mode":"user"},{"mode":"user"}]'
ok "ports and two networks: validated" "run"
ok "the port mappings become hostfwd on the first NIC" \
  "has 'user,id=net0,net=10.0.2.0/24,dhcpstart=10.0.2.10,restrict=no,hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=tcp:0.0.0.0:8443-:443'"
ok "the second NIC has none" "has 'user,id=net1,net=10.0.2.0/24,dhcpstart=10.0.2.10,restrict=no'"
ok "one virtio-net device per NIC" "[ \"\$(cmdline | grep -c '^virtio-net-pci,netdev=net[01],mac=')\" = 2 ]"

vm 'hugepages=true'
ok "hugepages: validated" "run"
ok "hugepages: one NUMA node backed by /dev/hugepages, memory rounded up to whole GiB (1536 MB → 2G)" \
  "has 'node,nodeid=0,cpus=0-1,memdev=mem0' && has 'memory-backend-file,id=mem0,size=2G,mem-path=/dev/hugepages,share=on,prealloc=yes,host-nodes=0,policy=bind' && [ \"\$(after -m)\" = 2048M ]"

if [ -r /sys/devices/system/node/node0/cpulist ]; then
  CPUS=$(cat /sys/devices/system/node/node0/cpulist)
  vm 'pin_numa=true'
  ok "pin_numa: the command runs under taskset -c <node 0's cpus>" \
    "run && [ \"\$(cmdline | head -3 | tr '\n' ' ')\" = 'taskset -c $CPUS ' ]"
else
  skip "pin_numa: this host has no /sys/devices/system/node/node0/cpulist"
fi

vm 'gpus={"attach_mode":"listed","gpus":[{"slot":"18:00.0"},{"slot":"2a:00.0"}]}'
ok "gpus: validated" "run"
ok "gpus: iommufd, then a root port and a vfio-pci device per GPU, in order" \
  "[ \"\$(cmdline | grep -E '^(iommufd|pcie-root-port|vfio-pci)' | tr '\n' ' ')\" = 'iommufd,id=iommufd0 pcie-root-port,id=pci.1,bus=pcie.0,chassis=1 vfio-pci,host=18:00.0,bus=pci.1,iommufd=iommufd0 pcie-root-port,id=pci.2,bus=pcie.0,chassis=2 vfio-pci,host=2a:00.0,bus=pci.2,iommufd=iommufd0 ' ]"

before=$(workdirs)
vm 'networks=[{"mode":"bridge","bridge_name":"nosuchbr0"}]'
ok "a bridge that does not exist: refused, nothing written" \
  "! run && grep -q 'nosuchbr0' '$T/err' && [ \$(workdirs) = $before ]"
vm 'ports=[{"protocol":"tcp","host_port":30000,"vm_port":80}]'
ok "a port outside the allowed range: refused, nothing written" \
  "! run && grep -q 'not allowed for tcp:30000' '$T/err' && [ \$(workdirs) = $before ]"
vm 'gpus={"attach_mode":"bogus","gpus":[]}'
ok "an unknown GPU attach mode: refused" "! run && grep -q 'Invalid GPU attach mode' '$T/err'"
sed -i 's/^enabled = true$/enabled = false/' "$T/vmm.toml" # GPUs (and port mapping) off
vm 'gpus={"attach_mode":"listed","gpus":[{"slot":"18:00.0"}]}'
ok "GPUs while [cvm.gpu] is disabled: refused" "! run && grep -q 'GPU is not enabled' '$T/err'"
echo "1..$n"
