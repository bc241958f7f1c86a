/* The agent operations of the local API, version 2 (docs/local-api.md), done by the node so
 * that agent programs need no cryptography and never the node's key:
 *   - provide / withdraw: the node builds and signs the capability descriptor, registers it
 *     with the NA, refreshes it at 2/3 of its TTL, and deletes it when the connection closes;
 *   - request events and answer: capability requests from the mesh go to the providing
 *     connection; its answer becomes a capability_response with a provenance step signed by
 *     the node and the node's certificate attached;
 *   - ask: discovery, selection, invocation, verification of provenance and signers;
 *   - discover: the NA's listing as this node may see it (GET /agents is for members: the
 *     node signs the request, the NA filters it by the node's roles);
 *   - liveness: a request for a capability nobody here serves any more is answered
 *     `unavailable` at once, so requesters fail over without waiting for their deadline.
 * The one node file on lib/agent (gm/agent.h), whose code does the descriptors, envelopes,
 * provenance and calls. NA round trips and asks block, so they run on libuv's thread pool
 * (ask through the node's own socket, as any requester); the rest runs on the loop thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "gm/agent.h"
#include "gm/canon.h"
#include "gm/util.h"
#include "agent_internal.h"
#include "core_internal.h"
#include "node_internal.h"

#define PROVIDES_MAX 16            /* capabilities one connection provides */
#define PENDING_MAX 256            /* requests waiting for an answer, whole node */
#define ASKS_MAX 16                /* asks in flight, whole node */
#define MISSES_MAX 3               /* requests in a row left unanswered: the agent is dead */
#define TTL_DEFAULT_S 300
#define TTL_MIN_S 10
#define OP_DEADLINE_DEFAULT_MS 10000
#define DESCRIPTION_MAX 1024
#define MESSAGE_MAX GM_AGENT_DETAIL_MAX
#define RETRY_MS 2000              /* a failed refresh is tried again after this */
#define THREADPOOL_SIZE "24"       /* asks block a pool thread each; CRL polls and renewals need some too */

_Static_assert(sizeof(((node_provide_args *)0)->cap) == GM_AGENT_CAP_MAX + 1, "capability buffer");
_Static_assert(sizeof(((node_provide_args *)0)->agent_id) == GM_AGENT_ID_MAX + 1, "agent id buffer");

typedef struct provided {
    char cap[GM_AGENT_CAP_MAX + 1];
    char agent_id[GM_AGENT_ID_MAX + 1];
    uint64_t client;           /* serial of the providing connection */
    json_t *metadata;
    int ttl_s;
    int registered;            /* the NA accepted it at least once */
    int refreshing;
    uint64_t refresh_ms;
    int misses;
    struct provided *next;
} provided;

typedef struct pending {
    char rid[37];
    char cap[GM_AGENT_CAP_MAX + 1];
    char agent_id[GM_AGENT_ID_MAX + 1];
    uint8_t requester[GM_PK_LEN];
    uint64_t client;
    uint64_t deadline_ms;      /* node_now_ms clock */
    struct pending *next;
} pending;

/* The node directory as a requester sees it, trusting the NA keys the node trusts. Shared by
 * the jobs that use it and counted on the loop thread only (a job holds a reference while it
 * runs on the pool); replaced, not changed, when the node's trusted NA keys change. */
typedef struct agent_ctxref {
    gm_agent_ctx ctx;
    uint8_t keys[3][GM_PK_LEN]; /* the NA keys it trusts, in node_genesis_trusted's order */
    size_t n_keys;
    int refs;
} agent_ctxref;

struct node_agents {
    agent_ctxref *ctx;         /* opened on first use, NULL before */
    provided *provided;
    pending *pending;
    size_t n_pending;
    int n_asks;
    struct agent_job *asks;    /* in flight; their deadlines are kept by the tick */
};

enum { JOB_REGISTER, JOB_UNREGISTER, JOB_ASK, JOB_DISCOVER };

typedef struct agent_job {
    uv_work_t req;
    gm_node *n;
    int kind;
    uint64_t client;           /* who waits for the response (0: nobody) */
    json_t *id;                /* its request id */
    uint64_t deadline_ms;
    gm_agent_ctx ctx;          /* shallow copy of ref's, with agent_id */
    agent_ctxref *ref;         /* keeps what ctx points to alive until the job is freed */
    char cap[GM_AGENT_CAP_MAX + 1];
    json_t *metadata, *input;
    int ttl_s;
    long timeout_ms;
    gm_time started;
    int rc;
    gm_error err;
    gm_agent_response resp;
    json_t *listing;           /* discover: the NA's answer */
    char chosen[GM_AGENT_ID_MAX + 1];
    int answered;              /* ask: the deadline passed and the client was told (loop thread) */
    struct agent_job *next_ask;
} agent_job;

static const char *const agent_ops[] = {"provide", "withdraw", "answer", "ask", "discover"};

int node_agents_op_known(const char *op)
{
    for (size_t i = 0; i < sizeof agent_ops / sizeof agent_ops[0]; i++)
        if (!strcmp(op, agent_ops[i]))
            return 1;
    return 0;
}

