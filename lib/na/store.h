/* Durable state of the Network Authority: invites, certificates, revocations, CRLs, blocked
 * keys, request nonces and agent descriptors. Every operation goes through a backend's table
 * (lib/na/store_backend.h); the store owns all SQL, so a backend can be added without
 * touching the NA. The SQLite backend (lib/na/store_sqlite.c): WAL journal, group commit
 * (gm_store_commit returns once the WAL is synced, so a committed transaction survives a crash
 * or power loss, as with synchronous=FULL; concurrent requests share one SQLite transaction,
 * each in a savepoint, and one sync), busy_timeout, numbered migrations.
 *
 * A handle is one connection guarded by a recursive mutex, so threads may share it:
 * gm_store_begin() takes the lock and holds it until gm_store_commit()/gm_store_rollback(),
 * and every other call made by that thread in between runs inside the transaction.
 * Several handles (or processes) on one file are serialized by SQLite itself
 * (BEGIN IMMEDIATE + busy_timeout). */
#ifndef GM_STORE_H
#define GM_STORE_H

#include <jansson.h>
#include <stdint.h>

#include "gm/error.h"
#include "gm/keys.h"

/* The schema version this program creates and understands. */
#define GM_STORE_SCHEMA_VERSION 5
/* How long a lock held by another connection is waited for before GM_EDB. */
#define GM_STORE_BUSY_TIMEOUT_MS 10000

typedef struct gm_store gm_store_t;

/* Open (creating if needed) the database at path with the backend that serves it (SQLite for
 * a file path) and apply pending migrations.
 * Refuses a database whose schema is newer than GM_STORE_SCHEMA_VERSION. */
int gm_store_open(gm_store_t **s, const char *path, gm_error *err);
void gm_store_close(gm_store_t *s);
/* Highest migration applied (from the schema_version table). */
int gm_store_schema_version(gm_store_t *s, int *version, gm_error *err);

/* BEGIN IMMEDIATE: the write lock is taken now, so read-check-write sequences inside
 * the transaction cannot interleave with another writer. Not nestable. */
int gm_store_begin(gm_store_t *s, gm_error *err);
int gm_store_commit(gm_store_t *s, gm_error *err);
/* Roll back (no-op outside a transaction) and release the lock. */
void gm_store_rollback(gm_store_t *s);
/* gm_store_commit returns once the transaction is durable; several threads' commits may share
 * one sync (group commit). A thread that read or wrote without gm_store_begin may have seen a
 * commit not yet durable: this waits until everything it saw is (call before answering). */
int gm_store_durable_wait(gm_store_t *s, gm_error *err);
/* gm_store_commit without the wait: the request's writes join the batch and this thread holds
 * them as seen, so the caller must gm_store_durable_wait or gm_store_durable_notify before it
 * answers anyone. Where the backend has nothing to defer it is gm_store_commit. */
int gm_store_commit_deferred(gm_store_t *s, gm_error *err);

/* A waiter for gm_store_durable_notify, owned by the caller (the store links it while it waits). */
typedef struct gm_store_waiter gm_store_waiter;
struct gm_store_waiter {
    void (*done)(gm_store_waiter *w); /* set by the caller; called once, on a store thread */
    void *arg;                        /* the caller's */
    int rc;                           /* for done: 0 when durable, else a gm_err with err set */
    gm_error err;
    gm_store_waiter *next;            /* the store's */
    uint64_t id;                      /* the store's */
};
/* gm_store_durable_wait without holding the thread while another thread's sync runs:
 * 0 when everything this thread saw is durable now (this thread synced it when no sync was
 * running: nothing to gain by handing it over), 1 when w->done will be called once it is (or
 * it failed), from a store thread and possibly before this returns; a negative gm_err when it
 * cannot be (w is then not used). */
int gm_store_durable_notify(gm_store_t *s, gm_store_waiter *w, gm_error *err);
/* For tests: hold (1) as if a sync were running, until released (0), so that a request is seen
 * waiting for its commit. GM_EINVAL on a backend without group commit. */
