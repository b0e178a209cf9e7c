/*
 * vmm_deploy.c — `dstack vmm deploy`: one CreateVm from an app-compose.json
 * and flags. With --env-file the environment is encrypted here, to the app's
 * env key from the KMS (--kms-encrypt-url, else the first --kms-url) after
 * its signer is checked (vmm_kms.c): the VMM never sees the plaintext.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "vmm_cmds.h"

struct deploy_flags {
	const char *name, *image, *cf, *envf, *ucf, *app_id, *enc_url, *sim, *swap, *net;
	uint32_t vcpu, mem, disk;
	bool stopped, no_tee, tee, pin_numa, hugepages;
	struct gpu_flags gpu;
	json_t *ports, *kms, *gws; /* owned by the request */
};

static void deploy_flags_free(struct deploy_flags *f)
{
	gpu_flags_free(&f->gpu);
}

static int deploy_parse(struct deploy_flags *f, int argc, char **argv)
{
	static const struct option o[] = {{"name", required_argument, NULL, 'N'},
					  {"image", required_argument, NULL, 'i'},
					  {"compose", required_argument, NULL, 'C'},
					  {"vcpu", required_argument, NULL, 'c'},
					  {"memory", required_argument, NULL, 'm'},
					  {"disk", required_argument, NULL, 'd'},
					  {"env-file", required_argument, NULL, 'e'},
					  {"user-config", required_argument, NULL, 'u'},
					  {"app-id", required_argument, NULL, 'a'},
					  {"port", required_argument, NULL, 'p'},
					  {"kms-url", required_argument, NULL, 'k'},
					  {"kms-encrypt-url", required_argument, NULL, 'K'},
					  {"gateway-url", required_argument, NULL, 'g'},
					  {"stopped", no_argument, NULL, 's'},
					  {"no-tee", no_argument, NULL, 'n'},
					  {"simulated-tee", required_argument, NULL, 'S'},
					  {"swap", required_argument, NULL, 'w'},
					  {"gpu", required_argument, NULL, 'G'},
					  {"ppcie", no_argument, NULL, 'P'},
					  {"pin-numa", no_argument, NULL, 'U'},
					  {"hugepages", no_argument, NULL, 'H'},
					  {"tee", no_argument, NULL, 'T'},
					  {"net", required_argument, NULL, 'W'},
					  {0}};
	/* the options that only store their value or set a flag */
	const struct flag_dest dest[] = {
	    {'N', &f->name, NULL},     {'i', &f->image, NULL},     {'C', &f->cf, NULL},
	    {'e', &f->envf, NULL},     {'u', &f->ucf, NULL},       {'a', &f->app_id, NULL},
	    {'K', &f->enc_url, NULL},  {'S', &f->sim, NULL},       {'w', &f->swap, NULL},
	    {'W', &f->net, NULL},      {'s', NULL, &f->stopped},   {'n', NULL, &f->no_tee},
	    {'U', NULL, &f->pin_numa}, {'H', NULL, &f->hugepages}, {'T', NULL, &f->tee}};
	struct err e = ERR_INIT;
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", o, NULL)) != -1) {
		json_t *p;

		if (flag_store(dest, ARRAY_SIZE(dest), opt, optarg))
			continue;
		switch (opt) {
		case 'c':
			f->vcpu = (uint32_t)atoi(optarg);
			break;
		case 'm':
			f->mem = parse_size_mb(optarg, false);
			break;
		case 'd':
			f->disk = parse_size_mb(optarg, true);
			break;
		case 'p':
			if (!(p = parse_port(optarg, &e)))
				return vmm_die("deploy", &e);
			json_array_append_new(f->ports, p);
			break;
		case 'k':
			json_array_append_new(f->kms, json_string(optarg));
			break;
		case 'g':
			json_array_append_new(f->gws, json_string(optarg));
			break;
		case 'G':
		case 'P':
			if (gpu_flag(&f->gpu, opt == 'P' ? NULL : optarg) < 0)
				return 2;
			break;
		default:
			return 2;
		}
	}
	if (f->tee && f->no_tee)
		return vmm_die("deploy: --tee and --no-tee contradict each other", NULL);
	if (f->net && strcmp(f->net, "user") && strcmp(f->net, "bridge"))
		return vmm_die("deploy: --net takes user or bridge", NULL);
	if (!f->name || !f->image || !f->cf) {
		fprintf(stderr,
			"usage: dstack vmm deploy --name N --image I --compose F [--vcpu N] [--memory 1G] "
			"[--disk 20G] [--swap 4G] [--port tcp[:addr]:host:vm]... [--env-file F --kms-url U] "
			"[--user-config F] [--app-id HEX] [--gpu SLOT|all]... [--ppcie] [--pin-numa] "
			"[--hugepages] "
			"[--kms-url U]... [--kms-encrypt-url U] [--gateway-url U]... [--stopped] "
			"[--no-tee|--tee] "
			"[--simulated-tee V] [--net user|bridge]\n");
		return 2;
	}
	return 0;
}

