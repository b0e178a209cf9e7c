#!/bin/bash
# procvm_boot_test.sh — a process-backend VM boots the real guest flow
# against a real dstack-kms (dev auth): the VM is created through the VMM
# RPC with an encrypted env; `dstack-util setup` on a simulated TD reports
# its boot progress through the host API, fetches the app keys from the KMS
# (reached from the VM's own network namespace through the loopback relay),
# decrypts the env (allowed_envs applied); the guest agent runs; the app's
# port, mapped to a host port, answers with the decrypted variable. A VM
# whose .encrypted-env was tampered with shows the boot error and never
# starts its app. The official JS SDK (sdk_cvm_test.js) runs against the
# booted VM's dstack.sock. ShutdownVm goes through the guest agent's
# GuestApi; stop and remove leave no process and no namespace.
#
# The KMS itself runs like in the dev stack: its RA-TLS certificate is
# attested by a guest agent in simulator mode, over a "none"-provider boot
# of dstack-util setup on the same simulated TDX.
# usage: procvm_boot_test.sh <dstack-vmm> <supervisor> <dstack> <dstack-util> <dstack-guest-agent> <dstack-kms>
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../support/kms-dev-toml.sh"
. "$HERE/lib.sh"
VMM=$1 SV=$2 D=$3 UTIL=$4 AGENT=$5 KMS=$6
T=$(mktemp -d /tmp/vmm-procboot-XXXXXX)
trap finish EXIT
if [ "$(id -u)" != 0 ]; then
	echo "1..0 # SKIP needs root (network namespaces)"
	exit 0
fi
# free ports below the ephemeral range (HP, HP2: inside the port-mapping range 1..30000)
PCCS=$(free_port 21000 1000) KP=$(free_port 22000 1000) ONB=$(free_port 23000 1000) VP=$(free_port 24000 1000)
HP=$(free_port 25000 1000) HP2=$(free_port 26000 1000)
VMM_API=http://127.0.0.1:$VP
APP_PORT=8000
PKI=$T/simtee
cd "$T"

# ---- simulated TDX, collateral, the KMS and its own (simulated) guest agent
"$D" simtee init "$PKI" >/dev/null
"$D" simtee serve --dir "$PKI" --listen "tcp:127.0.0.1:$PCCS" >simtee.log 2>&1 &
PIDS+=($!)
wait_for 10 curl -s -o /dev/null "http://127.0.0.1:$PCCS/"
mkdir -p kcvm/shared kcvm/sim
echo '{"manifest_version":2,"name":"kms","runner":"bash","bash_script":"true","key_provider":"none","storage_fs":"ext4"}' >kcvm/shared/app-compose.json
echo '{"kms_urls":[],"gateway_urls":[],"vm_config":"{\"os_image_hash\":\"1111111111111111111111111111111111111111111111111111111111111111\"}"}' >kcvm/shared/.sys-config.json
"$D" simtee td-create --state kcvm/td.json >/dev/null
"$UTIL" setup --work-dir "$T/kcvm/work" --host-shared "$T/kcvm/shared" --tee simtee --simtee-dir "$PKI" \
	--simtee-state "$T/kcvm/td.json" --runtime-events-dir "$T/kcvm/rt" --pccs-url "http://127.0.0.1:$PCCS" \
	--dev-root-ca "$PKI/root_ca.pem" >kcvm/setup.log 2>&1
cp kcvm/work/.appkeys.json kcvm/sim/appkeys.json
cp kcvm/work/app-compose.json kcvm/sim/app-compose.json
cp kcvm/work/.sys-config.json kcvm/sim/sys-config.json
"$AGENT" --simulator "$T/kcvm/sim" --simtee-dir "$PKI" >kagent.log 2>&1 &
PIDS+=($!)
wait_for 15 test -S kcvm/sim/dstack.sock
mkdir -p kms
kms_dev_toml 127.0.0.1 "$KP" "$ONB" "http://127.0.0.1:$PCCS" "$PKI/root_ca.pem" any localhost >kms/kms.toml
(cd kms && DSTACK_AGENT_ADDRESS="$T/kcvm/sim/dstack.sock" DSTACK_KMS_ETC_DIR="$T/kms/etc" exec "$KMS" -c kms.toml >../kms.log 2>&1) &
PIDS+=($!)
ok "dstack-kms (dev auth, attested by a simulated guest agent) is up" \
	'wait_for 30 curl -skf -X POST "https://127.0.0.1:$KP/prpc/GetMeta?json" -d "{}"'

