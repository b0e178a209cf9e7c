/*
 * gateway_test.c — dstack-gateway as a real process on loopback.
 *
 * The test writes the development gateway.toml of the task (in the working
 * directory, layer 3) plus an override given with -c (ports, state dir, no
 * WireGuard link) and generated certificates: a root CA, the RPC server
 * certificate, a wildcard certificate and RA-TLS client certificates built
 * with lib/ratls, one carrying an AppInfo extension (1.3.6.1.4.1.62397.1.9)
 * and one carrying no identity. It then checks: start-up and layering,
 * Debug RegisterCvm (address allocation, wg(8) peer file), state across a
 * restart, admin authentication (and refusal to start without
 * credentials), RegisterCvm over mTLS with the §4.5 rejections, and the
 * §4.6 re-registration rules (a new WireGuard key bumps reg_time, a new
 * compose hash drops the reported port policy but not an admin override, the
 * address is kept only while it lies in client_ip_range).
 *
 * argv[1] = path of dstack-gateway.
 */
#include <arpa/inet.h>
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "attest/appinfo.h"
#include "codec/base64.h"
#include "core/buf.h"
#include "core/fileio.h"
#include "core/hex.h"
#include "core/tap.h"
#include "http/client.h"
#include "http/server.h"
#include "prpc/client.h"
#include "ratls/cert.h"

#include "../support/gateway_proc.h"

static char gw_pub[64], gw_priv[64];

/* A WireGuard key pair (X25519, base64). */
static void wg_keypair(char pub[64], char priv[64])
{
	EVP_PKEY *k = NULL;
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, NULL);
	uint8_t raw[32];
	size_t len = 32;
	char *s;

	EVP_PKEY_keygen_init(c);
	EVP_PKEY_keygen(c, &k);
	EVP_PKEY_get_raw_public_key(k, raw, &len);
	s = base64_encode(raw, 32);
	snprintf(pub, 64, "%s", s);
	free(s);
	len = 32;
	EVP_PKEY_get_raw_private_key(k, raw, &len);
	s = base64_encode(raw, 32);
	snprintf(priv, 64, "%s", s);
	free(s);
	EVP_PKEY_free(k);
	EVP_PKEY_CTX_free(c);
}

struct client_id {
	char *cert_pem, *key_pem;
};

static EVP_PKEY *ca_key;
static X509 *ca_cert;

/* A client certificate signed by the root CA whose AppInfo carries compose_hex. */
static struct client_id make_client_compose(const char *app_hex, const char *instance_hex,
					    const char *compose_hex);

/* A client certificate signed by the root CA; app/instance NULL = no identity extension. */
static struct client_id make_client(const char *app_hex, const char *instance_hex)
{
	return make_client_compose(app_hex, instance_hex, "c0ffee");
}

static struct client_id make_client_compose(const char *app_hex, const char *instance_hex,
					    const char *compose_hex)
{
	struct client_id out = {0};

	out.cert_pem = gwp_client_cert(ca_key, ca_cert, app_hex, instance_hex, compose_hex, &out.key_pem);
	return out;
}

static void make_certs(void)
{
	EVP_PKEY *rpc_key = ratls_key_generate(NULL), *wild_key = ratls_key_generate(NULL);
	const char *rpc_sans[] = {"gateway.local", "localhost", "127.0.0.1"};
	const char *wild_sans[] = {"*.app.localhost"};
	struct ratls_cert_params rp = {
	    .cn = "gateway.local", .sans = rpc_sans, .n_sans = 3, .server_auth = true};
	struct ratls_cert_params wp = {
	    .cn = "*.app.localhost", .sans = wild_sans, .n_sans = 1, .server_auth = true};
	X509 *rpc, *wild;

	ca_key = ratls_key_generate(NULL);
	ca_cert = ratls_cert_root_ca(ca_key, NULL);
	rpc = ratls_cert_build(&rp, rpc_key, ca_cert, ca_key, NULL);
	wild = ratls_cert_build(&wp, wild_key, NULL, NULL, NULL);
	if (!ca_cert || !rpc || !wild)
		BAIL_OUT("certificates");
	mkdir(strcat(strcpy((char[512]){0}, gwp.dir), "/certs"), 0700);
	gwp_write_cert("certs/root-ca.crt", ca_cert);
	gwp_write_cert("certs/gateway-rpc.crt", rpc);
	gwp_write_key("certs/gateway-rpc.key", rpc_key);
	gwp_write_cert("certs/wildcard.crt", wild);
	gwp_write_key("certs/wildcard.key", wild_key);
	X509_free(rpc);
	X509_free(wild);
	EVP_PKEY_free(rpc_key);
	EVP_PKEY_free(wild_key);
}

/* The development config of the task, verbatim apart from the keys. */
static void write_dev_config(void)
{
	char t[2048];

	snprintf(
	    t, sizeof(t),
	    "[tls]\nkey = \"certs/gateway-rpc.key\"\ncerts = \"certs/gateway-rpc.crt\"\n"
	    "[tls.mutual]\nca_certs = \"certs/root-ca.crt\"\nmandatory = false\n"
	    "[core]\nrpc_domain = \"gateway.local\"\n"
	    "[core.debug]\ninsecure_skip_attestation = true\nkey_file = \"\"\n"
	    "[core.wg]\npublic_key = \"%s\"\nprivate_key = \"%s\"\nip = \"10.0.0.1/24\"\nlisten_port = 9202\n"
	    "[core.proxy]\ncert_chain = \"certs/wildcard.crt\"\ncert_key = \"certs/wildcard.key\"\n"
	    "base_domain = \"app.localhost\"\nlisten_port = 9204\n",
	    gw_pub, gw_priv);
	gwp_write("gateway.toml", t);
}

