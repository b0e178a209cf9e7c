/*
 * disk.c — the data disk of guest.md §5g: LUKS2 via cryptsetup(8), then
 * ext4 (mkfs.ext4 + mount(2)) or ZFS (zpool/zfs).
 *
 * The tools run as child processes; the passphrase (hex text of the disk
 * key) reaches cryptsetup through a pipe on stdin (`-d-`), never argv, and
 * is written into the pipe before the fork so a tool that dies early cannot
 * raise SIGPIPE here. Every buffer that held it is zeroed.
 *
 * Order of checks, so that a mistake never costs data: refuse unknown
 * storage_fs and missing tools before touching the disk; format only a
 * disk without any LUKS magic (either header copy) or other signature;
 * validate the header layout before the key is tried; map a wrong key
 * (cryptsetup exit 2) to its own clear error; create a file system only
 * where the opened disk carries none.
 */
#include "disk.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/hex.h"
#include "core/log.h"
#include "core/mem.h"
#include "crypto/hash.h"

#define KiB 1024u
#define MiB (1024u * 1024)
#define LUKS2_BIN_HDR 4096u
#define LUKS2_DATA_OFFSET (16u * MiB) /* --offset 32768 (512-byte sectors) */
#define TOOL_OUTPUT_CAP (64u * KiB)

/* cryptsetup(8) exit codes */
#define CRYPTSETUP_EPERM 2 /* no key available with this passphrase */

/* ---- LUKS2 header check (untrusted bytes from the host's disk) ---- */

static uint64_t be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static int json_u64_str(json_t *o, const char *k, uint64_t *out, struct err *e)
{
	const char *s = json_string_value(json_object_get(o, k));
	uint64_t v = 0;
	if (!s || !*s || strlen(s) > 20)
		return err_set(e, "%s: not a decimal string", k);
	for (const char *c = s; *c; c++) {
		if (*c < '0' || *c > '9' || v > (UINT64_MAX - 9) / 10)
			return err_set(e, "%s: not a decimal string", k);
		v = v * 10 + (uint64_t)(*c - '0');
	}
	*out = v;
	return 0;
}

static bool json_str_is(json_t *o, const char *k, const char *want)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s && strcmp(s, want) == 0;
}

static bool json_int_is(json_t *o, const char *k, json_int_t want)
{
	json_t *v = json_object_get(o, k);
	return json_is_integer(v) && json_integer_value(v) == want;
}

/* The only member of an object that must have exactly one. */
static json_t *sole_member(json_t *root, const char *k, struct err *e)
{
	json_t *o = json_object_get(root, k);
	const char *key;
	json_t *v;
	if (!json_is_object(o) || json_object_size(o) != 1) {
		err_set(e, "LUKS2 header must have exactly one of %s", k);
		return NULL;
	}
	json_object_foreach(o, key, v) return json_is_object(v) ? v : NULL;
	return NULL;
}

static bool absent_or_empty(json_t *v)
{
	return !v || json_is_null(v) || (json_is_array(v) && json_array_size(v) == 0) ||
	       (json_is_object(v) && json_object_size(v) == 0);
}

