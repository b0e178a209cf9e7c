/*
 * cmd_dev.c — `dstack dev up | down | status [--dir DIR]`: one command from
 * a checkout to a running local dev stack (the operators' guide's dev
 * deployment), and back.
 *
 * `up` generates the host configuration (dstack hostcfg) in the state
 * directory, starts the simulated-TDX collateral service, auth-simple (with
 * KMS_AUTH=webhook), the KMS and the gateway (each behind the guest agent of
 * a simulated CVM of its own, which attests it), and the VMM as background
 * processes — each in its own session, with its log and a pid file in the
 * state directory — waits for each to answer its health check, then deploys
 * examples/hello with an env var encrypted to the KMS's app env key and
 * prints the curl commands that reach it through the gateway. `down` removes
 * the app VMs, stops every process it started (SIGTERM to the process group,
 * SIGKILL after a grace period) and removes the gateway's WireGuard link;
 * the state directory (keys, configs, logs) stays and is reused by the next
 * `up`. Pid files carry the process start time so a recycled pid is never
 * signalled.
 *
 * Programs are looked up beside the running `dstack` (the build tree:
 * build/kms/dstack-kms, ...) and then in $PATH, never through a shell.
 */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cmd.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/hex.h"
#include "core/mem.h"
#include "crypto/compose.h"
#include "crypto/envcrypt.h"
#include "crypto/envlist.h"
#include "hostcfg/hostcfg.h"
#include "http/client.h"
#include "simtee/td.h"

#define LOG_TAIL_LINES 8
#define COMPOSE_MAX (1024 * 1024)

struct dev {
	char *dir;     /* absolute state dir */
	char *dstack;  /* this binary */
	char *src_dir; /* source tree (for examples/), or NULL */
	struct hostcfg c;
	int timeout_s, app_timeout_s, grace_s, instances;
	const char *compose_path, *env_path, *image;
	char without[256]; /* ",name,name," */
};

enum health { H_TCP, H_HTTP, H_HTTPS, H_UNIX };

/* Components in start order; `down` walks it backwards. */
static const struct comp {
	const char *name;
	const char *prog;      /* file name, or NULL = this dstack binary */
	const char *build_rel; /* relative to this binary's directory */
	enum health health;
} comps[] = {
    {"simtee", NULL, NULL, H_TCP},
    {"auth-simple", "auth-simple", "../auth-simple/auth-simple", H_HTTP},
    {"kms-agent", "dstack-guest-agent", "../guest/dstack-guest-agent", H_UNIX},
    {"kms", "dstack-kms", "../kms/dstack-kms", H_HTTPS},
    {"gateway-agent", "dstack-guest-agent", "../guest/dstack-guest-agent", H_UNIX},
    {"gateway", "dstack-gateway", "../gateway/dstack-gateway", H_HTTPS},
    {"vmm", "dstack-vmm", "../vmm/dstack-vmm", H_HTTP},
};

static char *pathf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *pathf(const char *fmt, ...)
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

static bool skipped(const struct dev *d, const char *name)
{
	char k[64];
	snprintf(k, sizeof k, ",%s,", name);
	if (strstr(d->without, k))
		return true;
	if (!strcmp(name, "auth-simple") && strcmp(d->c.kms_auth, "webhook"))
		return true;
	/* The agents attest the KMS and the gateway, which the webhook policy of a
	 * fresh auth-config.json (no OS images, no apps) would refuse; with
	 * KMS_AUTH=webhook the operator fills it in and runs the agents by hand. */
	if ((!strcmp(name, "kms-agent") || !strcmp(name, "gateway-agent")) && strcmp(d->c.kms_auth, "dev"))
		return true;
	if (!strcmp(name, "kms-agent") && strstr(d->without, ",kms,"))
		return true;
	if (!strcmp(name, "gateway-agent") &&
	    (strstr(d->without, ",kms,") || strstr(d->without, ",gateway,")))
		return true;
	return false;
}

static uint16_t comp_port(const struct dev *d, const struct comp *k)
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

static char *health_url(const struct dev *d, const struct comp *k)
{
	uint16_t p = comp_port(d, k);
	switch (k->health) {
	case H_HTTPS:
		return pathf("https://127.0.0.1:%u/health", p);
	case H_HTTP:
		return !strcmp(k->name, "vmm") ? pathf("http://127.0.0.1:%u/prpc/Version?json", p)
					       : pathf("http://127.0.0.1:%u/", p);
	case H_UNIX:
		return pathf("unix:%s/%s/dstack.sock", d->dir,
			     !strcmp(k->name, "kms-agent") ? "kms-cvm" : "gateway-cvm");
	case H_TCP:
		break;
	}
	return pathf("tcp://127.0.0.1:%u", p);
}

/* ---- pid files ---------------------------------------------------------- */

/* Field 22 of /proc/<pid>/stat (start time in clock ticks), 0 if gone. */
static unsigned long long proc_start_time(pid_t pid)
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

static char *pid_path(const struct dev *d, const char *name)
{
	return pathf("%s/run/%s.pid", d->dir, name);
}

static char *log_path(const struct dev *d, const char *name)
{
	return pathf("%s/logs/%s.log", d->dir, name);
}

/* The live pid recorded for name, or 0. */
static pid_t read_pid(const struct dev *d, const char *name)
{
	_cleanup_free_ char *p = pid_path(d, name);
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
	return proc_start_time(pid) == st ? pid : 0;
}

static int write_pid(const struct dev *d, const char *name, pid_t pid, struct err *e)
{
	_cleanup_free_ char *p = pid_path(d, name);
	char line[64];
	snprintf(line, sizeof line, "%d %llu\n", (int)pid, proc_start_time(pid));
	return file_write_atomic(p, line, strlen(line), 0644, e);
}

/* ---- processes ---------------------------------------------------------- */

