/*
 * client.c — prpc client over lib/http's libcurl client (see client.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "prpc/client.h"
#include "prpc/json.h"

/* Error text of a failed call: the server's {"error": ...} if present. */
static int reply_error(const char *method, const struct http_response *r, struct err *e)
{
	json_error_t je;
	_cleanup_json_ json_t *j = json_loadb((const char *)r->body.data, r->body.len, JSON_DECODE_ANY, &je);
	json_t *msg = json_is_object(j) ? json_object_get(j, "error") : NULL;

	if (json_is_string(msg))
		return err_set(e, "%s", json_string_value(msg));
	return err_set(e, "%s: HTTP %ld: %.200s", method, r->status,
		       r->body.len ? (const char *)r->body.data : "");
}

int prpc_client_call_raw(const struct prpc_client *c, const char *method, const char *json_in, size_t len,
			 struct buf *reply, struct err *e)
{
	static const char *const hdrs[] = {"Content-Type: application/json", NULL};
	struct http_response r;
	struct buf url = BUF_INIT;
	size_t bl = strlen(c->base);
	int rc;

	buf_printf(&url, "%.*s/%s?json", (int)(bl && c->base[bl - 1] == '/' ? bl - 1 : bl), c->base, method);
	rc = http_fetch(&c->http, "POST", (const char *)url.data, hdrs, json_in, len, &r, e);
	buf_free(&url);
	if (rc < 0)
		return err_wrap(e, "%s", method);
	if (r.status < 200 || r.status > 299) {
		reply_error(method, &r, e);
		http_response_free(&r);
		return -1;
	}
	*reply = r.body;
	buf_free(&r.headers);
	return 0;
}

int prpc_client_call_json(const struct prpc_client *c, const char *method, const json_t *in, json_t **out,
			  struct err *e)
{
	_cleanup_free_ char *body = in ? json_dumps(in, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("{}");
	struct buf reply = BUF_INIT;
	json_error_t je;
	json_t *j;
	size_t i = 0;

	if (!body)
		return err_set(e, "%s: cannot encode request", method);
	if (prpc_client_call_raw(c, method, body, strlen(body), &reply, e) < 0)
		return -1;
	while (i < reply.len && strchr(" \t\r\n", reply.data[i]))
		i++;
	j = i == reply.len ? json_null()
			   : json_loadb((const char *)reply.data, reply.len, JSON_DECODE_ANY, &je);
	buf_free(&reply);
	if (!j)
		return err_set(e, "%s: invalid JSON reply: %s", method, je.text);
	if (out)
		*out = j;
	else
		json_decref(j);
	return 0;
}

int prpc_client_call(const struct prpc_client *c, const char *method, const ProtobufCMessage *in,
		     const ProtobufCMessageDescriptor *out_desc, ProtobufCMessage **out, struct err *e)
{
	struct buf body = BUF_INIT, reply = BUF_INIT;
	ProtobufCMessage *m;
	int rc;

	if (in)
		prpc_json_encode(in, &body);
	else
		buf_puts(&body, "{}");
	rc = prpc_client_call_raw(c, method, (const char *)body.data, body.len, &reply, e);
	buf_free(&body);
	if (rc < 0)
		return -1;
	m = prpc_json_decode_text(out_desc, reply.data, reply.len, e);
	buf_free(&reply);
	if (!m)
		return err_wrap(e, "%s: invalid reply", method);
	if (out)
		*out = m;
	else
		prpc_msg_free(m);
	return 0;
}
