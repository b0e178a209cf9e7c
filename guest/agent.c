/*
 * agent.c — the guest agent's state: configuration, loading the files
 * dstack-util setup left behind, and the attestation / info / certificate
 * operations the RPC surfaces share (see agent.h).
 */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "attest/ccel.h"
#include "codec/pem.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/hex.h"
#include "core/log.h"
#include "core/mem.h"
#include "crypto/compose.h"
#include "ratls/cert.h"
#include "ratls/csr.h"
#include "ratls/ext.h"
#include "rtevent.h"
#include "core/xalloc.h"

#define COMPOSE_MAX (50u * 1024 * 1024)
#define SYS_CONFIG_MAX (32u * 1024)

static void strings_set(struct cfg_strings *s, const char *a, const char *b)
{
	s->count = b ? 2 : 1;
	s->items = calloc(2, sizeof(char *));
	if (!s->items)
		abort();
	s->items[0] = xstrdup_or_empty(a);
	if (b)
		s->items[1] = xstrdup_or_empty(b);
}

static void strings_free(struct cfg_strings *s)
{
	for (size_t i = 0; i < s->count; i++)
		free(s->items[i]);
	free(s->items);
	s->items = NULL;
	s->count = 0;
}

void agent_cfg_defaults(struct agent_cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->keys_file = xstrdup_or_empty("/dstack/.host-shared/.appkeys.json");
	c->compose_file = xstrdup_or_empty("/dstack/.host-shared/app-compose.json");
	c->sys_config_file = xstrdup_or_empty("/dstack/.host-shared/.sys-config.json");
	c->runtime_events_file = xstrdup_or_empty(RTEVENT_DEFAULT_DIR "/runtime_events.log");
	c->runtime_events_lock = xstrdup_or_empty(RTEVENT_DEFAULT_DIR "/runtime_event.lock");
	strings_set(&c->dstack_sockets, "/var/run/dstack.sock", "/var/run/dstack/dstack.sock");
	strings_set(&c->tappd_sockets, "/var/run/tappd.sock", "/var/run/dstack/tappd.sock");
	c->external_listen = xstrdup_or_empty("tcp:0.0.0.0:8090");
	c->guest_api_listen = xstrdup_or_empty("vsock:any:8000");
	c->guest_api_fallback = xstrdup_or_empty(""); /* agent.json from dstack-util setup names one */
	c->tee_backend = xstrdup_or_empty("auto");
	c->simtee_dir = xstrdup_or_empty("");
	c->simtee_state = xstrdup_or_empty("");
	c->gpu_attestation_file = xstrdup_or_empty("/run/nvidia-gpu-attestation/attestation.out");
	c->dmi_dir = xstrdup_or_empty("/sys/class/dmi/id");
	c->data_disks_root = xstrdup_or_empty("/");
	c->event_log_version = 0;
}

void agent_cfg_free(struct agent_cfg *c)
{
	char **strs[] = {&c->keys_file,           &c->compose_file,         &c->sys_config_file,
			 &c->runtime_events_file, &c->runtime_events_lock,  &c->external_listen,
			 &c->guest_api_listen,    &c->tee_backend,          &c->simtee_dir,
			 &c->simtee_state,        &c->gpu_attestation_file, &c->dmi_dir,
			 &c->data_disks_root,     &c->guest_api_fallback};
	for (size_t i = 0; i < ARRAY_SIZE(strs); i++) {
		free(*strs[i]);
		*strs[i] = NULL;
	}
	strings_free(&c->dstack_sockets);
	strings_free(&c->tappd_sockets);
}

