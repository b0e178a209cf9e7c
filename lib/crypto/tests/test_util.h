/*
 * test_util.h — helpers shared by the crypto unit tests: hex literals to
 * bytes, and loading the reference simulator's appkeys.json.
 */
#ifndef DSTACK_CRYPTO_TEST_UTIL_H
#define DSTACK_CRYPTO_TEST_UTIL_H

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/cleanup.h"
#include "core/hex.h"

static inline void unhex(const char *s, void *out, size_t len)
{
	if (hex_decode_exact(s, out, len, NULL) < 0) {
		fprintf(stderr, "bad hex literal in test: %s\n", s);
		abort();
	}
}

/* Read a hex field of the simulator appkeys.json (argv[1] = testdata dir). */
static inline int appkeys_field(const char *testdata, const char *field, void *out, size_t len)
{
	char path[4096];
	json_error_t jerr;

	snprintf(path, sizeof(path), "%s/dstack/simulator-appkeys.json", testdata);
	json_t *root = json_load_file(path, 0, &jerr);
	if (!root)
		return -1;
	const char *v = json_string_value(json_object_get(root, field));
	int rc = v ? hex_decode_exact(v, out, len, NULL) : -1;
	json_decref(root);
	return rc;
}

#endif
