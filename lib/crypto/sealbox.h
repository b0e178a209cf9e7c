/*
 * sealbox.h — libsodium sealed boxes (crypto_box_seal), the format the local
 * SGX key provider uses to hand a guest its 32-byte seed (kms.md §9):
 * eph_pk(32) ‖ XSalsa20-Poly1305 box (16-byte tag first).
 */
#ifndef DSTACK_CRYPTO_SEALBOX_H
#define DSTACK_CRYPTO_SEALBOX_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

#define SEALBOX_OVERHEAD 48

/* Appends the sealed box (len + 48 bytes) to out. */
int sealbox_seal(const uint8_t recipient_pub[32], const void *msg, size_t len, struct buf *out,
		 struct err *e);
/* out must hold len - 48 bytes. Fails (out wiped) on any tampering. */
int sealbox_open(const uint8_t recipient_pub[32], const uint8_t recipient_secret[32], const uint8_t *box,
		 size_t len, uint8_t *out, struct err *e);

#endif
