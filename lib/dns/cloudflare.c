/*
 * cloudflare.c — the Cloudflare DNS API as a dns_provider (see cloudflare.h).
 *
 * Each call is one blocking HTTPS request through lib/http/client. The zone
 * list is fetched on first use and kept for the provider's life: a renewal
 * touches a handful of names in one or two zones, and zones rarely change.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "core/log.h"
#include "core/mem.h"
#include "dns/cloudflare.h"
#include "http/client.h"

#define CF_ZONES_PER_PAGE 50
#define CF_RECORDS_PER_PAGE 100
/* The reference stops listing records after 19 pages. */
#define CF_RECORD_PAGES_MAX 19
/* Zone pages followed at most (50 zones each). */
#define CF_ZONE_PAGES_MAX 1000

struct cloudflare {
	struct dns_provider base;
	char *api_url;
	char *auth_header; /* "Authorization: Bearer <token>": secret */
	char *ca_file;
	long timeout_ms;
	struct cf_zone *zones;
	size_t n_zones;
	bool zones_loaded;
};

static struct cloudflare *cf_of(struct dns_provider *p)
{
	return (struct cloudflare *)p;
}

static void put_escaped(struct buf *b, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~')
			buf_putc(b, c);
		else
			buf_printf(b, "%%%02X", c);
	}
}

/* One request; the reply body is returned NUL-terminated in *body. `what`
 * names the call in errors ("GET /zones"). */
static int cf_call(struct cloudflare *cf, const char *method, const char *path, const char *json_body,
		   const char *what, struct http_response *resp, struct err *e)
{
	struct http_client_opts opts = {
	    .timeout_ms = cf->timeout_ms,
	    .ca_file = cf->ca_file,
	    .max_body = 8 * 1024 * 1024,
	};
	const char *headers[] = {cf->auth_header, "Content-Type: application/json",
				 "Accept: application/json", NULL};
	_cleanup_free_ char *url = NULL;

	if (asprintf(&url, "%s%s", cf->api_url, path) < 0)
		abort();
	log_debug("cloudflare: %s", what);
	if (http_fetch(&opts, method, url, headers, json_body, json_body ? strlen(json_body) : 0, resp, e) <
	    0)
		return err_wrap(e, "Cloudflare %s", what);
	return 0;
}

static int load_zones(struct cloudflare *cf, struct err *e)
{
	unsigned page = 1, total = 1;

	if (cf->zones_loaded)
		return 0;
	do {
		struct http_response resp;
		char path[128], what[64];
		int rc;

		snprintf(path, sizeof(path), "/zones?page=%u&per_page=%d", page, CF_ZONES_PER_PAGE);
		snprintf(what, sizeof(what), "GET /zones page %u", page);
		if (cf_call(cf, "GET", path, NULL, what, &resp, e) < 0)
			return -1;
		rc = cf_parse_zones((const char *)resp.body.data, resp.status, &cf->zones, &cf->n_zones,
				    &total, e);
		http_response_free(&resp);
		if (rc < 0)
			return err_wrap(e, "Cloudflare %s", what);
	} while (++page <= total && page <= CF_ZONE_PAGES_MAX);
	cf->zones_loaded = true;
	log_debug("cloudflare: %zu zone(s)", cf->n_zones);
	return 0;
}

static const struct cf_zone *zone_of(struct cloudflare *cf, const char *name, struct err *e)
{
	long i;

	if (load_zones(cf, e) < 0)
		return NULL;
	i = cf_zone_for(cf->zones, cf->n_zones, name);
	if (i < 0) {
		err_set(e, "Cloudflare: no zone of this token holds %s (%zu zone(s) visible)", name,
			cf->n_zones);
		return NULL;
	}
	return &cf->zones[i];
}

static int cf_check(struct dns_provider *p, const char *name, struct err *e)
{
	return zone_of(cf_of(p), name, e) ? 0 : -1;
}

static int create_record(struct cloudflare *cf, const char *name, json_t *rec, char **id, struct err *e)
{
	const struct cf_zone *z = zone_of(cf, name, e);
	_cleanup_free_ char *body = NULL, *path = NULL;
	struct http_response resp;
	char what[320];
	int rc;

	if (!z)
		return -1;
	body = json_dumps(rec, JSON_COMPACT);
	if (!body || asprintf(&path, "/zones/%s/dns_records", z->id) < 0)
		abort();
	snprintf(what, sizeof(what), "POST dns_records (%s %s)",
		 json_string_value(json_object_get(rec, "type")), name);
	if (cf_call(cf, "POST", path, body, what, &resp, e) < 0)
		return -1;
	rc = cf_parse_created((const char *)resp.body.data, resp.status, id, e);
	http_response_free(&resp);
	return rc < 0 ? err_wrap(e, "Cloudflare %s", what) : 0;
}

static int cf_add_txt(struct dns_provider *p, const char *name, const char *content, uint32_t ttl, char **id,
		      struct err *e)
{
	_cleanup_json_ json_t *rec = json_pack("{s:s, s:s, s:s, s:I}", "type", "TXT", "name", name, "content",
					       content, "ttl", (json_int_t)ttl);

