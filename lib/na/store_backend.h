/* The store's backend interface (the way Redis ae.c puts epoll/kqueue/select behind one
 * table): lib/na/store.c implements lib/na/store.h by calling through a backend's table, and
 * each backend (lib/na/store_sqlite.c, lib/na/store_pg.c) fills one. A backend owns
 * its SQL, its schema migrations and its locking; the NA never sees a database handle.
 * Every operation has the meaning documented for its gm_store_* counterpart in lib/na/store.h. */
#ifndef GM_STORE_BACKEND_H
#define GM_STORE_BACKEND_H

#include "store.h"

typedef struct gm_store_ops {
    const char *name;
    /* 1 if this backend serves location (a file path, a URL); the first that does opens it. */
    int (*accepts)(const char *location);
    int (*open)(gm_store_t **s, const char *location, gm_error *err);
    void (*close)(gm_store_t *s);
    int (*schema_version)(gm_store_t *s, int *version, gm_error *err);

    int (*begin)(gm_store_t *s, gm_error *err);
    int (*commit)(gm_store_t *s, gm_error *err);
    void (*rollback)(gm_store_t *s);
    /* Optional (NULL: nothing to wait for, no figures). */
    int (*durable_wait)(gm_store_t *s, gm_error *err);
    int (*commit_deferred)(gm_store_t *s, gm_error *err);               /* NULL: commit */
    int (*durable_notify)(gm_store_t *s, gm_store_waiter *w, gm_error *err); /* NULL: durable_wait */
    void (*hold_syncs)(gm_store_t *s, int hold);                          /* NULL: none to hold */
    void (*stats)(gm_store_t *s, gm_store_counters *c);

    int (*nonce_record)(gm_store_t *s, const char *scope, const char *nonce, int64_t now, gm_error *err);
    int (*nonce_prune)(gm_store_t *s, int64_t older_than, gm_error *err);

    int (*invite_add)(gm_store_t *s, const char *token_hash, const char *roles_json, int64_t created_at,
                      int64_t expires_at, int64_t max_validity_hours, gm_error *err);
    int (*invite_get)(gm_store_t *s, const char *token_hash, gm_store_invite *inv, gm_error *err);
    int (*invite_consume)(gm_store_t *s, const char *token_hash, const char *node_pk_b64, int64_t now,
                          gm_store_invite *inv, gm_error *err);
    int (*invites_outstanding)(gm_store_t *s, int64_t now, int64_t *n, gm_error *err);
    int (*invites_foreach)(gm_store_t *s, int64_t now, size_t limit, gm_store_invite_fn fn, void *ctx,
                           gm_error *err);

    int (*cert_add)(gm_store_t *s, const gm_store_cert *c, gm_error *err);
    int (*cert_get)(gm_store_t *s, const char *cert_id, gm_store_cert *c, gm_error *err);
    int (*certs_foreach)(gm_store_t *s, const char *node_pk_b64, gm_store_cert_fn fn, void *ctx, gm_error *err);
    int (*cert_count)(gm_store_t *s, int64_t *n, gm_error *err);
    int (*cert_heartbeat)(gm_store_t *s, const char *cert_id, int64_t now, const char *status, gm_error *err);

    int (*revocation_add)(gm_store_t *s, const char *cert_id, const char *revoked_at, const char *reason,
                          const char *issuer, gm_error *err);
    int (*revocation_update)(gm_store_t *s, const char *cert_id, const char *revoked_at, const char *reason,
                             gm_error *err);
    int (*revocations_json)(gm_store_t *s, int64_t live_at, json_t **entries, gm_error *err);
    int (*crl_latest)(gm_store_t *s, uint64_t *sequence, char **doc, gm_error *err);
    int (*crl_add)(gm_store_t *s, uint64_t sequence, const char *doc, int64_t now, gm_error *err);
    int (*crls_foreach)(gm_store_t *s, size_t limit, gm_store_crl_fn fn, void *ctx, gm_error *err);

    int (*log_append)(gm_store_t *s, const char *kind, const char *cert_id, const char *entry,
                      const uint8_t leaf_hash[32], uint64_t *index, gm_error *err);
    int (*log_size)(gm_store_t *s, uint64_t *n, gm_error *err);
    int (*log_hashes)(gm_store_t *s, uint64_t n, uint8_t **hashes, gm_error *err);
    int (*log_entry)(gm_store_t *s, uint64_t index, char **entry, uint8_t leaf_hash[32], gm_error *err);
    int (*log_find)(gm_store_t *s, const char *kind, const char *cert_id, uint64_t *index, gm_error *err);

    int (*key_block)(gm_store_t *s, const char *node_pk_b64, const char *reason, int64_t now, gm_error *err);
    int (*key_blocked)(gm_store_t *s, const char *node_pk_b64, int *blocked, gm_error *err);
    int (*key_unblock)(gm_store_t *s, const char *node_pk_b64, gm_error *err);

    int (*agent_owner)(gm_store_t *s, const char *agent_id, int64_t live_at, char owner[GM_PK_B64_LEN + 1],
                       gm_error *err);
    int (*agent_put)(gm_store_t *s, const gm_store_agent *a, gm_error *err);
    int (*agents_prune)(gm_store_t *s, int64_t expired_before, gm_error *err);
    int (*agents_foreach)(gm_store_t *s, const char *capability, int64_t live_at, size_t limit,
                          gm_store_agent_fn fn, void *ctx, gm_error *err);
    int (*agents_delete)(gm_store_t *s, const char *node_pk_b64, const char *agent_id, int64_t *deleted,
                         gm_error *err);

    /* Optional (NULL: the backend has no notifications across processes, as SQLite): wait for
     * a CRL stored by another connection; see gm_store_crl_wait. */
    int (*crl_wait)(gm_store_t *s, int timeout_ms, gm_error *err);
} gm_store_ops;

/* Every handle starts with this, so store.c finds the table; a backend's own handle type
 * embeds it as its first member. */
struct gm_store {
    const gm_store_ops *ops;
};

extern const gm_store_ops gm_store_backend_sqlite;
extern const gm_store_ops gm_store_backend_pg; /* lib/na/store_pg.c: postgresql:// URLs */

#endif