/* Ports, state and no WireGuard link: what a test run changes. */
static void write_override_extra(const char *name, bool admin_token, bool admin, const char *extra)
{
	char t[4096];

	snprintf(t, sizeof(t),
		 "port = %u\n"
		 "[core.wg]\ninterface = \"\"\nconfig_path = \"%s/wg/wg0.conf\"\n"
		 "[core.sync]\ndata_dir = \"%s/state\"\n"
		 "[core.proxy]\nlisten_addr = \"127.0.0.1\"\nlisten_port = %u\nworkers = 2\n"
		 "[core.debug]\ninsecure_enable_debug_rpc = true\naddress = \"127.0.0.1:%u\"\n"
		 "[core.admin]\nenabled = %s\naddress = \"127.0.0.1:%u\"\nauth_token = \"%s\"\n",
		 gwp.rpc_port, gwp.dir, gwp.dir, gwp.proxy_port, gwp.debug_port, admin ? "true" : "false",
		 gwp.admin_port, admin_token ? "s3cret-token" : "");
	strncat(t, extra, sizeof(t) - strlen(t) - 1);
	gwp_write(name, t);
}

static void write_override(const char *name, bool admin_token, bool admin)
{
	write_override_extra(name, admin_token, admin, "");
}

static json_t *main_call(const struct client_id *id, const char *method, const char *body_json, char *err,
			 size_t err_size)
{
	char base[128];
	struct prpc_client c = {.base = base};
	json_t *in = json_loads(body_json, 0, NULL), *out = NULL;
	struct err e = ERR_INIT;

	snprintf(base, sizeof(base), "https://127.0.0.1:%u/prpc", gwp.rpc_port);
	c.http.insecure = true;
	if (id) {
		c.http.cert_pem = id->cert_pem;
		c.http.key_pem = id->key_pem;
	}
	err[0] = 0;
	if (prpc_client_call_json(&c, method, in, &out, &e) < 0) {
		snprintf(err, err_size, "%s", err_str(&e));
		out = NULL;
	}
	json_decref(in);
	return out;
}

static const char *client_ip(json_t *r)
{
	return json_string_value(json_object_get(json_object_get(r, "wg"), "client_ip"));
}

/* Admin request: returns the HTTP status; body in *body (may be NULL). */
static long admin_req(const char *method, const char *path, const char *header, char **body)
{
	char url[256];
	const char *hdrs[] = {header, "Content-Type: application/json", NULL};
	struct http_client_opts o = {0};
	struct http_response r = {0};
	long st;

	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", gwp.admin_port, path);
	if (http_fetch(&o, method, url, header ? hdrs : hdrs + 1, strcmp(method, "GET") ? "{}" : NULL,
		       strcmp(method, "GET") ? 2 : 0, &r, NULL) < 0)
		return -1;
	st = r.status;
	if (body)
		*body = strdup(r.body.data ? (const char *)r.body.data : "");
	http_response_free(&r);
	return st;
}

/* Admin POST with a JSON body and the test token. */
static long admin_post(const char *path, const char *body, char **out)
{
	char url[256];
	const char *hdrs[] = {"Authorization: Bearer s3cret-token", "Content-Type: application/json", NULL};
	struct http_client_opts o = {0};
	struct http_response r = {0};
	long st;

	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", gwp.admin_port, path);
	if (http_fetch(&o, "POST", url, hdrs, body, strlen(body), &r, NULL) < 0)
		return -1;
	st = r.status;
	if (out)
		*out = strdup(r.body.data ? (const char *)r.body.data : "");
	http_response_free(&r);
	return st;
}

