/*
 * gateway_setup.c — see gateway_setup.h. The client certificate is issued
 * afresh on every run (no cache yet) and carries only the AppInfo
 * extension: the gateway takes the CVM's identity from it because the KMS
 * signed it after verifying this TD's attestation.
 */
#include "gateway_setup.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/pem.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/log.h"
#include "core/mem.h"
#include "gateway_reg.h"
#include "kms_cert.h"
#include "ratls/cert.h"
#include "rtevent.h"
#include "wg_up.h"

#define CLIENT_CERT_DAYS 10
#define MAX_PEERS 256

/* Chain PEM for TLS: leaf and intermediates, the root left out. */
static char *client_chain_pem(char **chain, size_t n)
{
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < (n > 1 ? n - 1 : n); i++) {
		buf_puts(&b, chain[i]);
		if (b.len && b.data[b.len - 1] != '\n')
			buf_putc(&b, '\n');
	}
	return (char *)buf_steal(&b, NULL);
}

static int issue_client_cert(const struct gw_setup_in *in, char **cert_pem, char **key_pem, struct err *e)
{
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *key = ratls_key_generate(e);
	struct tls_cert_req r = {
	    .subject = "dstack-guest-agent",
	    .usage_client_auth = true,
	    .with_app_info = true,
	    .has_not_after = true,
	    .not_after = (uint64_t)time(NULL) + CLIENT_CERT_DAYS * 86400ull,
	};
	struct ratls_csr csr;
	struct attestation att;
	uint8_t rd[64];
	char **chain = NULL;
	size_t n = 0;

	if (!key || cert_csr_prepare(key, &r, &csr, rd, e) < 0)
		return -1;
	if (rtevent_attestation(in->tee, in->rt_log, in->rt_lock, in->vm_config, rd, &att, e) < 0) {
		cert_csr_release(&csr);
		return err_wrap(e, "attest the certificate key");
	}
	int rc = kms_sign_cert(in->keys->kms_url, in->vm_config, key, &csr, &att, &chain, &n, e);
	attestation_free(&att);
	cert_csr_release(&csr);
	if (rc < 0)
		return err_wrap(e, "client certificate from the KMS");
	*cert_pem = client_chain_pem(chain, n);
	cert_chain_free(chain, n);
	*key_pem = pem_write_private_key(key, e);
	if (!*cert_pem || !*key_pem) {
		free(*cert_pem);
		*cert_pem = NULL;
		return err_set(e, "out of memory");
	}
	return 0;
}

/* Peer routes: each server's ip with its prefix replaced by /32. */
static int peer_routes(const json_t *reply, char ***routes, size_t *n, struct err *e)
{
	const json_t *servers = json_object_get(json_object_get(reply, "wg"), "servers");
	size_t cnt = json_array_size(servers);
	if (cnt == 0 || cnt > MAX_PEERS)
		return err_set(e, "RegisterCvm reply has %zu WireGuard servers", cnt);
	char **r = calloc(cnt, sizeof(char *));
	if (!r)
		return err_set(e, "out of memory");
	for (size_t i = 0; i < cnt; i++) {
		const char *ip = json_string_value(json_object_get(json_array_get(servers, i), "ip"));
		size_t l = ip ? strcspn(ip, "/") : 0;
		char addr[INET_ADDRSTRLEN];
		struct in_addr a;
		snprintf(addr, sizeof(addr), "%.*s", (int)l, ip ? ip : "");
		if (!l || l >= sizeof(addr) || inet_pton(AF_INET, addr, &a) != 1) {
			*routes = r;
			*n = cnt;
			return err_set(e, "RegisterCvm reply: bad WireGuard server ip \"%s\"", ip ? ip : "");
		}
		r[i] = malloc(l + 4);
		if (!r[i]) {
			*routes = r;
			*n = cnt;
			return err_set(e, "out of memory");
		}
		snprintf(r[i], l + 4, "%s/32", addr);
	}
	*routes = r;
	*n = cnt;
	return 0;
}

static void routes_free(char **r, size_t n)
{
	for (size_t i = 0; r && i < n; i++)
		free(r[i]);
	free(r);
}

static int bring_up(const struct gw_setup_in *in, const json_t *reply, const char *client_ip, struct err *e)
{
	char setconf[1024], log[1024], addr[80];
	char **routes = NULL;
	size_t n = 0;

	snprintf(setconf, sizeof(setconf), "%s/%s", in->work_dir, GW_WG_SETCONF_FILE);
	snprintf(log, sizeof(log), "%s/wireguard-go.log", in->work_dir);
	snprintf(addr, sizeof(addr), "%s/32", client_ip);
	int rc = peer_routes(reply, &routes, &n, e);
	if (rc == 0) {
		struct wg_up_opts o = {
		    .ifname = in->wg_interface && *in->wg_interface ? in->wg_interface : "dstack-wg0",
		    .setconf_path = setconf,
		    .address = addr,
		    .routes = (const char *const *)routes,
		    .n_routes = n,
		    .log_path = log,
		};
		rc = wg_up(&o, e);
		if (rc < 0)
			err_wrap(e, "WireGuard %s", o.ifname);
	}
	routes_free(routes, n);
	return rc;
}

int gw_setup(const struct gw_setup_in *in, struct gw_setup_out *out, struct err *e)
{
	_cleanup_free_ char *priv = NULL, *pub = NULL, *cert = NULL, *key = NULL;
	_cleanup_json_ json_t *reply = NULL;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (in->keys->provider != AKP_KMS)
		return err_set(e, "the gateway needs the KMS key provider (it trusts only KMS-issued "
				  "client certificates)");
	if (json_array_size(in->urls) == 0)
		return err_set(e, "no gateway_urls in sys-config");
	if (gw_wg_key_load_or_create(in->work_dir, &priv, &pub, e) < 0)
		return -1;
	if (issue_client_cert(in, &cert, &key, e) < 0)
		goto out;
	if (guest_register_cvm(in->urls, cert, key, in->keys->ca_cert, in->keys->gateway_app_id, pub,
			       in->port_policy, &reply, e) < 0)
		goto out;
	const char *ip = json_string_value(json_object_get(json_object_get(reply, "wg"), "client_ip"));
	struct in_addr a;
	if (!ip || strlen(ip) >= sizeof(out->client_ip) || inet_pton(AF_INET, ip, &a) != 1) {
		err_set(e, "RegisterCvm reply has no valid wg.client_ip");
		goto out;
	}
	snprintf(out->client_ip, sizeof(out->client_ip), "%s", ip);
	if (gw_wg_conf_write(in->work_dir, priv, reply, e) < 0)
		goto out;
	log_info("gateway: client address %s", ip);
	rc = in->wg_up ? bring_up(in, reply, ip, e) : 0;
	if (!in->wg_up)
		log_info("gateway: WireGuard interface left down (--no-wg-up)");
out:
	if (priv)
		secure_zero(priv, strlen(priv));
	if (key)
		secure_zero(key, strlen(key));
	return rc;
}
