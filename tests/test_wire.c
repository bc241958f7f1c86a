/* Wire formats: every message round-trips, every malformed input is refused, and
 * the streaming frame reader reassembles frames however the bytes are split. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wire.h"

static uint64_t rng_state = 0x243f6a8885a308d3ULL;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void fill(uint8_t *p, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed + i * 7);
}

static uint8_t msgbuf[GM_WIRE_MSG_MAX + 64];

/* Every strict prefix of a fixed-layout message must be refused. */
typedef int (*decode_fn)(const uint8_t *msg, size_t len);

static void assert_prefixes_rejected(const uint8_t *msg, size_t len, decode_fn dec)
{
    for (size_t i = 0; i < len; i++)
        assert_true(dec(msg, i) < 0);
    assert_int_equal(dec(msg, len), 0);
}

/* ---- framing ---- */

static void test_frame_encode_writes_big_endian_length(void **state)
{
    (void)state;
    uint8_t body[300], out[400];
    size_t n;
    fill(body, sizeof body, 1);
    assert_int_equal(gm_wire_frame_encode(body, sizeof body, out, sizeof out, &n, NULL), 0);
    assert_int_equal(n, 302);
    assert_int_equal(out[0], 0x01);
    assert_int_equal(out[1], 0x2c);
    assert_memory_equal(out + 2, body, sizeof body);
    uint8_t hdr[2];
    assert_int_equal(gm_wire_frame_header(GM_WIRE_FRAME_MAX, hdr, NULL), 0);
    assert_int_equal(hdr[0], 0xff);
    assert_int_equal(hdr[1], 0xff);
}

static void test_frame_encode_refuses_empty_oversized_and_short_buffer(void **state)
{
    (void)state;
    uint8_t body[8] = {0}, out[9], hdr[2];
    size_t n;
    gm_error err;
    assert_int_equal(gm_wire_frame_header(0, hdr, &err), GM_ETOOBIG);
    assert_int_equal(gm_wire_frame_header(GM_WIRE_FRAME_MAX + 1, hdr, &err), GM_ETOOBIG);
    assert_int_equal(gm_wire_frame_encode(body, 8, out, sizeof out, &n, &err), GM_ETOOBIG);
    assert_int_equal(gm_wire_frame_encode(body, 0, out, sizeof out, &n, &err), GM_ETOOBIG);
}

static void test_reader_new_checks_limit(void **state)
{
    (void)state;
    gm_wire_reader_t *r;
    assert_int_equal(gm_wire_reader_new(&r, 0, NULL), GM_EINVAL);
    assert_null(r);
    assert_int_equal(gm_wire_reader_new(&r, GM_WIRE_FRAME_MAX + 1, NULL), GM_EINVAL);
    assert_int_equal(gm_wire_reader_new(&r, GM_WIRE_FRAME_MAX, NULL), 0);
    gm_wire_reader_free(r);
}

/* A stream of frames of varied sizes, including the extremes. */
#define NFRAMES 40
static size_t frame_lens[NFRAMES];
static uint8_t *stream;
static size_t stream_len;

static void build_stream(void)
{
    static const size_t fixed[] = {1, 2, 3, GM_WIRE_FRAME_MAX, 1, 500, GM_WIRE_FRAME_MAX - 1};
    stream = malloc(NFRAMES * (GM_WIRE_FRAME_MAX + 2));
    assert_non_null(stream);
    stream_len = 0;
    for (int i = 0; i < NFRAMES; i++) {
        size_t len = i < 7 ? fixed[i] : 1 + rng() % (i % 3 ? 300 : 5000);
        frame_lens[i] = len;
        uint8_t *body = malloc(len);
        fill(body, len, (uint8_t)i);
        size_t n;
        assert_int_equal(gm_wire_frame_encode(body, len, stream + stream_len,
                                              NFRAMES * (GM_WIRE_FRAME_MAX + 2) - stream_len, &n,
                                              NULL),
                         0);
        stream_len += n;
        free(body);
    }
}

/* Feed the stream in chunks chosen by chunk(i) and check every frame comes out intact. */
static void replay(size_t (*chunk)(void))
{
    gm_wire_reader_t *r;
    assert_int_equal(gm_wire_reader_new(&r, GM_WIRE_FRAME_MAX, NULL), 0);
    size_t off = 0;
    int got = 0;
    uint8_t *expect = malloc(GM_WIRE_FRAME_MAX);
    while (off < stream_len) {
        size_t len = chunk();
        if (len > stream_len - off)
            len = stream_len - off;
        /* Copy to a heap buffer of exactly len bytes so ASan catches any overread. */
        uint8_t *piece = malloc(len ? len : 1);
        memcpy(piece, stream + off, len);
        size_t used = 0;
        while (used < len || len == 0) {
            const uint8_t *f;
            size_t flen, c;
            int rc = gm_wire_reader_feed(r, piece + used, len - used, &c, &f, &flen, NULL);
            assert_true(rc == 0 || rc == 1);
            used += c;
            if (rc == 1) {
                assert_true(got < NFRAMES);
                assert_int_equal(flen, frame_lens[got]);
                fill(expect, flen, (uint8_t)got);
                assert_memory_equal(f, expect, flen);
                got++;
            } else {
                assert_int_equal(used, len);
                break;
            }
        }
        free(piece);
        off += len;
    }
    assert_int_equal(got, NFRAMES);
    assert_int_equal(gm_wire_reader_pending(r), 0);
    free(expect);
    gm_wire_reader_free(r);
}

static size_t one(void) { return 1; }
static size_t random_chunk(void) { return rng() % 3 == 0 ? rng() % 4 : rng() % 70000; }
static size_t everything(void) { return SIZE_MAX; }