json_t *node_agents_limits_json(void)
{
    return json_pack("{s:i,s:i,s:i,s:i,s:i,s:i}", "input_max", GM_AGENT_INPUT_MAX, "output_max", GM_AGENT_OUTPUT_MAX,
                     "deadline_ms_max", NODE_API_DEADLINE_MAX_MS, "provides_max", PROVIDES_MAX, "asks_max", ASKS_MAX,
                     "pending_max", PENDING_MAX);
}

void node_agents_init(gm_node *n)
{
    (void)n;
    /* Before the pool's first use (the first CRL poll): libuv reads its size once. */
    setenv("UV_THREADPOOL_SIZE", THREADPOOL_SIZE, 0);
}

static struct node_agents *state(gm_node *n)
{
    if (!n->agents)
        n->agents = calloc(1, sizeof *n->agents);
    return n->agents;
}

static json_t *with_id(json_t *resp, const json_t *id)
{
    if (resp)
        json_object_set_new(resp, "id", id ? json_deep_copy(id) : json_null());
    return resp;
}

static void respond(gm_node *n, uint64_t client, const json_t *id, json_t *resp)
{
    if (client)
        node_api_send_to(n, client, with_id(resp, id));
    else
        json_decref(resp);
}

static uint64_t deadline_of(gm_node *n, const json_t *req, long *ms)
{
    const json_t *d = json_object_get(req, "deadline_ms");
    *ms = d ? (long)json_integer_value(d) : OP_DEADLINE_DEFAULT_MS;
    return node_now_ms(n) + (uint64_t)*ms;
}

/* ---- argument checks (pure) ---- */

int node_agents_parse_provide(const json_t *req, node_provide_args *a, char *why, size_t why_len)
{
    gm_error e = {0};
    memset(a, 0, sizeof *a);
    const char *cap = json_string_value(json_object_get(req, "capability"));
    const json_t *desc = json_object_get(req, "description"), *schema = json_object_get(req, "input_schema"),
                 *id = json_object_get(req, "agent_id"), *ttl = json_object_get(req, "ttl_s");
    if (!cap || gm_agent_cap_normalize(cap, a->cap, &e) != 0) {
        snprintf(why, why_len, "\"capability\" must be a capability name: %s", cap ? e.msg : "missing");
        return -1;
    }
    if (desc && (!json_is_string(desc) || json_string_length(desc) > DESCRIPTION_MAX)) {
        snprintf(why, why_len, "\"description\" must be a string of at most %d bytes", DESCRIPTION_MAX);
        return -1;
    }
    if (schema && !json_is_object(schema)) {
        snprintf(why, why_len, "\"input_schema\" must be a JSON object");
        return -1;
    }
    if (id && (!json_is_string(id) || !gm_agent_id_valid(json_string_value(id)))) {
        snprintf(why, why_len, "\"agent_id\" must be 1 to %d characters of [A-Za-z0-9._-]", GM_AGENT_ID_MAX);
        return -1;
    }
    if (ttl && (!json_is_integer(ttl) || json_integer_value(ttl) < TTL_MIN_S ||
                json_integer_value(ttl) > GM_AGENT_TTL_MAX_S)) {
        snprintf(why, why_len, "\"ttl_s\" must be an integer from %d to %d", TTL_MIN_S, GM_AGENT_TTL_MAX_S);
        return -1;
    }
    if (id)
        snprintf(a->agent_id, sizeof a->agent_id, "%s", json_string_value(id));
    a->ttl_s = ttl ? (int)json_integer_value(ttl) : TTL_DEFAULT_S;
    if (desc || schema) {
        a->metadata = json_object();
        if (desc)
            json_object_set(a->metadata, "description", (json_t *)desc);
        if (schema)
            json_object_set(a->metadata, "input_schema", (json_t *)schema);
        char *bytes = NULL;
        size_t blen = 0;
        if (gm_canon_dump(a->metadata, &bytes, &blen, &e) != 0 || blen > GM_AGENT_METADATA_MAX) {
            free(bytes);
            json_decref(a->metadata);
            a->metadata = NULL;
            snprintf(why, why_len, "\"description\" and \"input_schema\" take %zu bytes together; at most %d",
                     blen, GM_AGENT_METADATA_MAX);
            return -1;
        }
        free(bytes);
    }
    return 0;
}

/* The error codes an agent may answer with; anything else is "failed". */
static const char *answer_code(const char *code)
{
    static const char *const ok[] = {"invalid_input", "failed", "timeout", "unavailable", "too_big"};
    for (size_t i = 0; code && i < sizeof ok / sizeof ok[0]; i++)
        if (!strcmp(code, ok[i]))
            return ok[i];
    return "failed";
}

