/*
 * cfg.c — gateway.toml defaults, schema and start-up checks (see cfg.h).
 *
 * The defaults are the reference's built-in values written out as TOML
 * (`dstack-gateway --print-defaults`), with these differences:
 * core.proxy.tls_versions defaults to TLS 1.2 and 1.3 (the reference: 1.2
 * only), an empty core.wg.interface means "do not manage a WireGuard link"
 * (the peer file is still written), and the local state database lives in
 * core.sync.data_dir like the reference's persistent store.
 */
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "core/cleanup.h"
#include "core/log.h"

const char gw_default_toml[] = "workers = 8\n"
			       "max_blocking = 64\n"
			       "ident = \"dstack Gateway\"\n"
			       "temp_dir = \"/tmp\"\n"
			       "keep_alive = 10\n"
			       "log_level = \"info\"\n"
			       "address = \"127.0.0.1\"\n"
			       "port = 8010\n"
			       "\n"
			       "[tls.mutual]\n"
			       "mandatory = false\n"
			       "\n"
			       "[core]\n"
			       "set_ulimit = true\n"
			       "rpc_domain = \"\"\n"
			       "\n"
			       "[core.attestation]\n"
			       "insecure_allow_external_trust_anchors = false\n"
			       "\n"
			       "[core.auth]\n"
			       "enabled = false\n"
			       "url = \"http://localhost/app-auth\"\n"
			       "timeout = \"5s\"\n"
			       "\n"
			       "[core.admin]\n"
			       "enabled = false\n"
			       "address = \"127.0.0.1:8011\"\n"
			       "auth_token = \"\"\n"
			       "htpasswd_file = \"\"\n"
			       "insecure_no_auth = false\n"
			       "\n"
			       "[core.debug]\n"
			       "insecure_enable_debug_rpc = false\n"
			       "insecure_localhost_backend = false\n"
			       "insecure_skip_attestation = false\n"
			       "address = \"127.0.0.1:8012\"\n"
			       "\n"
			       "[core.wg]\n"
			       "public_key = \"\"\n"
			       "private_key = \"\"\n"
			       "listen_port = 51820\n"
			       "ip = \"10.0.0.1/24\"\n"
			       "reserved_net = [\"10.0.0.1/32\"]\n"
			       "client_ip_range = \"10.0.0.0/25\"\n"
			       "config_path = \"/etc/wireguard/wg0.conf\"\n"
			       "interface = \"wg0\"\n"
			       "endpoint = \"10.0.2.2:51820\"\n"
			       "\n"
			       "[core.proxy]\n"
			       "tls_crypto_provider = \"aws-lc-rs\"\n"
			       "tls_versions = [\"1.2\", \"1.3\"]\n"
			       "listen_addr = \"0.0.0.0\"\n"
			       "listen_port = 8443\n"
			       "agent_port = 8090\n"
			       "buffer_size = 65536\n"
			       "connect_top_n = 3\n"
			       "workers = 32\n"
			       "app_address_ns_prefix = \"_dstack-app-address\"\n"
			       "app_address_ns_compat = true\n"
			       "app_address_dns_servers = []\n"
			       "thread_per_core = true\n"
			       "connection_rebalance = true\n"
			       "max_connections_per_app = 2000\n"
			       "inbound_pp_enabled = false\n"
			       "\n"
			       "[core.proxy.port_policy_fetch]\n"
			       "timeout = \"10s\"\n"
			       "max_retries = 5\n"
			       "backoff_initial = \"1s\"\n"
			       "backoff_max = \"30s\"\n"
			       "\n"
			       "[core.proxy.timeouts]\n"
			       "connect = \"5s\"\n"
			       "handshake = \"5s\"\n"
			       "cache_top_n = \"30s\"\n"
			       "handshake_stale = \"30m\"\n"
			       "dns_resolve = \"5s\"\n"
			       "data_timeout_enabled = true\n"
			       "idle = \"10m\"\n"
			       "write = \"5s\"\n"
			       "shutdown = \"5s\"\n"
			       "total = \"5h\"\n"
			       "pp_header = \"5s\"\n"
			       "\n"
			       "[core.recycle]\n"
			       "enabled = true\n"
			       "interval = \"5m\"\n"
			       "timeout = \"10h\"\n"
			       "node_timeout = \"10m\"\n"
			       "\n"
			       "[core.sync]\n"
			       "enabled = false\n"
			       "node_id = 0\n"
			       "my_url = \"https://localhost:8011\"\n"
			       "interval = \"1m\"\n"
			       "timeout = \"30s\"\n"
			       "bootnode = \"\"\n"
			       "data_dir = \"/dstack-gateway/data\"\n"
			       "persist_interval = \"5m\"\n"
			       "sync_connections_enabled = true\n"
			       "sync_connections_interval = \"30s\"\n";

#define F(k, kind, m, ...) CFG_FIELD(struct gw_config, k, kind, m, __VA_ARGS__)

