/*
 * head.c — HTTP/1.1 request head parsing (see head.h).
 */
#include "http/head.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

static bool is_tchar(int ch)
{
	return isalnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static void skip_ows(char **p)
{
	while (**p == ' ' || **p == '\t')
		(*p)++;
}

static void rtrim_ows(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
}

bool http_header_has_token(const char *v, const char *token)
{
	size_t tl = strlen(token);

	while (v && *v) {
		while (*v == ' ' || *v == '\t' || *v == ',')
			v++;
		const char *end = v;

		while (*end && *end != ',')
			end++;
		const char *te = end;

		while (te > v && (te[-1] == ' ' || te[-1] == '\t'))
			te--;
		if ((size_t)(te - v) == tl && strncasecmp(v, token, tl) == 0)
			return true;
		v = end;
	}
	return false;
}

int http_head_parse(struct http_head *r, char *head)
{
	char *line = head, *next, *sp, *q;

	next = strchr(line, '\n');
	if (next)
		*next++ = '\0';
	if (*line && line[strlen(line) - 1] == '\r')
		line[strlen(line) - 1] = '\0';
	/* METHOD SP target SP HTTP/1.x */
	r->method = line;
	for (sp = line; is_tchar((unsigned char)*sp); sp++)
		;
	if (sp == line || *sp != ' ')
		return 400;
	*sp++ = '\0';
	r->path = sp;
	sp = strchr(sp, ' ');
	if (!sp)
		return 400;
	*sp++ = '\0';
	if (r->path[0] != '/')
		return 400;
	for (const char *t = r->path; *t; t++)
		if ((unsigned char)*t <= 0x20 || *t == 0x7f)
			return 400;
	if (strcmp(sp, "HTTP/1.1") == 0)
		r->minor = 1;
	else if (strcmp(sp, "HTTP/1.0") == 0)
		r->minor = 0;
	else if (strncmp(sp, "HTTP/", 5) == 0)
		return 505;
	else
		return 400;
	q = strchr(r->path, '?');
	if (q) {
		*q++ = '\0';
		r->query = q;
	}
	while (next && *next) {
		char *colon, *name;

		line = next;
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (*line && line[strlen(line) - 1] == '\r')
			line[strlen(line) - 1] = '\0';
		if (!*line)
			break;
		if (r->n_hdrs == HTTP_MAX_HEADERS)
			return 431;
		name = line;
		for (colon = line; is_tchar((unsigned char)*colon); colon++)
			;
		/* No obsolete folding, no space before the colon, no empty name. */
		if (colon == name || *colon != ':')
			return 400;
		*colon++ = '\0';
		skip_ows(&colon);
		rtrim_ows(colon);
		for (const char *t = colon; *t; t++)
			if (((unsigned char)*t < 0x20 && *t != '\t') || *t == 0x7f)
				return 400;
		r->hdrs[r->n_hdrs].name = name;
		r->hdrs[r->n_hdrs].value = colon;
		r->n_hdrs++;
	}
	return 0;
}

int http_head_content_length(const struct http_head *r, size_t *out)
{
	bool seen = false;

	*out = 0;
	for (size_t i = 0; i < r->n_hdrs; i++) {
		unsigned long long v = 0;
		const char *p = r->hdrs[i].value;

		if (strcasecmp(r->hdrs[i].name, "Content-Length") != 0)
			continue;
		if (!*p)
			return -1;
		for (; *p; p++) {
			if (!isdigit((unsigned char)*p) || v > (1ULL << 50))
				return -1;
			v = v * 10 + (unsigned)(*p - '0');
		}
		if (seen && v != *out)
			return -1;
		seen = true;
		*out = (size_t)v;
	}
	return 0;
}
