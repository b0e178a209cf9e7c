/*
 * vmm_rpc_test.c — the Vmm RPC methods the lifecycle test (vmm_serve) does
 * not drive, against a real `dstack-vmm serve`, its supervisor and
 * process-backend VMs that boot the real guest flow:
 *
 *   - method names: bare and `Teepod.` work, `Vmm.` does not (§17);
 *   - docker-compose apps refused at CreateVm when no container runtime
 *     answers: a `docker` client whose daemon is down, one that hangs (the
 *     other RPCs answer meanwhile: the probe is off the event loop), and
 *     one that answers (accepted); nothing is left behind, and the host port
 *     and CID of a failed create (refused, or failed at its first start) are
 *     free for the next VM;
 *   - StartVm of a stopped VM, SvStop (the VM-aware stop), SvRemove;
 *   - ResizeVm and its validation, UpdateVm under its own name;
 *   - DeleteImage, ReloadVms, ListGpus (a stand-in `lspci`).
 *
 * Fakes: PATH starts with a directory holding `docker` and `podman`
 * scripts (whatever the host has, the test decides what they answer) and
 * `lspci` printing two H100s.
 *
 * usage: vmm_rpc_test <dstack-vmm> <supervisor>
 */
#include <dirent.h>
#include <pthread.h>
#include <sys/stat.h>

#include "core/hex.h"
#include "core/tap.h"
#include "simtee/pki.h"
#include "vmm_test_util.h"

static struct vt t;
static char *fakebin;

static const char *err_of(const json_t *j)
{
	return json_string_value(json_object_get(j, "error")) ?: "";
}

static long vm_total(void)
{
	_cleanup_json_ json_t *r = NULL;

	if (vt_call(&t, "Status", "{}", &r) != 200)
		return -1;
	return (long)json_integer_value(json_object_get(r, "total"));
}

static void write_exec(const char *name, const char *text)
{
	_cleanup_free_ char *p = path_join(fakebin, name);

	file_write_atomic(p, text, strlen(text), 0755, NULL);
}

/* What the fake `docker info` does next: "down", "hang" or "up". */
static void docker_mode(const char *mode)
{
	_cleanup_free_ char *p = path_join(fakebin, "docker.mode");

	file_write_atomic(p, mode, strlen(mode), 0644, NULL);
}

static char *compose_json(const char *runner, const char *script)
{
	_cleanup_json_ json_t *c = json_pack("{s:i,s:s}", "manifest_version", 2, "name", "app");

	if (runner)
		json_object_set_new(c, "runner", json_string(runner));
	if (script)
		json_object_set_new(c, "bash_script", json_string(script));
	else
		json_object_set_new(c, "docker_compose_file",
				    json_string("services:\n  web:\n    image: nginx\n"));
	return json_dumps(c, JSON_COMPACT);
}

static char *create_body(const char *name, const char *image, const char *compose, unsigned host_port,
			 unsigned vm_port, bool stopped)
{
	_cleanup_json_ json_t *j =
	    json_pack("{s:s,s:s,s:s,s:i,s:i,s:i,s:b}", "name", name, "image", image, "compose_file", compose,
		      "vcpu", 1, "memory", 256, "disk_size", 1, "stopped", stopped);

	if (host_port)
		json_object_set_new(j, "ports",
				    json_pack("[{s:s,s:i,s:i}]", "protocol", "tcp", "host_port",
					      (int)host_port, "vm_port", (int)vm_port));
	return json_dumps(j, JSON_COMPACT);
}

/* CreateVm; the new id (caller frees) or NULL, *out the reply. */
static char *create(const char *body, json_t **out)
{
	json_t *r = NULL;
	char *id = NULL;

	if (vt_call(&t, "CreateVm", body, &r) == 200 && json_string_value(json_object_get(r, "id")))
		id = xstrdup(json_string_value(json_object_get(r, "id")));
	if (out)
		*out = r;
	else
		json_decref(r);
	return id;
}

/* A CreateVm on its own thread: the reply, and how long it took. */
struct create_thread {
	const char *body;
	char *id;
	json_t *reply;
	long secs;
};

static void *create_in_thread(void *arg)
{
	struct create_thread *ct = arg;
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	ct->id = create(ct->body, &ct->reply);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ct->secs = t1.tv_sec - t0.tv_sec;
	return NULL;
}

