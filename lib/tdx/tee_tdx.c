/*
 * tee_tdx.c — the real TDX backend of tee.h: configfs-tsm quotes, RTMR
 * extend through sysfs (or the tdx_guest ioctl), CCEL from ACPI, and the QGS
 * vsock fallback. Everything except the ioctls and vsock is plain file I/O,
 * so tests drive it against a fake directory tree.
 */
#include "tdx/tee.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

#include "core/cleanup.h"
#include "core/fileio.h"

#define DEFAULT_CONFIGFS "/sys/kernel/config/tsm/report/com.intel.dcap"
#define DEFAULT_RTMR_DIR "/sys/devices/virtual/misc/tdx_guest/measurements"
#define DEFAULT_DEV "/dev/tdx_guest"
#define DEFAULT_CCEL "/sys/firmware/acpi/tables/data/CCEL"
#define DEFAULT_QGS_CONF "/etc/tdx-attest.conf"
#define QGS_DEFAULT_PORT 4050
#define QUOTE_MIN 1021
#define QUOTE_MAX (8 * 1024)
#define TDREPORT_LEN 1024

struct tdx_report_req {
	uint8_t reportdata[64];
	uint8_t tdreport[TDREPORT_LEN];
};
struct tdx_extend_req {
	uint8_t data[48];
	uint8_t index;
};
#define TDX_CMD_GET_REPORT0 _IOWR('T', 1, struct tdx_report_req)
#define TDX_CMD_EXTEND_RTMR _IOR('T', 3, struct tdx_extend_req)

struct tdx_ctx {
	char configfs[PATH_MAX];
	char rtmr_dir[PATH_MAX];
	char dev[PATH_MAX];
	char ccel[PATH_MAX];
	char qgs_conf[PATH_MAX];
};

static void pick(char *dst, const char *given, const char *env, const char *def)
{
	const char *v = given ? given : (env && getenv(env) ? getenv(env) : def);

	snprintf(dst, PATH_MAX, "%s", v);
}

static int read_text(const char *dir, const char *name, char *out, size_t cap, struct err *e)
{
	char path[PATH_MAX + 64];
	_cleanup_close_ int fd = -1;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_errno(e, "open %s", path);
	ssize_t n = pread(fd, out, cap - 1, 0);
	if (n < 0)
		return err_errno(e, "read %s", path);
	out[n] = '\0';
	return 0;
}

static int read_generation(const char *dir, long *gen, struct err *e)
{
	char text[32], *end;

	if (read_text(dir, "generation", text, sizeof(text), e) < 0)
		return -1;
	*gen = strtol(text, &end, 10);
	if (end == text)
		return err_set(e, "configfs-tsm generation '%s' is not a number", text);
	return 0;
}

static int configfs_quote(struct tdx_ctx *c, const uint8_t rd[64], uint8_t **quote, size_t *len,
			  struct err *e)
{
	char provider[64], path[PATH_MAX + 64];
	long gen, now_gen = -1;
	_cleanup_close_ int in = -1;

