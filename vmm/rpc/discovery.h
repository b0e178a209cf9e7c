/*
 * discovery.h — the VMM discovery files (spec §1):
 * `$XDG_RUNTIME_DIR/dstack-vmm/<uuid>.json` (else `/run/user/<uid>/dstack-vmm/`)
 * so `dstack vmm` finds a running VMM without being told its address.
 */
#ifndef DSTACK_VMM_DISCOVERY_H
#define DSTACK_VMM_DISCOVERY_H

#include <jansson.h>

#include "core/err.h"

/* The directory (malloc'd). */
char *vmm_discovery_dir(void);
/* Write this process's entry (sets info.id); *path_out receives its file (to remove on exit). Prunes dead
 * entries. */
int vmm_discovery_write(json_t *info, char **path_out, struct err *e);
/* Live entries (pid alive), oldest first; a JSON array. */
json_t *vmm_discovery_list(void);

#endif
