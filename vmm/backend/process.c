/*
 * process.c — host side of the process backend (see process.h): decides
 * which VMs run as processes, writes their `.sys-config.json` with a unix
 * host-API URL, opens that VM's host-API socket on the event loop, and
 * writes the guest's plan (procconf.c), deploys `dstack-vmm process-vm <workdir>` to the supervisor with the
 * same process config (id, logs, pid file, CID note) a QEMU VM gets, so status, stop, restart and reload work
 * unchanged.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/log.h"
#include "http/listen.h"
#include "vmm/backend/process.h"
#include "vmm/backend/runtime.h"
#include "vmm/qemu.h"
#include "vmm/sysconfig.h"
#include "vmm/util.h"

struct vmm_proc_sock {
	char *vm_id;
	struct http_server *srv;
	struct vmm_host_api api;
};

static bool selected(const struct vmm_proc_backend *b, bool no_tee, bool simulated_tee)
{
	if (!strcmp(b->pc->mode, "process"))
		return true;
	if (!strcmp(b->pc->mode, "qemu"))
		return false;
	/* auto: simulated TEEs, and no-TEE VMs on hosts without KVM */
	return simulated_tee || (no_tee && access("/dev/kvm", R_OK | W_OK) != 0);
}

bool vmm_proc_selected(const struct vmm_proc_backend *b, const struct vmm_vm *vm)
{
	return selected(b, vm->m.no_tee, vm->m.simulated_tee);
}

static int64_t mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int vmm_proc_create_check(struct vmm_app *a, const struct vmm_create_req *r, void *arg, struct err *e)
{
	struct vmm_proc_backend *b = arg;
	_cleanup_json_ json_t *compose = NULL;
	const char *runner, *which = NULL;

	(void)a;
	if (!selected(b, r->no_tee || r->simulated_tee, r->simulated_tee))
		return 0;
	/* CreateVm has parsed it as an AppCompose already; only the runner matters here */
	compose = json_loads(r->compose_file, 0, NULL);
	runner = json_string_value(json_object_get(compose, "runner"));
	if (!runner)
		return 0;
	if (!strcmp(runner, "bash")) {
		if (!json_is_string(json_object_get(compose, "bash_script")))
			return err_set(e, "runner \"bash\" needs bash_script (the app's command line)");
		return 0;
	}
	if (strcmp(runner, "docker-compose"))
		return err_set(e,
			       "runner \"%s\" is not supported by the process backend (it runs \"bash\" and "
			       "\"docker-compose\" apps)",
			       runner);
	if (b->runtime_ok && mono_ms() - b->runtime_ok_ms < VMM_RUNTIME_FRESH_MS)
		return 0;
	if (vmm_container_runtime_check(VMM_RUNTIME_PROBE_MS, &which, e) < 0)
		return err_wrap(e, "docker-compose apps on the process backend run their containers with the "
				   "host's docker or podman, and none is usable (use runner \"bash\" with "
				   "bash_script, or start a container runtime)");
	b->runtime_ok_ms = mono_ms();
	b->runtime_ok = which;
	log_info("CreateVm: docker-compose app, container runtime %s answers", which);
	return 0;
}

static struct vmm_proc_sock *host_sock(struct vmm_proc_backend *b, struct vmm_vm *vm, const char *path,
				       struct err *e)
{
	struct vmm_proc_sock *s;
	struct http_listen_spec spec;

