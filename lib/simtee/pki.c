/*
 * pki.c — generate and load the simulated TDX development PKI (see pki.h).
 *
 * Certificates follow the shape of Intel's: P-256 keys, ECDSA-SHA256,
 * CA:TRUE with keyCertSign/cRLSign on the CAs, the SGX extension on the PCK
 * leaf, issuer CN containing "PCK Platform CA" so the CA type is recognised.
 * Names say "dstack simtee" so nobody can mistake them for Intel's.
 */
#include "simtee/pki.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/hex.h"
#include "core/mem.h"
#include "tdx/ecdsa.h"
#include "tdx/pck.h"

const uint8_t SIMTEE_SGX_COMPONENTS[16] = {2, 2, 2, 2, 3, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0};
const uint8_t SIMTEE_TDX_COMPONENTS[16] = {
    SIMTEE_TDX_MODULE_SVN, SIMTEE_TDX_MODULE_VERSION, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
/* A recognisable pattern, as in the reference mock (0x44...). */
const uint8_t SIMTEE_QE_MRSIGNER[32] = {0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44,
					0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44,
					0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44};

DEFINE_TRIVIAL_CLEANUP_FUNC(X509_NAME *, X509_NAME_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(ASN1_OBJECT *, ASN1_OBJECT_free)

static EVP_PKEY *derive_key(const uint8_t *seed, size_t seed_len, const char *label, struct err *e)
{
	static const char domain[] = "dstack-simtee-p256-v1";

	for (uint32_t ctr = 0; ctr < 16; ctr++) {
		uint8_t d[32],
		    be[4] = {(uint8_t)(ctr >> 24), (uint8_t)(ctr >> 16), (uint8_t)(ctr >> 8), (uint8_t)ctr};
		unsigned int dl = 0;
		_cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();

		if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL) ||
		    !EVP_DigestUpdate(md, domain, strlen(domain)) || !EVP_DigestUpdate(md, seed, seed_len) ||
		    !EVP_DigestUpdate(md, label, strlen(label)) || !EVP_DigestUpdate(md, be, 4) ||
		    !EVP_DigestFinal_ex(md, d, &dl)) {
			err_ssl(e, "SHA-256");
			return NULL;
		}
		EVP_PKEY *k = ecdsa_p256_from_scalar(d, NULL);
		secure_zero(d, sizeof(d));
		if (k)
			return k;
		ERR_clear_error();
	}
	err_set(e, "could not derive key '%s'", label);
	return NULL;
}

static X509_NAME *make_name(const char *cn)
{
	X509_NAME *n = X509_NAME_new();

	if (!n)
		return NULL;
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC,
				   (const unsigned char *)"dstack simtee (development only)", -1, -1, 0);
	X509_NAME_add_entry_by_txt(n, "C", MBSTRING_ASC, (const unsigned char *)"XX", -1, -1, 0);
	return n;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;

	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return -1;
	int ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

