/*
 * engine.c — worker threads, SO_REUSEPORT listeners, and the state the
 * workers share: wildcard certificates (rwlock), the 30 s candidate cache and
 * the per-app connection counters (mutexes; touched once per connection,
 * never per byte). Each worker is a plain libevent loop; nothing crosses
 * threads on the data path.
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

#include <signal.h>

#include <event2/thread.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "internal.h"

void proxy_config_defaults(struct proxy_config *c)
{
	memset(c, 0, sizeof(*c));
	c->listen_addr = "0.0.0.0";
	c->listen_port_lo = c->listen_port_hi = 8443;
	c->workers = 32;
	c->buffer_size = 65536;
	c->connect_top_n = 3;
	c->max_connections_per_app = 2000;
	c->connection_rebalance = true;
	c->tls_versions = PROXY_TLS12 | PROXY_TLS13;
	c->app_address_ns_prefix = "_dstack-app-address";
	c->app_address_ns_compat = true;
	c->timeouts = (struct proxy_timeouts){
	    .connect = 5000,
	    .handshake = 5000,
	    .cache_top_n = 30000,
	    .handshake_stale = 30 * 60000,
	    .dns_resolve = 5000,
	    .data_timeout_enabled = true,
	    .idle = 10 * 60000,
	    .shutdown = 5000,
	    .total = 5ull * 3600000,
	    .pp_header = 5000,
	};
}

int proxy_parse_port_range(const char *s, uint16_t *lo, uint16_t *hi, struct err *e)
{
	unsigned long a, b;
	char *end;

	a = strtoul(s, &end, 10);
	if (end == s || a > 65535)
		return err_set(e, "invalid listen_port '%s'", s);
	b = a;
	if (*end == '-') {
		const char *t = end + 1;
		b = strtoul(t, &end, 10);
		if (end == t || b > 65535 || b < a)
			return err_set(e, "invalid listen_port range '%s'", s);
	}
	if (*end)
		return err_set(e, "invalid listen_port '%s'", s);
	if (b - a + 1 > MAX_PORTS)
		return err_set(e, "listen_port range '%s' larger than %d ports", s, MAX_PORTS);
	*lo = (uint16_t)a;
	*hi = (uint16_t)b;
	return 0;
}

uint64_t worker_now_ms(struct worker *w)
{
	struct timeval tv;

	event_base_gettimeofday_cached(w->base, &tv);
	return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

/* Relay chunks: a free list per worker, trimmed so an idle worker keeps at
 * most 64 chunks. */
uint8_t *worker_buf_get(struct worker *w)
{
	if (w->free_bufs) {
		struct pool_chunk *c = w->free_bufs;
		w->free_bufs = c->next;
		w->n_free_bufs--;
		return (uint8_t *)c;
	}
	uint8_t *b = malloc(w->pe->cfg.buffer_size);
	if (!b)
		abort();
	return b;
}

void worker_buf_put(struct worker *w, uint8_t *b)
{
	if (!b)
		return;
	if (w->n_free_bufs >= 64) {
		free(b);
		return;
	}
	struct pool_chunk *c = (struct pool_chunk *)b;
	c->next = w->free_bufs;
	w->free_bufs = c;
	w->n_free_bufs++;
}

int worker_pipe_get(struct worker *w, int p[2])
{
	if (w->n_pipes) {
		w->n_pipes--;
		p[0] = w->pipes[w->n_pipes][0];
		p[1] = w->pipes[w->n_pipes][1];
		return 0;
	}
	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0)
		return -1;
	(void)fcntl(p[0], F_SETPIPE_SZ, PIPE_SIZE); /* best effort: may exceed pipe-max-size */
	return 0;
}

/* Only empty pipes come back here; release_idle_pipes closes instead. */
void worker_pipe_put(struct worker *w, int p[2])
{
	if (w->pe->cfg.tcp_splice.release_idle_pipes || w->n_pipes >= PIPE_POOL_MAX) {
		close(p[0]);
		close(p[1]);
	} else {
		w->pipes[w->n_pipes][0] = p[0];
		w->pipes[w->n_pipes][1] = p[1];
		w->n_pipes++;
	}
	p[0] = p[1] = -1;
}

