/*
 * main_service.c — the KMS RPC service on the TLS listener (kms.md §2):
 * GetAppKey, GetKmsKey, GetAppEnvEncryptPubKey, GetMeta, GetTempCaCert,
 * SignCert, plus GET /metrics. Every handler that verifies attestations or
 * calls the auth webhook blocks, so all run on the worker pool.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "attest.h"
#include "auth.h"
#include "certs.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/hex.h"
#include "core/mem.h"
#include "crypto/appkeys.h"
#include "crypto/ecx.h"
#include "crypto/kdf.h"
#include "kms.h"
#include "kms_rpc.pb-c.h"
#include "prpc/json.h"
#include "prpc/server.h"
#include "ratls/cert.h"
#include "ratls/csr.h"
#include "ratls/ext.h"
#include "ratls/verify.h"
#include "core/xalloc.h"

static uint8_t *dup_bytes(const void *p, size_t n)
{
	uint8_t *d = malloc(n ? n : 1);

	if (!d)
		abort();
	if (n)
		memcpy(d, p, n);
	return d;
}

static void set_bytes(ProtobufCBinaryData *b, const void *p, size_t n)
{
	b->data = dup_bytes(p, n);
	b->len = n;
}

static void count(struct kms *k, int rc)
{
	atomic_fetch_add(&k->attest_requests, 1);
	if (rc < 0)
		atomic_fetch_add(&k->attest_failures, 1);
}

static int get_app_key(struct prpc_call *call, const void *in_, void *out_, struct err *e)
{
	struct kms *k = prpc_call_arg(call);
	const Kms__GetAppKeyRequest *in = in_;
	Kms__AppKeyResponse *out = out_;
	struct kms_caller c;
	struct kms_app_keys keys;
	int rc = -1;

	if (in->api_version > 1) {
		err_set(e, "Unsupported API version");
		goto done;
	}
	if (kms_authorize_peer(k, prpc_call_peer_cert(call), in->vm_config, false, &c, e) < 0)
		goto done;
	if (kms_derive_app_keys(k->keys.root_ca_scalar, k->keys.root_k256, c.app_id, c.instance_id,
				c.instance_id_len, &keys, e) < 0)
		goto done;
	out->ca_cert = xstrdup_or_empty(k->keys.root_ca_cert_pem);
	set_bytes(&out->disk_crypt_key, keys.disk_crypt_key, 32);
	set_bytes(&out->env_crypt_key, keys.env_crypt_key, 32);
	set_bytes(&out->k256_key, keys.k256_key, 32);
	set_bytes(&out->k256_signature, keys.k256_signature, 65);
	out->tproxy_app_id = xstrdup_or_empty(c.gateway_app_id);
	out->gateway_app_id = xstrdup_or_empty(c.gateway_app_id);
	set_bytes(&out->os_image_hash, c.os_image_hash, c.os_image_hash_len);
	secure_zero(&keys, sizeof(keys));
	rc = 0;
done:
	count(k, rc);
	return rc;
}

static int get_kms_key(struct prpc_call *call, const void *in_, void *out_, struct err *e)
{
	struct kms *k = prpc_call_arg(call);
	const Kms__GetKmsKeyRequest *in = in_;
	Kms__KmsKeyResponse *out = out_;
	Kms__KmsKeys *keys;
	struct kms_caller c;
	int rc = -1;

	if (kms_authorize_peer(k, prpc_call_peer_cert(call), in->vm_config, true, &c, e) < 0)
		goto done;
	keys = (Kms__KmsKeys *)prpc_msg_new(&kms__kms_keys__descriptor);
	keys->ca_key = xstrdup_or_empty(k->keys.root_ca_key_pem);
	set_bytes(&keys->k256_key, k->keys.root_k256, 32);
	out->temp_ca_key = xstrdup_or_empty(k->keys.tmp_ca_key_pem);
	out->keys = malloc(sizeof(*out->keys));
	if (!out->keys)
		abort();
	out->keys[0] = keys;
	out->n_keys = 1;
	rc = 0;
done:
	count(k, rc);
	return rc;
}

static int get_env_pubkey(struct prpc_call *call, const void *in_, void *out_, struct err *e)
{
	struct kms *k = prpc_call_arg(call);
	const Kms__AppId *in = in_;
	Kms__PublicKeyResponse *out = out_;
	uint8_t secret[32], pub[32], sig[65], sig_v1[65];
	uint64_t ts = (uint64_t)time(NULL);
	int rc;

	if (in->app_id.len != 20)
		return err_set(e, "app_id must be 20 bytes");
	if (kms_self_authorize(k, e) < 0)
		return -1;
	rc = kms_env_crypt_key(k->keys.root_ca_scalar, in->app_id.data, secret, e);
	if (rc == 0)
		rc = x25519_public(secret, pub, e);
	secure_zero(secret, sizeof(secret));
	if (rc < 0 ||
	    kms_env_pubkey_signatures(k->keys.root_k256, in->app_id.data, pub, ts, sig, sig_v1, e) < 0)
		return -1;
	set_bytes(&out->public_key, pub, 32);
	set_bytes(&out->signature, sig, 65);
	set_bytes(&out->signature_v1, sig_v1, 65);
	out->timestamp = ts;
	return 0;
}

static Kms__BootstrapResponse *load_bootstrap_info(struct kms *k)
{
	char p[4096];
	_cleanup_free_ uint8_t *data = NULL;
	size_t len = 0;
	struct err e = ERR_INIT;

	snprintf(p, sizeof(p), "%s/bootstrap-info.json", k->cfg.cert_dir);
	if (!file_exists(p) || file_read_all(p, 1 << 20, &data, &len, &e) < 0)
		return NULL;
	return (Kms__BootstrapResponse *)prpc_json_decode_text(&kms__bootstrap_response__descriptor, data,
							       len, &e);
}

static int get_meta(struct prpc_call *call, const void *in_, void *out_, struct err *e)
{
	struct kms *k = prpc_call_arg(call);
	Kms__GetMetaResponse *out = out_;
	_cleanup_json_ json_t *info = NULL;
	bool dev = kms_auth_is_dev(&k->cfg);

	if (kms_auth_info(&k->cfg, &info, e) < 0)
		return err_wrap(e, "auth API info");
	out->ca_cert = xstrdup_or_empty(k->keys.root_ca_cert_pem);
	out->allow_any_upgrade = dev;
	out->is_dev = dev;
	set_bytes(&out->k256_pubkey, k->keys.k256_pub, 33);
	out->bootstrap_info = load_bootstrap_info(k);
	if (!dev) {
		json_t *gw = json_object_get(info, "gatewayAppId"),
		       *addr = json_object_get(info, "kmsContractAddr");
		json_t *chain = json_object_get(info, "chainId"),
		       *impl = json_object_get(info, "appImplementation");

		if (!json_is_string(gw) || !json_is_string(addr) || !json_is_integer(chain) ||
		    !json_is_string(impl))
			return err_set(e, "auth API info lacks gatewayAppId, kmsContractAddr, chainId or "
					  "appImplementation");
		out->_gateway_app_id_case = KMS__GET_META_RESPONSE___GATEWAY_APP_ID_GATEWAY_APP_ID;
		out->gateway_app_id = xstrdup_or_empty(json_string_value(gw));
		out->_kms_contract_address_case =
		    KMS__GET_META_RESPONSE___KMS_CONTRACT_ADDRESS_KMS_CONTRACT_ADDRESS;
		out->kms_contract_address = xstrdup_or_empty(json_string_value(addr));
		out->_chain_id_case = KMS__GET_META_RESPONSE___CHAIN_ID_CHAIN_ID;
		out->chain_id = (uint64_t)json_integer_value(chain);
		out->_app_auth_implementation_case =
		    KMS__GET_META_RESPONSE___APP_AUTH_IMPLEMENTATION_APP_AUTH_IMPLEMENTATION;
		out->app_auth_implementation = xstrdup_or_empty(json_string_value(impl));
	}
	return 0;
}

static int get_temp_ca_cert(struct prpc_call *call, const void *in_, void *out_, struct err *e)
{
	struct kms *k = prpc_call_arg(call);
	Kms__GetTempCaCertResponse *out = out_;

	if (kms_self_authorize(k, e) < 0)
		return -1;
	out->temp_ca_cert = xstrdup_or_empty(k->keys.tmp_ca_cert_pem);
	out->temp_ca_key = xstrdup_or_empty(k->keys.tmp_ca_key_pem);
	out->ca_cert = xstrdup_or_empty(k->keys.root_ca_cert_pem);
	return 0;
}

/* SignCert (kms.md §4): CSR checks, attestation bound to the CSR key and
 * verified, boot-time authorization, then App CA + leaf. */
