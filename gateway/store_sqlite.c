/*
 * store_sqlite.c — the single-node state store (store.h) in SQLite.
 *
 * One file, <data_dir>/gateway-state.sqlite, WAL journal, synchronous=FULL so
 * an acknowledged registration survives a crash. Port policies are stored as
 * small JSON texts; the schema is created on open. Also the generic record
 * helpers of store.h (policy copy/JSON, instance free) live here.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/rand.h>
#include <sqlite3.h>

#include "core/cleanup.h"
#include "core/fileio.h"
#include "store.h"

struct sqlite_store {
	struct gw_store base;
	sqlite3 *db;
};

static int db_err(struct sqlite_store *s, struct err *e, const char *what)
{
	return err_set(e, "state database: %s: %s", what, sqlite3_errmsg(s->db));
}

/* ---- generic helpers ---- */

void gw_port_policy_free(struct gw_port_policy *p)
{
	free(p->ports);
	memset(p, 0, sizeof(*p));
}

int gw_port_policy_copy(struct gw_port_policy *dst, const struct gw_port_policy *src)
{
	*dst = *src;
	dst->ports = NULL;
	if (src->n_ports) {
		if (!(dst->ports = malloc(src->n_ports * sizeof(*dst->ports))))
			return -1;
		memcpy(dst->ports, src->ports, src->n_ports * sizeof(*dst->ports));
	}
	return 0;
}

char *gw_port_policy_to_json(const struct gw_port_policy *p)
{
	_cleanup_json_ json_t *o = NULL;
	json_t *ports;

	if (!p->present)
		return strdup("");
	o = json_pack("{s:b,s:[]}", "restrict_mode", p->restrict_mode, "ports");
	if (!o)
		return NULL;
	ports = json_object_get(o, "ports");
	for (size_t i = 0; i < p->n_ports; i++)
		json_array_append_new(
		    ports, json_pack("{s:i,s:b}", "port", (int)p->ports[i].port, "pp", p->ports[i].pp));
	return json_dumps(o, JSON_COMPACT);
}

int gw_port_policy_from_json(const char *s, struct gw_port_policy *out, struct err *e)
{
	_cleanup_json_ json_t *o = NULL;
	json_t *ports, *v;
	json_error_t je;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (!s || !*s)
		return 0;
	if (!(o = json_loads(s, 0, &je)) || !json_is_object(o))
		return err_set(e, "stored port policy: invalid JSON");
	ports = json_object_get(o, "ports");
	out->present = true;
	out->restrict_mode = json_is_true(json_object_get(o, "restrict_mode"));
	if (json_array_size(ports) && !(out->ports = calloc(json_array_size(ports), sizeof(*out->ports))))
		return err_set(e, "out of memory");
	json_array_foreach(ports, i, v)
	{
		json_int_t port = json_integer_value(json_object_get(v, "port"));
		if (port <= 0 || port > 65535)
			continue;
		out->ports[out->n_ports].port = (uint16_t)port;
		out->ports[out->n_ports++].pp = json_is_true(json_object_get(v, "pp"));
	}
	return 0;
}

void gw_instance_clear(struct gw_instance *i)
{
	gw_port_policy_free(&i->policy);
	gw_port_policy_free(&i->admin_policy);
	memset(i, 0, sizeof(*i));
}

int gw_instance_copy(struct gw_instance *dst, const struct gw_instance *src)
{
	*dst = *src;
	dst->policy.ports = dst->admin_policy.ports = NULL;
	if (gw_port_policy_copy(&dst->policy, &src->policy) < 0 ||
	    gw_port_policy_copy(&dst->admin_policy, &src->admin_policy) < 0) {
		gw_instance_clear(dst);
		return -1;
	}
	return 0;
}

void gw_instances_free(struct gw_instance *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		gw_instance_clear(&v[i]);
	free(v);
}

void gw_certs_free(struct gw_cert *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].domain);
		free(v[i].chain_pem);
		if (v[i].key_pem) {
			memset(v[i].key_pem, 0, strlen(v[i].key_pem));
			free(v[i].key_pem);
		}
	}
	free(v);
}

