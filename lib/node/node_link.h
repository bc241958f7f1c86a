/* Interface inside the peer-link subsystem: node_link.c (link objects, up, heartbeat,
 * close), node_connect.c (accept, dial, targets), node_handshake.c (Noise XX, trust),
 * node_transport.c (framing, ciphers, send queue, backpressure, reading) and
 * node_dispatch.c (what a message means). The rest of the node uses node_internal.h. */
#ifndef GM_NODE_LINK_H
#define GM_NODE_LINK_H

#include "node_internal.h"

/* node_link.c */
node_link *node_link_new(gm_node *n, int outbound);
/* Close at once (no CLOSE message); the link is freed by libuv's close callback. */
void node_link_hard_close(node_link *l);
/* Both sides accepted each other: one link per peer, then peer and route state. */
void node_link_up(node_link *l);
/* 1 (and the link is closed) when the peer is this node itself. */
int node_link_is_self(node_link *l);
void node_link_ping(node_link *l);
/* Log fields naming the link (address, direction, peer). */
json_t *node_link_fields(node_link *l);

/* node_connect.c: what links tell the target they were dialled for. */
void node_connect_tick(gm_node *n, uint64_t now);
void node_connect_link_authenticated(node_link *l);
void node_connect_link_up(node_link *l);
void node_connect_link_self(node_link *l);
void node_connect_link_freed(node_link *l);
/* Close the listener and cancel address lookups in flight. */
void node_connect_stop(gm_node *n);

/* node_handshake.c */
/* Start the handshake on a connected link (the initiator sends message 1). */
int node_hs_begin(node_link *l);
/* Returns 0 to go on, -1 when the link is being closed. */
int node_hs_on_frame(node_link *l, const uint8_t *frame, size_t len);
void node_hs_fail(node_link *l, const char *why, const char *detail);
/* The responder closed our link before accepting it (msg is its CLOSE). */
void node_hs_rejected(node_link *l, const uint8_t *msg, size_t len);

/* node_transport.c */
/* Queue one frame (encrypted with the link's transport key when encrypt). */
int node_link_send_raw(node_link *l, const uint8_t *body, size_t len, int encrypt);
void node_link_set_congested(node_link *l, int on);
/* Write the frames queued this loop iteration now (before a shutdown or a close); 0 or GM_EIO. */
int node_link_flush(node_link *l);
void node_link_unpause(node_link *l);
/* Stop reading from l and keep msg (a DATA whose next hop is congested) until it drains. */
void node_link_hold(node_link *l, const uint8_t *msg, size_t len);
void node_link_start_reading(node_link *l);

/* node_dispatch.c: one decrypted transport message (a DATA message is relayed, or decrypted
 * end to end, in place). */
void node_dispatch(node_link *l, uint8_t *msg, size_t len);

#endif
