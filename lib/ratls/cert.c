/*
 * cert.c — building the dstack certificates with OpenSSL's X509 API.
 *
 * Standard extensions go through X509V3_EXT_conf_nid with a V3 context
 * that names the issuer, so key identifiers are computed by OpenSSL; the
 * private RA-TLS extensions go through ratls_ext_add (ext.h).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "codec/pem.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "ratls/cert.h"
#include "ratls/ext.h"

EVP_PKEY *ratls_key_generate(struct err *e)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	if (!k)
		err_ssl(e, "generate P-256 key");
	return k;
}

static int add_conf_ext(X509 *cert, X509V3_CTX *ctx, int nid, const char *value, struct err *e)
{
	_cleanup_(X509_EXTENSION_freep) X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);

	if (!ext || !X509_add_ext(cert, ext, -1))
		return err_ssl(e, "certificate extension %s = %s", OBJ_nid2sn(nid), value);
	return 0;
}

static int set_name(X509_NAME *name, const char *org, const char *cn, struct err *e)
{
	if (org &&
	    !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)org, -1, -1, 0))
		return err_ssl(e, "subject O");
	if (cn && *cn &&
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0))
		return err_ssl(e, "subject CN");
	return 0;
}

static int add_sans(X509 *cert, const char *const *sans, size_t n, struct err *e)
{
	if (n == 0)
		return 0;
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	if (!gens)
		return err_ssl(e, "SAN");
	for (size_t i = 0; i < n; i++) {
		unsigned char ip[16];
		GENERAL_NAME *g = GENERAL_NAME_new();
		ASN1_STRING *s = NULL;
		int type;
		if (!g)
			goto ssl_fail;
		if (inet_pton(AF_INET, sans[i], ip) == 1) {
			type = GEN_IPADD;
			s = ASN1_OCTET_STRING_new();
			if (s && !ASN1_OCTET_STRING_set(s, ip, 4))
				goto ssl_fail_g;
		} else if (inet_pton(AF_INET6, sans[i], ip) == 1) {
			type = GEN_IPADD;
			s = ASN1_OCTET_STRING_new();
			if (s && !ASN1_OCTET_STRING_set(s, ip, 16))
				goto ssl_fail_g;
		} else {
			type = GEN_DNS;
			s = ASN1_IA5STRING_new();
			if (s && !ASN1_STRING_set(s, sans[i], -1))
				goto ssl_fail_g;
		}
		if (!s)
			goto ssl_fail_g;
		GENERAL_NAME_set0_value(g, type, s);
		if (!sk_GENERAL_NAME_push(gens, g)) {
			GENERAL_NAME_free(g);
			goto ssl_fail;
		}
		continue;
	ssl_fail_g:
		ASN1_STRING_free(s);
		GENERAL_NAME_free(g);
		goto ssl_fail;
	}
	int ok = X509_add1_ext_i2d(cert, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT);
	GENERAL_NAMES_free(gens);
	if (ok != 1)
		return err_ssl(e, "SAN");
	return 0;
ssl_fail:
	GENERAL_NAMES_free(gens);
	return err_ssl(e, "SAN");
}

static int set_serial(X509 *cert, struct err *e)
{
	unsigned char raw[16];
	_cleanup_(BN_freep) BIGNUM *bn = NULL;

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return err_ssl(e, "serial");
	raw[0] &= 0x7f;
	raw[0] |= 0x01; /* positive, full length */
	bn = BN_bin2bn(raw, sizeof(raw), NULL);
	if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)))
		return err_ssl(e, "serial");
	return 0;
}

