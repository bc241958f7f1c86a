/* Peer links: TCP accept/dial with bounds (evicting the oldest half-open inbound connection
 * when all handshake slots are taken), redial with exponential backoff and jitter, 2-byte
 * framing, the Noise XX handshake carrying join certificates, the per-link transport ciphers
 * (rekeyed every NODE_LINK_REKEY_EVERY messages per direction), heartbeats, backpressure
 * (congested send queues pause local senders and relayed traffic instead of dropping the
 * link) and orderly close. What a message means is decided elsewhere. */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "gm/util.h"
#include "node_internal.h"

typedef struct write_req {
    uv_write_t req;
    node_link *link;
    size_t len;
    uint8_t data[];
} write_req;

static void link_hard_close(node_link *l);
static void start_reading(node_link *l);
static void link_feed(node_link *l, const uint8_t *data, size_t len);

/* ---- helpers ---- */

static void sockaddr_str(const struct sockaddr_storage *ss, char *ip, size_t ipcap, char *addr, size_t cap)
{
    int port = 0;
    ip[0] = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        uv_ip4_name(a, ip, ipcap);
        port = ntohs(a->sin_port);
        snprintf(addr, cap, "%s:%d", ip, port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(a, ip, ipcap);
        port = ntohs(a->sin6_port);
        snprintf(addr, cap, "[%s]:%d", ip, port);
    } else {
        snprintf(ip, ipcap, "?");
        snprintf(addr, cap, "?");
    }
}

/* Split "host:port" or "[v6]:port". */
static int split_hostport(const char *s, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *colon;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':' || (size_t)(rb - s - 1) >= hcap)
            return -1;
        memcpy(host, s + 1, (size_t)(rb - s - 1));
        host[rb - s - 1] = 0;
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || (size_t)(colon - s) >= hcap || colon == s)
            return -1;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = 0;
    }
    const char *p = colon + 1;
    if (!*p || strlen(p) >= pcap)
        return -1;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9')
            return -1;
    long v = strtol(p, NULL, 10);
    if (v < 0 || v > 65535)
        return -1;
    snprintf(port, pcap, "%s", p);
    return 0;
}

static json_t *link_fields(node_link *l)
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

/* ---- writing ---- */

static void link_set_congested(node_link *l, int on)
{
    gm_node *n = l->node;
    if (on == l->congested)
        return;
    l->congested = on;
    n->n_congested += on ? 1 : -1;
    if (on)
        l->congested_since_ms = node_now_ms(n);
}

static size_t link_queued(node_link *l)
{
    return uv_stream_get_write_queue_size((uv_stream_t *)&l->tcp);
}

static void on_write(uv_write_t *req, int status)
{
    write_req *w = (write_req *)req;
    node_link *l = w->link;
    sodium_memzero(w->data, w->len);
    free(w);
    /* Cancelled writes are reported before the close callback: l is still valid. */
    if (status != 0 || l->closing_handle || !l->congested || link_queued(l) >= NODE_SENDQ_LOW)
        return;
    link_set_congested(l, 0);
    node_peer_retry_paused(l->node);
}

static int send_raw(node_link *l, const uint8_t *body, size_t len, int encrypt)
{
    gm_node *n = l->node;
    gm_error err = {0};
    if (l->closing_handle || l->state == LINK_CLOSING)
        return GM_EIO;
    /* Local senders and relays wait above NODE_SENDQ_HIGH: only a peer that does not read
     * lets the queue reach this. */
    if (link_queued(l) > NODE_SENDQ_MAX) {
        n->m.links_dropped_sendq++;
        node_log(n, GM_LOG_WARN, "link_dropped", json_pack("{s:s,s:o}", "reason", "send_queue_full", "link", link_fields(l)));
        link_hard_close(l);
        return GM_ETOOBIG;
    }
    size_t body_len = encrypt ? len + GM_NOISE_TAG : len;
    write_req *w = malloc(sizeof *w + GM_WIRE_FRAME_HEADER + body_len);
    if (!w)
        return GM_ENOMEM;
    w->link = l;
    w->len = GM_WIRE_FRAME_HEADER + body_len;
    if (gm_wire_frame_header(body_len, w->data, &err) != 0) {
        free(w);
        return GM_ETOOBIG;
    }
    if (encrypt) {
        size_t out_len;
        if (gm_noise_encrypt(&l->tx, NULL, 0, body, len, w->data + GM_WIRE_FRAME_HEADER, body_len, &out_len, &err) != 0) {
            free(w);
            node_log(n, GM_LOG_WARN, "link_dropped", json_pack("{s:s,s:s,s:o}", "reason", "encrypt_failed", "error", err.msg, "link", link_fields(l)));
            link_hard_close(l);
            return GM_ECRYPTO;
        }
        if (l->tx.n % NODE_LINK_REKEY_EVERY == 0)
            gm_noise_rekey(&l->tx, NULL);
    } else {
        memcpy(w->data + GM_WIRE_FRAME_HEADER, body, len);
    }
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)w->len);
    int rc = uv_write(&w->req, (uv_stream_t *)&l->tcp, &b, 1, on_write);
    if (rc != 0) {
        free(w);
        link_hard_close(l);
        return GM_EIO;
    }
    n->m.bytes_out += w->len;
    n->m.frames_out++;
    if (!l->congested && link_queued(l) > NODE_SENDQ_HIGH)
        link_set_congested(l, 1);
    return 0;
}

