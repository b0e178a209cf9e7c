/*
 * gpu.h — host GPU discovery for passthrough (spec §3 ListGpus, §7.1):
 * parse `lspci -nn -vv`, keep devices whose product id is in
 * [cvm.gpu] listing (minus exclude, within include when set). A device with
 * BusMaster enabled is in use by a host driver or a VM, so it is not free.
 */
#ifndef DSTACK_VMM_GPU_H
#define DSTACK_VMM_GPU_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "vmm/app.h"
#include "vmm/config.h"

struct vmm_gpu_dev {
	struct vmm_pci_dev pci;
	char description[256];
	bool is_free;
};

/* Every device in the text (no filtering). *out malloc'd. */
int vmm_lspci_parse(const char *text, struct vmm_gpu_dev **out, size_t *n);
/* Run `lspci -nn -vv` (through PATH) and parse it; -1 when lspci cannot run. */
int vmm_lspci_read(struct vmm_gpu_dev **out, size_t *n);
/* Keep what [cvm.gpu] allows; returns the new count (in place). */
size_t vmm_gpu_filter(const struct vmm_config *c, struct vmm_gpu_dev *devs, size_t n);
/* ListGpusResponse {gpus:[{slot, product_id, description, is_free}], allow_attach_all}. */
json_t *vmm_gpu_list_json(const struct vmm_config *c, const struct vmm_gpu_dev *devs, size_t n);

/*
 * CreateVm/UpdateVm GpuConfig: "listed" takes the slots given; "all" (needs
 * allow_attach_all) takes every vendor-10de "3D controller" as a GPU and
 * every vendor-10de "Bridge" (NVSwitch) as a bridge. Any GPU request while
 * [cvm.gpu] is disabled, and any other attach_mode, is an error.
 */
int vmm_gpus_resolve(const struct vmm_config *c, const struct vmm_pci_dev *pci, size_t n_pci,
		     const struct vmm_gpu_req *g, struct vmm_manifest *m, struct err *e);

#endif
