/*
 * hostcfg.h — host configuration for a dstack deployment, generated from one
 * shell-style settings file (`build-config.sh`, the operators' guide's "dev
 * deployment"): the settings, the four config files rendered from them
 * (kms.toml, gateway.toml, vmm.toml, auth-config.json), the development
 * certificates (a self-signed dev CA, the gateway RPC and wildcard
 * certificates) and the gateway's WireGuard key.
 *
 * Rendering is pure (settings in, text out) so it is unit-tested without a
 * file system; key material is created only when absent and never replaced,
 * so re-running the generator can never strand a running deployment.
 */
#ifndef DSTACK_HOSTCFG_HOSTCFG_H
#define DSTACK_HOSTCFG_HOSTCFG_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

struct hostcfg {
	/* paths (absolute; derived from the output directory) */
	char *dir;
	/* names */
	char *kms_domain;            /* KMS RPC domain (auto-bootstrap, rpc.crt SAN) */
	char *gateway_domain;        /* gateway RPC domain (rpc_domain, RPC cert CN/SAN) */
	char *gateway_public_domain; /* base domain of app URLs (wildcard cert) */
	char *bind_ip;               /* where host services listen */
	/* ports */
	uint16_t kms_rpc_port, gateway_rpc_port, gateway_admin_port, gateway_serving_port;
	uint16_t gateway_wg_port, vmm_rpc_port, auth_port, simtee_port, guest_agent_port;
	/* WireGuard */
	char *gateway_wg_interface;
	char *gateway_wg_ip;       /* gateway address, no prefix: 10.0.3.1 */
	char *gateway_wg_endpoint; /* advertised to CVMs: host:port */
	/* VMM */
	uint32_t cid_pool_start, cid_pool_size;
	/* VMM backend: "process" (simulated CVMs as processes) or "qemu" */
	char *vmm_backend;
	/* KMS policy: "dev" (allow every verified app) or "webhook" (auth-simple) */
	char *kms_auth;
	/* ACME (through the gateway's admin API) */
	bool certbot_enabled;
	char *cf_api_token; /* secret */
	char *acme_url;
};

/* The commented default build-config.sh (static text). */
const char *hostcfg_default_script(void);

/* Parse build-config.sh text (KEY=VALUE lines, '#' comments, optional quotes
 * and `export`); unknown keys are an error (a typo must not silently keep a
 * default). dir is the output directory (made absolute by the caller). */
int hostcfg_parse(const char *text, size_t len, const char *dir, struct hostcfg *c, struct err *e);
void hostcfg_free(struct hostcfg *c);

/* Where CVMs reach the host's services: 127.0.0.1 for simulated CVMs (their
 * loopback is relayed to the host's), 10.0.2.2 for QEMU guests (user
 * networking). */
const char *hostcfg_host_for_cvms(const struct hostcfg *c);

/* build-config.sh text with `key` set to value: its (first) assignment line
 * replaced, later ones dropped, or a line appended; everything else (comments,
 * other settings) kept byte for byte. Returns whether the text changed. */
bool hostcfg_script_set(const char *text, size_t len, const char *key, const char *value, struct buf *out);

/* Paths of generated files inside c->dir (malloc'd). */
char *hostcfg_path(const struct hostcfg *c, const char *name);

/* Renderers: append the file's text to out. The gateway config carries the
 * WireGuard private key and the admin token, so it is written 0600. */
void hostcfg_render_kms(const struct hostcfg *c, struct buf *out);
void hostcfg_render_gateway(const struct hostcfg *c, const char *wg_private_b64, const char *wg_public_b64,
			    const char *admin_token, struct buf *out);
void hostcfg_render_vmm(const struct hostcfg *c, const char *supervisor_exe, struct buf *out);
void hostcfg_render_auth(const struct hostcfg *c, struct buf *out);

/* URL of an app through the gateway: https://<app_id>[-<port>][s|g].<base>:<serving port>/
 * (port 0 = the default, suffix 0 = none, 's' passthrough, 'g' HTTP/2). */
char *hostcfg_app_url(const struct hostcfg *c, const char *app_id, uint16_t port, char suffix);

/*
 * Key material (devcerts.c). Each function creates what is missing and keeps
 * what exists; *created (*what) reports whether anything was written.
 */
/* WireGuard X25519 key: base64 private key file (0600); public key out. */
int hostcfg_ensure_wg_key(const char *path, char priv_b64[45], char pub_b64[45], bool *created,
			  struct err *e);
/* Random 32-byte hex token file (0600). */
int hostcfg_ensure_token(const char *path, char token[65], bool *created, struct err *e);
/* What happened to a certificate: kept as it was, created with a new key,
 * or reissued for the key it already had. */
enum hostcfg_written { HOSTCFG_KEPT, HOSTCFG_CREATED, HOSTCFG_REISSUED };
/* Self-signed P-256 dev CA (key 0600); reissued when its certificate does
 * not match the key. */
int hostcfg_ensure_dev_ca(const char *key_path, const char *cert_path, enum hostcfg_written *what,
			  struct err *e);
/*
 * A leaf certificate signed by the dev CA for the given DNS names (names[0]
 * is also the CN). The key is created if absent and never replaced; the
 * certificate is (re)issued when absent, when `reissue` is set, or when its
 * names differ from `names`.
 */
int hostcfg_ensure_leaf(const char *ca_key_path, const char *ca_cert_path, const char *key_path,
			const char *cert_path, const char *const *names, size_t n_names, bool reissue,
			enum hostcfg_written *what, struct err *e);

/* The placeholder image of simulated CVMs (devimage.c): <images_dir>/dstack-dev
 * with metadata.json, empty kernel and initrd, digest.txt. Kept when present. */
#define HOSTCFG_DEV_IMAGE "dstack-dev"
int hostcfg_ensure_dev_image(const char *images_dir, bool *created, struct err *e);

/* Directory of the running executable (from /proc/self/exe), malloc'd. */
char *hostcfg_self_dir(struct err *e);
/*
 * Find a program: <self dir>/<build_rel> (e.g. "../kms/dstack-kms" from
 * build/dstack/), then <self dir>/<name>, then $PATH. NULL if not found.
 */
char *hostcfg_find_program(const char *name, const char *build_rel);

#endif