int node_link_send(node_link *l, const uint8_t *msg, size_t len)
{
    if (l->state != LINK_UP)
        return GM_EINVAL;
    if (l->tx.n >= GM_NOISE_REKEY_AFTER) {
        /* A fresh handshake is the only way to reset the nonce: redial. */
        node_link_close(l, GM_WIRE_CLOSE_NORMAL, "session exhausted, reconnect");
        return GM_EIO;
    }
    return send_raw(l, msg, len, 1);
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
    n->n_links--;
    if (l->target && l->target->link == l) {
        node_target *t = l->target;
        t->link = NULL;
        uint64_t now = node_now_ms(n);
        t->next_dial_ms = now + t->backoff_ms + node_jitter(t->backoff_ms / 2 + 1);
        t->backoff_ms = t->backoff_ms * 2 > NODE_REDIAL_MAX_MS ? NODE_REDIAL_MAX_MS : t->backoff_ms * 2;
    }
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
        n->n_handshakes--;
        l->counted_hs = 0;
    }
    if (l->state == LINK_UP) {
        l->state = LINK_CLOSING;
        node_routing_link_down(n, l);
        node_log(n, GM_LOG_INFO, "peer_down", link_fields(l));
    }
    l->state = LINK_CLOSING;
}

static void link_unpause(node_link *l)
{
    if (!l->paused)
        return;
    l->paused = 0;
    l->node->n_paused--;
}

