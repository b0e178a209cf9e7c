/*
 * simtee_pccs_test.c — end to end with real processes: `dstack simtee init`,
 * `td-create` and `quote` make a simulated quote; `dstack simtee serve`
 * serves the collateral over HTTP on loopback; the PCCS client fetches it
 * (cold), then verifies warm without network, then a fresh client verifies
 * from the disk cache with the server gone. The default (Intel root) client
 * refuses the same quote.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/tap.h"
#include "tdx/collateral.h"
#include "tdx/pccs.h"

static char tmp[64];

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

/* Start `dstack simtee serve` and read its port from the first stdout line. */
static pid_t start_server(const char *dstack, const char *dir, int *port)
{
	int fds[2];

	if (pipe(fds) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		execl(dstack, dstack, "simtee", "serve", "--dir", dir, "--listen", "tcp:127.0.0.1:0",
		      (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	FILE *f = fdopen(fds[0], "r");
	char line[256] = "";
	if (!f || !fgets(line, sizeof(line), f))
		return -1;
	fclose(f);
	const char *p = strstr(line, "port ");
	*port = p ? atoi(p + 5) : 0;
	return pid;
}

int main(void)
{
	const char *dstack = getenv("DSTACK");
	char dir[128], state[128], qpath[128], cache[128], url[64], root_path[160];
	struct err e = ERR_INIT;
	int port = 0;

	if (!dstack)
		return 1;
	strcpy(tmp, "/tmp/attest-test-XXXXXX");
	if (!mkdtemp(tmp))
		return 1;
	snprintf(dir, sizeof(dir), "%s/pki", tmp);
	snprintf(state, sizeof(state), "%s/td.json", tmp);
	snprintf(qpath, sizeof(qpath), "%s/quote.bin", tmp);
	snprintf(cache, sizeof(cache), "%s/cache", tmp);
	snprintf(root_path, sizeof(root_path), "%s/root_ca.pem", dir);

	is_int(run("%s simtee init %s >/dev/null", dstack, dir), 0, "simtee init");
	is_int(run("%s simtee td-create --state %s", dstack, state), 0, "simtee td-create");
	is_int(run("%s simtee extend --state %s --index 3 --digest %096d", dstack, state, 7), 0,
	       "simtee extend");
	is_int(run("%s simtee quote --dir %s --state %s --report-data 0badc0de --out %s", dstack, dir, state,
		   qpath),
	       0, "simtee quote");
	ok(run("%s simtee extend --state %s --index 0 --digest %096d 2>/dev/null", dstack, state, 7) != 0,
	   "extend of RTMR0 refused");

	pid_t srv = start_server(dstack, dir, &port);
	ok(srv > 0 && port > 0, "simtee serve listening on port %d", port);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);

	_cleanup_free_ uint8_t *qb = NULL;
	size_t qlen = 0;
	ok(file_read_all(qpath, 1 << 16, &qb, &qlen, &e) == 0, "quote file");

	/* Default trust anchor (Intel): refused. */
	struct pccs_client *intel = NULL;
	struct dcap_result r;
	ok(pccs_client_new(&intel, url, NULL, NULL, &e) == 0, "client with the Intel root");
	ok(pccs_verify_quote(intel, qb, qlen, time(NULL), &r, NULL, &e) < 0,
	   "simulated quote refused by default");
	ok(strstr(e.msg, "not signed by the trust anchor") != NULL, "refusal reason: %s", e.msg);
	pccs_client_free(intel);

	/* Dev root configured explicitly: accepted; second verification is warm. */
	X509 *root = NULL;
	ok(dcap_trust_anchor_select(false, root_path, &root, &e) < 0, "dev root needs the insecure flag");
	ok(dcap_trust_anchor_select(true, root_path, &root, &e) == 0, "dev root with the insecure flag");
	struct pccs_client *pc = NULL;
	struct quote q;
	ok(pccs_client_new(&pc, url, cache, root, &e) == 0, "client with the dev root");
	ok(pccs_verify_quote(pc, qb, qlen, time(NULL), &r, &q, &e) == 0, "cold verification via PCCS (%s)",
	   e.msg);
	is_str(tcb_status_name(r.status), "UpToDate", "status");
	is_hex(q.td.report_data, 4, "0badc0de", "report data");
	quote_free(&q);
	dcap_result_free(&r);
	unsigned long cold = pccs_client_fetch_count(pc);
	is_int(cold, 4, "cold verification made the 4 PCCS requests");
	ok(pccs_verify_quote(pc, qb, qlen, time(NULL), &r, NULL, &e) == 0, "warm verification");
	dcap_result_free(&r);
	is_int(pccs_client_fetch_count(pc), cold, "warm verification did no network I/O");
	pccs_client_free(pc);

	/* Server gone: a new client verifies from the disk cache. */
	kill(srv, SIGTERM);
	int st;
	waitpid(srv, &st, 0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "server exits cleanly on SIGTERM");
	ok(pccs_client_new(&pc, url, cache, root, &e) == 0, "fresh client");
	ok(pccs_verify_quote(pc, qb, qlen, time(NULL), &r, NULL, &e) == 0,
	   "verification from the disk cache (%s)", e.msg);
	is_int(pccs_client_fetch_count(pc), 0, "no network for disk-cached collateral");
	dcap_result_free(&r);
	pccs_client_free(pc);

	/* Past nextUpdate the cache is stale and the (gone) server is needed: fails. */
	ok(pccs_client_new(&pc, url, cache, root, &e) == 0, "client for the expiry check");
	ok(pccs_verify_quote(pc, qb, qlen, time(NULL) + 400L * 86400, &r, NULL, &e) < 0,
	   "stale cache and no server: rejected");
	diag("%s", e.msg);
	pccs_client_free(pc);

	/* The CLI verifier over PCCS. */
	is_int(run("%s simtee verify --dir %s %s | grep -q '\"status\":\"UpToDate\"'", dstack, dir, qpath), 0,
	       "dstack simtee verify (offline collateral)");
	X509_free(root);
	run("rm -rf '%s'", tmp);
	return tap_done();
}
