/*
 * gateway_reg_test.c — guest-side gateway registration against the real
 * dstack-gateway (non-root: no WireGuard link, peer file only): mTLS with
 * an app-CA client certificate carrying AppInfo, trusting only that root;
 * the reply's client IP, the rendered dstack-wg0.conf, the gateway's
 * Debug GetProxyState listing our WireGuard key, and a second registration
 * reusing the stored key and keeping the address; the gateway app id check
 * (right id, "any", wrong id, none named) and an untrusted gateway.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "attest/appinfo.h"
#include "core/buf.h"
#include "core/fileio.h"
#include "core/hex.h"
#include "core/tap.h"
#include "crypto/ecx.h"
#include "codec/base64.h"
#include "gateway_reg.h"
#include "prpc/client.h"
#include "ratls/cert.h"

#define BAIL_OUT(...)                                                                                        \
	do {                                                                                                 \
		printf("Bail out! ");                                                                        \
		printf(__VA_ARGS__);                                                                         \
		printf("\n");                                                                                \
		exit(1);                                                                                     \
	} while (0)

static const char *gw_bin;
static char dir[256];
static uint16_t rpc_port, debug_port, proxy_port, admin_port;

static uint16_t free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	uint16_t port;

	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || getsockname(fd, (struct sockaddr *)&a, &l) < 0)
		port = 0;
	else
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static bool port_open(uint16_t port)
{
	struct sockaddr_in a = {
	    .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0), rc;

	rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
	close(fd);
	return rc == 0;
}

static void write_text(const char *name, const char *text)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	if (file_write_atomic(p, text, strlen(text), 0600, NULL) < 0)
		BAIL_OUT("cannot write %s", p);
}

static char *read_text(const char *name)
{
	char p[512];
	uint8_t *data = NULL;
	size_t len = 0;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	if (file_read_all(p, 1 << 20, &data, &len, NULL) < 0)
		return strdup("");
	return (char *)data;
}

static char *pem_cert(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p, *out;
	long n;

	PEM_write_bio_X509(b, x);
	n = BIO_get_mem_data(b, &p);
	out = strndup(p, (size_t)n);
	BIO_free(b);
	return out;
}

static char *pem_key(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p, *out;
	long n;

	PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
	n = BIO_get_mem_data(b, &p);
	out = strndup(p, (size_t)n);
	BIO_free(b);
	return out;
}

/* A WireGuard key pair (X25519, base64). */
static pid_t start_gw(const char *override, const char *const *env)
{
	char log[512], cfgp[512];
	pid_t pid;

	snprintf(log, sizeof(log), "%s/gateway.log", dir);
	snprintf(cfgp, sizeof(cfgp), "%s/%s", dir, override);
	pid = fork();
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		for (const char *const *p = env; p && *p; p++)
			putenv((char *)*p);
		if (chdir(dir) < 0)
			_exit(126);
		execl(gw_bin, gw_bin, "-c", cfgp, (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* Wait for the debug port; false if the process exited (*status set). */
static bool wait_ready(pid_t pid, int *status)
{
	for (int i = 0; i < 400; i++) {
		if (port_open(debug_port) && port_open(rpc_port))
			return true;
		if (waitpid(pid, status, WNOHANG) == pid)
			return false;
		usleep(50 * 1000);
	}
	return false;
}

static void stop_gw(pid_t pid)
{
	int status;

	kill(pid, SIGTERM);
	for (int i = 0; i < 100; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return;
		usleep(50 * 1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
}

static json_t *debug_call(const char *method, const char *body_json, char *err, size_t err_size)
{
	char base[128];
	struct prpc_client c = {.base = base};
	json_t *in = json_loads(body_json, 0, NULL), *out = NULL;
	struct err e = ERR_INIT;

	snprintf(base, sizeof(base), "http://127.0.0.1:%u/prpc", debug_port);
	if (prpc_client_call_json(&c, method, in, &out, &e) < 0) {
		snprintf(err, err_size, "%s", err_str(&e));
		out = NULL;
	}
	json_decref(in);
	return out;
}

static char *make_client(EVP_PKEY *ca_key, X509 *ca_cert, char **key_pem)
{
	struct app_info ai = {0};
	struct buf enc = BUF_INIT;
	EVP_PKEY *k = ratls_key_generate(NULL);
	struct ratls_cert_params p = {.cn = "dstack-app", .client_auth = true};

	hex_decode_alloc("aa223344556677889900aabbccddeeff00112233", 40, &ai.app_id.p, &ai.app_id.len, NULL);
	hex_decode_alloc("beef0001", 8, &ai.instance_id.p, &ai.instance_id.len, NULL);
	hex_decode_alloc("c0ffee", 6, &ai.compose_hash.p, &ai.compose_hash.len, NULL);
	ai.mr_system.p = calloc(1, 32);
	ai.mr_system.len = 32;
	ai.mr_aggregated.p = calloc(1, 32);
	ai.mr_aggregated.len = 32;
	app_info_encode(&ai, &enc);
	p.app_info = enc.data;
	p.app_info_len = enc.len;
	X509 *x = ratls_cert_build(&p, k, ca_cert, ca_key, NULL);
	if (!x)
		BAIL_OUT("client certificate");
	char *c = pem_cert(x);
	*key_pem = pem_key(k);
	X509_free(x);
	EVP_PKEY_free(k);
	app_info_free(&ai);
	buf_free(&enc);
	return c;
}

int main(int argc, char **argv)
{
	char tmpl[] = "/tmp/guest-gwreg-XXXXXX", t[4096], err[1024], work[512];
	uint8_t gsk[32], gpk[32];
	int status;

	if (argc < 2)
		BAIL_OUT("usage: gateway_reg_test <dstack-gateway>");
	if (!(gw_bin = realpath(argv[1], NULL)))
		BAIL_OUT("%s not found", argv[1]);
	if (!mkdtemp(tmpl))
		BAIL_OUT("mkdtemp");
	snprintf(dir, sizeof(dir), "%s", tmpl);
	setenv("DSTACK_AGENT_ADDRESS", "/nonexistent/dstack-agent.sock", 1);
	rpc_port = free_port();
	debug_port = free_port();
	proxy_port = free_port();
	admin_port = free_port();

	/* The app/KMS root, the gateway's RPC certificate under it, a proxy cert. */
	EVP_PKEY *ca_key = ratls_key_generate(NULL), *rpc_key = ratls_key_generate(NULL);
	EVP_PKEY *wild_key = ratls_key_generate(NULL);
	X509 *ca = ratls_cert_root_ca(ca_key, NULL);
	const char *rpc_sans[] = {"localhost", "127.0.0.1"};
	const char *wild_sans[] = {"*.app.localhost"};
	static const uint8_t gw_app_id[20] = {0x9a, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99,
					      0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x01, 0x02, 0x03};
	struct ratls_cert_params rp = {.cn = "localhost",
				       .sans = rpc_sans,
				       .n_sans = 2,
				       .server_auth = true,
				       .app_id = gw_app_id,
				       .app_id_len = 20};
	struct ratls_cert_params wp = {
	    .cn = "*.app.localhost", .sans = wild_sans, .n_sans = 1, .server_auth = true};
	X509 *rpc = ratls_cert_build(&rp, rpc_key, ca, ca_key, NULL);
	X509 *wild = ratls_cert_build(&wp, wild_key, NULL, NULL, NULL);
	if (!ca || !rpc || !wild)
		BAIL_OUT("certificates");
	char *ca_pem = pem_cert(ca), *s;
	write_text("root-ca.crt", ca_pem);
	write_text("rpc.crt", s = pem_cert(rpc));
	free(s);
	write_text("rpc.key", s = pem_key(rpc_key));
	free(s);
	write_text("wild.crt", s = pem_cert(wild));
	free(s);
	write_text("wild.key", s = pem_key(wild_key));
	free(s);
	x25519_keypair(gsk, gpk, NULL);
	char *gpriv = base64_encode(gsk, 32), *gpub = base64_encode(gpk, 32);
	snprintf(t, sizeof(t),
		 "port = %u\n"
		 "[tls]\nkey = \"rpc.key\"\ncerts = \"rpc.crt\"\n"
		 "[tls.mutual]\nca_certs = \"root-ca.crt\"\nmandatory = false\n"
		 "[core]\nrpc_domain = \"localhost\"\n"
		 "[core.wg]\npublic_key = \"%s\"\nprivate_key = \"%s\"\nip = \"10.0.0.1/24\"\n"
		 "listen_port = 9202\nendpoint = \"127.0.0.1:9202\"\ninterface = \"\"\nconfig_path = "
		 "\"%s/wg0.conf\"\n"
		 "[core.sync]\ndata_dir = \"%s/state\"\n"
		 "[core.proxy]\ncert_chain = \"wild.crt\"\ncert_key = \"wild.key\"\nbase_domain = "
		 "\"app.localhost\"\n"
		 "listen_addr = \"127.0.0.1\"\nlisten_port = %u\nworkers = 1\n"
		 "[core.debug]\ninsecure_enable_debug_rpc = true\ninsecure_skip_attestation = true\nkey_file "
		 "= \"\"\n"
		 "address = \"127.0.0.1:%u\"\n"
		 "[core.admin]\nenabled = false\naddress = \"127.0.0.1:%u\"\n",
		 rpc_port, gpub, gpriv, dir, dir, proxy_port, debug_port, admin_port);
	write_text("gateway.toml", t);
	pid_t pid = start_gw("gateway.toml", NULL);
	if (!wait_ready(pid, &status)) {
		s = read_text("gateway.log");
		diag("%s", s);
		BAIL_OUT("gateway did not start");
	}

	char *key_pem = NULL, *cert_pem = make_client(ca_key, ca, &key_pem);
	char *priv = NULL, *pub = NULL;
	struct err e = ERR_INIT;
	snprintf(work, sizeof(work), "%s/work", dir);
	mkdir(work, 0700);
	ok(gw_wg_key_load_or_create(work, &priv, &pub, &e) == 0, "WireGuard key created (%s)", err_str(&e));

	char u1[128], u2[128];
	snprintf(u1, sizeof(u1), "https://127.0.0.1:%u", free_port()); /* nothing listens: skipped */
	snprintf(u2, sizeof(u2), "https://localhost:%u/", rpc_port);
	json_t *urls = json_pack("[s,s]", u1, u2);
	json_t *policy = json_loads("{\"restrict_mode\":false,\"ports\":[]}", 0, NULL);
	json_t *reply = NULL;
	ok(guest_register_cvm(urls, cert_pem, key_pem, ca_pem, "any", pub, policy, &reply, &e) == 0,
	   "RegisterCvm over mTLS accepted after the dead URL (%s)", err_str(&e));
	const char *ip = json_string_value(json_object_get(json_object_get(reply, "wg"), "client_ip"));
	ok(ip && !strncmp(ip, "10.0.0.", 7) && strcmp(ip, "10.0.0.1"), "client IP from the range: %s",
	   ip ? ip : "");
	char *ip1 = strdup(ip ? ip : "");
	ok(gw_wg_conf_write(work, priv, reply, &e) == 0, "wg conf written (%s)", err_str(&e));
	char want[1024];
	snprintf(
	    want, sizeof(want),
	    "[Interface]\nPrivateKey = %s\nListenPort = 9182\nAddress = %s/32\n\n[Peer]\nPublicKey = %s\n"
	    "AllowedIPs = 10.0.0.1/32\nEndpoint = 127.0.0.1:9202\nPersistentKeepalive = 25\n",
	    priv, ip1, gpub);
	s = read_text("work/dstack-wg0.conf");
	is_str(s, want, "dstack-wg0.conf contents");
	free(s);
	s = read_text("work/dstack-wg0.setconf");
	ok(strstr(s, "PrivateKey = ") && strstr(s, "[Peer]") && !strstr(s, "Address"),
	   "dstack-wg0.setconf: wg(8) form without Address");
	free(s);
	json_decref(reply);
	reply = NULL;

	json_t *st = debug_call("GetProxyState", "{}", err, sizeof(err));
	bool found = false;
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(st, "instances"), i, v)
	{
		const char *pk = json_string_value(json_object_get(v, "public_key"));
		if (pk && !strcmp(pk, pub))
			found = true;
	}
	ok(found, "GetProxyState lists the instance with our WireGuard key (%s)", err);
	json_decref(st);

	/* Second boot: same stored key, same address. */
	char *priv2 = NULL, *pub2 = NULL;
	ok(gw_wg_key_load_or_create(work, &priv2, &pub2, &e) == 0 && !strcmp(pub2, pub), "key reused");
	ok(guest_register_cvm(urls, cert_pem, key_pem, ca_pem, "0x9A112233445566778899AABBCCDDEEFF00010203",
			      pub2, NULL, &reply, &e) == 0,
	   "second registration, gateway app id checked (%s)", err_str(&e));
	ip = json_string_value(json_object_get(json_object_get(reply, "wg"), "client_ip"));
	is_str(ip ? ip : "", ip1, "address kept");
	json_decref(reply);
	reply = NULL;

	/* The gateway app id must be the one the KMS names. */
	ok(guest_register_cvm(urls, cert_pem, key_pem, ca_pem, "1111111111111111111111111111111111111111",
			      pub, NULL, &reply, &e) < 0 &&
	       !reply && strstr(err_str(&e), "gateway app id mismatch: certificate has 9a1122"),
	   "gateway with another app id refused (%s)", err_str(&e));
	ok(guest_register_cvm(urls, cert_pem, key_pem, ca_pem, "", pub, NULL, &reply, &e) < 0 && !reply,
	   "no gateway app id named: refused (%s)", err_str(&e));

	/* A gateway whose certificate is not under the trusted root is refused. */
	EVP_PKEY *other_key = ratls_key_generate(NULL);
	X509 *other = ratls_cert_root_ca(other_key, NULL);
	char *other_pem = pem_cert(other);
	ok(guest_register_cvm(urls, cert_pem, key_pem, other_pem, "any", pub, NULL, &reply, &e) < 0 &&
	       !reply && strstr(err_str(&e), "not issued under the KMS root"),
	   "untrusted gateway certificate refused (%s)", err_str(&e));

	stop_gw(pid);
	free(other_pem);
	X509_free(other);
	EVP_PKEY_free(other_key);
	json_decref(urls);
	json_decref(policy);
	free(priv);
	free(pub);
	free(priv2);
	free(pub2);
	free(ip1);
	free(cert_pem);
	free(key_pem);
	free(ca_pem);
	free(gpriv);
	free(gpub);
	X509_free(ca);
	X509_free(rpc);
	X509_free(wild);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(rpc_key);
	EVP_PKEY_free(wild_key);
	return tap_done();
}
