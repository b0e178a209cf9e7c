/*
 * conn.c — one proxied connection, as a small state machine on its worker's
 * event loop:
 *
 *   PP (optional) -> SNIFF -> [DNS for custom domains] -> TLS (terminate)
 *      -> CONNECT (parallel attempts, first wins) -> RELAY
 *   or SNIFF -> TLS -> BUILTIN (health.<base>, gateway.<base>) -> RELAY(flush)
 *
 * The PROXY header and ClientHello are read with MSG_PEEK into the worker's
 * scratch buffer (edge-triggered while waiting), so nothing is copied per
 * connection and the passthrough path needs no replay: the kernel still holds
 * the ClientHello when the relay starts. Every phase has a deadline on one
 * timer; in RELAY the timer is the progress-based idle watchdog plus the total
 * cap, re-armed only when it fires.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "core/log.h"
#include "internal.h"

enum cstate { CS_PP, CS_SNIFF, CS_DNS, CS_TLS, CS_BUILTIN, CS_CONNECT, CS_RELAY };
enum builtin { BI_NONE, BI_HEALTH, BI_GATEWAY };

struct dir {
	uint8_t *buf; /* pooled chunk while bytes are in flight */
	uint32_t off, len;
	int pipe[2]; /* pooled splice pipe, -1 when none */
	size_t in_pipe;
	uint64_t bytes;
	short src_need, dst_need; /* events that unblock the source / destination */
	bool eof, shut, kick;
};

struct attempt {
	struct conn *c;
	int fd;
	bool pp;
	struct event ev;
};

struct conn {
	bool h2; /* first: SSL app data points here (see engine.c callbacks) */
	bool passthrough;
	enum builtin builtin;
	enum cstate st;
	struct worker *w;
	struct conn *prev, *next;
	int cfd, bfd;
	short cflags, bflags; /* currently registered events, 0 = none */
	bool rd_ready;        /* cfd may have bytes: not found empty since epoll last said so */
	bool b_rdhup;         /* the backend's FIN has arrived (EV_CLOSED) */
	bool b_connecting;    /* relaying before the backend's connect is known done */
	bool b_refused;       /* ... and a read or write on it failed: the connect did */
	bool ticket_due;      /* TLS 1.3 session ticket not sent yet (send_ticket) */
	bool notify_sent;     /* our close_notify is written (or held in tx) */
	struct event cev, bev, timer;
	SSL *ssl;
	struct tls_tx tx;    /* the client socket's write side under OpenSSL */
	struct dir up, down; /* client->backend, backend->client */
	struct pp_addrs *pp_in;
	struct proxy_candidates *cand;
	struct attempt *att;
	unsigned n_att, n_failed;
	struct txt_query *dnsq;
	char *app;
	uint64_t t_start, t_progress, t_bothdone, t_connect;
};

static void conn_free(struct conn *c);
static void on_cfd(evutil_socket_t fd, short what, void *arg);
static void on_bfd(evutil_socket_t fd, short what, void *arg);
static void pump(struct conn *c, bool run_up, bool run_down);
static bool backend_error(struct conn *c);

static void set_events(struct conn *c, bool client, short flags)
{
	short *cur = client ? &c->cflags : &c->bflags;
	struct event *ev = client ? &c->cev : &c->bev;
	int fd = client ? c->cfd : c->bfd;

	/* EV_CLOSED (EPOLLRDHUP) on the backend says its FIN is there, so
	 * its last bytes are read on to the EOF in the same pass and leave
	 * for the client together with close_notify (pump_dir). */
	if (!client && (flags & EV_READ))
		flags |= EV_CLOSED;
	if (fd < 0 || *cur == flags)
		return;
	if (*cur)
		event_del(ev);
	*cur = flags;
	if (!flags)
		return;
	event_assign(ev, c->w->base, fd, flags | EV_PERSIST, client ? on_cfd : on_bfd, c);
	event_add(ev, NULL);
}

static void arm_timer(struct conn *c, uint64_t deadline_ms)
{
	uint64_t now = worker_now_ms(c->w), d = deadline_ms > now ? deadline_ms - now : 0;
	struct timeval tv = {.tv_sec = (time_t)(d / 1000), .tv_usec = (suseconds_t)(d % 1000) * 1000};

	evtimer_add(&c->timer, &tv);
}

static void fail(struct conn *c, const char *why)
{
	log_debug("proxy: closing connection: %s", why);
	atomic_fetch_add(&c->w->pe->st_rejected, 1);
	conn_free(c);
}

/* ---- client socket reads under OpenSSL ---- */

