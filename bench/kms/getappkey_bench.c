/*
 * getappkey_bench.c — end-to-end GetAppKey throughput and latency: a real
 * dstack-kms process (dev auth policy, simulated-TDX trust anchor), and N
 * client threads each doing the full guest call — new TLS connection with
 * an RA-TLS client certificate, attestation verification in the KMS,
 * policy, key derivation — as fast as they can. Prints p50/p99 latency and
 * requests per second for each concurrency level.
 *
 *     bench_kms_getappkey DSTACK_KMS [requests_per_level]   (default 200)
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <openssl/pem.h>

#include "sim_attestation.h"
#include "../../tests/kms/testproc.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "http/server.h"
#include "prpc/client.h"
#include "ratls/cert.h"
#include "ratls/ext.h"
#include "simtee/serve.h"

static char tmp[] = "/tmp/kms-bench-XXXXXX";
static char url[64], *ca_pem, *cert_pem, *key_pem;
static struct event_base *base;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *loop(void *arg)
{
	(void)arg;
	event_base_dispatch(base);
	return NULL;
}

static char *pem(X509 *x, EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p, *s;
	long n;

	if (x)
		PEM_write_bio_X509(b, x);
	else
		PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
	n = BIO_get_mem_data(b, &p);
	s = strndup(p, (size_t)n);
	BIO_free(b);
	return s;
}

struct worker {
	int n;
	double *lat;
	int failures;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	struct prpc_client c = {.base = url,
				.http = {.ca_pem = ca_pem, .cert_pem = cert_pem, .key_pem = key_pem}};
	struct err e = ERR_INIT;

	for (int i = 0; i < w->n; i++) {
		json_t *out = NULL;
		double t0 = now_s();

		if (prpc_client_call_json(&c, "GetAppKey", NULL, &out, &e) < 0) {
			if (!w->failures++)
				fprintf(stderr, "GetAppKey: %s\n", err_str(&e));
		}
		w->lat[i] = now_s() - t0;
		json_decref(out);
	}
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void run_level(int threads, int total)
{
	pthread_t th[64];
	struct worker w[64];
	double *all = calloc((size_t)total, sizeof(double)), t0, dt;
	int per = total / threads, k = 0, fails = 0;

	t0 = now_s();
	for (int i = 0; i < threads; i++) {
		w[i] = (struct worker){.n = per, .lat = calloc((size_t)per, sizeof(double))};
		pthread_create(&th[i], NULL, work, &w[i]);
	}
	for (int i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		memcpy(all + k, w[i].lat, (size_t)per * sizeof(double));
		k += per;
		fails += w[i].failures;
		free(w[i].lat);
	}
	dt = now_s() - t0;
	qsort(all, (size_t)k, sizeof(double), cmp);
	printf("| %2d | %5d | %7.1f ms | %7.1f ms | %7.1f | %d |\n", threads, k, all[k / 2] * 1e3,
	       all[(int)(k * 0.99)] * 1e3, k / dt, fails);
	fflush(stdout);
	free(all);
}

int main(int argc, char **argv)
{
	struct err e = ERR_INIT;
	char pki[PATH_MAX], cfg[PATH_MAX + 16], log[PATH_MAX + 16], state[PATH_MAX], text[2048];
	uint16_t pccs_port = 0, rpc = tp_free_port(), onboard = tp_free_port();
	int total = argc > 2 ? atoi(argv[2]) : 200;
	struct http_server *srv;
	struct http_listen_spec spec;
	pthread_t th;
	pid_t pid;

	if (argc < 2 || !mkdtemp(tmp))
		return 2;
	snprintf(pki, sizeof(pki), "%s/pki", tmp);
	if (sim_pki(pki, &e) < 0)
		return fprintf(stderr, "pki: %s\n", err_str(&e)), 1;
	base = event_base_new();
	srv = http_server_new(base, NULL, &e);
	http_listen_spec_set(&spec, HTTP_LISTEN_TCP, "127.0.0.1", 0, NULL, 0, &e);
	if (!srv || simtee_pccs_attach(srv, pki, &e) < 0 ||
	    http_server_listen(srv, &spec, NULL, &pccs_port, &e) < 0)
		return fprintf(stderr, "pccs: %s\n", err_str(&e)), 1;
	pthread_create(&th, NULL, loop, NULL);
	snprintf(
	    text, sizeof(text),
	    "[rpc]\naddress = \"127.0.0.1\"\nport = %u\n[rpc.tls]\nkey = \"certs/rpc.key\"\ncerts = "
	    "\"certs/rpc.crt\"\n[rpc.tls.mutual]\nca_certs = \"certs/tmp-ca.crt\"\n[core]\ncert_dir = "
	    "\"certs\"\n"
	    "enforce_self_authorization = false\nattest_rpc_cert = false\n"
	    "[core.attestation]\ninsecure_allow_external_trust_anchors = true\n[core.attestation.urls]\n"
	    "pccs = \"http://127.0.0.1:%u\"\n[core.attestation.root_ca]\ntdx = \"%s/root_ca.pem\"\n"
	    "[core.image]\nverify = false\n[core.auth_api]\ntype = \"dev\"\n"
	    "[core.onboard]\nauto_bootstrap_domain = \"localhost\"\naddress = \"127.0.0.1\"\nport = %u\n",
	    rpc, pccs_port, pki, onboard);
	snprintf(cfg, sizeof(cfg), "%s/kms.toml", tmp);
	file_write_atomic(cfg, text, strlen(text), 0644, NULL);
	snprintf(log, sizeof(log), "%s/kms.log", tmp);
	{
		char etc[PATH_MAX + 32];
		snprintf(etc, sizeof(etc), "DSTACK_KMS_ETC_DIR=%s/etc", tmp);
		const char *env[] = {etc, "DSTACK_AGENT_ADDRESS=/nonexistent", NULL};
		char *args[] = {argv[1], NULL};
		pid = tp_spawn(args, env, tmp, log);
	}
	if (!tp_wait_port(pid, rpc, 30))
		return fprintf(stderr, "KMS did not start, see %s\n", log), 1;
	snprintf(url, sizeof(url), "https://localhost:%u/prpc", rpc);
	{
		struct prpc_client c = {.base = url, .http = {.insecure = true}};
		json_t *t = NULL;
		if (prpc_client_call_json(&c, "GetTempCaCert", NULL, &t, &e) < 0)
			return fprintf(stderr, "GetTempCaCert: %s\n", err_str(&e)), 1;
		BIO *b1 = BIO_new_mem_buf(json_string_value(json_object_get(t, "temp_ca_cert")), -1);
		BIO *b2 = BIO_new_mem_buf(json_string_value(json_object_get(t, "temp_ca_key")), -1);
		X509 *tc = PEM_read_bio_X509(b1, NULL, NULL, NULL);
		EVP_PKEY *tk = PEM_read_bio_PrivateKey(b2, NULL, NULL, NULL), *key = ratls_key_generate(&e);
		struct buf att = BUF_INIT, stripped = BUF_INIT;
		struct attestation a;
		uint8_t rd[64];

		ca_pem = strdup(json_string_value(json_object_get(t, "ca_cert")));
		snprintf(state, sizeof(state), "%s/td.json", tmp);
		ratls_key_report_data(key, rd, &e);
		sim_attestation(pki, state, rd, NULL, &att, &e);
		attestation_init(&a);
		attestation_decode(att.data, att.len, &a, &e);
		attestation_strip_for_cert(&a, &e);
		attestation_encode(&a, &stripped, &e);
		X509 *cert = ratls_cert_ra_client(key, stripped.data, stripped.len, tc, tk, &e);
		cert_pem = pem(cert, NULL);
		key_pem = pem(NULL, key);
		attestation_free(&a);
		buf_free(&att);
		buf_free(&stripped);
		X509_free(cert);
		X509_free(tc);
		EVP_PKEY_free(tk);
		EVP_PKEY_free(key);
		BIO_free(b1);
		BIO_free(b2);
		json_decref(t);
	}
	printf("GetAppKey end to end (new TLS connection + RA-TLS verification per request)\n\n");
	printf("| clients | requests | p50 | p99 | req/s | failures |\n|---|---|---|---|---|---|\n");
	run_level(1, total / 4 > 0 ? total / 4 : 1); /* warm-up: collateral fetch, caches */
	run_level(1, total);
	run_level(16, total);
	tp_stop(pid);
	free(ca_pem);
	free(cert_pem);
	free(key_pem);
	{
		char cmd[PATH_MAX + 16];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
		if (system(cmd) != 0)
			fprintf(stderr, "cleanup failed\n");
	}
	return 0;
}
