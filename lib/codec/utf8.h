/*
 * utf8.h — strict UTF-8 validation (RFC 3629): no overlong forms, no
 * surrogates, nothing above U+10FFFF. This is the rule Rust's `String`
 * enforces, so SCALE and MessagePack strings that the reference would reject
 * are rejected here too.
 */
#ifndef DSTACK_CODEC_UTF8_H
#define DSTACK_CODEC_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

bool utf8_valid(const void *s, size_t len);

/* Decode one code point at s[*pos] (input must be valid UTF-8); advances *pos. */
uint32_t utf8_next(const uint8_t *s, size_t *pos);

#endif
