/* Client side of the NA API (docs/na-api.md), used by the CLI and the node runtime:
 * operator-signed admin calls, join and renew with proof of possession, the genesis block,
 * and the CRL with ETag / If-None-Match. All calls are synchronous over gm/http_client.h.
 *
 * When the NA answers with its error envelope, the call fails with a code that follows the
 * status (400 GM_EINVAL, 401 GM_EAUTH, 403 GM_EDENIED, 404 GM_ENOTFOUND, 409 GM_ECONFLICT,
 * 413 GM_ETOOBIG, 5xx GM_ENET) and the message
 * "the NA refused <what> (HTTP <status> <code>): <message>". */
#ifndef GM_NA_CLIENT_H
#define GM_NA_CLIENT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "gm/crl.h"
#include "gm/merkle.h"
#include "gm/error.h"
#include "gm/genesis.h"
#include "gm/keys.h"

#define GM_NA_CLIENT_TIMEOUT_MS 15000L

/* Operator-signed request: method "GET" or "POST", path like "/admin/invite", body NULL
 * for {} (GET always signs {}). On 2xx returns 0 and *resp (may be NULL if not wanted);
 * *status (optional) receives the HTTP status whenever a response arrived. */
int gm_na_admin_call(const char *na_url, const gm_signer *op, const char *method, const char *path,
                     const json_t *body, long timeout_ms, int *status, json_t **resp, gm_error *err) GM_MUST_CHECK;

/* Same, with an explicit timestamp and nonce (NULL = now / fresh), for tests and tools. */
int gm_na_admin_call_ex(const char *na_url, const gm_signer *op, const char *method, const char *path,
                        const json_t *body, const char *timestamp, const char *nonce, long timeout_ms,
                        int *status, json_t **resp, gm_error *err) GM_MUST_CHECK;

/* POST /join: a signed body for node's key; validity_hours 0 = the invite's maximum.
 * *cert receives the certificate JSON as returned (not verified here: see gm_cert_verify). */
int gm_na_join(const char *na_url, const gm_signer *node, const char *token, int64_t validity_hours,
               long timeout_ms, json_t **cert, gm_error *err) GM_MUST_CHECK;
/* POST /renew for cert_id held by node. */
int gm_na_renew(const char *na_url, const gm_signer *node, const char *cert_id, long timeout_ms,
                json_t **cert, gm_error *err) GM_MUST_CHECK;

/* GET /genesis, parsed and verified under its own root key. *text (optional, malloc'd)
 * receives the bytes as served. Pin it by comparing with a known file or root key. */
int gm_na_fetch_genesis(const char *na_url, long timeout_ms, gm_genesis *g, char **text,
                        gm_error *err) GM_MUST_CHECK;

/* GET /crl with If-None-Match: etag (NULL or "" to fetch unconditionally). On 304 returns 0
 * with *not_modified = 1 and crl untouched. Otherwise the CRL is parsed and verified under
 * na_pk into *crl, and its ETag copied into etag_out (etag_cap bytes, may be NULL). */
int gm_na_fetch_crl(const char *na_url, const uint8_t na_pk[GM_PK_LEN], const char *etag,
                    long timeout_ms, gm_crl *crl, int *not_modified, char *etag_out, size_t etag_cap,
                    gm_error *err) GM_MUST_CHECK;

/* ---- checking the NA's answers (strict: a missing or wrong-typed member is GM_EPROTO with a
 * message naming it; the strings returned are borrowed from the JSON value) ---- */

/* POST /admin/invite: ours {"token", "token_id", "roles", "expires_at", "max_validity_hours"}
 * or the Python reference NA's {"token_id", "expires_at"}: the token is "token" or "token_id"
 * (the same when both are there); roles and max_validity_hours only when the NA says them. */
typedef struct gm_na_invite_answer {
    const char *token;
    const char *first_role;     /* NULL when the answer has no "roles" */
    const char *expires_at;
    int64_t max_validity_hours; /* 0 when the answer has none */
} gm_na_invite_answer;
int gm_na_invite_answer_check(const json_t *resp, gm_na_invite_answer *out, gm_error *err) GM_MUST_CHECK;

/* POST /admin/revoke: ours {"revoked": [cert ids], "sequence": n, "crl": ..., and the
 * reference's members} or the Python reference NA's {"crl_sequence": n, "revoked_count": k}. */
typedef struct gm_na_revoke_answer {
    int64_t sequence;      /* of the CRL that lists the revocation */
    int64_t count;         /* certificates revoked */
    const json_t *revoked; /* the cert ids (borrowed), NULL when the NA does not list them */
} gm_na_revoke_answer;
int gm_na_revoke_answer_check(const json_t *resp, gm_na_revoke_answer *out, gm_error *err) GM_MUST_CHECK;

/* GET /admin/nodes: {"nodes": [{cert_id, node_public_key, roles, expires_at, status, ...,
 * last_heartbeat (timestamp or null)}]}. */
int gm_na_nodes_answer_check(const json_t *resp, gm_error *err) GM_MUST_CHECK;


/* POST /admin/clear-key: {"node_public_key", "cleared": true}. */
int gm_na_clear_key_answer_check(const json_t *resp, gm_error *err) GM_MUST_CHECK;

/* ---- the issuance log (docs/na-api.md "Issuance log"; members only: every read is signed by
 * node, a key holding a valid certificate of the network) ---- */

/* GET /log/checkpoint (a read signed by node, a member), parsed and verified for network_name
 * under any of the n_pks NA keys (one, or during an NA key rotation those of the genesis blocks
 * held: docs/formats-notes.md, "Successor genesis blocks"). */
int gm_na_log_checkpoint_any(const char *na_url, const gm_signer *node, const uint8_t (*na_pks)[GM_PK_LEN],
                             size_t n_pks, const char *network_name, long timeout_ms, gm_checkpoint *cp,
                             gm_error *err) GM_MUST_CHECK;
/* 0 if the log of checkpoint now extends the one of held (held NULL or empty: nothing to
 * check): the same root at the same size, or a consistency proof from the NA that verifies.
 * GM_ESIG for a fork or a shrunk log. */
int gm_na_log_check_extends(const char *na_url, const gm_signer *node, const gm_checkpoint *held, const gm_checkpoint *now,
                            long timeout_ms, gm_error *err) GM_MUST_CHECK;
/* 0 if certificate cert_id was issued (or renewed) in the log of cp: the NA's entry, rehashed
 * here, and its inclusion proof verify against cp's root. *entry (optional) the entry, *index
 * (optional) its position. */
int gm_na_log_prove(const char *na_url, const gm_signer *node, const char *cert_id, const gm_checkpoint *cp, long timeout_ms,
                    json_t **entry, uint64_t *index, gm_error *err) GM_MUST_CHECK;

#endif