static int sign_cert_inner(struct kms *k, const Kms__SignCertRequest *in, Kms__SignCertResponse *out,
			   struct err *e)
{
	struct ratls_csr csr = {0};
	struct ratls_verified v;
	struct kms_caller c;
	struct buf app_info = BUF_INIT, stripped = BUF_INIT;
	uint8_t rd[64], ca_scalar[32];
	struct attestation a;
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *ca_key = NULL;
	_cleanup_(X509_freep) X509 *app_ca = NULL, *leaf = NULL;
	int rc = -1;

	memset(&v, 0, sizeof(v));
	attestation_init(&a);
	if (in->api_version > 2) {
		err_set(e, "Unsupported API version");
		goto out;
	}
	if (ratls_csr_decode(in->api_version, in->csr.data, in->csr.len, &csr, e) < 0) {
		err_wrap(e, "invalid CSR");
		goto out;
	}
	if (ratls_csr_verify(&csr, in->csr.data, in->csr.len, in->signature.data, in->signature.len, e) < 0) {
		err_wrap(e, "invalid CSR signature");
		goto out;
	}
	if (!csr.attestation_len) {
		err_set(e, "No attestation provided");
		goto out;
	}
	if (ratls_verify_bytes(k->verifier, csr.attestation, csr.attestation_len, 0, &v, e) < 0) {
		err_wrap(e, "invalid quote");
		goto out;
	}
	ratls_spki_report_data(csr.pubkey, csr.pubkey_len, rd);
	if (!ct_memeq(rd, v.att.report_data, 64)) {
		err_set(e, "invalid quote: attestation is not bound to the CSR public key");
		goto out;
	}
	if (kms_authorize_verified(k, &v, in->vm_config, false, true, &c, &app_info, e) < 0)
		goto out;
	if (kms_app_ca_key(k->keys.root_ca_scalar, c.app_id, ca_scalar, e) < 0 ||
	    !(ca_key = p256_pkey_from_scalar(ca_scalar, e)))
		goto out;
	if (!(app_ca = ratls_cert_app_ca(ca_key, c.app_id, 20, k->keys.root_ca_cert, k->keys.root_ca_key, e)))
		goto out;
	if (csr.config.ext_quote) {
		if (attestation_decode(csr.attestation, csr.attestation_len, &a, e) < 0 ||
		    attestation_strip_for_cert(&a, e) < 0 || attestation_encode(&a, &stripped, e) < 0)
			goto out;
	}
	leaf = ratls_cert_app_leaf(&csr, c.app_id, 20, stripped.data, stripped.len, app_info.data,
				   app_info.len, app_ca, ca_key, e);
	if (!leaf)
		goto out;
	out->certificate_chain = calloc(3, sizeof(char *));
	if (!out->certificate_chain)
		abort();
	out->certificate_chain[0] = kms_cert_pem(leaf);
	out->certificate_chain[1] = kms_cert_pem(app_ca);
	out->certificate_chain[2] = xstrdup_or_empty(k->keys.root_ca_cert_pem);
	out->n_certificate_chain = 3;
	if (!out->certificate_chain[0] || !out->certificate_chain[1]) {
		err_set(e, "encode certificate chain");
		goto out;
	}
	rc = 0;
out:
	secure_zero(ca_scalar, sizeof(ca_scalar));
	attestation_free(&a);
	buf_free(&app_info);
	buf_free(&stripped);
	ratls_verified_free(&v);
	ratls_csr_free(&csr);
	return rc;
}

