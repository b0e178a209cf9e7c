/*
 * jcs.h — RFC 8785 JSON Canonicalization Scheme over jansson values.
 *
 * Used for V2 runtime-event digests, the gpu-policy hash and MrConfigV3:
 * hashes over JSON are only reproducible if every implementation writes the
 * same bytes. Object keys are sorted by their UTF-16 code units, strings use
 * the minimal escapes of ECMAScript JSON.stringify, and numbers use the
 * ECMAScript shortest round-trip form. Integers are written exactly; reals
 * that are NaN or infinite are rejected (RFC 8785 §3.2.2.2).
 */
#ifndef DSTACK_CODEC_JCS_H
#define DSTACK_CODEC_JCS_H

#include <jansson.h>

#include "core/buf.h"
#include "core/err.h"

/* Append the canonical form of v to out. */
int jcs_serialize(const json_t *v, struct buf *out, struct err *e);
/* Object key order: negative, zero or positive like strcmp. */
typedef int (*jcs_key_order_fn)(const char *a, const char *b);
/* RFC 8785 key order: UTF-16 code units. */
int jcs_key_order(const char *a, const char *b);
/* jcs_serialize with another object key order (app-compose normalisation
 * sorts like a JavaScript object: array-index keys first). */
int jcs_serialize_ordered(const json_t *v, jcs_key_order_fn order, struct buf *out, struct err *e);
/* Malloc'd NUL-terminated canonical form, or NULL. */
char *jcs_dumps(const json_t *v, struct err *e);
/* Append one JSON string literal with RFC 8785 escaping (s: valid UTF-8). */
void jcs_put_string(struct buf *out, const char *s, size_t len);
/* Append an ECMAScript Number::toString of a finite double. */
int jcs_put_double(struct buf *out, double d, struct err *e);
/* Order two UTF-8 strings by their UTF-16 code units (RFC 8785 §3.2.3). */
int jcs_utf16_cmp(const char *a, size_t alen, const char *b, size_t blen);

#endif
