/*
 * daemon_args.h — the command line every dstack daemon shares
 * (dstack-kms, dstack-gateway, dstack-verifier): -c/--config FILE,
 * -h/--help, -V/--version, --print-defaults, and nothing else. One parser so
 * the three behave the same: help on stdout with exit 0, usage errors on
 * stderr with exit 2. daemon_start/daemon_log_level add the start-up the
 * daemons share around loading their config (SIGPIPE, the log level).
 */
#ifndef DSTACK_CONFIG_DAEMON_ARGS_H
#define DSTACK_CONFIG_DAEMON_ARGS_H

#include <stdio.h>

struct daemon_args {
	const char *prog;          /* "dstack-kms", printed by --version */
	void (*usage)(FILE *f);    /* the daemon's help text */
	const char *defaults_toml; /* printed by --print-defaults */
	const char *config;        /* out: the -c FILE, or NULL */
	const char *log_name;      /* daemon_start: the name log lines carry ("kms") */
};

/* -1: go on and start (a->config set); otherwise the exit status. */
int daemon_args_parse(struct daemon_args *a, int argc, char **argv);
/* daemon_args_parse, then SIGPIPE ignored (a peer closing mid-reply must not kill the
 * daemon) and logging at info until the config says otherwise. Same return. */
int daemon_start(struct daemon_args *a, int argc, char **argv);
/* Once the config is loaded: log at its level (an unknown name keeps the current one;
 * the config check reports it). */
void daemon_log_level(const struct daemon_args *a, const char *level);

#endif
