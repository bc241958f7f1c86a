/* The SQLite backend of the NA's store (lib/na/store.h, table in lib/na/store_backend.h):
 * connection setup, numbered migrations, and one small function per query; the only file
 * that calls sqlite3_*. Every function takes the handle's recursive lock, so a request opened
 * by gm_store_begin() covers all calls its thread makes until commit.
 *
 * Group commit: concurrent requests share one SQLite transaction (a batch). gm_store_begin
 * opens the batch's transaction (BEGIN IMMEDIATE) when none is open, or joins the open one,
 * and takes a SAVEPOINT for the request; gm_store_commit RELEASEs it into the batch, lets go
 * of the lock and waits until the batch is on disk; gm_store_rollback undoes its savepoint
 * only. Whoever waits and finds no sync running leads: it takes the lock, COMMITs the batch
 * (its pages written to the WAL once for all its requests, synchronous=NORMAL: no sync yet),
 * lets go of the lock and fdatasyncs the WAL, while the next batch gathers; then it wakes the
 * waiters. One request alone is one batch, committed at once. A commit is reported only once
 * it is on disk, as with synchronous=FULL (WAL frames carry chained checksums, so a crash
 * keeps a prefix of the commits). If a batch's COMMIT fails, every request in it gets the
 * error (none was answered yet); after a failed fdatasync every later wait fails, since the
 * kernel may have dropped the unsynced pages. Autocommit writes (outside gm_store_begin) while
 * a batch is open become part of it and commit it at once; readers that saw a batch, or an
 * autocommit write, not yet on disk wait for it too (gm_store_durable_wait), so no answer
 * rests on data a crash could take back. Without a usable -wal file descriptor the handle
 * stays on synchronous=FULL (the batch's COMMIT syncs). Prepared statements are cached per
 * handle (prepare/release).
 *
 * A thread need not wait itself (gm_store_commit_deferred, then gm_store_durable_notify): when
 * a sync is already running, its waiter is queued and the handle's syncer thread (started on
 * the first such waiter) leads the next round for the queued ones and calls their done; when
 * none is running, the thread leads itself at once, as a waiting one does.
 *
 * Checkpoints (copying the WAL's frames into the database file, so that SQLite can write the
 * log from its start again) run beside the commits: the WAL hook, after each COMMIT, only
 * asks the handle's checkpointer thread (started on the first ask) for a pass once 1000
 * frames were not copied yet; the thread runs a PASSIVE checkpoint on a connection of its
 * own (WAL mode lets it run while the writer appends). A pass beside writes that never pause
 * never copies the whole log, though, and SQLite restarts the log only when a write
 * transaction begins with every frame copied: so once the log reaches SQ_WAL_BOUND_PAGES, the
 * thread catches up with what came during its last pass and then the WAL hook copies the
 * last frames itself, inside the COMMIT (the store lock held, no transaction open): the next
 * batch writes the log from its start. Past twice the bound the hook waits for a running
 * pass rather than let the log grow. Checkpoints never run on both connections at once
 * (ckpt_running). The close stops the thread before the last connection's close, which
 * checkpoints the whole log. On synchronous=FULL (no -wal file descriptor), or when the
 * thread cannot open its connection, the hook checkpoints inside the COMMIT each 1000
 * frames, as SQLite's default hook does. A reader of another connection that keeps an old
 * snapshot (the sqlite3 shell in a transaction) holds every checkpoint back, as before: the
 * log then grows past the bound until it lets go. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "gm/genesis.h"
#include "gm/log.h"
#include "store_backend.h"

#define SQ_CACHE_MAX 64
#define SQ_FAILED_MAX 32 /* batches whose COMMIT failed, remembered for their late waiters */
#define SQ_CHECKPOINT_PAGES 1000 /* SQLite's own wal_autocheckpoint default */
/* The write-ahead log's bound: past it the commit path checkpoints itself (see the top of the
 * file); past twice it, it also waits for a running pass of the checkpointer to end first. */
#define SQ_WAL_BOUND_PAGES GM_STORE_WAL_BOUND_PAGES
/* At the bound, the frames left for the commit path to copy once the thread caught up */
#define SQ_TAIL_PAGES (SQ_CHECKPOINT_PAGES / 4)
_Static_assert(GM_STORE_WAL_BOUND_PAGES >= 2 * SQ_CHECKPOINT_PAGES, "the thread's passes come first");

typedef struct sq_store {
    gm_store_t base; /* first: the handle the NA holds */
    sqlite3 *db;
    pthread_mutex_t lock;
    int in_req;                 /* a request (gm_store_begin) holds the lock */
    int depth;                  /* of the recursive lock, by its owner */
    sqlite3_int64 changes_seen; /* sqlite3_total_changes64 when the last write was counted */
    /* group commit (see the top of the file); ids number batches and autocommit writes in
     * the order they reach the WAL. The store lock guards these: */
    int batch_open;             /* the batch's transaction is open */
    uint64_t batch;             /* its id */
    uint64_t members;           /* requests released into it */
    uint64_t last_id;           /* the last id given */
    uint64_t written;           /* ids up to this one are settled: in the WAL, failed, or empty */
    /* wal_fd < 0: synchronous=FULL, the COMMIT syncs */
    int wal_fd;
    /* sync_lock guards these (taken after the store lock, never before it): */
    pthread_mutex_t sync_lock;
    pthread_cond_t synced_cond;
    uint64_t synced;            /* ids known durable */
    int syncing;                /* one thread leads: commits the batch, then syncs */
    int sync_errno;             /* an fdatasync failed: nothing later is durable */
    uint64_t failed[SQ_FAILED_MAX]; /* ids of batches whose COMMIT failed (a ring) */
    unsigned n_failed;
    char fail_msg[sizeof ((gm_error *)0)->msg];
    /* waiters of gm_store_durable_notify, served by the syncer thread (under sync_lock) */
    gm_store_waiter *async;
    pthread_cond_t async_cond;
    pthread_t syncer;
    int syncer_started, syncer_stop;
    int held; /* gm_store_hold_syncs: syncing is set for a test */
    _Atomic uint64_t n_commits, n_syncs, n_batches, sync_ns, wal_bytes, n_checkpoints, checkpoint_ns;
    _Atomic uint64_t n_checkpoints_inline, checkpoint_inline_ns; /* of those, run inside a commit */
    int wal_pages;  /* frames in the -wal file after the last commit (wal_hook, store lock held) */
    /* the checkpointer thread (see the top of the file); ckpt_lock guards these (taken after
     * the store lock, never before it; the thread never takes the store lock) */
    pthread_mutex_t ckpt_lock;
    pthread_cond_t ckpt_cond;
    pthread_t ckpt_thread;
    int ckpt_started, ckpt_stop;
    int ckpt_broken;  /* the thread could not open its connection: checkpoints run inline */
    int ckpt_want;    /* the hook asks the thread for a pass */
    int ckpt_running; /* a checkpoint runs: the thread's pass, or the commit path's */
    int ckpt_done;    /* frames of the log known copied to the database file */
    int ckpt_logged;  /* the result code of the last failure logged (0: none), not to repeat it */
    int page_size;
    /* prepared statements, by SQL text */
    struct sq_cached {
        const char *sql;
        sqlite3_stmt *st;
        int in_use;
    } cache[SQ_CACHE_MAX];
    size_t n_cache;
    char path[4096];
} sq_store;

/* The newest id this thread has written or read on a handle (gm_store_durable_wait). */
static __thread const void *tl_store;
static __thread uint64_t tl_seen;

/* Step N brings the schema from version N-1 to N, in one transaction with its row in
 * schema_version. Never edit a released step: add one (and raise GM_STORE_SCHEMA_VERSION). */
typedef struct migration {
    int version;
    const char *what;
    const char *sql;
} migration;

