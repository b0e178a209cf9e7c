/*
 * boot_kms_test.c — full boots in simulated TDX (harness in boot_env.h)
 * against the real dstack-kms, twice: with `dev` auth, and with the real
 * auth-simple as its webhook.
 *
 * The KMS runs "in a CVM" of its own: a none-provider boot whose files our
 * guest agent serves in simulator mode on the same dev PKI; the KMS
 * auto-bootstraps for localhost. In webhook mode the KMS first authorises
 * itself: auth-simple's policy lists the mr_aggregated this test computes
 * from the KMS agent's attestation, as the KMS will.
 *
 * Each KMS: an app boots (keys arrive, every boot event present, RTMR3
 * replays, os-image-hash carries the vm_config's hash, env outside
 * allowed_envs dropped), the KMS-issued k256 signature recovers to
 * GetMeta's k256_pubkey, the agent on the result gets certificates through
 * SignCert, and a tampered .encrypted-env stops the boot. Webhook only: the
 * gateway app id comes from auth-simple, an unregistered app and a
 * registered app with another compose are denied with the policy's reason.
 *
 *     env UTIL, AGENT, KMS (dstack-kms), AUTH_SIMPLE (auth-simple)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "crypto/appkeys.h"
#include "crypto/compose.h"
#include "crypto/envcrypt.h"
#include "crypto/k256.h"

#include "boot_env.h"

#define GATEWAY_APP_ID "gw-from-auth-simple"

static const char *kms_bin, *auth_bin;
static char kms_agent_sock[400];
static char kms_mr_hex[65];

static bool port_open(uint16_t port)
{
	struct sockaddr_in a = {
	    .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool up = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (fd >= 0)
		close(fd);
	return up;
}

/* The KMS's own CVM: a none boot, its files served by our simulator agent. */
static pid_t start_kms_cvm(void)
{
	char state[400], cvm[400], p[600], q[600], log[600];
	struct buf out = {0};
	make_cvm("kmscvm",
		 "{\"manifest_version\":2,\"name\":\"dstack-kms\",\"runner\":\"docker-compose\","
		 "\"key_provider\":\"none\",\"storage_fs\":\"ext4\"}",
		 NULL, NULL, 0, state, sizeof(state));
	int rc = run_setup("kmscvm", state, &out);
	is_int(rc, 0, "KMS CVM: its own none boot");
	buf_free(&out);
	snprintf(cvm, sizeof(cvm), "%s/kmscvm/sim", dir);
	mkdir_p(cvm, 0700, NULL);
	const char *files[][2] = {{".appkeys.json", "appkeys.json"},
				  {"app-compose.json", "app-compose.json"},
				  {".sys-config.json", "sys-config.json"}};
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/kmscvm/work/%s", dir, files[i][0]);
		snprintf(q, sizeof(q), "%s/%s", cvm, files[i][1]);
		copy_file(p, q);
	}
	snprintf(log, sizeof(log), "%s/kmscvm/agent.log", dir);
	char *aargv[] = {agent_bin, "--simulator", cvm, "--simtee-dir", pki, NULL};
	pid_t agent = spawn_in(NULL, log, aargv, NULL);
	snprintf(kms_agent_sock, sizeof(kms_agent_sock), "%s/dstack.sock", cvm);
	for (int i = 0; i < 300 && !file_exists(kms_agent_sock); i++)
		usleep(50000);
	ok(file_exists(kms_agent_sock), "KMS CVM: its guest agent (simulator) is up");
	return agent;
}

/* mr_aggregated of the KMS CVM as the KMS computes it for its own
 * authorisation: from a verified attestation of its agent, runtime replay. */
static int compute_kms_mr(struct err *e)
{
	struct prpc_client c = {.base = "http://localhost", .http = {.unix_socket = kms_agent_sock}};
	_cleanup_json_ json_t *in = json_pack("{s:s}", "report_data", ""), *out = NULL;
	_cleanup_free_ uint8_t *att = NULL;
	size_t len = 0;
	struct ratls_verified r;
	struct ratls_boot_info bi;

	if (prpc_client_call_json(&c, "Attest", in, &out, e) < 0)
		return -1;
	const char *h = json_string_value(json_object_get(out, "attestation"));
	if (!h || hex_decode_alloc(h, strlen(h), &att, &len, e) < 0 ||
	    ratls_verify_bytes(boot_verifier, att, len, 0, &r, e) < 0)
		return -1;
	int rc = ratls_boot_info(&r, NULL, false, &bi, e);
	ratls_verified_free(&r);
	if (rc < 0)
		return -1;
	hex_encode(bi.app.mr_aggregated.p, 32, kms_mr_hex);
	ratls_boot_info_free(&bi);
	return 0;
}

