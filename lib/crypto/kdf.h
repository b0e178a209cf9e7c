/*
 * kdf.h — the key-derivation primitives every dstack key comes from
 * (kms.md §3, guest.md §2.2). Outputs must be bit-identical to the reference,
 * so each function spells out exactly what bytes it hashes.
 */
#ifndef DSTACK_CRYPTO_KDF_H
#define DSTACK_CRYPTO_KDF_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "core/err.h"
#include "crypto/hash.h"

/* Length of the fixed PKCS#8 form of a P-256 key hashed by dh_secret. */
#define P256_PKCS8_LEN 138

/*
 * HKDF-SHA256 with salt "RATLS"; info = plain concatenation of parts (no
 * length prefixes). out_len <= 255*32.
 */
int hkdf_ratls(const void *ikm, size_t ikm_len, const struct span *parts, size_t nparts, uint8_t *out,
	       size_t out_len, struct err *e);

/* Public key of a P-256 scalar: X and Y, 32 bytes each. Scalar must be valid. */
int p256_public_xy(const uint8_t d[32], uint8_t x[32], uint8_t y[32], struct err *e);
/* 0 < d < n. */
bool p256_scalar_valid(const uint8_t d[32]);

/* P256Derive: HKDF_RATLS(root, parts, 32) checked to be a valid scalar. */
int p256_derive(const uint8_t root[32], const struct span *parts, size_t nparts, uint8_t out[32],
		struct err *e);

/* The 138-byte PKCS#8 DER of a P-256 key as the reference's DhSecret hashes
 * it: version 0, id-ecPublicKey/prime256v1, ECPrivateKey without [0] params,
 * with the uncompressed public key in [1]. */
int p256_pkcs8_fixed(const uint8_t d[32], uint8_t out[P256_PKCS8_LEN], struct err *e);

/* DhSecret: SHA-256(p256_pkcs8_fixed(P256Derive(root, parts))). */
int dh_secret(const uint8_t root[32], const struct span *parts, size_t nparts, uint8_t out[32],
	      struct err *e);

/* Build an OpenSSL P-256 private key (with public part) from a scalar, for
 * signing certificates with derived keys. */
EVP_PKEY *p256_pkey_from_scalar(const uint8_t d[32], struct err *e);
/* Extract the 32-byte scalar of a P-256 EVP_PKEY (e.g. loaded from PEM). */
int p256_pkey_scalar(const EVP_PKEY *pkey, uint8_t d[32], struct err *e);

#endif
