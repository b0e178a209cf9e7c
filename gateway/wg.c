/*
 * wg.c — WireGuard link, peer file and handshakes (see wg.h).
 *
 * Kernel WireGuard is tried first (`ip link add <if> type wireguard`); if the
 * kernel has no module, `wireguard-go <if>` is started: it daemonises and
 * serves the same UAPI socket, so `wg syncconf`/`wg show` work unchanged.
 * The config file is the single source of truth for the peer set: it is
 * rewritten whole and `wg syncconf` applies the difference atomically.
 */
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
#include "core/fileio.h"
#include "core/log.h"
#include "wg.h"

#define OUTPUT_CAP (1u << 20)

extern char **environ;

static int run_env(const char *const *argv, char *const *envp, struct buf *out, struct err *e)
{
	int opipe[2], epipe[2], status;
	struct buf errb = BUF_INIT;
	pid_t pid;

	if (pipe2(opipe, O_CLOEXEC) < 0)
		return err_errno(e, "pipe");
	if (pipe2(epipe, O_CLOEXEC) < 0) {
		close(opipe[0]);
		close(opipe[1]);
		return err_errno(e, "pipe");
	}
	pid = fork();
	if (pid < 0) {
		close(opipe[0]);
		close(opipe[1]);
		close(epipe[0]);
		close(epipe[1]);
		return err_errno(e, "fork");
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(opipe[1], 1);
		dup2(epipe[1], 2);
		execvpe(argv[0], (char *const *)argv, envp);
		_exit(127);
	}
	close(opipe[1]);
	close(epipe[1]);
	struct pollfd pf[2] = {{opipe[0], POLLIN, 0}, {epipe[0], POLLIN, 0}};
	int open_fds = 2;
	while (open_fds > 0) {
		if (poll(pf, 2, 30000) <= 0) {
			if (errno == EINTR)
				continue;
			kill(pid, SIGKILL);
			break;
		}
		for (int i = 0; i < 2; i++) {
			char tmp[4096];
			ssize_t r;
			if (pf[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			r = read(pf[i].fd, tmp, sizeof(tmp));
			if (r <= 0) {
				close(pf[i].fd);
				pf[i].fd = -1;
				open_fds--;
				continue;
			}
			struct buf *b = i == 0 ? out : &errb;
			if (b && b->len + (size_t)r <= OUTPUT_CAP)
				buf_append(b, tmp, (size_t)r);
		}
	}
	for (int i = 0; i < 2; i++)
		if (pf[i].fd >= 0)
			close(pf[i].fd);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	buf_putc(&errb, 0);
	if (out)
		buf_putc(out, 0), out->len--;
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		char *nl;
		while ((nl = strchr((char *)errb.data, '\n')) && nl[1])
			*nl = ' ';
		if ((nl = strchr((char *)errb.data, '\n')))
			*nl = 0;
		err_set(e, "%s %s failed (%s %d)%s%s", argv[0], argv[1] ? argv[1] : "",
			WIFEXITED(status) ? "exit" : "signal",
			WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), errb.len > 1 ? ": " : "",
			(char *)errb.data);
		buf_free(&errb);
		return -1;
	}
	buf_free(&errb);
	return 0;
}

int wg_run(const char *const *argv, struct buf *out, struct err *e)
{
	return run_env(argv, environ, out, e);
}

static bool link_exists(const char *ifname)
{
	const char *argv[] = {"ip", "link", "show", "dev", ifname, NULL};

	return wg_run(argv, NULL, NULL) == 0;
}

static int start_wireguard_go(const char *ifname, struct err *e)
{
	/* wireguard-go refuses to run on Linux without this acknowledgement. */
	static char ack[] = "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1";
	const char *argv[] = {"wireguard-go", ifname, NULL};
	size_t n = 0;
	char **envp;

	while (environ[n])
		n++;
	if (!(envp = calloc(n + 2, sizeof(*envp))))
		return err_set(e, "out of memory");
	memcpy(envp, environ, n * sizeof(*envp));
	envp[n] = ack;
	int rc = run_env(argv, envp, NULL, e);
	free(envp);
	if (rc < 0)
		return -1;
	for (int i = 0; i < 50 && !link_exists(ifname); i++)
		usleep(100 * 1000);
	return link_exists(ifname) ? 0 : err_set(e, "wireguard-go did not create %s", ifname);
}

