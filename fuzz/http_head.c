/*
 * http_head.c — libFuzzer harness for the HTTP/1.1 request head parser that
 * every daemon (KMS, gateway RPC, VMM, guest agent) runs on bytes from
 * unauthenticated clients. Checks that a successful parse leaves pointers
 * inside the buffer and strings that obey the grammar.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/head.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_inside(const char *p, const char *buf, size_t size)
{
	if (p && (p < buf || p > buf + size))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_head h;
	size_t clen;
	char *buf;

	if (size > 65536)
		return 0;
	buf = malloc(size + 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	memset(&h, 0, sizeof(h));
	if (http_head_parse(&h, buf) == 0) {
		check_inside(h.method, buf, size);
		check_inside(h.path, buf, size);
		check_inside(h.query, buf, size);
		if (h.path[0] != '/' || strchr(h.path, ' ') || (h.minor != 0 && h.minor != 1) ||
		    h.n_hdrs > HTTP_MAX_HEADERS)
			abort();
		for (size_t i = 0; i < h.n_hdrs; i++) {
			check_inside(h.hdrs[i].name, buf, size);
			check_inside(h.hdrs[i].value, buf, size);
			if (!*h.hdrs[i].name || strchr(h.hdrs[i].name, ':') || strchr(h.hdrs[i].value, '\n'))
				abort();
		}
		(void)http_head_content_length(&h, &clen);
		(void)http_header_has_token(h.n_hdrs ? h.hdrs[0].value : NULL, "close");
	}
	free(buf);
	return 0;
}