int node_agents_parse_answer(const json_t *req, node_answer_args *a, char *why, size_t why_len)
{
    memset(a, 0, sizeof *a);
    a->request_id = json_string_value(json_object_get(req, "request_id"));
    const json_t *out = json_object_get(req, "output"), *err = json_object_get(req, "error"),
                 *detail = json_object_get(req, "detail");
    if (!a->request_id || !gm_uuid_valid(a->request_id)) {
        snprintf(why, why_len, "\"request_id\" must be the request_id of a request event");
        return -1;
    }
    if ((out == NULL) == (err == NULL)) {
        snprintf(why, why_len, "an answer has exactly one of \"output\" or \"error\"");
        return -1;
    }
    if (detail && (!json_is_string(detail) || json_string_length(detail) > GM_AGENT_DETAIL_MAX ||
                   strlen(json_string_value(detail)) != json_string_length(detail))) {
        snprintf(why, why_len, "\"detail\" must be a string of at most %d bytes", GM_AGENT_DETAIL_MAX);
        return -1;
    }
    a->detail = json_string_value(detail);
    if (json_is_null(out)) {
        snprintf(why, why_len, "\"output\" must not be null");
        return -1;
    }
    if (out) {
        a->output = out;
        return 0;
    }
    const json_t *code = json_object_get(err, "code"), *msg = json_object_get(err, "message");
    if (!json_is_object(err) || !json_is_string(code) || !json_is_string(msg) ||
        json_string_length(msg) > MESSAGE_MAX || strlen(json_string_value(msg)) != json_string_length(msg)) {
        snprintf(why, why_len, "\"error\" must be {\"code\": string, \"message\": string of at most %d bytes}",
                 MESSAGE_MAX);
        return -1;
    }
    snprintf(a->code, sizeof a->code, "%s", answer_code(json_string_value(code)));
    a->message = json_string_value(msg);
    return 0;
}

/* ---- answering requesters over the mesh ---- */

/* Sign the step, build the capability_response with our certificate and send it. 0, or the
 * GM_E code (err filled); GM_ETOOBIG when the output did not fit (the requester then got a
 * too_big error answer instead). */
static int send_reply(gm_node *n, const uint8_t to[GM_PK_LEN], const char *agent_id, const char *rid,
                      const char *cap, const json_t *output, const char *code, const char *msg, const char *detail,
                      gm_error *err)
{
    char *text = NULL;
    size_t len = 0;
    int replaced = 0;
    json_t *steps = json_array(), *pool = json_pack("[O]", n->cert.doc);
    int rc = gm_agent_step_add(steps, &n->key, agent_id, output ? "executed" : "failed", cap, rid,
                               output ? (detail ? detail : "answered") : msg, err);
    if (rc == 0)
        rc = gm_agent_reply_dump(&n->key, agent_id, rid, cap, output, code, msg, steps, pool, &text, &len, &replaced,
                                 err);
    json_decref(steps);
    json_decref(pool);
    if (rc != 0)
        return rc;
    gm_error se = {0};
    int sr = node_e2e_send(n, to, GM_AGENT_PORT, (const uint8_t *)text, len, &se);
    free(text);
    if (sr != 0 && !replaced)
        return gm_error_set(err, sr, "%s", se.msg);
    return replaced ? GM_ETOOBIG : 0;
}

static void log_reply_failure(gm_node *n, const char *rid, const gm_error *e)
{
    node_log(n, GM_LOG_WARN, "agent_reply_failed", json_pack("{s:s,s:s}", "request_id", rid, "error", e->msg));
}

/* ---- NA round trips and asks, on the thread pool ---- */

static void ctxref_release(agent_ctxref *r)
{
    if (r && --r->refs == 0) {
        gm_agent_ctx_close(&r->ctx);
        free(r);
    }
}

static int ctxref_current(const agent_ctxref *r, const gm_genesis *const gs[], size_t k)
{
    if (!r || r->n_keys != k)
        return 0;
    for (size_t i = 0; i < k; i++)
        if (memcmp(r->keys[i], gs[i]->na_pk, GM_PK_LEN) != 0)
            return 0;
    return 1;
}

/* The context trusting the node's current NA keys (its blocks in their windows, node_genesis.c):
 * opened on first use, replaced when they change (a rotation), so asks verify providers'
 * certificates, CRLs and reply signers under any of them. Jobs running keep the one they took. */
static int ensure_ctx(gm_node *n, gm_error *err)
{
    struct node_agents *a = state(n);
    if (!a)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    const gm_genesis *gs[3], *others[2];
    size_t k = node_genesis_trusted(n, gm_time_now(), gs), n_others = 0;
    if (ctxref_current(a->ctx, gs, k))
        return 0;
    if (!n->na_url[0])
        return gm_error_set(err, GM_EINVAL, "this node has no NA address (na_url in %s/node.json)", n->dir);
    if (strlen(n->api.sock_path) >= sizeof ((gm_agent_ctx *)0)->sock)
        return gm_error_set(err, GM_EINVAL, "socket path %s is too long", n->api.sock_path);
    agent_ctxref *r = calloc(1, sizeof *r);
    if (!r)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    for (size_t i = 0; i < k; i++)
        if (gs[i] != &n->genesis)
            others[n_others++] = gs[i];
    int rc = gm_agent_ctx_open(&r->ctx, n->dir, n->na_url, err);
    if (rc == 0 && (rc = gm_agent_ctx_trust(&r->ctx, &n->genesis, others, n_others, err)) != 0)
        gm_agent_ctx_close(&r->ctx);
    if (rc != 0) {
        free(r);
        if (!a->ctx)
            return rc;
        /* keep asking under the keys trusted so far rather than fail every call */
        node_log(n, GM_LOG_WARN, "agent_trust_refresh_failed", json_pack("{s:s}", "error", err ? err->msg : ""));
        gm_error_clear(err);
        return 0;
    }
    /* The node's own socket, whatever its path: the ask runs as one of its requesters. */
    memcpy(r->ctx.sock, n->api.sock_path, strlen(n->api.sock_path) + 1);
    for (size_t i = 0; i < k; i++)
        memcpy(r->keys[i], gs[i]->na_pk, GM_PK_LEN);
    r->n_keys = k;
    r->refs = 1;
    if (a->ctx)
        node_log(n, GM_LOG_INFO, "agent_trust_refreshed", json_pack("{s:i}", "na_keys", (int)k));
    ctxref_release(a->ctx);
    a->ctx = r;
    return 0;
}

