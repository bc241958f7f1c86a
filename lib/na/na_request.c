/* Strict reading of request bodies for the NA handlers: one JSON object, known members
 * only, typed and bounded fields, and the node's proof of possession. Every failure replies
 * with a 4xx naming the field, and nothing has been written yet. */
#include <stdio.h>
#include <string.h>

#include "gm/util.h"
#include "na_internal.h"

json_t *na_body_object(na_req *r, const char *const *allowed)
{
    json_error_t je;
    if (r->body_len == 0)
        return na_reply_error(r, 400, "malformed_json", "request body is empty; a JSON object is expected"), NULL;
    json_t *v = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &je);
    if (!v)
        return na_reply_error(r, 400, "malformed_json", "request body is not valid JSON: %s (line %d, column %d)",
                              je.text, je.line, je.column),
               NULL;
    if (!json_is_object(v)) {
        json_decref(v);
        return na_reply_error(r, 400, "invalid_body", "request body must be a JSON object"), NULL;
    }
    if (na_check_members(r, v, allowed) != 0) {
        json_decref(v);
        return NULL;
    }
    return v;
}

int na_check_members(na_req *r, const json_t *o, const char *const *allowed)
{
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)o, key, val)
    {
        int ok = 0;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = !strcmp(key, allowed[i]);
        if (!ok)
            return na_reply_error(r, 400, "unknown_field", "unknown member \"%.64s\" in request body", key), -1;
    }
    return 0;
}

int na_get_string(na_req *r, const json_t *o, const char *key, int required, size_t max_len, const char **out)
{
    const json_t *v = json_object_get(o, key);
    *out = NULL;
    if (!v) {
        if (required)
            return na_reply_error(r, 400, "missing_field", "missing \"%s\"", key), -1;
        return 0;
    }
    if (!json_is_string(v))
        return na_reply_error(r, 400, "invalid_field", "\"%s\" must be a string", key), -1;
    size_t n = json_string_length(v);
    if (n == 0 || n > max_len || strlen(json_string_value(v)) != n)
        return na_reply_error(r, 400, "invalid_field", "\"%s\" must be 1..%zu characters", key, max_len), -1;
    *out = json_string_value(v);
    return 0;
}

int na_get_int(na_req *r, const json_t *o, const char *key, int required, int64_t min, int64_t max, int64_t def,
               int64_t *out)
{
    const json_t *v = json_object_get(o, key);
    if (!v) {
        if (required)
            return na_reply_error(r, 400, "missing_field", "missing \"%s\"", key), -1;
        *out = def;
        return 0;
    }
    if (!json_is_integer(v))
        return na_reply_error(r, 400, "invalid_field", "\"%s\" must be an integer", key), -1;
    json_int_t x = json_integer_value(v);
    if (x < min || x > max)
        return na_reply_error(r, 400, "invalid_field", "\"%s\" must be between %lld and %lld", key, (long long)min,
                              (long long)max),
               -1;
    *out = x;
    return 0;
}

int na_get_pk(na_req *r, const json_t *o, const char *key, uint8_t pk[GM_PK_LEN], const char **b64)
{
    if (na_get_string(r, o, key, 1, 256, b64) != 0)
        return -1;
    gm_error e = {0};
    if (gm_pk_decode(*b64, pk, &e) != 0)
        return na_reply_error(r, 400, "bad_base64", "\"%s\" is not a 32-byte key in standard base64: %s", key, e.msg),
               -1;
    return 0;
}

int na_check_pop(na_req *r, const json_t *body, const uint8_t pk[GM_PK_LEN])
{
    const char *ts, *nonce, *sig;
    uint8_t raw[GM_SIG_LEN];
    gm_error e = {0};
    if (na_get_string(r, body, "timestamp", 1, GM_REQSIG_FIELD_MAX, &ts) != 0 ||
        na_get_string(r, body, "nonce", 1, GM_REQSIG_FIELD_MAX, &nonce) != 0 ||
        na_get_string(r, body, "signature", 1, 256, &sig) != 0)
        return -1;
    if (!gm_uuid_valid(nonce))
        return na_reply_error(r, 400, "invalid_field", "\"nonce\" must be a UUID"), -1;
    if (gm_b64_decode_exact(sig, raw, sizeof raw, &e) != 0)
        return na_reply_error(r, 400, "bad_base64", "\"signature\" is not 64 bytes of standard base64"), -1;
    int rc = gm_reqsig_node_check(body, pk, r->now, GM_REQSIG_WINDOW_S, NULL, NULL, NULL, &e);
    switch (rc) {
    case 0: return 0;
    case GM_EEXPIRED: return na_reply_error(r, 401, "stale_timestamp", "%s", e.msg), -1;
    case GM_ESIG: return na_reply_error(r, 401, "bad_signature", "%s", e.msg), -1;
    case GM_EFORMAT: return na_reply_error(r, 400, "invalid_field", "%s", e.msg), -1;
    default: return na_reply_gm_error(r, &e), -1;
    }
}

int na_record_node_nonce(na_req *r, const json_t *body, const char *pk_b64)
{
    char scope[8 + GM_PK_B64_LEN + 1];
    gm_error e = {0};
    snprintf(scope, sizeof scope, "node:%s", pk_b64);
    int rc = na_nonce_record(r->na, scope, json_string_value(json_object_get(body, "nonce")), r->now.unix_s, &e);
    if (rc == GM_ECONFLICT)
        return na_reply_error(r, 401, "replayed_nonce", "%s", e.msg), -1;
    if (rc != 0)
        return na_reply_gm_error(r, &e), -1;
    return 0;
}

int na_check_key_window(na_req *r)
{
    gm_error e = {0};
    if (gm_genesis_check_na_window(&r->na->genesis, r->now, &e) != 0)
        return na_reply_error(r, 503, "na_key_expired", "%s", e.msg), -1;
    return 0;
}
