/* Node-signed (proof of possession) and operator-signed (admin) requests: the exact bytes
 * each signs, signing on the client, and the server's freshness/signature/replay check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gm/canon.h"
#include "gm/reqsig.h"
#include "gm/util.h"
#include "core_internal.h"

int gm_reqsig_check_time(const char *timestamp, gm_time now, int64_t window_s, gm_error *err)
{
    gm_time t;
    if (!timestamp || strlen(timestamp) > GM_REQSIG_FIELD_MAX)
        return gm_error_set(err, GM_EFORMAT, "request timestamp missing or too long");
    if (gm_time_parse(timestamp, &t, err) != 0)
        return gm_error_prefix(err, "request timestamp");
    if (!t.has_offset)
        return gm_error_set(err, GM_EFORMAT, "request timestamp '%s' must carry a UTC offset (Z or +HH:MM)",
                            timestamp);
    int64_t d = t.unix_s - now.unix_s;
    if (d > window_s || d < -window_s)
        return gm_error_set(err, GM_EEXPIRED,
                            "request timestamp %s is %lld s %s the verifier's clock (allowed: %lld s); "
                            "check the clocks",
                            timestamp, (long long)(d < 0 ? -d : d), d < 0 ? "behind" : "ahead of",
                            (long long)window_s);
    return 0;
}

static int check_nonce_shape(const char *nonce, gm_error *err)
{
    if (!nonce || !gm_uuid_valid(nonce))
        return gm_error_set(err, GM_EFORMAT, "request nonce must be a UUID");
    return 0;
}

/* ---- node-signed bodies ---- */

/* Fill a missing timestamp (now) and nonce (fresh UUID4) from the given buffers. */
static void default_ts_nonce(const char **timestamp, char ts[GM_TIME_STRLEN], const char **nonce, char nn[37])
{
    if (!*timestamp) {
        gm_time now = gm_time_now();
        gm_time_format(&now, ts);
        *timestamp = ts;
    }
    if (!*nonce) {
        gm_uuid4(nn);
        *nonce = nn;
    }
}

int gm_reqsig_node_bytes(const json_t *body, char **out, size_t *len, gm_error *err)
{
    if (!json_is_object(body))
        return gm_error_set(err, GM_EFORMAT, "request body must be a JSON object");
    /* Shallow copy: dropping "signature" from it leaves body untouched. */
    json_t *copy = json_copy((json_t *)body);
    if (!copy)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    json_object_del(copy, "signature");
    int rc = gm_canon_dump(copy, out, len, err);
    json_decref(copy);
    return rc;
}

int gm_reqsig_node_sign(json_t *body, const gm_signer *k, const char *timestamp, const char *nonce, gm_error *err)
{
    char ts[GM_TIME_STRLEN], nn[37], sig[GM_SIG_B64_LEN + 1], *bytes = NULL;
    size_t len;
    if (!json_is_object(body))
        return gm_error_set(err, GM_EINVAL, "request body must be a JSON object");
    default_ts_nonce(&timestamp, ts, &nonce, nn);
    if (json_object_set_new(body, "timestamp", json_string(timestamp)) != 0 ||
        json_object_set_new(body, "nonce", json_string(nonce)) != 0)
        return gm_error_set(err, GM_EINVAL, "timestamp and nonce must be UTF-8 strings");
    json_object_del(body, "signature");
    int rc = gm_reqsig_node_bytes(body, &bytes, &len, err);
    if (rc != 0)
        return rc;
    gm_sign_b64(k, (const uint8_t *)bytes, len, sig);
    free(bytes);
    json_object_set_new(body, "signature", json_string(sig));
    return 0;
}

int gm_reqsig_node_verify(const json_t *body, const uint8_t pk[GM_PK_LEN], gm_error *err)
{
    const char *sig = json_string_value(json_object_get(body, "signature"));
    if (!sig)
        return gm_error_set(err, GM_EFORMAT, "request has no \"signature\" string");
    if (strlen(sig) != GM_SIG_B64_LEN)
        return gm_error_set(err, GM_EFORMAT, "\"signature\" must be 88 characters of standard base64");
    char *bytes = NULL;
    size_t len;
    int rc = gm_reqsig_node_bytes(body, &bytes, &len, err);
    if (rc != 0)
        return rc;
    rc = gm_verify_b64(pk, (const uint8_t *)bytes, len, sig, err);
    free(bytes);
    if (rc == GM_ESIG)
        gm_error_set(err, GM_ESIG, "request signature does not verify under the node public key");
    return rc;
}

int gm_reqsig_node_check(const json_t *body, const uint8_t pk[GM_PK_LEN], gm_time now, int64_t window_s,
                         const char *scope, gm_nonce_record_fn record, void *ctx, gm_error *err)
{
    const char *ts = json_string_value(json_object_get(body, "timestamp"));
    const char *nonce = json_string_value(json_object_get(body, "nonce"));
    int rc;
    if (!ts)
        return gm_error_set(err, GM_EFORMAT, "request has no \"timestamp\" string");
    if ((rc = check_nonce_shape(nonce, err)) != 0 || (rc = gm_reqsig_check_time(ts, now, window_s, err)) != 0 ||
        (rc = gm_reqsig_node_verify(body, pk, err)) != 0)
        return rc;
    return record ? record(ctx, scope, nonce, now.unix_s, err) : 0;
}

