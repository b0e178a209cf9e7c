/*
 * scale.c — see scale.h.
 *
 * Compact integer modes (low two bits of the first byte):
 *   00  6-bit value in the upper bits of one byte          0 .. 63
 *   01  14-bit value, two bytes little endian              64 .. 16383
 *   10  30-bit value, four bytes little endian             16384 .. 2^30-1
 *   11  upper six bits = n-4, then n little endian bytes   >= 2^30 (n minimal)
 */
#include "codec/scale.h"

#include <stdlib.h>
#include <string.h>

#include "codec/utf8.h"

void scale_reader_init(struct scale_reader *r, const void *data, size_t len)
{
	r->data = data;
	r->len = len;
	r->pos = 0;
}

int scale_expect_end(const struct scale_reader *r, struct err *e)
{
	if (r->pos != r->len)
		return err_set(e, "%zu trailing bytes after SCALE value", r->len - r->pos);
	return 0;
}

static int need(const struct scale_reader *r, size_t n, struct err *e)
{
	if (scale_remaining(r) < n)
		return err_set(e, "SCALE input truncated at offset %zu: need %zu bytes, %zu left", r->pos, n,
			       scale_remaining(r));
	return 0;
}

static uint64_t read_le(struct scale_reader *r, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)r->data[r->pos + i] << (8 * i);
	r->pos += n;
	return v;
}

int scale_read_u8(struct scale_reader *r, uint8_t *out, struct err *e)
{
	if (need(r, 1, e) < 0)
		return -1;
	*out = (uint8_t)read_le(r, 1);
	return 0;
}

int scale_read_u16(struct scale_reader *r, uint16_t *out, struct err *e)
{
	if (need(r, 2, e) < 0)
		return -1;
	*out = (uint16_t)read_le(r, 2);
	return 0;
}

int scale_read_u32(struct scale_reader *r, uint32_t *out, struct err *e)
{
	if (need(r, 4, e) < 0)
		return -1;
	*out = (uint32_t)read_le(r, 4);
	return 0;
}

int scale_read_u64(struct scale_reader *r, uint64_t *out, struct err *e)
{
	if (need(r, 8, e) < 0)
		return -1;
	*out = read_le(r, 8);
	return 0;
}

int scale_read_bool(struct scale_reader *r, bool *out, struct err *e)
{
	uint8_t v;

	if (scale_read_u8(r, &v, e) < 0)
		return -1;
	if (v > 1)
		return err_set(e, "invalid SCALE bool 0x%02x at offset %zu", v, r->pos - 1);
	*out = v;
	return 0;
}

int scale_read_compact(struct scale_reader *r, uint64_t *out, struct err *e)
{
	size_t start = r->pos, n;
	uint8_t first;
	uint64_t v;

	if (need(r, 1, e) < 0)
		return -1;
	first = r->data[r->pos];
	switch (first & 3) {
	case 0:
		r->pos++;
		*out = first >> 2;
		return 0;
	case 1:
		if (need(r, 2, e) < 0)
			return -1;
		v = read_le(r, 2) >> 2;
		if (v < 64)
			break;
		*out = v;
		return 0;
	case 2:
		if (need(r, 4, e) < 0)
			return -1;
		v = read_le(r, 4) >> 2;
		if (v < 16384)
			break;
		*out = v;
		return 0;
	default:
		n = (size_t)(first >> 2) + 4;
		if (n > 8)
			return err_set(e, "SCALE compact integer at offset %zu exceeds 64 bits", start);
		if (need(r, 1 + n, e) < 0)
			return -1;
		r->pos++;
		v = read_le(r, n);
		/* Canonical: the top byte is non-zero and the value needs this mode. */
		if ((v >> (8 * (n - 1))) == 0 || v < (1u << 30))
			break;
		*out = v;
		return 0;
	}
	r->pos = start;
	return err_set(e, "non-canonical SCALE compact integer at offset %zu", start);
}

int scale_read_len(struct scale_reader *r, size_t min_elem_size, size_t *n, struct err *e)
{
	size_t start = r->pos;
	uint64_t v;

	if (scale_read_compact(r, &v, e) < 0)
		return -1;
	if (min_elem_size == 0)
		min_elem_size = 1;
	if (v > scale_remaining(r) / min_elem_size) {
		r->pos = start;
		return err_set(e, "SCALE length %llu at offset %zu exceeds the %zu remaining bytes",
			       (unsigned long long)v, start, scale_remaining(r));
	}
	*n = (size_t)v;
	return 0;
}

