/*
 * pem.c — see pem.h. PEM goes through memory BIOs; DER through the d2i/i2d
 * pairs, with an explicit end-of-input check after each d2i.
 */
#include "codec/pem.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "core/cleanup.h"
#include "core/mem.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(PKCS8_PRIV_KEY_INFO *, PKCS8_PRIV_KEY_INFO_free)

static BIO *mem_bio(const char *pem, size_t len, struct err *e)
{
	BIO *bio;

	if (len > INT_MAX) {
		err_set(e, "PEM input too large");
		return NULL;
	}
	bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio)
		err_ssl(e, "BIO_new_mem_buf");
	return bio;
}

static char *bio_to_string(BIO *bio, struct err *e)
{
	char *data, *s;
	long n = BIO_get_mem_data(bio, &data);

	if (n < 0) {
		err_ssl(e, "reading PEM output");
		return NULL;
	}
	s = malloc((size_t)n + 1);
	if (!s)
		abort();
	memcpy(s, data, (size_t)n);
	s[n] = '\0';
	return s;
}

static bool only_space_left(BIO *bio)
{
	char *data;
	long n = BIO_get_mem_data(bio, &data);

	for (long i = 0; i < n; i++)
		if (!isspace((unsigned char)data[i]))
			return false;
	return true;
}

X509 *pem_read_cert(const char *pem, size_t len, struct err *e)
{
	_cleanup_(BIO_free_allp) BIO *bio = mem_bio(pem, len, e);
	X509 *cert;

	if (!bio)
		return NULL;
	cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	if (!cert) {
		err_ssl(e, "invalid PEM certificate");
		return NULL;
	}
	if (!only_space_left(bio)) {
		X509_free(cert);
		err_set(e, "unexpected data after PEM certificate");
		return NULL;
	}
	return cert;
}

STACK_OF(X509) * pem_read_chain(const char *pem, size_t len, struct err *e)
{
	_cleanup_(BIO_free_allp) BIO *bio = mem_bio(pem, len, e);
	_cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = NULL;

	if (!bio)
		return NULL;
	chain = sk_X509_new_null();
	if (!chain) {
		err_ssl(e, "sk_X509_new_null");
		return NULL;
	}
	while (!only_space_left(bio)) {
		X509 *cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);

		if (!cert) {
			err_ssl(e, "invalid PEM certificate #%d in chain", sk_X509_num(chain) + 1);
			return NULL;
		}
		if (!sk_X509_push(chain, cert)) {
			X509_free(cert);
			err_ssl(e, "sk_X509_push");
			return NULL;
		}
	}
	if (sk_X509_num(chain) == 0) {
		err_set(e, "no certificate in PEM input");
		return NULL;
	}
	return TAKE_PTR(chain);
}

EVP_PKEY *pem_read_private_key(const char *pem, size_t len, struct err *e)
{
	_cleanup_(BIO_free_allp) BIO *bio = mem_bio(pem, len, e);
	EVP_PKEY *key;

	if (!bio)
		return NULL;
	key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	if (!key)
		err_ssl(e, "invalid PEM private key");
	return key;
}

EVP_PKEY *pem_read_public_key(const char *pem, size_t len, struct err *e)
{
	_cleanup_(BIO_free_allp) BIO *bio = mem_bio(pem, len, e);
	EVP_PKEY *key;

	if (!bio)
		return NULL;
	key = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	if (!key)
		err_ssl(e, "invalid PEM public key");
	return key;
}

static BIO *out_bio(struct err *e)
{
	BIO *bio = BIO_new(BIO_s_mem());

	if (!bio)
		err_ssl(e, "BIO_new");
	return bio;
}

char *pem_write_cert(X509 *cert, struct err *e)
{
	_cleanup_(BIO_free_allp) BIO *bio = out_bio(e);

	if (!bio)
		return NULL;
	if (!PEM_write_bio_X509(bio, cert)) {
		err_ssl(e, "PEM_write_bio_X509");
		return NULL;
	}
	return bio_to_string(bio, e);
}

