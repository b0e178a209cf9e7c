/*
 * boot_test.c — simulated CVM boots with `dstack-util setup` as a real
 * process on the simulated TDX, then the guest agent on the result.
 *
 *   none provider: keys made locally, RTMR3 replays from the runtime event
 *     log, boot order checked, host notifications received, the agent's
 *     quotes verify with the production verifier (dev root CA).
 *   KMS provider: against a KMS stand-in in this process (the dstack-kms
 *     program is not merged yet) built from the real pieces — lib/ratls
 *     certificates and verifier, lib/crypto key derivation, simulated-TDX
 *     attestation of its RPC certificate, collateral served PCCS-style —
 *     so the guest's RA-TLS client, GetAppKey, env decryption with
 *     allowed_envs and the tampered-env refusal run for real.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/ssl.h>

#include "agent_rpc.pb-c.h"
#include "attest/appinfo.h"
#include "attest/runtime_events.h"
#include "codec/pem.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/hex.h"
#include "core/tap.h"
#include "crypto/appkeys.h"
#include "crypto/compose.h"
#include "crypto/ecx.h"
#include "crypto/envcrypt.h"
#include "crypto/kdf.h"
#include "google/protobuf/empty.pb-c.h"
#include "http/client.h"
#include "http/server.h"
#include "kms_rpc.pb-c.h"
#include "prpc/client.h"
#include "prpc/json.h"
#include "prpc/server.h"
#include "ratls/cert.h"
#include "ratls/csr.h"
#include "ratls/ext.h"
#include "ratls/verify.h"
#include "rtevent.h"
#include "simtee/pki.h"
#include "simtee/serve.h"
#include "simtee/td.h"

static char dir[256], pki[300], util[512], agent_bin[512];
static uint16_t pccs_port, kms_port;
static char notify_sock[400];

/* ---- in-process servers: PCCS, host API (Notify), KMS stand-in ---- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct buf notified; /* "event\n" lines */

static void on_notify(struct http_request *req, void *arg)
{
	size_t n;
	const uint8_t *b = http_req_body(req, &n);
	json_t *j = json_loadb((const char *)b, n, 0, NULL);
	pthread_mutex_lock(&mu);
	buf_printf(&notified, "%s\n", json_string_value(json_object_get(j, "event")));
	pthread_mutex_unlock(&mu);
	json_decref(j);
	http_respond(req, 200, "application/json", "null", 4);
}

