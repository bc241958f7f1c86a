/* Renewal supersedes and the CRL stays within what nodes accept (issue 7, item 1), against a
 * real NA served in-process on a loopback port with its real SQLite store:
 * - 2,000 renewal attempts (the old certificate replayed, and the newest one chained) leave
 *   at most 2 valid certificates for the key, and revoking the key adds at most 2 entries;
 * - a revocation whose CRL would pass the cap is refused by the NA before publication
 *   (nothing changes, an alert is logged, the metric counts it), while one that fits exactly
 *   is published (with the test-only "crl_max_bytes" lowering the cap to 64 KiB);
 * - on restart the NA says why it replaces a stored CRL (over the cap, not "not signed by this
 *   NA key"), and the replacement drops the entries of expired certificates;
 * - a supersession whose overlap ended while the NA was stopped is listed once it starts. */
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_testkit.h"
#include "gm/crl.h"
#include "gm/http_client.h"
#include "gm/na.h"
#include "gm/na_client.h"
#include "store.h"
#include "client_internal.h"
#include "core_internal.h"
#include "na_internal.h"
#include "store_testkit.h"

#define RENEW_ATTEMPTS 2000
#define TIMEOUT_MS 120000L
#define SMALL_CAP 65536
#define GRACE_S 2 /* supersede_grace_s of the overlap tests */

typedef struct fx {
    char dir[256];
    char url[128];
    tk_net net;
    gm_signer op;
    gm_na_t *na;
    pthread_mutex_t log_lock;
    char *log; /* every line the NA logged, '\n'-separated */
    size_t log_len;
} fx;

static void log_line(void *ctx, const char *line)
{
    fx *f = ctx;
    size_t n = strlen(line);
    pthread_mutex_lock(&f->log_lock);
    char *p = realloc(f->log, f->log_len + n + 2);
    if (p) {
        memcpy(p + f->log_len, line, n);
        p[f->log_len + n] = '\n';
        p[f->log_len + n + 1] = '\0';
        f->log = p;
        f->log_len += n + 1;
    }
    pthread_mutex_unlock(&f->log_lock);
}

static int logged(fx *f, const char *needle)
{
    pthread_mutex_lock(&f->log_lock);
    int found = f->log && strstr(f->log, needle) != NULL;
    pthread_mutex_unlock(&f->log_lock);
    return found;
}

static void na_start(fx *f)
{
    gm_error err = {0};
    gm_na_config c;
    if (gm_na_config_load(&c, f->dir, &err) != 0)
        fail_msg("config: %s", err.msg);
    /* SQLite in the directory, or PostgreSQL under the *_pg variant (tests/store_testkit.h) */
    if (tk_store_location(f->dir, "na.db", c.db_path, sizeof c.db_path) != 0)
        fail_msg("no store for the NA");
    if (gm_na_new(&f->na, &c, log_line, f, &err) != 0 || gm_na_start(f->na, "127.0.0.1:0", &err) != 0)
        fail_msg("NA: %s", err.msg);
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%u", (unsigned)gm_na_port(f->na));
}

static void na_restart(fx *f)
{
    gm_na_free(f->na);
    f->na = NULL;
    pthread_mutex_lock(&f->log_lock);
    free(f->log);
    f->log = NULL;
    f->log_len = 0;
    pthread_mutex_unlock(&f->log_lock);
    na_start(f);
}

static int setup_with_cap(void **state, int crl_max_bytes, int grace_s)
{
    fx *f = calloc(1, sizeof *f);
    gm_error err = {0};
    char path[512];
    pthread_mutex_init(&f->log_lock, NULL);
    snprintf(f->dir, sizeof f->dir, "%s/gm-test-renew.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(f->dir));
    tk_net_init(&f->net, "TESTNET");
    snprintf(path, sizeof path, "%s/na", f->dir);
    assert_int_equal(gm_signer_save(&f->net.na, path, 0, &err), 0);
    char *g = gm_genesis_dump(&f->net.g);
    snprintf(path, sizeof path, "%s/genesis.json", f->dir);
    assert_int_equal(gm_file_write_atomic(path, g, strlen(g), 0600, &err), 0);
    free(g);
    tk_signer(&f->op, 0x20, "operator-local");
    /* no per-address request limit: this test is about renewal itself, not the rate limiter */
    json_t *cfg = json_pack("{s:s,s:s,s:s,s:[{s:s,s:s}],s:{s:i}}", "network_name", "TESTNET", "na_url",
                            "http://127.0.0.1:1", "listen", "127.0.0.1:0", "operator_keys", "key_id",
                            "operator-local", "public_key", f->op.pk_b64, "rate_limit", "per_ip_per_s", 0);
    if (crl_max_bytes)
        json_object_set_new(cfg, "crl_max_bytes", json_integer(crl_max_bytes));
    if (grace_s)
        json_object_set_new(cfg, "supersede_grace_s", json_integer(grace_s));
    char *text = json_dumps(cfg, 0);
    snprintf(path, sizeof path, "%s/config.json", f->dir);
    assert_int_equal(gm_file_write_atomic(path, text, strlen(text), 0600, &err), 0);
    free(text);
    json_decref(cfg);
    na_start(f);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_with_cap(state, 0, 0);
}

static int setup_short_grace(void **state)
{
    return setup_with_cap(state, 0, GRACE_S);
}

static int setup_small_cap(void **state)
{
    return setup_with_cap(state, SMALL_CAP, 0);
}

static int teardown(void **state)
{
    fx *f = *state;
    char cmd[400];
    gm_na_free(f->na);
    gm_signer_wipe(&f->op);
    tk_net_free(&f->net);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f->log);
    pthread_mutex_destroy(&f->log_lock);
    free(f);
    return 0;
}

