/* NA lifecycle: config.json, the startup checks (genesis verifies, our key is the NA key it
 * names and inside its window), the store, the cached CRL, and the log. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "gm/crl.h"
#include "gm/log.h"
#include "gm/sigdoc.h"
#include "gm/tls.h"
#include "gm/util.h"
#include "na_internal.h"

#define CONFIG_MAX_BYTES (256 * 1024)
#define GENESIS_FILE_MAX (256 * 1024)

void na_log(gm_na_t *na, const char *fmt, ...)
{
    if (!na || (!na->log && !gm_log_enabled(GM_LOG_INFO)))
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (na->log)
        na->log(na->log_ctx, line);
    else
        gm_log(GM_LOG_INFO, "na", "%s", line);
}

/* ---- config.json ---- */

static int copy_str(const json_t *cfg, const char *key, char *out, size_t cap, const char *def, gm_error *err)
{
    const json_t *v = json_object_get(cfg, key);
    if (!v) {
        if (!def)
            return gm_error_set(err, GM_EFORMAT, "config.json: missing \"%s\"", key);
        snprintf(out, cap, "%s", def);
        return 0;
    }
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) >= cap)
        return gm_error_set(err, GM_EFORMAT, "config.json: \"%s\" must be a non-empty string shorter than %zu", key,
                            cap);
    snprintf(out, cap, "%s", json_string_value(v));
    return 0;
}

/* "store": the database the NA keeps its state in, a postgresql:// URL (lib/na/store_pg.c) or
 * a SQLite file path; the older "db" (a path) means the same, and only one may be given. */
static int copy_store(const json_t *cfg, char *out, size_t cap, gm_error *err)
{
    if (!json_object_get(cfg, "store"))
        return 0;
    if (json_object_get(cfg, "db"))
        return gm_error_set(err, GM_EFORMAT, "config.json: give \"store\" or \"db\", not both");
    return copy_str(cfg, "store", out, cap, NULL, err);
}

static int get_int(const json_t *cfg, const char *key, int64_t def, int64_t min, int64_t max, int64_t *out,
                   gm_error *err)
{
    const json_t *v = json_object_get(cfg, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return gm_error_set(err, GM_EFORMAT, "config.json: \"%s\" must be an integer in %lld..%lld", key,
                            (long long)min, (long long)max);
    *out = json_integer_value(v);
    return 0;
}

static int load_operators(gm_na_config *c, const json_t *ops, gm_error *err)
{
    if (!json_is_array(ops) || json_array_size(ops) == 0 || json_array_size(ops) > GM_NA_MAX_OPERATORS)
        return gm_error_set(err, GM_EFORMAT,
                            "config.json: \"operator_keys\" must be an array of 1..%d {key_id, public_key}",
                            GM_NA_MAX_OPERATORS);
    for (size_t i = 0; i < json_array_size(ops); i++) {
        const json_t *o = json_array_get(ops, i);
        const char *kid;
        gm_na_operator *op = &c->operators[i];
        if (!json_is_object(o) || gm_json_get_string(o, "key_id", &kid, err) != 0 || kid[0] == '\0' ||
            strlen(kid) >= sizeof op->key_id || gm_json_get_pk(o, "public_key", op->pk, err) != 0)
            return gm_error_set(err, GM_EFORMAT,
                                "config.json: operator_keys[%zu] must be {\"key_id\": non-empty string, "
                                "\"public_key\": base64 Ed25519 key}",
                                i);
        snprintf(op->key_id, sizeof op->key_id, "%s", kid);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(c->operators[j].key_id, kid))
                return gm_error_set(err, GM_EFORMAT, "config.json: operator key id '%s' appears twice", kid);
    }
    c->n_operators = json_array_size(ops);
    return 0;
}

/* "rate_limit": {"per_ip_per_s", "burst", "auth_failures_per_ip_per_s", "auth_failures_burst",
 * "reads_per_ip_per_s", "reads_burst", "tracked_ips"}, each optional. */
