/* Bytes on a link: 2-byte framing, the transport ciphers (rekeyed every
 * NODE_LINK_REKEY_EVERY messages per direction), the frames of one loop iteration written
 * together, the send queue with backpressure
 * (congested links pause local senders and relayed traffic instead of dropping the link),
 * and the read path that hands frames to the handshake or, decrypted, to node_dispatch.c.
 * Owns n->bp (backpressure counters). */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "gm/util.h"
#include "node_internal.h"
#include "node_link.h"

typedef struct write_req {
    uv_write_t req;
    node_link *link;
    struct write_req *next;   /* the next frame written by the same request */
    size_t len;
    uint8_t data[];
} write_req;

/* A link writes the frames of one loop iteration together, in one writev: fewer system calls
 * and fewer wake-ups of the peer (a relay reading four frames at once sends them as one). */
#define LINK_BATCH_FRAMES 16
#define LINK_BATCH_BYTES (256u << 10)

/* ---- writing ---- */

void node_link_set_congested(node_link *l, int on)
{
    gm_node *n = l->node;
    if (on == l->congested)
        return;
    l->congested = on;
    n->bp.n_congested += on ? 1 : -1;
    if (on)
        l->congested_since_ms = node_now_ms(n);
}

static size_t link_queued(node_link *l)
{
    return uv_stream_get_write_queue_size((uv_stream_t *)&l->tcp) + l->out_bytes;
}

static void free_chain(write_req *w)
{
    while (w) {
        write_req *next = w->next;
        free(w);
        w = next;
    }
}

static void on_write(uv_write_t *req, int status)
{
    write_req *w = (write_req *)req;
    node_link *l = w->link;
    free_chain(w); /* ciphertext (or handshake messages): nothing to wipe */
    /* Cancelled writes are reported before the close callback: l is still valid. */
    if (status != 0 || l->closing_handle || !l->congested || link_queued(l) >= NODE_SENDQ_LOW)
        return;
    node_link_set_congested(l, 0);
    node_peer_retry_paused(l->node);
}

/* Write the frames of this iteration: at once with one writev when nothing is queued before
 * them (no request, no completion callback), and what the socket did not take as one request.
 * 0 or GM_EIO (the link is closed). */
int node_link_flush(node_link *l)
{
    write_req *w = l->out_head;
    if (!w)
        return 0;
    uv_buf_t bufs[LINK_BATCH_FRAMES];
    unsigned k = 0;
    for (write_req *x = w; x; x = x->next)
        bufs[k++] = uv_buf_init((char *)x->data, (unsigned)x->len);
    l->out_head = l->out_tail = NULL;
    l->out_n = 0;
    l->out_bytes = 0;
    l->node->m.link_writes++;
    int done = uv_try_write((uv_stream_t *)&l->tcp, bufs, k); /* UV_EAGAIN while writes are queued */
    unsigned first = 0;
    while (done > 0 && first < k) {
        size_t take = (size_t)done < bufs[first].len ? (size_t)done : bufs[first].len;
        bufs[first].base += take;
        bufs[first].len -= (unsigned)take;
        done -= (int)take;
        if (bufs[first].len > 0)
            break;
        write_req *next = w->next;
        free(w);
        w = next;
        first++;
    }
    if (first == k)
        return 0;
    if (uv_write(&w->req, (uv_stream_t *)&l->tcp, bufs + first, k - first, on_write) != 0) {
        free_chain(w);
        node_link_hard_close(l);
        return GM_EIO;
    }
    if (!l->congested && !l->closing_handle && link_queued(l) > NODE_SENDQ_HIGH)
        node_link_set_congested(l, 1);
    return 0;
}

static void on_flush(uv_prepare_t *h)
{
    gm_node *n = h->data;
    uv_prepare_stop(h);
    n->bp.flush_on = 0;
    for (node_link *l = n->links, *next; l; l = next) {
        next = l->next;
        node_link_flush(l);
    }
    node_api_flush(n);
}

