/* Local API of a running node: Unix socket D/node.sock (0600), one JSON request per line,
 * one JSON response per line; "subscribe" turns the connection into a message stream.
 * The protocol is versioned (docs/local-api.md): a connection is at version 1 (the
 * operations below, no request ids) until a `hello` negotiates version 2, which requires an
 * "id" on every request and adds the agent operations of node_agents.c.
 * Messages that arrive for a port nobody subscribed to wait in a bounded inbox.
 * A hello with "frames":2 (or 1) turns on binary frames (lib/core/api_frame.c) for message
 * payloads: send frames in, message frames out (with frames 2, a request with the access
 * policy's note too, as a noted frame; with frames 1 it stays a JSON event); what a frames
 * client gets in one loop iteration is written together at its end (one write, one wake-up of
 * the client for a burst).
 * Received bytes go straight into the connection's own buffer (no buffer per read).
 * Backpressure: a `send` whose next hop is congested is not handled (and the client not
 * read) until it drains; a send that fails is reported to its sender and counted. A subscriber
 * more than NODE_API_SUBQ_HIGH behind makes DATA for this node wait (node_forward.c), so the
 * senders slow down; one that still does not read gets, after the complete lines already
 * queued, one {"event":"overflow","dropped":N} line, and is disconnected. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <sodium.h>

#include "gm/agent.h"
#include "gm/util.h"
#include "core_internal.h"
#include "node_internal.h"

#define API_CLIENT_SENDQ_MAX (16u << 20)
/* Free room in a connection's buffer before each read; a client of binary frames gets room for
 * several messages, so that the frames of one read leave on a link in one write. */
#define API_READ_MIN 65536
#define API_READ_FRAMES (256u << 10)
/* What a frames client gets in one loop iteration, written together (node_api_flush). */
#define API_BATCH_BYTES (256u << 10)
/* A frames client's send buffer: a few batches, so that a batch leaves in one write and its
 * subscriber wakes once for it (the default ~208 KiB took a 256 KiB batch in two writes, the
 * second after a wake-up of the node for room). Best effort: capped at net.core.wmem_max
 * (default ~208 KiB, doubled by Linux: still one batch). */
#define API_FRAMES_SNDBUF (1 << 20)
_Static_assert(NODE_MAX_PORT_LEN == GM_API_PORT_MAX, "one port length for frames and the node");

struct node_api_client {
    uv_pipe_t pipe;
    gm_node *node;
    char *buf;                /* received bytes: buf[off..len) not handled yet */
    size_t off, len, cap;
    int subscribed;
    int requests_only;        /* only messages that may be capability requests (a provider loop's) */
    int version;              /* of the local API: 1 until a hello negotiates another */
    int hello_done;
    uint64_t serial;          /* names the connection to work that outlives a callback */
    char port[NODE_MAX_PORT_LEN + 1];
    int closing;
    int paused;               /* not read: its next `send` waits for a congested link */
    size_t writes;            /* writes in flight */
    int overflow;             /* stopped queueing: too much unread */
    uint64_t dropped;         /* messages not queued since */
    int frames;               /* binary frames version negotiated by hello (0: JSON only) */
    int behind;               /* more than NODE_API_SUBQ_HIGH unread (counted in n_behind) */
    uint64_t progress_ms;     /* when it last read something (a write completed), or went behind */
    uint64_t skip;            /* payload bytes of a refused frame still to discard */
    struct api_write *out;    /* frames client: lines and frames of this loop iteration, not written yet */
    size_t out_len;
    node_api_client *next;
};

typedef struct api_write {
    uv_write_t req;
    node_api_client *client;
    int last;                 /* the overflow line: close once written */
    char data[];
} api_write;

static void client_flush(node_api_client *c);

static void client_free_cb(uv_handle_t *h)
{
    node_api_client *c = h->data;
    free(c->out);
    free(c->buf);
    free(c);
}

static void client_close(node_api_client *c)
{
    gm_node *n = c->node;
    if (c->closing)
        return;
    /* What it was given before (an error answer to a bad request) goes first, as far as the
     * socket takes it. */
    client_flush(c);
    if (c->closing)
        return; /* the flush failed and closed it */
    c->closing = 1;
    node_agents_client_closed(n, c->serial);
    if (c->paused) {
        c->paused = 0;
        node_paused_add(n, -1);
    }
    if (c->behind) {
        c->behind = 0;
        n->api.n_behind--;
    }
    for (node_api_client **pp = &n->api.clients; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    n->api.n_clients--;
    uv_close((uv_handle_t *)&c->pipe, client_free_cb);
}

static void client_write(node_api_client *c, uv_buf_t *bufs, unsigned nbufs, int last);

/* After the complete lines queued before the overflow: say how many messages were dropped. */
static void client_send_overflow(node_api_client *c)
{
    char line[80];
    int k = snprintf(line, sizeof line, "{\"event\":\"overflow\",\"dropped\":%llu}\n", (unsigned long long)c->dropped);
    uv_buf_t b = uv_buf_init(line, (unsigned)k);
    client_write(c, &b, 1, 1);
}

static size_t client_queued(node_api_client *c)
{
    return uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) + c->out_len;
}

