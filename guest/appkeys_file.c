/*
 * appkeys_file.c — read and write `.appkeys.json` (see appkeys_file.h).
 * Hex fields may be empty (k256_signature and env_crypt_key are empty for
 * the None/Local providers); anything else malformed is an error naming the
 * field but never its value.
 */
#include "appkeys_file.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/hex.h"
#include "core/mem.h"

#define APPKEYS_MAX (1024 * 1024)

void app_keys_free(struct app_keys *k)
{
	if (!k)
		return;
	free(k->gateway_app_id);
	free(k->ca_cert);
	if (k->provider_key) {
		secure_zero(k->provider_key, strlen(k->provider_key));
		free(k->provider_key);
	}
	free(k->local_mr);
	free(k->tpm_pubkey);
	free(k->kms_url);
	free(k->kms_pubkey);
	if (k->tmp_ca_key) {
		secure_zero(k->tmp_ca_key, strlen(k->tmp_ca_key));
		free(k->tmp_ca_key);
	}
	free(k->tmp_ca_cert);
	secure_zero(k, sizeof(*k));
}

static const char *str_field(json_t *o, const char *name)
{
	json_t *v = json_object_get(o, name);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int dup_field(json_t *o, const char *name, bool required, char **out, struct err *e)
{
	const char *s = str_field(o, name);
	if (!s) {
		if (required)
			return err_set(e, "%s: missing or not a string", name);
		return 0;
	}
	*out = strdup(s);
	return *out ? 0 : err_set(e, "out of memory");
}

/* Hex field of exactly n bytes; empty allowed when !required (*present false). */
static int hex_field(json_t *o, const char *name, bool required, uint8_t *out, size_t n, bool *present,
		     struct err *e)
{
	const char *s = str_field(o, name);
	if (present)
		*present = false;
	if (!s || !*s) {
		if (required)
			return err_set(e, "%s: missing", name);
		return 0;
	}
	if (strncmp(s, "0x", 2) == 0)
		s += 2;
	if (hex_decode_exact(s, out, n, e) < 0)
		return err_wrap(e, "%s", name);
	if (present)
		*present = true;
	return 0;
}

int app_keys_parse(const char *text, size_t len, struct app_keys *out, struct err *e)
{
	json_error_t je;
	_cleanup_json_ json_t *root = json_loadb(text, len, 0, &je);
	memset(out, 0, sizeof(*out));
	if (!root || !json_is_object(root))
		return err_set(e, "invalid app keys JSON (line %d)", root ? 0 : je.line);
	if (hex_field(root, "disk_crypt_key", false, out->disk_crypt_key, 32, NULL, e) < 0 ||
	    hex_field(root, "env_crypt_key", false, out->env_crypt_key, 32, &out->has_env_crypt_key, e) < 0 ||
	    hex_field(root, "k256_key", true, out->k256_key, 32, NULL, e) < 0 ||
	    hex_field(root, "k256_signature", false, out->k256_signature, 65, &out->has_k256_signature, e) <
		0 ||
	    dup_field(root, "gateway_app_id", false, &out->gateway_app_id, e) < 0 ||
	    dup_field(root, "ca_cert", true, &out->ca_cert, e) < 0)
		goto fail;
	json_t *kp = json_object_get(root, "key_provider");
	if (!json_is_object(kp) || json_object_size(kp) != 1) {
		err_set(e, "key_provider: expected an object with one member");
		goto fail;
	}
	const char *kind = json_object_iter_key(json_object_iter(kp));
	json_t *v = json_object_iter_value(json_object_iter(kp));
	if (!json_is_object(v)) {
		err_set(e, "key_provider.%s: expected an object", kind);
		goto fail;
	}
	if (strcmp(kind, "None") == 0) {
		out->provider = AKP_NONE;
		if (dup_field(v, "key", true, &out->provider_key, e) < 0)
			goto fail_kp;
	} else if (strcmp(kind, "Local") == 0) {
		out->provider = AKP_LOCAL;
		if (dup_field(v, "key", true, &out->provider_key, e) < 0 ||
		    dup_field(v, "mr", false, &out->local_mr, e) < 0)
			goto fail_kp;
	} else if (strcmp(kind, "Tpm") == 0) {
		out->provider = AKP_TPM;
		if (dup_field(v, "key", true, &out->provider_key, e) < 0 ||
		    dup_field(v, "pubkey", false, &out->tpm_pubkey, e) < 0)
			goto fail_kp;
	} else if (strcmp(kind, "Kms") == 0) {
		out->provider = AKP_KMS;
		const char *pk = str_field(v, "pubkey");
		if (dup_field(v, "url", false, &out->kms_url, e) < 0 ||
		    dup_field(v, "tmp_ca_key", false, &out->tmp_ca_key, e) < 0 ||
		    dup_field(v, "tmp_ca_cert", false, &out->tmp_ca_cert, e) < 0)
			goto fail_kp;
		if (pk && *pk &&
		    hex_decode_alloc(pk, strlen(pk), &out->kms_pubkey, &out->kms_pubkey_len, e) < 0) {
			err_wrap(e, "pubkey");
			goto fail_kp;
		}
	} else {
		err_set(e, "key_provider: unknown kind %s", kind);
		goto fail;
	}
	return 0;
fail_kp:
	err_wrap(e, "key_provider.%s", kind);
fail:
	app_keys_free(out);
	return -1;
}

int app_keys_load(const char *path, struct app_keys *out, struct err *e)
{
	uint8_t *data = NULL;
	size_t len = 0;
	if (file_read_all(path, APPKEYS_MAX, &data, &len, e) < 0)
		return err_wrap(e, "app keys %s", path);
	int rc = app_keys_parse((const char *)data, len, out, e);
	secure_zero(data, len);
	free(data);
	return rc < 0 ? err_wrap(e, "app keys %s", path) : 0;
}

static void set_hex(json_t *o, const char *name, const uint8_t *d, size_t n)
{
	char *h = hex_encode_alloc(d, n);
	json_object_set_new(o, name, json_string(h ? h : ""));
	if (h) {
		secure_zero(h, strlen(h));
		free(h);
	}
}

static void set_str(json_t *o, const char *name, const char *s)
{
	json_object_set_new(o, name, json_string(s ? s : ""));
}

int app_keys_render(const struct app_keys *k, struct buf *out, struct err *e)
{
	_cleanup_json_ json_t *root = json_object();
	json_t *kp = json_object(), *v = json_object();
	set_hex(root, "disk_crypt_key", k->disk_crypt_key, 32);
	set_hex(root, "env_crypt_key", k->env_crypt_key, k->has_env_crypt_key ? 32 : 0);
	set_hex(root, "k256_key", k->k256_key, 32);
	set_hex(root, "k256_signature", k->k256_signature, k->has_k256_signature ? 65 : 0);
	set_str(root, "gateway_app_id", k->gateway_app_id);
	set_str(root, "ca_cert", k->ca_cert);
	switch (k->provider) {
	case AKP_NONE:
		set_str(v, "key", k->provider_key);
		json_object_set_new(kp, "None", v);
		break;
	case AKP_LOCAL:
		set_str(v, "key", k->provider_key);
		set_str(v, "mr", k->local_mr);
		json_object_set_new(kp, "Local", v);
		break;
	case AKP_TPM:
		set_str(v, "key", k->provider_key);
		set_str(v, "pubkey", k->tpm_pubkey);
		json_object_set_new(kp, "Tpm", v);
		break;
	case AKP_KMS:
		set_str(v, "url", k->kms_url);
		set_hex(v, "pubkey", k->kms_pubkey, k->kms_pubkey_len);
		set_str(v, "tmp_ca_key", k->tmp_ca_key);
		set_str(v, "tmp_ca_cert", k->tmp_ca_cert);
		json_object_set_new(kp, "Kms", v);
		break;
	}
	json_object_set_new(root, "key_provider", kp);
	char *s = json_dumps(root, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
	if (!s)
		return err_set(e, "out of memory");
	buf_puts(out, s);
	buf_putc(out, '\n');
	secure_zero(s, strlen(s));
	free(s);
	return 0;
}

const char *app_key_provider_event_name(enum app_key_provider p)
{
	switch (p) {
	case AKP_KMS:
		return "kms";
	case AKP_LOCAL:
		return "local-sgx";
	case AKP_TPM:
		return "tpm";
	case AKP_NONE:
		break;
	}
	return "none";
}

int app_keys_provider_id(const struct app_keys *k, uint8_t **id, size_t *len, struct err *e)
{
	*id = NULL;
	*len = 0;
	if (k->provider == AKP_KMS && k->kms_pubkey_len) {
		*id = malloc(k->kms_pubkey_len);
		if (!*id)
			return err_set(e, "out of memory");
		memcpy(*id, k->kms_pubkey, k->kms_pubkey_len);
		*len = k->kms_pubkey_len;
	} else if (k->provider == AKP_LOCAL && k->local_mr && *k->local_mr) {
		if (hex_decode_alloc(k->local_mr, strlen(k->local_mr), id, len, e) < 0)
			return err_wrap(e, "key_provider.Local.mr");
	}
	return 0;
}
