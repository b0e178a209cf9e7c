/*
 * cmd_vmm.c — `dstack vmm` (placeholder until its implementation lands).
 */
#include <stdio.h>

#include "cmd.h"

int cmd_vmm(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "dstack vmm: not available in this build yet\n");
	return 1;
}
