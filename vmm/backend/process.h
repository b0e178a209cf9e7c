/*
 * process.h — the process backend: a simulated CVM for hosts without
 * TDX/KVM. Instead of QEMU the supervisor runs `dstack-vmm process-vm
 * <workdir>`, which runs the guest's own programs (`dstack-util setup` on a
 * simulated TD, `dstack-guest-agent`, the app) in the VM's network
 * namespace and work directory, with its `shared/` folder as the host share. Each such VM gets its own
 * host-API unix socket `<workdir>/host-api.sock`, named in `.sys-config.json`
 * `host_api_url` as `unix:<path>:/api`; the socket identifies the VM.
 */
#ifndef DSTACK_VMM_BACKEND_PROCESS_H
#define DSTACK_VMM_BACKEND_PROCESS_H

#include <event2/event.h>

#include "vmm/app.h"
#include "vmm/rpc/rpc.h"

/* Settings (procconf.c): [cvm] backend, process_netns, [cvm.process]. */
struct vmm_proc_config {
	char *mode;        /* [cvm] backend: "auto" | "process" | "qemu" */
	bool shared_net;   /* [cvm] process_netns = false: guests share the host network namespace */
	char *simtee_dir;  /* [cvm.process] simtee_dir: the simulated TDX's PKI (dstack simtee init) */
	char *dev_root_ca; /* [cvm.process] dev_root_ca: trust anchor for the KMS's quote */
	char *pccs_url;    /* [cvm.process] pccs_url: collateral for setup's KMS check */
	char *dstack_util; /* [cvm.process] dstack_util, guest_agent: the guest programs */
	char *guest_agent;
};

int vmm_proc_config_load(const char *file, struct vmm_proc_config *pc, struct err *e);
void vmm_proc_config_free(struct vmm_proc_config *pc);
/* `<workdir>/process-vm.json`: what `process-vm` runs, written at each launch. */
int vmm_proc_plan_write(const char *workdir, const struct vmm_proc_config *pc, unsigned agent_port,
			struct err *e);
json_t *vmm_proc_plan_read(const char *workdir, struct err *e);

struct vmm_proc_backend {
	struct vmm_rpc *rpc;
	struct event_base *base;
	const struct vmm_proc_config *pc;
	const char *self_exe; /* dstack-vmm */
	struct vmm_proc_sock **socks;
	size_t n_socks;
	/* The container runtime that last answered the CreateVm probe and when
	 * (CLOCK_MONOTONIC ms; 0 = none yet): the check runs on a pool thread and
	 * again on the loop (vmm/rpc/rpc.c), where this answer saves a probe. */
	_Atomic(const char *) runtime_ok;
	_Atomic int64_t runtime_ok_ms;
};

/* The guest agent's GuestApi socket is <workdir>/VMM_GUEST_API_SOCK (vmm/rpc/guest.h),
 * where ShutdownVm and the /guest proxy find it. */

/* struct vmm_app launch_hook; arg is the struct vmm_proc_backend. */
int vmm_proc_launch(struct vmm_app *a, struct vmm_vm *vm, void *arg, struct err *e);
/* Should this VM run as processes? */
bool vmm_proc_selected(const struct vmm_proc_backend *b, const struct vmm_vm *vm);
/* struct vmm_app create_check_hook: refuses a docker-compose app bound for
 * this backend when no container runtime answers (vmm/backend/runtime.h);
 * a runtime that answered in the last VMM_RUNTIME_FRESH_MS is not probed
 * again. Thread-safe: CreateVm runs it on a pool thread first. */
#define VMM_RUNTIME_FRESH_MS 10000
int vmm_proc_create_check(struct vmm_app *a, const struct vmm_create_req *r, void *arg, struct err *e);
/* After the startup reload: reopen the host-API sockets of process VMs that
 * kept running while the VMM was down. */
int vmm_proc_rebind(struct vmm_proc_backend *b, struct vmm_app *a, struct err *e);
/* Close the host-API sockets of VMs that are gone. */
void vmm_proc_gc(struct vmm_proc_backend *b, struct vmm_app *a);
void vmm_proc_backend_free(struct vmm_proc_backend *b);

/* `dstack-vmm process-vm <workdir> [--shared-net]`: the simulated guest (runs under the
 * supervisor). With isolate_net the guest gets its own network namespace (loopback only, needs
 * CAP_SYS_ADMIN; falls back to the host's); mapped ports are forwarded into it and the host
 * services it names (loopback URLs) are relayed out of it. */
int vmm_process_vm_main(const char *workdir, bool isolate_net);

#endif
