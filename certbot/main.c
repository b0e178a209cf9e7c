/*
 * main.c — `certbot`, the host tool that keeps the gateway's wildcard
 * certificate (gateway.md §8.4): ACME dns-01 through Cloudflare.
 *
 *   certbot renew [-c certbot.toml] [--once] [--force]
 *   certbot init [-c certbot.toml]
 *   certbot set-caa [-c certbot.toml]
 *   certbot cfg [-w FILE]
 *
 * The command line follows the reference (clap): subcommand first, -c /
 * --config defaulting to ./certbot.toml. Failures print one line,
 * "certbot: <command>: <cause chain>", and exit 1; usage errors exit 2.
 * Logs go to stderr; CERTBOT_LOG (or RUST_LOG holding a plain level) sets
 * the level.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bot.h"
#include "core/fileio.h"
#include "core/log.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(FILE *f)
{
	fputs("Usage: certbot <COMMAND> [OPTIONS]\n"
	      "\n"
	      "Keep a wildcard certificate for the dstack gateway with ACME dns-01 on Cloudflare.\n"
	      "\n"
	      "Commands:\n"
	      "  renew    Automatically renew certificates if they are close to expiration\n"
	      "             -c, --config <FILE>  configuration file [default: certbot.toml]\n"
	      "             --once               run only once and exit\n"
	      "             --force              renew even if the certificate is not expiring\n"
	      "  init     Create the ACME account (credentials.json) if there is none\n"
	      "             -c, --config <FILE>\n"
	      "  set-caa  Set CAA records pinning issuance to the account\n"
	      "             -c, --config <FILE>\n"
	      "  cfg      Print the configuration template\n"
	      "             -w, --write-to <FILE>  write it to FILE instead\n"
	      "\n"
	      "Options:\n"
	      "  -h, --help     print this help\n"
	      "  -V, --version  print the version\n",
	      f);
}

struct args {
	const char *command;
	const char *config;
	const char *write_to;
	bool once, force;
};

/* -1: go on; otherwise the exit status. */
static int parse_args(int argc, char **argv, struct args *a)
{
	int i = 1;

	a->config = "certbot.toml";
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("certbot %s\n", DSTACK_VERSION);
		return 0;
	}
	a->command = argv[i++];
	if (strcmp(a->command, "renew") && strcmp(a->command, "init") && strcmp(a->command, "set-caa") &&
	    strcmp(a->command, "cfg")) {
		fprintf(stderr, "certbot: unknown command '%s'\n\n", a->command);
		usage(stderr);
		return 2;
	}
	for (; i < argc; i++) {
		const char *arg = argv[i];
		bool is_cfg = strcmp(a->command, "cfg") == 0;
		const char **target = is_cfg ? &a->write_to : &a->config;
		const char *short_opt = is_cfg ? "-w" : "-c", *long_opt = is_cfg ? "--write-to" : "--config";
		size_t ll = strlen(long_opt);

		if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(arg, short_opt) == 0 || strcmp(arg, long_opt) == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "certbot: %s needs a value\n", arg);
				return 2;
			}
			*target = argv[++i];
		} else if (strncmp(arg, long_opt, ll) == 0 && arg[ll] == '=') {
			*target = arg + ll + 1;
		} else if (strncmp(arg, short_opt, 2) == 0 && arg[2]) {
			*target = arg + 2;
		} else if (strcmp(a->command, "renew") == 0 && strcmp(arg, "--once") == 0) {
			a->once = true;
		} else if (strcmp(a->command, "renew") == 0 && strcmp(arg, "--force") == 0) {
			a->force = true;
		} else {
			fprintf(stderr, "certbot: %s: unexpected argument '%s'\n", a->command, arg);
			return 2;
		}
	}
	return -1;
}

static void init_logging(void)
{
	const char *lvl = getenv("CERTBOT_LOG");
	enum log_level level = LOG_LVL_INFO;

	if (!lvl || !*lvl)
		lvl = getenv("RUST_LOG");
	if (lvl && *lvl && log_level_parse(lvl, &level) < 0)
		level = LOG_LVL_INFO;
	log_init("certbot", level);
}

static int fail(const char *command, const struct err *e)
{
	fprintf(stderr, "certbot: %s: %s\n", command, err_str(e));
	return 1;
}

static int cmd_cfg(const struct args *a)
{
	struct err e = ERR_INIT;

	if (!a->write_to) {
		fputs(certbot_cfg_template(), stdout);
		return 0;
	}
	/* 0600: the file is about to receive the API token. */
	if (file_write_atomic(a->write_to, certbot_cfg_template(), strlen(certbot_cfg_template()), 0600, &e) <
	    0)
		return fail("cfg", &e);
	return 0;
}

/* Sleep ms unless a stop signal arrives. */
static void interval_sleep(uint64_t ms)
{
	while (ms && !stop_requested) {
		uint64_t step = ms < 500 ? ms : 500;

		nanosleep(&(struct timespec){.tv_sec = (time_t)(step / 1000),
					     .tv_nsec = (long)(step % 1000) * 1000000},
			  NULL);
		ms -= step;
	}
}

static int cmd_renew(const struct args *a, struct bot *b)
{
	struct err e = ERR_INIT;
	bool renewed, force = a->force;

	if (a->once) {
		if (bot_renew(b, a->force, &renewed, &e) < 0)
			return fail("renew", &e);
		return 0;
	}
	log_info("renewing every %llu s (renew_days_before %llu)",
		 (unsigned long long)(b->cfg.renew_interval_ms / 1000),
		 (unsigned long long)b->cfg.renew_days_before);
	while (!stop_requested) {
		err_clear(&e);
		if (bot_renew(b, force, &renewed, &e) < 0 && !stop_requested)
			log_error("renew: %s", err_str(&e));
		force = false;
		interval_sleep(b->cfg.renew_interval_ms);
	}
	log_info("stopping");
	return 0;
}

int main(int argc, char **argv)
{
	struct args a = {0};
	struct bot b;
	struct err e = ERR_INIT;
	struct sigaction sa = {.sa_handler = on_signal};
	int rc = parse_args(argc, argv, &a);

	if (rc >= 0)
		return rc;
	if (strcmp(a.command, "cfg") == 0)
		return cmd_cfg(&a);
	init_logging();
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (bot_open(&b, a.config, &stop_requested, &e) < 0) {
		bot_close(&b);
		return fail(a.command, &e);
	}
	if (strcmp(a.command, "init") == 0) {
		printf("%s\n", b.account.account_url);
		rc = 0;
	} else if (strcmp(a.command, "set-caa") == 0) {
		rc = bot_set_caa(&b, &e) < 0 ? fail("set-caa", &e) : 0;
	} else {
		rc = cmd_renew(&a, &b);
	}
	bot_close(&b);
	return rc;
}
