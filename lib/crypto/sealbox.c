/*
 * sealbox.c — thin wrapper over libsodium's sealed boxes; sodium_init() is
 * idempotent and thread-safe, so it is called on every use rather than kept
 * as process state.
 */
#include <sodium.h>

#include "core/mem.h"
#include "crypto/sealbox.h"

static int ensure_sodium(struct err *e)
{
	if (sodium_init() < 0)
		return err_set(e, "libsodium initialisation failed");
	return 0;
}

int sealbox_seal(const uint8_t recipient_pub[32], const void *msg, size_t len, struct buf *out, struct err *e)
{
	if (ensure_sodium(e) < 0)
		return -1;
	buf_reserve(out, len + crypto_box_SEALBYTES);
	if (crypto_box_seal(out->data + out->len, msg, len, recipient_pub) != 0)
		return err_set(e, "sealed box: invalid recipient public key");
	out->len += len + crypto_box_SEALBYTES;
	out->data[out->len] = 0;
	return 0;
}

int sealbox_open(const uint8_t recipient_pub[32], const uint8_t recipient_secret[32], const uint8_t *box,
		 size_t len, uint8_t *out, struct err *e)
{
	if (ensure_sodium(e) < 0)
		return -1;
	if (len < crypto_box_SEALBYTES)
		return err_set(e, "sealed box too short (%zu bytes)", len);
	if (crypto_box_seal_open(out, box, len, recipient_pub, recipient_secret) != 0) {
		secure_zero(out, len - crypto_box_SEALBYTES);
		return err_set(e, "sealed box: decryption failed");
	}
	return 0;
}
