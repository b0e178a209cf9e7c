/*
 * agent_main.c — `dstack-guest-agent`: option parsing, configuration, and
 * one HTTP server per surface (the services are told apart by socket, not
 * by path): DstackGuest on dstack.sock, Tappd on tappd.sock, Worker and the
 * dashboard on TCP 8090, GuestApi on vsock 8000 (guest.md §1.1) — or, where
 * the kernel has no vsock (or the address is taken), on the configured
 * fallback socket, said so in the log. Without either the agent still
 * serves the app: GuestApi is only the host's view.
 *
 *   dstack-guest-agent [-c agent.json|agent.toml] [--watchdog]
 *   dstack-guest-agent --simulator DIR [--simtee-dir DIR]
 *   overrides: --dstack-sock PATH --tappd-sock PATH --external ADDR
 *              --guest-api ADDR --guest-api-fallback ADDR (ADDR "none"
 *              disables) --log-level L
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libgen.h>

#include <event2/event.h>

#include "agent.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/log.h"
#include "guest_api.h"
#include "rpc.h"

static void usage(FILE *f)
{
	fputs("Usage: dstack-guest-agent [-c CONFIG] [--simulator DIR [--simtee-dir DIR]]\n"
	      "         [--dstack-sock PATH] [--tappd-sock PATH] [--external ADDR|none]\n"
	      "         [--guest-api ADDR|none] [--guest-api-fallback ADDR|none]\n"
	      "         [--log-level LEVEL] [--watchdog]\n"
	      "\nServes the dstack guest API inside a CVM. With --simulator, serves the\n"
	      "appkeys.json, app-compose.json and sys-config.json of DIR on a simulated TDX\n"
	      "(sockets DIR/dstack.sock, DIR/tappd.sock, DIR/guest.sock).\n",
	      f);
}

static void replace(char **slot, const char *v)
{
	free(*slot);
	*slot = strdup(v);
	if (!*slot)
		abort();
}

static void replace_list(struct cfg_strings *s, const char *v)
{
	for (size_t i = 0; i < s->count; i++)
		free(s->items[i]);
	free(s->items);
	s->items = calloc(1, sizeof(char *));
	if (!s->items)
		abort();
	s->items[0] = strdup(v);
	s->count = 1;
}

static bool disabled(const char *addr)
{
	return !addr || !*addr || strcmp(addr, "none") == 0;
}

static int listen_unix(struct http_server *srv, const char *path, struct err *e)
{
	struct http_listen_spec spec;
	_cleanup_free_ char *dir = strdup(path);
	if (!dir)
		return err_set(e, "out of memory");
	if (mkdir_p(dirname(dir), 0755, e) < 0)
		return -1;
	if (http_listen_spec_set(&spec, HTTP_LISTEN_UNIX, NULL, 0, path, 0, e) < 0)
		return -1;
	spec.mode = 0777;
	if (http_server_listen(srv, &spec, NULL, NULL, e) < 0)
		return err_wrap(e, "listen on %s", path);
	log_info("listening on unix:%s", path);
	return 0;
}

static int listen_addr(struct http_server *srv, const char *addr, struct err *e)
{
	struct http_listen_spec spec;
	uint16_t port = 0;
	if (http_listen_parse(addr, &spec, e) < 0)
		return -1;
	if (spec.kind == HTTP_LISTEN_UNIX) {
		spec.mode = 0777;
		_cleanup_free_ char *dir = strdup(spec.path);
		if (dir && mkdir_p(dirname(dir), 0755, e) < 0)
			return -1;
	}
	if (http_server_listen(srv, &spec, NULL, &port, e) < 0)
		return err_wrap(e, "listen on %s", addr);
	log_info("listening on %s (port %u)", addr, port);
	return 0;
}

/* GuestApi on its address, else on the fallback; false if on neither. */
static bool listen_guest_api(struct http_server *srv, const struct agent_cfg *c)
{
	struct err e = ERR_INIT;
	if (listen_addr(srv, c->guest_api_listen, &e) == 0)
		return true;
	if (disabled(c->guest_api_fallback)) {
		log_warn("GuestApi not served: %s (no guest_api_fallback configured)", err_str(&e));
		return false;
	}
	log_warn("GuestApi: %s unavailable (%s); falling back to %s", c->guest_api_listen, err_str(&e),
		 c->guest_api_fallback);
	err_clear(&e);
	if (listen_addr(srv, c->guest_api_fallback, &e) < 0) {
		log_warn("GuestApi not served: fallback %s failed too: %s", c->guest_api_fallback,
			 err_str(&e));
		return false;
	}
	log_info("GuestApi served on the fallback %s", c->guest_api_fallback);
	return true;
}

static struct http_server *new_server(struct event_base *base, struct agent *a, struct err *e)
{
	struct http_server_opts o = {.app_version = DSTACK_VERSION};
	struct http_server *s = http_server_new(base, &o, e);
	if (s)
		a->servers[a->n_servers++] = s;
	return s;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct agent *a = arg;
	log_info("signal %d: shutting down", (int)sig);
	for (size_t i = 0; i < a->n_servers; i++)
		http_server_shutdown(a->servers[i]);
}

