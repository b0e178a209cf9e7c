/*
 * lifecycle_test.c — status table, humantime, event ring, the spec's
 * auto-restart vector, log rotation and boot markers (§7.6, §7.7).
 */
#include "core/cleanup.h"
#include "core/tap.h"
#include "testutil.h"
#include "vmm/lifecycle.h"

static void test_status(void)
{
	is_str(vmm_status_name(false, true, true), "running", "started+running");
	is_str(vmm_status_name(false, true, false), "exited", "started, not running");
	is_str(vmm_status_name(false, false, true), "stopping", "stopped flag, still running");
	is_str(vmm_status_name(false, false, false), "stopped", "stopped");
	is_str(vmm_status_name(true, true, true), "removing", "removing wins");
	struct {
		uint64_t s;
		const char *want;
	} v[] = {{0, "0s"},          {59, "59s"},     {3723, "1h 2m 3s"},
		 {3600, "1h"},       {86400, "1day"}, {2 * 86400 + 5, "2days 5s"},
		 {31557600, "1year"}};
	for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
		_cleanup_free_ char *h = vmm_humantime(v[i].s);
		is_str(h, v[i].want, "humantime(%llu)", (unsigned long long)v[i].s);
	}
	char ts[32];
	vmm_rfc3339(0, ts);
	is_str(ts, "1970-01-01T00:00:00Z", "rfc3339");
}

static void test_events(void)
{
	struct vmm_events r;

	vmm_events_init(&r, 3);
	for (int i = 0; i < 5; i++) {
		char ev[16];
		snprintf(ev, sizeof(ev), "e%d", i);
		vmm_events_push(&r, ev, "b", 1000 + i);
	}
	_cleanup_json_ json_t *j = vmm_events_json(&r);
	_cleanup_free_ char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	is_str(s,
	       "[{\"event\":\"e2\",\"body\":\"b\",\"timestamp\":1002},{\"event\":\"e3\",\"body\":\"b\","
	       "\"timestamp\":1003},"
	       "{\"event\":\"e4\",\"body\":\"b\",\"timestamp\":1004}]",
	       "ring keeps the newest event_buffer_size, oldest first");
	vmm_events_free(&r);
	vmm_events_init(&r, 0);
	vmm_events_push(&r, "x", "y", 1);
	ok(r.n == 0, "capacity 0 keeps nothing");
	vmm_events_free(&r);
}

static void test_restart(void)
{
	struct vmm_restart_cfg c = {2, 5, 3, 300};
	struct vmm_restart_state s = {0};
	uint64_t d = 0;

	is_int(vmm_restart_step(&c, &s, true, false, 0, &d), VMM_RESTART_SCHEDULED, "t=0 Scheduled");
	is_int(d, 2, "scheduled after 2");
	is_int(vmm_restart_step(&c, &s, true, false, 1, &d), VMM_RESTART_WAIT, "t=1 Wait");
	is_int(vmm_restart_step(&c, &s, true, false, 2, &d), VMM_RESTART_NOW, "t=2 Restart#1");
	ok(s.attempts == 1 && d == 4, "attempt 1, next 4");
	is_int(vmm_restart_step(&c, &s, true, false, 5, &d), VMM_RESTART_WAIT, "t=5 Wait");
	is_int(vmm_restart_step(&c, &s, true, false, 6, &d), VMM_RESTART_NOW, "t=6 Restart#2");
	ok(s.attempts == 2 && d == 5, "attempt 2, next 5");
	is_int(vmm_restart_step(&c, &s, true, false, 11, &d), VMM_RESTART_NOW, "t=11 Restart#3");
	ok(s.attempts == 3 && d == 5, "attempt 3, next 5");
	is_int(vmm_restart_step(&c, &s, true, false, 12, &d), VMM_RESTART_EXHAUSTED, "t=12 Exhausted(3)");
	is_int(vmm_restart_step(&c, &s, true, false, 20, &d), VMM_RESTART_NONE, "reported once");
	is_int(vmm_restart_step(&c, &s, false, false, 21, &d), VMM_RESTART_NONE, "manual stop resets");
	ok(s.attempts == 0 && !s.scheduled, "state reset");

	/* Healthy for reset_window resets the budget. */
	struct vmm_restart_cfg c2 = {5, 300, 5, 300};
	vmm_restart_reset(&s);
	vmm_restart_step(&c2, &s, true, false, 0, &d);
	vmm_restart_step(&c2, &s, true, false, 5, &d);
	ok(s.attempts == 1, "one attempt");
	vmm_restart_step(&c2, &s, true, true, 10, &d);
	vmm_restart_step(&c2, &s, true, true, 300, &d);
	ok(s.attempts == 1, "not yet reset at 290 s healthy");
	vmm_restart_step(&c2, &s, true, true, 310, &d);
	ok(s.attempts == 0, "reset after reset_window healthy");
}

static void test_rotate(void)
{
	char *dir = tu_tmpdir();
	_cleanup_free_ char *log = path_join(dir, "stdout.log");
	struct err e = ERR_INIT;
	time_t t = 86400;

	tu_write(dir, "stdout.log", "0123456789");
	is_int(vmm_log_rotate(log, 0, 3, t, &e), 0, "max_bytes 0 disables");
	is_int(vmm_log_rotate(log, 10, 3, t, &e), 0, "not larger than max_bytes");
	is_int(vmm_log_rotate(log, 5, 3, t, &e), 1, "rotated");
	_cleanup_free_ char *one = tu_read(dir, "stdout.log.1");
	is_str(one, "0123456789", "copied to .1");
	_cleanup_free_ char *cur = tu_read(dir, "stdout.log");
	is_str(cur, "\n===== rotated 10 bytes to stdout.log.1 @ 1970-01-02T00:00:00Z =====\n",
	       "note after truncate");
	for (int i = 0; i < 4; i++) {
		char content[32];
		snprintf(content, sizeof(content), "generation-%d-padding", i);
		tu_write(dir, "stdout.log", content);
		vmm_log_rotate(log, 5, 3, t, &e);
	}
	_cleanup_free_ char *g1 = tu_read(dir, "stdout.log.1"), *g3 = tu_read(dir, "stdout.log.3"),
			    *g4 = tu_read(dir, "stdout.log.4");
	is_str(g1, "generation-3-padding", ".1 newest");
	is_str(g3, "generation-1-padding", ".3 oldest kept");
	ok(!g4, "no .4 with max_backups=3");
	tu_write(dir, "serial.log", "abcdefgh");
	_cleanup_free_ char *slog = path_join(dir, "serial.log");
	is_int(vmm_log_rotate(slog, 2, 0, t, &e), 1, "max_backups 0 truncates");
	_cleanup_free_ char *s = tu_read(dir, "serial.log"), *s1 = tu_read(dir, "serial.log.1");
	is_str(s, "\n===== discarded 8 bytes @ 1970-01-02T00:00:00Z =====\n", "discard note");
	ok(!s1, "no backup");
	ok(vmm_log_boot_marker(slog, t, &e) == 0, "boot marker");
	_cleanup_free_ char *s2 = tu_read(dir, "serial.log");
	ok(strstr(s2, "\n===== boot @ 1970-01-02T00:00:00Z =====\n\n") != NULL, "boot marker text");
	_cleanup_free_ char *missing = path_join(dir, "none.log");
	ok(vmm_log_boot_marker(missing, t, &e) == 0 && !file_exists(missing), "no marker for a missing file");
	tu_rmrf(dir);
}

int main(void)
{
	test_status();
	test_events();
	test_restart();
	test_rotate();
	return tap_done();
}
