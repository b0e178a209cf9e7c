/*
 * dev.h — the parts of `dstack dev` (cmd_dev.c), split by concern:
 *
 *   dev_comps.c   the components, their command lines and health checks
 *   dev_proc.c    pid files, spawning, stopping and sweeping processes
 *   dev_cvm.c     the simulated-TDX PKI and the KMS's/gateway's own CVMs
 *   dev_app.c     deploying the example app and waiting for it
 *   dev_image.c   the VMM backend and the app's guest image
 *   dev_policy.c  auth-config.json entries for KMS_AUTH=webhook
 *   dev_byhand.c  `dev cvm kms|gateway`, `dev allow`: steps for a stack by hand
 *
 * Everything works on one struct dev: the parsed options and host config of
 * one run, read-only once the run has started.
 */
#ifndef DSTACK_CLI_DEV_H
#define DSTACK_CLI_DEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/err.h"
#include "hostcfg/hostcfg.h"

struct dev {
	char *dir;     /* absolute state dir */
	char *dstack;  /* this binary */
	char *src_dir; /* source tree (for examples/), or NULL */
	struct hostcfg c;
	int timeout_s, app_timeout_s, grace_s, instances;
	const char *compose_path, *env_path;
	const char *image;     /* VMM image name of the app */
	char image_name[65];   /* its storage when resolved from --image */
	const char *image_arg; /* --image NAME|DIR, or NULL */
	const char *backend;   /* --backend, or NULL (build-config.sh decides) */
	char without[256];     /* ",name,name," */
};

enum dev_health { H_TCP, H_HTTP, H_HTTPS, H_UNIX };

struct comp {
	const char *name;
	const char *prog;      /* file name, or NULL = this dstack binary */
	const char *build_rel; /* relative to this binary's directory */
	enum dev_health health;
};

/* Components in start order; `down` walks it backwards. */
extern const struct comp dev_comps[];
extern const size_t dev_n_comps;

/* malloc'd printf; aborts on out-of-memory (paths are small). */
char *dev_pathf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* cmd_dev.c */
/* Parse build-config.sh into d->c; generate: run `dstack hostcfg` first. */
int dev_load_config(struct dev *d, bool generate, struct err *e);
/* DIR/logs and DIR/run. */
int dev_make_dirs(const struct dev *d, struct err *e);

/* dev_byhand.c: the verbs `cvm kms|gateway` and `allow`; exit codes */
int dev_cvm(struct dev *d, const char *which);
int dev_allow(struct dev *d);

/* dev_comps.c */
bool dev_skipped(const struct dev *d, const char *name);
uint16_t dev_comp_port(const struct dev *d, const struct comp *k);
char *dev_health_url(const struct dev *d, const struct comp *k);
bool dev_healthy(const struct dev *d, const struct comp *k);
int dev_start_comp(const struct dev *d, const struct comp *k, struct err *e);
/* The gateway's WireGuard interface exists, is WireGuard and listens on
 * GATEWAY_WG_LISTEN_PORT (the gateway carries on without it). */
int dev_check_wg_link(const struct dev *d, struct err *e);
void dev_sleep_ms(long ms);
double dev_now_s(void);

/* dev_proc.c */
unsigned long long dev_proc_start_time(pid_t pid);
char *dev_pid_path(const struct dev *d, const char *name);
char *dev_log_path(const struct dev *d, const char *name);
pid_t dev_read_pid(const struct dev *d, const char *name);
int dev_write_pid(const struct dev *d, const char *name, pid_t pid, struct err *e);
pid_t dev_spawn(const struct dev *d, const char *name, char *const argv[], char *const env[], struct err *e);
int dev_run_wait(const struct dev *d, const char *logname, char *const argv[]);
void dev_print_log_tail(const char *path);
void dev_stop_pid(const char *name, pid_t pid, int grace_s);
void dev_sweep(const struct dev *d);
void dev_remove_link(const struct dev *d);
/* Run argv (a path, no shell) to completion; its stdout and stderr into out
 * (truncated to n). Returns the exit code, -1 if it could not run. */
int dev_run_capture(char *const argv[], char *out, size_t n);
/* Root, or root of a user namespace: the gateway's link, the CVMs' network
 * namespaces. */
int dev_check_privileges(struct err *e);

/* dev_cvm.c */
int dev_ensure_simtee(const struct dev *d, struct err *e);
int dev_ensure_kms_cvm(const struct dev *d, struct err *e);
/* platform: the KMS's BootInfo with KMS_AUTH=webhook (the gateway's CVM is
 * then allowed in auth-config.json before it boots), else NULL. */
int dev_boot_gateway_cvm(const struct dev *d, const json_t *platform, struct err *e);

/* dev_app.c */
char *dev_state_file(const struct dev *d, const char *name);
int dev_rpc_json(const char *url, json_t *in, json_t **out, struct err *e);
int dev_deploy_app(const struct dev *d, char app_id_hex[41], struct err *e);
/* KMS_AUTH=webhook: allow the app (its compose, the image's OS hash, the
 * platform's device) in auth-config.json. */
int dev_allow_app(const struct dev *d, const json_t *platform, struct err *e);
int dev_wait_app(const struct dev *d, const char *app_id, struct err *e);
void dev_print_urls(const struct dev *d, const char *app_id);
void dev_remove_vms(const struct dev *d);

/* dev_image.c */
/* Record --backend in build-config.sh (refused while the stack's VMM runs
 * with another one). */
int dev_set_backend(const struct dev *d, const char *backend, struct err *e);
/* --image NAME (in the VMM's image dir) or DIR (checked, linked in). */
int dev_resolve_image(struct dev *d, const char *arg, struct err *e);
/* qemu: QEMU present, and (deploying) a bootable image chosen. */
int dev_check_backend(const struct dev *d, bool deploying, struct err *e);
/* The placeholder image of simulated CVMs (image dstack-dev). */
int dev_ensure_dev_image(const struct dev *d, struct err *e);

/* dev_policy.c */
/* Add to auth-config.json what auth-simple needs to allow `boot` (a webhook
 * BootInfo body; is_kms: bootAuth/kms), printing what was added. */
int dev_policy_allow(const struct dev *d, const char *what, bool is_kms, const json_t *boot, struct err *e);
/* The KMS's BootInfo as it presents it for self-authorization (from the
 * kms-agent's attestation, verified against the simulated TDX). */
int dev_kms_boot_info(const struct dev *d, json_t **out, struct err *e);
/* An app's BootInfo from its compose and OS image hash (hex, may be "");
 * device, TCB status and advisories from `platform` (the KMS's BootInfo:
 * the same simulated machine). New reference. */
json_t *dev_app_boot_info(const char *compose, size_t len, const char *os_image_hash, const json_t *platform);

#endif
