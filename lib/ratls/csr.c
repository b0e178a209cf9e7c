/*
 * csr.c — SignCert CSR: SCALE encode/decode (V2, and V1 upgraded to V2),
 * signing and verification with the embedded key.
 *
 * Decoding never trusts a length before the SCALE reader has checked that
 * many bytes remain, and caps the SAN list, so a hostile CSR costs at most
 * its own size in memory.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "attest/attestation.h"
#include "codec/pem.h"
#include "codec/scale.h"
#include "core/cleanup.h"
#include "ratls/csr.h"
#include "ratls/verify.h"

void ratls_csr_free(struct ratls_csr *c)
{
	free(c->confirm);
	free(c->pubkey);
	free(c->config.org_name);
	free(c->config.subject);
	for (size_t i = 0; i < c->config.n_sans; i++)
		free(c->config.sans[i]);
	free(c->config.sans);
	free(c->attestation);
	memset(c, 0, sizeof(*c));
}

static void put_head(const struct ratls_csr *c, bool v2, struct buf *out)
{
	const struct ratls_cert_config *k = &c->config;

	scale_put_str(out, c->confirm ? c->confirm : RATLS_CSR_CONFIRM);
	scale_put_bytes(out, c->pubkey, c->pubkey_len);
	scale_put_option(out, k->org_name != NULL);
	if (k->org_name)
		scale_put_str(out, k->org_name);
	scale_put_str(out, k->subject ? k->subject : "");
	scale_put_compact(out, k->n_sans);
	for (size_t i = 0; i < k->n_sans; i++)
		scale_put_str(out, k->sans[i]);
	scale_put_bool(out, k->usage_server_auth);
	scale_put_bool(out, k->usage_client_auth);
	scale_put_bool(out, k->ext_quote);
	if (!v2)
		return;
	scale_put_bool(out, k->ext_app_info);
	scale_put_option(out, k->has_not_before);
	if (k->has_not_before)
		scale_put_u64(out, k->not_before);
	scale_put_option(out, k->has_not_after);
	if (k->has_not_after)
		scale_put_u64(out, k->not_after);
}

void ratls_csr_encode(const struct ratls_csr *c, struct buf *out)
{
	put_head(c, true, out);
	buf_append(out, c->attestation, c->attestation_len);
}

void ratls_csr_encode_v1(const struct ratls_csr *c, const uint8_t *quote, size_t quote_len,
			 const char *event_log_json, struct buf *out)
{
	put_head(c, false, out);
	scale_put_bytes(out, quote, quote_len);
	scale_put_bytes(out, event_log_json, strlen(event_log_json));
}

/* A String without embedded NUL bytes (they would truncate names in certificates). */
static int read_cstr(struct scale_reader *r, char **out, struct err *e)
{
	size_t len;

	if (scale_read_str(r, out, &len, e) < 0)
		return -1;
	if (strlen(*out) != len) {
		free(*out);
		*out = NULL;
		return err_set(e, "string contains a NUL byte");
	}
	return 0;
}

static int read_head(struct scale_reader *r, bool v2, struct ratls_csr *c, struct err *e)
{
	struct ratls_cert_config *k = &c->config;
	bool present;
	size_t n;

	if (read_cstr(r, &c->confirm, e) < 0)
		return err_wrap(e, "confirm");
	if (scale_read_bytes_alloc(r, &c->pubkey, &c->pubkey_len, e) < 0)
		return err_wrap(e, "pubkey");
	if (scale_read_option(r, &present, e) < 0 || (present && read_cstr(r, &k->org_name, e) < 0))
		return err_wrap(e, "org_name");
	if (read_cstr(r, &k->subject, e) < 0)
		return err_wrap(e, "subject");
	if (scale_read_len(r, 1, &n, e) < 0)
		return err_wrap(e, "subject_alt_names");
	if (n > RATLS_CSR_MAX_SANS)
		return err_set(e, "subject_alt_names: too many entries (%zu)", n);
	k->sans = calloc(n ? n : 1, sizeof(char *));
	if (!k->sans)
		return err_set(e, "out of memory");
	for (; k->n_sans < n; k->n_sans++)
		if (read_cstr(r, &k->sans[k->n_sans], e) < 0)
			return err_wrap(e, "subject_alt_names");
	if (scale_read_bool(r, &k->usage_server_auth, e) < 0 ||
	    scale_read_bool(r, &k->usage_client_auth, e) < 0 || scale_read_bool(r, &k->ext_quote, e) < 0)
		return err_wrap(e, "config");
	if (!v2)
		return 0;
	if (scale_read_bool(r, &k->ext_app_info, e) < 0)
		return err_wrap(e, "ext_app_info");
	if (scale_read_option(r, &k->has_not_before, e) < 0 ||
	    (k->has_not_before && scale_read_u64(r, &k->not_before, e) < 0))
		return err_wrap(e, "not_before");
	if (scale_read_option(r, &k->has_not_after, e) < 0 ||
	    (k->has_not_after && scale_read_u64(r, &k->not_after, e) < 0))
		return err_wrap(e, "not_after");
	return 0;
}

