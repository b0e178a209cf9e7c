/*
 * compose_normalize.c — fuzzes the app-compose normaliser (JSON parse plus
 * the JavaScript-compatible serialiser) and the allowed_envs reader.
 */
#include <stddef.h>
#include <stdint.h>

#include "crypto/compose.h"
#include "crypto/envlist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf out = BUF_INIT;
	struct err e = ERR_INIT;
	char **allowed = NULL;
	size_t n = 0;

	compose_normalize(data, size, size % 2 ? COMPOSE_NORM_DROP_UNUSED : 0, &out, &e);
	buf_free(&out);
	if (env_allowed_from_compose(data, size, &allowed, &n, &e) == 0)
		env_allowed_free(allowed, n);
	return 0;
}
