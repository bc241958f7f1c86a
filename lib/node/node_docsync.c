/* Keeping the NA's signed documents current on every node (the CRL, the access policy, the
 * successor genesis block of an NA key rotation): one
 * mechanism for all of them, described by a node_doc_kind. At start a bounded synchronous
 * fetch; for the CRL a watch held on the NA (GET /crl?after=N&wait=S on the thread pool,
 * answered the moment the NA publishes a newer CRL, renewed at once); a poll of the NA with
 * ETag on the thread pool (for the CRL a slow fallback while the watch is on); and gossip
 * between peers, for nodes that cannot reach the NA: a
 * node announces the sequence it holds (ANNOUNCE), a peer that holds less asks (REQUEST)
 * and gets the signed text in chunks (DATA), reassembled by node_crl_rx_feed. What arrives
 * is offered to the kind, which accepts it only when the NA signature verifies and the
 * sequence goes up. A request the peer does not answer (it may drop it: one answer a second
 * per peer and document) is given up after DOC_REQUEST_TIMEOUT_MS and asked again, of another
 * peer that announced something newer when there is one, at most DOC_REQUEST_MAX_ASKS times
 * per peer and announced sequence. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gm/http_client.h"
#include "node_internal.h"

#define DOC_HTTP_TIMEOUT_MS 5000
#define DOC_STARTUP_TIMEOUT_MS 3000
#define DOC_DEFAULT_POLL_MS 2000
#define DOC_CRL_FALLBACK_POLL_MS 60000 /* default CRL poll while the watch is on */
#define DOC_WATCH_DEFAULT_S 1800       /* 1 000 watching nodes: about 0.6 requests/s at the NA */
#define DOC_WATCH_SLACK_MS 30000       /* beyond the wait, before the client gives up */
#define DOC_WATCH_RETRY_MAX_MS 16000
#define DOC_FILE_MAX (16u << 20)
#define DOC_REQUEST_TIMEOUT_MS 3000
#define DOC_REQUEST_MAX_ASKS 5

static const node_doc_kind *const kinds[NODE_DOCS] = {&node_doc_crl, &node_doc_policy, &node_doc_genesis};

static void event_name(char *out, size_t cap, const node_doc_kind *k, const char *what)
{
    snprintf(out, cap, "%s_%s", k->event, what);
}

static void announce(gm_node *n, const node_doc_kind *k, node_link *l)
{
    uint8_t msg[16];
    size_t len;
    uint64_t seq;
    if (k->held(n, &seq) && gm_wire_doc_announce_encode(k->t_announce, seq, msg, sizeof msg, &len, NULL) == 0)
        node_link_send(l, msg, len);
}

void node_doc_announce(gm_node *n, int kind)
{
    for (node_link *l = n->links; l; l = l->next)
        if (l->state == LINK_UP)
            announce(n, kinds[kind], l);
}

static long watch_wait_s(gm_node *n)
{
    return n->cfg.crl_watch_s == 0 ? DOC_WATCH_DEFAULT_S : n->cfg.crl_watch_s;
}

static long poll_every_kind(gm_node *n, int kind)
{
    if (n->cfg.crl_poll_ms != 0)
        return n->cfg.crl_poll_ms;
    return kind == NODE_DOC_CRL && watch_wait_s(n) > 0 ? DOC_CRL_FALLBACK_POLL_MS : DOC_DEFAULT_POLL_MS;
}


static void keep_etag(gm_node *n, int kind, const char *etag)
{
    node_doc_state *st = &n->docs[kind];
    if (etag && etag[0] && strlen(etag) < sizeof st->etag)
        memcpy(st->etag, etag, strlen(etag) + 1);
}

