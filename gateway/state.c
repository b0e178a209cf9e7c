/*
 * state.c — the registry of CVMs (gateway.md §4.5–4.6, §6): registration
 * rules, address allocation, the WireGuard peer file, handshake times and
 * the recycler. The store is the durable copy; every change is written to it
 * first (synchronously) and then published as a new immutable table
 * (table.c), which the proxy's routing (route.c) and the RPC services read
 * without locks. See gateway.h for the locking.
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

int gw_state_init(struct gateway *gw, struct err *e)
{
	struct gw_instance *v = NULL;
	struct gw_table *t;
	size_t n = 0;

	pthread_mutex_lock(&gw->lock);
	int rc = gw->store->ops->list_instances(gw->store, &v, &n, e);
	pthread_mutex_unlock(&gw->lock);
	if (rc < 0)
		return -1;
	t = gw_table_from(v, n);
	gw_instances_free(v, n);
	if (!t)
		return err_set(e, "out of memory");
	pthread_mutex_lock(&gw->lock);
	gw_table_publish(gw, t);
	pthread_mutex_unlock(&gw->lock);
	return 0;
}

void gw_state_free(struct gateway *gw)
{
	gw_table_put(gw->table);
	gw->table = NULL;
}

size_t gw_instance_count(struct gateway *gw)
{
	struct gw_table *t = gw_table_get(gw);
	size_t n = t->n;

	gw_table_put(t);
	return n;
}

/* Publish the current table with the ids in remove[] left out; caller holds lock. */
static int publish_removal(struct gateway *gw, const char *const *remove, size_t n_remove, struct err *e)
{
	struct gw_table *t = gw_table_edit(gw->table, NULL, remove, n_remove);

	if (!t)
		return err_set(e, "out of memory");
	gw_table_publish(gw, t);
	return 0;
}

/* Write `rec` to the store (synchronously), then publish it: readers only
 * ever see what is on disk. The new table is built first so nothing can fail
 * between the write and the publication. Caller holds lock. */
static int commit(struct gateway *gw, const struct gw_instance *rec, struct err *e)
{
	struct gw_rec *r = gw_rec_new(rec);
	struct gw_table *t = r ? gw_table_edit(gw->table, r, NULL, 0) : NULL;

	gw_rec_put(r);
	if (!t)
		return err_set(e, "out of memory");
	if (gw->store->ops->put_instance(gw->store, rec, e) < 0) {
		gw_table_put(t);
		return -1;
	}
	gw_table_publish(gw, t);
	return 0;
}

/* Caller holds wg_lock (not lock). */
static int sync_wg_locked(struct gateway *gw, struct err *e)
{
	_cleanup_buf_ struct buf b = BUF_INIT;
	struct gw_table *t = gw_table_get(gw);
	struct gw_instance *v = NULL;
	size_t n = t->n;
	int rc;

	if (n && !(v = calloc(n, sizeof(*v)))) {
		gw_table_put(t);
		return err_set(e, "out of memory");
	}
	for (size_t i = 0; i < n; i++) { /* shallow: only ids, keys and ips are read */
		v[i] = t->v[i].rec->inst;
		v[i].policy.ports = v[i].admin_policy.ports = NULL;
	}
	wg_render(&gw->wg, v, n, &b);
	gw_table_put(t);
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
	const struct gw_table *t = gw->table;
	const struct gw_slot *cur;
	struct gw_instance rec = {0};
	char status[16];
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
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->v[i].rec->inst.public_key, r->public_key) &&
		    strcmp(t->v[i].rec->inst.instance_id, r->instance_id))
			return err_set(e, "WireGuard public key is already used by instance %s",
				       t->v[i].rec->inst.instance_id);
	cur = gw_table_find(t, r->instance_id);
	if (cur && strcmp(cur->rec->inst.app_id, r->app_id))
		return err_set(e, "instance %s is registered to another app (%s)", r->instance_id,
			       cur->rec->inst.app_id);
	if (cur) {
		if (gw_instance_copy(&rec, &cur->rec->inst) < 0)
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
	if (commit(gw, &rec, e) < 0)
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
	const struct gw_slot *cur;
	int rc = -1;

	if (check_policy(policy, e) < 0)
		return -1;
	pthread_mutex_lock(&gw->lock);
	if (!(cur = gw_table_find(gw->table, iid))) {
		err_set(e, "instance %.128s not found", iid);
		goto out;
	}
	if (gw_instance_copy(&rec, &cur->rec->inst) < 0) {
		err_set(e, "out of memory");
		goto out;
	}
	gw_port_policy_free(&rec.admin_policy);
	if (policy && gw_port_policy_copy(&rec.admin_policy, policy) < 0) {
		err_set(e, "out of memory");
		goto out;
	}
	rec.admin_policy.present = policy != NULL;
	if (commit(gw, &rec, e) < 0)
		goto out;
	rc = 0;
out:
	pthread_mutex_unlock(&gw->lock);
	if (rc == 0 && gw->proxy) {
		proxy_engine_invalidate(gw->proxy, rec.app_id);
		proxy_engine_invalidate(gw->proxy, rec.instance_id);
	}
	gw_instance_clear(&rec);
	return rc;
}

