/*
 * auth_simple_test.c — auth-simple as a real process on loopback: GET /,
 * the bootAuth routes with allowed and denied requests, 400 on a bad body,
 * editing the config file while it runs (allowed → denied → allowed), a
 * broken and a missing file (deny everything).
 *
 *     auth_simple_test AUTH_SIMPLE_PATH
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../tests/kms/testproc.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/tap.h"
#include "http/client.h"

static char url[128], cfg_path[PATH_MAX];

static const char *good_cfg =
    "{\"gatewayAppId\":\"gw-test\",\"osImages\":[\"0xaaaa\"],\"kms\":{\"mrAggregated\":[\"0xbbbb\"]},"
    "\"apps\":{\"0x1111\":{\"composeHashes\":[\"0xcccc\"]}}}";

static const char *body =
    "{\"teeVariant\":\"dstack-tdx\",\"tcbStatus\":\"UpToDate\",\"advisoryIds\":[],\"osImageHash\":\"aaaa\","
    "\"mrAggregated\":\"bbbb\",\"mrSystem\":\"\",\"appId\":\"1111\",\"composeHash\":\"cccc\",\"instanceId\":"
    "\"\","
    "\"deviceId\":\"dd\",\"keyProviderInfo\":\"\"}";

static long post(const char *path, const char *b, json_t **out)
{
	char u[256];
	struct http_response r = {0};
	struct err e = ERR_INIT;
	static const char *const h[] = {"Content-Type: application/json", NULL};
	long status;

	snprintf(u, sizeof(u), "%s%s", url, path);
	if (http_fetch(NULL, b ? "POST" : "GET", u, h, b, b ? strlen(b) : 0, &r, &e) < 0) {
		diag("fetch: %s", err_str(&e));
		return -1;
	}
	status = r.status;
	if (out)
		*out = json_loadb((const char *)r.body.data, r.body.len, 0, NULL);
	http_response_free(&r);
	return status;
}

static void expect(const char *path, bool allowed, const char *reason, const char *name)
{
	_cleanup_json_ json_t *j = NULL;
	long st = post(path, body, &j);

	is_int(st, 200, "%s: HTTP 200", name);
	ok(json_is_boolean(json_object_get(j, "isAllowed")) &&
	       json_is_true(json_object_get(j, "isAllowed")) == allowed,
	   "%s: isAllowed=%d", name, allowed);
	is_str(json_string_value(json_object_get(j, "reason")), reason, "%s: reason", name);
	ok(json_is_string(json_object_get(j, "gatewayAppId")), "%s: gatewayAppId present", name);
}

static void write_cfg(const char *text)
{
	/* A different size or mtime is how the server notices; sleep past the
	 * timestamp granularity to be safe. */
	tp_sleep_ms(20);
	file_write_atomic(cfg_path, text, strlen(text), 0644, NULL);
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/auth-simple-test-XXXXXX", log[PATH_MAX], port_env[32], path_env[PATH_MAX + 32];
	uint16_t port = tp_free_port();
	pid_t pid;
	_cleanup_json_ json_t *info = NULL;

	if (argc < 2 || !mkdtemp(dir))
		return 1;
	snprintf(cfg_path, sizeof(cfg_path), "%s/auth-config.json", dir);
	snprintf(log, sizeof(log), "%s/auth-simple.log", dir);
	snprintf(port_env, sizeof(port_env), "PORT=%u", port);
	snprintf(path_env, sizeof(path_env), "AUTH_CONFIG_PATH=%s", cfg_path);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", port);
	write_cfg(good_cfg);
	{
		const char *env[] = {port_env, path_env, "HOST=127.0.0.1", NULL};
		char *args[] = {argv[1], NULL};

		pid = tp_spawn(args, env, dir, log);
	}
	if (!ok(tp_wait_port(pid, port, 10), "auth-simple starts")) {
		tp_stop(pid);
		return tap_done();
	}
	is_int(post("/", NULL, &info), 200, "GET / is 200");
	is_str(json_string_value(json_object_get(info, "gatewayAppId")), "gw-test", "GET / gatewayAppId");
	is_str(json_string_value(json_object_get(info, "status")), "ok", "GET / status");
	expect("/bootAuth/app", true, "", "app allowed");
	expect("/bootAuth/kms", true, "", "kms allowed");
	is_int(post("/bootAuth/app", "{\"appId\":1}", NULL), 400, "invalid body → 400");
	is_int(post("/bootAuth/app", "not json", NULL), 400, "non-JSON body → 400");

	write_cfg("{\"gatewayAppId\":\"gw-test\",\"osImages\":[\"0xaaaa\"],\"kms\":{\"mrAggregated\":[]},"
		  "\"apps\":{\"0x1111\":{\"composeHashes\":[\"0xdddd\"]}}}");
	expect("/bootAuth/app", false, "compose hash not allowed", "edited file: compose hash removed");
	expect("/bootAuth/kms", false, "aggregated MR not allowed", "edited file: kms MR removed");
	write_cfg(good_cfg);
	expect("/bootAuth/app", true, "", "edited back: allowed again");
	write_cfg("{ broken");
	expect("/bootAuth/app", false, "OS image is not allowed", "broken file: denied");
	unlink(cfg_path);
	expect("/bootAuth/kms", false, "OS image is not allowed", "missing file: denied");
	write_cfg(good_cfg);
	expect("/bootAuth/kms", true, "", "file back: allowed");

	tp_stop(pid);
	{
		char cmd[PATH_MAX + 16];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			diag("cleanup failed");
	}
	return tap_done();
}
