/*
 * vmm_serve_test.c — dstack-vmm end to end with real processes: the
 * supervisor, `dstack-vmm serve`, and process-backend VMs running a bash app
 * whose HTTP port is mapped to a host port. Covers create → boot progress →
 * curl through the mapping → logs → VMM restart with the VM still running →
 * stop → remove, and bad requests that must leave no state behind (unknown
 * image, duplicate port, port outside the range, compose not JSON, an 11 MiB
 * body, CID pool exhausted).
 *
 * usage: vmm_serve_test <dstack-vmm> <supervisor>
 */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/tap.h"
#include "http/client.h"
#include "simtee/pki.h"
#include "vmm/util.h"

static char *dir, *vmm_exe, *api;
static pid_t vmm_pid;
static unsigned api_port, app_port, host_port;

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* POST /prpc/<m>?json; returns the HTTP status, *out the parsed reply (or NULL). */
static long call(const char *m, const char *body, json_t **out)
{
	_cleanup_free_ char *url = xasprintf("%s/prpc/%s?json", api, m);
	const char *hdr[] = {"Content-Type: application/json", NULL};
	struct http_response r = {0};
	struct http_client_opts o = {.timeout_ms = 20000, .max_body = 32 << 20};
	long st;

	if (out)
		*out = NULL;
	if (http_fetch(&o, "POST", url, hdr, body, body ? strlen(body) : 0, &r, NULL) < 0)
		return -1;
	st = r.status;
	if (out)
		*out = json_loadb((const char *)r.body.data, r.body.len, 0, NULL);
	http_response_free(&r);
	return st;
}

static long get(const char *url, char **body)
{
	struct http_response r = {0};
	struct http_client_opts o = {.timeout_ms = 5000, .connect_timeout_ms = 2000};
	long st;

	if (http_fetch(&o, "GET", url, NULL, NULL, 0, &r, NULL) < 0)
		return -1;
	st = r.status;
	if (body)
		*body = xstrdup((const char *)r.body.data);
	http_response_free(&r);
	return st;
}