int gw_set_reported_policy(struct gateway *gw, const char *iid, const struct gw_port_policy *policy,
			   struct err *e)
{
	struct gw_instance rec = {0};
	const struct gw_slot *cur;
	bool changed = false;
	int rc = -1;

	pthread_mutex_lock(&gw->lock);
	if (!(cur = gw_table_find(gw->table, iid))) {
		err_set(e, "instance %.128s is gone", iid);
		goto out;
	}
	if (cur->rec->inst.policy.present) { /* the instance reported one meanwhile: it wins */
		rc = 0;
		goto out;
	}
	if (gw_instance_copy(&rec, &cur->rec->inst) < 0 || gw_port_policy_copy(&rec.policy, policy) < 0) {
		err_set(e, "out of memory");
		goto out;
	}
	rec.policy.present = true;
	if (commit(gw, &rec, e) < 0)
		goto out;
	rc = 0;
	changed = true;
out:
	pthread_mutex_unlock(&gw->lock);
	if (changed && gw->proxy) {
		proxy_engine_invalidate(gw->proxy, rec.app_id);
		proxy_engine_invalidate(gw->proxy, rec.instance_id);
	}
	gw_instance_clear(&rec);
	return rc;
}

int gw_snapshot(struct gateway *gw, struct gw_entry **out, size_t *n, struct err *e)
{
	struct gw_table *t = gw_table_get(gw);
	struct gw_entry *v;

	if (!(v = calloc(t->n ? t->n : 1, sizeof(*v)))) {
		gw_table_put(t);
		return err_set(e, "out of memory");
	}
	for (size_t i = 0; i < t->n; i++) {
		v[i].handshake = t->v[i].handshake;
		if (gw_instance_copy(&v[i].inst, &t->v[i].rec->inst) < 0) {
			gw_table_put(t);
			gw_snapshot_free(v, i);
			return err_set(e, "out of memory");
		}
	}
	*n = t->n;
	gw_table_put(t);
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
	struct gw_table *t;
	struct err e = ERR_INIT;
	size_t n = 0;
	int rc;

	if (!*gw->wg.interface)
		return;
	rc = wg_read_handshakes(&gw->wg, &hs, &n, &e); /* no lock held while `wg` runs */
	if (rc < 0)
		log_warn("wireguard handshakes: %s", err_str(&e));
	pthread_mutex_lock(&gw->lock);
	if ((t = gw_table_with_handshakes(gw->table, hs, n, rc == 0)))
		gw_table_publish(gw, t);
	pthread_mutex_unlock(&gw->lock);
	free(hs);
}

void gw_recycle(struct gateway *gw)
{
	uint64_t now = now_s(), limit = gw->cfg.recycle_timeout / 1000;
	struct err e = ERR_INIT;
	const char **removed = NULL;
	struct gw_rec **gone = NULL;
	size_t n_removed = 0;

	pthread_mutex_lock(&gw->wg_lock);
	pthread_mutex_lock(&gw->lock);
	const struct gw_table *t = gw->table;
	if (t->n && (!(removed = calloc(t->n, sizeof(*removed))) || !(gone = calloc(t->n, sizeof(*gone))))) {
		log_warn("recycle: out of memory");
		goto out;
	}
	for (size_t i = 0; i < t->n; i++) {
		const struct gw_slot *s = &t->v[i];
		const struct gw_instance *in = &s->rec->inst;
		uint64_t last = s->handshake ? s->handshake : in->reg_time;
		if (in->reg_time + limit > now || last + limit > now)
			continue;
		if (gw->store->ops->delete_instance(gw->store, in->instance_id, &e) < 0) {
			log_warn("recycle %s: %s", in->instance_id, err_str(&e));
			err_clear(&e);
			continue;
		}
		log_info("recycled stale instance %s (app %s)", in->instance_id, in->app_id);
		atomic_fetch_add(&s->rec->refs, 1); /* kept for the cache invalidation below */
		gone[n_removed] = s->rec;
		removed[n_removed++] = in->instance_id;
	}
	if (n_removed && publish_removal(gw, removed, n_removed, &e) < 0)
		log_warn("recycle: %s", err_str(&e));
out:
	pthread_mutex_unlock(&gw->lock);
	if (n_removed && sync_wg_locked(gw, &e) < 0)
		log_warn("wireguard: %s", err_str(&e));
	pthread_mutex_unlock(&gw->wg_lock);
	for (size_t i = 0; i < n_removed; i++) {
		if (gw->proxy) {
			proxy_engine_invalidate(gw->proxy, gone[i]->inst.app_id);
			proxy_engine_invalidate(gw->proxy, gone[i]->inst.instance_id);
		}
		gw_rec_put(gone[i]);
	}
	free(removed);
	free(gone);
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
