/*
 * tarx.c — see tarx.h. zlib's gzread reads gzip and plain files alike, so
 * one reader serves `tar` and `tar+gzip` layers. Every entry name goes
 * through clean_name() before it touches the file system.
 */
#include "vmm/tarx.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "core/cleanup.h"
#include "core/fileio.h"
#include "vmm/util.h"
#include "vmm/workdir.h"

#define BLOCK 512
#define NAME_MAX_LEN 4096

struct hdr {
	char name[100], mode[8], uid[8], gid[8], size[12], mtime[12], chksum[8], type, linkname[100];
	char magic[6], version[2], uname[32], gname[32], devmajor[8], devminor[8], prefix[155], pad[12];
};
_Static_assert(sizeof(struct hdr) == BLOCK, "tar header is one block");

/* 1 at a clean end of file, 0 when n bytes were read, -1 otherwise. */
static int read_full(gzFile gz, void *buf, size_t n, struct err *e)
{
	size_t got = 0;

	while (got < n) {
		int r = gzread(gz, (char *)buf + got, (unsigned)(n - got));

		if (r < 0) {
			int zerr;

			return err_set(e, "layer is corrupt: %s", gzerror(gz, &zerr));
		}
		if (r == 0)
			return got == 0 ? 1 : err_set(e, "layer is truncated");
		got += (size_t)r;
	}
	return 0;
}

static int skip_bytes(gzFile gz, uint64_t n, struct err *e)
{
	char scratch[16384];

	while (n) {
		size_t k = n < sizeof(scratch) ? (size_t)n : sizeof(scratch);

		if (read_full(gz, scratch, k, e) != 0)
			return err_set(e, "layer is truncated");
		n -= k;
	}
	return 0;
}

static uint64_t padded(uint64_t n)
{
	return (n + BLOCK - 1) / BLOCK * BLOCK;
}

/* Octal (space/NUL padded) or GNU base-256 number field. */
static int parse_num(const char *f, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0;

	if ((unsigned char)f[0] & 0x80) {
		if ((unsigned char)f[0] != 0x80)
			return -1; /* negative or over 2^56: not a size we accept */
		for (i = 1; i < len; i++) {
			if (v >> 55)
				return -1;
			v = v << 8 | (unsigned char)f[i];
		}
		*out = v;
		return 0;
	}
	while (i < len && f[i] == ' ')
		i++;
	for (; i < len && f[i] >= '0' && f[i] <= '7'; i++) {
		if (v >> 60)
			return -1;
		v = v * 8 + (uint64_t)(f[i] - '0');
	}
	for (; i < len; i++)
		if (f[i] != ' ' && f[i] != '\0')
			return -1;
	*out = v;
	return 0;
}

static bool checksum_ok(const struct hdr *h)
{
	const unsigned char *b = (const unsigned char *)h;
	uint64_t want;
	unsigned long sum = 0;

	if (parse_num(h->chksum, sizeof(h->chksum), &want) < 0)
		return false;
	for (size_t i = 0; i < BLOCK; i++)
		sum += (i >= 148 && i < 156) ? ' ' : b[i];
	return sum == want;
}

static bool all_zero(const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

/*
 * The entry's path relative to the destination: leading "/" and "./" are
 * dropped, "." and empty components removed; ".." anywhere is an error.
 * "" means the destination itself.
 */
static int clean_name(const char *raw, char *out, size_t cap, struct err *e)
{
	_cleanup_free_ char *copy = xstrdup(raw);
	char *save = NULL;
	size_t n = 0;

	out[0] = 0;
	for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		if (!strcmp(c, "."))
			continue;
		if (!strcmp(c, ".."))
			return err_set(e, "layer entry escapes the image directory: %s", raw);
		if (n + strlen(c) + 2 > cap)
			return err_set(e, "layer entry name too long");
		n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? "/" : "", c);
	}
	return 0;
}

