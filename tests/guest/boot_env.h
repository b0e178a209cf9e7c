/*
 * boot_env.h — the simulated-CVM boot harness shared by the guest boot
 * tests. Header-only, so each test binary stays one translation unit with
 * one TAP counter (core/tap.h keeps its counter per file).
 *
 * What it provides: a temp dir with a simulated-TDX development PKI; an
 * in-process event loop (its own thread) serving the PCCS collateral and
 * the host API's Notify; a verifier on the dev root; and helpers that lay
 * out a CVM's host-shared files, run `dstack-util setup` as a real
 * process, check the runtime events it left (RTMR3 replay, order, every
 * boot event present), and start the guest agent on the booted work dir.
 *
 * A test calls boot_env_init(), may add its own servers to boot_base,
 * then boot_env_start() (which starts the loop thread).
 */
#ifndef DSTACK_TESTS_GUEST_BOOT_ENV_H
#define DSTACK_TESTS_GUEST_BOOT_ENV_H

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/ssl.h>

#include "attest/runtime_events.h"
#include "codec/pem.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/hex.h"
#include "core/tap.h"
#include "http/client.h"
#include "http/server.h"
#include "prpc/client.h"
#include "prpc/json.h"
#include "ratls/verify.h"
#include "rtevent.h"
#include "simtee/pki.h"
#include "simtee/serve.h"
#include "simtee/td.h"

#define BOOT_OS_IMAGE_HASH "1111111111111111111111111111111111111111111111111111111111111111"

static char dir[256], pki[300], util[512], agent_bin[512];
static uint16_t pccs_port;
static uint16_t cvm_kms_port; /* kms_urls of the CVMs make_cvm lays out */
static char notify_sock[400];
static struct event_base *boot_base;
static struct ratls_verifier *boot_verifier; /* dev root + served collateral */

/* ---- the host API's Notify: "event\tpayload\n" lines ---- */

static pthread_mutex_t notify_mu = PTHREAD_MUTEX_INITIALIZER;
static struct buf notified;

static inline void on_notify(struct http_request *req, void *arg)
{
	size_t n;
	const uint8_t *b = http_req_body(req, &n);
	json_t *j = json_loadb((const char *)b, n, 0, NULL);
	const char *ev = json_string_value(json_object_get(j, "event"));
	const char *pl = json_string_value(json_object_get(j, "payload"));
	pthread_mutex_lock(&notify_mu);
	buf_printf(&notified, "%s\t%s\n", ev ? ev : "", pl ? pl : "");
	pthread_mutex_unlock(&notify_mu);
	json_decref(j);
	http_respond(req, 200, "application/json", "null", 4);
}

/* A notification `event` whose payload contains `text` (NULL: any). */
static inline bool notified_has(const char *event, const char *text)
{
	bool r = false;
	pthread_mutex_lock(&notify_mu);
	size_t el = strlen(event);
	for (const char *l = (const char *)notified.data; l && *l;) {
		const char *nl = strchr(l, '\n');
		size_t ll = nl ? (size_t)(nl - l) : strlen(l);
		if (ll > el && strncmp(l, event, el) == 0 && l[el] == '\t') {
			if (!text || memmem(l + el + 1, ll - el - 1, text, strlen(text))) {
				r = true;
				break;
			}
		}
		l = nl ? nl + 1 : l + ll;
	}
	pthread_mutex_unlock(&notify_mu);
	return r;
}

static inline void *boot_loop_thread(void *arg)
{
	(void)arg;
	event_base_dispatch(boot_base);
	return NULL;
}

