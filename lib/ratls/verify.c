/*
 * verify.c — the dstack attestation verifier: DCAP verification through
 * lib/tdx, the dstack-specific TD checks, the RTMR3 / report_data binding,
 * and BootInfo.
 *
 * Collateral comes from a PCCS client (thread-safe, cached) or from a
 * preloaded raw collateral that is checked against the trust anchor at the
 * verification time of each call (a cheap step next to the quote checks,
 * and it keeps "now" a pure parameter).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/pem.h"
#include "core/cleanup.h"
#include "core/hex.h"
#include "ratls/csr.h"
#include "ratls/ext.h"
#include "ratls/verify.h"
#include "tdx/collateral.h"
#include "tdx/pccs.h"

struct ratls_verifier {
	X509 *root;
	bool dev_root;
	struct pccs_client *pccs;            /* or */
	struct dcap_collateral_raw *preload; /* preloaded collateral */
};

int ratls_verifier_new(struct ratls_verifier **out, const struct ratls_verifier_opts *o, struct err *e)
{
	struct ratls_verifier *v = calloc(1, sizeof(*v));

	*out = NULL;
	if (!v)
		return err_set(e, "out of memory");
	if (dcap_trust_anchor_select(o->insecure_allow_external_trust_anchors, o->root_ca_path, &v->root, e) <
	    0)
		goto fail;
	v->dev_root = o->root_ca_path && *o->root_ca_path;
	if (o->collateral_json) {
		v->preload = calloc(1, sizeof(*v->preload));
		if (!v->preload) {
			err_set(e, "out of memory");
			goto fail;
		}
		if (dcap_collateral_raw_from_json(o->collateral_json, o->collateral_json_len, v->preload, e) <
		    0) {
			err_wrap(e, "collateral");
			goto fail;
		}
	} else if (pccs_client_new(&v->pccs, o->pccs_url, o->cache_dir, v->root, e) < 0) {
		goto fail;
	}
	*out = v;
	return 0;
fail:
	ratls_verifier_free(v);
	return -1;
}

void ratls_verifier_free(struct ratls_verifier *v)
{
	if (!v)
		return;
	X509_free(v->root);
	pccs_client_free(v->pccs);
	if (v->preload) {
		dcap_collateral_raw_free(v->preload);
		free(v->preload);
	}
	free(v);
}

bool ratls_verifier_is_dev(const struct ratls_verifier *v)
{
	return v->dev_root;
}

void ratls_verified_free(struct ratls_verified *r)
{
	attestation_free(&r->att);
	quote_free(&r->quote);
	dcap_result_free(&r->dcap);
	memset(r, 0, sizeof(*r));
}

static bool all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

static int dcap_step(struct ratls_verifier *v, struct ratls_verified *r, time_t now, struct err *e)
{
	if (quote_parse(&r->quote, r->att.quote, r->att.quote_len, e) < 0)
		return -1;
	if (!quote_is_tdx(&r->quote))
		return err_set(e, "not a TDX quote");
	if (v->pccs) {
		const struct dcap_collateral *c;
		if (pccs_collateral_for_quote(v->pccs, &r->quote, now, &c, e) < 0)
			return err_wrap(e, "collateral");
		return dcap_verify(&r->quote, c, now, &r->dcap, e);
	}
	struct dcap_collateral *c = NULL;
	if (dcap_collateral_load(&c, v->preload, v->root, now, e) < 0)
		return err_wrap(e, "collateral");
	int rc = dcap_verify(&r->quote, c, now, &r->dcap, e);
	dcap_collateral_free(c);
	return rc;
}

static void check_boot_log(struct ratls_verified *r)
{
	uint8_t rtmr[RTMR_COUNT][RTMR_LEN];
	struct err e = ERR_INIT;
	bool any = false;

	for (size_t i = 0; i < r->att.event_log.n; i++)
		if (r->att.event_log.ev[i].imr < RUNTIME_EVENT_IMR && !event_is_acpi(&r->att.event_log.ev[i]))
			any = true;
	if (!any)
		return;
	r->boot_log_checked = true;
	if (event_log_replay(&r->att.event_log, rtmr, &e) < 0) {
		snprintf(r->boot_log_error, sizeof(r->boot_log_error), "%s", e.msg);
		return;
	}
	for (int i = 0; i < 3; i++)
		if (memcmp(rtmr[i], r->td.rtmr[i], RTMR_LEN) != 0) {
			snprintf(r->boot_log_error, sizeof(r->boot_log_error),
				 "RTMR%d mismatch: event log does not replay to the quote", i);
			return;
		}
	r->boot_log_ok = true;
}

