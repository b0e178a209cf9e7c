/*
 * txt.c — custom-domain routing: the app behind `<sni>` is named by the TXT
 * record `_dstack-app-address.<sni>` = "<id>:<port>" (also the legacy
 * `_tapp-address.<sni>` in parallel when compat is on, the new name winning),
 * falling back to `_dstack-app-address-wildcard.<sni minus first label>`.
 *
 * A deliberately small asynchronous DNS client on the worker's event loop
 * (libevent's evdns has no TXT queries): one connected UDP socket per
 * question to the first configured server (`app_address_dns_servers`, else
 * the first `nameserver` of /etc/resolv.conf). Loss is covered by the
 * connection's `dns_resolve` deadline. Answers are cached per worker (256
 * slots, direct-mapped by name): positive for the record's TTL (at most an
 * hour), negative for 10 s.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "internal.h"

#define CACHE_SLOTS 256
#define NEG_TTL_MS 10000
#define MAX_TTL_MS 3600000

struct cache_slot {
	char sni[PROXY_SNI_MAX + 1];
	char id[PROXY_ID_MAX]; /* "" = negative */
	uint16_t port;
	uint64_t expires_ms;
};

struct dns_client {
	struct event_base *base;
	struct cache_slot cache[CACHE_SLOTS];
	struct sockaddr_storage server;
	socklen_t server_len;
	char prefix[64];
	bool compat;
};

enum { Q_MAIN, Q_COMPAT, Q_WILD, Q_N };

struct question {
	struct txt_query *q;
	int fd;
	uint16_t id;
	bool done, found;
	uint32_t ttl;
	struct event ev;
	char value[256];
};

struct txt_query {
	struct dns_client *dc;
	txt_cb cb;
	void *arg;
	char wild[300];
	char sni[PROXY_SNI_MAX + 1];
	struct question qs[Q_N];
};

static int parse_server(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[64];
	unsigned port = 53;
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	const char *colon = strrchr(s, ':');
	size_t hl = colon ? (size_t)(colon - s) : strlen(s);

	if (hl >= sizeof(host))
		return -1;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (colon && (sscanf(colon + 1, "%u", &port) != 1 || port == 0 || port > 65535))
		return -1;
	memset(ss, 0, sizeof(*ss));
	s4->sin_family = AF_INET;
	s4->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
		return -1;
	*len = sizeof(*s4);
	return 0;
}

struct dns_client *dns_client_new(struct event_base *base, const struct proxy_config *cfg, struct err *e)
{
	struct dns_client *dc = calloc(1, sizeof(*dc));
	char line[256], server[64] = "127.0.0.1";

	if (!dc)
		abort();
	dc->base = base;
	dc->compat = cfg->app_address_ns_compat;
	snprintf(dc->prefix, sizeof(dc->prefix), "%s",
		 cfg->app_address_ns_prefix ? cfg->app_address_ns_prefix : "_dstack-app-address");
	if (cfg->dns_servers[0]) {
		snprintf(server, sizeof(server), "%s", cfg->dns_servers[0]);
	} else {
		_cleanup_fclose_ FILE *f = fopen("/etc/resolv.conf", "re");
		while (f && fgets(line, sizeof(line), f))
			if (sscanf(line, "nameserver %63s", server) == 1)
				break;
	}
	if (parse_server(server, &dc->server, &dc->server_len) < 0) {
		free(dc);
		err_set(e, "invalid DNS server '%s' (IPv4[:port] expected)", server);
		return NULL;
	}
	return dc;
}

void dns_client_free(struct dns_client *dc)
{
	free(dc);
}

