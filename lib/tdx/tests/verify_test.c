/*
 * verify_test.c — DCAP verification of the real Intel fixtures at a fixed
 * time inside every collateral window, and rejection of each kind of
 * tampering with its own message.
 */
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/buf.h"
#include "core/fileio.h"
#include "core/tap.h"
#include "tdx/collateral.h"
#include "tdx/verify.h"

/* 2025-06-20T00:00:00Z: after every issueDate/thisUpdate, before every nextUpdate. */
#define NOW ((time_t)1750377600)

static uint8_t *load(const char *name, size_t *len)
{
	char path[512];
	uint8_t *d = NULL;
	struct err e = ERR_INIT;

	snprintf(path, sizeof(path), "%s/dcap/%s", getenv("TESTDATA") ? getenv("TESTDATA") : "testdata",
		 name);
	if (file_read_all(path, 1 << 20, &d, len, &e) < 0) {
		diag("%s", err_str(&e));
		exit(1);
	}
	return d;
}

static void load_raw(const char *name, struct dcap_collateral_raw *raw)
{
	size_t len;
	_cleanup_free_ uint8_t *j = load(name, &len);
	struct err e = ERR_INIT;

	if (dcap_collateral_raw_from_json((const char *)j, len, raw, &e) < 0) {
		diag("%s", e.msg);
		exit(1);
	}
}

/* Verify quote bytes against raw collateral; returns 0/-1 with the message in e. */
static int run(const uint8_t *qb, size_t qlen, const struct dcap_collateral_raw *raw, time_t now,
	       struct dcap_result *r, struct err *e)
{
	struct quote q;
	struct dcap_collateral *c = NULL;
	int rc = -1;

	memset(r, 0, sizeof(*r));
	if (dcap_collateral_load(&c, raw, NULL, now, e) < 0)
		return -1;
	if (quote_parse(&q, qb, qlen, e) == 0) {
		rc = dcap_verify(&q, c, now, r, e);
		quote_free(&q);
	}
	dcap_collateral_free(c);
	return rc;
}

