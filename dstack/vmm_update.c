/*
 * vmm_update.c — `dstack vmm update <id>`: ResizeVm first when a resource
 * flag is given, then one UpgradeApp carrying only what the flags name (the
 * server treats an absent field as "keep"). --compose replaces the compose's
 * docker_compose_file, --prelaunch-script its pre_launch_script, --swap its
 * swap_size, --env-file its allowed_envs (and launch_token_hash); the rest of
 * the VM's compose is kept, so the app id does not change. Also the helpers
 * update-env (vmm_upgrade.c) shares: the VM's compose and the env's effect on it.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/hex.h"
#include "crypto/envlist.h"
#include "crypto/hash.h"
#include "vmm_cmds.h"

json_t *vm_compose(struct vmm_cli *c, const char *id, char aid[41], struct err *e)
{
	_cleanup_json_ json_t *r = NULL;
	json_t *info, *j;

	if (vmm_call(c, "GetInfo", json_pack("{s:s}", "id", id), &r, e) < 0)
		return NULL;
	if (!json_is_true(json_object_get(r, "found")))
		return err_set(e, "VM %s not found", id), NULL;
	info = json_object_get(r, "info");
	if (aid)
		snprintf(aid, 41, "%s", js(info, "app_id"));
	j = json_loads(js(json_object_get(info, "configuration"), "compose_file"), 0, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return err_set(e, "VM %s: its app-compose.json is not a JSON object", id), NULL;
	}
	return j;
}

/*
 * What an env file changes in the compose: allowed_envs becomes its keys
 * (the guest drops every other variable), and APP_LAUNCH_TOKEN, when
 * present, sets launch_token_hash = sha256(token) hex. *changed when the
 * compose changed.
 */
int env_compose_update(json_t *compose, const char *env_file, bool *changed, struct err *e)
{
	struct env_list env = ENV_LIST_INIT;
	_cleanup_json_ json_t *keys = json_array();

	*changed = false;
	if (env_file_load(env_file, &env, e) < 0) {
		env_list_free(&env);
		return -1;
	}
	for (size_t i = 0; i < env.n; i++) {
		json_array_append_new(keys, json_string(env.items[i].key));
		if (!strcmp(env.items[i].key, "APP_LAUNCH_TOKEN")) {
			uint8_t h[32];
			char hex[65];

			sha256(env.items[i].value, strlen(env.items[i].value), h);
			hex_encode(h, 32, hex);
			if (strcmp(js(compose, "launch_token_hash"), hex)) {
				json_object_set_new(compose, "launch_token_hash", json_string(hex));
				*changed = true;
			}
		}
	}
	if (!json_equal(json_object_get(compose, "allowed_envs"), keys)) {
		json_object_set(compose, "allowed_envs", keys);
		*changed = true;
	}
	env_list_free(&env);
	return 0;
}

char *compose_dump(const json_t *compose)
{
	return json_dumps(compose, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
}

/* obj[field] := the text of path (a no-op when path is NULL). */
int set_from_file(json_t *obj, const char *field, const char *path, struct err *e)
{
	_cleanup_free_ char *t = NULL;
	size_t len;

	if (!path)
		return 0;
	if (read_text(path, &t, &len, e) < 0)
		return -1;
	json_object_set_new(obj, field, json_string(t));
	return 0;
}

struct update_flags {
	const char *dc, *pre, *swap, *envf, *ucf;
	bool set_ports, no_ports, no_gpus, no_tee, tee;
	struct gpu_flags gpu;
	json_t *resize, *ports, *kms;
};

static void update_flags_free(struct update_flags *f)
{
	gpu_flags_free(&f->gpu);
	json_decref(f->resize);
	json_decref(f->ports);
	json_decref(f->kms);
}

static int update_parse(struct update_flags *f, int argc, char **argv)
{
	static const struct option o[] = {{"vcpu", required_argument, NULL, 'c'},
					  {"memory", required_argument, NULL, 'm'},
					  {"disk", required_argument, NULL, 'd'},
					  {"image", required_argument, NULL, 'i'},
					  {"compose", required_argument, NULL, 'C'},
					  {"prelaunch-script", required_argument, NULL, 'p'},
					  {"swap", required_argument, NULL, 'w'},
					  {"env-file", required_argument, NULL, 'e'},
					  {"user-config", required_argument, NULL, 'u'},
					  {"port", required_argument, NULL, 'o'},
					  {"no-ports", no_argument, NULL, 'O'},
					  {"gpu", required_argument, NULL, 'G'},
					  {"ppcie", no_argument, NULL, 'P'},
					  {"no-gpus", no_argument, NULL, 'X'},
					  {"no-tee", no_argument, NULL, 'n'},
					  {"tee", no_argument, NULL, 'T'},
					  {"kms-url", required_argument, NULL, 'k'},
					  {0}};
	/* the options that only store their value or set a flag */
	const struct flag_dest dest[] = {
	    {'C', &f->dc, NULL},      {'p', &f->pre, NULL},    {'w', &f->swap, NULL},
	    {'e', &f->envf, NULL},    {'u', &f->ucf, NULL},    {'O', NULL, &f->no_ports},
	    {'X', NULL, &f->no_gpus}, {'n', NULL, &f->no_tee}, {'T', NULL, &f->tee}};
	struct err e = ERR_INIT;
	json_t *p;
	int opt;

	f->resize = json_object();
	f->ports = json_array();
	f->kms = json_array();
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", o, NULL)) != -1) {
		if (flag_store(dest, ARRAY_SIZE(dest), opt, optarg) || resize_flag(f->resize, opt, optarg))
			continue;
		if (opt == 'o') {
			if (!(p = parse_port(optarg, &e)))
				return vmm_die("update", &e);
			json_array_append_new(f->ports, p);
			f->set_ports = true;
		} else if (opt == 'G' || opt == 'P') {
			if (gpu_flag(&f->gpu, opt == 'P' ? NULL : optarg) < 0)
				return 2;
		} else if (opt == 'k') {
			json_array_append_new(f->kms, json_string(optarg));
		} else {
			return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr,
			"usage: dstack vmm update <vm-id> [--vcpu N] [--memory M] [--disk D] [--image I] "
			"[--compose F] [--prelaunch-script F] [--swap S] [--env-file F] [--user-config F] "
			"[--port P... | --no-ports] [--gpu SLOT|all... | --ppcie | --no-gpus] "
			"[--no-tee | --tee] [--kms-url U]...\n");
		return 2;
	}
	if ((f->set_ports && f->no_ports) || (f->gpu.set && f->no_gpus) || (f->tee && f->no_tee))
		return vmm_die(
		    "update: --port/--no-ports, --gpu/--ppcie/--no-gpus and --tee/--no-tee exclude "
		    "each other",
		    NULL);
	return 0;
}

