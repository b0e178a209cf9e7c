/*
 * cmd_decrypt_env.c — `dstack decrypt-env` (placeholder until its implementation lands).
 */
#include <stdio.h>

#include "cmd.h"

int cmd_decrypt_env(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "dstack decrypt-env: not available in this build yet\n");
	return 1;
}
