/* genesis-mesh: dispatches to the command groups. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "gm/util.h"

struct command {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
};

static const struct command commands[] = {
    {"init", cmd_init, "create root, NA and operator keys, a signed genesis block and config"},
    {"genesis", cmd_genesis, "create | sign | verify | show a genesis block (offline ceremony)"},
    {"cert", cmd_cert, "verify a join certificate against genesis and CRL"},
    {"na", cmd_na, "start the Network Authority service"},
    {"admin", cmd_admin, "invite | revoke | nodes | clear-key | policy set: operator requests to the NA"},
    {"join", cmd_join, "enroll this node with an invite token"},
    {"status", cmd_status, "what this node holds (and, if running, its peers and routes)"},
    {"node", cmd_node, "start the persistent node runtime"},
    {"send", cmd_send, "send a message to a node key through the local node"},
    {"recv", cmd_recv, "receive messages from the local node"},
    {"agents", cmd_agents, "list registered agents (optionally by capability)"},
    {"agent", cmd_agent, "run a capability provider agent"},
    {"ask", cmd_ask, "invoke a capability over the mesh and show the provenance"},
    {"policy", cmd_policy, "show the access policy; check what a role may do and which rule decides"},
    {"dev", cmd_dev, "dev up: run the whole local AI agent network demo"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: genesis-mesh <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\nRun 'genesis-mesh <command> --help' for the options of a command.\n");
}

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

int cli_opt(int argc, char **argv, int *i, const char *name, const char **val)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0)
        return 0;
    if (argv[*i][n] == '=') {
        *val = argv[*i] + n + 1;
        return 1;
    }
    if (argv[*i][n] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *val = argv[++*i];
    return 1;
}

/* Copy s into out with control characters shown as \xNN, so a hostile file cannot drive the terminal. */
const char *cli_safe(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    const unsigned char *u = (const unsigned char *)(s ? s : "");
    for (; *u && n + 5 < cap; u++) {
        int c1 = u[0] == 0xc2 && u[1] >= 0x80 && u[1] <= 0x9f; /* C1 controls in UTF-8 */
        if (*u < 0x20 || *u == 0x7f || c1) {
            n += (size_t)snprintf(out + n, cap - n, "\\x%02x", c1 ? u[1] : *u);
            u += c1;
        } else {
            out[n++] = (char)*u;
        }
    }
    out[n] = '\0';
    return out;
}

int cli_flag(char **argv, int i, const char *flag)
{
    return strcmp(argv[i], flag) == 0;
}

int main(int argc, char **argv)
{
    gm_error err = {0};
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (gm_init(&err) != 0)
        return cli_fail("startup", &err);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "genesis-mesh: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