int node_flush_soon(gm_node *n)
{
    if (n->bp.flush_on)
        return 0;
    if (!n->bp.flush_init) {
        if (uv_prepare_init(n->loop, &n->bp.flush) != 0)
            return GM_EIO;
        n->bp.flush.data = n;
        uv_unref((uv_handle_t *)&n->bp.flush);
        n->bp.flush_init = 1;
    }
    if (uv_prepare_start(&n->bp.flush, on_flush) != 0)
        return GM_EIO;
    n->bp.flush_on = 1;
    return 0;
}

int node_link_send_raw(node_link *l, const uint8_t *body, size_t len, int encrypt)
{
    gm_node *n = l->node;
    gm_error err = {0};
    if (l->closing_handle || l->state == LINK_CLOSING)
        return GM_EIO;
    /* Local senders and relays wait above NODE_SENDQ_HIGH: only a peer that does not read
     * lets the queue reach this. */
    if (link_queued(l) > NODE_SENDQ_MAX) {
        n->m.links_dropped_sendq++;
        node_log(n, GM_LOG_WARN, "link_dropped", json_pack("{s:s,s:o}", "reason", "send_queue_full", "link", node_link_fields(l)));
        node_link_hard_close(l);
        return GM_ETOOBIG;
    }
    size_t body_len = encrypt ? len + GM_NOISE_TAG : len;
    if (l->out_n >= LINK_BATCH_FRAMES || l->out_bytes + GM_WIRE_FRAME_HEADER + body_len > LINK_BATCH_BYTES)
        if (node_link_flush(l) != 0)
            return GM_EIO;
    write_req *w = malloc(sizeof *w + GM_WIRE_FRAME_HEADER + body_len);
    if (!w)
        return GM_ENOMEM;
    w->link = l;
    w->next = NULL;
    w->len = GM_WIRE_FRAME_HEADER + body_len;
    if (gm_wire_frame_header(body_len, w->data, &err) != 0) {
        free(w);
        return GM_ETOOBIG;
    }
    if (encrypt) {
        size_t out_len;
        if (gm_noise_encrypt(&l->tx, NULL, 0, body, len, w->data + GM_WIRE_FRAME_HEADER, body_len, &out_len, &err) != 0) {
            free(w);
            node_log(n, GM_LOG_WARN, "link_dropped", json_pack("{s:s,s:s,s:o}", "reason", "encrypt_failed", "error", err.msg, "link", node_link_fields(l)));
            node_link_hard_close(l);
            return GM_ECRYPTO;
        }
        if (l->tx.n % NODE_LINK_REKEY_EVERY == 0)
            gm_noise_rekey(&l->tx, NULL);
    } else {
        memcpy(w->data + GM_WIRE_FRAME_HEADER, body, len);
    }
    if (l->out_tail)
        l->out_tail->next = w;
    else
        l->out_head = w;
    l->out_tail = w;
    l->out_n++;
    l->out_bytes += w->len;
    n->m.bytes_out += w->len;
    n->m.frames_out++;
    if (node_flush_soon(n) != 0)
        return node_link_flush(l);
    if (!l->congested && link_queued(l) > NODE_SENDQ_HIGH)
        node_link_set_congested(l, 1);
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
    return node_link_send_raw(l, msg, len, 1);
}

/* ---- backpressure ---- */

void node_link_unpause(node_link *l)
{
    if (!l->paused)
        return;
    l->paused = 0;
    l->node->bp.n_paused--;
}

/* Stop reading from l and keep msg (a DATA whose next hop is congested) until it drains. */
void node_link_hold(node_link *l, const uint8_t *msg, size_t len)
{
    gm_node *n = l->node;
    l->held = malloc(len);
    if (!l->held) {
        node_link_hard_close(l);
        return;
    }
    memcpy(l->held, msg, len);
    l->held_len = len;
    l->paused = 1;
    n->bp.n_paused++;
    n->m.links_paused++;
    uv_read_stop((uv_stream_t *)&l->tcp);
}

/* ---- reading ---- */

