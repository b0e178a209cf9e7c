/*
 * fuzz/guest_appkeys.c — libFuzzer harness for the guest's .appkeys.json
 * reader (guest/appkeys_file.c). Whatever parses must render and parse
 * again to the same keys.
 */
#include <stdlib.h>
#include <string.h>

#include "../guest/appkeys_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct app_keys k, k2;
	struct buf out = {0};

	if (app_keys_parse((const char *)data, size, &k, NULL) < 0)
		return 0;
	if (app_keys_render(&k, &out, NULL) == 0) {
		if (app_keys_parse((const char *)out.data, out.len, &k2, NULL) < 0)
			abort(); /* our own output must parse */
		if (memcmp(k.k256_key, k2.k256_key, 32) != 0 || k.provider != k2.provider ||
		    k.has_k256_signature != k2.has_k256_signature || k.kms_pubkey_len != k2.kms_pubkey_len)
			abort();
		app_keys_free(&k2);
	}
	buf_free(&out);
	app_keys_free(&k);
	return 0;
}
