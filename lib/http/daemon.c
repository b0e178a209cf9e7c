/*
 * daemon.c — a daemon's servers and their lifetime (see daemon.h).
 */
#include "http/daemon.h"

static struct http_server *add_server(struct http_daemon *d, const struct http_listen_spec *spec,
				      SSL_CTX *tls, const char *what, struct err *e)
{
	struct http_server *srv;

	if (d->n_servers == HTTP_DAEMON_MAX_SERVERS) {
		err_set(e, "%s: too many servers", what);
		return NULL;
	}
	if (!(srv = http_server_new(d->base, &d->opts, e)))
		return NULL;
	d->servers[d->n_servers++] = srv;
	if (http_server_listen_logged(srv, spec, tls, what, e) < 0)
		return NULL;
	return srv;
}

struct http_server *http_daemon_rpc(struct http_daemon *d, const struct http_tls_files *files,
				    const struct http_listen_spec *spec, struct err *e)
{
	struct http_server *srv;

	if (!d->tls && !(d->tls = http_tls_server_ctx(files, e)))
		return NULL;
	if (!(srv = add_server(d, spec, d->tls, "rpc (TLS)", e)) || http_server_handle_signals(srv, e) < 0)
		return NULL;
	return srv;
}

struct http_server *http_daemon_plain(struct http_daemon *d, const struct http_listen_spec *spec,
				      const char *what, struct err *e)
{
	return add_server(d, spec, NULL, what, e);
}

int http_daemon_run(struct http_daemon *d)
{
	event_base_dispatch(d->base);
	return 0;
}

void http_daemon_free(struct http_daemon *d)
{
	while (d->n_servers > 0)
		http_server_free(d->servers[--d->n_servers]);
	if (d->tls)
		SSL_CTX_free(d->tls);
	d->tls = NULL;
}
