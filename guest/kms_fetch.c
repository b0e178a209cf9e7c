/*
 * kms_fetch.c — see kms_fetch.h. The server check runs inside the TLS
 * handshake (SSL_CTX cert-verify callback): first the ordinary chain check
 * against the KMS root CA, then the RA-TLS checks on the leaf, so no
 * request byte is sent to an unattested server.
 */
#include "kms_fetch.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "attest/attestation.h"
#include "codec/pem.h"
#include "core/cleanup.h"
#include "core/log.h"
#include "core/mem.h"
#include "prpc/client.h"
#include "prpc/json.h"
#include "ratls/cert.h"
#include "ratls/ext.h"
#include "rtevent.h"

struct server_check {
	struct ratls_verifier *verifier;
	struct err e;
	bool failed;
};

static int check_server(X509_STORE_CTX *sctx, void *arg)
{
	struct server_check *c = arg;
	struct ratls_ext ext;
	struct ratls_verified r;

	if (X509_verify_cert(sctx) <= 0) {
		err_set(&c->e, "KMS certificate not issued by its root CA: %s",
			X509_verify_cert_error_string(X509_STORE_CTX_get_error(sctx)));
		c->failed = true;
		return 0;
	}
	X509 *leaf = X509_STORE_CTX_get0_cert(sctx);
	memset(&ext, 0, sizeof(ext));
	if (ratls_ext_read(leaf, &ext, &c->e) < 0) {
		c->failed = true;
		return 0;
	}
	bool usage_ok = ext.usage && strcmp(ext.usage, RATLS_USAGE_KMS_RPC) == 0;
	ratls_ext_free(&ext);
	if (!usage_ok) {
		err_set(&c->e, "KMS certificate lacks usage %s", RATLS_USAGE_KMS_RPC);
		c->failed = true;
		return 0;
	}
	if (ratls_verify_peer_cert(c->verifier, leaf, 0, &r, &c->e) < 0) {
		err_wrap(&c->e, "KMS attestation");
		c->failed = true;
		return 0;
	}
	ratls_verified_free(&r);
	return 1;
}

static int install_check(SSL_CTX *ctx, void *arg)
{
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_cert_verify_callback(ctx, check_server, arg);
	return 0;
}

static int spki_of_pem(const char *pem, uint8_t **spki, size_t *len, struct err *e)
{
	_cleanup_(X509_freep) X509 *c = pem_read_cert(pem, strlen(pem), e);
	if (!c)
		return -1;
	EVP_PKEY *pk = X509_get0_pubkey(c);
	if (!pk)
		return err_set(e, "KMS root CA has no public key");
	return der_write_public_key(pk, spki, len, e);
}

static int try_one(const struct kms_fetch_opts *o, const char *url, struct kms_fetch_result *out,
		   struct err *e)
{
	char base[1024];
	size_t ul = strlen(url);
	Kms__GetTempCaCertResponse *tmp = NULL;
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL, *tmp_key = NULL;
	_cleanup_(X509_freep) X509 *tmp_ca = NULL, *client = NULL;
	struct attestation att;
	_cleanup_(buf_freep) struct buf ab = {0};
	_cleanup_free_ char *cert_pem = NULL;
	char *key_pem = NULL;
	uint8_t rd[64];
	int rc = -1;

