/*
 * rpc.c — the Vmm pRPC service (spec §3). Each handler converts its
 * protobuf-c input into the request structs of vmm/app.h (pointers only, no
 * copies) and turns the JSON documents app.c produces back into the output
 * message with the generic prpc JSON decoder, so one JSON shape serves both
 * encodings. Handlers that touch VMs run on the loop thread because starting
 * a process-backend VM opens its host-API listener on the event loop; only
 * CreateVm's backend check (a container-runtime probe) goes to a pool thread.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/hex.h"
#include "core/log.h"
#include "prpc/client.h"
#include "prpc/json.h"
#include "prpc/server.h"
#include "vmm/compose.h"
#include "vmm/gpu.h"
#include "vmm/image.h"
#include "vmm/meta.h"
#include "vmm/rpc/guest.h"
#include "vmm/rpc/rpc.h"
#include "vmm/util.h"
#include "vmm/workdir.h"
#include "vmm_rpc.pb-c.h"

#ifndef DSTACK_GIT_REV
#define DSTACK_GIT_REV "unknown"
#endif
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static struct vmm_rpc *rpc_of(struct prpc_call *call)
{
	return prpc_call_arg(call);
}

/* Move a decoded JSON document into the framework-owned output message. */
static int json_out(json_t *j, void *out, struct err *e)
{
	ProtobufCMessage *m = out;
	const ProtobufCMessageDescriptor *d = m->descriptor;
	ProtobufCMessage *dec;

	if (!j)
		return err_set(e, "internal error: no reply");
	dec = prpc_json_decode(d, j, e);
	json_decref(j);
	if (!dec)
		return err_wrap(e, "internal error: encoding reply");
	memcpy(m, dec, d->sizeof_message);
	free(dec);
	return 0;
}

/* ---- request conversion -------------------------------------------- */

void vmm_create_conv_free(struct vmm_create_conv *c)
{
	free(c->ports);
	free(c->slots);
	free(c->nets);
}

static struct vmm_port_req *conv_ports(Vmm__PortMapping **p, size_t n)
{
	struct vmm_port_req *v = calloc(n ? n : 1, sizeof(*v));

	if (!v)
		abort();
	for (size_t i = 0; i < n; i++)
		v[i] =
		    (struct vmm_port_req){p[i]->protocol, p[i]->host_port, p[i]->vm_port, p[i]->host_address};
	return v;
}

static const struct vmm_gpu_req *conv_gpus(struct vmm_create_conv *c, const Vmm__GpuConfig *g)
{
	if (!g)
		return NULL;
	c->slots = calloc(g->n_gpus ? g->n_gpus : 1, sizeof(*c->slots));
	if (!c->slots)
		abort();
	for (size_t i = 0; i < g->n_gpus; i++)
		c->slots[i] = g->gpus[i]->slot;
	c->gpu = (struct vmm_gpu_req){g->attach_mode, c->slots, g->n_gpus};
	return &c->gpu;
}

static struct vmm_net_req *conv_nets(Vmm__NetworkingConfig **n, size_t cnt)
{
	struct vmm_net_req *v = calloc(cnt ? cnt : 1, sizeof(*v));

	if (!v)
		abort();
	for (size_t i = 0; i < cnt; i++)
		v[i] = (struct vmm_net_req){n[i]->mode, n[i]->bridge_name};
	return v;
}

