/*
 * config_bind.c — copying merged configuration into a program's struct,
 * driven by a schema table (config.h), and warning about keys no schema
 * entry knows.
 *
 * Each converter reports only the problem ("expected integer, got string");
 * the caller prefixes origin and key so every message reads
 * "file:line: key: problem", the format operators grep for.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/xalloc.h"

static const char *json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "table";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
		return "integer";
	case JSON_REAL:
		return "float";
	case JSON_TRUE:
	case JSON_FALSE:
		return "boolean";
	case JSON_NULL:
		return "null";
	}
	return "unknown";
}

static int expected(struct err *e, const char *what, const json_t *v)
{
	return err_set(e, "expected %s, got %s", what, json_kind(v));
}

static int string_of(const json_t *v, const char *what, const char **out, struct err *e)
{
	if (!json_is_string(v))
		return expected(e, what, v);
	if (strlen(json_string_value(v)) != json_string_length(v))
		return err_set(e, "string contains a NUL character");
	*out = json_string_value(v);
	return 0;
}

static int bind_int(const struct cfg_field *f, const json_t *v, void *dst, struct err *e)
{
	bool is_signed = f->kind == CFG_INT;
	int64_t lo, hi, x;

	if (!json_is_integer(v))
		return expected(e, "integer", v);
	switch (f->size) {
	case 1:
		lo = is_signed ? INT8_MIN : 0;
		hi = is_signed ? INT8_MAX : UINT8_MAX;
		break;
	case 2:
		lo = is_signed ? INT16_MIN : 0;
		hi = is_signed ? INT16_MAX : UINT16_MAX;
		break;
	case 4:
		lo = is_signed ? INT32_MIN : 0;
		hi = is_signed ? INT32_MAX : (int64_t)UINT32_MAX;
		break;
	case 8:
		lo = is_signed ? INT64_MIN : 0;
		hi = INT64_MAX;
		break;
	default:
		return err_set(e, "schema error: integer member of size %zu", f->size);
	}
	if (f->min || f->max) {
		lo = f->min > lo ? f->min : lo;
		hi = f->max < hi ? f->max : hi;
	}
	x = (int64_t)json_integer_value(v);
	if (x < lo || x > hi)
		return err_set(e, "%lld is out of range [%lld, %lld]", (long long)x, (long long)lo,
			       (long long)hi);
	switch (f->size) {
	case 1: {
		int8_t b = (int8_t)x;
		memcpy(dst, &b, 1);
		break;
	}
	case 2: {
		int16_t b = (int16_t)x;
		memcpy(dst, &b, 2);
		break;
	}
	case 4: {
		int32_t b = (int32_t)x;
		memcpy(dst, &b, 4);
		break;
	}
	default:
		memcpy(dst, &x, 8);
		break;
	}
	return 0;
}

static int bind_strings(const json_t *v, struct cfg_strings *out, struct err *e)
{
	struct cfg_strings r = {NULL, 0};
	size_t i;
	json_t *item;

	if (!json_is_array(v))
		return expected(e, "array of strings", v);
	r.items = calloc(json_array_size(v) + 1, sizeof(*r.items));
	if (!r.items)
		abort();
	json_array_foreach(v, i, item)
	{
		const char *s;

		if (string_of(item, "string", &s, e) < 0) {
			for (size_t j = 0; j < r.count; j++)
				free(r.items[j]);
			free(r.items);
			return err_wrap(e, "item %zu", i);
		}
		r.items[r.count++] = xstrdup(s);
	}
	*out = r;
	return 0;
}

static int bind_value(const struct cfg_field *f, const json_t *v, void *dst, struct err *e)
{
	const char *s;

	switch (f->kind) {
	case CFG_BOOL:
		if (!json_is_boolean(v))
			return expected(e, "boolean", v);
		*(bool *)dst = json_is_true(v);
		return 0;
	case CFG_INT:
	case CFG_UINT:
		return bind_int(f, v, dst, e);
	case CFG_FLOAT:
		if (!json_is_number(v))
			return expected(e, "float", v);
		*(double *)dst = json_number_value(v);
		return 0;
	case CFG_STRING:
		if (string_of(v, "string", &s, e) < 0)
			return -1;
		*(char **)dst = xstrdup(s);
		return 0;
	case CFG_STRINGS:
		return bind_strings(v, dst, e);
	case CFG_DURATION:
		if (json_is_integer(v)) {
			json_int_t secs = json_integer_value(v);

			if (secs < 0 || (uint64_t)secs > UINT64_MAX / 1000 - 1)
				return err_set(e, "duration out of range");
			*(uint64_t *)dst = (uint64_t)secs * 1000;
			return 0;
		}
		if (string_of(v, "duration", &s, e) < 0)
			return -1;
		return cfg_parse_duration(s, dst, e);
	case CFG_SIZE:
		if (json_is_integer(v)) {
			if (json_integer_value(v) < 0)
				return err_set(e, "size must not be negative");
			*(uint64_t *)dst = (uint64_t)json_integer_value(v);
			return 0;
		}
		if (string_of(v, "size", &s, e) < 0)
			return -1;
		return cfg_parse_size(s, dst, e);
	case CFG_ADDR:
		if (string_of(v, "address string", &s, e) < 0)
			return -1;
		return cfg_parse_addr(s, dst, e);
	case CFG_PORTS:
		if (json_is_integer(v)) {
			json_int_t port = json_integer_value(v);
			struct cfg_ports *p = dst;

			if (port < 0 || port > 65535)
				return err_set(e, "port %lld is out of range [0, 65535]", (long long)port);
			p->first = p->last = (uint16_t)port;
			return 0;
		}
		if (string_of(v, "port or \"first-last\" range", &s, e) < 0)
			return -1;
		return cfg_parse_ports(s, dst, e);
	case CFG_JSON:
		*(json_t **)dst = json_incref((json_t *)v);
		return 0;
	case CFG_IGNORE:
		return 0;
	}
	return err_set(e, "schema error: unknown kind %d", (int)f->kind);
}

/* Member size each kind writes (0: any integer width, or nothing). */
static size_t kind_size(enum cfg_kind k)
{
	switch (k) {
	case CFG_BOOL:
		return sizeof(bool);
	case CFG_FLOAT:
		return sizeof(double);
	case CFG_STRING:
		return sizeof(char *);
	case CFG_STRINGS:
		return sizeof(struct cfg_strings);
	case CFG_DURATION:
	case CFG_SIZE:
		return sizeof(uint64_t);
	case CFG_ADDR:
		return sizeof(struct cfg_addr);
	case CFG_PORTS:
		return sizeof(struct cfg_ports);
	case CFG_JSON:
		return sizeof(json_t *);
	default:
		return 0;
	}
}

