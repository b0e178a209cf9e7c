/*
 * txt_lookup.h — TXT queries for the dns-01 self-check: "is the challenge
 * value visible yet?", asked before the CA is told to look.
 *
 * By default the system resolver answers (glibc res_nquery, so
 * /etc/resolv.conf applies). Tests point the check at their own DNS server
 * instead ("127.0.0.1:8053", an IPv4 or [IPv6] literal with port): one UDP
 * query, sent by hand, two tries of two seconds.
 *
 * A name that does not exist or has no TXT records is an empty answer, not
 * an error; errors are "could not get an answer" (timeouts, SERVFAIL,
 * REFUSED, malformed replies).
 */
#ifndef DSTACK_DNS_TXT_LOOKUP_H
#define DSTACK_DNS_TXT_LOOKUP_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct dns_txt {
	char **values; /* one per TXT record: its character-strings joined */
	size_t count;
};

/* server: NULL or "" for the system resolver. */
int dns_txt_lookup(const char *server, const char *name, struct dns_txt *out, struct err *e);
void dns_txt_free(struct dns_txt *t);

/* Build a recursive TXT query for name with the given id (for tests and the
 * custom-server path). */
int dns_txt_query_build(const char *name, uint16_t id, uint8_t *out, size_t cap, size_t *len, struct err *e);
/*
 * Parse a DNS response: NXDOMAIN or no TXT answers give count 0; other
 * non-zero rcodes and malformed messages are errors. TXT values holding a
 * NUL byte are skipped (they cannot match a challenge value). If expect_id
 * is >= 0 the message id must equal it.
 */
int dns_txt_parse_response(const uint8_t *msg, size_t len, long expect_id, struct dns_txt *out,
			   struct err *e);

#endif
