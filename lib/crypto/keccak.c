/*
 * keccak.c — Keccak-f[1600] sponge with a selectable domain-padding byte.
 *
 * OpenSSL 3.0 exposes SHA-3 (padding 0x06) but not the original Keccak
 * submission (padding 0x01) that Ethereum signatures, the KMS `Sign` scheme
 * and MR_CONFIG_ID v2 hash with. The permutation is written lane by lane from
 * FIPS 202; bytes are absorbed little-endian so the code is endian-neutral.
 */
#include <string.h>

#include "core/mem.h"
#include "crypto/hash.h"

static const uint64_t round_consts[24] = {
    0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808aULL, 0x8000000080008000ULL,
    0x000000000000808bULL, 0x0000000080000001ULL, 0x8000000080008081ULL, 0x8000000000008009ULL,
    0x000000000000008aULL, 0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000aULL,
    0x000000008000808bULL, 0x800000000000008bULL, 0x8000000000008089ULL, 0x8000000000008003ULL,
    0x8000000000008002ULL, 0x8000000000000080ULL, 0x000000000000800aULL, 0x800000008000000aULL,
    0x8000000080008081ULL, 0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL,
};

/* Rotation offsets indexed by x + 5*y. */
static const unsigned rho[25] = {
    0, 1, 62, 28, 27, 36, 44, 6, 55, 20, 3, 10, 43, 25, 39, 41, 45, 15, 21, 8, 18, 2, 61, 56, 14,
};

static inline uint64_t rotl64(uint64_t v, unsigned n)
{
	return n ? (v << n) | (v >> (64 - n)) : v;
}

static void keccak_f1600(uint64_t a[25])
{
	uint64_t b[25], c[5], d[5];

	for (int round = 0; round < 24; round++) {
		for (int x = 0; x < 5; x++)
			c[x] = a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20];
		for (int x = 0; x < 5; x++)
			d[x] = c[(x + 4) % 5] ^ rotl64(c[(x + 1) % 5], 1);
		for (int i = 0; i < 25; i++)
			a[i] ^= d[i % 5];
		/* rho and pi: B[y, 2x+3y] = rot(A[x, y]) */
		for (int x = 0; x < 5; x++)
			for (int y = 0; y < 5; y++)
				b[y + 5 * ((2 * x + 3 * y) % 5)] = rotl64(a[x + 5 * y], rho[x + 5 * y]);
		for (int y = 0; y < 5; y++)
			for (int x = 0; x < 5; x++)
				a[x + 5 * y] =
				    b[x + 5 * y] ^ (~b[(x + 1) % 5 + 5 * y] & b[(x + 2) % 5 + 5 * y]);
		a[0] ^= round_consts[round];
	}
	secure_zero(b, sizeof(b));
}

void keccak_init(struct keccak_ctx *c, size_t out_len, uint8_t pad)
{
	memset(c->state, 0, sizeof(c->state));
	c->out_len = out_len;
	c->rate = 200 - 2 * out_len;
	c->pos = 0;
	c->pad = pad;
}

static inline void xor_byte(uint64_t *state, size_t i, uint8_t v)
{
	state[i / 8] ^= (uint64_t)v << (8 * (i % 8));
}

void keccak_update(struct keccak_ctx *c, const void *data, size_t len)
{
	const uint8_t *p = data;

	for (size_t i = 0; i < len; i++) {
		xor_byte(c->state, c->pos++, p[i]);
		if (c->pos == c->rate) {
			keccak_f1600(c->state);
			c->pos = 0;
		}
	}
}

void keccak_final(struct keccak_ctx *c, uint8_t *out)
{
	xor_byte(c->state, c->pos, c->pad);
	xor_byte(c->state, c->rate - 1, 0x80);
	keccak_f1600(c->state);
	for (size_t i = 0; i < c->out_len; i++)
		out[i] = (uint8_t)(c->state[i / 8] >> (8 * (i % 8)));
	secure_zero(c, sizeof(*c));
}

void keccak256_parts(const struct span *parts, size_t nparts, uint8_t out[32])
{
	struct keccak_ctx c;

	keccak_init(&c, 32, 0x01);
	for (size_t i = 0; i < nparts; i++)
		keccak_update(&c, parts[i].ptr, parts[i].len);
	keccak_final(&c, out);
}

void keccak256(const void *data, size_t len, uint8_t out[32])
{
	struct span s = SPAN(data, len);

	keccak256_parts(&s, 1, out);
}
