/*
 * config_test.c — kms.toml: the built-in defaults of kms.md §8, the dev
 * kms.toml starting as is, layering with ./kms.toml and -c, the admin token
 * from the environment, and the start-up refusals (admin without
 * credentials, image verification, unknown [core.attestation] keys, bad
 * auth type).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "kms.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/tap.h"

static char tmp[] = "/tmp/kms-config-test-XXXXXX";

static const char dev_toml[] =
    "[rpc]\naddress = \"0.0.0.0\"\nport = 9201\n"
    "[rpc.tls]\nkey = \"certs/rpc.key\"\ncerts = \"certs/rpc.crt\"\n"
    "[rpc.tls.mutual]\nca_certs = \"certs/tmp-ca.crt\"\nmandatory = false\n"
    "[core]\ncert_dir = \"certs\"\n"
    "[core.image]\nverify = false\n"
    "[core.auth_api]\ntype = \"dev\"\n"
    "[core.onboard]\nenabled = true\nauto_bootstrap_domain = \"\"\naddress = \"0.0.0.0\"\n"
    "port = 9203\n";

static int load_with(const char *text, struct kms_config *c, struct err *e)
{
	char p[300];

	snprintf(p, sizeof(p), "%s/test.toml", tmp);
	file_write_atomic(p, text, strlen(text), 0644, NULL);
	return kms_config_load(c, p, e);
}

int main(void)
{
	struct kms_config c;
	struct err e = ERR_INIT;
	char etc[300];

	if (!mkdtemp(tmp) || chdir(tmp) < 0)
		return 1;
	snprintf(etc, sizeof(etc), "%s/etc", tmp);
	setenv("DSTACK_KMS_ETC_DIR", etc, 1);
	unsetenv("DSTACK_KMS_ADMIN_TOKEN");
	unsetenv("ADMIN_API_TOKEN");

	/* Defaults alone: image.verify = true is refused (not implemented). */
	ok(kms_config_load(&c, NULL, &e) < 0 && strstr(err_str(&e), "core.image.verify"),
	   "defaults: image verification refused clearly: %s", err_str(&e));
	ok(load_with("[core.image]\nverify = false\n", &c, &e) == 0, "defaults + verify=false load");
	is_int(c.rpc_port, 8000, "rpc.port default 8000");
	is_str(c.rpc_address, "0.0.0.0", "rpc.address default");
	is_str(c.cert_dir, "/etc/kms/certs", "core.cert_dir default");
	is_str(c.tls_ca_certs, "/etc/kms/certs/tmp-ca.crt", "mutual ca_certs default");
	ok(!c.tls_mandatory, "mutual mandatory default false");
	ok(c.enforce_self_authorization && c.attest_rpc_cert, "self-auth and attest_rpc_cert default true");
	is_str(c.auth_type, "webhook", "auth_api.type default webhook");
	is_str(c.webhook_url, "http://auth-api:8000", "webhook url default");
	is_str(c.dev_gateway_app_id, "any", "dev gateway_app_id default");
	is_str(c.pccs_url, "https://pccs.phala.network", "pccs default");
	is_int(c.admin_port, 8001, "admin port default");
	ok(c.metrics_enabled, "metrics enabled by default");
	is_int((long)c.image_download_timeout_ms, 120000, "download_timeout 2m");
	is_int(c.onboard_port, 8000, "onboard port default");
	kms_config_free(&c);

	ok(load_with(dev_toml, &c, &e) == 0, "the dev kms.toml loads as is");
	is_int(c.rpc_port, 9201, "dev rpc port");
	is_int(c.onboard_port, 9203, "dev onboard port");
	ok(kms_auth_is_dev(&c), "dev auth");
	kms_config_free(&c);

	{
		static const char cwd_toml[] = "[core.image]\nverify = false\n[rpc]\nport = 7000\n";
		file_write_atomic("kms.toml", cwd_toml, strlen(cwd_toml), 0644, NULL);
	}
	ok(kms_config_load(&c, NULL, &e) == 0 && c.rpc_port == 7000, "./kms.toml layer applies");
	kms_config_free(&c);
	ok(load_with("[rpc]\nport = 7001\n", &c, &e) == 0 && c.rpc_port == 7001, "-c overrides ./kms.toml");
	kms_config_free(&c);

	ok(load_with("[core.admin]\nenabled = true\n", &c, &e) < 0 &&
	       strstr(err_str(&e), "without credentials"),
	   "admin enabled without credentials refused");
	setenv("DSTACK_KMS_ADMIN_TOKEN", "s3cret", 1);
	ok(load_with("[core.admin]\nenabled = true\n", &c, &e) == 0, "token from DSTACK_KMS_ADMIN_TOKEN");
	is_str(c.admin_token, "s3cret", "env token used");
	kms_config_free(&c);
	unsetenv("DSTACK_KMS_ADMIN_TOKEN");
	setenv("ADMIN_API_TOKEN", "other", 1);
	ok(load_with("[core.admin]\nenabled = true\nauth_token = \"file\"\n", &c, &e) == 0 &&
	       !strcmp(c.admin_token, "other"),
	   "ADMIN_API_TOKEN overrides the file");
	kms_config_free(&c);
	unsetenv("ADMIN_API_TOKEN");
	ok(load_with("[core.admin]\nenabled = true\ninsecure_no_auth = true\n", &c, &e) == 0,
	   "insecure_no_auth is an explicit opt-out");
	kms_config_free(&c);

	ok(load_with("[core.attestation]\nroot_ca_tdxx = \"x\"\n", &c, &e) < 0 &&
	       strstr(err_str(&e), "root_ca_tdxx"),
	   "unknown core.attestation key rejected: %s", err_str(&e));
	ok(load_with("[core.attestation.root_ca]\ntdx = \"/x.pem\"\n", &c, &e) < 0 &&
	       strstr(err_str(&e), "insecure_allow_external_trust_anchors"),
	   "trust anchor override needs the insecure flag");
	ok(load_with("[core.auth_api]\ntype = \"eth\"\n", &c, &e) < 0, "unknown auth type rejected");
	ok(load_with("[rpc]\nport = \"x\"\n", &c, &e) < 0 && strstr(err_str(&e), "rpc.port"),
	   "wrong type names the key: %s", err_str(&e));
	/* Domain rule of the onboard service. */
	{
		static const char *const good[] = {"localhost", "kms.example.com", "a-b.c0", "A.B"};
		static const char *const bad[] = {"",   "-a.com",  "a-.com",       "a..b", ".a",
						  "a.", "a_b.com", "\xc3\xa9.com", "a b"};
		char long_label[80], long_name[300];
		for (size_t i = 0; i < ARRAY_SIZE(good); i++)
			ok(kms_domain_valid(good[i]), "domain '%s' accepted", good[i]);
		for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
			ok(!kms_domain_valid(bad[i]), "domain '%s' refused", bad[i]);
		memset(long_label, 'a', 64);
		long_label[64] = 0;
		ok(!kms_domain_valid(long_label), "64-character label refused");
		long_label[63] = 0;
		ok(kms_domain_valid(long_label), "63-character label accepted");
		memset(long_name, 0, sizeof(long_name));
		for (int i = 0; i < 127; i++)
			strcat(long_name, "a.");
		strcat(long_name, "bb");
		ok(!kms_domain_valid(long_name), "name over 253 characters refused");
		long_name[253] = 0;
		ok(strlen(long_name) == 253 && kms_domain_valid(long_name), "253-character name accepted");
	}
	{
		char cmd[300];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
		if (system(cmd) != 0)
			diag("cleanup failed");
	}
	return tap_done();
}
