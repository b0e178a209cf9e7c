/*
 * dev_proc.c — the processes of `dstack dev`: pid files, spawning a
 * component in its own session with its output in its log, and stopping
 * them again (SIGTERM to the process group, SIGKILL after a grace period),
 * including what they leave behind (the VMM's supervisor and VMs, the
 * gateway's wireguard-go) and the WireGuard link.
 *
 * Pid files carry the process start time so a recycled pid is never
 * signalled; the sweep only touches processes tied to the state dir.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/fileio.h"
#include "dev.h"

#define LOG_TAIL_LINES 8

/* ---- pid files ---------------------------------------------------------- */

/* Field 22 of /proc/<pid>/stat (start time in clock ticks), 0 if gone. */
unsigned long long dev_proc_start_time(pid_t pid)
{
	char p[64], buf[1024];
	snprintf(p, sizeof p, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(p, "re");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *s = strrchr(buf, ')');
	if (!s)
		return 0;
	char state = 0;
	unsigned long long v = 0;
	/* after ")": state(3) ... starttime is the 20th field from state */
	s += 2;
	state = *s;
	if (state == 'Z' || state == 'X')
		return 0;
	for (int field = 3; field < 22 && s; field++)
		s = strchr(s + 1, ' ');
	if (!s || sscanf(s + 1, "%llu", &v) != 1)
		return 0;
	return v;
}

char *dev_pid_path(const struct dev *d, const char *name)
{
	return dev_pathf("%s/run/%s.pid", d->dir, name);
}

char *dev_log_path(const struct dev *d, const char *name)
{
	return dev_pathf("%s/logs/%s.log", d->dir, name);
}

/* The live pid recorded for name, or 0. */
pid_t dev_read_pid(const struct dev *d, const char *name)
{
	_cleanup_free_ char *p = dev_pid_path(d, name);
	uint8_t *text = NULL;
	size_t n;
	if (file_read_all(p, 128, &text, &n, NULL) < 0)
		return 0;
	int pid = 0;
	unsigned long long st = 0;
	int ok = sscanf((char *)text, "%d %llu", &pid, &st);
	free(text);
	if (ok != 2 || pid <= 1)
		return 0;
	return dev_proc_start_time(pid) == st ? pid : 0;
}

int dev_write_pid(const struct dev *d, const char *name, pid_t pid, struct err *e)
{
	_cleanup_free_ char *p = dev_pid_path(d, name);
	char line[64];
	snprintf(line, sizeof line, "%d %llu\n", (int)pid, dev_proc_start_time(pid));
	return file_write_atomic(p, line, strlen(line), 0644, e);
}

/* ---- processes ---------------------------------------------------------- */

pid_t dev_spawn(const struct dev *d, const char *name, char *const argv[], char *const env[], struct err *e)
{
	_cleanup_free_ char *lp = dev_log_path(d, name);
	int log = open(lp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (log < 0)
		return err_errno(e, "%s", lp);
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		close(log);
		return err_errno(e, "fork");
	}
	if (pid == 0) {
		int nul = open("/dev/null", O_RDONLY);
		setsid();
		if (chdir(d->dir) < 0 || nul < 0 || dup2(nul, 0) < 0 || dup2(log, 1) < 0 || dup2(log, 2) < 0)
			_exit(127);
		for (size_t i = 0; env && env[i]; i++)
			putenv(env[i]);
		execv(argv[0], argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(log);
	return pid;
}

/* Run argv to completion (output to the component log), return exit code. */
int dev_run_wait(const struct dev *d, const char *logname, char *const argv[])
{
	struct err e = ERR_INIT;
	pid_t pid = dev_spawn(d, logname, argv, NULL, &e);
	if (pid < 0)
		return -1;
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void dev_print_log_tail(const char *path)
{
	uint8_t *text = NULL;
	size_t n;
	if (file_read_all(path, 16 * 1024 * 1024, &text, &n, NULL) < 0)
		return;
	size_t lines = 0, i = n;
	while (i > 0 && lines <= LOG_TAIL_LINES)
		if (text[--i] == '\n' && i + 1 < n)
			lines++;
	if (i > 0)
		i++;
	fprintf(stderr, "---- last lines of %s ----\n%s----\n", path, text + i);
	free(text);
}

/* ---- down --------------------------------------------------------------- */

static bool wait_gone(pid_t pid, int ms)
{
	for (int t = 0; t < ms; t += 100) {
		waitpid(pid, NULL, WNOHANG);
		if (kill(pid, 0) < 0 && errno == ESRCH)
			return true;
		if (dev_proc_start_time(pid) == 0)
			return true;
		dev_sleep_ms(100);
	}
	return false;
}

void dev_stop_pid(const char *name, pid_t pid, int grace_s)
{
	/* Each component leads its own process group (setsid in spawn). */
	if (kill(-pid, SIGTERM) < 0)
		kill(pid, SIGTERM);
	if (wait_gone(pid, grace_s * 1000)) {
		kill(-pid, SIGTERM); /* stragglers in the group */
		printf("  %-12s stopped (pid %d)\n", name, (int)pid);
		return;
	}
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	wait_gone(pid, 2000);
	printf("  %-12s killed after %d s (pid %d)\n", name, grace_s, (int)pid);
}

/* Is path inside dir (or dir itself)? */
static bool inside(const char *path, const char *dir)
{
	size_t dl = strlen(dir);
	return !strncmp(path, dir, dl) && (path[dl] == '\0' || path[dl] == '/');
}

/* /proc/<pid>/<what> as a string (readlink), "" when unreadable. */
static void proc_link(int pid, const char *what, char *out, size_t n)
{
	char p[64];
	snprintf(p, sizeof p, "/proc/%d/%s", pid, what);
	ssize_t l = readlink(p, out, n - 1);
	out[l > 0 ? l : 0] = '\0';
}

/* Field `field` (1-based, after the command name) of /proc/<pid>/stat. */
static long long proc_stat_field(int pid, int field)
{
	char p[64], buf[1024];
	snprintf(p, sizeof p, "/proc/%d/stat", pid);
	FILE *f = fopen(p, "re");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *s = strrchr(buf, ')');
	long long v = -1;
	for (int i = 2; s && i < field; i++)
		s = strchr(s + 1, ' ');
	if (!s || sscanf(s + 1, "%lld", &v) != 1)
		return -1;
	return v;
}

/* Is pid this process or one of its ancestors (the shell that runs `down`,
 * its terminal, ...)? Those are never stopped, wherever they are. */
static bool ancestor(int pid)
{
	for (long long p = getpid(); p > 1; p = proc_stat_field((int)p, 4))
		if (p == pid)
			return true;
	return false;
}

/* Programs of a dev stack: the components, the VMM's supervisor and VMs. */
static bool stack_program(const char *exe)
{
	static const char *const names[] = {"dstack",      "dstack-kms",  "dstack-gateway",
					    "dstack-vmm",  "supervisor",  "dstack-guest-agent",
					    "dstack-util", "auth-simple", "qemu-system-x86_64"};
	const char *base = strrchr(exe, '/') ? strrchr(exe, '/') + 1 : exe;
	size_t bl = strcspn(base, " "); /* "… (deleted)" after a rebuild */
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strlen(names[i]) == bl && !strncmp(base, names[i], bl))
			return true;
	return false;
}

/*
 * Does /proc/<pid> belong to this stack? A program of the stack whose
 * working directory is inside the state dir or whose command line names it
 * (components, the supervisor, VMs, and what was started by hand from the
 * state dir); any process without a controlling terminal working inside a
 * VM's directory (the apps of process-backend VMs); a wireguard-go serving
 * our interface (it outlives the gateway). A shell or an editor that merely
 * sits in the state dir is not ours.
 */
static bool ours(const struct dev *d, int pid)
{
	char p[64], cwd[PATH_MAX], exe[PATH_MAX], cmd[4096];
	_cleanup_free_ char *vms = dev_pathf("%s/vmm/vm", d->dir);
	proc_link(pid, "cwd", cwd, sizeof cwd);
	proc_link(pid, "exe", exe, sizeof exe);
	snprintf(p, sizeof p, "/proc/%d/cmdline", pid);
	FILE *f = fopen(p, "re");
	size_t len = 0;
	if (f) {
		len = fread(cmd, 1, sizeof cmd - 1, f);
		fclose(f);
	}
	cmd[len] = '\0';
	bool names_dir = false;
	for (size_t i = 0; i < len && !names_dir; i += strlen(cmd + i) + 1)
		names_dir = strstr(cmd + i, d->dir) != NULL;
	if (stack_program(exe) && (inside(cwd, d->dir) || names_dir))
		return true;
	if (inside(cwd, vms) && proc_stat_field(pid, 7) == 0)
		return true;
	const char *base = strrchr(cmd, '/') ? strrchr(cmd, '/') + 1 : cmd;
	if (strcmp(base, "wireguard-go"))
		return false;
	for (size_t i = strlen(cmd) + 1; i < len; i += strlen(cmd + i) + 1)
		if (!strcmp(cmd + i, d->c.gateway_wg_interface))
			return true;
	return false;
}

/* Stop what the components left behind: the VMM's supervisor (it keeps VMs
 * across VMM restarts by design), process-backend VMs and their apps, the
 * gateway's wireguard-go, and components started by hand from the state
 * dir. Only processes tied to this state dir, never our own ancestors. */
void dev_sweep(const struct dev *d)
{
	for (int round = 0; round < 3; round++) {
		DIR *proc = opendir("/proc");
		struct dirent *de;
		int found = 0;
		if (!proc)
			return;
		while ((de = readdir(proc))) {
			int pid = atoi(de->d_name);
			if (pid <= 1 || ancestor(pid) || dev_proc_start_time(pid) == 0 || !ours(d, pid))
				continue;
			char name[64] = "process", p[64];
			snprintf(p, sizeof p, "/proc/%d/comm", pid);
			FILE *f = fopen(p, "re");
			if (f) {
				if (fgets(name, sizeof name, f))
					name[strcspn(name, "\n")] = '\0';
				fclose(f);
			}
			dev_stop_pid(name, pid, d->grace_s);
			found++;
		}
		closedir(proc);
		if (!found)
			break;
	}
}

void dev_remove_link(const struct dev *d)
{
	if (if_nametoindex(d->c.gateway_wg_interface) == 0)
		return;
	char *argv[] = {"/sbin/ip", "link", "del", d->c.gateway_wg_interface, NULL};
	if (access(argv[0], X_OK) != 0)
		argv[0] = "/usr/sbin/ip";
	if (dev_run_wait(d, "gateway", argv) == 0)
		printf("  %-12s removed link %s\n", "wireguard", d->c.gateway_wg_interface);
	else
		fprintf(stderr, "  wireguard    could not remove link %s (see %s/logs/gateway.log)\n",
			d->c.gateway_wg_interface, d->dir);
}

int dev_run_capture(char *const argv[], char *out, size_t n)
{
	int p[2];
	if (n == 0 || pipe2(p, O_CLOEXEC) < 0)
		return -1;
	out[0] = '\0';
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		int nul = open("/dev/null", O_RDONLY);
		if (nul < 0 || dup2(nul, 0) < 0 || dup2(p[1], 1) < 0 || dup2(p[1], 2) < 0)
			_exit(127);
		execv(argv[0], argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(p[1]);
	size_t len = 0;
	char sink[256];
	for (;;) {
		/* keep reading past n so the child never blocks on a full pipe */
		ssize_t r =
		    read(p[0], len + 1 < n ? out + len : sink, len + 1 < n ? n - 1 - len : sizeof sink);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (len + 1 < n)
			len += (size_t)r;
	}
	out[len] = '\0';
	close(p[0]);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Effective capability `cap` (linux/capability.h numbering) of this process. */
static bool has_cap(int cap)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	unsigned long long eff = 0;
	bool found = false;
	if (!f)
		return false;
	while (!found && fgets(line, sizeof line, f))
		found = sscanf(line, "CapEff: %llx", &eff) == 1;
	fclose(f);
	return found && (eff >> cap) & 1;
}

int dev_check_privileges(struct err *e)
{
	enum { CAP_NET_ADMIN_BIT = 12, CAP_SYS_ADMIN_BIT = 21 };
	if (has_cap(CAP_NET_ADMIN_BIT) && has_cap(CAP_SYS_ADMIN_BIT))
		return 0;
	return err_set(e, "dstack dev up needs root: the gateway creates its WireGuard interface "
			  "(CAP_NET_ADMIN; wireguard-go also needs /dev/net/tun) and each simulated CVM runs "
			  "in a network namespace of its own (CAP_SYS_ADMIN), from which it reaches the "
			  "gateway only through that interface. Run it as root (sudo); docs/dev-stack.md, "
			  "troubleshooting, has more. --without gateway --without vmm runs the rest "
			  "unprivileged");
}
