/*
 * boot_test.c — simulated CVM boots with `dstack-util setup` as a real
 * process on the simulated TDX (harness in boot_env.h), then the guest
 * agent on the result.
 *
 *   none provider: keys made locally, every boot event present and RTMR3
 *     replays, host notifications received, the agent's quotes verify with
 *     the production verifier (dev root CA); the same with
 *     event_log_version 2; MR_CONFIG_ID v1/v2/v3 accepted when they
 *     describe this boot, refused otherwise.
 *   KMS provider: against a KMS stand-in in this process built from the
 *     real pieces — lib/ratls certificates and verifier, lib/crypto key
 *     derivation, simulated-TDX attestation of its RPC certificate — so the
 *     guest's RA-TLS client, GetAppKey, the os-image-hash event, env
 *     decryption with allowed_envs, the tampered-env refusal and the
 *     key_provider_id pin run for real. Stand-ins with a bad RPC
 *     certificate (no kms:rpc usage, no attestation, an attestation of
 *     another key, a forged quote, another root CA) must each stop the boot
 *     naming the check, before GetAppKey is served.
 *
 * The real dstack-kms (dev auth and auth-simple) is boot_kms_test.c.
 */
#include <openssl/x509.h>

#include "agent_rpc.pb-c.h"
#include "attest/appinfo.h"
#include "crypto/appkeys.h"
#include "crypto/compose.h"
#include "crypto/ecx.h"
#include "crypto/envcrypt.h"
#include "crypto/kdf.h"
#include "google/protobuf/empty.pb-c.h"
#include "kms_rpc.pb-c.h"
#include "prpc/server.h"
#include "ratls/cert.h"
#include "ratls/csr.h"
#include "ratls/ext.h"

#include "boot_env.h"

/* ---- the KMS stand-in ---- */

static pthread_mutex_t kms_mu = PTHREAD_MUTEX_INITIALIZER;

struct kms {
	EVP_PKEY *root_key, *tmp_key, *rpc_key;
	X509 *root, *tmp, *rpc;
	uint8_t root_scalar[32], root_k256[32];
	int app_key_calls;
};
static struct kms kms;

static int get_temp_ca(struct prpc_call *call, const void *in, void *out_, struct err *e)
{
	Kms__GetTempCaCertResponse *out = out_;
	out->temp_ca_cert = pem_write_cert(kms.tmp, e);
	out->temp_ca_key = pem_write_private_key(kms.tmp_key, e);
	out->ca_cert = pem_write_cert(kms.root, e);
	return out->temp_ca_cert && out->temp_ca_key && out->ca_cert ? 0 : -1;
}

static int set_b(ProtobufCBinaryData *b, const void *p, size_t n)
{
	b->data = malloc(n ? n : 1);
	memcpy(b->data, p, n);
	b->len = n;
	return 0;
}

static int get_app_key(struct prpc_call *call, const void *in_, void *out_, struct err *e)
{
	const Kms__GetAppKeyRequest *in = in_;
	Kms__AppKeyResponse *out = out_;
	X509 *peer = prpc_call_peer_cert(call);
	struct ratls_verified r;
	struct ratls_boot_info bi;
	struct kms_app_keys k;

	if (!peer)
		return err_set(e, "No client certificate");
	if (X509_verify(peer, kms.tmp_key) != 1)
		return err_set(e, "client certificate not issued by the temp CA");
	if (ratls_verify_peer_cert(boot_verifier, peer, 0, &r, e) < 0)
		return -1;
	int rc = ratls_boot_info(&r, in->vm_config, true, &bi, e);
	ratls_verified_free(&r);
	if (rc < 0)
		return -1;
	rc = kms_derive_app_keys(kms.root_scalar, kms.root_k256, bi.app.app_id.p, bi.app.instance_id.p,
				 bi.app.instance_id.len, &k, e);
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *ca_key = rc == 0 ? p256_pkey_from_scalar(k.app_ca_key, e) : NULL;
	_cleanup_(X509_freep) X509 *ca =
	    ca_key ? ratls_cert_app_ca(ca_key, bi.app.app_id.p, 20, kms.root, kms.root_key, e) : NULL;
	if (ca) {
		out->ca_cert = pem_write_cert(ca, e);
		set_b(&out->disk_crypt_key, k.disk_crypt_key, 32);
		set_b(&out->env_crypt_key, k.env_crypt_key, 32);
		set_b(&out->k256_key, k.k256_key, 32);
		set_b(&out->k256_signature, k.k256_signature, 65);
		out->gateway_app_id = strdup("any");
		set_b(&out->os_image_hash, bi.app.os_image_hash.p, bi.app.os_image_hash.len);
		pthread_mutex_lock(&kms_mu);
		kms.app_key_calls++;
		pthread_mutex_unlock(&kms_mu);
	}
	ratls_boot_info_free(&bi);
	return ca ? 0 : -1;
}

