/*
 * relay.c — TCP/UDP relays across network namespaces (see relay.h). TCP:
 * one accept thread per listener, one pump thread per connection. UDP: one
 * thread per listener keeping a small table of peers, each with its own
 * connected socket on the other side (so replies find their way back, as
 * a NAT would); idle peers are dropped after a few minutes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "vmm/backend/relay.h"

#define UDP_PEERS 64
#define UDP_IDLE_S 180

int relay_socket(const struct relay_ns *ns, bool in_vm, int type)
{
	int fd;

	if (ns->vm_fd < 0 || !in_vm)
		return socket(AF_INET, type | SOCK_CLOEXEC, 0);
	if (setns(ns->vm_fd, CLONE_NEWNET) < 0)
		return -1;
	fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
	if (setns(ns->host_fd, CLONE_NEWNET) < 0) {
		/* this thread would keep living in the VM's namespace: never */
		log_error("relay: cannot return to the host network namespace: %s", strerror(errno));
		abort();
	}
	return fd;
}

static int addr_of(const char *ip, unsigned port, struct sockaddr_in *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, ip && *ip ? ip : "0.0.0.0", &sa->sin_addr) == 1 ? 0 : -1;
}

static int bound_socket(const struct relay_ns *ns, bool in_vm, int type, const char *ip, unsigned port,
			struct err *e)
{
	struct sockaddr_in sa;
	int one = 1, fd;

