/*
 * setup.c — the boot flow of a dstack CVM (guest.md §5), minus mounts:
 *
 *   a. copy the host-shared files into the work dir with size caps
 *   b. pin the runtime-event version, choose the key provider
 *   c. runtime events system-preparing … boot-mr-done (RTMR3)
 *   d. app keys: KMS over RA-TLS (kms_fetch.c) or a random local seed
 *   e. MR_CONFIG_ID and key_provider_id checks, key-provider event,
 *      .appkeys.json, instance info to the host
 *   f. storage-fs event (disk encryption needs a data device; skipped
 *      with a logged reason when there is none)
 *   g. data disk (disk.c): LUKS2 with the disk key, ext4 or ZFS, mounted
 *   h. system-ready
 *   i. env decryption with allowed_envs → .decrypted-env(.json), agent.json
 *   j. gateway registration when the compose enables it (gateway_setup.c):
 *      KMS-issued client certificate, RegisterCvm, WireGuard up
 *
 * Every failure is reported to the host as boot.error and stops the boot,
 * except a failed gateway registration, which (as in the reference) is
 * logged and reported as boot.progress unless gateway_required is set.
 */
#include "setup.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "appkeys_file.h"
#include "attest/runtime_events.h"
#include "attest/td_quote.h"
#include "codec/jcs.h"
#include "codec/pem.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/hex.h"
#include "core/log.h"
#include "core/mem.h"
#include "crypto/appkeys.h"
#include "crypto/compose.h"
#include "crypto/envcrypt.h"
#include "crypto/envlist.h"
#include "crypto/hash.h"
#include "crypto/kdf.h"
#include "disk.h"
#include "gateway_setup.h"
#include "host_notify.h"
#include "kms_fetch.h"
#include "ratls/cert.h"
#include "rtevent.h"

#define MiB (1024u * 1024)
#define SETUP_GUEST_API_FALLBACK "unix:/var/run/dstack/guest-api.sock"

static const struct shared_file {
	const char *name;
	size_t cap;
	bool required;
	mode_t mode;
} shared_files[] = {
    {"app-compose.json", 50 * MiB, true, 0644}, {".sys-config.json", 32 * 1024, true, 0644},
    {".instance_info", 10 * 1024, false, 0600}, {".encrypted-env", 256 * 1024, false, 0600},
    {".user-config", 50 * MiB, false, 0600},
};

struct boot {
	const struct setup_opts *o;
	struct tee *tee;
	char rt_log[512], rt_lock[512];
	struct rtevent_log rl;
	uint8_t *compose;
	size_t compose_len;
	json_t *app; /* app-compose */
	json_t *sys; /* sys-config */
	const char *host_api;
	const char *vm_config;
	enum key_provider_kind kp;
	uint8_t compose_hash[32], app_id[20], instance_id[20], seed[20];
	bool has_instance_id;
	struct app_keys keys;
	uint8_t *kp_id;
	size_t kp_id_len;
	uint8_t *os_image_hash; /* as the KMS returned it (any length) */
	size_t os_image_hash_len;
};

static void path_join(char *out, size_t n, const char *dir, const char *name)
{
	snprintf(out, n, "%s/%s", dir, name);
}

static int emit(struct boot *b, const char *name, const void *p, size_t n, struct err *e)
{
	log_info("runtime event %s (%zu bytes)", name, n);
	return rtevent_emit(b->tee, &b->rl, name, p, n, e);
}

static void progress(struct boot *b, const char *msg)
{
	log_info("boot: %s", msg);
	host_notify_soft(b->host_api, "boot.progress", msg);
}

static void disk_progress(void *b, const char *msg)
{
	progress(b, msg);
}

/* a. */
static int copy_shared(struct boot *b, struct err *e)
{
	for (size_t i = 0; i < ARRAY_SIZE(shared_files); i++) {
		const struct shared_file *f = &shared_files[i];
		char src[1024], dst[1024];
		uint8_t *d = NULL;
		size_t n = 0;
		path_join(src, sizeof(src), b->o->host_shared, f->name);
		path_join(dst, sizeof(dst), b->o->work_dir, f->name);
		if (!file_exists(src)) {
			if (f->required)
				return err_set(e, "host-shared file %s is missing", f->name);
			continue;
		}
		if (file_read_all(src, f->cap, &d, &n, e) < 0)
			return err_wrap(e, "host-shared %s (limit %zu bytes)", f->name, f->cap);
		int rc = file_write_atomic(dst, d, n, f->mode, e);
		secure_zero(d, n);
		free(d);
		if (rc < 0)
			return -1;
	}
	return 0;
}

