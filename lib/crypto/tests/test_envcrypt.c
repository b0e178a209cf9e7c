/*
 * test_envcrypt.c — the encrypted-env envelope (reference vector, property
 * round trip, single-byte tampering, low-order keys) and the env-list rules
 * and renderings of guest.md §2.4.
 */
#include <stdlib.h>

#include <openssl/rand.h>

#include "core/mem.h"
#include "core/tap.h"
#include "crypto/appkeys.h"
#include "crypto/ecx.h"
#include "crypto/envcrypt.h"
#include "crypto/envlist.h"
#include "test_util.h"

static void test_reference_vector(void)
{
	uint8_t secret[32], blob[83], *pt = NULL;
	size_t pt_len = 0;
	struct err e = ERR_INIT;

	unhex("7c282bf94b35dc47801dc953bfa0896fc2bd313381d3e8eca4e42f6536d2a96f", secret, 32);
	unhex("0bd18749612f4c8b9dd583c7d6a646b90abd34e3c731a7708d0caf9039095641e1f0948e775f0b7351788db7f246d5"
	      "180695"
	      "4626dcccb6a60d64665ca3715c6bef75616cab476d27bba04080361200d6a58cec",
	      blob, sizeof(blob));
	ok(env_envelope_decrypt(secret, blob, sizeof(blob), &pt, &pt_len, &e) == 0,
	   "reference envelope decrypts: %s", e.msg);
	is_str((char *)pt, "[{\"key\":\"\",\"value\":\"\"}]", "reference plaintext (dstack-util crypto.rs)");
	is_int(pt_len, 23, "plaintext length");
	free(pt);

	/* Too-short envelopes. */
	static const size_t lens[] = {0, 31, 43, 44, 59};
	for (size_t i = 0; i < ARRAY_SIZE(lens); i++)
		ok(env_envelope_decrypt(secret, blob, lens[i], &pt, &pt_len, &e) < 0 && !pt,
		   "%zu-byte envelope rejected", lens[i]);
}

static void random_env(struct env_list *l, unsigned seed)
{
	static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_0123456789";
	srand(seed);
	int n = rand() % 20;
	for (int i = 0; i < n; i++) {
		char key[33], value[300];
		int kl = 1 + rand() % 32, vl = rand() % 300;

		for (int j = 0; j < kl; j++)
			key[j] = alpha[rand() % (j ? 63 : 53)];
		key[kl] = 0;
		for (int j = 0; j < vl; j++)
			value[j] = (char)(1 + rand() % 126); /* any ASCII but NUL */
		value[vl] = 0;
		env_list_add(l, key, value);
	}
}

static bool lists_equal(const struct env_list *a, const struct env_list *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->items[i].key, b->items[i].key) || strcmp(a->items[i].value, b->items[i].value))
			return false;
	return true;
}

static void test_round_trip_property(void)
{
	int failures = 0, tamper_accepted = 0, tampered = 0;
	struct err e = ERR_INIT;

	for (unsigned iter = 0; iter < 200; iter++) {
		uint8_t secret[32], pub[32], *pt = NULL;
		size_t pt_len;
		struct env_list in = ENV_LIST_INIT, out = ENV_LIST_INIT;
		struct buf plain = BUF_INIT, env = BUF_INIT;

		RAND_bytes(secret, 32);
		random_env(&in, iter);
		if (x25519_public(secret, pub, &e) < 0 || env_plaintext_build(&in, &plain, &e) < 0 ||
		    env_envelope_encrypt(pub, plain.data, plain.len, &env, &e) < 0 ||
		    env_envelope_decrypt(secret, env.data, env.len, &pt, &pt_len, &e) < 0 ||
		    env_plaintext_parse(pt, pt_len, &out, &e) < 0 || !lists_equal(&in, &out)) {
			failures++;
			diag("iteration %u: %s", iter, e.msg);
		}
		free(pt);
		/* Flip one random byte anywhere in the envelope. */
		if (env.len) {
			size_t pos = (size_t)rand() % env.len;

			env.data[pos] ^= (uint8_t)(1 + rand() % 255);
			tampered++;
			if (env_envelope_decrypt(secret, env.data, env.len, &pt, &pt_len, &e) == 0) {
				tamper_accepted++;
				free(pt);
			}
		}
		env_list_free(&in);
		env_list_free(&out);
		buf_free_secure(&plain);
		buf_free(&env);
	}
	is_int(failures, 0, "200 random key pairs / env lists round-trip");
	ok(tampered > 0 && tamper_accepted == 0, "random single-byte tampering rejected (%d tries)",
	   tampered);
}