	if (addr_of(ip, port, &sa) < 0)
		return err_set(e, "not an IPv4 address: %s", ip);
	fd = relay_socket(ns, in_vm, type);
	if (fd < 0)
		return err_set(e, "socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || (type == SOCK_STREAM && listen(fd, 64) < 0)) {
		err_set(e, "bind %s:%u: %s", ip, port, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

struct relay {
	struct relay_ns ns;
	bool listen_in_vm;
	int lfd;
	struct sockaddr_in to;
};

static int connect_other_side(const struct relay *r, int type)
{
	int fd = relay_socket(&r->ns, !r->listen_in_vm, type);

	if (fd >= 0 && connect(fd, (const struct sockaddr *)&r->to, sizeof(r->to)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static bool start_thread(void *(*fn)(void *), void *arg)
{
	pthread_t t;

	if (pthread_create(&t, NULL, fn, arg) != 0)
		return false;
	pthread_detach(t);
	return true;
}

/* ---- TCP ------------------------------------------------------------------ */

struct pump {
	int a, b;
};

static void *pump(void *arg)
{
	struct pump *p = arg;
	struct pollfd fds[2] = {{p->a, POLLIN, 0}, {p->b, POLLIN, 0}};
	char buf[16384];

	for (;;) {
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < 2; i++) {
			if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t n = read(fds[i].fd, buf, sizeof(buf));

			if (n <= 0)
				goto done;
			for (ssize_t off = 0; off < n;) {
				ssize_t w = write(fds[1 - i].fd, buf + off, (size_t)(n - off));

				if (w <= 0)
					goto done;
				off += w;
			}
		}
	}
done:
	close(p->a);
	close(p->b);
	free(p);
	return NULL;
}

static void *tcp_accept_loop(void *arg)
{
	struct relay *r = arg;

	for (;;) {
		int c = accept4(r->lfd, NULL, NULL, SOCK_CLOEXEC), u;

		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			break;
		}
		u = connect_other_side(r, SOCK_STREAM);
		if (u < 0) {
			close(c);
			continue;
		}
		struct pump *p = malloc(sizeof(*p));

		if (!p)
			abort();
		*p = (struct pump){c, u};
		if (!start_thread(pump, p))
			pump(p);
	}
	close(r->lfd);
	free(r);
	return NULL;
}

static struct relay *relay_new(const struct relay_ns *ns, bool listen_in_vm, const char *caddr,
			       unsigned cport, struct err *e)
{
	struct relay *r = calloc(1, sizeof(*r));

	if (!r)
		abort();
	r->ns = *ns;
	r->listen_in_vm = listen_in_vm;
	r->lfd = -1;
	if (addr_of(caddr, cport, &r->to) < 0) {
		free(r);
		err_set(e, "not an IPv4 address: %s", caddr);
		return NULL;
	}
	return r;
}

int relay_tcp_start(const struct relay_ns *ns, bool listen_in_vm, const char *laddr, unsigned lport,
		    const char *caddr, unsigned cport, struct err *e)
{
	struct relay *r = relay_new(ns, listen_in_vm, caddr, cport, e);

	if (!r)
		return -1;
	r->lfd = bound_socket(ns, listen_in_vm, SOCK_STREAM, laddr, lport, e);
	if (r->lfd < 0) {
		free(r);
		return -1;
	}
	if (!start_thread(tcp_accept_loop, r)) {
		close(r->lfd);
		free(r);
		return err_set(e, "cannot start a thread");
	}
	return 0;
}

/* ---- UDP ------------------------------------------------------------------ */

struct udp_peer {
	struct sockaddr_in addr;
	int fd; /* connected to the target, on the other side */
	time_t last;
};

static struct udp_peer *peer_for(struct relay *r, struct udp_peer *peers, const struct sockaddr_in *from)
{
	struct udp_peer *free_slot = NULL, *oldest = &peers[0];
	time_t now = time(NULL);

	for (size_t i = 0; i < UDP_PEERS; i++) {
		struct udp_peer *p = &peers[i];

		if (p->fd >= 0 && now - p->last > UDP_IDLE_S) {
			close(p->fd);
			p->fd = -1;
		}
		if (p->fd >= 0 && p->addr.sin_port == from->sin_port &&
		    p->addr.sin_addr.s_addr == from->sin_addr.s_addr) {
			p->last = now;
			return p;
		}
		if (p->fd < 0 && !free_slot)
			free_slot = p;
		if (p->last < oldest->last)
			oldest = p;
	}
	if (!free_slot) {
		close(oldest->fd);
		oldest->fd = -1;
		free_slot = oldest;
	}
	free_slot->fd = connect_other_side(r, SOCK_DGRAM);
	if (free_slot->fd < 0)
		return NULL;
	free_slot->addr = *from;
	free_slot->last = now;
	return free_slot;
}

static void *udp_loop(void *arg)
{
	struct relay *r = arg;
	struct udp_peer peers[UDP_PEERS];
	struct pollfd fds[UDP_PEERS + 1];
	char buf[65536];

	for (size_t i = 0; i < UDP_PEERS; i++)
		peers[i].fd = -1, peers[i].last = 0;
	for (;;) {
		fds[0] = (struct pollfd){r->lfd, POLLIN, 0};
		for (size_t i = 0; i < UDP_PEERS; i++)
			fds[i + 1] = (struct pollfd){peers[i].fd, POLLIN, 0};
		if (poll(fds, UDP_PEERS + 1, 60000) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (fds[0].revents & POLLIN) {
			struct sockaddr_in from;
			socklen_t fl = sizeof(from);
			ssize_t n = recvfrom(r->lfd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
			struct udp_peer *p = n >= 0 && fl == sizeof(from) ? peer_for(r, peers, &from) : NULL;

			if (p && send(p->fd, buf, (size_t)n, 0) < 0 && errno != ECONNREFUSED)
				log_warn("udp relay: send: %s", strerror(errno));
		}
		for (size_t i = 0; i < UDP_PEERS; i++) {
			if (peers[i].fd < 0 || !(fds[i + 1].revents & (POLLIN | POLLERR)))
				continue;
			ssize_t n = recv(peers[i].fd, buf, sizeof(buf), 0);

			if (n < 0)
				continue; /* ICMP refusal: the target is not up yet */
			peers[i].last = time(NULL);
			sendto(r->lfd, buf, (size_t)n, 0, (struct sockaddr *)&peers[i].addr,
			       sizeof(peers[i].addr));
		}
	}
	for (size_t i = 0; i < UDP_PEERS; i++)
		if (peers[i].fd >= 0)
			close(peers[i].fd);
	close(r->lfd);
	free(r);
	return NULL;
}

int relay_udp_start(const struct relay_ns *ns, bool listen_in_vm, const char *laddr, unsigned lport,
		    const char *caddr, unsigned cport, struct err *e)
{
	struct relay *r = relay_new(ns, listen_in_vm, caddr, cport, e);

	if (!r)
		return -1;
	r->lfd = bound_socket(ns, listen_in_vm, SOCK_DGRAM, laddr, lport, e);
	if (r->lfd < 0) {
		free(r);
		return -1;
	}
	if (!start_thread(udp_loop, r)) {
		close(r->lfd);
		free(r);
		return err_set(e, "cannot start a thread");
	}
	return 0;
}

/* ---- loopback names --------------------------------------------------------- */

static bool loopback_host(const char *host, size_t n, char ip[16])
{
	char h[256];
	struct in_addr a;

	if (n == 0 || n >= sizeof(h))
		return false;
	memcpy(h, host, n);
	h[n] = 0;
	for (char *c = h; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	if (!strcmp(h, "localhost") || (n > 10 && !strcmp(h + n - 10, ".localhost"))) {
		strcpy(ip, "127.0.0.1");
		return true;
	}
	if (inet_pton(AF_INET, h, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127) {
		inet_ntop(AF_INET, &a, ip, 16);
		return true;
	}
	return false;
}

static bool parse_port(const char *s, size_t n, unsigned *port)
{
	unsigned v = 0;

	if (n == 0 || n > 5)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return false;
	*port = v;
	return true;
}

bool relay_loopback_url(const char *url, char ip[16], unsigned *port)
{
	const char *p, *host, *end, *colon;
	unsigned def;

	if (!url)
		return false;
	if (!strncmp(url, "https://", 8))
		def = 443, host = url + 8;
	else if (!strncmp(url, "http://", 7))
		def = 80, host = url + 7;
	else
		return false;
	end = host + strcspn(host, "/?#");
	if (memchr(host, '@', (size_t)(end - host)) || *host == '[')
		return false;
	colon = memchr(host, ':', (size_t)(end - host));
	p = colon ? colon : end;
	if (!loopback_host(host, (size_t)(p - host), ip))
		return false;
	if (!colon) {
		*port = def;
		return true;
	}
	return parse_port(colon + 1, (size_t)(end - colon - 1), port);
}

bool relay_loopback_endpoint(const char *ep, char ip[16], unsigned *port)
{
	const char *colon = ep ? strrchr(ep, ':') : NULL;

	if (!colon || *ep == '[')
		return false;
	return loopback_host(ep, (size_t)(colon - ep), ip) && parse_port(colon + 1, strlen(colon + 1), port);
}
