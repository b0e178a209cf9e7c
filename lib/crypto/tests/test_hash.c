/*
 * test_hash.c — Keccak against the standard vectors, the sponge against
 * OpenSSL's SHA-3 at every length across block boundaries (same permutation,
 * different padding byte), and the named-algorithm table.
 */
#include <openssl/evp.h>

#include "core/tap.h"
#include "crypto/hash.h"

static void sha3_via_keccak(size_t out_len, const uint8_t *msg, size_t len, uint8_t *out)
{
	struct keccak_ctx c;

	keccak_init(&c, out_len, 0x06);
	/* Feed in uneven pieces to exercise the incremental path. */
	for (size_t off = 0; off < len;) {
		size_t n = (off % 7) + 1;
		if (n > len - off)
			n = len - off;
		keccak_update(&c, msg + off, n);
		off += n;
	}
	keccak_final(&c, out);
}

int main(void)
{
	uint8_t out[64], ref[64];
	struct err e = ERR_INIT;

	keccak256("", 0, out);
	is_hex(out, 32, "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470", "keccak256('')");
	keccak256("abc", 3, out);
	is_hex(out, 32, "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45",
	       "keccak256('abc')");
	struct span parts[] = {SPAN_STR("a"), SPAN_STR(""), SPAN_STR("bc")};
	keccak256_parts(parts, 3, out);
	is_hex(out, 32, "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45",
	       "keccak256 parts");

	ok(hash_parts(HASH_KECCAK512, NULL, 0, out, &e) == 0, "keccak512");
	is_hex(out, 64,
	       "0eab42de4c3ceb9235fc91acffe746b29c29a8c366b7c60e4e67c466f36a4304c00fa9caf9d87976ba469bcbe0671"
	       "3b435f0"
	       "91ef2769fb160cdab33d3670680e",
	       "keccak512('')");
	ok(hash_parts(HASH_KECCAK384, NULL, 0, out, &e) == 0, "keccak384");
	is_hex(out, 48,
	       "2c23146a63a29acf99e73b88f8c24eaa7dc60aa771780ccc006afbfa8fe2479b2dd2b21362337441ac12b51591195"
	       "7ff",
	       "keccak384('')");

	/* Sponge vs OpenSSL SHA-3 for every length 0..600 (rates 136/104/72
	 * are crossed several times) and all three output sizes. */
	static uint8_t msg[600];
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i * 131 + 7);
	const struct {
		size_t len;
		const char *name;
	} sha3[] = {{32, "SHA3-256"}, {48, "SHA3-384"}, {64, "SHA3-512"}};
	int mismatches = 0;
	for (size_t a = 0; a < 3; a++)
		for (size_t len = 0; len <= sizeof(msg); len++) {
			unsigned int rl = 0;
			sha3_via_keccak(sha3[a].len, msg, len, out);
			EVP_Digest(msg, len, ref, &rl, EVP_get_digestbyname(sha3[a].name), NULL);
			if (rl != sha3[a].len || memcmp(out, ref, rl) != 0)
				mismatches++;
		}
	is_int(mismatches, 0, "keccak sponge with 0x06 padding == OpenSSL SHA3 for lengths 0..600");

	/* Multi-block keccak256: 1,000,000 'a' computed incrementally equals
	 * the one-shot result and differs from SHA3-256. */
	static uint8_t big[1000];
	memset(big, 'a', sizeof(big));
	struct keccak_ctx c;
	keccak_init(&c, 32, 0x01);
	for (int i = 0; i < 1000; i++)
		keccak_update(&c, big, sizeof(big));
	keccak_final(&c, out);
	is_hex(out, 32, "fadae6b49f129bbb812be8407b7b2894f34aecf6dbd1f9b0f0c7e9853098fc96",
	       "keccak256(10^6 x 'a') multi-block");

	/* Names. */
	enum hash_alg alg;
	const char *names[] = {"sha256",   "sha384",    "sha512",    "sha3-256", "sha3-384",
			       "sha3-512", "keccak256", "keccak384", "keccak512"};
	size_t lens[] = {32, 48, 64, 32, 48, 64, 32, 48, 64};
	for (size_t i = 0; i < 9; i++)
		ok(hash_alg_parse(names[i], &alg) == 0 && hash_len(alg) == lens[i], "%s is %zu bytes",
		   names[i], lens[i]);
	ok(hash_alg_parse("md5", &alg) < 0, "md5 unknown");
	ok(hash_alg_parse("raw", &alg) < 0, "raw is not a hash");

	struct span abc = SPAN_STR("abc");
	ok(hash_alg_parse("sha3-256", &alg) == 0 && hash_parts(alg, &abc, 1, out, &e) == 0,
	   "sha3-256 via table");
	is_hex(out, 32, "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532",
	       "sha3-256('abc')");
	ok(hash_alg_parse("sha512", &alg) == 0 && hash_parts(alg, &abc, 1, out, &e) == 0, "sha512 via table");
	sha512("abc", 3, ref);
	ok(memcmp(out, ref, 64) == 0, "sha512 table == sha512()");
	sha256("abc", 3, out);
	is_hex(out, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "sha256('abc')");

	uint8_t rd[64];
	ok(report_data_tagged(HASH_SHA256, "app-data", "abc", 3, rd, &e) == 0, "report_data sha256");
	sha256("app-data:abc", 12, ref);
	ok(memcmp(rd, ref, 32) == 0, "report_data = H(tag ':' content)");
	uint8_t zeros[32] = {0};
	ok(memcmp(rd + 32, zeros, 32) == 0, "zero padded to 64");
	ok(report_data_tagged(HASH_SHA512, "ratls-cert", "k", 1, rd, &e) == 0, "sha512 fills 64 bytes");
	sha512("ratls-cert:k", 12, ref);
	ok(memcmp(rd, ref, 64) == 0, "report_data sha512");
	return tap_done();
}
