/*
 * http_test.c — lib/http in-process: the server runs its event loop on a
 * second thread, the test talks to it over loopback with raw sockets and
 * the libcurl client. Covers listener parsing, async replies from a timer,
 * pool work handed back to the loop, streaming replies, keep-alive and idle
 * timeouts, 100-continue, HEAD, vsock availability and shutdown.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

#include <event2/event.h>

#include "core/buf.h"
#include "core/tap.h"
#include "http/client.h"
#include "http/server.h"

static struct event_base *base;
static struct http_server *srv;
static uint16_t port;

static void test_parse(void)
{
	struct http_listen_spec s;
	struct err e = ERR_INIT;

	ok(http_listen_parse("tcp:127.0.0.1:8080", &s, &e) == 0 && s.kind == HTTP_LISTEN_TCP &&
	       strcmp(s.host, "127.0.0.1") == 0 && s.port == 8080,
	   "tcp:HOST:PORT");
	ok(http_listen_parse("[::1]:99", &s, &e) == 0 && strcmp(s.host, "::1") == 0 && s.port == 99,
	   "[v6]:PORT");
	ok(http_listen_parse("0.0.0.0:0", &s, &e) == 0 && s.port == 0, "HOST:PORT without scheme");
	ok(http_listen_parse("unix:/run/x.sock", &s, &e) == 0 && s.kind == HTTP_LISTEN_UNIX &&
	       strcmp(s.path, "/run/x.sock") == 0,
	   "unix:/path");
	ok(http_listen_parse("vsock:any:8000", &s, &e) == 0 && s.kind == HTTP_LISTEN_VSOCK &&
	       s.cid == HTTP_VSOCK_CID_ANY && s.port == 8000,
	   "vsock:any:PORT");
	ok(http_listen_parse("vsock:2:10000", &s, &e) == 0 && s.cid == 2 && s.port == 10000,
	   "vsock:CID:PORT");
	ok(http_listen_parse("tcp:host:70000", &s, &e) < 0 && strstr(e.msg, "invalid port"),
	   "port range checked");
	ok(http_listen_parse("justahost", &s, &e) < 0, "missing port rejected");
	ok(http_listen_parse("unix:", &s, &e) < 0, "empty unix path rejected");
	ok(http_listen_parse("vsock:x:1", &s, &e) < 0, "bad CID rejected");

	/* IPv6 loopback, where configured. */
	uint16_t p6 = 0;

	http_listen_parse("tcp:[::1]:0", &s, &e);
	err_clear(&e);
	int fd6 = http_listen_socket(&s, &p6, &e);

	ok(fd6 >= 0 ? p6 != 0 : strstr(e.msg, "::1") != NULL, "IPv6 listener (or a clear error): %s", e.msg);
	if (fd6 >= 0)
		close(fd6);

	/* Unix: a stale socket file is replaced, any other file is not touched. */
	char dir[] = "/tmp/http-test-XXXXXX", path[64];

	if (mkdtemp(dir)) {
		snprintf(path, sizeof(path), "%s/s.sock", dir);
		http_listen_spec_set(&s, HTTP_LISTEN_UNIX, NULL, 0, path, 0, &e);
		s.mode = 0600;
		int a = http_listen_socket(&s, NULL, &e);

		close(a); /* leaves the socket file behind, like a crashed server */
		int b = http_listen_socket(&s, NULL, &e);
		struct stat st;

		ok(a >= 0 && b >= 0, "stale unix socket replaced: %s", e.msg);
		ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "unix socket mode applied");
		close(b);
		unlink(path);
		FILE *f = fopen(path, "w");

		if (f)
			fclose(f);
		ok(http_listen_socket(&s, NULL, &e) < 0 && strstr(e.msg, "not a socket"),
		   "regular file not removed: %s", e.msg);
		unlink(path);
		rmdir(dir);
	}

	/* vsock: works where the kernel has it, otherwise a clear error. */
	int fd;

	http_listen_parse("vsock:any:0", &s, &e);
	err_clear(&e);
	fd = http_listen_socket(&s, NULL, &e);
	if (fd >= 0) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);

		ok(getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 && ss.ss_family == AF_VSOCK,
		   "vsock listener created (an AF_VSOCK socket)");
		close(fd);
	} else {
		ok(strstr(e.msg, "vsock") != NULL, "vsock failure names vsock: %s", e.msg);
	}
}