/* The encrypted env of --env-file, hex: checks first that the compose lets a KMS decrypt it. */
static int deploy_env(struct vmm_cli *c, const struct deploy_flags *f, const char *ctext, const char *aid,
		      char **env_hex)
{
	_cleanup_json_ json_t *cj = json_loads(ctext, 0, NULL);
	struct err e = ERR_INIT;

	if (!json_array_size(f->kms) && !f->enc_url)
		return vmm_die("deploy: --env-file requires --kms-url", NULL);
	if (!json_is_true(json_object_get(cj, "kms_enabled")) && strcmp(js(cj, "key_provider"), "kms"))
		return vmm_die(
		    "deploy: --env-file needs a compose with kms_enabled (the KMS decrypts the env)", NULL);
	if (encrypt_env_file(c, f->enc_url ? f->enc_url : json_string_value(json_array_get(f->kms, 0)), aid,
			     f->envf, env_hex, &e) < 0)
		return vmm_die("deploy: encrypting the environment", &e);
	return 0;
}

int vmm_deploy(struct vmm_cli *c, int argc, char **argv)
{
	struct deploy_flags f
	    __attribute__((cleanup(deploy_flags_free))) = {.vcpu = 1, .mem = 1024, .disk = 20};
	_cleanup_json_ json_t *req = json_object(), *r = NULL;
	_cleanup_free_ char *ctext = NULL, *utext = NULL, *env_hex = NULL;
	struct err e = ERR_INIT;
	char aid[41];
	size_t len;
	int rc;

	json_object_set_new(req, "ports", f.ports = json_array());
	json_object_set_new(req, "kms_urls", f.kms = json_array());
	json_object_set_new(req, "gateway_urls", f.gws = json_array());
	if ((rc = deploy_parse(&f, argc, argv)))
		return rc;
	if (read_text(f.cf, &ctext, &len, &e) < 0 || (f.ucf && read_text(f.ucf, &utext, &len, &e) < 0))
		return vmm_die("deploy", &e);
	if (f.app_id)
		snprintf(aid, sizeof(aid), "%s", f.app_id + (!strncmp(f.app_id, "0x", 2) ? 2 : 0));
	else
		app_id_of(ctext, strlen(ctext), aid);
	if (f.envf && (rc = deploy_env(c, &f, ctext, aid, &env_hex)))
		return rc;
	json_object_set_new(req, "name", json_string(f.name));
	json_object_set_new(req, "image", json_string(f.image));
	json_object_set_new(req, "compose_file", json_string(ctext));
	json_object_set_new(req, "vcpu", json_integer(f.vcpu));
	json_object_set_new(req, "memory", json_integer(f.mem));
	json_object_set_new(req, "disk_size", json_integer(f.disk));
	json_object_set_new(req, "encrypted_env", json_string(env_hex ? env_hex : ""));
	json_object_set_new(req, "user_config", json_string(utext ? utext : ""));
	if (f.app_id)
		json_object_set_new(req, "app_id", json_string(aid));
	json_object_set_new(req, "stopped", json_boolean(f.stopped));
	json_object_set_new(req, "no_tee", json_boolean(f.no_tee));
	if (f.sim)
		json_object_set_new(req, "simulated_tee", json_string(f.sim));
	json_object_set_new(req, "hugepages", json_boolean(f.hugepages));
	json_object_set_new(req, "pin_numa", json_boolean(f.pin_numa));
	if (f.gpu.set)
		json_object_set_new(req, "gpus", gpu_json(&f.gpu));
	if (f.net)
		json_object_set_new(req, "networking", json_pack("{s:s}", "mode", f.net));
	if (f.swap) /* as vmm-cli.py does: sent, and ignored by the server (swap is an app-compose setting) */
		json_object_set_new(req, "swap_size", json_integer(parse_size_mb(f.swap, false)));
	if (vmm_call(c, "CreateVm", json_incref(req), &r, &e) < 0)
		return vmm_die("deploy", &e);
	if (c->json) {
		json_object_set_new(r, "app_id", json_string(aid));
		print_json(r);
	} else {
		printf("App ID: %s\nCreated VM with ID: %s\n", aid, js(r, "id"));
	}
	return 0;
}
