/*
 * agent.c — calls from the KMS to the guest agent of its own CVM (kms.md §1):
 * prpc over the unix socket $DSTACK_AGENT_ADDRESS, else
 * /var/run/dstack/dstack.sock, else /var/run/dstack.sock. An address of the
 * form http://host:port is used as a TCP base URL instead (tests).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/hex.h"
#include "kms.h"
#include "prpc/agent.h"

int kms_agent_attest(const uint8_t report_data[64], uint8_t **att, size_t *len, struct err *e)
{
	struct prpc_client c;
	char path[256], rd[129];
	_cleanup_json_ json_t *in = NULL, *out = NULL;
	const char *hex;

	prpc_agent_client(&c, path, sizeof(path));
	hex_encode(report_data, 64, rd);
	in = json_pack("{s:s}", "report_data", rd);
	if (prpc_client_call_json(&c, "Attest", in, &out, e) < 0)
		return err_wrap(e, "guest agent Attest");
	hex = json_string_value(json_object_get(out, "attestation"));
	if (!hex)
		return err_set(e, "guest agent Attest: reply has no attestation");
	if (hex_decode_alloc(hex, strlen(hex), att, len, e) < 0)
		return err_wrap(e, "guest agent Attest: attestation");
	return 0;
}

int kms_agent_info(json_t **out, struct err *e)
{
	struct prpc_client c;
	char path[256];

	prpc_agent_client(&c, path, sizeof(path));
	if (prpc_client_call_json(&c, "Info", NULL, out, e) < 0)
		return err_wrap(e, "guest agent Info");
	return 0;
}
