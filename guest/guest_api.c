/*
 * guest_api.c — the host-facing GuestApi (`/api/{Info,SysInfo,NetworkInfo,
 * ListContainers,Shutdown}`, vsock 8000 in a CVM, a unix socket in the
 * simulator) and the Worker port's small dashboard (`/`, `/metrics` when
 * the compose sets public_sysinfo). Replies are JSON (the VMM speaks JSON);
 * values come from /proc and the agent's info. Container listing needs a
 * container runtime, which this agent does not drive: it reports none.
 */
#include "guest_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <event2/event.h>
#include <jansson.h>

#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/hex.h"
#include "core/log.h"
#include "prpc/server.h"

struct api_job {
	struct agent *a;
	struct http_request *req;
	json_t *reply;
	struct err e;
};

static void reply_json(struct http_request *req, int status, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!s) {
		http_respond_text(req, 500, "out of memory");
		return;
	}
	http_respond(req, status, "application/json", s, strlen(s));
	free(s);
}

static void reply_error(struct http_request *req, const char *msg)
{
	struct buf b = {0};
	prpc_error_json(msg, &b);
	http_respond(req, 400, "application/json", b.data, b.len);
	buf_free(&b);
}

static json_t *hexj(const struct bytes *b)
{
	char *h = hex_encode_alloc(b->p, b->len);
	json_t *j = json_string(h ? h : "");
	free(h);
	return j;
}

json_t *guest_api_info(struct agent *a, struct err *e)
{
	struct agent_info i;
	if (agent_info(a, &i, e) < 0)
		return NULL;
	json_t *j = json_object();
	json_object_set_new(j, "version", json_string(DSTACK_VERSION));
	json_object_set_new(j, "app_id", hexj(&i.ai.app_id));
	json_object_set_new(j, "instance_id", hexj(&i.ai.instance_id));
	json_object_set_new(j, "app_cert", json_string(""));
	json_object_set_new(j, "tcb_info", json_string(i.tcb_info));
	json_object_set_new(j, "app_name", json_string(agent_app_name(a)));
	json_object_set_new(j, "device_id", hexj(&i.ai.device_id));
	json_object_set_new(j, "mr_aggregated", hexj(&i.ai.mr_aggregated));
	json_object_set_new(j, "os_image_hash", hexj(&i.ai.os_image_hash));
	json_object_set_new(j, "compose_hash", hexj(&i.ai.compose_hash));
	json_object_set_new(j, "key_provider_info", json_string(i.key_provider_info));
	agent_info_free(&i);
	return j;
}

static char *first_line(const char *path, const char *prefix)
{
	_cleanup_free_ uint8_t *d = NULL;
	size_t n;
	if (file_read_all(path, 1 << 20, &d, &n, NULL) < 0)
		return strdup("");
	for (char *l = strtok((char *)d, "\n"); l; l = strtok(NULL, "\n")) {
		if (!prefix)
			return strdup(l);
		if (strncmp(l, prefix, strlen(prefix)) == 0) {
			char *v = strchr(l, prefix[strlen(prefix) - 1] == '=' ? '=' : ':');
			v = v ? v + 1 : l;
			while (*v == ' ' || *v == '\t' || *v == '"')
				v++;
			char *r = strdup(v);
			size_t rl = r ? strlen(r) : 0;
			while (rl && (r[rl - 1] == '"' || r[rl - 1] == ' '))
				r[--rl] = 0;
			return r;
		}
	}
	return strdup("");
}