static int load_json(const char *dir, const char *name, size_t cap, json_t **out, uint8_t **raw,
		     size_t *raw_len, struct err *e)
{
	char p[1024];
	uint8_t *d = NULL;
	size_t n = 0;
	json_error_t je;
	path_join(p, sizeof(p), dir, name);
	if (file_read_all(p, cap, &d, &n, e) < 0)
		return -1;
	*out = json_loadb((const char *)d, n, 0, &je);
	if (!json_is_object(*out)) {
		free(d);
		return err_set(e, "%s: not a JSON object (line %d: %s)", name, je.line, je.text);
	}
	if (raw) {
		*raw = d;
		*raw_len = n;
	} else {
		free(d);
	}
	return 0;
}

static bool jbool(json_t *o, const char *k, bool dflt)
{
	json_t *v = json_object_get(o, k);
	return json_is_boolean(v) ? json_is_true(v) : dflt;
}

/* b. key provider from app-compose (key_provider overrides the bools). */
static int choose_provider(struct boot *b, struct err *e)
{
	const char *kp = json_string_value(json_object_get(b->app, "key_provider"));
	if (kp && *kp) {
		if (key_provider_kind_parse(kp, &b->kp) < 0)
			return err_set(e, "unknown key_provider %s", kp);
	} else if (jbool(b->app, "kms_enabled", false)) {
		b->kp = KP_KMS;
	} else if (jbool(b->app, "local_key_provider_enabled", false)) {
		b->kp = KP_LOCAL;
	} else {
		b->kp = KP_NONE;
	}
	if (b->kp == KP_LOCAL)
		return err_set(e, "key provider local (SGX) is not implemented");
	if (b->kp == KP_TPM)
		return err_set(e, "key provider tpm is not implemented");
	return 0;
}

static int random_bytes(uint8_t *p, size_t n, struct err *e)
{
	FILE *f = fopen("/dev/urandom", "rb");
	size_t got = f ? fread(p, 1, n, f) : 0;
	if (f)
		fclose(f);
	return got == n ? 0 : err_set(e, "no randomness");
}

/* App id and instance id (guest.md §3.2). */
static int identity(struct boot *b, struct err *e)
{
	char p[1024];
	_cleanup_json_ json_t *ii = NULL;
	bool have_seed = false;

	compose_hash(b->compose, b->compose_len, b->compose_hash);
	compose_default_app_id(b->compose_hash, b->app_id);
	path_join(p, sizeof(p), b->o->work_dir, ".instance_info");
	if (file_exists(p) && load_json(b->o->work_dir, ".instance_info", 10 * 1024, &ii, NULL, NULL, e) < 0)
		return -1;
	const char *app = json_string_value(json_object_get(ii, "app_id"));
	if (app && *app && hex_decode_exact(app, b->app_id, 20, e) < 0)
		return err_wrap(e, ".instance_info app_id (must be 20 bytes)");
	const char *seed = json_string_value(json_object_get(ii, "instance_id_seed"));
	if (seed && *seed && b->kp != KP_NONE) {
		if (hex_decode_exact(seed, b->seed, 20, e) < 0)
			return err_wrap(e, ".instance_info instance_id_seed");
		have_seed = true;
	}
	if (!have_seed && random_bytes(b->seed, 20, e) < 0)
		return -1;
	b->has_instance_id = !jbool(b->app, "no_instance_id", false);
	if (b->has_instance_id)
		compose_instance_id(b->seed, 20, b->app_id, NULL, 0, b->instance_id);
	return 0;
}