/* Issue a certificate; issuer == NULL means self-signed. */
static X509 *issue(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, long serial, bool ca,
		   const struct pck_ext *sgx, struct err *e)
{
	_cleanup_(X509_freep) X509 *c = X509_new();
	_cleanup_(X509_NAME_freep) X509_NAME *name = make_name(cn);
	struct tm tm = {.tm_year = 120, .tm_mon = 0, .tm_mday = 1}; /* 2020-01-01 */
	time_t nb = timegm(&tm);

	tm.tm_year = 200; /* 2100-01-01 */
	time_t na = timegm(&tm);
	if (!c || !name || !X509_set_version(c, 2) || !ASN1_INTEGER_set(X509_get_serialNumber(c), serial) ||
	    !X509_set_subject_name(c, name) ||
	    !X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name) ||
	    !ASN1_TIME_set(X509_getm_notBefore(c), nb) || !ASN1_TIME_set(X509_getm_notAfter(c), na) ||
	    !X509_set_pubkey(c, key))
		goto fail;
	X509 *iss = issuer ? issuer : c;
	if (add_ext(c, iss, NID_subject_key_identifier, "hash") < 0 ||
	    add_ext(c, iss, NID_authority_key_identifier, "keyid:always") < 0)
		goto fail;
	if (ca) {
		if (add_ext(c, iss, NID_basic_constraints, "critical,CA:TRUE") < 0 ||
		    add_ext(c, iss, NID_key_usage, "critical,keyCertSign,cRLSign") < 0)
			goto fail;
	} else {
		if (add_ext(c, iss, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
		    add_ext(c, iss, NID_key_usage, "critical,digitalSignature,nonRepudiation") < 0)
			goto fail;
	}
	if (sgx) {
		_cleanup_buf_ struct buf der = BUF_INIT;
		_cleanup_(ASN1_OBJECT_freep) ASN1_OBJECT *obj = OBJ_txt2obj(PCK_SGX_EXT_OID_TEXT, 1);
		ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();

		pck_ext_encode(sgx, &der);
		if (!obj || !os || !ASN1_OCTET_STRING_set(os, der.data, (int)der.len)) {
			ASN1_OCTET_STRING_free(os);
			goto fail;
		}
		X509_EXTENSION *ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os);
		ASN1_OCTET_STRING_free(os);
		if (!ext || !X509_add_ext(c, ext, -1)) {
			X509_EXTENSION_free(ext);
			goto fail;
		}
		X509_EXTENSION_free(ext);
	}
	if (!X509_sign(c, issuer_key ? issuer_key : key, EVP_sha256()))
		goto fail;
	return TAKE_PTR(c);
fail:
	err_ssl(e, "issue certificate '%s'", cn);
	return NULL;
}

static X509_CRL *make_crl(X509 *issuer, EVP_PKEY *key, time_t from, time_t until, struct err *e)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t1 = ASN1_TIME_set(NULL, from), *t2 = ASN1_TIME_set(NULL, until);
	bool ok = crl && t1 && t2 && X509_CRL_set_version(crl, 1) &&
		  X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)) &&
		  X509_CRL_set1_lastUpdate(crl, t1) && X509_CRL_set1_nextUpdate(crl, t2) &&
		  X509_CRL_sort(crl) && X509_CRL_sign(crl, key, EVP_sha256());

	ASN1_TIME_free(t1);
	ASN1_TIME_free(t2);
	if (!ok) {
		X509_CRL_free(crl);
		err_ssl(e, "make CRL");
		return NULL;
	}
	return crl;
}

static char *cert_pem(X509 *c)
{
	_cleanup_(BIO_free_allp) BIO *b = BIO_new(BIO_s_mem());
	char *p;
	long n;

	if (!b || !PEM_write_bio_X509(b, c))
		return NULL;
	n = BIO_get_mem_data(b, &p);
	return strndup(p, (size_t)n);
}

static int write_key(const char *dir, const char *name, EVP_PKEY *k, struct err *e)
{
	_cleanup_(BIO_free_allp) BIO *b = BIO_new(BIO_s_mem());
	char path[4096];
	char *p;
	long n;

	if (!b || !PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL))
		return err_ssl(e, "encode key %s", name);
	n = BIO_get_mem_data(b, &p);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int rc = file_write_atomic(path, p, (size_t)n, 0600, e);
	OPENSSL_cleanse(p, (size_t)n);
	return rc;
}

static int write_file(const char *dir, const char *name, const void *data, size_t len, struct err *e)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return file_write_atomic(path, data, len, 0644, e);
}

static void iso_time(time_t t, char out[32])
{
	struct tm tm;

	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
}

static void put_components(struct buf *b, const uint8_t svn[16])
{
	buf_puts(b, "[");
	for (int i = 0; i < 16; i++)
		buf_printf(b, "%s{\"svn\":%u}", i ? "," : "", svn[i]);
	buf_puts(b, "]");
}

