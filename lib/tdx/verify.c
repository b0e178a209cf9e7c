/*
 * verify.c — per-quote DCAP verification (see verify.h for the steps).
 *
 * Each check has its own message so an operator can tell which part of a
 * quote or its collateral is wrong. Cheap structural checks run before the
 * signature checks; the QE report is checked before the quote signature
 * because the attestation key is only trusted through it.
 */
#include "tdx/verify.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/cleanup.h"
#include "core/hex.h"
#include "tdx/ecdsa.h"
#include "tdx/pck_cache.h"

/* TD attributes: TUD bits 1-7 and SEC bits 8-26 are reserved and must be 0. */
#define TD_ATTR_RESERVED 0x07fffffeull

static int strings_add(struct dcap_strings *s, const struct dcap_strings *add, struct err *e)
{
	for (size_t i = 0; i < add->n; i++) {
		bool dup = false;
		for (size_t j = 0; j < s->n && !dup; j++)
			dup = strcmp(s->v[j], add->v[i]) == 0;
		if (dup)
			continue;
		char **nv = realloc(s->v, (s->n + 1) * sizeof(char *));
		if (!nv)
			return err_set(e, "out of memory");
		s->v = nv;
		if (!(s->v[s->n] = strdup(add->v[i])))
			return err_set(e, "out of memory");
		s->n++;
	}
	return 0;
}

void dcap_result_free(struct dcap_result *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->advisory_ids.n; i++)
		free(r->advisory_ids.v[i]);
	free(r->advisory_ids.v);
	memset(r, 0, sizeof(*r));
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

int dcap_quote_pck_info(const struct quote *q, struct pck_ext *ext, enum pck_ca_type *ca, struct err *e)
{
	_cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain =
	    pem_chain_parse(q->pck_chain_pem, q->pck_chain_len, e);

	if (!chain)
		return err_wrap(e, "PCK certificate chain");
	X509 *leaf = sk_X509_value(chain, 0);
	if (pck_ext_from_cert(leaf, ext, e) < 0)
		return -1;
	return ca ? pck_ca_type_of(leaf, ca, e) : 0;
}

static time_t asn1_time(const ASN1_TIME *t, time_t fallback)
{
	struct tm tm;

	return ASN1_TIME_to_tm(t, &tm) ? timegm(&tm) : fallback;
}

/*
 * Verify the quote's PCK chain against the collateral's store (or find it in
 * the collateral's cache of verified chains); returns the leaf public key and
 * fills the SGX extension and CA type.
 */
static EVP_PKEY *verify_pck_chain(const struct quote *q, const struct dcap_collateral *c, time_t now,
				  struct pck_ext *ext, enum pck_ca_type *ca, struct err *e)
{
	uint8_t digest[32];
	unsigned int dl = 0;

	if (!EVP_Digest(q->pck_chain_pem, q->pck_chain_len, digest, &dl, EVP_sha256(), NULL)) {
		err_ssl(e, "SHA-256");
		return NULL;
	}
	EVP_PKEY *hit = pck_cache_get(c->pck_cache, digest, now, ext, ca);
	if (hit)
		return hit;

	_cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain =
	    pem_chain_parse(q->pck_chain_pem, q->pck_chain_len, e);
	_cleanup_(X509_STORE_CTX_freep) X509_STORE_CTX *ctx = X509_STORE_CTX_new();

	if (!chain) {
		err_wrap(e, "PCK certificate chain");
		return NULL;
	}
	X509 *leaf = sk_X509_value(chain, 0);
	if (!ctx || !X509_STORE_CTX_init(ctx, c->store, leaf, chain)) {
		err_ssl(e, "PCK certificate chain");
		return NULL;
	}
	X509_STORE_CTX_set_time(ctx, 0, now);
	if (X509_verify_cert(ctx) != 1) {
		int depth = X509_STORE_CTX_get_error_depth(ctx);
		err_set(e, "PCK certificate chain: %s (depth %d)",
			X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)), depth);
		return NULL;
	}
	if (pck_ext_from_cert(leaf, ext, e) < 0 || pck_ca_type_of(leaf, ca, e) < 0) {
		err_wrap(e, "PCK certificate");
		return NULL;
	}
	/* The verified chain is valid while every certificate in it is. */
	time_t from = 0, until = (time_t)INT64_MAX;
	STACK_OF(X509) *verified = X509_STORE_CTX_get0_chain(ctx);
	for (int i = 0; i < sk_X509_num(verified); i++) {
		X509 *x = sk_X509_value(verified, i);
		time_t nb = asn1_time(X509_get0_notBefore(x), until),
		       na = asn1_time(X509_get0_notAfter(x), from);
		if (nb > from)
			from = nb;
		if (na < until)
			until = na;
	}
	EVP_PKEY *pub = X509_get0_pubkey(leaf);
	if (!pub || !EVP_PKEY_up_ref(pub)) {
		err_ssl(e, "PCK public key");
		return NULL;
	}
	pck_cache_put(c->pck_cache, digest, pub, ext, *ca, from, until);
	return pub;
}

