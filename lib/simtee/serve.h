/*
 * serve.h — serve a simtee PKI directory's collateral with the PCCS v4 paths
 * and headers (see lib/tdx/pccs.h), so verifiers fetch simulated collateral
 * through exactly the client they use against a real PCCS.
 */
#ifndef DSTACK_SIMTEE_SERVE_H
#define DSTACK_SIMTEE_SERVE_H

#include "core/err.h"
#include "http/server.h"

struct simtee_pccs;

/* Load DIR's collateral into memory and route "/sgx/..." and "/tdx/..." on srv. */
int simtee_pccs_attach(struct http_server *srv, const char *dir, struct err *e);

/* `dstack simtee serve`: run until SIGINT/SIGTERM. listen: "tcp:HOST:PORT" etc. */
int simtee_pccs_run(const char *dir, const char *listen, struct err *e);

#endif
