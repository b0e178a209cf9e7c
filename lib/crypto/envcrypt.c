/*
 * envcrypt.c — sealing and opening the encrypted-env envelope. The format
 * has no KDF and no associated data, so every field is taken from the blob
 * at fixed offsets; a low-order ephemeral key (all-zero shared secret) is
 * refused before it can become an all-zero AES key.
 *
 * Opening is slightly stricter than the reference: X25519 ignores bit 255 of
 * a public key and reduces it mod p, so without AAD two encodings of the
 * ephemeral key would decrypt the same blob. Honest encoders always emit the
 * canonical form (< 2^255 - 19), so only that is accepted, which makes every
 * single-bit change of an envelope fatal.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "core/hex.h"
#include "core/mem.h"
#include "crypto/aead.h"
#include "crypto/ecx.h"
#include "crypto/envcrypt.h"

int env_envelope_encrypt(const uint8_t pub[32], const void *pt, size_t len, struct buf *out, struct err *e)
{
	uint8_t eph[32], eph_pub[32], shared[32], iv[AES_GCM_IV_LEN];
	int rc = -1;

	if (x25519_keypair(eph, eph_pub, e) < 0)
		goto out;
	if (x25519_shared(eph, pub, shared, e) < 0) {
		err_wrap(e, "env public key");
		goto out;
	}
	if (RAND_bytes(iv, sizeof(iv)) != 1) {
		err_ssl(e, "random");
		goto out;
	}
	buf_reserve(out, ENV_ENVELOPE_OVERHEAD + len);
	buf_append(out, eph_pub, 32);
	buf_append(out, iv, sizeof(iv));
	if (aes256gcm_encrypt(shared, iv, NULL, 0, pt, len, out->data + out->len, e) < 0)
		goto out;
	out->len += len + AES_GCM_TAG_LEN;
	out->data[out->len] = 0;
	rc = 0;
out:
	secure_zero(eph, sizeof(eph));
	secure_zero(shared, sizeof(shared));
	return rc;
}

/* Little-endian u-coordinate below p = 2^255 - 19. */
static bool x25519_pub_canonical(const uint8_t pub[32])
{
	if (pub[31] & 0x80)
		return false;
	if (pub[31] != 0x7f || pub[0] < 0xed)
		return true;
	for (int i = 1; i < 31; i++)
		if (pub[i] != 0xff)
			return true;
	return false;
}

int env_envelope_decrypt(const uint8_t secret[32], const uint8_t *blob, size_t len, uint8_t **pt,
			 size_t *pt_len, struct err *e)
{
	uint8_t shared[32];
	size_t ct_len;
	uint8_t *plain;

	*pt = NULL;
	*pt_len = 0;
	if (len < ENV_ENVELOPE_OVERHEAD)
		return err_set(e, "encrypted env too short (%zu bytes)", len);
	if (!x25519_pub_canonical(blob))
		return err_set(e, "encrypted env: non-canonical ephemeral public key");
	if (x25519_shared(secret, blob, shared, e) < 0)
		return err_wrap(e, "encrypted env");
	ct_len = len - 32 - AES_GCM_IV_LEN;
	plain = malloc(ct_len - AES_GCM_TAG_LEN + 1);
	if (!plain)
		abort();
	int rc = aes256gcm_decrypt(shared, blob + 32, NULL, 0, blob + 32 + AES_GCM_IV_LEN, ct_len, plain, e);
	secure_zero(shared, sizeof(shared));
	if (rc < 0) {
		free(plain);
		return err_wrap(e, "encrypted env");
	}
	plain[ct_len - AES_GCM_TAG_LEN] = 0;
	*pt = plain;
	*pt_len = ct_len - AES_GCM_TAG_LEN;
	return 0;
}

int env_envelope_unhex(uint8_t **data, size_t *len, struct err *e)
{
	size_t n = *len;
	uint8_t *raw = NULL;
	bool is_hex;

	while (n && (*data)[n - 1] && strchr(" \t\r\n", (*data)[n - 1]))
		n--;
	is_hex = n >= 2 * ENV_ENVELOPE_OVERHEAD && n % 2 == 0;
	for (size_t i = 0; i < n && is_hex; i++)
		is_hex = (*data)[i] && strchr("0123456789abcdefABCDEF", (*data)[i]);
	if (!is_hex)
		return 0;
	if (hex_decode_alloc((const char *)*data, n, &raw, len, e) < 0)
		return -1;
	free(*data);
	*data = raw;
	return 0;
}
