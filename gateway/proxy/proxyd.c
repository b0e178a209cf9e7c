/*
 * proxyd.c — `dstack-proxyd`: the proxy engine with a static routing table
 * from command-line flags, for manual testing and benchmarks. The real
 * `dstack-gateway` embeds the same engine and routes from its CVM registry.
 *
 *   dstack-proxyd --port 8443 --base-domain gw.test --cert c.pem --key k.pem \
 *       --localhost --route myapp=10.0.0.2,10.0.0.3 --workers 2
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "proxy.h"

#define MAX_ROUTES 32

struct route {
	char id[128];
	size_t n;
	struct in_addr ip[PROXY_MAX_CANDIDATES];
	bool pp;
};

struct table {
	size_t n;
	struct route r[MAX_ROUTES];
};

static int table_resolve(void *ctx, const char *id, uint16_t port, struct proxy_candidates *out,
			 struct err *e)
{
	const struct table *t = ctx;

	for (size_t i = 0; i < t->n; i++) {
		const struct route *r = &t->r[i];
		if (strcmp(r->id, id) != 0)
			continue;
		snprintf(out->app_id, sizeof(out->app_id), "%s", id);
		for (size_t k = 0; k < r->n; k++) {
			struct sockaddr_in *sa = (struct sockaddr_in *)&out->b[k].addr;
			sa->sin_family = AF_INET;
			sa->sin_addr = r->ip[k];
			sa->sin_port = htons(port);
			out->b[k].addr_len = sizeof(*sa);
			out->b[k].pp = r->pp;
		}
		out->n = r->n;
		return 0;
	}
	return err_set(e, "unknown app '%s'", id);
}

/* id=ip[,ip...][/pp] */
static int parse_route(char *s, struct route *r)
{
	char *eq = strchr(s, '='), *save = NULL;

	if (!eq || (size_t)(eq - s) >= sizeof(r->id))
		return -1;
	memset(r, 0, sizeof(*r));
	memcpy(r->id, s, (size_t)(eq - s));
	char *slash = strchr(eq, '/');
	if (slash) {
		if (strcmp(slash, "/pp") != 0)
			return -1;
		*slash = '\0';
		r->pp = true;
	}
	for (char *t = strtok_r(eq + 1, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (r->n == PROXY_MAX_CANDIDATES || inet_pton(AF_INET, t, &r->ip[r->n]) != 1)
			return -1;
		r->n++;
	}
	return r->n ? 0 : -1;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: dstack-proxyd [options]\n"
		"  --listen ADDR          listen address (0.0.0.0)\n"
		"  --port P|A-B           listen port or range (8443)\n"
		"  --workers N            worker threads (0 = CPUs; default 0)\n"
		"  --base-domain D --cert CHAIN.pem --key KEY.pem   wildcard certificate for *.D\n"
		"  --route ID=IP[,IP..][/pp]  static backends for an app id\n"
		"  --localhost            insecure_localhost_backend (localhost-<port>[s].D -> 127.0.0.1)\n"
		"  --idle SECS            idle timeout (600); 0 disables data timeouts\n"
		"  --splice BYTES         enable tcp_splice after BYTES (0 = immediately)\n"
		"  --pp-in                expect PROXY protocol headers from clients\n"
		"  --tls VERSIONS         1.2, 1.3 or 1.2,1.3 (default)\n"
		"  --dns-server IP[:PORT] resolver for custom-domain TXT records\n"
		"  --buffer-size BYTES    relay chunk size (65536)\n"
		"  --no-rebalance         keep every connection on the worker that accepted it\n"
		"  --log LEVEL            error|warn|info|debug\n");
}

int main(int argc, char **argv)
{
	/* clang-format off */
	static const struct option opts[] = {
	    {"listen", 1, 0, 'l'},
	    {"port", 1, 0, 'p'},
	    {"workers", 1, 0, 'w'},
	    {"base-domain", 1, 0, 'd'},
	    {"cert", 1, 0, 'c'},
	    {"key", 1, 0, 'k'},
	    {"route", 1, 0, 'r'},
	    {"localhost", 0, 0, 'L'},
	    {"idle", 1, 0, 'i'},
	    {"splice", 1, 0, 's'},
	    {"pp-in", 0, 0, 'P'},
	    {"tls", 1, 0, 't'},
	    {"dns-server", 1, 0, 'D'},
	    {"buffer-size", 1, 0, 'b'},
	    {"no-rebalance", 0, 0, 'R'},
	    {"log", 1, 0, 'v'},
	    {"help", 0, 0, 'h'},
	    {0, 0, 0, 0},
	};
	/* clang-format on */
	static struct table table;
	struct proxy_config cfg;
	struct proxy_routes routes = {.ctx = &table, .resolve = table_resolve};
	struct proxy_engine *pe;
	struct err e = ERR_INIT;
	enum log_level lvl = LOG_LVL_INFO;
	sigset_t set;
	int opt, sig;

	proxy_config_defaults(&cfg);
	cfg.workers = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			cfg.listen_addr = optarg;
			break;
		case 'p':
			if (proxy_parse_port_range(optarg, &cfg.listen_port_lo, &cfg.listen_port_hi, &e) < 0)
				goto bad;
			break;
		case 'w':
			cfg.workers = (unsigned)atoi(optarg);
			break;
		case 'd':
			cfg.base_domain = optarg;
			break;
		case 'c':
			cfg.cert_chain = optarg;
			break;
		case 'k':
			cfg.cert_key = optarg;
			break;
		case 'r':
			if (table.n == MAX_ROUTES || parse_route(optarg, &table.r[table.n]) < 0) {
				err_set(&e, "bad --route '%s'", optarg);
				goto bad;
			}
			table.n++;
			break;
		case 'L':
			cfg.insecure_localhost_backend = true;
			break;
		case 'i':
			cfg.timeouts.idle = strtoull(optarg, NULL, 10) * 1000;
			cfg.timeouts.data_timeout_enabled = cfg.timeouts.idle != 0;
			break;
		case 's':
			cfg.tcp_splice.enabled = true;
			cfg.tcp_splice.after_bytes = strtoull(optarg, NULL, 10);
			break;
		case 'P':
			cfg.inbound_pp_enabled = true;
			break;
		case 't':
			cfg.tls_versions = (strstr(optarg, "1.2") ? PROXY_TLS12 : 0) |
					   (strstr(optarg, "1.3") ? PROXY_TLS13 : 0);
			break;
		case 'D':
			cfg.dns_servers[0] = optarg;
			break;
		case 'b':
			cfg.buffer_size = strtoull(optarg, NULL, 10);
			break;
		case 'R':
			cfg.connection_rebalance = false;
			break;
		case 'v':
			if (log_level_parse(optarg, &lvl) < 0) {
				err_set(&e, "bad --log '%s'", optarg);
				goto bad;
			}
			break;
		default:
			usage();
			return opt == 'h' ? 0 : 2;
		}
	}
	log_init("proxyd", lvl);
	/* Block the stop signals in every thread; main waits for them. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (proxy_engine_new(&cfg, &routes, &pe, &e) < 0 || proxy_engine_start(pe, &e) < 0)
		goto bad;
	printf("listening on %s:%u\n", cfg.listen_addr, proxy_engine_port(pe));
	fflush(stdout);
	sigwait(&set, &sig);
	proxy_engine_free(pe);
	return 0;
bad:
	fprintf(stderr, "dstack-proxyd: %s\n", err_str(&e));
	return 1;
}