/* call m with body; expect 400 whose error contains needle. */
static void refused(const char *what, const char *m, const char *body, const char *needle)
{
	_cleanup_json_ json_t *r = NULL;
	long st = vt_call(&t, m, body, &r);

	ok(st == 400 && strstr(err_of(r), needle), "%s: 400 '%s' (HTTP %ld: %s)", what, needle, st,
	   err_of(r));
}

static void remove_and_wait(const char *id)
{
	_cleanup_free_ char *b = xasprintf("{\"id\":\"%s\"}", id);
	_cleanup_free_ char *wd = xasprintf("%s/run/%s", t.dir, id);

	vt_call(&t, "RemoveVm", b, NULL);
	for (int w = 0; w < 150 && file_exists(wd); w++)
		vt_sleep_ms(100);
}

static const json_t *cfg_of(const json_t *info)
{
	return json_object_get(info, "configuration");
}

static void setup(const char *sv_exe, unsigned api_port)
{
	_cleanup_free_ char *pki = path_join(t.dir, "simtee");
	_cleanup_free_ char *tables =
	    xasprintf("[cvm]\nbackend = \"process\"\ncid_start = 36000\ncid_pool_size = 3\n"
		      "[cvm.port_mapping]\nenabled = true\naddress = \"127.0.0.1\"\n"
		      "range = [{protocol=\"tcp\", from=1, to=20000}]\n"
		      "[cvm.auto_restart]\nenabled = false\n"
		      "[cvm.gpu]\nenabled = true\n"
		      "[cvm.process]\nsimtee_dir = \"%s\"\n",
		      pki);
	static const char *const images[][2] = {
	    {"dstack-0.5.3", "0.5.3"}, {"dstack-0.4.0", "0.4.0"}, {"dstack-spare", "0.5.3"}};
	struct err pe = ERR_INIT;

	for (size_t i = 0; i < ARRAY_SIZE(images); i++)
		vt_fake_image(&t, images[i][0], images[i][1]);
	vt_write_config(&t, api_port, sv_exe, "", tables);
	ok(simtee_pki_init(pki, NULL, &pe) == 0, "simulated-TDX PKI for the guests (%s)", err_str(&pe));

	/* the fakes, first on PATH for dstack-vmm and the supervisor it starts */
	fakebin = path_join(t.dir, "fakebin");
	mkdir_p(fakebin, 0755, NULL);
	{
		_cleanup_free_ char *docker =
		    xasprintf("#!/bin/sh\n"
			      "# stand-in docker client: `info` answers as %s/docker.mode says\n"
			      "echo $$ >> '%s/docker.pids'\n"
			      "case \"$(cat '%s/docker.mode')\" in\n"
			      "up) echo 'Server Version: 99.0'; exit 0;;\n"
			      "hang) exec sleep 120;;\n"
			      "*) echo 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
			      "Is the docker "
			      "daemon running?' >&2; exit 1;;\n"
			      "esac\n",
			      fakebin, fakebin, fakebin);

		write_exec("docker", docker);
	}
	write_exec("podman", "#!/bin/sh\necho 'Error: unable to connect to Podman socket' >&2\nexit 125\n");
	write_exec(
	    "lspci",
	    "#!/bin/sh\ncat <<'EOF'\n"
	    "18:00.0 3D controller [0302]: NVIDIA Corporation GH100 [H100 SXM5 80GB] [10de:2335] (rev a1)\n"
	    "\tControl: I/O- Mem+ BusMaster- SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR- "
	    "FastB2B- DisINTx+\n\n"
	    "2a:00.0 3D controller [0302]: NVIDIA Corporation GH100 [H100 SXM5 80GB] [10de:2335] (rev a1)\n"
	    "\tControl: I/O- Mem+ BusMaster+ SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR- "
	    "FastB2B- DisINTx+\nEOF\n");
	docker_mode("down");
	{
		const char *path = getenv("PATH");
		_cleanup_free_ char *np = xasprintf("%s:%s", fakebin, path ? path : "/usr/bin:/bin");

		setenv("PATH", np, 1);
	}
}

static void test_method_names(void)
{
	_cleanup_json_ json_t *a = NULL, *b = NULL, *c = NULL;

	is_int(vt_call(&t, "Version", NULL, &a), 200, "bare Version: 200");
	ok(vt_call(&t, "Teepod.Version", NULL, &b) == 200 && json_equal(a, b),
	   "legacy Teepod.Version: 200, same reply");
	is_int(vt_call(&t, "Vmm.Version", NULL, &c), 400, "Vmm.Version: 400 (§17: only Teepod. is stripped)");
	is_str(err_of(c), "Service not found: Vmm.Version", "Vmm.Version: Service not found: Vmm.Version");
}

