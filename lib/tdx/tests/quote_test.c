/*
 * quote_test.c — quote parser against the real DCAP fixtures (TDX v4, SGX
 * v3), a v5 quote built from the v4 one (TD 1.0 and TD 1.5 bodies), and every
 * truncation / length inconsistency of the real quotes.
 */
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/tap.h"
#include "tdx/quote.h"

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

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v & 0xff;
	p[1] = v >> 8;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (v >> (8 * i)) & 0xff;
}

static void test_tdx_v4(void)
{
	size_t len;
	_cleanup_free_ uint8_t *d = load("tdx_quote.bin", &len);
	struct quote q;
	struct err e = ERR_INIT;

	ok(quote_parse(&q, d, len, &e) == 0, "TDX v4 fixture parses (%s)", e.msg);
	is_int(q.header.version, 4, "version");
	is_int(q.header.tee_type, 0x81, "tee type");
	is_int(q.kind, QUOTE_BODY_TD10, "TD 1.0 body");
	ok(memcmp(q.header.qe_vendor_id, QUOTE_INTEL_QE_VENDOR_ID, 16) == 0, "Intel QE vendor id");
	is_hex(q.td.mr_td, 48,
	       "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b253887311"
	       "8b7",
	       "mr_td");
	is_hex(q.td.report_data, 64,
	       "9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9"
	       "eca3efdbb481601c163cf52493d6e44aed55d51ec39b7e518fadb92c2b523f20",
	       "report_data");
	ok(quote_report_data(&q) == q.td.report_data, "quote_report_data points at the TD report");
	is_hex(q.td.tee_tcb_svn, 16, "06010300000000000000000000000000", "tee_tcb_svn");
	is_hex(q.td.td_attributes, 8, "0000001000000000", "td_attributes");
	is_hex(q.td.xfam, 8, "e702060000000000", "xfam");
	is_int(q.signed_len, 48 + 584, "signed region is header+body");
	is_hex(q.qe_report.mr_signer, 32, "dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5",
	       "QE mrsigner");
	is_int(q.qe_report.isv_prod_id, 2, "QE isvprodid");
	is_int(q.qe_report.isv_svn, 6, "QE isvsvn");
	is_int(q.qe_auth_len, 32, "QE auth data length");
	is_int(q.pck_chain_len, 3678, "PCK chain length");
	ok(q.pck_chain_len > 30 && memcmp(q.pck_chain_pem, "-----BEGIN CERTIFICATE-----", 27) == 0,
	   "PCK chain is PEM");
	quote_free(&q);

	/* The fixture ends with 70 bytes of zero padding; non-zero padding is refused. */
	d[len - 1] = 1;
	ok(quote_parse(&q, d, len, &e) < 0, "non-zero trailing byte rejected");
	is_str(e.msg, "Invalid quote: non-zero byte after the signature data at offset 5005", "message");
	d[len - 1] = 0;
	ok(quote_parse(&q, d, 4936, &e) == 0, "quote without padding parses");
	quote_free(&q);

	/* Every truncation inside the signed data is rejected, never crashes. */
	int bad = 0;
	for (size_t l = 0; l < 4936; l++) {
		if (quote_parse(&q, d, l, &e) == 0) {
			bad++;
			quote_free(&q);
		}
	}
	is_int(bad, 0, "every truncation rejected");
	ok(quote_parse(&q, d, 100, &e) < 0 && strstr(e.msg, "TD report body needs 584 bytes"),
	   "truncated body named (%s)", e.msg);

	/* Signature data length larger than the quote. */
	put32(d + 632, 100000);
	ok(quote_parse(&q, d, len, &e) < 0, "oversized signature data length rejected");
	is_str(e.msg, "Invalid quote: quote truncated: signature data needs 100000 bytes, 4370 left",
	       "message");
	put32(d + 632, 4300);
	/* Certification data size too small for its content. */
	put32(d + 632 + 4 + 128 + 2, 4000);
	ok(quote_parse(&q, d, len, &e) < 0 && strstr(e.msg, "PCK certificate chain needs"),
	   "inner length checked (%s)", e.msg);
	put32(d + 632 + 4 + 128 + 2, 4166);
	/* Wrong certification data type. */
	put16(d + 632 + 4 + 128, 3);
	ok(quote_parse(&q, d, len, &e) < 0 && strstr(e.msg, "unsupported certification data type 3"),
	   "cert type checked");
	put16(d + 632 + 4 + 128, 6);
	d[4] = 0;
	ok(quote_parse(&q, d, len, &e) < 0 && strstr(e.msg, "TEE type 0x0"), "v4 with SGX tee type rejected");
	d[4] = 0x81;
	put16(d, 7);
	ok(quote_parse(&q, d, len, &e) < 0 && strstr(e.msg, "unsupported quote version 7"),
	   "version checked");
}

