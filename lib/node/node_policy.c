/* The node's access policy: loaded from D/access-policy.json, kept current by node_docsync.c
 * (NA poll with ETag, POLICY_* gossip; only a signed, strictly newer policy is accepted),
 * and enforced where the node knows who is asking: the roles come from the certificate the
 * node authenticated for the sender's key, never from anything in the message.
 *   - capability requests for a local agent (refused ones are answered "forbidden" by the
 *     node, naming the rule; allowed ones reach the agent with the rule that allowed them);
 *   - data messages to a port; links with a peer; DATA relayed for a source.
 * Every refusal is logged (policy_denied) and counted (metrics policy_denied_<kind>). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gm/canon.h"
#include "gm/util.h"
#include "node_internal.h"
#include "core_internal.h"

#define POLICY_FILE "access-policy.json"
#define MAX_ROLES 64
#define CAP_MAX 64
#define FORBIDDEN_MAX 512

/* ---- accepting a new policy ---- */

int node_policy_accept(const gm_policy *current, const uint8_t na_pk[GM_PK_LEN], const char *text, size_t len,
                       gm_policy *out, gm_error *err)
{
    gm_policy p;
    memset(out, 0, sizeof *out);
    int rc = gm_policy_parse(text, len, &p, err);
    if (rc != 0)
        return rc;
    if ((rc = gm_policy_verify(&p, na_pk, err)) != 0) {
        gm_policy_free(&p);
        return gm_error_prefix(err, "access policy refused");
    }
    if (current && p.sequence <= current->sequence) {
        rc = gm_error_set(err, GM_ECONFLICT, "access policy sequence %llu is not newer than the %llu we hold",
                          (unsigned long long)p.sequence, (unsigned long long)current->sequence);
        gm_policy_free(&p);
        return rc;
    }
    *out = p;
    return 0;
}

static void refused(gm_node *n, const char *source, const char *why)
{
    n->m.policy_refused++;
    node_log(n, GM_LOG_WARN, "policy_refused", json_pack("{s:s,s:s}", "source", source, "error", why));
}

/* Make p the current policy and write it to D/access-policy.json, kept across restarts. */
static void store(gm_node *n, gm_policy *p, const char *source)
{
    gm_error err = {0};
    char path[4200];
    if (n->have_policy)
        gm_policy_free(&n->policy);
    n->policy = *p;
    n->have_policy = 1;
    n->m.policy_updates++;
    char *text = gm_policy_dump(&n->policy, 0);
    if (text && gm_path_join(path, sizeof path, n->dir, POLICY_FILE, &err) == 0 &&
        gm_file_write_atomic(path, text, strlen(text), 0644, &err) != 0)
        node_log(n, GM_LOG_WARN, "policy_persist_failed", json_pack("{s:s}", "error", err.msg));
    free(text);
    node_log(n, GM_LOG_INFO, "policy_updated",
             json_pack("{s:I,s:s,s:I,s:s}", "sequence", (json_int_t)n->policy.sequence, "source", source, "rules",
                       (json_int_t)n->policy.n_rules, "default", n->policy.default_allow ? "allow" : "deny"));
}

/* Close the links the new policy forbids. */
static void apply(gm_node *n)
{
    for (node_link *l = n->links; l; l = l->next)
        if (l->state == LINK_UP && l->has_cert && !node_policy_link_ok(n, &l->peer_cert))
            node_link_close(l, GM_WIRE_CLOSE_FORBIDDEN, "forbidden by the access policy");
}

/* node_policy_accept under the NA key of every trusted genesis block (an NA key rotation). */
static int policy_accept(gm_node *n, const gm_policy *current, const char *text, size_t len, gm_policy *out,
                         gm_error *err)
{
    const gm_genesis *gs[3];
    size_t k = node_genesis_trusted(n, gm_time_now(), gs);
    int rc = GM_ESIG;
    for (size_t i = 0; i < k && rc == GM_ESIG; i++)
        rc = node_policy_accept(current, gs[i]->na_pk, text, len, out, err);
    return rc;
}

static int offer(gm_node *n, const char *text, size_t len, const char *source, int starting)
{
    gm_error err = {0};
    gm_policy p;
    int rc = policy_accept(n, n->have_policy ? &n->policy : NULL, text, len, &p, &err);
    if (rc == GM_ECONFLICT)
        return rc;
    if (rc != 0) {
        refused(n, source, err.msg);
        return rc;
    }
    store(n, &p, source);
    if (!starting) {
        node_doc_announce(n, NODE_DOC_POLICY);
        apply(n);
    }
    return 0;
}

static int held(gm_node *n, uint64_t *seq)
{
    *seq = n->have_policy ? n->policy.sequence : 0;
    return n->have_policy;
}

static char *dump(gm_node *n)
{
    return gm_policy_dump(&n->policy, 0);
}