static void test_reader_reassembles_byte_by_byte(void **state)
{
    (void)state;
    build_stream();
    replay(one);
    free(stream);
}

static void test_reader_reassembles_random_chunks(void **state)
{
    (void)state;
    build_stream();
    for (int round = 0; round < 20; round++)
        replay(random_chunk);
    replay(everything);
    free(stream);
}

static void test_reader_refuses_zero_length_frame_and_stays_failed(void **state)
{
    (void)state;
    gm_wire_reader_t *r;
    gm_error err;
    assert_int_equal(gm_wire_reader_new(&r, 100, NULL), 0);
    const uint8_t in[] = {0x00, 0x01, 0xaa, 0x00, 0x00, 0x00, 0x01, 0xbb};
    const uint8_t *f;
    size_t flen, c;
    assert_int_equal(gm_wire_reader_feed(r, in, sizeof in, &c, &f, &flen, &err), 1);
    assert_int_equal(c, 3);
    assert_int_equal(gm_wire_reader_feed(r, in + 3, sizeof in - 3, &c, &f, &flen, &err),
                     GM_EPROTO);
    assert_int_equal(gm_wire_reader_feed(r, in + 7, 1, &c, &f, &flen, &err), GM_EPROTO);
    assert_int_equal(c, 0);
    gm_wire_reader_free(r);
}

static void test_reader_refuses_frame_over_limit(void **state)
{
    (void)state;
    gm_wire_reader_t *r;
    gm_error err;
    assert_int_equal(gm_wire_reader_new(&r, 100, NULL), 0);
    const uint8_t ok[] = {0x00, 0x64};
    const uint8_t big[] = {0x00, 0x65, 0x00};
    const uint8_t *f;
    size_t flen, c;
    /* Exactly the limit is fine (header only so far). */
    assert_int_equal(gm_wire_reader_feed(r, ok, 2, &c, &f, &flen, &err), 0);
    assert_int_equal(gm_wire_reader_pending(r), 2);
    gm_wire_reader_free(r);
    assert_int_equal(gm_wire_reader_new(&r, 100, NULL), 0);
    assert_int_equal(gm_wire_reader_feed(r, big, 1, &c, &f, &flen, &err), 0);
    assert_int_equal(gm_wire_reader_feed(r, big + 1, 2, &c, &f, &flen, &err), GM_ETOOBIG);
    assert_int_equal(c, 1);
    assert_int_equal(gm_wire_reader_feed(r, big + 2, 1, &c, &f, &flen, &err), GM_ETOOBIG);
    gm_wire_reader_free(r);
}

static void test_reader_reports_partial_frame_at_eof(void **state)
{
    (void)state;
    gm_wire_reader_t *r;
    assert_int_equal(gm_wire_reader_new(&r, GM_WIRE_FRAME_MAX, NULL), 0);
    const uint8_t in[] = {0x00, 0x05, 1, 2, 3};
    const uint8_t *f;
    size_t flen, c;
    assert_int_equal(gm_wire_reader_feed(r, in, sizeof in, &c, &f, &flen, NULL), 0);
    assert_int_equal(c, sizeof in);
    assert_int_equal(gm_wire_reader_pending(r), 5);
    assert_int_equal(gm_wire_reader_feed(r, NULL, 0, &c, &f, &flen, NULL), 0);
    gm_wire_reader_free(r);
}

/* ---- messages ---- */

static void test_msg_type_rejects_unknown_and_empty(void **state)
{
    (void)state;
    uint8_t t;
    const uint8_t zero = 0, ten = 10, ff = 0xff, one_ = 1;
    assert_int_equal(gm_wire_msg_type(&zero, 1, &t, NULL), GM_EPROTO);
    assert_int_equal(gm_wire_msg_type(&ten, 1, &t, NULL), GM_EPROTO);
    assert_int_equal(gm_wire_msg_type(&ff, 1, &t, NULL), GM_EPROTO);
    assert_int_equal(gm_wire_msg_type(&one_, 0, &t, NULL), GM_EPROTO);
    assert_int_equal(gm_wire_msg_type(NULL, 0, &t, NULL), GM_EPROTO);
    for (uint8_t i = 1; i <= 9; i++) {
        assert_int_equal(gm_wire_msg_type(&i, 1, &t, NULL), 0);
        assert_int_equal(t, i);
        assert_string_not_equal(gm_wire_type_name(i), "unknown");
    }
    /* the access policy and genesis (NA key rotation) documents: 16..21; 22 is reserved */
    for (uint8_t i = 16; i <= 21; i++) {
        assert_int_equal(gm_wire_msg_type(&i, 1, &t, NULL), 0);
        assert_string_not_equal(gm_wire_type_name(i), "unknown");
    }
    const uint8_t reserved = 22;
    assert_int_equal(gm_wire_msg_type(&reserved, 1, &t, NULL), GM_EPROTO);
}

