/*
 * kdf.c — HKDF_RATLS, P256Derive and DhSecret.
 *
 * HKDF is written over EVP_MAC HMAC instead of the EVP_KDF "HKDF" provider:
 * that provider caps `info` at a couple of KiB and a guest GetKey path is
 * caller-controlled. The PKCS#8 bytes hashed by DhSecret are assembled here
 * byte by byte, never through an encoder, so the digest cannot drift with
 * the library's choice of optional fields.
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>

#include "core/cleanup.h"
#include "core/mem.h"
#include "crypto/kdf.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_MAC *, EVP_MAC_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_MAC_CTX *, EVP_MAC_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EC_GROUP *, EC_GROUP_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EC_POINT *, EC_POINT_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(OSSL_PARAM_BLD *, OSSL_PARAM_BLD_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(OSSL_PARAM *, OSSL_PARAM_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(BIGNUM *, BN_clear_free)

static const uint8_t p256_order[32] = {
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
};

/* HMAC-SHA256 over a list of parts. */
static int hmac_sha256(const uint8_t *key, size_t key_len, const struct span *parts, size_t nparts,
		       uint8_t out[32], struct err *e)
{
	_cleanup_(EVP_MAC_freep) EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	_cleanup_(EVP_MAC_CTX_freep) EVP_MAC_CTX *ctx = NULL;
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
	    OSSL_PARAM_construct_end(),
	};
	size_t out_len = 0;

	if (!mac || !(ctx = EVP_MAC_CTX_new(mac)) || !EVP_MAC_init(ctx, key, key_len, params))
		return err_ssl(e, "HMAC init");
	for (size_t i = 0; i < nparts; i++)
		if (parts[i].len && !EVP_MAC_update(ctx, parts[i].ptr, parts[i].len))
			return err_ssl(e, "HMAC update");
	if (!EVP_MAC_final(ctx, out, &out_len, 32) || out_len != 32)
		return err_ssl(e, "HMAC final");
	return 0;
}

int hkdf_ratls(const void *ikm, size_t ikm_len, const struct span *parts, size_t nparts, uint8_t *out,
	       size_t out_len, struct err *e)
{
	static const char salt[] = "RATLS";
	uint8_t prk[32], t[32];
	size_t t_len = 0, done = 0;
	struct span ikm_part = SPAN(ikm, ikm_len);
	int rc = -1;

	if (out_len > 255 * 32)
		return err_set(e, "HKDF output too long");
	if (hmac_sha256((const uint8_t *)salt, 5, &ikm_part, 1, prk, e) < 0)
		goto out;
	for (uint8_t counter = 1; done < out_len; counter++) {
		struct span block[nparts + 2];

		block[0] = SPAN(t, t_len);
		memcpy(block + 1, parts, nparts * sizeof(*parts));
		block[nparts + 1] = SPAN(&counter, 1);
		if (hmac_sha256(prk, sizeof(prk), block, nparts + 2, t, e) < 0)
			goto out;
		t_len = 32;
		size_t n = out_len - done < 32 ? out_len - done : 32;
		memcpy(out + done, t, n);
		done += n;
	}
	rc = 0;
out:
	secure_zero(prk, sizeof(prk));
	secure_zero(t, sizeof(t));
	return rc;
}

bool p256_scalar_valid(const uint8_t d[32])
{
	uint8_t nonzero = 0;
	int lt = 0, decided = 0;

	/* Constant-time-ish big-endian comparison d < n and d != 0. */
	for (int i = 0; i < 32; i++) {
		nonzero |= d[i];
		int less = d[i]<p256_order[i], greater = d[i]> p256_order[i];
		lt |= less & !decided;
		decided |= less | greater;
	}
	return nonzero && lt;
}

int p256_public_xy(const uint8_t d[32], uint8_t x[32], uint8_t y[32], struct err *e)
{
	_cleanup_(EC_GROUP_freep) EC_GROUP *group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	_cleanup_(EC_POINT_freep) EC_POINT *pub = NULL;
	_cleanup_(BN_clear_freep) BIGNUM *scalar = NULL;
	uint8_t oct[65];

	if (!group || !(pub = EC_POINT_new(group)) || !(scalar = BN_secure_new()))
		return err_ssl(e, "P-256 setup");
	if (!BN_bin2bn(d, 32, scalar) || !EC_POINT_mul(group, pub, scalar, NULL, NULL, NULL))
		return err_ssl(e, "P-256 public key");
	BN_clear(scalar);
	if (EC_POINT_point2oct(group, pub, POINT_CONVERSION_UNCOMPRESSED, oct, sizeof(oct), NULL) != 65)
		return err_ssl(e, "P-256 point encoding");
	memcpy(x, oct + 1, 32);
	memcpy(y, oct + 33, 32);
	return 0;
}

