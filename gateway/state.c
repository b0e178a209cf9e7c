/*
 * state.c — the registry of CVMs (gateway.md §4.5–4.6, §6): registration
 * rules, address allocation, the WireGuard peer file, handshake times, the
 * recycler, and the routing callback the proxy engine calls (§5 backend
 * selection and port policy). The store is the durable copy; `entries` is
 * the in-memory mirror the proxy reads (see gateway.h for the locking).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/base64.h"
#include "core/cleanup.h"
#include "core/log.h"
#include "core/mem.h"
#include "gateway.h"

static uint64_t now_s(void)
{
	return (uint64_t)time(NULL);
}

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct gw_entry *)a)->inst.instance_id,
		      ((const struct gw_entry *)b)->inst.instance_id);
}

/* Caller holds lock. */
static struct gw_entry *find_instance(struct gateway *gw, const char *iid)
{
	struct gw_entry key;

	if (!gw->n_entries)
		return NULL;
	snprintf(key.inst.instance_id, sizeof(key.inst.instance_id), "%s", iid);
	return bsearch(&key, gw->entries, gw->n_entries, sizeof(*gw->entries), entry_cmp);
}

static void entries_free(struct gateway *gw)
{
	for (size_t i = 0; i < gw->n_entries; i++)
		gw_instance_clear(&gw->entries[i].inst);
	free(gw->entries);
	gw->entries = NULL;
	gw->n_entries = 0;
}

