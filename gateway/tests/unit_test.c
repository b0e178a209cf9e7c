/*
 * unit_test.c — the gateway's pure parts: the WireGuard address plan
 * (gateway.md §6 validation and allocation, including the cluster subnet
 * plan), the wg(8) rendering, and the SQLite store (records, address
 * allocation, node status, UUID, certificates) on a temporary directory.
 *
 * And the registry around the store (state.c, table.c, route.c) in a
 * `struct gateway` built here: route lookups answer while a registration is
 * stuck in its store write (a store wrapper that blocks put_instance), and a
 * registration is routable only once it is on disk; the published table's
 * edits (handshakes kept only for an unchanged key, the app index); backend
 * choice by handshake (most recent first, stale and never-handshaked
 * instances left out, everyone when handshakes are unknown) and the port
 * policy (unknown = refused, restrict_mode, pp).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codec/base64.h"
#include "core/tap.h"
#include "gateway.h"
#include "ipnet.h"
#include "store.h"
#include "wg.h"

static bool none_used(void *arg, uint32_t ip)
{
	(void)arg;
	(void)ip;
	return false;
}

static bool first_two_used(void *arg, uint32_t ip)
{
	(void)arg;
	return ip == 0x0a000002 || ip == 0x0a000003;
}

static void test_pool(void)
{
	const char *res[] = {"10.0.0.1/32"};
	const char *res_bad[] = {"10.1.0.1/32"};
	const char *res_nogw[] = {"10.0.0.5/32"};
	struct ip_pool p;
	struct err e = ERR_INIT;
	uint32_t ip = 0;
	char s[16];

	ok(ip_pool_init(&p, "10.0.0.1/24", res, 1, "10.0.0.0/25", &e) == 0, "default plan is valid");
	ok(ip_pool_first_free(&p, none_used, NULL, &ip, &e) == 0, "allocates");
	ip4_format(ip, s);
	is_str(s, "10.0.0.2", "first host after the gateway");
	ip_pool_first_free(&p, first_two_used, NULL, &ip, &e);
	ip4_format(ip, s);
	is_str(s, "10.0.0.4", "skips allocated addresses");
	ok(!ip_pool_usable(&p, 0x0a00007f), "range broadcast 10.0.0.127 not usable");
	ok(ip_pool_usable(&p, 0x0a00007e), "10.0.0.126 is the last usable");
	ok(!ip_pool_usable(&p, 0x0a000080), "outside client_ip_range not usable");
	ok(!ip_pool_usable(&p, 0x0a000000), "network address not usable");
	ip_pool_free(&p);

	ok(ip_pool_init(&p, "10.0.0.1/24", res_bad, 1, "10.0.0.0/25", &e) < 0 &&
	       strstr(err_str(&e), "reserved_net"),
	   "reserved net outside the network refused: %s", err_str(&e));
	err_clear(&e);
	ok(ip_pool_init(&p, "10.0.0.1/24", res_nogw, 1, "10.0.0.0/25", &e) < 0 &&
	       strstr(err_str(&e), "not inside any core.wg.reserved_net"),
	   "gateway ip must be reserved: %s", err_str(&e));
	err_clear(&e);
	ok(ip_pool_init(&p, "10.0.0.1/24", res, 1, "10.0.1.0/25", &e) < 0 &&
	       strstr(err_str(&e), "client_ip_range"),
	   "client range outside the network refused: %s", err_str(&e));
	err_clear(&e);
	ok(ip_pool_init(&p, "10.0.0.1/33", res, 1, "10.0.0.0/25", &e) < 0, "prefix > 32 refused");
	err_clear(&e);
	ok(ip_pool_init(&p, "10.0.0/24", res, 1, "10.0.0.0/25", &e) < 0, "bad address refused");
	err_clear(&e);

	/* cluster plan, node 1: ip 10.8.64.1/16, reserved 10.8.64.1/32, range 10.8.64.0/18 */
	const char *cres[] = {"10.8.64.1/32"};
	ok(ip_pool_init(&p, "10.8.64.1/16", cres, 1, "10.8.64.0/18", &e) == 0, "cluster plan node 1 valid");
	ip_pool_first_free(&p, none_used, NULL, &ip, &e);
	ip4_format(ip, s);
	is_str(s, "10.8.64.2", "cluster node 1 allocates from its /18");
	ok(ip_pool_usable(&p, 0x0a087ffe) && !ip_pool_usable(&p, 0x0a087fff), "…up to 10.8.127.254");
	ip_pool_free(&p);

	/* exhaustion */
	const char *tiny_res[] = {"10.0.0.1/32"};
	ok(ip_pool_init(&p, "10.0.0.1/30", tiny_res, 1, "10.0.0.0/30", &e) == 0, "a /30 plan");
	ip_pool_first_free(&p, none_used, NULL, &ip, &e);
	is_int(ip, 0x0a000002, "one client address in a /30");
	ok(ip_pool_first_free(&p, first_two_used, NULL, &ip, &e) < 0 &&
	       strstr(err_str(&e), "no free address"),
	   "exhausted pool: %s", err_str(&e));
	ip_pool_free(&p);
}

