#!/usr/bin/env bash
# cli_crypto_test.sh — runs `dstack compose-hash|app-id|derive|encrypt-env|
# decrypt-env` on real files and checks outputs against the reference
# vectors (kms.md §3, testdata/README.md) and each other. TAP output.
#
# Usage: cli_crypto_test.sh DSTACK_BINARY TESTDATA_DIR
set -u
DSTACK=$1
TESTDATA=$2
COMPOSE=$TESTDATA/dstack/simulator-app-compose.json
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1

n=0
failed=0
ok() { # ok COND_EXIT_STATUS DESCRIPTION
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else
		echo "not ok $n - $2"
		failed=$((failed + 1))
	fi
}
is() { # is GOT WANT DESCRIPTION
	[ "$1" = "$2" ]
	local rc=$?
	ok $rc "$3"
	[ $rc -eq 0 ] || printf '#   got  %s\n#   want %s\n' "$1" "$2"
}
json_field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

ROOT=f57527cea4ab7ffb49af99b158cdc0e3ec06398f528349ea236b7d2afe19cec1
APP=1111111111111111111111111111111111111111
INST=2222222222222222222222222222222222222222

# --- help and usage errors -------------------------------------------------
for c in compose-hash app-id derive encrypt-env decrypt-env; do
	"$DSTACK" "$c" --help >help.txt 2>&1
	ok $? "$c --help exits 0"
	grep -q "Usage: dstack $c" help.txt
	ok $? "$c --help prints usage"
	"$DSTACK" "$c" --no-such-option >/dev/null 2>&1
	is $? 2 "$c with an unknown option exits 2"
done

# --- compose-hash / app-id ---------------------------------------------------
is "$("$DSTACK" compose-hash "$COMPOSE")" 65b4e574f16973956908b6359920593c3b7d9f36f38e81a47f996a0c0d5435bb \
	"compose-hash = SHA-256 of the raw file"
is "$("$DSTACK" compose-hash - <"$COMPOSE")" 65b4e574f16973956908b6359920593c3b7d9f36f38e81a47f996a0c0d5435bb \
	"compose-hash reads stdin"
is "$("$DSTACK" compose-hash --normalize "$COMPOSE")" \
	84d4e7a031ef7d048d1492ca00b754c32513934e53f62b2dcf84b3e440656f61 "compose-hash --normalize = JS SDK hash"
is "$("$DSTACK" app-id "$COMPOSE")" 65b4e574f16973956908b6359920593c3b7d9f36 "app-id = first 20 bytes"
"$DSTACK" app-id --instance-seed "$INST" "$COMPOSE" >ids.json
ok $? "app-id --instance-seed"
want_iid=$(python3 -c "import hashlib;print(hashlib.sha256(bytes.fromhex('$INST'+'65b4e574f16973956908b6359920593c3b7d9f36')).hexdigest()[:40])")
is "$(json_field ids.json instance_id)" "$want_iid" "instance_id = SHA-256(seed || app_id)[..20]"
is "$(json_field ids.json mr_config_id)" \
	0165b4e574f16973956908b6359920593c3b7d9f36f38e81a47f996a0c0d5435bb000000000000000000000000000000 \
	"mr_config_id v1"
"$DSTACK" compose-hash missing.json 2>err.txt
is $? 1 "missing file exits 1"
grep -q "missing.json" err.txt
ok $? "error names the file"
echo '{"a":' >bad.json
"$DSTACK" compose-hash --normalize bad.json 2>/dev/null
is $? 1 "--normalize of invalid JSON exits 1"

