/*
 * provider.h — a DNS hosting API as the ACME client needs it: create and
 * delete TXT records (dns-01 challenges) and CAA records (issuance policy),
 * and list the records at a name.
 *
 * It is a small table of operations rather than Cloudflare calls so the
 * ACME code (lib/acme) knows no vendor, and the gateway can build a provider
 * from the DNS credential it stores (dns_provider_from_json). Calls block;
 * one provider is used by one thread at a time (it caches the zone list).
 * Record ids are the provider's own strings; removing one also takes the
 * record's name, which is how the provider finds the zone it lives in.
 */
#ifndef DSTACK_DNS_PROVIDER_H
#define DSTACK_DNS_PROVIDER_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct dns_record {
	char *id;
	char *type;    /* "TXT", "CAA", "A", ... */
	char *name;    /* fully qualified, no trailing dot */
	char *content; /* TXT: the text; CAA: "0 issue \"ca.example\"" */
	/* CAA only (else flags 0 and NULLs). */
	unsigned caa_flags;
	char *caa_tag;
	char *caa_value;
};

struct dns_records {
	struct dns_record *items;
	size_t count;
};

struct dns_provider;

struct dns_provider_ops {
	const char *kind; /* "cloudflare" */
	/* Check that records at name can be managed (credentials work, a zone
	 * holds the name). */
	int (*check)(struct dns_provider *p, const char *name, struct err *e);
	int (*add_txt)(struct dns_provider *p, const char *name, const char *content, uint32_t ttl, char **id,
		       struct err *e);
	int (*add_caa)(struct dns_provider *p, const char *name, unsigned flags, const char *tag,
		       const char *value, char **id, struct err *e);
	/* Every record whose name equals name (case-insensitive). */
	int (*list)(struct dns_provider *p, const char *name, struct dns_records *out, struct err *e);
	int (*remove)(struct dns_provider *p, const char *name, const char *id, struct err *e);
	void (*free)(struct dns_provider *p);
};

struct dns_provider {
	const struct dns_provider_ops *ops;
};

static inline int dns_check(struct dns_provider *p, const char *name, struct err *e)
{
	return p->ops->check(p, name, e);
}
static inline int dns_add_txt(struct dns_provider *p, const char *name, const char *content, uint32_t ttl,
			      char **id, struct err *e)
{
	return p->ops->add_txt(p, name, content, ttl, id, e);
}
static inline int dns_add_caa(struct dns_provider *p, const char *name, unsigned flags, const char *tag,
			      const char *value, char **id, struct err *e)
{
	return p->ops->add_caa(p, name, flags, tag, value, id, e);
}
static inline int dns_list(struct dns_provider *p, const char *name, struct dns_records *out, struct err *e)
{
	return p->ops->list(p, name, out, e);
}
static inline int dns_remove(struct dns_provider *p, const char *name, const char *id, struct err *e)
{
	return p->ops->remove(p, name, id, e);
}
void dns_provider_free(struct dns_provider *p);

/* Delete every TXT record at name (stale challenge values). */
int dns_remove_txt_records(struct dns_provider *p, const char *name, struct err *e);

void dns_record_clear(struct dns_record *r);
void dns_records_free(struct dns_records *r);

/*
 * A provider from a stored credential (JSON text), so callers keep
 * credentials as opaque blobs:
 *   {"type":"cloudflare","api_token":"...","api_url":"https://..."}
 * api_url is optional. ca_file (may be NULL) is trusted for the API's TLS.
 */
struct dns_provider *dns_provider_from_json(const char *json, const char *ca_file, struct err *e);

static inline void dns_provider_freep(struct dns_provider **p)
{
	if (*p)
		dns_provider_free(*p);
}
#define _cleanup_dns_provider_ __attribute__((cleanup(dns_provider_freep)))

#endif
