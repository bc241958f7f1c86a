/* Peer-link wire formats: length-prefixed carrier frames and the typed transport
 * messages inside them (layout in lib/net/wire.h and docs/protocol.md). */
#include <stdlib.h>
#include <string.h>

#include "wire.h"

struct gm_wire_reader {
    size_t max_frame;
    uint8_t hdr[GM_WIRE_FRAME_HEADER];
    size_t hdr_have;
    size_t need; /* body length, once the header is complete */
    size_t have; /* body bytes buffered */
    int failed;  /* sticky error code */
    uint8_t *buf; /* only for frames split across feeds; grown to the frame's size */
    size_t cap;
};

/* A buffer at most this large is kept between frames; a larger one is freed once its frame
 * was handed out, so an idle link holds no frame-sized memory. */
#define READER_KEEP 2048

static uint16_t get16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static uint32_t get32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

/* ---- carrier framing ---- */

int gm_wire_frame_header(size_t len, uint8_t hdr[GM_WIRE_FRAME_HEADER], gm_error *err)
{
    if (len == 0 || len > GM_WIRE_FRAME_MAX)
        return gm_error_set(err, GM_ETOOBIG, "frame body of %zu bytes: must be 1..%d", len,
                            GM_WIRE_FRAME_MAX);
    put16(hdr, (uint16_t)len);
    return 0;
}

int gm_wire_frame_encode(const uint8_t *body, size_t len, uint8_t *out, size_t cap,
                         size_t *out_len, gm_error *err)
{
    uint8_t hdr[GM_WIRE_FRAME_HEADER];
    int rc = gm_wire_frame_header(len, hdr, err);
    if (rc < 0)
        return rc;
    if (!body || !out || cap < len + GM_WIRE_FRAME_HEADER)
        return gm_error_set(err, GM_ETOOBIG, "frame of %zu bytes does not fit a %zu-byte buffer",
                            len + GM_WIRE_FRAME_HEADER, cap);
    /* memmove: body may already sit at out + 2 (framing in place). */
    memmove(out + GM_WIRE_FRAME_HEADER, body, len);
    memcpy(out, hdr, GM_WIRE_FRAME_HEADER);
    *out_len = len + GM_WIRE_FRAME_HEADER;
    return 0;
}

int gm_wire_reader_new(gm_wire_reader_t **out, size_t max_frame, gm_error *err)
{
    *out = NULL;
    if (max_frame == 0 || max_frame > GM_WIRE_FRAME_MAX)
        return gm_error_set(err, GM_EINVAL, "frame size limit %zu: must be 1..%d", max_frame,
                            GM_WIRE_FRAME_MAX);
    gm_wire_reader_t *r = calloc(1, sizeof *r);
    if (!r)
        return gm_error_set(err, GM_ENOMEM, "out of memory for a frame reader");
    r->max_frame = max_frame;
    *out = r;
    return 0;
}

void gm_wire_reader_free(gm_wire_reader_t *r)
{
    if (!r)
        return;
    free(r->buf);
    free(r);
}

size_t gm_wire_reader_mem(const gm_wire_reader_t *r) { return sizeof *r + r->cap; }

/* Room for the current frame's body (r->need <= max_frame bytes, known from its header). */
static int reader_reserve(gm_wire_reader_t *r, gm_error *err)
{
    if (r->cap >= r->need)
        return 0;
    size_t cap = r->need;
    uint8_t *p = realloc(r->buf, cap);
    if (!p) {
        r->failed = GM_ENOMEM;
        return gm_error_set(err, GM_ENOMEM, "out of memory for a %zu-byte frame", r->need);
    }
    r->buf = p;
    r->cap = cap;
    return 0;
}

size_t gm_wire_reader_pending(const gm_wire_reader_t *r) { return r->hdr_have + r->have; }

static int reader_fail(gm_wire_reader_t *r, int code, gm_error *err, const char *what, size_t n)
{
    r->failed = code;
    return gm_error_set(err, code, "peer sent a %s frame (%zu bytes, limit %zu): closing", what,
                        n, r->max_frame);
}