/* c. */
static int emit_measured(struct boot *b, struct err *e)
{
	uint8_t h[32];
	_cleanup_(buf_freep) struct buf jcs = {0};

	if (emit(b, RT_SYSTEM_PREPARING, "", 0, e) < 0 || emit(b, RT_APP_ID, b->app_id, 20, e) < 0 ||
	    emit(b, RT_COMPOSE_HASH, b->compose_hash, 32, e) < 0)
		return -1;
	json_t *init = json_object_get(b->app, "init_script");
	if (json_is_string(init) && json_string_length(init)) {
		sha256(json_string_value(init), json_string_length(init), h);
		if (emit(b, RT_INIT_SCRIPT_HASH, h, 32, e) < 0)
			return -1;
	} else if (json_is_array(init)) {
		size_t i;
		json_t *s;
		if (json_array_size(init) > 5)
			return err_set(e, "at most 5 init scripts");
		json_array_foreach(init, i, s)
		{
			if (!json_is_string(s))
				return err_set(e, "init_script[%zu]: not a string", i);
			sha256(json_string_value(s), json_string_length(s), h);
			if (emit(b, RT_INIT_SCRIPT_HASH, h, 32, e) < 0)
				return -1;
		}
	}
	json_t *gp = json_object_get(json_object_get(b->app, "requirements"), "gpu_policy");
	_cleanup_json_ json_t *empty = json_object();
	if (jcs_serialize(json_is_object(gp) ? gp : empty, &jcs, e) < 0)
		return err_wrap(e, "gpu_policy");
	sha256(jcs.data, jcs.len, h);
	if (emit(b, RT_GPU_POLICY_HASH, h, 32, e) < 0 ||
	    emit(b, RT_INSTANCE_ID, b->instance_id, b->has_instance_id ? 20 : 0, e) < 0 ||
	    emit(b, RT_BOOT_MR_DONE, "", 0, e) < 0)
		return -1;
	return 0;
}

/* sys-config string list (kms_urls). */
static const char **string_list(json_t *arr, size_t *n)
{
	size_t i;
	json_t *v;
	const char **out = calloc(json_array_size(arr) + 1, sizeof(char *));
	*n = 0;
	if (!out)
		return NULL;
	json_array_foreach(arr, i, v) if (json_is_string(v)) out[(*n)++] = json_string_value(v);
	return out;
}

static const char *pccs_of(struct boot *b)
{
	if (b->o->pccs_url && *b->o->pccs_url)
		return b->o->pccs_url;
	const char *p =
	    json_string_value(json_object_get(json_object_get(b->sys, "collateral_urls"), "pccs"));
	if (p && *p)
		return p;
	p = json_string_value(json_object_get(b->sys, "pccs_url"));
	return p && *p ? p : NULL;
}

static char *strdup_or_die(const char *s)
{
	char *r = strdup(s ? s : "");
	if (!r)
		abort();
	return r;
}

