/*
 * cert_eventlog.h — the legacy RA-TLS event-log extension
 * (1.3.6.1.4.1.62397.1.2): the event log as JSON text, either plain or as
 * "ELGZv1" followed by a gzip stream. Decompression is capped at 16 KiB so
 * a certificate cannot carry a decompression bomb.
 */
#ifndef DSTACK_ATTEST_CERT_EVENTLOG_H
#define DSTACK_ATTEST_CERT_EVENTLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/eventlog.h"
#include "core/buf.h"
#include "core/err.h"

#define CERT_EVENTLOG_GZIP_MAGIC "ELGZv1"
#define CERT_EVENTLOG_MAX_SIZE (16 * 1024)

/* Parse the extension value (plain JSON or ELGZv1) into events. */
int cert_event_log_decode(const uint8_t *value, size_t len, struct event_log *out, struct err *e);
/* The extension value for a log: compact JSON, gzip'd behind the magic
 * when compress is set. */
int cert_event_log_encode(const struct event_log *log, bool compress, struct buf *out, struct err *e);

#endif
