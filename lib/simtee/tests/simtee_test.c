/*
 * simtee_test.c — the simulated TDX end to end through the production
 * verifier: dev PKI generation (modes, determinism), simulated TD state,
 * RTMR extend under concurrent processes, boot log consistent with RTMR0-2,
 * quotes that verify only when the dev root is configured, and the tee.h
 * selector.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/hex.h"
#include "core/tap.h"
#include "simtee/pki.h"
#include "simtee/td.h"
#include "tdx/collateral.h"
#include "tdx/ecdsa.h"
#include "tdx/verify.h"

static char dir[256], state[300];

static void sha384cat(uint8_t mr[48], const uint8_t d[48])
{
	uint8_t tmp[96];
	unsigned int n;

	memcpy(tmp, mr, 48);
	memcpy(tmp + 48, d, 48);
	EVP_Digest(tmp, 96, mr, &n, EVP_sha384(), NULL);
}

static int mode_of(const char *name)
{
	char p[512];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return stat(p, &st) == 0 ? (int)(st.st_mode & 0777) : -1;
}

static X509 *dev_root(void)
{
	char p[512];
	X509 *x = NULL;
	struct err e = ERR_INIT;

	snprintf(p, sizeof(p), "%s/root_ca.pem", dir);
	if (dcap_trust_anchor_select(true, p, &x, &e) < 0)
		diag("%s", e.msg);
	return x;
}

/* Verify quote bytes against DIR's collateral with the given root (NULL = Intel). */
static int verify_bytes(const uint8_t *qb, size_t len, X509 *root, struct dcap_result *r, struct quote *q,
			struct err *e)
{
	struct dcap_collateral_raw raw;
	struct dcap_collateral *c = NULL;

	if (simtee_pki_collateral(dir, &raw, e) < 0)
		return -1;
	int rc = dcap_collateral_load(&c, &raw, root, time(NULL), e);
	dcap_collateral_raw_free(&raw);
	if (rc < 0)
		return -1;
	rc = quote_parse(q, qb, len, e);
	if (rc == 0) {
		rc = dcap_verify(q, c, time(NULL), r, e);
		if (rc < 0)
			quote_free(q);
	}
	dcap_collateral_free(c);
	return rc;
}

static void test_pki(void)
{
	struct err e = ERR_INIT;
	struct simtee_pki_opts o = {.seed = (const uint8_t *)"test-seed", .seed_len = 9};
	char dir2[300];

	ok(simtee_pki_init(dir, &o, &e) == 0, "simtee init (%s)", e.msg);
	is_int(mode_of("pck.key"), 0600, "pck.key is 0600");
	is_int(mode_of("root_ca.key"), 0600, "root_ca.key is 0600");
	is_int(mode_of("attestation.key"), 0600, "attestation.key is 0600");
	is_int(mode_of("root_ca.pem"), 0644, "root_ca.pem is 0644");
	ok(mode_of("collateral.json") > 0 && mode_of("tcb_info.json") > 0 &&
	       mode_of("qe_identity.json") > 0 && mode_of("root_ca.crl") > 0 && mode_of("pck_ca.crl") > 0,
	   "collateral files written");

	snprintf(dir2, sizeof(dir2), "%s/again", dir);
	ok(simtee_pki_init(dir2, &o, &e) == 0, "second init with the same seed");
	char p1[512], p2[512];
	_cleanup_free_ uint8_t *k1 = NULL, *k2 = NULL;
	size_t l1, l2;
	snprintf(p1, sizeof(p1), "%s/attestation.key", dir);
	snprintf(p2, sizeof(p2), "%s/attestation.key", dir2);
	ok(file_read_all(p1, 4096, &k1, &l1, &e) == 0 && file_read_all(p2, 4096, &k2, &l2, &e) == 0 &&
	       l1 == l2 && memcmp(k1, k2, l1) == 0,
	   "same seed gives the same keys");

	/* The PCK leaf carries a parseable SGX extension with the simulated FMSPC. */
	struct simtee_pki pki;
	ok(simtee_pki_load(dir, &pki, &e) == 0, "PKI loads");
	_cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain =
	    pem_chain_parse(pki.pck_chain_pem, pki.pck_chain_len, &e);
	struct pck_ext x;
	enum pck_ca_type ca;
	ok(chain && sk_X509_num(chain) == 3, "PCK chain has 3 certificates");
	ok(chain && pck_ext_from_cert(sk_X509_value(chain, 0), &x, &e) == 0, "SGX extension parses (%s)",
	   e.msg);
	is_hex(x.fmspc, 6, "00806f050000", "FMSPC");
	is_int(x.pcesvn, SIMTEE_PCESVN, "PCESVN");
	ok(memcmp(x.comp_svn, SIMTEE_SGX_COMPONENTS, 16) == 0 &&
	       memcmp(x.cpusvn, SIMTEE_SGX_COMPONENTS, 16) == 0,
	   "TCB components and CPUSVN");
	ok(chain && pck_ca_type_of(sk_X509_value(chain, 0), &ca, &e) == 0 && ca == PCK_CA_PLATFORM,
	   "issued by a PCK Platform CA");
	simtee_pki_free(&pki);
}

