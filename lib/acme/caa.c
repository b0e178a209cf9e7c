/*
 * caa.c — pinning issuance to one ACME account with CAA records
 * (acme_set_caa, see acme.h and gateway.md §8.3).
 *
 * The order of operations keeps the domain closed at every instant: the
 * deny-all guards go in first, the old policy comes out, the new policy goes
 * in, and only then do the guards leave. A failure part-way leaves the
 * guards (no CA may issue) rather than an open domain.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "acme/acme.h"
#include "core/cleanup.h"
#include "core/log.h"

/* The CA is hard-coded, as in the reference. */
#define CAA_ISSUER "letsencrypt.org"

/* The tag of a CAA record: from the structured data, else its content
 * ("0 issue \"...\""). Returns a pointer into r or buf. */
static const char *caa_tag_of(const struct dns_record *r, char *buf, size_t size)
{
	unsigned flags;

	if (r->caa_tag)
		return r->caa_tag;
	if (r->content && sscanf(r->content, "%u %63s", &flags, buf) == 2 && size >= 64)
		return buf;
	return "";
}

static int set_one(struct dns_provider *dns, const char *base, const char *policy, struct err *e)
{
	_cleanup_free_ char *guard_issue = NULL, *guard_wild = NULL;
	struct dns_records recs;

	log_info("caa: %s: adding guards 0 issue \";\" and 0 issuewild \";\"", base);
	if (dns_add_caa(dns, base, 0, "issue", ";", &guard_issue, e) < 0 ||
	    dns_add_caa(dns, base, 0, "issuewild", ";", &guard_wild, e) < 0)
		return -1;
	if (dns_list(dns, base, &recs, e) < 0)
		return -1;
	for (size_t i = 0; i < recs.count; i++) {
		const struct dns_record *r = &recs.items[i];
		char tagbuf[64];
		const char *tag;

		if (strcmp(r->type, "CAA") != 0 || strcmp(r->id, guard_issue) == 0 ||
		    strcmp(r->id, guard_wild) == 0)
			continue;
		tag = caa_tag_of(r, tagbuf, sizeof(tagbuf));
		if (strcasecmp(tag, "issue") != 0 && strcasecmp(tag, "issuewild") != 0)
			continue;
		log_info("caa: %s: removing %s record %s (%s)", base, tag, r->id,
			 r->content ? r->content : "");
		if (dns_remove(dns, base, r->id, e) < 0) {
			dns_records_free(&recs);
			return -1;
		}
	}
	dns_records_free(&recs);
	log_info("caa: %s: adding 0 issue and 0 issuewild \"%s\"", base, policy);
	_cleanup_free_ char *id1 = NULL, *id2 = NULL;
	if (dns_add_caa(dns, base, 0, "issue", policy, &id1, e) < 0 ||
	    dns_add_caa(dns, base, 0, "issuewild", policy, &id2, e) < 0)
		return -1;
	log_info("caa: %s: removing the guards", base);
	if (dns_remove(dns, base, guard_issue, e) < 0 || dns_remove(dns, base, guard_wild, e) < 0)
		return -1;
	return 0;
}

int acme_set_caa(struct dns_provider *dns, const char *account_url, const char *const *names, size_t n_names,
		 struct err *e)
{
	_cleanup_free_ char *policy = NULL;

	if (strpbrk(account_url, "\"; \r\n"))
		return err_set(e, "account URL cannot go into a CAA record: %s", account_url);
	if (asprintf(&policy, CAA_ISSUER ";validationmethods=dns-01;accounturi=%s", account_url) < 0)
		abort();
	for (size_t i = 0; i < n_names; i++) {
		const char *base = strncmp(names[i], "*.", 2) == 0 ? names[i] + 2 : names[i];
		bool seen = false;

		for (size_t j = 0; j < i && !seen; j++) {
			const char *other = strncmp(names[j], "*.", 2) == 0 ? names[j] + 2 : names[j];

			seen = strcasecmp(base, other) == 0;
		}
		if (!seen && set_one(dns, base, policy, e) < 0)
			return err_wrap(e, "setting CAA records on %s", base);
	}
	return 0;
}
