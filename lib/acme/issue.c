/*
 * issue.c — one certificate order from start to chain (acme_obtain, see
 * acme.h and gateway.md §8.2).
 *
 * The order is driven by its status, re-read every poll interval:
 * pending → answer each pending authorization with dns-01 once, then wait;
 * ready → finalize once with the CSR; processing → wait; valid → download;
 * invalid → report the failing authorization's problem. TXT records created
 * along the way are deleted on every exit path.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme/acme.h"
#include "acme/cert.h"
#include "acme/jws.h"
#include "acme/session.h"
#include "codec/base64.h"
#include "codec/pem.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/log.h"
#include "core/mem.h"
#include "dns/txt_lookup.h"

#define DNS_CHECK_FIRST_MS 250
#define DNS_CHECK_MAX_MS 32000
#define CHAIN_FETCH_TRIES 5

struct challenge_rec {
	char *record;  /* _acme-challenge.<identifier> */
	char *value;   /* the TXT value */
	char *dns_id;  /* provider id of the created record */
	char *url;     /* challenge URL to POST once visible */
	bool answered; /* POSTed */
};

struct issue {
	struct acme_session s;
	const struct acme_issue_req *req;
	struct challenge_rec *recs;
	size_t n_recs;
};

void acme_cert_clear(struct acme_cert *c)
{
	free(c->chain_pem);
	if (c->key_pem) {
		secure_zero(c->key_pem, strlen(c->key_pem));
		free(c->key_pem);
	}
	memset(c, 0, sizeof(*c));
}

static void remove_created_records(struct issue *is)
{
	for (size_t i = 0; i < is->n_recs; i++) {
		struct challenge_rec *r = &is->recs[i];
		struct err e = ERR_INIT;

		if (r->dns_id && dns_remove(is->req->dns, r->record, r->dns_id, &e) < 0)
			log_warn("acme: could not delete TXT record %s at %s: %s", r->dns_id, r->record,
				 err_str(&e));
		free(r->record);
		free(r->value);
		free(r->dns_id);
		free(r->url);
	}
	free(is->recs);
	is->recs = NULL;
	is->n_recs = 0;
}

/* POST-as-GET a URL and parse it with parse(body, out, e). */
static int fetch_object(struct issue *is, const char *url, const char *what,
			int (*parse)(const char *, void *, struct err *), void *out, struct err *e)
{
	struct http_response resp;
	int rc;

	if (acme_session_post(&is->s, url, NULL, NULL, &resp, NULL, e) < 0)
		return err_wrap(e, "%s", what);
	rc = parse((const char *)resp.body.data, out, e);
	http_response_free(&resp);
	return rc;
}

static int parse_order(const char *body, void *out, struct err *e)
{
	return acme_parse_order(body, out, e);
}

static int parse_authz(const char *body, void *out, struct err *e)
{
	return acme_parse_authz(body, out, e);
}

/* Create the TXT record for one pending authorization. */
static int prepare_challenge(struct issue *is, const struct acme_authz *az, struct err *e)
{
	const struct acme_challenge *ch = NULL;
	struct challenge_rec *r, *grown;

	for (size_t i = 0; i < az->n_challenges && !ch; i++)
		if (strcmp(az->challenges[i].type, "dns-01") == 0 && az->challenges[i].token)
			ch = &az->challenges[i];
	if (!ch)
		return err_set(e, "the CA offers no dns-01 challenge for %s", az->identifier);
	grown = realloc(is->recs, (is->n_recs + 1) * sizeof(*grown));
	if (!grown)
		abort();
	is->recs = grown;
	r = &grown[is->n_recs++];
	memset(r, 0, sizeof(*r));
	if (asprintf(&r->record, "_acme-challenge.%s", az->identifier) < 0)
		abort();
	r->value = acme_dns01_value(ch->token, is->s.thumbprint);
	r->url = strdup(ch->url);
	if (!r->url)
		abort();
	if (dns_remove_txt_records(is->req->dns, r->record, e) < 0)
		return err_wrap(e, "removing stale TXT records at %s", r->record);
	if (dns_add_txt(is->req->dns, r->record, r->value, is->req->txt_ttl, &r->dns_id, e) < 0)
		return err_wrap(e, "creating the TXT record at %s", r->record);
	log_info("acme: TXT record %s created at %s (ttl %u)", r->dns_id, r->record, is->req->txt_ttl);
	return 0;
}

static bool txt_visible(struct issue *is, const struct challenge_rec *r)
{
	struct dns_txt t;
	struct err e = ERR_INIT;
	bool found = false;

	if (dns_txt_lookup(is->req->dns_server, r->record, &t, &e) < 0) {
		log_info("acme: self-check %s: %s", r->record, err_str(&e));
		return false;
	}
	for (size_t i = 0; i < t.count && !found; i++)
		found = strcmp(t.values[i], r->value) == 0;
	dns_txt_free(&t);
	return found;
}