void node_doc_fetch_startup(gm_node *n, int kind)
{
    const node_doc_kind *k = kinds[kind];
    char url[600], ev[64];
    gm_error err = {0};
    gm_http_resp resp = {0};
    uint64_t seq = 0;
    if ((poll_every_kind(n, kind) < 0 && !(kind == NODE_DOC_CRL && watch_wait_s(n) > 0)) || !n->na_url[0])
        return;
    snprintf(url, sizeof url, "%s%s", n->na_url, k->path);
    gm_http_req r = {.method = "GET", .url = url, .timeout_ms = DOC_STARTUP_TIMEOUT_MS, .max_response = DOC_FILE_MAX};
    int rc = gm_http_request(&r, &resp, &err);
    if (rc == 0 && resp.status == 404 && k->optional) {
        gm_http_resp_free(&resp);
        return;
    }
    if (rc == 0 && resp.status != 200)
        rc = gm_error_set(&err, GM_ENET, "%s answered HTTP %d", url, resp.status);
    if (rc != 0) {
        int held = k->held(n, &seq);
        event_name(ev, sizeof ev, k, "fetch_failed");
        node_log(n, GM_LOG_WARN, ev,
                 json_pack("{s:s,s:s,s:o}", "error", err.msg, "using", held ? "cached copy" : "none", "sequence",
                           held ? json_integer((json_int_t)seq) : json_null()));
        gm_http_resp_free(&resp);
        return;
    }
    rc = k->offer(n, resp.body, resp.len, "na", 1);
    if (rc == 0 || rc == GM_ECONFLICT)
        keep_etag(n, kind, resp.etag);
    gm_http_resp_free(&resp);
}

void node_doc_poll_soon(gm_node *n, int kind)
{
    n->docs[kind].next_poll_ms = 0;
}

/* ---- chunked transfer ---- */

typedef struct doc_link {
    node_crl_rx rx;
    char *tx;          /* document text being sent, NULL when idle */
    size_t tx_len, tx_off;
    uint64_t tx_seq;
    int requested;     /* we asked this peer and wait for its chunks */
    uint64_t requested_ms; /* when we asked */
    uint64_t announced;    /* the highest sequence this peer announced */
    int has_announced;
    unsigned asks;         /* requests sent to this peer for that sequence */
    uint64_t sent_ms;  /* last time we started sending it the document */
} doc_link;

static doc_link *link_state(node_link *l, int kind)
{
    if (!l->doc_state[kind])
        l->doc_state[kind] = calloc(1, sizeof(doc_link));
    return l->doc_state[kind];
}

void node_doc_link_free(node_link *l)
{
    for (int kind = 0; kind < NODE_DOCS; kind++) {
        doc_link *s = l->doc_state[kind];
        if (!s)
            continue;
        node_crl_rx_reset(&s->rx, &l->node->crl_rx_bytes);
        free(s->tx);
        free(s);
        l->doc_state[kind] = NULL;
    }
}

/* Send the next chunks of the document in flight to l, in order, while its send queue is short. */
static void pump(node_link *l, const node_doc_kind *k, doc_link *s)
{
    uint8_t *buf = NULL;
    gm_error err = {0};
    if (!s || !s->tx)
        return;
    while (s->tx_off < s->tx_len && l->state == LINK_UP &&
           uv_stream_get_write_queue_size((uv_stream_t *)&l->tcp) < NODE_SENDQ_HIGH) {
        if (!buf && !(buf = malloc(1 + GM_WIRE_CRL_DATA_HEADER + GM_WIRE_CRL_CHUNK_MAX)))
            break;
        size_t n = s->tx_len - s->tx_off;
        if (n > GM_WIRE_CRL_CHUNK_MAX)
            n = GM_WIRE_CRL_CHUNK_MAX;
        gm_wire_crl_chunk c = {.sequence = s->tx_seq, .total_len = (uint32_t)s->tx_len, .offset = (uint32_t)s->tx_off,
                               .data = (const uint8_t *)s->tx + s->tx_off, .len = n};
        size_t olen;
        if (gm_wire_doc_data_encode(k->t_data, &c, buf, 1 + GM_WIRE_CRL_DATA_HEADER + GM_WIRE_CRL_CHUNK_MAX, &olen,
                                    &err) != 0 ||
            node_link_send(l, buf, olen) != 0) {
            s->tx_off = s->tx_len;
            break;
        }
        s->tx_off += n;
    }
    free(buf);
    if (s->tx_off >= s->tx_len || l->state != LINK_UP) {
        free(s->tx);
        s->tx = NULL;
    }
}

/* Does this peer announce a newer document than ours that we may still ask it for? */
static int worth_asking(gm_node *n, const node_doc_kind *k, const doc_link *s)
{
    uint64_t held;
    return s && s->has_announced && (!k->held(n, &held) || s->announced > held) && !s->requested &&
           s->asks < DOC_REQUEST_MAX_ASKS;
}

