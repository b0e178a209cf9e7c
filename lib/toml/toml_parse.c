/*
 * toml_parse.c — TOML 1.0 document structure: key/value pairs, dotted keys,
 * [table] and [[array-of-tables]] headers, arrays and inline tables.
 *
 * The redefinition rules are enforced with a few flags on each table that
 * record how it came to exist (toml_tree.h):
 *   - a [header] may define a table once; a table that so far only exists as
 *     a prefix of another header (IMPLICIT) may still be defined later;
 *   - a table created by dotted keys can be passed through by a header
 *     ([a.b.c] after a.b.x = 1) but never defined by one ([a.b]);
 *   - dotted keys may only extend tables that dotted keys created;
 *   - inline tables are closed once their '}' is read;
 *   - [[x]] appends only to arrays that [[x]] created; a header path that
 *     crosses such an array continues in its last table.
 * Recursion (arrays, inline tables) and tree depth are capped at
 * TOML_MAX_DEPTH, so no input can exhaust the stack here or in callers
 * that walk the tree recursively.
 */
#include <stdlib.h>
#include <string.h>

#include "toml/toml_lex.h"

struct key_part {
	char *s;
	size_t len;
	size_t pos;
	int line, col;
};

/* Parts live on the heap: keyval() recurses through inline tables, so its
 * frame must stay small. */
struct key {
	struct key_part *parts;
	size_t n, cap;
};

static void key_clear(struct key *k)
{
	for (size_t i = 0; i < k->n; i++)
		free(k->parts[i].s);
	free(k->parts);
	k->parts = NULL;
	k->n = k->cap = 0;
}

static struct toml_node *parse_value(struct toml_parser *p, int depth);

static void skip_ws(struct toml_parser *p)
{
	while (lx_peek(p) == ' ' || lx_peek(p) == '\t')
		p->pos++;
}

static void skip_comment(struct toml_parser *p)
{
	if (lx_peek(p) != '#')
		return;
	while (p->pos < p->len && p->src[p->pos] != '\n' && p->src[p->pos] != '\r')
		p->pos++;
}

/* Consume a newline (LF or CRLF) if there is one. */
static bool eat_newline(struct toml_parser *p)
{
	if (lx_peek(p) == '\r' && lx_at(p, 1) == '\n')
		p->pos++;
	if (lx_peek(p) != '\n')
		return false;
	p->pos++;
	lx_newline(p);
	return true;
}

/* Whitespace, comments and newlines, as allowed between array items. */
static void skip_ws_nl(struct toml_parser *p)
{
	do {
		skip_ws(p);
		skip_comment(p);
	} while (eat_newline(p));
}

static int expect_eol(struct toml_parser *p, const char *after)
{
	skip_ws(p);
	skip_comment(p);
	if (lx_peek(p) < 0 || eat_newline(p))
		return 0;
	return lx_error(p, "expected end of line after %s", after);
}

static bool is_bare(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
	       c == '-';
}

/* A possibly dotted key; leaves pos after trailing whitespace. */
static int parse_key(struct toml_parser *p, struct key *k)
{
	for (;;) {
		struct key_part *part;
		int c;

		skip_ws(p);
		if (k->n == TOML_MAX_DEPTH)
			return lx_error(p, "key has too many parts");
		if (k->n == k->cap) {
			k->cap = k->cap ? k->cap * 2 : 4;
			k->parts = realloc(k->parts, k->cap * sizeof(*k->parts));
			if (!k->parts)
				abort();
		}
		part = &k->parts[k->n];
		part->pos = p->pos;
		part->line = p->line;
		part->col = lx_col(p, p->pos);
		c = lx_peek(p);
		if (c == '"' || c == '\'') {
			struct buf b = BUF_INIT;

			if (lx_string(p, &b) < 0) {
				buf_free(&b);
				return -1;
			}
			buf_putc(&b, 0); /* never leave data NULL for an empty key */
			part->s = (char *)buf_steal(&b, &part->len);
			part->len--;
		} else if (is_bare(c)) {
			size_t start = p->pos;

			while (is_bare(lx_peek(p)))
				p->pos++;
			part->len = p->pos - start;
			part->s = strndup(p->src + start, part->len);
			if (!part->s)
				abort();
		} else {
			return lx_error(p, "expected a key");
		}
		k->n++;
		skip_ws(p);
		if (lx_peek(p) != '.')
			return 0;
		p->pos++;
	}
}

static struct toml_node *new_table(struct toml_parser *p, struct toml_node *parent,
				   const struct key_part *part, unsigned flags)
{
	struct toml_node *t;

	if (parent->depth + 1 > TOML_MAX_DEPTH) {
		lx_error_at(p, part->pos, "tables nested too deeply");
		return NULL;
	}
	t = toml_node_new(TOML_TABLE, part->line, part->col);
	t->key_line = part->line;
	t->key_col = part->col;
	t->flags = flags;
	toml_table_put(parent, part->s, part->len, t);
	return t;
}

