/*
 * client.h — calling prpc services the way the reference clients do:
 * `POST <base>/<Method>?json` with a JSON body, JSON reply; any non-2xx
 * status is an error carrying the server's `error` string; an empty reply
 * body means null. Blocking (libcurl): call from a pool thread inside a loop.
 *
 *     struct prpc_client kms = { .base = "https://kms:8000/prpc", .http = { .ca_pem = ca } };
 *     Kms__AppKeyResponse *r;
 *     if (prpc_client_call(&kms, "GetAppKey", &req.base, &kms__app_key_response__descriptor,
 *                          (ProtobufCMessage **)&r, e) < 0)
 *             return err_wrap(e, "GetAppKey");
 */
#ifndef DSTACK_PRPC_CLIENT_H
#define DSTACK_PRPC_CLIENT_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#include "core/err.h"
#include "http/client.h"

struct prpc_client {
	const char *base;             /* "http://host:port/prpc", "http://localhost" (unix socket) */
	struct http_client_opts http; /* CA, verify hook, client cert, unix socket, timeouts */
};

/* Raw JSON: `in` NULL sends {}; *out (may be NULL) gets the reply, json null when empty. */
int prpc_client_call_json(const struct prpc_client *c, const char *method, const json_t *in, json_t **out,
			  struct err *e);
/* Message in, message out (free *out with prpc_msg_free). `in` NULL sends {}. */
int prpc_client_call(const struct prpc_client *c, const char *method, const ProtobufCMessage *in,
		     const ProtobufCMessageDescriptor *out_desc, ProtobufCMessage **out, struct err *e);
/* Lowest level: JSON text in, reply body (NUL-terminated, caller frees) out. */
int prpc_client_call_raw(const struct prpc_client *c, const char *method, const char *json_in, size_t len,
			 struct buf *reply, struct err *e);

#endif
