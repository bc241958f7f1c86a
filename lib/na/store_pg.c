/* The PostgreSQL backend of the NA's store (lib/na/store.h, table in lib/na/store_backend.h),
 * on libpq: the only file that calls PQ*. Several NA processes (replicas) may share one
 * database, so every invariant is kept by the database, not by a process:
 * - a transaction (gm_store_begin) locks the one row of na_state FOR UPDATE before anything
 *   else, so the NA's read-check-write sequences run one at a time across every replica, as
 *   SQLite's BEGIN IMMEDIATE does on one file (READ COMMITTED: each statement after the lock
 *   sees everything committed before it);
 * - an invite is consumed by one UPDATE ... WHERE used = 0 RETURNING, which a second
 *   consumer re-evaluates after the first commits, so exactly one wins;
 * - nonces, certificates, revocations are primary or unique keys (INSERT ... ON CONFLICT DO
 *   NOTHING, so an expected conflict does not abort the caller's transaction);
 * - the CRL sequence is na_state.crl_sequence, raised in the statement that stores the CRL
 *   (WHERE crl_sequence < new), in the transaction that recorded the revocation; the same
 *   statement NOTIFYs gm_crl, delivered to other replicas when it commits.
 * One connection per handle, guarded by a recursive mutex like the SQLite backend's. A
 * connection found broken outside a transaction is reset before the next statement, so the
 * NA recovers by itself when the database comes back. Parameterized queries only. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>
#include <sodium.h>

#include "gm/genesis.h"
#include "store_backend.h"

typedef struct pg_store {
    gm_store_t base; /* first: the handle the NA holds */
    PGconn *conn;
    pthread_mutex_t lock;
    int in_tx;
    char *location;  /* the connection URL, for reconnecting (may hold a password: wiped at close) */
    char where[512]; /* the location without its password, for messages */
    /* the CRL watch's own connection (LISTEN gm_crl), opened on first wait */
    PGconn *listen_conn;
    pthread_mutex_t listen_lock;
} pg_store;

/* Serializes migrations of concurrently starting replicas (a transaction-scoped advisory lock). */
#define PG_MIGRATION_LOCK 0x676d6e61 /* "gmna" */
/* A statement failing with a serialization failure or deadlock outside a transaction is retried. */
#define PG_RETRIES 5

typedef struct migration {
    int version;
    const char *what;
    const char *sql;
} migration;

/* The same numbered steps as the SQLite backend's (lib/na/store_sqlite.c), in PostgreSQL's
 * types. Step 1 also holds na_state: the writer's lock row and the CRL sequence. Never edit a
 * released step: add one (and raise GM_STORE_SCHEMA_VERSION). */
static const migration migrations[] = {
    {1, "the NA's records",
    "CREATE TABLE na_state("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " crl_sequence BIGINT NOT NULL);"
    "INSERT INTO na_state(id, crl_sequence) VALUES (1, -1);"
    "CREATE TABLE invites("
    " seq BIGSERIAL UNIQUE,"
    " token_hash TEXT PRIMARY KEY,"
    " roles TEXT NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " expires_at BIGINT NOT NULL,"
    " max_validity_hours BIGINT NOT NULL,"
    " used INTEGER NOT NULL DEFAULT 0,"
    " used_at BIGINT,"
    " used_by TEXT);"
    "CREATE TABLE certificates("
    " seq BIGSERIAL UNIQUE,"
    " cert_id TEXT PRIMARY KEY,"
    " node_public_key TEXT NOT NULL,"
    " roles TEXT NOT NULL,"
    " issued_at BIGINT NOT NULL,"
    " expires_at BIGINT NOT NULL,"
    " max_validity_hours BIGINT NOT NULL,"
    " doc TEXT NOT NULL);"
    "CREATE INDEX certificates_by_key ON certificates(node_public_key);"
    "CREATE TABLE revocations("
    " seq BIGSERIAL PRIMARY KEY,"
    " cert_id TEXT NOT NULL UNIQUE,"
    " revoked_at TEXT NOT NULL,"
    " reason TEXT NOT NULL,"
    " issuer TEXT NOT NULL);"
    "CREATE TABLE crls("
    " sequence BIGINT PRIMARY KEY,"
    " doc TEXT NOT NULL,"
    " created_at BIGINT NOT NULL);"
    "CREATE TABLE blocked_keys("
    " node_public_key TEXT PRIMARY KEY,"
    " reason TEXT NOT NULL,"
    " blocked_at BIGINT NOT NULL);"},
    {2, "persisted request nonces, and the index behind the invites-outstanding gauge",
    "CREATE TABLE nonces("
    " scope TEXT NOT NULL,"
    " nonce TEXT NOT NULL,"
    " seen_at BIGINT NOT NULL,"
    " PRIMARY KEY(scope, nonce));"
    "CREATE INDEX nonces_by_time ON nonces(seen_at);"
    "CREATE INDEX invites_open ON invites(used, expires_at);"},
    {3, "the agent registry (lib/na/na_agents.c); capabilities as \",a.b,c.d,\" for exact tag match",
    "CREATE TABLE agents("
    " agent_id TEXT PRIMARY KEY,"
    " node_public_key TEXT NOT NULL,"
    " capabilities TEXT NOT NULL,"
    " registered_at BIGINT NOT NULL,"
    " expires_at BIGINT NOT NULL,"
    " doc TEXT NOT NULL);"
    "CREATE INDEX agents_by_key ON agents(node_public_key);"},
    {4, "the last heartbeat of each certificate (POST /heartbeat, the \"last seen\" of admin nodes)",
    "ALTER TABLE certificates ADD COLUMN last_heartbeat BIGINT;"
    "ALTER TABLE certificates ADD COLUMN heartbeat_status TEXT;"},
    {5, "the issuance log (a Merkle tree of every certificate issued, renewed or revoked)",
    "CREATE TABLE issuance_log("
    " idx BIGINT PRIMARY KEY,"
    " kind TEXT NOT NULL,"
    " cert_id TEXT NOT NULL,"
    " entry TEXT NOT NULL,"
    " leaf_hash BYTEA NOT NULL);"
    "CREATE INDEX issuance_log_by_cert ON issuance_log(cert_id, kind);"},
};

_Static_assert(sizeof migrations / sizeof migrations[0] == GM_STORE_SCHEMA_VERSION,
               "GM_STORE_SCHEMA_VERSION must equal the number of migrations");

static void lock(pg_store *s)
{
    pthread_mutex_lock(&s->lock);
}

static void unlock(pg_store *s)
{
    pthread_mutex_unlock(&s->lock);
}

