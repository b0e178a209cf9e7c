/*
 * cmd_derive.c — `dstack derive` (placeholder until its implementation lands).
 */
#include <stdio.h>

#include "cmd.h"

int cmd_derive(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "dstack derive: not available in this build yet\n");
	return 1;
}