/* SignCert v2: the CSR's attestation names the app; the app CA signs. */
static int sign_cert(struct prpc_call *call, const void *in_, void *out_, struct err *e)
{
	const Kms__SignCertRequest *in = in_;
	Kms__SignCertResponse *out = out_;
	struct ratls_csr csr;
	struct ratls_verified r;
	struct ratls_boot_info bi;
	struct kms_app_keys k;
	X509 *leaf = NULL;

	if (ratls_csr_decode(in->api_version, in->csr.data, in->csr.len, &csr, e) < 0)
		return -1;
	if (ratls_csr_verify(&csr, in->csr.data, in->csr.len, in->signature.data, in->signature.len, e) < 0 ||
	    ratls_verify_bytes(boot_verifier, csr.attestation, csr.attestation_len, 0, &r, e) < 0) {
		ratls_csr_free(&csr);
		return -1;
	}
	int rc = ratls_boot_info(&r, in->vm_config, true, &bi, e);
	ratls_verified_free(&r);
	if (rc == 0 && kms_derive_app_keys(kms.root_scalar, NULL, bi.app.app_id.p, NULL, 0, &k, e) == 0) {
		EVP_PKEY *ca_key = p256_pkey_from_scalar(k.app_ca_key, e);
		X509 *ca =
		    ca_key ? ratls_cert_app_ca(ca_key, bi.app.app_id.p, 20, kms.root, kms.root_key, e) : NULL;
		leaf = ca ? ratls_cert_app_leaf(&csr, bi.app.app_id.p, 20, csr.attestation,
						csr.attestation_len, NULL, 0, ca, ca_key, e)
			  : NULL;
		if (leaf) {
			out->certificate_chain = calloc(3, sizeof(char *));
			out->n_certificate_chain = 3;
			out->certificate_chain[0] = pem_write_cert(leaf, e);
			out->certificate_chain[1] = pem_write_cert(ca, e);
			out->certificate_chain[2] = pem_write_cert(kms.root, e);
		}
		X509_free(leaf);
		X509_free(ca);
		EVP_PKEY_free(ca_key);
	}
	if (rc == 0)
		ratls_boot_info_free(&bi);
	ratls_csr_free(&csr);
	return leaf ? 0 : -1;
}

static const struct prpc_method kms_methods[] = {
    PRPC_METHOD_BLOCKING("SignCert", kms__sign_cert_request, kms__sign_cert_response, sign_cert),
    PRPC_METHOD("GetTempCaCert", google__protobuf__empty, kms__get_temp_ca_cert_response, get_temp_ca),
    PRPC_METHOD_BLOCKING("GetAppKey", kms__get_app_key_request, kms__app_key_response, get_app_key),
};
static const char *const kms_prefixes[] = {"KMS.", NULL};
static const struct prpc_service kms_svc = {"KMS", kms_prefixes, kms_methods, ARRAY_SIZE(kms_methods), NULL};

static int accept_any(int ok_, X509_STORE_CTX *c)
{
	return 1; /* the handler checks the client certificate */
}

/* A stripped, encoded attestation of the stand-in KMS's simulated TD
 * binding `key`; with forge, one byte of the quote body flipped after the
 * fact (its signature no longer covers it). */
