/*
 * cmd_derive.c — `dstack derive`: the per-app keys a KMS with the given root
 * keys hands out (kms.md §3), as JSON, for audits and tests. Keys are read
 * from files, never argv. Derivations are in lib/crypto/appkeys.c.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cmd.h"
#include "core/cleanup.h"
#include "core/hex.h"
#include "core/mem.h"
#include "crypto/appkeys.h"
#include "crypto/k256.h"
#include "crypto/kdf.h"
#include "crypto/keyfile.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: dstack derive --root-key-file F --app-id HEX [--instance-id HEX]\n"
		   "                     [--k256-key-file F]\n"
		   "\n"
		   "Print, as JSON, the keys a KMS with these root keys derives for an app:\n"
		   "disk_crypt_key, env_crypt_key (+ X25519 public key), the app CA P-256 key and,\n"
		   "with --k256-key-file, the app secp256k1 key, its KMS signature and the\n"
		   "signature over the env public key. The output contains secrets.\n"
		   "\n"
		   "  --root-key-file F   root-ca.key: P-256 PEM, 32 raw bytes or 64 hex digits\n"
		   "  --app-id HEX        20-byte app id\n"
		   "  --instance-id HEX   20-byte instance id (omit for the instance-shared disk key)\n"
		   "  --k256-key-file F   root-k256.key: 32 raw bytes or 64 hex digits\n"
		   "  -h, --help          show this help\n");
}

static void put_hex(json_t *o, const char *name, const void *data, size_t len)
{
	char *h = hex_encode_alloc(data, len);

	json_object_set_new(o, name, json_string(h));
	secure_zero(h, strlen(h));
	free(h);
}

static int parse_id(const char *opt, const char *hex, uint8_t out[20])
{
	struct err e = ERR_INIT;

	if (hex_decode_exact(hex, out, 20, &e) < 0) {
		fprintf(stderr, "dstack derive: %s must be 20 bytes of hex: %s\n", opt, err_str(&e));
		return -1;
	}
	return 0;
}

int cmd_derive(int argc, char **argv)
{
	static const struct option opts[] = {{"root-key-file", required_argument, NULL, 'r'},
					     {"app-id", required_argument, NULL, 'a'},
					     {"instance-id", required_argument, NULL, 'i'},
					     {"k256-key-file", required_argument, NULL, 'k'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	const char *root_file = NULL, *app_hex = NULL, *inst_hex = NULL, *k256_file = NULL;
	uint8_t root[32], root_k256[32], app_id[20], inst[20], root_pub[33];
	struct kms_app_keys k;
	_cleanup_json_ json_t *o = NULL;
	struct err e = ERR_INIT;
	int c, rc = 1;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			root_file = optarg;
			break;
		case 'a':
			app_hex = optarg;
			break;
		case 'i':
			inst_hex = optarg;
			break;
		case 'k':
			k256_file = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!root_file || !app_hex || optind != argc) {
		usage(stderr);
		return 2;
	}
	if (parse_id("--app-id", app_hex, app_id) < 0 ||
	    (inst_hex && parse_id("--instance-id", inst_hex, inst) < 0))
		return 2;
	if (key32_load_file(root_file, root, &e) < 0)
		goto fail;
	if (!p256_scalar_valid(root)) {
		err_set(&e, "root key is not a valid P-256 scalar");
		goto fail;
	}
	if (k256_file && (key32_load_file(k256_file, root_k256, &e) < 0 || !k256_seckey_valid(root_k256) ||
			  k256_pubkey(root_k256, true, root_pub, &e) < 0)) {
		if (!e.msg[0])
			err_set(&e, "k256 root key is not a valid secp256k1 scalar");
		goto fail;
	}
	if (kms_derive_app_keys(root, k256_file ? root_k256 : NULL, app_id, inst, inst_hex ? 20 : 0, &k, &e) <
	    0)
		goto fail;

	o = json_object();
	uint8_t x[32], y[32], ca_pub[33];
	put_hex(o, "app_id", app_id, 20);
	put_hex(o, "instance_id", inst, inst_hex ? 20 : 0);
	put_hex(o, "disk_crypt_key", k.disk_crypt_key, 32);
	put_hex(o, "env_crypt_key", k.env_crypt_key, 32);
	put_hex(o, "env_crypt_public_key", k.env_crypt_pub, 32);
	put_hex(o, "app_ca_key", k.app_ca_key, 32);
	if (p256_public_xy(k.app_ca_key, x, y, &e) < 0)
		goto fail;
	ca_pub[0] = (uint8_t)(0x02 | (y[31] & 1));
	memcpy(ca_pub + 1, x, 32);
	put_hex(o, "app_ca_public_key", ca_pub, 33);
	if (k.has_k256) {
		uint8_t sig[65], sig_v1[65];

		put_hex(o, "k256_key", k.k256_key, 32);
		put_hex(o, "k256_public_key", k.k256_pub, 33);
		put_hex(o, "k256_signature", k.k256_signature, 65);
		put_hex(o, "kms_k256_public_key", root_pub, 33);
		if (kms_env_pubkey_signatures(root_k256, app_id, k.env_crypt_pub, 0, sig, sig_v1, &e) < 0)
			goto fail;
		put_hex(o, "env_public_key_signature", sig, 65);
	}
	if (json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0 || printf("\n") < 0 ||
	    fflush(stdout)) {
		err_set(&e, "writing stdout failed");
		goto fail;
	}
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "dstack derive: %s\n", err_str(&e));
out:
	secure_zero(root, sizeof(root));
	secure_zero(root_k256, sizeof(root_k256));
	secure_zero(&k, sizeof(k));
	return rc;
}
