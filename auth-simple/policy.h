/*
 * policy.h — auth-simple's decision rules (kms.md §7), separate from the
 * HTTP server so they can be tested directly.
 *
 * The config file (auth-config.json) holds gatewayAppId, kmsContractAddr,
 * appImplementation, chainId, osImages[], allowedTcbStatuses[] (default
 * ["UpToDate"]), allowedAdvisoryIds[], kms{mrAggregated[], devices[],
 * allowAnyDevice}, apps{<appId>: {composeHashes[], devices[],
 * allowAnyDevice}}. Missing keys take their defaults; a missing or broken
 * file means every default, which denies everything. Hex values are
 * compared lowercase with a 0x prefix added when absent.
 */
#ifndef DSTACK_AUTH_SIMPLE_POLICY_H
#define DSTACK_AUTH_SIMPLE_POLICY_H

#include <stdbool.h>

#include <jansson.h>

#include "core/err.h"

/* Validate a bootAuth request body: 0, or -1 with the problem in e. */
int policy_validate_request(const json_t *req, struct err *e);
/* Decide. cfg may be NULL (all defaults). reason receives "" when allowed. */
bool policy_decide(const json_t *cfg, const json_t *req, bool is_kms, char *reason, size_t reason_size);
/* gatewayAppId of the config ("" by default). */
const char *policy_gateway_app_id(const json_t *cfg);
/* The GET / info object (new reference). */
json_t *policy_info(const json_t *cfg);

#endif