void vmm_create_req_from_proto(const Vmm__VmConfiguration *in, struct vmm_create_conv *c,
			       struct vmm_create_req *r)
{
	memset(r, 0, sizeof(*r));
	r->name = in->name;
	r->image = in->image;
	r->compose_file = in->compose_file;
	r->vcpu = in->vcpu;
	r->memory = in->memory;
	r->disk_size = in->disk_size;
	c->ports = conv_ports(in->ports, in->n_ports);
	r->ports = c->ports;
	r->n_ports = in->n_ports;
	r->encrypted_env = in->encrypted_env.data;
	r->encrypted_env_len = in->encrypted_env.len;
	r->app_id = in->_app_id_case ? in->app_id : NULL;
	r->user_config = in->user_config;
	r->hugepages = in->hugepages;
	r->pin_numa = in->pin_numa;
	r->gpus = conv_gpus(c, in->gpus);
	r->kms_urls = (const char *const *)in->kms_urls;
	r->n_kms_urls = in->n_kms_urls;
	r->gateway_urls = (const char *const *)in->gateway_urls;
	r->n_gateway_urls = in->n_gateway_urls;
	r->stopped = in->stopped;
	r->no_tee = in->no_tee;
	if (in->_networking_case && in->networking) {
		c->single = (struct vmm_net_req){in->networking->mode, in->networking->bridge_name};
		r->networking = &c->single;
	}
	c->nets = conv_nets(in->networks, in->n_networks);
	r->networks = c->nets;
	r->n_networks = in->n_networks;
	r->simulated_tee = in->_simulated_tee_case ? in->simulated_tee : NULL;
}

/* ---- handlers ------------------------------------------------------- */

/*
 * CreateVm runs in two steps. The backend's own check (create_check_hook:
 * the process backend probes docker/podman, up to 5 s each) runs first on a
 * pool thread, so a hung container runtime never stalls the loop and every
 * other RPC; the create itself then runs on the loop thread (starting a
 * process-backend VM opens its host-API listener there). vmm_app_create
 * calls the hook again; the backend remembers a runtime that just answered,
 * so that second check does not probe. A compose that does not parse skips
 * the pool: vmm_app_create refuses it before any check, as it always has.
 */
struct create_job {
	struct prpc_call *call;
	void *out; /* the call's Vmm__Id, alive until prpc_call_done */
	struct vmm_app *app;
	struct vmm_create_conv conv;
	struct vmm_create_req req;
	int rc;
	struct err err;
};

static int create_now(struct vmm_app *a, const struct vmm_create_req *r, void *out, struct err *e)
{
	char *id = NULL;

	if (vmm_app_create(a, r, &id, e) < 0)
		return -1;
	((Vmm__Id *)out)->id = id;
	return 0;
}

static void create_check_work(void *arg)
{
	struct create_job *j = arg;

	j->rc = j->app->create_check_hook(j->app, &j->req, j->app->launch_hook_arg, &j->err);
}

static void create_check_done(void *arg)
{
	struct create_job *j = arg;

	if (j->rc == 0)
		j->rc = create_now(j->app, &j->req, j->out, &j->err);
	prpc_call_done(j->call, j->rc, &j->err);
	vmm_create_conv_free(&j->conv);
	free(j);
}

static bool compose_parses(const char *compose_file)
{
	struct vmm_compose cp;

	if (!compose_file || vmm_compose_parse(compose_file, strlen(compose_file), &cp, NULL) < 0)
		return false;
	vmm_compose_free(&cp);
	return true;
}

static int create_vm(struct prpc_call *call, const void *in, void *out, struct err *e)
{
	struct vmm_app *a = rpc_of(call)->app;
	struct create_job *j = calloc(1, sizeof(*j));
	int rc;

	if (!j)
		abort();
	*j = (struct create_job){.call = call, .out = out, .app = a, .err = ERR_INIT};
	vmm_create_req_from_proto(in, &j->conv, &j->req);
	if (a->create_check_hook && compose_parses(j->req.compose_file) &&
	    http_server_submit(http_req_server(prpc_call_http(call)), create_check_work, create_check_done, j,
			       e) == 0)
		return PRPC_ASYNC;
	rc = create_now(a, &j->req, out, e);
	vmm_create_conv_free(&j->conv);
	free(j);
	return rc;
}

static const char *id_of(const void *in)
{
	return ((const Vmm__Id *)in)->id;
}

static int start_vm(struct prpc_call *call, const void *in, void *out, struct err *e)
{
	(void)out;
	return vmm_app_start(rpc_of(call)->app, id_of(in), e);
}

static int stop_vm(struct prpc_call *call, const void *in, void *out, struct err *e)
{
	(void)out;
	return vmm_app_stop(rpc_of(call)->app, id_of(in), e);
}

