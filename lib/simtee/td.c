/*
 * td.c — simulated TD state, boot event log and quotes (see td.h).
 */
#include "simtee/td.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/hex.h"
#include "simtee/pki.h"

#define STATE_MAX (1 << 20)
#define TCG_SHA384 0x000c
#define EV_NO_ACTION 0x00000003
#define EV_SEPARATOR 0x00000004
#define EV_IPL 0x0000000d
#define EV_EFI_VARIABLE_DRIVER_CONFIG 0x80000001
#define EV_EFI_BOOT_SERVICES_APPLICATION 0x80000003
#define EV_EFI_ACTION 0x80000007
#define EV_EFI_HANDOFF_TABLES2 0x8000000b

static const char default_cmdline[] = "console=ttyS0 init=/init panic=1 dstack.simtee=1";

struct lock {
	int fd;
};

static int lock_state(const char *state_path, struct lock *l, struct err *e)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s.lock", state_path);
	l->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (l->fd < 0)
		return err_errno(e, "open %s", path);
	if (flock(l->fd, LOCK_EX) < 0) {
		close(l->fd);
		l->fd = -1;
		return err_errno(e, "flock %s", path);
	}
	return 0;
}

static void unlock_state(struct lock *l)
{
	if (l->fd >= 0)
		close(l->fd); /* releases the flock */
	l->fd = -1;
}

static int sha384(const void *a, size_t alen, const void *b, size_t blen, uint8_t out[48])
{
	unsigned int n = 0;
	_cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();

	return md && EVP_DigestInit_ex(md, EVP_sha384(), NULL) && EVP_DigestUpdate(md, a, alen) &&
		       (!b || EVP_DigestUpdate(md, b, blen)) && EVP_DigestFinal_ex(md, out, &n)
		   ? 0
		   : -1;
}

static void put32(struct buf *b, uint32_t v)
{
	uint8_t p[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};

	buf_append(b, p, 4);
}

static void put16(struct buf *b, uint16_t v)
{
	uint8_t p[2] = {(uint8_t)v, (uint8_t)(v >> 8)};

	buf_append(b, p, 2);
}

/* Append one TCG_PCR_EVENT2 (SHA-384 only) and extend the matching RTMR. */
static int add_event(struct buf *log, uint8_t rtmr[4][48], unsigned imr, uint32_t type, const void *payload,
		     size_t len)
{
	uint8_t digest[48];

	if (sha384(payload, len, NULL, 0, digest) < 0 || sha384(rtmr[imr], 48, digest, 48, rtmr[imr]) < 0)
		return -1;
	put32(log, imr + 1); /* PCR index = IMR + 1 */
	put32(log, type);
	put32(log, 1);
	put16(log, TCG_SHA384);
	buf_append(log, digest, 48);
	put32(log, (uint32_t)len);
	buf_append(log, payload, len);
	return 0;
}

static int build_boot_log(const char *cmdline, struct buf *log, uint8_t rtmr[4][48], struct err *e)
{
	static const uint8_t separator[4] = {0};
	static const char spec_sig[16] = "Spec ID Event03";
	_cleanup_buf_ struct buf spec = BUF_INIT;
	int rc = 0;

	memset(rtmr, 0, 4 * 48);
	/* SpecID header event, SHA-1 log format as TCG requires. */
	buf_append(&spec, spec_sig, 16);
	put32(&spec, 0); /* platform class */
	buf_putc(&spec, 0);
	buf_putc(&spec, 2);
	buf_putc(&spec, 0);
	buf_putc(&spec, 2); /* uintn size */
	put32(&spec, 1);
	put16(&spec, TCG_SHA384);
	put16(&spec, 48);
	buf_putc(&spec, 0); /* vendor info size */
	put32(log, 0);
	put32(log, EV_NO_ACTION);
	for (int i = 0; i < 20; i++)
		buf_putc(log, 0);
	put32(log, (uint32_t)spec.len);
	buf_append(log, spec.data, spec.len);

	rc |= add_event(log, rtmr, 0, EV_EFI_HANDOFF_TABLES2, "simtee TD_HOB", 13);
	rc |= add_event(log, rtmr, 0, EV_EFI_VARIABLE_DRIVER_CONFIG, "SecureBoot=0", 12);
	rc |= add_event(log, rtmr, 0, EV_SEPARATOR, separator, 4);
	rc |= add_event(log, rtmr, 1, EV_EFI_BOOT_SERVICES_APPLICATION, "simtee kernel", 13);
	rc |= add_event(log, rtmr, 1, EV_EFI_ACTION, "Exit Boot Services Invocation", 29);
	rc |= add_event(log, rtmr, 2, EV_IPL, cmdline, strlen(cmdline));
	rc |= add_event(log, rtmr, 2, EV_IPL, "simtee initrd", 13);
	for (int i = 0; i < 4; i++)
		buf_putc(log, 0xff); /* end of log */
	return rc ? err_set(e, "SHA-384 failed") : 0;
}

