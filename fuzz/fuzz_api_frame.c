/* Fuzz target for the binary frames of the local API (lib/core/api_frame.c). The input is
 * a byte stream of send and message frames, as either end reads it after hello {"frames":2}:
 * frames are parsed one after another (a refused payload skipped, as node_api.c does), and the
 * payload of a complete noted message frame is split (gm_api_frame_note), as the client does.
 * Invariants (abort() on violation): a parsed head re-encodes to the very same bytes; a frame
 * never claims more bytes than the head says; the parser never asks for fewer bytes than it was
 * given when it says "need more"; the noted flag is accepted on message frames only, with room
 * for its note length; a noted payload splits into its note length, note and message exactly,
 * or is refused when the note length exceeds it; a refused frame comes with a reason. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node_internal.h"

#define FAIL(why)                                                                  \
    do {                                                                           \
        fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, why); \
        abort();                                                                   \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0, max_data = node_e2e_max_data();
    /* The first byte, when present, lowers the payload limit so the too-big path is reached. */
    if (size > 0 && data[0] < 8) {
        max_data = (size_t)data[0] * 64;
        off = 1;
    }
    while (off < size) {
        gm_api_frame f;
        char why[160] = "";
        int r = gm_api_frame_parse(data + off, size - off, max_data, &f, why, sizeof why);
        if (r < 0) {
            if (!why[0])
                FAIL("refused frame without a reason");
            return 0;
        }
        if (r == 0) {
            if (size - off >= GM_API_FRAME_HDR + NODE_MAX_PORT_LEN)
                FAIL("asked for more bytes than a head can need");
            return 0;
        }
        if (f.head < GM_API_FRAME_HDR + 1 || f.head > GM_API_FRAME_HDR + NODE_MAX_PORT_LEN || f.head > size - off)
            FAIL("head length out of range");
        if (f.too_big != (f.len > max_data))
            FAIL("too_big disagrees with the limit");
        uint8_t head[GM_API_FRAME_HEAD_MAX];
        size_t hl = gm_api_frame_head(head, f.type, f.flags, f.seq, f.len, f.key, f.port);
        if (hl != f.head || memcmp(head, data + off, hl) != 0)
            FAIL("a parsed head does not re-encode to the same bytes");
        if (f.flags & GM_API_FRAME_F_NOTED && (f.type != GM_API_FRAME_MESSAGE || f.len < GM_API_NOTE_LEN))
            FAIL("the noted flag accepted on a send frame or without room for its note length");
        off += f.head;
        if (f.len > size - off)
            return 0; /* incomplete payload: wait (or skip) */
        if (f.flags & GM_API_FRAME_F_NOTED) {
            const uint8_t *note = NULL, *msg = NULL;
            size_t nl = 0, ml = 0, claimed = (size_t)data[off] << 8 | data[off + 1];
            why[0] = 0;
            int nr = gm_api_frame_note(&f, data + off, &note, &nl, &msg, &ml, why, sizeof why);
            if (nr != 0 && (!why[0] || claimed <= f.len - GM_API_NOTE_LEN))
                FAIL("a noted payload refused without a reason, or with a note length that fits");
            if (nr == 0 && (claimed > f.len - GM_API_NOTE_LEN || nl != claimed ||
                            note != data + off + GM_API_NOTE_LEN || msg != note + nl ||
                            GM_API_NOTE_LEN + nl + ml != f.len))
                FAIL("a noted payload does not split into its note length, note and message");
            if (nr != 0)
                return 0; /* the stream cannot be followed any more */
        }
        off += f.len;
    }
    return 0;
}
