/*
 * registry_test.c — `[image] registry` parsing (Docker Hub short names,
 * hosts, schemes), tag rules, and the layer unpacker on hand-built tars:
 * files and directories, `..` refused, links never created, whiteouts,
 * base-256 sizes, gzip, a bad checksum. The network side (token challenge,
 * pagination, redirects, digests) is in tests/vmm/registry_test.sh.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "core/tap.h"
#include "testutil.h"
#include "vmm/registry.h"
#include "vmm/tarx.h"

static void ref_is(const char *in, const char *base, const char *repo)
{
	struct vmm_registry_ref r;
	struct err e = ERR_INIT;

	if (!ok(vmm_registry_ref_parse(in, &r, &e) == 0, "parse %s (%s)", in, err_str(&e)))
		return;
	is_str(r.base, base, "%s: base", in);
	is_str(r.repo, repo, "%s: repository", in);
	vmm_registry_ref_free(&r);
}

static void ref_bad(const char *in, const char *needle)
{
	struct vmm_registry_ref r;
	struct err e = ERR_INIT;

	ok(vmm_registry_ref_parse(in, &r, &e) < 0 && strstr(err_str(&e), needle), "'%s' refused: %s", in,
	   err_str(&e));
}

/* One ustar entry; size_field NULL: octal of len. */
static void entry(struct buf *t, const char *name, char type, const char *data, size_t len,
		  const unsigned char *size_field)
{
	unsigned char h[512] = {0};
	unsigned long sum = 0;

	snprintf((char *)h, 100, "%s", name);
	snprintf((char *)h + 100, 8, "%07o", 0644);
	if (size_field)
		memcpy(h + 124, size_field, 12);
	else
		snprintf((char *)h + 124, 12, "%011zo", len);
	memset(h + 148, ' ', 8);
	h[156] = (unsigned char)type;
	if (type == '2')
		snprintf((char *)h + 157, 100, "/etc");
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	for (int i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06lo", sum);
	buf_append(t, h, 512);
	buf_append(t, data, len);
	if (len % 512) {
		unsigned char pad[512] = {0};

		buf_append(t, pad, 512 - len % 512);
	}
}

static void finish(struct buf *t, const char *path, bool gz)
{
	unsigned char z[1024] = {0};

	buf_append(t, z, sizeof(z));
	if (gz) {
		gzFile g = gzopen(path, "wb");

		gzwrite(g, t->data, (unsigned)t->len);
		gzclose(g);
	} else {
		file_write_atomic(path, t->data, t->len, 0644, NULL);
	}
	buf_free(t);
}

static bool has_file(const char *dir, const char *rel, const char *content)
{
	_cleanup_free_ char *p = path_join(dir, rel);
	_cleanup_free_ uint8_t *d = NULL;
	size_t n;

	return file_read_all(p, 1 << 20, &d, &n, NULL) == 0 && n == strlen(content) && !memcmp(d, content, n);
}

int main(void)
{
	char *tmp = tu_tmpdir(); /* tu_rmrf frees it */
	_cleanup_free_ char *dest = path_join(tmp, "out"), *tarp = path_join(tmp, "l.tar");
	struct tarx_stats st;
	struct err e = ERR_INIT;
	struct buf t = BUF_INIT;
	struct stat sb;

	ref_is("dstacktee/guest-image", "https://registry-1.docker.io", "dstacktee/guest-image");
	ref_is("ubuntu", "https://registry-1.docker.io", "library/ubuntu");
	ref_is("docker.io/dstacktee/x", "https://registry-1.docker.io", "dstacktee/x");
	ref_is("ghcr.io/dstack-tee/images/guest", "https://ghcr.io", "dstack-tee/images/guest");
	ref_is("localhost:5000/dstack/guest", "http://localhost:5000", "dstack/guest");
	ref_is("127.0.0.1:5000/dstack/guest/", "http://127.0.0.1:5000", "dstack/guest");
	ref_is("http://registry.internal/dstack", "http://registry.internal", "dstack");
	ref_is("https://127.0.0.1:5000/x", "https://127.0.0.1:5000", "x");
	ref_bad("", "not configured");
	ref_bad("ghcr.io/Upper/Case", "lowercase");
	ref_bad("ghcr.io/a/../b", "invalid repository");
	ref_bad("https://justahost", "host and a repository");

	ok(vmm_registry_tag_valid("0.5.3") && vmm_registry_tag_valid("dev_0.6.0-rc1"), "ordinary tags");
	ok(!vmm_registry_tag_valid("") && !vmm_registry_tag_valid("-x") && !vmm_registry_tag_valid("a/b") &&
	       !vmm_registry_tag_valid("a..b") && !vmm_registry_tag_valid(".hidden"),
	   "empty, leading dash, slash, '..', leading dot: refused");
	ok(vmm_registry_tag_valid("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa") &&
	       !vmm_registry_tag_valid("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
	   "57 characters fit in the image name dstack-<tag> (64), 58 do not");

	/* files, directories, a symlink (skipped), ./ and / prefixes, gzip */
	mkdir_p(dest, 0755, NULL);
	entry(&t, "./metadata.json", '0', "{}", 2, NULL);
	entry(&t, "sub/", '5', "", 0, NULL);
	entry(&t, "/sub/kernel", '0', "KERNEL", 6, NULL);
	entry(&t, "link", '2', "", 0, NULL);
	entry(&t, "old", '0', "gone soon", 9, NULL);
	entry(&t, "sub/keep", '0', "k", 1, NULL);
	finish(&t, tarp, true);
	ok(tarx_unpack(tarp, dest, &st, &e) == 0, "gzip layer unpacks (%s)", err_str(&e));
	ok(has_file(dest, "metadata.json", "{}") && has_file(dest, "sub/kernel", "KERNEL"),
	   "files land inside the destination, leading ./ and / dropped");
	{
		_cleanup_free_ char *l = path_join(dest, "link");

		ok(lstat(l, &sb) < 0 && st.skipped == 1, "the symlink is not created (skipped 1)");
	}
	is_int(st.files, 4, "four files");

	/* a second, plain layer: whiteouts and an opaque directory; base-256 size */
	{
		unsigned char b256[12] = {0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3};

		entry(&t, ".wh.old", '0', "", 0, NULL);
		entry(&t, "sub/.wh..wh..opq", '0', "", 0, NULL);
		entry(&t, "sub/new", '0', "NEW", 3, b256);
		finish(&t, tarp, false);
	}
	ok(tarx_unpack(tarp, dest, &st, &e) == 0, "plain tar layer unpacks (%s)", err_str(&e));
	{
		_cleanup_free_ char *old = path_join(dest, "old"), *keep = path_join(dest, "sub/keep");

		ok(!file_exists(old), "whiteout .wh.old removes old");
		ok(!file_exists(keep) && has_file(dest, "sub/new", "NEW"),
		   "opaque whiteout empties sub/, then sub/new (base-256 size) is written");
		is_int(st.whiteouts, 2, "two whiteouts");
	}

	/* hostile and broken layers */
	entry(&t, "ok.txt", '0', "x", 1, NULL);
	entry(&t, "a/../../escape.txt", '0', "x", 1, NULL);
	finish(&t, tarp, true);
	ok(tarx_unpack(tarp, dest, &st, &e) < 0 && strstr(err_str(&e), "escapes"), "'..' refused: %s",
	   err_str(&e));
	{
		_cleanup_free_ char *esc = path_join(tmp, "escape.txt");

		ok(!file_exists(esc), "nothing written outside the destination");
	}
	entry(&t, "x", '0', "x", 1, NULL);
	t.data[148] ^= 1; /* break the checksum */
	finish(&t, tarp, false);
	ok(tarx_unpack(tarp, dest, &st, &e) < 0 && strstr(err_str(&e), "checksum"), "bad checksum: %s",
	   err_str(&e));
	entry(&t, "big", '0', "abc", 3, NULL);
	t.len = 512 + 1; /* the header and one byte of its three */
	file_write_atomic(tarp, t.data, t.len, 0644, NULL);
	buf_free(&t);
	ok(tarx_unpack(tarp, dest, &st, &e) < 0 && strstr(err_str(&e), "truncated"), "truncated layer: %s",
	   err_str(&e));
	file_write_atomic(tarp, "not a tar at all", 16, 0644, NULL);
	ok(tarx_unpack(tarp, dest, &st, &e) < 0, "garbage refused (%s)", err_str(&e));

	tu_rmrf(tmp);
	return tap_done();
}
