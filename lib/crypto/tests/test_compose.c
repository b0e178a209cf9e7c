/*
 * test_compose.c — compose hash / app id / instance id of the simulator
 * fixture, MR_CONFIG_ID layouts, launch-token hash, and the normaliser
 * against outputs captured from Node's JSON.stringify over recursively
 * sorted objects (the JS SDK's getComposeHash).
 */
#include <stdlib.h>

#include "core/fileio.h"
#include "core/tap.h"
#include "crypto/compose.h"
#include "crypto/hash.h"
#include "test_util.h"

static const struct {
	const char *in, *want;
} norm_vectors[] = {
    {"{\"b\":1,\"a\":[3,1,{\"z\":null,\"y\":true}],\"c\":\"x/y\"}",
     "{\"a\":[3,1,{\"y\":true,\"z\":null}],\"b\":1,\"c\":\"x/y\"}"},
    {"{\"text\":\"\344\275\240\345\245\275\344\270\226\347\225\214\",\"n\":1.0,\"f\":0.1,\"g\":3.14,\"big\":"
     "1e21,"
     "\"big2\":123456789012345678901234,\"small\":1.5e-7,\"s2\":0.000001,\"neg\":-0,\"e\":"
     "12345678901234567890,"
     "\"x\":1e-7,\"m\":-2.5e+25}",
     "{\"big\":1e+21,\"big2\":1.2345678901234569e+23,\"e\":12345678901234567000,\"f\":0.1,\"g\":3.14,\"m\":-"
     "2.5e+"
     "25,\"n\":1,\"neg\":0,\"s2\":0.000001,\"small\":1.5e-7,\"text\":"
     "\"\344\275\240\345\245\275\344\270\226\347\225"
     "\214\",\"x\":1e-7}"},
    {"{\"ctl\":\"a\\u0001b\\u001fc\\u007f\\b\\f\\n\\r\\t\\\"\\\\\",\"emoji\":\"\360\237\230\200\",\"key\":"
     "\"v\\u0000\"}",
     "{\"ctl\":\"a\\u0001b\\u001fc\177\\b\\f\\n\\r\\t\\\"\\\\\",\"emoji\":\"\360\237\230\200\",\"key\":"
     "\"v\\u0000\"}"},
    {"{\"b\":1,\"10\":2,\"2\":3,\"a\":4,\"01\":5,\"4294967295\":6,\"4294967294\":7,\"\\uffff\":8,"
     "\"\360\237\230\200\":"
     "9,\"\303\251\":10}",
     "{\"2\":3,\"10\":2,\"4294967294\":7,\"01\":5,\"4294967295\":6,\"a\":4,\"b\":1,\"\303\251\":10,"
     "\"\360\237\230"
     "\200\":9,\"\357\277\277\":8}"},
    {"{\"manifest_version\":2,\"name\":\"x\",\"runner\":\"docker-compose\",\"docker_compose_file\":"
     "\"services: "
     "{}\",\"bash_script\":\"\",\"pre_launch_script\":\"\",\"kms_enabled\":true}",
     "{\"bash_script\":\"\",\"docker_compose_file\":\"services: "
     "{}\",\"kms_enabled\":true,\"manifest_version\":2,"
     "\"name\":\"x\",\"pre_launch_script\":\"\",\"runner\":\"docker-compose\"}"},
};

static void test_normalize(const char *testdata)
{
	struct err e = ERR_INIT;

	for (size_t i = 0; i < ARRAY_SIZE(norm_vectors); i++) {
		struct buf out = BUF_INIT;

		ok(compose_normalize(norm_vectors[i].in, strlen(norm_vectors[i].in), 0, &out, &e) == 0,
		   "normalize %zu", i);
		is_str((char *)out.data, norm_vectors[i].want, "matches JSON.stringify(sorted) vector %zu",
		       i);
		buf_free(&out);
	}

	struct buf out = BUF_INIT;
	const char *in = norm_vectors[4].in;
	ok(compose_normalize(in, strlen(in), COMPOSE_NORM_DROP_UNUSED, &out, &e) == 0,
	   "normalize with drops");
	is_str((char *)out.data,
	       "{\"docker_compose_file\":\"services: "
	       "{}\",\"kms_enabled\":true,\"manifest_version\":2,\"name\":\"x\","
	       "\"runner\":\"docker-compose\"}",
	       "compose runner drops bash_script and empty pre_launch_script");
	buf_reset(&out);
	const char *bash = "{\"runner\":\"bash\",\"docker_compose_file\":\"x\",\"bash_script\":\"echo\","
			   "\"pre_launch_script\":\"p\"}";
	ok(compose_normalize(bash, strlen(bash), COMPOSE_NORM_DROP_UNUSED, &out, &e) == 0, "bash runner");
	is_str((char *)out.data, "{\"bash_script\":\"echo\",\"pre_launch_script\":\"p\",\"runner\":\"bash\"}",
	       "bash runner drops docker_compose_file, keeps non-empty pre_launch_script");
	buf_reset(&out);

	/* Simulator fixture: hash of the normalised form equals Node's. */
	char path[4096];
	uint8_t *raw = NULL, h[32];
	size_t len = 0;
	snprintf(path, sizeof(path), "%s/dstack/simulator-app-compose.json", testdata);
	if (ok(file_read_all(path, 1 << 20, &raw, &len, &e) == 0, "read simulator compose")) {
		compose_hash(raw, len, h);
		is_hex(h, 32, "65b4e574f16973956908b6359920593c3b7d9f36f38e81a47f996a0c0d5435bb",
		       "raw compose hash");
		uint8_t app_id[20];
		compose_default_app_id(h, app_id);
		is_hex(app_id, 20, "65b4e574f16973956908b6359920593c3b7d9f36", "default app id");
		ok(compose_normalize(raw, len, 0, &out, &e) == 0, "normalize fixture");
		sha256(out.data, out.len, h);
		is_hex(h, 32, "84d4e7a031ef7d048d1492ca00b754c32513934e53f62b2dcf84b3e440656f61",
		       "normalised fixture hash = JS SDK getComposeHash");
		free(raw);
	}
	buf_free(&out);

	/* Bad inputs. */
	const char *bad[] = {"", "[]", "\"s\"", "{", "{\"a\":1}x", "{\"a\":\"\\ud800\"}", "{\"a\":1e999}"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct buf o = BUF_INIT;
		ok(compose_normalize(bad[i], strlen(bad[i]), 0, &o, &e) < 0, "rejects bad input %zu: %s", i,
		   e.msg);
		buf_free(&o);
	}
	/* jansson cannot hold NUL inside object keys: a clean error. */
	const char *nulkey = "{\"a\\u0000b\":1}";
	struct buf ok_buf = BUF_INIT;
	ok(compose_normalize(nulkey, strlen(nulkey), 0, &ok_buf, &e) < 0, "NUL in key rejected: %s", e.msg);
	buf_free(&ok_buf);
	char deep[3000];
	size_t n = 0;
	for (int i = 0; i < 1000; i++)
		deep[n++] = '[';
	for (int i = 0; i < 1000; i++)
		deep[n++] = ']';
	memcpy(deep, "{\"a\":", 5);
	struct buf o = BUF_INIT;
	ok(compose_normalize(deep, n, 0, &o, &e) < 0, "deep nesting is an error, not a crash");
	buf_free(&o);
}

