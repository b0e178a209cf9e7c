#!/usr/bin/env bash
# End-to-end: `dstack dev up` with KMS_AUTH=webhook. auth-simple decides every
# boot from auth-config.json; dev up adds the KMS's, the gateway's and the
# app's identities to it (keeping what the operator wrote), the KMS passes its
# self-authorization, the app answers through the gateway, and an app that is
# not in auth-config.json is refused its keys (auth-simple's reason reaches
# the VMM's boot error). Missing programs fail the test on a CI machine.
set -u
DSTACK=$1
SRC=$2
. "$SRC/tests/e2e/lib.sh"
e2e_start /tmp/dstack-e2e-wh.XXXXXX

require_or_skip dstack-kms dstack-gateway dstack-vmm auth-simple dstack-util dstack-guest-agent wg ip curl python3

new_stack "$T" webhook
GREETING="webhook-greeting-$RANDOM$RANDOM"
printf 'GREETING=%s\n' "$GREETING" >"$T/env"
# hostcfg's first run writes auth-config.json; the operator adds an entry of
# their own before the first `up`.
"$DSTACK" hostcfg --dir "$T" >/dev/null 2>&1
python3 - "$T/auth-config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["apps"]["0x00000000000000000000000000000000000000aa"] = {"composeHashes": ["0x" + "ab" * 32], "devices": [], "allowAnyDevice": True}
c["osImages"].append("0x" + "cd" * 32)
json.dump(c, open(p, "w"), indent=2)
PY

"$DSTACK" dev up --dir "$T" --env-file "$T/env" --compose "$SRC/examples/hello/app-compose.json" \
	--timeout 30 --app-timeout 90 >"$T/up.out" 2>&1
rc=$?
check "dev up with KMS_AUTH=webhook exits 0" '[ $rc -eq 0 ]'
if [ $rc -ne 0 ]; then
	sed 's/^/# /' "$T/up.out"
	tail -20 "$T/logs/kms.log" | sed 's/^/# kms: /'
fi
"$DSTACK" dev status --dir "$T" >"$T/status.out" 2>&1
for c in auth-simple kms-agent kms gateway-agent gateway vmm; do
	check "$c healthy in dev status" 'grep -Eq "^  $c +healthy" "$T/status.out"'
done
check "kms.toml uses the webhook" 'grep -q "type = \"webhook\"" "$T/kms.toml"'
check "the KMS passed its self-authorization through auth-simple (no failure in its log)" '! grep -q "self authorization failed" "$T/logs/kms.log"'

APP=$("$DSTACK" app-id "$SRC/examples/hello/app-compose.json")
HASH=$("$DSTACK" compose-hash "$SRC/examples/hello/app-compose.json")
out=$(app_get "$APP" --cacert "$T/certs/dev-ca.crt")
check "the app answers through the gateway (basic URL)" 'grep -q "proto=http/1.1 port=80 GREETING=$GREETING" <<<"$out"'
py() { python3 -c "import json,sys; c=json.load(open(sys.argv[1])); $1" "$T/auth-config.json" "${@:2}"; }
check "auth-config.json allows the app: its app id with its compose hash" \
	'py "a=c[\"apps\"][\"0x\"+sys.argv[2]]; assert \"0x\"+sys.argv[3] in a[\"composeHashes\"]" "$APP" "${HASH#0x}"'
check "auth-config.json pins the app to the simulated machine's device id" \
	'py "a=c[\"apps\"][\"0x\"+sys.argv[2]]; assert len(a[\"devices\"])==1 and not a[\"allowAnyDevice\"]" "$APP"'
check "auth-config.json holds the KMS's mrAggregated and the dev image's OS hash" \
	'py "assert len(c[\"kms\"][\"mrAggregated\"])==1; assert \"0x\"+open(sys.argv[2]).read().strip() in c[\"osImages\"]" "$T/vmm/image/dstack-dev/digest.txt"'
check "the operator's own entries are kept" \
	'py "assert \"0x00000000000000000000000000000000000000aa\" in c[\"apps\"]; assert \"0x\"+\"cd\"*32 in c[\"osImages\"]"'
GW_APP=$("$DSTACK" app-id "$T/gateway-cvm/shared/app-compose.json")
check "auth-config.json allows the gateway's CVM (its own app entry)" 'py "assert \"0x\"+sys.argv[2] in c[\"apps\"]" "$GW_APP"'

# An app that is not in auth-config.json: CreateVm directly on the VMM.
python3 - "$SRC/examples/hello/app-compose.json" "$BASE" "$T/denied-compose.json" >"$T/denied.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["name"] = "hello-not-allowed"
compose = json.dumps(c)
open(sys.argv[3], "w").write(compose)
b = int(sys.argv[2])
print(json.dumps({"name": "denied", "image": "dstack-dev", "compose_file": compose, "vcpu": 1,
                  "memory": 512, "disk_size": 1, "kms_urls": ["https://kms.localhost:%d" % (b + 1)],
                  "gateway_urls": ["https://gateway.localhost:%d" % (b + 2)], "simulated_tee": "dstack-tdx"}))
PY
DENIED=$(curl -s -H 'Content-Type: application/json' -d @"$T/denied.json" http://127.0.0.1:$((BASE + 5))/prpc/CreateVm?json |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
berr=""
for i in $(seq 1 60); do
	berr=$(curl -s -H 'Content-Type: application/json' -d '{}' http://127.0.0.1:$((BASE + 5))/prpc/Status?json |
		python3 -c 'import json,sys; print([v for v in json.load(sys.stdin)["vms"] if v["id"]==sys.argv[1]][0]["boot_error"])' "$DENIED" 2>/dev/null)
	[ -n "$berr" ] && break
	sleep 1
done
check "an app not in auth-config.json is refused its keys: auth-simple's reason in its boot error ($berr)" 'grep -q "app not registered" <<<"$berr"'
DAPP=$("$DSTACK" app-id "$T/denied-compose.json")
out=$(app_get "$DAPP" --cacert "$T/certs/dev-ca.crt" -o /dev/null -w "%{http_code}" 2>/dev/null)
check "the refused app is not reachable through the gateway (HTTP $out)" '[ "$out" != 200 ]'
out=$(app_get "$APP" --cacert "$T/certs/dev-ca.crt")
check "the allowed app still answers" 'grep -q "GREETING=$GREETING" <<<"$out"'
curl -s -H 'Content-Type: application/json' -d "{\"id\":\"$DENIED\"}" http://127.0.0.1:$((BASE + 5))/prpc/RemoveVm?json >/dev/null

# Re-running up changes nothing in auth-config.json (idempotent).
sum=$(sha256sum <"$T/auth-config.json")
"$DSTACK" dev up --dir "$T" --env-file "$T/env" --compose "$SRC/examples/hello/app-compose.json" \
	--timeout 30 --app-timeout 60 >"$T/up2.out" 2>&1
rc=$?
check "up on the running stack exits 0 and leaves auth-config.json unchanged" '[ $rc -eq 0 ] && [ "$(sha256sum <"$T/auth-config.json")" = "$sum" ]'
"$DSTACK" dev down --dir "$T" --grace 3 >"$T/down.out" 2>&1
rc=$?
check "dev down exits 0" '[ $rc -eq 0 ]'
left=$(for d in /proc/[0-9]*; do { tr '\0' ' ' <"$d/cmdline" | grep -F -- "$T" >/dev/null && ! grep -q '^State:.*Z' "$d/status" && echo "${d#/proc/}"; } 2>/dev/null; done)
check "no process refers to the state dir after down" '[ -z "$left" ]'
echo "1..$n"