/* libpq's message without its trailing newline. */
static const char *pq_msg(PGconn *c, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", c ? PQerrorMessage(c) : "out of memory");
    size_t n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return buf;
}

/* The location as it may be shown: "user:password@" loses the password, "password=..." its value. */
static void redact(const char *location, char *out, size_t cap)
{
    snprintf(out, cap, "%s", location);
    char *scheme = strstr(out, "://");
    if (scheme) {
        char *auth = scheme + 3, *at = strchr(auth, '@'), *slash = strchr(auth, '/');
        char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
        if (at && (!slash || at < slash) && colon)
            memmove(colon, at, strlen(at) + 1);
    }
    char *pw = strstr(out, "password=");
    if (pw) {
        char *end = strchr(pw, '&');
        pw += 9;
        if (end)
            memmove(pw, end, strlen(end) + 1);
        else
            *pw = '\0';
    }
}

static int pg_accepts(const char *location)
{
    return location && (!strncmp(location, "postgresql://", 13) || !strncmp(location, "postgres://", 11));
}

/* The library never prints: the server's notices are dropped (libpq's default writes to stderr). */
static void drop_notice(void *arg, const char *message)
{
    (void)arg, (void)message;
}

/* Connect (keywords before dbname are defaults the URL may override). */
static PGconn *connect_to(const char *location)
{
    static const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *vals[] = {"10", "genesis-mesh-na", location, NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (c)
        PQsetNoticeProcessor(c, drop_notice, NULL);
    return c;
}

/* The connection is usable, or reset when it is not and no transaction is open on it. */
static int ensure_conn(pg_store *s, gm_error *err)
{
    char m[512];
    if (PQstatus(s->conn) == CONNECTION_OK)
        return 0;
    if (s->in_tx)
        return gm_error_set(err, GM_EDB, "database %s: the connection was lost during a transaction: %s", s->where,
                            pq_msg(s->conn, m, sizeof m));
    PQreset(s->conn);
    if (PQstatus(s->conn) != CONNECTION_OK)
        return gm_error_set(err, GM_EDB, "database %s is unreachable: %s", s->where, pq_msg(s->conn, m, sizeof m));
    return 0;
}

/* Run sql with n text parameters; on success *res (caller PQclears) holds the rows. A
 * serialization failure or deadlock outside a transaction is retried; within one it is
 * GM_EDB and the caller rolls back. */
static int run(pg_store *s, const char *sql, int n, const char *const *params, PGresult **res, const char *what,
               gm_error *err)
{
    *res = NULL;
    for (int attempt = 0;; attempt++) {
        int rc = ensure_conn(s, err);
        if (rc != 0)
            return rc;
        PGresult *r = PQexecParams(s->conn, sql, n, NULL, params, NULL, NULL, 0);
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
            *res = r;
            return 0;
        }
        const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
        int transient = state && (!strcmp(state, "40001") || !strcmp(state, "40P01"));
        if (transient && !s->in_tx && attempt < PG_RETRIES) {
            PQclear(r);
            continue;
        }
        char m[512];
        if (state && !strcmp(state, "23505"))
            rc = gm_error_set(err, GM_ECONFLICT, "%s: already recorded", what);
        else
            rc = gm_error_set(err, GM_EDB, "database %s: %s: %s", s->where, what,
                              pq_msg(s->conn, m, sizeof m));
        PQclear(r);
        return rc;
    }
}

/* Run sql that returns no rows we need; *changed (optional) gets the rows it touched. */
static int run_cmd(pg_store *s, const char *sql, int n, const char *const *params, int64_t *changed, const char *what,
                   gm_error *err)
{
    PGresult *r;
    int rc = run(s, sql, n, params, &r, what, err);
    if (rc == 0 && changed) {
        const char *t = PQcmdTuples(r);
        *changed = t && *t ? strtoll(t, NULL, 10) : 0;
    }
    PQclear(r);
    return rc;
}

typedef struct i64s {
    char v[24];
} i64s;

static i64s num(int64_t v)
{
    i64s s;
    snprintf(s.v, sizeof s.v, "%lld", (long long)v);
    return s;
}

static int64_t col_i64(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static void col_copy(const PGresult *r, int row, int col, char *out, size_t cap)
{
    snprintf(out, cap, "%s", PQgetvalue(r, row, col));
}

static char *col_dup(const PGresult *r, int row, int col)
{
    return strdup(PQgetvalue(r, row, col));
}

static int read_version(pg_store *s, int *version, gm_error *err)
{
    PGresult *r;
    int rc = run(s, "SELECT COALESCE(MAX(version), 0) FROM schema_version", 0, NULL, &r, "reading schema_version",
                 err);
    if (rc == 0)
        *version = (int)col_i64(r, 0, 0);
    PQclear(r);
    return rc;
}

/* Several statements, no parameters (the migrations). */
static int exec_script(pg_store *s, const char *sql, gm_error *err)
{
    char m[512];
    PGresult *r = PQexec(s->conn, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    if (!ok)
        return gm_error_set(err, GM_EDB, "database %s: %s", s->where, pq_msg(s->conn, m, sizeof m));
    return 0;
}

static int migrate(pg_store *s, gm_error *err)
{
    int rc, version = 0;
    char key[24];
    snprintf(key, sizeof key, "%d", PG_MIGRATION_LOCK);
    const char *p[] = {key};
    if ((rc = exec_script(s, "BEGIN", err)) != 0)
        return rc;
    rc = run_cmd(s, "SELECT pg_advisory_xact_lock($1::bigint)", 1, p, NULL, "locking for migration", err);
    if (rc == 0)
        rc = exec_script(s, "CREATE TABLE IF NOT EXISTS schema_version("
                            " version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)", err);
    if (rc == 0)
        rc = read_version(s, &version, err);
    if (rc == 0 && version > GM_STORE_SCHEMA_VERSION)
        rc = gm_error_set(err, GM_EDB,
                          "database %s has schema version %d, newer than this program supports (%d); "
                          "run a newer genesis-mesh",
                          s->where, version, GM_STORE_SCHEMA_VERSION);
    for (int v = version + 1; rc == 0 && v <= GM_STORE_SCHEMA_VERSION; v++) {
        const migration *m = &migrations[v - 1];
        if (m->version != v)
            rc = gm_error_set(err, GM_EINTERNAL, "store migration %d is listed in place of step %d", m->version, v);
        else if ((rc = exec_script(s, m->sql, err)) != 0)
            gm_error_prefix(err, "migration %d (%s)", v, m->what);
        if (rc != 0)
            break;
        i64s ver = num(v);
        const char *vp[] = {ver.v};
        rc = run_cmd(s, "INSERT INTO schema_version(version, applied_at) VALUES ($1::int,"
                        " extract(epoch from now())::bigint)", 1, vp, NULL, "recording a migration", err);
    }
    if (rc == 0)
        return exec_script(s, "COMMIT", err);
    PQclear(PQexec(s->conn, "ROLLBACK"));
    return rc;
}

static void pg_close(gm_store_t *gs);

static int pg_open(gm_store_t **out, const char *location, gm_error *err)
{
    *out = NULL;
    pg_store *s = calloc(1, sizeof *s);
    if (!s || !(s->location = strdup(location))) {
        free(s);
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    }
    s->base.ops = &gm_store_backend_pg;
    redact(location, s->where, sizeof s->where);
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&s->lock, &attr);
    pthread_mutexattr_destroy(&attr);
    pthread_mutex_init(&s->listen_lock, NULL);
    char m[512];
    int rc = 0;
    s->conn = connect_to(location);
    if (PQstatus(s->conn) != CONNECTION_OK)
        rc = gm_error_set(err, GM_EDB, "cannot connect to database %s: %s", s->where, pq_msg(s->conn, m, sizeof m));
    /* a lock another connection holds is waited for as long as SQLite's busy_timeout */
    if (rc == 0) {
        i64s ms = num(GM_STORE_BUSY_TIMEOUT_MS);
        const char *p[] = {ms.v};
        rc = run_cmd(s, "SELECT set_config('lock_timeout', $1, false)", 1, p, NULL, "configuring the session", err);
    }
    if (rc == 0)
        rc = migrate(s, err);
    if (rc != 0) {
        pg_close(&s->base);
        return rc;
    }
    *out = &s->base;
    return 0;
}

static void pg_close(gm_store_t *gs)
{
    pg_store *s = (pg_store *)gs;
    if (!s)
        return;
    if (s->conn) {
        if (s->in_tx)
            PQclear(PQexec(s->conn, "ROLLBACK"));
        PQfinish(s->conn);
    }
    if (s->listen_conn)
        PQfinish(s->listen_conn);
    if (s->location) {
        sodium_memzero(s->location, strlen(s->location));
        free(s->location);
    }
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->listen_lock);
    free(s);
}