static void job_work(uv_work_t *w)
{
    agent_job *j = w->data;
    switch (j->kind) {
    case JOB_REGISTER:
        j->started = gm_time_now();
        j->rc = gm_agent_register(&j->ctx, j->cap, j->ttl_s, j->metadata, &j->err);
        break;
    case JOB_UNREGISTER:
        j->rc = gm_agent_unregister(&j->ctx, &j->err);
        break;
    case JOB_DISCOVER:
        j->rc = gm_agent_list(j->ctx.na_url, &j->ctx.node, j->cap[0] ? j->cap : NULL, j->ctx.http_timeout_ms,
                              &j->listing, &j->err);
        break;
    case JOB_ASK:
        j->rc = gm_agent_call_collect(&j->ctx, j->cap, j->input, j->timeout_ms, NULL, NULL, NULL, &j->resp, j->chosen,
                                      &j->err);
        break;
    }
}

static void job_free(agent_job *j)
{
    sodium_memzero(&j->ctx.node, sizeof j->ctx.node);
    ctxref_release(j->ref);
    json_decref(j->id);
    json_decref(j->metadata);
    json_decref(j->input);
    json_decref(j->listing);
    gm_agent_response_free(&j->resp);
    free(j);
}

static void job_done(uv_work_t *w, int status);

static agent_job *job_new(gm_node *n, int kind, uint64_t client, const json_t *id, const char *agent_id,
                          gm_error *err)
{
    if (ensure_ctx(n, err) != 0)
        return NULL;
    agent_job *j = calloc(1, sizeof *j);
    if (!j) {
        gm_error_set(err, GM_ENOMEM, "out of memory");
        return NULL;
    }
    j->n = n;
    j->kind = kind;
    j->client = client;
    j->id = id ? json_deep_copy(id) : NULL;
    j->ref = n->agents->ctx;
    j->ref->refs++;
    j->ctx = j->ref->ctx;
    snprintf(j->ctx.agent_id, sizeof j->ctx.agent_id, "%s", agent_id ? agent_id : "");
    j->req.data = j;
    return j;
}

static int job_start(agent_job *j, gm_error *err)
{
    gm_node *n = j->n;
    if (uv_queue_work(n->loop, &j->req, job_work, job_done) != 0) {
        job_free(j);
        return gm_error_set(err, GM_EINTERNAL, "cannot start work on the thread pool");
    }
    n->pending_work++;
    if (j->kind == JOB_ASK) {
        n->agents->n_asks++;
        j->next_ask = n->agents->asks;
        n->agents->asks = j;
    }
    return 0;
}

/* The response code for a failed NA round trip. */
static const char *na_code(int rc)
{
    switch (rc) {
    case GM_EDENIED:
    case GM_ESIG:
    case GM_EREVOKED:
        return "denied";
    case GM_ETIMEOUT:
        return "deadline_exceeded";
    case GM_EINVAL:
    case GM_EFORMAT:
        return "invalid_request";
    case GM_ETOOBIG:
        return "too_big";
    case GM_ENOMEM:
    case GM_EINTERNAL:
        return "internal";
    default:
        return "unavailable";
    }
}

static void unregister_later(gm_node *n, const char *agent_id)
{
    gm_error e = {0};
    agent_job *j = job_new(n, JOB_UNREGISTER, 0, NULL, agent_id, &e);
    if (!j || job_start(j, &e) != 0)
        node_log(n, GM_LOG_WARN, "agent_unregister_failed", json_pack("{s:s,s:s}", "agent_id", agent_id, "error", e.msg));
}

static provided *find_provided(struct node_agents *a, const char *cap, uint64_t client)
{
    for (provided *p = a ? a->provided : NULL; p; p = p->next)
        if (!strcmp(p->cap, cap) && (!client || p->client == client))
            return p;
    return NULL;
}

static provided *find_provided_id(struct node_agents *a, const char *agent_id)
{
    for (provided *p = a ? a->provided : NULL; p; p = p->next)
        if (!strcmp(p->agent_id, agent_id))
            return p;
    return NULL;
}

