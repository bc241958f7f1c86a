/* capability_request / capability_response: the two messages agents exchange on the
 * mesh port "capability", with strict parsing and size limits on everything received. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gm/agent.h"
#include "gm/util.h"
#include "agent_internal.h"
#include "core_internal.h"

#define ERR_CODE_MAX 64

static size_t compact_len(const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    size_t n = s ? strlen(s) : (size_t)-1;
    free(s);
    return n;
}

int gm_agent_envelope_dump(const json_t *doc, char **out, size_t *len, gm_error *err)
{
    char *s = json_dumps(doc, JSON_COMPACT);
    if (!s)
        return gm_error_set(err, GM_ENOMEM, "cannot serialise envelope");
    size_t n = strlen(s);
    if (n > GM_AGENT_MSG_MAX) {
        free(s);
        return gm_error_set(err, GM_ETOOBIG, "message of %zu bytes exceeds the %d-byte limit of one mesh message", n,
                            GM_AGENT_MSG_MAX);
    }
    *out = s;
    if (len)
        *len = n;
    return 0;
}

static json_t *load_envelope(const char *text, size_t len, const char *type, gm_error *err)
{
    json_error_t je;
    if (len > GM_AGENT_MSG_MAX) {
        gm_error_set(err, GM_ETOOBIG, "%s larger than %d bytes", type, GM_AGENT_MSG_MAX);
        return NULL;
    }
    json_t *v = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!v) {
        gm_error_set(err, GM_EPROTO, "%s is not valid JSON (%s)", type, je.text);
        return NULL;
    }
    const json_t *t = json_object_get(v, "type");
    if (!json_is_object(v) || !json_is_string(t) || strcmp(json_string_value(t), type) != 0) {
        json_decref(v);
        gm_error_set(err, GM_EPROTO, "not a %s message", type);
        return NULL;
    }
    return v;
}

static int get_str(const json_t *o, const char *key, const char **out, size_t max, gm_error *err)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        return gm_error_set(err, GM_EPROTO, "\"%s\" must be a string", key);
    if (json_string_length(v) > max || strlen(json_string_value(v)) != json_string_length(v))
        return gm_error_set(err, GM_EPROTO, "\"%s\" is too long or holds NUL", key);
    *out = json_string_value(v);
    return 0;
}

static int check_cap(json_t *doc, const char **out, gm_error *err)
{
    const char *c;
    char norm[GM_AGENT_CAP_MAX + 1];
    int rc = get_str(doc, "capability", &c, GM_AGENT_CAP_MAX, err);
    if (rc == 0 && (rc = gm_agent_cap_normalize(c, norm, err)) == 0) {
        json_object_set_new(doc, "capability", json_string(norm));
        *out = json_string_value(json_object_get(doc, "capability"));
    }
    return rc;
}

int gm_agent_request_new(gm_agent_request *r, const char *capability, const json_t *input,
                         const uint8_t requester[GM_PK_LEN], long timeout_ms, gm_error *err)
{
    char cap[GM_AGENT_CAP_MAX + 1], id[37], pk[GM_PK_B64_LEN + 1], dl[GM_TIME_STRLEN];
    memset(r, 0, sizeof *r);
    int rc = gm_agent_cap_normalize(capability, cap, err);
    if (rc != 0)
        return rc;
    if (!input)
        return gm_error_set(err, GM_EINVAL, "request input is missing");
    size_t n = compact_len(input);
    if (n > GM_AGENT_INPUT_MAX)
        return gm_error_set(err, GM_ETOOBIG, "input of %zu bytes exceeds the %d-byte limit", n, GM_AGENT_INPUT_MAX);
    if (timeout_ms <= 0)
        timeout_ms = GM_AGENT_DEFAULT_TIMEOUT_MS;
    gm_time now = gm_time_now();
    int64_t us = (int64_t)now.usec + (timeout_ms % 1000) * 1000;
    gm_time d = gm_time_add(now, timeout_ms / 1000 + us / 1000000);
    d.usec = (int32_t)(us % 1000000);
    gm_time_format(&d, dl);
    gm_uuid4(id);
    gm_pk_encode(requester, pk);
    r->doc = json_pack("{s:s,s:s,s:s,s:O,s:s,s:s}", "type", "capability_request", "request_id", id, "capability", cap,
                       "input", input, "requester", pk, "deadline", dl);
    if (!r->doc)
        return gm_error_set(err, GM_ENOMEM, "cannot build request");
    r->request_id = json_string_value(json_object_get(r->doc, "request_id"));
    r->capability = json_string_value(json_object_get(r->doc, "capability"));
    r->input = json_object_get(r->doc, "input");
    memcpy(r->requester, requester, GM_PK_LEN);
    r->deadline = d;
    return 0;
}

int gm_agent_request_parse(const char *text, size_t len, gm_agent_request *r, gm_error *err)
{
    const char *id, *pk, *dl;
    memset(r, 0, sizeof *r);
    json_t *doc = load_envelope(text, len, "capability_request", err);
    if (!doc)
        return err ? err->code : GM_EPROTO;
    r->doc = doc;
    int rc;
    if ((rc = get_str(doc, "request_id", &id, 36, err)) || (rc = check_cap(doc, &r->capability, err)) ||
        (rc = get_str(doc, "requester", &pk, GM_PK_B64_LEN, err)) || (rc = get_str(doc, "deadline", &dl, 64, err)))
        goto fail;
    if (!gm_uuid_valid(id)) {
        rc = gm_error_set(err, GM_EPROTO, "\"request_id\" is not a UUID");
        goto fail;
    }
    if ((rc = gm_pk_decode(pk, r->requester, err)) != 0 || (rc = gm_time_parse(dl, &r->deadline, err)) != 0) {
        rc = GM_EPROTO;
        gm_error_prefix(err, "capability_request");
        goto fail;
    }
    r->input = json_object_get(doc, "input");
    if (!r->input) {
        rc = gm_error_set(err, GM_EPROTO, "capability_request has no \"input\"");
        goto fail;
    }
    size_t n = compact_len(r->input);
    if (n > GM_AGENT_INPUT_MAX) {
        rc = gm_error_set(err, GM_ETOOBIG, "input of %zu bytes exceeds the %d-byte limit", n, GM_AGENT_INPUT_MAX);
        goto fail;
    }
    r->request_id = json_string_value(json_object_get(doc, "request_id"));
    return 0;
fail:
    gm_agent_request_free(r);
    return rc;
}

void gm_agent_request_free(gm_agent_request *r)
{
    if (r && r->doc)
        json_decref(r->doc);
    if (r)
        memset(r, 0, sizeof *r);
}

static void fill_response(gm_agent_response *r)
{
    json_t *doc = r->doc;
    const json_t *e = json_object_get(doc, "error");
    r->request_id = json_string_value(json_object_get(doc, "request_id"));
    r->capability = json_string_value(json_object_get(doc, "capability"));
    r->output = json_is_object(e) ? NULL : json_object_get(doc, "output");
    r->error_code = json_is_object(e) ? json_string_value(json_object_get(e, "code")) : NULL;
    r->error_message = json_is_object(e) ? json_string_value(json_object_get(e, "message")) : NULL;
    r->provenance = json_object_get(doc, "provenance");
    r->certificates = json_object_get(doc, "certificates");
}

/* "certificates": an array of at most GM_AGENT_CERTS_MAX objects (checked as certificates
 * by gm_agent_provenance_check_signers). */