/* d. (KMS) */
static int keys_from_kms(struct boot *b, struct err *e)
{
	struct ratls_verifier *v = NULL;
	struct ratls_verifier_opts vo = {
	    .pccs_url = pccs_of(b),
	    .cache_dir = b->o->pccs_cache,
	    .root_ca_path = b->o->dev_root_ca,
	    .insecure_allow_external_trust_anchors = b->o->dev_root_ca != NULL,
	};
	size_t n = 0;
	_cleanup_free_ const char **urls = string_list(json_object_get(b->sys, "kms_urls"), &n);
	struct kms_fetch_result r;
	int rc = -1;

	if (ratls_verifier_new(&v, &vo, e) < 0)
		return err_wrap(e, "KMS verifier");
	struct kms_fetch_opts fo = {urls, n, b->tee, b->rt_log, b->rt_lock, b->vm_config, v};
	if (kms_fetch_app_keys(&fo, &r, e) < 0)
		goto out;
	Kms__AppKeyResponse *k = r.keys;
	if (k->disk_crypt_key.len != 32 || k->k256_key.len != 32) {
		err_set(e, "KMS reply: disk_crypt_key and k256_key must be 32 bytes");
		goto free_r;
	}
	memcpy(b->keys.disk_crypt_key, k->disk_crypt_key.data, 32);
	memcpy(b->keys.k256_key, k->k256_key.data, 32);
	if (k->env_crypt_key.len == 32) {
		memcpy(b->keys.env_crypt_key, k->env_crypt_key.data, 32);
		b->keys.has_env_crypt_key = true;
	}
	if (k->k256_signature.len == 65) {
		memcpy(b->keys.k256_signature, k->k256_signature.data, 65);
		b->keys.has_k256_signature = true;
	}
	/* Emitted as returned, whatever its length (guest.md §5 d; the
	 * reference does not check it either: verifiers compare it). */
	b->os_image_hash = malloc(k->os_image_hash.len ? k->os_image_hash.len : 1);
	if (!b->os_image_hash)
		abort();
	if (k->os_image_hash.len)
		memcpy(b->os_image_hash, k->os_image_hash.data, k->os_image_hash.len);
	b->os_image_hash_len = k->os_image_hash.len;
	b->keys.gateway_app_id =
	    strdup_or_die(k->gateway_app_id && *k->gateway_app_id ? k->gateway_app_id : k->tproxy_app_id);
	b->keys.ca_cert = strdup_or_die(k->ca_cert);
	b->keys.provider = AKP_KMS;
	b->keys.kms_url = strdup_or_die(r.url);
	b->keys.tmp_ca_cert = strdup_or_die(r.tmp_ca_cert);
	b->keys.tmp_ca_key = strdup_or_die(r.tmp_ca_key);
	b->keys.kms_pubkey = malloc(r.root_spki_len);
	if (!b->keys.kms_pubkey)
		abort();
	memcpy(b->keys.kms_pubkey, r.root_spki, r.root_spki_len);
	b->keys.kms_pubkey_len = r.root_spki_len;
	rc = 0;
free_r:
	kms_fetch_result_free(&r);
out:
	ratls_verifier_free(v);
	return rc;
}

/* d. (none): keys from a random per-boot seed (guest.md §2.2). */
static int keys_from_seed(struct boot *b, struct err *e)
{
	uint8_t seed[32];
	struct seed_app_keys sk;
	if (random_bytes(seed, 32, e) < 0 || seed_derive_app_keys(seed, 32, &sk, e) < 0)
		return -1;
	secure_zero(seed, sizeof(seed));
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *ca_key = p256_pkey_from_scalar(sk.ca_key, e);
	struct ratls_cert_params p = {
	    .org = "Dstack",
	    .cn = "App Root Cert",
	    .ca = true,
	    .pathlen = 1,
	    .app_id = b->app_id,
	    .app_id_len = 20,
	    .usage = "app:ca",
	};
	_cleanup_(X509_freep) X509 *ca = ca_key ? ratls_cert_build(&p, ca_key, NULL, NULL, e) : NULL;
	int rc = -1;
	if (ca) {
		memcpy(b->keys.disk_crypt_key, sk.disk_crypt_key, 32);
		memcpy(b->keys.k256_key, sk.k256_key, 32);
		b->keys.provider = AKP_NONE;
		b->keys.gateway_app_id = strdup_or_die("");
		b->keys.ca_cert = pem_write_cert(ca, e);
		b->keys.provider_key = pem_write_private_key(ca_key, e);
		rc = b->keys.ca_cert && b->keys.provider_key ? 0 : -1;
	}
	secure_zero(&sk, sizeof(sk));
	return rc;
}

/* A hex field of the MrConfigV3 document equals `want` (absent = empty). */
static int v3_field_is(json_t *doc, const char *name, const uint8_t *want, size_t want_len, struct err *e)
{
	json_t *v = json_object_get(doc, name);
	const char *h = json_string_value(v);
	_cleanup_free_ uint8_t *got = NULL;
	size_t n = 0;
	if (v && !h)
		return err_set(e, "Invalid mr_config %s: not a string", name);
	if (h && hex_decode_alloc(h, strlen(h), &got, &n, NULL) < 0)
		return err_set(e, "Invalid mr_config %s: not hex", name);
	if (n != want_len || (n && memcmp(got, want, n) != 0))
		return err_set(e, "Invalid mr_config %s", name);
	return 0;
}

/* The MrConfigV3 document must describe this boot (guest.md §3.5): the
 * digest in MR_CONFIG_ID only binds the document, so without these checks a
 * v3 value would say nothing about what actually booted. */