static int pg_schema_version(gm_store_t *gs, int *version, gm_error *err)
{
    pg_store *s = (pg_store *)gs;
    lock(s);
    int rc = read_version(s, version, err);
    unlock(s);
    return rc;
}

static int pg_begin(gm_store_t *gs, gm_error *err)
{
    pg_store *s = (pg_store *)gs;
    lock(s);
    if (s->in_tx) {
        unlock(s);
        return gm_error_set(err, GM_EINTERNAL, "database transaction already open on this handle");
    }
    PGresult *r;
    int rc = run(s, "BEGIN ISOLATION LEVEL READ COMMITTED", 0, NULL, &r, "beginning a transaction", err);
    PQclear(r);
    if (rc == 0) {
        s->in_tx = 1;
        /* the writer's lock: held until commit or rollback, by one transaction of all replicas */
        rc = run(s, "SELECT crl_sequence FROM na_state WHERE id = 1 FOR UPDATE", 0, NULL, &r,
                 "taking the writer's lock", err);
        if (rc == 0 && PQntuples(r) != 1)
            rc = gm_error_set(err, GM_EDB, "database %s: the na_state row is missing", s->where);
        PQclear(r);
        if (rc != 0) {
            PQclear(PQexec(s->conn, "ROLLBACK"));
            s->in_tx = 0;
        }
    }
    if (rc != 0)
        unlock(s);
    return rc; /* on success the lock stays held until commit or rollback */
}

static int pg_commit(gm_store_t *gs, gm_error *err)
{
    pg_store *s = (pg_store *)gs;
    lock(s);
    if (!s->in_tx) {
        unlock(s);
        return gm_error_set(err, GM_EINTERNAL, "commit without a transaction");
    }
    char m[512];
    int rc = 0;
    PGresult *r = PQexec(s->conn, "COMMIT");
    /* COMMIT of a transaction that failed earlier answers ROLLBACK: nothing was stored */
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        rc = gm_error_set(err, GM_EDB, "database %s: commit: %s", s->where, pq_msg(s->conn, m, sizeof m));
    else if (strcmp(PQcmdStatus(r), "COMMIT") != 0)
        rc = gm_error_set(err, GM_EDB, "database %s: the transaction failed and was rolled back", s->where);
    PQclear(r);
    s->in_tx = 0;
    unlock(s);
    unlock(s); /* the one taken by gm_store_begin */
    return rc;
}

static void pg_rollback(gm_store_t *gs)
{
    pg_store *s = (pg_store *)gs;
    lock(s);
    if (s->in_tx) {
        if (PQstatus(s->conn) == CONNECTION_OK)
            PQclear(PQexec(s->conn, "ROLLBACK"));
        s->in_tx = 0;
        unlock(s);
    }
    unlock(s);
}

/* ---- nonces ---- */

static int pg_nonce_record(gm_store_t *gs, const char *scope, const char *nonce, int64_t now, gm_error *err)
{
    pg_store *s = (pg_store *)gs;
    i64s t = num(now);
    const char *p[] = {scope, nonce, t.v};
    int64_t n = 0;
    lock(s);
    int rc = run_cmd(s,
                     "INSERT INTO nonces(scope, nonce, seen_at) VALUES ($1, $2, $3::bigint)"
                     " ON CONFLICT (scope, nonce) DO NOTHING",
                     3, p, &n, "nonce", err);
    unlock(s);
    if (rc == 0 && n != 1)
        rc = gm_error_set(err, GM_ECONFLICT, "nonce %s was already used (replayed request)", nonce);
    return rc;
}

static int pg_nonce_prune(gm_store_t *gs, int64_t older_than, gm_error *err)
{
    pg_store *s = (pg_store *)gs;
    i64s t = num(older_than);
    const char *p[] = {t.v};
    lock(s);
    int rc = run_cmd(s, "DELETE FROM nonces WHERE seen_at < $1::bigint", 1, p, NULL, "pruning nonces", err);
    unlock(s);
    return rc;
}

/* ---- invites ---- */

static int pg_invite_add(gm_store_t *gs, const char *token_hash, const char *roles_json, int64_t created_at,
                         int64_t expires_at, int64_t max_validity_hours, gm_error *err)
{
    pg_store *s = (pg_store *)gs;
    i64s c = num(created_at), e = num(expires_at), m = num(max_validity_hours);
    const char *p[] = {token_hash, roles_json, c.v, e.v, m.v};
    int64_t n = 0;
    lock(s);
    int rc = run_cmd(s,
                     "INSERT INTO invites(token_hash, roles, created_at, expires_at, max_validity_hours)"
                     " VALUES ($1, $2, $3::bigint, $4::bigint, $5::bigint) ON CONFLICT (token_hash) DO NOTHING",
                     5, p, &n, "invite", err);
    unlock(s);
    if (rc == 0 && n != 1)
        rc = gm_error_set(err, GM_ECONFLICT, "invite: already recorded");
    return rc;
}