/* §1/issue: docker-compose apps need a container runtime that answers. */
static void test_container_runtime(unsigned port_a)
{
	_cleanup_free_ char *dc = compose_json("docker-compose", NULL),
			    *other = compose_json("nerdctl-compose", NULL);
	_cleanup_free_ char *nobash = compose_json("bash", NULL);
	_cleanup_free_ char *b3 = create_body("nc", "dstack-0.5.3", other, port_a, 80, true);
	_cleanup_free_ char *b4 = create_body("nb", "dstack-0.5.3", nobash, port_a, 80, true);
	_cleanup_free_ char *b1 = create_body("dc", "dstack-0.5.3", dc, port_a, 80, false);
	_cleanup_free_ char *b2 = create_body("dc", "dstack-0.5.3", dc, port_a, 80, true);
	_cleanup_free_ char *pids = path_join(fakebin, "docker.pids");
	json_t *r = NULL;
	char *id;

	docker_mode("down");
	unlink(pids);
	id = create(b1, &r);
	ok(!id, "docker client without a daemon: CreateVm refused");
	ok(strstr(err_of(r), "container runtime") &&
	       strstr(err_of(r), "Cannot connect to the Docker daemon") && strstr(err_of(r), "podman"),
	   "the error says why: no usable runtime, docker's own message, podman too (%s)", err_of(r));
	ok(file_exists(pids), "the refusal came from running `docker info`, not from PATH alone");
	json_decref(r);
	free(id);
	id = create(b2, &r);
	ok(!id && strstr(err_of(r), "container runtime"), "a stopped docker-compose VM is refused too (%s)",
	   err_of(r));
	json_decref(r);
	free(id);
	id = create(b3, &r);
	ok(!id && strstr(err_of(r), "not supported by the process backend"),
	   "a runner the process backend cannot run is refused at CreateVm (%s)", err_of(r));
	json_decref(r);
	free(id);
	id = create(b4, &r);
	ok(!id && strstr(err_of(r), "bash_script"), "runner bash without bash_script is refused (%s)",
	   err_of(r));
	json_decref(r);
	free(id);
	is_int(vt_count_workdirs(&t), 0, "refused: no work directory");
	is_int(vm_total(), 0, "refused: no VM listed");

	/* a client that never answers: killed at the deadline; the server keeps answering meanwhile */
	{
		struct create_thread ct = {.body = b1};
		_cleanup_free_ uint8_t *pidtext = NULL;
		long secs, version_ms = -1, version_status = -1;
		pthread_t th;

		docker_mode("hang");
		unlink(pids);
		if (!ok(pthread_create(&th, NULL, create_in_thread, &ct) == 0, "CreateVm in flight"))
			return;
		for (int i = 0; i < 100 && !file_exists(pids); i++)
			vt_sleep_ms(50);
		if (file_exists(pids)) {
			struct timespec v0, v1;

			vt_sleep_ms(200); /* well inside the 5 s probe of the hung client */
			clock_gettime(CLOCK_MONOTONIC, &v0);
			version_status = vt_post(&t, "/prpc/Version?json", "{}", NULL, 4000);
			clock_gettime(CLOCK_MONOTONIC, &v1);
			version_ms = (v1.tv_sec - v0.tv_sec) * 1000 + (v1.tv_nsec - v0.tv_nsec) / 1000000;
		}
		ok(version_status == 200 && version_ms >= 0 && version_ms < 2000,
		   "while the hung `docker info` is probed, Version answers promptly (HTTP %ld in %ld ms)",
		   version_status, version_ms);
		pthread_join(th, NULL);
		id = ct.id;
		r = ct.reply;
		secs = ct.secs;
		ok(!id && strstr(err_of(r), "did not answer"), "a hanging `docker info`: refused (%s)",
		   err_of(r));
		ok(secs >= 4 && secs <= 15, "after the probe deadline (%ld s)", secs);
		if (file_read_all(pids, 64, &pidtext, NULL, NULL) == 0)
			ok(!vt_pid_alive((pid_t)atoi((char *)pidtext)), "the hanging client was killed");
		else
			ok(false, "the hanging client was killed (no pid recorded)");
		json_decref(r);
		free(id);
		is_int(vt_count_workdirs(&t), 0, "hang: no work directory");
	}

	/* a runtime that answers: the same request is accepted */
	docker_mode("up");
	id = create(b2, &r);
	ok(id != NULL, "docker info answers: the docker-compose VM is created (%s)", err_of(r));
	json_decref(r);
	if (id) {
		_cleanup_json_ json_t *i = vt_info(&t, id);
		const json_t *ports = json_object_get(cfg_of(i), "ports");

		is_int(json_integer_value(json_object_get(json_array_get(ports, 0), "host_port")), port_a,
		       "it holds the host port the refused requests asked for");
		remove_and_wait(id);
		free(id);
	}
	docker_mode("down");
}

