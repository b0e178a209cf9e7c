/*
 * daemon_args.c — the shared daemon command line (see daemon_args.h).
 */
#include "config/daemon_args.h"

#include <getopt.h>

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