static void test_tdx(void)
{
	size_t len;
	_cleanup_free_ uint8_t *qb = load("tdx_quote.bin", &len);
	struct dcap_collateral_raw raw;
	struct dcap_result r;
	struct err e = ERR_INIT;

	load_raw("tdx_quote_collateral.json", &raw);
	ok(run(qb, len, &raw, NOW, &r, &e) == 0, "TDX fixture verifies (%s)", e.msg);
	is_str(tcb_status_name(r.status), "UpToDate", "TDX status");
	is_int(r.advisory_ids.n, 0, "no advisories");
	is_hex(r.pck.fmspc, 6, "b0c06f000000", "FMSPC from the PCK leaf");
	is_int(r.pck_ca, PCK_CA_PLATFORM, "PCK Platform CA");
	diag("PPID %02x%02x.., pcesvn %u", r.pck.ppid[0], r.pck.ppid[1], r.pck.pcesvn);
	dcap_result_free(&r);

	/* The JSON round trip keeps everything. */
	_cleanup_free_ char *json = dcap_collateral_raw_to_json(&raw);
	struct dcap_collateral_raw raw2;
	ok(json && dcap_collateral_raw_from_json(json, strlen(json), &raw2, &e) == 0,
	   "collateral JSON round trip");
	ok(run(qb, len, &raw2, NOW, &r, &e) == 0, "round-tripped collateral verifies");
	dcap_result_free(&r);
	dcap_collateral_raw_free(&raw2);

	/* Flipped byte in the quote body (mr_td). */
	qb[200] ^= 1;
	ok(run(qb, len, &raw, NOW, &r, &e) < 0, "flipped body byte rejected");
	is_str(e.msg, "Quote verification failed: quote signature by the attestation key does not verify",
	       "body tampering message");
	qb[200] ^= 1;

	/* Flipped byte in the QE report (inside the certification data). */
	size_t qe_off = 48 + 584 + 4 + 128 + 6;
	qb[qe_off + 10] ^= 1;
	ok(run(qb, len, &raw, NOW, &r, &e) < 0, "flipped QE report byte rejected");
	is_str(e.msg, "Quote verification failed: QE report signature by the PCK key does not verify",
	       "QE report tampering message");
	qb[qe_off + 10] ^= 1;

	/* Flipped byte in the attestation key: QE report data no longer binds it. */
	qb[48 + 584 + 4 + 64 + 5] ^= 1;
	ok(run(qb, len, &raw, NOW, &r, &e) < 0, "flipped attestation key rejected");
	is_str(e.msg, "Quote verification failed: QE report data does not bind the attestation key",
	       "attestation key tampering message");
	qb[48 + 584 + 4 + 64 + 5] ^= 1;

	/* Flipped byte in a certificate of the quote's PCK chain (leaf signature area). */
	const char *pem = (const char *)qb + qe_off + 384 + 64 + 2 + 32 + 6;
	const char *end = strstr(pem, "-----END CERTIFICATE-----");
	size_t pos = (size_t)(end - (const char *)qb) - 20;
	qb[pos] = qb[pos] == 'A' ? 'B' : 'A';
	ok(run(qb, len, &raw, NOW, &r, &e) < 0, "flipped PCK certificate byte rejected");
	ok(strncmp(e.msg, "Quote verification failed: PCK certificate chain", 48) == 0,
	   "certificate message: %s", e.msg);
	struct err cert_err = e;
	free(qb);
	qb = load("tdx_quote.bin", &len);

	/* Flipped byte in the TCB Info JSON. */
	char *ti = strstr(raw.tcb_info, "\"UpToDate\"");
	ti[1] = 'X';
	ok(run(qb, len, &raw, NOW, &r, &e) < 0, "tampered TCB Info rejected");
	is_str(e.msg, "Invalid collateral: TCB Info signature does not verify", "TCB Info tampering message");
	ti[1] = 'U';

	/* Flipped byte in the QE Identity signature. */
	char saved = raw.qe_identity_signature[3];
	raw.qe_identity_signature[3] = saved == '0' ? '1' : '0';
	ok(run(qb, len, &raw, NOW, &r, &e) < 0, "tampered QE Identity signature rejected");
	is_str(e.msg, "Invalid collateral: QE Identity signature does not verify",
	       "signature tampering message");
	raw.qe_identity_signature[3] = saved;

	/* Flipped byte in the quote signature itself. */
	qb[48 + 584 + 4 + 3] ^= 1;
	ok(run(qb, len, &raw, NOW, &r, &e) < 0, "flipped quote signature rejected");
	qb[48 + 584 + 4 + 3] ^= 1;

	/* Every message differs. */
	ok(strcmp(cert_err.msg,
		  "Quote verification failed: quote signature by the attestation key does not verify") != 0,
	   "certificate and body messages differ");

	/* Outside the collateral window. */
	ok(run(qb, len, &raw, NOW + 40 * 86400, &r, &e) < 0, "time after nextUpdate rejected");
	diag("%s", e.msg);
	ok(strstr(e.msg, "Invalid collateral") != NULL, "expired collateral message");
	ok(run(qb, len, &raw, (time_t)1700000000, &r, &e) < 0, "time before issueDate rejected");

	/* Warm collateral loaded once, verified at a later time outside its window. */
	struct dcap_collateral *c = NULL;
	struct quote q;
	ok(dcap_collateral_load(&c, &raw, NULL, NOW, &e) == 0, "collateral loads");
	ok(quote_parse(&q, qb, len, &e) == 0, "quote parses");
	ok(dcap_verify(&q, c, NOW + 3600, &r, &e) == 0, "warm verification succeeds");
	dcap_result_free(&r);
	ok(dcap_verify(&q, c, NOW + 7200, &r, &e) == 0,
	   "second warm verification (cached PCK chain) succeeds");
	is_hex(r.pck.fmspc, 6, "b0c06f000000", "cached PCK extension");
	is_int(r.pck_ca, PCK_CA_PLATFORM, "cached CA type");
	dcap_result_free(&r);
	q.qe_report_signature[5] ^= 1;
	ok(dcap_verify(&q, c, NOW + 7200, &r, &e) < 0, "cached chain still checks the QE report signature");
	q.qe_report_signature[5] ^= 1;
	ok(dcap_verify(&q, c, NOW + 60 * 86400, &r, &e) < 0, "warm verification past nextUpdate fails");
	is_str(e.msg, "Quote verification failed: collateral not valid at this time", "expiry message");

	/* A different trust anchor refuses Intel's chain. */
	struct dcap_collateral *c2 = NULL;
	X509 *other = NULL;
	{
		_cleanup_(EVP_PKEY_freep) EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		other = X509_new();
		X509_set_version(other, 2);
		X509_NAME *n = X509_get_subject_name(other);
		X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"Intel SGX Root CA",
					   -1, -1, 0);
		X509_set_issuer_name(other, n);
		X509_gmtime_adj(X509_getm_notBefore(other), -86400L * 365 * 20);
		X509_gmtime_adj(X509_getm_notAfter(other), 86400L * 365 * 20);
		X509_set_pubkey(other, k);
		X509_sign(other, k, EVP_sha256());
	}
	ok(dcap_collateral_load(&c2, &raw, other, NOW, &e) < 0, "impostor root refuses Intel collateral");
	is_str(e.msg, "Invalid collateral: root CA CRL is not signed by the trust anchor",
	       "impostor message");
	X509_free(other);

	quote_free(&q);
	dcap_collateral_free(c);
	dcap_collateral_raw_free(&raw);
}

