/*
 * collateral.c — raw collateral (JSON form), trust anchor selection, and the
 * one-time check that turns raw collateral into a dcap_collateral.
 *
 * Order of checks at load: root CRL signed by the root; each issuer chain
 * (PCK CRL issuer, TCB signing) verified to the root with the root CRL at
 * `now`; PCK CRL signed by its issuer; TCB Info and QE Identity signatures
 * (ECDSA P-256 over the exact JSON text) by the TCB signing key; the JSON
 * parsed; `now` inside every issueDate..nextUpdate. The resulting X509_STORE
 * (root + both CRLs) is what per-quote PCK chains are verified against.
 */
#include "tdx/collateral.h"

#include <limits.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/hex.h"
#include "tdx/ecdsa.h"
#include "tdx/pck.h"
#include "tdx/pck_cache.h"

#define COLLATERAL_JSON_MAX (4 << 20)

/* ---- raw JSON ---- */

static int dup_field(json_t *o, const char *key, char **out, struct err *e)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_string(v))
		return err_set(e, "collateral: missing string '%s'", key);
	*out = strdup(json_string_value(v));
	return *out ? 0 : err_set(e, "out of memory");
}

static int hex_field(json_t *o, const char *key, uint8_t **out, size_t *len, struct err *e)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_string(v))
		return err_set(e, "collateral: missing string '%s'", key);
	if (hex_decode_alloc(json_string_value(v), json_string_length(v), out, len, e) < 0)
		return err_wrap(e, "collateral '%s'", key);
	return 0;
}

int dcap_collateral_raw_from_json(const char *text, size_t len, struct dcap_collateral_raw *r, struct err *e)
{
	json_error_t je;

	memset(r, 0, sizeof(*r));
	if (len > COLLATERAL_JSON_MAX)
		return err_set(e, "collateral too large");
	_cleanup_json_ json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(o))
		return err_set(e, "collateral: invalid JSON: %s", o ? "not an object" : je.text);
	if (dup_field(o, "pck_crl_issuer_chain", &r->pck_crl_issuer_chain, e) < 0 ||
	    hex_field(o, "root_ca_crl", &r->root_ca_crl, &r->root_ca_crl_len, e) < 0 ||
	    hex_field(o, "pck_crl", &r->pck_crl, &r->pck_crl_len, e) < 0 ||
	    dup_field(o, "tcb_info_issuer_chain", &r->tcb_info_issuer_chain, e) < 0 ||
	    dup_field(o, "tcb_info", &r->tcb_info, e) < 0 ||
	    dup_field(o, "tcb_info_signature", &r->tcb_info_signature, e) < 0 ||
	    dup_field(o, "qe_identity_issuer_chain", &r->qe_identity_issuer_chain, e) < 0 ||
	    dup_field(o, "qe_identity", &r->qe_identity, e) < 0 ||
	    dup_field(o, "qe_identity_signature", &r->qe_identity_signature, e) < 0) {
		dcap_collateral_raw_free(r);
		return -1;
	}
	return 0;
}

char *dcap_collateral_raw_to_json(const struct dcap_collateral_raw *r)
{
	_cleanup_free_ char *rc = hex_encode_alloc(r->root_ca_crl, r->root_ca_crl_len);
	_cleanup_free_ char *pc = hex_encode_alloc(r->pck_crl, r->pck_crl_len);
	_cleanup_json_ json_t *o =
	    json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "pck_crl_issuer_chain",
		      r->pck_crl_issuer_chain, "root_ca_crl", rc, "pck_crl", pc, "tcb_info_issuer_chain",
		      r->tcb_info_issuer_chain, "tcb_info", r->tcb_info, "tcb_info_signature",
		      r->tcb_info_signature, "qe_identity_issuer_chain", r->qe_identity_issuer_chain,
		      "qe_identity", r->qe_identity, "qe_identity_signature", r->qe_identity_signature);

	return o ? json_dumps(o, JSON_INDENT(1)) : NULL;
}

void dcap_collateral_raw_free(struct dcap_collateral_raw *r)
{
	free(r->pck_crl_issuer_chain);
	free(r->root_ca_crl);
	free(r->pck_crl);
	free(r->tcb_info_issuer_chain);
	free(r->tcb_info);
	free(r->tcb_info_signature);
	free(r->qe_identity_issuer_chain);
	free(r->qe_identity);
	free(r->qe_identity_signature);
	memset(r, 0, sizeof(*r));
}

/* ---- trust anchor ---- */

X509 *dcap_intel_root_ca(void)
{
	const unsigned char *p = DCAP_INTEL_ROOT_CA_DER;

	return d2i_X509(NULL, &p, (long)DCAP_INTEL_ROOT_CA_DER_LEN);
}

int dcap_trust_anchor_select(bool insecure_allow_external, const char *root_ca_path, X509 **out,
			     struct err *e)
{
	_cleanup_free_ uint8_t *data = NULL;
	size_t len;

