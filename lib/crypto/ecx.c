/*
 * ecx.c — X25519/Ed25519 with raw keys through OpenSSL's EVP_PKEY raw-key
 * interface. Secrets only live in OpenSSL's key objects and on the caller's
 * stack; everything copied here is wiped.
 */
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "core/cleanup.h"
#include "core/mem.h"
#include "crypto/ecx.h"

static int raw_public(int type, const uint8_t secret[32], uint8_t pub[32], struct err *e)
{
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *key = EVP_PKEY_new_raw_private_key(type, NULL, secret, 32);
	size_t len = 32;

	if (!key || !EVP_PKEY_get_raw_public_key(key, pub, &len) || len != 32)
		return err_ssl(e, "public key derivation");
	return 0;
}

int x25519_public(const uint8_t secret[32], uint8_t pub[32], struct err *e)
{
	return raw_public(EVP_PKEY_X25519, secret, pub, e);
}

int x25519_shared(const uint8_t secret[32], const uint8_t peer_pub[32], uint8_t shared[32], struct err *e)
{
	static const uint8_t zero[32];
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *key =
	    EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, secret, 32);
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *peer =
	    EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer_pub, 32);
	_cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = NULL;
	size_t len = 32;

	if (!key || !peer || !(ctx = EVP_PKEY_CTX_new(key, NULL)) || EVP_PKEY_derive_init(ctx) <= 0 ||
	    EVP_PKEY_derive_set_peer(ctx, peer) <= 0)
		return err_ssl(e, "X25519 setup");
	/* OpenSSL itself fails on an all-zero result; check anyway. */
	if (EVP_PKEY_derive(ctx, shared, &len) <= 0 || len != 32 || ct_memeq(shared, zero, 32)) {
		secure_zero(shared, 32);
		ERR_clear_error();
		return err_set(e, "X25519 key agreement failed (invalid public key)");
	}
	return 0;
}

int x25519_keypair(uint8_t secret[32], uint8_t pub[32], struct err *e)
{
	if (RAND_priv_bytes(secret, 32) != 1)
		return err_ssl(e, "random");
	return x25519_public(secret, pub, e);
}

int ed25519_public(const uint8_t seed[32], uint8_t pub[32], struct err *e)
{
	return raw_public(EVP_PKEY_ED25519, seed, pub, e);
}

int ed25519_sign(const uint8_t seed[32], const void *msg, size_t len, uint8_t sig[64], struct err *e)
{
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *key =
	    EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
	_cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t sig_len = 64;

	if (!key || !ctx || EVP_DigestSignInit_ex(ctx, NULL, NULL, NULL, NULL, key, NULL) <= 0 ||
	    EVP_DigestSign(ctx, sig, &sig_len, msg, len) <= 0 || sig_len != 64)
		return err_ssl(e, "Ed25519 signing");
	return 0;
}

int ed25519_verify(const uint8_t pub[32], const void *msg, size_t len, const uint8_t sig[64], struct err *e)
{
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *key =
	    EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
	_cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (!key || !ctx || EVP_DigestVerifyInit_ex(ctx, NULL, NULL, NULL, NULL, key, NULL) <= 0)
		return err_ssl(e, "invalid Ed25519 public key");
	int rc = EVP_DigestVerify(ctx, sig, 64, msg, len);
	ERR_clear_error();
	return rc == 1 ? 1 : 0;
}
