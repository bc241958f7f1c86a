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

#endif