static void test_debug_register_and_restart(void)
{
	char err[1024] = "", body[512], pub[64], priv[64], pub2[64];
	json_t *r;
	pid_t pid;
	int status = 0;

	write_override("override.toml", true, true);
	pid = gwp_start("override.toml", NULL);
	ok(gwp_wait_ready(pid, &status), "gateway starts with the dev config + override");
	char *log = gwp_read("gateway.log");
	ok(strstr(log, "core.debug.key_file is obsolete") != NULL,
	   "old key core.debug.key_file accepted with a warning");
	free(log);

	wg_keypair(pub, priv);
	snprintf(body, sizeof(body),
		 "{\"client_public_key\":\"%s\",\"app_id\":\"aa01\",\"instance_id\":\"bb01\"}", pub);
	r = gwp_debug("RegisterCvm", body, err, sizeof(err));
	ok(r != NULL, "Debug RegisterCvm accepted (%s)", err);
	is_str(client_ip(r), "10.0.0.2", "first client gets the first free host 10.0.0.2");
	json_t *srv = json_array_get(json_object_get(json_object_get(r, "wg"), "servers"), 0);
	is_str(json_string_value(json_object_get(srv, "pk")), gw_pub,
	       "reply names the gateway's WireGuard key");
	is_str(json_string_value(json_object_get(srv, "ip")), "10.0.0.1/24",
	       "gateway ip is sent with its prefix");
	is_int(json_integer_value(json_object_get(json_object_get(r, "agent"), "internal_port")), 8090,
	       "agent internal_port = proxy.agent_port");
	json_decref(r);

	char *conf = gwp_read("wg/wg0.conf");
	char want[256];
	snprintf(want, sizeof(want),
		 "[Peer]\nPublicKey = %s\nAllowedIPs = 10.0.0.2/32\nPersistentKeepalive = 25\n", pub);
	ok(strstr(conf, want) != NULL, "peer rendered in wg(8) format");
	snprintf(want, sizeof(want), "[Interface]\nPrivateKey = %s\nListenPort = 9202\n", gw_priv);
	ok(strncmp(conf, want, strlen(want)) == 0, "interface section with private key and listen port");
	free(conf);
	struct stat sb;
	char p[512];
	snprintf(p, sizeof(p), "%s/wg/wg0.conf", gwp.dir);
	ok(stat(p, &sb) == 0 && (sb.st_mode & 0777) == 0600, "wg config file is 0600");

	/* §4.5 rejections */
	snprintf(body, sizeof(body),
		 "{\"client_public_key\":\"%s\",\"app_id\":\"aa01\",\"instance_id\":\"bb02\"}", pub);
	r = gwp_debug("RegisterCvm", body, err, sizeof(err));
	ok(!r && strstr(err, "already used by instance bb01"), "key owned by another instance refused: %s",
	   err);
	json_decref(r);
	wg_keypair(pub2, priv);
	snprintf(body, sizeof(body),
		 "{\"client_public_key\":\"%s\",\"app_id\":\"aa09\",\"instance_id\":\"bb01\"}", pub2);
	r = gwp_debug("RegisterCvm", body, err, sizeof(err));
	ok(!r && strstr(err, "registered to another app"), "instance bound to another app refused: %s", err);
	json_decref(r);
	r = gwp_debug("RegisterCvm",
		      "{\"client_public_key\":\"AAAA\",\"app_id\":\"aa01\",\"instance_id\":\"bb03\"}", err,
		      sizeof(err));
	ok(!r && strstr(err, "base64 of 32 bytes"), "WG key that is not 32 bytes refused: %s", err);
	json_decref(r);
	snprintf(body, sizeof(body),
		 "{\"client_public_key\":\"%s\",\"app_id\":\"\",\"instance_id\":\"bb03\"}", pub2);
	r = gwp_debug("RegisterCvm", body, err, sizeof(err));
	ok(!r && strstr(err, "invalid app id"), "empty app id refused: %s", err);
	json_decref(r);

	/* a second instance of the same app */
	snprintf(body, sizeof(body),
		 "{\"client_public_key\":\"%s\",\"app_id\":\"aa01\",\"instance_id\":\"bb02\"}", pub2);
	r = gwp_debug("RegisterCvm", body, err, sizeof(err));
	is_str(r ? client_ip(r) : "", "10.0.0.3", "second instance gets 10.0.0.3");
	json_decref(r);

	/* restart: state survives */
	tp_stop(pid);
	pid = gwp_start("override.toml", NULL);
	ok(gwp_wait_ready(pid, &status), "gateway restarts");
	r = gwp_debug("GetProxyState", "{}", err, sizeof(err));
	is_int((long long)json_array_size(json_object_get(r, "instances")), 2,
	       "both registrations survive the restart");
	json_decref(r);
	conf = gwp_read("wg/wg0.conf");
	ok(strstr(conf, "AllowedIPs = 10.0.0.3/32") && strstr(conf, "AllowedIPs = 10.0.0.2/32"),
	   "peer file re-rendered at start");
	free(conf);
	snprintf(body, sizeof(body),
		 "{\"client_public_key\":\"%s\",\"app_id\":\"aa01\",\"instance_id\":\"bb01\"}", pub);
	r = gwp_debug("RegisterCvm", body, err, sizeof(err));
	is_str(r ? client_ip(r) : "", "10.0.0.2", "re-registration keeps the address");
	json_decref(r);

	/* admin auth */
	char *b = NULL;
	is_int(admin_req("POST", "/prpc/Admin.Status?json", NULL, NULL), 401,
	       "Admin.Status without a token: 401");
	is_int(admin_req("POST", "/prpc/Admin.Status?json", "Authorization: Bearer wrong", NULL), 401,
	       "wrong token: 401");
	is_int(admin_req("POST", "/prpc/Admin.Status?json", "Authorization: Bearer s3cret-token", &b), 200,
	       "Bearer token: 200");
	ok(b && strstr(b, "\"instance_id\":\"bb01\"") && strstr(b, "\"ip\":\"10.0.0.2\""),
	   "Status lists the CVMs");
	free(b);
	is_int(admin_req("POST", "/prpc/Admin.GetMeta?json", "X-Admin-Token: s3cret-token", &b), 200,
	       "X-Admin-Token: 200");
	ok(b && strstr(b, "\"registered\":2"), "GetMeta counts registrations: %s", b ? b : "");
	free(b);
	is_int(admin_req("GET", "/prpc/Status?token=s3cret-token", NULL, NULL), 200, "GET ?token=: 200");
	is_int(admin_req("POST", "/prpc/Status?token=s3cret-token", NULL, NULL), 401, "?token= is GET-only");
	is_int(admin_req("GET", "/?token=s3cret-token", NULL, &b), 200, "dashboard served");
	ok(b && strstr(b, "/prpc/Admin.") && strstr(b, "<script>"), "dashboard calls /prpc/Admin.*");
	free(b);
	is_int(admin_req("GET", "/", NULL, NULL), 401, "dashboard needs the token too");

	/* admin port policy override */
	is_int(admin_req("POST", "/prpc/Admin.SetInstancePortPolicy?json",
			 "Authorization: Bearer s3cret-token", NULL),
	       400, "SetInstancePortPolicy of an unknown instance fails");
	tp_stop(pid);
}

