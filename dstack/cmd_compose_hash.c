/*
 * cmd_compose_hash.c — `dstack compose-hash` (placeholder until its implementation lands).
 */
#include <stdio.h>

#include "cmd.h"

int cmd_compose_hash(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "dstack compose-hash: not available in this build yet\n");
	return 1;
}