static int load_rate_limit(gm_na_rate_limit *rl, const json_t *v, gm_error *err)
{
    static const char *const known[] = {"per_ip_per_s", "burst", "auth_failures_per_ip_per_s",
                                        "auth_failures_burst", "reads_per_ip_per_s", "reads_burst",
                                        "tracked_ips", NULL};
    if (v && !json_is_object(v))
        return gm_error_set(err, GM_EFORMAT, "config.json: \"rate_limit\" must be an object");
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)v, key, val)
    {
        int ok = 0;
        for (size_t i = 0; known[i]; i++)
            ok |= !strcmp(key, known[i]);
        if (!ok)
            return gm_error_set(err, GM_EFORMAT, "config.json: unknown member \"%s\" in \"rate_limit\"", key);
    }
    int64_t rate = 0, burst = 0, frate = 0, fburst = 0, rrate = 0, rburst = 0, tracked = 0;
    int rc;
    if ((rc = get_int(v, "per_ip_per_s", GM_NA_DEFAULT_RATE_PER_IP_PER_S, 0, 1000000, &rate, err)) ||
        (rc = get_int(v, "burst", GM_NA_DEFAULT_RATE_BURST, 1, 10000000, &burst, err)) ||
        (rc = get_int(v, "auth_failures_per_ip_per_s", GM_NA_DEFAULT_AUTH_FAILURES_PER_IP_PER_S, 0, 1000000, &frate,
                      err)) ||
        (rc = get_int(v, "auth_failures_burst", GM_NA_DEFAULT_AUTH_FAILURES_BURST, 1, 10000000, &fburst, err)) ||
        (rc = get_int(v, "reads_per_ip_per_s", GM_NA_DEFAULT_READS_PER_IP_PER_S, 0, 1000000, &rrate, err)) ||
        (rc = get_int(v, "reads_burst", GM_NA_DEFAULT_READS_BURST, 1, 10000000, &rburst, err)) ||
        (rc = get_int(v, "tracked_ips", GM_NA_DEFAULT_RATE_TRACKED_IPS, 16, 1 << 20, &tracked, err)))
        return rc;
    rl->per_ip_per_s = (unsigned)rate;
    rl->burst = (unsigned)burst;
    rl->auth_failures_per_ip_per_s = (unsigned)frate;
    rl->auth_failures_burst = (unsigned)fburst;
    rl->reads_per_ip_per_s = (unsigned)rrate;
    rl->reads_burst = (unsigned)rburst;
    rl->tracked_ips = (unsigned)tracked;
    return 0;
}

/* "tls_cert" and "tls_key" come together; "plain_http" is a boolean. */
static int load_plain_http(gm_na_config *c, const json_t *v, gm_error *err)
{
    if (v && !json_is_boolean(v))
        return gm_error_set(err, GM_EFORMAT, "config.json: \"plain_http\" must be true or false");
    c->plain_http = json_is_true(v);
    if (!c->tls_cert[0] != !c->tls_key[0])
        return gm_error_set(err, GM_EFORMAT, "config.json: \"tls_cert\" and \"tls_key\" go together");
    return 0;
}