static void link_hard_close(node_link *l)
{
    if (l->closing_handle)
        return;
    link_leave(l);
    link_unpause(l);
    link_set_congested(l, 0);
    l->closing_handle = 1;
    uv_read_stop((uv_stream_t *)&l->tcp);
    uv_close((uv_handle_t *)&l->tcp, on_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    node_link *l = req->data;
    free(req);
    if (status != UV_ECANCELED)
        link_hard_close(l);
}

void node_link_close(node_link *l, uint8_t reason, const char *text)
{
    gm_node *n = l->node;
    if (l->closing_handle || l->state == LINK_CLOSING)
        return;
    if (!l->keys) {
        link_hard_close(l);
        return;
    }
    uint8_t msg[GM_WIRE_CLOSE_TEXT_MAX + 8];
    size_t len;
    if (gm_wire_close_encode(reason, text, msg, sizeof msg, &len, NULL) == 0)
        send_raw(l, msg, len, 1);
    if (l->closing_handle)
        return;
    if (l->state == LINK_UP) {
        json_t *f = link_fields(l);
        json_object_set_new(f, "reason", json_string(gm_wire_close_reason_name(reason)));
        json_object_set_new(f, "text", json_string(text ? text : ""));
        node_log(n, GM_LOG_INFO, "link_close", f);
    }
    link_leave(l);
    link_unpause(l);
    l->deadline_ms = node_now_ms(n) + NODE_CLOSE_GRACE_MS;
    uv_shutdown_t *req = malloc(sizeof *req);
    if (!req || (req->data = l, uv_shutdown(req, (uv_stream_t *)&l->tcp, on_shutdown)) != 0) {
        free(req);
        link_hard_close(l);
    }
}

/* ---- handshake ---- */

static void hs_fail(node_link *l, const char *why, const char *detail)
{
    gm_node *n = l->node;
    n->m.handshakes_failed++;
    json_t *f = link_fields(l);
    json_object_set_new(f, "reason", json_string(why));
    if (detail)
        json_object_set_new(f, "error", json_string(detail));
    node_log(n, GM_LOG_WARN, "handshake_failed", f);
    link_hard_close(l);
}

/* Refuse the peer's certificate. The responder already holds transport keys: it tells the
 * initiator why (CLOSE revoked or bad_certificate), so the initiator neither counts the link
 * as up nor redials at full speed. */
static void hs_refuse(node_link *l, gm_trust_reason r, const char *detail)
{
    gm_node *n = l->node;
    n->m.handshake_refused[r]++;
    json_t *f = link_fields(l);
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
    if (gm_node_trust_check(&n->genesis, n->have_crl ? &n->crl : NULL, cert, len, rs, gm_time_now(),
                            &l->peer_cert, &why, &err) != 0) {
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

static const uint8_t *initiator_of(gm_node *n, node_link *l)
{
    return l->outbound ? n->key.pk : l->peer_pk;
}

/* The handshake is over: transport keys, and a reader for transport frames. */
static int hs_split(node_link *l)
{
    gm_error err = {0};
    if (gm_noise_split(l->hs, &l->tx, &l->rx, &err) != 0) {
        hs_fail(l, "split", err.msg);
        return -1;
    }
    gm_noise_handshake_free(l->hs);
    l->hs = NULL;
    l->keys = 1;
    gm_wire_reader_free(l->reader);
    l->reader = NULL;
    if (gm_wire_reader_new(&l->reader, GM_WIRE_FRAME_MAX, &err) != 0) {
        hs_fail(l, "init", err.msg);
        return -1;
    }
    return 0;
}

static void send_ping(node_link *l)
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
static int link_is_self(node_link *l)
{
    gm_node *n = l->node;
    if (memcmp(l->peer_pk, n->key.pk, GM_PK_LEN) != 0)
        return 0;
    node_log(n, GM_LOG_INFO, "link_self", link_fields(l));
    if (l->target)
        l->target->next_dial_ms = UINT64_MAX; /* never dial ourselves again */
    link_hard_close(l);
    return 1;
}

/* Both sides accepted each other: the responder after judging message 3, the initiator on
 * the responder's first transport message. Only now the peer enters peer and route state. */
static void link_up(node_link *l)
{
    gm_node *n = l->node;
    if (link_is_self(l))
        return;
    /* One link per peer: keep the one opened by the smaller key (both ends agree),
     * or the older one when the same side opened both. */
    node_link *old = node_link_by_pk(n, l->peer_pk);
    if (old) {
        n->m.links_duplicate++;
        const uint8_t *io = initiator_of(n, old), *in = initiator_of(n, l);
        int keep_new = memcmp(io, in, GM_PK_LEN) != 0 && memcmp(in, io, GM_PK_LEN) < 0;
        if (!keep_new) {
            node_log(n, GM_LOG_DEBUG, "link_duplicate", link_fields(l));
            node_link_close(l, GM_WIRE_CLOSE_NORMAL, "duplicate link");
            return;
        }
        node_link_close(old, GM_WIRE_CLOSE_NORMAL, "duplicate link");
    }
    if (l->target) {
        l->target->known_pk = 1;
        memcpy(l->target->pk, l->peer_pk, GM_PK_LEN);
        l->target->backoff_ms = NODE_REDIAL_MIN_MS;
    }
    if (l->counted_hs) {
        n->n_handshakes--;
        l->counted_hs = 0;
    }
    l->state = LINK_UP;
    l->since_unix = gm_time_now().unix_s;
    l->next_ping_ms = node_now_ms(n) + NODE_PING_MS;
    l->pings_missed = 0;
    l->ping_nonce = 0;
    n->m.handshakes_ok++;
    node_cert_store_copy(n, &l->peer_cert);
    json_t *f = link_fields(l);
    json_object_set_new(f, "roles", json_deep_copy(json_object_get(l->peer_cert.doc, "roles")));
    node_log(n, GM_LOG_INFO, "peer_up", f);
    /* The responder's first transport message tells the initiator it was accepted. */
    if (!l->outbound)
        send_ping(l);
    if (l->state == LINK_UP)
        node_doc_on_link_up(n, l);
    if (l->state == LINK_UP)
        node_routing_link_up(n, l);
}

/* Returns 0 to go on, -1 when the link is being closed. */
static int hs_on_frame(node_link *l, const uint8_t *frame, size_t len)
{
    gm_node *n = l->node;
    gm_error err = {0};
    uint8_t payload[NODE_HS_FRAME_MAX], out[NODE_HS_FRAME_MAX], rs[32];
    size_t plen, olen;
    if (gm_noise_handshake_is_writer(l->hs) || gm_noise_handshake_done(l->hs)) {
        hs_fail(l, "unexpected_message", NULL);
        return -1;
    }
    if (gm_noise_read_message(l->hs, frame, len, payload, sizeof payload, &plen, &err) != 0) {
        hs_fail(l, "noise", err.msg);
        return -1;
    }
    l->got_msg1 = 1;
    if (!l->outbound && !gm_noise_handshake_done(l->hs)) {
        /* Responder read message 1: answer with our certificate. */
        if (gm_noise_write_message(l->hs, (const uint8_t *)n->cert_json, n->cert_json_len, out, sizeof out, &olen, &err) != 0) {
            hs_fail(l, "noise", err.msg);
            return -1;
        }
        return send_raw(l, out, olen, 0) == 0 ? 0 : -1;
    }
    const uint8_t *remote = gm_noise_remote_static(l->hs);
    if (!remote) {
        hs_fail(l, "no_remote_static", NULL);
        return -1;
    }
    memcpy(rs, remote, sizeof rs);
    if (!l->outbound) {
        /* Responder read message 3: judge the initiator's certificate with the transport
         * keys in hand, so a refusal can say why. */
        if (hs_split(l) != 0 || hs_check_peer(l, payload, plen, rs) != 0)
            return -1;
        link_up(l);
        return l->state == LINK_UP ? 0 : -1;
    }
    /* Initiator read message 2: the responder's certificate; answer with ours. */
    if (hs_check_peer(l, payload, plen, rs) != 0 || link_is_self(l))
        return -1;
    if (l->target) {
        /* Authenticated: this address is that key (no redial while it is connected). */
        l->target->known_pk = 1;
        memcpy(l->target->pk, l->peer_pk, GM_PK_LEN);
    }
    if (gm_noise_write_message(l->hs, (const uint8_t *)n->cert_json, n->cert_json_len, out, sizeof out, &olen, &err) != 0) {
        hs_fail(l, "noise", err.msg);
        return -1;
    }
    if (send_raw(l, out, olen, 0) != 0 || hs_split(l) != 0)
        return -1;
    /* Not up yet: the responder still judges our certificate. */
    l->state = LINK_CONFIRM;
    return 0;
}

/* The responder closed our link before accepting it: say why, and back off (the target's
 * backoff was not reset, so it doubles when the link is gone). */
static void hs_rejected(node_link *l, const uint8_t *msg, size_t len)
{
    gm_node *n = l->node;
    gm_wire_close c;
    json_t *f = link_fields(l);
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
    link_hard_close(l);
}

/* ---- transport messages ---- */

/* Stop reading from l and keep msg (a DATA whose next hop is congested) until it drains. */
static void link_hold(node_link *l, const uint8_t *msg, size_t len)
{
    gm_node *n = l->node;
    l->held = malloc(len);
    if (!l->held) {
        link_hard_close(l);
        return;
    }
    memcpy(l->held, msg, len);
    l->held_len = len;
    l->paused = 1;
    n->n_paused++;
    n->m.links_paused++;
    uv_read_stop((uv_stream_t *)&l->tcp);
}

static void transport_on_frame(node_link *l, const uint8_t *frame, size_t len)
{
    gm_node *n = l->node;
    gm_error err = {0};
    uint8_t msg[GM_WIRE_FRAME_MAX];
    size_t mlen = 0;
    uint8_t type;
    if (gm_noise_decrypt(&l->rx, NULL, 0, frame, len, msg, sizeof msg, &mlen, &err) != 0) {
        n->m.links_dropped_decrypt++;
        if (l->state == LINK_CONFIRM) {
            hs_fail(l, "decrypt_failed", err.msg);
            return;
        }
        node_log(n, GM_LOG_WARN, "link_dropped", json_pack("{s:s,s:s,s:o}", "reason", "decrypt_failed", "error", err.msg, "link", link_fields(l)));
        link_hard_close(l);
        return;
    }
    if (l->rx.n % NODE_LINK_REKEY_EVERY == 0)
        gm_noise_rekey(&l->rx, NULL);
    if (gm_wire_msg_type(msg, mlen, &type, &err) != 0) {
        node_link_close(l, GM_WIRE_CLOSE_PROTOCOL, "unknown message type");
        goto out;
    }
    if (l->state == LINK_CONFIRM) {
        if (type == GM_WIRE_CLOSE) {
            hs_rejected(l, msg, mlen);
            goto out;
        }
        /* An authenticated message from the responder: it accepted our certificate. */
        link_up(l);
        if (l->state != LINK_UP)
            goto out;
    }
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
        json_t *f = link_fields(l);
        if (gm_wire_close_decode(msg, mlen, &c, &err) == 0) {
            json_object_set_new(f, "reason", json_string(gm_wire_close_reason_name(c.reason)));
            json_object_set_new(f, "text", json_string(c.text));
        }
        node_log(n, GM_LOG_INFO, "peer_closed", f);
        link_hard_close(l);
        break;
    }
    case GM_WIRE_DATA:
        if (node_forward_on_data(n, l, msg, mlen) == NODE_FWD_HOLD)
            link_hold(l, msg, mlen);
        break;
    case GM_WIRE_CRL_ANNOUNCE:
    case GM_WIRE_CRL_REQUEST:
    case GM_WIRE_CRL_DATA:
    case GM_WIRE_POLICY_ANNOUNCE:
    case GM_WIRE_POLICY_REQUEST:
    case GM_WIRE_POLICY_DATA:
        node_doc_on_message(n, l, type, msg, mlen);
        break;
    case GM_WIRE_ROUTE_UPDATE:
    case GM_WIRE_CERT:
        node_routing_on_message(n, l, type, msg, mlen);
        break;
    default:
        node_link_close(l, GM_WIRE_CLOSE_PROTOCOL, "unexpected message type");
    }
out:
    sodium_memzero(msg, mlen);
}

/* ---- reading ---- */

/* libuv read buffers of links and local API clients: 64 KiB, freed by the read callback. */
void node_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    buf->base = malloc(65536);
    buf->len = buf->base ? 65536 : 0;
}

