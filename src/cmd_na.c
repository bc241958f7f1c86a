/* genesis-mesh na: run the Network Authority (na start), plus a small signing helper for
 * scripts and tests (na sign-request). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "gm/keys.h"
#include "gm/na.h"
#include "gm/reqsig.h"
#include "gm/tls.h"
#include "gm/util.h"

/* na check-config and na start --check: what start would refuse, without starting. */
static int check_config(gm_na_config *cfg, const char *what)
{
    gm_error err = {0};
    char *summary = NULL;
    if (gm_na_config_check(cfg, &summary, &err) != 0)
        return cli_fail(what, &err);
    printf("%s: the configuration in %s is valid: %s\n", what, cfg->dir, summary);
    free(summary);
    return 0;
}

static int na_serve(const char *dir, const char *listen, const char *port_file, const char *tls_cert,
                    const char *tls_key, int plain, int check)
{
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
    if (check) {
        if (listen)
            snprintf(cfg.listen, sizeof cfg.listen, "%s", listen);
        return check_config(&cfg, "na start --check");
    }
    /* Signals are taken by sigwait below; block them before any thread exists. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (gm_na_new(&na, &cfg, NULL, NULL, &err) != 0)
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
    char pin[GM_TLS_PIN_LEN] = "", path[4096] = "";
    if (gm_na_tls(na) && gm_na_config_path(&cfg, cfg.tls_cert, path, sizeof path, NULL) == 0 &&
        gm_tls_pin_of_cert_file(path, pin, NULL) != 0)
        pin[0] = '\0';
    gm_log(GM_LOG_INFO, "na", "NA '%s' serving %s on port %u (Ctrl-C to stop)", cfg.network_name,
           gm_na_tls(na) ? "HTTPS" : "plain HTTP (no TLS)", (unsigned)gm_na_port(na));
    if (pin[0])
        gm_log(GM_LOG_INFO, "na", "TLS key pin %s (nodes join with --na-pin %s, or --na-ca %s)", pin, pin, path);
    int sig = 0;
    /* SIGHUP: reopen the log (rotation) and reload what can change while serving. */
    while (sigwait(&set, &sig) == 0 && sig == SIGHUP) {
        if (gm_log_reopen() != 0)
            gm_log(GM_LOG_ERROR, "na", "SIGHUP: cannot reopen the log file: %s", strerror(errno));
        if (gm_na_reload(na, &err) != 0)
            gm_log(GM_LOG_ERROR, "na", "SIGHUP: %s", err.msg);
        gm_log_event(GM_LOG_INFO, "na", "reloaded", NULL, "SIGHUP: log reopened, configuration reloaded");
    }
    gm_log(GM_LOG_INFO, "na", "NA stopping (signal %d)", sig);
    gm_na_free(na);
    return 0;
}

static int na_start(const cli_args *a)
{
    const char *dir = cli_str(a, "dir", "."), *listen = cli_str(a, "listen", NULL),
               *port_file = cli_str(a, "port-file", NULL), *tls_cert = cli_str(a, "tls-cert", NULL),
               *tls_key = cli_str(a, "tls-key", NULL);
    int quiet = cli_has(a, "quiet") || cli_has(a, "check"), rc;
    if (!quiet && (rc = cli_log_open(a, NULL)) != 0)
        return rc;
    rc = na_serve(dir, listen, port_file, tls_cert, tls_key, cli_has(a, "plain-http"), cli_has(a, "check"));
    cli_log_close();
    return rc;
}

static int na_check_config(const cli_args *a)
{
    gm_error err = {0};
    gm_na_config cfg;
    if (gm_na_config_load(&cfg, cli_str(a, "dir", "."), &err) != 0)
        return cli_fail("na check-config", &err);
    return check_config(&cfg, "na check-config");
}

static int na_sign_request(const cli_args *a)
{
    const char *key = cli_str(a, "key", NULL), *body_text = cli_str(a, "body", NULL),
               *ts = cli_str(a, "timestamp", NULL), *nonce = cli_str(a, "nonce", NULL);
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

static const cli_opt start_opts[] = {
    {"dir", "D", "the NA directory (default .; see 'genesis-mesh init')"},
    {"listen", "HOST:PORT", "listen here instead of config.json \"listen\" (port 0 picks a free port)"},
    {"port-file", "F", "write the port actually bound to F"},
    {"tls-cert", "FILE", "serve HTTPS with this certificate (PEM) instead of config.json \"tls_cert\""},
    {"tls-key", "FILE", "the certificate's private key (PEM); goes with --tls-cert"},
    {"plain-http", NULL, "serve plain HTTP on purpose (no TLS; invite tokens travel in clear)"},
    {"quiet", NULL, "no log at all"},
    {"check", NULL, "check the configuration with these options (as na check-config) and exit 0 or 1 without "
                    "starting"},
    CLI_LOG_OPTS,
    {NULL},
};
static const cli_cmd na_start_cmd = {
    "start", "serve the Network Authority of a directory",
    "[--dir D] [--listen HOST:PORT] [--port-file F] [--tls-cert FILE --tls-key FILE] [--plain-http]\n"
    "       [--check] [--quiet] [--log FILE] [--log-format F] [--log-level L]",
    "Serves the NA of directory D until SIGINT/SIGTERM. Logs one record per request and event.\n"
    "SIGHUP reopens the --log file (after rotation) and reloads the rate limits of config.json.\n"
    "Serves HTTPS with the certificate and key of config.json (tls_cert, tls_key; made by init) or\n"
    "--tls-cert/--tls-key; plain HTTP only with --plain-http or \"plain_http\": true in config.json.\n", na_start,
    start_opts, 0, NULL};

static const cli_opt sign_opts[] = {
    {"key", "BASE", "sign with BASE.key"},
    {"body", "JSON", "the request (a JSON object); node_public_key is added when missing"},
    {"timestamp", "T", "signed timestamp to use instead of now"},
    {"nonce", "N", "signed nonce to use instead of a random one"},
    {NULL},
};
static const cli_cmd na_sign_cmd = {"sign-request", "print JSON signed as a node request (for scripts and tests)",
                                    "--key BASE --body JSON [--timestamp T] [--nonce N]", NULL, na_sign_request,
                                    sign_opts, 0, NULL};

static const cli_opt check_opts[] = {
    {"dir", "D", "the NA directory (default .)"},
    {NULL},
};
static const cli_cmd na_check_cmd = {
    "check-config", "check the NA directory (config, keys, genesis, TLS, permissions) without starting", "[--dir D]",
    "Exits 0 when 'na start --dir D' would start, else 1 with what is wrong: config.json parses\n"
    "strictly, the genesis block verifies and names the network, na.key is the genesis NA key and\n"
    "inside its window, key files are 0600 and D is 0700, the TLS certificate parses, is valid now\n"
    "and matches tls_key (or plain_http is set), and listen parses. Opens neither the database nor\n"
    "a socket.\n",
    na_check_config, check_opts, 0, NULL};

static const cli_cmd *const na_subs[] = {&na_start_cmd, &na_check_cmd, &na_sign_cmd, NULL};
const cli_cmd cli_na = {"na", "start the Network Authority service", NULL, NULL, NULL, NULL, 0, na_subs};