int gm_store_hold_syncs(gm_store_t *s, int hold, gm_error *err);
/* What the store did since open (0 where a backend does not know). */
typedef struct gm_store_counters {
    uint64_t commits;       /* transactions committed */
    uint64_t syncs;         /* disk syncs that made them durable (<= commits under group commit) */
    uint64_t sync_ns;       /* time spent in those syncs */
    uint64_t wal_bytes;     /* written to the write-ahead log */
    uint64_t checkpoints;   /* write-ahead log checkpoints, by a thread of the store or inside a commit */
    uint64_t checkpoint_ns; /* time spent in them */
    uint64_t checkpoints_inline;   /* of those, run inside a commit (no request reaches the store meanwhile) */
    uint64_t checkpoint_inline_ns; /* time spent in them */
} gm_store_counters;
void gm_store_stats(gm_store_t *s, gm_store_counters *c);
/* SQLite: past this many pages the write-ahead log is checkpointed inside the commit (its
 * checkpointer thread could not finish it beside the writes); the log stays under twice it
 * and one commit's pages. */
#define GM_STORE_WAL_BOUND_PAGES 8000

/* ---- request nonces (replay protection) ---- */

/* Remember nonce for scope (an operator key id, "node:<public key>"); GM_ECONFLICT if seen. */
int gm_store_nonce_record(gm_store_t *s, const char *scope, const char *nonce, int64_t now,
                          gm_error *err);
/* Forget nonces recorded before older_than (unix seconds). */
int gm_store_nonce_prune(gm_store_t *s, int64_t older_than, gm_error *err);

/* ---- invites ---- */

typedef struct gm_store_invite {
    char token_hash[65];        /* hex SHA-256 of the token; the token itself is never stored */
    char *roles_json;           /* JSON array text, malloc'd */
    int64_t created_at, expires_at;
    int64_t max_validity_hours;
    int used;
    int64_t used_at;
    char used_by[GM_PK_B64_LEN + 1];
} gm_store_invite;

int gm_store_invite_add(gm_store_t *s, const char *token_hash, const char *roles_json,
                        int64_t created_at, int64_t expires_at, int64_t max_validity_hours,
                        gm_error *err);
/* GM_ENOTFOUND if no such invite. inv must be cleared with gm_store_invite_clear. */
int gm_store_invite_get(gm_store_t *s, const char *token_hash, gm_store_invite *inv, gm_error *err);
/* Mark the invite used by node_pk_b64, only if it is unused and unexpired at now (one
 * UPDATE ... WHERE used = 0, so exactly one caller ever wins). On success inv (optional)
 * receives the invite. Otherwise GM_ENOTFOUND, GM_ECONFLICT (already used) or GM_EEXPIRED. */
int gm_store_invite_consume(gm_store_t *s, const char *token_hash, const char *node_pk_b64,
                            int64_t now, gm_store_invite *inv, gm_error *err);
/* Unused, unexpired invites at now. */
int gm_store_invites_outstanding(gm_store_t *s, int64_t now, int64_t *n, gm_error *err);
/* Called per outstanding invite (unused, unexpired at now), oldest first, at most limit of
 * them; a non-zero return stops the walk and is returned. The record (token hash, never a
 * token) is only valid during the call. */
typedef int (*gm_store_invite_fn)(const gm_store_invite *inv, void *ctx);
int gm_store_invites_foreach(gm_store_t *s, int64_t now, size_t limit, gm_store_invite_fn fn, void *ctx,
                             gm_error *err);
void gm_store_invite_clear(gm_store_invite *inv);

/* ---- certificates ---- */

#define GM_STORE_STATUS_MAX 64 /* characters of a heartbeat status */

