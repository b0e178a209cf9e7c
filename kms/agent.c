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
#include "prpc/client.h"

static void agent_client(struct prpc_client *c, char *path, size_t n)
{
	const char *env = getenv("DSTACK_AGENT_ADDRESS");

	memset(c, 0, sizeof(*c));
	c->http.timeout_ms = 60000;
	if (env && (!strncmp(env, "http://", 7) || !strncmp(env, "https://", 8))) {
		c->base = env;
		return;
	}
	if (env && *env)
		snprintf(path, n, "%s", !strncmp(env, "unix:", 5) ? env + 5 : env);
	else if (file_exists("/var/run/dstack/dstack.sock"))
		snprintf(path, n, "/var/run/dstack/dstack.sock");
	else
		snprintf(path, n, "/var/run/dstack.sock");
	c->base = "http://localhost";
	c->http.unix_socket = path;
}

bool kms_agent_present(void)
{
	struct prpc_client c;
	char path[256];

	agent_client(&c, path, sizeof(path));
	return c.http.unix_socket == NULL || file_exists(path);
}

int kms_agent_attest(const uint8_t report_data[64], uint8_t **att, size_t *len, struct err *e)
{
	struct prpc_client c;
	char path[256], rd[129];
	_cleanup_json_ json_t *in = NULL, *out = NULL;
	const char *hex;

	agent_client(&c, path, sizeof(path));
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

	agent_client(&c, path, sizeof(path));
	if (prpc_client_call_json(&c, "Info", NULL, out, e) < 0)
		return err_wrap(e, "guest agent Info");
	return 0;
}
