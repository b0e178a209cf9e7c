/*
 * test_ecx.c — X25519 (RFC 7748 §6.1), Ed25519 (RFC 8032 test 1) and
 * AES-256-GCM (GCM spec test cases 13/14) vectors, plus failure modes.
 */
#include "core/tap.h"
#include "crypto/aead.h"
#include "crypto/ecx.h"
#include "test_util.h"

int main(void)
{
	uint8_t a_sk[32], b_sk[32], a_pub[32], b_pub[32], s1[32], s2[32];
	struct err e = ERR_INIT;

	unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", a_sk, 32);
	unhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb", b_sk, 32);
	ok(x25519_public(a_sk, a_pub, &e) == 0 && x25519_public(b_sk, b_pub, &e) == 0, "X25519 public keys");
	is_hex(a_pub, 32, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
	       "Alice public (RFC 7748)");
	is_hex(b_pub, 32, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
	       "Bob public (RFC 7748)");
	ok(x25519_shared(a_sk, b_pub, s1, &e) == 0 && x25519_shared(b_sk, a_pub, s2, &e) == 0,
	   "shared secrets");
	is_hex(s1, 32, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742",
	       "shared (RFC 7748)");
	ok(memcmp(s1, s2, 32) == 0, "both sides agree");
	uint8_t one[32] = {1};
	ok(x25519_shared(a_sk, one, s1, &e) < 0, "low-order point u=1 refused");

	uint8_t seed[32], pub[32], sig[64];
	unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", seed, 32);
	ok(ed25519_public(seed, pub, &e) == 0, "Ed25519 public");
	is_hex(pub, 32, "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
	       "public (RFC 8032 test 1)");
	ok(ed25519_sign(seed, "", 0, sig, &e) == 0, "sign empty message");
	is_hex(sig, 64,
	       "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b"
	       "46bd25bf5"
	       "f0595bbe24655141438e7a100b",
	       "signature (RFC 8032 test 1)");
	is_int(ed25519_verify(pub, "", 0, sig, &e), 1, "verifies");
	is_int(ed25519_verify(pub, "x", 1, sig, &e), 0, "other message fails");
	sig[10] ^= 1;
	is_int(ed25519_verify(pub, "", 0, sig, &e), 0, "modified signature fails");

	uint8_t key[32] = {0}, iv[12] = {0}, zero16[16] = {0}, out[32], back[16];
	ok(aes256gcm_encrypt(key, iv, NULL, 0, NULL, 0, out, &e) == 0, "GCM empty");
	is_hex(out, 16, "530f8afbc74536b9a963b4f1c4cb738b", "GCM test case 13 tag");
	ok(aes256gcm_encrypt(key, iv, NULL, 0, zero16, 16, out, &e) == 0, "GCM 16 zero bytes");
	is_hex(out, 32, "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919",
	       "GCM test case 14 ct||tag");
	ok(aes256gcm_decrypt(key, iv, NULL, 0, out, 32, back, &e) == 0 && memcmp(back, zero16, 16) == 0,
	   "decrypt");
	ok(aes256gcm_decrypt(key, iv, "aad", 3, out, 32, back, &e) < 0, "AAD mismatch fails");
	out[31] ^= 1;
	ok(aes256gcm_decrypt(key, iv, NULL, 0, out, 32, back, &e) < 0, "tag mismatch fails: %s", e.msg);
	ok(aes256gcm_decrypt(key, iv, NULL, 0, out, 15, back, &e) < 0, "input shorter than tag fails");
	return tap_done();
}