struct kms {
	EVP_PKEY *root_key, *tmp_key, *rpc_key;
	X509 *root, *tmp, *rpc;
	uint8_t root_scalar[32], root_k256[32];
	struct ratls_verifier *verifier;
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
	if (ratls_verify_peer_cert(kms.verifier, peer, 0, &r, e) < 0)
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
		pthread_mutex_lock(&mu);
		kms.app_key_calls++;
		pthread_mutex_unlock(&mu);
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
	    ratls_verify_bytes(kms.verifier, csr.attestation, csr.attestation_len, 0, &r, e) < 0) {
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

static struct event_base *base;
static struct http_server *srv_pccs, *srv_kms, *srv_host;

static void *loop_thread(void *arg)
{
	event_base_dispatch(base);
	return NULL;
}

/* The KMS's own RA-TLS certificate: attested by a second simulated TD. */
static int setup_kms(struct err *e)
{
	char state[400], log[400], lock[400];
	uint8_t rd[64];
	struct tee *t = NULL;
	struct attestation att;
	struct buf ab = {0};
	struct ratls_verifier_opts vo = {.root_ca_path = NULL};
	char root_path[400], col[400];
	uint8_t *colj = NULL;
	size_t coll = 0;

	snprintf(state, sizeof(state), "%s/kms-td.json", dir);
	snprintf(log, sizeof(log), "%s/kms-none.log", dir);
	snprintf(lock, sizeof(lock), "%s/kms.lock", dir);
	kms.root_key = ratls_key_generate(e);
	kms.tmp_key = ratls_key_generate(e);
	kms.rpc_key = ratls_key_generate(e);
	kms.root = ratls_cert_root_ca(kms.root_key, e);
	kms.tmp = ratls_cert_temp_ca(kms.tmp_key, e);
	if (!kms.root || !kms.tmp || p256_pkey_scalar(kms.root_key, kms.root_scalar, e) < 0)
		return -1;
	memset(kms.root_k256, 0x42, 32);
	if (simtee_td_create(state, NULL, e) < 0 || simtee_tee_open(&t, pki, state, e) < 0 ||
	    ratls_key_report_data(kms.rpc_key, rd, e) < 0 ||
	    rtevent_attestation(t, log, lock, "", rd, &att, e) < 0)
		return -1;
	tee_close(t);
	if (attestation_strip_for_cert(&att, e) < 0 || attestation_encode(&att, &ab, e) < 0)
		return -1;
	attestation_free(&att);
	kms.rpc = ratls_cert_kms_rpc(kms.rpc_key, "localhost", ab.data, ab.len, kms.root, kms.root_key, e);
	buf_free(&ab);
	if (!kms.rpc)
		return -1;
	snprintf(root_path, sizeof(root_path), "%s/root_ca.pem", pki);
	snprintf(col, sizeof(col), "%s/collateral.json", pki);
	if (file_read_all(col, 1 << 20, &colj, &coll, e) < 0)
		return -1;
	vo.root_ca_path = root_path;
	vo.insecure_allow_external_trust_anchors = true;
	vo.collateral_json = (const char *)colj;
	vo.collateral_json_len = coll;
	int rc = ratls_verifier_new(&kms.verifier, &vo, e);
	free(colj);
	return rc;
}

static int start_servers(struct err *e)
{
	struct http_listen_spec spec;
	SSL_CTX *ctx;

	base = event_base_new();
	srv_pccs = http_server_new(base, NULL, e);
	srv_kms = http_server_new(base, NULL, e);
	srv_host = http_server_new(base, NULL, e);
	if (!srv_pccs || !srv_kms || !srv_host)
		return -1;
	if (simtee_pccs_attach(srv_pccs, pki, e) < 0 || http_listen_parse("tcp:127.0.0.1:0", &spec, e) < 0 ||
	    http_server_listen(srv_pccs, &spec, NULL, &pccs_port, e) < 0)
		return -1;
	http_server_route(srv_host, "POST", "/api/Notify", false, on_notify, NULL);
	snprintf(notify_sock, sizeof(notify_sock), "%s/host.sock", dir);
	if (http_listen_spec_set(&spec, HTTP_LISTEN_UNIX, NULL, 0, notify_sock, 0, e) < 0 ||
	    http_server_listen(srv_host, &spec, NULL, NULL, e) < 0)
		return -1;
	if (setup_kms(e) < 0)
		return -1;
	ctx = SSL_CTX_new(TLS_server_method());
	SSL_CTX_use_certificate(ctx, kms.rpc);
	SSL_CTX_add1_chain_cert(ctx, kms.root);
	SSL_CTX_use_PrivateKey(ctx, kms.rpc_key);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any);
	const struct prpc_service *svcs[] = {&kms_svc};
	if (prpc_mount(srv_kms, "/prpc/", svcs, 1, e) < 0 ||
	    http_listen_parse("tcp:127.0.0.1:0", &spec, e) < 0 ||
	    http_server_listen(srv_kms, &spec, ctx, &kms_port, e) < 0)
		return -1;
	SSL_CTX_free(ctx);
	pthread_t th;
	return pthread_create(&th, NULL, loop_thread, NULL) == 0 ? 0 : err_set(e, "thread");
}

/* ---- helpers ---- */

static uint16_t free_port(void)
{
	struct http_listen_spec spec;
	uint16_t port = 0;
	http_listen_parse("tcp:127.0.0.1:0", &spec, NULL);
	int fd = http_listen_socket(&spec, &port, NULL);
	close(fd);
	return port;
}

static void write_file(const char *path, const char *text)
{
	file_write_atomic(path, text, strlen(text), 0644, NULL);
}

