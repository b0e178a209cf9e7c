/*
 * dev_policy.c — KMS_AUTH=webhook in `dstack dev`: auth-simple decides
 * every boot from auth-config.json, which `dstack hostcfg` generates
 * allowing nothing. dev up boots the CVMs itself (the KMS's and the
 * gateway's simulated CVMs, the example app), so it knows what each will
 * present: the KMS's identity from its guest agent's attestation, verified
 * and reduced to a BootInfo exactly as the KMS does for its
 * self-authorization; the apps' from their compose file (compose hash, app
 * id), their OS image hash and the simulated platform's device id.
 *
 * It then adds to auth-config.json only what is missing for each to be
 * allowed: a member of a list, or an app entry that does not exist yet. It
 * never removes or rewrites what the operator put there, and refuses to
 * touch a file that is not valid JSON or whose fields have the wrong type.
 * The result is checked with auth-simple's own rules (policy.c), so "added"
 * means "auth-simple will allow it".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/hex.h"
#include "crypto/compose.h"
#include "dev.h"
#include "policy.h"
#include "prpc/client.h"
#include "ratls/verify.h"

#define AUTH_CONFIG_MAX (4 * 1024 * 1024)

/* "0x" + lowercase hex, the form auth-simple's examples use. */
static char *hex0x(const char *h)
{
	if (!strncmp(h, "0x", 2) || !strncmp(h, "0X", 2))
		h += 2;
	char *s = dev_pathf("0x%s", h);
	for (char *p = s + 2; *p; p++)
		if (*p >= 'A' && *p <= 'F')
			*p = (char)(*p - 'A' + 'a');
	return s;
}

static bool same_hex(const char *a, const char *b)
{
	_cleanup_free_ char *x = hex0x(a), *y = hex0x(b);
	return !strcmp(x, y);
}

/* The array cfg[key], created when absent; NULL (error set) if the key holds
 * something else. */
static json_t *array_at(json_t *obj, const char *key, const char *where, struct err *e)
{
	json_t *a = json_object_get(obj, key);
	if (!a) {
		a = json_array();
		if (!a || json_object_set_new(obj, key, a) < 0) {
			err_set(e, "out of memory");
			return NULL;
		}
	}
	if (!json_is_array(a)) {
		err_set(e, "%s%s is not an array; fix it by hand", where, key);
		return NULL;
	}
	return a;
}

/* Append value to the list (as hex, or as a plain string) unless present. */
static int add_member(json_t *list, const char *value, bool hex, struct buf *log, const char *what,
		      struct err *e)
{
	size_t i;
	json_t *v;
	json_array_foreach(list, i, v)
	{
		const char *s = json_string_value(v);
		if (s && (hex ? same_hex(s, value) : !strcmp(s, value)))
			return 0;
	}
	_cleanup_free_ char *text = hex ? hex0x(value) : strdup(value);
	if (!text || json_array_append_new(list, json_string(text)) < 0)
		return err_set(e, "out of memory");
	buf_printf(log, "%s%s %s", log->len ? ", " : "", what, text);
	return 0;
}

/* Make the device rule of entry (kms, or an app) pass for device: only when
 * it is checked at all (no allowAnyDevice, a non-empty list). */
static int allow_device(json_t *entry, const char *device, const char *where, struct buf *log, struct err *e)
{
	json_t *devices = json_object_get(entry, "devices");
	if (json_is_true(json_object_get(entry, "allowAnyDevice")) || !devices)
		return 0;
	if (!json_is_array(devices))
		return err_set(e, "%sdevices is not an array; fix it by hand", where);
	if (json_array_size(devices) == 0)
		return 0;
	return add_member(devices, device, true, log, "device", e);
}

