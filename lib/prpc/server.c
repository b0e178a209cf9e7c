/*
 * server.c — prpc dispatch (see server.h): route → method lookup → decode
 * (query string, JSON or protobuf) → handler (loop or pool thread) → encode
 * in the request's encoding. Every failure before or inside the handler
 * becomes the same HTTP 400 error shape.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "prpc.pb-c.h"
#include "prpc/json.h"
#include "prpc/server.h"

struct mount {
	char *prefix;
	const struct prpc_service **svcs;
	size_t n;
};

struct prpc_call {
	struct http_request *req;
	const struct prpc_service *svc;
	const struct prpc_method *method;
	bool json;
	ProtobufCMessage *in, *out;
	X509 *peer;
	int rc;
	struct err err;
};

void prpc_error_json(const char *msg, struct buf *out)
{
	buf_puts(out, "{\n  \"error\": ");
	prpc_json_put_string(out, msg, strlen(msg));
	buf_puts(out, "\n}");
}

static void call_free(struct prpc_call *c)
{
	prpc_msg_free(c->in);
	prpc_msg_free(c->out);
	X509_free(c->peer);
	free(c);
}

static void send_error(struct http_request *req, bool json, const char *msg)
{
	if (json) {
		struct buf b = BUF_INIT;

		prpc_error_json(msg, &b);
		http_respond(req, 400, "application/json", b.data, b.len);
		buf_free(&b);
	} else {
		Prpc__PrpcError pe = PRPC__PRPC_ERROR__INIT;
		size_t n;
		uint8_t *data;

		pe.message = (char *)msg;
		n = prpc__prpc_error__get_packed_size(&pe);
		data = malloc(n + 1);
		if (!data)
			abort();
		prpc__prpc_error__pack(&pe, data);
		http_respond(req, 400, "application/octet-stream", data, n);
		free(data);
	}
}

/* Send the reply of a finished call and free it (loop thread). */
static void finish(struct prpc_call *c)
{
	if (c->rc < 0) {
		send_error(c->req, c->json, err_str(&c->err));
	} else if (c->json) {
		struct buf b = BUF_INIT;

		prpc_json_encode_ex(c->out, c->method->omit_if_empty, &b);
		http_respond(c->req, 200, "application/json", b.data, b.len);
		buf_free(&b);
	} else {
		size_t n =
		    prpc_desc_is_empty(c->method->output) ? 0 : protobuf_c_message_get_packed_size(c->out);
		uint8_t *data = malloc(n + 1);

		if (!data)
			abort();
		if (n)
			protobuf_c_message_pack(c->out, data);
		http_respond(c->req, 200, "application/octet-stream", data, n);
		free(data);
	}
	call_free(c);
}

void prpc_call_done(struct prpc_call *c, int rc, const struct err *e)
{
	c->rc = rc < 0 ? -1 : 0;
	if (rc < 0)
		snprintf(c->err.msg, sizeof(c->err.msg), "%s", err_str(e));
	finish(c);
}

static void run_handler(struct prpc_call *c)
{
	c->rc = c->method->handler(c, c->in, c->out, &c->err);
	if (c->rc < 0 && !c->err.msg[0])
		err_set(&c->err, "internal error");
}

static void pool_work(void *arg)
{
	run_handler(arg);
}

static void pool_done(void *arg)
{
	struct prpc_call *c = arg;

	if (c->rc == PRPC_ASYNC) /* not allowed from a pool thread */
		c->rc = err_set(&c->err, "blocking handler returned PRPC_ASYNC");
	finish(c);
}

/* `json` key in the query with value "", "true" or "1". */
static bool query_wants_json(const char *q)
{
	while (q && *q) {
		const char *amp = strchr(q, '&');
		size_t len = amp ? (size_t)(amp - q) : strlen(q);

		if (len >= 4 && strncmp(q, "json", 4) == 0) {
			const char *v = q + 4;
			size_t vl = len - 4;

			if (vl == 0 || (vl == 1 && *v == '='))
				return true;
			if (*v == '=' &&
			    ((vl == 5 && strncmp(v + 1, "true", 4) == 0) || (vl == 2 && v[1] == '1')))
				return true;
		}
		q = amp ? amp + 1 : NULL;
	}
	return false;
}

static bool content_type_is_json(const char *ct)
{
	if (!ct)
		return false;
	while (*ct == ' ')
		ct++;
	return strncasecmp(ct, "application/json", 16) == 0 &&
	       (ct[16] == '\0' || ct[16] == ';' || ct[16] == ' ');
}

static const struct prpc_method *find_method(const struct mount *mt, const char *name,
					     const struct prpc_service **svc_out)
{
	for (size_t i = 0; i < mt->n; i++) {
		const struct prpc_service *svc = mt->svcs[i];

		for (size_t k = 0; k < svc->n_methods; k++) {
			if (strcmp(svc->methods[k].name, name) == 0) {
				*svc_out = svc;
				return &svc->methods[k];
			}
		}
	}
	return NULL;
}