/* A transport frame: decrypt (rekeying on schedule) and hand the message to node_dispatch.c. */
static void transport_on_frame(node_link *l, const uint8_t *frame, size_t len)
{
    gm_node *n = l->node;
    gm_error err = {0};
    uint8_t msg[GM_WIRE_FRAME_MAX];
    size_t mlen = 0;
    if (gm_noise_decrypt(&l->rx, NULL, 0, frame, len, msg, sizeof msg, &mlen, &err) != 0) {
        n->m.links_dropped_decrypt++;
        if (l->state == LINK_CONFIRM) {
            node_hs_fail(l, "decrypt_failed", err.msg);
            return;
        }
        node_log(n, GM_LOG_WARN, "link_dropped", json_pack("{s:s,s:s,s:o}", "reason", "decrypt_failed", "error", err.msg, "link", node_link_fields(l)));
        node_link_hard_close(l);
        return;
    }
    if (l->rx.n % NODE_LINK_REKEY_EVERY == 0)
        gm_noise_rekey(&l->rx, NULL);
    node_dispatch(l, msg, mlen);
    /* A DATA message carries end-to-end ciphertext (node_e2e.c wipes what it decrypts in place). */
    if (mlen && msg[0] != GM_WIRE_DATA)
        sodium_memzero(msg, mlen);
}

/* The read buffer of links: one per node, reused by every read (libuv hands it to the read
 * callback before it asks for a buffer again, and link_feed keeps nothing pointing into it). */
#define LINK_READ_BUF (256 * 1024)
void node_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    gm_node *n = ((node_link *)h->data)->node;
    (void)suggested;
    if (!n->bp.read_buf)
        n->bp.read_buf = malloc(LINK_READ_BUF);
    buf->base = (char *)n->bp.read_buf;
    buf->len = n->bp.read_buf ? LINK_READ_BUF : 0;
}

/* Keep bytes received while the link is paused; they are processed when it resumes. */
static void link_stash(node_link *l, const uint8_t *p, size_t len)
{
    uint8_t *copy = NULL;
    if (len && !(copy = malloc(len))) {
        node_link_hard_close(l);
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
                node_hs_fail(l, "bad_frame", err.msg);
            break;
        }
        if (rc == 0)
            break;
        n->m.frames_in++;
        if (l->state == LINK_HANDSHAKE) {
            if (node_hs_on_frame(l, frame, flen) < 0)
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
            node_hs_fail(l, nread == UV_EOF ? "eof" : "read_error", uv_strerror((int)nread));
        else
            node_link_hard_close(l);
        return;
    }
    n->m.bytes_in += (uint64_t)nread;
    link_feed(l, (const uint8_t *)buf->base, (size_t)nread);
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
    node_link_unpause(l);
    uint8_t *rest = l->rest;
    size_t rest_len = l->rest_len;
    l->rest = NULL;
    l->rest_len = 0;
    if (rest)
        link_feed(l, rest, rest_len);
    free(rest);
    if (!l->paused && !l->closing_handle && l->state == LINK_UP)
        node_link_start_reading(l);
}

void node_peer_retry_paused(gm_node *n)
{
    if (n->bp.retrying)
        return;
    n->bp.retrying = 1;
    node_e2e_flush(n);
    for (node_link *l = n->links; l; l = l->next)
        if (l->paused)
            link_retry(l);
    node_api_resume(n);
    n->bp.retrying = 0;
}

void node_link_start_reading(node_link *l)
{
    if (uv_read_start((uv_stream_t *)&l->tcp, node_on_alloc, on_read) != 0)
        node_link_hard_close(l);
}

void node_paused_add(gm_node *n, int delta)
{
    n->bp.n_paused += delta;
}

int node_any_congested(gm_node *n)
{
    return n->bp.n_congested > 0;
}

int node_any_paused(gm_node *n)
{
    return n->bp.n_paused > 0;
}

int node_link_congested(const node_link *l)
{
    return l->congested;
}

uint64_t node_link_congested_since(const node_link *l)
{
    return l->congested_since_ms;
}
