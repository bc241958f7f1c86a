/* The genesis-mesh program. Every command and subcommand is a cli_cmd: one static table of
 * its options drives both the parser (getopt_long) and its --help, so they cannot drift.
 * src/main.c holds the table of commands; src/cmd_<group>.c one entry each. */
#ifndef GM_CLI_H
#define GM_CLI_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "gm/error.h"
#include "gm/gmtime.h"
#include "gm/keys.h"
#include "gm/log.h"

#define CLI_MAX_VALUES 160
#define CLI_MAX_POS 8

/* One option: --name, with a value shown as arg (NULL for a flag). */
typedef struct cli_opt {
    const char *name;
    const char *arg;
    const char *help;
} cli_opt;

typedef struct cli_args cli_args;

/* A command: either a leaf (run + opts) or a group of subcommands (subs). */
typedef struct cli_cmd {
    const char *name;
    const char *help;                   /* one line, in the parent's list */
    const char *synopsis;               /* what follows the command path in "usage:" */
    const char *details;                /* more text for --help, or NULL */
    int (*run)(const cli_args *a);      /* leaf: returns the exit code */
    const cli_opt *opts;                /* leaf: terminated by {NULL} */
    int max_pos;                        /* leaf: positional arguments accepted */
    const struct cli_cmd *const *subs;  /* group: terminated by NULL */
} cli_cmd;

/* What the parser found for a leaf. */
struct cli_args {
    char path[64]; /* "admin invite": the prefix of its messages */
    const cli_cmd *cmd;
    size_t n;
    struct {
        const cli_opt *opt;
        const char *val; /* NULL for a flag */
    } v[CLI_MAX_VALUES];
    size_t n_pos;
    const char *pos[CLI_MAX_POS];
};

/* Run cmd with argv[0] = its name: a group picks a subcommand, a leaf parses its options.
 * --help / -h anywhere prints the usage to stdout (exit 0); a usage error exits 2. */
int cli_dispatch(const cli_cmd *cmd, const char *parent_path, int argc, char **argv);
/* Print cmd's usage (from its table) to f. */
void cli_print_usage(const cli_cmd *cmd, const char *path, FILE *f);
/* Print every command path and its options, one per line ("admin invite --role --hours ..."). */
void cli_print_table(const cli_cmd *cmd, const char *path, FILE *f);

/* The last value of --name, or def. */
const char *cli_str(const cli_args *a, const char *name, const char *def);
/* 1 if the flag --name was given. */
int cli_has(const cli_args *a, const char *name);
/* Every value of --name in order into out (up to cap); returns how many were given. */
size_t cli_all(const cli_args *a, const char *name, const char **out, size_t cap);
/* The last value of --name as an integer in min..max (def when absent); 0, or 2 after a
 * usage error naming the option and the bad value. */
int cli_int(const cli_args *a, const char *name, long long min, long long max, long long def, long long *out);
/* The duration option name ("90d", "10m", "30s", "12h") in seconds, min_s..max_s, def_s when
 * absent; 0, or 2 after a usage message. */
int cli_duration(const cli_args *a, const char *name, long long min_s, long long max_s, long long def_s,
                 long long *out);

/* Strict parsers, one per kind; each prints "genesis-mesh: <path>: --opt: ..." on bad input
 * and returns 2 (the usage exit code), or 0. */
int cli_parse_int(const char *path, const char *opt, const char *text, long long min, long long max,
                  long long *out);
/* text must be one of choices (NULL-terminated); *out is its index. */
int cli_parse_choice(const char *path, const char *opt, const char *text, const char *const *choices, int *out);

/* The log options shared by the long-running commands (na start, node start, agent run). */
#define CLI_LOG_OPTS                                                                                                \
    {"log", "FILE", "append the log to FILE instead of stderr"},                                                   \
        {"log-format", "json|text", "one JSON object per line, or text (default: text on a terminal, else json)"}, \
        {"log-level", "debug|info|warn|error", "drop records below this level (default info)"}
/* Set the process log (gm/log.h) from --log, --log-format and --log-level; 0, 1 (cannot open
 * the file) or 2 (usage). Release with cli_log_close. */
int cli_log_open(const cli_args *a, gm_log_level *level);
void cli_log_close(void);

/* The commands (src/cmd_<group>.c). */
extern const cli_cmd cli_init, cli_genesis, cli_cert, cli_na, cli_admin, cli_join, cli_status, cli_node, cli_send,
    cli_recv, cli_agents, cli_agent, cli_ask, cli_dev, cli_audit,
    cli_policy, cli_mcp;
/* policy create / verify: the network policy manifest (cmd_netpolicy.c) */
extern const cli_cmd cli_policy_create, cli_policy_verify;
/* Sign settings (gm_netpolicy_issue) with na as issued at now and write the document to path. */
int cli_netpolicy_write(const char *path, const gm_signer *na, const json_t *settings, gm_time now,
                        gm_error *err);

/* Print "genesis-mesh: <what>: <err->msg>" to stderr; returns exit code 1. */
int cli_fail(const char *what, const gm_error *err);
/* Print a usage error to stderr; returns exit code 2. */
int cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Copy s into out (cap bytes) with control characters shown as \\xNN, for printing text that
 * came from a file or the network; returns out. */
const char *cli_safe(const char *s, char *out, size_t cap);

/* Trust for the NA at url over HTTPS: the CA file and/or pin given (--na-ca, --na-pin), else
 * $GM_NA_CA / $GM_NA_PIN, else what is kept in node directory dir (NULL: none). cli_tls.c */
int cli_na_trust(const char *url, const char *ca, const char *pin, const char *dir, gm_error *err);
/* Keep the given (or environment) NA trust in node directory dir for later commands:
 * D/na-ca.pem (a copy of the CA file) and D/na-tls.pin. Nothing given: keeps what is there. */
int cli_na_trust_keep(const char *dir, const char *ca, const char *pin, gm_error *err);

#endif
