/*
 * appinfo.h — values derived from a decoded attestation (kms.md §5,
 * guest.md §3.5): RTMR checks, mr_system, mr_aggregated, device_id, the
 * app identity read from runtime events, and the AppInfo record carried in
 * the RA-TLS certificate extension 1.3.6.1.4.1.62397.1.9.
 *
 *   mr_system     = SHA-256(MRTD ‖ RTMR0 ‖ RTMR1 ‖ RTMR2 ‖ kp)
 *                   kp = SHA-256(key-provider payload), or 32 zero bytes
 *   mr_aggregated = SHA-256(MRTD ‖ RTMR0 ‖ RTMR1 ‖ RTMR2 ‖ RTMR3'
 *                   [‖ MRCONFIGID ‖ MROWNER ‖ MROWNERCONFIG if any is non-zero])
 *                   RTMR3' = replay of the runtime events (to boot-mr-done
 *                   in boot-time mode)
 *   device_id     = SHA-256(PPID), SHA-256("") when unknown
 *
 * AppInfo on the wire is an rmp-serde compact struct: an array of eight
 * byte strings (MessagePack bin) in the order app_id, compose_hash,
 * instance_id, device_id, mr_system, mr_aggregated, os_image_hash,
 * key_provider_info. The decoder also accepts the named-map form, a ninth
 * element (init_script_hashes, ignored) and byte strings as int arrays.
 */
#ifndef DSTACK_ATTEST_APPINFO_H
#define DSTACK_ATTEST_APPINFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "attest/attestation.h"
#include "attest/td_quote.h"
#include "core/buf.h"
#include "core/err.h"

struct bytes {
	uint8_t *p; /* malloc'd, non-NULL once set */
	size_t len;
};

struct app_info {
	struct bytes app_id;
	struct bytes compose_hash;
	struct bytes instance_id;
	struct bytes device_id;
	struct bytes mr_system;     /* 32 */
	struct bytes mr_aggregated; /* 32 */
	struct bytes os_image_hash;
	struct bytes key_provider_info;
};

void app_info_free(struct app_info *ai);

/* RTMR3 replayed from the stack's runtime events; boot_time stops after
 * "boot-mr-done". */
int attestation_replay_rtmr3(const struct attestation *a, bool boot_time, uint8_t out[48], struct err *e);
/* Read the TD fields of the attestation's quote. */
int attestation_td_fields(const struct attestation *a, struct td_fields *out, struct err *e);
/* Event-log consistency (no signature check): runtime events replay to the
 * quote's RTMR3, report_data matches the quote, and the platform event
 * log (if it has boot events) replays to RTMR0-2 (and RTMR3). */
int attestation_check_event_log(const struct attestation *a, struct err *e);

/* Payload of the first runtime event `name` before system-ready (borrowed). */
int attestation_find_event(const struct attestation *a, const char *name, const uint8_t **payload,
			   size_t *len, struct err *e);

void mr_system_compute(const struct td_fields *td, const uint8_t *kp_info, size_t kp_len, uint8_t out[32]);
void mr_aggregated_compute(const struct td_fields *td, const uint8_t rtmr3[48], uint8_t out[32]);
void device_id_compute(const uint8_t *ppid, size_t ppid_len, uint8_t out[32]);

/* Build AppInfo. vm_config overrides a->config when non-empty (os_image_hash
 * is its hex field). ppid may be NULL. boot_time: KMS SignCert mode (empty
 * key-provider info, RTMR3' up to boot-mr-done). */
int attestation_app_info(const struct attestation *a, bool boot_time, const char *vm_config,
			 const uint8_t *ppid, size_t ppid_len, struct app_info *out, struct err *e);

void app_info_encode(const struct app_info *ai, struct buf *out);
int app_info_decode(const uint8_t *data, size_t len, struct app_info *out, struct err *e);
/* {app_id, compose_hash, instance_id, device_id, mr_system, mr_aggregated,
 * os_image_hash, key_provider_info} as lowercase hex strings. */
json_t *app_info_to_json(const struct app_info *ai);

#endif