/* Remove everything inside dir (an opaque whiteout), keeping dir. */
static int clear_dir(const char *dir, struct err *e)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int rc = 0;

	if (!d)
		return errno == ENOENT ? 0 : err_errno(e, "open %s", dir);
	while ((de = readdir(d))) {
		_cleanup_free_ char *p = NULL;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		p = path_join(dir, de->d_name);
		if (vmm_workdir_remove(p, e) < 0) {
			rc = -1;
			break;
		}
	}
	closedir(d);
	return rc;
}

static int make_parent(const char *path, struct err *e)
{
	_cleanup_free_ char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');

	if (!slash)
		return 0;
	*slash = 0;
	return mkdir_p(dir, 0755, e);
}

static int whiteout(const char *dest, const char *rel, struct tarx_stats *st, struct err *e)
{
	_cleanup_free_ char *dir = xstrdup(rel), *target = NULL;
	char *slash = strrchr(dir, '/');
	const char *base = slash ? slash + 1 : dir;
	_cleanup_free_ char *parent = slash ? (*slash = 0, path_join(dest, dir)) : xstrdup(dest);

	st->whiteouts++;
	if (!strcmp(base, ".wh..wh..opq"))
		return clear_dir(parent, e);
	if (!base[4])
		return 0;
	target = path_join(parent, base + 4);
	return vmm_workdir_remove(target, e);
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int write_file(gzFile gz, const char *path, uint64_t size, mode_t mode, struct err *e)
{
	char buf[65536];
	struct stat sb;
	int fd;

	if (make_parent(path, e) < 0)
		return -1;
	/* a later layer replaces what an earlier one wrote here, file or directory */
	if (lstat(path, &sb) == 0 && vmm_workdir_remove(path, e) < 0)
		return -1;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return err_errno(e, "create %s", path);
	while (size) {
		size_t k = size < sizeof(buf) ? (size_t)size : sizeof(buf);

		if (read_full(gz, buf, k, e) != 0) {
			close(fd);
			return err_set(e, "layer is truncated");
		}
		if (write_all(fd, buf, k) < 0) {
			int saved = errno;

			close(fd);
			errno = saved;
			return err_errno(e, "write %s", path);
		}
		size -= k;
	}
	if (fchmod(fd, mode) < 0 || close(fd) < 0)
		return err_errno(e, "close %s", path);
	return 0;
}

/* pax records "LEN key=value\n": path and size are honoured. */
static void parse_pax(const char *rec, size_t len, char *path, size_t cap, uint64_t *size, bool *has_size)
{
	size_t off = 0;

	while (off < len) {
		char *end;
		unsigned long n = strtoul(rec + off, &end, 10);
		const char *kv = end + 1;

		if (end == rec + off || *end != ' ' || n == 0 || n > len - off)
			return;
		size_t kvlen = n - (size_t)(kv - (rec + off)) - 1; /* without the newline */
		if (kvlen >= 5 && !strncmp(kv, "path=", 5))
			snprintf(path, cap, "%.*s", (int)(kvlen - 5), kv + 5);
		else if (kvlen >= 5 && !strncmp(kv, "size=", 5)) {
			char num[32];

			snprintf(num, sizeof(num), "%.*s", (int)(kvlen - 5 < 31 ? kvlen - 5 : 31), kv + 5);
			*size = strtoull(num, NULL, 10);
			*has_size = true;
		}
		off += n;
	}
}

/* The data of a meta entry ('L' or 'x'), NUL-terminated, at most NAME_MAX_LEN * 4 bytes. */
static char *read_meta(gzFile gz, uint64_t size, struct err *e)
{
	char *d;

	if (size > NAME_MAX_LEN * 4)
		return err_set(e, "layer has an oversized extended header"), NULL;
	d = malloc((size_t)padded(size) + 1);
	if (!d)
		abort();
	if (read_full(gz, d, (size_t)padded(size), e) != 0) {
		free(d);
		return err_set(e, "layer is truncated"), NULL;
	}
	d[size] = 0;
	return d;
}

int tarx_unpack(const char *archive, const char *dest, struct tarx_stats *st, struct err *e)
{
	gzFile gz = gzopen(archive, "rb");
	char long_name[NAME_MAX_LEN] = "";
	uint64_t pax_size = 0;
	bool has_pax_size = false;
	int rc = -1;

	memset(st, 0, sizeof(*st));
	if (!gz)
		return err_errno(e, "open %s", archive);
	gzbuffer(gz, 1 << 16);
	for (;;) {
		struct hdr h;
		char raw[NAME_MAX_LEN], rel[NAME_MAX_LEN];
		uint64_t size, mode;
		int r = read_full(gz, &h, BLOCK, e);

		if (r == 1 || (r == 0 && all_zero(&h, BLOCK)))
			break; /* end of archive */
		if (r < 0)
			goto out;
		if (!checksum_ok(&h)) {
			err_set(e, "layer is not a tar archive (bad header checksum)");
			goto out;
		}
		if (parse_num(h.size, sizeof(h.size), &size) < 0 ||
		    parse_num(h.mode, sizeof(h.mode), &mode) < 0) {
			err_set(e, "layer has a malformed tar header");
			goto out;
		}
		if (h.type == 'L' || h.type == 'x') { /* GNU long name / pax header for the next entry */
			_cleanup_free_ char *meta = read_meta(gz, size, e);

			if (!meta)
				goto out;
			if (h.type == 'L')
				snprintf(long_name, sizeof(long_name), "%s", meta);
			else
				parse_pax(meta, (size_t)size, long_name, sizeof(long_name), &pax_size,
					  &has_pax_size);
			continue;
		}
		if (h.type == 'g' || h.type == 'K') { /* global pax, GNU long link name: not needed */
			if (skip_bytes(gz, padded(size), e) < 0)
				goto out;
			continue;
		}
		if (has_pax_size)
			size = pax_size;
		if (long_name[0])
			snprintf(raw, sizeof(raw), "%s", long_name);
		else if (h.prefix[0] && !memcmp(h.magic, "ustar", 5))
			snprintf(raw, sizeof(raw), "%.155s/%.100s", h.prefix, h.name);
		else
			snprintf(raw, sizeof(raw), "%.100s", h.name);
		long_name[0] = 0;
		has_pax_size = false;
		if (clean_name(raw, rel, sizeof(rel), e) < 0)
			goto out;
		_cleanup_free_ char *path = rel[0] ? path_join(dest, rel) : xstrdup(dest);
		const char *base = strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel;

		if (rel[0] && !strncmp(base, ".wh.", 4)) {
			if (whiteout(dest, rel, st, e) < 0 || skip_bytes(gz, padded(size), e) < 0)
				goto out;
			continue;
		}
		if (h.type == '0' || h.type == '\0' || h.type == '7') {
			if (!rel[0]) {
				err_set(e, "layer has a file entry without a name");
				goto out;
			}
			if (write_file(gz, path, size, (mode_t)(mode & 0755) ?: 0644, e) < 0 ||
			    skip_bytes(gz, padded(size) - size, e) < 0)
				goto out;
			st->files++;
			st->bytes += size;
		} else if (h.type == '5') {
			struct stat sb;

			if (lstat(path, &sb) == 0 && !S_ISDIR(sb.st_mode) && vmm_workdir_remove(path, e) < 0)
				goto out;
			if (mkdir_p(path, 0755, e) < 0 || skip_bytes(gz, padded(size), e) < 0)
				goto out;
			st->dirs++;
		} else { /* links, devices, FIFOs: never created */
			if (skip_bytes(gz, padded(size), e) < 0)
				goto out;
			st->skipped++;
		}
	}
	rc = 0;
out:
	gzclose(gz);
	return rc;
}
