/*
 * hex.h — lowercase hex, the encoding of every `bytes` field on the dstack
 * wire. Decoding accepts an optional "0x"/"0X" prefix and either case.
 */
#ifndef DSTACK_CORE_HEX_H
#define DSTACK_CORE_HEX_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* Write 2*len lowercase hex digits plus NUL into out (size >= 2*len+1). */
void hex_encode(const void *data, size_t len, char *out);
/* Returns a malloc'd NUL-terminated string. */
char *hex_encode_alloc(const void *data, size_t len);

/* Decode into a malloc'd buffer (*out, *out_len). Empty input gives len 0
 * and a non-NULL 1-byte allocation. */
int hex_decode_alloc(const char *s, size_t slen, uint8_t **out, size_t *out_len, struct err *e);
/* Decode exactly `len` bytes into out; any other length is an error. */
int hex_decode_exact(const char *s, void *out, size_t len, struct err *e);

#endif