int gm_wire_reader_feed(gm_wire_reader_t *r, const uint8_t *data, size_t len, size_t *consumed,
                        const uint8_t **frame, size_t *frame_len, gm_error *err)
{
    size_t off = 0;
    *consumed = 0;
    *frame = NULL;
    *frame_len = 0;
    if (r->failed)
        return gm_error_set(err, r->failed, "frame stream already failed: close the connection");
    if (!data && len)
        return gm_error_set(err, GM_EINVAL, "no input buffer");
    /* The previous frame (which may live in buf) is no longer needed. */
    if (r->have == 0 && r->cap > READER_KEEP) {
        free(r->buf);
        r->buf = NULL;
        r->cap = 0;
    }
    while (off < len) {
        if (r->hdr_have < GM_WIRE_FRAME_HEADER) {
            r->hdr[r->hdr_have++] = data[off++];
            *consumed = off;
            if (r->hdr_have == GM_WIRE_FRAME_HEADER) {
                r->need = get16(r->hdr);
                r->have = 0;
                if (r->need == 0)
                    return reader_fail(r, GM_EPROTO, err, "zero-length", 0);
                if (r->need > r->max_frame)
                    return reader_fail(r, GM_ETOOBIG, err, "oversized", r->need);
            }
            continue;
        }
        /* Whole body already in the caller's buffer: hand it out without copying. */
        if (r->have == 0 && len - off >= r->need) {
            *frame = data + off;
            *frame_len = r->need;
            off += r->need;
        } else {
            if (reader_reserve(r, err) != 0)
                return r->failed;
            size_t take = r->need - r->have;
            if (take > len - off)
                take = len - off;
            memcpy(r->buf + r->have, data + off, take);
            r->have += take;
            off += take;
            if (r->have < r->need)
                break;
            *frame = r->buf;
            *frame_len = r->need;
        }
        r->hdr_have = 0;
        r->have = 0;
        r->need = 0;
        *consumed = off;
        return 1;
    }
    *consumed = off;
    return 0;
}

/* ---- transport messages ---- */

const char *gm_wire_type_name(uint8_t type)
{
    switch (type) {
    case GM_WIRE_ROUTE_UPDATE: return "ROUTE_UPDATE";
    case GM_WIRE_DATA: return "DATA";
    case GM_WIRE_CRL_ANNOUNCE: return "CRL_ANNOUNCE";
    case GM_WIRE_CRL_REQUEST: return "CRL_REQUEST";
    case GM_WIRE_CRL_DATA: return "CRL_DATA";
    case GM_WIRE_PING: return "PING";
    case GM_WIRE_PONG: return "PONG";
    case GM_WIRE_CLOSE: return "CLOSE";
    case GM_WIRE_CERT: return "CERT";
    case GM_WIRE_POLICY_ANNOUNCE: return "POLICY_ANNOUNCE";
    case GM_WIRE_POLICY_REQUEST: return "POLICY_REQUEST";
    case GM_WIRE_POLICY_DATA: return "POLICY_DATA";
    case GM_WIRE_GENESIS_ANNOUNCE: return "GENESIS_ANNOUNCE";
    case GM_WIRE_GENESIS_REQUEST: return "GENESIS_REQUEST";
    case GM_WIRE_GENESIS_DATA: return "GENESIS_DATA";
    default: return "unknown";
    }
}

const char *gm_wire_close_reason_name(uint8_t reason)
{
    switch (reason) {
    case GM_WIRE_CLOSE_NORMAL: return "normal";
    case GM_WIRE_CLOSE_PROTOCOL: return "protocol_error";
    case GM_WIRE_CLOSE_REVOKED: return "revoked";
    case GM_WIRE_CLOSE_BAD_CERT: return "bad_certificate";
    case GM_WIRE_CLOSE_SHUTDOWN: return "shutdown";
    case GM_WIRE_CLOSE_OVERLOADED: return "overloaded";
    case GM_WIRE_CLOSE_TIMEOUT: return "timeout";
    case GM_WIRE_CLOSE_FORBIDDEN: return "forbidden";
    default: return "unknown";
    }
}