static void register_done(gm_node *n, agent_job *j)
{
    struct node_agents *a = n->agents;
    provided *p = find_provided_id(a, j->ctx.agent_id);
    if (!p || strcmp(p->cap, j->cap) != 0) {
        /* Withdrawn (or its connection closed) while the NA was being asked: undo. */
        if (j->rc == 0)
            unregister_later(n, j->ctx.agent_id);
        if (j->client)
            respond(n, j->client, j->id, node_api_error("unavailable", "the capability was withdrawn meanwhile"));
        return;
    }
    p->refreshing = 0;
    if (j->rc != 0) {
        node_log(n, GM_LOG_WARN, p->registered ? "agent_refresh_failed" : "agent_register_failed",
                 json_pack("{s:s,s:s,s:s}", "agent_id", p->agent_id, "capability", p->cap, "error", j->err.msg));
        if (!p->registered && j->client) {
            /* The first registration failed: nothing is provided. */
            for (provided **pp = &a->provided; *pp; pp = &(*pp)->next)
                if (*pp == p) {
                    *pp = p->next;
                    break;
                }
            json_decref(p->metadata);
            free(p);
            respond(n, j->client, j->id, node_api_error(na_code(j->rc), j->err.msg));
            return;
        }
        p->refresh_ms = node_now_ms(n) + RETRY_MS;
        return;
    }
    int first = !p->registered;
    p->registered = 1;
    p->refresh_ms = node_now_ms(n) + (uint64_t)p->ttl_s * 2000 / 3;
    node_log(n, GM_LOG_INFO, first ? "agent_provided" : "agent_refreshed",
             json_pack("{s:s,s:s,s:i}", "agent_id", p->agent_id, "capability", p->cap, "ttl_s", p->ttl_s));
    if (first && j->client) {
        char exp[GM_TIME_STRLEN];
        gm_time e = gm_time_add(j->started, p->ttl_s);
        gm_time_format(&e, exp);
        respond(n, j->client, j->id,
                json_pack("{s:b,s:s,s:s,s:s}", "ok", 1, "capability", p->cap, "agent_id", p->agent_id, "expires_at",
                          exp));
    }
}

/* What an ask returns: the provider's answer as verified, or why there is none. */
static json_t *ask_result(agent_job *j)
{
    char why[700];
    if (j->rc != 0) {
        const char *code = j->rc == GM_ENOTFOUND ? "no_provider"
                           : j->rc == GM_ETIMEOUT ? "deadline_exceeded"
                           : j->rc == GM_ETOOBIG  ? "too_big"
                           : j->rc == GM_EINVAL   ? "invalid_request"
                           : j->rc == GM_EPROTO   ? "rejected"
                           : j->rc == GM_ENOMEM   ? "internal"
                                                  : "unavailable";
        return node_api_error(code, j->err.msg);
    }
    char pk[GM_PK_B64_LEN + 1];
    gm_pk_encode(j->resp.provider, pk);
    json_t *prov = json_pack("{s:s,s:s}", "agent_id", j->chosen, "node_public_key", pk);
    json_t *o;
    if (j->resp.error_code) {
        snprintf(why, sizeof why, "%s answered %s: %s", j->chosen, j->resp.error_code,
                 j->resp.error_message ? j->resp.error_message : "");
        o = node_api_error("provider_error", why);
        json_object_set_new(json_object_get(o, "error"), "provider_code", json_string(j->resp.error_code));
    } else {
        o = json_pack("{s:b,s:O}", "ok", 1, "output", j->resp.output);
    }
    json_object_set_new(o, "provider", prov);
    json_object_set(o, "provenance", (json_t *)j->resp.provenance);
    json_object_set(o, "certificates", j->resp.certificates ? (json_t *)j->resp.certificates : json_array());
    return o;
}

static void job_done(uv_work_t *w, int status)
{
    agent_job *j = w->data;
    gm_node *n = j->n;
    n->pending_work--;
    switch (j->kind) {
    case JOB_REGISTER:
        if (status != 0) {
            j->rc = GM_EINTERNAL;
            gm_error_set(&j->err, GM_EINTERNAL, "cancelled");
        }
        register_done(n, j);
        break;
    case JOB_UNREGISTER:
        if (j->rc != 0)
            node_log(n, GM_LOG_WARN, "agent_unregister_failed",
                     json_pack("{s:s,s:s}", "agent_id", j->ctx.agent_id, "error", j->err.msg));
        else
            node_log(n, GM_LOG_INFO, "agent_withdrawn", json_pack("{s:s}", "agent_id", j->ctx.agent_id));
        respond(n, j->client, j->id,
                j->rc == 0 ? json_pack("{s:b}", "ok", 1) : node_api_error(na_code(j->rc), j->err.msg));
        break;
    case JOB_DISCOVER:
        respond(n, j->client, j->id,
                status != 0 ? node_api_error("internal", "cancelled")
                : j->rc != 0 ? node_api_error(na_code(j->rc), j->err.msg)
                             : json_pack("{s:b,s:O,s:I}", "ok", 1, "agents", j->listing, "count",
                                         (json_int_t)json_array_size(j->listing)));
        break;
    case JOB_ASK:
        n->agents->n_asks--;
        for (agent_job **pp = &n->agents->asks; *pp; pp = &(*pp)->next_ask)
            if (*pp == j) {
                *pp = j->next_ask;
                break;
            }
        /* Failover may outlast the deadline (each attempt has its own): the client already knows.
         * A failure that ends at or past the deadline, before the tick said so, is that deadline
         * (a fast re-discovery must not turn a timeout into no_provider). */
        if (!j->answered && status == 0 && j->rc != 0 && node_now_ms(n) >= j->deadline_ms)
            respond(n, j->client, j->id,
                    node_api_error("deadline_exceeded", "no provider answered before the request's deadline"));
        else if (!j->answered)
            respond(n, j->client, j->id, status != 0 ? node_api_error("internal", "cancelled") : ask_result(j));
        break;
    }
    job_free(j);
}

/* ---- the operations ---- */