/* Graceful shutdown (pool thread): the guest agent's GuestApi Shutdown (it
 * then reports "powering off" and powers the VM off). When the agent cannot
 * be reached (no vsock on this host, no guest-api.sock, agent down) the VM
 * is stopped through its backend instead. */
static int shutdown_vm(struct prpc_call *call, const void *in, void *out, struct err *e)
{
	struct vmm_app *a = rpc_of(call)->app;
	struct vmm_guest_target t;
	struct err ge = ERR_INIT;

	(void)out;
	if (vmm_guest_target(a, id_of(in), &t, &ge) == 0) {
		int rc = vmm_guest_call(&t, "Shutdown", 10000, NULL, &ge);

		vmm_guest_target_free(&t);
		if (rc == 0) {
			log_info("ShutdownVm %s: guest agent is shutting the VM down", id_of(in));
			return 0;
		}
	}
	log_info("ShutdownVm %s: %s; stopping the VM instead", id_of(in), err_str(&ge));
	return vmm_app_stop(a, id_of(in), e);
}

static int remove_vm(struct prpc_call *call, const void *in, void *out, struct err *e)
{
	(void)out;
	return vmm_app_remove(rpc_of(call)->app, id_of(in), e);
}

static int update_vm(struct prpc_call *call, const void *in, void *out, struct err *e)
{
	const Vmm__UpdateVmRequest *u = in;
	struct vmm_create_conv c = {0};
	struct vmm_update_req r = {0};
	bool no_tee;
	char *hash = NULL;
	int rc;

	r.id = u->id;
	r.compose_file = u->compose_file;
	r.encrypted_env = u->encrypted_env.data;
	r.encrypted_env_len = u->encrypted_env.len;
	r.user_config = u->user_config;
	r.update_ports = u->update_ports;
	c.ports = conv_ports(u->ports, u->n_ports);
	r.ports = c.ports;
	r.n_ports = u->n_ports;
	r.update_kms_urls = u->update_kms_urls;
	r.kms_urls = (const char *const *)u->kms_urls;
	r.n_kms_urls = u->n_kms_urls;
	r.update_gateway_urls = u->update_gateway_urls;
	r.gateway_urls = (const char *const *)u->gateway_urls;
	r.n_gateway_urls = u->n_gateway_urls;
	r.gpus = conv_gpus(&c, u->gpus);
	r.vcpu = u->_vcpu_case ? &u->vcpu : NULL;
	r.memory = u->_memory_case ? &u->memory : NULL;
	r.disk_size = u->_disk_size_case ? &u->disk_size : NULL;
	r.image = u->_image_case ? u->image : NULL;
	no_tee = u->_no_tee_case && u->no_tee;
	r.no_tee = u->_no_tee_case ? &no_tee : NULL;
	r.update_networking = u->update_networking;
	c.nets = conv_nets(u->networks, u->n_networks);
	r.networks = c.nets;
	r.n_networks = u->n_networks;
	rc = vmm_app_update(rpc_of(call)->app, &r, &hash, e);
	vmm_create_conv_free(&c);
	if (rc < 0)
		return -1;
	((Vmm__Id *)out)->id = hash ? hash : xstrdup("");
	return 0;
}

static int resize_vm(struct prpc_call *call, const void *in, void *out, struct err *e)
{
	const Vmm__ResizeVmRequest *q = in;
	struct vmm_update_req r = {0};
	char *hash = NULL;

	(void)out;
	if (!q->_vcpu_case && !q->_memory_case && !q->_disk_size_case && !q->_image_case)
		return err_set(e, "at least one of vcpu, memory, disk_size or image is required");
	if ((q->_vcpu_case && !q->vcpu) || (q->_memory_case && !q->memory) ||
	    (q->_disk_size_case && !q->disk_size))
		return err_set(e, "resource values must be greater than 0");
	if (q->_image_case && str_empty(q->image))
		return err_set(e, "image must not be empty");
	r.id = q->id;
	r.compose_file = "";
	r.user_config = "";
	r.vcpu = q->_vcpu_case ? &q->vcpu : NULL;
	r.memory = q->_memory_case ? &q->memory : NULL;
	r.disk_size = q->_disk_size_case ? &q->disk_size : NULL;
	r.image = q->_image_case ? q->image : NULL;
	if (vmm_app_update(rpc_of(call)->app, &r, &hash, e) < 0)
		return -1;
	free(hash);
	return 0;
}

