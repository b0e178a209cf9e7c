/*
 * cfg.h — kms.toml (kms.md §8): the embedded defaults, the schema that
 * binds them into `struct kms_config`, and the checks that must pass before
 * the KMS may start (admin API without credentials, image verification).
 *
 * Layers come from lib/config: defaults ← /etc/kms/kms.{toml,json} ←
 * ./kms.{toml,json} ← -c FILE. The admin token may also come from the
 * environment (DSTACK_KMS_ADMIN_TOKEN, then ADMIN_API_TOKEN), which overrides
 * the file so the secret need not be written to disk.
 */
#ifndef DSTACK_KMS_CFG_H
#define DSTACK_KMS_CFG_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "config/config.h"
#include "core/err.h"

struct kms_config {
	/* [default] */
	uint32_t workers;
	char *log_level;
	/* [rpc] */
	char *rpc_address;
	uint16_t rpc_port;
	char *tls_key, *tls_certs, *tls_ca_certs;
	bool tls_mandatory;
	/* [core] */
	char *cert_dir;
	char *site_name;
	bool enforce_self_authorization;
	bool attest_rpc_cert;
	bool sev_snp_key_release, aws_nitro_tpm_key_release;
	/* [core.attestation] */
	bool insecure_allow_external_trust_anchors;
	char *pccs_url;
	char *root_ca_tdx;
	/* [core.image] */
	bool image_verify;
	char *image_cache_dir;
	char *image_download_url;
	uint64_t image_download_timeout_ms;
	/* [core.admin] */
	bool admin_enabled;
	char *admin_address;
	uint16_t admin_port;
	char *admin_token;
	char *admin_htpasswd;
	bool admin_insecure_no_auth;
	/* [core.metrics] */
	bool metrics_enabled;
	/* [core.auth_api] */
	char *auth_type;
	char *webhook_url;
	uint64_t webhook_timeout_ms;
	char *dev_gateway_app_id;
	/* [core.onboard] */
	bool onboard_enabled;
	char *auto_bootstrap_domain;
	char *onboard_address;
	uint16_t onboard_port;
};

/* The built-in defaults as TOML text. */
extern const char kms_default_toml[];

/* Load every layer (file: the -c FILE or NULL), bind, apply the env
 * overrides and validate. On error nothing needs freeing. */
int kms_config_load(struct kms_config *cfg, const char *file, struct err *e);
void kms_config_free(struct kms_config *cfg);

static inline bool kms_auth_is_dev(const struct kms_config *cfg)
{
	return cfg->auth_type && !__builtin_strcmp(cfg->auth_type, "dev");
}

#endif
