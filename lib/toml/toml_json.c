/*
 * toml_json.c — TOML trees as jansson values: the plain view the config
 * layer merges and binds, and toml-test's tagged form used by the
 * conformance test ({"type": "integer", "value": "1"} for every scalar).
 * Recursion is bounded by the parser's TOML_MAX_DEPTH.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>

#include "toml/toml.h"

static json_t *container(const struct toml_node *n, json_t *(*conv)(const struct toml_node *))
{
	json_t *out = n->type == TOML_TABLE ? json_object() : json_array();

	if (!out)
		return NULL;
	for (size_t i = 0; i < n->v.list.count; i++) {
		const struct toml_node *c = n->v.list.items[i];
		json_t *v = conv(c);
		int rc;

		if (!v) {
			json_decref(out);
			return NULL;
		}
		rc = n->type == TOML_TABLE ? json_object_setn_new(out, c->key, c->key_len, v)
					   : json_array_append_new(out, v);
		if (rc < 0) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

static const char *float_special(double d)
{
	if (isnan(d))
		return "nan";
	if (isinf(d))
		return d < 0 ? "-inf" : "inf";
	return NULL;
}

json_t *toml_to_json(const struct toml_node *n)
{
	char dt[64];

	switch (n->type) {
	case TOML_TABLE:
	case TOML_ARRAY:
		return container(n, toml_to_json);
	case TOML_STRING:
		return json_stringn(n->v.str.ptr, n->v.str.len);
	case TOML_INTEGER:
		return json_integer((json_int_t)n->v.integer);
	case TOML_FLOAT:
		if (float_special(n->v.fp))
			return json_string(float_special(n->v.fp));
		return json_real(n->v.fp);
	case TOML_BOOL:
		return json_boolean(n->v.boolean);
	case TOML_DATETIME:
	case TOML_DATETIME_LOCAL:
	case TOML_DATE_LOCAL:
	case TOML_TIME_LOCAL:
		toml_datetime_format(n, dt, sizeof(dt));
		return json_string(dt);
	}
	return NULL;
}

json_t *toml_to_tagged_json(const struct toml_node *n)
{
	char text[64];
	json_t *value;

	switch (n->type) {
	case TOML_TABLE:
	case TOML_ARRAY:
		return container(n, toml_to_tagged_json);
	case TOML_STRING:
		value = json_stringn(n->v.str.ptr, n->v.str.len);
		break;
	case TOML_INTEGER:
		snprintf(text, sizeof(text), "%" PRId64, n->v.integer);
		value = json_string(text);
		break;
	case TOML_FLOAT:
		if (float_special(n->v.fp))
			snprintf(text, sizeof(text), "%s", float_special(n->v.fp));
		else
			snprintf(text, sizeof(text), "%.17g", n->v.fp);
		value = json_string(text);
		break;
	case TOML_BOOL:
		value = json_string(n->v.boolean ? "true" : "false");
		break;
	default:
		toml_datetime_format(n, text, sizeof(text));
		value = json_string(text);
		break;
	}
	if (!value)
		return NULL;
	return json_pack("{s:s, s:o}", "type", toml_type_name(n->type), "value", value);
}
