/*
 * launcher_test.c — `dstack-vmm vm-launcher` with stand-ins: a fake swtpm
 * (python3 binding the unix socket) and a fake QEMU (sleep / exit). QEMU
 * starts only after the socket exists, SIGTERM stops both, and QEMU's exit
 * stops swtpm and becomes the launcher's exit code.
 */
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/tap.h"
#include "testutil.h"
#include "vmm/launcher.h"

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static pid_t run_launcher(const char *exe, const char *spec)
{
	pid_t pid = fork();

	if (pid == 0) {
		execl(exe, exe, "vm-launcher", "--spec", spec, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static void write_spec(const char *dir, const char *qemu_script)
{
	_cleanup_free_ char *sock = path_join(dir, "swtpm.sock"), *spec = path_join(dir, "launch.json");
	_cleanup_free_ char *fake =
	    xasprintf("import socket,time,sys\ns=socket.socket(socket.AF_UNIX)\ns.bind('%s')\n"
		      "open('%s/swtpm.started','w').write('1')\ntime.sleep(60)\n",
		      sock, dir);
	struct strv q = {0}, s = {0};

	tu_write(dir, "fake_swtpm.py", fake);
	strv_push(&q, "sh");
	strv_push(&q, "-c");
	strv_push(&q, qemu_script);
	strv_push(&s, "python3");
	strv_pushf(&s, "%s/fake_swtpm.py", dir);
	json_t *j = vmm_launch_spec(&q, &s, sock);
	json_object_set_new(j, "shutdown_timeout_ms", json_integer(2000));
	_cleanup_free_ char *t = json_dumps(j, 0);
	file_write_atomic(spec, t, strlen(t), 0600, NULL);
	json_decref(j);
	strv_free(&q);
	strv_free(&s);
}

int main(void)
{
	const char *exe = getenv("VMM_EXE");
	char *d = tu_tmpdir();
	_cleanup_free_ char *spec = path_join(d, "launch.json");
	int st;

	if (!exe)
		return diag("VMM_EXE not set"), 1;
	struct strv sw;
	vmm_swtpm_argv("swtpm", "/run/vm/x", 1000, 1000, &sw);
	_cleanup_free_ char *swj = strv_join(&sw, " ");
	is_str(swj,
	       "swtpm socket --tpm2 --tpmstate dir=/run/vm/x/swtpm --ctrl "
	       "type=unixio,path=/run/vm/x/swtpm/swtpm.sock,mode=0600,uid=1000,gid=1000 --flags "
	       "not-need-init,startup-clear",
	       "swtpm command (§11)");
	strv_free(&sw);

	/* QEMU runs after the socket exists; SIGTERM stops both. */
	_cleanup_free_ char *qs =
	    xasprintf("test -S %s/swtpm.sock && echo ok > %s/qemu.saw; exec sleep 60", d, d);
	write_spec(d, qs);
	pid_t l = run_launcher(exe, spec);
	_cleanup_free_ char *sawp = path_join(d, "qemu.saw");
	for (int i = 0; i < 200 && !file_exists(sawp); i++)
		sleep_ms(50);
	sleep_ms(50);
	_cleanup_free_ char *saw = tu_read(d, "qemu.saw");
	is_str(saw, "ok\n", "QEMU started after the swtpm socket appeared");
	ok(kill(l, SIGTERM) == 0, "SIGTERM the launcher");
	ok(waitpid(l, &st, 0) == l, "launcher exits");
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 128 + SIGTERM, "exit code reflects QEMU's SIGTERM (%d)", st);
	ok(system("pgrep -f 'fake_[s]wtpm.py' >/dev/null") != 0, "swtpm gone");

	/* QEMU exits by itself: swtpm is stopped, exit code passed through. */
	write_spec(d, "sleep 0.3; exit 7");
	l = run_launcher(exe, spec);
	ok(waitpid(l, &st, 0) == l && WIFEXITED(st) && WEXITSTATUS(st) == 7,
	   "QEMU exit code 7 passed through");
	ok(system("pgrep -f 'fake_[s]wtpm.py' >/dev/null") != 0, "swtpm stopped when QEMU ended");

	_cleanup_free_ char *bad = path_join(d, "bad.json");
	tu_write(d, "bad.json", "{\"qemu\":1}");
	l = run_launcher(exe, bad);
	ok(waitpid(l, &st, 0) == l && WIFEXITED(st) && WEXITSTATUS(st) == 1, "invalid spec: exit 1");
	tu_rmrf(d);
	return tap_done();
}
