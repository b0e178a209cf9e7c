/*
 * host_notify.c — see host_notify.h. libcurl has no vsock transport, so
 * vsock URLs get a minimal HTTP/1.1 request written on an AF_VSOCK socket
 * (one request, Connection: close, status line checked).
 */
#include "host_notify.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "core/log.h"
#include "http/client.h"

static int vsock_post(unsigned cid, unsigned port, const char *path, const char *body, struct err *e)
{
	_cleanup_close_ int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_vm sa = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
	struct timeval tv = {.tv_sec = 5};
	_cleanup_(buf_freep) struct buf req = {0};
	char reply[64] = {0};

	if (fd < 0)
		return err_errno(e, "vsock socket");
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return err_errno(e, "connect vsock %u:%u", cid, port);
	buf_printf(&req,
		   "POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
		   "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
		   path, strlen(body), body);
	for (size_t off = 0; off < req.len;) {
		ssize_t w = write(fd, req.data + off, req.len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return err_errno(e, "write vsock");
		}
		off += (size_t)w;
	}
	ssize_t r = read(fd, reply, sizeof(reply) - 1);
	if (r < 12 || strncmp(reply, "HTTP/1.", 7) != 0)
		return err_set(e, "bad reply from host");
	int status = atoi(reply + 9);
	if (status < 200 || status > 299)
		return err_set(e, "host replied %d", status);
	return 0;
}

int host_notify(const char *url, const char *event, const char *payload, struct err *e)
{
	_cleanup_json_ json_t *j = json_pack("{s:s,s:s}", "event", event, "payload", payload ? payload : "");
	_cleanup_free_ char *body = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	char path[512];

	if (!body)
		return err_set(e, "out of memory");
	if (strncmp(url, "vsock://", 8) == 0) {
		unsigned cid, port;
		int n = 0;
		if (sscanf(url + 8, "%u:%u%n", &cid, &port, &n) != 2)
			return err_set(e, "bad vsock URL %s", url);
		snprintf(path, sizeof(path), "%s/Notify?json", url[8 + n] == '/' ? url + 8 + n : "");
		return vsock_post(cid, port, path, body, e);
	}
	struct http_client_opts o = {.timeout_ms = 5000};
	struct http_response resp = {0};
	char full[1024];
	_cleanup_free_ char *sock = NULL;
	if (strncmp(url, "unix:", 5) == 0) {
		sock = strdup(url + 5);
		if (!sock)
			return err_set(e, "out of memory");
		char *colon = strchr(sock, ':');
		const char *p = "/api";
		if (colon) {
			*colon = 0;
			p = colon + 1;
		}
		o.unix_socket = sock;
		snprintf(full, sizeof(full), "http://localhost%s/Notify?json", p);
	} else {
		snprintf(full, sizeof(full), "%s/Notify?json", url);
	}
	const char *hdr[] = {"Content-Type: application/json", NULL};
	if (http_fetch(&o, "POST", full, hdr, body, strlen(body), &resp, e) < 0)
		return err_wrap(e, "notify %s", event);
	long st = resp.status;
	http_response_free(&resp);
	if (st < 200 || st > 299)
		return err_set(e, "notify %s: host replied %ld", event, st);
	return 0;
}

void host_notify_soft(const char *url, const char *event, const char *payload)
{
	struct err e = ERR_INIT;
	if (!url || !*url)
		return;
	if (host_notify(url, event, payload, &e) < 0)
		log_warn("host notification %s failed: %s", event, err_str(&e));
}