static void test_admin_needs_credentials(void)
{
	int status = 0;
	pid_t pid;
	char *log;

	write_override("noauth.toml", false, true);
	pid = gwp_start("noauth.toml", NULL);
	ok(!gwp_wait_ready(pid, &status) && WIFEXITED(status) && WEXITSTATUS(status) != 0,
	   "admin enabled without credentials: refuses to start");
	log = gwp_read("gateway.log");
	ok(strstr(log, "core.admin is enabled without credentials") != NULL, "and says why");
	free(log);
	const char *env[] = {"DSTACK_GATEWAY_ADMIN_TOKEN=from-env", NULL};
	pid = gwp_start("noauth.toml", env);
	ok(gwp_wait_ready(pid, &status), "token from DSTACK_GATEWAY_ADMIN_TOKEN is enough");
	is_int(admin_req("POST", "/prpc/Admin.GetMeta?json", "Authorization: Bearer from-env", NULL), 200,
	       "and is accepted");
	tp_stop(pid);
}

static void test_mtls_register(void)
{
	struct client_id good = make_client("11223344556677889900aabbccddeeff00112233", "abcdef0001");
	struct client_id other = make_client("11223344556677889900aabbccddeeff00112233", "abcdef0002");
	struct client_id none = make_client(NULL, NULL);
	char err[1024], body[512], pub[64], priv[64];
	int status;
	json_t *r;
	pid_t pid;

	write_override("override.toml", true, true);
	pid = gwp_start("override.toml", NULL);
	ok(gwp_wait_ready(pid, &status), "gateway up for mTLS tests");
	wg_keypair(pub, priv);
	snprintf(body, sizeof(body),
		 "{\"client_public_key\":\"%s\",\"port_policy\":{\"restrict_mode\":true,\"ports\":[{\"port\":"
		 "8080,\"pp\":false}]}}",
		 pub);
	r = main_call(&good, "RegisterCvm", body, err, sizeof(err));
	ok(r != NULL, "RegisterCvm with an AppInfo client certificate accepted (%s)", err);
	ok(r && client_ip(r) && !strncmp(client_ip(r), "10.0.0.", 7), "and gets an address (%s)",
	   r && client_ip(r) ? client_ip(r) : "");
	json_decref(r);
	char *b = NULL;
	const char *iid = "{\"instance_id\":\"abcdef0001\"}";
	admin_post("/prpc/Admin.GetInstancePortPolicy?json", iid, &b);
	ok(b && strstr(b, "\"source\":\"instance\"") && strstr(b, "\"port\":8080") &&
	       strstr(b, "\"restrict_mode\":true"),
	   "the reported port policy is stored: %s", b ? b : "");
	free(b);
	is_int(
	    admin_post(
		"/prpc/Admin.SetInstancePortPolicy?json",
		"{\"instance_id\":\"abcdef0001\",\"port_policy\":{\"ports\":[{\"port\":9000,\"pp\":true}]}}",
		NULL),
	    200, "SetInstancePortPolicy");
	admin_post("/prpc/Admin.GetInstancePortPolicy?json", iid, &b);
	ok(b && strstr(b, "\"source\":\"admin\"") && strstr(b, "\"port\":9000"), "admin override wins: %s",
	   b ? b : "");
	free(b);
	is_int(admin_post("/prpc/Admin.ClearInstancePortPolicy?json", iid, NULL), 200,
	       "ClearInstancePortPolicy");
	admin_post("/prpc/Admin.GetInstancePortPolicy?json", iid, &b);
	ok(b && strstr(b, "\"source\":\"instance\""), "back to the instance's policy");
	free(b);
	r = gwp_debug("GetProxyState", "{}", err, sizeof(err));
	bool found = false;
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(r, "instances"), i,
			   v) if (!strcmp(json_string_value(json_object_get(v, "instance_id")), "abcdef0001"))
	    found = !strcmp(json_string_value(json_object_get(v, "app_id")),
			    "11223344556677889900aabbccddeeff00112233");
	ok(found, "identity taken from the certificate's AppInfo");
	json_decref(r);

	r = main_call(NULL, "RegisterCvm", body, err, sizeof(err));
	ok(!r && strstr(err, "neither app-info nor attestation"), "no client certificate: refused (%s)", err);
	json_decref(r);
	r = main_call(&none, "RegisterCvm", body, err, sizeof(err));
	ok(!r && strstr(err, "neither app-info nor attestation"),
	   "certificate without identity: refused (%s)", err);
	json_decref(r);
	r = main_call(&other, "RegisterCvm", body, err, sizeof(err));
	ok(!r && strstr(err, "already used by instance abcdef0001"),
	   "WG key of another instance: refused (%s)", err);
	json_decref(r);
	snprintf(body, sizeof(body),
		 "{\"client_public_key\":\"%s\",\"port_policy\":{\"ports\":[{\"port\":0}]}}", pub);
	r = main_call(&good, "RegisterCvm", body, err, sizeof(err));
	ok(!r && strstr(err, "port"), "policy port 0: refused (%s)", err);
	json_decref(r);

	/* node down */
	const char *hdr = "Authorization: Bearer s3cret-token";
	char url_body[] = "";
	(void)url_body;
	{
		char urlp[128];
		snprintf(urlp, sizeof(urlp), "/prpc/Admin.SetNodeStatus?json");
		struct http_client_opts o = {0};
		struct http_response resp = {0};
		char url[256];
		const char *hdrs[] = {hdr, "Content-Type: application/json", NULL};
		const char *down = "{\"id\":0,\"status\":\"down\"}";
		snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", gwp.admin_port, urlp);
		http_fetch(&o, "POST", url, hdrs, down, strlen(down), &resp, NULL);
		is_int(resp.status, 200, "Admin.SetNodeStatus down");
		http_response_free(&resp);
		snprintf(body, sizeof(body), "{\"client_public_key\":\"%s\"}", pub);
		r = main_call(&good, "RegisterCvm", body, err, sizeof(err));
		ok(!r && strstr(err, "node is down"), "node down: refused (%s)", err);
		json_decref(r);
		const char *up = "{\"id\":0,\"status\":\"up\"}";
		memset(&resp, 0, sizeof(resp));
		http_fetch(&o, "POST", url, hdrs, up, strlen(up), &resp, NULL);
		http_response_free(&resp);
		r = main_call(&good, "RegisterCvm", body, err, sizeof(err));
		ok(r != NULL, "node up again: accepted (%s)", err);
		json_decref(r);
	}
	r = main_call(NULL, "Info", "{}", err, sizeof(err));
	is_str(r ? json_string_value(json_object_get(r, "base_domain")) : "", "app.localhost",
	       "Info: base domain");
	json_decref(r);
	r = main_call(NULL, "AcmeInfo", "{}", err, sizeof(err));
	is_str(r ? json_string_value(json_object_get(r, "account_uri")) : "x", "",
	       "AcmeInfo: no account yet");
	json_decref(r);

	/* a client certificate from another CA fails the TLS handshake */
	EVP_PKEY *real_key = ca_key;
	X509 *real_cert = ca_cert;
	ca_key = ratls_key_generate(NULL);
	ca_cert = ratls_cert_root_ca(ca_key, NULL);
	struct client_id foreign = make_client("11223344556677889900aabbccddeeff00112233", "abcdef0009");
	X509_free(ca_cert);
	EVP_PKEY_free(ca_key);
	ca_key = real_key;
	ca_cert = real_cert;
	r = main_call(&foreign, "RegisterCvm", body, err, sizeof(err));
	ok(!r && !strstr(err, "Registration"), "client certificate from a foreign CA: refused by TLS (%s)",
	   err);
	json_decref(r);
	free(foreign.cert_pem), free(foreign.key_pem);

	/* Admin.Exit stops the process cleanly */
	is_int(admin_post("/prpc/Admin.Exit?json", "{}", NULL), 200, "Admin.Exit");
	bool exited = false;
	for (int k = 0; k < 100 && !exited; k++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			exited = true;
		else
			usleep(50 * 1000);
	}
	ok(exited && WIFEXITED(status) && WEXITSTATUS(status) == 0, "and the gateway exits with status 0");
	if (!exited)
		tp_stop(pid);
	free(good.cert_pem), free(good.key_pem), free(other.cert_pem), free(other.key_pem);
	free(none.cert_pem), free(none.key_pem);
}