static void ask(gm_node *n, node_link *l, const node_doc_kind *k, doc_link *s)
{
    uint8_t out[32];
    size_t olen;
    if (gm_wire_doc_request_encode(k->t_request, out, sizeof out, &olen, NULL) != 0)
        return;
    s->requested = 1;
    s->requested_ms = node_now_ms(n);
    s->asks++;
    node_link_send(l, out, olen);
}

/* A request to `from` went unanswered: ask another peer that announced something newer, else
 * `from` again (within the bound of asks). */
static void ask_again(gm_node *n, node_link *from, int kind)
{
    const node_doc_kind *k = kinds[kind];
    for (node_link *l = n->links; l; l = l->next)
        if (l != from && l->state == LINK_UP && worth_asking(n, k, l->doc_state[kind])) {
            ask(n, l, k, l->doc_state[kind]);
            return;
        }
    if (from->state == LINK_UP && worth_asking(n, k, from->doc_state[kind]))
        ask(n, from, k, from->doc_state[kind]);
}

static void link_tick(gm_node *n, uint64_t now)
{
    for (node_link *l = n->links; l; l = l->next)
        for (int kind = 0; kind < NODE_DOCS; kind++) {
            doc_link *s = l->doc_state[kind];
            if (!s)
                continue;
            if (s->rx.active && now - s->rx.started_ms > NODE_CRL_RX_TIMEOUT_MS) {
                node_crl_rx_reset(&s->rx, &n->crl_rx_bytes);
                s->requested = 0;
                ask_again(n, l, kind);
            } else if (s->requested && !s->rx.active && now - s->requested_ms > DOC_REQUEST_TIMEOUT_MS) {
                char ev[64];
                event_name(ev, sizeof ev, kinds[kind], "request_unanswered");
                node_log(n, GM_LOG_DEBUG, ev, json_pack("{s:I,s:i}", "announced", (json_int_t)s->announced, "asks",
                                                        (int)s->asks));
                s->requested = 0;
                ask_again(n, l, kind);
            }
            pump(l, kinds[kind], s);
        }
}

/* ---- polling the NA on the thread pool ---- */

typedef struct doc_poll {
    uv_work_t req;
    gm_node *node;
    int kind;
    char url[600];
    char if_none_match[300];
    int rc;
    int status;
    char *body;
    size_t len;
    char etag[256];
    gm_error err;
} doc_poll;

static void poll_work(uv_work_t *req)
{
    doc_poll *p = req->data;
    gm_http_resp resp = {0};
    const char *hdrs[1] = {p->if_none_match};
    gm_http_req r = {.method = "GET", .url = p->url, .headers = hdrs, .n_headers = p->if_none_match[0] ? 1 : 0,
                     .timeout_ms = DOC_HTTP_TIMEOUT_MS, .max_response = DOC_FILE_MAX};
    p->rc = gm_http_request(&r, &resp, &p->err);
    if (p->rc != 0)
        return;
    p->status = resp.status;
    if (resp.etag)
        snprintf(p->etag, sizeof p->etag, "%s", resp.etag);
    if (resp.status == 200) {
        p->body = resp.body;
        p->len = resp.len;
        resp.body = NULL;
    }
    gm_http_resp_free(&resp);
}

static void poll_done(uv_work_t *req, int status)
{
    doc_poll *p = req->data;
    gm_node *n = p->node;
    const node_doc_kind *k = kinds[p->kind];
    char ev[64];
    event_name(ev, sizeof ev, k, "poll_failed");
    n->pending_work--;
    n->docs[p->kind].poll_busy = 0;
    if (!n->stopping && status == 0) {
        if (p->rc != 0) {
            node_log(n, GM_LOG_DEBUG, ev, json_pack("{s:s}", "error", p->err.msg));
        } else if (p->status == 200 && p->body) {
            int rc = k->offer(n, p->body, p->len, "na", 0);
            if (rc == 0 || rc == GM_ECONFLICT)
                keep_etag(n, p->kind, p->etag);
        } else if (p->status != 304 && !(p->status == 404 && k->optional)) {
            node_log(n, GM_LOG_DEBUG, ev, json_pack("{s:s,s:i}", "url", p->url, "status", p->status));
        }
    }
    free(p->body);
    free(p);
}

