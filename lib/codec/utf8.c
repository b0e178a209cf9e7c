/*
 * utf8.c — see utf8.h. Follows the well-formed byte sequence table of the
 * Unicode standard (Table 3-7) directly.
 */
#include "codec/utf8.h"

bool utf8_valid(const void *s, size_t len)
{
	const uint8_t *p = s;
	size_t i = 0;

	while (i < len) {
		uint8_t c = p[i];
		size_t n;
		uint8_t lo = 0x80, hi = 0xbf;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			if (c == 0xe0)
				lo = 0xa0;
			else if (c == 0xed)
				hi = 0x9f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			if (c == 0xf0)
				lo = 0x90;
			else if (c == 0xf4)
				hi = 0x8f;
		} else {
			return false;
		}
		if (len - i - 1 < n)
			return false;
		if (p[i + 1] < lo || p[i + 1] > hi)
			return false;
		for (size_t k = 2; k <= n; k++)
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
		i += n + 1;
	}
	return true;
}

uint32_t utf8_next(const uint8_t *s, size_t *pos)
{
	uint8_t c = s[*pos];
	uint32_t cp;
	size_t n;

	if (c < 0x80) {
		(*pos)++;
		return c;
	}
	if (c < 0xe0) {
		cp = c & 0x1f;
		n = 1;
	} else if (c < 0xf0) {
		cp = c & 0x0f;
		n = 2;
	} else {
		cp = c & 0x07;
		n = 3;
	}
	for (size_t k = 1; k <= n; k++)
		cp = cp << 6 | (s[*pos + k] & 0x3f);
	*pos += n + 1;
	return cp;
}
