/*
 * daemon.h — the serving end of a dstack daemon's main() (dstack-kms,
 * dstack-gateway): the RPC server behind a TLS listener that stops the loop
 * on SIGTERM/SIGINT, side servers on plain listeners (admin, debug) with the
 * same options, every listener logged with the address it bound, then one
 * event loop until a signal, and everything freed in reverse order. The
 * daemon mounts its services on the servers it gets back; nothing is served
 * before http_daemon_run.
 *
 *     struct http_daemon d = {.base = base, .opts = {.workers = 8}};
 *     if (!(srv = http_daemon_rpc(&d, &tls_files, &spec, e)) || mount(srv, e) < 0)
 *             goto out;
 *     rc = http_daemon_run(&d);
 *     out: http_daemon_free(&d);
 */
#ifndef DSTACK_HTTP_DAEMON_H
#define DSTACK_HTTP_DAEMON_H

#include <stddef.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "core/err.h"
#include "http/listen.h"
#include "http/server.h"
#include "http/tls_server.h"

#define HTTP_DAEMON_MAX_SERVERS 4

struct http_daemon {
	struct event_base *base;      /* not owned */
	struct http_server_opts opts; /* for every server */
	/* private */
	SSL_CTX *tls;
	struct http_server *servers[HTTP_DAEMON_MAX_SERVERS];
	size_t n_servers;
};

/* The TLS files of a config bound with CFG_TLS_FIELDS (lib/config): the members tls_certs,
 * tls_key, tls_ca_certs and tls_mandatory of *cfg, named section in messages. */
#define HTTP_TLS_FILES_OF(cfg, section_name, depth)                                                          \
	{                                                                                                    \
		.section = (section_name), .certs = (cfg)->tls_certs, .key = (cfg)->tls_key,                 \
		.ca_certs = (cfg)->tls_ca_certs, .mandatory = (cfg)->tls_mandatory, .verify_depth = (depth)  \
	}

/* The RPC server: TLS from files, listening on spec (logged as "rpc (TLS)"), shut down by
 * SIGTERM/SIGINT. Owned by d. */
struct http_server *http_daemon_rpc(struct http_daemon *d, const struct http_tls_files *files,
				    const struct http_listen_spec *spec, struct err *e);
/* A plain server listening on spec, logged as what ("admin"). Owned by d. */
struct http_server *http_daemon_plain(struct http_daemon *d, const struct http_listen_spec *spec,
				      const char *what, struct err *e);
/* Serve until the RPC server is shut down; 0. */
int http_daemon_run(struct http_daemon *d);
/* Free the servers (last first) and the TLS context; d can be set up again. */
void http_daemon_free(struct http_daemon *d);

#endif