static int check_layout(json_t *root, uint64_t hdr_size, struct err *e)
{
	json_t *ks = sole_member(root, "keyslots", e);
	if (!ks)
		return -1;
	json_t *af = json_object_get(ks, "af"), *area = json_object_get(ks, "area"),
	       *kdf = json_object_get(ks, "kdf");
	if (!json_str_is(ks, "type", "luks2") || !json_int_is(ks, "key_size", 64))
		return err_set(e, "LUKS2 keyslot: must be a luks2 keyslot for a 64-byte key");
	if (!json_str_is(af, "type", "luks1") || !json_str_is(af, "hash", "sha256") ||
	    !json_int_is(af, "stripes", 4000))
		return err_set(e, "LUKS2 keyslot: anti-forensic splitter must be luks1/sha256/4000 stripes");
	if (!json_str_is(kdf, "type", "pbkdf2") || !json_str_is(kdf, "hash", "sha256"))
		return err_set(e, "LUKS2 keyslot: key derivation must be pbkdf2-sha256");
	if (!json_str_is(area, "type", "raw") || !json_str_is(area, "encryption", "aes-xts-plain64") ||
	    !json_int_is(area, "key_size", 64))
		return err_set(e, "LUKS2 keyslot: area must be raw aes-xts-plain64 with a 64-byte key");
	uint64_t off, size;
	if (json_u64_str(area, "offset", &off, e) < 0 || json_u64_str(area, "size", &size, e) < 0)
		return err_wrap(e, "LUKS2 keyslot area");
	if (off < 2 * hdr_size || size > LUKS2_DATA_OFFSET || off > LUKS2_DATA_OFFSET - size)
		return err_set(e, "LUKS2 keyslot area [%llu, +%llu) outside [%llu, 16 MiB)",
			       (unsigned long long)off, (unsigned long long)size,
			       (unsigned long long)(2 * hdr_size));

	json_t *seg = sole_member(root, "segments", e);
	if (!seg)
		return -1;
	uint64_t seg_off;
	if (!json_str_is(seg, "type", "crypt") || !json_str_is(seg, "encryption", "aes-xts-plain64"))
		return err_set(e, "LUKS2 segment: must be crypt with aes-xts-plain64");
	if (json_u64_str(seg, "offset", &seg_off, e) < 0 || seg_off != LUKS2_DATA_OFFSET ||
	    !json_str_is(seg, "size", "dynamic"))
		return err_set(e, "LUKS2 segment: must start at 16 MiB and span the whole device");
	if (!json_int_is(seg, "sector_size", 512))
		return err_set(e, "LUKS2 segment: sectors must be 512 bytes");
	if (json_object_get(seg, "integrity") || !absent_or_empty(json_object_get(seg, "flags")))
		return err_set(e, "LUKS2 segment: integrity and flags are not allowed");

	if (!sole_member(root, "digests", e))
		return -1;
	json_t *tokens = json_object_get(root, "tokens");
	if (!json_is_object(tokens) || json_object_size(tokens) != 0)
		return err_set(e, "LUKS2 header: tokens are not allowed");
	json_t *cfg = json_object_get(root, "config");
	if (!json_is_object(cfg))
		return err_set(e, "LUKS2 header: no config");
	json_t *req = json_object_get(cfg, "requirements");
	if (!absent_or_empty(json_object_get(cfg, "flags")) ||
	    !(absent_or_empty(req) || (json_is_object(req) && json_object_size(req) == 1 &&
				       absent_or_empty(json_object_get(req, "mandatory")))))
		return err_set(e, "LUKS2 header: flags and requirements are not allowed");
	return 0;
}

/* One header copy at `off`; sets *hdr_size. */
static int check_copy(const uint8_t *buf, size_t len, uint64_t off, const char *magic, uint64_t *hdr_size,
		      struct err *e)
{
	if (off > len || len - off < LUKS2_BIN_HDR)
		return err_set(e, "truncated");
	const uint8_t *h = buf + off;
	if (memcmp(h, magic, 6) != 0)
		return err_set(e, "no LUKS magic");
	if (h[6] != 0 || h[7] != 2)
		return err_set(e, "LUKS version %u is not supported (LUKS2 only)", h[6] << 8 | h[7]);
	uint64_t hs = be64(h + 8);
	if (hs < 16 * KiB || hs > 4 * MiB || (hs & (hs - 1)) != 0)
		return err_set(e, "bad header size %llu", (unsigned long long)hs);
	if (len - off < hs)
		return err_set(e, "truncated (header size %llu)", (unsigned long long)hs);
	if (be64(h + 256) != off)
		return err_set(e, "header offset field %llu, found at %llu",
			       (unsigned long long)be64(h + 256), (unsigned long long)off);
	if (memchr(h + 72, 0, 32) == NULL || strcmp((const char *)h + 72, "sha256") != 0)
		return err_set(e, "checksum algorithm must be sha256");
	_cleanup_free_ uint8_t *copy = malloc(hs);
	uint8_t d[32];
	if (!copy)
		return err_set(e, "out of memory");
	memcpy(copy, h, hs);
	memset(copy + 448, 0, 64);
	sha256(copy, hs, d);
	if (!ct_memeq(d, h + 448, 32) || memcmp(h + 480, copy + 480, 32) != 0)
		return err_set(e, "checksum mismatch");
	const char *js = (const char *)h + LUKS2_BIN_HDR;
	size_t jn = strnlen(js, hs - LUKS2_BIN_HDR);
	if (jn == hs - LUKS2_BIN_HDR)
		return err_set(e, "JSON area is not terminated");
	json_error_t je;
	_cleanup_json_ json_t *root = json_loadb(js, jn, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(root))
		return err_set(e, "JSON area: %s", je.text);
	*hdr_size = hs;
	return check_layout(root, hs, e);
}