int gm_wire_msg_type(const uint8_t *msg, size_t len, uint8_t *type, gm_error *err)
{
    if (!msg || len == 0)
        return gm_error_set(err, GM_EPROTO, "empty transport message");
    if (len > GM_WIRE_MSG_MAX)
        return gm_error_set(err, GM_EPROTO, "transport message of %zu bytes exceeds %d", len,
                            GM_WIRE_MSG_MAX);
    if (strcmp(gm_wire_type_name(msg[0]), "unknown") == 0)
        return gm_error_set(err, GM_EPROTO, "unknown message type %u", msg[0]);
    *type = msg[0];
    return 0;
}

/* Common checks of a message of the expected type: present, bounded, right type. */
static int check_msg(const uint8_t *msg, size_t len, uint8_t type, gm_error *err)
{
    uint8_t got = 0;
    int rc = gm_wire_msg_type(msg, len, &got, err);
    if (rc < 0)
        return rc;
    if (got != type)
        return gm_error_set(err, GM_EPROTO, "expected a %s message, got %s",
                            gm_wire_type_name(type), gm_wire_type_name(got));
    return 0;
}

static int check_out(uint8_t *out, size_t cap, size_t need, const char *what, gm_error *err)
{
    if (!out || cap < need)
        return gm_error_set(err, GM_ETOOBIG, "%s message needs %zu bytes, buffer has %zu", what,
                            need, cap);
    return 0;
}

/* Fixed-size messages: type || u64 (CRL_ANNOUNCE, PING, PONG). */
static int u64_encode(uint8_t type, uint64_t v, uint8_t *out, size_t cap, size_t *out_len,
                      gm_error *err)
{
    int rc = check_out(out, cap, 9, gm_wire_type_name(type), err);
    if (rc < 0)
        return rc;
    out[0] = type;
    put64(out + 1, v);
    *out_len = 9;
    return 0;
}

static int u64_decode(uint8_t type, const uint8_t *msg, size_t len, uint64_t *v, gm_error *err)
{
    int rc = check_msg(msg, len, type, err);
    if (rc < 0)
        return rc;
    if (len != 9)
        return gm_error_set(err, GM_EPROTO, "%s message must be 9 bytes, got %zu",
                            gm_wire_type_name(type), len);
    *v = get64(msg + 1);
    return 0;
}

/* Opaque documents: type || bytes (CERT). */
static int blob_encode(uint8_t type, const uint8_t *b, size_t blen, uint8_t *out, size_t cap,
                       size_t *out_len, gm_error *err)
{
    if (!b || blen == 0 || blen > GM_WIRE_BLOB_MAX)
        return gm_error_set(err, GM_ETOOBIG, "%s document of %zu bytes: must be 1..%d",
                            gm_wire_type_name(type), blen, GM_WIRE_BLOB_MAX);
    int rc = check_out(out, cap, blen + 1, gm_wire_type_name(type), err);
    if (rc < 0)
        return rc;
    memmove(out + 1, b, blen);
    out[0] = type;
    *out_len = blen + 1;
    return 0;
}

static int blob_decode(uint8_t type, const uint8_t *msg, size_t len, const uint8_t **b,
                       size_t *blen, gm_error *err)
{
    int rc = check_msg(msg, len, type, err);
    if (rc < 0)
        return rc;
    if (len < 2)
        return gm_error_set(err, GM_EPROTO, "%s message carries no document",
                            gm_wire_type_name(type));
    *b = msg + 1;
    *blen = len - 1;
    return 0;
}

static int route_entry_check(const gm_wire_route_entry *e, gm_error *err)
{
    if (e->request && (e->metric != GM_WIRE_METRIC_INF || e->has_cert_id || e->hops == 0))
        return gm_error_set(err, GM_EPROTO,
                            "seqno request entry must have metric 0xFFFF, hops >= 1, no cert_id");
    if (e->has_origin && (e->request || !e->has_cert_id))
        return gm_error_set(err, GM_EPROTO,
                            "route origin only on a route entry that names a cert_id");
    return 0;
}

static size_t route_entry_size(const gm_wire_route_entry *e)
{
    return 44 + (e->has_cert_id ? GM_WIRE_CERT_ID_LEN : 0) + (e->has_origin ? GM_WIRE_ORIGIN_LEN : 0);
}

size_t gm_wire_route_update_size(const gm_wire_route_entry *entries, size_t n)
{
    size_t s = 3;
    for (size_t i = 0; i < n; i++)
        s += route_entry_size(&entries[i]);
    return s;
}

