/*
 * hash.h — one-shot digests used across dstack: SHA-2 and SHA-3 from
 * OpenSSL, and the original (pre-NIST) Keccak that Ethereum-style signatures
 * and MR_CONFIG_ID v2 use, which OpenSSL 3.0 does not provide.
 *
 * Multi-part inputs are given as an array of `struct span` so callers can hash
 * `prefix ‖ ":" ‖ data` without building a temporary buffer.
 */
#ifndef DSTACK_CRYPTO_HASH_H
#define DSTACK_CRYPTO_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/err.h"

struct span {
	const void *ptr;
	size_t len;
};

#define SPAN(p, n) ((struct span){(p), (n)})
#define SPAN_STR(s) ((struct span){(s), strlen(s)})

enum hash_alg {
	HASH_SHA256,
	HASH_SHA384,
	HASH_SHA512,
	HASH_SHA3_256,
	HASH_SHA3_384,
	HASH_SHA3_512,
	HASH_KECCAK256,
	HASH_KECCAK384,
	HASH_KECCAK512,
};

#define HASH_MAX_LEN 64

/* Output length in bytes of alg. */
size_t hash_len(enum hash_alg alg);
/* Parse the guest API names: sha256, sha384, sha512, sha3-256, sha3-384,
 * sha3-512, keccak256, keccak384, keccak512. Returns -1 if unknown. */
int hash_alg_parse(const char *name, enum hash_alg *out);

/* Digest of the concatenation of parts; out must hold hash_len(alg) bytes. */
int hash_parts(enum hash_alg alg, const struct span *parts, size_t nparts, uint8_t *out, struct err *e);

/* RA-TLS / TdxQuote report_data: H(tag ‖ ":" ‖ content) right-padded with
 * zeros to 64 bytes (tags "ratls-cert", "kms-root-ca", "app-data", …). */
int report_data_tagged(enum hash_alg alg, const char *tag, const void *content, size_t len, uint8_t out[64],
		       struct err *e);

/* Convenience single-buffer forms (cannot fail: abort on allocation failure). */
void sha256(const void *data, size_t len, uint8_t out[32]);
void sha384(const void *data, size_t len, uint8_t out[48]);
void sha512(const void *data, size_t len, uint8_t out[64]);

/*
 * Keccak with the original 0x01 domain padding (Ethereum's keccak256).
 * rate_bytes = 200 - 2 * output length.
 */
struct keccak_ctx {
	uint64_t state[25];
	size_t rate;
	size_t pos;
	size_t out_len;
	uint8_t pad;
};

/* out_len is 32, 48 or 64. pad is 0x01 for Keccak, 0x06 for SHA-3. */
void keccak_init(struct keccak_ctx *c, size_t out_len, uint8_t pad);
void keccak_update(struct keccak_ctx *c, const void *data, size_t len);
void keccak_final(struct keccak_ctx *c, uint8_t *out);

void keccak256(const void *data, size_t len, uint8_t out[32]);
void keccak256_parts(const struct span *parts, size_t nparts, uint8_t out[32]);

#endif
