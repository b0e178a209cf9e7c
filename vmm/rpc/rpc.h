/*
 * rpc.h — the dstack-vmm external server (spec §1–§3): the Vmm pRPC service
 * (bare names and the legacy `Teepod.` prefix), authentication, `GET /logs`,
 * the console page, and the host API (§9) for guests. Handlers are thin:
 * they turn protobuf-c messages into the request structs of vmm/app.h and
 * the JSON documents app.c returns back into messages.
 */
#ifndef DSTACK_VMM_RPC_H
#define DSTACK_VMM_RPC_H

#include <stdint.h>

#include "core/buf.h"
#include "http/server.h"
#include "prpc/server.h"
#include "vmm/app.h"
#include "vmm/config.h"
#include "vmm/registry.h"

#define VMM_VERSION "0.6.0"

struct vmm_rpc {
	struct vmm_app *app;
	const struct vmm_config *cfg;
	const char *app_version;       /* "v0.6.0 (git:<rev>)" */
	struct vmm_registry *registry; /* [image] registry pulls; NULL: registry methods unavailable */
};

/* Mount /prpc/ (Vmm), /guest/ (guest agent proxy), /logs, /, /v1, /beta, /res/x25519.js,
 * /api-docs/{openapi.json,docs} and the auth filter on srv. */
int vmm_rpc_mount(struct http_server *srv, struct vmm_rpc *rpc, struct err *e);

/* The Vmm method table (rpc.c), for the API docs. */
const struct prpc_method *vmm_rpc_methods(size_t *n);
/* GET /api-docs/openapi.json body (apidocs.c), and the HTML page of /api-docs/docs (malloc'd). */
json_t *vmm_openapi_json(void);
char *vmm_api_docs_html(void);

/* Internal: the /prpc/ mount alone (rpc.c). */
int vmm_rpc_mount_prpc(struct http_server *srv, struct vmm_rpc *rpc, struct err *e);

/* Host API service for one guest: `cid` identifies the caller (per-socket identity). */
struct vmm_host_api {
	struct vmm_rpc *rpc;
	uint32_t cid; /* 0 = take the CID from the vsock peer address */
	/* filled by vmm_host_api_mount; must live as long as the server */
	struct prpc_service svc;
	const struct prpc_service *svcs[1];
};
int vmm_host_api_mount(struct http_server *srv, struct vmm_host_api *h, struct err *e);

/* Auth check of §2 (exposed for tests): true when the request may pass. */
bool vmm_auth_check(const struct vmm_config *cfg, const char *admin_token, const char *authorization,
		    const char *query_token);

/* A CreateVm request from its proto message: every field, pointers into `in`;
 * c owns the arrays (free with vmm_create_conv_free). Shared by CreateVm and `run`. */
struct vmm_create_conv {
	struct vmm_port_req *ports;
	struct vmm_gpu_req gpu;
	const char **slots;
	struct vmm_net_req single, *nets;
};
struct Vmm__VmConfiguration;
void vmm_create_req_from_proto(const struct Vmm__VmConfiguration *in, struct vmm_create_conv *c,
			       struct vmm_create_req *r);
void vmm_create_conv_free(struct vmm_create_conv *c);

/* `dstack-vmm run VM.json [--workdir D] [--dry-run]` (argv[0] is "run"). */
int vmm_cmd_run(struct vmm_config *cfg, int argc, char **argv);

/* The console page with {{TITLE}} replaced (malloc'd). */
char *vmm_console_html(const char *node_name);
extern const char vmm_x25519_js[];

#endif