static pid_t spawn(const struct dev *d, const char *name, char *const argv[], char *const env[],
		   struct err *e)
{
	_cleanup_free_ char *lp = log_path(d, name);
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
static int run_wait(const struct dev *d, const char *logname, char *const argv[])
{
	struct err e = ERR_INIT;
	pid_t pid = spawn(d, logname, argv, NULL, &e);
	if (pid < 0)
		return -1;
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void print_log_tail(const char *path)
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

static bool tcp_open(uint16_t port)
{
	_cleanup_free_ char *url = pathf("telnet://127.0.0.1:%u", port);
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

static bool healthy(const struct dev *d, const struct comp *k)
{
	if (k->health == H_TCP)
		return tcp_open(comp_port(d, k));
	if (k->health == H_UNIX) {
		_cleanup_free_ char *url = health_url(d, k);
		return unix_open(url + 5);
	}
	_cleanup_free_ char *url = health_url(d, k);
	struct http_client_opts o = {.connect_timeout_ms = 1000, .timeout_ms = 3000, .insecure = true};
	struct http_response r = {0};
	bool ok = http_fetch(&o, "GET", url, NULL, NULL, 0, &r, NULL) == 0 && r.status == 200;
	http_response_free(&r);
	return ok;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static double now_s(void)
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
		argv[4] = pathf("%s/simtee", d->dir);
		argv[5] = strdup("--listen");
		argv[6] = pathf("tcp:127.0.0.1:%u", d->c.simtee_port);
		return 0;
	}
	argv[0] = hostcfg_find_program(k->prog, k->build_rel);
	if (!argv[0])
		return err_set(e, "%s: program %s not found beside %s or in $PATH (not built yet?)", k->name,
			       k->prog, d->dstack);
	if (!strcmp(k->name, "kms-agent")) {
		argv[1] = strdup("--simulator");
		argv[2] = pathf("%s/kms-cvm", d->dir);
		argv[3] = strdup("--simtee-dir");
		argv[4] = pathf("%s/simtee", d->dir);
		return 0;
	}
	if (!strcmp(k->name, "gateway-agent")) {
		argv[1] = strdup("-c");
		argv[2] = pathf("%s/gateway-cvm/work/agent.json", d->dir);
		argv[3] = strdup("--dstack-sock");
		argv[4] = pathf("%s/gateway-cvm/dstack.sock", d->dir);
		argv[5] = strdup("--tappd-sock");
		argv[6] = pathf("%s/gateway-cvm/tappd.sock", d->dir);
		argv[7] = strdup("--external");
		argv[8] = strdup("none");
		argv[9] = strdup("--guest-api");
		argv[10] = strdup("none");
		return 0;
	}
	if (!strcmp(k->name, "kms") && !skipped(d, "kms-agent"))
		env[0] = pathf("DSTACK_AGENT_ADDRESS=%s/kms-cvm/dstack.sock", d->dir);
	if (!strcmp(k->name, "gateway") && !skipped(d, "gateway-agent"))
		env[0] = pathf("DSTACK_AGENT_ADDRESS=%s/gateway-cvm/dstack.sock", d->dir);
	if (!strcmp(k->name, "auth-simple")) {
		env[0] = pathf("PORT=%u", d->c.auth_port);
		env[1] = strdup("HOST=127.0.0.1");
		env[2] = pathf("AUTH_CONFIG_PATH=%s/auth-config.json", d->dir);
		return 0;
	}
	argv[1] = strdup("-c");
	argv[2] = pathf("%s/%s.toml", d->dir, k->name);
	return 0;
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i]);
		v[i] = NULL;
	}
}

static int start_comp(const struct dev *d, const struct comp *k, struct err *e)
{
	pid_t pid = read_pid(d, k->name);
	if (pid > 0 && healthy(d, k)) {
		printf("  %-12s already running (pid %d)\n", k->name, (int)pid);
		return 0;
	}
	if (pid > 0)
		return err_set(e, "%s: pid %d is running but not healthy; run `dstack dev down` first",
			       k->name, (int)pid);
	if (healthy(d, k))
		return err_set(e,
			       "%s: port %u already answers, but not a process of this dev stack (another "
			       "stack running? change the port in build-config.sh)",
			       k->name, comp_port(d, k));
	char *argv[12] = {0}, *env[4] = {0};
	if (comp_command(d, k, argv, env, e) < 0) {
		free_strv(argv, 12);
		free_strv(env, 4);
		return -1;
	}
	_cleanup_free_ char *lp = log_path(d, k->name);
	pid = spawn(d, k->name, argv, env, e);
	free_strv(argv, 12);
	free_strv(env, 4);
	if (pid < 0)
		return -1;
	if (write_pid(d, k->name, pid, e) < 0)
		return -1;
	double deadline = now_s() + d->timeout_s;
	for (;;) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			print_log_tail(lp);
			return err_set(e, "%s exited during start-up (%s %d); its log is %s", k->name,
				       WIFEXITED(st) ? "status" : "signal",
				       WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), lp);
		}
		if (healthy(d, k))
			break;
		if (now_s() > deadline) {
			print_log_tail(lp);
			_cleanup_free_ char *url = health_url(d, k);
			return err_set(e, "%s (pid %d) not healthy after %d s (%s); its log is %s", k->name,
				       (int)pid, d->timeout_s, url, lp);
		}
		sleep_ms(200);
	}
	printf("  %-12s running (pid %d), log %s\n", k->name, (int)pid, lp);
	return 0;
}

/* ---- app deployment ----------------------------------------------------- */