static void test_genesis_doc_messages_round_trip(void **state)
{
    (void)state;
    uint8_t buf[128];
    size_t len;
    uint64_t seq;
    const uint8_t chunk[] = "{\"network_version\":\"v0.2\"}";
    assert_int_equal(gm_wire_doc_announce_encode(GM_WIRE_GENESIS_ANNOUNCE, (UINT64_C(0) << 32) | 2, buf, sizeof buf, &len,
                                                 NULL), 0);
    assert_int_equal(buf[0], GM_WIRE_GENESIS_ANNOUNCE);
    assert_int_equal(gm_wire_doc_announce_decode(GM_WIRE_GENESIS_ANNOUNCE, buf, len, &seq, NULL), 0);
    assert_true(seq == 2);
    /* a CRL_ANNOUNCE is not a GENESIS_ANNOUNCE */
    assert_int_equal(gm_wire_doc_announce_decode(GM_WIRE_CRL_ANNOUNCE, buf, len, &seq, NULL), GM_EPROTO);
    assert_int_equal(gm_wire_doc_request_encode(GM_WIRE_GENESIS_REQUEST, buf, sizeof buf, &len, NULL), 0);
    assert_int_equal(gm_wire_doc_request_decode(GM_WIRE_GENESIS_REQUEST, buf, len, NULL), 0);
    gm_wire_crl_chunk c = {.sequence = 2, .total_len = sizeof chunk - 1, .offset = 0, .data = chunk, .len = sizeof chunk - 1},
                      back;
    assert_int_equal(gm_wire_doc_data_encode(GM_WIRE_GENESIS_DATA, &c, buf, sizeof buf, &len, NULL), 0);
    assert_int_equal(gm_wire_doc_data_decode(GM_WIRE_GENESIS_DATA, buf, len, &back, NULL), 0);
    assert_true(back.sequence == 2 && back.len == sizeof chunk - 1);
    assert_memory_equal(back.data, chunk, back.len);
    assert_string_equal(gm_wire_type_name(GM_WIRE_GENESIS_DATA), "GENESIS_DATA");
}

static int dec_route(const uint8_t *m, size_t l)
{
    gm_wire_route_entry e[GM_WIRE_ROUTE_MAX_ENTRIES];
    size_t n;
    return gm_wire_route_update_decode(m, l, e, GM_WIRE_ROUTE_MAX_ENTRIES, &n, NULL);
}

static void make_entries(gm_wire_route_entry *e, size_t n)
{
    memset(e, 0, n * sizeof *e);
    for (size_t i = 0; i < n; i++) {
        fill(e[i].dest, 32, (uint8_t)i);
        e[i].seqno = 0x0102030405060708ULL + i;
        e[i].metric = (uint16_t)(i * 3);
        e[i].hops = (uint8_t)i;
        if (i % 3 == 1) {
            e[i].has_cert_id = 1;
            fill(e[i].cert_id, 16, (uint8_t)(i + 100));
        }
        if (i % 5 == 4) {
            e[i].request = 1;
            e[i].metric = GM_WIRE_METRIC_INF;
            e[i].hops = 16;
            e[i].has_cert_id = 0;
            memset(e[i].cert_id, 0, 16);
        }
    }
}

static void test_route_update_round_trip(void **state)
{
    (void)state;
    static gm_wire_route_entry in[GM_WIRE_ROUTE_MAX_ENTRIES], out[GM_WIRE_ROUTE_MAX_ENTRIES];
    size_t counts[] = {1, 2, 7, GM_WIRE_ROUTE_MAX_ENTRIES};
    for (size_t c = 0; c < 4; c++) {
        size_t n = counts[c], len, got;
        make_entries(in, n);
        assert_int_equal(gm_wire_route_update_encode(in, n, msgbuf, sizeof msgbuf, &len, NULL), 0);
        assert_int_equal(len, gm_wire_route_update_size(in, n));
        assert_true(len <= GM_WIRE_MSG_MAX);
        assert_int_equal(msgbuf[0], GM_WIRE_ROUTE_UPDATE);
        assert_int_equal(gm_wire_route_update_decode(msgbuf, len, out, n, &got, NULL), 0);
        assert_int_equal(got, n);
        assert_memory_equal(in, out, n * sizeof *in);
        if (n <= 7)
            assert_prefixes_rejected(msgbuf, len, dec_route);
        /* Trailing garbage. */
        msgbuf[len] = 0;
        assert_int_equal(dec_route(msgbuf, len + 1), GM_EPROTO);
    }
}

static void test_route_update_entry_layout(void **state)
{
    (void)state;
    gm_wire_route_entry e;
    memset(&e, 0, sizeof e);
    memset(e.dest, 0xab, 32);
    e.seqno = 0x1122334455667788ULL;
    e.metric = 0x0203;
    e.hops = 4;
    size_t len;
    assert_int_equal(gm_wire_route_update_encode(&e, 1, msgbuf, sizeof msgbuf, &len, NULL), 0);
    const uint8_t expect[] = {1, 0, 1, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
                              0x02, 0x03, 4, 0};
    assert_int_equal(len, 3 + 44);
    assert_memory_equal(msgbuf, expect, 3);
    assert_memory_equal(msgbuf + 35, expect + 3, sizeof expect - 3);
}

