/* lib/na/store.h over a backend's table of operations (lib/na/store_backend.h): choose the
 * backend at open, then every call goes through the handle's table. */
#include <stdlib.h>
#include <string.h>

#include "store_backend.h"

static const gm_store_ops *const backends[] = {&gm_store_backend_pg, &gm_store_backend_sqlite};

int gm_store_open(gm_store_t **s, const char *path, gm_error *err)
{
    *s = NULL;
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
        if (backends[i]->accepts(path))
            return backends[i]->open(s, path, err);
    return gm_error_set(err, GM_EINVAL, "no store backend for database location '%s'", path);
}

void gm_store_close(gm_store_t *s)
{
    if (s)
        s->ops->close(s);
}

int gm_store_schema_version(gm_store_t *s, int *version, gm_error *err)
{
    return s->ops->schema_version(s, version, err);
}

int gm_store_begin(gm_store_t *s, gm_error *err)
{
    return s->ops->begin(s, err);
}

int gm_store_commit(gm_store_t *s, gm_error *err)
{
    return s->ops->commit(s, err);
}

void gm_store_rollback(gm_store_t *s)
{
    s->ops->rollback(s);
}

int gm_store_durable_wait(gm_store_t *s, gm_error *err)
{
    return s && s->ops->durable_wait ? s->ops->durable_wait(s, err) : 0;
}

int gm_store_commit_deferred(gm_store_t *s, gm_error *err)
{
    return s->ops->commit_deferred ? s->ops->commit_deferred(s, err) : s->ops->commit(s, err);
}

int gm_store_durable_notify(gm_store_t *s, gm_store_waiter *w, gm_error *err)
{
    if (s && s->ops->durable_notify)
        return s->ops->durable_notify(s, w, err);
    return gm_store_durable_wait(s, err);
}

int gm_store_hold_syncs(gm_store_t *s, int hold, gm_error *err)
{
    if (!s->ops->hold_syncs)
        return gm_error_set(err, GM_EINVAL, "the %s store has no group commit to hold", s->ops->name);
    s->ops->hold_syncs(s, hold);
    return 0;
}

void gm_store_stats(gm_store_t *s, gm_store_counters *c)
{
    memset(c, 0, sizeof *c);
    if (s && s->ops->stats)
        s->ops->stats(s, c);
}

int gm_store_nonce_record(gm_store_t *s, const char *scope, const char *nonce, int64_t now, gm_error *err)
{
    return s->ops->nonce_record(s, scope, nonce, now, err);
}

int gm_store_nonce_prune(gm_store_t *s, int64_t older_than, gm_error *err)
{
    return s->ops->nonce_prune(s, older_than, err);
}

int gm_store_invite_add(gm_store_t *s, const char *token_hash, const char *roles_json, int64_t created_at,
                        int64_t expires_at, int64_t max_validity_hours, gm_error *err)
{
    return s->ops->invite_add(s, token_hash, roles_json, created_at, expires_at, max_validity_hours, err);
}

int gm_store_invite_get(gm_store_t *s, const char *token_hash, gm_store_invite *inv, gm_error *err)
{
    return s->ops->invite_get(s, token_hash, inv, err);
}

int gm_store_invite_consume(gm_store_t *s, const char *token_hash, const char *node_pk_b64, int64_t now,
                            gm_store_invite *inv, gm_error *err)
{
    return s->ops->invite_consume(s, token_hash, node_pk_b64, now, inv, err);
}

int gm_store_invites_outstanding(gm_store_t *s, int64_t now, int64_t *n, gm_error *err)
{
    return s->ops->invites_outstanding(s, now, n, err);
}

int gm_store_invites_foreach(gm_store_t *s, int64_t now, size_t limit, gm_store_invite_fn fn, void *ctx,
                             gm_error *err)
{
    return s->ops->invites_foreach(s, now, limit, fn, ctx, err);
}

void gm_store_invite_clear(gm_store_invite *inv)
{
    if (!inv)
        return;
    free(inv->roles_json);
    memset(inv, 0, sizeof *inv);
}

int gm_store_cert_add(gm_store_t *s, const gm_store_cert *c, gm_error *err)
{
    return s->ops->cert_add(s, c, err);
}

int gm_store_cert_get(gm_store_t *s, const char *cert_id, gm_store_cert *c, gm_error *err)
{
    return s->ops->cert_get(s, cert_id, c, err);
}

int gm_store_certs_foreach(gm_store_t *s, const char *node_pk_b64, gm_store_cert_fn fn, void *ctx, gm_error *err)
{
    return s->ops->certs_foreach(s, node_pk_b64, fn, ctx, err);
}

int gm_store_cert_count(gm_store_t *s, int64_t *n, gm_error *err)
{
    return s->ops->cert_count(s, n, err);
}