static const migration migrations[] = {
    {1, "the NA's records",
    "CREATE TABLE invites("
    " token_hash TEXT PRIMARY KEY,"
    " roles TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " max_validity_hours INTEGER NOT NULL,"
    " used INTEGER NOT NULL DEFAULT 0,"
    " used_at INTEGER,"
    " used_by TEXT);"
    "CREATE TABLE certificates("
    " cert_id TEXT PRIMARY KEY,"
    " node_public_key TEXT NOT NULL,"
    " roles TEXT NOT NULL,"
    " issued_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " max_validity_hours INTEGER NOT NULL,"
    " doc TEXT NOT NULL);"
    "CREATE INDEX certificates_by_key ON certificates(node_public_key);"
    "CREATE TABLE revocations("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " cert_id TEXT NOT NULL UNIQUE,"
    " revoked_at TEXT NOT NULL,"
    " reason TEXT NOT NULL,"
    " issuer TEXT NOT NULL);"
    "CREATE TABLE crls("
    " sequence INTEGER PRIMARY KEY,"
    " doc TEXT NOT NULL,"
    " created_at INTEGER NOT NULL);"
    "CREATE TABLE blocked_keys("
    " node_public_key TEXT PRIMARY KEY,"
    " reason TEXT NOT NULL,"
    " blocked_at INTEGER NOT NULL);"},
    {2, "persisted request nonces, and the index behind the invites-outstanding gauge",
    "CREATE TABLE nonces("
    " scope TEXT NOT NULL,"
    " nonce TEXT NOT NULL,"
    " seen_at INTEGER NOT NULL,"
    " PRIMARY KEY(scope, nonce)) WITHOUT ROWID;"
    "CREATE INDEX nonces_by_time ON nonces(seen_at);"
    "CREATE INDEX invites_open ON invites(used, expires_at);"},
    {3, "the agent registry (lib/na/na_agents.c); capabilities as \",a.b,c.d,\" for exact tag match",
    "CREATE TABLE agents("
    " agent_id TEXT PRIMARY KEY,"
    " node_public_key TEXT NOT NULL,"
    " capabilities TEXT NOT NULL,"
    " registered_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " doc TEXT NOT NULL);"
    "CREATE INDEX agents_by_key ON agents(node_public_key);"},
    {4, "the last heartbeat of each certificate (POST /heartbeat, the \"last seen\" of admin nodes)",
    "ALTER TABLE certificates ADD COLUMN last_heartbeat INTEGER;"
    "ALTER TABLE certificates ADD COLUMN heartbeat_status TEXT;"},
    {5, "the issuance log (a Merkle tree of every certificate issued, renewed or revoked)",
    "CREATE TABLE issuance_log("
    " idx INTEGER PRIMARY KEY,"
    " kind TEXT NOT NULL,"
    " cert_id TEXT NOT NULL,"
    " entry TEXT NOT NULL,"
    " leaf_hash BLOB NOT NULL);"
    "CREATE INDEX issuance_log_by_cert ON issuance_log(cert_id, kind);"},
};

_Static_assert(sizeof migrations / sizeof migrations[0] == GM_STORE_SCHEMA_VERSION,
               "GM_STORE_SCHEMA_VERSION must equal the number of migrations");

static int run(sq_store *s, const char *sql, gm_error *err);

static void lock(sq_store *s)
{
    pthread_mutex_lock(&s->lock);
    s->depth++;
}

/* Remember that batch id failed (sync_lock not held; the store lock is). */
static void note_failed(sq_store *s, uint64_t id, const gm_error *why)
{
    pthread_mutex_lock(&s->sync_lock);
    s->failed[s->n_failed++ % SQ_FAILED_MAX] = id;
    snprintf(s->fail_msg, sizeof s->fail_msg, "%s", why && why->msg[0] ? why->msg : "the transaction was lost");
    pthread_cond_broadcast(&s->synced_cond);
    pthread_mutex_unlock(&s->sync_lock);
}

/* The open batch is gone: SQLite rolled the whole transaction back after an I/O or disk-full
 * error inside it. Its requests get the error. */
static int batch_lost(sq_store *s)
{
    if (!s->batch_open || !sqlite3_get_autocommit(s->db))
        return 0;
    gm_error why = {0};
    gm_error_set(&why, GM_EDB, "database %s: the transaction was rolled back: %s", s->path, sqlite3_errmsg(s->db));
    if (s->members)
        note_failed(s, s->batch, &why);
    s->written = s->batch;
    s->batch_open = 0;
    s->members = 0;
    return 1;
}

/* COMMIT the open batch (store lock held): its requests' writes reach the WAL. */
static void commit_batch(sq_store *s)
{
    if (!s->batch_open || batch_lost(s))
        return;
    gm_error why = {0};
    if (run(s, "COMMIT", &why) == 0) {
        atomic_fetch_add(&s->n_batches, 1);
    } else {
        if (!sqlite3_get_autocommit(s->db))
            run(s, "ROLLBACK", NULL);
        note_failed(s, s->batch, &why);
    }
    s->written = s->batch; /* settled: in the WAL, or failed */
    s->batch_open = 0;
    s->members = 0;
    s->changes_seen = sqlite3_total_changes64(s->db);
}

/* A write outside gm_store_begin (autocommit) is counted when the outermost lock is released:
 * alone it committed itself (a new id); inside an open batch it commits the batch now, since
 * nobody may wait for it. The thread then holds an id that gm_store_durable_wait syncs. */
static void unlock(sq_store *s)
{
    if (s->depth == 1 && !s->in_req && s->db) {
        sqlite3_int64 ch = sqlite3_total_changes64(s->db);
        if (ch != s->changes_seen) {
            s->changes_seen = ch;
            atomic_fetch_add(&s->n_commits, 1);
            if (s->batch_open) {
                commit_batch(s);
            } else {
                s->written = ++s->last_id;
                atomic_fetch_add(&s->n_batches, 1);
            }
        }
        tl_store = s;
        tl_seen = s->batch_open ? s->batch : s->written;
    }
    s->depth--;
    pthread_mutex_unlock(&s->lock);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One PASSIVE checkpoint of the log on db: the checkpointer's connection (thread), or the
 * writer's inside a commit (the store lock held). It syncs the log, copies the frames no
 * reader still needs to the database file and never waits (SQLite syncs the database file
 * once it copied the whole log). Counted, and a failure logged (SQLITE_BUSY is none: another
 * checkpoint held the log; the next try goes on). ckpt_lock not held. Returns the frames of
 * the log copied so far, or -1. */
static int ckpt_run(sq_store *s, sqlite3 *db, int in_commit)
{
    int n_log = 0, n_ckpt = 0;
    uint64_t t0 = mono_ns();
    int rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &n_log, &n_ckpt);
    uint64_t dt = mono_ns() - t0;
    if (rc == SQLITE_OK) {
        atomic_fetch_add(&s->n_checkpoints, 1);
        atomic_fetch_add(&s->checkpoint_ns, dt);
        if (in_commit) {
            atomic_fetch_add(&s->n_checkpoints_inline, 1);
            atomic_fetch_add(&s->checkpoint_inline_ns, dt);
        }
    }
    pthread_mutex_lock(&s->ckpt_lock);
    if (rc == SQLITE_OK)
        s->ckpt_logged = 0;
    else if (rc != SQLITE_BUSY && rc != s->ckpt_logged) { /* once, not at every commit that retries */
        s->ckpt_logged = rc;
        gm_log(GM_LOG_ERROR, "na",
               "database %s: checkpoint of the write-ahead log failed (%s): %s; the log grows until one "
               "succeeds: check the disk holding the database",
               s->path, in_commit ? "inside a commit" : "checkpointer thread", sqlite3_errmsg(db));
    }
    pthread_mutex_unlock(&s->ckpt_lock);
    return rc == SQLITE_OK ? n_ckpt : -1;
}

/* One pass on db (ckpt_lock held and no pass running; held again on return), by the thread or,
 * in_commit, by the commit path: what was asked for so far is covered; the others are told
 * when it ends. */
static void ckpt_pass(sq_store *s, sqlite3 *db, int in_commit)
{
    s->ckpt_want = 0;
    s->ckpt_running = 1;
    pthread_mutex_unlock(&s->ckpt_lock);
    int copied = ckpt_run(s, db, in_commit);
    pthread_mutex_lock(&s->ckpt_lock);
    s->ckpt_running = 0;
    if (copied >= 0)
        s->ckpt_done = copied;
    pthread_cond_broadcast(&s->ckpt_cond);
}

/* The checkpointer thread: a connection of its own to the database; a pass whenever the hook
 * asks for one, until the store closes. */
static void *ckpt_main(void *arg)
{
    sq_store *s = arg;
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(s->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(db, GM_STORE_BUSY_TIMEOUT_MS);
        /* a connection learns that the database is in WAL mode at its first read */
        rc = sqlite3_exec(db, "PRAGMA synchronous=NORMAL; SELECT COUNT(*) FROM schema_version", NULL, NULL, NULL);
    }
    pthread_mutex_lock(&s->ckpt_lock);
    if (rc != SQLITE_OK) {
        gm_log(GM_LOG_ERROR, "na",
               "database %s: cannot open the checkpointer's connection: %s; the write-ahead log is "
               "checkpointed inside commits instead",
               s->path, db ? sqlite3_errmsg(db) : "out of memory");
        s->ckpt_broken = 1;
    }
    while (!s->ckpt_broken) {
        while ((!s->ckpt_want || s->ckpt_running) && !s->ckpt_stop)
            pthread_cond_wait(&s->ckpt_cond, &s->ckpt_lock);
        if (s->ckpt_stop)
            break;
        ckpt_pass(s, db, 0);
    }
    pthread_mutex_unlock(&s->ckpt_lock);
    sqlite3_close_v2(db);
    return NULL;
}

/* Ask the checkpointer thread for a pass (ckpt_lock held), starting it on the first ask;
 * -1 when there is no thread (the caller checkpoints itself, as before it). */
static int ckpt_ask(sq_store *s)
{
    if (!s->ckpt_started && pthread_create(&s->ckpt_thread, NULL, ckpt_main, s) == 0)
        s->ckpt_started = 1;
    if (!s->ckpt_started)
        return -1;
    if (!s->ckpt_want) {
        s->ckpt_want = 1;
        pthread_cond_signal(&s->ckpt_cond);
    }
    return 0;
}

