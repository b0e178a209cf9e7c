/*
 * ext.c — RA-TLS certificate extensions: DER OCTET STRING in the extnValue,
 * the ELGZv1 compressed event log, and the key binding hash.
 *
 * The OIDs are private, so OpenSSL knows nothing about them: they are built
 * with OBJ_txt2obj(.., 1) (numeric only) and matched with OBJ_cmp, never by
 * NID. Inflation is bounded by RATLS_ELGZ_MAX so a small gzip bomb in a
 * peer certificate cannot allocate more than that.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <zlib.h>

#include "codec/pem.h"
#include "core/cleanup.h"
#include "crypto/hash.h"
#include "ratls/ext.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(ASN1_OBJECT *, ASN1_OBJECT_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(ASN1_OCTET_STRING *, ASN1_OCTET_STRING_free)

int ratls_ext_add(X509 *cert, const char *oid, const void *data, size_t len, struct err *e)
{
	_cleanup_(ASN1_OBJECT_freep) ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
	_cleanup_(ASN1_OCTET_STRING_freep) ASN1_OCTET_STRING *inner = ASN1_OCTET_STRING_new();
	_cleanup_(ASN1_OCTET_STRING_freep) ASN1_OCTET_STRING *outer = ASN1_OCTET_STRING_new();
	_cleanup_(X509_EXTENSION_freep) X509_EXTENSION *ext = NULL;
	unsigned char *der = NULL;

	if (!obj || !inner || !outer)
		return err_ssl(e, "extension %s", oid);
	if (len > INT32_MAX || !ASN1_OCTET_STRING_set(inner, data, (int)len))
		return err_ssl(e, "extension %s: value", oid);
	int n = i2d_ASN1_OCTET_STRING(inner, &der);
	if (n <= 0)
		return err_ssl(e, "extension %s: encode", oid);
	ASN1_STRING_set0(outer, der, n);
	ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, outer);
	if (!ext || !X509_add_ext(cert, ext, -1))
		return err_ssl(e, "extension %s: add", oid);
	return 0;
}

int ratls_ext_get(X509 *cert, const char *oid, uint8_t **out, size_t *len, struct err *e)
{
	_cleanup_(ASN1_OBJECT_freep) ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
	*out = NULL;
	*len = 0;
	if (!obj)
		return err_ssl(e, "extension %s", oid);
	int idx = X509_get_ext_by_OBJ(cert, obj, -1);
	if (idx < 0)
		return 0;
	if (X509_get_ext_by_OBJ(cert, obj, idx) >= 0)
		return err_set(e, "extension %s appears more than once", oid);
	X509_EXTENSION *ext = X509_get_ext(cert, idx);
	ASN1_OCTET_STRING *val = X509_EXTENSION_get_data(ext);
	const unsigned char *p = ASN1_STRING_get0_data(val);
	long vlen = ASN1_STRING_length(val);
	const unsigned char *end = p + vlen;
	_cleanup_(ASN1_OCTET_STRING_freep) ASN1_OCTET_STRING *inner = d2i_ASN1_OCTET_STRING(NULL, &p, vlen);
	if (!inner || p != end) {
		ERR_clear_error();
		return err_set(e, "extension %s: value is not a DER OCTET STRING", oid);
	}
	size_t n = (size_t)ASN1_STRING_length(inner);
	if (n > RATLS_EXT_MAX)
		return err_set(e, "extension %s: too large (%zu bytes)", oid, n);
	uint8_t *copy = malloc(n + 1);
	if (!copy)
		return err_set(e, "out of memory");
	memcpy(copy, ASN1_STRING_get0_data(inner), n);
	copy[n] = 0;
	*out = copy;
	*len = n;
	return 1;
}

int ratls_event_log_decode(const uint8_t *raw, size_t len, struct buf *json, struct err *e)
{
	size_t mlen = strlen(RATLS_ELGZ_MAGIC);

	if (len < mlen || memcmp(raw, RATLS_ELGZ_MAGIC, mlen) != 0) {
		buf_append(json, raw, len);
		return 0;
	}
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	if (inflateInit2(&zs, 15 + 32) != Z_OK) /* gzip or zlib header */
		return err_set(e, "event log: inflate init failed");
	uint8_t *out = malloc(RATLS_ELGZ_MAX + 1);
	if (!out) {
		inflateEnd(&zs);
		return err_set(e, "out of memory");
	}
	zs.next_in = (Bytef *)(raw + mlen);
	zs.avail_in = (uInt)(len - mlen);
	zs.next_out = out;
	zs.avail_out = RATLS_ELGZ_MAX + 1;
	int rc = inflate(&zs, Z_FINISH);
	size_t produced = RATLS_ELGZ_MAX + 1 - zs.avail_out;
	size_t left_in = zs.avail_in;
	inflateEnd(&zs);
	if (produced > RATLS_ELGZ_MAX) {
		free(out);
		return err_set(e, "event log: decompressed size exceeds %d bytes", RATLS_ELGZ_MAX);
	}
	if (rc != Z_STREAM_END || left_in != 0) {
		free(out);
		return err_set(e, "event log: corrupt ELGZv1 data");
	}
	buf_append(json, out, produced);
	free(out);
	return 0;
}

