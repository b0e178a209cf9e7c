/*
 * report.c — turning a verification into the JSON report shared by
 * `dstack verify` and dstack-verifier. Everything known is reported even
 * when a step fails (measurements of a quote whose signature is bad, for
 * instance), so an operator sees what was checked and what refused it.
 */
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/hex.h"
#include "ratls/report.h"

static json_t *hexj(const void *p, size_t n)
{
	_cleanup_free_ char *h = hex_encode_alloc(p ? p : "", n);
	return json_string(h ? h : "");
}

static json_t *measurements(const struct td_fields *td)
{
	json_t *m = json_object();
	char name[8];

	json_object_set_new(m, "mrtd", hexj(td->mr_td, 48));
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "rtmr%d", i);
		json_object_set_new(m, name, hexj(td->rtmr[i], 48));
	}
	json_object_set_new(m, "mr_config_id", hexj(td->mr_config_id, 48));
	json_object_set_new(m, "mr_owner", hexj(td->mr_owner, 48));
	json_object_set_new(m, "mr_owner_config", hexj(td->mr_owner_config, 48));
	json_object_set_new(m, "report_data", hexj(td->report_data, 64));
	return m;
}

/* key-provider payload {"name","id"} → object; null when absent or not JSON. */
static json_t *key_provider(const struct app_info *ai)
{
	if (!ai->key_provider_info.len)
		return json_null();
	json_t *j = json_loadb((const char *)ai->key_provider_info.p, ai->key_provider_info.len, 0, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return json_null();
	}
	json_t *name = json_object_get(j, "name"), *id = json_object_get(j, "id");
	json_t *out = json_pack("{s:O?, s:O?}", "name", name, "id", id);
	json_decref(j);
	return out ? out : json_null();
}

static void details_from_verified(json_t *d, const struct ratls_verified *r, const char *vm_config)
{
	struct ratls_boot_info bi;
	struct err e = ERR_INIT;
	json_t *adv = json_array();

	json_object_set_new(d, "tcb_status", json_string(tcb_status_name(r->dcap.status)));
	for (size_t i = 0; i < r->dcap.advisory_ids.n; i++)
		json_array_append_new(adv, json_string(r->dcap.advisory_ids.v[i]));
	json_object_set_new(d, "advisory_ids", adv);
	json_object_set_new(d, "replay",
			    json_pack("{s:o, s:b, s:b, s:b, s:s?}", "rtmr3", hexj(r->rtmr3_replayed, 48),
				      "rtmr3_matches", 1, "boot_log_checked", r->boot_log_checked,
				      "boot_log_matches", r->boot_log_ok, "boot_log_error",
				      r->boot_log_error[0] ? r->boot_log_error : NULL));
	struct app_info ai;
	if (attestation_app_info(&r->att, false, vm_config, r->dcap.pck.ppid, sizeof(r->dcap.pck.ppid), &ai,
				 &e) == 0) {
		json_object_set_new(d, "app_info", app_info_to_json(&ai));
		json_object_set_new(d, "key_provider", key_provider(&ai));
		json_object_set_new(d, "os_image_hash", hexj(ai.os_image_hash.p, ai.os_image_hash.len));
		app_info_free(&ai);
	}
	if (ratls_boot_info(r, vm_config, false, &bi, &e) == 0) {
		json_object_set_new(d, "boot_info", ratls_boot_info_to_json(&bi));
		ratls_boot_info_free(&bi);
	} else {
		json_object_set_new(d, "boot_info_error", json_string(e.msg));
	}
}

static int input_attestation(const struct ratls_report_input *in, struct attestation *a, struct err *e)
{
	if (in->attestation) {
		if (attestation_decode(in->attestation, in->attestation_len, a, e) < 0)
			return err_wrap(e, "decode attestation");
		if (in->vm_config && *in->vm_config) {
			free(a->config);
			a->config = strdup(in->vm_config);
			if (!a->config)
				return err_set(e, "out of memory");
		}
		return 0;
	}
	if (!in->quote)
		return err_set(e, "neither attestation nor quote provided");
	return ratls_attestation_from_quote(in->quote, in->quote_len, in->event_log,
					    in->event_log ? strlen(in->event_log) : 0, in->vm_config, a, e);
}

