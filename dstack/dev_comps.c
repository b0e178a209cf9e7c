/*
 * dev_comps.c — the components of `dstack dev`: the start-order table, how
 * each is started (argv and environment), where it answers its health check,
 * and starting one and waiting until it is healthy.
 *
 * Programs are looked up beside the running `dstack` (the build tree:
 * build/kms/dstack-kms, ...) and then in $PATH, never through a shell.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "dev.h"
#include "http/client.h"

const struct comp dev_comps[] = {
    {"simtee", NULL, NULL, H_TCP},
    {"auth-simple", "auth-simple", "../auth-simple/auth-simple", H_HTTP},
    {"kms-agent", "dstack-guest-agent", "../guest/dstack-guest-agent", H_UNIX},
    {"kms", "dstack-kms", "../kms/dstack-kms", H_HTTPS},
    {"gateway-agent", "dstack-guest-agent", "../guest/dstack-guest-agent", H_UNIX},
    {"gateway", "dstack-gateway", "../gateway/dstack-gateway", H_HTTPS},
    {"vmm", "dstack-vmm", "../vmm/dstack-vmm", H_HTTP},
};
const size_t dev_n_comps = ARRAY_SIZE(dev_comps);

char *dev_pathf(const char *fmt, ...)
{
	char *p = NULL;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&p, fmt, ap) < 0)
		p = NULL;
	va_end(ap);
	if (!p)
		abort();
	return p;
}

bool dev_skipped(const struct dev *d, const char *name)
{
	char k[64];
	snprintf(k, sizeof k, ",%s,", name);
	if (strstr(d->without, k))
		return true;
	if (!strcmp(name, "auth-simple") && strcmp(d->c.kms_auth, "webhook"))
		return true;
	if (!strcmp(name, "kms-agent") && strstr(d->without, ",kms,"))
		return true;
	if (!strcmp(name, "gateway-agent") &&
	    (strstr(d->without, ",kms,") || strstr(d->without, ",gateway,")))
		return true;
	return false;
}

uint16_t dev_comp_port(const struct dev *d, const struct comp *k)
{
	if (!strcmp(k->name, "simtee"))
		return d->c.simtee_port;
	if (!strcmp(k->name, "auth-simple"))
		return d->c.auth_port;
	if (!strcmp(k->name, "kms"))
		return d->c.kms_rpc_port;
	if (!strcmp(k->name, "gateway"))
		return d->c.gateway_rpc_port;
	return d->c.vmm_rpc_port;
}

char *dev_health_url(const struct dev *d, const struct comp *k)
{
	uint16_t p = dev_comp_port(d, k);
	switch (k->health) {
	case H_HTTPS:
		return dev_pathf("https://127.0.0.1:%u/health", p);
	case H_HTTP:
		return !strcmp(k->name, "vmm") ? dev_pathf("http://127.0.0.1:%u/prpc/Version?json", p)
					       : dev_pathf("http://127.0.0.1:%u/", p);
	case H_UNIX:
		return dev_pathf("unix:%s/%s/dstack.sock", d->dir,
				 !strcmp(k->name, "kms-agent") ? "kms-cvm" : "gateway-cvm");
	case H_TCP:
		break;
	}
	return dev_pathf("tcp://127.0.0.1:%u", p);
}

static bool tcp_open(uint16_t port)
{
	_cleanup_free_ char *url = dev_pathf("telnet://127.0.0.1:%u", port);
	CURL *h = curl_easy_init();
	if (!h)
		return false;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CONNECT_ONLY, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
	CURLcode rc = curl_easy_perform(h);
	curl_easy_cleanup(h);
	return rc == CURLE_OK;
}

static bool unix_open(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;
	if (fd < 0 || strlen(path) >= sizeof(a.sun_path)) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	memcpy(a.sun_path, path, strlen(path) + 1);
	ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

bool dev_healthy(const struct dev *d, const struct comp *k)
{
	if (k->health == H_TCP)
		return tcp_open(dev_comp_port(d, k));
	if (k->health == H_UNIX) {
		_cleanup_free_ char *url = dev_health_url(d, k);
		return unix_open(url + 5);
	}
	_cleanup_free_ char *url = dev_health_url(d, k);
	struct http_client_opts o = {.connect_timeout_ms = 1000, .timeout_ms = 3000, .insecure = true};
	struct http_response r = {0};
	bool ok = http_fetch(&o, "GET", url, NULL, NULL, 0, &r, NULL) == 0 && r.status == 200;
	http_response_free(&r);
	return ok;
}

void dev_sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

double dev_now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Build argv/env for a component. Strings owned by the caller's arrays. */
static int comp_command(const struct dev *d, const struct comp *k, char *argv[12], char *env[4],
			struct err *e)
{
	if (!k->prog) {
		argv[0] = strdup(d->dstack);
		argv[1] = strdup("simtee");
		argv[2] = strdup("serve");
		argv[3] = strdup("--dir");
		argv[4] = dev_pathf("%s/simtee", d->dir);
		argv[5] = strdup("--listen");
		argv[6] = dev_pathf("tcp:127.0.0.1:%u", d->c.simtee_port);
		return 0;
	}
	argv[0] = hostcfg_find_program(k->prog, k->build_rel);
	if (!argv[0])
		return err_set(e, "%s: program %s not found beside %s or in $PATH (not built yet?)", k->name,
			       k->prog, d->dstack);
	if (!strcmp(k->name, "kms-agent")) {
		argv[1] = strdup("--simulator");
		argv[2] = dev_pathf("%s/kms-cvm", d->dir);
		argv[3] = strdup("--simtee-dir");
		argv[4] = dev_pathf("%s/simtee", d->dir);
		return 0;
	}
	if (!strcmp(k->name, "gateway-agent")) {
		argv[1] = strdup("-c");
		argv[2] = dev_pathf("%s/gateway-cvm/work/agent.json", d->dir);
		argv[3] = strdup("--dstack-sock");
		argv[4] = dev_pathf("%s/gateway-cvm/dstack.sock", d->dir);
		argv[5] = strdup("--tappd-sock");
		argv[6] = dev_pathf("%s/gateway-cvm/tappd.sock", d->dir);
		argv[7] = strdup("--external");
		argv[8] = strdup("none");
		argv[9] = strdup("--guest-api");
		argv[10] = strdup("none");
		return 0;
	}
	if (!strcmp(k->name, "kms") && !dev_skipped(d, "kms-agent"))
		env[0] = dev_pathf("DSTACK_AGENT_ADDRESS=%s/kms-cvm/dstack.sock", d->dir);
	if (!strcmp(k->name, "gateway") && !dev_skipped(d, "gateway-agent"))
		env[0] = dev_pathf("DSTACK_AGENT_ADDRESS=%s/gateway-cvm/dstack.sock", d->dir);
	if (!strcmp(k->name, "auth-simple")) {
		env[0] = dev_pathf("PORT=%u", d->c.auth_port);
		env[1] = strdup("HOST=127.0.0.1");
		env[2] = dev_pathf("AUTH_CONFIG_PATH=%s/auth-config.json", d->dir);
		return 0;
	}
	argv[1] = strdup("-c");
	argv[2] = dev_pathf("%s/%s.toml", d->dir, k->name);
	return 0;
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i]);
		v[i] = NULL;
	}
}

