/*
 * agent_sim.c — simulator mode (`dstack-guest-agent --simulator DIR`), for
 * app developers without a CVM: the agent serves a fixed appkeys.json,
 * app-compose.json and sys-config.json from DIR, and instead of the
 * reference simulator's patched fixture quote (whose signature no longer
 * verifies) it runs on the simulated TDX of lib/simtee: a development PKI
 * (DIR/simtee or --simtee-dir, created on first use) and a TD state whose
 * RTMR3 holds the same boot events a real dstack-util setup emits. Its
 * quotes therefore verify against the development root CA.
 *
 * Identity: app_id/instance_id come from DIR/.instance_info when present,
 * else from the app-id/instance-id events of DIR/attestation.bin (the
 * reference simulator's fixture, so the fixture's signature-chain vectors
 * hold), else app_id = compose_hash[0..20] and a random instance id.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "agent.h"
#include "attest/attestation.h"
#include "attest/runtime_events.h"
#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/hex.h"
#include "core/log.h"
#include "crypto/compose.h"
#include "crypto/hash.h"
#include "rtevent.h"
#include "simtee/pki.h"
#include "simtee/td.h"

static char *path_in(const char *dir, const char *name)
{
	char *p = NULL;
	if (asprintf(&p, "%s/%s", dir, name) < 0)
		abort();
	return p;
}

/* Prefer NAME, fall back to simulator-NAME (the testdata spelling). */
static char *pick(const char *dir, const char *name)
{
	char *p = path_in(dir, name);
	if (file_exists(p))
		return p;
	char alt[256];
	snprintf(alt, sizeof(alt), "simulator-%s", name);
	char *q = path_in(dir, alt);
	if (file_exists(q)) {
		free(p);
		return q;
	}
	free(q);
	return p;
}

static void replace(char **slot, char *v)
{
	free(*slot);
	*slot = v;
}

static int identity_from_instance_info(const char *dir, uint8_t app_id[20], bool *has_app, uint8_t inst[20],
				       bool *has_inst)
{
	_cleanup_free_ char *p = path_in(dir, ".instance_info");
	_cleanup_free_ uint8_t *d = NULL;
	size_t n;
	if (file_read_all(p, 10 * 1024, &d, &n, NULL) < 0)
		return 0;
	_cleanup_json_ json_t *j = json_loadb((const char *)d, n, 0, NULL);
	const char *a = json_string_value(json_object_get(j, "app_id"));
	const char *i = json_string_value(json_object_get(j, "instance_id"));
	if (a && hex_decode_exact(a, app_id, 20, NULL) == 0)
		*has_app = true;
	if (i && hex_decode_exact(i, inst, 20, NULL) == 0)
		*has_inst = true;
	return 0;
}

static void identity_from_fixture(const char *dir, uint8_t app_id[20], bool *has_app, uint8_t inst[20],
				  bool *has_inst)
{
	_cleanup_free_ char *p = pick(dir, "attestation.bin");
	_cleanup_free_ uint8_t *d = NULL;
	size_t n;
	struct attestation att;
	const uint8_t *v;
	size_t vl;
	if (file_read_all(p, ATTESTATION_MAX_LEN, &d, &n, NULL) < 0)
		return;
	attestation_init(&att);
	if (attestation_decode(d, n, &att, NULL) == 0) {
		if (!*has_app && attestation_find_event(&att, "app-id", &v, &vl, NULL) == 0 && vl == 20) {
			memcpy(app_id, v, 20);
			*has_app = true;
		}
		if (!*has_inst && attestation_find_event(&att, "instance-id", &v, &vl, NULL) == 0 &&
		    vl == 20) {
			memcpy(inst, v, 20);
			*has_inst = true;
		}
	}
	attestation_free(&att);
}