/* The TCB Info JSON text (what gets signed), built as text so the bytes are exact. */
static void tcb_info_text(struct buf *b, const char *issue, const char *next)
{
	static const char zero48[] = "000000000000000000000000000000000000000000000000"
				     "000000000000000000000000000000000000000000000000";

	buf_printf(
	    b,
	    "{\"id\":\"TDX\",\"version\":3,\"issueDate\":\"%s\",\"nextUpdate\":\"%s\",\"fmspc\":\"%s\","
	    "\"pceId\":\"0000\",\"tcbType\":0,\"tcbEvaluationDataNumber\":17,"
	    "\"tdxModule\":{\"mrsigner\":\"%s\",\"attributes\":\"0000000000000000\","
	    "\"attributesMask\":\"FFFFFFFFFFFFFFFF\"},"
	    "\"tdxModuleIdentities\":[{\"id\":\"TDX_%02X\",\"mrsigner\":\"%s\","
	    "\"attributes\":\"0000000000000000\",\"attributesMask\":\"FFFFFFFFFFFFFFFF\","
	    "\"tcbLevels\":[{\"tcb\":{\"isvsvn\":%u},\"tcbDate\":\"2024-03-13T00:00:00Z\","
	    "\"tcbStatus\":\"UpToDate\"}]}],\"tcbLevels\":[{\"tcb\":{\"sgxtcbcomponents\":",
	    issue, next, SIMTEE_FMSPC, zero48, SIMTEE_TDX_MODULE_VERSION, zero48, SIMTEE_TDX_MODULE_SVN);
	put_components(b, SIMTEE_SGX_COMPONENTS);
	buf_printf(b, ",\"pcesvn\":%u,\"tdxtcbcomponents\":", SIMTEE_PCESVN);
	put_components(b, SIMTEE_TDX_COMPONENTS);
	buf_puts(b, "},\"tcbDate\":\"2024-03-13T00:00:00Z\",\"tcbStatus\":\"UpToDate\"}]}");
}

