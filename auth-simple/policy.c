/*
 * policy.c — auth-simple's rules, applied in the reference's order so the
 * first failing rule names the reason:
 *
 *   1. tcbStatus in allowedTcbStatuses        "TCB status is not allowed"
 *   2. every advisory ID allowed              "advisory ID is not allowed"
 *   3. osImageHash in osImages                "OS image is not allowed"
 *   KMS: 4. mrAggregated in kms.mrAggregated  "aggregated MR not allowed"
 *        5. device rule                       "device ID not allowed"
 *   App: 4. app registered                    "app not registered"
 *        5. composeHash listed                "compose hash not allowed"
 *        6. device rule                       "device ID not allowed"
 *
 * Device rule: checked unless allowAnyDevice, and only when the devices
 * list is non-empty.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "policy.h"

#define ZERO_ADDR "0x0000000000000000000000000000000000000000"

/* Lowercase with 0x prefix, into out. */
static void norm_hex(const char *s, char *out, size_t n)
{
	size_t j = 0;

	if (!s)
		s = "";
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	if (n < 3) {
		if (n)
			out[0] = 0;
		return;
	}
	out[j++] = '0';
	out[j++] = 'x';
	for (; *s && j + 1 < n; s++)
		out[j++] = (char)tolower((unsigned char)*s);
	out[j] = 0;
}

static bool hex_in(const json_t *list, const char *value)
{
	char want[1024], have[1024];
	size_t i;
	json_t *v;

	if (!json_is_array(list))
		return false;
	norm_hex(value, want, sizeof(want));
	json_array_foreach(list, i, v)
	{
		if (!json_is_string(v))
			continue;
		norm_hex(json_string_value(v), have, sizeof(have));
		if (!strcmp(want, have))
			return true;
	}
	return false;
}

static bool str_in(const json_t *list, const char *value)
{
	size_t i;
	json_t *v;

	if (!json_is_array(list))
		return false;
	json_array_foreach(list, i,
			   v) if (json_is_string(v) && !strcmp(json_string_value(v), value)) return true;
	return false;
}

static const char *sget(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

int policy_validate_request(const json_t *req, struct err *e)
{
	static const char *const required[] = {"mrAggregated", "osImageHash", "appId",
					       "composeHash",  "instanceId",  "deviceId"};
	static const char *const optional_str[] = {"tcbStatus", "mrSystem", "keyProviderInfo", "teeVariant"};
	json_t *adv, *v;
	size_t i;

	if (!json_is_object(req))
		return err_set(e, "request body must be a JSON object");
	for (i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		if (!json_is_string(json_object_get(req, required[i])))
			return err_set(e, "%s: expected a string", required[i]);
	for (i = 0; i < sizeof(optional_str) / sizeof(optional_str[0]); i++) {
		v = json_object_get(req, optional_str[i]);
		if (v && !json_is_string(v))
			return err_set(e, "%s: expected a string", optional_str[i]);
	}
	adv = json_object_get(req, "advisoryIds");
	if (adv && !json_is_array(adv))
		return err_set(e, "advisoryIds: expected an array");
	json_array_foreach(adv, i, v) if (!json_is_string(v)) return err_set(e,
									     "advisoryIds: expected strings");
	return 0;
}

static bool device_ok(const json_t *entry, const char *device)
{
	const json_t *devices = json_object_get(entry, "devices");

	if (json_is_true(json_object_get(entry, "allowAnyDevice")))
		return true;
	if (!json_is_array(devices) || json_array_size(devices) == 0)
		return true;
	return hex_in(devices, device);
}

/* apps{} lookup with normalised keys. */
static const json_t *find_app(const json_t *apps, const char *app_id)
{
	char want[256], have[256];
	const char *key;
	json_t *v;

	if (!json_is_object(apps))
		return NULL;
	norm_hex(app_id, want, sizeof(want));
	json_object_foreach((json_t *)apps, key, v)
	{
		norm_hex(key, have, sizeof(have));
		if (!strcmp(want, have))
			return v;
	}
	return NULL;
}

static bool deny(char *reason, size_t n, const char *why)
{
	snprintf(reason, n, "%s", why);
	return false;
}

bool policy_decide(const json_t *cfg, const json_t *req, bool is_kms, char *reason, size_t n)
{
	const json_t *tcb = json_object_get(cfg, "allowedTcbStatuses");
	const json_t *adv_allowed = json_object_get(cfg, "allowedAdvisoryIds");
	json_t *defaults = NULL, *v;
	const char *tcb_status = sget(req, "tcbStatus");
	bool tcb_ok;
	size_t i;

	if (!tcb) {
		defaults = json_pack("[s]", "UpToDate");
		tcb_ok = str_in(defaults, tcb_status);
		json_decref(defaults);
	} else {
		tcb_ok = str_in(tcb, tcb_status);
	}
	if (!tcb_ok)
		return deny(reason, n, "TCB status is not allowed");
	json_array_foreach(
	    json_object_get(req, "advisoryIds"), i,
	    v) if (!str_in(adv_allowed, json_string_value(v))) return deny(reason, n,
									   "advisory ID is not allowed");
	if (!hex_in(json_object_get(cfg, "osImages"), sget(req, "osImageHash")))
		return deny(reason, n, "OS image is not allowed");
	if (is_kms) {
		const json_t *kms = json_object_get(cfg, "kms");

		if (!hex_in(json_object_get(kms, "mrAggregated"), sget(req, "mrAggregated")))
			return deny(reason, n, "aggregated MR not allowed");
		if (!device_ok(kms, sget(req, "deviceId")))
			return deny(reason, n, "device ID not allowed");
	} else {
		const json_t *app = find_app(json_object_get(cfg, "apps"), sget(req, "appId"));

		if (!app)
			return deny(reason, n, "app not registered");
		if (!hex_in(json_object_get(app, "composeHashes"), sget(req, "composeHash")))
			return deny(reason, n, "compose hash not allowed");
		if (!device_ok(app, sget(req, "deviceId")))
			return deny(reason, n, "device ID not allowed");
	}
	if (n)
		reason[0] = 0;
	return true;
}

const char *policy_gateway_app_id(const json_t *cfg)
{
	return sget(cfg, "gatewayAppId");
}

json_t *policy_info(const json_t *cfg)
{
	const char *kms = json_string_value(json_object_get(cfg, "kmsContractAddr"));
	const char *impl = json_string_value(json_object_get(cfg, "appImplementation"));
	json_t *chain = json_object_get(cfg, "chainId");

	return json_pack("{s:s, s:s, s:s, s:I, s:s, s:s}", "status", "ok", "kmsContractAddr",
			 kms ? kms : ZERO_ADDR, "gatewayAppId", policy_gateway_app_id(cfg), "chainId",
			 (json_int_t)(json_is_integer(chain) ? json_integer_value(chain) : 0),
			 "appAuthImplementation", impl ? impl : ZERO_ADDR, "appImplementation",
			 impl ? impl : ZERO_ADDR);
}