#define INVITE_COLUMNS                                                                                            \
    "token_hash, roles, created_at, expires_at, max_validity_hours, used, COALESCE(used_at, 0),"                 \
    " COALESCE(used_by, '')"

/* Fill inv from an INVITE_COLUMNS row; roles_json is borrowed from the result when borrow is set. */
static void invite_row(const PGresult *r, int row, gm_store_invite *inv, int borrow)
{
    memset(inv, 0, sizeof *inv);
    col_copy(r, row, 0, inv->token_hash, sizeof inv->token_hash);
    inv->roles_json = borrow ? PQgetvalue(r, row, 1) : col_dup(r, row, 1);
    inv->created_at = col_i64(r, row, 2);
    inv->expires_at = col_i64(r, row, 3);
    inv->max_validity_hours = col_i64(r, row, 4);
    inv->used = (int)col_i64(r, row, 5);
    inv->used_at = col_i64(r, row, 6);
    col_copy(r, row, 7, inv->used_by, sizeof inv->used_by);
}

static int pg_invite_get(gm_store_t *gs, const char *token_hash, gm_store_invite *inv, gm_error *err)
{
    pg_store *s = (pg_store *)gs;
    const char *p[] = {token_hash};
    PGresult *r;
    memset(inv, 0, sizeof *inv);
    lock(s);
    int rc = run(s, "SELECT " INVITE_COLUMNS " FROM invites WHERE token_hash = $1", 1, p, &r, "reading invite", err);
    if (rc == 0 && PQntuples(r) == 0)
        rc = gm_error_set(err, GM_ENOTFOUND, "no such invite token");
    if (rc == 0) {
        invite_row(r, 0, inv, 0);
        if (!inv->roles_json)
            rc = gm_error_set(err, GM_ENOMEM, "out of memory");
    }
    PQclear(r);
    unlock(s);
    return rc;
}

static int pg_invite_consume(gm_store_t *gs, const char *token_hash, const char *node_pk_b64, int64_t now,
                             gm_store_invite *inv, gm_error *err)
{
    pg_store *s = (pg_store *)gs;
    i64s t = num(now);
    const char *p[] = {t.v, node_pk_b64, token_hash};
    PGresult *r;
    gm_store_invite tmp;
    memset(&tmp, 0, sizeof tmp);
    lock(s);
    /* a concurrent consumer waits on the row, then re-checks used = 0 and finds it taken */
    int rc = run(s,
                 "UPDATE invites SET used = 1, used_at = $1::bigint, used_by = $2"
                 " WHERE token_hash = $3 AND used = 0 AND expires_at > $1::bigint RETURNING " INVITE_COLUMNS,
                 3, p, &r, "consuming invite", err);
    int won = rc == 0 && PQntuples(r) == 1;
    if (won) {
        invite_row(r, 0, &tmp, 0);
        if (!tmp.roles_json)
            rc = gm_error_set(err, GM_ENOMEM, "out of memory");
    }
    PQclear(r);
    if (rc == 0 && !won) {
        /* Say why it was refused. */
        rc = pg_invite_get(gs, token_hash, &tmp, err);
        if (rc == 0)
            rc = tmp.used ? gm_error_set(err, GM_ECONFLICT, "invite token was already used")
                          : gm_error_set(err, GM_EEXPIRED, "invite token expired");
        gm_store_invite_clear(&tmp);
    }
    unlock(s);
    if (rc == 0) {
        if (inv)
            *inv = tmp;
        else
            gm_store_invite_clear(&tmp);
    }
    return rc;
}

static int pg_invites_outstanding(gm_store_t *gs, int64_t now, int64_t *n, gm_error *err)
{
    pg_store *s = (pg_store *)gs;
    i64s t = num(now);
    const char *p[] = {t.v};
    PGresult *r;
    lock(s);
    int rc = run(s, "SELECT COUNT(*) FROM invites WHERE used = 0 AND expires_at > $1::bigint", 1, p, &r,
                 "counting invites", err);
    if (rc == 0)
        *n = col_i64(r, 0, 0);
    PQclear(r);
    unlock(s);
    return rc;
}

static int pg_invites_foreach(gm_store_t *gs, int64_t now, size_t limit, gm_store_invite_fn fn, void *ctx,
                              gm_error *err)
{
    pg_store *s = (pg_store *)gs;
    i64s t = num(now), l = num(limit > (size_t)INT64_MAX ? INT64_MAX : (int64_t)limit);
    const char *p[] = {t.v, l.v};
    PGresult *r;
    lock(s);
    int rc = run(s,
                 "SELECT " INVITE_COLUMNS " FROM invites WHERE used = 0 AND expires_at > $1::bigint"
                 " ORDER BY created_at, seq LIMIT $2::bigint",
                 2, p, &r, "listing invites", err);
    unlock(s); /* the rows are ours: the callback may use the store */
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        gm_store_invite inv;
        invite_row(r, i, &inv, 1);
        rc = fn(&inv, ctx);
    }
    PQclear(r);
    return rc;
}

/* ---- certificates ---- */

static int pg_cert_add(gm_store_t *gs, const gm_store_cert *c, gm_error *err)
{
    pg_store *s = (pg_store *)gs;
    i64s ia = num(c->issued_at), ea = num(c->expires_at), mv = num(c->max_validity_hours);
    const char *p[] = {c->cert_id, c->node_pk, c->roles_json, ia.v, ea.v, mv.v, c->doc};
    int64_t n = 0;
    lock(s);
    int rc = run_cmd(s,
                     "INSERT INTO certificates(cert_id, node_public_key, roles, issued_at, expires_at,"
                     " max_validity_hours, doc) VALUES ($1, $2, $3, $4::bigint, $5::bigint, $6::bigint, $7)"
                     " ON CONFLICT (cert_id) DO NOTHING",
                     7, p, &n, "certificate", err);
    unlock(s);
    if (rc == 0 && n != 1)
        rc = gm_error_set(err, GM_ECONFLICT, "certificate: already recorded");
    return rc;
}

#define CERT_COLUMNS                                                                                              \
    "SELECT c.cert_id, c.node_public_key, c.roles, c.issued_at, c.expires_at, c.max_validity_hours, c.doc,"      \
    " r.reason, r.revoked_at, c.last_heartbeat, c.heartbeat_status"                                              \
    " FROM certificates c LEFT JOIN revocations r ON r.cert_id = c.cert_id"

