/*
 * core_test.c — errors, buffers, hex, atomic file writes.
 */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "core/err.h"
#include "core/fileio.h"
#include "core/hex.h"
#include "core/mem.h"
#include "core/tap.h"

static int deny(struct err *e)
{
	return err_set(e, "compose hash not allowed");
}

static int boot_auth(struct err *e)
{
	if (deny(e) < 0)
		return err_wrap(e, "Boot denied");
	return 0;
}

static void test_err(void)
{
	struct err e = ERR_INIT;

	ok(boot_auth(&e) == -1, "failing call returns -1");
	err_wrap(&e, "App not allowed");
	is_str(e.msg, "App not allowed: Boot denied: compose hash not allowed", "cause chain joined by ': '");
	err_clear(&e);
	err_wrap(&e, "only");
	is_str(e.msg, "only", "wrap of empty message has no trailing separator");
	ok(err_set(NULL, "x") == -1, "NULL err is allowed");
}

static void test_buf(void)
{
	_cleanup_buf_ struct buf b = BUF_INIT;

	for (int i = 0; i < 1000; i++)
		buf_printf(&b, "%d,", i);
	is_int(b.len, 3890, "buffer grows through many appends");
	ok(b.data[b.len] == '\0', "buffer stays NUL-terminated");
	buf_reset(&b);
	buf_put_hex(&b, "\x01\xab", 2);
	is_str((char *)b.data, "01ab", "buf_put_hex lowercase");
}

static void test_hex(void)
{
	struct err e = ERR_INIT;
	uint8_t out[4];
	_cleanup_free_ uint8_t *p = NULL;
	size_t n = 0;

	ok(hex_decode_exact("0xDEADbeef", out, 4, &e) == 0, "0x prefix and mixed case accepted");
	is_hex(out, 4, "deadbeef", "decoded bytes");
	ok(hex_decode_exact("deadbe", out, 4, &e) == -1, "short input rejected");
	is_str(e.msg, "invalid hex: expected 4 bytes, got 6 hex digits", "length error message");
	ok(hex_decode_alloc("abc", 3, &p, &n, &e) == -1, "odd length rejected");
	ok(hex_decode_alloc("zz", 2, &p, &n, &e) == -1, "non-hex rejected");
	ok(hex_decode_alloc("", 0, &p, &n, &e) == 0 && n == 0, "empty hex is zero bytes");
	ok(ct_memeq("abc", "abc", 3) && !ct_memeq("abc", "abd", 3), "constant-time compare");
}

static void test_fileio(void)
{
	struct err e = ERR_INIT;
	char dir[] = "/tmp/core_test.XXXXXX", path[256], sub[256];
	_cleanup_free_ uint8_t *data = NULL;
	size_t len = 0;
	struct stat st;

	ok(mkdtemp(dir) != NULL, "temp dir");
	snprintf(sub, sizeof(sub), "%s/a/b/c", dir);
	ok(mkdir_p(sub, 0700, &e) == 0, "mkdir_p nested");
	snprintf(path, sizeof(path), "%s/secret.key", sub);
	ok(file_write_atomic(path, "hello", 5, 0600, &e) == 0, "atomic write");
	ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "secret file mode 0600");
	ok(file_read_all(path, 100, &data, &len, &e) == 0 && len == 5 && memcmp(data, "hello", 5) == 0,
	   "read back");
	free(TAKE_PTR(data));
	ok(file_read_all(path, 4, &data, &len, &e) == -1, "size cap enforced");
	ok(file_read_all("/nonexistent/x", 4, &data, &len, &e) == -1 && strstr(e.msg, "No such file"),
	   "missing file error names the cause");
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ok(system(cmd) == 0, "cleanup");
}

int main(void)
{
	test_err();
	test_buf();
	test_hex();
	test_fileio();
	return tap_done();
}