/* After each commit (store lock held; this hook replaces SQLite's default one, which
 * checkpoints inside the commit): count the frames the commit appended, and have the log
 * checkpointed (see the top of the file). */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    (void)name;
    sq_store *s = arg;
    int added = pages >= s->wal_pages ? pages - s->wal_pages : pages; /* the log restarted */
    atomic_fetch_add(&s->wal_bytes, (uint64_t)added * (uint64_t)(s->page_size + 24)); /* + frame header */
    s->wal_pages = pages;
    int here = 0;
    pthread_mutex_lock(&s->ckpt_lock);
    if (pages < s->ckpt_done)
        s->ckpt_done = 0; /* the log restarted */
    int behind = pages - s->ckpt_done; /* frames not copied yet */
    if (s->ckpt_stop) {
        /* closing: the last connection's close checkpoints the whole log */
    } else if (s->wal_fd < 0 || s->ckpt_broken) {
        here = pages >= SQ_CHECKPOINT_PAGES; /* as SQLite's default hook */
    } else if (pages >= SQ_WAL_BOUND_PAGES) {
        while (s->ckpt_running && pages >= 2 * SQ_WAL_BOUND_PAGES)
            pthread_cond_wait(&s->ckpt_cond, &s->ckpt_lock);
        /* copy the last frames here once the thread caught up with the log (a pass of its for
         * what came during its last one), else let it catch up first; a later commit goes on */
        if (!s->ckpt_running)
            here = behind <= SQ_TAIL_PAGES || pages >= 2 * SQ_WAL_BOUND_PAGES || ckpt_ask(s) != 0;
    } else if (behind >= SQ_CHECKPOINT_PAGES && !s->ckpt_running) {
        here = ckpt_ask(s) != 0;
    }
    if (here)
        ckpt_pass(s, db, 1); /* it covers what the thread was asked for */
    pthread_mutex_unlock(&s->ckpt_lock);
    return SQLITE_OK;
}

static int is_failed(const sq_store *s, uint64_t id)
{
    for (unsigned i = 0; i < SQ_FAILED_MAX && i < s->n_failed; i++)
        if (s->failed[i] == id)
            return 1;
    return 0;
}

/* One round (sync_lock held, nobody syncing; held again on return): commit the open batch
 * under the store lock, then sync the WAL outside it (the next batch gathers meanwhile). */
static void lead_round(sq_store *s)
{
    s->syncing = 1;
    uint64_t before = s->synced;
    pthread_mutex_unlock(&s->sync_lock);
    pthread_mutex_lock(&s->lock); /* not lock(): this is no read or write of the caller's */
    s->depth++;
    commit_batch(s);
    uint64_t covers = s->written; /* every id written before the sync starts */
    s->depth--;
    pthread_mutex_unlock(&s->lock);
    int r = 0, saved = 0;
    if (s->wal_fd >= 0 && covers > before) {
        uint64_t t0 = mono_ns();
        r = fdatasync(s->wal_fd);
        saved = errno;
        atomic_fetch_add(&s->sync_ns, mono_ns() - t0);
        atomic_fetch_add(&s->n_syncs, 1);
    }
    pthread_mutex_lock(&s->sync_lock);
    s->syncing = 0;
    if (r != 0)
        s->sync_errno = saved;
    else if (covers > s->synced)
        s->synced = covers;
    pthread_cond_broadcast(&s->synced_cond);
    if (s->async)
        pthread_cond_signal(&s->async_cond);
}

/* Whether id is settled (sync_lock held): 0 durable, 1 not yet, or the error. */
static int settled(sq_store *s, uint64_t id, gm_error *err)
{
    if (is_failed(s, id))
        return gm_error_set(err, GM_EDB, "%s (the group commit holding this request failed; nothing of it was stored)",
                            s->fail_msg);
    if (s->synced >= id)
        return 0;
    if (s->sync_errno)
        return gm_error_set(err, GM_EDB, "database %s: cannot sync the write-ahead log: %s (restart the NA)", s->path,
                            strerror(s->sync_errno));
    return 1;
}

/* Wait until id is on disk. Whoever finds no sync running leads a round. */
static int wait_synced(sq_store *s, uint64_t id, gm_error *err)
{
    int rc = 0;
    if (!id)
        return 0;
    pthread_mutex_lock(&s->sync_lock);
    while ((rc = settled(s, id, err)) == 1) {
        if (s->syncing)
            pthread_cond_wait(&s->synced_cond, &s->sync_lock);
        else
            lead_round(s);
    }
    pthread_mutex_unlock(&s->sync_lock);
    return rc;
}

/* The syncer thread: calls done for every settled waiter, and leads a round while some wait
 * and nobody else syncs. */
static void *syncer_main(void *arg)
{
    sq_store *s = arg;
    pthread_mutex_lock(&s->sync_lock);
    for (;;) {
        gm_store_waiter *ready = NULL, **pp = &s->async;
        while (*pp) {
            gm_store_waiter *w = *pp;
            if ((w->rc = settled(s, w->id, &w->err)) != 1) {
                *pp = w->next;
                w->next = ready;
                ready = w;
            } else {
                pp = &w->next;
            }
        }
        if (ready) {
            pthread_mutex_unlock(&s->sync_lock);
            while (ready) {
                gm_store_waiter *w = ready;
                ready = w->next; /* before done: the waiter is its owner's again */
                w->done(w);
            }
            pthread_mutex_lock(&s->sync_lock);
            continue;
        }
        if (s->async && !s->syncing)
            lead_round(s);
        else if (s->syncer_stop && !s->async)
            break;
        else
            pthread_cond_wait(&s->async_cond, &s->sync_lock);
    }
    pthread_mutex_unlock(&s->sync_lock);
    return NULL;
}

static int db_fail(sq_store *s, gm_error *err, const char *what)
{
    return gm_error_set(err, GM_EDB, "database %s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
}

static int exec(sq_store *s, const char *sql, gm_error *err)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        gm_error_set(err, GM_EDB, "database %s: %s", s->path, msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return GM_EDB;
    }
    return 0;
}

/* A cached statement for sql (a fresh one when the cached one is in use by an outer call);
 * give it back with release. */
static int prepare(sq_store *s, const char *sql, sqlite3_stmt **st, gm_error *err)
{
    /* the same literal is the same pointer: compare text only when no pointer matched */
    size_t i;
    for (i = 0; i < s->n_cache && s->cache[i].sql != sql; i++)
        ;
    if (i == s->n_cache)
        for (i = 0; i < s->n_cache && strcmp(s->cache[i].sql, sql); i++)
            ;
    if (i < s->n_cache && !s->cache[i].in_use) {
        s->cache[i].in_use = 1;
        *st = s->cache[i].st;
        return 0;
    }
    unsigned flags = s->n_cache < SQ_CACHE_MAX ? SQLITE_PREPARE_PERSISTENT : 0;
    if (sqlite3_prepare_v3(s->db, sql, -1, flags, st, NULL) != SQLITE_OK)
        return db_fail(s, err, "prepare");
    if (flags && i == s->n_cache) /* else the cached one is in use: this one is finalized on release */
        s->cache[s->n_cache++] = (struct sq_cached){.sql = sql, .st = *st, .in_use = 1};
    return 0;
}

static void release(sq_store *s, sqlite3_stmt *st)
{
    for (size_t i = 0; i < s->n_cache; i++)
        if (s->cache[i].st == st) {
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            s->cache[i].in_use = 0;
            return;
        }
    sqlite3_finalize(st); /* not cached (its twin was in use, or the cache is full) */
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
}

static char *col_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return strdup(t ? (const char *)t : "");
}

static void col_copy(sqlite3_stmt *st, int i, char *out, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    snprintf(out, cap, "%s", t ? (const char *)t : "");
}

/* Run a statement that returns no rows; finalizes it. */
static int step_done(sq_store *s, sqlite3_stmt *st, const char *what, gm_error *err)
{
    int rc = sqlite3_step(st);
    int ret = 0;
    if (rc != SQLITE_DONE) {
        if ((rc & 0xff) == SQLITE_CONSTRAINT)
            ret = gm_error_set(err, GM_ECONFLICT, "%s: already recorded", what);
        else
            ret = db_fail(s, err, what);
    }
    release(s, st);
    return ret;
}

/* A cached statement without parameters or rows (BEGIN, COMMIT, SAVEPOINT, ...). */
static int run(sq_store *s, const char *sql, gm_error *err)
{
    sqlite3_stmt *st;
    int rc = prepare(s, sql, &st, err);
    if (rc != 0)
        return rc;
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_fail(s, err, sql);
    release(s, st);
    return rc;
}

static int read_version(sq_store *s, int *version, gm_error *err)
{
    sqlite3_stmt *st;
    int rc = prepare(s, "SELECT COALESCE(MAX(version), 0) FROM schema_version", &st, err);
    if (rc != 0)
        return rc;
    if (sqlite3_step(st) != SQLITE_ROW)
        rc = db_fail(s, err, "reading schema_version");
    else
        *version = sqlite3_column_int(st, 0);
    release(s, st);
    return rc;
}

