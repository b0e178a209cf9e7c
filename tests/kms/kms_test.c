/*
 * kms_test.c — dstack-kms end to end with real processes on loopback.
 *
 * The test process runs one helper HTTP server (its own event-loop thread)
 * that plays three parts: the PCCS of the simulated TDX (lib/simtee
 * collateral), the guest agent of the KMS CVMs (/Attest and /Info answer
 * with simulated attestations), and a misbehaving auth webhook (/hook).
 * Processes: auth-simple, KMS 1 (auto-bootstrapped, self-authorizing,
 * attested rpc.crt, webhook = auth-simple), KMS 2 (onboarded from KMS 1
 * through its onboard page), KMS 3 (webhook = the misbehaving hook).
 *
 * Checked: a guest-side RA-TLS client (GetTempCaCert → RA cert signed by
 * the temp CA over a simulated attestation → mTLS GetAppKey) gets keys
 * equal to lib/crypto's derivation from KMS 1's root files; the k256
 * signature recovers to GetMeta.k256_pubkey; auth-simple denials (app and
 * KMS self-authorization); missing / invalid attestation; 19-byte app id;
 * malformed CSR and a valid SignCert; garbage on the TLS port; admin token
 * and path checks; metrics; onboarding gives the same root CA public key,
 * k256 key and env-encryption keys; a replayed bootstrap is refused; the
 * webhook failing closed (closed connection, HTTP 500, non-JSON, missing
 * field, slower than the timeout); a KMS killed mid-bootstrap restarts cleanly;
 * an interactive Bootstrap attestation commits to the two public keys.
 *
 *     kms_test DSTACK_KMS AUTH_SIMPLE
 */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <event2/event.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "sim_attestation.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/hex.h"
#include "core/tap.h"
#include "crypto/appkeys.h"
#include "crypto/hash.h"
#include "crypto/k256.h"
#include "crypto/keyfile.h"
#include "http/client.h"
#include "http/server.h"
#include "prpc/client.h"
#include "ratls/cert.h"
#include "ratls/csr.h"
#include "ratls/ext.h"
#include "ratls/verify.h"
#include "simtee/serve.h"
#include "testproc.h"

#define VMC "{\"os_image_hash\":\"0102030405060708091011121314151617181920212223242526272829303132\"}"
#define OS_IMAGE "0x0102030405060708091011121314151617181920212223242526272829303132"
#define COMPOSE "0xc0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0"

static char tmp[] = "/tmp/kms-test-XXXXXX";
static char pki[PATH_MAX], helper_url[64];
static uint16_t helper_port, auth_port;
static char kms_mr[80];
static const char *kms_bin, *auth_bin;

/* ------------------------------------------------------------ helper server */

enum hook_mode { HOOK_ALLOW, HOOK_CLOSE, HOOK_500, HOOK_NONJSON, HOOK_MISSING, HOOK_SLOW };
static _Atomic int hook_mode = HOOK_ALLOW;
static pthread_mutex_t agent_lock = PTHREAD_MUTEX_INITIALIZER;

static void agent_attest(struct http_request *req, void *arg)
{
	size_t len = 0;
	const uint8_t *body = http_req_body(req, &len);
	_cleanup_json_ json_t *j = json_loadb((const char *)body, len, 0, NULL);
	const char *rdhex = json_string_value(json_object_get(j, "report_data"));
	uint8_t rd[64] = {0};
	struct buf att = BUF_INIT, out = BUF_INIT;
	struct err e = ERR_INIT;
	char state[PATH_MAX];

	(void)arg;
	snprintf(state, sizeof(state), "%s/agent-td.json", tmp);
	if (!rdhex || hex_decode_exact(rdhex, rd, 64, &e) < 0) {
		http_respond_text(req, 400, "{\"error\":\"bad report_data\"}");
		return;
	}
	pthread_mutex_lock(&agent_lock);
	if (sim_attestation(pki, state, rd, VMC, &att, &e) < 0) {
		pthread_mutex_unlock(&agent_lock);
		http_respond_text(req, 400, "{\"error\":\"sim\"}");
		return;
	}
	pthread_mutex_unlock(&agent_lock);
	buf_puts(&out, "{\"attestation\":\"");
	buf_put_hex(&out, att.data, att.len);
	buf_puts(&out, "\"}");
	http_respond(req, 200, "application/json", out.data, out.len);
	buf_free(&att);
	buf_free(&out);
}

static void agent_info(struct http_request *req, void *arg)
{
	static const char info[] =
	    "{\"app_id\":\"5bb4ff9a3837357f19dc176407a5709c62eb6c56\",\"vm_config\":"
	    "\"{\\\"os_image_hash\\\":\\\"0102030405060708091011121314151617181920212223"
	    "242526272829303132\\\"}\"}";
	(void)arg;
	http_respond(req, 200, "application/json", info, sizeof(info) - 1);
}

static void slow_work(void *arg)
{
	(void)arg;
	tp_sleep_ms(3000);
}

static void slow_done(void *arg)
{
	http_respond_text(arg, 200, "{\"isAllowed\":true,\"gatewayAppId\":\"slow\",\"reason\":\"\"}");
}

static void hook(struct http_request *req, void *arg)
{
	static const char allow[] = "{\"isAllowed\":true,\"gatewayAppId\":\"gw-hook\",\"reason\":\"ok\"}";

	(void)arg;
	switch (atomic_load(&hook_mode)) {
	case HOOK_ALLOW:
		http_respond(req, 200, "application/json", allow, sizeof(allow) - 1);
		break;
	case HOOK_CLOSE:
		http_resp_header(req, "Connection", "close");
		http_respond(req, 200, "application/json", "{", 1); /* truncated JSON, then close */
		break;
	case HOOK_500:
		http_respond(req, 500, "application/json", allow, sizeof(allow) - 1);
		break;
	case HOOK_NONJSON:
		http_respond_text(req, 200, "<html>allowed</html>");
		break;
	case HOOK_MISSING:
		http_respond_text(req, 200, "{\"isAllowed\":true,\"reason\":\"\"}");
		break;
	case HOOK_SLOW:
		if (http_server_submit(http_req_server(req), slow_work, slow_done, req, NULL) < 0)
			http_respond_text(req, 503, "");
		break;
	}
}

