/*
 * lifecycle.h — the pure decisions of the VM lifecycle (spec §7.6, §7.7):
 * status names, humantime durations, the guest event ring, auto-restart
 * backoff and log rotation. No process or RPC state lives here, so each
 * rule is testable on its own with the spec's vectors.
 */
#ifndef DSTACK_VMM_LIFECYCLE_H
#define DSTACK_VMM_LIFECYCLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "core/err.h"

/* removing → "removing"; else running/exited/stopping/stopped from the table. */
const char *vmm_status_name(bool removing, bool started, bool running);

/* humantime style: "1h 2m 3s", "2days 1h", "0s". malloc'd. */
char *vmm_humantime(uint64_t secs);

/* RFC 3339 with seconds, UTC: "2026-11-24T06:02:18Z". */
void vmm_rfc3339(time_t t, char out[32]);

/* Fixed-capacity ring of guest events (event_buffer_size). */
struct vmm_event {
	char *event, *body;
	uint64_t timestamp_ms;
};
struct vmm_events {
	struct vmm_event *v;
	size_t cap, start, n;
};
void vmm_events_init(struct vmm_events *r, size_t cap);
void vmm_events_free(struct vmm_events *r);
/* Oldest entry is dropped when full. cap 0 keeps nothing. */
void vmm_events_push(struct vmm_events *r, const char *event, const char *body, uint64_t ts_ms);
/* [{event, body, timestamp}] oldest first. */
json_t *vmm_events_json(const struct vmm_events *r);

/* Auto-restart (§7.7). */
struct vmm_restart_cfg {
	uint64_t initial_backoff, max_backoff, max_retries, reset_window;
};
struct vmm_restart_state {
	bool scheduled;
	uint64_t next_at; /* seconds */
	uint64_t attempts;
	uint64_t next_delay;
	bool exhausted_reported;
	uint64_t healthy_since; /* 0 = not observed running */
};
enum vmm_restart_action {
	VMM_RESTART_NONE,      /* nothing to do */
	VMM_RESTART_SCHEDULED, /* first observation of a dead VM; *delay = initial_backoff */
	VMM_RESTART_WAIT,      /* scheduled, not yet due */
	VMM_RESTART_NOW,       /* restart now; *delay = the next backoff */
	VMM_RESTART_EXHAUSTED, /* report once: retries used up */
};
enum vmm_restart_action vmm_restart_step(const struct vmm_restart_cfg *c, struct vmm_restart_state *s,
					 bool started, bool running, uint64_t now, uint64_t *delay);
void vmm_restart_reset(struct vmm_restart_state *s);

/*
 * Log rotation (§7.7): when the file is larger than max_bytes (0 disables),
 * shift .k to .k+1 dropping .max_backups, copy to .1, truncate in place and
 * append a note. Returns 1 when rotated, 0 when not needed, -1 on error.
 */
int vmm_log_rotate(const char *path, uint64_t max_bytes, uint32_t max_backups, time_t now, struct err *e);
/* "\n===== boot @ <ts> =====\n\n" appended to path if it exists. */
int vmm_log_boot_marker(const char *path, time_t now, struct err *e);

#endif