static int get_compose_hash(struct prpc_call *call, const void *in, void *out, struct err *e)
{
	const Vmm__VmConfiguration *c = in;
	struct vmm_compose cp;
	uint8_t h[32];
	char hex[65];

	(void)call;
	if (!vmm_vm_name_valid(c->name))
		return err_set(e, "Invalid VM name: %s", c->name);
	if (vmm_compose_parse((const uint8_t *)c->compose_file, strlen(c->compose_file), &cp, e) < 0)
		return err_wrap(e, "Invalid compose file");
	vmm_compose_free(&cp);
	sha256_buf(c->compose_file, strlen(c->compose_file), h);
	hex_encode(h, 32, hex);
	((Vmm__ComposeHash *)out)->hash = xstrdup(hex);
	return 0;
}

static int status(struct prpc_call *call, const void *in, void *out, struct err *e)
{
	const Vmm__StatusRequest *q = in;
	struct vmm_status_req r = {
	    (const char *const *)q->ids, q->n_ids, q->brief, q->keyword, q->page, q->page_size};

	return json_out(vmm_app_status(rpc_of(call)->app, &r), out, e);
}

static int get_info(struct prpc_call *call, const void *in, void *out, struct err *e)
{
	return json_out(vmm_app_info(rpc_of(call)->app, id_of(in)), out, e);
}

static int list_images(struct prpc_call *call, const void *in, void *out, struct err *e)
{
	struct vmm_image_list l = {0};
	json_t *j;

	(void)in;
	if (vmm_image_list(rpc_of(call)->cfg->image_path, &l, e) < 0)
		return err_wrap(e, "Failed to list images");
	j = vmm_image_list_json(&l);
	vmm_image_list_free(&l);
	return json_out(j, out, e);
}

/* Proxy to <kms_url>/prpc/GetAppEnvEncryptPubKey?json without TLS verification (pool thread). */
static int get_app_env_pubkey(struct prpc_call *call, const void *in, void *out, struct err *e)
{
	const Vmm__AppId *a = in;
	const char *kms = rpc_of(call)->cfg->kms_url;
	_cleanup_free_ char *base = NULL, *hex = NULL;
	json_t *req, *reply = NULL;
	int rc;

	if (str_empty(kms))
		return err_set(e, "KMS is not configured");
	base = xasprintf("%.*s/prpc", (int)(strlen(kms) - (kms[strlen(kms) - 1] == '/')), kms);
	hex = malloc(a->app_id.len * 2 + 1);
	if (!hex)
		abort();
	hex_encode(a->app_id.data, a->app_id.len, hex);
	struct prpc_client cl = {.base = base, .http = {.insecure = true, .timeout_ms = 10000}};
	req = json_pack("{s:s}", "app_id", hex);
	rc = prpc_client_call_json(&cl, "GetAppEnvEncryptPubKey", req, &reply, e);
	json_decref(req);
	if (rc < 0)
		return err_wrap(e, "Failed to get the app env encryption public key from KMS");
	return json_out(reply, out, e);
}

static int version(struct prpc_call *call, const void *in, void *out, struct err *e)
{
	Vmm__VersionResponse *v = out;

	(void)call, (void)in, (void)e;
	v->version = xstrdup(VMM_VERSION);
	v->rev = xstrdup(DSTACK_GIT_REV);
	return 0;
}

static int get_meta(struct prpc_call *call, const void *in, void *out, struct err *e)
{
	(void)in;
	return json_out(vmm_meta_json(rpc_of(call)->cfg, rpc_of(call)->app->sys_class_net), out, e);
}

static int list_gpus(struct prpc_call *call, const void *in, void *out, struct err *e)
{
	const struct vmm_config *c = rpc_of(call)->cfg;
	struct vmm_gpu_dev *devs = NULL;
	size_t n = 0;
	json_t *j;

	(void)in;
	if (c->cvm.gpu.enabled && vmm_lspci_read(&devs, &n) == 0)
		n = vmm_gpu_filter(c, devs, n);
	j = vmm_gpu_list_json(c, devs, n);
	free(devs);
	return json_out(j, out, e);
}

