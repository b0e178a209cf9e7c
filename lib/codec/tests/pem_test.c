/*
 * pem_test.c — PEM and DER round trips for certificates, chains and keys,
 * and rejection of empty, corrupted or trailing input.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/x509v3.h>

#include "codec/pem.h"
#include "core/cleanup.h"
#include "core/tap.h"

static X509 *self_signed(EVP_PKEY *key, const char *cn)
{
	X509 *c = X509_new();
	X509_NAME *name = X509_NAME_new();

	X509_set_version(c, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(c), 1);
	X509_gmtime_adj(X509_getm_notBefore(c), 0);
	X509_gmtime_adj(X509_getm_notAfter(c), 3600);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(c, name);
	X509_set_issuer_name(c, name);
	X509_NAME_free(name);
	X509_set_pubkey(c, key);
	X509_sign(c, key, EVP_sha256());
	return c;
}

int main(void)
{
	struct err e = ERR_INIT;
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *key = EVP_EC_gen("P-256");
	_cleanup_(X509_freep) X509 *a = self_signed(key, "a"), *b = self_signed(key, "b");
	_cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = sk_X509_new_null(), *back = NULL;
	_cleanup_free_ char *pem = NULL, *chain_pem = NULL, *key_pem = NULL, *pub_pem = NULL;
	_cleanup_free_ uint8_t *der = NULL, *spki = NULL, *p8 = NULL;
	size_t der_len, spki_len, p8_len;
	X509 *c;
	EVP_PKEY *k;
	char *bad;

	ok(key && a && b, "test key and certificates");
	pem = pem_write_cert(a, &e);
	ok(pem && strncmp(pem, "-----BEGIN CERTIFICATE-----\n", 28) == 0, "certificate to PEM");
	c = pem_read_cert(pem, strlen(pem), &e);
	ok(c && X509_cmp(c, a) == 0, "PEM back to the same certificate");
	X509_free(c);

	sk_X509_push(chain, X509_dup(a));
	sk_X509_push(chain, X509_dup(b));
	chain_pem = pem_write_chain(chain, &e);
	back = pem_read_chain(chain_pem, strlen(chain_pem), &e);
	ok(back && sk_X509_num(back) == 2 && X509_cmp(sk_X509_value(back, 0), a) == 0 &&
	       X509_cmp(sk_X509_value(back, 1), b) == 0,
	   "chain round trip keeps order");
	ok(pem_read_cert(chain_pem, strlen(chain_pem), &e) == NULL, "two certificates are not one: %s",
	   e.msg);
	ok(pem_read_chain("", 0, &e) == NULL, "empty chain rejected: %s", e.msg);
	ok(pem_read_chain("  \n", 3, &e) == NULL, "blank chain rejected");

	bad = strdup(pem);
	bad[40] ^= 0x01;
	c = pem_read_cert(bad, strlen(bad), &e);
	ok(c == NULL, "corrupted PEM rejected: %s", e.msg);
	X509_free(c);
	free(bad);

	ok(der_write_cert(a, &der, &der_len, &e) == 0 && der[0] == 0x30, "certificate to DER");
	c = der_read_cert(der, der_len, &e);
	ok(c && X509_cmp(c, a) == 0, "DER back to the same certificate");
	X509_free(c);
	ok(der_read_cert(der, der_len - 1, &e) == NULL, "truncated DER rejected: %s", e.msg);
	der = realloc(der, der_len + 1);
	der[der_len] = 0;
	ok(der_read_cert(der, der_len + 1, &e) == NULL, "trailing byte after DER rejected: %s", e.msg);

	key_pem = pem_write_private_key(key, &e);
	ok(key_pem && strncmp(key_pem, "-----BEGIN PRIVATE KEY-----\n", 28) == 0,
	   "private key as PKCS#8 PEM");
	k = pem_read_private_key(key_pem, strlen(key_pem), &e);
	ok(k && EVP_PKEY_eq(k, key) == 1, "private key round trip");
	EVP_PKEY_free(k);
	ok(pem_read_private_key(pem, strlen(pem), &e) == NULL, "a certificate is not a key: %s", e.msg);

	pub_pem = pem_write_public_key(key, &e);
	k = pem_read_public_key(pub_pem, strlen(pub_pem), &e);
	ok(k && EVP_PKEY_eq(k, key) == 1, "public key PEM round trip");
	EVP_PKEY_free(k);

	ok(der_write_public_key(key, &spki, &spki_len, &e) == 0 && spki_len == 91, "P-256 SPKI is 91 bytes");
	k = der_read_public_key(spki, spki_len, &e);
	ok(k && EVP_PKEY_eq(k, key) == 1, "SPKI round trip");
	EVP_PKEY_free(k);
	ok(der_read_public_key(spki, spki_len - 1, &e) == NULL, "truncated SPKI rejected");
	ok(der_write_private_key(key, &p8, &p8_len, &e) == 0 && p8[0] == 0x30 && p8_len > 60, "PKCS#8 DER");
	return tap_done();
}