static int rpc_json(const char *url, json_t *in, json_t **out, struct err *e)
{
	_cleanup_free_ char *body = json_dumps(in, JSON_COMPACT);
	const char *hdr[] = {"Content-Type: application/json", NULL};
	struct http_client_opts o = {.connect_timeout_ms = 3000, .timeout_ms = 60000, .insecure = true};
	struct http_response r = {0};
	if (!body)
		return err_set(e, "out of memory");
	if (http_fetch(&o, "POST", url, hdr, body, strlen(body), &r, e) < 0)
		return err_wrap(e, "%s", url);
	json_error_t je;
	json_t *j = json_loadb((const char *)r.body.data, r.body.len, JSON_DECODE_ANY, &je);
	if (r.status == 200 && !json_is_object(j)) {
		/* google.protobuf.Empty replies: whatever the body, success */
		json_decref(j);
		j = json_object();
	}
	if (r.status != 200 || !j || !json_is_object(j)) {
		json_t *msg = j ? json_object_get(j, "error") : NULL;
		err_set(e, "%s: HTTP %ld: %s", url, r.status,
			json_is_string(msg) ? json_string_value(msg) : (const char *)r.body.data);
		json_decref(j);
		http_response_free(&r);
		return -1;
	}
	http_response_free(&r);
	*out = j;
	return 0;
}

static char *state_file(const struct dev *d, const char *name)
{
	return pathf("%s/run/%s", d->dir, name);
}

static int encrypt_env(const struct dev *d, const char *app_id_hex, struct buf *blob, struct err *e)
{
	_cleanup_free_ char *url =
	    pathf("https://127.0.0.1:%u/prpc/GetAppEnvEncryptPubKey?json", d->c.kms_rpc_port);
	_cleanup_json_ json_t *req = json_pack("{s:s}", "app_id", app_id_hex), *resp = NULL;
	if (rpc_json(url, req, &resp, e) < 0)
		return err_wrap(e, "KMS env public key");
	const char *pub_hex = json_string_value(json_object_get(resp, "public_key"));
	uint8_t pub[32];
	if (!pub_hex || hex_decode_exact(pub_hex, pub, 32, e) < 0)
		return err_set(e, "KMS env public key: no 32-byte public_key in the reply");
	uint8_t *text = NULL;
	size_t n;
	if (file_read_all(d->env_path, ENV_TOTAL_MAX, &text, &n, e) < 0)
		return err_wrap(e, "env file");
	struct env_list l = ENV_LIST_INIT;
	_cleanup_buf_ struct buf plain = BUF_INIT;
	int rc = env_file_parse((char *)text, n, &l, e);
	secure_zero(text, n);
	free(text);
	if (rc == 0)
		rc = env_list_validate(&l, e);
	if (rc == 0)
		rc = env_plaintext_build(&l, &plain, e);
	env_list_free(&l);
	if (rc == 0)
		rc = env_envelope_encrypt(pub, plain.data, plain.len, blob, e);
	secure_zero(plain.data, plain.len);
	return rc < 0 ? err_wrap(e, "%s", d->env_path) : 0;
}

/*
 * The image of simulated CVMs: the VMM's process backend runs the app from
 * the compose on the host and never boots the kernel, but an image entry
 * (metadata.json naming a kernel and an initrd) is still required.
 */
static int ensure_dev_image(const struct dev *d, struct err *e)
{
	static const char md[] =
	    "{\"cmdline\": \"console=ttyS0\", \"kernel\": \"bzImage\", "
	    "\"initrd\": \"initramfs.cpio.gz\", \"version\": \"0.6.0\", \"is_dev\": true}\n";
	if (strcmp(d->image, "dstack-dev"))
		return 0;
	_cleanup_free_ char *dir = pathf("%s/vmm/image/dstack-dev", d->dir);
	_cleanup_free_ char *mdp = pathf("%s/metadata.json", dir);
	_cleanup_free_ char *k = pathf("%s/bzImage", dir), *i = pathf("%s/initramfs.cpio.gz", dir);
	if (file_exists(mdp))
		return 0;
	if (mkdir_p(dir, 0755, e) < 0 || file_write_atomic(k, "", 0, 0644, e) < 0 ||
	    file_write_atomic(i, "", 0, 0644, e) < 0 || file_write_atomic(mdp, md, strlen(md), 0644, e) < 0)
		return err_wrap(e, "dev image");
	printf("  vmm          created the simulated-CVM image %s\n", dir);
	return 0;
}

static int deploy_app(const struct dev *d, char app_id_hex[41], struct err *e)
{
	uint8_t *compose = NULL, hash[32], app_id[20];
	size_t n;
	if (file_read_all(d->compose_path, COMPOSE_MAX, &compose, &n, e) < 0)
		return err_wrap(e, "app compose");
	compose_hash(compose, n, hash);
	compose_default_app_id(hash, app_id);
	hex_encode(app_id, 20, app_id_hex);
	_cleanup_buf_ struct buf blob = BUF_INIT;
	if (encrypt_env(d, app_id_hex, &blob, e) < 0) {
		free(compose);
		return -1;
	}
	_cleanup_free_ char *blob_hex = hex_encode_alloc(blob.data, blob.len);
	_cleanup_free_ char *url = pathf("http://127.0.0.1:%u/prpc/CreateVm?json", d->c.vmm_rpc_port);
	_cleanup_free_ char *kms = pathf("https://%s:%u", d->c.kms_domain, d->c.kms_rpc_port);
	_cleanup_free_ char *gw = pathf("https://%s:%u", d->c.gateway_domain, d->c.gateway_rpc_port);
	_cleanup_free_ char *ids_path = state_file(d, "app-vms");
	struct buf ids = BUF_INIT;
	int rc = 0;
	for (int i = 1; i <= d->instances && rc == 0; i++) {
		char name[32];
		snprintf(name, sizeof name, "hello-%d", i);
		_cleanup_json_ json_t *req =
		    json_pack("{s:s, s:s, s:s%, s:i, s:i, s:i, s:s, s:s, s:[s], s:[s], s:s}", "name", name,
			      "image", d->image, "compose_file", (const char *)compose, n, "vcpu", 1,
			      "memory", 512, "disk_size", 1, "encrypted_env", blob_hex, "app_id", app_id_hex,
			      "kms_urls", kms, "gateway_urls", gw, "simulated_tee", "dstack-tdx");
		_cleanup_json_ json_t *resp = NULL;
		if (!req) {
			rc = err_set(e, "out of memory");
			break;
		}
		rc = rpc_json(url, req, &resp, e);
		if (rc < 0) {
			err_wrap(e, "VMM CreateVm");
			break;
		}
		const char *id = json_string_value(json_object_get(resp, "id"));
		buf_printf(&ids, "%s\n", id ? id : "");
		printf("  app          instance %s: VM %s\n", name, id ? id : "?");
	}
	free(compose);
	if (ids.len && file_write_atomic(ids_path, ids.data, ids.len, 0644, NULL) < 0)
		rc = -1;
	buf_free(&ids);
	if (rc == 0) {
		_cleanup_free_ char *p = state_file(d, "app-id");
		char line[42];
		snprintf(line, sizeof line, "%s\n", app_id_hex);
		rc = file_write_atomic(p, line, strlen(line), 0644, e);
	}
	return rc;
}

