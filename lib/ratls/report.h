/*
 * report.h — the verification report of `dstack verify` and of the
 * dstack-verifier service (guest.md §4.4):
 *
 *   {is_valid, reason, details: {quote_verified, event_log_verified,
 *    os_image_hash_verified, acpi_tables_verified, os_image_is_dev,
 *    os_image_version, tee_variant, report_data, tcb_status, advisory_ids,
 *    key_provider{name,id}, app_info{...}, boot_info{...},
 *    measurements{mrtd, rtmr0..3, mr_config_id, mr_owner, mr_owner_config,
 *                 report_data}, replay{...}}}
 *
 * is_valid = quote verified (DCAP, TD policy) and event log verified (RTMR3
 * replay, report_data). OS image measurement (dstack-mr) is not checked:
 * os_image_hash_verified and acpi_tables_verified are always false and the
 * os_image_hash is reported for the caller to compare.
 */
#ifndef DSTACK_RATLS_REPORT_H
#define DSTACK_RATLS_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "ratls/verify.h"

/* Either a VersionedAttestation, or quote + event log JSON + vm_config. */
struct ratls_report_input {
	const uint8_t *attestation;
	size_t attestation_len;
	const uint8_t *quote;
	size_t quote_len;
	const char *event_log; /* JSON array text, may be NULL */
	const char *vm_config; /* may be NULL */
};

/* Never NULL. *is_valid receives the verdict. */
json_t *ratls_verify_report(struct ratls_verifier *v, const struct ratls_report_input *in, time_t now,
			    bool *is_valid);

/* Parse a /verify request body ({attestation:hex} or {quote:hex, event_log,
 * vm_config}) and produce the report; a malformed request gives is_valid
 * false with the reason. */
json_t *ratls_verify_request_json(struct ratls_verifier *v, const json_t *req, time_t now, bool *is_valid);

#endif
