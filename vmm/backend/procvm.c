/*
 * procvm.c — `dstack-vmm process-vm <workdir>`: the guest of a process-
 * backend VM, run by the supervisor with the work directory as cwd and
 * stdout/stderr going to the VM's logs. It boots the way a CVM does, with
 * the guest's own programs, only without a kernel:
 *
 *   1. a fresh simulated TD (`td.json`: the TD's measurements and RTMRs),
 *   2. `dstack-util setup` on it: measures the app, gets the keys (KMS or
 *      local), decrypts the env, reports boot progress / errors and the
 *      instance info to the host API (the VM's unix socket),
 *   3. `dstack-guest-agent` on what setup wrote, its GuestApi on
 *      `<workdir>/guest-api.sock`,
 *   4. the app (`bash_script`) with the env setup decrypted,
 *
 * all inside the VM's own network namespace when it can have one (root).
 * Host ports mapped to the VM are forwarded into the namespace (TCP and
 * UDP), and host services on loopback named in `.sys-config.json` (KMS,
 * gateway, PCCS) plus loopback WireGuard endpoints of `dstack-wg0.conf`
 * are relayed out of it (relay.c). Setup failing leaves the VM up with its
 * boot error and no app. SIGTERM goes to the app and the agent; the agent
 * exiting (GuestApi Shutdown) stops the app; then the VM powers off.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/mem.h"
#include "prpc/client.h"
#include "simtee/td.h"
#include "vmm/backend/process.h"
#include "vmm/backend/relay.h"
#include "vmm/backend/runtime.h"
#include "vmm/rpc/guest.h"
#include "vmm/util.h"

#define WG_CONF "work/dstack-wg0.conf"
#define MAX_RELAYS 64

static char *host_sock, *host_path;
static char wd[PATH_MAX];
static struct relay_ns ns = {-1, -1};
static volatile sig_atomic_t term_requested;

static pthread_mutex_t relay_mu = PTHREAD_MUTEX_INITIALIZER;
static char *relays_done[MAX_RELAYS];
static size_t n_relays_done;

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

static char *wd_path(const char *rel)
{
	return path_join(wd, rel);
}

/* ---- network namespace and relays --------------------------------------- */

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

/* A child makes the namespace, we keep a handle on it and let the child go:
 * the namespace lives while this process (or anything inside it) does. */
static int make_netns(void)
{
	int up[2], hold[2], fd = -1;
	char ok = '0';
	pid_t pid;

	if (pipe2(up, O_CLOEXEC) < 0)
		return -1;
	if (pipe2(hold, O_CLOEXEC) < 0) {
		close(up[0]), close(up[1]);
		return -1;
	}
	pid = fork();
	if (pid == 0) {
		ok = unshare(CLONE_NEWNET) == 0 && loopback_up() == 0 ? '1' : '0';
		close(hold[1]);
		if (write(up[1], &ok, 1) != 1)
			_exit(1);
		(void)!read(hold[0], &ok, 1); /* until the parent has opened our namespace */
		_exit(0);
	}
	close(up[1]);
	close(hold[0]);
	if (pid > 0 && read(up[0], &ok, 1) == 1 && ok == '1') {
		char p[64];

		snprintf(p, sizeof(p), "/proc/%d/ns/net", (int)pid);
		fd = open(p, O_RDONLY | O_CLOEXEC);
	}
	close(up[0]);
	close(hold[1]);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	return fd;
}

/* What the VM leaves behind when it is killed: a daemon that left our
 * process group (wireguard-go, started by setup, makes its own session)
 * would survive the supervisor's group kill and keep the namespace alive.
 * A small reaper in a session of its own waits for this process to end,
 * then kills whatever still runs in the VM's namespace. Forked before any
 * thread exists. */
