/*
 * demo_server.c — serves the demo prpc service (proto/prpc_demo.proto) for
 * the integration tests: /prpc/ on TCP (plain and TLS with optional client
 * certificates) and the guest-agent style bare /<Method> on a unix socket.
 *
 *     prpc_demo_server PORTFILE UNIX_PATH TLS_DIR
 *
 * Writes "<tcp port> <tls port>\n" to PORTFILE once listening. TLS_DIR has
 * server.pem, server.key and ca.pem (client certificates are optional but,
 * when sent, must chain to ca.pem).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/log.h"
#include "http/server.h"
#include "prpc/json.h"
#include "prpc/server.h"
#include "prpc_demo.pb-c.h"

/* Deep copy of `in` into the initialised `out` of the same type. */
static int copy_msg(const ProtobufCMessage *in, void *out, struct err *e)
{
	size_t n = protobuf_c_message_get_packed_size(in);
	_cleanup_free_ uint8_t *buf = malloc(n + 1);
	ProtobufCMessage *copy;

	protobuf_c_message_pack(in, buf);
	copy = protobuf_c_message_unpack(in->descriptor, NULL, n, buf);
	if (!copy)
		return err_set(e, "copy failed");
	memcpy(out, copy, in->descriptor->sizeof_message);
	free(copy);
	return 0;
}

static int echo(struct prpc_call *call, const void *in, void *out, struct err *e)
{
	return copy_msg(in, out, e);
}

static int deny(const char *why, struct err *e)
{
	return err_set(e, "%s", why);
}

static int fail(struct prpc_call *call, const void *in_, void *out, struct err *e)
{
	const Demo__EchoRequest *in = in_;

	if (deny(in->s, e) < 0) {
		err_wrap(e, "Boot denied");
		return err_wrap(e, "App not allowed");
	}
	return 0;
}

static int ping(struct prpc_call *call, const void *in, void *out, struct err *e)
{
	return 0;
}

static int peer(struct prpc_call *call, const void *in, void *out_, struct err *e)
{
	Demo__PeerInfo *out = out_;
	X509 *cert = prpc_call_peer_cert(call);
	const char *ua = prpc_call_header(call, "User-Agent");

	if (cert) {
		char name[256];

		X509_NAME_oneline(X509_get_subject_name(cert), name, sizeof(name));
		out->subject = strdup(name);
	}
	if (ua)
		out->user_agent = strdup(ua);
	return 0;
}

static int slow(struct prpc_call *call, const void *in_, void *out, struct err *e)
{
	const Demo__EchoRequest *in = in_;

	usleep((useconds_t)(in->u > 5000 ? 5000 : in->u) * 1000);
	return copy_msg(in_, out, e);
}

struct later {
	struct prpc_call *call;
	const Demo__EchoRequest *in;
	void *out;
};

static void later_fire(evutil_socket_t fd, short what, void *arg)
{
	struct later *l = arg;
	struct err e = ERR_INIT;
	int rc = l->in->flag ? err_set(&e, "later failure") : copy_msg(&l->in->base, l->out, &e);

	prpc_call_done(l->call, rc, &e);
	free(l);
}

/* Answers from a timer on the loop thread (PRPC_ASYNC). */
static int later(struct prpc_call *call, const void *in, void *out, struct err *e)
{
	struct later *l = calloc(1, sizeof(*l));
	struct timeval tv = {0, 100 * 1000};

	l->call = call;
	l->in = in;
	l->out = out;
	event_base_once(http_server_base(http_req_server(prpc_call_http(call))), -1, EV_TIMEOUT, later_fire,
			l, &tv);
	return PRPC_ASYNC;
}

static const char *const peer_omit[] = {"user_agent", NULL};
static const struct prpc_method demo_methods[] = {
    PRPC_METHOD("Echo", demo__echo_request, demo__echo_request, echo),
    PRPC_METHOD("Fail", demo__echo_request, google__protobuf__empty, fail),
    PRPC_METHOD("Ping", google__protobuf__empty, google__protobuf__empty, ping),
    PRPC_METHOD("Depth", demo__node, demo__node, echo),
    {.name = "Peer",
     .input = &google__protobuf__empty__descriptor,
     .output = &demo__peer_info__descriptor,
     .handler = peer,
     .omit_if_empty = peer_omit},
    PRPC_METHOD_BLOCKING("Slow", demo__echo_request, demo__echo_request, slow),
    PRPC_METHOD("Later", demo__echo_request, demo__echo_request, later),
};
static const char *const demo_prefixes[] = {"Demo.", "Legacy.", NULL};
static const struct prpc_service demo_svc = {"Demo", demo_prefixes, demo_methods, ARRAY_SIZE(demo_methods),
					     NULL};

