/*
 * registry.h — guest images from an OCI registry (spec §3, registry
 * methods): ListRegistryImages lists the tags of the repository named by
 * `[image] registry`, PullRegistryImage fetches one in the background.
 *
 * `registry` names a repository, Docker style: "dstacktee/guest-image"
 * (Docker Hub; a one-word name gets "library/"), "docker.io/x/y",
 * "ghcr.io/x/y", "localhost:5000/x/y". An explicit "http://" or "https://"
 * prefix chooses the scheme; without one, loopback hosts use http and every
 * other host https. Anonymous access, with the registry's Bearer token
 * challenge answered (Docker Hub, GHCR).
 *
 * A pull resolves the tag (an image index picks linux/amd64), downloads
 * each layer verifying its sha256 digest, unpacks it (vmm/tarx.h) into
 * `image.path/.tmp-pull-<tag>`, requires `metadata.json` at the top, and
 * renames the directory to `image.path/dstack-<tag>`. Tags `sha256-*`
 * (signatures, attestations) are not listed.
 */
#ifndef DSTACK_VMM_REGISTRY_H
#define DSTACK_VMM_REGISTRY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "core/err.h"

/* A parsed `[image] registry`. */
struct vmm_registry_ref {
	char *base; /* "https://registry-1.docker.io" */
	char *repo; /* "library/ubuntu" */
};
int vmm_registry_ref_parse(const char *s, struct vmm_registry_ref *r, struct err *e);
void vmm_registry_ref_free(struct vmm_registry_ref *r);

/* Tag charset of the OCI distribution spec, short enough for the image name "dstack-<tag>". */
bool vmm_registry_tag_valid(const char *tag);

struct vmm_registry_pull;

struct vmm_registry {
	char *registry;   /* as configured; "" = not configured */
	char *image_path; /* where pulled images go */
	pthread_mutex_t lock;
	struct vmm_registry_pull **pulls; /* one per tag ever pulled: state, thread */
	size_t n_pulls;
	atomic_bool cancel; /* set by free: running pulls abort */
};

void vmm_registry_init(struct vmm_registry *r, const char *registry, const char *image_path);
/* Aborts running pulls and waits for them. */
void vmm_registry_free(struct vmm_registry *r);

/* RegistryImageListResponse {"images":[{tag, local, pulling, error}]} (blocking: network). */
json_t *vmm_registry_list(struct vmm_registry *r, struct err *e);
/* Start pulling `tag` in the background. Refuses a bad tag, a tag already
 * being pulled and one whose image directory already exists. */
int vmm_registry_pull_start(struct vmm_registry *r, const char *tag, struct err *e);
/* The whole pull in the calling thread (what the background thread runs). */
int vmm_registry_pull_sync(const char *registry, const char *image_path, const char *tag,
			   const atomic_bool *cancel, struct err *e);

#endif
