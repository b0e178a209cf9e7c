/*
 * logs.h — reading VM logs for `GET /logs?id=&ch=&lines=&ansi=` (spec §3):
 * channel names, the last N lines of a file, and ANSI escape stripping. The
 * HTTP layer adds following (re-reading as the file grows) and heartbeats.
 */
#ifndef DSTACK_VMM_LOGS_H
#define DSTACK_VMM_LOGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

#define VMM_LOG_DEFAULT_LINES 10000

/* "serial" (or NULL/"") -> "serial.log", "stdout", "stderr"; else
 * "Unknown channel X". */
int vmm_log_channel_file(const char *ch, const char **file, struct err *e);
/*
 * Append the last `lines` lines of path to out (ANSI escapes removed unless
 * keep_ansi). *end_offset receives the file size read up to, for following.
 * Reads at most the trailing 64 MiB.
 */
int vmm_log_tail(const char *path, size_t lines, bool keep_ansi, struct buf *out, uint64_t *end_offset,
		 struct err *e);
/* Remove CSI (ESC [ ... final) and two-byte ESC sequences in place; returns the new length. */
size_t vmm_strip_ansi(char *s, size_t len);

#endif
