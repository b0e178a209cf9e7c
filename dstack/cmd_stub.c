/*
 * cmd_stub.c — placeholders for subcommands whose implementation has not
 * landed yet. Each is removed when its cmd_<name>.c arrives.
 */
#include <stdio.h>

#include "cmd.h"

#define STUB(fn, name)                                                                                       \
	int fn(int argc, char **argv)                                                                        \
	{                                                                                                    \
		(void)argc;                                                                                  \
		(void)argv;                                                                                  \
		fprintf(stderr, "dstack " name ": not available in this build yet\n");                       \
		return 1;                                                                                    \
	}

STUB(cmd_compose_hash, "compose-hash")
STUB(cmd_app_id, "app-id")
STUB(cmd_encrypt_env, "encrypt-env")
STUB(cmd_decrypt_env, "decrypt-env")
STUB(cmd_derive, "derive")
STUB(cmd_simtee, "simtee")
STUB(cmd_verify, "verify")