static int kms_attest_key(EVP_PKEY *key, bool forge, struct buf *out, struct err *e)
{
	char state[400], log[400], lock[400];
	uint8_t rd[64];
	struct tee *t = NULL;
	struct attestation att;

	snprintf(state, sizeof(state), "%s/kms-td.json", dir);
	snprintf(log, sizeof(log), "%s/kms-none.log", dir);
	snprintf(lock, sizeof(lock), "%s/kms.lock", dir);
	if (!file_exists(state) && simtee_td_create(state, NULL, e) < 0)
		return -1;
	if (simtee_tee_open(&t, pki, state, e) < 0)
		return -1;
	int rc =
	    ratls_key_report_data(key, rd, e) < 0 ? -1 : rtevent_attestation(t, log, lock, "", rd, &att, e);
	tee_close(t);
	if (rc < 0)
		return -1;
	if (forge)
		att.quote[200] ^= 1; /* inside MRTD */
	rc = attestation_strip_for_cert(&att, e) < 0 ? -1 : attestation_encode(&att, out, e);
	attestation_free(&att);
	return rc;
}

/* A KMS stand-in server presenting `leaf` (key `key`, chain `chain_ca`). */
static int serve_kms(X509 *leaf, EVP_PKEY *key, X509 *chain_ca, uint16_t *port, struct err *e)
{
	static const struct prpc_service *svcs[] = {&kms_svc};
	struct http_listen_spec spec;
	struct http_server *srv = http_server_new(boot_base, NULL, e);
	if (!srv)
		return -1;
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	SSL_CTX_use_certificate(ctx, leaf);
	SSL_CTX_add1_chain_cert(ctx, chain_ca);
	SSL_CTX_use_PrivateKey(ctx, key);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any);
	int rc = prpc_mount(srv, "/prpc/", svcs, 1, e) < 0 ||
			 http_listen_parse("tcp:127.0.0.1:0", &spec, e) < 0 ||
			 http_server_listen(srv, &spec, ctx, port, e) < 0
		     ? -1
		     : 0;
	SSL_CTX_free(ctx);
	return rc;
}

/* The stand-ins whose RPC certificate must be refused, and the refusal. */
struct bad_kms {
	const char *name, *want;
	uint16_t port;
};
static struct bad_kms bad_kms[] = {
    {"usage", "KMS certificate lacks usage kms:rpc", 0},
    {"no-attestation", "KMS attestation: No attestation provided", 0},
    {"other-key", "attestation report data does not bind the certificate key", 0},
    {"forged-quote", "KMS attestation: invalid quote", 0},
    {"other-ca", "KMS certificate not issued by its root CA", 0},
};

static X509 *bad_cert(size_t i, EVP_PKEY *key, X509 **chain, struct err *e)
{
	static EVP_PKEY *other_root_key;
	static X509 *other_root;
	_cleanup_(buf_freep) struct buf att = {0};
	*chain = kms.root;
	const char *sans[] = {"localhost"};
	struct ratls_cert_params p = {.cn = "localhost", .sans = sans, .n_sans = 1, .usage = "app:custom"};
	switch (i) {
	case 0: /* attested, under the root, but not a KMS RPC certificate */
		if (kms_attest_key(key, false, &att, e) < 0)
			return NULL;
		p.attestation = att.data;
		p.attestation_len = att.len;
		return ratls_cert_build(&p, key, kms.root, kms.root_key, e);
	case 1:
		return ratls_cert_kms_rpc(key, "localhost", NULL, 0, kms.root, kms.root_key, e);
	case 2: {
		_cleanup_(EVP_PKEY_freep) EVP_PKEY *other = ratls_key_generate(e);
		if (!other || kms_attest_key(other, false, &att, e) < 0)
			return NULL;
		return ratls_cert_kms_rpc(key, "localhost", att.data, att.len, kms.root, kms.root_key, e);
	}
	case 3:
		if (kms_attest_key(key, true, &att, e) < 0)
			return NULL;
		return ratls_cert_kms_rpc(key, "localhost", att.data, att.len, kms.root, kms.root_key, e);
	default:
		if (!other_root) {
			other_root_key = ratls_key_generate(e);
			other_root = other_root_key ? ratls_cert_root_ca(other_root_key, e) : NULL;
		}
		if (!other_root || kms_attest_key(key, false, &att, e) < 0)
			return NULL;
		*chain = other_root;
		return ratls_cert_kms_rpc(key, "localhost", att.data, att.len, other_root, other_root_key, e);
	}
}

static uint16_t kms_port;

