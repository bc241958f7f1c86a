/* The NA's agent registry: POST /agents (a descriptor signed by a node key holding a valid,
 * unrevoked certificate of this network), GET /agents[?capability=C] (live descriptors with
 * each provider's current certificate), DELETE /agents/<agent_id | node key> (node-signed),
 * and the revoke hook that drops a revoked key's agents inside the revocation transaction.
 * Listing also skips keys without a valid certificate, so a missed hook cannot resurrect one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "gm/agent.h"
#include "gm/na_agents.h"
#include "gm/util.h"
#include "na_internal.h"

#define LIST_MAX 512

/* The agents table lives in the NA's database (store migration 3); statements run on the
 * store's connection while its lock is held (inside gm_store_begin .. commit, or inside the
 * revocation transaction for the hook). */
static int db_fail(gm_error *e, sqlite3 *db, const char *what)
{
    return gm_error_set(e, GM_EDB, "agent registry: %s: %s", what, sqlite3_errmsg(db));
}

/* The newest certificate of pk that is unrevoked and inside its validity window at now. */
struct cert_pick {
    int64_t now;
    int64_t best_issued;
    char *doc;
};

static int pick_cert(const gm_store_cert *c, void *ctx)
{
    struct cert_pick *p = ctx;
    if (c->revoked || c->expires_at + GM_CLOCK_SKEW_S < p->now || c->issued_at - GM_CLOCK_SKEW_S > p->now)
        return 0;
    if (!p->doc || c->issued_at >= p->best_issued) {
        free(p->doc);
        p->doc = strdup(c->doc);
        p->best_issued = c->issued_at;
    }
    return 0;
}

static int current_cert(gm_na_t *na, const char *pk_b64, int64_t now, char **doc, gm_error *e)
{
    struct cert_pick p = {.now = now};
    int rc = gm_store_certs_foreach(na->store, pk_b64, pick_cert, &p, e);
    if (rc != 0) {
        free(p.doc);
        return rc;
    }
    *doc = p.doc;
    return 0;
}