json_t *guest_api_sysinfo(struct agent *a)
{
	struct sysinfo si;
	struct utsname un;
	struct statvfs sv;
	json_t *j = json_object(), *disks = json_array();
	char *os = first_line("/etc/os-release", "NAME="),
	     *osv = first_line("/etc/os-release", "VERSION_ID=");
	char *cpu = first_line("/proc/cpuinfo", "model name");

	sysinfo(&si);
	uname(&un);
	json_object_set_new(j, "os_name", json_string(os ? os : ""));
	json_object_set_new(j, "os_version", json_string(osv ? osv : ""));
	json_object_set_new(j, "kernel_version", json_string(un.release));
	json_object_set_new(j, "cpu_model", json_string(cpu ? cpu : ""));
	json_object_set_new(j, "num_cpus", json_integer(get_nprocs()));
	json_object_set_new(j, "total_memory", json_integer((json_int_t)si.totalram * si.mem_unit));
	json_object_set_new(j, "available_memory",
			    json_integer((json_int_t)(si.freeram + si.bufferram) * si.mem_unit));
	json_object_set_new(j, "used_memory",
			    json_integer((json_int_t)(si.totalram - si.freeram) * si.mem_unit));
	json_object_set_new(j, "free_memory", json_integer((json_int_t)si.freeram * si.mem_unit));
	json_object_set_new(j, "total_swap", json_integer((json_int_t)si.totalswap * si.mem_unit));
	json_object_set_new(j, "used_swap",
			    json_integer((json_int_t)(si.totalswap - si.freeswap) * si.mem_unit));
	json_object_set_new(j, "free_swap", json_integer((json_int_t)si.freeswap * si.mem_unit));
	json_object_set_new(j, "uptime", json_integer(si.uptime));
	json_object_set_new(j, "loadavg_one", json_integer(si.loads[0] * 100 / 65536));
	json_object_set_new(j, "loadavg_five", json_integer(si.loads[1] * 100 / 65536));
	json_object_set_new(j, "loadavg_fifteen", json_integer(si.loads[2] * 100 / 65536));
	if (statvfs(a->cfg.data_disks_root, &sv) == 0)
		json_array_append_new(disks, json_pack("{s:s,s:s,s:I,s:I}", "name", a->cfg.data_disks_root,
						       "mount_point", a->cfg.data_disks_root, "total_size",
						       (json_int_t)(sv.f_blocks * sv.f_frsize), "free_size",
						       (json_int_t)(sv.f_bavail * sv.f_frsize)));
	json_object_set_new(j, "disks", disks);
	free(os);
	free(osv);
	free(cpu);
	return j;
}

static json_t *network_info(void)
{
	struct ifaddrs *ifa = NULL;
	json_t *j = json_object(), *ifs = json_array();
	char *dns = first_line("/etc/resolv.conf", "nameserver ");
	json_t *dnsl = json_array();
	if (dns && *dns)
		json_array_append_new(dnsl, json_string(dns));
	free(dns);
	if (getifaddrs(&ifa) == 0) {
		for (struct ifaddrs *p = ifa; p; p = p->ifa_next) {
			char addr[INET6_ADDRSTRLEN] = "";
			if (!p->ifa_addr ||
			    (p->ifa_addr->sa_family != AF_INET && p->ifa_addr->sa_family != AF_INET6))
				continue;
			const void *src =
			    p->ifa_addr->sa_family == AF_INET
				? (const void *)&((struct sockaddr_in *)p->ifa_addr)->sin_addr
				: (const void *)&((struct sockaddr_in6 *)p->ifa_addr)->sin6_addr;
			inet_ntop(p->ifa_addr->sa_family, src, addr, sizeof(addr));
			json_array_append_new(ifs, json_pack("{s:s,s:[{s:s}]}", "name", p->ifa_name,
							     "addresses", "address", addr));
		}
		freeifaddrs(ifa);
	}
	json_object_set_new(j, "dns", dnsl);
	json_object_set_new(j, "gateways", json_array());
	json_object_set_new(j, "interfaces", ifs);
	return j;
}

static void info_work(void *arg)
{
	struct api_job *job = arg;
	job->reply = guest_api_info(job->a, &job->e);
}

static void info_done(void *arg)
{
	struct api_job *job = arg;
	if (job->reply)
		reply_json(job->req, 200, job->reply);
	else
		reply_error(job->req, err_str(&job->e));
	json_decref(job->reply);
	free(job);
}

static void shutdown_now(evutil_socket_t fd, short what, void *arg)
{
	struct agent *a = arg;
	for (size_t i = 0; i < a->n_servers; i++)
		http_server_shutdown(a->servers[i]);
}

/* After the reply has gone out: a moment later, on the loop. */
static void shutdown_all(struct event_base *base, struct agent *a)
{
	struct timeval tv = {0, 200 * 1000};
	event_base_once(base, -1, EV_TIMEOUT, shutdown_now, a, &tv);
}