/* Basic auth against an htpasswd file (bcrypt), and the recycler. */
static void test_htpasswd_and_recycle(void)
{
	struct crypt_data cd;
	char line[512], extra[1024], body[256], err[512], pub[64], priv[64], hdr[256];
	const char *salt = crypt_gensalt("$2b$", 5, NULL, 0);
	const char *hash;
	int status;
	pid_t pid;
	json_t *r;
	char *b64;

	memset(&cd, 0, sizeof(cd));
	hash = crypt_rn("hunter2", salt, &cd, sizeof(cd));
	ok(hash && !strncmp(hash, "$2b$", 4), "bcrypt hash for the htpasswd file");
	snprintf(line, sizeof(line), "alice:%s\n", hash ? hash : "");
	gwp_write("htpasswd", line);
	snprintf(extra, sizeof(extra),
		 "htpasswd_file = \"%s/htpasswd\"\n[core.recycle]\ninterval = \"1s\"\ntimeout = \"2s\"\n",
		 gwp.dir);
	write_override_extra("recycle.toml", false, true, extra);
	pid = gwp_start("recycle.toml", NULL);
	ok(gwp_wait_ready(pid, &status), "gateway with htpasswd only and a 2 s recycle timeout");
	b64 = base64_encode("alice:hunter2", 13);
	snprintf(hdr, sizeof(hdr), "Authorization: Basic %s", b64);
	free(b64);
	is_int(admin_req("POST", "/prpc/Admin.GetMeta?json", hdr, NULL), 200,
	       "Basic auth with the right password");
	b64 = base64_encode("alice:hunter3", 13);
	snprintf(hdr, sizeof(hdr), "Authorization: Basic %s", b64);
	free(b64);
	is_int(admin_req("POST", "/prpc/Admin.GetMeta?json", hdr, NULL), 401, "wrong password: 401");

	wg_keypair(pub, priv);
	snprintf(body, sizeof(body),
		 "{\"client_public_key\":\"%s\",\"app_id\":\"cc01\",\"instance_id\":\"dd01\"}", pub);
	r = gwp_debug("RegisterCvm", body, err, sizeof(err));
	ok(r != NULL, "registered an instance that will never handshake (%s)", r ? "" : err);
	json_decref(r);
	size_t left = 99;
	for (int i = 0; i < 100 && left; i++) {
		usleep(100 * 1000);
		r = gwp_debug("GetProxyState", "{}", err, sizeof(err));
		left = 0;
		size_t k;
		json_t *v;
		json_array_foreach(
		    json_object_get(r, "instances"), k,
		    v) if (!strcmp(json_string_value(json_object_get(v, "instance_id")), "dd01")) left++;
		json_decref(r);
	}
	is_int((long long)left, 0, "stale instance recycled after the timeout");
	/* the peer file is rewritten right after the registry change is published */
	bool gone = false;
	for (int i = 0; i < 50 && !gone; i++) {
		char *conf = gwp_read("wg/wg0.conf");
		gone = !strstr(conf, pub);
		free(conf);
		if (!gone)
			usleep(100 * 1000);
	}
	ok(gone, "and removed from the peer file");
	tp_stop(pid);
}

/* A registration webhook: allows only instance abcdef00aa. */
static void hook_handler(struct http_request *req, void *arg)
{
	size_t len = 0;
	const uint8_t *b = http_req_body(req, &len);
	bool allow = b && memmem(b, len, "\"instance_id\":\"abcdef00aa\"", 26);

	(void)arg;
	http_respond_text(req, allow ? 200 : 403, allow ? "ok" : "denied");
}

