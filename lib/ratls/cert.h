/*
 * cert.h — X.509 certificates of the dstack PKI (kms.md §4), ECDSA P-256
 * with SHA-256, built with OpenSSL.
 *
 * One generic builder (ratls_cert_build) and one function per profile:
 *
 *   root CA    O=Dstack, CN=Dstack KMS CA          self-signed, CA pathlen 1
 *   temp CA    O=Dstack, CN=Dstack Client Temp CA  self-signed, CA pathlen 0
 *   KMS RPC    CN=SAN=domain, usage kms:rpc [+ attestation]   by root CA
 *   RA client  CN=RA-TLS TEMP Cert, attestation              by temp CA
 *   App CA     O=Dstack, CN=Dstack App CA, pathlen 0, app_id, usage app:ca
 *   App leaf   from a SignCert CSR, usage app:custom         by App CA
 *
 * Every certificate gets KeyUsage digitalSignature (CAs add keyCertSign and
 * cRLSign), a random positive 128-bit serial, Subject/Authority Key
 * Identifiers, and validity [not_before, not_after] (defaults: one hour ago,
 * so a peer whose clock runs slightly behind still accepts a fresh
 * certificate, and now + 3650 days). SAN strings that parse as IPv4/IPv6 become IP SANs,
 * the rest DNS names.
 */
#ifndef DSTACK_RATLS_CERT_H
#define DSTACK_RATLS_CERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "core/err.h"
#include "ratls/csr.h"

#define RATLS_CERT_DEFAULT_DAYS 3650
#define RATLS_CERT_BACKDATE 3600 /* seconds */

struct ratls_cert_params {
	const char *org; /* O=, NULL for none */
	const char *cn;  /* CN= */
	const char *const *sans;
	size_t n_sans;
	bool ca;
	int pathlen;                   /* with ca: -1 = unlimited */
	bool server_auth, client_auth; /* EKU; neither = no EKU extension */
	const uint8_t *app_id;         /* .3, NULL = absent */
	size_t app_id_len;
	const char *usage;          /* .4, NULL = absent */
	const uint8_t *attestation; /* .8, NULL = absent */
	size_t attestation_len;
	const uint8_t *quote; /* legacy .1 */
	size_t quote_len;
	const uint8_t *event_log; /* legacy .2 (JSON or ELGZv1 bytes) */
	size_t event_log_len;
	const uint8_t *app_info; /* .9 */
	size_t app_info_len;
	time_t not_before, not_after; /* 0 = defaults */
};

/* A fresh P-256 key. */
EVP_PKEY *ratls_key_generate(struct err *e);

/* Build and sign. issuer NULL = self-signed with `key`; else issuer_key signs. */
X509 *ratls_cert_build(const struct ratls_cert_params *p, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
		       struct err *e);

/* ---- the profiles ---- */
X509 *ratls_cert_root_ca(EVP_PKEY *key, struct err *e);
X509 *ratls_cert_temp_ca(EVP_PKEY *key, struct err *e);
/* attestation may be NULL (attest_rpc_cert = false). */
X509 *ratls_cert_kms_rpc(EVP_PKEY *key, const char *domain, const uint8_t *attestation, size_t att_len,
			 X509 *root_ca, EVP_PKEY *root_key, struct err *e);
X509 *ratls_cert_ra_client(EVP_PKEY *key, const uint8_t *attestation, size_t att_len, X509 *temp_ca,
			   EVP_PKEY *temp_key, struct err *e);
X509 *ratls_cert_app_ca(EVP_PKEY *key, const uint8_t *app_id, size_t app_id_len, X509 *root_ca,
			EVP_PKEY *root_key, struct err *e);
/*
 * The leaf for a verified SignCert CSR: subject/SANs/EKU/validity from the
 * CSR, key = csr->pubkey, app_id ext, usage app:custom; `attestation` (the
 * stripped VersionedAttestation) is embedded only if config.ext_quote,
 * `app_info` (MessagePack) only if config.ext_app_info. O= is
 * config.org_name when given.
 */
X509 *ratls_cert_app_leaf(const struct ratls_csr *csr, const uint8_t *app_id, size_t app_id_len,
			  const uint8_t *attestation, size_t att_len, const uint8_t *app_info,
			  size_t app_info_len, X509 *app_ca, EVP_PKEY *app_ca_key, struct err *e);

#endif
