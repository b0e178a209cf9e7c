/*
 * guest.c — see guest.h. The GuestApi client is libcurl on a socket we
 * connect ourselves: curl has no vsock support, so an open-socket callback
 * hands it an AF_VSOCK stream that is already connected (the same callback
 * shape serves unix sockets through CURLOPT_UNIX_SOCKET_PATH instead).
 *
 * The `/guest/<Method>` route follows the pRPC rules of §2 (POST or GET,
 * JSON when GET, `?json` or a JSON Content-Type; errors are HTTP 400 with
 * {"error": msg} or prpc.PrpcError) but passes the agent's JSON reply
 * through unchanged: the guest API's own message types are not part of this
 * build's protos, so protobuf-encoded requests are answered only for
 * Shutdown, whose output (Empty) is a zero-length body.
 */
#include "vmm/rpc/guest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <linux/vm_sockets.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/log.h"
#include "prpc.pb-c.h"
#include "prpc/json.h"
#include "prpc/server.h"
#include "vmm/qemu.h"
#include "vmm/rpc/rpc.h"
#include "vmm/util.h"
#include "vmm_rpc.pb-c.h"

#define GUEST_REPLY_MAX (10u << 20)

int vmm_guest_target(struct vmm_app *a, const char *id, struct vmm_guest_target *t, struct err *e)
{
	_cleanup_free_ char *workdir = NULL;
	uint32_t cid = 0;
	bool found = false;

	memset(t, 0, sizeof(*t));
	pthread_mutex_lock(&a->lock);
	for (size_t i = 0; i < a->n && id; i++) {
		if (!strcmp(a->vms[i]->m.id, id)) {
			found = true;
			workdir = xstrdup(a->vms[i]->workdir);
			cid = a->vms[i]->cid;
			break;
		}
	}
	pthread_mutex_unlock(&a->lock);
	if (!found)
		return err_set(e, "VM not found: %s", id ? id : "");
	_cleanup_free_ char *sock = path_join(workdir, VMM_GUEST_API_SOCK);
	if (file_exists(sock)) {
		t->unix_path = TAKE_PTR(sock);
		return 0;
	}
	if (!vmm_host_has_vhost_vsock(&a->host))
		return err_set(e, "the guest agent of VM %s is unreachable: this host has no vhost-vsock",
			       id);
	t->cid = cid;
	t->port = VMM_GUEST_API_PORT;
	return 0;
}

void vmm_guest_target_free(struct vmm_guest_target *t)
{
	free(t->unix_path);
	memset(t, 0, sizeof(*t));
}

struct xfer {
	const struct vmm_guest_target *t;
	long timeout_ms;
	int conn_errno;
	struct buf body;
	bool too_big;
};

static curl_socket_t open_vsock(void *arg, curlsocktype purpose, struct curl_sockaddr *addr)
{
	struct xfer *x = arg;
	struct sockaddr_vm sa = {.svm_family = AF_VSOCK, .svm_cid = x->t->cid, .svm_port = x->t->port};
	struct timeval tv = {x->timeout_ms / 1000, (x->timeout_ms % 1000) * 1000};
	int fd;

	(void)purpose, (void)addr;
	fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		x->conn_errno = errno;
		return CURL_SOCKET_BAD;
	}
	setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		x->conn_errno = errno;
		close(fd);
		return CURL_SOCKET_BAD;
	}
	return fd;
}

static int already_connected(void *arg, curl_socket_t fd, curlsocktype purpose)
{
	(void)arg, (void)fd, (void)purpose;
	return CURL_SOCKOPT_ALREADY_CONNECTED;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;

	if (x->body.len + size * n > GUEST_REPLY_MAX) {
		x->too_big = true;
		return 0;
	}
	buf_append(&x->body, p, size * n);
	return size * n;
}