int gm_na_config_load(gm_na_config *c, const char *dir, gm_error *err)
{
    static const char *const known[] = {"network_name", "na_url", "listen", "db", "genesis", "na_key",
                                        "operator_keys", "max_body_bytes", "crl_next_update_hours",
                                        "max_connections", "max_connections_per_ip", "connection_timeout_s",
                                        "request_timeout_s", "threads", "rate_limit", "tls_cert", "tls_key",
                                        "plain_http", "crl_resign_interval_s",
                                        "crl_next_update_multiple", "crl_max_bytes", "supersede_grace_s", "store", NULL};
    char path[4096], *text = NULL;
    size_t len;
    json_error_t je;
    memset(c, 0, sizeof *c);
    if (snprintf(c->dir, sizeof c->dir, "%s", dir) >= (int)sizeof c->dir)
        return gm_error_set(err, GM_EINVAL, "directory path too long");
    int rc = gm_path_join(path, sizeof path, dir, "config.json", err);
    if (rc == 0)
        rc = gm_file_read(path, CONFIG_MAX_BYTES, &text, &len, err);
    if (rc != 0)
        return rc == GM_ENOTFOUND ? gm_error_set(err, GM_ENOTFOUND,
                                                 "%s not found: run 'genesis-mesh init --dir %s' first", path, dir)
                                  : rc;
    json_t *cfg = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    free(text);
    if (!cfg || !json_is_object(cfg)) {
        json_decref(cfg);
        return gm_error_set(err, GM_EFORMAT, "%s is not a JSON object (line %d: %s)", path, je.line, je.text);
    }
    const char *key;
    json_t *val;
    json_object_foreach(cfg, key, val)
    {
        int ok = 0;
        for (size_t i = 0; known[i]; i++)
            ok |= !strcmp(key, known[i]);
        if (!ok) {
            rc = gm_error_set(err, GM_EFORMAT, "%s: unknown member \"%s\"", path, key);
            break;
        }
    }
    int64_t body = 0, nu = 0, conns = 0, per_ip = 0, timeout = 0, req_timeout = 0, threads = 0, resign = 0, mult = 0, grace = 0;
    if (rc == 0 && ((rc = copy_str(cfg, "network_name", c->network_name, sizeof c->network_name, NULL, err)) ||
                    (rc = copy_str(cfg, "na_url", c->na_url, sizeof c->na_url, "http://127.0.0.1:8700", err)) ||
                    (rc = copy_str(cfg, "listen", c->listen, sizeof c->listen, "127.0.0.1:8700", err)) ||
                    (rc = copy_str(cfg, "db", c->db_path, sizeof c->db_path, "na.db", err)) ||
                    (rc = copy_store(cfg, c->db_path, sizeof c->db_path, err)) ||
                    (rc = copy_str(cfg, "genesis", c->genesis_path, sizeof c->genesis_path, "genesis.json", err)) ||
                    (rc = copy_str(cfg, "na_key", c->na_key_base, sizeof c->na_key_base, "na", err)) ||
                    (rc = get_int(cfg, "max_body_bytes", GM_NA_DEFAULT_MAX_BODY, 1024, 16 * 1024 * 1024, &body,
                                  err)) ||
                    (rc = get_int(cfg, "crl_next_update_hours", GM_NA_DEFAULT_CRL_NEXT_UPDATE_HOURS, 1, 24 * 366,
                                  &nu, err)) ||
                    (rc = get_int(cfg, "crl_resign_interval_s", GM_NA_DEFAULT_CRL_RESIGN_INTERVAL_S, 0, 7 * 86400,
                                  &resign, err)) ||
                    (rc = get_int(cfg, "crl_next_update_multiple", GM_NA_DEFAULT_CRL_NEXT_UPDATE_MULTIPLE, 2, 1000,
                                  &mult, err)) ||
                    (rc = get_int(cfg, "supersede_grace_s", GM_NA_DEFAULT_SUPERSEDE_GRACE_S, 1, 86400, &grace, err)) ||
                    (rc = get_int(cfg, "max_connections", GM_NA_DEFAULT_MAX_CONNECTIONS, 4, 65536, &conns, err)) ||
                    (rc = get_int(cfg, "max_connections_per_ip", GM_NA_DEFAULT_MAX_CONNECTIONS_PER_IP, 0, 65536,
                                  &per_ip, err)) ||
                    (rc = get_int(cfg, "connection_timeout_s", GM_NA_DEFAULT_CONNECTION_TIMEOUT_S, 1, 3600, &timeout,
                                  err)) ||
                    (rc = get_int(cfg, "request_timeout_s", GM_NA_DEFAULT_REQUEST_TIMEOUT_S, 1, 3600, &req_timeout,
                                  err)) ||
                    (rc = get_int(cfg, "threads", GM_NA_DEFAULT_THREADS, 1, 256, &threads, err)) ||
                    (rc = load_rate_limit(&c->rate_limit, json_object_get(cfg, "rate_limit"), err)) ||
                    (rc = copy_str(cfg, "tls_cert", c->tls_cert, sizeof c->tls_cert, "", err)) ||
                    (rc = copy_str(cfg, "tls_key", c->tls_key, sizeof c->tls_key, "", err)) ||
                    (rc = load_plain_http(c, json_object_get(cfg, "plain_http"), err)) ||
                    (rc = load_operators(c, json_object_get(cfg, "operator_keys"), err))))
        gm_error_prefix(err, "%s", path);
    int64_t crl_max = GM_CRL_MAX_BYTES;
    if (rc == 0 && (rc = get_int(cfg, "crl_max_bytes", GM_CRL_MAX_BYTES, 1024, GM_CRL_MAX_BYTES, &crl_max, err)) != 0)
        gm_error_prefix(err, "%s (\"crl_max_bytes\" is for tests and may only lower the %d-byte cap nodes enforce)",
                        path, GM_CRL_MAX_BYTES);
    c->crl_max_bytes = (size_t)crl_max;
    json_decref(cfg);
    c->max_body_bytes = (size_t)body;
    c->crl_next_update_hours = nu;
    c->crl_resign_interval_s = resign;
    c->crl_next_update_multiple = mult;
    c->supersede_grace_s = grace;
    c->max_connections = (unsigned)conns;
    c->max_connections_per_ip = (unsigned)per_ip;
    c->connection_timeout_s = (unsigned)timeout;
    c->request_timeout_s = (unsigned)req_timeout;
    c->threads = (unsigned)threads;
    return rc;
}

