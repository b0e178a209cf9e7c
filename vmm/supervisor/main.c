/*
 * main.c — the `supervisor` daemon (spec §10): owns VM processes so they
 * survive VMM restarts, and serves a small JSON API over HTTP on a unix
 * socket. Every reply is 200 with {"data":X} or {"error":"msg"}; the VMM
 * tells the two apart by the key. One event loop: HTTP, SIGCHLD reaping and
 * SIGTERM/SIGINT shutdown (which kills every child, then exits 0).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/log.h"
#include "http/server.h"
#include "vmm/supervisor/sv.h"

struct daemon {
	struct sv sv;
	struct event_base *base;
	struct http_server *http;
};

static void reply(struct http_request *req, json_t *data, const struct err *e)
{
	_cleanup_json_ json_t *o =
	    e ? json_pack("{s:s}", "error", err_str(e)) : json_pack("{s:o}", "data", data);
	_cleanup_free_ char *s = json_dumps(o, JSON_COMPACT | JSON_ENCODE_ANY);

	http_respond(req, 200, "application/json", s, strlen(s));
}

/* The id after a route prefix such as "/stop/". */
static const char *path_id(struct http_request *req, const char *prefix)
{
	return http_req_path(req) + strlen(prefix);
}

static void on_deploy(struct http_request *req, void *arg)
{
	struct daemon *d = arg;
	struct err e = ERR_INIT;
	size_t len;
	const uint8_t *body = http_req_body(req, &len);
	json_error_t je;
	_cleanup_json_ json_t *cfg = json_loadb((const char *)body, len, 0, &je);

	if (!cfg) {
		err_set(&e, "Invalid process config: %s", je.text);
		return reply(req, NULL, &e);
	}
	/* A spawn failure is reported here and also kept as status error(msg). */
	if (sv_deploy(&d->sv, cfg, &e) < 0)
		return reply(req, NULL, &e);
	reply(req, json_null(), NULL);
}

static void on_start(struct http_request *req, void *arg)
{
	struct daemon *d = arg;
	struct err e = ERR_INIT;
	int r = sv_start(&d->sv, path_id(req, "/start/"), &e);

	reply(req, json_null(), r < 0 ? &e : NULL);
}

/* Optional "?grace_ms=N" (capped at 60 s): SIGTERM first, SIGKILL after N ms.
 * Without it a stop is an immediate SIGKILL, as the VMM expects (§7.3). */
static unsigned grace_ms(struct http_request *req)
{
	const char *q = http_req_query(req), *p;
	unsigned long v;

	if (!q || !(p = strstr(q, "grace_ms=")) || (p != q && p[-1] != '&'))
		return 0;
	v = strtoul(p + 9, NULL, 10);
	return v > 60000 ? 60000 : (unsigned)v;
}

static void on_stop(struct http_request *req, void *arg)
{
	struct daemon *d = arg;
	struct err e = ERR_INIT;
	int r = sv_stop(&d->sv, path_id(req, "/stop/"), grace_ms(req), &e);

	reply(req, json_null(), r < 0 ? &e : NULL);
}

static void on_remove(struct http_request *req, void *arg)
{
	struct daemon *d = arg;
	struct err e = ERR_INIT;
	int r = sv_remove(&d->sv, path_id(req, "/remove/"), &e);

	reply(req, json_null(), r < 0 ? &e : NULL);
}

static void on_list(struct http_request *req, void *arg)
{
	struct daemon *d = arg;

	sv_reap(&d->sv);
	reply(req, sv_list_json(&d->sv), NULL);
}

static void on_info(struct http_request *req, void *arg)
{
	struct daemon *d = arg;
	struct sv_process *p;

	sv_reap(&d->sv);
	p = sv_find(&d->sv, path_id(req, "/info/"));
	reply(req, p ? sv_info_json(p) : json_null(), NULL);
}

static void on_ping(struct http_request *req, void *arg)
{
	reply(req, json_string("pong"), NULL);
}

static void on_clear(struct http_request *req, void *arg)
{
	struct daemon *d = arg;

	sv_reap(&d->sv);
	sv_clear(&d->sv);
	reply(req, json_null(), NULL);
}

static void on_shutdown(struct http_request *req, void *arg)
{
	struct daemon *d = arg;

	sv_shutdown(&d->sv);
	reply(req, json_null(), NULL);
}

static void on_sigchld(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;

	sv_reap(&d->sv);
}

