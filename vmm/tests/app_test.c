/*
 * app_test.c — the VM lifecycle against the real supervisor daemon, with a
 * stand-in QEMU (a shell script that records its argv and sleeps) and a
 * stand-in qemu-img (creates the file). Covers create (files, CID, start),
 * status/info, stop/start, update rules, port conflicts across VMs, guest
 * notifications, auto-restart, removal, and reload after a VMM restart.
 */
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/tap.h"
#include "testutil.h"
#include "vmm/app.h"
#include "vmm/compose.h"
#include "vmm/workdir.h"

#define COMPOSE                                                                                              \
	"{\"manifest_version\":2,\"name\":\"app\",\"runner\":\"docker-compose\",\"gateway_enabled\":true}"

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static const char *vm_status(json_t *st, size_t i)
{
	return json_str(json_array_get(json_object_get(st, "vms"), i), "status");
}

static char *status_of(struct vmm_app *a, const char *id)
{
	const char *ids[] = {id};
	struct vmm_status_req r = {ids, 1, true, NULL, 0, 0};
	json_t *st = vmm_app_status(a, &r);
	char *s = xstrdup(vm_status(st, 0));

	json_decref(st);
	return s;
}

/* Poll Status until the VM reaches `want` (up to 10 s). */
static void wait_status(struct vmm_app *a, const char *id, const char *want)
{
	for (int i = 0; i < 1000; i++) {
		char *s = status_of(a, id);
		bool done = !strcmp(s, want);

		free(s);
		if (done)
			return;
		sleep_ms(10);
	}
}