static int check_qe(const struct quote *q, const struct dcap_collateral *c, EVP_PKEY *pck,
		    struct dcap_result *r, struct err *e)
{
	const struct sgx_report *qr = &q->qe_report;
	const struct dcap_qe_identity *id = &c->qe;
	uint8_t digest[32];

	int rc = ecdsa_p256_verify_raw(pck, qr->raw, sizeof(qr->raw), q->qe_report_signature, e);
	if (rc < 0)
		return err_wrap(e, "QE report signature");
	if (rc == 0)
		return err_set(e, "QE report signature by the PCK key does not verify");

	_cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL) ||
	    !EVP_DigestUpdate(md, q->att_key, sizeof(q->att_key)) ||
	    !EVP_DigestUpdate(md, q->qe_auth, q->qe_auth_len) || !EVP_DigestFinal_ex(md, digest, NULL))
		return err_ssl(e, "SHA-256");
	if (memcmp(digest, qr->report_data, 32) != 0 || !all_zero(qr->report_data + 32, 32))
		return err_set(e, "QE report data does not bind the attestation key");

	if (memcmp(qr->mr_signer, id->mrsigner, 32) != 0)
		return err_set(e, "QE identity mismatch: MRSIGNER");
	if (qr->isv_prod_id != id->isvprodid)
		return err_set(e, "QE identity mismatch: ISVPRODID %u, want %u", qr->isv_prod_id,
			       id->isvprodid);
	if ((qr->misc_select & id->miscselect_mask) != id->miscselect)
		return err_set(e, "QE identity mismatch: MISCSELECT");
	for (int i = 0; i < 16; i++) {
		if ((qr->attributes[i] & id->attributes_mask[i]) != id->attributes[i])
			return err_set(e, "QE identity mismatch: ATTRIBUTES");
	}
	for (size_t i = 0; i < id->n_levels; i++) {
		if (id->levels[i].isvsvn <= qr->isv_svn) {
			r->qe_status = id->levels[i].status;
			return strings_add(&r->advisory_ids, &id->levels[i].advisories, e);
		}
	}
	return err_set(e, "QE ISVSVN %u is below every QE TCB level", qr->isv_svn);
}

static int check_platform(const struct quote *q, const struct dcap_collateral *c, struct dcap_result *r,
			  struct err *e)
{
	const struct dcap_tcb_info *t = &c->tcb;

	for (size_t i = 0; i < t->n_levels; i++) {
		const struct dcap_platform_level *l = &t->levels[i];
		bool match = r->pck.pcesvn >= l->pcesvn;

		for (int k = 0; k < 16 && match; k++)
			match = r->pck.comp_svn[k] >= l->sgx_svn[k];
		for (int k = 0; k < 16 && match && quote_is_tdx(q); k++)
			match = q->td.tee_tcb_svn[k] >= l->tdx_svn[k];
		if (match) {
			r->platform_status = l->status;
			return strings_add(&r->advisory_ids, &l->advisories, e);
		}
	}
	return err_set(e, "platform TCB matches no TCB level (status unknown)");
}

static int check_module(const struct quote *q, const struct dcap_collateral *c, struct dcap_result *r,
			struct err *e)
{
	const struct dcap_tcb_info *t = &c->tcb;
	const struct td_report *td = &q->td;
	uint8_t version = td->tee_tcb_svn[1], isvsvn = td->tee_tcb_svn[0];
	char want[16];

