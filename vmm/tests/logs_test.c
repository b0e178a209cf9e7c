/*
 * logs_test.c — log channels, tail of the last N lines (small and large
 * files), ANSI stripping.
 */
#include "core/cleanup.h"
#include "core/tap.h"
#include "testutil.h"
#include "vmm/logs.h"

int main(void)
{
	char *d = tu_tmpdir();
	const char *f;
	struct err e = ERR_INIT;
	struct buf b = BUF_INIT;
	uint64_t end;

	ok(vmm_log_channel_file(NULL, &f, &e) == 0 && !strcmp(f, "serial.log"), "default serial");
	ok(vmm_log_channel_file("stdout", &f, &e) == 0 && !strcmp(f, "stdout.log"), "stdout");
	ok(vmm_log_channel_file("stderr", &f, &e) == 0 && !strcmp(f, "stderr.log"), "stderr");
	ok(vmm_log_channel_file("x", &f, &e) < 0, "unknown");
	is_str(e.msg, "Unknown channel x", "message");

	_cleanup_free_ char *p = path_join(d, "serial.log");
	tu_write(d, "serial.log", "a\nb\n\x1b[1;32mgreen\x1b[0m\nlast");
	ok(vmm_log_tail(p, 2, false, &b, &end, &e) == 0, "tail");
	is_str((char *)b.data, "green\nlast", "last 2 lines, ANSI stripped");
	is_int(end, 25, "end offset = file size");
	buf_reset(&b);
	vmm_log_tail(p, 2, true, &b, NULL, &e);
	is_str((char *)b.data, "\x1b[1;32mgreen\x1b[0m\nlast", "ansi kept");
	buf_reset(&b);
	vmm_log_tail(p, 100, false, &b, NULL, &e);
	is_str((char *)b.data, "a\nb\ngreen\nlast", "fewer lines than asked: whole file");
	buf_reset(&b);
	tu_write(d, "serial.log", "x\ny\n");
	vmm_log_tail(p, 1, false, &b, NULL, &e);
	is_str((char *)b.data, "y\n", "trailing newline ends the last line");
	buf_reset(&b);

	/* 200k lines: the tail must come from the end, across block boundaries */
	struct buf big = BUF_INIT;
	for (int i = 0; i < 200000; i++)
		buf_printf(&big, "line %d\n", i);
	tu_write(d, "big.log", (char *)big.data);
	_cleanup_free_ char *bp = path_join(d, "big.log");
	ok(vmm_log_tail(bp, 3, false, &b, NULL, &e) == 0, "big tail");
	is_str((char *)b.data, "line 199997\nline 199998\nline 199999\n", "last 3 of 200000");
	buf_reset(&b);
	ok(vmm_log_tail(bp, 10000, false, &b, NULL, &e) == 0 && !strncmp((char *)b.data, "line 190000\n", 12),
	   "10000 lines span several blocks");
	buf_free(&big);
	buf_reset(&b);
	_cleanup_free_ char *missing = path_join(d, "none.log");
	ok(vmm_log_tail(missing, 1, false, &b, NULL, &e) < 0, "missing file");
	char s[] = "\x1b"
		   "c"
		   "ok\x1b[2K";
	is_int(vmm_strip_ansi(s, strlen(s)), 2, "two-byte ESC and CSI removed");
	buf_free(&b);
	tu_rmrf(d);
	return tap_done();
}