static void test_td_quote(void)
{
	struct err e = ERR_INIT;
	uint8_t rd[64], cfg[48];
	_cleanup_free_ uint8_t *qb = NULL;
	size_t len;
	struct quote q;
	struct dcap_result r;

	memset(cfg, 0, sizeof(cfg));
	cfg[0] = 1;
	memset(cfg + 1, 0xab, 32);
	struct simtee_td_init init = {.mr_config_id = cfg};
	ok(simtee_td_create(state, &init, &e) == 0, "TD state created (%s)", e.msg);
	for (int i = 0; i < 64; i++)
		rd[i] = (uint8_t)(i * 3);
	ok(simtee_td_quote(dir, state, rd, &qb, &len, &e) == 0, "simulated quote (%s)", e.msg);

	/* Default configuration: Intel root. */
	ok(verify_bytes(qb, len, NULL, &r, &q, &e) < 0, "simulated quote refused with the Intel root");
	is_str(e.msg, "Invalid collateral: root CA CRL is not signed by the trust anchor", "refusal message");

	/* Dev root configured explicitly. */
	X509 *root = dev_root();
	ok(root != NULL, "dev root loads with the insecure flag");
	ok(verify_bytes(qb, len, root, &r, &q, &e) == 0, "simulated quote verifies with the dev root (%s)",
	   e.msg);
	is_str(tcb_status_name(r.status), "UpToDate", "status UpToDate");
	is_int(r.advisory_ids.n, 0, "no advisories");
	ok(memcmp(q.td.report_data, rd, 64) == 0, "report_data carried");
	ok(memcmp(q.td.mr_config_id, cfg, 48) == 0, "mr_config_id carried");
	is_hex(q.td.mr_td, 4, "11111111", "default MRTD 0x11..");
	is_hex(q.td.td_attributes, 8, "0000001000000000", "td_attributes SEPT_VE_DISABLE only");
	ok(q.td.mr_signer_seam[0] == 0 && q.td.mr_signer_seam[47] == 0, "mr_signer_seam zero");
	quote_free(&q);
	dcap_result_free(&r);

	/* Tampering with the simulated quote is caught like a real one. */
	qb[200] ^= 1;
	ok(verify_bytes(qb, len, root, &r, &q, &e) < 0, "tampered simulated quote rejected");
	is_str(e.msg, "Quote verification failed: quote signature by the attestation key does not verify",
	       "message");
	qb[200] ^= 1;
	X509_free(root);
}

/* Minimal CCEL replay: SpecID header, then SHA-384 PCR_EVENT2 records. */
static int replay_ccel(const uint8_t *p, size_t n, uint8_t rtmr[4][48])
{
	size_t off = 0;

	memset(rtmr, 0, 4 * 48);
	if (n < 32)
		return -1;
	uint32_t hdr_size = p[28] | p[29] << 8 | p[30] << 16 | (uint32_t)p[31] << 24;
	off = 32 + hdr_size;
	while (off + 4 <= n) {
		uint32_t pcr = p[off] | p[off + 1] << 8 | p[off + 2] << 16 | (uint32_t)p[off + 3] << 24;
		if (pcr == 0xffffffff)
			return 0;
		if (off + 12 + 2 + 48 + 4 > n || pcr < 1 || pcr > 4)
			return -1;
		sha384cat(rtmr[pcr - 1], p + off + 14);
		uint32_t sz =
		    p[off + 62] | p[off + 63] << 8 | p[off + 64] << 16 | (uint32_t)p[off + 65] << 24;
		off += 66 + sz;
	}
	return -1;
}

