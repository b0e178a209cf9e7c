/*
 * main.c — dstack-verifier: an HTTP service that verifies dstack
 * attestations for anyone who asks (guest.md §4.4).
 *
 *   POST /verify  {attestation:hex} | {quote:hex, event_log:str, vm_config:str}
 *                 → 200 {is_valid, reason, details{...}} (lib/ratls/report.h)
 *                   400 for a body that is not JSON
 *   GET /health   → {"status":"ok","service":"dstack-verifier"}
 *
 * Configuration (lib/config layers: defaults, /etc/dstack/verifier.toml,
 * ./verifier.toml, -c FILE): address, port, pccs_url, cache_dir, collateral,
 * root_ca, insecure_allow_external_trust_anchors, verify_at, log_level.
 * Verification can block on PCCS, so it runs on the server's worker pool.
 * The bound address is printed on stdout ("listening on tcp:HOST:PORT") so
 * a supervisor or test can use port 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "config/daemon_args.h"
#include "config/config.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/log.h"
#include "http/server.h"
#include "ratls/report.h"
#include "ratls/verify.h"

static const char defaults[] = "address = \"0.0.0.0\"\n"
			       "port = 8080\n"
			       "pccs_url = \"https://pccs.phala.network\"\n"
			       "cache_dir = \"\"\n"
			       "collateral = \"\"\n"
			       "root_ca = \"\"\n"
			       "insecure_allow_external_trust_anchors = false\n"
			       "verify_at = 0\n"
			       "log_level = \"info\"\n";

struct verifier_cfg {
	char *address;
	uint16_t port;
	char *pccs_url;
	char *cache_dir;
	char *collateral;
	char *root_ca;
	bool insecure;
	int64_t verify_at;
	char *log_level;
};

static const struct cfg_field schema[] = {
    {"address", CFG_STRING, CFG_AT(struct verifier_cfg, address)},
    {"port", CFG_UINT, CFG_AT(struct verifier_cfg, port)},
    {"pccs_url", CFG_STRING, CFG_AT(struct verifier_cfg, pccs_url)},
    {"cache_dir", CFG_STRING, CFG_AT(struct verifier_cfg, cache_dir)},
    {"collateral", CFG_STRING, CFG_AT(struct verifier_cfg, collateral)},
    {"root_ca", CFG_STRING, CFG_AT(struct verifier_cfg, root_ca)},
    {"insecure_allow_external_trust_anchors", CFG_BOOL, CFG_AT(struct verifier_cfg, insecure)},
    {"verify_at", CFG_INT, CFG_AT(struct verifier_cfg, verify_at), .min = 0, .max = INT64_MAX},
    {"log_level", CFG_STRING, CFG_AT(struct verifier_cfg, log_level)},
};

struct service {
	struct ratls_verifier *verifier;
	time_t verify_at; /* 0 = now */
};

struct job {
	struct http_request *req;
	struct service *svc;
	json_t *body;
	json_t *reply;
	bool valid;
};

static void send_json(struct http_request *req, int status, json_t *j)
{
	char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);

	if (!text) {
		http_respond_text(req, 500, "internal error\n");
		return;
	}
	http_respond(req, status, "application/json", text, strlen(text));
	free(text);
}

static void verify_work(void *arg)
{
	struct job *j = arg;

	j->reply = ratls_verify_request_json(j->svc->verifier, j->body, j->svc->verify_at, &j->valid);
}

static void verify_done(void *arg)
{
	struct job *j = arg;

	log_info("verify from %s: %s%s%s", http_req_peer(j->req), j->valid ? "valid" : "invalid",
		 j->valid ? "" : ": ",
		 j->valid ? "" : json_string_value(json_object_get(j->reply, "reason")) ?: "");
	send_json(j->req, 200, j->reply);
	json_decref(j->reply);
	json_decref(j->body);
	free(j);
}

static void handle_verify(struct http_request *req, void *arg)
{
	struct service *svc = arg;
	size_t len;
	const uint8_t *body = http_req_body(req, &len);
	json_error_t jerr;
	struct err e = ERR_INIT;

	json_t *doc = json_loadb((const char *)body, len, 0, &jerr);
	if (!json_is_object(doc)) {
		json_decref(doc);
		_cleanup_json_ json_t *r = json_pack("{s:b, s:s, s:{}}", "is_valid", 0, "reason",
						     "request body must be a JSON object", "details");
		send_json(req, 400, r);
		return;
	}
	struct job *j = calloc(1, sizeof(*j));
	if (!j)
		abort();
	j->req = req;
	j->svc = svc;
	j->body = doc;
	if (http_server_submit(http_req_server(req), verify_work, verify_done, j, &e) < 0) {
		json_decref(doc);
		free(j);
		http_respond_text(req, 503, "shutting down\n");
	}
}

