/*
 * test_sealbox.c — sealed boxes round-trip, reject tampering, and have the
 * layout kms.md §9 describes: eph_pk ‖ crypto_box(msg) with nonce =
 * BLAKE2b-24(eph_pk ‖ recipient_pk), checked by opening one by hand.
 */
#include <sodium.h>

#include "core/tap.h"
#include "crypto/ecx.h"
#include "crypto/sealbox.h"

int main(void)
{
	uint8_t sk[32], pk[32], seed[32], out[32];
	struct buf box = BUF_INIT;
	struct err e = ERR_INIT;

	ok(x25519_keypair(sk, pk, &e) == 0, "recipient key pair (OpenSSL X25519)");
	randombytes_buf(seed, sizeof(seed));
	ok(sealbox_seal(pk, seed, 32, &box, &e) == 0, "seal 32-byte seed");
	is_int(box.len, 32 + SEALBOX_OVERHEAD, "box = 32 + 48 bytes");
	ok(sealbox_open(pk, sk, box.data, box.len, out, &e) == 0 && memcmp(out, seed, 32) == 0, "open");

	/* Open by hand with the documented construction. */
	uint8_t nonce[crypto_box_NONCEBYTES], manual[32];
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, sizeof(nonce));
	crypto_generichash_update(&st, box.data, 32);
	crypto_generichash_update(&st, pk, 32);
	crypto_generichash_final(&st, nonce, sizeof(nonce));
	ok(crypto_box_open_easy(manual, box.data + 32, box.len - 32, nonce, box.data, sk) == 0 &&
	       memcmp(manual, seed, 32) == 0,
	   "layout: eph_pk || box(tag first), nonce = BLAKE2b-24(eph_pk || pk)");

	int accepted = 0;
	for (size_t i = 0; i < box.len; i++) {
		box.data[i] ^= 0x40;
		if (sealbox_open(pk, sk, box.data, box.len, out, &e) == 0)
			accepted++;
		box.data[i] ^= 0x40;
	}
	is_int(accepted, 0, "every single-byte change rejected");
	ok(sealbox_open(pk, sk, box.data, 47, out, &e) < 0, "short box rejected: %s", e.msg);
	uint8_t sk2[32], pk2[32];
	x25519_keypair(sk2, pk2, &e);
	ok(sealbox_open(pk2, sk2, box.data, box.len, out, &e) < 0, "wrong recipient rejected");
	buf_free(&box);
	return tap_done();
}