	for (size_t i = 0; i < b->n_socks; i++) {
		if (!strcmp(b->socks[i]->vm_id, vm->m.id)) {
			b->socks[i]->api.cid = vm->cid;
			if (file_exists(path))
				return b->socks[i];
			http_server_free(b->socks[i]->srv); /* socket file vanished: reopen */
			free(b->socks[i]->vm_id);
			free(b->socks[i]);
			b->socks[i] = b->socks[--b->n_socks];
			break;
		}
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		abort();
	s->vm_id = xstrdup(vm->m.id);
	s->api = (struct vmm_host_api){.rpc = b->rpc, .cid = vm->cid};
	s->srv = http_server_new(b->base, NULL, e);
	if (!s->srv)
		goto fail;
	unlink(path);
	if (http_listen_spec_set(&spec, HTTP_LISTEN_UNIX, NULL, 0, path, 0, e) < 0 ||
	    vmm_host_api_mount(s->srv, &s->api, e) < 0 ||
	    http_server_listen(s->srv, &spec, NULL, NULL, e) < 0)
		goto fail;
	b->socks = realloc(b->socks, (b->n_socks + 1) * sizeof(*b->socks));
	if (!b->socks)
		abort();
	b->socks[b->n_socks++] = s;
	return s;
fail:
	if (s->srv)
		http_server_free(s->srv);
	free(s->vm_id);
	free(s);
	return NULL;
}

static int write_sys_config(const struct vmm_config *c, struct vmm_vm *vm, const char *sock, struct err *e)
{
	struct vmm_plan plan;
	struct vmm_boot_prep prep = {0};
	size_t n_nics;
	_cleanup_free_ char *path = NULL, *url = NULL, *text = NULL;
	_cleanup_free_ uint8_t *raw = NULL;
	_cleanup_json_ json_t *doc = NULL;
	size_t len;

	if (vmm_plan_resources(&vm->m, &(struct vmm_host){.sysfs = "/sys"}, &plan, e) < 0)
		return -1;
	vmm_effective_networks(c, &vm->m, &n_nics);
	struct vmm_vm_config_in in = {c, &vm->img, &vm->m, plan.vcpus, plan.memory_mb, n_nics, NULL};
	if (vmm_prepare_shared(&in, vm->workdir, false, &prep, e) < 0)
		return -1;
	vmm_boot_prep_free(&prep);
	path = xasprintf("%s/shared/.sys-config.json", vm->workdir);
	if (file_read_all(path, 1 << 20, &raw, &len, e) < 0)
		return -1;
	doc = json_loadb((const char *)raw, len, 0, NULL);
	if (!json_is_object(doc))
		return err_set(e, ".sys-config.json is not a JSON object");
	url = xasprintf("unix:%s:/api", sock);
	json_object_set_new(doc, "host_api_url", json_string(url));
	text = json_dumps(doc, JSON_PRESERVE_ORDER);
	return file_write_atomic(path, text, strlen(text), 0644, e);
}

int vmm_proc_launch(struct vmm_app *a, struct vmm_vm *vm, void *arg, struct err *e)
{
	struct vmm_proc_backend *b = arg;
	_cleanup_free_ char *sock = NULL;
	_cleanup_json_ json_t *pc = NULL;
	struct strv argv = {0};
	int rc;

	if (!vmm_proc_selected(b, vm))
		return 0;
	sock = path_join(vm->workdir, "host-api.sock");
	if (strlen(sock) >= 108)
		return err_set(e, "work directory path too long for a unix socket: %s", sock);
	if (write_sys_config(a->cfg, vm, sock, e) < 0)
		return err_wrap(e, "process backend");
	if (!host_sock(b, vm, sock, e))
		return err_wrap(e, "process backend: host API socket");
	if (vmm_proc_plan_write(vm->workdir, b->pc, a->cfg->gateway.agent_port, e) < 0)
		return err_wrap(e, "process backend");
	strv_push(&argv, b->self_exe);
	strv_push(&argv, "process-vm");
	strv_push(&argv, vm->workdir);
	if (b->pc->shared_net)
		strv_push(&argv, "--shared-net");
	pc = vmm_process_config(&vm->m, vm->workdir, vm->cid, &argv);
	strv_free(&argv);
	/* no serial console: the guest's output goes to stdout.log; keep serial.log for the UI */
	json_object_set_new(pc, "note",
			    json_string("{\"kind\":\"cvm\",\"live_for\":null,\"serial_logappend\":false,"
					"\"backend\":\"process\"}"));
	rc = sv_client_deploy(&a->sv, pc, e);
	if (rc == 0)
		log_info("vm %s: started as processes (cid %u)", vm->m.id, vm->cid);
	return rc < 0 ? -1 : 1;
}

void vmm_proc_backend_free(struct vmm_proc_backend *b)
{
	for (size_t i = 0; i < b->n_socks; i++) {
		http_server_free(b->socks[i]->srv);
		free(b->socks[i]->vm_id);
		free(b->socks[i]);
	}
	free(b->socks);
	b->socks = NULL;
	b->n_socks = 0;
}

int vmm_proc_rebind(struct vmm_proc_backend *b, struct vmm_app *a, struct err *e)
{
	int rc = 0;

	pthread_mutex_lock(&a->lock);
	for (size_t i = 0; i < a->n; i++) {
		struct vmm_vm *vm = a->vms[i];
		_cleanup_free_ char *sock = NULL;

		if (!vmm_proc_selected(b, vm) || vm->removing)
			continue;
		sock = path_join(vm->workdir, "host-api.sock");
		if (!host_sock(b, vm, sock, e))
			rc = -1;
	}
	pthread_mutex_unlock(&a->lock);
	return rc;
}

void vmm_proc_gc(struct vmm_proc_backend *b, struct vmm_app *a)
{
	pthread_mutex_lock(&a->lock);
	for (size_t i = 0; i < b->n_socks;) {
		bool live = false;

		for (size_t k = 0; k < a->n && !live; k++)
			live = !strcmp(a->vms[k]->m.id, b->socks[i]->vm_id);
		if (live) {
			i++;
			continue;
		}
		http_server_free(b->socks[i]->srv);
		free(b->socks[i]->vm_id);
		free(b->socks[i]);
		b->socks[i] = b->socks[--b->n_socks];
	}
	pthread_mutex_unlock(&a->lock);
}
