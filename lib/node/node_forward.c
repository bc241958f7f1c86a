/* DATA forwarding hop by hop: deliver what is addressed to us, otherwise decrement the
 * hop limit and pass it to the next hop of the route table (holding it while that hop is
 * congested, and what is for us while a local subscriber is behind). Relays see only src,
 * dst, ttl and end-to-end ciphertext. */
#include <stdlib.h>
#include <string.h>

#include "node_internal.h"

int node_forward_on_data(gm_node *n, node_link *from, uint8_t *msg, size_t len)
{
    gm_wire_data d;
    gm_error err = {0};
    if (gm_wire_data_decode(msg, len, &d, &err) != 0) {
        node_link_close(from, GM_WIRE_CLOSE_PROTOCOL, "bad DATA");
        return 0;
    }
    if (node_routing_banned(n, d.src) || node_routing_banned(n, d.dst)) {
        n->m.data_drop_revoked++;
        return 0;
    }
    if (memcmp(d.dst, n->key.pk, GM_PK_LEN) == 0) {
        /* End-to-end backpressure: while a local subscriber is behind, stop reading this link
         * (the senders' links fill and their local API stops reading them). */
        if (node_api_behind(n)) {
            n->m.api_held++;
            return NODE_FWD_HOLD;
        }
        n->m.data_delivered++;
        node_e2e_on_payload(n, d.src, msg + GM_WIRE_DATA_HEADER, d.payload_len);
        return 0;
    }
    if (!node_policy_relay_ok(n, d.src))
        return 0;
    if (d.ttl <= 1) {
        n->m.data_drop_ttl++;
        return 0;
    }
    node_link *next = node_routing_next_hop(n, d.dst);
    if (!next) {
        n->m.data_drop_no_route++;
        return 0;
    }
    if (node_link_congested(next)) {
        /* Hop-by-hop backpressure: stop reading the upstream link until the next hop drains,
         * but not for long: a next hop that stays congested is not reading. */
        if (node_now_ms(n) - node_link_congested_since(next) < NODE_RELAY_HOLD_MS)
            return NODE_FWD_HOLD;
        n->m.data_drop_congested++;
        return 0;
    }
    /* Relayed in place: only the ttl byte changes, and the next link encrypts from msg. */
    d.ttl--;
    size_t olen;
    if (gm_wire_data_encode(&d, msg, len, &olen, &err) == 0 && node_link_send(next, msg, olen) == 0)
        n->m.data_forwarded++;
    return 0;
}

int node_send_blocked(gm_node *n, const uint8_t dst[GM_PK_LEN])
{
    if (memcmp(dst, n->key.pk, GM_PK_LEN) == 0)
        return 0;
    node_link *next = node_routing_next_hop(n, dst);
    if (next && node_link_congested(next))
        return 1;
    return node_e2e_backlog(n, dst) >= NODE_E2E_BACKLOG_MAX;
}

uint8_t *node_forward_buf(gm_node *n)
{
    if (!n->bp.data_buf)
        n->bp.data_buf = malloc(GM_WIRE_MSG_MAX);
    return n->bp.data_buf;
}

int node_forward_send_built(gm_node *n, const uint8_t dst[GM_PK_LEN], uint8_t *buf, size_t len)
{
    node_link *next = node_routing_next_hop(n, dst);
    if (!next)
        return GM_ENOTFOUND;
    gm_wire_data d;
    memcpy(d.src, n->key.pk, GM_PK_LEN);
    memcpy(d.dst, dst, GM_PK_LEN);
    d.ttl = NODE_DEFAULT_TTL;
    d.payload = buf + GM_WIRE_DATA_HEADER;
    d.payload_len = len;
    size_t olen;
    int rc = gm_wire_data_encode(&d, buf, GM_WIRE_MSG_MAX, &olen, NULL);
    return rc ? rc : node_link_send(next, buf, olen);
}

int node_forward_send(gm_node *n, const uint8_t dst[GM_PK_LEN], const uint8_t *payload, size_t len)
{
    uint8_t *buf = node_forward_buf(n);
    if (!buf)
        return GM_ENOMEM;
    if (len > GM_WIRE_DATA_PAYLOAD_MAX)
        return GM_ETOOBIG;
    memcpy(buf + GM_WIRE_DATA_HEADER, payload, len);
    return node_forward_send_built(n, dst, buf, len);
}