# ---- the VMM (process backend)
mkdir -p run
fake_image img/dstack-dev 0.6.0
cat >vmm.toml <<TOML
address = "tcp:127.0.0.1:$VP"
kms_url = "https://127.0.0.1:$KP"
run_path = "$T/run"
[image]
path = "$T/img"
[cvm]
backend = "process"
kms_urls = ["https://localhost:$KP"]
gateway_urls = []
pccs_url = "http://127.0.0.1:$PCCS"
cid_start = 31000
cid_pool_size = 4
[cvm.process]
simtee_dir = "$PKI"
[cvm.port_mapping]
enabled = true
address = "127.0.0.1"
range = [{protocol="tcp", from=1, to=30000}, {protocol="udp", from=1, to=30000}]
[cvm.auto_restart]
enabled = false
[key_provider]
enabled = false
$(supervisor_toml)
TOML
"$VMM" -c vmm.toml >vmm.log 2>&1 &
VPID=$!
ok "dstack-vmm is up" 'wait_for 20 rpc Version "{}"'

# ---- the app: answers with SECRET (allowed) and OTHER (not in allowed_envs)
cat >app.py <<'PY'
import http.server, os, socket, threading
def udp_echo():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 8001))
    while True:
        d, a = u.recvfrom(2048); u.sendto(b"echo:" + d, a)
threading.Thread(target=udp_echo, daemon=True).start()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        b = ("SECRET=%s OTHER=%s\n" % (os.environ.get("SECRET", "<unset>"), os.environ.get("OTHER", "<unset>"))).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(b))); self.end_headers(); self.wfile.write(b)
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", 8000), H).serve_forever()
PY
compose=$(python3 - "$T/app.py" <<'PY'
import json, sys
src = open(sys.argv[1]).read()
print(json.dumps({"manifest_version": 2, "name": "secretapp", "runner": "bash",
  "bash_script": "echo app-starting; exec python3 - <<'APP'\n" + src + "APP\n",
  "kms_enabled": True, "key_provider": "kms", "allowed_envs": ["SECRET"], "storage_fs": "ext4"}, sort_keys=True))
PY
)
APP_ID=$(printf '%s' "$compose" | sha256sum | cut -c1-40)
PUB=$(curl -sk -X POST "https://127.0.0.1:$KP/prpc/GetAppEnvEncryptPubKey?json" -d "{\"app_id\":\"$APP_ID\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["public_key"])')
ok "env public key for the app from the KMS" '[ ${#PUB} -eq 64 ]'
SECRET="s3cret-$RANDOM$RANDOM"
ENV_HEX=$(printf 'SECRET=%s\nOTHER=not-allowed\n' "$SECRET" | "$D" encrypt-env --pubkey "$PUB" --env-file - --hex)
create() { # name host-port env-hex
	python3 - "$1" "$2" "$3" "$APP_ID" <<PY
import json, sys
print(json.dumps({"name": sys.argv[1], "image": "dstack-dev", "compose_file": $(printf '%s' "$compose" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))'),
  "vcpu": 1, "memory": 512, "disk_size": 1, "app_id": sys.argv[4], "encrypted_env": sys.argv[3],
  "ports": [{"protocol": "tcp", "host_port": int(sys.argv[2]), "vm_port": $APP_PORT},
            {"protocol": "udp", "host_port": int(sys.argv[2]), "vm_port": 8001}]}))
PY
}
info() { rpc GetInfo "{\"id\":\"$1\"}"; }
field() { python3 -c 'import json,sys; d=json.load(sys.stdin); d=d.get("info", d); print(d.get(sys.argv[1]) or "")' "$1"; }

ID=$(rpc CreateVm "$(create good $HP "$ENV_HEX")" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("id",""))')
ok "CreateVm with an encrypted env returns an id" '[ -n "$ID" ]'
booted() { [ "$(info "$ID" | field boot_progress)" = done ]; }
ok "boot progress reaches \"done\" (reported by dstack-util setup)" 'wait_for 60 booted'
I=$(info "$ID")
ok "events show setup's progress steps (preparing, requesting app keys)" \
	'grep -q "requesting app keys" <<<"$I" && grep -q "preparing" <<<"$I"'
