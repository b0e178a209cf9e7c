/*
 * vmm_test_util.h — shared scaffolding of the dstack-vmm integration tests
 * that drive a real `dstack-vmm serve` (and its supervisor) over loopback:
 * start/stop the VMM with a config written in the test directory, JSON pRPC
 * calls, plain GETs, VM info polling. Header-only (test code).
 */
#ifndef DSTACK_TESTS_VMM_TEST_UTIL_H
#define DSTACK_TESTS_VMM_TEST_UTIL_H

#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "core/cleanup.h"
#include "core/fileio.h"
#include "http/client.h"
#include "vmm/util.h"

struct vt {
	char *dir;     /* test directory: vmm.toml, vmm.log, run/, img/ */
	char *vmm_exe; /* dstack-vmm */
	char *api;     /* "http://127.0.0.1:<port>" */
	pid_t pid;
};

static inline void vt_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* POST <api><path> with a JSON body (path like "/prpc/Status?json"); status, *out parsed reply. */
static inline long vt_post(const struct vt *t, const char *path, const char *body, json_t **out,
			   long timeout_ms)
{
	_cleanup_free_ char *url = xasprintf("%s%s", t->api, path);
	const char *hdr[] = {"Content-Type: application/json", NULL};
	struct http_response r = {0};
	struct http_client_opts o = {.timeout_ms = timeout_ms ? timeout_ms : 30000, .max_body = 32 << 20};
	long st;

	if (out)
		*out = NULL;
	if (http_fetch(&o, "POST", url, hdr, body, body ? strlen(body) : 0, &r, NULL) < 0)
		return -1;
	st = r.status;
	if (out)
		*out = json_loadb((const char *)r.body.data, r.body.len, JSON_DECODE_ANY, NULL);
	http_response_free(&r);
	return st;
}

/* POST /prpc/<m>?json. */
static inline long vt_call(const struct vt *t, const char *m, const char *body, json_t **out)
{
	_cleanup_free_ char *p = xasprintf("/prpc/%s?json", m);

	return vt_post(t, p, body, out, 0);
}

/* GET <api><path>; *body (may be NULL) gets the reply text, *ctype its Content-Type. */
static inline long vt_get(const struct vt *t, const char *path, char **body, char **ctype)
{
	_cleanup_free_ char *url = xasprintf("%s%s", t->api, path);
	struct http_response r = {0};
	struct http_client_opts o = {.timeout_ms = 20000, .connect_timeout_ms = 2000};
	long st;

	if (http_fetch(&o, "GET", url, NULL, NULL, 0, &r, NULL) < 0)
		return -1;
	st = r.status;
	if (body)
		*body = xstrdup((const char *)r.body.data);
	if (ctype)
		*ctype = http_response_header(&r, "Content-Type");
	http_response_free(&r);
	return st;
}

/* A loopback TCP port below the ephemeral range that is free right now. */
static inline unsigned vt_free_port(void)
{
	unsigned start = 26000 + (unsigned)(getpid() % 6000);

	for (unsigned i = 0; i < 6000; i++) {
		unsigned p = 26000 + (start - 26000 + i) % 6000;
		struct sockaddr_in sa = {.sin_family = AF_INET,
					 .sin_port = htons((uint16_t)p),
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
		bool free_now;

		if (fd < 0)
			break;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		free_now = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		close(fd);
		if (free_now)
			return p;
	}
	return 26000;
}

static inline bool vt_start(struct vt *t)
{
	t->pid = fork();
	if (t->pid == 0) {
		_cleanup_free_ char *cfg = path_join(t->dir, "vmm.toml"), *log = path_join(t->dir, "vmm.log");
		FILE *f = freopen(log, "a", stderr);

		(void)f;
		setenv("XDG_RUNTIME_DIR", t->dir, 1);
		execl(t->vmm_exe, t->vmm_exe, "-c", cfg, "serve", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 400; i++) {
		int st;

		if (vt_call(t, "Version", NULL, NULL) == 200)
			return true;
		if (waitpid(t->pid, &st, WNOHANG) == t->pid) {
			fprintf(stderr, "dstack-vmm exited (see %s/vmm.log)\n", t->dir);
			t->pid = 0;
			return false;
		}
		vt_sleep_ms(50);
	}
	fprintf(stderr, "dstack-vmm did not come up\n");
	return false;
}

static inline void vt_stop(struct vt *t)
{
	int st;

	if (t->pid <= 0)
		return;
	kill(t->pid, SIGTERM);
	waitpid(t->pid, &st, 0);
	t->pid = 0;
}

/* SIGTERM the supervisor named by <dir>/sv.pid (it stops every process it owns). */
static inline void vt_stop_supervisor(const struct vt *t)
{
	_cleanup_free_ char *pidf = path_join(t->dir, "sv.pid");
	uint8_t *d = NULL;

	if (file_read_all(pidf, 64, &d, NULL, NULL) == 0) {
		kill((pid_t)atoi((char *)d), SIGTERM);
		free(d);
	}
}

/* GetInfo(id).info (new reference) or NULL. */
static inline json_t *vt_info(const struct vt *t, const char *id)
{
	_cleanup_free_ char *b = xasprintf("{\"id\":\"%s\"}", id);
	json_t *r = NULL, *i;

	vt_call(t, "GetInfo", b, &r);
	i = json_incref(json_object_get(r, "info"));
	json_decref(r);
	return i;
}

static inline bool vt_wait_status(const struct vt *t, const char *id, const char *status, int ms)
{
	for (int w = 0; w < ms; w += 200) {
		_cleanup_json_ json_t *i = vt_info(t, id);
		const char *s = json_string_value(json_object_get(i, "status"));

		if (s && !strcmp(s, status))
			return true;
		vt_sleep_ms(200);
	}
	return false;
}

/* The supervisor's pid for process `id` (SvList), or 0. */
static inline pid_t vt_sv_pid(const struct vt *t, const char *id)
{
	_cleanup_json_ json_t *r = NULL;
	json_t *p;
	size_t i;

	vt_call(t, "SvList", NULL, &r);
	json_array_foreach(json_object_get(r, "processes"), i, p)
	{
		if (!strcmp(json_string_value(json_object_get(p, "id")) ?: "", id))
			return (pid_t)json_integer_value(json_object_get(p, "pid"));
	}
	return 0;
}

static inline bool vt_pid_alive(pid_t pid)
{
	char path[64], state = 0;
	FILE *f;

	if (pid <= 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	if (fscanf(f, "%*d %*s %c", &state) != 1)
		state = 0;
	fclose(f);
	return state && state != 'Z';
}

#endif