static struct event_base *helper_base;

static void *helper_thread(void *arg)
{
	(void)arg;
	event_base_dispatch(helper_base);
	return NULL;
}

static int start_helper(void)
{
	struct err e = ERR_INIT;
	struct http_server_opts o = {.workers = 2};
	struct http_server *srv;
	struct http_listen_spec spec;
	pthread_t th;

	helper_base = event_base_new();
	srv = http_server_new(helper_base, &o, &e);
	if (!srv || simtee_pccs_attach(srv, pki, &e) < 0) {
		diag("helper: %s", err_str(&e));
		return -1;
	}
	http_server_route(srv, "POST", "/Attest", false, agent_attest, NULL);
	http_server_route(srv, "POST", "/Info", false, agent_info, NULL);
	http_server_route(srv, NULL, "/hook", true, hook, NULL);
	http_listen_spec_set(&spec, HTTP_LISTEN_TCP, "127.0.0.1", 0, NULL, 0, &e);
	if (http_server_listen(srv, &spec, NULL, &helper_port, &e) < 0) {
		diag("helper listen: %s", err_str(&e));
		return -1;
	}
	snprintf(helper_url, sizeof(helper_url), "http://127.0.0.1:%u", helper_port);
	return pthread_create(&th, NULL, helper_thread, NULL);
}

/* ------------------------------------------------------------ processes */

struct kms_proc {
	pid_t pid;
	uint16_t rpc, onboard, admin;
	char dir[PATH_MAX], certs[PATH_MAX], url[64];
};

static void write_text(const char *path, const char *text)
{
	file_write_atomic(path, text, strlen(text), 0644, NULL);
}

static void kms_config(struct kms_proc *k, const char *name, const char *extra)
{
	char path[PATH_MAX + 16];
	struct buf b = BUF_INIT;

	snprintf(k->dir, sizeof(k->dir), "%s/%s", tmp, name);
	snprintf(k->certs, sizeof(k->certs), "%s/certs", k->dir);
	mkdir(k->dir, 0700);
	k->rpc = tp_free_port();
	k->onboard = tp_free_port();
	k->admin = tp_free_port();
	snprintf(k->url, sizeof(k->url), "https://localhost:%u/prpc", k->rpc);
	buf_printf(&b,
		   "[rpc]\naddress = \"127.0.0.1\"\nport = %u\n"
		   "[rpc.tls]\nkey = \"certs/rpc.key\"\ncerts = \"certs/rpc.crt\"\n"
		   "[rpc.tls.mutual]\nca_certs = \"certs/tmp-ca.crt\"\n"
		   "[core]\ncert_dir = \"certs\"\nsite_name = \"test-site\"\n"
		   "[core.attestation]\ninsecure_allow_external_trust_anchors = true\n"
		   "[core.attestation.urls]\npccs = \"%s\"\n"
		   "[core.attestation.root_ca]\ntdx = \"%s/root_ca.pem\"\n"
		   "[core.image]\nverify = false\ncache_dir = \"cache\"\n"
		   "[core.admin]\nenabled = true\naddress = \"127.0.0.1\"\nport = %u\n"
		   "[core.onboard]\naddress = \"127.0.0.1\"\nport = %u\n"
		   "%s",
		   k->rpc, helper_url, pki, k->admin, k->onboard, extra);
	snprintf(path, sizeof(path), "%s/kms.toml", k->dir);
	write_text(path, (const char *)b.data);
	buf_free(&b);
}

static void kms_start(struct kms_proc *k, const char *crash_env)
{
	char log[PATH_MAX + 16], agent[96], etc[PATH_MAX + 16];
	const char *env[] = {agent, etc, "DSTACK_KMS_ADMIN_TOKEN=admin-secret", crash_env, NULL};
	char *args[] = {(char *)kms_bin, NULL};

	snprintf(log, sizeof(log), "%s/kms.log", k->dir);
	snprintf(agent, sizeof(agent), "DSTACK_AGENT_ADDRESS=%s", helper_url);
	snprintf(etc, sizeof(etc), "DSTACK_KMS_ETC_DIR=%s/etc", tmp);
	k->pid = tp_spawn(args, env, k->dir, log);
}

static void show_log(const char *dir)
{
	char cmd[PATH_MAX + 32];

	snprintf(cmd, sizeof(cmd), "sed 's/^/# /' %s/kms.log | tail -20 >&2", dir);
	if (system(cmd) != 0)
		diag("no log");
}

/* ------------------------------------------------------------ clients */

static struct prpc_client client(const char *base)
{
	struct prpc_client c = {.base = base, .http = {.insecure = true, .timeout_ms = 30000}};
	return c;
}

/* Call; returns 0 with *out or -1 with the server's error in e. */
static int call(const struct prpc_client *c, const char *m, const char *in, json_t **out, struct err *e)
{
	_cleanup_json_ json_t *j = in ? json_loads(in, 0, NULL) : NULL;
	json_t *dummy = NULL;
	int rc = prpc_client_call_json(c, m, j, out ? out : &dummy, e);

	if (!out)
		json_decref(dummy);
	return rc;
}

static int err_has(const struct err *e, const char *s)
{
	if (strstr(err_str(e), s))
		return 1;
	diag("error was: %s", err_str(e));
	return 0;
}

struct guest {
	char *ca_pem, *cert_pem, *key_pem;
};

static void guest_free(struct guest *g)
{
	free(g->ca_pem);
	free(g->cert_pem);
	free(g->key_pem);
}

static char *pem_of(X509 *x, EVP_PKEY *k)
{
	_cleanup_(BIO_free_allp) BIO *b = BIO_new(BIO_s_mem());
	char *p;
	long n;

	if (x)
		PEM_write_bio_X509(b, x);
	else
		PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
	n = BIO_get_mem_data(b, &p);
	return strndup(p, (size_t)n);
}

/* The guest flow: temp CA from the KMS, then an RA-TLS cert for a fresh key.
 * bind_other: the attestation binds a different key (must be refused). */
