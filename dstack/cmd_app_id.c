/*
 * cmd_app_id.c — `dstack app-id` (placeholder until its implementation lands).
 */
#include <stdio.h>

#include "cmd.h"

int cmd_app_id(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "dstack app-id: not available in this build yet\n");
	return 1;
}
