/*
 * logs.c — see logs.h. The tail is found by reading backwards in blocks, so
 * a multi-gigabyte serial log costs only the bytes that are returned.
 */
#include "vmm/logs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"

#define TAIL_MAX (64u << 20)

int vmm_log_channel_file(const char *ch, const char **file, struct err *e)
{
	if (!ch || !*ch || !strcmp(ch, "serial"))
		*file = "serial.log";
	else if (!strcmp(ch, "stdout"))
		*file = "stdout.log";
	else if (!strcmp(ch, "stderr"))
		*file = "stderr.log";
	else
		return err_set(e, "Unknown channel %s", ch);
	return 0;
}

size_t vmm_strip_ansi(char *s, size_t len)
{
	size_t j = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] != 0x1b) {
			s[j++] = s[i];
			continue;
		}
		if (i + 1 < len && s[i + 1] == '[') {
			i += 2;
			while (i < len && !((unsigned char)s[i] >= 0x40 && (unsigned char)s[i] <= 0x7e))
				i++;
		} else if (i + 1 < len) {
			i++;
		}
	}
	return j;
}

int vmm_log_tail(const char *path, size_t lines, bool keep_ansi, struct buf *out, uint64_t *end_offset,
		 struct err *e)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	_cleanup_free_ char *data = NULL;
	struct stat st;
	off_t size, start;
	size_t have, found = 0, from;

	if (fd < 0)
		return err_errno(e, "open %s", path);
	if (fstat(fd, &st) < 0)
		return err_errno(e, "stat %s", path);
	size = st.st_size;
	if (end_offset)
		*end_offset = (uint64_t)size;
	if (lines == 0 || size == 0)
		return 0;
	/* Grow the window from the end until it holds `lines` newlines. */
	for (size_t window = 65536;; window *= 2) {
		if (window > TAIL_MAX)
			window = TAIL_MAX;
		start = size > (off_t)window ? size - (off_t)window : 0;
		have = (size_t)(size - start);
		free(data);
		data = malloc(have + 1);
		if (!data)
			abort();
		size_t got = 0;
		while (got < have) {
			ssize_t n = pread(fd, data + got, have - got, start + (off_t)got);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		have = got;
		found = 0;
		/* A trailing newline ends the last line, it does not start one. */
		size_t scan = have && data[have - 1] == '\n' ? have - 1 : have;
		from = 0;
		for (size_t i = scan; i > 0; i--) {
			if (data[i - 1] == '\n' && ++found == lines) {
				from = i;
				break;
			}
		}
		if (found == lines || start == 0 || window == TAIL_MAX)
			break;
	}
	if (found < lines && start > 0) {
		/* window cap hit: drop the partial first line */
		char *nl = memchr(data, '\n', have);
		from = nl ? (size_t)(nl - data) + 1 : have;
	}
	size_t len = have - from;
	if (!keep_ansi)
		len = vmm_strip_ansi(data + from, len);
	buf_append(out, data + from, len);
	return 0;
}
