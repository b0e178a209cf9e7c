/*
 * toml.h — TOML 1.0 parser producing a tree of nodes.
 *
 * Every dstack service reads its configuration as TOML (kms.toml,
 * gateway.toml, vmm.toml), so the parser is strict: it accepts exactly the
 * TOML 1.0 language (checked against the toml-test suite) and rejects
 * everything else with "<source>: line L, column C: <message>". Columns count
 * characters (code points), both starting at 1.
 *
 * The tree is plain data: a table or array node owns its children, in
 * document order. Nodes are read-only for callers; free the root with
 * toml_free(). Hostile input is bounded: nesting deeper than TOML_MAX_DEPTH
 * and documents larger than TOML_MAX_INPUT are rejected, and the parser
 * never recurses more than TOML_MAX_DEPTH levels.
 *
 *     struct err e = ERR_INIT;
 *     struct toml_node *doc = toml_parse(text, len, "kms.toml", &e);
 *     const struct toml_node *port = toml_path(doc, "rpc.port");
 *     if (port && port->type == TOML_INTEGER) use(port->v.integer);
 *     toml_free(doc);
 */
#ifndef DSTACK_TOML_TOML_H
#define DSTACK_TOML_TOML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/err.h"

#define TOML_MAX_DEPTH 128
#define TOML_MAX_INPUT (16u << 20)

enum toml_type {
	TOML_TABLE,
	TOML_ARRAY,
	TOML_STRING,
	TOML_INTEGER,
	TOML_FLOAT,
	TOML_BOOL,
	TOML_DATETIME,       /* offset date-time: 1979-05-27T07:32:00Z */
	TOML_DATETIME_LOCAL, /* 1979-05-27T07:32:00 */
	TOML_DATE_LOCAL,     /* 1979-05-27 */
	TOML_TIME_LOCAL,     /* 07:32:00 */
};

/* The four date/time kinds share one struct; fields a kind lacks are 0. */
struct toml_datetime {
	int year, month, day;
	int hour, minute, second;
	int nanosecond;
	int frac_digits;    /* fractional digits as written (capped at 9) */
	int offset_minutes; /* TOML_DATETIME only; east of UTC */
	bool offset_z;      /* written as "Z"/"z" rather than +00:00 */
};

struct toml_node {
	enum toml_type type;
	/* Key in the parent table (NUL-terminated; key_len counts an embedded
	 * NUL from "\u0000"), NULL for array items and the root. */
	char *key;
	size_t key_len;
	int line, col;         /* where the value (or table header) starts */
	int key_line, key_col; /* where the key starts (0 for array items) */
	union {
		struct {
			char *ptr; /* NUL-terminated; may hold embedded NULs */
			size_t len;
		} str;
		int64_t integer;
		double fp;
		bool boolean;
		struct toml_datetime dt;
		struct {
			struct toml_node **items; /* members or items, in order */
			size_t count;
		} list; /* TOML_TABLE and TOML_ARRAY */
	} v;
	/* Parser bookkeeping; not for callers. */
	unsigned flags;
	int depth;
	size_t cap, index_cap;
	struct toml_node **index;
};

/* Parse a whole document. `source` names it in error messages (may be NULL).
 * Returns the root table, or NULL with e set. */
struct toml_node *toml_parse(const char *text, size_t len, const char *source, struct err *e);
void toml_free(struct toml_node *root);

/* Member `key` of a table (NULL if absent or t is not a table). */
const struct toml_node *toml_get(const struct toml_node *t, const char *key);
const struct toml_node *toml_getn(const struct toml_node *t, const char *key, size_t key_len);
/* Follow a dotted path of bare keys ("core.admin.port") from a table. */
const struct toml_node *toml_path(const struct toml_node *t, const char *path);

/* "table", "array", "string", "integer", "float", "bool", "datetime",
 * "datetime-local", "date-local", "time-local" (the toml-test names). */
const char *toml_type_name(enum toml_type t);

/* RFC 3339 text of a date/time node ("1979-05-27T07:32:00.5Z"); fractional
 * digits as written, offsets as +HH:MM, Z kept. Returns the length. */
size_t toml_datetime_format(const struct toml_node *n, char *out, size_t out_size);

/* Plain JSON view: tables → objects, arrays → arrays, integers, floats (nan
 * and ±inf become the strings "nan"/"inf"/"-inf": JSON has no such numbers),
 * booleans, and date/times as their RFC 3339 strings. NULL on allocation
 * failure. */
json_t *toml_to_json(const struct toml_node *n);

/* toml-test's tagged JSON: every scalar becomes {"type": T, "value": text}. */
json_t *toml_to_tagged_json(const struct toml_node *n);

#endif
