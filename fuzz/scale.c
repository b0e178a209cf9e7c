/*
 * fuzz/scale.c — libFuzzer harness for the SCALE cursor decoder. Interprets
 * the first input byte as a little program of reads (compact, ints, bool,
 * String, Vec<u8>, Option, length prefixes) applied to the rest, so every
 * decoder entry point sees hostile lengths and truncation. Re-encodes what
 * decoded and checks the canonical round trip.
 */
#include <stdlib.h>
#include <string.h>

#include "codec/scale.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scale_reader r;
	uint8_t prog;

	if (size < 1)
		return 0;
	prog = data[0];
	scale_reader_init(&r, data + 1, size - 1);
	for (int step = 0; step < 64 && scale_remaining(&r); step++) {
		size_t start = r.pos;
		uint64_t v;
		char *s;
		uint8_t *bytes;
		size_t n;
		bool flag;
		uint32_t u32;
		int rc = 0;

		switch ((prog + step) % 7) {
		case 0:
			rc = scale_read_compact(&r, &v, NULL);
			if (rc == 0) {
				struct buf b = BUF_INIT;

				scale_put_compact(&b, v);
				if (b.len != r.pos - start || memcmp(b.data, r.data + start, b.len) != 0)
					abort(); /* canonical form must round-trip exactly */
				buf_free(&b);
			}
			break;
		case 1:
			rc = scale_read_str(&r, &s, &n, NULL);
			if (rc == 0)
				free(s);
			break;
		case 2:
			rc = scale_read_bytes_alloc(&r, &bytes, &n, NULL);
			if (rc == 0)
				free(bytes);
			break;
		case 3:
			rc = scale_read_bool(&r, &flag, NULL);
			break;
		case 4:
			rc = scale_read_option(&r, &flag, NULL);
			break;
		case 5:
			rc = scale_read_u32(&r, &u32, NULL);
			break;
		default:
			rc = scale_read_len(&r, 1 + (prog & 7), &n, NULL);
			break;
		}
		if (rc < 0) {
			if (r.pos > r.len)
				abort();
			break;
		}
	}
	return 0;
}