static void test_route_update_rejects_bad_counts_flags_and_requests(void **state)
{
    (void)state;
    gm_wire_route_entry e[2], out[1];
    size_t len, n;
    gm_error err;
    make_entries(e, 2);
    assert_int_equal(gm_wire_route_update_encode(e, 0, msgbuf, sizeof msgbuf, &len, &err),
                     GM_EINVAL);
    assert_int_equal(gm_wire_route_update_encode(e, GM_WIRE_ROUTE_MAX_ENTRIES + 1, msgbuf,
                                                 sizeof msgbuf, &len, &err),
                     GM_EINVAL);
    assert_int_equal(gm_wire_route_update_encode(e, 2, msgbuf, 10, &len, &err), GM_ETOOBIG);

    assert_int_equal(gm_wire_route_update_encode(e, 1, msgbuf, sizeof msgbuf, &len, NULL), 0);
    /* count 0 and count > max */
    msgbuf[1] = 0, msgbuf[2] = 0;
    assert_int_equal(dec_route(msgbuf, len), GM_EPROTO);
    msgbuf[1] = 0x02, msgbuf[2] = 0x01;
    assert_int_equal(dec_route(msgbuf, len), GM_EPROTO);
    /* count larger than the entries present */
    msgbuf[1] = 0, msgbuf[2] = 2;
    assert_int_equal(dec_route(msgbuf, len), GM_EPROTO);
    msgbuf[2] = 1;
    /* unknown flag bits */
    for (int bit = 2; bit < 8; bit++) {
        msgbuf[3 + 43] = (uint8_t)(1u << bit);
        assert_int_equal(dec_route(msgbuf, len), GM_EPROTO);
    }
    msgbuf[3 + 43] = 0;
    assert_int_equal(dec_route(msgbuf, len), 0);
    /* cert flag without the 16 bytes */
    msgbuf[3 + 43] = GM_WIRE_ROUTE_F_CERT_ID;
    assert_int_equal(dec_route(msgbuf, len), GM_EPROTO);
    /* request with a finite metric */
    msgbuf[3 + 43] = GM_WIRE_ROUTE_F_REQUEST;
    assert_int_equal(dec_route(msgbuf, len), GM_EPROTO);
    /* request with hops 0 */
    msgbuf[3 + 40] = 0xff, msgbuf[3 + 41] = 0xff, msgbuf[3 + 42] = 0;
    assert_int_equal(dec_route(msgbuf, len), GM_EPROTO);
    msgbuf[3 + 42] = 1;
    assert_int_equal(dec_route(msgbuf, len), 0);
    /* more entries than the caller has room for */
    assert_int_equal(gm_wire_route_update_encode(e, 2, msgbuf, sizeof msgbuf, &len, NULL), 0);
    assert_int_equal(gm_wire_route_update_decode(msgbuf, len, out, 1, &n, &err), GM_ETOOBIG);
    /* an invalid request entry is refused by the encoder too */
    e[0].request = 1;
    e[0].metric = 5;
    assert_int_equal(gm_wire_route_update_encode(e, 1, msgbuf, sizeof msgbuf, &len, &err),
                     GM_EPROTO);
}

static int dec_data(const uint8_t *m, size_t l)
{
    gm_wire_data d;
    return gm_wire_data_decode(m, l, &d, NULL);
}

static void test_data_round_trip_and_bounds(void **state)
{
    (void)state;
    static uint8_t payload[GM_WIRE_DATA_PAYLOAD_MAX + 1];
    fill(payload, sizeof payload, 9);
    size_t sizes[] = {1, 16, 1000, GM_WIRE_DATA_PAYLOAD_MAX};
    for (int i = 0; i < 4; i++) {
        gm_wire_data d = {.ttl = 16, .payload = payload, .payload_len = sizes[i]}, o;
        fill(d.src, 32, 1);
        fill(d.dst, 32, 2);
        size_t len;
        assert_int_equal(gm_wire_data_encode(&d, msgbuf, sizeof msgbuf, &len, NULL), 0);
        assert_int_equal(len, GM_WIRE_DATA_HEADER + sizes[i]);
        assert_int_equal(gm_wire_data_decode(msgbuf, len, &o, NULL), 0);
        assert_memory_equal(o.src, d.src, 32);
        assert_memory_equal(o.dst, d.dst, 32);
        assert_int_equal(o.ttl, 16);
        assert_int_equal(o.payload_len, sizes[i]);
        assert_ptr_equal(o.payload, msgbuf + GM_WIRE_DATA_HEADER);
        assert_memory_equal(o.payload, payload, sizes[i]);
        if (i == 0)
            assert_prefixes_rejected(msgbuf, len, dec_data);
    }
    gm_wire_data d = {.ttl = 1, .payload = payload, .payload_len = 0};
    size_t len;
    assert_int_equal(gm_wire_data_encode(&d, msgbuf, sizeof msgbuf, &len, NULL), GM_ETOOBIG);
    d.payload_len = GM_WIRE_DATA_PAYLOAD_MAX + 1;
    assert_int_equal(gm_wire_data_encode(&d, msgbuf, sizeof msgbuf, &len, NULL), GM_ETOOBIG);
    d.payload_len = 10;
    assert_int_equal(gm_wire_data_encode(&d, msgbuf, GM_WIRE_DATA_HEADER + 9, &len, NULL),
                     GM_ETOOBIG);
    /* In place (a relay decrementing the ttl, a sender that built the payload in the buffer):
     * the payload stays where it is and only the header is written. */
    uint8_t *ref = malloc(GM_WIRE_MSG_MAX);
    assert_non_null(ref);
    fill(msgbuf + GM_WIRE_DATA_HEADER, 1000, 7);
    gm_wire_data in = {.ttl = 9, .payload = msgbuf + GM_WIRE_DATA_HEADER, .payload_len = 1000};
    fill(in.src, 32, 3);
    fill(in.dst, 32, 4);
    assert_int_equal(gm_wire_data_encode(&in, ref, GM_WIRE_MSG_MAX, &len, NULL), 0);
    assert_int_equal(gm_wire_data_encode(&in, msgbuf, sizeof msgbuf, &len, NULL), 0);
    assert_int_equal(len, GM_WIRE_DATA_HEADER + 1000);
    assert_memory_equal(msgbuf, ref, len);
    gm_wire_data back;
    assert_int_equal(gm_wire_data_decode(msgbuf, len, &back, NULL), 0);
    back.ttl--;
    assert_int_equal(gm_wire_data_encode(&back, msgbuf, len, &len, NULL), 0);
    assert_int_equal(msgbuf[GM_WIRE_DATA_HEADER - 1], 8);
    assert_memory_equal(msgbuf + GM_WIRE_DATA_HEADER, ref + GM_WIRE_DATA_HEADER, 1000);
    free(ref);
    /* A message one byte over the transport maximum is refused. */
    msgbuf[0] = GM_WIRE_DATA;
    assert_int_equal(dec_data(msgbuf, GM_WIRE_MSG_MAX + 1), GM_EPROTO);
    assert_int_equal(dec_data(msgbuf, GM_WIRE_MSG_MAX), 0);
}