/* An operator call; returns the HTTP status, *resp (optional) the answer. */
static int admin(fx *f, const char *method, const char *path, json_t *body, json_t **resp)
{
    int status = 0;
    gm_error err = {0};
    json_t *r = NULL;
    if (gm_na_admin_call(f->url, &f->op, method, path, body, TIMEOUT_MS, &status, &r, &err) != 0) {
        /* a refusal is an answer the caller checks by its status; no answer at all fails below */
    }
    json_decref(body);
    if (status == 0)
        fail_msg("%s %s: %s", method, path, err.msg);
    if (resp)
        *resp = r;
    else
        json_decref(r);
    return status;
}

/* Invite and join node; cert_id receives the certificate's id. */
static void join(fx *f, const gm_signer *node, char cert_id[37])
{
    json_t *inv = NULL, *cert = NULL;
    gm_error err = {0};
    assert_int_equal(admin(f, "POST", "/admin/invite", json_pack("{s:[s]}", "roles", "role:test"), &inv), 201);
    const char *token = json_string_value(json_object_get(inv, "token"));
    assert_non_null(token);
    if (gm_na_join(f->url, node, token, 0, TIMEOUT_MS, &cert, &err) != 0)
        fail_msg("join: %s", err.msg);
    snprintf(cert_id, 37, "%s", json_string_value(json_object_get(cert, "cert_id")));
    json_decref(cert);
    json_decref(inv);
}

typedef struct valid_count {
    int64_t now;
    int valid;
} valid_count;

static int count_valid(const gm_store_cert *c, void *ctx)
{
    valid_count *v = ctx;
    /* a renewal's supersession is recorded ahead: nodes accept the certificate until revoked_at */
    gm_time at;
    int pending = c->revoked && !strcmp(c->reason, "superseded") && gm_time_parse(c->revoked_at, &at, NULL) == 0 &&
                  at.unix_s > v->now;
    v->valid += (!c->revoked || pending) && c->expires_at + GM_CLOCK_SKEW_S >= v->now;
    return 0;
}

/* Certificates of pk that a node would still accept (not revoked yet, not expired with skew). */
static int valid_certs(fx *f, const char *pk_b64)
{
    valid_count v = {.now = gm_time_now().unix_s};
    gm_error err = {0};
    assert_int_equal(gm_store_certs_foreach(gm_na_store(f->na), pk_b64, count_valid, &v, &err), 0);
    return v.valid;
}

/* The CRL the NA serves, verified under the NA key; *bytes (optional) its size as served. */
static void served_crl(fx *f, gm_crl *crl, size_t *bytes)
{
    gm_error err = {0};
    int not_modified = 0;
    if (gm_na_fetch_crl(f->url, f->net.na.pk, NULL, TIMEOUT_MS, crl, &not_modified, NULL, 0, &err) != 0)
        fail_msg("GET /crl: %s", err.msg);
    if (bytes) {
        char *t = gm_crl_dump(crl, 0);
        *bytes = strlen(t);
        free(t);
    }
}

/* One renewing client thread; results are checked by the main thread (cmocka asserts are
 * not for other threads). */
typedef struct renewer {
    fx *f;
    const gm_signer *node;
    const char *first;
    char *newest; /* shared, under lock */
    pthread_mutex_t *lock;
    int attempts;
    int ok, repeated, not_newest, too_often, other, max_valid;
    char other_msg[700];
} renewer;

