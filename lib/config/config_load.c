/*
 * config_load.c — reading the configuration layers and merging them.
 *
 * Values are kept as one jansson tree (what the binder and raw-section
 * readers consume). Beside it runs a tree of origins with the same shape:
 * a table is ["file:line", {member origins}] and any other value is the
 * string "file:line". Both trees are merged by the same walk, so every leaf
 * always knows which file and line last set it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "config/config.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "toml/toml.h"

static int ensure_init(struct config *c)
{
	if (c->root)
		return 0;
	c->root = json_object();
	c->origins = json_pack("[s{}]", "");
	return c->root && c->origins ? 0 : -1;
}

void config_free(struct config *c)
{
	json_decref(c->root);
	json_decref(c->origins);
	c->root = c->origins = NULL;
}

static json_t *origin_str(const char *source, int line)
{
	char o[4096];

	if (line > 0)
		snprintf(o, sizeof(o), "%s:%d", source, line);
	else
		snprintf(o, sizeof(o), "%s", source);
	return json_string_nocheck(o);
}

/* Origins of a parsed TOML document; fails on keys with NUL bytes, which
 * the dotted-path API cannot name. */
static json_t *toml_origins(const struct toml_node *n, const char *source, struct err *e)
{
	int line = n->key_line ? n->key_line : n->line;
	json_t *kids, *out;

	if (n->type != TOML_TABLE)
		return origin_str(source, line);
	kids = json_object();
	out = json_pack("[oo]", origin_str(source, line), kids);
	if (!out)
		return NULL;
	for (size_t i = 0; i < n->v.list.count; i++) {
		const struct toml_node *m = n->v.list.items[i];
		json_t *o;

		if (memchr(m->key, '\0', m->key_len)) {
			err_set(e, "%s:%d: key contains a NUL character", source, m->key_line);
			json_decref(out);
			return NULL;
		}
		o = toml_origins(m, source, e);
		if (!o || json_object_set_new(kids, m->key, o) < 0) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

static json_t *json_origins(json_t *v, const char *source)
{
	const char *k;
	json_t *m, *kids, *out;

	if (!json_is_object(v))
		return origin_str(source, 0);
	kids = json_object();
	out = json_pack("[oo]", origin_str(source, 0), kids);
	if (!out)
		return NULL;
	json_object_foreach(v, k, m)
	{
		if (json_object_set_new(kids, k, json_origins(m, source)) < 0) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

/* Deep merge src into dst (tables merge, everything else replaces), and the
 * origin children alongside. */
static void merge(json_t *dst, json_t *dst_org, json_t *src, json_t *src_org)
{
	const char *k;
	json_t *sv;

	json_object_foreach(src, k, sv)
	{
		json_t *dv = json_object_get(dst, k);
		json_t *so = json_object_get(src_org, k);

		if (json_is_object(dv) && json_is_object(sv)) {
			json_t *dorg = json_object_get(dst_org, k);

			merge(dv, json_array_get(dorg, 1), sv, json_array_get(so, 1));
		} else {
			json_object_set(dst, k, sv);
			json_object_set(dst_org, k, so);
		}
	}
}

static int add_layer(struct config *c, json_t *values, json_t *origins)
{
	if (ensure_init(c) < 0)
		return -1;
	merge(c->root, json_array_get(c->origins, 1), values, json_array_get(origins, 1));
	return 0;
}

int config_add_toml(struct config *c, const char *text, size_t len, const char *source, struct err *e)
{
	struct toml_node *doc = toml_parse(text, len, source, e);
	_cleanup_json_ json_t *values = NULL, *origins = NULL;
	int rc = -1;

	if (!doc)
		return -1;
	origins = toml_origins(doc, source, e);
	if (origins)
		values = toml_to_json(doc);
	if (!origins || !values)
		goto out;
	rc = add_layer(c, values, origins);
	if (rc < 0)
		err_set(e, "%s: out of memory", source);
out:
	if (rc < 0 && e && !e->msg[0])
		err_set(e, "%s: cannot load", source);
	toml_free(doc);
	return rc;
}

int config_add_json(struct config *c, const char *text, size_t len, const char *source, struct err *e)
{
	json_error_t je;
	_cleanup_json_ json_t *values = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	_cleanup_json_ json_t *origins = NULL;

	if (!values)
		return err_set(e, "%s: line %d, column %d: %s", source, je.line, je.column, je.text);
	if (!json_is_object(values))
		return err_set(e, "%s: the top level must be an object", source);
	origins = json_origins(values, source);
	if (!origins || add_layer(c, values, origins) < 0)
		return err_set(e, "%s: out of memory", source);
	return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

int config_add_file(struct config *c, const char *path, bool must_exist, struct err *e)
{
	_cleanup_free_ uint8_t *data = NULL;
	struct stat st;
	size_t len;

	if (stat(path, &st) < 0) {
		if (errno == ENOENT && !must_exist)
			return 0;
		return err_errno(e, "config file %s", path);
	}
	if (file_read_all(path, CONFIG_MAX_FILE, &data, &len, e) < 0)
		return err_wrap(e, "config file");
	if (ends_with(path, ".toml"))
		return config_add_toml(c, (const char *)data, len, path, e);
	return config_add_json(c, (const char *)data, len, path, e);
}

int config_load(struct config *c, const struct config_search *s, struct err *e)
{
	char etc[4096], path[4096];
	const char *dirs[2];

	if (ensure_init(c) < 0)
		return err_set(e, "config: out of memory");
	snprintf(etc, sizeof(etc), "/etc/%s", s->name);
	dirs[0] = s->etc_dir ? s->etc_dir : etc;
	dirs[1] = s->cwd_dir ? s->cwd_dir : ".";
	if (s->defaults && config_add_toml(c, s->defaults, strlen(s->defaults), "built-in defaults", e) < 0)
		goto fail;
	for (size_t i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s.toml", dirs[i], s->name);
		if (config_add_file(c, path, false, e) < 0)
			goto fail;
		snprintf(path, sizeof(path), "%s/%s.json", dirs[i], s->name);
		if (config_add_file(c, path, false, e) < 0)
			goto fail;
	}
	if (s->file && config_add_file(c, s->file, true, e) < 0)
		goto fail;
	return 0;
fail:
	config_free(c);
	return -1;
}

/* Walk a dotted path; parts are bare names (no quoting). */
json_t *config_get(const struct config *c, const char *path)
{
	json_t *v = c->root;
	char part[1024];

	while (v && *path) {
		size_t n = strcspn(path, ".");

		if (n >= sizeof(part))
			return NULL;
		memcpy(part, path, n);
		part[n] = '\0';
		v = json_object_get(v, part);
		path += n;
		if (*path == '.')
			path++;
	}
	return v;
}

const char *config_origin(const struct config *c, const char *path, char *out, size_t out_size)
{
	json_t *o = c->origins;
	char part[1024];

	while (o && *path) {
		size_t n = strcspn(path, ".");

		if (n >= sizeof(part)) {
			o = NULL;
			break;
		}
		memcpy(part, path, n);
		part[n] = '\0';
		o = json_object_get(json_array_get(o, 1), part);
		path += n;
		if (*path == '.')
			path++;
	}
	if (json_is_array(o))
		o = json_array_get(o, 0);
	snprintf(out, out_size, "%s", json_is_string(o) ? json_string_value(o) : "");
	return out;
}