/* Track whether c is behind (DATA for this node waits while one is), with hysteresis. */
static void client_update_behind(node_api_client *c)
{
    gm_node *n = c->node;
    size_t q = client_queued(c);
    if (!c->behind && q > NODE_API_SUBQ_HIGH) {
        c->behind = 1;
        c->progress_ms = node_now_ms(n);
        n->api.n_behind++;
    } else if (c->behind && (q < NODE_API_SUBQ_LOW || c->overflow)) {
        c->behind = 0;
        if (--n->api.n_behind == 0)
            node_peer_retry_paused(n);
    }
}

static void client_cut_off(node_api_client *c);

int node_api_behind(gm_node *n)
{
    if (!n->api.n_behind)
        return 0;
    uint64_t now = node_now_ms(n);
    for (node_api_client *c = n->api.clients; c; c = c->next)
        if (c->behind && !c->closing && now - c->progress_ms >= NODE_API_HOLD_MS)
            client_cut_off(c);
    return n->api.n_behind > 0;
}

static void on_written(uv_write_t *req, int status)
{
    api_write *w = (api_write *)req;
    node_api_client *c = w->client;
    int last = w->last;
    free(w);
    c->writes--;
    /* Cancelled writes are reported before the close callback: c is still valid. */
    if (status != 0 || c->closing)
        return;
    c->progress_ms = node_now_ms(c->node);
    if (last)
        client_close(c);
    else if (c->overflow && c->writes == 0)
        client_send_overflow(c);
    else
        client_update_behind(c);
}

/* Queue the write request w (which owns its buffer) for len bytes from data; the client is
 * closed when libuv refuses it. */
static void client_queue(node_api_client *c, api_write *w, char *data, size_t len)
{
    uv_buf_t b = uv_buf_init(data, (unsigned)len);
    c->node->m.api_writes_queued++;
    if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, on_written) != 0) {
        free(w);
        client_close(c);
        return;
    }
    c->writes++;
    client_update_behind(c);
}

/* One write of bufs to c (counted): the bytes its socket took at once with one writev, 0 when
 * earlier writes are still queued (these must wait behind them) or when try is 0. */
static size_t client_try_write(node_api_client *c, uv_buf_t *bufs, unsigned nbufs, int try)
{
    c->node->m.api_writes++;
    if (c->writes > 0 || !try)
        return 0;
    int k = uv_try_write((uv_stream_t *)&c->pipe, bufs, nbufs);
    return k > 0 ? (size_t)k : 0;
}

/* Write bufs in order: at once with one writev when nothing is queued before them, and what
 * the socket did not take (or everything, behind earlier writes) copied into one request. */
static void client_write_now(node_api_client *c, uv_buf_t *bufs, unsigned nbufs, int last)
{
    size_t total = 0;
    for (unsigned i = 0; i < nbufs; i++)
        total += bufs[i].len;
    size_t done = client_try_write(c, bufs, nbufs, !last);
    if (done == total)
        return;
    api_write *w = malloc(sizeof *w + total - done);
    if (!w) {
        client_close(c);
        return;
    }
    w->client = c;
    w->last = last;
    size_t off = 0, skip = done;
    for (unsigned i = 0; i < nbufs; i++) {
        size_t l = bufs[i].len, from = skip < l ? skip : l;
        skip -= from;
        memcpy(w->data + off, bufs[i].base + from, l - from);
        off += l - from;
    }
    client_queue(c, w, w->data, off);
}

/* Write c's batch: at once as far as the socket takes it, the rest as one request that owns
 * the batch's buffer (no second copy). A batch written whole keeps its buffer for the next. */
static void client_flush(node_api_client *c)
{
    api_write *w = c->out;
    size_t len = c->out_len;
    if (!w || !len || c->closing)
        return;
    c->out_len = 0;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
    size_t done = client_try_write(c, &b, 1, 1);
    if (done == len)
        return;
    c->out = NULL;
    w->client = c;
    w->last = 0;
    client_queue(c, w, w->data + done, len - done);
}

void node_api_flush(gm_node *n)
{
    for (node_api_client *c = n->api.clients, *next; c; c = next) {
        next = c->next;
        client_flush(c);
    }
}

/* Write bufs in order after what c was given before. A frames client gets them at the end of
 * this loop iteration, together with the rest of its batch: a subscriber reading a burst of
 * messages wakes once, and the node makes one system call, not one per message. */
static void client_write(node_api_client *c, uv_buf_t *bufs, unsigned nbufs, int last)
{
    size_t total = 0;
    for (unsigned i = 0; i < nbufs; i++)
        total += bufs[i].len;
    if (c->frames && !last && total <= API_BATCH_BYTES) {
        if (c->out_len + total > API_BATCH_BYTES)
            client_flush(c);
        if (!c->out && !(c->out = malloc(sizeof *c->out + API_BATCH_BYTES))) {
            client_close(c);
            return;
        }
        for (unsigned i = 0; i < nbufs; i++) {
            memcpy(c->out->data + c->out_len, bufs[i].base, bufs[i].len);
            c->out_len += bufs[i].len;
        }
        if (node_flush_soon(c->node) != 0)
            client_flush(c);
        return;
    }
    client_flush(c);
    if (!c->closing)
        client_write_now(c, bufs, nbufs, last);
}