ok "no boot error" '[ -z "$(field boot_error <<<"$I")" ]'
ok "instance id reported by setup (instance.info)" '[ -n "$(field instance_id <<<"$I")" ]'
ok "setup got the keys from the KMS (.appkeys.json names the Kms provider)" 'grep -q "\"Kms\"" "$T/run/$ID/work/.appkeys.json"'
ok "RTMR3 runtime events written on the simulated TD" '[ -s "$T/run/$ID/rt/runtime_events.log" ]'
ok "guest agent answers on the VM's GuestApi socket" \
	'curl -sf --unix-socket "$T/run/$ID/guest-api.sock" -X POST http://x/api/Info -d "{}" | grep -q "$APP_ID"'
get_app() { curl -sf --max-time 3 "http://127.0.0.1:$HP/"; }
ok "the app answers on its mapped host port" 'wait_for 20 get_app'
OUT=$(get_app)
ok "the app sees the decrypted SECRET" 'grep -q "SECRET=$SECRET " <<<"$OUT"'
ok "OTHER (not in allowed_envs) is absent from the app's env" 'grep -q "OTHER=<unset>" <<<"$OUT"'
udp_echo() {
	python3 - "$HP" <<'PY'
import socket, sys
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(2)
u.sendto(b"ping", ("127.0.0.1", int(sys.argv[1])))
sys.exit(0 if u.recvfrom(2048)[0] == b"echo:ping" else 1)
PY
}
ok "a UDP port mapping reaches the app's UDP socket and the reply comes back" 'udp_echo'

# ---- the official JS SDK against this CVM's guest agent (dstack.sock)
SDK_DIR=$(dirname "$D")/../tests/guest/sdk
if command -v node >/dev/null && "$HERE/../support/install-sdk.sh" "$SDK_DIR" >sdk-install.log 2>&1; then
	META=$(curl -sk -X POST "https://127.0.0.1:$KP/prpc/GetMeta?json" -d '{}')
	python3 -c 'import json,sys; print(json.load(sys.stdin)["ca_cert"])' <<<"$META" >kms-root.pem
	K256=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["k256_pubkey"])' <<<"$META")
	DSTACK_SIMULATOR_ENDPOINT="$T/run/$ID/work/dstack.sock" APP_ID=$APP_ID KMS_K256=$K256 \
		KMS_ROOT="$T/kms-root.pem" DSTACK="$D" SIMTEE_DIR="$PKI" NODE_PATH="$SDK_DIR/node_modules" \
		node "$HERE/sdk_cvm_test.js" >sdk.out 2>sdk.err
	sdk_lines=$(grep -cE '^(not )?ok ' sdk.out)
	ok "the SDK test ran ($sdk_lines checks)" '[ "$sdk_lines" -gt 10 ]'
	while IFS= read -r line; do
		case $line in
		"ok "*) ok "${line#ok * - }" true ;;
		"not ok "*) ok "${line#not ok * - }" false ;;
		"#"*) echo "$line" ;;
		esac
	done <sdk.out
	[ -s sdk.err ] && sed 's/^/# sdk: /' sdk.err | head -20
else
	n=$((n + 1))
	echo "ok $n # SKIP official JS SDK: node or npm install not available ($(tail -1 sdk-install.log 2>/dev/null))"
fi
AGPID=$(pgrep -f "dstack-guest-agent -c $T/run/$ID/work/agent.json" | head -1)
NSID=$(readlink "/proc/$AGPID/ns/net" 2>/dev/null)
ok "the guest runs in its own network namespace ($NSID)" '[ -n "$NSID" ] && [ "$NSID" != "$(readlink /proc/self/ns/net)" ]'
ok "the app's port is only reachable through the mapping (nothing on host 127.0.0.1:$APP_PORT)" '! ss -Htln | grep -q "127.0.0.1:$APP_PORT "'

# ---- tampered env: setup refuses, the VM shows the error, no app
BAD_HEX=$(python3 -c 'import sys; h=sys.argv[1]; i=len(h)-10; print(h[:i] + ("0" if h[i] != "0" else "1") + h[i+1:])' "$ENV_HEX")
ID2=$(rpc CreateVm "$(create tampered $HP2 "$BAD_HEX")" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("id",""))')
has_err() { [ -n "$(info "$ID2" | field boot_error)" ]; }
ok "tampered .encrypted-env: the VM shows a boot error" 'wait_for 60 has_err'
ERR=$(info "$ID2" | field boot_error)
echo "# boot_error: $ERR"
ok "the boot error names the env decryption" 'grep -qi "env" <<<"$ERR"'
ok "tampered VM: no app started, its port does not answer" '! pgrep -f "process-vm $T/run/$ID2" >/dev/null || { ! curl -s --max-time 2 -o /dev/null "http://127.0.0.1:$HP2/" && [ ! -S "$T/run/$ID2/guest-api.sock" ]; }'
ok "tampered VM: no .decrypted-env written" '[ ! -e "$T/run/$ID2/work/.decrypted-env" ]'

