/*
 * proxy.h — the dstack-gateway TLS proxy engine (spec gateway.md §5).
 *
 * The gateway program owns configuration, WireGuard state and the CVM
 * registry; it embeds this engine and fills the routing interface below.
 * The engine owns listening sockets, N worker threads (one libevent base and
 * one SO_REUSEPORT listener per port each), TLS termination with the
 * wildcard certificates, passthrough, backend choice and the relay.
 *
 *     struct proxy_config cfg;
 *     proxy_config_defaults(&cfg);           // §9 defaults
 *     cfg.base_domain = "example.com"; ...
 *     struct proxy_engine *pe;
 *     proxy_engine_new(&cfg, &routes, &pe, &err);   // binds, loads certs
 *     proxy_engine_start(pe, &err);                 // spawns workers
 *     ...
 *     proxy_engine_free(pe);                        // stops and joins
 */
#ifndef DSTACK_GATEWAY_PROXY_PROXY_H
#define DSTACK_GATEWAY_PROXY_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/err.h"

#define PROXY_TLS12 1u
#define PROXY_TLS13 2u
#define PROXY_MAX_CANDIDATES 8
#define PROXY_MAX_DNS_SERVERS 4

/* [core.proxy.timeouts]; all in milliseconds. */
struct proxy_timeouts {
	uint32_t connect, handshake, cache_top_n, handshake_stale, dns_resolve;
	bool data_timeout_enabled;
	uint64_t idle, shutdown, total;
	uint32_t pp_header;
};

/* [core.proxy.tcp_splice]: absent = disabled; present and both gates 0 =
 * splice immediately; otherwise splice once either gate is reached. */
struct proxy_splice {
	bool enabled;
	uint64_t after_bytes;
	uint64_t after_ms;
	bool release_idle_pipes;
};

/* [core.proxy]. Strings are borrowed for the lifetime of the engine. */
struct proxy_config {
	const char *listen_addr;                 /* IPv4 literal, default "0.0.0.0" */
	uint16_t listen_port_lo, listen_port_hi; /* "8443" or "a-b"; 0 = ephemeral (tests) */
	unsigned workers;                        /* threads; 0 = number of CPUs */
	size_t buffer_size;                      /* relay chunk per direction, pooled */
	unsigned connect_top_n;                  /* 0 = one random candidate */
	unsigned max_connections_per_app;        /* 0 = unlimited */
	bool inbound_pp_enabled;
	bool connection_rebalance;                       /* hand new sockets to the least-loaded worker */
	unsigned tls_versions;                           /* PROXY_TLS12 | PROXY_TLS13 (we default to both) */
	const char *base_domain, *cert_chain, *cert_key; /* static wildcard cert, optional */
	const char *app_address_ns_prefix;               /* "_dstack-app-address" */
	bool app_address_ns_compat;                      /* also ask _tapp-address */
	const char *dns_servers[PROXY_MAX_DNS_SERVERS];  /* "ip[:port]"; none = /etc/resolv.conf */
	bool insecure_localhost_backend;
	struct proxy_timeouts timeouts;
	struct proxy_splice tcp_splice;
};

void proxy_config_defaults(struct proxy_config *c);
/* "8443" or "8443-8450". */
int proxy_parse_port_range(const char *s, uint16_t *lo, uint16_t *hi, struct err *e);

/* One backend address (the CVM's WireGuard IP and the requested port). */
struct proxy_backend {
	struct sockaddr_storage addr;
	socklen_t addr_len;
	bool pp; /* port policy asks for an outbound PROXY header */
};

struct proxy_candidates {
	char app_id[128]; /* counter key for max_connections_per_app; may be "" */
	size_t n;
	struct proxy_backend b[PROXY_MAX_CANDIDATES];
};

/* The routing table the gateway fills. Called from worker threads
 * concurrently: implementations must be thread-safe and must not block. */
struct proxy_routes {
	void *ctx;
	/* `id` is an instance id (that instance only) or an app id (its healthy
	 * instances, most recently handshaked first, stale ones dropped). Port
	 * policy is applied by the callee: candidates that deny `port` are left
	 * out (no policy = deny), `pp` set from the policy. Return -1 with a
	 * reason if none remain. The engine keeps the first connect_top_n and
	 * caches the list for timeouts.cache_top_n. */
	int (*resolve)(void *ctx, const char *id, uint16_t port, struct proxy_candidates *out, struct err *e);
	/* Optional body for gateway.<base>/app-info ("app-info") and
	 * /acme-info ("acme-info"): malloc'd JSON or NULL (=> 404). */
	char *(*info_json)(void *ctx, const char *what);
};

struct proxy_engine;

int proxy_engine_new(const struct proxy_config *cfg, const struct proxy_routes *routes,
		     struct proxy_engine **out, struct err *e);
int proxy_engine_start(struct proxy_engine *pe, struct err *e);
/* Stops the workers (open connections are closed), joins, frees. */
void proxy_engine_free(struct proxy_engine *pe);

/* The first bound port (useful with listen_port 0). */
uint16_t proxy_engine_port(const struct proxy_engine *pe);

/* Add or replace the wildcard certificate for `*.base` (thread-safe), from
 * PEM files or from PEM in memory (the KV store's cert/<d>/data; the caller
 * zeroes its key copy). Connections already open keep the old one. */
int proxy_engine_set_cert(struct proxy_engine *pe, const char *base, const char *chain_pem_path,
			  const char *key_pem_path, struct err *e);
int proxy_engine_set_cert_pem(struct proxy_engine *pe, const char *base, const char *chain_pem,
			      size_t chain_len, const char *key_pem, size_t key_len, struct err *e);
/* Stop serving `*.base` (its names then take the custom-domain path). */
void proxy_engine_remove_cert(struct proxy_engine *pe, const char *base);
/* Forget cached candidates of an app/instance id (on add/remove). */
void proxy_engine_invalidate(struct proxy_engine *pe, const char *id);

struct proxy_stats {
	uint64_t accepted, active, relayed, rejected, splice_engaged;
	uint64_t rebalanced;             /* sockets handed to another worker */
	uint64_t worker_min, worker_max; /* live connections of the least/most loaded worker */
};
void proxy_engine_stats(struct proxy_engine *pe, struct proxy_stats *out);
/* Live relayed connections of an app (the dashboard's num_connections). */
unsigned proxy_engine_app_connections(struct proxy_engine *pe, const char *app_id);

#endif
