/*
 * devcerts.c — development key material for a dstack host (see hostcfg.h):
 * a self-signed P-256 dev CA, leaf certificates it signs (the gateway RPC
 * certificate, the wildcard certificate of the app base domain), the
 * gateway's WireGuard X25519 key and random admin tokens.
 *
 * Keys are created once and never replaced: a running gateway, or CVMs
 * peered with its WireGuard key, must survive a re-run of the generator.
 * Certificates are cheap to reissue and are, when the names they must cover
 * change. All secrets are written 0600 through file_write_atomic.
 */
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "codec/base64.h"
#include "codec/pem.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/hex.h"
#include "core/mem.h"
#include "crypto/ecx.h"
#include "hostcfg/hostcfg.h"

#define PEM_MAX (64 * 1024)
#define CA_DAYS 3650
#define LEAF_DAYS 397

static int read_text(const char *path, char **out, struct err *e)
{
	uint8_t *d = NULL;
	size_t n;
	if (file_read_all(path, PEM_MAX, &d, &n, e) < 0)
		return -1;
	*out = (char *)d;
	return 0;
}

static int write_secret_text(const char *path, const char *text, struct err *e)
{
	return file_write_atomic(path, text, strlen(text), 0600, e);
}

int hostcfg_ensure_wg_key(const char *path, char priv_b64[45], char pub_b64[45], bool *created, struct err *e)
{
	uint8_t sk[32], pk[32];
	*created = false;
	if (file_exists(path)) {
		_cleanup_free_ char *text = NULL;
		uint8_t *raw = NULL;
		size_t n = 0, tl;
		if (read_text(path, &text, e) < 0)
			return err_wrap(e, "WireGuard key %s", path);
		tl = strlen(text);
		while (tl && (text[tl - 1] == '\n' || text[tl - 1] == '\r' || text[tl - 1] == ' '))
			tl--;
		int rc = base64_decode(text, tl, &raw, &n, e);
		secure_zero(text, strlen(text));
		if (rc < 0 || n != 32) {
			if (raw)
				secure_zero(raw, n);
			free(raw);
			return err_set(e, "WireGuard key %s: not base64 of 32 bytes", path);
		}
		memcpy(sk, raw, 32);
		secure_zero(raw, n);
		free(raw);
		if (x25519_public(sk, pk, e) < 0)
			goto fail;
	} else {
		if (x25519_keypair(sk, pk, e) < 0)
			goto fail;
		/* WireGuard keys are clamped Curve25519 scalars (as `wg genkey` prints). */
		sk[0] &= 248;
		sk[31] = (uint8_t)((sk[31] & 127) | 64);
		if (x25519_public(sk, pk, e) < 0)
			goto fail;
		_cleanup_free_ char *b = base64_encode(sk, 32);
		struct buf line = BUF_INIT;
		buf_printf(&line, "%s\n", b);
		secure_zero(b, strlen(b));
		int rc = file_write_atomic(path, line.data, line.len, 0600, e);
		buf_free_secure(&line);
		if (rc < 0)
			goto fail;
		*created = true;
	}
	{
		_cleanup_free_ char *a = base64_encode(sk, 32);
		_cleanup_free_ char *b = base64_encode(pk, 32);
		snprintf(priv_b64, 45, "%s", a);
		snprintf(pub_b64, 45, "%s", b);
		secure_zero(a, strlen(a));
	}
	secure_zero(sk, sizeof sk);
	return 0;
fail:
	secure_zero(sk, sizeof sk);
	return err_wrap(e, "WireGuard key %s", path);
}

int hostcfg_ensure_token(const char *path, char token[65], bool *created, struct err *e)
{
	*created = false;
	if (file_exists(path)) {
		_cleanup_free_ char *text = NULL;
		if (read_text(path, &text, e) < 0)
			return err_wrap(e, "token %s", path);
		size_t n = strcspn(text, "\r\n");
		if (n != 64) {
			secure_zero(text, strlen(text));
			return err_set(e, "token %s: expected 64 hex characters", path);
		}
		memcpy(token, text, 64);
		token[64] = '\0';
		secure_zero(text, strlen(text));
		return 0;
	}
	uint8_t r[32];
	if (RAND_bytes(r, sizeof r) != 1)
		return err_ssl(e, "random token");
	hex_encode(r, sizeof r, token);
	secure_zero(r, sizeof r);
	char line[66];
	snprintf(line, sizeof line, "%s\n", token);
	int rc = write_secret_text(path, line, e);
	secure_zero(line, sizeof line);
	if (rc < 0)
		return err_wrap(e, "token %s", path);
	*created = true;
	return 0;
}

