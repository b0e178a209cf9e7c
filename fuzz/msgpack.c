/*
 * fuzz/msgpack.c — libFuzzer harness for the MessagePack cursor decoder:
 * skips whole values (exercising the depth and count limits), then reads
 * the same input through the typed readers.
 */
#include <stdlib.h>

#include "codec/msgpack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mp_reader r;
	struct mp_obj o;
	uint8_t *bytes;
	size_t n;

	mp_reader_init(&r, data, size);
	while (mp_remaining(&r) && mp_skip(&r, NULL) == 0)
		;
	if (r.pos > r.len)
		abort();

	mp_reader_init(&r, data, size);
	for (int i = 0; i < 256 && mp_remaining(&r); i++) {
		size_t start = r.pos;

		if (mp_read_byte_vec(&r, &bytes, &n, NULL) == 0) {
			free(bytes);
			continue;
		}
		if (r.pos != start)
			abort(); /* failed reads leave the cursor in place */
		if (mp_read(&r, &o, NULL) < 0)
			break;
	}
	return 0;
}