static void *renew_loop(void *arg)
{
    renewer *w = arg;
    /* Even attempts replay the first certificate (the attack of issue 7), odd ones renew the
     * newest certificate, as fast as the NA answers. */
    for (int i = 0; i < w->attempts; i++) {
        char use[37];
        json_t *cert = NULL;
        gm_error err = {0};
        pthread_mutex_lock(w->lock);
        snprintf(use, sizeof use, "%s", i % 2 == 0 ? w->first : w->newest);
        pthread_mutex_unlock(w->lock);
        if (gm_na_renew(w->f->url, w->node, use, TIMEOUT_MS, &cert, &err) == 0) {
            /* a replay of a renewed certificate gets the newest one again (a lost answer) */
            const char *got = json_string_value(json_object_get(cert, "cert_id"));
            pthread_mutex_lock(w->lock);
            if (got && !strcmp(got, w->newest))
                w->repeated++;
            else
                w->ok++;
            snprintf(w->newest, 37, "%s", got ? got : "");
            pthread_mutex_unlock(w->lock);
            json_decref(cert);
        } else {
            const char *code = gm_na_last_error_code();
            if (!strcmp(code, "not_newest_certificate"))
                w->not_newest++;
            else if (!strcmp(code, "renewing_too_often"))
                w->too_often++;
            else if (w->other++ == 0)
                snprintf(w->other_msg, sizeof w->other_msg, "%s (%s)", code, err.msg);
        }
        if (i % 50 == 0 || i == w->attempts - 1) {
            valid_count v = {.now = gm_time_now().unix_s};
            if (gm_store_certs_foreach(gm_na_store(w->f->na), w->node->pk_b64, count_valid, &v, NULL) == 0 &&
                v.valid > w->max_valid)
                w->max_valid = v.valid;
        }
    }
    return NULL;
}

#define RENEWERS 4

static void test_renewal_loop_leaves_at_most_two_valid_certificates(void **state)
{
    fx *f = *state;
    gm_signer node;
    char first[37], newest[37];
    tk_signer(&node, 0x60, "node");
    join(f, &node, first);
    snprintf(newest, sizeof newest, "%s", first);
    /* 2,000 attempts from 4 concurrent clients, so renewals also race each other */
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    renewer w[RENEWERS];
    pthread_t th[RENEWERS];
    for (int t = 0; t < RENEWERS; t++) {
        w[t] = (renewer){.f = f, .node = &node, .first = first, .newest = newest, .lock = &lock,
                         .attempts = RENEW_ATTEMPTS / RENEWERS};
        assert_int_equal(pthread_create(&th[t], NULL, renew_loop, &w[t]), 0);
    }
    int ok = 0, repeated = 0, not_newest = 0, too_often = 0, max_valid = 0;
    for (int t = 0; t < RENEWERS; t++) {
        pthread_join(th[t], NULL);
        if (w[t].other)
            fail_msg("%d renewals refused for an unexpected reason, first: %s", w[t].other, w[t].other_msg);
        ok += w[t].ok, repeated += w[t].repeated, not_newest += w[t].not_newest, too_often += w[t].too_often;
        max_valid = w[t].max_valid > max_valid ? w[t].max_valid : max_valid;
    }
    print_message("renewals: %d issued, %d answered again, %d not newest, %d too often; at most %d valid\n", ok,
                  repeated, not_newest, too_often, max_valid);
    assert_int_equal(ok, 1);       /* the first renewal; then the renewed one overlaps */
    assert_int_equal(ok + repeated + not_newest + too_often, RENEW_ATTEMPTS);
    assert_true(repeated > 0);     /* replays of the first certificate get the renewed one */
    assert_true(too_often > 0);
    assert_true(max_valid <= 2);   /* the new one and the one it renewed */
    assert_int_equal(valid_certs(f, node.pk_b64), 2);

    /* The documented way to renew during the overlap: the operator retires the previous one. */
    assert_int_equal(admin(f, "POST", "/admin/revoke", json_pack("{s:s,s:s}", "cert_id", first, "reason", "superseded"),
                           NULL),
                     200);
    json_t *renewed = NULL;
    gm_error rerr = {0};
    if (gm_na_renew(f->url, &node, newest, TIMEOUT_MS, &renewed, &rerr) != 0)
        fail_msg("renewal after retiring the previous certificate: %s", rerr.msg);
    snprintf(newest, sizeof newest, "%s", json_string_value(json_object_get(renewed, "cert_id")));
    json_decref(renewed);
    assert_int_equal(valid_certs(f, node.pk_b64), 2);

    /* Revoking the key adds at most its 2 valid certificates to the CRL. */
    gm_crl before, after;
    served_crl(f, &before, NULL);
    assert_int_equal(admin(f, "POST", "/admin/revoke",
                           json_pack("{s:s,s:s}", "node_public_key", node.pk_b64, "reason", "key_compromise"), NULL),
                     200);
    served_crl(f, &after, NULL);
    assert_true(gm_crl_is_newer(after.sequence, 1, before.sequence));
    assert_true(after.n_revoked > before.n_revoked);
    assert_true(after.n_revoked - before.n_revoked <= 2);
    assert_int_equal(valid_certs(f, node.pk_b64), 0);
    /* the key_compromise block keeps refusing the key, also for renewal */
    json_t *cert = NULL;
    gm_error err = {0};
    assert_int_not_equal(gm_na_renew(f->url, &node, newest, TIMEOUT_MS, &cert, &err), 0);
    assert_string_equal(gm_na_last_error_code(), "key_compromised");
    gm_crl_free(&before);
    gm_crl_free(&after);
    gm_signer_wipe(&node);
}

