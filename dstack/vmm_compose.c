/*
 * vmm_compose.c — the local `dstack vmm` commands that never talk to a VMM:
 * compose (write an app-compose.json with the reference's keys in the
 * reference's order, print its compose hash) and app-id (the default app id
 * of one: the first 20 bytes of its sha256).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/fileio.h"
#include "core/hex.h"
#include "crypto/envlist.h"
#include "crypto/hash.h"
#include "vmm_cmds.h"

void app_id_of(const char *compose, size_t len, char out[41])
{
	uint8_t h[32];

	sha256(compose, len, h);
	hex_encode(h, 20, out);
}

struct compose_flags {
	const char *name, *dc, *bash, *pre, *kp, *kpid, *envf, *swap, *elv, *output;
	bool kms, gw, lkp, plogs, psys, noiid, stime;
};

static int compose_parse(struct compose_flags *f, int argc, char **argv)
{
	static const struct option o[] = {{"name", required_argument, NULL, 'N'},
					  {"docker-compose", required_argument, NULL, 'd'},
					  {"bash-script", required_argument, NULL, 'b'},
					  {"prelaunch-script", required_argument, NULL, 'p'},
					  {"kms", no_argument, NULL, 'k'},
					  {"gateway", no_argument, NULL, 'g'},
					  {"local-key-provider", no_argument, NULL, 'l'},
					  {"key-provider", required_argument, NULL, 'K'},
					  {"key-provider-id", required_argument, NULL, 'I'},
					  {"public-logs", no_argument, NULL, 'L'},
					  {"public-sysinfo", no_argument, NULL, 'S'},
					  {"env-file", required_argument, NULL, 'e'},
					  {"no-instance-id", no_argument, NULL, 'n'},
					  {"secure-time", no_argument, NULL, 't'},
					  {"swap", required_argument, NULL, 's'},
					  {"event-log-version", required_argument, NULL, 'v'},
					  {"output", required_argument, NULL, 'o'},
					  {0}};
	/* where each option's value goes: a string, or a flag set to true */
	const struct flag_dest dest[] = {
	    {'N', &f->name, NULL}, {'d', &f->dc, NULL},     {'b', &f->bash, NULL}, {'p', &f->pre, NULL},
	    {'K', &f->kp, NULL},   {'I', &f->kpid, NULL},   {'e', &f->envf, NULL}, {'s', &f->swap, NULL},
	    {'v', &f->elv, NULL},  {'o', &f->output, NULL}, {'k', NULL, &f->kms},  {'g', NULL, &f->gw},
	    {'l', NULL, &f->lkp},  {'L', NULL, &f->plogs},  {'S', NULL, &f->psys}, {'n', NULL, &f->noiid},
	    {'t', NULL, &f->stime}};
	int opt;

	f->kpid = "";
	optind = 1;
	while ((opt = getopt_long(argc, argv, "o:", o, NULL)) != -1)
		if (!flag_store(dest, ARRAY_SIZE(dest), opt, optarg))
			return 2;
	if (!f->name || (!f->dc && !f->bash) || !f->output) {
		fprintf(
		    stderr,
		    "usage: dstack vmm compose --name N (--docker-compose F | --bash-script F) --output F "
		    "[--kms] [--gateway] [--env-file F] ...\n");
		return 2;
	}
	return 0;
}

/* The env file's keys, for allowed_envs (the guest drops every other variable). */
static int env_keys(const char *path, json_t *keys, struct err *e)
{
	struct env_list env = ENV_LIST_INIT;
	int rc = env_file_load(path, &env, e);

	for (size_t i = 0; rc == 0 && i < env.n; i++)
		json_array_append_new(keys, json_string(env.items[i].key));
	env_list_free(&env);
	return rc;
}

int vmm_compose(struct vmm_cli *c, int argc, char **argv)
{
	struct compose_flags f = {0};
	struct err e = ERR_INIT;
	_cleanup_free_ char *dtext = NULL, *ptext = NULL, *dump = NULL;
	_cleanup_json_ json_t *j = NULL, *allowed = json_array();
	size_t len;
	int rc;
	char hex[65];
	uint8_t h[32];

	(void)c;
	if ((rc = compose_parse(&f, argc, argv)))
		return rc;
	if (f.envf && !f.kms)
		return vmm_die("compose: --env-file requires --kms", NULL);
	if (read_text(f.dc ? f.dc : f.bash, &dtext, &len, &e) < 0 ||
	    (f.pre && read_text(f.pre, &ptext, &len, &e) < 0) ||
	    (f.envf && env_keys(f.envf, allowed, &e) < 0))
		return vmm_die("compose", &e);
	j = json_pack("{s:i,s:s,s:s}", "manifest_version", 2, "name", f.name, "runner",
		      f.dc ? "docker-compose" : "bash");
	json_object_set_new(j, f.dc ? "docker_compose_file" : "bash_script", json_string(dtext));
	json_object_set_new(j, "kms_enabled", json_boolean(f.kms));
	json_object_set_new(j, "gateway_enabled", json_boolean(f.gw));
	json_object_set_new(j, "local_key_provider_enabled", json_boolean(f.lkp));
	json_object_set_new(j, "key_provider_id", json_string(f.kpid));
	json_object_set_new(j, "public_logs", json_boolean(f.plogs));
	json_object_set_new(j, "public_sysinfo", json_boolean(f.psys));
	json_object_set(j, "allowed_envs", allowed);
	json_object_set_new(j, "no_instance_id", json_boolean(f.noiid));
	json_object_set_new(j, "secure_time", json_boolean(f.stime));
	if (f.kp)
		json_object_set_new(j, "key_provider", json_string(f.kp));
	if (ptext)
		json_object_set_new(j, "pre_launch_script", json_string(ptext));
	if (f.swap)
		json_object_set_new(j, "swap_size", json_string(f.swap));
	if (f.elv)
		json_object_set_new(j, "event_log_version", json_integer(atoi(f.elv)));
	dump = json_dumps(j, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
	if (file_write_atomic(f.output, dump, strlen(dump), 0644, &e) < 0)
		return vmm_die("compose", &e);
	sha256(dump, strlen(dump), h);
	hex_encode(h, 32, hex);
	printf("Compose hash: %s\n", hex);
	return 0;
}

int vmm_app_id(struct vmm_cli *c, int argc, char **argv)
{
	_cleanup_free_ char *t = NULL;
	size_t len;
	struct err e = ERR_INIT;
	char id[41];

	(void)c;
	if (argc < 2) {
		fprintf(stderr, "usage: dstack vmm app-id <app-compose.json>\n");
		return 2;
	}
	if (read_text(argv[1], &t, &len, &e) < 0)
		return vmm_die("app-id", &e);
	app_id_of(t, len, id);
	printf("%s\n", id);
	return 0;
}