static int run_setup(const char *name, const char *state, struct buf *output)
{
	char work[400], shared[400], rt[400], out[400], pccs[64];
	snprintf(work, sizeof(work), "%s/%s/work", dir, name);
	snprintf(shared, sizeof(shared), "%s/%s/shared", dir, name);
	snprintf(rt, sizeof(rt), "%s/%s/rt", dir, name);
	snprintf(out, sizeof(out), "%s/%s/setup.log", dir, name);
	snprintf(pccs, sizeof(pccs), "http://127.0.0.1:%u", pccs_port);
	char root[400];
	snprintf(root, sizeof(root), "%s/root_ca.pem", pki);
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 1);
		dup2(fd, 2);
		execl(util, util, "setup", "--work-dir", work, "--host-shared", shared, "--tee", "simtee",
		      "--simtee-dir", pki, "--simtee-state", state, "--runtime-events-dir", rt, "--pccs-url",
		      pccs, "--dev-root-ca", root, (char *)NULL);
		_exit(127);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	uint8_t *d = NULL;
	size_t n = 0;
	if (file_read_all(out, 1 << 20, &d, &n, NULL) == 0) {
		buf_append(output, d, n);
		free(d);
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void make_cvm(const char *name, const char *compose, const char *sys_extra, const uint8_t *env,
		     size_t env_len, char *state, size_t state_size)
{
	char p[400];
	snprintf(p, sizeof(p), "%s/%s/shared", dir, name);
	mkdir_p(p, 0755, NULL);
	snprintf(p, sizeof(p), "%s/%s/shared/app-compose.json", dir, name);
	write_file(p, compose);
	char sys[2048];
	snprintf(sys, sizeof(sys),
		 "{\"kms_urls\":[\"https://localhost:%u\"],\"gateway_urls\":[],\"host_api_url\":\"unix:%s\","
		 "\"vm_config\":\"{\\\"os_image_hash\\\":\\\"%s\\\"}\"%s}",
		 kms_port, notify_sock, "1111111111111111111111111111111111111111111111111111111111111111",
		 sys_extra ? sys_extra : "");
	snprintf(p, sizeof(p), "%s/%s/shared/.sys-config.json", dir, name);
	write_file(p, sys);
	if (env) {
		snprintf(p, sizeof(p), "%s/%s/shared/.encrypted-env", dir, name);
		file_write_atomic(p, env, env_len, 0600, NULL);
	}
	snprintf(state, state_size, "%s/%s/td.json", dir, name);
	simtee_td_create(state, NULL, NULL);
}

/* RTMR3 of the TD equals the replay of the runtime event log. */
static void check_rtmr3(const char *name, const char *state)
{
	char p[400];
	struct simtee_td_state st;
	struct event_log log = EVENT_LOG_INIT;
	uint8_t mr[48];
	struct err e = ERR_INIT;
	snprintf(p, sizeof(p), "%s/%s/rt/runtime_events.log", dir, name);
	ok(rtevent_read(p, &log, &e) == 0 && log.n >= 8, "%s: runtime event log read (%zu events)", name,
	   log.n);
	ok(event_log_replay_imr(&log, 3, NULL, mr, &e) == 0 && simtee_td_read(state, &st, &e) == 0 &&
	       memcmp(mr, st.rtmr[3], 48) == 0,
	   "%s: RTMR3 replays from the runtime events", name);
	ok(runtime_events_check_boot_order(&log, &e) == 0, "%s: boot order (%s)", name, e.msg);
	event_log_free(&log);
}

static char *read_text(const char *name, const char *file)
{
	char p[400];
	uint8_t *d = NULL;
	size_t n;
	snprintf(p, sizeof(p), "%s/%s/work/%s", dir, name, file);
	if (file_read_all(p, 1 << 20, &d, &n, NULL) < 0)
		return NULL;
	return (char *)d;
}

static bool notified_has(const char *ev)
{
	pthread_mutex_lock(&mu);
	bool r = notified.data && strstr((const char *)notified.data, ev) != NULL;
	pthread_mutex_unlock(&mu);
	return r;
}

/* Start the agent on a booted work dir; check a quote verifies. */
static void agent_quote_verifies(const char *name)
{
	char conf[400], dsock[400], tsock[400], gsock[400], log[400];
	snprintf(conf, sizeof(conf), "%s/%s/work/agent.json", dir, name);
	snprintf(dsock, sizeof(dsock), "%s/%s/d.sock", dir, name);
	snprintf(tsock, sizeof(tsock), "%s/%s/t.sock", dir, name);
	snprintf(gsock, sizeof(gsock), "unix:%s/%s/g.sock", dir, name);
	uint16_t wport = free_port();
	char ext[64];
	snprintf(ext, sizeof(ext), "tcp:127.0.0.1:%u", wport);
	snprintf(log, sizeof(log), "%s/%s/agent.log", dir, name);
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 1);
		dup2(fd, 2);
		execl(agent_bin, agent_bin, "-c", conf, "--dstack-sock", dsock, "--tappd-sock", tsock,
		      "--external", ext, "--guest-api", gsock, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200 && !file_exists(dsock); i++)
		usleep(50000);
	struct prpc_client c = {.base = "http://localhost", .http = {.unix_socket = dsock}};
	struct err e = ERR_INIT;
	json_t *out = NULL;
	json_t *in = json_pack("{s:s}", "report_data", "cafe");
	ok(prpc_client_call_json(&c, "Attest", in, &out, &e) == 0, "%s: agent Attest (%s)", name, e.msg);
	const char *hx = json_string_value(json_object_get(out, "attestation"));
	uint8_t *att = NULL;
	size_t al = 0;
	struct ratls_verified r;
	ok(hx && hex_decode_alloc(hx, strlen(hx), &att, &al, &e) == 0, "%s: attestation hex", name);
	int vr = att ? ratls_verify_bytes(kms.verifier, att, al, 0, &r, &e) : -1;
	ok(vr == 0, "%s: agent attestation verifies with the dev root (%s)", name, e.msg);
	if (vr == 0) {
		ok(r.att.report_data[0] == 0xca && r.att.report_data[1] == 0xfe, "%s: report data bound",
		   name);
		ratls_verified_free(&r);
	}
	free(att);
	json_decref(in);
	json_decref(out);
	out = NULL;
	ok(prpc_client_call_json(&c, "Info", NULL, &out, &e) == 0, "%s: agent Info", name);
	const char *kpi = json_string_value(json_object_get(out, "key_provider_info"));
	ok(kpi && strstr(kpi, "\"name\""), "%s: key_provider_info %s", name, kpi ? kpi : "");
	json_decref(out);
	out = NULL;

	/* GetTlsKey: local app CA (none) or the KMS's SignCert (kms). */
	bool via_kms = strcmp(name, "kms") == 0 || strcmp(name, "realkms") == 0;
	in = json_pack("{s:s,s:[s],s:b}", "subject", "app.test", "alt_names", "app.test", "usage_ra_tls", 1);
	ok(prpc_client_call_json(&c, "GetTlsKey", in, &out, &e) == 0, "%s: GetTlsKey (%s)", name, e.msg);
	json_t *chain = json_object_get(out, "certificate_chain");
	is_int((int)json_array_size(chain), via_kms ? 3 : 2, "%s: chain length", name);
	if (json_array_size(chain) >= 2) {
		const char *l = json_string_value(json_array_get(chain, 0));
		const char *ca = json_string_value(json_array_get(chain, 1));
		X509 *lx = pem_read_cert(l, strlen(l), NULL), *cx = pem_read_cert(ca, strlen(ca), NULL);
		ok(lx && cx && X509_verify(lx, X509_get0_pubkey(cx)) == 1, "%s: leaf signed by the app CA",
		   name);
		if (via_kms && json_array_size(chain) == 3) {
			const char *rt = json_string_value(json_array_get(chain, 2));
			X509 *rx = pem_read_cert(rt, strlen(rt), NULL);
			ok(rx && X509_verify(cx, X509_get0_pubkey(rx)) == 1 &&
			       X509_verify(rx, X509_get0_pubkey(rx)) == 1,
			   "%s: app CA signed by the (self-signed) KMS root", name);
			X509_free(rx);
		}
		X509_free(lx);
		X509_free(cx);
	}
	json_decref(in);
	json_decref(out);
	out = NULL;

	/* GetQuote on TDX(-like) platforms leaves `attestation` out. */
	in = json_pack("{s:s}", "report_data", "01");
	ok(prpc_client_call_json(&c, "GetQuote", in, &out, &e) == 0 && json_object_get(out, "quote") &&
	       !json_object_get(out, "attestation"),
	   "%s: GetQuote without an attestation field", name);
	json_decref(in);
	json_decref(out);
	out = NULL;

	/* Worker on TCP. */
	char wbase[64];
	snprintf(wbase, sizeof(wbase), "http://127.0.0.1:%u/prpc", wport);
	struct prpc_client w = {.base = wbase};
	in = json_pack("{s:s}", "algorithm", "ed25519");
	ok(prpc_client_call_json(&w, "GetAttestationForAppKey", in, &out, &e) == 0,
	   "%s: Worker attestation (%s)", name, e.msg);
	const char *rdh = json_string_value(json_object_get(out, "report_data"));
	ok(rdh && strncmp(rdh, "646970313a3a656432353531392d706b3a", 34) == 0,
	   "%s: dip1::ed25519-pk: report data", name);
	json_decref(in);
	json_decref(out);
	out = NULL;
	ok(prpc_client_call_json(&w, "Worker.Info", NULL, &out, &e) == 0 &&
	       strlen(json_string_value(json_object_get(out, "tcb_info"))) > 10,
	   "%s: Worker.Info shows tcb_info (public_tcbinfo default)", name);
	json_decref(out);
	out = NULL;
	struct http_client_opts ho = {0};
	struct http_response resp = {0};
	char url[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/", wport);
	ok(http_fetch(&ho, "GET", url, NULL, NULL, 0, &resp, &e) == 0 && resp.status == 200 &&
	       strstr((char *)resp.body.data, "<h1>"),
	   "%s: dashboard", name);
	char *ver = http_response_header(&resp, "X-App-Version");
	ok(ver && strcmp(ver, "0.6.0") == 0, "%s: X-App-Version", name);
	free(ver);
	http_response_free(&resp);

	/* GuestApi on its unix socket. */
	struct http_client_opts go = {.unix_socket = gsock + 5};
	ok(http_fetch(&go, "POST", "http://localhost/api/SysInfo", NULL, "{}", 2, &resp, &e) == 0 &&
	       resp.status == 200 && strstr((char *)resp.body.data, "num_cpus"),
	   "%s: GuestApi SysInfo", name);
	http_response_free(&resp);
	ok(http_fetch(&go, "POST", "http://localhost/api/Info", NULL, "{}", 2, &resp, &e) == 0 &&
	       resp.status == 200 && strstr((char *)resp.body.data, "\"app_id\""),
	   "%s: GuestApi Info", name);
	http_response_free(&resp);
	ok(http_fetch(&go, "POST", "http://localhost/api/Shutdown", NULL, "{}", 2, &resp, &e) == 0 &&
	       resp.status == 200,
	   "%s: GuestApi Shutdown", name);
	http_response_free(&resp);
	int st = 0, waited = 0;
	for (int i = 0; i < 100 && !(waited = waitpid(pid, &st, WNOHANG)); i++)
		usleep(100000);
	ok(waited == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: agent exits cleanly after Shutdown",
	   name);
	if (waited != pid) {
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
	}
}

/* ---- tests ---- */

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
	check_rtmr3("none", state);
	char *keys = read_text("none", ".appkeys.json");
	ok(keys && strstr(keys, "\"None\""), "none: .appkeys.json with the None provider");
	free(keys);
	char *ii = read_text("none", ".instance_info");
	ok(ii && strstr(ii, "instance_id_seed"), "none: instance info written");
	free(ii);
	ok(out.data && strstr((char *)out.data, "disk encryption skipped: no data device"),
	   "none: disk skip logged");
	ok(notified_has("boot.progress") && notified_has("instance.info"), "none: host notified");
	agent_quote_verifies("none");
	buf_free(&out);
}

