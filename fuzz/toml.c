/*
 * fuzz/toml.c — libFuzzer harness for the TOML parser (lib/toml).
 *
 * Any byte string must either parse or fail with an error message; never
 * crash, hang, leak or read out of bounds. A document that parses is also
 * pushed through both JSON conversions, which walk the whole tree.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "toml/toml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct err e = ERR_INIT;
	struct toml_node *doc = toml_parse((const char *)data, size, "fuzz", &e);

	if (!doc) {
		if (!strstr(e.msg, "fuzz: "))
			__builtin_trap(); /* every failure names the source */
		return 0;
	}
	json_decref(toml_to_json(doc));
	json_decref(toml_to_tagged_json(doc));
	toml_free(doc);
	return 0;
}
