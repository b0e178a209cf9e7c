/*
 * image.h — guest OS images under image.path/<name>/ (spec §5.1).
 *
 * An image is a directory with metadata.json naming the kernel, initrd,
 * firmware and rootfs, plus an optional digest.txt (the os_image_hash) and
 * measurement material. Loading resolves every artefact to an absolute path
 * that must stay inside the image directory and be an existing regular file,
 * so a hostile metadata.json cannot point QEMU at arbitrary host files.
 */
#ifndef DSTACK_VMM_IMAGE_H
#define DSTACK_VMM_IMAGE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "core/err.h"

struct vmm_version {
	uint32_t major, minor, patch;
};

struct vmm_image {
	char *name; /* directory name */
	char *dir;  /* absolute directory path */
	/* Absolute paths; NULL when the metadata does not name them. */
	char *kernel, *initrd, *rootfs, *bios, *bios_sev, *hda;
	char *cmdline;     /* "" when absent */
	char *rootfs_hash; /* NULL when absent */
	bool rootfs_is_iso;
	bool shared_ro;
	bool is_dev;
	char *ovmf_variant; /* NULL when absent */
	bool has_version;
	struct vmm_version version;
	char *digest; /* lowercase hex from digest.txt; NULL when absent */
	/* Paths of the optional measurement files; NULL when absent. */
	char *sha256sum_path;
	char *measurement_tdx, *measurement_snp, *measurement_gcp, *measurement_aws;
	json_t *metadata; /* the parsed metadata.json */
};

/* "X.Y.Z" (extra suffixes after Z, like "-rc1", are ignored). */
int vmm_version_parse(const char *s, struct vmm_version *v);
int vmm_version_cmp(const struct vmm_version *a, const struct vmm_version *b);
/* True when v >= major.minor.patch. */
bool vmm_version_ge(const struct vmm_version *v, uint32_t major, uint32_t minor, uint32_t patch);
/* Guess from a directory name "dstack-X.Y.Z" or "dstack-dev-X.Y.Z". */
int vmm_version_guess(const char *dirname, struct vmm_version *v);

/* Name rules: 1..64 chars of [A-Za-z0-9_.-], no "..". */
bool vmm_image_name_valid(const char *name);

/* Load image.path/<name>. */
int vmm_image_load(const char *image_path, const char *name, struct vmm_image *img, struct err *e);
void vmm_image_free(struct vmm_image *img);
/* Checks that apply at StartVm: version >= 0.5.0 and no .iso rootfs. */
int vmm_image_check_bootable(const struct vmm_image *img, struct err *e);
/* True when lite TDX attestation is possible: digest, sha256sum.txt and measurement.tdx.cbor. */
bool vmm_image_has_tdx_measurement(const struct vmm_image *img);

/* One entry per loadable subdirectory, sorted by name. */
struct vmm_image_list {
	struct vmm_image *v;
	size_t n;
};
int vmm_image_list(const char *image_path, struct vmm_image_list *out, struct err *e);
void vmm_image_list_free(struct vmm_image_list *l);
/* ImageListResponse: {"images":[{name, description, version, is_dev}]};
 * description is metadata.json re-serialised compactly. */
json_t *vmm_image_list_json(const struct vmm_image_list *l);

#endif
