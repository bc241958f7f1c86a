/* What a transport message on a link means: link-level messages (PING, PONG, CLOSE) are
 * handled here, the rest goes to its subsystem (DATA to forwarding, CRL_* to the CRL,
 * ROUTE_UPDATE and CERT to routing). On a link waiting for confirmation (LINK_CONFIRM) the
 * first message decides: CLOSE is a refusal, anything else brings the link up. */
#include "node_internal.h"
#include "node_link.h"

void node_dispatch(node_link *l, uint8_t *msg, size_t mlen)
{
    gm_node *n = l->node;
    gm_error err = {0};
    uint8_t type;
    if (gm_wire_msg_type(msg, mlen, &type, &err) != 0) {
        node_link_close(l, GM_WIRE_CLOSE_PROTOCOL, "unknown message type");
        return;
    }
    if (l->state == LINK_CONFIRM) {
        if (type == GM_WIRE_CLOSE) {
            node_hs_rejected(l, msg, mlen);
            return;
        }
        /* An authenticated message from the responder: it accepted our certificate. */
        node_link_up(l);
        if (l->state != LINK_UP)
            return;
    }
    /* A link held for a stale CRL carries CRL gossip and heartbeats only. */
    if (l->crl_hold && (type == GM_WIRE_DATA || type == GM_WIRE_ROUTE_UPDATE || type == GM_WIRE_CERT))
        return;
    switch (type) {
    case GM_WIRE_PING: {
        uint64_t nonce;
        uint8_t out[16];
        size_t olen;
        if (gm_wire_ping_decode(msg, mlen, &nonce, &err) == 0 && gm_wire_pong_encode(nonce, out, sizeof out, &olen, &err) == 0)
            node_link_send(l, out, olen);
        else
            node_link_close(l, GM_WIRE_CLOSE_PROTOCOL, "bad PING");
        break;
    }
    case GM_WIRE_PONG: {
        uint64_t nonce;
        if (gm_wire_pong_decode(msg, mlen, &nonce, &err) != 0) {
            node_link_close(l, GM_WIRE_CLOSE_PROTOCOL, "bad PONG");
        } else if (nonce == l->ping_nonce) {
            l->pings_missed = 0;
            l->ping_nonce = 0;
        }
        break;
    }
    case GM_WIRE_CLOSE: {
        gm_wire_close c;
        json_t *f = node_link_fields(l);
        if (gm_wire_close_decode(msg, mlen, &c, &err) == 0) {
            json_object_set_new(f, "reason", json_string(gm_wire_close_reason_name(c.reason)));
            json_object_set_new(f, "text", json_string(c.text));
        }
        node_log(n, GM_LOG_INFO, "peer_closed", f);
        node_link_hard_close(l);
        break;
    }
    case GM_WIRE_DATA:
        if (node_forward_on_data(n, l, msg, mlen) == NODE_FWD_HOLD)
            node_link_hold(l, msg, mlen);
        break;
    case GM_WIRE_CRL_ANNOUNCE:
    case GM_WIRE_CRL_REQUEST:
    case GM_WIRE_CRL_DATA:
    case GM_WIRE_POLICY_ANNOUNCE:
    case GM_WIRE_POLICY_REQUEST:
    case GM_WIRE_POLICY_DATA:
    case GM_WIRE_GENESIS_ANNOUNCE:
    case GM_WIRE_GENESIS_REQUEST:
    case GM_WIRE_GENESIS_DATA:
        node_doc_on_message(n, l, type, msg, mlen);
        break;
    case GM_WIRE_ROUTE_UPDATE:
    case GM_WIRE_CERT:
        node_routing_on_message(n, l, type, msg, mlen);
        break;
    default:
        node_link_close(l, GM_WIRE_CLOSE_PROTOCOL, "unexpected message type");
    }
}

