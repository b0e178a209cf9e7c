#!/bin/bash
# cli_test.sh — `dstack vmm` against a real dstack-vmm (process backend) found
# through its discovery file on a unix socket: compose, app-id, deploy with a
# port mapping, lsvm (table and --json), logs, update-ports, graceful stop
# (through the guest agent), start, stop -f, remove, lsgpu (stand-in lspci),
# `dstack-vmm run --dry-run`; env deploys against a stand-in KMS: refused
# when the key's signature does not verify or its signer is not trusted,
# accepted (and decryptable) once the signer is whitelisted; update-env
# (allowed_envs rewritten), resize, update-app-compose, update-user-config,
# the combined `update`, kms add/remove; `vmm ls` / `vmm switch` between two
# discovered VMMs; and the exact UpgradeApp body of `update --kms-url`
# (spec §16) seen by a recording stand-in VMM.
# usage: cli_test.sh <dstack-vmm> <supervisor> <dstack>
set -u
VMM=$1 SV=$2 D=$3
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
T=$(mktemp -d /tmp/vmm-cli-XXXXXX)
# HP (and HP + 1, HP + 7, used by update-ports/update) must be inside the port-mapping range 1..20000
HP=$(free_port 12000 2000) AP=$(free_port 27000 2000) KMS=$(free_port 19000 400)
VMM_API=unix:$T/vmm.sock
trap finish EXIT
export XDG_RUNTIME_DIR=$T HOME=$T
unset DSTACK_VMM_URL DSTACK_VMM_TOKEN
mkdir -p "$T/run"
fake_image "$T/img/dstack-0.5.3" 0.5.3
# stand-in KMS: GetAppEnvEncryptPubKey answers whatever kms-reply.json holds
echo '{"public_key": "'"$(printf '11%.0s' $(seq 32))"'", "signature": "'"$(printf '22%.0s' $(seq 65))"'", "timestamp": 5, "signature_v1": "'"$(printf '22%.0s' $(seq 65))"'"}' > "$T/kms-reply.json"
cat > "$T/kms.py" <<PY
import http.server, json
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get('Content-Length') or 0))
        body = open("$T/kms-reply.json", "rb").read()
        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer(('127.0.0.1', $KMS), H).serve_forever()
PY
python3 "$T/kms.py" & PIDS+=($!)
# stand-in key provider: u32 BE length + JSON both ways
KPP=$(free_port 19500 400)
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
python3 "$T/kp.py" & PIDS+=($!)
# stand-in lspci (two H100s, the second in use) for lsgpu
mkdir -p "$T/fakebin"
cat > "$T/fakebin/lspci" <<'SH'
#!/bin/sh
printf '18:00.0 3D controller [0302]: NVIDIA Corporation GH100 [H100 SXM5 80GB] [10de:2335] (rev a1)\n\tControl: I/O- Mem+ BusMaster- SpecCycle-\n\n'
printf '2a:00.0 3D controller [0302]: NVIDIA Corporation GH100 [H100 SXM5 80GB] [10de:2335] (rev a1)\n\tControl: I/O- Mem+ BusMaster+ SpecCycle-\n'
SH
chmod +x "$T/fakebin/lspci"
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
[cvm.gpu]
enabled = true
[key_provider]
enabled = true
address = "127.0.0.1"
port = $KPP
$(supervisor_toml)
TOML
cd "$T"
"$D" simtee init "$T/simtee" >/dev/null # the simulated TDX the guests boot on
PATH="$T/fakebin:$PATH" "$VMM" -c vmm.toml 2> vmm.log & VPID=$!
wait_for 10 rpc Version
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
curl -s --max-time 10 --unix-socket vmm.sock "http://x/logs?id=$ID&ch=stdout&lines=1&ansi=true" > ansi.out
ok "ansi=true keeps the escapes" 'grep -q "$(printf "\033")\[31mred-marker" ansi.out'
ok "update-ports" '"$D" vmm update-ports "$ID" --port tcp:$((HP + 1)):$AP >/dev/null && "$D" vmm info "$ID" --json | grep -q "\"host_port\": $((HP + 1))"'
ok "stop (graceful): ShutdownVm through the guest agent, the VM ends stopped" \
  '"$D" vmm stop "$ID" >/dev/null && for _ in $(seq 100); do "$D" vmm info "$ID" | grep -q "Status: *stopped" && break; sleep 0.1; done; "$D" vmm info "$ID" | grep -q "Status: *stopped" && grep -q "ShutdownVm $ID: guest agent is shutting the VM down" vmm.log'
