/* Binary frames of the node's local API (docs/local-api.md "Binary frames"), shared by the
 * node and its client: a 44-byte head, the port, then the payload bytes. */
#ifndef GM_API_FRAME_H
#define GM_API_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define GM_API_FRAME_HDR 44
/* hello {"frames":V}: the node answers the highest version it speaks that is not above V (0: JSON
 * only). Version 1: message frames carry messages without a note; version 2 adds noted frames. */
#define GM_API_FRAMES_V1 1
#define GM_API_FRAMES_V2 2
#define GM_API_FRAMES_VERSION GM_API_FRAMES_V2 /* the highest this code speaks */
#define GM_API_FRAME_SEND 0x01    /* client -> node: send data to key on port */
#define GM_API_FRAME_MESSAGE 0x02 /* node -> client: data from key arrived on port */
#define GM_API_FRAME_F_ACK 0x01   /* send: also confirm success with {"event":"sent"} */
#define GM_API_FRAME_F_NOTED 0x02 /* message (frames 2): the payload starts with u16 N, N bytes of a note */
#define GM_API_NOTE_LEN 2         /* bytes of the note length of a noted message frame */
#define GM_API_PORT_MAX 32
#define GM_API_KEY_LEN 32
#define GM_API_FRAME_HEAD_MAX (GM_API_FRAME_HDR + GM_API_PORT_MAX)
#define GM_API_FRAME_MAX_DATA 65535 /* no payload is larger (a mesh frame is at most this) */

typedef struct gm_api_frame {
    uint8_t type, flags;
    uint32_t seq, len;          /* len: payload bytes after the head */
    uint8_t key[GM_API_KEY_LEN];
    char port[GM_API_PORT_MAX + 1];
    size_t head;                /* bytes of header and port */
    int too_big;                /* len > max_data: the payload is to be skipped, the sender told */
} gm_api_frame;

/* 1 if p is a port name: 1..32 of [a-z0-9._-]. */
int gm_api_port_valid(const char *p);
/* Parse the head of a frame at p: 1 (f filled), 0 when more than avail bytes are needed,
 * -1 when it is malformed (why says how; the stream cannot be followed any more). */
int gm_api_frame_parse(const uint8_t *p, size_t avail, size_t max_data, gm_api_frame *f, char *why,
                       size_t why_len);
/* The parts of a complete noted message frame's payload (f->len bytes at payload): 0 with the
 * note (compact JSON, not parsed here) and the message, or -1 when the note length does not fit
 * (why says how; the stream cannot be followed any more). */
int gm_api_frame_note(const gm_api_frame *f, const uint8_t *payload, const uint8_t **note, size_t *note_len,
                      const uint8_t **data, size_t *data_len, char *why, size_t why_len);
/* Write the head of a frame (port is valid); returns its length. */
size_t gm_api_frame_head(uint8_t out[GM_API_FRAME_HEAD_MAX], uint8_t type, uint8_t flags, uint32_t seq,
                         uint32_t len, const uint8_t key[GM_API_KEY_LEN], const char *port);

#endif
