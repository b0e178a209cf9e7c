/*
 * ports.h — host port forwarding requests (spec §6). CreateVm applies the
 * full policy (enabled, allowed ranges, default address); UpdateVm only
 * parses and checks conflicts. Conflicts follow the listener rule: same
 * protocol and host port, and equal addresses or either one unspecified.
 */
#ifndef DSTACK_VMM_PORTS_H
#define DSTACK_VMM_PORTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "vmm/config.h"
#include "vmm/manifest.h"

/* One PortMapping as it arrives over RPC. */
struct vmm_port_req {
	const char *protocol;
	uint32_t host_port;
	uint32_t vm_port;
	const char *host_address; /* "" = default */
};

/* The mappings another VM holds, for the conflict check. */
struct vmm_port_holder {
	const char *vm_id;
	const struct vmm_port_map *ports;
	size_t n_ports;
};

/* CreateVm: full validation. *out is malloc'd (n entries). */
int vmm_ports_for_create(const struct vmm_config *c, const struct vmm_port_req *req, size_t n,
			 const struct vmm_port_holder *others, size_t n_others, struct vmm_port_map **out,
			 struct err *e);
/* UpdateVm (update_ports): parse + conflicts only; empty host_address is an error. */
int vmm_ports_for_update(const struct vmm_port_req *req, size_t n, const char *self_id,
			 const struct vmm_port_holder *others, size_t n_others, struct vmm_port_map **out,
			 struct err *e);

bool vmm_port_conflict(const struct vmm_port_map *a, const struct vmm_port_map *b);
/* Is protocol:port inside a configured range for that protocol? */
bool vmm_port_allowed(const struct vmm_config *c, const char *protocol, uint16_t port);

#endif
