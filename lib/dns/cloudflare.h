/*
 * cloudflare.h — the Cloudflare DNS API (v4) as a dns_provider (gateway.md
 * §8.3): Bearer-token requests to <api_url>/zones and
 * <api_url>/zones/<zone>/dns_records.
 *
 * The zone of a name is the most specific zone whose name is a suffix of it
 * at a label boundary, over every page of GET /zones (50 a page); the list is
 * fetched once and cached. Record listings are GET
 * dns_records?name=<n>&page=<p>&per_page=100 (at most 19 pages), keeping the
 * records whose name matches exactly, case-insensitively.
 *
 * The token goes only into the Authorization header: never into a URL, an
 * error message or a log line. The reply parsers are separate, pure
 * functions (fuzzed: fuzz/dns_replies.c).
 */
#ifndef DSTACK_DNS_CLOUDFLARE_H
#define DSTACK_DNS_CLOUDFLARE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "dns/provider.h"

#define CLOUDFLARE_API_URL "https://api.cloudflare.com/client/v4"

struct cloudflare_opts {
	const char *api_token; /* required */
	const char *api_url;   /* NULL or "": CLOUDFLARE_API_URL */
	const char *ca_file;   /* extra trust for the API's TLS (tests), or NULL */
	long timeout_ms;       /* per request; 0: 30 s */
};

struct dns_provider *dns_cloudflare_new(const struct cloudflare_opts *o, struct err *e);

/* ---- reply parsing (exposed for tests and the fuzzer) ---- */

struct cf_zone {
	char *id;
	char *name;
};

/*
 * The envelope {"success":bool,"errors":[{"code","message"}],"result":...}.
 * HTTP status >= 400 or success != true is an error naming Cloudflare's
 * codes and messages. On success *result is a borrowed reference into root.
 */
int cf_reply_result(json_t *root, long status, json_t **result, struct err *e);
/* Parse one page of GET /zones: appends to *zones (n grows), sets
 * *total_pages (1 when result_info is absent). */
int cf_parse_zones(const char *body, long status, struct cf_zone **zones, size_t *n, unsigned *total_pages,
		   struct err *e);
/* One page of GET dns_records: appends the records named name (exact,
 * case-insensitive). */
int cf_parse_records(const char *body, long status, const char *name, struct dns_records *out,
		     unsigned *total_pages, struct err *e);
/* POST dns_records reply: the new record's id (malloc'd). */
int cf_parse_created(const char *body, long status, char **id, struct err *e);
/* Any other reply (DELETE): success or an error. */
int cf_parse_ok(const char *body, long status, struct err *e);
/* Index of the most specific zone holding name, or -1. */
long cf_zone_for(const struct cf_zone *zones, size_t n, const char *name);
void cf_zones_free(struct cf_zone *zones, size_t n);

#endif