/* 1 when nothing more may be queued to c (closing, or cut off for not reading: counted). */
static int client_refuses(node_api_client *c)
{
    if (c->closing || c->overflow) {
        if (c->overflow)
            c->dropped++;
        return 1;
    }
    if (client_queued(c) > API_CLIENT_SENDQ_MAX) {
        c->dropped = 1;
        client_cut_off(c);
        return 1;
    }
    return 0;
}

/* It does not read: queue nothing more, never cut a line; after what is queued it learns how
 * much it missed, then the connection closes. */
static void client_cut_off(node_api_client *c)
{
    c->overflow = 1;
    c->node->m.api_overflow++;
    uv_read_stop((uv_stream_t *)&c->pipe);
    client_update_behind(c);
    if (c->writes == 0)
        client_send_overflow(c);
}

static void client_send(node_api_client *c, json_t *o)
{
    if (client_refuses(c)) {
        json_decref(o);
        return;
    }
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!s)
        return;
    uv_buf_t b[2] = {uv_buf_init(s, (unsigned)strlen(s)), uv_buf_init((char *)"\n", 1)};
    client_write(c, b, 2, 0);
    free(s);
}

/* A message frame: head, port and the payload, without copying it when the socket takes it;
 * with a note (nl bytes of compact JSON, frames 2), a noted frame: u16 nl, the note, the data. */
static void client_send_frame(node_api_client *c, const uint8_t from[GM_PK_LEN], const char *port,
                              const uint8_t *data, size_t len, const char *note, size_t nl)
{
    uint8_t head[GM_API_FRAME_HEAD_MAX], nlen[GM_API_NOTE_LEN] = {(uint8_t)(nl >> 8), (uint8_t)nl};
    if (client_refuses(c))
        return;
    size_t pl = note ? GM_API_NOTE_LEN + nl + len : len;
    size_t hl = gm_api_frame_head(head, GM_API_FRAME_MESSAGE, note ? GM_API_FRAME_F_NOTED : 0, 0, (uint32_t)pl,
                                  from, port);
    uv_buf_t b[4];
    unsigned nb = 0;
    b[nb++] = uv_buf_init((char *)head, (unsigned)hl);
    if (note) {
        b[nb++] = uv_buf_init((char *)nlen, GM_API_NOTE_LEN);
        if (nl)
            b[nb++] = uv_buf_init((char *)note, (unsigned)nl);
    }
    if (len)
        b[nb++] = uv_buf_init((char *)data, (unsigned)len);
    c->node->m.api_frames_out++;
    client_write(c, b, nb, 0);
}

static int port_matches(const char *sub, const char *port)
{
    return strcmp(sub, "*") == 0 || strcmp(sub, port) == 0;
}

json_t *node_api_error(const char *code, const char *msg)
{
    return json_pack("{s:b,s:{s:s,s:s}}", "ok", 0, "error", "code", code, "message", msg);
}
#define api_error node_api_error

void node_api_send_to(gm_node *n, uint64_t serial, json_t *o)
{
    for (node_api_client *c = n->api.clients; c; c = c->next)
        if (c->serial == serial && !c->closing) {
            client_send(c, o);
            return;
        }
    json_decref(o);
}

int node_api_port_subscribed(gm_node *n, const char *port)
{
    for (node_api_client *c = n->api.clients; c; c = c->next)
        if (c->subscribed && !c->closing && port_matches(c->port, port))
            return 1;
    return 0;
}

int node_port_valid(const char *p, int allow_star)
{
    return (allow_star && strcmp(p, "*") == 0) || gm_api_port_valid(p);
}

static json_t *message_event(const uint8_t from[GM_PK_LEN], const char *port, const uint8_t *data, size_t len)
{
    char pk[GM_PK_B64_LEN + 1];
    node_pk_b64(from, pk);
    char *b64 = malloc(gm_b64_len(len) + 1);
    if (!b64)
        return NULL;
    if (len)
        gm_b64_encode(data, len, b64, gm_b64_len(len) + 1);
    else
        b64[0] = 0;
    json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "event", "message", "from", pk, "port", port, "data", b64);
    free(b64);
    return o;
}


void node_api_deliver(gm_node *n, const uint8_t from[GM_PK_LEN], const char *port, const uint8_t *data, size_t len)
{
    node_api_deliver_note(n, from, port, data, len, NULL);
}