static int migrate(sq_store *s, gm_error *err)
{
    int rc, version = 0;
    if ((rc = exec(s, "BEGIN IMMEDIATE", err)) != 0)
        return rc;
    rc = exec(s, "CREATE TABLE IF NOT EXISTS schema_version("
                 " version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)", err);
    if (rc == 0)
        rc = read_version(s, &version, err);
    if (rc == 0 && version > GM_STORE_SCHEMA_VERSION)
        rc = gm_error_set(err, GM_EDB,
                          "database %s has schema version %d, newer than this program supports (%d); "
                          "run a newer genesis-mesh",
                          s->path, version, GM_STORE_SCHEMA_VERSION);
    for (int v = version + 1; rc == 0 && v <= GM_STORE_SCHEMA_VERSION; v++) {
        char sql[128];
        const migration *m = &migrations[v - 1];
        if (m->version != v)
            rc = gm_error_set(err, GM_EINTERNAL, "store migration %d is listed in place of step %d", m->version, v);
        else if ((rc = exec(s, m->sql, err)) != 0)
            gm_error_prefix(err, "migration %d (%s)", v, m->what);
        if (rc != 0)
            break;
        snprintf(sql, sizeof sql, "INSERT INTO schema_version(version, applied_at) VALUES (%d, strftime('%%s','now'))", v);
        rc = exec(s, sql, err);
    }
    if (rc == 0)
        return exec(s, "COMMIT", err);
    exec(s, "ROLLBACK", NULL);
    return rc;
}

/* SQLite says only "unable to open database file": name what is read-only when that is the cause. */
static int explain_open_failure(const char *path, int rc, gm_error *err)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    if (access(dir, W_OK) != 0)
        return gm_error_set(err, GM_EDB,
                            "cannot open database %s: its directory %s is read-only (%s); the NA must be able "
                            "to create the database and its -wal and -shm files there",
                            path, dir, strerror(errno));
    if (access(path, F_OK) == 0 && access(path, W_OK) != 0)
        return gm_error_set(err, GM_EDB, "cannot open database %s: the file is read-only (%s)", path,
                            strerror(errno));
    return rc;
}

static void sq_close(gm_store_t *gs);

static int sq_accepts(const char *location)
{
    /* a file path; a URL scheme names another backend */
    return location && !strstr(location, "://");
}

static int sq_open(gm_store_t **out, const char *path, gm_error *err)
{
    *out = NULL;
    sq_store *s = calloc(1, sizeof *s);
    if (!s)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    s->base.ops = &gm_store_backend_sqlite;
    snprintf(s->path, sizeof s->path, "%s", path);
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&s->lock, &attr);
    pthread_mutexattr_destroy(&attr);
    pthread_mutex_init(&s->sync_lock, NULL);
    pthread_cond_init(&s->synced_cond, NULL);
    pthread_cond_init(&s->async_cond, NULL);
    pthread_mutex_init(&s->ckpt_lock, NULL);
    pthread_cond_init(&s->ckpt_cond, NULL);
    s->wal_fd = -1;
    int rc;
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        rc = gm_error_set(err, GM_EDB, "cannot open database %s: %s", path,
                          s->db ? sqlite3_errmsg(s->db) : "out of memory");
        rc = explain_open_failure(path, rc, err);
        sq_close(&s->base);
        return rc;
    }
    sqlite3_busy_timeout(s->db, GM_STORE_BUSY_TIMEOUT_MS);
    sqlite3_stmt *st = NULL;
    rc = prepare(s, "PRAGMA journal_mode=WAL", &st, err);
    if (rc == 0) {
        const unsigned char *mode = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
        if (!mode || strcmp((const char *)mode, "wal") != 0)
            rc = gm_error_set(err, GM_EDB, "database %s: cannot switch to WAL journal mode: %s", path,
                              sqlite3_errmsg(s->db));
        release(s, st);
    }
    /* FULL: the WAL is synced at every commit, so an answered request survives power loss too.
     * temp_store=MEMORY: each request's SAVEPOINT keeps the old images of the pages it changes
     * (its statement journal), which SQLite otherwise spills past 64 KiB into a new temporary
     * file (created, removed, written) inside the batch; in memory it holds at most the pages
     * the batch changed. */
    if (rc == 0)
        rc = exec(s, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY", err);
    if (rc == 0)
        rc = migrate(s, err);
    if (rc != 0) {
        rc = explain_open_failure(path, rc, err);
        sq_close(&s->base);
        return rc;
    }
    /* Group commit needs the -wal file (it exists from the first write on, and stays while a
     * connection is open); without it every COMMIT keeps syncing itself. */
    char wal[4200];
    snprintf(wal, sizeof wal, "%s-wal", path);
    s->wal_fd = open(wal, O_RDONLY | O_CLOEXEC);
    if (s->wal_fd >= 0 && exec(s, "PRAGMA synchronous=NORMAL", NULL) != 0) {
        close(s->wal_fd);
        s->wal_fd = -1;
    }
    s->page_size = 4096;
    if (prepare(s, "PRAGMA page_size", &st, NULL) == 0) {
        if (sqlite3_step(st) == SQLITE_ROW)
            s->page_size = sqlite3_column_int(st, 0);
        release(s, st);
    }
    sqlite3_wal_hook(s->db, wal_hook, s);
    s->changes_seen = sqlite3_total_changes64(s->db);
    *out = &s->base;
    return 0;
}