/* key = value, into table t (the current table, or an inline table being read). */
static int keyval(struct toml_parser *p, struct toml_node *t)
{
	struct key k = {NULL, 0, 0};
	struct key_part *last;
	struct toml_node *v;
	int rc = -1;

	if (parse_key(p, &k) < 0)
		goto out;
	if (lx_peek(p) != '=') {
		lx_error(p, "expected '=' after a key");
		goto out;
	}
	p->pos++;
	skip_ws(p);
	for (size_t i = 0; i + 1 < k.n; i++) {
		struct toml_node *m = (struct toml_node *)toml_getn(t, k.parts[i].s, k.parts[i].len);

		if (!m) {
			m = new_table(p, t, &k.parts[i], TOML_F_DOTTED);
			if (!m)
				goto out;
		} else if (m->type != TOML_TABLE || !(m->flags & TOML_F_DOTTED) ||
			   (m->flags & TOML_F_INLINE)) {
			lx_error_at(p, k.parts[i].pos,
				    "cannot add keys to '%.*s' with a dotted key: already defined",
				    (int)k.parts[i].len, k.parts[i].s);
			goto out;
		}
		t = m;
	}
	last = &k.parts[k.n - 1];
	if (toml_getn(t, last->s, last->len)) {
		lx_error_at(p, last->pos, "duplicate key '%.*s'", (int)last->len, last->s);
		goto out;
	}
	v = parse_value(p, t->depth + 1);
	if (!v)
		goto out;
	v->key_line = last->line;
	v->key_col = last->col;
	toml_table_put(t, last->s, last->len, v);
	rc = 0;
out:
	key_clear(&k);
	return rc;
}

static struct toml_node *parse_array(struct toml_parser *p, struct toml_node *arr)
{
	p->pos++; /* [ */
	for (;;) {
		struct toml_node *item;

		skip_ws_nl(p);
		if (lx_peek(p) == ']')
			break;
		item = parse_value(p, arr->depth + 1);
		if (!item)
			goto fail;
		toml_array_push(arr, item);
		skip_ws_nl(p);
		if (lx_peek(p) == ',') {
			p->pos++;
			continue;
		}
		if (lx_peek(p) == ']')
			break;
		lx_error(p, "expected ',' or ']' in array");
		goto fail;
	}
	p->pos++;
	return arr;
fail:
	toml_free(arr);
	return NULL;
}

static struct toml_node *parse_inline_table(struct toml_parser *p, struct toml_node *t)
{
	p->pos++; /* { */
	skip_ws(p);
	if (lx_peek(p) != '}') {
		for (;;) {
			if (keyval(p, t) < 0)
				goto fail;
			skip_ws(p);
			if (lx_peek(p) == '}')
				break;
			if (lx_peek(p) != ',') {
				lx_error(p, "expected ',' or '}' in inline table");
				goto fail;
			}
			p->pos++;
			skip_ws(p);
			if (lx_peek(p) == '}') {
				lx_error(p, "trailing comma in inline table");
				goto fail;
			}
		}
	}
	p->pos++;
	t->flags = TOML_F_INLINE;
	return t;
fail:
	toml_free(t);
	return NULL;
}

static struct toml_node *parse_value(struct toml_parser *p, int depth)
{
	int line = p->line, col = lx_col(p, p->pos);
	int c = lx_peek(p);
	struct toml_node *n;

	if (depth > TOML_MAX_DEPTH) {
		lx_error(p, "values nested too deeply");
		return NULL;
	}
	if (c == '"' || c == '\'') {
		struct buf b = BUF_INIT;

		if (lx_string_value(p, &b) < 0) {
			buf_free(&b);
			return NULL;
		}
		buf_append(&b, "", 0); /* allocated and NUL-terminated even when empty */
		n = toml_node_new(TOML_STRING, line, col);
		n->v.str.ptr = (char *)buf_steal(&b, &n->v.str.len);
		return n;
	}
	n = toml_node_new(TOML_BOOL, line, col);
	n->depth = depth;
	if (c == '[') {
		n->type = TOML_ARRAY;
		return parse_array(p, n);
	}
	if (c == '{') {
		n->type = TOML_TABLE;
		return parse_inline_table(p, n);
	}
	if (p->len - p->pos >= 4 && memcmp(p->src + p->pos, "true", 4) == 0) {
		n->v.boolean = true;
		p->pos += 4;
		return n;
	}
	if (p->len - p->pos >= 5 && memcmp(p->src + p->pos, "false", 5) == 0) {
		p->pos += 5;
		return n;
	}
	if ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == 'i' || c == 'n') {
		if (lx_number_or_datetime(p, n) == 0)
			return n;
	} else {
		lx_error(p, c < 0 ? "expected a value, found end of file" : "expected a value");
	}
	toml_free(n);
	return NULL;
}

