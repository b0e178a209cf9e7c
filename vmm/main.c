/*
 * main.c — the `dstack-vmm` program. So far: `check-config` (load the
 * vmm.toml layers, validate, print the effective key facts) and the hidden
 * `vm-launcher --spec launch.json` that runs swtpm + QEMU for TPM VMs.
 * `serve` arrives with the RPC layer.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "vmm/config.h"
#include "vmm/launcher.h"

static void usage(void)
{
	fprintf(stderr, "usage: dstack-vmm [-c FILE] check-config\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'}, {"help", no_argument, NULL, 'h'}, {0}};
	const char *file = NULL, *cmd;
	struct vmm_config cfg;
	struct err e = ERR_INIT;
	int c;

	if (argc >= 4 && !strcmp(argv[1], "vm-launcher") && !strcmp(argv[2], "--spec")) {
		log_init("vm-launcher", LOG_LVL_INFO);
		return vmm_launcher_run(argv[3]);
	}
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		if (c == 'c') {
			file = optarg;
		} else {
			usage();
			return c == 'h' ? 0 : 2;
		}
	}
	cmd = optind < argc ? argv[optind] : "serve";
	log_init("vmm", LOG_LVL_INFO);
	if (strcmp(cmd, "check-config")) {
		fprintf(stderr, "dstack-vmm: %s: not available yet (only check-config)\n", cmd);
		return 2;
	}
	if (vmm_config_load(&cfg, file, NULL, NULL, &e) < 0) {
		fprintf(stderr, "dstack-vmm: %s\n", err_str(&e));
		vmm_config_free(&cfg);
		return 1;
	}
	printf("run_path = %s\nimage.path = %s\ncid range = %u..%u\nport_mapping = %s\n", cfg.run_path,
	       cfg.image_path, cfg.cvm.cid_start, cfg.cvm.cid_start + cfg.cvm.cid_pool_size - 1,
	       cfg.cvm.port_mapping.enabled ? "enabled" : "disabled");
	printf("Config OK\n");
	vmm_config_free(&cfg);
	return 0;
}
