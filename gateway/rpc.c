/*
 * rpc.c — the Gateway service on the main HTTPS listener and the Debug
 * service (gateway.md §3–§4).
 *
 * RegisterCvm takes the CVM's identity from its RA-TLS client certificate
 * (lib/ratls: AppInfo extension, else a verified attestation), never from
 * the request body; the Debug variant takes the ids from the body and is
 * only mounted when core.debug.insecure_enable_debug_rpc is set. Both then
 * apply the same registration rules (state.c) and build the same reply.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/cleanup.h"
#include "core/hex.h"
#include "core/log.h"
#include "gateway.h"
#include "gateway_rpc.pb-c.h"
#include "http/client.h"
#include "prpc/json.h"
#include "prpc/server.h"
#include "ratls/verify.h"
#include "core/xalloc.h"

#ifndef DSTACK_VERSION
#define DSTACK_VERSION "dev"
#endif

/* The address CVMs use for the proxy: the static base domain and the first proxy port. */
static void agent_target(const struct gateway *gw, const char **domain, uint32_t *port)
{
	*domain = gw->cfg.base_domain ? gw->cfg.base_domain : "";
	*port = **domain ? gw->cfg.listen_port.first : 0;
}

static int fill_register_reply(struct gateway *gw, uint32_t ip, Gateway__RegisterCvmResponse *out,
			       struct err *e)
{
	Gateway__WireGuardConfig *wg =
	    (Gateway__WireGuardConfig *)prpc_msg_new(&gateway__wire_guard_config__descriptor);
	Gateway__GuestAgentConfig *agent =
	    (Gateway__GuestAgentConfig *)prpc_msg_new(&gateway__guest_agent_config__descriptor);
	Gateway__WireGuardPeer *peer =
	    (Gateway__WireGuardPeer *)prpc_msg_new(&gateway__wire_guard_peer__descriptor);
	Gateway__GatewayNodeInfo *node =
	    (Gateway__GatewayNodeInfo *)prpc_msg_new(&gateway__gateway_node_info__descriptor);
	const char *domain;
	uint32_t port;
	char ips[16];

	out->wg = wg;
	out->agent = agent;
	if (!wg || !agent || !peer || !node) {
		prpc_msg_free(&peer->base);
		prpc_msg_free(&node->base);
		return err_set(e, "out of memory");
	}
	ip4_format(ip, ips);
	wg->client_ip = xstrdup_or_empty(ips);
	peer->pk = xstrdup_or_empty(gw->cfg.wg_public_key);
	peer->ip = xstrdup_or_empty(gw->cfg.wg_ip);
	peer->endpoint = xstrdup_or_empty(gw->cfg.wg_endpoint);
	wg->servers = calloc(1, sizeof(*wg->servers));
	if (wg->servers) {
		wg->servers[0] = peer;
		wg->n_servers = 1;
	} else {
		prpc_msg_free(&peer->base);
	}
	agent_target(gw, &domain, &port);
	agent->external_port = port;
	agent->internal_port = gw->cfg.agent_port;
	agent->domain = xstrdup_or_empty(domain);
	agent->app_address_ns_prefix = xstrdup_or_empty(gw->cfg.ns_prefix);
	node->id = gw->cfg.node_id;
	node->uuid.data = malloc(16);
	if (node->uuid.data) {
		memcpy(node->uuid.data, gw->uuid, 16);
		node->uuid.len = 16;
	}
	node->url = xstrdup_or_empty(gw->cfg.my_url);
	node->last_seen = (uint64_t)time(NULL);
	node->wg_public_key = xstrdup_or_empty(gw->cfg.wg_public_key);
	node->wg_ip = xstrdup_or_empty(gw->cfg.wg_ip);
	node->wg_endpoint = xstrdup_or_empty(gw->cfg.wg_endpoint);
	out->gateways = calloc(1, sizeof(*out->gateways));
	if (out->gateways) {
		out->gateways[0] = node;
		out->n_gateways = 1;
	} else {
		prpc_msg_free(&node->base);
	}
	return 0;
}

static int policy_from_msg(const Gateway__PortPolicy *m, struct gw_port_policy *p, struct err *e)
{
	memset(p, 0, sizeof(*p));
	p->present = true;
	p->restrict_mode = m->restrict_mode;
	if (m->n_ports && !(p->ports = calloc(m->n_ports, sizeof(*p->ports))))
		return err_set(e, "out of memory");
	for (size_t i = 0; i < m->n_ports; i++) {
		if (m->ports[i]->port == 0 || m->ports[i]->port > 65535) {
			gw_port_policy_free(p);
			return err_set(e, "invalid port policy: port %u", m->ports[i]->port);
		}
		p->ports[i].port = (uint16_t)m->ports[i]->port;
		p->ports[i].pp = m->ports[i]->pp;
	}
	p->n_ports = m->n_ports;
	return 0;
}

