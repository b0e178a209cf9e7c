/*
 * daemon_args.h — the command line every dstack daemon shares
 * (dstack-kms, dstack-gateway, dstack-verifier): -c/--config FILE,
 * -h/--help, -V/--version, --print-defaults, and nothing else. One parser so
 * the three behave the same: help on stdout with exit 0, usage errors on
 * stderr with exit 2.
 */
#ifndef DSTACK_CONFIG_DAEMON_ARGS_H
#define DSTACK_CONFIG_DAEMON_ARGS_H

#include <stdio.h>

struct daemon_args {
	const char *prog;          /* "dstack-kms", printed by --version */
	void (*usage)(FILE *f);    /* the daemon's help text */
	const char *defaults_toml; /* printed by --print-defaults */
	const char *config;        /* out: the -c FILE, or NULL */
};

/* -1: go on and start (a->config set); otherwise the exit status. */
int daemon_args_parse(struct daemon_args *a, int argc, char **argv);

#endif
