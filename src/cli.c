/* The command framework of genesis-mesh: dispatch to subcommands, option parsing with
 * getopt_long from each command's table, usage generated from the same table, strict value
 * parsers, and the process log the long-running commands set up. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define OPT_BASE 1000

int cli_fail(const char *what, const gm_error *err)
{
    fprintf(stderr, "genesis-mesh: %s: %s\n", what, err && err->msg[0] ? err->msg : "failed");
    return 1;
}

int cli_usage(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "genesis-mesh: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    return 2;
}

const char *cli_safe(const char *s, char *out, size_t cap)
{
    return gm_log_safe_text(s, out, cap);
}

/* ---- usage from the tables ---- */

static size_t n_opts(const cli_opt *o)
{
    size_t n = 0;
    while (o && o[n].name)
        n++;
    return n;
}

void cli_print_usage(const cli_cmd *cmd, const char *path, FILE *f)
{
    if (cmd->subs) {
        fprintf(f, "usage: %s %s\n", path, cmd->synopsis ? cmd->synopsis : "<subcommand> [options]");
        if (cmd->details)
            fprintf(f, "\n%s", cmd->details);
        const char *kind = strchr(path, ' ') ? "subcommand" : "command";
        fprintf(f, "\n%ss:\n", kind);
        for (size_t i = 0; cmd->subs[i]; i++)
            fprintf(f, "  %-12s %s\n", cmd->subs[i]->name, cmd->subs[i]->help);
        fprintf(f, "\nRun '%s <%s> --help' for its options.\n", path, kind);
        return;
    }
    fprintf(f, "usage: %s%s%s\n", path, cmd->synopsis ? " " : "", cmd->synopsis ? cmd->synopsis : "");
    if (cmd->details)
        fprintf(f, "\n%s", cmd->details);
    fprintf(f, "\noptions:\n");
    for (size_t i = 0; i < n_opts(cmd->opts); i++) {
        const cli_opt *o = &cmd->opts[i];
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        if (strlen(left) > 26)
            fprintf(f, "  %s\n  %-26s %s\n", left, "", o->help);
        else
            fprintf(f, "  %-26s %s\n", left, o->help);
    }
    fprintf(f, "  %-26s %s\n", "--help, -h", "show this help");
}

void cli_print_table(const cli_cmd *cmd, const char *path, FILE *f)
{
    if (cmd->subs) {
        fprintf(f, "%s\n", path);
        for (size_t i = 0; cmd->subs[i]; i++) {
            char sub[128];
            snprintf(sub, sizeof sub, "%s %s", path, cmd->subs[i]->name);
            cli_print_table(cmd->subs[i], sub, f);
        }
        return;
    }
    fprintf(f, "%s", path);
    for (size_t i = 0; i < n_opts(cmd->opts); i++)
        fprintf(f, " --%s", cmd->opts[i].name);
    fprintf(f, "\n");
}

/* ---- dispatch and parsing ---- */

static int is_help(const char *s)
{
    return !strcmp(s, "--help") || !strcmp(s, "-h");
}

static int parse_leaf(const cli_cmd *cmd, const char *path, int argc, char **argv)
{
    static cli_args a; /* large; one parse per process */
    memset(&a, 0, sizeof a);
    snprintf(a.path, sizeof a.path, "%s", strchr(path, ' ') ? strchr(path, ' ') + 1 : path);
    a.cmd = cmd;
    size_t n = n_opts(cmd->opts);
    struct option lo[64];
    if (n + 2 > sizeof lo / sizeof lo[0])
        return cli_usage("%s: too many options in the table", a.path);
    for (size_t i = 0; i < n; i++)
        lo[i] = (struct option){cmd->opts[i].name, cmd->opts[i].arg ? required_argument : no_argument, NULL,
                                OPT_BASE + (int)i};
    lo[n] = (struct option){"help", no_argument, NULL, 'h'};
    lo[n + 1] = (struct option){NULL, 0, NULL, 0};
    int help = 0, bad = 0, c;
    char why[512] = "";
    optind = 0; /* full re-initialisation (glibc) */
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        const char *word = argv[optind - 1];
        if (c == 'h') {
            help = 1;
        } else if (c == ':') {
            if (!bad++)
                snprintf(why, sizeof why, "%s needs a value", word);
        } else if (c == '?') {
            if (!bad++ && optopt)
                snprintf(why, sizeof why, "unknown option '-%c'", optopt);
            else if (bad == 1)
                snprintf(why, sizeof why, "unknown option '%s'", word);
        } else if (a.n == CLI_MAX_VALUES) {
            if (!bad++)
                snprintf(why, sizeof why, "too many options (at most %d)", CLI_MAX_VALUES);
        } else {
            a.v[a.n].opt = &cmd->opts[c - OPT_BASE];
            a.v[a.n++].val = optarg;
        }
    }
    for (int i = optind; i < argc && !bad; i++) {
        if (a.n_pos == (size_t)cmd->max_pos || a.n_pos == CLI_MAX_POS) {
            bad = 1;
            snprintf(why, sizeof why, "unexpected argument '%s' (see --help)", argv[i]);
        } else {
            a.pos[a.n_pos++] = argv[i];
        }
    }
    if (help) {
        cli_print_usage(cmd, path, stdout);
        return 0;
    }
    if (bad)
        return cli_usage("%s: %s", a.path, why);
    return cmd->run(&a);
}

