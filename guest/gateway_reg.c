/*
 * gateway_reg.c — WireGuard identity and wg-quick file for gateway
 * registration. The private key is 32 random bytes clamped the WireGuard
 * way and stored base64 with mode 0600; the public key is always derived
 * from it, never stored, so the two cannot disagree.
 */
#include "gateway_reg.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "codec/base64.h"
#include "core/cleanup.h"
#include "core/hex.h"
#include "core/fileio.h"
#include "core/log.h"
#include "core/mem.h"
#include "crypto/ecx.h"
#include "prpc/client.h"
#include "ratls/ext.h"

static int path_join(char *dst, size_t n, const char *dir, const char *name, struct err *e)
{
	int w = snprintf(dst, n, "%s/%s", dir, name);
	if (w < 0 || (size_t)w >= n)
		return err_set(e, "path too long: %s/%s", dir, name);
	return 0;
}

static int key_from_file(const char *path, uint8_t sk[32], struct err *e)
{
	uint8_t *raw = NULL, *dec = NULL;
	size_t n = 0, dn = 0;
	int rc = -1;

	if (file_read_all(path, 256, &raw, &n, e) < 0)
		return -1;
	while (n && (raw[n - 1] == '\n' || raw[n - 1] == '\r' || raw[n - 1] == ' '))
		n--;
	if (base64_decode((const char *)raw, n, &dec, &dn, e) < 0)
		goto out;
	if (dn != 32) {
		err_set(e, "WireGuard key in %s is %zu bytes, expected 32", path, dn);
		goto out;
	}
	memcpy(sk, dec, 32);
	rc = 0;
out:
	if (raw)
		secure_zero(raw, n);
	if (dec)
		secure_zero(dec, dn);
	free(raw);
	free(dec);
	return rc;
}

int gw_wg_key_load_or_create(const char *work_dir, char **priv_b64, char **pub_b64, struct err *e)
{
	char path[1024];
	uint8_t sk[32], pk[32];

	if (path_join(path, sizeof(path), work_dir, GW_WG_KEY_FILE, e) < 0)
		return -1;
	if (file_exists(path)) {
		if (key_from_file(path, sk, e) < 0)
			return err_wrap(e, "Failed to load the WireGuard key");
	} else {
		if (x25519_keypair(sk, pk, e) < 0)
			return err_wrap(e, "Failed to generate the WireGuard key");
		sk[0] &= 248;
		sk[31] = (uint8_t)((sk[31] & 127) | 64);
		char *b = base64_encode(sk, 32);
		int rc = file_write_atomic(path, b, strlen(b), 0600, e);
		secure_zero(b, strlen(b));
		free(b);
		if (rc < 0) {
			secure_zero(sk, sizeof(sk));
			return err_wrap(e, "Failed to store the WireGuard key");
		}
	}
	if (x25519_public(sk, pk, e) < 0) {
		secure_zero(sk, sizeof(sk));
		return -1;
	}
	*priv_b64 = base64_encode(sk, 32);
	*pub_b64 = base64_encode(pk, 32);
	secure_zero(sk, sizeof(sk));
	return 0;
}

struct peer {
	const char *pk, *ip, *endpoint;
};

static int peer_cmp(const void *a, const void *b)
{
	return strcmp(((const struct peer *)a)->pk, ((const struct peer *)b)->pk);
}

/* A line value must not be able to start a new line or section. */
static bool clean_value(const char *s)
{
	return s && *s && !strpbrk(s, "\r\n[]");
}

/* wg-quick text (with Address) or wg(8) setconf text (without it). */
static int render(const char *priv_b64, const json_t *reply, bool wg_quick, struct buf *out, struct err *e)
{
	const json_t *wg = json_object_get(reply, "wg");
	const char *client_ip = json_string_value(json_object_get(wg, "client_ip"));
	const json_t *servers = json_object_get(wg, "servers");
	size_t n = json_array_size(servers);

	if (!clean_value(client_ip))
		return err_set(e, "RegisterCvm reply has no wg.client_ip");
	if (n == 0 || n > 256)
		return err_set(e, "RegisterCvm reply has %zu WireGuard servers", n);
	_cleanup_free_ struct peer *p = calloc(n, sizeof(*p));
	if (!p)
		return err_set(e, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const json_t *s = json_array_get(servers, i);
		p[i].pk = json_string_value(json_object_get(s, "pk"));
		p[i].ip = json_string_value(json_object_get(s, "ip"));
		p[i].endpoint = json_string_value(json_object_get(s, "endpoint"));
		if (!clean_value(p[i].pk) || !clean_value(p[i].ip) || !clean_value(p[i].endpoint))
			return err_set(e, "RegisterCvm reply: WireGuard server %zu lacks pk/ip/endpoint", i);
	}
	qsort(p, n, sizeof(*p), peer_cmp);
	buf_printf(out, "[Interface]\nPrivateKey = %s\nListenPort = %d\n", priv_b64, GW_WG_LISTEN_PORT);
	if (wg_quick)
		buf_printf(out, "Address = %s/32\n", client_ip);
	for (size_t i = 0; i < n; i++) {
		size_t iplen = strcspn(p[i].ip, "/");
		buf_printf(out,
			   "\n[Peer]\nPublicKey = %s\nAllowedIPs = %.*s/32\nEndpoint = "
			   "%s\nPersistentKeepalive = 25\n",
			   p[i].pk, (int)iplen, p[i].ip, p[i].endpoint);
	}
	return 0;
}

int gw_wg_conf_render(const char *priv_b64, const json_t *reply, struct buf *out, struct err *e)
{
	return render(priv_b64, reply, true, out, e);
}