static int add_ratls_exts(X509 *cert, const struct ratls_cert_params *p, struct err *e)
{
	if (p->quote && ratls_ext_add(cert, RATLS_OID_QUOTE, p->quote, p->quote_len, e) < 0)
		return -1;
	if (p->event_log && ratls_ext_add(cert, RATLS_OID_EVENT_LOG, p->event_log, p->event_log_len, e) < 0)
		return -1;
	if (p->app_id && ratls_ext_add(cert, RATLS_OID_APP_ID, p->app_id, p->app_id_len, e) < 0)
		return -1;
	if (p->usage && ratls_ext_add(cert, RATLS_OID_USAGE, p->usage, strlen(p->usage), e) < 0)
		return -1;
	if (p->attestation &&
	    ratls_ext_add(cert, RATLS_OID_ATTESTATION, p->attestation, p->attestation_len, e) < 0)
		return -1;
	if (p->app_info && ratls_ext_add(cert, RATLS_OID_APP_INFO, p->app_info, p->app_info_len, e) < 0)
		return -1;
	return 0;
}

X509 *ratls_cert_build(const struct ratls_cert_params *p, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
		       struct err *e)
{
	_cleanup_(X509_freep) X509 *cert = X509_new();
	time_t now = time(NULL);
	time_t nb = p->not_before ? p->not_before : now - RATLS_CERT_BACKDATE;
	time_t na = p->not_after ? p->not_after : now + (time_t)RATLS_CERT_DEFAULT_DAYS * 86400;
	X509V3_CTX ctx;
	char bc[64];

	if (!cert || !X509_set_version(cert, X509_VERSION_3)) {
		err_ssl(e, "new certificate");
		return NULL;
	}
	if (na <= nb) {
		err_set(e, "certificate validity: not_after must be after not_before");
		return NULL;
	}
	if (set_serial(cert, e) < 0 || set_name(X509_get_subject_name(cert), p->org, p->cn, e) < 0)
		return NULL;
	if (!X509_set_issuer_name(cert,
				  issuer ? X509_get_subject_name(issuer) : X509_get_subject_name(cert)) ||
	    !X509_set_pubkey(cert, key) || !ASN1_TIME_set(X509_getm_notBefore(cert), nb) ||
	    !ASN1_TIME_set(X509_getm_notAfter(cert), na)) {
		err_ssl(e, "certificate fields");
		return NULL;
	}
	X509V3_set_ctx(&ctx, issuer ? issuer : cert, cert, NULL, NULL, 0);
	if (p->ca) {
		if (p->pathlen >= 0)
			snprintf(bc, sizeof(bc), "critical,CA:TRUE,pathlen:%d", p->pathlen);
		else
			snprintf(bc, sizeof(bc), "critical,CA:TRUE");
		if (add_conf_ext(cert, &ctx, NID_basic_constraints, bc, e) < 0 ||
		    add_conf_ext(cert, &ctx, NID_key_usage, "critical,digitalSignature,keyCertSign,cRLSign",
				 e) < 0)
			return NULL;
	} else if (add_conf_ext(cert, &ctx, NID_key_usage, "critical,digitalSignature", e) < 0) {
		return NULL;
	}
	if (p->server_auth || p->client_auth) {
		const char *eku = p->server_auth && p->client_auth ? "serverAuth,clientAuth"
				  : p->server_auth                 ? "serverAuth"
								   : "clientAuth";
		if (add_conf_ext(cert, &ctx, NID_ext_key_usage, eku, e) < 0)
			return NULL;
	}
	if (add_conf_ext(cert, &ctx, NID_subject_key_identifier, "hash", e) < 0)
		return NULL;
	if (issuer && add_conf_ext(cert, &ctx, NID_authority_key_identifier, "keyid", e) < 0)
		return NULL;
	if (add_sans(cert, p->sans, p->n_sans, e) < 0 || add_ratls_exts(cert, p, e) < 0)
		return NULL;
	if (issuer && X509_check_private_key(issuer, issuer_key) != 1) {
		ERR_clear_error();
		err_set(e, "issuer key does not match the issuer certificate");
		return NULL;
	}
	if (X509_sign(cert, issuer ? issuer_key : key, EVP_sha256()) <= 0) {
		err_ssl(e, "sign certificate");
		return NULL;
	}
	return TAKE_PTR(cert);
}