const node_doc_kind node_doc_policy = {.event = "policy",
                                       .path = "/access-policy",
                                       .t_announce = GM_WIRE_POLICY_ANNOUNCE,
                                       .t_request = GM_WIRE_POLICY_REQUEST,
                                       .t_data = GM_WIRE_POLICY_DATA,
                                       .held = held,
                                       .dump = dump,
                                       .offer = offer,
                                       .refused = refused};

int node_policy_load(gm_node *n, gm_error *err)
{
    char path[4200], *text;
    size_t len;
    int rc;
    if ((rc = gm_path_join(path, sizeof path, n->dir, POLICY_FILE, err)) != 0)
        return rc;
    if (!gm_file_exists(path))
        return 0;
    if ((rc = gm_file_read(path, GM_POLICY_MAX_BYTES, &text, &len, err)) != 0)
        return rc;
    gm_error e2 = {0};
    rc = policy_accept(n, NULL, text, len, &n->policy, &e2);
    free(text);
    if (rc != 0) {
        node_log(n, GM_LOG_WARN, "policy_ignored", json_pack("{s:s,s:s}", "path", path, "error", e2.msg));
        return 0;
    }
    n->have_policy = 1;
    return 0;
}

void node_policy_fetch_startup(gm_node *n)
{
    node_doc_fetch_startup(n, NODE_DOC_POLICY);
}

/* ---- decisions ---- */

static size_t roles_of(const gm_cert *c, const char **roles, size_t max)
{
    size_t k = 0;
    for (size_t i = 0; c && i < c->n_roles && k < max; i++)
        if ((roles[k] = gm_cert_role(c, i)) != NULL)
            k++;
    return k;
}

int node_policy_decide(gm_node *n, gm_policy_kind kind, const gm_cert *subject, const char *object,
                       const gm_cert *object_cert, gm_policy_decision *d)
{
    const char *roles[MAX_ROLES], *objects[MAX_ROLES];
    size_t nr = roles_of(subject, roles, MAX_ROLES), no;
    if (kind == GM_POLICY_PEER || kind == GM_POLICY_RELAY) {
        no = roles_of(object_cert, objects, MAX_ROLES);
    } else {
        objects[0] = object;
        no = 1;
    }
    return gm_policy_decide(n->have_policy ? &n->policy : NULL, kind, roles, nr, objects, no, d);
}

/* Log and count a refusal. who: the node whose roles were judged (b64 key). */
static void denied(gm_node *n, gm_policy_kind kind, const char *who, const char *object, const gm_policy_decision *d)
{
    n->m.policy_denied[kind]++;
    node_log(n, GM_LOG_WARN, "policy_denied",
             json_pack("{s:s,s:s,s:s,s:s,s:I}", "kind", gm_policy_kind_name(kind), "peer", who, "object",
                       object ? object : "", "rule", d->text, "sequence", (json_int_t)d->sequence));
}

int node_policy_link_ok(gm_node *n, const gm_cert *peer)
{
    gm_policy_decision d;
    if (node_policy_decide(n, GM_POLICY_PEER, peer, NULL, &n->cert, &d))
        return 1;
    denied(n, GM_POLICY_PEER, peer->node_pk_b64, "link", &d);
    return 0;
}

int node_policy_relay_ok(gm_node *n, const uint8_t src[GM_PK_LEN])
{
    if (!n->have_policy)
        return 1;
    const gm_cert *c = node_cert_lookup(n, src);
    gm_policy_decision d;
    if (node_policy_decide(n, GM_POLICY_RELAY, &n->cert, NULL, c, &d))
        return 1;
    char who[GM_PK_B64_LEN + 1];
    node_pk_b64(src, who);
    denied(n, GM_POLICY_RELAY, who, "relay", &d);
    return 0;
}

/* ---- capability requests ---- */

/* The signed "failed" step and the capability_response a provider would send, from the node:
 * the requester checks them like any answer (the node key is the provider's key). */
static char *forbidden_response(gm_node *n, const char *rid, const char *cap, const char *why)
{
    char at[GM_TIME_STRLEN], sig[GM_SIG_B64_LEN + 1], *bytes = NULL, *text = NULL;
    size_t blen;
    gm_time now = gm_time_now();
    gm_time_format(&now, at);
    json_t *step = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "agent", "node", "action", "failed", "capability", cap,
                             "detail", why, "at", at, "request_id", rid, "signer", n->key.pk_b64);
    if (!step || gm_canon_dump(step, &bytes, &blen, NULL) != 0) {
        json_decref(step);
        return NULL;
    }
    gm_sign_b64(&n->key, (const uint8_t *)bytes, blen, sig);
    free(bytes);
    json_object_set_new(step, "sig", json_string(sig));
    json_t *resp = json_pack("{s:s,s:s,s:s,s:s,s:n,s:{s:s,s:s},s:[o],s:[O]}", "type", "capability_response",
                             "request_id", rid, "capability", cap, "provider", n->key.pk_b64, "output", "error",
                             "code", "forbidden", "message", why, "provenance", step, "certificates", n->cert.doc);
    if (resp)
        text = json_dumps(resp, JSON_COMPACT);
    json_decref(resp);
    return text;
}