# --- derive ------------------------------------------------------------------
echo "$ROOT" >root.hex
chmod 600 root.hex
"$DSTACK" derive --root-key-file root.hex --app-id $APP --instance-id $INST --k256-key-file root.hex >keys.json
ok $? "derive"
is "$(json_field keys.json disk_crypt_key)" a59c814e2c6d9353af59ce4fba7215e5ec3b62a2495b4dca48ea6f9804061f51 "disk key"
is "$(json_field keys.json env_crypt_key)" a7470db8cfdd0fe24134b461d60766afa7c078abe6dce9f2c8a5c44034ca400e "env key"
is "$(json_field keys.json env_crypt_public_key)" 93cf259f68b24775d54290a8ea57cf93efc994d3ff28a7b8ba7a39e9f512302f \
	"env public key"
is "$(json_field keys.json app_ca_key)" 5b779e0a9fe80b2e5866d94958daa1a4e29a183228b3f37acd7eae153e18a75f "app CA key"
is "$(json_field keys.json k256_key)" 02544cbe8407a1a91bf9f8c32335930229442be9fd5b257fff0ffa73ceaafa8c "app k256 key"
is "$(json_field keys.json k256_public_key)" 023d727aea86ed636c2c8da42f3ade5fd853fefced79d1dd92d54fa14a60a478b8 \
	"app k256 public key"
# The same root as a PKCS#8 PEM (as root-ca.key is stored) and as 32 raw bytes.
python3 - "$ROOT" <<'PY'
import base64, sys
d = bytes.fromhex(sys.argv[1])
der = bytes.fromhex("3041020100301306072a8648ce3d020106082a8648ce3d030107042730250201010420") + d
open("root.pem", "w").write("-----BEGIN PRIVATE KEY-----\n" + base64.encodebytes(der).decode() + "-----END PRIVATE KEY-----\n")
open("root.raw", "wb").write(d)
PY
"$DSTACK" derive --root-key-file root.pem --app-id $APP >pem.json
ok $? "derive with a PEM root key"
is "$(json_field pem.json disk_crypt_key)" 14de7a7fd8bddf8e641a55ca97f043cac4344d175419f743940840f3a348f049 \
	"PEM root, no instance id: shared disk key"
"$DSTACK" derive --root-key-file root.raw --app-id $APP >raw.json
is "$(json_field raw.json env_crypt_key)" a7470db8cfdd0fe24134b461d60766afa7c078abe6dce9f2c8a5c44034ca400e \
	"raw 32-byte root key file"
"$DSTACK" derive --root-key-file root.hex --app-id 1111 >/dev/null 2>&1
is $? 2 "short app id exits 2"
echo "TOPSECRETVALUE-not-hex" >bad.key
"$DSTACK" derive --root-key-file bad.key --app-id $APP >/dev/null 2>err.txt
is $? 1 "malformed key file exits 1"
! grep -q TOPSECRET err.txt
ok $? "error does not echo key file contents"

# --- encrypt-env / decrypt-env -------------------------------------------------
PUB=$(json_field keys.json env_crypt_public_key)
json_field keys.json env_crypt_key >env.key
printf '# app secrets\nAPI_TOKEN=abc123\nGREETING="hello world"\nPRICE=$5\n' >app.env
"$DSTACK" encrypt-env --pubkey "$PUB" --env-file app.env -o app.encrypted-env
ok $? "encrypt-env to the derived public key"
size=$(wc -c <app.encrypted-env)
plain=$(printf '{"env":[{"key":"API_TOKEN","value":"abc123"},{"key":"GREETING","value":"hello world"},{"key":"PRICE","value":"$5"}]}' | wc -c)
is "$size" $((plain + 60)) "envelope size = plaintext + 32 + 12 + 16"
"$DSTACK" decrypt-env --key-file env.key app.encrypted-env >out.env
ok $? "decrypt-env with the derived env key"
is "$(cat out.env)" "$(printf 'API_TOKEN=abc123\nGREETING="hello world"\nPRICE="\\$5"')" ".decrypted-env rendering"
is "$(DSTACK_ENV_KEY=$(cat env.key) "$DSTACK" decrypt-env --format json app.encrypted-env)" \
	'{"API_TOKEN":"abc123","GREETING":"hello world","PRICE":"$5"}' "DSTACK_ENV_KEY + --format json"