/* ---- admin requests ---- */

int gm_reqsig_admin_bytes(const json_t *body, const char *key_id, const char *nonce, const char *timestamp,
                          char **out, size_t *len, gm_error *err)
{
    if (body && !json_is_object(body))
        return gm_error_set(err, GM_EFORMAT, "admin request body must be a JSON object");
    json_t *b = body ? json_incref((json_t *)body) : json_object();
    json_t *wrap = json_pack("{s:o,s:s,s:s,s:s}", "body", b, "key_id", key_id, "nonce", nonce, "timestamp",
                             timestamp);
    if (!wrap)
        return gm_error_set(err, GM_EFORMAT, "admin key id, nonce and timestamp must be UTF-8 strings");
    int rc = gm_canon_dump(wrap, out, len, err);
    json_decref(wrap);
    return rc;
}

int gm_reqsig_admin_sign(gm_admin_auth *a, const json_t *body, const gm_signer *op, const char *timestamp,
                         const char *nonce, gm_error *err)
{
    char ts[GM_TIME_STRLEN], nn[37], *bytes = NULL;
    size_t len;
    memset(a, 0, sizeof *a);
    default_ts_nonce(&timestamp, ts, &nonce, nn);
    if (strlen(timestamp) > GM_REQSIG_FIELD_MAX || strlen(nonce) > GM_REQSIG_FIELD_MAX)
        return gm_error_set(err, GM_EINVAL, "timestamp or nonce too long");
    snprintf(a->key_id, sizeof a->key_id, "%s", op->key_id);
    snprintf(a->timestamp, sizeof a->timestamp, "%s", timestamp);
    snprintf(a->nonce, sizeof a->nonce, "%s", nonce);
    int rc = gm_reqsig_admin_bytes(body, a->key_id, a->nonce, a->timestamp, &bytes, &len, err);
    if (rc != 0)
        return rc;
    gm_sign_b64(op, (const uint8_t *)bytes, len, a->signature);
    free(bytes);
    return 0;
}

int gm_reqsig_admin_from_headers(gm_admin_auth *a, const char *key_id, const char *timestamp, const char *nonce,
                                 const char *signature, gm_error *err)
{
    memset(a, 0, sizeof *a);
    if (!key_id || !timestamp || !nonce || !signature)
        return gm_error_set(err, GM_EAUTH, "admin request needs the headers %s, %s, %s and %s", GM_ADMIN_HDR_KEY_ID,
                            GM_ADMIN_HDR_TIMESTAMP, GM_ADMIN_HDR_NONCE, GM_ADMIN_HDR_SIGNATURE);
    if (key_id[0] == '\0' || strlen(key_id) >= sizeof a->key_id || strlen(timestamp) >= sizeof a->timestamp ||
        strlen(nonce) >= sizeof a->nonce || strlen(signature) != GM_SIG_B64_LEN)
        return gm_error_set(err, GM_EAUTH, "admin request header empty or too long, or signature not 88 characters");
    snprintf(a->key_id, sizeof a->key_id, "%s", key_id);
    snprintf(a->timestamp, sizeof a->timestamp, "%s", timestamp);
    snprintf(a->nonce, sizeof a->nonce, "%s", nonce);
    snprintf(a->signature, sizeof a->signature, "%s", signature);
    return 0;
}

int gm_reqsig_admin_verify(const gm_admin_auth *a, const json_t *body, const uint8_t pk[GM_PK_LEN], gm_error *err)
{
    char *bytes = NULL;
    size_t len;
    int rc = gm_reqsig_admin_bytes(body, a->key_id, a->nonce, a->timestamp, &bytes, &len, err);
    if (rc != 0)
        return rc;
    rc = gm_verify_b64(pk, (const uint8_t *)bytes, len, a->signature, err);
    free(bytes);
    if (rc == GM_ESIG)
        gm_error_set(err, GM_ESIG, "admin signature does not verify under operator key '%s'", a->key_id);
    return rc;
}

int gm_reqsig_admin_check(const gm_admin_auth *a, const json_t *body, const uint8_t pk[GM_PK_LEN], gm_time now,
                          int64_t window_s, gm_nonce_record_fn record, void *ctx, gm_error *err)
{
    int rc;
    if ((rc = check_nonce_shape(a->nonce, err)) != 0 ||
        (rc = gm_reqsig_check_time(a->timestamp, now, window_s, err)) != 0 ||
        (rc = gm_reqsig_admin_verify(a, body, pk, err)) != 0)
        return rc;
    return record ? record(ctx, a->key_id, a->nonce, now.unix_s, err) : 0;
}
