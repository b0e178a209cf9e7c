/*
 * keys.h — the KMS root key set and its files in core.cert_dir (kms.md §3).
 *
 *   root-ca.key (P-256 PKCS#8 PEM, 0600)  root-ca.crt
 *   root-k256.key (32 raw bytes, 0600)
 *   tmp-ca.key (0600)  tmp-ca.crt   rpc.key (0600)  rpc.crt
 *   rpc-domain   bootstrap-info.json (interactive Bootstrap only)
 *
 * Storing a fresh key set is crash-safe: every file is first written into
 * the staging folder `<cert_dir>/.staging`, then a `COMPLETE` marker, then
 * the files are renamed into place. kms_keys_recover() at start-up rolls a
 * marked staging folder forward and discards an unmarked one; a cert_dir
 * with only part of the key set and no staging folder is refused. So a kill
 * at any point leaves either no keys, or the whole set after restart.
 */
#ifndef DSTACK_KMS_KEYS_H
#define DSTACK_KMS_KEYS_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "core/err.h"

struct kms_keys {
	EVP_PKEY *root_ca_key;
	X509 *root_ca_cert;
	uint8_t root_ca_scalar[32];
	uint8_t root_k256[32];
	uint8_t k256_pub[33];
	EVP_PKEY *tmp_ca_key;
	X509 *tmp_ca_cert;
	EVP_PKEY *rpc_key;
	X509 *rpc_cert;
	/* PEM forms handed out by the RPCs. */
	char *root_ca_cert_pem, *root_ca_key_pem, *tmp_ca_cert_pem, *tmp_ca_key_pem;
	char *domain;
};

/* The 7 files whose presence means "keys exist". */
bool kms_keys_exist(const char *cert_dir);
/* True if bootstrap-info.json, root-ca.key or root-k256.key exists (a
 * bootstrap or onboarding must then be refused). */
bool kms_keys_any_root(const char *cert_dir);
/* Finish or discard an interrupted store; refuse a partial key set. */
int kms_keys_recover(const char *cert_dir, struct err *e);

/* Fresh root CA, k256 key, temp CA, and an RPC key/cert for domain. */
int kms_keys_generate(struct kms_keys *k, const char *domain, struct err *e);
/* Keys from a source KMS (onboarding): root CA key PEM, k256 scalar, temp
 * CA key PEM; new certificates and a new RPC key are minted. */
int kms_keys_from_source(struct kms_keys *k, const char *root_ca_key_pem, const uint8_t k256[32],
			 const char *tmp_ca_key_pem, const char *domain, struct err *e);
/* Write the whole set (plus bootstrap-info.json when not NULL) crash-safely. */
int kms_keys_store(const char *cert_dir, const struct kms_keys *k, const char *bootstrap_info_json,
		   struct err *e);
int kms_keys_load(const char *cert_dir, struct kms_keys *k, struct err *e);
void kms_keys_free(struct kms_keys *k);

/* Start-up certificate refresh: re-mint the root and temp CA certificates
 * from their keys when the stored ones expire within 365 days (persisted),
 * and always reissue rpc.crt (with the attestation extension when given). */
int kms_keys_update_certs(const char *cert_dir, struct kms_keys *k, const uint8_t *attestation,
			  size_t attestation_len, struct err *e);
/* Issue an RPC certificate for k->rpc_key (SAN = k->domain, usage kms:rpc). */
int kms_keys_issue_rpc_cert(struct kms_keys *k, const uint8_t *attestation, size_t attestation_len,
			    struct err *e);
/* Re-derive PEM caches and k256_pub after the key objects changed. */
int kms_keys_refresh_pem(struct kms_keys *k, struct err *e);

/* Test hook: DSTACK_KMS_CRASH_AT=N kills the process with SIGKILL at the
 * N-th step of kms_keys_store (1-based). */
void kms_crash_point(void);

#endif
