/* Join certificates: issue (NA side), parse and verify (everyone). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gm/cert.h"
#include "gm/sigdoc.h"
#include "gm/util.h"
#include "core_internal.h"

#define CERT_MAX_BYTES (64 * 1024)
#define CERT_MAX_ROLES 64

static int normalize(const json_t *src, gm_cert *c, gm_error *err)
{
    const char *id, *pk, *net, *by;
    int rc;
    if (!json_is_object(src))
        return gm_error_set(err, GM_EFORMAT, "certificate must be a JSON object");
    if ((rc = gm_json_get_string(src, "cert_id", &id, err)) || (rc = gm_json_get_string(src, "node_public_key", &pk, err)) ||
        (rc = gm_json_get_string(src, "network_name", &net, err)) || (rc = gm_json_get_string(src, "issued_by", &by, err)))
        return gm_error_prefix(err, "certificate");
    if (!gm_uuid_valid(id))
        return gm_error_set(err, GM_EFORMAT, "certificate: \"cert_id\" is not a UUID");
    if ((rc = gm_pk_decode(pk, c->node_pk, err)) != 0)
        return gm_error_prefix(err, "certificate: \"node_public_key\"");
    const json_t *roles = json_object_get(src, "roles");
    if (roles && (rc = gm_json_check_string_array(roles, "roles", err)) != 0)
        return gm_error_prefix(err, "certificate");
    if (json_array_size(roles) > CERT_MAX_ROLES)
        return gm_error_set(err, GM_EFORMAT, "certificate: more than %d roles", CERT_MAX_ROLES);
    json_t *doc = json_pack("{s:s,s:s,s:s,s:s,s:O,s:O,s:O}", "cert_id", id, "node_public_key", pk, "network_name",
                            net, "issued_by", by, "issued_at", json_object_get(src, "issued_at"), "expires_at",
                            json_object_get(src, "expires_at"), "signatures", json_object_get(src, "signatures"));
    if (!doc)
        return gm_error_set(err, GM_EFORMAT, "certificate: missing \"issued_at\", \"expires_at\" or \"signatures\"");
    json_object_set_new(doc, "roles", roles ? json_deep_copy(roles) : json_array());
    /* "O" shared the caller's array: take our own copy so later edits of src cannot reach us */
    json_object_set_new(doc, "signatures", json_deep_copy(json_object_get(doc, "signatures")));
    c->doc = doc;
    if ((rc = gm_json_norm_time(doc, "issued_at", &c->issued_at, err)) ||
        (rc = gm_json_norm_time(doc, "expires_at", &c->expires_at, err)) || (rc = gm_sigdoc_check_shape(doc, err)))
        return gm_error_prefix(err, "certificate");
    snprintf(c->cert_id, sizeof c->cert_id, "%s", id);
    gm_pk_encode(c->node_pk, c->node_pk_b64);
    c->network_name = json_string_value(json_object_get(doc, "network_name"));
    c->issued_by = json_string_value(json_object_get(doc, "issued_by"));
    c->n_roles = json_array_size(json_object_get(doc, "roles"));
    return 0;
}

int gm_cert_from_json(const json_t *doc, gm_cert *c, gm_error *err)
{
    memset(c, 0, sizeof *c);
    int rc = normalize(doc, c, err);
    if (rc != 0)
        gm_cert_free(c);
    return rc;
}

static int cert_from_json(const json_t *src, void *out, gm_error *err)
{
    return gm_cert_from_json(src, out, err);
}

static const gm_sigdoc_kind cert_kind = {"certificate", CERT_MAX_BYTES, sizeof(gm_cert), cert_from_json};

int gm_cert_parse(const char *text, size_t len, gm_cert *c, gm_error *err)
{
    return gm_sigdoc_parse(&cert_kind, text, len, c, err);
}

int gm_cert_load(const char *path, gm_cert *c, gm_error *err)
{
    return gm_sigdoc_load(&cert_kind, path, c, err);
}