static EVP_PKEY *new_p256(struct err *e)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	if (!k)
		err_ssl(e, "P-256 key generation");
	return k;
}

/* Load the key at path, or create and store it (0600) when absent. */
static EVP_PKEY *ensure_key(const char *path, bool *created, struct err *e)
{
	if (file_exists(path)) {
		_cleanup_free_ char *pem = NULL;
		if (read_text(path, &pem, e) < 0)
			return NULL;
		EVP_PKEY *k = pem_read_private_key(pem, strlen(pem), e);
		secure_zero(pem, strlen(pem));
		if (!k)
			err_wrap(e, "%s", path);
		return k;
	}
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *k = new_p256(e);
	if (!k)
		return NULL;
	_cleanup_free_ char *pem = pem_write_private_key(k, e);
	if (!pem)
		return NULL;
	int rc = write_secret_text(path, pem, e);
	secure_zero(pem, strlen(pem));
	if (rc < 0)
		return NULL;
	*created = true;
	return TAKE_PTR(k);
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value, struct err *e)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	_cleanup_(X509_EXTENSION_freep) X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext || !X509_add_ext(cert, ext, -1))
		return err_ssl(e, "certificate extension %s", OBJ_nid2sn(nid));
	return 0;
}

/* A certificate for key, issued by (issuer, issuer_key) or self-signed. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, const char *san,
		       int days, struct err *e)
{
	_cleanup_(X509_freep) X509 *c = X509_new();
	_cleanup_(BN_freep) BIGNUM *serial = BN_new();
	if (!c || !serial || !BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
	    !BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(c)) || !X509_set_version(c, 2))
		return err_ssl(e, "certificate"), NULL;
	/* Backdated an hour for clock skew between host and guests. */
	if (!X509_gmtime_adj(X509_getm_notBefore(c), -3600) ||
	    !X509_gmtime_adj(X509_getm_notAfter(c), (long)days * 24 * 3600))
		return err_ssl(e, "certificate validity"), NULL;
	X509_NAME *name = X509_get_subject_name(c);
	if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"dstack dev", -1, -1,
					0) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0))
		return err_ssl(e, "certificate name"), NULL;
	if (!X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name) ||
	    !X509_set_pubkey(c, key))
		return err_ssl(e, "certificate"), NULL;
	X509 *iss = issuer ? issuer : c;
	if (add_ext(c, iss, NID_subject_key_identifier, "hash", e) < 0 ||
	    add_ext(c, iss, NID_authority_key_identifier, "keyid:always", e) < 0)
		return NULL;
	if (!san) {
		if (add_ext(c, iss, NID_basic_constraints, "critical,CA:TRUE", e) < 0 ||
		    add_ext(c, iss, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature", e) < 0)
			return NULL;
	} else {
		if (add_ext(c, iss, NID_basic_constraints, "critical,CA:FALSE", e) < 0 ||
		    add_ext(c, iss, NID_key_usage, "critical,digitalSignature", e) < 0 ||
		    add_ext(c, iss, NID_ext_key_usage, "serverAuth,clientAuth", e) < 0 ||
		    add_ext(c, iss, NID_subject_alt_name, san, e) < 0)
			return NULL;
	}
	if (!X509_sign(c, issuer_key ? issuer_key : key, EVP_sha256()))
		return err_ssl(e, "signing the certificate"), NULL;
	return TAKE_PTR(c);
}

static int write_cert(const char *path, X509 *c, struct err *e)
{
	_cleanup_free_ char *pem = pem_write_cert(c, e);
	if (!pem)
		return -1;
	return file_write_atomic(path, pem, strlen(pem), 0644, e);
}

static X509 *load_cert(const char *path, struct err *e)
{
	_cleanup_free_ char *pem = NULL;
	if (read_text(path, &pem, e) < 0)
		return NULL;
	X509 *c = pem_read_cert(pem, strlen(pem), e);
	if (!c)
		err_wrap(e, "%s", path);
	return c;
}

int hostcfg_ensure_dev_ca(const char *key_path, const char *cert_path, enum hostcfg_written *what,
			  struct err *e)
{
	bool new_key = false;
	*what = HOSTCFG_KEPT;
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *k = ensure_key(key_path, &new_key, e);
	if (!k)
		return err_wrap(e, "dev CA key");
	if (file_exists(cert_path) && !new_key) {
		_cleanup_(X509_freep) X509 *c = load_cert(cert_path, e);
		if (!c)
			return err_wrap(e, "dev CA");
		if (X509_check_private_key(c, k) == 1)
			return 0;
		ERR_clear_error();
	}
	_cleanup_(X509_freep) X509 *c = make_cert(k, "dstack dev CA", NULL, NULL, NULL, CA_DAYS, e);
	if (!c || write_cert(cert_path, c, e) < 0)
		return err_wrap(e, "dev CA certificate");
	*what = new_key ? HOSTCFG_CREATED : HOSTCFG_REISSUED;
	return 0;
}

/* Does cert carry exactly these DNS names and the given key? */
static bool cert_matches(X509 *c, EVP_PKEY *k, const char *const *names, size_t n)
{
	if (X509_check_private_key(c, k) != 1) {
		ERR_clear_error();
		return false;
	}
	if (X509_cmp_current_time(X509_get0_notAfter(c)) <= 0)
		return false;
	GENERAL_NAMES *gens = X509_get_ext_d2i(c, NID_subject_alt_name, NULL, NULL);
	if (!gens)
		return false;
	bool ok = (size_t)sk_GENERAL_NAME_num(gens) == n;
	for (size_t i = 0; ok && i < n; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, (int)i);
		ok = g->type == GEN_DNS && (size_t)ASN1_STRING_length(g->d.dNSName) == strlen(names[i]) &&
		     !memcmp(ASN1_STRING_get0_data(g->d.dNSName), names[i], strlen(names[i]));
	}
	GENERAL_NAMES_free(gens);
	return ok;
}

