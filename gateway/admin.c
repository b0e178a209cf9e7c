/*
 * admin.c — the Admin service on its own plain-HTTP listener (gateway.md
 * §3 Admin, §10): authentication as a request filter (so the dashboard and
 * every method share it), the status/metrics methods, node status, port
 * policy overrides, and the embedded dashboard at GET /.
 *
 * Credentials: the token (auth_token, admin_token, or the environment) in
 * `Authorization: Bearer`, `X-Admin-Token`, or on GET only `?token=`; or
 * HTTP Basic checked against an htpasswd file with crypt_rn(3) (bcrypt `$2y$`
 * and the other libxcrypt hashes). Comparisons are constant time. Failure
 * is 401 with `WWW-Authenticate: Basic realm="dstack-gateway admin"`.
 */
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "codec/base64.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/log.h"
#include "core/mem.h"
#include "dashboard.h"
#include "gateway.h"
#include "gateway_rpc.pb-c.h"
#include "prpc/json.h"
#include "prpc/server.h"
#include "core/xalloc.h"

static bool str_eq_ct(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	return la == lb && ct_memeq(a, b, la);
}

/* ?token=<t> on GET (percent-decoding of the few characters tokens may hold). */
static bool query_token_ok(struct http_request *req, const char *want)
{
	const char *q = http_req_query(req), *p;
	char tok[512];
	size_t n = 0;

	if (!q || strcmp(http_req_method(req), "GET"))
		return false;
	for (p = q; p; p = strchr(p, '&')) {
		if (*p == '&')
			p++;
		if (strncmp(p, "token=", 6))
			continue;
		for (p += 6; *p && *p != '&' && n + 1 < sizeof(tok); p++) {
			if (*p == '%' && p[1] && p[2]) {
				char h[3] = {p[1], p[2], 0};
				tok[n++] = (char)strtol(h, NULL, 16);
				p += 2;
			} else {
				tok[n++] = *p == '+' ? ' ' : *p;
			}
		}
		tok[n] = 0;
		bool ok = str_eq_ct(tok, want);
		secure_zero(tok, sizeof(tok));
		return ok;
	}
	return false;
}

static bool htpasswd_ok(const char *file, const char *user, const char *pass)
{
	_cleanup_free_ uint8_t *data = NULL;
	size_t len = 0;
	char *save = NULL, *line;
	bool ok = false;

	if (file_read_all(file, 1 << 20, &data, &len, NULL) < 0)
		return false;
	for (line = strtok_r((char *)data, "\r\n", &save); line && !ok;
	     line = strtok_r(NULL, "\r\n", &save)) {
		char *colon = strchr(line, ':');
		struct crypt_data cd;
		const char *h;
		if (!colon)
			continue;
		*colon = 0;
		if (strcmp(line, user))
			continue;
		memset(&cd, 0, sizeof(cd));
		/* crypt_rn, not crypt_r: sanitizer runtimes intercept crypt_r, which
		 * then loses libcrypt under --as-needed. */
		h = crypt_rn(pass, colon + 1, &cd, sizeof(cd));
		ok = h && h[0] != '*' && str_eq_ct(h, colon + 1);
		secure_zero(&cd, sizeof(cd));
	}
	secure_zero(data, len);
	return ok;
}

static bool basic_ok(const struct gateway *gw, const char *auth)
{
	_cleanup_free_ uint8_t *raw = NULL;
	size_t len = 0;
	char *colon;
	bool ok;

	if (!*gw->cfg.htpasswd_file || base64_decode(auth, strlen(auth), &raw, &len, NULL) < 0 || len > 1024)
		return false;
	char *s = malloc(len + 1);
	if (!s)
		return false;
	memcpy(s, raw, len);
	s[len] = 0;
	if (!(colon = strchr(s, ':'))) {
		free(s);
		return false;
	}
	*colon = 0;
	ok = htpasswd_ok(gw->cfg.htpasswd_file, s, colon + 1);
	secure_zero(s, len);
	secure_zero(raw, len);
	free(s);
	return ok;
}

static bool authorized(const struct gateway *gw, struct http_request *req)
{
	const char *want = gw_admin_token(&gw->cfg);
	const char *auth = http_req_header(req, "Authorization");
	const char *x = http_req_header(req, "X-Admin-Token");

	if (!*want && !*gw->cfg.htpasswd_file)
		return gw->cfg.admin_insecure_no_auth;
	if (*want) {
		if (auth && !strncasecmp(auth, "Bearer ", 7) && str_eq_ct(auth + 7, want))
			return true;
		if (x && str_eq_ct(x, want))
			return true;
		if (query_token_ok(req, want))
			return true;
	}
	if (auth && !strncasecmp(auth, "Basic ", 6) && basic_ok(gw, auth + 6))
		return true;
	return false;
}

