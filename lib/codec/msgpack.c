/*
 * msgpack.c — see msgpack.h. Formats follow the MessagePack specification;
 * all multi-byte fields are big endian.
 */
#include "codec/msgpack.h"

#include <stdlib.h>
#include <string.h>

#include "codec/utf8.h"

void mp_reader_init(struct mp_reader *r, const void *data, size_t len)
{
	r->data = data;
	r->len = len;
	r->pos = 0;
	r->max_depth = MP_DEFAULT_MAX_DEPTH;
}

int mp_expect_end(const struct mp_reader *r, struct err *e)
{
	if (r->pos != r->len)
		return err_set(e, "%zu trailing bytes after MessagePack value", r->len - r->pos);
	return 0;
}

const char *mp_type_name(enum mp_type t)
{
	static const char *const names[] = {"nil", "bool", "uint",  "negative int", "float",
					    "str", "bin",  "array", "map",          "ext"};

	return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t] : "?";
}

static uint64_t be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* Decode the header at r->pos into o; returns the header size (payload of
 * str/bin/ext excluded) or -1. Does not move the cursor. */
static int decode_header(const struct mp_reader *r, struct mp_obj *o, size_t *payload, struct err *e)
{
	const uint8_t *p = r->data + r->pos;
	size_t left = r->len - r->pos, hdr = 1, lenbytes = 0;
	uint8_t c;
	union {
		uint32_t u;
		float f;
	} f32;
	union {
		uint64_t u;
		double f;
	} f64;

	*payload = 0;
	if (left == 0)
		return err_set(e, "MessagePack input truncated at offset %zu", r->pos);
	c = p[0];
	memset(o, 0, sizeof(*o));
	if (c <= 0x7f) {
		o->type = MP_UINT;
		o->v.u = c;
		return 1;
	}
	if (c >= 0xe0) {
		o->type = MP_INT;
		o->v.i = (int8_t)c;
		return 1;
	}
	if ((c & 0xf0) == 0x80 || (c & 0xf0) == 0x90) {
		o->type = (c & 0xf0) == 0x80 ? MP_MAP : MP_ARRAY;
		o->v.n = c & 0x0f;
		goto count;
	}
	if ((c & 0xe0) == 0xa0) {
		o->type = MP_STR;
		*payload = c & 0x1f;
		goto payload;
	}
	switch (c) {
	case 0xc0:
		o->type = MP_NIL;
		return 1;
	case 0xc2:
	case 0xc3:
		o->type = MP_BOOL;
		o->v.b = c == 0xc3;
		return 1;
	case 0xcc:
	case 0xcd:
	case 0xce:
	case 0xcf:
		hdr = 1 + ((size_t)1 << (c - 0xcc));
		if (left < hdr)
			break;
		o->type = MP_UINT;
		o->v.u = be(p + 1, hdr - 1);
		return (int)hdr;
	case 0xd0:
	case 0xd1:
	case 0xd2:
	case 0xd3: {
		uint64_t raw;
		unsigned bits;

		hdr = 1 + ((size_t)1 << (c - 0xd0));
		if (left < hdr)
			break;
		raw = be(p + 1, hdr - 1);
		bits = 8 * (unsigned)(hdr - 1);
		if (bits < 64 && (raw >> (bits - 1)) & 1)
			raw |= ~(uint64_t)0 << bits; /* sign-extend */
		if ((int64_t)raw >= 0) {
			o->type = MP_UINT;
			o->v.u = raw;
		} else {
			o->type = MP_INT;
			o->v.i = (int64_t)raw;
		}
		return (int)hdr;
	}
	case 0xca:
		hdr = 5;
		if (left < hdr)
			break;
		f32.u = (uint32_t)be(p + 1, 4);
		o->type = MP_FLOAT;
		o->v.f = f32.f;
		return 5;
	case 0xcb:
		hdr = 9;
		if (left < hdr)
			break;
		f64.u = be(p + 1, 8);
		o->type = MP_FLOAT;
		o->v.f = f64.f;
		return 9;
	case 0xd9:
	case 0xda:
	case 0xdb:
		o->type = MP_STR;
		lenbytes = (size_t)1 << (c - 0xd9);
		goto sized;
	case 0xc4:
	case 0xc5:
	case 0xc6:
		o->type = MP_BIN;
		lenbytes = (size_t)1 << (c - 0xc4);
		goto sized;
	case 0xc7:
	case 0xc8:
	case 0xc9:
		o->type = MP_EXT;
		lenbytes = (size_t)1 << (c - 0xc7);
		hdr = 1 + lenbytes + 1;
		if (left < hdr)
			break;
		*payload = be(p + 1, lenbytes);
		o->v.s.ext_type = (int8_t)p[hdr - 1];
		goto payload;
	case 0xd4:
	case 0xd5:
	case 0xd6:
	case 0xd7:
	case 0xd8:
		o->type = MP_EXT;
		hdr = 2;
		if (left < hdr)
			break;
		*payload = (size_t)1 << (c - 0xd4);
		o->v.s.ext_type = (int8_t)p[1];
		goto payload;
	case 0xdc:
	case 0xdd:
		o->type = MP_ARRAY;
		goto sized_count;
	case 0xde:
	case 0xdf:
		o->type = MP_MAP;
		goto sized_count;
	default:
		return err_set(e, "invalid MessagePack type byte 0x%02x at offset %zu", c, r->pos);
	}
	return err_set(e, "MessagePack input truncated at offset %zu", r->pos);

sized_count:
	lenbytes = (c & 1) ? 4 : 2;
	hdr = 1 + lenbytes;
	if (left < hdr)
		return err_set(e, "MessagePack input truncated at offset %zu", r->pos);
	o->v.n = (uint32_t)be(p + 1, lenbytes);
count:
	/* Each element (each key and value of a map) takes at least one byte. */
	if ((uint64_t)o->v.n * (o->type == MP_MAP ? 2 : 1) > left - hdr)
		return err_set(e, "MessagePack %s of %u entries at offset %zu exceeds the remaining input",
			       mp_type_name(o->type), o->v.n, r->pos);
	return (int)hdr;

sized:
	hdr = 1 + lenbytes;
	if (left < hdr)
		return err_set(e, "MessagePack input truncated at offset %zu", r->pos);
	*payload = be(p + 1, lenbytes);
payload:
	if (*payload > left - hdr)
		return err_set(e, "MessagePack %s of %zu bytes at offset %zu exceeds the remaining input",
			       mp_type_name(o->type), *payload, r->pos);
	o->v.s.p = p + hdr;
	o->v.s.len = (uint32_t)*payload;
	return (int)hdr;
}

