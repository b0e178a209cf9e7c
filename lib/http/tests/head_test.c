/*
 * head_test.c — the request head parser on its own: what it accepts, the
 * status it answers for each kind of malformed head, Content-Length rules
 * and Connection tokens.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/tap.h"
#include "http/head.h"

static int parse(const char *text, struct http_head *h, char **keep)
{
	*keep = strdup(text);
	memset(h, 0, sizeof(*h));
	return http_head_parse(h, *keep);
}

static void test_valid(void)
{
	struct http_head h;
	char *b;

	is_int(parse("POST /prpc/Info?json HTTP/1.1\r\nHost: x\r\nContent-Length:  12 \r\nX-A:\t\tv w\t", &h,
		     &b),
	       0, "valid head");
	is_str(h.method, "POST", "method");
	is_str(h.path, "/prpc/Info", "path without query");
	is_str(h.query, "json", "query");
	is_int(h.minor, 1, "HTTP/1.1");
	is_int((int)h.n_hdrs, 3, "three headers");
	is_str(h.hdrs[1].value, "12", "value trimmed of surrounding whitespace");
	is_str(h.hdrs[2].value, "v w", "inner whitespace kept");
	size_t n = 0;
	is_int(http_head_content_length(&h, &n), 0, "Content-Length parsed");
	is_int((int)n, 12, "Content-Length value");
	free(b);
	is_int(parse("GET / HTTP/1.0", &h, &b), 0, "HTTP/1.0 without headers");
	is_int(h.minor, 0, "minor 0");
	ok(h.query == NULL, "no query");
	is_int(http_head_content_length(&h, &n), 0, "no Content-Length is 0");
	is_int((int)n, 0, "length 0");
	free(b);
}

static void test_rejected(void)
{
	static const struct {
		const char *head;
		int status;
		const char *why;
	} cases[] = {
	    {"", 400, "empty"},
	    {"GET", 400, "no target"},
	    {"GET /", 400, "no version"},
	    {"GET  / HTTP/1.1", 400, "two spaces"},
	    {"GET x HTTP/1.1", 400, "target not origin-form"},
	    {"GET /a\tb HTTP/1.1", 400, "control character in target"},
	    {"G(T / HTTP/1.1", 400, "non-token method"},
	    {"GET / HTTP/2.0", 505, "HTTP/2.0 over HTTP/1 framing"},
	    {"GET / SPDY/3", 400, "not HTTP"},
	    {"GET / HTTP/1.1\r\nHost : x", 400, "space before colon"},
	    {"GET / HTTP/1.1\r\nHost: x\r\n folded", 400, "obsolete line folding"},
	    {"GET / HTTP/1.1\r\n: x", 400, "empty header name"},
	    {"GET / HTTP/1.1\r\nNoColon", 400, "header without colon"},
	    {"GET / HTTP/1.1\r\nX: a\001b", 400, "control character in value"},
	};
	struct http_head h;
	char *b;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		is_int(parse(cases[i].head, &h, &b), cases[i].status, "%s -> %d", cases[i].why,
		       cases[i].status);
		free(b);
	}
	char big[HTTP_MAX_HEADERS * 8 + 64];
	size_t off = (size_t)snprintf(big, sizeof(big), "GET / HTTP/1.1");
	for (int i = 0; i <= HTTP_MAX_HEADERS; i++)
		off += (size_t)snprintf(big + off, sizeof(big) - off, "\r\nA: %d", i % 10);
	is_int(parse(big, &h, &b), 431, "%d headers -> 431", HTTP_MAX_HEADERS + 1);
	free(b);
}

static void test_content_length(void)
{
	static const struct {
		const char *head;
		int rc;
		const char *why;
	} cases[] = {
	    {"POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 5", 0, "repeated, same value"},
	    {"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6", -1, "repeated, different values"},
	    {"POST / HTTP/1.1\r\nContent-Length: +5", -1, "sign"},
	    {"POST / HTTP/1.1\r\nContent-Length: 5, 5", -1, "list"},
	    {"POST / HTTP/1.1\r\nContent-Length: ", -1, "empty"},
	    {"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999", -1, "overflow"},
	};
	struct http_head h;
	size_t n;
	char *b;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		is_int(parse(cases[i].head, &h, &b), 0, "parses: %s", cases[i].why);
		is_int(http_head_content_length(&h, &n), cases[i].rc, "Content-Length %s -> %d", cases[i].why,
		       cases[i].rc);
		free(b);
	}
}

static void test_tokens(void)
{
	ok(http_header_has_token("keep-alive, Upgrade", "upgrade"), "token found case-insensitively");
	ok(http_header_has_token(" close ", "close"), "token with surrounding spaces");
	ok(!http_header_has_token("closed", "close"), "no prefix match");
	ok(!http_header_has_token(NULL, "close"), "absent header");
	ok(!http_header_has_token("", "close"), "empty header");
}

int main(void)
{
	test_valid();
	test_rejected();
	test_content_length();
	test_tokens();
	return tap_done();
}
