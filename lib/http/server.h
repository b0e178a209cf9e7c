/*
 * server.h — a small HTTP/1.1 server on libevent bufferevents.
 *
 * Written instead of evhttp because every dstack service needs things evhttp
 * cannot do: a deadline on the whole request (headers + body) so a client
 * trickling one byte per second is dropped, answering after the client has
 * half-closed (the JS SDK sends its request, shuts down its write side and
 * waits for the reply and EOF), TLS with the verified peer certificate
 * visible to handlers (RA-TLS), and handlers that block on a worker thread.
 *
 * Model: one event loop thread owns every connection. A connection handles
 * one request at a time; the handler gets a `struct http_request` and must
 * eventually call http_respond() (or the stream functions) from the loop
 * thread, either before returning or later. Blocking work goes through
 * http_server_submit(): `work` runs on a pool thread, `done` back on the loop.
 * Replies always carry Content-Length, except the streaming mode, which sends
 * no length and closes the connection at the end.
 */
#ifndef DSTACK_HTTP_SERVER_H
#define DSTACK_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <event2/event.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "core/err.h"
#include "http/listen.h"

struct http_server;
struct http_request;

struct http_server_opts {
	size_t max_header_bytes;     /* request line + headers; default 64 KiB */
	size_t max_body_bytes;       /* default 10 MiB; larger → 413 and close */
	unsigned request_timeout_ms; /* whole request (headers + body); default 10 s */
	unsigned idle_timeout_ms;    /* keep-alive idle; default 60 s */
	unsigned write_timeout_ms;   /* a stalled reader of a reply; default 60 s */
	unsigned workers;            /* pool threads for blocking handlers; default 4 */
	unsigned shutdown_grace_ms;  /* in-flight requests on shutdown; default 5 s */
	size_t max_connections;      /* further connections are closed at once; default 4096 */
	const char *app_version;     /* X-App-Version on every reply (NULL: none) */
};

typedef void (*http_handler_fn)(struct http_request *req, void *arg);

/* Create a server on `base` (not owned). opts may be NULL for defaults. */
struct http_server *http_server_new(struct event_base *base, const struct http_server_opts *opts,
				    struct err *e);
/* Close listeners and connections immediately, join the pool, free. */
void http_server_free(struct http_server *srv);

/* Add a header to every reply (e.g. "X-Accel-Buffering", "no"). */
void http_server_add_header(struct http_server *srv, const char *name, const char *value);

/*
 * Routes. An exact route matches the path (without query) exactly; a prefix
 * route matches paths starting with `path`. Exact routes win, then the longest
 * prefix. `method` NULL matches any method. Unrouted requests get 404.
 */
void http_server_route(struct http_server *srv, const char *method, const char *path, bool prefix,
		       http_handler_fn fn, void *arg);
/* Same, and the server calls free_arg(arg) when it is freed (may be NULL). */
void http_server_route_owned(struct http_server *srv, const char *method, const char *path, bool prefix,
			     http_handler_fn fn, void *arg, void (*free_arg)(void *));
/*
 * Let the route registered with exactly this method (NULL: any) and path
 * also take requests whose Content-Length exceeds max_body_bytes, so it can
 * answer them in its own error shape (prpc: 400 {"error": ...}). Such a
 * request reaches the handler with an empty body and
 * http_req_body_too_large() true; the body is never read and the
 * connection closes after the reply. Other routes answer those with 413.
 */
void http_server_route_takes_oversize(struct http_server *srv, const char *method, const char *path);
/*
 * A filter runs before routing on every request (auth: tokens, Basic, mTLS
 * policy). Return true after answering the request yourself (e.g. 401), or
 * false to let it through to the routes. Filters run in the order added.
 */
typedef bool (*http_filter_fn)(struct http_request *req, void *arg);
void http_server_add_filter(struct http_server *srv, http_filter_fn fn, void *arg);
/* GET /health → 200 "OK". */
void http_server_add_health(struct http_server *srv);

/*
 * Start listening. `tls` (may be NULL) is up-referenced and used for every
 * connection on this listener. *bound_port (may be NULL) receives the TCP or
 * vsock port actually bound (useful with port 0).
 */
int http_server_listen(struct http_server *srv, const struct http_listen_spec *spec, SSL_CTX *tls,
		       uint16_t *bound_port, struct err *e);
/* Serve an already bound and listening socket (systemd socket activation). */
int http_server_listen_fd(struct http_server *srv, int fd, SSL_CTX *tls, struct err *e);

/*
 * Graceful shutdown: stop accepting, close idle connections, let in-flight
 * requests finish for up to shutdown_grace_ms, then close the rest and call
 * event_base_loopexit(). Loop thread only.
 */
void http_server_shutdown(struct http_server *srv);
/* Call http_server_shutdown on SIGTERM/SIGINT (signal events on the base). */
int http_server_handle_signals(struct http_server *srv, struct err *e);
/* The event base the server runs on (for timers in async handlers). */
struct event_base *http_server_base(const struct http_server *srv);
/* Number of open connections (tests, metrics). */
size_t http_server_connections(const struct http_server *srv);

/*
 * Run `work(arg)` on a pool thread, then `done(arg)` on the loop thread.
 * Returns -1 if the server is shutting down (done is then not called).
 */
int http_server_submit(struct http_server *srv, void (*work)(void *arg), void (*done)(void *arg), void *arg,
		       struct err *e);

/* ---- request accessors (valid until the reply is complete) ---- */
struct http_server *http_req_server(const struct http_request *req);
const char *http_req_method(const struct http_request *req);
/* Path without the query, not percent-decoded. */
const char *http_req_path(const struct http_request *req);
/* Raw query string after '?', or NULL when the target had none. */
const char *http_req_query(const struct http_request *req);
/* First header with this name (case-insensitive), or NULL. */
const char *http_req_header(const struct http_request *req, const char *name);
size_t http_req_header_count(const struct http_request *req);
void http_req_header_at(const struct http_request *req, size_t i, const char **name, const char **value);
const uint8_t *http_req_body(const struct http_request *req, size_t *len);
/* Verified peer certificate on TLS listeners (borrowed), else NULL. */
X509 *http_req_peer_cert(const struct http_request *req);
SSL *http_req_ssl(const struct http_request *req);
/* "tcp:1.2.3.4:5678", "unix", "vsock:3:1234". */
const char *http_req_peer(const struct http_request *req);
/* Content-Length was over the limit (routes marked with http_server_route_takes_oversize). */
bool http_req_body_too_large(const struct http_request *req);
/* Set when the connection has gone away while the handler was busy. */
bool http_req_aborted(const struct http_request *req);

/* ---- replies (loop thread only) ---- */
/* Extra header for this reply. */
void http_resp_header(struct http_request *req, const char *name, const char *value);
/* Send a complete reply with Content-Length; ends the request. */
void http_respond(struct http_request *req, int status, const char *content_type, const void *body,
		  size_t len);
/* Short text reply ("text/plain; charset=utf-8"). */
void http_respond_text(struct http_request *req, int status, const char *text);

/*
 * Streaming: headers without Content-Length (Connection: close), then any
 * number of writes, then end. `on_close` (may be NULL) runs if the client goes
 * away first (at once if it already has); after it the request is finished
 * and must not be used.
 */
void http_stream_begin(struct http_request *req, int status, const char *content_type,
		       void (*on_close)(void *arg), void *arg);
int http_stream_write(struct http_request *req, const void *data, size_t len);
/* Bytes queued but not yet sent (for back-pressure). */
size_t http_stream_pending(const struct http_request *req);
void http_stream_end(struct http_request *req);

const char *http_status_reason(int status);

#endif
