/*
 * cfg.c — kms.toml defaults, schema and start-up checks (see cfg.h).
 *
 * The defaults are the reference's built-in values, written out as TOML so an
 * operator can read them with `dstack-kms --print-defaults` and copy what they
 * change. `core.auth_api.webhook.timeout` is ours (the reference relies on its
 * HTTP client's default); everything else keeps the reference's names.
 */
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/mem.h"
#include "cfg.h"

const char kms_default_toml[] = "[default]\n"
				"workers = 8\n"
				"max_blocking = 64\n"
				"ident = \"DStack KMS\"\n"
				"temp_dir = \"/tmp\"\n"
				"keep_alive = 10\n"
				"log_level = \"info\"\n"
				"\n"
				"[rpc]\n"
				"address = \"0.0.0.0\"\n"
				"port = 8000\n"
				"\n"
				"[rpc.tls]\n"
				"key = \"/etc/kms/certs/rpc.key\"\n"
				"certs = \"/etc/kms/certs/rpc.crt\"\n"
				"\n"
				"[rpc.tls.mutual]\n"
				"ca_certs = \"/etc/kms/certs/tmp-ca.crt\"\n"
				"mandatory = false\n"
				"\n"
				"[core]\n"
				"cert_dir = \"/etc/kms/certs\"\n"
				"subject_postfix = \".dstack\"\n"
				"site_name = \"\"\n"
				"enforce_self_authorization = true\n"
				"attest_rpc_cert = true\n"
				"sev_snp_key_release = false\n"
				"aws_nitro_tpm_key_release = false\n"
				"\n"
				"[core.attestation]\n"
				"insecure_allow_external_trust_anchors = false\n"
				"\n"
				"[core.attestation.urls]\n"
				"pccs = \"https://pccs.phala.network\"\n"
				"\n"
				"[core.image]\n"
				"verify = true\n"
				"cache_dir = \"/usr/share/dstack/images\"\n"
				"download_url = \"http://localhost:8000/{OS_IMAGE_HASH}.tar.gz\"\n"
				"download_timeout = \"2m\"\n"
				"\n"
				"[core.admin]\n"
				"enabled = false\n"
				"address = \"127.0.0.1\"\n"
				"port = 8001\n"
				"auth_token = \"\"\n"
				"htpasswd_file = \"\"\n"
				"insecure_no_auth = false\n"
				"\n"
				"[core.metrics]\n"
				"enabled = true\n"
				"\n"
				"[core.auth_api]\n"
				"type = \"webhook\"\n"
				"\n"
				"[core.auth_api.webhook]\n"
				"url = \"http://auth-api:8000\"\n"
				"timeout = \"10s\"\n"
				"\n"
				"[core.auth_api.dev]\n"
				"gateway_app_id = \"any\"\n"
				"\n"
				"[core.onboard]\n"
				"enabled = true\n"
				"auto_bootstrap_domain = \"\"\n"
				"address = \"0.0.0.0\"\n"
				"port = 8000\n";

#define F(k, kind, m, ...) CFG_FIELD(struct kms_config, k, kind, m, __VA_ARGS__)

static const struct cfg_field schema[] = {
    CFG_SERVER_FIELDS("default.", struct kms_config),
    F("rpc.address", CFG_STRING, rpc_address),
    F("rpc.port", CFG_UINT, rpc_port),
    CFG_TLS_FIELDS("rpc.tls", struct kms_config, 0),
    F("core.cert_dir", CFG_STRING, cert_dir),
    {.key = "core.subject_postfix", .kind = CFG_IGNORE},
    F("core.site_name", CFG_STRING, site_name),
    F("core.enforce_self_authorization", CFG_BOOL, enforce_self_authorization),
    F("core.attest_rpc_cert", CFG_BOOL, attest_rpc_cert),
    F("core.sev_snp_key_release", CFG_BOOL, sev_snp_key_release),
    F("core.aws_nitro_tpm_key_release", CFG_BOOL, aws_nitro_tpm_key_release),
    CFG_ATTESTATION_FIELDS(struct kms_config),
    {.key = "core.attestation.root_ca.gcp_tpm", .kind = CFG_IGNORE},
    {.key = "core.attestation.root_ca.aws_nitro_enclave", .kind = CFG_IGNORE},
    {.key = "core.attestation.root_ca.aws_nitro_tpm", .kind = CFG_IGNORE},
    {.key = "core.attestation.root_ca.sev_snp_milan", .kind = CFG_IGNORE},
    {.key = "core.attestation.root_ca.sev_snp_genoa", .kind = CFG_IGNORE},
    {.key = "core.attestation.root_ca.sev_snp_turin", .kind = CFG_IGNORE},
    F("core.image.verify", CFG_BOOL, image_verify),
    F("core.image.cache_dir", CFG_STRING, image_cache_dir),
    F("core.image.download_url", CFG_STRING, image_download_url),
    F("core.image.download_timeout", CFG_DURATION, image_download_timeout_ms),
    F("core.admin.enabled", CFG_BOOL, admin_enabled),
    F("core.admin.address", CFG_STRING, admin_address),
    F("core.admin.port", CFG_UINT, admin_port),
    F("core.admin.auth_token", CFG_STRING, admin_token, .flags = CFG_SECRET),
    F("core.admin.htpasswd_file", CFG_STRING, admin_htpasswd),
    F("core.admin.insecure_no_auth", CFG_BOOL, admin_insecure_no_auth),
    F("core.metrics.enabled", CFG_BOOL, metrics_enabled),
    F("core.auth_api.type", CFG_STRING, auth_type),
    F("core.auth_api.webhook.url", CFG_STRING, webhook_url),
    F("core.auth_api.webhook.timeout", CFG_DURATION, webhook_timeout_ms),
    F("core.auth_api.dev.gateway_app_id", CFG_STRING, dev_gateway_app_id),
    F("core.onboard.enabled", CFG_BOOL, onboard_enabled),
    F("core.onboard.auto_bootstrap_domain", CFG_STRING, auto_bootstrap_domain),
    F("core.onboard.address", CFG_STRING, onboard_address),
    F("core.onboard.port", CFG_UINT, onboard_port),
};