/*
 * Wait until every new TXT record is visible: 250 ms, doubling up to 32 s,
 * until max_dns_wait has passed; then go on anyway (the CA may see what our
 * resolver does not).
 */
static int self_check(struct issue *is, struct err *e)
{
	uint64_t waited = 0, delay = DNS_CHECK_FIRST_MS, budget = is->req->max_dns_wait_ms;
	size_t next = 0;

	if (budget == 0) {
		log_info("acme: max_dns_wait is 0: not checking the TXT records");
		return 0;
	}
	while (next < is->n_recs) {
		uint64_t step = delay < budget - waited ? delay : budget - waited;

		if (is->recs[next].answered) {
			next++;
			continue;
		}
		if (acme_session_sleep(&is->s, step, e) < 0)
			return err_wrap(e, "waiting for TXT record %s", is->recs[next].record);
		waited += step;
		if (txt_visible(is, &is->recs[next])) {
			log_info("acme: TXT record at %s is visible", is->recs[next].record);
			next++;
			continue;
		}
		if (waited >= budget) {
			log_warn("acme: TXT record at %s not visible after %llu s (max_dns_wait); asking the "
				 "CA anyway",
				 is->recs[next].record, (unsigned long long)(waited / 1000));
			return 0;
		}
		delay = delay * 2 < DNS_CHECK_MAX_MS ? delay * 2 : DNS_CHECK_MAX_MS;
		log_debug("acme: TXT record at %s not visible yet, next check in %llu ms",
			  is->recs[next].record, (unsigned long long)delay);
	}
	return 0;
}

/* Answer every pending authorization of the order. */
static int authorize(struct issue *is, const struct acme_order *o, struct err *e)
{
	size_t first_new = is->n_recs;

	for (size_t i = 0; i < o->n_authorizations; i++) {
		struct acme_authz az;
		int rc;

		if (fetch_object(is, o->authorizations[i], "authorization", parse_authz, &az, e) < 0)
			return -1;
		if (az.status == ACME_STATUS_VALID) {
			log_info("acme: authorization for %s is already valid", az.identifier);
			acme_authz_clear(&az);
			continue;
		}
		if (az.status != ACME_STATUS_PENDING) {
			err_set(e, "authorization for %s is %s", az.identifier, acme_status_name(az.status));
			acme_authz_clear(&az);
			return -1;
		}
		rc = prepare_challenge(is, &az, e);
		acme_authz_clear(&az);
		if (rc < 0)
			return -1;
	}
	if (self_check(is, e) < 0)
		return -1;
	for (size_t i = first_new; i < is->n_recs; i++) {
		struct http_response resp;

		if (acme_session_post(&is->s, is->recs[i].url, "{}", NULL, &resp, NULL, e) < 0)
			return err_wrap(e, "answering the dns-01 challenge for %s", is->recs[i].record);
		http_response_free(&resp);
		is->recs[i].answered = true;
		log_info("acme: dns-01 challenge for %s submitted", is->recs[i].record);
	}
	return 0;
}

/* Why an invalid order failed: the first invalid authorization's problem. */
static void explain_invalid(struct issue *is, const struct acme_order *o, struct err *e)
{
	for (size_t i = 0; i < o->n_authorizations; i++) {
		struct acme_authz az;
		struct err fe = ERR_INIT;

		if (fetch_object(is, o->authorizations[i], "authorization", parse_authz, &az, &fe) < 0)
			continue;
		if (az.status == ACME_STATUS_INVALID) {
			const char *why = NULL;

			for (size_t j = 0; j < az.n_challenges && !why; j++)
				why = az.challenges[j].error;
			err_set(e, "authorization for %s is invalid: %s", az.identifier,
				why ? why : "no reason given");
			acme_authz_clear(&az);
			return;
		}
		acme_authz_clear(&az);
	}
	err_set(e, "order is invalid: %s", o->error ? o->error : "no reason given");
}

static int finalize(struct issue *is, const char *url, EVP_PKEY *key, struct err *e)
{
	_cleanup_free_ uint8_t *der = NULL;
	_cleanup_free_ char *b64 = NULL, *payload = NULL;
	struct http_response resp;
	size_t len;

	if (acme_csr_der(key, is->req->names, is->req->n_names, &der, &len, e) < 0)
		return -1;
	b64 = base64url_encode(der, len);
	if (asprintf(&payload, "{\"csr\":\"%s\"}", b64) < 0)
		abort();
	if (acme_session_post(&is->s, url, payload, NULL, &resp, NULL, e) < 0)
		return err_wrap(e, "finalize");
	http_response_free(&resp);
	log_info("acme: order finalized");
	return 0;
}

