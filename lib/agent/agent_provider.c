/* The provider loop: register the agent's descriptor with the NA (and refresh it before it
 * expires), subscribe to the mesh port "capability" on the local node (binary frames), run the
 * handler for each request in its own thread, answer with signed provenance on the same
 * subscribed connection, and unregister on a clean shutdown. */
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gm/agent.h"
#include "gm/http_client.h"
#include "gm/log.h"
#include "gm/node.h"
#include "gm/reqsig.h"
#include "gm/util.h"
#include "agent_internal.h"
#include "client_internal.h"
#include "core_internal.h"

#define STARTUP_WAIT_MS 30000
#define DRAIN_WAIT_MS 5000
#define PROVIDER_MALLOC_TRIM (64 << 20) /* freed heap glibc keeps (gm_agent_provider_run) */
#define LOCAL_API_TIMEOUT_MS 5000 /* bound of one subscribe or send with our own node */

static void plog(const gm_agent_provider *p, const char *level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void plog(const gm_agent_provider *p, const char *level, const char *event, const char *fmt, ...)
{
    gm_log_level lvl = GM_LOG_INFO;
    if (gm_log_level_parse(level, &lvl) != 0)
        lvl = GM_LOG_WARN;
    if (!p->log && !gm_log_enabled(lvl))
        return;
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (p->log)
        p->log(p->user, level, event, text);
    else
        gm_log_event(lvl, "agent", event, json_pack("{s:s}", "agent", p->ctx.agent_id), "%s", text);
}

static const char *na_message(const json_t *body)
{
    const char *m = json_string_value(json_object_get(json_object_get(body, "error"), "message"));
    return m ? m : "";
}

int gm_agent_register(const gm_agent_ctx *c, const char *capability, int ttl_s, const json_t *metadata, gm_error *err)
{
    gm_agent_desc d;
    char url[700];
    json_t *caps = json_pack("[s]", capability);
    int rc = gm_agent_desc_build(&d, &c->node, c->agent_id, c->genesis.network_name, caps, "", 0, gm_time_now(),
                                 ttl_s, metadata, err);
    json_decref(caps);
    if (rc != 0)
        return rc;
    snprintf(url, sizeof url, "%s/agents", c->na_url);
    int status = 0;
    json_t *body = NULL;
    rc = gm_http_post_json(url, NULL, 0, d.doc, c->http_timeout_ms, &status, &body, err);
    gm_agent_desc_free(&d);
    if (rc == 0 && status != 200 && status != 201)
        rc = gm_error_set(err, status == 403 ? GM_EDENIED : status == 401 ? GM_ESIG : GM_ENET,
                          "the NA refused the registration of '%s' (HTTP %d): %s", c->agent_id, status,
                          na_message(body));
    json_decref(body);
    return rc;
}

int gm_agent_unregister(const gm_agent_ctx *c, gm_error *err)
{
    char url[800];
    json_t *body = json_pack("{s:s,s:s}", "agent_id", c->agent_id, "node_public_key", c->node.pk_b64);
    int rc = gm_reqsig_node_sign(body, &c->node, NULL, NULL, err);
    char *text = rc == 0 ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (rc != 0)
        return rc;
    snprintf(url, sizeof url, "%s/agents/%s", c->na_url, c->agent_id);
    const char *hdr[] = {"Content-Type: application/json"};
    gm_http_req req = {.method = "DELETE", .url = url, .headers = hdr, .n_headers = 1, .body = text,
                       .body_len = strlen(text), .timeout_ms = c->http_timeout_ms};
    gm_http_resp resp = {0};
    rc = gm_http_request(&req, &resp, err);
    free(text);
    if (rc == 0 && resp.status != 200 && resp.status != 204 && resp.status != 404) {
        json_t *b = json_loadb(resp.body ? resp.body : "", resp.len, 0, NULL);
        rc = gm_error_set(err, GM_ENET, "the NA refused to remove '%s' (HTTP %d): %s", c->agent_id, resp.status,
                          na_message(b));
        json_decref(b);
    }
    gm_http_resp_free(&resp);
    return rc;
}

/* ---- one request, run by a worker thread ---- */

struct job {
    gm_agent_provider *p;
    char *data;
    size_t len;
    uint8_t from[GM_PK_LEN];
    char authorized[300]; /* the rule of the node's access policy that let the request in, or "" */
};

/* The pool: threads that take turns reading the subscription (leader/follower). The one that
 * reads a request hands the reading over to a waiting thread (starting one when none waits,
 * up to max_inflight + 1) and runs the request itself, so a request is never handed from the
 * thread that read it to another one (a wake-up and a move to the other core per request).
 * Threads are kept once started (a thread per request cost a stack and a malloc arena set up
 * and torn down per request: mmap, mprotect, madvise, munmap, each a TLB flush on every core). */
static pthread_mutex_t g_work_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_work_cv = PTHREAD_COND_INITIALIZER; /* the reading is free, or the loop ended */
static pthread_cond_t g_lead_cv = PTHREAD_COND_INITIALIZER; /* the reader let go (for the ending) */
static int g_threads, g_waiting, g_led;
static atomic_int g_ended; /* set once, with g_work_mu held; read by the reading thread without it */
static atomic_int g_inflight;
/* The loop's subscribed connection, on which the jobs also send their answers (one writer at
 * a time); NULL while the node is away. A process runs one provider loop. */
static pthread_mutex_t g_conn_mu = PTHREAD_MUTEX_INITIALIZER;
static gm_node_conn_t *g_conn;
static atomic_uint g_seq;

static const char *code_name(int rc)
{
    switch (rc) {
    case GM_EINVAL:
    case GM_EFORMAT:
        return "invalid_input";
    case GM_ETOOBIG:
        return "too_big";
    case GM_ETIMEOUT:
        return "timeout";
    case GM_ENOTFOUND:
        return "unavailable";
    default:
        return "failed";
    }
}

/* Our certificate as the node holds it now (D/cert.json, rewritten on renewal), so the
 * requester can check the key that signs our steps. NULL (logged) when unusable. */
static json_t *own_cert(gm_agent_provider *p)
{
    /* Read again only when the file changed (a renewal): not once per answer. */
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static json_t *kept;
    static agent_file_stamp kept_st;
    char path[1200];
    agent_file_stamp st;
    gm_cert c;
    gm_error e = {0};
    agent_file_stamp_of(p->ctx.dir, "cert.json", &st);
    if (st.exists) {
        json_t *doc = NULL;
        pthread_mutex_lock(&mu);
        if (kept && agent_file_stamp_eq(&st, &kept_st))
            doc = json_incref(kept); /* shared: answers only read it (jansson counts references atomically) */
        pthread_mutex_unlock(&mu);
        if (doc)
            return doc;
    }
    if (gm_path_join(path, sizeof path, p->ctx.dir, "cert.json", &e) != 0 || !st.exists ||
        gm_cert_load(path, &c, &e) != 0) {
        if (!e.msg[0])
            gm_error_set(&e, GM_ENOTFOUND, "%s: no such file", path);
        plog(p, "warn", "no_certificate", "answers will be rejected: %s", e.msg);
        return NULL;
    }
    json_t *doc = NULL;
    if (memcmp(c.node_pk, p->ctx.node.pk, GM_PK_LEN) != 0)
        plog(p, "warn", "no_certificate", "answers will be rejected: %s is for another key than %s", path,
             p->ctx.node.pk_b64);
    else
        doc = json_incref(c.doc);
    gm_cert_free(&c);
    if (doc) {
        pthread_mutex_lock(&mu);
        json_decref(kept);
        kept = json_incref(doc);
        kept_st = st;
        pthread_mutex_unlock(&mu);
    }
    return doc;
}

/* The response envelope, carrying the certificate of every signer of steps found in pool. */
/* Append a step signed by this agent's node. A step that cannot be signed (out of memory) is
 * left out and logged: the requester then sees a shorter chain, and refuses an answer that lacks
 * its "executed" step, so nothing unsigned is ever passed off as done. */
static void add_step(gm_agent_provider *p, json_t *steps, const char *action, const char *cap, const char *rid,
                     const char *detail)
{
    gm_error e = {0};
    if (gm_agent_step_add(steps, &p->ctx.node, p->ctx.agent_id, action, cap, rid, detail, &e) != 0)
        plog(p, "warn", "step_failed", "request %s: %s step not recorded: %s", rid, action, e.msg);
}

static int build_reply(const gm_signer *node, gm_agent_response *resp, const char *rid, const char *cap,
                       const json_t *output, const char *code, const char *msg, const json_t *steps,
                       const json_t *pool, char **text, size_t *len, gm_error *e)
{
    json_t *certs = gm_agent_provenance_certs_for(steps, pool);
    int rc = gm_agent_response_new(resp, rid, cap, node->pk, output, code, msg, steps, e);
    if (rc == 0)
        rc = gm_agent_response_set_certificates(resp, certs, e);
    if (rc == 0)
        rc = gm_agent_envelope_dump(resp->doc, text, len, e);
    json_decref(certs);
    gm_agent_response_free(resp);
    return rc;
}

int gm_agent_reply_dump(const gm_signer *node, const char *agent_id, const char *rid, const char *cap,
                        const json_t *output, const char *code, const char *msg, const json_t *steps,
                        const json_t *pool, char **text, size_t *len, int *replaced, gm_error *err)
{
    gm_agent_response resp;
    gm_error e = {0};
    *text = NULL;
    *replaced = 0;
    if (build_reply(node, &resp, rid, cap, output, code, msg, steps, pool, text, len, &e) == 0)
        return 0;
    /* Too big or unencodable: still tell the requester, without the payload. */
    char why[600];
    snprintf(why, sizeof why, "cannot send the answer: %s", e.msg);
    gm_error_set(err, e.code, "%s", why);
    json_t *mini = json_array();
    /* an unsigned step is left out: the requester then refuses the answer as incomplete */
    if (gm_agent_step_add(mini, node, agent_id, "failed", cap, rid, why, &e) != 0) {
        /* nothing more to do: the answer goes out with an empty chain */
    }
    int rc = build_reply(node, &resp, rid, cap, NULL, "too_big", why, mini, pool, text, len, &e);
    json_decref(mini);
    if (rc != 0)
        return gm_error_set(err, rc, "%s; not even an error answer could be built: %s", why, e.msg);
    *replaced = 1;
    return 0;
}

/* collected (may be NULL): verified certificates of the signers of nested chains in steps. */
static void reply(gm_agent_provider *p, const uint8_t to[GM_PK_LEN], const char *rid, const char *cap,
                  const json_t *output, const char *code, const char *msg, json_t *steps, const json_t *collected)
{
    gm_error e = {0};
    char *text = NULL;
    size_t len;
    int replaced;
    json_t *pool = json_array(), *mine = own_cert(p);
    if (mine)
        json_array_append_new(pool, mine);
    if (collected)
        json_array_extend(pool, (json_t *)collected);
    if (p->fault && !strcmp(p->fault, "uncertified")) /* a requester must reject this answer */
        json_array_clear(pool);
    int rc = gm_agent_reply_dump(&p->ctx.node, p->ctx.agent_id, rid, cap, output, code, msg, steps, pool, &text, &len,
                                 &replaced, &e);
    json_decref(pool);
    if (rc != 0)
        return;
    if (p->fault && !strcmp(p->fault, "garbage")) {
        free(text);
        text = strdup("this is not a capability_response {");
        len = strlen(text);
    }
    /* On the subscription (a failure comes back to the loop, which logs it); a connection of
     * its own only while the loop has none. */
    pthread_mutex_lock(&g_conn_mu);
    rc = g_conn ? gm_node_conn_post(g_conn, to, GM_AGENT_PORT, text, len, atomic_fetch_add(&g_seq, 1) + 1, &e)
                : GM_EIO;
    pthread_mutex_unlock(&g_conn_mu);
    if (rc != 0 && gm_node_api_send(p->ctx.sock, to, GM_AGENT_PORT, text, len, LOCAL_API_TIMEOUT_MS, &e) != 0)
        plog(p, "warn", "reply_failed", "request %s: %s", rid, e.msg);
    free(text);
}

static void *job_run(void *arg)
{
    struct job *j = arg;
    gm_agent_provider *p = j->p;
    gm_agent_request req;
    gm_error e = {0};
    char fpk[GM_PK_B64_LEN + 1];
    gm_pk_encode(j->from, fpk);
    agent_calls_hold();
    if (gm_agent_request_parse(j->data, j->len, &req, &e) != 0) {
        /* Answer what we can identify; drop the rest silently (nothing to address it to). */
        json_t *v = json_loadb(j->data, j->len, 0, NULL);
        const char *rid = json_string_value(json_object_get(v, "request_id"));
        const char *cap = json_string_value(json_object_get(v, "capability"));
        plog(p, "warn", "bad_request", "from %.12s...: %s", fpk, e.msg);
        if (rid && cap && gm_uuid_valid(rid) && strlen(cap) <= GM_AGENT_CAP_MAX) {
            json_t *steps = json_array();
            char cap_copy[GM_AGENT_CAP_MAX + 1];
            snprintf(cap_copy, sizeof cap_copy, "%s", cap);
            add_step(p, steps, "failed", cap_copy, rid, e.msg);
            reply(p, j->from, rid, cap_copy, NULL, e.code == GM_ETOOBIG ? "too_big" : "invalid_input", e.msg, steps,
                  NULL);
            json_decref(steps);
        }
        json_decref(v);
        goto done;
    }
    if (memcmp(req.requester, j->from, GM_PK_LEN) != 0) {
        plog(p, "warn", "spoofed_requester", "request %s names another requester than its sender %.12s...",
             req.request_id, fpk);
        gm_agent_request_free(&req);
        goto done;
    }
    gm_time now = gm_time_now();
    if (gm_time_cmp(&now, &req.deadline) > 0) {
        plog(p, "warn", "late_request", "request %s arrived after its deadline; dropped", req.request_id);
        gm_agent_request_free(&req);
        goto done;
    }
    json_t *steps = json_array(), *certs = json_array();
    if (strcmp(req.capability, p->capability) != 0) {
        char why[200];
        snprintf(why, sizeof why, "this node serves %s, not %s", p->capability, req.capability);
        add_step(p, steps, "failed", req.capability, req.request_id, why);
        reply(p, j->from, req.request_id, req.capability, NULL, "unknown_capability", why, steps, NULL);
    } else if (p->fault && !strcmp(p->fault, "silent")) {
        plog(p, "info", "fault_silent", "request %s ignored (--fault silent)", req.request_id);
    } else {
        /* One line per call at info ("answered" or "handler_failed", written after the answer
         * left); its arrival only at debug: a log write is a system call on every call's path. */
        plog(p, "debug", "request", "%s from %.12s... (request %s)", req.capability, fpk, req.request_id);
        json_t *output = NULL;
        char detail[GM_AGENT_DETAIL_MAX + 1];
        snprintf(detail, sizeof detail, "%s", p->detail ? p->detail : "answered");
        gm_agent_call_in in = {.ctx = &p->ctx, .req = &req, .steps = steps, .certs = certs, .detail = detail};
        gm_error he = {0};
        int rc = p->handler(p->user, &in, &output, &he);
        if (rc == 0 && output) {
            /* Which rule let this call happen: the node judged the requester's certificate. */
            if (j->authorized[0]) {
                size_t dl = strlen(detail);
                snprintf(detail + dl, sizeof detail - dl, " [authorized: %s]", j->authorized);
            }
            add_step(p, steps, "executed", req.capability, req.request_id, detail);
            if (p->fault && !strcmp(p->fault, "forge")) {
                /* Tamper after signing: a requester must reject this answer. */
                json_t *last = json_array_get(steps, json_array_size(steps) - 1);
                json_object_set_new(last, "detail", json_string("forged detail"));
            }
            reply(p, j->from, req.request_id, req.capability, output, NULL, NULL, steps, certs);
            plog(p, "info", "answered", "%s from %.12s... (request %s)", req.capability, fpk, req.request_id);
        } else {
            if (rc == 0)
                rc = gm_error_set(&he, GM_EINTERNAL, "handler returned no output");
            add_step(p, steps, "failed", req.capability, req.request_id, he.msg);
            reply(p, j->from, req.request_id, req.capability, NULL, code_name(rc), he.msg, steps, certs);
            plog(p, "warn", "handler_failed", "%s from %.12s... (request %s): %s", req.capability, fpk, req.request_id,
                 he.msg);
        }
        json_decref(output);
    }
    json_decref(steps);
    json_decref(certs);
    gm_agent_request_free(&req);
done:
    agent_calls_settle(); /* after the answer: the nested calls' connection is parked off its path */
    free(j->data);
    free(j);
    atomic_fetch_sub(&g_inflight, 1);
    return NULL;
}

/* The job for a request that arrived from `from` (its own copy of data: the next read reuses
 * the connection's buffer), counted in flight; NULL when it is not a request for us or when
 * max_inflight requests are running already (logged). note: the access policy's rule that let
 * it in (from a noted frame or a JSON event), or NULL. */
static struct job *dispatch(gm_agent_provider *p, const uint8_t from[GM_PK_LEN], const uint8_t *data, size_t len,
                            const json_t *note)
{
    char fpk[GM_PK_B64_LEN + 1];
    if (len > GM_AGENT_MSG_MAX)
        return NULL;
    /* Responses to our own outgoing calls (planner) share the port: not for the loop. */
    if (gm_json_may_hold(data, len, "capability_response")) {
        json_t *v = json_loadb((const char *)data, len, 0, NULL);
        const char *t = json_string_value(json_object_get(v, "type"));
        int is_resp = t && !strcmp(t, "capability_response");
        json_decref(v);
        if (is_resp)
            return NULL;
    }
    struct job *j = calloc(1, sizeof *j);
    if (!j || !(j->data = malloc(len + 1))) {
        free(j);
        return NULL;
    }
    memcpy(j->data, data, len);
    j->data[len] = '\0';
    j->len = len;
    memcpy(j->from, from, GM_PK_LEN);
    if (json_is_object(note))
        snprintf(j->authorized, sizeof j->authorized, "access policy %lld, %s",
                 (long long)json_integer_value(json_object_get(note, "sequence")),
                 json_string_value(json_object_get(note, "rule")) ? json_string_value(json_object_get(note, "rule"))
                                                                   : "?");
    j->p = p;
    if (atomic_fetch_add(&g_inflight, 1) >= p->max_inflight) {
        atomic_fetch_sub(&g_inflight, 1);
        gm_pk_encode(from, fpk);
        plog(p, "warn", "busy", "dropping a request from %.12s...: %d requests in flight", fpk, p->max_inflight);
        free(j->data);
        free(j);
        return NULL;
    }
    return j;
}

/* A JSON line of the subscription: a message event (a node without frames, or of frames 1 a
 * request with an access-policy note), or the node's word on one of our answers. */
static struct job *dispatch_line(gm_agent_provider *p, const json_t *ev)
{
    struct job *j = NULL;
    const char *event = json_string_value(json_object_get(ev, "event"));
    if (event && !strcmp(event, "message")) {
        const char *from = json_string_value(json_object_get(ev, "from"));
        const char *b64 = json_string_value(json_object_get(ev, "data"));
        uint8_t pk[GM_PK_LEN];
        if (!from || !b64 || strlen(b64) > gm_b64_len(GM_AGENT_MSG_MAX) || gm_pk_decode(from, pk, NULL) != 0)
            return NULL;
        size_t cap = strlen(b64) / 4 * 3 + 4, len = 0;
        uint8_t *data = malloc(cap);
        if (data && gm_b64_decode(b64, data, cap, &len, NULL) == 0)
            j = dispatch(p, pk, data, len, json_object_get(ev, "authorized"));
        free(data);
    } else if ((event && !strcmp(event, "send_failed")) || json_is_false(json_object_get(ev, "ok"))) {
        const json_t *e = json_object_get(ev, "error");
        const char *msg = json_string_value(json_object_get(e, "message"));
        plog(p, "warn", "reply_failed", "the node refused an answer: %s: %s",
             json_string_value(json_object_get(e, "code")) ? json_string_value(json_object_get(e, "code")) : "?",
             msg ? msg : "");
    }
    return j;
}

/* A new connection to the local node subscribed to the agent port (*out NULL on failure). */
static int subscribe(gm_agent_provider *p, gm_node_conn_t **out, gm_error *err)
{
    int rc = gm_node_conn_open_path(p->ctx.sock, out, err);
    if (rc == 0 && (rc = gm_node_conn_subscribe_requests(*out, GM_AGENT_PORT, LOCAL_API_TIMEOUT_MS, err)) != 0) {
        gm_node_conn_close(*out);
        *out = NULL;
    }
    if (rc == 0) {
        pthread_mutex_lock(&g_conn_mu);
        g_conn = *out;
        pthread_mutex_unlock(&g_conn_mu);
    }
    return rc;
}

/* Close the subscription once no job is sending an answer on it. */
static void unsubscribe(gm_node_conn_t **conn)
{
    pthread_mutex_lock(&g_conn_mu);
    g_conn = NULL;
    pthread_mutex_unlock(&g_conn_mu);
    gm_node_conn_close(*conn);
    *conn = NULL;
}

/* The subscription the reading thread reads (only the thread holding the reading, and the
 * loop's owner once nobody can hold it any more, touch it). */
static gm_node_conn_t *g_read_conn;

/* One turn of the reading thread: restore the subscription if it is gone, else read one unit
 * (waiting at most 250 ms); the job for a request that came, or NULL. */
static struct job *read_turn(gm_agent_provider *p)
{
    if (!g_read_conn) {
        gm_error ce = {0};
        if (subscribe(p, &g_read_conn, &ce) != 0) {
            gm_sleep_ms(300);
            return NULL;
        }
        plog(p, "info", "resubscribed", "local node connection restored");
    }
    json_t *ev = NULL;
    gm_node_msg m;
    gm_error e = {0};
    struct job *j = NULL;
    int r = gm_node_conn_read_unit(g_read_conn, &ev, &m, 250, &e);
    if (r == GM_ETIMEOUT)
        return NULL;
    if (r < 0) {
        plog(p, "warn", "node_lost", "%s; reconnecting", e.msg);
        unsubscribe(&g_read_conn);
        return NULL;
    }
    if (r == 1) {
        /* A noted frame: only its small note is parsed, never the request itself. */
        json_t *note = m.note ? json_loadb(m.note, m.note_len, 0, NULL) : NULL;
        j = dispatch(p, m.from, m.data, m.len, note);
        json_decref(note);
    } else
        j = dispatch_line(p, ev);
    json_decref(ev);
    return j;
}

static void *pool_main(void *arg);

/* Start one more thread of the pool (g_work_mu held); 0 or -1. */
static int pool_grow(gm_agent_provider *p)
{
    pthread_t th;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&th, &at, pool_main, p) == 0 ? 0 : -1;
    pthread_attr_destroy(&at);
    if (rc == 0)
        g_threads++;
    return rc;
}