static void kill_ns_members(ino_t ino, dev_t dev)
{
	for (int round = 0; round < 3; round++) {
		DIR *d = opendir("/proc");
		struct dirent *de;
		int found = 0;

		if (!d)
			return;
		while ((de = readdir(d))) {
			int pid = atoi(de->d_name);
			char p[64];
			struct stat st;

			if (pid <= 1 || pid == getpid())
				continue;
			snprintf(p, sizeof(p), "/proc/%d/ns/net", pid);
			/* SIGTERM first: wireguard-go then removes its UAPI socket */
			if (stat(p, &st) == 0 && st.st_ino == ino && st.st_dev == dev &&
			    kill(pid, round ? SIGKILL : SIGTERM) == 0)
				found++;
		}
		closedir(d);
		if (!found)
			return;
		usleep(300 * 1000);
	}
}

static void start_ns_reaper(void)
{
	int p[2];
	struct stat st;
	pid_t pid;

	if (fstat(ns.vm_fd, &st) < 0 || pipe2(p, O_CLOEXEC) < 0)
		return;
	pid = fork();
	if (pid == 0) {
		char c;

		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		close(p[1]);
		setsid();
		while (read(p[0], &c, 1) < 0 && errno == EINTR)
			;
		kill_ns_members(st.st_ino, st.st_dev);
		_exit(0);
	}
	close(p[0]); /* p[1] stays open (close-on-exec) until this process ends */
}

/* Once per (protocol, address, port). */
static bool relay_claim(const char *proto, const char *ip, unsigned port)
{
	_cleanup_free_ char *key = xasprintf("%s:%s:%u", proto, ip, port);
	bool fresh = n_relays_done < MAX_RELAYS;

	pthread_mutex_lock(&relay_mu);
	for (size_t i = 0; i < n_relays_done && fresh; i++)
		fresh = strcmp(relays_done[i], key) != 0;
	if (fresh)
		relays_done[n_relays_done++] = TAKE_PTR(key);
	pthread_mutex_unlock(&relay_mu);
	return fresh;
}

static void relay_out(const char *proto, const char *ip, unsigned port, const char *what)
{
	struct err e = ERR_INIT;
	int rc;

	if (!relay_claim(proto, ip, port))
		return;
	rc = !strcmp(proto, "udp") ? relay_udp_start(&ns, true, ip, port, ip, port, &e)
				   : relay_tcp_start(&ns, true, ip, port, ip, port, &e);
	if (rc < 0)
		say("relay %s %s:%u (%s) to the host: %s", proto, ip, port, what, err_str(&e));
	else
		say("relay %s %s:%u (%s): VM -> host", proto, ip, port, what);
}

static void relay_url(const char *url, const char *what)
{
	char ip[16];
	unsigned port;

	if (relay_loopback_url(url, ip, &port))
		relay_out("tcp", ip, port, what);
}

/* Host services the guest is told about, when they live on host loopback. */
static void start_outbound(const json_t *sys, const json_t *plan)
{
	static const char *const lists[] = {"kms_urls", "gateway_urls"};
	json_t *v;
	size_t i;

	for (size_t k = 0; k < 2; k++)
		json_array_foreach(json_object_get(sys, lists[k]), i, v)
		    relay_url(json_string_value(v), lists[k]);
	relay_url(json_string_value(json_object_get(sys, "pccs_url")), "pccs_url");
	relay_url(json_string_value(json_object_get(sys, "host_api_url")), "host_api_url");
	relay_url(json_string_value(json_object_get(plan, "pccs_url")), "process.pccs_url");
}

/* WireGuard: the endpoints of the config setup writes after RegisterCvm. */
static void scan_wg_conf(void)
{
	_cleanup_free_ uint8_t *raw = NULL;
	size_t len;
	char *save = NULL;

	if (file_read_all(WG_CONF, 1 << 20, &raw, &len, NULL) < 0)
		return;
	for (char *line = strtok_r((char *)raw, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '='), *k = line, *v, ip[16];
		unsigned port;

		if (!eq)
			continue;
		*eq = 0;
		v = eq + 1;
		while (*k == ' ' || *k == '\t')
			k++;
		for (char *t = eq - 1; t >= k && (*t == ' ' || *t == '\t'); t--)
			*t = 0;
		while (*v == ' ' || *v == '\t')
			v++;
		v[strcspn(v, " \t\r")] = 0;
		if (!strcmp(k, "Endpoint") && relay_loopback_endpoint(v, ip, &port))
			relay_out("udp", ip, port, "WireGuard endpoint");
	}
}

