/*
 * certs.c — X.509 minting for the KMS's own certificates (see certs.h).
 * Built on OpenSSL's X509 API directly: the profiles are fixed, so a small
 * builder is clearer than a config-string driven one.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "certs.h"
#include "core/cleanup.h"

EVP_PKEY *kms_p256_generate(struct err *e)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	if (!k)
		err_ssl(e, "generate P-256 key");
	return k;
}

static int add_nid_ext(X509 *x, X509 *issuer, int nid, const char *value, struct err *e)
{
	X509V3_CTX v3;
	_cleanup_(X509_EXTENSION_freep) X509_EXTENSION *ext = NULL;

	X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (!ext || !X509_add_ext(x, ext, -1))
		return err_ssl(e, "certificate extension %s", OBJ_nid2sn(nid));
	return 0;
}

int kms_cert_add_ext(X509 *x, const char *oid, const uint8_t *data, size_t len, struct err *e)
{
	/* LOCAL SHIM (until lib/ratls builders are used): extnValue = DER of an
	 * OCTET STRING that wraps the raw bytes, as kms.md §4 specifies. */
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
	ASN1_OCTET_STRING *inner = ASN1_OCTET_STRING_new(), *outer = ASN1_OCTET_STRING_new();
	unsigned char *der = NULL;
	int der_len, rc = -1;
	X509_EXTENSION *ext = NULL;

	if (!obj || !inner || !outer || !ASN1_OCTET_STRING_set(inner, data, (int)len))
		goto out;
	der_len = i2d_ASN1_OCTET_STRING(inner, &der);
	if (der_len <= 0 || !ASN1_OCTET_STRING_set(outer, der, der_len))
		goto out;
	ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, outer);
	if (ext && X509_add_ext(x, ext, -1))
		rc = 0;
out:
	if (rc < 0)
		err_ssl(e, "certificate extension %s", oid);
	X509_EXTENSION_free(ext);
	ASN1_OBJECT_free(obj);
	OPENSSL_free(der);
	ASN1_OCTET_STRING_free(inner);
	ASN1_OCTET_STRING_free(outer);
	return rc;
}

static int set_name(X509_NAME *n, const char *org, const char *cn, struct err *e)
{
	if (org && !X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, (const unsigned char *)org, -1, -1, 0))
		return err_ssl(e, "subject O");
	if (cn && !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0))
		return err_ssl(e, "subject CN");
	return 0;
}

static bool is_ip(const char *s)
{
	ASN1_OCTET_STRING *ip = a2i_IPADDRESS(s);
	bool yes = ip != NULL;

	ASN1_OCTET_STRING_free(ip);
	return yes;
}

X509 *kms_cert_issue(const struct kms_cert_req *r, EVP_PKEY *pub, X509 *issuer, EVP_PKEY *issuer_key,
		     struct err *e)
{
	_cleanup_(X509_freep) X509 *x = X509_new();
	uint8_t serial[16];
	_cleanup_(BN_freep) BIGNUM *bn = NULL;
	char buf[300];

	if (!x)
		return err_ssl(e, "X509_new"), NULL;
	if (RAND_bytes(serial, sizeof(serial)) != 1)
		return err_ssl(e, "serial"), NULL;
	serial[0] &= 0x7f;
	serial[0] |= 0x01;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	if (!bn || !X509_set_version(x, 2) || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
		return err_ssl(e, "certificate serial"), NULL;
	if (!X509_gmtime_adj(X509_getm_notBefore(x), 0) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), KMS_CERT_DAYS, 0, NULL))
		return err_ssl(e, "certificate validity"), NULL;
	if (!X509_set_pubkey(x, pub))
		return err_ssl(e, "certificate key"), NULL;
	if (set_name(X509_get_subject_name(x), r->org, r->cn, e) < 0)
		return NULL;
	if (!X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : X509_get_subject_name(x)))
		return err_ssl(e, "issuer name"), NULL;
	if (r->ca_pathlen >= 0) {
		snprintf(buf, sizeof(buf), "critical,CA:TRUE,pathlen:%d", r->ca_pathlen);
		if (add_nid_ext(x, issuer, NID_basic_constraints, buf, e) < 0 ||
		    add_nid_ext(x, issuer, NID_key_usage, "critical,digitalSignature,keyCertSign,cRLSign",
				e) < 0)
			return NULL;
	} else if (add_nid_ext(x, issuer, NID_key_usage, "critical,digitalSignature", e) < 0) {
		return NULL;
	}
	if (r->san) {
		snprintf(buf, sizeof(buf), "%s:%s", is_ip(r->san) ? "IP" : "DNS", r->san);
		if (add_nid_ext(x, issuer, NID_subject_alt_name, buf, e) < 0)
			return NULL;
	}
	if (r->usage &&
	    kms_cert_add_ext(x, OID_DSTACK_USAGE, (const uint8_t *)r->usage, strlen(r->usage), e) < 0)
		return NULL;
	if (r->attestation &&
	    kms_cert_add_ext(x, OID_DSTACK_ATTESTATION, r->attestation, r->attestation_len, e) < 0)
		return NULL;
	if (X509_sign(x, issuer_key, EVP_sha256()) <= 0)
		return err_ssl(e, "sign certificate"), NULL;
	return TAKE_PTR(x);
}

int64_t kms_cert_seconds_left(X509 *x)
{
	int days = 0, secs = 0;

	if (!ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)))
		return -1;
	return (int64_t)days * 86400 + secs;
}

static char *bio_text(BIO *b)
{
	char *p;
	long n = BIO_get_mem_data(b, &p);

	return n > 0 ? strndup(p, (size_t)n) : NULL;
}

char *kms_cert_pem(X509 *x)
{
	_cleanup_(BIO_free_allp) BIO *b = BIO_new(BIO_s_mem());

	if (!b || !PEM_write_bio_X509(b, x))
		return NULL;
	return bio_text(b);
}

char *kms_key_pem(EVP_PKEY *k)
{
	_cleanup_(BIO_free_allp) BIO *b = BIO_new(BIO_s_mem());

	if (!b || !PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL))
		return NULL;
	return bio_text(b);
}

X509 *kms_cert_from_pem(const char *pem, size_t len, struct err *e)
{
	_cleanup_(BIO_free_allp) BIO *b = BIO_new_mem_buf(pem, (int)len);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

	if (!x)
		err_ssl(e, "parse certificate PEM");
	return x;
}

EVP_PKEY *kms_key_from_pem(const char *pem, size_t len, struct err *e)
{
	_cleanup_(BIO_free_allp) BIO *b = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;

	if (!k)
		err_ssl(e, "parse private key PEM");
	return k;
}

int kms_spki_der(EVP_PKEY *k, uint8_t **der, size_t *len, struct err *e)
{
	unsigned char *p = NULL;
	int n = i2d_PUBKEY(k, &p);

	if (n <= 0)
		return err_ssl(e, "encode public key");
	*der = malloc((size_t)n);
	if (!*der) {
		OPENSSL_free(p);
		return err_set(e, "out of memory");
	}
	memcpy(*der, p, (size_t)n);
	OPENSSL_free(p);
	*len = (size_t)n;
	return 0;
}
