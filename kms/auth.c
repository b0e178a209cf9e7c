/*
 * auth.c — dev and webhook authorization (see auth.h). The webhook reply is
 * validated strictly: a policy server that answers with a missing field or
 * the wrong type is treated as a refusal, never as "allowed".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "http/client.h"

/* "{url}/{path}" with exactly one slash between. */
static char *join_url(const char *base, const char *path)
{
	size_t n = strlen(base);
	char *out;

	if (asprintf(&out, "%s%s%s", base, n && base[n - 1] == '/' ? "" : "/", path) < 0)
		return NULL;
	return out;
}

static int webhook_fetch(const struct kms_config *cfg, const char *method, const char *url, const char *body,
			 json_t **out, struct err *e)
{
	static const char *const headers[] = {"Content-Type: application/json", "Accept: application/json",
					      "User-Agent: dstack-kms/" DSTACK_VERSION, NULL};
	struct http_client_opts o = {
	    .timeout_ms = (long)cfg->webhook_timeout_ms, .connect_timeout_ms = 5000, .max_body = 1 << 20};
	struct http_response r = {0};
	json_error_t je;

	if (cfg->webhook_timeout_ms == CFG_DURATION_NEVER || cfg->webhook_timeout_ms > 600000)
		o.timeout_ms = 600000;
	if (o.timeout_ms < (long)o.connect_timeout_ms)
		o.connect_timeout_ms = o.timeout_ms;
	if (http_fetch(&o, method, url, headers, body, body ? strlen(body) : 0, &r, e) < 0)
		return err_wrap(e, "auth API %s unreachable", url);
	if (r.status < 200 || r.status > 299) {
		err_set(e, "auth API returned HTTP %ld", r.status);
		http_response_free(&r);
		return -1;
	}
	*out = json_loadb((const char *)r.body.data, r.body.len, 0, &je);
	http_response_free(&r);
	if (!*out || !json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return err_set(e, "auth API returned a reply that is not a JSON object");
	}
	return 0;
}

int kms_auth_boot(const struct kms_config *cfg, bool is_kms, const json_t *req, struct kms_auth_reply *out,
		  struct err *e)
{
	_cleanup_json_ json_t *reply = NULL;
	_cleanup_free_ char *body = NULL, *url = NULL;
	json_t *allowed, *gw, *reason;

	memset(out, 0, sizeof(*out));
	if (kms_auth_is_dev(cfg)) {
		out->allowed = true;
		snprintf(out->gateway_app_id, sizeof(out->gateway_app_id), "%s", cfg->dev_gateway_app_id);
		return 0;
	}
	body = json_dumps(req, JSON_COMPACT);
	url = join_url(cfg->webhook_url, is_kms ? "bootAuth/kms" : "bootAuth/app");
	if (!body || !url)
		return err_set(e, "out of memory");
	if (webhook_fetch(cfg, "POST", url, body, &reply, e) < 0)
		return -1;
	allowed = json_object_get(reply, "isAllowed");
	gw = json_object_get(reply, "gatewayAppId");
	reason = json_object_get(reply, "reason");
	if (!json_is_boolean(allowed) || !json_is_string(gw) || !json_is_string(reason))
		return err_set(e, "auth API reply lacks isAllowed (bool), gatewayAppId or reason (string)");
	out->allowed = json_is_true(allowed);
	snprintf(out->gateway_app_id, sizeof(out->gateway_app_id), "%s", json_string_value(gw));
	snprintf(out->reason, sizeof(out->reason), "%s", json_string_value(reason));
	return 0;
}

int kms_auth_info(const struct kms_config *cfg, json_t **out, struct err *e)
{
	json_t *reply = NULL;

	if (kms_auth_is_dev(cfg)) {
		*out = json_pack("{s:s, s:s, s:s, s:I, s:s}", "status", "ok", "kmsContractAddr", "",
				 "gatewayAppId", cfg->dev_gateway_app_id, "chainId", (json_int_t)0,
				 "appImplementation", "");
		return *out ? 0 : err_set(e, "out of memory");
	}
	if (webhook_fetch(cfg, "GET", cfg->webhook_url, NULL, &reply, e) < 0)
		return -1;
	*out = reply;
	return 0;
}
