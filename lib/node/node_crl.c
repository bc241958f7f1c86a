/* The node's current CRL: loaded from D/crl.json, polled from the NA with ETag on the
 * thread pool, gossiped between peers (CRL_ANNOUNCE / CRL_REQUEST / CRL_DATA). A CRL is
 * accepted only when the NA signature verifies and the sequence goes up; then sessions of
 * revoked peers are closed, their routes withdrawn and their handshakes refused.
 * A CRL past its next_update is stale (the NA re-signs on a schedule, so a live NA never lets
 * that happen): a warning, the crl_stale gauge and "crl_stale" in status; with
 * --crl-stale refuse, new links are held to CRL gossip until a fresh CRL arrives. */
#include <stdlib.h>
#include <string.h>

#include "gm/http_client.h"
#include "gm/util.h"
#include "node_internal.h"

#define CRL_FILE_MAX (16u << 20)
#define CRL_HTTP_TIMEOUT_MS 5000
#define CRL_STARTUP_TIMEOUT_MS 3000
#define CRL_DEFAULT_POLL_MS 2000

int gm_node_crl_accept(const gm_crl *current, const uint8_t na_pk[32], const char *text, size_t len,
                       gm_crl *out, gm_error *err)
{
    gm_crl c;
    memset(out, 0, sizeof *out);
    int rc = gm_crl_parse(text, len, &c, err);
    if (rc != 0)
        return rc;
    if ((rc = gm_crl_verify(&c, na_pk, err)) != 0) {
        gm_crl_free(&c);
        return gm_error_prefix(err, "CRL refused");
    }
    if (current && !gm_crl_is_newer(c.sequence, 1, current->sequence)) {
        rc = gm_error_set(err, GM_ECONFLICT, "CRL sequence %llu is not newer than the %llu we hold",
                          (unsigned long long)c.sequence, (unsigned long long)current->sequence);
        gm_crl_free(&c);
        return rc;
    }
    *out = c;
    return 0;
}

static void announce(gm_node *n, node_link *l)
{
    uint8_t msg[16];
    size_t len;
    if (n->have_crl && gm_wire_crl_announce_encode(n->crl.sequence, msg, sizeof msg, &len, NULL) == 0)
        node_link_send(l, msg, len);
}

/* Close links of peers the CRL now revokes, withdraw their routes, forget their sessions.
 * When it revokes us, the node stops (as it would refuse to start). */
static void apply(gm_node *n)
{
    const char *reason = NULL;
    if (gm_crl_contains(&n->crl, n->cert.cert_id, &reason)) {
        node_stop_revoked(n, reason);
        return;
    }
    for (node_link *l = n->links; l; l = l->next) {
        if (l->state != LINK_UP || !gm_crl_contains(&n->crl, l->peer_cert.cert_id, &reason))
            continue;
        n->m.revoked_links_closed++;
        node_log(n, GM_LOG_WARN, "peer_revoked", json_pack("{s:s,s:s,s:s}", "peer", l->peer_cert.node_pk_b64, "cert_id",
                                                            l->peer_cert.cert_id, "reason", reason ? reason : ""));
        node_link_close(l, GM_WIRE_CLOSE_REVOKED, "revoked");
    }
    node_routing_revoked(n);
    node_e2e_revoked(n);
    node_cert_purge_revoked(n);
}

/* Make c the current CRL and write it to D/crl.json. */
static void store(gm_node *n, gm_crl *c, const char *source)
{
    gm_error err = {0};
    char path[4200];
    if (n->have_crl)
        gm_crl_free(&n->crl);
    n->crl = *c;
    n->have_crl = 1;
    n->m.crl_updates++;
    char *text = gm_crl_dump(&n->crl, 0);
    if (text && gm_path_join(path, sizeof path, n->dir, "crl.json", &err) == 0 &&
        gm_file_write_atomic(path, text, strlen(text), 0644, &err) != 0)
        node_log(n, GM_LOG_WARN, "crl_persist_failed", json_pack("{s:s}", "error", err.msg));
    free(text);
    node_log(n, GM_LOG_INFO, "crl_updated", json_pack("{s:I,s:s,s:I}", "sequence", (json_int_t)n->crl.sequence, "source",
                                                       source, "revoked", (json_int_t)n->crl.n_revoked));
}

