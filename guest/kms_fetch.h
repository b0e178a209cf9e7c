/*
 * kms_fetch.h — the guest's app-key fetch from the KMS at boot (guest.md §5
 * step d), over RA-TLS in both directions:
 *
 *   1. GetTempCaCert (TLS not verified: nothing secret yet) →
 *      {temp_ca_cert, temp_ca_key, ca_cert (the KMS root CA)}
 *   2. a fresh P-256 key and an RA client certificate for it, signed by the
 *      temp CA, carrying this TD's attestation (report_data binds the key)
 *   3. mutual TLS to the KMS trusting only ca_cert; the server certificate
 *      must carry usage kms:rpc and an attestation that verifies; curl
 *      checks the host name
 *   4. GetAppKey {api_version:1, vm_config}
 *
 * URLs are tried in order; the first success wins.
 */
#ifndef DSTACK_GUEST_KMS_FETCH_H
#define DSTACK_GUEST_KMS_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "kms_rpc.pb-c.h"
#include "ratls/verify.h"
#include "tdx/tee.h"

struct kms_fetch_opts {
	const char *const *urls; /* base URLs ("https://kms:8000"); "/prpc" is appended */
	size_t n_urls;
	struct tee *tee;
	const char *runtime_events_file, *runtime_events_lock;
	const char *vm_config;
	struct ratls_verifier *verifier; /* checks the KMS's attestation */
};

struct kms_fetch_result {
	char *url;          /* the KMS that answered */
	char *root_ca_pem;  /* KMS root CA */
	uint8_t *root_spki; /* its SPKI DER = key_provider_id */
	size_t root_spki_len;
	char *tmp_ca_cert, *tmp_ca_key;
	Kms__AppKeyResponse *keys;
};

int kms_fetch_app_keys(const struct kms_fetch_opts *o, struct kms_fetch_result *out, struct err *e);
void kms_fetch_result_free(struct kms_fetch_result *r);

#endif
