/*
 * session.c — directory, nonces and signed requests (see session.h).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acme/jws.h"
#include "acme/session.h"
#include "core/cleanup.h"
#include "core/log.h"

#define ACME_REQUEST_TIMEOUT_MS 30000
#define ACME_BAD_NONCE_RETRIES 4
#define ACME_USER_AGENT "User-Agent: dstack-acme/" DSTACK_VERSION

uint64_t acme_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int acme_session_check_time(const struct acme_session *s, struct err *e)
{
	if (s->opts.cancel && *s->opts.cancel)
		return err_set(e, "cancelled");
	if (s->opts.deadline_ms && acme_now_ms() >= s->opts.deadline_ms)
		return err_set(e, "timed out");
	return 0;
}

int acme_session_sleep(struct acme_session *s, uint64_t ms, struct err *e)
{
	uint64_t end = acme_now_ms() + ms;

	for (;;) {
		uint64_t now = acme_now_ms(), step;

		if (acme_session_check_time(s, e) < 0)
			return -1;
		if (now >= end)
			return 0;
		step = end - now < 100 ? end - now : 100;
		nanosleep(&(struct timespec){.tv_sec = 0, .tv_nsec = (long)step * 1000000}, NULL);
	}
}

/* Request options bounded by what is left of the deadline. */
static int http_opts(const struct acme_session *s, struct http_client_opts *h, struct err *e)
{
	long timeout = ACME_REQUEST_TIMEOUT_MS;

	if (acme_session_check_time(s, e) < 0)
		return -1;
	if (s->opts.deadline_ms) {
		uint64_t left = s->opts.deadline_ms - acme_now_ms();

		if (left < (uint64_t)timeout)
			timeout = left > 0 ? (long)left : 1;
	}
	*h = (struct http_client_opts){
	    .timeout_ms = timeout,
	    .connect_timeout_ms = timeout < 10000 ? timeout : 10000,
	    .ca_file = s->opts.ca_file,
	    .max_body = 4 * 1024 * 1024,
	};
	return 0;
}

static bool valid_nonce(const char *n)
{
	if (!n || !*n || strlen(n) > 512)
		return false;
	for (; *n; n++)
		if (!isalnum((unsigned char)*n) && *n != '-' && *n != '_')
			return false;
	return true;
}

static void take_nonce(struct acme_session *s, const struct http_response *resp)
{
	char *n = http_response_header(resp, "Replay-Nonce");

	if (valid_nonce(n)) {
		free(s->nonce);
		s->nonce = n;
	} else {
		free(n);
	}
}

static int fetch_nonce(struct acme_session *s, struct err *e)
{
	const char *headers[] = {ACME_USER_AGENT, NULL};
	struct http_client_opts h;
	struct http_response resp;

	if (http_opts(s, &h, e) < 0)
		return err_wrap(e, "newNonce");
	if (http_fetch(&h, "HEAD", s->dir.new_nonce, headers, NULL, 0, &resp, e) < 0)
		return err_wrap(e, "newNonce");
	free(s->nonce);
	s->nonce = NULL;
	take_nonce(s, &resp);
	http_response_free(&resp);
	if (!s->nonce)
		return err_set(e, "newNonce: HTTP %ld without a valid Replay-Nonce", resp.status);
	return 0;
}

int acme_session_open(struct acme_session *s, const char *directory_url, const struct acme_opts *o,
		      struct err *e)
{
	const char *headers[] = {ACME_USER_AGENT, "Accept: application/json", NULL};
	struct http_client_opts h;
	struct http_response resp;
	int rc;

	memset(s, 0, sizeof(*s));
	if (o)
		s->opts = *o;
	if (!s->opts.poll_ms)
		s->opts.poll_ms = 2000;
	s->directory_url = strdup(directory_url);
	if (!s->directory_url)
		abort();
	if (http_opts(s, &h, e) < 0)
		return err_wrap(e, "ACME directory %s", directory_url);
	if (http_fetch(&h, "GET", directory_url, headers, NULL, 0, &resp, e) < 0)
		return err_wrap(e, "ACME directory");
	if (resp.status != 200) {
		err_set(e, "ACME directory %s: HTTP %ld", directory_url, resp.status);
		http_response_free(&resp);
		return -1;
	}
	rc = acme_parse_directory((const char *)resp.body.data, &s->dir, e);
	http_response_free(&resp);
	if (rc < 0)
		return err_wrap(e, "ACME server at %s", directory_url);
	return 0;
}

int acme_session_set_key(struct acme_session *s, EVP_PKEY *key, const char *kid, struct err *e)
{
	_cleanup_json_ json_t *jwk = acme_jwk_of_key(key, e);

	if (!jwk)
		return -1;
	free(s->thumbprint);
	s->thumbprint = acme_jwk_thumbprint(jwk, e);
	if (!s->thumbprint)
		return -1;
	s->key = key;
	s->kid = kid;
	return 0;
}

void acme_session_close(struct acme_session *s)
{
	acme_directory_clear(&s->dir);
	free(s->directory_url);
	free(s->nonce);
	free(s->thumbprint);
	memset(s, 0, sizeof(*s));
}

int acme_session_post(struct acme_session *s, const char *url, const char *payload, const char *accept,
		      struct http_response *resp, char **location, struct err *e)
{
	char accept_hdr[128];
	const char *headers[] = {ACME_USER_AGENT, "Content-Type: application/jose+json", accept_hdr, NULL};

	snprintf(accept_hdr, sizeof(accept_hdr), "Accept: %s", accept ? accept : "application/json");
	if (location)
		*location = NULL;
	for (int attempt = 0;; attempt++) {
		_cleanup_free_ char *body = NULL, *type = NULL;
		_cleanup_buf_ struct buf problem = BUF_INIT;
		struct http_client_opts h;

		if (!s->nonce && fetch_nonce(s, e) < 0)
			return -1;
		body = acme_jws_build(s->key, s->kid, s->nonce, url, payload, e);
		free(s->nonce);
		s->nonce = NULL;
		if (!body || http_opts(s, &h, e) < 0)
			return -1;
		if (http_fetch(&h, "POST", url, headers, body, strlen(body), resp, e) < 0)
			return -1;
		take_nonce(s, resp);
		if (resp->status < 400) {
			if (location)
				*location = http_response_header(resp, "Location");
			return 0;
		}
		type = acme_problem_type((const char *)resp->body.data);
		acme_problem_format((const char *)resp->body.data, resp->status, &problem);
		http_response_free(resp);
		if (strcmp(type, "urn:ietf:params:acme:error:badNonce") == 0 &&
		    attempt < ACME_BAD_NONCE_RETRIES) {
			log_debug("acme: bad nonce, retrying (%d)", attempt + 1);
			continue;
		}
		return err_set(e, "%s", (const char *)problem.data);
	}
}
