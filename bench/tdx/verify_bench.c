/*
 * verify_bench.c — DCAP quote verification throughput on one core.
 *
 * Warm path: collateral parsed and checked once (dcap_collateral_load), then
 * each iteration parses the quote and runs dcap_verify (PCK chain with CRLs,
 * QE report signature, QE binding, quote signature, TCB matching). Reports
 * median / p99 latency and verifications per second, for the real Intel TDX
 * fixture and for a simulated quote. Also times the cold collateral load.
 *
 *   bench_tdx_verify [iterations]     (default 2000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/fileio.h"
#include "simtee/pki.h"
#include "simtee/td.h"
#include "tdx/collateral.h"
#include "tdx/verify.h"

#define FIXTURE_NOW ((time_t)1750377600) /* inside every fixture collateral window */

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int bench(const char *name, const uint8_t *qb, size_t qlen, const struct dcap_collateral_raw *raw,
		 X509 *root, time_t t, int iters)
{
	struct err e = ERR_INIT;
	struct dcap_collateral *c = NULL;
	double *lat = calloc((size_t)iters, sizeof(double));
	double t0 = now_us();

	if (!lat || dcap_collateral_load(&c, raw, root, t, &e) < 0) {
		fprintf(stderr, "%s: %s\n", name, e.msg);
		return -1;
	}
	double cold = now_us() - t0;
	double start = now_us();
	for (int i = 0; i < iters; i++) {
		struct quote q;
		struct dcap_result r;
		double a = now_us();
		if (quote_parse(&q, qb, qlen, &e) < 0 || dcap_verify(&q, c, t, &r, &e) < 0) {
			fprintf(stderr, "%s: %s\n", name, e.msg);
			return -1;
		}
		lat[i] = now_us() - a;
		dcap_result_free(&r);
		quote_free(&q);
	}
	double total = now_us() - start;
	qsort(lat, (size_t)iters, sizeof(double), cmp_double);
	printf("%-22s iters=%d  median=%.3f ms  p99=%.3f ms  %.0f verif/s  (collateral load %.3f ms)\n", name,
	       iters, lat[iters / 2] / 1e3, lat[(size_t)(iters * 0.99)] / 1e3, iters / (total / 1e6),
	       cold / 1e3);
	free(lat);
	dcap_collateral_free(c);
	return 0;
}

int main(int argc, char **argv)
{
	int iters = argc > 1 ? atoi(argv[1]) : 2000;
	struct err e = ERR_INIT;
	uint8_t *qb = NULL, *cj = NULL;
	size_t qlen, cjlen;
	struct dcap_collateral_raw raw;

	if (iters < 10)
		iters = 10;
	if (file_read_all(TESTDATA_DIR "/dcap/tdx_quote.bin", 1 << 16, &qb, &qlen, &e) < 0 ||
	    file_read_all(TESTDATA_DIR "/dcap/tdx_quote_collateral.json", 1 << 20, &cj, &cjlen, &e) < 0 ||
	    dcap_collateral_raw_from_json((const char *)cj, cjlen, &raw, &e) < 0) {
		fprintf(stderr, "%s\n", e.msg);
		return 1;
	}
	if (bench("intel-tdx-fixture", qb, qlen, &raw, NULL, FIXTURE_NOW, iters) < 0)
		return 1;
	dcap_collateral_raw_free(&raw);
	free(qb);
	free(cj);

	/* Simulated quote under a throw-away dev PKI. */
	char dir[] = "/tmp/bench-simtee-XXXXXX", pki[64], state[64], cmd[128];
	uint8_t rd[64] = {1};
	X509 *root = NULL;
	if (!mkdtemp(dir))
		return 1;
	snprintf(pki, sizeof(pki), "%s/pki", dir);
	snprintf(state, sizeof(state), "%s/td.json", dir);
	char root_path[96];
	snprintf(root_path, sizeof(root_path), "%s/root_ca.pem", pki);
	if (simtee_pki_init(pki, NULL, &e) < 0 || simtee_td_create(state, NULL, &e) < 0 ||
	    simtee_td_quote(pki, state, rd, &qb, &qlen, &e) < 0 || simtee_pki_collateral(pki, &raw, &e) < 0 ||
	    dcap_trust_anchor_select(true, root_path, &root, &e) < 0) {
		fprintf(stderr, "%s\n", e.msg);
		return 1;
	}
	int rc = bench("simtee-quote", qb, qlen, &raw, root, time(NULL), iters);
	X509_free(root);
	dcap_collateral_raw_free(&raw);
	free(qb);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		return 1;
	return rc < 0;
}