int gm_na_config_path(const gm_na_config *c, const char *name, char *out, size_t cap, gm_error *err)
{
    /* an absolute path, or a URL (a database's) */
    if (name[0] == '/' || strstr(name, "://")) {
        if (snprintf(out, cap, "%s", name) >= (int)cap)
            return gm_error_set(err, GM_EINVAL, "path too long: %s", name);
        return 0;
    }
    return gm_path_join(out, cap, c->dir, name, err);
}

/* ---- CRL cache ---- */

void na_crl_cache_set(gm_na_t *na, uint64_t seq, char *text)
{
    int changed = 0;
    pthread_mutex_lock(&na->crl_lock);
    if (gm_crl_is_newer(seq, na->crl_text != NULL, na->crl_seq)) {
        changed = 1;
        free(na->crl_text);
        na->crl_text = text;
        na->crl_seq = seq;
        /* The crl_id makes the tag unique even across a database reset. */
        const char *id = strstr(text, "\"crl_id\":\"");
        snprintf(na->crl_etag, sizeof na->crl_etag, "\"%llu-%.8s\"", (unsigned long long)seq,
                 id ? id + 10 : "00000000");
        /* For /metrics; canonical (sorted) JSON puts it before revoked_certificates. */
        const char *nu = strstr(text, "\"next_update\":\"");
        char when[GM_TIME_STRLEN] = "";
        gm_time t;
        if (nu)
            sscanf(nu + 15, "%39[^\"]", when);
        na->crl_next_update = when[0] && gm_time_parse(when, &t, NULL) == 0 ? t.unix_s : 0;
        text = NULL;
    }
    pthread_mutex_unlock(&na->crl_lock);
    free(text);
    if (changed)
        na_server_crl_published(na, seq);
}

char *na_crl_cache_get(gm_na_t *na, uint64_t *seq, char etag[80])
{
    pthread_mutex_lock(&na->crl_lock);
    char *t = na->crl_text ? strdup(na->crl_text) : NULL;
    *seq = na->crl_seq;
    memcpy(etag, na->crl_etag, 80);
    pthread_mutex_unlock(&na->crl_lock);
    return t;
}