	r->module_status = TCB_UP_TO_DATE;
	if (t->n_modules == 0 || version == 0) {
		if (!t->has_tdx_module)
			return 0;
		if (memcmp(td->mr_signer_seam, t->module_mrsigner, 48) != 0)
			return err_set(e, "TDX module MRSIGNER does not match TCB Info");
		for (int i = 0; i < 8; i++)
			if ((td->seam_attributes[i] & t->module_attributes_mask[i]) !=
			    t->module_attributes[i])
				return err_set(e, "TDX module attributes do not match TCB Info");
		return 0;
	}
	snprintf(want, sizeof(want), "TDX_%02X", version);
	for (size_t i = 0; i < t->n_modules; i++) {
		const struct dcap_module_identity *m = &t->modules[i];
		if (strcmp(m->id, want) != 0)
			continue;
		if (memcmp(td->mr_signer_seam, m->mrsigner, 48) != 0)
			return err_set(e, "TDX module %s MRSIGNER does not match", want);
		for (int k = 0; k < 8; k++)
			if ((td->seam_attributes[k] & m->attributes_mask[k]) != m->attributes[k])
				return err_set(e, "TDX module %s attributes do not match", want);
		for (size_t j = 0; j < m->n_levels; j++) {
			if (m->levels[j].isvsvn <= isvsvn) {
				r->module_status = m->levels[j].status;
				return strings_add(&r->advisory_ids, &m->levels[j].advisories, e);
			}
		}
		return err_set(e, "TDX module %s SVN %u is below every TCB level", want, isvsvn);
	}
	return err_set(e, "TDX module identity %s not in TCB Info", want);
}

static int check_td_attributes(const struct quote *q, struct err *e)
{
	uint64_t a = le64(q->td.td_attributes);

	if (a & TD_ATTR_DEBUG)
		return err_set(e, "TD is in debug mode");
	if (a & TD_ATTR_RESERVED)
		return err_set(e, "TD attributes have reserved bits set (0x%016llx)", (unsigned long long)a);
	if (!(a & TD_ATTR_SEPT_VE_DISABLE))
		return err_set(e, "TD attribute SEPT_VE_DISABLE is not set");
	if (!all_zero(q->td.mr_service_td, 48))
		return err_set(e, "MRSERVICETD is not zero");
	return 0;
}

static int verify(const struct quote *q, const struct dcap_collateral *c, time_t now, struct dcap_result *r,
		  struct err *e)
{
	bool tdx = quote_is_tdx(q);

	if (now < c->valid_from || now > c->valid_until)
		return err_set(e, "collateral not valid at this time");
	if (memcmp(q->header.qe_vendor_id, QUOTE_INTEL_QE_VENDOR_ID, 16) != 0)
		return err_set(e, "unknown QE vendor id");
	if (strcmp(c->tcb.id, tdx ? "TDX" : "SGX") != 0)
		return err_set(e, "TCB Info is for %s, quote is %s", c->tcb.id, tdx ? "TDX" : "SGX");
	if (strcmp(c->qe.id, tdx ? "TD_QE" : "QE") != 0)
		return err_set(e, "QE Identity is %s, quote needs %s", c->qe.id, tdx ? "TD_QE" : "QE");

	_cleanup_(EVP_PKEY_freep) EVP_PKEY *pck = verify_pck_chain(q, c, now, &r->pck, &r->pck_ca, e);
	if (!pck)
		return -1;
	if (memcmp(r->pck.fmspc, c->tcb.fmspc, 6) != 0)
		return err_set(e, "FMSPC of the PCK certificate does not match the TCB Info");
	if (memcmp(r->pck.pce_id, c->tcb.pce_id, 2) != 0)
		return err_set(e, "PCE-ID of the PCK certificate does not match the TCB Info");

	if (check_qe(q, c, pck, r, e) < 0)
		return -1;

	_cleanup_(EVP_PKEY_freep) EVP_PKEY *ak = ecdsa_p256_pub_from_raw(q->att_key, e);
	if (!ak)
		return err_wrap(e, "attestation key");
	int rc = ecdsa_p256_verify_raw(ak, q->signed_data, q->signed_len, q->signature, e);
	if (rc < 0)
		return err_wrap(e, "quote signature");
	if (rc == 0)
		return err_set(e, "quote signature by the attestation key does not verify");

	if (check_platform(q, c, r, e) < 0)
		return -1;
	r->module_status = TCB_UP_TO_DATE;
	if (tdx && check_module(q, c, r, e) < 0)
		return -1;
	r->status = r->platform_status;
	if (r->qe_status > r->status)
		r->status = r->qe_status;
	if (r->module_status > r->status)
		r->status = r->module_status;
	if (r->status == TCB_REVOKED)
		return err_set(e, "TCB revoked");
	if (tdx && check_td_attributes(q, e) < 0)
		return -1;
	return 0;
}

int dcap_verify(const struct quote *q, const struct dcap_collateral *c, time_t now, struct dcap_result *r,
		struct err *e)
{
	memset(r, 0, sizeof(*r));
	if (verify(q, c, now, r, e) < 0) {
		dcap_result_free(r);
		return err_wrap(e, "Quote verification failed");
	}
	return 0;
}
