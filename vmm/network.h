/*
 * network.h — per-VM NIC resolution and naming (spec §6).
 *
 * Requests name only a mode and an optional bridge; each is merged onto the
 * node's [cvm.networking] so the manifest records the full, resolved NIC.
 * MAC addresses are derived from the VM id so they are stable across
 * restarts without being stored.
 */
#ifndef DSTACK_VMM_NETWORK_H
#define DSTACK_VMM_NETWORK_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "vmm/config.h"

/* NetworkingConfig as it arrives over RPC. */
struct vmm_net_req {
	const char *mode;
	const char *bridge_name;
};

/*
 * Resolve `networks[]` (or the single legacy `networking` when n_networks is
 * 0 and `single` is non-NULL). sys_class_net is normally "/sys/class/net".
 * *out gets n entries (possibly 0: follow the node default).
 */
int vmm_networks_resolve(const struct vmm_config *c, const struct vmm_net_req *networks, size_t n_networks,
			 const struct vmm_net_req *single, const char *sys_class_net, struct vmm_net **out,
			 size_t *n_out, struct err *e);
void vmm_networks_free(struct vmm_net *v, size_t n);

/* Format the MAC of NIC `index` into out (18 bytes). mac_prefix: 0-3 hex bytes. */
int vmm_mac_address(const char *vm_id, size_t index, const char *mac_prefix, char out[18], struct err *e);
/* libvirt-filter TAP name: "dt" + hex(sha256(instance_id \0 vm_id \0 index)[:6]). */
void vmm_tap_name(const char *instance_id, const char *vm_id, size_t index, char out[16]);

#endif
