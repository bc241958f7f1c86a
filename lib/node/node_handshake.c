/* The Noise XX handshake of a link, carrying join certificates: message 1 to 3, judging the
 * peer's certificate (gm_node_trust_check), refusing it with a reason, and the initiator's
 * wait for the responder's first transport message (LINK_CONFIRM). */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "gm/util.h"
#include "node_internal.h"
#include "node_link.h"

void node_hs_fail(node_link *l, const char *why, const char *detail)
{
    gm_node *n = l->node;
    n->m.handshakes_failed++;
    json_t *f = node_link_fields(l);
    json_object_set_new(f, "reason", json_string(why));
    if (detail)
        json_object_set_new(f, "error", json_string(detail));
    node_log(n, GM_LOG_WARN, "handshake_failed", f);
    node_link_hard_close(l);
}

/* Refuse the peer's certificate. The responder already holds transport keys: it tells the
 * initiator why (CLOSE revoked or bad_certificate), so the initiator neither counts the link
 * as up nor redials at full speed. */
static void hs_refuse(node_link *l, gm_trust_reason r, const char *detail)
{
    gm_node *n = l->node;
    n->m.handshake_refused[r]++;
    json_t *f = node_link_fields(l);
    json_object_set_new(f, "reason", json_string(gm_trust_reason_name(r)));
    json_object_set_new(f, "error", json_string(detail ? detail : ""));
    node_log(n, GM_LOG_WARN, "handshake_refused", f);
    node_link_close(l, r == GM_TRUST_REVOKED ? GM_WIRE_CLOSE_REVOKED : GM_WIRE_CLOSE_BAD_CERT,
                    gm_trust_reason_name(r));
}

/* Judge the peer's certificate against rs, the Noise remote static key; on success
 * l->peer_cert holds it. */
static int hs_check_peer(node_link *l, const uint8_t *cert, size_t len, const uint8_t rs[32])
{
    gm_node *n = l->node;
    gm_error err = {0};
    gm_trust_reason why;
    if (node_trust_check(n, cert, len, rs, gm_time_now(), &l->peer_cert, &why, &err) != 0) {
        hs_refuse(l, why, err.msg);
        return -1;
    }
    l->has_cert = 1;
    memcpy(l->peer_pk, l->peer_cert.node_pk, GM_PK_LEN);
    if (!node_policy_link_ok(n, &l->peer_cert)) {
        node_link_close(l, GM_WIRE_CLOSE_FORBIDDEN, "forbidden by the access policy");
        return -1;
    }
    return 0;
}

/* The handshake is over: transport keys, and a reader for transport frames. */
static int hs_split(node_link *l)
{
    gm_error err = {0};
    if (gm_noise_split(l->hs, &l->tx, &l->rx, &err) != 0) {
        node_hs_fail(l, "split", err.msg);
        return -1;
    }
    gm_noise_handshake_free(l->hs);
    l->hs = NULL;
    l->keys = 1;
    gm_wire_reader_free(l->reader);
    l->reader = NULL;
    if (gm_wire_reader_new(&l->reader, GM_WIRE_FRAME_MAX, &err) != 0) {
        node_hs_fail(l, "init", err.msg);
        return -1;
    }
    return 0;
}

