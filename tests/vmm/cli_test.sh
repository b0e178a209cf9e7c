#!/bin/bash
# cli_test.sh — `dstack vmm` against a real dstack-vmm (process backend) found
# through its discovery file on a unix socket: compose, app-id, deploy with a
# port mapping, lsvm (table and --json), logs, update-ports, stop, remove,
# `dstack-vmm run --dry-run`, and an env deploy refused because the stand-in
# KMS key carries no valid signature (nothing created).
# usage: cli_test.sh <dstack-vmm> <supervisor> <dstack>
set -u
VMM=$1 SV=$2 D=$3
T=$(mktemp -d /tmp/vmm-cli-XXXXXX)
HP=$((12000 + $$ % 2000)) AP=$((27000 + $$ % 2000)) KMS=$((19500 + $$ % 400))
n=0
ok() { n=$((n + 1)); if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1"; fi; }
cleanup() {
  [ -n "${VPID:-}" ] && kill "$VPID" 2>/dev/null && wait "$VPID" 2>/dev/null
  [ -f "$T/sv.pid" ] && kill "$(cat "$T/sv.pid")" 2>/dev/null
  [ -n "${KPID:-}" ] && kill "$KPID" 2>/dev/null
  [ -n "${KPPID:-}" ] && kill "$KPPID" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
export XDG_RUNTIME_DIR=$T HOME=$T
unset DSTACK_VMM_URL DSTACK_VMM_TOKEN
mkdir -p "$T/img/dstack-0.5.3" "$T/run"
: > "$T/img/dstack-0.5.3/bzImage"; : > "$T/img/dstack-0.5.3/initramfs.cpio.gz"
echo '{"kernel":"bzImage","initrd":"initramfs.cpio.gz","cmdline":"x","version":"0.5.3","shared_ro":true}' \
  > "$T/img/dstack-0.5.3/metadata.json"
cat > "$T/kms.py" <<PY
import http.server, json
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get('Content-Length') or 0))
        body = json.dumps({"public_key": "11" * 32, "signature": "22" * 65, "timestamp": 5, "signature_v1": "22" * 65}).encode()
        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer(('127.0.0.1', $KMS), H).serve_forever()
PY
python3 "$T/kms.py" & KPID=$!
# stand-in key provider: u32 BE length + JSON both ways
KPP=$((19950 + $$ % 40))
cat > "$T/kp.py" <<PY
import socket, struct, json
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $KPP)); s.listen(4)
while True:
    c, _ = s.accept()
    n = struct.unpack('>I', c.recv(4, socket.MSG_WAITALL))[0]
    q = json.loads(c.recv(n, socket.MSG_WAITALL))['quote']
    r = json.dumps({"encrypted_key": [x ^ 0xff for x in q], "provider_quote": [1, 2, 3]}).encode()
    c.sendall(struct.pack('>I', len(r)) + r); c.close()
PY
python3 "$T/kp.py" & KPPID=$!
cat > "$T/vmm.toml" <<TOML
address = "unix:$T/vmm.sock"
kms_url = "http://127.0.0.1:$KMS"
run_path = "$T/run"
[image]
path = "$T/img"
[cvm]
backend = "process"
[cvm.process]
simtee_dir = "$T/simtee"
[cvm.port_mapping]
enabled = true
[key_provider]
enabled = true
address = "127.0.0.1"
port = $KPP
[supervisor]
exe = "$SV"
sock = "$T/sv.sock"
pid_file = "$T/sv.pid"
log_file = "$T/sv.log"
TOML
cd "$T"
"$D" simtee init "$T/simtee" >/dev/null # the simulated TDX the guests boot on
"$VMM" -c vmm.toml 2> vmm.log & VPID=$!
for _ in $(seq 100); do [ -S vmm.sock ] && curl -s -o /dev/null --unix-socket vmm.sock http://x/prpc/Version && break; sleep 0.1; done
echo "echo cli-app-up; exec python3 -m http.server $AP --bind 127.0.0.1" > app.sh
ok "compose writes a bash app-compose.json and prints its hash" \
  '"$D" vmm compose --name cliapp --bash-script app.sh --output app-compose.json | grep -q "^Compose hash: [0-9a-f]\{64\}$"'
