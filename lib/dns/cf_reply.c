/*
 * cf_reply.c — parsing Cloudflare API v4 replies (see cloudflare.h).
 *
 * Everything here reads bytes from a remote service, so it is strict about
 * types, caps what it keeps, and turns the service's own error text into
 * printable ASCII before it reaches an error message or a log line.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "dns/cloudflare.h"
#include "core/xalloc.h"

/* Caps on what one reply may make us keep. */
#define CF_MAX_ZONES 100000
#define CF_MAX_RECORDS 10000
#define CF_MAX_PAGES 100000

/* Printable, bounded copy of service-provided text for messages. */
static void put_printable(struct buf *b, const char *s, size_t max)
{
	size_t i;

	for (i = 0; s[i] && i < max; i++)
		buf_putc(b, isprint((unsigned char)s[i]) ? (uint8_t)s[i] : '?');
	if (s[i])
		buf_puts(b, "...");
}

int cf_reply_result(json_t *root, long status, json_t **result, struct err *e)
{
	json_t *ok = json_is_object(root) ? json_object_get(root, "success") : NULL;
	json_t *errors = json_is_object(root) ? json_object_get(root, "errors") : NULL;

	if (status < 400 && json_is_true(ok)) {
		*result = json_object_get(root, "result");
		return 0;
	}
	_cleanup_buf_ struct buf m = BUF_INIT;
	size_t i, shown = 0;
	json_t *it;

	buf_printf(&m, "HTTP %ld", status);
	json_array_foreach(errors, i, it)
	{
		json_t *code = json_object_get(it, "code"), *msg = json_object_get(it, "message");

		if (shown++ >= 4)
			break;
		buf_puts(&m, shown == 1 ? ": " : "; ");
		if (json_is_integer(code))
			buf_printf(&m, "error %lld", (long long)json_integer_value(code));
		else
			buf_puts(&m, "error");
		if (json_is_string(msg)) {
			buf_puts(&m, ": ");
			put_printable(&m, json_string_value(msg), 200);
		}
	}
	if (!shown && status < 400)
		buf_puts(&m, root ? ": success is not true" : ": reply is not JSON");
	return err_set(e, "%s", (const char *)m.data);
}

static json_t *load(const char *body, long status, json_t **result, struct err *e)
{
	json_t *root = json_loads(body ? body : "", JSON_REJECT_DUPLICATES, NULL);

	if (cf_reply_result(root, status, result, e) < 0) {
		json_decref(root);
		return NULL;
	}
	return root;
}

static unsigned total_pages_of(json_t *root)
{
	json_t *info = json_object_get(root, "result_info");
	json_t *tp = json_object_get(info, "total_pages");

	if (!json_is_integer(tp) || json_integer_value(tp) < 1)
		return 1;
	if (json_integer_value(tp) > CF_MAX_PAGES)
		return CF_MAX_PAGES;
	return (unsigned)json_integer_value(tp);
}

static bool valid_id(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 128)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return false;
	return true;
}

static const char *str_member(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

int cf_parse_zones(const char *body, long status, struct cf_zone **zones, size_t *n, unsigned *total_pages,
		   struct err *e)
{
	json_t *result = NULL, *it;
	_cleanup_json_ json_t *root = load(body, status, &result, e);
	size_t i;

	if (!root)
		return -1;
	if (!json_is_array(result))
		return err_set(e, "zone list: result is not an array");
	if (*n + json_array_size(result) > CF_MAX_ZONES)
		return err_set(e, "zone list: more than %d zones", CF_MAX_ZONES);
	json_array_foreach(result, i, it)
	{
		const char *id = str_member(it, "id"), *name = str_member(it, "name");
		struct cf_zone *grown;

		if (!id || !name || !valid_id(id) || !*name || strlen(name) > 253)
			return err_set(e, "zone list: entry %zu has no valid id and name", i);
		grown = realloc(*zones, (*n + 1) * sizeof(**zones));
		if (!grown)
			abort();
		*zones = grown;
		grown[*n].id = xstrdup(id);
		grown[*n].name = xstrdup(name);
		(*n)++;
	}
	*total_pages = total_pages_of(root);
	return 0;
}

int cf_parse_records(const char *body, long status, const char *name, struct dns_records *out,
		     unsigned *total_pages, struct err *e)
{
	json_t *result = NULL, *it;
	_cleanup_json_ json_t *root = load(body, status, &result, e);
	size_t i;

	if (!root)
		return -1;
	if (!json_is_array(result))
		return err_set(e, "record list: result is not an array");
	json_array_foreach(result, i, it)
	{
		const char *id = str_member(it, "id"), *type = str_member(it, "type");
		const char *rname = str_member(it, "name"), *content = str_member(it, "content");
		json_t *data = json_object_get(it, "data");
		struct dns_record *grown, *r;

		if (!id || !type || !rname || !valid_id(id))
			return err_set(e, "record list: entry %zu has no valid id, type and name", i);
		if (strcasecmp(rname, name) != 0)
			continue;
		if (out->count >= CF_MAX_RECORDS)
			return err_set(e, "record list: more than %d records", CF_MAX_RECORDS);
		grown = realloc(out->items, (out->count + 1) * sizeof(*grown));
		if (!grown)
			abort();
		out->items = grown;
		r = &grown[out->count++];
		memset(r, 0, sizeof(*r));
		r->id = xstrdup(id);
		r->type = xstrdup(type);
		r->name = xstrdup(rname);
		r->content = xstrdup(content ? content : "");
		if (strcmp(type, "CAA") == 0 && json_is_object(data)) {
			json_t *flags = json_object_get(data, "flags");

			if (json_is_integer(flags) && json_integer_value(flags) >= 0 &&
			    json_integer_value(flags) <= 255)
				r->caa_flags = (unsigned)json_integer_value(flags);
			r->caa_tag = xstrdup(str_member(data, "tag"));
			r->caa_value = xstrdup(str_member(data, "value"));
		}
	}
	*total_pages = total_pages_of(root);
	return 0;
}

int cf_parse_created(const char *body, long status, char **id, struct err *e)
{
	json_t *result = NULL;
	_cleanup_json_ json_t *root = load(body, status, &result, e);
	const char *s;

	if (!root)
		return -1;
	s = str_member(result, "id");
	if (!s || !valid_id(s))
		return err_set(e, "reply has no valid result.id");
	*id = xstrdup(s);
	return 0;
}

int cf_parse_ok(const char *body, long status, struct err *e)
{
	json_t *result = NULL;
	_cleanup_json_ json_t *root = load(body, status, &result, e);

	return root ? 0 : -1;
}

long cf_zone_for(const struct cf_zone *zones, size_t n, const char *name)
{
	size_t nl = strlen(name), best_len = 0;
	long best = -1;

	while (nl && name[nl - 1] == '.')
		nl--;
	for (size_t i = 0; i < n; i++) {
		size_t zl = strlen(zones[i].name);

		while (zl && zones[i].name[zl - 1] == '.')
			zl--;
		if (zl == 0 || zl > nl || zl <= best_len)
			continue;
		if (strncasecmp(name + nl - zl, zones[i].name, zl) != 0)
			continue;
		if (zl < nl && name[nl - zl - 1] != '.')
			continue;
		best = (long)i;
		best_len = zl;
	}
	return best;
}

void cf_zones_free(struct cf_zone *zones, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(zones[i].id);
		free(zones[i].name);
	}
	free(zones);
}