static void *wg_watch(void *arg)
{
	struct timespec last = {0};

	(void)arg;
	for (;;) {
		struct stat st;

		if (stat(WG_CONF, &st) == 0 &&
		    (st.st_mtim.tv_sec != last.tv_sec || st.st_mtim.tv_nsec != last.tv_nsec)) {
			last = st.st_mtim;
			scan_wg_conf();
		}
		usleep(100 * 1000); /* the first handshake retries after 5 s: stay well under */
	}
	return NULL;
}

static void start_port_maps(const json_t *manifest)
{
	json_t *pm;
	size_t i;

	json_array_foreach(json_object_get(manifest, "port_map"), i, pm)
	{
		const char *proto = json_string_value(json_object_get(pm, "protocol"));
		const char *addr = json_string_value(json_object_get(pm, "address"));
		unsigned from = (unsigned)json_integer_value(json_object_get(pm, "from"));
		unsigned to = (unsigned)json_integer_value(json_object_get(pm, "to"));
		struct err e = ERR_INIT;
		int rc;

		if (!addr || !*addr)
			addr = "127.0.0.1";
		if (proto && !strcmp(proto, "tcp"))
			rc = relay_tcp_start(&ns, false, addr, from, "127.0.0.1", to, &e);
		else if (proto && !strcmp(proto, "udp"))
			rc = relay_udp_start(&ns, false, addr, from, "127.0.0.1", to, &e);
		else
			rc = err_set(&e, "unknown protocol");
		if (rc < 0)
			say("port forward %s:%s:%u -> vm:%u: %s", proto ? proto : "?", addr, from, to,
			    err_str(&e));
		else
			say("port forward %s:%s:%u -> vm:%u", proto, addr, from, to);
	}
}

/* ---- guest programs --------------------------------------------------------- */

static void on_term(int sig)
{
	(void)sig;
	term_requested = 1;
}

/* Our environment with `env` (strings) added or replacing; built before
 * fork, as the relay threads may hold the allocator's lock. */
static char **make_envp(const json_t *env)
{
	extern char **environ;
	size_t n = 0, k = 0;
	char **out;
	const char *key;
	json_t *v;

	while (environ[n])
		n++;
	out = calloc(n + json_object_size(env) + 1, sizeof(*out));
	if (!out)
		abort();
	for (size_t i = 0; i < n; i++) {
		size_t kl = strcspn(environ[i], "=");
		bool replaced = false;

		json_object_foreach((json_t *)env, key, v) replaced |=
		    strlen(key) == kl && !strncmp(key, environ[i], kl);
		if (!replaced)
			out[k++] = xstrdup(environ[i]);
	}
	json_object_foreach((json_t *)env, key, v) if (json_is_string(v)) out[k++] =
	    xasprintf("%s=%s", key, json_string_value(v));
	return out;
}

static void free_envp(char **envp)
{
	for (size_t i = 0; envp[i]; i++) {
		secure_zero(envp[i], strlen(envp[i]));
		free(envp[i]);
	}
	free(envp);
}