/* A thread of the pool: wait for the reading, read until a request comes, hand the reading on
 * and run the request; until the loop ends. */
static void *pool_main(void *arg)
{
    gm_agent_provider *p = arg;
    pthread_mutex_lock(&g_work_mu);
    for (;;) {
        g_waiting++;
        while (g_led && !g_ended)
            pthread_cond_wait(&g_work_cv, &g_work_mu);
        g_waiting--;
        if (g_ended)
            break;
        g_led = 1;
        pthread_mutex_unlock(&g_work_mu);
        struct job *j = NULL;
        while (!j && !atomic_load(&g_ended))
            j = read_turn(p);
        pthread_mutex_lock(&g_work_mu);
        g_led = 0;
        if (!j) { /* the loop ended while we were reading */
            pthread_cond_broadcast(&g_lead_cv);
            break;
        }
        int started = 0, wake = g_waiting > 0;
        if (!wake && g_threads < p->max_inflight + 1 && !g_ended && pool_grow(p) == 0)
            started = g_threads;
        pthread_mutex_unlock(&g_work_mu);
        /* Signalled after the unlock: a waiter woken while we held the mutex would only block
         * on it again (two more switches and futex calls per request, seen with strace). */
        if (wake)
            pthread_cond_signal(&g_work_cv);
        if (started)
            plog(p, "info", "worker_started", "%d worker threads (at most %d)", started, p->max_inflight + 1);
        /* none could be started: the reading waits for the first thread done with its request */
        job_run(j);
        pthread_mutex_lock(&g_work_mu);
    }
    g_threads--;
    pthread_mutex_unlock(&g_work_mu);
    return NULL;
}