/* Keep bytes received while the link is paused; they are processed when it resumes. */
static void link_stash(node_link *l, const uint8_t *p, size_t len)
{
    uint8_t *copy = NULL;
    if (len && !(copy = malloc(len))) {
        link_hard_close(l);
        return;
    }
    if (len)
        memcpy(copy, p, len);
    free(l->rest);
    l->rest = copy;
    l->rest_len = len;
}

static void link_feed(node_link *l, const uint8_t *data, size_t len)
{
    gm_node *n = l->node;
    size_t off = 0;
    while (off < len && !l->closing_handle && l->state != LINK_CLOSING) {
        if (l->paused) {
            link_stash(l, data + off, len - off);
            return;
        }
        size_t used = 0, flen;
        const uint8_t *frame;
        gm_error err = {0};
        int rc = gm_wire_reader_feed(l->reader, data + off, len - off, &used, &frame, &flen, &err);
        off += used;
        if (rc < 0) {
            if (l->state == LINK_UP)
                node_link_close(l, GM_WIRE_CLOSE_PROTOCOL, err.msg);
            else
                hs_fail(l, "bad_frame", err.msg);
            break;
        }
        if (rc == 0)
            break;
        n->m.frames_in++;
        if (l->state == LINK_HANDSHAKE) {
            if (hs_on_frame(l, frame, flen) < 0)
                break;
        } else if (l->state == LINK_CONFIRM || l->state == LINK_UP) {
            transport_on_frame(l, frame, flen);
        }
    }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    node_link *l = s->data;
    gm_node *n = l->node;
    if (nread < 0) {
        if (l->state == LINK_HANDSHAKE || l->state == LINK_CONFIRM)
            hs_fail(l, nread == UV_EOF ? "eof" : "read_error", uv_strerror((int)nread));
        else
            link_hard_close(l);
        free(buf->base);
        return;
    }
    n->m.bytes_in += (uint64_t)nread;
    link_feed(l, (const uint8_t *)buf->base, (size_t)nread);
    free(buf->base);
}

