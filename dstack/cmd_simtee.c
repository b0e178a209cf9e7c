/*
 * cmd_simtee.c — `dstack simtee` (placeholder until its implementation lands).
 */
#include <stdio.h>

#include "cmd.h"

int cmd_simtee(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "dstack simtee: not available in this build yet\n");
	return 1;
}