/* The boot events of a simulated setup, in dstack-util's order. */
static int emit_boot_events(struct agent *a, const char *dir, struct err *e)
{
	struct rtevent_log l = {a->cfg.runtime_events_file, a->cfg.runtime_events_lock,
				a->cfg.event_log_version};
	uint8_t ch[32], app_id[20], inst[20], gpu[32];
	bool has_app = false, has_inst = false;
	_cleanup_free_ uint8_t *kp_id = NULL;
	size_t kp_id_len = 0;

	compose_hash(a->compose, a->compose_len, ch);
	identity_from_instance_info(dir, app_id, &has_app, inst, &has_inst);
	identity_from_fixture(dir, app_id, &has_app, inst, &has_inst);
	if (!has_app)
		compose_default_app_id(ch, app_id);
	if (!has_inst) {
		FILE *f = fopen("/dev/urandom", "rb");
		if (!f || fread(inst, 1, 20, f) != 20) {
			if (f)
				fclose(f);
			return err_set(e, "random instance id");
		}
		fclose(f);
	}
	sha256("{}", 2, gpu);
	if (app_keys_provider_id(&a->keys, &kp_id, &kp_id_len, e) < 0)
		return -1;
	_cleanup_free_ char *kp_hex = hex_encode_alloc(kp_id, kp_id_len);
	_cleanup_json_ json_t *kp = json_pack(
	    "{s:s,s:s}", "name", app_key_provider_event_name(a->keys.provider), "id", kp_hex ? kp_hex : "");
	_cleanup_free_ char *kp_s = json_dumps(kp, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_t *fs = json_object_get(a->compose_json, "storage_fs");
	const char *storage = json_is_string(fs) ? json_string_value(fs) : "zfs";
	bool no_inst = agent_compose_flag(a, "no_instance_id", false);

	unlink(a->cfg.runtime_events_file);
	struct {
		const char *name;
		const void *p;
		size_t n;
	} evs[] = {
	    {RT_SYSTEM_PREPARING, "", 0},
	    {RT_APP_ID, app_id, 20},
	    {RT_COMPOSE_HASH, ch, 32},
	    {RT_GPU_POLICY_HASH, gpu, 32},
	    {RT_INSTANCE_ID, inst, no_inst ? 0 : 20},
	    {RT_BOOT_MR_DONE, "", 0},
	    {RT_KEY_PROVIDER, kp_s, strlen(kp_s)},
	    {RT_STORAGE_FS, storage, strlen(storage)},
	    {RT_SYSTEM_READY, "", 0},
	};
	for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
		if (rtevent_emit(a->tee, &l, evs[i].name, evs[i].p, evs[i].n, e) < 0)
			return err_wrap(e, "simulated boot");
	return 0;
}

int agent_simulator_prepare(struct agent *a, const char *dir, struct err *e)
{
	struct agent_cfg *c = &a->cfg;
	bool fresh;

	a->simulator = true;
	replace(&c->keys_file, pick(dir, "appkeys.json"));
	replace(&c->compose_file, pick(dir, "app-compose.json"));
	replace(&c->sys_config_file, pick(dir, "sys-config.json"));
	replace(&c->runtime_events_file, path_in(dir, "runtime_events.log"));
	replace(&c->runtime_events_lock, path_in(dir, "runtime_event.lock"));
	replace(&c->dmi_dir, path_in(dir, "dmi"));
	if (!*c->simtee_dir)
		replace(&c->simtee_dir, path_in(dir, "simtee"));
	if (!*c->simtee_state)
		replace(&c->simtee_state, path_in(dir, "td-state.json"));
	replace(&c->tee_backend, strdup("simtee"));
	for (size_t i = 0; i < c->dstack_sockets.count; i++)
		free(c->dstack_sockets.items[i]);
	c->dstack_sockets.items[0] = path_in(dir, "dstack.sock");
	c->dstack_sockets.count = 1;
	for (size_t i = 0; i < c->tappd_sockets.count; i++)
		free(c->tappd_sockets.items[i]);
	c->tappd_sockets.items[0] = path_in(dir, "tappd.sock");
	c->tappd_sockets.count = 1;
	char *gs = NULL;
	if (asprintf(&gs, "unix:%s/guest.sock", dir) < 0)
		abort();
	replace(&c->guest_api_listen, gs);
	replace(&c->external_listen, strdup(""));

	_cleanup_free_ char *root = path_in(c->simtee_dir, "root_ca.pem");
	if (!file_exists(root)) {
		log_info("simulator: creating the development PKI in %s", c->simtee_dir);
		if (mkdir_p(c->simtee_dir, 0700, e) < 0 || simtee_pki_init(c->simtee_dir, NULL, e) < 0)
			return err_wrap(e, "simulator PKI");
	}
	fresh = !file_exists(c->simtee_state);
	if (fresh && simtee_td_create(c->simtee_state, NULL, e) < 0)
		return err_wrap(e, "simulated TD");
	if (agent_open(a, e) < 0)
		return -1;
	if (fresh || !file_exists(c->runtime_events_file)) {
		if (!fresh && simtee_td_create(c->simtee_state, NULL, e) < 0)
			return err_wrap(e, "simulated TD");
		return emit_boot_events(a, dir, e);
	}
	return 0;
}
