/*
 * cmd_vmm.c — `dstack vmm <cmd>`: the operator client of dstack-vmm, the
 * subcommands of the reference vmm-cli.py (spec vmm.md §14). This file is
 * the dispatcher: the global options (--url, credentials, --json) and the
 * command table; each subcommand lives in a vmm_<group>.c (see vmm_cmds.h),
 * the client, URL resolution and output helpers in vmm_client.c/vmm_url.c.
 * Every call is `POST /prpc/<Method>?json`; tables for people, --json for
 * scripts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "core/cleanup.h"
#include "vmm_cmds.h"

/* local: never talks to a VMM, so does not look for one */
static const struct {
	const char *name;
	vmm_cmd_fn *run;
	bool local;
} commands[] = {
    {"lsvm", vmm_lsvm, false},
    {"info", vmm_info, false},
    {"lsimage", vmm_lsimage, false},
    {"lsgpu", vmm_lsgpu, false},
    {"compose", vmm_compose, true},
    {"app-id", vmm_app_id, true},
    {"deploy", vmm_deploy, false},
    {"start", vmm_start, false},
    {"stop", vmm_stop, false},
    {"remove", vmm_remove, false},
    {"resize", vmm_resize, false},
    {"logs", vmm_logs, false},
    {"update", vmm_update, false},
    {"update-env", vmm_update_env, false},
    {"update-app-compose", vmm_update_app_compose, false},
    {"update-user-config", vmm_update_user_config, false},
    {"update-ports", vmm_update_ports, false},
    {"kms", vmm_kms, true},
    {"vmm", vmm_vmm, true},
};

static void usage(void)
{
	fprintf(
	    stderr,
	    "usage: dstack vmm [--url URL] [--token T | --auth-user U --auth-password P] [--json] <command>\n"
	    "commands:\n"
	    "  lsvm [-v]                        list VMs (--json: the vms array)\n"
	    "  info <id>                        one VM\n"
	    "  lsimage                          list images\n"
	    "  lsgpu                            list GPUs and whether they are free\n"
	    "  compose --name N (--docker-compose F | --bash-script F) --output F [--kms] [--gateway]\n"
	    "          [--local-key-provider] [--key-provider none|kms|local|tpm] [--key-provider-id HEX]\n"
	    "          [--public-logs] [--public-sysinfo] [--env-file F] [--no-instance-id] [--secure-time]\n"
	    "          [--prelaunch-script F] [--swap 4G] [--event-log-version 1|2]\n"
	    "  app-id <app-compose.json>        the default app id of a compose file\n"
	    "  deploy --name N --image I --compose F [--vcpu 1] [--memory 1G] [--disk 20G] [--swap 4G]\n"
	    "         [--port tcp[:addr]:host:vm]... [--env-file F] [--user-config F] [--app-id HEX]\n"
	    "         [--gpu SLOT|all]... [--ppcie] [--pin-numa] [--hugepages] [--kms-url U]...\n"
	    "         [--kms-encrypt-url U] [--gateway-url U]... [--stopped] [--no-tee|--tee]\n"
	    "         [--simulated-tee V] [--net user|bridge]\n"
	    "  start <id>                       start a stopped VM\n"
	    "  stop [-f] <id>                   graceful shutdown through the guest; -f kills it\n"
	    "  remove <id>                      remove a VM and its work directory\n"
	    "  resize <id> [--vcpu N] [--memory M] [--disk D] [--image I]   (stopped VMs)\n"
	    "  logs <id> [-n N] [-f] [--channel serial|stdout|stderr]\n"
	    "  update <id> [--vcpu N] [--memory M] [--disk D] [--image I] [--compose F]\n"
	    "         [--prelaunch-script F] [--swap S] [--env-file F] [--user-config F]\n"
	    "         [--port P... | --no-ports] [--gpu SLOT|all... | --ppcie | --no-gpus]\n"
	    "         [--no-tee | --tee] [--kms-url U]...   resize, then one UpgradeApp\n"
	    "  update-env <id> --env-file F [--kms-url U]\n"
	    "  update-app-compose <id> F\n"
	    "  update-user-config <id> F\n"
	    "  update-ports <id> [--port tcp[:addr]:host:vm]...\n"
	    "  kms list | add <key> | remove <key>   trusted KMS signers (~/.dstack-vmm/kms-whitelist.json)\n"
	    "  vmm ls                           running VMMs on this machine (* = active)\n"
	    "  vmm switch <id-prefix>           make one of them the active VMM\n"
	    "URL: --url, DSTACK_VMM_URL, `url` in ~/.dstack-vmm/config.json, the running VMM named by\n"
	    "`active_vmm` there (vmm switch), the only running VMM, else http://localhost:8080.\n"
	    "Credentials: prefer DSTACK_VMM_TOKEN or DSTACK_VMM_AUTH_USER/DSTACK_VMM_AUTH_PASSWORD;\n"
	    "--token and --auth-password put the secret in argv, readable by every user (ps).\n");
}

/* The options before the subcommand; returns the subcommand's index, or -(exit status + 1). */
static int global_options(struct vmm_cli *c, const char **url, int argc, char **argv)
{
	const char *argv_secret = NULL;
	int i = 1;

	c->token = getenv("DSTACK_VMM_TOKEN");
	c->user = getenv("DSTACK_VMM_AUTH_USER");
	c->password = getenv("DSTACK_VMM_AUTH_PASSWORD");
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--json"))
			c->json = true;
		else if (!strcmp(argv[i], "--url") && i + 1 < argc)
			*url = argv[++i];
		else if (!strcmp(argv[i], "--token") && i + 1 < argc)
			c->token = argv[++i], argv_secret = "--token";
		else if (!strcmp(argv[i], "--auth-user") && i + 1 < argc)
			c->user = argv[++i];
		else if (!strcmp(argv[i], "--auth-password") && i + 1 < argc)
			c->password = argv[++i], argv_secret = "--auth-password";
		else {
			usage();
			return !strcmp(argv[i], "-h") || !strcmp(argv[i], "--help") ? -1 : -3;
		}
	}
	if (i >= argc) {
		usage();
		return -3;
	}
	if (argv_secret)
		fprintf(stderr,
			"dstack vmm: warning: %s exposes the secret to other users; set DSTACK_VMM_TOKEN or "
			"DSTACK_VMM_AUTH_PASSWORD instead\n",
			argv_secret);
	if (!c->token && (!!c->user != !!c->password)) {
		fprintf(stderr, "dstack vmm: --auth-user and --auth-password go together\n");
		return -3;
	}
	return i;
}

int cmd_vmm(int argc, char **argv)
{
	struct vmm_cli c = {0};
	const char *url = NULL;
	int i = global_options(&c, &url, argc, argv), rc;

	if (i < 0)
		return -i - 1;
	/* --json may also follow the subcommand */
	for (int k = i + 1; k < argc; k++)
		if (!strcmp(argv[k], "--json")) {
			c.json = true;
			memmove(&argv[k], &argv[k + 1], (size_t)(argc - k - 1) * sizeof(*argv));
			argc--;
			k--;
		}
	argc -= i;
	argv += i;
	for (size_t k = 0; k < ARRAY_SIZE(commands); k++) {
		if (strcmp(argv[0], commands[k].name))
			continue;
		if (!commands[k].local)
			c.url = vmm_resolve_url(url);
		rc = commands[k].run(&c, argc, argv);
		free(c.url);
		return rc;
	}
	fprintf(stderr, "dstack vmm: unknown command %s\n", argv[0]);
	usage();
	return 2;
}
