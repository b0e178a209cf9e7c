/*
 * runtime_events.h — dstack's RTMR3 runtime events as the guest records
 * them: the boot event names and their order (guest.md §3.4), and the
 * append-only log file /run/log/dstack/runtime_events.log, one JSON object
 * per line: {"event":NAME,"payload":BASE64[,"version":2]}.
 */
#ifndef DSTACK_ATTEST_RUNTIME_EVENTS_H
#define DSTACK_ATTEST_RUNTIME_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "attest/eventlog.h"
#include "core/buf.h"
#include "core/err.h"

/* Boot events in the order dstack-util emits them. */
#define RT_SYSTEM_PREPARING "system-preparing" /* empty */
#define RT_APP_ID "app-id"                     /* 20 bytes */
#define RT_COMPOSE_HASH "compose-hash"         /* 32 bytes */
#define RT_INIT_SCRIPT_HASH "init-script-hash" /* 32 bytes, once per script */
#define RT_GPU_POLICY_HASH "gpu-policy-hash"   /* 32 bytes */
#define RT_GPU_ATTESTATION "gpu-attestation"   /* JSON, NVIDIA GPUs only */
#define RT_INSTANCE_ID "instance-id"           /* 20 bytes or empty */
#define RT_BOOT_MR_DONE "boot-mr-done"         /* empty */
#define RT_OS_IMAGE_HASH "os-image-hash"       /* 32 bytes, KMS provider only */
#define RT_KEY_PROVIDER "key-provider"         /* JSON {"name","id"} */
#define RT_STORAGE_FS "storage-fs"             /* "zfs" | "ext4" */
#define RT_SYSTEM_READY "system-ready"         /* empty */

/* Check the boot events (those before and including system-ready) against
 * the order above: system-preparing first, every known boot event in
 * order, single-instance events at most once, fixed payload sizes, and
 * system-ready present. Unknown names (legacy rootfs-hash) are allowed.
 * Events after system-ready are app events and are not checked. */
int runtime_events_check_boot_order(const struct event_log *log, struct err *e);

/* One log line (with trailing newline) for an event. */
void runtime_event_log_line(const char *name, const uint8_t *payload, size_t payload_len, uint32_t version,
			    struct buf *out);
/* Parse the whole log file into runtime events (digests computed). Blank
 * lines are skipped; any malformed line is an error naming its number. */
int runtime_events_parse_log(const char *text, size_t len, struct event_log *out, struct err *e);

#endif
