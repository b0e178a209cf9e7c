/*
 * vmm_client.c — talking to one dstack-vmm for the `dstack vmm` subcommands:
 * `POST /prpc/<Method>?json` through lib/prpc, or through http_fetch when
 * the call carries credentials (the prpc client has no header hook), plain
 * GETs (logs), and the output/file helpers every subcommand uses, so that
 * each vmm_<cmd>.c is only its flags and its request.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/base64.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/mem.h"
#include "prpc/client.h"
#include "vmm_client.h"

#define FILE_MAX (16u << 20)

char *xfmt(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	return s;
}

int vmm_die(const char *what, const struct err *e)
{
	fprintf(stderr, "dstack vmm: %s%s%s\n", what, e ? ": " : "", e ? err_str(e) : "");
	return 1;
}

const char *js(const json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));

	return v ? v : "";
}

void print_json(const json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);

	puts(s ? s : "null");
	free(s);
}

int read_text(const char *path, char **out, size_t *len, struct err *e)
{
	uint8_t *d = NULL;

	if (file_read_all(path, FILE_MAX, &d, len, e) < 0)
		return err_wrap(e, "%s", path);
	d = realloc(d, *len + 1);
	if (!d)
		abort();
	d[*len] = 0;
	*out = (char *)d;
	return 0;
}

json_t *json_file_load(const char *path, size_t max)
{
	_cleanup_free_ uint8_t *raw = NULL;
	size_t len;
	json_t *j = NULL;

	if (file_read_all(path, max, &raw, &len, NULL) == 0)
		j = json_loadb((const char *)raw, len, 0, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

int json_file_save(const char *path, const json_t *j, struct err *e)
{
	_cleanup_free_ char *dir = xfmt("%s", path), *dump = NULL;
	char *slash = strrchr(dir, '/');

	if (slash)
		*slash = 0;
	dump = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (!dump)
		return err_set(e, "%s: cannot encode", path);
	if ((slash && mkdir_p(dir, 0700, e) < 0) || file_write_atomic(path, dump, strlen(dump), 0600, e) < 0)
		return -1;
	return 0;
}

void vmm_table(const struct vmm_column *cols, size_t ncols, const json_t *rows,
	       void (*after_row)(const json_t *row))
{
	const json_t *row;
	size_t i;

	for (size_t k = 0; k < ncols; k++)
		printf(k + 1 < ncols ? "%-*s  " : "%*s\n", cols[k].width, cols[k].title);
	json_array_foreach(rows, i, row)
	{
		for (size_t k = 0; k < ncols; k++) {
			const char *v =
			    cols[k].yes_no
				? (json_is_true(json_object_get(row, cols[k].field)) ? "yes" : "no")
				: js(row, cols[k].field);

			printf(k + 1 < ncols ? "%-*s  " : "%*s\n", cols[k].width, v);
		}
		if (after_row)
			after_row(row);
	}
}

/* ---- HTTP ---- */

/* The client options for c, and the base URL (…/prpc stripped to the server root when root). */
static char *http_base(const struct vmm_cli *c, struct http_client_opts *http, bool root)
{
	size_t n = strlen(c->url);

	memset(http, 0, sizeof(*http));
	if (!strncmp(c->url, "unix:", 5)) {
		http->unix_socket = c->url + 5;
		return xfmt("http://localhost%s", root ? "" : "/prpc");
	}
	if (n && c->url[n - 1] == '/')
		n--;
	return xfmt("%.*s%s", (int)n, c->url, root ? "" : "/prpc");
}

/* "Authorization: …" for the client's token or user/password, or NULL. */
static char *auth_header(const struct vmm_cli *c)
{
	_cleanup_free_ char *up = NULL;
	struct buf b = BUF_INIT;
	char *hdr;

	if (c->token)
		return xfmt("Authorization: Bearer %s", c->token);
	if (!c->user)
		return NULL;
	up = xfmt("%s:%s", c->user, c->password);
	base64_put(&b, up, strlen(up));
	buf_putc(&b, 0);
	hdr = xfmt("Authorization: Basic %s", (char *)b.data);
	buf_free_secure(&b);
	secure_zero(up, strlen(up));
	return hdr;
}

int vmm_call(const struct vmm_cli *c, const char *method, json_t *in, json_t **out, struct err *e)
{
	struct prpc_client pc = {0};
	_cleanup_free_ char *base = http_base(c, &pc.http, false), *hdr = auth_header(c);
	_cleanup_free_ char *url = NULL, *body = NULL;
	_cleanup_json_ json_t *req = in;
	struct http_response r = {0};

	pc.base = base;
	pc.http.timeout_ms = 120000;
	pc.http.insecure = c->tls_unverified;
	if (!hdr)
		return prpc_client_call_json(&pc, method, req, out, e) < 0 ? err_wrap(e, "API call failed")
									   : 0;
	url = xfmt("%s/%s?json", base, method);
	body = req ? json_dumps(req, JSON_COMPACT) : xfmt("{}");
	const char *hdrs[] = {"Content-Type: application/json", hdr, NULL};
	if (http_fetch(&pc.http, "POST", url, hdrs, body, strlen(body), &r, e) < 0)
		return err_wrap(e, "API call failed");
	if (r.status != 200) {
		_cleanup_json_ json_t *j = json_loadb((const char *)r.body.data, r.body.len, 0, NULL);
		const char *msg = json_string_value(json_object_get(j, "error"));

		err_set(e, "API call failed: %s",
			msg ? msg : (r.status == 401 ? "unauthorized" : "HTTP error"));
		http_response_free(&r);
		return -1;
	}
	if (out)
		*out = r.body.len ? json_loadb((const char *)r.body.data, r.body.len, 0, NULL) : json_null();
	http_response_free(&r);
	return 0;
}

int vmm_get(const struct vmm_cli *c, const char *path_query, int timeout_ms, struct http_response *r,
	    struct err *e)
{
	struct http_client_opts http;
	_cleanup_free_ char *base = http_base(c, &http, true), *hdr = auth_header(c);
	_cleanup_free_ char *url = xfmt("%s/%s", base, path_query);
	const char *hdrs[] = {hdr, NULL};

	http.timeout_ms = timeout_ms;
	return http_fetch(&http, "GET", url, hdr ? hdrs : NULL, NULL, 0, r, e);
}
