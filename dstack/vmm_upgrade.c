/*
 * vmm_upgrade.c — the one-field UpgradeApp commands of vmm-cli.py:
 * update-env (re-encrypt the env, and rewrite allowed_envs in the compose
 * when its keys changed), update-app-compose and update-user-config (a file
 * stored verbatim), update-ports (the whole port list replaced). `update`
 * (vmm_update.c) does all of these at once.
 */
#include <getopt.h>
#include <stdio.h>

#include "core/cleanup.h"
#include "vmm_cmds.h"

/* UpgradeApp req (consumed); "<what>: ok" unless --json. */
static int upgrade(struct vmm_cli *c, json_t *req, const char *what)
{
	struct err e = ERR_INIT;

	if (vmm_call(c, "UpgradeApp", req, NULL, &e) < 0)
		return vmm_die(what, &e);
	if (!c->json)
		printf("%s: ok\n", what);
	return 0;
}

int vmm_update_env(struct vmm_cli *c, int argc, char **argv)
{
	static const struct option o[] = {
	    {"env-file", required_argument, NULL, 'e'}, {"kms-url", required_argument, NULL, 'k'}, {0}};
	const char *envf = NULL, *kms = NULL;
	_cleanup_free_ char *hex = NULL;
	_cleanup_json_ json_t *compose = NULL;
	struct err e = ERR_INIT;
	json_t *req;
	bool changed;
	char aid[41];
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", o, NULL)) != -1) {
		if (opt == 'e')
			envf = optarg;
		else if (opt == 'k')
			kms = optarg;
		else
			return 2;
	}
	if (optind >= argc || !envf) {
		fprintf(stderr, "usage: dstack vmm update-env <vm-id> --env-file F [--kms-url U]\n");
		return 2;
	}
	if (!(compose = vm_compose(c, argv[optind], aid, &e)) ||
	    encrypt_env_file(c, kms, aid, envf, &hex, &e) < 0 ||
	    env_compose_update(compose, envf, &changed, &e) < 0)
		return vmm_die("update-env", &e);
	req = json_pack("{s:s,s:s}", "id", argv[optind], "encrypted_env", hex);
	if (changed) {
		_cleanup_free_ char *dump = compose_dump(compose);

		json_object_set_new(req, "compose_file", json_string(dump));
	}
	return upgrade(c, req, "update-env");
}

/* UpgradeApp with one field read from a file: `<cmd> <vm-id> <file>`. */
static int upgrade_from_file(struct vmm_cli *c, int argc, char **argv, const char *field,
			     const char *file_desc)
{
	struct err e = ERR_INIT;
	json_t *req;

	if (argc < 3) {
		fprintf(stderr, "usage: dstack vmm %s <vm-id> <%s>\n", argv[0], file_desc);
		return 2;
	}
	req = json_pack("{s:s}", "id", argv[1]);
	if (set_from_file(req, field, argv[2], &e) < 0) {
		json_decref(req);
		return vmm_die(argv[0], &e);
	}
	return upgrade(c, req, argv[0]);
}

int vmm_update_app_compose(struct vmm_cli *c, int argc, char **argv)
{
	return upgrade_from_file(c, argc, argv, "compose_file", "app-compose.json");
}

int vmm_update_user_config(struct vmm_cli *c, int argc, char **argv)
{
	return upgrade_from_file(c, argc, argv, "user_config", "file");
}

int vmm_update_ports(struct vmm_cli *c, int argc, char **argv)
{
	static const struct option o[] = {{"port", required_argument, NULL, 'p'}, {0}};
	_cleanup_json_ json_t *ports = json_array();
	struct err e = ERR_INIT;
	json_t *p;
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", o, NULL)) != -1) {
		if (opt != 'p')
			return 2;
		if (!(p = parse_port(optarg, &e)))
			return vmm_die("update-ports", &e);
		json_array_append_new(ports, p);
	}
	if (optind >= argc) {
		fprintf(stderr, "usage: dstack vmm update-ports <vm-id> [--port tcp[:addr]:host:vm]...\n");
		return 2;
	}
	return upgrade(c, json_pack("{s:s,s:b,s:O}", "id", argv[optind], "update_ports", 1, "ports", ports),
		       "update-ports");
}