static int put_hex(json_t *o, const char *k, const void *d, size_t n)
{
	_cleanup_free_ char *h = hex_encode_alloc(d, n);

	return h ? json_object_set_new(o, k, json_string(h)) : -1;
}

static int write_state(const char *path, const struct simtee_td_state *st, const uint8_t *ccel,
		       size_t ccel_len, struct err *e)
{
	_cleanup_json_ json_t *o = json_object(), *rt = json_array();

	if (!o || !rt)
		return err_set(e, "out of memory");
	put_hex(o, "mr_td", st->mr_td, 48);
	put_hex(o, "mr_config_id", st->mr_config_id, 48);
	put_hex(o, "mr_owner", st->mr_owner, 48);
	put_hex(o, "mr_owner_config", st->mr_owner_config, 48);
	put_hex(o, "td_attributes", st->td_attributes, 8);
	put_hex(o, "xfam", st->xfam, 8);
	for (int i = 0; i < 4; i++) {
		_cleanup_free_ char *h = hex_encode_alloc(st->rtmr[i], 48);
		json_array_append_new(rt, json_string(h));
	}
	json_object_set(o, "rtmr", rt);
	put_hex(o, "ccel", ccel, ccel_len);
	_cleanup_free_ char *text = json_dumps(o, JSON_INDENT(1));
	if (!text)
		return err_set(e, "out of memory");
	return file_write_atomic(path, text, strlen(text), 0600, e);
}

static int get_hex(json_t *o, const char *k, void *out, size_t n, struct err *e)
{
	json_t *v = json_object_get(o, k);

	if (!json_is_string(v))
		return err_set(e, "missing '%s'", k);
	return hex_decode_exact(json_string_value(v), out, n, e) < 0 ? err_wrap(e, "'%s'", k) : 0;
}

static int read_state(const char *path, struct simtee_td_state *st, uint8_t **ccel, size_t *ccel_len,
		      struct err *e)
{
	_cleanup_free_ uint8_t *d = NULL;
	size_t n;
	json_error_t je;

	if (file_read_all(path, STATE_MAX, &d, &n, e) < 0)
		return err_wrap(e, "simulated TD state");
	_cleanup_json_ json_t *o = json_loadb((const char *)d, n, 0, &je);
	if (!json_is_object(o))
		return err_set(e, "simulated TD state %s: invalid JSON", path);
	json_t *rt = json_object_get(o, "rtmr");
	if (get_hex(o, "mr_td", st->mr_td, 48, e) < 0 ||
	    get_hex(o, "mr_config_id", st->mr_config_id, 48, e) < 0 ||
	    get_hex(o, "mr_owner", st->mr_owner, 48, e) < 0 ||
	    get_hex(o, "mr_owner_config", st->mr_owner_config, 48, e) < 0 ||
	    get_hex(o, "td_attributes", st->td_attributes, 8, e) < 0 ||
	    get_hex(o, "xfam", st->xfam, 8, e) < 0)
		return err_wrap(e, "simulated TD state %s", path);
	if (!json_is_array(rt) || json_array_size(rt) != 4)
		return err_set(e, "simulated TD state %s: rtmr must have 4 entries", path);
	for (size_t i = 0; i < 4; i++) {
		json_t *v = json_array_get(rt, i);
		if (!json_is_string(v) || hex_decode_exact(json_string_value(v), st->rtmr[i], 48, e) < 0)
			return err_set(e, "simulated TD state %s: bad rtmr[%zu]", path, i);
	}
	if (ccel) {
		json_t *c = json_object_get(o, "ccel");
		if (!json_is_string(c) ||
		    hex_decode_alloc(json_string_value(c), json_string_length(c), ccel, ccel_len, e) < 0)
			return err_set(e, "simulated TD state %s: bad ccel", path);
	}
	return 0;
}