int mp_peek(struct mp_reader *r, struct mp_obj *o, struct err *e)
{
	size_t payload;

	return decode_header(r, o, &payload, e) < 0 ? -1 : 0;
}

int mp_read(struct mp_reader *r, struct mp_obj *o, struct err *e)
{
	size_t payload;
	int hdr = decode_header(r, o, &payload, e);

	if (hdr < 0)
		return -1;
	r->pos += (size_t)hdr + payload;
	return 0;
}

int mp_skip(struct mp_reader *r, struct err *e)
{
	/* pending[d] = values still to read at nesting level d. */
	uint64_t pending[MP_DEFAULT_MAX_DEPTH + 1];
	unsigned depth = 0, max = r->max_depth < MP_DEFAULT_MAX_DEPTH ? r->max_depth : MP_DEFAULT_MAX_DEPTH;
	struct mp_obj o;

	pending[0] = 1;
	for (;;) {
		while (pending[depth] == 0) {
			if (depth == 0)
				return 0;
			depth--;
		}
		pending[depth]--;
		if (mp_read(r, &o, e) < 0)
			return -1;
		if ((o.type == MP_ARRAY || o.type == MP_MAP) && o.v.n) {
			if (depth + 1 > max)
				return err_set(e, "MessagePack nesting deeper than %u at offset %zu", max,
					       r->pos);
			pending[++depth] = (uint64_t)o.v.n * (o.type == MP_MAP ? 2 : 1);
		}
	}
}

static int want(struct mp_reader *r, struct mp_obj *o, enum mp_type t, struct err *e)
{
	size_t start = r->pos;

	if (mp_read(r, o, e) < 0)
		return -1;
	if (o->type != t) {
		r->pos = start;
		return err_set(e, "expected MessagePack %s, got %s at offset %zu", mp_type_name(t),
			       mp_type_name(o->type), start);
	}
	return 0;
}

int mp_read_nil(struct mp_reader *r, struct err *e)
{
	struct mp_obj o;

	return want(r, &o, MP_NIL, e);
}

int mp_read_bool(struct mp_reader *r, bool *out, struct err *e)
{
	struct mp_obj o;

	if (want(r, &o, MP_BOOL, e) < 0)
		return -1;
	*out = o.v.b;
	return 0;
}