/* Does the CRL the NA serves list cert_id? *reason (optional, 32 bytes) gets the reason. */
static int crl_lists(fx *f, const char *cert_id, char *reason)
{
    gm_crl c;
    const char *why = NULL;
    served_crl(f, &c, NULL);
    int listed = gm_crl_contains(&c, cert_id, &why);
    if (listed && reason)
        snprintf(reason, 32, "%s", why ? why : "");
    gm_crl_free(&c);
    return listed;
}

/* Wait (bounded) until the served CRL lists cert_id. */
static void wait_listed(fx *f, const char *cert_id, char reason[32])
{
    for (int i = 0; i < 200 && !crl_lists(f, cert_id, reason); i++)
        usleep(100 * 1000);
    if (!crl_lists(f, cert_id, reason))
        fail_msg("the CRL still does not list %s 20 s after a %d s overlap", cert_id, GRACE_S);
}

static void renew_ok(fx *f, const gm_signer *node, char cert_id[37])
{
    json_t *cert = NULL;
    gm_error err = {0};
    if (gm_na_renew(f->url, node, cert_id, TIMEOUT_MS, &cert, &err) != 0)
        fail_msg("renewal of %s: %s (%s)", cert_id, err.msg, gm_na_last_error_code());
    snprintf(cert_id, 37, "%s", json_string_value(json_object_get(cert, "cert_id")));
    json_decref(cert);
}

/* node joins (its certificate's id into c1) and renews it once (the new one's into c2). */
static void join_and_renew(fx *f, const gm_signer *node, char c1[37], char c2[37])
{
    join(f, node, c1);
    snprintf(c2, 37, "%s", c1);
    renew_ok(f, node, c2);
}

/* Issue 7 item 1: the certificate renewed is retired in the renewal's transaction and listed
 * as superseded once the short overlap ends; renewals cannot grow the CRL past 2 entries a key. */
static void test_renewal_supersedes_after_the_overlap(void **state)
{
    fx *f = *state;
    gm_signer node;
    char c1[37], c2[37], c3[37], reason[32];
    tk_signer(&node, 0x61, "node");
    join_and_renew(f, &node, c1, c2);
    /* the overlap: both are accepted, the CRL does not list c1, c1 gets c2 again (no third) */
    assert_false(crl_lists(f, c1, NULL));
    assert_int_equal(valid_certs(f, node.pk_b64), 2);
    json_t *cert = NULL;
    gm_error err = {0};
    assert_int_equal(gm_na_renew(f->url, &node, c1, TIMEOUT_MS, &cert, &err), 0);
    assert_string_equal(json_string_value(json_object_get(cert, "cert_id")), c2);
    json_decref(cert);
    cert = NULL;
    assert_int_equal(valid_certs(f, node.pk_b64), 2);
    assert_int_not_equal(gm_na_renew(f->url, &node, c2, TIMEOUT_MS, &cert, &err), 0);
    assert_string_equal(gm_na_last_error_code(), "renewing_too_often");
    /* the overlap ends: the NA publishes a CRL listing c1 as superseded by itself */
    wait_listed(f, c1, reason);
    assert_string_equal(reason, "superseded");
    assert_int_equal(valid_certs(f, node.pk_b64), 1);
    assert_true(logged(f, "CRL re-signed"));
    /* a second renewal is fine; a third within the certificates' lifetime would put a third
     * superseded entry of this key in the CRL */
    snprintf(c3, sizeof c3, "%s", c2);
    renew_ok(f, &node, c3);
    wait_listed(f, c2, reason);
    assert_int_not_equal(gm_na_renew(f->url, &node, c3, TIMEOUT_MS, &cert, &err), 0);
    assert_string_equal(gm_na_last_error_code(), "renewing_too_often");
    assert_non_null(strstr(err.msg, "renewed twice"));
    gm_signer_wipe(&node);
}

