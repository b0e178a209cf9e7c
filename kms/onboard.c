/*
 * onboard.c — the onboard service (kms.md §6), served over plain HTTP while
 * the KMS has no keys: Bootstrap (new keys), Onboard (copy the keys of a
 * source KMS over RA-TLS both ways), GetAttestationInfo, Finish, the web
 * page and GET /finish. Bootstrap and Onboard hold k->lock, so two browser
 * tabs cannot race each other into two key sets.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "attest.h"
#include "auth.h"
#include "certs.h"
#include "core/cleanup.h"
#include "core/hex.h"
#include "core/log.h"
#include "core/mem.h"
#include "crypto/hash.h"
#include "kms.h"
#include "kms_rpc.pb-c.h"
#include "onboard.h"
#include "prpc/client.h"
#include "prpc/json.h"
#include "prpc/server.h"
#include "ratls/cert.h"
#include "ratls/ext.h"
#include "ratls/verify.h"
#include "prpc/agent.h"
#include "core/xalloc.h"

bool kms_domain_valid(const char *d)
{
	size_t n = strlen(d), label = 0;

	if (n < 1 || n > 253)
		return false;
	for (size_t i = 0; i <= n; i++) {
		char c = d[i];

		if (c == '.' || c == '\0') {
			if (label < 1 || label > 63 || d[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!(isascii((unsigned char)c) && (isalnum((unsigned char)c) || c == '-')))
			return false;
		if (label == 0 && c == '-')
			return false;
		label++;
	}
	return true;
}

static void set_bytes(ProtobufCBinaryData *b, const void *p, size_t n)
{
	b->data = malloc(n ? n : 1);
	if (!b->data)
		abort();
	if (n)
		memcpy(b->data, p, n);
	b->len = n;
}

/* report_data of the bootstrap attestation: Keccak-256("dstack-kms-genereted-keys-v1:" ‖
 * hex(ca SPKI) ‖ ";" ‖ hex(k256 compressed) ‖ ";") ‖ 32 zero bytes. The typo is normative. */
static void bootstrap_report_data(const uint8_t *spki, size_t spki_len, const uint8_t k256_pub[33],
				  uint8_t rd[64])
{
	_cleanup_free_ char *hs = hex_encode_alloc(spki, spki_len);
	char hk[67];
	struct span parts[] = {SPAN_STR("dstack-kms-genereted-keys-v1:"), SPAN_STR(hs), SPAN_STR(";"),
			       SPAN(hk, 66), SPAN_STR(";")};

	hex_encode(k256_pub, 33, hk);
	memset(rd, 0, 64);
	keccak256_parts(parts, ARRAY_SIZE(parts), rd);
}

static int bootstrap_locked(struct kms *k, const char *domain, Kms__BootstrapResponse *out, struct err *e)
{
	struct kms_keys keys;
	_cleanup_free_ uint8_t *spki = NULL, *att = NULL;
	size_t spki_len = 0, att_len = 0;
	uint8_t rd[64];
	struct buf json = BUF_INIT;
	int rc = -1;

	if (!kms_domain_valid(domain))
		return err_set(e, "invalid domain '%.260s'", domain);
	if (kms_keys_recover(k->cfg.cert_dir, e) < 0)
		return -1;
	if (kms_keys_any_root(k->cfg.cert_dir))
		return err_set(e, "Already bootstrapped: keys exist in %s", k->cfg.cert_dir);
	if (kms_self_authorize(k, e) < 0)
		return -1;
	if (kms_keys_generate(&keys, domain, e) < 0)
		return -1;
	if (kms_spki_der(keys.root_ca_key, &spki, &spki_len, e) < 0)
		goto out;
	bootstrap_report_data(spki, spki_len, keys.k256_pub, rd);
	if (kms_agent_attest(rd, &att, &att_len, e) < 0) {
		if (!kms_auth_is_dev(&k->cfg) || prpc_agent_present())
			goto out;
		log_warn("bootstrap without attestation (dev mode, no guest agent): %s", err_str(e));
		att_len = 0;
	}
	set_bytes(&out->ca_pubkey, spki, spki_len);
	set_bytes(&out->k256_pubkey, keys.k256_pub, 33);
	set_bytes(&out->attestation, att ? att : (const uint8_t *)"", att_len);
	prpc_json_encode(&out->base, &json);
	if (kms_keys_store(k->cfg.cert_dir, &keys, (const char *)json.data, e) < 0)
		goto out;
	log_info("bootstrapped new KMS keys for %s", domain);
	rc = 0;
out:
	buf_free(&json);
	kms_keys_free(&keys);
	return rc;
}