static void sq_close(gm_store_t *gs)
{
    sq_store *s = (sq_store *)gs;
    if (!s)
        return;
    if (s->syncer_started) { /* it serves the waiters left, then ends */
        pthread_mutex_lock(&s->sync_lock);
        s->syncer_stop = 1;
        pthread_cond_signal(&s->async_cond);
        pthread_mutex_unlock(&s->sync_lock);
        pthread_join(s->syncer, NULL);
    }
    /* the checkpointer ends (a pass it runs ends first) before the last commit and the close,
     * which checkpoints the whole log */
    pthread_mutex_lock(&s->ckpt_lock);
    s->ckpt_stop = 1;
    int started = s->ckpt_started;
    pthread_cond_broadcast(&s->ckpt_cond);
    pthread_mutex_unlock(&s->ckpt_lock);
    if (started)
        pthread_join(s->ckpt_thread, NULL);
    if (s->db) {
        if (s->in_req) {
            run(s, "ROLLBACK TO gm_req", NULL);
            run(s, "RELEASE gm_req", NULL);
            s->in_req = 0;
        }
        commit_batch(s); /* what requests released into it is theirs */
        for (size_t i = 0; i < s->n_cache; i++)
            sqlite3_finalize(s->cache[i].st);
        sqlite3_close_v2(s->db);
    }
    if (s->wal_fd >= 0) {
        (void)fdatasync(s->wal_fd); /* autocommit writes of a program that never asked */
        close(s->wal_fd);
    }
    pthread_cond_destroy(&s->synced_cond);
    pthread_cond_destroy(&s->async_cond);
    pthread_cond_destroy(&s->ckpt_cond);
    pthread_mutex_destroy(&s->ckpt_lock);
    pthread_mutex_destroy(&s->sync_lock);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static int sq_schema_version(gm_store_t *gs, int *version, gm_error *err)
{
    sq_store *s = (sq_store *)gs;
    lock(s);
    int rc = read_version(s, version, err);
    unlock(s);
    return rc;
}

/* No request is in the open batch: end it (nothing of anyone's is in it). */
static void end_empty_batch(sq_store *s)
{
    if (!s->batch_open || s->members)
        return;
    run(s, "ROLLBACK", NULL);
    s->batch_open = 0;
    s->written = s->batch;
}

static int sq_begin(gm_store_t *gs, gm_error *err)
{
    sq_store *s = (sq_store *)gs;
    lock(s);
    if (s->in_req) {
        unlock(s);
        return gm_error_set(err, GM_EINTERNAL, "database transaction already open on this handle");
    }
    batch_lost(s);
    int rc = 0;
    if (!s->batch_open) {
        if ((rc = run(s, "BEGIN IMMEDIATE", err)) != 0) {
            unlock(s);
            return rc;
        }
        s->batch_open = 1;
        s->batch = ++s->last_id;
        s->members = 0;
    }
    if ((rc = run(s, "SAVEPOINT gm_req", err)) != 0) {
        end_empty_batch(s);
        unlock(s);
        return rc;
    }
    s->in_req = 1;
    return 0; /* the lock stays held until commit or rollback */
}

/* Undo the request's savepoint (store lock held, in_req). */
static void undo_request(sq_store *s)
{
    run(s, "ROLLBACK TO gm_req", NULL);
    run(s, "RELEASE gm_req", NULL);
    s->in_req = 0;
    if (!batch_lost(s))
        end_empty_batch(s);
    s->changes_seen = sqlite3_total_changes64(s->db);
}

/* defer: gm_store_commit_deferred (the caller waits for durability before it answers) */
static int commit_request(gm_store_t *gs, int defer, gm_error *err)
{
    sq_store *s = (sq_store *)gs;
    lock(s);
    int rc = 0;
    if (!s->in_req) {
        rc = gm_error_set(err, GM_EINTERNAL, "commit without a transaction");
        unlock(s);
        return rc;
    }
    uint64_t mine = 0;
    if ((rc = run(s, "RELEASE gm_req", err)) != 0) {
        undo_request(s);
    } else if (batch_lost(s)) {
        rc = gm_error_set(err, GM_EDB, "database %s: the transaction was rolled back: %s", s->path,
                          sqlite3_errmsg(s->db));
        s->in_req = 0;
    } else {
        s->in_req = 0;
        s->members++;
        mine = s->batch;
        atomic_fetch_add(&s->n_commits, 1);
    }
    s->changes_seen = sqlite3_total_changes64(s->db);
    unlock(s);
    unlock(s); /* the one taken by gm_store_begin */
    if (rc == 0 && defer) { /* the caller waits before it answers */
        tl_store = s;
        if (mine > tl_seen)
            tl_seen = mine;
        return 0;
    }
    /* outside the lock: others join the batch until a waiter commits and syncs it */
    return rc == 0 ? wait_synced(s, mine, err) : rc;
}

static int sq_durable_wait(gm_store_t *gs, gm_error *err);

static int sq_commit(gm_store_t *gs, gm_error *err)
{
    return commit_request(gs, 0, err);
}

static int sq_commit_deferred(gm_store_t *gs, gm_error *err)
{
    return commit_request(gs, 1, err);
}

static int sq_durable_notify(gm_store_t *gs, gm_store_waiter *w, gm_error *err)
{
    sq_store *s = (sq_store *)gs;
    if (tl_store != s || !tl_seen)
        return 0;
    uint64_t id = tl_seen;
    pthread_mutex_lock(&s->sync_lock);
    int rc = settled(s, id, err);
    if (rc == 1 && s->syncing && !s->syncer_stop) {
        if (!s->syncer_started) {
            if (pthread_create(&s->syncer, NULL, syncer_main, s) != 0) {
                pthread_mutex_unlock(&s->sync_lock);
                return sq_durable_wait(gs, err); /* no thread: wait here */
            }
            s->syncer_started = 1;
        }
        tl_seen = 0;
        w->id = id;
        w->next = s->async;
        s->async = w;
        pthread_cond_signal(&s->async_cond);
        pthread_mutex_unlock(&s->sync_lock);
        return 1;
    }
    pthread_mutex_unlock(&s->sync_lock);
    if (rc == 1)
        return sq_durable_wait(gs, err); /* nobody syncs: lead now */
    tl_seen = 0;
    return rc;
}

static int sq_durable_wait(gm_store_t *gs, gm_error *err)
{
    sq_store *s = (sq_store *)gs;
    if (tl_store != s || !tl_seen)
        return 0;
    uint64_t seen = tl_seen;
    tl_seen = 0;
    return wait_synced(s, seen, err);
}

static void sq_hold_syncs(gm_store_t *gs, int hold)
{
    sq_store *s = (sq_store *)gs;
    pthread_mutex_lock(&s->sync_lock);
    if (hold && !s->held) {
        while (s->syncing)
            pthread_cond_wait(&s->synced_cond, &s->sync_lock);
        s->syncing = s->held = 1;
    } else if (!hold && s->held) {
        s->syncing = s->held = 0;
        pthread_cond_broadcast(&s->synced_cond);
        pthread_cond_signal(&s->async_cond);
    }
    pthread_mutex_unlock(&s->sync_lock);
}

static void sq_stats(gm_store_t *gs, gm_store_counters *c)
{
    sq_store *s = (sq_store *)gs;
    c->commits = atomic_load(&s->n_commits);
    c->syncs = s->wal_fd >= 0 ? atomic_load(&s->n_syncs) : atomic_load(&s->n_batches);
    c->sync_ns = atomic_load(&s->sync_ns); /* 0 on synchronous=FULL: the COMMITs sync themselves */
    c->wal_bytes = atomic_load(&s->wal_bytes);
    c->checkpoints = atomic_load(&s->n_checkpoints);
    c->checkpoint_ns = atomic_load(&s->checkpoint_ns);
    c->checkpoints_inline = atomic_load(&s->n_checkpoints_inline);
    c->checkpoint_inline_ns = atomic_load(&s->checkpoint_inline_ns);
}

static void sq_rollback(gm_store_t *gs)
{
    sq_store *s = (sq_store *)gs;
    lock(s);
    if (s->in_req) {
        undo_request(s);
        unlock(s);
    }
    unlock(s);
}

/* ---- nonces ---- */

static int sq_nonce_record(gm_store_t *gs, const char *scope, const char *nonce, int64_t now, gm_error *err)
{
    sq_store *s = (sq_store *)gs;
    sqlite3_stmt *st;
    lock(s);
    int rc = prepare(s, "INSERT INTO nonces(scope, nonce, seen_at) VALUES (?, ?, ?)", &st, err);
    if (rc == 0) {
        bind_text(st, 1, scope);
        bind_text(st, 2, nonce);
        sqlite3_bind_int64(st, 3, now);
        rc = step_done(s, st, "nonce", err);
        if (rc == GM_ECONFLICT)
            gm_error_set(err, GM_ECONFLICT, "nonce %s was already used (replayed request)", nonce);
    }
    unlock(s);
    return rc;
}

static int sq_nonce_prune(gm_store_t *gs, int64_t older_than, gm_error *err)
{
    sq_store *s = (sq_store *)gs;
    sqlite3_stmt *st;
    lock(s);
    int rc = prepare(s, "DELETE FROM nonces WHERE seen_at < ?", &st, err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, older_than);
        rc = step_done(s, st, "pruning nonces", err);
    }
    unlock(s);
    return rc;
}

/* ---- invites ---- */

static int sq_invite_add(gm_store_t *gs, const char *token_hash, const char *roles_json, int64_t created_at,
                        int64_t expires_at, int64_t max_validity_hours, gm_error *err)
{
    sq_store *s = (sq_store *)gs;
    sqlite3_stmt *st;
    lock(s);
    int rc = prepare(s,
                     "INSERT INTO invites(token_hash, roles, created_at, expires_at, max_validity_hours)"
                     " VALUES (?, ?, ?, ?, ?)",
                     &st, err);
    if (rc == 0) {
        bind_text(st, 1, token_hash);
        bind_text(st, 2, roles_json);
        sqlite3_bind_int64(st, 3, created_at);
        sqlite3_bind_int64(st, 4, expires_at);
        sqlite3_bind_int64(st, 5, max_validity_hours);
        rc = step_done(s, st, "invite", err);
    }
    unlock(s);
    return rc;
}

#define INVITE_COLUMNS                                                                                            \
    "SELECT token_hash, roles, created_at, expires_at, max_validity_hours, used, COALESCE(used_at, 0),"           \
    " COALESCE(used_by, '') FROM invites"

/* Fill inv from an INVITE_COLUMNS row; roles_json is borrowed from the statement when borrow is set. */
static void invite_row(sqlite3_stmt *st, gm_store_invite *inv, int borrow)
{
    memset(inv, 0, sizeof *inv);
    col_copy(st, 0, inv->token_hash, sizeof inv->token_hash);
    inv->roles_json = borrow ? (char *)sqlite3_column_text(st, 1) : col_dup(st, 1);
    inv->created_at = sqlite3_column_int64(st, 2);
    inv->expires_at = sqlite3_column_int64(st, 3);
    inv->max_validity_hours = sqlite3_column_int64(st, 4);
    inv->used = sqlite3_column_int(st, 5);
    inv->used_at = sqlite3_column_int64(st, 6);
    col_copy(st, 7, inv->used_by, sizeof inv->used_by);
}

static int sq_invite_get(gm_store_t *gs, const char *token_hash, gm_store_invite *inv, gm_error *err)
{
    sq_store *s = (sq_store *)gs;
    sqlite3_stmt *st;
    memset(inv, 0, sizeof *inv);
    lock(s);
    int rc = prepare(s, INVITE_COLUMNS " WHERE token_hash = ?", &st, err);
    if (rc == 0) {
        bind_text(st, 1, token_hash);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            invite_row(st, inv, 0);
            if (!inv->roles_json)
                rc = gm_error_set(err, GM_ENOMEM, "out of memory");
        } else if (r == SQLITE_DONE) {
            rc = gm_error_set(err, GM_ENOTFOUND, "no such invite token");
        } else {
            rc = db_fail(s, err, "reading invite");
        }
        release(s, st);
    }
    unlock(s);
    return rc;
}

static int sq_invite_consume(gm_store_t *gs, const char *token_hash, const char *node_pk_b64, int64_t now,
                            gm_store_invite *inv, gm_error *err)
{
    sq_store *s = (sq_store *)gs;
    sqlite3_stmt *st;
    gm_store_invite tmp;
    lock(s);
    int rc = prepare(s,
                     "UPDATE invites SET used = 1, used_at = ?, used_by = ?"
                     " WHERE token_hash = ? AND used = 0 AND expires_at > ?",
                     &st, err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, now);
        bind_text(st, 2, node_pk_b64);
        bind_text(st, 3, token_hash);
        sqlite3_bind_int64(st, 4, now);
        rc = step_done(s, st, "consuming invite", err);
    }
    int won = rc == 0 && sqlite3_changes(s->db) == 1;
    if (rc == 0)
        rc = sq_invite_get(gs, token_hash, &tmp, err);
    if (rc == 0 && !won) {
        /* Say why it was refused. */
        if (tmp.used)
            rc = gm_error_set(err, GM_ECONFLICT, "invite token was already used");
        else
            rc = gm_error_set(err, GM_EEXPIRED, "invite token expired");
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

static int sq_invites_outstanding(gm_store_t *gs, int64_t now, int64_t *n, gm_error *err)
{
    sq_store *s = (sq_store *)gs;
    sqlite3_stmt *st;
    lock(s);
    int rc = prepare(s, "SELECT COUNT(*) FROM invites WHERE used = 0 AND expires_at > ?", &st, err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, now);
        if (sqlite3_step(st) == SQLITE_ROW)
            *n = sqlite3_column_int64(st, 0);
        else
            rc = db_fail(s, err, "counting invites");
        release(s, st);
    }
    unlock(s);
    return rc;
}

