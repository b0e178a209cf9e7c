/*
 * lifecycle.c — see lifecycle.h.
 */
#include "vmm/lifecycle.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "vmm/util.h"

const char *vmm_status_name(bool removing, bool started, bool running)
{
	if (removing)
		return "removing";
	if (started)
		return running ? "running" : "exited";
	return running ? "stopping" : "stopped";
}

char *vmm_humantime(uint64_t secs)
{
	/* humantime's units: a year is 365.25 days, a month 30.44 days. */
	static const struct {
		uint64_t secs;
		const char *one, *many;
	} units[] = {
	    {31557600, "year", "years"},
	    {2630016, "month", "months"},
	    {86400, "day", "days"},
	    {3600, "h", "h"},
	    {60, "m", "m"},
	    {1, "s", "s"},
	};
	struct buf b = BUF_INIT;

	if (secs == 0)
		return xstrdup("0s");
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		uint64_t n = secs / units[i].secs;

		if (!n)
			continue;
		secs -= n * units[i].secs;
		buf_printf(&b, "%s%llu%s", b.len ? " " : "", (unsigned long long)n,
			   n == 1 ? units[i].one : units[i].many);
	}
	return (char *)buf_steal(&b, NULL);
}

void vmm_rfc3339(time_t t, char out[32])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void vmm_events_init(struct vmm_events *r, size_t cap)
{
	memset(r, 0, sizeof(*r));
	r->cap = cap;
	if (cap) {
		r->v = calloc(cap, sizeof(*r->v));
		if (!r->v)
			abort();
	}
}

void vmm_events_free(struct vmm_events *r)
{
	for (size_t i = 0; i < r->n; i++) {
		struct vmm_event *ev = &r->v[(r->start + i) % r->cap];

		free(ev->event);
		free(ev->body);
	}
	free(r->v);
	memset(r, 0, sizeof(*r));
}

void vmm_events_push(struct vmm_events *r, const char *event, const char *body, uint64_t ts_ms)
{
	struct vmm_event *slot;

	if (!r->cap)
		return;
	if (r->n == r->cap) {
		slot = &r->v[r->start];
		free(slot->event);
		free(slot->body);
		r->start = (r->start + 1) % r->cap;
		r->n--;
	}
	slot = &r->v[(r->start + r->n) % r->cap];
	slot->event = xstrdup(event);
	slot->body = xstrdup(body);
	slot->timestamp_ms = ts_ms;
	r->n++;
}

json_t *vmm_events_json(const struct vmm_events *r)
{
	json_t *a = json_array();

	for (size_t i = 0; i < r->n; i++) {
		const struct vmm_event *ev = &r->v[(r->start + i) % r->cap];

		json_array_append_new(a, json_pack("{s:s,s:s,s:I}", "event", ev->event, "body", ev->body,
						   "timestamp", (json_int_t)ev->timestamp_ms));
	}
	return a;
}

void vmm_restart_reset(struct vmm_restart_state *s)
{
	memset(s, 0, sizeof(*s));
}

static uint64_t backoff(const struct vmm_restart_cfg *c, uint64_t attempts)
{
	uint64_t d = c->initial_backoff;

	for (uint64_t i = 0; i < attempts && d < c->max_backoff; i++)
		d *= 2;
	return d < c->max_backoff ? d : c->max_backoff;
}

enum vmm_restart_action vmm_restart_step(const struct vmm_restart_cfg *c, struct vmm_restart_state *s,
					 bool started, bool running, uint64_t now, uint64_t *delay)
{
	if (!started) {
		vmm_restart_reset(s);
		return VMM_RESTART_NONE;
	}
	if (running) {
		s->scheduled = false;
		if (!s->healthy_since)
			s->healthy_since = now;
		if (s->attempts && now - s->healthy_since >= c->reset_window)
			vmm_restart_reset(s);
		return VMM_RESTART_NONE;
	}
	s->healthy_since = 0;
	if (s->attempts >= c->max_retries) {
		if (s->exhausted_reported)
			return VMM_RESTART_NONE;
		s->exhausted_reported = true;
		return VMM_RESTART_EXHAUSTED;
	}
	if (!s->scheduled) {
		s->scheduled = true;
		s->next_at = now + c->initial_backoff;
		*delay = c->initial_backoff;
		return VMM_RESTART_SCHEDULED;
	}
	if (now < s->next_at)
		return VMM_RESTART_WAIT;
	s->attempts++;
	s->next_delay = backoff(c, s->attempts);
	s->next_at = now + s->next_delay;
	*delay = s->next_delay;
	return VMM_RESTART_NOW;
}

static int append_text(const char *path, const char *text, struct err *e)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	size_t len = strlen(text);

	if (fd < 0)
		return err_errno(e, "open %s", path);
	if (write(fd, text, len) != (ssize_t)len)
		return err_errno(e, "write %s", path);
	return 0;
}

int vmm_log_boot_marker(const char *path, time_t now, struct err *e)
{
	char ts[32], line[96];

	if (access(path, F_OK) < 0)
		return 0;
	vmm_rfc3339(now, ts);
	snprintf(line, sizeof(line), "\n===== boot @ %s =====\n\n", ts);
	return append_text(path, line, e);
}

static int copy_file(const char *src, const char *dst, struct err *e)
{
	_cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC);
	_cleanup_close_ int out = -1;
	char buf[65536];
	ssize_t n;

	if (in < 0)
		return err_errno(e, "open %s", src);
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0)
		return err_errno(e, "create %s", dst);
	while ((n = read(in, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return err_errno(e, "read %s", src);
		}
		if (write(out, buf, (size_t)n) != n)
			return err_errno(e, "write %s", dst);
	}
	return 0;
}

int vmm_log_rotate(const char *path, uint64_t max_bytes, uint32_t max_backups, time_t now, struct err *e)
{
	struct stat st;
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	char ts[32], note[512];

	if (max_bytes == 0 || stat(path, &st) < 0 || (uint64_t)st.st_size <= max_bytes)
		return 0;
	vmm_rfc3339(now, ts);
	if (max_backups > 0) {
		_cleanup_free_ char *last = xasprintf("%s.%u", path, max_backups);
		_cleanup_free_ char *first = xasprintf("%s.1", path);

		unlink(last);
		for (uint32_t k = max_backups - 1; k >= 1; k--) {
			_cleanup_free_ char *from = xasprintf("%s.%u", path, k);
			_cleanup_free_ char *to = xasprintf("%s.%u", path, k + 1);

			if (rename(from, to) < 0 && errno != ENOENT)
				return err_errno(e, "rename %s", from);
		}
		if (copy_file(path, first, e) < 0)
			return -1;
		snprintf(note, sizeof(note), "\n===== rotated %lld bytes to %s.1 @ %s =====\n",
			 (long long)st.st_size, base, ts);
	} else {
		snprintf(note, sizeof(note), "\n===== discarded %lld bytes @ %s =====\n",
			 (long long)st.st_size, ts);
	}
	if (truncate(path, 0) < 0)
		return err_errno(e, "truncate %s", path);
	if (append_text(path, note, e) < 0)
		return -1;
	return 1;
}