static int rpc_bootstrap(struct prpc_call *call, const void *in_, void *out, struct err *e)
{
	struct kms *k = prpc_call_arg(call);
	const Kms__BootstrapRequest *in = in_;
	int rc;

	pthread_mutex_lock(&k->lock);
	rc = bootstrap_locked(k, in->domain, out, e);
	pthread_mutex_unlock(&k->lock);
	return rc;
}

/* ---- onboarding from a source KMS ---- */

struct peer_capture {
	X509 *leaf;
};

static int capture_verify_cb(int ok, X509_STORE_CTX *ctx)
{
	(void)ok;
	(void)ctx;
	return 1; /* chain not checked here: the leaf's attestation is, after the call */
}

static int capture_info_cb(SSL_CTX *ctx, void *arg);

static void capture_msg(const SSL *ssl, int where, int ret)
{
	struct peer_capture *pc;

	(void)ret;
	if (!(where & SSL_CB_HANDSHAKE_DONE))
		return;
	pc = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	if (pc && !pc->leaf)
		pc->leaf = SSL_get1_peer_certificate(ssl);
}

static int capture_info_cb(SSL_CTX *ctx, void *arg)
{
	SSL_CTX_set_app_data(ctx, arg);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, capture_verify_cb);
	SSL_CTX_set_info_callback(ctx, capture_msg);
	return 0;
}

static char *normalize_url(const char *url)
{
	size_t n = strlen(url);
	char *out;

	while (n && url[n - 1] == '/')
		n--;
	if (n >= 5 && !strncmp(url + n - 5, "/prpc", 5)) {
		out = strndup(url, n);
	} else if (asprintf(&out, "%.*s/prpc", (int)n, url) < 0) {
		out = NULL;
	}
	return out;
}

/* Authorize the source KMS from its server certificate (bootAuth/kms). */
static int authorize_source(struct kms *k, X509 *leaf, struct err *e)
{
	struct ratls_verified v;
	struct ratls_boot_info bi;
	struct kms_own_info own;
	_cleanup_json_ json_t *body = NULL;
	struct kms_auth_reply r;
	int rc = -1;

	if (!leaf)
		return err_set(e, "source KMS presented no certificate");
	memset(&v, 0, sizeof(v));
	if (ratls_verify_peer_cert(k->verifier, leaf, 0, &v, e) < 0)
		return err_wrap(e, "source KMS attestation");
	if (ratls_boot_info(&v, NULL, false, &bi, e) < 0)
		goto out_v;
	if (!bi.app.os_image_hash.len && kms_own_attestation_info(k, &own, e) == 0 && own.os_image_hash_len) {
		free(bi.app.os_image_hash.p);
		bi.app.os_image_hash.p = malloc(own.os_image_hash_len);
		if (!bi.app.os_image_hash.p)
			abort();
		memcpy(bi.app.os_image_hash.p, own.os_image_hash, own.os_image_hash_len);
		bi.app.os_image_hash.len = own.os_image_hash_len;
	}
	err_clear(e);
	body = ratls_boot_info_to_json(&bi);
	if (!body || kms_auth_boot(&k->cfg, true, body, &r, e) < 0)
		goto out_bi;
	if (!r.allowed) {
		err_set(e, "source KMS is not allowed: %s", r.reason);
		goto out_bi;
	}
	rc = 0;
out_bi:
	ratls_boot_info_free(&bi);
out_v:
	ratls_verified_free(&v);
	return rc;
}

static int onboard_locked(struct kms *k, const Kms__OnboardRequest *in, Kms__OnboardResponse *out,
			  struct err *e)
{
	_cleanup_free_ char *base = NULL, *cert_pem = NULL, *key_pem = NULL, *vm_config = NULL;
	_cleanup_free_ uint8_t *att = NULL;
	size_t att_len = 0;
	struct peer_capture pc1 = {0}, pc2 = {0};
	struct prpc_client c = {0};
	Kms__GetTempCaCertResponse *tmp = NULL;
	Kms__KmsKeyResponse *kr = NULL;
	Kms__GetKmsKeyRequest req = KMS__GET_KMS_KEY_REQUEST__INIT;
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *ra_key = NULL, *tmp_key = NULL;
	_cleanup_(X509_freep) X509 *tmp_cert = NULL, *ra_cert = NULL;
	_cleanup_json_ json_t *info = NULL;
	struct kms_keys keys;
	uint8_t rd[64];
	int rc = -1;

