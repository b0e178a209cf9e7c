/*
 * cmd_compose_hash.c — `dstack compose-hash`: the SHA-256 of an
 * app-compose.json exactly as the guest measures it (raw bytes), or of the
 * normalised form SDKs compute. The work is in lib/crypto/compose.c.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cmd.h"
#include "core/buf.h"
#include "core/hex.h"
#include "crypto/compose.h"
#include "crypto/keyfile.h"

#define COMPOSE_MAX (50 * 1024 * 1024)

static void usage(FILE *f)
{
	fprintf(f, "Usage: dstack compose-hash [--normalize [--drop-unused]] FILE\n"
		   "\n"
		   "Print the compose hash (SHA-256, hex) of an app-compose.json. FILE may be '-'\n"
		   "for stdin. Without options the raw bytes are hashed, which is what the CVM\n"
		   "measures and what the app id derives from.\n"
		   "\n"
		   "  --normalize     hash the normalised form (sorted keys, compact, as the SDKs'\n"
		   "                  getComposeHash does) instead of the raw bytes\n"
		   "  --drop-unused   with --normalize, drop fields the runner ignores\n"
		   "  -h, --help      show this help\n");
}

int cmd_compose_hash(int argc, char **argv)
{
	static const struct option opts[] = {{"normalize", no_argument, NULL, 'n'},
					     {"drop-unused", no_argument, NULL, 'd'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	bool normalize = false;
	unsigned flags = 0;
	struct err e = ERR_INIT;
	uint8_t *raw = NULL, hash[32];
	size_t len = 0;
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			normalize = true;
			break;
		case 'd':
			flags |= COMPOSE_NORM_DROP_UNUSED;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1 || (flags && !normalize)) {
		usage(stderr);
		return 2;
	}
	if (input_read(argv[optind], COMPOSE_MAX, &raw, &len, &e) < 0) {
		fprintf(stderr, "dstack compose-hash: %s\n", err_str(&e));
		return 1;
	}
	if (normalize) {
		struct buf norm = BUF_INIT;

		if (compose_normalize(raw, len, flags, &norm, &e) < 0) {
			fprintf(stderr, "dstack compose-hash: %s: %s\n", argv[optind], err_str(&e));
			free(raw);
			buf_free(&norm);
			return 1;
		}
		compose_hash(norm.data, norm.len, hash);
		buf_free(&norm);
	} else {
		compose_hash(raw, len, hash);
	}
	free(raw);

	char hex[65];
	hex_encode(hash, 32, hex);
	printf("%s\n", hex);
	return 0;
}
