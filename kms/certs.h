/*
 * certs.h — the X.509 profiles the KMS mints itself (kms.md §4): root CA,
 * temp CA and the RPC server certificate. ECDSA P-256 / SHA-256, random
 * serials, KeyUsage digitalSignature (+ keyCertSign, cRLSign for CAs),
 * validity now .. now + 3650 days.
 *
 * The dstack custom extensions (special usage `kms:rpc`, attestation) are
 * RA-TLS territory; until lib/ratls provides builders, kms_cert_add_ext()
 * below is a marked local shim that writes an OCTET STRING extension.
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

#define KMS_CERT_DAYS 3650

/* OID arc of dstack's certificate extensions. */
#define OID_DSTACK_APP_ID "1.3.6.1.4.1.62397.1.3"
#define OID_DSTACK_USAGE "1.3.6.1.4.1.62397.1.4"
#define OID_DSTACK_ATTESTATION "1.3.6.1.4.1.62397.1.8"

struct kms_cert_req {
	const char *org;            /* O=, or NULL */
	const char *cn;             /* CN= */
	const char *san;            /* one DNS/IP SAN, or NULL */
	int ca_pathlen;             /* -1: not a CA */
	const char *usage;          /* special usage extension text, or NULL */
	const uint8_t *attestation; /* attestation extension content, or NULL */
	size_t attestation_len;
};

EVP_PKEY *kms_p256_generate(struct err *e);
/* Issue a certificate for `pub`, signed by issuer_key (self-signed when
 * issuer is NULL). */
X509 *kms_cert_issue(const struct kms_cert_req *r, EVP_PKEY *pub, X509 *issuer, EVP_PKEY *issuer_key,
		     struct err *e);
/* Shim: add a non-critical extension whose extnValue is an OCTET STRING
 * wrapping data. */
int kms_cert_add_ext(X509 *x, const char *oid, const uint8_t *data, size_t len, struct err *e);
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