int ratls_verify_attestation(struct ratls_verifier *v, struct attestation *a, time_t now,
			     struct ratls_verified *out, struct err *e)
{
	enum ratls_stage stage;

	return ratls_verify_attestation_staged(v, a, now, out, &stage, e);
}

int ratls_verify_attestation_staged(struct ratls_verifier *v, struct attestation *a, time_t now,
				    struct ratls_verified *out, enum ratls_stage *stage, struct err *e)
{
	memset(out, 0, sizeof(*out));
	*stage = RATLS_STAGE_QUOTE;
	out->att = *a;
	attestation_init(a);
	if (now == 0)
		now = time(NULL);

	if (dcap_step(v, out, now, e) < 0)
		goto fail;
	const struct td_report *td = &out->quote.td;
	*stage = RATLS_STAGE_TD_POLICY;
	if (td->td_attributes[0] & 1) {
		err_set(e, "debug mode is not allowed");
		goto fail;
	}
	if (!all_zero(td->mr_signer_seam, sizeof(td->mr_signer_seam))) {
		err_set(e, "invalid mr_signer_seam");
		goto fail;
	}
	if (!all_zero(td->mr_service_td, sizeof(td->mr_service_td))) {
		err_set(e, "invalid mr_service_td");
		goto fail;
	}
	*stage = RATLS_STAGE_EVENT_LOG;
	if (td_quote_read(out->att.quote, out->att.quote_len, &out->td, e) < 0)
		goto fail;
	if (attestation_replay_rtmr3(&out->att, false, out->rtmr3_replayed, e) < 0) {
		err_wrap(e, "replaying runtime events");
		goto fail;
	}
	if (memcmp(out->rtmr3_replayed, out->td.rtmr[3], RTMR_LEN) != 0) {
		err_set(e, "RTMR3 mismatch");
		goto fail;
	}
	if (memcmp(out->td.report_data, out->att.report_data, 64) != 0) {
		err_set(e, "report data mismatch");
		goto fail;
	}
	check_boot_log(out);
	*stage = RATLS_STAGE_OK;
	return 0;
fail:
	ratls_verified_free(out);
	return -1;
}

int ratls_verify_bytes(struct ratls_verifier *v, const uint8_t *att, size_t len, time_t now,
		       struct ratls_verified *out, struct err *e)
{
	struct attestation a;

	memset(out, 0, sizeof(*out));
	attestation_init(&a);
	if (attestation_decode(att, len, &a, e) < 0)
		return err_wrap(e, "decode attestation");
	return ratls_verify_attestation(v, &a, now, out, e);
}

int ratls_attestation_from_quote(const uint8_t *quote, size_t quote_len, const char *event_log,
				 size_t event_log_len, const char *vm_config, struct attestation *out,
				 struct err *e)
{
	struct td_fields td;

	attestation_init(out);
	if (td_quote_read(quote, quote_len, &td, e) < 0)
		return -1;
	if (event_log && event_log_len &&
	    event_log_from_json_str(event_log, event_log_len, &out->event_log, e) < 0) {
		err_wrap(e, "event log");
		goto fail;
	}
	for (size_t i = 0; i < out->event_log.n; i++) {
		const struct tdx_event *ev = &out->event_log.ev[i];
		if (!event_is_runtime(ev))
			continue;
		if (event_log_append(&out->runtime_events, ev->imr, ev->event_type, ev->digest,
				     ev->digest_len, ev->event, ev->payload, ev->payload_len, ev->version,
				     e) < 0)
			goto fail;
	}
	out->quote = malloc(quote_len ? quote_len : 1);
	out->config = strdup(vm_config ? vm_config : "");
	if (!out->quote || !out->config) {
		err_set(e, "out of memory");
		goto fail;
	}
	memcpy(out->quote, quote, quote_len);
	out->quote_len = quote_len;
	memcpy(out->report_data, td.report_data, 64);
	out->format = ATTESTATION_V0;
	return 0;
fail:
	attestation_free(out);
	return -1;
}