static int guest_setup(const char *url, bool bind_other, struct guest *g, struct err *e)
{
	struct prpc_client c = client(url);
	_cleanup_json_ json_t *t = NULL;
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *key = ratls_key_generate(e), *other = ratls_key_generate(e);
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *tk = NULL;
	_cleanup_(X509_freep) X509 *tc = NULL, *cert = NULL;
	struct buf att = BUF_INIT, stripped = BUF_INIT;
	struct attestation a;
	uint8_t rd[64];
	char state[PATH_MAX];
	const char *tcp, *tkp;

	memset(g, 0, sizeof(*g));
	if (call(&c, "GetTempCaCert", NULL, &t, e) < 0)
		return -1;
	tcp = json_string_value(json_object_get(t, "temp_ca_cert"));
	tkp = json_string_value(json_object_get(t, "temp_ca_key"));
	g->ca_pem = strdup(json_string_value(json_object_get(t, "ca_cert")));
	{
		_cleanup_(BIO_free_allp) BIO *b1 = BIO_new_mem_buf(tcp, -1);
		_cleanup_(BIO_free_allp) BIO *b2 = BIO_new_mem_buf(tkp, -1);
		tc = PEM_read_bio_X509(b1, NULL, NULL, NULL);
		tk = PEM_read_bio_PrivateKey(b2, NULL, NULL, NULL);
	}
	snprintf(state, sizeof(state), "%s/guest-td.json", tmp);
	if (!tc || !tk || ratls_key_report_data(bind_other ? other : key, rd, e) < 0 ||
	    sim_attestation(pki, state, rd, VMC, &att, e) < 0) {
		guest_free(g);
		return -1;
	}
	attestation_init(&a);
	attestation_decode(att.data, att.len, &a, e);
	attestation_strip_for_cert(&a, e);
	attestation_encode(&a, &stripped, e);
	attestation_free(&a);
	cert = ratls_cert_ra_client(key, stripped.data, stripped.len, tc, tk, e);
	buf_free(&att);
	buf_free(&stripped);
	if (!cert) {
		guest_free(g);
		return -1;
	}
	g->cert_pem = pem_of(cert, NULL);
	g->key_pem = pem_of(NULL, key);
	return 0;
}

static struct prpc_client mtls(const char *url, const struct guest *g)
{
	struct prpc_client c = {
	    .base = url, .http = {.ca_pem = g->ca_pem, .cert_pem = g->cert_pem, .key_pem = g->key_pem}};
	return c;
}

static void write_auth_config(const char *compose, const char *mr)
{
	char path[PATH_MAX + 32], text[2048];

	snprintf(path, sizeof(path), "%s/auth-config.json", tmp);
	snprintf(text, sizeof(text),
		 "{\"gatewayAppId\":\"gw-simple\",\"osImages\":[\"%s\"],"
		 "\"kms\":{\"mrAggregated\":[\"%s\"],\"allowAnyDevice\":true},"
		 "\"apps\":{\"0x5bb4ff9a3837357f19dc176407a5709c62eb6c56\":{\"composeHashes\":[\"%s\"],"
		 "\"allowAnyDevice\":true}}}",
		 OS_IMAGE, mr, compose);
	tp_sleep_ms(20);
	write_text(path, text);
}

/* mr_aggregated of the simulated KMS CVM (runtime replay). */
static int compute_kms_mr(struct err *e)
{
	uint8_t zero[64] = {0};
	struct buf att = BUF_INIT;
	char state[PATH_MAX], root[PATH_MAX + 16], cpath[PATH_MAX + 32];
	_cleanup_free_ uint8_t *coll = NULL;
	size_t clen = 0;
	struct ratls_verifier *v = NULL;
	struct ratls_verified r;
	struct ratls_boot_info bi;
	int rc = -1;

	snprintf(state, sizeof(state), "%s/mr-td.json", tmp);
	snprintf(root, sizeof(root), "%s/root_ca.pem", pki);
	snprintf(cpath, sizeof(cpath), "%s/collateral.json", pki);
	if (sim_attestation(pki, state, zero, VMC, &att, e) < 0 ||
	    file_read_all(cpath, 1 << 20, &coll, &clen, e) < 0)
		return -1;
	struct ratls_verifier_opts o = {.root_ca_path = root,
					.insecure_allow_external_trust_anchors = true,
					.collateral_json = (char *)coll,
					.collateral_json_len = clen};
	if (ratls_verifier_new(&v, &o, e) == 0 && ratls_verify_bytes(v, att.data, att.len, 0, &r, e) == 0) {
		if (ratls_boot_info(&r, NULL, false, &bi, e) == 0) {
			strcpy(kms_mr, "0x");
			hex_encode(bi.app.mr_aggregated.p, 32, kms_mr + 2);
			ratls_boot_info_free(&bi);
			rc = 0;
		}
		ratls_verified_free(&r);
	}
	if (v)
		ratls_verifier_free(v);
	buf_free(&att);
	return rc;
}

static char *spki_hex_of_pem(const char *pem)
{
	_cleanup_(BIO_free_allp) BIO *b = BIO_new_mem_buf(pem, -1);
	_cleanup_(X509_freep) X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	unsigned char *der = NULL;
	int n;
	char *h;

	if (!x)
		return strdup("");
	n = i2d_PUBKEY(X509_get0_pubkey(x), &der);
	h = hex_encode_alloc(der, (size_t)n);
	OPENSSL_free(der);
	return h;
}

/* ------------------------------------------------------------ tests */