/* Fill c from a CERT_COLUMNS row; strings are borrowed from the result when borrow is set. */
static void cert_row(const PGresult *r, int row, gm_store_cert *c, int borrow)
{
    memset(c, 0, sizeof *c);
    col_copy(r, row, 0, c->cert_id, sizeof c->cert_id);
    col_copy(r, row, 1, c->node_pk, sizeof c->node_pk);
    c->issued_at = col_i64(r, row, 3);
    c->expires_at = col_i64(r, row, 4);
    c->max_validity_hours = col_i64(r, row, 5);
    if (borrow) {
        c->roles_json = PQgetvalue(r, row, 2);
        c->doc = PQgetvalue(r, row, 6);
    } else {
        c->roles_json = col_dup(r, row, 2);
        c->doc = col_dup(r, row, 6);
    }
    if (!PQgetisnull(r, row, 7)) {
        c->revoked = 1;
        col_copy(r, row, 7, c->reason, sizeof c->reason);
        col_copy(r, row, 8, c->revoked_at, sizeof c->revoked_at);
    }
    if (!PQgetisnull(r, row, 9)) {
        c->last_heartbeat = col_i64(r, row, 9);
        col_copy(r, row, 10, c->heartbeat_status, sizeof c->heartbeat_status);
    }
}

static int pg_cert_get(gm_store_t *gs, const char *cert_id, gm_store_cert *c, gm_error *err)
{
    pg_store *s = (pg_store *)gs;
    const char *p[] = {cert_id};
    PGresult *r;
    memset(c, 0, sizeof *c);
    lock(s);
    int rc = run(s, CERT_COLUMNS " WHERE c.cert_id = $1", 1, p, &r, "reading certificate", err);
    if (rc == 0 && PQntuples(r) == 0)
        rc = gm_error_set(err, GM_ENOTFOUND, "no certificate %s", cert_id);
    if (rc == 0) {
        cert_row(r, 0, c, 0);
        if (!c->roles_json || !c->doc) {
            gm_store_cert_clear(c);
            rc = gm_error_set(err, GM_ENOMEM, "out of memory");
        }
    }
    PQclear(r);
    unlock(s);
    return rc;
}

static int pg_certs_foreach(gm_store_t *gs, const char *node_pk_b64, gm_store_cert_fn fn, void *ctx, gm_error *err)
{
    pg_store *s = (pg_store *)gs;
    const char *p[] = {node_pk_b64};
    PGresult *r;
    lock(s);
    int rc = node_pk_b64 ? run(s, CERT_COLUMNS " WHERE c.node_public_key = $1 ORDER BY c.seq", 1, p, &r,
                               "listing certificates", err)
                         : run(s, CERT_COLUMNS " ORDER BY c.seq", 0, NULL, &r, "listing certificates", err);
    unlock(s);
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        gm_store_cert c;
        cert_row(r, i, &c, 1);
        rc = fn(&c, ctx);
    }
    PQclear(r);
    return rc;
}

static int pg_cert_count(gm_store_t *gs, int64_t *n, gm_error *err)
{
    pg_store *s = (pg_store *)gs;
    PGresult *r;
    lock(s);
    int rc = run(s, "SELECT COUNT(*) FROM certificates", 0, NULL, &r, "counting certificates", err);
    if (rc == 0)
        *n = col_i64(r, 0, 0);
    PQclear(r);
    unlock(s);
    return rc;
}

static int pg_cert_heartbeat(gm_store_t *gs, const char *cert_id, int64_t now, const char *status, gm_error *err)
{
    pg_store *s = (pg_store *)gs;
    i64s t = num(now);
    const char *p[] = {t.v, status, cert_id};
    int64_t n = 0;
    lock(s);
    int rc = run_cmd(s, "UPDATE certificates SET last_heartbeat = $1::bigint, heartbeat_status = $2 WHERE cert_id = $3",
                     3, p, &n, "heartbeat", err);
    unlock(s);
    if (rc == 0 && n == 0)
        rc = gm_error_set(err, GM_ENOTFOUND, "no certificate %s", cert_id);
    return rc;
}

/* ---- revocations and CRLs ---- */

static int pg_revocation_add(gm_store_t *gs, const char *cert_id, const char *revoked_at, const char *reason,
                             const char *issuer, gm_error *err)
{
    pg_store *s = (pg_store *)gs;
    const char *p[] = {cert_id, revoked_at, reason, issuer};
    int64_t n = 0;
    lock(s);
    int rc = run_cmd(s,
                     "INSERT INTO revocations(cert_id, revoked_at, reason, issuer) VALUES ($1, $2, $3, $4)"
                     " ON CONFLICT (cert_id) DO NOTHING",
                     4, p, &n, "revocation", err);
    unlock(s);
    if (rc == 0 && n != 1)
        rc = gm_error_set(err, GM_ECONFLICT, "certificate %s is already revoked", cert_id);
    return rc;
}

static int pg_revocation_update(gm_store_t *gs, const char *cert_id, const char *revoked_at, const char *reason,
                                gm_error *err)
{
    pg_store *s = (pg_store *)gs;
    const char *p[] = {revoked_at, reason, cert_id};
    int64_t n = 0;
    lock(s);
    int rc = run_cmd(s, "UPDATE revocations SET revoked_at = $1, reason = $2 WHERE cert_id = $3", 3, p, &n,
                     "revocation", err);
    unlock(s);
    if (rc == 0 && n != 1)
        rc = gm_error_set(err, GM_ENOTFOUND, "certificate %s is not revoked", cert_id);
    return rc;
}

static int pg_revocations_json(gm_store_t *gs, int64_t live_at, json_t **entries, gm_error *err)
{
    pg_store *s = (pg_store *)gs;
    i64s skew = num(GM_CLOCK_SKEW_S), live = num(live_at);
    const char *p[] = {skew.v, live.v};
    PGresult *r;
    *entries = NULL;
    json_t *arr = json_array();
    if (!arr)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    lock(s);
    /* A revocation of a certificate the store does not know (none today) is always listed. */
    int rc = run(s,
                 "SELECT r.cert_id, r.revoked_at, r.reason, r.issuer FROM revocations r"
                 " LEFT JOIN certificates c ON c.cert_id = r.cert_id"
                 " WHERE c.expires_at IS NULL OR c.expires_at + $1::bigint >= $2::bigint ORDER BY r.seq",
                 2, p, &r, "listing revocations", err);
    unlock(s);
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        json_t *e = json_pack("{s:s,s:s,s:s,s:s}", "certificate_id", PQgetvalue(r, i, 0), "revoked_at",
                              PQgetvalue(r, i, 1), "reason", PQgetvalue(r, i, 2), "issuer", PQgetvalue(r, i, 3));
        if (!e || json_array_append_new(arr, e) != 0)
            rc = gm_error_set(err, GM_ENOMEM, "out of memory building the revocation list");
    }
    PQclear(r);
    if (rc != 0)
        json_decref(arr);
    else
        *entries = arr;
    return rc;
}