static void start_vmm(void)
{
	vmm_pid = fork();
	if (vmm_pid == 0) {
		_cleanup_free_ char *cfg = path_join(dir, "vmm.toml"), *log = path_join(dir, "vmm.log");
		FILE *f = freopen(log, "a", stderr);

		(void)f;
		setenv("XDG_RUNTIME_DIR", dir, 1);
		execl(vmm_exe, vmm_exe, "-c", cfg, "serve", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 300; i++) {
		if (call("Version", NULL, NULL) == 200)
			return;
		sleep_ms(50);
	}
	fprintf(stderr, "dstack-vmm did not come up\n");
}

static void stop_vmm(void)
{
	int st;

	kill(vmm_pid, SIGTERM);
	waitpid(vmm_pid, &st, 0);
}

static size_t count_dirs(void)
{
	_cleanup_free_ char *run = path_join(dir, "run");
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

static json_t *info(const char *id)
{
	_cleanup_free_ char *b = xasprintf("{\"id\":\"%s\"}", id);
	json_t *r = NULL, *i;

	call("GetInfo", b, &r);
	i = json_incref(json_object_get(r, "info"));
	json_decref(r);
	return i;
}

static bool wait_status(const char *id, const char *status, const char *progress, int ms)
{
	for (int w = 0; w < ms; w += 100) {
		_cleanup_json_ json_t *i = info(id);
		const char *s = json_string_value(json_object_get(i, "status"));
		const char *p = json_string_value(json_object_get(i, "boot_progress"));

		if (s && !strcmp(s, status) && (!progress || (p && !strcmp(p, progress))))
			return true;
		sleep_ms(100);
	}
	return false;
}

static char *create_body(const char *name, const char *image, const char *compose, const char *ports,
			 bool stopped)
{
	_cleanup_json_ json_t *j =
	    json_pack("{s:s,s:s,s:s,s:i,s:i,s:i,s:b}", "name", name, "image", image, "compose_file", compose,
		      "vcpu", 1, "memory", 512, "disk_size", 1, "stopped", stopped);

	json_object_set_new(j, "ports", json_loads(ports, 0, NULL));
	return json_dumps(j, JSON_COMPACT);
}

static char *app_compose(void)
{
	_cleanup_json_ json_t *c = NULL;
	_cleanup_free_ char *script =
	    xasprintf("echo hello from app; echo port=$DSTACK_APP_ID; exec python3 -m "
		      "http.server %u --bind 127.0.0.1",
		      app_port);

	c = json_pack("{s:i,s:s,s:s,s:s}", "manifest_version", 2, "name", "web", "runner", "bash",
		      "bash_script", script);
	return json_dumps(c, JSON_COMPACT);
}

/* Expect a 400 whose error mentions `needle`, and no new VM anywhere. */
static void bad_create(const char *what, const char *body, const char *needle)
{
	json_t *r = NULL, *st = NULL;
	size_t before = count_dirs();
	long code = call("CreateVm", body, &r);
	const char *msg = json_string_value(json_object_get(r, "error"));

	is_int(code, 400, "%s: HTTP 400", what);
	ok(msg && strstr(msg, needle), "%s: error says '%s' (got: %s)", what, needle, msg ? msg : "(none)");
	is_int(count_dirs(), before, "%s: no work directory left", what);
	call("Status", "{}", &st);
	is_int(json_integer_value(json_object_get(st, "total")), before, "%s: VM count unchanged", what);
	json_decref(r);
	json_decref(st);
}

int main(int argc, char **argv)
{
	char tmpl[] = "/tmp/vmm-serve-XXXXXX";
	_cleanup_free_ char *compose = NULL, *body = NULL, *ports = NULL, *app_url = NULL, *page = NULL;
	char id[64] = "", id2[64] = "";
	json_t *r = NULL;

	if (argc < 3) {
		fprintf(stderr, "usage: %s dstack-vmm supervisor\n", argv[0]);
		return 2;
	}
	vmm_exe = argv[1];
	dir = xstrdup(mkdtemp(tmpl));
	srand((unsigned)getpid());
	api_port = 21000 + (unsigned)(getpid() % 3000);
	host_port = 14000 + (unsigned)(getpid() % 3000);
	app_port = 25000 + (unsigned)(getpid() % 3000);
	api = xasprintf("http://127.0.0.1:%u", api_port);

	/* an image the process backend accepts (kernel/initrd are never booted) */
	{
		_cleanup_free_ char *img = xasprintf("%s/img/dstack-0.5.3", dir),
				    *run = path_join(dir, "run");
		_cleanup_free_ char *k = path_join(img, "bzImage"), *i = path_join(img, "initramfs.cpio.gz");
		_cleanup_free_ char *m = path_join(img, "metadata.json"), *cfg = path_join(dir, "vmm.toml");
		_cleanup_free_ char *toml = xasprintf(
		    "address = \"tcp:127.0.0.1:%u\"\nrun_path = \"%s/run\"\nnode_name = \"test-node\"\n"
		    "[image]\npath = \"%s/img\"\n"
		    "[cvm]\nbackend = \"process\"\nkms_urls = [\"http://127.0.0.1:8081\"]\n"
		    "gateway_urls = [\"http://127.0.0.1:8082\"]\ncid_start = 30000\ncid_pool_size = 2\n"
		    "[cvm.port_mapping]\nenabled = true\naddress = \"127.0.0.1\"\n"
		    "range = [{protocol=\"tcp\", from=1, to=20000}]\n"
		    "[cvm.auto_restart]\nenabled = false\n"
		    "[cvm.process]\nsimtee_dir = \"%s/simtee\"\n"
		    "[host_api]\nport = 10000\n[key_provider]\nenabled = true\naddress = \"127.0.0.1\"\nport "
		    "= 3443\n"
		    "[supervisor]\nexe = \"%s\"\nsock = \"%s/sv.sock\"\npid_file = \"%s/sv.pid\"\n"
		    "log_file = \"%s/sv.log\"\n",
		    api_port, dir, dir, dir, argv[2], dir, dir, dir);
		_cleanup_free_ char *pki = path_join(dir, "simtee");
		struct err pe = ERR_INIT;

		mkdir_p(img, 0755, NULL);
		mkdir_p(run, 0755, NULL);
		file_write_atomic(k, "", 0, 0644, NULL);
		file_write_atomic(i, "", 0, 0644, NULL);
		const char *meta =
		    "{\"kernel\":\"bzImage\",\"initrd\":\"initramfs.cpio.gz\",\"cmdline\":\"x\","
		    "\"version\":\"0.5.3\",\"shared_ro\":true}";
		file_write_atomic(m, meta, strlen(meta), 0644, NULL);
		file_write_atomic(cfg, toml, strlen(toml), 0644, NULL);
		ok(simtee_pki_init(pki, NULL, &pe) == 0, "simulated-TDX PKI for the guests (%s)",
		   err_str(&pe));
	}
	start_vmm();
	ok(call("Version", NULL, &r) == 200 &&
	       !strcmp(json_string_value(json_object_get(r, "version")), "0.6.0"),
	   "Version answers 0.6.0");
	json_decref(r);

	/* create → boot progress → app reachable through the port mapping */
	compose = app_compose();
	ports = xasprintf("[{\"protocol\":\"tcp\",\"host_port\":%u,\"vm_port\":%u}]", host_port, app_port);
	body = create_body("web", "dstack-0.5.3", compose, ports, false);
	ok(call("CreateVm", body, &r) == 200 && json_string_value(json_object_get(r, "id")),
	   "CreateVm returns an id");
	snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(r, "id")) ?: "");
	json_decref(r);
	ok(wait_status(id, "running", "done", 20000), "VM is running with boot_progress done");
	{
		_cleanup_json_ json_t *i = info(id);
		json_t *ev;
		size_t k;
		bool saw_init = false;

		/* "preparing": the first step dstack-util setup reports */
		json_array_foreach(json_object_get(i, "events"), k, ev) saw_init |=
		    !strcmp(json_string_value(json_object_get(ev, "body")) ?: "", "preparing");
		ok(saw_init, "events carry setup's boot.progress notifications from the host API");
		ok(json_string_value(json_object_get(i, "instance_id")) != NULL,
		   "instance.info notify persisted");
	}
	app_url = xasprintf("http://127.0.0.1:%u/", host_port);
	{
		long st = -1;

		for (int w = 0; w < 50 && st != 200; w++, sleep_ms(100))
			st = get(app_url, NULL);
		is_int(st, 200, "the app's HTTP port answers through host port %u", host_port);
	}
	{
		_cleanup_free_ char *u = xasprintf("%s/logs?id=%s&ch=stdout", api, id), *t = NULL;

		ok(get(u, &t) == 200 && strstr(t, "hello from app"),
		   "GET /logs?ch=stdout has the app output");
	}
	{
		_cleanup_free_ char *u = xasprintf("%s/", api);

		ok(get(u, &page) == 200 && strstr(page, "<title>test-node | dstack-vmm</title>"),
		   "GET / serves the console with the node name in the title");
	}

	/* bad input */
	{
		_cleanup_free_ char *b1 = create_body("x", "no-such-image", compose, "[]", true);
		_cleanup_free_ char *p2 = xasprintf("[{\"protocol\":\"tcp\",\"host_port\":%u,\"vm_port\":1},{"
						    "\"protocol\":\"tcp\",\"host_port\":%u,"
						    "\"vm_port\":2}]",
						    host_port + 1, host_port + 1);
		_cleanup_free_ char *b2 = create_body("x", "dstack-0.5.3", compose, p2, true);
		_cleanup_free_ char *b3 =
		    create_body("x", "dstack-0.5.3", compose,
				"[{\"protocol\":\"tcp\",\"host_port\":30001,\"vm_port\":1}]", true);
		_cleanup_free_ char *b4 = create_body("x", "dstack-0.5.3", "this is not json", "[]", true);
		_cleanup_free_ char *b5 = create_body("x", "dstack-0.5.3", compose, ports, true);

		bad_create("unknown image", b1, "no-such-image");
		bad_create("duplicate port", b2, "duplicate host port");
		bad_create("port outside range", b3, "not allowed");
		bad_create("compose not JSON", b4, "ompose");
		bad_create("port held by another VM", b5, "already used");
	}
	{
		size_t big = 11u << 20;
		char *huge = malloc(big + 1);
		json_t *er = NULL;
		long code;
		const char *msg;

		memset(huge, ' ', big);
		huge[big] = 0;
		memcpy(huge, "{\"name\":\"", 9);
		code = call("CreateVm", huge, &er);
		free(huge);
		msg = json_string_value(json_object_get(er, "error"));
		is_int(code, 400, "11 MiB body: HTTP 400 (the prpc error status of §2)");
		ok(msg && strstr(msg, "payload too large"),
		   "11 MiB body: JSON {\"error\": \"payload too large...\"} (got: %s)", msg ? msg : "(none)");
		json_decref(er);
		is_int(count_dirs(), 1, "11 MiB body: no VM created");
		ok(call("Status", "{}", &er) == 200 && json_integer_value(json_object_get(er, "total")) == 1,
		   "11 MiB body: the server still answers and the VM count is unchanged");
		json_decref(er);
	}
	/* CID pool of 2: one more VM fits, the third does not, and nothing leaks */
	{
		_cleanup_free_ char *b = create_body("second", "dstack-0.5.3", compose, "[]", true);

		ok(call("CreateVm", b, &r) == 200, "second VM fits in the CID pool");
		snprintf(id2, sizeof(id2), "%s", json_string_value(json_object_get(r, "id")) ?: "");
		json_decref(r);
		bad_create("CID pool exhausted", b, "CID pool exhausted");
		_cleanup_free_ char *rm = xasprintf("{\"id\":\"%s\"}", id2);
		is_int(call("RemoveVm", rm, NULL), 200, "RemoveVm of the stopped VM");
		for (int w = 0; w < 100 && count_dirs() != 1; w++)
			sleep_ms(100);
		is_int(count_dirs(), 1, "removed VM's work directory is gone");
		ok(call("CreateVm", b, &r) == 200, "its CID is free again: a new VM fits");
		snprintf(id2, sizeof(id2), "%s", json_string_value(json_object_get(r, "id")) ?: "");
		json_decref(r);
		free(rm);
		rm = xasprintf("{\"id\":\"%s\"}", id2);
		call("RemoveVm", rm, NULL);
		for (int w = 0; w < 100 && count_dirs() != 1; w++)
			sleep_ms(100);
	}

	/* VMM restart: the VM keeps running and is listed again */
	stop_vmm();
	is_int(get(app_url, NULL), 200, "app still answers while the VMM is down");
	start_vmm();
	ok(wait_status(id, "running", NULL, 5000), "after the VMM restart the VM is listed as running");
	is_int(get(app_url, NULL), 200, "app still answers after the VMM restart");
	{
		_cleanup_free_ char *rb = xasprintf("{\"id\":\"%s\"}", id);

		/* the legacy prefix, on the stop path */
		is_int(call("Teepod.StopVm", rb, NULL), 200, "Teepod.StopVm accepted");
		ok(wait_status(id, "stopped", NULL, 10000), "VM is stopped");
		ok(get(app_url, NULL) != 200, "app no longer answers after stop");
		is_int(call("RemoveVm", rb, NULL), 200, "RemoveVm");
		for (int w = 0; w < 100 && count_dirs() != 0; w++)
			sleep_ms(100);
		is_int(count_dirs(), 0, "work directory removed");
		call("Status", "{}", &r);
		is_int(json_integer_value(json_object_get(r, "total")), 0, "no VMs left");
		json_decref(r);
	}
	stop_vmm();
	{
		_cleanup_free_ char *pidf = path_join(dir, "sv.pid");
		uint8_t *d = NULL;

		if (file_read_all(pidf, 64, &d, NULL, NULL) == 0) {
			kill((pid_t)atoi((char *)d), SIGTERM);
			free(d);
		}
	}
	return tap_done();
}