static void qe_identity_text(struct buf *b, const char *issue, const char *next)
{
	char signer[65];

	hex_encode(SIMTEE_QE_MRSIGNER, 32, signer);
	for (char *p = signer; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	buf_printf(
	    b,
	    "{\"id\":\"TD_QE\",\"version\":2,\"issueDate\":\"%s\",\"nextUpdate\":\"%s\","
	    "\"tcbEvaluationDataNumber\":17,\"miscselect\":\"00000000\",\"miscselectMask\":\"FFFFFFFF\","
	    "\"attributes\":\"11000000000000000000000000000000\","
	    "\"attributesMask\":\"FBFFFFFFFFFFFFFF0000000000000000\",\"mrsigner\":\"%s\",\"isvprodid\":%u,"
	    "\"tcbLevels\":[{\"tcb\":{\"isvsvn\":%u},\"tcbDate\":\"2024-03-13T00:00:00Z\","
	    "\"tcbStatus\":\"UpToDate\"}]}",
	    issue, next, signer, SIMTEE_QE_ISVPRODID, SIMTEE_QE_ISVSVN);
}

static int sign_hex(EVP_PKEY *k, const char *text, char out[129], struct err *e)
{
	uint8_t sig[64];

	if (ecdsa_p256_sign_raw(k, text, strlen(text), sig, e) < 0)
		return -1;
	hex_encode(sig, 64, out);
	return 0;
}

static uint8_t *crl_der(X509_CRL *crl, size_t *len)
{
	unsigned char *der = NULL;
	int n = i2d_X509_CRL(crl, &der);

	if (n <= 0)
		return NULL;
	*len = (size_t)n;
	return der;
}

int simtee_pki_init(const char *dir, const struct simtee_pki_opts *o, struct err *e)
{
	uint8_t rnd[32];
	const uint8_t *seed = o ? o->seed : NULL;
	size_t seed_len = o ? o->seed_len : 0;
	time_t now = o && o->now ? o->now : time(NULL);
	int days = o && o->validity_days > 0 ? o->validity_days : 365;
	char issued[32], next[32];

	if (!seed) {
		if (RAND_bytes(rnd, sizeof(rnd)) != 1)
			return err_ssl(e, "random seed");
		seed = rnd;
		seed_len = sizeof(rnd);
	}
	if (mkdir_p(dir, 0700, e) < 0)
		return err_wrap(e, "simtee init");

	_cleanup_(EVP_PKEY_freep) EVP_PKEY *root_k = derive_key(seed, seed_len, "root-ca", e);
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *pckca_k = derive_key(seed, seed_len, "pck-platform-ca", e);
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *pck_k = derive_key(seed, seed_len, "pck", e);
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *tcb_k = derive_key(seed, seed_len, "tcb-signing", e);
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *att_k = derive_key(seed, seed_len, "attestation-key", e);
	if (!root_k || !pckca_k || !pck_k || !tcb_k || !att_k)
		return err_wrap(e, "simtee init");

	struct pck_ext x;
	uint8_t ppid_src[32];
	unsigned int pl = 0;
	memset(&x, 0, sizeof(x));
	EVP_Digest(seed, seed_len, ppid_src, &pl, EVP_sha256(), NULL);
	memcpy(x.ppid, ppid_src, 16);
	memcpy(x.comp_svn, SIMTEE_SGX_COMPONENTS, 16);
	memcpy(x.cpusvn, SIMTEE_SGX_COMPONENTS, 16);
	x.pcesvn = SIMTEE_PCESVN;
	hex_decode_exact(SIMTEE_FMSPC, x.fmspc, 6, NULL);

	_cleanup_(X509_freep) X509 *root =
	    issue("dstack simtee SGX Root CA", root_k, NULL, NULL, 1, true, NULL, e);
	_cleanup_(X509_freep) X509 *pckca =
	    root ? issue("dstack simtee SGX PCK Platform CA", pckca_k, root, root_k, 2, true, NULL, e) : NULL;
	_cleanup_(X509_freep) X509 *pck =
	    pckca ? issue("dstack simtee SGX PCK Certificate", pck_k, pckca, pckca_k, 3, false, &x, e) : NULL;
	_cleanup_(X509_freep) X509 *tcb =
	    pck ? issue("dstack simtee SGX TCB Signing", tcb_k, root, root_k, 4, false, NULL, e) : NULL;
	if (!tcb)
		return err_wrap(e, "simtee init");

	time_t from = now - 86400, until = now + (time_t)days * 86400;
	_cleanup_(X509_CRL_freep) X509_CRL *root_crl = make_crl(root, root_k, from, until, e);
	_cleanup_(X509_CRL_freep) X509_CRL *pck_crl =
	    root_crl ? make_crl(pckca, pckca_k, from, until, e) : NULL;
	if (!pck_crl)
		return err_wrap(e, "simtee init");

	iso_time(from, issued);
	iso_time(until, next);
	_cleanup_buf_ struct buf ti = BUF_INIT, qi = BUF_INIT, body = BUF_INIT;
	char ti_sig[129], qi_sig[129];
	tcb_info_text(&ti, issued, next);
	qe_identity_text(&qi, issued, next);
	if (sign_hex(tcb_k, (const char *)ti.data, ti_sig, e) < 0 ||
	    sign_hex(tcb_k, (const char *)qi.data, qi_sig, e) < 0)
		return err_wrap(e, "simtee init");

	_cleanup_free_ char *root_pem = cert_pem(root), *pckca_pem = cert_pem(pckca),
			    *pck_pem = cert_pem(pck), *tcb_pem = cert_pem(tcb);
	size_t rcl_len = 0, pcl_len = 0;
	_cleanup_free_ uint8_t *rcl = crl_der(root_crl, &rcl_len), *pcl = crl_der(pck_crl, &pcl_len);
	if (!root_pem || !pckca_pem || !pck_pem || !tcb_pem || !rcl || !pcl)
		return err_ssl(e, "simtee init: encode");

	if (write_key(dir, "root_ca.key", root_k, e) < 0 || write_key(dir, "pck_ca.key", pckca_k, e) < 0 ||
	    write_key(dir, "pck.key", pck_k, e) < 0 || write_key(dir, "tcb_signing.key", tcb_k, e) < 0 ||
	    write_key(dir, "attestation.key", att_k, e) < 0 ||
	    write_file(dir, "root_ca.pem", root_pem, strlen(root_pem), e) < 0 ||
	    write_file(dir, "pck_ca.pem", pckca_pem, strlen(pckca_pem), e) < 0 ||
	    write_file(dir, "pck.pem", pck_pem, strlen(pck_pem), e) < 0 ||
	    write_file(dir, "tcb_signing.pem", tcb_pem, strlen(tcb_pem), e) < 0 ||
	    write_file(dir, "root_ca.crl", rcl, rcl_len, e) < 0 ||
	    write_file(dir, "pck_ca.crl", pcl, pcl_len, e) < 0)
		return err_wrap(e, "simtee init");

	buf_printf(&body, "{\"tcbInfo\":%s,\"signature\":\"%s\"}", (const char *)ti.data, ti_sig);
	if (write_file(dir, "tcb_info.json", body.data, body.len, e) < 0)
		return err_wrap(e, "simtee init");
	buf_reset(&body);
	buf_printf(&body, "{\"enclaveIdentity\":%s,\"signature\":\"%s\"}", (const char *)qi.data, qi_sig);
	if (write_file(dir, "qe_identity.json", body.data, body.len, e) < 0)
		return err_wrap(e, "simtee init");

	_cleanup_buf_ struct buf pck_chain = BUF_INIT, tcb_chain = BUF_INIT;
	buf_puts(&pck_chain, pckca_pem);
	buf_puts(&pck_chain, root_pem);
	buf_puts(&tcb_chain, tcb_pem);
	buf_puts(&tcb_chain, root_pem);
	struct dcap_collateral_raw raw = {
	    .pck_crl_issuer_chain = (char *)pck_chain.data,
	    .root_ca_crl = rcl,
	    .root_ca_crl_len = rcl_len,
	    .pck_crl = pcl,
	    .pck_crl_len = pcl_len,
	    .tcb_info_issuer_chain = (char *)tcb_chain.data,
	    .tcb_info = (char *)ti.data,
	    .tcb_info_signature = ti_sig,
	    .qe_identity_issuer_chain = (char *)tcb_chain.data,
	    .qe_identity = (char *)qi.data,
	    .qe_identity_signature = qi_sig,
	};
	_cleanup_free_ char *cj = dcap_collateral_raw_to_json(&raw);
	if (!cj)
		return err_set(e, "simtee init: collateral JSON");
	return write_file(dir, "collateral.json", cj, strlen(cj), e);
}

static EVP_PKEY *read_key(const char *dir, const char *name, struct err *e)
{
	char path[4096];
	_cleanup_free_ uint8_t *d = NULL;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (file_read_all(path, 1 << 16, &d, &n, e) < 0)
		return NULL;
	_cleanup_(BIO_free_allp) BIO *b = BIO_new_mem_buf(d, (int)n);
	EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	secure_zero(d, n);
	if (!k)
		err_ssl(e, "%s is not a PEM private key", path);
	return k;
}

static int append_file(struct buf *b, const char *dir, const char *name, struct err *e)
{
	char path[4096];
	_cleanup_free_ uint8_t *d = NULL;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (file_read_all(path, 1 << 20, &d, &n, e) < 0)
		return -1;
	buf_append(b, d, n);
	return 0;
}

int simtee_pki_load(const char *dir, struct simtee_pki *p, struct err *e)
{
	_cleanup_buf_ struct buf chain = BUF_INIT;

	memset(p, 0, sizeof(*p));
	if (!(p->pck_key = read_key(dir, "pck.key", e)) ||
	    !(p->att_key = read_key(dir, "attestation.key", e)) ||
	    append_file(&chain, dir, "pck.pem", e) < 0 || append_file(&chain, dir, "pck_ca.pem", e) < 0 ||
	    append_file(&chain, dir, "root_ca.pem", e) < 0) {
		simtee_pki_free(p);
		return err_wrap(e, "simtee PKI '%s'", dir);
	}
	buf_putc(&chain, 0); /* real quotes end the PEM chain with a NUL */
	p->pck_chain_pem = (char *)buf_steal(&chain, &p->pck_chain_len);
	return 0;
}

void simtee_pki_free(struct simtee_pki *p)
{
	EVP_PKEY_free(p->pck_key);
	EVP_PKEY_free(p->att_key);
	free(p->pck_chain_pem);
	memset(p, 0, sizeof(*p));
}

int simtee_pki_collateral(const char *dir, struct dcap_collateral_raw *out, struct err *e)
{
	char path[4096];
	_cleanup_free_ uint8_t *d = NULL;
	size_t n;

	snprintf(path, sizeof(path), "%s/collateral.json", dir);
	if (file_read_all(path, 4 << 20, &d, &n, e) < 0)
		return -1;
	return dcap_collateral_raw_from_json((const char *)d, n, out, e);
}