int gw_wg_setconf_render(const char *priv_b64, const json_t *reply, struct buf *out, struct err *e)
{
	return render(priv_b64, reply, false, out, e);
}

static int write_rendered(const char *work_dir, const char *name, const char *priv_b64, const json_t *reply,
			  bool wg_quick, struct err *e)
{
	char path[1024];
	struct buf b = {0};

	if (path_join(path, sizeof(path), work_dir, name, e) < 0)
		return -1;
	if (render(priv_b64, reply, wg_quick, &b, e) < 0) {
		buf_free_secure(&b);
		return -1;
	}
	int rc = file_write_atomic(path, b.data, b.len, 0600, e);
	buf_free_secure(&b);
	return rc;
}

int gw_wg_conf_write(const char *work_dir, const char *priv_b64, const json_t *reply, struct err *e)
{
	return write_rendered(work_dir, GW_WG_CONF_FILE, priv_b64, reply, true, e) < 0 ||
		       write_rendered(work_dir, GW_WG_SETCONF_FILE, priv_b64, reply, false, e) < 0
		   ? -1
		   : 0;
}

/* The gateway's server certificate, checked inside the handshake: chain to
 * the KMS root (the store curl filled from ca_pem), then the app id. */
struct server_check {
	const char *want_app_id; /* NULL: any gateway app */
	struct err e;
	bool failed;
};

static bool hex_id_eq(const uint8_t *id, size_t len, const char *want)
{
	char have[2 * 64 + 1];
	if (!strncmp(want, "0x", 2) || !strncmp(want, "0X", 2))
		want += 2;
	if (len > 64 || strlen(want) != 2 * len)
		return false;
	hex_encode(id, len, have);
	return strcasecmp(have, want) == 0;
}

static int check_server(X509_STORE_CTX *sctx, void *arg)
{
	struct server_check *c = arg;
	struct ratls_ext ext;

	if (X509_verify_cert(sctx) <= 0) {
		err_set(&c->e, "gateway certificate not issued under the KMS root: %s",
			X509_verify_cert_error_string(X509_STORE_CTX_get_error(sctx)));
		c->failed = true;
		return 0;
	}
	if (!c->want_app_id)
		return 1;
	memset(&ext, 0, sizeof(ext));
	if (ratls_ext_read(X509_STORE_CTX_get0_cert(sctx), &ext, &c->e) < 0) {
		err_wrap(&c->e, "gateway certificate");
		c->failed = true;
		return 0;
	}
	if (!ext.app_id_len) {
		err_set(&c->e, "gateway certificate has no app id (expected %s)", c->want_app_id);
		c->failed = true;
	} else if (!hex_id_eq(ext.app_id, ext.app_id_len, c->want_app_id)) {
		char have[2 * 64 + 1] = "";
		if (ext.app_id_len <= 64)
			hex_encode(ext.app_id, ext.app_id_len, have);
		err_set(&c->e, "gateway app id mismatch: certificate has %s, the KMS expects %s", have,
			c->want_app_id);
		c->failed = true;
	}
	ratls_ext_free(&ext);
	return c->failed ? 0 : 1;
}

static int install_check(SSL_CTX *ctx, void *arg)
{
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_cert_verify_callback(ctx, check_server, arg);
	return 0;
}

int guest_register_cvm(const json_t *urls, const char *cert_pem, const char *key_pem, const char *ca_pem,
		       const char *gateway_app_id, const char *pub_b64, const json_t *port_policy,
		       json_t **reply, struct err *e)
{
	size_t n = json_array_size(urls);
	char base[1024];
	const char *want =
	    gateway_app_id && *gateway_app_id && strcmp(gateway_app_id, "any") ? gateway_app_id : NULL;

	if (n == 0)
		return err_set(e, "no gateway_urls configured");
	if (!ca_pem || !*ca_pem)
		return err_set(e, "no KMS root certificate to verify the gateway with");
	if (!want && gateway_app_id && !strcmp(gateway_app_id, "any"))
		log_warn("gateway app id check disabled: the KMS allows any gateway (gateway_app_id = any)");
	else if (!want)
		return err_set(e, "the KMS named no gateway app id (gateway_app_id is empty)");
	_cleanup_json_ json_t *in = json_pack("{s:s}", "client_public_key", pub_b64);
	if (!in)
		return err_set(e, "out of memory");
	if (port_policy && json_is_object(port_policy))
		json_object_set(in, "port_policy", (json_t *)port_policy);
	for (size_t i = 0; i < n; i++) {
		const char *url = json_string_value(json_array_get(urls, i));
		if (!url || !*url)
			continue;
		size_t ul = strlen(url);
		while (ul && url[ul - 1] == '/')
			ul--;
		snprintf(base, sizeof(base), "%.*s/prpc", (int)ul, url);
		struct server_check check = {.want_app_id = want, .e = ERR_INIT};
		struct prpc_client cl = {.base = base,
					 .http = {.ca_pem = ca_pem,
						  .cert_pem = cert_pem,
						  .key_pem = key_pem,
						  .ssl_ctx_hook = install_check,
						  .ssl_ctx_arg = &check,
						  .timeout_ms = 30000}};
		if (prpc_client_call_json(&cl, "RegisterCvm", in, reply, e) == 0 && json_is_object(*reply)) {
			err_clear(e);
			log_info("registered with gateway %s", url);
			return 0;
		}
		if (*reply) {
			json_decref(*reply);
			*reply = NULL;
		}
		if (check.failed && e)
			*e = check.e;
		log_warn("gateway %s: registration failed: %s", url, err_str(e));
	}
	return err_wrap(e, "Failed to register with any gateway");
}