ok "start: the stopped VM boots again" \
  '"$D" vmm start "$ID" >/dev/null && for _ in $(seq 150); do "$D" vmm lsvm | grep "$ID" | grep -q "running  *done" && break; sleep 0.1; done; "$D" vmm lsvm | grep "$ID" | grep -q "running  *done"'
ok "stop -f" '"$D" vmm stop -f "$ID" >/dev/null && "$D" vmm info "$ID" | grep -q "Status: *stopped"'
ok "remove" '"$D" vmm remove "$ID" >/dev/null'
for _ in $(seq 60); do [ "$("$D" vmm lsvm --json)" = "[]" ] && break; sleep 0.1; done
ok "no VMs left" '[ "$("$D" vmm lsvm --json)" = "[]" ]'
ok "lsgpu lists the GPUs with their state" \
  '"$D" vmm lsgpu | grep "18:00.0" | grep -q "10de:2335 *yes" && "$D" vmm lsgpu | grep "2a:00.0" | grep -q " no "'
ok "lsgpu --json" '"$D" vmm lsgpu --json | python3 -c "import json,sys; g=json.load(sys.stdin); assert len(g[\"gpus\"]) == 2 and g[\"allow_attach_all\"]"'
echo "A=1" > env
"$D" vmm compose --name envapp --bash-script app.sh --kms --env-file env --output env-compose.json >/dev/null
ok "deploy --env-file refuses a KMS key with a garbage signature (it recovers to no trusted signer)" \
  '! "$D" vmm deploy --name e --image dstack-0.5.3 --compose env-compose.json --env-file env --kms-url http://127.0.0.1:$KMS < /dev/null 2> env.err && grep -qi "signature\|untrusted KMS signer" env.err'
ok "and created nothing" '[ "$("$D" vmm lsvm --json)" = "[]" ]'
# a KMS whose key is signed: the keys `dstack derive` computes for this app
EAID=$("$D" vmm app-id env-compose.json)
printf '11%.0s' $(seq 32) > root.key; printf '22%.0s' $(seq 32) > k256.key
"$D" derive --root-key-file root.key --k256-key-file k256.key --app-id "$EAID" > derived.json
jf() { python3 -c "import json,sys; print(json.load(open('$T/derived.json'))['$1'])"; }
SIGNER=$(jf kms_k256_public_key)
printf '{"public_key":"%s","signature":"%s","timestamp":0,"signature_v1":""}' "$(jf env_crypt_public_key)" "$(jf env_public_key_signature)" > "$T/kms-reply.json"
jf env_crypt_key > env.key
ok "deploy --env-file with a valid signature but an unknown signer is refused (no tty to ask)" \
  '! "$D" vmm deploy --name e --image dstack-0.5.3 --compose env-compose.json --env-file env --kms-url http://127.0.0.1:$KMS --stopped < /dev/null 2> env.err && grep -q "untrusted KMS signer $SIGNER" env.err && [ "$("$D" vmm lsvm --json)" = "[]" ]'
ok "deploy --env-file needs kms_enabled in the compose" \
  '! "$D" vmm deploy --name e --image dstack-0.5.3 --compose app-compose.json --env-file env --kms-url http://127.0.0.1:$KMS < /dev/null 2> env.err && grep -q "kms_enabled" env.err'