static int dec_announce(const uint8_t *m, size_t l)
{
    uint64_t v;
    return gm_wire_crl_announce_decode(m, l, &v, NULL);
}
static int dec_ping(const uint8_t *m, size_t l)
{
    uint64_t v;
    return gm_wire_ping_decode(m, l, &v, NULL);
}
static int dec_pong(const uint8_t *m, size_t l)
{
    uint64_t v;
    return gm_wire_pong_decode(m, l, &v, NULL);
}

static void test_u64_messages_round_trip_and_reject_trailing(void **state)
{
    (void)state;
    const uint64_t vals[] = {0, 1, 0x0102030405060708ULL, UINT64_MAX};
    for (int i = 0; i < 4; i++) {
        size_t len;
        uint64_t v;
        assert_int_equal(gm_wire_crl_announce_encode(vals[i], msgbuf, sizeof msgbuf, &len, NULL),
                         0);
        assert_int_equal(len, 9);
        assert_int_equal(gm_wire_crl_announce_decode(msgbuf, len, &v, NULL), 0);
        assert_true(v == vals[i]);
        assert_prefixes_rejected(msgbuf, len, dec_announce);
        assert_int_equal(dec_announce(msgbuf, 10), GM_EPROTO);
        assert_int_equal(dec_ping(msgbuf, 9), GM_EPROTO); /* wrong type */

        assert_int_equal(gm_wire_ping_encode(vals[i], msgbuf, sizeof msgbuf, &len, NULL), 0);
        assert_int_equal(gm_wire_ping_decode(msgbuf, len, &v, NULL), 0);
        assert_true(v == vals[i]);
        assert_prefixes_rejected(msgbuf, len, dec_ping);
        assert_int_equal(dec_ping(msgbuf, 10), GM_EPROTO);

        assert_int_equal(gm_wire_pong_encode(vals[i], msgbuf, sizeof msgbuf, &len, NULL), 0);
        assert_int_equal(gm_wire_pong_decode(msgbuf, len, &v, NULL), 0);
        assert_true(v == vals[i]);
        assert_prefixes_rejected(msgbuf, len, dec_pong);
        assert_int_equal(dec_pong(msgbuf, 10), GM_EPROTO);
        assert_int_equal(dec_ping(msgbuf, 9), GM_EPROTO);
    }
    size_t len;
    assert_int_equal(gm_wire_ping_encode(1, msgbuf, 8, &len, NULL), GM_ETOOBIG);
    /* Fixed encoding: big-endian. */
    assert_int_equal(gm_wire_crl_announce_encode(0x0102030405060708ULL, msgbuf, 9, &len, NULL), 0);
    const uint8_t expect[] = {3, 1, 2, 3, 4, 5, 6, 7, 8};
    assert_memory_equal(msgbuf, expect, 9);
}

static void test_crl_request_is_exactly_one_byte(void **state)
{
    (void)state;
    size_t len;
    assert_int_equal(gm_wire_crl_request_encode(msgbuf, sizeof msgbuf, &len, NULL), 0);
    assert_int_equal(len, 1);
    assert_int_equal(gm_wire_crl_request_decode(msgbuf, 1, NULL), 0);
    assert_int_equal(gm_wire_crl_request_decode(msgbuf, 2, NULL), GM_EPROTO);
    assert_int_equal(gm_wire_crl_request_decode(msgbuf, 0, NULL), GM_EPROTO);
    msgbuf[0] = GM_WIRE_CRL_DATA;
    assert_int_equal(gm_wire_crl_request_decode(msgbuf, 1, NULL), GM_EPROTO);
}

static size_t enc_chunk(uint64_t seq, uint32_t total, uint32_t off, const uint8_t *d, size_t n)
{
    gm_wire_crl_chunk c = {.sequence = seq, .total_len = total, .offset = off, .data = d, .len = n};
    size_t len = 0;
    int rc = gm_wire_crl_data_encode(&c, msgbuf, sizeof msgbuf, &len, NULL);
    return rc == 0 ? len : 0;
}

static void test_crl_data_chunks_round_trip(void **state)
{
    (void)state;
    static uint8_t doc[GM_WIRE_CRL_CHUNK_MAX + 1];
    fill(doc, sizeof doc, 5);
    gm_wire_crl_chunk c;
    /* A full-size chunk at the end of the largest CRL. */
    size_t len = enc_chunk(0x0102030405060708ULL, GM_WIRE_CRL_TOTAL_MAX,
                           GM_WIRE_CRL_TOTAL_MAX - GM_WIRE_CRL_CHUNK_MAX, doc, GM_WIRE_CRL_CHUNK_MAX);
    assert_int_equal(len, 1 + GM_WIRE_CRL_DATA_HEADER + GM_WIRE_CRL_CHUNK_MAX);
    assert_true(len <= GM_WIRE_MSG_MAX);
    static const uint8_t hdr[] = {GM_WIRE_CRL_DATA, 1, 2, 3, 4, 5, 6, 7, 8, 0x00, 0x80, 0x00, 0x00, 0x00, 0x7f, 0x15, 0xa0};
    assert_memory_equal(msgbuf, hdr, sizeof hdr);
    assert_int_equal(gm_wire_crl_data_decode(msgbuf, len, &c, NULL), 0);
    assert_int_equal(c.sequence, 0x0102030405060708ULL);
    assert_int_equal(c.total_len, GM_WIRE_CRL_TOTAL_MAX);
    assert_int_equal(c.offset, GM_WIRE_CRL_TOTAL_MAX - GM_WIRE_CRL_CHUNK_MAX);
    assert_int_equal(c.len, GM_WIRE_CRL_CHUNK_MAX);
    assert_ptr_equal(c.data, msgbuf + 1 + GM_WIRE_CRL_DATA_HEADER);
    assert_memory_equal(c.data, doc, c.len);
    /* One more byte: the chunk is too big and overruns the total. */
    assert_int_equal(gm_wire_crl_data_decode(msgbuf, len + 1, &c, NULL), GM_EPROTO);
    /* A one-byte CRL. */
    len = enc_chunk(0, 1, 0, doc, 1);
    assert_int_equal(len, 18);
    assert_int_equal(gm_wire_crl_data_decode(msgbuf, len, &c, NULL), 0);
    assert_int_equal(c.total_len, 1);
    assert_int_equal(c.len, 1);
    /* Truncated: header only, or less. */
    for (size_t l = 0; l < 18; l++)
        assert_int_equal(gm_wire_crl_data_decode(msgbuf, l, &c, NULL), GM_EPROTO);
}