	if (!kms_domain_valid(in->domain))
		return err_set(e, "invalid domain '%.260s'", in->domain);
	if (kms_keys_recover(k->cfg.cert_dir, e) < 0)
		return -1;
	if (kms_keys_any_root(k->cfg.cert_dir))
		return err_set(e, "Already bootstrapped: keys exist in %s", k->cfg.cert_dir);
	if (!(base = normalize_url(in->source_url)))
		return err_set(e, "out of memory");
	/* 1. Temp CA from the source; its certificate is checked after the call. */
	c.base = base;
	c.http.insecure = true;
	c.http.ssl_ctx_hook = capture_info_cb;
	c.http.ssl_ctx_arg = &pc1;
	if (prpc_client_call(&c, "GetTempCaCert", NULL, &kms__get_temp_ca_cert_response__descriptor,
			     (ProtobufCMessage **)&tmp, e) < 0) {
		err_wrap(e, "source GetTempCaCert");
		goto out;
	}
	if (authorize_source(k, pc1.leaf, e) < 0)
		goto out;
	/* 2. RA-TLS client certificate signed by the temp CA. */
	if (!(tmp_cert = kms_cert_from_pem(tmp->temp_ca_cert, strlen(tmp->temp_ca_cert), e)) ||
	    !(tmp_key = kms_key_from_pem(tmp->temp_ca_key, strlen(tmp->temp_ca_key), e)) ||
	    !(ra_key = ratls_key_generate(e)) || ratls_key_report_data(ra_key, rd, e) < 0 ||
	    kms_agent_attest(rd, &att, &att_len, e) < 0)
		goto out;
	if (!(ra_cert = ratls_cert_ra_client(ra_key, att, att_len, tmp_cert, tmp_key, e)))
		goto out;
	cert_pem = kms_cert_pem(ra_cert);
	key_pem = kms_key_pem(ra_key);
	if (!cert_pem || !key_pem) {
		err_set(e, "encode RA-TLS client certificate");
		goto out;
	}
	/* 3. GetKmsKey over mTLS, with our own vm_config. */
	if (kms_agent_info(&info, e) < 0)
		goto out;
	vm_config = xstrdup_or_empty(json_string_value(json_object_get(info, "vm_config")));
	req.vm_config = vm_config;
	c.http.cert_pem = cert_pem;
	c.http.key_pem = key_pem;
	c.http.ssl_ctx_arg = &pc2;
	if (prpc_client_call(&c, "GetKmsKey", &req.base, &kms__kms_key_response__descriptor,
			     (ProtobufCMessage **)&kr, e) < 0) {
		err_wrap(e, "source GetKmsKey");
		goto out;
	}
	if (authorize_source(k, pc2.leaf, e) < 0)
		goto out;
	if (kr->n_keys != 1 || kr->keys[0]->k256_key.len != 32 || !kr->keys[0]->ca_key) {
		err_set(e, "source KMS returned %zu key sets, expected exactly 1", kr->n_keys);
		goto out;
	}
	if (kms_keys_from_source(&keys, kr->keys[0]->ca_key, kr->keys[0]->k256_key.data, kr->temp_ca_key,
				 in->domain, e) < 0)
		goto out;
	if (kms_keys_store(k->cfg.cert_dir, &keys, NULL, e) == 0) {
		set_bytes(&out->k256_pubkey, keys.k256_pub, 33);
		log_info("onboarded keys from %s (domain %s)", in->source_url, in->domain);
		rc = 0;
	}
	kms_keys_free(&keys);
out:
	if (key_pem)
		secure_zero(key_pem, strlen(key_pem));
	X509_free(pc1.leaf);
	X509_free(pc2.leaf);
	if (tmp) {
		if (tmp->temp_ca_key)
			secure_zero(tmp->temp_ca_key, strlen(tmp->temp_ca_key));
		prpc_msg_free(&tmp->base);
	}
	if (kr) {
		for (size_t i = 0; i < kr->n_keys; i++) {
			if (kr->keys[i]->ca_key)
				secure_zero(kr->keys[i]->ca_key, strlen(kr->keys[i]->ca_key));
			secure_zero(kr->keys[i]->k256_key.data, kr->keys[i]->k256_key.len);
		}
		prpc_msg_free(&kr->base);
	}
	return rc;
}

static int rpc_onboard(struct prpc_call *call, const void *in, void *out, struct err *e)
{
	struct kms *k = prpc_call_arg(call);
	int rc;

	pthread_mutex_lock(&k->lock);
	rc = onboard_locked(k, in, out, e);
	pthread_mutex_unlock(&k->lock);
	return rc;
}