int gm_cert_issue(gm_cert *c, const gm_signer *na, const char *network_name, const uint8_t node_pk[GM_PK_LEN],
                  const json_t *roles, gm_time issued_at, gm_time expires_at, gm_error *err)
{
    char id[37], pk[GM_PK_B64_LEN + 1], ia[GM_TIME_STRLEN], ea[GM_TIME_STRLEN];
    gm_uuid7(id); /* time-ordered: the NA's indexes by cert_id grow at their end */
    gm_pk_encode(node_pk, pk);
    gm_time_format(&issued_at, ia);
    gm_time_format(&expires_at, ea);
    json_t *src = json_pack("{s:s,s:s,s:s,s:O,s:s,s:s,s:s,s:[]}", "cert_id", id, "node_public_key", pk,
                            "network_name", network_name, "roles", roles, "issued_at", ia, "expires_at", ea,
                            "issued_by", na->key_id, "signatures");
    if (!src)
        return gm_error_set(err, GM_EINVAL, "cannot build certificate (bad roles or network name)");
    int rc = gm_sigdoc_sign(src, na, err);
    if (rc == 0)
        rc = gm_cert_from_json(src, c, err);
    json_decref(src);
    return rc;
}

int gm_cert_verify(const gm_cert *c, const gm_genesis *g, const gm_crl *crl, gm_time now, gm_error *err)
{
    int rc = gm_sigdoc_verify_any(c->doc, g->na_pk, err);
    if (rc != 0)
        return gm_error_prefix(err, "certificate %s is not signed by this network's NA", c->cert_id);
    if (strcmp(c->network_name, g->network_name) != 0)
        return gm_error_set(err, GM_EFORMAT, "certificate %s is for network '%s', not '%s'", c->cert_id,
                            c->network_name, g->network_name);
    gm_time lo = gm_time_add(c->issued_at, -GM_CLOCK_SKEW_S), hi = gm_time_add(c->expires_at, GM_CLOCK_SKEW_S);
    char when[GM_TIME_STRLEN];
    if (gm_time_cmp(&now, &lo) < 0) {
        gm_time_format(&c->issued_at, when);
        return gm_error_set(err, GM_EEXPIRED, "certificate %s is not valid before %s (skew %ds)", c->cert_id, when,
                            GM_CLOCK_SKEW_S);
    }
    if (gm_time_cmp(&now, &hi) > 0) {
        gm_time_format(&c->expires_at, when);
        return gm_error_set(err, GM_EEXPIRED, "certificate %s expired at %s (skew %ds)", c->cert_id, when,
                            GM_CLOCK_SKEW_S);
    }
    const char *reason = NULL;
    if (crl && gm_crl_contains(crl, c->cert_id, &reason))
        return gm_error_set(err, GM_EREVOKED, "certificate %s is revoked (%s, CRL sequence %llu)", c->cert_id,
                            reason ? reason : "unspecified", (unsigned long long)crl->sequence);
    return 0;
}

int gm_cert_verify_any(const gm_cert *c, const gm_genesis *const gs[], size_t k, const gm_crl *crl, gm_time now,
                       gm_error *err)
{
    int rc = k ? GM_ESIG : gm_error_set(err, GM_ESIG, "certificate %s: no trusted NA key", c->cert_id);
    for (size_t i = 0; i < k && rc == GM_ESIG; i++)
        rc = gm_cert_verify(c, gs[i], crl, now, err);
    return rc;
}

const char *gm_cert_role(const gm_cert *c, size_t i)
{
    return json_string_value(json_array_get(json_object_get(c->doc, "roles"), i));
}

int gm_cert_has_role(const gm_cert *c, const char *role)
{
    for (size_t i = 0; i < c->n_roles; i++)
        if (!strcmp(gm_cert_role(c, i), role))
            return 1;
    return 0;
}

char *gm_cert_dump(const gm_cert *c, int pretty)
{
    return json_dumps(c->doc, pretty ? JSON_INDENT(2) | JSON_SORT_KEYS : JSON_COMPACT | JSON_SORT_KEYS);
}

void gm_cert_share(const gm_cert *src, gm_cert *dst)
{
    *dst = *src; /* network_name and issued_by point into the shared document */
    json_incref(dst->doc);
}

void gm_cert_free(gm_cert *c)
{
    if (c && c->doc)
        json_decref(c->doc);
    if (c)
        memset(c, 0, sizeof *c);
}