static char *hex_of(const struct bytes *b)
{
	return hex_encode_alloc(b->p ? b->p : (const uint8_t *)"", b->len);
}

/* [core.auth] webhook (§4.4): POST the AppInfo as JSON; anything but 2xx
 * (or no answer within core.auth.timeout) refuses the registration. */
static int auth_webhook(const struct gateway *gw, const struct app_info *ai, struct err *e)
{
	_cleanup_json_ json_t *j = app_info_to_json(ai);
	_cleanup_free_ char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
	const char *hdrs[] = {"Content-Type: application/json", NULL};
	struct http_client_opts o = {.timeout_ms = (long)gw->cfg.auth_timeout_ms,
				     .connect_timeout_ms = (long)gw->cfg.auth_timeout_ms,
				     .max_body = 64 * 1024};
	struct http_response r = {0};
	long status;

	if (!body)
		return err_set(e, "out of memory");
	if (http_fetch(&o, "POST", gw->cfg.auth_url, hdrs, body, strlen(body), &r, e) < 0)
		return err_wrap(e, "auth webhook");
	status = r.status;
	http_response_free(&r);
	if (status < 200 || status > 299)
		return err_set(e, "auth webhook refused the app (HTTP %ld)", status);
	return 0;
}

static int register_cvm(struct prpc_call *call, const void *in_, void *out_, struct err *e)
{
	struct gateway *gw = prpc_call_arg(call);
	const Gateway__RegisterCvmRequest *in = in_;
	X509 *cert = prpc_call_peer_cert(call);
	struct gw_port_policy policy = {0};
	struct app_info ai = {0};
	_cleanup_free_ char *app_id = NULL, *instance_id = NULL, *compose_hash = NULL;
	bool has_policy = in->_port_policy_case == GATEWAY__REGISTER_CVM_REQUEST___PORT_POLICY_PORT_POLICY &&
			  in->port_policy;
	uint32_t ip = 0;
	int rc = -1;

	if (!cert)
		return err_set(e, "Registration denied: no client certificate: neither app-info nor "
				  "attestation provided");
	if (ratls_peer_app_info(gw->verifier, cert, 0, &ai, e) < 0)
		return err_wrap(e, "Registration denied");
	if (gw->cfg.auth_enabled && auth_webhook(gw, &ai, e) < 0) {
		app_info_free(&ai);
		return err_wrap(e, "Registration denied");
	}
	app_id = hex_of(&ai.app_id);
	instance_id = hex_of(&ai.instance_id);
	compose_hash = hex_of(&ai.compose_hash);
	app_info_free(&ai);
	if (!app_id || !instance_id || !compose_hash)
		return err_set(e, "out of memory");
	if (has_policy && policy_from_msg(in->port_policy, &policy, e) < 0)
		return err_wrap(e, "Registration denied");
	struct gw_registration r = {app_id, instance_id, compose_hash, in->client_public_key,
				    has_policy ? &policy : NULL};
	if (gw_register(gw, &r, &ip, e) < 0) {
		err_wrap(e, "Registration denied");
		goto out;
	}
	rc = fill_register_reply(gw, ip, out_, e);
out:
	gw_port_policy_free(&policy);
	return rc;
}

static int fill_info(struct gateway *gw, Gateway__InfoResponse *out)
{
	const char *domain;
	uint32_t port;

	agent_target(gw, &domain, &port);
	out->base_domain = xstrdup_or_empty(domain);
	out->external_port = port;
	out->app_address_ns_prefix = xstrdup_or_empty(gw->cfg.ns_prefix);
	out->version = xstrdup_or_empty(DSTACK_VERSION);
	return 0;
}

static int info(struct prpc_call *call, const void *in, void *out, struct err *e)
{
	(void)in;
	(void)e;
	return fill_info(prpc_call_arg(call), out);
}

static int acme_info(struct prpc_call *call, const void *in, void *out, struct err *e)
{
	(void)call;
	(void)in;
	(void)out;
	(void)e;
	return 0; /* no ACME account yet: every field empty */
}

static int get_peers(struct prpc_call *call, const void *in, void *out_, struct err *e)
{
	struct gateway *gw = prpc_call_arg(call);
	Gateway__GetPeersResponse *out = out_;

	(void)in;
	if (!gw->cfg.skip_attestation) {
		X509 *cert = prpc_call_peer_cert(call);
		struct app_info ai = {0};

		if (!*gw->own_app_id)
			return err_set(e, "GetPeers: this gateway does not know its own app id (no guest "
					  "agent), so no caller can be checked");
		if (!cert)
			return err_set(e, "GetPeers: no client certificate");
		if (ratls_peer_app_info(gw->verifier, cert, 0, &ai, e) < 0)
			return err_wrap(e, "GetPeers");
		_cleanup_free_ char *caller = hex_of(&ai.app_id);
		app_info_free(&ai);
		if (!caller)
			return err_set(e, "out of memory");
		if (strcasecmp(caller, gw->own_app_id) != 0)
			return err_set(e, "GetPeers: caller app id %s is not this gateway's app id %s",
				       caller, gw->own_app_id);
	}
	out->my_id = gw->cfg.node_id;
	out->my_url = xstrdup_or_empty(gw->cfg.my_url);
	return 0;
}

