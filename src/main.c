/* genesis-mesh: the table of commands. Each entry is a cli_cmd of src/cmd_<group>.c; the
 * same table drives dispatch and the usage (src/cli.c). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "gm/util.h"
#include "gm/version.h"

static int run_version(const cli_args *a)
{
    printf("genesis-mesh %s\n", gm_version());
    return 0;
}

static const cli_opt no_opts[] = {{NULL}};
static const cli_cmd cli_version = {"version", "print the version of this build", NULL, NULL, run_version, no_opts,
                                    0, NULL};

static int run_commands(const cli_args *a);
static const cli_cmd cli_commands = {"commands", "list every command and its options (for scripts and tests)",
                                     NULL, NULL, run_commands, no_opts, 0, NULL};

static const cli_cmd *const commands[] = {
    &cli_init, &cli_genesis, &cli_cert,  &cli_na,  &cli_admin, &cli_join,    &cli_status,   &cli_node,
    &cli_send, &cli_recv,    &cli_agents, &cli_agent, &cli_ask, &cli_policy, &cli_dev,   &cli_audit, &cli_mcp, &cli_version, &cli_commands, NULL,
};

static const cli_cmd root = {"genesis-mesh", NULL, "<command> [options]", NULL, NULL, NULL, 0, commands};

static int run_commands(const cli_args *a)
{
    cli_print_table(&root, root.name, stdout);
    return 0;
}

int main(int argc, char **argv)
{
    gm_error err = {0};
    if (argc >= 2 && !strcmp(argv[1], "--version"))
        return run_version(NULL);
    if (argc >= 2 && gm_init(&err) != 0)
        return cli_fail("startup", &err);
    return cli_dispatch(&root, NULL, argc, argv);
}
