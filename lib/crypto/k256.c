/*
 * k256.c — secp256k1 through libsecp256k1.
 *
 * Operations on secret keys get a fresh context each call (context creation
 * is cheap since the tables are compiled in, and it avoids shared mutable
 * state); public-only operations use the library's static context. The
 * default nonce function is RFC 6979 with no extra data, and the library
 * always emits low-S, which is exactly what the reference produces.
 */
#include <string.h>

#include <secp256k1.h>
#include <secp256k1_recovery.h>

#include "core/cleanup.h"
#include "core/mem.h"
#include "crypto/k256.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(secp256k1_context *, secp256k1_context_destroy)

static secp256k1_context *signing_context(struct err *e)
{
	secp256k1_context *ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);

	if (!ctx)
		err_set(e, "secp256k1 context allocation failed");
	return ctx;
}

bool k256_seckey_valid(const uint8_t seckey[32])
{
	return secp256k1_ec_seckey_verify(secp256k1_context_static, seckey) == 1;
}

static int serialize_pub(const secp256k1_pubkey *pk, bool compressed, uint8_t *out, struct err *e)
{
	size_t len = compressed ? 33 : 65;

	if (!secp256k1_ec_pubkey_serialize(secp256k1_context_static, out, &len, pk,
					   compressed ? SECP256K1_EC_COMPRESSED : SECP256K1_EC_UNCOMPRESSED))
		return err_set(e, "secp256k1 public key encoding failed");
	return 0;
}

int k256_pubkey(const uint8_t seckey[32], bool compressed, uint8_t *out, struct err *e)
{
	_cleanup_(secp256k1_context_destroyp) secp256k1_context *ctx = signing_context(e);
	secp256k1_pubkey pk;

	if (!ctx)
		return -1;
	if (!secp256k1_ec_pubkey_create(ctx, &pk, seckey))
		return err_set(e, "invalid secp256k1 secret key");
	return serialize_pub(&pk, compressed, out, e);
}

static int parse_pub(const uint8_t *pub, size_t pub_len, secp256k1_pubkey *pk, struct err *e)
{
	if ((pub_len != 33 && pub_len != 65) ||
	    !secp256k1_ec_pubkey_parse(secp256k1_context_static, pk, pub, pub_len))
		return err_set(e, "invalid secp256k1 public key");
	return 0;
}

int k256_pubkey_convert(const uint8_t *pub, size_t pub_len, bool compressed, uint8_t *out, struct err *e)
{
	secp256k1_pubkey pk;

	if (parse_pub(pub, pub_len, &pk, e) < 0)
		return -1;
	return serialize_pub(&pk, compressed, out, e);
}

int k256_sign(const uint8_t seckey[32], const uint8_t digest[32], uint8_t sig[64], struct err *e)
{
	_cleanup_(secp256k1_context_destroyp) secp256k1_context *ctx = signing_context(e);
	secp256k1_ecdsa_signature s;

	if (!ctx)
		return -1;
	if (!secp256k1_ecdsa_sign(ctx, &s, digest, seckey, NULL, NULL))
		return err_set(e, "invalid secp256k1 secret key");
	secp256k1_ecdsa_signature_serialize_compact(ctx, sig, &s);
	return 0;
}

int k256_sign_recoverable(const uint8_t seckey[32], const uint8_t digest[32], uint8_t sig[65], struct err *e)
{
	_cleanup_(secp256k1_context_destroyp) secp256k1_context *ctx = signing_context(e);
	secp256k1_ecdsa_recoverable_signature s;
	int recid = 0;

	if (!ctx)
		return -1;
	if (!secp256k1_ecdsa_sign_recoverable(ctx, &s, digest, seckey, NULL, NULL))
		return err_set(e, "invalid secp256k1 secret key");
	secp256k1_ecdsa_recoverable_signature_serialize_compact(ctx, sig, &recid, &s);
	sig[64] = (uint8_t)recid;
	return 0;
}

int k256_recover(const uint8_t digest[32], const uint8_t sig[65], uint8_t pub33[33], struct err *e)
{
	secp256k1_ecdsa_recoverable_signature s;
	secp256k1_pubkey pk;
	int v = sig[64];

	if (v == 27 || v == 28)
		v -= 27;
	if (v != 0 && v != 1)
		return err_set(e, "invalid recovery id %d", sig[64]);
	if (!secp256k1_ecdsa_recoverable_signature_parse_compact(secp256k1_context_static, &s, sig, v))
		return err_set(e, "malformed recoverable signature");
	if (!secp256k1_ecdsa_recover(secp256k1_context_static, &pk, &s, digest))
		return err_set(e, "signature recovery failed");
	return serialize_pub(&pk, true, pub33, e);
}

int k256_verify(const uint8_t *pub, size_t pub_len, const uint8_t digest[32], const uint8_t *sig,
		size_t sig_len, struct err *e)
{
	secp256k1_ecdsa_signature s;
	secp256k1_pubkey pk;

	if (parse_pub(pub, pub_len, &pk, e) < 0)
		return -1;
	if (sig_len != 64 && sig_len != 65)
		return err_set(e, "secp256k1 signature must be 64 or 65 bytes, got %zu", sig_len);
	if (!secp256k1_ecdsa_signature_parse_compact(secp256k1_context_static, &s, sig))
		return err_set(e, "malformed secp256k1 signature");
	return secp256k1_ecdsa_verify(secp256k1_context_static, &s, digest, &pk) == 1 ? 1 : 0;
}

void kms_sign_digest(const char *prefix, const uint8_t *app_id, size_t app_id_len, const struct span *msg,
		     size_t nmsg, uint8_t digest[32])
{
	struct span parts[nmsg + 3];

	parts[0] = SPAN_STR(prefix);
	parts[1] = SPAN(":", 1);
	parts[2] = SPAN(app_id, app_id_len);
	memcpy(parts + 3, msg, nmsg * sizeof(*msg));
	keccak256_parts(parts, nmsg + 3, digest);
}

int kms_sign(const uint8_t seckey[32], const char *prefix, const uint8_t *app_id, size_t app_id_len,
	     const struct span *msg, size_t nmsg, uint8_t sig[65], struct err *e)
{
	uint8_t digest[32];

	kms_sign_digest(prefix, app_id, app_id_len, msg, nmsg, digest);
	return k256_sign_recoverable(seckey, digest, sig, e);
}

int kms_sign_recover(const char *prefix, const uint8_t *app_id, size_t app_id_len, const struct span *msg,
		     size_t nmsg, const uint8_t sig[65], uint8_t pub33[33], struct err *e)
{
	uint8_t digest[32];

	kms_sign_digest(prefix, app_id, app_id_len, msg, nmsg, digest);
	return k256_recover(digest, sig, pub33, e);
}
