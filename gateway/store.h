/*
 * store.h — where the gateway keeps what must survive a restart: CVM
 * registrations (with their WireGuard address), admin port-policy
 * overrides, node status, the node UUID and certificates.
 *
 * It is an interface (a table of operations) so the single-node SQLite
 * backend (store_sqlite.c) can later be joined by a cluster backend that
 * replicates the same records (gateway.md §7: inst/<iid>, node/status/<id>,
 * cert/<d>/data). Callers serialise access (the gateway holds its state lock
 * around every call); backends need not be thread-safe.
 */
#ifndef DSTACK_GATEWAY_STORE_H
#define DSTACK_GATEWAY_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "ipnet.h"

#define GW_ID_MAX 128 /* lowercase hex ids */
#define GW_WG_KEY_MAX 64

struct gw_port_attrs {
	uint16_t port;
	bool pp;
};

/* A port policy; `present` false = unknown (fail-closed). */
struct gw_port_policy {
	bool present;
	bool restrict_mode;
	size_t n_ports;
	struct gw_port_attrs *ports; /* malloc'd */
};

struct gw_instance {
	char instance_id[GW_ID_MAX + 1];
	char app_id[GW_ID_MAX + 1];
	char compose_hash[GW_ID_MAX + 1];
	char public_key[GW_WG_KEY_MAX + 1]; /* WireGuard, base64 */
	uint32_t ip;                        /* host order */
	uint64_t reg_time;                  /* unix seconds */
	struct gw_port_policy policy;       /* reported by the instance */
	struct gw_port_policy admin_policy; /* admin override, wins */
};

struct gw_cert {
	char *domain, *chain_pem, *key_pem;
	uint64_t not_after, issued_at;
};

struct gw_store;

struct gw_store_ops {
	int (*put_instance)(struct gw_store *s, const struct gw_instance *inst, struct err *e);
	/* *found false when absent (out untouched). */
	int (*get_instance)(struct gw_store *s, const char *instance_id, struct gw_instance *out, bool *found,
			    struct err *e);
	int (*delete_instance)(struct gw_store *s, const char *instance_id, struct err *e);
	/* All instances, sorted by instance id; free with gw_instances_free. */
	int (*list_instances)(struct gw_store *s, struct gw_instance **out, size_t *n, struct err *e);
	/* First free client address of the pool (allocated = any instance's ip). */
	int (*allocate_ip)(struct gw_store *s, const struct ip_pool *pool, uint32_t *out, struct err *e);
	/* Node status "up"/"down" (absent = "up"); out holds ≥ 8 bytes. */
	int (*get_node_status)(struct gw_store *s, uint32_t node_id, char *out, size_t out_size,
			       struct err *e);
	int (*set_node_status)(struct gw_store *s, uint32_t node_id, const char *status, struct err *e);
	/* 16-byte node UUID, created on first use. */
	int (*node_uuid)(struct gw_store *s, uint8_t out[16], struct err *e);
	int (*put_cert)(struct gw_store *s, const struct gw_cert *c, struct err *e);
	int (*list_certs)(struct gw_store *s, struct gw_cert **out, size_t *n, struct err *e);
	void (*close)(struct gw_store *s);
};

struct gw_store {
	const struct gw_store_ops *ops;
};

/* The SQLite backend: <dir>/gateway-state.sqlite (created, mode 0600). */
struct gw_store *gw_store_sqlite_open(const char *dir, struct err *e);

void gw_port_policy_free(struct gw_port_policy *p);
int gw_port_policy_copy(struct gw_port_policy *dst, const struct gw_port_policy *src);
/* JSON text {"restrict_mode":b,"ports":[{"port":n,"pp":b}]} ⇄ policy
 * ("" / NULL = absent). */
char *gw_port_policy_to_json(const struct gw_port_policy *p);
int gw_port_policy_from_json(const char *s, struct gw_port_policy *out, struct err *e);
void gw_instance_clear(struct gw_instance *i);
int gw_instance_copy(struct gw_instance *dst, const struct gw_instance *src);
void gw_instances_free(struct gw_instance *v, size_t n);
void gw_certs_free(struct gw_cert *v, size_t n);

#endif
