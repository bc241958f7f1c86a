/* End-to-end sessions between source and destination, carried in DATA payloads so a relay
 * sees only src/dst and ciphertext. A Noise IK handshake (the initiator knows the
 * destination's key: it is the address) sets up the keys; then, WireGuard-style, every
 * message carries the receiver's session index and an explicit 64-bit counter, checked
 * against a sliding replay window. Flipped bytes and replays are dropped and counted.
 *
 *   HS_INIT   0x01 || sender_idx u32 || IK message 1 (payload: timestamp u64, ns)
 *   HS_RESP   0x02 || sender_idx u32 || receiver_idx u32 || IK message 2
 *   TRANSPORT 0x03 || receiver_idx u32 || counter u64 || AEAD(port_len u8 || port || data)
 * The AEAD's associated data is src || dst || the 13 header bytes. A HS_INIT whose timestamp
 * is not newer than the last one accepted from that initiator is a replay and is dropped.
 *
 * Path health: a transport plaintext starting with 0xFF (never a port length) is a control
 * message: 0xFF || 1 = probe, 0xFF || 2 = probe answer. When we sent data and heard nothing
 * back for E2E_PROBE_AFTER_MS we probe; a probe or a handshake left unanswered is evidence
 * that the path stopped delivering, and routing avoids that next hop (routes_suspected). */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core_internal.h"
#include "node_internal.h"

#define E2E_HS_INIT 1
#define E2E_HS_RESP 2
#define E2E_TRANSPORT 3
#define E2E_HDR 13
#define E2E_PROLOGUE_LABEL "genesis-mesh/v1/e2e-ik"
#define E2E_HS_TIMEOUT_MS 2000
#define E2E_HS_TRIES 5
#define E2E_QUEUE_MAX 256
#define E2E_MAX_PEERS 1024
#define E2E_REKEY_AFTER_MS (30 * 60 * 1000ull)
#define E2E_MAX_COUNTER (UINT64_C(1) << 60)
#define E2E_TRIGGER_MS 2000
#define E2E_CTL 0xFF
#define E2E_CTL_PROBE 1
#define E2E_CTL_PROBE_ACK 2
#define E2E_PROBE_AFTER_MS 1000
#define E2E_PROBE_TIMEOUT_MS 2000
#define E2E_PROBE_TRIES 3

typedef struct e2e_keys {
    int valid;
    uint32_t local_idx, remote_idx;
    uint8_t tx[32], rx[32];
    uint64_t tx_ctr;
    gm_replay_window rw;
    uint64_t created_ms;
} e2e_keys;

typedef struct e2e_qmsg {
    uint8_t *pt;
    size_t len;
    struct e2e_qmsg *next;
} e2e_qmsg;

typedef struct e2e_peer {
    uint8_t pk[GM_PK_LEN];
    uint8_t x_pk[32];
    e2e_keys cur, prev;
    gm_noise_handshake_t *hs;
    uint32_t hs_idx;
    uint64_t hs_deadline_ms;
    int hs_tries;
    uint64_t last_ts;
    uint64_t last_trigger_ms;
    uint64_t last_used_ms;
    uint64_t unanswered_since_ms; /* first data sent since we last heard from the peer */
    uint64_t probe_sent_ms;
    int probe_fails;
    int has_via;                  /* next hop the last handshake or probe went out through */
    uint8_t via[GM_PK_LEN];
    e2e_qmsg *q_head, *q_tail;
    size_t q_n;
    struct e2e_peer *next;
} e2e_peer;

struct node_e2e {
    e2e_peer *peers;
    size_t n_peers;
    size_t queued;            /* messages in all peers' queues */
    uint8_t prologue[sizeof(E2E_PROLOGUE_LABEL) - 1 + 32];
};

/* ---- replay window ---- */

void gm_replay_init(gm_replay_window *w)
{
    memset(w, 0, sizeof *w);
}

