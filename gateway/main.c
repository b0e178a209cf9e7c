/*
 * main.c — dstack-gateway: load gateway.toml, open the state store, bring
 * up WireGuard and the proxy engine, then serve the Gateway RPC over TLS
 * (client certificates optional, verified against tls.mutual.ca_certs), the
 * Admin and Debug services when enabled, until SIGTERM/SIGINT or Admin.Exit
 * (gateway.md §1). SIGHUP reloads the proxy's certificates (certs.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>

#include <event2/event.h>

#include "config/daemon_args.h"
#include "core/cleanup.h"
#include "core/log.h"
#include "gateway.h"
#include "http/daemon.h"
#include "ratls/verify.h"
#include "prpc/agent.h"

#ifndef DSTACK_VERSION
#define DSTACK_VERSION "dev"
#endif

static void usage(FILE *f)
{
	fprintf(f, "Usage: dstack-gateway [-c FILE] [--print-defaults]\n"
		   "\n"
		   "dstack gateway: registers CVMs over RA-TLS, peers with them over WireGuard and\n"
		   "routes <app_id>[-<port>][s|g].<base_domain> TLS traffic to them.\n"
		   "\n"
		   "  -c, --config FILE     configuration layered over /etc/gateway/gateway.toml and\n"
		   "                        ./gateway.toml\n"
		   "      --print-defaults  print the built-in configuration and exit\n"
		   "  -h, --help            this help\n"
		   "  -V, --version         print the version\n"
		   "\n"
		   "Signals: SIGHUP re-reads the proxy's certificates (as Admin.ReloadCert);\n"
		   "SIGTERM/SIGINT stop.\n"
		   "Environment: DSTACK_GATEWAY_ADMIN_TOKEN / ADMIN_API_TOKEN (admin token).\n"
		   "See docs/gateway.md.\n");
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_warn("cannot raise the open file limit");
	}
}

/* The listener of a config address: TCP on port, or a unix socket only its owner may use. */
static int addr_spec(struct http_listen_spec *spec, const struct cfg_addr *a, uint16_t port, const char *what,
		     struct err *e)
{
	int rc = a->kind == CFG_ADDR_UNIX
		     ? http_listen_spec_set(spec, HTTP_LISTEN_UNIX, NULL, 0, a->path, 0, e)
		     : http_listen_spec_set(spec, HTTP_LISTEN_TCP, a->host, port, NULL, 0, e);

	if (rc < 0)
		return err_wrap(e, "%s listener", what);
	if (a->kind == CFG_ADDR_UNIX)
		spec->mode = 0600;
	return 0;
}

static int splice_from_json(json_t *j, struct proxy_splice *s, struct err *e)
{
	json_t *b, *d, *r;

	if (!j)
		return 0;
	if (!json_is_object(j))
		return err_set(e, "core.proxy.tcp_splice: expected a table");
	s->enabled = true;
	if ((b = json_object_get(j, "after_bytes"))) {
		if (json_is_integer(b) && json_integer_value(b) >= 0)
			s->after_bytes = (uint64_t)json_integer_value(b);
		else if (!json_is_string(b) || cfg_parse_size(json_string_value(b), &s->after_bytes, e) < 0)
			return err_wrap(e, "core.proxy.tcp_splice.after_bytes");
	}
	if ((d = json_object_get(j, "after_duration"))) {
		if (json_is_integer(d) && json_integer_value(d) >= 0)
			s->after_ms = (uint64_t)json_integer_value(d) * 1000;
		else if (!json_is_string(d) || cfg_parse_duration(json_string_value(d), &s->after_ms, e) < 0)
			return err_wrap(e, "core.proxy.tcp_splice.after_duration");
	}
	if ((r = json_object_get(j, "release_idle_pipes")))
		s->release_idle_pipes = json_is_true(r);
	return 0;
}

