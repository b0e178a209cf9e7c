/*
 * cmd.h — subcommands of the `dstack` CLI. Each lives in its own cmd_*.c
 * file and is listed once in the table in main.c.
 */
#ifndef DSTACK_CLI_CMD_H
#define DSTACK_CLI_CMD_H

int cmd_compose_hash(int argc, char **argv);
int cmd_app_id(int argc, char **argv);
int cmd_encrypt_env(int argc, char **argv);
int cmd_decrypt_env(int argc, char **argv);
int cmd_derive(int argc, char **argv);
int cmd_simtee(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_vmm(int argc, char **argv);
int cmd_hostcfg(int argc, char **argv);
int cmd_dev(int argc, char **argv);

#endif