/* ---- SQLite backend ---- */

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS instance ("
    " instance_id TEXT PRIMARY KEY, app_id TEXT NOT NULL,"
    " compose_hash TEXT NOT NULL, public_key TEXT NOT NULL UNIQUE,"
    " ip INTEGER NOT NULL UNIQUE, reg_time INTEGER NOT NULL,"
    " port_policy TEXT NOT NULL, admin_port_policy TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS node_status (node_id INTEGER PRIMARY KEY,"
    " status TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS cert (domain TEXT PRIMARY KEY, chain_pem TEXT NOT NULL,"
    " key_pem TEXT NOT NULL, not_after INTEGER NOT NULL, issued_at INTEGER NOT NULL);";

static int sq_put_instance(struct gw_store *st, const struct gw_instance *i, struct err *e)
{
	struct sqlite_store *s = (struct sqlite_store *)st;
	_cleanup_free_ char *pol = gw_port_policy_to_json(&i->policy);
	_cleanup_free_ char *apol = gw_port_policy_to_json(&i->admin_policy);
	sqlite3_stmt *q = NULL;
	int rc;

	if (!pol || !apol)
		return err_set(e, "out of memory");
	if (sqlite3_prepare_v2(s->db,
			       "INSERT OR REPLACE INTO instance VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", -1,
			       &q, NULL) != SQLITE_OK)
		return db_err(s, e, "prepare");
	sqlite3_bind_text(q, 1, i->instance_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, i->app_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, i->compose_hash, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 4, i->public_key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 5, i->ip);
	sqlite3_bind_int64(q, 6, (sqlite3_int64)i->reg_time);
	sqlite3_bind_text(q, 7, pol, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 8, apol, -1, SQLITE_STATIC);
	rc = sqlite3_step(q);
	sqlite3_finalize(q);
	if (rc != SQLITE_DONE)
		return db_err(s, e, "save instance");
	return 0;
}

static void copy_col(sqlite3_stmt *q, int col, char *out, size_t size)
{
	const unsigned char *t = sqlite3_column_text(q, col);

	snprintf(out, size, "%s", t ? (const char *)t : "");
}

static int row_to_instance(sqlite3_stmt *q, struct gw_instance *out, struct err *e)
{
	memset(out, 0, sizeof(*out));
	copy_col(q, 0, out->instance_id, sizeof(out->instance_id));
	copy_col(q, 1, out->app_id, sizeof(out->app_id));
	copy_col(q, 2, out->compose_hash, sizeof(out->compose_hash));
	copy_col(q, 3, out->public_key, sizeof(out->public_key));
	out->ip = (uint32_t)sqlite3_column_int64(q, 4);
	out->reg_time = (uint64_t)sqlite3_column_int64(q, 5);
	if (gw_port_policy_from_json((const char *)sqlite3_column_text(q, 6), &out->policy, e) < 0 ||
	    gw_port_policy_from_json((const char *)sqlite3_column_text(q, 7), &out->admin_policy, e) < 0) {
		gw_instance_clear(out);
		return -1;
	}
	return 0;
}

#define INSTANCE_COLS                                                                                        \
	"SELECT instance_id, app_id, compose_hash, public_key, ip, reg_time, port_policy, "                  \
	"admin_port_policy FROM instance"

static int sq_get_instance(struct gw_store *st, const char *iid, struct gw_instance *out, bool *found,
			   struct err *e)
{
	struct sqlite_store *s = (struct sqlite_store *)st;
	sqlite3_stmt *q = NULL;
	int rc, r = 0;

	*found = false;
	if (sqlite3_prepare_v2(s->db, INSTANCE_COLS " WHERE instance_id = ?1", -1, &q, NULL) != SQLITE_OK)
		return db_err(s, e, "prepare");
	sqlite3_bind_text(q, 1, iid, -1, SQLITE_STATIC);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		r = row_to_instance(q, out, e);
		*found = r == 0;
	} else if (rc != SQLITE_DONE) {
		r = db_err(s, e, "read instance");
	}
	sqlite3_finalize(q);
	return r;
}

static int exec_text(struct sqlite_store *s, const char *sql, const char *arg, struct err *e)
{
	sqlite3_stmt *q = NULL;
	int rc;

	if (sqlite3_prepare_v2(s->db, sql, -1, &q, NULL) != SQLITE_OK)
		return db_err(s, e, "prepare");
	sqlite3_bind_text(q, 1, arg, -1, SQLITE_STATIC);
	rc = sqlite3_step(q);
	sqlite3_finalize(q);
	return rc == SQLITE_DONE ? 0 : db_err(s, e, "write");
}

static int sq_delete_instance(struct gw_store *st, const char *iid, struct err *e)
{
	return exec_text((struct sqlite_store *)st, "DELETE FROM instance WHERE instance_id = ?1", iid, e);
}

