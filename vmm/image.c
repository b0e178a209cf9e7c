/*
 * image.c — see image.h. Paths are resolved with realpath() and compared
 * against the resolved image directory, so symlinks cannot escape it either.
 */
#include "vmm/image.h"

#include <ctype.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/cleanup.h"
#include "core/fileio.h"
#include "vmm/util.h"

#define METADATA_MAX (1 << 20)

int vmm_version_parse(const char *s, struct vmm_version *v)
{
	unsigned long p[3];
	char *end;

	for (int i = 0; i < 3; i++) {
		if (!isdigit((unsigned char)*s))
			return -1;
		p[i] = strtoul(s, &end, 10);
		if (p[i] > UINT32_MAX)
			return -1;
		s = end;
		if (i < 2) {
			if (*s != '.')
				return -1;
			s++;
		}
	}
	if (*s && *s != '-' && *s != '+')
		return -1;
	v->major = (uint32_t)p[0];
	v->minor = (uint32_t)p[1];
	v->patch = (uint32_t)p[2];
	return 0;
}

int vmm_version_cmp(const struct vmm_version *a, const struct vmm_version *b)
{
	if (a->major != b->major)
		return a->major < b->major ? -1 : 1;
	if (a->minor != b->minor)
		return a->minor < b->minor ? -1 : 1;
	if (a->patch != b->patch)
		return a->patch < b->patch ? -1 : 1;
	return 0;
}

bool vmm_version_ge(const struct vmm_version *v, uint32_t major, uint32_t minor, uint32_t patch)
{
	struct vmm_version o = {major, minor, patch};

	return vmm_version_cmp(v, &o) >= 0;
}

int vmm_version_guess(const char *dirname, struct vmm_version *v)
{
	if (strncmp(dirname, "dstack-dev-", 11) == 0)
		return vmm_version_parse(dirname + 11, v);
	if (strncmp(dirname, "dstack-", 7) == 0)
		return vmm_version_parse(dirname + 7, v);
	return -1;
}

bool vmm_image_name_valid(const char *name)
{
	size_t l = strlen(name);

	return l >= 1 && l <= 64 && str_charset_ok(name, "_.-") && !strstr(name, "..");
}

void vmm_image_free(struct vmm_image *img)
{
	free(img->name);
	free(img->dir);
	free(img->kernel);
	free(img->initrd);
	free(img->rootfs);
	free(img->bios);
	free(img->bios_sev);
	free(img->hda);
	free(img->cmdline);
	free(img->rootfs_hash);
	free(img->ovmf_variant);
	free(img->digest);
	free(img->sha256sum_path);
	free(img->measurement_tdx);
	free(img->measurement_snp);
	free(img->measurement_gcp);
	free(img->measurement_aws);
	json_decref(img->metadata);
	memset(img, 0, sizeof(*img));
}

/* Resolve `rel` inside `dir` (already realpath'd); must be a regular file. */
static int resolve_artifact(const char *dir, const char *key, const char *rel, char **out, struct err *e)
{
	_cleanup_free_ char *joined = NULL;
	char real[PATH_MAX];
	size_t dl = strlen(dir);
	struct stat st;

	if (!*rel)
		return err_set(e, "%s: empty path", key);
	joined = rel[0] == '/' ? xstrdup(rel) : path_join(dir, rel);
	if (!realpath(joined, real))
		return err_errno(e, "%s: %s", key, rel);
	if (strncmp(real, dir, dl) != 0 || real[dl] != '/')
		return err_set(e, "%s: path %s escapes the image directory", key, rel);
	if (stat(real, &st) < 0 || !S_ISREG(st.st_mode))
		return err_set(e, "%s: %s is not a regular file", key, rel);
	*out = xstrdup(real);
	return 0;
}

static int artifact(const char *dir, const json_t *md, const char *key, bool required, char **out,
		    struct err *e)
{
	json_t *v = json_object_get(md, key);

	if (!v || json_is_null(v)) {
		if (required)
			return err_set(e, "missing %s", key);
		return 0;
	}
	if (!json_is_string(v))
		return err_set(e, "%s: expected a string", key);
	return resolve_artifact(dir, key, json_string_value(v), out, e);
}

static char *optional_file(const char *dir, const char *name)
{
	char *p = path_join(dir, name);
	struct stat st;

	if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
		return p;
	free(p);
	return NULL;
}

static int read_digest(const char *dir, char **out, struct err *e)
{
	_cleanup_free_ char *p = path_join(dir, "digest.txt");
	_cleanup_free_ uint8_t *data = NULL;
	size_t len, s = 0;

	if (!file_exists(p))
		return 0;
	if (file_read_all(p, 4096, &data, &len, e) < 0)
		return -1;
	while (s < len && isspace(data[s]))
		s++;
	while (len > s && isspace(data[len - 1]))
		len--;
	for (size_t i = s; i < len; i++) {
		if (!isxdigit(data[i]))
			return err_set(e, "digest.txt: not hex");
		data[i] = (uint8_t)tolower(data[i]);
	}
	data[len] = '\0';
	*out = xstrdup((char *)data + s);
	return 0;
}

