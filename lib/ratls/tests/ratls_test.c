/*
 * ratls_test.c — RA-TLS extensions and certificate profiles, the SignCert
 * CSR, and the attestation verifier on the real DCAP fixture and on
 * simulated-TDX attestations (dev PKI).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>
#include <zlib.h>

#include "attest/appinfo.h"
#include "codec/pem.h"
#include "codec/scale.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/hex.h"
#include "core/tap.h"
#include "crypto/hash.h"
#include "ratls/cert.h"
#include "ratls/csr.h"
#include "ratls/ext.h"
#include "ratls/verify.h"
#include "sim_attestation.h"
#include "tdx/ecdsa.h"
#include "tdx/pck.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(ASN1_OBJECT *, ASN1_OBJECT_free)

#define DCAP_NOW ((time_t)1750377600)

static const char *testdata;
static char tmp[64];

static uint8_t *load(const char *rel, size_t *len)
{
	char path[1024];
	uint8_t *d = NULL;
	struct err e = ERR_INIT;

	snprintf(path, sizeof(path), "%s/%s", testdata, rel);
	if (file_read_all(path, 16 << 20, &d, len, &e) < 0) {
		printf("Bail out! %s\n", e.msg);
		exit(1);
	}
	return d;
}

static void test_ext(void)
{
	struct err e = ERR_INIT;
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *k = ratls_key_generate(&e);
	const char *log =
	    "[{\"imr\":3,\"event_type\":134217729,\"digest\":\"\",\"event\":\"x\",\"event_payload\":\"\"}]";
	struct buf gz = BUF_INIT, back = BUF_INIT;
	uint8_t app_id[20];

	memset(app_id, 0xab, sizeof(app_id));
	ok(ratls_event_log_compress(log, strlen(log), &gz, &e) == 0, "ELGZv1 compress");
	ok(gz.len > 6 && memcmp(gz.data, "ELGZv1", 6) == 0, "ELGZv1 magic");
	ok(ratls_event_log_decode(gz.data, gz.len, &back, &e) == 0 && back.len == strlen(log) &&
	       memcmp(back.data, log, back.len) == 0,
	   "ELGZv1 round trip");

	struct ratls_cert_params p = {
	    .cn = "x",
	    .app_id = app_id,
	    .app_id_len = 20,
	    .usage = RATLS_USAGE_APP_CUSTOM,
	    .attestation = (const uint8_t *)"ATT",
	    .attestation_len = 3,
	    .quote = (const uint8_t *)"QUOTE",
	    .quote_len = 5,
	    .event_log = gz.data,
	    .event_log_len = gz.len,
	    .app_info = (const uint8_t *)"\x90",
	    .app_info_len = 1,
	};
	_cleanup_(X509_freep) X509 *c = ratls_cert_build(&p, k, NULL, NULL, &e);
	ok(c != NULL, "cert with every RA-TLS extension (%s)", e.msg);
	struct ratls_ext x;
	ok(ratls_ext_read(c, &x, &e) == 0, "extensions read back");
	ok(x.quote_len == 5 && memcmp(x.quote, "QUOTE", 5) == 0, "quote ext");
	is_str(x.event_log, log, "event log ext inflated");
	ok(x.app_id_len == 20 && memcmp(x.app_id, app_id, 20) == 0, "app_id ext");
	is_str(x.usage, "app:custom", "usage ext");
	ok(x.attestation_len == 3 && memcmp(x.attestation, "ATT", 3) == 0, "attestation ext");
	ok(x.app_info_len == 1 && x.app_info[0] == 0x90, "app info ext");
	ratls_ext_free(&x);

	/* DER layout: extnValue = OCTET STRING(OCTET STRING(raw)), non-critical. */
	_cleanup_(ASN1_OBJECT_freep) ASN1_OBJECT *obj = OBJ_txt2obj(RATLS_OID_USAGE, 1);
	X509_EXTENSION *ext = X509_get_ext(c, X509_get_ext_by_OBJ(c, obj, -1));
	ASN1_OCTET_STRING *val = X509_EXTENSION_get_data(ext);
	is_hex(ASN1_STRING_get0_data(val), ASN1_STRING_length(val), "040a6170703a637573746f6d", "usage DER");
	ok(!X509_EXTENSION_get_critical(ext), "non-critical");

	/* Malformed: extnValue not an OCTET STRING. */
	_cleanup_(X509_freep) X509 *bad =
	    ratls_cert_build(&(struct ratls_cert_params){.cn = "y"}, k, NULL, NULL, &e);
	ASN1_OCTET_STRING *raw = ASN1_OCTET_STRING_new();
	ASN1_OCTET_STRING_set(raw, (const unsigned char *)"\x30\x00", 2);
	X509_EXTENSION *be = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, raw);
	X509_add_ext(bad, be, -1);
	X509_EXTENSION_free(be);
	ASN1_OCTET_STRING_free(raw);
	ok(ratls_ext_read(bad, &x, &e) < 0, "malformed extension rejected: %s", e.msg);

	/* ELGZ bomb: 64 KiB of spaces inflates past the 16 KiB cap. */
	char *big = malloc(65536);
	memset(big, ' ', 65536);
	struct buf bomb = BUF_INIT, sink = BUF_INIT;
	buf_puts(&bomb, "ELGZv1");
	{
		/* compress without the size check, straight with zlib */
		uLongf n = compressBound(65536) + 32;
		buf_reserve(&bomb, n);
		z_stream zs = {0};
		deflateInit2(&zs, 9, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
		zs.next_in = (Bytef *)big;
		zs.avail_in = 65536;
		zs.next_out = bomb.data + bomb.len;
		zs.avail_out = (uInt)n;
		deflate(&zs, Z_FINISH);
		bomb.len += n - zs.avail_out;
		deflateEnd(&zs);
	}
	ok(ratls_event_log_decode(bomb.data, bomb.len, &sink, &e) < 0 && strstr(e.msg, "exceeds"),
	   "ELGZv1 over 16 KiB rejected: %s", e.msg);
	ok(ratls_event_log_decode((const uint8_t *)"ELGZv1garbage", 13, &sink, &e) < 0,
	   "corrupt ELGZv1 rejected");
	free(big);
	buf_free(&bomb);
	buf_free(&sink);
	buf_free(&gz);
	buf_free(&back);
}