int main(int argc, char **argv)
{
	char tmpl[] = "/tmp/vmm-rpc-XXXXXX";
	unsigned port_a, port_b, app_port;
	_cleanup_free_ char *web = NULL, *webb = NULL, *wd = NULL;
	json_t *r = NULL;

	if (argc < 3) {
		fprintf(stderr, "usage: %s dstack-vmm supervisor\n", argv[0]);
		return 2;
	}
	setup(argv[2], vt_init(&t, argv[1], tmpl));
	port_a = vt_free_low_port(0);
	port_b = vt_free_low_port(1000);
	app_port = vt_free_port(); /* inside the VM's own network namespace */
	if (!ok(vt_start(&t), "dstack-vmm serve is up"))
		return tap_done();

	test_method_names();
	test_container_runtime(port_a);

	/* a VM whose first start fails (image too old to boot): its port and CID are freed */
	{
		_cleanup_free_ char *bash = compose_json("bash", "exec sleep 600");
		_cleanup_free_ char *b = create_body("old", "dstack-0.4.0", bash, port_b, 80, false);
		char *id;

		id = create(b, &r);
		ok(!id && strstr(err_of(r), "0.5.0"), "CreateVm that fails at its first start: refused (%s)",
		   err_of(r));
		json_decref(r);
		free(id);
		is_int(vt_count_workdirs(&t), 0, "failed start: the work directory is deleted");
		is_int(vm_total(), 0, "failed start: no VM listed");
	}

	/* the ports of both failed creates are free: one VM per port, then the CID pool (3) has one left */
	{
		_cleanup_free_ char *script =
		    xasprintf("echo rpc-app; exec python3 -m http.server %u --bind 127.0.0.1", app_port);
		_cleanup_free_ char *bash = compose_json("bash", script);
		_cleanup_free_ char *ba = create_body("web", "dstack-0.5.3", bash, port_a, app_port, true);
		_cleanup_free_ char *bb = create_body("webb", "dstack-0.5.3", bash, port_b, app_port, true);

		web = create(ba, &r);
		ok(web != NULL, "host port %u of the refused create is free for a new VM (%s)", port_a,
		   err_of(r));
		json_decref(r);
		webb = create(bb, &r);
		ok(webb != NULL, "host port %u of the failed start is free for a new VM (%s)", port_b,
		   err_of(r));
		json_decref(r);
	}
	if (!web || !webb)
		goto out;
	wd = xasprintf("%s/run/%s", t.dir, web);

	/* StartVm on the process backend */
	{
		_cleanup_free_ char *b = xasprintf("{\"id\":\"%s\"}", web);
		struct vt app = {.api = xasprintf("http://127.0.0.1:%u", port_a)};
		_cleanup_json_ json_t *i = vt_info(&t, web);
		long st = -1;

		is_str(json_string_value(json_object_get(i, "status")), "stopped",
		       "created with stopped: stopped");
		is_int(vt_call(&t, "StartVm", b, NULL), 200, "StartVm: 200");
		ok(vt_wait_status(&t, web, "running", 20000), "StartVm: the VM runs");
		for (int w = 0; w < 150; w++) {
			_cleanup_json_ json_t *j = vt_info(&t, web);
			const char *p = json_string_value(json_object_get(j, "boot_progress"));

			if (p && !strcmp(p, "done"))
				break;
			vt_sleep_ms(100);
		}
		{
			_cleanup_json_ json_t *j = vt_info(&t, web);

			is_str(json_string_value(json_object_get(j, "boot_progress")), "done",
			       "StartVm: the guest booted (boot_progress done)");
		}
		for (int w = 0; w < 100 && st != 200; w++, vt_sleep_ms(100))
			st = vt_get(&app, "/", NULL, NULL);
		is_int(st, 200, "StartVm: the app answers through host port %u", port_a);
		refused("StartVm of an unknown VM", "StartVm", "{\"id\":\"no-such-vm\"}", "VM not found");

		/* ResizeVm validation (running VM first) */
		_cleanup_free_ char *rz = xasprintf("{\"id\":\"%s\",\"vcpu\":2}", web);
		_cleanup_free_ char *rz0 = xasprintf("{\"id\":\"%s\"}", web);
		_cleanup_free_ char *rzv = xasprintf("{\"id\":\"%s\",\"vcpu\":0}", web);
		_cleanup_free_ char *rzm = xasprintf("{\"id\":\"%s\",\"memory\":0}", web);
		_cleanup_free_ char *rzd = xasprintf("{\"id\":\"%s\",\"disk_size\":0}", web);
		_cleanup_free_ char *rzi = xasprintf("{\"id\":\"%s\",\"image\":\"\"}", web);

		refused("ResizeVm with no field", "ResizeVm", rz0, "at least one of");
		refused("ResizeVm vcpu 0", "ResizeVm", rzv, "greater than 0");
		refused("ResizeVm memory 0", "ResizeVm", rzm, "greater than 0");
		refused("ResizeVm disk_size 0", "ResizeVm", rzd, "greater than 0");
		refused("ResizeVm with an empty image", "ResizeVm", rzi, "image must not be empty");
		refused("ResizeVm of a running VM", "ResizeVm", rz, "should be stopped");
		refused("ResizeVm of an unknown VM", "ResizeVm", "{\"id\":\"no-such-vm\",\"vcpu\":2}",
			"VM not found");

		/* SvStop: the VM-aware stop path */
		is_int(vt_call(&t, "SvStop", b, NULL), 200, "SvStop of a VM: 200");
		ok(vt_wait_status(&t, web, "stopped", 10000), "SvStop: the VM is stopped (not exited)");
		ok(vt_get(&app, "/", NULL, NULL) != 200, "SvStop: the app no longer answers");
		free(app.api);
		refused("SvStop of an unknown process", "SvStop", "{\"id\":\"no-such-proc\"}", "not found");
	}

	/* ResizeVm of the stopped VM */
	{
		_cleanup_free_ char *b = xasprintf(
		    "{\"id\":\"%s\",\"vcpu\":2,\"memory\":768,\"disk_size\":3,\"image\":\"dstack-spare\"}",
		    web);
		_cleanup_free_ char *shrink = xasprintf("{\"id\":\"%s\",\"disk_size\":2}", web);
		_cleanup_free_ char *noimg = xasprintf("{\"id\":\"%s\",\"image\":\"no-such-image\"}", web);
		_cleanup_free_ char *back = xasprintf("{\"id\":\"%s\",\"image\":\"dstack-0.5.3\"}", web);
		_cleanup_json_ json_t *i = NULL;

		is_int(vt_call(&t, "ResizeVm", b, NULL), 200, "ResizeVm of the stopped VM: 200");
		i = vt_info(&t, web);
		ok(json_integer_value(json_object_get(cfg_of(i), "vcpu")) == 2 &&
		       json_integer_value(json_object_get(cfg_of(i), "memory")) == 768 &&
		       json_integer_value(json_object_get(cfg_of(i), "disk_size")) == 3 &&
		       !strcmp(json_string_value(json_object_get(cfg_of(i), "image")) ?: "", "dstack-spare"),
		   "ResizeVm: GetInfo shows vcpu 2, memory 768, disk 3, image dstack-spare");
		refused("ResizeVm shrinking the disk", "ResizeVm", shrink, "shrink");
		refused("ResizeVm to an unknown image", "ResizeVm", noimg, "no-such-image");
		is_int(vt_call(&t, "ResizeVm", back, NULL), 200, "ResizeVm back to dstack-0.5.3");
	}

	/* UpdateVm by its own name */
	{
		_cleanup_free_ char *nc = compose_json("bash", "echo updated; exec sleep 600");
		_cleanup_json_ json_t *j = json_pack("{s:s,s:s,s:s}", "id", web, "compose_file", nc,
						     "user_config", "{\"greeting\":\"hi\"}");
		_cleanup_free_ char *b = json_dumps(j, JSON_COMPACT);
		_cleanup_free_ char *uc = xasprintf("{\"id\":\"%s\",\"user_config\":\"second\"}", web);
		_cleanup_json_ json_t *i = NULL, *i2 = NULL;
		uint8_t h[32];
		char hex[65];

		sha256_buf(nc, strlen(nc), h);
		hex_encode(h, 32, hex);
		hex[40] = 0;
		ok(vt_call(&t, "UpdateVm", b, &r) == 200, "UpdateVm: 200");
		is_str(json_string_value(json_object_get(r, "id")), hex,
		       "UpdateVm returns sha256(new compose)[:40], not the VM id");
		json_decref(r);
		i = vt_info(&t, web);
		is_str(json_string_value(json_object_get(cfg_of(i), "compose_file")), nc,
		       "UpdateVm: the new compose is stored verbatim");
		is_str(json_string_value(json_object_get(cfg_of(i), "user_config")), "{\"greeting\":\"hi\"}",
		       "UpdateVm: user_config stored");
		ok(vt_call(&t, "UpdateVm", uc, &r) == 200 &&
		       !strcmp(json_string_value(json_object_get(r, "id")) ?: "x", ""),
		   "UpdateVm without a compose change returns \"\"");
		json_decref(r);
		i2 = vt_info(&t, web);
		is_str(json_string_value(json_object_get(cfg_of(i2), "user_config")), "second",
		       "UpdateVm: user_config replaced");
		refused("UpdateVm of an unknown VM", "UpdateVm",
			"{\"id\":\"no-such-vm\",\"user_config\":\"x\"}", "VM not found");
	}

	/* SvRemove: the stopped VM's supervisor entry */
	{
		_cleanup_free_ char *b = xasprintf("{\"id\":\"%s\"}", web);
		_cleanup_free_ char *bb = xasprintf("{\"id\":\"%s\"}", webb);
		_cleanup_json_ json_t *l = NULL;
		json_t *p;
		size_t k;
		bool listed = false;

		is_int(vt_call(&t, "StartVm", bb, NULL), 200, "StartVm of the second VM");
		ok(vt_wait_status(&t, webb, "running", 20000), "second VM runs");
		refused("SvRemove of a running process", "SvRemove", bb, "Process is");
		is_int(vt_call(&t, "SvRemove", b, NULL), 200, "SvRemove of the stopped VM's process: 200");
		vt_call(&t, "SvList", NULL, &l);
		json_array_foreach(json_object_get(l, "processes"), k, p) listed |=
		    !strcmp(json_string_value(json_object_get(p, "id")) ?: "", web);
		ok(!listed && json_array_size(json_object_get(l, "processes")) == 1,
		   "SvList: only the running VM's process is left");
		refused("SvRemove of an unknown process", "SvRemove", "{\"id\":\"no-such-proc\"}",
			"not found");
		is_int(vt_call(&t, "StopVm", bb, NULL), 200, "StopVm of the second VM");
	}

	/* DeleteImage */
	{
		_cleanup_free_ char *spare = xasprintf("%s/img/dstack-spare", t.dir);
		_cleanup_json_ json_t *l = NULL;
		json_t *im;
		size_t k;
		bool listed = false;

		refused("DeleteImage of an image in use", "DeleteImage", "{\"name\":\"dstack-0.5.3\"}",
			"in use");
		refused("DeleteImage of an unknown image", "DeleteImage", "{\"name\":\"no-such-image\"}",
			"not found");
		refused("DeleteImage with a path", "DeleteImage", "{\"name\":\"../run\"}",
			"Invalid image name");
		is_int(vt_call(&t, "DeleteImage", "{\"name\":\"dstack-spare\"}", NULL), 200,
		       "DeleteImage of an unused image: 200");
		ok(!file_exists(spare), "its directory is gone");
		vt_call(&t, "ListImages", NULL, &l);
		json_array_foreach(json_object_get(l, "images"), k, im) listed |=
		    !strcmp(json_string_value(json_object_get(im, "name")) ?: "", "dstack-spare");
		ok(!listed && json_array_size(json_object_get(l, "images")) == 2,
		   "ListImages no longer lists it");
	}

	/* ReloadVms: a work directory appears behind the VMM's back, then vanishes */
	{
		const char *copy_id = "0badc0de-0000-4000-8000-000000000001";
		_cleanup_free_ char *cdir = xasprintf("%s/run/%s", t.dir, copy_id);
		_cleanup_free_ char *cmd = xasprintf("cp -a '%s' '%s'", wd, cdir);
		_cleanup_free_ char *mpath = path_join(cdir, "vm-manifest.json");
		_cleanup_json_ json_t *m = NULL;
		long before = vm_total();

		ok(system(cmd) == 0, "copy a stopped VM's work directory");
		m = json_load_file(mpath, 0, NULL);
		json_object_set_new(m, "id", json_string(copy_id));
		json_object_set_new(m, "name", json_string("copied"));
		json_object_set_new(m, "port_map", json_array());
		json_dump_file(m, mpath, JSON_COMPACT);
		ok(vt_call(&t, "ReloadVms", NULL, &r) == 200 &&
		       json_integer_value(json_object_get(r, "loaded")) == 1 &&
		       json_integer_value(json_object_get(r, "removed")) == 0,
		   "ReloadVms: loaded 1, removed 0");
		json_decref(r);
		is_int(vm_total(), before + 1, "Status lists the new VM");
		{
			_cleanup_json_ json_t *i = vt_info(&t, copy_id);

			is_str(json_string_value(json_object_get(i, "name")), "copied",
			       "GetInfo knows it by its id");
		}
		_cleanup_free_ char *rm = xasprintf("rm -rf '%s'", cdir);
		ok(system(rm) == 0, "remove its directory behind the VMM's back");
		ok(vt_call(&t, "ReloadVms", NULL, &r) == 200 &&
		       json_integer_value(json_object_get(r, "removed")) == 1 &&
		       json_integer_value(json_object_get(r, "loaded")) == 0,
		   "ReloadVms: removed 1, loaded 0");
		json_decref(r);
		is_int(vm_total(), before, "Status no longer lists it");
	}

	/* ListGpus through the stand-in lspci */
	{
		_cleanup_json_ json_t *g = NULL;
		json_t *a;

		is_int(vt_call(&t, "ListGpus", NULL, &g), 200, "ListGpus: 200");
		a = json_object_get(g, "gpus");
		ok(json_array_size(a) == 2 &&
		       !strcmp(json_string_value(json_object_get(json_array_get(a, 0), "slot")) ?: "",
			       "18:00.0") &&
		       !strcmp(json_string_value(json_object_get(json_array_get(a, 0), "product_id")) ?: "",
			       "10de:2335"),
		   "ListGpus: both H100s, by slot and product id");
		ok(json_is_true(json_object_get(json_array_get(a, 0), "is_free")) &&
		       json_is_false(json_object_get(json_array_get(a, 1), "is_free")),
		   "ListGpus: is_free is !BusMaster");
		ok(json_is_true(json_object_get(g, "allow_attach_all")), "ListGpus: allow_attach_all");
	}
	/* attach_mode "all" takes every NVIDIA 3D controller lspci shows */
	{
		_cleanup_free_ char *bash = compose_json("bash", "exec sleep 600");
		_cleanup_free_ char *b = create_body("gpus", "dstack-0.5.3", bash, 0, 0, true);
		_cleanup_json_ json_t *j = json_loads(b, 0, NULL);
		_cleanup_free_ char *body = NULL, *id = NULL;

		json_object_set_new(j, "gpus", json_pack("{s:s,s:[]}", "attach_mode", "all", "gpus"));
		body = json_dumps(j, JSON_COMPACT);
		id = create(body, &r);
		ok(id != NULL, "CreateVm with gpus attach_mode all (%s)", err_of(r));
		json_decref(r);
		if (id) {
			_cleanup_json_ json_t *i = vt_info(&t, id);
			_cleanup_free_ char *gj =
			    json_dumps(json_object_get(cfg_of(i), "gpus"), JSON_COMPACT | JSON_SORT_KEYS);

			is_str(gj,
			       "{\"attach_mode\":\"all\",\"gpus\":[{\"slot\":\"18:00.0\"},{\"slot\":\"2a:00."
			       "0\"}]}",
			       "attach_mode all: both H100s from lspci are the VM's GPUs");
			remove_and_wait(id);
		}
	}

out:
	if (web)
		remove_and_wait(web);
	if (webb)
		remove_and_wait(webb);
	is_int(vt_count_workdirs(&t), 0, "every VM removed");
	vt_finish(&t);
	return tap_done();
}