/* Installed on the client's socket BIO. OpenSSL reads as soon as it wants
 * bytes: after writing its handshake flight it tries at once for the
 * client's answer, which cannot be there yet, and that read(2) fails with
 * EAGAIN on nearly every connection. This tracks what epoll said instead:
 * once a read came up short (or failed, or hit EOF) the socket counts as
 * empty until on_cfd sees it readable again, and reads in between are
 * answered "retry" without the syscall. Every caller registers EV_READ
 * (level-triggered) when OpenSSL wants to read, so bytes that arrive later
 * are still reported. */
static long tls_bio_cb(BIO *b, int oper, const char *argp, size_t len, int argi, long argl, int ret,
		       size_t *processed)
{
	struct conn *c = (struct conn *)BIO_get_callback_arg(b);

	if (oper == BIO_CB_READ && !c->rd_ready) {
		BIO_set_retry_read(b);
		return -1;
	}
	if (oper == (BIO_CB_READ | BIO_CB_RETURN) && (ret <= 0 || !processed || *processed < len))
		c->rd_ready = false;
	return ret;
}

/* ---- relay ---- */

static ssize_t ssl_result(struct conn *c, int ret, short *need)
{
	switch (SSL_get_error(c->ssl, ret)) {
	case SSL_ERROR_WANT_READ:
		*need = EV_READ;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		*need = EV_WRITE;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	default:
		ERR_clear_error();
		*need = 0;
		return -1;
	}
}

/* A read or write on the backend that did not find it still connecting
 * (EAGAIN): success proves the connect done, failure is its error. */
static void backend_result(struct conn *c, ssize_t r)
{
	if (c->b_connecting && r < 0)
		c->b_refused = true;
	c->b_connecting = false;
}

static ssize_t io_read(struct conn *c, bool up, uint8_t *p, size_t n, short *need)
{
	size_t got;
	ssize_t r;

	*need = 0;
	if (up && c->ssl) {
		int ret = SSL_read_ex(c->ssl, p, n, &got);
		return ret == 1 ? (ssize_t)got : ssl_result(c, ret, need);
	}
	r = read(up ? c->cfd : c->bfd, p, n);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		*need = EV_READ;
	else if (!up)
		backend_result(c, r);
	return r;
}

/* The TLS 1.3 session ticket, deferred from the end of the handshake
 * (make_ctx configures none) to the first write to the client: it is held
 * in tx and leaves with those bytes, one segment instead of two. A failure
 * shows again at the write that follows. */
static void send_ticket(struct conn *c)
{
	c->ticket_due = false;
	if (SSL_new_session_ticket(c->ssl) != 1) {
		ERR_clear_error();
		return;
	}
	c->tx.hold = true;
	if (SSL_do_handshake(c->ssl) != 1)
		ERR_clear_error();
	c->tx.hold = false;
	/* Going through the state machine again leaves OpenSSL's 16 KiB
	 * record buffer allocated (RELEASE_BUFFERS frees it only after a
	 * read or write that empties it): give it back now, or every idle
	 * connection keeps it (+5 KiB RSS per connection measured). Nothing
	 * is pending here, so this frees. */
	SSL_free_buffers(c->ssl);
}

static ssize_t io_write(struct conn *c, bool up, const uint8_t *p, size_t n, short *need)
{
	size_t put;
	ssize_t r;

	*need = 0;
	if (!up && c->ssl) {
		if (c->ticket_due)
			send_ticket(c);
		/* The last bytes (the backend's FIN is there, or a built-in
		 * response) are held for close_notify and the FIN to join. */
		c->tx.hold = c->down.eof || c->b_rdhup;
		int ret = SSL_write_ex(c->ssl, p, n, &put);
		c->tx.hold = false;
		if (ret == 1)
			return (ssize_t)put;
		/* A failed write after the client's close_notify reads as
		 * SSL_ERROR_ZERO_RETURN (0, *need left 0): for a write that is
		 * an error, not "0 bytes written, try again". */
		ssl_result(c, ret, need);
		return -1;
	}
	r = send(up ? c->bfd : c->cfd, p, n, MSG_NOSIGNAL);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		*need = EV_WRITE;
	else if (up)
		backend_result(c, r);
	return r;
}

/* Forward EOF: FIN to the backend, or close_notify + FIN to the client.
 * When the other direction is already shut the connection is closed right
 * after, and close(2) sends the FIN: skip the shutdown(2) syscall. Towards
 * the client, close_notify is held with whatever records are still held
 * and flushed with MSG_MORE, so shutdown(2) puts the FIN on the same
 * segment; SSL_shutdown is called once (a second call would read). */