/* ---- handlers ---- */

static void async_fire(evutil_socket_t fd, short what, void *arg)
{
	http_respond_text(arg, 200, "later");
}

static void h_async(struct http_request *req, void *arg)
{
	struct timeval tv = {0, 100 * 1000};

	event_base_once(base, -1, EV_TIMEOUT, async_fire, req, &tv);
}

struct job {
	struct http_request *req;
	pthread_t thread;
	char out[64];
};

static void job_work(void *arg)
{
	struct job *j = arg;

	j->thread = pthread_self();
	usleep(50 * 1000);
	snprintf(j->out, sizeof(j->out), "worked");
}

static void job_done(void *arg)
{
	struct job *j = arg;

	http_resp_header(j->req, "X-Worker", pthread_equal(j->thread, pthread_self()) ? "same" : "other");
	http_respond_text(j->req, 200, j->out);
	free(j);
}

static void h_pool(struct http_request *req, void *arg)
{
	struct job *j = calloc(1, sizeof(*j));

	j->req = req;
	if (http_server_submit(srv, job_work, job_done, j, NULL) < 0) {
		free(j);
		http_respond_text(req, 503, "busy");
	}
}

struct stream {
	struct http_request *req;
	struct event *ev;
	int n;
	bool *closed;
};

static void stream_tick(evutil_socket_t fd, short what, void *arg)
{
	struct stream *s = arg;
	char line[32];
	struct timeval tv = {0, 20 * 1000};

	if (s->n == 3) {
		http_stream_end(s->req);
		event_free(s->ev);
		free(s);
		return;
	}
	snprintf(line, sizeof(line), "line %d\n", s->n++);
	http_stream_write(s->req, line, strlen(line));
	evtimer_add(s->ev, &tv);
}

static void stream_closed(void *arg)
{
	struct stream *s = arg;

	event_free(s->ev);
	free(s);
}

static void h_stream(struct http_request *req, void *arg)
{
	struct stream *s = calloc(1, sizeof(*s));
	struct timeval tv = {0, 20 * 1000};

	s->req = req;
	s->ev = evtimer_new(base, stream_tick, s);
	http_stream_begin(req, 200, "text/plain", stream_closed, s);
	evtimer_add(s->ev, &tv);
}

static void h_echo(struct http_request *req, void *arg)
{
	size_t len;
	const uint8_t *body = http_req_body(req, &len);
	struct buf b = BUF_INIT;

	buf_printf(&b, "%s %s q=%s len=%zu ", http_req_method(req), http_req_path(req),
		   http_req_query(req) ? http_req_query(req) : "-", len);
	buf_append(&b, body, len);
	http_respond(req, 200, "text/plain", b.data, b.len);
	buf_free(&b);
}

static bool deny_secret(struct http_request *req, void *arg)
{
	const char *tok = http_req_header(req, "X-Admin-Token");

	if (strncmp(http_req_path(req), "/echo/secret", 12) != 0 || (tok && strcmp(tok, "t") == 0))
		return false;
	http_resp_header(req, "WWW-Authenticate", "Basic realm=\"test\"");
	http_respond(req, 401, NULL, NULL, 0);
	return true;
}

static void hang_fire(evutil_socket_t fd, short what, void *arg)
{
	http_respond_text(arg, 200, "too late");
}

