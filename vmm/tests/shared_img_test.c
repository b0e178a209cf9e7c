/*
 * shared_img_test.c — the vhd-mode shared disk: FAT32, 128 MiB, label
 * DSTACKSHR, holding exactly the regular files of shared/ (read back with
 * mtools).
 */
#include <stdio.h>
#include <sys/stat.h>

#include "core/cleanup.h"
#include "core/tap.h"
#include "testutil.h"
#include "vmm/shared_img.h"

static char *capture(const char *cmd)
{
	FILE *f = popen(cmd, "r");
	char buf[4096];
	size_t n;

	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	pclose(f);
	return xstrdup(buf);
}

int main(void)
{
	char *root = tu_tmpdir();
	struct err e = ERR_INIT;
	struct stat st;

	if (system("command -v mformat >/dev/null 2>&1") != 0) {
		diag("mtools not installed (scripts/deps/vmm.txt)");
		ok(0, "mtools present");
		return tap_done();
	}
	vmm_workdir_create(root, "vm", NULL);
	_cleanup_free_ char *wd = path_join(root, "vm"), *img = path_join(wd, "shared.img");
	tu_write(wd, "shared/.sys-config.json", "{\"a\":1}");
	tu_write(wd, "shared/app-compose.json", "{\"name\":\"x\"}");
	tu_write(wd, "shared/sub/ignored", "x");
	ok(vmm_build_shared_img(wd, &e) == 0, "built: %s", e.msg);
	ok(stat(img, &st) == 0 && st.st_size == (off_t)VMM_SHARED_IMG_BYTES, "128 MiB");
	_cleanup_free_ char *cmd = xasprintf("mtype -i '%s' ::/.sys-config.json", img);
	_cleanup_free_ char *got = capture(cmd);
	is_str(got, "{\"a\":1}", "hidden file copied with its long name");
	_cleanup_free_ char *cmd2 = xasprintf("mdir -i '%s' -b ::/", img);
	_cleanup_free_ char *list = capture(cmd2);
	ok(list && strstr(list, "app-compose.json") && !strstr(list, "sub"), "regular files only");
	_cleanup_free_ char *cmd3 = xasprintf("minfo -i '%s' :: 2>/dev/null | grep -i 'label\\|type'", img);
	_cleanup_free_ char *info = capture(cmd3);
	ok(info && strstr(info, "DSTACKSHR"), "label DSTACKSHR");
	ok(info && strstr(info, "FAT32"), "FAT32");
	tu_write(wd, "shared/.sys-config.json", "{\"a\":2}");
	ok(vmm_build_shared_img(wd, &e) == 0, "rebuilt");
	_cleanup_free_ char *got2 = capture(cmd);
	is_str(got2, "{\"a\":2}", "rebuilt with new content");
	tu_rmrf(root);
	return tap_done();
}