/* GET url through the gateway, resolving its host to 127.0.0.1 and trusting
 * the dev CA. Returns the HTTP status (0 on transport failure). */
static long gateway_get(const struct dev *d, const char *host, const char *url, struct buf *body)
{
	_cleanup_free_ char *ca = pathf("%s/certs/dev-ca.crt", d->dir);
	_cleanup_free_ char *res = pathf("%s:%u:127.0.0.1", host, d->c.gateway_serving_port);
	struct curl_slist *rl = curl_slist_append(NULL, res);
	CURL *h = curl_easy_init();
	long code = 0;
	if (!h || !rl)
		goto out;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_RESOLVE, rl);
	curl_easy_setopt(h, CURLOPT_CAINFO, ca);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	FILE *f = body ? open_memstream((char **)&body->data, &body->len) : fopen("/dev/null", "we");
	if (!f)
		goto out;
	curl_easy_setopt(h, CURLOPT_WRITEDATA, f);
	if (curl_easy_perform(h) == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	fclose(f);
	if (body)
		body->cap = body->len + 1;
out:
	if (h)
		curl_easy_cleanup(h);
	curl_slist_free_all(rl);
	return code;
}

static void print_urls(const struct dev *d, const char *app_id)
{
	static const struct {
		uint16_t port;
		char suffix;
		const char *what, *flags;
	} forms[] = {{0, 0, "basic (port 80 in the CVM)", ""},
		     {8080, 0, "custom port", ""},
		     {443, 's', "TLS passthrough (the app terminates TLS)", "-k "},
		     {50051, 'g', "HTTP/2 (gateway terminates TLS, h2 to the app)", "--http2 "}};
	printf("\nThe app (app id %s) through the gateway:\n", app_id);
	for (size_t i = 0; i < ARRAY_SIZE(forms); i++) {
		_cleanup_free_ char *url = hostcfg_app_url(&d->c, app_id, forms[i].port, forms[i].suffix);
		const char *host = url + strlen("https://");
		size_t hl = strcspn(host, ":/");
		if (forms[i].suffix == 's')
			printf("  # %s\n  curl %s--resolve %.*s:%u:127.0.0.1 %s\n", forms[i].what,
			       forms[i].flags, (int)hl, host, d->c.gateway_serving_port, url);
		else
			printf(
			    "  # %s\n  curl %s--cacert %s/certs/dev-ca.crt --resolve %.*s:%u:127.0.0.1 %s\n",
			    forms[i].what, forms[i].flags, d->dir, (int)hl, host, d->c.gateway_serving_port,
			    url);
	}
}

/* Instances of app_id in the gateway's admin Status, or -1. */
static int gateway_hosts(const struct dev *d, const char *app_id)
{
	_cleanup_free_ char *tok_path = pathf("%s/certs/gateway-admin.token", d->dir);
	_cleanup_free_ char *url = pathf("http://127.0.0.1:%u/prpc/Status?json", d->c.gateway_admin_port);
	uint8_t *tok = NULL;
	size_t n;
	if (file_read_all(tok_path, 128, &tok, &n, NULL) < 0)
		return -1;
	tok[strcspn((char *)tok, "\r\n")] = '\0';
	char *auth = pathf("Authorization: Bearer %s", (char *)tok);
	secure_zero(tok, n);
	free(tok);
	const char *hdr[] = {auth, NULL};
	struct http_client_opts o = {.connect_timeout_ms = 2000, .timeout_ms = 5000};
	struct http_response r = {0};
	int count = -1;
	if (http_fetch(&o, "GET", url, hdr, NULL, 0, &r, NULL) == 0 && r.status == 200) {
		json_t *j = json_loadb((const char *)r.body.data, r.body.len, 0, NULL);
		json_t *h = json_object_get(j, "hosts");
		size_t i;
		json_t *v;
		count = 0;
		json_array_foreach(h, i, v)
		{
			const char *a = json_string_value(json_object_get(v, "app_id"));
			if (a && !strcmp(a, app_id))
				count++;
		}
		json_decref(j);
	}
	http_response_free(&r);
	secure_zero(auth, strlen(auth));
	free(auth);
	return count;
}

