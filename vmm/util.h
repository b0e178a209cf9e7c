/*
 * util.h — small helpers shared by the VMM core: owned string vectors,
 * path joining, SHA-256 and base64 of byte strings, and the charset checks
 * the spec applies to names and ids. Kept here (not in lib/core) because only
 * the VMM needs them;
 */
#ifndef DSTACK_VMM_UTIL_H
#define DSTACK_VMM_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/err.h"
#include "core/xalloc.h" /* xstrdup */

/* A growable vector of owned C strings. */
struct strv {
	char **v;
	size_t n;
};

void strv_push(struct strv *s, const char *str);
void strv_pushf(struct strv *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void strv_free(struct strv *s);
void strv_copy(struct strv *dst, const struct strv *src);
/* Replace dst with the strings of a JSON array (non-strings are an error). */
int strv_from_json(struct strv *dst, const json_t *arr, const char *what, struct err *e);
json_t *strv_to_json(const struct strv *s);
/* Join with a separator into a malloc'd string. */
char *strv_join(const struct strv *s, const char *sep);

/* Replace *dst with a copy of src. */
void str_set(char **dst, const char *src);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *path_join(const char *dir, const char *name);
bool str_empty(const char *s);

void sha256_buf(const void *data, size_t len, uint8_t out[32]);
/* Standard base64 with padding (lib/codec), malloc'd; aborts on OOM. */
char *base64_encode_alloc(const void *data, size_t len);

/* Every byte of s is alphanumeric or in `extra`. */
bool str_charset_ok(const char *s, const char *extra);

/* Run argv (PATH lookup) and wait; non-zero exit is an error. */
int vmm_run(const struct strv *argv, struct err *e);

/* Milliseconds since the Unix epoch. */
uint64_t now_ms(void);

/* Look up a string member; NULL when absent or not a string. */
const char *json_str(const json_t *obj, const char *key);

#endif