static int download_chain(struct issue *is, const char *url, char **chain, struct err *e)
{
	for (int attempt = 1;; attempt++) {
		struct http_response resp;

		if (acme_session_post(&is->s, url, NULL, "application/pem-certificate-chain", &resp, NULL,
				      e) == 0) {
			*chain = (char *)buf_steal(&resp.body, NULL);
			http_response_free(&resp);
			return 0;
		}
		if (attempt >= CHAIN_FETCH_TRIES)
			return err_wrap(e, "downloading the certificate");
		log_warn("acme: downloading the certificate: %s; retrying", err_str(e));
		if (acme_session_sleep(&is->s, 1000, e) < 0)
			return -1;
	}
}

static int run_order(struct issue *is, EVP_PKEY *key, char **chain, struct err *e)
{
	_cleanup_buf_ struct buf ids = BUF_INIT;
	_cleanup_free_ char *order_url = NULL;
	struct acme_order o;
	struct http_response resp;
	bool answered = false, finalized = false;
	int rc;

	buf_puts(&ids, "{\"identifiers\":[");
	for (size_t i = 0; i < is->req->n_names; i++) {
		_cleanup_json_ json_t *id =
		    json_pack("{s:s, s:s}", "type", "dns", "value", is->req->names[i]);
		_cleanup_free_ char *t = id ? json_dumps(id, JSON_COMPACT) : NULL;

		if (!t)
			return err_set(e, "domain name is not UTF-8");
		buf_printf(&ids, "%s%s", i ? "," : "", t);
	}
	buf_puts(&ids, "]}");
	if (acme_session_post(&is->s, is->s.dir.new_order, (const char *)ids.data, NULL, &resp, &order_url,
			      e) < 0)
		return err_wrap(e, "newOrder");
	rc = acme_parse_order((const char *)resp.body.data, &o, e);
	http_response_free(&resp);
	if (rc < 0)
		return err_wrap(e, "newOrder");
	if (!order_url) {
		acme_order_clear(&o);
		return err_set(e, "newOrder: no order URL (Location)");
	}
	log_info("acme: order %s created", order_url);
	for (;;) {
		log_debug("acme: order is %s", acme_status_name(o.status));
		switch (o.status) {
		case ACME_STATUS_PENDING:
			if (!answered) {
				rc = authorize(is, &o, e);
				answered = true;
			} else {
				rc = acme_session_sleep(&is->s, is->s.opts.poll_ms, e);
			}
			break;
		case ACME_STATUS_READY:
			if (!finalized) {
				rc = finalize(is, o.finalize, key, e);
				finalized = true;
			} else {
				rc = acme_session_sleep(&is->s, is->s.opts.poll_ms, e);
			}
			break;
		case ACME_STATUS_PROCESSING:
			rc = acme_session_sleep(&is->s, is->s.opts.poll_ms, e);
			break;
		case ACME_STATUS_VALID:
			if (!o.certificate) {
				rc = err_set(e, "order is valid but has no certificate URL");
			} else {
				rc = download_chain(is, o.certificate, chain, e);
			}
			acme_order_clear(&o);
			return rc;
		case ACME_STATUS_INVALID:
			explain_invalid(is, &o, e);
			acme_order_clear(&o);
			return -1;
		default:
			rc = err_set(e, "order is %s", acme_status_name(o.status));
			break;
		}
		acme_order_clear(&o);
		if (rc < 0)
			return -1;
		if (fetch_object(is, order_url, "order", parse_order, &o, e) < 0)
			return -1;
	}
}

int acme_obtain(const struct acme_account *a, const struct acme_opts *o, const struct acme_issue_req *r,
		struct acme_cert *out, struct err *e)
{
	struct issue is = {.req = r};
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
	_cleanup_free_ char *chain = NULL;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (r->n_names == 0)
		return err_set(e, "no domain names to order");
	if (acme_session_open(&is.s, a->directory_url, o, e) < 0 ||
	    acme_session_set_key(&is.s, a->key, a->account_url, e) < 0)
		goto done;
	key = acme_p256_generate(e);
	if (!key)
		goto done;
	rc = run_order(&is, key, &chain, e);
	if (rc == 0)
		rc = acme_check_chain(chain, key, r->names, r->n_names, e);
	if (rc == 0) {
		out->key_pem = pem_write_private_key(key, e);
		rc = out->key_pem ? 0 : -1;
	}
	if (rc == 0)
		out->chain_pem = TAKE_PTR(chain);
done:
	remove_created_records(&is);
	acme_session_close(&is.s);
	if (rc < 0)
		acme_cert_clear(out);
	return rc;
}
