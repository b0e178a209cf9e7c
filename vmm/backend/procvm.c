/*
 * procvm.c — `dstack-vmm process-vm <workdir>`: the guest of a process-
 * backend VM, run by the supervisor with the work directory as cwd and
 * stdout/stderr going to the VM's logs. It does what a CVM's boot does that
 * matters to the host: reports boot progress and the instance identity to
 * the host API (unix socket from `.sys-config.json`), forwards the VM's
 * mapped TCP ports from the host address to the app on 127.0.0.1, and runs
 * the app: `bash_script` for runner "bash"; a "docker-compose" app is
 * refused when no container runtime exists. SIGTERM is passed to the app;
 * the supervisor kills the whole process group on stop.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/hex.h"
#include "prpc/client.h"
#include "vmm/backend/process.h"
#include "vmm/util.h"

static char *host_sock, *host_path;
static int app_netns_fd = -1; /* the app's own network namespace, or -1 (shared with the host) */
static volatile sig_atomic_t term_requested;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char ts[32];
	time_t t = time(NULL);
	va_list ap;

	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
	printf("[%s] process-vm: ", ts);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static void notify(const char *event, const char *payload)
{
	struct prpc_client c = {.base = host_path, .http = {.unix_socket = host_sock, .timeout_ms = 5000}};
	_cleanup_json_ json_t *in = json_pack("{s:s,s:s}", "event", event, "payload", payload);
	struct err e = ERR_INIT;

	if (!host_sock)
		return;
	if (prpc_client_call_json(&c, "Notify", in, NULL, &e) < 0)
		fprintf(stderr, "process-vm: notify %s: %s\n", event, err_str(&e));
}

static json_t *load_json(const char *path)
{
	_cleanup_free_ uint8_t *raw = NULL;
	size_t len;

	if (file_read_all(path, 16 << 20, &raw, &len, NULL) < 0)
		return NULL;
	return json_loadb((const char *)raw, len, 0, NULL);
}

/* "unix:/path.sock:/api" → socket path and base URL. */
static void parse_host_api(const char *url)
{
	const char *p;

	if (!url || strncmp(url, "unix:", 5))
		return;
	p = strchr(url + 5, ':');
	host_sock = p ? strndup(url + 5, (size_t)(p - url - 5)) : xstrdup(url + 5);
	host_path = xasprintf("http://localhost%s", p ? p + 1 : "/api");
}

/* ---- port forwarding ---------------------------------------------------- */

struct pipe_pair {
	int a, b;
};

static void *pump(void *arg)
{
	struct pipe_pair *p = arg;
	struct pollfd fds[2] = {{p->a, POLLIN, 0}, {p->b, POLLIN, 0}};
	char buf[16384];

	for (;;) {
		if (poll(fds, 2, -1) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2; i++) {
			if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t n = read(fds[i].fd, buf, sizeof(buf));

			if (n <= 0)
				goto done;
			for (ssize_t off = 0; off < n;) {
				ssize_t w = write(fds[1 - i].fd, buf + off, (size_t)(n - off));

				if (w <= 0)
					goto done;
				off += w;
			}
		}
	}
done:
	close(p->a);
	close(p->b);
	free(p);
	return NULL;
}

static int tcp_connect(const char *host, unsigned port)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	char ps[16];
	int fd;

	snprintf(ps, sizeof(ps), "%u", port);
	if (getaddrinfo(host, ps, &hints, &ai) != 0 || !ai)
		return -1;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

struct fwd {
	int lfd;
	unsigned vm_port;
};

static void *accept_loop(void *arg)
{
	struct fwd *f = arg;

	/* connections to the app are made from inside its namespace (this thread only) */
	if (app_netns_fd >= 0 && setns(app_netns_fd, CLONE_NEWNET) < 0)
		say("port forward: setns: %s", strerror(errno));

	for (;;) {
		int c = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC), u;
		pthread_t t;

		if (c < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		u = tcp_connect("127.0.0.1", f->vm_port);
		if (u < 0) {
			close(c);
			continue;
		}
		struct pipe_pair *p = malloc(sizeof(*p));

		if (!p)
			abort();
		*p = (struct pipe_pair){c, u};
		if (pthread_create(&t, NULL, pump, p) == 0)
			pthread_detach(t);
		else
			pump(p);
	}
	return NULL;
}

static int listen_tcp(const char *addr, unsigned port)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
	char ps[16];
	int fd, one = 1;

	snprintf(ps, sizeof(ps), "%u", port);
	if (getaddrinfo(addr, ps, &hints, &ai) != 0 || !ai)
		return -1;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(ai);
	return fd;
}

static void start_forwards(const json_t *manifest)
{
	json_t *pm;
	size_t i;

	json_array_foreach(json_object_get(manifest, "port_map"), i, pm)
	{
		const char *proto = json_string_value(json_object_get(pm, "protocol"));
		const char *addr = json_string_value(json_object_get(pm, "address"));
		unsigned from = (unsigned)json_integer_value(json_object_get(pm, "from"));
		unsigned to = (unsigned)json_integer_value(json_object_get(pm, "to"));
		char what[128];
		pthread_t t;

		snprintf(what, sizeof(what), "%s:%s:%u -> vm:%u", proto ? proto : "?", addr ? addr : "", from,
			 to);
		if (!proto || strcmp(proto, "tcp")) {
			say("port forward %s: only tcp is forwarded by the process backend", what);
			continue;
		}
		struct fwd *f = malloc(sizeof(*f));

		if (!f)
			abort();
		f->vm_port = to;
		f->lfd = listen_tcp(addr && *addr ? addr : "127.0.0.1", from);
		if (f->lfd < 0) {
			say("port forward %s: cannot listen", what);
			free(f);
			continue;
		}
		if (pthread_create(&t, NULL, accept_loop, f) == 0)
			pthread_detach(t);
		say("port forward %s", what);
	}
}

