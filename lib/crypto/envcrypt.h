/*
 * envcrypt.h — the encrypted-env envelope (kms.md §3, guest.md §2.4,
 * vmm.md §13): eph_pub(32) ‖ iv(12) ‖ AES-256-GCM(ct ‖ tag16), key = raw
 * X25519(eph_secret, app env pubkey), no KDF, no AAD.
 */
#ifndef DSTACK_CRYPTO_ENVCRYPT_H
#define DSTACK_CRYPTO_ENVCRYPT_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

#define ENV_ENVELOPE_OVERHEAD (32 + 12 + 16)

/* Encrypt plaintext to the X25519 public key; appends the envelope to out. */
int env_envelope_encrypt(const uint8_t pub[32], const void *pt, size_t len, struct buf *out, struct err *e);
/* Decrypt with the app's env secret (as delivered by the KMS, unclamped).
 * *pt is malloc'd and NUL-terminated; free it with secure_zero + free. */
int env_envelope_decrypt(const uint8_t secret[32], const uint8_t *blob, size_t len, uint8_t **pt,
			 size_t *pt_len, struct err *e);

/* An envelope read from a file may be raw or hex text (the VMM's JSON API
 * carries it as hex). If *data is hex (whitespace-trimmed), replace it with
 * the decoded malloc'd bytes; otherwise leave it as is. */
int env_envelope_unhex(uint8_t **data, size_t *len, struct err *e);

#endif
