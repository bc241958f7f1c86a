/* genesis-mesh init: a whole local network authority in one directory: Root Sovereign
 * key, NA key, operator key, the genesis block signed by the root, and the NA's config. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "cli.h"
#include "gm/genesis.h"
#include "gm/keys.h"
#include "gm/na.h"
#include "gm/tls.h"
#include "gm/netpolicy.h"
#include "gm/policy.h"
#include "gm/util.h"

#define NA_VALID_DAYS 90
#define NA_MIN_VALIDITY_S (7LL * 86400) /* shorter only with --force (tests, drills) */

#define MAX_TLS_HOSTS 20

/* The host of an http(s) URL (brackets of an IPv6 address removed). */
static int url_host_of(const char *url, char *out, size_t cap)
{
    const char *p = !strncmp(url, "https://", 8) ? url + 8 : !strncmp(url, "http://", 7) ? url + 7 : NULL;
    if (!p)
        return -1;
    size_t n;
    if (*p == '[') {
        const char *close = strchr(p, ']');
        if (!close)
            return -1;
        p++;
        n = (size_t)(close - p);
    } else {
        n = strcspn(p, ":/?#");
    }
    if (n == 0 || n >= cap)
        return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

static int name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return 0;
    }
    return 1;
}

static int write_config(const char *dir, const char *network, const char *na_url, const char *listen,
                        const gm_signer *op, int tls, gm_error *err)
{
    char path[4096];
    int rc = gm_path_join(path, sizeof path, dir, "config.json", err);
    if (rc != 0)
        return rc;
    json_t *cfg = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:[{s:s,s:s}],s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:{s:i,s:i,s:i,s:i,s:i,s:i,s:i}}",
                            "network_name", network, "na_url", na_url, "listen", listen, "db", "na.db", "genesis",
                            "genesis.json", "na_key", "na", "operator_keys", "key_id", op->key_id, "public_key",
                            op->pk_b64, "max_body_bytes", GM_NA_DEFAULT_MAX_BODY, "crl_next_update_hours",
                            GM_NA_DEFAULT_CRL_NEXT_UPDATE_HOURS, "max_connections", GM_NA_DEFAULT_MAX_CONNECTIONS,
                            "max_connections_per_ip", GM_NA_DEFAULT_MAX_CONNECTIONS_PER_IP, "connection_timeout_s",
                            GM_NA_DEFAULT_CONNECTION_TIMEOUT_S, "request_timeout_s", GM_NA_DEFAULT_REQUEST_TIMEOUT_S,
                            "threads", GM_NA_DEFAULT_THREADS, "rate_limit", "per_ip_per_s",
                            GM_NA_DEFAULT_RATE_PER_IP_PER_S, "burst", GM_NA_DEFAULT_RATE_BURST,
                            "auth_failures_per_ip_per_s", GM_NA_DEFAULT_AUTH_FAILURES_PER_IP_PER_S,
                            "auth_failures_burst", GM_NA_DEFAULT_AUTH_FAILURES_BURST, "reads_per_ip_per_s",
                            GM_NA_DEFAULT_READS_PER_IP_PER_S, "reads_burst", GM_NA_DEFAULT_READS_BURST,
                            "tracked_ips", GM_NA_DEFAULT_RATE_TRACKED_IPS);
    if (cfg && tls) {
        json_object_set_new(cfg, "tls_cert", json_string("tls.crt"));
        json_object_set_new(cfg, "tls_key", json_string("tls.key"));
    } else if (cfg) {
        json_object_set_new(cfg, "plain_http", json_true());
    }
    char *text = cfg ? json_dumps(cfg, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(cfg);
    if (!text)
        return gm_error_set(err, GM_ENOMEM, "cannot build config.json");
    size_t len = strlen(text);
    char *withnl = malloc(len + 2);
    if (!withnl) {
        free(text);
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    }
    memcpy(withnl, text, len);
    withnl[len] = '\n';
    withnl[len + 1] = '\0';
    rc = gm_file_write_atomic(path, withnl, len + 1, 0644, err);
    free(withnl);
    free(text);
    return rc;
}

/* The permissive access policy (sequence 0, "default allow"): roles restrict nothing until the
 * operator sets rules with 'admin policy set'. */
static int write_policy(const char *dir, const gm_signer *na, gm_time now, gm_error *err)
{
    char path[4096];
    gm_policy p;
    int rc = gm_path_join(path, sizeof path, dir, "access-policy.json", err);
    if (rc == 0)
        rc = gm_policy_issue_default(&p, na, now, err);
    if (rc != 0)
        return rc;
    char *text = gm_policy_dump(&p, 0);
    gm_policy_free(&p);
    rc = text ? gm_file_write_atomic(path, text, strlen(text), 0644, err) : gm_error_set(err, GM_ENOMEM, "out of memory");
    free(text);
    return rc;
}