int scale_read_fixed(struct scale_reader *r, void *out, size_t n, struct err *e)
{
	if (need(r, n, e) < 0)
		return -1;
	if (n)
		memcpy(out, r->data + r->pos, n);
	r->pos += n;
	return 0;
}

int scale_read_raw(struct scale_reader *r, size_t n, const uint8_t **out, struct err *e)
{
	if (need(r, n, e) < 0)
		return -1;
	*out = r->data + r->pos;
	r->pos += n;
	return 0;
}

int scale_read_bytes(struct scale_reader *r, const uint8_t **out, size_t *len, struct err *e)
{
	size_t n;

	if (scale_read_len(r, 1, &n, e) < 0)
		return -1;
	*out = r->data + r->pos;
	*len = n;
	r->pos += n;
	return 0;
}

int scale_read_bytes_alloc(struct scale_reader *r, uint8_t **out, size_t *len, struct err *e)
{
	const uint8_t *p;
	size_t n;
	uint8_t *copy;

	if (scale_read_bytes(r, &p, &n, e) < 0)
		return -1;
	copy = malloc(n + 1);
	if (!copy)
		abort();
	if (n)
		memcpy(copy, p, n);
	copy[n] = 0;
	*out = copy;
	*len = n;
	return 0;
}

int scale_read_str(struct scale_reader *r, char **out, size_t *len, struct err *e)
{
	size_t start = r->pos, n;
	uint8_t *s;

	if (scale_read_bytes_alloc(r, &s, &n, e) < 0)
		return -1;
	if (!utf8_valid(s, n)) {
		free(s);
		r->pos = start;
		return err_set(e, "invalid UTF-8 in SCALE string at offset %zu", start);
	}
	*out = (char *)s;
	if (len)
		*len = n;
	return 0;
}

int scale_read_option(struct scale_reader *r, bool *present, struct err *e)
{
	uint8_t v;

	if (scale_read_u8(r, &v, e) < 0)
		return -1;
	if (v > 1)
		return err_set(e, "invalid SCALE Option tag 0x%02x at offset %zu", v, r->pos - 1);
	*present = v;
	return 0;
}

int scale_read_variant(struct scale_reader *r, uint8_t n_variants, uint8_t *out, struct err *e)
{
	uint8_t v;

	if (scale_read_u8(r, &v, e) < 0)
		return -1;
	if (v >= n_variants)
		return err_set(e, "unknown SCALE enum variant %u at offset %zu", v, r->pos - 1);
	*out = v;
	return 0;
}

static void put_le(struct buf *b, uint64_t v, size_t n)
{
	uint8_t tmp[8];

	for (size_t i = 0; i < n; i++)
		tmp[i] = (uint8_t)(v >> (8 * i));
	buf_append(b, tmp, n);
}

void scale_put_u8(struct buf *b, uint8_t v)
{
	buf_putc(b, v);
}

void scale_put_u16(struct buf *b, uint16_t v)
{
	put_le(b, v, 2);
}

void scale_put_u32(struct buf *b, uint32_t v)
{
	put_le(b, v, 4);
}

void scale_put_u64(struct buf *b, uint64_t v)
{
	put_le(b, v, 8);
}

void scale_put_bool(struct buf *b, bool v)
{
	buf_putc(b, v ? 1 : 0);
}

void scale_put_compact(struct buf *b, uint64_t v)
{
	size_t n = 4;

	if (v < 64) {
		buf_putc(b, (uint8_t)(v << 2));
	} else if (v < 16384) {
		put_le(b, v << 2 | 1, 2);
	} else if (v < (1u << 30)) {
		put_le(b, v << 2 | 2, 4);
	} else {
		while (n < 8 && (v >> (8 * n)))
			n++;
		buf_putc(b, (uint8_t)((n - 4) << 2 | 3));
		put_le(b, v, n);
	}
}

void scale_put_bytes(struct buf *b, const void *data, size_t len)
{
	scale_put_compact(b, len);
	buf_append(b, data, len);
}

void scale_put_strn(struct buf *b, const char *s, size_t len)
{
	scale_put_bytes(b, s, len);
}

void scale_put_str(struct buf *b, const char *s)
{
	scale_put_bytes(b, s, strlen(s));
}

void scale_put_option(struct buf *b, bool present)
{
	buf_putc(b, present ? 1 : 0);
}