static const struct cfg_field schema[] = {
    CFG_SERVER_FIELDS("", struct gw_config),
    F("address", CFG_ADDR, address),
    F("port", CFG_UINT, port),
    CFG_TLS_FIELDS("tls", struct gw_config, CFG_REQUIRED),
    F("core.set_ulimit", CFG_BOOL, set_ulimit),
    F("core.rpc_domain", CFG_STRING, rpc_domain),
    CFG_ATTESTATION_FIELDS(struct gw_config),
    {.key = "core.attestation.root_ca", .kind = CFG_IGNORE},
    F("core.auth.enabled", CFG_BOOL, auth_enabled),
    F("core.auth.url", CFG_STRING, auth_url),
    F("core.auth.timeout", CFG_DURATION, auth_timeout_ms),
    F("core.admin.enabled", CFG_BOOL, admin_enabled),
    F("core.admin.address", CFG_ADDR, admin_address),
    F("core.admin.auth_token", CFG_STRING, admin_token, .flags = CFG_SECRET),
    F("core.admin.admin_token", CFG_STRING, admin_token_alias, .flags = CFG_SECRET),
    F("core.admin.htpasswd_file", CFG_STRING, htpasswd_file),
    F("core.admin.insecure_no_auth", CFG_BOOL, admin_insecure_no_auth),
    F("core.debug.insecure_enable_debug_rpc", CFG_BOOL, debug_enabled),
    F("core.debug.insecure_localhost_backend", CFG_BOOL, localhost_backend),
    F("core.debug.insecure_skip_attestation", CFG_BOOL, skip_attestation),
    F("core.debug.address", CFG_ADDR, debug_address),
    F("core.debug.key_file", CFG_JSON, debug_key_file),
    F("core.wg.public_key", CFG_STRING, wg_public_key),
    F("core.wg.private_key", CFG_STRING, wg_private_key, .flags = CFG_SECRET),
    F("core.wg.listen_port", CFG_UINT, wg_listen_port),
    F("core.wg.ip", CFG_STRING, wg_ip),
    F("core.wg.reserved_net", CFG_STRINGS, wg_reserved_net),
    F("core.wg.client_ip_range", CFG_STRING, wg_client_ip_range),
    F("core.wg.config_path", CFG_STRING, wg_config_path),
    F("core.wg.interface", CFG_STRING, wg_interface),
    F("core.wg.endpoint", CFG_STRING, wg_endpoint),
    {.key = "core.proxy.tls_crypto_provider", .kind = CFG_IGNORE},
    F("core.proxy.tls_versions", CFG_STRINGS, tls_versions),
    F("core.proxy.listen_addr", CFG_STRING, listen_addr),
    F("core.proxy.listen_port", CFG_PORTS, listen_port),
    F("core.proxy.agent_port", CFG_UINT, agent_port),
    F("core.proxy.buffer_size", CFG_SIZE, buffer_size),
    F("core.proxy.connect_top_n", CFG_UINT, connect_top_n, .min = 0, .max = 64),
    F("core.proxy.workers", CFG_UINT, proxy_workers, .min = 0, .max = 1024),
    F("core.proxy.app_address_ns_prefix", CFG_STRING, ns_prefix),
    F("core.proxy.app_address_ns_compat", CFG_BOOL, ns_compat),
    F("core.proxy.app_address_dns_servers", CFG_STRINGS, dns_servers),
    F("core.proxy.thread_per_core", CFG_BOOL, thread_per_core),
    F("core.proxy.connection_rebalance", CFG_BOOL, connection_rebalance),
    F("core.proxy.max_connections_per_app", CFG_UINT, max_connections_per_app),
    F("core.proxy.inbound_pp_enabled", CFG_BOOL, inbound_pp_enabled),
    F("core.proxy.base_domain", CFG_STRING, base_domain),
    F("core.proxy.cert_chain", CFG_STRING, cert_chain),
    F("core.proxy.cert_key", CFG_STRING, cert_key),
    F("core.proxy.tcp_splice", CFG_JSON, tcp_splice),
    F("core.proxy.ktls", CFG_JSON, ktls),
    {.key = "core.proxy.external_port", .kind = CFG_IGNORE},
    {.key = "core.proxy.tappd_port", .kind = CFG_IGNORE},
    F("core.proxy.port_policy_fetch.timeout", CFG_DURATION, fetch_timeout),
    F("core.proxy.port_policy_fetch.max_retries", CFG_UINT, fetch_max_retries, .min = 0, .max = 100),
    F("core.proxy.port_policy_fetch.backoff_initial", CFG_DURATION, fetch_backoff_initial),
    F("core.proxy.port_policy_fetch.backoff_max", CFG_DURATION, fetch_backoff_max),
    F("core.proxy.timeouts.connect", CFG_DURATION, t_connect),
    F("core.proxy.timeouts.handshake", CFG_DURATION, t_handshake),
    F("core.proxy.timeouts.cache_top_n", CFG_DURATION, t_cache_top_n),
    F("core.proxy.timeouts.handshake_stale", CFG_DURATION, t_handshake_stale),
    F("core.proxy.timeouts.dns_resolve", CFG_DURATION, t_dns_resolve),
    F("core.proxy.timeouts.data_timeout_enabled", CFG_BOOL, data_timeout_enabled),
    F("core.proxy.timeouts.idle", CFG_DURATION, t_idle),
    F("core.proxy.timeouts.write", CFG_DURATION, t_write),
    F("core.proxy.timeouts.shutdown", CFG_DURATION, t_shutdown),
    F("core.proxy.timeouts.total", CFG_DURATION, t_total),
    F("core.proxy.timeouts.pp_header", CFG_DURATION, t_pp_header),
    F("core.recycle.enabled", CFG_BOOL, recycle_enabled),
    F("core.recycle.interval", CFG_DURATION, recycle_interval),
    F("core.recycle.timeout", CFG_DURATION, recycle_timeout),
    {.key = "core.recycle.node_timeout", .kind = CFG_IGNORE},
    F("core.sync.enabled", CFG_BOOL, sync_enabled),
    F("core.sync.node_id", CFG_UINT, node_id),
    F("core.sync.my_url", CFG_STRING, my_url),
    F("core.sync.bootnode", CFG_STRING, bootnode),
    F("core.sync.data_dir", CFG_STRING, data_dir),
    {.key = "core.sync.interval", .kind = CFG_IGNORE},
    {.key = "core.sync.timeout", .kind = CFG_IGNORE},
    {.key = "core.sync.persist_interval", .kind = CFG_IGNORE},
    {.key = "core.sync.sync_connections_enabled", .kind = CFG_IGNORE},
    {.key = "core.sync.sync_connections_interval", .kind = CFG_IGNORE},
    {.key = "core.certbot", .kind = CFG_IGNORE},
};