static bool auth_filter(struct http_request *req, void *arg)
{
	struct gateway *gw = arg;
	static const char body[] = "{\n  \"error\": \"Unauthorized\"\n}";

	if (!strcmp(http_req_path(req), "/health") || authorized(gw, req))
		return false;
	http_resp_header(req, "WWW-Authenticate", "Basic realm=\"dstack-gateway admin\"");
	http_respond(req, 401, "application/json", body, sizeof(body) - 1);
	return true;
}

static Gateway__HostInfo *host_info(struct gateway *gw, const struct gw_entry *en, unsigned conns)
{
	Gateway__HostInfo *h = (Gateway__HostInfo *)prpc_msg_new(&gateway__host_info__descriptor);
	char ips[16];

	if (!h)
		return NULL;
	ip4_format(en->inst.ip, ips);
	h->instance_id = xstrdup_or_empty(en->inst.instance_id);
	h->ip = xstrdup_or_empty(ips);
	h->app_id = xstrdup_or_empty(en->inst.app_id);
	h->base_domain = xstrdup_or_empty(gw->cfg.base_domain);
	h->latest_handshake = en->handshake;
	h->num_connections = conns;
	return h;
}

/* Live proxy connections of each instance (by its WireGuard address). */
static int connection_counts(struct gateway *gw, const struct gw_entry *v, size_t n, unsigned **out,
			     struct err *e)
{
	_cleanup_free_ uint32_t *ips = calloc(n ? n : 1, sizeof(*ips));

	*out = calloc(n ? n : 1, sizeof(**out));
	if (!ips || !*out) {
		free(*out);
		*out = NULL;
		return err_set(e, "out of memory");
	}
	for (size_t i = 0; i < n; i++)
		ips[i] = v[i].inst.ip;
	if (gw_instance_connections(gw, ips, n, *out, e) < 0) {
		free(*out);
		*out = NULL;
		return err_wrap(e, "connection counts");
	}
	return 0;
}

static int status(struct prpc_call *call, const void *in, void *out_, struct err *e)
{
	struct gateway *gw = prpc_call_arg(call);
	Gateway__StatusResponse *out = out_;
	Gateway__GatewayNodeStatus *node;
	Gateway__AccelStatus *accel;
	struct proxy_stats st = {0};
	struct gw_entry *v = NULL;
	unsigned *conns = NULL;
	size_t n = 0;
	char nstatus[16];

	(void)in;
	gw_refresh_handshakes(gw);
	if (gw_snapshot(gw, &v, &n, e) < 0 || gw_node_status(gw, nstatus, sizeof(nstatus), e) < 0) {
		gw_snapshot_free(v, n);
		return -1;
	}
	if (gw->proxy)
		proxy_engine_stats(gw->proxy, &st);
	out->id = gw->cfg.node_id;
	out->url = xstrdup_or_empty(gw->cfg.my_url);
	out->bootnode_url = xstrdup_or_empty(gw->cfg.bootnode);
	out->num_connections = st.active;
	if (connection_counts(gw, v, n, &conns, e) < 0) {
		gw_snapshot_free(v, n);
		return -1;
	}
	out->hosts = calloc(n ? n : 1, sizeof(*out->hosts));
	for (size_t i = 0; out->hosts && i < n; i++)
		if ((out->hosts[out->n_hosts] = host_info(gw, &v[i], conns[i])))
			out->n_hosts++;
	gw_snapshot_free(v, n);
	free(conns);
	if ((node = (Gateway__GatewayNodeStatus *)prpc_msg_new(&gateway__gateway_node_status__descriptor)) &&
	    (out->nodes = calloc(1, sizeof(*out->nodes)))) {
		node->id = gw->cfg.node_id;
		if ((node->uuid.data = malloc(16))) {
			memcpy(node->uuid.data, gw->uuid, 16);
			node->uuid.len = 16;
		}
		node->url = xstrdup_or_empty(gw->cfg.my_url);
		node->wg_public_key = xstrdup_or_empty(gw->cfg.wg_public_key);
		node->wg_ip = xstrdup_or_empty(gw->cfg.wg_ip);
		node->wg_endpoint = xstrdup_or_empty(gw->cfg.wg_endpoint);
		node->status = xstrdup_or_empty(nstatus);
		node->last_seen = (uint64_t)time(NULL);
		out->nodes[out->n_nodes++] = node;
	} else if (node) {
		prpc_msg_free(&node->base);
	}
	if ((out->uuid.data = malloc(16))) {
		memcpy(out->uuid.data, gw->uuid, 16);
		out->uuid.len = 16;
	}
	if ((accel = (Gateway__AccelStatus *)prpc_msg_new(&gateway__accel_status__descriptor))) {
		accel->ktls_mode = xstrdup_or_empty("off");
		accel->splice_mode = xstrdup_or_empty(gw->cfg.tcp_splice ? "configured" : "off");
		accel->splice_engaged = st.splice_engaged;
		out->accel = accel;
	}
	return 0;
}