static pid_t start_webhook(uint16_t port)
{
	pid_t pid = fork();

	if (pid == 0) {
		struct event_base *base = event_base_new();
		struct http_server *srv = http_server_new(base, NULL, NULL);
		struct http_listen_spec spec;

		http_server_route(srv, "POST", "/app-auth", false, hook_handler, NULL);
		if (http_listen_spec_set(&spec, HTTP_LISTEN_TCP, "127.0.0.1", port, NULL, 0, NULL) < 0 ||
		    http_server_listen(srv, &spec, NULL, NULL, NULL) < 0)
			_exit(1);
		event_base_dispatch(base);
		_exit(0);
	}
	for (int i = 0; i < 100 && !tp_port_open(port); i++)
		usleep(50 * 1000);
	return pid;
}

static void test_auth_webhook(void)
{
	uint16_t hook_port = tp_free_port();
	struct client_id allowed = make_client("99223344556677889900aabbccddeeff00112233", "abcdef00aa");
	struct client_id denied = make_client("99223344556677889900aabbccddeeff00112233", "abcdef00bb");
	char extra[512], body[256], err[1024], pub[64], priv[64];
	pid_t hook = start_webhook(hook_port), pid;
	int status;
	json_t *r;

	snprintf(extra, sizeof(extra),
		 "[core.auth]\nenabled = true\nurl = \"http://127.0.0.1:%u/app-auth\"\ntimeout = \"2s\"\n",
		 hook_port);
	write_override_extra("auth.toml", true, true, extra);
	pid = gwp_start("auth.toml", NULL);
	ok(gwp_wait_ready(pid, &status), "gateway with the registration webhook");
	wg_keypair(pub, priv);
	snprintf(body, sizeof(body), "{\"client_public_key\":\"%s\"}", pub);
	r = main_call(&allowed, "RegisterCvm", body, err, sizeof(err));
	ok(r != NULL, "webhook answers 200: accepted (%s)", r ? "" : err);
	json_decref(r);
	wg_keypair(pub, priv);
	snprintf(body, sizeof(body), "{\"client_public_key\":\"%s\"}", pub);
	r = main_call(&denied, "RegisterCvm", body, err, sizeof(err));
	ok(!r && strstr(err, "auth webhook refused the app (HTTP 403)"), "webhook answers 403: refused (%s)",
	   err);
	json_decref(r);
	kill(hook, SIGTERM);
	waitpid(hook, &status, 0);
	r = main_call(&allowed, "RegisterCvm", body, err, sizeof(err));
	ok(!r && strstr(err, "auth webhook"), "webhook unreachable: refused (%s)", err);
	json_decref(r);
	tp_stop(pid);
	free(allowed.cert_pem), free(allowed.key_pem), free(denied.cert_pem), free(denied.key_pem);
}

/* A guest agent's Info with a compose that allows port 8080 with PROXY protocol. */
static void agent_info_handler(struct http_request *req, void *arg)
{
	const char *body =
	    "{\"app_id\":\"ee01\",\"tcb_info\":\"{\\\"app_compose\\\":\\\"{\\\\\\\"port_policy\\\\\\\":"
	    "{\\\\\\\"restrict_mode\\\\\\\":true,\\\\\\\"ports\\\\\\\":[{\\\\\\\"port\\\\\\\":8080,"
	    "\\\\\\\"pp\\\\\\\":true}]}}\\\"}\"}";

	(void)arg;
	http_respond(req, 200, "application/json", body, strlen(body));
}

static pid_t start_agent(const char *host, uint16_t port)
{
	pid_t pid = fork();

	if (pid == 0) {
		struct event_base *base = event_base_new();
		struct http_server *srv = http_server_new(base, NULL, NULL);
		struct http_listen_spec spec;

		http_server_route(srv, NULL, "/prpc/Info", false, agent_info_handler, NULL);
		if (http_listen_spec_set(&spec, HTTP_LISTEN_TCP, host, port, NULL, 0, NULL) < 0 ||
		    http_server_listen(srv, &spec, NULL, NULL, NULL) < 0)
			_exit(1);
		event_base_dispatch(base);
		_exit(0);
	}
	usleep(300 * 1000);
	return pid;
}

/* Send a ClientHello for `sni` to the proxy (the handshake itself may fail). */
static void touch_proxy(const char *sni)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons(gwp.proxy_port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct timeval tv = {2, 0};
	SSL *ssl;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && (ssl = SSL_new(ctx))) {
		SSL_set_fd(ssl, fd);
		SSL_set_tlsext_host_name(ssl, sni);
		SSL_connect(ssl);
		SSL_free(ssl);
	}
	close(fd);
	SSL_CTX_free(ctx);
}

/* A Debug registration has no policy: the first connection queues a fetch
 * from the CVM's agent (here on 127.0.0.2, the address plan being 127/8). */