/* ---- certificates ---- */

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
		       unsigned int inlen, void *arg)
{
	const bool *h2 = SSL_get_app_data(ssl);

	if (!h2 || !*h2)
		return SSL_TLSEXT_ERR_NOACK;
	for (unsigned i = 0; i < inlen;) {
		unsigned l = in[i];
		if (i + 1 + l > inlen)
			break;
		if (l == 2 && memcmp(in + i + 1, "h2", 2) == 0) {
			*out = in + i + 1;
			*outlen = 2;
			return SSL_TLSEXT_ERR_OK;
		}
		i += 1 + l;
	}
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* `g` names serve only h2: a client that offers no ALPN at all fails too. */
static int client_hello_check(SSL *ssl, int *al, void *arg)
{
	const bool *h2 = SSL_get_app_data(ssl);
	const unsigned char *ext;
	size_t len;

	if (h2 && *h2 &&
	    !SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &ext, &len)) {
		*al = SSL_AD_NO_APPLICATION_PROTOCOL;
		return SSL_CLIENT_HELLO_ERROR;
	}
	return SSL_CLIENT_HELLO_SUCCESS;
}

/* Certificate and key from files (paths) or from PEM in memory. */
struct cert_src {
	const char *chain_path, *key_path;
	const char *chain_pem, *key_pem;
	size_t chain_len, key_len;
};

static int load_pem(SSL_CTX *ctx, const struct cert_src *src, struct err *e)
{
	_cleanup_(BIO_free_allp) BIO *cb = BIO_new_mem_buf(src->chain_pem, (int)src->chain_len);
	_cleanup_(BIO_free_allp) BIO *kb = BIO_new_mem_buf(src->key_pem, (int)src->key_len);
	_cleanup_(X509_freep) X509 *leaf = NULL;
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *pk = NULL;
	X509 *x;

	if (!cb || !kb || src->chain_len > INT32_MAX || src->key_len > INT32_MAX)
		return err_set(e, "certificate too large");
	leaf = PEM_read_bio_X509(cb, NULL, NULL, NULL);
	if (!leaf || SSL_CTX_use_certificate(ctx, leaf) != 1)
		return err_ssl(e, "parse certificate chain");
	while ((x = PEM_read_bio_X509(cb, NULL, NULL, NULL)))
		if (SSL_CTX_add0_chain_cert(ctx, x) != 1) {
			X509_free(x);
			return err_ssl(e, "add chain certificate");
		}
	ERR_clear_error(); /* the end of the chain reads as an error */
	pk = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
	if (!pk || SSL_CTX_use_PrivateKey(ctx, pk) != 1)
		return err_ssl(e, "parse private key");
	return 0;
}

