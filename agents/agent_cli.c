/* The shared part of the shipped agents' programs: common options, the JSON-lines log, signals,
 * and the provider loop. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_cli.h"
#include "gm/gmtime.h"

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
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
        if (strcmp(n, c->capability) != 0)
            return agent_cli_usage(c, "serves %s, not %s", c->capability, n);
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
    case AGENT_OPT_HELP:
        fputs(c->usage, stdout);
        return 1;
    case '?':
        return 2; /* getopt_long has said what is wrong */
    default:
        return -1;
    }
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

struct log_sink {
    FILE *f;
    const char *agent_id;
};

/* One JSON object per line: {"ts","level","event","agent","text"}. */
static void log_line(void *user, const char *level, const char *event, const char *text)
{
    const struct log_sink *l = user;
    char ts[GM_TIME_STRLEN];
    gm_time now = gm_time_now();
    gm_time_format(&now, ts);
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s}", "ts", ts, "level", level, "event", event, "agent", l->agent_id,
                          "text", text);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (s) {
        fprintf(l->f, "%s\n", s);
        fflush(l->f);
    }
    free(s);
    json_decref(o);
}

/* The provider's user pointer is shared by the handler and the log callback. */
struct serve_user {
    struct log_sink log;
    gm_agent_handler handler;
    void *handler_user;
};

static int serve_handler(void *user, const gm_agent_call_in *in, json_t **output, gm_error *err)
{
    struct serve_user *u = user;
    return u->handler(u->handler_user, in, output, err);
}

static void serve_log(void *user, const char *level, const char *event, const char *text)
{
    struct serve_user *u = user;
    log_line(&u->log, level, event, text);
}

int agent_cli_serve(const struct agent_cli *c, gm_agent_handler handler, void *user, gm_error *err)
{
    struct serve_user u = {.log = {.f = stderr, .agent_id = c->agent_id}, .handler = handler, .handler_user = user};
    if (c->log_path && !(u.log.f = fopen(c->log_path, "a")))
        return gm_error_set(err, GM_EIO, "cannot open log file %s: %s", c->log_path, strerror(errno));
    gm_agent_provider p = {0};
    int rc = gm_agent_ctx_open(&p.ctx, c->dir, c->na, err);
    if (rc == 0) {
        snprintf(p.ctx.agent_id, sizeof p.ctx.agent_id, "%s", c->agent_id);
        p.capability = c->capability;
        p.handler = serve_handler;
        p.user = &u;
        p.ttl_s = c->ttl_s > 0 ? c->ttl_s : 600;
        p.stop = &g_stop;
        p.fault = c->fault;
        p.log = serve_log;
        struct sigaction sa = {0};
        sa.sa_handler = on_signal;
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        rc = gm_agent_provider_run(&p, err);
        gm_agent_ctx_close(&p.ctx);
    }
    if (u.log.f != stderr)
        fclose(u.log.f);
    return rc;
}
