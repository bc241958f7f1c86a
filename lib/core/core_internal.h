/* The core layer's private API: the functions and types of lib/core/ that the other layers of
 * the library (and the unit tests, fuzz targets and benchmarks, which link the static library)
 * use but no program outside lib/ does, so libgenesismesh.so does not export them. Each section
 * extends the public header it names. */
#ifndef GM_CORE_INTERNAL_H
#define GM_CORE_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "gm/agent.h"
#include "gm/canon.h"
#include "gm/cert.h"
#include "gm/crl.h"
#include "gm/error.h"
#include "gm/genesis.h"
#include "gm/gmtime.h"
#include "gm/http_client.h"
#include "gm/keys.h"
#include "gm/log.h"
#include "gm/policy.h"
#include "gm/reqsig.h"
#include "gm/sigdoc.h"
#include "gm/tls.h"
#include "gm/util.h"

/* ---- canonical JSON (canon.c, gm/canon.h) ---- */

/* Serialize v canonically: sorted keys, no whitespace, lowercase \u escapes for all
 * non-printable-ASCII, surrogate pairs above U+FFFF. Floats are refused (GM_EFORMAT).
 * *out is malloc'd, NUL-terminated; *len excludes the NUL. */
int gm_canon_dump(const json_t *v, char **out, size_t *len, gm_error *err) GM_MUST_CHECK;

/* ---- certificates (cert.c, gm/cert.h) ---- */

/* Strict parse, no signature check (gm_cert_verify does that). */
int gm_cert_parse(const char *text, size_t len, gm_cert *c, gm_error *err) GM_MUST_CHECK;
/* Issue and sign a certificate. roles: array of strings (borrowed, copied). */
int gm_cert_issue(gm_cert *c, const gm_signer *na, const char *network_name,
                  const uint8_t node_pk[GM_PK_LEN], const json_t *roles, gm_time issued_at,
                  gm_time expires_at, gm_error *err) GM_MUST_CHECK;
/* 1 if the certificate carries role. */
int gm_cert_has_role(const gm_cert *c, const char *role);
/* gm_cert_verify under every trusted block gs[0..k) (an NA key rotation holds up to three, newest
 * first): 0 under the first whose NA key signed it, else that block's error; GM_ESIG when none did. */
int gm_cert_verify_any(const gm_cert *c, const gm_genesis *const gs[], size_t k, const gm_crl *crl, gm_time now,
                       gm_error *err) GM_MUST_CHECK;

/* ---- CRLs (crl.c, gm/crl.h) ---- */

int gm_crl_from_json(const json_t *doc, gm_crl *c, gm_error *err) GM_MUST_CHECK; /* copies doc */
/* The one freshness rule: a CRL replaces the one held only with a strictly higher sequence
 * (have_current = 0: none is held, any CRL is newer). */
int gm_crl_is_newer(uint64_t sequence, int have_current, uint64_t current);
/* Build and sign a CRL. revoked is an array of {certificate_id, revoked_at, reason, issuer}
 * (borrowed, copied). next_update = issued_at + next_update_s. */
int gm_crl_issue(gm_crl *c, const gm_signer *na, uint64_t sequence, const json_t *revoked,
                 gm_time issued_at, int64_t next_update_s, gm_error *err) GM_MUST_CHECK;
/* Compact JSON (exact bytes to serve / store), malloc'd. */
char *gm_crl_dump(const gm_crl *c, int pretty);

/* ---- errors (error.c, gm/error.h) ---- */

/* Back to no error (code 0, empty message). */
void gm_error_clear(gm_error *e);

/* ---- genesis blocks (genesis.c, gm/genesis.h) ---- */

/* The network's identity, the same for every successor: SHA-256 of "genesis-mesh/v1/network-id",
 * a zero byte, root_public_key (32 bytes) and network_name (UTF-8). Bound by the Noise prologues. */
void gm_genesis_network_id(const gm_genesis *g, uint8_t out[32]);

/* network_version "vMAJOR.MINOR" (decimal, 0..999999999 each, no leading zeros) as one ordered
 * number, MAJOR << 32 | MINOR. GM_EFORMAT for any other spelling. */
int gm_genesis_version(const gm_genesis *g, uint64_t *out, gm_error *err) GM_MUST_CHECK;
/* The NA public key among the trusted blocks gs[0..k) under which a signature of doc verifies,
 * or NULL. */
const uint8_t *gm_genesis_na_key_for(const gm_genesis *const gs[], size_t k, const json_t *doc);
/* A deep copy of src into dst (free with gm_genesis_free). */
int gm_genesis_dup(const gm_genesis *src, gm_genesis *dst, gm_error *err) GM_MUST_CHECK;

/* ---- time (gmtime.c, gm/gmtime.h) ---- */

