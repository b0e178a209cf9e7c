/*
 * gateway_proc.h — a real dstack-gateway process on loopback, for the tests
 * that drive one (tests/gateway/gateway_test.c, tests/guest/gateway_reg_test.c):
 * a scratch directory and four free ports (RPC, admin, debug, proxy), files
 * written into that directory, PEM text of certificates and keys, RA-TLS
 * client certificates carrying an AppInfo, starting the gateway with a
 * config override (its log in <dir>/gateway.log), waiting for its RPC and
 * debug ports, stopping it, and calls to its Debug RPC. Header-only test
 * code, one gateway fixture per test binary (struct gwp gwp); processes,
 * ports and stopping come from tests/kms/testproc.h (tp_*).
 */
#ifndef DSTACK_TESTS_SUPPORT_GATEWAY_PROC_H
#define DSTACK_TESTS_SUPPORT_GATEWAY_PROC_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "codec/pem.h"
#include "attest/appinfo.h"
#include "core/buf.h"
#include "core/fileio.h"
#include "core/hex.h"
#include "prpc/client.h"
#include "ratls/cert.h"

#include "../kms/testproc.h" /* free ports, spawning, stopping */

#define BAIL_OUT(...)                                                                                        \
	do {                                                                                                 \
		printf("Bail out! ");                                                                        \
		printf(__VA_ARGS__);                                                                         \
		printf("\n");                                                                                \
		exit(1);                                                                                     \
	} while (0)

static struct gwp {
	const char *bin; /* dstack-gateway, absolute */
	char dir[256];   /* scratch directory: configs, certificates, state, gateway.log */
	uint16_t rpc_port, admin_port, debug_port, proxy_port;
} gwp;

/* The gateway binary (bin_arg, made absolute), a directory from tmpl ("/tmp/x-XXXXXX"), the ports. */
static inline void gwp_init(const char *bin_arg, const char *tmpl)
{
	if (!bin_arg || !(gwp.bin = realpath(bin_arg, NULL)))
		BAIL_OUT("dstack-gateway %s not found", bin_arg ? bin_arg : "(not given)");
	snprintf(gwp.dir, sizeof(gwp.dir), "%s", tmpl);
	if (!mkdtemp(gwp.dir))
		BAIL_OUT("mkdtemp %s", tmpl);
	gwp.rpc_port = tp_free_port();
	gwp.admin_port = tp_free_port();
	gwp.debug_port = tp_free_port();
	gwp.proxy_port = tp_free_port();
}

/* <dir>/name := text (0600); bails out when it cannot. */
static inline void gwp_write(const char *name, const char *text)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/%s", gwp.dir, name);
	if (file_write_atomic(p, text, strlen(text), 0600, NULL) < 0)
		BAIL_OUT("cannot write %s", p);
}

/* The text of <dir>/name, "" when missing (malloc'd). */
static inline char *gwp_read(const char *name)
{
	char p[512];
	uint8_t *data = NULL;
	size_t len = 0;

	snprintf(p, sizeof(p), "%s/%s", gwp.dir, name);
	if (file_read_all(p, 1 << 20, &data, &len, NULL) < 0)
		return strdup("");
	return (char *)data;
}

/* <dir>/name := the certificate's, or the key's, PEM text. */
static inline void gwp_write_cert(const char *name, X509 *x)
{
	char *pem = pem_write_cert(x, NULL);

	gwp_write(name, pem);
	free(pem);
}

static inline void gwp_write_key(const char *name, EVP_PKEY *k)
{
	char *pem = pem_write_private_key(k, NULL);

	gwp_write(name, pem);
	free(pem);
}

/*
 * A client certificate (PEM, *key_pem its key) signed by ca, for CN
 * dstack-app; with app_hex an AppInfo extension carrying the app id,
 * instance id and compose hash (hex) and zero measurements, without it no
 * identity at all.
 */
static inline char *gwp_client_cert(EVP_PKEY *ca_key, X509 *ca_cert, const char *app_hex,
				    const char *instance_hex, const char *compose_hex, char **key_pem)
{
	struct app_info ai = {0};
	struct buf enc = BUF_INIT;
	EVP_PKEY *k = ratls_key_generate(NULL);
	struct ratls_cert_params p = {.cn = "dstack-app", .client_auth = true};
	X509 *x;
	char *cert;

	if (app_hex) {
		hex_decode_alloc(app_hex, strlen(app_hex), &ai.app_id.p, &ai.app_id.len, NULL);
		hex_decode_alloc(instance_hex, strlen(instance_hex), &ai.instance_id.p, &ai.instance_id.len,
				 NULL);
		hex_decode_alloc(compose_hex, strlen(compose_hex), &ai.compose_hash.p, &ai.compose_hash.len,
				 NULL);
		ai.mr_system.p = calloc(1, 32);
		ai.mr_system.len = 32;
		ai.mr_aggregated.p = calloc(1, 32);
		ai.mr_aggregated.len = 32;
		app_info_encode(&ai, &enc);
		p.app_info = enc.data;
		p.app_info_len = enc.len;
	}
	x = ratls_cert_build(&p, k, ca_cert, ca_key, NULL);
	if (!x)
		BAIL_OUT("client certificate");
	cert = pem_write_cert(x, NULL);
	*key_pem = pem_write_private_key(k, NULL);
	X509_free(x);
	EVP_PKEY_free(k);
	app_info_free(&ai);
	buf_free(&enc);
	return cert;
}

/* Start the gateway in dir with -c <dir>/override and env entries "K=V" added (NULL-terminated);
 * stop it with tp_stop. */
static inline pid_t gwp_start(const char *override, const char *const *env)
{
	char log[512], cfgp[512];
	char *argv[] = {(char *)gwp.bin, "-c", cfgp, NULL};

	snprintf(log, sizeof(log), "%s/gateway.log", gwp.dir);
	snprintf(cfgp, sizeof(cfgp), "%s/%s", gwp.dir, override);
	return tp_spawn(argv, env, gwp.dir, log);
}
/* Wait (20 s at most) for the debug and RPC ports; false if the process exited (*status set). */
static inline bool gwp_wait_ready(pid_t pid, int *status)
{
	for (int i = 0; i < 400; i++) {
		if (tp_port_open(gwp.debug_port) && tp_port_open(gwp.rpc_port))
			return true;
		if (waitpid(pid, status, WNOHANG) == pid)
			return false;
		usleep(50 * 1000);
	}
	return false;
}

/* A Debug RPC call (JSON); NULL with the error in err when it fails. */
static inline json_t *gwp_debug(const char *method, const char *body_json, char *err, size_t err_size)
{
	char base[128];
	struct prpc_client c = {.base = base};
	json_t *in = json_loads(body_json, 0, NULL), *out = NULL;
	struct err e = ERR_INIT;

	snprintf(base, sizeof(base), "http://127.0.0.1:%u/prpc", gwp.debug_port);
	if (prpc_client_call_json(&c, method, in, &out, &e) < 0) {
		snprintf(err, err_size, "%s", err_str(&e));
		out = NULL;
	}
	json_decref(in);
	return out;
}

#endif
