/* Client calls to the Network Authority (see gm/na_client.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gm/canon.h"
#include "gm/crl.h"
#include "gm/http_client.h"
#include "gm/na_client.h"
#include "merkle_internal.h"
#include "gm/reqsig.h"
#include "gm/util.h"
#include "client_internal.h"
#include "core_internal.h"

#define URL_MAX 1024

static _Thread_local char last_code[64];

const char *gm_na_last_error_code(void)
{
    return last_code;
}

static int make_url(char out[URL_MAX], const char *na_url, const char *path, gm_error *err)
{
    size_t n = strlen(na_url);
    while (n > 0 && na_url[n - 1] == '/')
        n--;
    if (n == 0 || snprintf(out, URL_MAX, "%.*s%s", (int)n, na_url, path) >= URL_MAX)
        return gm_error_set(err, GM_EINVAL, "bad NA URL '%s'", na_url);
    return 0;
}

static int code_for_status(int status)
{
    switch (status) {
    case 400: return GM_EINVAL;
    case 401: return GM_EAUTH;
    case 403: return GM_EDENIED;
    case 404: return GM_ENOTFOUND;
    case 409: return GM_ECONFLICT;
    case 413: return GM_ETOOBIG;
    case 429: return GM_ENET; /* rate-limited: nothing was done, the same request may be sent again later */
    default: return status >= 500 ? GM_ENET : GM_EPROTO;
    }
}

