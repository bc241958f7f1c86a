/* Tests for lib/na/store.h (run against SQLite, and against PostgreSQL by the test_store_pg
 * variant, tests/with_pg.sh): migrations (and the upgrade of a schema 3 database), heartbeats, exactly-once invite consumption under concurrent
 * threads (separate connections and one shared handle), CRL sequence only going up,
 * durability across reopen, rollback, nonces and key blocks; group commit (a refused request
 * inside a shared batch, a batch whose COMMIT fails); the write-ahead log's checkpoints (off
 * the commit path, the log bounded under writes that never pause, SIGKILL while they run, a
 * checkpointer that cannot start). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <dirent.h>
#include <sqlite3.h>

#include "gm/genesis.h"
#include "gm/log.h"
#include "store.h"
#include "gm/util.h"
#include "core_internal.h"
#include "store_testkit.h"

static char tmpdir[256];

/* A SQLite file in tmpdir, or a schema of its own on the PostgreSQL server of GM_TEST_STORE. */
static void db_path(char *out, size_t cap, const char *name)
{
    assert_int_equal(tk_store_location(tmpdir, name, out, cap), 0);
}

static gm_store_t *open_db(const char *name)
{
    char path[512];
    gm_store_t *s = NULL;
    gm_error err = {0};
    db_path(path, sizeof path, name);
    int rc = gm_store_open(&s, path, &err);
    if (rc != 0)
        fprintf(stderr, "open: %s\n", err.msg);
    assert_int_equal(rc, 0);
    return s;
}

/* A connection of the test's own to the SQLite file behind a store (the NA never gets one). */
static sqlite3 *raw_db(const char *name)
{
    char path[512];
    sqlite3 *db = NULL;
    db_path(path, sizeof path, name);
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, GM_STORE_BUSY_TIMEOUT_MS);
    return db;
}

/* A new SQLite file at path, before the store ever opened it (to set what only a new file takes). */
static sqlite3 *raw_db_create(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL), SQLITE_OK);
    return db;
}

