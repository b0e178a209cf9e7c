/*
 * msg.h — the ACME server's JSON objects (RFC 8555 §7.1): directory, order,
 * authorization with its challenges, and problem documents (RFC 7807).
 *
 * Pure parsers over reply bodies, kept apart from the HTTP code so the
 * fuzzer (fuzz/acme_json.c) can drive them. Every URL kept must be http(s);
 * challenge tokens must be base64url; strings are capped. Unknown members
 * are ignored, as RFC 8555 asks of clients.
 */
#ifndef DSTACK_ACME_MSG_H
#define DSTACK_ACME_MSG_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/err.h"

enum acme_status {
	ACME_STATUS_UNKNOWN,
	ACME_STATUS_PENDING,
	ACME_STATUS_READY,
	ACME_STATUS_PROCESSING,
	ACME_STATUS_VALID,
	ACME_STATUS_INVALID,
	ACME_STATUS_EXPIRED,
	ACME_STATUS_DEACTIVATED,
	ACME_STATUS_REVOKED,
};

const char *acme_status_name(enum acme_status s);

struct acme_directory {
	char *new_nonce, *new_account, *new_order;
	char *terms_of_service; /* meta.termsOfService, or NULL */
};

struct acme_order {
	enum acme_status status;
	char **authorizations;
	size_t n_authorizations;
	char *finalize;
	char *certificate; /* once valid */
	char *error;       /* formatted problem, or NULL */
};

struct acme_challenge {
	char *type; /* "dns-01", "http-01", ... */
	char *url;
	char *token; /* NULL for types without one */
	enum acme_status status;
	char *error; /* formatted problem, or NULL */
};

struct acme_authz {
	enum acme_status status;
	char *identifier; /* the DNS name, without "*." for wildcards */
	bool wildcard;
	struct acme_challenge *challenges;
	size_t n_challenges;
};

int acme_parse_directory(const char *body, struct acme_directory *out, struct err *e);
int acme_parse_order(const char *body, struct acme_order *out, struct err *e);
int acme_parse_authz(const char *body, struct acme_authz *out, struct err *e);
/* A problem document (or any error reply) as one line:
 * "urn:ietf:params:acme:error:badNonce: detail (HTTP 400)"; subproblems
 * are appended. Never fails: a body that is not a problem gives
 * "HTTP <status>". */
void acme_problem_format(const char *body, long status, struct buf *out);
/* The problem type of an error body ("" when none). Malloc'd. */
char *acme_problem_type(const char *body);

void acme_directory_clear(struct acme_directory *d);
void acme_order_clear(struct acme_order *o);
void acme_authz_clear(struct acme_authz *a);

#endif