static void test_every_byte_tampered(void)
{
	uint8_t secret[32], pub[32], *pt = NULL;
	size_t pt_len, accepted = 0;
	struct buf env = BUF_INIT;
	struct err e = ERR_INIT;

	RAND_bytes(secret, 32);
	x25519_public(secret, pub, &e);
	ok(env_envelope_encrypt(pub, "{\"env\":[]}", 10, &env, &e) == 0, "encrypt");
	is_int(env.len, 10 + ENV_ENVELOPE_OVERHEAD, "envelope = 32 + 12 + ct + 16");
	for (size_t i = 0; i < env.len; i++)
		for (int bit = 0; bit < 8; bit++) {
			env.data[i] ^= (uint8_t)(1 << bit);
			if (env_envelope_decrypt(secret, env.data, env.len, &pt, &pt_len, &e) == 0) {
				accepted++;
				free(pt);
			}
			env.data[i] ^= (uint8_t)(1 << bit);
		}
	is_int(accepted, 0, "every single-bit flip of every byte is rejected");
	ok(env_envelope_decrypt(secret, env.data, env.len, &pt, &pt_len, &e) == 0 && pt_len == 10,
	   "intact decrypts");
	free(pt);
	ok(env_envelope_decrypt(secret, env.data, env.len - 1, &pt, &pt_len, &e) < 0, "truncated rejected");

	/* Low-order ephemeral key: the all-zero shared secret is refused. */
	memset(env.data, 0, 32);
	e.msg[0] = 0;
	ok(env_envelope_decrypt(secret, env.data, env.len, &pt, &pt_len, &e) < 0 && strstr(e.msg, "X25519"),
	   "all-zero eph key rejected: %s", e.msg);
	/* Non-canonical encodings of an ephemeral key (u >= p). */
	memset(env.data, 0xff, 32);
	env.data[31] = 0x7f;
	env.data[0] = 0xed + 9; /* p + 9, same point as u = 9 */
	ok(env_envelope_decrypt(secret, env.data, env.len, &pt, &pt_len, &e) < 0 &&
	       strstr(e.msg, "canonical"),
	   "u >= p rejected: %s", e.msg);
	uint8_t zero_pub[32] = {0}, ignored[32];
	struct buf env2 = BUF_INIT;
	ok(env_envelope_encrypt(zero_pub, "x", 1, &env2, &e) < 0, "encrypting to a low-order key refused");
	ok(x25519_shared(secret, zero_pub, ignored, &e) < 0, "x25519_shared refuses zero result");
	buf_free(&env2);
	buf_free(&env);
}

static void test_kms_key_round_trip(void)
{
	/* Encrypt to the public key the KMS would publish for an app, decrypt
	 * with the env_crypt_key the KMS would hand the CVM. */
	uint8_t root[32], app_id[20], env_key[32], pub[32], *pt = NULL;
	size_t pt_len;
	struct buf env = BUF_INIT;
	struct err e = ERR_INIT;

	unhex("f57527cea4ab7ffb49af99b158cdc0e3ec06398f528349ea236b7d2afe19cec1", root, 32);
	memset(app_id, 0x11, 20);
	ok(kms_env_crypt_key(root, app_id, env_key, &e) == 0 && x25519_public(env_key, pub, &e) == 0,
	   "app env key");
	is_hex(pub, 32, "93cf259f68b24775d54290a8ea57cf93efc994d3ff28a7b8ba7a39e9f512302f",
	       "published env pubkey");
	ok(env_envelope_encrypt(pub, "{\"env\":[{\"key\":\"A\",\"value\":\"1\"}]}", 33, &env, &e) == 0 &&
	       env_envelope_decrypt(env_key, env.data, env.len, &pt, &pt_len, &e) == 0,
	   "decrypts with the unclamped env_crypt_key");
	is_str((char *)pt, "{\"env\":[{\"key\":\"A\",\"value\":\"1\"}]}", "plaintext");
	free(pt);
	buf_free(&env);
}