static void raw_exec(const char *name, const char *sql)
{
    if (tk_store_pg()) {
        char path[512], msg[512];
        db_path(path, sizeof path, name);
        if (tk_store_exec(path, sql, msg, sizeof msg) != 0)
            fail_msg("%s: %s", sql, msg);
        return;
    }
    sqlite3 *db = raw_db(name);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static gm_store_cert make_cert(const char *id, const char *pk)
{
    gm_store_cert c;
    memset(&c, 0, sizeof c);
    snprintf(c.cert_id, sizeof c.cert_id, "%s", id);
    snprintf(c.node_pk, sizeof c.node_pk, "%s", pk);
    c.roles_json = "[\"role:test\"]";
    c.issued_at = 1000;
    c.expires_at = 2000;
    c.max_validity_hours = 168;
    c.doc = "{\"cert\":1}";
    return c;
}

static void test_migrations_reach_current_version_once(void **state)
{
    gm_store_t *s = open_db("mig.db");
    int v = 0;
    assert_int_equal(gm_store_schema_version(s, &v, NULL), 0);
    assert_int_equal(v, GM_STORE_SCHEMA_VERSION);
    gm_store_close(s);
    /* reopening applies nothing twice (the version rows are a primary key) */
    s = open_db("mig.db");
    assert_int_equal(gm_store_schema_version(s, &v, NULL), 0);
    assert_int_equal(v, GM_STORE_SCHEMA_VERSION);
    if (tk_store_pg()) {
        /* one row per step; the writer's lock row and the CRL sequence are there */
        raw_exec("mig.db", "DO $$ BEGIN IF (SELECT COUNT(*) FROM schema_version) <> 5"
                           " OR (SELECT crl_sequence FROM na_state WHERE id = 1) <> -1"
                           " THEN RAISE EXCEPTION 'bad schema'; END IF; END $$");
        gm_store_close(s);
        return;
    }
    sqlite3_stmt *st;
    sqlite3 *db = raw_db("mig.db");
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM schema_version", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), GM_STORE_SCHEMA_VERSION);
    sqlite3_finalize(st);
    /* WAL journal */
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
    gm_store_close(s);
}

static void test_newer_schema_is_refused(void **state)
{
    gm_store_t *s = open_db("newer.db");
    raw_exec("newer.db", "INSERT INTO schema_version VALUES (999, 0)");
    gm_store_close(s);
    char path[512];
    gm_error err = {0};
    db_path(path, sizeof path, "newer.db");
    assert_int_equal(gm_store_open(&s, path, &err), GM_EDB);
    assert_null(s);
    assert_non_null(strstr(err.msg, "newer"));
}

static int find_cert(const gm_store_cert *c, void *ctx)
{
    gm_store_cert *out = ctx;
    if (strcmp(c->cert_id, out->cert_id) != 0)
        return 0;
    out->last_heartbeat = c->last_heartbeat;
    snprintf(out->heartbeat_status, sizeof out->heartbeat_status, "%s", c->heartbeat_status);
    return 1;
}

/* The certificate's last heartbeat as the listing admin nodes uses reports it. */
static gm_store_cert listed(gm_store_t *s, const char *cert_id)
{
    gm_store_cert c;
    memset(&c, 0, sizeof c);
    snprintf(c.cert_id, sizeof c.cert_id, "%s", cert_id);
    c.last_heartbeat = -1;
    assert_int_equal(gm_store_certs_foreach(s, NULL, find_cert, &c, NULL), 1);
    return c;
}

static void test_heartbeat_is_recorded_and_listed(void **state)
{
    (void)state;
    gm_store_t *s = open_db("hb.db");
    gm_store_cert c = make_cert("00000000-0000-4000-8000-0000000000b1", "pkHB"), got;
    gm_error err = {0};
    assert_int_equal(gm_store_cert_add(s, &c, &err), 0);
    got = listed(s, c.cert_id);
    assert_int_equal(got.last_heartbeat, 0);
    assert_string_equal(got.heartbeat_status, "");
    assert_int_equal(gm_store_cert_heartbeat(s, c.cert_id, 1500, "healthy", &err), 0);
    assert_int_equal(gm_store_cert_heartbeat(s, c.cert_id, 1600, "degraded", &err), 0);
    got = listed(s, c.cert_id);
    assert_int_equal(got.last_heartbeat, 1600);
    assert_string_equal(got.heartbeat_status, "degraded");
    assert_int_equal(gm_store_cert_get(s, c.cert_id, &got, &err), 0);
    assert_int_equal(got.last_heartbeat, 1600);
    gm_store_cert_clear(&got);
    assert_int_equal(gm_store_cert_heartbeat(s, "00000000-0000-4000-8000-00000000dead", 1700, "up", &err), GM_ENOTFOUND);
    gm_store_close(s);
}

/* A database made before heartbeats (schema 3) is upgraded in place: its certificates stay and
 * read as never seen, and heartbeats can be recorded. */
static void test_schema_3_database_gains_heartbeats(void **state)
{
    (void)state;
    gm_store_t *s = open_db("v3.db");
    gm_store_cert c = make_cert("00000000-0000-4000-8000-0000000000b3", "pkV3"), got;
    gm_error err = {0};
    assert_int_equal(gm_store_cert_add(s, &c, &err), 0);
    gm_store_close(s);
    raw_exec("v3.db", "ALTER TABLE certificates DROP COLUMN last_heartbeat;"
                      "ALTER TABLE certificates DROP COLUMN heartbeat_status;"
                      "DROP TABLE issuance_log;"
                      "DELETE FROM schema_version WHERE version >= 4;");
    s = open_db("v3.db");
    int v = 0;
    assert_int_equal(gm_store_schema_version(s, &v, NULL), 0);
    assert_int_equal(v, GM_STORE_SCHEMA_VERSION); /* steps 4 (heartbeats) and 5 (issuance log) ran */
    uint64_t log_size = 99;
    assert_int_equal(gm_store_log_size(s, &log_size, NULL), 0);
    assert_int_equal(log_size, 0);
    got = listed(s, c.cert_id);
    assert_int_equal(got.last_heartbeat, 0);
    assert_int_equal(gm_store_cert_heartbeat(s, c.cert_id, 1500, "healthy", &err), 0);
    assert_int_equal(listed(s, c.cert_id).last_heartbeat, 1500);
    gm_store_close(s);
}

static void test_invite_consumed_once_then_conflict_or_expired(void **state)
{
    gm_store_t *s = open_db("invite.db");
    gm_error err = {0};
    gm_store_invite inv;
    assert_int_equal(gm_store_invite_add(s, "h1", "[\"role:a\"]", 100, 200, 24, &err), 0);
    assert_int_equal(gm_store_invite_add(s, "h1", "[\"role:a\"]", 100, 200, 24, &err), GM_ECONFLICT);
    int64_t n = -1;
    assert_int_equal(gm_store_invites_outstanding(s, 150, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(gm_store_invite_consume(s, "nope", "pk", 150, NULL, &err), GM_ENOTFOUND);
    assert_int_equal(gm_store_invite_consume(s, "h1", "pk", 200, NULL, &err), GM_EEXPIRED);
    assert_int_equal(gm_store_invite_consume(s, "h1", "pk", 150, &inv, &err), 0);
    assert_string_equal(inv.roles_json, "[\"role:a\"]");
    assert_int_equal(inv.max_validity_hours, 24);
    assert_int_equal(inv.used, 1);
    assert_string_equal(inv.used_by, "pk");
    gm_store_invite_clear(&inv);
    assert_int_equal(gm_store_invite_consume(s, "h1", "pk2", 150, NULL, &err), GM_ECONFLICT);
    assert_int_equal(gm_store_invites_outstanding(s, 150, &n, &err), 0);
    assert_int_equal(n, 0);
    gm_store_close(s);
}

typedef struct walked {
    char what[8][80];
    int n, stop_after;
} walked;

static int see_invite(const gm_store_invite *inv, void *ctx)
{
    walked *v = ctx;
    snprintf(v->what[v->n++], sizeof v->what[0], "%s %s %lld", inv->token_hash, inv->roles_json,
             (long long)inv->expires_at);
    return v->n == v->stop_after ? 7 : 0;
}

static void test_invites_foreach_lists_only_outstanding_oldest_first(void **state)
{
    gm_store_t *s = open_db("invites_list.db");
    gm_error err = {0};
    assert_int_equal(gm_store_invite_add(s, "h-late", "[\"role:b\"]", 110, 300, 24, &err), 0);
    assert_int_equal(gm_store_invite_add(s, "h-early", "[\"role:a\"]", 100, 300, 24, &err), 0);
    assert_int_equal(gm_store_invite_add(s, "h-used", "[\"role:c\"]", 90, 300, 24, &err), 0);
    assert_int_equal(gm_store_invite_add(s, "h-expired", "[\"role:d\"]", 80, 150, 24, &err), 0);
    assert_int_equal(gm_store_invite_consume(s, "h-used", "pk", 120, NULL, &err), 0);
    walked v = {0};
    assert_int_equal(gm_store_invites_foreach(s, 200, 10, see_invite, &v, &err), 0);
    assert_int_equal(v.n, 2);
    assert_string_equal(v.what[0], "h-early [\"role:a\"] 300");
    assert_string_equal(v.what[1], "h-late [\"role:b\"] 300");
    /* the limit, and a callback that stops the walk */
    memset(&v, 0, sizeof v);
    assert_int_equal(gm_store_invites_foreach(s, 200, 1, see_invite, &v, &err), 0);
    assert_int_equal(v.n, 1);
    memset(&v, 0, sizeof v);
    v.stop_after = 1;
    assert_int_equal(gm_store_invites_foreach(s, 200, 10, see_invite, &v, &err), 7);
    assert_int_equal(v.n, 1);
    /* at 140 the expired one was still open */
    memset(&v, 0, sizeof v);
    assert_int_equal(gm_store_invites_foreach(s, 140, 10, see_invite, &v, &err), 0);
    assert_int_equal(v.n, 3);
    assert_string_equal(v.what[0], "h-expired [\"role:d\"] 150");
    gm_store_close(s);
}

static int see_crl(uint64_t sequence, int64_t created_at, void *ctx)
{
    walked *v = ctx;
    snprintf(v->what[v->n++], sizeof v->what[0], "%llu@%lld", (unsigned long long)sequence, (long long)created_at);
    return v->n == v->stop_after ? 9 : 0;
}

static void test_crls_foreach_lists_history_newest_first(void **state)
{
    gm_store_t *s = open_db("crl_history.db");
    walked v = {0};
    assert_int_equal(gm_store_crls_foreach(s, 10, see_crl, &v, NULL), 0);
    assert_int_equal(v.n, 0);
    assert_int_equal(gm_store_crl_add(s, 0, "crl0", 100, NULL), 0);
    assert_int_equal(gm_store_crl_add(s, 1, "crl1", 200, NULL), 0);
    assert_int_equal(gm_store_crl_add(s, 5, "crl5", 300, NULL), 0);
    assert_int_equal(gm_store_crls_foreach(s, 10, see_crl, &v, NULL), 0);
    assert_int_equal(v.n, 3);
    assert_string_equal(v.what[0], "5@300");
    assert_string_equal(v.what[1], "1@200");
    assert_string_equal(v.what[2], "0@100");
    memset(&v, 0, sizeof v);
    assert_int_equal(gm_store_crls_foreach(s, 2, see_crl, &v, NULL), 0);
    assert_int_equal(v.n, 2);
    memset(&v, 0, sizeof v);
    v.stop_after = 1;
    assert_int_equal(gm_store_crls_foreach(s, 10, see_crl, &v, NULL), 9);
    assert_int_equal(v.n, 1);
    gm_store_close(s);
}

/* ---- concurrency ---- */

#define RACERS 8

typedef struct racer {
    gm_store_t *shared; /* NULL: open a connection of its own */
    pthread_barrier_t *go;
    int index;
    int rc;
} racer;

/* One enrollment as the NA does it: consume + insert certificate in one transaction. */
static void *race_join(void *arg)
{
    racer *r = arg;
    gm_store_t *s = r->shared;
    char path[512], pk[45], id[37];
    gm_error err = {0};
    if (!s) {
        db_path(path, sizeof path, "race.db");
        if (gm_store_open(&s, path, &err) != 0) {
            r->rc = -1000;
            return NULL;
        }
    }
    snprintf(pk, sizeof pk, "racer-%d", r->index);
    gm_uuid4(id);
    pthread_barrier_wait(r->go);
    r->rc = gm_store_begin(s, &err);
    if (r->rc == 0) {
        r->rc = gm_store_invite_consume(s, "token", pk, 150, NULL, &err);
        if (r->rc == 0) {
            gm_store_cert c = make_cert(id, pk);
            r->rc = gm_store_cert_add(s, &c, &err);
        }
        if (r->rc == 0)
            r->rc = gm_store_commit(s, &err);
        else
            gm_store_rollback(s);
    }
    if (!r->shared)
        gm_store_close(s);
    return NULL;
}

static void run_race(gm_store_t *shared)
{
    pthread_t t[RACERS];
    racer r[RACERS];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, RACERS);
    for (int i = 0; i < RACERS; i++) {
        r[i] = (racer){.shared = shared, .go = &go, .index = i, .rc = -999};
        assert_int_equal(pthread_create(&t[i], NULL, race_join, &r[i]), 0);
    }
    int won = 0, conflict = 0;
    for (int i = 0; i < RACERS; i++) {
        pthread_join(t[i], NULL);
        won += r[i].rc == 0;
        conflict += r[i].rc == GM_ECONFLICT;
    }
    pthread_barrier_destroy(&go);
    assert_int_equal(won, 1);
    assert_int_equal(conflict, RACERS - 1);
}

static void test_token_consumed_exactly_once_by_concurrent_connections(void **state)
{
    gm_store_t *s = open_db("race.db");
    for (int round = 0; round < 5; round++) {
        raw_exec("race.db", "DELETE FROM invites; DELETE FROM certificates");
        assert_int_equal(gm_store_invite_add(s, "token", "[\"role:a\"]", 100, 200, 24, NULL), 0);
        run_race(NULL);
        int64_t n = 0;
        assert_int_equal(gm_store_cert_count(s, &n, NULL), 0);
        assert_int_equal(n, 1);
    }
    gm_store_close(s);
}

static void test_token_consumed_exactly_once_through_a_shared_handle(void **state)
{
    gm_store_t *s = open_db("race-shared.db");
    for (int round = 0; round < 5; round++) {
        raw_exec("race-shared.db", "DELETE FROM invites; DELETE FROM certificates");
        assert_int_equal(gm_store_invite_add(s, "token", "[\"role:a\"]", 100, 200, 24, NULL), 0);
        run_race(s);
        int64_t n = 0;
        assert_int_equal(gm_store_cert_count(s, &n, NULL), 0);
        assert_int_equal(n, 1);
    }
    gm_store_close(s);
}

/* ---- CRLs and revocations ---- */

static void test_crl_sequence_only_goes_up(void **state)
{
    gm_store_t *s = open_db("crl.db");
    uint64_t seq = 99;
    char *doc = NULL;
    assert_int_equal(gm_store_crl_latest(s, &seq, &doc, NULL), GM_ENOTFOUND);
    assert_int_equal(gm_store_crl_add(s, 0, "crl0", 1, NULL), 0);
    assert_int_equal(gm_store_crl_add(s, 0, "again", 1, NULL), GM_ECONFLICT);
    assert_int_equal(gm_store_crl_add(s, 1, "crl1", 1, NULL), 0);
    assert_int_equal(gm_store_crl_add(s, 1, "dup", 1, NULL), GM_ECONFLICT);
    assert_int_equal(gm_store_crl_add(s, 0, "back", 1, NULL), GM_ECONFLICT);
    assert_int_equal(gm_store_crl_latest(s, &seq, &doc, NULL), 0);
    assert_int_equal(seq, 1);
    assert_string_equal(doc, "crl1");
    free(doc);
    gm_store_close(s);
}

static void test_revocations_keep_order_and_refuse_duplicates(void **state)
{
    gm_store_t *s = open_db("rev.db");
    gm_store_cert a = make_cert("00000000-0000-4000-8000-00000000000a", "pkA");
    gm_store_cert b = make_cert("00000000-0000-4000-8000-00000000000b", "pkB");
    assert_int_equal(gm_store_cert_add(s, &a, NULL), 0);
    assert_int_equal(gm_store_cert_add(s, &b, NULL), 0);
    assert_int_equal(gm_store_cert_add(s, &b, NULL), GM_ECONFLICT);
    assert_int_equal(gm_store_revocation_add(s, b.cert_id, "2026-01-01T00:00:00Z", "superseded", "na-local", NULL), 0);
    assert_int_equal(gm_store_revocation_add(s, a.cert_id, "2026-01-02T00:00:00Z", "key_compromise", "na-local", NULL),
                     0);
    assert_int_equal(gm_store_revocation_add(s, a.cert_id, "2026-01-03T00:00:00Z", "unspecified", "na-local", NULL),
                     GM_ECONFLICT);
    json_t *e = NULL;
    assert_int_equal(gm_store_revocations_json(s, INT64_MIN, &e, NULL), 0);
    assert_int_equal(json_array_size(e), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(e, 0), "certificate_id")), b.cert_id);
    assert_string_equal(json_string_value(json_object_get(json_array_get(e, 1), "reason")), "key_compromise");
    assert_string_equal(json_string_value(json_object_get(json_array_get(e, 1), "revoked_at")),
                        "2026-01-02T00:00:00Z");
    json_decref(e);
    gm_store_cert got;
    assert_int_equal(gm_store_cert_get(s, a.cert_id, &got, NULL), 0);
    assert_int_equal(got.revoked, 1);
    assert_string_equal(got.reason, "key_compromise");
    assert_string_equal(got.doc, "{\"cert\":1}");
    gm_store_cert_clear(&got);
    assert_int_equal(gm_store_cert_get(s, "00000000-0000-4000-8000-00000000000c", &got, NULL), GM_ENOTFOUND);
    /* a supersession in its overlap, revoked for another reason: time and reason change in place */
    assert_int_equal(gm_store_revocation_update(s, b.cert_id, "2025-12-31T00:00:00Z", "key_compromise", NULL), 0);
    assert_int_equal(gm_store_cert_get(s, b.cert_id, &got, NULL), 0);
    assert_string_equal(got.reason, "key_compromise");
    assert_string_equal(got.revoked_at, "2025-12-31T00:00:00Z");
    gm_store_cert_clear(&got);
    assert_int_equal(gm_store_revocations_json(s, INT64_MIN, &e, NULL), 0);
    assert_int_equal(json_array_size(e), 2); /* still one entry, in its place */
    assert_string_equal(json_string_value(json_object_get(json_array_get(e, 0), "reason")), "key_compromise");
    json_decref(e);
    gm_error err = {0};
    assert_int_equal(gm_store_revocation_update(s, "00000000-0000-4000-8000-00000000000c", "2026-01-01T00:00:00Z",
                                                "unspecified", &err),
                     GM_ENOTFOUND);
    assert_non_null(strstr(err.msg, "is not revoked"));
    gm_store_close(s);
}

