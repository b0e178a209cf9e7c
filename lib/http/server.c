/*
 * server.c — HTTP/1.1 connections on bufferevents (see server.h).
 *
 * Each connection is a small state machine driven by its bufferevent and one
 * timer:
 *
 *   IDLE ─first byte→ HEAD ─blank line→ BODY ─Content-Length bytes→ HANDLING
 *     ↑                                                                │
 *     └──────────── output drained (keep-alive) ←── WRITING ←─ respond ┘
 *
 * The timer enforces the idle timeout in IDLE, one deadline for the whole
 * request across HEAD and BODY (a slow client cannot extend it), and a write
 * timeout in WRITING. EOF from the client while HANDLING only marks the
 * connection: the reply is still written, then the connection closes (the JS
 * SDK half-closes after sending). Connections closed after an error reply
 * shut down the write side and drain input briefly ("lingering close") so
 * the client reads the reply instead of a reset.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <linux/vm_sockets.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "core/log.h"
#include "http/head.h"
#include "http/pool.h"
#include "http/server.h"

#define LINGER_MS 2000

enum conn_state { CS_IDLE, CS_HEAD, CS_BODY, CS_HANDLING, CS_WRITING, CS_STREAMING, CS_LINGER };

struct route {
	char *method;
	char *path;
	size_t len;
	bool prefix;
	bool takes_oversize; /* sees requests whose body is over the limit (unread) */
	http_handler_fn fn;
	void *arg;
	void (*free_arg)(void *);
};

struct listener {
	struct http_server *srv;
	struct evconnlistener *lev;
	struct event *backoff;
	SSL_CTX *tls;
	struct listener *next;
};

struct conn;

struct http_request {
	struct http_server *srv;
	struct conn *conn;  /* NULL once the connection is gone */
	char *head;         /* request head, split in place */
	struct http_head h; /* method, target, headers: pointers into `head` */
	struct buf body;
	struct buf resp_hdrs;
	bool aborted;
	bool streaming;
	bool body_too_large;
	void (*on_close)(void *);
	void *close_arg;
};

struct conn {
	struct http_server *srv;
	struct bufferevent *bev;
	SSL *ssl;
	struct event *timer;
	struct conn *prev, *next;
	enum conn_state st;
	struct http_request *req;
	size_t body_left;
	size_t scanned; /* head bytes already searched for the blank line */
	bool keep_alive;
	bool peer_eof;
	bool close_after; /* close once the output drains */
	char peer[80];
};

struct filter {
	http_filter_fn fn;
	void *arg;
};

struct http_server {
	struct event_base *base;
	struct filter *filters;
	size_t n_filters;
	struct http_server_opts opts;
	struct route *routes;
	size_t n_routes;
	struct buf extra_hdrs; /* "Name: value\r\n"... */
	struct listener *listeners;
	struct conn *conns;
	size_t n_conns;
	struct http_pool *pool;
	bool shutting_down;
	struct event *grace_timer;
	struct event *sig_term, *sig_int;
	char *app_version;
};

static void conn_free(struct conn *c);
static void conn_process(struct conn *c);

const char *http_status_reason(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 200:
		return "OK";
	case 204:
		return "No Content";
	case 301:
		return "Moved Permanently";
	case 302:
		return "Found";
	case 304:
		return "Not Modified";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 411:
		return "Length Required";
	case 413:
		return "Payload Too Large";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 505:
		return "HTTP Version Not Supported";
	}
	return "Unknown";
}

/* ---------------------------------------------------------------- timers */

static void arm_timer(struct conn *c, unsigned ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

	evtimer_add(c->timer, &tv);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (c->st == CS_HEAD || c->st == CS_BODY)
		log_debug("http: %s: request deadline exceeded", c->peer);
	conn_free(c);
}

/* ---------------------------------------------------------------- replies */

static void req_free(struct http_request *r)
{
	if (!r)
		return;
	free(r->head);
	buf_free(&r->body);
	buf_free(&r->resp_hdrs);
	free(r);
}