static int check_certs(const json_t *certs, gm_error *err)
{
    if (!json_is_array(certs) || json_array_size(certs) > GM_AGENT_CERTS_MAX)
        return gm_error_set(err, GM_EPROTO, "\"certificates\" must be an array of at most %d certificates",
                            GM_AGENT_CERTS_MAX);
    for (size_t i = 0; i < json_array_size(certs); i++)
        if (!json_is_object(json_array_get(certs, i)))
            return gm_error_set(err, GM_EPROTO, "\"certificates\" entry %zu is not an object", i + 1);
    return 0;
}

int gm_agent_response_new(gm_agent_response *r, const char *request_id, const char *capability,
                          const uint8_t provider[GM_PK_LEN], const json_t *output, const char *error_code,
                          const char *error_message, const json_t *provenance, gm_error *err)
{
    char pk[GM_PK_B64_LEN + 1];
    memset(r, 0, sizeof *r);
    if ((output == NULL) == (error_code == NULL))
        return gm_error_set(err, GM_EINVAL, "a response carries either an output or an error");
    gm_pk_encode(provider, pk);
    json_t *e = json_null();
    if (error_code) {
        char msg[GM_AGENT_DETAIL_MAX + 1];
        snprintf(msg, sizeof msg, "%s", error_message ? error_message : error_code);
        e = json_pack("{s:s,s:s}", "code", error_code, "message", msg);
        if (!e)
            return gm_error_set(err, GM_EINVAL, "error code or message is not UTF-8");
    } else {
        size_t n = compact_len(output);
        if (n > GM_AGENT_OUTPUT_MAX)
            return gm_error_set(err, GM_ETOOBIG, "output of %zu bytes exceeds the %d-byte limit", n,
                                GM_AGENT_OUTPUT_MAX);
    }
    r->doc = json_pack("{s:s,s:s,s:s,s:s,s:O,s:o,s:o,s:o}", "type", "capability_response", "request_id",
                       request_id, "capability", capability, "provider", pk, "output", output ? output : json_null(),
                       "error", e, "provenance", provenance ? json_copy((json_t *)provenance) : json_array(),
                       "certificates", json_array());
    if (!r->doc)
        return gm_error_set(err, GM_EINVAL, "cannot build response");
    memcpy(r->provider, provider, GM_PK_LEN);
    fill_response(r);
    return 0;
}