/* ---- BootInfo ---- */

int ratls_boot_info(const struct ratls_verified *r, const char *vm_config, bool boot_time,
		    struct ratls_boot_info *out, struct err *e)
{
	memset(out, 0, sizeof(*out));
	if (attestation_app_info(&r->att, boot_time, vm_config, r->dcap.pck.ppid, sizeof(r->dcap.pck.ppid),
				 &out->app, e) < 0)
		return -1;
	if (out->app.app_id.len != 20) {
		ratls_boot_info_free(out);
		return err_set(e, "app_id must be 20 bytes");
	}
	out->tee_variant = RATLS_TEE_VARIANT_TDX;
	out->tcb_status = tcb_status_name(r->dcap.status);
	if (r->dcap.advisory_ids.n) {
		out->advisory_ids = calloc(r->dcap.advisory_ids.n, sizeof(char *));
		if (!out->advisory_ids) {
			ratls_boot_info_free(out);
			return err_set(e, "out of memory");
		}
		for (; out->n_advisory_ids < r->dcap.advisory_ids.n; out->n_advisory_ids++) {
			out->advisory_ids[out->n_advisory_ids] =
			    strdup(r->dcap.advisory_ids.v[out->n_advisory_ids]);
			if (!out->advisory_ids[out->n_advisory_ids]) {
				ratls_boot_info_free(out);
				return err_set(e, "out of memory");
			}
		}
	}
	return 0;
}

void ratls_boot_info_free(struct ratls_boot_info *bi)
{
	app_info_free(&bi->app);
	for (size_t i = 0; i < bi->n_advisory_ids; i++)
		free(bi->advisory_ids[i]);
	free(bi->advisory_ids);
	memset(bi, 0, sizeof(*bi));
}

static json_t *hexj(const struct bytes *b)
{
	_cleanup_free_ char *h = hex_encode_alloc(b->p ? b->p : (const uint8_t *)"", b->len);
	return json_string(h ? h : "");
}

json_t *ratls_boot_info_to_json(const struct ratls_boot_info *bi)
{
	json_t *adv = json_array();
	for (size_t i = 0; i < bi->n_advisory_ids; i++)
		json_array_append_new(adv, json_string(bi->advisory_ids[i]));
	return json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:s, s:o}", "teeVariant",
			 bi->tee_variant ? bi->tee_variant : RATLS_TEE_VARIANT_TDX, "mrAggregated",
			 hexj(&bi->app.mr_aggregated), "osImageHash", hexj(&bi->app.os_image_hash),
			 "mrSystem", hexj(&bi->app.mr_system), "appId", hexj(&bi->app.app_id), "composeHash",
			 hexj(&bi->app.compose_hash), "instanceId", hexj(&bi->app.instance_id), "deviceId",
			 hexj(&bi->app.device_id), "keyProviderInfo", hexj(&bi->app.key_provider_info),
			 "tcbStatus", bi->tcb_status ? bi->tcb_status : "", "advisoryIds", adv);
}

/* ---- peer certificates ---- */

