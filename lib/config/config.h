/*
 * config.h — layered service configuration and table-driven typed binding.
 *
 * Each service (kms, gateway, vmm) loads its configuration the way the
 * reference implementation does, later layers overriding earlier ones key by
 * key (tables merge deeply, arrays and scalars replace):
 *
 *   1. the embedded defaults (a TOML string compiled into the program)
 *   2. /etc/<svc>/<svc>.toml, then /etc/<svc>/<svc>.json
 *   3. ./<svc>.toml, then ./<svc>.json
 *   4. the -c FILE (TOML if its name ends in ".toml", JSON otherwise)
 *
 * Missing files in 2 and 3 are skipped; a missing or malformed -c file is an
 * error. Every leaf remembers where it came from ("kms.toml:12"), so a bad
 * value is reported as
 *
 *   /etc/kms/kms.toml:12: core.admin.port: expected integer, got string
 *
 * and a key no schema entry knows is logged as a warning naming file and
 * line. A program declares what it reads as a schema table:
 *
 *   struct kms_cfg { uint16_t port; bool admin; uint64_t timeout_ms; ... };
 *   static const struct cfg_field schema[] = {
 *       { "rpc.port", CFG_UINT, CFG_AT(struct kms_cfg, port), .max = 65535 },
 *       { "core.admin.enabled", CFG_BOOL, CFG_AT(struct kms_cfg, admin) },
 *       { "core.image.download_timeout", CFG_DURATION, CFG_AT(struct kms_cfg, timeout_ms) },
 *       { "core.attestation", CFG_JSON, CFG_AT(struct kms_cfg, attestation) },
 *   };
 *   struct config c = CONFIG_INIT;
 *   struct config_search s = { .name = "kms", .defaults = kms_defaults, .file = opt_c };
 *   if (config_load(&c, &s, e) < 0 || config_bind(&c, schema, ARRAY_SIZE(schema), &cfg, e) < 0) ...
 *   config_free(&c);            // bound values stay valid
 *   ...
 *   config_unbind(schema, ARRAY_SIZE(schema), &cfg);   // at exit
 */
#ifndef DSTACK_CONFIG_CONFIG_H
#define DSTACK_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/err.h"

/* Largest config file read (bytes). */
#define CONFIG_MAX_FILE (1u << 20)

/* ---- loading ---- */

struct config {
	json_t *root;    /* merged values: a JSON object */
	json_t *origins; /* parallel tree of "file:line" strings (private) */
};

#define CONFIG_INIT                                                                                          \
	{                                                                                                    \
		NULL, NULL                                                                                   \
	}

struct config_search {
	const char *name;     /* service name: "kms" reads kms.toml / kms.json */
	const char *defaults; /* embedded TOML text, or NULL */
	const char *etc_dir;  /* NULL: "/etc/<name>" */
	const char *cwd_dir;  /* NULL: "." */
	const char *file;     /* the -c FILE, or NULL */
};

/* Load all layers in order. On error the config is left empty. */
int config_load(struct config *c, const struct config_search *s, struct err *e);

/* Merge one layer on top of what is loaded so far. `source` names it in
 * origins and messages. */
int config_add_toml(struct config *c, const char *text, size_t len, const char *source, struct err *e);
int config_add_json(struct config *c, const char *text, size_t len, const char *source, struct err *e);
/* Merge a file (TOML if the name ends in ".toml", else JSON). A missing file
 * is skipped when !must_exist. */
int config_add_file(struct config *c, const char *path, bool must_exist, struct err *e);

void config_free(struct config *c);

/* The merged value at a dotted path ("core.admin"), or NULL. Borrowed. */
json_t *config_get(const struct config *c, const char *path);
/* Where the value at path was set: "file:line" (JSON layers give only the
 * file name); "" if absent. Returns out. */
const char *config_origin(const struct config *c, const char *path, char *out, size_t out_size);

/* ---- typed binding ---- */

