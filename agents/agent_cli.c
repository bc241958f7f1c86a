/* The shared part of the shipped agents' programs: common options, the JSON-lines log, signals,
 * and the provider loop. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_cli.h"
#include "gm/gmtime.h"

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

/* SIGHUP never stops an agent: it reopens the --log file (after rotation). gm_log_reopen is
 * async-signal-safe (open, dup2, close). */
static void on_hup(int sig)
{
    (void)sig;
    int saved = errno;
    gm_log_reopen();
    errno = saved;
}

int agent_cli_usage(const struct agent_cli *c, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", c->program);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see %s --help)\n", c->program);
    return 2;
}

int agent_cli_fail(const struct agent_cli *c, const char *what, const gm_error *err)
{
    fprintf(stderr, "%s: %s: %s\n", c->program, what, err->msg);
    return 1;
}

int agent_cli_long(const struct agent_cli *c, const char *name, const char *val, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (val[0] < '0' || val[0] > '9' || *end || errno || v < min || v > max)
        return agent_cli_usage(c, "--%s must be a whole number from %ld to %ld, got '%s'", name, min, max, val);
    *out = v;
    return 0;
}

int agent_cli_option(struct agent_cli *c, int opt, const char *val)
{
    long v;
    switch (opt) {
    case AGENT_OPT_DIR: c->dir = val; return 0;
    case AGENT_OPT_NA: c->na = val; return 0;
    case AGENT_OPT_AGENT_ID: c->agent_id = val; return 0;
    case AGENT_OPT_LOG: c->log_path = val; return 0;
    case AGENT_OPT_CAPABILITY: {
        char n[GM_AGENT_CAP_MAX + 1];
        gm_error e = {0};
        if (gm_agent_cap_normalize(val, n, &e) != 0)
            return agent_cli_usage(c, "--capability: %s", e.msg);
        if (c->any_capability) {
            memcpy(c->capability_buf, n, sizeof c->capability_buf);
            c->capability = c->capability_buf;
        } else if (strcmp(n, c->capability) != 0) {
            return agent_cli_usage(c, "serves %s, not %s", c->capability, n);
        }
        return 0;
    }
    case AGENT_OPT_TTL:
        if (agent_cli_long(c, "ttl", val, 1, GM_AGENT_TTL_MAX_S, &v) != 0)
            return 2;
        c->ttl_s = (int)v;
        return 0;
    case AGENT_OPT_FAULT:
        if (strcmp(val, "silent") && strcmp(val, "garbage") && strcmp(val, "forge") && strcmp(val, "uncertified"))
            return agent_cli_usage(c, "--fault is silent, garbage, forge or uncertified");
        c->fault = val;
        return 0;
    case AGENT_OPT_LOG_FORMAT:
        if (strcmp(val, "json") && strcmp(val, "text"))
            return agent_cli_usage(c, "--log-format is json or text, got '%s'", val);
        c->log_format = !strcmp(val, "json") ? GM_LOG_FORMAT_JSON : GM_LOG_FORMAT_TEXT;
        return 0;
    case AGENT_OPT_LOG_LEVEL:
        if (gm_log_level_parse(val, &c->log_level) != 0)
            return agent_cli_usage(c, "--log-level is debug, info, warn or error, got '%s'", val);
        return 0;
    case AGENT_OPT_HELP:
        fputs(c->usage, stdout);
        return 1;
    case '?':
        return 2; /* getopt_long has said what is wrong */
    default:
        return -1;
    }
}

int agent_cli_parse(struct agent_cli *c, int argc, char **argv, const struct option *opts,
                    int (*own)(void *ctx, int opt, const char *val), void *ctx)
{
    int opt, rc;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (opt < 256 && opt != '?') {
            if ((rc = own(ctx, opt, optarg)) != 0)
                return rc;
        } else if ((rc = agent_cli_option(c, opt, optarg)) != 0) {
            return rc == 1 ? 0 : 2;
        }
    }
    if (optind < argc)
        return agent_cli_usage(c, "unexpected argument '%s'", argv[optind]);
    return (rc = agent_cli_check(c)) != 0 ? rc : -1;
}

