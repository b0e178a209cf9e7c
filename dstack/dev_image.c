/*
 * dev_image.c — the VMM backend of `dstack dev` and the guest image its app
 * boots from.
 *
 * The process backend (default) runs simulated CVMs as processes and needs
 * no real image: the placeholder `dstack-dev` (lib/hostcfg/devimage.c,
 * made by `dstack hostcfg`) does. The qemu backend boots a real
 * guest, so it needs a real image: `--image DIR`, a dstack guest image
 * directory as the reference project's releases ship them (metadata.json,
 * kernel, initrd, rootfs), linked into the VMM's image directory under its
 * own name. Everything here is checked before anything is started, so a
 * missing image or QEMU never leaves a half-started stack behind.
 *
 * `--backend` is recorded in build-config.sh (VMM_BACKEND), the single
 * source of the configuration: `dstack hostcfg` regenerates vmm.toml from
 * it and later runs, `status` and `down` agree on the backend.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "dev.h"

#define METADATA_MAX (64 * 1024)

int dev_set_backend(const struct dev *d, const char *backend, struct err *e)
{
	_cleanup_free_ char *script = dev_pathf("%s/build-config.sh", d->dir);
	_cleanup_buf_ struct buf out = BUF_INIT;
	uint8_t *text = NULL;
	size_t n;
	if (strcmp(backend, "process") && strcmp(backend, "qemu"))
		return err_set(e, "--backend %s: process or qemu", backend);
	if (!file_exists(script)) {
		char *argv[] = {"hostcfg", "--dir", d->dir, NULL};
		if (cmd_hostcfg(3, argv) != 0)
			return err_set(e, "dstack hostcfg failed");
	}
	if (file_read_all(script, 256 * 1024, &text, &n, e) < 0)
		return err_wrap(e, "%s", script);
	bool changed = hostcfg_script_set((char *)text, n, "VMM_BACKEND", backend, &out);
	free(text);
	if (!changed)
		return 0;
	pid_t vmm = dev_read_pid(d, "vmm");
	if (vmm > 0)
		return err_set(e,
			       "--backend %s: the VMM of this stack runs (pid %d) with another backend; "
			       "`dstack dev down --dir %s` first",
			       backend, (int)vmm, d->dir);
	if (file_write_atomic(script, out.data, out.len, 0600, e) < 0)
		return err_wrap(e, "%s", script);
	printf("dstack dev up: VMM_BACKEND=%s recorded in %s\n", backend, script);
	return 0;
}

int dev_ensure_dev_image(const struct dev *d, struct err *e)
{
	bool created = false;
	if (strcmp(d->image, HOSTCFG_DEV_IMAGE))
		return 0;
	_cleanup_free_ char *images = dev_pathf("%s/vmm/image", d->dir);
	if (hostcfg_ensure_dev_image(images, &created, e) < 0)
		return -1;
	if (created)
		printf("  vmm          created the simulated-CVM image %s/%s\n", images, HOSTCFG_DEV_IMAGE);
	return 0;
}

/* Image names as the VMM accepts them: 1-64 of [A-Za-z0-9_.-], no "..". */
static bool name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64 || strstr(s, ".."))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '_' || *s == '.' || *s == '-'))
			return false;
	return true;
}

/* A non-empty regular file `key` of metadata.json names, inside dir. */
static int artifact(const char *dir, json_t *md, const char *key, bool required, struct err *e)
{
	const char *f = json_string_value(json_object_get(md, key));
	struct stat st;
	if (!f)
		return required ? err_set(e, "metadata.json names no %s", key) : 0;
	if (strstr(f, "..") || f[0] == '/')
		return err_set(e, "metadata.json: %s %s is not a file name inside the image", key, f);
	_cleanup_free_ char *p = dev_pathf("%s/%s", dir, f);
	if (stat(p, &st) < 0 || !S_ISREG(st.st_mode))
		return err_set(e, "%s %s: not a file", key, p);
	if (st.st_size == 0)
		return err_set(e, "%s %s is empty (a placeholder, not a bootable image)", key, p);
	return 0;
}

/* Is dir a guest image QEMU can boot: metadata.json naming a non-empty
 * kernel and initrd (and rootfs/bios when named)? */
