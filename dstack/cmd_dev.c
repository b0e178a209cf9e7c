/*
 * cmd_dev.c — `dstack dev` (placeholder until its implementation lands).
 */
#include <stdio.h>

#include "cmd.h"

int cmd_dev(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "dstack dev: not available in this build yet\n");
	return 1;
}