typedef struct gm_store_cert {
    char cert_id[37];
    char node_pk[GM_PK_B64_LEN + 1];
    char *roles_json;           /* JSON array text */
    int64_t issued_at, expires_at;
    int64_t max_validity_hours; /* of the invite it came from (renewals are capped by it) */
    char *doc;                  /* the signed certificate, compact JSON */
    int revoked;                /* filled by get/foreach from the revocations */
    char reason[32];
    char revoked_at[64];
    int64_t last_heartbeat;     /* unix seconds of the node's last POST /heartbeat, 0 = never */
    char heartbeat_status[GM_STORE_STATUS_MAX + 1]; /* the status it reported then ("" = never) */
} gm_store_cert;

/* Insert (cert_id must be new: GM_ECONFLICT otherwise). revoked/reason are ignored. */
int gm_store_cert_add(gm_store_t *s, const gm_store_cert *c, gm_error *err);
int gm_store_cert_get(gm_store_t *s, const char *cert_id, gm_store_cert *c, gm_error *err);
/* Called once per certificate, oldest first; a non-zero return stops the walk and is
 * returned by gm_store_certs_foreach. The record is only valid during the call. */
typedef int (*gm_store_cert_fn)(const gm_store_cert *c, void *ctx);
/* All certificates, or only those of node_pk_b64 when it is not NULL. */
int gm_store_certs_foreach(gm_store_t *s, const char *node_pk_b64, gm_store_cert_fn fn, void *ctx,
                           gm_error *err);
int gm_store_cert_count(gm_store_t *s, int64_t *n, gm_error *err);
/* Record a heartbeat of cert_id at now with the node's status (at most GM_STORE_STATUS_MAX
 * characters): the "last seen" that gm_store_certs_foreach reports. GM_ENOTFOUND if there is
 * no such certificate. */
int gm_store_cert_heartbeat(gm_store_t *s, const char *cert_id, int64_t now, const char *status, gm_error *err);
void gm_store_cert_clear(gm_store_cert *c);

/* ---- revocations and CRLs ---- */

/* Record a revocation (GM_ECONFLICT if cert_id is already revoked). revoked_at is the
 * canonical timestamp text that goes into the CRL. */
int gm_store_revocation_add(gm_store_t *s, const char *cert_id, const char *revoked_at,
                            const char *reason, const char *issuer, gm_error *err);
/* Change a recorded revocation's time and reason (a supersession still in its overlap, revoked
 * for another reason). GM_ENOTFOUND if cert_id is not revoked. */
int gm_store_revocation_update(gm_store_t *s, const char *cert_id, const char *revoked_at, const char *reason,
                               gm_error *err);
/* The revocations a CRL issued at live_at must list, in the order recorded, as CRL entries
 * [{certificate_id, revoked_at, reason, issuer}] (new reference): an entry whose
 * certificate expired (expires_at + GM_CLOCK_SKEW_S) before live_at is left out, since no
 * node accepts that certificate any more. INT64_MIN lists every revocation. */
int gm_store_revocations_json(gm_store_t *s, int64_t live_at, json_t **entries, gm_error *err);
/* The highest-sequence CRL: *doc malloc'd (may be NULL if not wanted). GM_ENOTFOUND if none. */
int gm_store_crl_latest(gm_store_t *s, uint64_t *sequence, char **doc, gm_error *err);
/* Store a CRL; GM_ECONFLICT unless sequence is higher than every stored one. */
int gm_store_crl_add(gm_store_t *s, uint64_t sequence, const char *doc, int64_t now, gm_error *err);
/* The CRLs the store keeps (every one published), newest first, at most limit of them:
 * sequence and when it was stored; a non-zero return stops the walk and is returned. */
typedef int (*gm_store_crl_fn)(uint64_t sequence, int64_t created_at, void *ctx);
int gm_store_crls_foreach(gm_store_t *s, size_t limit, gm_store_crl_fn fn, void *ctx, gm_error *err);