ok "app-id is the first 20 bytes of sha256(compose)" \
  '[ "$("$D" vmm app-id app-compose.json)" = "$(sha256sum app-compose.json | cut -c1-40)" ]'
ok "lsimage (found through the discovery file)" '"$D" vmm lsimage | grep -q "dstack-0.5.3"'
ok "deploy prints the VM id" \
  '"$D" vmm deploy --name cliapp --image dstack-0.5.3 --compose app-compose.json --port tcp:$HP:$AP --memory 1G --disk 1G > deploy.out && grep -q "^Created VM with ID: " deploy.out'
ID=$(sed -n 's/^Created VM with ID: //p' deploy.out)
for _ in $(seq 100); do "$D" vmm lsvm | grep "$ID" | grep -q "running  *done" && break; sleep 0.1; done
ok "lsvm table shows it running, boot done" '"$D" vmm lsvm | grep "$ID" | grep -q "running  *done"'
ok "lsvm --json is the vms array" \
  '"$D" vmm lsvm --json | python3 -c "import json,sys; v=json.load(sys.stdin); sys.exit(0 if v[0][\"id\"]==\"$ID\" else 1)"'
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$HP/" && break; sleep 0.1; done
ok "the app answers on the mapped host port" 'curl -s -o /dev/null -w "%{http_code}" "http://127.0.0.1:$HP/" | grep -q 200'
if [ "$(id -u)" = 0 ]; then
  ok "as root the app runs in its own network namespace" '"$D" vmm logs "$ID" -n 50 --channel stdout | grep -q "own network namespace"'
  ok "so its port is not reachable on the host, only through the mapping" \
    '[ "$(curl -s -o /dev/null -w "%{http_code}" "http://127.0.0.1:$AP/")" != 200 ]'
fi
ok "logs --channel stdout shows the app output" '"$D" vmm logs "$ID" -n 50 --channel stdout | grep -q cli-app-up'
HS="$T/run/$ID/host-api.sock"
ok "the VM's .sys-config.json names its host API socket" 'grep -q "unix:$HS:/api" "$T/run/$ID/shared/.sys-config.json"'
ok "host API Info over the VM's socket" 'curl -s --unix-socket "$HS" "http://x/api/Info?json" -d "{}" | grep -q "dstack VMM"'
ok "host API Notify boot.error shows up in the VM" \
  'curl -s --unix-socket "$HS" "http://x/api/Notify?json" -d "{\"event\":\"boot.error\",\"payload\":\"disk on fire\"}" >/dev/null && "$D" vmm info "$ID" | grep -q "Boot error: *disk on fire"'
ok "host API GetSealingKey goes to the key provider with length-prefixed JSON" \
  'curl -s --unix-socket "$HS" "http://x/api/GetSealingKey?json" -d "{\"quote\":\"0001ff\"}" | grep -q "\"encrypted_key\":\"fffe00\",\"provider_quote\":\"010203\""'
ok "host API refuses callers that are not a VM on the shared listener" \
  '[ "$(curl -s -o /dev/null -w "%{http_code}" --unix-socket vmm.sock "http://x/api/Info")" = 404 ]'