int gm_replay_check(const gm_replay_window *w, uint64_t c)
{
    if (c >= w->top)
        return c == UINT64_MAX ? -1 : 0;
    if (w->top - c > GM_REPLAY_WINDOW_BITS)
        return -1;
    uint64_t bit = c % GM_REPLAY_WINDOW_BITS;
    return (w->bitmap[bit / 64] >> (bit % 64)) & 1 ? -1 : 0;
}

void gm_replay_mark(gm_replay_window *w, uint64_t c)
{
    if (c == UINT64_MAX) /* never valid (gm_replay_check refuses it); top + 1 would wrap */
        return;
    if (c >= w->top) {
        if (c - w->top >= GM_REPLAY_WINDOW_BITS) {
            memset(w->bitmap, 0, sizeof w->bitmap);
        } else {
            for (uint64_t i = w->top; i <= c; i++) {
                uint64_t bit = i % GM_REPLAY_WINDOW_BITS;
                w->bitmap[bit / 64] &= ~(UINT64_C(1) << (bit % 64));
            }
        }
        w->top = c + 1;
    } else if (w->top - c > GM_REPLAY_WINDOW_BITS) {
        return;
    }
    uint64_t bit = c % GM_REPLAY_WINDOW_BITS;
    w->bitmap[bit / 64] |= UINT64_C(1) << (bit % 64);
}

/* ---- helpers ---- */

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void nonce_of(uint64_t c, uint8_t nonce[12])
{
    memset(nonce, 0, 4);
    for (int i = 0; i < 8; i++)
        nonce[4 + i] = (uint8_t)(c >> (8 * i));
}

static void keys_wipe(e2e_keys *k)
{
    sodium_memzero(k, sizeof *k);
}

static void queue_clear(gm_node *n, e2e_peer *p, int count_drop)
{
    while (p->q_head) {
        e2e_qmsg *q = p->q_head;
        p->q_head = q->next;
        n->e2e->queued--;
        if (count_drop)
            n->m.e2e_drop_queue++;
        sodium_memzero(q->pt, q->len);
        free(q->pt);
        free(q);
    }
    p->q_tail = NULL;
    p->q_n = 0;
}

static void peer_free(gm_node *n, e2e_peer *p)
{
    queue_clear(n, p, 0);
    gm_noise_handshake_free(p->hs);
    keys_wipe(&p->cur);
    keys_wipe(&p->prev);
    free(p);
}

static uint32_t new_index(gm_node *n)
{
    for (;;) {
        uint32_t v = randombytes_random();
        if (v == 0)
            continue;
        int used = 0;
        for (e2e_peer *p = n->e2e->peers; p && !used; p = p->next)
            used = (p->cur.valid && p->cur.local_idx == v) || (p->prev.valid && p->prev.local_idx == v) ||
                   (p->hs && p->hs_idx == v);
        if (!used)
            return v;
    }
}

static e2e_peer *peer_find(gm_node *n, const uint8_t pk[GM_PK_LEN])
{
    for (e2e_peer *p = n->e2e->peers; p; p = p->next)
        if (memcmp(p->pk, pk, GM_PK_LEN) == 0)
            return p;
    return NULL;
}

static e2e_peer *peer_get(gm_node *n, const uint8_t pk[GM_PK_LEN])
{
    e2e_peer *p = peer_find(n, pk);
    if (p)
        return p;
    node_e2e *e = n->e2e;
    if (e->n_peers >= E2E_MAX_PEERS) {
        /* Evict the least recently used peer. */
        e2e_peer **victim = NULL;
        for (e2e_peer **pp = &e->peers; *pp; pp = &(*pp)->next)
            if (!victim || (*pp)->last_used_ms < (*victim)->last_used_ms)
                victim = pp;
        e2e_peer *v = *victim;
        *victim = v->next;
        peer_free(n, v);
        e->n_peers--;
    }
    p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    memcpy(p->pk, pk, GM_PK_LEN);
    if (gm_noise_static_pub_from_ed25519(pk, p->x_pk, NULL) != 0) {
        free(p);
        return NULL;
    }
    p->next = e->peers;
    e->peers = p;
    e->n_peers++;
    return p;
}

