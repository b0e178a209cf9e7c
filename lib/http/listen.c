/*
 * listen.c — address parsing and listening-socket creation for TCP, unix and
 * vsock. Kept separate from the connection code so the config layer and the
 * VMM (vsock host API) can reuse it without the server.
 */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

#include "core/cleanup.h"
#include "http/listen.h"

static int parse_port(const char *s, uint16_t *out, struct err *e)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (!*s || *end || errno || v > 65535)
		return err_set(e, "invalid port '%s'", s);
	*out = (uint16_t)v;
	return 0;
}

int http_listen_spec_set(struct http_listen_spec *out, enum http_listen_kind kind, const char *host,
			 uint16_t port, const char *path, uint32_t cid, struct err *e)
{
	memset(out, 0, sizeof(*out));
	out->kind = kind;
	out->port = port;
	out->cid = cid;
	if (kind == HTTP_LISTEN_TCP) {
		if (host && strlen(host) >= sizeof(out->host))
			return err_set(e, "host name too long");
		snprintf(out->host, sizeof(out->host), "%s", host ? host : "");
	} else if (kind == HTTP_LISTEN_UNIX) {
		if (!path || !*path)
			return err_set(e, "unix socket path is empty");
		if (strlen(path) >= sizeof(out->path))
			return err_set(e, "unix socket path too long: %s", path);
		snprintf(out->path, sizeof(out->path), "%s", path);
	}
	return 0;
}

int http_listen_parse(const char *s, struct http_listen_spec *out, struct err *e)
{
	char tmp[512];
	char *host, *port;

	if (strlen(s) >= sizeof(tmp))
		return err_set(e, "listen address too long");
	if (strncmp(s, "unix:", 5) == 0)
		return http_listen_spec_set(out, HTTP_LISTEN_UNIX, NULL, 0, s + 5, 0, e);
	if (strncmp(s, "vsock:", 6) == 0) {
		uint16_t p = 0;
		uint32_t cid;

		snprintf(tmp, sizeof(tmp), "%s", s + 6);
		port = strrchr(tmp, ':');
		if (!port)
			return err_set(e, "invalid vsock address '%s' (want vsock:CID:PORT)", s);
		*port++ = '\0';
		if (strcmp(tmp, "any") == 0 || strcmp(tmp, "-1") == 0) {
			cid = HTTP_VSOCK_CID_ANY;
		} else {
			char *end;
			unsigned long v;

			errno = 0;
			v = strtoul(tmp, &end, 10);
			if (!*tmp || *end || errno || v > UINT32_MAX)
				return err_set(e, "invalid vsock CID '%s'", tmp);
			cid = (uint32_t)v;
		}
		if (parse_port(port, &p, e) < 0)
			return -1;
		return http_listen_spec_set(out, HTTP_LISTEN_VSOCK, NULL, p, NULL, cid, e);
	}
	snprintf(tmp, sizeof(tmp), "%s", strncmp(s, "tcp:", 4) == 0 ? s + 4 : s);
	host = tmp;
	if (*host == '[') {
		char *close = strchr(host, ']');

		if (!close || close[1] != ':')
			return err_set(e, "invalid address '%s'", s);
		*close = '\0';
		host++;
		port = close + 2;
	} else {
		port = strrchr(host, ':');
		if (!port)
			return err_set(e, "invalid address '%s' (want HOST:PORT)", s);
		*port++ = '\0';
	}
	uint16_t p = 0;

	if (parse_port(port, &p, e) < 0)
		return -1;
	return http_listen_spec_set(out, HTTP_LISTEN_TCP, host, p, NULL, 0, e);
}

static int listen_tcp(const struct http_listen_spec *spec, uint16_t *bound_port, struct err *e)
{
	struct addrinfo hints = {0}, *res = NULL;
	char port[8];
	const char *host = spec->host[0] ? spec->host : "0.0.0.0";
	int rc, one = 1;
	_cleanup_close_ int fd = -1;

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%u", spec->port);
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0)
		return err_set(e, "resolve %s: %s", host, gai_strerror(rc));
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		freeaddrinfo(res);
		return err_errno(e, "socket");
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (res->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0) {
		freeaddrinfo(res);
		return err_errno(e, "bind %s:%u", host, spec->port);
	}
	freeaddrinfo(res);
	if (listen(fd, 128) < 0)
		return err_errno(e, "listen");
	if (bound_port) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);

		if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
			return err_errno(e, "getsockname");
		*bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
							     : ((struct sockaddr_in *)&ss)->sin_port);
	}
	return TAKE_FD(fd);
}

static int listen_unix(const struct http_listen_spec *spec, struct err *e)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	_cleanup_close_ int fd = -1;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", spec->path);
	/* A socket file left by a previous run would make bind fail. */
	if (lstat(spec->path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return err_set(e, "%s exists and is not a socket", spec->path);
		if (unlink(spec->path) < 0)
			return err_errno(e, "remove stale socket %s", spec->path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_errno(e, "socket");
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return err_errno(e, "bind %s", spec->path);
	if (spec->mode && chmod(spec->path, spec->mode) < 0)
		return err_errno(e, "chmod %s", spec->path);
	if (listen(fd, 128) < 0)
		return err_errno(e, "listen %s", spec->path);
	return TAKE_FD(fd);
}

static int listen_vsock(const struct http_listen_spec *spec, uint16_t *bound_port, struct err *e)
{
	struct sockaddr_vm sa = {.svm_family = AF_VSOCK};
	_cleanup_close_ int fd = -1;

	sa.svm_cid = spec->cid == HTTP_VSOCK_CID_ANY ? VMADDR_CID_ANY : spec->cid;
	sa.svm_port = spec->port;
	fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		if (errno == EAFNOSUPPORT || errno == EPROTONOSUPPORT)
			return err_set(e, "vsock is not supported by this kernel (AF_VSOCK unavailable)");
		return err_errno(e, "vsock socket");
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return err_errno(e, "bind vsock:%u:%u", spec->cid, spec->port);
	if (listen(fd, 128) < 0)
		return err_errno(e, "listen vsock");
	if (bound_port) {
		socklen_t sl = sizeof(sa);

		if (getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
			*bound_port = (uint16_t)sa.svm_port;
	}
	return TAKE_FD(fd);
}

int http_listen_socket(const struct http_listen_spec *spec, uint16_t *bound_port, struct err *e)
{
	switch (spec->kind) {
	case HTTP_LISTEN_TCP:
		return listen_tcp(spec, bound_port, e);
	case HTTP_LISTEN_UNIX:
		if (bound_port)
			*bound_port = 0;
		return listen_unix(spec, e);
	case HTTP_LISTEN_VSOCK:
		return listen_vsock(spec, bound_port, e);
	}
	return err_set(e, "unknown listener kind");
}