static void test_rules(void)
{
	struct env_list l = ENV_LIST_INIT;
	struct err e = ERR_INIT;
	const char *allowed[] = {"A", "B", "C", "D", "E",    "F",       "G",
				 "H", "I", "J", "K", "KEY1", "bad-key", "EMPTY"};

	ok(env_key_valid("_a1") && env_key_valid("A") && env_key_valid("abc_DEF_123"), "valid keys");
	ok(!env_key_valid("") && !env_key_valid("1A") && !env_key_valid("A-B") && !env_key_valid("A B") &&
	       !env_key_valid("É"),
	   "invalid keys");
	char longkey[300];
	memset(longkey, 'A', 256);
	longkey[256] = 0;
	ok(!env_key_valid(longkey), "256-char key invalid");
	longkey[255] = 0;
	ok(env_key_valid(longkey), "255-char key valid");

	/* Filter drops silently; later duplicate wins; sorted output. */
	const char *json =
	    "{\"env\":[{\"key\":\"B\",\"value\":\"two\"},{\"key\":\"NOT_ALLOWED\",\"value\":\"x\"},"
	    "{\"key\":\"A\",\"value\":\"one\"},{\"key\":\"B\",\"value\":\"second b\"},"
	    "{\"key\":\"C\",\"value\":\"a$b`c\\\"d\\ne'f\"},{\"key\":\"D\",\"value\":\"x|y\"},"
	    "{\"key\":\"E\",\"value\":\"\"},{\"key\":\"F\",\"value\":\"tab\\there\"},"
	    "{\"key\":\"G\",\"value\":\"back\\\\slash\"},{\"key\":\"H\",\"value\":\"(a)<b>&;\"},"
	    "{\"key\":\"I\",\"value\":\"url=https://x/y?z#w\"},{\"key\":\"J\",\"value\":\"ünï\"}]}";
	ok(env_plaintext_accept(json, strlen(json), allowed, ARRAY_SIZE(allowed), &l, &e) == 0, "accept: %s",
	   e.msg);
	struct buf out = BUF_INIT;
	env_render_dotenv(&l, &out);
	is_str((char *)out.data,
	       "A=one\n"
	       "B=\"second b\"\n"
	       "C=\"a\\$b\\`c\\\"d\\ne'f\"\n"
	       "D=\"x|y\"\n"
	       "E=\n"
	       "F=\"tab\there\"\n"
	       "G=\"back\\slash\"\n"
	       "H=\"(a)<b>&;\"\n"
	       "I=url=https://x/y?z#w\n"
	       "J=ünï\n",
	       ".decrypted-env rendering");
	buf_reset(&out);
	ok(env_render_json(&l, &out, &e) == 0, "json render");
	is_str((char *)out.data,
	       "{\"A\":\"one\",\"B\":\"second "
	       "b\",\"C\":\"a$b`c\\\"d\\ne'f\",\"D\":\"x|y\",\"E\":\"\",\"F\":\"tab\\there\","
	       "\"G\":\"back\\\\slash\",\"H\":\"(a)<b>&;\",\"I\":\"url=https://x/y?z#w\",\"J\":\"ünï\"}",
	       ".decrypted-env.json rendering");
	buf_free(&out);
	env_list_free(&l);

	/* Errors: invalid allowed key, oversize value; not-allowed invalid
	 * key is dropped rather than an error. */
	const char *bad = "{\"env\":[{\"key\":\"bad-key\",\"value\":\"x\"}]}";
	ok(env_plaintext_accept(bad, strlen(bad), allowed, ARRAY_SIZE(allowed), &l, &e) < 0 &&
	       strstr(e.msg, "bad-key"),
	   "invalid allowed key: %s", e.msg);
	ok(env_plaintext_accept(bad, strlen(bad), allowed, 1, &l, &e) == 0 && l.n == 0,
	   "invalid unlisted key dropped");
	env_list_free(&l);

	char *big = malloc(ENV_VALUE_MAX + 64);
	int n = snprintf(big, 64, "{\"env\":[{\"key\":\"KEY1\",\"value\":\"");
	memset(big + n, 's', ENV_VALUE_MAX + 1);
	strcpy(big + n + ENV_VALUE_MAX + 1, "\"}]}");
	e.msg[0] = 0;
	ok(env_plaintext_accept(big, strlen(big), allowed, ARRAY_SIZE(allowed), &l, &e) < 0 &&
	       strstr(e.msg, "KEY1") && !strstr(e.msg, "sss"),
	   "value > 128 KiB rejected, message names key not value: %s", e.msg);
	free(big);

	/* Too many items and too large in total. */
	struct env_list many = ENV_LIST_INIT;
	for (int i = 0; i < ENV_ITEMS_MAX + 1; i++)
		env_list_add(&many, "A", "v");
	ok(env_list_validate(&many, &e) < 0, "1025 items rejected");
	env_list_free(&many);
	char *v = malloc(ENV_VALUE_MAX + 1);
	memset(v, 'v', ENV_VALUE_MAX);
	v[ENV_VALUE_MAX] = 0;
	for (int i = 0; i < 8; i++)
		env_list_add(&many, "A", v);
	ok(env_list_validate(&many, &e) < 0 && strstr(e.msg, "too large"), "8 x 128 KiB > 1 MiB rejected");
	env_list_free(&many);
	env_list_add(&many, "A", v);
	ok(env_list_validate(&many, &e) == 0, "one 128 KiB value accepted");
	env_list_free(&many);
	free(v);

	/* Malformed plaintexts. */
	const char *malformed[] = {"",
				   "[]",
				   "{\"env\":{}}",
				   "{\"env\":[{\"key\":1,\"value\":\"x\"}]}",
				   "{\"env\":[{\"key\":\"A\"}]}",
				   "{\"env\":[\"A=1\"]}",
				   "{\"env\":[]"};
	for (size_t i = 0; i < ARRAY_SIZE(malformed); i++) {
		ok(env_plaintext_accept(malformed[i], strlen(malformed[i]), allowed, 1, &l, &e) < 0,
		   "malformed plaintext %zu rejected: %s", i, e.msg);
		env_list_free(&l);
	}
}

