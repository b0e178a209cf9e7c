/*
 * toml_lex.c — TOML scalars: the four string forms with their escape and
 * trimming rules, decimal/hex/octal/binary integers, floats, and the four
 * date/time kinds; plus position tracking and the whole-document check for
 * UTF-8 and control characters.
 *
 * Each lexer validates against the TOML 1.0 ABNF exactly rather than leaning
 * on strtoll/strtod leniency (leading zeros, stray underscores, "0x" on a
 * float...), then converts the cleaned digits.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "toml/toml_lex.h"

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

int lx_col(struct toml_parser *p, size_t pos)
{
	size_t from = p->line_start;
	int col = 1;

	if (p->col > 0 && p->col_line_start == p->line_start && pos >= p->col_pos) {
		from = p->col_pos;
		col = p->col;
	}
	for (size_t i = from; i < pos && i < p->len; i++)
		if (((uint8_t)p->src[i] & 0xC0) != 0x80)
			col++;
	p->col_line_start = p->line_start;
	p->col_pos = pos;
	p->col = col;
	return col;
}

void lx_newline(struct toml_parser *p)
{
	p->line++;
	p->line_start = p->pos;
}

int lx_error_at(struct toml_parser *p, size_t pos, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	int line = 1, col = 1;

	/* Errors happen once per parse: recount from the start so any offset
	 * works. A leading byte-order mark is not a column. */
	size_t i = p->len >= 3 && memcmp(p->src, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;

	for (; i < pos && i < p->len; i++) {
		uint8_t c = (uint8_t)p->src[i];

		if (c == '\n') {
			line++;
			col = 1;
		} else if ((c & 0xC0) != 0x80) {
			col++;
		}
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->source)
		return err_set(p->e, "%s: line %d, column %d: %s", p->source, line, col, msg);
	return err_set(p->e, "line %d, column %d: %s", line, col, msg);
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if invalid. */
static size_t utf8_seq(const uint8_t *s, size_t avail)
{
	size_t n;
	uint8_t lo = 0x80, hi = 0xBF;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xC2 && s[0] <= 0xDF)
		n = 2;
	else if (s[0] >= 0xE0 && s[0] <= 0xEF)
		n = 3;
	else if (s[0] >= 0xF0 && s[0] <= 0xF4)
		n = 4;
	else
		return 0;
	if (avail < n)
		return 0;
	if (s[0] == 0xE0)
		lo = 0xA0; /* overlong */
	else if (s[0] == 0xED)
		hi = 0x9F; /* surrogates */
	else if (s[0] == 0xF0)
		lo = 0x90; /* overlong */
	else if (s[0] == 0xF4)
		hi = 0x8F; /* > U+10FFFF */
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if ((s[i] & 0xC0) != 0x80)
			return 0;
	return n;
}

int lx_check_text(struct toml_parser *p)
{
	const uint8_t *s = (const uint8_t *)p->src;

	for (size_t i = 0; i < p->len;) {
		uint8_t c = s[i];

		if (c >= 0x80) {
			size_t n = utf8_seq(s + i, p->len - i);

			if (!n)
				return lx_error_at(p, i, "invalid UTF-8");
			i += n;
			continue;
		}
		if (c == '\r' && (i + 1 >= p->len || s[i + 1] != '\n'))
			return lx_error_at(p, i, "carriage return not followed by a newline");
		if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F)
			return lx_error_at(p, i, "control character U+%04X must be escaped", c);
		i++;
	}
	return 0;
}

/* ---- strings ---- */

