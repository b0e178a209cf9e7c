/*
 * attest.c — the KMS side of attestation, on lib/ratls: the verifier built
 * from [core.attestation], verification of callers (RA-TLS client
 * certificates, SignCert CSRs) into BootInfo + webhook decision, the KMS's
 * own attestation for rpc.crt, and self-authorization (kms.md §5).
 */
#include <stdlib.h>
#include <string.h>

#include "attest.h"
#include "auth.h"
#include "core/cleanup.h"
#include "core/log.h"
#include "kms.h"
#include "ratls/ext.h"
#include "ratls/verify.h"
#include "prpc/agent.h"

int kms_attest_init(struct kms *k, struct err *e)
{
	struct ratls_verifier_opts o = {
	    .pccs_url = k->cfg.pccs_url && *k->cfg.pccs_url ? k->cfg.pccs_url : NULL,
	    .root_ca_path = k->cfg.root_ca_tdx && *k->cfg.root_ca_tdx ? k->cfg.root_ca_tdx : NULL,
	    .insecure_allow_external_trust_anchors = k->cfg.insecure_allow_external_trust_anchors,
	};

	if (ratls_verifier_new(&k->verifier, &o, e) < 0)
		return err_wrap(e, "attestation verifier");
	if (ratls_verifier_is_dev(k->verifier))
		log_warn("attestation trust anchor is NOT the Intel SGX root (%s): development use only",
			 k->cfg.root_ca_tdx);
	return 0;
}

void kms_attest_free(struct kms *k)
{
	if (k->verifier)
		ratls_verifier_free(k->verifier);
	k->verifier = NULL;
}

/* BootInfo → webhook decision. */
static int authorize(struct kms *k, bool is_kms, const struct ratls_boot_info *bi, char *gateway_app_id,
		     size_t gw_size, struct err *e)
{
	_cleanup_json_ json_t *body = ratls_boot_info_to_json(bi);
	struct kms_auth_reply r;

	if (!body)
		return err_set(e, "out of memory");
	if (kms_auth_boot(&k->cfg, is_kms, body, &r, e) < 0)
		return -1;
	if (!r.allowed)
		return err_set(e, "Boot denied: %s", r.reason);
	if (gateway_app_id)
		snprintf(gateway_app_id, gw_size, "%s", r.gateway_app_id);
	return 0;
}

int kms_authorize_verified(struct kms *k, const struct ratls_verified *v, const char *vm_config, bool is_kms,
			   bool boot_time, struct kms_caller *out, struct buf *app_info, struct err *e)
{
	struct ratls_boot_info bi;
	int rc;

	memset(out, 0, sizeof(*out));
	if (kms_self_authorize(k, e) < 0)
		return -1;
	if (ratls_boot_info(v, vm_config, boot_time, &bi, e) < 0)
		return -1;
	if (bi.app.app_id.len != 20) {
		ratls_boot_info_free(&bi);
		return err_set(e, "app_id must be 20 bytes");
	}
	memcpy(out->app_id, bi.app.app_id.p, 20);
	out->instance_id_len = bi.app.instance_id.len > sizeof(out->instance_id) ? sizeof(out->instance_id)
										 : bi.app.instance_id.len;
	if (out->instance_id_len)
		memcpy(out->instance_id, bi.app.instance_id.p, out->instance_id_len);
	out->os_image_hash_len = bi.app.os_image_hash.len > sizeof(out->os_image_hash)
				     ? sizeof(out->os_image_hash)
				     : bi.app.os_image_hash.len;
	if (out->os_image_hash_len)
		memcpy(out->os_image_hash, bi.app.os_image_hash.p, out->os_image_hash_len);
	rc = authorize(k, is_kms, &bi, out->gateway_app_id, sizeof(out->gateway_app_id), e);
	if (rc == 0 && app_info)
		app_info_encode(&bi.app, app_info);
	ratls_boot_info_free(&bi);
	if (rc < 0)
		return err_wrap(e, is_kms ? "KMS not allowed" : "App not allowed");
	return 0;
}

int kms_authorize_peer(struct kms *k, X509 *peer, const char *vm_config, bool is_kms, struct kms_caller *out,
		       struct err *e)
{
	struct ratls_verified v;
	int rc;

	if (!peer)
		return err_set(e, RATLS_ERR_NO_ATTESTATION);
	memset(&v, 0, sizeof(v));
	if (ratls_verify_peer_cert(k->verifier, peer, 0, &v, e) < 0)
		return -1;
	rc = kms_authorize_verified(k, &v, vm_config, is_kms, false, out, NULL, e);
	ratls_verified_free(&v);
	return rc;
}