int p256_derive(const uint8_t root[32], const struct span *parts, size_t nparts, uint8_t out[32],
		struct err *e)
{
	if (hkdf_ratls(root, 32, parts, nparts, out, 32, e) < 0)
		return -1;
	if (!p256_scalar_valid(out)) {
		secure_zero(out, 32);
		return err_set(e, "derived P-256 scalar out of range");
	}
	return 0;
}

int p256_pkcs8_fixed(const uint8_t d[32], uint8_t out[P256_PKCS8_LEN], struct err *e)
{
	static const uint8_t head[] = {
	    0x30, 0x81, 0x87,                                           /* PrivateKeyInfo */
	    0x02, 0x01, 0x00,                                           /* version 0 */
	    0x30, 0x13,                                                 /* AlgorithmIdentifier */
	    0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,       /* id-ecPublicKey */
	    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, /* prime256v1 */
	    0x04, 0x6d,                                                 /* privateKey OCTET STRING */
	    0x30, 0x6b,                                                 /* ECPrivateKey */
	    0x02, 0x01, 0x01,                                           /* version 1 */
	    0x04, 0x20,                                                 /* privateKey */
	};
	static const uint8_t pub_head[] = {0xa1, 0x44, 0x03, 0x42, 0x00, 0x04};
	size_t off = 0;

	if (!p256_scalar_valid(d))
		return err_set(e, "invalid P-256 scalar");
	memcpy(out, head, sizeof(head));
	off = sizeof(head);
	memcpy(out + off, d, 32);
	off += 32;
	memcpy(out + off, pub_head, sizeof(pub_head));
	off += sizeof(pub_head);
	if (p256_public_xy(d, out + off, out + off + 32, e) < 0) {
		secure_zero(out, P256_PKCS8_LEN);
		return -1;
	}
	return 0;
}

int dh_secret(const uint8_t root[32], const struct span *parts, size_t nparts, uint8_t out[32], struct err *e)
{
	uint8_t d[32], der[P256_PKCS8_LEN];
	int rc = -1;

	if (p256_derive(root, parts, nparts, d, e) < 0 || p256_pkcs8_fixed(d, der, e) < 0)
		goto out;
	sha256(der, sizeof(der), out);
	rc = 0;
out:
	secure_zero(d, sizeof(d));
	secure_zero(der, sizeof(der));
	return rc;
}

EVP_PKEY *p256_pkey_from_scalar(const uint8_t d[32], struct err *e)
{
	_cleanup_(OSSL_PARAM_BLD_freep) OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	_cleanup_(OSSL_PARAM_freep) OSSL_PARAM *params = NULL;
	_cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = NULL;
	_cleanup_(BN_clear_freep) BIGNUM *priv = NULL;
	EVP_PKEY *pkey = NULL;
	uint8_t pub[65];

	if (!p256_scalar_valid(d)) {
		err_set(e, "invalid P-256 scalar");
		return NULL;
	}
	pub[0] = 0x04;
	if (p256_public_xy(d, pub + 1, pub + 33, e) < 0)
		return NULL;
	if (!bld || !(priv = BN_secure_new()) || !BN_bin2bn(d, 32, priv) ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, priv) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub)) ||
	    !(params = OSSL_PARAM_BLD_to_param(bld)) ||
	    !(ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_KEYPAIR, params) <= 0) {
		if (priv)
			BN_clear(priv);
		err_ssl(e, "P-256 key import");
		return NULL;
	}
	BN_clear(priv);
	return pkey;
}

int p256_pkey_scalar(const EVP_PKEY *pkey, uint8_t d[32], struct err *e)
{
	_cleanup_(BN_clear_freep) BIGNUM *priv = NULL;
	char group[32];

	if (!EVP_PKEY_is_a(pkey, "EC") ||
	    !EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL) ||
	    strcmp(group, "prime256v1") != 0)
		return err_set(e, "not a P-256 key");
	if (!EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, &priv))
		return err_ssl(e, "P-256 key has no private part");
	int ok = BN_bn2binpad(priv, d, 32) == 32;
	BN_clear(priv);
	if (!ok)
		return err_set(e, "P-256 scalar too large");
	return 0;
}