static int revoke_hook(gm_na_t *na, gm_store_t *store, const char *cert_id, const char *node_pk_b64,
                       const char *reason, void *ctx, gm_error *err)
{
    (void)na, (void)cert_id, (void)reason, (void)ctx;
    sqlite3 *db = gm_store_sqlite(store);
    sqlite3_stmt *st = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2(db, "DELETE FROM agents WHERE node_public_key = ?", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_bind_text(st, 1, node_pk_b64, -1, SQLITE_TRANSIENT) != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(err, db, "dropping the agents of a revoked key");
    sqlite3_finalize(st);
    return rc;
}

int gm_na_agents_on_revoke(gm_store_t *store, const char *node_pk_b64, gm_error *err)
{
    return revoke_hook(NULL, store, NULL, node_pk_b64, NULL, NULL, err);
}

int gm_na_agents_install(gm_na_t *na, gm_error *err)
{
    return gm_na_add_revoke_hook(na, revoke_hook, NULL, err);
}

/* Reply with the status of a finished transaction: commit on rc == 0, else roll back. */
static int finish(na_req *r, int rc, int status, json_t *reply)
{
    gm_error e = {0};
    if (rc != 0) {
        gm_store_rollback(r->na->store);
        json_decref(reply);
        return r->status;
    }
    if (gm_store_commit(r->na->store, &e) != 0) {
        json_decref(reply);
        return na_reply_gm_error(r, &e);
    }
    return na_reply_json(r, status, reply);
}

int na_handle_agents_register(na_req *r)
{
    static const char *const allowed[] = {"agent_id",      "node_public_key", "network_name", "capabilities", "endpoint",
                                          "registered_at", "expires_at",      "metadata",     "signatures",   NULL};
    gm_na_t *na = r->na;
    gm_error e = {0};
    if (r->body_len > GM_AGENT_DESC_MAX)
        return na_reply_error(r, 413, "too_large", "agent descriptor larger than %d bytes", GM_AGENT_DESC_MAX);
    json_t *body = na_body_object(r, allowed);
    if (!body)
        return r->status;
    gm_agent_desc d;
    int rc = gm_agent_desc_from_json(body, &d, &e);
    json_decref(body);
    if (rc != 0)
        return na_reply_error(r, rc == GM_ETOOBIG ? 413 : 400, "invalid_descriptor", "%s", e.msg);
    if (gm_agent_desc_verify(&d, &e) != 0) {
        gm_agent_desc_free(&d);
        return na_reply_error(r, 401, "bad_signature", "%s", e.msg);
    }
    if (strcmp(d.network_name, na->cfg.network_name) != 0) {
        rc = na_reply_error(r, 403, "wrong_network", "descriptor is for network '%s', this NA serves '%s'",
                            d.network_name, na->cfg.network_name);
        gm_agent_desc_free(&d);
        return rc;
    }
    if (gm_agent_desc_check_window(&d, r->now, GM_AGENT_TTL_MAX_S, &e) != 0) {
        gm_agent_desc_free(&d);
        return na_reply_error(r, 403, "outside_window", "%s", e.msg);
    }
    char caps[GM_AGENT_MAX_CAPS * (GM_AGENT_CAP_MAX + 1) + 2] = ",";
    for (size_t i = 0; i < d.n_caps; i++) {
        size_t n = strlen(caps);
        snprintf(caps + n, sizeof caps - n, "%s,", gm_agent_desc_cap(&d, i));
    }
    const char *sig = json_string_value(json_object_get(json_array_get(json_object_get(d.doc, "signatures"), 0), "sig"));
    char *doc = json_dumps(d.doc, JSON_COMPACT), *cert = NULL, scope[16 + GM_PK_B64_LEN];
    snprintf(scope, sizeof scope, "agent:%s", d.node_pk_b64);
    if (!doc || gm_store_begin(na->store, &e) != 0) {
        free(doc);
        gm_agent_desc_free(&d);
        return doc ? na_reply_gm_error(r, &e) : na_reply_error(r, 500, "internal_error", "out of memory");
    }
    sqlite3 *db = gm_store_sqlite(na->store);
    sqlite3_stmt *st = NULL;
    int blocked = 0;
    rc = 0;
    if (gm_store_key_blocked(na->store, d.node_pk_b64, &blocked, &e) != 0 ||
        current_cert(na, d.node_pk_b64, r->now.unix_s, &cert, &e) != 0) {
        rc = na_reply_gm_error(r, &e);
    } else if (blocked || !cert) {
        rc = na_reply_error(r, 403, "no_valid_certificate",
                            "node key %s holds no valid, unrevoked certificate of network '%s'", d.node_pk_b64,
                            na->cfg.network_name);
    }
    /* An agent id belongs to one node key until its descriptor expires or is removed. */
    if (rc == 0) {
        if (sqlite3_prepare_v2(db, "SELECT node_public_key FROM agents WHERE agent_id = ? AND expires_at >= ?", -1, &st,
                               NULL) != SQLITE_OK) {
            db_fail(&e, db, "lookup");
            rc = na_reply_gm_error(r, &e);
        } else {
            sqlite3_bind_text(st, 1, d.agent_id, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(st, 2, r->now.unix_s);
            if (sqlite3_step(st) == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(st, 0), d.node_pk_b64) != 0)
                rc = na_reply_error(r, 409, "agent_id_taken", "agent id '%s' is registered by another node key",
                                    d.agent_id);
        }
        sqlite3_finalize(st);
        st = NULL;
    }
    /* Each signed descriptor registers once: a replay after DELETE cannot bring it back. */
    if (rc == 0 && (rc = na_nonce_record(na, scope, sig, r->now.unix_s, &e)) != 0)
        rc = rc == GM_ECONFLICT ? na_reply_error(r, 409, "replayed_descriptor", "this descriptor was already registered; sign a new one")
                                : na_reply_gm_error(r, &e);
    if (rc == 0) {
        if (sqlite3_prepare_v2(db,
                               "INSERT OR REPLACE INTO agents(agent_id, node_public_key, capabilities, registered_at, "
                               "expires_at, doc) VALUES(?,?,?,?,?,?)",
                               -1, &st, NULL) != SQLITE_OK) {
            db_fail(&e, db, "insert");
            rc = na_reply_gm_error(r, &e);
        } else {
            sqlite3_bind_text(st, 1, d.agent_id, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(st, 2, d.node_pk_b64, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(st, 3, caps, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(st, 4, d.registered_at.unix_s);
            sqlite3_bind_int64(st, 5, d.expires_at.unix_s);
            sqlite3_bind_text(st, 6, doc, -1, SQLITE_TRANSIENT);
            if (sqlite3_step(st) != SQLITE_DONE) {
                db_fail(&e, db, "insert");
                rc = na_reply_gm_error(r, &e);
            }
        }
        sqlite3_finalize(st);
        st = NULL;
    }
    /* Forget long-expired descriptors now and then (every registration is cheap enough). */
    if (rc == 0 && sqlite3_prepare_v2(db, "DELETE FROM agents WHERE expires_at < ?", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, r->now.unix_s - GM_CLOCK_SKEW_S);
        sqlite3_step(st);
    }
    sqlite3_finalize(st);
    char exp[GM_TIME_STRLEN];
    gm_time_format(&d.expires_at, exp);
    json_t *reply = rc == 0 ? json_pack("{s:s,s:s,s:s}", "agent_id", d.agent_id, "node_public_key", d.node_pk_b64,
                                        "expires_at", exp)
                            : NULL;
    if (rc == 0)
        na_log(na, "%s agents: %s registered by %s (%s)", r->request_id, d.agent_id, d.node_pk_b64, caps);
    free(doc);
    free(cert);
    gm_agent_desc_free(&d);
    return finish(r, rc, 201, reply);
}

int na_handle_agents_list(na_req *r)
{
    gm_na_t *na = r->na;
    gm_error e = {0};
    const char *cap_q = na_req_query(r, "capability");
    char cap[GM_AGENT_CAP_MAX + 3] = "";
    if (cap_q) {
        char norm[GM_AGENT_CAP_MAX + 1];
        if (gm_agent_cap_normalize(cap_q, norm, &e) != 0)
            return na_reply_error(r, 400, "invalid_field", "%s", e.msg);
        snprintf(cap, sizeof cap, ",%s,", norm);
    }
    if (gm_store_begin(na->store, &e) != 0)
        return na_reply_gm_error(r, &e);
    sqlite3 *db = gm_store_sqlite(na->store);
    sqlite3_stmt *st = NULL;
    json_t *agents = json_array();
    int rc = 0;
    if (sqlite3_prepare_v2(db,
                           "SELECT node_public_key, doc FROM agents WHERE expires_at >= ? AND (? = '' OR "
                           "instr(capabilities, ?) > 0) ORDER BY agent_id, node_public_key LIMIT ?",
                           -1, &st, NULL) != SQLITE_OK) {
        db_fail(&e, db, "list");
        rc = na_reply_gm_error(r, &e);
    } else {
        sqlite3_bind_int64(st, 1, r->now.unix_s - GM_CLOCK_SKEW_S);
        sqlite3_bind_text(st, 2, cap, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, cap, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 4, LIST_MAX);
        int s;
        while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
            const char *pk = (const char *)sqlite3_column_text(st, 0);
            json_t *d = json_loads((const char *)sqlite3_column_text(st, 1), 0, NULL);
            char *cert = NULL;
            if (current_cert(na, pk, r->now.unix_s, &cert, &e) != 0) {
                json_decref(d);
                rc = na_reply_gm_error(r, &e);
                break;
            }
            json_t *c = cert ? json_loads(cert, 0, NULL) : NULL;
            free(cert);
            if (d && c) /* a key without a valid certificate (revoked, expired) is not listed */
                json_array_append_new(agents, json_pack("{s:o,s:o}", "descriptor", d, "certificate", c));
            else {
                json_decref(d);
                json_decref(c);
            }
        }
    }
    sqlite3_finalize(st);
    if (rc != 0) {
        json_decref(agents);
        gm_store_rollback(na->store);
        return r->status;
    }
    json_t *reply = json_pack("{s:o,s:I}", "agents", agents, "count", (json_int_t)json_array_size(agents));
    return finish(r, 0, 200, reply);
}

int na_handle_agents_delete(na_req *r)
{
    static const char *const allowed[] = {"agent_id", "node_public_key", "timestamp", "nonce", "signature", NULL};
    gm_na_t *na = r->na;
    gm_error e = {0};
    const char *target = r->path_rest;
    if (!target || !*target)
        return na_reply_error(r, 400, "invalid_field", "DELETE /agents/<agent_id or node public key>");
    json_t *body = na_body_object(r, allowed);
    if (!body)
        return r->status;
    const char *pk_b64, *agent_id = NULL;
    uint8_t pk[GM_PK_LEN];
    if (na_get_pk(r, body, "node_public_key", pk, &pk_b64) != 0 ||
        na_get_string(r, body, "agent_id", 0, GM_AGENT_ID_MAX, &agent_id) != 0 || na_check_pop(r, body, pk) != 0) {
        json_decref(body);
        return r->status;
    }
    /* The path names either the agent (then it must match the signed body) or the node key. */
    int by_key = !strcmp(target, pk_b64);
    if (!by_key && (!agent_id || strcmp(target, agent_id) != 0)) {
        json_decref(body);
        return na_reply_error(r, 400, "invalid_field", "the path names neither the signed \"agent_id\" nor the node key");
    }
    if (gm_store_begin(na->store, &e) != 0) {
        json_decref(body);
        return na_reply_gm_error(r, &e);
    }
    int rc = na_record_node_nonce(r, body, pk_b64);
    int changes = 0;
    if (rc == 0) {
        sqlite3 *db = gm_store_sqlite(na->store);
        sqlite3_stmt *st = NULL;
        const char *sql = by_key ? "DELETE FROM agents WHERE node_public_key = ?1"
                                 : "DELETE FROM agents WHERE node_public_key = ?1 AND agent_id = ?2";
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
            db_fail(&e, db, "delete");
            rc = na_reply_gm_error(r, &e);
        } else {
            sqlite3_bind_text(st, 1, pk_b64, -1, SQLITE_TRANSIENT);
            if (!by_key)
                sqlite3_bind_text(st, 2, agent_id, -1, SQLITE_TRANSIENT);
            if (sqlite3_step(st) != SQLITE_DONE) {
                db_fail(&e, db, "delete");
                rc = na_reply_gm_error(r, &e);
            } else {
                changes = sqlite3_changes(db);
            }
        }
        sqlite3_finalize(st);
    }
    if (rc == 0 && changes == 0)
        rc = na_reply_error(r, 404, "not_found", "no agent '%s' registered by this node key", target);
    if (rc == 0)
        na_log(na, "%s agents: %s removed by %s", r->request_id, target, pk_b64);
    json_decref(body);
    return finish(r, rc, 200, rc == 0 ? json_pack("{s:i}", "deleted", changes) : NULL);
}