/* A paused link: relay its held DATA if the next hop drained (or gave up on it), then go on
 * with the bytes received meanwhile and read again. */
static void link_retry(node_link *l)
{
    gm_node *n = l->node;
    if (!l->paused || l->closing_handle || l->state != LINK_UP)
        return;
    if (l->held) {
        if (node_forward_on_data(n, l, l->held, l->held_len) == NODE_FWD_HOLD)
            return;
        sodium_memzero(l->held, l->held_len);
        free(l->held);
        l->held = NULL;
        l->held_len = 0;
    }
    link_unpause(l);
    uint8_t *rest = l->rest;
    size_t rest_len = l->rest_len;
    l->rest = NULL;
    l->rest_len = 0;
    if (rest)
        link_feed(l, rest, rest_len);
    free(rest);
    if (!l->paused && !l->closing_handle && l->state == LINK_UP)
        start_reading(l);
}

void node_peer_retry_paused(gm_node *n)
{
    if (n->retrying)
        return;
    n->retrying = 1;
    node_e2e_flush(n);
    for (node_link *l = n->links; l; l = l->next)
        if (l->paused)
            link_retry(l);
    node_api_resume(n);
    n->retrying = 0;
}

static void start_reading(node_link *l)
{
    if (uv_read_start((uv_stream_t *)&l->tcp, node_on_alloc, on_read) != 0)
        link_hard_close(l);
}