static int sq_list_instances(struct gw_store *st, struct gw_instance **out, size_t *n, struct err *e)
{
	struct sqlite_store *s = (struct sqlite_store *)st;
	struct gw_instance *v = NULL;
	size_t cap = 0, len = 0;
	sqlite3_stmt *q = NULL;
	int rc;

	if (sqlite3_prepare_v2(s->db, INSTANCE_COLS " ORDER BY instance_id", -1, &q, NULL) != SQLITE_OK)
		return db_err(s, e, "prepare");
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (len == cap) {
			struct gw_instance *nv = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*v));
			if (!nv)
				goto oom;
			v = nv;
		}
		if (row_to_instance(q, &v[len], e) < 0)
			goto fail;
		len++;
	}
	sqlite3_finalize(q);
	if (rc != SQLITE_DONE) {
		gw_instances_free(v, len);
		return db_err(s, e, "list instances");
	}
	*out = v;
	*n = len;
	return 0;
oom:
	err_set(e, "out of memory");
fail:
	sqlite3_finalize(q);
	gw_instances_free(v, len);
	return -1;
}

struct ip_set {
	uint32_t *v;
	size_t n;
};

static bool ip_set_has(void *arg, uint32_t ip)
{
	const struct ip_set *set = arg;

	for (size_t i = 0; i < set->n; i++)
		if (set->v[i] == ip)
			return true;
	return false;
}

static int sq_allocate_ip(struct gw_store *st, const struct ip_pool *pool, uint32_t *out, struct err *e)
{
	struct gw_instance *v = NULL;
	struct ip_set set = {0};
	size_t n = 0;
	int rc;

	if (sq_list_instances(st, &v, &n, e) < 0)
		return -1;
	if (n && !(set.v = calloc(n, sizeof(*set.v)))) {
		gw_instances_free(v, n);
		return err_set(e, "out of memory");
	}
	for (size_t i = 0; i < n; i++)
		set.v[set.n++] = v[i].ip;
	gw_instances_free(v, n);
	rc = ip_pool_first_free(pool, ip_set_has, &set, out, e);
	free(set.v);
	return rc;
}

static int sq_get_node_status(struct gw_store *st, uint32_t node_id, char *out, size_t size, struct err *e)
{
	struct sqlite_store *s = (struct sqlite_store *)st;
	sqlite3_stmt *q = NULL;
	int rc;

	snprintf(out, size, "up");
	if (sqlite3_prepare_v2(s->db, "SELECT status FROM node_status WHERE node_id = ?1", -1, &q, NULL) !=
	    SQLITE_OK)
		return db_err(s, e, "prepare");
	sqlite3_bind_int64(q, 1, node_id);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		copy_col(q, 0, out, size);
	sqlite3_finalize(q);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_err(s, e, "read node status");
}

static int sq_set_node_status(struct gw_store *st, uint32_t node_id, const char *status, struct err *e)
{
	struct sqlite_store *s = (struct sqlite_store *)st;
	sqlite3_stmt *q = NULL;
	int rc;

	if (sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO node_status VALUES (?1, ?2)", -1, &q, NULL) !=
	    SQLITE_OK)
		return db_err(s, e, "prepare");
	sqlite3_bind_int64(q, 1, node_id);
	sqlite3_bind_text(q, 2, status, -1, SQLITE_STATIC);
	rc = sqlite3_step(q);
	sqlite3_finalize(q);
	return rc == SQLITE_DONE ? 0 : db_err(s, e, "write node status");
}

static int sq_node_uuid(struct gw_store *st, uint8_t out[16], struct err *e)
{
	struct sqlite_store *s = (struct sqlite_store *)st;
	sqlite3_stmt *q = NULL;
	int rc;

	if (sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = 'node_uuid'", -1, &q, NULL) !=
	    SQLITE_OK)
		return db_err(s, e, "prepare");
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW && sqlite3_column_bytes(q, 0) == 16) {
		memcpy(out, sqlite3_column_blob(q, 0), 16);
		sqlite3_finalize(q);
		return 0;
	}
	sqlite3_finalize(q);
	if (RAND_bytes(out, 16) != 1)
		return err_set(e, "random bytes for the node UUID");
	out[6] = (out[6] & 0x0f) | 0x40; /* UUID v4 */
	out[8] = (out[8] & 0x3f) | 0x80;
	if (sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO meta VALUES ('node_uuid', ?1)", -1, &q, NULL) !=
	    SQLITE_OK)
		return db_err(s, e, "prepare");
	sqlite3_bind_blob(q, 1, out, 16, SQLITE_STATIC);
	rc = sqlite3_step(q);
	sqlite3_finalize(q);
	return rc == SQLITE_DONE ? 0 : db_err(s, e, "write node uuid");
}

