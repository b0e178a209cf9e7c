/*
 * envlist.c — the env-variable list inside an encrypted env and the files
 * rendered from it. JSON goes through jansson; values are wiped when the
 * list is freed, and no error message ever quotes a value.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/cleanup.h"
#include "core/mem.h"
#include "crypto/envlist.h"
#include "core/xalloc.h"

static void free_secret_str(char *s)
{
	if (s) {
		secure_zero(s, strlen(s));
		free(s);
	}
}

void env_list_free(struct env_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->items[i].key);
		free_secret_str(l->items[i].value);
	}
	free(l->items);
	l->items = NULL;
	l->n = l->cap = 0;
}

void env_list_add(struct env_list *l, const char *key, const char *value)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		struct env_var *items = realloc(l->items, cap * sizeof(*items));

		if (!items)
			abort();
		l->items = items;
		l->cap = cap;
	}
	l->items[l->n].key = xstrdup(key);
	l->items[l->n].value = xstrdup(value);
	l->n++;
}

bool env_key_valid(const char *key)
{
	size_t len = strlen(key);

	if (len == 0 || len > ENV_KEY_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = key[i];
		bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';

		if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
			return false;
	}
	return true;
}

int env_list_validate(const struct env_list *l, struct err *e)
{
	size_t total = 0;

	if (l->n > ENV_ITEMS_MAX)
		return err_set(e, "too many environment variables (%zu, max %d)", l->n, ENV_ITEMS_MAX);
	for (size_t i = 0; i < l->n; i++) {
		const char *k = l->items[i].key;
		size_t vlen = strlen(l->items[i].value);

		if (!env_key_valid(k)) {
			if (strlen(k) > ENV_KEY_MAX)
				return err_set(e, "environment variable name too long (%zu bytes)",
					       strlen(k));
			return err_set(e, "invalid environment variable name '%.64s'", k);
		}
		if (vlen > ENV_VALUE_MAX)
			return err_set(e, "value of %s too large (%zu bytes, max %d)", k, vlen,
				       ENV_VALUE_MAX);
		total += strlen(k) + vlen;
	}
	if (total > ENV_TOTAL_MAX)
		return err_set(e, "environment too large (%zu bytes, max %d)", total, ENV_TOTAL_MAX);
	return 0;
}

void env_list_filter(struct env_list *l, const char *const *allowed, size_t n_allowed)
{
	size_t w = 0;

	for (size_t i = 0; i < l->n; i++) {
		bool keep = false;

		for (size_t j = 0; j < n_allowed && !keep; j++)
			keep = !strcmp(l->items[i].key, allowed[j]);
		if (keep) {
			l->items[w++] = l->items[i];
		} else {
			free(l->items[i].key);
			free_secret_str(l->items[i].value);
		}
	}
	l->n = w;
}

static int cmp_key(const void *a, const void *b)
{
	const struct env_var *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	/* Stable on equal keys: the original order is kept via pointers,
	 * which are in array order. */
	if (c)
		return c;
	return x < y ? -1 : x > y;
}

void env_list_normalize(struct env_list *l)
{
	size_t w = 0;

	if (l->n < 2)
		return;
	qsort(l->items, l->n, sizeof(*l->items), cmp_key);
	for (size_t i = 0; i < l->n; i++) {
		if (i + 1 < l->n && !strcmp(l->items[i].key, l->items[i + 1].key)) {
			/* A later duplicate follows: drop this one. */
			free(l->items[i].key);
			free_secret_str(l->items[i].value);
			continue;
		}
		l->items[w++] = l->items[i];
	}
	l->n = w;
}

/* jansson's dump callback into a struct buf. */
static int dump_to_buf(const char *data, size_t size, void *ctx)
{
	buf_append(ctx, data, size);
	return 0;
}

int env_plaintext_build(const struct env_list *l, struct buf *out, struct err *e)
{
	_cleanup_json_ json_t *root = json_object();
	json_t *arr = json_array();

	if (!root || !arr || json_object_set_new(root, "env", arr) < 0)
		return err_set(e, "out of memory");
	for (size_t i = 0; i < l->n; i++) {
		json_t *item = json_pack("{s:s, s:s}", "key", l->items[i].key, "value", l->items[i].value);

		if (!item || json_array_append_new(arr, item) < 0)
			return err_set(e, "environment variable %.64s is not valid UTF-8", l->items[i].key);
	}
	if (json_dump_callback(root, dump_to_buf, out, JSON_COMPACT | JSON_PRESERVE_ORDER) < 0)
		return err_set(e, "JSON encoding failed");
	/* The encoded values stay in root's strings until it is freed;
	 * jansson does not wipe them, so clear them here. */
	for (size_t i = 0; i < json_array_size(arr); i++) {
		json_t *v = json_object_get(json_array_get(arr, i), "value");
		secure_zero((char *)json_string_value(v), json_string_length(v));
	}
	return 0;
}

int env_plaintext_parse(const void *json, size_t len, struct env_list *out, struct err *e)
{
	json_error_t jerr;
	_cleanup_json_ json_t *root = json_loadb(json, len, 0, &jerr);
	json_t *arr, *item;
	size_t i;

	if (!root)
		return err_set(e, "env plaintext is not valid JSON (line %d)", jerr.line);
	arr = json_object_get(root, "env");
	if (!json_is_object(root) || !json_is_array(arr))
		return err_set(e, "env plaintext must be an object with an \"env\" array");
	if (json_array_size(arr) > ENV_ITEMS_MAX)
		return err_set(e, "too many environment variables (%zu, max %d)", json_array_size(arr),
			       ENV_ITEMS_MAX);
	json_array_foreach(arr, i, item)
	{
		json_t *k = json_object_get(item, "key"), *v = json_object_get(item, "value");

		if (!json_is_string(k) || !json_is_string(v)) {
			env_list_free(out);
			return err_set(e, "env item %zu must have string \"key\" and \"value\"", i);
		}
		env_list_add(out, json_string_value(k), json_string_value(v));
		secure_zero((char *)json_string_value(v), json_string_length(v));
	}
	return 0;
}

