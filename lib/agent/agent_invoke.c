/* Invocation: a capability_request goes to the provider's node key through our own node's
 * local API (routed and end-to-end encrypted by the mesh) on one connection, subscribed with
 * binary frames and carrying the request as a send frame (JSON with a node without frames);
 * we wait for the matching response until the request's deadline, never longer. The connection
 * is kept per thread between calls, parked (unsubscribed); on a provider's job thread it stays
 * subscribed from one nested call to the next and is parked after the job's answer. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gm/agent.h"
#include "gm/node.h"
#include "gm/util.h"
#include "core_internal.h"
#include "agent_internal.h"
#include "client_internal.h"

#define CALL_MAX_ATTEMPTS 4
#define NA_RETRY_MS 250 /* discovery asked again this often while the NA is unreachable */
/* Bound of one local API exchange (subscribe, send) with our own node. */
#define LOCAL_API_TIMEOUT_MS 5000

static int is_request(const uint8_t *data, size_t len)
{
    if (!gm_json_may_hold(data, len, "capability_request"))
        return 0;
    json_t *v = json_loadb((const char *)data, len, 0, NULL);
    const char *t = json_string_value(json_object_get(v, "type"));
    int r = t && !strcmp(t, "capability_request");
    json_decref(v);
    return r;
}

/* Every signer of a verified chain must hold a valid certificate in the answer; keep only the
 * certificates that vouched, one per signer, so they can be passed on unchanged. */
static int check_signers(gm_agent_response *resp, const gm_genesis *const gs[], size_t k, const gm_crl *crl,
                         gm_error *err)
{
    json_t *vouched = json_array();
    if (!vouched)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    int rc = gm_agent_provenance_check_signers_any(resp->provenance, resp->certificates, gs, k, crl, gm_time_now(),
                                                   vouched, err);
    if (rc == 0)
        rc = gm_agent_response_set_certificates(resp, vouched, err);
    json_decref(vouched);
    return rc;
}

/* A requester's connection to its node, kept per thread from one call to the next: parked
 * (unsubscribed, so the node delivers nothing to it) while idle, subscribed again in the same
 * write as the next request. A fresh connection costs a socket, a connect, a hello and a close on
 * both sides; a parked one, nothing. */
typedef struct parked_conn {
    gm_node_conn_t *conn;
    char sock[sizeof(((gm_agent_ctx *)0)->sock)];
    pid_t pid;     /* a child after fork() shares the socket: it opens its own */
    uint32_t seq;  /* the number of the last request posted on it */
    int held;      /* still subscribed: its park waits for agent_calls_settle */
} parked_conn;

static pthread_key_t g_parked_key;
static pthread_once_t g_parked_once = PTHREAD_ONCE_INIT;
static int g_parked_ok;
/* Set on a provider's job thread while it runs a request (agent_calls_hold): its nested calls
 * leave their connection subscribed, so that the next one neither subscribes again nor waits
 * behind an unsubscribe, and the park goes out once the job's answer left. */
static __thread int t_hold;

static void parked_free(void *v)
{
    parked_conn *pc = v;
    if (pc) {
        gm_node_conn_close(pc->conn);
        free(pc);
    }
}

static void parked_init(void)
{
    g_parked_ok = pthread_key_create(&g_parked_key, parked_free) == 0;
}

/* A connection to the node at sock subscribed to the agent port (this thread's parked one,
 * *kept 1, or a new one) and the number for the request to post on it. */
