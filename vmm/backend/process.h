/*
 * process.h — the process backend: a simulated CVM for hosts without
 * TDX/KVM. Instead of QEMU the supervisor runs `dstack-vmm process-vm
 * <workdir>`, which plays the guest (boot progress to the host API, the app
 * from app-compose.json, host-port forwarding) in the VM's work directory,
 * with its `shared/` folder as the host share. Each such VM gets its own
 * host-API unix socket `<workdir>/host-api.sock`, named in `.sys-config.json`
 * `host_api_url` as `unix:<path>:/api`; the socket identifies the VM.
 */
#ifndef DSTACK_VMM_BACKEND_PROCESS_H
#define DSTACK_VMM_BACKEND_PROCESS_H

#include <event2/event.h>

#include "vmm/app.h"
#include "vmm/rpc/rpc.h"

struct vmm_proc_backend {
	struct vmm_rpc *rpc;
	struct event_base *base;
	const char *mode;     /* [cvm] backend: "auto" | "process" | "qemu" */
	const char *self_exe; /* dstack-vmm */
	bool shared_net;      /* [cvm] process_netns = false: apps share the host network namespace */
	struct vmm_proc_sock **socks;
	size_t n_socks;
};

/* struct vmm_app launch_hook; arg is the struct vmm_proc_backend. */
int vmm_proc_launch(struct vmm_app *a, struct vmm_vm *vm, void *arg, struct err *e);
/* Should this VM run as processes? */
bool vmm_proc_selected(const struct vmm_proc_backend *b, const struct vmm_vm *vm);
/* After the startup reload: reopen the host-API sockets of process VMs that
 * kept running while the VMM was down. */
int vmm_proc_rebind(struct vmm_proc_backend *b, struct vmm_app *a, struct err *e);
/* Close the host-API sockets of VMs that are gone. */
void vmm_proc_gc(struct vmm_proc_backend *b, struct vmm_app *a);
void vmm_proc_backend_free(struct vmm_proc_backend *b);

/* `dstack-vmm process-vm <workdir> [--shared-net]`: the simulated guest (runs under the
 * supervisor). With isolate_net the app gets its own network namespace (loopback only, needs
 * CAP_SYS_ADMIN; falls back to the host's) and mapped ports are forwarded into it. */
int vmm_process_vm_main(const char *workdir, bool isolate_net);

#endif