"$D" vmm kms add "$SIGNER"
ok "deploy --env-file with the signer whitelisted: created" \
  '"$D" vmm deploy --name envapp --image dstack-0.5.3 --compose env-compose.json --env-file env --kms-url http://127.0.0.1:$KMS --stopped < /dev/null > env.out && grep -q "^App ID: $EAID$" env.out && grep -q "^Created VM with ID: " env.out'
EID=$(sed -n 's/^Created VM with ID: //p' env.out)
ok "the VM's .encrypted-env decrypts with the app's env key to the env file" \
  '[ "$("$D" decrypt-env --key-file env.key "$T/run/$EID/shared/.encrypted-env")" = "A=1" ]'
printf 'A=2\nB=3\n' > env2
ok "update-env re-encrypts the env" \
  '"$D" vmm update-env "$EID" --env-file env2 --kms-url http://127.0.0.1:$KMS < /dev/null >/dev/null && [ "$("$D" decrypt-env --key-file env.key "$T/run/$EID/shared/.encrypted-env" | tr "\n" " ")" = "A=2 B=3 " ]'
ok "update-env rewrote allowed_envs in the compose (the app id stays)" \
  '"$D" vmm info "$EID" --json | python3 -c "import json,sys; i=json.load(sys.stdin); c=json.loads(i[\"configuration\"][\"compose_file\"]); assert c[\"allowed_envs\"] == [\"A\", \"B\"] and i[\"app_id\"] == \"$EAID\""'
ok "resize a stopped VM" \
  '"$D" vmm resize "$EID" --vcpu 2 --memory 2G --disk 25G >/dev/null && "$D" vmm info "$EID" --json | python3 -c "import json,sys; c=json.load(sys.stdin)[\"configuration\"]; assert (c[\"vcpu\"], c[\"memory\"], c[\"disk_size\"]) == (2, 2048, 25), c"'
python3 -c "import json; c=json.load(open('env-compose.json')); c['name']='renamed'; open('new-compose.json','w').write(json.dumps(c))"
ok "update-app-compose stores the file verbatim" \
  '"$D" vmm update-app-compose "$EID" new-compose.json >/dev/null && "$D" vmm info "$EID" --json | python3 -c "import json,sys; assert json.load(sys.stdin)[\"configuration\"][\"compose_file\"] == open(\"new-compose.json\").read()"'
echo '{"motd":"hello"}' > uc.json
ok "update-user-config" \
  '"$D" vmm update-user-config "$EID" uc.json >/dev/null && "$D" vmm info "$EID" --json | python3 -c "import json,sys; assert json.load(sys.stdin)[\"configuration\"][\"user_config\"] == open(\"uc.json\").read()"'
echo 'second config' > uc2.txt
ok "update: resources, user config, ports and KMS URLs in one command" \
  '"$D" vmm update "$EID" --vcpu 3 --user-config uc2.txt --port tcp:$((HP + 7)):$AP --kms-url http://kms.example:8000 >/dev/null && "$D" vmm info "$EID" --json | python3 -c "
