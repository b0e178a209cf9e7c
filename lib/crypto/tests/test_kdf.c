/*
 * test_kdf.c — every key-derivation vector of kms.md §3, guest.md §2.2 and
 * testdata/README.md, plus the failure modes of the primitives.
 */
#include <stdio.h>

#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/x509.h>

#include "core/cleanup.h"
#include "core/tap.h"
#include "crypto/appkeys.h"
#include "crypto/ecx.h"
#include "crypto/k256.h"
#include "crypto/kdf.h"
#include "test_util.h"

#define ROOT_HEX "f57527cea4ab7ffb49af99b158cdc0e3ec06398f528349ea236b7d2afe19cec1"

static void test_primitives(void)
{
	uint8_t root[32], out[32], der[P256_PKCS8_LEN];
	struct span ctx[] = {SPAN_STR("context one"), SPAN_STR("context two")};
	struct err e = ERR_INIT;

	unhex(ROOT_HEX, root, 32);
	ok(dh_secret(root, ctx, 2, out, &e) == 0, "DhSecret succeeds");
	is_hex(out, 32, "663afd58820be8ad645f9c035e93199d114ab16f738db62393bc1d7d623e8813",
	       "DhSecret(root, [context one, context two]) reference vector");

	/* Our fixed PKCS#8 bytes must equal what OpenSSL parses back to the
	 * same key, i.e. the encoding is a real PKCS#8 of that scalar. */
	ok(p256_derive(root, ctx, 2, out, &e) == 0, "P256Derive succeeds");
	ok(p256_pkcs8_fixed(out, der, &e) == 0, "PKCS#8 built");
	is_int(der[0], 0x30, "PKCS#8 is a SEQUENCE");
	const unsigned char *p = der;
	PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, sizeof(der));
	ok(p8 && p == der + sizeof(der), "OpenSSL parses all 138 bytes as PKCS#8");
	EVP_PKEY *pk = p8 ? EVP_PKCS82PKEY(p8) : NULL;
	uint8_t back[32] = {0};
	ok(pk && p256_pkey_scalar(pk, back, &e) == 0 && memcmp(back, out, 32) == 0,
	   "PKCS#8 round-trips the scalar");
	EVP_PKEY_free(pk);
	PKCS8_PRIV_KEY_INFO_free(p8);

	_cleanup_(EVP_PKEY_freep) EVP_PKEY *k = p256_pkey_from_scalar(out, &e);
	ok(k && p256_pkey_scalar(k, back, &e) == 0 && memcmp(back, out, 32) == 0,
	   "p256_pkey_from_scalar imports the scalar");

	/* Scalar range checks. */
	uint8_t zero[32] = {0}, n[32], nm1[32];
	unhex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551", n, 32);
	unhex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632550", nm1, 32);
	ok(!p256_scalar_valid(zero), "scalar 0 rejected");
	ok(!p256_scalar_valid(n), "scalar n rejected");
	ok(p256_scalar_valid(nm1), "scalar n-1 accepted");
	memset(n, 0xff, 32);
	ok(!p256_scalar_valid(n), "scalar 2^256-1 rejected");
	e.msg[0] = 0;
	ok(p256_pkcs8_fixed(zero, der, &e) < 0 && strstr(e.msg, "invalid"), "PKCS#8 of 0 fails: %s", e.msg);

	/* HKDF against RFC 5869-style independent computation through
	 * OpenSSL's own HKDF with the same salt and concatenated info. */
	uint8_t ours[80], theirs[80];
	struct span parts[] = {SPAN_STR("a"), SPAN_STR(""), SPAN_STR("bc")};
	ok(hkdf_ratls("ikm", 3, parts, 3, ours, sizeof(ours), &e) == 0, "HKDF 80 bytes");
	EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	size_t tl = sizeof(theirs);
	ok(pctx && EVP_PKEY_derive_init(pctx) > 0 && EVP_PKEY_CTX_set_hkdf_md(pctx, EVP_sha256()) > 0 &&
	       EVP_PKEY_CTX_set1_hkdf_salt(pctx, (const unsigned char *)"RATLS", 5) > 0 &&
	       EVP_PKEY_CTX_set1_hkdf_key(pctx, (const unsigned char *)"ikm", 3) > 0 &&
	       EVP_PKEY_CTX_add1_hkdf_info(pctx, (const unsigned char *)"abc", 3) > 0 &&
	       EVP_PKEY_derive(pctx, theirs, &tl) > 0,
	   "OpenSSL HKDF reference");
	EVP_PKEY_CTX_free(pctx);
	ok(memcmp(ours, theirs, sizeof(ours)) == 0, "HKDF_RATLS = HKDF-SHA256(salt RATLS, info concat)");
	ok(hkdf_ratls("ikm", 3, parts, 3, ours, 255 * 32 + 1, &e) < 0, "HKDF refuses > 255 blocks");

	/* A long info (guest paths are caller-chosen) works. */
	static char longpath[10000];
	memset(longpath, 'p', sizeof(longpath));
	struct span lp = SPAN(longpath, sizeof(longpath));
	ok(hkdf_ratls("ikm", 3, &lp, 1, ours, 32, &e) == 0, "HKDF with 10000-byte info");
}

