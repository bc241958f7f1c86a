/* Peer links as objects: creation, lookup, the moment a link counts as up (one link per
 * peer), heartbeats and deadlines, orderly and hard close, and freeing. How a link is
 * opened is node_connect.c, the handshake node_handshake.c, bytes on the wire
 * node_transport.c and what a message means node_dispatch.c. */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "gm/util.h"
#include "node_internal.h"
#include "node_link.h"
#include "core_internal.h"

json_t *node_link_fields(node_link *l)
{
    json_t *o = json_pack("{s:s,s:s}", "addr", l->addr, "direction", l->outbound ? "outbound" : "inbound");
    if (l->has_cert) {
        json_object_set_new(o, "peer", json_string(l->peer_cert.node_pk_b64));
        json_object_set_new(o, "cert_id", json_string(l->peer_cert.cert_id));
    }
    return o;
}

node_link *node_link_by_pk(gm_node *n, const uint8_t pk[GM_PK_LEN])
{
    for (node_link *l = n->links; l; l = l->next)
        if (l->state == LINK_UP && memcmp(l->peer_pk, pk, GM_PK_LEN) == 0)
            return l;
    return NULL;
}

/* ---- creation ---- */

node_link *node_link_new(gm_node *n, int outbound)
{
    node_link *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->node = n;
    l->id = ++n->net.next_link_id;
    l->outbound = outbound;
    if (uv_tcp_init(n->loop, &l->tcp) != 0) {
        free(l);
        return NULL;
    }
    l->tcp.data = l;
    uv_tcp_nodelay(&l->tcp, 1);
    l->next = n->links;
    n->links = l;
    n->net.n_links++;
    l->state = LINK_CONNECTING;
    l->created_ms = node_now_ms(n);
    l->deadline_ms = l->created_ms + NODE_HS_TIMEOUT_MS;
    l->counted_hs = 1;
    n->net.n_handshakes++;
    return l;
}

/* ---- closing ---- */

static void on_closed(uv_handle_t *h)
{
    node_link *l = h->data;
    gm_node *n = l->node;
    for (node_link **pp = &n->links; *pp; pp = &(*pp)->next)
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    n->net.n_links--;
    node_connect_link_freed(l);
    gm_wire_reader_free(l->reader);
    gm_noise_handshake_free(l->hs);
    gm_noise_cipher_wipe(&l->tx);
    gm_noise_cipher_wipe(&l->rx);
    if (l->has_cert)
        gm_cert_free(&l->peer_cert);
    if (l->held) {
        sodium_memzero(l->held, l->held_len);
        free(l->held);
    }
    free(l->rest);
    node_doc_link_free(l);
    free(l);
}

/* Leave the current state: undo what it counted, tell routing the peer is gone. */
static void link_leave(node_link *l)
{
    gm_node *n = l->node;
    if (l->counted_hs) {
        n->net.n_handshakes--;
        l->counted_hs = 0;
    }
    if (l->state == LINK_UP) {
        l->state = LINK_CLOSING;
        node_routing_link_down(n, l);
        node_log(n, GM_LOG_INFO, "peer_down", node_link_fields(l));
    }
    l->state = LINK_CLOSING;
}