static SSL_CTX *make_ctx(const struct proxy_config *cfg, const struct cert_src *src, struct err *e)
{
	_cleanup_(SSL_CTX_freep) SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	int lo = cfg->tls_versions & PROXY_TLS12 ? TLS1_2_VERSION : TLS1_3_VERSION;
	int hi = cfg->tls_versions & PROXY_TLS13 ? TLS1_3_VERSION : TLS1_2_VERSION;

	if (!ctx)
		return err_ssl(e, "SSL_CTX_new"), NULL;
	if (!(cfg->tls_versions & (PROXY_TLS12 | PROXY_TLS13)))
		return err_set(e, "tls_versions enables no version"), NULL;
	SSL_CTX_set_min_proto_version(ctx, lo);
	SSL_CTX_set_max_proto_version(ctx, hi);
	if (src->chain_path) {
		if (SSL_CTX_use_certificate_chain_file(ctx, src->chain_path) != 1)
			return err_ssl(e, "load cert chain %s", src->chain_path), NULL;
		if (SSL_CTX_use_PrivateKey_file(ctx, src->key_path, SSL_FILETYPE_PEM) != 1)
			return err_ssl(e, "load key %s", src->key_path), NULL;
	} else if (load_pem(ctx, src, e) < 0) {
		return NULL;
	}
	if (SSL_CTX_check_private_key(ctx) != 1)
		return err_ssl(e, "key does not match certificate"), NULL;
	/* Complete the chain once here (from the file, else the default
	 * store); otherwise OpenSSL runs a chain build with X509_verify_cert
	 * on every handshake for a certificate loaded without intermediates. */
	if (SSL_CTX_build_cert_chain(ctx, SSL_BUILD_CHAIN_FLAG_UNTRUSTED | SSL_BUILD_CHAIN_FLAG_NO_ROOT |
					      SSL_BUILD_CHAIN_FLAG_IGNORE_ERROR) <= 0)
		return err_ssl(e, "build certificate chain"), NULL;
	ERR_clear_error();
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
				  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_NO_AUTO_CHAIN);
	/* The key exchanges and TLS 1.2 suites rustls offers (the reference):
	 * X25519 first, no finite-field DH or CBC suites a client could pick
	 * to make the handshake slower. */
	if (SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384") != 1 ||
	    SSL_CTX_set_cipher_list(ctx, "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:"
					 "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES256-GCM-SHA384:"
					 "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305") != 1)
		return err_ssl(e, "TLS groups/ciphers"), NULL;
	/* Read whole flights/records per read(2) instead of header then body;
	 * the buffer is still released when it runs empty. */
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
				     SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* Stateless tickets only: no per-session server memory. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* TLS 1.3: one ticket per handshake, but not at its end: conn.c
	 * asks for it (SSL_new_session_ticket) at the first write to the
	 * client, so it leaves in the same segment as those bytes. */
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
	SSL_CTX_set_client_hello_cb(ctx, client_hello_check, NULL);
	return TAKE_PTR(ctx);
}

static int install_cert(struct proxy_engine *pe, const char *base, const struct cert_src *src, struct err *e)
{
	SSL_CTX *ctx;
	int rc = 0;

	if (strlen(base) >= sizeof(pe->certs[0].base))
		return err_set(e, "base domain too long");
	if (!(ctx = make_ctx(&pe->cfg, src, e)))
		return err_wrap(e, "certificate for *.%s", base);
	pthread_rwlock_wrlock(&pe->certs_lock);
	unsigned i;
	for (i = 0; i < pe->n_certs; i++)
		if (strcmp(pe->certs[i].base, base) == 0)
			break;
	if (i == pe->n_certs) {
		if (i == MAX_CERTS) {
			rc = err_set(e, "too many certificates");
			SSL_CTX_free(ctx);
			goto out;
		}
		strcpy(pe->certs[i].base, base);
		pe->n_certs++;
	} else {
		SSL_CTX_free(pe->certs[i].ctx);
	}
	pe->certs[i].ctx = ctx;
out:
	pthread_rwlock_unlock(&pe->certs_lock);
	return rc;
}

int proxy_engine_set_cert(struct proxy_engine *pe, const char *base, const char *chain_path,
			  const char *key_path, struct err *e)
{
	struct cert_src src = {.chain_path = chain_path, .key_path = key_path};

	return install_cert(pe, base, &src, e);
}

int proxy_engine_set_cert_pem(struct proxy_engine *pe, const char *base, const char *chain_pem,
			      size_t chain_len, const char *key_pem, size_t key_len, struct err *e)
{
	struct cert_src src = {
	    .chain_pem = chain_pem, .chain_len = chain_len, .key_pem = key_pem, .key_len = key_len};

	return install_cert(pe, base, &src, e);
}

void proxy_engine_remove_cert(struct proxy_engine *pe, const char *base)
{
	pthread_rwlock_wrlock(&pe->certs_lock);
	for (unsigned i = 0; i < pe->n_certs; i++)
		if (strcmp(pe->certs[i].base, base) == 0) {
			SSL_CTX_free(pe->certs[i].ctx); /* live connections hold their own reference */
			pe->certs[i] = pe->certs[--pe->n_certs];
			break;
		}
	pthread_rwlock_unlock(&pe->certs_lock);
}