static void test_profiles(void)
{
	struct err e = ERR_INIT;
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *rk = ratls_key_generate(&e);
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *tk = ratls_key_generate(&e);
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *ak = ratls_key_generate(&e);
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *lk = ratls_key_generate(&e);
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *kk = ratls_key_generate(&e);
	uint8_t app_id[20];
	char buf[256];

	memset(app_id, 0x11, 20);
	_cleanup_(X509_freep) X509 *root = ratls_cert_root_ca(rk, &e);
	_cleanup_(X509_freep) X509 *temp = ratls_cert_temp_ca(tk, &e);
	_cleanup_(X509_freep) X509 *appca = ratls_cert_app_ca(ak, app_id, 20, root, rk, &e);
	_cleanup_(X509_freep) X509 *rpc = ratls_cert_kms_rpc(kk, "kms.example.com", NULL, 0, root, rk, &e);
	ok(root && temp && appca && rpc, "root, temp, app CA and RPC certs built");
	X509_NAME_oneline(X509_get_subject_name(root), buf, sizeof(buf));
	is_str(buf, "/O=Dstack/CN=Dstack KMS CA", "root CA subject");
	X509_NAME_oneline(X509_get_subject_name(temp), buf, sizeof(buf));
	is_str(buf, "/O=Dstack/CN=Dstack Client Temp CA", "temp CA subject");
	X509_NAME_oneline(X509_get_subject_name(appca), buf, sizeof(buf));
	is_str(buf, "/O=Dstack/CN=Dstack App CA", "app CA subject");
	X509_NAME_oneline(X509_get_issuer_name(appca), buf, sizeof(buf));
	is_str(buf, "/O=Dstack/CN=Dstack KMS CA", "app CA issuer");
	is_int(X509_get_pathlen(root), 1, "root pathlen 1");
	is_int(X509_get_pathlen(temp), 0, "temp pathlen 0");
	is_int(X509_get_pathlen(appca), 0, "app CA pathlen 0");
	ok(X509_check_ca(root) && X509_check_ca(appca) && !X509_check_ca(rpc), "CA flags");
	ok(X509_get_key_usage(root) == (KU_DIGITAL_SIGNATURE | KU_KEY_CERT_SIGN | KU_CRL_SIGN),
	   "CA key usage");
	ok(X509_get_key_usage(rpc) == KU_DIGITAL_SIGNATURE, "leaf key usage");
	ok(!(X509_get_extension_flags(rpc) & EXFLAG_XKUSAGE), "RPC cert has no EKU");
	ok(X509_check_host(rpc, "kms.example.com", 0, 0, NULL) == 1, "RPC SAN matches the domain");
	_cleanup_free_ uint8_t *usage = NULL;
	size_t ulen;
	ok(ratls_ext_get(rpc, RATLS_OID_USAGE, &usage, &ulen, &e) == 1 &&
	       strcmp((char *)usage, "kms:rpc") == 0,
	   "RPC usage kms:rpc");

	/* App leaf from a CSR. */
	char *sans[] = {"app.example.com", "10.0.0.7", "::1"};
	struct ratls_csr csr = {.config = {.subject = "my app",
					   .sans = sans,
					   .n_sans = 3,
					   .usage_server_auth = true,
					   .has_not_after = true,
					   .not_after = (uint64_t)time(NULL) + 86400}};
	der_write_public_key(lk, &csr.pubkey, &csr.pubkey_len, &e);
	_cleanup_(X509_freep) X509 *leaf =
	    ratls_cert_app_leaf(&csr, app_id, 20, NULL, 0, NULL, 0, appca, ak, &e);
	free(csr.pubkey);
	ok(leaf != NULL, "app leaf built (%s)", e.msg);
	ok(X509_check_ip_asc(leaf, "10.0.0.7", 0) == 1, "IPv4 SAN is an IP SAN");
	ok(X509_check_ip_asc(leaf, "::1", 0) == 1, "IPv6 SAN is an IP SAN");
	ok(X509_check_host(leaf, "app.example.com", 0, 0, NULL) == 1, "DNS SAN");
	ok(X509_get_extended_key_usage(leaf) == XKU_SSL_SERVER, "EKU serverAuth only");
	ok(ASN1_TIME_cmp_time_t(X509_get0_notAfter(leaf), (time_t)csr.config.not_after) == 0,
	   "not_after from the CSR");

	/* Chain leaf → app CA → root verifies. */
	X509_STORE *st = X509_STORE_new();
	X509_STORE_add_cert(st, root);
	STACK_OF(X509) *untrusted = sk_X509_new_null();
	sk_X509_push(untrusted, appca);
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	X509_STORE_CTX_init(ctx, st, leaf, untrusted);
	ok(X509_verify_cert(ctx) == 1, "leaf chains to the root: %s",
	   X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
	X509_STORE_CTX_free(ctx);
	sk_X509_free(untrusted);
	X509_STORE_free(st);

	ok(ratls_cert_app_ca(ak, app_id, 20, root, tk, &e) == NULL, "wrong issuer key refused: %s", e.msg);
}

static void test_csr(void)
{
	struct err e = ERR_INIT;
	struct buf enc = BUF_INIT, sig = BUF_INIT, enc2 = BUF_INIT;
	char *sans[] = {"a", "1.2.3.4"};
	struct ratls_csr c = {.confirm = RATLS_CSR_CONFIRM,
			      .pubkey = (uint8_t *)"\x01\x02",
			      .pubkey_len = 2,
			      .config = {.org_name = "O",
					 .subject = "s",
					 .sans = sans,
					 .n_sans = 2,
					 .usage_server_auth = true,
					 .ext_app_info = true,
					 .has_not_after = true,
					 .not_after = 0x0102030405060708ull},
			      .attestation = (uint8_t *)"\xaa\xbb",
			      .attestation_len = 2};
	ratls_csr_encode(&c, &enc);
	/* Hand-computed SCALE bytes. */
	is_hex(enc.data, enc.len,
	       "44706c65617365207369676e20636572743a" /* "please sign cert:" */
	       "080102"                               /* pubkey */
	       "01044f"                               /* Some("O") */
	       "0473"                                 /* "s" */
	       "0804611c312e322e332e34"               /* ["a","1.2.3.4"] */
	       "01000001"                             /* server, client, ext_quote, ext_app_info */
	       "00"                                   /* not_before None */
	       "010807060504030201"                   /* not_after Some */
	       "aabb",                                /* attestation */
	       "V2 SCALE encoding");
	struct ratls_csr d;
	ok(ratls_csr_decode(2, enc.data, enc.len, &d, &e) == 0, "V2 decodes");
	is_str(d.config.org_name, "O", "org_name");
	is_str(d.config.sans[1], "1.2.3.4", "san");
	ok(d.config.ext_app_info && !d.config.ext_quote && d.config.not_after == 0x0102030405060708ull,
	   "flags and not_after");
	ok(d.attestation_len == 2 && memcmp(d.attestation, "\xaa\xbb", 2) == 0,
	   "attestation = rest of input");
	ratls_csr_encode(&d, &enc2);
	ok(enc2.len == enc.len && memcmp(enc2.data, enc.data, enc.len) == 0, "re-encodes identically");
	ratls_csr_free(&d);
	ok(ratls_csr_decode(2, enc.data, 30, &d, &e) < 0, "truncated CSR rejected: %s", e.msg);
	ok(ratls_csr_decode(3, enc.data, enc.len, &d, &e) < 0, "api_version 3 rejected");
	struct buf nb = BUF_INIT;
	scale_put_str(&nb, RATLS_CSR_CONFIRM);
	scale_put_bytes(&nb, "\x01", 1);
	scale_put_option(&nb, false);
	scale_put_strn(&nb, "a\0b", 3);
	scale_put_compact(&nb, 0);
	buf_append(&nb, "\0\0\0\0\0\0", 6);
	ok(ratls_csr_decode(2, nb.data, nb.len, &d, &e) < 0 && strstr(e.msg, "NUL"),
	   "NUL in subject rejected: %s", e.msg);
	buf_free(&nb);

	/* Sign / verify with a real key. */
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *k = ratls_key_generate(&e);
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *k2 = ratls_key_generate(&e);
	struct ratls_csr s = c;
	der_write_public_key(k, &s.pubkey, &s.pubkey_len, &e);
	buf_reset(&enc);
	ratls_csr_encode(&s, &enc);
	ok(ratls_csr_sign(k, enc.data, enc.len, &sig, &e) == 0, "sign");
	ok(ratls_csr_decode(2, enc.data, enc.len, &d, &e) == 0, "decode signed CSR");
	ok(ratls_csr_verify(&d, enc.data, enc.len, sig.data, sig.len, &e) == 0, "signature verifies");
	enc.data[enc.len - 1] ^= 1;
	ok(ratls_csr_verify(&d, enc.data, enc.len, sig.data, sig.len, &e) < 0, "tampered CSR: %s", e.msg);
	is_str(e.msg, "Invalid signature", "error text");
	enc.data[enc.len - 1] ^= 1;
	free(d.confirm);
	d.confirm = strdup("please sign cert?");
	ok(ratls_csr_verify(&d, enc.data, enc.len, sig.data, sig.len, &e) < 0, "wrong confirm word: %s",
	   e.msg);
	ratls_csr_free(&d);
	buf_reset(&sig);
	ratls_csr_sign(k2, enc.data, enc.len, &sig, &e);
	ratls_csr_decode(2, enc.data, enc.len, &d, &e);
	ok(ratls_csr_verify(&d, enc.data, enc.len, sig.data, sig.len, &e) < 0,
	   "signature by another key fails");
	ratls_csr_free(&d);
	free(s.pubkey);

	/* V1 with a real quote upgrades to V2 (attestation = V0 of the quote). */
	size_t qlen;
	_cleanup_free_ uint8_t *q = load("dstack/ra-tls-tdx_quote.bin", &qlen);
	buf_reset(&enc);
	ratls_csr_encode_v1(&c, q, qlen, "[]", &enc);
	ok(ratls_csr_decode(1, enc.data, enc.len, &d, &e) == 0, "V1 decodes (%s)", e.msg);
	ok(!d.config.ext_app_info && !d.config.has_not_after, "V1 config has no V2 fields");
	struct attestation a;
	ok(attestation_decode(d.attestation, d.attestation_len, &a, &e) == 0 && a.quote_len == qlen &&
	       memcmp(a.quote, q, qlen) == 0,
	   "upgraded attestation carries the quote");
	attestation_free(&a);
	ratls_csr_free(&d);
	buf_free(&enc);
	buf_free(&enc2);
	buf_free(&sig);
}

static void test_dcap_fixture(void)
{
	struct err e = ERR_INIT;
	size_t qlen, clen;
	_cleanup_free_ uint8_t *q = load("dcap/tdx_quote.bin", &qlen);
	_cleanup_free_ uint8_t *coll = load("dcap/tdx_quote_collateral.json", &clen);
	struct ratls_verifier *v = NULL;
	struct ratls_verifier_opts o = {.collateral_json = (char *)coll, .collateral_json_len = clen};
	struct attestation a;
	struct ratls_verified r;

	ok(ratls_verifier_new(&v, &o, &e) == 0, "verifier with preloaded collateral");
	ok(!ratls_verifier_is_dev(v), "Intel root");
	ok(ratls_attestation_from_quote(q, qlen, NULL, 0, NULL, &a, &e) == 0, "attestation from a raw quote");
	/* The sample quote has an all-zero RTMR3: an empty runtime log replays to it. */
	ok(ratls_verify_attestation(v, &a, DCAP_NOW, &r, &e) == 0, "real Intel quote verifies (%s)", e.msg);
	is_str(tcb_status_name(r.dcap.status), "UpToDate", "real quote TCB status");
	is_int(r.dcap.advisory_ids.n, 0, "no advisories");
	ok(!r.boot_log_checked, "no boot log to check");
	ok(ratls_boot_info(&r, NULL, false, &(struct ratls_boot_info){0}, &e) < 0, "no app-id event: %s",
	   e.msg);
	ratls_verified_free(&r);
	ok(ratls_attestation_from_quote(q, qlen, NULL, 0, NULL, &a, &e) == 0, "again");
	ok(ratls_verify_attestation(v, &a, (time_t)1700000000, &r, &e) < 0,
	   "outside the collateral window: %s", e.msg);
	ratls_verifier_free(v);

	struct ratls_verifier_opts dev = {
	    .root_ca_path = "/nonexistent", .collateral_json = (char *)coll, .collateral_json_len = clen};
	ok(ratls_verifier_new(&v, &dev, &e) < 0 && strstr(e.msg, "insecure_allow_external_trust_anchors"),
	   "dev root refused without the insecure flag: %s", e.msg);
}

/*
 * guest-agent-attestation.bin carries a real Intel quote whose PCK
 * certificate was issued in January 2026, after the fixture collateral
 * (June-July 2025) expired: no instant satisfies both, so full DCAP needs
 * fresh PCCS collateral. What can be checked offline is checked here.
 */
static void test_guest_agent_fixture(void)
{
	struct err e = ERR_INIT;
	size_t alen, clen;
	_cleanup_free_ uint8_t *att = load("dstack/guest-agent-attestation.bin", &alen);
	_cleanup_free_ uint8_t *coll = load("dcap/tdx_quote_collateral.json", &clen);
	struct ratls_verifier *v = NULL;
	struct ratls_verifier_opts o = {.collateral_json = (char *)coll, .collateral_json_len = clen};
	struct ratls_verified r;
	struct attestation a;
	struct quote q;

	ratls_verifier_new(&v, &o, &e);
	ok(ratls_verify_bytes(v, att, alen, DCAP_NOW, &r, &e) < 0 && strstr(e.msg, "not yet valid"),
	   "guest-agent quote: PCK cert newer than the fixture collateral: %s", e.msg);
	ratls_verifier_free(v);

	ok(attestation_decode(att, alen, &a, &e) == 0, "fixture decodes");
	ok(attestation_check_event_log(&a, &e) == 0, "event log replays to RTMR0-3, report_data matches");
	ok(quote_parse(&q, a.quote, a.quote_len, &e) == 0, "quote parses");
	EVP_PKEY *ak = ecdsa_p256_pub_from_raw(q.att_key, &e);
	is_int(ecdsa_p256_verify_raw(ak, q.signed_data, q.signed_len, q.signature, &e), 1,
	       "quote body signed by its attestation key");
	EVP_PKEY_free(ak);
	STACK_OF(X509) *chain = pem_chain_parse(q.pck_chain_pem, q.pck_chain_len, &e);
	X509 *root = dcap_intel_root_ca();
	X509_STORE *st = X509_STORE_new();
	X509_STORE_add_cert(st, root);
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	X509_STORE_CTX_init(ctx, st, sk_X509_value(chain, 0), chain);
	X509_STORE_CTX_set_time(ctx, 0, (time_t)1772323200); /* 2026-03-01 */
	ok(X509_verify_cert(ctx) == 1, "PCK chain leads to the Intel SGX root (at 2026-03-01)");
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	X509_free(root);
	sk_X509_pop_free(chain, X509_free);
	quote_free(&q);
	attestation_free(&a);
}

static void test_simulated(void)
{
	struct err e = ERR_INIT;
	char pki[128], state[128], cpath[160], root[160];
	uint8_t rd[64];
	struct buf att = BUF_INIT;

	snprintf(pki, sizeof(pki), "%s/pki", tmp);
	snprintf(state, sizeof(state), "%s/td.json", tmp);
	snprintf(cpath, sizeof(cpath), "%s/collateral.json", pki);
	snprintf(root, sizeof(root), "%s/root_ca.pem", pki);
	ok(sim_pki(pki, &e) == 0, "dev PKI (%s)", e.msg);

	_cleanup_(EVP_PKEY_freep) EVP_PKEY *k = ratls_key_generate(&e);
	ok(ratls_key_report_data(k, rd, &e) == 0, "binding report data");
	const char *vmc = "{\"os_image_hash\":\"" /* 32 bytes */
			  "0102030405060708091011121314151617181920212223242526272829303132\"}";
	ok(sim_attestation(pki, state, rd, vmc, &att, &e) == 0, "simulated attestation (%s)", e.msg);

	size_t clen;
	_cleanup_free_ uint8_t *coll = NULL;
	file_read_all(cpath, 1 << 20, &coll, &clen, &e);
	struct ratls_verifier *v = NULL, *intel = NULL;
	struct ratls_verifier_opts o = {.root_ca_path = root,
					.insecure_allow_external_trust_anchors = true,
					.collateral_json = (char *)coll,
					.collateral_json_len = clen};
	ok(ratls_verifier_new(&v, &o, &e) == 0 && ratls_verifier_is_dev(v), "dev-root verifier");
	struct ratls_verified r;
	ok(ratls_verify_bytes(v, att.data, att.len, 0, &r, &e) == 0, "simulated attestation verifies (%s)",
	   e.msg);
	ok(r.boot_log_checked && r.boot_log_ok, "boot log replays to RTMR0-2 (%s)", r.boot_log_error);
	is_str(tcb_status_name(r.dcap.status), "UpToDate", "TCB status");

	struct ratls_boot_info bi;
	ok(ratls_boot_info(&r, NULL, false, &bi, &e) == 0, "boot info (%s)", e.msg);
	is_hex(bi.app.app_id.p, bi.app.app_id.len, "5bb4ff9a3837357f19dc176407a5709c62eb6c56", "app_id");
	is_hex(bi.app.os_image_hash.p, bi.app.os_image_hash.len,
	       "0102030405060708091011121314151617181920212223242526272829303132",
	       "os_image_hash from vm_config");
	uint8_t dev_id[32];
	sha256(r.dcap.pck.ppid, 16, dev_id);
	ok(memcmp(bi.app.device_id.p, dev_id, 32) == 0, "device_id = SHA-256(PPID)");
	ok(bi.app.key_provider_info.len == strlen(SIM_KEY_PROVIDER), "key provider info (runtime mode)");
	_cleanup_json_ json_t *j = ratls_boot_info_to_json(&bi);
	is_str(json_string_value(json_object_get(j, "teeVariant")), "dstack-tdx", "webhook teeVariant");
	is_str(json_string_value(json_object_get(j, "tcbStatus")), "UpToDate", "webhook tcbStatus");
	is_str(json_string_value(json_object_get(j, "appId")), "5bb4ff9a3837357f19dc176407a5709c62eb6c56",
	       "webhook appId");
	is_int(json_object_size(j), 11, "webhook has 11 fields");
	uint8_t mr_runtime[32];
	memcpy(mr_runtime, bi.app.mr_aggregated.p, 32);
	ratls_boot_info_free(&bi);
	ok(ratls_boot_info(&r, NULL, true, &bi, &e) == 0, "boot-time boot info");
	ok(bi.app.key_provider_info.len == 0, "boot-time: empty key provider info");
	ok(memcmp(mr_runtime, bi.app.mr_aggregated.p, 32) != 0, "boot-time mr_aggregated differs");
	ratls_boot_info_free(&bi);
	ratls_verified_free(&r);

	/* RA-TLS client cert bound to k, stripped attestation. */
	struct attestation a;
	struct buf stripped = BUF_INIT;
	attestation_decode(att.data, att.len, &a, &e);
	attestation_strip_for_cert(&a, &e);
	attestation_encode(&a, &stripped, &e);
	attestation_free(&a);
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *tk = ratls_key_generate(&e);
	_cleanup_(X509_freep) X509 *temp = ratls_cert_temp_ca(tk, &e);
	_cleanup_(X509_freep) X509 *cc = ratls_cert_ra_client(k, stripped.data, stripped.len, temp, tk, &e);
	struct ratls_verified pr;
	ok(ratls_verify_peer_cert(v, cc, 0, &pr, &e) == 0, "peer cert verifies (%s)", e.msg);
	ok(!pr.boot_log_checked, "stripped log: boot log not checked");
	ratls_verified_free(&pr);
	struct app_info ai;
	ok(ratls_peer_app_info(v, cc, 0, &ai, &e) == 0 && ai.app_id.len == 20, "app info via attestation");
	app_info_free(&ai);
	ok(ratls_peer_app_info(NULL, cc, 0, &ai, &e) < 0, "no verifier, no app info ext: %s", e.msg);

	/* Legacy form: .1 quote + .2 ELGZv1 event log. */
	attestation_decode(att.data, att.len, &a, &e);
	json_t *evj = event_log_to_json(&a.event_log);
	char *evs = json_dumps(evj, JSON_COMPACT);
	struct buf gz = BUF_INIT;
	ok(ratls_event_log_compress(evs, strlen(evs), &gz, &e) == 0, "event log compresses under 16 KiB (%s)",
	   e.msg);
	struct ratls_cert_params legacy = {.cn = "legacy",
					   .quote = a.quote,
					   .quote_len = a.quote_len,
					   .event_log = gz.data,
					   .event_log_len = gz.len};
	_cleanup_(X509_freep) X509 *lc1 = ratls_cert_build(&legacy, k, temp, tk, &e);
	ok(ratls_verify_peer_cert(v, lc1, 0, &pr, &e) == 0, "legacy .1 + ELGZ .2 certificate verifies (%s)",
	   e.msg);
	is_int(pr.att.runtime_events.n, 7, "runtime events taken from the legacy log");
	ratls_verified_free(&pr);
	free(evs);
	json_decref(evj);
	buf_free(&gz);
	attestation_free(&a);

	/* GetQuote form: quote + stripped event log JSON (boot digests, runtime payloads). */
	attestation_decode(att.data, att.len, &a, &e);
	event_log_strip_for_quote(&a.event_log);
	evj = event_log_to_json(&a.event_log);
	evs = json_dumps(evj, JSON_COMPACT);
	struct attestation qa;
	ok(ratls_attestation_from_quote(a.quote, a.quote_len, evs, strlen(evs), vmc, &qa, &e) == 0,
	   "attestation from GetQuote output");
	ok(ratls_verify_attestation(v, &qa, 0, &pr, &e) == 0 && pr.boot_log_ok, "GetQuote form verifies (%s)",
	   e.msg);
	ratls_verified_free(&pr);
	free(evs);
	json_decref(evj);
	attestation_free(&a);

	/* Same attestation on another key: binding fails. */
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *other = ratls_key_generate(&e);
	_cleanup_(X509_freep) X509 *wrong =
	    ratls_cert_ra_client(other, stripped.data, stripped.len, temp, tk, &e);
	ok(ratls_verify_peer_cert(v, wrong, 0, &pr, &e) < 0 && strncmp(e.msg, "invalid quote: ", 15) == 0,
	   "unbound key: %s", e.msg);
	_cleanup_(X509_freep) X509 *none = ratls_cert_ra_client(other, NULL, 0, temp, tk, &e);
	ok(!ratls_cert_has_attestation(none) && ratls_cert_has_attestation(cc), "ratls_cert_has_attestation");
	ok(ratls_verify_peer_cert(v, none, 0, &pr, &e) < 0, "no extension refused");
	is_str(e.msg, "No attestation provided", "refusal text");

	/* AppInfo ext (gateway light path). */
	struct ratls_boot_info bi2;
	ratls_verify_bytes(v, att.data, att.len, 0, &r, &e);
	ratls_boot_info(&r, NULL, false, &bi2, &e);
	ratls_verified_free(&r);
	struct buf aib = BUF_INIT;
	app_info_encode(&bi2.app, &aib);
	struct ratls_cert_params lp = {.cn = "leaf", .app_info = aib.data, .app_info_len = aib.len};
	_cleanup_(X509_freep) X509 *lc = ratls_cert_build(&lp, other, temp, tk, &e);
	ok(ratls_peer_app_info(NULL, lc, 0, &ai, &e) == 0 &&
	       memcmp(ai.mr_aggregated.p, bi2.app.mr_aggregated.p, 32) == 0,
	   "app info from extension .9");
	app_info_free(&ai);
	ratls_boot_info_free(&bi2);
	buf_free(&aib);

	/* The same attestation in the V1 (MessagePack) encoding. */
	struct buf v1 = BUF_INIT;
	attestation_decode(att.data, att.len, &a, &e);
	ok(attestation_encode_v1(&a, &v1, &e) == 0 && v1.data[0] != 0, "V1 encoding");
	attestation_free(&a);
	ok(ratls_verify_bytes(v, v1.data, v1.len, 0, &r, &e) == 0, "V1 attestation verifies (%s)", e.msg);
	ratls_verified_free(&r);
	buf_free(&v1);

	/* V2 runtime events (JCS digests) force the V1 encoding. */
	char state2[160];
	snprintf(state2, sizeof(state2), "%s/td-v2.json", tmp);
	ok(sim_attestation_v(pki, state2, rd, NULL, 2, &v1, &e) == 0 && v1.data[0] != 0,
	   "V2-event attestation (MessagePack)");
	ok(ratls_verify_bytes(v, v1.data, v1.len, 0, &r, &e) == 0, "V2 events verify (%s)", e.msg);
	is_int(r.att.runtime_events.ev[0].version, 2, "event version 2 kept");
	ratls_verified_free(&r);
	buf_free(&v1);

	/* Tampered runtime event: RTMR3 mismatch. */
	attestation_decode(att.data, att.len, &a, &e);
	a.runtime_events.ev[1].payload[0] ^= 1;
	ok(ratls_verify_attestation(v, &a, 0, &r, &e) < 0, "tampered runtime event: %s", e.msg);
	attestation_free(&a);

	/* Intel-root verifier refuses the simulated quote. */
	struct ratls_verifier_opts io = {.collateral_json = (char *)coll, .collateral_json_len = clen};
	ok(ratls_verifier_new(&intel, &io, &e) == 0, "Intel-root verifier");
	ok(ratls_verify_bytes(intel, att.data, att.len, 0, &r, &e) < 0,
	   "dev quote refused by the Intel root: %s", e.msg);
	ratls_verifier_free(intel);
	ratls_verifier_free(v);
	buf_free(&stripped);
	buf_free(&att);
}

/* KMS SignCert flow: CSR → check → App CA + leaf → the leaf verifies as a peer. */
static void test_signcert(void)
{
	struct err e = ERR_INIT;
	char pki[128], state[128], cpath[160], root[160];
	uint8_t rd[64], app_id[20];
	struct buf att = BUF_INIT, csr_bytes = BUF_INIT, sig = BUF_INIT, stripped = BUF_INIT, aib = BUF_INIT;

	snprintf(pki, sizeof(pki), "%s/pki", tmp);
	snprintf(state, sizeof(state), "%s/td2.json", tmp);
	snprintf(cpath, sizeof(cpath), "%s/collateral.json", pki);
	snprintf(root, sizeof(root), "%s/root_ca.pem", pki);
	size_t clen;
	_cleanup_free_ uint8_t *coll = NULL;
	file_read_all(cpath, 1 << 20, &coll, &clen, &e);
	struct ratls_verifier *v = NULL;
	struct ratls_verifier_opts o = {.root_ca_path = root,
					.insecure_allow_external_trust_anchors = true,
					.collateral_json = (char *)coll,
					.collateral_json_len = clen};
	ratls_verifier_new(&v, &o, &e);

	_cleanup_(EVP_PKEY_freep) EVP_PKEY *lk = ratls_key_generate(&e);
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *other = ratls_key_generate(&e);
	ratls_key_report_data(lk, rd, &e);
	ok(sim_attestation(pki, state, rd, NULL, &att, &e) == 0, "attestation bound to the CSR key");
	char *sans[] = {"app.local", "127.0.0.1"};
	struct ratls_csr c = {.config = {.subject = "app",
					 .sans = sans,
					 .n_sans = 2,
					 .usage_server_auth = true,
					 .usage_client_auth = true,
					 .ext_quote = true,
					 .ext_app_info = true},
			      .attestation = att.data,
			      .attestation_len = att.len};
	der_write_public_key(lk, &c.pubkey, &c.pubkey_len, &e);
	ratls_csr_encode(&c, &csr_bytes);
	ratls_csr_sign(lk, csr_bytes.data, csr_bytes.len, &sig, &e);

	struct ratls_csr got;
	struct ratls_verified r;
	ok(ratls_signcert_check(v, 2, csr_bytes.data, csr_bytes.len, sig.data, sig.len, 0, &got, &r, &e) == 0,
	   "SignCert check passes (%s)", e.msg);
	struct ratls_boot_info bi;
	ok(ratls_boot_info(&r, NULL, true, &bi, &e) == 0, "boot-time BootInfo");
	memcpy(app_id, bi.app.app_id.p, 20);
	ok(ratls_attestation_for_cert(&r.att, &stripped, &e) == 0, "stripped attestation");
	struct app_info ai;
	attestation_app_info(&r.att, false, NULL, r.dcap.pck.ppid, 16, &ai, &e);
	app_info_encode(&ai, &aib);
	app_info_free(&ai);

	_cleanup_(EVP_PKEY_freep) EVP_PKEY *rk = ratls_key_generate(&e);
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *ak = ratls_key_generate(&e);
	_cleanup_(X509_freep) X509 *rootc = ratls_cert_root_ca(rk, &e);
	_cleanup_(X509_freep) X509 *appca = ratls_cert_app_ca(ak, app_id, 20, rootc, rk, &e);
	_cleanup_(X509_freep) X509 *leaf = ratls_cert_app_leaf(&got, app_id, 20, stripped.data, stripped.len,
							       aib.data, aib.len, appca, ak, &e);
	ok(leaf != NULL, "app leaf (%s)", e.msg);
	ok(X509_get_extended_key_usage(leaf) == (XKU_SSL_SERVER | XKU_SSL_CLIENT), "EKU server+client");
	struct ratls_verified pr;
	ok(ratls_verify_peer_cert(v, leaf, 0, &pr, &e) == 0, "leaf's embedded attestation verifies (%s)",
	   e.msg);
	ratls_verified_free(&pr);
	struct app_info li;
	ok(ratls_peer_app_info(NULL, leaf, 0, &li, &e) == 0 && li.app_id.len == 20 &&
	       memcmp(li.app_id.p, app_id, 20) == 0,
	   "leaf AppInfo extension");
	app_info_free(&li);
	ratls_boot_info_free(&bi);
	ratls_verified_free(&r);
	ratls_csr_free(&got);

	/* Signed by another key. */
	buf_reset(&sig);
	ratls_csr_sign(other, csr_bytes.data, csr_bytes.len, &sig, &e);
	ok(ratls_signcert_check(v, 2, csr_bytes.data, csr_bytes.len, sig.data, sig.len, 0, &got, &r, &e) < 0,
	   "CSR signed by another key: %s", e.msg);
	/* CSR for another key carrying this attestation. */
	free(c.pubkey);
	der_write_public_key(other, &c.pubkey, &c.pubkey_len, &e);
	buf_reset(&csr_bytes);
	ratls_csr_encode(&c, &csr_bytes);
	buf_reset(&sig);
	ratls_csr_sign(other, csr_bytes.data, csr_bytes.len, &sig, &e);
	ok(ratls_signcert_check(v, 2, csr_bytes.data, csr_bytes.len, sig.data, sig.len, 0, &got, &r, &e) <
		   0 &&
	       strstr(e.msg, "does not bind"),
	   "attestation for another key: %s", e.msg);
	free(c.pubkey);
	ratls_verifier_free(v);
	buf_free(&att);
	buf_free(&csr_bytes);
	buf_free(&sig);
	buf_free(&stripped);
	buf_free(&aib);
}

int main(int argc, char **argv)
{
	testdata = argc > 1 ? argv[1] : "../shared/testdata";
	strcpy(tmp, "/tmp/ratls-test-XXXXXX");
	if (!mkdtemp(tmp))
		return 1;
	test_ext();
	test_profiles();
	test_csr();
	test_dcap_fixture();
	test_guest_agent_fixture();
	test_simulated();
	test_signcert();
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		diag("cleanup failed");
	return tap_done();
}