void node_api_deliver_note(gm_node *n, const uint8_t from[GM_PK_LEN], const char *port, const uint8_t *data,
                           size_t len, json_t *note)
{
    int delivered = 0;
    char *ns = NULL; /* the note as compact JSON, made for the first frames-2 subscriber */
    size_t nl = 0;
    int noted = -1;  /* 1: it goes in noted frames, 0: it does not fit in one, -1: not known yet */
    /* Capability requests for an agent of the local API (and for no agent at all) are the
     * node's to handle. */
    if (!strcmp(port, GM_AGENT_PORT) && node_agents_deliver(n, from, data, len, note))
        return;
    for (node_api_client *c = n->api.clients, *next; c; c = next) {
        next = c->next;
        if (!c->subscribed || !port_matches(c->port, port))
            continue;
        /* A provider loop's subscription takes requests only: the answers to its nested calls
         * go to the connections that made them, not to it as well. */
        if (c->requests_only && !gm_json_may_hold(data, len, "capability_request"))
            continue;
        if (c->frames && !note) {
            client_send_frame(c, from, port, data, len, NULL, 0);
            delivered = 1;
            continue;
        }
        /* Frames 2: the note travels in the frame, unless the whole would not fit in one. */
        if (c->frames >= GM_API_FRAMES_V2 && noted < 0) {
            ns = json_dumps(note, JSON_COMPACT);
            nl = ns ? strlen(ns) : 0;
            noted = ns && nl <= UINT16_MAX && GM_API_NOTE_LEN + nl + len <= node_e2e_max_data();
        }
        if (c->frames >= GM_API_FRAMES_V2 && noted) {
            client_send_frame(c, from, port, data, len, ns, nl);
            delivered = 1;
            continue;
        }
        json_t *ev = message_event(from, port, data, len);
        if (ev && note)
            json_object_set(ev, "authorized", note);
        if (ev) {
            client_send(c, ev);
            delivered = 1;
        }
    }
    json_decref(note);
    free(ns);
    if (delivered)
        return;
    /* Nobody listens yet: keep it (bounded; the oldest goes first). */
    if (n->api.inbox_len >= NODE_INBOX_MAX && n->api.inbox) {
        node_inbox_msg *old = n->api.inbox;
        n->api.inbox = old->next;
        if (!n->api.inbox)
            n->api.inbox_tail = NULL;
        n->api.inbox_len--;
        free(old->data);
        free(old);
    }
    node_inbox_msg *m = calloc(1, sizeof *m);
    if (!m)
        return;
    m->data = malloc(len ? len : 1);
    if (!m->data) {
        free(m);
        return;
    }
    memcpy(m->from, from, GM_PK_LEN);
    snprintf(m->port, sizeof m->port, "%s", port);
    if (len)
        memcpy(m->data, data, len);
    m->len = len;
    if (n->api.inbox_tail)
        n->api.inbox_tail->next = m;
    else
        n->api.inbox = m;
    n->api.inbox_tail = m;
    n->api.inbox_len++;
}

static void flush_inbox(gm_node *n, node_api_client *c)
{
    node_inbox_msg **pp = &n->api.inbox, *last = NULL;
    while (*pp) {
        node_inbox_msg *m = *pp;
        if (!port_matches(c->port, m->port) ||
            (c->requests_only && !gm_json_may_hold(m->data, m->len, "capability_request"))) {
            last = m;
            pp = &m->next;
            continue;
        }
        if (c->frames) {
            client_send_frame(c, m->from, m->port, m->data, m->len, NULL, 0);
        } else {
            json_t *ev = message_event(m->from, m->port, m->data, m->len);
            if (ev)
                client_send(c, ev);
        }
        *pp = m->next;
        n->api.inbox_len--;
        free(m->data);
        free(m);
    }
    n->api.inbox_tail = last;
}

void node_inbox_free(gm_node *n)
{
    while (n->api.inbox) {
        node_inbox_msg *m = n->api.inbox;
        n->api.inbox = m->next;
        free(m->data);
        free(m);
    }
    n->api.inbox_tail = NULL;
    n->api.inbox_len = 0;
}

json_t *node_status_json(gm_node *n)
{
    char exp[GM_TIME_STRLEN];
    gm_time_format(&n->cert.expires_at, exp);
    json_t *o = json_pack("{s:s,s:s,s:O,s:s,s:s,s:b,s:b,s:s}", "node_public_key", n->key.pk_b64, "network",
                          n->genesis.network_name, "roles", json_object_get(n->cert.doc, "roles"), "cert_id",
                          n->cert.cert_id, "expires_at", exp, "running", 1, "revoked", n->self_revoked, "listen",
                          n->conn.listen_addr);
    json_object_set_new(o, "crl_sequence", n->have_crl ? json_integer((json_int_t)n->crl.sequence) : json_null());
    if (n->have_crl) {
        char nu[GM_TIME_STRLEN];
        gm_time_format(&n->crl.next_update, nu);
        json_object_set_new(o, "crl_next_update", json_string(nu));
    }
    json_object_set_new(o, "crl_stale", json_boolean(n->crl_stale));
    json_object_set_new(o, "access_policy", node_policy_status_json(n));
    json_object_set_new(o, "genesis", node_genesis_status_json(n));
    json_object_set_new(o, "peers", node_peers_json(n));
    json_object_set_new(o, "routes", node_routes_json(n));
    json_object_set_new(o, "metrics", node_metrics_json(n));
    return o;
}