int ratls_event_log_compress(const char *json, size_t len, struct buf *out, struct err *e)
{
	if (len > RATLS_ELGZ_MAX)
		return err_set(e, "event log too large to compress (%zu > %d bytes)", len, RATLS_ELGZ_MAX);
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	if (deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return err_set(e, "event log: deflate init failed");
	uLong bound = deflateBound(&zs, (uLong)len);
	buf_puts(out, RATLS_ELGZ_MAGIC);
	buf_reserve(out, bound);
	zs.next_in = (Bytef *)json;
	zs.avail_in = (uInt)len;
	zs.next_out = out->data + out->len;
	zs.avail_out = (uInt)bound;
	int rc = deflate(&zs, Z_FINISH);
	size_t produced = bound - zs.avail_out;
	deflateEnd(&zs);
	if (rc != Z_STREAM_END)
		return err_set(e, "event log: deflate failed");
	out->len += produced;
	out->data[out->len] = 0;
	return 0;
}

int ratls_spki_report_data(const uint8_t *spki, size_t len, uint8_t out[64])
{
	return report_data_tagged(HASH_SHA512, "ratls-cert", spki, len, out, NULL);
}

int ratls_key_report_data(EVP_PKEY *key, uint8_t out[64], struct err *e)
{
	_cleanup_free_ uint8_t *spki = NULL;
	size_t n = 0;

	if (der_write_public_key(key, &spki, &n, e) < 0)
		return -1;
	return ratls_spki_report_data(spki, n, out);
}

void ratls_ext_free(struct ratls_ext *x)
{
	free(x->quote);
	free(x->event_log);
	free(x->app_id);
	free(x->usage);
	free(x->attestation);
	free(x->app_info);
	memset(x, 0, sizeof(*x));
}

int ratls_ext_read(X509 *cert, struct ratls_ext *out, struct err *e)
{
	_cleanup_free_ uint8_t *ev = NULL, *usage = NULL;
	size_t ev_len = 0, usage_len = 0;

	memset(out, 0, sizeof(*out));
	if (ratls_ext_get(cert, RATLS_OID_QUOTE, &out->quote, &out->quote_len, e) < 0 ||
	    ratls_ext_get(cert, RATLS_OID_EVENT_LOG, &ev, &ev_len, e) < 0 ||
	    ratls_ext_get(cert, RATLS_OID_APP_ID, &out->app_id, &out->app_id_len, e) < 0 ||
	    ratls_ext_get(cert, RATLS_OID_USAGE, &usage, &usage_len, e) < 0 ||
	    ratls_ext_get(cert, RATLS_OID_ATTESTATION, &out->attestation, &out->attestation_len, e) < 0 ||
	    ratls_ext_get(cert, RATLS_OID_APP_INFO, &out->app_info, &out->app_info_len, e) < 0)
		goto fail;
	if (usage) {
		if (memchr(usage, 0, usage_len)) {
			err_set(e, "usage extension contains a NUL byte");
			goto fail;
		}
		out->usage = (char *)TAKE_PTR(usage);
	}
	if (ev) {
		struct buf b = BUF_INIT;
		if (ratls_event_log_decode(ev, ev_len, &b, e) < 0) {
			buf_free(&b);
			goto fail;
		}
		out->event_log = (char *)buf_steal(&b, &out->event_log_len);
	}
	return 0;
fail:
	ratls_ext_free(out);
	return -1;
}
