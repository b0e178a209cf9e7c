/*
 * verify.h — attestation verification for dstack (kms.md §5 steps 1–4,
 * guest.md §4.2 tail) and the identity derived from it (BootInfo).
 *
 *   1. DCAP-verify the quote against collateral (PCCS with cache, or
 *      preloaded) and a trust anchor: the Intel SGX root, or a dev root
 *      only with insecure_allow_external_trust_anchors and an explicit path.
 *   2. Reject a debug TD, a non-zero MRSIGNERSEAM, a non-zero MRSERVICETD.
 *   3. Replay the runtime events: must equal RTMR3 (stored digests, V2
 *      preimages included, must match the recomputed ones).
 *   4. Quote REPORTDATA must equal the attestation's report_data.
 * TCB status and advisory IDs are reported, never judged (only Revoked
 * fails, inside DCAP).
 *
 * Peer certificates (RA-TLS): the attestation comes from extension .8, else
 * .1 (quote) + .2 (event log); its report_data must be
 * SHA-512("ratls-cert:" ‖ SPKI of the certificate). Refusals read
 * "No attestation provided" or "invalid quote: <reason>".
 *
 * A verifier is immutable after creation and thread-safe.
 *
 *     struct ratls_verifier *v;
 *     struct ratls_verifier_opts o = { .pccs_url = url };
 *     ratls_verifier_new(&v, &o, e);
 *     struct ratls_verified r;
 *     if (ratls_verify_bytes(v, att, att_len, 0, &r, e) == 0) {
 *             struct ratls_boot_info bi;
 *             ratls_boot_info(&r, vm_config, false, &bi, e);
 *             json_t *webhook_body = ratls_boot_info_to_json(&bi);
 *     }
 */
#ifndef DSTACK_RATLS_VERIFY_H
#define DSTACK_RATLS_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "attest/appinfo.h"
#include "attest/attestation.h"
#include "attest/td_quote.h"
#include "core/err.h"
#include "tdx/quote.h"
#include "tdx/verify.h"

#define RATLS_TEE_VARIANT_TDX "dstack-tdx"
#define RATLS_ERR_NO_ATTESTATION "No attestation provided"

struct ratls_verifier_opts {
	const char *pccs_url;  /* NULL: PCCS_DEFAULT_URL */
	const char *cache_dir; /* PCCS disk cache; NULL: memory only */
	/* Trust anchor override (PEM or DER file), honoured only together with
	 * insecure_allow_external_trust_anchors; otherwise it is an error. */
	const char *root_ca_path;
	bool insecure_allow_external_trust_anchors;
	/* Preloaded collateral (JSON of tdx/collateral.h); when set no PCCS
	 * is contacted. */
	const char *collateral_json;
	size_t collateral_json_len;
};

struct ratls_verifier;

int ratls_verifier_new(struct ratls_verifier **out, const struct ratls_verifier_opts *o, struct err *e);
void ratls_verifier_free(struct ratls_verifier *v);
/* True when the trust anchor is not the Intel root (for warnings). */
bool ratls_verifier_is_dev(const struct ratls_verifier *v);

/* A verified attestation. */
struct ratls_verified {
	struct attestation att; /* decoded */
	struct quote quote;     /* parsed */
	struct dcap_result dcap;
	struct td_fields td;
	uint8_t rtmr3_replayed[48];
	/* Boot event log (RTMR0-2) replay, informational: checked only when
	 * the log holds boot events (not for stripped certificate logs). */
	bool boot_log_checked, boot_log_ok;
	char boot_log_error[256];
};

void ratls_verified_free(struct ratls_verified *r);

/* Decode a VersionedAttestation (V0/V1) and verify it. now = 0: time(NULL). */
int ratls_verify_bytes(struct ratls_verifier *v, const uint8_t *att, size_t len, time_t now,
		       struct ratls_verified *out, struct err *e);
/* Verify a decoded attestation; takes ownership of *a (left empty). */
int ratls_verify_attestation(struct ratls_verifier *v, struct attestation *a, time_t now,
			     struct ratls_verified *out, struct err *e);