static int conn_take(const char *sock, gm_node_conn_t **out, uint32_t *seq, int *kept, gm_error *err)
{
    pthread_once(&g_parked_once, parked_init);
    parked_conn *pc = g_parked_ok ? pthread_getspecific(g_parked_key) : NULL;
    *out = NULL;
    *kept = 0;
    *seq = pc ? pc->seq + 1 : 1;
    if (pc && pc->conn) {
        gm_node_conn_t *c = pc->conn;
        gm_error e = {0};
        int held = pc->held;
        pc->conn = NULL;
        pc->held = 0;
        if (pc->pid == getpid() && !strcmp(pc->sock, sock) &&
            (held || gm_node_conn_resubscribe(c, GM_AGENT_PORT, &e) == 0)) {
            *out = c;
            *kept = 1;
            return 0;
        }
        gm_node_conn_close(c); /* another node or another process: a new one */
    }
    int rc = gm_node_conn_open_path(sock, out, err);
    if (rc == 0 && (rc = gm_node_conn_subscribe_frames(*out, GM_AGENT_PORT, LOCAL_API_TIMEOUT_MS, err)) != 0) {
        gm_node_conn_close(*out);
        *out = NULL;
    }
    return rc;
}

/* The connection after a call: parked for the next one when it is still in a known state and
 * its node can park it (held subscribed while a provider's job runs), else closed. */
static void conn_give_back(const char *sock, gm_node_conn_t *c, uint32_t seq, int usable)
{
    gm_error e = {0};
    parked_conn *pc = g_parked_ok ? pthread_getspecific(g_parked_key) : NULL;
    if (!usable || !g_parked_ok || !gm_node_conn_can_park(c) || (!t_hold && gm_node_conn_park(c, &e) != 0)) {
        gm_node_conn_close(c);
        if (pc)
            pc->seq = seq;
        return;
    }
    if (!pc && (!(pc = calloc(1, sizeof *pc)) || pthread_setspecific(g_parked_key, pc) != 0)) {
        free(pc);
        gm_node_conn_close(c);
        return;
    }
    gm_node_conn_close(pc->conn); /* none expected: calls on one thread follow each other */
    pc->conn = c;
    snprintf(pc->sock, sizeof pc->sock, "%s", sock);
    pc->pid = getpid();
    pc->seq = seq;
    pc->held = t_hold;
}

void agent_calls_hold(void)
{
    t_hold = 1;
}

void agent_calls_settle(void)
{
    gm_error e = {0};
    t_hold = 0;
    pthread_once(&g_parked_once, parked_init);
    parked_conn *pc = g_parked_ok ? pthread_getspecific(g_parked_key) : NULL;
    if (!pc || !pc->conn || !pc->held)
        return;
    pc->held = 0;
    if (gm_node_conn_park(pc->conn, &e) != 0) {
        gm_node_conn_close(pc->conn);
        pc->conn = NULL;
    }
}

/* A request posted on a connection and not answered yet. */
typedef struct pending_call {
    gm_node_conn_t *conn;
    uint32_t seq;
} pending_call;

/* Post req to provider on this thread's connection to the node at sock. */
static int invoke_send(const char *sock, const gm_agent_request *req, const uint8_t provider[GM_PK_LEN],
                       pending_call *pc, gm_error *err)
{
    char ppk[GM_PK_B64_LEN + 1], *msg = NULL;
    size_t mlen;
    pc->conn = NULL;
    gm_pk_encode(provider, ppk);
    int rc = gm_agent_envelope_dump(req->doc, &msg, &mlen, err);
    if (rc != 0)
        return rc;
    /* One connection: subscribed first (binary frames when the node has them) so a fast
     * answer cannot slip past us, then the request sent on it; the node speaks only if the
     * send fails. */
    int kept = 0;
    for (int tries = 0; tries < 2; tries++) {
        if ((rc = conn_take(sock, &pc->conn, &pc->seq, &kept, err)) != 0) {
            free(msg);
            return rc;
        }
        /* A parked connection's subscription goes out with this write: a node that restarted
         * since the last call shows here (the write fails), and a new connection sends again. */
        rc = gm_node_conn_post(pc->conn, provider, GM_AGENT_PORT, msg, mlen, pc->seq, err);
        if (rc == 0 || !kept)
            break;
        gm_node_conn_close(pc->conn);
        pc->conn = NULL;
    }
    free(msg);
    if (rc != 0) {
        gm_node_conn_close(pc->conn);
        pc->conn = NULL;
        return gm_error_prefix(err, "provider %.12s... unreachable", ppk);
    }
    return 0;
}

