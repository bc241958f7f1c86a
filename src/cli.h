/* The genesis-mesh program: one entry point per command group (src/cmd_<group>.c). */
#ifndef GM_CLI_H
#define GM_CLI_H

#include <stddef.h>

#include "gm/error.h"

/* Each command gets argv with argv[0] = the command name; returns the process exit code. */
int cmd_init(int argc, char **argv);    /* cmd_init.c */
int cmd_genesis(int argc, char **argv); /* cmd_genesis.c */
int cmd_cert(int argc, char **argv);    /* cmd_cert.c */
int cmd_na(int argc, char **argv);      /* cmd_na.c */
int cmd_admin(int argc, char **argv);   /* cmd_admin.c */
int cmd_join(int argc, char **argv);    /* cmd_join.c */
int cmd_status(int argc, char **argv);  /* cmd_status.c */
int cmd_node(int argc, char **argv);    /* cmd_node.c */
int cmd_send(int argc, char **argv);    /* cmd_msg.c */
int cmd_recv(int argc, char **argv);    /* cmd_msg.c */
int cmd_agents(int argc, char **argv);  /* cmd_agent.c */
int cmd_agent(int argc, char **argv);   /* cmd_agent.c */
int cmd_ask(int argc, char **argv);     /* cmd_agent.c */
int cmd_dev(int argc, char **argv);     /* cmd_dev.c */
int cmd_policy(int argc, char **argv);  /* cmd_policy.c */

/* Print "genesis-mesh: <what>: <err->msg>" to stderr; returns exit code 1. */
int cli_fail(const char *what, const gm_error *err);
/* Print a usage error to stderr; returns exit code 2. */
int cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Long-option helper: if argv[*i] is "--name", consume the next argument into *val
 * (or "--name=value"); returns 1 if matched, -1 if the value is missing, 0 otherwise. */
int cli_opt(int argc, char **argv, int *i, const char *name, const char **val);
/* Copy s into out (cap bytes) with control characters shown as \\xNN, for printing text that
 * came from a file or the network; returns out. */
const char *cli_safe(const char *s, char *out, size_t cap);
/* 1 if argv[i] equals flag. */
int cli_flag(char **argv, int i, const char *flag);

#endif
