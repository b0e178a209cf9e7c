/*
 * head.h — the HTTP/1.1 request head parser of the server (server.c), kept
 * apart as a pure function so it can be fuzzed on its own (fuzz/http_head.c):
 * it sees every byte an unauthenticated client sends before any routing.
 *
 * Strict by design: a token method, an origin-form target without control
 * characters or spaces, HTTP/1.0 or 1.1, header names of token characters
 * followed directly by ':' (no obsolete line folding, no space before the
 * colon), values without control characters, at most HTTP_MAX_HEADERS
 * fields. Anything else is an error status, never a guess.
 */
#ifndef DSTACK_HTTP_HEAD_H
#define DSTACK_HTTP_HEAD_H

#include <stdbool.h>
#include <stddef.h>

#define HTTP_MAX_HEADERS 128

struct http_hdr {
	char *name, *value;
};

/* Pointers into the buffer given to http_head_parse. */
struct http_head {
	char *method, *path, *query; /* query: after '?', or NULL */
	int minor;                   /* HTTP/1.<minor> */
	struct http_hdr hdrs[HTTP_MAX_HEADERS];
	size_t n_hdrs;
};

/* Parse a NUL-terminated head without its final blank line, splitting it in
 * place. 0 on success, else the HTTP status to answer (400, 431, 505). `h`
 * must start zeroed. */
int http_head_parse(struct http_head *h, char *head);
/* The Content-Length (0 when absent); -1 when malformed, above 2^50, or
 * repeated with different values. */
int http_head_content_length(const struct http_head *h, size_t *out);
/* Header value `v` (may be NULL) lists `token` (comma-separated,
 * case-insensitive). */
bool http_header_has_token(const char *v, const char *token);

#endif
