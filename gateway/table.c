/*
 * table.c — the published registry (gateway.h `struct gw_table`): an
 * immutable, reference-counted snapshot of every registered instance with its
 * last WireGuard handshake, indexed by instance id and by app id.
 *
 * Why: the proxy's worker threads resolve routes from it and must never wait
 * for a registration, whose store write is a synchronous disk write. Writers
 * (serialised by gw->lock) build a new table next to the current one and
 * publish it with a pointer swap under `pub_lock`; readers take a reference
 * under the same lock, which is held only for that swap or increment, never
 * across work. Records (`struct gw_rec`) are immutable and shared between
 * consecutive tables, so a change costs one pointer copy per instance.
 */
#include <stdlib.h>
#include <string.h>

#include "gateway.h"

struct gw_rec *gw_rec_new(const struct gw_instance *src)
{
	struct gw_rec *r = calloc(1, sizeof(*r));

	if (!r || gw_instance_copy(&r->inst, src) < 0) {
		free(r);
		return NULL;
	}
	atomic_init(&r->refs, 1);
	return r;
}

static struct gw_rec *rec_ref(struct gw_rec *r)
{
	atomic_fetch_add(&r->refs, 1);
	return r;
}

void gw_rec_put(struct gw_rec *r)
{
	if (r && atomic_fetch_sub(&r->refs, 1) == 1) {
		gw_instance_clear(&r->inst);
		free(r);
	}
}

void gw_table_put(struct gw_table *t)
{
	if (!t || atomic_fetch_sub(&t->refs, 1) != 1)
		return;
	for (size_t i = 0; i < t->n; i++)
		gw_rec_put(t->v[i].rec);
	free(t->v);
	free(t->by_app);
	free(t);
}

static struct gw_table *table_alloc(size_t n)
{
	struct gw_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	atomic_init(&t->refs, 1);
	t->v = calloc(n ? n : 1, sizeof(*t->v));
	t->by_app = calloc(n ? n : 1, sizeof(*t->by_app));
	if (!t->v || !t->by_app) {
		free(t->v);
		free(t->by_app);
		free(t);
		return NULL;
	}
	return t;
}

static int slot_cmp(const void *a, const void *b)
{
	return strcmp(((const struct gw_slot *)a)->rec->inst.instance_id,
		      ((const struct gw_slot *)b)->rec->inst.instance_id);
}

/* qsort_r has no portable form; the index sort gets its table through this. */
static _Thread_local const struct gw_table *sort_table;

static int app_cmp(const void *a, const void *b)
{
	const struct gw_instance *x = &sort_table->v[*(const size_t *)a].rec->inst;
	const struct gw_instance *y = &sort_table->v[*(const size_t *)b].rec->inst;
	int c = strcmp(x->app_id, y->app_id);

	return c ? c : strcmp(x->instance_id, y->instance_id);
}

/* Sort by instance id and build the app index. */
static struct gw_table *table_finish(struct gw_table *t)
{
	qsort(t->v, t->n, sizeof(*t->v), slot_cmp);
	for (size_t i = 0; i < t->n; i++)
		t->by_app[i] = i;
	sort_table = t;
	qsort(t->by_app, t->n, sizeof(*t->by_app), app_cmp);
	sort_table = NULL;
	return t;
}

struct gw_table *gw_table_from(const struct gw_instance *v, size_t n)
{
	struct gw_table *t = table_alloc(n);

	if (!t)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (!(t->v[i].rec = gw_rec_new(&v[i]))) {
			gw_table_put(t);
			return NULL;
		}
		t->n++;
	}
	return table_finish(t);
}

struct gw_table *gw_table_edit(const struct gw_table *old, struct gw_rec *rec, const char *const *remove,
			       size_t n_remove)
{
	struct gw_table *t = table_alloc(old->n + 1);
	uint64_t rec_handshake = 0;

	if (!t)
		return NULL;
	t->handshakes_known = old->handshakes_known;
	for (size_t i = 0; i < old->n; i++) {
		const struct gw_slot *s = &old->v[i];
		bool replaced = rec && !strcmp(s->rec->inst.instance_id, rec->inst.instance_id);
		bool drop = replaced;
		for (size_t j = 0; j < n_remove && !drop; j++)
			drop = !strcmp(s->rec->inst.instance_id, remove[j]);
		/* a replaced record keeps its handshake while its key is unchanged */
		if (replaced && !strcmp(s->rec->inst.public_key, rec->inst.public_key))
			rec_handshake = s->handshake;
		if (drop)
			continue;
		t->v[t->n].rec = rec_ref(s->rec);
		t->v[t->n++].handshake = s->handshake;
	}
	if (rec) {
		t->v[t->n].rec = rec_ref(rec);
		t->v[t->n++].handshake = rec_handshake;
	}
	return table_finish(t);
}

static int hs_cmp(const void *a, const void *b)
{
	return strcmp(((const struct wg_handshake *)a)->public_key,
		      ((const struct wg_handshake *)b)->public_key);
}

struct gw_table *gw_table_with_handshakes(const struct gw_table *old, struct wg_handshake *hs, size_t n_hs,
					  bool known)
{
	struct gw_table *t = table_alloc(old->n);

	if (!t)
		return NULL;
	if (n_hs)
		qsort(hs, n_hs, sizeof(*hs), hs_cmp);
	t->handshakes_known = known;
	for (size_t i = 0; i < old->n; i++) {
		struct wg_handshake key, *h;
		t->v[i].rec = rec_ref(old->v[i].rec);
		t->v[i].handshake = old->v[i].handshake;
		if (!known)
			continue;
		memcpy(key.public_key, old->v[i].rec->inst.public_key, sizeof(key.public_key));
		h = n_hs ? bsearch(&key, hs, n_hs, sizeof(*hs), hs_cmp) : NULL;
		t->v[i].handshake = h ? h->time : 0;
	}
	t->n = old->n;
	memcpy(t->by_app, old->by_app, old->n * sizeof(*t->by_app)); /* same order */
	return t;
}

struct gw_table *gw_table_get(struct gateway *gw)
{
	struct gw_table *t;

	pthread_mutex_lock(&gw->pub_lock);
	t = gw->table;
	atomic_fetch_add(&t->refs, 1);
	pthread_mutex_unlock(&gw->pub_lock);
	return t;
}

void gw_table_publish(struct gateway *gw, struct gw_table *t)
{
	struct gw_table *old;

	pthread_mutex_lock(&gw->pub_lock);
	old = gw->table;
	gw->table = t;
	pthread_mutex_unlock(&gw->pub_lock);
	gw_table_put(old);
}

const struct gw_slot *gw_table_find(const struct gw_table *t, const char *iid)
{
	size_t lo = 0, hi = t->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(t->v[mid].rec->inst.instance_id, iid);
		if (!c)
			return &t->v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

size_t gw_table_app_range(const struct gw_table *t, const char *app_id, size_t *first)
{
	size_t lo = 0, hi = t->n, end;

	while (lo < hi) { /* lower bound */
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(t->v[t->by_app[mid]].rec->inst.app_id, app_id) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (end = lo; end < t->n && !strcmp(t->v[t->by_app[end]].rec->inst.app_id, app_id); end++)
		;
	*first = lo;
	return end - lo;
}