/* Returns 0 to go on, -1 when the link is being closed. */
int node_hs_on_frame(node_link *l, const uint8_t *frame, size_t len)
{
    gm_node *n = l->node;
    gm_error err = {0};
    uint8_t payload[NODE_HS_FRAME_MAX], out[NODE_HS_FRAME_MAX], rs[32];
    size_t plen, olen;
    if (gm_noise_handshake_is_writer(l->hs) || gm_noise_handshake_done(l->hs)) {
        node_hs_fail(l, "unexpected_message", NULL);
        return -1;
    }
    if (gm_noise_read_message(l->hs, frame, len, payload, sizeof payload, &plen, &err) != 0) {
        node_hs_fail(l, "noise", err.msg);
        return -1;
    }
    l->got_msg1 = 1;
    if (!l->outbound && !gm_noise_handshake_done(l->hs)) {
        /* Responder read message 1: answer with our certificate. */
        if (gm_noise_write_message(l->hs, (const uint8_t *)n->cert_json, n->cert_json_len, out, sizeof out, &olen, &err) != 0) {
            node_hs_fail(l, "noise", err.msg);
            return -1;
        }
        return node_link_send_raw(l, out, olen, 0) == 0 ? 0 : -1;
    }
    const uint8_t *remote = gm_noise_remote_static(l->hs);
    if (!remote) {
        node_hs_fail(l, "no_remote_static", NULL);
        return -1;
    }
    memcpy(rs, remote, sizeof rs);
    if (!l->outbound) {
        /* Responder read message 3: judge the initiator's certificate with the transport
         * keys in hand, so a refusal can say why. */
        if (hs_split(l) != 0 || hs_check_peer(l, payload, plen, rs) != 0)
            return -1;
        node_link_up(l);
        return l->state == LINK_UP ? 0 : -1;
    }
    /* Initiator read message 2: the responder's certificate; answer with ours. */
    if (hs_check_peer(l, payload, plen, rs) != 0 || node_link_is_self(l))
        return -1;
    /* Authenticated: this address is that key. */
    node_connect_link_authenticated(l);
    if (gm_noise_write_message(l->hs, (const uint8_t *)n->cert_json, n->cert_json_len, out, sizeof out, &olen, &err) != 0) {
        node_hs_fail(l, "noise", err.msg);
        return -1;
    }
    if (node_link_send_raw(l, out, olen, 0) != 0 || hs_split(l) != 0)
        return -1;
    /* Not up yet: the responder still judges our certificate. */
    l->state = LINK_CONFIRM;
    return 0;
}

/* The responder closed our link before accepting it: say why, and back off (the target's
 * backoff was not reset, so it doubles when the link is gone). */
void node_hs_rejected(node_link *l, const uint8_t *msg, size_t len)
{
    gm_node *n = l->node;
    gm_wire_close c;
    json_t *f = node_link_fields(l);
    int normal = 0;
    if (gm_wire_close_decode(msg, len, &c, NULL) == 0) {
        json_object_set_new(f, "reason", json_string(gm_wire_close_reason_name(c.reason)));
        json_object_set_new(f, "text", json_string(c.text));
        normal = c.reason == GM_WIRE_CLOSE_NORMAL;
        /* It says we are revoked: check with the NA now rather than at the next poll. */
        if (c.reason == GM_WIRE_CLOSE_REVOKED)
            node_crl_poll_soon(n);
    }
    if (!normal)
        n->m.handshakes_rejected++;
    node_log(n, normal ? GM_LOG_DEBUG : GM_LOG_WARN, "handshake_rejected", f);
    node_link_hard_close(l);
}

int node_hs_begin(node_link *l)
{
    gm_node *n = l->node;
    gm_error err = {0};
    if (gm_wire_reader_new(&l->reader, NODE_HS_FRAME_MAX, &err) != 0 ||
        gm_noise_handshake_new(&l->hs, GM_NOISE_XX, l->outbound, n->prologue, sizeof n->prologue, n->x_sk, NULL, &err) != 0) {
        node_hs_fail(l, "init", err.msg);
        return -1;
    }
    l->state = LINK_HANDSHAKE;
    node_link_start_reading(l);
    if (l->closing_handle)
        return -1;
    if (l->outbound) {
        uint8_t out[256];
        size_t olen;
        if (gm_noise_write_message(l->hs, NULL, 0, out, sizeof out, &olen, &err) != 0) {
            node_hs_fail(l, "noise", err.msg);
            return -1;
        }
        return node_link_send_raw(l, out, olen, 0);
    }
    return 0;
}