int mp_read_uint(struct mp_reader *r, uint64_t *out, struct err *e)
{
	struct mp_obj o;

	if (want(r, &o, MP_UINT, e) < 0)
		return -1;
	*out = o.v.u;
	return 0;
}

int mp_read_u32(struct mp_reader *r, uint32_t *out, struct err *e)
{
	size_t start = r->pos;
	uint64_t v;

	if (mp_read_uint(r, &v, e) < 0)
		return -1;
	if (v > UINT32_MAX) {
		r->pos = start;
		return err_set(e, "MessagePack integer %llu at offset %zu does not fit in u32",
			       (unsigned long long)v, start);
	}
	*out = (uint32_t)v;
	return 0;
}

int mp_read_int(struct mp_reader *r, int64_t *out, struct err *e)
{
	size_t start = r->pos;
	struct mp_obj o;

	if (mp_read(r, &o, e) < 0)
		return -1;
	if (o.type == MP_INT) {
		*out = o.v.i;
		return 0;
	}
	if (o.type == MP_UINT && o.v.u <= INT64_MAX) {
		*out = (int64_t)o.v.u;
		return 0;
	}
	r->pos = start;
	return err_set(e, "expected MessagePack i64 at offset %zu, got %s", start, mp_type_name(o.type));
}

int mp_read_double(struct mp_reader *r, double *out, struct err *e)
{
	struct mp_obj o;

	if (want(r, &o, MP_FLOAT, e) < 0)
		return -1;
	*out = o.v.f;
	return 0;
}

int mp_read_array(struct mp_reader *r, uint32_t *n, struct err *e)
{
	struct mp_obj o;

	if (want(r, &o, MP_ARRAY, e) < 0)
		return -1;
	*n = o.v.n;
	return 0;
}

int mp_read_map(struct mp_reader *r, uint32_t *n, struct err *e)
{
	struct mp_obj o;

	if (want(r, &o, MP_MAP, e) < 0)
		return -1;
	*n = o.v.n;
	return 0;
}

int mp_read_str(struct mp_reader *r, const char **s, size_t *len, struct err *e)
{
	size_t start = r->pos;
	struct mp_obj o;

	if (want(r, &o, MP_STR, e) < 0)
		return -1;
	if (!utf8_valid(o.v.s.p, o.v.s.len)) {
		r->pos = start;
		return err_set(e, "invalid UTF-8 in MessagePack str at offset %zu", start);
	}
	*s = (const char *)o.v.s.p;
	*len = o.v.s.len;
	return 0;
}

int mp_read_str_alloc(struct mp_reader *r, char **out, size_t *len, struct err *e)
{
	const char *s;
	size_t n;
	char *copy;

	if (mp_read_str(r, &s, &n, e) < 0)
		return -1;
	copy = malloc(n + 1);
	if (!copy)
		abort();
	if (n)
		memcpy(copy, s, n);
	copy[n] = '\0';
	*out = copy;
	if (len)
		*len = n;
	return 0;
}

int mp_read_bin(struct mp_reader *r, const uint8_t **p, size_t *len, struct err *e)
{
	struct mp_obj o;

	if (want(r, &o, MP_BIN, e) < 0)
		return -1;
	*p = o.v.s.p;
	*len = o.v.s.len;
	return 0;
}

int mp_read_byte_vec(struct mp_reader *r, uint8_t **out, size_t *len, struct err *e)
{
	size_t start = r->pos;
	struct mp_obj o;
	uint8_t *copy;

	if (mp_read(r, &o, e) < 0)
		return -1;
	if (o.type == MP_BIN || o.type == MP_STR) {
		copy = malloc((size_t)o.v.s.len + 1);
		if (!copy)
			abort();
		if (o.v.s.len)
			memcpy(copy, o.v.s.p, o.v.s.len);
		*len = o.v.s.len;
	} else if (o.type == MP_ARRAY) {
		copy = malloc((size_t)o.v.n + 1);
		if (!copy)
			abort();
		for (uint32_t i = 0; i < o.v.n; i++) {
			uint64_t v;

			if (mp_read_uint(r, &v, e) < 0) {
				free(copy);
				r->pos = start;
				return err_wrap(e, "invalid byte array element %u", i);
			}
			if (v > 255) {
				free(copy);
				r->pos = start;
				return err_set(e, "byte array element %u at offset %zu is out of range", i,
					       start);
			}
			copy[i] = (uint8_t)v;
		}
		*len = o.v.n;
	} else {
		r->pos = start;
		return err_set(e, "expected MessagePack bytes (bin or int array), got %s at offset %zu",
			       mp_type_name(o.type), start);
	}
	copy[*len] = 0;
	*out = copy;
	return 0;
}

