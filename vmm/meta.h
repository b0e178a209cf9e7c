/*
 * meta.h — the GetMeta reply (spec §3): node URLs, resource limits and the
 * networking modes this host supports. `bridge` is offered when the default
 * bridge exists or any interface under sys_class_net is a bridge.
 */
#ifndef DSTACK_VMM_META_H
#define DSTACK_VMM_META_H

#include <jansson.h>

#include "vmm/config.h"

/* GetMetaResponse {kms, gateway, resources, networking}. */
json_t *vmm_meta_json(const struct vmm_config *c, const char *sys_class_net);

#endif