/* ---- auth-simple ---- */

static const char allowed_compose[] =
    "{\"manifest_version\":2,\"name\":\"rk\",\"runner\":\"docker-compose\","
    "\"docker_compose_file\":\"services: {}\",\"kms_enabled\":true,\"key_provider\":\"kms\","
    "\"allowed_envs\":[\"KEEP\"],\"storage_fs\":\"zfs\"}";

static void app_identity(const char *compose, uint8_t app_id[20], char app_hex[41], char ch_hex[65])
{
	uint8_t ch[32];
	compose_hash(compose, strlen(compose), ch);
	compose_default_app_id(ch, app_id);
	hex_encode(app_id, 20, app_hex);
	hex_encode(ch, 32, ch_hex);
}

static pid_t start_auth_simple(uint16_t *port)
{
	char cfg[600], text[2048], port_env[32], path_env[700], log[600], app_hex[41], ch_hex[65];
	uint8_t app_id[20];
	app_identity(allowed_compose, app_id, app_hex, ch_hex);
	snprintf(cfg, sizeof(cfg), "%s/auth-config.json", dir);
	snprintf(text, sizeof(text),
		 "{\"gatewayAppId\":\"%s\",\"osImages\":[\"0x%s\"],"
		 "\"kms\":{\"mrAggregated\":[\"0x%s\"],\"allowAnyDevice\":true},"
		 "\"apps\":{\"0x%s\":{\"composeHashes\":[\"0x%s\"],\"allowAnyDevice\":true}}}",
		 GATEWAY_APP_ID, BOOT_OS_IMAGE_HASH, kms_mr_hex, app_hex, ch_hex);
	write_file(cfg, text);
	*port = free_port();
	snprintf(port_env, sizeof(port_env), "PORT=%u", *port);
	snprintf(path_env, sizeof(path_env), "AUTH_CONFIG_PATH=%s", cfg);
	snprintf(log, sizeof(log), "%s/auth-simple.log", dir);
	const char *env[] = {port_env, path_env, "HOST=127.0.0.1", NULL};
	char *argv[] = {(char *)auth_bin, NULL};
	pid_t pid = spawn_in(dir, log, argv, env);
	for (int i = 0; i < 100 && !port_open(*port); i++)
		usleep(100000);
	ok(port_open(*port), "auth-simple up with a policy for the KMS and one app");
	return pid;
}

/* ---- one dstack-kms ---- */

struct kms_proc {
	const char *mode;
	pid_t pid;
	char dir[400];
	uint16_t rpc;
	char url[128];
	uint8_t k256_pub[33];
};

static bool start_kms(struct kms_proc *k, const char *mode, const char *auth_toml)
{
	char toml[4096], p[600], agent_env[600], etc_env[600], log[600];
	k->mode = mode;
	snprintf(k->dir, sizeof(k->dir), "%s/kms-%s", dir, mode);
	mkdir_p(k->dir, 0700, NULL);
	k->rpc = free_port();
	uint16_t onboard = free_port();
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
	    "%s"
	    "[core.onboard]\naddress = \"127.0.0.1\"\nport = %u\nauto_bootstrap_domain = \"localhost\"\n",
	    k->rpc, pccs_port, pki, auth_toml, onboard);
	snprintf(p, sizeof(p), "%s/kms.toml", k->dir);
	write_file(p, toml);
	snprintf(agent_env, sizeof(agent_env), "DSTACK_AGENT_ADDRESS=%s", kms_agent_sock);
	snprintf(etc_env, sizeof(etc_env), "DSTACK_KMS_ETC_DIR=%s/etc", k->dir);
	const char *kenv[] = {agent_env, etc_env, NULL};
	char *kargv[] = {(char *)kms_bin, NULL};
	snprintf(log, sizeof(log), "%s/kms.log", k->dir);
	k->pid = spawn_in(k->dir, log, kargv, kenv);
	snprintf(k->url, sizeof(k->url), "https://localhost:%u/prpc", k->rpc);
	struct prpc_client c = {.base = k->url, .http = {.insecure = true, .timeout_ms = 5000}};
	json_t *meta = NULL;
	struct err e = ERR_INIT;
	for (int i = 0; i < 300 && prpc_client_call_json(&c, "GetMeta", NULL, &meta, &e) < 0; i++) {
		if (waitpid(k->pid, NULL, WNOHANG) == k->pid)
			break;
		usleep(100000);
	}
	const char *pub = json_string_value(json_object_get(meta, "k256_pubkey"));
	bool up = ok(pub && hex_decode_exact(pub, k->k256_pub, 33, &e) == 0,
		     "%s KMS: up and bootstrapped, GetMeta has its k256 key (%s)", mode, meta ? "" : e.msg);
	if (!up)
		diag_tail(log, 20);
	json_decref(meta);
	return up;
}