static void install(e2e_peer *p, uint32_t local_idx, uint32_t remote_idx, gm_noise_cipher *tx,
                    gm_noise_cipher *rx, uint64_t now)
{
    keys_wipe(&p->prev);
    p->prev = p->cur;
    memset(&p->cur, 0, sizeof p->cur);
    p->cur.valid = 1;
    p->cur.local_idx = local_idx;
    p->cur.remote_idx = remote_idx;
    memcpy(p->cur.tx, tx->k, 32);
    memcpy(p->cur.rx, rx->k, 32);
    p->cur.created_ms = now;
    gm_replay_init(&p->cur.rw);
    gm_noise_cipher_wipe(tx);
    gm_noise_cipher_wipe(rx);
}

/* ---- sending ---- */

/* Seal head || data (the plaintext, in two parts so that a payload is copied only once: into
 * the DATA message being built, where it is encrypted in place) and send it to p. */
static int seal_and_send(gm_node *n, e2e_peer *p, const uint8_t *head, size_t head_len, const uint8_t *data,
                         size_t len)
{
    uint8_t *msg = node_forward_buf(n);
    uint8_t ad[2 * GM_PK_LEN + E2E_HDR], nonce[12];
    unsigned long long clen;
    size_t ptlen = head_len + len;
    if (!msg)
        return GM_ENOMEM;
    if (E2E_HDR + ptlen + 16 > GM_WIRE_DATA_PAYLOAD_MAX)
        return GM_ETOOBIG;
    int is_ctl = head_len >= 1 && head[0] == E2E_CTL;
    int is_ack = is_ctl && ptlen == 2 && head_len == 2 && head[1] == E2E_CTL_PROBE_ACK;
    uint8_t *buf = msg + GM_WIRE_DATA_HEADER, *pt = buf + E2E_HDR;
    uint64_t ctr = p->cur.tx_ctr++;
    buf[0] = E2E_TRANSPORT;
    put32(buf + 1, p->cur.remote_idx);
    put64(buf + 5, ctr);
    memcpy(ad, n->key.pk, GM_PK_LEN);
    memcpy(ad + GM_PK_LEN, p->pk, GM_PK_LEN);
    memcpy(ad + 2 * GM_PK_LEN, buf, E2E_HDR);
    memcpy(pt, head, head_len);
    if (len)
        memcpy(pt + head_len, data, len);
    nonce_of(ctr, nonce);
    /* In place: the ciphertext overwrites the plaintext, so nothing is left to wipe. */
    crypto_aead_chacha20poly1305_ietf_encrypt(pt, &clen, pt, ptlen, ad, sizeof ad, NULL, nonce, p->cur.tx);
    int rc = node_forward_send_built(n, p->pk, msg, E2E_HDR + ptlen + 16);
    if (rc == 0 && !is_ctl)
        n->m.e2e_sent++;
    if (rc == 0 && !p->unanswered_since_ms && !is_ack)
        p->unanswered_since_ms = node_now_ms(n);
    return rc;
}

/* Remember the next hop a handshake or probe goes through: only it is blamed if no answer comes. */
static void note_via(gm_node *n, e2e_peer *p)
{
    node_link *nh = node_routing_next_hop(n, p->pk);
    p->has_via = nh != NULL;
    if (nh)
        memcpy(p->via, nh->peer_pk, GM_PK_LEN);
}

static void send_ctl(gm_node *n, e2e_peer *p, uint8_t kind)
{
    uint8_t pt[2] = {E2E_CTL, kind};
    if (kind == E2E_CTL_PROBE)
        note_via(n, p);
    seal_and_send(n, p, pt, sizeof pt, NULL, 0);
}

/* The path to p did not deliver: count it and let routing try another next hop. */
static void path_failed(gm_node *n, e2e_peer *p, const char *what)
{
    char b64[GM_PK_B64_LEN + 1];
    if (!p->has_via)
        return; /* it never left: there was no route */
    n->m.e2e_path_failures++;
    node_pk_b64(p->pk, b64);
    node_log(n, GM_LOG_INFO, "e2e_path_unanswered", json_pack("{s:s,s:s}", "peer", b64, "what", what));
    node_routing_path_failed(n, p->pk, p->via);
    p->has_via = 0;
}