static json_t *op_send(gm_node *n, json_t *req)
{
    const char *to = json_string_value(json_object_get(req, "to"));
    const char *port = json_string_value(json_object_get(req, "port"));
    const char *data = json_string_value(json_object_get(req, "data"));
    uint8_t pk[GM_PK_LEN];
    gm_error err = {0};
    if (!port)
        port = "default";
    if (!to || gm_pk_decode(to, pk, &err) != 0)
        return api_error("invalid_request", "\"to\" must be a node public key (base64, 44 characters)");
    if (!node_port_valid(port, 0))
        return api_error("invalid_request", "\"port\" must be 1-32 characters of [a-z0-9._-]");
    if (!data)
        return api_error("invalid_request", "\"data\" must be a base64 string");
    size_t dlen = strlen(data), len = 0;
    if (dlen > gm_b64_len(node_e2e_max_data()))
        return api_error("too_big", "message too large");
    uint8_t *buf = malloc(dlen / 4 * 3 + 3);
    if (!buf)
        return api_error("internal", "out of memory");
    if (dlen && gm_b64_decode(data, buf, dlen / 4 * 3 + 3, &len, &err) != 0) {
        free(buf);
        return api_error("invalid_request", "\"data\" is not valid base64");
    }
    int rc = node_e2e_send(n, pk, port, buf, len, &err);
    sodium_memzero(buf, len);
    free(buf);
    if (rc != 0)
        n->m.api_send_failed++;
    if (rc == GM_ENOTFOUND)
        return api_error("no_route", err.msg);
    if (rc == GM_ETOOBIG)
        return api_error("too_big", err.msg);
    if (rc != 0)
        return api_error(gm_err_name(rc), err.msg);
    return json_pack("{s:b}", "ok", 1);
}

/* 1 if id is a request id: a string of 1..64 printable ASCII characters, or an integer. */
static int id_valid(const json_t *id)
{
    if (json_is_integer(id))
        return 1;
    const char *s = json_string_value(id);
    size_t l = s ? strlen(s) : 0;
    if (l == 0 || l > NODE_API_ID_MAX || l != json_string_length(id))
        return 0;
    for (; *s; s++)
        if (*s < 0x20 || *s > 0x7e)
            return 0;
    return 1;
}

json_t *node_api_check_request(const json_t *req, int version, const char **op, const json_t **id)
{
    *op = NULL;
    *id = NULL;
    if (!json_is_object(req) || !json_is_string(json_object_get(req, "op")))
        return api_error("invalid_request", "expected a JSON object with \"op\"");
    *op = json_string_value(json_object_get(req, "op"));
    const json_t *i = json_object_get(req, "id");
    /* Version 1 clients never needed ids: a bad one there is ignored, as before (but not in hello). */
    if (i && id_valid(i))
        *id = i;
    else if (version >= 2 || (i && !strcmp(*op, "hello")))
        return api_error("invalid_request", "\"id\" is required: a string of 1 to 64 printable ASCII characters, or an integer");
    const json_t *d = json_object_get(req, "deadline_ms");
    if (d && (!json_is_integer(d) || json_integer_value(d) < 1 || json_integer_value(d) > NODE_API_DEADLINE_MAX_MS))
        return api_error("invalid_request", "\"deadline_ms\" must be an integer from 1 to 600000");
    return NULL;
}

int node_api_hello_version(const json_t *req, char *why, size_t why_len)
{
    const json_t *vs = json_object_get(req, "versions");
    size_t nv = json_array_size(vs);
    if (!json_is_array(vs) || nv < 1 || nv > 16) {
        snprintf(why, why_len, "\"versions\" must be an array of 1 to 16 integers (this node speaks 1 to %d)",
                 NODE_API_VERSION);
        return -1;
    }
    int best = 0;
    for (size_t i = 0; i < nv; i++) {
        const json_t *v = json_array_get(vs, i);
        if (!json_is_integer(v)) {
            snprintf(why, why_len, "\"versions\" must hold integers only");
            return -1;
        }
        json_int_t x = json_integer_value(v);
        if (x >= 1 && x <= NODE_API_VERSION && x > best)
            best = (int)x;
    }
    if (!best)
        snprintf(why, why_len, "none of the offered versions is spoken here: this node speaks versions 1 to %d",
                 NODE_API_VERSION);
    return best;
}

/* The operations of each version, in the order `hello` lists them. */
static const char *const api_ops[] = {"hello", "status", "peers", "routes", "metrics", "crl", "send", "subscribe",
                                      "provide", "withdraw", "answer", "ask", "discover", "unsubscribe"};
#define API_OPS_V1 8

