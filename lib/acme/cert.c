/*
 * cert.c — CSRs, returned chains and stored certificates (see cert.h).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "acme/cert.h"
#include "codec/pem.h"
#include "core/buf.h"
#include "core/cleanup.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(GENERAL_NAMES *, GENERAL_NAMES_free)

int acme_csr_der(EVP_PKEY *key, const char *const *names, size_t n_names, uint8_t **der, size_t *len,
		 struct err *e)
{
	_cleanup_(X509_REQ_freep) X509_REQ *req = X509_REQ_new();
	_cleanup_buf_ struct buf san = BUF_INIT;
	STACK_OF(X509_EXTENSION) *exts = NULL;
	X509_EXTENSION *ext;
	uint8_t *out = NULL;
	int n;

	if (n_names == 0)
		return err_set(e, "CSR needs at least one name");
	for (size_t i = 0; i < n_names; i++) {
		if (strpbrk(names[i], ",:\r\n"))
			return err_set(e, "CSR: bad DNS name %s", names[i]);
		buf_printf(&san, "%sDNS:%s", i ? "," : "", names[i]);
	}
	/* Version 1 (0), an empty subject: the names live in the SAN only. */
	if (!req || !X509_REQ_set_version(req, 0) || !X509_REQ_set_pubkey(req, key))
		return err_ssl(e, "CSR");
	ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, (const char *)san.data);
	exts = sk_X509_EXTENSION_new_null();
	if (!ext || !exts || !sk_X509_EXTENSION_push(exts, ext)) {
		X509_EXTENSION_free(ext);
		sk_X509_EXTENSION_free(exts);
		return err_ssl(e, "CSR subjectAltName");
	}
	n = X509_REQ_add_extensions(req, exts);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	if (!n || !X509_REQ_sign(req, key, EVP_sha256()))
		return err_ssl(e, "CSR sign");
	n = i2d_X509_REQ(req, &out);
	if (n <= 0)
		return err_ssl(e, "CSR DER");
	*der = out;
	*len = (size_t)n;
	return 0;
}

static time_t asn1_time(const ASN1_TIME *t)
{
	struct tm tm;

	if (!t || !ASN1_TIME_to_tm(t, &tm))
		return 0;
	return timegm(&tm);
}

static int read_info(X509 *leaf, struct acme_cert_info *out, struct err *e)
{
	_cleanup_(GENERAL_NAMES_freep) GENERAL_NAMES *gens =
	    X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	int n = gens ? sk_GENERAL_NAME_num(gens) : 0;

	memset(out, 0, sizeof(*out));
	out->not_before = asn1_time(X509_get0_notBefore(leaf));
	out->not_after = asn1_time(X509_get0_notAfter(leaf));
	if (!out->not_after)
		return err_set(e, "certificate has no readable notAfter");
	out->dns_names = calloc((size_t)n + 1, sizeof(char *));
	if (!out->dns_names)
		abort();
	for (int i = 0; i < n; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const unsigned char *s;
		int len;

		if (g->type != GEN_DNS)
			continue;
		s = ASN1_STRING_get0_data(g->d.dNSName);
		len = ASN1_STRING_length(g->d.dNSName);
		if (len <= 0 || memchr(s, 0, (size_t)len))
			continue;
		out->dns_names[out->n_dns_names] = strndup((const char *)s, (size_t)len);
		if (!out->dns_names[out->n_dns_names])
			abort();
		out->n_dns_names++;
	}
	return 0;
}

int acme_cert_info_read(const char *pem, size_t len, struct acme_cert_info *out, struct err *e)
{
	_cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = pem_read_chain(pem, len, e);

	memset(out, 0, sizeof(*out));
	if (!chain)
		return -1;
	return read_info(sk_X509_value(chain, 0), out, e);
}

bool acme_cert_info_covers(const struct acme_cert_info *ci, const char *const *names, size_t n_names)
{
	for (size_t i = 0; i < n_names; i++) {
		bool found = false;

		for (size_t j = 0; j < ci->n_dns_names && !found; j++)
			found = strcasecmp(ci->dns_names[j], names[i]) == 0;
		if (!found)
			return false;
	}
	return true;
}

void acme_cert_info_clear(struct acme_cert_info *ci)
{
	for (size_t i = 0; i < ci->n_dns_names; i++)
		free(ci->dns_names[i]);
	free(ci->dns_names);
	memset(ci, 0, sizeof(*ci));
}

int acme_check_chain(const char *chain_pem, EVP_PKEY *key, const char *const *names, size_t n_names,
		     struct err *e)
{
	_cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = pem_read_chain(chain_pem, strlen(chain_pem), e);
	struct acme_cert_info ci;
	bool covers;
	X509 *leaf;

	if (!chain)
		return err_wrap(e, "certificate from the CA");
	leaf = sk_X509_value(chain, 0);
	if (EVP_PKEY_eq(X509_get0_pubkey(leaf), key) != 1) {
		ERR_clear_error();
		return err_set(e, "certificate from the CA is not for our key");
	}
	if (read_info(leaf, &ci, e) < 0)
		return err_wrap(e, "certificate from the CA");
	covers = acme_cert_info_covers(&ci, names, n_names);
	acme_cert_info_clear(&ci);
	if (!covers)
		return err_set(e, "certificate from the CA does not name every requested domain");
	return 0;
}
