/*
 * conncount.c — live proxy connections per CVM instance, for Admin.Status,
 * GetInfo and the dashboard (gateway.md §3 HostInfo.num_connections).
 *
 * The proxy engine counts connections per app (its max_connections_per_app
 * counter) but not per backend. Rather than reach into the engine's
 * connection path, this counts the process's own TCP sockets whose peer is
 * an instance's WireGuard address: /proc/self/fd gives our socket inodes,
 * /proc/self/net/tcp their peer address and state. Sockets on our own
 * listening ports (a CVM calling the RPC or the proxy through the tunnel)
 * and half-open/closing states that carry no relay are left out. It runs
 * only on admin requests (their blocking worker threads), never on the
 * proxy's path; the cost is one pass over our descriptors and the netns's
 * TCP table.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "gateway.h"

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Inodes of this process's sockets, sorted. */
static int own_socket_inodes(uint64_t **out, size_t *n, struct err *e)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	uint64_t *v = NULL;
	size_t len = 0, cap = 0;

	if (!d)
		return err_errno(e, "open /proc/self/fd");
	while ((de = readdir(d))) {
		char path[64], link[64];
		unsigned long long ino;
		ssize_t l;
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		if ((l = readlink(path, link, sizeof(link) - 1)) <= 0)
			continue;
		link[l] = 0;
		if (sscanf(link, "socket:[%llu]", &ino) != 1)
			continue;
		if (len == cap) {
			uint64_t *nv = realloc(v, (cap = cap ? cap * 2 : 256) * sizeof(*v));
			if (!nv) {
				free(v);
				closedir(d);
				return err_set(e, "out of memory");
			}
			v = nv;
		}
		v[len++] = ino;
	}
	closedir(d);
	if (len)
		qsort(v, len, sizeof(*v), u64_cmp);
	*out = v;
	*n = len;
	return 0;
}

static bool own_listener(const struct gw_config *c, unsigned port)
{
	return port == c->port || (c->admin_enabled && port == c->admin_address.port) ||
	       (c->debug_enabled && port == c->debug_address.port) ||
	       (port >= c->listen_port.first && port <= c->listen_port.last);
}

/* TCP states (include/net/tcp_states.h) that carry no relayed connection. */
static bool idle_state(unsigned st)
{
	return st == 0x02 /* SYN_SENT: a losing parallel connect */ || st == 0x06 /* TIME_WAIT */ ||
	       st == 0x07 /* CLOSE */ || st == 0x0A /* LISTEN */;
}

struct ip_slot {
	uint32_t ip;
	size_t idx;
};

static int ip_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct ip_slot *)a)->ip, y = ((const struct ip_slot *)b)->ip;

	return x < y ? -1 : x > y;
}

int gw_instance_connections(const struct gateway *gw, const uint32_t *ips, size_t n, unsigned *counts,
			    struct err *e)
{
	_cleanup_free_ uint64_t *inodes = NULL;
	_cleanup_free_ struct ip_slot *by_ip = NULL;
	size_t n_inodes = 0;
	char line[512];
	FILE *f;

	memset(counts, 0, n * sizeof(*counts));
	if (!n)
		return 0;
	if (!(by_ip = calloc(n, sizeof(*by_ip))))
		return err_set(e, "out of memory");
	for (size_t i = 0; i < n; i++)
		by_ip[i] = (struct ip_slot){ips[i], i};
	qsort(by_ip, n, sizeof(*by_ip), ip_cmp);
	if (own_socket_inodes(&inodes, &n_inodes, e) < 0)
		return -1;
	if (!(f = fopen("/proc/self/net/tcp", "r")))
		return err_errno(e, "open /proc/self/net/tcp");
	while (fgets(line, sizeof(line), f)) {
		unsigned lport, st;
		unsigned long rip;
		unsigned long long ino;
		uint64_t key;
		struct ip_slot want, *hit;
		/* sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode */
		if (sscanf(line, " %*u: %*8x:%4x %8lx:%*4x %2x %*x:%*x %*x:%*x %*x %*u %*u %llu", &lport,
			   &rip, &st, &ino) != 4)
			continue; /* the header line */
		if (idle_state(st) || own_listener(&gw->cfg, lport))
			continue;
		key = ino;
		if (!n_inodes || !bsearch(&key, inodes, n_inodes, sizeof(*inodes), u64_cmp))
			continue;
		want.ip = ntohl((uint32_t)rip); /* printed as the raw network-order word */
		/* several instances never share an address; the first match is the one */
		if ((hit = bsearch(&want, by_ip, n, sizeof(*by_ip), ip_cmp)))
			counts[hit->idx]++;
	}
	fclose(f);
	return 0;
}