static void test_ids(void)
{
	uint8_t seed[20], app_id[20], out[20], h[32], cid[MR_CONFIG_ID_LEN];

	memset(seed, 0x11, 20);
	memset(app_id, 0x22, 20);
	compose_instance_id(seed, 20, app_id, NULL, 0, out);
	is_hex(out, 20, "560a7517314907699bf671b50a7066504fe3f04a",
	       "instance_id = SHA-256(seed||app_id)[..20]");

	launch_token_hash("unit-test-launch-token-0000000001", 33, h);
	is_hex(h, 32, "28faa1319055d733ad9651f5ab7689c15b04609846bcd27b3c5bc8df6246f5a3",
	       "launch_token_hash vector");

	unhex("65b4e574f16973956908b6359920593c3b7d9f36f38e81a47f996a0c0d5435bb", h, 32);
	mr_config_id_v1(h, cid);
	is_hex(cid, 48,
	       "0165b4e574f16973956908b6359920593c3b7d9f36f38e81a47f996a0c0d5435bb000000000000000000000000000"
	       "000",
	       "MR_CONFIG_ID v1 = 01 || compose_hash || 15 zero bytes");

	const char *doc =
	    "{\"app_id\":\"65b4e574f16973956908b6359920593c3b7d9f36\",\"compose_hash\":"
	    "\"65b4e574f16973956908b6359920593c3b7d9f36f38e81a47f996a0c0d5435bb\",\"key_provider\":\"kms\","
	    "\"key_provider_id\":\"aa\",\"version\":3}";
	mr_config_id_v3(doc, strlen(doc), cid);
	is_hex(cid, 48,
	       "03cd5b6bc3ffce2b77f8dad1e4c979870220332a39a2397677eed64d92a4851003000000000000000000000000000"
	       "000",
	       "MR_CONFIG_ID v3 = 03 || SHA-256(tag || 00 || doc) || padding");

	uint8_t kp_id[3] = {1, 2, 3}, want[32], pre[32 + 20 + 1 + 3];
	memcpy(pre, h, 32);
	memcpy(pre + 32, app_id, 20);
	pre[52] = 2;
	memcpy(pre + 53, kp_id, 3);
	keccak256(pre, sizeof(pre), want);
	mr_config_id_v2(h, app_id, KP_KMS, kp_id, 3, cid);
	ok(cid[0] == 2 && memcmp(cid + 1, want, 32) == 0,
	   "MR_CONFIG_ID v2 = 02 || keccak(hash||app_id||2||kp_id)");
	uint8_t zeros[15] = {0};
	ok(memcmp(cid + 33, zeros, 15) == 0, "v2 zero padded");

	enum key_provider_kind k;
	ok(key_provider_kind_parse("none", &k) == 0 && k == KP_NONE, "none=0");
	ok(key_provider_kind_parse("local", &k) == 0 && k == KP_LOCAL, "local=1");
	ok(key_provider_kind_parse("kms", &k) == 0 && k == KP_KMS, "kms=2");
	ok(key_provider_kind_parse("tpm", &k) == 0 && k == KP_TPM, "tpm=3");
	ok(key_provider_kind_parse("sgx", &k) < 0, "unknown provider");
}

int main(int argc, char **argv)
{
	test_normalize(argc > 1 ? argv[1] : "../shared/testdata");
	test_ids();
	return tap_done();
}
