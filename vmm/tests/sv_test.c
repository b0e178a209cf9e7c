/*
 * sv_test.c — the supervisor process table with real children: spawn,
 * logs/env/cwd/pidfile, stop (SIGKILL and SIGTERM-then-SIGKILL), natural
 * exit, spawn errors, remove/clear rules, shutdown, exact error strings.
 */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/tap.h"
#include "testutil.h"
#include "vmm/supervisor/sv.h"

static json_t *cfg(const char *id, const char *cmd, const char *dir)
{
	json_t *args = json_array();

	json_array_append_new(args, json_string("-c"));
	json_array_append_new(args, json_string(cmd));
	return json_pack("{s:s,s:s,s:s,s:o,s:{s:s},s:s,s:o,s:o,s:o,s:i,s:s}", "id", id, "name", id, "command",
			 "sh", "args", args, "env", "SV_TEST_VAR", "hello", "cwd", dir, "stdout",
			 json_sprintf("%s/%s.out", dir, id), "stderr", json_sprintf("%s/%s.err", dir, id),
			 "pidfile", json_sprintf("%s/%s.pid", dir, id), "cid", 1000, "note",
			 "{\"kind\":\"cvm\"}");
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static bool wait_status(struct sv *s, struct sv_process *p, enum sv_status st, int ms)
{
	for (int i = 0; i < ms / 10; i++) {
		sv_reap(s);
		if (p->status == st)
			return true;
		sleep_ms(10);
	}
	return false;
}

static void test_lifecycle(void)
{
	char *dir = tu_tmpdir();
	struct sv s;
	struct err e = ERR_INIT;
	_cleanup_json_ json_t *c1 =
	    cfg("vm1", "echo out-$SV_TEST_VAR; echo err >&2; pwd; exec sleep 30", dir);

	sv_init(&s);
	ok(sv_deploy(&s, c1, &e) == 0, "deploy: %s", e.msg);
	struct sv_process *p = sv_find(&s, "vm1");
	ok(p && p->status == SV_RUNNING && p->pid > 0 && p->started, "running with a pid");
	ok(p->started_at > 0 && p->stopped_at == 0, "started_at set");
	_cleanup_free_ char *pidtxt = tu_read(dir, "vm1.pid");
	char want[32];
	snprintf(want, sizeof(want), "%d\n", (int)p->pid);
	is_str(pidtxt, want, "pidfile has the child pid");
	ok(getpgid(p->pid) == p->pid, "child leads its own process group");
	tu_wait_contains(dir, "vm1.out", "/", 10000);
	tu_wait_contains(dir, "vm1.err", "err", 10000);
	_cleanup_free_ char *out = tu_read(dir, "vm1.out");
	_cleanup_free_ char *want_out = xasprintf("out-hello\n%s\n", dir);
	is_str(out, want_out, "stdout appended, env and cwd applied");
	_cleanup_free_ char *errt = tu_read(dir, "vm1.err");
	is_str(errt, "err\n", "stderr appended");
	_cleanup_free_ char *st = sv_status_text(p);
	is_str(st, "running", "status text running");

	ok(sv_deploy(&s, c1, &e) < 0, "deploy while running");
	is_str(e.msg, "Process is already running", "exact error");
	ok(sv_start(&s, "vm1", &e) < 0 && !strcmp(e.msg, "Process is already running"),
	   "start while running");
	ok(sv_remove(&s, "vm1", &e) < 0 && !strcmp(e.msg, "Process is started"), "remove while started");

	_cleanup_json_ json_t *info = sv_info_json(p);
	_cleanup_free_ char *it = json_dumps(json_object_get(info, "state"), JSON_COMPACT | JSON_SORT_KEYS);
	ok(strstr(it, "\"status\":\"running\"") && strstr(it, "\"started\":true") &&
	       strstr(it, "\"stopped_at\":null"),
	   "ProcessInfo state: %s", it);
	is_int(json_integer_value(json_object_get(json_object_get(info, "config"), "cid")), 1000,
	       "config.cid kept");
	is_str(json_string_value(
		   json_object_get(json_object_get(json_object_get(info, "config"), "env"), "SV_TEST_VAR")),
	       "hello", "config.env kept");

	pid_t old = p->pid;
	ok(sv_stop(&s, "vm1", 0, &e) == 0, "stop");
	ok(p->status == SV_STOPPED && !p->started && p->pid == 0 && p->stopped_at > 0, "stopped");
	ok(kill(old, 0) < 0, "child is gone and reaped");
	ok(sv_start(&s, "vm1", &e) == 0 && p->status == SV_RUNNING && p->pid != old, "restart");
	ok(sv_stop(&s, "vm1", 0, &e) == 0, "stop again");
	ok(sv_remove(&s, "vm1", &e) == 0 && !sv_find(&s, "vm1"), "remove stopped");
	ok(sv_start(&s, "vm1", &e) < 0, "start unknown");
	is_str(e.msg, "Process not found", "exact error");
	sv_free(&s);
	tu_rmrf(dir);
}

static void test_exit_and_errors(void)
{
	char *dir = tu_tmpdir();
	struct sv s;
	struct err e = ERR_INIT;

	sv_init(&s);
	_cleanup_json_ json_t *c = cfg("ex", "exit 3", dir);
	ok(sv_deploy(&s, c, &e) == 0, "deploy short-lived");
	struct sv_process *p = sv_find(&s, "ex");
	ok(wait_status(&s, p, SV_EXITED, 3000), "exited");
	is_int(p->wait_status, 3 << 8, "raw wait status");
	_cleanup_free_ char *t = sv_status_text(p);
	is_str(t, "exited(768)", "status text exited(768)");
	_cleanup_json_ json_t *info = sv_info_json(p);
	is_int(json_integer_value(
		   json_object_get(json_object_get(json_object_get(info, "state"), "status"), "exited")),
	       768, "status JSON {\"exited\":768}");
	ok(json_is_null(json_object_get(json_object_get(info, "state"), "pid")), "pid null when not running");

	_cleanup_json_ json_t *c0 = cfg("ok", "exit 0", dir);
	sv_deploy(&s, c0, &e);
	p = sv_find(&s, "ok");
	ok(wait_status(&s, p, SV_EXITED, 3000), "exit 0 while started is exited(0)");
	ok(sv_stop(&s, "ok", 0, &e) == 0 && p->status == SV_STOPPED, "stop normalises exited(0) to stopped");

	_cleanup_json_ json_t *bad = json_pack("{s:s,s:s}", "id", "bad", "command", "/nonexistent/qemu");
	ok(sv_deploy(&s, bad, &e) < 0, "spawn failure reported");
	p = sv_find(&s, "bad");
	ok(p && p->status == SV_ERROR, "status error");
	_cleanup_free_ char *bt = sv_status_text(p);
	is_str(bt, "error(spawn /nonexistent/qemu: No such file or directory)", "error text");

	_cleanup_json_ json_t *noid = json_pack("{s:s,s:s}", "id", "", "command", "true");
	ok(sv_deploy(&s, noid, &e) < 0 && !strcmp(e.msg, "Process ID is empty"), "empty id");
	_cleanup_json_ json_t *badargs = json_pack("{s:s,s:s,s:i}", "id", "x", "command", "true", "args", 1);
	ok(sv_deploy(&s, badargs, &e) < 0, "bad args type rejected");

	sv_stop(&s, "bad", 0, &e);
	sv_stop(&s, "ex", 0, &e);
	size_t before = s.n;
	sv_clear(&s);
	ok(before == 3 && s.n == 0, "clear drops stopped entries");

	s.frozen = true;
	ok(sv_deploy(&s, c, &e) < 0 && !strcmp(e.msg, "Supervisor is freezed"), "frozen");
	sv_free(&s);
	tu_rmrf(dir);
}

static void test_grace_and_shutdown(void)
{
	char *dir = tu_tmpdir();
	struct sv s;
	struct err e = ERR_INIT;

	sv_init(&s);
	_cleanup_json_ json_t *polite =
	    cfg("polite", "trap 'echo bye; exit 0' TERM; echo ready; while :; do sleep 0.05; done", dir);
	_cleanup_json_ json_t *stubborn =
	    cfg("stubborn", "trap '' TERM; echo ready; while :; do sleep 0.05; done", dir);
	ok(sv_deploy(&s, polite, &e) == 0 && sv_deploy(&s, stubborn, &e) == 0, "deploy two");
	tu_wait_contains(dir, "polite.out", "ready", 10000);
	tu_wait_contains(dir, "stubborn.out", "ready", 10000);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ok(sv_stop(&s, "polite", 3000, &e) == 0, "graceful stop");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ok(t1.tv_sec - t0.tv_sec < 2, "exited on SIGTERM before the grace period");
	_cleanup_free_ char *o = tu_read(dir, "polite.out");
	ok(o && strstr(o, "bye"), "SIGTERM handler ran");
	ok(sv_find(&s, "polite")->status == SV_STOPPED, "stopped");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ok(sv_stop(&s, "stubborn", 300, &e) == 0, "stubborn stop");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	ok(ms >= 290 && sv_find(&s, "stubborn")->status == SV_STOPPED, "SIGKILL after grace (%ld ms)", ms);

	ok(sv_start(&s, "polite", &e) == 0 && sv_start(&s, "stubborn", &e) == 0, "both running again");
	pid_t a = sv_find(&s, "polite")->pid, b = sv_find(&s, "stubborn")->pid;
	sv_shutdown(&s);
	ok(kill(a, 0) < 0 && kill(b, 0) < 0, "shutdown killed every child");
	ok(s.frozen, "frozen after shutdown");
	_cleanup_json_ json_t *l = sv_list_json(&s);
	is_int(json_array_size(l), 2, "list keeps entries");
	sv_free(&s);
	tu_rmrf(dir);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	test_lifecycle();
	test_exit_and_errors();
	test_grace_and_shutdown();
	return tap_done();
}