static void test_render(void)
{
	struct wg_settings w = {"", "PRIVKEY=", 51820, "10.0.0.1/24", "/nonexistent"};
	struct gw_instance v[2] = {0};
	struct buf b = BUF_INIT;

	strcpy(v[0].instance_id, "aa");
	strcpy(v[0].public_key, "KEYA=");
	v[0].ip = 0x0a000002;
	strcpy(v[1].instance_id, "bb");
	strcpy(v[1].public_key, "KEYB=");
	v[1].ip = 0x0a000003;
	wg_render(&w, v, 2, &b);
	buf_putc(&b, 0);
	is_str((char *)b.data,
	       "[Interface]\nPrivateKey = PRIVKEY=\nListenPort = 51820\n"
	       "\n[Peer]\nPublicKey = KEYA=\nAllowedIPs = 10.0.0.2/32\nPersistentKeepalive = 25\n"
	       "\n[Peer]\nPublicKey = KEYB=\nAllowedIPs = 10.0.0.3/32\nPersistentKeepalive = 25\n",
	       "wg(8) rendering");
	buf_free(&b);
}

static void test_store(void)
{
	char tmpl[] = "/tmp/gateway-store-XXXXXX", cmd[128], status[16];
	const char *res[] = {"10.0.0.1/32"};
	struct gw_port_attrs ports[] = {{8080, true}, {443, false}};
	struct err e = ERR_INIT;
	struct gw_store *s;
	struct gw_instance in = {0}, out = {0}, *list = NULL;
	struct ip_pool pool;
	size_t n = 0;
	bool found = false;
	uint8_t u1[16], u2[16];
	uint32_t ip = 0;

	if (!mkdtemp(tmpl))
		return;
	ok((s = gw_store_sqlite_open(tmpl, &e)) != NULL, "open store (%s)", err_str(&e));
	if (!s)
		return;
	ip_pool_init(&pool, "10.0.0.1/24", res, 1, "10.0.0.0/25", &e);
	strcpy(in.instance_id, "bb01");
	strcpy(in.app_id, "aa01");
	strcpy(in.public_key, "KEY1=");
	in.ip = 0x0a000002;
	in.reg_time = 1234;
	in.policy = (struct gw_port_policy){true, true, 2, ports};
	ok(s->ops->put_instance(s, &in, &e) == 0, "put");
	ok(s->ops->get_instance(s, "bb01", &out, &found, &e) == 0 && found, "get");
	is_str(out.app_id, "aa01", "app id kept");
	is_int(out.reg_time, 1234, "reg_time kept");
	ok(out.policy.present && out.policy.restrict_mode && out.policy.n_ports == 2 &&
	       out.policy.ports[0].port == 8080 && out.policy.ports[0].pp && !out.policy.ports[1].pp,
	   "port policy round trip");
	ok(!out.admin_policy.present, "no admin policy");
	gw_instance_clear(&out);
	ok(s->ops->allocate_ip(s, &pool, &ip, &e) == 0 && ip == 0x0a000003,
	   "allocation skips stored addresses");
	s->ops->get_instance(s, "nope", &out, &found, &e);
	ok(!found, "absent instance not found");
	ok(s->ops->list_instances(s, &list, &n, &e) == 0 && n == 1, "list");
	gw_instances_free(list, n);
	ok(s->ops->get_node_status(s, 0, status, sizeof(status), &e) == 0 && !strcmp(status, "up"),
	   "default up");
	s->ops->set_node_status(s, 0, "down", &e);
	s->ops->get_node_status(s, 0, status, sizeof(status), &e);
	is_str(status, "down", "status stored");
	s->ops->node_uuid(s, u1, &e);
	s->ops->node_uuid(s, u2, &e);
	ok(!memcmp(u1, u2, 16) && (u1[6] >> 4) == 4, "node UUID v4, stable");
	struct gw_cert c = {"example.com", "CHAIN", "KEY", 99, 1};
	struct gw_cert *cl = NULL;
	ok(s->ops->put_cert(s, &c, &e) == 0, "put cert");
	ok(s->ops->list_certs(s, &cl, &n, &e) == 0 && n == 1 && !strcmp(cl[0].chain_pem, "CHAIN") &&
	       cl[0].not_after == 99,
	   "list certs");
	gw_certs_free(cl, n);
	ok(s->ops->delete_instance(s, "bb01", &e) == 0, "delete");
	s->ops->list_instances(s, &list, &n, &e);
	is_int(n, 0, "deleted");
	gw_instances_free(list, n);
	s->ops->close(s);
	ok((s = gw_store_sqlite_open(tmpl, &e)) != NULL, "reopen");
	s->ops->get_node_status(s, 0, status, sizeof(status), &e);
	is_str(status, "down", "status survives reopening");
	s->ops->node_uuid(s, u2, &e);
	ok(!memcmp(u1, u2, 16), "UUID survives reopening");
	s->ops->close(s);
	ip_pool_free(&pool);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpl);
	if (system(cmd) != 0)
		diag("cleanup failed");
}

