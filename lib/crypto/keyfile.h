/*
 * keyfile.h — loading 32-byte secrets for the CLI and services: a file that
 * holds the raw 32 bytes (root-k256.key), 64 hex digits (optionally 0x, any
 * surrounding whitespace), or a P-256 PKCS#8/SEC1 PEM key (root-ca.key), and
 * reading an input file or stdin ("-") with a size cap.
 */
#ifndef DSTACK_CRYPTO_KEYFILE_H
#define DSTACK_CRYPTO_KEYFILE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* Parse text holding a 32-byte key as hex (whitespace trimmed). */
int key32_parse_hex(const char *text, size_t len, uint8_t out[32], struct err *e);
/* Raw 32 bytes, hex text, or a P-256 private key PEM; path "-" is stdin.
 * Errors never include file contents. */
int key32_load_file(const char *path, uint8_t out[32], struct err *e);
/* Read a whole file, or stdin when path is "-", at most max_len bytes.
 * *out is malloc'd and NUL-terminated. */
int input_read(const char *path, size_t max_len, uint8_t **out, size_t *out_len, struct err *e);

#endif