static int io_shutdown(struct conn *c, bool up, short *need)
{
	bool shut_wr = !(up ? c->down.shut : c->up.shut);

	*need = 0;
	if (up && c->b_connecting) { /* shutdown(2) would abort the connect */
		*need = EV_WRITE;
		return 1;
	}
	if (!up && c->ssl) {
		if (c->ticket_due)
			send_ticket(c);
		if (!c->notify_sent) {
			c->tx.hold = true;
			int ret = SSL_shutdown(c->ssl);
			c->tx.hold = false;
			if (ret < 0 && ssl_result(c, ret, need) < 0 && *need)
				return 1;
			c->notify_sent = true;
		}
		if (tls_tx_flush(&c->tx, shut_wr) == 0) {
			*need = EV_WRITE;
			return 1;
		}
	}
	if (shut_wr)
		shutdown(up ? c->bfd : c->cfd, SHUT_WR);
	return 0;
}

static bool splice_on(struct conn *c, struct dir *d)
{
	const struct proxy_splice *s = &c->w->pe->cfg.tcp_splice;

	if (!s->enabled || !c->passthrough || c->ssl)
		return false;
	if (d->pipe[0] >= 0 || (!s->after_bytes && !s->after_ms))
		return true;
	return (s->after_bytes && d->bytes >= s->after_bytes) ||
	       (s->after_ms && worker_now_ms(c->w) - c->t_start >= s->after_ms);
}

static void release_buf(struct conn *c, struct dir *d)
{
	worker_buf_put(c->w, d->buf);
	d->buf = NULL;
}