/* Wait for the answer to the request pc holds and verify it; the connection goes back to
 * this thread's keeping (or is closed) either way. */
static int invoke_wait(const char *sock, pending_call *pc, const gm_agent_request *req,
                       const uint8_t provider[GM_PK_LEN], const gm_genesis *const gs[], size_t k, const gm_crl *crl,
                       gm_agent_response *resp, gm_error *err)
{
    char ppk[GM_PK_B64_LEN + 1];
    gm_node_conn_t *conn = pc->conn;
    uint32_t seq = pc->seq;
    int rc, usable = 1; /* the connection is in a known state: it may serve the next call */
    memset(resp, 0, sizeof *resp);
    gm_pk_encode(provider, ppk);
    for (;;) {
        gm_time now = gm_time_now();
        int64_t left = (req->deadline.unix_s - now.unix_s) * 1000 + (req->deadline.usec - now.usec) / 1000;
        if (left <= 0) {
            rc = gm_error_set(err, GM_ETIMEOUT, "provider %.12s... did not answer %s before the deadline", ppk,
                              req->capability);
            break;
        }
        json_t *line = NULL;
        gm_node_msg m;
        rc = gm_node_conn_read_msg(conn, &line, &m, left > INT32_MAX ? INT32_MAX : (int)left, err);
        if (rc == GM_ETIMEOUT)
            continue;
        if (rc == 0) { /* a JSON line: only a failure of our send matters */
            rc = gm_node_conn_post_failed(line, seq, provider, err);
            json_decref(line);
            if (rc != 0) {
                gm_error_prefix(err, "provider %.12s... unreachable", ppk);
                break;
            }
            continue;
        }
        if (rc < 0) {
            usable = 0; /* the connection itself failed */
            break;
        }
        if (memcmp(m.from, provider, GM_PK_LEN) != 0 || strcmp(m.port, GM_AGENT_PORT) != 0 ||
            m.len > GM_AGENT_MSG_MAX)
            continue;
        if (is_request(m.data, m.len)) /* the provider node asking us something: not our answer */
            continue;
        gm_error pe = {0};
        rc = gm_agent_response_parse((const char *)m.data, m.len, resp, &pe);
        if (rc != 0) {
            rc = gm_error_set(err, GM_EPROTO, "provider %.12s... answered garbage: %s", ppk, pe.msg);
            break;
        }
        if (strcmp(resp->request_id, req->request_id) != 0) { /* a late answer to an earlier request */
            gm_agent_response_free(resp);
            continue;
        }
        if (memcmp(resp->provider, provider, GM_PK_LEN) != 0 || strcmp(resp->capability, req->capability) != 0) {
            gm_agent_response_free(resp);
            rc = gm_error_set(err, GM_EPROTO, "provider %.12s... answered for another provider or capability", ppk);
            break;
        }
        if ((rc = gm_agent_provenance_verify(resp->provenance, req->request_id, provider, err)) != 0 ||
            (rc = check_signers(resp, gs, k, crl, err)) != 0) {
            gm_agent_response_free(resp);
            gm_error_prefix(err, "rejected answer from %.12s...", ppk);
            rc = GM_EPROTO;
            break;
        }
        rc = 0;
        break;
    }
    conn_give_back(sock, conn, seq, usable);
    return rc;
}

int gm_agent_invoke(const char *sock, const gm_agent_request *req, const uint8_t provider[GM_PK_LEN],
                    const gm_genesis *const gs[], size_t k, const gm_crl *crl, gm_agent_response *resp,
                    gm_error *err)
{
    pending_call pc;
    memset(resp, 0, sizeof *resp);
    int rc = invoke_send(sock, req, provider, &pc, err);
    return rc != 0 ? rc : invoke_wait(sock, &pc, req, provider, gs, k, crl, resp, err);
}