int gm_wire_route_update_encode(const gm_wire_route_entry *entries, size_t n, uint8_t *out,
                                size_t cap, size_t *out_len, gm_error *err)
{
    if (!entries || n == 0 || n > GM_WIRE_ROUTE_MAX_ENTRIES)
        return gm_error_set(err, GM_EINVAL, "route update must carry 1..%d entries, not %zu",
                            GM_WIRE_ROUTE_MAX_ENTRIES, n);
    for (size_t i = 0; i < n; i++) {
        int rc = route_entry_check(&entries[i], err);
        if (rc < 0)
            return rc;
    }
    size_t need = gm_wire_route_update_size(entries, n);
    int rc = check_out(out, cap, need, "ROUTE_UPDATE", err);
    if (rc < 0)
        return rc;
    uint8_t *p = out;
    *p++ = GM_WIRE_ROUTE_UPDATE;
    put16(p, (uint16_t)n);
    p += 2;
    for (size_t i = 0; i < n; i++) {
        const gm_wire_route_entry *e = &entries[i];
        memcpy(p, e->dest, GM_WIRE_KEY_LEN);
        p += GM_WIRE_KEY_LEN;
        put64(p, e->seqno);
        p += 8;
        put16(p, e->metric);
        p += 2;
        *p++ = e->hops;
        *p++ = (uint8_t)((e->has_cert_id ? GM_WIRE_ROUTE_F_CERT_ID : 0) |
                         (e->request ? GM_WIRE_ROUTE_F_REQUEST : 0) |
                         (e->has_origin ? GM_WIRE_ROUTE_F_ORIGIN : 0));
        if (e->has_cert_id) {
            memcpy(p, e->cert_id, GM_WIRE_CERT_ID_LEN);
            p += GM_WIRE_CERT_ID_LEN;
        }
        if (e->has_origin) {
            put64(p, e->origin.time);
            memcpy(p + 8, e->origin.first_hop, GM_WIRE_KEY_LEN);
            memcpy(p + 8 + GM_WIRE_KEY_LEN, e->origin.sig, GM_WIRE_ORIGIN_SIG_LEN);
            p += GM_WIRE_ORIGIN_LEN;
        }
    }
    *out_len = (size_t)(p - out);
    return 0;
}

int gm_wire_route_update_decode(const uint8_t *msg, size_t len, gm_wire_route_entry *entries,
                                size_t cap, size_t *n, gm_error *err)
{
    int rc = check_msg(msg, len, GM_WIRE_ROUTE_UPDATE, err);
    if (rc < 0)
        return rc;
    if (len < 3)
        return gm_error_set(err, GM_EPROTO, "ROUTE_UPDATE truncated before its entry count");
    size_t count = get16(msg + 1);
    if (count == 0 || count > GM_WIRE_ROUTE_MAX_ENTRIES)
        return gm_error_set(err, GM_EPROTO, "ROUTE_UPDATE with %zu entries (allowed 1..%d)",
                            count, GM_WIRE_ROUTE_MAX_ENTRIES);
    if (count > cap)
        return gm_error_set(err, GM_ETOOBIG, "ROUTE_UPDATE with %zu entries, room for %zu",
                            count, cap);
    size_t off = 3;
    for (size_t i = 0; i < count; i++) {
        if (len - off < 44)
            return gm_error_set(err, GM_EPROTO, "ROUTE_UPDATE truncated in entry %zu", i);
        gm_wire_route_entry *e = &entries[i];
        memset(e, 0, sizeof *e);
        memcpy(e->dest, msg + off, GM_WIRE_KEY_LEN);
        e->seqno = get64(msg + off + 32);
        e->metric = get16(msg + off + 40);
        e->hops = msg[off + 42];
        uint8_t flags = msg[off + 43];
        off += 44;
        if (flags & ~(GM_WIRE_ROUTE_F_CERT_ID | GM_WIRE_ROUTE_F_REQUEST | GM_WIRE_ROUTE_F_ORIGIN))
            return gm_error_set(err, GM_EPROTO, "ROUTE_UPDATE entry %zu has unknown flags 0x%02x",
                                i, flags);
        e->request = (flags & GM_WIRE_ROUTE_F_REQUEST) != 0;
        if (flags & GM_WIRE_ROUTE_F_CERT_ID) {
            if (len - off < GM_WIRE_CERT_ID_LEN)
                return gm_error_set(err, GM_EPROTO, "ROUTE_UPDATE truncated in entry %zu cert_id",
                                    i);
            e->has_cert_id = 1;
            memcpy(e->cert_id, msg + off, GM_WIRE_CERT_ID_LEN);
            off += GM_WIRE_CERT_ID_LEN;
        }
        if (flags & GM_WIRE_ROUTE_F_ORIGIN) {
            if (len - off < GM_WIRE_ORIGIN_LEN)
                return gm_error_set(err, GM_EPROTO, "ROUTE_UPDATE truncated in entry %zu origin",
                                    i);
            e->has_origin = 1;
            e->origin.time = get64(msg + off);
            memcpy(e->origin.first_hop, msg + off + 8, GM_WIRE_KEY_LEN);
            memcpy(e->origin.sig, msg + off + 8 + GM_WIRE_KEY_LEN, GM_WIRE_ORIGIN_SIG_LEN);
            off += GM_WIRE_ORIGIN_LEN;
        }
        rc = route_entry_check(e, err);
        if (rc < 0)
            return rc;
    }
    if (off != len)
        return gm_error_set(err, GM_EPROTO, "ROUTE_UPDATE has %zu trailing bytes", len - off);
    *n = count;
    return 0;
}

