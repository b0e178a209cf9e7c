/*
 * vmm_cmds.h — the `dstack vmm` subcommands, listed once in the table in
 * cmd_vmm.c, one file per subcommand or tight group:
 *
 *   vmm_list.c      lsvm, lsimage, lsgpu, info
 *   vmm_lifecycle.c start, stop, remove, resize, logs
 *   vmm_compose.c   compose, app-id (local: write/hash an app-compose.json)
 *   vmm_deploy.c    deploy (CreateVm)
 *   vmm_update.c    update (ResizeVm + one UpgradeApp), and the VM-compose helpers
 *   vmm_upgrade.c   update-env, update-app-compose, update-user-config, update-ports
 *   vmm_kms.c       kms list|add|remove, and env encryption with the KMS signer check
 *   vmm_switch.c    vmm ls | vmm switch
 *   vmm_flags.c     flag parsers several of them share (--port, sizes, --gpu)
 */
#ifndef DSTACK_CLI_VMM_CMDS_H
#define DSTACK_CLI_VMM_CMDS_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm_client.h"

typedef int vmm_cmd_fn(struct vmm_cli *c, int argc, char **argv);

vmm_cmd_fn vmm_lsvm, vmm_lsimage, vmm_lsgpu, vmm_info;
vmm_cmd_fn vmm_start, vmm_stop, vmm_remove, vmm_resize, vmm_logs;
vmm_cmd_fn vmm_compose, vmm_app_id;
vmm_cmd_fn vmm_deploy;
vmm_cmd_fn vmm_update;
vmm_cmd_fn vmm_update_env, vmm_update_app_compose, vmm_update_user_config, vmm_update_ports;
vmm_cmd_fn vmm_kms;
vmm_cmd_fn vmm_vmm;

/* ---- vmm_flags.c ---- */

/* Where an option's value goes: *str := its argument, or *on := true. */
struct flag_dest {
	int opt;
	const char **str;
	bool *on;
};
/* Store opt as its entry in dests says; false when it has none. */
bool flag_store(const struct flag_dest *dests, size_t n, int opt, const char *arg);

/* "proto[:addr]:host:vm" → PortMapping (host_address 127.0.0.1 by default). */
json_t *parse_port(const char *s, struct err *e);
/* "1024", "2G", "1T" in MB; disk sizes are in GB ("40G" → 40). */
uint32_t parse_size_mb(const char *s, bool disk);

/* --vcpu (c), --memory (m), --disk (d), --image (i) into a ResizeVm request; false for other opts. */
bool resize_flag(json_t *req, int opt, const char *arg);

/* --gpu SLOT (repeatable) | --gpu all | --ppcie (every GPU and NVSwitch: attach_mode all) */
struct gpu_flags {
	bool set, all;
	json_t *slots;
};
/* One --gpu SLOT (slot NULL: --ppcie / all); -1 (said on stderr) when all and slots mix. */
int gpu_flag(struct gpu_flags *g, const char *slot);
void gpu_flags_free(struct gpu_flags *g);
/* The GpuConfig of the flags; takes the slot list. */
json_t *gpu_json(struct gpu_flags *g);

/* ---- vmm_compose.c ---- */

/* The default app id: the first 20 bytes of sha256(app-compose.json), hex. */
void app_id_of(const char *compose, size_t len, char out[41]);

/* ---- vmm_kms.c ---- */

struct env_list;
/* Read and parse a KEY=VALUE env file into env (free it with env_list_free even on error). */
int env_file_load(const char *path, struct env_list *env, struct err *e);

/*
 * GetAppEnvEncryptPubKey from kms_url (or, NULL, from the VMM), check that a
 * trusted KMS signed it, and encrypt env_file to it: *hex_out the envelope.
 */
int encrypt_env_file(struct vmm_cli *c, const char *kms_url, const char *app_id_hex, const char *env_file,
		     char **hex_out, struct err *e);

/* ---- vmm_update.c ---- */

/* The VM's current app-compose.json, parsed; its app id in aid (when not NULL). */
json_t *vm_compose(struct vmm_cli *c, const char *id, char aid[41], struct err *e);
/* allowed_envs := the env file's keys, launch_token_hash := sha256(APP_LAUNCH_TOKEN). */
int env_compose_update(json_t *compose, const char *env_file, bool *changed, struct err *e);
/* The compose as the VM stores it (4-space indent, key order kept). */
char *compose_dump(const json_t *compose);
/* obj[field] := the text of the file at path; nothing when path is NULL. */
int set_from_file(json_t *obj, const char *field, const char *path, struct err *e);

#endif