#define FIT_MARKER "\n[truncated by genesis-mesh: %zu of %zu bytes kept]"

/* Bytes a text byte takes in compact JSON (jansson's escaping). */
static size_t json_cost(unsigned char c)
{
    if (c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f')
        return 2;
    return c < 0x20 ? 6 : 1;
}

int gm_agent_output_fit(json_t *output, const char *member, size_t *kept, size_t *total, gm_error *err)
{
    json_t *m = json_object_get(output, member);
    if (!json_is_string(m))
        return gm_error_set(err, GM_EINVAL, "output member \"%s\" is not a string", member);
    size_t len = json_string_length(m);
    *kept = *total = len;
    if (compact_len(output) <= GM_AGENT_OUTPUT_MAX)
        return 0;
    char *orig = malloc(len + 1), marker[96];
    if (!orig)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    memcpy(orig, json_string_value(m), len + 1);
    json_object_set_new(output, "truncated", json_string("size"));
    json_object_set_new(output, member, json_string(""));
    size_t rest = compact_len(output), keep = 0, used = 0;
    int ml = snprintf(marker, sizeof marker, FIT_MARKER, len, len);
    size_t budget = GM_AGENT_OUTPUT_MAX > rest + (size_t)ml + 1 ? GM_AGENT_OUTPUT_MAX - rest - (size_t)ml - 1 : 0;
    while (keep < len && used + json_cost((unsigned char)orig[keep]) <= budget)
        used += json_cost((unsigned char)orig[keep++]);
    for (;;) {
        while (keep > 0 && ((unsigned char)orig[keep] & 0xC0) == 0x80)
            keep--;
        ml = snprintf(marker, sizeof marker, FIT_MARKER, keep, len);
        char *t = malloc(keep + (size_t)ml + 1);
        if (!t) {
            free(orig);
            return gm_error_set(err, GM_ENOMEM, "out of memory");
        }
        memcpy(t, orig, keep);
        memcpy(t + keep, marker, (size_t)ml + 1);
        json_object_set_new(output, member, json_stringn(t, keep + (size_t)ml));
        free(t);
        /* Only a miscount of the escaping gets here twice; halve until it fits. */
        if (compact_len(output) <= GM_AGENT_OUTPUT_MAX || keep == 0)
            break;
        keep /= 2;
    }
    free(orig);
    *kept = keep;
    if (compact_len(output) > GM_AGENT_OUTPUT_MAX)
        return gm_error_set(err, GM_ETOOBIG, "output exceeds the %d-byte limit even without its \"%s\"",
                            GM_AGENT_OUTPUT_MAX, member);
    return 0;
}

long gm_agent_request_time_left_ms(const gm_agent_request *req)
{
    gm_time now = gm_time_now();
    return (long)((req->deadline.unix_s - now.unix_s) * 1000 + ((long)req->deadline.usec - (long)now.usec) / 1000);
}

int gm_agent_response_parse(const char *text, size_t len, gm_agent_response *r, gm_error *err)
{
    const char *id, *cap, *pk;
    memset(r, 0, sizeof *r);
    json_t *doc = load_envelope(text, len, "capability_response", err);
    if (!doc)
        return err ? err->code : GM_EPROTO;
    r->doc = doc;
    int rc;
    if ((rc = get_str(doc, "request_id", &id, 36, err)) || (rc = get_str(doc, "capability", &cap, GM_AGENT_CAP_MAX, err)) ||
        (rc = get_str(doc, "provider", &pk, GM_PK_B64_LEN, err)))
        goto fail;
    if ((rc = gm_pk_decode(pk, r->provider, err)) != 0) {
        rc = GM_EPROTO;
        goto fail;
    }
    const json_t *out = json_object_get(doc, "output"), *e = json_object_get(doc, "error"),
                 *prov = json_object_get(doc, "provenance");
    int has_out = out && !json_is_null(out), has_err = e && !json_is_null(e);
    if (has_out == has_err) {
        rc = gm_error_set(err, GM_EPROTO, "capability_response must carry exactly one of \"output\" and \"error\"");
        goto fail;
    }
    if (has_err) {
        const char *c, *m;
        if (!json_is_object(e) || (rc = get_str(e, "code", &c, ERR_CODE_MAX, err)) ||
            (rc = get_str(e, "message", &m, GM_AGENT_DETAIL_MAX * 2, err))) {
            rc = gm_error_set(err, GM_EPROTO, "\"error\" must be {\"code\": string, \"message\": string}");
            goto fail;
        }
    }
    if (!json_is_array(prov) || json_array_size(prov) > GM_AGENT_STEPS_MAX) {
        rc = gm_error_set(err, GM_EPROTO, "\"provenance\" must be an array of at most %d steps", GM_AGENT_STEPS_MAX);
        goto fail;
    }
    /* Optional on the wire: without it no signer is vouched for, and the requester rejects. */
    const json_t *certs = json_object_get(doc, "certificates");
    if (certs && (rc = check_certs(certs, err)) != 0)
        goto fail;
    fill_response(r);
    return 0;
fail:
    gm_agent_response_free(r);
    return rc;
}

int gm_agent_response_set_certificates(gm_agent_response *r, const json_t *certs, gm_error *err)
{
    gm_error e = {0};
    if (check_certs(certs, &e) != 0)
        return gm_error_set(err, GM_EINVAL, "%s", e.msg);
    json_t *copy = json_copy((json_t *)certs); /* a new array of the same (never changed) documents */
    if (!copy || json_object_set_new(r->doc, "certificates", copy) != 0)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    fill_response(r);
    return 0;
}

void gm_agent_response_free(gm_agent_response *r)
{
    if (r && r->doc)
        json_decref(r->doc);
    if (r)
        memset(r, 0, sizeof *r);
}