	if (read_text(c->configfs, "provider", provider, sizeof(provider), e) < 0)
		return -1;
	if (strncmp(provider, "tdx_guest", 9) != 0)
		return err_set(e, "configfs-tsm provider is '%.*s', not tdx_guest",
			       (int)strcspn(provider, "\n"), provider);
	snprintf(path, sizeof(path), "%s/inblob", c->configfs);
	in = open(path, O_WRONLY | O_CLOEXEC);
	if (in < 0)
		return err_errno(e, "open %s", path);
	/* One quote at a time system-wide: the report directory is shared. */
	if (flock(in, LOCK_EX) < 0)
		return err_errno(e, "flock %s", path);
	if (read_generation(c->configfs, &gen, e) < 0)
		return -1;
	if (pwrite(in, rd, 64, 0) != 64)
		return err_errno(e, "write %s", path);
	for (int i = 0; i < 500; i++) {
		if (read_generation(c->configfs, &now_gen, e) < 0)
			return -1;
		if (now_gen == gen + 1)
			break;
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	if (now_gen != gen + 1)
		return err_set(e, "configfs-tsm generation did not advance from %ld within 5 s (now %ld)",
			       gen, now_gen);
	snprintf(path, sizeof(path), "%s/outblob", c->configfs);
	if (file_read_all(path, QUOTE_MAX - 1, quote, len, e) < 0)
		return err_wrap(e, "configfs-tsm outblob");
	if (*len < QUOTE_MIN) {
		free(*quote);
		*quote = NULL;
		return err_set(e, "configfs-tsm outblob too short (%zu bytes)", *len);
	}
	return 0;
}

void tee_qgs_encode_request(const uint8_t tdreport[1024], struct buf *out)
{
	uint32_t size = 16 + 8 + TDREPORT_LEN;
	uint8_t h[4 + 24];
	uint32_t fields[] = {0 /* type */, size, 0 /* err */, TDREPORT_LEN, 0 /* id list */};

	h[0] = (uint8_t)(size >> 24);
	h[1] = (uint8_t)(size >> 16);
	h[2] = (uint8_t)(size >> 8);
	h[3] = (uint8_t)size;
	h[4] = 1; /* major */
	h[5] = 0;
	h[6] = 0; /* minor */
	h[7] = 0;
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
		for (int k = 0; k < 4; k++)
			h[8 + 4 * i + k] = (uint8_t)(fields[i] >> (8 * k));
	buf_append(out, h, sizeof(h));
	buf_append(out, tdreport, TDREPORT_LEN);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int tee_qgs_decode_reply(const uint8_t *m, size_t len, const uint8_t **quote, size_t *quote_len,
			 struct err *e)
{
	if (len < 24)
		return err_set(e, "QGS reply too short");
	uint16_t major = (uint16_t)(m[0] | m[1] << 8);
	uint32_t type = rd32(m + 4), size = rd32(m + 8), status = rd32(m + 12);
	uint32_t ids = rd32(m + 16), qlen = rd32(m + 20);
	if (major != 1 || type != 1)
		return err_set(e, "QGS reply has version %u type %u", major, type);
	if (size != len)
		return err_set(e, "QGS reply size %u does not match %zu", size, len);
	if (status != 0)
		return err_set(e, "QGS error 0x%x", status);
	if ((uint64_t)24 + ids + qlen > len)
		return err_set(e, "QGS reply lengths exceed the message");
	if (qlen < QUOTE_MIN || qlen >= QUOTE_MAX)
		return err_set(e, "QGS quote size %u out of range", qlen);
	*quote = m + 24 + ids;
	*quote_len = qlen;
	return 0;
}

static int qgs_port(const char *conf)
{
	_cleanup_free_ uint8_t *d = NULL;
	size_t n;
	const char *p;

	if (file_read_all(conf, 1 << 16, &d, &n, NULL) < 0)
		return QGS_DEFAULT_PORT;
	if ((p = strstr((const char *)d, "port=")) != NULL) {
		long v = strtol(p + 5, NULL, 10);
		if (v > 0 && v < 65536)
			return (int)v;
	}
	return QGS_DEFAULT_PORT;
}

static int read_full(int fd, void *p, size_t n)
{
	for (size_t got = 0; got < n;) {
		ssize_t r = read(fd, (uint8_t *)p + got, n - got);
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

static int qgs_quote(struct tdx_ctx *c, const uint8_t rd[64], uint8_t **quote, size_t *len, struct err *e)
{
	struct tdx_report_req req;
	_cleanup_close_ int dev = open(c->dev, O_RDWR | O_CLOEXEC);
	_cleanup_close_ int s = -1;
	_cleanup_buf_ struct buf msg = BUF_INIT;
	uint8_t lenbuf[4];

	if (dev < 0)
		return err_errno(e, "open %s", c->dev);
	memset(&req, 0, sizeof(req));
	memcpy(req.reportdata, rd, 64);
	if (ioctl(dev, TDX_CMD_GET_REPORT0, &req) < 0)
		return err_errno(e, "TDX_CMD_GET_REPORT0");
	tee_qgs_encode_request(req.tdreport, &msg);
	struct sockaddr_vm addr = {
	    .svm_family = AF_VSOCK, .svm_cid = 2, .svm_port = (unsigned)qgs_port(c->qgs_conf)};
	s = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return err_errno(e, "connect QGS vsock:2:%u", addr.svm_port);
	if (write(s, msg.data, msg.len) != (ssize_t)msg.len)
		return err_errno(e, "send to QGS");
	if (read_full(s, lenbuf, 4) < 0)
		return err_set(e, "QGS closed the connection");
	uint32_t n =
	    (uint32_t)lenbuf[0] << 24 | (uint32_t)lenbuf[1] << 16 | (uint32_t)lenbuf[2] << 8 | lenbuf[3];
	if (n < 24 || n > 64 * 1024)
		return err_set(e, "QGS reply length %u out of range", n);
	_cleanup_free_ uint8_t *reply = malloc(n);
	if (!reply || read_full(s, reply, n) < 0)
		return err_set(e, "QGS reply truncated");
	const uint8_t *q;
	size_t ql;
	if (tee_qgs_decode_reply(reply, n, &q, &ql, e) < 0)
		return -1;
	*quote = malloc(ql);
	if (!*quote)
		return err_set(e, "out of memory");
	memcpy(*quote, q, ql);
	*len = ql;
	return 0;
}

static int tdx_quote(struct tee *t, const uint8_t rd[64], uint8_t **quote, size_t *len, struct err *e)
{
	struct tdx_ctx *c = t->ctx;
	char probe[PATH_MAX + 16];

	snprintf(probe, sizeof(probe), "%s/provider", c->configfs);
	if (file_exists(probe))
		return configfs_quote(c, rd, quote, len, e) < 0 ? err_wrap(e, "TDX quote") : 0;
	return qgs_quote(c, rd, quote, len, e) < 0 ? err_wrap(e, "TDX quote (QGS)") : 0;
}

static int tdx_extend(struct tee *t, unsigned index, const uint8_t digest[48], struct err *e)
{
	struct tdx_ctx *c = t->ctx;
	char path[PATH_MAX + 32];

	if (index > 3)
		return err_set(e, "no RTMR%u", index);
	snprintf(path, sizeof(path), "%s/rtmr%u:sha384", c->rtmr_dir, index);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t w = write(fd, digest, 48);
		int saved = errno;
		close(fd);
		errno = saved;
		return w == 48 ? 0 : err_errno(e, "extend RTMR%u via %s", index, path);
	}
	if (errno != ENOENT)
		return err_errno(e, "open %s", path);
	_cleanup_close_ int dev = open(c->dev, O_RDWR | O_CLOEXEC);
	struct tdx_extend_req req;
	if (dev < 0)
		return err_errno(e, "extend RTMR%u: neither %s nor %s", index, path, c->dev);
	memcpy(req.data, digest, 48);
	req.index = (uint8_t)index;
	if (ioctl(dev, TDX_CMD_EXTEND_RTMR, &req) < 0)
		return err_errno(e, "TDX_CMD_EXTEND_RTMR");
	return 0;
}

static int tdx_event_log(struct tee *t, uint8_t **ccel, size_t *len, struct err *e)
{
	struct tdx_ctx *c = t->ctx;

	return file_read_all(c->ccel, 16 << 20, ccel, len, e) < 0 ? err_wrap(e, "CCEL") : 0;
}

static void tdx_close(struct tee *t)
{
	free(t->ctx);
	free(t);
}

static const struct tee_ops tdx_ops = {
    .name = "tdx",
    .quote = tdx_quote,
    .extend_rtmr = tdx_extend,
    .event_log = tdx_event_log,
    .close = tdx_close,
};

int tee_tdx_open(struct tee **out, const struct tee_tdx_paths *p, struct err *e)
{
	static const struct tee_tdx_paths none = {0};
	struct tee *t = calloc(1, sizeof(*t));
	struct tdx_ctx *c = calloc(1, sizeof(*c));

	if (!p)
		p = &none;
	if (!t || !c) {
		free(t);
		free(c);
		return err_set(e, "out of memory");
	}
	pick(c->configfs, p->configfs_report, "DCAP_TDX_QUOTE_CONFIGFS_PATH", DEFAULT_CONFIGFS);
	pick(c->rtmr_dir, p->rtmr_dir, "DCAP_TDX_RTMR_SYSFS_PATH", DEFAULT_RTMR_DIR);
	pick(c->dev, p->tdx_guest_dev, NULL, DEFAULT_DEV);
	pick(c->ccel, p->ccel, "DSTACK_CCEL_FILE", DEFAULT_CCEL);
	pick(c->qgs_conf, p->qgs_conf, NULL, DEFAULT_QGS_CONF);
	t->ops = &tdx_ops;
	t->ctx = c;
	*out = t;
	return 0;
}

void tee_close(struct tee *t)
{
	if (t)
		t->ops->close(t);
}