static int pump_dir(struct conn *c, struct dir *d, bool up)
{
	struct worker *w = c->w;
	int dst = up ? c->bfd : c->cfd, src = up ? c->cfd : c->bfd;
	ssize_t r;
	short need;
	bool drained = false;

	d->src_need = d->dst_need = 0;
	if (d->shut)
		return 0;
	for (int budget = 16; budget > 0; budget--) {
		if (d->len) {
			r = io_write(c, up, d->buf + d->off, d->len, &need);
			if (r < 0) {
				d->dst_need = need;
				return need ? 0 : -1;
			}
			d->off += (uint32_t)r;
			d->len -= (uint32_t)r;
			c->t_progress = worker_now_ms(w);
			continue;
		}
		if (d->in_pipe) {
			r = splice(d->pipe[0], NULL, dst, NULL, d->in_pipe,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (r < 0) {
				d->dst_need = errno == EAGAIN ? EV_WRITE : 0;
				if (up && !d->dst_need)
					backend_result(c, r);
				return d->dst_need ? 0 : -1;
			}
			if (up)
				backend_result(c, r);
			d->in_pipe -= (size_t)r;
			c->t_progress = worker_now_ms(w);
			continue;
		}
		if (d->eof) {
			release_buf(c, d);
			if (d->pipe[0] >= 0)
				worker_pipe_put(w, d->pipe);
			if (io_shutdown(c, up, &need) > 0) {
				d->dst_need = need;
				return 0;
			}
			d->shut = true;
			return 0;
		}
		if (splice_on(c, d)) {
			release_buf(c, d);
			if (d->pipe[0] < 0) {
				if (worker_pipe_get(w, d->pipe) < 0)
					return -1;
				atomic_fetch_add(&w->pe->st_splice, 1);
			}
			r = splice(src, NULL, d->pipe[1], NULL, PIPE_SIZE, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (!up && (r >= 0 || errno != EAGAIN))
				backend_result(c, r);
			if (r < 0) {
				if (errno != EAGAIN)
					return -1;
				worker_pipe_put(w, d->pipe); /* idle: the pipe goes back to the pool */
				d->src_need = EV_READ;
				return 0;
			}
			if (r == 0)
				d->eof = true;
			d->in_pipe = (size_t)r;
			d->bytes += (size_t)r;
			continue;
		}
		if (drained) {
			/* The last read came up short: the socket is empty (or
			 * level-triggered epoll reports it again), so skip the
			 * read that would only return EAGAIN. */
			release_buf(c, d);
			d->src_need = EV_READ;
			return 0;
		}
		if (!d->buf)
			d->buf = worker_buf_get(w);
		r = io_read(c, up, d->buf, w->pe->cfg.buffer_size, &need);
		drained = r > 0 && (size_t)r < w->pe->cfg.buffer_size &&
			  !(up && c->ssl && SSL_has_pending(c->ssl)) && !(!up && c->b_rdhup);
		if (r < 0) {
			release_buf(c, d);
			d->src_need = need;
			return need ? 0 : -1;
		}
		if (r == 0)
			d->eof = true;
		d->off = 0;
		d->len = (uint32_t)r;
		d->bytes += (size_t)r;
		c->t_progress = worker_now_ms(w);
	}
	/* Budget used up: yield to other connections but come back even if
	 * the source has nothing more (bytes may be waiting in d->buf or in
	 * OpenSSL). */
	d->kick = true;
	d->src_need = EV_READ;
	return 0;
}

/* Move bytes in the directions the event can unblock (each direction keeps
 * the events it waits for), then re-register what is still awaited. Running
 * only those saves a read that would return EAGAIN on every event. */
static void pump(struct conn *c, bool run_up, bool run_down)
{
	short cw = 0, bw = 0;

	c->up.kick = c->down.kick = false;
	if ((run_up && pump_dir(c, &c->up, true) < 0) || (run_down && pump_dir(c, &c->down, false) < 0)) {
		if (c->b_refused)
			return fail(c, "backend connect failed");
		conn_free(c);
		return;
	}
	/* Records held for the client (the ticket, the last bytes) leave now
	 * unless the socket is already known to be full. */
	if (c->tx.len && !(c->down.dst_need & EV_WRITE)) {
		int r = tls_tx_flush(&c->tx, false);
		if (r < 0) {
			conn_free(c);
			return;
		}
		if (r == 0)
			c->down.dst_need |= EV_WRITE;
	}
	if (c->up.shut && c->down.shut) {
		conn_free(c);
		return;
	}
	if (c->up.eof && c->down.eof && !c->t_bothdone)
		c->t_bothdone = worker_now_ms(c->w);
	cw = (short)(c->up.src_need | c->down.dst_need);
	bw = (short)(c->up.dst_need | c->down.src_need | (c->b_connecting ? EV_WRITE : 0));
	set_events(c, true, cw);
	set_events(c, false, bw);
	if (c->up.kick && c->cflags)
		event_active(&c->cev, EV_READ, 0);
	if (c->down.kick && c->bflags)
		event_active(&c->bev, EV_READ, 0);
}

static void relay_timer(struct conn *c)
{
	const struct proxy_timeouts *t = &c->w->pe->cfg.timeouts;
	uint64_t now = worker_now_ms(c->w), next = c->t_start + t->total;

	if (now >= c->t_start + t->total)
		return fail(c, "total timeout");
	if (t->data_timeout_enabled) {
		if (now >= c->t_progress + t->idle)
			return fail(c, "idle timeout");
		if (c->t_progress + t->idle < next)
			next = c->t_progress + t->idle;
	}
	if (c->b_connecting) {
		if (now >= c->t_connect + t->connect)
			return fail(c, "backend connect timeout");
		if (c->t_connect + t->connect < next)
			next = c->t_connect + t->connect;
	}
	if (c->t_bothdone) {
		if (now >= c->t_bothdone + t->shutdown)
			return fail(c, "shutdown timeout");
		if (c->t_bothdone + t->shutdown < next)
			next = c->t_bothdone + t->shutdown;
	}
	arm_timer(c, next);
}

/* `from_backend`: read the backend now. Right after the connect its answer
 * can hardly be there yet (it has not even seen the first bytes), so the
 * read would fail: register for it instead, and a backend that speaks
 * first is reported at the next wait (level-triggered). */
static void start_relay(struct conn *c, bool from_backend)
{
	c->st = CS_RELAY;
	c->t_progress = worker_now_ms(c->w);
	atomic_fetch_add(&c->w->pe->st_relayed, 1);
	relay_timer(c);
	if (!from_backend)
		c->down.src_need = EV_READ;
	pump(c, true, from_backend);
}

/* ---- backend connect: parallel attempts, first success wins ---- */

static void put_pp_header(struct conn *c)
{
	struct pp_addrs a = {.version = 2};
	socklen_t sl = sizeof(a.src);
	uint8_t hdr[PP_V1_MAX + 64];

	if (c->pp_in) {
		a = *c->pp_in;
	} else {
		getpeername(c->cfd, (struct sockaddr *)&a.src, &sl);
		sl = sizeof(a.dst);
		getsockname(c->cfd, (struct sockaddr *)&a.dst, &sl);
	}
	size_t n = pp_build(&a, hdr, sizeof(hdr));
	c->up.buf = worker_buf_get(c->w);
	memcpy(c->up.buf, hdr, n);
	c->up.off = 0;
	c->up.len = (uint32_t)n;
}

static void drop_attempts(struct conn *c, int keep)
{
	for (unsigned i = 0; i < c->n_att; i++) {
		if ((int)i == keep || c->att[i].fd < 0)
			continue;
		event_del(&c->att[i].ev);
		close(c->att[i].fd);
	}
	free(c->att);
	c->att = NULL;
	c->n_att = 0;
}

/* For the relay started before the connect is known done: the socket's
 * pending error, if any (ECONNREFUSED, ETIMEDOUT...). */
static bool backend_error(struct conn *c)
{
	int soerr = 0;
	socklen_t sl = sizeof(soerr);

	return getsockopt(c->bfd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr != 0;
}

static void connected(struct conn *c, unsigned i, bool registered)
{
	bool pp = c->att[i].pp;

	if (registered)
		event_del(&c->att[i].ev);
	c->bfd = c->att[i].fd;
	drop_attempts(c, (int)i);
	free(c->cand);
	c->cand = NULL;
	event_del(&c->timer);
	if (pp)
		put_pp_header(c);
	start_relay(c, false);
}

static void on_attempt(evutil_socket_t fd, short what, void *arg)
{
	struct attempt *a = arg;
	struct conn *c = a->c;
	int soerr = 0;
	socklen_t sl = sizeof(soerr);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
		return connected(c, (unsigned)(a - c->att), true);
	event_del(&a->ev);
	close(a->fd);
	a->fd = -1;
	if (++c->n_failed == c->n_att)
		fail(c, "all backend connects failed");
}

static void start_connect(struct conn *c)
{
	struct proxy_engine *pe = c->w->pe;
	int one = 1;
	unsigned live = 0;

	if (c->cand->app_id[0]) {
		if (!engine_app_acquire(pe, c->cand->app_id))
			return fail(c, "max_connections_per_app reached");
		c->app = strdup(c->cand->app_id);
		if (!c->app)
			abort();
	}
	c->att = calloc(c->cand->n, sizeof(*c->att));
	if (!c->att)
		abort();
	c->n_att = (unsigned)c->cand->n;
	c->st = CS_CONNECT;
	for (unsigned i = 0; i < c->n_att; i++) {
		const struct proxy_backend *b = &c->cand->b[i];
		struct attempt *a = &c->att[i];
		a->c = c;
		a->pp = b->pp;
		a->fd = socket(b->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (a->fd >= 0) {
			setsockopt(a->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			if (connect(a->fd, (const struct sockaddr *)&b->addr, b->addr_len) == 0 ||
			    errno == EINPROGRESS) {
				live = i;
				continue;
			}
			close(a->fd);
			a->fd = -1;
		}
		c->n_failed++;
	}
	if (c->n_failed == c->n_att)
		return fail(c, "backend connect failed");
	/* One backend: on loopback or a local link the connect is usually
	 * done by the time connect(2) returns, so relay at once instead of
	 * waiting for writability: bytes already there (the request read
	 * with the client's Finished, a ClientHello to pass through, a PROXY
	 * header) leave now. A write that finds the socket still connecting
	 * waits for EV_WRITE like any full socket; until a read or write
	 * succeeds, EV_WRITE stays registered and the connect timeout
	 * applies (b_connecting). */
	if (c->n_att - c->n_failed == 1) {
		c->b_connecting = true;
		c->t_connect = worker_now_ms(c->w);
		return connected(c, live, false);
	}
	for (unsigned i = 0; i < c->n_att; i++) {
		struct attempt *a = &c->att[i];
		if (a->fd < 0)
			continue;
		event_assign(&a->ev, c->w->base, a->fd, EV_WRITE, on_attempt, a);
		event_add(&a->ev, NULL);
	}
	arm_timer(c, worker_now_ms(c->w) + pe->cfg.timeouts.connect);
}

/* ---- built-in endpoints ---- */

static void respond(struct conn *c, int status, const char *ctype, const char *body)
{
	static const char *reasons[] = {
	    [200] = "OK", [400] = "Bad Request", [404] = "Not Found", [405] = "Method Not Allowed"};
	size_t cap = c->w->pe->cfg.buffer_size, blen = body ? strlen(body) : 0;
	int n = snprintf((char *)c->down.buf, cap,
			 "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n%s%s%sConnection: close\r\n\r\n", status,
			 reasons[status], blen, ctype ? "Content-Type: " : "", ctype ? ctype : "",
			 ctype ? "\r\n" : "");
	if (n < 0 || (size_t)n + blen > cap) {
		n = snprintf((char *)c->down.buf, cap,
			     "HTTP/1.1 500 Internal Server Error\r\n"
			     "Content-Length: 0\r\nConnection: close\r\n\r\n");
		blen = 0;
	}
	memcpy(c->down.buf + n, body ? body : "", blen);
	c->down.off = 0;
	c->down.len = (uint32_t)((size_t)n + blen);
}

static void serve_builtin(struct conn *c, char *req)
{
	char *sp1 = strchr(req, ' '), *path, *sp2;

	c->down.buf = worker_buf_get(c->w);
	c->down.eof = true; /* the response is all there is */
	c->up.eof = c->up.shut = true;
	if (!sp1 || !(sp2 = strchr(path = sp1 + 1, ' ')))
		return respond(c, 400, NULL, NULL);
	*sp1 = *sp2 = '\0';
	char *q = strchr(path, '?');
	if (q)
		*q = '\0';
	if (c->builtin == BI_HEALTH)
		return strcmp(req, "GET") == 0 && strcmp(path, "/") == 0 ? respond(c, 200, NULL, NULL)
									 : respond(c, 404, NULL, NULL);
	if (strcmp(req, "GET") != 0)
		return respond(c, 405, NULL, NULL);
	if (strcmp(path, "/health") == 0)
		return respond(c, 200, "text/plain", "OK");
	if (strncmp(path, "/.dstack/", 9) == 0)
		path += 8;
	if (strcmp(path, "/index") == 0)
		return respond(
		    c, 200, "application/json",
		    "{\"type\":\"dstack gateway\",\"paths\":[\"/index\",\"/app-info\",\"/acme-info\"]}");
	const struct proxy_routes *r = &c->w->pe->routes;
	if ((strcmp(path, "/app-info") == 0 || strcmp(path, "/acme-info") == 0) && r->info_json) {
		char *body = r->info_json(r->ctx, path + 1);
		if (body) {
			respond(c, 200, "application/json", body);
			free(body);
			return;
		}
	}
	respond(c, 404, NULL, NULL);
}

static void builtin_read(struct conn *c)
{
	size_t cap = c->w->pe->cfg.buffer_size < 8192 ? c->w->pe->cfg.buffer_size : 8192, got;
	short need;

	if (!c->up.buf)
		c->up.buf = worker_buf_get(c->w);
	int ret = SSL_read_ex(c->ssl, c->up.buf + c->up.len, cap - 1 - c->up.len, &got);
	if (ret != 1) {
		if (ssl_result(c, ret, &need) < 0 && need)
			return set_events(c, true, need);
		return fail(c, "builtin: client closed");
	}
	c->up.len += (uint32_t)got;
	c->up.buf[c->up.len] = '\0';
	if (!strstr((char *)c->up.buf, "\r\n\r\n")) {
		if (c->up.len + 1 >= cap)
			return fail(c, "builtin: request too large");
		return builtin_read(c);
	}
	char req[1024];
	size_t l = strcspn((char *)c->up.buf, "\r\n");
	if (l >= sizeof(req))
		l = sizeof(req) - 1;
	memcpy(req, c->up.buf, l);
	req[l] = '\0';
	release_buf(c, &c->up);
	c->up.len = 0;
	serve_builtin(c, req);
	event_del(&c->timer);
	start_relay(c, true);
}

/* ---- TLS termination ---- */

static void do_handshake(struct conn *c)
{
	short need;
	int ret = SSL_do_handshake(c->ssl);

	if (ret != 1) {
		if (ssl_result(c, ret, &need) < 0 && need)
			return set_events(c, true, need);
		return fail(c, "TLS handshake failed");
	}
	SSL_set_mode(c->ssl, SSL_MODE_RELEASE_BUFFERS); /* see start_tls */
	c->ticket_due = SSL_version(c->ssl) == TLS1_3_VERSION;
	/* The client socket stays registered for reading while the backend
	 * connects: the request usually came with the client's Finished and
	 * sits in OpenSSL's buffer, so the socket stays quiet and the relay
	 * starts with the registration it needs. If bytes do arrive, on_cfd
	 * unregisters it then (level-triggered, it would fire until read). */
	if (c->builtin) {
		c->st = CS_BUILTIN;
		return builtin_read(c);
	}
	start_connect(c);
}

static void start_tls(struct conn *c, SSL_CTX *ctx)
{
	c->ssl = SSL_new(ctx);
	SSL_CTX_free(ctx);
	if (!c->ssl)
		return fail(c, "SSL_new failed");
	/* Reads through OpenSSL's socket BIO (tls_bio_cb above), writes
	 * through tlstx.c. */
	c->tx = (struct tls_tx){.w = c->w, .fd = c->cfd};
	BIO *rbio = BIO_new_socket(c->cfd, BIO_NOCLOSE), *wbio = tls_tx_bio(c->w->pe->tx_method, &c->tx);
	if (!rbio || !wbio) {
		BIO_free(rbio);
		BIO_free(wbio);
		return fail(c, "BIO_new failed");
	}
	SSL_set_bio(c->ssl, rbio, wbio);
	SSL_set_app_data(c->ssl, &c->h2);
	SSL_set_accept_state(c->ssl);
	/* Keep OpenSSL's record buffers through the handshake instead of
	 * freeing and allocating 16 KiB at every flight; released again when
	 * they run empty once the handshake is done, so an idle connection
	 * still holds none. */
	SSL_clear_mode(c->ssl, SSL_MODE_RELEASE_BUFFERS);
	BIO_set_callback_arg(rbio, (char *)c);
	BIO_set_callback_ex(rbio, tls_bio_cb);
	c->st = CS_TLS;
	set_events(c, true, 0); /* leave edge-triggered sniff mode */
	arm_timer(c, worker_now_ms(c->w) + c->w->pe->cfg.timeouts.handshake);
	do_handshake(c);
}

/* ---- routing ---- */

static void localhost_candidate(struct proxy_candidates *cand, uint16_t port)
{
	struct sockaddr_in *sa = (struct sockaddr_in *)&cand->b[0].addr;

	memset(cand, 0, sizeof(*cand));
	sa->sin_family = AF_INET;
	sa->sin_port = htons(port);
	sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cand->b[0].addr_len = sizeof(*sa);
	cand->n = 1;
}

static void on_txt(void *arg, int status, const char *id, uint16_t port)
{
	struct conn *c = arg;
	struct err e = ERR_INIT;

	c->dnsq = NULL;
	if (status < 0)
		return fail(c, "custom domain: no usable TXT record");
	c->cand = malloc(sizeof(*c->cand));
	if (!c->cand)
		abort();
	if (engine_resolve(c->w->pe, id, port, c->cand, &e) < 0)
		return fail(c, err_str(&e));
	event_del(&c->timer);
	start_connect(c);
}

static void route(struct conn *c, const char *sni)
{
	struct proxy_engine *pe = c->w->pe;
	const char *sub, *base;
	size_t sub_len;
	struct proxy_name name;
	struct err e = ERR_INIT;

	if (proxy_sni_split(sni, &sub, &sub_len, &base) < 0)
		return fail(c, "SNI has no dot");
	SSL_CTX *ctx = engine_cert_lookup(pe, base);
	set_events(c, true, 0);
	if (!ctx) {
		/* Custom domain: passthrough to the app named by its TXT record. */
		char id[PROXY_ID_MAX];
		uint16_t port;
		int hit = txt_cached(c->w->dns, sni, id, sizeof(id), &port);
		c->passthrough = true;
		c->st = CS_DNS;
		if (hit)
			return on_txt(c, hit > 0 ? 0 : -1, id, port);
		arm_timer(c, worker_now_ms(c->w) + pe->cfg.timeouts.dns_resolve);
		c->dnsq = txt_lookup(c->w->dns, sni, on_txt, c);
		if (!c->dnsq)
			fail(c, "custom domain: lookup failed");
		return;
	}
	if (proxy_name_parse(sub, sub_len, &name, &e) < 0) {
		SSL_CTX_free(ctx);
		return fail(c, err_str(&e));
	}
	c->h2 = name.h2;
	c->passthrough = name.tls_passthrough;
	if (!c->passthrough && name.port == 80 && strcmp(name.id, "health") == 0)
		c->builtin = BI_HEALTH;
	else if (!c->passthrough && name.port == 80 && strcmp(name.id, "gateway") == 0)
		c->builtin = BI_GATEWAY;
	if (c->builtin)
		return start_tls(c, ctx);

	c->cand = malloc(sizeof(*c->cand));
	if (!c->cand)
		abort();
	if (strcmp(name.id, "localhost") == 0 && pe->cfg.insecure_localhost_backend) {
		localhost_candidate(c->cand, name.port);
	} else if (engine_resolve(pe, name.id, name.port, c->cand, &e) < 0) {
		SSL_CTX_free(ctx);
		return fail(c, err_str(&e));
	}
	if (c->passthrough) {
		SSL_CTX_free(ctx);
		return start_connect(c);
	}
	start_tls(c, ctx);
}

/* ---- PROXY header and ClientHello sniffing (MSG_PEEK) ---- */

static void sniff(struct conn *c)
{
	struct worker *w = c->w;
	const struct proxy_timeouts *t = &w->pe->cfg.timeouts;

	for (;;) {
		ssize_t n = recv(c->cfd, w->scratch, sizeof(w->scratch), MSG_PEEK);
		if (n == 0)
			return fail(c, "EOF before ClientHello");
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return set_events(c, true, EV_READ | EV_ET);
			return fail(c, "recv failed");
		}
		if (c->st == CS_PP) {
			struct pp_addrs a;
			size_t used = 0;
			enum pp_result r = pp_parse(w->scratch, (size_t)n, &a, &used);
			if (r == PP_INVALID || (r == PP_NEED_MORE && n >= PP_V2_MAX))
				return fail(c, "bad PROXY header");
			if (r == PP_NEED_MORE)
				return set_events(c, true, EV_READ | EV_ET);
			if (recv(c->cfd, w->scratch, used, 0) != (ssize_t)used)
				return fail(c, "PROXY header read failed");
			c->pp_in = malloc(sizeof(a));
			if (!c->pp_in)
				abort();
			*c->pp_in = a;
			c->st = CS_SNIFF;
			arm_timer(c, worker_now_ms(w) + t->handshake);
			continue;
		}
		struct sni_info si;
		enum sni_result r = sni_parse(w->scratch, (size_t)n, &si);
		if (r == SNI_INVALID)
			return fail(c, "no SNI in ClientHello");
		if (r == SNI_NEED_MORE) {
			if ((size_t)n >= sizeof(w->scratch))
				return fail(c, "ClientHello larger than sniff window");
			return set_events(c, true, EV_READ | EV_ET);
		}
		return route(c, si.host);
	}
}

/* ---- events ---- */

static void on_cfd(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (what & EV_READ)
		c->rd_ready = true;
	switch (c->st) {
	case CS_PP:
	case CS_SNIFF:
		return sniff(c);
	case CS_TLS:
		return do_handshake(c);
	case CS_BUILTIN:
		return builtin_read(c);
	case CS_RELAY:
		return pump(c, c->up.src_need & what, c->down.dst_need & what);
	default: /* nothing awaited on the client until the relay starts */
		return set_events(c, true, 0);
	}
}

static void on_bfd(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (what & EV_CLOSED)
		c->b_rdhup = true;
	/* Writable while connecting: connected, unless epoll reported an
	 * error too (EPOLLERR reaches us as EV_READ|EV_WRITE). */
	if (c->b_connecting && (what & EV_WRITE)) {
		if ((what & EV_READ) && backend_error(c))
			return fail(c, "backend connect failed");
		c->b_connecting = false;
	}
	if (c->st == CS_RELAY)
		pump(c, c->up.dst_need & what, c->down.src_need & what);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (c->st == CS_RELAY)
		return relay_timer(c);
	fail(c, c->st == CS_PP        ? "PROXY header timeout"
		: c->st == CS_CONNECT ? "backend connect timeout"
		: c->st == CS_DNS     ? "TXT lookup timeout"
				      : "handshake timeout");
}

void conn_accepted(struct worker *w, int fd)
{
	struct proxy_engine *pe = w->pe;
	struct conn *c = calloc(1, sizeof(*c));

	if (!c) {
		atomic_fetch_sub(&w->active, 1);
		close(fd);
		return;
	}
	/* TCP_NODELAY is inherited from the listening socket (Linux). */
	c->w = w;
	c->cfd = fd;
	c->bfd = -1;
	c->rd_ready = true; /* the ClientHello is sniffed before any TLS read */
	c->up.pipe[0] = c->up.pipe[1] = c->down.pipe[0] = c->down.pipe[1] = -1;
	c->t_start = worker_now_ms(w);
	c->st = pe->cfg.inbound_pp_enabled ? CS_PP : CS_SNIFF;
	evtimer_assign(&c->timer, w->base, on_timer, c);
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	atomic_fetch_add(&pe->st_accepted, 1);
	atomic_fetch_add(&pe->st_active, 1);
	arm_timer(c, c->t_start + (c->st == CS_PP ? pe->cfg.timeouts.pp_header : pe->cfg.timeouts.handshake));
	sniff(c);
}

static void free_dir(struct conn *c, struct dir *d)
{
	release_buf(c, d);
	if (d->pipe[0] >= 0) {
		if (d->in_pipe) {
			close(d->pipe[0]);
			close(d->pipe[1]);
		} else {
			worker_pipe_put(c->w, d->pipe);
		}
	}
}

static void conn_free(struct conn *c)
{
	struct worker *w = c->w;

	set_events(c, true, 0);
	set_events(c, false, 0);
	event_del(&c->timer);
	if (c->dnsq)
		txt_cancel(c->dnsq);
	if (c->att)
		drop_attempts(c, -1);
	if (c->ssl)
		SSL_free(c->ssl);
	close(c->cfd);
	if (c->bfd >= 0)
		close(c->bfd);
	free_dir(c, &c->up);
	free_dir(c, &c->down);
	tls_tx_release(&c->tx);
	if (c->app) {
		engine_app_release(w->pe, c->app);
		free(c->app);
	}
	free(c->cand);
	free(c->pp_in);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	atomic_fetch_sub(&w->pe->st_active, 1);
	atomic_fetch_sub(&w->active, 1);
	free(c);
}

void conn_close_all(struct worker *w)
{
	while (w->conns)
		conn_free(w->conns);
}
