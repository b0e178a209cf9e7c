/*
 * certs.h — PEM/DER conversions the KMS needs around its certificates. The
 * certificate profiles themselves (root CA, temp CA, RPC, App CA, leaf) come
 * from lib/ratls (ratls/cert.h).
 */
#ifndef DSTACK_KMS_CERTS_H
#define DSTACK_KMS_CERTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "core/err.h"

/* Seconds until notAfter (negative once expired). */
int64_t kms_cert_seconds_left(X509 *x);

/* PEM helpers (malloc'd text). */
char *kms_cert_pem(X509 *x);
char *kms_key_pem(EVP_PKEY *k); /* PKCS#8 */
X509 *kms_cert_from_pem(const char *pem, size_t len, struct err *e);
EVP_PKEY *kms_key_from_pem(const char *pem, size_t len, struct err *e);
/* SubjectPublicKeyInfo DER (malloc'd). */
int kms_spki_der(EVP_PKEY *k, uint8_t **der, size_t *len, struct err *e);

#endif