int na_crl_bootstrap(gm_na_t *na, gm_error *err)
{
    uint64_t seq = 0;
    char *doc = NULL;
    int rc = gm_store_begin(na->store, err);
    if (rc != 0)
        return rc;
    rc = gm_store_crl_latest(na->store, &seq, &doc, err);
    int need = 0;
    if (rc == GM_ENOTFOUND) {
        need = 1, rc = 0;
    } else if (rc == 0) {
        /* Say what is wrong with the stored CRL: only a CRL from a previous NA key is "not
         * signed by this NA key"; one over the size cap is refused by nodes before any check. */
        gm_crl c;
        gm_error e2 = {0};
        size_t len = strlen(doc);
        memset(&c, 0, sizeof c);
        if (len > na->cfg.crl_max_bytes) {
            need = 1;
            na_log(na, "ALERT: stored CRL %llu is %zu bytes, over the %zu-byte cap every node enforces; issuing a "
                   "new one without the entries of expired certificates",
                   (unsigned long long)seq, len, na->cfg.crl_max_bytes);
        } else if (gm_crl_parse(doc, len, &c, &e2) != 0) {
            need = 1;
            na_log(na, "stored CRL %llu is unreadable (%s); issuing a new one", (unsigned long long)seq, e2.msg);
        } else if (gm_crl_verify(&c, na->key.pk, &e2) != 0) {
            need = 1;
            na_log(na, "stored CRL %llu is not signed by this NA key (%s); issuing a new one under it",
                   (unsigned long long)seq, e2.msg);
        }
        gm_crl_free(&c);
    }
    if (rc == 0 && need) {
        char *text = NULL;
        uint64_t next = 0;
        rc = na_crl_publish_in_tx(na, gm_time_now(), &text, &next, err);
        if (rc == 0) {
            free(doc);
            doc = text, seq = next;
        } else if (rc == GM_ETOOBIG && doc) {
            /* Still too large (alert logged): keep serving the stored one; revocations fail
             * with the same error until entries expire. */
            rc = 0;
        }
    }
    if (rc == 0)
        rc = gm_store_commit(na->store, err);
    else
        gm_store_rollback(na->store);
    if (rc == 0) {
        na_crl_cache_set(na, seq, doc);
        doc = NULL;
    }
    free(doc);
    return rc;
}

/* ---- nonces ---- */

int na_nonce_record(void *ctx, const char *scope, const char *nonce, int64_t now, gm_error *err)
{
    gm_na_t *na = ctx;
    /* A nonce must outlive every timestamp it could be replayed with: 2 windows plus slack. */
    int64_t last = atomic_load(&na->nonce_pruned_at);
    if (now - last > 60 && atomic_compare_exchange_strong(&na->nonce_pruned_at, &last, now))
        gm_store_nonce_prune(na->store, now - 2 * GM_REQSIG_WINDOW_S - 60, NULL);
    return gm_store_nonce_record(na->store, scope, nonce, now, err);
}

/* ---- lifecycle ---- */

static int load_genesis(gm_na_t *na, gm_error *err)
{
    char path[4096];
    int rc = gm_na_config_path(&na->cfg, na->cfg.genesis_path, path, sizeof path, err);
    if (rc == 0)
        rc = gm_file_read(path, GENESIS_FILE_MAX, &na->genesis_text, &na->genesis_len, err);
    if (rc == 0 && (rc = gm_genesis_parse(na->genesis_text, na->genesis_len, &na->genesis, err)) != 0)
        gm_error_prefix(err, "%s", path);
    if (rc == 0 && (rc = gm_genesis_verify(&na->genesis, err)) != 0)
        gm_error_prefix(err, "%s does not verify under its root key; refusing to start", path);
    if (rc == 0 && strcmp(na->genesis.network_name, na->cfg.network_name) != 0)
        rc = gm_error_set(err, GM_EFORMAT, "config.json names network '%s' but %s is for '%s'",
                          na->cfg.network_name, path, na->genesis.network_name);
    return rc;
}

/* check_only: say whether the key would start the NA, write nothing (no switch to the successor). */
static int load_key(gm_na_t *na, int check_only, gm_error *err)
{
    char base[4096];
    int rc = gm_na_config_path(&na->cfg, na->cfg.na_key_base, base, sizeof base, err);
    if (rc == 0)
        rc = gm_signer_load(&na->key, base, "na-local", err);
    if (rc != 0)
        return rc;
    if (check_only && na->have_next && sodium_memcmp(na->key.pk, na->genesis_next.na_pk, GM_PK_LEN) == 0) {
        if ((rc = gm_genesis_check_na_window(&na->genesis_next, gm_time_now(), err)) != 0)
            return gm_error_prefix(err, "this is the successor's NA key; keep the current key until then");
        return 0;
    }
    /* Started with the successor's NA key: the rotation takes effect now. */
    if (!check_only && sodium_memcmp(na->key.pk, na->genesis.na_pk, GM_PK_LEN) != 0 &&
        (rc = na_genesis_promote(na, na->key.pk, err)) != GM_ENOTFOUND)
        return rc;
    if (sodium_memcmp(na->key.pk, na->genesis.na_pk, GM_PK_LEN) != 0) {
        char want[GM_PK_B64_LEN + 1];
        gm_pk_encode(na->genesis.na_pk, want);
        return gm_error_set(err, GM_EDENIED,
                            "%s.key (public key %s) is not the NA key named in the genesis block (%s); "
                            "refusing to start",
                            base, na->key.pk_b64, want);
    }
    if ((rc = gm_genesis_check_na_window(&na->genesis, gm_time_now(), err)) != 0)
        return gm_error_prefix(err, "refusing to start");
    return 0;
}

