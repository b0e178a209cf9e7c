/*
 * cmd_verify.c — `dstack verify` (placeholder until its implementation lands).
 */
#include <stdio.h>

#include "cmd.h"

int cmd_verify(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "dstack verify: not available in this build yet\n");
	return 1;
}