/* The KMS's env encryption key for `compose`'s app, and an env sealed to it. */
static bool seal_env(struct kms_proc *k, const char *compose, const char *plain, struct buf *env)
{
	uint8_t app_id[20], pk[32];
	char app_hex[41], ch_hex[65];
	app_identity(compose, app_id, app_hex, ch_hex);
	struct prpc_client c = {.base = k->url, .http = {.insecure = true, .timeout_ms = 5000}};
	_cleanup_json_ json_t *in = json_pack("{s:s}", "app_id", app_hex), *pub = NULL;
	struct err e = ERR_INIT;
	const char *pkh = NULL;
	bool got = ok(prpc_client_call_json(&c, "GetAppEnvEncryptPubKey", in, &pub, &e) == 0 &&
			  (pkh = json_string_value(json_object_get(pub, "public_key"))) &&
			  hex_decode_exact(pkh, pk, 32, &e) == 0,
		      "%s KMS: env encryption key (%s)", k->mode, e.msg);
	return got && env_envelope_encrypt(pk, plain, strlen(plain), env, &e) == 0;
}

/* The app k256 key of .appkeys.json, signed by the KMS: the signature
 * recovers to GetMeta.k256_pubkey. */
static void check_kms_signature(struct kms_proc *k, const char *name, const uint8_t app_id[20])
{
	_cleanup_free_ char *text = read_text(name, ".appkeys.json");
	_cleanup_json_ json_t *j = text ? json_loads(text, 0, NULL) : NULL;
	const char *kh = json_string_value(json_object_get(j, "k256_key"));
	const char *sh = json_string_value(json_object_get(j, "k256_signature"));
	uint8_t key[32], sig[65], pub[33], rec[33];
	struct err e = ERR_INIT;
	bool ok_ = kh && sh && hex_decode_exact(kh, key, 32, &e) == 0 &&
		   hex_decode_exact(sh, sig, 65, &e) == 0 && k256_pubkey(key, true, pub, &e) == 0;
	struct span msg = SPAN(pub, 33);
	ok(ok_ && kms_sign_recover(KMS_SIGN_PREFIX_ISSUED, app_id, 20, &msg, 1, sig, rec, &e) == 0 &&
	       memcmp(rec, k->k256_pub, 33) == 0,
	   "%s: the KMS-issued k256 signature recovers to GetMeta.k256_pubkey (%s)", name, e.msg);
}

static void boot_allowed_app(struct kms_proc *k, bool webhook)
{
	char name[64], state[400];
	struct buf out = {0}, env = {0};
	uint8_t app_id[20];
	char app_hex[41], ch_hex[65];
	app_identity(allowed_compose, app_id, app_hex, ch_hex);
	snprintf(name, sizeof(name), "app-%s", k->mode);
	cvm_kms_port = k->rpc;
	if (!seal_env(k, allowed_compose,
		      "{\"env\":[{\"key\":\"KEEP\",\"value\":\"1\"},{\"key\":\"DROP\",\"value\":\"2\"}]}",
		      &env))
		return;
	make_cvm(name, allowed_compose, NULL, env.data, env.len, state, sizeof(state));
	int rc = run_setup(name, state, &out);
	is_int(rc, 0, "%s: guest boots with keys from dstack-kms", name);
	if (rc) {
		diag("%s", out.data ? (char *)out.data : "");
		char log[600];
		snprintf(log, sizeof(log), "%s/kms.log", k->dir);
		diag_tail(log, 15);
	} else {
		check_boot_events(name, state, true, "zfs");
		char *keys = read_text(name, ".appkeys.json");
		ok(keys && strstr(keys, "\"Kms\""), "%s: .appkeys.json from the KMS", name);
		if (webhook)
			ok(keys && strstr(keys, "\"gateway_app_id\": \"" GATEWAY_APP_ID "\""),
			   "%s: gateway_app_id decided by auth-simple", name);
		free(keys);
		check_kms_signature(k, name, app_id);
		char *dot = read_text(name, ".decrypted-env");
		is_str(dot ? dot : "", "KEEP=1\n", "%s: env decrypted, DROP filtered by allowed_envs", name);
		free(dot);
		agent_quote_verifies(name, true);
	}
	buf_free(&out);

	/* The same env with one ciphertext byte flipped. */
	env.data[env.len - 20] ^= 1;
	snprintf(name, sizeof(name), "tampered-%s", k->mode);
	make_cvm(name, allowed_compose, NULL, env.data, env.len, state, sizeof(state));
	rc = run_setup(name, state, &out);
	ok(rc != 0 && out_has(&out, "Failed to decrypt env"), "%s: tampered .encrypted-env stops the boot",
	   name);
	char *dot = read_text(name, ".decrypted-env");
	ok(!dot && notified_has("boot.error", "Failed to decrypt env"),
	   "%s: no .decrypted-env, boot.error sent to the host", name);
	free(dot);
	buf_free(&out);
	buf_free(&env);
}