static json_t *op_hello(gm_node *n, node_api_client *c, const json_t *req)
{
    char why[200];
    if (c->hello_done)
        return api_error("invalid_request", "hello was already sent on this connection");
    int v = node_api_hello_version(req, why, sizeof why);
    const json_t *fr = json_object_get(req, "frames"), *fm = json_object_get(req, "frames_max");
    if (v < 0)
        return api_error("invalid_request", why);
    if (fr && !json_is_integer(fr))
        return api_error("invalid_request", "\"frames\" must be an integer: 2 (or 1) for binary frames, 0 for JSON only");
    if (fm && !json_is_integer(fm))
        return api_error("invalid_request", "\"frames_max\" must be an integer: the highest frames version the "
                                            "client speaks");
    if (v == 0)
        return api_error("unsupported_version", why);
    c->version = v;
    c->hello_done = 1;
    /* The highest frames version not above the one asked (a newer client gets ours); 0 or less
     * keeps the connection JSON only. */
    json_int_t fv = json_integer_value(fr);
    /* "frames":1 with "frames_max":2 asks 2 of us and 1 of a node from before version 2 (which
     * answers any other "frames" with 0) */
    if (fv >= GM_API_FRAMES_V1 && json_integer_value(fm) > fv)
        fv = json_integer_value(fm);
    c->frames = fv >= GM_API_FRAMES_VERSION ? GM_API_FRAMES_VERSION : fv == GM_API_FRAMES_V1 ? GM_API_FRAMES_V1 : 0;
    if (c->frames) {
        int sz = API_FRAMES_SNDBUF;
        (void)uv_send_buffer_size((uv_handle_t *)&c->pipe, &sz);
    }
    json_t *ops = json_array(), *versions = json_array();
    for (size_t i = 0; i < (v >= 2 ? sizeof api_ops / sizeof api_ops[0] : API_OPS_V1); i++)
        json_array_append_new(ops, json_string(api_ops[i]));
    for (int i = 1; i <= NODE_API_VERSION; i++)
        json_array_append_new(versions, json_integer(i));
    json_t *r = json_pack("{s:b,s:i,s:o,s:s,s:s,s:i,s:o,s:o}", "ok", 1, "version", v, "versions", versions,
                     "node_public_key", n->key.pk_b64, "network", n->genesis.network_name, "max_line",
                     NODE_API_LINE_MAX, "ops", ops, "limits", node_agents_limits_json());
    if (r && fr) {
        json_object_set_new(r, "frames", json_integer(c->frames));
        if (c->frames)
            json_object_set_new(r, "max_frame_data", json_integer((json_int_t)node_e2e_max_data()));
    }
    return r;
}

/* 1 when req's "quiet" (success not answered, failures still are) is absent or a boolean, with
 * *quiet its value; else 0 with *resp the error. */
static int quiet_ok(const json_t *req, int *quiet, json_t **resp)
{
    const json_t *q = json_object_get(req, "quiet");
    *quiet = json_is_true(q);
    if (!q || json_is_boolean(q))
        return 1;
    *resp = api_error("invalid_request", "\"quiet\" must be true or false");
    return 0;
}

static void handle_line(node_api_client *c, const char *line, size_t len)
{
    gm_node *n = c->node;
    json_t *req = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL), *resp;
    const char *op;
    int quiet;
    const json_t *id;
    if ((resp = node_api_check_request(req, c->version, &op, &id)) != NULL) {
    } else if (!strcmp(op, "hello")) {
        resp = op_hello(n, c, req);
    } else if (!strcmp(op, "status")) {
        resp = node_status_json(n);
        json_object_set_new(resp, "ok", json_true());
    } else if (!strcmp(op, "peers")) {
        resp = json_pack("{s:b,s:o}", "ok", 1, "peers", node_peers_json(n));
    } else if (!strcmp(op, "routes")) {
        resp = json_pack("{s:b,s:o}", "ok", 1, "routes", node_routes_json(n));
    } else if (!strcmp(op, "metrics")) {
        char *text = node_metrics_prometheus(n);
        resp = json_pack("{s:b,s:s,s:o}", "ok", 1, "text", text ? text : "", "metrics", node_metrics_json(n));
        free(text);
    } else if (!strcmp(op, "crl")) {
        resp = json_pack("{s:b}", "ok", 1);
        json_object_set_new(resp, "sequence", n->have_crl ? json_integer((json_int_t)n->crl.sequence) : json_null());
        json_object_set_new(resp, "crl", n->have_crl ? json_deep_copy(n->crl.doc) : json_null());
    } else if (!strcmp(op, "send")) {
        resp = op_send(n, req);
    } else if (!strcmp(op, "subscribe")) {
        const char *port = json_string_value(json_object_get(req, "port"));
        const json_t *ro = json_object_get(req, "requests_only");
        if (!port)
            port = "*";
        if (!node_port_valid(port, 1)) {
            resp = api_error("invalid_request", "\"port\" must be \"*\" or 1-32 characters of [a-z0-9._-]");
        } else if (ro && !json_is_boolean(ro)) {
            resp = api_error("invalid_request", "\"requests_only\" must be true or false");
        } else if (quiet_ok(req, &quiet, &resp)) {
            snprintf(c->port, sizeof c->port, "%s", port);
            c->subscribed = 1;
            c->requests_only = json_is_true(ro);
            n->m.api_subscribes++;
            if (!quiet) {
                json_t *ok = json_pack("{s:b}", "ok", 1);
                if (id)
                    json_object_set(ok, "id", (json_t *)id);
                client_send(c, ok);
            }
            flush_inbox(n, c);
        }
    } else if (!strcmp(op, "unsubscribe") && c->version >= 2) {
        /* No more messages on this connection until it subscribes again (a requester parks
         * its connection between calls); what was already queued to it still comes. */
        if (quiet_ok(req, &quiet, &resp)) {
            c->subscribed = 0;
            c->port[0] = '\0';
            n->m.api_unsubscribes++;
            if (!quiet)
                resp = json_pack("{s:b}", "ok", 1);
        }
    } else if (node_agents_op_known(op)) {
        if (c->version < 2)
            resp = api_error("hello_required", "this operation needs protocol version 2: send "
                                               "{\"op\":\"hello\",\"id\":1,\"versions\":[2]} first");
        else
            resp = node_agents_op(n, c->serial, op, req, id);
    } else {
        char msg[256];
        snprintf(msg, sizeof msg, "unknown op \"%.64s\" (version %d has: hello, status, peers, routes, metrics, crl, "
                 "send, subscribe%s)", op, c->version, c->version >= 2 ? ", provide, withdraw, answer, ask, discover, unsubscribe" : "");
        resp = api_error("unknown_op", msg);
    }
    if (resp) {
        if (id)
            json_object_set(resp, "id", (json_t *)id);
        else if (c->version >= 2)
            json_object_set_new(resp, "id", json_null());
        client_send(c, resp);
    }
    json_decref(req);
}