static void test_policy_fetch(void)
{
	uint16_t agent_port = tp_free_port();
	char body[256], err[512], pub[64], priv[64], *b = NULL;
	pid_t agent = start_agent("127.0.0.2", agent_port), pid;
	int status;
	json_t *r;

	char t[2048];

	snprintf(t, sizeof(t),
		 "port = %u\n"
		 "[core.wg]\ninterface = \"\"\nconfig_path = \"%s/wg/fetch.conf\"\nip = \"127.0.0.1/8\"\n"
		 "reserved_net = [\"127.0.0.1/32\"]\nclient_ip_range = \"127.0.0.0/24\"\n"
		 "[core.sync]\ndata_dir = \"%s/state-fetch\"\n"
		 "[core.proxy]\nlisten_addr = \"127.0.0.1\"\nlisten_port = %u\nworkers = 2\nagent_port = %u\n"
		 "[core.debug]\ninsecure_enable_debug_rpc = true\naddress = \"127.0.0.1:%u\"\n"
		 "[core.admin]\nenabled = true\naddress = \"127.0.0.1:%u\"\nauth_token = \"s3cret-token\"\n",
		 gwp.rpc_port, gwp.dir, gwp.dir, gwp.proxy_port, agent_port, gwp.debug_port, gwp.admin_port);
	gwp_write("fetch.toml", t);
	pid = gwp_start("fetch.toml", NULL);
	ok(gwp_wait_ready(pid, &status), "gateway with a loopback address plan");
	wg_keypair(pub, priv);
	snprintf(body, sizeof(body),
		 "{\"client_public_key\":\"%s\",\"app_id\":\"ee01\",\"instance_id\":\"ff01\"}", pub);
	r = gwp_debug("RegisterCvm", body, err, sizeof(err));
	is_str(r ? client_ip(r) : "", "127.0.0.2", "Debug registration at 127.0.0.2");
	json_decref(r);
	admin_post("/prpc/Admin.GetInstancePortPolicy?json", "{\"instance_id\":\"ff01\"}", &b);
	ok(b && strstr(b, "\"source\":\"none\""), "no policy yet (fail-closed): %s", b ? b : "");
	free(b);
	b = NULL;
	bool fetched = false;
	for (int i = 0; i < 50 && !fetched; i++) {
		touch_proxy("ff01-8080.app.localhost");
		usleep(200 * 1000);
		free(b);
		b = NULL;
		admin_post("/prpc/Admin.GetInstancePortPolicy?json", "{\"instance_id\":\"ff01\"}", &b);
		fetched = b && strstr(b, "\"source\":\"instance\"");
	}
	ok(fetched && strstr(b, "\"port\":8080") && strstr(b, "\"pp\":true") &&
	       strstr(b, "\"restrict_mode\":true"),
	   "a connection attempt fetched the policy from the agent: %s", b ? b : "");
	free(b);
	tp_stop(pid);
	kill(agent, SIGTERM);
	waitpid(agent, &status, 0);
}

/* A gateway config of its own for the re-registration tests: state in
 * state-rereg, the given client_ip_range. */
static void write_rereg_config(const char *range)
{
	char t[2048];

	snprintf(t, sizeof(t),
		 "port = %u\n"
		 "[core.wg]\ninterface = \"\"\nconfig_path = \"%s/wg/rereg.conf\"\nclient_ip_range = \"%s\"\n"
		 "[core.sync]\ndata_dir = \"%s/state-rereg\"\n"
		 "[core.proxy]\nlisten_addr = \"127.0.0.1\"\nlisten_port = %u\nworkers = 1\n"
		 "[core.debug]\ninsecure_enable_debug_rpc = true\naddress = \"127.0.0.1:%u\"\n"
		 "[core.admin]\nenabled = true\naddress = \"127.0.0.1:%u\"\nauth_token = \"s3cret-token\"\n",
		 gwp.rpc_port, gwp.dir, range, gwp.dir, gwp.proxy_port, gwp.debug_port, gwp.admin_port);
	gwp_write("rereg.toml", t);
}

/* GetProxyState entry of an instance: *reg_time and ip ("" when absent). */
static void proxy_state_of(const char *iid, long long *reg_time, char ip[16])
{
	char err[256];
	json_t *r = gwp_debug("GetProxyState", "{}", err, sizeof(err)), *v;
	size_t i;

	*reg_time = -1;
	ip[0] = 0;
	json_array_foreach(json_object_get(r, "instances"), i, v)
	{
		if (strcmp(json_string_value(json_object_get(v, "instance_id")), iid))
			continue;
		*reg_time = json_integer_value(json_object_get(v, "reg_time"));
		snprintf(ip, 16, "%s", json_string_value(json_object_get(v, "ip")));
	}
	json_decref(r);
}

static char *debug_register(const char *app, const char *iid, const char *pub, char *err, size_t n)
{
	char body[512];
	json_t *r;
	char *ip;

	snprintf(body, sizeof(body),
		 "{\"client_public_key\":\"%s\",\"app_id\":\"%s\",\"instance_id\":\"%s\"}", pub, app, iid);
	r = gwp_debug("RegisterCvm", body, err, n);
	ip = strdup(r && client_ip(r) ? client_ip(r) : "");
	json_decref(r);
	return ip;
}