int disk_luks2_check(const uint8_t *hdr, size_t len, struct err *e)
{
	uint64_t hs = 0, hs2 = 0;
	if (check_copy(hdr, len, 0, "LUKS\xba\xbe", &hs, e) < 0)
		return err_wrap(e, "LUKS2 primary header");
	/* cryptsetup trusts whichever copy is newer, so both must pass. */
	if (len - hs >= 6 && memcmp(hdr + hs, "SKUL\xba\xbe", 6) == 0) {
		if (check_copy(hdr, len, hs, "SKUL\xba\xbe", &hs2, e) < 0)
			return err_wrap(e, "LUKS2 secondary header");
		if (hs2 != hs)
			return err_set(e, "LUKS2 header copies differ in size");
	}
	return 0;
}

/* Any LUKS magic where a primary or secondary header may be. */
static bool has_luks_magic(const uint8_t *buf, size_t len)
{
	if (len >= 6 && memcmp(buf, "LUKS\xba\xbe", 6) == 0)
		return true;
	for (size_t off = 16 * KiB; off <= 4 * MiB && off + 6 <= len; off *= 2)
		if (memcmp(buf + off, "SKUL\xba\xbe", 6) == 0)
			return true;
	return false;
}

bool disk_cmdline_storage_encrypted(const char *cmdline)
{
	static const char key[] = "dstack.storage_encrypted=";
	bool on = true;
	for (const char *p = cmdline; p && (p = strstr(p, key)); p += sizeof(key) - 1) {
		if (p != cmdline && p[-1] != ' ' && p[-1] != '\t')
			continue;
		const char *v = p + sizeof(key) - 1;
		size_t n = strcspn(v, " \t\n");
		on = !((n == 1 && v[0] == '0') || (n == 5 && strncmp(v, "false", 5) == 0) ||
		       (n == 2 && strncmp(v, "no", 2) == 0));
	}
	return on;
}

/* ---- running the tools ---- */

static bool tool_exists(const char *name)
{
	const char *path = getenv("PATH");
	char p[PATH_MAX];
	if (!path || !*path)
		path = "/usr/sbin:/usr/bin:/sbin:/bin";
	while (*path) {
		size_t n = strcspn(path, ":");
		if (n && snprintf(p, sizeof(p), "%.*s/%s", (int)n, path, name) < (int)sizeof(p) &&
		    access(p, X_OK) == 0)
			return true;
		path += n + (path[n] == ':');
	}
	return false;
}

/*
 * Run argv (PATH lookup) with `in` on stdin; stdout+stderr into `out`
 * (capped); `keep_fd` (or -1) stays open in the child. Returns the exit
 * status, or -1 with `e` set.
 */