/* A secret file of the directory (when present or required) must be 0600. */
static int check_secret(const gm_na_config *cfg, const char *name, int required, gm_error *err)
{
    char path[4096];
    int rc = gm_na_config_path(cfg, name, path, sizeof path, err);
    if (rc != 0 || (!required && !gm_file_exists(path)))
        return rc;
    return gm_file_check_private(path, 0, err);
}

int gm_na_config_check(const gm_na_config *cfg, char **summary, gm_error *err)
{
    *summary = NULL;
    int rc = gm_init(err);
    if (rc != 0)
        return rc;
    gm_na_t *na = calloc(1, sizeof *na);
    if (!na)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    na->cfg = *cfg;
    char key_file[4200], path[4096], tls[160] = "plain HTTP (plain_http)", until[GM_TIME_STRLEN] = "";
    snprintf(key_file, sizeof key_file, "%s.key", cfg->na_key_base);
    if ((rc = gm_file_check_private(cfg->dir, 1, err)) != 0 || (rc = check_secret(cfg, key_file, 1, err)) != 0 ||
        (rc = check_secret(cfg, "root.key", 0, err)) != 0 || (rc = check_secret(cfg, "operator.key", 0, err)) != 0)
        goto out;
    if ((rc = load_genesis(na, err)) != 0 || (rc = na_genesis_load_versions(na, err)) != 0 ||
        (rc = load_key(na, 1, err)) != 0)
        goto out;
    /* with the successor's key, the start switches to it: its window is the one that counts */
    gm_time_format(na->have_next && sodium_memcmp(na->key.pk, na->genesis_next.na_pk, GM_PK_LEN) == 0
                       ? &na->genesis_next.na_valid_to
                       : &na->genesis.na_valid_to,
                   until);
    if ((rc = na_listen_check(cfg->listen, err)) != 0)
        goto out;
    if (strncmp(cfg->na_url, "https://", 8) != 0 && strncmp(cfg->na_url, "http://", 7) != 0) {
        rc = gm_error_set(err, GM_EINVAL, "config.json \"na_url\" '%s' is not an http:// or https:// URL", cfg->na_url);
        goto out;
    }
    if (cfg->tls_cert[0] || cfg->tls_key[0]) {
        char key[4096];
        int64_t not_after = 0;
        if (!cfg->tls_cert[0] || !cfg->tls_key[0]) {
            rc = gm_error_set(err, GM_EINVAL, "config.json has only one of \"tls_cert\" and \"tls_key\"");
            goto out;
        }
        if ((rc = check_secret(cfg, cfg->tls_key, 1, err)) != 0 ||
            (rc = gm_na_config_path(cfg, cfg->tls_cert, path, sizeof path, err)) != 0 ||
            (rc = gm_na_config_path(cfg, cfg->tls_key, key, sizeof key, err)) != 0 ||
            (rc = gm_tls_cert_check(path, key, &not_after, err)) != 0)
            goto out;
        gm_time t = gm_time_from_unix(not_after);
        char when[GM_TIME_STRLEN];
        gm_time_format(&t, when);
        snprintf(tls, sizeof tls, "HTTPS, certificate valid until %s", when);
        if (strncmp(cfg->na_url, "http://", 7) == 0) {
            rc = gm_error_set(err, GM_EINVAL, "config.json \"na_url\" is %s but the NA serves HTTPS: use https://",
                              cfg->na_url);
            goto out;
        }
    } else if (!cfg->plain_http) {
        rc = gm_error_set(err, GM_EINVAL, "no TLS certificate: set \"tls_cert\" and \"tls_key\" in config.json, or "
                                          "\"plain_http\": true to serve plain HTTP on purpose");
        goto out;
    }
    gm_buf b = {0};
    gm_buf_printf(&b,
                  "network '%s': genesis verifies, NA key %s valid until %s, %zu operator key(s), listen %s, %s, "
                  "key files 0600, directory 0700",
                  cfg->network_name, na->key.pk_b64, until, cfg->n_operators, cfg->listen, tls);
    if (b.oom) {
        gm_buf_free(&b);
        rc = gm_error_set(err, GM_ENOMEM, "out of memory");
    } else {
        *summary = b.p;
    }
out:
    gm_genesis_free(&na->genesis);
    free(na->genesis_text);
    na_genesis_free_versions(na);
    gm_signer_wipe(&na->key);
    free(na);
    return rc;
}