static int wait_app(const struct dev *d, const char *app_id, struct err *e)
{
	_cleanup_free_ char *url = hostcfg_app_url(&d->c, app_id, 0, 0);
	_cleanup_free_ char *host = pathf("%s.%s", app_id, d->c.gateway_public_domain);
	double deadline = now_s() + d->app_timeout_s;
	while (now_s() < deadline) {
		struct buf b = BUF_INIT;
		long code = gateway_get(d, host, url, &b);
		if (code == 200) {
			printf("  app          answers: %.*s", (int)b.len, b.data ? (char *)b.data : "");
			buf_free(&b);
			return 0;
		}
		buf_free(&b);
		sleep_ms(1000);
	}
	/* Say which step is missing: registration with the gateway, or the
	 * data path to a registered instance. */
	int hosts = gateway_hosts(d, app_id);
	if (hosts < 0)
		return err_set(
		    e,
		    "the app did not answer at %s within %d s, and the gateway admin API did not answer "
		    "(see %s/logs/gateway.log)",
		    url, d->app_timeout_s, d->dir);
	if (hosts == 0)
		return err_set(
		    e,
		    "the app did not answer at %s within %d s: no instance of app %s registered with the "
		    "gateway (the CVM's boot did not reach RegisterCvm; see the VM logs under %s/vmm/vm/ "
		    "and %s/logs/gateway.log)",
		    url, d->app_timeout_s, app_id, d->dir, d->dir);
	return err_set(
	    e,
	    "the app did not answer at %s within %d s although %d instance(s) are registered with the "
	    "gateway (WireGuard handshake? see %s/logs/gateway.log and the VM logs under %s/vmm/vm/)",
	    url, d->app_timeout_s, hosts, d->dir, d->dir);
}

/* ---- set-up ------------------------------------------------------------- */

static int load_config(struct dev *d, bool generate, struct err *e)
{
	_cleanup_free_ char *script = pathf("%s/build-config.sh", d->dir);
	if (generate) {
		char *argv[] = {"hostcfg", "--dir", d->dir, NULL};
		if (!file_exists(script)) {
			if (cmd_hostcfg(3, argv) != 0)
				return err_set(e, "dstack hostcfg failed");
			printf("dstack dev up: using these defaults now; after editing build-config.sh, "
			       "`dstack dev "
			       "down` and `dstack dev up` apply the change.\n");
		}
		if (cmd_hostcfg(3, argv) != 0)
			return err_set(e, "dstack hostcfg failed");
	}
	uint8_t *text = NULL;
	size_t n;
	if (file_read_all(script, 256 * 1024, &text, &n, e) < 0)
		return err_wrap(e, "no dev stack here (run `dstack dev up`)");
	int rc = hostcfg_parse((char *)text, n, d->dir, &d->c, e);
	secure_zero(text, n);
	free(text);
	return rc;
}

static int ensure_simtee(const struct dev *d, struct err *e)
{
	_cleanup_free_ char *root = pathf("%s/simtee/root_ca.pem", d->dir);
	if (file_exists(root))
		return 0;
	_cleanup_free_ char *sdir = pathf("%s/simtee", d->dir);
	char *argv[] = {d->dstack, "simtee", "init", sdir, NULL};
	if (run_wait(d, "simtee", argv) != 0)
		return err_set(e, "dstack simtee init failed; see %s/logs/simtee.log", d->dir);
	printf("  simtee       created the simulated-TDX PKI in %s\n", sdir);
	return 0;
}

/*
 * The KMS's and the gateway's own CVMs, simulated. Both attest themselves
 * through the guest agent of the CVM they run in: the KMS its RPC
 * certificate (CVMs only accept a KMS whose certificate carries that
 * attestation), the gateway gets its RPC certificate from the KMS through
 * its agent (CVMs only register with a gateway whose certificate chains to
 * the KMS root). On a dev host both run on the host, so each gets a guest
 * agent (components kms-agent and gateway-agent) over a boot of
 * `dstack-util setup` on the simulated TDX: key provider none for the KMS,
 * the KMS itself for the gateway.
 */
static int boot_sim_cvm(const struct dev *d, const char *name, const char *dir, const char *compose,
			const char *kms_urls_json, struct err *e)
{
	_cleanup_free_ char *shared = pathf("%s/shared", dir), *work = pathf("%s/work", dir);
	_cleanup_free_ char *td = pathf("%s/td.json", dir), *rt = pathf("%s/rt", dir);
	_cleanup_free_ char *rtlog = pathf("%s/runtime_events.log", rt);
	_cleanup_free_ char *sdir = pathf("%s/simtee", d->dir),
			    *root = pathf("%s/simtee/root_ca.pem", d->dir);
	_cleanup_free_ char *pccs = pathf("http://127.0.0.1:%u", d->c.simtee_port);
	_cleanup_free_ char *sys =
	    pathf("{\"kms_urls\":%s,\"gateway_urls\":[],\"pccs_url\":\"%s\",\"vm_config\":"
		  "\"{\\\"os_image_hash\\\":\\\"%064d\\\"}\"}\n",
		  kms_urls_json, pccs, 0);
	_cleanup_free_ char *p1 = pathf("%s/app-compose.json", shared),
			    *p2 = pathf("%s/.sys-config.json", shared);
	_cleanup_free_ char *util = hostcfg_find_program("dstack-util", "../guest/dstack-util");
	if (!util)
		return err_set(e, "%s: dstack-util not found beside %s or in $PATH", name, d->dstack);
	/* a fresh TD: its RTMRs and the runtime event log start over */
	unlink(rtlog);
	if (mkdir_p(shared, 0700, e) < 0 || file_write_atomic(p1, compose, strlen(compose), 0644, e) < 0 ||
	    file_write_atomic(p2, sys, strlen(sys), 0644, e) < 0 || simtee_td_create(td, NULL, e) < 0)
		return err_wrap(e, "%s: simulated CVM", name);
	char *argv[] = {util,
			"setup",
			"--work-dir",
			work,
			"--host-shared",
			shared,
			"--tee",
			"simtee",
			"--simtee-dir",
			sdir,
			"--simtee-state",
			td,
			"--runtime-events-dir",
			rt,
			"--pccs-url",
			pccs,
			"--dev-root-ca",
			root,
			"--no-wg-up",
			NULL};
	if (run_wait(d, name, argv) != 0)
		return err_set(e, "%s: dstack-util setup of its simulated CVM failed; see %s/logs/%s.log",
			       name, d->dir, name);
	printf("  %-12s booted its simulated CVM in %s\n", name, dir);
	return 0;
}

