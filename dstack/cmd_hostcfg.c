/*
 * cmd_hostcfg.c — `dstack hostcfg` (placeholder until its implementation lands).
 */
#include <stdio.h>

#include "cmd.h"

int cmd_hostcfg(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "dstack hostcfg: not available in this build yet\n");
	return 1;
}