static int hex_val(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void put_utf8(struct buf *b, uint32_t cp)
{
	if (cp < 0x80) {
		buf_putc(b, (uint8_t)cp);
	} else if (cp < 0x800) {
		buf_putc(b, (uint8_t)(0xC0 | (cp >> 6)));
		buf_putc(b, (uint8_t)(0x80 | (cp & 0x3F)));
	} else if (cp < 0x10000) {
		buf_putc(b, (uint8_t)(0xE0 | (cp >> 12)));
		buf_putc(b, (uint8_t)(0x80 | ((cp >> 6) & 0x3F)));
		buf_putc(b, (uint8_t)(0x80 | (cp & 0x3F)));
	} else {
		buf_putc(b, (uint8_t)(0xF0 | (cp >> 18)));
		buf_putc(b, (uint8_t)(0x80 | ((cp >> 12) & 0x3F)));
		buf_putc(b, (uint8_t)(0x80 | ((cp >> 6) & 0x3F)));
		buf_putc(b, (uint8_t)(0x80 | (cp & 0x3F)));
	}
}

/* Escape sequence at pos (the backslash). */
static int lx_escape(struct toml_parser *p, struct buf *out)
{
	int c = lx_at(p, 1);
	const char *simple = NULL;
	int ndig = 0;
	uint32_t cp = 0;

	switch (c) {
	case 'b':
		simple = "\b";
		break;
	case 't':
		simple = "\t";
		break;
	case 'n':
		simple = "\n";
		break;
	case 'f':
		simple = "\f";
		break;
	case 'r':
		simple = "\r";
		break;
	case '"':
		simple = "\"";
		break;
	case '\\':
		simple = "\\";
		break;
	case 'u':
		ndig = 4;
		break;
	case 'U':
		ndig = 8;
		break;
	default:
		return lx_error(p, "invalid escape sequence");
	}
	if (simple) {
		buf_putc(out, (uint8_t)simple[0]);
		p->pos += 2;
		return 0;
	}
	for (int i = 0; i < ndig; i++) {
		int v = hex_val(lx_at(p, 2 + (size_t)i));

		if (v < 0)
			return lx_error(p, "\\%c escape needs %d hex digits", c, ndig);
		cp = cp << 4 | (uint32_t)v;
	}
	if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return lx_error(p, "escape is not a Unicode scalar value");
	put_utf8(out, cp);
	p->pos += 2 + (size_t)ndig;
	return 0;
}

static int single_line(struct toml_parser *p, struct buf *out, bool basic)
{
	size_t start = p->pos;
	int quote = basic ? '"' : '\'';

	p->pos++;
	for (;;) {
		int c = lx_peek(p);

		if (c < 0 || c == '\n' || c == '\r')
			return lx_error_at(p, start, "unterminated string");
		if (c == quote) {
			p->pos++;
			return 0;
		}
		if (basic && c == '\\') {
			if (lx_escape(p, out) < 0)
				return -1;
			continue;
		}
		buf_putc(out, (uint8_t)c);
		p->pos++;
	}
}

/* After a line-ending backslash: skip whitespace and newlines. */
static void skip_trimmed(struct toml_parser *p)
{
	for (;;) {
		int c = lx_peek(p);

		if (c == ' ' || c == '\t' || c == '\r') {
			p->pos++;
		} else if (c == '\n') {
			p->pos++;
			lx_newline(p);
		} else {
			return;
		}
	}
}

static int multi_line(struct toml_parser *p, struct buf *out, bool basic)
{
	size_t start = p->pos;
	int quote = basic ? '"' : '\'';

	p->pos += 3;
	if (lx_peek(p) == '\r' && lx_at(p, 1) == '\n')
		p->pos++;
	if (lx_peek(p) == '\n') {
		p->pos++;
		lx_newline(p);
	}
	for (;;) {
		int c = lx_peek(p);

		if (c < 0)
			return lx_error_at(p, start, "unterminated multi-line string");
		if (c == quote) {
			size_t n = 0;

			while (lx_at(p, n) == quote)
				n++;
			if (n < 3) {
				buf_append(out, p->src + p->pos, n);
				p->pos += n;
				continue;
			}
			if (n > 5)
				return lx_error_at(p, p->pos + 5,
						   "too many quotes at the end of a multi-line string");
			buf_append(out, p->src + p->pos, n - 3);
			p->pos += n;
			return 0;
		}
		if (basic && c == '\\') {
			size_t j = p->pos + 1;

			while (j < p->len && (p->src[j] == ' ' || p->src[j] == '\t'))
				j++;
			if (j < p->len && (p->src[j] == '\n' || p->src[j] == '\r')) {
				p->pos = j;
				skip_trimmed(p);
				continue;
			}
			if (lx_escape(p, out) < 0)
				return -1;
			continue;
		}
		if (c == '\r') { /* CRLF (lx_check_text guarantees the LF) */
			p->pos++;
			continue;
		}
		buf_putc(out, (uint8_t)c);
		p->pos++;
		if (c == '\n')
			lx_newline(p);
	}
}

static bool triple(const struct toml_parser *p, int q)
{
	return lx_at(p, 0) == q && lx_at(p, 1) == q && lx_at(p, 2) == q;
}

int lx_string(struct toml_parser *p, struct buf *out)
{
	int q = lx_peek(p);

	if (triple(p, q))
		return lx_error(p, "multi-line strings cannot be keys");
	return single_line(p, out, q == '"');
}

int lx_string_value(struct toml_parser *p, struct buf *out)
{
	int q = lx_peek(p);

	if (triple(p, q))
		return multi_line(p, out, q == '"');
	return single_line(p, out, q == '"');
}

/* ---- numbers ---- */

static bool digit_in_base(int c, int base)
{
	if (base == 16)
		return hex_val(c) >= 0;
	return c >= '0' && c < '0' + base;
}

/* Digits with single underscores between digits: "1_000", not "_1", "1__0", "1_". */
static bool digits_ok(const char *s, size_t n, int base)
{
	if (n == 0 || !digit_in_base(s[0], base) || !digit_in_base(s[n - 1], base))
		return false;
	for (size_t i = 1; i < n; i++) {
		if (s[i] == '_') {
			if (s[i - 1] == '_')
				return false;
		} else if (!digit_in_base(s[i], base)) {
			return false;
		}
	}
	return true;
}

static bool is_num_char(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	       c == '+' || c == '-' || c == '.';
}

static int lx_integer(struct toml_parser *p, const char *t, size_t n, struct toml_node *node)
{
	size_t i = 0;
	bool neg = false;
	int base = 10;
	uint64_t v = 0, limit;

	if (t[0] == '+' || t[0] == '-') {
		neg = t[0] == '-';
		i = 1;
	}
	if (n - i >= 2 && t[i] == '0' && (t[i + 1] == 'x' || t[i + 1] == 'o' || t[i + 1] == 'b')) {
		if (i)
			return lx_error(p, "a sign is not allowed on hex, octal or binary integers");
		base = t[i + 1] == 'x' ? 16 : t[i + 1] == 'o' ? 8 : 2;
		i += 2;
	}
	if (!digits_ok(t + i, n - i, base))
		return lx_error(p, "invalid integer '%.*s'", (int)n, t);
	if (base == 10 && t[i] == '0' && n - i > 1)
		return lx_error(p, "leading zeros are not allowed in integers");
	limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; i < n; i++) {
		uint64_t d;

		if (t[i] == '_')
			continue;
		d = (uint64_t)hex_val(t[i]);
		if (v > (limit - d) / (uint64_t)base)
			return lx_error(p, "integer '%.*s' does not fit in 64 bits", (int)n, t);
		v = v * (uint64_t)base + d;
	}
	node->type = TOML_INTEGER;
	node->v.integer = neg ? (int64_t)(0 - v) : (int64_t)v;
	return 0;
}