/* The compose edits of --compose, --prelaunch-script, --swap and --env-file into req. */
static int update_compose(struct vmm_cli *c, const struct update_flags *f, const char *id, json_t *req)
{
	_cleanup_json_ json_t *compose = NULL;
	_cleanup_free_ char *hex = NULL, *dump = NULL;
	struct err e = ERR_INIT;
	char aid[41];
	bool changed = true;

	if (!(compose = vm_compose(c, id, aid, &e)) ||
	    set_from_file(compose, "docker_compose_file", f->dc, &e) < 0 ||
	    set_from_file(compose, "pre_launch_script", f->pre, &e) < 0)
		return vmm_die("update", &e);
	if (f->swap)
		json_object_set_new(compose, "swap_size", json_string(f->swap));
	if (f->envf) {
		bool env_changed;

		if (encrypt_env_file(c, json_string_value(json_array_get(f->kms, 0)), aid, f->envf, &hex,
				     &e) < 0 ||
		    env_compose_update(compose, f->envf, &env_changed, &e) < 0)
			return vmm_die("update: encrypting the environment", &e);
		json_object_set_new(req, "encrypted_env", json_string(hex));
		changed = f->dc || f->pre || f->swap || env_changed;
	}
	if (changed) {
		dump = compose_dump(compose);
		json_object_set_new(req, "compose_file", json_string(dump));
	}
	return 0;
}

int vmm_update(struct vmm_cli *c, int argc, char **argv)
{
	struct update_flags f __attribute__((cleanup(update_flags_free))) = {0};
	_cleanup_json_ json_t *req = NULL;
	struct err e = ERR_INIT;
	const char *id;
	int rc;

	if ((rc = update_parse(&f, argc, argv)))
		return rc;
	id = argv[optind];
	req = json_pack("{s:s}", "id", id);
	if ((f.dc || f.pre || f.swap || f.envf) && (rc = update_compose(c, &f, id, req)))
		return rc;
	if (set_from_file(req, "user_config", f.ucf, &e) < 0)
		return vmm_die("update", &e);
	if (f.set_ports || f.no_ports) {
		json_object_set_new(req, "update_ports", json_true());
		json_object_set(req, "ports", f.ports);
	}
	if (f.gpu.set)
		json_object_set_new(req, "gpus", gpu_json(&f.gpu));
	else if (f.no_gpus)
		json_object_set_new(req, "gpus", json_pack("{s:s,s:[]}", "attach_mode", "listed", "gpus"));
	if (f.tee || f.no_tee)
		json_object_set_new(req, "no_tee", json_boolean(f.no_tee));
	if (json_array_size(f.kms)) {
		json_object_set_new(req, "update_kms_urls", json_true());
		json_object_set(req, "kms_urls", f.kms);
	}
	if (!json_object_size(f.resize) && json_object_size(req) == 1)
		return vmm_die("update: nothing to update (see `dstack vmm update` for the flags)", NULL);
	if (json_object_size(f.resize)) {
		json_object_set_new(f.resize, "id", json_string(id));
		if (vmm_call(c, "ResizeVm", json_incref(f.resize), NULL, &e) < 0)
			return vmm_die("update: resize", &e);
	}
	if (json_object_size(req) > 1 && vmm_call(c, "UpgradeApp", json_incref(req), NULL, &e) < 0)
		return vmm_die("update", &e);
	if (!c->json)
		printf("update: ok\n");
	return 0;
}
