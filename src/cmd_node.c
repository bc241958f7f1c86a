/* genesis-mesh node start: the persistent node runtime (lib/node_*.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "gm/node.h"

static void node_usage(FILE *f)
{
    fprintf(f, "usage: genesis-mesh node start --dir D [--listen HOST:PORT] [--port-file F] [--peer HOST:PORT]...\n"
               "                          [--na URL] [--crl-poll-ms N] [--renew-after-s N] [--log FILE]\n"
               "                          [--log-level debug|info|warn] [--crl-stale warn|refuse]\n"
               "  --crl-stale refuse  while the CRL is past its next_update, accept no new peer link\n"
               "                      except to fetch a fresher CRL from it (default: warn only)\n"
               "  --renew-after-s N  renew the certificate N s after start (and after each renewal)\n"
               "                     instead of at two thirds of its lifetime\n");
}

int cmd_node(int argc, char **argv)
{
    gm_node_config cfg;
    gm_error err = {0};
    memset(&cfg, 0, sizeof cfg);
    cfg.log_level = GM_LOG_INFO;
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        node_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "start") != 0)
        return cli_usage("node: unknown subcommand '%s' (expected 'start')", argv[1]);
    for (int i = 2; i < argc; i++) {
        const char *v = NULL;
        int m;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            node_usage(stdout);
            return 0;
        }
        if ((m = cli_opt(argc, argv, &i, "--dir", &v)) != 0) {
            if (m < 0) return cli_usage("node start: --dir needs a value");
            cfg.dir = v;
        } else if ((m = cli_opt(argc, argv, &i, "--listen", &v)) != 0) {
            if (m < 0) return cli_usage("node start: --listen needs HOST:PORT");
            cfg.listen = v;
        } else if ((m = cli_opt(argc, argv, &i, "--port-file", &v)) != 0) {
            if (m < 0) return cli_usage("node start: --port-file needs a path");
            cfg.port_file = v;
        } else if ((m = cli_opt(argc, argv, &i, "--peer", &v)) != 0) {
            if (m < 0) return cli_usage("node start: --peer needs HOST:PORT");
            if (cfg.n_peers >= GM_NODE_MAX_PEER_ARGS)
                return cli_usage("node start: at most %d --peer options", GM_NODE_MAX_PEER_ARGS);
            cfg.peers[cfg.n_peers++] = v;
        } else if ((m = cli_opt(argc, argv, &i, "--na", &v)) != 0) {
            if (m < 0) return cli_usage("node start: --na needs a URL");
            cfg.na_url = v;
        } else if ((m = cli_opt(argc, argv, &i, "--crl-poll-ms", &v)) != 0) {
            char *end;
            if (m < 0) return cli_usage("node start: --crl-poll-ms needs a number");
            cfg.crl_poll_ms = strtol(v, &end, 10);
            if (*end || end == v)
                return cli_usage("node start: --crl-poll-ms needs a number (0 = default 2000, -1 = off)");
            if (cfg.crl_poll_ms == 0)
                cfg.crl_poll_ms = -1; /* explicit 0 turns polling off */
        } else if ((m = cli_opt(argc, argv, &i, "--renew-after-s", &v)) != 0) {
            char *end;
            if (m < 0) return cli_usage("node start: --renew-after-s needs a number of seconds");
            cfg.renew_after_s = strtol(v, &end, 10);
            if (*end || end == v || cfg.renew_after_s < 1 || cfg.renew_after_s > 86400 * 365)
                return cli_usage("node start: --renew-after-s must be a number of seconds (1 or more)");
        } else if ((m = cli_opt(argc, argv, &i, "--log", &v)) != 0) {
            if (m < 0) return cli_usage("node start: --log needs a file");
            cfg.log_file = v;
        } else if ((m = cli_opt(argc, argv, &i, "--crl-stale", &v)) != 0) {
            if (m < 0 || (strcmp(v, "warn") && strcmp(v, "refuse")))
                return cli_usage("node start: --crl-stale must be warn or refuse");
            cfg.crl_stale_refuse = !strcmp(v, "refuse");
        } else if ((m = cli_opt(argc, argv, &i, "--log-level", &v)) != 0) {
            if (m < 0) return cli_usage("node start: --log-level needs debug|info|warn");
            if (!strcmp(v, "debug")) cfg.log_level = GM_LOG_DEBUG;
            else if (!strcmp(v, "info")) cfg.log_level = GM_LOG_INFO;
            else if (!strcmp(v, "warn")) cfg.log_level = GM_LOG_WARN;
            else if (!strcmp(v, "error")) cfg.log_level = GM_LOG_ERROR;
            else return cli_usage("node start: --log-level must be debug, info or warn");
        } else {
            return cli_usage("node start: unknown option '%s'", argv[i]);
        }
    }
    if (!cfg.dir)
        return cli_usage("node start: --dir D is required");
    if (gm_node_run(&cfg, &err) != 0)
        return cli_fail("node", &err);
    return 0;
}
