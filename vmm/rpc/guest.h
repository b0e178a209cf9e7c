/*
 * guest.h — reaching a VM's guest agent from the VMM (spec §3 "/guest/…",
 * §9 "Guest agent API"): the GuestApi JSON calls `POST /api/<M>?json` on
 * vsock <cid>:8000 for QEMU guests, or on `<workdir>/guest-api.sock` when a
 * backend serves the guest agent on a unix socket there (the process
 * backend). The `/guest/<Method>` route of the external server proxies
 * Info, SysInfo, NetworkInfo, ListContainers and Shutdown with input {id};
 * ShutdownVm uses the same call.
 */
#ifndef DSTACK_VMM_RPC_GUEST_H
#define DSTACK_VMM_RPC_GUEST_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "core/err.h"
#include "http/server.h"
#include "vmm/app.h"

#define VMM_GUEST_API_PORT 8000
#define VMM_GUEST_API_SOCK "guest-api.sock"

struct vmm_guest_target {
	char *unix_path; /* non-NULL: unix socket; else vsock */
	uint32_t cid;
	uint32_t port;
};

/*
 * Where the guest agent of VM `id` listens: `<workdir>/guest-api.sock` when
 * it exists, else vsock <cid>:8000 when the host has vhost-vsock (QEMU VMs
 * then have a vsock device). Errors: VM not found; unreachable.
 */
int vmm_guest_target(struct vmm_app *a, const char *id, struct vmm_guest_target *t, struct err *e);
void vmm_guest_target_free(struct vmm_guest_target *t);

/*
 * Blocking GuestApi call (pool threads only): `POST /api/<method>?json`
 * with body "{}". *reply (may be NULL) gets the decoded JSON (json null for
 * an empty body). A non-200 answer is an error carrying the agent's
 * `error` text.
 */
int vmm_guest_call(const struct vmm_guest_target *t, const char *method, long timeout_ms, json_t **reply,
		   struct err *e);

/* Mount `/guest/` (any method) on srv; arg is the struct vmm_rpc. */
struct vmm_rpc;
void vmm_guest_mount(struct http_server *srv, struct vmm_rpc *rpc);

#endif