static void test_guest_keys(struct kms_proc *k1)
{
	struct guest g;
	struct err e = ERR_INIT;
	_cleanup_json_ json_t *key = NULL, *meta = NULL;
	uint8_t root[32], rootk[32], inst[20], pub33[33], rec[33], meta_pub[33];
	struct kms_app_keys want;
	char p[PATH_MAX + 32];
	struct prpc_client plain = client(k1->url);

	if (!ok(guest_setup(k1->url, false, &g, &e) == 0, "guest: GetTempCaCert + RA-TLS client cert")) {
		diag("%s", err_str(&e));
		return;
	}
	struct prpc_client c = mtls(k1->url, &g);
	if (!ok(call(&c, "GetAppKey",
		     "{\"api_version\":1,\"vm_config\":"
		     "\"{\\\"os_image_hash\\\":"
		     "\\\"0102030405060708091011121314151617181920212223242526272829303132\\\"}\"}",
		     &key, &e) == 0,
		"guest: mTLS GetAppKey (CA = returned ca_cert, host name checked)"))
		diag("%s", err_str(&e));
	snprintf(p, sizeof(p), "%s/root-ca.key", k1->certs);
	key32_load_file(p, root, &e);
	snprintf(p, sizeof(p), "%s/root-k256.key", k1->certs);
	key32_load_file(p, rootk, &e);
	memset(inst, 0x1d, sizeof(inst));
	kms_derive_app_keys(root, rootk, (const uint8_t *)SIM_APP_ID, inst, 20, &want, &e);
	{
		char h[200];
		hex_encode(want.disk_crypt_key, 32, h);
		is_str(json_string_value(json_object_get(key, "disk_crypt_key")), h,
		       "disk key = lib/crypto derivation");
		hex_encode(want.env_crypt_key, 32, h);
		is_str(json_string_value(json_object_get(key, "env_crypt_key")), h,
		       "env key = lib/crypto derivation");
		hex_encode(want.k256_key, 32, h);
		is_str(json_string_value(json_object_get(key, "k256_key")), h,
		       "k256 key = lib/crypto derivation");
		hex_encode(want.k256_signature, 65, h);
		is_str(json_string_value(json_object_get(key, "k256_signature")), h,
		       "k256 signature matches");
	}
	is_str(json_string_value(json_object_get(key, "gateway_app_id")), "gw-simple",
	       "gateway_app_id from auth-simple");
	is_str(json_string_value(json_object_get(key, "os_image_hash")), &OS_IMAGE[2],
	       "os_image_hash echoed");
	ok(call(&plain, "GetMeta", NULL, &meta, &e) == 0, "GetMeta");
	hex_decode_exact(json_string_value(json_object_get(meta, "k256_pubkey")), meta_pub, 33, &e);
	{
		uint8_t sig[65], k256[32];
		hex_decode_exact(json_string_value(json_object_get(key, "k256_key")), k256, 32, &e);
		hex_decode_exact(json_string_value(json_object_get(key, "k256_signature")), sig, 65, &e);
		k256_pubkey(k256, true, pub33, &e);
		struct span msg = SPAN(pub33, 33);
		ok(kms_sign_recover(KMS_SIGN_PREFIX_ISSUED, (const uint8_t *)SIM_APP_ID, 20, &msg, 1, sig,
				    rec, &e) == 0 &&
		       !memcmp(rec, meta_pub, 33),
		   "k256 signature recovers to GetMeta.k256_pubkey");
	}
	ok(json_is_false(json_object_get(meta, "is_dev")), "GetMeta: is_dev false (webhook)");
	is_str(json_string_value(json_object_get(meta, "gateway_app_id")), "gw-simple",
	       "GetMeta gateway_app_id");
	ok(json_is_null(json_object_get(meta, "bootstrap_info")), "auto bootstrap: bootstrap_info null");

	/* auth-simple denials. */
	write_auth_config("0xdead", kms_mr);
	ok(call(&c, "GetAppKey", "{\"vm_config\":\"\"}", NULL, &e) < 0 &&
	       err_has(&e, "App not allowed: Boot denied: compose hash not allowed"),
	   "compose hash removed → App not allowed: Boot denied: compose hash not allowed");
	write_auth_config(COMPOSE, "0x00");
	ok(call(&plain, "GetAppEnvEncryptPubKey", "{\"app_id\":\"5bb4ff9a3837357f19dc176407a5709c62eb6c56\"}",
		NULL, &e) < 0 &&
	       err_has(&e, "KMS self authorization failed: KMS is not allowed: aggregated MR not allowed"),
	   "KMS MR removed → self authorization fails");
	write_auth_config(COMPOSE, kms_mr);
	ok(call(&c, "GetAppKey", "{}", NULL, &e) == 0, "policy restored → allowed again (no caching)");
	ok(call(&c, "GetAppKey", "{\"api_version\":2}", NULL, &e) < 0 &&
	       err_has(&e, "Unsupported API version"),
	   "api_version 2 refused");
	guest_free(&g);

	/* No client certificate; attestation bound to another key. */
	struct prpc_client nocert = {.base = k1->url, .http = {.insecure = true}};
	ok(call(&nocert, "GetAppKey", "{}", NULL, &e) < 0 && err_has(&e, "No attestation provided"),
	   "no client cert → No attestation provided");
	if (guest_setup(k1->url, true, &g, &e) == 0) {
		struct prpc_client bad = mtls(k1->url, &g);
		ok(call(&bad, "GetAppKey", "{}", NULL, &e) < 0 && err_has(&e, "invalid quote"),
		   "attestation bound to another key → invalid quote");
		guest_free(&g);
	}
}

