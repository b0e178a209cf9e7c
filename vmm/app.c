/*
 * app.c — see app.h. Every public function takes the app lock; static
 * helpers assume it is held. A VM's files are the source of truth: memory
 * holds only what is derived from them plus runtime state (CID, progress,
 * events, restart backoff).
 */
#include "vmm/app.h"

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/hex.h"
#include "core/log.h"
#include "vmm/compose.h"
#include "vmm/gpu.h"
#include "vmm/launcher.h"
#include "vmm/shared_img.h"
#include "vmm/sysconfig.h"
#include "vmm/workdir.h"

/* ---- small helpers --------------------------------------------------- */

bool vmm_vm_name_valid(const char *name)
{
	return str_charset_ok(name, "-_. @~!$^()");
}

void vmm_uuid_v4(char out[37])
{
	uint8_t b[16];

	if (RAND_bytes(b, sizeof(b)) != 1)
		abort();
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
		 b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

static void vm_free(struct vmm_vm *vm)
{
	if (!vm)
		return;
	vmm_manifest_free(&vm->m);
	free(vm->workdir);
	vmm_image_free(&vm->img);
	free(vm->boot_progress);
	free(vm->boot_error);
	free(vm->shutdown_progress);
	vmm_events_free(&vm->events);
	free(vm);
}

void vmm_app_init(struct vmm_app *a, const struct vmm_config *cfg, const char *sv_sock)
{
	memset(a, 0, sizeof(*a));
	a->cfg = cfg;
	vmm_cid_pool_init(&a->cids, cfg->cvm.cid_start, cfg->cvm.cid_pool_size);
	a->sv.sock = sv_sock;
	a->sv.timeout_ms = 10000;
	a->host.sysfs = "/sys";
	a->sys_class_net = "/sys/class/net";
	a->tdx = !strcmp(vmm_platform_resolve(cfg->cvm.platform, "/proc/cpuinfo"), "tdx");
	a->qemu_path = vmm_qemu_path_resolve(cfg->cvm.qemu_path, "/etc/dstack/client.conf");
	a->qemu_img_path = xstrdup("qemu-img");
	a->swtpm_path = xstrdup("swtpm");
	pthread_mutex_init(&a->lock, NULL);
}

void vmm_app_free(struct vmm_app *a)
{
	for (size_t i = 0; i < a->n; i++)
		vm_free(a->vms[i]);
	free(a->vms);
	vmm_cid_pool_free(&a->cids);
	free(a->qemu_path);
	free(a->qemu_img_path);
	free(a->self_exe);
	free(a->swtpm_path);
	free(a->pci);
	pthread_mutex_destroy(&a->lock);
	memset(a, 0, sizeof(*a));
}

static struct vmm_vm *find_vm(struct vmm_app *a, const char *id)
{
	for (size_t i = 0; i < a->n; i++)
		if (!strcmp(a->vms[i]->m.id, id))
			return a->vms[i];
	return NULL;
}

static struct vmm_vm *find_vm_cid(struct vmm_app *a, uint32_t cid)
{
	for (size_t i = 0; i < a->n; i++)
		if (a->vms[i]->cid == cid)
			return a->vms[i];
	return NULL;
}

static void drop_vm(struct vmm_app *a, struct vmm_vm *vm)
{
	for (size_t i = 0; i < a->n; i++) {
		if (a->vms[i] == vm) {
			memmove(a->vms + i, a->vms + i + 1, (a->n - i - 1) * sizeof(*a->vms));
			a->n--;
			break;
		}
	}
	vmm_cid_release(&a->cids, vm->cid);
	vm_free(vm);
}

/* Supervisor ProcessInfo of a VM (new ref), or NULL when absent/unreachable. */
static json_t *sv_info(struct vmm_app *a, const char *id)
{
	json_t *i = sv_client_info(&a->sv, id, NULL);

	if (i && json_is_null(i)) {
		json_decref(i);
		return NULL;
	}
	return i;
}

static bool info_running(const json_t *info)
{
	const char *s = json_string_value(json_object_get(json_object_get(info, "state"), "status"));

	return s && !strcmp(s, "running");
}

static bool vm_running(struct vmm_app *a, const struct vmm_vm *vm)
{
	_cleanup_json_ json_t *i = sv_info(a, vm->m.id);

	return i && info_running(i);
}

static void set_progress(char **dst, const char *v)
{
	str_set(dst, v);
}

/* ---- loading ------------------------------------------------------- */

/* Load run_path/<id> into memory and bind a CID (§7.1 step 9, §7.8). */
static int load_vm(struct vmm_app *a, const char *id, struct vmm_vm **out, struct err *e)
{
	struct vmm_vm *vm = calloc(1, sizeof(*vm));
	_cleanup_free_ uint8_t *compose = NULL;
	size_t clen;
	bool exists;
	struct vmm_compose cp;

	if (!vm)
		abort();
	vm->workdir = vmm_workdir_path(a->cfg->run_path, id, e);
	if (!vm->workdir)
		goto fail;
	if (vmm_manifest_load(vm->workdir, &vm->m, e) < 0 || vmm_state_load(vm->workdir, &vm->started, e) < 0)
		goto fail;
	if (strcmp(vm->m.id, id)) {
		err_set(e, "manifest id %s does not match directory %s", vm->m.id, id);
		goto fail;
	}
	if (vmm_image_load(a->cfg->image_path, vm->m.image, &vm->img, e) < 0)
		goto fail;
	vm->shared_ro = vm->img.shared_ro;
	if (vmm_shared_read(vm->workdir, VMM_APP_COMPOSE_FILE, &compose, &clen, &exists, e) < 0)
		goto fail;
	if (!exists) {
		err_set(e, "app-compose.json is missing");
		goto fail;
	}
	if (vmm_compose_parse(compose, clen, &cp, e) < 0)
		goto fail;
	vmm_compose_free(&cp);
	vm->removing = vmm_workdir_is_removing(vm->workdir);
	vmm_events_init(&vm->events, a->cfg->event_buffer_size);
	if (find_vm(a, id)) {
		err_set(e, "VM %s is already loaded", id);
		goto fail;
	}
	if (vmm_cid_alloc(&a->cids, &vm->cid, e) < 0)
		goto fail;
	a->vms = realloc(a->vms, (a->n + 1) * sizeof(*a->vms));
	if (!a->vms)
		abort();
	a->vms[a->n++] = vm;
	if (out)
		*out = vm;
	return 0;
fail:
	vm_free(vm);
	return err_wrap(e, "Failed to load VM %s", id);
}

/* ---- start / stop ---------------------------------------------------- */

static int read_compose(const struct vmm_vm *vm, struct vmm_compose *cp, struct err *e)
{
	_cleanup_free_ uint8_t *raw = NULL;
	size_t len;
	bool exists;

	if (vmm_shared_read(vm->workdir, VMM_APP_COMPOSE_FILE, &raw, &len, &exists, e) < 0)
		return -1;
	if (!exists)
		return err_set(e, "app-compose.json is missing");
	return vmm_compose_parse(raw, len, cp, e);
}

/* §11: swap the QEMU argv for `<self> vm-launcher --spec <wd>/launch.json`. */
static int wrap_swtpm(struct vmm_app *a, struct vmm_vm *vm, struct strv *argv, struct err *e)
{
	_cleanup_free_ char *dir = path_join(vm->workdir, "swtpm");
	_cleanup_free_ char *sock = path_join(dir, "swtpm.sock");
	_cleanup_free_ char *spec_path = path_join(vm->workdir, "launch.json");
	_cleanup_free_ char *text = NULL;
	_cleanup_json_ json_t *spec = NULL;
	struct strv sw, wrapped = {0};
	unsigned uid = (unsigned)getuid(), gid = (unsigned)getgid();

	if (!a->self_exe)
		return err_set(e, "swtpm VMs need the vm-launcher (self_exe not set)");
	if (!str_empty(a->cfg->cvm.user)) {
		struct passwd *pw = getpwnam(a->cfg->cvm.user);

		if (!pw)
			return err_set(e, "unknown user %s", a->cfg->cvm.user);
		uid = (unsigned)pw->pw_uid;
		gid = (unsigned)pw->pw_gid;
	}
	if (mkdir_p(dir, 0700, e) < 0)
		return -1;
	vmm_swtpm_argv(a->swtpm_path, vm->workdir, uid, gid, &sw);
	spec = vmm_launch_spec(argv, &sw, sock);
	strv_free(&sw);
	text = json_dumps(spec, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (file_write_atomic(spec_path, text, strlen(text), 0600, e) < 0)
		return -1;
	strv_push(&wrapped, a->self_exe);
	strv_push(&wrapped, "vm-launcher");
	strv_push(&wrapped, "--spec");
	strv_push(&wrapped, spec_path);
	strv_free(argv);
	*argv = wrapped;
	return 0;
}

#define WITH_VM(a, id, e, vm)                                                                                \
	struct vmm_vm *vm;                                                                                   \
	pthread_mutex_lock(&(a)->lock);                                                                      \
	vm = find_vm((a), (id));                                                                             \
	if (!vm) {                                                                                           \
		pthread_mutex_unlock(&(a)->lock);                                                            \
		return err_set((e), "VM not found");                                                         \
	}

/*
 * The QEMU argv of a VM (§8). `prepare` also does what a real start needs
 * on disk first (hda.img, the vhd shared.img); without it (dry runs) only
 * `shared/` is written. *nets/n_nics: the NICs the argv gives the VM.
 */
static int qemu_command(struct vmm_app *a, struct vmm_vm *vm, bool prepare, struct strv *argv,
			const struct vmm_net **nets, size_t *n_nics, struct err *e)
{
	const struct vmm_config *c = a->cfg;
	struct vmm_plan plan;
	struct vmm_compose cp;
	struct vmm_boot_prep prep = {0};
	const char *variant = NULL;
	int r = -1;
	_cleanup_free_ char *hda = path_join(vm->workdir, "hda.img");

	if (vmm_plan_resources(&vm->m, &a->host, &plan, e) < 0)
		return -1;
	if (read_compose(vm, &cp, e) < 0)
		return -1;
	if (a->tdx && !vm->m.no_tee &&
	    vmm_tdx_variant_resolve(c->cvm.tdx_attestation_variant, cp.tdx_measure_acpi_tables,
				    plan.memory_mb, vmm_image_has_tdx_measurement(&vm->img), &variant, e) < 0)
		goto out;
	*nets = vmm_effective_networks(c, &vm->m, n_nics);
	struct vmm_vm_config_in in = {c, &vm->img, &vm->m, plan.vcpus, plan.memory_mb, *n_nics, variant};
	if (vmm_prepare_shared(&in, vm->workdir, a->tdx, &prep, e) < 0)
		goto out;
	if (prepare && !file_exists(hda)) {
		struct strv qi;

		vmm_qemu_img_create_argv(vm->workdir, vm->img.hda, vm->m.disk_size, &qi);
		str_set(&qi.v[0], a->qemu_img_path);
		r = vmm_run(&qi, e);
		strv_free(&qi);
		if (r < 0)
			goto out;
		r = -1;
	}
	if (prepare && !strcmp(c->cvm.host_share_mode, "vhd") && vmm_build_shared_img(vm->workdir, e) < 0)
		goto out;
	struct vmm_qemu_in qin = {c,
				  &vm->img,
				  &vm->m,
				  &plan,
				  &a->host,
				  vm->workdir,
				  a->qemu_path,
				  vm->cid,
				  a->tdx && !vm->m.no_tee,
				  prep.mrconfigid_b64,
				  vmm_accel_resolve(c->cvm.accel, a->tdx && !vm->m.no_tee, &a->host),
				  !vmm_host_has_vhost_vsock(&a->host)};
	if (prepare && !strcmp(qin.accel, "tcg"))
		log_warn("VM %s: no usable /dev/kvm (or cvm.accel = \"tcg\"): QEMU runs with TCG emulation",
			 vm->m.id);
	if (prepare && qin.no_vsock)
		log_warn(
		    "VM %s: no usable /dev/vhost-vsock: the VM gets no vsock device, so its guest agent and "
		    "the host API are unreachable",
		    vm->m.id);
	r = vmm_qemu_argv(&qin, argv, e);
out:
	vmm_boot_prep_free(&prep);
	vmm_compose_free(&cp);
	return r;
}

static int launch(struct vmm_app *a, struct vmm_vm *vm, struct err *e)
{
	struct strv argv = {0};
	size_t n_nics;
	const struct vmm_net *nets;
	int r = -1;
	_cleanup_json_ json_t *pc = NULL;

	if (vmm_image_check_bootable(&vm->img, e) < 0)
		return -1;
	if (a->launch_hook) {
		int h = a->launch_hook(a, vm, a->launch_hook_arg, e);

		if (h != 0)
			return h < 0 ? -1 : 0;
	}
	if (qemu_command(a, vm, true, &argv, &nets, &n_nics, e) < 0)
		goto out;
	if (vmm_runtime_networks_save(vm->workdir, nets, n_nics, e) < 0)
		goto out;
	if (vm->m.swtpm && wrap_swtpm(a, vm, &argv, e) < 0)
		goto out;
	pc = vmm_process_config(&vm->m, vm->workdir, vm->cid, &argv);
	if (sv_client_deploy(&a->sv, pc, e) < 0) {
		vmm_runtime_networks_save(vm->workdir, NULL, 0, NULL);
		goto out;
	}
	r = 0;
out:
	strv_free(&argv);
	return r;
}

int vmm_app_qemu_command(struct vmm_app *a, const char *id, struct strv *argv, uint32_t *cid, struct err *e)
{
	const struct vmm_net *nets;
	size_t n;
	int r;

	WITH_VM(a, id, e, vm);
	*cid = vm->cid;
	r = vmm_image_check_bootable(&vm->img, e);
	if (r == 0)
		r = qemu_command(a, vm, false, argv, &nets, &n, e);
	pthread_mutex_unlock(&a->lock);
	return r;
}

static int start_vm(struct vmm_app *a, struct vmm_vm *vm, struct err *e)
{
	static const char *const logs[] = {"stdout.log", "stderr.log", "serial.log"};
	bool running;

	if (vm->removing)
		return err_set(e, "VM is being removed");
	running = vm_running(a, vm);
	vm->started = true;
	if (vmm_state_save(vm->workdir, true, e) < 0)
		return -1;
	if (!vm->shared_ro) {
		set_progress(&vm->boot_progress, "N/A");
		set_progress(&vm->shutdown_progress, "N/A");
	} else {
		set_progress(&vm->boot_progress, running ? "running" : "booting");
		set_progress(&vm->shutdown_progress, "");
	}
	set_progress(&vm->boot_error, "");
	if (running)
		return 0;
	for (size_t i = 0; i < 2; i++) {
		_cleanup_free_ char *p = path_join(vm->workdir, i ? "qmp.sock" : "serial.pty");
		unlink(p);
	}
	for (size_t i = 0; i < ARRAY_SIZE(logs); i++) {
		_cleanup_free_ char *p = path_join(vm->workdir, logs[i]);

		vmm_log_rotate(p, a->cfg->cvm.log.max_bytes, a->cfg->cvm.log.max_backups, time(NULL), NULL);
		vmm_log_boot_marker(p, time(NULL), NULL);
	}
	return launch(a, vm, e);
}

static int stop_vm(struct vmm_app *a, struct vmm_vm *vm, struct err *e)
{
	_cleanup_json_ json_t *info = NULL;

	vm->started = false;
	vmm_restart_reset(&vm->restart);
	if (vmm_state_save(vm->workdir, false, e) < 0)
		return -1;
	info = sv_info(a, vm->m.id);
	if (!info)
		return 0;
	return sv_client_stop(&a->sv, vm->m.id, e);
}

/* ---- create ---------------------------------------------------------- */

static int resolve_gpus(struct vmm_app *a, const struct vmm_gpu_req *g, struct vmm_manifest *m, struct err *e)
{
	struct vmm_gpu_dev *devs = NULL;
	struct vmm_pci_dev *pci = NULL;
	size_t n = 0;
	int rc;

	/* "all" takes the host's devices: a->pci when set (tests), else lspci now */
	if (a->n_pci || !g->attach_mode || strcmp(g->attach_mode, "all") || !a->cfg->cvm.gpu.enabled)
		return vmm_gpus_resolve(a->cfg, a->pci, a->n_pci, g, m, e);
	if (vmm_lspci_read(&devs, &n) < 0)
		return err_set(e, "cannot list the host's PCI devices (lspci)");
	pci = calloc(n ? n : 1, sizeof(*pci));
	if (!pci)
		abort();
	for (size_t i = 0; i < n; i++)
		pci[i] = devs[i].pci;
	rc = vmm_gpus_resolve(a->cfg, pci, n, g, m, e);
	free(pci);
	free(devs);
	return rc;
}

static int resolve_volumes(const struct vmm_config *c, const struct vmm_compose *cp, struct strv *out,
			   struct err *e)
{
	struct strv roots = {0};

	for (size_t i = 0; i < cp->volume_sources.n; i++) {
		const char *src = cp->volume_sources.v[i];
		bool dup = false;

		if (str_empty(c->cvm.volumes_dir))
			break; /* verity volumes disabled */
		if (!*src || strchr(src, '/') || !strcmp(src, ".") || !strcmp(src, ".."))
			goto bad;
		for (size_t k = 0; k < roots.n; k++)
			dup |= !strcmp(roots.v[k], cp->volume_roots.v[i]);
		if (dup)
			continue;
		_cleanup_free_ char *p = path_join(c->cvm.volumes_dir, src);
		if (strchr(p, ',') || strchr(p, '=')) {
			strv_free(&roots);
			return err_set(e, "Invalid volume path: %s", p);
		}
		strv_push(&roots, cp->volume_roots.v[i]);
		strv_push(out, p);
	}
	strv_free(&roots);
	return 0;
bad:
	strv_free(&roots);
	return err_set(e, "Invalid volume source: %s", cp->volume_sources.v[0]);
}

static bool simulator_has_tpm(const char *sim)
{
	/* Simulated platforms whose guest sees a (virtual) TPM of their own. */
	return sim && (!strcmp(sim, "dstack-gcp-tdx") || !strcmp(sim, "dstack-aws-nitro-tpm"));
}

static int check_simulated_tee(const struct vmm_config *c, const char *sim, struct err *e)
{
	static const char *const ok_values[] = {"dstack-tdx", "dstack-gcp-tdx", "dstack-amd-sev-snp",
						"dstack-nitro-enclave", "dstack-aws-nitro-tpm"};

	for (size_t i = 0; i < ARRAY_SIZE(ok_values); i++) {
		if (!strcmp(sim, ok_values[i])) {
			if (!c->cvm.tee_simulator.present)
				return err_set(e, "simulated_tee requires [cvm.tee_simulator]");
			return 0;
		}
	}
	return err_set(e, "Invalid simulated_tee: %s", sim);
}

static void port_holders(struct vmm_app *a, struct vmm_port_holder **out, size_t *n)
{
	struct vmm_port_holder *h = calloc(a->n ? a->n : 1, sizeof(*h));

	if (!h)
		abort();
	for (size_t i = 0; i < a->n; i++)
		h[i] = (struct vmm_port_holder){a->vms[i]->m.id, a->vms[i]->m.ports, a->vms[i]->m.n_ports};
	*out = h;
	*n = a->n;
}

static int build_manifest(struct vmm_app *a, const struct vmm_create_req *r, const struct vmm_compose *cp,
			  struct vmm_manifest *m, struct err *e)
{
	const struct vmm_config *c = a->cfg;
	_cleanup_free_ struct vmm_port_holder *holders = NULL;
	size_t n_holders;
	struct vmm_port_map *ports = NULL;
	struct vmm_net *nets = NULL;
	size_t n_nets = 0;
	char id[37];

	if (!vmm_vm_name_valid(r->name ? r->name : ""))
		return err_set(e, "Invalid name: %s", r->name);
	port_holders(a, &holders, &n_holders);
	if (vmm_ports_for_create(c, r->ports, r->n_ports, holders, n_holders, &ports, e) < 0)
		return -1;
	vmm_manifest_set_ports(m, ports, r->n_ports);
	free(ports);
	if (r->app_id) {
		const char *s = r->app_id;

		if (!strncmp(s, "0x", 2))
			s += 2;
		m->app_id = xstrdup(s);
		for (char *p = m->app_id; *p; p++)
			*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	} else {
		char h[41];

		vmm_compose_app_id(r->compose_file, strlen(r->compose_file), h);
		m->app_id = xstrdup(h);
	}
	if (r->gpus && resolve_gpus(a, r->gpus, m, e) < 0)
		return -1;
	if (resolve_volumes(c, cp, &m->volumes, e) < 0)
		return -1;
	if (r->simulated_tee) {
		if (check_simulated_tee(c, r->simulated_tee, e) < 0)
			return -1;
		m->simulated_tee = xstrdup(r->simulated_tee);
	}
	if (vmm_networks_resolve(c, r->networks, r->n_networks, r->networking, a->sys_class_net, &nets,
				 &n_nets, e) < 0)
		return -1;
	vmm_manifest_set_networks(m, nets, n_nets);
	vmm_networks_free(nets, n_nets);
	vmm_uuid_v4(id);
	m->id = xstrdup(id);
	m->name = xstrdup(r->name ? r->name : "");
	m->image = xstrdup(r->image ? r->image : "");
	m->vcpu = r->vcpu;
	m->memory = r->memory;
	m->disk_size = r->disk_size;
	m->created_at_ms = now_ms();
	m->hugepages = r->hugepages;
	m->pin_numa = r->pin_numa;
	for (size_t i = 0; i < r->n_kms_urls; i++)
		strv_push(&m->kms_urls, r->kms_urls[i]);
	for (size_t i = 0; i < r->n_gateway_urls; i++)
		strv_push(&m->gateway_urls, r->gateway_urls[i]);
	m->no_tee = r->no_tee || r->simulated_tee;
	m->swtpm = cp->raw_key_provider && !strcmp(cp->raw_key_provider, "tpm") &&
		   !simulator_has_tpm(r->simulated_tee);
	return 0;
}

static int write_new_workdir(struct vmm_app *a, const struct vmm_create_req *r, const struct vmm_manifest *m,
			     struct err *e)
{
	_cleanup_free_ char *dir = NULL;
	_cleanup_free_ char *info = xasprintf("{\"app_id\":\"%s\"}", m->app_id);

	if (vmm_workdir_create(a->cfg->run_path, m->id, e) < 0)
		return -1;
	dir = path_join(a->cfg->run_path, m->id);
	if (vmm_manifest_save(dir, m, e) < 0 ||
	    vmm_shared_write(dir, VMM_APP_COMPOSE_FILE, r->compose_file, strlen(r->compose_file), e) < 0 ||
	    (r->encrypted_env_len &&
	     vmm_shared_write(dir, VMM_ENCRYPTED_ENV_FILE, r->encrypted_env, r->encrypted_env_len, e) < 0) ||
	    (!str_empty(r->user_config) &&
	     vmm_shared_write(dir, VMM_USER_CONFIG_FILE, r->user_config, strlen(r->user_config), e) < 0) ||
	    vmm_shared_write(dir, VMM_INSTANCE_INFO_FILE, info, strlen(info), e) < 0 ||
	    vmm_state_save(dir, !r->stopped, e) < 0)
		return -1;
	return 0;
}

int vmm_app_create(struct vmm_app *a, const struct vmm_create_req *r, char **id_out, struct err *e)
{
	struct vmm_manifest m = {0};
	struct vmm_compose cp;
	struct vmm_vm *vm = NULL;
	bool dir_made = false;
	int ret = -1;

	if (!r->compose_file)
		return err_set(e, "compose_file is required");
	if (vmm_compose_parse(r->compose_file, strlen(r->compose_file), &cp, e) < 0)
		return -1;
	if (a->create_check_hook && a->create_check_hook(a, r, a->launch_hook_arg, e) < 0) {
		vmm_compose_free(&cp);
		return -1;
	}
	pthread_mutex_lock(&a->lock);
	if (build_manifest(a, r, &cp, &m, e) < 0)
		goto out;
	dir_made = true;
	if (write_new_workdir(a, r, &m, e) < 0)
		goto out;
	if (load_vm(a, m.id, &vm, e) < 0)
		goto out;
	if (!r->stopped && start_vm(a, vm, e) < 0) {
		drop_vm(a, vm);
		goto out;
	}
	*id_out = xstrdup(m.id);
	ret = 0;
out:
	if (ret < 0 && dir_made && m.id) {
		_cleanup_free_ char *dir = path_join(a->cfg->run_path, m.id);
		vmm_workdir_remove(dir, NULL);
	}
	pthread_mutex_unlock(&a->lock);
	vmm_manifest_free(&m);
	vmm_compose_free(&cp);
	return ret;
}

/* ---- start / stop / remove (public) ----------------------------------- */

int vmm_app_start(struct vmm_app *a, const char *id, struct err *e)
{
	WITH_VM(a, id, e, vm);
	vmm_restart_reset(&vm->restart);
	int r = start_vm(a, vm, e);
	pthread_mutex_unlock(&a->lock);
	return r;
}

int vmm_app_stop(struct vmm_app *a, const char *id, struct err *e)
{
	WITH_VM(a, id, e, vm);
	int r = stop_vm(a, vm, e);
	pthread_mutex_unlock(&a->lock);
	return r;
}

int vmm_app_remove(struct vmm_app *a, const char *id, struct err *e)
{
	WITH_VM(a, id, e, vm);
	int r = 0;
	if (!vm->removing) {
		vm->removing = true;
		r = vmm_workdir_mark_removing(vm->workdir, e);
	}
	pthread_mutex_unlock(&a->lock);
	return r;
}

/* One step of a pending removal; true when the VM is gone. */
static bool removal_step(struct vmm_app *a, struct vmm_vm *vm)
{
	_cleanup_json_ json_t *info = sv_info(a, vm->m.id);
	struct err e = ERR_INIT;

	if (info && info_running(info)) {
		if (stop_vm(a, vm, &e) < 0)
			log_warn("remove %s: stop: %s", vm->m.id, e.msg);
		json_decref(info);
		info = sv_info(a, vm->m.id);
		if (info && info_running(info))
			return false; /* poll again next tick */
	}
	if (info && sv_client_remove(&a->sv, vm->m.id, &e) < 0) {
		/* started flag still set in the supervisor: stop first */
		sv_client_stop(&a->sv, vm->m.id, NULL);
		if (sv_client_remove(&a->sv, vm->m.id, &e) < 0) {
			log_warn("remove %s: supervisor: %s", vm->m.id, e.msg);
			return false;
		}
	}
	if (vmm_workdir_remove(vm->workdir, &e) < 0) {
		log_warn("remove %s: %s", vm->m.id, e.msg);
		return false;
	}
	drop_vm(a, vm);
	return true;
}

/* ---- update ---------------------------------------------------------- */

static bool status_stopped_or_exited(struct vmm_app *a, struct vmm_vm *vm)
{
	return !vm_running(a, vm);
}

int vmm_app_update(struct vmm_app *a, const struct vmm_update_req *r, char **out, struct err *e)
{
	struct vmm_manifest m = {0};
	char derived[41] = "";
	int ret = -1;

	WITH_VM(a, r->id, e, vm);
	vmm_manifest_copy(&m, &vm->m);
	/* 1. compose */
	if (!str_empty(r->compose_file)) {
		struct vmm_compose cp;

		if (vmm_compose_parse(r->compose_file, strlen(r->compose_file), &cp, e) < 0)
			goto out;
		vmm_compose_free(&cp);
		if (!vmm_shared_exists(vm->workdir, VMM_APP_COMPOSE_FILE)) {
			err_set(e, "The instance has no app-compose.json");
			goto out;
		}
		if (vmm_shared_write(vm->workdir, VMM_APP_COMPOSE_FILE, r->compose_file,
				     strlen(r->compose_file), e) < 0)
			goto out;
		vmm_compose_app_id(r->compose_file, strlen(r->compose_file), derived);
	}
	/* 2. env and user config */
	if (r->encrypted_env_len && vmm_shared_write(vm->workdir, VMM_ENCRYPTED_ENV_FILE, r->encrypted_env,
						     r->encrypted_env_len, e) < 0)
		goto out;
	if (!str_empty(r->user_config) && vmm_shared_write(vm->workdir, VMM_USER_CONFIG_FILE, r->user_config,
							   strlen(r->user_config), e) < 0)
		goto out;
	/* 3. resources */
	if (r->vcpu || r->memory || r->disk_size || r->image) {
		if (!status_stopped_or_exited(a, vm)) {
			err_set(e, "VM should be stopped before resizing");
			goto out;
		}
		if (r->vcpu)
			m.vcpu = *r->vcpu;
		if (r->memory)
			m.memory = *r->memory;
		if (r->image) {
			struct vmm_image img;

			if (vmm_image_load(a->cfg->image_path, r->image, &img, e) < 0)
				goto out;
			vmm_image_free(&img);
			str_set(&m.image, r->image);
		}
		if (r->disk_size) {
			_cleanup_free_ char *hda = path_join(vm->workdir, "hda.img");

			if (*r->disk_size < m.disk_size) {
				err_set(e, "Cannot shrink disk size");
				goto out;
			}
			if (*r->disk_size > m.disk_size && file_exists(hda)) {
				struct strv qi = {0};

				strv_push(&qi, a->qemu_img_path);
				strv_push(&qi, "resize");
				strv_push(&qi, hda);
				strv_pushf(&qi, "%uG", *r->disk_size);
				int rr = vmm_run(&qi, e);
				strv_free(&qi);
				if (rr < 0)
					goto out;
			}
			m.disk_size = *r->disk_size;
		}
	}
	/* 4. gpus, 5. no_tee */
	if (r->gpus && resolve_gpus(a, r->gpus, &m, e) < 0)
		goto out;
	if (r->no_tee)
		m.no_tee = *r->no_tee;
	/* 6. ports */
	if (r->update_ports) {
		_cleanup_free_ struct vmm_port_holder *holders = NULL;
		size_t nh;
		struct vmm_port_map *ports = NULL;

		port_holders(a, &holders, &nh);
		if (vmm_ports_for_update(r->ports, r->n_ports, vm->m.id, holders, nh, &ports, e) < 0)
			goto out;
		vmm_manifest_set_ports(&m, ports, r->n_ports);
		free(ports);
	}
	/* 7. urls */
	if (r->update_kms_urls) {
		strv_free(&m.kms_urls);
		for (size_t i = 0; i < r->n_kms_urls; i++)
			strv_push(&m.kms_urls, r->kms_urls[i]);
	}
	if (r->update_gateway_urls) {
		strv_free(&m.gateway_urls);
		for (size_t i = 0; i < r->n_gateway_urls; i++)
			strv_push(&m.gateway_urls, r->gateway_urls[i]);
	}
	/* 8. networking */
	if (r->update_networking) {
		struct vmm_net *nets = NULL;
		size_t n = 0;

		if (vmm_networks_resolve(a->cfg, r->networks, r->n_networks, NULL, a->sys_class_net, &nets,
					 &n, e) < 0)
			goto out;
		vmm_manifest_set_networks(&m, nets, n);
		vmm_networks_free(nets, n);
		if (!vm_running(a, vm))
			vmm_runtime_networks_save(vm->workdir, NULL, 0, NULL);
	}
	/* 9. swtpm from the (possibly new) compose */
	{
		struct vmm_compose cp;

		if (read_compose(vm, &cp, e) < 0)
			goto out;
		m.swtpm = cp.raw_key_provider && !strcmp(cp.raw_key_provider, "tpm") &&
			  !simulator_has_tpm(m.simulated_tee);
		vmm_compose_free(&cp);
	}
	/* 10. save and reload */
	if (vmm_manifest_save(vm->workdir, &m, e) < 0)
		goto out;
	vmm_manifest_copy(&vm->m, &m);
	if (strcmp(vm->img.name ? vm->img.name : "", m.image)) {
		vmm_image_free(&vm->img);
		if (vmm_image_load(a->cfg->image_path, m.image, &vm->img, e) < 0)
			goto out;
		vm->shared_ro = vm->img.shared_ro;
	}
	*out = xstrdup(derived);
	ret = 0;
out:
	pthread_mutex_unlock(&a->lock);
	vmm_manifest_free(&m);
	return ret;
}

/* ---- status / info ---------------------------------------------------- */

static json_t *hex_or_empty(const uint8_t *d, size_t len)
{
	_cleanup_free_ char *h = hex_encode_alloc(d ? d : (const uint8_t *)"", len);

	return json_string(h);
}

static json_t *configuration_json(const struct vmm_vm *vm)
{
	const struct vmm_manifest *m = &vm->m;
	_cleanup_free_ uint8_t *compose = NULL, *env = NULL, *uc = NULL;
	size_t clen = 0, elen = 0, ulen = 0;
	bool ex;
	json_t *ports = json_array(), *nets = json_array(), *gpus = json_null();

	vmm_shared_read(vm->workdir, VMM_APP_COMPOSE_FILE, &compose, &clen, &ex, NULL);
	vmm_shared_read(vm->workdir, VMM_ENCRYPTED_ENV_FILE, &env, &elen, &ex, NULL);
	vmm_shared_read(vm->workdir, VMM_USER_CONFIG_FILE, &uc, &ulen, &ex, NULL);
	for (size_t i = 0; i < m->n_ports; i++)
		json_array_append_new(ports,
				      json_pack("{s:s,s:i,s:i,s:s}", "protocol", m->ports[i].protocol,
						"host_port", (int)m->ports[i].from, "vm_port",
						(int)m->ports[i].to, "host_address", m->ports[i].address));
	for (size_t i = 0; i < m->n_networks; i++)
		json_array_append_new(nets, json_pack("{s:s,s:s}", "mode", m->networks[i].mode, "bridge_name",
						      m->networks[i].bridge ? m->networks[i].bridge : ""));
	if (m->has_gpus) {
		json_t *slots = json_array();

		for (size_t i = 0; i < m->gpus.gpus.n; i++)
			json_array_append_new(slots, json_pack("{s:s}", "slot", m->gpus.gpus.v[i]));
		gpus = json_pack("{s:o,s:s}", "gpus", slots, "attach_mode", m->gpus.attach_mode);
	}
	return json_pack(
	    "{s:s,s:s,s:s%,s:i,s:i,s:i,s:o,s:o,s:s,s:s%,s:b,s:b,s:o,s:o,s:o,s:b,s:b,s:o,s:o,s:o}", "name",
	    m->name, "image", m->image, "compose_file", compose ? (char *)compose : "", clen, "vcpu",
	    (int)m->vcpu, "memory", (int)m->memory, "disk_size", (int)m->disk_size, "ports", ports,
	    "encrypted_env", hex_or_empty(env, elen), "app_id", m->app_id, "user_config",
	    uc ? (char *)uc : "", ulen, "hugepages", m->hugepages, "pin_numa", m->pin_numa, "gpus", gpus,
	    "kms_urls", strv_to_json(&m->kms_urls), "gateway_urls", strv_to_json(&m->gateway_urls), "stopped",
	    !vm->started, "no_tee", m->no_tee, "networking",
	    m->n_networks ? json_pack("{s:s,s:s}", "mode", m->networks[0].mode, "bridge_name",
				      m->networks[0].bridge ? m->networks[0].bridge : "")
			  : json_null(),
	    "networks", nets, "simulated_tee",
	    m->simulated_tee ? json_string(m->simulated_tee) : json_null());
}

/* host[:port] of a URL like https://host:port/path. */
static void url_host_port(const char *url, char *host, size_t hl, unsigned *port)
{
	const char *p = strstr(url, "://");
	size_t n;

	p = p ? p + 3 : url;
	n = strcspn(p, ":/");
	snprintf(host, hl, "%.*s", (int)n, p);
	*port = !strncmp(url, "http://", 7) ? 80 : 443;
	if (p[n] == ':')
		*port = (unsigned)strtoul(p + n + 1, NULL, 10);
}

static json_t *app_url(struct vmm_app *a, const struct vmm_vm *vm, const char *instance_id)
{
	struct vmm_compose cp;
	char host[256];
	unsigned port;
	bool gw;

	if (str_empty(instance_id) || read_compose(vm, &cp, NULL) < 0)
		return json_null();
	gw = cp.gateway_enabled;
	vmm_compose_free(&cp);
	if (!gw)
		return json_null();
	if (vm->m.gateway_urls.n) {
		url_host_port(vm->m.gateway_urls.v[0], host, sizeof(host), &port);
	} else {
		snprintf(host, sizeof(host), "%s", a->cfg->gateway.base_domain);
		port = a->cfg->gateway.port;
	}
	if (port == 443)
		return json_sprintf("https://%s-%u.%s", instance_id, a->cfg->gateway.agent_port, host);
	return json_sprintf("https://%s-%u.%s:%u", instance_id, a->cfg->gateway.agent_port, host, port);
}

static json_t *interfaces_json(struct vmm_app *a, const struct vmm_vm *vm)
{
	size_t n;
	const struct vmm_net *nets = vmm_effective_networks(a->cfg, &vm->m, &n);
	json_t *arr = json_array();

	for (size_t i = 0; i < n; i++) {
		char mac[18] = "";
		const char *mode = nets[i].mode;
		const char *backend = !strcmp(mode, "user")     ? "slirp"
				      : !strcmp(mode, "bridge") ? "tap_bridge"
								: "custom";

		vmm_mac_address(vm->m.id, i, nets[i].mac_prefix, mac, NULL);
		json_array_append_new(
		    arr, json_pack("{s:s,s:s,s:s,s:o,s:o}", "mode", mode, "backend", backend, "mac", mac,
				   "bridge_name",
				   !strcmp(mode, "bridge") ? json_string(nets[i].bridge) : json_null(),
				   "netdev_id", json_sprintf("net%zu", i)));
	}
	return arr;
}

static json_t *since_json(const json_t *t)
{
	_cleanup_free_ char *h = NULL;
	time_t now = time(NULL);

	if (!json_is_integer(t))
		return json_string("never");
	json_int_t v = json_integer_value(t);
	h = vmm_humantime(now > v ? (uint64_t)(now - v) : 0);
	return json_string(h);
}

static json_t *vm_info_json(struct vmm_app *a, struct vmm_vm *vm, bool brief)
{
	_cleanup_json_ json_t *sv = sv_info(a, vm->m.id);
	_cleanup_free_ uint8_t *ii = NULL;
	_cleanup_json_ json_t *iij = NULL;
	size_t iilen;
	bool ex;
	bool running = sv && info_running(sv);
	json_t *state = json_object_get(sv, "state");
	const char *instance_id = NULL;
	char ver[48] = "";

	if (vmm_shared_read(vm->workdir, VMM_INSTANCE_INFO_FILE, &ii, &iilen, &ex, NULL) == 0 && ex)
		iij = json_loadb((const char *)ii, iilen, 0, NULL);
	instance_id = json_str(iij, "instance_id");
	if (vm->img.has_version)
		snprintf(ver, sizeof(ver), "%u.%u.%u", vm->img.version.major, vm->img.version.minor,
			 vm->img.version.patch);
	return json_pack(
	    "{s:s,s:s,s:s,s:o,s:o,s:s,s:o,s:o,s:o,s:s,s:s,s:s,s:s,s:o,s:o}", "id", vm->m.id, "name",
	    vm->m.name, "status", vmm_status_name(vm->removing, vm->started, running), "uptime",
	    running ? since_json(json_object_get(state, "started_at")) : json_string("never"), "app_url",
	    app_url(a, vm, instance_id), "app_id", vm->m.app_id, "instance_id",
	    instance_id ? json_string(instance_id) : json_null(), "configuration",
	    brief ? json_null() : configuration_json(vm), "exited_at",
	    since_json(json_object_get(state, "stopped_at")), "boot_progress",
	    vm->boot_progress ? vm->boot_progress : "", "boot_error", vm->boot_error ? vm->boot_error : "",
	    "shutdown_progress", vm->shutdown_progress ? vm->shutdown_progress : "", "image_version", ver,
	    "events", vmm_events_json(&vm->events), "interfaces", interfaces_json(a, vm));
}

static bool matches_keyword(const struct vmm_vm *vm, const char *kw)
{
	return str_empty(kw) || strstr(vm->m.name, kw) || strstr(vm->m.id, kw) || strstr(vm->m.app_id, kw) ||
	       strstr(vm->m.image, kw);
}

static int cmp_created(const void *x, const void *y)
{
	const struct vmm_vm *a = *(struct vmm_vm *const *)x, *b = *(struct vmm_vm *const *)y;

	return a->m.created_at_ms < b->m.created_at_ms ? -1 : a->m.created_at_ms > b->m.created_at_ms;
}

json_t *vmm_app_status(struct vmm_app *a, const struct vmm_status_req *r)
{
	json_t *vms = json_array();
	struct vmm_vm **sel;
	size_t n = 0, from = 0, to;

	pthread_mutex_lock(&a->lock);
	sel = calloc(a->n ? a->n : 1, sizeof(*sel));
	if (!sel)
		abort();
	for (size_t i = 0; i < a->n; i++) {
		struct vmm_vm *vm = a->vms[i];
		bool want = r->n_ids == 0;

		for (size_t k = 0; k < r->n_ids && !want; k++)
			want = !strcmp(r->ids[k], vm->m.id);
		if (want && matches_keyword(vm, r->keyword))
			sel[n++] = vm;
	}
	qsort(sel, n, sizeof(*sel), cmp_created);
	to = n;
	if (r->page && r->page_size) {
		uint64_t f = (uint64_t)(r->page - 1) * r->page_size;

		from = f < n ? (size_t)f : n;
		to = from + r->page_size < n ? from + r->page_size : n;
	}
	for (size_t i = from; i < to; i++)
		json_array_append_new(vms, vm_info_json(a, sel[i], r->brief));
	free(sel);
	pthread_mutex_unlock(&a->lock);
	return json_pack("{s:o,s:b,s:I}", "vms", vms, "port_mapping_enabled",
			 a->cfg->cvm.port_mapping.enabled, "total", (json_int_t)n);
}

json_t *vmm_app_info(struct vmm_app *a, const char *id)
{
	struct vmm_vm *vm;
	json_t *r;

	pthread_mutex_lock(&a->lock);
	vm = find_vm(a, id);
	r = vm ? json_pack("{s:b,s:o}", "found", 1, "info", vm_info_json(a, vm, false))
	       : json_pack("{s:b,s:n}", "found", 0, "info");
	pthread_mutex_unlock(&a->lock);
	return r;
}

/* ---- guest notifications ---------------------------------------------- */

int vmm_app_notify(struct vmm_app *a, uint32_t cid, const char *event, const char *payload, struct err *e)
{
	struct vmm_vm *vm;
	int r = 0;

	pthread_mutex_lock(&a->lock);
	vm = find_vm_cid(a, cid);
	if (!vm) {
		pthread_mutex_unlock(&a->lock);
		return err_set(e, "VM not found for CID %u", cid);
	}
	if (strlen(payload) > 4096) {
		pthread_mutex_unlock(&a->lock);
		return 0; /* dropped, still OK */
	}
	vmm_events_push(&vm->events, event, payload, now_ms());
	if (!strcmp(event, "boot.progress")) {
		set_progress(&vm->boot_progress, payload);
	} else if (!strcmp(event, "boot.error")) {
		set_progress(&vm->boot_error, payload);
	} else if (!strcmp(event, "shutdown.progress")) {
		set_progress(&vm->shutdown_progress, payload);
		if (!strcmp(payload, "powering off")) {
			vm->started = false;
			vmm_restart_reset(&vm->restart);
			r = vmm_state_save(vm->workdir, false, e);
		}
	} else if (!strcmp(event, "instance.info")) {
		r = vmm_shared_write(vm->workdir, VMM_INSTANCE_INFO_FILE, payload, strlen(payload), e);
	} else {
		log_info("guest %s: %s: %s", vm->m.id, event, payload);
	}
	pthread_mutex_unlock(&a->lock);
	return r;
}

/* ---- periodic work ------------------------------------------------------ */

static void auto_restart(struct vmm_app *a, struct vmm_vm *vm, uint64_t now)
{
	const struct vmm_config *c = a->cfg;
	struct vmm_restart_cfg rc = {c->cvm.auto_restart.initial_backoff, c->cvm.auto_restart.max_backoff,
				     c->cvm.auto_restart.max_retries, c->cvm.auto_restart.reset_window};
	uint64_t delay = 0;
	struct err e = ERR_INIT;
	char body[128];

	switch (vmm_restart_step(&rc, &vm->restart, vm->started, vm_running(a, vm), now, &delay)) {
	case VMM_RESTART_NOW:
		log_info("auto-restart %s (attempt %llu)", vm->m.id,
			 (unsigned long long)vm->restart.attempts);
		if (start_vm(a, vm, &e) < 0)
			log_warn("auto-restart %s: %s", vm->m.id, e.msg);
		break;
	case VMM_RESTART_EXHAUSTED:
		snprintf(body, sizeof(body), "Automatic restart stopped after %llu failed attempts",
			 (unsigned long long)vm->restart.attempts);
		vmm_events_push(&vm->events, "vmm.auto_restart.exhausted", body, now_ms());
		break;
	default:
		break;
	}
}

static void rotate_logs(struct vmm_app *a, struct vmm_vm *vm)
{
	static const char *const logs[] = {"stdout.log", "stderr.log", "serial.log"};
	_cleanup_json_ json_t *info = sv_info(a, vm->m.id);
	_cleanup_json_ json_t *note = NULL;
	bool serial;

	if (!info || !info_running(info))
		return;
	note = json_loads(json_str(json_object_get(info, "config"), "note") ?: "null", JSON_DECODE_ANY, NULL);
	serial = json_is_true(json_object_get(note, "serial_logappend"));
	for (size_t i = 0; i < ARRAY_SIZE(logs); i++) {
		_cleanup_free_ char *p = NULL;

		if (i == 2 && !serial)
			continue;
		p = path_join(vm->workdir, logs[i]);
		vmm_log_rotate(p, a->cfg->cvm.log.max_bytes, a->cfg->cvm.log.max_backups, time(NULL), NULL);
	}
}

void vmm_app_tick(struct vmm_app *a, uint64_t now_s, bool rotate)
{
	pthread_mutex_lock(&a->lock);
	for (size_t i = 0; i < a->n;) {
		struct vmm_vm *vm = a->vms[i];

		if (vm->removing) {
			if (!removal_step(a, vm))
				i++;
			continue;
		}
		if (a->cfg->cvm.auto_restart.enabled)
			auto_restart(a, vm, now_s);
		if (rotate)
			rotate_logs(a, vm);
		i++;
	}
	pthread_mutex_unlock(&a->lock);
}

/* ---- startup reload (§7.8) ------------------------------------------- */

static bool note_is_cvm(const json_t *proc)
{
	const char *note = json_str(json_object_get(proc, "config"), "note");
	_cleanup_json_ json_t *j = NULL;
	const char *kind;

	if (str_empty(note))
		return true;
	j = json_loads(note, 0, NULL);
	kind = json_str(j, "kind");
	return !kind || !*kind || !strcmp(kind, "cvm");
}

static json_t *find_proc(json_t *procs, const char *id)
{
	size_t i;
	json_t *p;

	json_array_foreach(procs, i, p)
	{
		const char *pid = json_str(json_object_get(p, "config"), "id");

		if (pid && !strcmp(pid, id))
			return p;
	}
	return NULL;
}

/* ReloadVms for a VM already in memory: pick up manifest edits on disk. */
static bool refresh_vm(struct vmm_vm *vm)
{
	struct vmm_manifest m;
	_cleanup_json_ json_t *old = NULL, *new = NULL;
	bool changed;

	if (vmm_manifest_load(vm->workdir, &m, NULL) < 0)
		return false;
	old = vmm_manifest_to_json(&vm->m);
	new = vmm_manifest_to_json(&m);
	changed = !json_equal(old, new);
	if (changed)
		vmm_manifest_copy(&vm->m, &m);
	vmm_manifest_free(&m);
	return changed;
}

static void load_one(struct vmm_app *a, const char *id, json_t *proc, struct vmm_reload_counts *n)
{
	struct err le = ERR_INIT;
	struct vmm_vm *vm;
	json_t *cidj = json_object_get(json_object_get(proc, "config"), "cid");
	bool keep = proc && info_running(proc) && json_is_integer(cidj);
	uint32_t cid = keep ? (uint32_t)json_integer_value(cidj) : 0;

	/* A running VM keeps the CID its QEMU already uses. */
	if (keep)
		vmm_cid_release(&a->cids, cid);
	if (load_vm(a, id, &vm, &le) < 0) {
		log_warn("%s", le.msg);
		if (keep)
			vmm_cid_occupy(&a->cids, cid, NULL);
		return;
	}
	n->loaded++;
	if (keep && vm->cid != cid) {
		vmm_cid_release(&a->cids, vm->cid);
		vm->cid = cid;
		vmm_cid_occupy(&a->cids, cid, NULL);
	}
	if (vm->started && !vm->removing && start_vm(a, vm, &le) < 0)
		log_warn("start %s: %s", vm->m.id, le.msg);
}

int vmm_app_load_all(struct vmm_app *a, struct vmm_reload_counts *counts, struct err *e)
{
	_cleanup_json_ json_t *procs = sv_client_list(&a->sv, e);
	struct vmm_reload_counts n = {0};
	struct strv ids = {0};
	size_t i;
	json_t *p;

	if (!procs)
		return err_wrap(e, "Failed to list supervisor processes");
	pthread_mutex_lock(&a->lock);
	/* 1-2: CIDs of running cvm processes are reserved first. */
	json_array_foreach(procs, i, p)
	{
		json_t *cid = json_object_get(json_object_get(p, "config"), "cid");

		if (info_running(p) && note_is_cvm(p) && json_is_integer(cid) &&
		    !find_vm_cid(a, (uint32_t)json_integer_value(cid)))
			vmm_cid_occupy(&a->cids, (uint32_t)json_integer_value(cid), NULL);
	}
	/* In-memory VMs whose directory is gone are dropped; others refreshed. */
	for (size_t k = 0; k < a->n;) {
		struct vmm_vm *vm = a->vms[k];

		if (!vm->removing && !file_exists(vm->workdir)) {
			drop_vm(a, vm);
			n.removed++;
			continue;
		}
		if (refresh_vm(vm))
			n.updated++;
		k++;
	}
	/* 3-4: load every new work directory, start what should run. */
	if (vmm_workdir_scan(a->cfg->run_path, &ids, e) < 0) {
		pthread_mutex_unlock(&a->lock);
		return -1;
	}
	for (size_t k = 0; k < ids.n; k++)
		if (!find_vm(a, ids.v[k]))
			load_one(a, ids.v[k], find_proc(procs, ids.v[k]), &n);
	strv_free(&ids);
	/* 5: orphan cvm processes (no VM loaded for them) are cleaned up;
	 * their work directory, if any, stays. Pending removals resume in tick. */
	json_array_foreach(procs, i, p)
	{
		const char *pid = json_str(json_object_get(p, "config"), "id");

		if (!pid || find_vm(a, pid) || !note_is_cvm(p))
			continue;
		log_info("cleaning up orphan supervisor process %s", pid);
		sv_client_stop(&a->sv, pid, NULL);
		sv_client_remove(&a->sv, pid, NULL);
	}
	pthread_mutex_unlock(&a->lock);
	if (counts)
		*counts = n;
	return 0;
}
