/*
 * hex.c — see hex.h.
 */
#include "core/hex.h"

#include <stdlib.h>
#include <string.h>

static int hex_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void hex_encode(const void *data, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	const uint8_t *p = data;

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * len] = '\0';
}

char *hex_encode_alloc(const void *data, size_t len)
{
	char *s = malloc(2 * len + 1);

	if (!s)
		abort();
	hex_encode(data, len, s);
	return s;
}

static const char *strip_0x(const char *s, size_t *slen)
{
	if (*slen >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		*slen -= 2;
		return s + 2;
	}
	return s;
}

static int hex_decode_into(const char *s, size_t slen, uint8_t *out, struct err *e)
{
	for (size_t i = 0; i < slen / 2; i++) {
		int hi = hex_nibble(s[2 * i]), lo = hex_nibble(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return err_set(e, "invalid hex character at offset %zu", 2 * i + (hi < 0 ? 0 : 1));
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int hex_decode_alloc(const char *s, size_t slen, uint8_t **out, size_t *out_len, struct err *e)
{
	uint8_t *p;

	s = strip_0x(s, &slen);
	if (slen % 2)
		return err_set(e, "invalid hex: odd length %zu", slen);
	p = malloc(slen / 2 + 1);
	if (!p)
		abort();
	if (hex_decode_into(s, slen, p, e) < 0) {
		free(p);
		return -1;
	}
	*out = p;
	*out_len = slen / 2;
	return 0;
}

int hex_decode_exact(const char *s, void *out, size_t len, struct err *e)
{
	size_t slen = strlen(s);

	s = strip_0x(s, &slen);
	if (slen != 2 * len)
		return err_set(e, "invalid hex: expected %zu bytes, got %zu hex digits", len, slen);
	return hex_decode_into(s, slen, out, e);
}
