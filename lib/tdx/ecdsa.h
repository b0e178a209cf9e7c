/*
 * ecdsa.h — ECDSA P-256/SHA-256 with the raw 64-byte r‖s signatures and
 * 64-byte x‖y public keys that DCAP quotes and PCCS collateral use, converted
 * to and from the DER/EVP forms OpenSSL wants.
 */
#ifndef DSTACK_TDX_ECDSA_H
#define DSTACK_TDX_ECDSA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "core/err.h"

/* Public key from raw x‖y (64 bytes). */
EVP_PKEY *ecdsa_p256_pub_from_raw(const uint8_t xy[64], struct err *e);
/* Raw x‖y of a P-256 key (public or private). */
int ecdsa_p256_pub_to_raw(EVP_PKEY *key, uint8_t xy[64], struct err *e);
/* 1 = valid, 0 = invalid signature, -1 = error (bad key/encoding). */
int ecdsa_p256_verify_raw(EVP_PKEY *key, const void *msg, size_t len, const uint8_t sig[64], struct err *e);
/* Sign with SHA-256, output raw r‖s. */
int ecdsa_p256_sign_raw(EVP_PKEY *key, const void *msg, size_t len, uint8_t sig[64], struct err *e);
/* Fresh random P-256 key, or one from a 32-byte private scalar. */
EVP_PKEY *ecdsa_p256_generate(struct err *e);
EVP_PKEY *ecdsa_p256_from_scalar(const uint8_t d[32], struct err *e);

#endif