/* [a.b.c] or [[a.b.c]] at pos. */
static int table_header(struct toml_parser *p)
{
	bool aot = lx_at(p, 1) == '[';
	int line = p->line, col = lx_col(p, p->pos);
	struct toml_node *t = p->root, *m;
	struct key_part *last;
	struct key k = {NULL, 0, 0};
	int rc = -1;

	p->pos += aot ? 2 : 1;
	if (parse_key(p, &k) < 0)
		goto out;
	if (lx_peek(p) != ']' || (aot && lx_at(p, 1) != ']')) {
		lx_error(p, aot ? "expected ']]' to close the array-of-tables header"
				: "expected ']' to close the table header");
		goto out;
	}
	p->pos += aot ? 2 : 1;
	if (expect_eol(p, "a table header") < 0)
		goto out;
	for (size_t i = 0; i + 1 < k.n; i++) {
		struct key_part *part = &k.parts[i];

		m = (struct toml_node *)toml_getn(t, part->s, part->len);
		if (!m) {
			m = new_table(p, t, part, TOML_F_IMPLICIT);
			if (!m)
				goto out;
		} else if (m->type == TOML_ARRAY && (m->flags & TOML_F_AOT)) {
			m = m->v.list.items[m->v.list.count - 1];
		} else if (m->type != TOML_TABLE || (m->flags & TOML_F_INLINE)) {
			lx_error_at(p, part->pos, "'%.*s' is already defined and is not an extensible table",
				    (int)part->len, part->s);
			goto out;
		}
		t = m;
	}
	last = &k.parts[k.n - 1];
	m = (struct toml_node *)toml_getn(t, last->s, last->len);
	if (aot) {
		struct toml_node *el;

		if (!m) {
			if (t->depth + 2 > TOML_MAX_DEPTH) {
				lx_error_at(p, last->pos, "tables nested too deeply");
				goto out;
			}
			m = toml_node_new(TOML_ARRAY, line, col);
			m->key_line = last->line;
			m->key_col = last->col;
			m->flags = TOML_F_AOT;
			toml_table_put(t, last->s, last->len, m);
		} else if (m->type != TOML_ARRAY || !(m->flags & TOML_F_AOT)) {
			lx_error_at(p, last->pos, "cannot define array of tables '%.*s': already defined",
				    (int)last->len, last->s);
			goto out;
		}
		el = toml_node_new(TOML_TABLE, line, col);
		el->flags = TOML_F_EXPLICIT;
		toml_array_push(m, el);
		p->cur = el;
	} else if (!m) {
		m = new_table(p, t, last, TOML_F_EXPLICIT);
		if (!m)
			goto out;
		m->line = line;
		m->col = col;
		p->cur = m;
	} else if (m->type == TOML_TABLE && m->flags == TOML_F_IMPLICIT) {
		m->flags = TOML_F_EXPLICIT;
		m->line = line;
		m->col = col;
		p->cur = m;
	} else {
		lx_error_at(p, last->pos, "table '%.*s' is already defined", (int)last->len, last->s);
		goto out;
	}
	rc = 0;
out:
	key_clear(&k);
	return rc;
}

struct toml_node *toml_parse(const char *text, size_t len, const char *source, struct err *e)
{
	struct toml_parser p = {.src = text, .len = len, .source = source, .e = e, .line = 1};

	if (len > TOML_MAX_INPUT) {
		err_set(e, "%s: document larger than %u bytes", source ? source : "TOML", TOML_MAX_INPUT);
		return NULL;
	}
	if (lx_check_text(&p) < 0)
		return NULL;
	if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
		p.pos = p.line_start = 3;
	p.root = p.cur = toml_node_new(TOML_TABLE, 1, 1);
	p.root->flags = TOML_F_EXPLICIT;
	for (;;) {
		int c;

		skip_ws(&p);
		c = lx_peek(&p);
		if (c < 0)
			break;
		if (c == '#' || c == '\n' || c == '\r') {
			if (expect_eol(&p, "a comment") < 0)
				goto fail;
		} else if (c == '[') {
			if (table_header(&p) < 0)
				goto fail;
		} else if (keyval(&p, p.cur) < 0 || expect_eol(&p, "a value") < 0) {
			goto fail;
		}
	}
	return p.root;
fail:
	toml_free(p.root);
	return NULL;
}