static int proxy_settings(const struct gw_config *c, struct proxy_config *p, struct err *e)
{
	proxy_config_defaults(p);
	p->listen_addr = c->listen_addr;
	p->listen_port_lo = c->listen_port.first;
	p->listen_port_hi = c->listen_port.last;
	/* thread_per_core = false: the reference runs one acceptor feeding a thread
	 * pool; this engine has only the per-thread listeners, so that setting
	 * means one proxy thread (docs/gateway.md). */
	p->workers = c->thread_per_core ? c->proxy_workers : 1;
	if (!c->thread_per_core)
		log_info(
		    "core.proxy.thread_per_core = false: one proxy thread (core.proxy.workers = %u unused)",
		    c->proxy_workers);
	p->buffer_size = (size_t)c->buffer_size;
	p->connect_top_n = c->connect_top_n;
	p->max_connections_per_app = c->max_connections_per_app;
	p->inbound_pp_enabled = c->inbound_pp_enabled;
	p->connection_rebalance = c->connection_rebalance;
	p->tls_versions = 0;
	for (size_t i = 0; i < c->tls_versions.count; i++) {
		const char *v = c->tls_versions.items[i];
		if (!strcmp(v, "1.2"))
			p->tls_versions |= PROXY_TLS12;
		else if (!strcmp(v, "1.3"))
			p->tls_versions |= PROXY_TLS13;
		else
			return err_set(e, "core.proxy.tls_versions: unknown version '%.16s' (1.2 or 1.3)", v);
	}
	if (!p->tls_versions)
		return err_set(e, "core.proxy.tls_versions: at least one version is required");
	p->base_domain = c->base_domain && *c->base_domain ? c->base_domain : NULL;
	p->cert_chain = c->cert_chain && *c->cert_chain ? c->cert_chain : NULL;
	p->cert_key = c->cert_key && *c->cert_key ? c->cert_key : NULL;
	p->app_address_ns_prefix = c->ns_prefix;
	p->app_address_ns_compat = c->ns_compat;
	if (c->dns_servers.count > PROXY_MAX_DNS_SERVERS)
		return err_set(e, "core.proxy.app_address_dns_servers: at most %d servers",
			       PROXY_MAX_DNS_SERVERS);
	for (size_t i = 0; i < c->dns_servers.count; i++)
		p->dns_servers[i] = c->dns_servers.items[i];
	p->insecure_localhost_backend = c->localhost_backend;
	p->timeouts.connect = (uint32_t)c->t_connect;
	p->timeouts.handshake = (uint32_t)c->t_handshake;
	p->timeouts.cache_top_n = (uint32_t)c->t_cache_top_n;
	p->timeouts.handshake_stale = (uint32_t)c->t_handshake_stale;
	p->timeouts.dns_resolve = (uint32_t)c->t_dns_resolve;
	p->timeouts.data_timeout_enabled = c->data_timeout_enabled;
	p->timeouts.idle = c->t_idle;
	p->timeouts.shutdown = c->t_shutdown;
	p->timeouts.total = c->t_total;
	p->timeouts.pp_header = (uint32_t)c->t_pp_header;
	return splice_from_json(c->tcp_splice, &p->tcp_splice, e);
}

static int start_core(struct gateway *gw, struct err *e)
{
	struct gw_config *c = &gw->cfg;
	struct proxy_config pc;
	struct proxy_routes routes = gw_proxy_routes_template;
	struct err we = ERR_INIT;

	if (ip_pool_init(&gw->pool, c->wg_ip, (const char *const *)c->wg_reserved_net.items,
			 c->wg_reserved_net.count, c->wg_client_ip_range, e) < 0)
		return -1;
	gw->wg = (struct wg_settings){c->wg_interface, c->wg_private_key, c->wg_listen_port, c->wg_ip,
				      c->wg_config_path};
	if (!(gw->store = gw_store_sqlite_open(c->data_dir, e)))
		return -1;
	if (gw->store->ops->node_uuid(gw->store, gw->uuid, e) < 0 || gw_state_init(gw, e) < 0)
		return -1;
	if (!c->skip_attestation) {
		struct ratls_verifier_opts vo = {
		    .pccs_url = c->pccs_url && *c->pccs_url ? c->pccs_url : NULL,
		    .root_ca_path = c->root_ca_tdx && *c->root_ca_tdx ? c->root_ca_tdx : NULL,
		    .insecure_allow_external_trust_anchors = c->insecure_allow_external_trust_anchors,
		};
		if (ratls_verifier_new(&gw->verifier, &vo, e) < 0)
			return err_wrap(e, "attestation verifier");
	} else {
		log_warn("core.debug.insecure_skip_attestation: CVM identities come from the AppInfo "
			 "certificate extension only");
	}
	if (proxy_settings(c, &pc, e) < 0)
		return -1;
	routes.ctx = gw;
	if (proxy_engine_new(&pc, &routes, &gw->proxy, e) < 0)
		return err_wrap(e, "proxy");
	unsigned loaded, failed;
	if (gw_load_stored_certs(gw, &loaded, &failed, e) < 0)
		return -1;
	err_clear(e);
	if (wg_link_setup(&gw->wg, &we) < 0)
		log_error("%s (continuing without a WireGuard link)", err_str(&we));
	err_clear(&we);
	if (gw_sync_wg(gw, &we) < 0)
		log_warn("wireguard: %s", err_str(&we));
	if (proxy_engine_start(gw->proxy, e) < 0)
		return err_wrap(e, "proxy");
	log_info("proxy listening on %s:%u (base domain %s)", pc.listen_addr, proxy_engine_port(gw->proxy),
		 pc.base_domain ? pc.base_domain : "-");
	if (gw_fetcher_start(gw, e) < 0)
		return -1;
	return gw_housekeeper_start(gw, e);
}

static void on_sighup(evutil_socket_t fd, short what, void *arg)
{
	struct err e = ERR_INIT;

	(void)fd;
	(void)what;
	log_info("SIGHUP: reloading certificates");
	gw_reload_certs(arg, &e); /* logs its outcome */
}