static void test_hostile(struct kms_proc *k1)
{
	struct prpc_client c = client(k1->url);
	struct err e = ERR_INIT;
	_cleanup_json_ json_t *pk = NULL;

	ok(call(&c, "GetAppEnvEncryptPubKey", "{\"app_id\":\"5bb4ff9a3837357f19dc176407a5709c62eb6c\"}", NULL,
		&e) < 0 &&
	       err_has(&e, "app_id must be 20 bytes"),
	   "19-byte app id → app_id must be 20 bytes");
	ok(call(&c, "GetAppEnvEncryptPubKey", "{\"app_id\":\"5bb4ff9a3837357f19dc176407a5709c62eb6c56\"}",
		&pk, &e) == 0,
	   "GetAppEnvEncryptPubKey");
	{
		uint8_t app[20], pub[32], sig[65], rec[33], meta_pub[33];
		_cleanup_json_ json_t *meta = NULL;
		hex_decode_exact("5bb4ff9a3837357f19dc176407a5709c62eb6c56", app, 20, &e);
		hex_decode_exact(json_string_value(json_object_get(pk, "public_key")), pub, 32, &e);
		hex_decode_exact(json_string_value(json_object_get(pk, "signature_v1")), sig, 65, &e);
		call(&c, "GetMeta", NULL, &meta, &e);
		hex_decode_exact(json_string_value(json_object_get(meta, "k256_pubkey")), meta_pub, 33, &e);
		ok(kms_env_pubkey_recover(app, pub, true,
					  (uint64_t)json_integer_value(json_object_get(pk, "timestamp")), sig,
					  rec, &e) == 0 &&
		       !memcmp(rec, meta_pub, 33),
		   "env pubkey signature_v1 recovers to the KMS k256 key");
	}
	ok(call(&c, "SignCert", "{\"api_version\":2,\"csr\":\"00ff00\",\"signature\":\"00\"}", NULL, &e) <
		   0 &&
	       err_has(&e, "invalid CSR"),
	   "malformed CSR → invalid CSR");
	/* A valid SignCert. */
	{
		_cleanup_(EVP_PKEY_freep) EVP_PKEY *key = ratls_key_generate(&e);
		struct ratls_csr csr = {0};
		struct buf att = BUF_INIT, enc = BUF_INIT, sig = BUF_INIT, body = BUF_INIT;
		uint8_t rd[64];
		char state[PATH_MAX];
		unsigned char *spki = NULL;
		int n = i2d_PUBKEY(key, &spki);
		char *sans[] = {"app.example", "10.0.0.1"};
		_cleanup_json_ json_t *chain = NULL;

		snprintf(state, sizeof(state), "%s/csr-td.json", tmp);
		ratls_key_report_data(key, rd, &e);
		sim_attestation(pki, state, rd, VMC, &att, &e);
		csr.confirm = RATLS_CSR_CONFIRM;
		csr.pubkey = spki;
		csr.pubkey_len = (size_t)n;
		csr.config.subject = "app.example";
		csr.config.sans = sans;
		csr.config.n_sans = 2;
		csr.config.usage_server_auth = true;
		csr.config.ext_app_info = true;
		csr.attestation = att.data;
		csr.attestation_len = att.len;
		ratls_csr_encode(&csr, &enc);
		ratls_csr_sign(key, enc.data, enc.len, &sig, &e);
		buf_puts(&body, "{\"api_version\":2,\"csr\":\"");
		buf_put_hex(&body, enc.data, enc.len);
		buf_puts(&body, "\",\"signature\":\"");
		buf_put_hex(&body, sig.data, sig.len);
		buf_puts(&body, "\"}");
		if (!ok(call(&c, "SignCert", (const char *)body.data, &chain, &e) == 0,
			"SignCert with a valid CSR"))
			diag("%s", err_str(&e));
		json_t *arr = json_object_get(chain, "certificate_chain");
		is_int((long)json_array_size(arr), 3, "SignCert: chain of leaf, App CA, root CA");
		if (json_array_size(arr) == 3) {
			_cleanup_(BIO_free_allp) BIO *b0 =
			    BIO_new_mem_buf(json_string_value(json_array_get(arr, 0)), -1);
			_cleanup_(BIO_free_allp) BIO *b1 =
			    BIO_new_mem_buf(json_string_value(json_array_get(arr, 1)), -1);
			_cleanup_(X509_freep) X509 *leaf = PEM_read_bio_X509(b0, NULL, NULL, NULL);
			_cleanup_(X509_freep) X509 *appca = PEM_read_bio_X509(b1, NULL, NULL, NULL);
			ok(leaf && appca && X509_verify(leaf, X509_get0_pubkey(appca)) == 1,
			   "leaf signed by App CA");
			ok(leaf && X509_check_ip_asc(leaf, "10.0.0.1", 0) == 1, "IP SAN from CSR");
		}
		/* Signature by another key. */
		{
			_cleanup_(EVP_PKEY_freep) EVP_PKEY *k2 = ratls_key_generate(&e);
			buf_reset(&sig);
			ratls_csr_sign(k2, enc.data, enc.len, &sig, &e);
			buf_reset(&body);
			buf_puts(&body, "{\"api_version\":2,\"csr\":\"");
			buf_put_hex(&body, enc.data, enc.len);
			buf_puts(&body, "\",\"signature\":\"");
			buf_put_hex(&body, sig.data, sig.len);
			buf_puts(&body, "\"}");
			ok(call(&c, "SignCert", (const char *)body.data, NULL, &e) < 0 &&
			       err_has(&e, "signature"),
			   "CSR signed by another key refused");
		}
		OPENSSL_free(spki);
		buf_free(&att);
		buf_free(&enc);
		buf_free(&sig);
		buf_free(&body);
	}
	/* Garbage on the TLS port. */
	{
		struct sockaddr_in a = {.sin_family = AF_INET,
					.sin_port = htons(k1->rpc),
					.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
			static const char junk[] = "GET / HTTP/1.1\r\n\r\n\x16\x03\x01\xff\xff garbage";
			if (write(fd, junk, sizeof(junk)) < 0)
				diag("write failed");
			tp_sleep_ms(100);
		}
		close(fd);
	}
	ok(call(&c, "GetMeta", NULL, NULL, &e) == 0, "server alive after garbage on the TLS port");
	/* Metrics and health. */
	{
		char url[96];
		struct http_client_opts o = {.insecure = true};
		struct http_response r = {0};
		snprintf(url, sizeof(url), "https://localhost:%u/metrics", k1->rpc);
		ok(http_fetch(&o, "GET", url, NULL, NULL, 0, &r, &e) == 0 && r.status == 200 &&
		       strstr((char *)r.body.data, "dstack_kms_attestation_requests_total") &&
		       strstr((char *)r.body.data, "dstack_kms_attestation_failures_total"),
		   "GET /metrics");
		http_response_free(&r);
	}
	/* Admin. */
	{
		char url[96];
		snprintf(url, sizeof(url), "http://127.0.0.1:%u/prpc", k1->admin);
		struct prpc_client a = {.base = url};
		ok(call(&a, "ClearImageCache", "{\"image_hash\":\"all\"}", NULL, &e) < 0 &&
		       err_has(&e, "Unauthorized"),
		   "admin without token refused");
		static const char *const tok[] = {"Authorization: Bearer admin-secret", NULL};
		struct http_response r = {0};
		char u[128];
		snprintf(u, sizeof(u), "%s/ClearImageCache?json", url);
		ok(http_fetch(NULL, "POST", u, tok, "{\"image_hash\":\"../../etc\"}", 26, &r, &e) == 0 &&
		       r.status == 400 && strstr((char *)r.body.data, "invalid cache key"),
		   "path traversal refused");
		http_response_free(&r);
		char dirp[PATH_MAX + 64];
		snprintf(dirp, sizeof(dirp), "%s/cache/images/abcd", k1->dir);
		mkdir_p(dirp, 0700, &e);
		ok(http_fetch(NULL, "POST", u, tok, "{\"image_hash\":\"abcd\"}", 21, &r, &e) == 0 &&
		       r.status == 200 && !file_exists(dirp),
		   "ClearImageCache with token removes the entry");
		http_response_free(&r);
	}
}