	snprintf(base, sizeof(base), "%.*s%s", (int)(ul && url[ul - 1] == '/' ? ul - 1 : ul), url,
		 ul >= 5 && strcmp(url + ul - 5, "/prpc") == 0 ? "" : "/prpc");
	struct prpc_client plain = {.base = base, .http = {.insecure = true, .timeout_ms = 30000}};
	if (prpc_client_call(&plain, "GetTempCaCert", NULL, &kms__get_temp_ca_cert_response__descriptor,
			     (ProtobufCMessage **)&tmp, e) < 0)
		return err_wrap(e, "GetTempCaCert");
	tmp_ca = pem_read_cert(tmp->temp_ca_cert, strlen(tmp->temp_ca_cert), e);
	tmp_key = tmp_ca ? pem_read_private_key(tmp->temp_ca_key, strlen(tmp->temp_ca_key), e) : NULL;
	if (!tmp_key) {
		err_wrap(e, "temp CA");
		goto out;
	}
	key = ratls_key_generate(e);
	if (!key || ratls_key_report_data(key, rd, e) < 0)
		goto out;
	if (rtevent_attestation(o->tee, o->runtime_events_file, o->runtime_events_lock, o->vm_config, rd,
				&att, e) < 0)
		goto out;
	rc = attestation_strip_for_cert(&att, e) < 0 ? -1 : attestation_encode(&att, &ab, e);
	attestation_free(&att);
	if (rc < 0)
		goto out;
	rc = -1;
	client = ratls_cert_ra_client(key, ab.data, ab.len, tmp_ca, tmp_key, e);
	if (!client || !(cert_pem = pem_write_cert(client, e)) || !(key_pem = pem_write_private_key(key, e)))
		goto out;

	struct server_check check = {.verifier = o->verifier};
	struct prpc_client mtls = {.base = base,
				   .http = {.ca_pem = tmp->ca_cert,
					    .cert_pem = cert_pem,
					    .key_pem = key_pem,
					    .ssl_ctx_hook = install_check,
					    .ssl_ctx_arg = &check,
					    .timeout_ms = 30000}};
	Kms__GetAppKeyRequest req = KMS__GET_APP_KEY_REQUEST__INIT;
	req.api_version = 1;
	req.vm_config = (char *)(o->vm_config ? o->vm_config : "");
	if (prpc_client_call(&mtls, "GetAppKey", &req.base, &kms__app_key_response__descriptor,
			     (ProtobufCMessage **)&out->keys, e) < 0) {
		if (check.failed)
			*e = check.e;
		err_wrap(e, "GetAppKey");
		goto out;
	}
	out->url = strdup(url);
	out->root_ca_pem = strdup(tmp->ca_cert);
	out->tmp_ca_cert = strdup(tmp->temp_ca_cert);
	out->tmp_ca_key = strdup(tmp->temp_ca_key);
	if (!out->url || !out->root_ca_pem || !out->tmp_ca_cert || !out->tmp_ca_key) {
		err_set(e, "out of memory");
		goto out;
	}
	if (spki_of_pem(out->root_ca_pem, &out->root_spki, &out->root_spki_len, e) < 0)
		goto out;
	rc = 0;
out:
	if (key_pem) {
		secure_zero(key_pem, strlen(key_pem));
		free(key_pem);
	}
	if (tmp)
		prpc_msg_free(&tmp->base);
	if (rc < 0)
		kms_fetch_result_free(out);
	return rc;
}

int kms_fetch_app_keys(const struct kms_fetch_opts *o, struct kms_fetch_result *out, struct err *e)
{
	struct err last = ERR_INIT;
	memset(out, 0, sizeof(*out));
	if (!o->n_urls)
		return err_set(e, "no KMS URLs in sys-config");
	for (size_t i = 0; i < o->n_urls; i++) {
		log_info("requesting app keys from KMS %s", o->urls[i]);
		if (try_one(o, o->urls[i], out, &last) == 0)
			return 0;
		log_warn("KMS %s: %s", o->urls[i], err_str(&last));
	}
	if (e)
		*e = last;
	return err_wrap(e, "Failed to get app keys from the KMS");
}

void kms_fetch_result_free(struct kms_fetch_result *r)
{
	free(r->url);
	free(r->root_ca_pem);
	free(r->root_spki);
	free(r->tmp_ca_cert);
	if (r->tmp_ca_key) {
		secure_zero(r->tmp_ca_key, strlen(r->tmp_ca_key));
		free(r->tmp_ca_key);
	}
	if (r->keys) {
		ProtobufCBinaryData *secrets[] = {&r->keys->disk_crypt_key, &r->keys->env_crypt_key,
						  &r->keys->k256_key};
		for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
			if (secrets[i]->data)
				secure_zero(secrets[i]->data, secrets[i]->len);
		prpc_msg_free(&r->keys->base);
	}
	memset(r, 0, sizeof(*r));
}