/* Re-evaluate staleness against the wall clock; log transitions. */
static void check_stale(gm_node *n)
{
    gm_time now = gm_time_now();
    int stale = n->have_crl && gm_time_cmp(&now, &n->crl.next_update) > 0;
    if (stale == n->crl_stale)
        return;
    n->crl_stale = stale;
    n->m.crl_stale = (uint64_t)stale;
    char nu[GM_TIME_STRLEN];
    gm_time_format(&n->crl.next_update, nu);
    if (stale)
        node_log(n, GM_LOG_WARN, "crl_stale",
                 json_pack("{s:I,s:s,s:s}", "sequence", (json_int_t)n->crl.sequence, "next_update", nu, "mode",
                           n->cfg.crl_stale_refuse ? "refuse" : "warn"));
    else
        node_log(n, GM_LOG_INFO, "crl_fresh", json_pack("{s:I,s:s}", "sequence", (json_int_t)n->crl.sequence, "next_update", nu));
}

int node_crl_hold_link(gm_node *n, node_link *l)
{
    check_stale(n);
    if (!n->crl_stale || !n->cfg.crl_stale_refuse)
        return 0;
    l->crl_hold = 1;
    l->crl_hold_until_ms = node_now_ms(n) + NODE_CRL_STALE_HOLD_MS;
    node_log(n, GM_LOG_INFO, "link_held_crl_stale", json_pack("{s:s}", "peer", l->peer_cert.node_pk_b64));
    return 1;
}

/* Links held for a stale CRL: released once the CRL is fresh, refused after the hold. */
static void held_links_tick(gm_node *n, uint64_t now)
{
    for (node_link *l = n->links; l; l = l->next) {
        if (!l->crl_hold || l->state != LINK_UP)
            continue;
        if (!n->crl_stale) {
            l->crl_hold = 0;
            node_routing_link_up(n, l);
        } else if (now >= l->crl_hold_until_ms) {
            n->m.crl_stale_refused++;
            node_log(n, GM_LOG_WARN, "link_refused_crl_stale", json_pack("{s:s}", "peer", l->peer_cert.node_pk_b64));
            node_link_close(l, GM_WIRE_CLOSE_NORMAL, "our CRL is stale (past next_update): no new links until a fresher one arrives");
        }
    }
}

static void install(gm_node *n, gm_crl *c, const char *source)
{
    store(n, c, source);
    for (node_link *l = n->links; l; l = l->next)
        if (l->state == LINK_UP)
            announce(n, l);
    apply(n);
    check_stale(n);
    held_links_tick(n, node_now_ms(n));
}

/* Offer text as a newer CRL; 0 when installed. */
static int offer(gm_node *n, const char *text, size_t len, const char *source)
{
    gm_error err = {0};
    gm_crl c;
    int rc = gm_node_crl_accept(n->have_crl ? &n->crl : NULL, n->genesis.na_pk, text, len, &c, &err);
    if (rc == GM_ECONFLICT)
        return rc;
    if (rc != 0) {
        n->m.crl_refused++;
        node_log(n, GM_LOG_WARN, "crl_refused", json_pack("{s:s,s:s}", "source", source, "error", err.msg));
        return rc;
    }
    install(n, &c, source);
    return 0;
}

int node_crl_load(gm_node *n, gm_error *err)
{
    char path[4200], *text;
    size_t len;
    int rc;
    if ((rc = gm_path_join(path, sizeof path, n->dir, "crl.json", err)) != 0)
        return rc;
    if (!gm_file_exists(path))
        return 0;
    if ((rc = gm_file_read(path, CRL_FILE_MAX, &text, &len, err)) != 0)
        return rc;
    gm_crl c;
    gm_error e2 = {0};
    rc = gm_node_crl_accept(NULL, n->genesis.na_pk, text, len, &c, &e2);
    free(text);
    if (rc != 0) {
        node_log(n, GM_LOG_WARN, "crl_ignored", json_pack("{s:s,s:s}", "path", path, "error", e2.msg));
        return 0;
    }
    n->crl = c;
    n->have_crl = 1;
    return 0;
}

