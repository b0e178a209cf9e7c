/*
 * account.c — ACME accounts: creation (newAccount) and the credentials JSON
 * the caller stores (see acme.h). The private key travels as base64url
 * PKCS#8 DER under credentials.key_pkcs8, as in the reference's files.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "acme/acme.h"
#include "acme/jws.h"
#include "acme/session.h"
#include "codec/base64.h"
#include "codec/pem.h"
#include "core/cleanup.h"
#include "core/log.h"
#include "core/mem.h"

void acme_account_clear(struct acme_account *a)
{
	free(a->directory_url);
	free(a->account_url);
	EVP_PKEY_free(a->key);
	memset(a, 0, sizeof(*a));
}

int acme_account_create(const char *directory_url, const struct acme_opts *o, struct acme_account *out,
			struct err *e)
{
	static const char payload[] = "{\"termsOfServiceAgreed\":true,\"contact\":[]}";
	struct acme_session s;
	struct http_response resp;
	_cleanup_free_ char *location = NULL;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (acme_session_open(&s, directory_url, o, e) < 0)
		goto done;
	out->key = acme_p256_generate(e);
	if (!out->key || acme_session_set_key(&s, out->key, NULL, e) < 0)
		goto done;
	if (acme_session_post(&s, s.dir.new_account, payload, NULL, &resp, &location, e) < 0) {
		err_wrap(e, "newAccount");
		goto done;
	}
	http_response_free(&resp);
	if (!location || (strncmp(location, "https://", 8) != 0 && strncmp(location, "http://", 7) != 0)) {
		err_set(e, "newAccount: HTTP %ld without an account URL (Location)", resp.status);
		goto done;
	}
	out->account_url = TAKE_PTR(location);
	out->directory_url = strdup(directory_url);
	if (!out->directory_url)
		abort();
	log_info("acme: account %s created at %s", out->account_url, directory_url);
	rc = 0;
done:
	acme_session_close(&s);
	if (rc < 0)
		acme_account_clear(out);
	return rc;
}

char *acme_account_dump(const struct acme_account *a, struct err *e)
{
	_cleanup_free_ uint8_t *der = NULL;
	_cleanup_free_ char *b64 = NULL;
	_cleanup_json_ json_t *root = NULL;
	size_t len = 0;
	char *out;

	if (der_write_private_key(a->key, &der, &len, e) < 0)
		return NULL;
	b64 = base64url_encode(der, len);
	secure_zero(der, len);
	root = json_pack("{s:s, s:s, s:{s:s, s:s, s:s}}", "account_id", a->account_url, "acme_url",
			 a->directory_url, "credentials", "id", a->account_url, "key_pkcs8", b64, "directory",
			 a->directory_url);
	secure_zero(b64, strlen(b64));
	if (!root) {
		err_set(e, "account URLs are not UTF-8");
		return NULL;
	}
	out = json_dumps(root, JSON_INDENT(2));
	/* Wipe jansson's copy of the key before the tree is freed. */
	json_t *k = json_object_get(json_object_get(root, "credentials"), "key_pkcs8");
	secure_zero((void *)json_string_value(k), json_string_length(k));
	if (!out)
		abort();
	return out;
}

static const char *str_of(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) && json_string_length(v) > 0 ? json_string_value(v) : NULL;
}

int acme_account_load(const char *credentials_json, struct acme_account *out, struct err *e)
{
	_cleanup_json_ json_t *root = json_loads(credentials_json, JSON_REJECT_DUPLICATES, NULL);
	json_t *creds = json_object_get(root, "credentials");
	const char *account_id = str_of(root, "account_id"), *acme_url = str_of(root, "acme_url");
	const char *id = str_of(creds, "id"), *key = str_of(creds, "key_pkcs8");
	const char *directory = str_of(creds, "directory");
	_cleanup_free_ uint8_t *der = NULL;
	_cleanup_json_ json_t *jwk = NULL;
	const uint8_t *p;
	size_t len = 0;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(root) || !json_is_object(creds))
		return err_set(e, "credentials are not {\"account_id\",\"acme_url\",\"credentials\":{...}}");
	if (!account_id)
		account_id = id;
	if (!acme_url)
		acme_url = directory;
	if (!account_id || !acme_url || !key)
		return err_set(e, "credentials lack account_id, acme_url or credentials.key_pkcs8");
	if (id && strcmp(id, account_id) != 0)
		return err_set(e, "credentials: account_id and credentials.id differ");
	if (base64url_decode(key, strlen(key), &der, &len, e) < 0) {
		err_wrap(e, "credentials.key_pkcs8");
		goto wipe;
	}
	p = der;
	out->key = d2i_AutoPrivateKey(NULL, &p, (long)len);
	if (!out->key || p != der + len) {
		err_ssl(e, "credentials.key_pkcs8 is not a PKCS#8 private key");
		goto wipe;
	}
	/* Only P-256 accounts can sign ES256. */
	jwk = acme_jwk_of_key(out->key, e);
	if (!jwk) {
		err_wrap(e, "credentials.key_pkcs8");
		goto wipe;
	}
	out->account_url = strdup(account_id);
	out->directory_url = strdup(acme_url);
	if (!out->account_url || !out->directory_url)
		abort();
	rc = 0;
wipe:
	if (der)
		secure_zero(der, len);
	secure_zero((void *)json_string_value(json_object_get(creds, "key_pkcs8")),
		    json_string_length(json_object_get(creds, "key_pkcs8")));
	if (rc < 0)
		acme_account_clear(out);
	return rc;
}

bool acme_credentials_match(const char *credentials_json, const char *acme_url)
{
	_cleanup_json_ json_t *root = json_loads(credentials_json, 0, NULL);
	json_t *key = json_object_get(json_object_get(root, "credentials"), "key_pkcs8");
	const char *stored = str_of(root, "acme_url");

	if (!stored)
		stored = str_of(json_object_get(root, "credentials"), "directory");
	secure_zero((void *)json_string_value(key), json_string_length(key));
	return stored && strcmp(stored, acme_url) == 0;
}
