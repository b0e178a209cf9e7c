/*
 * txt_lookup.c — TXT lookups through the system resolver or one given
 * server (see txt_lookup.h). The response parser is shared by both paths and
 * fuzzed (fuzz/dns_replies.c): it only walks the message with bounds checks
 * and never follows compression pointers (names are skipped, not read).
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "dns/txt_lookup.h"

#define DNS_MAX_MSG 65535
#define DNS_MAX_TXT_RECORDS 64
#define DNS_MAX_TXT_LEN 4096
#define DNS_TYPE_TXT 16
#define DNS_CLASS_IN 1

void dns_txt_free(struct dns_txt *t)
{
	for (size_t i = 0; i < t->count; i++)
		free(t->values[i]);
	free(t->values);
	t->values = NULL;
	t->count = 0;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* Skip a (possibly compressed) name at *off. */
static int skip_name(const uint8_t *msg, size_t len, size_t *off)
{
	size_t o = *off;

	for (int labels = 0; labels < 128; labels++) {
		uint8_t b;

		if (o >= len)
			return -1;
		b = msg[o];
		if (b == 0) {
			*off = o + 1;
			return 0;
		}
		if ((b & 0xC0) == 0xC0) {
			if (o + 2 > len)
				return -1;
			*off = o + 2;
			return 0;
		}
		if (b & 0xC0)
			return -1;
		o += 1 + (size_t)b;
	}
	return -1;
}

int dns_txt_parse_response(const uint8_t *msg, size_t len, long expect_id, struct dns_txt *out, struct err *e)
{
	size_t off = 12;
	unsigned qd, an, rcode;

	memset(out, 0, sizeof(*out));
	if (len < 12)
		return err_set(e, "DNS reply too short (%zu bytes)", len);
	if (expect_id >= 0 && get16(msg) != (uint16_t)expect_id)
		return err_set(e, "DNS reply id does not match the query");
	if (!(msg[2] & 0x80))
		return err_set(e, "DNS message is not a reply");
	rcode = msg[3] & 0x0F;
	qd = get16(msg + 4);
	an = get16(msg + 6);
	if (rcode == 3) /* NXDOMAIN */
		return 0;
	if (rcode != 0)
		return err_set(e, "DNS server answered rcode %u%s", rcode,
			       rcode == 2   ? " (SERVFAIL)"
			       : rcode == 5 ? " (REFUSED)"
					    : "");
	for (unsigned i = 0; i < qd; i++) {
		if (skip_name(msg, len, &off) < 0 || off + 4 > len)
			return err_set(e, "DNS reply: malformed question");
		off += 4;
	}
	for (unsigned i = 0; i < an; i++) {
		uint16_t type, cls, rdlen;
		size_t rd;

		if (skip_name(msg, len, &off) < 0 || off + 10 > len)
			goto bad;
		type = get16(msg + off);
		cls = get16(msg + off + 2);
		rdlen = get16(msg + off + 8);
		off += 10;
		if (off + rdlen > len)
			goto bad;
		rd = off;
		off += rdlen;
		if (type != DNS_TYPE_TXT || cls != DNS_CLASS_IN)
			continue;
		if (out->count >= DNS_MAX_TXT_RECORDS)
			continue;
		_cleanup_buf_ struct buf v = BUF_INIT;
		bool has_nul = false;

		while (rd < off) {
			uint8_t sl = msg[rd++];

			if (rd + sl > off)
				goto bad;
			if (memchr(msg + rd, 0, sl))
				has_nul = true;
			if (v.len + sl <= DNS_MAX_TXT_LEN)
				buf_append(&v, msg + rd, sl);
			rd += sl;
		}
		if (has_nul)
			continue;
		char **grown = realloc(out->values, (out->count + 1) * sizeof(*grown));

		if (!grown)
			abort();
		out->values = grown;
		buf_reserve(&v, 0);
		grown[out->count++] = (char *)buf_steal(&v, NULL);
	}
	return 0;
bad:
	dns_txt_free(out);
	return err_set(e, "DNS reply: malformed answer");
}

int dns_txt_query_build(const char *name, uint16_t id, uint8_t *out, size_t cap, size_t *len, struct err *e)
{
	size_t o = 12, nl = strlen(name);
	const char *p = name;

	while (nl && name[nl - 1] == '.')
		nl--;
	if (nl == 0 || nl > 253 || cap < 12 + nl + 2 + 4)
		return err_set(e, "bad DNS name length: %s", name);
	memset(out, 0, 12);
	out[0] = (uint8_t)(id >> 8);
	out[1] = (uint8_t)id;
	out[2] = 0x01; /* RD */
	out[5] = 1;    /* QDCOUNT */
	while (p < name + nl) {
		const char *dot = memchr(p, '.', (size_t)(name + nl - p));
		size_t ll = (size_t)((dot ? dot : name + nl) - p);

		if (ll == 0 || ll > 63)
			return err_set(e, "bad DNS name: %s", name);
		out[o++] = (uint8_t)ll;
		memcpy(out + o, p, ll);
		o += ll;
		p += ll + (dot ? 1 : 0);
	}
	out[o++] = 0;
	out[o++] = 0;
	out[o++] = DNS_TYPE_TXT;
	out[o++] = 0;
	out[o++] = DNS_CLASS_IN;
	*len = o;
	return 0;
}

