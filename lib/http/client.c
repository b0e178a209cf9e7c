/*
 * client.c — libcurl easy transfers (see client.h). PEM material is passed
 * as curl blobs, so keys never touch the filesystem.
 */
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "http/client.h"

struct xfer {
	const struct http_client_opts *opts;
	struct http_response *resp;
	size_t max_body;
	bool too_big;
};

static size_t on_body(char *ptr, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * n;

	if (x->resp->body.len + len > x->max_body) {
		x->too_big = true;
		return 0; /* aborts the transfer */
	}
	buf_append(&x->resp->body, ptr, len);
	return len;
}

static size_t on_header(char *ptr, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * n;

	/* A new status line starts a new header block (redirects, 100 Continue). */
	if (len >= 5 && memcmp(ptr, "HTTP/", 5) == 0)
		buf_reset(&x->resp->headers);
	if (x->resp->headers.len + len <= 256 * 1024)
		buf_append(&x->resp->headers, ptr, len);
	return len;
}

static CURLcode on_ssl_ctx(CURL *curl, void *ssl_ctx, void *arg)
{
	struct xfer *x = arg;

	return x->opts->ssl_ctx_hook(ssl_ctx, x->opts->ssl_ctx_arg) == 0 ? CURLE_OK : CURLE_SSL_CERTPROBLEM;
}

static int global_init(struct err *e)
{
	/* Reference-counted and thread-safe since curl 7.84 (Debian 12 has 7.88). */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return err_set(e, "curl_global_init failed");
	return 0;
}

int http_fetch(const struct http_client_opts *opts, const char *method, const char *url,
	       const char *const *headers, const void *body, size_t body_len, struct http_response *resp,
	       struct err *e)
{
	static const struct http_client_opts defaults = {0};
	struct curl_slist *hl = NULL;
	struct xfer x = {0};
	char errbuf[CURL_ERROR_SIZE] = "";
	CURLcode rc;
	CURL *c;
	int ret = -1;

	if (!opts)
		opts = &defaults;
	memset(resp, 0, sizeof(*resp));
	if (global_init(e) < 0)
		return -1;
	c = curl_easy_init();
	if (!c)
		return err_set(e, "curl_easy_init failed");
	x.opts = opts;
	x.resp = resp;
	x.max_body = opts->max_body ? opts->max_body : 10 * 1024 * 1024;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
			 opts->connect_timeout_ms ? opts->connect_timeout_ms : 5000L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, opts->timeout_ms ? opts->timeout_ms : 60000L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	if (strcmp(method, "GET") == 0) {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	} else if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else {
		if (strcmp(method, "POST") != 0)
			curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? body_len : 0));
	}
	/* Do not wait a second for "100 Continue" on large bodies. */
	hl = curl_slist_append(hl, "Expect:");
	for (size_t i = 0; headers && headers[i]; i++)
		hl = curl_slist_append(hl, headers[i]);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	if (opts->unix_socket)
		curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, opts->unix_socket);
	if (opts->ca_pem) {
		struct curl_blob blob = {(void *)opts->ca_pem, strlen(opts->ca_pem), CURL_BLOB_COPY};

		curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &blob);
	} else if (opts->ca_file) {
		curl_easy_setopt(c, CURLOPT_CAINFO, opts->ca_file);
	}
	if (opts->cert_pem && opts->key_pem) {
		struct curl_blob cert = {(void *)opts->cert_pem, strlen(opts->cert_pem), CURL_BLOB_COPY};
		struct curl_blob key = {(void *)opts->key_pem, strlen(opts->key_pem), CURL_BLOB_COPY};

		curl_easy_setopt(c, CURLOPT_SSLCERT_BLOB, &cert);
		curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
		curl_easy_setopt(c, CURLOPT_SSLKEY_BLOB, &key);
		curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
	}
	if (opts->insecure) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (opts->ssl_ctx_hook) {
		curl_easy_setopt(c, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
		curl_easy_setopt(c, CURLOPT_SSL_CTX_DATA, &x);
		/* The hook's verification must run on every connection. */
		curl_easy_setopt(c, CURLOPT_SSL_SESSIONID_CACHE, 0L);
	}
	rc = curl_easy_perform(c);
	if (rc != CURLE_OK) {
		if (x.too_big)
			err_set(e, "response body exceeds %zu bytes", x.max_body);
		else
			err_set(e, "%s %s: %s", method, url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
		http_response_free(resp);
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
	buf_reserve(&resp->body, 0);
	buf_reserve(&resp->headers, 0);
	ret = 0;
out:
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	return ret;
}

char *http_response_header(const struct http_response *resp, const char *name)
{
	size_t nl = strlen(name);
	const char *p = (const char *)resp->headers.data, *end = p + resp->headers.len;

	while (p && p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *le = eol ? eol : end;

		if ((size_t)(le - p) > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
			const char *v = p + nl + 1;

			while (v < le && (*v == ' ' || *v == '\t'))
				v++;
			while (le > v && (le[-1] == '\r' || le[-1] == ' ' || le[-1] == '\t'))
				le--;
			return strndup(v, (size_t)(le - v));
		}
		p = eol ? eol + 1 : NULL;
	}
	return NULL;
}

void http_response_free(struct http_response *resp)
{
	buf_free(&resp->body);
	buf_free(&resp->headers);
}
