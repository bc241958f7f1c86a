/* The client layer's private API: the parts of the NA client and of the node's local-API
 * client that the agent layer and the tests use but no program does. */
#ifndef GM_CLIENT_INTERNAL_H
#define GM_CLIENT_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "gm/error.h"
#include "gm/keys.h"
#include "gm/na_client.h"
#include "gm/node.h"

/* ---- NA client (na_client.c, gm/na_client.h) ---- */

/* The NA's error code of the last failed call in this thread ("invite_used"), or "". */
const char *gm_na_last_error_code(void);

/* ---- local-API client (node_client.c, gm/node.h) ---- */

/* Send data to the node key `to` on port through the node at sock_path; an {"ok":false}
 * answer is an error: GM_ENET when the node has no route, else GM_EPROTO. */
int gm_node_api_send(const char *sock_path, const uint8_t to[GM_PK_LEN], const char *port,
                     const void *data, size_t len, int timeout_ms, gm_error *err);

/* Subscribe c to port: later lines are {"event":"message",...}. An {"ok":false} answer is an
 * error (GM_EPROTO). */
int gm_node_conn_subscribe(gm_node_conn_t *c, const char *port, int timeout_ms, gm_error *err) GM_MUST_CHECK;

#endif
