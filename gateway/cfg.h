/*
 * cfg.h — gateway.toml (spec gateway.md §9): the embedded defaults, the
 * schema bound through lib/config, and the start-up checks that depend on
 * several keys (admin credentials, WireGuard networks).
 *
 * Keys keep the reference's names so existing gateway.toml files load.
 * Sections not implemented yet ([core.sync] enabled, [core.proxy.ktls]) are
 * read and refused or warned about instead of silently ignored.
 */
#ifndef DSTACK_GATEWAY_CFG_H
#define DSTACK_GATEWAY_CFG_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "config/config.h"
#include "core/err.h"

extern const char gw_default_toml[];

struct gw_config {
	/* top level (the main Rocket server) */
	uint32_t workers;
	char *log_level;
	struct cfg_addr address;
	uint16_t port;
	/* [tls] */
	char *tls_key, *tls_certs, *tls_ca_certs;
	bool tls_mandatory;
	/* [core] */
	bool set_ulimit;
	char *rpc_domain;
	bool insecure_allow_external_trust_anchors;
	char *pccs_url, *root_ca_tdx;
	bool auth_enabled;
	char *auth_url;
	uint64_t auth_timeout_ms;
	/* [core.admin] */
	bool admin_enabled;
	struct cfg_addr admin_address;
	char *admin_token, *admin_token_alias, *htpasswd_file;
	bool admin_insecure_no_auth;
	/* [core.debug] */
	bool debug_enabled, localhost_backend, skip_attestation;
	struct cfg_addr debug_address;
	json_t *debug_key_file; /* legacy: warned about */
	/* [core.wg] */
	char *wg_public_key, *wg_private_key;
	uint16_t wg_listen_port;
	char *wg_ip;
	struct cfg_strings wg_reserved_net;
	char *wg_client_ip_range, *wg_config_path, *wg_interface, *wg_endpoint;
	/* [core.proxy] */
	struct cfg_strings tls_versions;
	char *listen_addr;
	struct cfg_ports listen_port;
	uint16_t agent_port;
	uint64_t buffer_size;
	uint32_t connect_top_n, proxy_workers, max_connections_per_app;
	char *ns_prefix;
	bool ns_compat;
	struct cfg_strings dns_servers;
	bool thread_per_core, connection_rebalance, inbound_pp_enabled;
	char *base_domain, *cert_chain, *cert_key;
	json_t *tcp_splice, *ktls;
	uint64_t t_connect, t_handshake, t_cache_top_n, t_handshake_stale, t_dns_resolve, t_idle, t_shutdown,
	    t_total, t_pp_header, t_write;
	bool data_timeout_enabled;
	/* [core.proxy.port_policy_fetch] */
	uint64_t fetch_timeout, fetch_backoff_initial, fetch_backoff_max;
	uint32_t fetch_max_retries;
	/* [core.recycle] */
	bool recycle_enabled;
	uint64_t recycle_interval, recycle_timeout;
	/* [core.sync] */
	bool sync_enabled;
	uint32_t node_id;
	char *my_url, *bootnode, *data_dir;
};

/* Load the layers (file = the -c FILE or NULL), bind, check. */
int gw_config_load(struct gw_config *c, const char *file, struct err *e);
void gw_config_free(struct gw_config *c);
/* The admin token in effect: auth_token, admin_token, then the environment. */
const char *gw_admin_token(const struct gw_config *c);

#endif