/* The Gateway RPC over TLS, and the Admin and Debug services when enabled;
 * SIGHUP reloads the proxy's certificates. */
static int serve(struct gateway *gw, struct err *e)
{
	struct http_daemon d = {.base = gw->base,
				.opts = {.workers = gw->cfg.workers, .app_version = DSTACK_VERSION}};
	const struct http_tls_files files = HTTP_TLS_FILES_OF(&gw->cfg, "tls", 4);
	const struct gw_config *c = &gw->cfg;
	struct http_listen_spec rpc, admin, debug;
	struct http_server *srv;
	struct event *hup = NULL;
	int rc = -1;

	if (addr_spec(&rpc, &c->address, c->port, "rpc (TLS)", e) < 0 ||
	    !(srv = http_daemon_rpc(&d, &files, &rpc, e)) || gw_mount_main(gw, srv, e) < 0)
		goto out;
	if (c->admin_enabled) {
		if (addr_spec(&admin, &c->admin_address, c->admin_address.port, "admin", e) < 0 ||
		    !(srv = http_daemon_plain(&d, &admin, "admin", e)) || gw_mount_admin(gw, srv, e) < 0)
			goto out;
		if (!*gw_admin_token(c) && !*c->htpasswd_file)
			log_warn(
			    "core.admin.insecure_no_auth: the admin API is open to anyone who can reach it");
	}
	if (c->debug_enabled) {
		log_warn("core.debug.insecure_enable_debug_rpc: registration without attestation is open");
		if (addr_spec(&debug, &c->debug_address, c->debug_address.port, "debug", e) < 0 ||
		    !(srv = http_daemon_plain(&d, &debug, "debug", e)) || gw_mount_debug(gw, srv, e) < 0)
			goto out;
	}
	if (!(hup = evsignal_new(gw->base, SIGHUP, on_sighup, gw)) || event_add(hup, NULL) < 0) {
		err_set(e, "cannot handle SIGHUP");
		goto out;
	}
	log_info("dstack-gateway %s serving (%zu instances registered)", DSTACK_VERSION,
		 gw_instance_count(gw));
	rc = http_daemon_run(&d);
out:
	if (hup)
		event_free(hup);
	http_daemon_free(&d);
	return rc;
}

int main(int argc, char **argv)
{
	static struct gateway gw;
	struct err e = ERR_INIT;
	int rc = 1;
	struct daemon_args args = {.prog = "dstack-gateway",
				   .usage = usage,
				   .defaults_toml = gw_default_toml,
				   .log_name = "gateway"};

	if ((rc = daemon_start(&args, argc, argv)) >= 0)
		return rc;
	rc = 1;
	if (gw_config_load(&gw.cfg, args.config, &e) < 0) {
		log_error("config: %s", err_str(&e));
		return 1;
	}
	daemon_log_level(&args, gw.cfg.log_level);
	if (gw.cfg.set_ulimit)
		raise_nofile();
	if (*gw.cfg.rpc_domain && !prpc_agent_present()) {
		log_warn(
		    "core.rpc_domain is set but no guest agent is reachable: serving tls.certs/tls.key as "
		    "they are");
	} else if (*gw.cfg.rpc_domain) {
		if (gw_agent_fetch_tls(&gw.cfg, &e) < 0) {
			log_error("RPC certificate for %s: %s", gw.cfg.rpc_domain, err_str(&e));
			goto out;
		}
		log_info("RPC certificate for %s issued by the guest agent", gw.cfg.rpc_domain);
	}
	if (prpc_agent_present()) {
		if (gw_agent_info(gw.own_app_id, &gw.app_info_json, &e) < 0) {
			log_error("own app id: %s", err_str(&e));
			goto out;
		}
		log_info("this gateway's app id is %s (GetPeers callers must carry it)", gw.own_app_id);
	}
	pthread_mutex_init(&gw.lock, NULL);
	pthread_mutex_init(&gw.pub_lock, NULL);
	pthread_mutex_init(&gw.wg_lock, NULL);
	pthread_mutex_init(&gw.fetch_lock, NULL);
	pthread_mutex_init(&gw.stop_lock, NULL);
	pthread_cond_init(&gw.stop_cond, NULL);
	if (!(gw.base = event_base_new())) {
		log_error("event_base_new failed");
		goto out;
	}
	if (start_core(&gw, &e) < 0 || serve(&gw, &e) < 0) {
		log_error("%s", err_str(&e));
		goto out;
	}
	log_info("dstack-gateway stopped");
	rc = 0;
out:
	gw_housekeeper_stop(&gw);
	gw_fetcher_stop(&gw);
	if (gw.proxy)
		proxy_engine_free(gw.proxy);
	if (gw.verifier)
		ratls_verifier_free(gw.verifier);
	gw_state_free(&gw);
	if (gw.store)
		gw.store->ops->close(gw.store);
	ip_pool_free(&gw.pool);
	if (gw.base)
		event_base_free(gw.base);
	free(gw.app_info_json);
	gw_config_free(&gw.cfg);
	return rc;
}
