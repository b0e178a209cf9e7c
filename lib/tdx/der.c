/*
 * der.c — see der.h.
 */
#include "tdx/der.h"

#include <string.h>

int der_next(struct der *d, uint8_t *tag, const uint8_t **content, size_t *len, struct err *e)
{
	size_t n;

	if (d->left < 2)
		return err_set(e, "DER truncated");
	*tag = d->p[0];
	if ((*tag & 0x1f) == 0x1f)
		return err_set(e, "DER multi-byte tag not supported");
	n = d->p[1];
	size_t hdr = 2;
	if (n & 0x80) {
		size_t k = n & 0x7f;
		if (k == 0 || k > 4 || d->left < 2 + k)
			return err_set(e, "DER bad length");
		n = 0;
		for (size_t i = 0; i < k; i++)
			n = (n << 8) | d->p[2 + i];
		hdr += k;
	}
	if (n > d->left - hdr)
		return err_set(e, "DER length %zu exceeds remaining %zu bytes", n, d->left - hdr);
	*content = d->p + hdr;
	*len = n;
	d->p += hdr + n;
	d->left -= hdr + n;
	return 0;
}

int der_expect(struct der *d, uint8_t tag, struct der *inner, struct err *e)
{
	uint8_t t;
	const uint8_t *c;
	size_t n;

	if (der_next(d, &t, &c, &n, e) < 0)
		return -1;
	if (t != tag)
		return err_set(e, "DER tag 0x%02x, want 0x%02x", t, tag);
	inner->p = c;
	inner->left = n;
	return 0;
}

int der_uint(const uint8_t *c, size_t len, uint32_t *out, struct err *e)
{
	if (len == 0)
		return err_set(e, "DER empty integer");
	if (c[0] & 0x80)
		return err_set(e, "DER negative integer");
	while (len > 1 && c[0] == 0) {
		c++;
		len--;
	}
	if (len > 4)
		return err_set(e, "DER integer too large");
	uint32_t v = 0;
	for (size_t i = 0; i < len; i++)
		v = (v << 8) | c[i];
	*out = v;
	return 0;
}

void der_put(struct buf *b, uint8_t tag, const void *content, size_t len)
{
	buf_putc(b, tag);
	if (len < 0x80) {
		buf_putc(b, (uint8_t)len);
	} else if (len <= 0xff) {
		buf_putc(b, 0x81);
		buf_putc(b, (uint8_t)len);
	} else if (len <= 0xffff) {
		buf_putc(b, 0x82);
		buf_putc(b, (uint8_t)(len >> 8));
		buf_putc(b, (uint8_t)len);
	} else {
		buf_putc(b, 0x83);
		buf_putc(b, (uint8_t)(len >> 16));
		buf_putc(b, (uint8_t)(len >> 8));
		buf_putc(b, (uint8_t)len);
	}
	buf_append(b, content, len);
}

void der_put_uint(struct buf *b, uint8_t tag, uint32_t v)
{
	uint8_t tmp[5];
	size_t n = 0;
	int started = 0;

	for (int i = 3; i >= 0; i--) {
		uint8_t byte = (uint8_t)(v >> (8 * i));
		if (!started && byte == 0 && i > 0)
			continue;
		if (!started && (byte & 0x80))
			tmp[n++] = 0;
		started = 1;
		tmp[n++] = byte;
	}
	der_put(b, tag, tmp, n);
}