int simtee_td_create(const char *state_path, const struct simtee_td_init *init, struct err *e)
{
	struct simtee_td_state st;
	_cleanup_buf_ struct buf log = BUF_INIT;
	struct lock l = {-1};
	static const struct simtee_td_init none = {0};

	if (!init)
		init = &none;
	memset(&st, 0, sizeof(st));
	if (init->mr_td)
		memcpy(st.mr_td, init->mr_td, 48);
	else
		memset(st.mr_td, 0x11, 48);
	if (init->mr_config_id)
		memcpy(st.mr_config_id, init->mr_config_id, 48);
	if (init->mr_owner)
		memcpy(st.mr_owner, init->mr_owner, 48);
	if (init->mr_owner_config)
		memcpy(st.mr_owner_config, init->mr_owner_config, 48);
	st.td_attributes[3] = 0x10; /* SEPT_VE_DISABLE (bit 28) */
	st.xfam[0] = 0xe7;
	st.xfam[1] = 0x02;
	st.xfam[2] = 0x06;
	if (build_boot_log(init->kernel_cmdline ? init->kernel_cmdline : default_cmdline, &log, st.rtmr, e) <
	    0)
		return -1;
	if (lock_state(state_path, &l, e) < 0)
		return -1;
	int rc = write_state(state_path, &st, log.data, log.len, e);
	unlock_state(&l);
	return rc;
}

int simtee_td_read(const char *state_path, struct simtee_td_state *out, struct err *e)
{
	struct lock l = {-1};

	if (lock_state(state_path, &l, e) < 0)
		return -1;
	int rc = read_state(state_path, out, NULL, NULL, e);
	unlock_state(&l);
	return rc;
}

int simtee_td_extend(const char *state_path, unsigned index, const uint8_t digest[48], struct err *e)
{
	struct simtee_td_state st;
	_cleanup_free_ uint8_t *ccel = NULL;
	size_t ccel_len = 0;
	struct lock l = {-1};
	int rc = -1;

	if (index != 2 && index != 3)
		return err_set(e, "RTMR%u cannot be extended (only 2 and 3)", index);
	if (lock_state(state_path, &l, e) < 0)
		return -1;
	if (read_state(state_path, &st, &ccel, &ccel_len, e) == 0) {
		if (sha384(st.rtmr[index], 48, digest, 48, st.rtmr[index]) < 0)
			err_set(e, "SHA-384 failed");
		else
			rc = write_state(state_path, &st, ccel, ccel_len, e);
	}
	unlock_state(&l);
	return rc;
}

int simtee_td_event_log(const char *state_path, uint8_t **ccel, size_t *len, struct err *e)
{
	struct simtee_td_state st;
	struct lock l = {-1};

	if (lock_state(state_path, &l, e) < 0)
		return -1;
	int rc = read_state(state_path, &st, ccel, len, e);
	unlock_state(&l);
	return rc;
}

int simtee_td_quote(const char *pki_dir, const char *state_path, const uint8_t report_data[64],
		    uint8_t **quote, size_t *len, struct err *e)
{
	struct simtee_pki pki;
	struct simtee_td_state st;
	_cleanup_buf_ struct buf q = BUF_INIT;

	if (simtee_td_read(state_path, &st, e) < 0)
		return -1;
	if (simtee_pki_load(pki_dir, &pki, e) < 0)
		return -1;
	int rc = simtee_build_quote(&pki, &st, report_data, &q, e);
	simtee_pki_free(&pki);
	if (rc < 0)
		return -1;
	*quote = buf_steal(&q, len);
	return 0;
}