static int session_usable(const e2e_keys *k, uint64_t now)
{
    return k->valid && k->tx_ctr < E2E_MAX_COUNTER && now - k->created_ms < 2 * E2E_REKEY_AFTER_MS;
}

static void start_handshake(gm_node *n, e2e_peer *p)
{
    gm_error err = {0};
    uint8_t ts[8], out[256];
    size_t olen;
    gm_noise_handshake_free(p->hs);
    p->hs = NULL;
    if (gm_noise_handshake_new(&p->hs, GM_NOISE_IK, 1, n->e2e->prologue, sizeof n->e2e->prologue, n->x_sk, p->x_pk, &err) != 0)
        return;
    gm_time now = gm_time_now();
    put64(ts, (uint64_t)now.unix_s * 1000000000ull + (uint64_t)now.usec * 1000ull);
    p->hs_idx = new_index(n);
    out[0] = E2E_HS_INIT;
    put32(out + 1, p->hs_idx);
    if (gm_noise_write_message(p->hs, ts, sizeof ts, out + 5, sizeof out - 5, &olen, &err) != 0) {
        gm_noise_handshake_free(p->hs);
        p->hs = NULL;
        return;
    }
    p->hs_deadline_ms = node_now_ms(n) + E2E_HS_TIMEOUT_MS;
    p->hs_tries++;
    note_via(n, p);
    node_forward_send(n, p->pk, out, olen + 5);
}

/* Send queued messages while the session is usable and the next hop is not congested (the
 * rest goes when it drains: node_e2e_flush). */
static void flush_queue(gm_node *n, e2e_peer *p)
{
    while (p->q_head && p->cur.valid) {
        node_link *next = node_routing_next_hop(n, p->pk);
        if (next && node_link_congested(next))
            break;
        e2e_qmsg *q = p->q_head;
        p->q_head = q->next;
        p->q_n--;
        n->e2e->queued--;
        seal_and_send(n, p, q->pt, q->len, NULL, 0);
        sodium_memzero(q->pt, q->len);
        free(q->pt);
        free(q);
    }
    if (!p->q_head)
        p->q_tail = NULL;
}

size_t node_e2e_backlog(gm_node *n, const uint8_t *dst)
{
    if (!dst)
        return n->e2e->queued;
    e2e_peer *p = n->e2e->queued ? peer_find(n, dst) : NULL;
    return p ? p->q_n : 0;
}

void node_e2e_flush(gm_node *n)
{
    if (!n->e2e->queued)
        return;
    uint64_t now = node_now_ms(n);
    for (e2e_peer *p = n->e2e->peers; p; p = p->next)
        if (p->q_head && session_usable(&p->cur, now))
            flush_queue(n, p);
}

size_t node_e2e_max_data(void)
{
    return GM_WIRE_DATA_PAYLOAD_MAX - E2E_HDR - 16 - 1 - NODE_MAX_PORT_LEN;
}