/* 1 when line is a `send` whose destination's next hop is congested: it must wait. */
static int line_must_wait(node_api_client *c, const char *line, size_t len)
{
    gm_node *n = c->node;
    uint8_t pk[GM_PK_LEN];
    /* Nothing congested (the usual case): no need to look inside. */
    if (!node_any_congested(n) && node_e2e_backlog(n, NULL) < NODE_E2E_BACKLOG_MAX)
        return 0;
    json_t *req = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
    const char *op = json_string_value(json_object_get(req, "op"));
    const char *to = json_string_value(json_object_get(req, "to"));
    int wait = op && !strcmp(op, "send") && to && gm_pk_decode(to, pk, NULL) == 0 && node_send_blocked(n, pk);
    json_decref(req);
    return wait;
}

/* 1 when byte b starts a binary frame on c (never the first byte of a JSON line). */
static int starts_frame(const node_api_client *c, char b)
{
    return c->frames && (b == GM_API_FRAME_SEND || b == GM_API_FRAME_MESSAGE);
}

static void send_failed(node_api_client *c, uint32_t seq, const char *code, const char *msg)
{
    c->node->m.api_send_failed++;
    client_send(c, json_pack("{s:s,s:I,s:{s:s,s:s}}", "event", "send_failed", "seq", (json_int_t)seq, "error",
                             "code", code, "message", msg));
}

/* A send frame: its payload goes to the end-to-end layer from where it was read. */
static void handle_frame(node_api_client *c, const gm_api_frame *f, const uint8_t *data)
{
    gm_node *n = c->node;
    gm_error err = {0};
    n->m.api_frames_in++;
    int rc = node_e2e_send(n, f->key, f->port, data, f->len, &err);
    if (rc == GM_ENOTFOUND)
        send_failed(c, f->seq, "no_route", err.msg);
    else if (rc == GM_ETOOBIG)
        send_failed(c, f->seq, "too_big", err.msg);
    else if (rc != 0)
        send_failed(c, f->seq, "internal", err.msg);
    else if (f->flags & GM_API_FRAME_F_ACK)
        client_send(c, json_pack("{s:s,s:I}", "event", "sent", "seq", (json_int_t)f->seq));
}

/* The frame at off: 1 complete (f filled), 0 incomplete, -1 bad (the client is told, closed). */
static int frame_at(node_api_client *c, gm_api_frame *f)
{
    char why[160];
    int r = gm_api_frame_parse((const uint8_t *)c->buf + c->off, c->len - c->off, node_e2e_max_data(), f, why,
                                 sizeof why);
    if (r > 0 && f->type != GM_API_FRAME_SEND) {
        snprintf(why, sizeof why, "a client sends only send frames (type 1)");
        r = -1;
    }
    if (r < 0) {
        client_send(c, api_error("invalid_request", why));
        client_close(c);
        return -1;
    }
    if (r == 0 || f->too_big)
        return r;
    return c->len - c->off >= f->head + f->len;
}

static void client_pause(node_api_client *c)
{
    c->paused = 1;
    node_paused_add(c->node, 1);
    c->node->m.api_paused++;
    uv_read_stop((uv_stream_t *)&c->pipe);
}

/* Handle the complete lines and frames received, until one has to wait (then stop reading). */
static void client_process(node_api_client *c)
{
    gm_node *n = c->node;
    while (!c->closing && !c->paused && c->off < c->len) {
        if (c->skip) {
            size_t k = c->len - c->off < c->skip ? c->len - c->off : (size_t)c->skip;
            c->off += k;
            c->skip -= k;
            continue;
        }
        if (starts_frame(c, c->buf[c->off])) {
            gm_api_frame f;
            int r = frame_at(c, &f);
            if (r <= 0)
                break;
            if (f.too_big) {
                char msg[120];
                snprintf(msg, sizeof msg, "message of %u bytes is larger than %zu", f.len, node_e2e_max_data());
                c->off += f.head;
                c->skip = f.len;
                send_failed(c, f.seq, "too_big", msg);
                continue;
            }
            if (node_send_blocked(n, f.key)) {
                client_pause(c);
                break;
            }
            const uint8_t *data = (const uint8_t *)c->buf + c->off + f.head;
            c->off += f.head + f.len;
            handle_frame(c, &f, data);
            continue;
        }
        char *start = c->buf + c->off, *nl = memchr(start, '\n', c->len - c->off);
        if (!nl) {
            if (c->len - c->off > NODE_API_LINE_MAX) {
                client_send(c, api_error("too_big", "request line too long"));
                client_close(c);
            }
            break;
        }
        size_t len = (size_t)(nl - start);
        if (len > NODE_API_LINE_MAX) {
            client_send(c, api_error("too_big", "request line too long"));
            client_close(c);
            break;
        }
        if (len && line_must_wait(c, start, len)) {
            client_pause(c);
            break;
        }
        c->off += len + 1;
        if (len)
            handle_line(c, start, len);
    }
    if (c->off == c->len) {
        c->off = c->len = 0;
    } else if (c->off > 0 && !c->paused) {
        memmove(c->buf, c->buf + c->off, c->len - c->off);
        c->len -= c->off;
        c->off = 0;
    }
}

