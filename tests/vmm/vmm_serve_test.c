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
#include "vmm_test_util.h"

static struct vt vmm;
static unsigned app_port, host_port;

/* GET url (the app through its host port, or the VMM's own pages); *body its text. */
static long get(const char *url, char **body)
{
	return vt_fetch(url, 5000, body, NULL);
}

static bool wait_status(const char *id, const char *status, const char *progress, int ms)
{
	for (int w = 0; w < ms; w += 100) {
		_cleanup_json_ json_t *i = vt_info(&vmm, id);
		const char *s = json_string_value(json_object_get(i, "status"));
		const char *p = json_string_value(json_object_get(i, "boot_progress"));

		if (s && !strcmp(s, status) && (!progress || (p && !strcmp(p, progress))))
			return true;
		vt_sleep_ms(100);
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
	size_t before = vt_count_workdirs(&vmm);
	long code = vt_call(&vmm, "CreateVm", body, &r);
	const char *msg = json_string_value(json_object_get(r, "error"));

	is_int(code, 400, "%s: HTTP 400", what);
	ok(msg && strstr(msg, needle), "%s: error says '%s' (got: %s)", what, needle, msg ? msg : "(none)");
	is_int(vt_count_workdirs(&vmm), before, "%s: no work directory left", what);
	vt_call(&vmm, "Status", "{}", &st);
	is_int(json_integer_value(json_object_get(st, "total")), before, "%s: VM count unchanged", what);
	json_decref(r);
	json_decref(st);
}

int main(int argc, char **argv)
{
	char tmpl[] = "/tmp/vmm-serve-XXXXXX";
	_cleanup_free_ char *compose = NULL, *body = NULL, *ports = NULL, *app_url = NULL, *page = NULL;
	char id[64] = "", id2[64] = "";
	unsigned api_port;
	json_t *r = NULL;

	if (argc < 3) {
		fprintf(stderr, "usage: %s dstack-vmm supervisor\n", argv[0]);
		return 2;
	}
	api_port = vt_init(&vmm, argv[1], tmpl);
	srand((unsigned)getpid());
	host_port = vt_free_low_port(0);
	app_port = vt_free_port_in(20000, 6000, 0);

	/* an image the process backend accepts (kernel/initrd are never booted) */
	{
		_cleanup_free_ char *tables = xasprintf(
		    "[cvm]\nbackend = \"process\"\nkms_urls = [\"http://127.0.0.1:8081\"]\n"
		    "gateway_urls = [\"http://127.0.0.1:8082\"]\ncid_start = 30000\ncid_pool_size = 2\n"
		    "[cvm.port_mapping]\nenabled = true\naddress = \"127.0.0.1\"\n"
		    "range = [{protocol=\"tcp\", from=1, to=20000}]\n"
		    "[cvm.auto_restart]\nenabled = false\n"
		    "[cvm.process]\nsimtee_dir = \"%s/simtee\"\n"
		    "[host_api]\nport = 10000\n[key_provider]\nenabled = true\naddress = \"127.0.0.1\"\nport "
		    "= 3443\n",
		    vmm.dir);
		_cleanup_free_ char *pki = path_join(vmm.dir, "simtee");
		struct err pe = ERR_INIT;

		vt_fake_image(&vmm, "dstack-0.5.3", "0.5.3");
		vt_write_config(&vmm, api_port, argv[2], "node_name = \"test-node\"\n", tables);
		ok(simtee_pki_init(pki, NULL, &pe) == 0, "simulated-TDX PKI for the guests (%s)",
		   err_str(&pe));
	}
	ok(vt_start(&vmm), "dstack-vmm serve is up");
	ok(vt_call(&vmm, "Version", NULL, &r) == 200 &&
	       !strcmp(json_string_value(json_object_get(r, "version")), "0.6.0"),
	   "Version answers 0.6.0");
	json_decref(r);

	/* create → boot progress → app reachable through the port mapping */
	compose = app_compose();
	ports = xasprintf("[{\"protocol\":\"tcp\",\"host_port\":%u,\"vm_port\":%u}]", host_port, app_port);
	body = create_body("web", "dstack-0.5.3", compose, ports, false);
	ok(vt_call(&vmm, "CreateVm", body, &r) == 200 && json_string_value(json_object_get(r, "id")),
	   "CreateVm returns an id");
	snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(r, "id")) ?: "");
	json_decref(r);
	ok(wait_status(id, "running", "done", 20000), "VM is running with boot_progress done");
	{
		_cleanup_json_ json_t *i = vt_info(&vmm, id);
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

		for (int w = 0; w < 50 && st != 200; w++, vt_sleep_ms(100))
			st = get(app_url, NULL);
		is_int(st, 200, "the app's HTTP port answers through host port %u", host_port);
	}
	{
		_cleanup_free_ char *u = xasprintf("%s/logs?id=%s&ch=stdout", vmm.api, id), *t = NULL;

		ok(get(u, &t) == 200 && strstr(t, "hello from app"),
		   "GET /logs?ch=stdout has the app output");
	}
	{
		_cleanup_free_ char *u = xasprintf("%s/", vmm.api);

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
		code = vt_call(&vmm, "CreateVm", huge, &er);
		free(huge);
		msg = json_string_value(json_object_get(er, "error"));
		is_int(code, 400, "11 MiB body: HTTP 400 (the prpc error status of §2)");
		ok(msg && strstr(msg, "payload too large"),
		   "11 MiB body: JSON {\"error\": \"payload too large...\"} (got: %s)", msg ? msg : "(none)");
		json_decref(er);
		is_int(vt_count_workdirs(&vmm), 1, "11 MiB body: no VM created");
		ok(vt_call(&vmm, "Status", "{}", &er) == 200 &&
		       json_integer_value(json_object_get(er, "total")) == 1,
		   "11 MiB body: the server still answers and the VM count is unchanged");
		json_decref(er);
	}
	/* CID pool of 2: one more VM fits, the third does not, and nothing leaks */
	{
		_cleanup_free_ char *b = create_body("second", "dstack-0.5.3", compose, "[]", true);

		ok(vt_call(&vmm, "CreateVm", b, &r) == 200, "second VM fits in the CID pool");
		snprintf(id2, sizeof(id2), "%s", json_string_value(json_object_get(r, "id")) ?: "");
		json_decref(r);
		bad_create("CID pool exhausted", b, "CID pool exhausted");
		_cleanup_free_ char *rm = xasprintf("{\"id\":\"%s\"}", id2);
		is_int(vt_call(&vmm, "RemoveVm", rm, NULL), 200, "RemoveVm of the stopped VM");
		for (int w = 0; w < 100 && vt_count_workdirs(&vmm) != 1; w++)
			vt_sleep_ms(100);
		is_int(vt_count_workdirs(&vmm), 1, "removed VM's work directory is gone");
		ok(vt_call(&vmm, "CreateVm", b, &r) == 200, "its CID is free again: a new VM fits");
		snprintf(id2, sizeof(id2), "%s", json_string_value(json_object_get(r, "id")) ?: "");
		json_decref(r);
		free(rm);
		rm = xasprintf("{\"id\":\"%s\"}", id2);
		vt_call(&vmm, "RemoveVm", rm, NULL);
		for (int w = 0; w < 100 && vt_count_workdirs(&vmm) != 1; w++)
			vt_sleep_ms(100);
	}

	/* VMM restart: the VM keeps running and is listed again */
	vt_stop(&vmm);
	is_int(get(app_url, NULL), 200, "app still answers while the VMM is down");
	ok(vt_start(&vmm), "dstack-vmm serve is up again");
	ok(wait_status(id, "running", NULL, 5000), "after the VMM restart the VM is listed as running");
	is_int(get(app_url, NULL), 200, "app still answers after the VMM restart");
	{
		_cleanup_free_ char *rb = xasprintf("{\"id\":\"%s\"}", id);

		/* the legacy prefix, on the stop path */
		is_int(vt_call(&vmm, "Teepod.StopVm", rb, NULL), 200, "Teepod.StopVm accepted");
		ok(wait_status(id, "stopped", NULL, 10000), "VM is stopped");
		ok(get(app_url, NULL) != 200, "app no longer answers after stop");
		is_int(vt_call(&vmm, "RemoveVm", rb, NULL), 200, "RemoveVm");
		for (int w = 0; w < 100 && vt_count_workdirs(&vmm) != 0; w++)
			vt_sleep_ms(100);
		is_int(vt_count_workdirs(&vmm), 0, "work directory removed");
		vt_call(&vmm, "Status", "{}", &r);
		is_int(json_integer_value(json_object_get(r, "total")), 0, "no VMs left");
		json_decref(r);
	}
	vt_finish(&vmm);
	free(vmm.dir);
	free(vmm.api);
	return tap_done();
}