static long poll_every(gm_node *n)
{
    return n->cfg.crl_poll_ms == 0 ? CRL_DEFAULT_POLL_MS : n->cfg.crl_poll_ms;
}

/* Before judging our own certificate: the cached D/crl.json may be older than the NA's CRL,
 * and a revoked node must refuse to start whether or not it heard of the revocation. */
void node_crl_fetch_startup(gm_node *n)
{
    char url[600];
    gm_error err = {0};
    gm_http_resp resp = {0};
    if (poll_every(n) < 0 || !n->na_url[0])
        return;
    snprintf(url, sizeof url, "%s/crl", n->na_url);
    gm_http_req r = {.method = "GET", .url = url, .timeout_ms = CRL_STARTUP_TIMEOUT_MS, .max_response = CRL_FILE_MAX};
    int rc = gm_http_request(&r, &resp, &err);
    if (rc == 0 && resp.status != 200)
        rc = gm_error_set(&err, GM_ENET, "%s answered HTTP %d", url, resp.status);
    if (rc != 0) {
        node_log(n, GM_LOG_WARN, "crl_fetch_failed",
                 json_pack("{s:s,s:s,s:o}", "error", err.msg, "using", n->have_crl ? "cached CRL" : "no CRL",
                           "crl_sequence", n->have_crl ? json_integer((json_int_t)n->crl.sequence) : json_null()));
        gm_http_resp_free(&resp);
        return;
    }
    gm_crl c;
    rc = gm_node_crl_accept(n->have_crl ? &n->crl : NULL, n->genesis.na_pk, resp.body, resp.len, &c, &err);
    if (rc == 0) {
        store(n, &c, "na");
    } else if (rc != GM_ECONFLICT) {
        n->m.crl_refused++;
        node_log(n, GM_LOG_WARN, "crl_refused", json_pack("{s:s,s:s}", "source", "na", "error", err.msg));
    }
    if ((rc == 0 || rc == GM_ECONFLICT) && resp.etag && strlen(resp.etag) < sizeof n->crl_etag)
        memcpy(n->crl_etag, resp.etag, strlen(resp.etag) + 1);
    gm_http_resp_free(&resp);
}

void node_crl_poll_soon(gm_node *n)
{
    n->next_crl_poll_ms = 0;
}

/* ---- chunked transfer ---- */

void node_crl_rx_reset(node_crl_rx *rx, size_t *budget)
{
    if (budget)
        *budget -= *budget < rx->have ? *budget : rx->have;
    free(rx->buf);
    memset(rx, 0, sizeof *rx);
}

int node_crl_rx_feed(node_crl_rx *rx, const gm_wire_crl_chunk *c, uint64_t now, size_t *budget, gm_error *err)
{
    if (c->len == 0 || c->total_len == 0 || c->total_len > GM_WIRE_CRL_TOTAL_MAX ||
        (uint64_t)c->offset + c->len > c->total_len) {
        node_crl_rx_reset(rx, budget);
        return gm_error_set(err, GM_EPROTO, "CRL chunk out of bounds");
    }
    if (c->offset == 0) {
        node_crl_rx_reset(rx, budget); /* a new transfer replaces the one in flight */
        rx->active = 1;
        rx->sequence = c->sequence;
        rx->total = c->total_len;
        rx->started_ms = now;
    } else if (!rx->active) {
        return gm_error_set(err, GM_EPROTO, "CRL chunk at offset %lu without its start", (unsigned long)c->offset);
    } else if (now - rx->started_ms > NODE_CRL_RX_TIMEOUT_MS) {
        node_crl_rx_reset(rx, budget);
        return gm_error_set(err, GM_ETIMEOUT, "CRL transfer took longer than %d ms", NODE_CRL_RX_TIMEOUT_MS);
    } else if (c->sequence != rx->sequence || c->total_len != rx->total || c->offset != rx->have) {
        uint32_t have = rx->have;
        node_crl_rx_reset(rx, budget);
        return gm_error_set(err, GM_EPROTO, "CRL chunk at offset %lu does not continue the transfer (expected %lu)",
                            (unsigned long)c->offset, (unsigned long)have);
    }
    if (budget && *budget + c->len > NODE_CRL_RX_BUDGET) {
        node_crl_rx_reset(rx, budget);
        return gm_error_set(err, GM_ETOOBIG, "CRL transfers in flight exceed %u bytes", NODE_CRL_RX_BUDGET);
    }
    uint8_t *nb = realloc(rx->buf, (size_t)rx->have + c->len);
    if (!nb) {
        node_crl_rx_reset(rx, budget);
        return gm_error_set(err, GM_ENOMEM, "out of memory reassembling a CRL");
    }
    rx->buf = nb;
    memcpy(rx->buf + rx->have, c->data, c->len);
    rx->have += (uint32_t)c->len;
    if (budget)
        *budget += c->len;
    return rx->have == rx->total ? 1 : 0;
}

