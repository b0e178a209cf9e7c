/*
 * route.c — the routing callbacks the proxy engine calls from its worker
 * threads (gateway.md §5): backend selection with the port policy, and the
 * bodies of the built-in gateway.<base>/app-info and /acme-info.
 *
 * Everything here reads the published table (table.c) through a reference,
 * so a route lookup never waits for a registration or its disk write; the
 * only lock taken is the one that hands out that reference, and the port
 * policy fetch queue's (no I/O under either).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway.h"

/* Effective policy for `port`: true if allowed, *pp set. */
static bool policy_allows(struct gateway *gw, const struct gw_instance *in, uint16_t port, bool *pp)
{
	const struct gw_port_policy *p = in->admin_policy.present ? &in->admin_policy : &in->policy;

	*pp = false;
	if (!p->present) {
		gw_fetch_enqueue(gw, in->instance_id, in->ip);
		return false; /* unknown policy: fail closed until fetched */
	}
	for (size_t i = 0; i < p->n_ports; i++)
		if (p->ports[i].port == port) {
			*pp = p->ports[i].pp;
			return true;
		}
	return !p->restrict_mode;
}

static void add_candidate(struct proxy_candidates *out, const struct gw_instance *in, uint16_t port, bool pp)
{
	struct sockaddr_in *sa = (struct sockaddr_in *)&out->b[out->n].addr;

	memset(&out->b[out->n], 0, sizeof(out->b[out->n]));
	sa->sin_family = AF_INET;
	sa->sin_port = htons(port);
	sa->sin_addr.s_addr = htonl(in->ip);
	out->b[out->n].addr_len = sizeof(*sa);
	out->b[out->n].pp = pp;
	out->n++;
}

static int hs_desc(const void *a, const void *b)
{
	uint64_t x = (*(const struct gw_slot *const *)a)->handshake;
	uint64_t y = (*(const struct gw_slot *const *)b)->handshake;

	return x < y ? 1 : x > y ? -1 : 0;
}

static int resolve_in(struct gateway *gw, const struct gw_table *t, const char *id, uint16_t port,
		      struct proxy_candidates *out, struct err *e)
{
	const struct gw_slot *one, **list;
	size_t n = 0, first, count;
	bool pp, denied = false;
	uint64_t now = (uint64_t)time(NULL), stale = gw->cfg.t_handshake_stale / 1000;
	int rc = -1;

	if ((one = gw_table_find(t, id))) { /* an instance id: that instance, no health check */
		snprintf(out->app_id, sizeof(out->app_id), "%s", one->rec->inst.app_id);
		if (!policy_allows(gw, &one->rec->inst, port, &pp))
			return err_set(e, "port %u is not allowed by the port policy of instance %s", port,
				       id);
		add_candidate(out, &one->rec->inst, port, pp);
		return 0;
	}
	if (!(count = gw_table_app_range(t, id, &first)))
		return err_set(e, "no instance of '%.128s'", id);
	if (!(list = calloc(count, sizeof(*list))))
		return err_set(e, "out of memory");
	for (size_t i = first; i < first + count; i++) {
		const struct gw_slot *s = &t->v[t->by_app[i]];
		/* Without handshake data (no managed link, `wg show` failing) every instance counts. */
		if (t->handshakes_known && (!s->handshake || s->handshake + stale < now))
			continue;
		list[n++] = s;
	}
	if (!n) {
		err_set(e, "no healthy instance for '%.128s'", id);
		goto out;
	}
	snprintf(out->app_id, sizeof(out->app_id), "%s", id);
	if (t->handshakes_known) {
		qsort(list, n, sizeof(*list), hs_desc); /* most recent first */
	} else {
		for (size_t i = n - 1; i > 0; i--) { /* shuffle: "failure ⇒ random" */
			size_t j = (size_t)rand() % (i + 1);
			const struct gw_slot *tmp = list[i];
			list[i] = list[j];
			list[j] = tmp;
		}
	}
	for (size_t i = 0; i < n && out->n < PROXY_MAX_CANDIDATES; i++) {
		if (policy_allows(gw, &list[i]->rec->inst, port, &pp))
			add_candidate(out, &list[i]->rec->inst, port, pp);
		else
			denied = true;
	}
	if (out->n)
		rc = 0;
	else
		err_set(e, "%s", denied ? "port not allowed by any instance's port policy" : "no instance");
out:
	free(list);
	return rc;
}

static int resolve(void *ctx, const char *id, uint16_t port, struct proxy_candidates *out, struct err *e)
{
	struct gateway *gw = ctx;
	struct gw_table *t = gw_table_get(gw);
	int rc;

	out->n = 0;
	out->app_id[0] = 0;
	rc = resolve_in(gw, t, id, port, out, e);
	gw_table_put(t);
	return rc;
}

/* gateway.<base>/.dstack/acme-info: the AcmeInfo reply (no ACME account
 * yet); /app-info: the Info of this gateway's own guest agent, read at start
 * (404 outside a CVM). Called on a worker thread: no I/O here. */
static char *info_json(void *ctx, const char *what)
{
	struct gateway *gw = ctx;

	if (!strcmp(what, "acme-info"))
		return strdup("{\"account_uri\":\"\",\"quoted_hist_keys\":[],\"account_quote\":\"\","
			      "\"account_attestation\":\"\"}");
	if (!strcmp(what, "app-info") && gw->app_info_json)
		return strdup(gw->app_info_json);
	return NULL;
}

const struct proxy_routes gw_proxy_routes_template = {.resolve = resolve, .info_json = info_json};