static void test_extend_and_log(void)
{
	struct err e = ERR_INIT;
	struct simtee_td_state st;
	uint8_t d[48], want[48], rt[4][48];
	_cleanup_free_ uint8_t *ccel = NULL;
	size_t ccel_len;

	ok(simtee_td_event_log(state, &ccel, &ccel_len, &e) == 0, "event log (%s)", e.msg);
	ok(simtee_td_read(state, &st, &e) == 0, "state reads");
	ok(replay_ccel(ccel, ccel_len, rt) == 0, "CCEL parses");
	ok(memcmp(rt[0], st.rtmr[0], 48) == 0 && memcmp(rt[1], st.rtmr[1], 48) == 0 &&
	       memcmp(rt[2], st.rtmr[2], 48) == 0,
	   "CCEL replay matches RTMR0-2");
	ok(simtee_td_extend(state, 0, d, &e) < 0, "RTMR0 cannot be extended");

	/* 4 processes × 25 extends of the same digest: no update may be lost. */
	memset(d, 0x5a, sizeof(d));
	memcpy(want, st.rtmr[3], 48);
	for (int i = 0; i < 100; i++)
		sha384cat(want, d);
	for (int c = 0; c < 4; c++) {
		pid_t pid = fork();
		if (pid == 0) {
			for (int i = 0; i < 25; i++)
				if (simtee_td_extend(state, 3, d, NULL) < 0)
					_exit(1);
			_exit(0);
		}
	}
	int fails = 0, status;
	while (wait(&status) > 0)
		fails += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
	is_int(fails, 0, "concurrent extenders succeed");
	ok(simtee_td_read(state, &st, &e) == 0 && memcmp(st.rtmr[3], want, 48) == 0,
	   "RTMR3 = 100 chained extends (locking works)");
}

/* Verify a quote built from `st` against DIR's collateral (optionally with a replaced TCB Info). */
static int verify_state(const struct simtee_td_state *st, const char *tcb_info, const char *tcb_sig,
			struct dcap_result *r, struct err *e)
{
	struct simtee_pki pki;
	struct dcap_collateral_raw raw;
	struct dcap_collateral *c = NULL;
	struct quote q;
	uint8_t rd[64] = {0};
	_cleanup_buf_ struct buf qb = BUF_INIT;
	_cleanup_(X509_freep) X509 *root = dev_root();
	int rc = -1;

	if (simtee_pki_load(dir, &pki, e) < 0)
		return -1;
	if (simtee_build_quote(&pki, st, rd, &qb, e) < 0 || simtee_pki_collateral(dir, &raw, e) < 0) {
		simtee_pki_free(&pki);
		return -1;
	}
	simtee_pki_free(&pki);
	if (tcb_info) {
		free(raw.tcb_info);
		free(raw.tcb_info_signature);
		raw.tcb_info = strdup(tcb_info);
		raw.tcb_info_signature = strdup(tcb_sig);
	}
	if (dcap_collateral_load(&c, &raw, root, time(NULL), e) == 0 &&
	    quote_parse(&q, qb.data, qb.len, e) == 0) {
		rc = dcap_verify(&q, c, time(NULL), r, e);
		quote_free(&q);
	}
	dcap_collateral_free(c);
	dcap_collateral_raw_free(&raw);
	return rc;
}