/* MR_CONFIG_ID: the TD must have been configured for this app. */
static void test_mr_config(void)
{
	const char *compose = "{\"manifest_version\":2,\"name\":\"m\",\"runner\":\"docker-compose\","
			      "\"key_provider\":\"none\",\"storage_fs\":\"ext4\"}";
	uint8_t ch[32], app_id[20], id[48], other[32];
	char state[400];
	struct buf out = {0};

	compose_hash(compose, strlen(compose), ch);
	compose_default_app_id(ch, app_id);
	mr_config_id_v2(ch, app_id, KP_NONE, NULL, 0, id);
	make_cvm("mrcfg-ok", compose, NULL, NULL, 0, state, sizeof(state));
	struct simtee_td_init init = {.mr_config_id = id};
	simtee_td_create(state, &init, NULL);
	is_int(run_setup("mrcfg-ok", state, &out), 0, "MR_CONFIG_ID v2 for this app and provider accepted");
	buf_free(&out);
	memset(other, 0x77, sizeof(other));
	mr_config_id_v1(other, id);
	make_cvm("mrcfg-bad", compose, NULL, NULL, 0, state, sizeof(state));
	simtee_td_create(state, &init, NULL);
	int rc = run_setup("mrcfg-bad", state, &out);
	ok(rc != 0 && out.data && strstr((char *)out.data, "MR_CONFIG_ID mismatch"),
	   "MR_CONFIG_ID of another compose refused");
	buf_free(&out);
}

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
	ok(kms.app_key_calls == 1, "kms: GetAppKey served once over mutual RA-TLS");
	check_rtmr3("kms", state);
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
	char p[400];
	snprintf(p, sizeof(p), "%s/kms/rt/runtime_events.log", dir);
	uint8_t *log = NULL;
	size_t ln;
	ok(file_read_all(p, 1 << 20, &log, &ln, NULL) == 0 && strstr((char *)log, "os-image-hash") &&
	       strstr((char *)log, "key-provider"),
	   "kms: os-image-hash and key-provider events");
	free(log);
	agent_quote_verifies("kms");
	buf_free(&out);

	/* Tampered env: one flipped ciphertext byte stops the boot. */
	env.data[env.len - 20] ^= 1;
	make_cvm("tampered", compose, NULL, env.data, env.len, state, sizeof(state));
	rc = run_setup("tampered", state, &out);
	ok(rc != 0, "tampered: setup fails");
	ok(out.data && strstr((char *)out.data, "Failed to decrypt env"), "tampered: clear error");
	ok(notified_has("boot.error"), "tampered: boot.error sent to the host");
	char *none = read_text("tampered", ".decrypted-env");
	ok(none == NULL, "tampered: no .decrypted-env written");
	free(none);
	buf_free(&out);
	buf_free(&env);

	/* key_provider_id pin that does not match the KMS root. */
	make_cvm(
	    "pinned",
	    "{\"manifest_version\":2,\"name\":\"p\",\"runner\":\"docker-compose\",\"key_provider\":\"kms\","
	    "\"key_provider_id\":\"00ff\"}",
	    NULL, NULL, 0, state, sizeof(state));
	rc = run_setup("pinned", state, &out);
	ok(rc != 0 && out.data && strstr((char *)out.data, "key provider id mismatch"),
	   "pinned: wrong KMS refused");
	buf_free(&out);

	make_cvm("local", "{\"manifest_version\":2,\"name\":\"l\",\"key_provider\":\"local\"}", NULL, NULL, 0,
		 state, sizeof(state));
	rc = run_setup("local", state, &out);
	ok(rc != 0 && out.data && strstr((char *)out.data, "not implemented"),
	   "local: clear not-implemented error");
	buf_free(&out);
}

