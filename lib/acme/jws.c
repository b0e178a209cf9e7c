/*
 * jws.c — JWK, RFC 7638 thumbprints, ES256 and ACME's flattened JWS (see
 * jws.h). OpenSSL gives ECDSA signatures in DER; JOSE wants the two 32-byte
 * integers back to back, so both directions convert.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>

#include "acme/jws.h"
#include "codec/base64.h"
#include "core/cleanup.h"
#include "core/mem.h"
#include "crypto/hash.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(OSSL_PARAM_BLD *, OSSL_PARAM_BLD_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(OSSL_PARAM *, OSSL_PARAM_free)

static int is_p256(EVP_PKEY *key)
{
	char group[64];

	if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC)
		return 0;
	if (!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL))
		return 0;
	return strcmp(group, SN_X9_62_prime256v1) == 0;
}

json_t *acme_jwk_of_key(EVP_PKEY *key, struct err *e)
{
	uint8_t point[65];
	size_t len = 0;
	_cleanup_free_ char *x = NULL, *y = NULL;

	if (!key || !is_p256(key)) {
		err_set(e, "account key is not an ECDSA P-256 key");
		return NULL;
	}
	if (!EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point, sizeof(point),
					     &len) ||
	    len != 65 || point[0] != 0x04) {
		err_ssl(e, "P-256 public point");
		return NULL;
	}
	x = base64url_encode(point + 1, 32);
	y = base64url_encode(point + 33, 32);
	return json_pack("{s:s, s:s, s:s, s:s}", "crv", "P-256", "kty", "EC", "x", x, "y", y);
}

static int b64_member(const json_t *jwk, const char *name, uint8_t *out, size_t want, bool required,
		      struct err *e)
{
	json_t *v = json_object_get(jwk, name);
	_cleanup_free_ uint8_t *raw = NULL;
	size_t len;

	if (!v && !required)
		return 1;
	if (!json_is_string(v))
		return err_set(e, "JWK member %s is missing or not a string", name);
	if (base64url_decode(json_string_value(v), json_string_length(v), &raw, &len, e) < 0)
		return err_wrap(e, "JWK member %s", name);
	if (len != want) {
		secure_zero(raw, len);
		return err_set(e, "JWK member %s is %zu bytes, want %zu", name, len, want);
	}
	memcpy(out, raw, len);
	secure_zero(raw, len);
	return 0;
}

EVP_PKEY *acme_key_of_jwk(const json_t *jwk, struct err *e)
{
	json_t *kty = json_object_get(jwk, "kty"), *crv = json_object_get(jwk, "crv");
	uint8_t point[65], d[32];
	int has_d;
	_cleanup_(OSSL_PARAM_BLD_freep) OSSL_PARAM_BLD *bld = NULL;
	_cleanup_(OSSL_PARAM_freep) OSSL_PARAM *params = NULL;
	_cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = NULL;
	_cleanup_(BN_freep) BIGNUM *dbn = NULL;
	EVP_PKEY *key = NULL;

	if (!json_is_string(kty) || strcmp(json_string_value(kty), "EC") != 0 || !json_is_string(crv) ||
	    strcmp(json_string_value(crv), "P-256") != 0) {
		err_set(e, "JWK is not an EC P-256 key");
		return NULL;
	}
	point[0] = 0x04;
	if (b64_member(jwk, "x", point + 1, 32, true, e) < 0 ||
	    b64_member(jwk, "y", point + 33, 32, true, e) < 0)
		return NULL;
	has_d = b64_member(jwk, "d", d, 32, false, e);
	if (has_d < 0)
		return NULL;
	bld = OSSL_PARAM_BLD_new();
	if (!bld ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, SN_X9_62_prime256v1, 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)))
		goto ssl_fail;
	if (has_d == 0) {
		dbn = BN_secure_new();
		if (!dbn || !BN_bin2bn(d, sizeof(d), dbn) ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, dbn))
			goto ssl_fail;
	}
	params = OSSL_PARAM_BLD_to_param(bld);
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &key, has_d == 0 ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, params) <= 0)
		goto ssl_fail;
	secure_zero(d, sizeof(d));
	return key;
ssl_fail:
	secure_zero(d, sizeof(d));
	err_ssl(e, "JWK to P-256 key");
	return NULL;
}

char *acme_jwk_thumbprint(const json_t *jwk, struct err *e)
{
	static const char *const ec[] = {"crv", "kty", "x", "y", NULL};
	static const char *const rsa[] = {"e", "kty", "n", NULL};
	static const char *const okp[] = {"crv", "kty", "x", NULL};
	json_t *kty = json_object_get(jwk, "kty");
	const char *const *members;
	_cleanup_json_ json_t *canon = json_object();
	_cleanup_free_ char *text = NULL;
	uint8_t digest[32];

	if (!json_is_string(kty)) {
		err_set(e, "JWK has no kty");
		return NULL;
	}
	if (strcmp(json_string_value(kty), "EC") == 0)
		members = ec;
	else if (strcmp(json_string_value(kty), "RSA") == 0)
		members = rsa;
	else if (strcmp(json_string_value(kty), "OKP") == 0)
		members = okp;
	else {
		err_set(e, "JWK kty %s has no thumbprint rule", json_string_value(kty));
		return NULL;
	}
	for (size_t i = 0; members[i]; i++) {
		json_t *v = json_object_get(jwk, members[i]);

		if (!json_is_string(v)) {
			err_set(e, "JWK member %s is missing", members[i]);
			return NULL;
		}
		json_object_set(canon, members[i], v);
	}
	/* RFC 7638 §3: members in lexicographic order, no whitespace. */
	text = json_dumps(canon, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text)
		abort();
	sha256(text, strlen(text), digest);
	return base64url_encode(digest, sizeof(digest));
}