static void test_crl_data_rejects_bad_bounds(void **state)
{
    (void)state;
    static uint8_t doc[GM_WIRE_CRL_CHUNK_MAX + 1];
    fill(doc, sizeof doc, 9);
    gm_wire_crl_chunk c = {.sequence = 1, .total_len = 100, .offset = 0, .data = doc, .len = 10};
    size_t len;
    /* Encoder refuses what the decoder would refuse. */
    c.len = 0;
    assert_int_equal(gm_wire_crl_data_encode(&c, msgbuf, sizeof msgbuf, &len, NULL), GM_ETOOBIG);
    c.len = GM_WIRE_CRL_CHUNK_MAX + 1;
    c.total_len = GM_WIRE_CRL_TOTAL_MAX;
    assert_int_equal(gm_wire_crl_data_encode(&c, msgbuf, sizeof msgbuf, &len, NULL), GM_ETOOBIG);
    c.len = 10;
    c.total_len = 0;
    assert_int_equal(gm_wire_crl_data_encode(&c, msgbuf, sizeof msgbuf, &len, NULL), GM_ETOOBIG);
    c.total_len = GM_WIRE_CRL_TOTAL_MAX + 1;
    assert_int_equal(gm_wire_crl_data_encode(&c, msgbuf, sizeof msgbuf, &len, NULL), GM_ETOOBIG);
    c.total_len = 100;
    c.offset = 91;
    assert_int_equal(gm_wire_crl_data_encode(&c, msgbuf, sizeof msgbuf, &len, NULL), GM_ETOOBIG);
    c.offset = 90;
    assert_int_equal(gm_wire_crl_data_encode(&c, msgbuf, 1 + GM_WIRE_CRL_DATA_HEADER + 9, &len, NULL), GM_ETOOBIG);
    assert_int_equal(gm_wire_crl_data_encode(&c, msgbuf, 1 + GM_WIRE_CRL_DATA_HEADER + 10, &len, NULL), 0);
    c.data = NULL;
    assert_int_equal(gm_wire_crl_data_encode(&c, msgbuf, sizeof msgbuf, &len, NULL), GM_EINVAL);

    /* Decoder: patch the header of a valid message. */
    len = enc_chunk(1, 100, 90, doc, 10);
    assert_int_equal(len, 27);
    assert_int_equal(gm_wire_crl_data_decode(msgbuf, len, &c, NULL), 0);
    msgbuf[16] = 91; /* offset 91 + 10 > 100 */
    assert_int_equal(gm_wire_crl_data_decode(msgbuf, len, &c, NULL), GM_EPROTO);
    msgbuf[13] = 0xff; /* offset near 2^32: no wrap-around */
    msgbuf[14] = 0xff;
    msgbuf[15] = 0xff;
    msgbuf[16] = 0xfa;
    assert_int_equal(gm_wire_crl_data_decode(msgbuf, len, &c, NULL), GM_EPROTO);
    len = enc_chunk(1, 100, 0, doc, 10);
    memset(msgbuf + 9, 0, 4); /* total 0 */
    assert_int_equal(gm_wire_crl_data_decode(msgbuf, len, &c, NULL), GM_EPROTO);
    msgbuf[9] = 0x00; /* total 8 MiB + 1 */
    msgbuf[10] = 0x80;
    msgbuf[11] = 0x00;
    msgbuf[12] = 0x01;
    assert_int_equal(gm_wire_crl_data_decode(msgbuf, len, &c, NULL), GM_EPROTO);
    memset(msgbuf + 9, 0xff, 4); /* total 4 GiB - 1 */
    assert_int_equal(gm_wire_crl_data_decode(msgbuf, len, &c, NULL), GM_EPROTO);
    msgbuf[9] = 0x00; /* total 8 MiB */
    msgbuf[10] = 0x80;
    msgbuf[11] = 0x00;
    msgbuf[12] = 0x00;
    assert_int_equal(gm_wire_crl_data_decode(msgbuf, len, &c, NULL), 0);
    /* A chunk of more than GM_WIRE_CRL_CHUNK_MAX bytes. */
    len = enc_chunk(1, GM_WIRE_CRL_TOTAL_MAX, 0, doc, GM_WIRE_CRL_CHUNK_MAX);
    msgbuf[len] = 0;
    assert_int_equal(gm_wire_crl_data_decode(msgbuf, len + 1, &c, NULL), GM_EPROTO);
}

