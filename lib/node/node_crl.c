/* The node's current CRL: loaded from D/crl.json, kept current by node_docsync.c (NA poll
 * with ETag, gossip with CRL_ANNOUNCE / CRL_REQUEST / CRL_DATA). A CRL is accepted only when
 * the NA signature verifies and the sequence goes up; then sessions of revoked peers are
 * closed, their routes withdrawn and their handshakes refused. Also the chunk reassembly
 * every gossiped document uses.
 * A CRL past its next_update is stale (the NA re-signs on a schedule, so a live NA never lets
 * that happen): a warning, the crl_stale gauge and "crl_stale" in status; with
 * --crl-stale refuse, new links are held to CRL gossip until a fresh CRL arrives. */
#include <stdlib.h>
#include <string.h>

#include "gm/util.h"
#include "node_internal.h"
#include "core_internal.h"

#define CRL_FILE_MAX (16u << 20)

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
    if (current && c.sequence <= current->sequence) {
        rc = gm_error_set(err, GM_ECONFLICT, "CRL sequence %llu is not newer than the %llu we hold",
                          (unsigned long long)c.sequence, (unsigned long long)current->sequence);
        gm_crl_free(&c);
        return rc;
    }
    *out = c;
    return 0;
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

/* Make c the current CRL. */
static void store(gm_node *n, gm_crl *c, const char *source)
{
    if (n->have_crl)
        gm_crl_free(&n->crl);
    n->crl = *c;
    n->have_crl = 1;
    n->m.crl_updates++;
    node_log(n, GM_LOG_INFO, "crl_updated", json_pack("{s:I,s:s,s:I}", "sequence", (json_int_t)n->crl.sequence, "source",
                                                       source, "revoked", (json_int_t)n->crl.n_revoked));
}

/* Write the current CRL to D/crl.json (an fsync: done after enforcing, not before; a crash in
 * between loses nothing, since a node fetches the NA's CRL before it judges anything at start). */
static void persist(gm_node *n)
{
    gm_error err = {0};
    char path[4200];
    char *text = gm_crl_dump(&n->crl, 0);
    if (text && gm_path_join(path, sizeof path, n->dir, "crl.json", &err) == 0 &&
        gm_file_write_atomic(path, text, strlen(text), 0644, &err) != 0)
        node_log(n, GM_LOG_WARN, "crl_persist_failed", json_pack("{s:s}", "error", err.msg));
    free(text);
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

void node_crl_tick(gm_node *n, uint64_t now)
{
    check_stale(n);
    held_links_tick(n, now);
}

static void refused(gm_node *n, const char *source, const char *why)
{
    n->m.crl_refused++;
    node_log(n, GM_LOG_WARN, "crl_refused", json_pack("{s:s,s:s}", "source", source, "error", why));
}

/* gm_node_crl_accept under the NA key of every trusted genesis block (an NA key rotation). */
static int crl_accept(gm_node *n, const gm_crl *current, const char *text, size_t len, gm_crl *out, gm_error *err)
{
    const gm_genesis *gs[3];
    size_t k = node_genesis_trusted(n, gm_time_now(), gs);
    int rc = GM_ESIG;
    for (size_t i = 0; i < k && rc == GM_ESIG; i++)
        rc = gm_node_crl_accept(current, gs[i]->na_pk, text, len, out, err);
    return rc;
}

/* Offer text as a newer CRL; 0 when installed. While starting, it is only stored: there
 * are no links yet and the caller judges our own certificate next. */
static int offer(gm_node *n, const char *text, size_t len, const char *source, int starting)
{
    gm_error err = {0};
    gm_crl c;
    int rc = crl_accept(n, n->have_crl ? &n->crl : NULL, text, len, &c, &err);
    if (rc == GM_ECONFLICT)
        return rc;
    if (rc != 0) {
        refused(n, source, err.msg);
        return rc;
    }
    store(n, &c, source);
    if (!starting) {
        node_doc_announce(n, NODE_DOC_CRL);
        apply(n);
        check_stale(n);
        held_links_tick(n, node_now_ms(n));
    }
    persist(n);
    return 0;
}

static int held(gm_node *n, uint64_t *seq)
{
    *seq = n->have_crl ? n->crl.sequence : 0;
    return n->have_crl;
}

static char *dump(gm_node *n)
{
    return gm_crl_dump(&n->crl, 0);
}

const node_doc_kind node_doc_crl = {.event = "crl",
                                    .path = "/crl",
                                    .t_announce = GM_WIRE_CRL_ANNOUNCE,
                                    .t_request = GM_WIRE_CRL_REQUEST,
                                    .t_data = GM_WIRE_CRL_DATA,
                                    .held = held,
                                    .dump = dump,
                                    .offer = offer,
                                    .refused = refused};

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
    rc = crl_accept(n, NULL, text, len, &c, &e2);
    free(text);
    if (rc != 0) {
        node_log(n, GM_LOG_WARN, "crl_ignored", json_pack("{s:s,s:s}", "path", path, "error", e2.msg));
        return 0;
    }
    n->crl = c;
    n->have_crl = 1;
    return 0;
}

/* Before judging our own certificate: the cached D/crl.json may be older than the NA's CRL,
 * and a revoked node must refuse to start whether or not it heard of the revocation. */
void node_crl_fetch_startup(gm_node *n)
{
    node_doc_fetch_startup(n, NODE_DOC_CRL);
}

void node_crl_poll_soon(gm_node *n)
{
    node_doc_poll_soon(n, NODE_DOC_CRL);
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