int gm_wire_data_encode(const gm_wire_data *d, uint8_t *out, size_t cap, size_t *out_len,
                        gm_error *err)
{
    if (!d->payload || d->payload_len == 0 || d->payload_len > GM_WIRE_DATA_PAYLOAD_MAX)
        return gm_error_set(err, GM_ETOOBIG, "DATA payload of %zu bytes: must be 1..%d",
                            d->payload_len, GM_WIRE_DATA_PAYLOAD_MAX);
    int rc = check_out(out, cap, GM_WIRE_DATA_HEADER + d->payload_len, "DATA", err);
    if (rc < 0)
        return rc;
    if (d->payload != out + GM_WIRE_DATA_HEADER)
        memmove(out + GM_WIRE_DATA_HEADER, d->payload, d->payload_len);
    out[0] = GM_WIRE_DATA;
    memcpy(out + 1, d->src, GM_WIRE_KEY_LEN);
    memcpy(out + 1 + GM_WIRE_KEY_LEN, d->dst, GM_WIRE_KEY_LEN);
    out[GM_WIRE_DATA_HEADER - 1] = d->ttl;
    *out_len = GM_WIRE_DATA_HEADER + d->payload_len;
    return 0;
}

int gm_wire_data_decode(const uint8_t *msg, size_t len, gm_wire_data *d, gm_error *err)
{
    int rc = check_msg(msg, len, GM_WIRE_DATA, err);
    if (rc < 0)
        return rc;
    if (len <= GM_WIRE_DATA_HEADER)
        return gm_error_set(err, GM_EPROTO, "DATA message of %zu bytes has no payload", len);
    memcpy(d->src, msg + 1, GM_WIRE_KEY_LEN);
    memcpy(d->dst, msg + 1 + GM_WIRE_KEY_LEN, GM_WIRE_KEY_LEN);
    d->ttl = msg[GM_WIRE_DATA_HEADER - 1];
    d->payload = msg + GM_WIRE_DATA_HEADER;
    d->payload_len = len - GM_WIRE_DATA_HEADER;
    return 0;
}

int gm_wire_doc_announce_encode(uint8_t type, uint64_t sequence, uint8_t *out, size_t cap, size_t *out_len,
                                gm_error *err)
{
    return u64_encode(type, sequence, out, cap, out_len, err);
}

int gm_wire_doc_announce_decode(uint8_t type, const uint8_t *msg, size_t len, uint64_t *sequence, gm_error *err)
{
    return u64_decode(type, msg, len, sequence, err);
}

int gm_wire_doc_request_encode(uint8_t type, uint8_t *out, size_t cap, size_t *out_len, gm_error *err)
{
    int rc = check_out(out, cap, 1, gm_wire_type_name(type), err);
    if (rc < 0)
        return rc;
    out[0] = type;
    *out_len = 1;
    return 0;
}

