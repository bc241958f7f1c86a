/* Binary frames of the local API (docs/local-api.md "Binary frames"): message payloads travel
 * as a fixed 44-byte header, the port and the raw bytes, never as base64 inside JSON. A client
 * turns them on with hello {"frames":2} (1: without noted frames); JSON lines stay for every
 * control operation. The first byte of a frame (0x01 or 0x02) can never start a JSON line, so
 * both kinds interleave on one connection. Pure code shared by the node (lib/node/node_api.c) and the client
 * (lib/client/node_client.c); fuzzed by fuzz/fuzz_api_frame.c.
 *
 *   type u8 || flags u8 || port_len u8 || 0 u8 || seq u32 || len u32 || key[32] || port || data
 * A noted message frame (flag bit 1, frames version 2): data = note_len u16 || note || message. */
#include <stdio.h>
#include <string.h>

#include "api_frame.h"

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

int gm_api_port_valid(const char *p)
{
    size_t l = strlen(p);
    if (l == 0 || l > GM_API_PORT_MAX)
        return 0;
    for (; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
            return 0;
    return 1;
}

int gm_api_frame_parse(const uint8_t *p, size_t avail, size_t max_data, gm_api_frame *f, char *why,
                         size_t why_len)
{
    memset(f, 0, sizeof *f);
    if (avail < GM_API_FRAME_HDR)
        return 0;
    if (p[0] != GM_API_FRAME_SEND && p[0] != GM_API_FRAME_MESSAGE) {
        snprintf(why, why_len, "frame type %u is not a frame (1 send, 2 message)", p[0]);
        return -1;
    }
    if (p[1] & ~(p[0] == GM_API_FRAME_SEND ? GM_API_FRAME_F_ACK : GM_API_FRAME_F_NOTED)) {
        snprintf(why, why_len, "frame flags 0x%02x: only bit 0 (ack) of a send frame, bit 1 (noted) of a message frame",
                 p[1]);
        return -1;
    }
    if (p[2] == 0 || p[2] > GM_API_PORT_MAX || p[3] != 0) {
        snprintf(why, why_len, "frame port length %u must be 1 to %d, and byte 3 zero", p[2], GM_API_PORT_MAX);
        return -1;
    }
    if (avail < GM_API_FRAME_HDR + (size_t)p[2])
        return 0;
    f->type = p[0];
    f->flags = p[1];
    f->seq = get32(p + 4);
    f->len = get32(p + 8);
    memcpy(f->key, p + 12, GM_API_KEY_LEN);
    memcpy(f->port, p + GM_API_FRAME_HDR, p[2]);
    f->port[p[2]] = 0;
    if (!gm_api_port_valid(f->port)) {
        snprintf(why, why_len, "frame port must be 1-32 characters of [a-z0-9._-]");
        return -1;
    }
    if (f->flags & GM_API_FRAME_F_NOTED && f->len < GM_API_NOTE_LEN) {
        snprintf(why, why_len, "noted message frame of %u bytes: its payload must hold the %d-byte note length",
                 (unsigned)f->len, GM_API_NOTE_LEN);
        return -1;
    }
    f->head = GM_API_FRAME_HDR + (size_t)p[2];
    f->too_big = f->len > max_data;
    return 1;
}

int gm_api_frame_note(const gm_api_frame *f, const uint8_t *payload, const uint8_t **note, size_t *note_len,
                      const uint8_t **data, size_t *data_len, char *why, size_t why_len)
{
    if (f->len < GM_API_NOTE_LEN) {
        snprintf(why, why_len, "noted message frame of %u bytes: no room for the note length", (unsigned)f->len);
        return -1;
    }
    size_t n = (size_t)payload[0] << 8 | payload[1];
    if (n > f->len - GM_API_NOTE_LEN) {
        snprintf(why, why_len, "noted message frame: note length %zu is more than the %u bytes after it", n,
                 (unsigned)(f->len - GM_API_NOTE_LEN));
        return -1;
    }
    *note = payload + GM_API_NOTE_LEN;
    *note_len = n;
    *data = *note + n;
    *data_len = f->len - GM_API_NOTE_LEN - n;
    return 0;
}

size_t gm_api_frame_head(uint8_t out[GM_API_FRAME_HDR + GM_API_PORT_MAX], uint8_t type, uint8_t flags,
                           uint32_t seq, uint32_t len, const uint8_t key[GM_API_KEY_LEN], const char *port)
{
    size_t pl = strlen(port);
    out[0] = type;
    out[1] = flags;
    out[2] = (uint8_t)pl;
    out[3] = 0;
    put32(out + 4, seq);
    put32(out + 8, len);
    memcpy(out + 12, key, GM_API_KEY_LEN);
    memcpy(out + GM_API_FRAME_HDR, port, pl);
    return GM_API_FRAME_HDR + pl;
}
