/*
 * cid_pool.h — vsock guest CIDs (spec §6). The pool is the range
 * [start, start+size); allocation takes the lowest free CID. CIDs are bound
 * when a VM is loaded and freed only when it is removed; at startup the CIDs
 * of processes the supervisor still runs are occupied first. The used set is
 * a small sorted array: a host runs tens of VMs, not millions, and this keeps
 * memory independent of the configured pool size.
 */
#ifndef DSTACK_VMM_CID_POOL_H
#define DSTACK_VMM_CID_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct vmm_cid_pool {
	uint32_t start, size;
	uint32_t *used; /* sorted ascending */
	size_t n_used;
};

void vmm_cid_pool_init(struct vmm_cid_pool *p, uint32_t start, uint32_t size);
void vmm_cid_pool_free(struct vmm_cid_pool *p);
/* Lowest free CID; "CID pool exhausted" when none. */
int vmm_cid_alloc(struct vmm_cid_pool *p, uint32_t *cid, struct err *e);
/* Mark a specific CID used. Fails if outside the range or already used. */
int vmm_cid_occupy(struct vmm_cid_pool *p, uint32_t cid, struct err *e);
void vmm_cid_release(struct vmm_cid_pool *p, uint32_t cid);
bool vmm_cid_is_used(const struct vmm_cid_pool *p, uint32_t cid);
/* Forget every allocation (ReloadVms rebuilds the pool). */
void vmm_cid_pool_clear(struct vmm_cid_pool *p);

/*
 * §1 `run`: the CIDs running VMs already hold, found as `guest-cid=<n>` in
 * the command lines of every process (<proc_root>/<pid>/cmdline; the
 * reference parses `ps aux`), whoever started them. *out malloc'd; returns
 * the count.
 */
size_t vmm_cids_in_use_scan(const char *proc_root, uint32_t **out);

#endif