static int reload_vms(struct prpc_call *call, const void *in, void *out, struct err *e)
{
	struct vmm_reload_counts n = {0};
	Vmm__ReloadVmsResponse *r = out;

	(void)in;
	if (vmm_app_load_all(rpc_of(call)->app, &n, e) < 0)
		return -1;
	r->loaded = n.loaded;
	r->updated = n.updated;
	r->removed = n.removed;
	return 0;
}

static json_t *sv_status_json_text(const json_t *st)
{
	if (json_is_string(st))
		return json_string(json_string_value(st));
	if (json_object_get(st, "exited"))
		return json_sprintf("exited(%d)", (int)json_integer_value(json_object_get(st, "exited")));
	if (json_object_get(st, "error"))
		return json_sprintf("error(%s)", json_string_value(json_object_get(st, "error")));
	return json_string("unknown");
}

static int sv_list(struct prpc_call *call, const void *in, void *out, struct err *e)
{
	json_t *procs = sv_client_list(&rpc_of(call)->app->sv, e), *arr, *p;
	size_t i;

	(void)in;
	if (!procs)
		return err_wrap(e, "supervisor");
	arr = json_array();
	json_array_foreach(procs, i, p)
	{
		json_t *cfg = json_object_get(p, "config"), *st = json_object_get(p, "state");

		json_array_append_new(
		    arr, json_pack("{s:O,s:O,s:o,s:O,s:O,s:O}", "id", json_object_get(cfg, "id"), "name",
				   json_object_get(cfg, "name"), "status",
				   sv_status_json_text(json_object_get(st, "status")), "pid",
				   json_object_get(st, "pid"), "command", json_object_get(cfg, "command"),
				   "note", json_object_get(cfg, "note")));
	}
	json_decref(procs);
	return json_out(json_pack("{s:o}", "processes", arr), out, e);
}

static int sv_stop(struct prpc_call *call, const void *in, void *out, struct err *e)
{
	struct vmm_app *a = rpc_of(call)->app;
	_cleanup_json_ json_t *info = vmm_app_info(a, id_of(in));

	(void)out;
	if (json_is_true(json_object_get(info, "found")))
		return vmm_app_stop(a, id_of(in), e);
	return sv_client_stop(&a->sv, id_of(in), e);
}

static int sv_remove(struct prpc_call *call, const void *in, void *out, struct err *e)
{
	(void)out;
	return sv_client_remove(&rpc_of(call)->app->sv, id_of(in), e);
}

/* Blocking (pool thread): lists the registry's tags over the network. */
static int list_registry_images(struct prpc_call *call, const void *in, void *out, struct err *e)
{
	struct vmm_rpc *r = rpc_of(call);
	json_t *j;

	(void)in;
	if (!r->registry || str_empty(r->cfg->image_registry))
		return err_set(e, "Image registry is not configured ([image] registry)");
	j = vmm_registry_list(r->registry, e);
	return j ? json_out(j, out, e) : -1;
}

static int pull_registry_image(struct prpc_call *call, const void *in, void *out, struct err *e)
{
	struct vmm_rpc *r = rpc_of(call);

	(void)out;
	if (!r->registry || str_empty(r->cfg->image_registry))
		return err_set(e, "Image registry is not configured ([image] registry)");
	return vmm_registry_pull_start(r->registry, ((const Vmm__PullRegistryImageRequest *)in)->tag, e);
}