int cli_dispatch(const cli_cmd *cmd, const char *parent_path, int argc, char **argv)
{
    char path[128];
    snprintf(path, sizeof path, "%s%s%s", parent_path ? parent_path : "", parent_path ? " " : "", cmd->name);
    if (!cmd->subs)
        return parse_leaf(cmd, path, argc, argv);
    if (argc < 2) {
        cli_print_usage(cmd, path, stderr);
        return 2;
    }
    if (is_help(argv[1]) || !strcmp(argv[1], "help")) {
        cli_print_usage(cmd, path, stdout);
        return 0;
    }
    for (size_t i = 0; cmd->subs[i]; i++)
        if (!strcmp(argv[1], cmd->subs[i]->name))
            return cli_dispatch(cmd->subs[i], path, argc - 1, argv + 1);
    if (!parent_path) {
        fprintf(stderr, "genesis-mesh: unknown command '%s'\n\n", argv[1]);
        cli_print_usage(cmd, path, stderr);
        return 2;
    }
    return cli_usage("%s: unknown subcommand '%s' (see '%s --help')", strchr(path, ' ') + 1, argv[1], path);
}

/* ---- values ---- */

const char *cli_str(const cli_args *a, const char *name, const char *def)
{
    for (size_t i = a->n; i-- > 0;)
        if (!strcmp(a->v[i].opt->name, name))
            return a->v[i].val ? a->v[i].val : def;
    return def;
}

int cli_has(const cli_args *a, const char *name)
{
    for (size_t i = 0; i < a->n; i++)
        if (!strcmp(a->v[i].opt->name, name))
            return 1;
    return 0;
}

size_t cli_all(const cli_args *a, const char *name, const char **out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < a->n; i++)
        if (!strcmp(a->v[i].opt->name, name)) {
            if (k < cap)
                out[k] = a->v[i].val;
            k++;
        }
    return k;
}

int cli_parse_int(const char *path, const char *opt, const char *text, long long min, long long max,
                  long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (!*text || *end || errno == ERANGE || (*text != '-' && (*text < '0' || *text > '9')))
        return cli_usage("%s: --%s: '%s' is not a whole number (expected %lld..%lld)", path, opt, text, min, max);
    if (v < min || v > max)
        return cli_usage("%s: --%s: %s is out of range (expected %lld..%lld)", path, opt, text, min, max);
    *out = v;
    return 0;
}

int cli_int(const cli_args *a, const char *name, long long min, long long max, long long def, long long *out)
{
    const char *t = cli_str(a, name, NULL);
    if (!t) {
        *out = def;
        return 0;
    }
    return cli_parse_int(a->path, name, t, min, max, out);
}

int cli_duration(const cli_args *a, const char *name, long long min_s, long long max_s, long long def_s,
                 long long *out)
{
    const char *t = cli_str(a, name, NULL);
    char safe[64];
    if (!t) {
        *out = def_s;
        return 0;
    }
    long long v = 0, unit = 0;
    size_t i = 0;
    while (t[i] >= '0' && t[i] <= '9' && i < 12)
        v = v * 10 + (t[i++] - '0');
    if (i > 0 && t[i] && !t[i + 1])
        unit = t[i] == 's' ? 1 : t[i] == 'm' ? 60 : t[i] == 'h' ? 3600 : t[i] == 'd' ? 86400 : 0;
    if (!unit)
        return cli_usage("%s: --%s: '%s' is not a duration (a number and a unit: s, m, h or d, e.g. 90d)", a->path,
                         name, cli_safe(t, safe, sizeof safe));
    v *= unit;
    if (v < min_s || v > max_s)
        return cli_usage("%s: --%s: '%s' is not between %llds and %llds", a->path, name, cli_safe(t, safe, sizeof safe),
                         min_s, max_s);
    *out = v;
    return 0;
}

int cli_parse_choice(const char *path, const char *opt, const char *text, const char *const *choices, int *out)
{
    char list[256] = "";
    for (int i = 0; choices[i]; i++) {
        if (!strcmp(text, choices[i])) {
            *out = i;
            return 0;
        }
        size_t l = strlen(list);
        snprintf(list + l, sizeof list - l, "%s%s", i ? ", " : "", choices[i]);
    }
    char safe[128];
    return cli_usage("%s: --%s: '%s' is not one of %s", path, opt, cli_safe(text, safe, sizeof safe), list);
}

/* ---- the process log ---- */

static gm_log_file g_log;

int cli_log_open(const cli_args *a, gm_log_level *level)
{
    static const char *const formats[] = {"json", "text", NULL};
    static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
    const char *path = cli_str(a, "log", NULL), *fmt = cli_str(a, "log-format", NULL);
    int f = -1, l = GM_LOG_INFO;
    if ((fmt && cli_parse_choice(a->path, "log-format", fmt, formats, &f)) ||
        (cli_has(a, "log-level") && cli_parse_choice(a->path, "log-level", cli_str(a, "log-level", ""), levels, &l)))
        return 2;
    g_log.f = stderr;
    g_log.path = path;
    if (path && !(g_log.f = fopen(path, "a"))) {
        g_log.f = NULL;
        gm_error err = {0};
        gm_error_set(&err, GM_EIO, "cannot open log file %s: %s", path, strerror(errno));
        return cli_fail(a->path, &err);
    }
    g_log.format = f >= 0 ? (gm_log_format)f : isatty(fileno(g_log.f)) ? GM_LOG_FORMAT_TEXT : GM_LOG_FORMAT_JSON;
    gm_log_set_level((gm_log_level)l);
    gm_log_set_handler(gm_log_file_write, &g_log);
    if (level)
        *level = (gm_log_level)l;
    return 0;
}

void cli_log_close(void)
{
    gm_log_set_handler(NULL, NULL);
    if (g_log.f && g_log.f != stderr)
        fclose(g_log.f);
    g_log.f = NULL;
    g_log.path = NULL;
}
