/*
 * pck.c — see pck.h. The extension is a SEQUENCE of {OID, value} pairs; the
 * TCB entry nests another such SEQUENCE. Unknown entries are skipped so newer
 * certificates (platform instance id, configuration) still parse.
 */
#include "tdx/pck.h"

#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "core/cleanup.h"
#include "tdx/der.h"

const uint8_t PCK_SGX_EXT_OID[9] = {0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x01, 0x0d, 0x01};

static int octets(const uint8_t *c, size_t n, uint8_t tag, void *out, size_t want, const char *what,
		  struct err *e)
{
	if (tag != DER_OCTET_STRING || n != want)
		return err_set(e, "SGX extension: %s must be a %zu-byte OCTET STRING", what, want);
	memcpy(out, c, n);
	return 0;
}

static int parse_tcb(struct der *seq, struct pck_ext *x, struct err *e)
{
	while (seq->left) {
		struct der entry;
		struct der oid_d;
		uint8_t tag;
		const uint8_t *c;
		size_t n;
		uint32_t v;

		if (der_expect(seq, DER_SEQUENCE, &entry, e) < 0 ||
		    der_expect(&entry, DER_OID, &oid_d, e) < 0 || der_next(&entry, &tag, &c, &n, e) < 0)
			return err_wrap(e, "SGX extension TCB");
		if (oid_d.left != sizeof(PCK_SGX_EXT_OID) + 2 ||
		    memcmp(oid_d.p, PCK_SGX_EXT_OID, sizeof(PCK_SGX_EXT_OID)) != 0 ||
		    oid_d.p[oid_d.left - 2] != 2)
			continue;
		uint8_t id = oid_d.p[oid_d.left - 1];
		if (id >= 1 && id <= 17) {
			if (tag != DER_INTEGER || der_uint(c, n, &v, e) < 0)
				return err_wrap(e, "SGX extension TCB component %u", id);
			if (id <= 16) {
				if (v > 255)
					return err_set(e, "SGX extension: TCB component %u out of range", id);
				x->comp_svn[id - 1] = (uint8_t)v;
			} else {
				if (v > 0xffff)
					return err_set(e, "SGX extension: PCESVN out of range");
				x->pcesvn = (uint16_t)v;
			}
		} else if (id == 18) {
			if (octets(c, n, tag, x->cpusvn, 16, "CPUSVN", e) < 0)
				return -1;
		}
	}
	return 0;
}

int pck_ext_parse_der(const uint8_t *der, size_t len, struct pck_ext *x, struct err *e)
{
	struct der top = {der, len}, seq;
	unsigned seen = 0;

	memset(x, 0, sizeof(*x));
	if (der_expect(&top, DER_SEQUENCE, &seq, e) < 0)
		return err_wrap(e, "SGX extension");
	while (seq.left) {
		struct der entry, oid_d;
		uint8_t tag;
		const uint8_t *c;
		size_t n;

		if (der_expect(&seq, DER_SEQUENCE, &entry, e) < 0 ||
		    der_expect(&entry, DER_OID, &oid_d, e) < 0 || der_next(&entry, &tag, &c, &n, e) < 0)
			return err_wrap(e, "SGX extension");
		if (oid_d.left != sizeof(PCK_SGX_EXT_OID) + 1 ||
		    memcmp(oid_d.p, PCK_SGX_EXT_OID, sizeof(PCK_SGX_EXT_OID)) != 0)
			continue;
		switch (oid_d.p[sizeof(PCK_SGX_EXT_OID)]) {
		case 1:
			if (octets(c, n, tag, x->ppid, 16, "PPID", e) < 0)
				return -1;
			seen |= 1;
			break;
		case 2: {
			struct der tcb = {c, n};
			if (tag != DER_SEQUENCE)
				return err_set(e, "SGX extension: TCB must be a SEQUENCE");
			if (parse_tcb(&tcb, x, e) < 0)
				return -1;
			seen |= 2;
			break;
		}
		case 3:
			if (octets(c, n, tag, x->pce_id, 2, "PCE-ID", e) < 0)
				return -1;
			seen |= 4;
			break;
		case 4:
			if (octets(c, n, tag, x->fmspc, 6, "FMSPC", e) < 0)
				return -1;
			seen |= 8;
			break;
		case 5:
			if (tag != DER_ENUMERATED || der_uint(c, n, &x->sgx_type, e) < 0)
				return err_wrap(e, "SGX extension: SGX type");
			break;
		default:
			break;
		}
	}
	if (seen != 15)
		return err_set(e, "SGX extension lacks %s",
			       !(seen & 1)   ? "PPID"
			       : !(seen & 2) ? "TCB"
			       : !(seen & 4) ? "PCE-ID"
					     : "FMSPC");
	return 0;
}