static void test_kms_vectors(void)
{
	uint8_t root[32], app_id[20], inst[20], out[32];
	struct kms_app_keys k;
	struct err e = ERR_INIT;

	unhex(ROOT_HEX, root, 32);
	memset(app_id, 0x11, 20);
	memset(inst, 0x22, 20);
	ok(kms_derive_app_keys(root, root, app_id, inst, 20, &k, &e) == 0, "derive app keys: %s", e.msg);
	is_hex(k.disk_crypt_key, 32, "a59c814e2c6d9353af59ce4fba7215e5ec3b62a2495b4dca48ea6f9804061f51",
	       "disk key");
	is_hex(k.env_crypt_key, 32, "a7470db8cfdd0fe24134b461d60766afa7c078abe6dce9f2c8a5c44034ca400e",
	       "env key");
	is_hex(k.env_crypt_pub, 32, "93cf259f68b24775d54290a8ea57cf93efc994d3ff28a7b8ba7a39e9f512302f",
	       "env X25519 public key");
	is_hex(k.app_ca_key, 32, "5b779e0a9fe80b2e5866d94958daa1a4e29a183228b3f37acd7eae153e18a75f",
	       "app CA scalar");
	ok(k.has_k256, "k256 derived");
	is_hex(k.k256_key, 32, "02544cbe8407a1a91bf9f8c32335930229442be9fd5b257fff0ffa73ceaafa8c",
	       "app k256 scalar");
	is_hex(k.k256_pub, 33, "023d727aea86ed636c2c8da42f3ade5fd853fefced79d1dd92d54fa14a60a478b8",
	       "app k256 pub");

	/* k256_signature recovers to the root k256 public key. */
	uint8_t root_pub[33], rec[33];
	struct span msg = SPAN(k.k256_pub, 33);
	ok(k256_pubkey(root, true, root_pub, &e) == 0, "root k256 pub");
	ok(kms_sign_recover(KMS_SIGN_PREFIX_ISSUED, app_id, 20, &msg, 1, k.k256_signature, rec, &e) == 0 &&
	       memcmp(rec, root_pub, 33) == 0,
	   "k256_signature recovers to the root k256 key");

	ok(kms_disk_crypt_key(root, app_id, NULL, 0, out, &e) == 0, "disk key without instance");
	is_hex(out, 32, "14de7a7fd8bddf8e641a55ca97f043cac4344d175419f743940840f3a348f049",
	       "disk key, no instance id");
	ok(kms_derive_app_keys(root, NULL, app_id, NULL, 0, &k, &e) == 0 && !k.has_k256,
	   "no root k256: no k256");
	is_hex(k.disk_crypt_key, 32, "14de7a7fd8bddf8e641a55ca97f043cac4344d175419f743940840f3a348f049",
	       "derive_app_keys with empty instance id");
	ok(kms_derive_app_keys(root, NULL, app_id, inst, 7, &k, &e) < 0, "7-byte instance id rejected");

	/* Env pubkey signatures recover to the root k256 key; v1 differs. */
	uint8_t sig[65], sig1[65], ts[8] = {0, 0, 0, 0, 0x65, 0x4e, 0x36, 0x00};
	ok(kms_env_pubkey_signatures(root, app_id, k.env_crypt_pub, 0x654e3600ULL, sig, sig1, &e) == 0,
	   "env sigs");
	struct span legacy = SPAN(k.env_crypt_pub, 32), v1[] = {SPAN(ts, 8), SPAN(k.env_crypt_pub, 32)};
	ok(kms_sign_recover(KMS_SIGN_PREFIX_ENV_PUBKEY, app_id, 20, &legacy, 1, sig, rec, &e) == 0 &&
	       memcmp(rec, root_pub, 33) == 0,
	   "legacy env pubkey signature recovers to root");
	ok(kms_sign_recover(KMS_SIGN_PREFIX_ENV_PUBKEY, app_id, 20, v1, 2, sig1, rec, &e) == 0 &&
	       memcmp(rec, root_pub, 33) == 0,
	   "v1 env pubkey signature (timestamp) recovers to root");
	ok(memcmp(sig, sig1, 65) != 0, "v1 and legacy signatures differ");
	ok(kms_env_pubkey_recover(app_id, k.env_crypt_pub, true, 0x654e3600ULL, sig1, rec, &e) == 0 &&
	       memcmp(rec, root_pub, 33) == 0,
	   "kms_env_pubkey_recover(v1)");
	ok(kms_env_pubkey_recover(app_id, k.env_crypt_pub, false, 0, sig, rec, &e) == 0 &&
	       memcmp(rec, root_pub, 33) == 0,
	   "kms_env_pubkey_recover(legacy)");
	ok(kms_env_pubkey_recover(app_id, k.env_crypt_pub, true, 0x654e3601ULL, sig1, rec, &e) == 0 &&
	       memcmp(rec, root_pub, 33) != 0,
	   "wrong timestamp recovers a different signer");
	ok(sig[64] <= 1 && sig1[64] <= 1, "v in {0,1}");
}