SSL_CTX *engine_cert_lookup(struct proxy_engine *pe, const char *base)
{
	SSL_CTX *ctx = NULL;

	pthread_rwlock_rdlock(&pe->certs_lock);
	for (unsigned i = 0; i < pe->n_certs; i++)
		if (strcmp(pe->certs[i].base, base) == 0) {
			ctx = pe->certs[i].ctx;
			SSL_CTX_up_ref(ctx);
			break;
		}
	pthread_rwlock_unlock(&pe->certs_lock);
	return ctx;
}

/* ---- candidate cache and per-app counters ---- */

static uint32_t hash_str(const char *s, uint32_t seed)
{
	uint32_t h = 2166136261u ^ seed;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

int engine_resolve(struct proxy_engine *pe, const char *id, uint16_t port, struct proxy_candidates *out,
		   struct err *e)
{
	struct route_slot *slot = &pe->route_cache[hash_str(id, port) % ROUTE_SLOTS];
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;

	pthread_mutex_lock(&pe->routes_lock);
	if (slot->expires_ms > now && slot->port == port && strcmp(slot->id, id) == 0) {
		*out = slot->cand;
		pthread_mutex_unlock(&pe->routes_lock);
		return 0;
	}
	pthread_mutex_unlock(&pe->routes_lock);

	if (!pe->routes.resolve)
		return err_set(e, "no routing table");
	memset(out, 0, sizeof(*out));
	if (pe->routes.resolve(pe->routes.ctx, id, port, out, e) < 0)
		return -1;
	if (out->n == 0)
		return err_set(e, "no backend for %s", id);
	if (out->n > PROXY_MAX_CANDIDATES)
		out->n = PROXY_MAX_CANDIDATES;
	if (pe->cfg.connect_top_n == 0) {
		/* One random candidate, not cached. */
		out->b[0] = out->b[(size_t)random() % out->n];
		out->n = 1;
		return 0;
	}
	if (out->n > pe->cfg.connect_top_n)
		out->n = pe->cfg.connect_top_n;
	if (pe->cfg.timeouts.cache_top_n && strlen(id) < sizeof(slot->id)) {
		pthread_mutex_lock(&pe->routes_lock);
		strcpy(slot->id, id);
		slot->port = port;
		slot->cand = *out;
		slot->expires_ms = now + pe->cfg.timeouts.cache_top_n;
		pthread_mutex_unlock(&pe->routes_lock);
	}
	return 0;
}

void proxy_engine_invalidate(struct proxy_engine *pe, const char *id)
{
	pthread_mutex_lock(&pe->routes_lock);
	for (unsigned i = 0; i < ROUTE_SLOTS; i++)
		if (strcmp(pe->route_cache[i].id, id) == 0 || strcmp(pe->route_cache[i].cand.app_id, id) == 0)
			pe->route_cache[i].expires_ms = 0;
	pthread_mutex_unlock(&pe->routes_lock);
}

static struct app_count **app_find(struct proxy_engine *pe, const char *app_id)
{
	struct app_count **pp = &pe->apps[hash_str(app_id, 0) % APP_BUCKETS];

	while (*pp && strcmp((*pp)->id, app_id) != 0)
		pp = &(*pp)->next;
	return pp;
}

bool engine_app_acquire(struct proxy_engine *pe, const char *app_id)
{
	bool ok = true;

	pthread_mutex_lock(&pe->apps_lock);
	struct app_count **pp = app_find(pe, app_id);
	if (!*pp) {
		size_t l = strlen(app_id);
		*pp = calloc(1, sizeof(**pp) + l + 1);
		if (!*pp)
			abort();
		memcpy((*pp)->id, app_id, l + 1);
	}
	if (pe->cfg.max_connections_per_app && (*pp)->n >= pe->cfg.max_connections_per_app)
		ok = false;
	else
		(*pp)->n++;
	if (!(*pp)->n) {
		struct app_count *dead = *pp;
		*pp = dead->next;
		free(dead);
	}
	pthread_mutex_unlock(&pe->apps_lock);
	return ok;
}

void engine_app_release(struct proxy_engine *pe, const char *app_id)
{
	pthread_mutex_lock(&pe->apps_lock);
	struct app_count **pp = app_find(pe, app_id);
	if (*pp && --(*pp)->n == 0) {
		struct app_count *dead = *pp;
		*pp = dead->next;
		free(dead);
	}
	pthread_mutex_unlock(&pe->apps_lock);
}

unsigned proxy_engine_app_connections(struct proxy_engine *pe, const char *app_id)
{
	unsigned n;

	pthread_mutex_lock(&pe->apps_lock);
	struct app_count **pp = app_find(pe, app_id);
	n = *pp ? (*pp)->n : 0;
	pthread_mutex_unlock(&pe->apps_lock);
	return n;
}

void proxy_engine_stats(struct proxy_engine *pe, struct proxy_stats *out)
{
	out->accepted = atomic_load(&pe->st_accepted);
	out->active = atomic_load(&pe->st_active);
	out->relayed = atomic_load(&pe->st_relayed);
	out->rejected = atomic_load(&pe->st_rejected);
	out->splice_engaged = atomic_load(&pe->st_splice);
	out->rebalanced = atomic_load(&pe->st_rebalanced);
	out->worker_min = UINT64_MAX;
	out->worker_max = 0;
	for (unsigned i = 0; i < pe->n_workers; i++) {
		uint64_t a = atomic_load(&pe->workers[i].active);
		out->worker_min = a < out->worker_min ? a : out->worker_min;
		out->worker_max = a > out->worker_max ? a : out->worker_max;
	}
}

/* ---- listeners and workers ---- */

/* SO_REUSEPORT would let a second gateway (same uid) silently share the
 * port and take part of the traffic: probe with a plain bind first. */
static int port_free(const struct proxy_config *cfg, uint16_t port, struct err *e)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	_cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;

	if (fd < 0)
		return err_errno(e, "socket");
	if (inet_pton(AF_INET, cfg->listen_addr, &sa.sin_addr) != 1)
		return err_set(e, "invalid listen_addr '%s'", cfg->listen_addr);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return err_errno(e, "bind %s:%u", cfg->listen_addr, port);
	return 0;
}