int gm_na_new(gm_na_t **out, const gm_na_config *cfg, gm_na_log_fn log, void *log_ctx, gm_error *err)
{
    *out = NULL;
    int rc = gm_init(err);
    if (rc != 0)
        return rc;
    gm_na_t *na = calloc(1, sizeof *na);
    if (!na)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    na->cfg = *cfg;
    /* a config built by hand (not gm_na_config_load) gets the cap every node enforces */
    if (na->cfg.crl_max_bytes == 0 || na->cfg.crl_max_bytes > GM_CRL_MAX_BYTES)
        na->cfg.crl_max_bytes = GM_CRL_MAX_BYTES;
    na->log = log;
    na->log_ctx = log_ctx;
    pthread_mutex_init(&na->crl_lock, NULL);
    pthread_mutex_init(&na->policy_lock, NULL);
    pthread_mutex_init(&na->genesis_lock, NULL);
    pthread_mutex_init(&na->log_lock, NULL);
    if (na_metrics_init(&na->metrics) != 0) {
        free(na);
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    }
    if (na_ratelimit_init(&na->ratelimit, &na->cfg.rate_limit) != 0) {
        gm_na_free(na);
        return gm_error_set(err, GM_ENOMEM, "out of memory for the rate-limit table");
    }
    char db[4096];
    if ((rc = load_genesis(na, err)) == 0 && (rc = na_genesis_load_versions(na, err)) == 0 &&
        (rc = load_key(na, 0, err)) == 0 &&
        (rc = gm_na_config_path(&na->cfg, na->cfg.db_path, db, sizeof db, err)) == 0 &&
        (rc = gm_store_open(&na->store, db, err)) == 0 && (rc = gm_na_agents_install(na, err)) == 0)
        rc = na_crl_bootstrap(na, err);
    if (rc == 0)
        rc = na_policy_bootstrap(na, err);
    if (rc == 0)
        rc = na_netpolicy_bootstrap(na, err);
    if (rc == 0)
        rc = gm_na_console_token(na->cfg.dir, 1, na->console_token, err);
    if (rc != 0) {
        gm_na_free(na);
        return rc;
    }
    *out = na;
    return 0;
}

int gm_na_start(gm_na_t *na, const char *listen_override, gm_error *err)
{
    const char *listen = listen_override ? listen_override : na->cfg.listen;
    int rc = na_server_start(na, listen, err);
    if (rc == 0)
        rc = na_crl_resign_start(na, err);
    if (rc == 0)
        rc = na_follow_start(na, err);
    if (rc == 0)
        na_log(na, "NA for network '%s' listening on port %u (key %s, CRL sequence %llu)", na->cfg.network_name,
               (unsigned)na->port, na->key.pk_b64, (unsigned long long)na->crl_seq);
    return rc;
}

uint16_t gm_na_port(const gm_na_t *na)
{
    return na->port;
}