/* ---- the issuance log ---- */

static int pg_log_append(gm_store_t *gs, const char *kind, const char *cert_id, const char *entry,
                         const uint8_t leaf_hash[32], uint64_t *index, gm_error *err)
{
    pg_store *s = (pg_store *)gs;
    char hex[65];
    sodium_bin2hex(hex, sizeof hex, leaf_hash, 32);
    const char *p[] = {kind, cert_id, entry, hex};
    PGresult *r;
    lock(s);
    /* the next index is taken inside the writer's transaction (and is a primary key) */
    int rc = run(s,
                 "INSERT INTO issuance_log(idx, kind, cert_id, entry, leaf_hash)"
                 " SELECT COALESCE(MAX(idx), -1) + 1, $1, $2, $3, decode($4, 'hex') FROM issuance_log RETURNING idx",
                 4, p, &r, "appending to the issuance log", err);
    if (rc == 0 && index)
        *index = (uint64_t)col_i64(r, 0, 0);
    PQclear(r);
    unlock(s);
    return rc;
}

static int pg_log_size(gm_store_t *gs, uint64_t *n, gm_error *err)
{
    pg_store *s = (pg_store *)gs;
    PGresult *r;
    lock(s);
    int rc = run(s, "SELECT COALESCE(MAX(idx), -1) + 1 FROM issuance_log", 0, NULL, &r,
                 "reading the issuance log's size", err);
    if (rc == 0)
        *n = (uint64_t)col_i64(r, 0, 0);
    PQclear(r);
    unlock(s);
    return rc;
}

/* A bytea column as 32 raw bytes (text form "\x<hex>"); 0 if it is that. */
static int col_hash(const PGresult *r, int row, int col, uint8_t out[32])
{
    const char *v = PQgetvalue(r, row, col);
    size_t got = 0;
    if (strncmp(v, "\\x", 2) != 0 || strlen(v) != 66)
        return -1;
    if (sodium_hex2bin(out, 32, v + 2, 64, NULL, &got, NULL) != 0 || got != 32)
        return -1;
    return 0;
}

static int pg_log_hashes(gm_store_t *gs, uint64_t n, uint8_t **hashes, gm_error *err)
{
    pg_store *s = (pg_store *)gs;
    *hashes = NULL;
    if (n == 0)
        return 0;
    if (n > SIZE_MAX / 32 || n > (uint64_t)INT64_MAX)
        return gm_error_set(err, GM_ETOOBIG, "issuance log too large");
    uint8_t *h = malloc((size_t)n * 32);
    if (!h)
        return gm_error_set(err, GM_ENOMEM, "out of memory reading %llu log hashes", (unsigned long long)n);
    i64s lim = num((int64_t)n);
    const char *p[] = {lim.v};
    PGresult *r;
    lock(s);
    int rc = run(s, "SELECT idx, leaf_hash FROM issuance_log WHERE idx < $1::bigint ORDER BY idx", 1, p, &r,
                 "reading the issuance log", err);
    unlock(s);
    uint64_t got = 0;
    for (int i = 0; rc == 0 && i < PQntuples(r); i++, got++)
        if ((uint64_t)col_i64(r, i, 0) != got || col_hash(r, i, 1, h + got * 32) != 0)
            rc = gm_error_set(err, GM_EDB, "database %s: issuance log entry %llu is missing or damaged", s->where,
                              (unsigned long long)got);
    if (rc == 0 && got != n)
        rc = gm_error_set(err, GM_EDB, "database %s: the issuance log has %llu entries, not %llu", s->where,
                          (unsigned long long)got, (unsigned long long)n);
    PQclear(r);
    if (rc != 0)
        free(h);
    else
        *hashes = h;
    return rc;
}

static int pg_log_entry(gm_store_t *gs, uint64_t index, char **entry, uint8_t leaf_hash[32], gm_error *err)
{
    pg_store *s = (pg_store *)gs;
    i64s ix = num(index > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)index);
    const char *p[] = {ix.v};
    PGresult *r;
    *entry = NULL;
    lock(s);
    int rc = run(s, "SELECT entry, leaf_hash FROM issuance_log WHERE idx = $1::bigint", 1, p, &r,
                 "reading an issuance log entry", err);
    unlock(s);
    if (rc == 0 && PQntuples(r) == 0)
        rc = gm_error_set(err, GM_ENOTFOUND, "no issuance log entry %llu", (unsigned long long)index);
    else if (rc == 0 && col_hash(r, 0, 1, leaf_hash) != 0)
        rc = gm_error_set(err, GM_EDB, "database %s: issuance log entry %llu is damaged", s->where,
                          (unsigned long long)index);
    else if (rc == 0 && !(*entry = col_dup(r, 0, 0)))
        rc = gm_error_set(err, GM_ENOMEM, "out of memory");
    PQclear(r);
    return rc;
}

static int pg_log_find(gm_store_t *gs, const char *kind, const char *cert_id, uint64_t *index, gm_error *err)
{
    pg_store *s = (pg_store *)gs;
    const char *p[] = {cert_id, kind};
    PGresult *r;
    lock(s);
    int rc = run(s, "SELECT MIN(idx) FROM issuance_log WHERE cert_id = $1 AND kind = $2", 2, p, &r,
                 "searching the issuance log", err);
    unlock(s);
    if (rc == 0 && PQgetisnull(r, 0, 0))
        rc = gm_error_set(err, GM_ENOTFOUND, "the issuance log has no %s entry for certificate %s", kind, cert_id);
    else if (rc == 0)
        *index = (uint64_t)col_i64(r, 0, 0);
    PQclear(r);
    return rc;
}

static int pg_crl_latest(gm_store_t *gs, uint64_t *sequence, char **doc, gm_error *err)
{
    pg_store *s = (pg_store *)gs;
    PGresult *r;
    if (doc)
        *doc = NULL;
    lock(s);
    int rc = run(s, "SELECT sequence, doc FROM crls ORDER BY sequence DESC LIMIT 1", 0, NULL, &r,
                 "reading the latest CRL", err);
    unlock(s);
    if (rc == 0 && PQntuples(r) == 0)
        rc = gm_error_set(err, GM_ENOTFOUND, "no CRL issued yet");
    if (rc == 0) {
        *sequence = (uint64_t)col_i64(r, 0, 0);
        if (doc && !(*doc = col_dup(r, 0, 1)))
            rc = gm_error_set(err, GM_ENOMEM, "out of memory");
    }
    PQclear(r);
    return rc;
}