static void on_term(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;

	log_info("signal %d: stopping every process", (int)fd);
	sv_shutdown(&d->sv);
	event_base_loopexit(d->base, NULL);
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void usage(void)
{
	fprintf(
	    stderr,
	    "usage: supervisor -u|--uds SOCK [--remove-existing-uds] [-d] [--pid-file F] [--log-file F]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
					     {"address", required_argument, NULL, 'a'},
					     {"port", required_argument, NULL, 'p'},
					     {"uds", required_argument, NULL, 'u'},
					     {"remove-existing-uds", no_argument, NULL, 'r'},
					     {"detach", no_argument, NULL, 'd'},
					     {"pid-file", required_argument, NULL, 'P'},
					     {"log-file", required_argument, NULL, 'L'},
					     {"help", no_argument, NULL, 'h'},
					     {0}};
	const char *uds = NULL, *pid_file = NULL, *log_file = NULL;
	bool remove_existing = false, detach = false;
	struct daemon d = {0};
	struct http_listen_spec spec;
	struct err e = ERR_INIT;
	struct event *ev_chld, *ev_term, *ev_int;
	int c;

	while ((c = getopt_long(argc, argv, "c:a:p:u:dh", opts, NULL)) != -1) {
		switch (c) {
		case 'u':
			uds = optarg;
			break;
		case 'r':
			remove_existing = true;
			break;
		case 'd':
			detach = true;
			break;
		case 'P':
			pid_file = optarg;
			break;
		case 'L':
			log_file = optarg;
			break;
		case 'c':
		case 'a':
		case 'p':
			break; /* accepted for compatibility; only the unix socket is served */
		default:
			usage();
			return c == 'h' ? 0 : 2;
		}
	}
	if (!uds) {
		usage();
		return 2;
	}
	log_init("supervisor", LOG_LVL_INFO);
	if (log_file) {
		int fd = open(log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		if (fd < 0 || dup2(fd, 2) < 0) {
			fprintf(stderr, "supervisor: cannot open log file %s: %s\n", log_file,
				strerror(errno));
			return 1;
		}
		close(fd);
	}
	if (detach && daemon(1, log_file ? 1 : 0) < 0) {
		log_error("daemon: %s", strerror(errno));
		return 1;
	}
	raise_nofile();
	signal(SIGPIPE, SIG_IGN);
	if (remove_existing)
		unlink(uds);
	if (http_listen_spec_set(&spec, HTTP_LISTEN_UNIX, NULL, 0, uds, 0, &e) < 0)
		goto fail;
	spec.mode = 0600;
	sv_init(&d.sv);
	d.base = event_base_new();
	d.http = http_server_new(d.base, NULL, &e);
	if (!d.base || !d.http)
		goto fail;
	http_server_route(d.http, "POST", "/deploy", false, on_deploy, &d);
	http_server_route(d.http, "POST", "/start/", true, on_start, &d);
	http_server_route(d.http, "POST", "/stop/", true, on_stop, &d);
	http_server_route(d.http, "DELETE", "/remove/", true, on_remove, &d);
	http_server_route(d.http, "GET", "/list", false, on_list, &d);
	http_server_route(d.http, "GET", "/info/", true, on_info, &d);
	http_server_route(d.http, "GET", "/ping", false, on_ping, &d);
	http_server_route(d.http, "POST", "/clear", false, on_clear, &d);
	http_server_route(d.http, "POST", "/shutdown", false, on_shutdown, &d);
	if (http_server_listen(d.http, &spec, NULL, NULL, &e) < 0)
		goto fail;
	if (pid_file) {
		char buf[32];
		int len = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());

		if (file_write_atomic(pid_file, buf, (size_t)len, 0644, &e) < 0)
			goto fail;
	}
	ev_chld = evsignal_new(d.base, SIGCHLD, on_sigchld, &d);
	ev_term = evsignal_new(d.base, SIGTERM, on_term, &d);
	ev_int = evsignal_new(d.base, SIGINT, on_term, &d);
	event_add(ev_chld, NULL);
	event_add(ev_term, NULL);
	event_add(ev_int, NULL);
	log_info("listening on %s", uds);
	event_base_dispatch(d.base);
	event_free(ev_chld);
	event_free(ev_term);
	event_free(ev_int);
	http_server_free(d.http);
	event_base_free(d.base);
	sv_free(&d.sv);
	if (pid_file)
		unlink(pid_file);
	unlink(uds);
	return 0;
fail:
	log_error("%s", err_str(&e));
	return 1;
}
