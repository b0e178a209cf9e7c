/*
 * runtime.c — is a container runtime usable here? (see runtime.h)
 *
 * A `docker` client on PATH says nothing about a daemon behind it, so the
 * probe runs `<runtime> info` and requires it to succeed within a short
 * deadline; its first stderr line is kept for the error message. Each probe
 * runs in its own process group so a hung client (and anything it spawned)
 * is killed as a whole at the deadline.
 */
#include "vmm/backend/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "vmm/util.h"

static const char *const runtimes[] = {"docker", "podman"};

static bool in_path(const char *prog)
{
	const char *path = getenv("PATH");
	_cleanup_free_ char *copy = xstrdup(path ? path : "/usr/bin:/bin");
	char *save = NULL;

	for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		_cleanup_free_ char *p = path_join(d, prog);

		if (access(p, X_OK) == 0)
			return true;
	}
	return false;
}

static long ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* First non-empty line of `text`, trimmed, in out. */
static void first_line(const char *text, char *out, size_t cap)
{
	size_t n;

	while (*text == '\n' || *text == '\r' || *text == ' ')
		text++;
	n = strcspn(text, "\r\n");
	snprintf(out, cap, "%.*s", (int)n, text);
}

/* Run `prog info`; 0 when it exits 0 within timeout_ms, else -1 with why in `why`. */
static int probe(const char *prog, unsigned timeout_ms, char *why, size_t cap)
{
	int pipefd[2], st = 0;
	char errtext[4096] = "", line[512];
	size_t got = 0;
	struct timespec t0;
	bool timed_out = false;
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return snprintf(why, cap, "pipe: %s", strerror(errno)), -1;
	pid = fork();
	if (pid < 0) {
		close(pipefd[0]), close(pipefd[1]);
		return snprintf(why, cap, "fork: %s", strerror(errno)), -1;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		setpgid(0, 0);
		dup2(null, 0), dup2(null, 1), dup2(pipefd[1], 2);
		execlp(prog, prog, "info", (char *)NULL);
		_exit(127);
	}
	setpgid(pid, pid);
	close(pipefd[1]);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		long left = (long)timeout_ms - ms_since(&t0);
		struct pollfd p = {pipefd[0], POLLIN, 0};
		ssize_t n;

		if (left <= 0) {
			timed_out = true;
			break;
		}
		if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
			break;
		if (!p.revents)
			continue;
		if (got < sizeof(errtext) - 1) {
			n = read(pipefd[0], errtext + got, sizeof(errtext) - 1 - got);
		} else {
			char trash[4096]; /* keep draining so the client never blocks on a full pipe */

			n = read(pipefd[0], trash, sizeof(trash));
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* EOF: the client is done (or closed stderr) */
		if (got < sizeof(errtext) - 1)
			got += (size_t)n;
	}
	close(pipefd[0]);
	errtext[got] = 0;
	/* stderr closed; give the process the rest of the deadline to exit */
	while (!timed_out) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			st = 0;
			break;
		}
		if (ms_since(&t0) >= (long)timeout_ms)
			timed_out = true;
		else
			usleep(10 * 1000);
	}
	if (timed_out) {
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		snprintf(why, cap, "`%s info` did not answer within %u ms", prog, timeout_ms);
		return -1;
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	first_line(errtext, line, sizeof(line));
	if (WIFEXITED(st))
		snprintf(why, cap, "`%s info` failed (exit %d%s%s)", prog, WEXITSTATUS(st),
			 line[0] ? ": " : "", line);
	else
		snprintf(why, cap, "`%s info` was killed by signal %d", prog, WTERMSIG(st));
	return -1;
}

int vmm_container_runtime_check(unsigned timeout_ms, const char **which, struct err *e)
{
	char why[2][700];

	for (size_t i = 0; i < sizeof(runtimes) / sizeof(runtimes[0]); i++) {
		if (!in_path(runtimes[i])) {
			snprintf(why[i], sizeof(why[i]), "no %s on PATH", runtimes[i]);
			continue;
		}
		if (probe(runtimes[i], timeout_ms, why[i], sizeof(why[i])) == 0) {
			if (which)
				*which = runtimes[i];
			return 0;
		}
	}
	return err_set(e, "no usable container runtime: %s; %s", why[0], why[1]);
}