X509 *ratls_cert_root_ca(EVP_PKEY *key, struct err *e)
{
	struct ratls_cert_params p = {.org = "Dstack", .cn = "Dstack KMS CA", .ca = true, .pathlen = 1};

	return ratls_cert_build(&p, key, NULL, NULL, e);
}

X509 *ratls_cert_temp_ca(EVP_PKEY *key, struct err *e)
{
	struct ratls_cert_params p = {
	    .org = "Dstack", .cn = "Dstack Client Temp CA", .ca = true, .pathlen = 0};

	return ratls_cert_build(&p, key, NULL, NULL, e);
}

X509 *ratls_cert_kms_rpc(EVP_PKEY *key, const char *domain, const uint8_t *attestation, size_t att_len,
			 X509 *root_ca, EVP_PKEY *root_key, struct err *e)
{
	const char *sans[] = {domain};
	struct ratls_cert_params p = {
	    .cn = domain,
	    .sans = sans,
	    .n_sans = 1,
	    .usage = RATLS_USAGE_KMS_RPC,
	    .attestation = attestation,
	    .attestation_len = att_len,
	};

	return ratls_cert_build(&p, key, root_ca, root_key, e);
}

X509 *ratls_cert_ra_client(EVP_PKEY *key, const uint8_t *attestation, size_t att_len, X509 *temp_ca,
			   EVP_PKEY *temp_key, struct err *e)
{
	struct ratls_cert_params p = {
	    .cn = "RA-TLS TEMP Cert",
	    .attestation = attestation,
	    .attestation_len = att_len,
	};

	return ratls_cert_build(&p, key, temp_ca, temp_key, e);
}

X509 *ratls_cert_app_ca(EVP_PKEY *key, const uint8_t *app_id, size_t app_id_len, X509 *root_ca,
			EVP_PKEY *root_key, struct err *e)
{
	struct ratls_cert_params p = {
	    .org = "Dstack",
	    .cn = "Dstack App CA",
	    .ca = true,
	    .pathlen = 0,
	    .app_id = app_id,
	    .app_id_len = app_id_len,
	    .usage = RATLS_USAGE_APP_CA,
	};

	return ratls_cert_build(&p, key, root_ca, root_key, e);
}

X509 *ratls_cert_app_leaf(const struct ratls_csr *csr, const uint8_t *app_id, size_t app_id_len,
			  const uint8_t *attestation, size_t att_len, const uint8_t *app_info,
			  size_t app_info_len, X509 *app_ca, EVP_PKEY *app_ca_key, struct err *e)
{
	const struct ratls_cert_config *k = &csr->config;
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = der_read_public_key(csr->pubkey, csr->pubkey_len, e);

	if (!pub) {
		err_wrap(e, "CSR pubkey");
		return NULL;
	}
	if ((k->has_not_before && k->not_before > (uint64_t)INT64_MAX / 2) ||
	    (k->has_not_after && k->not_after > (uint64_t)INT64_MAX / 2)) {
		err_set(e, "certificate validity out of range");
		return NULL;
	}
	if (k->ext_quote && !attestation) {
		err_set(e, "ext_quote requested but no attestation given");
		return NULL;
	}
	struct ratls_cert_params p = {
	    .org = k->org_name,
	    .cn = k->subject,
	    .sans = (const char *const *)k->sans,
	    .n_sans = k->n_sans,
	    .server_auth = k->usage_server_auth,
	    .client_auth = k->usage_client_auth,
	    .app_id = app_id,
	    .app_id_len = app_id_len,
	    .usage = RATLS_USAGE_APP_CUSTOM,
	    .attestation = k->ext_quote ? attestation : NULL,
	    .attestation_len = att_len,
	    .app_info = k->ext_app_info ? app_info : NULL,
	    .app_info_len = app_info_len,
	    .not_before = k->has_not_before ? (time_t)k->not_before : 0,
	    .not_after = k->has_not_after ? (time_t)k->not_after : 0,
	};
	return ratls_cert_build(&p, pub, app_ca, app_ca_key, e);
}