typedef struct crl_link {
    node_crl_rx rx;
    char *tx;          /* CRL text being sent, NULL when idle */
    size_t tx_len, tx_off;
    uint64_t tx_seq;
} crl_link;

static crl_link *link_state(node_link *l)
{
    if (!l->crl_state)
        l->crl_state = calloc(1, sizeof(crl_link));
    return l->crl_state;
}

void node_crl_link_free(node_link *l)
{
    crl_link *s = l->crl_state;
    if (!s)
        return;
    node_crl_rx_reset(&s->rx, &l->node->crl_rx_bytes);
    free(s->tx);
    free(s);
    l->crl_state = NULL;
}

/* Send the next chunks of the CRL in flight to l, in order, while its send queue is short. */
static void pump(node_link *l)
{
    crl_link *s = l->crl_state;
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
        if (gm_wire_crl_data_encode(&c, buf, 1 + GM_WIRE_CRL_DATA_HEADER + GM_WIRE_CRL_CHUNK_MAX, &olen, &err) != 0 ||
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

static void crl_link_tick(gm_node *n, uint64_t now)
{
    for (node_link *l = n->links; l; l = l->next) {
        crl_link *s = l->crl_state;
        if (!s)
            continue;
        if (s->rx.active && now - s->rx.started_ms > NODE_CRL_RX_TIMEOUT_MS) {
            node_crl_rx_reset(&s->rx, &n->crl_rx_bytes);
            l->crl_requested = 0;
        }
        pump(l);
    }
}

/* ---- polling the NA on the thread pool ---- */

typedef struct crl_poll {
    uv_work_t req;
    gm_node *node;
    char url[600];
    char if_none_match[300];
    int rc;
    int status;
    char *body;
    size_t len;
    char etag[256];
    gm_error err;
} crl_poll;

static void poll_work(uv_work_t *req)
{
    crl_poll *p = req->data;
    gm_http_resp resp = {0};
    const char *hdrs[1] = {p->if_none_match};
    gm_http_req r = {.method = "GET", .url = p->url, .headers = hdrs, .n_headers = p->if_none_match[0] ? 1 : 0,
                     .timeout_ms = CRL_HTTP_TIMEOUT_MS, .max_response = CRL_FILE_MAX};
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
    crl_poll *p = req->data;
    gm_node *n = p->node;
    n->pending_work--;
    n->crl_poll_busy = 0;
    if (!n->stopping && status == 0) {
        if (p->rc != 0) {
            node_log(n, GM_LOG_DEBUG, "crl_poll_failed", json_pack("{s:s}", "error", p->err.msg));
        } else if (p->status == 200 && p->body) {
            int rc = offer(n, p->body, p->len, "na");
            if ((rc == 0 || rc == GM_ECONFLICT) && p->etag[0] && strlen(p->etag) < sizeof n->crl_etag)
                memcpy(n->crl_etag, p->etag, strlen(p->etag) + 1);
        } else if (p->status != 304) {
            node_log(n, GM_LOG_DEBUG, "crl_poll_failed", json_pack("{s:s,s:i}", "url", p->url, "status", p->status));
        }
    }
    free(p->body);
    free(p);
}

void node_crl_tick(gm_node *n, uint64_t now)
{
    crl_link_tick(n, now);
    check_stale(n);
    held_links_tick(n, now);
    long every = poll_every(n);
    if (every < 0 || !n->na_url[0] || n->crl_poll_busy || n->stopping || now < n->next_crl_poll_ms)
        return;
    n->next_crl_poll_ms = now + (uint64_t)every;
    crl_poll *p = calloc(1, sizeof *p);
    if (!p)
        return;
    p->node = n;
    p->req.data = p;
    snprintf(p->url, sizeof p->url, "%s/crl", n->na_url);
    if (n->crl_etag[0])
        snprintf(p->if_none_match, sizeof p->if_none_match, "If-None-Match: %s", n->crl_etag);
    if (uv_queue_work(n->loop, &p->req, poll_work, poll_done) != 0) {
        free(p);
        return;
    }
    n->crl_poll_busy = 1;
    n->pending_work++;
}

/* ---- gossip ---- */

void node_crl_on_link_up(gm_node *n, node_link *l)
{
    announce(n, l);
}

void node_crl_on_message(gm_node *n, node_link *l, uint8_t type, const uint8_t *msg, size_t len)
{
    gm_error err = {0};
    uint8_t out[32];
    size_t olen;
    if (type == GM_WIRE_CRL_ANNOUNCE) {
        uint64_t seq;
        if (gm_wire_crl_announce_decode(msg, len, &seq, &err) != 0) {
            node_link_close(l, GM_WIRE_CLOSE_PROTOCOL, "bad CRL_ANNOUNCE");
            return;
        }
        if (gm_crl_is_newer(seq, n->have_crl, n->crl.sequence) && !l->crl_requested &&
            gm_wire_crl_request_encode(out, sizeof out, &olen, &err) == 0) {
            l->crl_requested = 1;
            node_link_send(l, out, olen);
        }
    } else if (type == GM_WIRE_CRL_REQUEST) {
        if (gm_wire_crl_request_decode(msg, len, &err) != 0) {
            node_link_close(l, GM_WIRE_CLOSE_PROTOCOL, "bad CRL_REQUEST");
            return;
        }
        uint64_t now = node_now_ms(n);
        if (!n->have_crl || (l->crl_sent_ms && now - l->crl_sent_ms < 1000))
            return;
        l->crl_sent_ms = now;
        crl_link *s = link_state(l);
        char *text = gm_crl_dump(&n->crl, 0);
        size_t tlen = text ? strlen(text) : 0;
        if (!s || !text || tlen == 0 || tlen > GM_WIRE_CRL_TOTAL_MAX) {
            free(text);
            return;
        }
        free(s->tx); /* a transfer still going on is restarted with the current CRL */
        s->tx = text;
        s->tx_len = tlen;
        s->tx_off = 0;
        s->tx_seq = n->crl.sequence;
        pump(l);
    } else if (type == GM_WIRE_CRL_DATA) {
        gm_wire_crl_chunk c;
        if (gm_wire_crl_data_decode(msg, len, &c, &err) != 0) {
            node_link_close(l, GM_WIRE_CLOSE_PROTOCOL, "bad CRL_DATA");
            return;
        }
        crl_link *s = link_state(l);
        if (!s)
            return;
        /* Chunks of a CRL no newer than ours are not worth holding (the signed text decides
         * in the end; a sender lying about the sequence only hurts itself). */
        if (!gm_crl_is_newer(c.sequence, n->have_crl, n->crl.sequence)) {
            if (s->rx.active)
                node_crl_rx_reset(&s->rx, &n->crl_rx_bytes);
            l->crl_requested = 0;
            return;
        }
        int rc = node_crl_rx_feed(&s->rx, &c, node_now_ms(n), &n->crl_rx_bytes, &err);
        if (rc == 0)
            return;
        l->crl_requested = 0;
        if (rc < 0) {
            n->m.crl_refused++;
            node_log(n, GM_LOG_WARN, "crl_refused", json_pack("{s:s,s:s}", "source", "peer", "error", err.msg));
            return;
        }
        /* Take the text out first: installing may close this very link. */
        uint8_t *text = s->rx.buf;
        size_t tlen = s->rx.total;
        s->rx.buf = NULL;
        node_crl_rx_reset(&s->rx, &n->crl_rx_bytes);
        offer(n, (const char *)text, tlen, "peer");
        free(text);
    }
}