static int pg_crl_add(gm_store_t *gs, uint64_t sequence, const char *doc, int64_t now, gm_error *err)
{
    pg_store *s = (pg_store *)gs;
    i64s q = num((int64_t)sequence), t = num(now);
    const char *p[] = {q.v, doc, t.v};
    PGresult *r;
    lock(s);
    /* One statement: the sequence row goes up (under its row lock) or nothing is stored; the
     * NOTIFY reaches the other replicas' CRL watches when the transaction commits. */
    int rc = run(s,
                 "WITH head AS (UPDATE na_state SET crl_sequence = $1::bigint"
                 "  WHERE id = 1 AND crl_sequence < $1::bigint RETURNING crl_sequence),"
                 " ins AS (INSERT INTO crls(sequence, doc, created_at) SELECT crl_sequence, $2, $3::bigint FROM head"
                 "  RETURNING sequence)"
                 " SELECT pg_notify('gm_crl', sequence::text) FROM ins",
                 3, p, &r, "CRL", err);
    if (rc == 0 && PQntuples(r) != 1)
        rc = gm_error_set(err, GM_ECONFLICT, "CRL sequence %llu is not higher than the stored one",
                          (unsigned long long)sequence);
    PQclear(r);
    unlock(s);
    return rc;
}

static int pg_crls_foreach(gm_store_t *gs, size_t limit, gm_store_crl_fn fn, void *ctx, gm_error *err)
{
    pg_store *s = (pg_store *)gs;
    i64s l = num(limit > (size_t)INT64_MAX ? INT64_MAX : (int64_t)limit);
    const char *p[] = {l.v};
    PGresult *r;
    lock(s);
    int rc = run(s, "SELECT sequence, created_at FROM crls ORDER BY sequence DESC LIMIT $1::bigint", 1, p, &r,
                 "listing CRLs", err);
    unlock(s);
    for (int i = 0; rc == 0 && i < PQntuples(r); i++)
        rc = fn((uint64_t)col_i64(r, i, 0), col_i64(r, i, 1), ctx);
    PQclear(r);
    return rc;
}

/* ---- blocked keys ---- */

static int pg_key_block(gm_store_t *gs, const char *node_pk_b64, const char *reason, int64_t now, gm_error *err)
{
    pg_store *s = (pg_store *)gs;
    i64s t = num(now);
    const char *p[] = {node_pk_b64, reason, t.v};
    lock(s);
    int rc = run_cmd(s,
                     "INSERT INTO blocked_keys(node_public_key, reason, blocked_at) VALUES ($1, $2, $3::bigint)"
                     " ON CONFLICT (node_public_key) DO UPDATE SET reason = excluded.reason,"
                     " blocked_at = excluded.blocked_at",
                     3, p, NULL, "blocking key", err);
    unlock(s);
    return rc;
}

static int pg_key_blocked(gm_store_t *gs, const char *node_pk_b64, int *blocked, gm_error *err)
{
    pg_store *s = (pg_store *)gs;
    const char *p[] = {node_pk_b64};
    PGresult *r;
    lock(s);
    int rc = run(s, "SELECT 1 FROM blocked_keys WHERE node_public_key = $1", 1, p, &r, "reading blocked keys", err);
    if (rc == 0)
        *blocked = PQntuples(r) > 0;
    PQclear(r);
    unlock(s);
    return rc;
}

static int pg_key_unblock(gm_store_t *gs, const char *node_pk_b64, gm_error *err)
{
    pg_store *s = (pg_store *)gs;
    const char *p[] = {node_pk_b64};
    int64_t n = 0;
    lock(s);
    int rc = run_cmd(s, "DELETE FROM blocked_keys WHERE node_public_key = $1", 1, p, &n, "unblocking key", err);
    unlock(s);
    if (rc == 0 && n == 0)
        rc = gm_error_set(err, GM_ENOTFOUND, "node key %s is not blocked", node_pk_b64);
    return rc;
}

/* ---- agent descriptors ---- */

static int pg_agent_owner(gm_store_t *gs, const char *agent_id, int64_t live_at, char owner[GM_PK_B64_LEN + 1],
                          gm_error *err)
{
    pg_store *s = (pg_store *)gs;
    i64s t = num(live_at);
    const char *p[] = {agent_id, t.v};
    PGresult *r;
    owner[0] = '\0';
    lock(s);
    int rc = run(s, "SELECT node_public_key FROM agents WHERE agent_id = $1 AND expires_at >= $2::bigint", 2, p, &r,
                 "looking up an agent", err);
    unlock(s);
    if (rc == 0 && PQntuples(r) == 0)
        rc = gm_error_set(err, GM_ENOTFOUND, "no live agent '%s'", agent_id);
    else if (rc == 0)
        col_copy(r, 0, 0, owner, GM_PK_B64_LEN + 1);
    PQclear(r);
    return rc;
}

static int pg_agent_put(gm_store_t *gs, const gm_store_agent *a, gm_error *err)
{
    pg_store *s = (pg_store *)gs;
    /* ",a.b,c.d,": a capability is matched as ",<name>," so one tag never matches inside another */
    size_t cap = 2;
    for (size_t i = 0; i < a->n_caps; i++)
        cap += strlen(a->caps[i]) + 1;
    char *caps = malloc(cap);
    if (!caps)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    size_t off = 0;
    caps[off++] = ',';
    for (size_t i = 0; i < a->n_caps; i++)
        off += (size_t)snprintf(caps + off, cap - off, "%s,", a->caps[i]);
    caps[off] = '\0';
    i64s ra = num(a->registered_at), ea = num(a->expires_at);
    const char *p[] = {a->agent_id, a->node_pk, caps, ra.v, ea.v, a->doc};
    lock(s);
    int rc = run_cmd(s,
                     "INSERT INTO agents(agent_id, node_public_key, capabilities, registered_at, expires_at, doc)"
                     " VALUES ($1, $2, $3, $4::bigint, $5::bigint, $6) ON CONFLICT (agent_id) DO UPDATE SET"
                     " node_public_key = excluded.node_public_key, capabilities = excluded.capabilities,"
                     " registered_at = excluded.registered_at, expires_at = excluded.expires_at, doc = excluded.doc",
                     6, p, NULL, "agent descriptor", err);
    unlock(s);
    free(caps);
    return rc;
}

