/*
 * eventlog.h — TDX measurement event logs: boot events (from the CCEL
 * table) and dstack runtime events (RTMR3), their digests, RTMR replay,
 * the event JSON of the guest agent API, and the stripped variants sent in
 * GetQuote replies and embedded in certificates.
 *
 * One `struct tdx_event` type holds both kinds. Runtime events have
 * imr == 3 and event_type == EVENT_TYPE_RUNTIME; their digest is a function
 * of (version, name, payload), so a stripped log (digest removed) can still
 * be replayed: event_digest() recomputes it.
 *
 *   V1 digest = SHA-384(u32le(type) ‖ ":" ‖ name ‖ ":" ‖ payload)
 *   V2 digest = SHA-384(JCS {"name":N,"payload":hex(payload),"type":134217729})
 *   replay:   mr = 0^48; for each event of the IMR: mr = SHA-384(mr ‖ digest)
 */
#ifndef DSTACK_ATTEST_EVENTLOG_H
#define DSTACK_ATTEST_EVENTLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/err.h"

#define EVENT_TYPE_RUNTIME 0x08000001u
#define EVENT_TYPE_ACPI_DATA 0x0000000au /* EV_PLATFORM_CONFIG_FLAGS, payload "ACPI DATA" */
#define RTMR_LEN 48
#define RTMR_COUNT 4
#define RUNTIME_EVENT_IMR 3

struct tdx_event {
	uint32_t imr; /* 0-based measurement register: RTMR index */
	uint32_t event_type;
	uint8_t *digest; /* 48 bytes, or empty when stripped */
	size_t digest_len;
	char *event; /* name: runtime event name, "acpi-*" or "" */
	uint8_t *payload;
	size_t payload_len;
	uint32_t version; /* runtime events: 1 or 2; boot events: 0 */
};

struct event_log {
	struct tdx_event *ev;
	size_t n;
	size_t cap;
};

#define EVENT_LOG_INIT                                                                                       \
	{                                                                                                    \
		NULL, 0, 0                                                                                   \
	}

/* Caps that keep hostile logs bounded (far above real logs). */
#define EVENT_LOG_MAX_EVENTS 4096
#define EVENT_PAYLOAD_MAX (1024 * 1024)

void event_log_free(struct event_log *log);
static inline void event_log_freep(struct event_log *log)
{
	event_log_free(log);
}
#define _cleanup_event_log_ __attribute__((cleanup(event_log_freep)))

/* Append an event, copying every field (digest/payload may be NULL when
 * their length is 0). */
int event_log_append(struct event_log *log, uint32_t imr, uint32_t type, const uint8_t *digest,
		     size_t digest_len, const char *name, const uint8_t *payload, size_t payload_len,
		     uint32_t version, struct err *e);
/* Append a runtime event (imr 3) with its digest computed. */
int event_log_append_runtime(struct event_log *log, const char *name, const uint8_t *payload,
			     size_t payload_len, uint32_t version, struct err *e);
int event_log_copy(const struct event_log *src, struct event_log *dst, struct err *e);

static inline bool event_is_runtime(const struct tdx_event *ev)
{
	return ev->imr == RUNTIME_EVENT_IMR && ev->event_type == EVENT_TYPE_RUNTIME;
}
/* One of the three IMR0 ACPI table events (by payload or by its new name). */
bool event_is_acpi(const struct tdx_event *ev);

/* The V2 preimage: JCS {"name":..,"payload":hex,"type":134217729}. */
void runtime_event_preimage(const char *name, const uint8_t *payload, size_t payload_len, struct buf *out);
/* The bytes hashed into the digest: the V1 binary string or the V2 JCS
 * text (version 0 counts as 1). */
int runtime_event_hash_input(uint32_t version, const char *name, const uint8_t *payload, size_t payload_len,
			     struct buf *out, struct err *e);
/* version 1 or 2 (0 counts as 1). */
int runtime_event_digest(uint32_t version, const char *name, const uint8_t *payload, size_t payload_len,
			 uint8_t out[RTMR_LEN], struct err *e);
/* The event's digest: stored (must be 48 bytes) or, for a stripped runtime
 * event, recomputed. Runtime events with a stored digest are checked
 * against the recomputed one. */
int event_digest(const struct tdx_event *ev, uint8_t out[RTMR_LEN], struct err *e);

/* Replay the events of one IMR. stop_after (may be NULL) ends the replay
 * after the first runtime event with that name (KMS boot-time mode uses
 * "boot-mr-done"). */
int event_log_replay_imr(const struct event_log *log, uint32_t imr, const char *stop_after,
			 uint8_t out[RTMR_LEN], struct err *e);
/* Replay all four RTMRs. */
int event_log_replay(const struct event_log *log, uint8_t rtmr[RTMR_COUNT][RTMR_LEN], struct err *e);

/* Payload of the first runtime event called name before "system-ready".
 * Returns 0 and a borrowed pointer, or -1 (with e set) when absent. */
int event_log_find_payload(const struct event_log *log, const char *name, const uint8_t **payload,
			   size_t *len, struct err *e);

/* Event JSON (guest.md §3.6): {imr, event_type, digest, event,
 * event_payload[, version, preimage]}. V2 runtime events get version 2 and
 * their preimage (hex of the JCS bytes). */
json_t *event_to_json(const struct tdx_event *ev);
json_t *event_log_to_json(const struct event_log *log);
/* Parse a JSON array of events (e.g. GetQuote's event_log). A runtime
 * event's "preimage" (alias "hash_input"), when present, must be the hex of
 * its hash input and hash to its digest. */
int event_log_from_json(const json_t *arr, struct event_log *out, struct err *e);
int event_log_from_json_str(const char *text, size_t len, struct event_log *out, struct err *e);

/* Stripping (in place).
 * for_quote: GetQuote's log — runtime events keep their payload and lose
 *   their digest (verifiers recompute it); other events keep their digest
 *   and lose their payload, except the ACPI events.
 * for_cert: the certificate-embedded log — only IMR3 events (runtime
 *   events without digest, anything else without payload); with keep_acpi
 *   (measurement-mode vm_config) the three ACPI events stay too, digest
 *   kept, payload dropped. */
void event_log_strip_for_quote(struct event_log *log);
void event_log_strip_for_cert(struct event_log *log, bool keep_acpi);

#endif
