/*
 * envlist.h — the environment variables carried in an encrypted env:
 * the plaintext JSON `{"env":[{"key":..,"value":..}]}`, the guest's
 * allow-list filter and limits (guest.md §2.4), the two files the guest
 * writes (`.decrypted-env`, `.decrypted-env.json`), and the KEY=VALUE
 * env-file format clients read.
 *
 * Values are secrets: env_list_free wipes them.
 */
#ifndef DSTACK_CRYPTO_ENVLIST_H
#define DSTACK_CRYPTO_ENVLIST_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/err.h"

#define ENV_KEY_MAX 255
#define ENV_VALUE_MAX (128 * 1024)
#define ENV_ITEMS_MAX 1024
#define ENV_TOTAL_MAX (1024 * 1024)

struct env_var {
	char *key;
	char *value;
};

struct env_list {
	struct env_var *items;
	size_t n;
	size_t cap;
};

#define ENV_LIST_INIT                                                                                        \
	{                                                                                                    \
		NULL, 0, 0                                                                                   \
	}

void env_list_free(struct env_list *l);
/* Append copies of key and value (no validation; see env_list_validate). */
void env_list_add(struct env_list *l, const char *key, const char *value);

/* `^[A-Za-z_][A-Za-z0-9_]*$`, at most 255 bytes. */
bool env_key_valid(const char *key);
/* Every key valid, value <= 128 KiB, <= 1024 items, keys+values <= 1 MiB.
 * Error messages name the key, never the value. */
int env_list_validate(const struct env_list *l, struct err *e);
/* Drop (silently) every variable whose key is not in allowed[0..n). */
void env_list_filter(struct env_list *l, const char *const *allowed, size_t n_allowed);
/* Sort by key; for duplicate keys the last occurrence wins. */
void env_list_normalize(struct env_list *l);

/* {"env":[{"key":K,"value":V},...]} in list order. */
int env_plaintext_build(const struct env_list *l, struct buf *out, struct err *e);
/* Parse the plaintext; structure errors fail, limits are not checked here. */
int env_plaintext_parse(const void *json, size_t len, struct env_list *out, struct err *e);

/* The full guest-side pipeline on a decrypted plaintext: parse, filter by
 * allowed_envs (allowed == NULL: keep everything), validate, normalise. */
int env_plaintext_accept(const void *json, size_t len, const char *const *allowed, size_t n_allowed,
			 struct env_list *out, struct err *e);

/* The `allowed_envs` array of an app-compose.json (missing = empty). The
 * result is a malloc'd array of malloc'd strings; free with env_allowed_free. */
int env_allowed_from_compose(const void *compose, size_t len, char ***out, size_t *n, struct err *e);
void env_allowed_free(char **allowed, size_t n);

/* `.decrypted-env`: sorted `K=V\n` lines, value double-quoted when it holds
 * any of ` \t|&;<>()$`\"'\n`, inside quotes `\n " $ `` ` `` escaped. Call on a
 * normalised list. */
void env_render_dotenv(const struct env_list *l, struct buf *out);
/* `.decrypted-env.json`: {"K":"V",...} (sorted, compact). */
int env_render_json(const struct env_list *l, struct buf *out, struct err *e);

/* Parse an env file: `KEY=VALUE` lines, blank lines and `#` comments
 * skipped, optional `export ` prefix, whitespace around key and value
 * trimmed, one pair of matching surrounding quotes removed from the value. */
int env_file_parse(const char *text, size_t len, struct env_list *out, struct err *e);

#endif