/* fork + exec inside the VM's namespace, with `env` added to our environment. */
static pid_t spawn(char *const argv[], const json_t *env)
{
	char **envp = make_envp(env);
	pid_t pid = fork();

	if (pid != 0) {
		free_envp(envp);
		return pid;
	}
	signal(SIGPIPE, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	if (ns.vm_fd >= 0 && setns(ns.vm_fd, CLONE_NEWNET) < 0)
		_exit(126);
	execve(argv[0], argv, envp);
	_exit(127);
}

/*
 * Signal one child we spawned. A child that has been reaped is recorded as -1,
 * and kill(-1, sig) would signal every process we may signal (as root: the
 * whole host), so only a real pid is ever passed on.
 */
static void signal_child(pid_t pid, int sig)
{
	if (pid > 1)
		kill(pid, sig);
}

/* Wait for pid; a stop request is passed on to it. */
static int wait_for(pid_t pid, int *status)
{
	for (;;) {
		pid_t r = waitpid(pid, status, 0);

		if (r == pid)
			return 0;
		if (r < 0 && errno == EINTR) {
			if (term_requested) {
				kill(pid, SIGTERM);
				term_requested = 0;
			}
			continue;
		}
		return -1;
	}
}

static char *status_text(int st)
{
	return WIFEXITED(st) ? xasprintf("exit status %d", WEXITSTATUS(st))
			     : xasprintf("signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* Boot failed: report, keep the VM up (showing the error) until stopped. */
static int boot_failed(const char *msg, bool report)
{
	sigset_t none;

	say("boot failed: %s", msg);
	if (report)
		notify("boot.error", msg);
	sigemptyset(&none);
	while (!term_requested)
		sigsuspend(&none);
	notify("shutdown.progress", "powering off");
	return 1;
}

/* WireGuard interface name, unique on the host (wireguard-go's UAPI socket
 * lives in the shared /var/run/wireguard): "dw" + 13 hex digits of the VM id. */
static void wg_ifname(const char *vm_id, char out[16])
{
	size_t k = 0;

	memcpy(out, "dw", 2);
	for (const char *c = vm_id ? vm_id : ""; *c && k < 13; c++)
		if ((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f'))
			out[2 + k++] = *c;
	out[2 + k] = 0;
}

static int run_setup(const json_t *plan, const char *vm_id)
{
	_cleanup_free_ char *work = wd_path("work"), *shared = wd_path("shared"), *td = wd_path("td.json");
	_cleanup_free_ char *rt = wd_path("rt");
	const char *util = json_string_value(json_object_get(plan, "dstack_util"));
	const char *pccs = json_string_value(json_object_get(plan, "pccs_url"));
	char *argv[28], wg_if[16];
	size_t n = 0;
	int st = 0;
	pid_t pid;

	argv[n++] = (char *)(util ? util : "dstack-util");
	argv[n++] = "setup";
	argv[n++] = "--work-dir";
	argv[n++] = work;
	argv[n++] = "--host-shared";
	argv[n++] = shared;
	argv[n++] = "--tee";
	argv[n++] = "simtee";
	argv[n++] = "--simtee-dir";
	argv[n++] = (char *)json_string_value(json_object_get(plan, "simtee_dir"));
	argv[n++] = "--simtee-state";
	argv[n++] = td;
	argv[n++] = "--runtime-events-dir";
	argv[n++] = rt;
	argv[n++] = "--dev-root-ca";
	argv[n++] = (char *)json_string_value(json_object_get(plan, "dev_root_ca"));
	if (pccs && *pccs) {
		argv[n++] = "--pccs-url";
		argv[n++] = (char *)pccs;
	}
	if (ns.vm_fd >= 0) { /* WireGuard comes up inside the VM's namespace */
		wg_ifname(vm_id, wg_if);
		argv[n++] = "--wg-interface";
		argv[n++] = wg_if;
	} else { /* never on the host's own network */
		argv[n++] = "--no-wg-up";
	}
	argv[n] = NULL;
	if (!argv[9] || !argv[15])
		return boot_failed("process-vm.json lacks simtee_dir or dev_root_ca", true), -1;
	say("boot: %s setup (simulated TDX, PKI %s)", argv[0], argv[9]);
	pid = spawn(argv, NULL);
	if (pid < 0 || wait_for(pid, &st) < 0)
		return boot_failed("cannot run dstack-util setup", true), -1;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	_cleanup_free_ char *why = status_text(st), *msg = xasprintf("dstack-util setup failed (%s)", why);
	/* exit status 1: setup has reported its own boot.error */
	boot_failed(msg, !(WIFEXITED(st) && WEXITSTATUS(st) == 1));
	return -1;
}

static pid_t start_agent(const json_t *plan)
{
	_cleanup_free_ char *conf = wd_path("work/agent.json"), *dsock = wd_path("work/dstack.sock");
	_cleanup_free_ char *tsock = wd_path("work/tappd.sock"), *gsock = wd_path(VMM_GUEST_API_SOCK);
	_cleanup_free_ char *gapi = xasprintf("unix:%s", gsock), *ext = NULL;
	const char *agent = json_string_value(json_object_get(plan, "guest_agent"));
	json_int_t port = json_integer_value(json_object_get(plan, "agent_port"));
	pid_t pid;

	if (strlen(dsock) >= 108 || strlen(gsock) >= 108 || strlen(tsock) >= 108) {
		say("work directory path too long for the agent's unix sockets");
		return -1;
	}
	/* Without its own namespace the VM would take the port from the host and other VMs. */
	ext = ns.vm_fd >= 0 && port > 0 && port < 65536 ? xasprintf("tcp:0.0.0.0:%d", (int)port)
							: xstrdup("none");
	unlink(dsock), unlink(tsock), unlink(gsock);
	char *argv[] = {(char *)(agent ? agent : "dstack-guest-agent"),
			"-c",
			conf,
			"--dstack-sock",
			dsock,
			"--tappd-sock",
			tsock,
			"--external",
			ext,
			"--guest-api",
			gapi,
			NULL};
	pid = spawn(argv, NULL);
	if (pid < 0)
		return -1;
	for (int i = 0; i < 200 && !file_exists(dsock); i++) {
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return -1;
		usleep(50 * 1000);
	}
	say("guest agent running (pid %d, GuestApi %s)", (int)pid, gsock);
	return pid;
}

/* The app's command line from the compose, or an error message. */
static const char *app_script(const json_t *compose, const char **script)
{
	const char *runner = json_string_value(json_object_get(compose, "runner"));

	if (!runner)
		runner = "docker-compose";
	if (!strcmp(runner, "bash")) {
		*script = json_string_value(json_object_get(compose, "bash_script"));
		return *script ? NULL : "runner bash needs bash_script";
	}
	if (!strcmp(runner, "docker-compose")) {
		struct err re = ERR_INIT;

		if (vmm_container_runtime_check(VMM_RUNTIME_PROBE_MS, NULL, &re) < 0) {
			say("%s", err_str(&re));
			return "docker-compose apps need a container runtime (docker or podman) that "
			       "answers, "
			       "and none does on this host; use runner \"bash\"";
		}
		*script = "printf '%s' \"$DSTACK_COMPOSE_YAML\" > work/docker-compose.yaml && "
			  "exec docker compose -f work/docker-compose.yaml up";
		return NULL;
	}
	return "unknown runner";
}

/* ---- main ------------------------------------------------------------------ */

int vmm_process_vm_main(const char *workdir, bool isolate_net)
{
	_cleanup_json_ json_t *sys = NULL, *compose = NULL, *manifest = NULL, *plan = NULL, *env = NULL;
	struct sigaction sa = {.sa_handler = on_term}; /* no SA_RESTART: waits see EINTR */
	const char *script = NULL, *bad;
	struct err e = ERR_INIT;
	pid_t agent, app;
	int status = 0;
	pthread_t t;

	if (chdir(workdir) < 0 || !getcwd(wd, sizeof(wd))) {
		perror("process-vm: chdir");
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	sys = load_json("shared/.sys-config.json");
	parse_host_api(json_string_value(json_object_get(sys, "host_api_url")));
	say("booting %s (simulated CVM, process backend)", wd);
	compose = load_json("shared/app-compose.json");
	manifest = load_json("vm-manifest.json");
	plan = vmm_proc_plan_read(wd, &e);
	if (!json_is_object(compose) || !json_is_object(manifest) || !json_is_object(sys))
		return boot_failed(
		    "app-compose.json, .sys-config.json or vm-manifest.json is missing or not JSON", true);
	if (!plan)
		return boot_failed(err_str(&e), true);
	bad = app_script(compose, &script);
	if (bad)
		return boot_failed(bad, true);

	ns.host_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (isolate_net && ns.host_fd >= 0)
		ns.vm_fd = make_netns();
	if (ns.vm_fd >= 0)
		start_ns_reaper();
	if (ns.vm_fd >= 0)
		say("the VM has its own network namespace (loopback only): mapped ports are forwarded in, "
		    "host services on loopback relayed out");
	else
		say("the VM shares the host network namespace%s",
		    isolate_net ? " (could not create one: not root?)" : "");
	start_port_maps(manifest);
	if (ns.vm_fd >= 0) {
		start_outbound(sys, plan);
		if (pthread_create(&t, NULL, wg_watch, NULL) == 0)
			pthread_detach(t);
	}

	/* A fresh TD each boot: measurements and the runtime event log start over. */
	{
		_cleanup_free_ char *td = wd_path("td.json"), *rt = wd_path("rt");
		_cleanup_free_ char *log = path_join(rt, "runtime_events.log");

		unlink(log);
		unlink(WG_CONF);
		if (simtee_td_create(td, NULL, &e) < 0) {
			err_wrap(&e, "simulated TD");
			return boot_failed(err_str(&e), true);
		}
	}
	if (run_setup(plan, json_string_value(json_object_get(manifest, "id"))) < 0)
		return 1;
	if (term_requested)
		goto poweroff;
	agent = start_agent(plan);
	if (agent < 0)
		return boot_failed("the guest agent did not start (see stderr.log)", true);

	env = load_json("work/.decrypted-env.json");
	if (!json_is_object(env)) {
		json_decref(env);
		env = json_object();
	}
	json_object_set_new(env, "DSTACK_APP_ID",
			    json_string(json_string_value(json_object_get(manifest, "app_id")) ?: ""));
	json_object_set_new(env, "DSTACK_VM_ID",
			    json_string(json_string_value(json_object_get(manifest, "id")) ?: ""));
	{
		const char *yaml = json_string_value(json_object_get(compose, "docker_compose_file"));

		if (yaml)
			json_object_set_new(env, "DSTACK_COMPOSE_YAML", json_string(yaml));
	}
	char *argv[] = {"/bin/bash", "-c", (char *)script, NULL};
	app = spawn(argv, env);
	json_object_clear(env);
	if (app < 0) {
		signal_child(agent, SIGTERM);
		return boot_failed("fork failed", true);
	}
	say("app started (pid %d)", (int)app);

	for (bool stopping = false;;) {
		int st;
		pid_t r = waitpid(-1, &st, 0);

		if (r < 0 && errno == EINTR) {
			if (term_requested && !stopping) {
				stopping = true;
				notify("shutdown.progress", "stopping app");
				signal_child(app, SIGTERM);
				signal_child(agent, SIGTERM);
			}
			continue;
		}
		if (r < 0)
			break;
		if (r == agent) {
			agent = -1;
			if (!stopping) {
				say("guest agent exited: shutting down");
				stopping = true;
				notify("shutdown.progress", "stopping app");
				signal_child(app, SIGTERM);
			}
		} else if (r == app) {
			status = st;
			app = -1;
			signal_child(agent, SIGTERM);
		}
		if (app < 0 && agent < 0)
			break;
	}
	say("app exited (%s)", WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "ok" : "failure");
poweroff:
	notify("shutdown.progress", "powering off");
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