/* ---- the registry: a store whose writes can be held up ---- */

struct slow_store {
	struct gw_store base;
	struct gw_store *inner;
	pthread_mutex_t m;
	pthread_cond_t c;
	bool hold, in_put, fail;
};

static struct slow_store *slow_of(struct gw_store *s)
{
	return (struct slow_store *)s;
}

static int slow_put(struct gw_store *s, const struct gw_instance *in, struct err *e)
{
	struct slow_store *ss = slow_of(s);

	pthread_mutex_lock(&ss->m);
	ss->in_put = true;
	pthread_cond_broadcast(&ss->c);
	while (ss->hold)
		pthread_cond_wait(&ss->c, &ss->m);
	ss->in_put = false;
	pthread_mutex_unlock(&ss->m);
	if (ss->fail)
		return err_set(e, "disk full");
	return ss->inner->ops->put_instance(ss->inner, in, e);
}

static int slow_get(struct gw_store *s, const char *iid, struct gw_instance *out, bool *found, struct err *e)
{
	return slow_of(s)->inner->ops->get_instance(slow_of(s)->inner, iid, out, found, e);
}

static int slow_del(struct gw_store *s, const char *iid, struct err *e)
{
	return slow_of(s)->inner->ops->delete_instance(slow_of(s)->inner, iid, e);
}

static int slow_list(struct gw_store *s, struct gw_instance **out, size_t *n, struct err *e)
{
	return slow_of(s)->inner->ops->list_instances(slow_of(s)->inner, out, n, e);
}

static int slow_alloc(struct gw_store *s, const struct ip_pool *p, uint32_t *out, struct err *e)
{
	return slow_of(s)->inner->ops->allocate_ip(slow_of(s)->inner, p, out, e);
}

static int slow_get_status(struct gw_store *s, uint32_t id, char *out, size_t size, struct err *e)
{
	return slow_of(s)->inner->ops->get_node_status(slow_of(s)->inner, id, out, size, e);
}

static int slow_set_status(struct gw_store *s, uint32_t id, const char *st, struct err *e)
{
	return slow_of(s)->inner->ops->set_node_status(slow_of(s)->inner, id, st, e);
}

static int slow_uuid(struct gw_store *s, uint8_t out[16], struct err *e)
{
	return slow_of(s)->inner->ops->node_uuid(slow_of(s)->inner, out, e);
}

static int slow_put_cert(struct gw_store *s, const struct gw_cert *c, struct err *e)
{
	return slow_of(s)->inner->ops->put_cert(slow_of(s)->inner, c, e);
}

static int slow_list_certs(struct gw_store *s, struct gw_cert **out, size_t *n, struct err *e)
{
	return slow_of(s)->inner->ops->list_certs(slow_of(s)->inner, out, n, e);
}

static void slow_close(struct gw_store *s)
{
	slow_of(s)->inner->ops->close(slow_of(s)->inner);
}