int acme_es256_sign(EVP_PKEY *key, const void *data, size_t len, uint8_t sig[64], struct err *e)
{
	_cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
	_cleanup_(ECDSA_SIG_freep) ECDSA_SIG *s = NULL;
	uint8_t der[80];
	const uint8_t *p = der;
	size_t der_len = sizeof(der);
	const BIGNUM *r, *sv;

	if (!key || !is_p256(key))
		return err_set(e, "ES256 needs a P-256 key");
	if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) <= 0 ||
	    EVP_DigestSign(md, der, &der_len, data, len) <= 0)
		return err_ssl(e, "ES256 sign");
	s = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
	if (!s)
		return err_ssl(e, "ES256 signature DER");
	ECDSA_SIG_get0(s, &r, &sv);
	if (BN_bn2binpad(r, sig, 32) != 32 || BN_bn2binpad(sv, sig + 32, 32) != 32)
		return err_set(e, "ES256 signature out of range");
	return 0;
}

int acme_es256_verify(EVP_PKEY *key, const void *data, size_t len, const uint8_t sig[64], struct err *e)
{
	_cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
	_cleanup_(ECDSA_SIG_freep) ECDSA_SIG *s = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, 32, NULL), *sv = BN_bin2bn(sig + 32, 32, NULL);
	_cleanup_free_ uint8_t *der = NULL;
	int der_len, rc;

	if (!md || !s || !r || !sv || !ECDSA_SIG_set0(s, r, sv)) {
		BN_free(r);
		BN_free(sv);
		return err_ssl(e, "ES256 verify");
	}
	der_len = i2d_ECDSA_SIG(s, &der);
	if (der_len <= 0 || EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) <= 0)
		return err_ssl(e, "ES256 verify");
	rc = EVP_DigestVerify(md, der, (size_t)der_len, data, len);
	if (rc != 1) {
		ERR_clear_error();
		return err_set(e, "ES256 signature does not verify");
	}
	return 0;
}

char *acme_jws_build(EVP_PKEY *key, const char *kid, const char *nonce, const char *url, const char *payload,
		     struct err *e)
{
	_cleanup_json_ json_t *hdr = json_pack("{s:s, s:s, s:s}", "alg", "ES256", "nonce", nonce, "url", url);
	_cleanup_free_ char *hdr_text = NULL, *hdr_b64 = NULL, *payload_b64 = NULL, *sig_b64 = NULL;
	_cleanup_free_ char *input = NULL;
	_cleanup_json_ json_t *body = NULL;
	uint8_t sig[64];
	char *out;

	if (!hdr) {
		err_set(e, "JWS header: nonce or URL is not UTF-8");
		return NULL;
	}
	if (kid) {
		json_object_set_new(hdr, "kid", json_string(kid));
	} else {
		json_t *jwk = acme_jwk_of_key(key, e);

		if (!jwk)
			return NULL;
		json_object_set_new(hdr, "jwk", jwk);
	}
	hdr_text = json_dumps(hdr, JSON_COMPACT);
	if (!hdr_text)
		abort();
	hdr_b64 = base64url_encode(hdr_text, strlen(hdr_text));
	payload_b64 = base64url_encode(payload ? payload : "", payload ? strlen(payload) : 0);
	if (asprintf(&input, "%s.%s", hdr_b64, payload_b64) < 0)
		abort();
	if (acme_es256_sign(key, input, strlen(input), sig, e) < 0)
		return NULL;
	sig_b64 = base64url_encode(sig, sizeof(sig));
	body =
	    json_pack("{s:s, s:s, s:s}", "protected", hdr_b64, "payload", payload_b64, "signature", sig_b64);
	out = body ? json_dumps(body, JSON_COMPACT) : NULL;
	if (!out)
		abort();
	return out;
}

char *acme_dns01_value(const char *token, const char *thumbprint)
{
	uint8_t digest[32];
	struct span parts[] = {SPAN_STR(token), SPAN_STR("."), SPAN_STR(thumbprint)};

	if (hash_parts(HASH_SHA256, parts, 3, digest, NULL) < 0)
		abort();
	return base64url_encode(digest, sizeof(digest));
}

EVP_PKEY *acme_p256_generate(struct err *e)
{
	EVP_PKEY *key = EVP_EC_gen(SN_X9_62_prime256v1);

	if (!key)
		err_ssl(e, "generate P-256 key");
	return key;
}
