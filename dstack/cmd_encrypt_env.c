/*
 * cmd_encrypt_env.c — `dstack encrypt-env` (placeholder until its implementation lands).
 */
#include <stdio.h>

#include "cmd.h"

int cmd_encrypt_env(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "dstack encrypt-env: not available in this build yet\n");
	return 1;
}