static int ensure_kms_cvm(const struct dev *d, struct err *e)
{
	static const char compose[] = "{\"manifest_version\":2,\"name\":\"dstack-kms\",\"runner\":\"bash\","
				      "\"bash_script\":\"exec dstack-kms\",\"key_provider\":\"none\","
				      "\"storage_fs\":\"ext4\"}\n";
	_cleanup_free_ char *cvm = pathf("%s/kms-cvm", d->dir), *boot = pathf("%s/kms-cvm/boot", d->dir);
	_cleanup_free_ char *keys = pathf("%s/appkeys.json", cvm), *work = pathf("%s/work", boot);
	if (file_exists(keys))
		return 0;
	if (boot_sim_cvm(d, "kms-agent", boot, compose, "[]", e) < 0)
		return -1;
	/* the agent's simulator mode serves these three files */
	static const char *const files[][2] = {{".sys-config.json", "sys-config.json"},
					       {"app-compose.json", "app-compose.json"},
					       {".appkeys.json", "appkeys.json"}};
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		_cleanup_free_ char *from = pathf("%s/%s", work, files[i][0]),
				    *to = pathf("%s/%s", cvm, files[i][1]);
		uint8_t *t = NULL;
		size_t n;
		int rc = file_read_all(from, 1 << 20, &t, &n, e);
		if (rc == 0)
			rc = file_write_atomic(to, t, n, 0600, e);
		if (t)
			secure_zero(t, n);
		free(t);
		if (rc < 0)
			return err_wrap(e, "the KMS's simulated CVM");
	}
	return 0;
}

/* Booted at every start of its agent (the KMS must be up). */
static int boot_gateway_cvm(const struct dev *d, struct err *e)
{
	static const char compose[] =
	    "{\"manifest_version\":2,\"name\":\"dstack-gateway\",\"runner\":\"bash\","
	    "\"bash_script\":\"exec dstack-gateway\",\"kms_enabled\":true,"
	    "\"key_provider\":\"kms\",\"storage_fs\":\"ext4\"}\n";
	_cleanup_free_ char *dir = pathf("%s/gateway-cvm", d->dir);
	_cleanup_free_ char *kms = pathf("[\"https://%s:%u\"]", d->c.kms_domain, d->c.kms_rpc_port);
	return boot_sim_cvm(d, "gateway-agent", dir, compose, kms, e);
}

/* ---- down --------------------------------------------------------------- */

static bool wait_gone(pid_t pid, int ms)
{
	for (int t = 0; t < ms; t += 100) {
		waitpid(pid, NULL, WNOHANG);
		if (kill(pid, 0) < 0 && errno == ESRCH)
			return true;
		if (proc_start_time(pid) == 0)
			return true;
		sleep_ms(100);
	}
	return false;
}

static void stop_pid(const char *name, pid_t pid, int grace_s)
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

static void remove_vms(const struct dev *d)
{
	_cleanup_free_ char *p = state_file(d, "app-vms");
	uint8_t *text = NULL;
	size_t n;
	if (file_read_all(p, 64 * 1024, &text, &n, NULL) < 0)
		return;
	if (read_pid(d, "vmm") > 0) {
		_cleanup_free_ char *url = pathf("http://127.0.0.1:%u/prpc/RemoveVm?json", d->c.vmm_rpc_port);
		for (char *save = NULL, *id = strtok_r((char *)text, "\n", &save); id;
		     id = strtok_r(NULL, "\n", &save)) {
			_cleanup_json_ json_t *req = json_pack("{s:s}", "id", id), *resp = NULL;
			struct err e = ERR_INIT;
			if (rpc_json(url, req, &resp, &e) < 0)
				fprintf(stderr, "  app          RemoveVm %s: %s\n", id, err_str(&e));
			else
				printf("  app          removed VM %s\n", id);
		}
	}
	free(text);
	unlink(p);
}

/* Does /proc/<pid> belong to this stack: its working directory is inside
 * the state dir (the supervisor, process-backend VMs and their apps), or it
 * is a wireguard-go daemon serving our interface (it outlives the gateway)? */