typedef struct supersessions {
    int superseded;
    int total;
} supersessions;

static int count_superseded(const gm_store_cert *c, void *ctx)
{
    supersessions *s = ctx;
    s->superseded += c->revoked && !strcmp(c->reason, "superseded");
    s->total++;
    return 0;
}

static supersessions key_supersessions(fx *f, const char *pk_b64)
{
    supersessions s = {0};
    gm_error err = {0};
    assert_int_equal(gm_store_certs_foreach(gm_na_store(f->na), pk_b64, count_superseded, &s, &err), 0);
    return s;
}

static uint64_t log_size(fx *f)
{
    uint64_t n = 0;
    gm_error err = {0};
    assert_int_equal(gm_store_log_size(gm_na_store(f->na), &n, &err), 0);
    return n;
}

/* Issue 17: the NA renewed but the node never got the answer; its retry with the old
 * certificate gets the same new certificate (byte for byte), nothing new is issued, logged or
 * superseded, in the overlap and after it (the old one is then revoked: without this the node
 * would die). A retry signed by another key, or after the successor was revoked, is refused. */
static void test_renewal_retried_after_a_lost_answer_gets_the_same_certificate(void **state)
{
    fx *f = *state;
    gm_signer node, other;
    char c1[37], oc[37], reason[32];
    json_t *first = NULL, *again = NULL, *cert = NULL;
    gm_error err = {0};
    tk_signer(&node, 0x64, "node");
    tk_signer(&other, 0x65, "node");
    join(f, &node, c1);
    join(f, &other, oc);
    if (gm_na_renew(f->url, &node, c1, TIMEOUT_MS, &first, &err) != 0) /* the answer "lost" */
        fail_msg("renewal: %s", err.msg);
    const char *c2 = json_string_value(json_object_get(first, "cert_id"));
    assert_non_null(c2);
    uint64_t logged_before = log_size(f);
    supersessions before = key_supersessions(f, node.pk_b64);
    assert_int_equal(before.superseded, 1);
    /* in the overlap */
    if (gm_na_renew(f->url, &node, c1, TIMEOUT_MS, &again, &err) != 0)
        fail_msg("renewal retried with the old certificate: %s (%s)", err.msg, gm_na_last_error_code());
    assert_true(json_equal(first, again));
    json_decref(again);
    again = NULL;
    /* another key cannot fetch it with c1 (c1 reads as unknown to it) */
    assert_int_not_equal(gm_na_renew(f->url, &other, c1, TIMEOUT_MS, &cert, &err), 0);
    assert_string_equal(gm_na_last_error_code(), "unknown_certificate");
    /* after the overlap: c1 is revoked as superseded, the retry still gets c2 */
    wait_listed(f, c1, reason);
    assert_string_equal(reason, "superseded");
    if (gm_na_renew(f->url, &node, c1, TIMEOUT_MS, &again, &err) != 0)
        fail_msg("renewal retried after the overlap: %s (%s)", err.msg, gm_na_last_error_code());
    assert_true(json_equal(first, again));
    json_decref(again);
    assert_int_equal(log_size(f), logged_before);
    supersessions after = key_supersessions(f, node.pk_b64);
    assert_int_equal(after.superseded, before.superseded);
    assert_int_equal(after.total, before.total);
    assert_int_equal(valid_certs(f, node.pk_b64), 1);
    /* the successor revoked by the operator: nothing to hand back, the usual refusal */
    assert_int_equal(admin(f, "POST", "/admin/revoke", json_pack("{s:s,s:s}", "cert_id", c2, "reason", "unspecified"),
                           NULL),
                     200);
    assert_int_not_equal(gm_na_renew(f->url, &node, c1, TIMEOUT_MS, &cert, &err), 0);
    assert_string_equal(gm_na_last_error_code(), "certificate_revoked");
    json_decref(first);
    gm_signer_wipe(&node);
    gm_signer_wipe(&other);
}