static int sq_invites_foreach(gm_store_t *gs, int64_t now, size_t limit, gm_store_invite_fn fn, void *ctx,
                              gm_error *err)
{
    sq_store *s = (sq_store *)gs;
    sqlite3_stmt *st;
    lock(s);
    int rc = prepare(s, INVITE_COLUMNS " WHERE used = 0 AND expires_at > ?1 ORDER BY created_at, rowid LIMIT ?2",
                     &st, err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, now);
        sqlite3_bind_int64(st, 2, limit > (size_t)INT64_MAX ? INT64_MAX : (sqlite3_int64)limit);
        int r;
        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
            gm_store_invite inv;
            invite_row(st, &inv, 1);
            if ((rc = fn(&inv, ctx)) != 0)
                break;
        }
        if (rc == 0 && r != SQLITE_DONE)
            rc = db_fail(s, err, "listing invites");
        release(s, st);
    }
    unlock(s);
    return rc;
}

/* ---- certificates ---- */

static int sq_cert_add(gm_store_t *gs, const gm_store_cert *c, gm_error *err)
{
    sq_store *s = (sq_store *)gs;
    sqlite3_stmt *st;
    lock(s);
    int rc = prepare(s,
                     "INSERT INTO certificates(cert_id, node_public_key, roles, issued_at, expires_at,"
                     " max_validity_hours, doc) VALUES (?, ?, ?, ?, ?, ?, ?)",
                     &st, err);
    if (rc == 0) {
        bind_text(st, 1, c->cert_id);
        bind_text(st, 2, c->node_pk);
        bind_text(st, 3, c->roles_json);
        sqlite3_bind_int64(st, 4, c->issued_at);
        sqlite3_bind_int64(st, 5, c->expires_at);
        sqlite3_bind_int64(st, 6, c->max_validity_hours);
        bind_text(st, 7, c->doc);
        rc = step_done(s, st, "certificate", err);
    }
    unlock(s);
    return rc;
}

#define CERT_COLUMNS                                                                                              \
    "SELECT c.cert_id, c.node_public_key, c.roles, c.issued_at, c.expires_at, c.max_validity_hours, c.doc,"      \
    " r.reason, r.revoked_at, c.last_heartbeat, c.heartbeat_status"                                              \
    " FROM certificates c LEFT JOIN revocations r ON r.cert_id = c.cert_id"

/* Fill c from a CERT_COLUMNS row; strings are borrowed from the statement when borrow is set. */
static void cert_row(sqlite3_stmt *st, gm_store_cert *c, int borrow)
{
    memset(c, 0, sizeof *c);
    col_copy(st, 0, c->cert_id, sizeof c->cert_id);
    col_copy(st, 1, c->node_pk, sizeof c->node_pk);
    c->issued_at = sqlite3_column_int64(st, 3);
    c->expires_at = sqlite3_column_int64(st, 4);
    c->max_validity_hours = sqlite3_column_int64(st, 5);
    if (borrow) {
        c->roles_json = (char *)sqlite3_column_text(st, 2);
        c->doc = (char *)sqlite3_column_text(st, 6);
    } else {
        c->roles_json = col_dup(st, 2);
        c->doc = col_dup(st, 6);
    }
    if (sqlite3_column_type(st, 7) != SQLITE_NULL) {
        c->revoked = 1;
        col_copy(st, 7, c->reason, sizeof c->reason);
        col_copy(st, 8, c->revoked_at, sizeof c->revoked_at);
    }
    if (sqlite3_column_type(st, 9) != SQLITE_NULL) {
        c->last_heartbeat = sqlite3_column_int64(st, 9);
        col_copy(st, 10, c->heartbeat_status, sizeof c->heartbeat_status);
    }
}

static int sq_cert_get(gm_store_t *gs, const char *cert_id, gm_store_cert *c, gm_error *err)
{
    sq_store *s = (sq_store *)gs;
    sqlite3_stmt *st;
    memset(c, 0, sizeof *c);
    lock(s);
    int rc = prepare(s, CERT_COLUMNS " WHERE c.cert_id = ?", &st, err);
    if (rc == 0) {
        bind_text(st, 1, cert_id);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            cert_row(st, c, 0);
            if (!c->roles_json || !c->doc) {
                gm_store_cert_clear(c);
                rc = gm_error_set(err, GM_ENOMEM, "out of memory");
            }
        } else if (r == SQLITE_DONE) {
            rc = gm_error_set(err, GM_ENOTFOUND, "no certificate %s", cert_id);
        } else {
            rc = db_fail(s, err, "reading certificate");
        }
        release(s, st);
    }
    unlock(s);
    return rc;
}

static int sq_certs_foreach(gm_store_t *gs, const char *node_pk_b64, gm_store_cert_fn fn, void *ctx, gm_error *err)
{
    sq_store *s = (sq_store *)gs;
    sqlite3_stmt *st;
    lock(s);
    int rc = prepare(s,
                     node_pk_b64 ? CERT_COLUMNS " WHERE c.node_public_key = ? ORDER BY c.rowid"
                                 : CERT_COLUMNS " ORDER BY c.rowid",
                     &st, err);
    if (rc == 0) {
        if (node_pk_b64)
            bind_text(st, 1, node_pk_b64);
        int r;
        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
            gm_store_cert c;
            cert_row(st, &c, 1);
            if ((rc = fn(&c, ctx)) != 0)
                break;
        }
        if (rc == 0 && r != SQLITE_DONE)
            rc = db_fail(s, err, "listing certificates");
        release(s, st);
    }
    unlock(s);
    return rc;
}

static int sq_cert_count(gm_store_t *gs, int64_t *n, gm_error *err)
{
    sq_store *s = (sq_store *)gs;
    sqlite3_stmt *st;
    lock(s);
    int rc = prepare(s, "SELECT COUNT(*) FROM certificates", &st, err);
    if (rc == 0) {
        if (sqlite3_step(st) == SQLITE_ROW)
            *n = sqlite3_column_int64(st, 0);
        else
            rc = db_fail(s, err, "counting certificates");
        release(s, st);
    }
    unlock(s);
    return rc;
}

static int sq_cert_heartbeat(gm_store_t *gs, const char *cert_id, int64_t now, const char *status, gm_error *err)
{
    sq_store *s = (sq_store *)gs;
    sqlite3_stmt *st;
    lock(s);
    int rc = prepare(s, "UPDATE certificates SET last_heartbeat = ?, heartbeat_status = ? WHERE cert_id = ?", &st, err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, now);
        bind_text(st, 2, status);
        bind_text(st, 3, cert_id);
        rc = step_done(s, st, "heartbeat", err);
        if (rc == 0 && sqlite3_changes(s->db) == 0)
            rc = gm_error_set(err, GM_ENOTFOUND, "no certificate %s", cert_id);
    }
    unlock(s);
    return rc;
}

/* ---- revocations and CRLs ---- */

static int sq_revocation_add(gm_store_t *gs, const char *cert_id, const char *revoked_at, const char *reason,
                            const char *issuer, gm_error *err)
{
    sq_store *s = (sq_store *)gs;
    sqlite3_stmt *st;
    lock(s);
    int rc = prepare(s, "INSERT INTO revocations(cert_id, revoked_at, reason, issuer) VALUES (?, ?, ?, ?)", &st,
                     err);
    if (rc == 0) {
        bind_text(st, 1, cert_id);
        bind_text(st, 2, revoked_at);
        bind_text(st, 3, reason);
        bind_text(st, 4, issuer);
        rc = step_done(s, st, "revocation", err);
        if (rc == GM_ECONFLICT)
            gm_error_set(err, GM_ECONFLICT, "certificate %s is already revoked", cert_id);
    }
    unlock(s);
    return rc;
}

static int sq_revocation_update(gm_store_t *gs, const char *cert_id, const char *revoked_at, const char *reason,
                                gm_error *err)
{
    sq_store *s = (sq_store *)gs;
    sqlite3_stmt *st;
    lock(s);
    int rc = prepare(s, "UPDATE revocations SET revoked_at = ?, reason = ? WHERE cert_id = ?", &st, err);
    if (rc == 0) {
        bind_text(st, 1, revoked_at);
        bind_text(st, 2, reason);
        bind_text(st, 3, cert_id);
        rc = step_done(s, st, "revocation", err);
        if (rc == 0 && sqlite3_changes(s->db) != 1)
            rc = gm_error_set(err, GM_ENOTFOUND, "certificate %s is not revoked", cert_id);
    }
    unlock(s);
    return rc;
}

