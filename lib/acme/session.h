/*
 * session.h — one conversation with an ACME server (internal to lib/acme):
 * the directory, the anti-replay nonce, JWS-signed POSTs with badNonce
 * retries, and waits bounded by the caller's deadline and cancel flag.
 */
#ifndef DSTACK_ACME_SESSION_H
#define DSTACK_ACME_SESSION_H

#include <stdbool.h>

#include "acme/acme.h"
#include "acme/msg.h"
#include "http/client.h"

struct acme_session {
	struct acme_opts opts;
	struct acme_directory dir;
	char *directory_url;
	char *nonce;
	EVP_PKEY *key;    /* borrowed */
	const char *kid;  /* borrowed; NULL before the account exists */
	char *thumbprint; /* of key */
};

/* Fetch the directory. */
int acme_session_open(struct acme_session *s, const char *directory_url, const struct acme_opts *o,
		      struct err *e);
/* Sign with this key (and kid once the account exists). */
int acme_session_set_key(struct acme_session *s, EVP_PKEY *key, const char *kid, struct err *e);
void acme_session_close(struct acme_session *s);

/*
 * POST payload (NULL: POST-as-GET) to url, signed. Retries badNonce up to
 * four times. HTTP >= 400 is an error carrying the problem document. accept
 * may be NULL. *location gets the Location header when non-NULL.
 */
int acme_session_post(struct acme_session *s, const char *url, const char *payload, const char *accept,
		      struct http_response *resp, char **location, struct err *e);
/* Sleep ms, or fail early when cancelled or past the deadline. */
int acme_session_sleep(struct acme_session *s, uint64_t ms, struct err *e);
/* Fail if cancelled or past the deadline. */
int acme_session_check_time(const struct acme_session *s, struct err *e);

#endif