static void test_issuance_log_appends_in_order(void **state)
{
    (void)state;
    gm_store_t *s = open_db("log.db");
    uint8_t h[3][32], got[32];
    uint64_t idx = 99, n = 99;
    assert_int_equal(gm_store_log_size(s, &n, NULL), 0);
    assert_int_equal(n, 0);
    uint8_t *hashes = (uint8_t *)1;
    assert_int_equal(gm_store_log_hashes(s, 0, &hashes, NULL), 0);
    assert_null(hashes);
    const char *kinds[3] = {"issue", "renew", "revoke"};
    for (int i = 0; i < 3; i++) {
        char entry[64];
        memset(h[i], 0x10 * (i + 1), 32);
        snprintf(entry, sizeof entry, "{\"n\":%d}", i);
        assert_int_equal(gm_store_log_append(s, kinds[i], "00000000-0000-4000-8000-00000000000a", entry, h[i], &idx,
                                             NULL),
                         0);
        assert_int_equal(idx, (uint64_t)i);
    }
    assert_int_equal(gm_store_log_size(s, &n, NULL), 0);
    assert_int_equal(n, 3);
    assert_int_equal(gm_store_log_hashes(s, 2, &hashes, NULL), 0);
    assert_memory_equal(hashes, h[0], 32);
    assert_memory_equal(hashes + 32, h[1], 32);
    free(hashes);
    gm_error err = {0};
    assert_int_equal(gm_store_log_hashes(s, 4, &hashes, &err), GM_EDB);
    assert_non_null(strstr(err.msg, "has 3 entries, not 4"));
    char *text = NULL;
    assert_int_equal(gm_store_log_entry(s, 1, &text, got, NULL), 0);
    assert_string_equal(text, "{\"n\":1}");
    assert_memory_equal(got, h[1], 32);
    free(text);
    assert_int_equal(gm_store_log_entry(s, 3, &text, got, NULL), GM_ENOTFOUND);
    assert_int_equal(gm_store_log_find(s, "revoke", "00000000-0000-4000-8000-00000000000a", &idx, NULL), 0);
    assert_int_equal(idx, 2);
    assert_int_equal(gm_store_log_find(s, "issue", "00000000-0000-4000-8000-00000000000b", &idx, NULL), GM_ENOTFOUND);
    /* a rolled-back append leaves no entry and no gap */
    assert_int_equal(gm_store_begin(s, NULL), 0);
    assert_int_equal(gm_store_log_append(s, "issue", "00000000-0000-4000-8000-00000000000c", "{}", h[0], &idx, NULL), 0);
    gm_store_rollback(s);
    assert_int_equal(gm_store_log_size(s, &n, NULL), 0);
    assert_int_equal(n, 3);
    gm_store_close(s);
}

typedef struct count_ctx {
    int n, revoked;
} count_ctx;

static int count_cert(const gm_store_cert *c, void *ctx)
{
    count_ctx *k = ctx;
    k->n++;
    k->revoked += c->revoked;
    return 0;
}

static int stop_at_first(const gm_store_cert *c, void *ctx)
{
    (*(int *)ctx)++;
    return 42;
}

static void test_certs_foreach_filters_by_key_and_can_stop(void **state)
{
    gm_store_t *s = open_db("each.db");
    gm_store_cert a = make_cert("00000000-0000-4000-8000-00000000000a", "pkA");
    gm_store_cert b = make_cert("00000000-0000-4000-8000-00000000000b", "pkB");
    gm_store_cert c = make_cert("00000000-0000-4000-8000-00000000000c", "pkA");
    assert_int_equal(gm_store_cert_add(s, &a, NULL), 0);
    assert_int_equal(gm_store_cert_add(s, &b, NULL), 0);
    assert_int_equal(gm_store_cert_add(s, &c, NULL), 0);
    assert_int_equal(gm_store_revocation_add(s, c.cert_id, "2026-01-01T00:00:00Z", "unspecified", "na", NULL), 0);
    count_ctx k = {0, 0};
    assert_int_equal(gm_store_certs_foreach(s, "pkA", count_cert, &k, NULL), 0);
    assert_int_equal(k.n, 2);
    assert_int_equal(k.revoked, 1);
    k = (count_ctx){0, 0};
    assert_int_equal(gm_store_certs_foreach(s, NULL, count_cert, &k, NULL), 0);
    assert_int_equal(k.n, 3);
    int calls = 0;
    assert_int_equal(gm_store_certs_foreach(s, NULL, stop_at_first, &calls, NULL), 42);
    assert_int_equal(calls, 1);
    gm_store_close(s);
}

/* ---- durability, rollback ---- */

static void test_committed_state_survives_reopen_and_rollback_leaves_nothing(void **state)
{
    gm_store_t *s = open_db("durable.db");
    gm_error err = {0};
    gm_store_cert a = make_cert("00000000-0000-4000-8000-00000000000a", "pkA");
    assert_int_equal(gm_store_begin(s, &err), 0);
    assert_int_equal(gm_store_begin(s, &err), GM_EINTERNAL); /* not nestable */
    assert_int_equal(gm_store_invite_add(s, "t1", "[]", 1, 100000, 1, &err), 0);
    assert_int_equal(gm_store_invite_consume(s, "t1", "pkA", 10, NULL, &err), 0);
    assert_int_equal(gm_store_cert_add(s, &a, &err), 0);
    assert_int_equal(gm_store_crl_add(s, 0, "c0", 1, &err), 0);
    assert_int_equal(gm_store_commit(s, &err), 0);

    gm_store_cert b = make_cert("00000000-0000-4000-8000-00000000000b", "pkB");
    assert_int_equal(gm_store_begin(s, &err), 0);
    assert_int_equal(gm_store_invite_add(s, "t2", "[]", 1, 100000, 1, &err), 0);
    assert_int_equal(gm_store_cert_add(s, &b, &err), 0);
    assert_int_equal(gm_store_crl_add(s, 1, "c1", 1, &err), 0);
    gm_store_rollback(s);
    gm_store_rollback(s); /* harmless outside a transaction */
    gm_store_close(s);

    s = open_db("durable.db");
    gm_store_invite inv;
    assert_int_equal(gm_store_invite_get(s, "t1", &inv, &err), 0);
    assert_int_equal(inv.used, 1);
    gm_store_invite_clear(&inv);
    assert_int_equal(gm_store_invite_get(s, "t2", &inv, &err), GM_ENOTFOUND);
    gm_store_cert got;
    assert_int_equal(gm_store_cert_get(s, a.cert_id, &got, &err), 0);
    gm_store_cert_clear(&got);
    assert_int_equal(gm_store_cert_get(s, b.cert_id, &got, &err), GM_ENOTFOUND);
    uint64_t seq = 9;
    assert_int_equal(gm_store_crl_latest(s, &seq, NULL, &err), 0);
    assert_int_equal(seq, 0);
    gm_store_close(s);
}