/* TD attribute policy and TCB status folding, on quotes signed for real. */
static void test_policy(void)
{
	struct err e = ERR_INIT;
	struct simtee_td_state st, t;
	struct dcap_result r;

	ok(simtee_td_read(state, &st, &e) == 0, "state for policy tests");
	t = st;
	t.td_attributes[0] |= 1;
	ok(verify_state(&t, NULL, NULL, &r, &e) < 0, "debug TD rejected");
	is_str(e.msg, "Quote verification failed: TD is in debug mode", "debug message");
	t = st;
	t.td_attributes[3] = 0;
	ok(verify_state(&t, NULL, NULL, &r, &e) < 0, "TD without SEPT_VE_DISABLE rejected");
	is_str(e.msg, "Quote verification failed: TD attribute SEPT_VE_DISABLE is not set", "SEPT message");
	t = st;
	t.td_attributes[1] = 0x01;
	ok(verify_state(&t, NULL, NULL, &r, &e) < 0, "reserved TD attribute bit rejected");
	ok(strstr(e.msg, "reserved bits set") != NULL, "reserved message: %s", e.msg);

	/* Re-signed TCB Info: platform level OutOfDate is reported, Revoked fails. */
	struct dcap_collateral_raw raw;
	char path[512];
	_cleanup_free_ uint8_t *kd = NULL;
	size_t kl = 0;
	snprintf(path, sizeof(path), "%s/tcb_signing.key", dir);
	ok(simtee_pki_collateral(dir, &raw, &e) == 0 && file_read_all(path, 1 << 16, &kd, &kl, &e) == 0,
	   "TCB signing key");
	BIO *bio = BIO_new_mem_buf(kd, (int)kl);
	EVP_PKEY *k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	const char *statuses[] = {"OutOfDate", "Revoked"};
	for (int i = 0; i < 2; i++) {
		_cleanup_buf_ struct buf ti = BUF_INIT;
		char *last = strstr(raw.tcb_info, "\"tcbStatus\":\"UpToDate\"}]}"), sig_hex[129];
		uint8_t sig[64];
		/* The platform level is the last "tcbStatus" in the document. */
		for (char *p = last; p; p = strstr(p + 1, "\"tcbStatus\":\"UpToDate\"}]}"))
			last = p;
		buf_append(&ti, raw.tcb_info, (size_t)(last - raw.tcb_info));
		buf_printf(&ti, "\"tcbStatus\":\"%s\",\"advisoryIDs\":[\"INTEL-SA-99999\"]}]}", statuses[i]);
		ok(ecdsa_p256_sign_raw(k, ti.data, ti.len, sig, &e) == 0, "re-sign TCB Info");
		hex_encode(sig, 64, sig_hex);
		int rc = verify_state(&st, (const char *)ti.data, sig_hex, &r, &e);
		if (i == 0) {
			ok(rc == 0, "OutOfDate platform still verifies (%s)", e.msg);
			is_str(tcb_status_name(r.status), "OutOfDate", "status reported");
			ok(r.advisory_ids.n == 1 && strcmp(r.advisory_ids.v[0], "INTEL-SA-99999") == 0,
			   "advisory reported");
			dcap_result_free(&r);
		} else {
			ok(rc < 0, "Revoked platform rejected");
			is_str(e.msg, "Quote verification failed: TCB revoked", "revoked message");
		}
	}
	EVP_PKEY_free(k);
	dcap_collateral_raw_free(&raw);
}

static void test_tee_interface(void)
{
	struct err e = ERR_INIT;
	struct tee *t = NULL;
	struct tee_config cfg = {
	    .backend = "auto",
	    .tdx = {.configfs_report = "/nonexistent/tsm", .tdx_guest_dev = "/nonexistent/dev"},
	    .simtee_dir = dir,
	    .simtee_state = state};
	uint8_t rd[64] = {7}, d[48] = {1};
	_cleanup_free_ uint8_t *qb = NULL;
	size_t len;
	struct quote q;
	struct dcap_result r;

	ok(tee_open(&t, &cfg, &e) == 0, "tee_open auto (%s)", e.msg);
	is_str(t ? t->ops->name : "", "simtee", "auto picks simtee without TDX");
	ok(tee_extend_rtmr(t, 3, d, &e) == 0, "extend through the interface");
	ok(tee_quote(t, rd, &qb, &len, &e) == 0, "quote through the interface");
	X509 *root = dev_root();
	ok(verify_bytes(qb, len, root, &r, &q, &e) == 0, "interface quote verifies (%s)", e.msg);
	struct simtee_td_state st;
	simtee_td_read(state, &st, &e);
	ok(memcmp(q.td.rtmr[3], st.rtmr[3], 48) == 0, "quote carries the extended RTMR3");
	quote_free(&q);
	dcap_result_free(&r);
	X509_free(root);
	tee_close(t);
	cfg.backend = "sgx";
	ok(tee_open(&t, &cfg, &e) < 0, "unknown backend refused");
}

int main(void)
{
	char tmpl[] = "/tmp/simtee-test-XXXXXX";

	if (!mkdtemp(tmpl))
		return 1;
	snprintf(dir, sizeof(dir), "%s/pki", tmpl);
	snprintf(state, sizeof(state), "%s/td.json", tmpl);
	test_pki();
	test_td_quote();
	test_extend_and_log();
	test_policy();
	test_tee_interface();
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpl);
	if (system(cmd) != 0)
		diag("cleanup failed");
	return tap_done();
}
