/*
 * launcher.c — see launcher.h.
 */
#include "vmm/launcher.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/log.h"

void vmm_swtpm_argv(const char *swtpm, const char *workdir, unsigned uid, unsigned gid, struct strv *a)
{
	memset(a, 0, sizeof(*a));
	strv_push(a, swtpm);
	strv_push(a, "socket");
	strv_push(a, "--tpm2");
	strv_push(a, "--tpmstate");
	strv_pushf(a, "dir=%s/swtpm", workdir);
	strv_push(a, "--ctrl");
	strv_pushf(a, "type=unixio,path=%s/swtpm/swtpm.sock,mode=0600,uid=%u,gid=%u", workdir, uid, gid);
	strv_push(a, "--flags");
	strv_push(a, "not-need-init,startup-clear");
}

static json_t *cmd_json(const struct strv *argv)
{
	json_t *args = json_array();

	for (size_t i = 1; i < argv->n; i++)
		json_array_append_new(args, json_string(argv->v[i]));
	return json_pack("{s:s,s:o}", "command", argv->v[0], "args", args);
}

json_t *vmm_launch_spec(const struct strv *qemu_argv, const struct strv *swtpm_argv, const char *swtpm_socket)
{
	return json_pack("{s:o,s:o,s:s,s:i,s:i}", "qemu", cmd_json(qemu_argv), "swtpm", cmd_json(swtpm_argv),
			 "swtpm_socket", swtpm_socket, "startup_timeout_ms", 5000, "shutdown_timeout_ms",
			 10000);
}

static int argv_from_json(const json_t *j, struct strv *out)
{
	const char *cmd = json_str(j, "command");
	json_t *args = json_object_get(j, "args"), *it;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (!cmd || !*cmd || (args && !json_is_array(args)))
		return -1;
	strv_push(out, cmd);
	json_array_foreach(args, i, it)
	{
		if (!json_is_string(it)) {
			strv_free(out);
			return -1;
		}
		strv_push(out, json_string_value(it));
	}
	return 0;
}

static pid_t spawn_group(const struct strv *argv, const sigset_t *orig)
{
	pid_t pid = fork();

	if (pid == 0) {
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		sigprocmask(SIG_SETMASK, orig, NULL);
		execvp(argv->v[0], argv->v);
		_exit(127);
	}
	if (pid > 0)
		setpgid(pid, pid);
	return pid;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void kill_group(pid_t pid, int sig)
{
	if (pid > 0) {
		kill(-pid, sig);
		kill(pid, sig);
	}
}

/* Reap whichever children exited; clears their pid and records qemu's status. */
static void reap(pid_t *swtpm, pid_t *qemu, int *qemu_status)
{
	int st;
	pid_t r;

	while ((r = waitpid(-1, &st, WNOHANG)) > 0) {
		if (r == *swtpm)
			*swtpm = 0;
		if (r == *qemu) {
			*qemu = 0;
			*qemu_status = st;
		}
	}
}

int vmm_launcher_run(const char *spec_path)
{
	_cleanup_free_ uint8_t *raw = NULL;
	_cleanup_json_ json_t *spec = NULL;
	struct strv qargv = {0}, sargv = {0};
	struct err e = ERR_INIT;
	sigset_t mask, orig;
	pid_t swtpm = 0, qemu = 0;
	int qemu_status = 0, sfd, rc = 1;
	const char *sock;
	uint64_t startup, shutdown, deadline = 0;
	bool stopping = false;

	if (file_read_all(spec_path, 1 << 20, &raw, NULL, &e) < 0 ||
	    !(spec = json_loads((const char *)raw, 0, NULL)) ||
	    argv_from_json(json_object_get(spec, "qemu"), &qargv) < 0 ||
	    argv_from_json(json_object_get(spec, "swtpm"), &sargv) < 0 ||
	    !(sock = json_str(spec, "swtpm_socket"))) {
		log_error("invalid spec %s: %s", spec_path, e.msg[0] ? e.msg : "malformed");
		goto out;
	}
	startup = (uint64_t)json_integer_value(json_object_get(spec, "startup_timeout_ms"));
	shutdown = (uint64_t)json_integer_value(json_object_get(spec, "shutdown_timeout_ms"));
	if (!startup)
		startup = 5000;
	if (!shutdown)
		shutdown = 10000;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, &orig);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		goto out;
	unlink(sock);
	swtpm = spawn_group(&sargv, &orig);
	if (swtpm < 0)
		goto out_fd;
	/* Wait for swtpm's control socket. */
	for (uint64_t t0 = mono_ms();;) {
		struct stat st;

		if (stat(sock, &st) == 0 && S_ISSOCK(st.st_mode))
			break;
		reap(&swtpm, &qemu, &qemu_status);
		if (!swtpm || mono_ms() - t0 > startup) {
			log_error("vm-launcher: swtpm socket %s did not appear", sock);
			kill_group(swtpm, SIGKILL);
			goto out_fd;
		}
		usleep(20000);
	}
	qemu = spawn_group(&qargv, &orig);
	if (qemu < 0) {
		kill_group(swtpm, SIGKILL);
		goto out_fd;
	}
	while (swtpm || qemu) {
		struct pollfd pfd = {sfd, POLLIN, 0};
		struct signalfd_siginfo si;
		int timeout = stopping ? 100 : -1;

		if (poll(&pfd, 1, timeout) > 0) {
			while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				if ((si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) && !stopping) {
					stopping = true;
					deadline = mono_ms() + shutdown;
					kill_group(qemu, SIGTERM);
					kill_group(swtpm, SIGTERM);
				}
			}
		}
		reap(&swtpm, &qemu, &qemu_status);
		if (!stopping && (!swtpm || !qemu)) {
			/* one child ended: stop the other */
			stopping = true;
			deadline = mono_ms() + shutdown;
			kill_group(qemu, SIGTERM);
			kill_group(swtpm, SIGTERM);
		}
		if (stopping && mono_ms() >= deadline) {
			kill_group(qemu, SIGKILL);
			kill_group(swtpm, SIGKILL);
		}
	}
	rc = WIFEXITED(qemu_status) ? WEXITSTATUS(qemu_status) : 128 + WTERMSIG(qemu_status);
out_fd:
	close(sfd);
out:
	strv_free(&qargv);
	strv_free(&sargv);
	return rc;
}