static int run_init(const cli_args *a)
{
    const char *dir = cli_str(a, "dir", "."), *network = cli_str(a, "network", "gm-local"),
               *na_url = cli_str(a, "na-url", NULL), *listen = cli_str(a, "listen", "127.0.0.1:8700");
    int force = cli_has(a, "force"), tls = !cli_has(a, "no-tls");
    const char *hosts[MAX_TLS_HOSTS];
    size_t n_hosts = cli_all(a, "tls-host", hosts, MAX_TLS_HOSTS - 4);
    if (n_hosts > MAX_TLS_HOSTS - 4)
        return cli_usage("init: at most %d --tls-host", MAX_TLS_HOSTS - 4);
    for (size_t i = 0; i < n_hosts; i++)
        if (!*hosts[i])
            return cli_usage("init: --tls-host needs a host name or address");
    if (!name_valid(network))
        return cli_usage("init: network name must be 1..64 letters, digits, '.', '_' or '-'");
    long long validity;
    if (cli_duration(a, "na-validity", 60, 3650LL * 86400, NA_VALID_DAYS * 86400LL, &validity))
        return 2;
    if (validity < NA_MIN_VALIDITY_S && !force)
        return cli_usage("init: --na-validity %s is shorter than a week: the network would stop when it ends unless "
                         "the NA key is rotated in time; pass --force if this is a test",
                         cli_str(a, "na-validity", ""));
    if (!na_url)
        na_url = tls ? "https://127.0.0.1:8700" : "http://127.0.0.1:8700";
    char url_host[256] = "";
    if (url_host_of(na_url, url_host, sizeof url_host) != 0)
        return cli_usage("init: --na-url must be http://HOST[:PORT] or https://HOST[:PORT]");
    if (tls && strncmp(na_url, "https://", 8) != 0)
        return cli_usage("init: the NA serves HTTPS: --na-url must start with https:// (or pass --no-tls)");
    hosts[n_hosts++] = "localhost";
    hosts[n_hosts++] = "127.0.0.1";
    hosts[n_hosts++] = "::1";
    if (strcmp(url_host, "localhost") && strcmp(url_host, "127.0.0.1") && strcmp(url_host, "::1"))
        hosts[n_hosts++] = url_host;

    gm_error err = {0};
    static const char *const files[] = {"root.key", "root.pub", "na.key",      "na.pub",     "operator.key",
                                        "operator.pub", "genesis.json", "config.json", "tls.key", "tls.crt",
                                        "access-policy.json", "network-policy.json"};
    char path[4096];
    /* It holds the NA's, root and operator keys: nobody else may list or read it. */
    if (gm_mkdir_p(dir, 0700, &err) != 0)
        return cli_fail("init", &err);
    for (size_t i = 0; !force && i < sizeof files / sizeof files[0]; i++) {
        if (gm_path_join(path, sizeof path, dir, files[i], &err) != 0)
            return cli_fail("init", &err);
        if (gm_file_exists(path)) {
            gm_error_set(&err, GM_EEXIST,
                         "%s already exists: %s already holds a network; refusing to overwrite its keys "
                         "(use --force to replace them all)",
                         path, dir);
            return cli_fail("init", &err);
        }
    }

    gm_signer root, na, op;
    gm_genesis g;
    memset(&g, 0, sizeof g);
    char base[4096];
    int rc = 0;
    if ((rc = gm_signer_generate(&root, "rs-local", &err)) || (rc = gm_signer_generate(&na, "na-local", &err)) ||
        (rc = gm_signer_generate(&op, "operator-local", &err)))
        return cli_fail("init: generating keys", &err);
    gm_time now = gm_time_now();
    now.usec = 0;
    if ((rc = gm_genesis_create(&g, network, root.pk, na.pk, now, gm_time_add(now, validity), NULL,
                                &err)) == 0)
        rc = gm_genesis_sign(&g, &root, &err);
    char *gtext = rc == 0 ? gm_genesis_dump(&g) : NULL;
    if (rc == 0 && !gtext)
        rc = gm_error_set(&err, GM_ENOMEM, "cannot serialize the genesis block");
    if (rc == 0)
        rc = gm_path_join(base, sizeof base, dir, "root", &err);
    if (rc == 0)
        rc = gm_signer_save(&root, base, force, &err);
    if (rc == 0)
        rc = gm_path_join(base, sizeof base, dir, "na", &err);
    if (rc == 0)
        rc = gm_signer_save(&na, base, force, &err);
    if (rc == 0)
        rc = gm_path_join(base, sizeof base, dir, "operator", &err);
    if (rc == 0)
        rc = gm_signer_save(&op, base, force, &err);
    if (rc == 0)
        rc = gm_path_join(path, sizeof path, dir, "genesis.json", &err);
    if (rc == 0) {
        size_t n = strlen(gtext);
        char *t = realloc(gtext, n + 2);
        if (t) {
            gtext = t;
            gtext[n] = '\n';
            gtext[n + 1] = '\0';
        }
        rc = gm_file_write_atomic(path, gtext, strlen(gtext), 0644, &err);
    }
    char pin[GM_TLS_PIN_LEN] = "", tls_crt[4096] = "", tls_key[4096];
    if (rc == 0 && tls && (rc = gm_path_join(tls_crt, sizeof tls_crt, dir, "tls.crt", &err)) == 0 &&
        (rc = gm_path_join(tls_key, sizeof tls_key, dir, "tls.key", &err)) == 0)
        rc = gm_tls_make_self_signed(tls_crt, tls_key, hosts, n_hosts, GM_TLS_DEFAULT_DAYS, pin, &err);
    if (rc == 0)
        rc = write_config(dir, network, na_url, listen, &op, tls, &err);
    if (rc == 0)
        rc = write_policy(dir, &na, now, &err);
    if (rc == 0)
        rc = gm_path_join(path, sizeof path, dir, "network-policy.json", &err);
    if (rc == 0) {
        /* the Python reference's default network policy manifest (GET /policy) */
        json_t *settings = gm_netpolicy_default_settings(network, json_string_value(json_object_get(g.doc, "network_version")));
        rc = cli_netpolicy_write(path, &na, settings, now, &err);
        json_decref(settings);
    }
    char console_token[GM_NA_CONSOLE_TOKEN_LEN + 1];
    if (rc == 0)
        rc = gm_na_console_token(dir, 1, console_token, &err);
    sodium_memzero(console_token, sizeof console_token);
    free(gtext);
    gm_genesis_free(&g);
    gm_signer_wipe(&root);
    gm_signer_wipe(&na);
    if (rc != 0) {
        gm_signer_wipe(&op);
        return cli_fail("init", &err);
    }
    if (gm_path_join(path, sizeof path, dir, "na.db", &err) == 0 && gm_file_exists(path))
        fprintf(stderr,
                "genesis-mesh: init: note: %s from the previous network is kept; delete it to start the NA "
                "with no certificates\n",
                path);
    printf("network '%s' created in %s\n"
           "  root.key      Root Sovereign key (rs-local): move it offline once the genesis is signed\n"
           "  na.key        NA key (na-local), valid %d days per genesis.json\n"
           "  operator.key  operator key (operator-local): %s\n"
           "  genesis.json  signed genesis block\n"
           "  config.json   NA configuration (listen %s, URL %s)\n"
           "  access-policy.json  access policy 0: everything allowed (genesis-mesh admin policy set FILE)\n"
           "  network-policy.json network policy manifest (GET /policy; genesis-mesh policy create)\n"
           "  console.token the web console's access token (genesis-mesh admin console-url --dir %s)\n",
           network, dir, NA_VALID_DAYS, op.pk_b64, listen, na_url, dir);
    if (tls)
        printf("  tls.crt       the NA's self-signed TLS certificate; its key pin is\n"
               "                %s\n"
               "                nodes join with --na-pin %s (or --na-ca %s)\n",
               pin, pin, tls_crt);
    else
        printf("  (no TLS: the NA serves plain HTTP; invite tokens and admin requests travel in clear)\n");
    printf("next: genesis-mesh na start --dir %s\n", dir);
    gm_signer_wipe(&op);
    return 0;
}