int node_e2e_send(gm_node *n, const uint8_t dst[GM_PK_LEN], const char *port, const uint8_t *data, size_t len,
                  gm_error *err)
{
    size_t plen = strlen(port);
    if (plen > NODE_MAX_PORT_LEN)
        return gm_error_set(err, GM_EINVAL, "port name longer than %d characters", NODE_MAX_PORT_LEN);
    if (len > node_e2e_max_data())
        return gm_error_set(err, GM_ETOOBIG, "message of %zu bytes is larger than %zu", len, node_e2e_max_data());
    char b64[GM_PK_B64_LEN + 1];
    node_pk_b64(dst, b64);
    if (memcmp(dst, n->key.pk, GM_PK_LEN) == 0) {
        node_api_deliver(n, dst, port, data, len);
        return 0;
    }
    if (!node_routing_next_hop(n, dst))
        return gm_error_set(err, GM_ENOTFOUND, "no route to %s", b64);
    e2e_peer *p = peer_get(n, dst);
    if (!p)
        return gm_error_set(err, GM_EINVAL, "%s is not a valid node key", b64);
    uint64_t now = node_now_ms(n);
    p->last_used_ms = now;
    uint8_t head[1 + NODE_MAX_PORT_LEN];
    head[0] = (uint8_t)plen;
    memcpy(head + 1, port, plen);
    if (session_usable(&p->cur, now) && !p->q_head) {
        int rc = seal_and_send(n, p, head, 1 + plen, data, len);
        if (!p->hs && (now - p->cur.created_ms > E2E_REKEY_AFTER_MS || p->cur.tx_ctr > E2E_MAX_COUNTER / 2)) {
            p->hs_tries = 0;
            start_handshake(n, p);
        }
        return rc == GM_ENOTFOUND ? gm_error_set(err, rc, "no route to %s", b64) : 0;
    }
    if (p->q_n >= E2E_QUEUE_MAX) {
        e2e_qmsg *old = p->q_head;
        p->q_head = old->next;
        if (!p->q_head)
            p->q_tail = NULL;
        p->q_n--;
        n->e2e->queued--;
        n->m.e2e_drop_queue++;
        sodium_memzero(old->pt, old->len);
        free(old->pt);
        free(old);
    }
    size_t ptlen = 1 + plen + len;
    uint8_t *pt = malloc(ptlen);
    e2e_qmsg *q = calloc(1, sizeof *q);
    if (!q || !pt) {
        free(q);
        free(pt);
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    }
    memcpy(pt, head, 1 + plen);
    if (len)
        memcpy(pt + 1 + plen, data, len);
    q->pt = pt;
    q->len = ptlen;
    if (p->q_tail)
        p->q_tail->next = q;
    else
        p->q_head = q;
    p->q_tail = q;
    p->q_n++;
    n->e2e->queued++;
    if (session_usable(&p->cur, now)) {
        flush_queue(n, p);
    } else if (!p->hs) {
        p->hs_tries = 0;
        start_handshake(n, p);
    }
    return 0;
}

/* ---- receiving ---- */

static void on_hs_init(gm_node *n, const uint8_t src[GM_PK_LEN], const uint8_t *m, size_t len)
{
    gm_error err = {0};
    gm_noise_handshake_t *hs = NULL;
    uint8_t ts[16], out[128];
    size_t tlen, olen;
    gm_noise_cipher tx = {0}, rx = {0};
    /* Only members whose certificate we verified may open a session with us. */
    if (len < 5 || !node_cert_lookup(n, src)) {
        n->m.e2e_drop_handshake++;
        return;
    }
    e2e_peer *p = peer_get(n, src);
    if (!p)
        goto drop;
    if (gm_noise_handshake_new(&hs, GM_NOISE_IK, 0, n->e2e->prologue, sizeof n->e2e->prologue, n->x_sk, NULL, &err) != 0 ||
        gm_noise_read_message(hs, m + 5, len - 5, ts, sizeof ts, &tlen, &err) != 0 || tlen != 8)
        goto drop;
    const uint8_t *rs = gm_noise_remote_static(hs);
    if (!rs || sodium_memcmp(rs, p->x_pk, 32) != 0)
        goto drop;
    uint64_t t = get64(ts);
    if (t <= p->last_ts) {
        n->m.e2e_drop_replay++;
        gm_noise_handshake_free(hs);
        return;
    }
    uint32_t local = new_index(n);
    out[0] = E2E_HS_RESP;
    put32(out + 1, local);
    put32(out + 5, get32(m + 1));
    if (gm_noise_write_message(hs, NULL, 0, out + 9, sizeof out - 9, &olen, &err) != 0 ||
        gm_noise_split(hs, &tx, &rx, &err) != 0)
        goto drop;
    gm_noise_handshake_free(hs);
    p->last_ts = t;
    p->last_used_ms = node_now_ms(n);
    install(p, local, get32(m + 1), &tx, &rx, node_now_ms(n));
    n->m.e2e_handshakes_ok++;
    node_forward_send(n, src, out, olen + 9);
    flush_queue(n, p);
    return;
drop:
    n->m.e2e_drop_handshake++;
    gm_noise_handshake_free(hs);
}