/* Build a v5 quote from the v4 fixture with the given body type. */
static void test_tdx_v5(void)
{
	size_t len;
	_cleanup_free_ uint8_t *d = load("tdx_quote.bin", &len);
	size_t sig_off = 48 + 584, sig_total = 4 + 4300;
	struct quote q;
	struct err e = ERR_INIT;

	for (int type = 2; type <= 3; type++) {
		size_t body = type == 2 ? TD10_REPORT_LEN : TD15_REPORT_LEN;
		size_t n = 48 + 6 + body + sig_total;
		_cleanup_free_ uint8_t *v5 = calloc(1, n);

		memcpy(v5, d, 48);
		put16(v5, 5);
		put16(v5 + 48, (uint16_t)type);
		put32(v5 + 50, (uint32_t)body);
		memcpy(v5 + 54, d + 48, 584);
		if (type == 3) {
			memset(v5 + 54 + 584, 0xaa, 16);
			memset(v5 + 54 + 600, 0xbb, 48);
		}
		memcpy(v5 + 54 + body, d + sig_off, sig_total);
		ok(quote_parse(&q, v5, n, &e) == 0, "v5 body type %d parses (%s)", type, e.msg);
		is_int(q.kind, type == 2 ? QUOTE_BODY_TD10 : QUOTE_BODY_TD15, "body kind");
		is_int(q.signed_len, 54 + body, "v5 signed region includes the body descriptor");
		ok(memcmp(q.td.report_data, d + 568, 64) == 0, "v5 report_data");
		ok(type == 2 ? q.td.mr_service_td[0] == 0 : q.td.mr_service_td[47] == 0xbb, "mr_service_td");
		ok(type == 2 ? q.td.tee_tcb_svn2[0] == 0 : q.td.tee_tcb_svn2[15] == 0xaa, "tee_tcb_svn2");
		quote_free(&q);
		put32(v5 + 50, 600);
		ok(quote_parse(&q, v5, n, &e) < 0 && strstr(e.msg, "body size 600"),
		   "inconsistent body size: %s", e.msg);
	}
}

static void test_sgx_v3(void)
{
	size_t len;
	_cleanup_free_ uint8_t *d = load("sgx_quote.bin", &len);
	struct quote q;
	struct err e = ERR_INIT;

	ok(quote_parse(&q, d, len, &e) == 0, "SGX v3 fixture parses (%s)", e.msg);
	is_int(q.kind, QUOTE_BODY_SGX, "SGX body");
	is_hex(q.enclave.mr_enclave, 32, "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb",
	       "mr_enclave");
	is_hex(q.enclave.mr_signer, 32, "815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6",
	       "mr_signer");
	ok(memcmp(q.enclave.report_data, "Hello, world!", 13) == 0, "report_data");
	is_int(q.signed_len, 48 + 384, "signed region");
	is_int(q.pck_chain_len, 3548, "PCK chain length");
	quote_free(&q);
	int bad = 0;
	for (size_t l = 0; l < len; l++) {
		if (quote_parse(&q, d, l, &e) == 0) {
			bad++;
			quote_free(&q);
		}
	}
	is_int(bad, 0, "every truncation of the SGX quote rejected");
}

int main(void)
{
	test_tdx_v4();
	test_tdx_v5();
	test_sgx_v3();
	return tap_done();
}