static int bind_listener(const struct proxy_config *cfg, uint16_t port, uint16_t *bound, struct err *e)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	_cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	socklen_t sl = sizeof(sa);

	if (fd < 0)
		return err_errno(e, "socket");
	if (inet_pton(AF_INET, cfg->listen_addr, &sa.sin_addr) != 1)
		return err_set(e, "invalid listen_addr '%s'", cfg->listen_addr);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		return err_errno(e, "SO_REUSEPORT");
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return err_errno(e, "bind %s:%u", cfg->listen_addr, port);
	if (listen(fd, 4096) < 0)
		return err_errno(e, "listen");
	if (getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
		*bound = ntohs(sa.sin_port);
	return TAKE_FD(fd);
}

/* SO_REUSEPORT spreads connections by hash, not by load: a worker that has
 * at least least+1+least/4 live connections passes the new socket to the
 * least-loaded one (spec §5 "rebalance"). */
static struct worker *pick_worker(struct worker *w)
{
	struct proxy_engine *pe = w->pe;
	struct worker *least = w;
	unsigned lo = atomic_load(&w->active), mine = lo;

	for (unsigned i = 0; i < pe->n_workers; i++) {
		unsigned a = atomic_load(&pe->workers[i].active);
		if (a < lo) {
			lo = a;
			least = &pe->workers[i];
		}
	}
	return mine >= lo + 1 + lo / 4 ? least : w;
}