void node_link_hard_close(node_link *l)
{
    if (l->closing_handle)
        return;
    link_leave(l);
    node_link_unpause(l);
    node_link_set_congested(l, 0);
    l->closing_handle = 1;
    /* What the socket takes now still goes out (a CLOSE just sent), the rest is cancelled. */
    node_link_flush(l);
    uv_read_stop((uv_stream_t *)&l->tcp);
    uv_close((uv_handle_t *)&l->tcp, on_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    node_link *l = req->data;
    free(req);
    if (status != UV_ECANCELED)
        node_link_hard_close(l);
}

void node_link_close(node_link *l, uint8_t reason, const char *text)
{
    gm_node *n = l->node;
    if (l->closing_handle || l->state == LINK_CLOSING)
        return;
    if (!l->keys) {
        node_link_hard_close(l);
        return;
    }
    uint8_t msg[GM_WIRE_CLOSE_TEXT_MAX + 8];
    size_t len;
    if (gm_wire_close_encode(reason, text, msg, sizeof msg, &len, NULL) == 0)
        node_link_send_raw(l, msg, len, 1);
    if (l->closing_handle)
        return;
    if (l->state == LINK_UP) {
        json_t *f = node_link_fields(l);
        json_object_set_new(f, "reason", json_string(gm_wire_close_reason_name(reason)));
        json_object_set_new(f, "text", json_string(text ? text : ""));
        node_log(n, GM_LOG_INFO, "link_close", f);
    }
    link_leave(l);
    node_link_unpause(l);
    l->deadline_ms = node_now_ms(n) + NODE_CLOSE_GRACE_MS;
    if (node_link_flush(l) != 0)
        return;
    uv_shutdown_t *req = malloc(sizeof *req);
    if (!req || (req->data = l, uv_shutdown(req, (uv_stream_t *)&l->tcp, on_shutdown)) != 0) {
        free(req);
        node_link_hard_close(l);
    }
}

/* ---- up ---- */

void node_link_ping(node_link *l)
{
    uint8_t out[16];
    size_t olen;
    randombytes_buf(&l->ping_nonce, sizeof l->ping_nonce);
    if (l->ping_nonce == 0)
        l->ping_nonce = 1;
    if (gm_wire_ping_encode(l->ping_nonce, out, sizeof out, &olen, NULL) == 0)
        node_link_send(l, out, olen);
}

/* 1 (and the link is closed) when the peer is this node itself. */
int node_link_is_self(node_link *l)
{
    gm_node *n = l->node;
    if (memcmp(l->peer_pk, n->key.pk, GM_PK_LEN) != 0)
        return 0;
    node_log(n, GM_LOG_INFO, "link_self", node_link_fields(l));
    node_connect_link_self(l);
    node_link_hard_close(l);
    return 1;
}

static const uint8_t *initiator_of(gm_node *n, node_link *l)
{
    return l->outbound ? n->key.pk : l->peer_pk;
}

/* Both sides accepted each other: the responder after judging message 3, the initiator on
 * the responder's first transport message. Only now the peer enters peer and route state. */
void node_link_up(node_link *l)
{
    gm_node *n = l->node;
    if (node_link_is_self(l))
        return;
    /* One link per peer: keep the one opened by the smaller key (both ends agree),
     * or the older one when the same side opened both. */
    node_link *old = node_link_by_pk(n, l->peer_pk);
    if (old) {
        n->m.links_duplicate++;
        const uint8_t *io = initiator_of(n, old), *in = initiator_of(n, l);
        int keep_new = memcmp(io, in, GM_PK_LEN) != 0 && memcmp(in, io, GM_PK_LEN) < 0;
        if (!keep_new) {
            node_log(n, GM_LOG_DEBUG, "link_duplicate", node_link_fields(l));
            node_link_close(l, GM_WIRE_CLOSE_NORMAL, "duplicate link");
            return;
        }
        node_link_close(old, GM_WIRE_CLOSE_NORMAL, "duplicate link");
    }
    node_connect_link_up(l);
    if (l->counted_hs) {
        n->net.n_handshakes--;
        l->counted_hs = 0;
    }
    l->state = LINK_UP;
    l->since_unix = gm_time_now().unix_s;
    l->next_ping_ms = node_now_ms(n) + NODE_PING_MS;
    l->pings_missed = 0;
    l->ping_nonce = 0;
    n->m.handshakes_ok++;
    node_cert_store_copy(n, &l->peer_cert);
    json_t *f = node_link_fields(l);
    json_object_set_new(f, "roles", json_deep_copy(json_object_get(l->peer_cert.doc, "roles")));
    node_log(n, GM_LOG_INFO, "peer_up", f);
    /* The responder's first transport message tells the initiator it was accepted. */
    if (!l->outbound)
        node_link_ping(l);
    if (l->state == LINK_UP)
        node_doc_on_link_up(n, l);
    if (l->state == LINK_UP && !node_crl_hold_link(n, l))
        node_routing_link_up(n, l);
}

/* ---- housekeeping ---- */

static void link_tick(node_link *l, uint64_t now)
{
    gm_node *n = l->node;
    if (l->closing_handle)
        return;
    if (l->state == LINK_CONNECTING || l->state == LINK_HANDSHAKE || l->state == LINK_CONFIRM) {
        if (!l->outbound && !l->got_msg1 && now >= l->created_ms + NODE_HS_MSG1_MS)
            node_hs_fail(l, "timeout", "no handshake message in time");
        else if (now >= l->deadline_ms)
            node_hs_fail(l, "timeout", "handshake not finished in time");
        return;
    }
    if (l->state == LINK_CLOSING) {
        if (now >= l->deadline_ms)
            node_link_hard_close(l);
        return;
    }
    if (now < l->next_ping_ms)
        return;
    l->next_ping_ms = now + NODE_PING_MS;
    if (l->ping_nonce != 0 && ++l->pings_missed >= NODE_PING_MISSES) {
        n->m.links_dropped_ping++;
        node_link_close(l, GM_WIRE_CLOSE_TIMEOUT, "no answer to 3 heartbeats");
        return;
    }
    gm_time t_now = gm_time_now(), hi = gm_time_add(l->peer_cert.expires_at, GM_CLOCK_SKEW_S);
    if (gm_time_cmp(&t_now, &hi) > 0) {
        node_link_close(l, GM_WIRE_CLOSE_BAD_CERT, "certificate expired");
        return;
    }
    node_link_ping(l);
}

void node_peer_tick(gm_node *n, uint64_t now)
{
    for (node_link *l = n->links; l; l = l->next)
        link_tick(l, now);
    /* A revoked node has nobody left to talk to. */
    if (n->stopping || n->self_revoked)
        return;
    node_connect_tick(n, now);
}

void node_peer_shutdown(gm_node *n, uint8_t reason, const char *text)
{
    node_connect_stop(n);
    for (node_link *l = n->links; l; l = l->next) {
        if (l->state == LINK_UP)
            node_link_close(l, reason, text);
        else if (l->state != LINK_CLOSING)
            node_link_hard_close(l);
    }
}

json_t *node_peers_json(gm_node *n)
{
    json_t *a = json_array();
    for (node_link *l = n->links; l; l = l->next) {
        if (l->state != LINK_UP)
            continue;
        char since[GM_TIME_STRLEN];
        gm_time t = gm_time_from_unix(l->since_unix);
        gm_time_format(&t, since);
        json_array_append_new(a, json_pack("{s:s,s:s,s:O,s:s,s:s,s:s}", "node_public_key", l->peer_cert.node_pk_b64,
                                           "cert_id", l->peer_cert.cert_id, "roles",
                                           json_object_get(l->peer_cert.doc, "roles"), "address", l->addr,
                                           "direction", l->outbound ? "outbound" : "inbound", "since", since));
    }
    return a;
}