/* The instant unix_s seconds after the epoch, UTC. */
gm_time gm_time_from_unix(int64_t unix_s);
/* Re-render a timestamp string canonically (parse + format); GM_EFORMAT if unparsable. */
int gm_time_canonical(const char *in, char out[GM_TIME_STRLEN], gm_error *err);

/* ---- HTTP client (http_client.c, gm/http_client.h) ---- */

/*
 * GET url (with extra "Name: value" headers) and parse the body as JSON.
 * *status_out gets the HTTP status whenever a response arrived, so a 4xx with a
 * JSON error body returns 0 and that body. *json_out (caller owns, json_decref)
 * is NULL when the body is empty. A non-empty body that is not JSON (duplicate
 * keys included) gives GM_EPROTO. timeout_ms 0 = default; max response is the default.
 */
int gm_http_get_json(const char *url, const char *const *headers, size_t n_headers,
                     long timeout_ms, int *status_out, json_t **json_out, gm_error *err) GM_MUST_CHECK;

/*
 * POST body serialised as compact JSON with "Content-Type: application/json",
 * otherwise as gm_http_get_json. Callers that sign exact bytes must serialise
 * themselves and use gm_http_request.
 */
int gm_http_post_json(const char *url, const char *const *headers, size_t n_headers,
                      const json_t *body, long timeout_ms, int *status_out, json_t **json_out,
                      gm_error *err);

/* ---- keys (keys.c, gm/keys.h) ---- */

/* The signer whose Ed25519 seed is seed (test vectors, deterministic keys). */
int gm_signer_from_seed(gm_signer *k, const uint8_t seed[GM_SEED_LEN], const char *key_id, gm_error *err);
/* Parse the text of a .pub file (as gm_pk_load does after reading it). */
int gm_pk_parse_text(const char *text, uint8_t pk[GM_PK_LEN], gm_error *err);
/* 0 if sig_b64 is a valid signature of msg by pk, else GM_ESIG (or GM_EFORMAT for bad base64). */
int gm_verify_b64(const uint8_t pk[GM_PK_LEN], const uint8_t *msg, size_t len, const char *sig_b64,
                  gm_error *err) GM_MUST_CHECK;

/* One of a batch of independent signature checks: rc is set to what gm_verify_b64 returns. */
typedef struct gm_verify_item {
    const uint8_t *pk;
    const uint8_t *msg;
    size_t len;
    const char *sig_b64;
    int rc;
} gm_verify_item;
/* gm_verify_b64 on each of v[0..n), on two cores when there are several (a helper thread of
 * this process takes a share; see keys.c). */
void gm_verify_b64_many(gm_verify_item *v, size_t n);

/* ---- log (log.c, gm/log.h) ---- */

/* 1 if a record of this level would reach a handler. */
int gm_log_enabled(gm_log_level level);
/* "debug", "info", "warn", "error". */
const char *gm_log_level_name(gm_log_level level);
/* The record as one line without the newline (malloc'd, NULL when out of memory). JSON is
 * ASCII with control characters escaped; text shows them as \xNN so a log cannot drive a
 * terminal. */
char *gm_log_format_line(const gm_log_record *rec, gm_log_format format);

/* ---- access policy (policy.c, gm/policy.h) ---- */

/* The inverse of gm_policy_kind_name: the kind, or -1 for an unknown name. */
int gm_policy_kind_parse(const char *name);
int gm_policy_from_json(const json_t *doc, gm_policy *p, gm_error *err) GM_MUST_CHECK; /* copies doc */
/* 1 if name matches pattern: equal, "*", or "prefix*" where prefix ends in '.', ':' or '-'. */
int gm_policy_match(const char *pattern, const char *name);

/* ---- signed requests (reqsig.c, gm/reqsig.h) ---- */

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
/* Only the signature: 0, GM_ESIG, or GM_EFORMAT when "signature" is missing or not base64. */
int gm_reqsig_node_verify(const json_t *body, const uint8_t pk[GM_PK_LEN], gm_error *err) GM_MUST_CHECK;
/* The whole server-side check, in this order: "timestamp" and "nonce" well formed
 * (GM_EFORMAT), timestamp within window_s of now (GM_EEXPIRED), signature (GM_ESIG /
 * GM_EFORMAT), and only then the nonce recorded under scope (GM_ECONFLICT if replayed), so a
 * forger cannot burn nonces. record may be NULL to skip that step. */
int gm_reqsig_node_check(const json_t *body, const uint8_t pk[GM_PK_LEN], gm_time now, int64_t window_s,
                         const char *scope, gm_nonce_record_fn record, void *ctx, gm_error *err) GM_MUST_CHECK;