/* Which step refused an attestation (for reports). */
enum ratls_stage {
	RATLS_STAGE_OK,
	RATLS_STAGE_QUOTE,     /* parse / collateral / DCAP */
	RATLS_STAGE_TD_POLICY, /* debug TD, MRSIGNERSEAM, MRSERVICETD */
	RATLS_STAGE_EVENT_LOG, /* RTMR3 replay, report_data */
};
/* ratls_verify_attestation that also says which step failed (*stage). */
int ratls_verify_attestation_staged(struct ratls_verifier *v, struct attestation *a, time_t now,
				    struct ratls_verified *out, enum ratls_stage *stage, struct err *e);

/*
 * The attestation of a raw quote + event log JSON (legacy form): runtime
 * events are the log's IMR3 runtime events, report_data the quote's,
 * config = vm_config (NULL → ""). event_log may be NULL/empty (no events).
 */
int ratls_attestation_from_quote(const uint8_t *quote, size_t quote_len, const char *event_log,
				 size_t event_log_len, const char *vm_config, struct attestation *out,
				 struct err *e);

/* BootInfo (kms.md §5 PolicyBootInfo). */
struct ratls_boot_info {
	const char *tee_variant; /* static string */
	struct app_info app;     /* app_id (20 B), compose_hash, instance_id, device_id,
				    mr_system, mr_aggregated, os_image_hash, key_provider_info */
	const char *tcb_status;  /* static string */
	char **advisory_ids;
	size_t n_advisory_ids;
};

/*
 * vm_config: request vm_config, else (NULL/"") the attestation's config.
 * boot_time: SignCert mode — RTMR3' replayed up to boot-mr-done and empty
 * key-provider info. Fails unless app_id is exactly 20 bytes.
 */
int ratls_boot_info(const struct ratls_verified *r, const char *vm_config, bool boot_time,
		    struct ratls_boot_info *out, struct err *e);
void ratls_boot_info_free(struct ratls_boot_info *bi);
/* Webhook body (kms.md §7): {teeVariant, mrAggregated, osImageHash, mrSystem,
 * appId, composeHash, instanceId, deviceId, keyProviderInfo, tcbStatus,
 * advisoryIds}; hex lowercase without 0x. */
json_t *ratls_boot_info_to_json(const struct ratls_boot_info *bi);

/* ---- SignCert intake (kms.md §4) ---- */

struct ratls_csr;
/*
 * Decode the CSR for api_version, check the confirm word and the signature
 * with the embedded key, then require the CSR's attestation to bind that
 * key (report_data = SHA-512("ratls-cert:" ‖ pubkey)) and verify it. On
 * success *csr and *out are filled (free both). The caller then builds
 * BootInfo in boot-time mode: ratls_boot_info(out, vm_config, true, ...).
 */
int ratls_signcert_check(struct ratls_verifier *v, uint32_t api_version, const uint8_t *csr_bytes,
			 size_t csr_len, const uint8_t *sig, size_t sig_len, time_t now,
			 struct ratls_csr *csr, struct ratls_verified *out, struct err *e);

/* The certificate form of an attestation: a copy stripped for embedding
 * (attestation_strip_for_cert), encoded (V0 unless V2 events). */
int ratls_attestation_for_cert(const struct attestation *a, struct buf *out, struct err *e);

/* ---- peer certificates ---- */

/* Whether the certificate carries an attestation (.8, or legacy .1). A KMS
 * treats a client certificate without one as "no attestation" (key RPCs then
 * fail with RATLS_ERR_NO_ATTESTATION) rather than as a bad request. */
bool ratls_cert_has_attestation(X509 *cert);
/* Full path: attestation ext, binding to the cert key, verification. */
int ratls_verify_peer_cert(struct ratls_verifier *v, X509 *cert, time_t now, struct ratls_verified *out,
			   struct err *e);
/*
 * Gateway path (gateway.md §4 item 3): AppInfo from extension .9 when
 * present (not verified: the chain to the KMS CA vouches for it); else,
 * with a verifier, the verified attestation's AppInfo (runtime mode);
 * neither → "neither app-info nor attestation provided".
 */
int ratls_peer_app_info(struct ratls_verifier *v, X509 *cert, time_t now, struct app_info *out,
			struct err *e);

#endif