static void on_hs_resp(gm_node *n, const uint8_t src[GM_PK_LEN], const uint8_t *m, size_t len)
{
    gm_error err = {0};
    uint8_t pl[16];
    size_t pll;
    gm_noise_cipher tx = {0}, rx = {0};
    e2e_peer *p = peer_find(n, src);
    if (len < 9 || !p || !p->hs || p->hs_idx != get32(m + 5)) {
        n->m.e2e_drop_handshake++;
        return;
    }
    /* A failed read wipes the handshake state: a forged answer costs us one retry. */
    if (gm_noise_read_message(p->hs, m + 9, len - 9, pl, sizeof pl, &pll, &err) != 0 ||
        gm_noise_split(p->hs, &tx, &rx, &err) != 0) {
        n->m.e2e_drop_handshake++;
        gm_noise_handshake_free(p->hs);
        p->hs = NULL;
        if (p->hs_tries < E2E_HS_TRIES)
            start_handshake(n, p);
        else
            queue_clear(n, p, 1);
        return;
    }
    gm_noise_handshake_free(p->hs);
    p->hs = NULL;
    install(p, p->hs_idx, get32(m + 1), &tx, &rx, node_now_ms(n));
    n->m.e2e_handshakes_ok++;
    flush_queue(n, p);
}

static void on_transport(gm_node *n, const uint8_t src[GM_PK_LEN], uint8_t *m, size_t len)
{
    uint8_t ad[2 * GM_PK_LEN + E2E_HDR], nonce[12];
    e2e_peer *p = peer_find(n, src);
    uint64_t now = node_now_ms(n);
    if (len < E2E_HDR + 16) {
        n->m.e2e_drop_auth++;
        return;
    }
    uint32_t idx = get32(m + 1);
    uint64_t ctr = get64(m + 5);
    e2e_keys *k = NULL;
    if (p && p->cur.valid && p->cur.local_idx == idx)
        k = &p->cur;
    else if (p && p->prev.valid && p->prev.local_idx == idx)
        k = &p->prev;
    if (!k) {
        n->m.e2e_drop_unknown_session++;
        /* We lost the session (restart): offer a new one, rate limited. */
        if (node_cert_lookup(n, src) && (p = peer_get(n, src)) && !p->hs &&
            (!p->last_trigger_ms || now - p->last_trigger_ms >= E2E_TRIGGER_MS) && node_routing_next_hop(n, src)) {
            p->last_trigger_ms = now;
            p->hs_tries = E2E_HS_TRIES - 1;
            start_handshake(n, p);
        }
        return;
    }
    if (gm_replay_check(&k->rw, ctr) != 0) {
        n->m.e2e_drop_replay++;
        return;
    }
    /* Decrypted in place; the plaintext is wiped before returning. */
    size_t ptlen = len - E2E_HDR - 16;
    uint8_t *pt = m + E2E_HDR;
    unsigned long long mlen;
    memcpy(ad, src, GM_PK_LEN);
    memcpy(ad + GM_PK_LEN, n->key.pk, GM_PK_LEN);
    memcpy(ad + 2 * GM_PK_LEN, m, E2E_HDR);
    nonce_of(ctr, nonce);
    if (crypto_aead_chacha20poly1305_ietf_decrypt(pt, &mlen, NULL, pt, len - E2E_HDR, ad, sizeof ad, nonce, k->rx) != 0) {
        n->m.e2e_drop_auth++;
        return;
    }
    gm_replay_mark(&k->rw, ctr);
    p->last_used_ms = now;
    /* Anything authenticated from the peer proves the path delivers both ways. */
    p->unanswered_since_ms = p->probe_sent_ms = 0;
    p->probe_fails = 0;
    if (mlen == 2 && pt[0] == E2E_CTL) {
        if (pt[1] == E2E_CTL_PROBE)
            send_ctl(n, p, E2E_CTL_PROBE_ACK);
        else if (pt[1] != E2E_CTL_PROBE_ACK)
            n->m.e2e_drop_auth++;
        sodium_memzero(pt, ptlen);
        return;
    }
    size_t plen = mlen ? pt[0] : 0;
    char port[NODE_MAX_PORT_LEN + 1];
    if (mlen < 1 || plen > NODE_MAX_PORT_LEN || 1 + plen > mlen) {
        n->m.e2e_drop_auth++;
        sodium_memzero(pt, ptlen);
        return;
    }
    memcpy(port, pt + 1, plen);
    port[plen] = 0;
    /* authenticated but malformed (NUL, non-ASCII, empty): the sender broke the protocol */
    if (strlen(port) != plen || !node_port_valid(port, 0)) {
        n->m.e2e_drop_auth++;
        sodium_memzero(pt, ptlen);
        return;
    }
    n->m.e2e_received++;
    node_policy_deliver(n, src, port, pt + 1 + plen, mlen - 1 - plen);
    sodium_memzero(pt, ptlen);
}