static void test_documents_round_trip_and_bounds(void **state)
{
    (void)state;
    static uint8_t doc[GM_WIRE_BLOB_MAX + 1];
    fill(doc, sizeof doc, 3);
    const char *json = "{\"cert_id\":\"00000000-0000-4000-8000-0000000000cc\"}";
    size_t len, got;
    const uint8_t *p;
    assert_int_equal(gm_wire_cert_encode((const uint8_t *)json, strlen(json), msgbuf,
                                         sizeof msgbuf, &len, NULL),
                     0);
    assert_int_equal(gm_wire_cert_decode(msgbuf, len, &p, &got, NULL), 0);
    assert_int_equal(got, strlen(json));
    assert_memory_equal(p, json, got);
    gm_wire_crl_chunk ck;
    assert_int_equal(gm_wire_crl_data_decode(msgbuf, len, &ck, NULL), GM_EPROTO);
    assert_int_equal(gm_wire_cert_decode(msgbuf, 1, &p, &got, NULL), GM_EPROTO);
    assert_int_equal(gm_wire_cert_encode(doc, GM_WIRE_BLOB_MAX, msgbuf, sizeof msgbuf, &len, NULL), 0);
    assert_int_equal(len, GM_WIRE_MSG_MAX);
    assert_int_equal(gm_wire_cert_encode(doc, GM_WIRE_BLOB_MAX + 1, msgbuf, sizeof msgbuf, &len, NULL),
                     GM_ETOOBIG);
    assert_int_equal(gm_wire_cert_encode(doc, 100, msgbuf, 100, &len, NULL), GM_ETOOBIG);
}

static void test_close_round_trip_utf8(void **state)
{
    (void)state;
    gm_wire_close c;
    size_t len;
    const char *text = "certificate revoked \xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x92";
    assert_int_equal(gm_wire_close_encode(GM_WIRE_CLOSE_REVOKED, text, msgbuf, sizeof msgbuf,
                                          &len, NULL),
                     0);
    assert_int_equal(len, 2 + strlen(text));
    assert_int_equal(gm_wire_close_decode(msgbuf, len, &c, NULL), 0);
    assert_int_equal(c.reason, GM_WIRE_CLOSE_REVOKED);
    assert_string_equal(c.text, text);
    assert_string_equal(gm_wire_close_reason_name(c.reason), "revoked");
    /* Unknown reason codes are carried. */
    assert_int_equal(gm_wire_close_encode(200, NULL, msgbuf, sizeof msgbuf, &len, NULL), 0);
    assert_int_equal(len, 2);
    assert_int_equal(gm_wire_close_decode(msgbuf, len, &c, NULL), 0);
    assert_int_equal(c.reason, 200);
    assert_string_equal(c.text, "");
    assert_int_equal(gm_wire_close_decode(msgbuf, 1, &c, NULL), GM_EPROTO);
}

static void test_close_cuts_long_text_at_character_boundary(void **state)
{
    (void)state;
    char text[400];
    /* "ab" then 3-byte euros: byte 256 falls inside a character. */
    text[0] = 'a';
    text[1] = 'b';
    size_t i = 2;
    while (i + 3 < sizeof text) {
        memcpy(text + i, "\xe2\x82\xac", 3);
        i += 3;
    }
    text[i] = '\0';
    size_t len;
    gm_wire_close c;
    assert_int_equal(gm_wire_close_encode(0, text, msgbuf, sizeof msgbuf, &len, NULL), 0);
    assert_true(len - 2 <= GM_WIRE_CLOSE_TEXT_MAX);
    assert_int_equal(len - 2, 2 + 3 * 84);
    assert_int_equal(gm_wire_close_decode(msgbuf, len, &c, NULL), 0);
    assert_int_equal(strlen(c.text), len - 2);
}

static void test_close_rejects_bad_utf8_and_long_text(void **state)
{
    (void)state;
    gm_wire_close c;
    size_t len;
    assert_int_equal(gm_wire_close_encode(0, "bad \xff", msgbuf, sizeof msgbuf, &len, NULL),
                     GM_EINVAL);
    msgbuf[0] = GM_WIRE_CLOSE;
    msgbuf[1] = 0;
    memset(msgbuf + 2, 'x', GM_WIRE_CLOSE_TEXT_MAX + 1);
    assert_int_equal(gm_wire_close_decode(msgbuf, 2 + GM_WIRE_CLOSE_TEXT_MAX, &c, NULL), 0);
    assert_int_equal(gm_wire_close_decode(msgbuf, 3 + GM_WIRE_CLOSE_TEXT_MAX, &c, NULL),
                     GM_EPROTO);
    msgbuf[2] = 0x00; /* NUL */
    assert_int_equal(gm_wire_close_decode(msgbuf, 3, &c, NULL), GM_EPROTO);
    msgbuf[2] = 0xc0, msgbuf[3] = 0x80; /* overlong NUL */
    assert_int_equal(gm_wire_close_decode(msgbuf, 4, &c, NULL), GM_EPROTO);
}