static void poll_tick(gm_node *n, int kind, uint64_t now)
{
    node_doc_state *st = &n->docs[kind];
    long every = poll_every_kind(n, kind);
    if (every < 0 || !n->na_url[0] || st->poll_busy || n->stopping || now < st->next_poll_ms)
        return;
    st->next_poll_ms = now + (uint64_t)every;
    doc_poll *p = calloc(1, sizeof *p);
    if (!p)
        return;
    p->node = n;
    p->kind = kind;
    p->req.data = p;
    snprintf(p->url, sizeof p->url, "%s%s", n->na_url, kinds[kind]->path);
    if (st->etag[0])
        snprintf(p->if_none_match, sizeof p->if_none_match, "If-None-Match: %s", st->etag);
    if (uv_queue_work(n->loop, &p->req, poll_work, poll_done) != 0) {
        free(p);
        return;
    }
    st->poll_busy = 1;
    n->pending_work++;
}

/* ---- the CRL watch: one long poll held on the NA at a time ---- */

typedef struct doc_watch {
    uv_work_t req;
    gm_node *node;
    char url[700];
    long timeout_ms;
    int rc;
    int status;
    char *body;
    size_t len;
    gm_error err;
} doc_watch;

static void watch_work(uv_work_t *req)
{
    doc_watch *w = req->data;
    gm_http_resp resp = {0};
    gm_http_req r = {.method = "GET", .url = w->url, .timeout_ms = w->timeout_ms, .max_response = DOC_FILE_MAX,
                     .cancel = &w->node->http_cancel};
    w->rc = gm_http_request(&r, &resp, &w->err);
    if (w->rc != 0)
        return;
    w->status = resp.status;
    if (resp.status == 200) {
        w->body = resp.body;
        w->len = resp.len;
        resp.body = NULL;
    }
    gm_http_resp_free(&resp);
}

static void watch_tick(gm_node *n, uint64_t now);

static void watch_done(uv_work_t *req, int status)
{
    doc_watch *w = req->data;
    gm_node *n = w->node;
    node_doc_state *st = &n->docs[NODE_DOC_CRL];
    uint64_t now = node_now_ms(n);
    n->pending_work--;
    st->watch_busy = 0;
    st->next_watch_ms = now;
    if (!n->stopping && status == 0) {
        int rc = w->rc == 0 && w->status == 200 && w->body ? node_doc_crl.offer(n, w->body, w->len, "na_watch", 0)
                                                           : GM_ENET;
        if (w->rc == 0 && (w->status == 304 || rc == 0)) {
            st->watch_failures = 0; /* the wait ended, or a newer CRL came: watch again at once */
        } else if (rc == GM_ECONFLICT) {
            /* An answer at once with what we hold: this NA does not hold watches (the Python
             * reference's ignores the query); fall back to the poll's cadence. */
            st->next_watch_ms = now + (uint64_t)(poll_every_kind(n, NODE_DOC_CRL) > 0 ? poll_every_kind(n, NODE_DOC_CRL)
                                                                                      : DOC_CRL_FALLBACK_POLL_MS);
        } else {
            unsigned f = st->watch_failures < 4 ? st->watch_failures : 4;
            st->watch_failures++;
            uint64_t wait = 1000u << f;
            st->next_watch_ms = now + (wait < DOC_WATCH_RETRY_MAX_MS ? wait : DOC_WATCH_RETRY_MAX_MS);
            node_log(n, GM_LOG_DEBUG, "crl_watch_failed",
                     w->rc != 0 ? json_pack("{s:s}", "error", w->err.msg)
                                : json_pack("{s:s,s:i}", "url", w->url, "status", w->status));
        }
    }
    free(w->body);
    free(w);
    watch_tick(n, now); /* re-armed now, not at the next tick */
}

static void watch_tick(gm_node *n, uint64_t now)
{
    node_doc_state *st = &n->docs[NODE_DOC_CRL];
    long wait = watch_wait_s(n);
    if (wait <= 0 || !n->na_url[0] || st->watch_busy || n->stopping || now < st->next_watch_ms)
        return;
    doc_watch *w = calloc(1, sizeof *w);
    if (!w)
        return;
    w->node = n;
    w->req.data = w;
    w->timeout_ms = wait * 1000 + DOC_WATCH_SLACK_MS;
    uint64_t seq;
    if (node_doc_crl.held(n, &seq))
        snprintf(w->url, sizeof w->url, "%s/crl?after=%llu&wait=%ld", n->na_url, (unsigned long long)seq, wait);
    else
        snprintf(w->url, sizeof w->url, "%s/crl", n->na_url);
    if (uv_queue_work(n->loop, &w->req, watch_work, watch_done) != 0) {
        free(w);
        return;
    }
    st->watch_busy = 1;
    n->pending_work++;
}

