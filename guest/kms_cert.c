/*
 * kms_cert.c — see kms_cert.h. The KMS's own TLS certificate is not checked
 * on the SignCert call (reference behaviour): nothing secret is sent, the
 * KMS authorises on the CSR's attestation, and callers that rely on the
 * chain anchor it on the KMS root they got over the verified GetAppKey
 * channel.
 */
#include "kms_cert.h"

#include <stdlib.h>
#include <string.h>

#include "codec/pem.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "kms_rpc.pb-c.h"
#include "prpc/client.h"
#include "prpc/json.h"
#include "ratls/cert.h"
#include "ratls/ext.h"

int cert_csr_prepare(EVP_PKEY *key, const struct tls_cert_req *r, struct ratls_csr *csr,
		     uint8_t report_data[64], struct err *e)
{
	if (r->has_not_before && r->has_not_after && r->not_before >= r->not_after)
		return err_set(e, "Invalid certificate validity: not_before must be earlier than not_after");
	memset(csr, 0, sizeof(*csr));
	csr->confirm = (char *)RATLS_CSR_CONFIRM;
	if (der_write_public_key(key, &csr->pubkey, &csr->pubkey_len, e) < 0)
		return -1;
	csr->config.subject = (char *)(r->subject ? r->subject : "");
	csr->config.sans = (char **)r->alt_names;
	csr->config.n_sans = r->n_alt_names;
	csr->config.usage_server_auth = r->usage_server_auth;
	csr->config.usage_client_auth = r->usage_client_auth;
	csr->config.ext_quote = r->usage_ra_tls;
	csr->config.ext_app_info = r->with_app_info;
	csr->config.has_not_before = r->has_not_before;
	csr->config.not_before = r->not_before;
	csr->config.has_not_after = r->has_not_after;
	csr->config.not_after = r->not_after;
	ratls_spki_report_data(csr->pubkey, csr->pubkey_len, report_data);
	return 0;
}

void cert_csr_release(struct ratls_csr *csr)
{
	free(csr->pubkey);
	memset(csr, 0, sizeof(*csr));
}

void cert_chain_free(char **chain, size_t n)
{
	for (size_t i = 0; chain && i < n; i++)
		free(chain[i]);
	free(chain);
}

int kms_sign_cert(const char *kms_url, const char *vm_config, EVP_PKEY *key, struct ratls_csr *csr,
		  const struct attestation *att, char ***chain, size_t *n, struct err *e)
{
	_cleanup_(buf_freep) struct buf att_bytes = {0};
	_cleanup_(buf_freep) struct buf csr_bytes = {0};
	_cleanup_(buf_freep) struct buf sig = {0};
	char base[1024];

	if (!kms_url || !*kms_url)
		return err_set(e, "no KMS URL in app keys");
	if (attestation_encode(att, &att_bytes, e) < 0)
		return -1;
	csr->attestation = att_bytes.data;
	csr->attestation_len = att_bytes.len;
	ratls_csr_encode(csr, &csr_bytes);
	csr->attestation = NULL;
	csr->attestation_len = 0;
	if (ratls_csr_sign(key, csr_bytes.data, csr_bytes.len, &sig, e) < 0)
		return -1;
	Kms__SignCertRequest req = KMS__SIGN_CERT_REQUEST__INIT;
	req.api_version = 2;
	req.csr.data = csr_bytes.data;
	req.csr.len = csr_bytes.len;
	req.signature.data = sig.data;
	req.signature.len = sig.len;
	req.vm_config = (char *)(vm_config ? vm_config : "");
	size_t ul = strlen(kms_url);
	while (ul && kms_url[ul - 1] == '/')
		ul--;
	snprintf(base, sizeof(base), "%.*s%s", (int)ul, kms_url,
		 ul >= 5 && strncmp(kms_url + ul - 5, "/prpc", 5) == 0 ? "" : "/prpc");
	struct prpc_client cl = {.base = base, .http = {.insecure = true, .timeout_ms = 30000}};
	Kms__SignCertResponse *resp = NULL;
	if (prpc_client_call(&cl, "SignCert", &req.base, &kms__sign_cert_response__descriptor,
			     (ProtobufCMessage **)&resp, e) < 0)
		return err_wrap(e, "Failed to sign the certificate");
	if (resp->n_certificate_chain == 0) {
		prpc_msg_free(&resp->base);
		return err_set(e, "Failed to sign the certificate: the KMS returned an empty chain");
	}
	char **c = calloc(resp->n_certificate_chain, sizeof(char *));
	if (!c) {
		prpc_msg_free(&resp->base);
		return err_set(e, "out of memory");
	}
	for (size_t i = 0; i < resp->n_certificate_chain; i++) {
		c[i] = strdup(resp->certificate_chain[i] ? resp->certificate_chain[i] : "");
		if (!c[i]) {
			cert_chain_free(c, i);
			prpc_msg_free(&resp->base);
			return err_set(e, "out of memory");
		}
	}
	*n = resp->n_certificate_chain;
	*chain = c;
	prpc_msg_free(&resp->base);
	return 0;
}