static int pg_agents_prune(gm_store_t *gs, int64_t expired_before, gm_error *err)
{
    pg_store *s = (pg_store *)gs;
    i64s t = num(expired_before);
    const char *p[] = {t.v};
    lock(s);
    int rc = run_cmd(s, "DELETE FROM agents WHERE expires_at < $1::bigint", 1, p, NULL, "pruning agent descriptors",
                     err);
    unlock(s);
    return rc;
}

static int pg_agents_foreach(gm_store_t *gs, const char *capability, int64_t live_at, size_t limit,
                             gm_store_agent_fn fn, void *ctx, gm_error *err)
{
    pg_store *s = (pg_store *)gs;
    size_t tl = strlen(capability ? capability : "") + 3;
    char *tag = malloc(tl);
    if (!tag)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    snprintf(tag, tl, ",%s,", capability ? capability : "");
    i64s t = num(live_at), l = num(limit > (size_t)INT64_MAX ? INT64_MAX : (int64_t)limit);
    const char *p[] = {t.v, tag, l.v};
    PGresult *r;
    lock(s);
    int rc = run(s,
                 "SELECT node_public_key, doc FROM agents WHERE expires_at >= $1::bigint AND"
                 " ($2 = ',,' OR strpos(capabilities, $2) > 0) ORDER BY agent_id, node_public_key LIMIT $3::bigint",
                 3, p, &r, "listing agents", err);
    unlock(s);
    free(tag);
    for (int i = 0; rc == 0 && i < PQntuples(r); i++)
        rc = fn(PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), ctx);
    PQclear(r);
    return rc;
}

static int pg_agents_delete(gm_store_t *gs, const char *node_pk_b64, const char *agent_id, int64_t *deleted,
                            gm_error *err)
{
    pg_store *s = (pg_store *)gs;
    const char *p[] = {node_pk_b64, agent_id};
    int64_t n = 0;
    lock(s);
    int rc = agent_id ? run_cmd(s, "DELETE FROM agents WHERE node_public_key = $1 AND agent_id = $2", 2, p, &n,
                                "deleting agent descriptors", err)
                      : run_cmd(s, "DELETE FROM agents WHERE node_public_key = $1", 1, p, &n,
                                "deleting agent descriptors", err);
    unlock(s);
    if (deleted)
        *deleted = rc == 0 ? n : 0;
    return rc;
}

/* ---- the CRL watch across replicas ---- */

/* On the watch's own connection (so the handle's lock is never held while waiting): LISTEN
 * once, then wait for a notification on the socket. A lost connection is reopened on the next
 * call, and a change made while it was down is reported as one (a wake-up too many is
 * harmless, one too few is not). */
static int pg_crl_wait(gm_store_t *gs, int timeout_ms, gm_error *err)
{
    pg_store *s = (pg_store *)gs;
    char m[512];
    int rc = 0;
    pthread_mutex_lock(&s->listen_lock);
    if (s->listen_conn && PQstatus(s->listen_conn) != CONNECTION_OK) {
        PQfinish(s->listen_conn);
        s->listen_conn = NULL;
    }
    if (!s->listen_conn) {
        s->listen_conn = connect_to(s->location);
        PGresult *r = PQstatus(s->listen_conn) == CONNECTION_OK ? PQexec(s->listen_conn, "LISTEN gm_crl") : NULL;
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            rc = gm_error_set(err, GM_EDB, "database %s: cannot watch for CRLs: %s", s->where,
                              pq_msg(s->listen_conn, m, sizeof m));
        PQclear(r);
        if (rc != 0) {
            PQfinish(s->listen_conn);
            s->listen_conn = NULL;
        }
        pthread_mutex_unlock(&s->listen_lock);
        return rc; /* 0: (re)listening now; whatever was published before is news to the caller */
    }
    PGnotify *n = NULL;
    struct pollfd pfd = {.fd = PQsocket(s->listen_conn), .events = POLLIN};
    if (PQconsumeInput(s->listen_conn) && !(n = PQnotifies(s->listen_conn))) {
        int w = poll(&pfd, 1, timeout_ms);
        if (w < 0 && errno != EINTR)
            rc = gm_error_set(err, GM_EIO, "waiting for CRL notifications: %s", strerror(errno));
        else if (w > 0 && !PQconsumeInput(s->listen_conn))
            rc = gm_error_set(err, GM_EDB, "database %s: the CRL watch lost its connection: %s", s->where,
                              pq_msg(s->listen_conn, m, sizeof m));
        else
            n = PQnotifies(s->listen_conn);
    } else if (!n) {
        rc = gm_error_set(err, GM_EDB, "database %s: the CRL watch lost its connection: %s", s->where,
                          pq_msg(s->listen_conn, m, sizeof m));
    }
    int got = n != NULL;
    while (n) {
        PQfreemem(n);
        n = PQnotifies(s->listen_conn);
    }
    pthread_mutex_unlock(&s->listen_lock);
    if (rc != 0)
        return rc;
    return got ? 0 : gm_error_set(err, GM_ETIMEOUT, "no new CRL within %d ms", timeout_ms);
}

const gm_store_ops gm_store_backend_pg = {
    .name = "postgresql",
    .accepts = pg_accepts,
    .open = pg_open,
    .close = pg_close,
    .schema_version = pg_schema_version,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .nonce_record = pg_nonce_record,
    .nonce_prune = pg_nonce_prune,
    .invite_add = pg_invite_add,
    .invite_get = pg_invite_get,
    .invite_consume = pg_invite_consume,
    .invites_outstanding = pg_invites_outstanding,
    .invites_foreach = pg_invites_foreach,
    .cert_add = pg_cert_add,
    .cert_get = pg_cert_get,
    .certs_foreach = pg_certs_foreach,
    .cert_count = pg_cert_count,
    .cert_heartbeat = pg_cert_heartbeat,
    .revocation_add = pg_revocation_add,
    .revocation_update = pg_revocation_update,
    .log_append = pg_log_append,
    .log_size = pg_log_size,
    .log_hashes = pg_log_hashes,
    .log_entry = pg_log_entry,
    .log_find = pg_log_find,
    .revocations_json = pg_revocations_json,
    .crl_latest = pg_crl_latest,
    .crl_add = pg_crl_add,
    .crls_foreach = pg_crls_foreach,
    .key_block = pg_key_block,
    .key_blocked = pg_key_blocked,
    .key_unblock = pg_key_unblock,
    .agent_owner = pg_agent_owner,
    .agent_put = pg_agent_put,
    .agents_prune = pg_agents_prune,
    .agents_foreach = pg_agents_foreach,
    .agents_delete = pg_agents_delete,
    .crl_wait = pg_crl_wait,
};
