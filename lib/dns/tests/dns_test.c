/*
 * dns_test.c — unit tests for lib/dns reply handling: the Cloudflare
 * envelope, zone choice (most specific suffix at a label boundary), record
 * filtering, and the DNS wire parser on hand-built messages (compression
 * pointers, split character-strings, NXDOMAIN, SERVFAIL, truncation). The
 * live paths run against the Cloudflare stand-in and pebble-challtestsrv in
 * certbot/tests.
 */
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/tap.h"
#include "dns/cloudflare.h"
#include "dns/provider.h"
#include "dns/txt_lookup.h"

static void test_envelope(void)
{
	struct err e = ERR_INIT;
	char *id = NULL;

	ok(cf_parse_created("{\"success\":true,\"errors\":[],\"result\":{\"id\":\"0123abcd\"}}", 200, &id,
			    &e) == 0 &&
	       strcmp(id, "0123abcd") == 0,
	   "created record id");
	free(id);
	ok(cf_parse_ok(
	       "{\"success\":false,\"errors\":[{\"code\":9109,\"message\":\"Invalid access token\"}]}", 403,
	       &e) < 0,
	   "failed call is an error");
	is_str(err_str(&e), "HTTP 403: error 9109: Invalid access token",
	       "with Cloudflare's code and message");
	ok(cf_parse_ok("{\"success\":false,\"errors\":[]}", 200, &e) < 0,
	   "success:false with HTTP 200 fails too");
	ok(cf_parse_ok("<html>bad gateway</html>", 502, &e) < 0 && strstr(err_str(&e), "HTTP 502"),
	   "non-JSON error reply");
	ok(cf_parse_created("{\"success\":true,\"result\":{\"id\":\"../../zones\"}}", 200, &id, &e) < 0,
	   "an id that could change the URL path is refused");
}

static void test_zones(void)
{
	struct err e = ERR_INIT;
	struct cf_zone *zones = NULL;
	size_t n = 0;
	unsigned pages = 0;

	ok(cf_parse_zones(
	       "{\"success\":true,\"result\":[{\"id\":\"z1\",\"name\":\"example\"},"
	       "{\"id\":\"z2\",\"name\":\"test.example\"}],\"result_info\":{\"page\":1,\"total_pages\":3}}",
	       200, &zones, &n, &pages, &e) == 0,
	   "zone page 1");
	is_int(pages, 3, "total_pages read");
	ok(cf_parse_zones("{\"success\":true,\"result\":[{\"id\":\"z3\",\"name\":\"st.example\"}],"
			  "\"result_info\":{\"page\":2,\"total_pages\":3}}",
			  200, &zones, &n, &pages, &e) == 0 &&
	       n == 3,
	   "zone page 2 appends");
	is_int(cf_zone_for(zones, n, "_acme-challenge.test.example"), 1, "most specific zone wins");
	is_int(cf_zone_for(zones, n, "TEST.EXAMPLE"), 1, "case-insensitive, the apex itself");
	is_int(cf_zone_for(zones, n, "atest.example"), 0,
	       "no match inside a label (atest is not under test)");
	is_int(cf_zone_for(zones, n, "x.test.example."), 1, "trailing dot ignored");
	is_int(cf_zone_for(zones, n, "example.org"), -1, "no zone for another domain");
	cf_zones_free(zones, n);
}

static void test_records(void)
{
	struct err e = ERR_INIT;
	struct dns_records r = {0};
	unsigned pages = 0;

	ok(cf_parse_records("{\"success\":true,\"result\":["
			    "{\"id\":\"r1\",\"type\":\"TXT\",\"name\":\"_acme-challenge.Test.Example\","
			    "\"content\":\"v1\"},"
			    "{\"id\":\"r2\",\"type\":\"TXT\",\"name\":\"x._acme-challenge.test.example\","
			    "\"content\":\"v2\"},"
			    "{\"id\":\"r3\",\"type\":\"CAA\",\"name\":\"_acme-challenge.test.example\","
			    "\"content\":\"0 issue "
			    "\\\";\\\"\",\"data\":{\"flags\":0,\"tag\":\"issue\",\"value\":\";\"}}]}",
			    200, "_acme-challenge.test.example", &r, &pages, &e) == 0,
	   "record page parsed");
	is_int(r.count, 2, "only exact (case-insensitive) name matches kept");
	is_str(r.items[0].id, "r1", "TXT record kept");
	is_str(r.items[1].caa_tag, "issue", "CAA data.tag read");
	is_str(r.items[1].caa_value, ";", "CAA data.value read");
	is_int(pages, 1, "no result_info: one page");
	dns_records_free(&r);
}