/* 1 if s is a capability name we can answer for (bounded, printable, no quotes). */
static int cap_ok(const char *s)
{
    size_t l = s ? strlen(s) : 0;
    if (l == 0 || l > CAP_MAX)
        return 0;
    for (; *s; s++)
        if (*s <= ' ' || *s > '~' || *s == '"' || *s == '\\')
            return 0;
    return 1;
}

/* One capability request for this node's agents, allowed or refused by the policy. */
static void count_capability(gm_node *n, const char *cap, int allowed)
{
    node_cap_count *c = &n->caps[NODE_CAP_COUNTED];
    for (size_t i = 0; i < n->n_caps; i++)
        if (!strcmp(n->caps[i].name, cap)) {
            c = &n->caps[i];
            break;
        }
    if (c == &n->caps[NODE_CAP_COUNTED] && n->n_caps < NODE_CAP_COUNTED && cap_ok(cap) &&
        strlen(cap) < sizeof c->name && strcmp(cap, "other") != 0) {
        c = &n->caps[n->n_caps++];
        snprintf(c->name, sizeof c->name, "%s", cap);
    }
    if (allowed)
        c->allowed++;
    else
        c->denied++;
}

/* Without a policy every request passes; it is still counted. */
static void count_unchecked(gm_node *n, const char *port, const uint8_t *data, size_t len)
{
    if (strcmp(port, "capability") != 0 || !gm_json_may_hold(data, len, "capability_request"))
        return;
    json_t *v = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, NULL);
    const char *type = json_string_value(json_object_get(v, "type"));
    const char *cap = json_string_value(json_object_get(v, "capability"));
    if (type && !strcmp(type, "capability_request") && cap)
        count_capability(n, cap, 1);
    json_decref(v);
}

static int admit(gm_node *n, const uint8_t from[GM_PK_LEN], const char *port, const uint8_t *data, size_t len,
                      json_t **note)
{
    *note = NULL;
    if (!n->have_policy) {
        count_unchecked(n, port, data, len);
        return 1;
    }
    const gm_cert *c = node_cert_lookup(n, from);
    char who[GM_PK_B64_LEN + 1];
    node_pk_b64(from, who);
    gm_policy_decision d;
    if (!node_policy_decide(n, GM_POLICY_PORT, c, port, NULL, &d)) {
        denied(n, GM_POLICY_PORT, who, port, &d);
        return 0;
    }
    /* Answers (they never spell "capability_request") pass without a parse. */
    if (strcmp(port, "capability") != 0 || !gm_json_may_hold(data, len, "capability_request"))
        return 1;
    json_t *v = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, NULL);
    const char *type = json_string_value(json_object_get(v, "type"));
    const char *cap = json_string_value(json_object_get(v, "capability"));
    const char *rid = json_string_value(json_object_get(v, "request_id"));
    /* Answers to our own calls, and what is no request at all (the agent refuses it), pass. */
    if (!type || strcmp(type, "capability_request") != 0 || !cap) {
        json_decref(v);
        return 1;
    }
    int ok = node_policy_decide(n, GM_POLICY_CAPABILITY, c, cap, NULL, &d);
    count_capability(n, cap, ok);
    if (ok) {
        *note = json_pack("{s:I,s:s}", "sequence", (json_int_t)d.sequence, "rule", d.text);
    } else {
        denied(n, GM_POLICY_CAPABILITY, who, cap, &d);
        char why[FORBIDDEN_MAX];
        snprintf(why, sizeof why, "the access policy (sequence %llu) does not let %s invoke %s: %s",
                 (unsigned long long)d.sequence, c ? "this requester's roles" : "an unknown requester",
                 cap_ok(cap) ? cap : "this capability", d.text);
        char *text = rid && gm_uuid_valid(rid) && cap_ok(cap) ? forbidden_response(n, rid, cap, why) : NULL;
        gm_error err = {0};
        if (text && node_e2e_send(n, from, "capability", (const uint8_t *)text, strlen(text), &err) != 0)
            node_log(n, GM_LOG_WARN, "policy_answer_failed", json_pack("{s:s,s:s}", "peer", who, "error", err.msg));
        free(text);
    }
    json_decref(v);
    return ok;
}

void node_policy_deliver(gm_node *n, const uint8_t from[GM_PK_LEN], const char *port, const uint8_t *data, size_t len)
{
    json_t *note = NULL;
    if (admit(n, from, port, data, len, &note))
        node_api_deliver_note(n, from, port, data, len, note);
}

json_t *node_policy_status_json(gm_node *n)
{
    if (!n->have_policy)
        return json_null();
    return json_pack("{s:I,s:s,s:I,s:s}", "sequence", (json_int_t)n->policy.sequence, "policy_id",
                     n->policy.policy_id, "rules", (json_int_t)n->policy.n_rules, "default",
                     n->policy.default_allow ? "allow" : "deny");
}
