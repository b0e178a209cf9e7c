/*
 * rtevent.h — emitting dstack runtime events (guest.md §3.4): extend RTMR3
 * through the TEE backend, then append the event to the runtime event log,
 * both under one flock so concurrent emitters (dstack-util at boot, the
 * agent's EmitEvent later) keep the log in RTMR order.
 */
#ifndef DSTACK_GUEST_RTEVENT_H
#define DSTACK_GUEST_RTEVENT_H

#include <stddef.h>
#include <stdint.h>

#include "attest/attestation.h"
#include "attest/eventlog.h"
#include "core/err.h"
#include "tdx/tee.h"

#define RTEVENT_DEFAULT_DIR "/run/log/dstack"

struct rtevent_log {
	const char *log_path;  /* runtime_events.log */
	const char *lock_path; /* runtime_event.lock */
	uint32_t version;      /* 1 or 2 */
};

int rtevent_emit(struct tee *tee, const struct rtevent_log *l, const char *name, const void *payload,
		 size_t len, struct err *e);
/* Parse the log; a missing file is an empty log. */
int rtevent_read(const char *log_path, struct event_log *out, struct err *e);

/* A full attestation of this TD over report_data: boot log (CCEL) plus the
 * runtime events of log_path, and a quote, read under the event flock so
 * RTMR3 and the log agree. config = vm_config (may be NULL). */
struct attestation;
int rtevent_attestation(struct tee *tee, const char *log_path, const char *lock_path, const char *vm_config,
			const uint8_t report_data[64], struct attestation *out, struct err *e);

#endif