# ---- an app that exits at once: the VM powers off and signals nothing else
# (a reaped child recorded as -1 once reached kill(-1, SIGTERM): as root,
# every process on the host)
sleep 600 &
SENTINEL=$!
PIDS+=($SENTINEL)
quick='{"manifest_version":2,"name":"quick","runner":"bash","bash_script":"echo quick-app; exit 3","key_provider":"none","storage_fs":"ext4"}'
ID3=$(rpc CreateVm "$(python3 -c 'import json,sys; print(json.dumps({"name":"quick","image":"dstack-dev","compose_file":sys.argv[1],"vcpu":1,"memory":512,"disk_size":1}))' "$quick")" |
	python3 -c 'import json,sys; print(json.load(sys.stdin).get("id",""))')
ok "CreateVm of an app that exits at once returns an id" '[ -n "$ID3" ]'
ran3() { grep -q "quick-app" "$T/run/$ID3/stdout.log" "$T/run/$ID3/stderr.log" 2>/dev/null; }
ok "the quick app ran" 'wait_for 60 ran3'
powered_off3() { grep -q "app exited (failure)" "$T/run/$ID3/stdout.log" "$T/run/$ID3/stderr.log" 2>/dev/null && ! pgrep -f "process-vm $T/run/$ID3" >/dev/null; }
ok "the VM powers off after its app exits (guest agent stopped too)" 'wait_for 30 powered_off3'
ok "processes outside the VM are not signalled (a sentinel sleep survives)" 'kill -0 $SENTINEL'
ok "the VMM survives the VM's power-off" 'rpc Version "{}"'
rpc RemoveVm "{\"id\":\"$ID3\"}" >/dev/null

# ---- stop and remove
T_SHUT=$(date +%s)
rpc ShutdownVm "{\"id\":\"$ID\"}" >/dev/null
stopped() { ! pgrep -f "process-vm $T/run/$ID" >/dev/null; }
ok "ShutdownVm (through the guest agent's GuestApi Shutdown): the VM's processes are gone" 'wait_for 15 stopped'
ok "ShutdownVm: the app's port no longer answers" '! get_app'
I=$(info "$ID")
ok "ShutdownVm: the guest reported powering off, the VM is stopped" \
	'grep -q "powering off" <<<"$I" && [ "$(field status <<<"$I")" = stopped ]'
ok "ShutdownVm went through the guest agent" 'grep -q "shutdown requested by the host" "$T/run/$ID/stderr.log" "$T/run/$ID/stdout.log"'
rpc StopVm "{\"id\":\"$ID2\"}" >/dev/null
stopped2() { ! pgrep -f "process-vm $T/run/$ID2" >/dev/null; }
ok "StopVm of the VM that failed to boot: its processes are gone" 'wait_for 15 stopped2'
for id in "$ID" "$ID2"; do rpc RemoveVm "{\"id\":\"$id\"}" >/dev/null; done
gone() { [ ! -d "$T/run/$ID" ] && [ ! -d "$T/run/$ID2" ]; }
ok "RemoveVm: work directories removed" 'wait_for 15 gone'
left=$(for d in /proc/[0-9]*; do { tr '\0' ' ' <"$d/cmdline" | grep -F -- "$T/run/" >/dev/null && echo "${d#/proc/}"; } 2>/dev/null; done)
ok "no process refers to a VM work directory${left:+ ($left)}" '[ -z "$left" ]'
# Namespace inode numbers are reused at once (other tests on this host make
# namespaces too): only a process that started before the VM was shut down
# and still runs in that namespace is a leftover.
now=$(date +%s)
ns_users=$(for d in /proc/[0-9]*; do
	[ "$(readlink "$d/ns/net" 2>/dev/null)" = "$NSID" ] || continue
	age=$(ps -o etimes= -p "${d#/proc/}" 2>/dev/null | tr -d ' ')
	[ -n "$age" ] && [ $((now - age)) -lt $((T_SHUT - 1)) ] && echo "${d#/proc/}:$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null)"
done)
ok "the VM's network namespace is gone (no process in $NSID${ns_users:+: $ns_users})" '[ -n "$NSID" ] && [ -z "$ns_users" ]'
echo "1..$n"