/* Turn a non-2xx answer into an error naming the NA's code and message. */
static int refused(int status, const char *body, size_t len, const char *what, gm_error *err)
{
    json_t *j = body ? json_loadb(body, len, 0, NULL) : NULL;
    const json_t *e = json_object_get(j, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    /* our NA's finer cause under a code shared with the Python reference (invalid_invite_token) */
    const char *reason = json_string_value(json_object_get(e, "reason"));
    snprintf(last_code, sizeof last_code, "%s", code ? code : "");
    int rc = gm_error_set(err, code_for_status(status), "the NA refused %s (HTTP %d%s%s%s%s): %s", what, status,
                          code ? " " : "", code ? code : "", reason ? ", " : "", reason ? reason : "",
                          msg ? msg : "no error message");
    json_decref(j);
    return rc;
}

/* One request; on 2xx *resp gets the parsed JSON body (NULL when empty). Its connection is
 * kept alive for the next (no TCP and TLS handshake per enrollment); a request signed with a
 * one-time nonce is then never re-sent by libcurl (gm_http_req.keep_alive). */
static int call(const char *url, const char *method, const char *const *headers, size_t n_headers,
                const char *body, long timeout_ms, const char *what, int *status, json_t **resp, gm_error *err)
{
    gm_http_req req = {.method = method, .url = url, .headers = headers, .n_headers = n_headers, .body = body,
                       .body_len = body ? strlen(body) : 0, .timeout_ms = timeout_ms ? timeout_ms
                                                                                     : GM_NA_CLIENT_TIMEOUT_MS,
                       /* an answer may carry a whole CRL (POST /admin/revoke) next to a few members */
                       .max_response = (size_t)GM_CRL_MAX_BYTES + 65536, .keep_alive = 1};
    gm_http_resp r = {0};
    last_code[0] = '\0';
    if (resp)
        *resp = NULL;
    int rc = gm_http_request(&req, &r, err);
    if (rc != 0)
        return rc;
    if (status)
        *status = r.status;
    if (r.status < 200 || r.status > 299) {
        rc = refused(r.status, r.body, r.len, what, err);
    } else if (resp && r.len > 0) {
        json_error_t je;
        *resp = json_loadb(r.body, r.len, JSON_REJECT_DUPLICATES, &je);
        if (!*resp)
            rc = gm_error_set(err, GM_EPROTO, "the NA answered %s with invalid JSON: %s", what, je.text);
    }
    gm_http_resp_free(&r);
    return rc;
}

int gm_na_admin_call(const char *na_url, const gm_signer *op, const char *method, const char *path,
                     const json_t *body, long timeout_ms, int *status, json_t **resp, gm_error *err)
{
    return gm_na_admin_call_ex(na_url, op, method, path, body, NULL, NULL, timeout_ms, status, resp, err);
}

int gm_na_admin_call_ex(const char *na_url, const gm_signer *op, const char *method, const char *path,
                        const json_t *body, const char *timestamp, const char *nonce, long timeout_ms, int *status,
                        json_t **resp, gm_error *err)
{
    char url[URL_MAX], h[4][GM_KEY_ID_MAX + 128], what[160];
    gm_admin_auth a;
    int is_get = strcmp(method, "GET") == 0;
    int rc = make_url(url, na_url, path, err);
    if (rc != 0)
        return rc;
    if ((rc = gm_reqsig_admin_sign(&a, is_get ? NULL : body, op, timestamp, nonce, err)) != 0)
        return rc;
    snprintf(h[0], sizeof h[0], "%s: %s", GM_ADMIN_HDR_KEY_ID, a.key_id);
    snprintf(h[1], sizeof h[1], "%s: %s", GM_ADMIN_HDR_TIMESTAMP, a.timestamp);
    snprintf(h[2], sizeof h[2], "%s: %s", GM_ADMIN_HDR_NONCE, a.nonce);
    snprintf(h[3], sizeof h[3], "%s: %s", GM_ADMIN_HDR_SIGNATURE, a.signature);
    const char *headers[] = {h[0], h[1], h[2], h[3], "Content-Type: application/json"};
    char *text = NULL;
    if (!is_get) {
        text = body ? json_dumps(body, JSON_COMPACT) : strdup("{}");
        if (!text)
            return gm_error_set(err, GM_ENOMEM, "out of memory");
    }
    snprintf(what, sizeof what, "%s %s", method, path);
    rc = call(url, method, headers, is_get ? 4 : 5, text, timeout_ms, what, status, resp, err);
    free(text);
    return rc;
}

/* Sign body as node and POST it to path; *out receives the JSON answer. */
static int node_post(const char *na_url, const char *path, const gm_signer *node, json_t *body, long timeout_ms,
                     const char *what, json_t **out, gm_error *err)
{
    char url[URL_MAX];
    int rc = make_url(url, na_url, path, err);
    if (rc == 0)
        rc = gm_reqsig_node_sign(body, node, NULL, NULL, err);
    char *text = rc == 0 ? json_dumps(body, JSON_COMPACT) : NULL;
    if (rc == 0 && !text)
        rc = gm_error_set(err, GM_ENOMEM, "out of memory");
    const char *headers[] = {"Content-Type: application/json"};
    if (rc == 0)
        rc = call(url, "POST", headers, 1, text, timeout_ms, what, NULL, out, err);
    if (rc == 0 && !json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        rc = gm_error_set(err, GM_EPROTO, "the NA answered %s without a certificate", what);
    }
    free(text);
    return rc;
}

int gm_na_join(const char *na_url, const gm_signer *node, const char *token, int64_t validity_hours,
               long timeout_ms, json_t **cert, gm_error *err)
{
    *cert = NULL;
    json_t *body = json_pack("{s:s,s:s}", "node_public_key", node->pk_b64, "invite_token", token);
    if (!body)
        return gm_error_set(err, GM_EINVAL, "invite token must be a UTF-8 string");
    if (validity_hours > 0)
        json_object_set_new(body, "validity_hours", json_integer(validity_hours));
    int rc = node_post(na_url, "/join", node, body, timeout_ms, "the join", cert, err);
    json_decref(body);
    return rc;
}

int gm_na_renew(const char *na_url, const gm_signer *node, const char *cert_id, long timeout_ms, json_t **cert,
                gm_error *err)
{
    *cert = NULL;
    json_t *body = json_pack("{s:s,s:s}", "node_public_key", node->pk_b64, "cert_id", cert_id);
    if (!body)
        return gm_error_set(err, GM_EINVAL, "certificate id must be a UTF-8 string");
    int rc = node_post(na_url, "/renew", node, body, timeout_ms, "the renewal", cert, err);
    json_decref(body);
    return rc;
}

int gm_na_fetch_genesis(const char *na_url, long timeout_ms, gm_genesis *g, char **text, gm_error *err)
{
    char url[URL_MAX];
    memset(g, 0, sizeof *g);
    if (text)
        *text = NULL;
    int rc = make_url(url, na_url, "/genesis", err);
    if (rc != 0)
        return rc;
    gm_http_req req = {.method = "GET", .url = url, .timeout_ms = timeout_ms ? timeout_ms : GM_NA_CLIENT_TIMEOUT_MS};
    gm_http_resp r = {0};
    if ((rc = gm_http_request(&req, &r, err)) != 0)
        return rc;
    if (r.status != 200)
        rc = refused(r.status, r.body, r.len, "GET /genesis", err);
    else if ((rc = gm_genesis_parse(r.body, r.len, g, err)) != 0)
        gm_error_prefix(err, "genesis block from %s", na_url);
    else if ((rc = gm_genesis_verify(g, err)) != 0)
        gm_error_prefix(err, "genesis block from %s", na_url);
    if (rc == 0 && text) {
        *text = r.body;
        r.body = NULL;
    }
    if (rc != 0)
        gm_genesis_free(g);
    gm_http_resp_free(&r);
    return rc;
}

int gm_na_fetch_crl(const char *na_url, const uint8_t na_pk[GM_PK_LEN], const char *etag, long timeout_ms,
                    gm_crl *crl, int *not_modified, char *etag_out, size_t etag_cap, gm_error *err)
{
    char url[URL_MAX], inm[300];
    *not_modified = 0;
    int rc = make_url(url, na_url, "/crl", err);
    if (rc != 0)
        return rc;
    const char *headers[1];
    size_t nh = 0;
    if (etag && etag[0]) {
        if (strlen(etag) > 256 || strpbrk(etag, "\r\n"))
            return gm_error_set(err, GM_EINVAL, "bad ETag");
        snprintf(inm, sizeof inm, "If-None-Match: %s", etag);
        headers[nh++] = inm;
    }
    gm_http_req req = {.method = "GET", .url = url, .headers = headers, .n_headers = nh,
                       .timeout_ms = timeout_ms ? timeout_ms : GM_NA_CLIENT_TIMEOUT_MS};
    gm_http_resp r = {0};
    if ((rc = gm_http_request(&req, &r, err)) != 0)
        return rc;
    if (r.status == 304) {
        *not_modified = 1;
    } else if (r.status != 200) {
        rc = refused(r.status, r.body, r.len, "GET /crl", err);
    } else if ((rc = gm_crl_parse(r.body, r.len, crl, err)) != 0) {
        gm_error_prefix(err, "CRL from %s", na_url);
    } else if ((rc = gm_crl_verify(crl, na_pk, err)) != 0) {
        gm_crl_free(crl);
    } else if (etag_out && etag_cap) {
        snprintf(etag_out, etag_cap, "%s", r.etag ? r.etag : "");
    }
    gm_http_resp_free(&r);
    return rc;
}

/* ---- answers ---- */

static int need_string(const json_t *o, const char *key, const char *what, const char **out, gm_error *err)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_string(v) || json_string_length(v) == 0 || strlen(json_string_value(v)) != json_string_length(v))
        return gm_error_set(err, GM_EPROTO, "the NA's answer to %s has %s \"%s\" (a non-empty string expected)",
                            what, v ? "a wrong-typed" : "no", key);
    *out = json_string_value(v);
    return 0;
}