static const char *strip_prefix(const struct mount *mt, const char *name)
{
	for (size_t i = 0; i < mt->n; i++) {
		const char *const *p = mt->svcs[i]->prefixes;

		for (; p && *p; p++) {
			size_t l = strlen(*p);

			if (strncmp(name, *p, l) == 0)
				return name + l;
		}
	}
	return name;
}

static void on_request(struct http_request *req, void *arg)
{
	const struct mount *mt = arg;
	const char *method_s = http_req_method(req);
	const char *name = http_req_path(req) + strlen(mt->prefix);
	const struct prpc_service *svc = NULL;
	const struct prpc_method *m;
	bool is_get = strcmp(method_s, "GET") == 0;
	bool json = is_get || query_wants_json(http_req_query(req)) ||
		    content_type_is_json(http_req_header(req, "Content-Type"));
	struct prpc_call *c;
	struct err e = ERR_INIT;
	const uint8_t *body;
	size_t body_len;

	if (!*name || strchr(name, '/')) {
		http_respond_text(req, 404, "Not Found");
		return;
	}
	if (http_req_body_too_large(req)) {
		/* Marked by the service with http_server_route_takes_oversize. */
		send_error(req, json, "payload too large: the request body is over the size limit");
		return;
	}
	name = strip_prefix(mt, name);
	m = find_method(mt, name, &svc);
	if (!m) {
		char msg[ERR_MSG_MAX];

		snprintf(msg, sizeof(msg), "Service not found: %s", name);
		send_error(req, json, msg);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		abort();
	c->req = req;
	c->svc = svc;
	c->method = m;
	c->json = json;
	body = http_req_body(req, &body_len);
	if (prpc_desc_is_empty(m->input))
		c->in = prpc_msg_new(m->input);
	else if (is_get)
		c->in = prpc_query_decode(m->input, http_req_query(req), &e);
	else if (json)
		c->in = prpc_json_decode_text(m->input, body, body_len, &e);
	else if (!(c->in = protobuf_c_message_unpack(m->input, NULL, body_len, body)))
		err_set(&e, "failed to decode %s: invalid protobuf message", m->input->short_name);
	else if (prpc_msg_check_utf8(c->in, &e) < 0) {
		prpc_msg_free(c->in);
		c->in = NULL;
	}
	if (!c->in) {
		char msg[ERR_MSG_MAX];

		snprintf(msg, sizeof(msg), "%s", e.msg);
		call_free(c);
		send_error(req, json, msg);
		return;
	}
	c->out = prpc_msg_new(m->output);
	c->peer = http_req_peer_cert(req);
	if (c->peer)
		X509_up_ref(c->peer);
	if (m->blocking) {
		if (http_server_submit(http_req_server(req), pool_work, pool_done, c, &c->err) < 0) {
			c->rc = -1;
			finish(c);
		}
		return;
	}
	run_handler(c);
	if (c->rc != PRPC_ASYNC)
		finish(c);
}

static void mount_free(void *arg)
{
	struct mount *mt = arg;

	free(mt->prefix);
	free(mt->svcs);
	free(mt);
}

int prpc_mount(struct http_server *srv, const char *prefix, const struct prpc_service *const *svcs, size_t n,
	       struct err *e)
{
	struct mount *mt;

	if (!prefix || prefix[0] != '/' || prefix[strlen(prefix) - 1] != '/')
		return err_set(e, "prpc mount must start and end with '/': %s", prefix ? prefix : "(null)");
	mt = calloc(1, sizeof(*mt));
	if (!mt)
		abort();
	mt->prefix = strdup(prefix);
	mt->svcs = calloc(n ? n : 1, sizeof(*mt->svcs));
	if (!mt->prefix || !mt->svcs)
		abort();
	memcpy(mt->svcs, svcs, n * sizeof(*svcs));
	mt->n = n;
	http_server_route_owned(srv, "POST", prefix, true, on_request, mt, NULL);
	http_server_route_owned(srv, "GET", prefix, true, on_request, mt, mount_free);
	return 0;
}

void *prpc_call_arg(const struct prpc_call *call)
{
	return call->svc->arg;
}

const struct prpc_method *prpc_call_method(const struct prpc_call *call)
{
	return call->method;
}

X509 *prpc_call_peer_cert(const struct prpc_call *call)
{
	return call->peer;
}

const char *prpc_call_header(const struct prpc_call *call, const char *name)
{
	return http_req_header(call->req, name);
}

bool prpc_call_is_json(const struct prpc_call *call)
{
	return call->json;
}

struct http_request *prpc_call_http(const struct prpc_call *call)
{
	return call->req;
}