/* Schema over a zeroed shadow struct; set fields then replace the defaults. */
int agent_cfg_bind(struct config *conf, struct agent_cfg *c, struct err *e)
{
	struct agent_cfg s;
	static const struct cfg_field schema[] = {
	    {"keys_file", CFG_STRING, CFG_AT(struct agent_cfg, keys_file)},
	    {"compose_file", CFG_STRING, CFG_AT(struct agent_cfg, compose_file)},
	    {"sys_config_file", CFG_STRING, CFG_AT(struct agent_cfg, sys_config_file)},
	    {"core.keys_file", CFG_STRING, CFG_AT(struct agent_cfg, keys_file)},
	    {"core.compose_file", CFG_STRING, CFG_AT(struct agent_cfg, compose_file)},
	    {"core.sys_config_file", CFG_STRING, CFG_AT(struct agent_cfg, sys_config_file)},
	    {"runtime_events_file", CFG_STRING, CFG_AT(struct agent_cfg, runtime_events_file)},
	    {"runtime_events_lock", CFG_STRING, CFG_AT(struct agent_cfg, runtime_events_lock)},
	    {"dstack_sockets", CFG_STRINGS, CFG_AT(struct agent_cfg, dstack_sockets)},
	    {"tappd_sockets", CFG_STRINGS, CFG_AT(struct agent_cfg, tappd_sockets)},
	    {"external_listen", CFG_STRING, CFG_AT(struct agent_cfg, external_listen)},
	    {"guest_api_listen", CFG_STRING, CFG_AT(struct agent_cfg, guest_api_listen)},
	    {"guest_api_fallback", CFG_STRING, CFG_AT(struct agent_cfg, guest_api_fallback)},
	    {"tee.backend", CFG_STRING, CFG_AT(struct agent_cfg, tee_backend)},
	    {"tee.simtee_dir", CFG_STRING, CFG_AT(struct agent_cfg, simtee_dir)},
	    {"tee.simtee_state", CFG_STRING, CFG_AT(struct agent_cfg, simtee_state)},
	    {"gpu_attestation_file", CFG_STRING, CFG_AT(struct agent_cfg, gpu_attestation_file)},
	    {"dmi_dir", CFG_STRING, CFG_AT(struct agent_cfg, dmi_dir)},
	    {"data_disks_root", CFG_STRING, CFG_AT(struct agent_cfg, data_disks_root)},
	    {"event_log_version", CFG_UINT, CFG_AT(struct agent_cfg, event_log_version), .min = 0, .max = 2},
	};
	memset(&s, 0, sizeof(s));
	s.event_log_version = c->event_log_version;
	if (config_bind(conf, schema, ARRAY_SIZE(schema), &s, e) < 0)
		return -1;
	char **src[] = {&s.keys_file,           &s.compose_file,         &s.sys_config_file,
			&s.runtime_events_file, &s.runtime_events_lock,  &s.external_listen,
			&s.guest_api_listen,    &s.tee_backend,          &s.simtee_dir,
			&s.simtee_state,        &s.gpu_attestation_file, &s.dmi_dir,
			&s.data_disks_root,     &s.guest_api_fallback};
	char **dst[] = {&c->keys_file,           &c->compose_file,         &c->sys_config_file,
			&c->runtime_events_file, &c->runtime_events_lock,  &c->external_listen,
			&c->guest_api_listen,    &c->tee_backend,          &c->simtee_dir,
			&c->simtee_state,        &c->gpu_attestation_file, &c->dmi_dir,
			&c->data_disks_root,     &c->guest_api_fallback};
	for (size_t i = 0; i < ARRAY_SIZE(src); i++) {
		if (*src[i]) {
			free(*dst[i]);
			*dst[i] = *src[i];
		}
	}
	if (s.dstack_sockets.items) {
		strings_free(&c->dstack_sockets);
		c->dstack_sockets = s.dstack_sockets;
	}
	if (s.tappd_sockets.items) {
		strings_free(&c->tappd_sockets);
		c->tappd_sockets = s.tappd_sockets;
	}
	c->event_log_version = s.event_log_version;
	return 0;
}

bool agent_compose_flag(const struct agent *a, const char *name, bool dflt)
{
	json_t *v = json_object_get(a->compose_json, name);
	return json_is_boolean(v) ? json_is_true(v) : dflt;
}

const char *agent_app_name(const struct agent *a)
{
	json_t *v = json_object_get(a->compose_json, "name");
	return json_is_string(v) ? json_string_value(v) : "";
}