/* ---- node-signed reads (GET /agents, /log/...: docs/na-api.md "Member reads") ----
 * The same scheme as node-signed bodies, for requests without one: the node signs the body
 * {"method", "path", "query": {name: value, ...}, "node_public_key", "timestamp", "nonce"}
 * that both sides build from the request line, and sends the four X-Node-* headers. */

#define GM_NODE_HDR_KEY "X-Node-Public-Key"
#define GM_NODE_HDR_TIMESTAMP "X-Node-Timestamp"
#define GM_NODE_HDR_NONCE "X-Node-Nonce"
#define GM_NODE_HDR_SIGNATURE "X-Node-Signature"
#define GM_REQSIG_QUERY_MAX 8 /* query parameters a signed read may carry */

typedef struct gm_read_auth {
    char line[4][160];        /* "Name: value" */
    const char *headers[4];   /* -> line, for gm_http_req.headers */
} gm_read_auth;

/* The body a node signs for a read (new reference; NULL when out of memory or not UTF-8). */
json_t *gm_reqsig_read_body(const char *method, const char *path, const json_t *query, const char *pk_b64,
                            const char *timestamp, const char *nonce);
/* Sign method and target ("/agents?capability=x": path, then name=value pairs joined by '&',
 * no percent-encoding) with k: a->headers holds the four header lines. GM_EINVAL for a target
 * it cannot sign (percent-encoded, repeated or too many parameters). */
int gm_reqsig_read_sign(gm_read_auth *a, const gm_signer *k, const char *method, const char *target,
                        gm_error *err) GM_MUST_CHECK;

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
                           gm_error *err) GM_MUST_CHECK;
/* Same order as gm_reqsig_node_check; the nonce scope is a->key_id. */
int gm_reqsig_admin_check(const gm_admin_auth *a, const json_t *body, const uint8_t pk[GM_PK_LEN], gm_time now,
                          int64_t window_s, gm_nonce_record_fn record, void *ctx, gm_error *err) GM_MUST_CHECK;
/* Freshness alone: timestamp parses, carries an offset, and is within window_s of now. */
int gm_reqsig_check_time(const char *timestamp, gm_time now, int64_t window_s, gm_error *err) GM_MUST_CHECK;

/* ---- signed documents (sigdoc.c, gm/sigdoc.h) ---- */

/* Append a signature by k (key_id = k->key_id) to doc["signatures"]. */
int gm_sigdoc_sign(json_t *doc, const gm_signer *k, gm_error *err);
/* 0 if at least one signature verifies under pk. */
int gm_sigdoc_verify_any(const json_t *doc, const uint8_t pk[GM_PK_LEN], gm_error *err) GM_MUST_CHECK;
/* Check doc["signatures"] is a well-formed array of {key_id: string, sig: 88-char base64}. */
int gm_sigdoc_check_shape(const json_t *doc, gm_error *err) GM_MUST_CHECK;
/* The one loader of signed documents: what a kind of document needs to be read. */
typedef struct gm_sigdoc_kind {
    const char *what;  /* "certificate", "CRL", ... (in messages) */
    size_t max_bytes;  /* larger text is refused with GM_ETOOBIG before parsing */
    size_t out_size;   /* sizeof the struct from_json fills (zeroed on every failure) */
    /* Normalize src into out (copies what it keeps); on failure out holds nothing to free. */
    int (*from_json)(const json_t *src, void *out, gm_error *err);
} gm_sigdoc_kind;

/* Strict JSON (duplicate members refused, at most k->max_bytes) handed to k->from_json. */
int gm_sigdoc_parse(const gm_sigdoc_kind *k, const char *text, size_t len, void *out, gm_error *err) GM_MUST_CHECK;
/* gm_sigdoc_parse of a file's contents; messages are prefixed with the path. */
int gm_sigdoc_load(const gm_sigdoc_kind *k, const char *path, void *out, gm_error *err) GM_MUST_CHECK;
/* Schema helpers used by the document parsers (strict types, clear messages). */
int gm_json_get_string(const json_t *obj, const char *key, const char **out, gm_error *err);
int gm_json_get_pk(const json_t *obj, const char *key, uint8_t pk[GM_PK_LEN], gm_error *err);
/* Replace obj[key] (a timestamp string) with its canonical rendering; *t receives the value. */
struct gm_time;
int gm_json_norm_time(json_t *obj, const char *key, struct gm_time *t, gm_error *err);
int gm_json_check_string_array(const json_t *arr, const char *what, gm_error *err);

/* ---- TLS (tls.c, gm/tls.h) ---- */

/* 0 if s is one pin or several joined by ';' (as CURLOPT_PINNEDPUBLICKEY takes them). */
int gm_tls_pin_check(const char *s, gm_error *err) GM_MUST_CHECK;

/* ---- utilities (util.c, gm/util.h) ---- */