const char *gw_admin_token(const struct gw_config *c)
{
	const char *t;

	if (c->admin_token && *c->admin_token)
		return c->admin_token;
	if (c->admin_token_alias && *c->admin_token_alias)
		return c->admin_token_alias;
	if ((t = getenv("DSTACK_GATEWAY_ADMIN_TOKEN")) && *t)
		return t;
	if ((t = getenv("ADMIN_API_TOKEN")) && *t)
		return t;
	return "";
}

static int check(void *obj, const struct config *conf, struct err *e)
{
	struct gw_config *c = obj;
	char where[256];

	if (c->debug_key_file)
		log_warn("%s: core.debug.key_file is obsolete and ignored",
			 config_origin(conf, "core.debug.key_file", where, sizeof(where)));
	if (c->sync_enabled)
		return err_set(e, "core.sync.enabled: cluster sync is not supported by this build");
	if (c->ktls)
		log_warn("core.proxy.ktls: kernel TLS is not supported; terminating in user space");
	if (c->auth_enabled && (!c->auth_url || !*c->auth_url))
		return err_set(e, "core.auth.enabled needs core.auth.url");
	if (c->admin_enabled && !*gw_admin_token(c) && !*c->htpasswd_file && !c->admin_insecure_no_auth)
		return err_set(
		    e, "core.admin is enabled without credentials: set core.admin.auth_token (or "
		       "DSTACK_GATEWAY_ADMIN_TOKEN / ADMIN_API_TOKEN), htpasswd_file, or insecure_no_auth");
	if (c->address.kind != CFG_ADDR_TCP)
		return err_set(e, "address: the main RPC listener must be a TCP address");
	if (c->address.port)
		c->port = c->address.port;
	if (c->debug_enabled && c->debug_address.kind == CFG_ADDR_TCP && !c->debug_address.port)
		return err_set(e, "core.debug.address: a port is required");
	if (c->admin_enabled && c->admin_address.kind == CFG_ADDR_TCP && !c->admin_address.port)
		return err_set(e, "core.admin.address: a port is required");
	if (c->admin_address.kind == CFG_ADDR_VSOCK || c->debug_address.kind == CFG_ADDR_VSOCK)
		return err_set(e, "core.admin/core.debug address: vsock is not supported");
	if (!*c->wg_private_key || !*c->wg_public_key)
		log_warn("core.wg.private_key/public_key are empty: CVMs cannot connect");
	if (!*c->data_dir)
		return err_set(e, "core.sync.data_dir must not be empty (it holds the state database)");
	return 0;
}

int gw_config_load(struct gw_config *c, const char *file, struct err *e)
{
	struct config_search s = {.name = "gateway", .defaults = gw_default_toml, .file = file};

	return config_load_bound(&s, schema, ARRAY_SIZE(schema), c, sizeof(*c), NULL, check, e);
}

void gw_config_free(struct gw_config *c)
{
	config_unbind(schema, ARRAY_SIZE(schema), c);
}