static void test_simulator(const char *testdata)
{
	uint8_t k256[32], sig1[65], app_id[20], key[32], pub[33], rec_app[33], rec_kms[33], sig0[65];
	size_t pub_len;
	struct err e = ERR_INIT;

	if (!ok(appkeys_field(testdata, "k256_key", k256, 32) == 0 &&
		    appkeys_field(testdata, "k256_signature", sig1, 65) == 0,
		"simulator appkeys.json loaded from %s", testdata))
		return;
	unhex("5bb4ff9a3837357f19dc176407a5709c62eb6c56", app_id, 20);

	ok(k256_pubkey(k256, true, pub, &e) == 0, "app k256 pub");
	is_hex(pub, 33, "02818494263695e8839122dbd88e281d7380622999df4e60a14befa0f2d096fc7c",
	       "simulator app k256 public key");
	struct span msg = SPAN(pub, 33);
	ok(kms_sign_recover(KMS_SIGN_PREFIX_ISSUED, app_id, 20, &msg, 1, sig1, rec_kms, &e) == 0,
	   "recover KMS");
	is_hex(rec_kms, 33, "0321529e458424ab1f710a3a57ec4dad2fb195ddca572f7469242ba6c7563085b6",
	       "KMS signature recovers to the reference KMS key");

	ok(guest_get_key(k256, "test", 4, key, &e) == 0, "GetKey(test)");
	is_hex(key, 32, "133e8ca6e532ead3e38f00347408771da296e9c70e8e3e362f485154e64ef4e8",
	       "GetKey(\"test\")");
	ok(guest_get_key(k256, "/", 1, key, &e) == 0, "GetKey(/)");
	is_hex(key, 32, "f6c1ed94488394d78e0a4e5ab75d62e9f085d73b0b555d0614fb90ca13d9464d", "GetKey(\"/\")");

	/* Full chain for both algorithms: sig0 recovers to the app key, sig1
	 * to the KMS key. */
	enum getkey_alg algs[] = {GETKEY_SECP256K1, GETKEY_ED25519};
	for (size_t i = 0; i < 2; i++) {
		ok(getkey_public(algs[i], key, pub, &pub_len, &e) == 0 && pub_len == (i ? 32u : 33u),
		   "GetKey pub");
		ok(getkey_signature(k256, "signing", pub, pub_len, sig0, &e) == 0, "sig0");
		ok(getkey_chain_recover("signing", pub, pub_len, sig0, app_id, sig1, rec_app, rec_kms, &e) ==
		       0,
		   "chain recovers");
		is_hex(rec_app, 33, "02818494263695e8839122dbd88e281d7380622999df4e60a14befa0f2d096fc7c",
		       "chain[0] -> app key (%s)", i ? "ed25519" : "secp256k1");
		is_hex(rec_kms, 33, "0321529e458424ab1f710a3a57ec4dad2fb195ddca572f7469242ba6c7563085b6",
		       "chain[1] -> KMS key");
		ok(getkey_chain_recover("other", pub, pub_len, sig0, app_id, sig1, rec_app, NULL, &e) == 0 &&
		       memcmp(rec_app, rec_kms, 33) != 0 && rec_app[1] != 0x81,
		   "different purpose recovers a different key");
	}
	enum getkey_alg a;
	ok(getkey_alg_parse("", &a) == 0 && a == GETKEY_SECP256K1, "'' = secp256k1");
	ok(getkey_alg_parse("k256", &a) == 0 && a == GETKEY_SECP256K1, "k256 = secp256k1");
	ok(getkey_alg_parse("ed25519", &a) == 0 && a == GETKEY_ED25519, "ed25519");
	ok(getkey_alg_parse("secp256k1_prehashed", &a) < 0, "prehashed unsupported for GetKey");
}

