/*
 * toml_tree.h — node construction shared by the TOML parser files (private
 * to lib/toml). Tables keep members in document order plus a hash index once
 * they grow, so a document with many keys parses in linear time.
 */
#ifndef DSTACK_TOML_TREE_H
#define DSTACK_TOML_TREE_H

#include "toml/toml.h"

/* Table flags: how a table came to exist decides what may extend it later. */
enum {
	TOML_F_IMPLICIT = 1u << 0, /* created as a prefix of a [header] path */
	TOML_F_EXPLICIT = 1u << 1, /* defined by its own [header] */
	TOML_F_DOTTED = 1u << 2,   /* created by a dotted key (a.b = 1) */
	TOML_F_INLINE = 1u << 3,   /* inline table { }: closed for good */
	TOML_F_AOT = 1u << 4,      /* array created by [[header]] */
};

struct toml_node *toml_node_new(enum toml_type type, int line, int col);
/* Append an item to an array, or a member to a table (key must be unset in
 * the table; the key bytes are copied). */
void toml_array_push(struct toml_node *arr, struct toml_node *item);
void toml_table_put(struct toml_node *t, const char *key, size_t key_len, struct toml_node *member);

#endif
