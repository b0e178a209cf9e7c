/*
 * util_main.c — `dstack-util`, the guest's boot-time tool.
 *
 *   dstack-util setup --work-dir DIR --host-shared DIR [--device DEV]
 *       [--mount-point DIR] [--tee auto|tdx|simtee] [--simtee-dir DIR]
 *       [--simtee-state FILE] [--runtime-events-dir DIR] [--pccs-url URL]
 *       [--pccs-cache DIR] [--dev-root-ca FILE] [--wg-interface NAME]
 *       [--no-wg-up] [--gateway-required]
 *
 * --dev-root-ca trusts a development quote root (the simulated TDX's) when
 * verifying the KMS; never use it on real hardware. The gateway options are
 * described in setup.h.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "setup.h"

static void usage(FILE *f)
{
	fputs("Usage: dstack-util setup --work-dir DIR --host-shared DIR [--device DEV] [--mount-point DIR]\n"
	      "         [--tee auto|tdx|simtee] [--simtee-dir DIR] [--simtee-state FILE]\n"
	      "         [--runtime-events-dir DIR] [--pccs-url URL] [--pccs-cache DIR] [--dev-root-ca FILE]\n"
	      "         [--wg-interface NAME] [--no-wg-up] [--gateway-required]\n",
	      f);
}

enum {
	O_WORK = 1,
	O_SHARED,
	O_DEV,
	O_MNT,
	O_TEE,
	O_SDIR,
	O_SSTATE,
	O_RT,
	O_PCCS,
	O_CACHE,
	O_ROOT,
	O_LOG,
	O_WGIF,
	O_NO_WG_UP,
	O_GW_REQUIRED,
	O_HELP
};

static int cmd_setup(int argc, char **argv)
{
	static const struct option opts[] = {{"work-dir", required_argument, NULL, O_WORK},
					     {"host-shared", required_argument, NULL, O_SHARED},
					     {"device", required_argument, NULL, O_DEV},
					     {"mount-point", required_argument, NULL, O_MNT},
					     {"tee", required_argument, NULL, O_TEE},
					     {"simtee-dir", required_argument, NULL, O_SDIR},
					     {"simtee-state", required_argument, NULL, O_SSTATE},
					     {"runtime-events-dir", required_argument, NULL, O_RT},
					     {"pccs-url", required_argument, NULL, O_PCCS},
					     {"pccs-cache", required_argument, NULL, O_CACHE},
					     {"dev-root-ca", required_argument, NULL, O_ROOT},
					     {"log-level", required_argument, NULL, O_LOG},
					     {"wg-interface", required_argument, NULL, O_WGIF},
					     {"no-wg-up", no_argument, NULL, O_NO_WG_UP},
					     {"gateway-required", no_argument, NULL, O_GW_REQUIRED},
					     {"help", no_argument, NULL, O_HELP},
					     {NULL, 0, NULL, 0}};
	struct setup_opts o = {.host_shared = "/tmp/.host-shared", .rt_dir = "/run/log/dstack"};
	enum log_level lvl = LOG_LVL_INFO;
	struct err e = ERR_INIT;
	int c;

	o.tee.backend = "auto";
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case O_WORK:
			o.work_dir = optarg;
			break;
		case O_SHARED:
			o.host_shared = optarg;
			break;
		case O_DEV:
			o.device = optarg;
			break;
		case O_MNT:
			o.mount_point = optarg;
			break;
		case O_TEE:
			o.tee.backend = optarg;
			break;
		case O_SDIR:
			o.tee.simtee_dir = optarg;
			break;
		case O_SSTATE:
			o.tee.simtee_state = optarg;
			break;
		case O_RT:
			o.rt_dir = optarg;
			break;
		case O_PCCS:
			o.pccs_url = optarg;
			break;
		case O_CACHE:
			o.pccs_cache = optarg;
			break;
		case O_ROOT:
			o.dev_root_ca = optarg;
			break;
		case O_WGIF:
			o.wg_interface = optarg;
			break;
		case O_NO_WG_UP:
			o.no_wg_up = true;
			break;
		case O_GW_REQUIRED:
			o.gateway_required = true;
			break;
		case O_LOG:
			if (log_level_parse(optarg, &lvl) < 0) {
				fprintf(stderr, "dstack-util: unknown log level %s\n", optarg);
				return 2;
			}
			break;
		case 'h':
		case O_HELP:
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!o.work_dir) {
		usage(stderr);
		return 2;
	}
	log_init("dstack-util", lvl);
	if (guest_setup(&o, &e) < 0) {
		fprintf(stderr, "dstack-util setup: %s\n", err_str(&e));
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "setup") == 0)
		return cmd_setup(argc - 1, argv + 1);
	fprintf(stderr, "dstack-util: unknown command %s\n", argv[1]);
	usage(stderr);
	return 2;
}