static void test_onboard(struct kms_proc *k1)
{
	struct kms_proc k2;
	struct err e = ERR_INIT;
	char ob[96], body[256];
	_cleanup_json_ json_t *m1 = NULL, *m2 = NULL, *p1 = NULL, *p2 = NULL, *r = NULL;

	kms_config(&k2, "kms2", "[core.auth_api]\ntype = \"webhook\"\n");
	{
		char path[PATH_MAX + 16], extra[256];
		snprintf(extra, sizeof(extra), "[core.auth_api.webhook]\nurl = \"http://127.0.0.1:%u\"\n",
			 auth_port);
		snprintf(path, sizeof(path), "%s/kms.toml", k2.dir);
		FILE *f = fopen(path, "a");
		fputs(extra, f);
		fclose(f);
	}
	kms_start(&k2, NULL);
	if (!ok(tp_wait_port(k2.pid, k2.onboard, 20), "KMS 2 serves its onboard page")) {
		show_log(k2.dir);
		return;
	}
	snprintf(ob, sizeof(ob), "http://127.0.0.1:%u/prpc", k2.onboard);
	struct prpc_client o = {.base = ob, .http = {.timeout_ms = 60000}};
	{
		char u[128];
		struct http_response hr = {0};
		snprintf(u, sizeof(u), "http://127.0.0.1:%u/", k2.onboard);
		ok(http_fetch(NULL, "GET", u, NULL, NULL, 0, &hr, &e) == 0 && hr.status == 200 &&
		       strstr((char *)hr.body.data, "Onboard.") != NULL,
		   "GET / serves the onboard page");
		http_response_free(&hr);
	}
	ok(call(&o, "Bootstrap", "{\"domain\":\"-bad-\"}", NULL, &e) < 0 && err_has(&e, "invalid domain"),
	   "invalid domain refused");
	snprintf(body, sizeof(body), "{\"source_url\":\"https://localhost:%u/\",\"domain\":\"localhost\"}",
		 k1->rpc);
	if (!ok(call(&o, "Onboard", body, &r, &e) == 0, "Onboard from KMS 1")) {
		diag("%s", err_str(&e));
		show_log(k2.dir);
		show_log(k1->dir);
	}
	ok(call(&o, "Bootstrap", "{\"domain\":\"localhost\"}", NULL, &e) < 0 &&
	       err_has(&e, "Already bootstrapped"),
	   "replayed bootstrap refused");
	ok(call(&o, "Onboard", body, NULL, &e) < 0 && err_has(&e, "Already bootstrapped"),
	   "second onboard refused");
	{
		_cleanup_json_ json_t *ai = NULL;
		ok(call(&o, "GetAttestationInfo", NULL, &ai, &e) == 0 &&
		       !strcmp(json_string_value(json_object_get(ai, "mr_aggregated")), kms_mr + 2) &&
		       !strcmp(json_string_value(json_object_get(ai, "site_name")), "test-site"),
		   "GetAttestationInfo: mr_aggregated and site_name");
	}
	ok(call(&o, "Finish", NULL, NULL, &e) == 0, "Finish");
	if (!ok(tp_wait_port(k2.pid, k2.rpc, 20), "KMS 2 serves RPC after Finish")) {
		show_log(k2.dir);
		return;
	}
	struct prpc_client c1 = client(k1->url), c2 = client(k2.url);
	call(&c1, "GetMeta", NULL, &m1, &e);
	call(&c2, "GetMeta", NULL, &m2, &e);
	{
		_cleanup_free_ char *s1 = spki_hex_of_pem(json_string_value(json_object_get(m1, "ca_cert")));
		_cleanup_free_ char *s2 = spki_hex_of_pem(json_string_value(json_object_get(m2, "ca_cert")));
		ok(*s1 && !strcmp(s1, s2), "same root CA public key");
	}
	is_str(json_string_value(json_object_get(m2, "k256_pubkey")),
	       json_string_value(json_object_get(m1, "k256_pubkey")), "same k256 public key");
	is_str(json_string_value(json_object_get(r, "k256_pubkey")),
	       json_string_value(json_object_get(m1, "k256_pubkey")), "OnboardResponse.k256_pubkey");
	call(&c1, "GetAppEnvEncryptPubKey", "{\"app_id\":\"0x1111111111111111111111111111111111111111\"}",
	     &p1, &e);
	call(&c2, "GetAppEnvEncryptPubKey", "{\"app_id\":\"0x1111111111111111111111111111111111111111\"}",
	     &p2, &e);
	ok(json_string_value(json_object_get(p1, "public_key")) &&
	       !strcmp(json_string_value(json_object_get(p1, "public_key")),
		       json_string_value(json_object_get(p2, "public_key"))),
	   "same env-encryption public key for an app");
	tp_stop(k2.pid);
}

