/* The NA's agent registry: POST /agents (a descriptor signed by a node key holding a valid,
 * unrevoked certificate of this network), GET /agents[?capability=C] (members only: live
 * descriptors with each provider's current certificate, filtered by the access policy for the
 * signer's roles), DELETE /agents/<agent_id | node key> (node-signed),
 * and the revoke hook that drops a revoked key's agents inside the revocation transaction.
 * Listing also skips keys without a valid certificate, so a missed hook cannot resurrect one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gm/agent.h"
#include "gm/policy.h"
#include "na_agents.h"
#include "gm/util.h"
#include "na_internal.h"

#define LIST_MAX 512

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

int na_current_cert(gm_na_t *na, const char *pk_b64, int64_t now, char **doc, gm_error *e)
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
    int rc = gm_store_agents_delete(store, node_pk_b64, NULL, NULL, err);
    if (rc != 0)
        gm_error_prefix(err, "dropping the agents of a revoked key");
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

/* Reply with the status of a finished transaction: commit on rc == 0, else roll back. The
 * commit is deferred: the server answers once it is durable, the worker free meanwhile. */
static int finish(na_req *r, int rc, int status, json_t *reply)
{
    gm_error e = {0};
    if (rc != 0) {
        gm_store_rollback(r->na->store);
        json_decref(reply);
        return r->status;
    }
    if (gm_store_commit_deferred(r->na->store, &e) != 0) {
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
    const char *caps[GM_AGENT_MAX_CAPS];
    for (size_t i = 0; i < d.n_caps && i < GM_AGENT_MAX_CAPS; i++)
        caps[i] = gm_agent_desc_cap(&d, i);
    const char *sig = json_string_value(json_object_get(json_array_get(json_object_get(d.doc, "signatures"), 0), "sig"));
    char *doc = json_dumps(d.doc, JSON_COMPACT), *cert = NULL, scope[16 + GM_PK_B64_LEN];
    snprintf(scope, sizeof scope, "agent:%s", d.node_pk_b64);
    if (!doc || gm_store_begin(na->store, &e) != 0) {
        free(doc);
        gm_agent_desc_free(&d);
        return doc ? na_reply_gm_error(r, &e) : na_reply_error(r, 500, "internal_error", "out of memory");
    }
    int blocked = 0;
    rc = 0;
    if (gm_store_key_blocked(na->store, d.node_pk_b64, &blocked, &e) != 0 ||
        na_current_cert(na, d.node_pk_b64, r->now.unix_s, &cert, &e) != 0) {
        rc = na_reply_gm_error(r, &e);
    } else if (blocked || !cert) {
        rc = na_reply_error(r, 403, "no_valid_certificate",
                            "node key %s holds no valid, unrevoked certificate of network '%s'", d.node_pk_b64,
                            na->cfg.network_name);
    }
    /* An agent id belongs to one node key until its descriptor expires or is removed. */
    if (rc == 0) {
        char owner[GM_PK_B64_LEN + 1];
        int g = gm_store_agent_owner(na->store, d.agent_id, r->now.unix_s, owner, &e);
        if (g != 0 && g != GM_ENOTFOUND)
            rc = na_reply_gm_error(r, &e);
        else if (g == 0 && strcmp(owner, d.node_pk_b64) != 0)
            rc = na_reply_error(r, 409, "agent_id_taken", "agent id '%s' is registered by another node key",
                                d.agent_id);
    }
    /* Each signed descriptor registers once: a replay after DELETE cannot bring it back. */
    if (rc == 0 && (rc = na_nonce_record(na, scope, sig, r->now.unix_s, &e)) != 0)
        rc = rc == GM_ECONFLICT ? na_reply_error(r, 409, "replayed_descriptor", "this descriptor was already registered; sign a new one")
                                : na_reply_gm_error(r, &e);
    if (rc == 0) {
        gm_store_agent a = {.agent_id = d.agent_id, .node_pk = d.node_pk_b64, .caps = caps, .n_caps = d.n_caps,
                            .registered_at = d.registered_at.unix_s, .expires_at = d.expires_at.unix_s, .doc = doc};
        if (gm_store_agent_put(na->store, &a, &e) != 0)
            rc = na_reply_gm_error(r, &e);
    }
    /* Forget long-expired descriptors now and then (every registration is cheap enough). */
    if (rc == 0)
        gm_store_agents_prune(na->store, r->now.unix_s - GM_CLOCK_SKEW_S, NULL);
    char exp[GM_TIME_STRLEN];
    gm_time_format(&d.expires_at, exp);
    json_t *reply = rc == 0 ? json_pack("{s:s,s:s,s:s}", "agent_id", d.agent_id, "node_public_key", d.node_pk_b64,
                                        "expires_at", exp)
                            : NULL;
    if (rc == 0)
        na_log(na, "%s agents: %s registered by %s (%zu capabilities)", r->request_id, d.agent_id, d.node_pk_b64,
               d.n_caps);
    free(doc);
    free(cert);
    gm_agent_desc_free(&d);
    return finish(r, rc, 201, reply);
}

typedef struct list_ctx {
    gm_na_t *na;
    int64_t now;
    json_t *agents;
    gm_error *e;
    const char *cap;          /* the capability asked for, "" for all */
    const gm_policy *policy;  /* NULL: no policy held, everything visible */
    const char *roles[GM_POLICY_MAX_NAMES];
    size_t n_roles;
} list_ctx;

/* The member may invoke the capability asked for, or (no capability asked) at least one of the
 * descriptor's: a signed descriptor cannot be cut, so a visible agent shows all it offers. */
static int visible(const list_ctx *lc, const json_t *desc)
{
    gm_policy_decision d;
    const char *one[1] = {lc->cap};
    if (!lc->policy)
        return 1;
    if (lc->cap[0])
        return gm_policy_decide(lc->policy, GM_POLICY_CAPABILITY, lc->roles, lc->n_roles, one, 1, &d);
    size_t i;
    const json_t *c;
    json_array_foreach(json_object_get(desc, "capabilities"), i, c)
    {
        one[0] = json_string_value(c);
        if (one[0] && gm_policy_decide(lc->policy, GM_POLICY_CAPABILITY, lc->roles, lc->n_roles, one, 1, &d))
            return 1;
    }
    return 0;
}

static int list_one(const char *pk, const char *doc, void *ctx)
{
    list_ctx *lc = ctx;
    char *cert = NULL;
    int rc = na_current_cert(lc->na, pk, lc->now, &cert, lc->e);
    if (rc != 0)
        return rc;
    json_t *d = json_loads(doc, 0, NULL), *c = cert ? json_loads(cert, 0, NULL) : NULL;
    free(cert);
    if (d && c && visible(lc, d)) /* a key without a valid certificate (revoked, expired) is not listed */
        json_array_append_new(lc->agents, json_pack("{s:o,s:o}", "descriptor", d, "certificate", c));
    else {
        json_decref(d);
        json_decref(c);
    }
    return 0;
}

int na_handle_agents_list(na_req *r)
{
    gm_na_t *na = r->na;
    gm_error e = {0};
    const char *cap_q = na_req_query(r, "capability");
    char norm[GM_AGENT_CAP_MAX + 1] = "";
    int rc;
    if (cap_q && gm_agent_cap_normalize(cap_q, norm, &e) != 0)
        return na_reply_error(r, 400, "invalid_field", "%s", e.msg);
    list_ctx lc = {.na = na, .now = r->now.unix_s, .agents = json_array(), .e = &e, .cap = norm};
    /* Filtered by the access policy for the signer's roles (r->member, checked by the router). */
    gm_policy policy;
    int have_policy = 0;
    pthread_mutex_lock(&na->policy_lock);
    int held = na->policy_text != NULL;
    char *ptext = held ? strdup(na->policy_text) : NULL;
    pthread_mutex_unlock(&na->policy_lock);
    if (ptext && gm_policy_parse(ptext, strlen(ptext), &policy, &e) == 0) {
        have_policy = 1;
        lc.policy = &policy;
    }
    free(ptext);
    if (held && !have_policy) { /* fail closed: never list unfiltered */
        json_decref(lc.agents);
        return na_reply_error(r, 503, "policy_unavailable", "the NA cannot read its own access policy");
    }
    size_t ri;
    const json_t *role;
    json_array_foreach(json_object_get(r->member, "roles"), ri, role)
        if (lc.n_roles < GM_POLICY_MAX_NAMES && json_is_string(role))
            lc.roles[lc.n_roles++] = json_string_value(role);
    if (gm_store_begin(na->store, &e) != 0) {
        json_decref(lc.agents);
        if (have_policy)
            gm_policy_free(&policy);
        return na_reply_gm_error(r, &e);
    }
    rc = gm_store_agents_foreach(na->store, norm, r->now.unix_s - GM_CLOCK_SKEW_S, LIST_MAX, list_one, &lc, &e);
    if (have_policy)
        gm_policy_free(&policy);
    if (rc != 0) {
        json_decref(lc.agents);
        gm_store_rollback(na->store);
        return na_reply_gm_error(r, &e);
    }
    json_t *reply = json_pack("{s:o,s:I}", "agents", lc.agents, "count", (json_int_t)json_array_size(lc.agents));
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
    int64_t changes = 0;
    if (rc == 0 && gm_store_agents_delete(na->store, pk_b64, by_key ? NULL : agent_id, &changes, &e) != 0)
        rc = na_reply_gm_error(r, &e);
    if (rc == 0 && changes == 0)
        rc = na_reply_error(r, 404, "not_found", "no agent '%s' registered by this node key", target);
    if (rc == 0)
        na_log(na, "%s agents: %s removed by %s", r->request_id, target, pk_b64);
    json_decref(body);
    return finish(r, rc, 200, rc == 0 ? json_pack("{s:I}", "deleted", (json_int_t)changes) : NULL);
}
