/*
 * certs.c — PEM/DER helpers (see certs.h).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "certs.h"
#include "core/cleanup.h"

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