static void handle_health(struct http_request *req, void *arg)
{
	static const char ok[] = "{\"status\":\"ok\",\"service\":\"dstack-verifier\"}";

	http_respond(req, 200, "application/json", ok, sizeof(ok) - 1);
}

static void usage(FILE *f)
{
	fputs("Usage: dstack-verifier [-c FILE] [--print-defaults]\n"
	      "\n"
	      "Verifies dstack attestations (TDX quote, event log, RTMR replay, app identity)\n"
	      "over HTTP: POST /verify, GET /health.\n"
	      "\n"
	      "  -c, --config FILE   configuration file layered over /etc/dstack/verifier.toml\n"
	      "                      and ./verifier.toml\n"
	      "      --print-defaults  print the built-in configuration and exit\n"
	      "  -h, --help          this help\n"
	      "  -V, --version       print the version\n"
	      "\n"
	      "See docs/verifier.md.\n",
	      f);
}

static int run(const struct verifier_cfg *cfg, struct err *e)
{
	struct service svc = {.verify_at = (time_t)cfg->verify_at};
	struct ratls_verifier_opts vo = {
	    .pccs_url = cfg->pccs_url && *cfg->pccs_url ? cfg->pccs_url : NULL,
	    .cache_dir = cfg->cache_dir && *cfg->cache_dir ? cfg->cache_dir : NULL,
	    .root_ca_path = cfg->root_ca && *cfg->root_ca ? cfg->root_ca : NULL,
	    .insecure_allow_external_trust_anchors = cfg->insecure,
	};
	_cleanup_free_ uint8_t *coll = NULL;
	size_t coll_len = 0;
	int rc = -1;

	if (cfg->collateral && *cfg->collateral) {
		if (file_read_all(cfg->collateral, 1 << 20, &coll, &coll_len, e) < 0)
			return err_wrap(e, "collateral");
		vo.collateral_json = (const char *)coll;
		vo.collateral_json_len = coll_len;
	}
	if (ratls_verifier_new(&svc.verifier, &vo, e) < 0)
		return -1;
	if (ratls_verifier_is_dev(svc.verifier))
		log_warn("trust anchor %s is NOT the Intel SGX root CA: development use only",
			 vo.root_ca_path);

	struct event_base *base = event_base_new();
	/* Room for the largest attestation in hex plus the JSON around it. */
	struct http_server_opts so = {.max_body_bytes = 2 * (size_t)ATTESTATION_MAX_LEN + 65536};
	struct http_server *srv = base ? http_server_new(base, &so, e) : NULL;
	struct http_listen_spec spec;
	uint16_t port = 0;
	if (!srv) {
		if (!base)
			err_set(e, "event_base_new failed");
		goto out;
	}
	http_server_route(srv, "POST", "/verify", false, handle_verify, &svc);
	http_server_route(srv, "GET", "/health", false, handle_health, NULL);
	if (http_listen_spec_set(&spec, HTTP_LISTEN_TCP, cfg->address, cfg->port, NULL, 0, e) < 0 ||
	    http_server_listen(srv, &spec, NULL, &port, e) < 0 || http_server_handle_signals(srv, e) < 0)
		goto out;
	printf("dstack-verifier listening on tcp:%s:%u\n", cfg->address, port);
	fflush(stdout);
	log_info("listening on %s:%u", cfg->address, port);
	event_base_dispatch(base);
	log_info("stopped");
	rc = 0;
out:
	http_server_free(srv);
	if (base)
		event_base_free(base);
	ratls_verifier_free(svc.verifier);
	return rc;
}

int main(int argc, char **argv)
{
	struct err e = ERR_INIT;
	const char *file = NULL;
	struct verifier_cfg cfg;
	struct config c = CONFIG_INIT;
	enum log_level lvl;
	struct daemon_args args = {.prog = "dstack-verifier", .usage = usage, .defaults_toml = defaults};
	int args_rc = daemon_args_parse(&args, argc, argv);

	if (args_rc >= 0)
		return args_rc;
	file = args.config;

	memset(&cfg, 0, sizeof(cfg));
	struct config_search s = {
	    .name = "verifier", .defaults = defaults, .etc_dir = "/etc/dstack", .file = file};
	if (config_load(&c, &s, &e) < 0 || config_bind(&c, schema, ARRAY_SIZE(schema), &cfg, &e) < 0) {
		config_free(&c);
		fprintf(stderr, "dstack-verifier: %s\n", err_str(&e));
		return 1;
	}
	config_free(&c);
	if (log_level_parse(cfg.log_level, &lvl) < 0)
		lvl = LOG_LVL_INFO;
	log_init("verifier", lvl);
	int rc = run(&cfg, &e);
	if (rc < 0)
		log_error("%s", err_str(&e));
	config_unbind(schema, ARRAY_SIZE(schema), &cfg);
	return rc < 0 ? 1 : 0;
}