int txt_parse_value(const char *s, size_t len, char *id, size_t id_cap, uint16_t *port)
{
	const char *colon = memchr(s, ':', len);
	unsigned long v = 0;

	if (!colon || colon == s || (size_t)(colon - s) >= id_cap)
		return -1;
	size_t pl = len - (size_t)(colon - s) - 1;
	if (pl == 0 || pl > 5)
		return -1;
	for (size_t i = 0; i < pl; i++) {
		if (colon[1 + i] < '0' || colon[1 + i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(colon[1 + i] - '0');
	}
	if (v == 0 || v > 65535)
		return -1;
	memcpy(id, s, (size_t)(colon - s));
	id[colon - s] = '\0';
	*port = (uint16_t)v;
	return 0;
}

/* Query for `name` IN TXT with recursion desired. */
static int build_query(uint16_t id, const char *name, uint8_t *out, size_t cap)
{
	size_t n = 12;

	memset(out, 0, 12);
	out[0] = (uint8_t)(id >> 8);
	out[1] = (uint8_t)id;
	out[2] = 0x01;
	out[5] = 1;
	while (*name) {
		const char *dot = strchr(name, '.');
		size_t l = dot ? (size_t)(dot - name) : strlen(name);
		if (l == 0 || l > 63 || n + l + 1 + 5 >= cap)
			return -1;
		out[n++] = (uint8_t)l;
		memcpy(out + n, name, l);
		n += l;
		name += l + (dot ? 1 : 0);
	}
	out[n++] = 0;
	out[n++] = 0;
	out[n++] = 16;
	out[n++] = 0;
	out[n++] = 1;
	return (int)n;
}

static int skip_name(const uint8_t *p, size_t len, size_t *off)
{
	while (*off < len) {
		uint8_t l = p[*off];
		if ((l & 0xc0) == 0xc0) {
			*off += 2;
			return *off <= len ? 0 : -1;
		}
		*off += 1 + (size_t)l;
		if (l == 0)
			return 0;
	}
	return -1;
}

/* First character-string of the first TXT answer. */
static int parse_reply(const uint8_t *p, size_t len, uint16_t id, char *value, size_t cap, uint32_t *ttl)
{
	size_t off = 12;

	if (len < 12 || (p[0] << 8 | p[1]) != id || !(p[2] & 0x80) || (p[3] & 0x0f) != 0)
		return -1;
	unsigned qd = (unsigned)(p[4] << 8 | p[5]), an = (unsigned)(p[6] << 8 | p[7]);
	for (unsigned i = 0; i < qd; i++) {
		if (skip_name(p, len, &off) < 0 || off + 4 > len)
			return -1;
		off += 4;
	}
	for (unsigned i = 0; i < an; i++) {
		if (skip_name(p, len, &off) < 0 || off + 10 > len)
			return -1;
		unsigned type = (unsigned)(p[off] << 8 | p[off + 1]);
		size_t rdlen = (size_t)(p[off + 8] << 8 | p[off + 9]);
		off += 10;
		if (off + rdlen > len)
			return -1;
		if (type == 16 && rdlen >= 1 && p[off] + 1u <= rdlen && p[off] < cap) {
			*ttl = (uint32_t)p[off - 6] << 24 | (uint32_t)p[off - 5] << 16 |
			       (uint32_t)p[off - 4] << 8 | p[off - 3];
			memcpy(value, p + off + 1, p[off]);
			value[p[off]] = '\0';
			return 0;
		}
		off += rdlen;
	}
	return -1;
}

static void question_stop(struct question *qs)
{
	if (qs->fd >= 0) {
		event_del(&qs->ev);
		close(qs->fd);
		qs->fd = -1;
	}
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct cache_slot *cache_slot(struct dns_client *dc, const char *sni)
{
	uint32_t h = 2166136261u;

	for (const char *c = sni; *c; c++)
		h = (h ^ (uint8_t)*c) * 16777619u;
	return &dc->cache[h % CACHE_SLOTS];
}

int txt_cached(struct dns_client *dc, const char *sni, char *id, size_t id_cap, uint16_t *port)
{
	struct cache_slot *s = cache_slot(dc, sni);

	if (s->expires_ms <= now_ms() || strcmp(s->sni, sni) != 0)
		return 0;
	if (!s->id[0])
		return -1;
	snprintf(id, id_cap, "%s", s->id);
	*port = s->port;
	return 1;
}

static void cache_store(struct dns_client *dc, const char *sni, const char *id, uint16_t port, uint32_t ttl)
{
	struct cache_slot *s = cache_slot(dc, sni);
	uint64_t ms = id ? (uint64_t)ttl * 1000 : NEG_TTL_MS;

	if (strlen(sni) >= sizeof(s->sni))
		return;
	strcpy(s->sni, sni);
	snprintf(s->id, sizeof(s->id), "%s", id ? id : "");
	s->port = port;
	s->expires_ms = now_ms() + (ms < MAX_TTL_MS ? ms : MAX_TTL_MS);
}

static void finish(struct txt_query *q, struct question *winner)
{
	char id[PROXY_ID_MAX];
	uint16_t port = 0;
	txt_cb cb = q->cb;
	void *arg = q->arg;
	int status =
	    winner && txt_parse_value(winner->value, strlen(winner->value), id, sizeof(id), &port) == 0 ? 0
													: -1;

	cache_store(q->dc, q->sni, status == 0 ? id : NULL, port, winner ? winner->ttl : 0);
	txt_cancel(q);
	cb(arg, status, status == 0 ? id : NULL, port);
}

static int ask(struct txt_query *q, struct question *qs, const char *name);

static void check_done(struct txt_query *q)
{
	struct question *m = &q->qs[Q_MAIN], *c = &q->qs[Q_COMPAT], *wq = &q->qs[Q_WILD];

	if (m->found)
		return finish(q, m);
	if (!m->done || (q->dc->compat && !c->done))
		return;
	if (c->found)
		return finish(q, c);
	if (wq->done)
		return finish(q, wq->found ? wq : NULL);
	if (wq->fd < 0 && (!q->wild[0] || ask(q, wq, q->wild) < 0))
		return finish(q, NULL);
}

static void on_reply(evutil_socket_t fd, short what, void *arg)
{
	struct question *qs = arg;
	uint8_t pkt[1500];
	ssize_t n = recv(fd, pkt, sizeof(pkt), 0);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	qs->found = n > 0 && parse_reply(pkt, (size_t)n, qs->id, qs->value, sizeof(qs->value), &qs->ttl) == 0;
	qs->done = true;
	question_stop(qs);
	check_done(qs->q);
}

static int ask(struct txt_query *q, struct question *qs, const char *name)
{
	uint8_t pkt[512];
	int n;

	if (getrandom(&qs->id, sizeof(qs->id), 0) != sizeof(qs->id))
		return -1;
	if ((n = build_query(qs->id, name, pkt, sizeof(pkt))) < 0)
		return -1;
	qs->q = q;
	qs->fd = socket(q->dc->server.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (qs->fd < 0)
		return -1;
	if (connect(qs->fd, (struct sockaddr *)&q->dc->server, q->dc->server_len) < 0 ||
	    send(qs->fd, pkt, (size_t)n, 0) != n) {
		close(qs->fd);
		qs->fd = -1;
		return -1;
	}
	event_assign(&qs->ev, q->dc->base, qs->fd, EV_READ | EV_PERSIST, on_reply, qs);
	event_add(&qs->ev, NULL);
	return 0;
}

struct txt_query *txt_lookup(struct dns_client *dc, const char *sni, txt_cb cb, void *arg)
{
	struct txt_query *q = calloc(1, sizeof(*q));
	char name[300];
	const char *dot = strchr(sni, '.');

	if (!q)
		abort();
	q->dc = dc;
	q->cb = cb;
	q->arg = arg;
	snprintf(q->sni, sizeof(q->sni), "%s", sni);
	for (int i = 0; i < Q_N; i++)
		q->qs[i].fd = -1;
	if (dot && dot[1])
		snprintf(q->wild, sizeof(q->wild), "%s-wildcard.%s", dc->prefix, dot + 1);
	snprintf(name, sizeof(name), "%s.%s", dc->prefix, sni);
	if (ask(q, &q->qs[Q_MAIN], name) < 0) {
		free(q);
		return NULL;
	}
	if (dc->compat) {
		snprintf(name, sizeof(name), "_tapp-address.%s", sni);
		if (ask(q, &q->qs[Q_COMPAT], name) < 0)
			q->qs[Q_COMPAT].done = true;
	}
	return q;
}

void txt_cancel(struct txt_query *q)
{
	for (int i = 0; i < Q_N; i++)
		question_stop(&q->qs[i]);
	free(q);
}