static void on_handoff(evutil_socket_t unused, short what, void *arg)
{
	struct worker *w = arg;
	int fds[HANDOFF_MAX];
	unsigned n;

	pthread_mutex_lock(&w->hand_lock);
	n = w->hand_n;
	memcpy(fds, w->hand_q, n * sizeof(int));
	w->hand_n = 0;
	pthread_mutex_unlock(&w->hand_lock);
	for (unsigned i = 0; i < n; i++)
		conn_accepted(w, fds[i]);
}

static bool hand_over(struct worker *to, int fd)
{
	bool ok = false;

	pthread_mutex_lock(&to->hand_lock);
	if (to->hand_n < HANDOFF_MAX) {
		to->hand_q[to->hand_n++] = fd;
		ok = true;
	}
	pthread_mutex_unlock(&to->hand_lock);
	if (ok) {
		/* Count it now so a burst is not piled onto the same worker. */
		atomic_fetch_add(&to->active, 1);
		event_active(&to->hand_ev, EV_READ, 0);
		atomic_fetch_add(&to->pe->st_rebalanced, 1);
	}
	return ok;
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < 64; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warn("proxy: accept: %s", strerror(errno));
			return;
		}
		struct worker *to = w->pe->cfg.connection_rebalance ? pick_worker(w) : w;
		if (to != w && hand_over(to, fd))
			continue;
		atomic_fetch_add(&w->active, 1);
		conn_accepted(w, fd);
	}
}

/* A worker's event loop. With the changelist, registration changes made
 * while handling one batch of events reach epoll once, at the next wait: a
 * socket deleted and re-added (connect done, now wait for data) costs one
 * EPOLL_CTL_MOD instead of DEL + ADD. libevent documents one hazard, fds
 * cloned with dup(), which the engine never does; a closed fd whose number
 * is reused at once is handled (MOD retried as ADD). */
static struct event_base *new_base(void)
{
	struct event_config *ec = event_config_new();
	struct event_base *b;

	if (!ec)
		return NULL;
	event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	b = event_base_new_with_config(ec);
	event_config_free(ec);
	return b;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
	conn_close_all(w);
	return NULL;
}

uint16_t proxy_engine_port(const struct proxy_engine *pe)
{
	return pe->port0;
}

int proxy_engine_new(const struct proxy_config *cfg, const struct proxy_routes *routes,
		     struct proxy_engine **out, struct err *e)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct proxy_engine *pe = calloc(1, sizeof(*pe));
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	if (!pe)
		abort();
	pthread_once(&once, (void (*)(void))evthread_use_pthreads);
	/* The SSL socket BIO writes with write(2): a reset peer must not kill us. */
	signal(SIGPIPE, SIG_IGN);
	pe->cfg = *cfg;
	if (routes)
		pe->routes = *routes;
	if (pe->cfg.buffer_size < 4096)
		pe->cfg.buffer_size = 4096;
	pe->n_workers = cfg->workers ? cfg->workers : (unsigned)(ncpu > 0 ? ncpu : 1);
	pe->n_ports = (unsigned)(cfg->listen_port_hi - cfg->listen_port_lo) + 1u;
	pthread_rwlock_init(&pe->certs_lock, NULL);
	pthread_mutex_init(&pe->routes_lock, NULL);
	pthread_mutex_init(&pe->apps_lock, NULL);
	pe->route_cache = calloc(ROUTE_SLOTS, sizeof(*pe->route_cache));
	pe->workers = calloc(pe->n_workers, sizeof(*pe->workers));
	pe->tx_method = tls_tx_method_new();
	if (!pe->route_cache || !pe->workers || !pe->tx_method)
		abort();
	for (unsigned i = 0; i < pe->n_workers; i++)
		for (unsigned p = 0; p < MAX_PORTS; p++)
			pe->workers[i].lfd[p] = -1;
	*out = pe;

	if (cfg->listen_port_hi < cfg->listen_port_lo || pe->n_ports > MAX_PORTS)
		goto fail_range;
	if (cfg->base_domain && cfg->cert_chain && cfg->cert_key &&
	    proxy_engine_set_cert(pe, cfg->base_domain, cfg->cert_chain, cfg->cert_key, e) < 0)
		goto fail;
	for (unsigned p = 0; cfg->listen_port_lo && p < pe->n_ports; p++)
		if (port_free(cfg, (uint16_t)(cfg->listen_port_lo + p), e) < 0)
			goto fail;
	for (unsigned i = 0; i < pe->n_workers; i++) {
		struct worker *w = &pe->workers[i];
		w->pe = pe;
		w->idx = i;
		w->base = new_base();
		if (!w->base) {
			err_set(e, "event_base_new failed");
			goto fail;
		}
		pthread_mutex_init(&w->hand_lock, NULL);
		event_assign(&w->hand_ev, w->base, -1, 0, on_handoff, w);
		w->dns = dns_client_new(w->base, &pe->cfg, e);
		if (!w->dns)
			goto fail;
		for (unsigned p = 0; p < pe->n_ports; p++) {
			uint16_t want = (uint16_t)(cfg->listen_port_lo + p), got = 0;
			if (want == 0 && p == 0 && i > 0)
				want = pe->port0;
			w->lfd[p] = bind_listener(cfg, want, &got, e);
			if (w->lfd[p] < 0)
				goto fail;
			if (i == 0 && p == 0)
				pe->port0 = got;
			event_assign(&w->lev[p], w->base, w->lfd[p], EV_READ | EV_PERSIST, on_accept, w);
			event_add(&w->lev[p], NULL);
		}
	}
	return 0;