int vmm_guest_call(const struct vmm_guest_target *t, const char *method, long timeout_ms, json_t **reply,
		   struct err *e)
{
	_cleanup_free_ char *url = xasprintf("http://localhost/api/%s?json", method);
	_cleanup_free_ char *where =
	    t->unix_path ? xasprintf("unix:%s", t->unix_path) : xasprintf("vsock:%u:%u", t->cid, t->port);
	struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
	struct xfer x = {.t = t, .timeout_ms = timeout_ms > 0 ? timeout_ms : 30000};
	char errbuf[CURL_ERROR_SIZE] = "";
	long status = 0;
	CURLcode rc;
	CURL *c;
	int ret = -1;

	if (reply)
		*reply = NULL;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(c = curl_easy_init())) {
		curl_slist_free_all(hdr);
		return err_set(e, "curl initialisation failed");
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, "{}");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, x.timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, x.timeout_ms < 5000 ? x.timeout_ms : 5000L);
	curl_easy_setopt(c, CURLOPT_PROXY, "");
	if (t->unix_path) {
		curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, t->unix_path);
	} else {
		/* one address, so one connect: curl would try ::1 and 127.0.0.1 */
		curl_easy_setopt(c, CURLOPT_IPRESOLVE, (long)CURL_IPRESOLVE_V4);
		curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_vsock);
		curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &x);
		curl_easy_setopt(c, CURLOPT_SOCKOPTFUNCTION, already_connected);
	}
	rc = curl_easy_perform(c);
	if (rc != CURLE_OK) {
		if (x.too_big)
			err_set(e, "guest agent at %s: reply larger than %u bytes", where, GUEST_REPLY_MAX);
		else if (x.conn_errno)
			err_set(e, "guest agent at %s: connect: %s", where, strerror(x.conn_errno));
		else
			err_set(e, "guest agent at %s: %s", where, *errbuf ? errbuf : curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	buf_putc(&x.body, 0);
	x.body.len--;
	json_t *j = x.body.len ? json_loadb((const char *)x.body.data, x.body.len, JSON_DECODE_ANY, NULL)
			       : json_null();
	if (status != 200) {
		const char *msg = json_string_value(json_object_get(j, "error"));

		if (msg)
			err_set(e, "%s", msg);
		else
			err_set(e, "guest agent at %s answered HTTP %ld", where, status);
		json_decref(j);
		goto out;
	}
	if (!j) {
		err_set(e, "guest agent at %s: reply is not JSON", where);
		goto out;
	}
	if (reply)
		*reply = j;
	else
		json_decref(j);
	ret = 0;
out:
	buf_free(&x.body);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(c);
	return ret;
}

/* ---- /guest/<Method> -------------------------------------------------- */

static const char *const proxied[] = {"Info", "SysInfo", "NetworkInfo", "ListContainers", "Shutdown"};

struct guest_job {
	struct vmm_rpc *rpc;
	struct http_request *req;
	char *id;
	const char *method;
	bool json;
	json_t *reply;
	struct err e;
	int rc;
};

static bool query_wants_json(const char *q)
{
	_cleanup_json_ json_t *j = q ? prpc_query_to_json(q, NULL) : NULL;
	json_t *v = json_object_get(j, "json");
	const char *s = json_string_value(v);

	return v && (!s || !*s || !strcmp(s, "true") || !strcmp(s, "1"));
}

static bool ctype_is_json(const char *ct)
{
	while (ct && *ct == ' ')
		ct++;
	return ct && !strncasecmp(ct, "application/json", 16) && (!ct[16] || ct[16] == ';' || ct[16] == ' ');
}

static void send_error(struct http_request *req, bool json, const char *msg)
{
	struct buf b = BUF_INIT;

	if (json) {
		prpc_error_json(msg, &b);
		http_respond(req, 400, "application/json", b.data, b.len);
	} else {
		Prpc__PrpcError pe = PRPC__PRPC_ERROR__INIT;
		size_t n;

		pe.message = (char *)msg;
		n = prpc__prpc_error__get_packed_size(&pe);
		buf_reserve(&b, n + 1);
		prpc__prpc_error__pack(&pe, b.data);
		http_respond(req, 400, "application/octet-stream", b.data, n);
	}
	buf_free(&b);
}

static void guest_work(void *arg)
{
	struct guest_job *j = arg;
	struct vmm_guest_target t;

	j->rc = vmm_guest_target(j->rpc->app, j->id, &t, &j->e);
	if (j->rc == 0) {
		j->rc = vmm_guest_call(&t, j->method, 30000, &j->reply, &j->e);
		vmm_guest_target_free(&t);
	}
}

static void guest_done(void *arg)
{
	struct guest_job *j = arg;

	if (j->rc < 0) {
		send_error(j->req, j->json, err_str(&j->e));
	} else if (!j->json) {
		http_respond(j->req, 200, "application/octet-stream", "", 0); /* Shutdown: Empty */
	} else {
		_cleanup_free_ char *s =
		    json_dumps(j->reply, JSON_ENCODE_ANY | JSON_COMPACT | JSON_PRESERVE_ORDER);

		http_respond(j->req, 200, "application/json", s, strlen(s));
	}
	json_decref(j->reply);
	free(j->id);
	free(j);
}

/* The id of the {id} input: query (GET), JSON body, or protobuf vmm.Id. */
static int input_id(struct http_request *req, bool json, char **id, struct err *e)
{
	size_t len;
	const uint8_t *body = http_req_body(req, &len);

	if (!strcmp(http_req_method(req), "GET")) {
		const char *q = http_req_query(req);
		_cleanup_json_ json_t *j = q ? prpc_query_to_json(q, e) : json_object();

		if (!j)
			return -1;
		*id = xstrdup(json_string_value(json_object_get(j, "id")) ?: "");
		return 0;
	}
	if (json) {
		_cleanup_json_ json_t *j = len ? json_loadb((const char *)body, len, 0, NULL) : json_object();
		json_t *v = json_object_get(j, "id");

		if (!json_is_object(j))
			return err_set(e, "invalid JSON body: expected an object");
		if (v && !json_is_string(v) && !json_is_null(v))
			return err_set(e, "invalid type for field id: expected a string");
		*id = xstrdup(json_string_value(v) ?: "");
		return 0;
	}
	Vmm__Id *m = vmm__id__unpack(NULL, len, body);
	if (!m)
		return err_set(e, "failed to decode Id: invalid protobuf message");
	*id = xstrdup(m->id);
	vmm__id__free_unpacked(m, NULL);
	return 0;
}

static void guest_route(struct http_request *req, void *arg)
{
	struct vmm_rpc *rpc = arg;
	const char *name = http_req_path(req) + strlen("/guest/");
	bool json = !strcmp(http_req_method(req), "GET") || query_wants_json(http_req_query(req)) ||
		    ctype_is_json(http_req_header(req, "Content-Type"));
	const char *method = NULL;
	struct guest_job *j;
	char msg[ERR_MSG_MAX];

	if (!*name || strchr(name, '/')) {
		http_respond_text(req, 404, "Not Found");
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(proxied); i++)
		if (!strcmp(name, proxied[i]))
			method = proxied[i];
	if (!method) {
		snprintf(msg, sizeof(msg), "Service not found: %s", name);
		send_error(req, json, msg);
		return;
	}
	if (!json && strcmp(method, "Shutdown")) {
		snprintf(msg, sizeof(msg),
			 "/guest/%s answers JSON only: use ?json or Content-Type: application/json", method);
		send_error(req, false, msg);
		return;
	}
	j = calloc(1, sizeof(*j));
	if (!j)
		abort();
	*j = (struct guest_job){.rpc = rpc, .req = req, .method = method, .json = json, .e = ERR_INIT};
	if (input_id(req, json, &j->id, &j->e) < 0) {
		send_error(req, json, err_str(&j->e));
		free(j);
		return;
	}
	if (http_server_submit(http_req_server(req), guest_work, guest_done, j, &j->e) < 0) {
		send_error(req, json, "server is shutting down");
		free(j->id);
		free(j);
	}
}

void vmm_guest_mount(struct http_server *srv, struct vmm_rpc *rpc)
{
	http_server_route(srv, "POST", "/guest/", true, guest_route, rpc);
	http_server_route(srv, "GET", "/guest/", true, guest_route, rpc);
}