static int sq_revocations_json(gm_store_t *gs, int64_t live_at, json_t **entries, gm_error *err)
{
    sq_store *s = (sq_store *)gs;
    sqlite3_stmt *st;
    *entries = NULL;
    json_t *arr = json_array();
    if (!arr)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    lock(s);
    /* A revocation of a certificate the store does not know (none today) is always listed. */
    int rc = prepare(s,
                     "SELECT r.cert_id, r.revoked_at, r.reason, r.issuer FROM revocations r"
                     " LEFT JOIN certificates c ON c.cert_id = r.cert_id"
                     " WHERE c.expires_at IS NULL OR c.expires_at + ?1 >= ?2 ORDER BY r.seq",
                     &st, err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, GM_CLOCK_SKEW_S);
        sqlite3_bind_int64(st, 2, live_at);
        int r;
        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
            json_t *e = json_pack("{s:s,s:s,s:s,s:s}", "certificate_id", (const char *)sqlite3_column_text(st, 0),
                                  "revoked_at", (const char *)sqlite3_column_text(st, 1), "reason",
                                  (const char *)sqlite3_column_text(st, 2), "issuer",
                                  (const char *)sqlite3_column_text(st, 3));
            if (!e || json_array_append_new(arr, e) != 0) {
                rc = gm_error_set(err, GM_ENOMEM, "out of memory building the revocation list");
                break;
            }
        }
        if (rc == 0 && r != SQLITE_DONE)
            rc = db_fail(s, err, "listing revocations");
        release(s, st);
    }
    unlock(s);
    if (rc != 0)
        json_decref(arr);
    else
        *entries = arr;
    return rc;
}

/* ---- the issuance log ---- */

static int sq_log_append(gm_store_t *gs, const char *kind, const char *cert_id, const char *entry,
                         const uint8_t leaf_hash[32], uint64_t *index, gm_error *err)
{
    sq_store *s = (sq_store *)gs;
    sqlite3_stmt *st;
    lock(s);
    /* The next index is taken by the statement that writes it, so entries never share one.
     * A scalar subquery and last_insert_rowid (idx is the rowid), not INSERT ... SELECT ...
     * RETURNING: those build two temporary tables per append (a page cache allocated, touched
     * and trimmed each time, about a sixth of the NA's CPU per join). */
    int rc = prepare(s,
                     "INSERT INTO issuance_log(idx, kind, cert_id, entry, leaf_hash)"
                     " VALUES ((SELECT COALESCE(MAX(idx), -1) + 1 FROM issuance_log), ?, ?, ?, ?)",
                     &st, err);
    if (rc == 0) {
        bind_text(st, 1, kind);
        bind_text(st, 2, cert_id);
        bind_text(st, 3, entry);
        sqlite3_bind_blob(st, 4, leaf_hash, 32, SQLITE_TRANSIENT);
        if (sqlite3_step(st) == SQLITE_DONE) {
            if (index)
                *index = (uint64_t)sqlite3_last_insert_rowid(s->db);
        } else {
            rc = db_fail(s, err, "appending to the issuance log");
        }
        release(s, st);
    }
    unlock(s);
    return rc;
}

static int sq_log_size(gm_store_t *gs, uint64_t *n, gm_error *err)
{
    sq_store *s = (sq_store *)gs;
    sqlite3_stmt *st;
    lock(s);
    int rc = prepare(s, "SELECT COALESCE(MAX(idx), -1) + 1 FROM issuance_log", &st, err);
    if (rc == 0) {
        if (sqlite3_step(st) == SQLITE_ROW)
            *n = (uint64_t)sqlite3_column_int64(st, 0);
        else
            rc = db_fail(s, err, "reading the issuance log's size");
        release(s, st);
    }
    unlock(s);
    return rc;
}

static int sq_log_hashes(gm_store_t *gs, uint64_t n, uint8_t **hashes, gm_error *err)
{
    sq_store *s = (sq_store *)gs;
    sqlite3_stmt *st;
    *hashes = NULL;
    if (n == 0)
        return 0;
    if (n > SIZE_MAX / 32)
        return gm_error_set(err, GM_ETOOBIG, "issuance log too large");
    uint8_t *h = malloc((size_t)n * 32);
    if (!h)
        return gm_error_set(err, GM_ENOMEM, "out of memory reading %llu log hashes", (unsigned long long)n);
    lock(s);
    int rc = prepare(s, "SELECT idx, leaf_hash FROM issuance_log WHERE idx < ? ORDER BY idx", &st, err);
    uint64_t got = 0;
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)n);
        int r;
        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
            if ((uint64_t)sqlite3_column_int64(st, 0) != got || sqlite3_column_bytes(st, 1) != 32) {
                rc = gm_error_set(err, GM_EDB, "database %s: issuance log entry %llu is missing or damaged", s->path,
                                  (unsigned long long)got);
                break;
            }
            memcpy(h + got * 32, sqlite3_column_blob(st, 1), 32);
            got++;
        }
        if (rc == 0 && r != SQLITE_DONE)
            rc = db_fail(s, err, "reading the issuance log");
        if (rc == 0 && got != n)
            rc = gm_error_set(err, GM_EDB, "database %s: the issuance log has %llu entries, not %llu", s->path,
                              (unsigned long long)got, (unsigned long long)n);
        release(s, st);
    }
    unlock(s);
    if (rc != 0)
        free(h);
    else
        *hashes = h;
    return rc;
}

static int sq_log_entry(gm_store_t *gs, uint64_t index, char **entry, uint8_t leaf_hash[32], gm_error *err)
{
    sq_store *s = (sq_store *)gs;
    sqlite3_stmt *st;
    *entry = NULL;
    lock(s);
    int rc = prepare(s, "SELECT entry, leaf_hash FROM issuance_log WHERE idx = ?", &st, err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)index);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW && sqlite3_column_bytes(st, 1) == 32) {
            memcpy(leaf_hash, sqlite3_column_blob(st, 1), 32);
            if (!(*entry = col_dup(st, 0)))
                rc = gm_error_set(err, GM_ENOMEM, "out of memory");
        } else if (r == SQLITE_DONE) {
            rc = gm_error_set(err, GM_ENOTFOUND, "no issuance log entry %llu", (unsigned long long)index);
        } else {
            rc = db_fail(s, err, "reading an issuance log entry");
        }
        release(s, st);
    }
    unlock(s);
    return rc;
}

static int sq_log_find(gm_store_t *gs, const char *kind, const char *cert_id, uint64_t *index, gm_error *err)
{
    sq_store *s = (sq_store *)gs;
    sqlite3_stmt *st;
    lock(s);
    int rc = prepare(s, "SELECT MIN(idx) FROM issuance_log WHERE cert_id = ? AND kind = ?", &st, err);
    if (rc == 0) {
        bind_text(st, 1, cert_id);
        bind_text(st, 2, kind);
        if (sqlite3_step(st) != SQLITE_ROW)
            rc = db_fail(s, err, "searching the issuance log");
        else if (sqlite3_column_type(st, 0) == SQLITE_NULL)
            rc = gm_error_set(err, GM_ENOTFOUND, "the issuance log has no %s entry for certificate %s", kind, cert_id);
        else
            *index = (uint64_t)sqlite3_column_int64(st, 0);
        release(s, st);
    }
    unlock(s);
    return rc;
}

static int sq_crl_latest(gm_store_t *gs, uint64_t *sequence, char **doc, gm_error *err)
{
    sq_store *s = (sq_store *)gs;
    sqlite3_stmt *st;
    if (doc)
        *doc = NULL;
    lock(s);
    int rc = prepare(s, "SELECT sequence, doc FROM crls ORDER BY sequence DESC LIMIT 1", &st, err);
    if (rc == 0) {
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            *sequence = (uint64_t)sqlite3_column_int64(st, 0);
            if (doc && !(*doc = col_dup(st, 1)))
                rc = gm_error_set(err, GM_ENOMEM, "out of memory");
        } else if (r == SQLITE_DONE) {
            rc = gm_error_set(err, GM_ENOTFOUND, "no CRL issued yet");
        } else {
            rc = db_fail(s, err, "reading the latest CRL");
        }
        release(s, st);
    }
    unlock(s);
    return rc;
}

static int sq_crl_add(gm_store_t *gs, uint64_t sequence, const char *doc, int64_t now, gm_error *err)
{
    sq_store *s = (sq_store *)gs;
    sqlite3_stmt *st;
    lock(s);
    /* One statement: the insert only happens when the sequence goes up. */
    int rc = prepare(s,
                     "INSERT INTO crls(sequence, doc, created_at) SELECT ?1, ?2, ?3"
                     " WHERE ?1 > COALESCE((SELECT MAX(sequence) FROM crls), -1)",
                     &st, err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)sequence);
        bind_text(st, 2, doc);
        sqlite3_bind_int64(st, 3, now);
        rc = step_done(s, st, "CRL", err);
        if (rc == 0 && sqlite3_changes(s->db) != 1)
            rc = gm_error_set(err, GM_ECONFLICT, "CRL sequence %llu is not higher than the stored one",
                              (unsigned long long)sequence);
        else if (rc == GM_ECONFLICT)
            gm_error_set(err, GM_ECONFLICT, "CRL sequence %llu already stored", (unsigned long long)sequence);
    }
    unlock(s);
    return rc;
}

