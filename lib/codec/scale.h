/*
 * scale.h — SCALE (parity-scale-codec), the binary format of the legacy V0
 * VersionedAttestation and of the KMS SignCert CSR.
 *
 * Decoding is a cursor over borrowed input. Every length prefix is checked
 * against the bytes that remain before anything is allocated, so a hostile
 * 5-byte input can never ask for gigabytes. Compact integers must be in
 * canonical (shortest) form, like the reference decoder demands. Encoding
 * appends to a `struct buf`.
 *
 *     struct scale_reader r;
 *     scale_reader_init(&r, data, len);
 *     if (scale_read_str(&r, &name, NULL, e) < 0 || scale_expect_end(&r, e) < 0) ...
 */
#ifndef DSTACK_CODEC_SCALE_H
#define DSTACK_CODEC_SCALE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

struct scale_reader {
	const uint8_t *data;
	size_t len;
	size_t pos;
};

void scale_reader_init(struct scale_reader *r, const void *data, size_t len);
static inline size_t scale_remaining(const struct scale_reader *r)
{
	return r->len - r->pos;
}
/* Fail with "trailing bytes" unless the input is fully consumed. */
int scale_expect_end(const struct scale_reader *r, struct err *e);

int scale_read_u8(struct scale_reader *r, uint8_t *out, struct err *e);
int scale_read_u16(struct scale_reader *r, uint16_t *out, struct err *e);
int scale_read_u32(struct scale_reader *r, uint32_t *out, struct err *e);
int scale_read_u64(struct scale_reader *r, uint64_t *out, struct err *e);
/* Only 0 and 1 are valid. */
int scale_read_bool(struct scale_reader *r, bool *out, struct err *e);
/* Compact<u64>; non-canonical encodings and values over 64 bits fail. */
int scale_read_compact(struct scale_reader *r, uint64_t *out, struct err *e);
/* A Vec/String length prefix: fails unless n * min_elem_size bytes remain
 * (min_elem_size >= 1: the smallest encoding of one element). */
int scale_read_len(struct scale_reader *r, size_t min_elem_size, size_t *n, struct err *e);
/* [u8; n]: copy exactly n bytes. */
int scale_read_fixed(struct scale_reader *r, void *out, size_t n, struct err *e);
/* Borrow n raw bytes (no prefix). */
int scale_read_raw(struct scale_reader *r, size_t n, const uint8_t **out, struct err *e);
/* Vec<u8>: borrowed slice into the input. */
int scale_read_bytes(struct scale_reader *r, const uint8_t **out, size_t *len, struct err *e);
/* Vec<u8>: malloc'd copy (non-NULL even when empty). */
int scale_read_bytes_alloc(struct scale_reader *r, uint8_t **out, size_t *len, struct err *e);
/* String: UTF-8 checked, malloc'd and NUL-terminated; len may be NULL.
 * Strings with an embedded NUL are accepted (len tells the truth). */
int scale_read_str(struct scale_reader *r, char **out, size_t *len, struct err *e);
/* Option<T> tag: *present = false for 0x00, true for 0x01; else an error. */
int scale_read_option(struct scale_reader *r, bool *present, struct err *e);
/* Enum variant index; fails if >= n_variants. */
int scale_read_variant(struct scale_reader *r, uint8_t n_variants, uint8_t *out, struct err *e);

void scale_put_u8(struct buf *b, uint8_t v);
void scale_put_u16(struct buf *b, uint16_t v);
void scale_put_u32(struct buf *b, uint32_t v);
void scale_put_u64(struct buf *b, uint64_t v);
void scale_put_bool(struct buf *b, bool v);
void scale_put_compact(struct buf *b, uint64_t v);
/* Vec<u8>: compact length then bytes. */
void scale_put_bytes(struct buf *b, const void *data, size_t len);
/* String (caller guarantees UTF-8). */
void scale_put_str(struct buf *b, const char *s);
void scale_put_strn(struct buf *b, const char *s, size_t len);
/* Option tag (follow with the value when present). */
void scale_put_option(struct buf *b, bool present);

#endif