static int check_mr_config_v3_doc(struct boot *b, const char *doc, struct err *e)
{
	json_error_t je;
	_cleanup_json_ json_t *j = json_loads(doc, 0, &je);
	enum key_provider_kind kp;
	if (!json_is_object(j))
		return err_set(e, "Invalid mr_config document: %s", je.text);
	json_t *ver = json_object_get(j, "version");
	if (!json_is_integer(ver) || json_integer_value(ver) != 3)
		return err_set(e, "mr_config version must be 3");
	if (v3_field_is(j, "compose_hash", b->compose_hash, 32, e) < 0 ||
	    v3_field_is(j, "app_id", b->app_id, 20, e) < 0 ||
	    v3_field_is(j, "instance_id", b->instance_id, b->has_instance_id ? 20 : 0, e) < 0)
		return -1;
	const char *kpn = json_string_value(json_object_get(j, "key_provider"));
	if (!kpn || key_provider_kind_parse(kpn, &kp) < 0 || kp != b->kp)
		return err_set(e, "Invalid mr_config key_provider");
	return v3_field_is(j, "key_provider_id", b->kp_id, b->kp_id_len, e);
}

/* sys-config mr_config (a JCS string, or an object we canonicalise), else
 * vm_config's mr_config string, as the reference looks it up. */
static char *mr_config_document(struct boot *b, struct err *e)
{
	json_t *mc = json_object_get(b->sys, "mr_config");
	if (json_is_string(mc))
		return strdup_or_die(json_string_value(mc));
	if (json_is_object(mc))
		return jcs_dumps(mc, e);
	_cleanup_json_ json_t *vm = b->vm_config ? json_loads(b->vm_config, 0, NULL) : NULL;
	const char *s = json_string_value(json_object_get(vm, "mr_config"));
	if (s)
		return strdup_or_die(s);
	err_set(e, "MR_CONFIG_ID v3 but neither sys-config nor vm_config has mr_config");
	return NULL;
}

/* e. MR_CONFIG_ID of our own TD must match what we booted (guest.md §3.5). */
static int check_mr_config(struct boot *b, struct err *e)
{
	uint8_t zero[64] = {0}, want[MR_CONFIG_ID_LEN];
	_cleanup_free_ uint8_t *q = NULL;
	size_t ql = 0;
	struct td_fields td;

	if (tee_quote(b->tee, zero, &q, &ql, e) < 0 || td_quote_read(q, ql, &td, e) < 0)
		return err_wrap(e, "read own TD report");
	if (memcmp(td.mr_config_id, zero, MR_CONFIG_ID_LEN) == 0)
		return 0;
	switch (td.mr_config_id[0]) {
	case 1:
		mr_config_id_v1(b->compose_hash, want);
		break;
	case 2:
		mr_config_id_v2(b->compose_hash, b->app_id, b->kp, b->kp_id, b->kp_id_len, want);
		break;
	case 3: {
		_cleanup_free_ char *doc = mr_config_document(b, e);
		if (!doc)
			return -1;
		if (check_mr_config_v3_doc(b, doc, e) < 0)
			return err_wrap(e, "MR_CONFIG_ID v3");
		mr_config_id_v3(doc, strlen(doc), want);
		break;
	}
	default:
		return err_set(e, "unknown MR_CONFIG_ID version %u", td.mr_config_id[0]);
	}
	if (memcmp(want, td.mr_config_id, MR_CONFIG_ID_LEN) != 0)
		return err_set(
		    e, "MR_CONFIG_ID mismatch: the VM was configured for another app or key provider");
	return 0;
}

static int check_kp_pin(struct boot *b, struct err *e)
{
	const char *pin = json_string_value(json_object_get(b->app, "key_provider_id"));
	_cleanup_free_ uint8_t *want = NULL;
	size_t wl = 0;
	if (!pin || !*pin)
		return 0;
	if (strncmp(pin, "0x", 2) == 0)
		pin += 2;
	if (hex_decode_alloc(pin, strlen(pin), &want, &wl, e) < 0)
		return err_wrap(e, "key_provider_id");
	if (wl != b->kp_id_len || (wl && memcmp(want, b->kp_id, wl) != 0))
		return err_set(e, "key provider id mismatch: compose pins another key provider");
	return 0;
}