/* Reload the mirror from the store, keeping known handshakes. Caller holds lock. */
static int reload(struct gateway *gw, struct err *e)
{
	struct gw_instance *v = NULL;
	struct gw_entry *ne;
	size_t n = 0;

	if (gw->store->ops->list_instances(gw->store, &v, &n, e) < 0)
		return -1;
	if (!(ne = calloc(n ? n : 1, sizeof(*ne)))) {
		gw_instances_free(v, n);
		return err_set(e, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		struct gw_entry *old = find_instance(gw, v[i].instance_id);
		ne[i].inst = v[i];
		ne[i].handshake = old && !strcmp(old->inst.public_key, v[i].public_key) ? old->handshake : 0;
	}
	free(v); /* members moved */
	entries_free(gw);
	gw->entries = ne;
	gw->n_entries = n;
	qsort(gw->entries, n, sizeof(*gw->entries), entry_cmp);
	return 0;
}

int gw_state_init(struct gateway *gw, struct err *e)
{
	pthread_mutex_lock(&gw->lock);
	int rc = reload(gw, e);
	pthread_mutex_unlock(&gw->lock);
	return rc;
}

void gw_state_free(struct gateway *gw)
{
	entries_free(gw);
}

/* Caller holds wg_lock (not lock). */
static int sync_wg_locked(struct gateway *gw, struct err *e)
{
	_cleanup_buf_ struct buf b = BUF_INIT;
	struct gw_instance *v = NULL;
	size_t n;
	int rc;

	pthread_mutex_lock(&gw->lock);
	n = gw->n_entries;
	if (n && !(v = calloc(n, sizeof(*v)))) {
		pthread_mutex_unlock(&gw->lock);
		return err_set(e, "out of memory");
	}
	for (size_t i = 0; i < n; i++) { /* shallow: only ids, keys and ips are read */
		v[i] = gw->entries[i].inst;
		v[i].policy.ports = v[i].admin_policy.ports = NULL;
	}
	wg_render(&gw->wg, v, n, &b);
	pthread_mutex_unlock(&gw->lock);
	free(v);
	rc = wg_apply(&gw->wg, (const char *)b.data, b.len, e);
	secure_zero(b.data, b.len);
	return rc;
}

int gw_sync_wg(struct gateway *gw, struct err *e)
{
	pthread_mutex_lock(&gw->wg_lock);
	int rc = sync_wg_locked(gw, e);
	pthread_mutex_unlock(&gw->wg_lock);
	return rc;
}

static bool valid_id(const char *s)
{
	if (!*s || strlen(s) > GW_ID_MAX)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

static int check_wg_key(const char *key, struct err *e)
{
	_cleanup_free_ uint8_t *raw = NULL;
	size_t len = 0;

	if (strlen(key) > GW_WG_KEY_MAX || base64_decode(key, strlen(key), &raw, &len, NULL) < 0 || len != 32)
		return err_set(e, "invalid WireGuard public key: expected base64 of 32 bytes");
	return 0;
}

static int check_policy(const struct gw_port_policy *p, struct err *e)
{
	for (size_t i = 0; p && i < p->n_ports; i++)
		if (p->ports[i].port == 0)
			return err_set(e, "invalid port policy: port 0");
	return 0;
}

int gw_node_status(struct gateway *gw, char *out, size_t size, struct err *e)
{
	pthread_mutex_lock(&gw->lock);
	int rc = gw->store->ops->get_node_status(gw->store, gw->cfg.node_id, out, size, e);
	pthread_mutex_unlock(&gw->lock);
	return rc;
}

int gw_set_node_status(struct gateway *gw, uint32_t id, const char *status, struct err *e)
{
	if (strcmp(status, "up") && strcmp(status, "down"))
		return err_set(e, "invalid node status '%.32s': expected \"up\" or \"down\"", status);
	pthread_mutex_lock(&gw->lock);
	int rc = gw->store->ops->set_node_status(gw->store, id, status, e);
	pthread_mutex_unlock(&gw->lock);
	return rc;
}

/* Caller holds lock. */
static int register_locked(struct gateway *gw, const struct gw_registration *r, uint32_t *ip_out,
			   struct err *e)
{
	char status[16];
	struct gw_entry *cur;
	struct gw_instance rec = {0};
	int rc = -1;

	if (gw->store->ops->get_node_status(gw->store, gw->cfg.node_id, status, sizeof(status), e) < 0)
		return -1;
	if (!strcmp(status, "down"))
		return err_set(e, "this gateway node is down");
	if (!valid_id(r->app_id))
		return err_set(e, "invalid app id: expected non-empty lowercase hex");
	if (!valid_id(r->instance_id))
		return err_set(e, "invalid instance id: expected non-empty lowercase hex");
	if (check_wg_key(r->public_key, e) < 0 || check_policy(r->policy, e) < 0)
		return -1;
	for (size_t i = 0; i < gw->n_entries; i++)
		if (!strcmp(gw->entries[i].inst.public_key, r->public_key) &&
		    strcmp(gw->entries[i].inst.instance_id, r->instance_id))
			return err_set(e, "WireGuard public key is already used by instance %s",
				       gw->entries[i].inst.instance_id);
	cur = find_instance(gw, r->instance_id);
	if (cur && strcmp(cur->inst.app_id, r->app_id))
		return err_set(e, "instance %s is registered to another app (%s)", r->instance_id,
			       cur->inst.app_id);
	if (cur) {
		if (gw_instance_copy(&rec, &cur->inst) < 0)
			return err_set(e, "out of memory");
		if (strcmp(rec.public_key, r->public_key))
			rec.reg_time = now_s();
		if (strcmp(rec.compose_hash, r->compose_hash))
			gw_port_policy_free(&rec.policy); /* new code, the cached policy no longer holds */
		if (!ip_pool_usable(&gw->pool, rec.ip) &&
		    gw->store->ops->allocate_ip(gw->store, &gw->pool, &rec.ip, e) < 0)
			goto out;
	} else {
		snprintf(rec.instance_id, sizeof(rec.instance_id), "%s", r->instance_id);
		snprintf(rec.app_id, sizeof(rec.app_id), "%s", r->app_id);
		rec.reg_time = now_s();
		if (gw->store->ops->allocate_ip(gw->store, &gw->pool, &rec.ip, e) < 0)
			goto out;
	}
	snprintf(rec.public_key, sizeof(rec.public_key), "%s", r->public_key);
	snprintf(rec.compose_hash, sizeof(rec.compose_hash), "%s", r->compose_hash);
	if (r->policy) {
		gw_port_policy_free(&rec.policy);
		if (gw_port_policy_copy(&rec.policy, r->policy) < 0) {
			err_set(e, "out of memory");
			goto out;
		}
		rec.policy.present = true;
	}
	if (gw->store->ops->put_instance(gw->store, &rec, e) < 0 || reload(gw, e) < 0)
		goto out;
	*ip_out = rec.ip;
	rc = 0;
out:
	gw_instance_clear(&rec);
	return rc;
}

int gw_register(struct gateway *gw, const struct gw_registration *r, uint32_t *ip, struct err *e)
{
	struct err we = ERR_INIT;
	char ips[16];
	int rc;

	pthread_mutex_lock(&gw->wg_lock);
	pthread_mutex_lock(&gw->lock);
	rc = register_locked(gw, r, ip, e);
	pthread_mutex_unlock(&gw->lock);
	if (rc == 0 && sync_wg_locked(gw, &we) < 0)
		log_warn("wireguard: %s", err_str(&we)); /* the registration stands; next sync retries */
	pthread_mutex_unlock(&gw->wg_lock);
	if (rc < 0)
		return -1;
	if (gw->proxy) {
		proxy_engine_invalidate(gw->proxy, r->app_id);
		proxy_engine_invalidate(gw->proxy, r->instance_id);
	}
	ip4_format(*ip, ips);
	log_info("registered instance %s of app %s at %s", r->instance_id, r->app_id, ips);
	return 0;
}

int gw_set_admin_policy(struct gateway *gw, const char *iid, const struct gw_port_policy *policy,
			struct err *e)
{
	struct gw_instance rec = {0};
	struct gw_entry *cur;
	int rc = -1;

	if (check_policy(policy, e) < 0)
		return -1;
	pthread_mutex_lock(&gw->lock);
	if (!(cur = find_instance(gw, iid))) {
		err_set(e, "instance %.128s not found", iid);
		goto out;
	}
	if (gw_instance_copy(&rec, &cur->inst) < 0) {
		err_set(e, "out of memory");
		goto out;
	}
	gw_port_policy_free(&rec.admin_policy);
	if (policy && gw_port_policy_copy(&rec.admin_policy, policy) < 0) {
		err_set(e, "out of memory");
		goto out;
	}
	rec.admin_policy.present = policy != NULL;
	if (gw->store->ops->put_instance(gw->store, &rec, e) < 0 || reload(gw, e) < 0)
		goto out;
	rc = 0;
	if (gw->proxy) {
		proxy_engine_invalidate(gw->proxy, rec.app_id);
		proxy_engine_invalidate(gw->proxy, rec.instance_id);
	}
out:
	pthread_mutex_unlock(&gw->lock);
	gw_instance_clear(&rec);
	return rc;
}

int gw_set_reported_policy(struct gateway *gw, const char *iid, const struct gw_port_policy *policy,
			   struct err *e)
{
	struct gw_instance rec = {0};
	struct gw_entry *cur;
	int rc = -1;

	pthread_mutex_lock(&gw->lock);
	if (!(cur = find_instance(gw, iid))) {
		err_set(e, "instance %.128s is gone", iid);
		goto out;
	}
	if (cur->inst.policy.present) { /* the instance reported one meanwhile: it wins */
		rc = 0;
		goto out;
	}
	if (gw_instance_copy(&rec, &cur->inst) < 0 || gw_port_policy_copy(&rec.policy, policy) < 0) {
		err_set(e, "out of memory");
		goto out;
	}
	rec.policy.present = true;
	if (gw->store->ops->put_instance(gw->store, &rec, e) < 0 || reload(gw, e) < 0)
		goto out;
	rc = 0;
	if (gw->proxy) {
		proxy_engine_invalidate(gw->proxy, rec.app_id);
		proxy_engine_invalidate(gw->proxy, rec.instance_id);
	}
out:
	pthread_mutex_unlock(&gw->lock);
	gw_instance_clear(&rec);
	return rc;
}

int gw_snapshot(struct gateway *gw, struct gw_entry **out, size_t *n, struct err *e)
{
	struct gw_entry *v;

	pthread_mutex_lock(&gw->lock);
	if (!(v = calloc(gw->n_entries ? gw->n_entries : 1, sizeof(*v)))) {
		pthread_mutex_unlock(&gw->lock);
		return err_set(e, "out of memory");
	}
	for (size_t i = 0; i < gw->n_entries; i++) {
		v[i].handshake = gw->entries[i].handshake;
		if (gw_instance_copy(&v[i].inst, &gw->entries[i].inst) < 0) {
			pthread_mutex_unlock(&gw->lock);
			gw_snapshot_free(v, i);
			return err_set(e, "out of memory");
		}
	}
	*n = gw->n_entries;
	pthread_mutex_unlock(&gw->lock);
	*out = v;
	return 0;
}

void gw_snapshot_free(struct gw_entry *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		gw_instance_clear(&v[i].inst);
	free(v);
}

void gw_refresh_handshakes(struct gateway *gw)
{
	struct wg_handshake *hs = NULL;
	struct err e = ERR_INIT;
	size_t n = 0;
	int rc;

	if (!*gw->wg.interface)
		return;
	rc = wg_read_handshakes(&gw->wg, &hs, &n, &e);
	pthread_mutex_lock(&gw->lock);
	gw->handshakes_known = rc == 0;
	for (size_t i = 0; rc == 0 && i < gw->n_entries; i++) {
		gw->entries[i].handshake = 0;
		for (size_t j = 0; j < n; j++)
			if (!strcmp(hs[j].public_key, gw->entries[i].inst.public_key))
				gw->entries[i].handshake = hs[j].time;
	}
	pthread_mutex_unlock(&gw->lock);
	if (rc < 0)
		log_warn("wireguard handshakes: %s", err_str(&e));
	free(hs);
}

void gw_recycle(struct gateway *gw)
{
	uint64_t now = now_s(), limit = gw->cfg.recycle_timeout / 1000;
	struct err e = ERR_INIT;
	size_t removed = 0;

	pthread_mutex_lock(&gw->wg_lock);
	pthread_mutex_lock(&gw->lock);
	for (size_t i = 0; i < gw->n_entries; i++) {
		const struct gw_entry *en = &gw->entries[i];
		uint64_t last = en->handshake ? en->handshake : en->inst.reg_time;
		if (en->inst.reg_time + limit > now || last + limit > now)
			continue;
		if (gw->store->ops->delete_instance(gw->store, en->inst.instance_id, &e) < 0) {
			log_warn("recycle %s: %s", en->inst.instance_id, err_str(&e));
			continue;
		}
		log_info("recycled stale instance %s (app %s)", en->inst.instance_id, en->inst.app_id);
		if (gw->proxy) {
			proxy_engine_invalidate(gw->proxy, en->inst.app_id);
			proxy_engine_invalidate(gw->proxy, en->inst.instance_id);
		}
		removed++;
	}
	if (removed && reload(gw, &e) < 0)
		log_warn("recycle: %s", err_str(&e));
	pthread_mutex_unlock(&gw->lock);
	if (removed && sync_wg_locked(gw, &e) < 0)
		log_warn("wireguard: %s", err_str(&e));
	pthread_mutex_unlock(&gw->wg_lock);
}

#define HANDSHAKE_REFRESH_MS 10000u

static void *housekeeper(void *arg)
{
	struct gateway *gw = arg;
	uint64_t next_hs = 0, next_recycle = gw->cfg.recycle_interval;
	uint64_t elapsed = 0;
	const uint64_t tick = 500;

	pthread_mutex_lock(&gw->stop_lock);
	while (!gw->stopping) {
		pthread_mutex_unlock(&gw->stop_lock);
		if (elapsed >= next_hs) {
			gw_refresh_handshakes(gw);
			next_hs = elapsed + HANDSHAKE_REFRESH_MS;
		}
		if (gw->cfg.recycle_enabled && elapsed >= next_recycle) {
			gw_recycle(gw);
			next_recycle = elapsed + (gw->cfg.recycle_interval ? gw->cfg.recycle_interval : 1000);
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)tick * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_mutex_lock(&gw->stop_lock);
		if (!gw->stopping)
			pthread_cond_timedwait(&gw->stop_cond, &gw->stop_lock, &ts);
		elapsed += tick;
	}
	pthread_mutex_unlock(&gw->stop_lock);
	return NULL;
}

int gw_housekeeper_start(struct gateway *gw, struct err *e)
{
	if (pthread_create(&gw->housekeeper, NULL, housekeeper, gw) != 0)
		return err_set(e, "cannot start the housekeeping thread");
	gw->housekeeper_running = true;
	return 0;
}

void gw_housekeeper_stop(struct gateway *gw)
{
	if (!gw->housekeeper_running)
		return;
	pthread_mutex_lock(&gw->stop_lock);
	gw->stopping = true;
	pthread_cond_broadcast(&gw->stop_cond);
	pthread_mutex_unlock(&gw->stop_lock);
	pthread_join(gw->housekeeper, NULL);
	gw->housekeeper_running = false;
}

/* ---- proxy routing ---- */

/* Effective policy for `port`: true if allowed, *pp set. Caller holds lock. */
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
	uint64_t x = (*(const struct gw_entry *const *)a)->handshake;
	uint64_t y = (*(const struct gw_entry *const *)b)->handshake;

	return x < y ? 1 : x > y ? -1 : 0;
}

static int resolve(void *ctx, const char *id, uint16_t port, struct proxy_candidates *out, struct err *e)
{
	struct gateway *gw = ctx;
	struct gw_entry *one, **list = NULL;
	size_t n = 0;
	bool pp, denied = false;
	uint64_t now = now_s(), stale = gw->cfg.t_handshake_stale / 1000;
	int rc = -1;

	out->n = 0;
	out->app_id[0] = 0;
	pthread_mutex_lock(&gw->lock);
	if ((one = find_instance(gw, id))) {
		snprintf(out->app_id, sizeof(out->app_id), "%s", one->inst.app_id);
		if (policy_allows(gw, &one->inst, port, &pp)) {
			add_candidate(out, &one->inst, port, pp);
			rc = 0;
		} else {
			err_set(e, "port %u is not allowed by the port policy of instance %s", port, id);
		}
		goto out;
	}
	if (!(list = calloc(gw->n_entries ? gw->n_entries : 1, sizeof(*list)))) {
		err_set(e, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < gw->n_entries; i++) {
		struct gw_entry *en = &gw->entries[i];
		if (strcmp(en->inst.app_id, id))
			continue;
		/* Without handshake data (no managed link, `wg show` failing) every instance counts. */
		if (gw->handshakes_known && (!en->handshake || en->handshake + stale < now))
			continue;
		list[n++] = en;
	}
	if (!n) {
		err_set(e, "no healthy instance for '%.128s'", id);
		goto out;
	}
	snprintf(out->app_id, sizeof(out->app_id), "%s", id);
	if (gw->handshakes_known) {
		qsort(list, n, sizeof(*list), hs_desc);
	} else {
		for (size_t i = n - 1; i > 0; i--) { /* shuffle: "failure ⇒ random" */
			size_t j = (size_t)rand() % (i + 1);
			struct gw_entry *t = list[i];
			list[i] = list[j];
			list[j] = t;
		}
	}
	for (size_t i = 0; i < n && out->n < PROXY_MAX_CANDIDATES; i++) {
		if (policy_allows(gw, &list[i]->inst, port, &pp))
			add_candidate(out, &list[i]->inst, port, pp);
		else
			denied = true;
	}
	if (out->n)
		rc = 0;
	else
		err_set(e, "%s", denied ? "port not allowed by any instance's port policy" : "no instance");
out:
	pthread_mutex_unlock(&gw->lock);
	free(list);
	return rc;
}

/* gateway.<base>/.dstack/acme-info: the AcmeInfo reply (no ACME account yet);
 * app-info needs the local guest agent, which is not wired up (404). */
static char *info_json(void *ctx, const char *what)
{
	(void)ctx;
	if (!strcmp(what, "acme-info"))
		return strdup("{\"account_uri\":\"\",\"quoted_hist_keys\":[],\"account_quote\":\"\","
			      "\"account_attestation\":\"\"}");
	return NULL;
}

const struct proxy_routes gw_proxy_routes_template = {.resolve = resolve, .info_json = info_json};
