/*
 * auth_simple_policy.c — libFuzzer harness for auth-simple's request
 * validation and decision rules: the input is used both as a bootAuth body
 * (against a fixed policy) and as the policy file (against a fixed body).
 * Any JSON shape must give a decision or a validation error, never a crash.
 */
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "../auth-simple/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char cfg_text[] =
	    "{\"osImages\":[\"0xaa\"],\"kms\":{\"mrAggregated\":[\"bb\"],\"devices\":[\"0xdd\"]},"
	    "\"apps\":{\"0x11\":{\"composeHashes\":[\"cc\"],\"devices\":[]}},\"allowedAdvisoryIds\":[\"x\"]}";
	static const char req_text[] =
	    "{\"tcbStatus\":\"UpToDate\",\"advisoryIds\":[\"x\"],\"osImageHash\":\"aa\","
	    "\"mrAggregated\":\"bb\",\"appId\":\"11\",\"composeHash\":\"cc\","
	    "\"instanceId\":\"\",\"deviceId\":\"dd\"}";
	json_t *in = json_loadb((const char *)data, size, 0, NULL);
	json_t *cfg = json_loads(cfg_text, 0, NULL), *req = json_loads(req_text, 0, NULL), *info;
	struct err e = ERR_INIT;
	char reason[256];

	if (in) {
		if (policy_validate_request(in, &e) == 0) {
			policy_decide(cfg, in, false, reason, sizeof(reason));
			policy_decide(cfg, in, true, reason, sizeof(reason));
		}
		policy_decide(in, req, false, reason, sizeof(reason));
		policy_decide(in, req, true, reason, sizeof(reason));
		info = policy_info(in);
		json_decref(info);
		json_decref(in);
	}
	json_decref(cfg);
	json_decref(req);
	return 0;
}
