/*
 * ecx.h — X25519 and Ed25519 on raw 32-byte keys (OpenSSL).
 *
 * X25519 secrets are taken as delivered (the KMS hands out the unclamped
 * DhSecret); clamping happens inside the scalar multiplication, so the public
 * key is X25519(clamp(secret), 9). Ed25519 secrets are 32-byte seeds.
 */
#ifndef DSTACK_CRYPTO_ECX_H
#define DSTACK_CRYPTO_ECX_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

int x25519_public(const uint8_t secret[32], uint8_t pub[32], struct err *e);
/* Shared secret; an all-zero result (low-order peer point) is an error. */
int x25519_shared(const uint8_t secret[32], const uint8_t peer_pub[32], uint8_t shared[32], struct err *e);
/* Fresh random key pair. */
int x25519_keypair(uint8_t secret[32], uint8_t pub[32], struct err *e);

int ed25519_public(const uint8_t seed[32], uint8_t pub[32], struct err *e);
int ed25519_sign(const uint8_t seed[32], const void *msg, size_t len, uint8_t sig[64], struct err *e);
/* 1 valid, 0 invalid, -1 malformed public key. */
int ed25519_verify(const uint8_t pub[32], const void *msg, size_t len, const uint8_t sig[64], struct err *e);

#endif