static int load_inner(const char *image_path, const char *name, struct vmm_image *img, struct err *e)
{
	_cleanup_free_ char *dir = NULL, *mdpath = NULL;
	_cleanup_free_ uint8_t *raw = NULL;
	char real[PATH_MAX];
	json_error_t jerr;
	json_t *md, *v;
	const char *s;

	if (!vmm_image_name_valid(name))
		return err_set(e, "Invalid image name");
	dir = path_join(image_path, name);
	if (!realpath(dir, real))
		return err_errno(e, "%s", dir);
	img->name = xstrdup(name);
	img->dir = xstrdup(real);
	mdpath = path_join(real, "metadata.json");
	if (file_read_all(mdpath, METADATA_MAX, &raw, NULL, e) < 0)
		return -1;
	md = img->metadata = json_loads((const char *)raw, 0, &jerr);
	if (!md || !json_is_object(md))
		return err_set(e, "metadata.json: %s", md ? "expected an object" : jerr.text);
	if (artifact(real, md, "kernel", true, &img->kernel, e) < 0 ||
	    artifact(real, md, "initrd", true, &img->initrd, e) < 0 ||
	    artifact(real, md, "rootfs", false, &img->rootfs, e) < 0 ||
	    artifact(real, md, "bios", false, &img->bios, e) < 0 ||
	    artifact(real, md, "bios-sev", false, &img->bios_sev, e) < 0 ||
	    artifact(real, md, "hda", false, &img->hda, e) < 0)
		return err_wrap(e, "metadata.json");
	img->cmdline = xstrdup(json_str(md, "cmdline") ? json_str(md, "cmdline") : "");
	img->rootfs_hash = xstrdup(json_str(md, "rootfs_hash"));
	img->ovmf_variant = xstrdup(json_str(md, "ovmf_variant"));
	img->shared_ro = json_is_true(json_object_get(md, "shared_ro"));
	img->is_dev = json_is_true(json_object_get(md, "is_dev"));
	if (img->rootfs) {
		size_t l = strlen(img->rootfs);
		img->rootfs_is_iso = l >= 4 && strcmp(img->rootfs + l - 4, ".iso") == 0;
	}
	v = json_object_get(md, "version");
	if (v && !json_is_null(v)) {
		s = json_string_value(v);
		if (!s || vmm_version_parse(s, &img->version) < 0)
			return err_set(e, "metadata.json: invalid version");
		img->has_version = true;
	} else if (vmm_version_guess(name, &img->version) == 0) {
		img->has_version = true;
	}
	if (read_digest(real, &img->digest, e) < 0)
		return -1;
	img->sha256sum_path = optional_file(real, "sha256sum.txt");
	img->measurement_tdx = optional_file(real, "measurement.tdx.cbor");
	img->measurement_snp = optional_file(real, "measurement.snp.cbor");
	img->measurement_gcp = optional_file(real, "measurement.gcp.cbor");
	img->measurement_aws = optional_file(real, "measurement.aws.cbor");
	return 0;
}

int vmm_image_load(const char *image_path, const char *name, struct vmm_image *img, struct err *e)
{
	memset(img, 0, sizeof(*img));
	if (load_inner(image_path, name, img, e) < 0) {
		vmm_image_free(img);
		return err_wrap(e, "Failed to load image %s", name);
	}
	return 0;
}

int vmm_image_check_bootable(const struct vmm_image *img, struct err *e)
{
	if (!img->has_version)
		return err_set(e, "Image %s has no version", img->name);
	if (!vmm_version_ge(&img->version, 0, 5, 0))
		return err_set(e, "Image version %u.%u.%u is too old, 0.5.0 or newer is required",
			       img->version.major, img->version.minor, img->version.patch);
	if (img->rootfs_is_iso)
		return err_set(e, "ISO rootfs is only supported for image versions < 0.5.0");
	return 0;
}

bool vmm_image_has_tdx_measurement(const struct vmm_image *img)
{
	return img->digest && img->sha256sum_path && img->measurement_tdx;
}

static int cmp_image(const void *a, const void *b)
{
	return strcmp(((const struct vmm_image *)a)->name, ((const struct vmm_image *)b)->name);
}

int vmm_image_list(const char *image_path, struct vmm_image_list *out, struct err *e)
{
	DIR *d = opendir(image_path);
	struct dirent *de;

	memset(out, 0, sizeof(*out));
	if (!d)
		return err_errno(e, "open %s", image_path);
	while ((de = readdir(d))) {
		struct vmm_image img;

		if (de->d_name[0] == '.' || !vmm_image_name_valid(de->d_name))
			continue;
		if (vmm_image_load(image_path, de->d_name, &img, NULL) < 0)
			continue;
		out->v = realloc(out->v, (out->n + 1) * sizeof(*out->v));
		if (!out->v)
			abort();
		out->v[out->n++] = img;
	}
	closedir(d);
	if (out->n)
		qsort(out->v, out->n, sizeof(*out->v), cmp_image);
	return 0;
}

void vmm_image_list_free(struct vmm_image_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		vmm_image_free(&l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

json_t *vmm_image_list_json(const struct vmm_image_list *l)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < l->n; i++) {
		const struct vmm_image *img = &l->v[i];
		_cleanup_free_ char *desc = json_dumps(img->metadata, JSON_COMPACT | JSON_PRESERVE_ORDER);
		char ver[48] = "";

		if (img->has_version)
			snprintf(ver, sizeof(ver), "%u.%u.%u", img->version.major, img->version.minor,
				 img->version.patch);
		json_array_append_new(arr,
				      json_pack("{s:s,s:s,s:s,s:b}", "name", img->name, "description",
						desc ? desc : "", "version", ver, "is_dev", img->is_dev));
	}
	return json_pack("{s:o}", "images", arr);
}
