/*
 * tls_server.h — the server-side TLS context and the logged listener that
 * every daemon's RPC endpoint starts with (KMS, gateway): certificate chain
 * and key from files, TLS 1.2 minimum, optional client certificates checked
 * against a CA file. Errors name the config keys the files came from, so an
 * operator reads "rpc.tls.key /etc/kms/rpc.key: …" rather than an OpenSSL
 * error alone.
 */
#ifndef DSTACK_HTTP_TLS_SERVER_H
#define DSTACK_HTTP_TLS_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "core/err.h"
#include "http/listen.h"
#include "http/server.h"

struct http_tls_files {
	const char *section;  /* config section for messages, e.g. "rpc.tls" */
	const char *certs;    /* PEM chain, leaf first */
	const char *key;      /* PEM private key */
	const char *ca_certs; /* client CA file; NULL or "" = no client certificates */
	bool mandatory;       /* with ca_certs: refuse clients without a certificate */
	int verify_depth;     /* with ca_certs: maximum client chain depth */
};

/* A TLS server context from files (caller owns it). */
SSL_CTX *http_tls_server_ctx(const struct http_tls_files *f, struct err *e);

/* http_server_listen, then log "<what> listening on <address>" with the port
 * actually bound; errors are wrapped with the same description. */
int http_server_listen_logged(struct http_server *srv, const struct http_listen_spec *spec, SSL_CTX *tls,
			      const char *what, struct err *e);

#endif
