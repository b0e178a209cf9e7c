/*
 * msgpack.h — MessagePack encoder and cursor decoder, the format of the V1
 * VersionedAttestation, of the RA-TLS AppInfo extension and of gateway
 * sync records.
 *
 * rmp-serde writes Rust structs two ways and dstack uses both: "named"
 * (a map from field name to value, to_vec_named) and "compact" (an array of
 * the field values in declaration order, to_vec). `Vec<u8>` becomes an array
 * of small ints unless the field is marked as bytes, which becomes `bin`;
 * mp_read_byte_vec accepts either.
 *
 * The decoder never allocates for containers: mp_read() returns one value
 * header (for arrays/maps the element count, for str/bin/ext a borrowed
 * slice). Element counts are checked against the remaining input (each
 * element needs at least one byte), and mp_skip() walks nested values
 * iteratively under a depth limit, so hostile input cannot recurse or
 * over-allocate.
 */
#ifndef DSTACK_CODEC_MSGPACK_H
#define DSTACK_CODEC_MSGPACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

#define MP_DEFAULT_MAX_DEPTH 64

enum mp_type {
	MP_NIL,
	MP_BOOL,
	MP_UINT,  /* non-negative integer, any width */
	MP_INT,   /* negative integer */
	MP_FLOAT, /* float 32 or 64 (stored as double) */
	MP_STR,
	MP_BIN,
	MP_ARRAY,
	MP_MAP,
	MP_EXT,
};

struct mp_obj {
	enum mp_type type;
	union {
		bool b;
		uint64_t u;
		int64_t i;
		double f;
		uint32_t n; /* array elements / map pairs */
		struct {
			const uint8_t *p;
			uint32_t len;
			int8_t ext_type;
		} s; /* str, bin, ext */
	} v;
};

struct mp_reader {
	const uint8_t *data;
	size_t len;
	size_t pos;
	unsigned max_depth;
};

void mp_reader_init(struct mp_reader *r, const void *data, size_t len);
static inline size_t mp_remaining(const struct mp_reader *r)
{
	return r->len - r->pos;
}
int mp_expect_end(const struct mp_reader *r, struct err *e);
const char *mp_type_name(enum mp_type t);

/* Read one value header. str payloads are NOT UTF-8 checked here. */
int mp_read(struct mp_reader *r, struct mp_obj *o, struct err *e);
/* Look at the next value's header without consuming it. */
int mp_peek(struct mp_reader *r, struct mp_obj *o, struct err *e);
/* Skip one complete value (nested containers included). */
int mp_skip(struct mp_reader *r, struct err *e);

/* Typed reads; a value of another type is an error naming both types. */
int mp_read_nil(struct mp_reader *r, struct err *e);
int mp_read_bool(struct mp_reader *r, bool *out, struct err *e);
int mp_read_uint(struct mp_reader *r, uint64_t *out, struct err *e);
int mp_read_u32(struct mp_reader *r, uint32_t *out, struct err *e);
int mp_read_int(struct mp_reader *r, int64_t *out, struct err *e);
int mp_read_double(struct mp_reader *r, double *out, struct err *e);
int mp_read_array(struct mp_reader *r, uint32_t *n, struct err *e);
int mp_read_map(struct mp_reader *r, uint32_t *n, struct err *e);
/* str: borrowed, UTF-8 checked, not NUL-terminated. */
int mp_read_str(struct mp_reader *r, const char **s, size_t *len, struct err *e);
/* str: malloc'd NUL-terminated copy (UTF-8 checked). */
int mp_read_str_alloc(struct mp_reader *r, char **out, size_t *len, struct err *e);
int mp_read_bin(struct mp_reader *r, const uint8_t **p, size_t *len, struct err *e);
/* A byte vector written either as bin, as str, or as an array of uints
 * 0..255; malloc'd copy (non-NULL, even when empty). */
int mp_read_byte_vec(struct mp_reader *r, uint8_t **out, size_t *len, struct err *e);

/* True if o is a str equal to key (for matching named-map field names). */
bool mp_str_eq(const struct mp_obj *o, const char *key);

/* Encoders: integers use the shortest form, like rmp. */
void mp_put_nil(struct buf *b);
void mp_put_bool(struct buf *b, bool v);
void mp_put_uint(struct buf *b, uint64_t v);
void mp_put_int(struct buf *b, int64_t v);
void mp_put_f32(struct buf *b, float v);
void mp_put_f64(struct buf *b, double v);
void mp_put_str(struct buf *b, const char *s, size_t len);
void mp_put_cstr(struct buf *b, const char *s);
void mp_put_bin(struct buf *b, const void *p, size_t len);
void mp_put_array(struct buf *b, uint32_t n);
void mp_put_map(struct buf *b, uint32_t n);
void mp_put_ext(struct buf *b, int8_t type, const void *p, size_t len);
/* Vec<u8> the serde way: an array of uints. */
void mp_put_byte_array(struct buf *b, const void *p, size_t len);

#endif
