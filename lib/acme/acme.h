/*
 * acme.h — an ACME client (RFC 8555) for dns-01 certificates, shaped for
 * two callers: the host `certbot` tool (gateway.md §8.4) and, later, the
 * gateway's distributed certbot (§8.1).
 *
 *   - Everything is a blocking call with no callbacks and no global state:
 *     run it on a pool thread when inside an event loop. A deadline and a
 *     cancel flag (acme_opts) bound every wait and request.
 *   - The account is a value the caller stores: acme_account_dump gives the
 *     credentials JSON {"account_id","acme_url","credentials":{"id",
 *     "key_pkcs8","directory"}} (the reference's format, so its files load),
 *     acme_account_load reads it back. Nothing touches the disk here.
 *   - DNS changes go through a dns_provider (lib/dns/provider.h).
 *
 * acme_obtain is the one call a renewal needs: order the names, answer each
 * pending authorization with dns-01 (stale TXT records deleted, the new one
 * created with the given TTL, checked with a resolver until visible or
 * max_dns_wait has passed, then the CA told), finalize with a CSR for a
 * fresh P-256 key with an empty subject, and fetch the chain. Created TXT
 * records are deleted afterwards, whatever happened.
 */
#ifndef DSTACK_ACME_ACME_H
#define DSTACK_ACME_ACME_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "core/err.h"
#include "dns/provider.h"

#define ACME_LE_PRODUCTION "https://acme-v02.api.letsencrypt.org/directory"
#define ACME_LE_STAGING "https://acme-staging-v02.api.letsencrypt.org/directory"

struct acme_opts {
	const char *ca_file; /* extra trust for the ACME server's TLS (tests), or NULL */
	/* CLOCK_MONOTONIC milliseconds (acme_now_ms) after which requests and
	 * waits fail with "timed out"; 0 for none. */
	uint64_t deadline_ms;
	const volatile sig_atomic_t *cancel; /* non-zero stops at the next wait; may be NULL */
	/* Order polling interval (the reference's 2 s when 0). */
	uint64_t poll_ms;
};

uint64_t acme_now_ms(void);

struct acme_account {
	char *directory_url; /* the acme_url the account lives at */
	char *account_url;   /* account_id: the JWS "kid" */
	EVP_PKEY *key;       /* P-256 */
};

/* Create a new account (fresh key; {contact [], termsOfServiceAgreed}). */
int acme_account_create(const char *directory_url, const struct acme_opts *o, struct acme_account *out,
			struct err *e);
int acme_account_load(const char *credentials_json, struct acme_account *out, struct err *e);
/* The credentials JSON (holds the private key: store it 0600). */
char *acme_account_dump(const struct acme_account *a, struct err *e);
/* credentials_json parses and its acme_url equals acme_url. */
bool acme_credentials_match(const char *credentials_json, const char *acme_url);
void acme_account_clear(struct acme_account *a);

struct acme_issue_req {
	const char *const *names; /* order identifiers, e.g. "*.example.com" */
	size_t n_names;
	struct dns_provider *dns;
	uint32_t txt_ttl;         /* TTL of the challenge TXT records */
	uint64_t max_dns_wait_ms; /* self-check budget; 0 skips the check */
	const char *dns_server;   /* self-check resolver "ip:port"; NULL = system */
};

struct acme_cert {
	char *chain_pem; /* leaf first, as the CA sent it */
	char *key_pem;   /* PKCS#8 */
};

int acme_obtain(const struct acme_account *a, const struct acme_opts *o, const struct acme_issue_req *r,
		struct acme_cert *out, struct err *e);
void acme_cert_clear(struct acme_cert *c);

/*
 * Pin issuance to this account with CAA (gateway.md §8.3), for each base
 * domain (names with "*." removed): add guards 0 issue ";" and 0 issuewild
 * ";", delete the other issue/issuewild records, add both tags with
 * "letsencrypt.org;validationmethods=dns-01;accounturi=<account_url>", then
 * delete the guards.
 */
int acme_set_caa(struct dns_provider *dns, const char *account_url, const char *const *names, size_t n_names,
		 struct err *e);

#endif