static void test_sgx(void)
{
	size_t len;
	_cleanup_free_ uint8_t *qb = load("sgx_quote.bin", &len);
	struct dcap_collateral_raw raw;
	struct dcap_result r;
	struct err e = ERR_INIT;

	load_raw("sgx_quote_collateral.json", &raw);
	ok(run(qb, len, &raw, NOW, &r, &e) == 0, "SGX fixture verifies (%s)", e.msg);
	is_str(tcb_status_name(r.status), "ConfigurationAndSWHardeningNeeded", "SGX status");
	is_int(r.advisory_ids.n, 2, "two advisories");
	if (r.advisory_ids.n == 2) {
		is_str(r.advisory_ids.v[0], "INTEL-SA-00289", "advisory 1");
		is_str(r.advisory_ids.v[1], "INTEL-SA-00615", "advisory 2");
	}
	is_hex(r.pck.fmspc, 6, "00a067110000", "SGX FMSPC");
	dcap_result_free(&r);

	/* SGX quote against TDX collateral is refused. */
	struct dcap_collateral_raw tdx;
	load_raw("tdx_quote_collateral.json", &tdx);
	ok(run(qb, len, &tdx, NOW, &r, &e) < 0, "SGX quote with TDX collateral rejected");
	is_str(e.msg, "Quote verification failed: TCB Info is for TDX, quote is SGX", "message");
	dcap_collateral_raw_free(&tdx);
	dcap_collateral_raw_free(&raw);
}