void node_doc_stop(gm_node *n)
{
    n->http_cancel = 1;
}

void node_doc_tick(gm_node *n, uint64_t now)
{
    link_tick(n, now);
    watch_tick(n, now);
    for (int kind = 0; kind < NODE_DOCS; kind++)
        poll_tick(n, kind, now);
}

/* ---- gossip ---- */

void node_doc_on_link_up(gm_node *n, node_link *l)
{
    for (int kind = 0; kind < NODE_DOCS; kind++)
        announce(n, kinds[kind], l);
}

static void on_request(gm_node *n, node_link *l, int kind)
{
    const node_doc_kind *k = kinds[kind];
    uint64_t now = node_now_ms(n), seq;
    doc_link *s = link_state(l, kind);
    if (!s || !k->held(n, &seq) || (s->sent_ms && now - s->sent_ms < 1000))
        return;
    s->sent_ms = now;
    char *text = k->dump(n);
    size_t tlen = text ? strlen(text) : 0;
    if (!text || tlen == 0 || tlen > GM_WIRE_CRL_TOTAL_MAX) {
        free(text);
        return;
    }
    free(s->tx); /* a transfer still going on is restarted with the current document */
    s->tx = text;
    s->tx_len = tlen;
    s->tx_off = 0;
    s->tx_seq = seq;
    pump(l, k, s);
}

static void on_data(gm_node *n, node_link *l, int kind, const gm_wire_crl_chunk *c)
{
    const node_doc_kind *k = kinds[kind];
    gm_error err = {0};
    uint64_t seq;
    doc_link *s = link_state(l, kind);
    if (!s)
        return;
    /* Chunks of a document no newer than ours are not worth holding (the signed text decides
     * in the end; a sender lying about the sequence only hurts itself). */
    if (k->held(n, &seq) && c->sequence <= seq) {
        if (s->rx.active)
            node_crl_rx_reset(&s->rx, &n->crl_rx_bytes);
        s->requested = 0;
        return;
    }
    int rc = node_crl_rx_feed(&s->rx, c, node_now_ms(n), &n->crl_rx_bytes, &err);
    if (rc == 0)
        return;
    s->requested = 0;
    if (rc < 0) {
        k->refused(n, "peer", err.msg);
        return;
    }
    /* Take the text out first: installing may close this very link. */
    uint8_t *text = s->rx.buf;
    size_t tlen = s->rx.total;
    s->rx.buf = NULL;
    node_crl_rx_reset(&s->rx, &n->crl_rx_bytes);
    k->offer(n, (const char *)text, tlen, "peer", 0);
    free(text);
}

void node_doc_on_message(gm_node *n, node_link *l, uint8_t type, const uint8_t *msg, size_t len)
{
    gm_error err = {0};
    char why[64];
    for (int kind = 0; kind < NODE_DOCS; kind++) {
        const node_doc_kind *k = kinds[kind];
        snprintf(why, sizeof why, "bad %s", gm_wire_type_name(type));
        if (type == k->t_announce) {
            uint64_t seq;
            if (gm_wire_doc_announce_decode(type, msg, len, &seq, &err) != 0) {
                node_link_close(l, GM_WIRE_CLOSE_PROTOCOL, why);
                return;
            }
            doc_link *s = link_state(l, kind);
            if (s && (!s->has_announced || seq > s->announced)) {
                s->announced = seq;
                s->has_announced = 1;
                s->asks = 0; /* something newer: the bound of asks starts again */
            }
            if (worth_asking(n, k, s))
                ask(n, l, k, s);
            return;
        }
        if (type == k->t_request) {
            if (gm_wire_doc_request_decode(type, msg, len, &err) != 0)
                node_link_close(l, GM_WIRE_CLOSE_PROTOCOL, why);
            else
                on_request(n, l, kind);
            return;
        }
        if (type == k->t_data) {
            gm_wire_crl_chunk c;
            if (gm_wire_doc_data_decode(type, msg, len, &c, &err) != 0)
                node_link_close(l, GM_WIRE_CLOSE_PROTOCOL, why);
            else
                on_data(n, l, kind, &c);
            return;
        }
    }
    node_link_close(l, GM_WIRE_CLOSE_PROTOCOL, "unexpected message type");
}
