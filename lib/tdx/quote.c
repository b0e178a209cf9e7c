/*
 * quote.c — DCAP quote parser (see quote.h).
 *
 * A bounds-checked cursor walks the copy of the input; every read names the
 * field it is reading so a short quote says which part is missing. Nested
 * length fields (signature data, certification data, QE auth data, PCK chain)
 * are each checked to lie inside their parent.
 */
#include "tdx/quote.h"

#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"

const uint8_t QUOTE_INTEL_QE_VENDOR_ID[16] = {0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9,
					      0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07};

struct cursor {
	const uint8_t *p;
	size_t left;
};

static int take(struct cursor *c, size_t n, const uint8_t **out, const char *what, struct err *e)
{
	if (c->left < n)
		return err_set(e, "quote truncated: %s needs %zu bytes, %zu left", what, n, c->left);
	*out = c->p;
	c->p += n;
	c->left -= n;
	return 0;
}

static int copy(struct cursor *c, void *dst, size_t n, const char *what, struct err *e)
{
	const uint8_t *p = NULL;

	if (take(c, n, &p, what, e) < 0)
		return -1;
	memcpy(dst, p, n);
	return 0;
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int u16(struct cursor *c, uint16_t *v, const char *what, struct err *e)
{
	const uint8_t *p = NULL;

	if (take(c, 2, &p, what, e) < 0)
		return -1;
	*v = le16(p);
	return 0;
}

static int u32(struct cursor *c, uint32_t *v, const char *what, struct err *e)
{
	const uint8_t *p = NULL;

	if (take(c, 4, &p, what, e) < 0)
		return -1;
	*v = le32(p);
	return 0;
}

static void parse_sgx_report(const uint8_t *p, struct sgx_report *r)
{
	memcpy(r->raw, p, SGX_REPORT_LEN);
	memcpy(r->cpu_svn, p, 16);
	r->misc_select = le32(p + 16);
	memcpy(r->attributes, p + 48, 16);
	memcpy(r->mr_enclave, p + 64, 32);
	memcpy(r->mr_signer, p + 128, 32);
	r->isv_prod_id = le16(p + 256);
	r->isv_svn = le16(p + 258);
	memcpy(r->report_data, p + 320, 64);
}

static void parse_td_report(const uint8_t *p, bool td15, struct td_report *r)
{
	memset(r, 0, sizeof(*r));
	memcpy(r->tee_tcb_svn, p, 16);
	memcpy(r->mr_seam, p + 16, 48);
	memcpy(r->mr_signer_seam, p + 64, 48);
	memcpy(r->seam_attributes, p + 112, 8);
	memcpy(r->td_attributes, p + 120, 8);
	memcpy(r->xfam, p + 128, 8);
	memcpy(r->mr_td, p + 136, 48);
	memcpy(r->mr_config_id, p + 184, 48);
	memcpy(r->mr_owner, p + 232, 48);
	memcpy(r->mr_owner_config, p + 280, 48);
	for (int i = 0; i < 4; i++)
		memcpy(r->rtmr[i], p + 328 + 48 * i, 48);
	memcpy(r->report_data, p + 520, 64);
	if (td15) {
		memcpy(r->tee_tcb_svn2, p + 584, 16);
		memcpy(r->mr_service_td, p + 600, 48);
	}
}

static int parse_header(struct cursor *c, struct quote_header *h, struct err *e)
{
	const uint8_t *p = NULL;

	if (take(c, QUOTE_HEADER_LEN, &p, "header", e) < 0)
		return -1;
	h->version = le16(p);
	h->att_key_type = le16(p + 2);
	h->tee_type = le32(p + 4);
	h->qe_svn = le16(p + 8);
	h->pce_svn = le16(p + 10);
	memcpy(h->qe_vendor_id, p + 12, 16);
	memcpy(h->user_data, p + 28, 20);
	if (h->version < 3 || h->version > 5)
		return err_set(e, "unsupported quote version %u", h->version);
	if (h->att_key_type != QUOTE_ATT_KEY_ECDSA_P256)
		return err_set(e, "unsupported attestation key type %u", h->att_key_type);
	if (h->version == 3 && h->tee_type != QUOTE_TEE_SGX)
		return err_set(e, "quote version 3 with TEE type 0x%x (want SGX)", h->tee_type);
	if (h->version >= 4 && h->tee_type != QUOTE_TEE_TDX)
		return err_set(e, "quote version %u with TEE type 0x%x (want TDX 0x81)", h->version,
			       h->tee_type);
	return 0;
}

static int parse_body(struct cursor *c, struct quote *q, struct err *e)
{
	const uint8_t *p = NULL;

	if (q->header.version == 3) {
		if (take(c, SGX_REPORT_LEN, &p, "enclave report body", e) < 0)
			return -1;
		q->kind = QUOTE_BODY_SGX;
		parse_sgx_report(p, &q->enclave);
		return 0;
	}
	if (q->header.version == 4) {
		if (take(c, TD10_REPORT_LEN, &p, "TD report body", e) < 0)
			return -1;
		q->kind = QUOTE_BODY_TD10;
		parse_td_report(p, false, &q->td);
		return 0;
	}
	/* v5: body descriptor {u16 type, u32 size} then the body. */
	uint16_t type;
	uint32_t size;

	if (u16(c, &type, "body type", e) < 0 || u32(c, &size, "body size", e) < 0)
		return -1;
	if (type == 2) {
		if (size != TD10_REPORT_LEN)
			return err_set(e, "TD 1.0 body size %u, want %d", size, TD10_REPORT_LEN);
		q->kind = QUOTE_BODY_TD10;
	} else if (type == 3) {
		if (size != TD15_REPORT_LEN)
			return err_set(e, "TD 1.5 body size %u, want %d", size, TD15_REPORT_LEN);
		q->kind = QUOTE_BODY_TD15;
	} else {
		return err_set(e, "unsupported v5 body type %u", type);
	}
	if (take(c, size, &p, "TD report body", e) < 0)
		return -1;
	parse_td_report(p, type == 3, &q->td);
	return 0;
}

/* QE report, its signature, QE auth data and the nested PCK chain. */
static int parse_qe_report_cert(struct cursor *c, struct quote *q, struct err *e)
{
	const uint8_t *p = NULL;
	uint16_t auth_len, type;
	uint32_t size;

	if (take(c, SGX_REPORT_LEN, &p, "QE report", e) < 0)
		return -1;
	parse_sgx_report(p, &q->qe_report);
	if (copy(c, q->qe_report_signature, 64, "QE report signature", e) < 0)
		return -1;
	if (u16(c, &auth_len, "QE auth data length", e) < 0 ||
	    take(c, auth_len, &q->qe_auth, "QE auth data", e) < 0)
		return -1;
	q->qe_auth_len = auth_len;
	if (u16(c, &type, "certification data type", e) < 0 ||
	    u32(c, &size, "certification data size", e) < 0)
		return -1;
	if (type != QUOTE_CERT_PCK_CHAIN)
		return err_set(e, "unsupported certification data type %u (want PCK chain 5)", type);
	if (take(c, size, &p, "PCK certificate chain", e) < 0)
		return -1;
	q->pck_chain_pem = (const char *)p;
	q->pck_chain_len = size;
	return 0;
}

static int parse_signature_data(struct cursor *c, struct quote *q, struct err *e)
{
	if (copy(c, q->signature, 64, "quote signature", e) < 0 ||
	    copy(c, q->att_key, 64, "attestation key", e) < 0)
		return -1;
	if (q->header.version == 3)
		return parse_qe_report_cert(c, q, e);

	uint16_t type;
	uint32_t size;
	const uint8_t *p = NULL;

	if (u16(c, &type, "certification data type", e) < 0 ||
	    u32(c, &size, "certification data size", e) < 0)
		return -1;
	if (type != QUOTE_CERT_QE_REPORT)
		return err_set(e, "unsupported certification data type %u (want QE report 6)", type);
	if (take(c, size, &p, "QE report certification data", e) < 0)
		return -1;
	struct cursor inner = {p, size};
	if (parse_qe_report_cert(&inner, q, e) < 0)
		return -1;
	if (inner.left != 0)
		return err_set(e, "QE report certification data has %zu unexpected trailing bytes",
			       inner.left);
	return 0;
}

int quote_parse(struct quote *q, const void *data, size_t len, struct err *e)
{
	memset(q, 0, sizeof(*q));
	if (!data || len == 0)
		return err_set(e, "empty quote");
	if (len > QUOTE_MAX_LEN)
		return err_set(e, "quote too large (%zu bytes)", len);
	q->raw = malloc(len);
	if (!q->raw)
		return err_set(e, "out of memory");
	memcpy(q->raw, data, len);
	q->raw_len = len;

	struct cursor c = {q->raw, len};
	uint32_t sig_len;
	const uint8_t *sig = NULL;

	if (parse_header(&c, &q->header, e) < 0 || parse_body(&c, q, e) < 0)
		goto fail;
	q->signed_data = q->raw;
	q->signed_len = len - c.left;
	if (u32(&c, &sig_len, "signature data length", e) < 0 ||
	    take(&c, sig_len, &sig, "signature data", e) < 0)
		goto fail;
	struct cursor sc = {sig, sig_len};
	if (parse_signature_data(&sc, q, e) < 0)
		goto fail;
	if (sc.left != 0) {
		err_set(e, "signature data has %zu unexpected trailing bytes", sc.left);
		goto fail;
	}
	for (size_t i = 0; i < c.left; i++) {
		if (c.p[i] != 0) {
			err_set(e, "non-zero byte after the signature data at offset %zu", len - c.left + i);
			goto fail;
		}
	}
	return 0;
fail:
	err_wrap(e, "Invalid quote");
	quote_free(q);
	return -1;
}

void quote_free(struct quote *q)
{
	if (!q)
		return;
	free(q->raw);
	memset(q, 0, sizeof(*q));
}

const uint8_t *quote_report_data(const struct quote *q)
{
	return q->kind == QUOTE_BODY_SGX ? q->enclave.report_data : q->td.report_data;
}
