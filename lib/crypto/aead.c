/*
 * aead.c — AES-256-GCM through EVP. Lengths are fed in chunks of at most
 * INT_MAX because the EVP update interface takes an int.
 */
#include <limits.h>
#include <string.h>

#include <openssl/err.h>

#include "core/cleanup.h"
#include "core/mem.h"
#include "crypto/aead.h"

static int gcm_update(EVP_CIPHER_CTX *ctx, uint8_t *out, const uint8_t *in, size_t len)
{
	while (len) {
		int chunk = len > INT_MAX / 2 ? INT_MAX / 2 : (int)len, outl = 0;

		if (!EVP_CipherUpdate(ctx, out, &outl, in, chunk))
			return -1;
		if (out)
			out += outl;
		in += chunk;
		len -= (size_t)chunk;
	}
	return 0;
}

static EVP_CIPHER_CTX *gcm_init(int enc, const uint8_t key[32], const uint8_t iv[12], const void *aad,
				size_t aad_len)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();

	if (!ctx || !EVP_CipherInit_ex2(ctx, EVP_aes_256_gcm(), key, iv, enc, NULL) ||
	    (aad_len && gcm_update(ctx, NULL, aad, aad_len) < 0)) {
		EVP_CIPHER_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

int aes256gcm_encrypt(const uint8_t key[32], const uint8_t iv[12], const void *aad, size_t aad_len,
		      const void *pt, size_t len, uint8_t *out, struct err *e)
{
	_cleanup_(EVP_CIPHER_CTX_freep) EVP_CIPHER_CTX *ctx = gcm_init(1, key, iv, aad, aad_len);
	int outl = 0;

	if (!ctx || gcm_update(ctx, out, pt, len) < 0 || !EVP_CipherFinal_ex(ctx, out + len, &outl) ||
	    !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, AES_GCM_TAG_LEN, out + len))
		return err_ssl(e, "AES-256-GCM encryption");
	return 0;
}

int aes256gcm_decrypt(const uint8_t key[32], const uint8_t iv[12], const void *aad, size_t aad_len,
		      const uint8_t *in, size_t in_len, uint8_t *out, struct err *e)
{
	_cleanup_(EVP_CIPHER_CTX_freep) EVP_CIPHER_CTX *ctx = NULL;
	size_t len;
	uint8_t tag[AES_GCM_TAG_LEN];
	int outl = 0;

	if (in_len < AES_GCM_TAG_LEN)
		return err_set(e, "ciphertext shorter than the GCM tag");
	len = in_len - AES_GCM_TAG_LEN;
	memcpy(tag, in + len, sizeof(tag));
	ctx = gcm_init(0, key, iv, aad, aad_len);
	if (!ctx || gcm_update(ctx, out, in, len) < 0 ||
	    !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, AES_GCM_TAG_LEN, tag))
		return err_ssl(e, "AES-256-GCM decryption");
	if (EVP_CipherFinal_ex(ctx, out + len, &outl) <= 0) {
		secure_zero(out, len);
		ERR_clear_error();
		return err_set(e, "decryption failed: authentication tag mismatch");
	}
	return 0;
}