static json_t *op_provide(gm_node *n, uint64_t client, const json_t *req, const json_t *id)
{
    node_provide_args args;
    char why[300];
    gm_error e = {0};
    long ms;
    if (node_agents_parse_provide(req, &args, why, sizeof why) != 0)
        return node_api_error("invalid_request", why);
    struct node_agents *a = state(n);
    if (!a) {
        json_decref(args.metadata);
        return node_api_error("internal", "out of memory");
    }
    if (!args.agent_id[0]) {
        char hex[9];
        for (int i = 0; i < 4; i++)
            snprintf(hex + 2 * i, 3, "%02x", n->key.pk[i]);
        snprintf(args.agent_id, sizeof args.agent_id, "%.55s-%s", args.cap, hex);
    }
    const provided *other = find_provided(a, args.cap, 0), *same_id = find_provided_id(a, args.agent_id);
    if (other || same_id) {
        json_decref(args.metadata);
        snprintf(why, sizeof why, "%s is already provided %s on this node",
                 other ? args.cap : args.agent_id,
                 (other ? other->client : same_id->client) == client ? "by this connection" : "by another connection");
        return node_api_error("conflict", why);
    }
    size_t mine = 0;
    for (provided *p = a->provided; p; p = p->next)
        mine += p->client == client;
    if (mine >= PROVIDES_MAX) {
        json_decref(args.metadata);
        return node_api_error("invalid_request", "a connection provides at most 16 capabilities");
    }
    provided *p = calloc(1, sizeof *p);
    agent_job *j = p ? job_new(n, JOB_REGISTER, client, id, args.agent_id, &e) : NULL;
    if (!j) {
        free(p);
        json_decref(args.metadata);
        return node_api_error(p ? na_code(e.code) : "internal", p ? e.msg : "out of memory");
    }
    snprintf(p->cap, sizeof p->cap, "%s", args.cap);
    snprintf(p->agent_id, sizeof p->agent_id, "%s", args.agent_id);
    p->client = client;
    p->metadata = args.metadata;
    p->ttl_s = args.ttl_s;
    p->refreshing = 1;
    p->next = a->provided;
    a->provided = p;
    snprintf(j->cap, sizeof j->cap, "%s", p->cap);
    j->metadata = p->metadata ? json_deep_copy(p->metadata) : NULL; /* the thread's own */
    j->ttl_s = p->ttl_s;
    j->deadline_ms = deadline_of(n, req, &ms);
    j->ctx.http_timeout_ms = ms;
    if (job_start(j, &e) != 0) {
        a->provided = p->next;
        json_decref(p->metadata);
        free(p);
        return node_api_error("internal", e.msg);
    }
    return NULL;
}

/* Forget p (unlinked by the caller) and delete its registration at the NA. */
static void drop_provided(gm_node *n, provided *p, uint64_t client, const json_t *id)
{
    gm_error e = {0};
    agent_job *j = job_new(n, JOB_UNREGISTER, client, id, p->agent_id, &e);
    if (!j || job_start(j, &e) != 0) {
        node_log(n, GM_LOG_WARN, "agent_unregister_failed", json_pack("{s:s,s:s}", "agent_id", p->agent_id, "error", e.msg));
        if (client)
            respond(n, client, id, node_api_error("internal", e.msg));
    }
    json_decref(p->metadata);
    free(p);
}

static json_t *op_withdraw(gm_node *n, uint64_t client, const json_t *req, const json_t *id)
{
    char cap[GM_AGENT_CAP_MAX + 1];
    gm_error e = {0};
    const char *c = json_string_value(json_object_get(req, "capability"));
    if (!c || gm_agent_cap_normalize(c, cap, &e) != 0)
        return node_api_error("invalid_request", "\"capability\" must be a capability name");
    struct node_agents *a = n->agents;
    for (provided **pp = a ? &a->provided : NULL; pp && *pp; pp = &(*pp)->next)
        if ((*pp)->client == client && !strcmp((*pp)->cap, cap)) {
            provided *p = *pp;
            *pp = p->next;
            drop_provided(n, p, client, id);
            return NULL;
        }
    return node_api_error("not_found", "this connection does not provide that capability");
}

static json_t *op_answer(gm_node *n, uint64_t client, const json_t *req)
{
    node_answer_args args;
    char why[300];
    gm_error e = {0};
    if (node_agents_parse_answer(req, &args, why, sizeof why) != 0)
        return node_api_error("invalid_request", why);
    struct node_agents *a = n->agents;
    pending *q = NULL;
    for (pending **pp = a ? &a->pending : NULL; pp && *pp; pp = &(*pp)->next)
        if ((*pp)->client == client && !strcmp((*pp)->rid, args.request_id)) {
            q = *pp;
            *pp = q->next;
            a->n_pending--;
            break;
        }
    if (!q)
        return node_api_error("not_found", "no request with this request_id waits for an answer from this connection "
                                           "(unknown, already answered, or past its deadline)");
    provided *p = find_provided(a, q->cap, client);
    if (p)
        p->misses = 0;
    int rc = send_reply(n, q->requester, q->agent_id, q->rid, q->cap, args.output, args.output ? NULL : args.code,
                        args.message, args.detail, &e);
    free(q);
    if (rc == GM_ETOOBIG)
        return node_api_error("too_big", e.msg);
    if (rc != 0) {
        /* The requester may be gone (no route): the answer is lost, the agent should know. */
        log_reply_failure(n, args.request_id, &e);
        return node_api_error(rc == GM_ENOTFOUND ? "no_route" : "internal", e.msg);
    }
    return json_pack("{s:b}", "ok", 1);
}