/* Malformed collateral documents and PCK extensions fail cleanly, never crash. */
static void test_robustness(void)
{
	struct dcap_collateral_raw raw;
	struct dcap_tcb_info ti;
	struct dcap_qe_identity qi;
	struct err e = ERR_INIT;
	int accepted = 0;

	load_raw("tdx_quote_collateral.json", &raw);
	ok(dcap_tcb_info_parse(raw.tcb_info, &ti, &e) == 0, "TCB Info parses");
	is_int(ti.n_levels > 0, 1, "TCB levels");
	is_int(ti.n_modules, 2, "two TDX module identities");
	is_str(ti.modules[1].id, "TDX_01", "module id");
	dcap_tcb_info_clear(&ti);
	size_t n = strlen(raw.tcb_info);
	for (size_t l = 0; l < n; l += 7) {
		char *t = strndup(raw.tcb_info, l);
		if (dcap_tcb_info_parse(t, &ti, &e) == 0) {
			accepted++;
			dcap_tcb_info_clear(&ti);
		}
		free(t);
	}
	is_int(accepted, 0, "every truncated TCB Info rejected");
	ok(dcap_qe_identity_parse("{\"id\":\"TD_QE\",\"version\":2}", &qi, &e) < 0,
	   "incomplete QE Identity rejected");
	ok(strstr(e.msg, "QE Identity: missing string 'issueDate'") != NULL, "names the field: %s", e.msg);
	ok(dcap_tcb_info_parse("{\"id\":\"TDX\",\"version\":2}", &ti, &e) < 0 && strstr(e.msg, "version 3"),
	   "TDX TCB Info version 2 rejected");

	/* PCK extension: every truncation of a real one is rejected. */
	struct quote q;
	size_t len;
	_cleanup_free_ uint8_t *qb = load("tdx_quote.bin", &len);
	ok(quote_parse(&q, qb, len, &e) == 0, "quote");
	_cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain =
	    pem_chain_parse(q.pck_chain_pem, q.pck_chain_len, &e);
	X509 *leaf = sk_X509_value(chain, 0);
	int idx = -1;
	for (int i = 0; i < X509_get_ext_count(leaf); i++) {
		const ASN1_OBJECT *o = X509_EXTENSION_get_object(X509_get_ext(leaf, i));
		if ((size_t)OBJ_length(o) == sizeof(PCK_SGX_EXT_OID) &&
		    memcmp(OBJ_get0_data(o), PCK_SGX_EXT_OID, sizeof(PCK_SGX_EXT_OID)) == 0)
			idx = i;
	}
	ok(idx >= 0, "SGX extension present");
	const ASN1_OCTET_STRING *v = X509_EXTENSION_get_data(X509_get_ext(leaf, idx));
	const uint8_t *der = ASN1_STRING_get0_data(v);
	size_t dlen = (size_t)ASN1_STRING_length(v);
	struct pck_ext x;
	ok(pck_ext_parse_der(der, dlen, &x, &e) == 0, "extension parses");
	accepted = 0;
	for (size_t l = 0; l < dlen; l++) {
		uint8_t *copy = malloc(l + 1);
		memcpy(copy, der, l);
		if (pck_ext_parse_der(copy, l, &x, &e) == 0)
			accepted++;
		free(copy);
	}
	is_int(accepted, 0, "every truncated SGX extension rejected");
	/* Round trip through the encoder used by the simulated PKI. */
	struct pck_ext y;
	_cleanup_buf_ struct buf enc = BUF_INIT;
	ok(pck_ext_parse_der(der, dlen, &x, &e) == 0, "reparse");
	pck_ext_encode(&x, &enc);
	ok(pck_ext_parse_der(enc.data, enc.len, &y, &e) == 0 && memcmp(&x, &y, sizeof(x)) == 0,
	   "encode/parse round trip");
	quote_free(&q);
	dcap_collateral_raw_free(&raw);
}

static void test_trust_anchor(void)
{
	X509 *x = NULL;
	struct err e = ERR_INIT;
	char path[512];

	ok(dcap_trust_anchor_select(false, NULL, &x, &e) == 0 && x, "default anchor is Intel");
	X509_free(x);
	snprintf(path, sizeof(path), "%s/dcap/intel_sgx_root_ca.der", getenv("TESTDATA"));
	ok(dcap_trust_anchor_select(false, path, &x, &e) < 0,
	   "configured root refused without the insecure flag");
	ok(strstr(e.msg, "insecure_allow_external_trust_anchors") != NULL, "message names the flag");
	ok(dcap_trust_anchor_select(true, path, &x, &e) == 0 && x,
	   "configured DER root accepted with the flag");
	X509_free(x);
}

int main(void)
{
	test_tdx();
	test_sgx();
	test_trust_anchor();
	test_robustness();
	return tap_done();
}
