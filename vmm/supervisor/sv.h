/*
 * sv.h — the supervisor's process table (spec §10): deploy, start, stop,
 * remove, list and shutdown of long-running child processes (QEMU VMs).
 *
 * The supervisor is a separate daemon so VMs outlive VMM restarts; this is
 * its transport-free core, driven by the HTTP layer and by tests. Children
 * get their stdout/stderr appended (O_APPEND) to the configured files, which
 * is what the VMM's copy-then-truncate rotation expects. Each child leads its
 * own process group so a stop also reaches helpers (sudo, taskset, swtpm).
 * Exits are collected by sv_reap(), which the daemon calls on SIGCHLD.
 */
#ifndef DSTACK_VMM_SV_H
#define DSTACK_VMM_SV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <jansson.h>

#include "core/err.h"
#include "vmm/util.h"

struct sv_config {
	char *id, *name, *command;
	struct strv args;
	struct strv env; /* "KEY=VALUE" */
	char *cwd, *stdout_path, *stderr_path, *pidfile;
	bool has_cid;
	uint32_t cid;
	char *note;
};

enum sv_status { SV_RUNNING, SV_STOPPED, SV_EXITED, SV_ERROR };

struct sv_process {
	struct sv_config cfg;
	enum sv_status status;
	int wait_status;               /* SV_EXITED: raw wait status */
	char *error;                   /* SV_ERROR */
	bool started;                  /* desired state */
	pid_t pid;                     /* 0 when not running */
	time_t started_at, stopped_at; /* 0 = never */
};

struct sv {
	struct sv_process **procs;
	size_t n;
	bool frozen;
};

int sv_config_from_json(const json_t *j, struct sv_config *c, struct err *e);
json_t *sv_config_to_json(const struct sv_config *c);
void sv_config_free(struct sv_config *c);

void sv_init(struct sv *s);
/* Kills nothing: frees the table only (use sv_shutdown first). */
void sv_free(struct sv *s);

/* POST /deploy: replace the entry and spawn it. */
int sv_deploy(struct sv *s, const json_t *config, struct err *e);
int sv_start(struct sv *s, const char *id, struct err *e);
/* SIGTERM to the group, SIGKILL after grace_ms (0: SIGKILL at once), reap. */
int sv_stop(struct sv *s, const char *id, unsigned grace_ms, struct err *e);
int sv_remove(struct sv *s, const char *id, struct err *e);
/* Drop every entry that is neither started nor running. */
void sv_clear(struct sv *s);
/* Freeze, stop all, and wait up to 10 rounds of 50+200*i ms. */
void sv_shutdown(struct sv *s);
/* Collect exited children (non-blocking). Returns how many changed. */
int sv_reap(struct sv *s);

struct sv_process *sv_find(struct sv *s, const char *id);
/* ProcessInfo {config, state{status, started, pid, started_at, stopped_at}}. */
json_t *sv_info_json(const struct sv_process *p);
json_t *sv_list_json(const struct sv *s);
/* "running", "stopped", "exited(N)", "error(msg)"; malloc'd. */
char *sv_status_text(const struct sv_process *p);

#endif
