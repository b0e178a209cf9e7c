/*
 * test_k256.c — secp256k1 signing is RFC 6979 deterministic and low-S
 * (vectors computed by an independent implementation), recovery, key
 * encodings, verification rules, Keccak-based KMS signatures.
 */
#include "core/tap.h"
#include "crypto/k256.h"
#include "test_util.h"

int main(void)
{
	uint8_t key[32] = {0}, digest[32], sig[65], pub[65], pub33[33], rec[33];
	struct err e = ERR_INIT;

	/* Private key 1, SHA-256("Satoshi Nakamoto"): the classic RFC 6979 vector. */
	key[31] = 1;
	sha256("Satoshi Nakamoto", 16, digest);
	ok(k256_sign_recoverable(key, digest, sig, &e) == 0, "sign");
	is_hex(sig, 65,
	       "934b1ea10a4b3c1757e2b0c017d0b6143ce3c9a7e6a4a49860d7a6ab210ee3d82442ce9d2b916064108014783e923"
	       "ec36b49"
	       "743e2ffa1c4496f01a512aafd9e501",
	       "RFC 6979 signature r||s||v, key 1");
	ok(k256_pubkey(key, true, pub33, &e) == 0, "pubkey");
	is_hex(pub33, 33, "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798",
	       "G compressed");
	ok(k256_pubkey(key, false, pub, &e) == 0, "uncompressed");
	is_hex(pub, 65,
	       "0479be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798483ada7726a3c4655da4fbfc0e1"
	       "108a8fd"
	       "17b448a68554199c47d08ffb10d4b8",
	       "G uncompressed");
	ok(k256_recover(digest, sig, rec, &e) == 0 && memcmp(rec, pub33, 33) == 0, "recover");

	uint8_t sig64[64];
	ok(k256_sign(key, digest, sig64, &e) == 0 && memcmp(sig64, sig, 64) == 0,
	   "non-recoverable sig = r||s");
	is_int(k256_verify(pub33, 33, digest, sig64, 64, &e), 1, "verify compressed");
	is_int(k256_verify(pub, 65, digest, sig, 65, &e), 1, "verify uncompressed with 65-byte sig");

	unhex("f57527cea4ab7ffb49af99b158cdc0e3ec06398f528349ea236b7d2afe19cec1", key, 32);
	sha256("abc", 3, digest);
	ok(k256_sign_recoverable(key, digest, sig, &e) == 0, "sign 2");
	is_hex(sig, 65,
	       "f3916ca7f6c02adcb2db116370d6c689ec411df976def7a06ea72ace7dad819224e49d09e468951aa8fd6ac313d20"
	       "7824e3b"
	       "11b881c1b3d68b3d3b67dd60627c01",
	       "RFC 6979 signature, second key");

	/* n-1: signature had to be normalised to low-S. */
	unhex("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140", key, 32);
	const char *m = "All those moments will be lost in time, like tears in rain. Time to die...";
	sha256(m, strlen(m), digest);
	ok(k256_sign_recoverable(key, digest, sig, &e) == 0, "sign 3");
	is_hex(sig, 65,
	       "059385ce615b7ab6a0db2a3b83f0566d3bc750e958121635ba497ccb4e3ce801391bf93814fda99c98014ada8567d"
	       "d7c067a"
	       "50ac0a7ef7aa613b87e0eec17eb501",
	       "RFC 6979 signature, key n-1 (low-S)");
	ok(k256_pubkey(key, true, pub33, &e) == 0 && k256_recover(digest, sig, rec, &e) == 0 &&
	       memcmp(rec, pub33, 33) == 0,
	   "recover key n-1");

	/* v = 27/28 accepted by recovery, other v rejected. */
	sig[64] += 27;
	ok(k256_recover(digest, sig, rec, &e) == 0 && memcmp(rec, pub33, 33) == 0, "v+27 accepted");
	sig[64] = 2;
	ok(k256_recover(digest, sig, rec, &e) < 0, "v=2 rejected: %s", e.msg);
	sig[64] = 1;

	/* High-S form of a valid signature is rejected (Ethereum/k256 rule). */
	uint8_t high[64];
	static const uint8_t order[32] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					  0xff, 0xff, 0xff, 0xff, 0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48,
					  0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41};
	memcpy(high, sig, 32);
	int borrow = 0;
	for (int i = 31; i >= 0; i--) {
		int d = order[i] - sig[32 + i] - borrow;
		borrow = d < 0;
		high[32 + i] = (uint8_t)(d + (borrow ? 256 : 0));
	}
	is_int(k256_verify(pub33, 33, digest, high, 64, &e), 0, "high-S signature rejected");
	is_int(k256_verify(pub33, 33, digest, sig, 64, &e), 1, "low-S accepted");
	digest[0] ^= 1;
	is_int(k256_verify(pub33, 33, digest, sig, 64, &e), 0, "wrong digest rejected");

	/* Malformed inputs. */
	uint8_t bad_pub[33] = {0x02};
	memset(bad_pub + 1, 0xff, 32);
	is_int(k256_verify(bad_pub, 33, digest, sig, 64, &e), -1, "invalid point is an error");
	is_int(k256_verify(pub33, 32, digest, sig, 64, &e), -1, "32-byte key is an error");
	is_int(k256_verify(pub33, 33, digest, sig, 63, &e), -1, "63-byte sig is an error");
	uint8_t zero[32] = {0};
	ok(!k256_seckey_valid(zero), "zero secret invalid");
	ok(k256_sign(zero, digest, sig64, &e) < 0, "signing with zero key fails");
	ok(k256_pubkey_convert(pub33, 33, false, pub, &e) == 0 && pub[0] == 4, "decompress");
	ok(k256_pubkey_convert(pub, 65, true, rec, &e) == 0 && memcmp(rec, pub33, 33) == 0, "compress back");

	/* KMS Sign digest = keccak256(prefix ":" app_id msg). */
	uint8_t app_id[20], d1[32], d2[32];
	memset(app_id, 0xab, 20);
	struct span msg = SPAN_STR("hello");
	kms_sign_digest("pfx", app_id, 20, &msg, 1, d1);
	uint8_t pre[3 + 1 + 20 + 5];
	memcpy(pre, "pfx:", 4);
	memcpy(pre + 4, app_id, 20);
	memcpy(pre + 24, "hello", 5);
	keccak256(pre, sizeof(pre), d2);
	ok(memcmp(d1, d2, 32) == 0, "KMS sign digest layout");
	ok(kms_sign(key, "pfx", app_id, 20, &msg, 1, sig, &e) == 0 &&
	       kms_sign_recover("pfx", app_id, 20, &msg, 1, sig, rec, &e) == 0 && memcmp(rec, pub33, 33) == 0,
	   "KMS sign/recover round trip");
	return tap_done();
}
