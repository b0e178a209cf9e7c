/*
 * agent.h — where a host-side service running inside its own CVM (KMS,
 * gateway) finds the dstack guest agent: $DSTACK_AGENT_ADDRESS (a unix path,
 * unix:PATH, or an http(s):// base URL for tests), else
 * /var/run/dstack/dstack.sock, else /var/run/dstack.sock. Outside a CVM no
 * socket exists and prpc_agent_present() says so, so callers can fall back
 * to their configured files instead of failing on a connect error.
 */
#ifndef DSTACK_PRPC_AGENT_H
#define DSTACK_PRPC_AGENT_H

#include <stdbool.h>
#include <stddef.h>

#include "prpc/client.h"

/* Fill a client for the agent; `path` (n bytes) holds the socket path the
 * client points at and must outlive it. 60 s timeout. */
void prpc_agent_client(struct prpc_client *c, char *path, size_t n);
/* An agent address is configured as a URL, or its socket file exists. */
bool prpc_agent_present(void);

#endif