bool mp_str_eq(const struct mp_obj *o, const char *key)
{
	size_t n = strlen(key);

	return o->type == MP_STR && o->v.s.len == n && memcmp(o->v.s.p, key, n) == 0;
}

static void put_be(struct buf *b, uint8_t tag, uint64_t v, size_t n)
{
	uint8_t tmp[9];

	tmp[0] = tag;
	for (size_t i = 0; i < n; i++)
		tmp[1 + i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	buf_append(b, tmp, n + 1);
}

void mp_put_nil(struct buf *b)
{
	buf_putc(b, 0xc0);
}

void mp_put_bool(struct buf *b, bool v)
{
	buf_putc(b, v ? 0xc3 : 0xc2);
}

void mp_put_uint(struct buf *b, uint64_t v)
{
	if (v < 128)
		buf_putc(b, (uint8_t)v);
	else if (v <= UINT8_MAX)
		put_be(b, 0xcc, v, 1);
	else if (v <= UINT16_MAX)
		put_be(b, 0xcd, v, 2);
	else if (v <= UINT32_MAX)
		put_be(b, 0xce, v, 4);
	else
		put_be(b, 0xcf, v, 8);
}

void mp_put_int(struct buf *b, int64_t v)
{
	if (v >= 0)
		mp_put_uint(b, (uint64_t)v);
	else if (v >= -32)
		buf_putc(b, (uint8_t)(int8_t)v);
	else if (v >= INT8_MIN)
		put_be(b, 0xd0, (uint64_t)v, 1);
	else if (v >= INT16_MIN)
		put_be(b, 0xd1, (uint64_t)v, 2);
	else if (v >= INT32_MIN)
		put_be(b, 0xd2, (uint64_t)v, 4);
	else
		put_be(b, 0xd3, (uint64_t)v, 8);
}

void mp_put_f32(struct buf *b, float v)
{
	union {
		float f;
		uint32_t u;
	} x = {.f = v};

	put_be(b, 0xca, x.u, 4);
}

void mp_put_f64(struct buf *b, double v)
{
	union {
		double f;
		uint64_t u;
	} x = {.f = v};

	put_be(b, 0xcb, x.u, 8);
}

/* Length header for str/bin/array/map families. */
static void put_len(struct buf *b, size_t len, uint8_t fix, size_t fix_max, uint8_t m8, uint8_t m16,
		    uint8_t m32)
{
	if (fix && len <= fix_max)
		buf_putc(b, (uint8_t)(fix | len));
	else if (m8 && len <= UINT8_MAX)
		put_be(b, m8, len, 1);
	else if (len <= UINT16_MAX)
		put_be(b, m16, len, 2);
	else
		put_be(b, m32, len, 4);
}

void mp_put_str(struct buf *b, const char *s, size_t len)
{
	put_len(b, len, 0xa0, 31, 0xd9, 0xda, 0xdb);
	buf_append(b, s, len);
}

void mp_put_cstr(struct buf *b, const char *s)
{
	mp_put_str(b, s, strlen(s));
}

void mp_put_bin(struct buf *b, const void *p, size_t len)
{
	put_len(b, len, 0, 0, 0xc4, 0xc5, 0xc6);
	buf_append(b, p, len);
}

void mp_put_array(struct buf *b, uint32_t n)
{
	put_len(b, n, 0x90, 15, 0, 0xdc, 0xdd);
}

void mp_put_map(struct buf *b, uint32_t n)
{
	put_len(b, n, 0x80, 15, 0, 0xde, 0xdf);
}

void mp_put_ext(struct buf *b, int8_t type, const void *p, size_t len)
{
	static const uint8_t fixext[17] = {[1] = 0xd4, [2] = 0xd5, [4] = 0xd6, [8] = 0xd7, [16] = 0xd8};

	if (len <= 16 && fixext[len])
		buf_putc(b, fixext[len]);
	else
		put_len(b, len, 0, 0, 0xc7, 0xc8, 0xc9);
	buf_putc(b, (uint8_t)type);
	buf_append(b, p, len);
}

void mp_put_byte_array(struct buf *b, const void *p, size_t len)
{
	const uint8_t *q = p;

	mp_put_array(b, (uint32_t)len);
	for (size_t i = 0; i < len; i++)
		mp_put_uint(b, q[i]);
}
