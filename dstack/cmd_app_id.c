/*
 * cmd_app_id.c — `dstack app-id`: the default app id of an app-compose.json
 * (first 20 bytes of its raw SHA-256), optionally with the instance id for a
 * given seed and the MR_CONFIG_ID v1 the VMM would set. Logic lives in
 * lib/crypto/compose.c.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cmd.h"
#include "core/cleanup.h"
#include "core/hex.h"
#include "crypto/compose.h"
#include "crypto/keyfile.h"

#define COMPOSE_MAX (50 * 1024 * 1024)

static void usage(FILE *f)
{
	fprintf(f, "Usage: dstack app-id [--json] [--instance-seed HEX] FILE\n"
		   "\n"
		   "Print the default app id of an app-compose.json: the first 20 bytes of its\n"
		   "compose hash, in hex. FILE may be '-' for stdin.\n"
		   "\n"
		   "  --json               print {compose_hash, app_id, mr_config_id[, instance_id]}\n"
		   "  --instance-seed HEX  also derive instance_id = SHA-256(seed || app_id)[..20]\n"
		   "                       (implies --json)\n"
		   "  -h, --help           show this help\n");
}

int cmd_app_id(int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
					     {"instance-seed", required_argument, NULL, 's'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	bool json = false;
	const char *seed_hex = NULL;
	_cleanup_free_ uint8_t *seed = NULL;
	size_t seed_len = 0;
	struct err e = ERR_INIT;
	uint8_t *raw = NULL, hash[32], app_id[20];
	size_t len = 0;
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 's':
			seed_hex = optarg;
			json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	if (seed_hex &&
	    (hex_decode_alloc(seed_hex, strlen(seed_hex), &seed, &seed_len, &e) < 0 || !seed_len)) {
		fprintf(stderr, "dstack app-id: --instance-seed: %s\n",
			seed_len ? err_str(&e) : "empty seed");
		return 2;
	}
	if (input_read(argv[optind], COMPOSE_MAX, &raw, &len, &e) < 0) {
		fprintf(stderr, "dstack app-id: %s\n", err_str(&e));
		return 1;
	}
	compose_hash(raw, len, hash);
	free(raw);
	compose_default_app_id(hash, app_id);

	char hex[97];
	if (!json) {
		hex_encode(app_id, 20, hex);
		printf("%s\n", hex);
		return 0;
	}
	_cleanup_json_ json_t *o = json_object();
	uint8_t cid[MR_CONFIG_ID_LEN];
	hex_encode(hash, 32, hex);
	json_object_set_new(o, "compose_hash", json_string(hex));
	hex_encode(app_id, 20, hex);
	json_object_set_new(o, "app_id", json_string(hex));
	mr_config_id_v1(hash, cid);
	hex_encode(cid, sizeof(cid), hex);
	json_object_set_new(o, "mr_config_id", json_string(hex));
	if (seed) {
		uint8_t iid[20];

		compose_instance_id(seed, seed_len, app_id, NULL, 0, iid);
		hex_encode(iid, 20, hex);
		json_object_set_new(o, "instance_id", json_string(hex));
	}
	json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	printf("\n");
	return 0;
}