static const struct prpc_method main_methods[] = {
    PRPC_METHOD_BLOCKING("RegisterCvm", gateway__register_cvm_request, gateway__register_cvm_response,
			 register_cvm),
    PRPC_METHOD("AcmeInfo", google__protobuf__empty, gateway__acme_info_response, acme_info),
    PRPC_METHOD("Info", google__protobuf__empty, gateway__info_response, info),
    PRPC_METHOD("GetPeers", google__protobuf__empty, gateway__get_peers_response, get_peers),
};
static const char *const main_prefixes[] = {"Tproxy.", NULL};

int gw_mount_main(struct gateway *gw, struct http_server *srv, struct err *e)
{
	static struct prpc_service svc = {"Gateway", main_prefixes, main_methods, ARRAY_SIZE(main_methods),
					  NULL};
	const struct prpc_service *svcs[] = {&svc};

	svc.arg = gw;
	http_server_add_health(srv);
	return prpc_mount(srv, "/prpc/", svcs, 1, e);
}

/* ---- Debug ---- */

static int debug_register(struct prpc_call *call, const void *in_, void *out, struct err *e)
{
	struct gateway *gw = prpc_call_arg(call);
	const Gateway__DebugRegisterRequest *in = in_;
	struct gw_registration r = {in->app_id, in->instance_id, "", in->client_public_key, NULL};
	uint32_t ip = 0;

	if (gw_register(gw, &r, &ip, e) < 0)
		return err_wrap(e, "Registration denied");
	return fill_register_reply(gw, ip, out, e);
}

static int debug_proxy_state(struct prpc_call *call, const void *in, void *out_, struct err *e)
{
	struct gateway *gw = prpc_call_arg(call);
	Gateway__DebugProxyStateResponse *out = out_;
	struct gw_entry *v = NULL;
	size_t n = 0;

	(void)in;
	if (gw_snapshot(gw, &v, &n, e) < 0)
		return -1;
	out->instances = calloc(n ? n : 1, sizeof(*out->instances));
	out->allocated_addresses = calloc(n ? n : 1, sizeof(*out->allocated_addresses));
	if (!out->instances || !out->allocated_addresses) {
		gw_snapshot_free(v, n);
		return err_set(e, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		Gateway__InstanceEntry *ie =
		    (Gateway__InstanceEntry *)prpc_msg_new(&gateway__instance_entry__descriptor);
		char ips[16];
		if (!ie)
			break;
		ip4_format(v[i].inst.ip, ips);
		ie->instance_id = xstrdup_or_empty(v[i].inst.instance_id);
		ie->app_id = xstrdup_or_empty(v[i].inst.app_id);
		ie->ip = xstrdup_or_empty(ips);
		ie->public_key = xstrdup_or_empty(v[i].inst.public_key);
		ie->reg_time = v[i].inst.reg_time;
		out->instances[out->n_instances++] = ie;
		out->allocated_addresses[out->n_allocated_addresses++] = xstrdup_or_empty(ips);
	}
	gw_snapshot_free(v, n);
	return 0;
}

/* The reference dumps its WaveKV stores here; there is no cluster store in
 * this build (core.sync.enabled is refused), so say so instead of 404. */
static int debug_sync_data(struct prpc_call *call, const void *in, void *out, struct err *e)
{
	(void)call;
	(void)in;
	(void)out;
	return err_set(e,
		       "GetSyncData: this gateway has no cluster sync store (core.sync is not supported by "
		       "this build); use GetProxyState for the registry");
}

static const struct prpc_method debug_methods[] = {
    PRPC_METHOD_BLOCKING("RegisterCvm", gateway__debug_register_request, gateway__register_cvm_response,
			 debug_register),
    PRPC_METHOD("Info", google__protobuf__empty, gateway__info_response, info),
    PRPC_METHOD("GetProxyState", google__protobuf__empty, gateway__debug_proxy_state_response,
		debug_proxy_state),
    PRPC_METHOD("GetSyncData", google__protobuf__empty, google__protobuf__empty, debug_sync_data),
};
static const char *const debug_prefixes[] = {"Debug.", NULL};

int gw_mount_debug(struct gateway *gw, struct http_server *srv, struct err *e)
{
	static struct prpc_service svc = {"Debug", debug_prefixes, debug_methods, ARRAY_SIZE(debug_methods),
					  NULL};
	const struct prpc_service *svcs[] = {&svc};

	svc.arg = gw;
	http_server_add_health(srv);
	return prpc_mount(srv, "/prpc/", svcs, 1, e);
}