static int start_kms(struct err *e)
{
	_cleanup_(buf_freep) struct buf att = {0};

	kms.root_key = ratls_key_generate(e);
	kms.tmp_key = ratls_key_generate(e);
	kms.rpc_key = ratls_key_generate(e);
	kms.root = kms.root_key ? ratls_cert_root_ca(kms.root_key, e) : NULL;
	kms.tmp = kms.tmp_key ? ratls_cert_temp_ca(kms.tmp_key, e) : NULL;
	if (!kms.root || !kms.tmp || !kms.rpc_key || p256_pkey_scalar(kms.root_key, kms.root_scalar, e) < 0)
		return -1;
	memset(kms.root_k256, 0x42, 32);
	if (kms_attest_key(kms.rpc_key, false, &att, e) < 0)
		return -1;
	kms.rpc = ratls_cert_kms_rpc(kms.rpc_key, "localhost", att.data, att.len, kms.root, kms.root_key, e);
	if (!kms.rpc || serve_kms(kms.rpc, kms.rpc_key, kms.root, &kms_port, e) < 0)
		return -1;
	for (size_t i = 0; i < ARRAY_SIZE(bad_kms); i++) {
		_cleanup_(EVP_PKEY_freep) EVP_PKEY *key = ratls_key_generate(e);
		X509 *chain = NULL;
		_cleanup_(X509_freep) X509 *leaf = key ? bad_cert(i, key, &chain, e) : NULL;
		if (!leaf || serve_kms(leaf, key, chain, &bad_kms[i].port, e) < 0)
			return err_wrap(e, "stand-in %s", bad_kms[i].name);
	}
	return 0;
}

static int app_key_calls(void)
{
	pthread_mutex_lock(&kms_mu);
	int n = kms.app_key_calls;
	pthread_mutex_unlock(&kms_mu);
	return n;
}

/* Hex of the KMS root's SPKI DER: its key_provider_id. */
static char *kms_root_spki_hex(void)
{
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(X509_get0_pubkey(kms.root), &der);
	char *h = n > 0 ? hex_encode_alloc(der, (size_t)n) : NULL;
	OPENSSL_free(der);
	return h;
}

/* ---- none provider ---- */

static void test_none(void)
{
	char state[400];
	struct buf out = {0};
	make_cvm(
	    "none",
	    "{\"manifest_version\":2,\"name\":\"n\",\"runner\":\"docker-compose\","
	    "\"docker_compose_file\":\"services: {}\",\"key_provider\":\"none\",\"storage_fs\":\"ext4\"}",
	    NULL, NULL, 0, state, sizeof(state));
	int rc = run_setup("none", state, &out);
	is_int(rc, 0, "none: setup succeeds");
	if (rc)
		diag("%s", out.data ? (char *)out.data : "");
	check_boot_events("none", state, false, "ext4");
	char *keys = read_text("none", ".appkeys.json");
	ok(keys && strstr(keys, "\"None\""), "none: .appkeys.json with the None provider");
	free(keys);
	char *ii = read_text("none", ".instance_info");
	ok(ii && strstr(ii, "instance_id_seed"), "none: instance info written");
	free(ii);
	ok(out_has(&out, "disk encryption skipped: no data device"), "none: disk skip logged");
	ok(notified_has("boot.progress", "done") && notified_has("instance.info", "instance_id_seed"),
	   "none: host notified (boot.progress done, instance.info)");
	agent_quote_verifies("none", false);
	buf_free(&out);
}

static bool log_has(const char *path, const char *text)
{
	_cleanup_free_ uint8_t *d = NULL;
	size_t n = 0;
	return file_read_all(path, 1 << 20, &d, &n, NULL) == 0 && memmem(d, n, text, strlen(text));
}

/*
 * GuestApi where vsock cannot be had (a CID no kernel has is as unbindable
 * as a kernel without AF_VSOCK): the configured fallback socket serves it
 * and the log says so; with no fallback the agent still serves the app.
 */