static int check_image_dir(const char *dir, struct err *e)
{
	_cleanup_free_ char *mdp = dev_pathf("%s/metadata.json", dir);
	json_error_t je;
	_cleanup_json_ json_t *md = json_load_file(mdp, 0, &je);
	if (!md || !json_is_object(md))
		return err_set(e, "%s: %s", mdp, md ? "not a JSON object" : je.text);
	if (artifact(dir, md, "kernel", true, e) < 0 || artifact(dir, md, "initrd", true, e) < 0 ||
	    artifact(dir, md, "rootfs", false, e) < 0 || artifact(dir, md, "bios", false, e) < 0)
		return -1;
	return 0;
}

int dev_resolve_image(struct dev *d, const char *arg, struct err *e)
{
	_cleanup_free_ char *md = dev_pathf("%s/metadata.json", arg);
	if (!strchr(arg, '/') && !file_exists(md)) {
		/* a name: an image already in the VMM's image directory */
		if (!name_ok(arg))
			return err_set(e, "--image %s: not an image directory nor a valid image name", arg);
		snprintf(d->image_name, sizeof d->image_name, "%s", arg);
		d->image = d->image_name;
		if (!strcmp(arg, "dstack-dev"))
			return 0;
		_cleanup_free_ char *dir = dev_pathf("%s/vmm/image/%s", d->dir, arg);
		if (!file_exists(dir))
			return err_set(e, "--image %s: no such image in %s/vmm/image/ (pass its directory)",
				       arg, d->dir);
		return 0;
	}
	/* a directory: link it into the VMM's image directory under its name */
	_cleanup_free_ char *real = realpath(arg, NULL);
	if (!real)
		return err_errno(e, "--image %s", arg);
	if (check_image_dir(real, e) < 0)
		return err_wrap(e,
				"--image %s: a dstack guest image directory holds metadata.json, the "
				"kernel and initrd it names (and its rootfs)",
				arg);
	_cleanup_free_ char *copy = strdup(real);
	const char *name = copy ? basename(copy) : "";
	if (!name_ok(name) || !strcmp(name, "dstack-dev"))
		return err_set(e,
			       "--image %s: the directory's name %s is not usable as an image name "
			       "(1-64 of A-Z a-z 0-9 _ . -, not dstack-dev)",
			       arg, name);
	_cleanup_free_ char *images = dev_pathf("%s/vmm/image", d->dir);
	_cleanup_free_ char *link = dev_pathf("%s/%s", images, name);
	char have[PATH_MAX];
	ssize_t l = readlink(link, have, sizeof have - 1);
	if (l > 0) {
		have[l] = '\0';
		if (strcmp(have, real))
			return err_set(e, "--image %s: %s already links to %s", arg, link, have);
	} else {
		if (mkdir_p(images, 0755, e) < 0)
			return -1;
		if (symlink(real, link) < 0)
			return err_errno(e, "--image %s: link %s", arg, link);
		printf("  vmm          image %s: %s -> %s\n", name, link, real);
	}
	snprintf(d->image_name, sizeof d->image_name, "%s", name);
	d->image = d->image_name;
	return 0;
}

int dev_check_backend(const struct dev *d, bool deploying, struct err *e)
{
	if (strcmp(d->c.vmm_backend, "qemu"))
		return 0;
	_cleanup_free_ char *qemu = hostcfg_find_program("qemu-system-x86_64", NULL);
	if (!qemu)
		return err_set(e, "VMM_BACKEND=qemu: qemu-system-x86_64 is not in $PATH (Debian: apt-get "
				  "install qemu-system-x86)");
	if (!deploying)
		return 0;
	if (!strcmp(d->image, "dstack-dev"))
		return err_set(e,
			       "VMM_BACKEND=qemu boots a real guest and needs its image: pass --image DIR, "
			       "a dstack guest image directory (metadata.json, kernel, initrd, rootfs), "
			       "e.g. a dstack-<version> image of the reference project's releases. "
			       "dstack-dev is only a placeholder for the process backend "
			       "(--backend process)");
	_cleanup_free_ char *dir = dev_pathf("%s/vmm/image/%s", d->dir, d->image);
	_cleanup_free_ char *real = realpath(dir, NULL);
	if (!real)
		return err_errno(e, "image %s", dir);
	if (check_image_dir(real, e) < 0)
		return err_wrap(e, "image %s cannot boot under QEMU", d->image);
	return 0;
}
