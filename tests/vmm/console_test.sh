#!/bin/bash
# console_test.sh — runs console_test.js (headless Chromium) against a real
# dstack-vmm with the process backend, with a stand-in KMS (a few lines of
# Python answering GetAppEnvEncryptPubKey with a known X25519 key) so the
# environment the browser encrypted can be decrypted and checked here.
# usage: console_test.sh <dstack-vmm> <supervisor> <dstack> <build-dir>
set -u
VMM=$1 SV=$2 DSTACK=$3 OUT=$4
HERE=$(cd "$(dirname "$0")" && pwd)
if [ ! -x /usr/bin/chromium ] || ! command -v node >/dev/null; then
  echo "1..0 # SKIP chromium or node not installed (scripts/deps/vmm-web.txt)"; exit 0
fi
PW=""
for d in "${NODE_PATH:-}" "$OUT/node_modules" /usr/lib/node_modules; do
  [ -n "$d" ] && [ -d "$d/playwright-core" ] && PW=$d && break
done
if [ -z "$PW" ]; then
  (cd "$OUT" && npm install --no-save --silent playwright-core@1 >/dev/null 2>&1) && PW=$OUT/node_modules
fi
if [ -z "$PW" ] || [ ! -d "$PW/playwright-core" ]; then
  echo "1..0 # SKIP playwright-core not available (npm install playwright-core)"; exit 0
fi
. "$HERE/lib.sh"
T=$(mktemp -d /tmp/vmm-console-XXXXXX)
# HP: the app's mapped host port (inside the port-mapping range 1..20000); HP + 1000 the app's own
API=$(free_port 22000 3000) KMS=$(free_port 19000 900) HP=$(free_port 15000 3000)
VMM_API=http://127.0.0.1:$API
trap finish EXIT
mkdir -p "$T/run"
fake_image "$T/img/dstack-0.5.3" 0.5.3
# stand-in KMS key
openssl genpkey -algorithm X25519 -out "$T/kms.pem" 2>/dev/null
SECRET=$(openssl pkey -in "$T/kms.pem" -outform DER | tail -c 32 | od -An -tx1 | tr -d ' \n')
PUB=$(openssl pkey -in "$T/kms.pem" -pubout -outform DER | tail -c 32 | od -An -tx1 | tr -d ' \n')
cat > "$T/kms.py" <<PY
import http.server, json
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get('Content-Length') or 0))
        body = json.dumps({"public_key": "$PUB", "signature": "", "timestamp": 0, "signature_v1": ""}).encode()
        self.send_response(200); self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer(('127.0.0.1', $KMS), H).serve_forever()
PY
python3 "$T/kms.py" & PIDS+=($!)
cat > "$T/vmm.toml" <<TOML
address = "tcp:127.0.0.1:$API"
kms_url = "http://127.0.0.1:$KMS"
run_path = "$T/run"
[image]
path = "$T/img"
[cvm]
backend = "process"
kms_urls = ["http://127.0.0.1:$KMS"]
[cvm.process]
simtee_dir = "$T/simtee"
[cvm.port_mapping]
enabled = true
address = "127.0.0.1"
range = [{protocol="tcp", from=1, to=20000}]
$(supervisor_toml)
TOML
python3 - "$T/compose.json" $((HP + 1000)) <<'PY'
import json, sys
# key_provider none: the stand-in KMS above only hands out an env key, it cannot
# serve app keys to the guest's setup (the env is then ignored by the guest)
json.dump({"manifest_version": 2, "name": "webui", "runner": "bash", "kms_enabled": True, "key_provider": "none",
           "bash_script": "echo hello from webui; exec python3 -m http.server %s --bind 127.0.0.1" % sys.argv[2]},
          open(sys.argv[1], "w"))
PY
"$DSTACK" simtee init "$T/simtee" >/dev/null # the simulated TDX the guests boot on
XDG_RUNTIME_DIR=$T "$VMM" -c "$T/vmm.toml" 2> "$T/vmm.log" & VPID=$!
wait_for 10 rpc Version
# watch for the encrypted env while the browser works (the VM is removed at the end)
( for _ in $(seq 300); do f=$(ls "$T"/run/*/shared/.encrypted-env 2>/dev/null | head -1)
    [ -n "$f" ] && cp "$f" "$T/env.bin" && break; sleep 0.1; done ) & WPID=$!
NODE_PATH=$PW node "$HERE/console_test.js" "http://127.0.0.1:$API/" "$T/compose.json" "$OUT/vmm-console.png" "$HP" "$T/run" "$SECRET" \
  | sed '/^1\.\./d' > "$T/tap.txt"
wait $WPID
cat "$T/tap.txt"
N=$(grep -c '^\(not \)\?ok' "$T/tap.txt")
N=$((N + 1))
if [ -s "$T/env.bin" ] && DSTACK_ENV_KEY=$SECRET "$DSTACK" decrypt-env "$T/env.bin" 2>/dev/null | grep -q "SECRET=.*swordfish"; then
  echo "ok $N - the env encrypted in the browser decrypts with the KMS key to SECRET=swordfish"
else
  echo "not ok $N - the env encrypted in the browser decrypts with the KMS key"
fi
echo "1..$N"