int gm_wire_doc_request_decode(uint8_t type, const uint8_t *msg, size_t len, gm_error *err)
{
    int rc = check_msg(msg, len, type, err);
    if (rc < 0)
        return rc;
    if (len != 1)
        return gm_error_set(err, GM_EPROTO, "%s has %zu trailing bytes", gm_wire_type_name(type), len - 1);
    return 0;
}

/* Bounds of a document chunk, shared by the encoder and the decoder. */
static int chunk_check(uint8_t type, const gm_wire_crl_chunk *c, int code, gm_error *err)
{
    const char *name = gm_wire_type_name(type);
    if (c->len == 0 || c->len > GM_WIRE_CRL_CHUNK_MAX)
        return gm_error_set(err, code, "%s chunk of %zu bytes: must be 1..%d", name, c->len, GM_WIRE_CRL_CHUNK_MAX);
    if (c->total_len == 0 || c->total_len > GM_WIRE_CRL_TOTAL_MAX)
        return gm_error_set(err, code, "%s total length %lu: must be 1..%u", name, (unsigned long)c->total_len,
                            GM_WIRE_CRL_TOTAL_MAX);
    if ((uint64_t)c->offset + c->len > c->total_len)
        return gm_error_set(err, code, "%s chunk at %lu of %zu bytes overruns total length %lu", name,
                            (unsigned long)c->offset, c->len, (unsigned long)c->total_len);
    return 0;
}

int gm_wire_doc_data_encode(uint8_t type, const gm_wire_crl_chunk *c, uint8_t *out, size_t cap, size_t *out_len,
                            gm_error *err)
{
    int rc;
    if (!c || !c->data)
        return gm_error_set(err, GM_EINVAL, "%s chunk has no data", gm_wire_type_name(type));
    if ((rc = chunk_check(type, c, GM_ETOOBIG, err)) < 0)
        return rc;
    size_t need = 1 + GM_WIRE_CRL_DATA_HEADER + c->len;
    if ((rc = check_out(out, cap, need, gm_wire_type_name(type), err)) < 0)
        return rc;
    memmove(out + 1 + GM_WIRE_CRL_DATA_HEADER, c->data, c->len);
    out[0] = type;
    put64(out + 1, c->sequence);
    put32(out + 9, c->total_len);
    put32(out + 13, c->offset);
    *out_len = need;
    return 0;
}

int gm_wire_doc_data_decode(uint8_t type, const uint8_t *msg, size_t len, gm_wire_crl_chunk *c, gm_error *err)
{
    int rc = check_msg(msg, len, type, err);
    if (rc < 0)
        return rc;
    if (len < 1 + GM_WIRE_CRL_DATA_HEADER + 1)
        return gm_error_set(err, GM_EPROTO, "%s message of %zu bytes is too short", gm_wire_type_name(type), len);
    gm_wire_crl_chunk t = {.sequence = get64(msg + 1),
                           .total_len = get32(msg + 9),
                           .offset = get32(msg + 13),
                           .data = msg + 1 + GM_WIRE_CRL_DATA_HEADER,
                           .len = len - 1 - GM_WIRE_CRL_DATA_HEADER};
    if ((rc = chunk_check(type, &t, GM_EPROTO, err)) < 0)
        return rc;
    *c = t;
    return 0;
}

int gm_wire_crl_announce_encode(uint64_t sequence, uint8_t *out, size_t cap, size_t *out_len,
                                gm_error *err)
{
    return gm_wire_doc_announce_encode(GM_WIRE_CRL_ANNOUNCE, sequence, out, cap, out_len, err);
}

int gm_wire_crl_announce_decode(const uint8_t *msg, size_t len, uint64_t *sequence,
                                gm_error *err)
{
    return gm_wire_doc_announce_decode(GM_WIRE_CRL_ANNOUNCE, msg, len, sequence, err);
}

int gm_wire_crl_request_encode(uint8_t *out, size_t cap, size_t *out_len, gm_error *err)
{
    return gm_wire_doc_request_encode(GM_WIRE_CRL_REQUEST, out, cap, out_len, err);
}

int gm_wire_crl_request_decode(const uint8_t *msg, size_t len, gm_error *err)
{
    return gm_wire_doc_request_decode(GM_WIRE_CRL_REQUEST, msg, len, err);
}

