/*
 * mem.c — see mem.h. OpenSSL's implementations are the audited ones.
 */
#include "core/mem.h"

#include <openssl/crypto.h>

void secure_zero(void *p, size_t len)
{
	if (p && len)
		OPENSSL_cleanse(p, len);
}

bool ct_memeq(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}
