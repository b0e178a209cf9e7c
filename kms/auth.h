/*
 * auth.h — the KMS's authorization API (kms.md §5, §7): given the BootInfo of
 * a verified attestation, ask whether an app (bootAuth/app) or a KMS
 * (bootAuth/kms) may receive keys.
 *
 *   dev      always allowed, gatewayAppId = core.auth_api.dev.gateway_app_id
 *   webhook  POST {url}/bootAuth/{app|kms} with the JSON of §7; the reply
 *            must be 2xx JSON with isAllowed (bool), gatewayAppId (string)
 *            and reason (string). Anything else — down, slower than
 *            core.auth_api.webhook.timeout, non-JSON, a missing field — is
 *            an error: fail closed. Nothing is cached.
 *
 * Calls block (libcurl): only from pool threads.
 */
#ifndef DSTACK_KMS_AUTH_H
#define DSTACK_KMS_AUTH_H

#include <stdbool.h>

#include <jansson.h>

#include "cfg.h"
#include "core/err.h"

struct kms_auth_reply {
	bool allowed;
	char gateway_app_id[256];
	char reason[512];
};

/* body: the §7 request JSON built from the BootInfo (ratls_boot_info_to_json). */
int kms_auth_boot(const struct kms_config *cfg, bool is_kms, const json_t *body, struct kms_auth_reply *out,
		  struct err *e);
/* GET {url}: the auth API's info object (dev: a synthetic one). */
int kms_auth_info(const struct kms_config *cfg, json_t **out, struct err *e);

#endif