static void test_nonces_replay_per_scope_and_prune(void **state)
{
    gm_store_t *s = open_db("nonce.db");
    assert_int_equal(gm_store_nonce_record(s, "op", "n1", 100, NULL), 0);
    assert_int_equal(gm_store_nonce_record(s, "op", "n1", 101, NULL), GM_ECONFLICT);
    assert_int_equal(gm_store_nonce_record(s, "node:x", "n1", 101, NULL), 0);
    assert_int_equal(gm_store_nonce_prune(s, 101, NULL), 0); /* drops (op, n1) seen at 100 */
    assert_int_equal(gm_store_nonce_record(s, "op", "n1", 102, NULL), 0);
    assert_int_equal(gm_store_nonce_record(s, "node:x", "n1", 102, NULL), GM_ECONFLICT);
    gm_store_close(s);
}

static void test_key_block_and_unblock(void **state)
{
    gm_store_t *s = open_db("block.db");
    int b = -1;
    assert_int_equal(gm_store_key_blocked(s, "pk", &b, NULL), 0);
    assert_int_equal(b, 0);
    assert_int_equal(gm_store_key_block(s, "pk", "key_compromise", 1, NULL), 0);
    assert_int_equal(gm_store_key_block(s, "pk", "key_compromise", 2, NULL), 0); /* idempotent */
    assert_int_equal(gm_store_key_blocked(s, "pk", &b, NULL), 0);
    assert_int_equal(b, 1);
    assert_int_equal(gm_store_key_unblock(s, "pk", NULL), 0);
    assert_int_equal(gm_store_key_unblock(s, "pk", NULL), GM_ENOTFOUND);
    assert_int_equal(gm_store_key_blocked(s, "pk", &b, NULL), 0);
    assert_int_equal(b, 0);
    gm_store_close(s);
}

static int setup(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/gm-test-store-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- agent descriptors ---- */

typedef struct agent_seen {
    int n;
    char pk[4][64];
} agent_seen;

static int collect_agent(const char *pk, const char *doc, void *ctx)
{
    agent_seen *a = ctx;
    assert_non_null(strstr(doc, "desc"));
    snprintf(a->pk[a->n++], sizeof a->pk[0], "%s", pk);
    return a->n == 4;
}

static void test_agents_put_list_by_exact_capability_and_delete(void **state)
{
    gm_store_t *s = open_db("agents.db");
    const char *chat[] = {"llm.chat", "repo.summary"}, *chat2[] = {"llm.chat2"};
    gm_store_agent a = {.agent_id = "a1", .node_pk = "pkA", .caps = chat, .n_caps = 2, .registered_at = 100,
                        .expires_at = 200, .doc = "{\"desc\":1}"};
    gm_store_agent b = {.agent_id = "b1", .node_pk = "pkB", .caps = chat2, .n_caps = 1, .registered_at = 100,
                        .expires_at = 150, .doc = "{\"desc\":2}"};
    assert_int_equal(gm_store_agent_put(s, &a, NULL), 0);
    assert_int_equal(gm_store_agent_put(s, &b, NULL), 0);
    char owner[GM_PK_B64_LEN + 1];
    assert_int_equal(gm_store_agent_owner(s, "a1", 150, owner, NULL), 0);
    assert_string_equal(owner, "pkA");
    assert_int_equal(gm_store_agent_owner(s, "b1", 151, owner, NULL), GM_ENOTFOUND); /* expired at 151 */
    assert_int_equal(gm_store_agent_owner(s, "zz", 0, owner, NULL), GM_ENOTFOUND);
    /* "llm.chat" is one tag: it does not match "llm.chat2" */
    agent_seen seen = {0};
    assert_int_equal(gm_store_agents_foreach(s, "llm.chat", 0, 10, collect_agent, &seen, NULL), 0);
    assert_int_equal(seen.n, 1);
    assert_string_equal(seen.pk[0], "pkA");
    memset(&seen, 0, sizeof seen);
    assert_int_equal(gm_store_agents_foreach(s, NULL, 0, 10, collect_agent, &seen, NULL), 0);
    assert_int_equal(seen.n, 2);
    memset(&seen, 0, sizeof seen);
    assert_int_equal(gm_store_agents_foreach(s, "", 160, 10, collect_agent, &seen, NULL), 0);
    assert_int_equal(seen.n, 1); /* b1 expired at 160 */
    memset(&seen, 0, sizeof seen);
    assert_int_equal(gm_store_agents_foreach(s, NULL, 0, 1, collect_agent, &seen, NULL), 0);
    assert_int_equal(seen.n, 1); /* the limit */
    /* replacing keeps one row per agent id */
    a.expires_at = 300;
    assert_int_equal(gm_store_agent_put(s, &a, NULL), 0);
    assert_int_equal(gm_store_agent_owner(s, "a1", 250, owner, NULL), 0);
    int64_t n = -1;
    assert_int_equal(gm_store_agents_delete(s, "pkB", "a1", &n, NULL), 0);
    assert_int_equal(n, 0); /* not pkB's */
    assert_int_equal(gm_store_agents_prune(s, 151, NULL), 0); /* drops b1 */
    assert_int_equal(gm_store_agents_delete(s, "pkB", NULL, &n, NULL), 0);
    assert_int_equal(n, 0);
    assert_int_equal(gm_store_agents_delete(s, "pkA", NULL, &n, NULL), 0);
    assert_int_equal(n, 1);
    memset(&seen, 0, sizeof seen);
    assert_int_equal(gm_store_agents_foreach(s, NULL, 0, 10, collect_agent, &seen, NULL), 0);
    assert_int_equal(seen.n, 0);
    gm_store_close(s);
}

static void test_revocations_of_expired_certificates_leave_the_list(void **state)
{
    gm_store_t *s = open_db("rev-live.db");
    gm_store_cert a = make_cert("00000000-0000-4000-8000-0000000000a1", "pkA"); /* expires 2000 */
    gm_store_cert b = make_cert("00000000-0000-4000-8000-0000000000b1", "pkB");
    b.expires_at = 5000;
    assert_int_equal(gm_store_cert_add(s, &a, NULL), 0);
    assert_int_equal(gm_store_cert_add(s, &b, NULL), 0);
    assert_int_equal(gm_store_revocation_add(s, a.cert_id, "2026-01-01T00:00:00Z", "key_compromise", "na", NULL), 0);
    assert_int_equal(gm_store_revocation_add(s, b.cert_id, "2026-01-01T00:00:00Z", "superseded", "na", NULL), 0);
    json_t *e = NULL;
    /* still listed during the clock-skew allowance after expiry, gone after it */
    assert_int_equal(gm_store_revocations_json(s, 2000 + GM_CLOCK_SKEW_S, &e, NULL), 0);
    assert_int_equal(json_array_size(e), 2);
    json_decref(e);
    assert_int_equal(gm_store_revocations_json(s, 2001 + GM_CLOCK_SKEW_S, &e, NULL), 0);
    assert_int_equal(json_array_size(e), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(e, 0), "certificate_id")), b.cert_id);
    json_decref(e);
    /* the revocation itself stays: the certificate still reads as revoked */
    gm_store_cert got;
    assert_int_equal(gm_store_cert_get(s, a.cert_id, &got, NULL), 0);
    assert_int_equal(got.revoked, 1);
    gm_store_cert_clear(&got);
    gm_store_close(s);
}

static void test_unknown_backend_location_is_refused(void **state)
{
    gm_store_t *s = (gm_store_t *)1;
    gm_error err = {0};
    assert_int_equal(gm_store_open(&s, "mysql://localhost/na", &err), GM_EINVAL);
    assert_null(s);
    assert_non_null(strstr(err.msg, "no store backend"));
}

/* A PostgreSQL URL goes to lib/na/store_pg.c; when the server is not there the error says so,
 * without the password of the URL. */
static void test_unreachable_postgresql_is_a_clear_error_without_password(void **state)
{
    gm_store_t *s = (gm_store_t *)1;
    gm_error err = {0};
    char url[600];
    snprintf(url, sizeof url, "postgresql://gm:s3cr3t-pw@/na?host=%s/no-server-here&connect_timeout=2", tmpdir);
    assert_int_equal(gm_store_open(&s, url, &err), GM_EDB);
    assert_null(s);
    assert_non_null(strstr(err.msg, "cannot connect to database postgresql://gm@/na"));
    assert_null(strstr(err.msg, "s3cr3t"));
    snprintf(url, sizeof url, "postgres:///na?host=%s/no-server-here&password=s3cr3t-pw", tmpdir);
    assert_int_equal(gm_store_open(&s, url, &err), GM_EDB);
    assert_null(strstr(err.msg, "s3cr3t"));
}