static int run_tool(const char *const argv[], const void *in, size_t in_len, int keep_fd, struct buf *out,
		    struct err *e)
{
	int ip[2] = {-1, -1}, op[2] = {-1, -1};
	if (in_len > 4096)
		return err_set(e, "stdin for %s too large", argv[0]);
	if (pipe2(ip, O_CLOEXEC) < 0 || pipe2(op, O_CLOEXEC) < 0) {
		err_errno(e, "pipe");
		goto fail;
	}
	if (in_len && write(ip[1], in, in_len) != (ssize_t)in_len) {
		err_errno(e, "pipe write");
		goto fail;
	}
	close(ip[1]);
	ip[1] = -1;
	pid_t pid = fork();
	if (pid < 0) {
		err_errno(e, "fork");
		goto fail;
	}
	if (pid == 0) {
		dup2(ip[0], 0);
		dup2(op[1], 1);
		dup2(op[1], 2);
		if (keep_fd >= 0)
			fcntl(keep_fd, F_SETFD, 0);
		execvp(argv[0], (char *const *)argv);
		fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(ip[0]);
	close(op[1]);
	ip[0] = op[1] = -1;
	char chunk[4096];
	ssize_t n;
	while ((n = read(op[0], chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		if (out && out->len < TOOL_OUTPUT_CAP)
			buf_append(out, chunk, (size_t)n);
	}
	close(op[0]);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (out) {
		buf_putc(out, 0); /* NUL-terminate for messages */
		out->len--;
	}
	if (!WIFEXITED(st))
		return err_set(e, "%s killed by signal %d", argv[0], WTERMSIG(st));
	return WEXITSTATUS(st);
fail:
	for (int i = 0; i < 2; i++) {
		if (ip[i] >= 0)
			close(ip[i]);
		if (op[i] >= 0)
			close(op[i]);
	}
	return -1;
}

/* Last line of a tool's output, for error messages. */
static const char *tail_line(struct buf *b)
{
	if (!b->data || !b->len)
		return "(no output)";
	char *s = (char *)b->data;
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
		s[--n] = 0;
	char *nl = strrchr(s, '\n');
	return nl ? nl + 1 : s;
}

/* Run and require exit 0. */
static int run_ok(const char *const argv[], struct err *e)
{
	_cleanup_(buf_freep) struct buf out = {0};
	int rc = run_tool(argv, NULL, 0, -1, &out, e);
	if (rc < 0)
		return -1;
	if (rc != 0)
		return err_set(e, "%s %s failed (exit %d): %s", argv[0], argv[1] ? argv[1] : "", rc,
			       tail_line(&out));
	return 0;
}

/* ---- the steps ---- */

static void progress(const struct disk_opts *o, const char *msg)
{
	log_info("data disk: %s", msg);
	if (o->progress)
		o->progress(o->progress_ctx, msg);
}

static int read_head(const char *dev, uint8_t **out, size_t *out_len, struct err *e)
{
	_cleanup_close_ int fd = open(dev, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_errno(e, "open %s", dev);
	uint8_t *b = malloc(DISK_HEADER_REGION);
	size_t got = 0;
	if (!b)
		return err_set(e, "out of memory");
	while (got < DISK_HEADER_REGION) {
		ssize_t n = pread(fd, b + got, DISK_HEADER_REGION - got, (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(b);
			return err_errno(e, "read %s", dev);
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	*out = b;
	*out_len = got;
	return 0;
}

static uint64_t device_size(const char *dev)
{
	_cleanup_close_ int fd = open(dev, O_RDONLY | O_CLOEXEC);
	off_t end = fd >= 0 ? lseek(fd, 0, SEEK_END) : -1;
	return end > 0 ? (uint64_t)end : 0;
}

/*
 * File-system signature on dev: 0 with `type` set (empty if none), via
 * blkid's low-level probe (exit 2 = nothing found).
 */
static int probe_type(const char *dev, char *type, size_t n, struct err *e)
{
	const char *argv[] = {"blkid", "-p", "-s", "TYPE", "-o", "value", dev, NULL};
	_cleanup_(buf_freep) struct buf out = {0};
	int rc = run_tool(argv, NULL, 0, -1, &out, e);
	type[0] = 0;
	if (rc < 0)
		return -1;
	if (rc == 2)
		return 0;
	if (rc != 0)
		return err_set(e, "blkid %s failed (exit %d): %s", dev, rc, tail_line(&out));
	snprintf(type, n, "%s", out.data ? (const char *)out.data : "");
	type[strcspn(type, "\n")] = 0;
	if (!type[0])
		snprintf(type, n, "unknown");
	return 0;
}

static bool misc_has_device_mapper(void)
{
	uint8_t *d = NULL;
	size_t n = 0;
	bool ok = false;
	if (file_read_all("/proc/misc", 64 * KiB, &d, &n, NULL) == 0) {
		ok = memmem(d, n, "device-mapper", 13) != NULL;
		free(d);
	}
	return ok;
}

/*
 * The kernel's device-mapper, not just a /dev/mapper/control node (which
 * libdevmapper creates even when the driver is missing). Opening the node
 * lets the kernel load dm_mod on demand.
 */
static bool device_mapper_available(void)
{
	if (misc_has_device_mapper())
		return true;
	int fd = open("/dev/mapper/control", O_RDWR | O_CLOEXEC);
	if (fd >= 0)
		close(fd);
	return misc_has_device_mapper();
}

static int check_tools(const struct disk_opts *o, struct err *e)
{
	const char *need[5] = {"blkid", NULL};
	size_t k = 1;
	if (!o->unencrypted)
		need[k++] = "cryptsetup";
	if (strcmp(o->fs, "ext4") == 0) {
		need[k++] = "mkfs.ext4";
	} else {
		need[k++] = "zpool";
		need[k++] = "zfs";
	}
	for (size_t i = 0; i < k; i++)
		if (!tool_exists(need[i]))
			return err_set(e, "storage_fs %s%s needs %s, which is not installed", o->fs,
				       o->unencrypted ? "" : " on LUKS2", need[i]);
	return 0;
}

static int luks_format(const struct disk_opts *o, const char *pass, struct err *e)
{
	const char *argv[] = {"cryptsetup", "luksFormat",    "--batch-mode", "--type",          "luks2",
			      "--offset",   "32768",         "--cipher",     "aes-xts-plain64", "--key-size",
			      "512",        "--sector-size", "512",          "--pbkdf",         "pbkdf2",
			      "--hash",     "sha256",        "-d-",          o->device,         NULL};
	_cleanup_(buf_freep) struct buf out = {0};
	int rc = run_tool(argv, pass, strlen(pass), -1, &out, e);
	if (rc < 0)
		return -1;
	if (rc != 0)
		return err_set(e, "cryptsetup luksFormat %s failed (exit %d): %s", o->device, rc,
			       tail_line(&out));
	return 0;
}

/*
 * cryptsetup gets the header region we validated, as a detached header in
 * a memfd, so the host cannot swap the on-disk header between our check
 * and the open. The segment offset (16 MiB) still addresses the device.
 */
static int luks_open(const struct disk_opts *o, const char *mapper, const uint8_t *head, size_t head_len,
		     const char *pass, struct err *e)
{
	_cleanup_(buf_freep) struct buf out = {0};
	_cleanup_close_ int hfd = memfd_create("dstack-luks2-header", MFD_CLOEXEC);
	char hpath[64];
	bool dm = device_mapper_available();

	if (hfd < 0)
		return err_errno(e, "memfd_create");
	for (size_t done = 0; done < head_len;) {
		ssize_t n = write(hfd, head + done, head_len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return err_errno(e, "copy the LUKS2 header");
		done += (size_t)n;
	}
	snprintf(hpath, sizeof(hpath), "/proc/self/fd/%d", hfd);
	/* Without device-mapper, still tell a wrong key from a missing driver. */
	const char *test[] = {"cryptsetup", "open", "--test-passphrase", "--header",
			      hpath,        "-d-",  o->device,           NULL};
	const char *open[] = {"cryptsetup", "open", "--type",  "luks2", "--header",
			      hpath,        "-d-",  o->device, mapper,  NULL};
	int rc = run_tool(dm ? open : test, pass, strlen(pass), hfd, &out, e);
	if (rc < 0)
		return -1;
	if (rc == CRYPTSETUP_EPERM)
		return err_set(e,
			       "the disk key does not open %s (a disk of another app or instance?); "
			       "it is left untouched",
			       o->device);
	if (rc != 0)
		return err_set(e, "cryptsetup open %s failed (exit %d): %s", o->device, rc, tail_line(&out));
	if (!dm)
		return err_set(e,
			       "the disk key opens %s, but this kernel has no device-mapper "
			       "(dm_mod/dm_crypt) to map it",
			       o->device);
	return 0;
}

static int luks_close(const char *mapper)
{
	const char *argv[] = {"cryptsetup", "close", mapper, NULL};
	return run_ok(argv, NULL);
}

static int make_fs(const struct disk_opts *o, const char *target, const char *mnt, struct err *e)
{
	if (strcmp(o->fs, "ext4") == 0) {
		const char *argv[] = {"mkfs.ext4", "-q", "-F", "-L", "dstack-data", target, NULL};
		return run_ok(argv, e);
	}
	char mp[PATH_MAX + 16];
	snprintf(mp, sizeof(mp), "mountpoint=%s", mnt);
	const char *pool[] = {"zpool", "create", "-f", "-O", "mountpoint=none", DISK_ZFS_POOL, target, NULL};
	const char *ds[] = {"zfs", "create", "-o", "checksum=blake3", "-o", mp, DISK_ZFS_DATASET, NULL};
	if (run_ok(pool, e) < 0 || run_ok(ds, e) < 0)
		return -1;
	return 0;
}

static int mount_fs(const struct disk_opts *o, const char *target, const char *mnt, bool created,
		    struct err *e)
{
	if (mkdir_p(mnt, 0755, e) < 0)
		return -1;
	if (strcmp(o->fs, "ext4") == 0) {
		if (mount(target, mnt, "ext4", MS_NOATIME, NULL) < 0)
			return err_errno(e, "mount %s on %s", target, mnt);
		return 0;
	}
	if (created)
		return 0; /* zfs create mounted it */
	char dir[PATH_MAX], mp[PATH_MAX + 16];
	snprintf(dir, sizeof(dir), "%s", target);
	*strrchr(dir, '/') = 0;
	snprintf(mp, sizeof(mp), "mountpoint=%s", mnt);
	const char *imp[] = {"zpool", "import", "-f", "-N", "-d", dir, DISK_ZFS_POOL, NULL};
	const char *set[] = {"zfs", "set", mp, DISK_ZFS_DATASET, NULL};
	const char *mnt_[] = {"zfs", "mount", DISK_ZFS_DATASET, NULL};
	if (run_ok(imp, e) < 0 || run_ok(set, e) < 0 || run_ok(mnt_, e) < 0)
		return -1;
	return 0;
}

/* Make (when absent) and mount the file system on the opened target. */
static int setup_fs(const struct disk_opts *o, struct disk_result *r, const char *mnt, struct err *e)
{
	char type[64];
	const char *want = strcmp(o->fs, "ext4") == 0 ? "ext4" : "zfs_member";
	if (probe_type(r->target, type, sizeof(type), e) < 0)
		return -1;
	if (!type[0]) {
		if (!r->luks_formatted)
			log_warn(
			    "data disk: %s has no file system yet (first boot interrupted?); creating %s",
			    r->target, o->fs);
		if (make_fs(o, r->target, mnt, e) < 0)
			return err_wrap(e, "create %s on %s", o->fs, r->target);
		r->fs_created = true;
	} else if (strcmp(type, want) != 0) {
		return err_set(e, "%s holds %s, but storage_fs is %s; refusing to reformat it", r->target,
			       type, o->fs);
	}
	progress(o, "mounting data disk");
	if (mount_fs(o, r->target, mnt, r->fs_created, e) < 0)
		return err_wrap(e, "mount %s", o->fs);
	return 0;
}

/*
 * First boot: LUKS2-format a disk that carries nothing; later: leave it be.
 * Returns the validated header region in *head.
 */
static int luks_prepare(const struct disk_opts *o, struct disk_result *r, const char *pass, uint8_t **head,
			size_t *n, struct err *e)
{
	if (read_head(o->device, head, n, e) < 0)
		return -1;
	if (!has_luks_magic(*head, *n)) {
		char type[64];
		if (probe_type(o->device, type, sizeof(type), e) < 0)
			return -1;
		if (type[0])
			return err_set(e, "%s holds %s but no LUKS header; refusing to format it", o->device,
				       type);
		if (device_size(o->device) < 2 * (uint64_t)DISK_HEADER_REGION)
			return err_set(e, "%s is too small for a LUKS2 data disk (32 MiB at least)",
				       o->device);
		progress(o, "initializing data disk");
		if (luks_format(o, pass, e) < 0)
			return -1;
		r->luks_formatted = true;
		free(*head);
		*head = NULL;
		if (read_head(o->device, head, n, e) < 0)
			return -1;
	}
	if (*n < DISK_HEADER_REGION)
		return err_set(e, "%s is smaller than the LUKS2 header region", o->device);
	return disk_luks2_check(*head, *n, e);
}

int disk_setup(const struct disk_opts *o, struct disk_result *r_, struct err *e)
{
	struct disk_result local;
	struct disk_result *r = r_ ? r_ : &local;
	const char *mnt = o->mount_point && *o->mount_point ? o->mount_point : DISK_DEFAULT_MOUNT_POINT;
	const char *mapper = o->mapper && *o->mapper ? o->mapper : DISK_DEFAULT_MAPPER;
	char pass[2 * 64 + 1];
	memset(r, 0, sizeof(*r));

	if (!o->device || !*o->device)
		return err_set(e, "no data device");
	if (!o->fs || (strcmp(o->fs, "ext4") != 0 && strcmp(o->fs, "zfs") != 0))
		return err_set(e, "unsupported storage_fs %s", o->fs ? o->fs : "(none)");
	if (strchr(mapper, '/') || strlen(mapper) > 100)
		return err_set(e, "bad mapper name %s", mapper);
	if (check_tools(o, e) < 0)
		return -1;
	if (o->unencrypted) {
		log_warn("data disk: %s is NOT encrypted (dstack.storage_encrypted=0)", o->device);
		snprintf(r->target, sizeof(r->target), "%s", o->device);
		return setup_fs(o, r, mnt, e);
	}
	if (!o->key || o->key_len == 0 || o->key_len > 64)
		return err_set(e, "no disk key");
	_cleanup_free_ uint8_t *head = NULL;
	size_t head_len = 0;
	hex_encode(o->key, o->key_len, pass);
	int rc = luks_prepare(o, r, pass, &head, &head_len, e);
	if (rc == 0)
		rc = luks_open(o, mapper, head, head_len, pass, e);
	secure_zero(pass, sizeof(pass));
	if (rc < 0)
		return -1;
	snprintf(r->target, sizeof(r->target), "/dev/mapper/%s", mapper);
	if (setup_fs(o, r, mnt, e) < 0) {
		luks_close(mapper);
		return -1;
	}
	progress(o, "data disk ready");
	return 0;
}

int disk_teardown(const struct disk_opts *o, struct err *e)
{
	const char *mnt = o->mount_point && *o->mount_point ? o->mount_point : DISK_DEFAULT_MOUNT_POINT;
	const char *mapper = o->mapper && *o->mapper ? o->mapper : DISK_DEFAULT_MAPPER;
	int rc = 0;
	if (o->fs && strcmp(o->fs, "zfs") == 0) {
		const char *exp[] = {"zpool", "export", DISK_ZFS_POOL, NULL};
		rc = run_ok(exp, e);
	} else if (umount2(mnt, 0) < 0 && errno != EINVAL && errno != ENOENT) {
		rc = err_errno(e, "umount %s", mnt);
	}
	if (!o->unencrypted && rc == 0) {
		const char *argv[] = {"cryptsetup", "close", mapper, NULL};
		rc = run_ok(argv, e);
	}
	return rc;
}