static int write_appkeys_and_instance(struct boot *b, struct err *e)
{
	_cleanup_(buf_freep) struct buf out = {0};
	char p[1024];
	if (app_keys_render(&b->keys, &out, e) < 0)
		return -1;
	path_join(p, sizeof(p), b->o->work_dir, ".appkeys.json");
	int rc = file_write_atomic(p, out.data, out.len, 0600, e);
	buf_free_secure(&out);
	if (rc < 0)
		return -1;
	char seed[41], iid[41], app[41];
	hex_encode(b->seed, 20, seed);
	hex_encode(b->instance_id, b->has_instance_id ? 20 : 0, iid);
	hex_encode(b->app_id, 20, app);
	_cleanup_json_ json_t *ii =
	    json_pack("{s:s,s:s,s:s}", "instance_id_seed", seed, "instance_id", iid, "app_id", app);
	_cleanup_free_ char *s = json_dumps(ii, JSON_COMPACT | JSON_PRESERVE_ORDER);
	path_join(p, sizeof(p), b->o->work_dir, ".instance_info");
	if (!s || file_write_atomic(p, s, strlen(s), 0600, e) < 0)
		return -1;
	host_notify_soft(b->host_api, "instance.info", s);
	return 0;
}

/* i. */
static int decrypt_env(struct boot *b, struct err *e)
{
	char p[1024];
	uint8_t *blob = NULL, *pt = NULL;
	size_t bl = 0, pl = 0;
	char **allowed = NULL;
	size_t na = 0;
	struct env_list env = ENV_LIST_INIT;
	_cleanup_(buf_freep) struct buf dot = {0};
	_cleanup_(buf_freep) struct buf js = {0};
	int rc = -1;

	path_join(p, sizeof(p), b->o->work_dir, ".encrypted-env");
	if (!file_exists(p))
		return 0;
	if (file_read_all(p, 256 * 1024, &blob, &bl, e) < 0)
		return -1;
	if (bl == 0) {
		free(blob);
		return 0;
	}
	if (!b->keys.has_env_crypt_key) {
		log_warn("encrypted env ignored: the %s key provider has no env key",
			 app_key_provider_event_name(b->keys.provider));
		free(blob);
		return 0;
	}
	if (env_envelope_unhex(&blob, &bl, e) < 0 ||
	    env_envelope_decrypt(b->keys.env_crypt_key, blob, bl, &pt, &pl, e) < 0) {
		err_wrap(e, "Failed to decrypt env");
		goto out;
	}
	if (env_allowed_from_compose(b->compose, b->compose_len, &allowed, &na, e) < 0 ||
	    env_plaintext_accept(pt, pl, (const char *const *)allowed, na, &env, e) < 0) {
		err_wrap(e, "Invalid env");
		goto out;
	}
	env_render_dotenv(&env, &dot);
	if (env_render_json(&env, &js, e) < 0)
		goto out;
	path_join(p, sizeof(p), b->o->work_dir, ".decrypted-env");
	if (file_write_atomic(p, dot.data, dot.len, 0600, e) < 0)
		goto out;
	path_join(p, sizeof(p), b->o->work_dir, ".decrypted-env.json");
	if (file_write_atomic(p, js.data, js.len, 0600, e) < 0)
		goto out;
	log_info("env: %zu variables after allowed_envs", env.n);
	rc = 0;
out:
	if (pt) {
		secure_zero(pt, pl);
		free(pt);
	}
	free(blob);
	env_allowed_free(allowed, na);
	env_list_free(&env);
	if (dot.data)
		secure_zero(dot.data, dot.len);
	if (js.data)
		secure_zero(js.data, js.len);
	return rc;
}