static int get_info(struct prpc_call *call, const void *in_, void *out_, struct err *e)
{
	struct gateway *gw = prpc_call_arg(call);
	const Gateway__GetInfoRequest *in = in_;
	Gateway__GetInfoResponse *out = out_;
	struct gw_entry *v = NULL;
	size_t n = 0;

	if (gw_snapshot(gw, &v, &n, e) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i].inst.instance_id, in->id)) {
			unsigned conns = 0;
			if (gw_instance_connections(gw, &v[i].inst.ip, 1, &conns, e) < 0) {
				gw_snapshot_free(v, n);
				return err_wrap(e, "connection counts");
			}
			out->found = true;
			out->info = host_info(gw, &v[i], conns);
			out->_info_case = GATEWAY__GET_INFO_RESPONSE___INFO_INFO;
			break;
		}
	gw_snapshot_free(v, n);
	return 0;
}

static int get_meta(struct prpc_call *call, const void *in, void *out_, struct err *e)
{
	struct gateway *gw = prpc_call_arg(call);
	Gateway__GetMetaResponse *out = out_;
	struct gw_entry *v = NULL;
	uint64_t now = (uint64_t)time(NULL);
	size_t n = 0;

	(void)in;
	if (gw_snapshot(gw, &v, &n, e) < 0)
		return -1;
	out->registered = (uint32_t)n;
	for (size_t i = 0; i < n; i++)
		if (v[i].handshake && v[i].handshake + 300 > now)
			out->online++;
	gw_snapshot_free(v, n);
	return 0;
}