/* A reply for _acme-challenge.test.example TXT: question, then two TXT
 * answers whose owner is a compression pointer to the question name; the
 * first splits its text in two character-strings. */
static size_t build_reply(uint8_t *m, uint8_t rcode)
{
	size_t len = 0;

	if (dns_txt_query_build("_acme-challenge.test.example", 0x1234, m, 512, &len, NULL) < 0)
		return 0;
	m[2] |= 0x80; /* QR */
	m[3] = rcode;
	m[7] = 2; /* ANCOUNT */
	const uint8_t a1[] = {0xC0, 12, 0, 16, 0, 1, 0, 0, 0, 60, 0, 8, 3, 'a', 'b', 'c', 3, 'd', 'e', 'f'};
	const uint8_t a2[] = {0xC0, 12, 0, 16, 0, 1, 0, 0, 0, 60, 0, 3, 2, 'x', 'y'};
	memcpy(m + len, a1, sizeof(a1));
	len += sizeof(a1);
	memcpy(m + len, a2, sizeof(a2));
	return len + sizeof(a2);
}

static void test_wire(void)
{
	struct err e = ERR_INIT;
	uint8_t m[512];
	size_t len = build_reply(m, 0);
	struct dns_txt t;

	ok(len > 0 && m[12] == 15 && memcmp(m + 13, "_acme-challenge", 15) == 0,
	   "query name encoded as labels");
	ok(dns_txt_parse_response(m, len, 0x1234, &t, &e) == 0, "reply parsed");
	is_int(t.count, 2, "two TXT records");
	if (t.count == 2) {
		is_str(t.values[0], "abcdef", "character-strings of one record joined");
		is_str(t.values[1], "xy", "second record");
	}
	dns_txt_free(&t);
	ok(dns_txt_parse_response(m, len, 0x9999, &t, &e) < 0, "a reply with another id is refused");
	ok(dns_txt_parse_response(m, len - 1, 0x1234, &t, &e) < 0, "a truncated answer is an error");
	len = build_reply(m, 3);
	ok(dns_txt_parse_response(m, len, 0x1234, &t, &e) == 0 && t.count == 0,
	   "NXDOMAIN is an empty answer");
	len = build_reply(m, 2);
	ok(dns_txt_parse_response(m, len, 0x1234, &t, &e) < 0 && strstr(err_str(&e), "SERVFAIL"),
	   "SERVFAIL is an error");
	len = build_reply(m, 0);
	m[len - 2] = 0; /* "x\0" */
	ok(dns_txt_parse_response(m, len, 0x1234, &t, &e) == 0 && t.count == 1,
	   "a value with a NUL is skipped");
	dns_txt_free(&t);
	ok(dns_txt_query_build("a..b", 1, m, sizeof(m), &len, &e) < 0, "empty label refused");
}

static void test_from_json(void)
{
	struct err e = ERR_INIT;
	struct dns_provider *p = dns_provider_from_json(
	    "{\"type\":\"cloudflare\",\"api_token\":\"tok\",\"api_url\":\"http://127.0.0.1:9\"}", NULL, &e);

	ok(p && strcmp(p->ops->kind, "cloudflare") == 0, "provider from a stored credential");
	dns_provider_free(p);
	ok(!dns_provider_from_json("{\"type\":\"route53\"}", NULL, &e), "unknown provider type refused");
	ok(!dns_provider_from_json("{\"type\":\"cloudflare\",\"api_token\":\"a\\r\\nX-Evil: 1\"}", NULL, &e),
	   "a token that would inject a header is refused");
	ok(strstr(err_str(&e), "X-Evil") == NULL, "and the token is not echoed in the error");
}

int main(void)
{
	test_envelope();
	test_zones();
	test_records();
	test_wire();
	test_from_json();
	return tap_done();
}
