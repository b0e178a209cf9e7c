/*
 * policy_test.c — auth-simple's decision rules: the whole deny matrix (TCB
 * status, advisory, OS image, KMS mr_aggregated, app not registered,
 * compose hash, device), each with its reason, the allowed cases, hex
 * normalisation, the device-list rule and request validation.
 */
#include <string.h>

#include "core/cleanup.h"
#include "core/tap.h"
#include "policy.h"

static const char *cfg_text =
    "{\"gatewayAppId\":\"gw1\",\"osImages\":[\"0xAAAA\"],\"allowedTcbStatuses\":[\"UpToDate\","
    "\"SWHardeningNeeded\"],"
    "\"allowedAdvisoryIds\":[\"INTEL-SA-1\"],"
    "\"kms\":{\"mrAggregated\":[\"0xbbbb\"],\"devices\":[\"0xdd01\"],\"allowAnyDevice\":false},"
    "\"apps\":{\"0x1111\":{\"composeHashes\":[\"CCCC\"],\"devices\":[\"0xdd01\"],\"allowAnyDevice\":false},"
    "\"2222\":{\"composeHashes\":[\"0xcccc\"],\"devices\":[],\"allowAnyDevice\":false},"
    "\"3333\":{\"composeHashes\":[\"0xcccc\"],\"devices\":[\"0xdd01\"],\"allowAnyDevice\":true}}}";

static json_t *req(const char *over_key, const char *over_val)
{
	json_t *r = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:[]}", "tcbStatus", "UpToDate", "osImageHash",
			      "aaaa", "mrAggregated", "bbbb", "appId", "1111", "composeHash", "cccc",
			      "instanceId", "", "deviceId", "dd01", "advisoryIds");

	if (over_key)
		json_object_set_new(r, over_key, json_string(over_val));
	return r;
}

static void check(const json_t *cfg, json_t *r, bool is_kms, bool want, const char *want_reason,
		  const char *name)
{
	char reason[256];
	bool got = policy_decide(cfg, r, is_kms, reason, sizeof(reason));

	ok(got == want, "%s: %s", name, want ? "allowed" : "denied");
	is_str(reason, want_reason, "%s: reason", name);
	json_decref(r);
}

int main(void)
{
	_cleanup_json_ json_t *cfg = json_loads(cfg_text, 0, NULL);
	json_t *r;
	struct err e = ERR_INIT;

	check(cfg, req(NULL, NULL), false, true, "", "app baseline");
	check(cfg, req(NULL, NULL), true, true, "", "kms baseline");
	check(cfg, req("tcbStatus", "OutOfDate"), false, false, "TCB status is not allowed", "tcb status");
	check(cfg, req("tcbStatus", "SWHardeningNeeded"), false, true, "", "listed non-default tcb status");
	r = req(NULL, NULL);
	json_object_set_new(r, "advisoryIds", json_pack("[s,s]", "INTEL-SA-1", "INTEL-SA-2"));
	check(cfg, r, false, false, "advisory ID is not allowed", "advisory");
	r = req(NULL, NULL);
	json_object_set_new(r, "advisoryIds", json_pack("[s]", "INTEL-SA-1"));
	check(cfg, r, false, true, "", "allowed advisory");
	check(cfg, req("osImageHash", "abab"), false, false, "OS image is not allowed", "os image");
	check(cfg, req("osImageHash", "0xAaAa"), false, true, "", "os image hex normalised");
	check(cfg, req("mrAggregated", "0xbbbc"), true, false, "aggregated MR not allowed", "kms mr");
	check(cfg, req("deviceId", "dd02"), true, false, "device ID not allowed", "kms device");
	check(cfg, req("appId", "9999"), false, false, "app not registered", "app not registered");
	check(cfg, req("composeHash", "cccd"), false, false, "compose hash not allowed", "compose hash");
	check(cfg, req("deviceId", "dd02"), false, false, "device ID not allowed", "app device");
	r = req("appId", "0x2222");
	json_object_set_new(r, "deviceId", json_string("dd99"));
	check(cfg, r, false, true, "", "empty device list = any device");
	r = req("appId", "3333");
	json_object_set_new(r, "deviceId", json_string("dd99"));
	check(cfg, r, false, true, "", "allowAnyDevice");
	check(NULL, req(NULL, NULL), false, false, "OS image is not allowed", "no config: denied");
	check(NULL, req(NULL, NULL), true, false, "OS image is not allowed", "no config (kms): denied");
	is_str(policy_gateway_app_id(cfg), "gw1", "gatewayAppId from config");
	is_str(policy_gateway_app_id(NULL), "", "gatewayAppId default");
	{
		_cleanup_json_ json_t *cfg2 = json_loads("{\"osImages\":[\"aaaa\"],\"kms\":{}}", 0, NULL);
		check(cfg2, req(NULL, NULL), true, false, "aggregated MR not allowed",
		      "empty kms.mrAggregated denies");
	}

	r = req(NULL, NULL);
	ok(policy_validate_request(r, &e) == 0, "valid request");
	json_object_del(r, "composeHash");
	ok(policy_validate_request(r, &e) < 0 && strstr(err_str(&e), "composeHash"),
	   "missing field rejected");
	json_object_set_new(r, "composeHash", json_integer(1));
	ok(policy_validate_request(r, &e) < 0, "wrong type rejected");
	json_decref(r);
	r = req(NULL, NULL);
	json_object_set_new(r, "advisoryIds", json_string("x"));
	ok(policy_validate_request(r, &e) < 0, "advisoryIds must be an array");
	json_decref(r);
	r = json_array();
	ok(policy_validate_request(r, &e) < 0, "array body rejected");
	json_decref(r);
	{
		_cleanup_json_ json_t *i = policy_info(cfg);
		is_str(json_string_value(json_object_get(i, "gatewayAppId")), "gw1", "info gatewayAppId");
		is_str(json_string_value(json_object_get(i, "kmsContractAddr")),
		       "0x0000000000000000000000000000000000000000", "info kmsContractAddr default");
	}
	return tap_done();
}
