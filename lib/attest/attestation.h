/*
 * attestation.h — dstack's VersionedAttestation: a TEE quote plus the event
 * logs and context a verifier needs, in the two wire encodings of
 * guest.md §4.3 (first byte selects):
 *
 *   V0 (0x00)        SCALE: 00 ‖ quote enum (0 = TDX: quote Bytes ‖
 *                    Vec<TdxEvent>) ‖ Vec<{event Str, payload Bytes}>
 *                    ‖ report_data[64] ‖ config Str
 *   V1 (0x8_/de/df)  MessagePack named maps: {version:1, platform:{kind,
 *                    data:{quote, event_log}}, stack:{kind, data:
 *                    {report_data, runtime_events, config[,
 *                    report_data_payload]}}}
 *
 * Inputs above ATTESTATION_MAX_LEN or with trailing bytes are rejected.
 * Only the TDX platform is decoded. The decoded form keeps the boot +
 * runtime event log of the platform (`event_log`) and the stack's runtime
 * events (`runtime_events`, imr 3) separately, as on the wire.
 */
#ifndef DSTACK_ATTEST_ATTESTATION_H
#define DSTACK_ATTEST_ATTESTATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/eventlog.h"
#include "core/buf.h"
#include "core/err.h"

#define ATTESTATION_MAX_LEN (10 * 1024 * 1024)

enum attestation_format {
	ATTESTATION_V0 = 0, /* SCALE */
	ATTESTATION_V1 = 1, /* MessagePack */
};

enum attestation_stack {
	ATTESTATION_STACK_DSTACK,
	ATTESTATION_STACK_DSTACK_POD,
};

struct attestation {
	enum attestation_format format; /* as decoded; encode_auto picks anew */
	uint8_t *quote;                 /* raw TDX quote */
	size_t quote_len;
	struct event_log event_log;      /* TDX event log (all IMRs) */
	struct event_log runtime_events; /* stack runtime events (imr 3) */
	uint8_t report_data[64];
	char *config; /* vm_config JSON text ("" if none) */
	enum attestation_stack stack;
	char *report_data_payload; /* dstack-pod only, else NULL */
};

void attestation_init(struct attestation *a);
void attestation_free(struct attestation *a);

int attestation_decode(const uint8_t *data, size_t len, struct attestation *a, struct err *e);
/* Explicit encodings. V0 fails if any runtime event is V2 (SCALE has no
 * room for the version). */
int attestation_encode_v0(const struct attestation *a, struct buf *out, struct err *e);
int attestation_encode_v1(const struct attestation *a, struct buf *out, struct err *e);
/* V0 unless some event is V2 (the reference's choice). */
int attestation_encode(const struct attestation *a, struct buf *out, struct err *e);

/* The legacy pair: a raw quote plus its event-log JSON (GetQuote replies,
 * RA-TLS extensions .1.1/.1.2, verifier {quote, event_log}). Runtime events
 * are the log's RTMR3 runtime events; report_data is the quote's; config
 * is "". The result has format V0. */
int attestation_from_quote(const uint8_t *quote, size_t quote_len, const char *event_log_json,
			   size_t json_len, struct attestation *a, struct err *e);

/* Deep copy (dst must be initialised and empty). */
int attestation_copy(const struct attestation *src, struct attestation *dst, struct err *e);
/* Strip for certificate embedding: event_log keeps only runtime events
 * (and the ACPI events when vm_config selects measurement mode). */
int attestation_strip_for_cert(struct attestation *a, struct err *e);
/* Overwrite report_data in the stack and in the quote (simulator mode). */
void attestation_set_report_data(struct attestation *a, const uint8_t report_data[64]);

#endif