static const struct gw_store_ops slow_ops = {slow_put,      slow_get,        slow_del,        slow_list,
					     slow_alloc,    slow_get_status, slow_set_status, slow_uuid,
					     slow_put_cert, slow_list_certs, slow_close};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct gateway *gw_new(const char *dir, struct slow_store *ss)
{
	static const char *res[] = {"10.0.0.1/32"};
	struct gateway *gw = calloc(1, sizeof(*gw));
	struct err e = ERR_INIT;
	static char wgconf[512];

	snprintf(wgconf, sizeof(wgconf), "%s/wg0.conf", dir);
	gw->cfg.t_handshake_stale = 30 * 60 * 1000;
	gw->cfg.fetch_backoff_initial = 1000;
	ip_pool_init(&gw->pool, "10.0.0.1/24", res, 1, "10.0.0.0/25", &e);
	gw->wg = (struct wg_settings){"", "PRIV=", 51820, "10.0.0.1/24", wgconf};
	pthread_mutex_init(&gw->lock, NULL);
	pthread_mutex_init(&gw->pub_lock, NULL);
	pthread_mutex_init(&gw->wg_lock, NULL);
	pthread_mutex_init(&gw->fetch_lock, NULL);
	pthread_mutex_init(&ss->m, NULL);
	pthread_cond_init(&ss->c, NULL);
	ss->base.ops = &slow_ops;
	ss->inner = gw_store_sqlite_open(dir, &e);
	gw->store = &ss->base;
	if (!ss->inner || gw_state_init(gw, &e) < 0)
		diag("registry set-up: %s", err_str(&e));
	return gw;
}

static void gw_del(struct gateway *gw)
{
	gw_state_free(gw);
	gw->store->ops->close(gw->store);
	ip_pool_free(&gw->pool);
	free(gw);
}

static const char *wg_key(int i)
{
	static char keys[8][48];
	uint8_t raw[32];
	char *b64;

	memset(raw, 0x40 + i, sizeof(raw));
	b64 = base64_encode(raw, sizeof(raw));
	snprintf(keys[i & 7], sizeof(keys[i & 7]), "%s", b64 ? b64 : "");
	free(b64);
	return keys[i & 7];
}

struct reg_job {
	struct gateway *gw;
	struct slow_store *ss;
	bool done;
	struct gw_registration r;
	int rc;
	uint32_t ip;
};

static void *reg_thread(void *arg)
{
	struct reg_job *j = arg;
	struct err e = ERR_INIT;

	j->rc = gw_register(j->gw, &j->r, &j->ip, &e);
	if (j->rc < 0)
		diag("registration: %s", err_str(&e));
	pthread_mutex_lock(&j->ss->m);
	j->done = true;
	pthread_cond_broadcast(&j->ss->c);
	pthread_mutex_unlock(&j->ss->m);
	return NULL;
}

static int route(struct gateway *gw, const char *id, uint16_t port, struct proxy_candidates *c)
{
	struct err e = ERR_INIT;

	memset(c, 0, sizeof(*c));
	return gw_proxy_routes_template.resolve(gw, id, port, c, &e);
}

static uint32_t cand_ip(const struct proxy_candidates *c, size_t i)
{
	return ntohl(((const struct sockaddr_in *)&c->b[i].addr)->sin_addr.s_addr);
}

struct lookup_job {
	struct gateway *gw;
	struct slow_store *ss;
	bool done;
	int by_inst, by_app;
	size_t n_inst, n_app;
	uint32_t ip;
};

static void *lookup_thread(void *arg)
{
	struct lookup_job *j = arg;
	struct proxy_candidates c;

	j->by_inst = route(j->gw, "bb01", 80, &c);
	j->n_inst = c.n;
	j->by_app = route(j->gw, "aa01", 80, &c);
	j->n_app = c.n;
	j->ip = c.n ? cand_ip(&c, 0) : 0;
	pthread_mutex_lock(&j->ss->m);
	j->done = true;
	pthread_cond_broadcast(&j->ss->c);
	pthread_mutex_unlock(&j->ss->m);
	return NULL;
}