enum cfg_kind {
	CFG_BOOL,     /* bool */
	CFG_INT,      /* int8/16/32/64_t (by member size); range [min, max] */
	CFG_UINT,     /* uint8/16/32/64_t; range [min, max] */
	CFG_FLOAT,    /* double; integers accepted */
	CFG_STRING,   /* char * (malloc'd) */
	CFG_STRINGS,  /* struct cfg_strings */
	CFG_DURATION, /* uint64_t milliseconds, or CFG_DURATION_NEVER */
	CFG_SIZE,     /* uint64_t bytes */
	CFG_ADDR,     /* struct cfg_addr */
	CFG_PORTS,    /* struct cfg_ports */
	CFG_JSON,     /* json_t * (a new reference): any raw sub-tree */
	CFG_IGNORE,   /* known but unused, no warning: { .key = "x", .kind = CFG_IGNORE } */
};

enum {
	CFG_REQUIRED = 1u << 0, /* absent key is an error */
	CFG_SECRET = 1u << 1,   /* CFG_STRING: config_unbind wipes it before freeing */
};

struct cfg_field {
	const char *key; /* dotted path from the root */
	enum cfg_kind kind;
	size_t offset, size; /* use CFG_AT(type, member) */
	/* CFG_INT/CFG_UINT bounds, within the member type's range. If both are
	 * 0 the type's range applies; if either is set, both apply. */
	int64_t min, max;
	unsigned flags;
};

#define CFG_AT(type, member) .offset = offsetof(type, member), .size = sizeof(((type *)0)->member)

#define CFG_DURATION_NEVER UINT64_MAX

struct cfg_strings {
	char **items;
	size_t count;
};

enum cfg_addr_kind { CFG_ADDR_TCP, CFG_ADDR_UNIX, CFG_ADDR_VSOCK };

/* A listen/connect address. port 0 = not given (the service then uses its
 * separate port key). */
struct cfg_addr {
	enum cfg_addr_kind kind;
	char host[256]; /* TCP: name or IP, IPv6 without brackets */
	uint16_t port;  /* TCP or vsock port */
	char path[108]; /* UNIX: as written (relative paths stay relative) */
	uint32_t cid;   /* VSOCK */
};

/* A port or an inclusive port range ("8443" or "8000-8100"). */
struct cfg_ports {
	uint16_t first, last;
};

/*
 * Bind every schema field present in the config into obj. Fields absent from
 * every layer keep their value (error if CFG_REQUIRED). Keys under no schema
 * entry are logged with log_warn, once per unknown sub-tree, so bind a
 * program's whole schema in one call; declare sections handled elsewhere as
 * CFG_JSON (read them raw) or CFG_IGNORE. The first bad value fails the call
 * with "<origin>: <key>: <problem>"; call config_unbind either way. String
 * and array members are overwritten without being freed: start from a
 * zeroed struct.
 */
int config_bind(const struct config *c, const struct cfg_field *schema, size_t n, void *obj, struct err *e);
/* Free what config_bind allocated in obj (strings, arrays, json refs). */
void config_unbind(const struct cfg_field *schema, size_t n, void *obj);

/*
 * A daemon's whole config load: obj (obj_size bytes) zeroed, the layers of s
 * loaded, check_raw on the merged tree (may be NULL: checks the schema cannot
 * express), the schema bound, then check on the bound values with the tree
 * still there for config_origin (may be NULL: defaults from the environment,
 * cross-field rules). On any failure obj is unbound and zeroed again.
 */
int config_load_bound(const struct config_search *s, const struct cfg_field *schema, size_t n, void *obj,
		      size_t obj_size, int (*check_raw)(const struct config *c, struct err *e),
		      int (*check)(void *obj, const struct config *c, struct err *e), struct err *e);

/* ---- schema rows the daemons share ---- */

/* One row for member m of type: CFG_FIELD(struct x, "a.b", CFG_UINT, m, .max = 9). A
 * program's schema usually wraps it: #define F(k, kind, m, ...) CFG_FIELD(struct x, k, kind, m,
 * __VA_ARGS__). */
