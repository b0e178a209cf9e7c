/*
 * toml_tree.c — the TOML node tree: construction, lookup, freeing, and the
 * RFC 3339 rendering of date/times.
 *
 * Tables store members in document order (what callers iterate) and, once a
 * table has more than a handful of members, an open-addressing hash index so
 * lookups stay O(1) even for hostile documents with very many keys.
 * Allocation failure aborts, as in core/buf.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "toml/toml_tree.h"

#define INDEX_MIN_COUNT 8

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q)
		abort();
	return q;
}

struct toml_node *toml_node_new(enum toml_type type, int line, int col)
{
	struct toml_node *n = calloc(1, sizeof(*n));

	if (!n)
		abort();
	n->type = type;
	n->line = line;
	n->col = col;
	return n;
}

static uint64_t key_hash(const char *k, size_t len)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < len; i++) {
		h ^= (uint8_t)k[i];
		h *= 1099511628211ull;
	}
	return h;
}

static void index_insert(struct toml_node *t, struct toml_node *m)
{
	size_t mask = t->index_cap - 1;
	size_t i = key_hash(m->key, m->key_len) & mask;

	while (t->index[i])
		i = (i + 1) & mask;
	t->index[i] = m;
}

static void index_rebuild(struct toml_node *t)
{
	size_t cap = 16;

	while (cap < t->v.list.count * 2)
		cap *= 2;
	free(t->index);
	t->index = calloc(cap, sizeof(*t->index));
	if (!t->index)
		abort();
	t->index_cap = cap;
	for (size_t i = 0; i < t->v.list.count; i++)
		index_insert(t, t->v.list.items[i]);
}

static void list_push(struct toml_node *c, struct toml_node *item)
{
	if (c->v.list.count == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 4;
		c->v.list.items = xrealloc(c->v.list.items, c->cap * sizeof(*c->v.list.items));
	}
	c->v.list.items[c->v.list.count++] = item;
}

void toml_array_push(struct toml_node *arr, struct toml_node *item)
{
	item->depth = arr->depth + 1;
	list_push(arr, item);
}

void toml_table_put(struct toml_node *t, const char *key, size_t key_len, struct toml_node *member)
{
	member->key = xrealloc(NULL, key_len + 1);
	memcpy(member->key, key, key_len);
	member->key[key_len] = '\0';
	member->key_len = key_len;
	member->depth = t->depth + 1;
	list_push(t, member);
	if (t->index && t->v.list.count * 2 <= t->index_cap)
		index_insert(t, member);
	else if (t->v.list.count >= INDEX_MIN_COUNT)
		index_rebuild(t);
}

void toml_free(struct toml_node *n)
{
	if (!n)
		return;
	if (n->type == TOML_TABLE || n->type == TOML_ARRAY) {
		for (size_t i = 0; i < n->v.list.count; i++)
			toml_free(n->v.list.items[i]);
		free(n->v.list.items);
		free(n->index);
	} else if (n->type == TOML_STRING) {
		free(n->v.str.ptr);
	}
	free(n->key);
	free(n);
}

const struct toml_node *toml_getn(const struct toml_node *t, const char *key, size_t key_len)
{
	if (!t || t->type != TOML_TABLE)
		return NULL;
	if (t->index) {
		size_t mask = t->index_cap - 1;

		for (size_t i = key_hash(key, key_len) & mask; t->index[i]; i = (i + 1) & mask) {
			const struct toml_node *m = t->index[i];

			if (m->key_len == key_len && memcmp(m->key, key, key_len) == 0)
				return m;
		}
		return NULL;
	}
	for (size_t i = 0; i < t->v.list.count; i++) {
		const struct toml_node *m = t->v.list.items[i];

		if (m->key_len == key_len && memcmp(m->key, key, key_len) == 0)
			return m;
	}
	return NULL;
}

const struct toml_node *toml_get(const struct toml_node *t, const char *key)
{
	return toml_getn(t, key, strlen(key));
}

const struct toml_node *toml_path(const struct toml_node *t, const char *path)
{
	while (t) {
		const char *dot = strchr(path, '.');
		size_t len = dot ? (size_t)(dot - path) : strlen(path);

		t = toml_getn(t, path, len);
		if (!dot)
			return t;
		path = dot + 1;
	}
	return NULL;
}

const char *toml_type_name(enum toml_type t)
{
	switch (t) {
	case TOML_TABLE:
		return "table";
	case TOML_ARRAY:
		return "array";
	case TOML_STRING:
		return "string";
	case TOML_INTEGER:
		return "integer";
	case TOML_FLOAT:
		return "float";
	case TOML_BOOL:
		return "bool";
	case TOML_DATETIME:
		return "datetime";
	case TOML_DATETIME_LOCAL:
		return "datetime-local";
	case TOML_DATE_LOCAL:
		return "date-local";
	case TOML_TIME_LOCAL:
		return "time-local";
	}
	return "unknown";
}

size_t toml_datetime_format(const struct toml_node *n, char *out, size_t out_size)
{
	const struct toml_datetime *d = &n->v.dt;
	char tmp[64];
	size_t len = 0;

	if (n->type == TOML_DATETIME || n->type == TOML_DATETIME_LOCAL || n->type == TOML_DATE_LOCAL)
		len += (size_t)snprintf(tmp + len, sizeof(tmp) - len, "%04d-%02d-%02d", d->year, d->month,
					d->day);
	if (n->type == TOML_DATETIME || n->type == TOML_DATETIME_LOCAL)
		tmp[len++] = 'T';
	if (n->type != TOML_DATE_LOCAL) {
		len += (size_t)snprintf(tmp + len, sizeof(tmp) - len, "%02d:%02d:%02d", d->hour, d->minute,
					d->second);
		if (d->frac_digits > 0) {
			char frac[16];
			snprintf(frac, sizeof(frac), "%09d", d->nanosecond);
			len += (size_t)snprintf(tmp + len, sizeof(tmp) - len, ".%.*s", d->frac_digits, frac);
		}
	}
	if (n->type == TOML_DATETIME) {
		if (d->offset_z) {
			tmp[len++] = 'Z';
		} else {
			int off = d->offset_minutes < 0 ? -d->offset_minutes : d->offset_minutes;
			len += (size_t)snprintf(tmp + len, sizeof(tmp) - len, "%c%02d:%02d",
						d->offset_minutes < 0 ? '-' : '+', off / 60, off % 60);
		}
	}
	tmp[len] = '\0';
	if (out_size)
		snprintf(out, out_size, "%s", tmp);
	return len;
}