static int cert_attestation(X509 *cert, const struct ratls_ext *x, struct attestation *a, struct err *e)
{
	attestation_init(a);
	if (x->attestation) {
		if (attestation_decode(x->attestation, x->attestation_len, a, e) < 0)
			return err_wrap(e, "decode attestation");
	} else if (x->quote) {
		if (ratls_attestation_from_quote(x->quote, x->quote_len, x->event_log, x->event_log_len, NULL,
						 a, e) < 0)
			return -1;
	} else {
		return err_set(e, RATLS_ERR_NO_ATTESTATION);
	}
	uint8_t want[64];
	EVP_PKEY *pub = X509_get0_pubkey(cert);
	if (!pub || ratls_key_report_data(pub, want, e) < 0) {
		attestation_free(a);
		return err_wrap(e, "certificate key");
	}
	if (memcmp(want, a->report_data, 64) != 0) {
		attestation_free(a);
		return err_set(e, "attestation report data does not bind the certificate key");
	}
	return 0;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(ASN1_OBJECT *, ASN1_OBJECT_free)

bool ratls_cert_has_attestation(X509 *cert)
{
	_cleanup_(ASN1_OBJECT_freep) ASN1_OBJECT *att = OBJ_txt2obj(RATLS_OID_ATTESTATION, 1);
	_cleanup_(ASN1_OBJECT_freep) ASN1_OBJECT *quote = OBJ_txt2obj(RATLS_OID_QUOTE, 1);

	return cert && att && quote &&
	       (X509_get_ext_by_OBJ(cert, att, -1) >= 0 || X509_get_ext_by_OBJ(cert, quote, -1) >= 0);
}

int ratls_verify_peer_cert(struct ratls_verifier *v, X509 *cert, time_t now, struct ratls_verified *out,
			   struct err *e)
{
	struct ratls_ext x;
	struct attestation a;

	memset(out, 0, sizeof(*out));
	if (!cert)
		return err_set(e, RATLS_ERR_NO_ATTESTATION);
	if (ratls_ext_read(cert, &x, e) < 0)
		return err_wrap(e, "invalid quote");
	if (!x.attestation && !x.quote) {
		ratls_ext_free(&x);
		return err_set(e, RATLS_ERR_NO_ATTESTATION);
	}
	int rc = cert_attestation(cert, &x, &a, e);
	ratls_ext_free(&x);
	if (rc < 0)
		return err_wrap(e, "invalid quote");
	if (ratls_verify_attestation(v, &a, now, out, e) < 0)
		return err_wrap(e, "invalid quote");
	return 0;
}

int ratls_peer_app_info(struct ratls_verifier *v, X509 *cert, time_t now, struct app_info *out, struct err *e)
{
	_cleanup_free_ uint8_t *raw = NULL;
	size_t len = 0;

	memset(out, 0, sizeof(*out));
	int has = ratls_ext_get(cert, RATLS_OID_APP_INFO, &raw, &len, e);
	if (has < 0)
		return -1;
	if (has)
		return app_info_decode(raw, len, out, e) < 0 ? err_wrap(e, "app info extension") : 0;
	struct ratls_verified r;
	struct err e2 = ERR_INIT;
	if (!v || ratls_verify_peer_cert(v, cert, now, &r, &e2) < 0) {
		if (!v || strcmp(e2.msg, RATLS_ERR_NO_ATTESTATION) == 0)
			return err_set(e, "neither app-info nor attestation provided");
		return err_set(e, "%s", e2.msg);
	}
	int rc = attestation_app_info(&r.att, false, NULL, r.dcap.pck.ppid, sizeof(r.dcap.pck.ppid), out, e);
	ratls_verified_free(&r);
	return rc;
}

/* ---- SignCert ---- */

int ratls_signcert_check(struct ratls_verifier *v, uint32_t api_version, const uint8_t *csr_bytes,
			 size_t csr_len, const uint8_t *sig, size_t sig_len, time_t now,
			 struct ratls_csr *csr, struct ratls_verified *out, struct err *e)
{
	struct attestation a;
	uint8_t want[64];

	memset(out, 0, sizeof(*out));
	if (ratls_csr_decode(api_version, csr_bytes, csr_len, csr, e) < 0)
		return -1;
	if (ratls_csr_verify(csr, csr_bytes, csr_len, sig, sig_len, e) < 0)
		goto fail;
	if (attestation_decode(csr->attestation, csr->attestation_len, &a, e) < 0) {
		err_wrap(e, "invalid quote: decode attestation");
		goto fail;
	}
	ratls_spki_report_data(csr->pubkey, csr->pubkey_len, want);
	if (memcmp(want, a.report_data, 64) != 0) {
		attestation_free(&a);
		err_set(e, "invalid quote: attestation report data does not bind the CSR key");
		goto fail;
	}
	if (ratls_verify_attestation(v, &a, now, out, e) < 0) {
		err_wrap(e, "invalid quote");
		goto fail;
	}
	return 0;
fail:
	ratls_csr_free(csr);
	return -1;
}

int ratls_attestation_for_cert(const struct attestation *a, struct buf *out, struct err *e)
{
	struct attestation c;

	attestation_init(&c);
	if (attestation_copy(a, &c, e) < 0)
		return -1;
	int rc = attestation_strip_for_cert(&c, e);
	if (rc == 0)
		rc = attestation_encode(&c, out, e);
	attestation_free(&c);
	return rc;
}