#define CFG_FIELD(type, k, kind, m, ...)                                                                     \
	{                                                                                                    \
		k, kind, CFG_AT(type, m), __VA_ARGS__                                                        \
	}

/*
 * The reference daemons' web-server keys under prefix ("default." in kms.toml,
 * "" in gateway.toml): workers and log_level bound to the members of those
 * names in type, max_blocking, ident, temp_dir, keep_alive and limits known
 * but unused.
 */
#define CFG_SERVER_FIELDS(prefix, type)                                                                      \
	{prefix "workers", CFG_UINT, CFG_AT(type, workers), .min = 1, .max = 1024},                          \
	    {prefix "log_level", CFG_STRING, CFG_AT(type, log_level)},                                       \
	    {.key = prefix "max_blocking", .kind = CFG_IGNORE}, {.key = prefix "ident", .kind = CFG_IGNORE}, \
	    {.key = prefix "temp_dir", .kind = CFG_IGNORE},                                                  \
	    {.key = prefix "keep_alive", .kind = CFG_IGNORE},                                                \
	{                                                                                                    \
		.key = prefix "limits", .kind = CFG_IGNORE                                                   \
	}

/*
 * [core.attestation] of kms.toml and gateway.toml: the external trust-anchor
 * switch, the PCCS URL and the TDX root bound to the members
 * insecure_allow_external_trust_anchors, pccs_url and root_ca_tdx of type;
 * urls.amd_kds known but unused. The other root_ca entries are the program's.
 */
#define CFG_ATTESTATION_FIELDS(type)                                                                         \
	CFG_FIELD(type, "core.attestation.insecure_allow_external_trust_anchors", CFG_BOOL,                  \
		  insecure_allow_external_trust_anchors),                                                    \
	    CFG_FIELD(type, "core.attestation.urls.pccs", CFG_STRING, pccs_url),                             \
	    {.key = "core.attestation.urls.amd_kds", .kind = CFG_IGNORE},                                    \
	    CFG_FIELD(type, "core.attestation.root_ca.tdx", CFG_STRING, root_ca_tdx)

/*
 * An RPC listener's TLS section: <section>.key, .certs, .mutual.ca_certs
 * (file_flags, e.g. CFG_REQUIRED) and .mutual.mandatory, bound to the members
 * tls_key, tls_certs, tls_ca_certs and tls_mandatory of type.
 */
#define CFG_TLS_FIELDS(section, type, file_flags)                                                            \
	{section ".key", CFG_STRING, CFG_AT(type, tls_key), .flags = (file_flags)},                          \
	    {section ".certs", CFG_STRING, CFG_AT(type, tls_certs), .flags = (file_flags)},                  \
	    {section ".mutual.ca_certs", CFG_STRING, CFG_AT(type, tls_ca_certs), .flags = (file_flags)},     \
	{                                                                                                    \
		section ".mutual.mandatory", CFG_BOOL, CFG_AT(type, tls_mandatory)                           \
	}

/* ---- value syntaxes (also usable for command-line flags) ---- */

/* "500ms", "5s", "10m", "5h", "1d", "1h30m", "never", or plain seconds "30". */
int cfg_parse_duration(const char *s, uint64_t *ms, struct err *e);
/* "4096", "4K", "4M", "1G", "2T" (×1024ⁿ, optional "B"/"iB"), "0x1000". */
int cfg_parse_size(const char *s, uint64_t *bytes, struct err *e);
/* "tcp:0.0.0.0:9080", "unix:/run/x.sock", "unix:./vmm.sock", "vsock:2",
 * "vsock:2:10000", "127.0.0.1:8011", "[::1]:80", "0.0.0.0". */
int cfg_parse_addr(const char *s, struct cfg_addr *a, struct err *e);
/* "8443" or "8000-8100". */
int cfg_parse_ports(const char *s, struct cfg_ports *p, struct err *e);

#endif
