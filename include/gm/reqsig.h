/* Signed requests to the NA (formats.md "Node-signed requests", "Operator-signed admin
 * requests"): building them on the client, checking them on the server.
 *
 * Node requests carry "timestamp", "nonce" and "signature" in the JSON body; the signature
 * covers the canonical JSON of the whole body without "signature", members kept as sent
 * (timestamps are not re-rendered). Admin requests carry four X-Admin-* headers; the
 * signature covers the canonical JSON of {"body", "key_id", "nonce", "timestamp"}. */
#ifndef GM_REQSIG_H
#define GM_REQSIG_H

#include <jansson.h>
#include <stdint.h>

#include "gm/error.h"
#include "gm/gmtime.h"
#include "gm/keys.h"

/* ---- node-signed bodies ---- */

/* Set body["timestamp"] (NULL = now), body["nonce"] (NULL = fresh UUID4), then
 * body["signature"] by k over gm_reqsig_node_bytes. */
int gm_reqsig_node_sign(json_t *body, const gm_signer *k, const char *timestamp, const char *nonce,
                        gm_error *err) GM_MUST_CHECK;

#endif