/* ---- invariants across connections (each racer its own connection, as replicas have) ---- */

typedef struct seq_racer {
    pthread_barrier_t *go;
    int index, rc;
    uint64_t seq;
} seq_racer;

/* What a revocation does: in one transaction, take the latest CRL's sequence and store the next. */
static void *race_crl(void *arg)
{
    seq_racer *r = arg;
    gm_store_t *s = NULL;
    char path[512], doc[32];
    gm_error err = {0};
    db_path(path, sizeof path, "crl-race.db");
    if (gm_store_open(&s, path, &err) != 0) {
        r->rc = -1000;
        return NULL;
    }
    pthread_barrier_wait(r->go);
    for (int i = 0; i < 5 && r->rc == 0; i++) {
        uint64_t seq = 0;
        if ((r->rc = gm_store_begin(s, &err)) != 0)
            break;
        r->rc = gm_store_crl_latest(s, &seq, NULL, &err);
        snprintf(doc, sizeof doc, "crl-%d-%d", r->index, i);
        if (r->rc == 0)
            r->rc = gm_store_crl_add(s, seq + 1, doc, 1, &err);
        if (r->rc == 0)
            r->rc = gm_store_commit(s, &err);
        else
            gm_store_rollback(s);
    }
    if (r->rc != 0)
        fprintf(stderr, "racer %d: %s\n", r->index, err.msg);
    gm_store_close(s);
    return NULL;
}

static int count_crl(uint64_t sequence, int64_t created_at, void *ctx)
{
    (void)created_at;
    uint64_t *c = ctx;
    assert_int_equal(sequence, c[1] - c[0]); /* newest first, no gap, no repeat */
    c[0]++;
    return 0;
}

static void test_crl_sequence_taken_in_transactions_never_repeats(void **state)
{
    gm_store_t *s = open_db("crl-race.db");
    assert_int_equal(gm_store_crl_add(s, 0, "crl0", 1, NULL), 0);
    pthread_t t[RACERS];
    seq_racer r[RACERS];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, RACERS);
    for (int i = 0; i < RACERS; i++) {
        r[i] = (seq_racer){.go = &go, .index = i};
        assert_int_equal(pthread_create(&t[i], NULL, race_crl, &r[i]), 0);
    }
    for (int i = 0; i < RACERS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(r[i].rc, 0);
    }
    pthread_barrier_destroy(&go);
    uint64_t seq = 0;
    assert_int_equal(gm_store_crl_latest(s, &seq, NULL, NULL), 0);
    assert_int_equal(seq, RACERS * 5);
    uint64_t c[2] = {0, seq};
    assert_int_equal(gm_store_crls_foreach(s, 1000, count_crl, c, NULL), 0);
    assert_int_equal(c[0], RACERS * 5 + 1);
    gm_store_close(s);
}

static void *race_nonce(void *arg)
{
    seq_racer *r = arg;
    gm_store_t *s = NULL;
    char path[512];
    gm_error err = {0};
    db_path(path, sizeof path, "nonce-race.db");
    if (gm_store_open(&s, path, &err) != 0) {
        r->rc = -1000;
        return NULL;
    }
    pthread_barrier_wait(r->go);
    r->rc = gm_store_nonce_record(s, "node:pk", "the-nonce", 100, &err);
    gm_store_close(s);
    return NULL;
}

static void test_nonce_accepted_once_across_connections(void **state)
{
    gm_store_t *s = open_db("nonce-race.db");
    pthread_t t[RACERS];
    seq_racer r[RACERS];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, RACERS);
    for (int i = 0; i < RACERS; i++) {
        r[i] = (seq_racer){.go = &go, .index = i};
        assert_int_equal(pthread_create(&t[i], NULL, race_nonce, &r[i]), 0);
    }
    int won = 0, replay = 0;
    for (int i = 0; i < RACERS; i++) {
        pthread_join(t[i], NULL);
        won += r[i].rc == 0;
        replay += r[i].rc == GM_ECONFLICT;
    }
    pthread_barrier_destroy(&go);
    assert_int_equal(won, 1);
    assert_int_equal(replay, RACERS - 1);
    gm_store_close(s);
}

/* A conflict inside a transaction (nonce replay, duplicate certificate) does not spoil it:
 * the NA may go on and commit what it did before. */
static void test_conflict_inside_a_transaction_keeps_it_usable(void **state)
{
    gm_store_t *s = open_db("tx-conflict.db");
    gm_error err = {0};
    gm_store_cert c = make_cert("00000000-0000-4000-8000-0000000000c1", "pkC");
    assert_int_equal(gm_store_nonce_record(s, "sc", "n1", 10, NULL), 0);
    assert_int_equal(gm_store_begin(s, &err), 0);
    assert_int_equal(gm_store_nonce_record(s, "sc", "n1", 10, &err), GM_ECONFLICT);
    assert_int_equal(gm_store_cert_add(s, &c, &err), 0);
    assert_int_equal(gm_store_cert_add(s, &c, &err), GM_ECONFLICT);
    assert_int_equal(gm_store_revocation_add(s, c.cert_id, "2026-01-01T00:00:00Z", "unspecified", "na", &err), 0);
    assert_int_equal(gm_store_revocation_add(s, c.cert_id, "2026-01-01T00:00:00Z", "unspecified", "na", &err),
                     GM_ECONFLICT);
    assert_int_equal(gm_store_commit(s, &err), 0);
    gm_store_cert got;
    assert_int_equal(gm_store_cert_get(s, c.cert_id, &got, &err), 0);
    assert_int_equal(got.revoked, 1);
    gm_store_cert_clear(&got);
    gm_store_close(s);
}

/* ---- group commit: requests of several threads sharing one transaction ---- */

#define GC_THREADS 8
#define GC_EACH 24

typedef struct gc_worker {
    gm_store_t *s;
    pthread_barrier_t *go;
    int index;
    int rc[GC_EACH];       /* what gm_store_commit said (or the refusal that rolled back) */
    int rolled_back[GC_EACH];
} gc_worker;

/* Request k of worker i records nonce "i-k" in scope "gc"; every third one also replays the
 * nonce "replayed", recorded before the workers start (GM_ECONFLICT: a nonce another worker
 * records could still be ahead in the queue, on PostgreSQL above all), and rolls back, as the
 * NA does with a refused request. Requests
 * whose index is poison_at record in scope "poison" (see the trigger below). */
static int poison_at = -1;

static void *gc_work(void *arg)
{
    gc_worker *w = arg;
    pthread_barrier_wait(w->go);
    for (int k = 0; k < GC_EACH; k++) {
        gm_error err = {0};
        char nonce[32];
        snprintf(nonce, sizeof nonce, "%d-%d", w->index, k);
        w->rc[k] = gm_store_begin(w->s, &err);
        if (w->rc[k] != 0)
            continue;
        w->rc[k] = gm_store_nonce_record(w->s, k == poison_at ? "poison" : "gc", nonce, 10, &err);
        if (w->rc[k] == 0 && k % 3 == 2)
            w->rc[k] = gm_store_nonce_record(w->s, "gc", "replayed", 10, &err) == GM_ECONFLICT ? GM_ECONFLICT : -1;
        if (w->rc[k] == 0) {
            w->rc[k] = gm_store_commit(w->s, &err);
        } else {
            w->rolled_back[k] = 1;
            gm_store_rollback(w->s);
        }
    }
    return NULL;
}

/* Run GC_THREADS workers on one handle; returns how many requests failed at commit. */
static int gc_run(gm_store_t *s, gc_worker *w)
{
    pthread_t t[GC_THREADS];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, GC_THREADS);
    for (int i = 0; i < GC_THREADS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i] = (gc_worker){.s = s, .go = &go, .index = i};
        assert_int_equal(pthread_create(&t[i], NULL, gc_work, &w[i]), 0);
    }
    for (int i = 0; i < GC_THREADS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&go);
    int failed = 0;
    for (int i = 0; i < GC_THREADS; i++)
        for (int k = 0; k < GC_EACH; k++)
            failed += !w[i].rolled_back[k] && w[i].rc[k] != 0;
    return failed;
}

/* Every request answered ok is stored; every other one left nothing (its nonce is new). */
static void gc_check(gm_store_t *s, const gc_worker *w)
{
    for (int i = 0; i < GC_THREADS; i++)
        for (int k = 0; k < GC_EACH; k++) {
            char nonce[32];
            snprintf(nonce, sizeof nonce, "%d-%d", i, k);
            const char *scope = k == poison_at ? "poison" : "gc";
            int again = gm_store_nonce_record(s, scope, nonce, 10, NULL);
            if (w[i].rc[k] == 0 && again != GM_ECONFLICT)
                fail_msg("request %s was answered ok but is not stored", nonce);
            if (w[i].rc[k] != 0 && again != 0)
                fail_msg("request %s failed (%d) but left its write behind", nonce, w[i].rc[k]);
        }
}