static int parse_server(const char *server, struct sockaddr_storage *ss, socklen_t *sl, struct err *e)
{
	char host[64];
	const char *colon;
	unsigned long port;
	char *end;

	if (server[0] == '[') {
		const char *rb = strchr(server, ']');

		if (!rb || rb[1] != ':' || (size_t)(rb - server - 1) >= sizeof(host))
			return err_set(e, "bad DNS server address (want [v6]:port): %s", server);
		memcpy(host, server + 1, (size_t)(rb - server - 1));
		host[rb - server - 1] = '\0';
		colon = rb + 1;
	} else {
		colon = strrchr(server, ':');
		if (!colon || (size_t)(colon - server) >= sizeof(host))
			return err_set(e, "bad DNS server address (want ip:port): %s", server);
		memcpy(host, server, (size_t)(colon - server));
		host[colon - server] = '\0';
	}
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end || port == 0 || port > 65535)
		return err_set(e, "bad DNS server port: %s", server);
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		((struct sockaddr_in *)ss)->sin_family = AF_INET;
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
		*sl = sizeof(struct sockaddr_in);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
		*sl = sizeof(struct sockaddr_in6);
		return 0;
	}
	return err_set(e, "DNS server must be an IP literal: %s", server);
}

static int lookup_at(const char *server, const char *name, struct dns_txt *out, struct err *e)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	uint8_t q[300];
	size_t qlen;
	uint16_t id;
	_cleanup_free_ uint8_t *reply = NULL;
	_cleanup_close_ int fd = -1;

	if (parse_server(server, &ss, &sl, e) < 0)
		return -1;
	if (getrandom(&id, sizeof(id), 0) != sizeof(id))
		return err_errno(e, "getrandom");
	if (dns_txt_query_build(name, id, q, sizeof(q), &qlen, e) < 0)
		return -1;
	fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&ss, sl) < 0)
		return err_errno(e, "DNS server %s", server);
	reply = malloc(DNS_MAX_MSG);
	if (!reply)
		abort();
	for (int attempt = 0; attempt < 2; attempt++) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (send(fd, q, qlen, 0) < 0)
			return err_errno(e, "DNS query to %s", server);
		while (poll(&pfd, 1, 2000) > 0) {
			n = recv(fd, reply, DNS_MAX_MSG, 0);
			if (n < 0)
				return err_errno(e, "DNS reply from %s", server);
			/* A stray datagram with another id: keep waiting. */
			if (n >= 2 && get16(reply) != id)
				continue;
			if (dns_txt_parse_response(reply, (size_t)n, id, out, e) < 0)
				return err_wrap(e, "DNS server %s", server);
			return 0;
		}
	}
	return err_set(e, "DNS server %s did not answer", server);
}

static int lookup_system(const char *name, struct dns_txt *out, struct err *e)
{
	struct __res_state st;
	_cleanup_free_ uint8_t *reply = malloc(DNS_MAX_MSG);
	int n, rc;

	if (!reply)
		abort();
	memset(&st, 0, sizeof(st));
	if (res_ninit(&st) != 0)
		return err_set(e, "cannot initialise the system resolver");
	st.retrans = 2;
	st.retry = 2;
	n = res_nquery(&st, name, ns_c_in, ns_t_txt, reply, DNS_MAX_MSG);
	if (n < 0) {
		int h = st.res_h_errno;

		res_nclose(&st);
		memset(out, 0, sizeof(*out));
		if (h == HOST_NOT_FOUND || h == NO_DATA)
			return 0;
		return err_set(e, "system resolver: %s",
			       h == TRY_AGAIN
				   ? "no usable answer (timeout, SERVFAIL or a server without recursion)"
				   : hstrerror(h));
	}
	res_nclose(&st);
	rc = dns_txt_parse_response(reply, (size_t)n, -1, out, e);
	return rc < 0 ? err_wrap(e, "system resolver") : 0;
}

int dns_txt_lookup(const char *server, const char *name, struct dns_txt *out, struct err *e)
{
	memset(out, 0, sizeof(*out));
	if (server && *server)
		return lookup_at(server, name, out, e);
	return lookup_system(name, out, e);
}