import json, sys
c = json.load(sys.stdin)[\"configuration\"]
assert c[\"vcpu\"] == 3 and c[\"user_config\"] == \"second config\n\", c
assert [p[\"host_port\"] for p in c[\"ports\"]] == [$((HP + 7))], c
assert c[\"kms_urls\"] == [\"http://kms.example:8000\"], c"'
ok "update --compose replaces only docker_compose_file" \
  'printf "services: {}\n" > dc.yaml && "$D" vmm update "$EID" --compose dc.yaml --no-ports >/dev/null && "$D" vmm info "$EID" --json | python3 -c "
import json, sys
c = json.load(sys.stdin)[\"configuration\"]
app = json.loads(c[\"compose_file\"])
assert app[\"docker_compose_file\"] == \"services: {}\n\" and app[\"name\"] == \"renamed\" and app[\"bash_script\"], app
assert c[\"ports\"] == [], c"'
ok "update with nothing to do is an error" '! "$D" vmm update "$EID" 2>/dev/null'
ok "kms remove" '"$D" vmm kms remove "$SIGNER" && ! "$D" vmm kms list | grep -q "$SIGNER"'
ok "after kms remove the signer is untrusted again" \
  '! "$D" vmm update-env "$EID" --env-file env --kms-url http://127.0.0.1:$KMS < /dev/null 2> env.err && grep -q "untrusted KMS signer" env.err'
ok "kms add / list" '"$D" vmm kms add 02$(printf "ab%.0s" $(seq 32)) && "$D" vmm kms list | grep -q "^02abab"'
ok "unknown VM: info fails and says the VM was not found" \
  '! "$D" vmm info 00000000-0000-0000-0000-000000000000 > unk.out 2> unk.err && grep -q "VM 00000000-0000-0000-0000-000000000000 not found" unk.err && ! grep -q Segmentation unk.err'
ok "unknown VM: stop fails with the server's VM not found" \
  '! "$D" vmm stop -f 00000000-0000-0000-0000-000000000000 2> unk.err && grep -q "VM not found" unk.err'

# a second "VMM" (a recording stand-in) in the discovery directory: vmm ls / switch
REC=$(free_port 22500 900)
cat > rec.py <<PY
import http.server, json
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length') or 0)).decode()
        with open("$T/rec.log", "a") as f:
            f.write(json.dumps({"path": self.path, "body": body}) + "\n")
        out = json.dumps({"vms": [], "port_mapping_enabled": False, "total": 0} if "/Status" in self.path else {"id": ""}).encode()
        self.send_response(200); self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(out))); self.end_headers(); self.wfile.write(out)
    def log_message(self, *a): pass
http.server.HTTPServer(('127.0.0.1', $REC), H).serve_forever()
PY
python3 rec.py & RPID=$!
PIDS+=($RPID)
for _ in $(seq 50); do curl -s -o /dev/null -d '{}' "http://127.0.0.1:$REC/prpc/Version" && break; sleep 0.1; done
REAL=$(ls "$T/dstack-vmm" | sed -n 's/\.json$//p' | head -1)
FAKE=ffffffff-0000-4000-8000-00000000beef
printf '{"id":"%s","pid":%d,"address":"tcp:127.0.0.1:%d","working_dir":"%s"}' "$FAKE" "$RPID" "$REC" "$T" > "$T/dstack-vmm/$FAKE.json"
: > rec.log
ok "two VMMs and no choice: the CLI says so and does not guess" \
  '! "$D" vmm lsvm > two.out 2> two.err && grep -q "2 VMMs running here" two.err && [ ! -s rec.log ]'
ok "vmm ls lists both, the real one with its unix socket URL" '"$D" vmm vmm ls | grep -q "$FAKE" && "$D" vmm vmm ls | grep "$REAL" | grep -q "unix:$T/vmm.sock"'
ok "vmm switch <prefix>: the matching VMM becomes active" \
  '"$D" vmm vmm switch ffffffff | grep -q "Active VMM: $FAKE" && grep -q "\"active_vmm\": \"$FAKE\"" "$T/.dstack-vmm/config.json"'
ok "vmm ls marks the active one" '"$D" vmm vmm ls | grep "$FAKE" | grep -q "^ \*"'
ok "calls now go to the active VMM" '"$D" vmm lsvm --json > /dev/null && grep -q "\"/prpc/Status?json\"" rec.log'
: > rec.log
ok "--url http://localhost:8080 (the default) does not override the active VMM" \
  '"$D" vmm --url http://localhost:8080 lsvm --json > /dev/null && grep -q "/prpc/Status" rec.log'
ok "vmm switch to a prefix nobody has: error" '! "$D" vmm vmm switch 0123abcd 2> sw.err && grep -q "no running VMM" sw.err'
ok "vmm switch back to the real VMM" \
  '"$D" vmm vmm switch "${REAL:0:8}" >/dev/null && "$D" vmm lsvm --json | grep -q "$EID"'
: > rec.log
ok "update --kms-url sends exactly UpgradeApp {id, update_kms_urls, kms_urls} and nothing else (§16)" \
  '"$D" vmm --url "http://127.0.0.1:$REC" update vm-1 --kms-url http://kms.example:8000 >/dev/null && python3 -c "
import json
calls = [json.loads(l) for l in open(\"$T/rec.log\")]
assert len(calls) == 1, calls
assert calls[0][\"path\"] == \"/prpc/UpgradeApp?json\", calls
assert json.loads(calls[0][\"body\"]) == {\"id\": \"vm-1\", \"update_kms_urls\": True, \"kms_urls\": [\"http://kms.example:8000\"]}, calls"'
: > rec.log
ok "update with resources sends ResizeVm, then UpgradeApp" \
  '"$D" vmm --url "http://127.0.0.1:$REC" update vm-1 --memory 2G --no-tee >/dev/null && python3 -c "
import json
calls = [json.loads(l) for l in open(\"$T/rec.log\")]
assert [c[\"path\"] for c in calls] == [\"/prpc/ResizeVm?json\", \"/prpc/UpgradeApp?json\"], calls
assert json.loads(calls[0][\"body\"]) == {\"id\": \"vm-1\", \"memory\": 2048}, calls
assert json.loads(calls[1][\"body\"]) == {\"id\": \"vm-1\", \"no_tee\": True}, calls"'
: > rec.log
ok "deploy flags: --gpu, --pin-numa, --hugepages, --tee, --net, --swap reach CreateVm" \
  '"$D" vmm --url "http://127.0.0.1:$REC" deploy --name g --image i --compose app-compose.json --gpu 18:00.0 --gpu 2a:00.0 --pin-numa --hugepages --tee --net bridge --swap 4G >/dev/null && python3 -c "
import json
b = json.loads([json.loads(l) for l in open(\"$T/rec.log\")][0][\"body\"])
assert b[\"gpus\"] == {\"attach_mode\": \"listed\", \"gpus\": [{\"slot\": \"18:00.0\"}, {\"slot\": \"2a:00.0\"}]}, b
assert b[\"pin_numa\"] and b[\"hugepages\"] and b[\"no_tee\"] is False, b
assert b[\"networking\"] == {\"mode\": \"bridge\"} and b[\"swap_size\"] == 4096, b"'
: > rec.log
ok "deploy --ppcie attaches every GPU" \
  '"$D" vmm --url "http://127.0.0.1:$REC" deploy --name g --image i --compose app-compose.json --ppcie >/dev/null && python3 -c "
import json
b = json.loads([json.loads(l) for l in open(\"$T/rec.log\")][0][\"body\"])
assert b[\"gpus\"] == {\"attach_mode\": \"all\", \"gpus\": []}, b"'
ok "deploy --tee --no-tee is refused" '! "$D" vmm --url "http://127.0.0.1:$REC" deploy --name g --image i --compose app-compose.json --tee --no-tee 2>/dev/null'
rm -f "$T/dstack-vmm/$FAKE.json"
"$D" vmm remove "$EID" >/dev/null
python3 -c "import json; print(json.dumps({'name':'r','image':'dstack-0.5.3','compose_file':open('app-compose.json').read(),'vcpu':1,'memory':512,'disk_size':1}))" > vm.json
ok "dstack-vmm run --dry-run validates and writes the work dir" \
  '"$VMM" -c vmm.toml run vm.json --workdir "$T/runonce" --dry-run | grep -q "^validated " && ls "$T"/runonce/*/vm-manifest.json >/dev/null'
# the same VMM restarted with authentication on a TCP listener
kill "$VPID"; wait "$VPID" 2>/dev/null
AP2=$(free_port 23500 1000)
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
