/*
 * aead.h — AES-256-GCM with a 12-byte IV and 16-byte tag, no AAD unless
 * given: the cipher of the encrypted-env envelope.
 */
#ifndef DSTACK_CRYPTO_AEAD_H
#define DSTACK_CRYPTO_AEAD_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define AES_GCM_IV_LEN 12
#define AES_GCM_TAG_LEN 16

/* out receives len bytes of ciphertext followed by the 16-byte tag. */
int aes256gcm_encrypt(const uint8_t key[32], const uint8_t iv[12], const void *aad, size_t aad_len,
		      const void *pt, size_t len, uint8_t *out, struct err *e);
/* in = ciphertext ‖ tag (in_len >= 16); out receives in_len - 16 bytes. On
 * authentication failure out is wiped and -1 returned. */
int aes256gcm_decrypt(const uint8_t key[32], const uint8_t iv[12], const void *aad, size_t aad_len,
		      const uint8_t *in, size_t in_len, uint8_t *out, struct err *e);

#endif
