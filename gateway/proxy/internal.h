/*
 * internal.h — structures shared by the engine's source files (not an API).
 *
 * Memory per connection is the design constraint: a relayed connection is a
 * `struct conn` (~1 KiB) plus, on the terminate path, an OpenSSL SSL object
 * with SSL_MODE_RELEASE_BUFFERS. Relay buffers and splice pipes are borrowed
 * from per-thread pools only while bytes are in flight, and the ClientHello
 * is sniffed with MSG_PEEK into a per-thread scratch buffer, so an idle
 * connection holds no buffer at all.
 */
#ifndef DSTACK_GATEWAY_PROXY_INTERNAL_H
#define DSTACK_GATEWAY_PROXY_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <openssl/ssl.h>

#include "name.h"
#include "pp.h"
#include "proxy.h"
#include "sni.h"

#define SNIFF_WINDOW 4096
#define MAX_PORTS 64
#define PIPE_POOL_MAX 64
#define PIPE_SIZE (1 << 20)
#define HANDOFF_MAX 1024

struct proxy_engine;
struct conn;

struct pool_chunk {
	struct pool_chunk *next;
};

struct worker {
	struct proxy_engine *pe;
	unsigned idx;
	struct event_base *base;
	pthread_t thread;
	bool started;
	int lfd[MAX_PORTS];
	struct event lev[MAX_PORTS];
	struct conn *conns;        /* doubly linked, for shutdown */
	atomic_uint active;        /* live connections, read by other workers */
	pthread_mutex_t hand_lock; /* sockets handed over by other workers */
	int hand_q[HANDOFF_MAX];
	unsigned hand_n;
	struct event hand_ev;
	struct pool_chunk *free_bufs;
	unsigned n_free_bufs;
	int pipes[PIPE_POOL_MAX][2];
	unsigned n_pipes;
	uint8_t scratch[SNIFF_WINDOW];
	struct dns_client *dns;
};

struct cert_entry {
	char base[256];
	SSL_CTX *ctx;
};

struct route_slot {
	char id[PROXY_ID_MAX];
	uint16_t port;
	uint64_t expires_ms;
	struct proxy_candidates cand;
};

#define ROUTE_SLOTS 256
#define APP_BUCKETS 256
#define MAX_CERTS 64

/* The client socket's write side under OpenSSL (tlstx.c). */
struct tls_tx {
	struct worker *w;
	int fd;
	bool hold;    /* keep records in buf, ignore OpenSSL's flushes */
	uint8_t *buf; /* pooled chunk while records wait, NULL otherwise */
	uint32_t off, len;
};

struct app_count {
	struct app_count *next;
	unsigned n;
	char id[];
};

struct proxy_engine {
	struct proxy_config cfg;
	struct proxy_routes routes;
	unsigned n_workers, n_ports;
	uint16_t port0;
	struct worker *workers;

	pthread_rwlock_t certs_lock;
	struct cert_entry certs[MAX_CERTS];
	unsigned n_certs;

	pthread_mutex_t routes_lock;
	struct route_slot *route_cache;

	pthread_mutex_t apps_lock;
	struct app_count *apps[APP_BUCKETS];

	BIO_METHOD *tx_method; /* tlstx.c */

	atomic_uint_fast64_t st_accepted, st_active, st_relayed, st_rejected, st_splice, st_rebalanced;
};

/* engine.c */
uint64_t worker_now_ms(struct worker *w);
uint8_t *worker_buf_get(struct worker *w);
void worker_buf_put(struct worker *w, uint8_t *b);
int worker_pipe_get(struct worker *w, int p[2]);
void worker_pipe_put(struct worker *w, int p[2]);
SSL_CTX *engine_cert_lookup(struct proxy_engine *pe, const char *base); /* referenced */
int engine_resolve(struct proxy_engine *pe, const char *id, uint16_t port, struct proxy_candidates *out,
		   struct err *e);
/* Returns false (and does not count) if the app is at its limit. */
bool engine_app_acquire(struct proxy_engine *pe, const char *app_id);
void engine_app_release(struct proxy_engine *pe, const char *app_id);

/* conn.c */
void conn_accepted(struct worker *w, int fd);
void conn_close_all(struct worker *w);

/* tlstx.c */
BIO_METHOD *tls_tx_method_new(void);
BIO *tls_tx_bio(const BIO_METHOD *m, struct tls_tx *tx);
/* Writes the held records: 1 = all out, 0 = the socket is full (wait until
 * writable), -1 = error. `more`: the caller shuts the socket down next. */
int tls_tx_flush(struct tls_tx *tx, bool more);
void tls_tx_release(struct tls_tx *tx);

/* txt.c: custom-domain lookup, `<id>:<port>` from TXT records. */
typedef void (*txt_cb)(void *arg, int status, const char *id, uint16_t port);
struct dns_client *dns_client_new(struct event_base *base, const struct proxy_config *cfg, struct err *e);
void dns_client_free(struct dns_client *dc);
/* Cached answer: 1 = hit (id, port set), -1 = cached failure, 0 = miss. */
int txt_cached(struct dns_client *dc, const char *sni, char *id, size_t id_cap, uint16_t *port);
/* Starts a lookup; returns a handle to cancel, or NULL (cb not called). */
struct txt_query *txt_lookup(struct dns_client *dc, const char *sni, txt_cb cb, void *arg);
void txt_cancel(struct txt_query *q);
/* Parse "<id>:<port>" (exposed for tests). */
int txt_parse_value(const char *s, size_t len, char *id, size_t id_cap, uint16_t *port);

#endif
