/*
 * vmm_client.h — what every `dstack vmm` subcommand shares: the client of one
 * dstack-vmm (its URL, credentials and --json), prpc calls and plain HTTP GETs
 * to it, finding it (vmm_url.c: --url, DSTACK_VMM_URL, ~/.dstack-vmm/config.json,
 * the discovery files), and the small output and file helpers (tables, --json,
 * error lines, JSON state files). The subcommands themselves are in vmm_cmds.h.
 */
#ifndef DSTACK_CLI_VMM_CLIENT_H
#define DSTACK_CLI_VMM_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "core/err.h"
#include "http/client.h"

#define VMM_DEFAULT_URL "http://localhost:8080"

struct vmm_cli {
	char *url;         /* http(s)://host:port or unix:/path; NULL for local-only commands */
	const char *token; /* Bearer */
	const char *user, *password;
	bool json;
	bool tls_unverified; /* a KMS reached directly: its answer is authenticated by its signature */
};

/* ---- vmm_client.c: calls ---- */

/* POST /prpc/<method>?json with in (consumed, may be NULL); *out (if out) the reply. */
int vmm_call(const struct vmm_cli *c, const char *method, json_t *in, json_t **out, struct err *e);
/* GET <VMM>/<path_query> with the client's credentials; timeout_ms 0 = none. */
int vmm_get(const struct vmm_cli *c, const char *path_query, int timeout_ms, struct http_response *r,
	    struct err *e);

/* ---- vmm_client.c: output and files ---- */

char *xfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "dstack vmm: <what>[: <cause>]" on stderr; returns 1 (the exit status). */
int vmm_die(const char *what, const struct err *e);
/* The string o[k], or "" (never NULL). */
const char *js(const json_t *o, const char *k);
/* Indented JSON on stdout, for --json. */
void print_json(const json_t *j);
/* A whole text file, NUL-terminated (up to 16 MiB). */
int read_text(const char *path, char **out, size_t *len, struct err *e);
/* A JSON object from path, or NULL when it is missing or not an object. */
json_t *json_file_load(const char *path, size_t max);
/* Write j (2-space indent) to path 0600, creating its directory 0700. */
int json_file_save(const char *path, const json_t *j, struct err *e);

/* A column of a table: title, width (0 = last, unpadded), field of each row; yes_no prints a bool. */
struct vmm_column {
	const char *title;
	int width;
	const char *field;
	bool yes_no;
};
/* The header line, then one line per row (each after_row'ed when given). */
void vmm_table(const struct vmm_column *cols, size_t ncols, const json_t *rows,
	       void (*after_row)(const json_t *row));

/* ---- vmm_url.c: finding the VMM (spec vmm.md §14) ---- */

/* The URL to use; flag is --url (or NULL). */
char *vmm_resolve_url(const char *flag);
/* The discovery entries of the running VMMs, each with "url" added. */
json_t *vmm_discovered(void);
/* Those of them whose id starts with prefix. */
json_t *vmm_matching(const json_t *all, const char *prefix);
/* ~/.dstack-vmm/config.json: its path, and its contents (or an empty object). */
char *vmm_cli_config_path(void);
json_t *vmm_cli_config_load(void);

#endif