static void test_webhook_failures(struct kms_proc *k1)
{
	struct kms_proc k3;
	struct err e = ERR_INIT;
	char extra[512], cmd[PATH_MAX * 2 + 32];
	struct guest g;
	static const struct {
		int mode;
		const char *name;
	} cases[] = {{HOOK_CLOSE, "truncated reply"},
		     {HOOK_500, "HTTP 500"},
		     {HOOK_NONJSON, "non-JSON"},
		     {HOOK_MISSING, "missing gatewayAppId"},
		     {HOOK_SLOW, "slower than the timeout"}};

	snprintf(extra, sizeof(extra),
		 "enforce_self_authorization = false\nattest_rpc_cert = false\n"
		 "[core.auth_api]\ntype = \"webhook\"\n[core.auth_api.webhook]\nurl = \"%s/hook\"\ntimeout = "
		 "\"1s\"\n",
		 helper_url);
	/* [core] keys must precede other tables: prepend them. */
	kms_config(&k3, "kms3", "");
	{
		char path[PATH_MAX + 16];
		_cleanup_free_ uint8_t *old = NULL;
		size_t n = 0;
		struct buf b = BUF_INIT;
		snprintf(path, sizeof(path), "%s/kms.toml", k3.dir);
		file_read_all(path, 1 << 16, &old, &n, &e);
		char *core = strstr((char *)old, "[core]\n");
		buf_append(&b, old, (size_t)(core - (char *)old) + 7);
		buf_puts(&b, "enforce_self_authorization = false\nattest_rpc_cert = false\n");
		buf_puts(&b, core + 7);
		buf_puts(&b, strstr(extra, "[core.auth_api]"));
		write_text(path, (const char *)b.data);
		buf_free(&b);
	}
	snprintf(cmd, sizeof(cmd), "cp -r %s %s", k1->certs, k3.certs);
	if (system(cmd) != 0)
		diag("cp failed");
	kms_start(&k3, NULL);
	if (!ok(tp_wait_port(k3.pid, k3.rpc, 20), "KMS 3 (webhook = misbehaving hook) starts")) {
		show_log(k3.dir);
		return;
	}
	atomic_store(&hook_mode, HOOK_ALLOW);
	if (guest_setup(k3.url, false, &g, &e) < 0) {
		ok(0, "guest setup on KMS 3: %s", err_str(&e));
		return;
	}
	struct prpc_client c = mtls(k3.url, &g);
	_cleanup_json_ json_t *key = NULL;
	ok(call(&c, "GetAppKey", "{}", &key, &e) == 0 &&
	       !strcmp(json_string_value(json_object_get(key, "gateway_app_id")), "gw-hook"),
	   "hook allows → keys");
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		atomic_store(&hook_mode, cases[i].mode);
		ok(call(&c, "GetAppKey", "{}", NULL, &e) < 0 && err_has(&e, "App not allowed"),
		   "webhook %s → denied", cases[i].name);
	}
	atomic_store(&hook_mode, HOOK_ALLOW);
	ok(call(&c, "GetAppKey", "{}", NULL, &e) == 0, "hook healthy again → keys (no caching of failures)");
	guest_free(&g);
	tp_stop(k3.pid);
	/* Webhook down: nothing listens. */
	{
		struct kms_proc k4 = k3;
		char path[PATH_MAX + 16];
		_cleanup_free_ uint8_t *old = NULL;
		size_t n = 0;
		snprintf(path, sizeof(path), "%s/kms.toml", k4.dir);
		file_read_all(path, 1 << 16, &old, &n, &e);
		char hookurl[96];
		snprintf(hookurl, sizeof(hookurl), "%s/hook", helper_url);
		char *u = strstr((char *)old, hookurl);
		struct buf nb = BUF_INIT;
		buf_append(&nb, old, (size_t)(u - (char *)old));
		buf_puts(&nb, "http://127.0.0.1:1");
		buf_puts(&nb, u + strlen(hookurl));
		write_text(path, (const char *)nb.data);
		buf_free(&nb);
		kms_start(&k4, NULL);
		if (tp_wait_port(k4.pid, k4.rpc, 20) && guest_setup(k4.url, false, &g, &e) == 0) {
			struct prpc_client c4 = mtls(k4.url, &g);
			ok(call(&c4, "GetAppKey", "{}", NULL, &e) < 0 && err_has(&e, "App not allowed"),
			   "webhook down → denied");
			guest_free(&g);
		} else {
			ok(0, "KMS 4 start: %s", err_str(&e));
		}
		tp_stop(k4.pid);
	}
}

static void test_crash_restart(void)
{
	struct kms_proc k5;
	int status;

	kms_config(
	    &k5, "kms5",
	    "[core.auth_api]\ntype = \"dev\"\n[core.onboard]\nauto_bootstrap_domain = \"localhost\"\n");
	/* kms_config already wrote [core.onboard]; the second one would be a duplicate table. */
	{
		char path[PATH_MAX + 16];
		struct buf b = BUF_INIT;
		snprintf(path, sizeof(path), "%s/kms.toml", k5.dir);
		struct err e = ERR_INIT;
		_cleanup_free_ uint8_t *old = NULL;
		size_t n = 0;
		file_read_all(path, 1 << 16, &old, &n, &e);
		char *dup = strstr(strstr((char *)old, "[core.onboard]") + 1, "[core.onboard]");
		*dup = 0;
		buf_puts(&b, (char *)old);
		char *ob = strstr((char *)b.data, "[core.onboard]\n");
		(void)ob;
		buf_puts(&b, "");
		write_text(path, (const char *)b.data);
		FILE *f = fopen(path, "a");
		fputs("[core.auth_api.dev]\ngateway_app_id = \"any\"\n", f);
		fclose(f);
		/* auto bootstrap domain: add under [core.onboard] */
		free(old);
		old = NULL;
		file_read_all(path, 1 << 16, &old, &n, &e);
		buf_reset(&b);
		char *pos = strstr((char *)old, "[core.onboard]\n") + 15;
		buf_append(&b, old, (size_t)(pos - (char *)old));
		buf_puts(&b, "auto_bootstrap_domain = \"localhost\"\n");
		buf_puts(&b, pos);
		write_text(path, (const char *)b.data);
		buf_free(&b);
	}
	kms_start(&k5, "DSTACK_KMS_CRASH_AT=6");
	status = tp_wait_exit(k5.pid, 60);
	if (!ok(status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		"KMS killed mid-bootstrap")) {
		diag("wait status %d (-1 = still running after 60 s)", status);
		show_log(k5.dir);
	}
	kms_start(&k5, NULL);
	if (!ok(tp_wait_port(k5.pid, k5.rpc, 20), "restart after the kill completes bootstrap and serves"))
		show_log(k5.dir);
	struct prpc_client c = client(k5.url);
	struct err e = ERR_INIT;
	_cleanup_json_ json_t *m = NULL;
	ok(call(&c, "GetMeta", NULL, &m, &e) == 0 && json_is_true(json_object_get(m, "is_dev")),
	   "dev KMS GetMeta is_dev");
	tp_stop(k5.pid);
}

