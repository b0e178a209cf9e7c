/*
 * manifest.h — vm-manifest.json (spec §5.3): the persistent description of
 * one VM. Read and written as JSON with a fixed field order, so files stay
 * diffable and match what the reference writes; the legacy single
 * `networking` field is accepted when `networks` is absent or empty.
 */
#ifndef DSTACK_VMM_MANIFEST_H
#define DSTACK_VMM_MANIFEST_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "core/err.h"
#include "vmm/config.h"
#include "vmm/util.h"

struct vmm_port_map {
	char address[64]; /* textual IPv4/IPv6 address */
	char protocol[4]; /* "tcp" | "udp" */
	uint16_t from;    /* host port */
	uint16_t to;      /* vm port */
};

struct vmm_gpu_cfg {
	char attach_mode[8]; /* "listed" | "all" */
	struct strv gpus;    /* PCI slots, e.g. "18:00.0" */
	struct strv bridges; /* NVSwitch slots */
};

struct vmm_manifest {
	char *id;
	char *name;
	char *app_id; /* lowercase hex, no 0x */
	uint32_t vcpu, memory, disk_size;
	char *image;
	struct vmm_port_map *ports;
	size_t n_ports;
	uint64_t created_at_ms;
	bool hugepages, pin_numa;
	bool has_gpus;
	struct vmm_gpu_cfg gpus;
	struct strv kms_urls, gateway_urls;
	bool no_tee;
	char *simulated_tee; /* NULL = unset */
	bool swtpm;
	struct vmm_net *networks;
	size_t n_networks;
	struct strv volumes; /* absolute source paths */
};

void vmm_manifest_free(struct vmm_manifest *m);
void vmm_manifest_copy(struct vmm_manifest *dst, const struct vmm_manifest *src);
void vmm_manifest_set_networks(struct vmm_manifest *m, const struct vmm_net *nets, size_t n);
void vmm_manifest_set_ports(struct vmm_manifest *m, const struct vmm_port_map *p, size_t n);
json_t *vmm_manifest_to_json(const struct vmm_manifest *m);
int vmm_manifest_from_json(const json_t *j, struct vmm_manifest *m, struct err *e);
json_t *vmm_net_to_json(const struct vmm_net *n);
int vmm_net_from_json(const json_t *j, struct vmm_net *n, struct err *e);

#endif