/* Reads go straight into the connection's buffer, grown to hold a whole line or frame. */
static void client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    node_api_client *c = h->data;
    (void)suggested;
    buf->base = NULL;
    buf->len = 0;
    size_t want = c->frames ? API_READ_FRAMES : API_READ_MIN;
    if (c->cap - c->len < want) {
        size_t nc = c->cap ? c->cap : API_READ_MIN;
        while (nc - c->len < want)
            nc *= 2;
        char *p = realloc(c->buf, nc);
        if (!p)
            return; /* the read callback gets UV_ENOBUFS and closes */
        c->buf = p;
        c->cap = nc;
    }
    buf->base = c->buf + c->len;
    buf->len = c->cap - c->len;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    node_api_client *c = s->data;
    (void)buf;
    if (nread < 0) {
        client_close(c);
        return;
    }
    if (c->closing || c->overflow)
        return;
    c->len += (size_t)nread;
    client_process(c);
}

/* 1 when the unit c paused on (a complete line or frame at off) still has to wait. */
static int unit_must_wait(node_api_client *c)
{
    if (starts_frame(c, c->buf[c->off])) {
        gm_api_frame f;
        char why[160];
        return gm_api_frame_parse((const uint8_t *)c->buf + c->off, c->len - c->off, node_e2e_max_data(), &f, why,
                                    sizeof why) > 0 &&
               node_send_blocked(c->node, f.key);
    }
    char *start = c->buf + c->off, *nl = memchr(start, '\n', c->len - c->off);
    return nl && line_must_wait(c, start, (size_t)(nl - start));
}

void node_api_resume(gm_node *n)
{
    for (node_api_client *c = n->api.clients; c; c = c->next) {
        if (!c->paused || c->closing)
            continue;
        if (unit_must_wait(c))
            continue;
        c->paused = 0;
        node_paused_add(n, -1);
        client_process(c);
        if (!c->paused && !c->closing && !c->overflow)
            uv_read_start((uv_stream_t *)&c->pipe, client_alloc, on_read);
    }
}

static void on_api_connection(uv_stream_t *server, int status)
{
    gm_node *n = server->data;
    if (status < 0)
        return;
    node_api_client *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->node = n;
    c->version = 1;
    c->serial = ++n->api.next_serial;
    uv_pipe_init(n->loop, &c->pipe, 0);
    c->pipe.data = c;
    c->next = n->api.clients;
    n->api.clients = c;
    n->api.n_clients++;
    if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0 || n->stopping || n->api.n_clients > NODE_API_MAX_CLIENTS) {
        client_close(c);
        return;
    }
    n->m.api_accepted++;
    uv_read_start((uv_stream_t *)&c->pipe, client_alloc, on_read);
}

/* 1 if something accepts connections on path (another node is running). */
static int socket_alive(const char *path)
{
    struct sockaddr_un sa;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    int ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

int node_api_start(gm_node *n, gm_error *err)
{
    node_agents_init(n);
    int rc = gm_path_join(n->api.sock_path, sizeof n->api.sock_path, n->dir, "node.sock", err);
    if (rc != 0)
        return rc;
    if (strlen(n->api.sock_path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return gm_error_set(err, GM_EINVAL, "socket path %s is too long for a Unix socket; use a shorter --dir",
                            n->api.sock_path);
    if (gm_file_exists(n->api.sock_path)) {
        if (socket_alive(n->api.sock_path))
            return gm_error_set(err, GM_EEXIST, "a node is already running in %s (%s answers)", n->dir, n->api.sock_path);
        unlink(n->api.sock_path);
    }
    uv_pipe_init(n->loop, &n->api.pipe, 0);
    n->api.pipe.data = n;
    n->api.open = 1;
    mode_t old = umask(0177);
    rc = uv_pipe_bind(&n->api.pipe, n->api.sock_path);
    umask(old);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&n->api.pipe, 16, on_api_connection);
    if (rc != 0)
        return gm_error_set(err, GM_EIO, "cannot listen on %s: %s", n->api.sock_path, uv_strerror(rc));
    chmod(n->api.sock_path, 0600);
    return 0;
}

void node_api_shutdown(gm_node *n)
{
    while (n->api.clients)
        client_close(n->api.clients);
    if (n->api.open) {
        n->api.open = 0;
        uv_close((uv_handle_t *)&n->api.pipe, NULL);
        unlink(n->api.sock_path);
    }
}