char *pem_write_chain(STACK_OF(X509) * chain, struct err *e)
{
	_cleanup_(BIO_free_allp) BIO *bio = out_bio(e);

	if (!bio)
		return NULL;
	for (int i = 0; i < sk_X509_num(chain); i++) {
		if (!PEM_write_bio_X509(bio, sk_X509_value(chain, i))) {
			err_ssl(e, "PEM_write_bio_X509");
			return NULL;
		}
	}
	return bio_to_string(bio, e);
}

char *pem_write_private_key(EVP_PKEY *key, struct err *e)
{
	_cleanup_(BIO_free_allp) BIO *bio = out_bio(e);
	char *data, *s;
	long n;

	if (!bio)
		return NULL;
	if (!PEM_write_bio_PKCS8PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)) {
		err_ssl(e, "PEM_write_bio_PKCS8PrivateKey");
		return NULL;
	}
	s = bio_to_string(bio, e);
	n = BIO_get_mem_data(bio, &data);
	if (n > 0)
		secure_zero(data, (size_t)n);
	return s;
}

char *pem_write_public_key(EVP_PKEY *key, struct err *e)
{
	_cleanup_(BIO_free_allp) BIO *bio = out_bio(e);

	if (!bio)
		return NULL;
	if (!PEM_write_bio_PUBKEY(bio, key)) {
		err_ssl(e, "PEM_write_bio_PUBKEY");
		return NULL;
	}
	return bio_to_string(bio, e);
}

X509 *der_read_cert(const uint8_t *der, size_t len, struct err *e)
{
	const unsigned char *p = der;
	X509 *cert;

	if (len > LONG_MAX) {
		err_set(e, "DER certificate too large");
		return NULL;
	}
	cert = d2i_X509(NULL, &p, (long)len);
	if (!cert) {
		err_ssl(e, "invalid DER certificate");
		return NULL;
	}
	if ((size_t)(p - der) != len) {
		X509_free(cert);
		err_set(e, "%zu trailing bytes after DER certificate", len - (size_t)(p - der));
		return NULL;
	}
	return cert;
}

EVP_PKEY *der_read_public_key(const uint8_t *spki, size_t len, struct err *e)
{
	const unsigned char *p = spki;
	EVP_PKEY *key;

	if (len > LONG_MAX) {
		err_set(e, "DER public key too large");
		return NULL;
	}
	key = d2i_PUBKEY(NULL, &p, (long)len);
	if (!key) {
		err_ssl(e, "invalid SubjectPublicKeyInfo");
		return NULL;
	}
	if ((size_t)(p - spki) != len) {
		EVP_PKEY_free(key);
		err_set(e, "%zu trailing bytes after SubjectPublicKeyInfo", len - (size_t)(p - spki));
		return NULL;
	}
	return key;
}

/* Copy OpenSSL-allocated DER into malloc'd memory so callers use free(). */
static int take_der(unsigned char *der, int n, uint8_t **out, size_t *out_len, bool secret, const char *what,
		    struct err *e)
{
	uint8_t *copy;

	if (n <= 0)
		return err_ssl(e, "encoding %s", what);
	copy = malloc((size_t)n);
	if (!copy)
		abort();
	memcpy(copy, der, (size_t)n);
	if (secret)
		OPENSSL_clear_free(der, (size_t)n);
	else
		OPENSSL_free(der);
	*out = copy;
	*out_len = (size_t)n;
	return 0;
}

int der_write_cert(X509 *cert, uint8_t **out, size_t *out_len, struct err *e)
{
	unsigned char *der = NULL;
	int n = i2d_X509(cert, &der);

	return take_der(der, n, out, out_len, false, "certificate", e);
}

int der_write_public_key(EVP_PKEY *key, uint8_t **out, size_t *out_len, struct err *e)
{
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(key, &der);

	return take_der(der, n, out, out_len, false, "public key", e);
}

int der_write_private_key(EVP_PKEY *key, uint8_t **out, size_t *out_len, struct err *e)
{
	_cleanup_(PKCS8_PRIV_KEY_INFO_freep) PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(key);
	unsigned char *der = NULL;
	int n;

	if (!p8)
		return err_ssl(e, "EVP_PKEY2PKCS8");
	n = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
	return take_der(der, n, out, out_len, true, "private key", e);
}
