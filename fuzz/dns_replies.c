/*
 * dns_replies.c — libFuzzer harness for the replies the certbot reads from
 * DNS-side peers (lib/dns): DNS wire responses to the TXT self-check, and
 * the Cloudflare API's zone lists, record lists and create/delete replies.
 * The first byte picks the parser. Checks the parsers' promises: TXT values
 * without NUL bytes, record names equal to the one asked for, zone matches
 * that really are label-boundary suffixes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dns/cloudflare.h"
#include "dns/txt_lookup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_zone(const struct cf_zone *zones, size_t n, const char *name)
{
	long i = cf_zone_for(zones, n, name);
	size_t nl = strlen(name), zl;

	if (i < 0)
		return;
	if ((size_t)i >= n)
		abort();
	/* Trailing dots do not count on either side. */
	while (nl && name[nl - 1] == '.')
		nl--;
	zl = strlen(zones[i].name);
	while (zl && zones[i].name[zl - 1] == '.')
		zl--;
	if (zl > nl || strncasecmp(name + nl - zl, zones[i].name, zl) != 0)
		abort();
	if (zl < nl && name[nl - zl - 1] != '.')
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct err e = ERR_INIT;
	char *text;

	if (size < 1 || size > 65536)
		return 0;
	text = malloc(size);
	if (!text)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	switch (data[0] % 5) {
	case 0: {
		struct dns_txt t;

		if (dns_txt_parse_response(data + 1, size - 1, -1, &t, &e) == 0) {
			for (size_t i = 0; i < t.count; i++)
				if (!t.values[i])
					abort();
			dns_txt_free(&t);
		}
		break;
	}
	case 1: {
		struct cf_zone *zones = NULL;
		size_t n = 0;
		unsigned pages = 0;

		if (cf_parse_zones(text, 200, &zones, &n, &pages, &e) == 0) {
			if (pages < 1)
				abort();
			check_zone(zones, n, "_acme-challenge.test.example");
			check_zone(zones, n, "example");
			for (size_t i = 0; i < n; i++)
				check_zone(zones, n, zones[i].name);
		}
		cf_zones_free(zones, n);
		break;
	}
	case 2: {
		struct dns_records r = {0};
		unsigned pages = 0;

		if (cf_parse_records(text, 200, "test.example", &r, &pages, &e) == 0) {
			for (size_t i = 0; i < r.count; i++)
				if (strcasecmp(r.items[i].name, "test.example") != 0 || !r.items[i].id ||
				    !r.items[i].content)
					abort();
		}
		dns_records_free(&r);
		break;
	}
	case 3: {
		char *id = NULL;

		if (cf_parse_created(text, 200, &id, &e) == 0 && (!id || !*id))
			abort();
		free(id);
		break;
	}
	default:
		(void)cf_parse_ok(text, data[0] & 0x80 ? 403 : 200, &e);
		break;
	}
	free(text);
	return 0;
}