static inline int boot_env_init(struct err *e)
{
	struct http_listen_spec spec;
	const char *u = getenv("UTIL"), *a = getenv("AGENT");
	char root[400], col[400];
	_cleanup_free_ uint8_t *colj = NULL;
	size_t coll = 0;

	if (!u || !a)
		return err_set(e, "UTIL and AGENT must be set");
	snprintf(util, sizeof(util), "%s", u);
	snprintf(agent_bin, sizeof(agent_bin), "%s", a);
	snprintf(dir, sizeof(dir), "/tmp/guest-boot-XXXXXX");
	if (!mkdtemp(dir))
		return err_errno(e, "mkdtemp");
	snprintf(pki, sizeof(pki), "%s/pki", dir);
	struct simtee_pki_opts po = {.seed = (const uint8_t *)"boot-test", .seed_len = 9};
	if (simtee_pki_init(pki, &po, e) < 0)
		return -1;
	boot_base = event_base_new();
	struct http_server *pccs = http_server_new(boot_base, NULL, e);
	struct http_server *host = pccs ? http_server_new(boot_base, NULL, e) : NULL;
	if (!host)
		return -1;
	if (simtee_pccs_attach(pccs, pki, e) < 0 || http_listen_parse("tcp:127.0.0.1:0", &spec, e) < 0 ||
	    http_server_listen(pccs, &spec, NULL, &pccs_port, e) < 0)
		return -1;
	http_server_route(host, "POST", "/api/Notify", false, on_notify, NULL);
	snprintf(notify_sock, sizeof(notify_sock), "%s/host.sock", dir);
	if (http_listen_spec_set(&spec, HTTP_LISTEN_UNIX, NULL, 0, notify_sock, 0, e) < 0 ||
	    http_server_listen(host, &spec, NULL, NULL, e) < 0)
		return -1;
	snprintf(root, sizeof(root), "%s/root_ca.pem", pki);
	snprintf(col, sizeof(col), "%s/collateral.json", pki);
	if (file_read_all(col, 1 << 20, &colj, &coll, e) < 0)
		return -1;
	struct ratls_verifier_opts vo = {.root_ca_path = root,
					 .insecure_allow_external_trust_anchors = true,
					 .collateral_json = (const char *)colj,
					 .collateral_json_len = coll};
	return ratls_verifier_new(&boot_verifier, &vo, e);
}

static inline int boot_env_start(struct err *e)
{
	pthread_t th;
	return pthread_create(&th, NULL, boot_loop_thread, NULL) == 0 ? 0 : err_set(e, "loop thread");
}