	*out = NULL;
	if (!root_ca_path || !*root_ca_path) {
		*out = dcap_intel_root_ca();
		return *out ? 0 : err_ssl(e, "embedded Intel root CA");
	}
	if (!insecure_allow_external)
		return err_set(e,
			       "root_ca.tdx '%s' refused: external trust anchors need "
			       "insecure_allow_external_trust_anchors = true",
			       root_ca_path);
	if (file_read_all(root_ca_path, 1 << 16, &data, &len, e) < 0)
		return err_wrap(e, "TDX root CA");
	_cleanup_(BIO_free_allp) BIO *bio = BIO_new_mem_buf(data, (int)len);
	X509 *c = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	if (!c) {
		const unsigned char *p = data;
		ERR_clear_error();
		c = d2i_X509(NULL, &p, (long)len);
	}
	if (!c)
		return err_ssl(e, "TDX root CA '%s' is neither PEM nor DER", root_ca_path);
	*out = c;
	return 0;
}

/* ---- load ---- */

static void window_cert(struct dcap_collateral *c, X509 *x)
{
	time_t nb = 0, na = 0;
	struct tm tm;

	if (ASN1_TIME_to_tm(X509_get0_notBefore(x), &tm))
		nb = timegm(&tm);
	if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm))
		na = timegm(&tm);
	if (nb > c->valid_from)
		c->valid_from = nb;
	if (na < c->valid_until)
		c->valid_until = na;
}

static void window(struct dcap_collateral *c, time_t from, time_t until)
{
	if (from > c->valid_from)
		c->valid_from = from;
	if (until < c->valid_until)
		c->valid_until = until;
}

static int window_crl(struct dcap_collateral *c, X509_CRL *crl, struct err *e)
{
	struct tm tm;
	time_t from, until;

	if (!X509_CRL_get0_nextUpdate(crl))
		return err_set(e, "CRL has no nextUpdate");
	if (!ASN1_TIME_to_tm(X509_CRL_get0_lastUpdate(crl), &tm))
		return err_set(e, "CRL has a bad thisUpdate");
	from = timegm(&tm);
	if (!ASN1_TIME_to_tm(X509_CRL_get0_nextUpdate(crl), &tm))
		return err_set(e, "CRL has a bad nextUpdate");
	until = timegm(&tm);
	window(c, from, until);
	return 0;
}

static X509_CRL *crl_parse(const uint8_t *der, size_t len, const char *what, struct err *e)
{
	const unsigned char *p = der;
	X509_CRL *crl = len < LONG_MAX ? d2i_X509_CRL(NULL, &p, (long)len) : NULL;

	if (!crl)
		err_ssl(e, "%s is not a DER CRL", what);
	return crl;
}