static bool ours(const struct dev *d, int pid)
{
	char p[64], cwd[PATH_MAX], cmd[512];
	snprintf(p, sizeof p, "/proc/%d/cwd", pid);
	ssize_t n = readlink(p, cwd, sizeof cwd - 1);
	size_t dl = strlen(d->dir);
	if (n > 0) {
		cwd[n] = '\0';
		if (!strncmp(cwd, d->dir, dl) && (cwd[dl] == '\0' || cwd[dl] == '/'))
			return true;
	}
	snprintf(p, sizeof p, "/proc/%d/cmdline", pid);
	FILE *f = fopen(p, "re");
	if (!f)
		return false;
	size_t len = fread(cmd, 1, sizeof cmd - 1, f);
	fclose(f);
	cmd[len] = '\0';
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
 * gateway's wireguard-go. Only processes tied to this state dir. */
static void sweep(const struct dev *d)
{
	for (int round = 0; round < 3; round++) {
		DIR *proc = opendir("/proc");
		struct dirent *de;
		int found = 0;
		if (!proc)
			return;
		while ((de = readdir(proc))) {
			int pid = atoi(de->d_name);
			if (pid <= 1 || pid == getpid() || proc_start_time(pid) == 0 || !ours(d, pid))
				continue;
			char name[64] = "process", p[64];
			snprintf(p, sizeof p, "/proc/%d/comm", pid);
			FILE *f = fopen(p, "re");
			if (f) {
				if (fgets(name, sizeof name, f))
					name[strcspn(name, "\n")] = '\0';
				fclose(f);
			}
			stop_pid(name, pid, d->grace_s);
			found++;
		}
		closedir(proc);
		if (!found)
			break;
	}
}

static void remove_link(const struct dev *d)
{
	_cleanup_free_ char *p = pathf("/sys/class/net/%s", d->c.gateway_wg_interface);
	if (!file_exists(p))
		return;
	char *argv[] = {"/sbin/ip", "link", "del", d->c.gateway_wg_interface, NULL};
	if (access(argv[0], X_OK) != 0)
		argv[0] = "/usr/sbin/ip";
	if (run_wait(d, "gateway", argv) == 0)
		printf("  %-12s removed link %s\n", "wireguard", d->c.gateway_wg_interface);
	else
		fprintf(stderr, "  wireguard    could not remove link %s (see %s/logs/gateway.log)\n",
			d->c.gateway_wg_interface, d->dir);
}

static int dev_down(struct dev *d)
{
	struct err e = ERR_INIT;
	if (load_config(d, false, &e) < 0) {
		fprintf(stderr, "dstack dev down: %s\n", err_str(&e));
		return 1;
	}
	printf("dstack dev down: %s\n", d->dir);
	remove_vms(d);
	for (size_t i = ARRAY_SIZE(comps); i-- > 0;) {
		pid_t pid = read_pid(d, comps[i].name);
		_cleanup_free_ char *pp = pid_path(d, comps[i].name);
		if (pid > 0)
			stop_pid(comps[i].name, pid, d->grace_s);
		unlink(pp);
	}
	sweep(d);
	remove_link(d);
	_cleanup_free_ char *aid = state_file(d, "app-id");
	unlink(aid);
	printf("stopped; state (keys, configs, logs) kept in %s\n", d->dir);
	return 0;
}

/* ---- status ------------------------------------------------------------- */

static int dev_status(struct dev *d)
{
	struct err e = ERR_INIT;
	if (load_config(d, false, &e) < 0) {
		fprintf(stderr, "dstack dev status: %s\n", err_str(&e));
		return 1;
	}
	int down = 0;
	printf("dev stack in %s\n", d->dir);
	for (size_t i = 0; i < ARRAY_SIZE(comps); i++) {
		const struct comp *k = &comps[i];
		pid_t pid = read_pid(d, k->name);
		_cleanup_free_ char *url = health_url(d, k);
		_cleanup_free_ char *lp = log_path(d, k->name);
		const char *state = pid <= 0        ? (skipped(d, k->name) ? "not used" : "stopped")
				    : healthy(d, k) ? "healthy"
						    : "running, not healthy";
		if (pid <= 0 && !skipped(d, k->name))
			down++;
		printf("  %-12s %-22s pid %-7d %s  log %s\n", k->name, state, pid > 0 ? (int)pid : 0, url,
		       lp);
	}
	_cleanup_free_ char *aid_path = state_file(d, "app-id");
	uint8_t *aid = NULL;
	size_t n;
	if (file_read_all(aid_path, 128, &aid, &n, NULL) == 0) {
		aid[strcspn((char *)aid, "\r\n")] = '\0';
		print_urls(d, (char *)aid);
		free(aid);
	} else {
		printf("\nno app deployed\n");
	}
	return down ? 3 : 0;
}

/* ---- up ----------------------------------------------------------------- */

static char *default_example(const struct dev *d, const char *file)
{
	if (!d->src_dir)
		return NULL;
	char *p = pathf("%s/examples/hello/%s", d->src_dir, file);
	if (file_exists(p))
		return p;
	free(p);
	return NULL;
}

static int dev_up(struct dev *d)
{
	struct err e = ERR_INIT;
	_cleanup_free_ char *logs = pathf("%s/logs", d->dir), *run = pathf("%s/run", d->dir);
	_cleanup_free_ char *old = state_file(d, "app-vms");
	char app_id[41];
	if (mkdir_p(logs, 0755, &e) < 0 || mkdir_p(run, 0755, &e) < 0 || load_config(d, true, &e) < 0) {
		fprintf(stderr, "dstack dev up: %s\n", err_str(&e));
		return 1;
	}
	printf("\ndstack dev up: %s\n", d->dir);
	if (!skipped(d, "simtee") && ensure_simtee(d, &e) < 0)
		goto fail;
	if (!skipped(d, "kms-agent") && ensure_kms_cvm(d, &e) < 0)
		goto fail;
	for (size_t i = 0; i < ARRAY_SIZE(comps); i++) {
		if (skipped(d, comps[i].name)) {
			printf("  %-12s skipped\n", comps[i].name);
			continue;
		}
		if (!strcmp(comps[i].name, "gateway-agent") && !(read_pid(d, comps[i].name) > 0) &&
		    boot_gateway_cvm(d, &e) < 0)
			goto fail;
		if (start_comp(d, &comps[i], &e) < 0)
			goto fail;
	}
	if (skipped(d, "vmm") || skipped(d, "app")) {
		printf("\nno app deployed (--without vmm/app). Stop with: dstack dev down --dir %s\n",
		       d->dir);
		return 0;
	}
	if (!d->compose_path || !d->env_path) {
		err_set(&e, "examples/hello not found (pass --compose FILE --env-file FILE)");
		goto fail;
	}
	if (file_exists(old)) {
		_cleanup_free_ char *p = state_file(d, "app-id");
		uint8_t *t = NULL;
		size_t n;
		if (file_read_all(p, 128, &t, &n, &e) < 0)
			goto fail;
		snprintf(app_id, sizeof app_id, "%.40s", (char *)t);
		free(t);
		printf("  app          already deployed\n");
	} else if (ensure_dev_image(d, &e) < 0 || deploy_app(d, app_id, &e) < 0) {
		goto fail;
	}
	if (wait_app(d, app_id, &e) < 0)
		goto fail;
	print_urls(d, app_id);
	printf("\nStatus: dstack dev status --dir %s    Stop: dstack dev down --dir %s\n", d->dir, d->dir);
	return 0;
fail:
	fprintf(stderr, "dstack dev up: %s\n", err_str(&e));
	fprintf(stderr,
		"The components started so far keep running for inspection; "
		"`dstack dev down --dir %s` stops them.\n",
		d->dir);
	return 1;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: dstack dev up|down|status [options]\n"
		   "\n"
		   "Run a local dev stack: simulated-TDX collateral service, KMS (dev auth), gateway\n"
		   "(WireGuard via wireguard-go when the kernel has none), VMM with simulated CVMs,\n"
		   "and the example app, reachable through the gateway.\n"
		   "\n"
		   "  up       generate the host config (dstack hostcfg) if needed, start every\n"
		   "           component, deploy the app, print the curl commands that reach it\n"
		   "  down     remove the app VMs, stop what `up` started, remove the WireGuard link\n"
		   "  status   show each component and the app URLs (exit 3 if something is down)\n"
		   "\n"
		   "  --dir DIR          state directory (default ./.dev)\n"
		   "  --without NAME     do not start NAME: simtee, auth-simple, kms-agent, kms,\n"
		   "                     gateway-agent, gateway, vmm, app\n"
		   "                     (repeatable; without vmm no app is deployed)\n"
		   "  --compose FILE     app compose (default examples/hello/app-compose.json)\n"
		   "  --env-file FILE    KEY=VALUE env encrypted for the app (default examples/hello/env)\n"
		   "  --image NAME       VMM image for the app (default dstack-dev)\n"
		   "  --instances N      app instances (default 1; 2+ shows load balancing)\n"
		   "  --timeout S        per-component health timeout (default 30)\n"
		   "  --app-timeout S    time for the app to answer through the gateway (default 120)\n"
		   "  --grace S          SIGTERM grace before SIGKILL on down (default 5)\n");
}