static json_t *op_ask(gm_node *n, uint64_t client, const json_t *req, const json_t *id)
{
    char cap[GM_AGENT_CAP_MAX + 1];
    gm_error e = {0};
    long ms;
    const char *c = json_string_value(json_object_get(req, "capability"));
    const json_t *input = json_object_get(req, "input");
    if (!c || gm_agent_cap_normalize(c, cap, &e) != 0)
        return node_api_error("invalid_request", c ? e.msg : "\"capability\" is missing");
    if (!input)
        return node_api_error("invalid_request", "\"input\" is missing");
    struct node_agents *a = state(n);
    if (!a)
        return node_api_error("internal", "out of memory");
    if (a->n_asks >= ASKS_MAX)
        return node_api_error("busy", "too many asks in flight on this node; try again");
    agent_job *j = job_new(n, JOB_ASK, client, id, "", &e);
    if (!j)
        return node_api_error(na_code(e.code), e.msg);
    snprintf(j->cap, sizeof j->cap, "%s", cap);
    j->input = json_deep_copy(input);
    j->deadline_ms = deadline_of(n, req, &ms);
    j->timeout_ms = ms;
    j->ctx.http_timeout_ms = ms < 5000 ? ms : 5000;
    if (job_start(j, &e) != 0)
        return node_api_error("internal", e.msg);
    return NULL;
}

static json_t *op_discover(gm_node *n, uint64_t client, const json_t *req, const json_t *id)
{
    char cap[GM_AGENT_CAP_MAX + 1] = "";
    gm_error e = {0};
    long ms;
    const json_t *c = json_object_get(req, "capability");
    if (c && (!json_is_string(c) || gm_agent_cap_normalize(json_string_value(c), cap, &e) != 0))
        return node_api_error("invalid_request", json_is_string(c) ? e.msg : "\"capability\" must be a string");
    agent_job *j = job_new(n, JOB_DISCOVER, client, id, "", &e);
    if (!j)
        return node_api_error(na_code(e.code), e.msg);
    snprintf(j->cap, sizeof j->cap, "%s", cap);
    j->deadline_ms = deadline_of(n, req, &ms);
    j->ctx.http_timeout_ms = ms < 5000 ? ms : 5000;
    if (job_start(j, &e) != 0)
        return node_api_error("internal", e.msg);
    return NULL;
}

json_t *node_agents_op(gm_node *n, uint64_t client, const char *op, const json_t *req, const json_t *id)
{
    if (n->stopping)
        return node_api_error("unavailable", "the node is stopping");
    if (!strcmp(op, "provide"))
        return op_provide(n, client, req, id);
    if (!strcmp(op, "withdraw"))
        return op_withdraw(n, client, req, id);
    if (!strcmp(op, "answer"))
        return op_answer(n, client, req);
    if (!strcmp(op, "discover"))
        return op_discover(n, client, req, id);
    return op_ask(n, client, req, id);
}

/* ---- requests from the mesh ---- */

/* A request nobody here will answer: say so at once, signed, so the requester fails over. */
static void refuse(gm_node *n, const gm_agent_request *r, const char *agent_id, const char *code, const char *why)
{
    gm_error e = {0};
    if (send_reply(n, r->requester, agent_id, r->request_id, r->capability, NULL, code, why, NULL, &e) != 0)
        log_reply_failure(n, r->request_id, &e);
}

int node_agents_deliver(gm_node *n, const uint8_t from[GM_PK_LEN], const uint8_t *data, size_t len, json_t *note)
{
    gm_agent_request r;
    gm_error e = {0};
    struct node_agents *a = n->agents;
    /* Only requests; a response or anything unparsable goes its usual way (requesters,
     * and the agents that refuse garbage themselves). Answers are told without a parse. */
    if (!gm_json_may_hold(data, len, "capability_request"))
        return 0;
    if (len > GM_AGENT_MSG_MAX || gm_agent_request_parse((const char *)data, len, &r, &e) != 0) {
        /* A malformed request nobody here can judge would only fill the inbox: dropped. */
        json_t *v = json_loadb((const char *)data, len, 0, NULL);
        const char *t = json_string_value(json_object_get(v, "type"));
        int drop = t && !strcmp(t, "capability_request") && !node_api_port_subscribed(n, GM_AGENT_PORT);
        json_decref(v);
        if (!drop)
            return 0;
        node_log(n, GM_LOG_WARN, "agent_bad_request", json_pack("{s:s}", "error", e.msg));
        json_decref(note);
        return 1;
    }
    if (memcmp(r.requester, from, GM_PK_LEN) != 0)
        goto handled; /* names another requester than its sender: dropped, never answered */
    provided *p = find_provided(a, r.capability, 0);
    if (!p) {
        if (node_api_port_subscribed(n, GM_AGENT_PORT)) {
            gm_agent_request_free(&r);
            return 0; /* an agent on the provider loop may serve it */
        }
        refuse(n, &r, "node", "unavailable", "no agent serves this capability on this node any more");
        n->m.agents_unavailable++;
        goto handled;
    }
    long left = gm_agent_request_time_left_ms(&r);
    if (left <= 0)
        goto handled;
    if (a->n_pending >= PENDING_MAX) {
        refuse(n, &r, p->agent_id, "unavailable", "the provider's node has too many requests waiting; try another");
        goto handled;
    }
    pending *q = calloc(1, sizeof *q);
    if (!q)
        goto handled;
    snprintf(q->rid, sizeof q->rid, "%s", r.request_id);
    snprintf(q->cap, sizeof q->cap, "%s", r.capability);
    snprintf(q->agent_id, sizeof q->agent_id, "%s", p->agent_id);
    memcpy(q->requester, r.requester, GM_PK_LEN);
    q->client = p->client;
    q->deadline_ms = node_now_ms(n) + (uint64_t)left;
    q->next = a->pending;
    a->pending = q;
    a->n_pending++;
    char pk[GM_PK_B64_LEN + 1], dl[GM_TIME_STRLEN];
    gm_pk_encode(r.requester, pk);
    gm_time_format(&r.deadline, dl);
    json_t *ev = json_pack("{s:s,s:s,s:s,s:O,s:s,s:s,s:I}", "event", "request", "request_id", r.request_id,
                           "capability", r.capability, "input", r.input, "requester", pk, "deadline", dl,
                           "deadline_ms", (json_int_t)left);
    if (ev && note) {
        char au[300];
        const char *rule = json_string_value(json_object_get(note, "rule"));
        snprintf(au, sizeof au, "access policy %lld, %s", (long long)json_integer_value(json_object_get(note, "sequence")),
                 rule ? rule : "?");
        json_object_set_new(ev, "authorized", json_string(au));
    }
    node_api_send_to(n, p->client, ev);
handled:
    gm_agent_request_free(&r);
    json_decref(note);
    return 1;
}