/* Revoking a key during an overlap lists the superseded certificate at once, with the new reason. */
static void test_revocation_during_the_overlap_is_effective_at_once(void **state)
{
    fx *f = *state;
    gm_signer node;
    char c1[37], c2[37], reason[32];
    tk_signer(&node, 0x62, "node");
    join_and_renew(f, &node, c1, c2);
    assert_false(crl_lists(f, c1, NULL));
    assert_int_equal(admin(f, "POST", "/admin/revoke",
                           json_pack("{s:s,s:s}", "node_public_key", node.pk_b64, "reason", "key_compromise"), NULL),
                     200);
    assert_true(crl_lists(f, c1, reason));
    assert_string_equal(reason, "key_compromise");
    assert_true(crl_lists(f, c2, reason));
    assert_int_equal(valid_certs(f, node.pk_b64), 0);
    /* and a restarted NA keeps it so (no pending supersession left to publish later) */
    na_restart(f);
    assert_true(crl_lists(f, c1, reason));
    assert_string_equal(reason, "key_compromise");
    gm_signer_wipe(&node);
}

/* A CRL published during the overlap (another revocation) leaves the superseded certificate
 * out: nodes accept it until the overlap ends (default 600 s here). */
static void test_crl_published_during_the_overlap_leaves_it_out(void **state)
{
    fx *f = *state;
    gm_signer node, other;
    char c1[37], c2[37], o1[37], reason[32];
    tk_signer(&node, 0x64, "node");
    tk_signer(&other, 0x65, "other");
    join(f, &other, o1);
    join_and_renew(f, &node, c1, c2);
    gm_crl before, after;
    served_crl(f, &before, NULL);
    assert_int_equal(admin(f, "POST", "/admin/revoke", json_pack("{s:s,s:s}", "cert_id", o1, "reason", "unspecified"),
                           NULL),
                     200);
    served_crl(f, &after, NULL);
    assert_true(gm_crl_is_newer(after.sequence, 1, before.sequence));
    assert_true(crl_lists(f, o1, reason));
    assert_false(crl_lists(f, c1, NULL));
    assert_int_equal(valid_certs(f, node.pk_b64), 2);
    gm_crl_free(&before);
    gm_crl_free(&after);
    gm_signer_wipe(&node);
    gm_signer_wipe(&other);
}

/* A restarted NA still publishes a supersession recorded before the restart. */
static void test_pending_supersession_survives_a_restart(void **state)
{
    fx *f = *state;
    gm_signer node;
    char c1[37], c2[37], reason[32];
    tk_signer(&node, 0x63, "node");
    join(f, &node, c1);
    snprintf(c2, sizeof c2, "%s", c1);
    int64_t renewed = gm_time_now().unix_s; /* at or before the NA's own reading */
    renew_ok(f, &node, c2);
    na_restart(f);
    /* not listed during the overlap; a loaded machine may take the whole overlap to restart
     * (PostgreSQL, sanitizers), and then there is nothing left to check here */
    int listed = crl_lists(f, c1, NULL);
    if (gm_time_now().unix_s < renewed + GRACE_S)
        assert_false(listed);
    wait_listed(f, c1, reason);
    assert_string_equal(reason, "superseded");
    gm_signer_wipe(&node);
}

/* A supersession whose overlap ended while the NA was stopped is listed once it starts again
 * (the CRL it served before, published during the overlap, left it out; it used to stay so
 * until the next scheduled re-signing). */
static void test_supersession_due_while_stopped_is_listed_at_start(void **state)
{
    fx *f = *state;
    gm_signer node;
    char c1[37], c2[37], reason[32];
    tk_signer(&node, 0x66, "node");
    join_and_renew(f, &node, c1, c2);
    int64_t renewed = gm_time_now().unix_s;
    gm_na_free(f->na);
    f->na = NULL;
    while (gm_time_now().unix_s <= renewed + GRACE_S + 1) /* the overlap ends while it is stopped */
        usleep(100 * 1000);
    na_start(f);
    wait_listed(f, c1, reason);
    assert_string_equal(reason, "superseded");
    gm_signer_wipe(&node);
}

/* Size of the CRL the NA would issue now with sequence seq from the store's revocations
 * plus extra (borrowed): the same function the NA uses, signed with the same key. */
static size_t crl_size(fx *f, uint64_t seq, const json_t *extra)
{
    gm_error err = {0};
    json_t *entries = NULL;
    gm_time now = gm_time_now();
    assert_int_equal(gm_store_revocations_json(gm_na_store(f->na), now.unix_s, &entries, &err), 0);
    for (size_t i = 0; i < json_array_size(extra); i++)
        json_array_append(entries, json_array_get(extra, i));
    gm_crl c;
    assert_int_equal(gm_crl_issue(&c, &f->net.na, seq, entries, now, GM_NA_DEFAULT_CRL_NEXT_UPDATE_HOURS * 3600, &err),
                     0);
    json_decref(entries);
    char *t = gm_crl_dump(&c, 0);
    size_t n = strlen(t);
    free(t);
    gm_crl_free(&c);
    return n;
}