/* [core.attestation] is strict in the reference: a misspelt trust-anchor key
 * must not silently fall back to the default anchor. */
static int check_attestation_keys(const struct config *c, struct err *e)
{
	static const char *const top[] = {"insecure_allow_external_trust_anchors", "urls", "root_ca"};
	static const char *const urls[] = {"pccs", "amd_kds"};
	static const char *const roots[] = {"tdx",           "gcp_tpm",       "aws_nitro_enclave",
					    "aws_nitro_tpm", "sev_snp_milan", "sev_snp_genoa",
					    "sev_snp_turin"};
	static const struct {
		const char *path;
		const char *const *keys;
		size_t n;
	} tables[] = {
	    {"core.attestation", top, ARRAY_SIZE(top)},
	    {"core.attestation.urls", urls, ARRAY_SIZE(urls)},
	    {"core.attestation.root_ca", roots, ARRAY_SIZE(roots)},
	};

	for (size_t t = 0; t < ARRAY_SIZE(tables); t++) {
		json_t *obj = config_get(c, tables[t].path);
		const char *key;
		json_t *v;

		if (!obj)
			continue;
		if (!json_is_object(obj))
			return err_set(e, "%s: expected a table", tables[t].path);
		json_object_foreach(obj, key, v)
		{
			bool known = false;

			for (size_t i = 0; i < tables[t].n; i++)
				known = known || !strcmp(key, tables[t].keys[i]);
			if (!known) {
				char origin[512];

				config_origin(c, tables[t].path, origin, sizeof(origin));
				return err_set(e, "%s: unknown key '%s.%s'", origin, tables[t].path, key);
			}
		}
	}
	return 0;
}

static int validate(void *obj, const struct config *c, struct err *e)
{
	struct kms_config *cfg = obj;
	const char *tok = getenv("DSTACK_KMS_ADMIN_TOKEN");
	enum log_level lvl;

	(void)c;
	if (!tok || !*tok)
		tok = getenv("ADMIN_API_TOKEN");
	if (tok && *tok) {
		free(cfg->admin_token);
		cfg->admin_token = strdup(tok);
		if (!cfg->admin_token)
			return err_set(e, "out of memory");
	}
	if (log_level_parse(cfg->log_level, &lvl) < 0)
		return err_set(e, "default.log_level: unknown level '%s'", cfg->log_level);
	if (strcmp(cfg->auth_type, "dev") && strcmp(cfg->auth_type, "webhook"))
		return err_set(e, "core.auth_api.type: expected \"dev\" or \"webhook\", got \"%s\"",
			       cfg->auth_type);
	if (cfg->admin_enabled && !cfg->admin_insecure_no_auth && !*cfg->admin_token && !*cfg->admin_htpasswd)
		return err_set(e, "core.admin is enabled without credentials: set core.admin.auth_token (or "
				  "DSTACK_KMS_ADMIN_TOKEN / ADMIN_API_TOKEN), or insecure_no_auth = true");
	if (cfg->admin_enabled && *cfg->admin_htpasswd && !*cfg->admin_token && !cfg->admin_insecure_no_auth)
		return err_set(e, "core.admin.htpasswd_file is not supported by this KMS; use auth_token");
	if (cfg->image_verify)
		return err_set(e,
			       "core.image.verify = true: OS image verification is not implemented in this "
			       "KMS; set [core.image] verify = false");
	if (cfg->root_ca_tdx && *cfg->root_ca_tdx && !cfg->insecure_allow_external_trust_anchors)
		return err_set(e, "core.attestation.root_ca.tdx is set but "
				  "insecure_allow_external_trust_anchors is false");
	return 0;
}

int kms_config_load(struct kms_config *cfg, const char *file, struct err *e)
{
	struct config_search s = {.name = "kms", .defaults = kms_default_toml, .file = file};
	const char *etc = getenv("DSTACK_KMS_ETC_DIR"); /* tests: keep /etc out of the picture */

	if (etc && *etc)
		s.etc_dir = etc;
	return config_load_bound(&s, schema, ARRAY_SIZE(schema), cfg, sizeof(*cfg), check_attestation_keys,
				 validate, e);
}

void kms_config_free(struct kms_config *cfg)
{
	config_unbind(schema, ARRAY_SIZE(schema), cfg);
	memset(cfg, 0, sizeof(*cfg));
}
