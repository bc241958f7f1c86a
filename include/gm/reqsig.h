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

/* How far a request timestamp may be from the verifier's clock, each way (seconds). */
#define GM_REQSIG_WINDOW_S 300
/* Longest timestamp or nonce accepted. */
#define GM_REQSIG_FIELD_MAX 64

#define GM_ADMIN_HDR_KEY_ID "X-Admin-Key-Id"
#define GM_ADMIN_HDR_TIMESTAMP "X-Admin-Timestamp"
#define GM_ADMIN_HDR_NONCE "X-Admin-Nonce"
#define GM_ADMIN_HDR_SIGNATURE "X-Admin-Signature"

/* Records a nonce for a scope; returns 0 if it is new, GM_ECONFLICT if already seen
 * (or another negative code if it could not be recorded). The NA persists them. */
typedef int (*gm_nonce_record_fn)(void *ctx, const char *scope, const char *nonce, int64_t now,
                                  gm_error *err);

/* ---- node-signed bodies ---- */

/* Canonical bytes a node signs: body without its "signature" member. *out malloc'd. */
int gm_reqsig_node_bytes(const json_t *body, char **out, size_t *len, gm_error *err);
/* Set body["timestamp"] (NULL = now), body["nonce"] (NULL = fresh UUID4), then
 * body["signature"] by k over gm_reqsig_node_bytes. */
int gm_reqsig_node_sign(json_t *body, const gm_signer *k, const char *timestamp, const char *nonce,
                        gm_error *err);
/* Only the signature: 0, GM_ESIG, or GM_EFORMAT when "signature" is missing or not base64. */
int gm_reqsig_node_verify(const json_t *body, const uint8_t pk[GM_PK_LEN], gm_error *err);
/* The whole server-side check, in this order: "timestamp" and "nonce" well formed
 * (GM_EFORMAT), timestamp within window_s of now (GM_EEXPIRED), signature (GM_ESIG /
 * GM_EFORMAT), and only then the nonce recorded under scope (GM_ECONFLICT if replayed), so a
 * forger cannot burn nonces. record may be NULL to skip that step. */
int gm_reqsig_node_check(const json_t *body, const uint8_t pk[GM_PK_LEN], gm_time now, int64_t window_s,
                         const char *scope, gm_nonce_record_fn record, void *ctx, gm_error *err);

/* ---- operator-signed admin requests ---- */

typedef struct gm_admin_auth {
    char key_id[GM_KEY_ID_MAX];
    char timestamp[GM_REQSIG_FIELD_MAX + 1]; /* verbatim, as sent in the header */
    char nonce[GM_REQSIG_FIELD_MAX + 1];
    char signature[GM_SIG_B64_LEN + 1];
} gm_admin_auth;

/* Canonical bytes of {"body": body or {}, "key_id", "nonce", "timestamp"}; *out malloc'd. */
int gm_reqsig_admin_bytes(const json_t *body, const char *key_id, const char *nonce, const char *timestamp,
                          char **out, size_t *len, gm_error *err);
/* Fill a with the four header values for body (NULL = {}) signed by op (key id op->key_id).
 * timestamp NULL = now, nonce NULL = fresh UUID4. */
int gm_reqsig_admin_sign(gm_admin_auth *a, const json_t *body, const gm_signer *op, const char *timestamp,
                         const char *nonce, gm_error *err);
/* Copy the four header values into a, refusing missing or oversized ones (GM_EAUTH). */
int gm_reqsig_admin_from_headers(gm_admin_auth *a, const char *key_id, const char *timestamp,
                                 const char *nonce, const char *signature, gm_error *err);
/* Only the signature under pk. */
int gm_reqsig_admin_verify(const gm_admin_auth *a, const json_t *body, const uint8_t pk[GM_PK_LEN],
                           gm_error *err);
/* Same order as gm_reqsig_node_check; the nonce scope is a->key_id. */
int gm_reqsig_admin_check(const gm_admin_auth *a, const json_t *body, const uint8_t pk[GM_PK_LEN], gm_time now,
                          int64_t window_s, gm_nonce_record_fn record, void *ctx, gm_error *err);

/* Freshness alone: timestamp parses, carries an offset, and is within window_s of now. */
int gm_reqsig_check_time(const char *timestamp, gm_time now, int64_t window_s, gm_error *err);

#endif
