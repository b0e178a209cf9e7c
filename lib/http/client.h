/*
 * client.h — blocking HTTP client on libcurl, for service-to-service calls
 * (prpc clients, the KMS auth webhook, the gateway's ACME/cert fetches).
 *
 * One call, one transfer: no shared handles, so it is safe from any thread
 * (call it from a pool thread when inside an event loop). TLS can trust a
 * CA given as PEM text or file, present a client certificate from PEM text,
 * or hand the SSL_CTX to a caller hook that installs its own verification
 * (RA-TLS: the server certificate carries a quote, not a CA signature).
 */
#ifndef DSTACK_HTTP_CLIENT_H
#define DSTACK_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "core/buf.h"
#include "core/err.h"

struct http_client_opts {
	long connect_timeout_ms; /* default 5000 */
	long timeout_ms;         /* whole transfer; default 60000 */
	size_t max_body;         /* reply body cap; default 10 MiB */
	const char *ca_pem;      /* trust only these CAs (PEM text) */
	const char *ca_file;     /* or this CA file */
	const char *cert_pem;    /* client certificate chain (PEM text) */
	const char *key_pem;     /* its private key (PEM text) */
	/*
	 * Called with the connection's SSL_CTX before the handshake; it may set
	 * its own verify callback (SSL_CTX_set_verify). Return 0, or -1 to abort.
	 * curl still checks the chain and host name unless `insecure` is set;
	 * for RA-TLS set `insecure` and let the hook's callback decide alone.
	 */
	int (*ssl_ctx_hook)(SSL_CTX *ctx, void *arg);
	void *ssl_ctx_arg;
	bool insecure;           /* no certificate or host name check by curl itself */
	const char *unix_socket; /* connect here instead of the URL's host */
};

struct http_response {
	long status;
	struct buf body;    /* NUL-terminated */
	struct buf headers; /* raw header block of the final response */
};

/*
 * Perform METHOD url. `headers` is a NULL-terminated list of "Name: value"
 * (may be NULL). `body` may be NULL for no body. A reply is returned for any
 * HTTP status; only transport failures (and over-cap bodies) are errors.
 */
int http_fetch(const struct http_client_opts *opts, const char *method, const char *url,
	       const char *const *headers, const void *body, size_t body_len, struct http_response *resp,
	       struct err *e);
/* First header value of the response (case-insensitive), malloc'd, or NULL. */
char *http_response_header(const struct http_response *resp, const char *name);
void http_response_free(struct http_response *resp);

#endif