"$DSTACK" decrypt-env --key-file env.key --format raw app.encrypted-env >raw.txt
grep -q '"key":"API_TOKEN"' raw.txt
ok $? "--format raw prints the plaintext JSON"
"$DSTACK" decrypt-env --key-file env.key -o dec.env app.encrypted-env
is "$(stat -c %a dec.env)" 600 "decrypted output written with mode 0600"

# allowed_envs filter from a compose file.
printf '{"allowed_envs":["GREETING"]}' >compose.json
is "$("$DSTACK" decrypt-env --key-file env.key --compose compose.json app.encrypted-env)" 'GREETING="hello world"' \
	"--compose drops variables not in allowed_envs"

# Hex output through a pipe, env file from stdin, and arguments.
printf 'FROM_STDIN=1\n' | "$DSTACK" encrypt-env --pubkey "$PUB" --env-file - --hex EXTRA=2 2>warn.txt >blob.hex
ok $? "encrypt-env --hex with stdin env file and arguments"
grep -q "warning" warn.txt
ok $? "secrets in argv draw a warning"
is "$("$DSTACK" decrypt-env --key-file env.key - <blob.hex)" "$(printf 'EXTRA=2\nFROM_STDIN=1')" "hex envelope from stdin"

# Tampering, wrong key, missing key, malformed input.
python3 -c "
import sys; b = bytearray(open('app.encrypted-env','rb').read()); b[50] ^= 1; open('tampered','wb').write(b)"
"$DSTACK" decrypt-env --key-file env.key tampered >/dev/null 2>err.txt
is $? 1 "tampered envelope exits 1"
grep -q "authentication" err.txt
ok $? "tampering reported as authentication failure"
! grep -q abc123 err.txt
ok $? "no secret in the error"
head -c 32 /dev/urandom >other.key
"$DSTACK" decrypt-env --key-file other.key app.encrypted-env >/dev/null 2>&1
is $? 1 "wrong key exits 1"
env -u DSTACK_ENV_KEY "$DSTACK" decrypt-env app.encrypted-env >/dev/null 2>&1
is $? 2 "no key given exits 2"
"$DSTACK" decrypt-env --key "$(cat env.key)" app.encrypted-env >out.txt 2>warn.txt
is $? 2 "--key on the command line is refused (exit 2)"
grep -q "key-file" warn.txt && [ ! -s out.txt ]
ok $? "the refusal names --key-file and prints nothing"
"$DSTACK" decrypt-env --key-file - app.encrypted-env <env.key >stdin.out 2>&1
is $? 0 "--key-file - reads the key from stdin"
grep -q "=" stdin.out
ok $? "and decrypts the variables"
"$DSTACK" encrypt-env --pubkey 1234 A=1 >/dev/null 2>&1
is $? 2 "bad public key exits 2"
"$DSTACK" encrypt-env --pubkey "$PUB" --hex 1A=x >/dev/null 2>err.txt
is $? 1 "invalid variable name exits 1"
"$DSTACK" encrypt-env --pubkey 0000000000000000000000000000000000000000000000000000000000000000 --hex A=1 \
	>/dev/null 2>&1
is $? 1 "low-order public key refused"

# The reference implementation's envelope (dstack-util crypto.rs test vector).
python3 -c "
open('ref.bin','wb').write(bytes.fromhex('0bd18749612f4c8b9dd583c7d6a646b90abd34e3c731a7708d0caf9039095641e1f0948e775f0b7351788db7f246d51806954626dcccb6a60d64665ca3715c6bef75616cab476d27bba04080361200d6a58cec'))"
echo 7c282bf94b35dc47801dc953bfa0896fc2bd313381d3e8eca4e42f6536d2a96f >ref.key
is "$("$DSTACK" decrypt-env --key-file ref.key --format raw ref.bin)" '[{"key":"","value":""}]' \
	"decrypts the reference envelope"

echo "1..$n"
[ $failed -eq 0 ]
