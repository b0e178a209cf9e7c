/*
 * toml_lex.h — parser state and the scalar lexers (strings, keys, numbers,
 * date/times), private to lib/toml. toml_parse.c drives the document
 * structure; toml_lex.c turns the text of one scalar into a value.
 */
#ifndef DSTACK_TOML_LEX_H
#define DSTACK_TOML_LEX_H

#include "core/buf.h"
#include "toml/toml_tree.h"

struct toml_parser {
	const char *src;
	size_t len, pos;
	const char *source; /* name for messages */
	struct err *e;
	int line;          /* 1-based line of pos */
	size_t line_start; /* offset where that line starts */
	/* Column cache: the column of col_pos on the current line, so columns
	 * (in code points) cost amortised O(1) even on one huge line. */
	size_t col_line_start, col_pos;
	int col;
	struct toml_node *root, *cur;
};

static inline int lx_peek(const struct toml_parser *p)
{
	return p->pos < p->len ? (uint8_t)p->src[p->pos] : -1;
}

static inline int lx_at(const struct toml_parser *p, size_t off)
{
	return p->pos + off < p->len ? (uint8_t)p->src[p->pos + off] : -1;
}

/* Column (1-based, in code points) of byte offset pos on the current line. */
int lx_col(struct toml_parser *p, size_t pos);
/* Record a newline consumed at pos - 1 (pos is the first byte of the next line). */
void lx_newline(struct toml_parser *p);
/* Set "<source>: line L, column C: <msg>" at byte offset pos. Returns -1. */
int lx_error_at(struct toml_parser *p, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define lx_error(p, ...) lx_error_at((p), (p)->pos, __VA_ARGS__)

/* Reject invalid UTF-8 and control characters (other than tab, LF, CRLF)
 * anywhere in the document, before any parsing. */
int lx_check_text(struct toml_parser *p);

/* A basic ("…") or literal ('…') single-line string; used for quoted keys
 * too. The opening quote is at pos. Decoded bytes go to out. */
int lx_string(struct toml_parser *p, struct buf *out);
/* Any of the four string forms, at pos. */
int lx_string_value(struct toml_parser *p, struct buf *out);
/* Integer, float, or date/time at pos; fills n's type and value. */
int lx_number_or_datetime(struct toml_parser *p, struct toml_node *n);

#endif