static void test_env_file(void)
{
	struct env_list l = ENV_LIST_INIT;
	struct err e = ERR_INIT;
	const char *text =
	    "# comment\n\nFOO=bar\nexport  SPACED = hello world \r\nQ=\"quoted # value\"\nS='single'\n"
	    "EQ=a=b\nEMPTY=\nURL=http://x/?a=1";

	ok(env_file_parse(text, strlen(text), &l, &e) == 0, "env file parses: %s", e.msg);
	is_int(l.n, 7, "7 variables");
	if (l.n == 7) {
		is_str(l.items[0].key, "FOO", "FOO");
		is_str(l.items[1].key, "SPACED", "export prefix + spaces");
		is_str(l.items[1].value, "hello world", "value trimmed");
		is_str(l.items[2].value, "quoted # value", "double quotes removed");
		is_str(l.items[3].value, "single", "single quotes removed");
		is_str(l.items[4].value, "a=b", "split at first =");
		is_str(l.items[5].value, "", "empty value");
		is_str(l.items[6].value, "http://x/?a=1", "last line without newline");
	}
	env_list_free(&l);
	ok(env_file_parse("NOEQUALS\n", 9, &l, &e) < 0 && strstr(e.msg, "line 1"), "missing = : %s", e.msg);
	ok(env_file_parse("A=1\n1BAD=x\n", 11, &l, &e) < 0 && strstr(e.msg, "line 2") && !strstr(e.msg, "x"),
	   "bad name: %s", e.msg);
}

int main(void)
{
	test_reference_vector();
	test_round_trip_property();
	test_every_byte_tampered();
	test_kms_key_round_trip();
	test_rules();
	test_env_file();
	return tap_done();
}
