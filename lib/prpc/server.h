/*
 * server.h — the prpc RPC convention on top of lib/http.
 *
 * A service is a table of methods, each naming its protobuf-c input and
 * output descriptors and a handler; adding a method is one proto declaration
 * plus one table row and one function:
 *
 *     static int get_meta(struct prpc_call *call, const void *in, void *out, struct err *e)
 *     {
 *             Kms__GetMetaResponse *r = out;   // initialised; set fields with malloc'd data
 *             r->ca_cert = strdup(pem);
 *             return 0;                         // or -1 with e set → HTTP 400 {"error": ...}
 *     }
 *     static const struct prpc_method kms_methods[] = {
 *             { "GetMeta", &google__protobuf__empty__descriptor, &kms__get_meta_response__descriptor,
 * get_meta },
 *     };
 *     static const char *const kms_prefixes[] = { "KMS.", NULL };
 *     static const struct prpc_service kms_svc = { "KMS", kms_prefixes, kms_methods, ARRAY_SIZE(kms_methods)
 * }; prpc_mount(srv, "/prpc/", (const struct prpc_service *[]){ &kms_svc }, 1, &e);
 *
 * Wire rules (docs/prpc.md): `POST|GET <mount><Method>`, a listed legacy
 * prefix stripped first; JSON if GET, `?json` (empty/true/1) or a JSON
 * Content-Type, else protobuf both ways; errors are HTTP 400 with a
 * pretty-printed {"error": msg} or prpc.PrpcError; unknown methods fail with
 * `Service not found: <name>`.
 *
 * Handlers run on the loop thread, or on a pool thread when `blocking` is set
 * (then they must not touch libevent objects). A loop-thread handler may
 * return PRPC_ASYNC and call prpc_call_done() later. `out` and everything it
 * points to is freed by the framework with protobuf_c_message_free_unpacked:
 * use malloc'd strings/bytes/arrays and prpc_msg_new() for sub-messages.
 */
#ifndef DSTACK_PRPC_SERVER_H
#define DSTACK_PRPC_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/x509.h>
#include <protobuf-c/protobuf-c.h>

#include "core/buf.h"
#include "core/err.h"
#include "http/server.h"

#define PRPC_ASYNC 1

struct prpc_call;

typedef int (*prpc_handler_fn)(struct prpc_call *call, const void *in, void *out, struct err *e);

struct prpc_method {
	const char *name; /* bare method name, e.g. "GetAppKey" */
	const ProtobufCMessageDescriptor *input;
	const ProtobufCMessageDescriptor *output;
	prpc_handler_fn handler;
	bool blocking; /* run on a pool thread */
	/* Top-level output fields left out of JSON when empty (NULL-terminated, may be NULL). */
	const char *const *omit_if_empty;
};

/* Table rows by message C prefix: PRPC_METHOD("GetMeta", google__protobuf__empty, kms__get_meta_response,
 * fn). */
#define PRPC_METHOD(mname, in, out, fn)                                                                      \
	{                                                                                                    \
		.name = (mname), .input = &in##__descriptor, .output = &out##__descriptor, .handler = (fn)   \
	}
#define PRPC_METHOD_BLOCKING(mname, in, out, fn)                                                             \
	{                                                                                                    \
		.name = (mname), .input = &in##__descriptor, .output = &out##__descriptor, .handler = (fn),  \
		.blocking = true                                                                             \
	}

struct prpc_service {
	const char *name;
	const char *const *prefixes; /* NULL-terminated legacy prefixes to strip ("KMS."), or NULL */
	const struct prpc_method *methods;
	size_t n_methods;
	void *arg; /* returned by prpc_call_arg() */
};

/*
 * Serve `svcs` under `mount` ("/prpc/" for /prpc/<Method>, "/" for the
 * guest-agent style bare /<Method>, "/api/" …). Several services can share
 * a mount (first match wins); other routes can be added to `srv` freely
 * (exact routes and longer prefixes take precedence). The table must outlive
 * the server.
 */
int prpc_mount(struct http_server *srv, const char *mount, const struct prpc_service *const *svcs, size_t n,
	       struct err *e);

/* ---- inside a handler ---- */
void *prpc_call_arg(const struct prpc_call *call);
const struct prpc_method *prpc_call_method(const struct prpc_call *call);
/* Peer certificate on TLS listeners (borrowed, valid during the call), else NULL. */
X509 *prpc_call_peer_cert(const struct prpc_call *call);
/* Request header (case-insensitive) or NULL. */
const char *prpc_call_header(const struct prpc_call *call, const char *name);
/* True when the request was JSON (the reply will be too). */
bool prpc_call_is_json(const struct prpc_call *call);
/* The HTTP request; loop thread only. */
struct http_request *prpc_call_http(const struct prpc_call *call);
/* Finish a call whose handler returned PRPC_ASYNC (loop thread): rc 0 sends
 * `out`, rc -1 sends the error in e. */
void prpc_call_done(struct prpc_call *call, int rc, const struct err *e);

/* Body of a JSON error reply: {"error": msg} pretty-printed like serde_json. */
void prpc_error_json(const char *msg, struct buf *out);

#endif