int gm_store_cert_heartbeat(gm_store_t *s, const char *cert_id, int64_t now, const char *status, gm_error *err)
{
    return s->ops->cert_heartbeat(s, cert_id, now, status, err);
}

void gm_store_cert_clear(gm_store_cert *c)
{
    if (!c)
        return;
    free(c->roles_json);
    free(c->doc);
    memset(c, 0, sizeof *c);
}

int gm_store_revocation_add(gm_store_t *s, const char *cert_id, const char *revoked_at, const char *reason,
                            const char *issuer, gm_error *err)
{
    return s->ops->revocation_add(s, cert_id, revoked_at, reason, issuer, err);
}

int gm_store_revocation_update(gm_store_t *s, const char *cert_id, const char *revoked_at, const char *reason,
                               gm_error *err)
{
    return s->ops->revocation_update(s, cert_id, revoked_at, reason, err);
}

int gm_store_revocations_json(gm_store_t *s, int64_t live_at, json_t **entries, gm_error *err)
{
    return s->ops->revocations_json(s, live_at, entries, err);
}

int gm_store_log_append(gm_store_t *s, const char *kind, const char *cert_id, const char *entry,
                        const uint8_t leaf_hash[32], uint64_t *index, gm_error *err)
{
    return s->ops->log_append(s, kind, cert_id, entry, leaf_hash, index, err);
}

int gm_store_log_size(gm_store_t *s, uint64_t *n, gm_error *err)
{
    return s->ops->log_size(s, n, err);
}

int gm_store_log_hashes(gm_store_t *s, uint64_t n, uint8_t **hashes, gm_error *err)
{
    return s->ops->log_hashes(s, n, hashes, err);
}

int gm_store_log_entry(gm_store_t *s, uint64_t index, char **entry, uint8_t leaf_hash[32], gm_error *err)
{
    return s->ops->log_entry(s, index, entry, leaf_hash, err);
}

int gm_store_log_find(gm_store_t *s, const char *kind, const char *cert_id, uint64_t *index, gm_error *err)
{
    return s->ops->log_find(s, kind, cert_id, index, err);
}

int gm_store_crl_latest(gm_store_t *s, uint64_t *sequence, char **doc, gm_error *err)
{
    return s->ops->crl_latest(s, sequence, doc, err);
}

int gm_store_crl_add(gm_store_t *s, uint64_t sequence, const char *doc, int64_t now, gm_error *err)
{
    if (sequence > (uint64_t)INT64_MAX)
        return gm_error_set(err, GM_EINVAL, "CRL sequence out of range");
    return s->ops->crl_add(s, sequence, doc, now, err);
}

int gm_store_crl_wait(gm_store_t *s, int timeout_ms, gm_error *err)
{
    if (!s->ops->crl_wait)
        return gm_error_set(err, GM_EINVAL, "the %s store has no notifications across processes", s->ops->name);
    return s->ops->crl_wait(s, timeout_ms, err);
}

int gm_store_crls_foreach(gm_store_t *s, size_t limit, gm_store_crl_fn fn, void *ctx, gm_error *err)
{
    return s->ops->crls_foreach(s, limit, fn, ctx, err);
}

int gm_store_key_block(gm_store_t *s, const char *node_pk_b64, const char *reason, int64_t now, gm_error *err)
{
    return s->ops->key_block(s, node_pk_b64, reason, now, err);
}

int gm_store_key_blocked(gm_store_t *s, const char *node_pk_b64, int *blocked, gm_error *err)
{
    return s->ops->key_blocked(s, node_pk_b64, blocked, err);
}

int gm_store_key_unblock(gm_store_t *s, const char *node_pk_b64, gm_error *err)
{
    return s->ops->key_unblock(s, node_pk_b64, err);
}

int gm_store_agent_owner(gm_store_t *s, const char *agent_id, int64_t live_at, char owner[GM_PK_B64_LEN + 1],
                         gm_error *err)
{
    return s->ops->agent_owner(s, agent_id, live_at, owner, err);
}

int gm_store_agent_put(gm_store_t *s, const gm_store_agent *a, gm_error *err)
{
    return s->ops->agent_put(s, a, err);
}

int gm_store_agents_prune(gm_store_t *s, int64_t expired_before, gm_error *err)
{
    return s->ops->agents_prune(s, expired_before, err);
}

int gm_store_agents_foreach(gm_store_t *s, const char *capability, int64_t live_at, size_t limit,
                            gm_store_agent_fn fn, void *ctx, gm_error *err)
{
    return s->ops->agents_foreach(s, capability, live_at, limit, fn, ctx, err);
}

int gm_store_agents_delete(gm_store_t *s, const char *node_pk_b64, const char *agent_id, int64_t *deleted,
                           gm_error *err)
{
    return s->ops->agents_delete(s, node_pk_b64, agent_id, deleted, err);
}