static void test_registry_never_blocks_routes(void)
{
	char tmpl[] = "/tmp/gateway-registry-XXXXXX", cmd[128];
	struct slow_store ss = {0};
	struct gw_port_policy open = {.present = true};
	struct proxy_candidates c;
	struct err e = ERR_INIT;
	pthread_t th;
	uint32_t ip;

	if (!mkdtemp(tmpl))
		return;
	struct gateway *gw = gw_new(tmpl, &ss);
	struct gw_registration a = {"aa01", "bb01", "c0", wg_key(0), &open};
	int rc = gw_register(gw, &a, &ip, &e);
	ok(rc == 0 && ip == 0x0a000002, "first instance registered at 10.0.0.2");

	/* The second registration stops inside its store write. */
	pthread_mutex_lock(&ss.m);
	ss.hold = true;
	pthread_mutex_unlock(&ss.m);
	struct reg_job job = {gw, &ss, false, {"aa01", "bb02", "c0", wg_key(1), &open}, -1, 0};
	pthread_create(&th, NULL, reg_thread, &job);
	pthread_mutex_lock(&ss.m);
	while (!ss.in_put && !job.done)
		pthread_cond_wait(&ss.c, &ss.m);
	pthread_mutex_unlock(&ss.m);

	/* Lookups run on their own thread so a regression fails instead of hanging. */
	struct lookup_job lj = {gw, &ss, false, -1, -1, 0, 0, 0};
	uint64_t t0 = mono_ms();
	pthread_t lt;
	pthread_create(&lt, NULL, lookup_thread, &lj);
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 5;
	pthread_mutex_lock(&ss.m);
	while (!lj.done && pthread_cond_timedwait(&ss.c, &ss.m, &dl) == 0)
		;
	bool answered = lj.done;
	pthread_mutex_unlock(&ss.m);
	uint64_t took = mono_ms() - t0;
	ok(answered && lj.by_inst == 0 && lj.n_inst == 1 && lj.by_app == 0 && lj.n_app == 1 &&
	       lj.ip == 0x0a000002,
	   "while a registration waits on its store write, routes resolve (%llu ms)",
	   (unsigned long long)took);
	ok(answered && took < 2000, "and do not wait for it");
	if (!answered) { /* let the stuck lookup finish */
		pthread_mutex_lock(&ss.m);
		ss.hold = false;
		pthread_cond_broadcast(&ss.c);
		pthread_mutex_unlock(&ss.m);
	}
	pthread_join(lt, NULL);
	ok(route(gw, "bb02", 80, &c) < 0, "the registration being written is not routable yet");
	ok(gw_instance_count(gw) == 1, "nor counted");

	pthread_mutex_lock(&ss.m);
	ss.hold = false;
	pthread_cond_broadcast(&ss.c);
	pthread_mutex_unlock(&ss.m);
	pthread_join(th, NULL);
	ok(job.rc == 0 && job.ip == 0x0a000003, "the held registration completes");
	rc = route(gw, "aa01", 80, &c);
	ok(rc == 0 && c.n == 2, "once on disk both instances route (%zu candidates)", c.n);
	struct gw_instance *list = NULL;
	size_t n = 0;
	ss.inner->ops->list_instances(ss.inner, &list, &n, &e);
	is_int(n, 2, "both are in the store");
	gw_instances_free(list, n);

	/* A failing store write publishes nothing. */
	struct gw_registration c3 = {"aa01", "bb03", "c0", wg_key(2), &open};
	ss.fail = true;
	rc = gw_register(gw, &c3, &ip, &e);
	ok(rc < 0 && strstr(err_str(&e), "disk full"), "a registration whose store write fails is refused");
	err_clear(&e);
	ss.fail = false;
	ok(route(gw, "bb03", 80, &c) < 0 && gw_instance_count(gw) == 2, "and is not published");

	gw_del(gw);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpl);
	if (system(cmd) != 0)
		diag("cleanup failed");
}

/* Publish handshake times for the instances (by WireGuard key), as the timer would. */
static void set_handshakes(struct gateway *gw, const uint64_t *times, int n, bool known)
{
	struct wg_handshake hs[8];

	for (int i = 0; i < n; i++) {
		snprintf(hs[i].public_key, sizeof(hs[i].public_key), "%s", wg_key(i));
		hs[i].time = times[i];
	}
	pthread_mutex_lock(&gw->lock);
	gw_table_publish(gw, gw_table_with_handshakes(gw->table, hs, (size_t)n, known));
	pthread_mutex_unlock(&gw->lock);
}

