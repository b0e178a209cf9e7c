/*
 * hash.c — named digests over multi-part input. SHA-2 and SHA-3 go through
 * OpenSSL's EVP interface; the Keccak variants through keccak.c because
 * OpenSSL 3.0 has no provider for them.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/cleanup.h"
#include "crypto/hash.h"

static const struct {
	const char *name;
	enum hash_alg alg;
	size_t len;
	const char *evp_name; /* NULL: Keccak, done here */
} algs[] = {
    {"sha256", HASH_SHA256, 32, "SHA256"},       {"sha384", HASH_SHA384, 48, "SHA384"},
    {"sha512", HASH_SHA512, 64, "SHA512"},       {"sha3-256", HASH_SHA3_256, 32, "SHA3-256"},
    {"sha3-384", HASH_SHA3_384, 48, "SHA3-384"}, {"sha3-512", HASH_SHA3_512, 64, "SHA3-512"},
    {"keccak256", HASH_KECCAK256, 32, NULL},     {"keccak384", HASH_KECCAK384, 48, NULL},
    {"keccak512", HASH_KECCAK512, 64, NULL},
};

size_t hash_len(enum hash_alg alg)
{
	for (size_t i = 0; i < ARRAY_SIZE(algs); i++)
		if (algs[i].alg == alg)
			return algs[i].len;
	return 0;
}

int hash_alg_parse(const char *name, enum hash_alg *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(algs); i++)
		if (!strcmp(algs[i].name, name)) {
			*out = algs[i].alg;
			return 0;
		}
	return -1;
}

int hash_parts(enum hash_alg alg, const struct span *parts, size_t nparts, uint8_t *out, struct err *e)
{
	for (size_t i = 0; i < ARRAY_SIZE(algs); i++) {
		if (algs[i].alg != alg)
			continue;
		if (!algs[i].evp_name) {
			struct keccak_ctx k;

			keccak_init(&k, algs[i].len, 0x01);
			for (size_t j = 0; j < nparts; j++)
				keccak_update(&k, parts[j].ptr, parts[j].len);
			keccak_final(&k, out);
			return 0;
		}
		_cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		if (!ctx || !EVP_DigestInit_ex2(ctx, EVP_get_digestbyname(algs[i].evp_name), NULL))
			return err_ssl(e, "%s init", algs[i].name);
		for (size_t j = 0; j < nparts; j++)
			if (!EVP_DigestUpdate(ctx, parts[j].ptr, parts[j].len))
				return err_ssl(e, "%s update", algs[i].name);
		if (!EVP_DigestFinal_ex(ctx, out, NULL))
			return err_ssl(e, "%s final", algs[i].name);
		return 0;
	}
	return err_set(e, "unknown hash algorithm");
}

int report_data_tagged(enum hash_alg alg, const char *tag, const void *content, size_t len, uint8_t out[64],
		       struct err *e)
{
	struct span parts[] = {SPAN_STR(tag), SPAN(":", 1), SPAN(content, len)};

	memset(out, 0, 64);
	return hash_parts(alg, parts, 3, out, e);
}

static void digest_or_abort(const char *name, const void *data, size_t len, uint8_t *out)
{
	if (!EVP_Digest(data, len, out, NULL, EVP_get_digestbyname(name), NULL))
		abort();
}

void sha256(const void *data, size_t len, uint8_t out[32])
{
	digest_or_abort("SHA256", data, len, out);
}

void sha384(const void *data, size_t len, uint8_t out[48])
{
	digest_or_abort("SHA384", data, len, out);
}

void sha512(const void *data, size_t len, uint8_t out[64])
{
	digest_or_abort("SHA512", data, len, out);
}