static void put_head(struct conn *c, struct http_request *r, int status, const char *ctype, bool has_len,
		     size_t len)
{
	struct http_server *srv = c->srv;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct buf h = BUF_INIT;
	bool close = c->close_after || !c->keep_alive || srv->shutting_down || !has_len;

	if (close)
		c->close_after = true;
	buf_printf(&h, "HTTP/1.1 %d %s\r\n", status, http_status_reason(status));
	if (ctype)
		buf_printf(&h, "Content-Type: %s\r\n", ctype);
	if (has_len)
		buf_printf(&h, "Content-Length: %zu\r\n", len);
	if (srv->app_version)
		buf_printf(&h, "X-App-Version: %s\r\n", srv->app_version);
	if (srv->extra_hdrs.len)
		buf_append(&h, srv->extra_hdrs.data, srv->extra_hdrs.len);
	if (r && r->resp_hdrs.len)
		buf_append(&h, r->resp_hdrs.data, r->resp_hdrs.len);
	if (close)
		buf_puts(&h, "Connection: close\r\n");
	else if (r && r->h.minor == 0)
		buf_puts(&h, "Connection: keep-alive\r\n");
	buf_puts(&h, "\r\n");
	evbuffer_add(out, h.data, h.len);
	buf_free(&h);
}

/* Reply produced by the server itself (errors before dispatch), then close. */
static void conn_error(struct conn *c, int status, const char *msg)
{
	size_t len = strlen(msg);

	c->close_after = true;
	put_head(c, c->req, status, "text/plain; charset=utf-8", true, len);
	evbuffer_add(bufferevent_get_output(c->bev), msg, len);
	req_free(c->req);
	c->req = NULL;
	c->st = CS_WRITING;
	arm_timer(c, c->srv->opts.write_timeout_ms);
}

void http_resp_header(struct http_request *req, const char *name, const char *value)
{
	/* Refuse header injection rather than emit a broken reply. */
	if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
		return;
	buf_printf(&req->resp_hdrs, "%s: %s\r\n", name, value);
}

void http_respond(struct http_request *req, int status, const char *content_type, const void *body,
		  size_t len)
{
	struct conn *c = req->conn;

	if (!c || req->streaming) {
		if (!c)
			req_free(req);
		return;
	}
	put_head(c, req, status, content_type, true, len);
	if (len && strcmp(req->h.method, "HEAD") != 0)
		evbuffer_add(bufferevent_get_output(c->bev), body, len);
	c->req = NULL;
	req_free(req);
	c->st = CS_WRITING;
	arm_timer(c, c->srv->opts.write_timeout_ms);
	bufferevent_enable(c->bev, EV_WRITE);
}

void http_respond_text(struct http_request *req, int status, const char *text)
{
	http_respond(req, status, "text/plain; charset=utf-8", text, strlen(text));
}

