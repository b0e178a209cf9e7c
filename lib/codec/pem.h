/*
 * pem.h — certificates and keys to and from PEM text and DER bytes.
 *
 * dstack moves certificates as PEM strings (GetTlsKey chains, KMS ca_cert,
 * .appkeys.json) and as DER inside other structures (SPKI in CSRs and
 * key-provider ids). These wrappers give every OpenSSL call one error style
 * and reject trailing garbage or empty input instead of silently ignoring it.
 * Private keys are written as unencrypted PKCS#8 ("BEGIN PRIVATE KEY"), the
 * form the reference emits.
 */
#ifndef DSTACK_CODEC_PEM_H
#define DSTACK_CODEC_PEM_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "core/err.h"

/* One certificate; extra text after it is ignored only if it is whitespace. */
X509 *pem_read_cert(const char *pem, size_t len, struct err *e);
/* All certificates in order (at least one). */
STACK_OF(X509) * pem_read_chain(const char *pem, size_t len, struct err *e);
EVP_PKEY *pem_read_private_key(const char *pem, size_t len, struct err *e);
EVP_PKEY *pem_read_public_key(const char *pem, size_t len, struct err *e);

/* Malloc'd NUL-terminated PEM text, or NULL. */
char *pem_write_cert(X509 *cert, struct err *e);
/* Concatenated PEM of every certificate. */
char *pem_write_chain(STACK_OF(X509) * chain, struct err *e);
char *pem_write_private_key(EVP_PKEY *key, struct err *e);
char *pem_write_public_key(EVP_PKEY *key, struct err *e);

/* DER: the whole input must be consumed. */
X509 *der_read_cert(const uint8_t *der, size_t len, struct err *e);
EVP_PKEY *der_read_public_key(const uint8_t *spki, size_t len, struct err *e);
/* Malloc'd DER. */
int der_write_cert(X509 *cert, uint8_t **out, size_t *out_len, struct err *e);
/* SubjectPublicKeyInfo DER of a key. */
int der_write_public_key(EVP_PKEY *key, uint8_t **out, size_t *out_len, struct err *e);
/* PKCS#8 PrivateKeyInfo DER (caller should zero it after use). */
int der_write_private_key(EVP_PKEY *key, uint8_t **out, size_t *out_len, struct err *e);

#endif
