/*
 * base64.c — see base64.h. One table-driven encoder and one decoder, each
 * parameterised by alphabet and padding rule.
 */
#include "codec/base64.h"

#include <stdlib.h>
#include <string.h>

static const char std_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void encode(struct buf *out, const void *data, size_t len, const char *alpha, int pad)
{
	const uint8_t *p = data;
	size_t i;

	buf_reserve(out, (len + 2) / 3 * 4);
	for (i = 0; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

		buf_putc(out, (uint8_t)alpha[v >> 18]);
		buf_putc(out, (uint8_t)alpha[(v >> 12) & 63]);
		buf_putc(out, (uint8_t)alpha[(v >> 6) & 63]);
		buf_putc(out, (uint8_t)alpha[v & 63]);
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;

		buf_putc(out, (uint8_t)alpha[v >> 18]);
		buf_putc(out, (uint8_t)alpha[(v >> 12) & 63]);
		if (pad)
			buf_puts(out, "==");
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;

		buf_putc(out, (uint8_t)alpha[v >> 18]);
		buf_putc(out, (uint8_t)alpha[(v >> 12) & 63]);
		buf_putc(out, (uint8_t)alpha[(v >> 6) & 63]);
		if (pad)
			buf_putc(out, '=');
	}
}

void base64_put(struct buf *out, const void *data, size_t len)
{
	encode(out, data, len, std_alphabet, 1);
}

void base64url_put(struct buf *out, const void *data, size_t len)
{
	encode(out, data, len, url_alphabet, 0);
}

static char *encode_alloc(const void *data, size_t len, const char *alpha, int pad)
{
	struct buf b = BUF_INIT;

	encode(&b, data, len, alpha, pad);
	buf_append(&b, "", 0); /* NUL-terminated even when empty */
	return (char *)buf_steal(&b, NULL);
}

char *base64_encode(const void *data, size_t len)
{
	return encode_alloc(data, len, std_alphabet, 1);
}

char *base64url_encode(const void *data, size_t len)
{
	return encode_alloc(data, len, url_alphabet, 0);
}

static int symbol_value(const char *alpha, char c)
{
	const char *hit;

	if (c == '\0' || c == '=')
		return -1;
	hit = memchr(alpha, c, 64);
	return hit ? (int)(hit - alpha) : -1;
}

static int decode(const char *s, size_t slen, uint8_t **out, size_t *out_len, const char *alpha, int padded,
		  struct err *e)
{
	size_t body = slen, tail, n, o = 0;
	uint8_t *p;

	if (padded) {
		if (slen % 4)
			return err_set(e, "invalid base64: length %zu is not a multiple of 4", slen);
		if (body && s[body - 1] == '=')
			body--;
		if (body && s[body - 1] == '=')
			body--;
	} else if (slen % 4 == 1) {
		return err_set(e, "invalid base64url: impossible length %zu", slen);
	}
	tail = body % 4;
	if (padded && tail == 1)
		return err_set(e, "invalid base64: bad padding");
	n = body / 4 * 3 + (tail ? tail - 1 : 0);
	p = malloc(n + 1);
	if (!p)
		abort();
	for (size_t i = 0; i < body; i += 4) {
		size_t k = body - i < 4 ? body - i : 4;
		uint32_t v = 0;

		for (size_t j = 0; j < 4; j++) {
			int d = j < k ? symbol_value(alpha, s[i + j]) : 0;

			if (d < 0) {
				free(p);
				return err_set(e, "invalid base64 character at offset %zu", i + j);
			}
			v = v << 6 | (uint32_t)d;
		}
		if ((k == 2 && (v & 0xffff)) || (k == 3 && (v & 0xff))) {
			free(p);
			return err_set(e, "invalid base64: non-zero trailing bits");
		}
		p[o++] = (uint8_t)(v >> 16);
		if (k > 2)
			p[o++] = (uint8_t)(v >> 8);
		if (k > 3)
			p[o++] = (uint8_t)v;
	}
	p[o] = 0;
	*out = p;
	*out_len = o;
	return 0;
}

int base64_decode(const char *s, size_t slen, uint8_t **out, size_t *out_len, struct err *e)
{
	return decode(s, slen, out, out_len, std_alphabet, 1, e);
}

int base64url_decode(const char *s, size_t slen, uint8_t **out, size_t *out_len, struct err *e)
{
	return decode(s, slen, out, out_len, url_alphabet, 0, e);
}