/* A refused request inside a shared batch undoes only its own writes; the others of the
 * batch are committed, and batches formed (fewer syncs than commits). */
static void test_refused_request_in_a_batch_is_undone_alone(void **state)
{
    gm_store_t *s = open_db("gc-refused.db");
    gc_worker w[GC_THREADS];
    poison_at = -1;
    gm_store_counters k0, k1;
    gm_store_stats(s, &k0);
    assert_int_equal(gm_store_nonce_record(s, "gc", "replayed", 10, NULL), 0);
    assert_int_equal(gc_run(s, w), 0);
    gm_store_stats(s, &k1);
    for (int i = 0; i < GC_THREADS; i++)
        for (int k = 0; k < GC_EACH; k++)
            assert_int_equal(w[i].rc[k], k % 3 == 2 ? GM_ECONFLICT : 0);
    gc_check(s, w);
    if (!tk_store_pg()) /* SQLite: requests share syncs (the PostgreSQL server counts its own) */
        assert_true(k1.syncs - k0.syncs < k1.commits - k0.commits);
    gm_store_close(s);
}

/* Autocommit writes of nonces "n<from>".."n<to - 1>" in scope, each its own commit. */
static void record_nonces(gm_store_t *s, const char *scope, int from, int to)
{
    for (int i = from; i < to; i++) {
        char n[32];
        snprintf(n, sizeof n, "n%d", i);
        assert_int_equal(gm_store_nonce_record(s, scope, n, 10 + i, NULL), 0);
    }
}

/* The store's checkpointer thread works beside the writes: wait until it counted a checkpoint
 * more than k (gives up after about a minute; no assertion on time). */
static void wait_checkpoint(gm_store_t *s, const gm_store_counters *k, gm_store_counters *out)
{
    for (int i = 0; i < 6000; i++) {
        gm_store_stats(s, out);
        if (out->checkpoints > k->checkpoints)
            return;
        usleep(10000);
    }
}

/* The store's counters (the NA's /metrics) report the time its syncs took, what was written to
 * the write-ahead log, and the checkpoints once the log held 1000 pages: by the store's
 * checkpointer thread, none inside a commit (the log is far from its bound); every figure
 * only grows. */
static void test_store_counters_report_sync_time_wal_bytes_and_checkpoints(void **state)
{
    (void)state;
    if (tk_store_pg()) /* the PostgreSQL server keeps these figures itself */
        skip();
    gm_store_t *s = open_db("counters.db");
    gm_store_counters k0, k1, k2;
    gm_store_stats(s, &k0);
    assert_int_equal(gm_store_begin(s, NULL), 0);
    assert_int_equal(gm_store_nonce_record(s, "ct", "first", 10, NULL), 0);
    assert_int_equal(gm_store_commit(s, NULL), 0); /* waits for its sync */
    gm_store_stats(s, &k1);
    assert_true(k1.syncs > k0.syncs);
    assert_true(k1.sync_ns > k0.sync_ns);
    assert_true(k1.wal_bytes > k0.wal_bytes);
    /* autocommit writes of two pages (the row and its index) each: past 1000 pages in the log */
    record_nonces(s, "ct", 0, 600);
    wait_checkpoint(s, &k1, &k2);
    assert_true(k2.checkpoints > k1.checkpoints);
    assert_true(k2.checkpoint_ns > k1.checkpoint_ns);
    assert_int_equal(k2.checkpoints_inline, k1.checkpoints_inline);
    assert_true(k2.wal_bytes >= k1.wal_bytes + 1000u * 4096u);
    assert_true(k2.commits >= k1.commits + 600);
    gm_store_close(s);
}

/* Records at GM_LOG_ERROR that name the checkpointer (from the store's threads). */
static atomic_int ckpt_errors;

static void count_ckpt_errors(void *ctx, const gm_log_record *rec)
{
    (void)ctx;
    if (rec->level == GM_LOG_ERROR && strstr(rec->msg, "checkpointer"))
        atomic_fetch_add(&ckpt_errors, 1);
}

/* When the checkpointer thread cannot open its connection (here: the database file was renamed
 * under the open store), it says so in the log, and the commits checkpoint the log themselves
 * as before it, each 1000 pages. */
static void test_checkpointer_failure_is_logged_and_commits_checkpoint_instead(void **state)
{
    (void)state;
    if (tk_store_pg())
        skip();
    char path[512], moved[600];
    db_path(path, sizeof path, "ckpt-fail.db");
    snprintf(moved, sizeof moved, "%s.moved", path);
    atomic_store(&ckpt_errors, 0);
    gm_log_set_handler(count_ckpt_errors, NULL);
    gm_store_t *s = open_db("ckpt-fail.db");
    assert_int_equal(rename(path, moved), 0);
    gm_store_counters k0, k1;
    gm_store_stats(s, &k0);
    record_nonces(s, "cf", 0, 600); /* two pages each: the thread is asked for a pass at 1000 */
    for (int w = 0; w < 6000 && !atomic_load(&ckpt_errors); w++)
        usleep(10000);
    assert_int_equal(atomic_load(&ckpt_errors), 1);
    record_nonces(s, "cf", 600, 1200);
    gm_store_stats(s, &k1);
    assert_true(k1.checkpoints_inline > k0.checkpoints_inline);
    assert_int_equal(k1.checkpoints - k0.checkpoints, k1.checkpoints_inline - k0.checkpoints_inline);
    assert_int_equal(rename(moved, path), 0);
    gm_store_close(s);
    gm_log_set_handler(NULL, NULL);
    assert_int_equal(atomic_load(&ckpt_errors), 1); /* said once */
}

/* A burst of requests that never pauses: BURST_THREADS workers, each request recording
 * BURST_ROWS nonces at scattered keys (each a page of its own in both of the table's indexes),
 * until the write-ahead log has taken BURST_LOGS times its bound. */
#define BURST_THREADS 8
#define BURST_ROWS 4
#define BURST_LOGS 4
#define BURST_PAGE 512 /* small pages: many of them for few bytes */
#define BURST_MAX_REQUESTS 200000 /* per worker: the burst ends even if the log never fills */
/* the bound: twice GM_STORE_WAL_BOUND_PAGES, and one commit's pages (far fewer than this) */
#define BURST_WAL_MAX ((2 * GM_STORE_WAL_BOUND_PAGES + 1000) * (BURST_PAGE + 24) + 32)

typedef struct burst_worker {
    gm_store_t *s;
    pthread_barrier_t *go;
    atomic_int *enough;
    int index, done, failed;
    int report; /* a pipe for burst_report records, or -1 */
} burst_worker;

/* What a burst in a child process tells its parent: request k of worker is durable (its commit
 * returned), or (worker -1) the checkpoints counted so far, by the thread and inside commits. */
typedef struct burst_report {
    int worker, k;
    uint32_t by_thread, inline_;
} burst_report;

static void burst_nonce(char *out, size_t cap, int worker, int k, int r, int64_t *at)
{
    uint32_t h = (uint32_t)(worker * 1000003 + k * 131 + r) * 2654435761u; /* scattered, distinct */
    h ^= h >> 15;
    *at = h % 100000;
    snprintf(out, cap, "%08x-%d-%d-%d", h, worker, k, r);
}

static void *burst_work(void *arg)
{
    burst_worker *w = arg;
    pthread_barrier_wait(w->go);
    for (int k = 0; k < BURST_MAX_REQUESTS && !atomic_load(w->enough); k++) {
        gm_error err = {0};
        int rc = gm_store_begin(w->s, &err);
        for (int r = 0; rc == 0 && r < BURST_ROWS; r++) {
            char nonce[64];
            int64_t at;
            burst_nonce(nonce, sizeof nonce, w->index, k, r, &at);
            rc = gm_store_nonce_record(w->s, "burst", nonce, at, &err);
        }
        if (rc == 0)
            rc = gm_store_commit(w->s, &err);
        else
            gm_store_rollback(w->s);
        if (rc != 0) {
            fprintf(stderr, "burst request %d-%d: %s\n", w->index, k, err.msg);
            w->failed++;
            break;
        }
        w->done = k + 1;
        if (w->report >= 0) {
            burst_report r = {.worker = w->index, .k = k};
            if (write(w->report, &r, sizeof r) != sizeof r)
                break;
        }
        if (w->index == 0 && k % 16 == 15) {
            gm_store_counters c;
            gm_store_stats(w->s, &c);
            if (c.wal_bytes >= (uint64_t)BURST_LOGS * BURST_WAL_MAX)
                atomic_store(w->enough, 1);
            burst_report r = {.worker = -1,
                              .by_thread = (uint32_t)(c.checkpoints - c.checkpoints_inline),
                              .inline_ = (uint32_t)c.checkpoints_inline};
            if (w->report >= 0 && write(w->report, &r, sizeof r) != sizeof r)
                break;
        }
    }
    atomic_store(w->enough, 1); /* one worker stopping ends the burst */
    return NULL;
}

/* A burst: BURST_THREADS workers on s (w, filled here), each reporting to report (or -1), until
 * each is done; -1 when a worker cannot start. */