/* Own BootInfo body, memoised for the life of the process. */
static int self_boot_body(struct kms *k, char **out, struct err *e)
{
	uint8_t zero[64] = {0};
	_cleanup_free_ uint8_t *att = NULL;
	size_t len = 0;
	struct ratls_verified v;
	struct ratls_boot_info bi;
	_cleanup_json_ json_t *body = NULL;
	int rc = 0;

	pthread_mutex_lock(&k->self_lock);
	if (!k->self_boot_body) {
		memset(&v, 0, sizeof(v));
		if (kms_agent_attest(zero, &att, &len, e) < 0 ||
		    ratls_verify_bytes(k->verifier, att, len, 0, &v, e) < 0) {
			rc = -1;
		} else {
			if (ratls_boot_info(&v, NULL, false, &bi, e) < 0) {
				rc = -1;
			} else {
				body = ratls_boot_info_to_json(&bi);
				k->self_boot_body = body ? json_dumps(body, JSON_COMPACT) : NULL;
				ratls_boot_info_free(&bi);
				if (!k->self_boot_body)
					rc = err_set(e, "out of memory");
			}
			ratls_verified_free(&v);
		}
	}
	if (rc == 0)
		*out = strdup(k->self_boot_body);
	pthread_mutex_unlock(&k->self_lock);
	return rc;
}

int kms_self_authorize(struct kms *k, struct err *e)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_json_ json_t *body = NULL;
	struct kms_auth_reply r;

	if (!k->cfg.enforce_self_authorization)
		return 0;
	if (self_boot_body(k, &text, e) < 0) {
		if (kms_auth_is_dev(&k->cfg) && !prpc_agent_present()) {
			/* Dev deployments on a host have no guest agent; the dev
			 * policy allows every KMS anyway. */
			if (!atomic_exchange(&k->self_auth_warned, true))
				log_warn("self-authorization skipped: dev auth_api and no guest agent (%s)",
					 err_str(e));
			err_clear(e);
			return 0;
		}
		return err_wrap(e, "KMS self authorization failed");
	}
	body = json_loads(text, 0, NULL);
	if (!body)
		return err_set(e, "KMS self authorization failed: out of memory");
	if (kms_auth_boot(&k->cfg, true, body, &r, e) < 0)
		return err_wrap(e, "KMS self authorization failed");
	if (!r.allowed)
		return err_set(e, "KMS self authorization failed: KMS is not allowed: %s", r.reason);
	return 0;
}

int kms_rpc_cert_attestation(struct kms *k, EVP_PKEY *rpc_key, uint8_t **att, size_t *len, struct err *e)
{
	uint8_t rd[64];
	_cleanup_free_ uint8_t *raw = NULL;
	size_t raw_len = 0;
	struct attestation a;
	struct buf out = BUF_INIT;

	*att = NULL;
	*len = 0;
	if (!k->cfg.attest_rpc_cert)
		return 0;
	if (kms_auth_is_dev(&k->cfg) && !prpc_agent_present()) {
		log_warn("rpc.crt issued without attestation: dev auth_api and no guest agent");
		return 0;
	}
	if (ratls_key_report_data(rpc_key, rd, e) < 0 || kms_agent_attest(rd, &raw, &raw_len, e) < 0)
		return -1;
	attestation_init(&a);
	if (attestation_decode(raw, raw_len, &a, e) < 0 || attestation_strip_for_cert(&a, e) < 0 ||
	    attestation_encode(&a, &out, e) < 0) {
		attestation_free(&a);
		buf_free(&out);
		return -1;
	}
	attestation_free(&a);
	*att = buf_steal(&out, len);
	return 0;
}

int kms_own_attestation_info(struct kms *k, struct kms_own_info *out, struct err *e)
{
	uint8_t zero[64] = {0};
	_cleanup_free_ uint8_t *att = NULL;
	size_t len = 0;
	struct ratls_verified v;
	struct ratls_boot_info bi;

	memset(out, 0, sizeof(*out));
	memset(&v, 0, sizeof(v));
	if (kms_agent_attest(zero, &att, &len, e) < 0 ||
	    ratls_verify_bytes(k->verifier, att, len, 0, &v, e) < 0)
		return -1;
	if (ratls_boot_info(&v, NULL, false, &bi, e) < 0) {
		ratls_verified_free(&v);
		return -1;
	}
	memcpy(out->device_id, bi.app.device_id.p, bi.app.device_id.len < 32 ? bi.app.device_id.len : 32);
	memcpy(out->mr_aggregated, bi.app.mr_aggregated.p, 32);
	out->os_image_hash_len = bi.app.os_image_hash.len > 64 ? 64 : bi.app.os_image_hash.len;
	if (out->os_image_hash_len)
		memcpy(out->os_image_hash, bi.app.os_image_hash.p, out->os_image_hash_len);
	snprintf(out->tee_variant, sizeof(out->tee_variant), "%s", bi.tee_variant);
	out->ppid_len = sizeof(v.dcap.pck.ppid);
	memcpy(out->ppid, v.dcap.pck.ppid, out->ppid_len);
	ratls_boot_info_free(&bi);
	ratls_verified_free(&v);
	return 0;
}
