/*
 * shared_img.c — see shared_img.h. The image is built beside the old one and
 * renamed over it, so a failed rebuild never leaves a half-written disk.
 */
#include "vmm/shared_img.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "vmm/util.h"
#include "vmm/workdir.h"

int vmm_build_shared_img(const char *workdir, struct err *e)
{
	_cleanup_free_ char *img = path_join(workdir, "shared.img");
	_cleanup_free_ char *tmp = path_join(workdir, ".shared.img.tmp");
	_cleanup_free_ char *dir = path_join(workdir, VMM_SHARED_DIR);
	struct strv fmt = {0}, cp = {0};
	struct dirent *de;
	size_t nfiles = 0;
	DIR *d;
	int r = -1;

	unlink(tmp);
	strv_push(&fmt, "mformat");
	strv_push(&fmt, "-i");
	strv_push(&fmt, tmp);
	strv_push(&fmt, "-C");
	strv_push(&fmt, "-F");
	strv_pushf(&fmt, "-T");
	strv_pushf(&fmt, "%u", VMM_SHARED_IMG_BYTES / 512);
	strv_push(&fmt, "-h");
	strv_push(&fmt, "64");
	strv_push(&fmt, "-s");
	strv_push(&fmt, "32");
	strv_push(&fmt, "-v");
	strv_push(&fmt, VMM_SHARED_IMG_LABEL);
	strv_push(&fmt, "::");
	if (vmm_run(&fmt, e) < 0)
		goto out;
	strv_push(&cp, "mcopy");
	strv_push(&cp, "-o");
	strv_push(&cp, "-i");
	strv_push(&cp, tmp);
	d = opendir(dir);
	if (!d) {
		err_errno(e, "open %s", dir);
		goto out;
	}
	while ((de = readdir(d))) {
		_cleanup_free_ char *p = path_join(dir, de->d_name);
		struct stat st;

		if (lstat(p, &st) == 0 && S_ISREG(st.st_mode)) {
			strv_push(&cp, p);
			nfiles++;
		}
	}
	closedir(d);
	strv_push(&cp, "::/");
	if (nfiles && vmm_run(&cp, e) < 0)
		goto out;
	if (rename(tmp, img) < 0) {
		err_errno(e, "rename %s", tmp);
		goto out;
	}
	r = 0;
out:
	if (r < 0) {
		unlink(tmp);
		err_wrap(e, "Failed to build shared.img");
	}
	strv_free(&fmt);
	strv_free(&cp);
	return r;
}