/* Interactive Bootstrap with a guest agent: the attestation's report_data
 * commits to the CA public key and the k256 key; GetMeta shows the record. */
static void test_bootstrap_attested(void)
{
	struct kms_proc k6;
	struct err e = ERR_INIT;
	char ob[96];
	_cleanup_json_ json_t *r = NULL, *meta = NULL;

	kms_config(&k6, "kms6", "[core.auth_api]\ntype = \"dev\"\n");
	kms_start(&k6, NULL);
	if (!ok(tp_wait_port(k6.pid, k6.onboard, 20), "KMS 6 serves its onboard page")) {
		show_log(k6.dir);
		return;
	}
	snprintf(ob, sizeof(ob), "http://127.0.0.1:%u/prpc", k6.onboard);
	struct prpc_client o = {.base = ob, .http = {.timeout_ms = 60000}};
	if (!ok(call(&o, "Bootstrap", "{\"domain\":\"localhost\"}", &r, &e) == 0, "interactive Bootstrap")) {
		diag("%s", err_str(&e));
		tp_stop(k6.pid);
		return;
	}
	{
		const char *ca = json_string_value(json_object_get(r, "ca_pubkey"));
		const char *k256 = json_string_value(json_object_get(r, "k256_pubkey"));
		const char *att = json_string_value(json_object_get(r, "attestation"));
		struct span parts[] = {SPAN_STR("dstack-kms-genereted-keys-v1:"), SPAN_STR(ca), SPAN_STR(";"),
				       SPAN_STR(k256), SPAN_STR(";")};
		uint8_t want[64] = {0};
		_cleanup_free_ uint8_t *raw = NULL;
		size_t len = 0;
		struct attestation a;

		keccak256_parts(parts, ARRAY_SIZE(parts), want);
		attestation_init(&a);
		ok(att && hex_decode_alloc(att, strlen(att), &raw, &len, &e) == 0 &&
		       attestation_decode(raw, len, &a, &e) == 0 && !memcmp(a.report_data, want, 64),
		   "bootstrap attestation report_data = keccak(\"dstack-kms-genereted-keys-v1:\" ca ; k256 "
		   ";) || 0^32");
		attestation_free(&a);
	}
	call(&o, "Finish", NULL, NULL, &e);
	if (tp_wait_port(k6.pid, k6.rpc, 20)) {
		struct prpc_client c = client(k6.url);
		ok(call(&c, "GetMeta", NULL, &meta, &e) == 0 &&
		       json_equal(json_object_get(meta, "bootstrap_info"), r),
		   "GetMeta.bootstrap_info = the Bootstrap reply");
	} else {
		ok(0, "KMS 6 serves after Finish");
		show_log(k6.dir);
	}
	tp_stop(k6.pid);
}

int main(int argc, char **argv)
{
	struct err e = ERR_INIT;
	struct kms_proc k1;
	pid_t auth_pid;
	char extra[512], log[PATH_MAX + 16], port_env[32], path_env[PATH_MAX + 48];

	if (argc < 3 || !mkdtemp(tmp))
		return 1;
	kms_bin = argv[1];
	auth_bin = argv[2];
	snprintf(pki, sizeof(pki), "%s/pki", tmp);
	if (!ok(sim_pki(pki, &e) == 0, "simulated TDX PKI") || !ok(start_helper() == 0, "helper server") ||
	    !ok(compute_kms_mr(&e) == 0, "simulated KMS mr_aggregated")) {
		diag("%s", err_str(&e));
		return tap_done();
	}
	/* auth-simple */
	auth_port = tp_free_port();
	write_auth_config(COMPOSE, kms_mr);
	snprintf(port_env, sizeof(port_env), "PORT=%u", auth_port);
	snprintf(path_env, sizeof(path_env), "AUTH_CONFIG_PATH=%s/auth-config.json", tmp);
	snprintf(log, sizeof(log), "%s/auth-simple.log", tmp);
	{
		const char *env[] = {port_env, path_env, "HOST=127.0.0.1", NULL};
		char *args[] = {(char *)auth_bin, NULL};
		auth_pid = tp_spawn(args, env, tmp, log);
	}
	ok(tp_wait_port(auth_pid, auth_port, 10), "auth-simple up");

	snprintf(
	    extra, sizeof(extra),
	    "[core.auth_api]\ntype = \"webhook\"\n[core.auth_api.webhook]\nurl = \"http://127.0.0.1:%u\"\n",
	    auth_port);
	kms_config(&k1, "kms1", extra);
	{
		/* auto bootstrap for KMS 1 */
		char path[PATH_MAX + 16];
		_cleanup_free_ uint8_t *old = NULL;
		size_t n = 0;
		struct buf b = BUF_INIT;
		snprintf(path, sizeof(path), "%s/kms.toml", k1.dir);
		file_read_all(path, 1 << 16, &old, &n, &e);
		char *pos = strstr((char *)old, "[core.onboard]\n") + 15;
		buf_append(&b, old, (size_t)(pos - (char *)old));
		buf_puts(&b, "auto_bootstrap_domain = \"localhost\"\n");
		buf_puts(&b, pos);
		write_text(path, (const char *)b.data);
		buf_free(&b);
	}
	kms_start(&k1, NULL);
	if (!ok(tp_wait_port(k1.pid, k1.rpc, 30), "KMS 1 auto-bootstraps (self-authorized) and serves")) {
		show_log(k1.dir);
		tp_stop(auth_pid);
		return tap_done();
	}
	{
		char p[PATH_MAX + 32];
		snprintf(p, sizeof(p), "%s/bootstrap-info.json", k1.certs);
		ok(!file_exists(p), "headless bootstrap writes no bootstrap-info.json");
	}
	test_guest_keys(&k1);
	test_hostile(&k1);
	test_onboard(&k1);
	test_webhook_failures(&k1);
	test_crash_restart();
	test_bootstrap_attested();
	ok(kill(k1.pid, 0) == 0, "KMS 1 still alive at the end");
	tp_stop(k1.pid);
	tp_stop(auth_pid);
	if (!getenv("KMS_TEST_KEEP")) {
		char cmd[PATH_MAX + 16];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
		if (system(cmd) != 0)
			diag("cleanup failed");
	}
	return tap_done();
}
