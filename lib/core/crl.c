/* Certificate revocation lists: issue (NA side), parse, verify, look up. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gm/crl.h"
#include "gm/sigdoc.h"
#include "gm/util.h"
#include "core_internal.h"

int gm_crl_reason_valid(const char *r)
{
    return r && (!strcmp(r, "key_compromise") || !strcmp(r, "cessation_of_operation") || !strcmp(r, "superseded") ||
                 !strcmp(r, "unspecified"));
}

static int normalize(const json_t *src, gm_crl *c, gm_error *err)
{
    const char *id, *issuer;
    int rc;
    if (!json_is_object(src))
        return gm_error_set(err, GM_EFORMAT, "CRL must be a JSON object");
    if ((rc = gm_json_get_string(src, "crl_id", &id, err)) || (rc = gm_json_get_string(src, "issuer", &issuer, err)))
        return gm_error_prefix(err, "CRL");
    const json_t *seq = json_object_get(src, "sequence");
    if (!json_is_integer(seq) || json_integer_value(seq) < 0)
        return gm_error_set(err, GM_EFORMAT, "CRL: \"sequence\" must be a non-negative integer");
    const json_t *list = json_object_get(src, "revoked_certificates");
    if (list && !json_is_array(list))
        return gm_error_set(err, GM_EFORMAT, "CRL: \"revoked_certificates\" must be an array");
    json_t *doc = json_pack("{s:s,s:s,s:O,s:O,s:O,s:O,s:[]}", "crl_id", id, "issuer", issuer, "sequence", seq,
                            "issued_at", json_object_get(src, "issued_at"), "next_update",
                            json_object_get(src, "next_update"), "signatures", json_object_get(src, "signatures"),
                            "revoked_certificates");
    if (!doc)
        return gm_error_set(err, GM_EFORMAT, "CRL: missing \"issued_at\", \"next_update\" or \"signatures\"");
    /* "O" shared the caller's array: take our own copy so later edits of src cannot reach us */
    json_object_set_new(doc, "signatures", json_deep_copy(json_object_get(doc, "signatures")));
    c->doc = doc;
    if ((rc = gm_json_norm_time(doc, "issued_at", &c->issued_at, err)) ||
        (rc = gm_json_norm_time(doc, "next_update", &c->next_update, err)) || (rc = gm_sigdoc_check_shape(doc, err)))
        return gm_error_prefix(err, "CRL");
    json_t *out = json_object_get(doc, "revoked_certificates");
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *e = json_array_get(list, i);
        const char *cid, *reason, *eiss;
        gm_time t;
        if ((rc = gm_json_get_string(e, "certificate_id", &cid, err)) ||
            (rc = gm_json_get_string(e, "reason", &reason, err)) || (rc = gm_json_get_string(e, "issuer", &eiss, err)))
            return gm_error_prefix(err, "CRL entry %zu", i);
        /* only the four reasons the spec knows; the NA never signs another (issue goes through here) */
        if (!gm_crl_reason_valid(reason))
            return gm_error_set(err, GM_EFORMAT,
                                "CRL entry %zu: unknown \"reason\" '%.64s' (key_compromise, cessation_of_operation, "
                                "superseded or unspecified)",
                                i, reason);
        json_t *ne = json_pack("{s:s,s:s,s:s,s:O}", "certificate_id", cid, "reason", reason, "issuer", eiss,
                               "revoked_at", json_object_get(e, "revoked_at"));
        if (!ne)
            return gm_error_set(err, GM_EFORMAT, "CRL entry %zu: missing \"revoked_at\"", i);
        json_array_append_new(out, ne);
        if ((rc = gm_json_norm_time(ne, "revoked_at", &t, err)) != 0)
            return gm_error_prefix(err, "CRL entry %zu", i);
    }
    snprintf(c->crl_id, sizeof c->crl_id, "%s", id);
    c->sequence = (uint64_t)json_integer_value(seq);
    c->issuer = json_string_value(json_object_get(doc, "issuer"));
    c->n_revoked = json_array_size(out);
    return 0;
}

int gm_crl_from_json(const json_t *doc, gm_crl *c, gm_error *err)
{
    memset(c, 0, sizeof *c);
    int rc = normalize(doc, c, err);
    if (rc != 0)
        gm_crl_free(c);
    return rc;
}

static int crl_from_json(const json_t *src, void *out, gm_error *err)
{
    return gm_crl_from_json(src, out, err);
}

static const gm_sigdoc_kind crl_kind = {"CRL", GM_CRL_MAX_BYTES, sizeof(gm_crl), crl_from_json};

int gm_crl_parse(const char *text, size_t len, gm_crl *c, gm_error *err)
{
    return gm_sigdoc_parse(&crl_kind, text, len, c, err);
}

int gm_crl_load(const char *path, gm_crl *c, gm_error *err)
{
    return gm_sigdoc_load(&crl_kind, path, c, err);
}

int gm_crl_is_newer(uint64_t sequence, int have_current, uint64_t current)
{
    return !have_current || sequence > current;
}

int gm_crl_issue(gm_crl *c, const gm_signer *na, uint64_t sequence, const json_t *revoked, gm_time issued_at,
                 int64_t next_update_s, gm_error *err)
{
    char id[37], ia[GM_TIME_STRLEN], nu[GM_TIME_STRLEN];
    gm_time next = gm_time_add(issued_at, next_update_s);
    gm_uuid4(id);
    gm_time_format(&issued_at, ia);
    gm_time_format(&next, nu);
    json_t *src = json_pack("{s:s,s:I,s:s,s:s,s:s,s:O,s:[]}", "crl_id", id, "sequence", (json_int_t)sequence,
                            "issued_at", ia, "next_update", nu, "issuer", na->key_id, "revoked_certificates",
                            revoked, "signatures");
    if (!src)
        return gm_error_set(err, GM_EINVAL, "cannot build CRL (revoked list must be an array)");
    /* normalize first so that the signed bytes are exactly what a parser will see */
    gm_crl tmp;
    int rc = gm_crl_from_json(src, &tmp, err);
    json_decref(src);
    if (rc != 0)
        return rc;
    rc = gm_sigdoc_sign(tmp.doc, na, err);
    if (rc != 0) {
        gm_crl_free(&tmp);
        return rc;
    }
    *c = tmp;
    return 0;
}

int gm_crl_verify(const gm_crl *c, const uint8_t na_pk[GM_PK_LEN], gm_error *err)
{
    int rc = gm_sigdoc_verify_any(c->doc, na_pk, err);
    if (rc != 0)
        gm_error_prefix(err, "CRL %llu is not signed by this network's NA", (unsigned long long)c->sequence);
    return rc;
}

int gm_crl_contains(const gm_crl *c, const char *cert_id, const char **reason)
{
    const json_t *list = json_object_get(c->doc, "revoked_certificates");
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *e = json_array_get(list, i);
        if (!strcmp(json_string_value(json_object_get(e, "certificate_id")), cert_id)) {
            if (reason)
                *reason = json_string_value(json_object_get(e, "reason"));
            return 1;
        }
    }
    return 0;
}

char *gm_crl_dump(const gm_crl *c, int pretty)
{
    return json_dumps(c->doc, pretty ? JSON_INDENT(2) | JSON_SORT_KEYS : JSON_COMPACT | JSON_SORT_KEYS);
}

void gm_crl_share(const gm_crl *src, gm_crl *dst)
{
    *dst = *src; /* issuer points into the shared document */
    json_incref(dst->doc);
}

void gm_crl_free(gm_crl *c)
{
    if (c && c->doc)
        json_decref(c->doc);
    if (c)
        memset(c, 0, sizeof *c);
}