/* The source tree: the build dir's parent holds examples/ (meson builds in
 * <src>/build/), or the current directory. */
static char *find_src_dir(const char *self_dir)
{
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s/../../examples/hello/app-compose.json", self_dir);
	if (file_exists(p)) {
		snprintf(p, sizeof p, "%s/../..", self_dir);
		return realpath(p, NULL);
	}
	if (file_exists("examples/hello/app-compose.json"))
		return realpath(".", NULL);
	return NULL;
}

int cmd_dev(int argc, char **argv)
{
	static const struct option opts[] = {{"dir", required_argument, NULL, 'd'},
					     {"without", required_argument, NULL, 'w'},
					     {"compose", required_argument, NULL, 'c'},
					     {"env-file", required_argument, NULL, 'e'},
					     {"image", required_argument, NULL, 'i'},
					     {"instances", required_argument, NULL, 'n'},
					     {"timeout", required_argument, NULL, 't'},
					     {"app-timeout", required_argument, NULL, 'a'},
					     {"grace", required_argument, NULL, 'g'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	struct dev d = {
	    .timeout_s = 30, .app_timeout_s = 120, .grace_s = 5, .instances = 1, .image = "dstack-dev"};
	const char *dir_arg = ".dev";
	_cleanup_free_ char *compose = NULL, *env = NULL;
	int ch;
	strcpy(d.without, ",");
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	const char *verb = argv[1];
	optind = 2;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		int v = optarg ? atoi(optarg) : 0;
		switch (ch) {
		case 'd':
			dir_arg = optarg;
			break;
		case 'w':
			if (strlen(d.without) + strlen(optarg) + 2 >= sizeof d.without)
				return 2;
			strcat(d.without, optarg);
			strcat(d.without, ",");
			break;
		case 'c':
			d.compose_path = optarg;
			break;
		case 'e':
			d.env_path = optarg;
			break;
		case 'i':
			d.image = optarg;
			break;
		case 'n':
		case 't':
		case 'a':
		case 'g':
			if (v <= 0 || v > 3600) {
				fprintf(stderr, "dstack dev: --%s wants a number 1-3600\n",
					ch == 'n'   ? "instances"
					: ch == 't' ? "timeout"
					: ch == 'a' ? "app-timeout"
						    : "grace");
				return 2;
			}
			*(ch == 'n'   ? &d.instances
			  : ch == 't' ? &d.timeout_s
			  : ch == 'a' ? &d.app_timeout_s
				      : &d.grace_s) = v;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	struct err e = ERR_INIT;
	if (!strcmp(verb, "up") && mkdir_p(dir_arg, 0755, &e) < 0) {
		fprintf(stderr, "dstack dev: %s\n", err_str(&e));
		return 1;
	}
	_cleanup_free_ char *self_dir = hostcfg_self_dir(&e);
	char self[PATH_MAX];
	ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
	if (!self_dir || sl <= 0) {
		fprintf(stderr, "dstack dev: %s\n", err_str(&e));
		return 1;
	}
	self[sl] = '\0';
	d.dstack = self;
	d.dir = realpath(dir_arg, NULL);
	if (!d.dir) {
		fprintf(stderr, "dstack dev %s: no dev stack in %s (run `dstack dev up`)\n", verb, dir_arg);
		return 1;
	}
	d.src_dir = find_src_dir(self_dir);
	if (!d.compose_path && (compose = default_example(&d, "app-compose.json")))
		d.compose_path = compose;
	if (!d.env_path && (env = default_example(&d, "env")))
		d.env_path = env;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	int rc;
	if (!strcmp(verb, "up"))
		rc = dev_up(&d);
	else if (!strcmp(verb, "down"))
		rc = dev_down(&d);
	else if (!strcmp(verb, "status"))
		rc = dev_status(&d);
	else {
		usage(stderr);
		rc = 2;
	}
	hostcfg_free(&d.c);
	free(d.dir);
	free(d.src_dir);
	curl_global_cleanup();
	return rc;
}