	if (!rec)
		return err_set(e, "TXT record for %s: name or content is not UTF-8", name);
	return create_record(cf_of(p), name, rec, id, e);
}

static int cf_add_caa(struct dns_provider *p, const char *name, unsigned flags, const char *tag,
		      const char *value, char **id, struct err *e)
{
	_cleanup_json_ json_t *rec =
	    json_pack("{s:s, s:s, s:{s:I, s:s, s:s}}", "type", "CAA", "name", name, "data", "flags",
		      (json_int_t)flags, "tag", tag, "value", value);

	if (!rec)
		return err_set(e, "CAA record for %s: not UTF-8", name);
	return create_record(cf_of(p), name, rec, id, e);
}

static int cf_list(struct dns_provider *p, const char *name, struct dns_records *out, struct err *e)
{
	struct cloudflare *cf = cf_of(p);
	const struct cf_zone *z = zone_of(cf, name, e);
	unsigned page = 1, total = 1;

	memset(out, 0, sizeof(*out));
	if (!z)
		return -1;
	do {
		_cleanup_buf_ struct buf path = BUF_INIT;
		struct http_response resp;
		char what[320];
		int rc;

		buf_printf(&path, "/zones/%s/dns_records?name=", z->id);
		put_escaped(&path, name);
		buf_printf(&path, "&page=%u&per_page=%d", page, CF_RECORDS_PER_PAGE);
		snprintf(what, sizeof(what), "GET dns_records (%s) page %u", name, page);
		if (cf_call(cf, "GET", (const char *)path.data, NULL, what, &resp, e) < 0)
			goto fail;
		rc = cf_parse_records((const char *)resp.body.data, resp.status, name, out, &total, e);
		http_response_free(&resp);
		if (rc < 0) {
			err_wrap(e, "Cloudflare %s", what);
			goto fail;
		}
	} while (++page <= total && page <= CF_RECORD_PAGES_MAX);
	return 0;
fail:
	dns_records_free(out);
	return -1;
}

static int cf_remove(struct dns_provider *p, const char *name, const char *id, struct err *e)
{
	struct cloudflare *cf = cf_of(p);
	const struct cf_zone *z = zone_of(cf, name, e);
	_cleanup_buf_ struct buf path = BUF_INIT;
	struct http_response resp;
	char what[320];
	int rc;

	if (!z)
		return -1;
	buf_printf(&path, "/zones/%s/dns_records/", z->id);
	put_escaped(&path, id);
	snprintf(what, sizeof(what), "DELETE dns_records/%s (%s)", id, name);
	if (cf_call(cf, "DELETE", (const char *)path.data, NULL, what, &resp, e) < 0)
		return -1;
	rc = cf_parse_ok((const char *)resp.body.data, resp.status, e);
	http_response_free(&resp);
	return rc < 0 ? err_wrap(e, "Cloudflare %s", what) : 0;
}

static void cf_free(struct dns_provider *p)
{
	struct cloudflare *cf = cf_of(p);

	if (cf->auth_header) {
		secure_zero(cf->auth_header, strlen(cf->auth_header));
		free(cf->auth_header);
	}
	free(cf->api_url);
	free(cf->ca_file);
	cf_zones_free(cf->zones, cf->n_zones);
	free(cf);
}

static const struct dns_provider_ops cloudflare_ops = {
    .kind = "cloudflare",
    .check = cf_check,
    .add_txt = cf_add_txt,
    .add_caa = cf_add_caa,
    .list = cf_list,
    .remove = cf_remove,
    .free = cf_free,
};

struct dns_provider *dns_cloudflare_new(const struct cloudflare_opts *o, struct err *e)
{
	const char *url = o->api_url && *o->api_url ? o->api_url : CLOUDFLARE_API_URL;
	struct cloudflare *cf;
	size_t ul;

	if (!o->api_token || !*o->api_token) {
		err_set(e, "no Cloudflare API token (cf_api_token)");
		return NULL;
	}
	for (const char *s = o->api_token; *s; s++) {
		if (!isgraph((unsigned char)*s)) {
			err_set(e, "the Cloudflare API token has spaces or control characters");
			return NULL;
		}
	}
	if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) {
		err_set(e, "Cloudflare API URL must be http(s): %s", url);
		return NULL;
	}
	cf = calloc(1, sizeof(*cf));
	if (!cf)
		abort();
	cf->base.ops = &cloudflare_ops;
	cf->api_url = strdup(url);
	if (!cf->api_url || asprintf(&cf->auth_header, "Authorization: Bearer %s", o->api_token) < 0)
		abort();
	ul = strlen(cf->api_url);
	while (ul && cf->api_url[ul - 1] == '/')
		cf->api_url[--ul] = '\0';
	cf->ca_file = o->ca_file ? strdup(o->ca_file) : NULL;
	cf->timeout_ms = o->timeout_ms ? o->timeout_ms : 30000;
	return &cf->base;
}