enum { O_SIM = 1, O_SIMTEE, O_DSOCK, O_TSOCK, O_EXT, O_GAPI, O_GAPI_FB, O_LOG, O_WATCHDOG, O_HELP };

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
					     {"simulator", required_argument, NULL, O_SIM},
					     {"simtee-dir", required_argument, NULL, O_SIMTEE},
					     {"dstack-sock", required_argument, NULL, O_DSOCK},
					     {"tappd-sock", required_argument, NULL, O_TSOCK},
					     {"external", required_argument, NULL, O_EXT},
					     {"guest-api", required_argument, NULL, O_GAPI},
					     {"guest-api-fallback", required_argument, NULL, O_GAPI_FB},
					     {"log-level", required_argument, NULL, O_LOG},
					     {"watchdog", no_argument, NULL, O_WATCHDOG},
					     {"help", no_argument, NULL, O_HELP},
					     {NULL, 0, NULL, 0}};
	const char *conf_file = NULL, *sim = NULL, *simtee = NULL, *dsock = NULL, *tsock = NULL, *ext = NULL,
		   *gapi = NULL, *gapi_fb = NULL;
	enum log_level lvl = LOG_LVL_INFO;
	struct agent a;
	struct err e = ERR_INIT;
	int c, rc = 1;

	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			conf_file = optarg;
			break;
		case O_SIM:
			sim = optarg;
			break;
		case O_SIMTEE:
			simtee = optarg;
			break;
		case O_DSOCK:
			dsock = optarg;
			break;
		case O_TSOCK:
			tsock = optarg;
			break;
		case O_EXT:
			ext = optarg;
			break;
		case O_GAPI:
			gapi = optarg;
			break;
		case O_GAPI_FB:
			gapi_fb = optarg;
			break;
		case O_LOG:
			if (log_level_parse(optarg, &lvl) < 0) {
				fprintf(stderr, "dstack-guest-agent: unknown log level %s\n", optarg);
				return 2;
			}
			break;
		case O_WATCHDOG:
			break; /* systemd watchdog: nothing to do without sd_notify */
		case 'h':
		case O_HELP:
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	log_init("guest-agent", lvl);
	signal(SIGPIPE, SIG_IGN);
	memset(&a, 0, sizeof(a));
	agent_cfg_defaults(&a.cfg);
	if (conf_file) {
		struct config conf = CONFIG_INIT;
		if (config_add_file(&conf, conf_file, true, &e) < 0 ||
		    agent_cfg_bind(&conf, &a.cfg, &e) < 0) {
			config_free(&conf);
			fprintf(stderr, "dstack-guest-agent: %s\n", err_str(&e));
			agent_cfg_free(&a.cfg);
			return 1;
		}
		config_free(&conf);
	}
	if (simtee)
		replace(&a.cfg.simtee_dir, simtee);
	if (sim) {
		if (agent_simulator_prepare(&a, sim, &e) < 0)
			goto fail;
	} else if (agent_open(&a, &e) < 0) {
		goto fail;
	}
	if (dsock)
		replace_list(&a.cfg.dstack_sockets, dsock);
	if (tsock)
		replace_list(&a.cfg.tappd_sockets, tsock);
	if (ext)
		replace(&a.cfg.external_listen, ext);
	if (gapi)
		replace(&a.cfg.guest_api_listen, gapi);
	if (gapi_fb)
		replace(&a.cfg.guest_api_fallback, gapi_fb);

	struct event_base *base = event_base_new();
	if (!base) {
		err_set(&e, "event_base_new failed");
		goto fail;
	}
	struct http_server *sd = new_server(base, &a, &e), *st = sd ? new_server(base, &a, &e) : NULL;
	if (!sd || !st || agent_mount_dstack(sd, &a, &e) < 0 || agent_mount_tappd(st, &a, &e) < 0)
		goto fail_base;
	for (size_t i = 0; i < a.cfg.dstack_sockets.count; i++)
		if (listen_unix(sd, a.cfg.dstack_sockets.items[i], &e) < 0)
			goto fail_base;
	for (size_t i = 0; i < a.cfg.tappd_sockets.count; i++)
		if (listen_unix(st, a.cfg.tappd_sockets.items[i], &e) < 0)
			goto fail_base;
	if (!disabled(a.cfg.external_listen)) {
		struct http_server *sw = new_server(base, &a, &e);
		if (!sw || agent_mount_worker(sw, &a, &e) < 0 || dashboard_mount(sw, &a, &e) < 0 ||
		    listen_addr(sw, a.cfg.external_listen, &e) < 0)
			goto fail_base;
	}
	if (!disabled(a.cfg.guest_api_listen)) {
		struct http_server *sg = new_server(base, &a, &e);
		if (!sg || guest_api_mount(sg, &a, &e) < 0)
			goto fail_base;
		listen_guest_api(sg, &a.cfg);
	}
	struct event *sigs[2] = {evsignal_new(base, SIGTERM, on_signal, &a),
				 evsignal_new(base, SIGINT, on_signal, &a)};
	for (int i = 0; i < 2; i++)
		if (sigs[i])
			event_add(sigs[i], NULL);
	log_info("dstack-guest-agent %s ready%s", DSTACK_VERSION, a.simulator ? " (simulator)" : "");
	event_base_dispatch(base);
	for (int i = 0; i < 2; i++)
		if (sigs[i])
			event_free(sigs[i]);
	rc = 0;
fail_base:
	for (size_t i = 0; i < a.n_servers; i++)
		http_server_free(a.servers[i]);
	event_base_free(base);
fail:
	if (rc)
		fprintf(stderr, "dstack-guest-agent: %s\n", err_str(&e));
	agent_close(&a);
	return rc;
}