( sleep 0.7; printf '\033[31mred-marker\033[0m\n' >> "$T/run/$ID/stdout.log" ) &
timeout 2 curl -s -N --unix-socket vmm.sock "http://x/logs?id=$ID&ch=stdout&lines=1&follow=true" > follow.out
ok "logs follow streams new output, ANSI escapes stripped" 'grep -q "^red-marker$" follow.out'
timeout 1 curl -s -N --unix-socket vmm.sock "http://x/logs?id=$ID&ch=stdout&lines=1&follow=true&ansi=true" > follow2.out
ok "ansi=true keeps the escapes" 'grep -q "$(printf "\033")\[31mred-marker" follow2.out'
ok "update-ports" '"$D" vmm update-ports "$ID" --port tcp:$((HP + 1)):$AP >/dev/null && "$D" vmm info "$ID" --json | grep -q "\"host_port\": $((HP + 1))"'
ok "stop -f" '"$D" vmm stop -f "$ID" >/dev/null && "$D" vmm info "$ID" | grep -q "Status: *stopped"'
ok "remove" '"$D" vmm remove "$ID" >/dev/null'
for _ in $(seq 60); do [ "$("$D" vmm lsvm --json)" = "[]" ] && break; sleep 0.1; done
ok "no VMs left" '[ "$("$D" vmm lsvm --json)" = "[]" ]'
echo "A=1" > env
ok "deploy --env-file refuses a KMS key whose signature does not verify" \
  '! "$D" vmm deploy --name e --image dstack-0.5.3 --compose app-compose.json --env-file env --kms-url http://127.0.0.1:$KMS < /dev/null 2> env.err && grep -qi "signature\|signer" env.err'
ok "and created nothing" '[ "$("$D" vmm lsvm --json)" = "[]" ]'
ok "kms add / list" '"$D" vmm kms add 02$(printf "ab%.0s" $(seq 32)) && "$D" vmm kms list | grep -q "^02abab"'
ok "vmm ls lists the running VMM" '"$D" vmm vmm ls | grep -q "unix:$T/vmm.sock"'
ok "unknown VM: clear error" '! "$D" vmm info 00000000-0000-0000-0000-000000000000 2>&1 | grep -q "Segmentation"'
python3 -c "import json; print(json.dumps({'name':'r','image':'dstack-0.5.3','compose_file':open('app-compose.json').read(),'vcpu':1,'memory':512,'disk_size':1}))" > vm.json
ok "dstack-vmm run --dry-run validates and writes the work dir" \
  '"$VMM" -c vmm.toml run vm.json --workdir "$T/runonce" --dry-run | grep -q "^validated " && ls "$T"/runonce/*/vm-manifest.json >/dev/null'
# the same VMM restarted with authentication on a TCP listener
kill "$VPID"; wait "$VPID" 2>/dev/null
AP2=$((23500 + $$ % 1000))
sed -i "s#^address = .*#address = \"tcp:127.0.0.1:$AP2\"#" vmm.toml
printf '[auth]\nenabled = true\ntokens = ["t0k"]\n' >> vmm.toml
"$VMM" -c vmm.toml 2>> vmm.log & VPID=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$AP2/" && break; sleep 0.1; done
U=http://127.0.0.1:$AP2
ok "auth: no credentials → 401 with a Basic challenge" \
  'curl -s -D - -o /dev/null "$U/prpc/Version" | grep -qi "^HTTP/1.1 401" && curl -s -D - -o /dev/null "$U/prpc/Version" | grep -qi "WWW-Authenticate: Basic realm=\"dstack-vmm API\""'
ok "auth: Bearer token" '[ "$(curl -s -o /dev/null -w "%{http_code}" -H "Authorization: Bearer t0k" "$U/prpc/Version")" = 200 ]'
ok "auth: X-Admin-Token" '[ "$(curl -s -o /dev/null -w "%{http_code}" -H "X-Admin-Token: t0k" "$U/prpc/Version")" = 200 ]'
ok "auth: GET ?token=" '[ "$(curl -s -o /dev/null -w "%{http_code}" "$U/prpc/Version?token=t0k")" = 200 ]'
ok "auth: wrong token" '[ "$(curl -s -o /dev/null -w "%{http_code}" -H "Authorization: Bearer t0kk" "$U/prpc/Version")" = 401 ]'
ok "auth: every reply carries X-App-Version and X-Accel-Buffering" \
  'curl -s -D - -o /dev/null "$U/prpc/Version?token=t0k" | grep -qi "^X-App-Version: v0.6.0 (git:" && curl -s -D - -o /dev/null "$U/prpc/Version?token=t0k" | grep -qi "^X-Accel-Buffering: no"'
ok "dstack vmm --token works, without it fails" \
  '"$D" vmm --url "$U" --token t0k lsvm --json >/dev/null && ! "$D" vmm --url "$U" lsvm 2>/dev/null'
echo "1..$n"