static void h_hang(struct http_request *req, void *arg)
{
	struct timeval tv = {1, 0};

	event_base_once(base, -1, EV_TIMEOUT, hang_fire, req, &tv);
}

static void *loop_main(void *arg)
{
	event_base_dispatch(base);
	return NULL;
}

/* ---- raw socket helpers ---- */

static int connect_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static ssize_t read_until_close(int fd, struct buf *out, int ms)
{
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		char tmp[4096];
		ssize_t n;

		if (poll(&p, 1, ms) <= 0)
			return -1;
		n = recv(fd, tmp, sizeof(tmp), 0);
		if (n <= 0)
			return (ssize_t)out->len;
		buf_append(out, tmp, (size_t)n);
	}
}

static void test_server(void)
{
	struct http_client_opts o = {0};
	struct http_response r;
	struct err e = ERR_INIT;
	char url[128];

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/async", port);
	ok(http_fetch(&o, "GET", url, NULL, NULL, 0, &r, &e) == 0 && r.status == 200 &&
	       strcmp((char *)r.body.data, "later") == 0,
	   "async reply from a timer: %s", e.msg);
	http_response_free(&r);

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/pool", port);
	ok(http_fetch(&o, "GET", url, NULL, NULL, 0, &r, &e) == 0 &&
	       strcmp((char *)r.body.data, "worked") == 0,
	   "pool work result delivered");
	char *w = http_response_header(&r, "X-Worker");

	is_str(w, "other", "work ran on a pool thread, done on the loop thread");
	free(w);
	http_response_free(&r);

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/stream", port);
	ok(http_fetch(&o, "GET", url, NULL, NULL, 0, &r, &e) == 0 &&
	       strcmp((char *)r.body.data, "line 0\nline 1\nline 2\n") == 0,
	   "streamed reply read to EOF");
	char *cl = http_response_header(&r, "Content-Length");

	ok(cl == NULL, "streamed reply has no Content-Length");
	free(cl);
	http_response_free(&r);

	/* Client leaving a stream early: on_close runs (ASan would flag a leak otherwise). */
	int fd = connect_port();
	const char *sreq = "GET /stream HTTP/1.1\r\n\r\n";

	send(fd, sreq, strlen(sreq), 0);
	usleep(30 * 1000);
	close(fd);

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/echo/x?a=1", port);
	const char *hdrs[] = {"Expect: 100-continue", NULL};
	char *big = malloc(200000);

	memset(big, 'z', 200000);
	ok(http_fetch(&o, "POST", url, hdrs, big, 200000, &r, &e) == 0 && r.status == 200 &&
	       strncmp((char *)r.body.data, "POST /echo/x q=a=1 len=200000 zzz", 33) == 0,
	   "POST with Expect: 100-continue (%s)", e.msg);
	http_response_free(&r);
	free(big);

	/* Client total timeout. */
	struct http_client_opts quick = {.timeout_ms = 300};

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/hang", port);
	ok(http_fetch(&quick, "GET", url, NULL, NULL, 0, &r, &e) < 0 && strstr(e.msg, "timed out"),
	   "client gives up at its timeout: %s", e.msg);

	/* Filter before routing. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/echo/secret", port);
	ok(http_fetch(&o, "GET", url, NULL, NULL, 0, &r, &e) == 0 && r.status == 401 && r.body.len == 0,
	   "filter answers 401 before routing");
	w = http_response_header(&r, "WWW-Authenticate");
	is_str(w, "Basic realm=\"test\"", "filter reply headers");
	free(w);
	http_response_free(&r);
	const char *tok[] = {"X-Admin-Token: t", NULL};

	ok(http_fetch(&o, "GET", url, tok, NULL, 0, &r, &e) == 0 && r.status == 200,
	   "filter lets a valid token through");
	http_response_free(&r);

	/* HEAD: length of the body, no body. */
	fd = connect_port();
	struct buf raw = BUF_INIT;
	const char *head = "HEAD /echo HTTP/1.1\r\nConnection: close\r\n\r\n";

	send(fd, head, strlen(head), 0);
	read_until_close(fd, &raw, 3000);
	close(fd);
	ok(raw.data && strstr((char *)raw.data, "Content-Length: 21\r\n") &&
	       strstr((char *)raw.data, "\r\n\r\n")[4] == '\0',
	   "HEAD: Content-Length without body");
	buf_reset(&raw);

	/* HTTP/1.0 closes by default; keep-alive when asked. */
	fd = connect_port();
	const char *h10 = "GET /echo HTTP/1.0\r\n\r\n";

	send(fd, h10, strlen(h10), 0);
	ok(read_until_close(fd, &raw, 3000) > 0 && strstr((char *)raw.data, "Connection: close"),
	   "HTTP/1.0 without keep-alive is closed after the reply");
	close(fd);
	buf_reset(&raw);

	/* Idle keep-alive connection is closed after idle_timeout (500 ms here). */
	fd = connect_port();
	const char *ka = "GET /echo HTTP/1.1\r\n\r\n";
	struct timespec t0, t1;

	send(fd, ka, strlen(ka), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ssize_t n = read_until_close(fd, &raw, 3000);

	clock_gettime(CLOCK_MONOTONIC, &t1);
	double dt = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;

	ok(n > 0 && dt > 0.4 && dt < 2.0, "idle keep-alive connection closed after the idle timeout (%.2f s)",
	   dt);
	close(fd);
	buf_free(&raw);

	/* Connection limit: the 9th concurrent connection is closed at once. */
	int many[8];
	struct buf none = BUF_INIT;

	for (int i = 0; i < 8; i++)
		many[i] = connect_port();
	usleep(100 * 1000);
	fd = connect_port();
	ok(read_until_close(fd, &none, 500) == 0, "connection over max_connections closed at once");
	close(fd);
	for (int i = 0; i < 8; i++)
		close(many[i]);
	buf_free(&none);
	usleep(100 * 1000);

	/* Connection that never sends anything: closed at the request deadline. */
	fd = connect_port();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct buf nothing = BUF_INIT;

	read_until_close(fd, &nothing, 3000);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	dt = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	ok(dt > 0.8 && dt < 2.5 && nothing.len == 0,
	   "silent connection closed at the request deadline (%.2f s)", dt);
	close(fd);
	buf_free(&nothing);
}

int main(void)
{
	struct http_server_opts opts = {
	    .request_timeout_ms = 1000, .idle_timeout_ms = 500, .workers = 2, .max_connections = 8};
	struct http_listen_spec spec;
	struct err e = ERR_INIT;
	pthread_t th;

	test_parse();
	base = event_base_new();
	srv = http_server_new(base, &opts, &e);
	http_server_handle_signals(srv, &e);
	http_server_route(srv, "GET", "/async", false, h_async, NULL);
	http_server_route(srv, "GET", "/pool", false, h_pool, NULL);
	http_server_route(srv, "GET", "/stream", false, h_stream, NULL);
	http_server_route(srv, NULL, "/echo", true, h_echo, NULL);
	http_server_add_filter(srv, deny_secret, NULL);
	http_server_route(srv, "GET", "/hang", false, h_hang, NULL);
	http_listen_parse("tcp:127.0.0.1:0", &spec, &e);
	if (!ok(http_server_listen(srv, &spec, NULL, &port, &e) == 0 && port,
		"listen on an ephemeral port: %s", e.msg))
		return tap_done();
	pthread_create(&th, NULL, loop_main, NULL);
	test_server();
	/* SIGTERM reaches the loop through libevent's signal pipe; it drains and exits. */
	kill(getpid(), SIGTERM);
	pthread_join(th, NULL);
	ok(http_server_connections(srv) == 0, "no connections left after shutdown");
	http_server_free(srv);
	event_base_free(base);
	return tap_done();
}