static int need_object(const json_t *resp, const char *what, gm_error *err)
{
    if (!json_is_object(resp))
        return gm_error_set(err, GM_EPROTO, "the NA's answer to %s is not a JSON object", what);
    return 0;
}

/* An array of non-empty strings (at least min of them). */
static int need_strings(const json_t *o, const char *key, size_t min, const char *what, gm_error *err)
{
    const json_t *a = json_object_get(o, key), *v;
    size_t i;
    if (!json_is_array(a) || json_array_size(a) < min)
        return gm_error_set(err, GM_EPROTO, "the NA's answer to %s has %s \"%s\" (an array of strings expected)",
                            what, a ? "a wrong-typed" : "no", key);
    json_array_foreach(a, i, v) if (!json_is_string(v) || json_string_length(v) == 0) return gm_error_set(
        err, GM_EPROTO, "the NA's answer to %s has a \"%s\" entry that is not a non-empty string", what, key);
    return 0;
}

/* An optional non-negative (min 0) or positive (min 1) integer member; *out untouched when absent. */
static int opt_int(const json_t *o, const char *key, int64_t min, const char *what, int64_t *out, gm_error *err)
{
    const json_t *v = json_object_get(o, key);
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min)
        return gm_error_set(err, GM_EPROTO, "the NA's answer to %s has a wrong-typed \"%s\" (%s integer expected)",
                            what, key, min > 0 ? "a positive" : "a non-negative");
    *out = json_integer_value(v);
    return 0;
}