static const cli_opt init_opts[] = {
    {"dir", "D", "where to create the network (default .)"},
    {"network", "NAME", "network name, 1..64 of letters, digits, '.', '_', '-' (default gm-local)"},
    {"na-url", "URL", "the NA URL written to config.json (default https://127.0.0.1:8700, http:// with --no-tls)"},
    {"listen", "HOST:PORT", "where the NA listens (default 127.0.0.1:8700)"},
    {"tls-host", "NAME", "another name or address the NA's TLS certificate must cover (repeatable)"},
    {"no-tls", NULL, "make no TLS key and configure plain HTTP (\"plain_http\": true)"},
    {"na-validity", "DURATION", "NA key validity: a number and s, m, h or d (default 90d); under 7d needs --force"},
    {"force", NULL, "replace the keys of an existing network; allow an NA key validity under a week"},
    {NULL},
};
const cli_cmd cli_init = {
    "init", "create root, NA and operator keys, a signed genesis block and config",
    "[--dir D] [--network NAME] [--na-url URL] [--listen HOST:PORT] [--na-validity DURATION] [--force]\n"
    "                         [--tls-host NAME]... [--no-tls]",
    "Creates in D:\n"
    "  root.key/.pub      Root Sovereign key (rs-local); signs the genesis block. Keep it offline.\n"
    "  na.key/.pub        Network Authority key (na-local); signs certificates and CRLs.\n"
    "  operator.key/.pub  operator key (operator-local); signs admin requests.\n"
    "  genesis.json       the genesis block, NA key valid for 90 days (--na-validity); rotate the\n"
    "                     NA key before it ends with 'genesis rotate' (docs/operator-guide.md).\n"
    "  config.json        the NA's configuration.\n"
    "  access-policy.json the permissive access policy 0, signed by the NA key.\n"
    "  network-policy.json the network policy manifest (the Python reference's defaults), signed\n"
    "                     by the NA key, served at GET /policy.\n"
    "  tls.key, tls.crt   the NA's TLS key and self-signed certificate (HTTPS), naming localhost,\n"
    "                     127.0.0.1, ::1, the host of --na-url and each --tls-host. --no-tls makes\n"
    "                     none and configures plain HTTP (\"plain_http\": true).\n"
    "Refuses to overwrite existing keys unless --force.\n",
    run_init, init_opts, 0, NULL};