static int write_agent_json(struct boot *b, struct err *e)
{
	char keys[1024], comp[1024], sys[1024], p[1024];
	path_join(keys, sizeof(keys), b->o->work_dir, ".appkeys.json");
	path_join(comp, sizeof(comp), b->o->work_dir, "app-compose.json");
	path_join(sys, sizeof(sys), b->o->work_dir, ".sys-config.json");
	/* GuestApi: vsock 8000 (the agent's default), and where it goes in a
	 * guest kernel without vsock. */
	_cleanup_json_ json_t *j =
	    json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:{s:s,s:s,s:s}}", "keys_file", keys, "compose_file", comp,
		      "sys_config_file", sys, "runtime_events_file", b->rt_log, "runtime_events_lock",
		      b->rt_lock, "guest_api_fallback", SETUP_GUEST_API_FALLBACK, "tee", "backend",
		      b->o->tee.backend ? b->o->tee.backend : "auto", "simtee_dir",
		      b->o->tee.simtee_dir ? b->o->tee.simtee_dir : "", "simtee_state",
		      b->o->tee.simtee_state ? b->o->tee.simtee_state : "");
	_cleanup_free_ char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	path_join(p, sizeof(p), b->o->work_dir, "agent.json");
	return s ? file_write_atomic(p, s, strlen(s), 0644, e) : err_set(e, "out of memory");
}

/* j. */
static int register_gateway(struct boot *b, struct err *e)
{
	if (!jbool(b->app, "gateway_enabled", jbool(b->app, "tproxy_enabled", false))) {
		log_info("gateway registration skipped: app-compose does not enable the gateway");
		return 0;
	}
	progress(b, "registering with the gateway");
	json_t *policy = json_object_get(b->app, "port_policy");
	/* No policy in the compose means open (gateway.md §5); say so now rather
	 * than leave the gateway to fetch it from the agent later. */
	_cleanup_json_ json_t *open_policy = json_pack("{s:b,s:[]}", "restrict_mode", 0, "ports");
	struct gw_setup_in in = {
	    .work_dir = b->o->work_dir,
	    .urls = json_object_get(b->sys, "gateway_urls"),
	    .port_policy = json_is_object(policy) ? policy : open_policy,
	    .keys = &b->keys,
	    .vm_config = b->vm_config,
	    .tee = b->tee,
	    .rt_log = b->rt_log,
	    .rt_lock = b->rt_lock,
	    .wg_interface = b->o->wg_interface,
	    .wg_up = !b->o->no_wg_up,
	};
	struct gw_setup_out out;
	struct err ge = ERR_INIT;
	if (gw_setup(&in, &out, &ge) == 0) {
		char msg[128];
		snprintf(msg, sizeof(msg), "gateway registered: %s", out.client_ip);
		progress(b, msg);
		return 0;
	}
	err_wrap(&ge, "register with gateway");
	if (b->o->gateway_required) {
		if (e)
			*e = ge;
		return -1;
	}
	log_error("%s (boot continues: --gateway-required not set)", err_str(&ge));
	host_notify_soft(b->host_api, "boot.progress", err_str(&ge));
	return 0;
}

