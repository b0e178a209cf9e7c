/*
 * kms_cert.h — certificates for a key of the CVM's choosing (guest.md
 * §2.3), shared by the guest agent (GetTlsKey / Tappd DeriveKey) and
 * `dstack-util setup` (the gateway client certificate): the SignCert v2
 * CSR built from a request, and — with the KMS key provider, whose app CA
 * key never leaves the KMS — the KMS SignCert call that turns it into the
 * chain [leaf, app CA, KMS root].
 *
 * The CSR's attestation binds the key (report_data = SHA-512("ratls-cert:"
 * ‖ SPKI)); the caller produces it from its own TEE handle so the agent can
 * hold its event-log lock while setup uses its own.
 */
#ifndef DSTACK_GUEST_KMS_CERT_H
#define DSTACK_GUEST_KMS_CERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "attest/attestation.h"
#include "core/err.h"
#include "ratls/csr.h"

/* What the certificate should say (GetTlsKey's arguments). */
struct tls_cert_req {
	const char *subject;
	const char *const *alt_names;
	size_t n_alt_names;
	bool usage_ra_tls, usage_server_auth, usage_client_auth, with_app_info;
	bool has_not_before, has_not_after;
	uint64_t not_before, not_after;
};

/*
 * Fill `csr` for `key` from `r` (confirm word, SPKI, config) and the
 * report_data its attestation must carry. The CSR borrows r's strings; only
 * csr->pubkey is allocated: release it with cert_csr_release().
 */
int cert_csr_prepare(EVP_PKEY *key, const struct tls_cert_req *r, struct ratls_csr *csr,
		     uint8_t report_data[64], struct err *e);
void cert_csr_release(struct ratls_csr *csr);

/*
 * SignCert v2 at the KMS that served the app keys (kms_url, "/prpc" added
 * unless present): `att` (full, bound to the key) becomes the CSR's
 * attestation, the CSR is signed with `key`. On success *chain is a malloc'd
 * array of *n malloc'd PEM strings (cert_chain_free).
 */
int kms_sign_cert(const char *kms_url, const char *vm_config, EVP_PKEY *key, struct ratls_csr *csr,
		  const struct attestation *att, char ***chain, size_t *n, struct err *e);

void cert_chain_free(char **chain, size_t n);

#endif