/* ---- the app ------------------------------------------------------------ */

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

/* In a fresh network namespace only `lo` exists, and it is down. */
static int loopback_up(void)
{
	struct ifreq ifr = {0};
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = -1;

	if (fd < 0)
		return -1;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP;
		rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
	}
	close(fd);
	return rc;
}

static void on_term(int sig)
{
	(void)sig;
	term_requested = 1;
}

static void ensure_instance_info(const char *app_id)
{
	_cleanup_json_ json_t *info = load_json("shared/.instance_info"), *doc = NULL;
	const char *iid = json_string_value(json_object_get(info, "instance_id"));
	_cleanup_free_ char *text = NULL;
	uint8_t rnd[20];
	char hex[41];

	if (iid && *iid)
		return;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return;
	hex_encode(rnd, sizeof(rnd), hex);
	doc = json_pack("{s:s,s:s}", "app_id", app_id ? app_id : "", "instance_id", hex);
	text = json_dumps(doc, JSON_COMPACT);
	notify("instance.info", text);
}

int vmm_process_vm_main(const char *workdir, bool isolate_net)
{
	_cleanup_json_ json_t *sys = NULL, *compose = NULL, *manifest = NULL;
	const char *runner, *script;
	struct sigaction sa = {.sa_handler = on_term};
	pid_t child;
	int status = 0, sync[2];
	char isolated = '0';

	if (chdir(workdir) < 0) {
		perror("process-vm: chdir");
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	sys = load_json("shared/.sys-config.json");
	parse_host_api(json_string_value(json_object_get(sys, "host_api_url")));
	say("booting %s (simulated CVM, process backend)", workdir);
	notify("boot.progress", "init-script");
	compose = load_json("shared/app-compose.json");
	manifest = load_json("vm-manifest.json");
	if (!json_is_object(compose) || !json_is_object(manifest)) {
		notify("boot.error", "app-compose.json or vm-manifest.json is missing or not JSON");
		return 1;
	}
	ensure_instance_info(json_string_value(json_object_get(manifest, "app_id")));
	runner = json_string_value(json_object_get(compose, "runner"));
	if (!runner)
		runner = "docker-compose";
	if (!strcmp(runner, "docker-compose")) {
		if (!in_path("docker") && !in_path("podman")) {
			const char *msg =
			    "docker-compose apps need a container runtime (docker or podman), and "
			    "none is available to the process backend on this host; use runner \"bash\"";
			say("%s", msg);
			notify("boot.error", msg);
			return 1;
		}
		notify("boot.progress", "setting up docker");
		script = "exec docker compose -f shared/docker-compose.yaml up";
		if (file_write_atomic(
			"shared/docker-compose.yaml",
			json_string_value(json_object_get(compose, "docker_compose_file")) ?: "",
			strlen(json_string_value(json_object_get(compose, "docker_compose_file")) ?: ""),
			0644, NULL) < 0)
			return 1;
	} else if (!strcmp(runner, "bash")) {
		script = json_string_value(json_object_get(compose, "bash_script"));
		if (!script) {
			notify("boot.error", "runner bash needs bash_script");
			return 1;
		}
	} else {
		notify("boot.error", "unknown runner");
		return 1;
	}
	notify("boot.progress", "starting containers");
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (pipe2(sync, O_CLOEXEC) < 0) {
		notify("boot.error", "pipe failed");
		return 1;
	}
	child = fork();
	if (child < 0) {
		notify("boot.error", "fork failed");
		return 1;
	}
	if (child == 0) {
		isolated = isolate_net && unshare(CLONE_NEWNET) == 0 && loopback_up() == 0 ? '1' : '0';

		if (write(sync[1], &isolated, 1) != 1)
			_exit(127);
		close(sync[0]);
		close(sync[1]);
		signal(SIGPIPE, SIG_DFL);
		setenv("DSTACK_APP_ID", json_string_value(json_object_get(manifest, "app_id")) ?: "", 1);
		setenv("DSTACK_VM_ID", json_string_value(json_object_get(manifest, "id")) ?: "", 1);
		execl("/bin/bash", "bash", "-c", script, (char *)NULL);
		perror("process-vm: exec bash");
		_exit(127);
	}
	close(sync[1]);
	if (read(sync[0], &isolated, 1) == 1 && isolated == '1') {
		char ns[64];

		snprintf(ns, sizeof(ns), "/proc/%d/ns/net", (int)child);
		app_netns_fd = open(ns, O_RDONLY | O_CLOEXEC);
	}
	close(sync[0]);
	if (app_netns_fd >= 0)
		say("app runs in its own network namespace (loopback only); mapped ports are forwarded into "
		    "it");
	else
		say("app shares the host network namespace%s",
		    isolate_net ? " (could not create one: not root?)" : "");
	start_forwards(manifest);
	notify("boot.progress", "done");
	say("app started");
	for (;;) {
		pid_t r = waitpid(child, &status, 0);

		if (r == child)
			break;
		if (r < 0 && errno == EINTR && term_requested) {
			term_requested = 0;
			notify("shutdown.progress", "stopping app");
			kill(child, SIGTERM);
		} else if (r < 0 && errno != EINTR) {
			break;
		}
	}
	say("app exited (%s)", WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "ok" : "failure");
	notify("shutdown.progress", "powering off");
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