int gm_agent_provider_run(gm_agent_provider *p, gm_error *err)
{
    int rc = 0;
    if (p->ttl_s <= 0 || p->ttl_s > GM_AGENT_TTL_MAX_S)
        p->ttl_s = 600;
    if (p->max_inflight <= 0)
        p->max_inflight = 32;
    /* Each request runs in a thread of its own, whose malloc arena glibc would trim (madvise,
     * munmap) as it finishes and grow again (mprotect) for the next: a TLB flush on every
     * core each time (perf: about a quarter of the LLM agent's CPU). Keep freed memory. */
    mallopt(M_TRIM_THRESHOLD, PROVIDER_MALLOC_TRIM);
    /* The node may still be starting: wait for its socket, then for the NA to accept us. */
    int64_t give_up = gm_mono_ms() + STARTUP_WAIT_MS;
    while (subscribe(p, &g_read_conn, err) != 0) {
        if (*p->stop || gm_mono_ms() > give_up)
            return gm_error_prefix(err, "subscribing to the local node");
        gm_sleep_ms(200);
    }
    while ((rc = gm_agent_register(&p->ctx, p->capability, p->ttl_s, p->metadata, err)) != 0) {
        if (*p->stop || gm_mono_ms() > give_up || rc == GM_EDENIED || rc == GM_ESIG) {
            unsubscribe(&g_read_conn);
            return rc;
        }
        gm_sleep_ms(300);
    }
    plog(p, "info", "registered", "%s offers %s (node %s), descriptor valid %d s", p->ctx.agent_id, p->capability,
         p->ctx.node.pk_b64, p->ttl_s);
    pthread_mutex_lock(&g_work_mu);
    g_ended = 0;
    int started = pool_grow(p);
    pthread_mutex_unlock(&g_work_mu);
    if (started != 0) {
        unsubscribe(&g_read_conn);
        return gm_error_set(err, GM_ENOMEM, "cannot start a thread to read requests");
    }
    /* The pool reads and runs requests; this thread keeps the descriptor registered. */
    int64_t refresh_at = gm_mono_ms() + (int64_t)p->ttl_s * 2000 / 3;
    while (!*p->stop) {
        if (gm_mono_ms() >= refresh_at) {
            gm_error re = {0};
            if (gm_agent_register(&p->ctx, p->capability, p->ttl_s, p->metadata, &re) == 0) {
                plog(p, "info", "refreshed", "descriptor of %s renewed", p->ctx.agent_id);
                refresh_at = gm_mono_ms() + (int64_t)p->ttl_s * 2000 / 3;
            } else {
                plog(p, "warn", "refresh_failed", "%s", re.msg);
                if (re.code == GM_EDENIED) { /* revoked: nothing left to serve */
                    rc = gm_error_set(err, GM_EREVOKED, "the NA no longer accepts this node: %s", re.msg);
                    break;
                }
                refresh_at = gm_mono_ms() + 2000;
            }
        }
        gm_sleep_ms(250);
    }
    /* No thread takes the reading any more; the one reading lets go within its 250 ms. */
    pthread_mutex_lock(&g_work_mu);
    g_ended = 1;
    pthread_cond_broadcast(&g_work_cv);
    while (g_led)
        pthread_cond_wait(&g_lead_cv, &g_work_mu);
    pthread_mutex_unlock(&g_work_mu);
    /* The jobs still running answer on the subscription. */
    int64_t drain = gm_mono_ms() + DRAIN_WAIT_MS;
    while (atomic_load(&g_inflight) > 0 && gm_mono_ms() < drain)
        gm_sleep_ms(20);
    if (g_read_conn)
        unsubscribe(&g_read_conn);
    gm_error ue = {0};
    if (rc != GM_EREVOKED) {
        if (gm_agent_unregister(&p->ctx, &ue) == 0)
            plog(p, "info", "unregistered", "%s removed from the NA registry", p->ctx.agent_id);
        else
            plog(p, "warn", "unregister_failed", "%s", ue.msg);
    }
    return rc;
}
