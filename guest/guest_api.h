/*
 * guest_api.h — the host-facing GuestApi (/api/<Method>) and the Worker
 * port's dashboard routes of the guest agent.
 */
#ifndef DSTACK_GUEST_GUEST_API_H
#define DSTACK_GUEST_GUEST_API_H

#include <jansson.h>

#include "agent.h"
#include "core/err.h"
#include "http/server.h"

int guest_api_mount(struct http_server *srv, struct agent *a, struct err *e);
int dashboard_mount(struct http_server *srv, struct agent *a, struct err *e);
/* GuestApi Info / SysInfo bodies (new references). */
json_t *guest_api_info(struct agent *a, struct err *e);
json_t *guest_api_sysinfo(struct agent *a);

#endif