/* Boots auth-simple's policy denies: the reason reaches the guest's error. */
static void boot_denied_apps(struct kms_proc *k)
{
	static const char unregistered[] =
	    "{\"manifest_version\":2,\"name\":\"denied\",\"runner\":\"docker-compose\","
	    "\"key_provider\":\"kms\",\"storage_fs\":\"zfs\"}";
	static const char other_compose[] =
	    "{\"manifest_version\":2,\"name\":\"rk-v2\",\"runner\":\"docker-compose\","
	    "\"key_provider\":\"kms\",\"storage_fs\":\"zfs\"}";
	struct {
		const char *name, *compose, *reason;
		bool pin_allowed_app_id;
	} cases[] = {
	    {"denied-unregistered", unregistered, "Boot denied: app not registered", false},
	    {"denied-compose", other_compose, "Boot denied: compose hash not allowed", true},
	};
	uint8_t app_id[20];
	char app_hex[41], ch_hex[65];
	app_identity(allowed_compose, app_id, app_hex, ch_hex);
	cvm_kms_port = k->rpc;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char state[400], p[600], ii[128];
		struct buf out = {0};
		make_cvm(cases[i].name, cases[i].compose, NULL, NULL, 0, state, sizeof(state));
		if (cases[i].pin_allowed_app_id) {
			/* The host pins the registered app id; the compose is not one it allows. */
			snprintf(p, sizeof(p), "%s/%s/shared/.instance_info", dir, cases[i].name);
			snprintf(ii, sizeof(ii), "{\"app_id\":\"%s\"}", app_hex);
			write_file(p, ii);
		}
		int rc = run_setup(cases[i].name, state, &out);
		ok(rc != 0 && out_has(&out, "App not allowed") && out_has(&out, cases[i].reason),
		   "%s: boot fails with \"%s\"", cases[i].name, cases[i].reason);
		if (rc == 0 || !out_has(&out, cases[i].reason))
			diag("%s", out.data ? (char *)out.data : "");
		char *keys = read_text(cases[i].name, ".appkeys.json");
		ok(!keys && notified_has("boot.error", cases[i].reason),
		   "%s: no keys written, the denial sent to the host as boot.error", cases[i].name);
		free(keys);
		buf_free(&out);
	}
}

int main(void)
{
	struct err e = ERR_INIT;
	kms_bin = getenv("KMS");
	auth_bin = getenv("AUTH_SIMPLE");
	if (!kms_bin || !auth_bin) {
		ok(0, "KMS and AUTH_SIMPLE must be set");
		return tap_done();
	}
	if (!ok(boot_env_init(&e) == 0, "dev PKI, PCCS and host API (%s)", e.msg) ||
	    !ok(boot_env_start(&e) == 0, "event loop (%s)", e.msg))
		return tap_done();
	pid_t kms_agent = start_kms_cvm();

	struct kms_proc dev;
	if (start_kms(&dev, "dev", "[core.auth_api]\ntype = \"dev\"\n"))
		boot_allowed_app(&dev, false);
	stop_pid(dev.pid);

	if (ok(compute_kms_mr(&e) == 0, "KMS CVM: mr_aggregated from its verified attestation (%s)", e.msg)) {
		uint16_t auth_port = 0;
		pid_t auth = start_auth_simple(&auth_port);
		char auth_toml[256];
		snprintf(auth_toml, sizeof(auth_toml),
			 "[core.auth_api]\ntype = \"webhook\"\n[core.auth_api.webhook]\nurl = "
			 "\"http://127.0.0.1:%u\"\n",
			 auth_port);
		struct kms_proc wh;
		if (start_kms(&wh, "webhook", auth_toml)) {
			boot_allowed_app(&wh, true);
			boot_denied_apps(&wh);
		}
		stop_pid(wh.pid);
		stop_pid(auth);
	}
	stop_pid(kms_agent);
	boot_env_cleanup();
	return tap_done();
}