static json_t *entry(const char *issuer)
{
    char id[37], when[GM_TIME_STRLEN];
    gm_time now = gm_time_now();
    gm_uuid4(id);
    gm_time_format(&now, when);
    return json_pack("{s:s,s:s,s:s,s:s}", "certificate_id", id, "revoked_at", when, "reason", "unspecified", "issuer",
                     issuer);
}

/* Record n revocations (issuer text of issuer_len bytes) of certificates that expire at
 * expires_at, straight into the store: what years of revocations would leave behind. */
static void fill(fx *f, size_t n, size_t issuer_len, int64_t expires_at)
{
    gm_store_t *s = gm_na_store(f->na);
    gm_error err = {0};
    char *issuer = malloc(issuer_len + 1);
    memset(issuer, 'i', issuer_len);
    issuer[issuer_len] = '\0';
    gm_time now = gm_time_now();
    char when[GM_TIME_STRLEN];
    gm_time_format(&now, when);
    assert_int_equal(gm_store_begin(s, &err), 0);
    for (size_t i = 0; i < n; i++) {
        gm_store_cert c;
        memset(&c, 0, sizeof c);
        gm_uuid4(c.cert_id);
        snprintf(c.node_pk, sizeof c.node_pk, "filler");
        c.roles_json = "[]";
        c.issued_at = now.unix_s - 100000;
        c.expires_at = expires_at;
        c.max_validity_hours = 1;
        c.doc = "{}";
        assert_int_equal(gm_store_cert_add(s, &c, &err), 0);
        assert_int_equal(gm_store_revocation_add(s, c.cert_id, when, "unspecified", issuer, &err), 0);
    }
    assert_int_equal(gm_store_commit(s, &err), 0);
    free(issuer);
}

static uint64_t metric(fx *f, const char *name)
{
    char url[256];
    snprintf(url, sizeof url, "%s/metrics", f->url);
    gm_http_req req = {.method = "GET", .url = url};
    gm_http_resp resp = {0};
    gm_error err = {0};
    if (gm_http_request(&req, &resp, &err) != 0 || resp.status != 200)
        fail_msg("GET /metrics: %s", err.msg);
    char *text = strndup(resp.body, resp.len), *line = text;
    unsigned long long v = 0;
    size_t n = strlen(name);
    while (line && *line) {
        if (!strncmp(line, name, n) && line[n] == ' ')
            v = strtoull(line + n + 1, NULL, 10);
        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;
    }
    free(text);
    gm_http_resp_free(&resp);
    return v;
}

static void test_crl_over_the_cap_is_refused_by_the_na_before_publication(void **state)
{
    fx *f = *state;
    gm_signer a, b;
    char cert_a[37], cert_b[37];
    gm_error err = {0};
    tk_signer(&a, 0x60, "a");
    tk_signer(&b, 0x70, "b");
    join(f, &a, cert_a);
    join(f, &b, cert_b);
    uint64_t seq = 0;
    assert_int_equal(gm_store_crl_latest(gm_na_store(f->na), &seq, NULL, &err), 0);

    /* Fill the store with revocations of unexpired certificates until the next CRL, with one
     * more NA entry, is within a few bytes of the cap; two more entries pass it. */
    const size_t cap = SMALL_CAP;
    json_t *one = json_pack("[o]", entry(f->net.na.key_id));
    size_t base = crl_size(f, seq + 1, NULL), per_na = crl_size(f, seq + 1, one) - base;
    json_decref(one);
    const size_t big = 1000;
    int64_t later = gm_time_now().unix_s + 86400;
    fill(f, 1, big, later);
    size_t per_big = crl_size(f, seq + 1, NULL) - base;
    size_t target = cap - per_na - per_na / 2; /* room for one entry, not two */
    size_t now_size = crl_size(f, seq + 1, NULL);
    fill(f, (target - now_size) / per_big - 1, big, later);
    now_size = crl_size(f, seq + 1, NULL);
    /* a last entry whose issuer text takes up exactly the rest */
    size_t per_pad0 = per_big - big;
    fill(f, 1, target - now_size - per_pad0, later);
    size_t filled = crl_size(f, seq + 1, NULL);
    print_message("CRL base %zu, entry %zu, filled to %zu of %zu\n", base, per_na, filled, cap);
    assert_true(filled + per_na <= cap);
    assert_true(filled + 2 * per_na > cap);

    /* One more entry fits: published, and the nodes' parser takes it. */
    assert_int_equal(admin(f, "POST", "/admin/revoke", json_pack("{s:s,s:s}", "cert_id", cert_a, "reason", "unspecified"),
                           NULL),
                     200);
    gm_crl crl;
    size_t bytes = 0;
    served_crl(f, &crl, &bytes);
    assert_true(bytes <= cap);
    assert_true(bytes > cap - 2 * per_na);
    assert_int_equal(crl.sequence, seq + 1);
    gm_crl_free(&crl);

    /* The next one would pass the cap: refused at the NA, nothing recorded, nothing published. */
    uint64_t refused_before = metric(f, "gm_na_crl_refused_total");
    json_t *resp = NULL;
    int status = 0;
    json_t *body = json_pack("{s:s,s:s}", "cert_id", cert_b, "reason", "unspecified");
    assert_int_not_equal(gm_na_admin_call(f->url, &f->op, "POST", "/admin/revoke", body, TIMEOUT_MS, &status,
                                          &resp, &err), 0);
    json_decref(body);
    assert_int_equal(status, 507);
    assert_string_equal(gm_na_last_error_code(), "crl_too_large");
    assert_non_null(strstr(err.msg, "over the 65536-byte cap"));
    json_decref(resp);
    served_crl(f, &crl, NULL);
    assert_int_equal(crl.sequence, seq + 1);
    assert_false(gm_crl_contains(&crl, cert_b, NULL));
    gm_crl_free(&crl);
    gm_store_cert c;
    assert_int_equal(gm_store_cert_get(gm_na_store(f->na), cert_b, &c, &err), 0);
    assert_int_equal(c.revoked, 0);
    gm_store_cert_clear(&c);
    assert_int_equal(metric(f, "gm_na_crl_refused_total"), refused_before + 1);
    assert_true(logged(f, "ALERT: CRL"));

    /* A restart finds its own valid CRL and says nothing about foreign keys. */
    na_restart(f);
    served_crl(f, &crl, NULL);
    assert_int_equal(crl.sequence, seq + 1);
    gm_crl_free(&crl);
    assert_false(logged(f, "not signed by this NA key"));
    gm_signer_wipe(&a);
    gm_signer_wipe(&b);
}

