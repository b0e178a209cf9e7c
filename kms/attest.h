/*
 * attest.h — what the RPC handlers ask of attestation (implemented in
 * attest.c on lib/ratls): authorize a caller from its RA-TLS client
 * certificate or a verified attestation, and read the KMS's own identity.
 */
#ifndef DSTACK_KMS_ATTEST_H
#define DSTACK_KMS_ATTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "core/buf.h"
#include "core/err.h"

struct kms;
struct ratls_verified;

/* An authorized caller: identity from the verified attestation. */
struct kms_caller {
	uint8_t app_id[20];
	uint8_t instance_id[64];
	size_t instance_id_len;
	uint8_t os_image_hash[64];
	size_t os_image_hash_len;
	char gateway_app_id[256];
};

/* Verify the peer certificate's attestation, build BootInfo with vm_config,
 * ask bootAuth/app (or /kms). "No attestation provided" when peer is NULL;
 * denial reads "App not allowed: Boot denied: <reason>". */
int kms_authorize_peer(struct kms *k, X509 *peer, const char *vm_config, bool is_kms, struct kms_caller *out,
		       struct err *e);
/* Same for an already verified attestation (SignCert: boot_time mode).
 * app_info (may be NULL) receives the MessagePack AppInfo. Runs the KMS
 * self-authorization first. */
int kms_authorize_verified(struct kms *k, const struct ratls_verified *v, const char *vm_config, bool is_kms,
			   bool boot_time, struct kms_caller *out, struct buf *app_info, struct err *e);

struct kms_own_info {
	uint8_t device_id[32];
	uint8_t mr_aggregated[32];
	uint8_t os_image_hash[64];
	size_t os_image_hash_len;
	char tee_variant[32];
	uint8_t ppid[16];
	size_t ppid_len;
};
int kms_own_attestation_info(struct kms *k, struct kms_own_info *out, struct err *e);

#endif
