/*
 * main.c — dstack-kms: load kms.toml, make sure a key set exists (recover an
 * interrupted store, bootstrap headlessly, or serve the onboard page until
 * Finish), refresh certificates, then serve the KMS RPC over TLS and the
 * optional admin API (kms.md §6).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/daemon_args.h"
#include "core/cleanup.h"
#include "core/log.h"
#include "core/mem.h"
#include "http/daemon.h"
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

static int tcp_spec(struct http_listen_spec *spec, const char *addr, uint16_t port, const char *what,
		    struct err *e)
{
	if (http_listen_spec_set(spec, HTTP_LISTEN_TCP, addr, port, NULL, 0, e) < 0)
		return err_wrap(e, "%s listener", what);
	return 0;
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

/* The KMS RPC over TLS (client certificates optional, from the temp CA) and the admin API. */
static int serve(struct kms *k, struct err *e)
{
	struct http_daemon d = {.base = k->base,
				.opts = {.workers = k->cfg.workers, .app_version = DSTACK_VERSION}};
	const struct http_tls_files files = HTTP_TLS_FILES_OF(&k->cfg, "rpc.tls", 2);
	struct http_listen_spec rpc, admin;
	struct http_server *srv;
	int rc = -1;

	if (tcp_spec(&rpc, k->cfg.rpc_address, k->cfg.rpc_port, "rpc (TLS)", e) < 0 ||
	    !(srv = http_daemon_rpc(&d, &files, &rpc, e)) || kms_main_mount(k, srv, e) < 0)
		goto out;
	http_server_add_health(srv);
	if (k->cfg.admin_enabled &&
	    (tcp_spec(&admin, k->cfg.admin_address, k->cfg.admin_port, "admin", e) < 0 ||
	     !(srv = http_daemon_plain(&d, &admin, "admin", e)) || kms_admin_mount(k, srv, e) < 0))
		goto out;
	log_info("dstack-kms %s serving (auth_api: %s)", DSTACK_VERSION, k->cfg.auth_type);
	rc = http_daemon_run(&d);
out:
	http_daemon_free(&d);
	return rc;
}

int main(int argc, char **argv)
{
	struct kms k = {0};
	struct err e = ERR_INIT;
	int rc = 1;
	struct daemon_args args = {
	    .prog = "dstack-kms", .usage = usage, .defaults_toml = kms_default_toml, .log_name = "kms"};

	if ((rc = daemon_start(&args, argc, argv)) >= 0)
		return rc;
	rc = 1;
	if (kms_config_load(&k.cfg, args.config, &e) < 0) {
		log_error("config: %s", err_str(&e));
		return 1;
	}
	daemon_log_level(&args, k.cfg.log_level);
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