static int run(struct boot *b, struct err *e)
{
	char p[1024];
	if (mkdir_p(b->o->work_dir, 0755, e) < 0 || copy_shared(b, e) < 0)
		return err_wrap(e, "copy host-shared files");
	if (load_json(b->o->work_dir, "app-compose.json", 50 * MiB, &b->app, &b->compose, &b->compose_len,
		      e) < 0 ||
	    load_json(b->o->work_dir, ".sys-config.json", 32 * 1024, &b->sys, NULL, NULL, e) < 0)
		return -1;
	b->host_api = json_string_value(json_object_get(b->sys, "host_api_url"));
	b->vm_config = json_string_value(json_object_get(b->sys, "vm_config"));
	progress(b, "preparing");
	json_t *mv = json_object_get(b->app, "manifest_version");
	if (json_is_integer(mv) && (json_integer_value(mv) < 1 || json_integer_value(mv) > 3))
		return err_set(e, "unsupported manifest_version %lld", (long long)json_integer_value(mv));
	json_t *ev = json_object_get(b->app, "event_log_version");
	b->rl.version = json_is_integer(ev) && json_integer_value(ev) == 2 ? 2 : 1;
	if (mkdir_p(b->o->rt_dir, 0700, e) < 0)
		return -1;
	path_join(p, sizeof(p), b->o->rt_dir, "runtime_event_version");
	if (file_write_atomic(p, b->rl.version == 2 ? "2" : "1", 1, 0644, e) < 0)
		return -1;
	if (choose_provider(b, e) < 0 || identity(b, e) < 0)
		return -1;
	if (emit_measured(b, e) < 0)
		return err_wrap(e, "measure the app");
	progress(b, "requesting app keys");
	if (b->kp == KP_KMS) {
		if (keys_from_kms(b, e) < 0)
			return -1;
		if (emit(b, RT_OS_IMAGE_HASH, b->os_image_hash, b->os_image_hash_len, e) < 0)
			return -1;
	} else if (keys_from_seed(b, e) < 0) {
		return err_wrap(e, "derive local app keys");
	}
	if (app_keys_provider_id(&b->keys, &b->kp_id, &b->kp_id_len, e) < 0 || check_mr_config(b, e) < 0 ||
	    check_kp_pin(b, e) < 0)
		return -1;
	_cleanup_free_ char *kp_hex = hex_encode_alloc(b->kp_id, b->kp_id_len);
	_cleanup_json_ json_t *kpj = json_pack(
	    "{s:s,s:s}", "name", app_key_provider_event_name(b->keys.provider), "id", kp_hex ? kp_hex : "");
	_cleanup_free_ char *kps = json_dumps(kpj, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!kps || emit(b, RT_KEY_PROVIDER, kps, strlen(kps), e) < 0 || write_appkeys_and_instance(b, e) < 0)
		return -1;
	const char *fs = json_string_value(json_object_get(b->app, "storage_fs"));
	if (!fs || !*fs)
		fs = "zfs";
	if (strcmp(fs, "zfs") != 0 && strcmp(fs, "ext4") != 0)
		return err_set(e, "unsupported storage_fs %s", fs);
	if (emit(b, RT_STORAGE_FS, fs, strlen(fs), e) < 0)
		return -1;
	if (!b->o->device || !*b->o->device) {
		log_info("disk encryption skipped: no data device");
	} else {
		/* g. (disk.c); the kernel command line may turn encryption off */
		_cleanup_free_ uint8_t *cmdline = NULL;
		file_read_all("/proc/cmdline", 64 * 1024, &cmdline, NULL, NULL);
		struct disk_opts d = {.device = b->o->device,
				      .mount_point = b->o->mount_point,
				      .fs = fs,
				      .unencrypted = !disk_cmdline_storage_encrypted((const char *)cmdline),
				      .key = b->keys.disk_crypt_key,
				      .key_len = sizeof(b->keys.disk_crypt_key),
				      .progress = disk_progress,
				      .progress_ctx = b};
		if (disk_setup(&d, NULL, e) < 0)
			return err_wrap(e, "data disk");
	}
	if (emit(b, RT_SYSTEM_READY, "", 0, e) < 0)
		return -1;
	if (decrypt_env(b, e) < 0 || write_agent_json(b, e) < 0 || register_gateway(b, e) < 0)
		return -1;
	progress(b, "done");
	return 0;
}

int guest_setup(const struct setup_opts *o, struct err *e)
{
	struct boot b;
	memset(&b, 0, sizeof(b));
	b.o = o;
	path_join(b.rt_log, sizeof(b.rt_log), o->rt_dir, "runtime_events.log");
	path_join(b.rt_lock, sizeof(b.rt_lock), o->rt_dir, "runtime_event.lock");
	b.rl.log_path = b.rt_log;
	b.rl.lock_path = b.rt_lock;
	b.rl.version = 1;
	int rc = tee_open(&b.tee, &o->tee, e);
	if (rc == 0)
		rc = run(&b, e);
	if (rc < 0) {
		err_wrap(e, "boot failed");
		log_error("%s", err_str(e));
		host_notify_soft(b.host_api, "boot.error", err_str(e));
	}
	if (b.tee)
		tee_close(b.tee);
	app_keys_free(&b.keys);
	free(b.kp_id);
	free(b.os_image_hash);
	free(b.compose);
	json_decref(b.app);
	json_decref(b.sys);
	secure_zero(&b, sizeof(b));
	return rc;
}