int main(void)
{
	const char *exe = getenv("SUPERVISOR_EXE");
	char *root = tu_tmpdir();
	_cleanup_free_ char *sock = path_join(root, "sv.sock"), *pidf = path_join(root, "sv.pid"),
			    *logf = path_join(root, "sv.log"), *images = path_join(root, "images"),
			    *run = path_join(root, "run"), *img = path_join(images, "dstack-0.5.3"),
			    *fakeqemu = path_join(root, "qemu.sh"), *fakeimg = path_join(root, "qemu-img.sh");
	struct vmm_config cfg;
	struct vmm_app app;
	struct err e = ERR_INIT;
	char *id = NULL;

	signal(SIGPIPE, SIG_IGN);
	if (!exe)
		return diag("SUPERVISOR_EXE not set"), 1;
	tu_write(img, "metadata.json",
		 "{\"kernel\":\"k\",\"initrd\":\"i\",\"bios\":\"b\",\"rootfs\":\"r.verity\",\"cmdline\":"
		 "\"console=ttyS0\","
		 "\"shared_ro\":true,\"version\":\"0.5.3\"}");
	tu_write(img, "k", "");
	tu_write(img, "i", "");
	tu_write(img, "b", "");
	tu_write(img, "r.verity", "");
	tu_write(img, "digest.txt", "aa");
	tu_write(root, "qemu.sh",
		 "#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done > argv.txt\nexec sleep 60\n");
	tu_write(root, "qemu-img.sh",
		 "#!/bin/sh\nfor last; do :; done\nprev=\"\"\nfor a; do [ \"$a\" = \"$last\" ] && break; "
		 "prev=$a; done\n: > \"$prev\"\n");
	chmod(fakeqemu, 0755);
	chmod(fakeimg, 0755);

	vmm_config_init(&cfg);
	str_set(&cfg.run_path, run);
	str_set(&cfg.image_path, images);
	str_set(&cfg.cvm.qemu_path, fakeqemu);
	cfg.cvm.cid_start = 100;
	cfg.cvm.cid_pool_size = 3;
	cfg.cvm.port_mapping.enabled = true;
	cfg.cvm.auto_restart.initial_backoff = 1;
	cfg.cvm.auto_restart.max_retries = 2;
	struct sv_client svc = {sock, 5000};
	ok(sv_client_ensure_running(&svc, exe, pidf, logf, false, true, &e) == 0, "supervisor up: %s", e.msg);

	/* a host with KVM and vhost-vsock (fake device nodes) */
	_cleanup_free_ char *devdir = path_join(root, "dev");
	tu_write(devdir, "kvm", "");
	tu_write(devdir, "vhost-vsock", "");
	vmm_app_init(&app, &cfg, sock);
	str_set(&app.qemu_img_path, fakeimg);
	app.tdx = true;
	app.host.dev = devdir;
	ok(vmm_app_load_all(&app, NULL, &e) == 0 && app.n == 0, "empty run_path loads");

	/* create + start */
	struct vmm_port_req ports[] = {{"tcp", 8080, 80, ""}};
	struct vmm_create_req cr = {.name = "my app",
				    .image = "dstack-0.5.3",
				    .compose_file = COMPOSE,
				    .vcpu = 2,
				    .memory = 2048,
				    .disk_size = 10,
				    .ports = ports,
				    .n_ports = 1,
				    .encrypted_env = (const uint8_t *)"\x01\x02",
				    .encrypted_env_len = 2,
				    .user_config = "{\"k\":1}"};
	ok(vmm_app_create(&app, &cr, &id, &e) == 0, "create: %s", e.msg);
	ok(id && strlen(id) == 36 && id[14] == '4', "UUIDv4 id");
	_cleanup_free_ char *wd = path_join(run, id);
	_cleanup_free_ char *compose = tu_read(wd, "shared/app-compose.json");
	is_str(compose, COMPOSE, "compose stored verbatim");
	_cleanup_free_ char *ii = tu_read(wd, "shared/.instance_info");
	char want_ii[128];
	char appid[41];
	vmm_compose_app_id(COMPOSE, strlen(COMPOSE), appid);
	snprintf(want_ii, sizeof(want_ii), "{\"app_id\":\"%s\"}", appid);
	is_str(ii, want_ii, ".instance_info at create");
	_cleanup_free_ char *state = tu_read(wd, "vm-state.json");
	is_str(state, "{\"started\":true}", "started");
	ok(file_exists(wd) && app.n == 1 && app.vms[0]->cid == 100, "loaded with CID 100");
	tu_wait_contains(wd, "argv.txt", "-append", 10000);
	_cleanup_free_ char *argv = tu_read(wd, "argv.txt");
	ok(argv && !strncmp(argv, "-accel\nkvm\n-cpu\nhost\n", 21) &&
	       strstr(argv, "vhost-vsock-pci,guest-cid=100\n") &&
	       strstr(argv, "hostfwd=tcp:127.0.0.1:8080-:80") &&
	       strstr(argv, "confidential-guest-support=tdx") && strstr(argv, "\"mrconfigid\":"),
	   "QEMU got the §8 argv");
	_cleanup_free_ char *hda = path_join(wd, "hda.img");
	ok(file_exists(hda), "hda.img created by qemu-img");
	_cleanup_free_ char *sys = tu_read(wd, "shared/.sys-config.json");
	ok(sys && strstr(sys, "\"vm_config\""), ".sys-config.json written");
	_cleanup_free_ char *rn = tu_read(wd, "runtime-networks.json");
	ok(rn != NULL, "runtime-networks.json written");
	_cleanup_free_ char *s1 = status_of(&app, id);
	is_str(s1, "running", "status running");

	/* info */
	json_t *info = vmm_app_info(&app, id);
	json_t *vi = json_object_get(info, "info");
	ok(json_is_true(json_object_get(info, "found")), "found");
	is_str(json_str(vi, "boot_progress"), "booting", "boot_progress booting");
	is_str(json_str(json_object_get(vi, "configuration"), "user_config"), "{\"k\":1}",
	       "user_config echoed");
	is_str(json_str(json_object_get(vi, "configuration"), "encrypted_env"), "0102", "encrypted_env hex");
	ok(json_is_false(json_object_get(json_object_get(vi, "configuration"), "stopped")), "stopped=false");
	is_str(json_str(vi, "image_version"), "0.5.3", "image_version");
	is_str(json_str(json_array_get(json_object_get(vi, "interfaces"), 0), "backend"), "slirp",
	       "interface");
	ok(json_is_null(json_object_get(vi, "app_url")), "no app_url without instance_id");
	json_decref(info);
	json_t *nf = vmm_app_info(&app, "nope");
	ok(json_is_false(json_object_get(nf, "found")) && json_is_null(json_object_get(nf, "info")),
	   "not found");
	json_decref(nf);

	/* guest notifications */
	ok(vmm_app_notify(&app, 100, "boot.progress", "done", &e) == 0, "notify");
	ok(vmm_app_notify(&app, 100, "instance.info",
			  "{\"instance_id_seed\":\"\",\"instance_id\":\"abcd\",\"app_id\":\"aa\"}", &e) == 0,
	   "instance.info");
	ok(vmm_app_notify(&app, 999, "boot.progress", "x", &e) < 0, "unknown CID is an error");
	char big[5000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	ok(vmm_app_notify(&app, 100, "boot.progress", big, &e) == 0, "oversized payload dropped, OK");
	info = vmm_app_info(&app, id);
	vi = json_object_get(info, "info");
	is_str(json_str(vi, "boot_progress"), "done", "boot_progress updated");
	is_str(json_str(vi, "instance_id"), "abcd", "instance_id from .instance_info");
	is_str(json_str(vi, "app_url"), "https://abcd-8090.localhost:8082",
	       "app_url from [gateway] when the VM has no gateway_urls");
	is_int(json_array_size(json_object_get(vi, "events")), 2, "two events kept");
	json_decref(info);

	/* second VM: port conflict, CID, stopped */
	char *id2 = NULL;
	cr.name = "second";
	ok(vmm_app_create(&app, &cr, &id2, &e) < 0, "port conflict with first VM");
	ok(strstr(e.msg, "already used by VM") != NULL, "conflict message: %s", e.msg);
	struct vmm_create_req bad = cr;
	bad.name = "bad/name";
	ok(vmm_app_create(&app, &bad, &id2, &e) < 0 && !strcmp(e.msg, "Invalid name: bad/name"),
	   "name charset");
	cr.n_ports = 0;
	cr.stopped = true;
	ok(vmm_app_create(&app, &cr, &id2, &e) == 0, "create stopped");
	_cleanup_free_ char *s2 = status_of(&app, id2);
	is_str(s2, "stopped", "created stopped");
	ok(app.vms[1]->cid == 101, "second CID 101");
	struct strv ids;
	vmm_workdir_scan(run, &ids, NULL);
	is_int(ids.n, 2, "failed creates left no directories");
	strv_free(&ids);

	/* status listing */
	struct vmm_status_req sr = {NULL, 0, false, NULL, 0, 0};
	json_t *st = vmm_app_status(&app, &sr);
	is_int(json_integer_value(json_object_get(st, "total")), 2, "total 2");
	is_str(json_str(json_array_get(json_object_get(st, "vms"), 0), "name"), "my app",
	       "sorted by created_at");
	ok(json_is_true(json_object_get(st, "port_mapping_enabled")), "port_mapping_enabled");
	json_decref(st);
	struct vmm_status_req pg = {NULL, 0, true, NULL, 2, 1};
	st = vmm_app_status(&app, &pg);
	ok(json_array_size(json_object_get(st, "vms")) == 1 &&
	       !strcmp(json_str(json_array_get(json_object_get(st, "vms"), 0), "name"), "second") &&
	       json_integer_value(json_object_get(st, "total")) == 2 &&
	       json_is_null(json_object_get(json_array_get(json_object_get(st, "vms"), 0), "configuration")),
	   "page 2 of size 1, brief");
	json_decref(st);
	struct vmm_status_req kw = {NULL, 0, true, "secon", 0, 0};
	st = vmm_app_status(&app, &kw);
	is_int(json_integer_value(json_object_get(st, "total")), 1, "keyword filter");
	json_decref(st);

	/* update: resources need a stopped VM */
	uint32_t vcpu = 4, disk = 5, disk20 = 20;
	struct vmm_update_req ur = {.id = id, .vcpu = &vcpu};
	char *out = NULL;
	ok(vmm_app_update(&app, &ur, &out, &e) < 0, "resize while running refused");
	ok(vmm_app_stop(&app, id, &e) == 0, "stop");
	_cleanup_free_ char *s3 = status_of(&app, id);
	is_str(s3, "stopped", "stopped");
	ok(vmm_app_update(&app, &ur, &out, &e) == 0 && !strcmp(out, ""),
	   "resize when stopped, no compose: \"\"");
	free(out);
	struct vmm_update_req shrink = {.id = id, .disk_size = &disk};
	ok(vmm_app_update(&app, &shrink, &out, &e) < 0 && !strcmp(e.msg, "Cannot shrink disk size"),
	   "no shrink");
	struct vmm_update_req grow = {.id = id, .disk_size = &disk20};
	ok(vmm_app_update(&app, &grow, &out, &e) == 0, "grow disk");
	free(out);
	const char *newc = "{\"manifest_version\":2,\"name\":\"v2\",\"runner\":\"docker-compose\"}";
	struct vmm_port_req p2[] = {{"udp", 9999, 9, "0.0.0.0"}};
	struct vmm_update_req uc = {
	    .id = id, .compose_file = newc, .update_ports = true, .ports = p2, .n_ports = 1};
	ok(vmm_app_update(&app, &uc, &out, &e) == 0, "update compose + ports (no range check)");
	char want_out[41];
	vmm_compose_app_id(newc, strlen(newc), want_out);
	is_str(out, want_out, "returns sha256(new compose)[:40]");
	free(out);
	struct vmm_manifest m;
	vmm_manifest_load(wd, &m, NULL);
	ok(m.vcpu == 4 && m.disk_size == 20 && m.n_ports == 1 && m.ports[0].from == 9999 &&
	       !strcmp(m.app_id, appid),
	   "manifest updated, app_id unchanged");
	vmm_manifest_free(&m);
	struct vmm_update_req badc = {.id = id, .compose_file = "{}"};
	ok(vmm_app_update(&app, &badc, &out, &e) < 0, "invalid compose rejected");

	/* start again; auto-restart after the process dies */
	ok(vmm_app_start(&app, id, &e) == 0, "start: %s", e.msg);
	_cleanup_free_ char *s4 = status_of(&app, id);
	is_str(s4, "running", "running again");
	json_t *pi = sv_client_info(&svc, id, &e);
	pid_t qpid = (pid_t)json_integer_value(json_object_get(json_object_get(pi, "state"), "pid"));
	json_decref(pi);
	ok(qpid > 0 && kill(-qpid, SIGKILL) == 0, "kill the 'QEMU'");
	wait_status(&app, id, "exited");
	_cleanup_free_ char *s5 = status_of(&app, id);
	is_str(s5, "exited", "started but not running: exited");
	uint64_t t = 1000;
	vmm_app_tick(&app, t, false);
	ok(app.vms[0]->restart.scheduled, "restart scheduled");
	vmm_app_tick(&app, t + 1, false);
	sleep_ms(200);
	_cleanup_free_ char *s6 = status_of(&app, id);
	is_str(s6, "running", "auto-restarted");

	/* swtpm VM: runs under `dstack-vmm vm-launcher` with a stand-in swtpm */
	{
		const char *vmm_exe = getenv("VMM_EXE");
		_cleanup_free_ char *bin = path_join(root, "bin"), *fsw = path_join(bin, "swtpm");
		const char *tpmc = "{\"manifest_version\":2,\"name\":\"t\",\"runner\":\"docker-compose\","
				   "\"key_provider\":\"tpm\"}";
		struct vmm_create_req tr = {.name = "tpm",
					    .image = "dstack-0.5.3",
					    .compose_file = tpmc,
					    .vcpu = 1,
					    .memory = 1024,
					    .disk_size = 1};
		char *tid = NULL;

		tu_write(bin, "swtpm",
			 "#!/usr/bin/env python3\nimport "
			 "socket,sys,time\nctrl=sys.argv[sys.argv.index('--ctrl')+1]\n"
			 "path=[p[5:] for p in ctrl.split(',') if p.startswith('path=')][0]\n"
			 "s=socket.socket(socket.AF_UNIX)\ns.bind(path)\ntime.sleep(60)\n");
		chmod(fsw, 0755);
		str_set(&app.swtpm_path, fsw);
		app.self_exe = xstrdup(vmm_exe);
		cfg.cvm.cid_pool_size = 4;
		app.cids.size = 4;
		ok(vmm_app_create(&app, &tr, &tid, &e) == 0, "create swtpm VM: %s", e.msg);
		_cleanup_free_ char *twd = path_join(run, tid);
		_cleanup_free_ char *spec = tu_read(twd, "launch.json");
		ok(spec && strstr(spec, "\"swtpm_socket\"") && strstr(spec, "--tpm2"), "launch.json written");
		_cleanup_free_ char *argvp = path_join(twd, "argv.txt");
		for (int i = 0; i < 100 && !file_exists(argvp); i++)
			sleep_ms(50);
		sleep_ms(100);
		_cleanup_free_ char *targv = tu_read(twd, "argv.txt");
		ok(targv && strstr(targv, "tpm-tis,tpmdev=tpm0"),
		   "QEMU started by the launcher with the TPM device");
		_cleanup_free_ char *ts = status_of(&app, tid);
		is_str(ts, "running", "swtpm VM running");
		ok(vmm_app_stop(&app, tid, &e) == 0, "stop swtpm VM");
		ok(vmm_app_remove(&app, tid, &e) == 0, "remove swtpm VM");
		for (int i = 0; i < 20 && file_exists(twd); i++) {
			vmm_app_tick(&app, 1, false);
			sleep_ms(50);
		}
		ok(!file_exists(twd), "swtpm VM removed");
		free(tid);
	}

	/* graceful shutdown: the guest says "powering off", QEMU then exits */
	ok(vmm_app_start(&app, id2, &e) == 0, "start the second VM: %s", e.msg);
	ok(vmm_app_notify(&app, 101, "shutdown.progress", "powering off", &e) == 0, "powering off");
	_cleanup_free_ char *s8 = status_of(&app, id2);
	is_str(s8, "stopping", "started=false while QEMU runs: stopping");
	_cleanup_free_ char *wd2s = path_join(run, id2);
	_cleanup_free_ char *state2 = tu_read(wd2s, "vm-state.json");
	is_str(state2, "{\"started\":false}", "vm-state.json updated by the notify");
	pi = sv_client_info(&svc, id2, &e);
	pid_t q2 = (pid_t)json_integer_value(json_object_get(json_object_get(pi, "state"), "pid"));
	json_decref(pi);
	ok(q2 > 0 && kill(-q2, SIGKILL) == 0, "the guest powers off");
	wait_status(&app, id2, "stopped");
	_cleanup_free_ char *s9 = status_of(&app, id2);
	is_str(s9, "stopped", "stopped, not exited");
	vmm_app_tick(&app, t + 100, false);
	_cleanup_free_ char *s10 = status_of(&app, id2);
	is_str(s10, "stopped", "no auto-restart after a guest shutdown");

	/* VMM restart: a new app sees the running VM and keeps its CID */
	vmm_app_free(&app);
	vmm_app_init(&app, &cfg, sock);
	str_set(&app.qemu_img_path, fakeimg);
	app.tdx = true;
	app.host.dev = devdir;
	pi = sv_client_info(&svc, id, &e);
	pid_t before = (pid_t)json_integer_value(json_object_get(json_object_get(pi, "state"), "pid"));
	json_decref(pi);
	struct vmm_reload_counts rc;
	ok(vmm_app_load_all(&app, &rc, &e) == 0 && app.n == 2, "reload finds both VMs: %s", e.msg);
	ok(rc.loaded == 2 && rc.updated == 0 && rc.removed == 0, "counts: loaded 2");
	pi = sv_client_info(&svc, id, &e);
	pid_t after = (pid_t)json_integer_value(json_object_get(json_object_get(pi, "state"), "pid"));
	json_decref(pi);
	ok(before == after, "running QEMU not respawned");
	struct vmm_vm *v1 = app.vms[0]->cid == 100 ? app.vms[0] : app.vms[1];
	is_str(v1->m.id, id, "the running VM kept CID 100");

	/* ReloadVms: an edited manifest counts as updated, a vanished dir as removed */
	{
		struct vmm_vm *v2 = app.vms[0]->cid == 100 ? app.vms[1] : app.vms[0];
		_cleanup_free_ char *wd2 = xstrdup(v2->workdir);
		struct vmm_manifest m2;
		vmm_manifest_load(wd2, &m2, NULL);
		str_set(&m2.name, "renamed");
		vmm_manifest_save(wd2, &m2, NULL);
		vmm_manifest_free(&m2);
		ok(vmm_app_load_all(&app, &rc, &e) == 0 && rc.loaded == 0 && rc.updated == 1 &&
		       rc.removed == 0,
		   "reload: one updated");
		is_str(v2->m.name, "renamed", "manifest change picked up");
		_cleanup_free_ char *moved = xasprintf("%s.moved", wd2);
		rename(wd2, moved);
		ok(vmm_app_load_all(&app, &rc, &e) == 0 && rc.removed == 1 && app.n == 1,
		   "reload: one removed");
		rename(moved, wd2);
		ok(vmm_app_load_all(&app, &rc, &e) == 0 && rc.loaded == 1 && app.n == 2,
		   "reload: loaded again");
	}

	/* remove */
	ok(vmm_app_remove(&app, id, &e) == 0, "remove");
	_cleanup_free_ char *s7 = status_of(&app, id);
	is_str(s7, "removing", "status removing");
	_cleanup_free_ char *mark = path_join(wd, ".removing");
	ok(file_exists(mark), ".removing marker");
	ok(vmm_app_start(&app, id, &e) < 0 && !strcmp(e.msg, "VM is being removed"),
	   "start refused while removing");
	for (int i = 0; i < 20 && file_exists(wd); i++) {
		vmm_app_tick(&app, 5000 + i, false);
		sleep_ms(50);
	}
	ok(!file_exists(wd) && app.n == 1, "work directory and entry gone");
	ok(!vmm_cid_is_used(&app.cids, 100), "CID 100 freed");
	json_t *gone = sv_client_info(&svc, id, &e);
	ok(gone && json_is_null(gone), "supervisor entry removed");
	json_decref(gone);
	ok(vmm_app_stop(&app, id, &e) < 0 && !strcmp(e.msg, "VM not found"), "unknown VM");

	vmm_app_free(&app);
	vmm_config_free(&cfg);
	free(id);
	free(id2);
	sv_client_shutdown(&svc, NULL);
	FILE *pf = fopen(pidf, "r");
	int svpid = 0;
	if (pf) {
		if (fscanf(pf, "%d", &svpid) != 1)
			svpid = 0;
		fclose(pf);
	}
	if (svpid > 0) {
		kill(svpid, SIGTERM);
		waitpid(svpid, NULL, 0);
	}
	tu_rmrf(root);
	return tap_done();
}