static int upgrade_v1(struct scale_reader *r, struct ratls_csr *c, struct err *e)
{
	const uint8_t *quote, *log;
	size_t quote_len, log_len;
	struct attestation a;
	struct buf enc = BUF_INIT;

	if (scale_read_bytes(r, &quote, &quote_len, e) < 0)
		return err_wrap(e, "quote");
	if (scale_read_bytes(r, &log, &log_len, e) < 0)
		return err_wrap(e, "event_log");
	if (scale_expect_end(r, e) < 0)
		return -1;
	if (ratls_attestation_from_quote(quote, quote_len, (const char *)log, log_len, NULL, &a, e) < 0)
		return err_wrap(e, "V1 attestation");
	int rc = attestation_encode_v0(&a, &enc, e);
	attestation_free(&a);
	if (rc < 0) {
		buf_free(&enc);
		return err_wrap(e, "V1 attestation");
	}
	c->attestation = buf_steal(&enc, &c->attestation_len);
	return 0;
}

int ratls_csr_decode(uint32_t api_version, const uint8_t *data, size_t len, struct ratls_csr *out,
		     struct err *e)
{
	struct scale_reader r;
	bool v2 = api_version >= 2;

	memset(out, 0, sizeof(*out));
	if (api_version > 2) {
		err_set(e, "Unsupported API version %u", api_version);
		return -1;
	}
	if (len > RATLS_CSR_MAX)
		return err_set(e, "CSR too large (%zu bytes)", len);
	scale_reader_init(&r, data, len);
	if (read_head(&r, v2, out, e) < 0)
		goto fail;
	if (v2) {
		size_t rest = scale_remaining(&r);
		out->attestation = malloc(rest ? rest : 1);
		if (!out->attestation) {
			err_set(e, "out of memory");
			goto fail;
		}
		memcpy(out->attestation, data + r.pos, rest);
		out->attestation_len = rest;
	} else if (upgrade_v1(&r, out, e) < 0) {
		goto fail;
	}
	return 0;
fail:
	ratls_csr_free(out);
	return err_wrap(e, "invalid CSR");
}

int ratls_csr_sign(EVP_PKEY *key, const uint8_t *data, size_t len, struct buf *sig, struct err *e)
{
	_cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
	size_t n = 0;

	if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(md, NULL, &n, data, len) != 1)
		return err_ssl(e, "sign CSR");
	buf_reserve(sig, n);
	if (EVP_DigestSign(md, sig->data + sig->len, &n, data, len) != 1)
		return err_ssl(e, "sign CSR");
	sig->len += n;
	sig->data[sig->len] = 0;
	return 0;
}

static bool is_p256(EVP_PKEY *k)
{
	char group[64];
	size_t glen = 0;

	if (EVP_PKEY_get_base_id(k) != EVP_PKEY_EC)
		return false;
	if (!EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof(group), &glen))
		return false;
	return strcmp(group, "prime256v1") == 0;
}

int ratls_csr_verify(const struct ratls_csr *c, const uint8_t *data, size_t len, const uint8_t *sig,
		     size_t sig_len, struct err *e)
{
	if (!c->confirm || strcmp(c->confirm, RATLS_CSR_CONFIRM) != 0)
		return err_set(e, "Invalid confirm");
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *k = der_read_public_key(c->pubkey, c->pubkey_len, e);
	if (!k)
		return err_wrap(e, "CSR pubkey");
	if (!is_p256(k))
		return err_set(e, "CSR pubkey is not a P-256 key");
	_cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md || EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k) != 1)
		return err_ssl(e, "verify CSR");
	int rc = EVP_DigestVerify(md, sig, sig_len, data, len);
	ERR_clear_error();
	if (rc != 1)
		return err_set(e, "Invalid signature");
	return 0;
}
