/*
 * fileio.c — see fileio.h.
 */
#include "core/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"

int file_read_all(const char *path, size_t max_len, uint8_t **out, size_t *out_len, struct err *e)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	_cleanup_free_ uint8_t *data = NULL;
	size_t len = 0, cap = 4096;
	struct stat st;

	if (fd < 0)
		return err_errno(e, "open %s", path);
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		if ((uint64_t)st.st_size > max_len)
			return err_set(e, "%s: file too large (%lld bytes, max %zu)", path,
				       (long long)st.st_size, max_len);
		cap = (size_t)st.st_size + 1;
	}
	data = malloc(cap);
	if (!data)
		abort();
	for (;;) {
		ssize_t n;

		if (len + 1 >= cap) {
			if (cap > max_len + 1)
				return err_set(e, "%s: file too large (max %zu bytes)", path, max_len);
			cap *= 2;
			data = realloc(data, cap);
			if (!data)
				abort();
		}
		n = read(fd, data + len, cap - len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return err_errno(e, "read %s", path);
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max_len)
			return err_set(e, "%s: file too large (max %zu bytes)", path, max_len);
	}
	data[len] = '\0';
	*out = TAKE_PTR(data);
	if (out_len)
		*out_len = len;
	return 0;
}

static int write_full(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode, struct err *e)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	_cleanup_close_ int fd = -1;
	_cleanup_close_ int dfd = -1;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp))
		return err_set(e, "path too long: %s", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return err_errno(e, "create %s", tmp);
	/* The umask may have narrowed or the file may have pre-existed: force it. */
	if (fchmod(fd, mode) < 0 || write_full(fd, data, len) < 0 || fsync(fd) < 0) {
		err_errno(e, "write %s", tmp);
		unlink(tmp);
		return -1;
	}
	close(TAKE_FD(fd));
	if (rename(tmp, path) < 0) {
		err_errno(e, "rename %s to %s", tmp, path);
		unlink(tmp);
		return -1;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0)
		(void)fsync(dfd);
	return 0;
}

bool file_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

int mkdir_p(const char *path, mode_t mode, struct err *e)
{
	char tmp[PATH_MAX];
	size_t len;

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return err_set(e, "path too long: %s", path);
	len = strlen(tmp);
	while (len > 1 && tmp[len - 1] == '/')
		tmp[--len] = '\0';
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return err_errno(e, "mkdir %s", tmp);
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return err_errno(e, "mkdir %s", tmp);
	return 0;
}