/* ---- link creation ---- */

static node_link *link_new(gm_node *n, int outbound)
{
    node_link *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->node = n;
    l->id = ++n->next_link_id;
    l->outbound = outbound;
    if (uv_tcp_init(n->loop, &l->tcp) != 0) {
        free(l);
        return NULL;
    }
    l->tcp.data = l;
    uv_tcp_nodelay(&l->tcp, 1);
    l->next = n->links;
    n->links = l;
    n->n_links++;
    l->state = LINK_CONNECTING;
    l->created_ms = node_now_ms(n);
    l->deadline_ms = l->created_ms + NODE_HS_TIMEOUT_MS;
    l->counted_hs = 1;
    n->n_handshakes++;
    return l;
}

static int link_begin_handshake(node_link *l)
{
    gm_node *n = l->node;
    gm_error err = {0};
    if (gm_wire_reader_new(&l->reader, NODE_HS_FRAME_MAX, &err) != 0 ||
        gm_noise_handshake_new(&l->hs, GM_NOISE_XX, l->outbound, n->prologue, sizeof n->prologue, n->x_sk, NULL, &err) != 0) {
        hs_fail(l, "init", err.msg);
        return -1;
    }
    l->state = LINK_HANDSHAKE;
    start_reading(l);
    if (l->closing_handle)
        return -1;
    if (l->outbound) {
        uint8_t out[256];
        size_t olen;
        if (gm_noise_write_message(l->hs, NULL, 0, out, sizeof out, &olen, &err) != 0) {
            hs_fail(l, "noise", err.msg);
            return -1;
        }
        return send_raw(l, out, olen, 0);
    }
    return 0;
}

static int halfopen_from(gm_node *n, const char *ip)
{
    int k = 0;
    for (node_link *l = n->links; l; l = l->next)
        if (!l->outbound && l->counted_hs && !l->closing_handle && strcmp(l->ip, ip) == 0)
            k++;
    return k;
}

/* Handshakes in progress that we accepted (outbound = 0) or dialled (outbound = 1). */
static int halfopen_count(gm_node *n, int outbound)
{
    int k = 0;
    for (node_link *l = n->links; l; l = l->next)
        if (!l->outbound == !outbound && l->counted_hs && !l->closing_handle)
            k++;
    return k;
}

/* All inbound handshake slots are taken: close the oldest half-open inbound connection that
 * has not even sent message 1 (else the oldest one) so a flood cannot lock peers out. */
static void evict_halfopen(gm_node *n, node_link *except)
{
    node_link *v = NULL;
    for (node_link *l = n->links; l; l = l->next) {
        if (l == except || l->outbound || !l->counted_hs || l->closing_handle)
            continue;
        if (!v || (v->got_msg1 && !l->got_msg1) || (v->got_msg1 == l->got_msg1 && l->id < v->id))
            v = l;
    }
    if (!v)
        return;
    n->m.connections_evicted++;
    node_log(n, GM_LOG_DEBUG, "connection_evicted",
             json_pack("{s:s,s:s}", "addr", v->addr, "reason", v->got_msg1 ? "oldest_halfopen" : "no_message_1"));
    link_hard_close(v);
}

static void on_connection(uv_stream_t *server, int status)
{
    gm_node *n = server->data;
    if (status < 0 || n->stopping)
        return;
    node_link *l = link_new(n, 0);
    if (!l) {
        uv_tcp_t *tmp = malloc(sizeof *tmp);
        if (tmp && uv_tcp_init(n->loop, tmp) == 0 && uv_accept(server, (uv_stream_t *)tmp) == 0)
            uv_close((uv_handle_t *)tmp, (uv_close_cb)free);
        else
            free(tmp);
        return;
    }
    if (uv_accept(server, (uv_stream_t *)&l->tcp) != 0) {
        link_hard_close(l);
        return;
    }
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    memset(&ss, 0, sizeof ss);
    uv_tcp_getpeername(&l->tcp, (struct sockaddr *)&ss, &sl);
    sockaddr_str(&ss, l->ip, sizeof l->ip, l->addr, sizeof l->addr);
    const char *limit = NULL;
    if (n->n_links > NODE_MAX_LINKS)
        limit = "max_connections";
    else if (halfopen_from(n, l->ip) > NODE_MAX_HALFOPEN_PER_IP)
        limit = "max_halfopen_per_address";
    if (limit) {
        n->m.connections_refused_limit++;
        node_log(n, GM_LOG_DEBUG, "connection_refused", json_pack("{s:s,s:s}", "reason", limit, "addr", l->addr));
        link_hard_close(l);
        return;
    }
    if (halfopen_count(n, 0) > NODE_MAX_HANDSHAKES)
        evict_halfopen(n, l);
    node_log(n, GM_LOG_DEBUG, "connection_accepted", json_pack("{s:s}", "addr", l->addr));
    link_begin_handshake(l);
}