static void test_restart_with_a_stored_crl_over_the_cap_reissues_without_expired_entries(void **state)
{
    fx *f = *state;
    gm_error err = {0};
    gm_store_t *s = gm_na_store(f->na);
    uint64_t seq = 0;
    assert_int_equal(gm_store_crl_latest(s, &seq, NULL, &err), 0);
    /* What an NA without the cap could have stored: a CRL signed by this very NA key, larger
     * than nodes accept, full of certificates that have expired since. */
    fill(f, 2200, 4000, gm_time_now().unix_s - 2 * GM_CLOCK_SKEW_S);
    json_t *all = NULL;
    assert_int_equal(gm_store_revocations_json(s, INT64_MIN, &all, &err), 0);
    gm_crl big;
    assert_int_equal(gm_crl_issue(&big, &f->net.na, seq + 1, all, gm_time_now(), 3600, &err), 0);
    json_decref(all);
    char *text = gm_crl_dump(&big, 0);
    assert_true(strlen(text) > GM_CRL_MAX_BYTES);
    assert_int_equal(gm_store_crl_add(s, seq + 1, text, gm_time_now().unix_s, &err), 0);
    free(text);
    gm_crl_free(&big);

    na_restart(f);
    assert_false(logged(f, "not signed by this NA key"));
    assert_true(logged(f, "over the 8388608-byte cap"));
    gm_crl crl;
    size_t bytes = 0;
    served_crl(f, &crl, &bytes);
    assert_int_equal(crl.sequence, seq + 2);
    assert_int_equal(crl.n_revoked, 0);
    assert_true(bytes < 4096);
    gm_crl_free(&crl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_renewal_loop_leaves_at_most_two_valid_certificates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_renewal_supersedes_after_the_overlap, setup_short_grace, teardown),
        cmocka_unit_test_setup_teardown(test_renewal_retried_after_a_lost_answer_gets_the_same_certificate,
                                        setup_short_grace, teardown),
        cmocka_unit_test_setup_teardown(test_revocation_during_the_overlap_is_effective_at_once, setup_short_grace,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pending_supersession_survives_a_restart, setup_short_grace, teardown),
        cmocka_unit_test_setup_teardown(test_supersession_due_while_stopped_is_listed_at_start, setup_short_grace,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_crl_published_during_the_overlap_leaves_it_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crl_over_the_cap_is_refused_by_the_na_before_publication,
                                        setup_small_cap, teardown),
        cmocka_unit_test_setup_teardown(test_restart_with_a_stored_crl_over_the_cap_reissues_without_expired_entries,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
