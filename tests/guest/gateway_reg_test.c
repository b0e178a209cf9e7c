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

#include "../support/gateway_proc.h"

int main(int argc, char **argv)
{
	char t[4096], err[1024], work[512];
	uint8_t gsk[32], gpk[32];
	int status;

	gwp_init(argc > 1 ? argv[1] : NULL, "/tmp/guest-gwreg-XXXXXX");
	setenv("DSTACK_AGENT_ADDRESS", "/nonexistent/dstack-agent.sock", 1);

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
	char *ca_pem = pem_write_cert(ca, NULL), *s;
	gwp_write("root-ca.crt", ca_pem);
	gwp_write_cert("rpc.crt", rpc);
	gwp_write_key("rpc.key", rpc_key);
	gwp_write_cert("wild.crt", wild);
	gwp_write_key("wild.key", wild_key);
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
		 gwp.rpc_port, gpub, gpriv, gwp.dir, gwp.dir, gwp.proxy_port, gwp.debug_port, gwp.admin_port);
	gwp_write("gateway.toml", t);
	pid_t pid = gwp_start("gateway.toml", NULL);
	if (!gwp_wait_ready(pid, &status)) {
		s = gwp_read("gateway.log");
		diag("%s", s);
		BAIL_OUT("gateway did not start");
	}

	char *key_pem = NULL,
	     *cert_pem = gwp_client_cert(ca_key, ca, "aa223344556677889900aabbccddeeff00112233", "beef0001",
					 "c0ffee", &key_pem);
	char *priv = NULL, *pub = NULL;
	struct err e = ERR_INIT;
	snprintf(work, sizeof(work), "%s/work", gwp.dir);
	mkdir(work, 0700);
	ok(gw_wg_key_load_or_create(work, &priv, &pub, &e) == 0, "WireGuard key created (%s)", err_str(&e));

	char u1[128], u2[128];
	snprintf(u1, sizeof(u1), "https://127.0.0.1:%u", tp_free_port()); /* nothing listens: skipped */
	snprintf(u2, sizeof(u2), "https://localhost:%u/", gwp.rpc_port);
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
	s = gwp_read("work/dstack-wg0.conf");
	is_str(s, want, "dstack-wg0.conf contents");
	free(s);
	s = gwp_read("work/dstack-wg0.setconf");
	ok(strstr(s, "PrivateKey = ") && strstr(s, "[Peer]") && !strstr(s, "Address"),
	   "dstack-wg0.setconf: wg(8) form without Address");
	free(s);
	json_decref(reply);
	reply = NULL;

	json_t *st = gwp_debug("GetProxyState", "{}", err, sizeof(err));
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
	char *other_pem = pem_write_cert(other, NULL);
	ok(guest_register_cvm(urls, cert_pem, key_pem, other_pem, "any", pub, NULL, &reply, &e) < 0 &&
	       !reply && strstr(err_str(&e), "not issued under the KMS root"),
	   "untrusted gateway certificate refused (%s)", err_str(&e));

	tp_stop(pid);
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