static void exit_now(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

static int do_exit(struct prpc_call *call, const void *in_, void *out, struct err *e)
{
	struct gateway *gw = prpc_call_arg(call);
	const Gateway__ExitRequest *in = in_;
	struct timeval tv = {0, 200 * 1000}; /* let the reply go out */

	(void)out;
	(void)e;
	if (in->force) {
		log_info("Admin.Exit(force): exiting now");
		exit(0);
	}
	log_info("Admin.Exit: shutting down");
	event_base_once(gw->base, -1, EV_TIMEOUT, exit_now, gw->base, &tv);
	return 0;
}

static int set_node_status(struct prpc_call *call, const void *in_, void *out, struct err *e)
{
	const Gateway__SetNodeStatusRequest *in = in_;

	(void)out;
	return gw_set_node_status(prpc_call_arg(call), in->id, in->status, e);
}

static int policy_from_msg(const Gateway__PortPolicy *m, struct gw_port_policy *p, struct err *e)
{
	memset(p, 0, sizeof(*p));
	p->present = true;
	if (!m)
		return 0;
	p->restrict_mode = m->restrict_mode;
	if (m->n_ports && !(p->ports = calloc(m->n_ports, sizeof(*p->ports))))
		return err_set(e, "out of memory");
	for (size_t i = 0; i < m->n_ports; i++) {
		if (m->ports[i]->port == 0 || m->ports[i]->port > 65535) {
			gw_port_policy_free(p);
			return err_set(e, "invalid port policy: port %u", m->ports[i]->port);
		}
		p->ports[i] = (struct gw_port_attrs){(uint16_t)m->ports[i]->port, m->ports[i]->pp};
	}
	p->n_ports = m->n_ports;
	return 0;
}

static Gateway__PortPolicy *policy_to_msg(const struct gw_port_policy *p)
{
	Gateway__PortPolicy *m;

	if (!p->present || !(m = (Gateway__PortPolicy *)prpc_msg_new(&gateway__port_policy__descriptor)))
		return NULL;
	m->restrict_mode = p->restrict_mode;
	m->ports = calloc(p->n_ports ? p->n_ports : 1, sizeof(*m->ports));
	for (size_t i = 0; m->ports && i < p->n_ports; i++) {
		Gateway__PortAttrs *a = (Gateway__PortAttrs *)prpc_msg_new(&gateway__port_attrs__descriptor);
		if (!a)
			break;
		a->port = p->ports[i].port;
		a->pp = p->ports[i].pp;
		m->ports[m->n_ports++] = a;
	}
	return m;
}

static int set_policy(struct prpc_call *call, const void *in_, void *out, struct err *e)
{
	const Gateway__SetInstancePortPolicyRequest *in = in_;
	struct gw_port_policy p;
	int rc;

	(void)out;
	if (policy_from_msg(in->port_policy, &p, e) < 0)
		return -1;
	rc = gw_set_admin_policy(prpc_call_arg(call), in->instance_id, &p, e);
	gw_port_policy_free(&p);
	return rc;
}

static int clear_policy(struct prpc_call *call, const void *in_, void *out, struct err *e)
{
	const Gateway__InstanceIdRequest *in = in_;

	(void)out;
	return gw_set_admin_policy(prpc_call_arg(call), in->instance_id, NULL, e);
}

static int get_policy(struct prpc_call *call, const void *in_, void *out_, struct err *e)
{
	struct gateway *gw = prpc_call_arg(call);
	const Gateway__InstanceIdRequest *in = in_;
	Gateway__GetInstancePortPolicyResponse *out = out_;
	struct gw_entry *v = NULL;
	size_t n = 0;
	int rc = -1;

	if (gw_snapshot(gw, &v, &n, e) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const struct gw_instance *x = &v[i].inst;
		if (strcmp(x->instance_id, in->instance_id))
			continue;
		const struct gw_port_policy *eff = x->admin_policy.present ? &x->admin_policy : &x->policy;
		out->source = xstrdup_or_empty(x->admin_policy.present ? "admin"
					       : x->policy.present     ? "instance"
								       : "none");
		if ((out->effective = policy_to_msg(eff)))
			out->_effective_case =
			    GATEWAY__GET_INSTANCE_PORT_POLICY_RESPONSE___EFFECTIVE_EFFECTIVE;
		if ((out->instance_reported = policy_to_msg(&x->policy)))
			out->_instance_reported_case =
			    GATEWAY__GET_INSTANCE_PORT_POLICY_RESPONSE___INSTANCE_REPORTED_INSTANCE_REPORTED;
		if ((out->admin_override = policy_to_msg(&x->admin_policy)))
			out->_admin_override_case =
			    GATEWAY__GET_INSTANCE_PORT_POLICY_RESPONSE___ADMIN_OVERRIDE_ADMIN_OVERRIDE;
		rc = 0;
		break;
	}
	gw_snapshot_free(v, n);
	if (rc < 0)
		err_set(e, "instance %.128s not found", in->instance_id);
	return rc;
}

static int reload_cert(struct prpc_call *call, const void *in, void *out, struct err *e)
{
	(void)in;
	(void)out;
	log_info("Admin.ReloadCert");
	return gw_reload_certs(prpc_call_arg(call), e);
}

static const struct prpc_method admin_methods[] = {
    PRPC_METHOD_BLOCKING("Status", google__protobuf__empty, gateway__status_response, status),
    PRPC_METHOD_BLOCKING("GetInfo", gateway__get_info_request, gateway__get_info_response, get_info),
    PRPC_METHOD("GetMeta", google__protobuf__empty, gateway__get_meta_response, get_meta),
    PRPC_METHOD("Exit", gateway__exit_request, google__protobuf__empty, do_exit),
    PRPC_METHOD("SetNodeStatus", gateway__set_node_status_request, google__protobuf__empty, set_node_status),
    PRPC_METHOD("SetInstancePortPolicy", gateway__set_instance_port_policy_request, google__protobuf__empty,
		set_policy),
    PRPC_METHOD("ClearInstancePortPolicy", gateway__instance_id_request, google__protobuf__empty,
		clear_policy),
    PRPC_METHOD("GetInstancePortPolicy", gateway__instance_id_request,
		gateway__get_instance_port_policy_response, get_policy),
    PRPC_METHOD_BLOCKING("ReloadCert", google__protobuf__empty, google__protobuf__empty, reload_cert),
};
static const char *const admin_prefixes[] = {"Admin.", NULL};

static void dashboard(struct http_request *req, void *arg)
{
	(void)arg;
	http_resp_header(req, "Cache-Control", "no-store");
	http_respond(req, 200, "text/html; charset=utf-8", gw_dashboard_html, strlen(gw_dashboard_html));
}

int gw_mount_admin(struct gateway *gw, struct http_server *srv, struct err *e)
{
	static struct prpc_service svc = {"Admin", admin_prefixes, admin_methods, ARRAY_SIZE(admin_methods),
					  NULL};
	const struct prpc_service *svcs[] = {&svc};

	svc.arg = gw;
	http_server_add_filter(srv, auth_filter, gw);
	http_server_add_health(srv);
	http_server_route(srv, "GET", "/", false, dashboard, gw);
	if (prpc_mount(srv, "/prpc/", svcs, 1, e) < 0 || prpc_mount(srv, "/", svcs, 1, e) < 0)
		return -1;
	return 0;
}
