/* The client layer's private API: the parts of the NA client and of the node's local-API
 * client that the agent layer and the tests use but no program does. */
#ifndef GM_CLIENT_INTERNAL_H
#define GM_CLIENT_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "gm/error.h"
#include "gm/http_client.h"
#include "gm/keys.h"
#include "gm/na_client.h"
#include "gm/node.h"

/* ---- NA client (na_client.c, gm/na_client.h) ---- */

/* The NA's error code of the last failed call in this thread ("invite_used"), or "". */
const char *gm_na_last_error_code(void);
/* GET na_url + target ("/agents?capability=x") signed by node as a member read (X-Node-*
 * headers, core_internal.h). 0 once any answer arrived (resp to free, the caller judges the
 * status), as gm_http_request. max_response 0 = the default. */
int gm_na_member_get(const char *na_url, const gm_signer *node, const char *target, long timeout_ms,
                     size_t max_response, gm_http_resp *resp, gm_error *err) GM_MUST_CHECK;

/* ---- local-API client (node_client.c, gm/node.h) ---- */

/* Subscribe c to port: later lines are {"event":"message",...}. An {"ok":false} answer is an
 * error (GM_EPROTO). */
int gm_node_conn_subscribe(gm_node_conn_t *c, const char *port, int timeout_ms, gm_error *err) GM_MUST_CHECK;
/* gm_node_conn_subscribe_frames for a provider loop: the node delivers it only what may be a
 * capability request ("requests_only"), not the answers to the nested calls of the provider's
 * handlers, which go to their own connections. */
int gm_node_conn_subscribe_requests(gm_node_conn_t *c, const char *port, int timeout_ms, gm_error *err) GM_MUST_CHECK;
/* A connection kept between calls (a requester's, agent_invoke.c) is parked, not closed: 1 when
 * its node can (it lists "unsubscribe"; known after gm_node_conn_subscribe_frames). */
int gm_node_conn_can_park(const gm_node_conn_t *c);
/* Without waiting: unsubscribe c (no more messages until resubscribed), or subscribe it again
 * to port. Both are "quiet": the node answers them only when they fail (id "park" or
 * "subscribe"; an older node answers anyway, and those lines come among the others). The
 * subscription is held and goes out with c's next write (a post: one system call for both) or
 * before c's next read. */
int gm_node_conn_park(gm_node_conn_t *c, gm_error *err) GM_MUST_CHECK;
int gm_node_conn_resubscribe(gm_node_conn_t *c, const char *port, gm_error *err) GM_MUST_CHECK;
/* As gm_node_conn_read_msg, except that a JSON message event (a node without frames, or with
 * frames 1 a request that carries an "authorized" note) is returned as it is: 0 and *msg. A
 * noted frame (frames 2) is a message with its note (m->note). */
int gm_node_conn_read_unit(gm_node_conn_t *c, json_t **msg, gm_node_msg *m, int timeout_ms, gm_error *err) GM_MUST_CHECK;
/* A line read on a connection that posted seq to `to`: a negative GM_E code (GM_ENET for no
 * route, else GM_EPROTO; err names the node's error) when it reports that this send failed,
 * else 0. */
int gm_node_conn_post_failed(const json_t *line, uint32_t seq, const uint8_t to[GM_PK_LEN], gm_error *err);

#endif