int hostcfg_ensure_leaf(const char *ca_key_path, const char *ca_cert_path, const char *key_path,
			const char *cert_path, const char *const *names, size_t n_names, bool reissue,
			enum hostcfg_written *what, struct err *e)
{
	bool new_key = false, had_cert = file_exists(cert_path);
	*what = HOSTCFG_KEPT;
	if (n_names == 0)
		return err_set(e, "certificate %s: no names", cert_path);
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *k = ensure_key(key_path, &new_key, e);
	if (!k)
		return err_wrap(e, "key %s", key_path);
	if (!reissue && !new_key && had_cert) {
		_cleanup_(X509_freep) X509 *old = load_cert(cert_path, e);
		if (old && cert_matches(old, k, names, n_names))
			return 0;
		err_clear(e);
	}
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *ca_key = NULL;
	{
		_cleanup_free_ char *pem = NULL;
		if (read_text(ca_key_path, &pem, e) < 0)
			return err_wrap(e, "dev CA key");
		ca_key = pem_read_private_key(pem, strlen(pem), e);
		secure_zero(pem, strlen(pem));
		if (!ca_key)
			return err_wrap(e, "dev CA key %s", ca_key_path);
	}
	_cleanup_(X509_freep) X509 *ca = load_cert(ca_cert_path, e);
	if (!ca)
		return err_wrap(e, "dev CA");
	struct buf san = BUF_INIT;
	for (size_t i = 0; i < n_names; i++)
		buf_printf(&san, "%sDNS:%s", i ? "," : "", names[i]);
	_cleanup_(X509_freep) X509 *c =
	    make_cert(k, names[0], ca, ca_key, (const char *)san.data, LEAF_DAYS, e);
	buf_free(&san);
	if (!c)
		return err_wrap(e, "certificate %s", cert_path);
	if (write_cert(cert_path, c, e) < 0)
		return err_wrap(e, "certificate %s", cert_path);
	*what = new_key || !had_cert ? HOSTCFG_CREATED : HOSTCFG_REISSUED;
	return 0;
}

char *hostcfg_self_dir(struct err *e)
{
	char p[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", p, sizeof p - 1);
	if (n <= 0) {
		err_errno(e, "readlink /proc/self/exe");
		return NULL;
	}
	p[n] = '\0';
	char *slash = strrchr(p, '/');
	if (slash)
		*slash = '\0';
	return strdup(p);
}

static bool executable(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
}

char *hostcfg_find_program(const char *name, const char *build_rel)
{
	char p[PATH_MAX];
	_cleanup_free_ char *self = hostcfg_self_dir(NULL);
	if (self && build_rel) {
		snprintf(p, sizeof p, "%s/%s", self, build_rel);
		if (executable(p))
			return realpath(p, NULL);
	}
	if (self) {
		snprintf(p, sizeof p, "%s/%s", self, name);
		if (executable(p))
			return strdup(p);
	}
	const char *path = getenv("PATH");
	if (!path)
		return NULL;
	_cleanup_free_ char *copy = strdup(path);
	for (char *save = NULL, *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		snprintf(p, sizeof p, "%s/%s", *d ? d : ".", name);
		if (executable(p))
			return strdup(p);
	}
	return NULL;
}