static inline void boot_env_cleanup(void)
{
	char cmd[400];
	if (getenv("BOOT_TEST_KEEP")) {
		diag("kept %s", dir);
		return;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		diag("cleanup failed");
}

/* ---- small helpers ---- */

static inline uint16_t free_port(void)
{
	struct http_listen_spec spec;
	uint16_t port = 0;
	http_listen_parse("tcp:127.0.0.1:0", &spec, NULL);
	int fd = http_listen_socket(&spec, &port, NULL);
	close(fd);
	return port;
}

static inline void write_file(const char *path, const char *text)
{
	file_write_atomic(path, text, strlen(text), 0644, NULL);
}

static inline void copy_file(const char *from, const char *to)
{
	uint8_t *d = NULL;
	size_t n = 0;
	if (file_read_all(from, 1 << 24, &d, &n, NULL) == 0)
		file_write_atomic(to, d, n, 0600, NULL);
	free(d);
}

/* fork+exec with stdout/stderr appended to log, in cwd, with extra env. */
static inline pid_t spawn_in(const char *cwd, const char *log, char *const argv[], const char *const *env)
{
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		dup2(fd, 1);
		dup2(fd, 2);
		if (cwd && chdir(cwd) < 0)
			_exit(126);
		for (size_t i = 0; env && env[i]; i++)
			putenv((char *)env[i]);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static inline void stop_pid(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

/* Lines of a file as TAP comments. */
static inline void diag_tail(const char *path, int lines)
{
	char cmd[700];
	snprintf(cmd, sizeof(cmd), "tail -%d %s | sed 's/^/# /' >&2", lines, path);
	if (system(cmd) != 0)
		diag("(no %s)", path);
}

/* ---- a CVM: host-shared files, setup, results ---- */

static inline int run_setup(const char *name, const char *state, struct buf *output)
{
	char work[400], shared[400], rt[400], out[400], pccs[64], root[400];
	snprintf(work, sizeof(work), "%s/%s/work", dir, name);
	snprintf(shared, sizeof(shared), "%s/%s/shared", dir, name);
	snprintf(rt, sizeof(rt), "%s/%s/rt", dir, name);
	snprintf(out, sizeof(out), "%s/%s/setup.log", dir, name);
	snprintf(pccs, sizeof(pccs), "http://127.0.0.1:%u", pccs_port);
	snprintf(root, sizeof(root), "%s/root_ca.pem", pki);
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 1);
		dup2(fd, 2);
		execl(util, util, "setup", "--work-dir", work, "--host-shared", shared, "--tee", "simtee",
		      "--simtee-dir", pki, "--simtee-state", state, "--runtime-events-dir", rt, "--pccs-url",
		      pccs, "--dev-root-ca", root, (char *)NULL);
		_exit(127);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	uint8_t *d = NULL;
	size_t n = 0;
	if (file_read_all(out, 1 << 20, &d, &n, NULL) == 0) {
		buf_append(output, d, n);
		free(d);
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static inline bool out_has(const struct buf *out, const char *text)
{
	return out->data && memmem(out->data, out->len, text, strlen(text)) != NULL;
}

/* Host-shared files of CVM `name` (sys-config names the KMS on
 * cvm_kms_port, vm_config carries BOOT_OS_IMAGE_HASH; sys_extra is appended
 * to its JSON object) and a fresh simulated TD at *state. */
static inline void make_cvm(const char *name, const char *compose, const char *sys_extra, const uint8_t *env,
			    size_t env_len, char *state, size_t state_size)
{
	char p[400];
	snprintf(p, sizeof(p), "%s/%s/shared", dir, name);
	mkdir_p(p, 0755, NULL);
	snprintf(p, sizeof(p), "%s/%s/shared/app-compose.json", dir, name);
	write_file(p, compose);
	char sys[4096];
	snprintf(sys, sizeof(sys),
		 "{\"kms_urls\":[\"https://localhost:%u\"],\"gateway_urls\":[],\"host_api_url\":\"unix:%s\","
		 "\"vm_config\":\"{\\\"os_image_hash\\\":\\\"%s\\\"}\"%s}",
		 cvm_kms_port, notify_sock, BOOT_OS_IMAGE_HASH, sys_extra ? sys_extra : "");
	snprintf(p, sizeof(p), "%s/%s/shared/.sys-config.json", dir, name);
	write_file(p, sys);
	if (env) {
		snprintf(p, sizeof(p), "%s/%s/shared/.encrypted-env", dir, name);
		file_write_atomic(p, env, env_len, 0600, NULL);
	}
	snprintf(state, state_size, "%s/%s/td.json", dir, name);
	simtee_td_create(state, NULL, NULL);
}

static inline int read_rt_log(const char *name, struct event_log *log, struct err *e)
{
	char p[400];
	snprintf(p, sizeof(p), "%s/%s/rt/runtime_events.log", dir, name);
	return rtevent_read(p, log, e);
}

/* How many events called `ev`; the payload of the first one. */
static inline int rt_event(const struct event_log *log, const char *ev, const uint8_t **payload, size_t *len)
{
	int count = 0;
	for (size_t i = 0; i < log->n; i++) {
		if (strcmp(log->ev[i].event, ev) != 0)
			continue;
		if (!count++ && payload) {
			*payload = log->ev[i].payload;
			*len = log->ev[i].payload_len;
		}
	}
	return count;
}

/*
 * The runtime events of a boot: RTMR3 of the TD equals their replay, they
 * are in the boot order, and every boot event is there exactly once
 * (os-image-hash only with the KMS provider), storage-fs naming `fs`.
 */
static inline void check_boot_events(const char *name, const char *state, bool kms, const char *fs)
{
	struct simtee_td_state st;
	struct event_log log = EVENT_LOG_INIT;
	uint8_t mr[48];
	struct err e = ERR_INIT;
	int rrc = read_rt_log(name, &log, &e);
	ok(rrc == 0 && log.n >= 9, "%s: runtime event log read (%zu events)", name, log.n);
	ok(event_log_replay_imr(&log, 3, NULL, mr, &e) == 0 && simtee_td_read(state, &st, &e) == 0 &&
	       memcmp(mr, st.rtmr[3], 48) == 0,
	   "%s: RTMR3 replays from the runtime events", name);
	ok(runtime_events_check_boot_order(&log, &e) == 0, "%s: boot order (%s)", name, e.msg);
	static const char *const each[] = {RT_SYSTEM_PREPARING, RT_APP_ID,      RT_COMPOSE_HASH,
					   RT_GPU_POLICY_HASH,  RT_INSTANCE_ID, RT_BOOT_MR_DONE,
					   RT_KEY_PROVIDER,     RT_STORAGE_FS,  RT_SYSTEM_READY};
	char missing[256] = "";
	for (size_t i = 0; i < ARRAY_SIZE(each); i++)
		if (rt_event(&log, each[i], NULL, NULL) != 1)
			snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing), " %s",
				 each[i]);
	ok(!missing[0], "%s: every boot event exactly once (missing or repeated:%s)", name, missing);
	const uint8_t *p = NULL;
	size_t n = 0;
	ok(rt_event(&log, RT_BOOT_MR_DONE, &p, &n) == 1 && n == 0, "%s: boot-mr-done, empty payload", name);
	ok(rt_event(&log, RT_STORAGE_FS, &p, &n) == 1 && n == strlen(fs) && memcmp(p, fs, n) == 0,
	   "%s: storage-fs is %s", name, fs);
	int img = rt_event(&log, RT_OS_IMAGE_HASH, &p, &n);
	if (kms) {
		char h[65] = "";
		if (img == 1 && n == 32)
			hex_encode(p, 32, h);
		ok(img == 1 && strcmp(h, BOOT_OS_IMAGE_HASH) == 0,
		   "%s: os-image-hash event carries the KMS's os_image_hash (%s)", name, h);
	} else {
		ok(img == 0, "%s: no os-image-hash event without the KMS provider", name);
	}
	event_log_free(&log);
}

static inline char *read_text(const char *name, const char *file)
{
	char p[400];
	uint8_t *d = NULL;
	size_t n;
	snprintf(p, sizeof(p), "%s/%s/work/%s", dir, name, file);
	if (file_read_all(p, 1 << 20, &d, &n, NULL) < 0)
		return NULL;
	return (char *)d;
}

/* ---- the guest agent on a booted work dir ---- */

struct agent_proc {
	pid_t pid;
	char dsock[400], tsock[400], gsock[400], log[400];
	uint16_t worker_port;
};

/* Start the agent with the agent.json setup wrote, sockets in the CVM dir;
 * extra_args (NULL-terminated, may be NULL) are appended. */
static inline bool agent_start(const char *name, struct agent_proc *ap, const char *const *extra_args)
{
	char conf[400], ext[64], gapi[420];
	snprintf(conf, sizeof(conf), "%s/%s/work/agent.json", dir, name);
	snprintf(ap->dsock, sizeof(ap->dsock), "%s/%s/d.sock", dir, name);
	snprintf(ap->tsock, sizeof(ap->tsock), "%s/%s/t.sock", dir, name);
	snprintf(ap->gsock, sizeof(ap->gsock), "%s/%s/g.sock", dir, name);
	snprintf(ap->log, sizeof(ap->log), "%s/%s/agent.log", dir, name);
	snprintf(gapi, sizeof(gapi), "unix:%s", ap->gsock);
	ap->worker_port = free_port();
	snprintf(ext, sizeof(ext), "tcp:127.0.0.1:%u", ap->worker_port);
	unlink(ap->dsock);
	const char *argv[32] = {agent_bin, "-c",         conf, "--dstack-sock", ap->dsock, "--tappd-sock",
				ap->tsock, "--external", ext,  "--guest-api",   gapi};
	size_t n = 11;
	for (size_t i = 0; extra_args && extra_args[i] && n < ARRAY_SIZE(argv) - 1; i++)
		argv[n++] = extra_args[i];
	argv[n] = NULL;
	ap->pid = spawn_in(NULL, ap->log, (char *const *)argv, NULL);
	for (int i = 0; i < 200 && !file_exists(ap->dsock); i++)
		usleep(50000);
	return file_exists(ap->dsock);
}

/*
 * Start the agent on a booted work dir and use it as an app would: its
 * attestation verifies with the dev root, GetTlsKey's chain (KMS SignCert
 * when via_kms), GetQuote, the Worker, the dashboard and the GuestApi;
 * Shutdown stops it.
 */
static inline void agent_quote_verifies(const char *name, bool via_kms)
{
	struct agent_proc ap;
	ok(agent_start(name, &ap, NULL), "%s: agent up", name);
	struct prpc_client c = {.base = "http://localhost", .http = {.unix_socket = ap.dsock}};
	struct err e = ERR_INIT;
	json_t *out = NULL;
	json_t *in = json_pack("{s:s}", "report_data", "cafe");
	ok(prpc_client_call_json(&c, "Attest", in, &out, &e) == 0, "%s: agent Attest (%s)", name, e.msg);
	const char *hx = json_string_value(json_object_get(out, "attestation"));
	uint8_t *att = NULL;
	size_t al = 0;
	struct ratls_verified r;
	ok(hx && hex_decode_alloc(hx, strlen(hx), &att, &al, &e) == 0, "%s: attestation hex", name);
	int vr = att ? ratls_verify_bytes(boot_verifier, att, al, 0, &r, &e) : -1;
	ok(vr == 0, "%s: agent attestation verifies with the dev root (%s)", name, e.msg);
	if (vr == 0) {
		ok(r.att.report_data[0] == 0xca && r.att.report_data[1] == 0xfe, "%s: report data bound",
		   name);
		ratls_verified_free(&r);
	}
	free(att);
	json_decref(in);
	json_decref(out);
	out = NULL;
	ok(prpc_client_call_json(&c, "Info", NULL, &out, &e) == 0, "%s: agent Info", name);
	const char *kpi = json_string_value(json_object_get(out, "key_provider_info"));
	ok(kpi && strstr(kpi, "\"name\""), "%s: key_provider_info %s", name, kpi ? kpi : "");
	json_decref(out);
	out = NULL;

	/* GetTlsKey: local app CA (none) or the KMS's SignCert (kms). */
	in = json_pack("{s:s,s:[s],s:b}", "subject", "app.test", "alt_names", "app.test", "usage_ra_tls", 1);
	ok(prpc_client_call_json(&c, "GetTlsKey", in, &out, &e) == 0, "%s: GetTlsKey (%s)", name, e.msg);
	json_t *chain = json_object_get(out, "certificate_chain");
	is_int((int)json_array_size(chain), via_kms ? 3 : 2, "%s: chain length", name);
	if (json_array_size(chain) >= 2) {
		const char *l = json_string_value(json_array_get(chain, 0));
		const char *ca = json_string_value(json_array_get(chain, 1));
		X509 *lx = pem_read_cert(l, strlen(l), NULL), *cx = pem_read_cert(ca, strlen(ca), NULL);
		ok(lx && cx && X509_verify(lx, X509_get0_pubkey(cx)) == 1, "%s: leaf signed by the app CA",
		   name);
		if (via_kms && json_array_size(chain) == 3) {
			const char *rt = json_string_value(json_array_get(chain, 2));
			X509 *rx = pem_read_cert(rt, strlen(rt), NULL);
			ok(rx && X509_verify(cx, X509_get0_pubkey(rx)) == 1 &&
			       X509_verify(rx, X509_get0_pubkey(rx)) == 1,
			   "%s: app CA signed by the (self-signed) KMS root", name);
			X509_free(rx);
		}
		X509_free(lx);
		X509_free(cx);
	}
	json_decref(in);
	json_decref(out);
	out = NULL;

	/* GetQuote on TDX(-like) platforms leaves `attestation` out. */
	in = json_pack("{s:s}", "report_data", "01");
	ok(prpc_client_call_json(&c, "GetQuote", in, &out, &e) == 0 && json_object_get(out, "quote") &&
	       !json_object_get(out, "attestation"),
	   "%s: GetQuote without an attestation field", name);
	json_decref(in);
	json_decref(out);
	out = NULL;

	/* Worker on TCP. */
	char wbase[64];
	snprintf(wbase, sizeof(wbase), "http://127.0.0.1:%u/prpc", ap.worker_port);
	struct prpc_client w = {.base = wbase};
	in = json_pack("{s:s}", "algorithm", "ed25519");
	ok(prpc_client_call_json(&w, "GetAttestationForAppKey", in, &out, &e) == 0,
	   "%s: Worker attestation (%s)", name, e.msg);
	const char *rdh = json_string_value(json_object_get(out, "report_data"));
	ok(rdh && strncmp(rdh, "646970313a3a656432353531392d706b3a", 34) == 0,
	   "%s: dip1::ed25519-pk: report data", name);
	json_decref(in);
	json_decref(out);
	out = NULL;
	ok(prpc_client_call_json(&w, "Worker.Info", NULL, &out, &e) == 0 &&
	       strlen(json_string_value(json_object_get(out, "tcb_info"))) > 10,
	   "%s: Worker.Info shows tcb_info (public_tcbinfo default)", name);
	json_decref(out);
	out = NULL;
	struct http_client_opts ho = {0};
	struct http_response resp = {0};
	char url[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/", ap.worker_port);
	ok(http_fetch(&ho, "GET", url, NULL, NULL, 0, &resp, &e) == 0 && resp.status == 200 &&
	       strstr((char *)resp.body.data, "<h1>"),
	   "%s: dashboard", name);
	char *ver = http_response_header(&resp, "X-App-Version");
	ok(ver && strcmp(ver, "0.6.0") == 0, "%s: X-App-Version", name);
	free(ver);
	http_response_free(&resp);

	/* GuestApi on its unix socket. */
	struct http_client_opts go = {.unix_socket = ap.gsock};
	ok(http_fetch(&go, "POST", "http://localhost/api/SysInfo", NULL, "{}", 2, &resp, &e) == 0 &&
	       resp.status == 200 && strstr((char *)resp.body.data, "num_cpus"),
	   "%s: GuestApi SysInfo", name);
	http_response_free(&resp);
	ok(http_fetch(&go, "POST", "http://localhost/api/Info", NULL, "{}", 2, &resp, &e) == 0 &&
	       resp.status == 200 && strstr((char *)resp.body.data, "\"app_id\""),
	   "%s: GuestApi Info", name);
	http_response_free(&resp);
	ok(http_fetch(&go, "POST", "http://localhost/api/Shutdown", NULL, "{}", 2, &resp, &e) == 0 &&
	       resp.status == 200,
	   "%s: GuestApi Shutdown", name);
	http_response_free(&resp);
	int st = 0, waited = 0;
	for (int i = 0; i < 100 && !(waited = waitpid(ap.pid, &st, WNOHANG)); i++)
		usleep(100000);
	ok(waited == ap.pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	   "%s: agent exits cleanly after Shutdown", name);
	if (waited != ap.pid)
		stop_pid(ap.pid);
}

#endif