int gm_na_reload(gm_na_t *na, gm_error *err)
{
    gm_na_config *c = malloc(sizeof *c);
    if (!c)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    int rc = gm_na_config_load(c, na->cfg.dir, err);
    if (rc != 0) {
        free(c);
        return gm_error_prefix(err, "reload: config.json unchanged in effect");
    }
    const gm_na_rate_limit *o = &na->cfg.rate_limit, *l = &c->rate_limit;
    na_ratelimit_set(&na->ratelimit, l);
    na_log(na, "reloaded config.json: rate_limit per_ip_per_s %u burst %u, auth_failures_per_ip_per_s %u "
               "auth_failures_burst %u, reads_per_ip_per_s %u reads_burst %u",
           l->per_ip_per_s, l->burst, l->auth_failures_per_ip_per_s, l->auth_failures_burst, l->reads_per_ip_per_s,
           l->reads_burst);
    /* The rest is read by the serving threads without a lock, or sized at start. */
    const char *later[16];
    size_t n = 0;
#define CHANGED(cond, name)                                                                                          \
    do {                                                                                                             \
        if (cond)                                                                                                    \
            later[n++] = name;                                                                                       \
    } while (0)
    CHANGED(l->tracked_ips != o->tracked_ips, "rate_limit.tracked_ips");
    CHANGED(strcmp(c->listen, na->cfg.listen) != 0, "listen");
    CHANGED(strcmp(c->db_path, na->cfg.db_path) != 0, "db");
    CHANGED(strcmp(c->na_key_base, na->cfg.na_key_base) != 0 || strcmp(c->genesis_path, na->cfg.genesis_path) != 0,
            "na_key/genesis");
    CHANGED(c->max_body_bytes != na->cfg.max_body_bytes, "max_body_bytes");
    CHANGED(c->crl_resign_interval_s != na->cfg.crl_resign_interval_s ||
                c->crl_next_update_multiple != na->cfg.crl_next_update_multiple ||
                c->crl_next_update_hours != na->cfg.crl_next_update_hours,
            "crl_*");
    CHANGED(c->max_connections != na->cfg.max_connections || c->max_connections_per_ip != na->cfg.max_connections_per_ip ||
                c->connection_timeout_s != na->cfg.connection_timeout_s ||
                c->request_timeout_s != na->cfg.request_timeout_s || c->threads != na->cfg.threads,
            "connections/timeouts/threads");
    CHANGED(strcmp(c->tls_cert, na->cfg.tls_cert) != 0 || strcmp(c->tls_key, na->cfg.tls_key) != 0, "tls_cert/tls_key");
    CHANGED(c->n_operators != na->cfg.n_operators ||
                memcmp(c->operators, na->cfg.operators, c->n_operators * sizeof c->operators[0]) != 0,
            "operator_keys");
#undef CHANGED
    for (size_t i = 0; i < n; i++)
        na_log(na, "config.json: %s changed; it takes effect at the next start", later[i]);
    unsigned keep = na->cfg.rate_limit.tracked_ips;
    na->cfg.rate_limit = c->rate_limit;
    na->cfg.rate_limit.tracked_ips = keep;
    free(c);
    return 0;
}

gm_store_t *gm_na_store(gm_na_t *na)
{
    return na->store;
}

int gm_na_add_revoke_hook(gm_na_t *na, gm_na_revoke_hook fn, void *ctx, gm_error *err)
{
    if (na->daemon)
        return gm_error_set(err, GM_EINVAL, "revoke hooks must be added before the NA starts");
    if (na->n_hooks >= GM_NA_MAX_REVOKE_HOOKS)
        return gm_error_set(err, GM_EINVAL, "too many revoke hooks (max %d)", GM_NA_MAX_REVOKE_HOOKS);
    na->hooks[na->n_hooks].fn = fn;
    na->hooks[na->n_hooks].ctx = ctx;
    na->n_hooks++;
    return 0;
}

void gm_na_free(gm_na_t *na)
{
    if (!na)
        return;
    na_server_stop(na);
    na_crl_resign_stop(na);
    na_follow_stop(na);
    gm_store_close(na->store);
    gm_genesis_free(&na->genesis);
    free(na->genesis_text);
    na_genesis_free_versions(na);
    free(na->crl_text);
    free(na->policy_text);
    free(na->netpolicy_text);
    gm_signer_wipe(&na->key);
    sodium_memzero(na->console_token, sizeof na->console_token);
    na_metrics_free(&na->metrics);
    na_ratelimit_free(&na->ratelimit);
    pthread_mutex_destroy(&na->crl_lock);
    pthread_mutex_destroy(&na->policy_lock);
    pthread_mutex_destroy(&na->genesis_lock);
    pthread_mutex_destroy(&na->log_lock);
    free(na->log_cp_text);
    na_issuance_free(na);
    free(na);
}
