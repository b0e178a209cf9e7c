/*
 * cmd_encrypt_env.c — `dstack encrypt-env`: build the encrypted-env blob a
 * VMM passes to a CVM, from an env file (or stdin) and/or KEY=VALUE
 * arguments, for the app's X25519 env public key. Envelope and env rules
 * are in lib/crypto/envcrypt.c and envlist.c.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "core/buf.h"
#include "core/fileio.h"
#include "core/hex.h"
#include "core/mem.h"
#include "crypto/envcrypt.h"
#include "crypto/envlist.h"
#include "crypto/keyfile.h"

#define ENV_FILE_MAX (4 * 1024 * 1024)

static void usage(FILE *f)
{
	fprintf(f, "Usage: dstack encrypt-env --pubkey HEX [--env-file FILE|-] [KEY=VALUE...]\n"
		   "                          [-o OUT] [--hex]\n"
		   "\n"
		   "Encrypt environment variables to an app's env public key (the public_key of\n"
		   "KMS GetAppEnvEncryptPubKey). The output is eph_pub || iv || AES-256-GCM\n"
		   "ciphertext || tag, written raw (the .encrypted-env file) or as hex.\n"
		   "\n"
		   "  --pubkey HEX       the app's X25519 env public key (32 bytes)\n"
		   "  --env-file FILE    KEY=VALUE lines ('#' comments, optional quotes); '-' reads\n"
		   "                     stdin. Preferred: values on the command line are visible\n"
		   "                     to other local users\n"
		   "  -o, --output OUT   write to OUT instead of stdout\n"
		   "  --hex              write lowercase hex (plus newline) instead of raw bytes\n"
		   "  -h, --help         show this help\n");
}

static int fail(const char *what, struct err *e)
{
	fprintf(stderr, "dstack encrypt-env: %s%s%s\n", what, e ? ": " : "", e ? err_str(e) : "");
	return 1;
}

int cmd_encrypt_env(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"pubkey", required_argument, NULL, 'p'}, {"env-file", required_argument, NULL, 'f'},
	    {"output", required_argument, NULL, 'o'}, {"hex", no_argument, NULL, 'x'},
	    {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
	const char *pub_hex = NULL, *env_file = NULL, *output = NULL;
	bool hex = false;
	struct env_list env = ENV_LIST_INIT;
	struct buf plain = BUF_INIT, blob = BUF_INIT;
	struct err e = ERR_INIT;
	uint8_t pub[32];
	int c, rc = 1;

	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			pub_hex = optarg;
			break;
		case 'f':
			env_file = optarg;
			break;
		case 'o':
			output = optarg;
			break;
		case 'x':
			hex = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!pub_hex || (!env_file && optind == argc)) {
		fprintf(stderr,
			"dstack encrypt-env: --pubkey and at least one of --env-file or KEY=VALUE are "
			"required\n\n");
		usage(stderr);
		return 2;
	}
	if (key32_parse_hex(pub_hex, strlen(pub_hex), pub, &e) < 0) {
		fprintf(stderr, "dstack encrypt-env: --pubkey: %s\n", err_str(&e));
		return 2;
	}
	if (env_file) {
		uint8_t *text = NULL;
		size_t len = 0;

		if (input_read(env_file, ENV_FILE_MAX, &text, &len, &e) < 0)
			return fail("reading env file", &e);
		int prc = env_file_parse((const char *)text, len, &env, &e);
		secure_zero(text, len);
		free(text);
		if (prc < 0)
			return fail(env_file, &e);
	}
	if (optind < argc)
		fprintf(stderr, "dstack encrypt-env: warning: values given as arguments are visible to other "
				"users (ps, shell history); prefer --env-file\n");
	for (int i = optind; i < argc; i++) {
		char *eq = strchr(argv[i], '=');

		if (!eq || eq == argv[i]) {
			fprintf(stderr, "dstack encrypt-env: argument %d is not KEY=VALUE\n", i - optind + 1);
			goto out_usage;
		}
		*eq = '\0';
		env_list_add(&env, argv[i], eq + 1);
		*eq = '=';
	}
	if (env_list_validate(&env, &e) < 0) {
		fail("invalid environment", &e);
		goto out;
	}
	if (!output && !hex && isatty(STDOUT_FILENO)) {
		fprintf(stderr,
			"dstack encrypt-env: refusing to write binary to a terminal; use --hex or -o\n");
		goto out_usage;
	}
	if (env_plaintext_build(&env, &plain, &e) < 0 ||
	    env_envelope_encrypt(pub, plain.data, plain.len, &blob, &e) < 0) {
		fail("encryption failed", &e);
		goto out;
	}
	if (hex) {
		char *h = hex_encode_alloc(blob.data, blob.len);
		buf_reset(&blob);
		buf_puts(&blob, h);
		buf_putc(&blob, '\n');
		free(h);
	}
	if (output) {
		if (file_write_atomic(output, blob.data, blob.len, 0644, &e) < 0) {
			fail("writing output", &e);
			goto out;
		}
	} else if (fwrite(blob.data, 1, blob.len, stdout) != blob.len || fflush(stdout) != 0) {
		fail("writing stdout", NULL);
		goto out;
	}
	rc = 0;
	goto out;
out_usage:
	rc = 2;
out:
	env_list_free(&env);
	buf_free_secure(&plain);
	buf_free(&blob);
	return rc;
}