fail_range:
	err_set(e, "invalid listen port range");
fail:
	proxy_engine_free(pe);
	*out = NULL;
	return err_wrap(e, "proxy");
}

int proxy_engine_start(struct proxy_engine *pe, struct err *e)
{
	for (unsigned i = 0; i < pe->n_workers; i++) {
		struct worker *w = &pe->workers[i];
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
			return err_set(e, "pthread_create failed");
		w->started = true;
	}
	log_info("proxy: %u workers on %s:%u-%u", pe->n_workers, pe->cfg.listen_addr, pe->port0,
		 (unsigned)(pe->port0 + pe->n_ports - 1));
	return 0;
}

void proxy_engine_free(struct proxy_engine *pe)
{
	if (!pe)
		return;
	for (unsigned i = 0; i < pe->n_workers; i++)
		if (pe->workers[i].started)
			event_base_loopbreak(pe->workers[i].base);
	for (unsigned i = 0; i < pe->n_workers; i++) {
		struct worker *w = &pe->workers[i];
		if (w->started)
			pthread_join(w->thread, NULL);
		else if (w->base)
			conn_close_all(w);
		for (unsigned k = 0; k < w->hand_n; k++)
			close(w->hand_q[k]);
		if (w->base)
			pthread_mutex_destroy(&w->hand_lock);
		for (unsigned p = 0; p < MAX_PORTS; p++)
			if (w->lfd[p] >= 0) {
				event_del(&w->lev[p]);
				close(w->lfd[p]);
			}
		while (w->free_bufs) {
			struct pool_chunk *c = w->free_bufs;
			w->free_bufs = c->next;
			free(c);
		}
		for (unsigned p = 0; p < w->n_pipes; p++) {
			close(w->pipes[p][0]);
			close(w->pipes[p][1]);
		}
		if (w->dns)
			dns_client_free(w->dns);
		if (w->base)
			event_base_free(w->base);
	}
	for (unsigned i = 0; i < pe->n_certs; i++)
		SSL_CTX_free(pe->certs[i].ctx);
	for (unsigned b = 0; b < APP_BUCKETS; b++)
		while (pe->apps[b]) {
			struct app_count *a = pe->apps[b];
			pe->apps[b] = a->next;
			free(a);
		}
	pthread_rwlock_destroy(&pe->certs_lock);
	pthread_mutex_destroy(&pe->routes_lock);
	pthread_mutex_destroy(&pe->apps_lock);
	free(pe->route_cache);
	free(pe->workers);
	BIO_meth_free(pe->tx_method);
	free(pe);
}
