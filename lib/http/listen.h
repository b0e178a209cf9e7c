/*
 * listen.h — listening sockets for the HTTP server: TCP (IPv4/IPv6), unix
 * sockets (stale socket removed, mode set) and vsock.
 *
 * The config layer has its own address type; it fills a http_listen_spec
 * directly. The string form "tcp:HOST:PORT" / "unix:/path" / "vsock:CID:PORT"
 * is for command lines and tests.
 */
#ifndef DSTACK_HTTP_LISTEN_H
#define DSTACK_HTTP_LISTEN_H

#include <stdint.h>
#include <sys/types.h>

#include "core/err.h"

enum http_listen_kind { HTTP_LISTEN_TCP, HTTP_LISTEN_UNIX, HTTP_LISTEN_VSOCK };

#define HTTP_VSOCK_CID_ANY 0xFFFFFFFFu

struct http_listen_spec {
	enum http_listen_kind kind;
	char host[256]; /* TCP: IP literal or name; "" or "0.0.0.0" any IPv4, "::" any IPv6 */
	uint16_t port;  /* TCP and vsock */
	char path[108]; /* unix */
	mode_t mode;    /* unix socket file mode; 0 keeps the umask result */
	uint32_t cid;   /* vsock; HTTP_VSOCK_CID_ANY for any */
};

/* "tcp:HOST:PORT", "tcp:[::1]:PORT", "HOST:PORT", "unix:/path", "vsock:CID:PORT" (CID may be "any"). */
int http_listen_parse(const char *s, struct http_listen_spec *out, struct err *e);
/* Fill a spec from parts (kind-specific parts are ignored otherwise). */
int http_listen_spec_set(struct http_listen_spec *out, enum http_listen_kind kind, const char *host,
			 uint16_t port, const char *path, uint32_t cid, struct err *e);

/* Create a bound, listening, non-blocking, close-on-exec socket. */
int http_listen_socket(const struct http_listen_spec *spec, uint16_t *bound_port, struct err *e);

#endif