int node_peer_listen(gm_node *n, gm_error *err)
{
    char host[256], port[8];
    struct sockaddr_storage ss;
    const char *spec = n->cfg.listen ? n->cfg.listen : "127.0.0.1:0";
    if (split_hostport(spec, host, sizeof host, port, sizeof port) != 0)
        return gm_error_set(err, GM_EINVAL, "--listen %s: expected HOST:PORT (IPv6 as [ADDR]:PORT)", spec);
    if (uv_ip4_addr(host, atoi(port), (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, atoi(port), (struct sockaddr_in6 *)&ss) != 0)
        return gm_error_set(err, GM_EINVAL, "--listen %s: HOST must be an IP address", spec);
    uv_tcp_init(n->loop, &n->listener);
    n->listener.data = n;
    n->listener_open = 1;
    int rc = uv_tcp_bind(&n->listener, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&n->listener, 128, on_connection);
    if (rc != 0)
        return gm_error_set(err, GM_EIO, "cannot listen on %s: %s", spec, uv_strerror(rc));
    int sl = sizeof ss;
    char ip[64];
    uv_tcp_getsockname(&n->listener, (struct sockaddr *)&ss, &sl);
    sockaddr_str(&ss, ip, sizeof ip, n->listen_addr, sizeof n->listen_addr);
    n->listen_port = ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                                             : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

/* ---- dialing ---- */

void node_peer_add_target(gm_node *n, const char *hostport)
{
    node_target *t = calloc(1, sizeof *t);
    if (!t)
        return;
    if (split_hostport(hostport, t->host, sizeof t->host, t->port, sizeof t->port) != 0) {
        node_log(n, GM_LOG_WARN, "peer_ignored", json_pack("{s:s,s:s}", "peer", hostport, "reason", "expected HOST:PORT"));
        free(t);
        return;
    }
    snprintf(t->addr, sizeof t->addr, "%s", hostport);
    for (node_target *o = n->targets; o; o = o->next)
        if (strcmp(o->addr, t->addr) == 0) {
            free(t);
            return;
        }
    /* Our own listening address is not a peer. */
    if (n->listen_port && atoi(t->port) == n->listen_port &&
        (!strcmp(t->host, "127.0.0.1") || !strcmp(t->host, "localhost") || strstr(n->listen_addr, t->host) == n->listen_addr)) {
        free(t);
        return;
    }
    t->backoff_ms = NODE_REDIAL_MIN_MS;
    t->next_dial_ms = 0;
    t->next = n->targets;
    n->targets = t;
}

static void on_connect(uv_connect_t *req, int status)
{
    node_link *l = req->data;
    free(req);
    if (l->closing_handle)
        return;
    if (status < 0) {
        node_log(l->node, GM_LOG_DEBUG, "dial_failed", json_pack("{s:s,s:s}", "addr", l->addr, "error", uv_strerror(status)));
        link_hard_close(l);
        return;
    }
    link_begin_handshake(l);
}

static void dial_resolved(gm_node *n, node_target *t, const struct sockaddr *sa)
{
    node_link *l = link_new(n, 1);
    if (!l) {
        t->next_dial_ms = node_now_ms(n) + t->backoff_ms;
        return;
    }
    l->target = t;
    t->link = l;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    memcpy(&ss, sa, sa->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
    sockaddr_str(&ss, l->ip, sizeof l->ip, l->addr, sizeof l->addr);
    uv_connect_t *c = malloc(sizeof *c);
    if (!c) {
        link_hard_close(l);
        return;
    }
    c->data = l;
    int rc = uv_tcp_connect(c, &l->tcp, sa, on_connect);
    if (rc != 0) {
        free(c);
        node_log(n, GM_LOG_DEBUG, "dial_failed", json_pack("{s:s,s:s}", "addr", t->addr, "error", uv_strerror(rc)));
        link_hard_close(l);
    }
}

typedef struct resolve_req {
    uv_getaddrinfo_t req;
    gm_node *node;
    node_target *target;
} resolve_req;

static void on_resolved2(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    resolve_req *r = (resolve_req *)req;
    gm_node *n = r->node;
    node_target *t = r->target;
    free(r);
    if (status == UV_ECANCELED || n->stopping) {
        if (t)
            t->resolving = NULL;
        uv_freeaddrinfo(res);
        return;
    }
    t->resolving = NULL;
    if (status < 0 || !res) {
        node_log(n, GM_LOG_WARN, "dial_failed", json_pack("{s:s,s:s}", "addr", t->addr, "error", uv_strerror(status)));
        t->next_dial_ms = node_now_ms(n) + t->backoff_ms + node_jitter(t->backoff_ms / 2 + 1);
        t->backoff_ms = t->backoff_ms * 2 > NODE_REDIAL_MAX_MS ? NODE_REDIAL_MAX_MS : t->backoff_ms * 2;
        uv_freeaddrinfo(res);
        return;
    }
    dial_resolved(n, t, res->ai_addr);
    uv_freeaddrinfo(res);
}

static void dial(gm_node *n, node_target *t)
{
    struct sockaddr_storage ss;
    int port = atoi(t->port);
    if (uv_ip4_addr(t->host, port, (struct sockaddr_in *)&ss) == 0 ||
        uv_ip6_addr(t->host, port, (struct sockaddr_in6 *)&ss) == 0) {
        dial_resolved(n, t, (const struct sockaddr *)&ss);
        return;
    }
    resolve_req *r = calloc(1, sizeof *r);
    if (!r)
        return;
    r->node = n;
    r->target = t;
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    t->resolving = &r->req;
    if (uv_getaddrinfo(n->loop, &r->req, on_resolved2, t->host, t->port, &hints) != 0) {
        t->resolving = NULL;
        free(r);
        t->next_dial_ms = node_now_ms(n) + t->backoff_ms;
    }
}

/* ---- housekeeping ---- */

static void link_tick(node_link *l, uint64_t now)
{
    gm_node *n = l->node;
    if (l->closing_handle)
        return;
    if (l->state == LINK_CONNECTING || l->state == LINK_HANDSHAKE || l->state == LINK_CONFIRM) {
        if (!l->outbound && !l->got_msg1 && now >= l->created_ms + NODE_HS_MSG1_MS)
            hs_fail(l, "timeout", "no handshake message in time");
        else if (now >= l->deadline_ms)
            hs_fail(l, "timeout", "handshake not finished in time");
        return;
    }
    if (l->state == LINK_CLOSING) {
        if (now >= l->deadline_ms)
            link_hard_close(l);
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
    send_ping(l);
}

void node_peer_tick(gm_node *n, uint64_t now)
{
    for (node_link *l = n->links; l; l = l->next)
        link_tick(l, now);
    /* A revoked node has nobody left to talk to. */
    if (n->stopping || n->self_revoked)
        return;
    for (node_target *t = n->targets; t; t = t->next) {
        if (t->link || t->resolving || now < t->next_dial_ms)
            continue;
        if (t->known_pk && node_link_by_pk(n, t->pk)) {
            /* Already connected to that peer through another link. */
            t->next_dial_ms = now + NODE_PING_MS;
            continue;
        }
        if (n->n_links >= NODE_MAX_LINKS || halfopen_count(n, 1) >= NODE_MAX_HANDSHAKES) {
            t->next_dial_ms = now + NODE_REDIAL_MIN_MS + node_jitter(NODE_REDIAL_MIN_MS);
            continue;
        }
        dial(n, t);
    }
}

void node_peer_shutdown(gm_node *n, uint8_t reason, const char *text)
{
    if (n->listener_open) {
        n->listener_open = 0;
        uv_close((uv_handle_t *)&n->listener, NULL);
    }
    for (node_target *t = n->targets; t; t = t->next)
        if (t->resolving) {
            resolve_req *r = (resolve_req *)t->resolving;
            r->target = NULL;
            t->resolving = NULL;
            uv_cancel((uv_req_t *)&r->req);
        }
    for (node_link *l = n->links; l; l = l->next) {
        if (l->state == LINK_UP)
            node_link_close(l, reason, text);
        else if (l->state != LINK_CLOSING)
            link_hard_close(l);
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