static const char *str(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

/* The apps{} entry of app_id (keys compared as hex), or NULL. */
static json_t *find_app(json_t *apps, const char *app_id)
{
	const char *key;
	json_t *v;
	json_object_foreach(apps, key, v)
	{
		if (same_hex(key, app_id))
			return v;
	}
	return NULL;
}

static int add_app(json_t *cfg, const json_t *boot, struct buf *log, struct err *e)
{
	json_t *apps = json_object_get(cfg, "apps");
	if (!apps) {
		apps = json_object();
		if (!apps || json_object_set_new(cfg, "apps", apps) < 0)
			return err_set(e, "out of memory");
	}
	if (!json_is_object(apps))
		return err_set(e, "apps is not an object; fix it by hand");
	json_t *app = find_app(apps, str(boot, "appId"));
	if (!app) {
		/* A new entry pins the device when it is known. */
		const char *dev = str(boot, "deviceId");
		_cleanup_free_ char *key = hex0x(str(boot, "appId"));
		_cleanup_free_ char *hash = hex0x(str(boot, "composeHash"));
		_cleanup_free_ char *devx = hex0x(dev);
		app = *dev ? json_pack("{s:[s], s:[s], s:b}", "composeHashes", hash, "devices", devx,
				       "allowAnyDevice", 0)
			   : json_pack("{s:[s], s:[], s:b}", "composeHashes", hash, "devices",
				       "allowAnyDevice", 1);
		if (!app || json_object_set_new(apps, key, app) < 0)
			return err_set(e, "out of memory");
		buf_printf(log, "%sapp %s (compose hash %s%s%s)", log->len ? ", " : "", key, hash,
			   *dev ? ", device " : ", any device", *dev ? devx : "");
		return 0;
	}
	if (!json_is_object(app))
		return err_set(e, "apps.%s is not an object; fix it by hand", str(boot, "appId"));
	json_t *hashes = array_at(app, "composeHashes", "the app's ", e);
	if (!hashes || add_member(hashes, str(boot, "composeHash"), true, log, "compose hash", e) < 0)
		return -1;
	return *str(boot, "deviceId") ? allow_device(app, str(boot, "deviceId"), "the app's ", log, e) : 0;
}

static int add_kms(json_t *cfg, const json_t *boot, struct buf *log, struct err *e)
{
	json_t *kms = json_object_get(cfg, "kms");
	if (!kms) {
		kms = json_object();
		if (!kms || json_object_set_new(cfg, "kms", kms) < 0)
			return err_set(e, "out of memory");
	}
	if (!json_is_object(kms))
		return err_set(e, "kms is not an object; fix it by hand");
	json_t *mrs = array_at(kms, "mrAggregated", "kms.", e);
	if (!mrs || add_member(mrs, str(boot, "mrAggregated"), true, log, "KMS mrAggregated", e) < 0)
		return -1;
	return allow_device(kms, str(boot, "deviceId"), "kms.", log, e);
}

static int add_platform(json_t *cfg, const json_t *boot, struct buf *log, struct err *e)
{
	json_t *tcb = json_object_get(cfg, "allowedTcbStatuses");
	if (!tcb) { /* absent means ["UpToDate"]: keep that meaning */
		tcb = json_pack("[s]", "UpToDate");
		if (!tcb || json_object_set_new(cfg, "allowedTcbStatuses", tcb) < 0)
			return err_set(e, "out of memory");
	}
	if (!json_is_array(tcb))
		return err_set(e, "allowedTcbStatuses is not an array; fix it by hand");
	if (add_member(tcb, str(boot, "tcbStatus"), false, log, "TCB status", e) < 0)
		return -1;
	json_t *adv = json_object_get(boot, "advisoryIds"), *v;
	size_t i;
	json_t *allowed = json_array_size(adv) ? array_at(cfg, "allowedAdvisoryIds", "", e) : NULL;
	json_array_foreach(adv, i, v)
	{
		if (!allowed || add_member(allowed, json_string_value(v), false, log, "advisory", e) < 0)
			return -1;
	}
	json_t *os = array_at(cfg, "osImages", "", e);
	if (!os)
		return -1;
	return add_member(os, str(boot, "osImageHash"), true, log, "OS image", e);
}

int dev_policy_allow(const struct dev *d, const char *what, bool is_kms, const json_t *boot, struct err *e)
{
	_cleanup_free_ char *path = dev_pathf("%s/auth-config.json", d->dir);
	json_error_t je;
	_cleanup_json_ json_t *cfg = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	_cleanup_buf_ struct buf log = BUF_INIT;
	char reason[256];
	struct err ve = ERR_INIT;

	if (!cfg)
		return err_set(e,
			       "%s: line %d: %s (fix the file, or delete it and run `dstack hostcfg --dir %s "
			       "--force`)",
			       path, je.line, je.text, d->dir);
	if (!json_is_object(cfg))
		return err_set(e, "%s: not a JSON object", path);
	if (policy_validate_request(boot, &ve) < 0)
		return err_set(e, "%s's boot info: %s", what, err_str(&ve));
	if (add_platform(cfg, boot, &log, e) < 0 ||
	    (is_kms ? add_kms(cfg, boot, &log, e) : add_app(cfg, boot, &log, e)) < 0)
		return err_wrap(e, "%s", path);
	if (!policy_decide(cfg, boot, is_kms, reason, sizeof reason))
		return err_set(e, "%s: auth-simple would still refuse %s (%s); fix the file by hand", path,
			       what, reason);
	if (!log.len)
		return 0;
	_cleanup_free_ char *text = json_dumps(cfg, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (!text)
		return err_set(e, "out of memory");
	_cleanup_free_ char *out = dev_pathf("%s\n", text);
	if (file_write_atomic(path, out, strlen(out), 0644, e) < 0)
		return err_wrap(e, "%s", path);
	printf("  %-12s auth-config.json allows %s: added %.*s\n", "auth-simple", what, (int)log.len,
	       (char *)log.data);
	return 0;
}

int dev_kms_boot_info(const struct dev *d, json_t **out, struct err *e)
{
	_cleanup_free_ char *sock = dev_pathf("%s/kms-cvm/dstack.sock", d->dir);
	_cleanup_free_ char *pccs = dev_pathf("http://127.0.0.1:%u", d->c.simtee_port);
	_cleanup_free_ char *root = dev_pathf("%s/simtee/root_ca.pem", d->dir);
	struct prpc_client c = {.base = "http://localhost",
				.http = {.unix_socket = sock, .timeout_ms = 30000}};
	char zeros[129];
	memset(zeros, '0', 128);
	zeros[128] = '\0';
	_cleanup_json_ json_t *req = json_pack("{s:s}", "report_data", zeros), *resp = NULL;
	if (!req)
		return err_set(e, "out of memory");
	if (prpc_client_call_json(&c, "Attest", req, &resp, e) < 0)
		return err_wrap(e, "the KMS's guest agent (%s): Attest", sock);
	const char *hex = json_string_value(json_object_get(resp, "attestation"));
	_cleanup_free_ uint8_t *att = NULL;
	size_t len = 0;
	if (!hex || hex_decode_alloc(hex, strlen(hex), &att, &len, e) < 0)
		return err_set(e, "the KMS's guest agent: Attest reply has no attestation");

	struct ratls_verifier_opts vo = {
	    .pccs_url = pccs, .root_ca_path = root, .insecure_allow_external_trust_anchors = true};
	struct ratls_verifier *v = NULL;
	struct ratls_verified vd;
	struct ratls_boot_info bi;
	memset(&vd, 0, sizeof vd);
	if (ratls_verifier_new(&v, &vo, e) < 0)
		return err_wrap(e, "attestation verifier");
	int rc = ratls_verify_bytes(v, att, len, 0, &vd, e);
	if (rc == 0) {
		/* what the KMS sends for its self-authorization (runtime, not
		 * boot time; the vm_config of the attestation) */
		rc = ratls_boot_info(&vd, NULL, false, &bi, e);
		if (rc == 0) {
			*out = ratls_boot_info_to_json(&bi);
			ratls_boot_info_free(&bi);
			if (!*out)
				rc = err_set(e, "out of memory");
		}
		ratls_verified_free(&vd);
	}
	ratls_verifier_free(v);
	return rc < 0 ? err_wrap(e, "the KMS's attestation") : 0;
}

json_t *dev_app_boot_info(const char *compose, size_t len, const char *os_image_hash, const json_t *platform)
{
	uint8_t hash[32], app_id[20];
	char hash_hex[65], app_hex[41];
	compose_hash((const uint8_t *)compose, len, hash);
	compose_default_app_id(hash, app_id);
	hex_encode(hash, 32, hash_hex);
	hex_encode(app_id, 20, app_hex);
	json_t *adv = json_object_get(platform, "advisoryIds");
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:O*}", "appId", app_hex, "composeHash",
			 hash_hex, "osImageHash", os_image_hash, "deviceId", str(platform, "deviceId"),
			 "tcbStatus", str(platform, "tcbStatus"), "mrAggregated", "", "instanceId", "",
			 "teeVariant", str(platform, "teeVariant"), "advisoryIds",
			 json_is_array(adv) ? adv : NULL);
}
