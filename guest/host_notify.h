/*
 * host_notify.h — boot notifications to the host (guest.md §5):
 * `POST <host_api_url>/Notify?json {"event","payload"}` with events
 * boot.progress, boot.error, instance.info. The URL comes from sys-config
 * `host_api_url`: "vsock://CID:PORT/path" in a CVM, "http://HOST:PORT/path"
 * or "unix:/path/to.sock[:/path]" for simulated CVMs run as processes.
 * Failures are logged and never stop the boot.
 */
#ifndef DSTACK_GUEST_HOST_NOTIFY_H
#define DSTACK_GUEST_HOST_NOTIFY_H

#include "core/err.h"

int host_notify(const char *host_api_url, const char *event, const char *payload, struct err *e);
/* host_notify, logging instead of failing (url NULL/"" = no host). */
void host_notify_soft(const char *host_api_url, const char *event, const char *payload);

#endif
