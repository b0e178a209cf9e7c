/*
 * main.c — dstack-kms: load kms.toml, make sure a key set exists (recover an
 * interrupted store, bootstrap headlessly, or serve the onboard page until
 * Finish), refresh certificates, then serve the KMS RPC over TLS and the
 * optional admin API (kms.md §6).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "config/daemon_args.h"
#include "core/cleanup.h"
#include "core/log.h"
#include "core/mem.h"
#include "http/tls_server.h"
#include "kms.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: dstack-kms [-c FILE] [--print-defaults]\n"
		   "\n"
		   "dstack key management service.\n"
		   "\n"
		   "  -c, --config FILE   configuration file layered over /etc/kms/kms.toml and ./kms.toml\n"
		   "      --print-defaults  print the built-in configuration and exit\n"
		   "  -h, --help          this help\n"
		   "  -V, --version       print the version\n"
		   "\n"
		   "Environment: DSTACK_KMS_ADMIN_TOKEN / ADMIN_API_TOKEN (admin API token),\n"
		   "DSTACK_AGENT_ADDRESS (guest agent socket, default /var/run/dstack/dstack.sock).\n"
		   "See docs/kms.md.\n");
}

static int listen_tcp(struct http_server *srv, const char *addr, uint16_t port, SSL_CTX *tls,
		      const char *what, struct err *e)
{
	struct http_listen_spec spec;

	if (http_listen_spec_set(&spec, HTTP_LISTEN_TCP, addr, port, NULL, 0, e) < 0)
		return err_wrap(e, "%s listener", what);
	return http_server_listen_logged(srv, &spec, tls, what, e);
}

static int auto_bootstrap(struct kms *k, struct err *e)
{
	const char *domain = k->cfg.auto_bootstrap_domain;
	struct kms_keys keys;

	if (!kms_domain_valid(domain))
		return err_set(e, "core.onboard.auto_bootstrap_domain: invalid domain '%s'", domain);
	if (kms_self_authorize(k, e) < 0)
		return -1;
	if (kms_keys_generate(&keys, domain, e) < 0)
		return -1;
	if (kms_keys_store(k->cfg.cert_dir, &keys, NULL, e) < 0) {
		kms_keys_free(&keys);
		return -1;
	}
	kms_keys_free(&keys);
	log_info("bootstrapped new KMS keys for %s (headless)", domain);
	return 0;
}

static int ensure_keys(struct kms *k, struct err *e)
{
	if (kms_keys_recover(k->cfg.cert_dir, e) < 0)
		return -1;
	if (kms_keys_exist(k->cfg.cert_dir))
		return 0;
	if (!k->cfg.onboard_enabled)
		return err_set(e, "no keys in %s and core.onboard is disabled", k->cfg.cert_dir);
	if (*k->cfg.auto_bootstrap_domain)
		return auto_bootstrap(k, e);
	log_info("no keys in %s: serving the onboard page until Finish", k->cfg.cert_dir);
	if (kms_onboard_serve(k, e) < 0)
		return -1;
	if (kms_keys_recover(k->cfg.cert_dir, e) < 0)
		return -1;
	if (!kms_keys_exist(k->cfg.cert_dir))
		return err_set(e, "onboarding finished but no keys exist in %s", k->cfg.cert_dir);
	return 0;
}

static int refresh_certs(struct kms *k, struct err *e)
{
	_cleanup_free_ uint8_t *att = NULL;
	size_t att_len = 0;

	if (*k->cfg.auto_bootstrap_domain) {
		free(k->keys.domain);
		k->keys.domain = strdup(k->cfg.auto_bootstrap_domain);
	}
	if (kms_rpc_cert_attestation(k, k->keys.rpc_key, &att, &att_len, e) < 0)
		return err_wrap(e, "attest rpc.crt");
	return kms_keys_update_certs(k->cfg.cert_dir, &k->keys, att, att_len, e);
}

static int serve(struct kms *k, struct err *e)
{
	struct http_server_opts o = {.workers = k->cfg.workers, .app_version = DSTACK_VERSION};
	struct http_server *srv = NULL, *admin = NULL;
	_cleanup_(SSL_CTX_freep) SSL_CTX *tls = NULL;
	int rc = -1;

	const struct http_tls_files files = {.section = "rpc.tls",
					     .certs = k->cfg.tls_certs,
					     .key = k->cfg.tls_key,
					     .ca_certs = k->cfg.tls_ca_certs,
					     .mandatory = k->cfg.tls_mandatory,
					     .verify_depth = 2};

	if (!(tls = http_tls_server_ctx(&files, e)))
		return -1;
	if (!(srv = http_server_new(k->base, &o, e)))
		return -1;
	http_server_add_health(srv);
	if (kms_main_mount(k, srv, e) < 0 ||
	    listen_tcp(srv, k->cfg.rpc_address, k->cfg.rpc_port, tls, "rpc (TLS)", e) < 0 ||
	    http_server_handle_signals(srv, e) < 0)
		goto out;
	if (k->cfg.admin_enabled) {
		if (!(admin = http_server_new(k->base, &o, e)) || kms_admin_mount(k, admin, e) < 0 ||
		    listen_tcp(admin, k->cfg.admin_address, k->cfg.admin_port, NULL, "admin", e) < 0)
			goto out;
	}
	log_info("dstack-kms %s serving (auth_api: %s)", DSTACK_VERSION, k->cfg.auth_type);
	event_base_dispatch(k->base);
	rc = 0;
out:
	if (admin)
		http_server_free(admin);
	http_server_free(srv);
	return rc;
}

int main(int argc, char **argv)
{
	const char *file = NULL;
	struct kms k = {0};
	struct err e = ERR_INIT;
	enum log_level lvl;
	int rc = 1;
	struct daemon_args args = {.prog = "dstack-kms", .usage = usage, .defaults_toml = kms_default_toml};
	int args_rc = daemon_args_parse(&args, argc, argv);

	if (args_rc >= 0)
		return args_rc;
	file = args.config;

	signal(SIGPIPE, SIG_IGN);
	log_init("kms", LOG_LVL_INFO);
	if (kms_config_load(&k.cfg, file, &e) < 0) {
		log_error("config: %s", err_str(&e));
		return 1;
	}
	if (log_level_parse(k.cfg.log_level, &lvl) == 0)
		log_init("kms", lvl);
	pthread_mutex_init(&k.lock, NULL);
	pthread_mutex_init(&k.self_lock, NULL);
	if (!(k.base = event_base_new())) {
		log_error("event_base_new failed");
		goto out;
	}
	if (kms_attest_init(&k, &e) < 0 || ensure_keys(&k, &e) < 0 ||
	    kms_keys_load(k.cfg.cert_dir, &k.keys, &e) < 0) {
		log_error("%s", err_str(&e));
		goto out;
	}
	k.have_keys = true;
	if (refresh_certs(&k, &e) < 0) {
		log_error("%s", err_str(&e));
		goto out;
	}
	if (serve(&k, &e) < 0) {
		log_error("%s", err_str(&e));
		goto out;
	}
	rc = 0;
out:
	kms_attest_free(&k);
	if (k.have_keys)
		kms_keys_free(&k.keys);
	if (k.base)
		event_base_free(k.base);
	free(k.self_boot_body);
	kms_config_free(&k.cfg);
	return rc;
}