static void test_seed(void)
{
	uint8_t seed[32];
	struct seed_app_keys k, k2;
	struct err e = ERR_INIT;
	uint8_t expect[32], der[P256_PKCS8_LEN];
	struct span ca = SPAN_STR("app-key"), disk = SPAN_STR("app-disk-key"), kk = SPAN_STR("app-k256-key");

	unhex(ROOT_HEX, seed, 32);
	ok(seed_derive_app_keys(seed, 32, &k, &e) == 0, "seed derivation");
	ok(hkdf_ratls(seed, 32, &ca, 1, expect, 32, &e) == 0 && memcmp(expect, k.ca_key, 32) == 0,
	   "CA key = HKDF(seed, app-key)");
	ok(hkdf_ratls(seed, 32, &kk, 1, expect, 32, &e) == 0 && memcmp(expect, k.k256_key, 32) == 0,
	   "k256 = HKDF(seed, app-k256-key)");
	ok(dh_secret(seed, &disk, 1, expect, &e) == 0 && memcmp(expect, k.disk_crypt_key, 32) == 0,
	   "disk_crypt_key = DhSecret(seed, app-disk-key)");
	ok(p256_pkcs8_fixed(k.disk_key, der, &e) == 0, "disk key pkcs8");
	sha256(der, sizeof(der), expect);
	ok(memcmp(expect, k.disk_crypt_key, 32) == 0, "disk_crypt_key = SHA-256(PKCS#8(disk key))");
	seed[0] ^= 1;
	ok(seed_derive_app_keys(seed, 32, &k2, &e) == 0 && memcmp(k.ca_key, k2.ca_key, 32) != 0,
	   "different seed, different keys");
}

int main(int argc, char **argv)
{
	test_primitives();
	test_kms_vectors();
	test_simulator(argc > 1 ? argv[1] : "../shared/testdata");
	test_seed();
	return tap_done();
}