void http_stream_begin(struct http_request *req, int status, const char *content_type,
		       void (*on_close)(void *arg), void *arg)
{
	struct conn *c = req->conn;

	req->on_close = on_close;
	req->close_arg = arg;
	req->streaming = true;
	if (!c) {
		/* The client left while the handler was busy. */
		if (on_close)
			on_close(arg);
		req_free(req);
		return;
	}
	put_head(c, req, status, content_type, false, 0);
	c->st = CS_STREAMING;
	evtimer_del(c->timer);
	/* Keep reading so a client that goes away is noticed. */
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

int http_stream_write(struct http_request *req, const void *data, size_t len)
{
	if (!req->conn)
		return -1;
	return evbuffer_add(bufferevent_get_output(req->conn->bev), data, len);
}

size_t http_stream_pending(const struct http_request *req)
{
	return req->conn ? evbuffer_get_length(bufferevent_get_output(req->conn->bev)) : 0;
}

void http_stream_end(struct http_request *req)
{
	struct conn *c = req->conn;

	if (!c) {
		req_free(req);
		return;
	}
	c->req = NULL;
	req_free(req);
	c->close_after = true;
	c->st = CS_WRITING;
	arm_timer(c, c->srv->opts.write_timeout_ms);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		bufferevent_trigger(c->bev, EV_WRITE, BEV_TRIG_IGNORE_WATERMARKS);
}

/* ---------------------------------------------------------------- request accessors */

struct http_server *http_req_server(const struct http_request *req)
{
	return req->srv;
}

const char *http_req_method(const struct http_request *req)
{
	return req->h.method;
}

const char *http_req_path(const struct http_request *req)
{
	return req->h.path;
}

const char *http_req_query(const struct http_request *req)
{
	return req->h.query;
}

const char *http_req_header(const struct http_request *req, const char *name)
{
	for (size_t i = 0; i < req->h.n_hdrs; i++)
		if (strcasecmp(req->h.hdrs[i].name, name) == 0)
			return req->h.hdrs[i].value;
	return NULL;
}

size_t http_req_header_count(const struct http_request *req)
{
	return req->h.n_hdrs;
}

void http_req_header_at(const struct http_request *req, size_t i, const char **name, const char **value)
{
	*name = req->h.hdrs[i].name;
	*value = req->h.hdrs[i].value;
}

const uint8_t *http_req_body(const struct http_request *req, size_t *len)
{
	*len = req->body.len;
	return req->body.data ? req->body.data : (const uint8_t *)"";
}

SSL *http_req_ssl(const struct http_request *req)
{
	return req->conn ? req->conn->ssl : NULL;
}

X509 *http_req_peer_cert(const struct http_request *req)
{
	SSL *ssl = http_req_ssl(req);

	return ssl ? SSL_get0_peer_certificate(ssl) : NULL;
}

const char *http_req_peer(const struct http_request *req)
{
	return req->conn ? req->conn->peer : "";
}

bool http_req_body_too_large(const struct http_request *req)
{
	return req->body_too_large;
}

bool http_req_aborted(const struct http_request *req)
{
	return req->aborted || !req->conn;
}

/* ---------------------------------------------------------------- parsing */

/* ---------------------------------------------------------------- dispatch */

static const struct route *find_route(struct http_server *srv, const char *method, const char *path)
{
	const struct route *best = NULL;

	for (size_t i = 0; i < srv->n_routes; i++) {
		const struct route *rt = &srv->routes[i];

		if (rt->method && strcmp(rt->method, method) != 0)
			continue;
		if (!rt->prefix) {
			if (strcmp(rt->path, path) == 0)
				return rt;
			continue;
		}
		if (strncmp(rt->path, path, rt->len) == 0 && (!best || rt->len > best->len))
			best = rt;
	}
	return best;
}

static void dispatch(struct conn *c)
{
	struct http_request *r = c->req;
	const struct route *rt;

	c->st = CS_HANDLING;
	evtimer_del(c->timer);
	/* Do not read more while busy; EOF is noticed once we read again. */
	bufferevent_disable(c->bev, EV_READ);
	for (size_t i = 0; i < c->srv->n_filters; i++)
		if (c->srv->filters[i].fn(r, c->srv->filters[i].arg))
			return;
	rt = find_route(c->srv, r->h.method, r->h.path);
	if (!rt) {
		http_respond_text(r, 404, "Not Found");
		return;
	}
	rt->fn(r, rt->arg);
}

static void read_head(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct http_server *srv = c->srv;
	struct evbuffer_ptr pos;
	struct http_request *r;
	size_t head_len, clen;
	int status;
	const char *te, *expect;

	/* Blank lines before a request line are ignored (RFC 9112 §2.2). */
	while (c->scanned == 0 && evbuffer_get_length(in)) {
		unsigned char ch;

		evbuffer_copyout(in, &ch, 1);
		if (ch != '\r' && ch != '\n')
			break;
		evbuffer_drain(in, 1);
	}
	/* Resume the search where the last one stopped, so a head trickled in
	 * tiny pieces costs linear, not quadratic, time. */
	struct evbuffer_ptr from;

	evbuffer_ptr_set(in, &from, c->scanned > 3 ? c->scanned - 3 : 0, EVBUFFER_PTR_SET);
	pos = evbuffer_search(in, "\r\n\r\n", 4, &from);
	if (pos.pos < 0) {
		c->scanned = evbuffer_get_length(in);
		if (evbuffer_get_length(in) > srv->opts.max_header_bytes)
			conn_error(c, 431, "Request Header Fields Too Large");
		return;
	}
	c->scanned = 0;
	head_len = (size_t)pos.pos + 4;
	if (head_len > srv->opts.max_header_bytes) {
		conn_error(c, 431, "Request Header Fields Too Large");
		return;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		abort();
	r->srv = srv;
	r->conn = c;
	r->head = malloc(head_len + 1);
	if (!r->head)
		abort();
	evbuffer_remove(in, r->head, head_len);
	r->head[head_len - 2] = '\0'; /* drop the blank line */
	c->req = r;
	if (memchr(r->head, '\0', head_len - 2)) {
		conn_error(c, 400, "Bad Request");
		return;
	}
	status = http_head_parse(&r->h, r->head);
	if (status) {
		conn_error(c, status, http_status_reason(status));
		return;
	}
	const char *conn_hdr = http_req_header(r, "Connection");

	c->keep_alive = r->h.minor == 1 ? !http_header_has_token(conn_hdr, "close")
					: http_header_has_token(conn_hdr, "keep-alive");
	te = http_req_header(r, "Transfer-Encoding");
	if (te) {
		conn_error(c, 411, "chunked request bodies are not supported; send Content-Length");
		return;
	}
	if (http_head_content_length(&r->h, &clen) < 0) {
		conn_error(c, 400, "invalid Content-Length");
		return;
	}
	if (clen > srv->opts.max_body_bytes) {
		const struct route *rt = find_route(srv, r->h.method, r->h.path);

		if (!rt || !rt->takes_oversize) {
			conn_error(c, 413, "Payload Too Large");
			return;
		}
		/* The route answers in its own error shape. The body is never read
		 * (no 100 Continue): close after the reply, whose lingering close
		 * drains what the client still sends. */
		r->body_too_large = true;
		c->keep_alive = false;
		dispatch(c);
		return;
	}
	expect = http_req_header(r, "Expect");
	if (expect && clen && r->h.minor == 1) {
		if (strcasecmp(expect, "100-continue") != 0) {
			conn_error(c, 417, "Expectation Failed");
			return;
		}
		if (evbuffer_get_length(in) < clen)
			evbuffer_add_printf(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n");
	}
	/* Grow with the data actually received, not with the client's claim. */
	buf_reserve(&r->body, clen < 65536 ? clen : 65536);
	c->body_left = clen;
	c->st = CS_BODY;
}

static void read_body(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t n = evbuffer_get_length(in);

	if (n > c->body_left)
		n = c->body_left;
	if (n) {
		buf_reserve(&c->req->body, n);
		evbuffer_remove(in, c->req->body.data + c->req->body.len, n);
		c->req->body.len += n;
		c->req->body.data[c->req->body.len] = '\0';
		c->body_left -= n;
	}
	if (c->body_left == 0)
		dispatch(c);
}

static void conn_process(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);

	for (;;) {
		enum conn_state before = c->st;

		switch (c->st) {
		case CS_IDLE:
			if (evbuffer_get_length(in) == 0)
				return;
			c->st = CS_HEAD;
			arm_timer(c, c->srv->opts.request_timeout_ms);
			break;
		case CS_HEAD:
			read_head(c);
			break;
		case CS_BODY:
			read_body(c);
			break;
		case CS_STREAMING:
		case CS_LINGER:
			evbuffer_drain(in, evbuffer_get_length(in));
			return;
		default:
			return;
		}
		if (c->st == before)
			return; /* needs more input */
		if (c->st != CS_IDLE && c->st != CS_HEAD && c->st != CS_BODY)
			return;
	}
}

/* ---------------------------------------------------------------- callbacks */

static void start_linger(struct conn *c)
{
	int fd = bufferevent_getfd(c->bev);

	if (c->ssl || c->peer_eof || fd < 0) {
		conn_free(c);
		return;
	}
	shutdown(fd, SHUT_WR);
	c->st = CS_LINGER;
	evbuffer_drain(bufferevent_get_input(c->bev), evbuffer_get_length(bufferevent_get_input(c->bev)));
	bufferevent_enable(c->bev, EV_READ);
	arm_timer(c, LINGER_MS);
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (c->st != CS_WRITING)
		return;
	if (c->close_after) {
		start_linger(c);
		return;
	}
	if (c->peer_eof) {
		conn_free(c);
		return;
	}
	c->st = CS_IDLE;
	arm_timer(c, c->srv->opts.idle_timeout_ms);
	bufferevent_enable(c->bev, EV_READ);
	conn_process(c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	conn_process(arg);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	if (what & BEV_EVENT_CONNECTED)
		return;
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
		/* Half-close: finish the request in progress, then close. */
		c->peer_eof = true;
		if (c->st == CS_HANDLING)
			return;
		if (c->st == CS_WRITING) {
			if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
				conn_free(c);
			return;
		}
	}
	conn_free(c);
}

static void conn_free(struct conn *c)
{
	struct http_server *srv = c->srv;
	struct http_request *r = c->req;

	if (r) {
		r->conn = NULL;
		r->aborted = true;
		if (r->streaming) {
			if (r->on_close)
				r->on_close(r->close_arg);
			req_free(r);
		} else if (c->st != CS_HANDLING) {
			req_free(r);
		}
		/* else: the handler still owns it; http_respond frees it. */
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->n_conns--;
	event_free(c->timer);
	bufferevent_free(c->bev);
	free(c);
	if (srv->shutting_down && srv->n_conns == 0 && srv->grace_timer) {
		event_del(srv->grace_timer);
		event_base_loopexit(srv->base, NULL);
	}
}

static void peer_name(int fd, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char ip[INET6_ADDRSTRLEN];

	snprintf(out, len, "unknown");
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
		return;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &s->sin_addr, ip, sizeof(ip));
		snprintf(out, len, "tcp:%s:%u", ip, ntohs(s->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof(ip));
		snprintf(out, len, "tcp:[%s]:%u", ip, ntohs(s->sin6_port));
	} else if (ss.ss_family == AF_UNIX) {
		snprintf(out, len, "unix");
	} else if (ss.ss_family == AF_VSOCK) {
		struct sockaddr_vm *s = (struct sockaddr_vm *)&ss;

		snprintf(out, len, "vsock:%u:%u", s->svm_cid, s->svm_port);
	}
}

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen,
		      void *arg)
{
	struct listener *l = arg;
	struct http_server *srv = l->srv;
	struct conn *c;

	if (srv->shutting_down || srv->n_conns >= srv->opts.max_connections) {
		if (!srv->shutting_down)
			log_warn("http: %zu connections open, refusing another", srv->n_conns);
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		abort();
	c->srv = srv;
	peer_name(fd, c->peer, sizeof(c->peer));
	if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) {
		/* Replies are written in one go; Nagle would hold the tail back
		 * waiting for the client's delayed ACK (~40 ms per request). */
		int one = 1;

		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	if (l->tls) {
		c->ssl = SSL_new(l->tls);
		if (!c->ssl) {
			log_warn("http: SSL_new failed");
			close(fd);
			free(c);
			return;
		}
		c->bev = bufferevent_openssl_socket_new(srv->base, fd, c->ssl, BUFFEREVENT_SSL_ACCEPTING,
							BEV_OPT_CLOSE_ON_FREE);
		if (c->bev)
			bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	} else {
		c->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	}
	if (!c->bev) {
		if (c->ssl)
			SSL_free(c->ssl);
		close(fd);
		free(c);
		return;
	}
	c->timer = evtimer_new(srv->base, on_timer, c);
	c->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = c;
	srv->conns = c;
	srv->n_conns++;
	c->st = CS_IDLE;
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	/* Stop reading while unprocessed input exceeds a head: a client cannot
	 * pile up data while its request is handled or its reply written. */
	bufferevent_setwatermark(c->bev, EV_READ, 0, srv->opts.max_header_bytes + 4096);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	/* The first request (and the TLS handshake) must arrive in time too. */
	c->st = CS_HEAD;
	arm_timer(c, srv->opts.request_timeout_ms);
}

/* ---------------------------------------------------------------- server */

struct http_server *http_server_new(struct event_base *base, const struct http_server_opts *opts,
				    struct err *e)
{
	struct http_server *srv = calloc(1, sizeof(*srv));

	if (!srv)
		abort();
	srv->base = base;
	if (opts)
		srv->opts = *opts;
	if (!srv->opts.max_header_bytes)
		srv->opts.max_header_bytes = 64 * 1024;
	if (!srv->opts.max_body_bytes)
		srv->opts.max_body_bytes = 10 * 1024 * 1024;
	if (!srv->opts.request_timeout_ms)
		srv->opts.request_timeout_ms = 10000;
	if (!srv->opts.idle_timeout_ms)
		srv->opts.idle_timeout_ms = 60000;
	if (!srv->opts.write_timeout_ms)
		srv->opts.write_timeout_ms = 60000;
	if (!srv->opts.workers)
		srv->opts.workers = 4;
	if (!srv->opts.shutdown_grace_ms)
		srv->opts.shutdown_grace_ms = 5000;
	if (!srv->opts.max_connections)
		srv->opts.max_connections = 4096;
	if (srv->opts.app_version) {
		srv->app_version = strdup(srv->opts.app_version);
		srv->opts.app_version = srv->app_version;
	}
	srv->pool = http_pool_new(base, srv->opts.workers, e);
	if (!srv->pool) {
		free(srv->app_version);
		free(srv);
		return NULL;
	}
	/* A client closing early must not kill the process. */
	signal(SIGPIPE, SIG_IGN);
	return srv;
}

static void close_listeners(struct http_server *srv)
{
	while (srv->listeners) {
		struct listener *l = srv->listeners;

		srv->listeners = l->next;
		evconnlistener_free(l->lev);
		event_free(l->backoff);
		if (l->tls)
			SSL_CTX_free(l->tls);
		free(l);
	}
}

void http_server_free(struct http_server *srv)
{
	if (!srv)
		return;
	close_listeners(srv);
	srv->shutting_down = true;
	if (srv->grace_timer) {
		event_free(srv->grace_timer);
		srv->grace_timer = NULL;
	}
	while (srv->conns)
		conn_free(srv->conns);
	http_pool_free(srv->pool);
	if (srv->sig_term)
		event_free(srv->sig_term);
	if (srv->sig_int)
		event_free(srv->sig_int);
	for (size_t i = 0; i < srv->n_routes; i++) {
		free(srv->routes[i].method);
		free(srv->routes[i].path);
		if (srv->routes[i].free_arg)
			srv->routes[i].free_arg(srv->routes[i].arg);
	}
	free(srv->routes);
	free(srv->filters);
	buf_free(&srv->extra_hdrs);
	free(srv->app_version);
	free(srv);
}

void http_server_add_header(struct http_server *srv, const char *name, const char *value)
{
	if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
		return;
	buf_printf(&srv->extra_hdrs, "%s: %s\r\n", name, value);
}

void http_server_route(struct http_server *srv, const char *method, const char *path, bool prefix,
		       http_handler_fn fn, void *arg)
{
	http_server_route_owned(srv, method, path, prefix, fn, arg, NULL);
}

void http_server_route_owned(struct http_server *srv, const char *method, const char *path, bool prefix,
			     http_handler_fn fn, void *arg, void (*free_arg)(void *))
{
	struct route *rt;

	srv->routes = realloc(srv->routes, (srv->n_routes + 1) * sizeof(*srv->routes));
	if (!srv->routes)
		abort();
	rt = &srv->routes[srv->n_routes++];
	rt->method = method ? strdup(method) : NULL;
	rt->path = strdup(path);
	rt->len = strlen(path);
	rt->prefix = prefix;
	rt->takes_oversize = false;
	rt->fn = fn;
	rt->arg = arg;
	rt->free_arg = free_arg;
}

void http_server_route_takes_oversize(struct http_server *srv, const char *method, const char *path)
{
	for (size_t i = 0; i < srv->n_routes; i++) {
		struct route *rt = &srv->routes[i];

		if (!strcmp(rt->path, path) && (rt->method ? method && !strcmp(rt->method, method) : !method))
			rt->takes_oversize = true;
	}
}

void http_server_add_filter(struct http_server *srv, http_filter_fn fn, void *arg)
{
	srv->filters = realloc(srv->filters, (srv->n_filters + 1) * sizeof(*srv->filters));
	if (!srv->filters)
		abort();
	srv->filters[srv->n_filters].fn = fn;
	srv->filters[srv->n_filters].arg = arg;
	srv->n_filters++;
}

static void health(struct http_request *req, void *arg)
{
	http_respond_text(req, 200, "OK");
}

void http_server_add_health(struct http_server *srv)
{
	http_server_route(srv, "GET", "/health", false, health, NULL);
}

static void on_backoff_over(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;

	evconnlistener_enable(l->lev);
}

/* accept() failing (EMFILE, ENFILE, ENOMEM) would leave the listening socket
 * readable and spin the loop: pause accepting for a moment instead. */
static void on_accept_error(struct evconnlistener *lev, void *arg)
{
	struct listener *l = arg;
	struct timeval tv = {0, 200 * 1000};

	log_warn("http: accept: %s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	evconnlistener_disable(lev);
	evtimer_add(l->backoff, &tv);
}

int http_server_listen_fd(struct http_server *srv, int fd, SSL_CTX *tls, struct err *e)
{
	struct listener *l = calloc(1, sizeof(*l));

	if (!l)
		abort();
	evutil_make_socket_nonblocking(fd);
	evutil_make_socket_closeonexec(fd);
	l->srv = srv;
	l->lev = evconnlistener_new(srv->base, on_accept, l, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
				    -1, fd);
	if (!l->lev) {
		free(l);
		return err_set(e, "cannot create listener");
	}
	l->backoff = evtimer_new(srv->base, on_backoff_over, l);
	evconnlistener_set_error_cb(l->lev, on_accept_error);
	if (tls) {
		SSL_CTX_up_ref(tls);
		l->tls = tls;
	}
	l->next = srv->listeners;
	srv->listeners = l;
	return 0;
}

int http_server_listen(struct http_server *srv, const struct http_listen_spec *spec, SSL_CTX *tls,
		       uint16_t *bound_port, struct err *e)
{
	int fd = http_listen_socket(spec, bound_port, e);

	if (fd < 0)
		return -1;
	if (http_server_listen_fd(srv, fd, tls, e) < 0) {
		close(fd);
		return -1;
	}
	return 0;
}

static void on_grace(evutil_socket_t fd, short what, void *arg)
{
	struct http_server *srv = arg;

	log_warn("http: shutdown grace period over, closing %zu connection(s)", srv->n_conns);
	while (srv->conns)
		conn_free(srv->conns);
	event_base_loopexit(srv->base, NULL);
}

void http_server_shutdown(struct http_server *srv)
{
	struct timeval tv;

	if (srv->shutting_down)
		return;
	srv->shutting_down = true;
	close_listeners(srv);
	for (struct conn *c = srv->conns, *next; c; c = next) {
		next = c->next;
		if (c->st == CS_IDLE || c->st == CS_LINGER ||
		    (c->st == CS_HEAD && !c->req && evbuffer_get_length(bufferevent_get_input(c->bev)) == 0))
			conn_free(c);
		else
			c->close_after = true;
	}
	if (srv->n_conns == 0) {
		event_base_loopexit(srv->base, NULL);
		return;
	}
	srv->grace_timer = evtimer_new(srv->base, on_grace, srv);
	tv.tv_sec = srv->opts.shutdown_grace_ms / 1000;
	tv.tv_usec = (srv->opts.shutdown_grace_ms % 1000) * 1000;
	evtimer_add(srv->grace_timer, &tv);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	log_info("http: signal %d, shutting down", (int)sig);
	http_server_shutdown(arg);
}

int http_server_handle_signals(struct http_server *srv, struct err *e)
{
	srv->sig_term = evsignal_new(srv->base, SIGTERM, on_signal, srv);
	srv->sig_int = evsignal_new(srv->base, SIGINT, on_signal, srv);
	if (!srv->sig_term || !srv->sig_int || evsignal_add(srv->sig_term, NULL) < 0 ||
	    evsignal_add(srv->sig_int, NULL) < 0)
		return err_set(e, "cannot install signal handlers");
	return 0;
}

struct event_base *http_server_base(const struct http_server *srv)
{
	return srv->base;
}

size_t http_server_connections(const struct http_server *srv)
{
	return srv->n_conns;
}

int http_server_submit(struct http_server *srv, void (*work)(void *arg), void (*done)(void *arg), void *arg,
		       struct err *e)
{
	if (srv->shutting_down && !srv->n_conns)
		return err_set(e, "server is shutting down");
	return http_pool_submit(srv->pool, work, done, arg, e);
}