static void test_utf8_validator(void **state)
{
    (void)state;
    struct {
        const char *s;
        size_t len;
        int ok;
    } cases[] = {
        {"", 0, 1},
        {"plain", 5, 1},
        {"\xc2\x80", 2, 1},
        {"\xdf\xbf", 2, 1},
        {"\xe0\xa0\x80", 3, 1},
        {"\xef\xbf\xbf", 3, 1},
        {"\xf0\x90\x80\x80", 4, 1},
        {"\xf4\x8f\xbf\xbf", 4, 1},
        {"\x00", 1, 0},
        {"\x80", 1, 0},
        {"\xc0\x80", 2, 0},
        {"\xc1\xbf", 2, 0},
        {"\xe0\x80\x80", 3, 0},
        {"\xe0\x9f\xbf", 3, 0},
        {"\xed\xa0\x80", 3, 0},
        {"\xed\xbf\xbf", 3, 0},
        {"\xf0\x80\x80\x80", 4, 0},
        {"\xf0\x8f\xbf\xbf", 4, 0},
        {"\xf4\x90\x80\x80", 4, 0},
        {"\xf5\x80\x80\x80", 4, 0},
        {"\xff", 1, 0},
        {"\xe2\x82", 2, 0},
        {"\xf0\x9f\x94", 3, 0},
        {"\xe2\x28\xa1", 3, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *copy = malloc(cases[i].len + 1);
        memcpy(copy, cases[i].s, cases[i].len);
        int ok = gm_wire_utf8_valid(copy, cases[i].len);
        free(copy);
        if (ok != cases[i].ok)
            fail_msg("utf8 case %zu: expected %d", i, cases[i].ok);
    }
}

static void test_decoders_reject_wrong_type(void **state)
{
    (void)state;
    uint8_t m[80];
    memset(m, 0, sizeof m);
    for (int type = 0; type < 256; type++) {
        m[0] = (uint8_t)type;
        gm_wire_data d;
        gm_wire_close c;
        const uint8_t *p;
        size_t n;
        uint64_t v;
        if (type != GM_WIRE_DATA)
            assert_int_equal(gm_wire_data_decode(m, sizeof m, &d, NULL), GM_EPROTO);
        if (type != GM_WIRE_CLOSE)
            assert_int_equal(gm_wire_close_decode(m, 2, &c, NULL), GM_EPROTO);
        if (type != GM_WIRE_CERT)
            assert_int_equal(gm_wire_cert_decode(m, 5, &p, &n, NULL), GM_EPROTO);
        gm_wire_crl_chunk ck;
        if (type != GM_WIRE_CRL_DATA)
            assert_int_equal(gm_wire_crl_data_decode(m, 30, &ck, NULL), GM_EPROTO);
        if (type != GM_WIRE_CRL_ANNOUNCE)
            assert_int_equal(gm_wire_crl_announce_decode(m, 9, &v, NULL), GM_EPROTO);
        if (type != GM_WIRE_ROUTE_UPDATE)
            assert_int_equal(dec_route(m, sizeof m), GM_EPROTO);
        if (type != GM_WIRE_CRL_REQUEST)
            assert_int_equal(gm_wire_crl_request_decode(m, 1, NULL), GM_EPROTO);
    }
}


/* A reader of 64 KiB frames costs no frame buffer until a frame arrives split across feeds;
 * then it holds that frame's size, and gives a large buffer back once the frame is used. */
static void test_reader_allocates_only_for_split_frames(void **state)
{
    (void)state;
    gm_wire_reader_t *r;
    static uint8_t in[2 + 60000];
    const uint8_t *f;
    size_t flen, c;
    assert_int_equal(gm_wire_reader_new(&r, GM_WIRE_FRAME_MAX, NULL), 0);
    size_t idle = gm_wire_reader_mem(r);
    assert_true(idle < 1024);
    fill(in + 2, 60000, 7);
    in[0] = (uint8_t)(60000 >> 8);
    in[1] = (uint8_t)(60000 & 0xff);
    /* Whole frame in one feed: handed out from the input, nothing allocated. */
    assert_int_equal(gm_wire_reader_feed(r, in, sizeof in, &c, &f, &flen, NULL), 1);
    assert_int_equal(flen, 60000);
    assert_int_equal(gm_wire_reader_mem(r), idle);
    /* Split: buffered in memory of the frame's size (not the 64 KiB limit). */
    assert_int_equal(gm_wire_reader_feed(r, in, 1000, &c, &f, &flen, NULL), 0);
    assert_int_equal(gm_wire_reader_mem(r), idle + 60000);
    assert_int_equal(gm_wire_reader_feed(r, in + 1000, sizeof in - 1000, &c, &f, &flen, NULL), 1);
    assert_int_equal(flen, 60000);
    assert_int_equal(f[59999], in[2 + 59999]);
    /* The next feed no longer needs it. */
    assert_int_equal(gm_wire_reader_feed(r, in, 1, &c, &f, &flen, NULL), 0);
    assert_int_equal(gm_wire_reader_mem(r), idle);
    gm_wire_reader_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_encode_writes_big_endian_length),
        cmocka_unit_test(test_frame_encode_refuses_empty_oversized_and_short_buffer),
        cmocka_unit_test(test_reader_new_checks_limit),
        cmocka_unit_test(test_reader_reassembles_byte_by_byte),
        cmocka_unit_test(test_reader_reassembles_random_chunks),
        cmocka_unit_test(test_reader_refuses_zero_length_frame_and_stays_failed),
        cmocka_unit_test(test_reader_refuses_frame_over_limit),
        cmocka_unit_test(test_reader_reports_partial_frame_at_eof),
        cmocka_unit_test(test_reader_allocates_only_for_split_frames),
        cmocka_unit_test(test_msg_type_rejects_unknown_and_empty),
        cmocka_unit_test(test_genesis_doc_messages_round_trip),
        cmocka_unit_test(test_route_update_round_trip),
        cmocka_unit_test(test_route_update_entry_layout),
        cmocka_unit_test(test_route_update_rejects_bad_counts_flags_and_requests),
        cmocka_unit_test(test_data_round_trip_and_bounds),
        cmocka_unit_test(test_u64_messages_round_trip_and_reject_trailing),
        cmocka_unit_test(test_crl_request_is_exactly_one_byte),
        cmocka_unit_test(test_documents_round_trip_and_bounds),
        cmocka_unit_test(test_crl_data_chunks_round_trip),
        cmocka_unit_test(test_crl_data_rejects_bad_bounds),
        cmocka_unit_test(test_close_round_trip_utf8),
        cmocka_unit_test(test_close_cuts_long_text_at_character_boundary),
        cmocka_unit_test(test_close_rejects_bad_utf8_and_long_text),
        cmocka_unit_test(test_utf8_validator),
        cmocka_unit_test(test_decoders_reject_wrong_type),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