static void root_page(struct http_request *req, void *arg)
{
	http_respond(req, 200, "text/html", "<h1>demo</h1>", 13);
}

static SSL_CTX *make_tls(const char *dir, struct err *e)
{
	char path[512];
	_cleanup_(SSL_CTX_freep) SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (!ctx)
		return err_ssl(e, "SSL_CTX_new"), NULL;
	snprintf(path, sizeof(path), "%s/server.pem", dir);
	if (SSL_CTX_use_certificate_chain_file(ctx, path) != 1)
		return err_ssl(e, "load %s", path), NULL;
	snprintf(path, sizeof(path), "%s/server.key", dir);
	if (SSL_CTX_use_PrivateKey_file(ctx, path, SSL_FILETYPE_PEM) != 1)
		return err_ssl(e, "load %s", path), NULL;
	snprintf(path, sizeof(path), "%s/ca.pem", dir);
	if (SSL_CTX_load_verify_locations(ctx, path, NULL) != 1)
		return err_ssl(e, "load %s", path), NULL;
	/* Client certificate optional, verified when present. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return TAKE_PTR(ctx);
}

int main(int argc, char **argv)
{
	struct err e = ERR_INIT;
	struct http_server_opts opts = {.request_timeout_ms = 2000,
					.idle_timeout_ms = 5000,
					.app_version = "v0.6.0 (git:test)",
					.shutdown_grace_ms = 5000};
	struct http_server_opts uopts = {.request_timeout_ms = 2000};
	struct http_listen_spec tcp, tls, unix_spec;
	uint16_t tcp_port = 0, tls_port = 0;
	const struct prpc_service *svcs[] = {&demo_svc};
	struct event_base *base;
	struct http_server *srv, *usrv;
	SSL_CTX *ctx;
	char ports[64];

	if (argc != 4) {
		fprintf(stderr, "usage: %s PORTFILE UNIX_PATH TLS_DIR\n", argv[0]);
		return 2;
	}
	log_init("demo", LOG_LVL_INFO);
	base = event_base_new();
	srv = http_server_new(base, &opts, &e);
	usrv = srv ? http_server_new(base, &uopts, &e) : NULL;
	if (!usrv)
		goto fail;
	http_server_add_health(srv);
	http_server_route(srv, "GET", "/", false, root_page, NULL);
	if (prpc_mount(srv, "/prpc/", svcs, 1, &e) < 0 || prpc_mount(usrv, "/", svcs, 1, &e) < 0)
		goto fail;
	ctx = make_tls(argv[3], &e);
	if (!ctx)
		goto fail;
	if (http_listen_parse("tcp:127.0.0.1:0", &tcp, &e) < 0 ||
	    http_listen_parse("127.0.0.1:0", &tls, &e) < 0 ||
	    http_listen_spec_set(&unix_spec, HTTP_LISTEN_UNIX, NULL, 0, argv[2], 0, &e) < 0)
		goto fail;
	unix_spec.mode = 0777;
	if (http_server_listen(srv, &tcp, NULL, &tcp_port, &e) < 0 ||
	    http_server_listen(srv, &tls, ctx, &tls_port, &e) < 0 ||
	    http_server_listen(usrv, &unix_spec, NULL, NULL, &e) < 0)
		goto fail;
	SSL_CTX_free(ctx);
	if (http_server_handle_signals(srv, &e) < 0)
		goto fail;
	snprintf(ports, sizeof(ports), "%u %u\n", tcp_port, tls_port);
	if (file_write_atomic(argv[1], ports, strlen(ports), 0644, &e) < 0)
		goto fail;
	event_base_dispatch(base);
	log_info("demo server: loop ended, exiting");
	http_server_free(usrv);
	http_server_free(srv);
	event_base_free(base);
	return 0;
fail:
	fprintf(stderr, "demo server: %s\n", err_str(&e));
	return 1;
}