void node_e2e_on_payload(gm_node *n, const uint8_t src[GM_PK_LEN], uint8_t *p, size_t len)
{
    if (len < 1)
        return;
    switch (p[0]) {
    case E2E_HS_INIT: on_hs_init(n, src, p, len); break;
    case E2E_HS_RESP: on_hs_resp(n, src, p, len); break;
    case E2E_TRANSPORT: on_transport(n, src, p, len); break;
    default: n->m.e2e_drop_auth++;
    }
}

void node_e2e_tick(gm_node *n, uint64_t now)
{
    for (e2e_peer *p = n->e2e->peers; p; p = p->next) {
        if (!p->hs && session_usable(&p->cur, now) && p->unanswered_since_ms) {
            if (p->probe_sent_ms && now - p->probe_sent_ms >= E2E_PROBE_TIMEOUT_MS) {
                path_failed(n, p, "probe");
                p->probe_sent_ms = 0;
                /* Give up probing a peer that answers on no path, until we send again. */
                if (++p->probe_fails >= E2E_PROBE_TRIES) {
                    p->unanswered_since_ms = 0;
                    p->probe_fails = 0;
                    continue;
                }
            }
            if (!p->probe_sent_ms && now - p->unanswered_since_ms >= E2E_PROBE_AFTER_MS) {
                p->probe_sent_ms = now;
                send_ctl(n, p, E2E_CTL_PROBE);
            }
        }
        if (!p->hs || now < p->hs_deadline_ms)
            continue;
        path_failed(n, p, "handshake");
        if (p->hs_tries >= E2E_HS_TRIES) {
            gm_noise_handshake_free(p->hs);
            p->hs = NULL;
            queue_clear(n, p, 1);
            char b64[GM_PK_B64_LEN + 1];
            node_pk_b64(p->pk, b64);
            node_log(n, GM_LOG_WARN, "e2e_handshake_timeout", json_pack("{s:s}", "peer", b64));
            continue;
        }
        start_handshake(n, p);
    }
}

void node_e2e_revoked(gm_node *n)
{
    node_e2e *e = n->e2e;
    for (e2e_peer **pp = &e->peers; *pp;) {
        if (node_pk_revoked(n, (*pp)->pk)) {
            e2e_peer *p = *pp;
            *pp = p->next;
            peer_free(n, p);
            e->n_peers--;
        } else {
            pp = &(*pp)->next;
        }
    }
}

int node_e2e_init(gm_node *n, gm_error *err)
{
    node_e2e *e = calloc(1, sizeof *e);
    if (!e)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    memcpy(e->prologue, E2E_PROLOGUE_LABEL, sizeof E2E_PROLOGUE_LABEL - 1);
    /* the network's identity, not one genesis version: sessions survive an NA key rotation */
    (void)err;
    gm_genesis_network_id(&n->genesis, e->prologue + sizeof E2E_PROLOGUE_LABEL - 1);
    n->e2e = e;
    return 0;
}

void node_e2e_free(gm_node *n)
{
    if (!n->e2e)
        return;
    while (n->e2e->peers) {
        e2e_peer *p = n->e2e->peers;
        n->e2e->peers = p->next;
        peer_free(n, p);
    }
    free(n->e2e);
    n->e2e = NULL;
}
