/*
 * main.c — auth-simple: the config-file auth webhook for dstack-kms
 * (kms.md §7). PORT (default 3000), AUTH_CONFIG_PATH (default
 * ./auth-config.json). The file is stat'ed on every request and re-read
 * when its mtime or size changed, so edits apply without a restart; a
 * missing or broken file means the defaults, which deny everything.
 *
 *   GET  /               {status, kmsContractAddr, gatewayAppId, chainId, appAuthImplementation, ...}
 *   POST /bootAuth/app   {isAllowed, reason, gatewayAppId}
 *   POST /bootAuth/kms   same; body validation failure → 400
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <event2/event.h>

#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/log.h"
#include "http/server.h"
#include "policy.h"

struct cfg_cache {
	const char *path;
	struct timespec mtime;
	off_t size;
	ino_t ino;
	bool loaded;
	json_t *cfg; /* NULL: defaults */
};

static const json_t *current(struct cfg_cache *c)
{
	struct stat st;
	_cleanup_free_ uint8_t *data = NULL;
	size_t len = 0;
	json_error_t je;
	struct err e = ERR_INIT;

	if (stat(c->path, &st) < 0) {
		if (c->cfg || !c->loaded)
			log_warn("%s: cannot stat; denying everything until it is back", c->path);
		json_decref(c->cfg);
		c->cfg = NULL;
		c->loaded = true;
		memset(&c->mtime, 0, sizeof(c->mtime));
		c->size = -1;
		return NULL;
	}
	if (c->loaded && st.st_mtim.tv_sec == c->mtime.tv_sec && st.st_mtim.tv_nsec == c->mtime.tv_nsec &&
	    st.st_size == c->size && st.st_ino == c->ino)
		return c->cfg;
	json_decref(c->cfg);
	c->cfg = NULL;
	c->loaded = true;
	c->mtime = st.st_mtim;
	c->size = st.st_size;
	c->ino = st.st_ino;
	if (file_read_all(c->path, 16 << 20, &data, &len, &e) < 0) {
		log_warn("%s: %s; denying everything", c->path, err_str(&e));
		return NULL;
	}
	c->cfg = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &je);
	if (!c->cfg || !json_is_object(c->cfg)) {
		log_warn("%s: invalid JSON (line %d: %s); denying everything", c->path, je.line, je.text);
		json_decref(c->cfg);
		c->cfg = NULL;
	} else {
		log_info("%s: loaded", c->path);
	}
	return c->cfg;
}

static void reply_json(struct http_request *req, int status, json_t *j)
{
	_cleanup_free_ char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	if (!s) {
		http_respond_text(req, 500, "out of memory");
		return;
	}
	http_respond(req, status, "application/json", s, strlen(s));
}

static void info(struct http_request *req, void *arg)
{
	reply_json(req, 200, policy_info(current(arg)));
}

static void boot_auth(struct http_request *req, struct cfg_cache *c, bool is_kms)
{
	size_t len = 0;
	const uint8_t *body = http_req_body(req, &len);
	_cleanup_json_ json_t *j = json_loadb((const char *)body, len, 0, NULL);
	const json_t *cfg = current(c);
	struct err e = ERR_INIT;
	char reason[256];
	bool ok;

	if (!j || policy_validate_request(j, &e) < 0) {
		reply_json(req, 400,
			   json_pack("{s:b, s:s, s:s}", "isAllowed", 0, "reason",
				     j ? err_str(&e) : "invalid JSON body", "gatewayAppId", ""));
		return;
	}
	ok = policy_decide(cfg, j, is_kms, reason, sizeof(reason));
	reply_json(req, 200,
		   json_pack("{s:b, s:s, s:s}", "isAllowed", ok, "reason", reason, "gatewayAppId",
			     policy_gateway_app_id(cfg)));
}

static void boot_app(struct http_request *req, void *arg)
{
	boot_auth(req, arg, false);
}

static void boot_kms(struct http_request *req, void *arg)
{
	boot_auth(req, arg, true);
}

int main(int argc, char **argv)
{
	const char *port_s = getenv("PORT"), *path = getenv("AUTH_CONFIG_PATH");
	struct cfg_cache cache = {0};
	struct event_base *base;
	struct http_server *srv;
	struct http_listen_spec spec;
	struct err e = ERR_INIT;
	uint16_t bound = 0;
	long port;
	char *end;

	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("Usage: auth-simple\n\nConfig-file auth webhook for dstack-kms.\n"
		       "Environment: PORT (default 3000), AUTH_CONFIG_PATH (default ./auth-config.json),\n"
		       "HOST (default 0.0.0.0). See docs/kms.md.\n");
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	log_init("auth-simple", LOG_LVL_INFO);
	port = strtol(port_s && *port_s ? port_s : "3000", &end, 10);
	if (*end || port < 0 || port > 65535) {
		log_error("PORT: invalid port '%s'", port_s);
		return 1;
	}
	cache.path = path && *path ? path : "./auth-config.json";
	current(&cache);
	base = event_base_new();
	if (!base || !(srv = http_server_new(base, NULL, &e))) {
		log_error("server: %s", err_str(&e));
		return 1;
	}
	http_server_add_health(srv);
	http_server_route(srv, "GET", "/", false, info, &cache);
	http_server_route(srv, "POST", "/bootAuth/app", false, boot_app, &cache);
	http_server_route(srv, "POST", "/bootAuth/kms", false, boot_kms, &cache);
	if (http_listen_spec_set(&spec, HTTP_LISTEN_TCP, getenv("HOST") ? getenv("HOST") : "0.0.0.0",
				 (uint16_t)port, NULL, 0, &e) < 0 ||
	    http_server_listen(srv, &spec, NULL, &bound, &e) < 0 || http_server_handle_signals(srv, &e) < 0) {
		log_error("listen: %s", err_str(&e));
		return 1;
	}
	log_info("auth-simple listening on port %u, config %s", bound, cache.path);
	fflush(stderr);
	event_base_dispatch(base);
	http_server_free(srv);
	event_base_free(base);
	json_decref(cache.cfg);
	return 0;
}
