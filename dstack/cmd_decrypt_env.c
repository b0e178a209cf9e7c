/*
 * cmd_decrypt_env.c — `dstack decrypt-env`: open an .encrypted-env with the
 * app's env_crypt_key and print it the way the guest writes it
 * (.decrypted-env or .decrypted-env.json). The key is read from a file or
 * the DSTACK_ENV_KEY environment variable so it never has to appear in argv.
 * All logic is in lib/crypto/envcrypt.c and envlist.c.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "core/buf.h"
#include "core/fileio.h"
#include "core/mem.h"
#include "crypto/envcrypt.h"
#include "crypto/envlist.h"
#include "crypto/keyfile.h"

#define ENCRYPTED_ENV_MAX (4 * 1024 * 1024)
#define COMPOSE_MAX (50 * 1024 * 1024)

static void usage(FILE *f)
{
	fprintf(f, "Usage: dstack decrypt-env [--key-file F] [--compose F] [--format env|json|raw]\n"
		   "                          [-o OUT] FILE\n"
		   "\n"
		   "Decrypt an .encrypted-env (raw bytes or hex; '-' reads stdin) with the app's\n"
		   "env_crypt_key and print the variables as the CVM renders them.\n"
		   "\n"
		   "The key (32 bytes: raw, or 64 hex digits) comes from --key-file, else from the\n"
		   "DSTACK_ENV_KEY environment variable (hex).\n"
		   "\n"
		   "  --key-file F       file holding the env_crypt_key\n"
		   "                     ('-' reads it from stdin)\n"
		   "  --compose F        apply the compose's allowed_envs like the CVM (others are\n"
		   "                     dropped); without it every variable is kept\n"
		   "  --format FMT       env (.decrypted-env, default), json (.decrypted-env.json)\n"
		   "                     or raw (the decrypted JSON plaintext)\n"
		   "  -o, --output OUT   write to OUT (mode 0600) instead of stdout\n"
		   "  -h, --help         show this help\n");
}

int cmd_decrypt_env(int argc, char **argv)
{
	static const struct option opts[] = {{"key-file", required_argument, NULL, 'k'},
					     {"key", required_argument, NULL, 'K'},
					     {"compose", required_argument, NULL, 'c'},
					     {"format", required_argument, NULL, 'F'},
					     {"output", required_argument, NULL, 'o'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	const char *key_file = NULL, *compose = NULL, *format = "env", *output = NULL;
	struct env_list env = ENV_LIST_INIT;
	struct buf out = BUF_INIT;
	struct err e = ERR_INIT;
	char **allowed = NULL;
	size_t n_allowed = 0, blob_len = 0, pt_len = 0;
	uint8_t key[32], *blob = NULL, *pt = NULL;
	int c, rc = 1;

	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			key_file = optarg;
			break;
		case 'K':
			fprintf(stderr,
				"dstack decrypt-env: --key is refused: a key on the command line is "
				"visible to every user (ps); use --key-file FILE (or -) or DSTACK_ENV_KEY\n");
			return 2;
		case 'c':
			compose = optarg;
			break;
		case 'F':
			format = optarg;
			break;
		case 'o':
			output = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1 ||
	    (strcmp(format, "env") && strcmp(format, "json") && strcmp(format, "raw"))) {
		usage(stderr);
		return 2;
	}
	if (key_file) {
		if (key32_load_file(key_file, key, &e) < 0)
			goto fail;
	} else if (getenv("DSTACK_ENV_KEY")) {
		const char *k = getenv("DSTACK_ENV_KEY");
		if (key32_parse_hex(k, strlen(k), key, &e) < 0) {
			err_wrap(&e, "DSTACK_ENV_KEY");
			goto fail;
		}
	} else {
		fprintf(stderr, "dstack decrypt-env: no key: give --key-file or set DSTACK_ENV_KEY\n");
		return 2;
	}
	if (compose) {
		uint8_t *raw = NULL;
		size_t len = 0;

		if (input_read(compose, COMPOSE_MAX, &raw, &len, &e) < 0)
			goto fail;
		int arc = env_allowed_from_compose(raw, len, &allowed, &n_allowed, &e);
		free(raw);
		if (arc < 0) {
			err_wrap(&e, "%s", compose);
			goto fail;
		}
	}
	if (input_read(argv[optind], ENCRYPTED_ENV_MAX, &blob, &blob_len, &e) < 0 ||
	    env_envelope_unhex(&blob, &blob_len, &e) < 0 ||
	    env_envelope_decrypt(key, blob, blob_len, &pt, &pt_len, &e) < 0)
		goto fail;
	if (!strcmp(format, "raw")) {
		buf_append(&out, pt, pt_len);
		buf_putc(&out, '\n');
	} else {
		if (env_plaintext_accept(pt, pt_len, (const char *const *)allowed, n_allowed, &env, &e) < 0)
			goto fail;
		if (!strcmp(format, "env"))
			env_render_dotenv(&env, &out);
		else if (env_render_json(&env, &out, &e) < 0)
			goto fail;
		else
			buf_putc(&out, '\n');
	}
	if (output) {
		if (file_write_atomic(output, out.data, out.len, 0600, &e) < 0)
			goto fail;
	} else if (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) != 0) {
		fprintf(stderr, "dstack decrypt-env: writing stdout failed\n");
		goto out;
	}
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "dstack decrypt-env: %s\n", err_str(&e));
out:
	secure_zero(key, sizeof(key));
	if (pt) {
		secure_zero(pt, pt_len);
		free(pt);
	}
	free(blob);
	env_list_free(&env);
	env_allowed_free(allowed, n_allowed);
	buf_free_secure(&out);
	return rc;
}