static int delete_image(struct prpc_call *call, const void *in, void *out, struct err *e)
{
	const char *name = ((const Vmm__DeleteImageRequest *)in)->name;
	struct vmm_rpc *r = rpc_of(call);
	_cleanup_free_ char *dir = NULL;
	_cleanup_json_ json_t *st = NULL;
	struct vmm_status_req q = {0};
	json_t *vm;
	size_t i;

	(void)out;
	if (!vmm_image_name_valid(name))
		return err_set(e, "Invalid image name: %s", name);
	st = vmm_app_status(r->app, &q);
	json_array_foreach(json_object_get(st, "vms"), i, vm)
	{
		const char *img =
		    json_string_value(json_object_get(json_object_get(vm, "configuration"), "image"));

		if (img && !strcmp(img, name))
			return err_set(e, "Image %s is in use by VM %s", name,
				       json_string_value(json_object_get(vm, "id")));
	}
	dir = path_join(r->cfg->image_path, name);
	if (!file_exists(dir))
		return err_set(e, "Image not found: %s", name);
	return vmm_workdir_remove(dir, e);
}

#define M(n, i, o, f) PRPC_METHOD(n, vmm__##i, vmm__##o, f)
static const struct prpc_method vmm_methods[] = {
    M("CreateVm", vm_configuration, id, create_vm),
    PRPC_METHOD("StartVm", vmm__id, google__protobuf__empty, start_vm),
    PRPC_METHOD("StopVm", vmm__id, google__protobuf__empty, stop_vm),
    PRPC_METHOD_BLOCKING("ShutdownVm", vmm__id, google__protobuf__empty, shutdown_vm),
    PRPC_METHOD("RemoveVm", vmm__id, google__protobuf__empty, remove_vm),
    M("UpdateVm", update_vm_request, id, update_vm),
    M("UpgradeApp", update_vm_request, id, update_vm),
    PRPC_METHOD("ResizeVm", vmm__resize_vm_request, google__protobuf__empty, resize_vm),
    M("GetComposeHash", vm_configuration, compose_hash, get_compose_hash),
    M("Status", status_request, status_response, status),
    M("GetInfo", id, get_info_response, get_info),
    PRPC_METHOD("ListImages", google__protobuf__empty, vmm__image_list_response, list_images),
    PRPC_METHOD_BLOCKING("GetAppEnvEncryptPubKey", vmm__app_id, vmm__public_key_response, get_app_env_pubkey),
    PRPC_METHOD("Version", google__protobuf__empty, vmm__version_response, version),
    PRPC_METHOD("GetMeta", google__protobuf__empty, vmm__get_meta_response, get_meta),
    PRPC_METHOD("ListGpus", google__protobuf__empty, vmm__list_gpus_response, list_gpus),
    PRPC_METHOD("ReloadVms", google__protobuf__empty, vmm__reload_vms_response, reload_vms),
    PRPC_METHOD("SvList", google__protobuf__empty, vmm__sv_list_response, sv_list),
    PRPC_METHOD("SvStop", vmm__id, google__protobuf__empty, sv_stop),
    PRPC_METHOD("SvRemove", vmm__id, google__protobuf__empty, sv_remove),
    PRPC_METHOD_BLOCKING("ListRegistryImages", google__protobuf__empty, vmm__registry_image_list_response,
			 list_registry_images),
    PRPC_METHOD("PullRegistryImage", vmm__pull_registry_image_request, google__protobuf__empty,
		pull_registry_image),
    PRPC_METHOD("DeleteImage", vmm__delete_image_request, google__protobuf__empty, delete_image),
};

/* §2/§17: only the legacy "Teepod." is stripped; "Vmm.<Method>" is an unknown method. */
static const char *const vmm_prefixes[] = {"Teepod.", NULL};

const struct prpc_method *vmm_rpc_methods(size_t *n)
{
	*n = ARRAY_LEN(vmm_methods);
	return vmm_methods;
}

int vmm_rpc_mount_prpc(struct http_server *srv, struct vmm_rpc *rpc, struct err *e)
{
	static struct prpc_service svc = {"Vmm", vmm_prefixes, vmm_methods, ARRAY_LEN(vmm_methods), NULL};
	static const struct prpc_service *svcs[] = {&svc};

	svc.arg = rpc;
	if (prpc_mount(srv, "/prpc/", svcs, 1, e) < 0)
		return -1;
	/* §2: a body over the 10 MiB limit is a prpc error (400 {"error": ...}), not a bare 413 */
	http_server_route_takes_oversize(srv, "POST", "/prpc/");
	http_server_route_takes_oversize(srv, "GET", "/prpc/");
	return 0;
}
