/*
 * ecdsa.c — see ecdsa.h. OpenSSL 3 provider APIs only (EVP_PKEY_fromdata,
 * EVP_DigestVerify); r‖s is converted through ECDSA_SIG.
 */
#include "tdx/ecdsa.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/param_build.h>

#include "core/cleanup.h"
#include "core/mem.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(OSSL_PARAM_BLD *, OSSL_PARAM_BLD_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(OSSL_PARAM *, OSSL_PARAM_free)

EVP_PKEY *ecdsa_p256_pub_from_raw(const uint8_t xy[64], struct err *e)
{
	uint8_t point[65];
	OSSL_PARAM params[3];
	EVP_PKEY *key = NULL;
	_cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);

	point[0] = 0x04;
	memcpy(point + 1, xy, 64);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"prime256v1", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point));
	params[2] = OSSL_PARAM_construct_end();
	if (!ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
		err_ssl(e, "invalid P-256 public key");
		return NULL;
	}
	return key;
}

int ecdsa_p256_pub_to_raw(EVP_PKEY *key, uint8_t xy[64], struct err *e)
{
	uint8_t point[65];
	size_t n = 0;

	if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point), &n) <= 0 ||
	    n != 65 || point[0] != 0x04)
		return err_ssl(e, "not an uncompressed P-256 public key");
	memcpy(xy, point + 1, 64);
	return 0;
}

int ecdsa_p256_verify_raw(EVP_PKEY *key, const void *msg, size_t len, const uint8_t sig[64], struct err *e)
{
	_cleanup_(ECDSA_SIG_freep) ECDSA_SIG *s = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, 32, NULL), *sv = BN_bin2bn(sig + 32, 32, NULL);
	unsigned char der[80], *p = der;
	_cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();

	if (!s || !r || !sv || !ECDSA_SIG_set0(s, r, sv)) {
		BN_free(r);
		BN_free(sv);
		return err_ssl(e, "ECDSA signature");
	}
	int dl = i2d_ECDSA_SIG(s, NULL);
	if (dl <= 0 || dl > (int)sizeof(der) || i2d_ECDSA_SIG(s, &p) != dl)
		return err_ssl(e, "ECDSA signature encoding");
	if (!md || EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) <= 0)
		return err_ssl(e, "ECDSA verify init");
	int rc = EVP_DigestVerify(md, der, (size_t)dl, msg, len);
	if (rc < 0)
		return err_ssl(e, "ECDSA verify");
	ERR_clear_error();
	return rc == 1 ? 1 : 0;
}

int ecdsa_p256_sign_raw(EVP_PKEY *key, const void *msg, size_t len, uint8_t sig[64], struct err *e)
{
	_cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char der[80];
	size_t dl = sizeof(der);
	const unsigned char *p = der;
	const BIGNUM *r, *s;

	if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) <= 0 ||
	    EVP_DigestSign(md, der, &dl, msg, len) <= 0)
		return err_ssl(e, "ECDSA sign");
	_cleanup_(ECDSA_SIG_freep) ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)dl);
	if (!es)
		return err_ssl(e, "ECDSA signature decode");
	ECDSA_SIG_get0(es, &r, &s);
	if (BN_bn2binpad(r, sig, 32) != 32 || BN_bn2binpad(s, sig + 32, 32) != 32)
		return err_set(e, "ECDSA signature component too large");
	return 0;
}

EVP_PKEY *ecdsa_p256_generate(struct err *e)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

	if (!k)
		err_ssl(e, "P-256 key generation");
	return k;
}

EVP_PKEY *ecdsa_p256_from_scalar(const uint8_t d[32], struct err *e)
{
	_cleanup_(BN_freep) BIGNUM *priv = BN_bin2bn(d, 32, NULL);
	_cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	_cleanup_(OSSL_PARAM_BLD_freep) OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	_cleanup_(OSSL_PARAM_freep) OSSL_PARAM *params = NULL;
	EC_GROUP *group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	EC_POINT *pub = group ? EC_POINT_new(group) : NULL;
	uint8_t point[65];
	EVP_PKEY *key = NULL;
	int ok = 0;

	if (!priv || !ctx || !bld || !pub || BN_is_zero(priv) ||
	    BN_cmp(priv, EC_GROUP_get0_order(group)) >= 0)
		goto out;
	if (!EC_POINT_mul(group, pub, priv, NULL, NULL, NULL) ||
	    EC_POINT_point2oct(group, pub, POINT_CONVERSION_UNCOMPRESSED, point, sizeof(point), NULL) != 65)
		goto out;
	if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, priv) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)))
		goto out;
	params = OSSL_PARAM_BLD_to_param(bld);
	if (!params || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_KEYPAIR, params) <= 0)
		goto out;
	ok = 1;
out:
	EC_POINT_free(pub);
	EC_GROUP_free(group);
	BN_clear(priv);
	if (!ok) {
		EVP_PKEY_free(key);
		err_ssl(e, "invalid P-256 private scalar");
		return NULL;
	}
	return key;
}