/* Verify `chain` (leaf first) to the store's root at `now`; returns the leaf. */
static X509 *verify_chain(X509_STORE *store, const char *pem, time_t now, const char *what, struct err *e)
{
	_cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = pem_chain_parse(pem, strlen(pem), e);
	_cleanup_(X509_STORE_CTX_freep) X509_STORE_CTX *ctx = X509_STORE_CTX_new();

	if (!chain) {
		err_wrap(e, "%s", what);
		return NULL;
	}
	X509 *leaf = sk_X509_value(chain, 0);
	if (!ctx || !X509_STORE_CTX_init(ctx, store, leaf, chain)) {
		err_ssl(e, "%s", what);
		return NULL;
	}
	X509_STORE_CTX_set_time(ctx, 0, now);
	if (X509_verify_cert(ctx) != 1) {
		err_set(e, "%s: %s", what, X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
		return NULL;
	}
	X509_up_ref(leaf);
	return leaf;
}

static int check_json_signature(X509 *signer, const char *json, const char *sig_hex, const char *what,
				struct err *e)
{
	uint8_t sig[64];

	if (hex_decode_exact(sig_hex, sig, sizeof(sig), e) < 0)
		return err_wrap(e, "%s signature", what);
	int rc = ecdsa_p256_verify_raw(X509_get0_pubkey(signer), json, strlen(json), sig, e);
	if (rc < 0)
		return err_wrap(e, "%s signature", what);
	if (rc == 0)
		return err_set(e, "%s signature does not verify", what);
	return 0;
}

static X509_STORE *new_store(X509 *root, time_t now, X509_CRL *root_crl, X509_CRL *pck_crl, struct err *e)
{
	_cleanup_(X509_STORE_freep) X509_STORE *s = X509_STORE_new();

	if (!s || !X509_STORE_add_cert(s, root) || (root_crl && !X509_STORE_add_crl(s, root_crl)) ||
	    (pck_crl && !X509_STORE_add_crl(s, pck_crl))) {
		err_ssl(e, "X509 store");
		return NULL;
	}
	X509_STORE_set_flags(s, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
	(void)now;
	return TAKE_PTR(s);
}

static int load(struct dcap_collateral *c, const struct dcap_collateral_raw *raw, time_t now, struct err *e)
{
	_cleanup_(X509_CRL_freep) X509_CRL *root_crl = NULL, *pck_crl = NULL;
	_cleanup_(X509_STORE_freep) X509_STORE *root_only = NULL;
	_cleanup_(X509_freep) X509 *pck_ca = NULL, *tcb_signer = NULL, *qe_signer = NULL;
	char tbuf[2][32];

	window_cert(c, c->root);
	if (!(root_crl = crl_parse(raw->root_ca_crl, raw->root_ca_crl_len, "root CA CRL", e)))
		return -1;
	if (X509_CRL_verify(root_crl, X509_get0_pubkey(c->root)) != 1)
		return err_set(e, "root CA CRL is not signed by the trust anchor");
	if (window_crl(c, root_crl, e) < 0)
		return err_wrap(e, "root CA CRL");

	/* Issuer chains: root + root CRL only. */
	if (!(root_only = new_store(c->root, now, root_crl, NULL, e)))
		return -1;
	if (!(pck_ca = verify_chain(root_only, raw->pck_crl_issuer_chain, now, "PCK CRL issuer chain", e)))
		return -1;
	if (!(pck_crl = crl_parse(raw->pck_crl, raw->pck_crl_len, "PCK CRL", e)))
		return -1;
	if (X509_CRL_verify(pck_crl, X509_get0_pubkey(pck_ca)) != 1)
		return err_set(e, "PCK CRL is not signed by its issuer chain");
	if (window_crl(c, pck_crl, e) < 0)
		return err_wrap(e, "PCK CRL");
	window_cert(c, pck_ca);

	if (!(tcb_signer =
		  verify_chain(root_only, raw->tcb_info_issuer_chain, now, "TCB Info issuer chain", e)))
		return -1;
	if (check_json_signature(tcb_signer, raw->tcb_info, raw->tcb_info_signature, "TCB Info", e) < 0)
		return -1;
	window_cert(c, tcb_signer);
	if (!(qe_signer =
		  verify_chain(root_only, raw->qe_identity_issuer_chain, now, "QE Identity issuer chain", e)))
		return -1;
	if (check_json_signature(qe_signer, raw->qe_identity, raw->qe_identity_signature, "QE Identity", e) <
	    0)
		return -1;
	window_cert(c, qe_signer);

	if (dcap_tcb_info_parse(raw->tcb_info, &c->tcb, e) < 0 ||
	    dcap_qe_identity_parse(raw->qe_identity, &c->qe, e) < 0)
		return -1;
	window(c, c->tcb.issue_date, c->tcb.next_update);
	window(c, c->qe.issue_date, c->qe.next_update);
	if (now < c->valid_from || now > c->valid_until) {
		struct tm tm;
		time_t t[2] = {c->valid_from, c->valid_until};
		for (int i = 0; i < 2; i++)
			strftime(tbuf[i], sizeof(tbuf[i]), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t[i], &tm));
		return err_set(e, "collateral not valid at this time (valid %s .. %s)", tbuf[0], tbuf[1]);
	}
	if (!(c->store = new_store(c->root, now, root_crl, pck_crl, e)))
		return -1;
	if (!(c->pck_cache = pck_cache_new()))
		return err_set(e, "out of memory");
	return 0;
}

int dcap_collateral_load(struct dcap_collateral **out, const struct dcap_collateral_raw *raw, X509 *root,
			 time_t now, struct err *e)
{
	struct dcap_collateral *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (!c)
		return err_set(e, "out of memory");
	c->valid_from = 0;
	c->valid_until = (time_t)INT64_MAX;
	if (root) {
		X509_up_ref(root);
		c->root = root;
	} else if (!(c->root = dcap_intel_root_ca())) {
		free(c);
		return err_ssl(e, "embedded Intel root CA");
	}
	if (!raw->pck_crl_issuer_chain || !raw->tcb_info || !raw->qe_identity ||
	    !raw->tcb_info_issuer_chain || !raw->qe_identity_issuer_chain || !raw->tcb_info_signature ||
	    !raw->qe_identity_signature) {
		dcap_collateral_free(c);
		return err_set(e, "Invalid collateral: incomplete");
	}
	if (load(c, raw, now, e) < 0) {
		dcap_collateral_free(c);
		return err_wrap(e, "Invalid collateral");
	}
	*out = c;
	return 0;
}

void dcap_collateral_free(struct dcap_collateral *c)
{
	if (!c)
		return;
	X509_free(c->root);
	X509_STORE_free(c->store);
	pck_cache_free(c->pck_cache);
	dcap_tcb_info_clear(&c->tcb);
	dcap_qe_identity_clear(&c->qe);
	free(c);
}