/* 0 when the JSON text data[0..len) cannot hold a string equal to text (its bytes occur
 * nowhere and there is no \u escape that could spell them), else 1: a test that spares a
 * parse of messages that are certainly something else. */
int gm_json_may_hold(const void *data, size_t len, const char *text);

/* Strict base64 decode of any length up to out_cap; *out_len receives the decoded length. */
int gm_b64_decode(const char *in, uint8_t *out, size_t out_cap, size_t *out_len, gm_error *err) GM_MUST_CHECK;
/* Strict decode: only "+/=" alphabet with padding, exactly expect_len bytes, nothing trailing. */
int gm_b64_decode_exact(const char *in, uint8_t *out, size_t expect_len, gm_error *err) GM_MUST_CHECK;
/* Append printf-style text to b. */
void gm_buf_printf(gm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Random UUID version 4, lowercase, 36 chars + NUL. */
void gm_uuid4(char out[37]);
/* UUID version 7 (time first, then 62 random bits), lowercase, 36 chars + NUL: the ids one
 * process makes sort in the order it made them, so a B-tree keyed by them (the NA's
 * certificates) grows at its end instead of at a random page. */
void gm_uuid7(char out[37]);
/* 1 if s is a canonical lowercase/uppercase 8-4-4-4-12 UUID. */
int gm_uuid_valid(const char *s);

/* ---- agent descriptors (agent_desc.c, gm/agent.h) ---- */

/* Build and sign a descriptor with the node key (key_id = the node public key).
 * caps: array of capability names (normalised here). endpoint_host may be NULL. */
int gm_agent_desc_build(gm_agent_desc *d, const gm_signer *node, const char *agent_id,
                        const char *network_name, const json_t *caps, const char *endpoint_host,
                        int endpoint_port, gm_time registered_at, int ttl_s,
                        const json_t *metadata, gm_error *err);
/* Strict parse + normalisation (timestamps canonical, capabilities dotted). No signature check. */
int gm_agent_desc_from_json(const json_t *src, gm_agent_desc *d, gm_error *err) GM_MUST_CHECK;
int gm_agent_desc_parse(const char *text, size_t len, gm_agent_desc *d, gm_error *err) GM_MUST_CHECK;
/* Every signature verifies under node_public_key and one has key_id = node_public_key. */
int gm_agent_desc_verify(const gm_agent_desc *d, gm_error *err) GM_MUST_CHECK;
/* Registry window: |registered_at - now| <= GM_AGENT_WINDOW_S, registered_at < expires_at
 * <= registered_at + max_ttl_s. */
int gm_agent_desc_check_window(const gm_agent_desc *d, gm_time now, int max_ttl_s, gm_error *err) GM_MUST_CHECK;
/* 0 while now <= expires_at + skew, else GM_EEXPIRED. */
int gm_agent_desc_check_live(const gm_agent_desc *d, gm_time now, gm_error *err) GM_MUST_CHECK;
const char *gm_agent_desc_cap(const gm_agent_desc *d, size_t i);
int gm_agent_desc_has_cap(const gm_agent_desc *d, const char *cap /* normalised */);
void gm_agent_desc_free(gm_agent_desc *d);
/* *dst: the same descriptor as src, sharing its document (as gm_cert_share). */
void gm_agent_desc_share(const gm_agent_desc *src, gm_agent_desc *dst);
/* *dst: the same certificate as src, sharing its document (never changed once parsed; jansson
 * counts references atomically, so threads may share it). Each is freed with gm_cert_free. */
void gm_cert_share(const gm_cert *src, gm_cert *dst);
/* *dst: the same CRL as src, sharing its document (as gm_cert_share); each freed with
 * gm_crl_free. */
void gm_crl_share(const gm_crl *src, gm_crl *dst);

/* ---- tls.c, log.c (more) ---- */
/* Check the first certificate of a PEM file: it parses, it is valid now, and (when key_path is
 * not NULL) the PEM private key in key_path is its key. not_after (optional) receives the end
 * of its validity, unix seconds. */
int gm_tls_cert_check(const char *cert_path, const char *key_path, int64_t *not_after, gm_error *err)
    GM_MUST_CHECK;

/* Reopen lf->path (appending, created 0644 when missing) under the same FILE, for log
 * rotation: after `mv` of the file, the next record goes to a new file at the path. Nothing
 * to do (0) when there is no path. Async-signal-safe (open, dup2, close); 0 or -1. */
int gm_log_file_reopen(gm_log_file *lf);

/* path exists, is a regular file (dir: a directory) owned by this user, and grants nothing to
 * group or others (0600 / 0700); the message names the path, its mode and the chmod to run. */
int gm_file_check_private(const char *path, int dir, gm_error *err) GM_MUST_CHECK;

#endif
