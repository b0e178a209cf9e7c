/*
 * image_test.c — image directories (§5.1): loading, path containment,
 * version parse/guess, bootability, listing.
 */
#include <unistd.h>

#include "core/tap.h"
#include "testutil.h"
#include "vmm/image.h"

static void make_image(const char *root, const char *name, const char *metadata)
{
	char *dir = path_join(root, name);

	tu_write(dir, "metadata.json", metadata);
	tu_write(dir, "bzImage", "k");
	tu_write(dir, "initramfs.cpio.gz", "i");
	tu_write(dir, "ovmf.fd", "b");
	tu_write(dir, "rootfs.img.verity", "r");
	free(dir);
}

#define GOOD_MD                                                                                              \
	"{\"bios\":\"ovmf.fd\",\"kernel\":\"bzImage\",\"initrd\":\"initramfs.cpio.gz\",\"cmdline\":"         \
	"\"console=ttyS0\","                                                                                 \
	"\"rootfs\":\"rootfs.img.verity\",\"version\":\"0.5.3\",\"shared_ro\":true,\"is_dev\":false,"        \
	"\"rootfs_hash\":\"abcd\"}"

static void test_versions(void)
{
	struct vmm_version v, w;

	ok(vmm_version_parse("0.5.3", &v) == 0 && v.major == 0 && v.minor == 5 && v.patch == 3,
	   "parse 0.5.3");
	ok(vmm_version_parse("1.2.3-rc1", &v) == 0 && v.patch == 3, "pre-release suffix tolerated");
	ok(vmm_version_parse("1.2", &v) < 0, "two parts rejected");
	ok(vmm_version_parse("a.b.c", &v) < 0, "letters rejected");
	ok(vmm_version_parse("1.2.3x", &v) < 0, "trailing junk rejected");
	ok(vmm_version_guess("dstack-0.5.2", &v) == 0 && v.minor == 5 && v.patch == 2, "guess dstack-X.Y.Z");
	ok(vmm_version_guess("dstack-dev-0.4.1", &v) == 0 && v.minor == 4 && v.patch == 1,
	   "guess dstack-dev-X.Y.Z");
	ok(vmm_version_guess("myimage", &v) < 0, "no guess for other names");
	vmm_version_parse("0.10.0", &v);
	vmm_version_parse("0.9.9", &w);
	ok(vmm_version_cmp(&v, &w) > 0, "numeric, not lexical, compare");
	ok(vmm_version_ge(&v, 0, 10, 0) && !vmm_version_ge(&w, 0, 10, 0), "ge");
}

static void test_names(void)
{
	ok(vmm_image_name_valid("dstack-0.5.3"), "normal name");
	ok(vmm_image_name_valid("a_b.C-1"), "charset");
	ok(!vmm_image_name_valid(""), "empty rejected");
	ok(!vmm_image_name_valid("a/b"), "slash rejected");
	ok(!vmm_image_name_valid("a..b"), "dot-dot rejected");
	ok(!vmm_image_name_valid("a b"), "space rejected");
	char longname[66];
	memset(longname, 'a', 65);
	longname[65] = 0;
	ok(!vmm_image_name_valid(longname), "65 chars rejected");
	longname[64] = 0;
	ok(vmm_image_name_valid(longname), "64 chars accepted");
}

