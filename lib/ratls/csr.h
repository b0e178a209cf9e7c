/*
 * csr.h — the KMS SignCert certificate signing request (kms.md §4): not
 * PKCS#10 but a SCALE structure signed by the certificate key.
 *
 *   V2 = { confirm: String = "please sign cert:", pubkey: Vec<u8> (SPKI DER),
 *          config: { org_name: Option<String>, subject: String,
 *                    subject_alt_names: Vec<String>, usage_server_auth: bool,
 *                    usage_client_auth: bool, ext_quote: bool,
 *                    ext_app_info: bool, not_before: Option<u64>,
 *                    not_after: Option<u64> },
 *          attestation: VersionedAttestation bytes (the rest of the input) }
 *   V1 = { confirm, pubkey, config (first six fields), quote: Vec<u8>,
 *          event_log: Vec<u8> (JSON) }, upgraded to V2 on decode: the
 *          attestation becomes a V0 attestation of that quote and log.
 *
 * signature = ECDSA-P256-SHA256 (ASN.1 DER) over the exact SCALE bytes,
 * made with the key whose SPKI is `pubkey`.
 */
#ifndef DSTACK_RATLS_CSR_H
#define DSTACK_RATLS_CSR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "core/buf.h"
#include "core/err.h"

#define RATLS_CSR_CONFIRM "please sign cert:"
/* Largest CSR accepted (attestation max 10 MiB plus the rest). */
#define RATLS_CSR_MAX (11 * 1024 * 1024)
#define RATLS_CSR_MAX_SANS 256

struct ratls_cert_config {
	char *org_name; /* NULL = None */
	char *subject;  /* the CN */
	char **sans;
	size_t n_sans;
	bool usage_server_auth, usage_client_auth;
	bool ext_quote, ext_app_info;
	bool has_not_before, has_not_after;
	uint64_t not_before, not_after; /* unix seconds */
};

struct ratls_csr {
	char *confirm;
	uint8_t *pubkey; /* SPKI DER */
	size_t pubkey_len;
	struct ratls_cert_config config;
	uint8_t *attestation; /* VersionedAttestation bytes (may be empty) */
	size_t attestation_len;
};

void ratls_csr_free(struct ratls_csr *c);

/* Encode as V2. */
void ratls_csr_encode(const struct ratls_csr *c, struct buf *out);
/* Decode V2 (api_version 2) or V1 (api_version 0/1, upgraded). Does not
 * check the confirm word or signature: see ratls_csr_verify. */
int ratls_csr_decode(uint32_t api_version, const uint8_t *data, size_t len, struct ratls_csr *out,
		     struct err *e);
/* Encode the V1 form of a CSR whose attestation is given as quote + event
 * log JSON (for tests and old clients). */
void ratls_csr_encode_v1(const struct ratls_csr *c, const uint8_t *quote, size_t quote_len,
			 const char *event_log_json, struct buf *out);

/* ECDSA-P256-SHA256 DER signature over data with key. */
int ratls_csr_sign(EVP_PKEY *key, const uint8_t *data, size_t len, struct buf *sig, struct err *e);
/* The confirm word is "please sign cert:", pubkey is a P-256 SPKI, and sig
 * verifies over data (the CSR bytes as received) with it. */
int ratls_csr_verify(const struct ratls_csr *c, const uint8_t *data, size_t len, const uint8_t *sig,
		     size_t sig_len, struct err *e);

#endif