/* Every capability of client goes, and its unanswered requests are answered for it. */
static void withdraw_client(gm_node *n, uint64_t client, const char *why, int tell)
{
    struct node_agents *a = n->agents;
    if (!a)
        return;
    for (provided **pp = &a->provided; *pp;) {
        provided *p = *pp;
        if (p->client != client) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        node_log(n, GM_LOG_INFO, "agent_gone", json_pack("{s:s,s:s,s:s}", "agent_id", p->agent_id, "capability", p->cap,
                                                         "reason", why));
        if (tell)
            node_api_send_to(n, client, json_pack("{s:s,s:s,s:s}", "event", "withdrawn", "capability", p->cap, "reason",
                                                  why));
        drop_provided(n, p, 0, NULL);
    }
    for (pending **pp = &a->pending; *pp;) {
        pending *q = *pp;
        if (q->client != client) {
            pp = &q->next;
            continue;
        }
        *pp = q->next;
        a->n_pending--;
        char msg[200];
        gm_error e = {0};
        snprintf(msg, sizeof msg, "the agent serving %s %s before answering", q->cap, why);
        if (send_reply(n, q->requester, q->agent_id, q->rid, q->cap, NULL, "unavailable", msg, NULL, &e) != 0)
            log_reply_failure(n, q->rid, &e);
        free(q);
    }
}

void node_agents_client_closed(gm_node *n, uint64_t serial)
{
    withdraw_client(n, serial, "disconnected", 0);
}

void node_agents_tick(gm_node *n, uint64_t now)
{
    struct node_agents *a = n->agents;
    if (!a || n->stopping)
        return;
    uint64_t dead = 0;
    for (pending **pp = &a->pending; *pp;) {
        pending *q = *pp;
        if (now < q->deadline_ms) {
            pp = &q->next;
            continue;
        }
        *pp = q->next;
        a->n_pending--;
        gm_error e = {0};
        if (send_reply(n, q->requester, q->agent_id, q->rid, q->cap, NULL, "timeout",
                       "the agent did not answer before the deadline", NULL, &e) != 0)
            log_reply_failure(n, q->rid, &e);
        node_api_send_to(n, q->client, json_pack("{s:s,s:s}", "event", "cancel", "request_id", q->rid));
        provided *p = find_provided(a, q->cap, q->client);
        if (p && ++p->misses >= MISSES_MAX)
            dead = q->client;
        free(q);
    }
    if (dead)
        withdraw_client(n, dead, "stopped answering", 1);
    for (agent_job *j = a->asks; j; j = j->next_ask)
        if (!j->answered && now >= j->deadline_ms) {
            j->answered = 1;
            respond(n, j->client, j->id,
                    node_api_error("deadline_exceeded", "no provider answered before the request's deadline"));
        }
    for (provided *p = a->provided; p; p = p->next) {
        if (p->refreshing || now < p->refresh_ms)
            continue;
        gm_error e = {0};
        agent_job *j = job_new(n, JOB_REGISTER, 0, NULL, p->agent_id, &e);
        if (!j) {
            p->refresh_ms = now + RETRY_MS;
            continue;
        }
        snprintf(j->cap, sizeof j->cap, "%s", p->cap);
        j->metadata = p->metadata ? json_deep_copy(p->metadata) : NULL; /* the thread's own */
        j->ttl_s = p->ttl_s;
        if (job_start(j, &e) == 0)
            p->refreshing = 1;
        else
            p->refresh_ms = now + RETRY_MS;
    }
}

void node_agents_free(gm_node *n)
{
    struct node_agents *a = n->agents;
    if (!a)
        return;
    while (a->provided) {
        provided *p = a->provided;
        a->provided = p->next;
        json_decref(p->metadata);
        free(p);
    }
    while (a->pending) {
        pending *q = a->pending;
        a->pending = q->next;
        free(q);
    }
    ctxref_release(a->ctx);
    free(a);
    n->agents = NULL;
}