int pck_ext_from_cert(X509 *cert, struct pck_ext *out, struct err *e)
{
	int n = X509_get_ext_count(cert);

	for (int i = 0; i < n; i++) {
		X509_EXTENSION *ext = X509_get_ext(cert, i);
		const ASN1_OBJECT *obj = X509_EXTENSION_get_object(ext);
		const unsigned char *od = OBJ_get0_data(obj);
		size_t ol = OBJ_length(obj);

		if (ol == sizeof(PCK_SGX_EXT_OID) && memcmp(od, PCK_SGX_EXT_OID, ol) == 0) {
			const ASN1_OCTET_STRING *v = X509_EXTENSION_get_data(ext);
			return pck_ext_parse_der(ASN1_STRING_get0_data(v), (size_t)ASN1_STRING_length(v), out,
						 e);
		}
	}
	return err_set(e, "PCK certificate has no SGX extension (%s)", PCK_SGX_EXT_OID_TEXT);
}

void pck_ext_encode(const struct pck_ext *x, struct buf *out)
{
	_cleanup_buf_ struct buf seq = BUF_INIT, tcb = BUF_INIT, item = BUF_INIT, oid = BUF_INIT;

#define OID_ENTRY(dst, suffix, slen, value_writer)                                                           \
	do {                                                                                                 \
		buf_reset(&oid);                                                                             \
		buf_append(&oid, PCK_SGX_EXT_OID, sizeof(PCK_SGX_EXT_OID));                                  \
		buf_append(&oid, suffix, slen);                                                              \
		buf_reset(&item);                                                                            \
		der_put(&item, DER_OID, oid.data, oid.len);                                                  \
		value_writer;                                                                                \
		der_put(dst, DER_SEQUENCE, item.data, item.len);                                             \
	} while (0)

	OID_ENTRY(&seq, "\x01", 1, der_put(&item, DER_OCTET_STRING, x->ppid, 16));
	for (uint8_t i = 1; i <= 16; i++) {
		uint8_t s[2] = {2, i};
		OID_ENTRY(&tcb, s, 2, der_put_uint(&item, DER_INTEGER, x->comp_svn[i - 1]));
	}
	OID_ENTRY(&tcb, "\x02\x11", 2, der_put_uint(&item, DER_INTEGER, x->pcesvn));
	OID_ENTRY(&tcb, "\x02\x12", 2, der_put(&item, DER_OCTET_STRING, x->cpusvn, 16));
	OID_ENTRY(&seq, "\x02", 1, der_put(&item, DER_SEQUENCE, tcb.data, tcb.len));
	OID_ENTRY(&seq, "\x03", 1, der_put(&item, DER_OCTET_STRING, x->pce_id, 2));
	OID_ENTRY(&seq, "\x04", 1, der_put(&item, DER_OCTET_STRING, x->fmspc, 6));
	OID_ENTRY(&seq, "\x05", 1, der_put_uint(&item, DER_ENUMERATED, x->sgx_type));
#undef OID_ENTRY
	der_put(out, DER_SEQUENCE, seq.data, seq.len);
}

int pck_ca_type_of(X509 *cert, enum pck_ca_type *out, struct err *e)
{
	char cn[256] = "";

	X509_NAME_get_text_by_NID(X509_get_issuer_name(cert), NID_commonName, cn, sizeof(cn));
	if (strstr(cn, "Platform")) {
		*out = PCK_CA_PLATFORM;
		return 0;
	}
	if (strstr(cn, "Processor")) {
		*out = PCK_CA_PROCESSOR;
		return 0;
	}
	return err_set(e, "unknown PCK CA '%s'", cn);
}

const char *pck_ca_type_name(enum pck_ca_type t)
{
	return t == PCK_CA_PLATFORM ? "platform" : "processor";
}

STACK_OF(X509) * pem_chain_parse(const char *pem, size_t len, struct err *e)
{
	while (len > 0 && pem[len - 1] == '\0')
		len--;
	if (len == 0 || len > INT32_MAX) {
		err_set(e, "empty certificate chain");
		return NULL;
	}
	_cleanup_(BIO_free_allp) BIO *bio = BIO_new_mem_buf(pem, (int)len);
	_cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = sk_X509_new_null();

	if (!bio || !chain) {
		err_set(e, "out of memory");
		return NULL;
	}
	for (;;) {
		X509 *c = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		if (!c)
			break;
		if (!sk_X509_push(chain, c)) {
			X509_free(c);
			err_set(e, "out of memory");
			return NULL;
		}
	}
	/* PEM_read_bio_X509 ends with "no start line" at EOF; anything else is a bad certificate. */
	unsigned long code = ERR_peek_last_error();
	if (code && ERR_GET_REASON(code) != PEM_R_NO_START_LINE) {
		err_ssl(e, "bad certificate in chain");
		return NULL;
	}
	ERR_clear_error();
	if (sk_X509_num(chain) == 0) {
		err_set(e, "no certificate in chain");
		return NULL;
	}
	return TAKE_PTR(chain);
}