/* Wait up to timeout_ms for a CRL stored through another connection to the same database
 * (another replica of the NA): 0 when one was, GM_ETIMEOUT when none came in that time,
 * GM_EDB when the database cannot be reached. PostgreSQL: LISTEN/NOTIFY on gm_crl, on a
 * connection of its own, so it never holds up the handle's other calls. GM_EINVAL for a
 * backend without notifications across processes (SQLite: one NA process owns the file, and
 * it learns of its own CRLs in-process). Never call it with a transaction open. */
int gm_store_crl_wait(gm_store_t *s, int timeout_ms, gm_error *err);

/* ---- the issuance log (lib/na/na_issuance.c): append-only, index from 0 ---- */

/* Append entry (canonical JSON text) with its leaf hash; *index (optional) gets its index. */
int gm_store_log_append(gm_store_t *s, const char *kind, const char *cert_id, const char *entry,
                        const uint8_t leaf_hash[32], uint64_t *index, gm_error *err);
int gm_store_log_size(gm_store_t *s, uint64_t *n, gm_error *err);
/* The leaf hashes of entries [0, n): *hashes malloc'd (32 bytes each; NULL when n is 0). */
int gm_store_log_hashes(gm_store_t *s, uint64_t n, uint8_t **hashes, gm_error *err);
/* Entry index: *entry malloc'd, leaf_hash its stored hash. GM_ENOTFOUND past the end. */
int gm_store_log_entry(gm_store_t *s, uint64_t index, char **entry, uint8_t leaf_hash[32], gm_error *err);
/* Index of the first entry of kind about cert_id. GM_ENOTFOUND if none. */
int gm_store_log_find(gm_store_t *s, const char *kind, const char *cert_id, uint64_t *index, gm_error *err);

/* ---- node keys blocked after a key_compromise revocation ---- */

int gm_store_key_block(gm_store_t *s, const char *node_pk_b64, const char *reason, int64_t now,
                       gm_error *err);
/* *blocked = 1 if the key is blocked. */
int gm_store_key_blocked(gm_store_t *s, const char *node_pk_b64, int *blocked, gm_error *err);
/* Lift the block; GM_ENOTFOUND if the key was not blocked. */
int gm_store_key_unblock(gm_store_t *s, const char *node_pk_b64, gm_error *err);

/* ---- agent descriptors (the NA's registry, lib/na/na_agents.c) ---- */

typedef struct gm_store_agent {
    const char *agent_id;
    const char *node_pk;          /* base64 node key that signed the descriptor */
    const char *const *caps;      /* normalized capability names */
    size_t n_caps;
    int64_t registered_at, expires_at;
    const char *doc;              /* the signed descriptor, compact JSON */
} gm_store_agent;

/* The node key holding agent_id with a descriptor that has not expired at live_at
 * (expires_at >= live_at) into owner; GM_ENOTFOUND if there is none. */
int gm_store_agent_owner(gm_store_t *s, const char *agent_id, int64_t live_at, char owner[GM_PK_B64_LEN + 1],
                         gm_error *err);
/* Insert a descriptor, replacing the stored one of the same agent_id. */
int gm_store_agent_put(gm_store_t *s, const gm_store_agent *a, gm_error *err);
/* Forget descriptors that expired before expired_before. */
int gm_store_agents_prune(gm_store_t *s, int64_t expired_before, gm_error *err);
/* Called per descriptor; a non-zero return stops the walk and is returned. The strings are
 * only valid during the call. */
typedef int (*gm_store_agent_fn)(const char *node_pk_b64, const char *doc, void *ctx);
/* Descriptors not expired at live_at that offer capability (exact name; NULL or "" for all),
 * ordered by agent_id then node key, at most limit of them. */
int gm_store_agents_foreach(gm_store_t *s, const char *capability, int64_t live_at, size_t limit,
                            gm_store_agent_fn fn, void *ctx, gm_error *err);
/* Delete node_pk_b64's descriptor agent_id, or every descriptor of the key when agent_id is
 * NULL; *deleted (optional) receives how many went. */
int gm_store_agents_delete(gm_store_t *s, const char *node_pk_b64, const char *agent_id, int64_t *deleted,
                           gm_error *err);

#endif
