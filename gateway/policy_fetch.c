/*
 * policy_fetch.c — lazy port-policy fetch (gateway.md §5): a CVM that did
 * not report a port policy (legacy guests, Debug registrations) is denied
 * (fail-closed) and queued here; a dedicated thread asks its guest agent
 * `GET http://<wg_ip>:<agent_port>/prpc/Info?json` and reads
 * tcb_info.app_compose.port_policy (an empty tcb_info, or a compose without
 * a policy, means open). Failures retry with doubling backoff up to
 * port_policy_fetch.max_retries; the proxy re-queues the instance on its
 * next connection. The queue is small, deduplicated and never blocks the
 * proxy threads that fill it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "gateway.h"
#include "http/client.h"

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void gw_fetch_enqueue(struct gateway *gw, const char *iid, uint32_t ip)
{
	pthread_mutex_lock(&gw->fetch_lock);
	for (size_t i = 0; i < gw->n_fetch; i++)
		if (!strcmp(gw->fetch_q[i].instance_id, iid))
			goto out;
	if (gw->n_fetch < GW_FETCH_QUEUE) {
		struct gw_fetch *f = &gw->fetch_q[gw->n_fetch++];
		memset(f, 0, sizeof(*f));
		snprintf(f->instance_id, sizeof(f->instance_id), "%s", iid);
		f->ip = ip;
		f->due_ms = mono_ms();
		f->backoff_ms = gw->cfg.fetch_backoff_initial ? gw->cfg.fetch_backoff_initial : 1000;
	}
out:
	pthread_mutex_unlock(&gw->fetch_lock);
}

static json_t *json_string_doc(json_t *s)
{
	return json_is_string(s) && *json_string_value(s) ? json_loads(json_string_value(s), 0, NULL) : NULL;
}

int gw_policy_from_agent_info(const char *text, struct gw_port_policy *out, struct err *e)
{
	_cleanup_json_ json_t *root = json_loads(text, 0, NULL), *tcb = NULL, *compose = NULL;
	json_t *tcb_s, *pp, *ports, *v;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(root))
		return err_set(e, "agent Info: reply is not a JSON object");
	out->present = true;
	tcb_s = json_object_get(root, "tcb_info");
	if (!json_is_string(tcb_s) || !*json_string_value(tcb_s))
		return 0; /* no tcb_info published: open */
	if (!(tcb = json_string_doc(tcb_s)) || !json_is_object(tcb))
		return err_set(e, "agent Info: tcb_info is not JSON");
	if (!json_object_get(tcb, "app_compose"))
		return 0;
	if (!(compose = json_string_doc(json_object_get(tcb, "app_compose"))) || !json_is_object(compose))
		return err_set(e, "agent Info: app_compose is not JSON");
	pp = json_object_get(compose, "port_policy");
	if (!json_is_object(pp))
		return 0;
	out->restrict_mode = json_is_true(json_object_get(pp, "restrict_mode"));
	ports = json_object_get(pp, "ports");
	if (json_array_size(ports) > 65535)
		return err_set(e, "agent Info: too many ports in port_policy");
	if (json_array_size(ports) && !(out->ports = calloc(json_array_size(ports), sizeof(*out->ports))))
		return err_set(e, "out of memory");
	json_array_foreach(ports, i, v)
	{
		json_int_t port = json_integer_value(json_object_get(v, "port"));
		if (port <= 0 || port > 65535) {
			gw_port_policy_free(out);
			return err_set(e, "agent Info: invalid port in port_policy");
		}
		out->ports[out->n_ports].port = (uint16_t)port;
		out->ports[out->n_ports++].pp = json_is_true(json_object_get(v, "pp"));
	}
	return 0;
}

static int fetch_one(struct gateway *gw, const struct gw_fetch *f, struct err *e)
{
	struct http_client_opts o = {.timeout_ms =
					 (long)(gw->cfg.fetch_timeout ? gw->cfg.fetch_timeout : 10000),
				     .connect_timeout_ms = 5000,
				     .max_body = 4u << 20};
	struct http_response r = {0};
	struct gw_port_policy p;
	char url[128], ip[16];
	int rc;

	ip4_format(f->ip, ip);
	snprintf(url, sizeof(url), "http://%s:%u/prpc/Info?json", ip, gw->cfg.agent_port);
	if (http_fetch(&o, "GET", url, NULL, NULL, 0, &r, e) < 0)
		return -1;
	if (r.status != 200) {
		err_set(e, "HTTP %ld", r.status);
		http_response_free(&r);
		return -1;
	}
	rc = gw_policy_from_agent_info((const char *)r.body.data, &p, e);
	http_response_free(&r);
	if (rc < 0)
		return -1;
	rc = gw_set_reported_policy(gw, f->instance_id, &p, e);
	gw_port_policy_free(&p);
	return rc;
}

static void *fetcher(void *arg)
{
	struct gateway *gw = arg;

	pthread_mutex_lock(&gw->stop_lock);
	while (!gw->stopping) {
		pthread_mutex_unlock(&gw->stop_lock);
		struct gw_fetch job;
		bool have = false;
		uint64_t now = mono_ms();

		pthread_mutex_lock(&gw->fetch_lock);
		for (size_t i = 0; i < gw->n_fetch && !have; i++)
			if (gw->fetch_q[i].due_ms <= now) {
				job = gw->fetch_q[i];
				have = true;
			}
		pthread_mutex_unlock(&gw->fetch_lock);
		if (have) {
			struct err e = ERR_INIT;
			bool done = fetch_one(gw, &job, &e) == 0;
			if (done)
				log_info("port policy of %s fetched from its agent", job.instance_id);
			else
				log_warn("port policy of %s: %s", job.instance_id, err_str(&e));
			pthread_mutex_lock(&gw->fetch_lock);
			for (size_t i = 0; i < gw->n_fetch; i++) {
				struct gw_fetch *f = &gw->fetch_q[i];
				if (strcmp(f->instance_id, job.instance_id))
					continue;
				if (done || ++f->tries > gw->cfg.fetch_max_retries) {
					gw->fetch_q[i] = gw->fetch_q[--gw->n_fetch];
				} else {
					f->due_ms = mono_ms() + f->backoff_ms;
					f->backoff_ms *= 2;
					if (gw->cfg.fetch_backoff_max &&
					    f->backoff_ms > gw->cfg.fetch_backoff_max)
						f->backoff_ms = gw->cfg.fetch_backoff_max;
				}
				break;
			}
			pthread_mutex_unlock(&gw->fetch_lock);
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 200 * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_mutex_lock(&gw->stop_lock);
		if (!gw->stopping && !have)
			pthread_cond_timedwait(&gw->stop_cond, &gw->stop_lock, &ts);
	}
	pthread_mutex_unlock(&gw->stop_lock);
	return NULL;
}

int gw_fetcher_start(struct gateway *gw, struct err *e)
{
	if (pthread_create(&gw->fetcher, NULL, fetcher, gw) != 0)
		return err_set(e, "cannot start the port-policy fetcher");
	gw->fetcher_running = true;
	return 0;
}

void gw_fetcher_stop(struct gateway *gw)
{
	if (!gw->fetcher_running)
		return;
	pthread_mutex_lock(&gw->stop_lock);
	gw->stopping = true;
	pthread_cond_broadcast(&gw->stop_cond);
	pthread_mutex_unlock(&gw->stop_lock);
	pthread_join(gw->fetcher, NULL);
	gw->fetcher_running = false;
}
