/*
 * ipnet.c — IPv4 networks and the client address pool (see ipnet.h).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipnet.h"

int ip4_parse(const char *s, uint32_t *out)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		return -1;
	*out = ntohl(a.s_addr);
	return 0;
}

void ip4_format(uint32_t ip, char out[16])
{
	snprintf(out, 16, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

int ipnet_parse(const char *s, struct ipnet *out, struct err *e)
{
	char host[32];
	const char *slash = strchr(s, '/');
	size_t hl = slash ? (size_t)(slash - s) : strlen(s);
	unsigned long pfx = 32;
	char *end;

	if (hl == 0 || hl >= sizeof(host))
		return err_set(e, "invalid network '%.64s'", s);
	memcpy(host, s, hl);
	host[hl] = 0;
	if (ip4_parse(host, &out->addr) < 0)
		return err_set(e, "invalid network '%.64s': bad IPv4 address", s);
	if (slash) {
		if (slash[1] < '0' || slash[1] > '9')
			return err_set(e, "invalid network '%.64s': bad prefix length", s);
		pfx = strtoul(slash + 1, &end, 10);
		if (*end || pfx > 32)
			return err_set(e, "invalid network '%.64s': bad prefix length", s);
	}
	out->prefix = (uint8_t)pfx;
	return 0;
}

uint32_t ipnet_mask(const struct ipnet *n)
{
	return n->prefix ? 0xffffffffu << (32 - n->prefix) : 0;
}

uint32_t ipnet_network(const struct ipnet *n)
{
	return n->addr & ipnet_mask(n);
}

uint32_t ipnet_broadcast(const struct ipnet *n)
{
	return ipnet_network(n) | ~ipnet_mask(n);
}

bool ipnet_contains(const struct ipnet *n, uint32_t ip)
{
	return (ip & ipnet_mask(n)) == ipnet_network(n);
}

bool ipnet_subnet_of(const struct ipnet *inner, const struct ipnet *outer)
{
	return inner->prefix >= outer->prefix && ipnet_contains(outer, ipnet_network(inner));
}

int ip_pool_init(struct ip_pool *p, const char *gw_ip, const char *const *reserved, size_t n_reserved,
		 const char *range, struct err *e)
{
	bool gw_reserved = false;

	memset(p, 0, sizeof(*p));
	if (ipnet_parse(gw_ip, &p->gw, e) < 0)
		return err_wrap(e, "core.wg.ip");
	if (ipnet_parse(range, &p->range, e) < 0)
		return err_wrap(e, "core.wg.client_ip_range");
	if (!ipnet_subnet_of(&p->range, &p->gw))
		return err_set(e, "core.wg.client_ip_range %s is not inside core.wg.ip %s", range, gw_ip);
	if (n_reserved && !(p->reserved = calloc(n_reserved, sizeof(*p->reserved))))
		return err_set(e, "out of memory");
	for (size_t i = 0; i < n_reserved; i++) {
		if (ipnet_parse(reserved[i], &p->reserved[i], e) < 0) {
			ip_pool_free(p);
			return err_wrap(e, "core.wg.reserved_net");
		}
		if (!ipnet_subnet_of(&p->reserved[i], &p->gw)) {
			ip_pool_free(p);
			return err_set(e, "core.wg.reserved_net %s is not inside core.wg.ip %s", reserved[i],
				       gw_ip);
		}
		p->n_reserved++;
		if (ipnet_contains(&p->reserved[i], p->gw.addr))
			gw_reserved = true;
	}
	if (!gw_reserved) {
		ip_pool_free(p);
		return err_set(e, "core.wg.ip %s is not inside any core.wg.reserved_net", gw_ip);
	}
	return 0;
}

void ip_pool_free(struct ip_pool *p)
{
	free(p->reserved);
	p->reserved = NULL;
	p->n_reserved = 0;
}

bool ip_pool_usable(const struct ip_pool *p, uint32_t ip)
{
	if (!ipnet_contains(&p->range, ip))
		return false;
	if (p->range.prefix < 31 && (ip == ipnet_network(&p->range) || ip == ipnet_broadcast(&p->range)))
		return false;
	if (ip == p->gw.addr || ip == ipnet_broadcast(&p->gw) || ip == ipnet_network(&p->gw))
		return false;
	for (size_t i = 0; i < p->n_reserved; i++)
		if (ipnet_contains(&p->reserved[i], ip))
			return false;
	return true;
}

int ip_pool_first_free(const struct ip_pool *p, bool (*in_use)(void *arg, uint32_t ip), void *arg,
		       uint32_t *out, struct err *e)
{
	uint32_t first = ipnet_network(&p->range), last = ipnet_broadcast(&p->range);

	for (uint64_t ip = first; ip <= last; ip++) {
		if (!ip_pool_usable(p, (uint32_t)ip) || in_use(arg, (uint32_t)ip))
			continue;
		*out = (uint32_t)ip;
		return 0;
	}
	return err_set(e, "no free address left in core.wg.client_ip_range");
}