int env_plaintext_accept(const void *json, size_t len, const char *const *allowed, size_t n_allowed,
			 struct env_list *out, struct err *e)
{
	if (env_plaintext_parse(json, len, out, e) < 0)
		return -1;
	if (allowed)
		env_list_filter(out, allowed, n_allowed);
	if (env_list_validate(out, e) < 0) {
		env_list_free(out);
		return -1;
	}
	env_list_normalize(out);
	return 0;
}

int env_allowed_from_compose(const void *compose, size_t len, char ***out, size_t *n, struct err *e)
{
	json_error_t jerr;
	_cleanup_json_ json_t *root = json_loadb(compose, len, 0, &jerr);
	json_t *arr, *item;
	size_t i;

	*out = NULL;
	*n = 0;
	if (!root || !json_is_object(root))
		return err_set(e, "app compose is not a JSON object");
	arr = json_object_get(root, "allowed_envs");
	if (!arr || json_is_null(arr))
		return 0;
	if (!json_is_array(arr))
		return err_set(e, "allowed_envs must be an array of strings");
	*out = calloc(json_array_size(arr) + 1, sizeof(char *));
	if (!*out)
		abort();
	json_array_foreach(arr, i, item)
	{
		if (!json_is_string(item)) {
			env_allowed_free(*out, *n);
			*out = NULL;
			*n = 0;
			return err_set(e, "allowed_envs must be an array of strings");
		}
		(*out)[(*n)++] = xstrdup(json_string_value(item));
	}
	return 0;
}

void env_allowed_free(char **allowed, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(allowed[i]);
	free(allowed);
}

static bool needs_quotes(const char *v)
{
	return strpbrk(v, " \t|&;<>()$`\\\"'\n") != NULL;
}

void env_render_dotenv(const struct env_list *l, struct buf *out)
{
	for (size_t i = 0; i < l->n; i++) {
		const char *v = l->items[i].value;

		buf_puts(out, l->items[i].key);
		buf_putc(out, '=');
		if (!needs_quotes(v)) {
			buf_puts(out, v);
			buf_putc(out, '\n');
			continue;
		}
		buf_putc(out, '"');
		for (const char *p = v; *p; p++) {
			switch (*p) {
			case '\n':
				buf_puts(out, "\\n");
				break;
			case '"':
			case '$':
			case '`':
				buf_putc(out, '\\');
				buf_putc(out, (uint8_t)*p);
				break;
			default:
				buf_putc(out, (uint8_t)*p);
			}
		}
		buf_puts(out, "\"\n");
	}
}

int env_render_json(const struct env_list *l, struct buf *out, struct err *e)
{
	_cleanup_json_ json_t *root = json_object();

	if (!root)
		return err_set(e, "out of memory");
	for (size_t i = 0; i < l->n; i++)
		if (json_object_set_new(root, l->items[i].key, json_string(l->items[i].value)) < 0)
			return err_set(e, "environment variable %.64s is not valid UTF-8", l->items[i].key);
	if (json_dump_callback(root, dump_to_buf, out, JSON_COMPACT | JSON_SORT_KEYS) < 0)
		return err_set(e, "JSON encoding failed");
	const char *key;
	json_t *v;
	json_object_foreach(root, key, v) secure_zero((char *)json_string_value(v), json_string_length(v));
	return 0;
}

static void trim(const char **s, const char **end)
{
	while (*s < *end && (**s == ' ' || **s == '\t' || **s == '\r'))
		(*s)++;
	while (*end > *s && ((*end)[-1] == ' ' || (*end)[-1] == '\t' || (*end)[-1] == '\r'))
		(*end)--;
}

int env_file_parse(const char *text, size_t len, struct env_list *out, struct err *e)
{
	const char *p = text, *end = text + len;
	int lineno = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *line_end = nl ? nl : end;
		const char *ks = p, *ke, *vs, *ve, *eq;

		lineno++;
		p = nl ? nl + 1 : end;
		trim(&ks, &line_end);
		if (ks == line_end || *ks == '#')
			continue;
		if (memchr(ks, '\0', (size_t)(line_end - ks))) {
			env_list_free(out);
			return err_set(e, "line %d: NUL byte", lineno);
		}
		if ((size_t)(line_end - ks) > 7 && !memcmp(ks, "export ", 7))
			ks += 7;
		eq = memchr(ks, '=', (size_t)(line_end - ks));
		if (!eq) {
			env_list_free(out);
			return err_set(e, "line %d: expected KEY=VALUE", lineno);
		}
		ke = eq;
		vs = eq + 1;
		ve = line_end;
		trim(&ks, &ke);
		trim(&vs, &ve);
		if (ve - vs >= 2 && (*vs == '"' || *vs == '\'') && ve[-1] == *vs) {
			vs++;
			ve--;
		}
		char *key = strndup(ks, (size_t)(ke - ks)), *value = strndup(vs, (size_t)(ve - vs));
		if (!key || !value)
			abort();
		bool valid = env_key_valid(key);
		if (valid)
			env_list_add(out, key, value);
		free(key);
		free_secret_str(value);
		if (!valid) {
			env_list_free(out);
			return err_set(e, "line %d: invalid variable name", lineno);
		}
	}
	return 0;
}
