/*
 * certs.c — the proxy's wildcard certificates: the static pair of
 * [core.proxy] (cert_chain + cert_key for base_domain) and those kept in the
 * state store, (re)loaded at start and again on Admin.ReloadCert or SIGHUP,
 * so that a certificate renewed on disk (certbot's renewed_hook) is served
 * without a restart.
 *
 * Each certificate is replaced only once its successor has loaded and its key
 * matches: a half-written or broken file leaves the one being served in place,
 * and connections already open keep the context they started with. Unlike the
 * reference, whose reload drops the static certificate, a reload here re-reads
 * it from its files.
 */
#include <stdbool.h>
#include <string.h>

#include "core/log.h"
#include "gateway.h"

static int load_static(struct gateway *gw, struct err *e)
{
	const struct gw_config *c = &gw->cfg;

	if (!c->base_domain || !*c->base_domain || !c->cert_chain || !*c->cert_chain)
		return 0;
	if (proxy_engine_set_cert(gw->proxy, c->base_domain, c->cert_chain, c->cert_key, e) < 0)
		return -1;
	return 1;
}

int gw_load_stored_certs(struct gateway *gw, unsigned *loaded, unsigned *failed, struct err *e)
{
	struct gw_cert *v = NULL;
	size_t n = 0;

	*loaded = *failed = 0;
	if (gw->store->ops->list_certs(gw->store, &v, &n, e) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct err ce = ERR_INIT;
		if (proxy_engine_set_cert_pem(gw->proxy, v[i].domain, v[i].chain_pem, strlen(v[i].chain_pem),
					      v[i].key_pem, strlen(v[i].key_pem), &ce) < 0) {
			log_warn("stored certificate for *.%s: %s", v[i].domain, err_str(&ce));
			if (!*failed)
				err_set(e, "stored certificate for *.%s: %s", v[i].domain, err_str(&ce));
			(*failed)++;
		} else {
			(*loaded)++;
		}
	}
	gw_certs_free(v, n);
	return 0;
}

int gw_reload_certs(struct gateway *gw, struct err *e)
{
	struct err se = ERR_INIT, ke = ERR_INIT;
	unsigned loaded = 0, failed = 0;
	int st = load_static(gw, &se);
	bool stored_bad = gw_load_stored_certs(gw, &loaded, &failed, &ke) < 0 || failed;

	if (st < 0 || stored_bad) {
		err_set(e, "certificate reload failed: %s%s%s", st < 0 ? err_str(&se) : "",
			st < 0 && stored_bad ? "; " : "", stored_bad ? err_str(&ke) : "");
		log_warn("%s (the certificates in use stay in place)", err_str(e));
		return -1;
	}
	log_info("certificates reloaded: %s%s%s%u from the state store", st > 0 ? "*." : "",
		 st > 0 ? gw->cfg.base_domain : "", st > 0 ? " from its files, " : "", loaded);
	return 0;
}
