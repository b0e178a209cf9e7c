/*
 * gateway.h — the dstack-gateway program's shared state and the seams
 * between its files: state.c (registry of CVMs, registration rules, proxy
 * routing, WireGuard sync, housekeeping), rpc.c (Gateway and Debug
 * services), admin.c (Admin service, auth, dashboard), main.c (start-up).
 *
 * Locking: `lock` serialises writers — registry changes and every store
 * call — and may be held across a synchronous store write. The registry that
 * readers see is `table`, an immutable snapshot (table.c) published after
 * the store write succeeded, so what routes is what is on disk; the proxy's
 * worker threads take a reference to it under `pub_lock`, which only guards
 * the pointer swap, and never wait for `lock`. `wg_lock` serialises registry
 * changes with their `wg syncconf`, so the peer file is applied in the order
 * the changes happened, without holding `lock` while a process runs. Order:
 * wg_lock, then lock, then fetch_lock / pub_lock.
 */
#ifndef DSTACK_GATEWAY_GATEWAY_H
#define DSTACK_GATEWAY_GATEWAY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>

#include "cfg.h"
#include "http/server.h"
#include "ipnet.h"
#include "proxy/proxy.h"
#include "store.h"
#include "wg.h"

struct ratls_verifier;

/* A pending port-policy fetch (legacy CVMs, Debug registrations). */
struct gw_fetch {
	char instance_id[GW_ID_MAX + 1];
	uint32_t ip;
	unsigned tries;
	uint64_t due_ms; /* monotonic */
	uint64_t backoff_ms;
};
#define GW_FETCH_QUEUE 64

/* A copy of one instance with its last handshake (gw_snapshot). */
struct gw_entry {
	struct gw_instance inst;
	uint64_t handshake; /* unix seconds, 0 = never/unknown */
};

/* An immutable, reference-counted instance record, shared by tables. */
struct gw_rec {
	atomic_uint refs;
	struct gw_instance inst;
};

struct gw_slot {
	struct gw_rec *rec;
	uint64_t handshake; /* unix seconds, 0 = never/unknown */
};

/* The published registry (table.c): immutable once published. */
struct gw_table {
	atomic_uint refs;
	bool handshakes_known; /* the last `wg show` succeeded */
	size_t n;
	struct gw_slot *v; /* sorted by instance id */
	size_t *by_app;    /* indices into v, sorted by app id, then instance id */
};

struct gateway {
	struct gw_config cfg;
	struct ip_pool pool;
	struct wg_settings wg;
	struct gw_store *store;
	struct proxy_engine *proxy;
	struct ratls_verifier *verifier; /* NULL with insecure_skip_attestation */
	struct event_base *base;
	uint8_t uuid[16];
	char own_app_id[41]; /* this gateway's app id from its guest agent; "" outside a CVM */

	pthread_mutex_t lock;     /* writers and the store */
	pthread_mutex_t pub_lock; /* the swap of `table` and taking a reference */
	struct gw_table *table;   /* never NULL after gw_state_init */
	char *app_info_json;      /* own guest agent's Info (gateway.<base>/app-info), or NULL */

	pthread_mutex_t wg_lock;

	pthread_mutex_t fetch_lock; /* taken after `lock`, never before */
	struct gw_fetch fetch_q[GW_FETCH_QUEUE];
	size_t n_fetch;
	pthread_t fetcher;
	bool fetcher_running;

	pthread_t housekeeper;
	bool housekeeper_running;
	pthread_mutex_t stop_lock;
	pthread_cond_t stop_cond;
	bool stopping;
};

/* ---- table.c ---- */
struct gw_rec *gw_rec_new(const struct gw_instance *src); /* deep copy, one reference */
void gw_rec_put(struct gw_rec *r);
/* The current table, with a reference the caller drops with gw_table_put. */
struct gw_table *gw_table_get(struct gateway *gw);
void gw_table_put(struct gw_table *t);
/* Replace the current table by t (whose reference moves to the gateway). Caller holds lock. */
void gw_table_publish(struct gateway *gw, struct gw_table *t);
struct gw_table *gw_table_from(const struct gw_instance *v, size_t n);
/* A new table: old with rec inserted or replacing the instance of its id (rec
 * may be NULL) and the ids in remove[] left out; handshakes carried over
 * (a replaced record's only if its WireGuard key is unchanged). */
struct gw_table *gw_table_edit(const struct gw_table *old, struct gw_rec *rec, const char *const *remove,
			       size_t n_remove);
/* A new table: old with the handshake times of hs (sorted here); known =
 * the read succeeded (else the old times stay). */