static int burst_run(gm_store_t *s, burst_worker w[BURST_THREADS], int report)
{
    pthread_t t[BURST_THREADS];
    pthread_barrier_t go;
    atomic_int enough = 0;
    pthread_barrier_init(&go, NULL, BURST_THREADS);
    for (int i = 0; i < BURST_THREADS; i++) {
        w[i] = (burst_worker){.s = s, .go = &go, .enough = &enough, .index = i, .report = report};
        if (pthread_create(&t[i], NULL, burst_work, &w[i]) != 0)
            return -1;
    }
    for (int i = 0; i < BURST_THREADS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&go);
    return 0;
}

/* A new database of BURST_PAGE pages at path. */
static void burst_db_create(const char *path)
{
    char sql[128];
    snprintf(sql, sizeof sql, "PRAGMA page_size=%d; CREATE TABLE gm_probe(x); DROP TABLE gm_probe", BURST_PAGE);
    sqlite3 *db = raw_db_create(path);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* Reopened by the store: the rows of the first done[i] requests of each worker are there (a
 * missing one would be recorded now, not refused). */
static void burst_check_rows(const char *name, const int *done)
{
    gm_store_t *s = open_db(name);
    for (int i = 0; i < BURST_THREADS; i++)
        for (int k = 0; k < done[i]; k++)
            for (int r = 0; r < BURST_ROWS; r++) {
                char nonce[64];
                int64_t at;
                burst_nonce(nonce, sizeof nonce, i, k, r, &at);
                if (gm_store_nonce_record(s, "burst", nonce, at, NULL) != GM_ECONFLICT)
                    fail_msg("request %d-%d was answered ok but its row %s is not stored", i, k, nonce);
            }
    gm_store_close(s);
}

/* The write-ahead log stays bounded under a burst of concurrent requests that never pauses
 * (where a checkpoint beside the writes never copies the whole log, and SQLite restarts the
 * log only after one did): the commit path checkpoints once the log passes its bound, while
 * the other checkpoints run in the store's thread. After the burst, closed and reopened,
 * every row is there. */
static void test_wal_stays_bounded_under_a_burst_that_never_pauses(void **state)
{
    (void)state;
    if (tk_store_pg()) /* SQLite's log */
        skip();
    char path[512], wal[600];
    db_path(path, sizeof path, "burst.db");
    snprintf(wal, sizeof wal, "%s-wal", path);
    burst_db_create(path);
    gm_store_t *s = open_db("burst.db");
    gm_store_counters k0, k1;
    gm_store_stats(s, &k0);
    burst_worker w[BURST_THREADS];
    assert_int_equal(burst_run(s, w, -1), 0);
    gm_store_stats(s, &k1);
    struct stat st;
    assert_int_equal(stat(wal, &st), 0); /* the log's file keeps the largest size it had */
    int requests = 0;
    for (int i = 0; i < BURST_THREADS; i++) {
        assert_int_equal(w[i].failed, 0);
        requests += w[i].done;
    }
    fprintf(stderr,
            "burst: %d requests, %.1f MiB of log written, the log's file %.1f MiB (bound %.1f MiB); "
            "checkpoints %llu, %llu of them inside commits\n",
            requests, (double)(k1.wal_bytes - k0.wal_bytes) / 1048576, (double)st.st_size / 1048576,
            (double)BURST_WAL_MAX / 1048576, (unsigned long long)(k1.checkpoints - k0.checkpoints),
            (unsigned long long)(k1.checkpoints_inline - k0.checkpoints_inline));
    assert_true(k1.wal_bytes - k0.wal_bytes >= (uint64_t)BURST_LOGS * BURST_WAL_MAX); /* it could have grown */
    assert_true(st.st_size <= BURST_WAL_MAX);
    assert_true(k1.checkpoints - k1.checkpoints_inline > k0.checkpoints - k0.checkpoints_inline); /* off the commits */
    gm_store_close(s);
    /* closed and reopened: every row is there */
    sqlite3 *db = raw_db("burst.db");
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM nonces WHERE scope = 'burst'", -1, &q, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), requests * BURST_ROWS);
    sqlite3_finalize(q);
    sqlite3_close(db);
    int done[BURST_THREADS];
    for (int i = 0; i < BURST_THREADS; i++)
        done[i] = w[i].done;
    burst_check_rows("burst.db", done);
}

/* SIGKILL while the store's checkpointer works: a child process runs the burst and reports
 * each request whose commit returned; once its log was restarted (a checkpoint inside a
 * commit) and the thread ran several passes, it is killed in the middle of its writes. The
 * database passes integrity_check and holds every request the child was told was stored. */
static void test_sigkill_during_checkpoints_loses_no_answered_request(void **state)
{
    (void)state;
    if (tk_store_pg())
        skip();
    char path[512];
    db_path(path, sizeof path, "burst-kill.db");
    burst_db_create(path);
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* the child: the burst until killed (or the log is full enough: then the test fails) */
        close(p[0]);
        gm_store_t *s = NULL;
        if (gm_store_open(&s, path, NULL) != 0)
            _exit(2);
        burst_worker w[BURST_THREADS];
        _exit(burst_run(s, w, p[1]) != 0 ? 3 : 0);
    }
    close(p[1]);
    int done[BURST_THREADS] = {0}, killed = 0;
    burst_report r;
    size_t got = 0;
    for (ssize_t n; (n = read(p[0], (char *)&r + got, sizeof r - got)) > 0;) {
        if ((got += (size_t)n) < sizeof r)
            continue;
        got = 0;
        if (r.worker >= 0 && r.worker < BURST_THREADS && r.k + 1 > done[r.worker])
            done[r.worker] = r.k + 1;
        else if (r.worker == -1 && !killed && r.inline_ >= 1 && r.by_thread >= 3)
            killed = kill(pid, SIGKILL) == 0;
    }
    close(p[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(killed);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    int requests = 0;
    for (int i = 0; i < BURST_THREADS; i++)
        requests += done[i];
    fprintf(stderr, "killed after %d requests answered as stored\n", requests);
    sqlite3 *db = raw_db("burst-kill.db");
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(q, 0), "ok");
    sqlite3_finalize(q);
    sqlite3_close(db);
    burst_check_rows("burst-kill.db", done);
}

/* SQLite's temporary files open in this process (they are removed at once, so only the
 * descriptors show them: "/.../etilqs_... (deleted)"). */
static int sqlite_temp_files_open(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char link[320], to[1024];
        snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
        ssize_t len = readlink(link, to, sizeof to - 1);
        if (len > 0) {
            to[len] = '\0';
            n += strstr(to, "etilqs_") != NULL;
        }
    }
    closedir(d);
    return n;
}

/* A request that changes many pages of a batch keeps their old images (its SAVEPOINT's
 * statement journal) in memory: SQLite would otherwise spill them past 64 KiB into a new
 * temporary file, created and removed inside the batch, with writes to it, every time. */
static void test_request_savepoint_journal_stays_in_memory(void **state)
{
    (void)state;
    if (tk_store_pg()) /* SQLite's own files */
        skip();
    gm_store_t *s = open_db("stmt-journal.db");
    char n[64];
    /* ~75 leaf pages of nonces (one transaction, one sync) */
    assert_int_equal(gm_store_begin(s, NULL), 0);
    for (int i = 0; i < 5000; i++) {
        snprintf(n, sizeof n, "%05d-0000-4000-8000-000000000000", i);
        assert_int_equal(gm_store_nonce_record(s, "sj", n, 10 + i, NULL), 0);
    }
    assert_int_equal(gm_store_commit(s, NULL), 0);
    /* one request touching every one of those pages: ~300 KiB of old page images */
    assert_int_equal(gm_store_begin(s, NULL), 0);
    for (int i = 0; i < 5000; i += 50) {
        snprintf(n, sizeof n, "%05d-1111-4000-8000-000000000000", i);
        assert_int_equal(gm_store_nonce_record(s, "sj", n, 10 + i, NULL), 0);
    }
    assert_int_equal(sqlite_temp_files_open(), 0);
    assert_int_equal(gm_store_commit(s, NULL), 0);
    snprintf(n, sizeof n, "%05d-1111-4000-8000-000000000000", 4950);
    assert_int_equal(gm_store_nonce_record(s, "sj", n, 10, NULL), GM_ECONFLICT); /* it was kept */
    gm_store_close(s);
}

/* A batch whose COMMIT fails fails every request in it, and only those: each request answered
 * ok is stored, each failed one left nothing. The failure is real: a deferred foreign key
 * (checked at COMMIT only) broken by a trigger on the "poison" scope's nonces. */
