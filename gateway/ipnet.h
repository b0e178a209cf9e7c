/*
 * ipnet.h — IPv4 networks for the WireGuard address plan (gateway.md §6):
 * parsing "a.b.c.d/n", containment checks, and the client address pool
 * (first free host of client_ip_range that is not the gateway's address, its
 * broadcast, a reserved net or already allocated).
 */
#ifndef DSTACK_GATEWAY_IPNET_H
#define DSTACK_GATEWAY_IPNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct ipnet {
	uint32_t addr; /* host order, as written (host bits kept) */
	uint8_t prefix;
};

/* "10.0.0.1/24"; a bare address is /32. */
int ipnet_parse(const char *s, struct ipnet *out, struct err *e);
int ip4_parse(const char *s, uint32_t *out);
void ip4_format(uint32_t ip, char out[16]);
uint32_t ipnet_mask(const struct ipnet *n);
uint32_t ipnet_network(const struct ipnet *n);
uint32_t ipnet_broadcast(const struct ipnet *n);
bool ipnet_contains(const struct ipnet *n, uint32_t ip);
/* inner ⊂ outer (network-wise). */
bool ipnet_subnet_of(const struct ipnet *inner, const struct ipnet *outer);

/* The address plan, validated once at start. */
struct ip_pool {
	struct ipnet gw;        /* core.wg.ip */
	struct ipnet range;     /* core.wg.client_ip_range */
	struct ipnet *reserved; /* core.wg.reserved_net */
	size_t n_reserved;
};

int ip_pool_init(struct ip_pool *p, const char *gw_ip, const char *const *reserved, size_t n_reserved,
		 const char *range, struct err *e);
void ip_pool_free(struct ip_pool *p);
/* Usable for a client: host of range, not gw/broadcast(gw)/reserved. */
bool ip_pool_usable(const struct ip_pool *p, uint32_t ip);
/* First usable address for which in_use(ip) is false. */
int ip_pool_first_free(const struct ip_pool *p, bool (*in_use)(void *arg, uint32_t ip), void *arg,
		       uint32_t *out, struct err *e);

#endif
