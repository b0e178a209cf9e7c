/*
 * wg_up.c — see wg_up.h. Every tool runs through fork/execvp with a fixed
 * argv (no shell); its stderr is captured (capped) for the error message.
 * wireguard-go daemonises: its first process exits once the TUN device and
 * the UAPI socket exist, the daemon keeps running with output to the log
 * file (never to a pipe of ours, which it would hold open forever).
 */
#include "wg_up.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "core/log.h"

#define STDERR_CAP 4096

static void argv_text(const char *const *argv, char *out, size_t n)
{
	size_t w = 0;
	out[0] = 0;
	for (size_t i = 0; argv[i] && w + 1 < n; i++)
		w += (size_t)snprintf(out + w, n - w, "%s%s", i ? " " : "", argv[i]);
}

/* Run argv; output to out_fd (or /dev/null), stderr captured unless
 * out_fd is given. 0 on exit status 0. */
static int run(const char *const *argv, int out_fd, const char *env_kv, struct err *e)
{
	int ep[2] = {-1, -1}, status;
	char cmd[256], errbuf[STDERR_CAP + 1];
	size_t got = 0;
	pid_t pid;

	argv_text(argv, cmd, sizeof(cmd));
	if (out_fd < 0 && pipe2(ep, O_CLOEXEC) < 0)
		return err_errno(e, "pipe");
	pid = fork();
	if (pid < 0) {
		if (ep[0] >= 0) {
			close(ep[0]);
			close(ep[1]);
		}
		return err_errno(e, "fork");
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(out_fd >= 0 ? out_fd : null, 1);
		dup2(out_fd >= 0 ? out_fd : ep[1], 2);
		if (env_kv)
			putenv((char *)env_kv);
		execvp(argv[0], (char *const *)argv);
		fprintf(stderr, "%s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	if (ep[1] >= 0) {
		close(ep[1]);
		for (;;) {
			ssize_t r = read(ep[0], errbuf + got, STDERR_CAP - got);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			got += (size_t)r;
			if (got == STDERR_CAP) {
				char sink[512];
				while (read(ep[0], sink, sizeof(sink)) > 0)
					;
				break;
			}
		}
		close(ep[0]);
	}
	errbuf[got] = 0;
	while (got && (errbuf[got - 1] == '\n' || errbuf[got - 1] == ' '))
		errbuf[--got] = 0;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return err_errno(e, "waitpid %s", cmd);
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status))
		return err_set(e, "`%s` exited with %d%s%s", cmd, WEXITSTATUS(status), got ? ": " : "",
			       errbuf);
	return err_set(e, "`%s` killed by signal %d", cmd, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

static bool link_exists(const char *ifname)
{
	return if_nametoindex(ifname) != 0;
}

static int start_wireguard_go(const struct wg_up_opts *o, struct err *e)
{
	const char *argv[] = {"wireguard-go", o->ifname, NULL};
	int fd =
	    open(o->log_path ? o->log_path : "/dev/null", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_errno(e, "open %s", o->log_path);
	/* wireguard-go refuses to run on Linux without this acknowledgement. */
	int rc = run(argv, fd, "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1", e);
	close(fd);
	if (rc < 0)
		return err_wrap(e, "start wireguard-go");
	for (int i = 0; i < 100 && !link_exists(o->ifname); i++)
		usleep(50 * 1000);
	return link_exists(o->ifname) ? 0 : err_set(e, "wireguard-go did not create %s", o->ifname);
}

static int create_link(const struct wg_up_opts *o, struct err *e)
{
	const char *argv[] = {"ip", "link", "add", o->ifname, "type", "wireguard", NULL};
	struct err ke = ERR_INIT;

	if (run(argv, -1, NULL, &ke) == 0) {
		log_info("wireguard: kernel link %s created", o->ifname);
		return 0;
	}
	log_info("wireguard: no kernel WireGuard (%s); starting wireguard-go", err_str(&ke));
	if (start_wireguard_go(o, e) < 0)
		return err_wrap(e, "no kernel WireGuard (%s)", err_str(&ke));
	log_info("wireguard: wireguard-go serves %s", o->ifname);
	return 0;
}

int wg_up(const struct wg_up_opts *o, struct err *e)
{
	if (!o->ifname || !*o->ifname || strlen(o->ifname) >= IFNAMSIZ)
		return err_set(e, "bad WireGuard interface name \"%s\"", o->ifname ? o->ifname : "");
	if (!link_exists(o->ifname)) {
		if (create_link(o, e) < 0)
			return -1;
	} else {
		log_info("wireguard: reusing link %s", o->ifname);
	}
	const char *setconf[] = {"wg", "setconf", o->ifname, o->setconf_path, NULL};
	const char *flush[] = {"ip", "address", "flush", "dev", o->ifname, NULL};
	const char *addr[] = {"ip", "address", "add", o->address, "dev", o->ifname, NULL};
	const char *up[] = {"ip", "link", "set", o->ifname, "up", NULL};
	if (run(setconf, -1, NULL, e) < 0 || run(flush, -1, NULL, e) < 0 || run(addr, -1, NULL, e) < 0 ||
	    run(up, -1, NULL, e) < 0)
		return -1;
	for (size_t i = 0; i < o->n_routes; i++) {
		const char *route[] = {"ip", "route", "replace", o->routes[i], "dev", o->ifname, NULL};
		if (run(route, -1, NULL, e) < 0)
			return -1;
	}
	log_info("wireguard: %s up with address %s and %zu peer route(s)", o->ifname, o->address,
		 o->n_routes);
	return 0;
}