static void test_failed_batch_commit_fails_every_request_in_it(void **state)
{
    if (tk_store_pg())
        return; /* SQLite's batches; PostgreSQL commits each request itself */
    gm_store_t *s = open_db("gc-poison.db");
    raw_exec("gc-poison.db",
             "CREATE TABLE poison_parent(id INTEGER PRIMARY KEY);"
             "CREATE TABLE poison(p INTEGER REFERENCES poison_parent(id) DEFERRABLE INITIALLY DEFERRED);"
             "CREATE TRIGGER poison_nonce AFTER INSERT ON nonces WHEN NEW.scope = 'poison'"
             " BEGIN INSERT INTO poison VALUES (1); END;");
    gm_error err = {0};
    /* alone: the request's commit reports the failure, and nothing of it stays */
    assert_int_equal(gm_store_begin(s, &err), 0);
    assert_int_equal(gm_store_nonce_record(s, "poison", "alone", 10, &err), 0);
    assert_int_equal(gm_store_commit(s, &err), GM_EDB);
    assert_non_null(strstr(err.msg, "FOREIGN KEY"));
    /* the handle goes on */
    assert_int_equal(gm_store_begin(s, &err), 0);
    assert_int_equal(gm_store_nonce_record(s, "gc", "after", 10, &err), 0);
    assert_int_equal(gm_store_commit(s, &err), 0);
    /* in batches: request 4 of every worker is poison; others sharing its batch fail with it */
    gc_worker w[GC_THREADS];
    poison_at = 4;
    assert_int_equal(gm_store_nonce_record(s, "gc", "replayed", 10, NULL), 0);
    int failed = gc_run(s, w);
    for (int i = 0; i < GC_THREADS; i++)
        assert_int_equal(w[i].rc[poison_at], GM_EDB);
    assert_true(failed >= GC_THREADS);
    fprintf(stderr, "poisoned batches failed %d requests, %d of them poison\n", failed, GC_THREADS);
    raw_exec("gc-poison.db", "DROP TRIGGER poison_nonce");
    gc_check(s, w);
    assert_int_equal(gm_store_nonce_record(s, "poison", "alone", 10, NULL), 0);
    poison_at = -1;
    gm_store_close(s);
}

typedef struct notified {
    gm_store_waiter w;
    atomic_int calls;
} notified;

static void on_durable(gm_store_waiter *w)
{
    atomic_fetch_add(&((notified *)w->arg)->calls, 1);
}

/* Called back once, from the store's thread (bounded wait: a waiter never called fails). */
static void wait_called(notified *n)
{
    for (int spins = 0; atomic_load(&n->calls) == 0; spins++) {
        if (spins > 60 * 500)
            fail_msg("the waiter was never called back");
        usleep(2000);
    }
    assert_int_equal(atomic_load(&n->calls), 1);
}

/* A deferred commit is not waited for by its thread: while a sync runs (held here) its waiter
 * is queued, and the store's syncer thread calls it back once the commit is on disk, or with
 * the error of a batch whose COMMIT failed (nothing of it stored). */
static void test_deferred_commit_is_called_back_once_durable_or_failed(void **state)
{
    if (tk_store_pg())
        return; /* SQLite's group commit; PostgreSQL commits each request itself */
    gm_store_t *s = open_db("gc-notify.db");
    raw_exec("gc-notify.db",
             "CREATE TABLE poison_parent(id INTEGER PRIMARY KEY);"
             "CREATE TABLE poison(p INTEGER REFERENCES poison_parent(id) DEFERRABLE INITIALLY DEFERRED);"
             "CREATE TRIGGER poison_nonce AFTER INSERT ON nonces WHEN NEW.scope = 'poison'"
             " BEGIN INSERT INTO poison VALUES (1); END;");
    gm_error err = {0};
    notified ok = {.w = {.done = on_durable}}, bad = {.w = {.done = on_durable}};
    ok.w.arg = &ok;
    bad.w.arg = &bad;
    assert_int_equal(gm_store_durable_notify(s, &ok.w, &err), 0); /* nothing seen: nothing to wait for */

    assert_int_equal(gm_store_hold_syncs(s, 1, &err), 0);
    assert_int_equal(gm_store_begin(s, &err), 0);
    assert_int_equal(gm_store_nonce_record(s, "gc", "deferred", 10, &err), 0);
    assert_int_equal(gm_store_commit_deferred(s, &err), 0);
    assert_int_equal(gm_store_durable_notify(s, &ok.w, &err), 1);
    assert_int_equal(atomic_load(&ok.calls), 0); /* its sync is held */
    assert_int_equal(gm_store_hold_syncs(s, 0, &err), 0);
    wait_called(&ok);
    assert_int_equal(ok.w.rc, 0);
    assert_int_equal(gm_store_nonce_record(s, "gc", "deferred", 10, NULL), GM_ECONFLICT);

    assert_int_equal(gm_store_hold_syncs(s, 1, &err), 0);
    assert_int_equal(gm_store_begin(s, &err), 0);
    assert_int_equal(gm_store_nonce_record(s, "poison", "deferred", 10, &err), 0);
    assert_int_equal(gm_store_commit_deferred(s, &err), 0); /* the batch's COMMIT has not run yet */
    assert_int_equal(gm_store_durable_notify(s, &bad.w, &err), 1);
    assert_int_equal(gm_store_hold_syncs(s, 0, &err), 0);
    wait_called(&bad);
    assert_int_equal(bad.w.rc, GM_EDB);
    assert_non_null(strstr(bad.w.err.msg, "FOREIGN KEY"));
    raw_exec("gc-notify.db", "DROP TRIGGER poison_nonce");
    assert_int_equal(gm_store_nonce_record(s, "poison", "deferred", 10, NULL), 0); /* nothing of it stayed */
    gm_store_close(s);
}

static int count_certs(const gm_store_cert *c, void *ctx)
{
    (void)c;
    (*(int *)ctx)++;
    return 0;
}

typedef struct nested {
    gm_store_t *s;
    int outer, inner;
} nested;

static int walk_again(const gm_store_cert *c, void *ctx)
{
    nested *n = ctx;
    (void)c;
    n->outer++;
    return gm_store_certs_foreach(n->s, NULL, count_certs, &n->inner, NULL);
}

/* A query run again while the same query is walking (its cached statement busy) gets a
 * statement of its own, finalized after (it used to recurse until the stack ran out). */
static void test_same_query_nested_in_its_own_walk(void **state)
{
    gm_store_t *s = open_db("nested.db");
    gm_store_cert a = make_cert("00000000-0000-4000-8000-0000000000a1", "pkA");
    gm_store_cert b = make_cert("00000000-0000-4000-8000-0000000000a2", "pkB");
    assert_int_equal(gm_store_cert_add(s, &a, NULL), 0);
    assert_int_equal(gm_store_cert_add(s, &b, NULL), 0);
    nested n = {.s = s};
    assert_int_equal(gm_store_certs_foreach(s, NULL, walk_again, &n, NULL), 0);
    assert_int_equal(n.outer, 2);
    assert_int_equal(n.inner, 4);
    gm_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migrations_reach_current_version_once),
        cmocka_unit_test(test_newer_schema_is_refused),
        cmocka_unit_test(test_heartbeat_is_recorded_and_listed),
        cmocka_unit_test(test_schema_3_database_gains_heartbeats),
        cmocka_unit_test(test_invite_consumed_once_then_conflict_or_expired),
        cmocka_unit_test(test_token_consumed_exactly_once_by_concurrent_connections),
        cmocka_unit_test(test_token_consumed_exactly_once_through_a_shared_handle),
        cmocka_unit_test(test_crl_sequence_only_goes_up),
        cmocka_unit_test(test_invites_foreach_lists_only_outstanding_oldest_first),
        cmocka_unit_test(test_crls_foreach_lists_history_newest_first),
        cmocka_unit_test(test_revocations_keep_order_and_refuse_duplicates),
        cmocka_unit_test(test_issuance_log_appends_in_order),
        cmocka_unit_test(test_certs_foreach_filters_by_key_and_can_stop),
        cmocka_unit_test(test_committed_state_survives_reopen_and_rollback_leaves_nothing),
        cmocka_unit_test(test_nonces_replay_per_scope_and_prune),
        cmocka_unit_test(test_key_block_and_unblock),
        cmocka_unit_test(test_agents_put_list_by_exact_capability_and_delete),
        cmocka_unit_test(test_revocations_of_expired_certificates_leave_the_list),
        cmocka_unit_test(test_unknown_backend_location_is_refused),
        cmocka_unit_test(test_unreachable_postgresql_is_a_clear_error_without_password),
        cmocka_unit_test(test_crl_sequence_taken_in_transactions_never_repeats),
        cmocka_unit_test(test_nonce_accepted_once_across_connections),
        cmocka_unit_test(test_conflict_inside_a_transaction_keeps_it_usable),
        cmocka_unit_test(test_refused_request_in_a_batch_is_undone_alone),
        cmocka_unit_test(test_store_counters_report_sync_time_wal_bytes_and_checkpoints),
        cmocka_unit_test(test_wal_stays_bounded_under_a_burst_that_never_pauses),
        cmocka_unit_test(test_checkpointer_failure_is_logged_and_commits_checkpoint_instead),
        cmocka_unit_test(test_sigkill_during_checkpoints_loses_no_answered_request),
        cmocka_unit_test(test_request_savepoint_journal_stays_in_memory),
        cmocka_unit_test(test_failed_batch_commit_fails_every_request_in_it),
        cmocka_unit_test(test_deferred_commit_is_called_back_once_durable_or_failed),
        cmocka_unit_test(test_same_query_nested_in_its_own_walk),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