static int sign_cert(struct prpc_call *call, const void *in, void *out, struct err *e)
{
	struct kms *k = prpc_call_arg(call);
	int rc = sign_cert_inner(k, in, out, e);

	count(k, rc);
	return rc;
}

static const struct prpc_method kms_methods[] = {
    PRPC_METHOD_BLOCKING("GetAppKey", kms__get_app_key_request, kms__app_key_response, get_app_key),
    PRPC_METHOD_BLOCKING("GetKmsKey", kms__get_kms_key_request, kms__kms_key_response, get_kms_key),
    PRPC_METHOD_BLOCKING("GetAppEnvEncryptPubKey", kms__app_id, kms__public_key_response, get_env_pubkey),
    PRPC_METHOD_BLOCKING("GetMeta", google__protobuf__empty, kms__get_meta_response, get_meta),
    PRPC_METHOD_BLOCKING("GetTempCaCert", google__protobuf__empty, kms__get_temp_ca_cert_response,
			 get_temp_ca_cert),
    PRPC_METHOD_BLOCKING("SignCert", kms__sign_cert_request, kms__sign_cert_response, sign_cert),
};
static const char *const kms_prefixes[] = {"KMS.", NULL};

static void metrics(struct http_request *req, void *arg)
{
	struct kms *k = arg;
	struct buf b = BUF_INIT;

	buf_printf(&b,
		   "# HELP dstack_kms_attestation_requests_total Key requests that carry an attestation "
		   "(GetAppKey, GetKmsKey, SignCert).\n"
		   "# TYPE dstack_kms_attestation_requests_total counter\n"
		   "dstack_kms_attestation_requests_total %lu\n"
		   "# HELP dstack_kms_attestation_failures_total Such requests that failed.\n"
		   "# TYPE dstack_kms_attestation_failures_total counter\n"
		   "dstack_kms_attestation_failures_total %lu\n",
		   atomic_load(&k->attest_requests), atomic_load(&k->attest_failures));
	http_respond(req, 200, "text/plain; version=0.0.4", b.data, b.len);
	buf_free(&b);
}

int kms_main_mount(struct kms *k, struct http_server *srv, struct err *e)
{
	static struct prpc_service svc = {"KMS", kms_prefixes, kms_methods, ARRAY_SIZE(kms_methods), NULL};
	const struct prpc_service *svcs[] = {&svc};

	svc.arg = k;
	if (k->cfg.metrics_enabled)
		http_server_route(srv, "GET", "/metrics", false, metrics, k);
	return prpc_mount(srv, "/prpc/", svcs, 1, e);
}
