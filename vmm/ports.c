/*
 * ports.c — see ports.h. Addresses are parsed with inet_pton and stored in
 * their canonical text form, so "::0" and "::" compare equal.
 */
#include "vmm/ports.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

bool vmm_port_allowed(const struct vmm_config *c, const char *protocol, uint16_t port)
{
	for (size_t i = 0; i < c->cvm.port_mapping.n_ranges; i++) {
		const struct vmm_port_range *r = &c->cvm.port_mapping.ranges[i];

		if (!strcmp(r->protocol, protocol) && port >= r->from && port <= r->to)
			return true;
	}
	return false;
}

/* Canonicalise an IPv4/IPv6 literal; -1 when it is not one. */
static int canon_addr(const char *s, char out[64])
{
	unsigned char bin[16];

	if (inet_pton(AF_INET, s, bin) == 1)
		return inet_ntop(AF_INET, bin, out, 64) ? 0 : -1;
	if (inet_pton(AF_INET6, s, bin) == 1)
		return inet_ntop(AF_INET6, bin, out, 64) ? 0 : -1;
	return -1;
}

static bool unspecified(const char *a)
{
	return !strcmp(a, "0.0.0.0") || !strcmp(a, "::");
}

bool vmm_port_conflict(const struct vmm_port_map *a, const struct vmm_port_map *b)
{
	if (strcmp(a->protocol, b->protocol) || a->from != b->from)
		return false;
	return !strcmp(a->address, b->address) || unspecified(a->address) || unspecified(b->address);
}

static int check_conflicts(const struct vmm_port_map *m, size_t n, const char *self_id,
			   const struct vmm_port_holder *others, size_t n_others, struct err *e)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < i; j++)
			if (vmm_port_conflict(&m[i], &m[j]))
				return err_set(e, "duplicate host port mapping: %s %s:%u", m[i].protocol,
					       m[i].address, m[i].from);
		for (size_t k = 0; k < n_others; k++) {
			if (self_id && others[k].vm_id && !strcmp(self_id, others[k].vm_id))
				continue;
			for (size_t j = 0; j < others[k].n_ports; j++)
				if (vmm_port_conflict(&m[i], &others[k].ports[j]))
					return err_set(e, "host port %s %s:%u is already used by VM %s",
						       m[i].protocol, m[i].address, m[i].from,
						       others[k].vm_id);
		}
	}
	return 0;
}

static int parse_one(const struct vmm_port_req *r, const struct vmm_config *c, struct vmm_port_map *m,
		     struct err *e)
{
	const char *addr = r->host_address ? r->host_address : "";
	const char *proto = r->protocol ? r->protocol : "";

	if (r->host_port > 65535)
		return err_set(e, "Invalid host port: out of range integral type conversion attempted");
	if (r->vm_port > 65535)
		return err_set(e, "Invalid vm port: out of range integral type conversion attempted");
	if (c && !vmm_port_allowed(c, proto, (uint16_t)r->host_port))
		return err_set(e, "Port mapping is not allowed for %s:%u", proto, r->host_port);
	if (strcmp(proto, "tcp") && strcmp(proto, "udp"))
		return err_set(e, "Invalid protocol: %s", proto);
	if (!*addr && c)
		addr = c->cvm.port_mapping.address;
	if (canon_addr(addr, m->address) < 0)
		return err_set(e, "Invalid host address: invalid IP address syntax");
	strcpy(m->protocol, proto);
	m->from = (uint16_t)r->host_port;
	m->to = (uint16_t)r->vm_port;
	return 0;
}

static int build(const struct vmm_config *c, const struct vmm_port_req *req, size_t n, const char *self_id,
		 const struct vmm_port_holder *others, size_t n_others, struct vmm_port_map **out,
		 struct err *e)
{
	struct vmm_port_map *m = calloc(n ? n : 1, sizeof(*m));

	if (!m)
		abort();
	for (size_t i = 0; i < n; i++) {
		if (parse_one(&req[i], c, &m[i], e) < 0) {
			free(m);
			return -1;
		}
	}
	if (check_conflicts(m, n, self_id, others, n_others, e) < 0) {
		free(m);
		return -1;
	}
	*out = m;
	return 0;
}

int vmm_ports_for_create(const struct vmm_config *c, const struct vmm_port_req *req, size_t n,
			 const struct vmm_port_holder *others, size_t n_others, struct vmm_port_map **out,
			 struct err *e)
{
	if (n && !c->cvm.port_mapping.enabled)
		return err_set(e, "Port mapping is disabled");
	return build(c, req, n, NULL, others, n_others, out, e);
}

int vmm_ports_for_update(const struct vmm_port_req *req, size_t n, const char *self_id,
			 const struct vmm_port_holder *others, size_t n_others, struct vmm_port_map **out,
			 struct err *e)
{
	return build(NULL, req, n, self_id, others, n_others, out, e);
}
