/*
 * vmm_test_util.h — shared scaffolding of the dstack-vmm integration tests
 * that drive a real `dstack-vmm serve` (and its supervisor) over loopback:
 * start/stop the VMM with a config written in the test directory, JSON pRPC
 * calls, plain GETs, VM info polling, free ports, the end of a test (logs on
 * failure, else the directory removed). Header-only (test code).
 */
#ifndef DSTACK_TESTS_VMM_TEST_UTIL_H
#define DSTACK_TESTS_VMM_TEST_UTIL_H

#include <dirent.h>
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
#include "core/tap.h"
#include "http/client.h"
#include "vmm/util.h"
#include "vmm/workdir.h"

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

/* GET url; *body (may be NULL) gets the reply text, *ctype its Content-Type. */
static inline long vt_fetch(const char *url, long timeout_ms, char **body, char **ctype)
{
	struct http_response r = {0};
	struct http_client_opts o = {.timeout_ms = timeout_ms, .connect_timeout_ms = 2000};
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

/* GET <api><path>. */
static inline long vt_get(const struct vt *t, const char *path, char **body, char **ctype)
{
	_cleanup_free_ char *url = xasprintf("%s%s", t->api, path);

	return vt_fetch(url, 20000, body, ctype);
}

/* A loopback TCP port in [base, base + span) that is free right now; the search starts at a
 * pid-derived offset (plus salt, so two calls can ask for different ports). */
static inline unsigned vt_free_port_in(unsigned base, unsigned span, unsigned salt)
{
	for (unsigned i = 0; i < span; i++) {
		unsigned p = base + ((unsigned)getpid() * 7 + salt + i) % span;
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
	return base;
}

/* A loopback TCP port below the ephemeral range that is free right now. */
static inline unsigned vt_free_port(void)
{
	return vt_free_port_in(26000, 6000, 0);
}

/* One inside the default port-mapping range (1..20000), for host ports of VMs. */
static inline unsigned vt_free_low_port(unsigned salt)
{
	return vt_free_port_in(12000, 8000, salt);
}

/* t for a test: its dstack-vmm, a new directory from tmpl ("/tmp/x-XXXXXX"), an API port
 * free now (returned; t->api its URL). */
static inline unsigned vt_init(struct vt *t, char *vmm_exe, const char *tmpl)
{
	unsigned port = vt_free_port();

	t->vmm_exe = vmm_exe;
	t->dir = xstrdup(tmpl);
	if (!mkdtemp(t->dir)) {
		perror("mkdtemp");
		exit(1);
	}
	t->api = xasprintf("http://127.0.0.1:%u", port);
	return port;
}

/* A placeholder guest image <dir>/img/<name> of version (empty kernel and initrd: the
 * process backend never boots them). */
static inline void vt_fake_image(const struct vt *t, const char *name, const char *version)
{
	_cleanup_free_ char *img = xasprintf("%s/img/%s", t->dir, name);
	_cleanup_free_ char *k = path_join(img, "bzImage"), *i = path_join(img, "initramfs.cpio.gz");
	_cleanup_free_ char *m = path_join(img, "metadata.json");
	_cleanup_free_ char *meta = xasprintf("{\"kernel\":\"bzImage\",\"initrd\":\"initramfs.cpio.gz\","
					      "\"cmdline\":\"x\",\"version\":\"%s\",\"shared_ro\":true}",
					      version);

	mkdir_p(img, 0755, NULL);
	file_write_atomic(k, "", 0, 0644, NULL);
	file_write_atomic(i, "", 0, 0644, NULL);
	file_write_atomic(m, meta, strlen(meta), 0644, NULL);
}

/*
 * <dir>/vmm.toml: the API on 127.0.0.1:port, run_path <dir>/run (created), image.path
 * <dir>/img, then `tables` (more TOML tables: [cvm] ...), then the [supervisor] of sv_exe
 * with its socket, pid file and log in <dir>. `top` (may be "") goes before the tables.
 */
static inline void vt_write_config(const struct vt *t, unsigned port, const char *sv_exe, const char *top,
				   const char *tables)
{
	_cleanup_free_ char *cfg = path_join(t->dir, "vmm.toml"), *run = path_join(t->dir, "run");
	_cleanup_free_ char *toml = xasprintf(
	    "address = \"tcp:127.0.0.1:%u\"\nrun_path = \"%s/run\"\n%s[image]\npath = \"%s/img\"\n%s"
	    "[supervisor]\nexe = \"%s\"\nsock = \"%s/sv.sock\"\npid_file = \"%s/sv.pid\"\n"
	    "log_file = \"%s/sv.log\"\n",
	    port, t->dir, top, t->dir, tables, sv_exe, t->dir, t->dir, t->dir);

	mkdir_p(run, 0755, NULL);
	file_write_atomic(cfg, toml, strlen(toml), 0644, NULL);
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

/* The end of a test: stop the VMM and the supervisor; on failure the VMM's log as
 * diagnostics (the directory is kept), else the test directory removed. */
static inline void vt_finish(struct vt *t)
{
	vt_stop(t);
	vt_stop_supervisor(t);
	if (tap_failed) {
		_cleanup_free_ char *log = path_join(t->dir, "vmm.log");
		_cleanup_free_ uint8_t *d = NULL;

		if (file_read_all(log, 1 << 20, &d, NULL, NULL) == 0)
			diag("vmm.log:\n%s", (char *)d);
	} else if (!getenv("KEEP_TEST_DIR")) {
		vmm_workdir_remove(t->dir, NULL);
	}
}

/* How many VM work directories <dir>/run holds. */
static inline size_t vt_count_workdirs(const struct vt *t)
{
	_cleanup_free_ char *run = path_join(t->dir, "run");
	DIR *d = opendir(run);
	struct dirent *de;
	size_t n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
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