struct gw_table *gw_table_with_handshakes(const struct gw_table *old, struct wg_handshake *hs, size_t n_hs,
					  bool known);
const struct gw_slot *gw_table_find(const struct gw_table *t, const char *instance_id);
/* The instances of an app: count, *first = their first position in by_app. */
size_t gw_table_app_range(const struct gw_table *t, const char *app_id, size_t *first);

/* ---- state.c ---- */
int gw_state_init(struct gateway *gw, struct err *e);
void gw_state_free(struct gateway *gw);
/* Render and apply the peer file from the registry. */
int gw_sync_wg(struct gateway *gw, struct err *e);

struct gw_registration {
	const char *app_id, *instance_id, *compose_hash, *public_key; /* ids lowercase hex */
	const struct gw_port_policy *policy;                          /* NULL = not reported */
};
/* The rules of gateway.md §4.5–4.6; *ip gets the client's address. */
int gw_register(struct gateway *gw, const struct gw_registration *r, uint32_t *ip, struct err *e);
/* Status "up"/"down" of this node. */
int gw_node_status(struct gateway *gw, char *out, size_t size, struct err *e);
int gw_set_node_status(struct gateway *gw, uint32_t id, const char *status, struct err *e);
/* Admin override: policy NULL clears it. */
int gw_set_admin_policy(struct gateway *gw, const char *instance_id, const struct gw_port_policy *policy,
			struct err *e);
/* A copy of the registry (lock taken inside); free with free() after
 * gw_instance_clear of each inst. */
int gw_snapshot(struct gateway *gw, struct gw_entry **out, size_t *n, struct err *e);
void gw_snapshot_free(struct gw_entry *v, size_t n);
size_t gw_instance_count(struct gateway *gw);
/* Refresh handshakes now (`wg show`); used by the timer and Admin.Status. */
void gw_refresh_handshakes(struct gateway *gw);
/* Remove stale instances (recycle rules, §6). */
void gw_recycle(struct gateway *gw);
int gw_housekeeper_start(struct gateway *gw, struct err *e);
void gw_housekeeper_stop(struct gateway *gw);

/* ---- route.c ---- */
/* The proxy's routing callbacks (ctx = the gateway). */
extern const struct proxy_routes gw_proxy_routes_template;

/* ---- policy_fetch.c ---- */
/* Queue a fetch of the instance's policy from its agent (deduplicated,
 * non-blocking; caller may hold `lock`). */
void gw_fetch_enqueue(struct gateway *gw, const char *instance_id, uint32_t ip);
/* Policy from a guest agent Info reply (tcb_info.app_compose.port_policy). */
int gw_policy_from_agent_info(const char *json, struct gw_port_policy *out, struct err *e);
/* Store a policy the instance reported (or its agent returned), unless one is already known. */
int gw_set_reported_policy(struct gateway *gw, const char *instance_id, const struct gw_port_policy *p,
			   struct err *e);
int gw_fetcher_start(struct gateway *gw, struct err *e);
void gw_fetcher_stop(struct gateway *gw);

/* ---- rpc.c ---- */
int gw_mount_main(struct gateway *gw, struct http_server *srv, struct err *e);
int gw_mount_debug(struct gateway *gw, struct http_server *srv, struct err *e);

/* ---- agent.c (the guest agent of the gateway's own CVM, prpc/agent.h) ---- */
/* GetTlsKey for core.rpc_domain; writes tls.certs, tls.key, tls.mutual.ca_certs. */
int gw_agent_fetch_tls(const struct gw_config *cfg, struct err *e);
/* The app id of the gateway's own CVM (guest agent Info), lowercase hex, and
 * (info_json not NULL) the whole Info reply as JSON text (malloc'd). */
int gw_agent_info(char app_id[41], char **info_json, struct err *e);

/* ---- conncount.c ---- */
/* counts[i] = live proxy connections to the instance at ips[i] (host order). */
int gw_instance_connections(const struct gateway *gw, const uint32_t *ips, size_t n, unsigned *counts,
			    struct err *e);

/* ---- certs.c ---- */
/* Install the certificates of the state store; a broken one is logged,
 * counted in `failed` and described in `e` (the first), the others load. */
int gw_load_stored_certs(struct gateway *gw, unsigned *loaded, unsigned *failed, struct err *e);
/* Re-read the static [core.proxy] certificate and the stored ones
 * (Admin.ReloadCert, SIGHUP); whatever fails to load stays as it was. */
int gw_reload_certs(struct gateway *gw, struct err *e);

/* ---- admin.c ---- */
int gw_mount_admin(struct gateway *gw, struct http_server *srv, struct err *e);

#endif