int agent_open(struct agent *a, struct err *e)
{
	json_error_t je;
	size_t len;
	_cleanup_free_ uint8_t *sys = NULL;

	pthread_mutex_init(&a->lock, NULL);
	if (app_keys_load(a->cfg.keys_file, &a->keys, e) < 0)
		return -1;
	if (file_read_all(a->cfg.compose_file, COMPOSE_MAX, &a->compose, &a->compose_len, e) < 0)
		return err_wrap(e, "compose file");
	a->compose_json = json_loadb((const char *)a->compose, a->compose_len, 0, &je);
	if (!json_is_object(a->compose_json))
		return err_set(e, "%s: not a JSON object (line %d: %s)", a->cfg.compose_file, je.line,
			       je.text);
	if (file_read_all(a->cfg.sys_config_file, SYS_CONFIG_MAX, &sys, &len, e) < 0)
		return err_wrap(e, "sys config");
	a->sys_config = json_loadb((const char *)sys, len, 0, &je);
	if (!json_is_object(a->sys_config))
		return err_set(e, "%s: not a JSON object (line %d: %s)", a->cfg.sys_config_file, je.line,
			       je.text);
	json_t *vm = json_object_get(a->sys_config, "vm_config");
	a->vm_config = xstrdup_or_empty(json_is_string(vm) ? json_string_value(vm) : "");
	a->ca_cert = pem_read_cert(a->keys.ca_cert, strlen(a->keys.ca_cert), e);
	if (!a->ca_cert)
		return err_wrap(e, "app keys: ca_cert");
	if (a->keys.provider != AKP_KMS) {
		a->ca_key = pem_read_private_key(a->keys.provider_key, strlen(a->keys.provider_key), e);
		if (!a->ca_key)
			return err_wrap(e, "app keys: key_provider key");
	}
	if (!a->cfg.event_log_version) {
		json_t *v = json_object_get(a->compose_json, "event_log_version");
		a->cfg.event_log_version = json_is_integer(v) && json_integer_value(v) == 2 ? 2 : 1;
	}
	struct tee_config tc = {
	    .backend = a->cfg.tee_backend,
	    .simtee_dir = *a->cfg.simtee_dir ? a->cfg.simtee_dir : NULL,
	    .simtee_state = *a->cfg.simtee_state ? a->cfg.simtee_state : NULL,
	};
	if (!a->tee && tee_open(&a->tee, &tc, e) < 0)
		return err_wrap(e, "TEE");
	return 0;
}

void agent_close(struct agent *a)
{
	app_keys_free(&a->keys);
	free(a->compose);
	json_decref(a->compose_json);
	json_decref(a->sys_config);
	free(a->vm_config);
	X509_free(a->ca_cert);
	EVP_PKEY_free(a->ca_key);
	if (a->tee)
		tee_close(a->tee);
	agent_cfg_free(&a->cfg);
	pthread_mutex_destroy(&a->lock);
}

/* Boot log (CCEL) + runtime events, and the quote, under the event lock. */
int agent_attestation(struct agent *a, const uint8_t report_data[64], struct attestation *out, struct err *e)
{
	pthread_mutex_lock(&a->lock);
	int rc = rtevent_attestation(a->tee, a->cfg.runtime_events_file, a->cfg.runtime_events_lock,
				     a->vm_config, report_data, out, e);
	pthread_mutex_unlock(&a->lock);
	return rc;
}

char *agent_quote_event_log(const struct attestation *att, struct err *e)
{
	struct event_log copy = EVENT_LOG_INIT;
	if (event_log_copy(&att->event_log, &copy, e) < 0)
		return NULL;
	event_log_strip_for_quote(&copy);
	json_t *j = event_log_to_json(&copy);
	event_log_free(&copy);
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(j);
	if (!s)
		err_set(e, "out of memory");
	return s;
}

int agent_emit_event(struct agent *a, const char *name, const uint8_t *payload, size_t len, struct err *e)
{
	struct rtevent_log l = {a->cfg.runtime_events_file, a->cfg.runtime_events_lock,
				a->cfg.event_log_version};
	pthread_mutex_lock(&a->lock);
	int rc = rtevent_emit(a->tee, &l, name, payload, len, e);
	pthread_mutex_unlock(&a->lock);
	return rc;
}

static void set_hex(json_t *o, const char *k, const uint8_t *d, size_t n)
{
	char *h = hex_encode_alloc(d, n);
	json_object_set_new(o, k, json_string(h ? h : ""));
	free(h);
}

