/*
 * sv_daemon_test.c — the real `supervisor` daemon over its unix socket:
 * exact JSON replies of §10, process state transitions, surviving a client
 * (VMM) going away, startup through sv_client_ensure_running, and SIGTERM
 * killing every child.
 */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/tap.h"
#include "testutil.h"
#include "vmm/sv_client.h"

static char *dump(json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : xstrdup("(null)");

	json_decref(j);
	return s;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static const char *state_status(json_t *info)
{
	return json_string_value(json_object_get(json_object_get(info, "state"), "status"));
}

int main(void)
{
	const char *exe = getenv("SUPERVISOR_EXE");
	char *dir = tu_tmpdir();
	_cleanup_free_ char *sock = path_join(dir, "sv.sock"), *pidf = path_join(dir, "sv.pid"),
			    *logf = path_join(dir, "sv.log");
	struct sv_client c = {sock, 5000};
	struct err e = ERR_INIT;

	signal(SIGPIPE, SIG_IGN);
	if (!exe) {
		diag("SUPERVISOR_EXE not set");
		return 1;
	}
	ok(!sv_client_ping(&c), "nothing listening yet");
	ok(sv_client_ensure_running(&c, exe, pidf, logf, false, false, &e) < 0, "no auto_start: error");
	ok(sv_client_ensure_running(&c, exe, pidf, logf, false, true, &e) == 0, "auto-started: %s", e.msg);
	ok(sv_client_ping(&c), "ping");
	_cleanup_free_ char *pidtxt = tu_read(dir, "sv.pid");
	pid_t svpid = pidtxt ? (pid_t)atoi(pidtxt) : 0;
	ok(svpid > 0 && kill(svpid, 0) == 0, "pid file names the live daemon");

	_cleanup_free_ char *l0 = dump(sv_client_call(&c, "GET", "/list", NULL, 0, &e));
	is_str(l0, "{\"data\":[]}", "empty list");
	_cleanup_free_ char *i0 = dump(sv_client_call(&c, "GET", "/info/nope", NULL, 0, &e));
	is_str(i0, "{\"data\":null}", "info of unknown is null");
	_cleanup_free_ char *s0 = dump(sv_client_call(&c, "POST", "/start/nope", NULL, 0, &e));
	is_str(s0, "{\"error\":\"Process not found\"}", "start unknown");
	_cleanup_free_ char *p0 = dump(sv_client_call(&c, "GET", "/ping", NULL, 0, &e));
	is_str(p0, "{\"data\":\"pong\"}", "ping body");

	_cleanup_free_ char *outp = path_join(dir, "vm.out");
	_cleanup_json_ json_t *cfg = json_pack(
	    "{s:s,s:s,s:s,s:[s,s],s:{},s:s,s:s,s:s,s:s,s:i,s:s}", "id", "vm1", "name", "vm", "command", "sh",
	    "args", "-c", "echo started; exec sleep 60", "env", "cwd", dir, "stdout", outp, "stderr", outp,
	    "pidfile", "", "cid", 1000, "note", "{\"kind\":\"cvm\"}");
	ok(sv_client_deploy(&c, cfg, &e) == 0, "deploy: %s", e.msg);
	_cleanup_free_ char *d2 = dump(sv_client_call(&c, "POST", "/deploy", cfg, 0, &e));
	is_str(d2, "{\"error\":\"Process is already running\"}", "deploy twice");
	json_t *info = sv_client_info(&c, "vm1", &e);
	is_str(state_status(info), "running", "running");
	pid_t child = (pid_t)json_integer_value(json_object_get(json_object_get(info, "state"), "pid"));
	ok(child > 0 && kill(child, 0) == 0, "child alive");
	ok(json_integer_value(json_object_get(json_object_get(info, "config"), "cid")) == 1000,
	   "cid in config");
	json_decref(info);

	/* The VMM restarting is just a new client: the process is still there. */
	struct sv_client c2 = {sock, 2000};
	json_t *list = sv_client_list(&c2, &e);
	ok(json_array_size(list) == 1 && !strcmp(state_status(json_array_get(list, 0)), "running"),
	   "a new client sees the running process");
	json_decref(list);
	ok(sv_client_ensure_running(&c2, exe, pidf, logf, false, true, &e) == 0, "ensure_running reuses it");
	_cleanup_free_ char *pid2 = tu_read(dir, "sv.pid");
	is_str(pid2, pidtxt, "same daemon");

	_cleanup_free_ char *r0 = dump(sv_client_call(&c, "DELETE", "/remove/vm1", NULL, 0, &e));
	is_str(r0, "{\"error\":\"Process is started\"}", "remove started");
	ok(sv_client_stop(&c, "vm1", &e) == 0, "stop");
	info = sv_client_info(&c, "vm1", &e);
	is_str(state_status(info), "stopped", "stopped");
	ok(json_is_false(json_object_get(json_object_get(info, "state"), "started")), "started=false");
	json_decref(info);
	ok(kill(child, 0) < 0, "child killed");
	ok(sv_client_start(&c, "vm1", &e) == 0, "start again");
	_cleanup_json_ json_t *pol = json_pack(
	    "{s:s,s:s,s:[s,s],s:s}", "id", "polite", "command", "sh", "args", "-c",
	    "trap 'echo term; exit 0' TERM; echo ready; while :; do sleep 0.05; done", "stdout", outp);
	ok(sv_client_deploy(&c, pol, &e) == 0, "deploy polite");
	tu_wait_contains(dir, "vm.out", "ready", 10000);
	_cleanup_free_ char *gs = dump(sv_client_call(&c, "POST", "/stop/polite?grace_ms=3000", NULL, 0, &e));
	is_str(gs, "{\"data\":null}", "stop with grace");
	_cleanup_free_ char *log = tu_read(dir, "vm.out");
	ok(log && strstr(log, "term\n"), "SIGTERM delivered before SIGKILL");
	ok(sv_client_remove(&c, "polite", &e) == 0, "remove polite");
	_cleanup_json_ json_t *ex =
	    json_pack("{s:s,s:s,s:[s,s]}", "id", "ex", "command", "sh", "args", "-c", "exit 2");
	ok(sv_client_deploy(&c, ex, &e) == 0, "deploy short-lived");
	char *exs = NULL;
	for (int i = 0; i < 1000; i++) {
		free(exs);
		exs = dump(sv_client_info(&c, "ex", &e));
		if (strstr(exs, "exited"))
			break;
		sleep_ms(10);
	}
	ok(strstr(exs, "\"status\":{\"exited\":512}") != NULL, "exited status object: %s", exs);
	free(exs);
	ok(sv_client_stop(&c, "ex", &e) == 0 && sv_client_clear(&c, &e) == 0, "stop + clear");
	list = sv_client_list(&c, &e);
	is_int(json_array_size(list), 1, "clear dropped the stopped entry");
	json_decref(list);

	info = sv_client_info(&c, "vm1", &e);
	child = (pid_t)json_integer_value(json_object_get(json_object_get(info, "state"), "pid"));
	json_decref(info);
	ok(kill(svpid, SIGTERM) == 0, "SIGTERM the daemon");
	int st = 0;
	ok(waitpid(svpid, &st, 0) == svpid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "daemon exits 0");
	ok(kill(child, 0) < 0, "its children are gone");
	ok(!file_exists(sock), "socket removed");
	tu_rmrf(dir);
	return tap_done();
}