static size_t span_digits(const char *t, size_t i, size_t n)
{
	while (i < n && (is_digit(t[i]) || t[i] == '_'))
		i++;
	return i;
}

static int lx_float(struct toml_parser *p, const char *t, size_t n, struct toml_node *node)
{
	size_t i = (t[0] == '+' || t[0] == '-') ? 1 : 0, j;
	char clean[128];
	size_t cl = 0;

	node->type = TOML_FLOAT;
	if (n - i == 3 && (memcmp(t + i, "inf", 3) == 0 || memcmp(t + i, "nan", 3) == 0)) {
		double v = t[i] == 'i' ? (double)INFINITY : (double)NAN;
		node->v.fp = t[0] == '-' ? -v : v;
		return 0;
	}
	j = span_digits(t, i, n);
	if (!digits_ok(t + i, j - i, 10))
		return lx_error(p, "invalid float '%.*s'", (int)n, t);
	if (t[i] == '0' && j - i > 1)
		return lx_error(p, "leading zeros are not allowed in floats");
	if (j < n && t[j] == '.') {
		size_t k = span_digits(t, j + 1, n);

		if (!digits_ok(t + j + 1, k - j - 1, 10))
			return lx_error(p, "a float needs digits after the decimal point");
		j = k;
	}
	if (j < n && (t[j] == 'e' || t[j] == 'E')) {
		size_t k = j + 1;

		if (k < n && (t[k] == '+' || t[k] == '-'))
			k++;
		j = span_digits(t, k, n);
		if (!digits_ok(t + k, j - k, 10))
			return lx_error(p, "invalid float exponent in '%.*s'", (int)n, t);
	}
	if (j != n)
		return lx_error(p, "invalid float '%.*s'", (int)n, t);
	if (n >= sizeof(clean))
		return lx_error(p, "float literal too long");
	for (size_t k = 0; k < n; k++)
		if (t[k] != '_')
			clean[cl++] = t[k];
	clean[cl] = '\0';
	errno = 0;
	node->v.fp = strtod(clean, NULL);
	return 0;
}

/* ---- dates and times ---- */

static bool digits_at(const struct toml_parser *p, size_t off, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_digit(lx_at(p, off + i)))
			return false;
	return true;
}