/*
 * The real dstack-kms (when built): it runs "in a CVM" whose guest agent is
 * ours in simulator mode (same dev PKI), auto-bootstraps for localhost, and
 * a guest boots against it with the KMS provider.
 */
static pid_t spawn_in(const char *cwd, const char *log, char *const argv[], const char *const *env)
{
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		dup2(fd, 1);
		dup2(fd, 2);
		if (cwd && chdir(cwd) < 0)
			_exit(126);
		for (size_t i = 0; env && env[i]; i++)
			putenv((char *)env[i]);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static void copy_file(const char *from, const char *to)
{
	uint8_t *d = NULL;
	size_t n = 0;
	if (file_read_all(from, 1 << 24, &d, &n, NULL) == 0)
		file_write_atomic(to, d, n, 0600, NULL);
	free(d);
}

static void test_real_kms(const char *kms_bin)
{
	char kdir[400], cvm[400], p[600], q[600], log[600], agent_env[600], etc_env[600];
	char *kargv[] = {(char *)kms_bin, NULL};
	snprintf(kdir, sizeof(kdir), "%s/rkms", dir);
	snprintf(cvm, sizeof(cvm), "%s/rkms/cvm", dir);
	mkdir_p(cvm, 0700, NULL);
	mkdir_p(kdir, 0700, NULL);
	/* The KMS's own CVM: the files of the "none" boot, served by our agent. */
	const char *files[][2] = {{".appkeys.json", "appkeys.json"},
				  {"app-compose.json", "app-compose.json"},
				  {".sys-config.json", "sys-config.json"}};
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/none/work/%s", dir, files[i][0]);
		snprintf(q, sizeof(q), "%s/%s", cvm, files[i][1]);
		copy_file(p, q);
	}
	snprintf(log, sizeof(log), "%s/agent.log", kdir);
	char *aargv[] = {agent_bin, "--simulator", cvm, "--simtee-dir", pki, NULL};
	pid_t agent = spawn_in(NULL, log, aargv, NULL);
	snprintf(p, sizeof(p), "%s/dstack.sock", cvm);
	for (int i = 0; i < 300 && !file_exists(p); i++)
		usleep(50000);
	ok(file_exists(p), "real KMS: its guest agent (simulator) is up");

	uint16_t rpc = free_port(), onboard = free_port();
	char toml[2048];
	snprintf(
	    toml, sizeof(toml),
	    "[rpc]\naddress = \"127.0.0.1\"\nport = %u\n"
	    "[rpc.tls]\nkey = \"certs/rpc.key\"\ncerts = \"certs/rpc.crt\"\n"
	    "[rpc.tls.mutual]\nca_certs = \"certs/tmp-ca.crt\"\n"
	    "[core]\ncert_dir = \"certs\"\n"
	    "[core.attestation]\ninsecure_allow_external_trust_anchors = true\n"
	    "[core.attestation.urls]\npccs = \"http://127.0.0.1:%u\"\n"
	    "[core.attestation.root_ca]\ntdx = \"%s/root_ca.pem\"\n"
	    "[core.image]\nverify = false\n"
	    "[core.auth_api]\ntype = \"dev\"\n"
	    "[core.onboard]\naddress = \"127.0.0.1\"\nport = %u\nauto_bootstrap_domain = \"localhost\"\n",
	    rpc, pccs_port, pki, onboard);
	snprintf(q, sizeof(q), "%s/kms.toml", kdir);
	write_file(q, toml);
	snprintf(agent_env, sizeof(agent_env), "DSTACK_AGENT_ADDRESS=%s", p);
	snprintf(etc_env, sizeof(etc_env), "DSTACK_KMS_ETC_DIR=%s/etc", kdir);
	const char *kenv[] = {agent_env, etc_env, NULL};
	snprintf(log, sizeof(log), "%s/kms.log", kdir);
	pid_t kms_pid = spawn_in(kdir, log, kargv, kenv);
	char url[128];
	snprintf(url, sizeof(url), "https://localhost:%u/prpc", rpc);
	struct prpc_client c = {.base = url, .http = {.insecure = true, .timeout_ms = 5000}};
	json_t *meta = NULL;
	struct err e = ERR_INIT;
	for (int i = 0; i < 200 && prpc_client_call_json(&c, "GetMeta", NULL, &meta, &e) < 0; i++)
		usleep(100000);
	ok(meta != NULL, "real KMS: up and bootstrapped (%s)", meta ? "" : e.msg);
	json_decref(meta);

	const char *compose =
	    "{\"manifest_version\":2,\"name\":\"rk\",\"runner\":\"docker-compose\","
	    "\"docker_compose_file\":\"services: {}\",\"kms_enabled\":true,\"key_provider\":\"kms\","
	    "\"allowed_envs\":[\"KEEP\"],\"storage_fs\":\"zfs\"}";
	char state[400];
	struct buf out = {0}, env = {0};
	uint8_t ch[32], app_id[20], pk[32];
	char app_hex[41];
	compose_hash(compose, strlen(compose), ch);
	compose_default_app_id(ch, app_id);
	hex_encode(app_id, 20, app_hex);
	json_t *in = json_pack("{s:s}", "app_id", app_hex), *pub = NULL;
	err_clear(&e);
	const char *pkh = NULL;
	ok(prpc_client_call_json(&c, "GetAppEnvEncryptPubKey", in, &pub, &e) == 0 &&
	       (pkh = json_string_value(json_object_get(pub, "public_key"))) &&
	       hex_decode_exact(pkh, pk, 32, &e) == 0,
	   "real KMS: env encryption key (%s)", e.msg);
	json_decref(in);
	json_decref(pub);
	const char *plain =
	    "{\"env\":[{\"key\":\"KEEP\",\"value\":\"1\"},{\"key\":\"DROP\",\"value\":\"2\"}]}";
	env_envelope_encrypt(pk, plain, strlen(plain), &env, NULL);
	make_cvm("realkms", compose, NULL, env.data, env.len, state, sizeof(state));
	buf_free(&env);
	/* Point this CVM at the real KMS. */
	char sys[1024];
	snprintf(sys, sizeof(sys),
		 "{\"kms_urls\":[\"https://localhost:%u\"],\"host_api_url\":\"unix:%s\","
		 "\"vm_config\":\"{\\\"os_image_hash\\\":\\\"%s\\\"}\"}",
		 rpc, notify_sock, "1111111111111111111111111111111111111111111111111111111111111111");
	snprintf(q, sizeof(q), "%s/realkms/shared/.sys-config.json", dir);
	write_file(q, sys);
	int rc = run_setup("realkms", state, &out);
	is_int(rc, 0, "real KMS: guest boots with keys from dstack-kms");
	if (rc) {
		diag("%s", out.data ? (char *)out.data : "");
		snprintf(q, sizeof(q), "tail -15 %s/kms.log | sed 's/^/# kms: /' >&2", kdir);
		if (system(q) != 0)
			diag("no kms log");
	} else {
		check_rtmr3("realkms", state);
		char *keys = read_text("realkms", ".appkeys.json");
		ok(keys && strstr(keys, "\"Kms\""), "real KMS: .appkeys.json from the KMS");
		free(keys);
		char *dot = read_text("realkms", ".decrypted-env");
		is_str(dot ? dot : "", "KEEP=1\n", "real KMS: env decrypted, DROP filtered by allowed_envs");
		free(dot);
		agent_quote_verifies("realkms");
	}
	buf_free(&out);
	kill(kms_pid, SIGTERM);
	waitpid(kms_pid, NULL, 0);
	kill(agent, SIGTERM);
	waitpid(agent, NULL, 0);
}

int main(void)
{
	struct err e = ERR_INIT;
	const char *u = getenv("UTIL"), *a = getenv("AGENT");
	if (!u || !a) {
		ok(0, "UTIL and AGENT must be set");
		return tap_done();
	}
	snprintf(util, sizeof(util), "%s", u);
	snprintf(agent_bin, sizeof(agent_bin), "%s", a);
	snprintf(dir, sizeof(dir), "/tmp/guest-boot-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	snprintf(pki, sizeof(pki), "%s/pki", dir);
	struct simtee_pki_opts po = {.seed = (const uint8_t *)"boot-test", .seed_len = 9};
	ok(simtee_pki_init(pki, &po, &e) == 0, "dev PKI (%s)", e.msg);
	ok(start_servers(&e) == 0, "PCCS, host API and KMS stand-in up (%s)", e.msg);
	test_none();
	test_mr_config();
	test_kms();
	const char *kms_bin = getenv("KMS");
	if (kms_bin && *kms_bin && access(kms_bin, X_OK) == 0)
		test_real_kms(kms_bin);
	else
		diag("dstack-kms not built here: real-KMS boot not run");
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		diag("cleanup failed");
	return tap_done();
}
