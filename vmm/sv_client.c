/*
 * sv_client.c — see sv_client.h.
 */
#include "vmm/sv_client.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "http/client.h"
#include "vmm/util.h"

json_t *sv_client_call(const struct sv_client *c, const char *method, const char *path, const json_t *body,
		       long timeout_ms, struct err *e)
{
	struct http_client_opts o = {0};
	struct http_response resp = {0};
	_cleanup_free_ char *url = xasprintf("http://localhost%s", path);
	_cleanup_free_ char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	static const char *const hdrs[] = {"Content-Type: application/json", NULL};
	json_error_t je;
	json_t *j;

	o.unix_socket = c->sock;
	o.timeout_ms = timeout_ms ? timeout_ms : (c->timeout_ms ? c->timeout_ms : 10000);
	o.connect_timeout_ms = o.timeout_ms;
	o.max_body = 64u << 20;
	if (http_fetch(&o, method, url, hdrs, text, text ? strlen(text) : 0, &resp, e) < 0)
		return err_wrap(e, "supervisor %s", path), NULL;
	if (resp.status != 200) {
		err_set(e, "supervisor %s: HTTP %ld", path, resp.status);
		http_response_free(&resp);
		return NULL;
	}
	j = json_loadb((const char *)resp.body.data, resp.body.len, 0, &je);
	http_response_free(&resp);
	if (!json_is_object(j)) {
		json_decref(j);
		return err_set(e, "supervisor %s: invalid reply", path), NULL;
	}
	return j;
}

/* Unwrap {"data":X}/{"error":m}; returns a new reference to X. */
static json_t *call_data(const struct sv_client *c, const char *method, const char *path, const json_t *body,
			 struct err *e)
{
	_cleanup_json_ json_t *j = sv_client_call(c, method, path, body, 0, e);
	json_t *err, *data;

	if (!j)
		return NULL;
	if ((err = json_object_get(j, "error")))
		return err_set(e, "%s", json_is_string(err) ? json_string_value(err) : "supervisor error"),
		       NULL;
	data = json_object_get(j, "data");
	return data ? json_incref(data) : json_null();
}

static int call_void(const struct sv_client *c, const char *method, const char *path, const json_t *body,
		     struct err *e)
{
	json_t *d = call_data(c, method, path, body, e);

	if (!d)
		return -1;
	json_decref(d);
	return 0;
}

bool sv_client_ping(const struct sv_client *c)
{
	_cleanup_json_ json_t *j = sv_client_call(c, "GET", "/ping", NULL, 100, NULL);

	return j && json_is_string(json_object_get(j, "data")) &&
	       !strcmp(json_string_value(json_object_get(j, "data")), "pong");
}

int sv_client_deploy(const struct sv_client *c, const json_t *config, struct err *e)
{
	return call_void(c, "POST", "/deploy", config, e);
}

static int call_id(const struct sv_client *c, const char *method, const char *prefix, const char *id,
		   struct err *e)
{
	_cleanup_free_ char *p = NULL;

	if (!str_charset_ok(id, "_-.") || !*id)
		return err_set(e, "invalid process id");
	p = xasprintf("%s%s", prefix, id);
	return call_void(c, method, p, NULL, e);
}

int sv_client_start(const struct sv_client *c, const char *id, struct err *e)
{
	return call_id(c, "POST", "/start/", id, e);
}

int sv_client_stop(const struct sv_client *c, const char *id, struct err *e)
{
	return call_id(c, "POST", "/stop/", id, e);
}

int sv_client_remove(const struct sv_client *c, const char *id, struct err *e)
{
	return call_id(c, "DELETE", "/remove/", id, e);
}

int sv_client_clear(const struct sv_client *c, struct err *e)
{
	return call_void(c, "POST", "/clear", NULL, e);
}

int sv_client_shutdown(const struct sv_client *c, struct err *e)
{
	return call_void(c, "POST", "/shutdown", NULL, e);
}

json_t *sv_client_list(const struct sv_client *c, struct err *e)
{
	json_t *d = call_data(c, "GET", "/list", NULL, e);

	if (d && !json_is_array(d)) {
		json_decref(d);
		return err_set(e, "supervisor /list: expected an array"), NULL;
	}
	return d;
}

json_t *sv_client_info(const struct sv_client *c, const char *id, struct err *e)
{
	_cleanup_free_ char *p = NULL;

	if (!str_charset_ok(id, "_-.") || !*id)
		return err_set(e, "invalid process id"), NULL;
	p = xasprintf("/info/%s", id);
	return call_data(c, "GET", p, NULL, e);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int sv_client_ensure_running(const struct sv_client *c, const char *exe, const char *pid_file,
			     const char *log_file, bool detached, bool auto_start, struct err *e)
{
	pid_t pid;

	if (sv_client_ping(c))
		return 0;
	if (!auto_start)
		return err_set(e, "supervisor is not running at %s", c->sock);
	unlink(c->sock);
	pid = fork();
	if (pid < 0)
		return err_errno(e, "fork");
	if (pid == 0) {
		/* Own session: the supervisor must outlive the VMM. */
		setsid();
		setenv("RUST_LOG", "info,rocket=warn", 1);
		if (detached)
			execl(exe, exe, "--uds", c->sock, "--pid-file", pid_file, "--log-file", log_file,
			      "--detach", (char *)NULL);
		else
			execl(exe, exe, "--uds", c->sock, "--pid-file", pid_file, "--log-file", log_file,
			      (char *)NULL);
		_exit(127);
	}
	for (long i = 1; i <= 10; i++) {
		if (sv_client_ping(c))
			return 0;
		sleep_ms(100 * i);
	}
	return err_set(e, "supervisor did not come up at %s", c->sock);
}
