/*
 * app.h — the VMM's in-memory VM registry and lifecycle operations
 * (spec §7): create, start, stop, remove, update, status, info, guest
 * notifications, the periodic tick (removals, auto-restart, log rotation)
 * and the startup reload. This is the API the Vmm RPC handlers and the host
 * API call; the request structs mirror the proto messages field by field so
 * the handlers only copy pointers.
 *
 * Processes run under the supervisor daemon (sv_client); a mutex serialises
 * every call so RPC handlers may run on pool threads.
 */
#ifndef DSTACK_VMM_APP_H
#define DSTACK_VMM_APP_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/err.h"
#include "vmm/cid_pool.h"
#include "vmm/config.h"
#include "vmm/image.h"
#include "vmm/lifecycle.h"
#include "vmm/manifest.h"
#include "vmm/network.h"
#include "vmm/ports.h"
#include "vmm/qemu.h"
#include "vmm/sv_client.h"

/* GpuConfig. */
struct vmm_gpu_req {
	const char *attach_mode; /* "listed" | "all" */
	const char *const *slots;
	size_t n_slots;
};

/* A host PCI device as ListGpus sees it (for attach_mode "all"). */
struct vmm_pci_dev {
	char slot[16];
	char product_id[16]; /* "10de:2335" */
	char cls[32];        /* "3D controller" | "Bridge" | ... */
};

/* VmConfiguration. */
struct vmm_create_req {
	const char *name, *image, *compose_file;
	uint32_t vcpu, memory, disk_size;
	const struct vmm_port_req *ports;
	size_t n_ports;
	const uint8_t *encrypted_env;
	size_t encrypted_env_len;
	const char *app_id; /* NULL = unset */
	const char *user_config;
	bool hugepages, pin_numa;
	const struct vmm_gpu_req *gpus; /* NULL = unset */
	const char *const *kms_urls;
	size_t n_kms_urls;
	const char *const *gateway_urls;
	size_t n_gateway_urls;
	bool stopped, no_tee;
	const struct vmm_net_req *networking; /* NULL = unset */
	const struct vmm_net_req *networks;
	size_t n_networks;
	const char *simulated_tee; /* NULL = unset */
};

/* UpdateVmRequest. */
struct vmm_update_req {
	const char *id;
	const char *compose_file; /* "" = unchanged */
	const uint8_t *encrypted_env;
	size_t encrypted_env_len;
	const char *user_config;
	bool update_ports;
	const struct vmm_port_req *ports;
	size_t n_ports;
	bool update_kms_urls;
	const char *const *kms_urls;
	size_t n_kms_urls;
	bool update_gateway_urls;
	const char *const *gateway_urls;
	size_t n_gateway_urls;
	const struct vmm_gpu_req *gpus; /* NULL = unchanged */
	const uint32_t *vcpu, *memory, *disk_size;
	const char *image;  /* NULL = unchanged */
	const bool *no_tee; /* NULL = unchanged */
	bool update_networking;
	const struct vmm_net_req *networks;
	size_t n_networks;
};

struct vmm_status_req {
	const char *const *ids;
	size_t n_ids;
	bool brief;
	const char *keyword;
	uint32_t page, page_size;
};

struct vmm_vm {
	struct vmm_manifest m;
	char *workdir;
	uint32_t cid;
	bool started;
	bool removing;
	struct vmm_image img;
	bool shared_ro; /* from the image: reports boot progress */
	char *boot_progress, *boot_error, *shutdown_progress;
	struct vmm_events events;
	struct vmm_restart_state restart;
};

struct vmm_app {
	const struct vmm_config *cfg;
	struct vmm_cid_pool cids;
	struct vmm_vm **vms;
	size_t n;
	struct sv_client sv;
	struct vmm_host host;
	const char *sys_class_net; /* "/sys/class/net" */
	bool tdx;                  /* resolved platform is TDX */
	char *qemu_path;
	char *qemu_img_path; /* "qemu-img" */
	char *swtpm_path;    /* "swtpm" */
	char *self_exe;      /* dstack-vmm binary, runs `vm-launcher` for swtpm VMs */
	struct vmm_pci_dev *pci;
	size_t n_pci;
	pthread_mutex_t lock;
	/* Alternative VM backend (the process backend of vmm/backend/): called at
	 * launch with the lock held; returns 1 when it launched the VM, 0 to fall
	 * through to QEMU, -1 on error. NULL = QEMU only. */
	int (*launch_hook)(struct vmm_app *a, struct vmm_vm *vm, void *arg, struct err *e);
	void *launch_hook_arg;
	/* The backend's own refusal at CreateVm (the process backend refuses
	 * docker-compose apps when no container runtime answers): called with
	 * launch_hook_arg before anything is locked, written or allocated;
	 * -1 refuses. NULL = none. May block briefly (it may run a probe). */
	int (*create_check_hook)(struct vmm_app *a, const struct vmm_create_req *r, void *arg, struct err *e);
};

/* cfg must outlive the app. sv_sock: supervisor socket path. */
void vmm_app_init(struct vmm_app *a, const struct vmm_config *cfg, const char *sv_sock);
void vmm_app_free(struct vmm_app *a);

struct vmm_reload_counts {
	uint32_t loaded, updated, removed;
};
/*
 * §7.8 startup and ReloadVms: occupy the CIDs of running supervisor
 * processes, refresh in-memory VMs from disk (dropping those whose directory
 * vanished), load new work directories, start VMs with started=true, clean
 * up orphan processes. counts may be NULL.
 */
int vmm_app_load_all(struct vmm_app *a, struct vmm_reload_counts *counts, struct err *e);

int vmm_app_create(struct vmm_app *a, const struct vmm_create_req *r, char **id_out, struct err *e);
int vmm_app_start(struct vmm_app *a, const char *id, struct err *e);
int vmm_app_stop(struct vmm_app *a, const char *id, struct err *e);
/* The QEMU command line (§8) StartVm would run for this VM, and its CID,
 * without starting it or creating its disk (`dstack-vmm run --dry-run`). */
int vmm_app_qemu_command(struct vmm_app *a, const char *id, struct strv *argv, uint32_t *cid, struct err *e);
/* Marks removal; the work happens in vmm_app_tick. */
int vmm_app_remove(struct vmm_app *a, const char *id, struct err *e);
/* *out: "" or the first 40 hex chars of sha256(new compose). */
int vmm_app_update(struct vmm_app *a, const struct vmm_update_req *r, char **out, struct err *e);
/* StatusResponse {vms, port_mapping_enabled, total}. */
json_t *vmm_app_status(struct vmm_app *a, const struct vmm_status_req *r);
/* GetInfoResponse {found, info}. */
json_t *vmm_app_info(struct vmm_app *a, const char *id);
/* Host API Notify from the guest with vsock CID `cid`. */
int vmm_app_notify(struct vmm_app *a, uint32_t cid, const char *event, const char *payload, struct err *e);
/* Periodic work: pending removals, auto-restart, and (if rotate) log rotation. */
void vmm_app_tick(struct vmm_app *a, uint64_t now_s, bool rotate);

/* Name rule of CreateVm: [A-Za-z0-9-_. @~!$^()]*. */
bool vmm_vm_name_valid(const char *name);
/* Random UUIDv4 text (37 bytes incl. NUL). */
void vmm_uuid_v4(char out[37]);

#endif