int wg_link_setup(const struct wg_settings *w, struct err *e)
{
	const char *add[] = {"ip", "link", "add", w->interface, "type", "wireguard", NULL};
	const char *addr[] = {"ip", "address", "replace", w->ip, "dev", w->interface, NULL};
	const char *up[] = {"ip", "link", "set", w->interface, "up", NULL};
	struct err ke = ERR_INIT;

	if (!*w->interface)
		return 0;
	if (link_exists(w->interface)) {
		log_info("wireguard: using existing link %s", w->interface);
	} else if (wg_run(add, NULL, &ke) == 0) {
		log_info("wireguard: created kernel link %s", w->interface);
	} else {
		log_info("wireguard: no kernel WireGuard (%s); starting wireguard-go", err_str(&ke));
		if (start_wireguard_go(w->interface, e) < 0)
			return err_wrap(e, "wireguard link %s", w->interface);
		log_info("wireguard: wireguard-go serves %s", w->interface);
	}
	if (wg_run(addr, NULL, e) < 0 || wg_run(up, NULL, e) < 0)
		return err_wrap(e, "wireguard link %s", w->interface);
	return 0;
}

void wg_render(const struct wg_settings *w, const struct gw_instance *v, size_t n, struct buf *out)
{
	buf_printf(out, "[Interface]\nPrivateKey = %s\nListenPort = %u\n", w->private_key, w->listen_port);
	for (size_t i = 0; i < n; i++) {
		char ip[16];
		ip4_format(v[i].ip, ip);
		buf_printf(out, "\n[Peer]\nPublicKey = %s\nAllowedIPs = %s/32\nPersistentKeepalive = 25\n",
			   v[i].public_key, ip);
	}
}

int wg_apply(const struct wg_settings *w, const char *text, size_t len, struct err *e)
{
	const char *argv[] = {"wg", "syncconf", w->interface, w->config_path, NULL};

	char parent[4096];
	char *slash;

	snprintf(parent, sizeof(parent), "%s", w->config_path);
	if ((slash = strrchr(parent, '/')) && slash != parent) {
		*slash = 0;
		if (mkdir_p(parent, 0700, e) < 0)
			return err_wrap(e, "create %s", parent);
	}
	if (file_write_atomic(w->config_path, text, len, 0600, e) < 0)
		return err_wrap(e, "write %s", w->config_path);
	if (!*w->interface)
		return 0;
	return wg_run(argv, NULL, e);
}

int wg_read_handshakes(const struct wg_settings *w, struct wg_handshake **out, size_t *n, struct err *e)
{
	const char *argv[] = {"wg", "show", w->interface, "latest-handshakes", NULL};
	_cleanup_buf_ struct buf b = BUF_INIT;
	struct wg_handshake *v = NULL;
	size_t len = 0;
	char *save = NULL, *line;

	*out = NULL;
	*n = 0;
	if (!*w->interface)
		return 0;
	if (wg_run(argv, &b, e) < 0)
		return -1;
	buf_putc(&b, 0);
	for (line = strtok_r((char *)b.data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char key[GW_WG_KEY_MAX + 1];
		unsigned long long t;
		if (sscanf(line, "%64s %llu", key, &t) != 2)
			continue;
		struct wg_handshake *nv = realloc(v, (len + 1) * sizeof(*v));
		if (!nv) {
			free(v);
			return err_set(e, "out of memory");
		}
		v = nv;
		snprintf(v[len].public_key, sizeof(v[len].public_key), "%s", key);
		v[len++].time = t;
	}
	*out = v;
	*n = len;
	return 0;
}