/* §4.6: a known instance re-registering. */
static void test_reregistration(void)
{
	const char *app = "11223344556677889900aabbccddeeff0011e6e6";
	struct client_id v1 = make_client_compose(app, "e6e60003", "c0ffee");
	struct client_id v2 = make_client_compose(app, "e6e60003", "beef01");
	char err[1024], body[512], pub[64], pub2[64], pub3[64], priv[64], ip[16], *got, *b = NULL;
	const char *pol = "{\"instance_id\":\"e6e60003\"}";
	long long t1, t2;
	int status;
	pid_t pid;
	json_t *r;

	write_rereg_config("10.0.0.0/25");
	pid = gwp_start("rereg.toml", NULL);
	ok(gwp_wait_ready(pid, &status), "gateway for the re-registration rules");
	wg_keypair(pub, priv);
	wg_keypair(pub2, priv);
	wg_keypair(pub3, priv);
	got = debug_register("e6", "e6e60001", pub, err, sizeof(err));
	is_str(got, "10.0.0.2", "instance e6e60001 at 10.0.0.2");
	free(got);
	proxy_state_of("e6e60001", &t1, ip);
	sleep(2); /* reg_time has a resolution of one second */
	got = debug_register("e6", "e6e60001", pub, err, sizeof(err));
	proxy_state_of("e6e60001", &t2, ip);
	ok(!strcmp(got, "10.0.0.2") && t2 == t1, "same WireGuard key again: address and reg_time kept (%lld)",
	   t2);
	free(got);
	got = debug_register("e6", "e6e60001", pub2, err, sizeof(err));
	proxy_state_of("e6e60001", &t2, ip);
	ok(!strcmp(got, "10.0.0.2") && t2 > t1,
	   "a new WireGuard key bumps reg_time (%lld -> %lld), keeps the address", t1, t2);
	free(got);
	char *conf = gwp_read("wg/rereg.conf");
	ok(strstr(conf, pub2) && !strstr(conf, pub), "the peer file carries the new key only");
	free(conf);

	/* compose hash: a new one drops the reported policy, the same one keeps it */
	snprintf(body, sizeof(body),
		 "{\"client_public_key\":\"%s\",\"port_policy\":{\"restrict_mode\":true,\"ports\":[{\"port\":"
		 "8080}]}}",
		 pub3);
	r = main_call(&v1, "RegisterCvm", body, err, sizeof(err));
	ok(r != NULL, "mTLS registration with compose c0ffee and a port policy (%s)", err);
	json_decref(r);
	snprintf(body, sizeof(body), "{\"client_public_key\":\"%s\"}", pub3);
	r = main_call(&v1, "RegisterCvm", body, err, sizeof(err));
	json_decref(r);
	admin_post("/prpc/Admin.GetInstancePortPolicy?json", pol, &b);
	ok(b && strstr(b, "\"source\":\"instance\"") && strstr(b, "\"port\":8080"),
	   "same compose hash, no policy in the request: the stored policy stays (%s)", b ? b : "");
	free(b);
	admin_post("/prpc/Admin.SetInstancePortPolicy?json",
		   "{\"instance_id\":\"e6e60003\",\"port_policy\":{\"ports\":[{\"port\":9000}]}}", NULL);
	r = main_call(&v2, "RegisterCvm", body, err, sizeof(err));
	ok(r != NULL, "re-registration with a new compose hash (%s)", err);
	json_decref(r);
	admin_post("/prpc/Admin.GetInstancePortPolicy?json", pol, &b);
	ok(b && strstr(b, "\"source\":\"admin\"") && strstr(b, "\"instance_reported\":null") &&
	       strstr(b, "\"port\":9000"),
	   "new compose hash: the reported policy is dropped, the admin override survives (%s)", b ? b : "");
	free(b);
	admin_post("/prpc/Admin.ClearInstancePortPolicy?json", pol, NULL);
	admin_post("/prpc/Admin.GetInstancePortPolicy?json", pol, &b);
	ok(b && strstr(b, "\"source\":\"none\""), "with the override cleared no policy is known (%s)",
	   b ? b : "");
	free(b);
	tp_stop(pid);

	/* the address is kept only while it lies in this node's client_ip_range */
	write_rereg_config("10.0.0.64/26");
	pid = gwp_start("rereg.toml", NULL);
	ok(gwp_wait_ready(pid, &status), "restart with client_ip_range 10.0.0.64/26");
	got = debug_register("e6", "e6e60002", pub, err, sizeof(err));
	is_str(got, "10.0.0.65", "a new instance gets the first host of the new range");
	free(got);
	got = debug_register("e6", "e6e60001", pub2, err, sizeof(err));
	is_str(got, "10.0.0.66", "re-registration outside the range: a new address in it");
	free(got);
	conf = gwp_read("wg/rereg.conf");
	snprintf(body, sizeof(body), "PublicKey = %s\nAllowedIPs = 10.0.0.66/32", pub2);
	ok(strstr(conf, body) != NULL, "and the peer file follows");
	free(conf);
	tp_stop(pid);
	write_rereg_config("10.0.0.0/24");
	pid = gwp_start("rereg.toml", NULL);
	ok(gwp_wait_ready(pid, &status), "restart with client_ip_range 10.0.0.0/24");
	got = debug_register("e6", "e6e60002", pub, err, sizeof(err));
	is_str(got, "10.0.0.65", "re-registration inside the range keeps the address");
	free(got);
	tp_stop(pid);
	free(v1.cert_pem), free(v1.key_pem), free(v2.cert_pem), free(v2.key_pem);
}

int main(int argc, char **argv)
{
	gwp_init(argc > 1 ? argv[1] : NULL, "/tmp/gateway-test-XXXXXX");
	/* no guest agent here: rpc_domain must fall back to the configured files */
	setenv("DSTACK_AGENT_ADDRESS", "/nonexistent/dstack-agent.sock", 1);
	wg_keypair(gw_pub, gw_priv);
	make_certs();
	write_dev_config();

	test_debug_register_and_restart();
	test_admin_needs_credentials();
	test_mtls_register();
	test_reregistration();
	test_auth_webhook();
	test_policy_fetch();
	test_htpasswd_and_recycle();

	char *log = gwp_read("gateway.log");
	ok(!strstr(log, "runtime error") && !strstr(log, "AddressSanitizer") && !strstr(log, "LeakSanitizer"),
	   "no sanitizer report in the gateway's log");
	free(log);

	if (!getenv("KEEP_TEST_DIR")) {
		char cmd[600];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", gwp.dir);
		if (system(cmd) != 0)
			diag("cleanup of %s failed", gwp.dir);
	}
	X509_free(ca_cert);
	EVP_PKEY_free(ca_key);
	return tap_done();
}
