/* Running-node part of `status` (src/status_node.c). */
#ifndef GM_STATUS_NODE_H
#define GM_STATUS_NODE_H

#include <jansson.h>

#include "gm/error.h"

/* If a node runs in dir, copy its "running", "crl_sequence", "peers", "routes", "metrics",
 * "listen" and "revoked" into status; otherwise set "running": false. 0 or a negative code. */
int status_node_append(const char *dir, json_t *status, gm_error *err);

#endif