int gm_na_invite_answer_check(const json_t *resp, gm_na_invite_answer *out, gm_error *err)
{
    static const char what[] = "POST /admin/invite";
    const char *token_id = NULL;
    memset(out, 0, sizeof *out);
    int rc;
    if ((rc = need_object(resp, what, err)) != 0)
        return rc;
    /* ours says "token" (and "token_id"), the Python reference's NA only "token_id" */
    if (json_object_get(resp, "token") && (rc = need_string(resp, "token", what, &out->token, err)) != 0)
        return rc;
    if ((json_object_get(resp, "token_id") || !out->token) &&
        (rc = need_string(resp, "token_id", what, &token_id, err)) != 0)
        return rc;
    if (out->token && token_id && strcmp(out->token, token_id) != 0)
        return gm_error_set(err, GM_EPROTO, "the NA's answer to %s has a \"token\" and a \"token_id\" that differ",
                            what);
    if (!out->token)
        out->token = token_id;
    if ((rc = need_string(resp, "expires_at", what, &out->expires_at, err)) ||
        (json_object_get(resp, "roles") && (rc = need_strings(resp, "roles", 1, what, err))) ||
        (rc = opt_int(resp, "max_validity_hours", 1, what, &out->max_validity_hours, err)))
        return rc;
    out->first_role = json_string_value(json_array_get(json_object_get(resp, "roles"), 0));
    return 0;
}

int gm_na_revoke_answer_check(const json_t *resp, gm_na_revoke_answer *out, gm_error *err)
{
    static const char what[] = "POST /admin/revoke";
    int64_t seq = -1, ref_seq = -1, count = -1;
    int rc;
    memset(out, 0, sizeof *out);
    if ((rc = need_object(resp, what, err)) ||
        (json_object_get(resp, "revoked") && (rc = need_strings(resp, "revoked", 0, what, err))) ||
        (rc = opt_int(resp, "sequence", 0, what, &seq, err)) ||
        (rc = opt_int(resp, "crl_sequence", 0, what, &ref_seq, err)) ||
        (rc = opt_int(resp, "revoked_count", 0, what, &count, err)))
        return rc;
    /* ours: "sequence" (and the reference's members); the Python reference's NA: "crl_sequence" */
    if (seq < 0 && ref_seq < 0)
        return gm_error_set(err, GM_EPROTO, "the NA's answer to %s has no \"sequence\" or \"crl_sequence\"", what);
    if (seq >= 0 && ref_seq >= 0 && seq != ref_seq)
        return gm_error_set(err, GM_EPROTO, "the NA's answer to %s has a \"sequence\" and a \"crl_sequence\" that differ",
                            what);
    out->revoked = json_object_get(resp, "revoked");
    if (!out->revoked && count < 0)
        return gm_error_set(err, GM_EPROTO, "the NA's answer to %s has no \"revoked\" or \"revoked_count\"", what);
    if (out->revoked && count >= 0 && (size_t)count != json_array_size(out->revoked))
        return gm_error_set(err, GM_EPROTO,
                            "the NA's answer to %s lists %zu \"revoked\" but says \"revoked_count\" %lld", what,
                            json_array_size(out->revoked), (long long)count);
    out->sequence = seq >= 0 ? seq : ref_seq;
    out->count = out->revoked ? (int64_t)json_array_size(out->revoked) : count;
    return 0;
}

int gm_na_nodes_answer_check(const json_t *resp, gm_error *err)
{
    static const char what[] = "GET /admin/nodes";
    int rc = need_object(resp, what, err);
    const json_t *nodes = json_object_get(resp, "nodes"), *n;
    size_t i;
    if (rc != 0)
        return rc;
    if (!json_is_array(nodes))
        return gm_error_set(err, GM_EPROTO, "the NA's answer to %s has %s \"nodes\" (an array expected)", what,
                            nodes ? "a wrong-typed" : "no");
    json_array_foreach(nodes, i, n)
    {
        const char *s;
        const json_t *reason = json_object_get(n, "reason"), *blocked = json_object_get(n, "key_blocked");
        const json_t *seen = json_object_get(n, "last_heartbeat");
        if (!json_is_object(n))
            return gm_error_set(err, GM_EPROTO, "the NA's answer to %s: nodes[%zu] is not an object", what, i);
        if ((rc = need_string(n, "cert_id", what, &s, err)) || (rc = need_string(n, "node_public_key", what, &s, err)) ||
            (rc = need_string(n, "expires_at", what, &s, err)) || (rc = need_string(n, "status", what, &s, err)) ||
            (rc = need_strings(n, "roles", 0, what, err)))
            return gm_error_prefix(err, "nodes[%zu]", i);
        if ((reason && !json_is_string(reason) && !json_is_null(reason)) || (blocked && !json_is_boolean(blocked)) ||
            (seen && !json_is_string(seen) && !json_is_null(seen)))
            return gm_error_set(err, GM_EPROTO,
                                "the NA's answer to %s: nodes[%zu] has a wrong-typed \"reason\", \"key_blocked\" or "
                                "\"last_heartbeat\"",
                                what, i);
    }
    return 0;
}

