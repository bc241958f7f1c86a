/* What the shipped agents share: the common options of `gm-agent-* --dir D --agent-id ID`, one
 * JSON-lines log, signal handling, and running the provider loop (gm_agent_provider_run) with
 * the agent's handler. Only the public API (include/gm/) is used, as by any user's agent. */
#ifndef GM_AGENTS_AGENT_CLI_H
#define GM_AGENTS_AGENT_CLI_H

#include <getopt.h>
#include <signal.h>

#include "gm/agent.h"
#include "gm/log.h"

/* Option codes of the common options; an agent's own options use codes below 256. */
enum {
    AGENT_OPT_DIR = 1000,
    AGENT_OPT_NA,
    AGENT_OPT_AGENT_ID,
    AGENT_OPT_CAPABILITY,
    AGENT_OPT_TTL,
    AGENT_OPT_LOG,
    AGENT_OPT_FAULT,
    AGENT_OPT_HELP,
    AGENT_OPT_LOG_FORMAT,
    AGENT_OPT_LOG_LEVEL,
};

#define AGENT_CLI_COMMON_OPTIONS                                                                        \
    {"dir", required_argument, NULL, AGENT_OPT_DIR}, {"na", required_argument, NULL, AGENT_OPT_NA},     \
        {"agent-id", required_argument, NULL, AGENT_OPT_AGENT_ID},                                      \
        {"capability", required_argument, NULL, AGENT_OPT_CAPABILITY},                                  \
        {"ttl", required_argument, NULL, AGENT_OPT_TTL}, {"log", required_argument, NULL, AGENT_OPT_LOG}, \
        {"fault", required_argument, NULL, AGENT_OPT_FAULT}, {"help", no_argument, NULL, AGENT_OPT_HELP}, \
        {"log-format", required_argument, NULL, AGENT_OPT_LOG_FORMAT},                                  \
        {"log-level", required_argument, NULL, AGENT_OPT_LOG_LEVEL}

#define AGENT_CLI_COMMON_USAGE                                                                         \
    "  --dir D            the node directory (default $GM_DIR or .); its node must be running\n"     \
    "  --agent-id ID      1..64 characters of [A-Za-z0-9._-] (required)\n"                             \
    "  --na URL           the NA (default: na_url of D/node.json)\n"                                   \
    "  --ttl SECONDS      descriptor lifetime, 1..3600 (default 600), refreshed at 2/3 of it\n"        \
    "  --log FILE         append the log to FILE (default stderr)\n"                                   \
    "  --log-format F     json (one object per line) or text (default: text on a terminal, else json)\n" \
    "  --log-level L      debug, info, warn or error (default info)\n"                                 \
    "  --fault KIND       misbehave on purpose, for tests: silent, garbage, forge or uncertified\n"

struct agent_cli {
    const char *program;    /* "gm-agent-repo" */
    const char *capability; /* what the program serves, normalised: "repo.summary" */
    int any_capability;     /* --capability may name another capability (served the same way) */
    char capability_buf[GM_AGENT_CAP_MAX + 1];
    const char *usage;      /* the whole --help text */
    const char *dir, *na, *agent_id, *log_path, *fault;
    int log_format;         /* -1: by whether the log is a terminal */
    gm_log_level log_level;
    int ttl_s;
};

/* Handle a common option (opt from getopt_long, val its argument). Returns 0 when handled,
 * 1 after printing --help (exit 0), 2 after printing a usage error (exit 2), -1 when opt is
 * not a common option. */
int agent_cli_option(struct agent_cli *c, int opt, const char *val);
/* Print "<program>: <message>" to stderr as a usage error; returns exit code 2. */
int agent_cli_usage(const struct agent_cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print "<program>: <what>: <err->msg>" to stderr; returns exit code 1. */
int agent_cli_fail(const struct agent_cli *c, const char *what, const gm_error *err);
/* Strict decimal in [min, max] for option name; 0, or a usage error printed (returns 2). */
int agent_cli_long(const struct agent_cli *c, const char *name, const char *val, long min, long max, long *out);
/* The whole command line: getopt_long over opts (the program's own options plus
 * AGENT_CLI_COMMON_OPTIONS); own(ctx, opt, optarg) handles the program's options (0, or an
 * exit status after printing a usage error); then agent_cli_check. Returns -1 to go on
 * serving, or the exit status to return (0 after --help). */
int agent_cli_parse(struct agent_cli *c, int argc, char **argv, const struct option *opts,
                    int (*own)(void *ctx, int opt, const char *val), void *ctx);
/* An own-option handler for a program with one string option: stores val in *(const char **)ctx. */
int agent_cli_store_string(void *ctx, int opt, const char *val);
/* After the options: --agent-id given and valid, --capability (if given) is this program's.
 * Returns 0, or 2 after printing a usage error. */
int agent_cli_check(struct agent_cli *c);
/* Send the log (gm/log.h) to --log (default stderr) in --log-format at --log-level; SIGHUP
 * reopens the --log file (after rotation) and never stops the agent. */
int agent_cli_log_open(const struct agent_cli *c, gm_log_file *log, gm_error *err);
void agent_cli_log_close(gm_log_file *log);
/* SIGTERM and SIGINT set the returned flag; SIGPIPE is ignored. */
volatile sig_atomic_t *agent_cli_signals(void);
/* Open the node directory and serve handler until SIGTERM/SIGINT, logging (gm/log.h) to --log.
 * Returns 0, or the error code with err filled (the caller redacts and prints it). */
int agent_cli_serve(const struct agent_cli *c, gm_agent_handler handler, void *user, gm_error *err);

/* The local API's "answer" request line (docs/local-api.md) for request rid, as request id:
 * output (borrowed), or the error code and msg; detail (optional) for the provenance step.
 * Text is cut to GM_AGENT_DETAIL_MAX bytes. Caller owns the result. */
json_t *agent_cli_answer_req(const char *id, const char *rid, const json_t *output, const char *code, const char *msg,
                             const char *detail);

#endif
