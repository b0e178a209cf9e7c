/*
 * base64.h — RFC 4648 base64: the standard alphabet with '=' padding (runtime
 * event log lines, vm_config measurement documents) and the URL-safe alphabet
 * without padding (dip1 key strings).
 *
 * Decoding is strict: no whitespace, padding only where RFC 4648 puts it and
 * the unused low bits of the last symbol must be zero, so every byte string
 * has exactly one accepted encoding.
 */
#ifndef DSTACK_CODEC_BASE64_H
#define DSTACK_CODEC_BASE64_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

/* Append the encoding of data to out (NUL-terminated like every buf). */
void base64_put(struct buf *out, const void *data, size_t len);
void base64url_put(struct buf *out, const void *data, size_t len);

/* Malloc'd NUL-terminated encodings. */
char *base64_encode(const void *data, size_t len);
char *base64url_encode(const void *data, size_t len);

/* Decode into a malloc'd buffer (always non-NULL on success, NUL-terminated
 * one past *out_len). */
int base64_decode(const char *s, size_t slen, uint8_t **out, size_t *out_len, struct err *e);
int base64url_decode(const char *s, size_t slen, uint8_t **out, size_t *out_len, struct err *e);

#endif