static int rpc_attestation_info(struct prpc_call *call, const void *in, void *out_, struct err *e)
{
	struct kms *k = prpc_call_arg(call);
	Kms__AttestationInfoResponse *out = out_;
	struct kms_own_info own;
	_cleanup_json_ json_t *info = NULL;
	struct err ignore = ERR_INIT;

	(void)in;
	if (kms_own_attestation_info(k, &own, e) < 0)
		return err_wrap(e, "own attestation");
	set_bytes(&out->device_id, own.device_id, 32);
	set_bytes(&out->mr_aggregated, own.mr_aggregated, 32);
	set_bytes(&out->os_image_hash, own.os_image_hash, own.os_image_hash_len);
	set_bytes(&out->ppid, own.ppid, own.ppid_len);
	out->tee_variant = xstrdup_or_empty(own.tee_variant);
	out->site_name = xstrdup_or_empty(k->cfg.site_name);
	if (kms_auth_info(&k->cfg, &info, &ignore) == 0) {
		out->eth_rpc_url = xstrdup_or_empty(json_string_value(json_object_get(info, "ethRpcUrl")));
		out->kms_contract_address =
		    xstrdup_or_empty(json_string_value(json_object_get(info, "kmsContractAddr")));
	} else {
		out->eth_rpc_url = xstrdup_or_empty("");
		out->kms_contract_address = xstrdup_or_empty("");
	}
	return 0;
}

static void shutdown_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	http_server_shutdown(arg);
}

static void schedule_finish(struct kms *k)
{
	event_base_once(k->base, -1, EV_TIMEOUT, shutdown_cb, k->onboard_srv, NULL);
}

static int rpc_finish(struct prpc_call *call, const void *in, void *out, struct err *e)
{
	(void)in;
	(void)out;
	(void)e;
	schedule_finish(prpc_call_arg(call));
	return 0;
}

static void page(struct http_request *req, void *arg)
{
	(void)arg;
	http_respond(req, 200, "text/html; charset=utf-8", kms_onboard_page, kms_onboard_page_len);
}

static void finish_get(struct http_request *req, void *arg)
{
	http_respond_text(req, 200, "OK");
	schedule_finish(arg);
}

static const struct prpc_method onboard_methods[] = {
    PRPC_METHOD_BLOCKING("Bootstrap", kms__bootstrap_request, kms__bootstrap_response, rpc_bootstrap),
    PRPC_METHOD_BLOCKING("Onboard", kms__onboard_request, kms__onboard_response, rpc_onboard),
    PRPC_METHOD_BLOCKING("GetAttestationInfo", google__protobuf__empty, kms__attestation_info_response,
			 rpc_attestation_info),
    PRPC_METHOD("Finish", google__protobuf__empty, google__protobuf__empty, rpc_finish),
};
static const char *const onboard_prefixes[] = {"Onboard.", NULL};

int kms_onboard_serve(struct kms *k, struct err *e)
{
	static struct prpc_service svc = {"Onboard", onboard_prefixes, onboard_methods,
					  ARRAY_SIZE(onboard_methods), NULL};
	const struct prpc_service *svcs[] = {&svc};
	struct http_server_opts o = {.workers = 2, .app_version = DSTACK_VERSION};
	struct http_listen_spec spec;
	uint16_t bound = 0;
	int rc = -1;

	svc.arg = k;
	if (!(k->onboard_srv = http_server_new(k->base, &o, e)))
		return -1;
	http_server_add_health(k->onboard_srv);
	http_server_route(k->onboard_srv, "GET", "/", false, page, k);
	http_server_route(k->onboard_srv, "GET", "/finish", false, finish_get, k);
	if (prpc_mount(k->onboard_srv, "/prpc/", svcs, 1, e) < 0 ||
	    http_listen_spec_set(&spec, HTTP_LISTEN_TCP, k->cfg.onboard_address, k->cfg.onboard_port, NULL, 0,
				 e) < 0 ||
	    http_server_listen(k->onboard_srv, &spec, NULL, &bound, e) < 0 ||
	    http_server_handle_signals(k->onboard_srv, e) < 0) {
		err_wrap(e, "onboard listener %s:%u", k->cfg.onboard_address, k->cfg.onboard_port);
		goto out;
	}
	log_info("onboard listening on %s:%u (plain HTTP)", k->cfg.onboard_address, bound);
	if (*k->cfg.auto_bootstrap_domain == '\0')
		event_base_dispatch(k->base);
	rc = 0;
out:
	http_server_free(k->onboard_srv);
	k->onboard_srv = NULL;
	return rc;
}