static int num_at(const struct toml_parser *p, size_t off, size_t n)
{
	int v = 0;

	for (size_t i = 0; i < n; i++)
		v = v * 10 + (lx_at(p, off + i) - '0');
	return v;
}

static int days_in_month(int y, int m)
{
	static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : dim[m - 1];
}

/* HH:MM:SS[.frac] at pos. */
static int lx_time(struct toml_parser *p, struct toml_datetime *d)
{
	if (!digits_at(p, 0, 2) || lx_at(p, 2) != ':' || !digits_at(p, 3, 2) || lx_at(p, 5) != ':' ||
	    !digits_at(p, 6, 2))
		return lx_error(p, "invalid time: expected HH:MM:SS");
	d->hour = num_at(p, 0, 2);
	d->minute = num_at(p, 3, 2);
	d->second = num_at(p, 6, 2);
	if (d->hour > 23 || d->minute > 59 || d->second > 60)
		return lx_error(p, "time out of range");
	p->pos += 8;
	if (lx_peek(p) == '.') {
		p->pos++;
		if (!is_digit(lx_peek(p)))
			return lx_error(p, "expected digits after the decimal point");
		while (is_digit(lx_peek(p))) {
			if (d->frac_digits < 9) {
				d->nanosecond = d->nanosecond * 10 + (lx_peek(p) - '0');
				d->frac_digits++;
			}
			p->pos++;
		}
		for (int k = d->frac_digits; k < 9; k++)
			d->nanosecond *= 10;
	}
	return 0;
}

static int lx_datetime(struct toml_parser *p, struct toml_node *n)
{
	struct toml_datetime *d = &n->v.dt;
	int c;

	if (lx_at(p, 4) != '-' || !digits_at(p, 5, 2) || lx_at(p, 7) != '-' || !digits_at(p, 8, 2))
		return lx_error(p, "invalid date: expected YYYY-MM-DD");
	d->year = num_at(p, 0, 4);
	d->month = num_at(p, 5, 2);
	d->day = num_at(p, 8, 2);
	if (d->month < 1 || d->month > 12 || d->day < 1 || d->day > days_in_month(d->year, d->month))
		return lx_error(p, "date out of range");
	p->pos += 10;
	c = lx_peek(p);
	if (!(c == 'T' || c == 't' || (c == ' ' && digits_at(p, 1, 2) && lx_at(p, 3) == ':'))) {
		n->type = TOML_DATE_LOCAL;
		return 0;
	}
	p->pos++;
	if (lx_time(p, d) < 0)
		return -1;
	c = lx_peek(p);
	if (c == 'Z' || c == 'z') {
		d->offset_z = true;
		p->pos++;
		n->type = TOML_DATETIME;
	} else if (c == '+' || c == '-') {
		int oh, om;

		if (!digits_at(p, 1, 2) || lx_at(p, 3) != ':' || !digits_at(p, 4, 2))
			return lx_error(p, "invalid time offset: expected +HH:MM");
		oh = num_at(p, 1, 2);
		om = num_at(p, 4, 2);
		if (oh > 23 || om > 59)
			return lx_error(p, "time offset out of range");
		d->offset_minutes = (c == '-' ? -1 : 1) * (oh * 60 + om);
		p->pos += 6;
		n->type = TOML_DATETIME;
	} else {
		n->type = TOML_DATETIME_LOCAL;
	}
	return 0;
}

int lx_number_or_datetime(struct toml_parser *p, struct toml_node *n)
{
	size_t start = p->pos, end = p->pos;
	const char *t;
	bool is_float = false;

	if (digits_at(p, 0, 4) && lx_at(p, 4) == '-')
		return lx_datetime(p, n);
	if (digits_at(p, 0, 2) && lx_at(p, 2) == ':') {
		n->type = TOML_TIME_LOCAL;
		return lx_time(p, &n->v.dt);
	}
	while (end < p->len && is_num_char((uint8_t)p->src[end]))
		end++;
	if (end == start)
		return lx_error(p, "invalid value");
	t = p->src + start;
	if (!(end - start > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'o' || t[1] == 'b'))) {
		for (size_t i = 0; i < end - start; i++)
			if (t[i] == '.' || t[i] == 'e' || t[i] == 'E' || t[i] == 'n' || t[i] == 'i')
				is_float = true;
	}
	if ((is_float ? lx_float(p, t, end - start, n) : lx_integer(p, t, end - start, n)) < 0)
		return -1;
	p->pos = end;
	return 0;
}