int agent_info(struct agent *a, struct agent_info *out, struct err *e)
{
	uint8_t zero[64] = {0};
	struct attestation att;

	memset(out, 0, sizeof(*out));
	if (agent_attestation(a, zero, &att, e) < 0)
		return -1;
	if (attestation_td_fields(&att, &out->td, e) < 0 ||
	    attestation_app_info(&att, false, a->vm_config, NULL, 0, &out->ai, e) < 0) {
		attestation_free(&att);
		return -1;
	}
	if (!out->ai.compose_hash.len) {
		uint8_t h[32];
		compose_hash(a->compose, a->compose_len, h);
		free(out->ai.compose_hash.p);
		out->ai.compose_hash.p = malloc(32);
		if (!out->ai.compose_hash.p)
			abort();
		memcpy(out->ai.compose_hash.p, h, 32);
		out->ai.compose_hash.len = 32;
	}
	out->key_provider_info = malloc(out->ai.key_provider_info.len + 1);
	if (!out->key_provider_info)
		abort();
	memcpy(out->key_provider_info, out->ai.key_provider_info.p, out->ai.key_provider_info.len);
	out->key_provider_info[out->ai.key_provider_info.len] = 0;

	json_t *t = json_object();
	set_hex(t, "mrtd", out->td.mr_td, 48);
	for (int i = 0; i < 4; i++) {
		char k[8];
		snprintf(k, sizeof(k), "rtmr%d", i);
		set_hex(t, k, out->td.rtmr[i], 48);
	}
	set_hex(t, "mr_aggregated", out->ai.mr_aggregated.p, out->ai.mr_aggregated.len);
	set_hex(t, "os_image_hash", out->ai.os_image_hash.p, out->ai.os_image_hash.len);
	set_hex(t, "compose_hash", out->ai.compose_hash.p, out->ai.compose_hash.len);
	set_hex(t, "device_id", out->ai.device_id.p, out->ai.device_id.len);
	json_object_set_new(t, "event_log", event_log_to_json(&att.event_log));
	json_object_set_new(t, "app_compose", json_stringn((const char *)a->compose, a->compose_len));
	out->tcb_info = json_dumps(t, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(t);
	attestation_free(&att);
	if (!out->tcb_info) {
		agent_info_free(out);
		return err_set(e, "out of memory");
	}
	return 0;
}

void agent_info_free(struct agent_info *i)
{
	app_info_free(&i->ai);
	free(i->tcb_info);
	free(i->key_provider_info);
	memset(i, 0, sizeof(*i));
}

char *agent_dmi(const struct agent *a, const char *name)
{
	char path[512];
	uint8_t *d = NULL;
	size_t n = 0;
	snprintf(path, sizeof(path), "%s/%s", a->cfg.dmi_dir, name);
	if (file_read_all(path, 4096, &d, &n, NULL) < 0)
		return xstrdup_or_empty("");
	while (n && (d[n - 1] == '\n' || d[n - 1] == ' ' || d[n - 1] == '\r'))
		d[--n] = 0;
	return (char *)d;
}

/* ---- certificates ---- */

static int issue_local(struct agent *a, const struct ratls_csr *csr, const struct attestation *att,
		       char ***chain, size_t *n, struct err *e)
{
	const uint8_t *app_id = NULL;
	size_t app_id_len = 0;
	_cleanup_(buf_freep) struct buf att_bytes = {0};
	_cleanup_(buf_freep) struct buf ai_bytes = {0};
	struct attestation stripped;

	attestation_find_event(att, "app-id", &app_id, &app_id_len, NULL);
	if (csr->config.ext_quote) {
		attestation_init(&stripped);
		if (attestation_copy(att, &stripped, e) < 0 || attestation_strip_for_cert(&stripped, e) < 0 ||
		    attestation_encode(&stripped, &att_bytes, e) < 0) {
			attestation_free(&stripped);
			return -1;
		}
		attestation_free(&stripped);
	}
	if (csr->config.ext_app_info) {
		struct app_info ai;
		if (attestation_app_info(att, false, a->vm_config, NULL, 0, &ai, e) < 0)
			return -1;
		app_info_encode(&ai, &ai_bytes);
		app_info_free(&ai);
	}
	_cleanup_(X509_freep) X509 *leaf = ratls_cert_app_leaf(
	    csr, app_id, app_id_len, csr->config.ext_quote ? att_bytes.data : NULL, att_bytes.len,
	    csr->config.ext_app_info ? ai_bytes.data : NULL, ai_bytes.len, a->ca_cert, a->ca_key, e);
	if (!leaf)
		return -1;
	char **c = calloc(2, sizeof(char *));
	if (!c)
		return err_set(e, "out of memory");
	c[0] = pem_write_cert(leaf, e);
	c[1] = pem_write_cert(a->ca_cert, e);
	if (!c[0] || !c[1]) {
		cert_chain_free(c, 2);
		return -1;
	}
	*chain = c;
	*n = 2;
	return 0;
}

int agent_issue_cert(struct agent *a, EVP_PKEY *key, const struct tls_cert_req *r, char ***chain, size_t *n,
		     struct err *e)
{
	struct ratls_csr csr;
	uint8_t rd[64];
	struct attestation att;
	int rc;

	if (cert_csr_prepare(key, r, &csr, rd, e) < 0)
		return -1;
	if (agent_attestation(a, rd, &att, e) < 0) {
		cert_csr_release(&csr);
		return -1;
	}
	/* KMS provider: the app CA key stays in the KMS; it signs (SignCert v2). */
	if (a->keys.provider == AKP_KMS)
		rc = kms_sign_cert(a->keys.kms_url, a->vm_config, key, &csr, &att, chain, n, e);
	else
		rc = issue_local(a, &csr, &att, chain, n, e);
	attestation_free(&att);
	cert_csr_release(&csr);
	return rc;
}
