/*
 * main.c — the `dstack` command-line tool for operators and app developers.
 *
 * Table-driven dispatch, one file per subcommand (wireguard-tools style):
 * adding a command is one line here plus its cmd_<name>.c.
 */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "core/cleanup.h"

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} commands[] = {
    {"compose-hash", cmd_compose_hash, "Print the compose hash (SHA-256) of an app-compose.json"},
    {"app-id", cmd_app_id, "Print the default app id of an app-compose.json"},
    {"encrypt-env", cmd_encrypt_env, "Encrypt environment variables for a CVM"},
    {"decrypt-env", cmd_decrypt_env, "Decrypt an .encrypted-env file with the app env key"},
    {"derive", cmd_derive, "Derive app keys from a KMS root key (for testing and audits)"},
    {"simtee", cmd_simtee, "Simulated TDX: development PKI and collateral service"},
    {"verify", cmd_verify, "Verify a TDX quote or dstack attestation"},
    {"vmm", cmd_vmm, "Manage VMs on a dstack-vmm (list, deploy, start, stop, logs, ...)"},
    {"hostcfg", cmd_hostcfg, "Generate host configuration (kms.toml, gateway.toml, vmm.toml, certs)"},
    {"dev", cmd_dev, "Run a local dev stack: dev up | down | status"},
};

static void usage(FILE *f, const char *prog)
{
	fprintf(f, "Usage: %s <command> [options]\n\nCommands:\n", prog);
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(f, "  %-14s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nRun '%s <command> --help' for the options of a command.\n", prog);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr, argv[0]);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout, argv[0]);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("dstack %s\n", DSTACK_VERSION);
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "%s: unknown command '%s'\n\n", argv[0], argv[1]);
	usage(stderr, argv[0]);
	return 2;
}
