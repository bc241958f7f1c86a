/* genesis-mesh node start: the persistent node runtime (lib/node/). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "gm/node.h"

static int node_start(const cli_args *a)
{
    gm_node_config cfg;
    gm_error err = {0};
    memset(&cfg, 0, sizeof cfg);
    cfg.dir = cli_str(a, "dir", NULL);
    cfg.listen = cli_str(a, "listen", NULL);
    cfg.port_file = cli_str(a, "port-file", NULL);
    cfg.na_url = cli_str(a, "na", NULL);
    size_t n = cli_all(a, "peer", cfg.peers, GM_NODE_MAX_PEER_ARGS);
    if (n > GM_NODE_MAX_PEER_ARGS)
        return cli_usage("node start: at most %d --peer options", GM_NODE_MAX_PEER_ARGS);
    cfg.n_peers = n;
    long long poll, renew;
    if (cli_int(a, "crl-poll-ms", -1, 86400000, 0, &poll) || cli_int(a, "renew-after-s", 1, 86400 * 365, 0, &renew))
        return 2;
    /* an explicit 0 turns polling off, like -1; absent means the default */
    cfg.crl_poll_ms = cli_has(a, "crl-poll-ms") && poll == 0 ? -1 : (long)poll;
    cfg.renew_after_s = (long)renew;
    const char *stale = cli_str(a, "crl-stale", NULL);
    static const char *const stale_modes[] = {"warn", "refuse", NULL};
    int mode = 0;
    if (stale && cli_parse_choice(a->path, "crl-stale", stale, stale_modes, &mode))
        return 2;
    cfg.crl_stale_refuse = mode == 1;
    long long warn;
    if (cli_duration(a, "na-warn-before", 1, 3650LL * 86400, 0, &warn))
        return 2;
    cfg.na_warn_s = (long)warn;
    long long hb;
    if (cli_int(a, "heartbeat-s", -1, 86400, 0, &hb))
        return 2;
    /* an explicit 0 turns heartbeats off, like -1; absent means the default */
    cfg.heartbeat_s = cli_has(a, "heartbeat-s") && hb == 0 ? -1 : (long)hb;
    long long watch;
    if (cli_int(a, "crl-watch-s", -1, 3600, 0, &watch))
        return 2;
    /* an explicit 0 turns the watch off, like -1; absent means the default */
    cfg.crl_watch_s = cli_has(a, "crl-watch-s") && watch == 0 ? -1 : (long)watch;
    cfg.metrics_listen = cli_str(a, "metrics-listen", NULL);
    cfg.metrics_port_file = cli_str(a, "metrics-port-file", NULL);
    cfg.check_only = cli_has(a, "check");
    if (!cfg.dir)
        return cli_usage("node start: --dir D is required");
    if (cfg.check_only) {
        if (gm_node_run(&cfg, &err) != 0)
            return cli_fail("node start --check", &err);
        printf("node start --check: the configuration in %s is valid (key, certificate, genesis, CRL, policy, "
               "permissions, addresses)\n",
               cfg.dir);
        return 0;
    }
    int rc = cli_log_open(a, &cfg.log_level);
    if (rc != 0)
        return rc;
    rc = gm_node_run(&cfg, &err) != 0 ? cli_fail("node", &err) : 0;
    cli_log_close();
    return rc;
}

static const cli_opt start_opts[] = {
    {"dir", "D", "the node directory (from 'genesis-mesh join'), required"},
    {"listen", "HOST:PORT", "where to accept links (default 127.0.0.1:0, a free port)"},
    {"port-file", "F", "write the port actually bound to F"},
    {"peer", "HOST:PORT", "dial this peer, repeatable"},
    {"na", "URL", "the NA (default: na_url of D/node.json)"},
    {"crl-poll-ms", "N", "poll the NA's CRL every N ms (default 60000 while the CRL watch is on, else 2000; the "
                         "access policy every N ms, default 2000; 0 or -1 = off)"},
    {"crl-watch-s", "S", "hold a CRL watch on the NA, each request waiting up to S s for a newer CRL (default "
                         "1800; 0 or -1 = off)"},
    {"renew-after-s", "N", "renew the certificate N s after start and after each renewal, instead of at two "
                           "thirds of its lifetime"},
    {"crl-stale", "warn|refuse", "while the CRL is past its next_update: only warn (default), or accept no new "
                                 "peer link except to fetch a fresher CRL from it"},
    {"na-warn-before", "DURATION", "warn (log, status) this long before the NA key's window ends with no successor "
                                   "known (default 30d)"},
    {"heartbeat-s", "N", "POST /heartbeat to the NA at start and every N s (default 60; 0 or -1 = off)"},
    {"metrics-listen", "HOST:PORT", "serve Prometheus metrics at http://HOST:PORT/metrics (plain HTTP; off by "
                                    "default; port 0 picks a free port)"},
    {"metrics-port-file", "F", "write the metrics port actually bound to F"},
    {"check", NULL, "check the directory and options (files, permissions, keys, genesis, certificate, addresses) "
                    "and exit 0 or 1 without starting"},
    CLI_LOG_OPTS,
    {NULL},
};
static const cli_cmd node_start_cmd = {
    "start", "run the node until SIGTERM/SIGINT",
    "--dir D [--listen HOST:PORT] [--port-file F] [--peer HOST:PORT]... [--na URL] [--crl-poll-ms N] [--crl-watch-s S]\n"
    "       [--renew-after-s N] [--na-warn-before DURATION] [--heartbeat-s N] [--metrics-listen HOST:PORT [--metrics-port-file F]]\n"
    "       [--check] [--log FILE] [--log-format json|text] [--log-level L]",
    "SIGHUP reopens the --log file (after rotation) and fetches the CRL and access policy from the NA now.\n",
    node_start, start_opts, 0, NULL};

static const cli_cmd *const node_subs[] = {&node_start_cmd, NULL};
const cli_cmd cli_node = {"node", "start the persistent node runtime", NULL, NULL, NULL, NULL, 0, node_subs};