int gm_wire_crl_data_encode(const gm_wire_crl_chunk *c, uint8_t *out, size_t cap,
                            size_t *out_len, gm_error *err)
{
    return gm_wire_doc_data_encode(GM_WIRE_CRL_DATA, c, out, cap, out_len, err);
}

int gm_wire_crl_data_decode(const uint8_t *msg, size_t len, gm_wire_crl_chunk *c,
                            gm_error *err)
{
    return gm_wire_doc_data_decode(GM_WIRE_CRL_DATA, msg, len, c, err);
}

int gm_wire_ping_encode(uint64_t nonce, uint8_t *out, size_t cap, size_t *out_len, gm_error *err)
{
    return u64_encode(GM_WIRE_PING, nonce, out, cap, out_len, err);
}

int gm_wire_ping_decode(const uint8_t *msg, size_t len, uint64_t *nonce, gm_error *err)
{
    return u64_decode(GM_WIRE_PING, msg, len, nonce, err);
}

int gm_wire_pong_encode(uint64_t nonce, uint8_t *out, size_t cap, size_t *out_len, gm_error *err)
{
    return u64_encode(GM_WIRE_PONG, nonce, out, cap, out_len, err);
}

int gm_wire_pong_decode(const uint8_t *msg, size_t len, uint64_t *nonce, gm_error *err)
{
    return u64_decode(GM_WIRE_PONG, msg, len, nonce, err);
}

int gm_wire_utf8_valid(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        size_t n;
        uint32_t cp;
        if (c == 0)
            return 0;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return 0; /* continuation byte first, C0/C1 overlong lead, or > U+10FFFF */
        }
        if (len - i - 1 < n)
            return 0;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += n + 1;
    }
    return 1;
}

int gm_wire_close_encode(uint8_t reason, const char *text, uint8_t *out, size_t cap,
                         size_t *out_len, gm_error *err)
{
    if (!text)
        text = "";
    size_t tlen = strlen(text);
    if (!gm_wire_utf8_valid((const uint8_t *)text, tlen))
        return gm_error_set(err, GM_EINVAL, "CLOSE text is not valid UTF-8");
    if (tlen > GM_WIRE_CLOSE_TEXT_MAX) {
        tlen = GM_WIRE_CLOSE_TEXT_MAX;
        /* Cut before a character, never inside one. */
        while (tlen > 0 && ((uint8_t)text[tlen] & 0xC0) == 0x80)
            tlen--;
    }
    int rc = check_out(out, cap, 2 + tlen, "CLOSE", err);
    if (rc < 0)
        return rc;
    memmove(out + 2, text, tlen);
    out[0] = GM_WIRE_CLOSE;
    out[1] = reason;
    *out_len = 2 + tlen;
    return 0;
}

int gm_wire_close_decode(const uint8_t *msg, size_t len, gm_wire_close *c, gm_error *err)
{
    int rc = check_msg(msg, len, GM_WIRE_CLOSE, err);
    if (rc < 0)
        return rc;
    if (len < 2)
        return gm_error_set(err, GM_EPROTO, "CLOSE message without a reason code");
    size_t tlen = len - 2;
    if (tlen > GM_WIRE_CLOSE_TEXT_MAX)
        return gm_error_set(err, GM_EPROTO, "CLOSE text of %zu bytes exceeds %d", tlen,
                            GM_WIRE_CLOSE_TEXT_MAX);
    if (!gm_wire_utf8_valid(msg + 2, tlen))
        return gm_error_set(err, GM_EPROTO, "CLOSE text is not valid UTF-8");
    c->reason = msg[1];
    memcpy(c->text, msg + 2, tlen);
    c->text[tlen] = '\0';
    return 0;
}

int gm_wire_cert_encode(const uint8_t *cert, size_t cert_len, uint8_t *out, size_t cap,
                        size_t *out_len, gm_error *err)
{
    return blob_encode(GM_WIRE_CERT, cert, cert_len, out, cap, out_len, err);
}

int gm_wire_cert_decode(const uint8_t *msg, size_t len, const uint8_t **cert, size_t *cert_len,
                        gm_error *err)
{
    return blob_decode(GM_WIRE_CERT, msg, len, cert, cert_len, err);
}
