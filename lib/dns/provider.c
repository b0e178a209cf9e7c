/*
 * provider.c — what every dns_provider shares: freeing, removing stale TXT
 * records, and building a provider from a stored JSON credential.
 */
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/mem.h"
#include "dns/cloudflare.h"
#include "dns/provider.h"

void dns_provider_free(struct dns_provider *p)
{
	if (p)
		p->ops->free(p);
}

void dns_record_clear(struct dns_record *r)
{
	free(r->id);
	free(r->type);
	free(r->name);
	free(r->content);
	free(r->caa_tag);
	free(r->caa_value);
	memset(r, 0, sizeof(*r));
}

void dns_records_free(struct dns_records *r)
{
	for (size_t i = 0; i < r->count; i++)
		dns_record_clear(&r->items[i]);
	free(r->items);
	r->items = NULL;
	r->count = 0;
}

int dns_remove_txt_records(struct dns_provider *p, const char *name, struct err *e)
{
	struct dns_records recs;
	int rc = 0;

	if (dns_list(p, name, &recs, e) < 0)
		return -1;
	for (size_t i = 0; i < recs.count && rc == 0; i++) {
		if (strcmp(recs.items[i].type, "TXT") != 0)
			continue;
		log_info("dns: removing stale TXT record %s at %s", recs.items[i].id, name);
		rc = dns_remove(p, name, recs.items[i].id, e);
	}
	dns_records_free(&recs);
	return rc;
}

struct dns_provider *dns_provider_from_json(const char *json, const char *ca_file, struct err *e)
{
	_cleanup_json_ json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, NULL);
	json_t *type = json_object_get(root, "type");
	json_t *token = json_object_get(root, "api_token");
	json_t *url = json_object_get(root, "api_url");
	struct dns_provider *p;

	if (!json_is_object(root)) {
		err_set(e, "DNS credential is not a JSON object");
		return NULL;
	}
	if (!json_is_string(type) || strcmp(json_string_value(type), "cloudflare") != 0) {
		err_set(e, "DNS credential: type must be \"cloudflare\"");
		return NULL;
	}
	if (!json_is_string(token) || (url && !json_is_null(url) && !json_is_string(url))) {
		err_set(e, "DNS credential: api_token must be a string (api_url a string if present)");
		return NULL;
	}
	p = dns_cloudflare_new(
	    &(struct cloudflare_opts){
		.api_token = json_string_value(token),
		.api_url = json_is_string(url) ? json_string_value(url) : NULL,
		.ca_file = ca_file,
	    },
	    e);
	/* jansson keeps its own copy of the token: wipe it before the decref. */
	secure_zero((void *)json_string_value(token), json_string_length(token));
	return p;
}