int gm_na_clear_key_answer_check(const json_t *resp, gm_error *err)
{
    static const char what[] = "POST /admin/clear-key";
    const char *pk;
    int rc;
    if ((rc = need_object(resp, what, err)) || (rc = need_string(resp, "node_public_key", what, &pk, err)))
        return rc;
    if (!json_is_true(json_object_get(resp, "cleared")))
        return gm_error_set(err, GM_EPROTO, "the NA's answer to %s does not say \"cleared\": true", what);
    return 0;
}

/* ---- member reads ---- */

int gm_na_member_get(const char *na_url, const gm_signer *node, const char *target, long timeout_ms,
                     size_t max_response, gm_http_resp *resp, gm_error *err)
{
    char url[URL_MAX];
    gm_read_auth a;
    memset(resp, 0, sizeof *resp);
    if (!node)
        return gm_error_set(err, GM_EINVAL, "GET %s is for members of the network: it needs a node key to sign it "
                                            "(give a node directory, or ask the node: local API op \"discover\")",
                            target);
    int rc = make_url(url, na_url, target, err);
    if (rc == 0)
        rc = gm_reqsig_read_sign(&a, node, "GET", target, err);
    if (rc != 0)
        return rc;
    gm_http_req req = {.method = "GET", .url = url, .headers = a.headers, .n_headers = 4,
                       .timeout_ms = timeout_ms ? timeout_ms : GM_NA_CLIENT_TIMEOUT_MS, .max_response = max_response};
    return gm_http_request(&req, resp, err);
}

/* ---- the issuance log ---- */

static int get_json(const char *na_url, const gm_signer *node, const char *path, long timeout_ms, const char *what,
                    json_t **resp, gm_error *err)
{
    gm_http_resp r = {0};
    *resp = NULL;
    int rc = gm_na_member_get(na_url, node, path, timeout_ms, 0, &r, err);
    if (rc != 0)
        return rc;
    if (r.status != 200) {
        rc = refused(r.status, r.body, r.len, what, err);
    } else {
        json_error_t je;
        *resp = json_loadb(r.body, r.len, JSON_REJECT_DUPLICATES, &je);
        if (!*resp)
            rc = gm_error_set(err, GM_EPROTO, "the NA answered %s with invalid JSON: %s", what, je.text);
    }
    gm_http_resp_free(&r);
    if (rc == 0 && !json_is_object(*resp)) {
        json_decref(*resp);
        *resp = NULL;
        rc = gm_error_set(err, GM_EPROTO, "the NA answered %s with something other than a JSON object", what);
    }
    return rc;
}

/* answer["path"]: an array of at most GM_MERKLE_PROOF_MAX hex hashes. */
static int read_path(const json_t *answer, gm_merkle_hash path[GM_MERKLE_PROOF_MAX], size_t *count, gm_error *err)
{
    const json_t *p = json_object_get(answer, "path");
    *count = 0;
    if (!json_is_array(p) || json_array_size(p) > GM_MERKLE_PROOF_MAX)
        return gm_error_set(err, GM_EPROTO, "the NA's proof has no \"path\" array of at most %d hashes",
                            GM_MERKLE_PROOF_MAX);
    for (size_t i = 0; i < json_array_size(p); i++)
        if (gm_merkle_unhex(json_string_value(json_array_get(p, i)), path[i], err) != 0)
            return gm_error_prefix(err, "the NA's proof, hash %zu", i);
    *count = json_array_size(p);
    return 0;
}