static int retryable(const char *code)
{
    return !(code && (!strcmp(code, "invalid_input") || !strcmp(code, "too_big") || !strcmp(code, "forbidden")));
}

int gm_agent_call(const gm_agent_ctx *c, const char *capability, const json_t *input, long timeout_ms, json_t *steps,
                  const char *rid, gm_agent_response *resp, char chosen[GM_AGENT_ID_MAX + 1], gm_error *err)
{
    return gm_agent_call_collect(c, capability, input, timeout_ms, steps, NULL, rid, resp, chosen, err);
}

int gm_agent_call_collect(const gm_agent_ctx *c, const char *capability, const json_t *input, long timeout_ms,
                          json_t *steps, json_t *certs, const char *rid, gm_agent_response *resp,
                          char chosen[GM_AGENT_ID_MAX + 1], gm_error *err)
{
    return gm_agent_call_after(c, capability, input, timeout_ms, steps, certs, rid, NULL, resp, chosen, err);
}

int gm_agent_call_after(const gm_agent_ctx *c, const char *capability, const json_t *input, long timeout_ms,
                        json_t *steps, json_t *certs, const char *rid, const char *previous, gm_agent_response *resp,
                        char chosen[GM_AGENT_ID_MAX + 1], gm_error *err)
{
    uint8_t exclude[CALL_MAX_ATTEMPTS][GM_PK_LEN];
    size_t n_ex = 0;
    char cap[GM_AGENT_CAP_MAX + 1], detail[GM_AGENT_DETAIL_MAX + 1], last[GM_AGENT_DETAIL_MAX + 1] = "";
    gm_error e = {0};
    int rc = gm_agent_cap_normalize(capability, cap, err);
    memset(resp, 0, sizeof *resp);
    if (chosen)
        chosen[0] = '\0';
    if (rc != 0)
        return rc;
#define STEP_AT(action, when, ...)                                                                                     \
    do {                                                                                                               \
        if (steps) {                                                                                                   \
            snprintf(detail, sizeof detail, __VA_ARGS__);                                                              \
            if (gm_agent_step_add_at(steps, &c->node, c->agent_id, action, cap, rid, detail, when, &e) != 0) {         \
                /* a step is only the caller's record: one that cannot be signed (out of                               \
                   memory) is left out of its chain and the call goes on */                                            \
            }                                                                                                          \
        }                                                                                                              \
    } while (0)
#define STEP(action, ...) STEP_AT(action, gm_time_now(), __VA_ARGS__)
    /* An NA that does not answer for a moment (a restart, as in an NA key rotation) is asked
     * again until 3/4 of the call's time is spent; the rest is left for the provider. */
    int64_t na_give_up = gm_mono_ms() + (timeout_ms > 0 ? timeout_ms * 3 / 4 : 0);
    for (int attempt = 0; attempt < CALL_MAX_ATTEMPTS; attempt++) {
        gm_agent_candidates cs;
        while ((rc = gm_agent_discover(c, cap, (const uint8_t(*)[GM_PK_LEN])exclude, n_ex, &cs, err)) == GM_ENET &&
               gm_mono_ms() + NA_RETRY_MS < na_give_up)
            gm_sleep_ms(NA_RETRY_MS);
        if (rc != 0) {
            STEP("failed", "discovery of %s failed: %.400s", cap, err ? err->msg : "");
            return rc;
        }
        if (attempt == 0 && previous && previous[0]) {
            const char *why = "no longer registered with the NA (revoked or unregistered)";
            int usable = 0;
            for (size_t i = 0; i < cs.n; i++)
                if (cs.v[i].desc.agent_id && !strcmp(cs.v[i].desc.agent_id, previous)) {
                    usable = cs.v[i].usable;
                    why = cs.v[i].reason;
                }
            if (!usable)
                STEP("failed", "failover: %.64s, which served %s before, is %.300s; selecting another provider",
                     previous, cap, why);
        }
        if (cs.n_usable == 0) {
            char why[300] = "";
            for (size_t i = 0; i < cs.n && !why[0]; i++)
                snprintf(why, sizeof why, "; %s rejected: %.200s", cs.v[i].desc.agent_id ? cs.v[i].desc.agent_id : "?",
                         cs.v[i].reason);
            STEP("failed", "no usable provider of %s (%zu listed%s)", cap, cs.n, why);
            rc = gm_error_set(err, GM_ENOTFOUND, "no usable provider of %s (%zu listed by the NA%s)%s%s", cap, cs.n, why,
                              last[0] ? "; last failure: " : "", last);
            gm_agent_candidates_free(&cs);
            return rc;
        }
        gm_agent_candidate *p = &cs.v[0];
        gm_time discovered_at = gm_time_now(), routed_at;
        gm_agent_request req;
        if ((rc = gm_agent_request_new(&req, cap, input, c->node.pk, timeout_ms, err)) != 0) {
            STEP_AT("discovered", discovered_at, "%s: %zu usable of %zu listed (CRL %llu); selected %s", cap,
                    cs.n_usable, cs.n, (unsigned long long)cs.crl_sequence, p->desc.agent_id);
            gm_agent_candidates_free(&cs);
            return rc;
        }
        /* The request goes out first; our two records of it are signed while the provider
         * works (each signature is ~20 us on this path), with the times they happened. */
        pending_call pend;
        routed_at = gm_time_now();
        rc = invoke_send(c->sock, &req, p->desc.node_pk, &pend, &e);
        STEP_AT("discovered", discovered_at, "%s: %zu usable of %zu listed (CRL %llu); selected %s", cap, cs.n_usable,
                cs.n, (unsigned long long)cs.crl_sequence, p->desc.agent_id);
        STEP_AT("routed", routed_at, "request %s to %s (node %.12s...) over the mesh", req.request_id,
                p->desc.agent_id, p->desc.node_pk_b64);
        const gm_genesis *gs[3];
        size_t k = gm_agent_ctx_trusted(c, gs);
        if (rc == 0)
            rc = invoke_wait(c->sock, &pend, &req, p->desc.node_pk, gs, k, &cs.crl, resp, &e);
        gm_agent_request_free(&req);
        if (rc == 0 && steps)
            for (size_t i = 0; i < json_array_size(resp->provenance); i++)
                json_array_append(steps, json_array_get(resp->provenance, i));
        if (rc == 0 && certs)
            json_array_extend(certs, (json_t *)resp->certificates);
        if (rc == 0 && !resp->error_code) {
            if (chosen)
                snprintf(chosen, GM_AGENT_ID_MAX + 1, "%s", p->desc.agent_id);
            gm_agent_candidates_free(&cs);
            return 0;
        }
        if (rc == 0) {
            snprintf(last, sizeof last, "%s answered %s: %s", p->desc.agent_id, resp->error_code, resp->error_message);
            if (!retryable(resp->error_code)) {
                STEP("failed", "%s", last);
                if (chosen)
                    snprintf(chosen, GM_AGENT_ID_MAX + 1, "%s", p->desc.agent_id);
                gm_agent_candidates_free(&cs);
                return 0; /* the caller reads resp->error_* */
            }
            gm_agent_response_free(resp);
        } else {
            snprintf(last, sizeof last, "%s: %.400s", p->desc.agent_id, e.msg);
        }
        STEP("failed", "%.480s; failing over", last);
        memcpy(exclude[n_ex++], p->desc.node_pk, GM_PK_LEN);
        gm_agent_candidates_free(&cs);
    }
#undef STEP
#undef STEP_AT
    return gm_error_set(err, GM_ENOTFOUND, "no provider of %s answered after %d attempts; last failure: %s", cap,
                        CALL_MAX_ATTEMPTS, last);
}
