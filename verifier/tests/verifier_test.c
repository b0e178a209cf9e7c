/*
 * verifier_test.c — end to end with real processes on loopback:
 *
 *   - `dstack simtee serve` serves the dev PKI's collateral (PCCS paths);
 *   - dstack-verifier with the dev root (explicitly allowed) fetches it and
 *     verifies a simulated-TDX attestation, in both request forms;
 *   - dstack-verifier with the Intel root and the real fixture collateral
 *     (verify_at inside its window) accepts the real quote, refuses the
 *     simulated one, and reports why the guest-agent fixture fails;
 *   - a dev root without insecure_allow_external_trust_anchors is refused
 *     at startup;
 *   - `dstack verify` on the same inputs, exit codes included.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/hex.h"
#include "core/tap.h"
#include "http/client.h"
#include "ratls/ext.h"
#include "sim_attestation.h"

static char tmp[64];
static const char *testdata;

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Start a server process; the port comes from the first stdout line ("...:PORT"). */
static pid_t start(const char *const argv[], int *port)
{
	int fds[2];

	*port = 0;
	if (pipe(fds) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	FILE *f = fdopen(fds[0], "r");
	char line[512] = "";
	if (f && fgets(line, sizeof(line), f)) {
		char *p = strrchr(line, ':');
		const char *q = strstr(line, "port ");
		*port = q ? atoi(q + 5) : p ? atoi(p + 1) : 0;
	}
	if (f)
		fclose(f);
	return pid;
}

static int stop(pid_t pid)
{
	int st = 0;

	kill(pid, SIGTERM);
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static json_t *post(int port, const char *path, const char *body, long *status)
{
	char url[128];
	struct http_response resp = {0};
	struct err e = ERR_INIT;
	const char *hdr[] = {"Content-Type: application/json", NULL};

	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
	*status = 0;
	if (http_fetch(NULL, body ? "POST" : "GET", url, hdr, body, body ? strlen(body) : 0, &resp, &e) < 0) {
		diag("%s", e.msg);
		return NULL;
	}
	*status = resp.status;
	json_t *j = json_loadb((const char *)resp.body.data, resp.body.len, 0, NULL);
	http_response_free(&resp);
	return j;
}

static char *hex_body(const char *key, const uint8_t *d, size_t n)
{
	_cleanup_free_ char *h = hex_encode_alloc(d, n);
	json_t *j = json_pack("{s:s}", key, h);
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return s;
}

static const char *reason(json_t *r)
{
	const char *s = json_string_value(json_object_get(r, "reason"));
	return s ? s : "(none)";
}

static bool valid(json_t *r)
{
	return json_is_true(json_object_get(r, "is_valid"));
}

static const char *detail_str(json_t *r, const char *a, const char *b)
{
	json_t *d = json_object_get(json_object_get(r, "details"), a);
	if (b)
		d = json_object_get(d, b);
	return json_string_value(d) ? json_string_value(d) : "";
}

static uint8_t *load(const char *rel, size_t *len)
{
	char path[1024];
	uint8_t *d = NULL;
	struct err e = ERR_INIT;

	snprintf(path, sizeof(path), "%s/%s", testdata, rel);
	if (file_read_all(path, 16 << 20, &d, len, &e) < 0) {
		printf("Bail out! %s\n", e.msg);
		exit(1);
	}
	return d;
}

int main(int argc, char **argv)
{
	const char *dstack = getenv("DSTACK"), *verifier = getenv("DSTACK_VERIFIER");
	char pki[128], state[128], root[160], att_path[160], att_hex_path[160], cfg[160], url[64], ddir[600];
	struct err e = ERR_INIT;
	struct buf att = BUF_INIT;
	uint8_t rd[64];
	long status;
	int pport = 0, vport = 0;

	if (!dstack || !verifier)
		return 1;
	testdata = argc > 1 ? argv[1] : "../shared/testdata";
	snprintf(ddir, sizeof(ddir), "%s/dcap", testdata);
	strcpy(tmp, "/tmp/verifier-test-XXXXXX");
	if (!mkdtemp(tmp))
		return 1;
	snprintf(pki, sizeof(pki), "%s/pki", tmp);
	snprintf(state, sizeof(state), "%s/td.json", tmp);
	snprintf(root, sizeof(root), "%s/root_ca.pem", pki);
	snprintf(att_path, sizeof(att_path), "%s/att.bin", tmp);
	snprintf(att_hex_path, sizeof(att_hex_path), "%s/att.hex", tmp);
	snprintf(cfg, sizeof(cfg), "%s/verifier.toml", tmp);

	/* A simulated guest: attestation bound to report data "ratls-cert" of some key. */
	memset(rd, 0x5a, sizeof(rd));
	ok(sim_pki(pki, &e) == 0, "dev PKI");
	ok(sim_attestation(pki, state, rd, "{\"os_image_hash\":\"aa\"}", &att, &e) == 0,
	   "simulated attestation (%s)", e.msg);
	file_write_atomic(att_path, att.data, att.len, 0644, &e);
	_cleanup_free_ char *att_hex = hex_encode_alloc(att.data, att.len);
	file_write_atomic(att_hex_path, att_hex, strlen(att_hex), 0644, &e);

	const char *serve_argv[] = {dstack, "simtee",   "serve",           "--dir",
				    pki,    "--listen", "tcp:127.0.0.1:0", NULL};
	pid_t pccs = start(serve_argv, &pport);
	ok(pccs > 0 && pport > 0, "simtee PCCS on port %d", pport);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", pport);

	/* 1. Dev root, explicitly allowed, collateral over PCCS. */
	FILE *f = fopen(cfg, "w");
	fprintf(f,
		"address = \"127.0.0.1\"\nport = 0\npccs_url = \"%s\"\nroot_ca = \"%s\"\n"
		"insecure_allow_external_trust_anchors = true\n",
		url, root);
	fclose(f);
	const char *vargv[] = {verifier, "-c", cfg, NULL};
	pid_t vp = start(vargv, &vport);
	ok(vp > 0 && vport > 0, "dstack-verifier on port %d", vport);

	json_t *h = post(vport, "/health", NULL, &status);
	char *hs = h ? json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	is_str(hs, "{\"status\":\"ok\",\"service\":\"dstack-verifier\"}", "GET /health");
	free(hs);
	json_decref(h);

	_cleanup_free_ char *body = hex_body("attestation", att.data, att.len);
	json_t *r = post(vport, "/verify", body, &status);
	is_int(status, 200, "POST /verify status");
	ok(valid(r), "simulated attestation is valid (%s)", reason(r));
	ok(json_is_null(json_object_get(r, "reason")), "reason null when valid");
	is_str(detail_str(r, "tcb_status", NULL), "UpToDate", "tcb_status");
	is_str(detail_str(r, "boot_info", "appId"), "5bb4ff9a3837357f19dc176407a5709c62eb6c56",
	       "boot_info.appId");
	is_str(detail_str(r, "boot_info", "teeVariant"), "dstack-tdx", "boot_info.teeVariant");
	is_str(detail_str(r, "app_info", "os_image_hash"), "aa", "app_info.os_image_hash from vm_config");
	is_str(detail_str(r, "key_provider", "name"), "kms", "key_provider.name");
	ok(json_is_true(json_object_get(json_object_get(r, "details"), "event_log_verified")),
	   "event_log_verified");
	json_decref(r);

	/* Second form: quote + event log JSON + vm_config. */
	struct attestation a;
	attestation_decode(att.data, att.len, &a, &e);
	json_t *evj = event_log_to_json(&a.event_log);
	char *evs = json_dumps(evj, JSON_COMPACT);
	_cleanup_free_ char *qhex = hex_encode_alloc(a.quote, a.quote_len);
	json_t *qb = json_pack("{s:s, s:s, s:s}", "quote", qhex, "event_log", evs, "vm_config",
			       "{\"os_image_hash\":\"bb\"}");
	char *qbody = json_dumps(qb, JSON_COMPACT);
	r = post(vport, "/verify", qbody, &status);
	ok(valid(r), "quote + event_log form is valid (%s)", reason(r));
	is_str(detail_str(r, "app_info", "os_image_hash"), "bb", "vm_config of the request used");
	json_decref(r);
	free(qbody);
	json_decref(qb);
	json_decref(evj);

	/* Tampered runtime event: RTMR3 no longer matches. */
	a.runtime_events.ev[2].payload[0] ^= 0xff;
	struct buf bad = BUF_INIT;
	attestation_encode_v0(&a, &bad, &e);
	_cleanup_free_ char *bbody = hex_body("attestation", bad.data, bad.len);
	r = post(vport, "/verify", bbody, &status);
	ok(!valid(r) && strstr(reason(r), "RTMR3"), "tampered event refused: %s", reason(r));
	ok(json_is_true(json_object_get(json_object_get(r, "details"), "quote_verified")),
	   "quote itself still verified");
	json_decref(r);
	buf_free(&bad);
	free(evs);
	attestation_free(&a);

	r = post(vport, "/verify", "not json", &status);
	is_int(status, 400, "non-JSON body → 400");
	json_decref(r);
	r = post(vport, "/verify", "{\"attestation\":\"zz\"}", &status);
	ok(status == 200 && !valid(r), "bad hex → invalid: %s", reason(r));
	json_decref(r);
	r = post(vport, "/verify", "{\"attestation\":\"00\"}", &status);
	ok(status == 200 && !valid(r), "truncated attestation → invalid: %s", reason(r));
	json_decref(r);
	is_int(stop(vp), 0, "verifier exits cleanly on SIGTERM");

	/* 2. Intel root, fixture collateral, verify_at inside its window. */
	f = fopen(cfg, "w");
	fprintf(f,
		"address = \"127.0.0.1\"\nport = 0\ncollateral = \"%s/tdx_quote_collateral.json\"\nverify_at "
		"= 1750377600\n",
		ddir);
	fclose(f);
	vp = start(vargv, &vport);
	ok(vp > 0 && vport > 0, "Intel-root verifier on port %d", vport);
	size_t qlen, glen;
	_cleanup_free_ uint8_t *rq = load("dcap/tdx_quote.bin", &qlen);
	_cleanup_free_ uint8_t *ga = load("dstack/guest-agent-attestation.bin", &glen);
	_cleanup_free_ char *rbody = hex_body("quote", rq, qlen);
	r = post(vport, "/verify", rbody, &status);
	ok(valid(r), "real Intel quote valid (%s)", reason(r));
	is_str(detail_str(r, "tcb_status", NULL), "UpToDate", "real quote UpToDate");
	json_decref(r);
	r = post(vport, "/verify", body, &status);
	ok(!valid(r) && strstr(reason(r), "PCK certificate chain"),
	   "simulated quote refused by the Intel root: %s", reason(r));
	json_decref(r);
	_cleanup_free_ char *gbody = hex_body("attestation", ga, glen);
	r = post(vport, "/verify", gbody, &status);
	ok(!valid(r), "guest-agent fixture not verifiable with 2025 collateral: %s", reason(r));
	is_str(detail_str(r, "measurements", "rtmr3"),
	       "f28a1490ee924e9396c2ccf2d93ad536b83cbe159a1d45024d1fd7acdcc102145efcfcd0cfa209416446c70226aff"
	       "adf",
	       "measurements still reported");
	json_decref(r);
	is_int(stop(vp), 0, "stopped");

	/* 3. Dev root without the insecure flag: refused at startup. */
	f = fopen(cfg, "w");
	fprintf(f, "address = \"127.0.0.1\"\nport = 0\npccs_url = \"%s\"\nroot_ca = \"%s\"\n", url, root);
	fclose(f);
	is_int(run("%s -c %s 2>%s/err.txt", verifier, cfg, tmp), 1, "dev root without the flag: exit 1");
	is_int(run("grep -q insecure_allow_external_trust_anchors %s/err.txt", tmp), 0,
	       "error names the flag");

	/* 4. dstack verify. */
	is_int(run("%s verify --collateral %s/tdx_quote_collateral.json --at 2025-06-20T00:00:00Z "
		   "%s/tdx_quote.bin "
		   ">%s/out.json",
		   dstack, ddir, ddir, tmp),
	       0, "dstack verify real quote: exit 0");
	is_int(run("grep -q '\"tcb_status\": \"UpToDate\"' %s/out.json", tmp), 0, "… UpToDate");
	is_int(run("%s verify --collateral %s/tdx_quote_collateral.json --at 1700000000 %s/tdx_quote.bin "
		   ">/dev/null",
		   dstack, ddir, ddir),
	       1, "before the collateral window: exit 1");
	is_int(run("%s verify --pccs %s --root-ca %s %s >%s/out.json 2>%s/err.txt", dstack, url, root,
		   att_hex_path, tmp, tmp),
	       0, "dstack verify simulated attestation (hex) with --root-ca: exit 0");
	is_int(run("grep -q WARNING %s/err.txt", tmp), 0, "dev root warning printed");
	is_int(run("grep -q '\"appId\": \"5bb4ff9a3837357f19dc176407a5709c62eb6c56\"' %s/out.json", tmp), 0,
	       "boot info in the output");
	is_int(run("%s verify --pccs %s %s >/dev/null", dstack, url, att_path), 1,
	       "simulated attestation without --root-ca: exit 1");
	is_int(run("%s verify --collateral %s/tdx_quote_collateral.json --at 2025-06-20T00:00:00Z "
		   "%s/dstack/guest-agent-attestation.bin >%s/out.json",
		   dstack, ddir, testdata, tmp),
	       1, "guest-agent fixture: exit 1 (collateral predates its PCK certificate)");

	is_int(stop(pccs), 0, "simtee serve stopped");
	buf_free(&att);
	run("rm -rf '%s'", tmp);
	return tap_done();
}
