/*
 * hostapi.c — the guest-facing host API (spec §9): Info, Notify and
 * GetSealingKey under /api/. The calling VM is identified by the listener it
 * came in on: the vsock peer CID on the shared vsock listener, or the CID
 * bound to a process-backend VM's own unix socket (one socket per VM, so a
 * guest cannot speak for another). Never authenticated.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/log.h"
#include "prpc/server.h"
#include "vmm/rpc/rpc.h"
#include "vmm/util.h"
#include "vmm_rpc.pb-c.h"

#define MAX_QUOTE (1u << 20)
#define MAX_PROVIDER_REPLY (4u << 20)

static int caller_cid(struct prpc_call *call, uint32_t *cid, struct err *e)
{
	struct vmm_host_api *h = prpc_call_arg(call);
	struct http_request *req = prpc_call_http(call);
	const char *peer = req ? http_req_peer(req) : "";
	unsigned c;

	if (h->cid) {
		*cid = h->cid;
		return 0;
	}
	if (sscanf(peer, "vsock:%u:", &c) == 1) {
		*cid = c;
		return 0;
	}
	return err_set(e, "host API: caller is not a VM (%s)", peer);
}

static int info(struct prpc_call *call, const void *in, void *out, struct err *e)
{
	Vmm__HostInfo *r = out;

	(void)call, (void)in, (void)e;
	r->name = xstrdup("dstack VMM");
	r->version = xstrdup(VMM_VERSION);
	return 0;
}

static int notify(struct prpc_call *call, const void *in, void *out, struct err *e)
{
	const Vmm__NotifyRequest *n = in;
	struct vmm_host_api *h = prpc_call_arg(call);
	uint32_t cid;

	(void)out;
	if (caller_cid(call, &cid, e) < 0)
		return -1;
	if (strlen(n->payload) > 4096) {
		log_warn("host API: dropping %s event of %zu bytes from cid %u", n->event, strlen(n->payload),
			 cid);
		return 0;
	}
	return vmm_app_notify(h->rpc->app, cid, n->event, n->payload, e);
}

static int write_all(int fd, const void *p, size_t len)
{
	const uint8_t *b = p;

	while (len) {
		ssize_t w = write(fd, b, len);

		if (w <= 0)
			return -1;
		b += w;
		len -= (size_t)w;
	}
	return 0;
}

static int read_all(int fd, void *p, size_t len)
{
	uint8_t *b = p;

	while (len) {
		ssize_t r = read(fd, b, len);

		if (r <= 0)
			return -1;
		b += r;
		len -= (size_t)r;
	}
	return 0;
}

static int json_bytes(const json_t *arr, ProtobufCBinaryData *out, struct err *e)
{
	size_t i;
	json_t *v;

	if (!json_is_array(arr))
		return err_set(e, "key provider reply: expected a byte array");
	out->len = json_array_size(arr);
	out->data = malloc(out->len ? out->len : 1);
	if (!out->data)
		abort();
	json_array_foreach(arr, i, v)
	{
		json_int_t x = json_integer_value(v);

		if (!json_is_integer(v) || x < 0 || x > 255)
			return err_set(e, "key provider reply: byte out of range");
		out->data[i] = (uint8_t)x;
	}
	return 0;
}

/* One framed exchange with the local key provider: u32 BE length + JSON, both ways. */
static int sealing_key(struct prpc_call *call, const void *in, void *out, struct err *e)
{
	const Vmm__GetSealingKeyRequest *q = in;
	struct vmm_host_api *h = prpc_call_arg(call);
	const struct vmm_config *c = h->rpc->cfg;
	Vmm__GetSealingKeyResponse *r = out;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *text = NULL;
	_cleanup_free_ uint8_t *reply = NULL;
	_cleanup_json_ json_t *doc = NULL, *arr = NULL;
	char port[16];
	uint32_t cid, be, len;
	struct timeval tv = {30, 0};

	if (caller_cid(call, &cid, e) < 0)
		return -1;
	if (!c->key_provider.enabled)
		return err_set(e, "Key provider is not enabled");
	if (q->quote.len > MAX_QUOTE)
		return err_set(e, "quote too large");
	arr = json_array();
	for (size_t i = 0; i < q->quote.len; i++)
		json_array_append_new(arr, json_integer(q->quote.data[i]));
	doc = json_pack("{s:O}", "quote", arr);
	text = json_dumps(doc, JSON_COMPACT);
	snprintf(port, sizeof(port), "%u", c->key_provider.port);
	if (getaddrinfo(c->key_provider.address, port, &hints, &ai) != 0 || !ai)
		return err_set(e, "key provider: cannot resolve %s", c->key_provider.address);
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		freeaddrinfo(ai);
		return err_set(e, "Failed to connect to the key provider at %s:%s", c->key_provider.address,
			       port);
	}
	freeaddrinfo(ai);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	be = htonl((uint32_t)strlen(text));
	if (write_all(fd, &be, 4) < 0 || write_all(fd, text, strlen(text)) < 0)
		return err_set(e, "key provider: write failed");
	if (read_all(fd, &be, 4) < 0)
		return err_set(e, "key provider: no reply");
	len = ntohl(be);
	if (len > MAX_PROVIDER_REPLY)
		return err_set(e, "key provider: reply too large (%u bytes)", len);
	reply = malloc(len + 1);
	if (!reply)
		abort();
	if (read_all(fd, reply, len) < 0)
		return err_set(e, "key provider: short reply");
	json_decref(doc);
	doc = json_loadb((const char *)reply, len, 0, NULL);
	if (!json_is_object(doc))
		return err_set(e, "key provider: reply is not a JSON object");
	if (json_bytes(json_object_get(doc, "encrypted_key"), &r->encrypted_key, e) < 0 ||
	    json_bytes(json_object_get(doc, "provider_quote"), &r->provider_quote, e) < 0)
		return -1;
	log_info("host API: sealing key for cid %u", cid);
	return 0;
}

static const struct prpc_method host_methods[] = {
    PRPC_METHOD("Info", google__protobuf__empty, vmm__host_info, info),
    PRPC_METHOD("Notify", vmm__notify_request, google__protobuf__empty, notify),
    PRPC_METHOD_BLOCKING("GetSealingKey", vmm__get_sealing_key_request, vmm__get_sealing_key_response,
			 sealing_key),
};

int vmm_host_api_mount(struct http_server *srv, struct vmm_host_api *h, struct err *e)
{
	h->svc = (struct prpc_service){"HostApi", NULL, host_methods, 3, h};
	h->svcs[0] = &h->svc;
	return prpc_mount(srv, "/api/", h->svcs, 1, e);
}
