/*
 * vmm_kms.c — the KMS side of `dstack vmm`: env files, their encryption to
 * the app's env key (GetAppEnvEncryptPubKey from the VMM or a KMS), and the
 * check that a trusted KMS signed that key, so a VMM operator cannot swap in
 * a key of their own; `kms list|add|remove` keeps the trusted signers in
 * ~/.dstack-vmm/kms-whitelist.json. Without a tty an untrusted signer is a
 * refusal, with one the operator is asked.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "core/hex.h"
#include "core/mem.h"
#include "crypto/appkeys.h"
#include "crypto/envcrypt.h"
#include "crypto/envlist.h"
#include "vmm_cmds.h"

int env_file_load(const char *path, struct env_list *env, struct err *e)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int rc;

	if (read_text(path, &text, &len, e) < 0)
		return -1;
	rc = env_file_parse(text, len, env, e);
	secure_zero(text, len);
	return rc;
}

static char *whitelist_path(void)
{
	const char *home = getenv("HOME");

	return xfmt("%s/.dstack-vmm/kms-whitelist.json", home ? home : ".");
}

static json_t *whitelist_load(void)
{
	_cleanup_free_ char *p = whitelist_path();
	json_t *j = json_file_load(p, 1 << 20);

	return j ? j : json_pack("{s:[]}", "trusted_signers");
}

static bool signer_trusted(const char *hex)
{
	_cleanup_json_ json_t *w = whitelist_load();
	json_t *v;
	size_t i;

	json_array_foreach(json_object_get(w, "trusted_signers"), i, v)
	{
		const char *s = json_string_value(v);

		if (s && !strcasecmp(s + (!strncmp(s, "0x", 2) ? 2 : 0), hex))
			return true;
	}
	return false;
}

/*
 * The env key of the app, after checking its KMS signature: pub, and
 * signer_hex who signed it. A KMS reached directly is not TLS-verified (its
 * certificate chains to its own root, which this host need not trust): what
 * makes the key trustworthy is the signature and the signer whitelist, as
 * when the VMM proxies the call (spec vmm.md §3, §13).
 */
static int env_pubkey(struct vmm_cli *c, const char *kms_url, const char *app_id_hex, uint8_t pub[32],
		      char signer_hex[67], struct err *e)
{
	struct vmm_cli kms = {.url = (char *)kms_url, .tls_unverified = true};
	_cleanup_json_ json_t *r = NULL;
	uint8_t app_id[20], sig[65], signer[33];
	const char *sv1;

	if (hex_decode_exact(app_id_hex, app_id, 20, e) < 0)
		return err_wrap(e, "app id");
	if (vmm_call(kms_url ? &kms : c, "GetAppEnvEncryptPubKey", json_pack("{s:s}", "app_id", app_id_hex),
		     &r, e) < 0)
		return kms_url ? err_wrap(e, "KMS %s", kms_url) : -1;
	if (hex_decode_exact(js(r, "public_key"), pub, 32, e) < 0)
		return err_wrap(e, "public_key");
	sv1 = js(r, "signature_v1");
	if (hex_decode_exact(*sv1 ? sv1 : js(r, "signature"), sig, 65, e) < 0)
		return err_wrap(e, "KMS signature");
	if (kms_env_pubkey_recover(app_id, pub, *sv1 != 0,
				   (uint64_t)json_integer_value(json_object_get(r, "timestamp")), sig, signer,
				   e) < 0)
		return err_wrap(e, "KMS signature does not verify");
	hex_encode(signer, 33, signer_hex);
	return 0;
}

int encrypt_env_file(struct vmm_cli *c, const char *kms_url, const char *app_id_hex, const char *env_file,
		     char **hex_out, struct err *e)
{
	uint8_t pub[32];
	char signer_hex[67];
	struct env_list env = ENV_LIST_INIT;
	struct buf plain = BUF_INIT, out = BUF_INIT;
	int rc = -1;

	if (env_pubkey(c, kms_url, app_id_hex, pub, signer_hex, e) < 0)
		return -1;
	if (!signer_trusted(signer_hex)) {
		char ans[8] = "";

		fprintf(stderr, "KMS public key signer %s is not in %s\n", signer_hex,
			"~/.dstack-vmm/kms-whitelist.json");
		if (!isatty(STDIN_FILENO))
			return err_set(e, "untrusted KMS signer %s (trust it with `dstack vmm kms add %s`)",
				       signer_hex, signer_hex);
		fprintf(stderr, "Continue anyway? [y/N] ");
		if (!fgets(ans, sizeof(ans), stdin) || (ans[0] != 'y' && ans[0] != 'Y'))
			return err_set(e, "aborted: untrusted KMS signer");
	}
	if (env_file_load(env_file, &env, e) < 0 || env_list_validate(&env, e) < 0 ||
	    env_plaintext_build(&env, &plain, e) < 0 ||
	    env_envelope_encrypt(pub, plain.data, plain.len, &out, e) < 0)
		goto done;
	*hex_out = malloc(out.len * 2 + 1);
	if (!*hex_out)
		abort();
	hex_encode(out.data, out.len, *hex_out);
	rc = 0;
done:
	env_list_free(&env);
	buf_free_secure(&plain);
	buf_free(&out);
	return rc;
}

/* `kms list | add <pubkey> | remove <pubkey>` */
int vmm_kms(struct vmm_cli *c, int argc, char **argv)
{
	_cleanup_json_ json_t *w = whitelist_load();
	json_t *arr = json_object_get(w, "trusted_signers"), *v;
	_cleanup_free_ char *p = whitelist_path();
	struct err e = ERR_INIT;
	size_t i;
	uint8_t k[33];

	(void)c;
	if (argc < 2 || !strcmp(argv[1], "list")) {
		json_array_foreach(arr, i, v) printf("%s\n", json_string_value(v));
		return 0;
	}
	if (argc < 3 || (strcmp(argv[1], "add") && strcmp(argv[1], "remove"))) {
		fprintf(stderr, "usage: dstack vmm kms list | add <pubkey> | remove <pubkey>\n");
		return 2;
	}
	const char *key = argv[2] + (!strncmp(argv[2], "0x", 2) ? 2 : 0);
	if (hex_decode_exact(key, k, 33, &e) < 0)
		return vmm_die("kms: the signer key is 33 bytes of hex", &e);
	for (i = json_array_size(arr); i-- > 0;) {
		const char *s = json_string_value(json_array_get(arr, i));

		if (s && !strcasecmp(s, key))
			json_array_remove(arr, i);
	}
	if (!strcmp(argv[1], "add"))
		json_array_append_new(arr, json_string(key));
	if (json_file_save(p, w, &e) < 0)
		return vmm_die("kms", &e);
	return 0;
}
