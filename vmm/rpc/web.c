/*
 * web.c — the non-RPC routes of the external server (spec §2, §3): the auth
 * filter, `GET /logs` (tail, follow with a 60 s heartbeat, ANSI stripping),
 * and the embedded console page. Following polls the file every 300 ms on
 * the event loop instead of using inotify so rotation (truncate in place)
 * is seen simply as the file shrinking.
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/log.h"
#include "prpc/json.h"
#include "vmm/logs.h"
#include "vmm/rpc/guest.h"
#include "vmm/rpc/rpc.h"
#include "vmm/util.h"
#include "vmm/workdir.h"

#define HEARTBEAT_SECS 60

static json_t *query_json(struct http_request *req)
{
	const char *q = http_req_query(req);
	json_t *j = q ? prpc_query_to_json(q, NULL) : NULL;

	return j ? j : json_object();
}

static const char *qstr(const json_t *q, const char *k)
{
	return json_string_value(json_object_get(q, k));
}

static bool qbool(const json_t *q, const char *k)
{
	const char *v = qstr(q, k);

	return v && (!strcmp(v, "true") || !strcmp(v, "1") || !*v);
}

static bool auth_filter(struct http_request *req, void *arg)
{
	struct vmm_rpc *rpc = arg;
	_cleanup_json_ json_t *q = NULL;
	const char *token = NULL;

	if (!rpc->cfg->auth.enabled)
		return false;
	if (!strcmp(http_req_method(req), "GET")) {
		q = query_json(req);
		token = qstr(q, "token");
	}
	if (vmm_auth_check(rpc->cfg, http_req_header(req, "X-Admin-Token"),
			   http_req_header(req, "Authorization"), token))
		return false;
	http_resp_header(req, "WWW-Authenticate", "Basic realm=\"dstack-vmm API\"");
	http_respond(req, 401, "text/plain", "", 0);
	return true;
}

/* ---- /logs ----------------------------------------------------------- */

struct follow {
	struct http_request *req;
	struct event *ev;
	char *path;
	uint64_t off;
	bool ansi;
	unsigned idle_ticks;
};

static void follow_free(struct follow *f)
{
	if (f->ev)
		event_free(f->ev);
	free(f->path);
	free(f);
}

static void follow_closed(void *arg)
{
	follow_free(arg);
}

static void follow_tick(evutil_socket_t fd, short what, void *arg)
{
	struct follow *f = arg;
	struct stat st;
	char chunk[65536];

	(void)fd, (void)what;
	if (http_stream_pending(f->req) > (1u << 20))
		return;
	if (stat(f->path, &st) == 0) {
		if ((uint64_t)st.st_size < f->off)
			f->off = 0; /* truncated by rotation */
		if ((uint64_t)st.st_size > f->off) {
			FILE *fp = fopen(f->path, "rb");
			size_t got = 0;

			if (fp && fseeko(fp, (off_t)f->off, SEEK_SET) == 0)
				got = fread(chunk, 1, sizeof(chunk), fp);
			if (fp)
				fclose(fp);
			f->off += got;
			if (got) {
				size_t n = f->ansi ? got : vmm_strip_ansi(chunk, got);

				f->idle_ticks = 0;
				if (http_stream_write(f->req, chunk, n) < 0)
					return;
				return;
			}
		}
	}
	if (++f->idle_ticks >= HEARTBEAT_SECS * 1000 / 300) {
		f->idle_ticks = 0;
		http_stream_write(f->req, "[vmm heartbeat]\n", 16);
	}
}