static void test_load(void)
{
	char *root = tu_tmpdir();
	struct vmm_image img;
	struct err e = ERR_INIT;
	char *dir;

	make_image(root, "dstack-0.5.3", GOOD_MD);
	dir = path_join(root, "dstack-0.5.3");
	tu_write(dir, "digest.txt", "  ABCDEF0123\n");
	tu_write(dir, "sha256sum.txt", "x");
	tu_write(dir, "measurement.tdx.cbor", "y");
	ok(vmm_image_load(root, "dstack-0.5.3", &img, &e) == 0, "loads: %s", e.msg);
	ok(img.kernel && !strcmp(strrchr(img.kernel, '/'), "/bzImage") && img.kernel[0] == '/',
	   "kernel absolute");
	ok(img.bios && img.initrd && img.rootfs, "bios/initrd/rootfs resolved");
	ok(!img.hda && !img.bios_sev, "absent optional artefacts are NULL");
	is_str(img.cmdline, "console=ttyS0", "cmdline");
	is_str(img.rootfs_hash, "abcd", "rootfs_hash");
	ok(img.shared_ro && !img.is_dev, "flags");
	ok(img.has_version && img.version.patch == 3, "version from metadata");
	is_str(img.digest, "abcdef0123", "digest trimmed and lowercased");
	ok(vmm_image_has_tdx_measurement(&img), "measurement material present");
	ok(vmm_image_check_bootable(&img, &e) == 0, "0.5.3 bootable");
	vmm_image_free(&img);
	free(dir);

	/* version guessed from the directory name; no digest */
	make_image(
	    root, "dstack-dev-0.4.9",
	    "{\"kernel\":\"bzImage\",\"initrd\":\"initramfs.cpio.gz\",\"rootfs\":\"rootfs.img.verity\"}");
	ok(vmm_image_load(root, "dstack-dev-0.4.9", &img, &e) == 0, "loads without version");
	ok(img.has_version && img.version.minor == 4 && img.version.patch == 9, "version guessed");
	ok(!img.digest && !vmm_image_has_tdx_measurement(&img), "no digest");
	ok(vmm_image_check_bootable(&img, &e) < 0, "0.4.9 not bootable");
	is_str(e.msg, "Image version 0.4.9 is too old, 0.5.0 or newer is required", "too-old message");
	vmm_image_free(&img);

	/* escaping paths */
	make_image(root, "esc1", "{\"kernel\":\"../dstack-0.5.3/bzImage\",\"initrd\":\"initramfs.cpio.gz\"}");
	ok(vmm_image_load(root, "esc1", &img, &e) < 0, "../ rejected");
	ok(strstr(e.msg, "escapes the image directory") != NULL, "escape message: %s", e.msg);
	make_image(root, "esc2", "{\"kernel\":\"/etc/passwd\",\"initrd\":\"initramfs.cpio.gz\"}");
	ok(vmm_image_load(root, "esc2", &img, &e) < 0, "absolute outside rejected");
	dir = path_join(root, "esc3");
	make_image(root, "esc3", "{\"kernel\":\"link\",\"initrd\":\"initramfs.cpio.gz\"}");
	char *link = path_join(dir, "link");
	ok(symlink("/etc/hostname", link) == 0, "symlink made");
	ok(vmm_image_load(root, "esc3", &img, &e) < 0, "symlink escaping rejected");
	free(link);
	free(dir);
	make_image(root, "nodir", "{\"kernel\":\".\",\"initrd\":\"initramfs.cpio.gz\"}");
	ok(vmm_image_load(root, "nodir", &img, &e) < 0, "directory as artefact rejected");
	make_image(root, "missing", "{\"kernel\":\"nope\",\"initrd\":\"initramfs.cpio.gz\"}");
	ok(vmm_image_load(root, "missing", &img, &e) < 0, "missing file rejected");
	make_image(root, "nokernel", "{\"initrd\":\"initramfs.cpio.gz\"}");
	ok(vmm_image_load(root, "nokernel", &img, &e) < 0, "kernel required");
	ok(strstr(e.msg, "missing kernel") != NULL, "message names kernel: %s", e.msg);
	make_image(root, "badjson", "{\"kernel\":");
	ok(vmm_image_load(root, "badjson", &img, &e) < 0, "bad json rejected");
	make_image(root, "iso",
		   "{\"kernel\":\"bzImage\",\"initrd\":\"initramfs.cpio.gz\",\"version\":\"0.5.0\","
		   "\"rootfs\":\"r.iso\"}");
	dir = path_join(root, "iso");
	tu_write(dir, "r.iso", "x");
	free(dir);
	ok(vmm_image_load(root, "iso", &img, &e) == 0 && img.rootfs_is_iso, "iso loads");
	ok(vmm_image_check_bootable(&img, &e) < 0, "iso with >= 0.5.0 not bootable");
	vmm_image_free(&img);
	ok(vmm_image_load(root, "../x", &img, &e) < 0, "bad name rejected");

	struct vmm_image_list l;
	ok(vmm_image_list(root, &l, &e) == 0, "list");
	is_int(l.n, 3, "three loadable images");
	if (l.n == 3) {
		is_str(l.v[0].name, "dstack-0.5.3", "sorted 0");
		is_str(l.v[1].name, "dstack-dev-0.4.9", "sorted 1");
		is_str(l.v[2].name, "iso", "sorted 2");
	}
	json_t *lj = vmm_image_list_json(&l);
	json_t *first = json_array_get(json_object_get(lj, "images"), 0);
	is_str(json_string_value(json_object_get(first, "version")), "0.5.3", "list version");
	is_str(json_string_value(json_object_get(first, "description")), GOOD_MD,
	       "description is the metadata");
	ok(json_is_false(json_object_get(first, "is_dev")), "is_dev");
	json_decref(lj);
	vmm_image_list_free(&l);
	tu_rmrf(root);
}

int main(void)
{
	test_versions();
	test_names();
	test_load();
	return tap_done();
}
