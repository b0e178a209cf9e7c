/*
 * sv_client.h — the VMM's client for the supervisor API (spec §10): JSON
 * over HTTP on the supervisor's unix socket. Replies are {"data":X} or
 * {"error":msg}; an error reply becomes a -1 with that message.
 */
#ifndef DSTACK_VMM_SV_CLIENT_H
#define DSTACK_VMM_SV_CLIENT_H

#include <stdbool.h>

#include <jansson.h>

#include "core/err.h"

struct sv_client {
	const char *sock; /* path of the unix socket */
	long timeout_ms;  /* per call; 0 = 10 s */
};

/* GET /ping with a 100 ms timeout. */
bool sv_client_ping(const struct sv_client *c);
int sv_client_deploy(const struct sv_client *c, const json_t *config, struct err *e);
int sv_client_start(const struct sv_client *c, const char *id, struct err *e);
int sv_client_stop(const struct sv_client *c, const char *id, struct err *e);
int sv_client_remove(const struct sv_client *c, const char *id, struct err *e);
int sv_client_clear(const struct sv_client *c, struct err *e);
int sv_client_shutdown(const struct sv_client *c, struct err *e);
/* Array of ProcessInfo (caller decrefs). */
json_t *sv_client_list(const struct sv_client *c, struct err *e);
/* ProcessInfo, or json_null() when absent (caller decrefs); NULL on error. */
json_t *sv_client_info(const struct sv_client *c, const char *id, struct err *e);
/* Raw call: returns the whole reply object (tests). */
json_t *sv_client_call(const struct sv_client *c, const char *method, const char *path, const json_t *body,
		       long timeout_ms, struct err *e);

/*
 * VMM startup (§10): ping; if that fails and auto_start, delete the socket,
 * spawn `exe --uds sock --pid-file pid --log-file log [--detach]` with
 * RUST_LOG=info,rocket=warn, and ping up to 10 more times (sleep 100*i ms).
 */
int sv_client_ensure_running(const struct sv_client *c, const char *exe, const char *pid_file,
			     const char *log_file, bool detached, bool auto_start, struct err *e);

#endif
