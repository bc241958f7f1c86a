/* Fuzz the wire decoders and the streaming frame reader. Byte 0 picks the reader's
 * frame limit and chunking; the rest is decoded as a transport message and also
 * fed to the reader as a byte stream, every frame of which is decoded in turn.
 * Whatever a decoder accepts must re-encode to the very same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

static uint8_t out[GM_WIRE_MSG_MAX + 16];
static gm_wire_route_entry entries[GM_WIRE_ROUTE_MAX_ENTRIES];

static void same(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    if (alen != blen || memcmp(a, b, alen) != 0)
        abort();
}

static void decode_all(const uint8_t *m, size_t len)
{
    gm_error err;
    uint8_t type;
    size_t n, olen, blen;
    uint64_t v;
    const uint8_t *b;
    gm_wire_data d;
    gm_wire_close c;
    int known = gm_wire_msg_type(m, len, &type, &err) == 0;

    if (gm_wire_route_update_decode(m, len, entries, GM_WIRE_ROUTE_MAX_ENTRIES, &n, &err) == 0) {
        if (!known || gm_wire_route_update_encode(entries, n, out, sizeof out, &olen, &err) != 0)
            abort();
        same(m, len, out, olen);
    }
    if (gm_wire_data_decode(m, len, &d, &err) == 0) {
        if (d.payload < m || d.payload + d.payload_len != m + len)
            abort();
        if (gm_wire_data_encode(&d, out, sizeof out, &olen, &err) != 0)
            abort();
        same(m, len, out, olen);
    }
    if (gm_wire_crl_announce_decode(m, len, &v, &err) == 0) {
        if (gm_wire_crl_announce_encode(v, out, sizeof out, &olen, &err) != 0)
            abort();
        same(m, len, out, olen);
    }
    if (gm_wire_crl_request_decode(m, len, &err) == 0 && len != 1)
        abort();
    gm_wire_crl_chunk ck;
    if (gm_wire_crl_data_decode(m, len, &ck, &err) == 0) {
        if (ck.len == 0 || ck.len > GM_WIRE_CRL_CHUNK_MAX || ck.total_len == 0 ||
            ck.total_len > GM_WIRE_CRL_TOTAL_MAX || (uint64_t)ck.offset + ck.len > ck.total_len ||
            ck.data != m + 1 + GM_WIRE_CRL_DATA_HEADER || ck.data + ck.len != m + len)
            abort();
        if (gm_wire_crl_data_encode(&ck, out, sizeof out, &olen, &err) != 0)
            abort();
        same(m, len, out, olen);
    }
    if (gm_wire_cert_decode(m, len, &b, &blen, &err) == 0) {
        if (gm_wire_cert_encode(b, blen, out, sizeof out, &olen, &err) != 0)
            abort();
        same(m, len, out, olen);
    }
    if (gm_wire_ping_decode(m, len, &v, &err) == 0) {
        if (gm_wire_ping_encode(v, out, sizeof out, &olen, &err) != 0)
            abort();
        same(m, len, out, olen);
    }
    if (gm_wire_pong_decode(m, len, &v, &err) == 0) {
        if (gm_wire_pong_encode(v, out, sizeof out, &olen, &err) != 0)
            abort();
        same(m, len, out, olen);
    }
    if (gm_wire_close_decode(m, len, &c, &err) == 0) {
        if (gm_wire_close_encode(c.reason, c.text, out, sizeof out, &olen, &err) != 0)
            abort();
        same(m, len, out, olen);
    }
    gm_wire_utf8_valid(m, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    /* Exact-size heap copy so any overread is caught by the sanitizer. */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    decode_all(copy, size);

    size_t max = (mode & 1) ? GM_WIRE_FRAME_MAX : 1 + (size_t)mode * 64;
    gm_wire_reader_t *r;
    if (gm_wire_reader_new(&r, max, NULL) != 0) {
        free(copy);
        return 0;
    }
    uint32_t chunk_state = 0x9e3779b9u ^ mode;
    size_t off = 0;
    while (off < size) {
        chunk_state = chunk_state * 1103515245u + 12345u;
        size_t chunk = (mode & 2) ? size - off : 1 + (chunk_state >> 16) % 97;
        if (chunk > size - off)
            chunk = size - off;
        uint8_t *piece = malloc(chunk);
        memcpy(piece, copy + off, chunk);
        size_t used = 0;
        int rc = 0;
        while (used < chunk) {
            const uint8_t *f;
            size_t flen, c;
            rc = gm_wire_reader_feed(r, piece + used, chunk - used, &c, &f, &flen, NULL);
            if (c > chunk - used)
                abort();
            used += c;
            if (rc < 0)
                break;
            if (rc == 1) {
                if (flen == 0 || flen > max)
                    abort();
                decode_all(f, flen);
            } else if (used != chunk) {
                abort();
            }
        }
        free(piece);
        if (rc < 0)
            break;
        off += chunk;
    }
    if (gm_wire_reader_pending(r) > GM_WIRE_FRAME_MAX + 2)
        abort();
    gm_wire_reader_free(r);
    free(copy);
    return 0;
}