static void test_backend_choice(void)
{
	char tmpl[] = "/tmp/gateway-choice-XXXXXX", cmd[128], iid[8];
	struct slow_store ss = {0};
	struct gw_port_attrs only8080[] = {{8080, true}};
	struct gw_port_policy open = {.present = true}, restricted = {true, true, 1, only8080};
	struct proxy_candidates c;
	struct err e = ERR_INIT;
	uint64_t now = (uint64_t)time(NULL);
	uint32_t ip;

	if (!mkdtemp(tmpl))
		return;
	struct gateway *gw = gw_new(tmpl, &ss);
	for (int i = 0; i < 5; i++) { /* app aa01: bb00..bb04 at 10.0.0.2..6 */
		snprintf(iid, sizeof(iid), "bb%02d", i);
		struct gw_registration r = {"aa01", iid, "c0", wg_key(i), &open};
		if (gw_register(gw, &r, &ip, &e) < 0)
			diag("register %s: %s", iid, err_str(&e));
	}
	/* bb02 freshest, then bb00, bb01; bb03 older than handshake_stale (30 min); bb04 never */
	uint64_t hs[5] = {now - 10, now - 20, now - 5, now - 3600, 0};
	set_handshakes(gw, hs, 5, true);
	int rc = route(gw, "aa01", 80, &c);
	ok(rc == 0 && c.n == 3 && cand_ip(&c, 0) == 0x0a000004 && cand_ip(&c, 1) == 0x0a000002 &&
	       cand_ip(&c, 2) == 0x0a000003,
	   "by app id: the handshaked instances, most recent first; stale and never-handshaked left out");
	ok(route(gw, "bb04", 80, &c) == 0 && c.n == 1 && cand_ip(&c, 0) == 0x0a000006,
	   "by instance id: that instance, without a health check");
	set_handshakes(gw, hs, 5, false);
	rc = route(gw, "aa01", 80, &c);
	ok(rc == 0 && c.n == 5, "handshakes unknown (wg show failing): every instance is a candidate (%zu)",
	   c.n);
	set_handshakes(gw, hs, 5, true);

	/* re-registration: same key keeps the handshake, a new key drops it */
	struct gw_registration again = {"aa01", "bb00", "c0", wg_key(0), &open};
	gw_register(gw, &again, &ip, &e);
	rc = route(gw, "aa01", 80, &c);
	ok(rc == 0 && c.n == 3 && cand_ip(&c, 1) == 0x0a000002,
	   "same key re-registered: keeps its handshake");
	struct gw_registration rekey = {"aa01", "bb00", "c0", wg_key(7), &open};
	gw_register(gw, &rekey, &ip, &e);
	rc = route(gw, "aa01", 80, &c);
	ok(rc == 0 && c.n == 2 && cand_ip(&c, 0) == 0x0a000004 && cand_ip(&c, 1) == 0x0a000003,
	   "new key: no handshake under it yet, so no longer a candidate");

	/* port policy */
	struct gw_registration legacy = {"aa02", "cc01", "c0", wg_key(5), NULL};
	gw_register(gw, &legacy, &ip, &e);
	ok(route(gw, "cc01", 80, &c) < 0 && route(gw, "aa02", 80, &c) < 0,
	   "no port policy known: refused (fail closed), by instance and by app");
	ok(gw->n_fetch == 1 && !strcmp(gw->fetch_q[0].instance_id, "cc01"),
	   "and a fetch from its agent is queued once");
	struct gw_registration strict = {"aa03", "dd01", "c0", wg_key(6), &restricted};
	gw_register(gw, &strict, &ip, &e);
	ok(route(gw, "dd01", 8080, &c) == 0 && c.n == 1 && c.b[0].pp,
	   "restrict_mode: a listed port, pp from it");
	ok(route(gw, "dd01", 8081, &c) < 0, "restrict_mode: an unlisted port refused");
	ok(gw_set_admin_policy(gw, "dd01", &open, &e) == 0 && route(gw, "dd01", 8081, &c) == 0 && !c.b[0].pp,
	   "an admin override wins over the reported policy");
	ok(gw_set_admin_policy(gw, "dd01", NULL, &e) == 0 && route(gw, "dd01", 8081, &c) < 0,
	   "cleared: back to the reported policy");

	gw_del(gw);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpl);
	if (system(cmd) != 0)
		diag("cleanup failed");
}

int main(void)
{
	test_pool();
	test_render();
	test_store();
	test_registry_never_blocks_routes();
	test_backend_choice();
	return tap_done();
}
