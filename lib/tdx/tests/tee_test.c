/*
 * tee_test.c — the real TDX backend of tee.h against a fake configfs-tsm /
 * sysfs tree: a child process plays the kernel (watches inblob, writes
 * outblob, bumps generation), so the quote protocol, provider check, RTMR
 * sysfs writes and the QGS message format are exercised without hardware.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/tap.h"
#include "tdx/quote.h"
#include "tdx/tee.h"

static char root[64], cfg[128], meas[128];

static void put(const char *d, const char *name, const void *data, size_t len)
{
	char p[256];

	snprintf(p, sizeof(p), "%s/%s", d, name);
	file_write_atomic(p, data, len, 0644, NULL);
}

/* The fake kernel: when inblob holds 64 bytes, answer with a quote carrying them. */
static void fake_kernel(const uint8_t *quote, size_t qlen)
{
	char p[256];
	uint8_t rd[64];

	snprintf(p, sizeof(p), "%s/inblob", cfg);
	for (int i = 0; i < 1000; i++) {
		int fd = open(p, O_RDONLY);
		ssize_t n = fd >= 0 ? read(fd, rd, 64) : -1;
		if (fd >= 0)
			close(fd);
		if (n == 64) {
			uint8_t *q = malloc(qlen);
			memcpy(q, quote, qlen);
			memcpy(q + QUOTE_V4_REPORT_DATA_OFFSET, rd, 64);
			put(cfg, "outblob", q, qlen);
			put(cfg, "generation", "8\n", 2);
			free(q);
			_exit(0);
		}
		usleep(5000);
	}
	_exit(1);
}

int main(void)
{
	struct err e = ERR_INIT;
	struct tee *t = NULL;
	uint8_t *fixture = NULL, *q = NULL, rd[64], d[48];
	size_t flen, qlen;
	char p[512];

	snprintf(p, sizeof(p), "%s/dcap/tdx_quote.bin", getenv("TESTDATA"));
	if (file_read_all(p, 1 << 16, &fixture, &flen, &e) < 0)
		return 1;
	strcpy(root, "/tmp/tee-test-XXXXXX");
	if (!mkdtemp(root))
		return 1;
	snprintf(cfg, sizeof(cfg), "%s/tsm/report/com.intel.dcap", root);
	snprintf(meas, sizeof(meas), "%s/measurements", root);
	mkdir_p(cfg, 0755, NULL);
	mkdir_p(meas, 0755, NULL);
	put(cfg, "provider", "tdx_guest\n", 10);
	put(cfg, "generation", "7\n", 2);
	put(cfg, "inblob", "", 0);
	put(meas, "rtmr3:sha384", "", 0);

	struct tee_tdx_paths paths = {.configfs_report = cfg,
				      .rtmr_dir = meas,
				      .tdx_guest_dev = "/nonexistent",
				      .ccel = "/nonexistent/ccel"};
	ok(tee_tdx_open(&t, &paths, &e) == 0, "real backend opens");
	is_str(t->ops->name, "tdx", "backend name");

	for (int i = 0; i < 64; i++)
		rd[i] = (uint8_t)(0xa0 + i);
	pid_t pid = fork();
	if (pid == 0)
		fake_kernel(fixture, flen);
	ok(tee_quote(t, rd, &q, &qlen, &e) == 0, "configfs-tsm quote (%s)", e.msg);
	int st;
	waitpid(pid, &st, 0);
	ok(q && qlen == flen && memcmp(q + QUOTE_V4_REPORT_DATA_OFFSET, rd, 64) == 0,
	   "outblob returned with our report data");
	free(q);
	q = NULL;

	/* Generation never advances → timeout error, not a hang. */
	put(cfg, "inblob", "", 0);
	ok(tee_quote(t, rd, &q, &qlen, &e) < 0, "stuck generation fails");
	ok(strstr(e.msg, "did not advance") != NULL, "timeout message: %s", e.msg);

	put(cfg, "provider", "sev_guest\n", 10);
	ok(tee_quote(t, rd, &q, &qlen, &e) < 0 && strstr(e.msg, "not tdx_guest"),
	   "wrong provider refused (%s)", e.msg);

	/* RTMR extend writes the 48-byte digest to the sysfs attribute. */
	memset(d, 0x42, sizeof(d));
	ok(tee_extend_rtmr(t, 3, d, &e) == 0, "RTMR3 extend via sysfs (%s)", e.msg);
	_cleanup_free_ uint8_t *got = NULL;
	size_t glen;
	snprintf(p, sizeof(p), "%s/rtmr3:sha384", meas);
	ok(file_read_all(p, 4096, &got, &glen, &e) == 0 && glen == 48 && memcmp(got, d, 48) == 0,
	   "digest written");
	ok(tee_extend_rtmr(t, 2, d, &e) < 0 && strstr(e.msg, "neither"),
	   "missing sysfs and device reported (%s)", e.msg);
	ok(tee_event_log(t, &q, &qlen, &e) < 0, "missing CCEL reported");
	tee_close(t);

	/* QGS message format. */
	uint8_t report[1024];
	memset(report, 0x77, sizeof(report));
	_cleanup_buf_ struct buf req = BUF_INIT;
	tee_qgs_encode_request(report, &req);
	is_int(req.len, 4 + 1048, "QGS request length");
	is_hex(req.data, 12,
	       "0000041801000000"
	       "00000000",
	       "length prefix (BE), version 1.0, type 0");
	ok(memcmp(req.data + 28, report, 1024) == 0, "TDREPORT follows the header");

	_cleanup_buf_ struct buf reply = BUF_INIT;
	uint8_t h[24] = {1, 0, 0, 0, 1, 0, 0, 0};
	uint32_t size = 24 + 2 + (uint32_t)flen;
	for (int k = 0; k < 4; k++) {
		h[8 + k] = (uint8_t)(size >> (8 * k));
		h[16 + k] = (uint8_t)(2 >> (8 * k));
		h[20 + k] = (uint8_t)(flen >> (8 * k));
	}
	buf_append(&reply, h, 24);
	buf_append(&reply, "id", 2);
	buf_append(&reply, fixture, flen);
	const uint8_t *qq;
	size_t ql;
	ok(tee_qgs_decode_reply(reply.data, reply.len, &qq, &ql, &e) == 0 && ql == flen &&
	       memcmp(qq, fixture, flen) == 0,
	   "QGS reply decodes (%s)", e.msg);
	reply.data[12] = 5;
	ok(tee_qgs_decode_reply(reply.data, reply.len, &qq, &ql, &e) < 0 && strstr(e.msg, "QGS error 0x5"),
	   "QGS error status reported");
	reply.data[12] = 0;
	ok(tee_qgs_decode_reply(reply.data, reply.len - 1, &qq, &ql, &e) < 0, "QGS size mismatch rejected");

	free(fixture);
	snprintf(p, sizeof(p), "rm -rf '%s'", root);
	if (system(p) != 0)
		diag("cleanup failed");
	return tap_done();
}
