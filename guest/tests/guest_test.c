/*
 * guest_test.c — unit tests of the guest agent's pure pieces: the dip1
 * report-data strings of Worker.GetAttestationForAppKey (vectors from the
 * reference's rpc_service.rs tests, guest.md §2.2), Tappd.TdxQuote
 * report-data rules, and the .appkeys.json reader/writer.
 */
#include <string.h>

#include "appkeys_file.h"
#include "core/hex.h"
#include "core/tap.h"
#include "crypto/hash.h"
#include "rpc.h"

#define UNIT_KEY_HEX "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b"
static const char *UNIT_KEY = UNIT_KEY_HEX;

static void test_dip1(void)
{
	uint8_t k[32], rd[64];
	char text[128];
	struct err e = ERR_INIT;

	hex_decode_exact(UNIT_KEY, k, 32, NULL);
	ok(dip1_report_data(k, "secp256k1", rd, text, sizeof(text), &e) == 0, "dip1 secp256k1");
	is_str(text, "dip1::secp256k1c-pk:A6t_JdVkVdMAocH3f1f20WGT6JzdntxcXimUtEax8zc9", "secp256k1 vector");
	ok(strlen(text) == 64 && memcmp(rd, text, 64) == 0, "report_data = text (exactly 64 bytes)");
	ok(dip1_report_data(k, "ed25519", rd, text, sizeof(text), &e) == 0, "dip1 ed25519");
	is_str(text, "dip1::ed25519-pk:5Pbre1Amf1hrp2V2bbfKlIfxpQb2pJAmrgmhxgVoG9s", "ed25519 vector");
	ok(rd[strlen(text)] == 0 && rd[63] == 0, "shorter string zero padded");
	ok(dip1_report_data(k, "rsa", rd, text, sizeof(text), &e) < 0, "unknown algorithm refused");
	is_str(e.msg, "Unsupported algorithm", "error text");
}

static void test_tappd_rd(void)
{
	uint8_t rd[64], want[64];
	const char *algo, *prefix;
	struct err e = ERR_INIT;
	uint8_t data64[64];

	ok(tappd_report_data((const uint8_t *)"abc", 3, "", "", rd, &algo, &prefix, &e) == 0,
	   "default algorithm");
	is_str(algo, "sha512", "default is sha512");
	is_str(prefix, "app-data", "default tag app-data");
	sha512("app-data:abc", 12, want);
	ok(memcmp(rd, want, 64) == 0, "sha512(app-data:abc)");
	ok(tappd_report_data((const uint8_t *)"abc", 3, "keccak256", "my", rd, &algo, &prefix, &e) == 0,
	   "keccak256");
	keccak256("my:abc", 6, want);
	ok(memcmp(rd, want, 32) == 0 && rd[32] == 0 && rd[63] == 0, "keccak256(my:abc) zero padded");
	is_str(prefix, "my", "custom tag echoed");
	const char *algs[] = {"sha256",   "sha384",    "sha3-256", "sha3-384",
			      "sha3-512", "keccak384", "keccak512"};
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		ok(tappd_report_data((const uint8_t *)"x", 1, algs[i], "", rd, &algo, &prefix, &e) == 0, "%s",
		   algs[i]);
	memset(data64, 7, sizeof(data64));
	ok(tappd_report_data(data64, 64, "raw", "ignored", rd, &algo, &prefix, &e) == 0, "raw 64 bytes");
	ok(memcmp(rd, data64, 64) == 0, "raw is not hashed");
	is_str(prefix, "", "raw echoes an empty prefix");
	ok(tappd_report_data(data64, 63, "raw", "", rd, &algo, &prefix, &e) < 0,
	   "raw needs exactly 64 bytes");
	ok(tappd_report_data(data64, 3, "md5", "", rd, &algo, &prefix, &e) < 0, "unknown hash refused");
}

static void test_appkeys(void)
{
	const char *json =
	    "{\"disk_crypt_key\":\"" UNIT_KEY_HEX "\",\"env_crypt_key\":\"\",\"k256_key\":\"" UNIT_KEY_HEX
	    "\",\"k256_signature\":\"\",\"gateway_app_id\":\"any\",\"ca_cert\":\"PEM\","
	    "\"key_provider\":{\"Kms\":{\"url\":\"https://kms\",\"pubkey\":\"0a0b\",\"tmp_ca_key\":\"K\","
	    "\"tmp_ca_cert\":\"C\"}}}";
	struct app_keys k, k2;
	struct err e = ERR_INIT;
	struct buf b = {0};

	ok(app_keys_parse(json, strlen(json), &k, &e) == 0, "parse Kms app keys: %s", e.msg);
	ok(k.provider == AKP_KMS && k.kms_pubkey_len == 2 && !k.has_env_crypt_key && !k.has_k256_signature,
	   "fields");
	is_str(app_key_provider_event_name(k.provider), "kms", "event name");
	ok(app_keys_render(&k, &b, &e) == 0, "render");
	ok(app_keys_parse((const char *)b.data, b.len, &k2, &e) == 0, "re-parse");
	ok(memcmp(k.k256_key, k2.k256_key, 32) == 0 && strcmp(k2.kms_url, "https://kms") == 0, "round trip");
	app_keys_free(&k);
	app_keys_free(&k2);
	buf_free(&b);
	ok(app_keys_parse("{\"k256_key\":\"zz\"}", 17, &k, &e) < 0, "bad hex refused");
	ok(strstr(e.msg, "k256_key") != NULL, "error names the field: %s", e.msg);
	ok(app_keys_parse("[]", 2, &k, &e) < 0, "non-object refused");
	const char *unk =
	    "{\"k256_key\":\"" UNIT_KEY_HEX "\",\"ca_cert\":\"x\",\"key_provider\":{\"Foo\":{}}}";
	ok(app_keys_parse(unk, strlen(unk), &k, &e) < 0, "unknown provider refused");
}

int main(void)
{
	test_dip1();
	test_tappd_rd();
	test_appkeys();
	return tap_done();
}