int dev_start_comp(const struct dev *d, const struct comp *k, struct err *e)
{
	pid_t pid = dev_read_pid(d, k->name);
	if (pid > 0 && dev_healthy(d, k)) {
		printf("  %-12s already running (pid %d)\n", k->name, (int)pid);
		return 0;
	}
	if (pid > 0)
		return err_set(e, "%s: pid %d is running but not healthy; run `dstack dev down` first",
			       k->name, (int)pid);
	if (dev_healthy(d, k))
		return err_set(e,
			       "%s: port %u already answers, but not a process of this dev stack (another "
			       "stack running? change the port in build-config.sh)",
			       k->name, dev_comp_port(d, k));
	char *argv[12] = {0}, *env[4] = {0};
	if (comp_command(d, k, argv, env, e) < 0) {
		free_strv(argv, 12);
		free_strv(env, 4);
		return -1;
	}
	_cleanup_free_ char *lp = dev_log_path(d, k->name);
	pid = dev_spawn(d, k->name, argv, env, e);
	free_strv(argv, 12);
	free_strv(env, 4);
	if (pid < 0)
		return -1;
	if (dev_write_pid(d, k->name, pid, e) < 0)
		return -1;
	double deadline = dev_now_s() + d->timeout_s;
	for (;;) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			dev_print_log_tail(lp);
			return err_set(e, "%s exited during start-up (%s %d); its log is %s", k->name,
				       WIFEXITED(st) ? "status" : "signal",
				       WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), lp);
		}
		if (dev_healthy(d, k))
			break;
		if (dev_now_s() > deadline) {
			dev_print_log_tail(lp);
			_cleanup_free_ char *url = dev_health_url(d, k);
			return err_set(e, "%s (pid %d) not healthy after %d s (%s); its log is %s", k->name,
				       (int)pid, d->timeout_s, url, lp);
		}
		dev_sleep_ms(200);
	}
	printf("  %-12s running (pid %d), log %s\n", k->name, (int)pid, lp);
	return 0;
}

int dev_check_wg_link(const struct dev *d, struct err *e)
{
	const char *ifname = d->c.gateway_wg_interface;
	_cleanup_free_ char *wg = hostcfg_find_program("wg", NULL);
	_cleanup_free_ char *lp = dev_log_path(d, "gateway");
	char out[512];
	if (!wg)
		return err_set(e, "`wg` (wireguard-tools) is not in $PATH: the gateway configures its "
				  "WireGuard peers with it (apt-get install wireguard-tools)");
	char *argv[] = {wg, "show", (char *)ifname, "listen-port", NULL};
	int rc = dev_run_capture(argv, out, sizeof out);
	out[strcspn(out, "\n")] = '\0';
	if (rc == 0 && strtoul(out, NULL, 10) == d->c.gateway_wg_port)
		return 0;
	dev_print_log_tail(lp);
	return err_set(e,
		       "the gateway answers, but its WireGuard interface %s is missing or not set up "
		       "(`wg show %s listen-port`: %s), so no CVM could reach it. Creating it needs root "
		       "(CAP_NET_ADMIN) and the wireguard kernel module, or wireguard-go and /dev/net/tun; "
		       "the gateway's log %s says what failed",
		       ifname, ifname, *out ? out : "no output", lp);
}