static void api_handler(struct http_request *req, void *arg)
{
	struct agent *a = arg;
	const char *path = http_req_path(req);
	const char *m = strrchr(path, '/');
	m = m ? m + 1 : path;
	if (strncmp(m, "GuestApi.", 9) == 0)
		m += 9;
	if (strcmp(m, "Info") == 0) {
		struct api_job *job = calloc(1, sizeof(*job));
		if (!job)
			return http_respond_text(req, 500, "out of memory");
		job->a = a;
		job->req = req;
		if (http_server_submit(http_req_server(req), info_work, info_done, job, &job->e) < 0) {
			http_respond_text(req, 503, "shutting down");
			free(job);
		}
		return;
	}
	json_t *j = NULL;
	if (strcmp(m, "SysInfo") == 0)
		j = guest_api_sysinfo(a);
	else if (strcmp(m, "NetworkInfo") == 0)
		j = network_info();
	else if (strcmp(m, "ListContainers") == 0)
		j = json_pack("{s:[]}", "containers");
	else if (strcmp(m, "Shutdown") == 0) {
		log_info("GuestApi: shutdown requested by the host");
		struct event_base *base = http_server_base(http_req_server(req));
		http_respond(req, 200, "application/json", "null", 4); /* frees req */
		shutdown_all(base, a);
		return;
	} else {
		char msg[300];
		snprintf(msg, sizeof(msg), "Service not found: %s", m);
		return reply_error(req, msg);
	}
	reply_json(req, 200, j);
	json_decref(j);
}

int guest_api_mount(struct http_server *srv, struct agent *a, struct err *e)
{
	http_server_route(srv, NULL, "/api/", true, api_handler, a);
	return 0;
}

/* ---- dashboard ---- */

static void dash_work(void *arg)
{
	struct api_job *job = arg;
	job->reply = guest_api_info(job->a, &job->e);
}

static void html_escape(struct buf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<':
			buf_puts(b, "&lt;");
			break;
		case '>':
			buf_puts(b, "&gt;");
			break;
		case '&':
			buf_puts(b, "&amp;");
			break;
		case '"':
			buf_puts(b, "&quot;");
			break;
		default:
			buf_putc(b, (uint8_t)*s);
		}
	}
}

static void dash_done(void *arg)
{
	struct api_job *job = arg;
	struct buf b = {0};
	if (!job->reply) {
		http_respond_text(job->req, 500, err_str(&job->e));
	} else {
		bool tcb = agent_compose_flag(job->a, "public_tcbinfo", true);
		buf_puts(&b,
			 "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>dstack app</title></head>"
			 "<body><h1>");
		html_escape(&b, agent_app_name(job->a));
		buf_puts(&b, "</h1><table>");
		const char *keys[] = {"app_id",        "instance_id",   "device_id",        "compose_hash",
				      "os_image_hash", "mr_aggregated", "key_provider_info"};
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			buf_printf(&b, "<tr><th>%s</th><td><code>", keys[i]);
			html_escape(&b, json_string_value(json_object_get(job->reply, keys[i])));
			buf_puts(&b, "</code></td></tr>");
		}
		buf_puts(&b, "</table>");
		if (tcb) {
			buf_puts(&b, "<h2>TCB info</h2><pre>");
			html_escape(&b, json_string_value(json_object_get(job->reply, "tcb_info")));
			buf_puts(&b, "</pre>");
		}
		buf_puts(&b, "</body></html>\n");
		http_respond(job->req, 200, "text/html; charset=utf-8", b.data, b.len);
	}
	buf_free(&b);
	json_decref(job->reply);
	free(job);
}

static void dash_handler(struct http_request *req, void *arg)
{
	struct api_job *job = calloc(1, sizeof(*job));
	if (!job)
		return http_respond_text(req, 500, "out of memory");
	job->a = arg;
	job->req = req;
	if (http_server_submit(http_req_server(req), dash_work, dash_done, job, &job->e) < 0) {
		http_respond_text(req, 503, "shutting down");
		free(job);
	}
}

static void metrics_handler(struct http_request *req, void *arg)
{
	struct agent *a = arg;
	if (!agent_compose_flag(a, "public_sysinfo", false))
		return http_respond_text(req, 403, "sysinfo is not public");
	json_t *j = guest_api_sysinfo(a);
	struct buf b = {0};
	const char *k;
	json_t *v;
	json_object_foreach(j, k, v)
	{
		if (json_is_integer(v))
			buf_printf(&b, "dstack_%s %lld\n", k, (long long)json_integer_value(v));
	}
	http_respond(req, 200, "text/plain; version=0.0.4", b.data, b.len);
	buf_free(&b);
	json_decref(j);
}

static void logs_handler(struct http_request *req, void *arg)
{
	struct agent *a = arg;
	if (!agent_compose_flag(a, "public_logs", false))
		return http_respond_text(req, 403, "logs are not public");
	http_respond_text(req, 404, "container not found");
}

int dashboard_mount(struct http_server *srv, struct agent *a, struct err *e)
{
	http_server_route(srv, "GET", "/", false, dash_handler, a);
	http_server_route(srv, "GET", "/metrics", false, metrics_handler, a);
	http_server_route(srv, "GET", "/logs/", true, logs_handler, a);
	return 0;
}
