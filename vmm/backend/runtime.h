/*
 * runtime.h — the container runtime check of the process backend: a
 * `docker-compose` app runs its containers with the host's docker (or
 * podman), so CreateVm refuses it, and the simulated guest refuses to boot
 * it, unless one of them actually answers (`<runtime> info` succeeds within
 * a short deadline; a client without a daemon does not count).
 */
#ifndef DSTACK_VMM_BACKEND_RUNTIME_H
#define DSTACK_VMM_BACKEND_RUNTIME_H

#include "core/err.h"

#define VMM_RUNTIME_PROBE_MS 5000

/* 0 when `docker info` or else `podman info` succeeds within timeout_ms each
 * (*which, may be NULL, names it); -1 with the reason for each otherwise. */
int vmm_container_runtime_check(unsigned timeout_ms, const char **which, struct err *e);

#endif