json_t *ratls_verify_report(struct ratls_verifier *v, const struct ratls_report_input *in, time_t now,
			    bool *is_valid)
{
	json_t *d = json_object();
	struct err e = ERR_INIT;
	struct attestation a;
	struct ratls_verified r;
	struct td_fields td;
	enum ratls_stage stage = RATLS_STAGE_QUOTE;
	const char *reason = NULL;
	_cleanup_free_ char *vm_config = NULL;

	*is_valid = false;
	json_object_set_new(d, "quote_verified", json_false());
	json_object_set_new(d, "event_log_verified", json_false());
	json_object_set_new(d, "os_image_hash_verified", json_false());
	json_object_set_new(d, "acpi_tables_verified", json_false());
	json_object_set_new(d, "os_image_is_dev", json_false());
	json_object_set_new(d, "os_image_version", json_string(""));
	json_object_set_new(d, "tee_variant", json_string(RATLS_TEE_VARIANT_TDX));
	json_object_set_new(d, "tcb_status", json_null());
	json_object_set_new(d, "advisory_ids", json_array());

	attestation_init(&a);
	if (input_attestation(in, &a, &e) < 0) {
		attestation_free(&a);
		reason = e.msg;
		goto out;
	}
	if (td_quote_read(a.quote, a.quote_len, &td, NULL) == 0) {
		json_object_set_new(d, "measurements", measurements(&td));
		json_object_set_new(d, "report_data", hexj(a.report_data, 64));
	}
	vm_config = strdup(a.config ? a.config : "");
	if (ratls_verify_attestation_staged(v, &a, now, &r, &stage, &e) < 0) {
		if (stage > RATLS_STAGE_TD_POLICY)
			json_object_set_new(d, "quote_verified", json_true());
		reason = e.msg;
		goto out;
	}
	json_object_set_new(d, "quote_verified", json_true());
	json_object_set_new(d, "event_log_verified", json_true());
	details_from_verified(d, &r, vm_config);
	ratls_verified_free(&r);
	*is_valid = true;
out:
	return json_pack("{s:b, s:s?, s:o}", "is_valid", *is_valid, "reason", reason, "details", d);
}

static const char *str_field(const json_t *req, const char *k)
{
	const json_t *v = json_object_get(req, k);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

json_t *ratls_verify_request_json(struct ratls_verifier *v, const json_t *req, time_t now, bool *is_valid)
{
	struct err e = ERR_INIT;
	struct ratls_report_input in = {0};
	_cleanup_free_ uint8_t *att = NULL, *quote = NULL;
	const char *s;

	*is_valid = false;
	if (!json_is_object(req)) {
		err_set(&e, "request must be a JSON object");
		goto bad;
	}
	in.event_log = str_field(req, "event_log");
	in.vm_config = str_field(req, "vm_config");
	if ((s = str_field(req, "attestation")) && *s) {
		if (hex_decode_alloc(s, strlen(s), &att, &in.attestation_len, &e) < 0) {
			err_wrap(&e, "attestation");
			goto bad;
		}
		in.attestation = att;
	} else if ((s = str_field(req, "quote")) && *s) {
		if (hex_decode_alloc(s, strlen(s), &quote, &in.quote_len, &e) < 0) {
			err_wrap(&e, "quote");
			goto bad;
		}
		in.quote = quote;
	} else {
		err_set(&e, "request needs 'attestation' or 'quote' (hex)");
		goto bad;
	}
	return ratls_verify_report(v, &in, now, is_valid);
bad:
	return json_pack("{s:b, s:s, s:{}}", "is_valid", 0, "reason", e.msg, "details");
}
