/*
 * env_plaintext.c — fuzzes what a CVM does with a decrypted env plaintext
 * (parse, allow-list filter, limits, both renderings) and the client-side
 * env-file parser. Any input must give a result or a clean error.
 */
#include <stddef.h>
#include <stdint.h>

#include "crypto/envlist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const allowed[] = {"A", "B", "KEY", "_x1"};
	struct env_list l = ENV_LIST_INIT;
	struct buf out = BUF_INIT;
	struct err e = ERR_INIT;

	if (env_plaintext_accept(data, size, size % 2 ? allowed : NULL, 4, &l, &e) == 0) {
		env_render_dotenv(&l, &out);
		env_render_json(&l, &out, &e);
	}
	env_list_free(&l);
	if (env_file_parse((const char *)data, size, &l, &e) == 0)
		env_list_validate(&l, &e);
	env_list_free(&l);
	buf_free(&out);
	return 0;
}
