/* Signed documents: {..., "signatures":[{key_id, sig}]} over the canonical JSON without
 * "signatures"; the one parse / load path every kind of signed document goes through; plus
 * the strict schema helpers the document parsers share. */
#include <stdlib.h>
#include <string.h>

#include "gm/canon.h"
#include "gm/gmtime.h"
#include "gm/sigdoc.h"
#include "gm/util.h"
#include "core_internal.h"

#define SIGDOC_MAX_SIGS 16

int gm_sigdoc_check_shape(const json_t *doc, gm_error *err)
{
    const json_t *sigs = json_object_get(doc, "signatures");
    if (!json_is_array(sigs))
        return gm_error_set(err, GM_EFORMAT, "\"signatures\" must be an array");
    if (json_array_size(sigs) > SIGDOC_MAX_SIGS)
        return gm_error_set(err, GM_EFORMAT, "too many signatures (max %d)", SIGDOC_MAX_SIGS);
    for (size_t i = 0; i < json_array_size(sigs); i++) {
        const json_t *s = json_array_get(sigs, i);
        const json_t *kid = json_object_get(s, "key_id"), *sig = json_object_get(s, "sig");
        if (!json_is_object(s) || !json_is_string(kid) || !json_is_string(sig))
            return gm_error_set(err, GM_EFORMAT, "signature %zu must be {\"key_id\": string, \"sig\": string}", i);
        if (json_string_length(sig) != GM_SIG_B64_LEN)
            return gm_error_set(err, GM_EFORMAT, "signature %zu is not 88 characters of base64", i);
    }
    return 0;
}

int gm_sigdoc_sign(json_t *doc, const gm_signer *k, gm_error *err)
{
    char *bytes = NULL, sig[GM_SIG_B64_LEN + 1];
    size_t len;
    json_t *sigs = json_object_get(doc, "signatures");
    if (!sigs) {
        sigs = json_array();
        json_object_set_new(doc, "signatures", sigs);
    }
    if (!json_is_array(sigs))
        return gm_error_set(err, GM_EFORMAT, "\"signatures\" must be an array");
    int rc = gm_canon_dump_unsigned(doc, &bytes, &len, err);
    if (rc != 0)
        return rc;
    gm_sign_b64(k, (const uint8_t *)bytes, len, sig);
    free(bytes);
    json_array_append_new(sigs, json_pack("{s:s,s:s}", "key_id", k->key_id, "sig", sig));
    return 0;
}

static int verify(const json_t *doc, const uint8_t pk[GM_PK_LEN], int all, gm_error *err)
{
    int rc = gm_sigdoc_check_shape(doc, err);
    if (rc != 0)
        return rc;
    const json_t *sigs = json_object_get(doc, "signatures");
    if (json_array_size(sigs) == 0)
        return gm_error_set(err, GM_ESIG, "document is not signed (no signatures)");
    char *bytes = NULL;
    size_t len;
    if ((rc = gm_canon_dump_unsigned(doc, &bytes, &len, err)) != 0)
        return rc;
    int good = 0;
    rc = 0;
    for (size_t i = 0; i < json_array_size(sigs); i++) {
        const json_t *s = json_array_get(sigs, i);
        gm_error e2 = {0};
        if (gm_verify_b64(pk, (const uint8_t *)bytes, len, json_string_value(json_object_get(s, "sig")), &e2) == 0) {
            good++;
        } else if (all) {
            rc = gm_error_set(err, GM_ESIG, "signature %zu (key_id %s) does not verify", i,
                              json_string_value(json_object_get(s, "key_id")));
            break;
        }
    }
    free(bytes);
    if (rc == 0 && good == 0)
        rc = gm_error_set(err, GM_ESIG, "no signature verifies under the expected key");
    return rc;
}

int gm_sigdoc_verify_any(const json_t *doc, const uint8_t pk[GM_PK_LEN], gm_error *err)
{
    return verify(doc, pk, 0, err);
}

int gm_sigdoc_verify_all(const json_t *doc, const uint8_t pk[GM_PK_LEN], gm_error *err)
{
    return verify(doc, pk, 1, err);
}

int gm_sigdoc_parse(const gm_sigdoc_kind *k, const char *text, size_t len, void *out, gm_error *err)
{
    json_error_t je;
    memset(out, 0, k->out_size);
    if (len > k->max_bytes)
        return gm_error_set(err, GM_ETOOBIG, "%s larger than %zu bytes", k->what, k->max_bytes);
    json_t *src = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!src)
        return gm_error_set(err, GM_EFORMAT, "%s is not valid JSON (line %d: %s)", k->what, je.line, je.text);
    int rc = k->from_json(src, out, err);
    json_decref(src);
    if (rc != 0)
        memset(out, 0, k->out_size);
    return rc;
}

int gm_sigdoc_load(const gm_sigdoc_kind *k, const char *path, void *out, gm_error *err)
{
    char *text;
    size_t len;
    memset(out, 0, k->out_size);
    int rc = gm_file_read(path, k->max_bytes, &text, &len, err);
    if (rc != 0)
        return rc;
    rc = gm_sigdoc_parse(k, text, len, out, err);
    free(text);
    if (rc != 0)
        gm_error_prefix(err, "%s", path);
    return rc;
}

int gm_json_get_string(const json_t *obj, const char *key, const char **out, gm_error *err)
{
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return gm_error_set(err, GM_EFORMAT, "missing \"%s\"", key);
    if (!json_is_string(v))
        return gm_error_set(err, GM_EFORMAT, "\"%s\" must be a string", key);
    *out = json_string_value(v);
    return 0;
}

int gm_json_get_pk(const json_t *obj, const char *key, uint8_t pk[GM_PK_LEN], gm_error *err)
{
    const char *s = NULL;
    int rc = gm_json_get_string(obj, key, &s, err);
    if (rc == 0 && (rc = gm_pk_decode(s, pk, err)) != 0)
        gm_error_prefix(err, "\"%s\"", key);
    return rc;
}

int gm_json_norm_time(json_t *obj, const char *key, struct gm_time *t, gm_error *err)
{
    const char *s = NULL;
    char canon[GM_TIME_STRLEN];
    int rc = gm_json_get_string(obj, key, &s, err);
    if (rc == 0 && (rc = gm_time_parse(s, t, err)) != 0)
        gm_error_prefix(err, "\"%s\"", key);
    if (rc == 0) {
        gm_time_format(t, canon);
        json_object_set_new(obj, key, json_string(canon));
    }
    return rc;
}

int gm_json_check_string_array(const json_t *arr, const char *what, gm_error *err)
{
    if (!json_is_array(arr))
        return gm_error_set(err, GM_EFORMAT, "\"%s\" must be an array of strings", what);
    for (size_t i = 0; i < json_array_size(arr); i++)
        if (!json_is_string(json_array_get(arr, i)))
            return gm_error_set(err, GM_EFORMAT, "\"%s\"[%zu] must be a string", what, i);
    return 0;
}
