/*
 * k256.h — secp256k1 keys and signatures (libsecp256k1).
 *
 * Signatures are RFC 6979 deterministic and low-S. Recoverable signatures are
 * 65 bytes r‖s‖v with v ∈ {0,1}, the form the KMS and guest agent emit and
 * the SDKs recover from. Also the KMS `Sign(k, prefix, app_id, msg)` scheme
 * (kms.md §3) and the guest GetKey signature chain (guest.md §2.2).
 */
#ifndef DSTACK_CRYPTO_K256_H
#define DSTACK_CRYPTO_K256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "crypto/hash.h"

#define K256_SECKEY_LEN 32
#define K256_PUB_COMPRESSED_LEN 33
#define K256_PUB_UNCOMPRESSED_LEN 65
#define K256_SIG_LEN 64
#define K256_RECSIG_LEN 65

/* 0 < k < n. */
bool k256_seckey_valid(const uint8_t seckey[32]);
/* Public key, compressed (33 B) or uncompressed (65 B). */
int k256_pubkey(const uint8_t seckey[32], bool compressed, uint8_t *out, struct err *e);
/* Re-encode a 33- or 65-byte public key; fails on an invalid point. */
int k256_pubkey_convert(const uint8_t *pub, size_t pub_len, bool compressed, uint8_t *out, struct err *e);

/* Sign a 32-byte digest: r‖s (64 B) or r‖s‖v (65 B). */
int k256_sign(const uint8_t seckey[32], const uint8_t digest[32], uint8_t sig[64], struct err *e);
int k256_sign_recoverable(const uint8_t seckey[32], const uint8_t digest[32], uint8_t sig[65], struct err *e);
/* Recover the compressed public key from a 65-byte signature (v ∈ {0,1};
 * 27/28 accepted too). */
int k256_recover(const uint8_t digest[32], const uint8_t sig[65], uint8_t pub33[33], struct err *e);
/* Verify r‖s (64 B, or 65 B with v ignored) against a 33/65-byte public key.
 * Returns 1 valid, 0 invalid, -1 malformed key/signature. High-S is invalid. */
int k256_verify(const uint8_t *pub, size_t pub_len, const uint8_t digest[32], const uint8_t *sig,
		size_t sig_len, struct err *e);

/* KMS Sign: keccak256(prefix ‖ ":" ‖ app_id ‖ msg parts), recoverable. */
void kms_sign_digest(const char *prefix, const uint8_t *app_id, size_t app_id_len, const struct span *msg,
		     size_t nmsg, uint8_t digest[32]);
int kms_sign(const uint8_t seckey[32], const char *prefix, const uint8_t *app_id, size_t app_id_len,
	     const struct span *msg, size_t nmsg, uint8_t sig[65], struct err *e);
/* Recover the signer of a KMS Sign signature (compressed). */
int kms_sign_recover(const char *prefix, const uint8_t *app_id, size_t app_id_len, const struct span *msg,
		     size_t nmsg, const uint8_t sig[65], uint8_t pub33[33], struct err *e);

#endif
