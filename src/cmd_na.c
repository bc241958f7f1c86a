/* genesis-mesh na: run the Network Authority (na start), plus a small signing helper for
 * scripts and tests (na sign-request). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli.h"
#include "gm/keys.h"
#include "gm/na.h"
#include "gm/reqsig.h"
#include "gm/tls.h"
#include "gm/util.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: genesis-mesh na start [--dir D] [--listen HOST:PORT] [--port-file F] [--quiet]\n"
               "                            [--tls-cert FILE --tls-key FILE] [--plain-http]\n"
               "       genesis-mesh na sign-request --key BASE --body JSON [--timestamp T] [--nonce N]\n"
               "\n"
               "start         serve the NA of directory D (default .; see 'genesis-mesh init'). Port 0 picks a\n"
               "              free port; --port-file writes the port actually bound. Stops on SIGINT/SIGTERM.\n"
               "              Serves HTTPS with the certificate and key of config.json (tls_cert, tls_key;\n"
               "              made by init) or --tls-cert/--tls-key; plain HTTP only with --plain-http or\n"
               "              \"plain_http\": true in config.json.\n"
               "sign-request  print JSON signed as a node request (proof of possession) by BASE.key;\n"
               "              node_public_key is added when missing. For scripts and tests.\n");
}

static void log_stderr(void *ctx, const char *line)
{
    char ts[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(stderr, "%s na: %s\n", ts, line);
}

static int na_start(int argc, char **argv)
{
    const char *dir = ".", *listen = NULL, *port_file = NULL, *tls_cert = NULL, *tls_key = NULL;
    int quiet = 0, plain = 0;
    for (int i = 1; i < argc; i++) {
        int m;
        if ((m = cli_opt(argc, argv, &i, "--dir", &dir)) || (m = cli_opt(argc, argv, &i, "--listen", &listen)) ||
            (m = cli_opt(argc, argv, &i, "--port-file", &port_file)) ||
            (m = cli_opt(argc, argv, &i, "--tls-cert", &tls_cert)) ||
            (m = cli_opt(argc, argv, &i, "--tls-key", &tls_key))) {
            if (m < 0)
                return cli_usage("na start: %s needs a value", argv[i]);
        } else if (cli_flag(argv, i, "--quiet")) {
            quiet = 1;
        } else if (cli_flag(argv, i, "--plain-http")) {
            plain = 1;
        } else {
            usage(stderr);
            return cli_usage("na start: unknown option '%s'", argv[i]);
        }
    }
    gm_error err = {0};
    gm_na_config cfg;
    gm_na_t *na = NULL;
    if (gm_na_config_load(&cfg, dir, &err) != 0)
        return cli_fail("na start", &err);
    if (!tls_cert != !tls_key)
        return cli_usage("na start: --tls-cert and --tls-key go together");
    if (tls_cert) {
        snprintf(cfg.tls_cert, sizeof cfg.tls_cert, "%s", tls_cert);
        snprintf(cfg.tls_key, sizeof cfg.tls_key, "%s", tls_key);
    }
    if (plain) {
        cfg.tls_cert[0] = cfg.tls_key[0] = '\0';
        cfg.plain_http = 1;
    }
    if (!cfg.tls_cert[0] && !cfg.plain_http) {
        gm_error_set(&err, GM_EINVAL,
                 "no TLS certificate: set \"tls_cert\" and \"tls_key\" in %s/config.json (init makes them) or pass "
                 "--tls-cert/--tls-key; to serve plain HTTP on purpose pass --plain-http or set \"plain_http\": true",
                 dir);
        return cli_fail("na start", &err);
    }
    /* Signals are taken by sigwait below; block them before any thread exists. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (gm_na_new(&na, &cfg, quiet ? NULL : log_stderr, NULL, &err) != 0)
        return cli_fail("na start", &err);
    if (gm_na_start(na, listen, &err) != 0) {
        gm_na_free(na);
        return cli_fail("na start", &err);
    }
    if (port_file) {
        char text[16];
        int n = snprintf(text, sizeof text, "%u\n", (unsigned)gm_na_port(na));
        if (gm_file_write_atomic(port_file, text, (size_t)n, 0644, &err) != 0) {
            gm_na_free(na);
            return cli_fail("na start: writing the port file", &err);
        }
    }
    if (!quiet) {
        char pin[GM_TLS_PIN_LEN] = "", path[4096];
        if (gm_na_tls(na) && gm_na_config_path(&cfg, cfg.tls_cert, path, sizeof path, NULL) == 0 &&
            gm_tls_pin_of_cert_file(path, pin, NULL) != 0)
            pin[0] = '\0';
        fprintf(stderr, "genesis-mesh: NA '%s' serving %s on port %u (Ctrl-C to stop)\n", cfg.network_name,
                gm_na_tls(na) ? "HTTPS" : "plain HTTP (no TLS)", (unsigned)gm_na_port(na));
        if (pin[0])
            fprintf(stderr, "genesis-mesh: TLS key pin %s (nodes join with --na-pin %s, or --na-ca %s)\n", pin, pin,
                    path);
    }
    int sig = 0;
    sigwait(&set, &sig);
    if (!quiet)
        fprintf(stderr, "genesis-mesh: NA stopping (signal %d)\n", sig);
    gm_na_free(na);
    return 0;
}

static int na_sign_request(int argc, char **argv)
{
    const char *key = NULL, *body_text = NULL, *ts = NULL, *nonce = NULL;
    for (int i = 1; i < argc; i++) {
        int m;
        if ((m = cli_opt(argc, argv, &i, "--key", &key)) || (m = cli_opt(argc, argv, &i, "--body", &body_text)) ||
            (m = cli_opt(argc, argv, &i, "--timestamp", &ts)) || (m = cli_opt(argc, argv, &i, "--nonce", &nonce))) {
            if (m < 0)
                return cli_usage("na sign-request: %s needs a value", argv[i]);
        } else {
            usage(stderr);
            return cli_usage("na sign-request: unknown option '%s'", argv[i]);
        }
    }
    if (!key || !body_text)
        return cli_usage("na sign-request: --key and --body are required");
    gm_error err = {0};
    gm_signer k;
    if (gm_signer_load(&k, key, "node", &err) != 0)
        return cli_fail("na sign-request", &err);
    json_error_t je;
    json_t *body = json_loads(body_text, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(body)) {
        json_decref(body);
        gm_signer_wipe(&k);
        return cli_usage("na sign-request: --body must be a JSON object (%s)", je.text);
    }
    if (!json_object_get(body, "node_public_key"))
        json_object_set_new(body, "node_public_key", json_string(k.pk_b64));
    int rc = gm_reqsig_node_sign(body, &k, ts, nonce, &err);
    gm_signer_wipe(&k);
    char *out = rc == 0 ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (rc != 0)
        return cli_fail("na sign-request", &err);
    printf("%s\n", out);
    free(out);
    return 0;
}

int cmd_na(int argc, char **argv)
{
    if (argc < 2 || cli_flag(argv, 1, "--help") || cli_flag(argv, 1, "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "start"))
        return na_start(argc - 1, argv + 1);
    if (!strcmp(argv[1], "sign-request"))
        return na_sign_request(argc - 1, argv + 1);
    usage(stderr);
    return cli_usage("na: unknown subcommand '%s'", argv[1]);
}
