/*
 * agent.c — locating the local dstack guest agent (see agent.h).
 */
#include "prpc/agent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"

void prpc_agent_client(struct prpc_client *c, char *path, size_t n)
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

bool prpc_agent_present(void)
{
	struct prpc_client c;
	char path[256];

	prpc_agent_client(&c, path, sizeof(path));
	return c.http.unix_socket == NULL || file_exists(path);
}
