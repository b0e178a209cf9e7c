/*
 * workdir.h — one VM's work directory run_path/<id>/ (spec §5.2).
 *
 * Every file the VMM writes here goes through file_write_atomic, so a crash
 * leaves the old or the new content. The directory is addressed only by a
 * validated id, so ids can never walk out of run_path.
 */
#ifndef DSTACK_VMM_WORKDIR_H
#define DSTACK_VMM_WORKDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "vmm/manifest.h"
#include "vmm/util.h"

#define VMM_MANIFEST_FILE "vm-manifest.json"
#define VMM_STATE_FILE "vm-state.json"
#define VMM_RUNTIME_NETWORKS_FILE "runtime-networks.json"
#define VMM_REMOVING_FILE ".removing"
#define VMM_SHARED_DIR "shared"
#define VMM_APP_COMPOSE_FILE "app-compose.json"
#define VMM_ENCRYPTED_ENV_FILE ".encrypted-env"
#define VMM_USER_CONFIG_FILE ".user-config"
#define VMM_INSTANCE_INFO_FILE ".instance_info"
#define VMM_SYS_CONFIG_FILE ".sys-config.json"
#define VMM_TEE_SIMULATOR_FILE ".tee-simulator.json"

/* Cap for any file the VMM reads back from a work directory. */
#define VMM_FILE_MAX (16u << 20)

/* 1..64 characters of [A-Za-z0-9_-]. */
bool vmm_id_valid(const char *id);

/* run_path/<id>, after validating id. */
char *vmm_workdir_path(const char *run_path, const char *id, struct err *e);
/* Create run_path/<id>/ and shared/ (fails if the VM directory exists). */
int vmm_workdir_create(const char *run_path, const char *id, struct err *e);
/* rm -rf the directory. Missing is not an error. */
int vmm_workdir_remove(const char *dir, struct err *e);

int vmm_manifest_save(const char *dir, const struct vmm_manifest *m, struct err *e);
int vmm_manifest_load(const char *dir, struct vmm_manifest *m, struct err *e);

/* vm-state.json {"started":bool}; a missing file reads as started=false. */
int vmm_state_save(const char *dir, bool started, struct err *e);
int vmm_state_load(const char *dir, bool *started, struct err *e);

/* shared/<name>. Secrets (.encrypted-env, .instance_info) are written 0600. */
int vmm_shared_write(const char *dir, const char *name, const void *data, size_t len, struct err *e);
/* Read shared/<name>; *exists=false (and return 0) when missing. */
int vmm_shared_read(const char *dir, const char *name, uint8_t **data, size_t *len, bool *exists,
		    struct err *e);
bool vmm_shared_exists(const char *dir, const char *name);

int vmm_workdir_mark_removing(const char *dir, struct err *e);
bool vmm_workdir_is_removing(const char *dir);

/* Ids of run_path/<id>/ directories with a valid id, sorted. */
int vmm_workdir_scan(const char *run_path, struct strv *ids, struct err *e);

/* Write runtime-networks.json (array of networks), or delete it when n == 0. */
int vmm_runtime_networks_save(const char *dir, const struct vmm_net *nets, size_t n, struct err *e);

#endif