int gm_na_log_checkpoint_any(const char *na_url, const gm_signer *node, const uint8_t (*na_pks)[GM_PK_LEN],
                             size_t n_pks, const char *network_name, long timeout_ms, gm_checkpoint *cp,
                             gm_error *err)
{
    gm_http_resp r = {0};
    int rc = gm_na_member_get(na_url, node, "/log/checkpoint", timeout_ms, GM_CHECKPOINT_MAX_BYTES, &r, err);
    if (rc != 0)
        return rc;
    if (r.status != 200)
        rc = refused(r.status, r.body, r.len, "GET /log/checkpoint", err);
    else if ((rc = gm_checkpoint_parse(r.body, r.len, cp, err)) != 0)
        gm_error_prefix(err, "checkpoint from %s", na_url);
    else {
        rc = n_pks ? GM_ESIG : gm_error_set(err, GM_ESIG, "no NA key to verify the checkpoint with");
        for (size_t i = 0; i < n_pks && rc != 0; i++)
            rc = gm_checkpoint_verify(cp, na_pks[i], network_name, err);
        if (rc != 0)
            gm_checkpoint_free(cp);
    }
    gm_http_resp_free(&r);
    return rc;
}

int gm_na_log_check_extends(const char *na_url, const gm_signer *node, const gm_checkpoint *held, const gm_checkpoint *now,
                            long timeout_ms, gm_error *err)
{
    if (!held || held->tree_size == 0)
        return 0;
    if (now->tree_size <= held->tree_size)
        return gm_merkle_verify_consistency(held->tree_size, now->tree_size, held->root, now->root, NULL, 0, err);
    char path[128];
    snprintf(path, sizeof path, "/log/consistency?first=%llu&second=%llu", (unsigned long long)held->tree_size,
             (unsigned long long)now->tree_size);
    json_t *resp = NULL;
    gm_merkle_hash proof[GM_MERKLE_PROOF_MAX];
    size_t count = 0;
    int rc = get_json(na_url, node, path, timeout_ms, "GET /log/consistency", &resp, err);
    if (rc == 0)
        rc = read_path(resp, proof, &count, err);
    json_decref(resp);
    if (rc == 0)
        rc = gm_merkle_verify_consistency(held->tree_size, now->tree_size, held->root, now->root, proof, count, err);
    return rc;
}

int gm_na_log_prove(const char *na_url, const gm_signer *node, const char *cert_id, const gm_checkpoint *cp, long timeout_ms,
                    json_t **entry, uint64_t *index, gm_error *err)
{
    char path[160];
    if (!gm_uuid_valid(cert_id))
        return gm_error_set(err, GM_EINVAL, "'%s' is not a certificate id (UUID)", cert_id);
    snprintf(path, sizeof path, "/log/proof?cert_id=%s&tree_size=%llu", cert_id, (unsigned long long)cp->tree_size);
    json_t *resp = NULL;
    gm_merkle_hash proof[GM_MERKLE_PROOF_MAX], leaf;
    size_t count = 0;
    char *text = NULL;
    size_t len = 0;
    int rc = get_json(na_url, node, path, timeout_ms, "GET /log/proof", &resp, err);
    const json_t *e = json_object_get(resp, "entry"), *ix = json_object_get(resp, "index");
    if (rc == 0 && (!json_is_object(e) || !json_is_integer(ix) || json_integer_value(ix) < 0))
        rc = gm_error_set(err, GM_EPROTO, "the NA's inclusion proof has no \"entry\" object or \"index\"");
    const char *about = json_string_value(json_object_get(e, "cert_id"));
    if (rc == 0 && (!about || strcmp(about, cert_id) != 0))
        rc = gm_error_set(err, GM_EPROTO, "the NA's inclusion proof is about another certificate");
    if (rc == 0)
        rc = read_path(resp, proof, &count, err);
    /* the leaf is recomputed from the entry itself: the NA's leaf_hash is not trusted */
    if (rc == 0)
        rc = gm_canon_dump(e, &text, &len, err);
    if (rc == 0) {
        gm_merkle_leaf_hash(text, len, leaf);
        rc = gm_merkle_verify_inclusion(leaf, (uint64_t)json_integer_value(ix), cp->tree_size, proof, count, cp->root,
                                        err);
    }
    free(text);
    if (rc == 0) {
        if (index)
            *index = (uint64_t)json_integer_value(ix);
        if (entry)
            *entry = json_incref((json_t *)e);
    }
    json_decref(resp);
    return rc;
}