static int sq_crls_foreach(gm_store_t *gs, size_t limit, gm_store_crl_fn fn, void *ctx, gm_error *err)
{
    sq_store *s = (sq_store *)gs;
    sqlite3_stmt *st;
    lock(s);
    int rc = prepare(s, "SELECT sequence, created_at FROM crls ORDER BY sequence DESC LIMIT ?", &st, err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, limit > (size_t)INT64_MAX ? INT64_MAX : (sqlite3_int64)limit);
        int r;
        while ((r = sqlite3_step(st)) == SQLITE_ROW)
            if ((rc = fn((uint64_t)sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1), ctx)) != 0)
                break;
        if (rc == 0 && r != SQLITE_DONE)
            rc = db_fail(s, err, "listing CRLs");
        release(s, st);
    }
    unlock(s);
    return rc;
}

/* ---- blocked keys ---- */

static int sq_key_block(gm_store_t *gs, const char *node_pk_b64, const char *reason, int64_t now, gm_error *err)
{
    sq_store *s = (sq_store *)gs;
    sqlite3_stmt *st;
    lock(s);
    int rc = prepare(s,
                     "INSERT INTO blocked_keys(node_public_key, reason, blocked_at) VALUES (?, ?, ?)"
                     " ON CONFLICT(node_public_key) DO UPDATE SET reason = excluded.reason,"
                     " blocked_at = excluded.blocked_at",
                     &st, err);
    if (rc == 0) {
        bind_text(st, 1, node_pk_b64);
        bind_text(st, 2, reason);
        sqlite3_bind_int64(st, 3, now);
        rc = step_done(s, st, "blocking key", err);
    }
    unlock(s);
    return rc;
}

static int sq_key_blocked(gm_store_t *gs, const char *node_pk_b64, int *blocked, gm_error *err)
{
    sq_store *s = (sq_store *)gs;
    sqlite3_stmt *st;
    lock(s);
    int rc = prepare(s, "SELECT 1 FROM blocked_keys WHERE node_public_key = ?", &st, err);
    if (rc == 0) {
        bind_text(st, 1, node_pk_b64);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW || r == SQLITE_DONE)
            *blocked = r == SQLITE_ROW;
        else
            rc = db_fail(s, err, "reading blocked keys");
        release(s, st);
    }
    unlock(s);
    return rc;
}

static int sq_key_unblock(gm_store_t *gs, const char *node_pk_b64, gm_error *err)
{
    sq_store *s = (sq_store *)gs;
    sqlite3_stmt *st;
    lock(s);
    int rc = prepare(s, "DELETE FROM blocked_keys WHERE node_public_key = ?", &st, err);
    if (rc == 0) {
        bind_text(st, 1, node_pk_b64);
        rc = step_done(s, st, "unblocking key", err);
        if (rc == 0 && sqlite3_changes(s->db) == 0)
            rc = gm_error_set(err, GM_ENOTFOUND, "node key %s is not blocked", node_pk_b64);
    }
    unlock(s);
    return rc;
}

/* ---- agent descriptors ---- */

static int sq_agent_owner(gm_store_t *gs, const char *agent_id, int64_t live_at, char owner[GM_PK_B64_LEN + 1],
                          gm_error *err)
{
    sq_store *s = (sq_store *)gs;
    sqlite3_stmt *st;
    owner[0] = '\0';
    lock(s);
    int rc = prepare(s, "SELECT node_public_key FROM agents WHERE agent_id = ? AND expires_at >= ?", &st, err);
    if (rc == 0) {
        bind_text(st, 1, agent_id);
        sqlite3_bind_int64(st, 2, live_at);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW)
            col_copy(st, 0, owner, GM_PK_B64_LEN + 1);
        else if (r == SQLITE_DONE)
            rc = gm_error_set(err, GM_ENOTFOUND, "no live agent '%s'", agent_id);
        else
            rc = db_fail(s, err, "looking up an agent");
        release(s, st);
    }
    unlock(s);
    return rc;
}

static int sq_agent_put(gm_store_t *gs, const gm_store_agent *a, gm_error *err)
{
    sq_store *s = (sq_store *)gs;
    sqlite3_stmt *st;
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
    lock(s);
    int rc = prepare(s,
                     "INSERT OR REPLACE INTO agents(agent_id, node_public_key, capabilities, registered_at,"
                     " expires_at, doc) VALUES (?, ?, ?, ?, ?, ?)",
                     &st, err);
    if (rc == 0) {
        bind_text(st, 1, a->agent_id);
        bind_text(st, 2, a->node_pk);
        bind_text(st, 3, caps);
        sqlite3_bind_int64(st, 4, a->registered_at);
        sqlite3_bind_int64(st, 5, a->expires_at);
        bind_text(st, 6, a->doc);
        rc = step_done(s, st, "agent descriptor", err);
    }
    unlock(s);
    free(caps);
    return rc;
}

static int sq_agents_prune(gm_store_t *gs, int64_t expired_before, gm_error *err)
{
    sq_store *s = (sq_store *)gs;
    sqlite3_stmt *st;
    lock(s);
    int rc = prepare(s, "DELETE FROM agents WHERE expires_at < ?", &st, err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, expired_before);
        rc = step_done(s, st, "pruning agent descriptors", err);
    }
    unlock(s);
    return rc;
}

static int sq_agents_foreach(gm_store_t *gs, const char *capability, int64_t live_at, size_t limit,
                             gm_store_agent_fn fn, void *ctx, gm_error *err)
{
    sq_store *s = (sq_store *)gs;
    sqlite3_stmt *st;
    char *tag = sqlite3_mprintf(",%s,", capability ? capability : "");
    if (!tag)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    lock(s);
    int rc = prepare(s,
                     "SELECT node_public_key, doc FROM agents WHERE expires_at >= ?1 AND"
                     " (?2 = ',,' OR instr(capabilities, ?2) > 0) ORDER BY agent_id, node_public_key LIMIT ?3",
                     &st, err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, live_at);
        bind_text(st, 2, tag);
        sqlite3_bind_int64(st, 3, limit > (size_t)INT64_MAX ? INT64_MAX : (sqlite3_int64)limit);
        int r;
        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
            const unsigned char *pk = sqlite3_column_text(st, 0), *doc = sqlite3_column_text(st, 1);
            if ((rc = fn(pk ? (const char *)pk : "", doc ? (const char *)doc : "", ctx)) != 0)
                break;
        }
        if (rc == 0 && r != SQLITE_DONE)
            rc = db_fail(s, err, "listing agents");
        release(s, st);
    }
    unlock(s);
    sqlite3_free(tag);
    return rc;
}

static int sq_agents_delete(gm_store_t *gs, const char *node_pk_b64, const char *agent_id, int64_t *deleted,
                            gm_error *err)
{
    sq_store *s = (sq_store *)gs;
    sqlite3_stmt *st;
    if (deleted)
        *deleted = 0;
    lock(s);
    int rc = prepare(s,
                     agent_id ? "DELETE FROM agents WHERE node_public_key = ?1 AND agent_id = ?2"
                              : "DELETE FROM agents WHERE node_public_key = ?1",
                     &st, err);
    if (rc == 0) {
        bind_text(st, 1, node_pk_b64);
        if (agent_id)
            bind_text(st, 2, agent_id);
        rc = step_done(s, st, "deleting agent descriptors", err);
        if (rc == 0 && deleted)
            *deleted = sqlite3_changes(s->db);
    }
    unlock(s);
    return rc;
}

const gm_store_ops gm_store_backend_sqlite = {
    .name = "sqlite",
    .accepts = sq_accepts,
    .open = sq_open,
    .close = sq_close,
    .schema_version = sq_schema_version,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .durable_wait = sq_durable_wait,
    .commit_deferred = sq_commit_deferred,
    .durable_notify = sq_durable_notify,
    .hold_syncs = sq_hold_syncs,
    .stats = sq_stats,
    .nonce_record = sq_nonce_record,
    .nonce_prune = sq_nonce_prune,
    .invite_add = sq_invite_add,
    .invite_get = sq_invite_get,
    .invite_consume = sq_invite_consume,
    .invites_outstanding = sq_invites_outstanding,
    .invites_foreach = sq_invites_foreach,
    .cert_add = sq_cert_add,
    .cert_get = sq_cert_get,
    .certs_foreach = sq_certs_foreach,
    .cert_count = sq_cert_count,
    .cert_heartbeat = sq_cert_heartbeat,
    .revocation_add = sq_revocation_add,
    .revocation_update = sq_revocation_update,
    .log_append = sq_log_append,
    .log_size = sq_log_size,
    .log_hashes = sq_log_hashes,
    .log_entry = sq_log_entry,
    .log_find = sq_log_find,
    .revocations_json = sq_revocations_json,
    .crl_latest = sq_crl_latest,
    .crl_add = sq_crl_add,
    .crls_foreach = sq_crls_foreach,
    .key_block = sq_key_block,
    .key_blocked = sq_key_blocked,
    .key_unblock = sq_key_unblock,
    .agent_owner = sq_agent_owner,
    .agent_put = sq_agent_put,
    .agents_prune = sq_agents_prune,
    .agents_foreach = sq_agents_foreach,
    .agents_delete = sq_agents_delete,
};
