/*
 * daemon_args.c — the shared daemon command line and start-up (see daemon_args.h).
 */
#include "config/daemon_args.h"

#include <getopt.h>
#include <signal.h>

#include "core/log.h"

int daemon_args_parse(struct daemon_args *a, int argc, char **argv)
{
	static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
						 {"help", no_argument, NULL, 'h'},
						 {"version", no_argument, NULL, 'V'},
						 {"print-defaults", no_argument, NULL, 'D'},
						 {NULL, 0, NULL, 0}};
	int c;

	a->config = NULL;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			a->config = optarg;
			break;
		case 'h':
			a->usage(stdout);
			return 0;
		case 'V':
			printf("%s %s\n", a->prog, DSTACK_VERSION);
			return 0;
		case 'D':
			fputs(a->defaults_toml, stdout);
			return 0;
		default:
			a->usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		a->usage(stderr);
		return 2;
	}
	return -1;
}

int daemon_start(struct daemon_args *a, int argc, char **argv)
{
	int rc = daemon_args_parse(a, argc, argv);

	if (rc >= 0)
		return rc;
	signal(SIGPIPE, SIG_IGN);
	log_init(a->log_name, LOG_LVL_INFO);
	return -1;
}

void daemon_log_level(const struct daemon_args *a, const char *level)
{
	enum log_level lvl;

	if (level && log_level_parse(level, &lvl) == 0)
		log_init(a->log_name, lvl);
}