static const struct cfg_field *schema_find(const struct cfg_field *schema, size_t n, const char *path)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(schema[i].key, path) == 0)
			return &schema[i];
	return NULL;
}

/* Some schema key lies strictly below path. */
static bool schema_below(const struct cfg_field *schema, size_t n, const char *path)
{
	size_t len = strlen(path);

	for (size_t i = 0; i < n; i++)
		if ((len == 0 || (strncmp(schema[i].key, path, len) == 0 && schema[i].key[len] == '.')))
			return true;
	return false;
}

static void warn_unknown(const struct config *c, json_t *obj, const char *path,
			 const struct cfg_field *schema, size_t n)
{
	const char *k;
	json_t *v;

	json_object_foreach(obj, k, v)
	{
		char sub[1024], origin[4096];

		snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", k);
		if (schema_find(schema, n, sub))
			continue;
		if (json_is_object(v) && schema_below(schema, n, sub)) {
			warn_unknown(c, v, sub, schema, n);
			continue;
		}
		log_warn("%s: unknown configuration key '%s' (ignored)",
			 config_origin(c, sub, origin, sizeof(origin)), sub);
	}
}

int config_bind(const struct config *c, const struct cfg_field *schema, size_t n, void *obj, struct err *e)
{
	if (!c->root)
		return err_set(e, "config: nothing loaded");
	for (size_t i = 0; i < n; i++) {
		const struct cfg_field *f = &schema[i];
		json_t *v = config_get(c, f->key);
		char origin[4096];

		if (kind_size(f->kind) && kind_size(f->kind) != f->size)
			return err_set(e,
				       "config schema error: '%s': member has size %zu, its kind needs %zu",
				       f->key, f->size, kind_size(f->kind));
		if (!v) {
			if (f->flags & CFG_REQUIRED)
				return err_set(e, "config: missing required key '%s'", f->key);
			continue;
		}
		if (bind_value(f, v, (char *)obj + f->offset, e) < 0)
			return err_wrap(e, "%s: %s", config_origin(c, f->key, origin, sizeof(origin)),
					f->key);
	}
	warn_unknown(c, c->root, "", schema, n);
	return 0;
}

void config_unbind(const struct cfg_field *schema, size_t n, void *obj)
{
	for (size_t i = 0; i < n; i++) {
		void *dst = (char *)obj + schema[i].offset;

		switch (schema[i].kind) {
		case CFG_STRING:
			if ((schema[i].flags & CFG_SECRET) && *(char **)dst)
				secure_zero(*(char **)dst, strlen(*(char **)dst));
			free(*(char **)dst);
			*(char **)dst = NULL;
			break;
		case CFG_STRINGS: {
			struct cfg_strings *s = dst;

			for (size_t j = 0; j < s->count; j++)
				free(s->items[j]);
			free(s->items);
			s->items = NULL;
			s->count = 0;
			break;
		}
		case CFG_JSON:
			json_decref(*(json_t **)dst);
			*(json_t **)dst = NULL;
			break;
		default:
			break;
		}
	}
}

int config_load_bound(const struct config_search *s, const struct cfg_field *schema, size_t n, void *obj,
		      size_t obj_size, int (*check_raw)(const struct config *c, struct err *e),
		      int (*check)(void *obj, const struct config *c, struct err *e), struct err *e)
{
	struct config c = CONFIG_INIT;
	int rc;

	memset(obj, 0, obj_size);
	if (config_load(&c, s, e) < 0)
		return -1;
	rc = (check_raw && check_raw(&c, e) < 0) || config_bind(&c, schema, n, obj, e) < 0 ||
		     (check && check(obj, &c, e) < 0)
		 ? -1
		 : 0;
	config_free(&c);
	if (rc < 0) {
		config_unbind(schema, n, obj);
		memset(obj, 0, obj_size);
	}
	return rc;
}