int agent_cli_store_string(void *ctx, int opt, const char *val)
{
    (void)opt;
    *(const char **)ctx = val;
    return 0;
}

int agent_cli_check(struct agent_cli *c)
{
    if (!c->agent_id)
        return agent_cli_usage(c, "--agent-id is required");
    if (!gm_agent_id_valid(c->agent_id))
        return agent_cli_usage(c, "--agent-id must be 1..%d characters of [A-Za-z0-9._-]", GM_AGENT_ID_MAX);
    if (!c->dir) {
        const char *e = getenv("GM_DIR");
        c->dir = e && *e ? e : ".";
    }
    return 0;
}

/* The provider's user pointer: the agent's handler and its argument. */
struct serve_user {
    gm_agent_handler handler;
    void *handler_user;
};

static int serve_handler(void *user, const gm_agent_call_in *in, json_t **output, gm_error *err)
{
    struct serve_user *u = user;
    return u->handler(u->handler_user, in, output, err);
}

int agent_cli_log_open(const struct agent_cli *c, gm_log_file *log, gm_error *err)
{
    log->f = stderr;
    log->path = c->log_path;
    if (c->log_path && !(log->f = fopen(c->log_path, "a")))
        return gm_error_set(err, GM_EIO, "cannot open log file %s: %s", c->log_path, strerror(errno));
    log->format = c->log_format >= 0 ? (gm_log_format)c->log_format
                  : isatty(fileno(log->f)) ? GM_LOG_FORMAT_TEXT : GM_LOG_FORMAT_JSON;
    gm_log_set_level(c->log_level);
    gm_log_set_handler(gm_log_file_write, log);
    struct sigaction hup = {0};
    hup.sa_handler = on_hup;
    hup.sa_flags = SA_RESTART;
    sigaction(SIGHUP, &hup, NULL);
    return 0;
}

void agent_cli_log_close(gm_log_file *log)
{
    gm_log_set_handler(NULL, NULL);
    if (log->f && log->f != stderr)
        fclose(log->f);
    log->f = NULL;
}

volatile sig_atomic_t *agent_cli_signals(void)
{
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return &g_stop;
}

int agent_cli_serve(const struct agent_cli *c, gm_agent_handler handler, void *user, gm_error *err)
{
    struct serve_user u = {.handler = handler, .handler_user = user};
    gm_log_file log = {0};
    if (agent_cli_log_open(c, &log, err) != 0)
        return err->code;
    gm_agent_provider p = {0};
    int rc = gm_agent_ctx_open(&p.ctx, c->dir, c->na, err);
    if (rc == 0) {
        snprintf(p.ctx.agent_id, sizeof p.ctx.agent_id, "%s", c->agent_id);
        p.capability = c->capability;
        p.handler = serve_handler;
        p.user = &u;
        p.ttl_s = c->ttl_s > 0 ? c->ttl_s : 600;
        p.stop = agent_cli_signals();
        p.fault = c->fault;
        rc = gm_agent_provider_run(&p, err);
        gm_agent_ctx_close(&p.ctx);
    }
    agent_cli_log_close(&log);
    return rc;
}

json_t *agent_cli_answer_req(const char *id, const char *rid, const json_t *output, const char *code, const char *msg,
                             const char *detail)
{
    json_t *req = json_pack("{s:s,s:s,s:s}", "op", "answer", "id", id, "request_id", rid);
    if (!req)
        return NULL;
    if (output)
        json_object_set(req, "output", (json_t *)output);
    else
        json_object_set_new(req, "error", json_pack("{s:s,s:s%}", "code", code, "message", msg,
                                                    strnlen(msg, GM_AGENT_DETAIL_MAX)));
    if (detail)
        json_object_set_new(req, "detail", json_stringn(detail, strnlen(detail, GM_AGENT_DETAIL_MAX)));
    return req;
}