static void test_guest_api_fallback(void)
{
	char fb[400], arg[420];
	struct agent_proc ap;
	struct err e = ERR_INIT;
	struct http_response resp = {0};

	char *conf = read_text("none", "agent.json");
	ok(conf && strstr(conf, "\"guest_api_fallback\": \"unix:/var/run/dstack/guest-api.sock\""),
	   "agent.json from setup names the GuestApi fallback socket");
	free(conf);
	snprintf(fb, sizeof(fb), "%s/none/fallback.sock", dir);
	snprintf(arg, sizeof(arg), "unix:%s", fb);
	const char *args[] = {"--guest-api", "vsock:4000000000:8000", "--guest-api-fallback", arg, NULL};
	ok(agent_start("none", &ap, args), "fallback: agent up");
	for (int i = 0; i < 100 && !file_exists(fb); i++)
		usleep(50000);
	struct http_client_opts go = {.unix_socket = fb};
	ok(http_fetch(&go, "POST", "http://localhost/api/SysInfo", NULL, "{}", 2, &resp, &e) == 0 &&
	       resp.status == 200 && strstr((char *)resp.body.data, "num_cpus"),
	   "fallback: GuestApi answers on the configured socket (%s)", e.msg);
	http_response_free(&resp);
	ok(log_has(ap.log, "GuestApi: vsock:4000000000:8000 unavailable (") &&
	       log_has(ap.log, "falling back to unix:") && log_has(ap.log, "GuestApi served on the fallback"),
	   "fallback: the log names the failed vsock address and the fallback");
	stop_pid(ap.pid);

	const char *none_args[] = {"--guest-api", "vsock:4000000000:8000", "--guest-api-fallback", "none",
				   NULL};
	ok(agent_start("none", &ap, none_args), "no fallback: agent still up");
	struct prpc_client c = {.base = "http://localhost", .http = {.unix_socket = ap.dsock}};
	json_t *out = NULL;
	ok(prpc_client_call_json(&c, "Version", NULL, &out, &e) == 0,
	   "no fallback: DstackGuest still served");
	json_decref(out);
	ok(log_has(ap.log, "GuestApi not served:") && log_has(ap.log, "no guest_api_fallback configured"),
	   "no fallback: the log says GuestApi is not served and why");
	stop_pid(ap.pid);
}

/* event_log_version 2: JCS digests, "version":2 lines, the agent's
 * attestation (with V2 preimages) still verifies. */