static void logs_route(struct http_request *req, void *arg)
{
	struct vmm_rpc *rpc = arg;
	_cleanup_json_ json_t *q = query_json(req);
	_cleanup_json_ json_t *info = NULL;
	_cleanup_free_ char *dir = NULL, *path = NULL;
	const char *id = qstr(q, "id"), *file, *lines_s = qstr(q, "lines");
	struct err e = ERR_INIT;
	struct buf out = BUF_INIT;
	uint64_t end = 0;
	size_t lines = VMM_LOG_DEFAULT_LINES;
	bool ansi = qbool(q, "ansi") && qstr(q, "ansi"), follow = qbool(q, "follow") && qstr(q, "follow");

	if (id && vmm_id_valid(id))
		info = vmm_app_info(rpc->app, id);
	if (!info || !json_is_true(json_object_get(info, "found"))) {
		http_respond_text(req, 404, "VM not found");
		return;
	}
	if (vmm_log_channel_file(qstr(q, "ch"), &file, &e) < 0) {
		http_respond_text(req, 400, err_str(&e));
		return;
	}
	if (lines_s) {
		char *endp;
		unsigned long v = strtoul(lines_s, &endp, 10);

		if (*endp || !*lines_s) {
			http_respond_text(req, 400, "Invalid lines");
			return;
		}
		lines = v;
	}
	dir = path_join(rpc->cfg->run_path, id);
	path = path_join(dir, file);
	if (file_exists(path) && vmm_log_tail(path, lines, ansi, &out, &end, &e) < 0) {
		http_respond_text(req, 500, err_str(&e));
		buf_free(&out);
		return;
	}
	if (!follow) {
		http_respond(req, 200, "text/plain; charset=utf-8", out.data, out.len);
		buf_free(&out);
		return;
	}
	struct follow *f = calloc(1, sizeof(*f));

	if (!f)
		abort();
	f->req = req;
	f->path = TAKE_PTR(path);
	f->off = end;
	f->ansi = ansi;
	http_stream_begin(req, 200, "text/plain; charset=utf-8", follow_closed, f);
	if (out.len)
		http_stream_write(req, out.data, out.len);
	buf_free(&out);
	f->ev = event_new(http_server_base(http_req_server(req)), -1, EV_PERSIST, follow_tick, f);
	struct timeval tv = {0, 300000};
	event_add(f->ev, &tv);
}

/* ---- console --------------------------------------------------------- */

static void page_route(struct http_request *req, void *arg)
{
	struct vmm_rpc *rpc = arg;
	_cleanup_free_ char *html = vmm_console_html(rpc->cfg->node_name);

	http_respond(req, 200, "text/html; charset=utf-8", html, strlen(html));
}

static void x25519_route(struct http_request *req, void *arg)
{
	(void)arg;
	http_respond(req, 200, "application/javascript", vmm_x25519_js, strlen(vmm_x25519_js));
}

static void openapi_route(struct http_request *req, void *arg)
{
	_cleanup_json_ json_t *doc = vmm_openapi_json();
	_cleanup_free_ char *s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	(void)arg;
	http_respond(req, 200, "application/json", s, strlen(s));
}

static void docs_route(struct http_request *req, void *arg)
{
	_cleanup_free_ char *html = vmm_api_docs_html();

	(void)arg;
	http_respond(req, 200, "text/html; charset=utf-8", html, strlen(html));
}

int vmm_rpc_mount(struct http_server *srv, struct vmm_rpc *rpc, struct err *e)
{
	http_server_add_header(srv, "X-App-Version", rpc->app_version);
	http_server_add_header(srv, "X-Accel-Buffering", "no");
	http_server_add_filter(srv, auth_filter, rpc);
	http_server_route(srv, "GET", "/logs", false, logs_route, rpc);
	http_server_route(srv, "GET", "/", false, page_route, rpc);
	http_server_route(srv, "GET", "/v1", false, page_route, rpc);
	http_server_route(srv, "GET", "/beta", false, page_route, rpc);
	http_server_route(srv, "GET", "/res/x25519.js", false, x25519_route, rpc);
	vmm_guest_mount(srv, rpc);
	http_server_route(srv, "GET", "/api-docs/openapi.json", false, openapi_route, rpc);
	http_server_route(srv, "GET", "/api-docs/docs", false, docs_route, rpc);
	return vmm_rpc_mount_prpc(srv, rpc, e);
}

extern const char vmm_console_html_tpl[];

char *vmm_console_html(const char *node_name)
{
	_cleanup_free_ char *title =
	    str_empty(node_name) ? xstrdup("dstack-vmm") : xasprintf("%s | dstack-vmm", node_name);
	struct buf out = BUF_INIT;
	const char *p = vmm_console_html_tpl, *hit;
	size_t tl = strlen(title);
	struct buf esc = BUF_INIT;

	for (size_t i = 0; i < tl; i++) {
		char c = title[i];

		if (c == '<')
			buf_puts(&esc, "&lt;");
		else if (c == '>')
			buf_puts(&esc, "&gt;");
		else if (c == '&')
			buf_puts(&esc, "&amp;");
		else
			buf_putc(&esc, (uint8_t)c);
	}
	while ((hit = strstr(p, "{{TITLE}}"))) {
		buf_append(&out, p, (size_t)(hit - p));
		buf_append(&out, esc.data, esc.len);
		p = hit + 9;
	}
	buf_puts(&out, p);
	buf_putc(&out, 0);
	buf_free(&esc);
	return (char *)buf_steal(&out, NULL);
}
