/*
 * rtevent.c — see rtevent.h. The order "extend, then log" matches the
 * reference: a crash between the two leaves RTMR3 ahead of the log, which a
 * verifier detects (replay mismatch) rather than a log that claims more
 * than was measured.
 */
#include "rtevent.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "attest/ccel.h"
#include "attest/runtime_events.h"
#include "core/log.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/fileio.h"

#define RTEVENT_LOG_MAX (16 * 1024 * 1024)

static int write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t w = write(fd, b, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

int rtevent_emit(struct tee *tee, const struct rtevent_log *l, const char *name, const void *payload,
		 size_t len, struct err *e)
{
	uint8_t digest[48];
	_cleanup_close_ int lock = -1;
	_cleanup_close_ int fd = -1;
	_cleanup_(buf_freep) struct buf line = {0};
	uint32_t version = l->version ? l->version : 1;

	if (!name || !*name)
		return err_set(e, "event name is empty");
	if (runtime_event_digest(version, name, payload, len, digest, e) < 0)
		return -1;
	lock = open(l->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock < 0)
		return err_errno(e, "open %s", l->lock_path);
	while (flock(lock, LOCK_EX) < 0)
		if (errno != EINTR)
			return err_errno(e, "flock %s", l->lock_path);
	if (tee_extend_rtmr(tee, 3, digest, e) < 0)
		return err_wrap(e, "extend RTMR3 with %s", name);
	runtime_event_log_line(name, payload, len, version, &line);
	fd = open(l->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || write_all(fd, line.data, line.len) < 0)
		return err_errno(e, "append %s", l->log_path);
	return 0;
}

int rtevent_read(const char *log_path, struct event_log *out, struct err *e)
{
	_cleanup_free_ uint8_t *data = NULL;
	size_t len = 0;
	if (!file_exists(log_path))
		return 0;
	if (file_read_all(log_path, RTEVENT_LOG_MAX, &data, &len, e) < 0)
		return -1;
	if (runtime_events_parse_log((const char *)data, len, out, e) < 0)
		return err_wrap(e, "%s", log_path);
	return 0;
}

int rtevent_attestation(struct tee *tee, const char *log_path, const char *lock_path, const char *vm_config,
			const uint8_t report_data[64], struct attestation *out, struct err *e)
{
	_cleanup_free_ uint8_t *ccel = NULL;
	size_t ccel_len = 0;
	struct event_log rt = EVENT_LOG_INIT;
	_cleanup_close_ int lock = -1;
	int rc = -1;

	attestation_init(out);
	lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock >= 0)
		while (flock(lock, LOCK_EX) < 0 && errno == EINTR)
			;
	if (tee_event_log(tee, &ccel, &ccel_len, e) < 0) {
		log_warn("no boot event log: %s", err_str(e));
	} else if (ccel_parse(ccel, ccel_len, &out->event_log, e) < 0) {
		err_wrap(e, "boot event log");
		goto out;
	}
	if (rtevent_read(log_path, &rt, e) < 0)
		goto out;
	for (size_t i = 0; i < rt.n; i++) {
		const struct tdx_event *ev = &rt.ev[i];
		if (event_log_append(&out->event_log, ev->imr, ev->event_type, ev->digest, ev->digest_len,
				     ev->event, ev->payload, ev->payload_len, ev->version, e) < 0 ||
		    event_log_append(&out->runtime_events, ev->imr, ev->event_type, ev->digest,
				     ev->digest_len, ev->event, ev->payload, ev->payload_len, ev->version,
				     e) < 0)
			goto out;
	}
	if (tee_quote(tee, report_data, &out->quote, &out->quote_len, e) < 0) {
		err_wrap(e, "Failed to get quote");
		goto out;
	}
	memcpy(out->report_data, report_data, 64);
	out->config = strdup(vm_config ? vm_config : "");
	if (!out->config) {
		err_set(e, "out of memory");
		goto out;
	}
	rc = 0;
out:
	event_log_free(&rt);
	if (rc < 0)
		attestation_free(out);
	return rc;
}
