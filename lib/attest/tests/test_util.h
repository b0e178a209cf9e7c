/*
 * test_util.h — fixture loading shared by the attest tests.
 */
#ifndef DSTACK_ATTEST_TEST_UTIL_H
#define DSTACK_ATTEST_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>

#include "core/fileio.h"

static inline uint8_t *load_fixture(const char *dir, const char *name, size_t *len)
{
	char path[1024];
	uint8_t *data = NULL;
	struct err e = ERR_INIT;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (file_read_all(path, 16 << 20, &data, len, &e) < 0) {
		printf("Bail out! %s\n", e.msg);
		exit(1);
	}
	return data;
}

#endif