static void test_event_log_v2(void)
{
	char state[400], p[400];
	struct buf out = {0};
	make_cvm("ev2",
		 "{\"manifest_version\":2,\"name\":\"v2\",\"runner\":\"docker-compose\","
		 "\"key_provider\":\"none\",\"storage_fs\":\"zfs\",\"event_log_version\":2}",
		 NULL, NULL, 0, state, sizeof(state));
	int rc = run_setup("ev2", state, &out);
	is_int(rc, 0, "ev2: setup succeeds with event_log_version 2");
	if (rc)
		diag("%s", out.data ? (char *)out.data : "");
	check_boot_events("ev2", state, false, "zfs");
	snprintf(p, sizeof(p), "%s/ev2/rt/runtime_events.log", dir);
	_cleanup_free_ uint8_t *log = NULL;
	size_t n = 0;
	bool all_v2 = file_read_all(p, 1 << 20, &log, &n, NULL) == 0 && n > 0;
	for (char *l = (char *)log; all_v2 && l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (*l != '\n' && !strstr(l, "\"version\":2") && !strstr(l, "\"version\": 2"))
			all_v2 = false;
	ok(all_v2, "ev2: every runtime event logged with version 2");
	snprintf(p, sizeof(p), "%s/ev2/rt/runtime_event_version", dir);
	_cleanup_free_ uint8_t *ver = NULL;
	ok(file_read_all(p, 16, &ver, &n, NULL) == 0 && n == 1 && ver[0] == '2', "ev2: version 2 pinned");
	agent_quote_verifies("ev2", false);
	buf_free(&out);
}

static const char mr_compose[] = "{\"manifest_version\":2,\"name\":\"m\",\"runner\":\"docker-compose\","
				 "\"key_provider\":\"none\",\"storage_fs\":\"ext4\"}";

/* Boot mr_compose (or `compose`) in a TD with MR_CONFIG_ID `id`. */
static int boot_mr(const char *name, const char *compose, const char *sys_extra, const uint8_t id[48],
		   struct buf *out)
{
	char state[400];
	make_cvm(name, compose ? compose : mr_compose, sys_extra, NULL, 0, state, sizeof(state));
	struct simtee_td_init init = {.mr_config_id = id};
	simtee_td_create(state, &init, NULL);
	return run_setup(name, state, out);
}

/* MR_CONFIG_ID: the TD must have been configured for this app. */
static void test_mr_config(void)
{
	uint8_t ch[32], app_id[20], id[48], other[32];
	struct buf out = {0};

	compose_hash(mr_compose, strlen(mr_compose), ch);
	compose_default_app_id(ch, app_id);
	mr_config_id_v1(ch, id);
	is_int(boot_mr("mrcfg-v1", NULL, NULL, id, &out), 0, "MR_CONFIG_ID v1 of this compose accepted");
	buf_free(&out);
	mr_config_id_v2(ch, app_id, KP_NONE, NULL, 0, id);
	is_int(boot_mr("mrcfg-ok", NULL, NULL, id, &out), 0,
	       "MR_CONFIG_ID v2 for this app and provider accepted");
	buf_free(&out);
	memset(other, 0x77, sizeof(other));
	mr_config_id_v1(other, id);
	int rc = boot_mr("mrcfg-bad", NULL, NULL, id, &out);
	ok(rc != 0 && out_has(&out, "MR_CONFIG_ID mismatch"), "MR_CONFIG_ID of another compose refused");
	buf_free(&out);
	memset(id, 0, sizeof(id));
	id[5] = 1; /* version byte 0 but not all zero */
	rc = boot_mr("mrcfg-v0", NULL, NULL, id, &out);
	ok(rc != 0 && out_has(&out, "unknown MR_CONFIG_ID version 0"), "MR_CONFIG_ID with version 0 refused");
	buf_free(&out);
}

/* ---- KMS provider, against the stand-in ---- */

static void encrypt_env(const uint8_t app_id[20], const char *plain, struct buf *out)
{
	uint8_t sk[32], pk[32];
	kms_env_crypt_key(kms.root_scalar, app_id, sk, NULL);
	x25519_public(sk, pk, NULL);
	env_envelope_encrypt(pk, plain, strlen(plain), out, NULL);
}

static void test_kms(void)
{
	const char *compose =
	    "{\"manifest_version\":2,\"name\":\"k\",\"runner\":\"docker-compose\","
	    "\"docker_compose_file\":\"services: {}\",\"kms_enabled\":true,\"key_provider\":\"kms\","
	    "\"allowed_envs\":[\"ALLOWED\",\"OTHER\"],\"storage_fs\":\"zfs\"}";
	uint8_t ch[32], app_id[20];
	struct buf env = {0}, out = {0};
	char state[400];

	cvm_kms_port = kms_port;
	compose_hash(compose, strlen(compose), ch);
	compose_default_app_id(ch, app_id);
	encrypt_env(
	    app_id,
	    "{\"env\":[{\"key\":\"ALLOWED\",\"value\":\"yes $it\"},{\"key\":\"SNEAKY\",\"value\":\"no\"},"
	    "{\"key\":\"OTHER\",\"value\":\"2\"}]}",
	    &env);
	make_cvm("kms", compose, NULL, env.data, env.len, state, sizeof(state));
	int rc = run_setup("kms", state, &out);
	is_int(rc, 0, "kms: setup succeeds");
	if (rc)
		diag("%s", out.data ? (char *)out.data : "");
	ok(app_key_calls() == 1, "kms: GetAppKey served once over mutual RA-TLS");
	check_boot_events("kms", state, true, "zfs");
	char *keys = read_text("kms", ".appkeys.json");
	ok(keys && strstr(keys, "\"Kms\"") && strstr(keys, "\"k256_signature\": \"") &&
	       !strstr(keys, "\"k256_signature\": \"\""),
	   "kms: .appkeys.json carries the KMS keys");
	free(keys);
	char *dot = read_text("kms", ".decrypted-env");
	is_str(dot ? dot : "", "ALLOWED=\"yes \\$it\"\nOTHER=2\n",
	       "kms: .decrypted-env keeps only allowed_envs");
	free(dot);
	char *js = read_text("kms", ".decrypted-env.json");
	ok(js && strstr(js, "ALLOWED") && !strstr(js, "SNEAKY"), "kms: .decrypted-env.json filtered");
	free(js);
	agent_quote_verifies("kms", true);
	buf_free(&out);

	/* Tampered env: one flipped ciphertext byte stops the boot. */
	env.data[env.len - 20] ^= 1;
	make_cvm("tampered", compose, NULL, env.data, env.len, state, sizeof(state));
	rc = run_setup("tampered", state, &out);
	ok(rc != 0, "tampered: setup fails");
	ok(out_has(&out, "Failed to decrypt env"), "tampered: clear error");
	ok(notified_has("boot.error", "Failed to decrypt env"), "tampered: boot.error sent to the host");
	char *none = read_text("tampered", ".decrypted-env");
	ok(none == NULL, "tampered: no .decrypted-env written");
	free(none);
	buf_free(&out);
	buf_free(&env);

	/* key_provider_id pins: the KMS root's SPKI is accepted, another refused. */
	_cleanup_free_ char *spki = kms_root_spki_hex();
	char pinned[1024];
	snprintf(
	    pinned, sizeof(pinned),
	    "{\"manifest_version\":2,\"name\":\"p\",\"runner\":\"docker-compose\",\"key_provider\":\"kms\","
	    "\"key_provider_id\":\"%s\"}",
	    spki ? spki : "");
	make_cvm("pin-ok", pinned, NULL, NULL, 0, state, sizeof(state));
	rc = run_setup("pin-ok", state, &out);
	is_int(rc, 0, "pin-ok: key_provider_id = the KMS root's SPKI accepted");
	if (rc)
		diag("%s", out.data ? (char *)out.data : "");
	buf_free(&out);
	make_cvm(
	    "pinned",
	    "{\"manifest_version\":2,\"name\":\"p\",\"runner\":\"docker-compose\",\"key_provider\":\"kms\","
	    "\"key_provider_id\":\"00ff\"}",
	    NULL, NULL, 0, state, sizeof(state));
	rc = run_setup("pinned", state, &out);
	ok(rc != 0 && out_has(&out, "key provider id mismatch"), "pinned: wrong KMS refused");
	buf_free(&out);

	/* A vm_config without os_image_hash: the KMS returns none, and the
	 * event is emitted all the same, empty (guest.md §5 d, as the reference). */
	make_cvm("noimg", compose, NULL, NULL, 0, state, sizeof(state));
	char sys[1024], p[400];
	snprintf(
	    sys, sizeof(sys),
	    "{\"kms_urls\":[\"https://localhost:%u\"],\"host_api_url\":\"unix:%s\",\"vm_config\":\"{}\"}",
	    kms_port, notify_sock);
	snprintf(p, sizeof(p), "%s/noimg/shared/.sys-config.json", dir);
	write_file(p, sys);
	rc = run_setup("noimg", state, &out);
	is_int(rc, 0, "noimg: setup succeeds without an os_image_hash");
	if (rc)
		diag("%s", out.data ? (char *)out.data : "");
	struct event_log log = EVENT_LOG_INIT;
	const uint8_t *pl = NULL;
	size_t pn = 99;
	ok(read_rt_log("noimg", &log, NULL) == 0 && rt_event(&log, RT_OS_IMAGE_HASH, &pl, &pn) == 1 &&
	       pn == 0,
	   "noimg: os-image-hash emitted with the KMS's empty value");
	event_log_free(&log);
	buf_free(&out);

	make_cvm("local", "{\"manifest_version\":2,\"name\":\"l\",\"key_provider\":\"local\"}", NULL, NULL, 0,
		 state, sizeof(state));
	rc = run_setup("local", state, &out);
	ok(rc != 0 && out_has(&out, "not implemented"), "local: clear not-implemented error");
	buf_free(&out);
}

/*
 * MR_CONFIG_ID v3 as the VMM sets it when the compose pins the KMS: the
 * sys-config document names this app, compose, instance and KMS. A
 * document whose hash is in MR_CONFIG_ID but that names another compose is
 * refused all the same.
 */
static void test_mr_config_v3(void)
{
	_cleanup_free_ char *spki = kms_root_spki_hex();
	char compose[1024], ii[256], doc[1024], ch_hex[65], app_hex[41], iid_hex[41];
	uint8_t ch[32], app_id[20], seed[20], iid[20], id[48];
	struct buf out = {0};

	snprintf(
	    compose, sizeof(compose),
	    "{\"manifest_version\":2,\"name\":\"v3\",\"runner\":\"docker-compose\",\"key_provider\":\"kms\","
	    "\"key_provider_id\":\"%s\",\"storage_fs\":\"ext4\"}",
	    spki ? spki : "");
	compose_hash(compose, strlen(compose), ch);
	compose_default_app_id(ch, app_id);
	memset(seed, 0x5e, sizeof(seed));
	compose_instance_id(seed, 20, app_id, NULL, 0, iid);
	hex_encode(ch, 32, ch_hex);
	hex_encode(app_id, 20, app_hex);
	hex_encode(iid, 20, iid_hex);
	snprintf(ii, sizeof(ii), "{\"instance_id_seed\":\"%s\",\"app_id\":\"%s\"}",
		 "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e", app_hex);
	const char *names[] = {"mrcfg-v3", "mrcfg-v3-other"};
	for (int i = 0; i < 2; i++) {
		/* JCS: keys sorted, compact. */
		snprintf(doc, sizeof(doc),
			 "{\"app_id\":\"%s\",\"compose_hash\":\"%s\",\"instance_id\":\"%s\",\"key_provider\":"
			 "\"kms\",\"key_provider_id\":\"%s\",\"version\":3}",
			 app_hex,
			 i ? "77777777777777777777777777777777777777777777777777777777777777ff" : ch_hex,
			 iid_hex, spki ? spki : "");
		mr_config_id_v3(doc, strlen(doc), id);
		json_t *js = json_string(doc);
		_cleanup_free_ char *quoted = json_dumps(js, JSON_ENCODE_ANY);
		json_decref(js);
		char extra[2048], p[400];
		snprintf(extra, sizeof(extra), ",\"mr_config\":%s", quoted ? quoted : "\"\"");
		char state[400];
		make_cvm(names[i], compose, extra, NULL, 0, state, sizeof(state));
		snprintf(p, sizeof(p), "%s/%s/shared/.instance_info", dir, names[i]);
		write_file(p, ii);
		struct simtee_td_init init = {.mr_config_id = id};
		simtee_td_create(state, &init, NULL);
		int rc = run_setup(names[i], state, &out);
		if (i == 0) {
			is_int(rc, 0, "MR_CONFIG_ID v3 whose document describes this boot accepted");
			if (rc)
				diag("%s", out.data ? (char *)out.data : "");
		} else {
			ok(rc != 0 && out_has(&out, "Invalid mr_config compose_hash"),
			   "MR_CONFIG_ID v3 over a document naming another compose refused");
		}
		buf_free(&out);
	}
}

/* Each stand-in with a bad RPC certificate stops the boot before GetAppKey. */
static void test_kms_server_checks(void)
{
	const char *compose = "{\"manifest_version\":2,\"name\":\"bad\",\"runner\":\"docker-compose\","
			      "\"key_provider\":\"kms\",\"storage_fs\":\"zfs\"}";
	for (size_t i = 0; i < ARRAY_SIZE(bad_kms); i++) {
		char name[64], state[400];
		struct buf out = {0};
		snprintf(name, sizeof(name), "badkms-%s", bad_kms[i].name);
		cvm_kms_port = bad_kms[i].port;
		make_cvm(name, compose, NULL, NULL, 0, state, sizeof(state));
		int before = app_key_calls();
		int rc = run_setup(name, state, &out);
		ok(rc != 0 && out_has(&out, bad_kms[i].want) && out_has(&out, "Failed to get app keys"),
		   "KMS certificate %s: boot refused with \"%s\"", bad_kms[i].name, bad_kms[i].want);
		if (rc == 0 || !out_has(&out, bad_kms[i].want))
			diag("%s", out.data ? (char *)out.data : "");
		char *keys = read_text(name, ".appkeys.json");
		ok(app_key_calls() == before && !keys,
		   "KMS certificate %s: no GetAppKey served, no keys written", bad_kms[i].name);
		free(keys);
		buf_free(&out);
	}
	cvm_kms_port = kms_port;
}

int main(void)
{
	struct err e = ERR_INIT;
	if (!ok(boot_env_init(&e) == 0, "dev PKI, PCCS and host API (%s)", e.msg))
		return tap_done();
	ok(start_kms(&e) == 0, "KMS stand-ins up (%s)", e.msg);
	ok(boot_env_start(&e) == 0, "event loop (%s)", e.msg);
	test_none();
	test_guest_api_fallback();
	test_event_log_v2();
	test_mr_config();
	test_kms();
	test_mr_config_v3();
	test_kms_server_checks();
	boot_env_cleanup();
	return tap_done();
}