static int sq_put_cert(struct gw_store *st, const struct gw_cert *c, struct err *e)
{
	struct sqlite_store *s = (struct sqlite_store *)st;
	sqlite3_stmt *q = NULL;
	int rc;

	if (sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO cert VALUES (?1, ?2, ?3, ?4, ?5)", -1, &q,
			       NULL) != SQLITE_OK)
		return db_err(s, e, "prepare");
	sqlite3_bind_text(q, 1, c->domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, c->chain_pem, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, c->key_pem, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 4, (sqlite3_int64)c->not_after);
	sqlite3_bind_int64(q, 5, (sqlite3_int64)c->issued_at);
	rc = sqlite3_step(q);
	sqlite3_finalize(q);
	return rc == SQLITE_DONE ? 0 : db_err(s, e, "write certificate");
}

static char *col_dup(sqlite3_stmt *q, int col)
{
	const unsigned char *t = sqlite3_column_text(q, col);

	return strdup(t ? (const char *)t : "");
}

static int sq_list_certs(struct gw_store *st, struct gw_cert **out, size_t *n, struct err *e)
{
	struct sqlite_store *s = (struct sqlite_store *)st;
	struct gw_cert *v = NULL;
	size_t len = 0;
	sqlite3_stmt *q = NULL;
	int rc;

	if (sqlite3_prepare_v2(s->db, "SELECT domain, chain_pem, key_pem, not_after, issued_at FROM cert", -1,
			       &q, NULL) != SQLITE_OK)
		return db_err(s, e, "prepare");
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct gw_cert *nv = realloc(v, (len + 1) * sizeof(*v));
		if (!nv) {
			sqlite3_finalize(q);
			gw_certs_free(v, len);
			return err_set(e, "out of memory");
		}
		v = nv;
		v[len] = (struct gw_cert){col_dup(q, 0), col_dup(q, 1), col_dup(q, 2),
					  (uint64_t)sqlite3_column_int64(q, 3),
					  (uint64_t)sqlite3_column_int64(q, 4)};
		len++;
	}
	sqlite3_finalize(q);
	if (rc != SQLITE_DONE) {
		gw_certs_free(v, len);
		return db_err(s, e, "list certificates");
	}
	*out = v;
	*n = len;
	return 0;
}

static void sq_close(struct gw_store *st)
{
	struct sqlite_store *s = (struct sqlite_store *)st;

	sqlite3_close(s->db);
	free(s);
}

static const struct gw_store_ops sqlite_ops = {
    sq_put_instance, sq_get_instance,    sq_delete_instance, sq_list_instances,
    sq_allocate_ip,  sq_get_node_status, sq_set_node_status, sq_node_uuid,
    sq_put_cert,     sq_list_certs,      sq_close,
};

struct gw_store *gw_store_sqlite_open(const char *dir, struct err *e)
{
	struct sqlite_store *s;
	char path[4096];
	char *msg = NULL;
	int fd;

	if (mkdir_p(dir, 0700, e) < 0)
		return err_wrap(e, "state directory %s", dir), NULL;
	snprintf(path, sizeof(path), "%s/gateway-state.sqlite", dir);
	/* Create it 0600 before SQLite does (registrations are not secret, certificate keys are). */
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
		return err_errno(e, "open %s", path), NULL;
	close(fd);
	if (!(s = calloc(1, sizeof(*s))))
		return err_set(e, "out of memory"), NULL;
	s->base.ops = &sqlite_ops;
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
		err_set(e, "open state database %s: %s", path,
			s->db ? sqlite3_errmsg(s->db) : "out of memory");
		sq_close(&s->base);
		return NULL;
	}
	sqlite3_busy_timeout(s->db, 5000);
	if (sqlite3_exec(s->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL, &msg) !=
		SQLITE_OK ||
	    sqlite3_exec(s->db, schema_sql, NULL, NULL, &msg) != SQLITE_OK) {
		err_set(e, "state database %s: %s", path, msg ? msg : "error");
		sqlite3_free(msg);
		sq_close(&s->base);
		return NULL;
	}
	return &s->base;
}
