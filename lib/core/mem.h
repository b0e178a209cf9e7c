/*
 * mem.h — handling of secret bytes: zeroing that the compiler cannot elide,
 * and constant-time comparison. Use these for keys, MACs and tokens.
 */
#ifndef DSTACK_CORE_MEM_H
#define DSTACK_CORE_MEM_H

#include <stdbool.h>
#include <stddef.h>

void secure_zero(void *p, size_t len);
/* Constant-time equality of two equal-length byte strings. */
bool ct_memeq(const void *a, const void *b, size_t len);

#endif
