/* The network policy manifest (the Python reference's PolicyManifest, GET /policy): parse
 * strictly through the one signed-document loader, issue, verify. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gm/netpolicy.h"
#include "core_internal.h"
#include "gm/sigdoc.h"

/* A string of min..GM_NETPOLICY_STR_MAX characters without NUL. */
static int check_str(const json_t *v, const char *what, size_t min, gm_error *err)
{
    if (!json_is_string(v))
        return gm_error_set(err, GM_EFORMAT, "\"%s\" must be a string", what);
    size_t n = json_string_length(v);
    if (n < min || n > GM_NETPOLICY_STR_MAX || strlen(json_string_value(v)) != n)
        return gm_error_set(err, GM_EFORMAT, "\"%s\" must be %zu..%d characters", what, min, GM_NETPOLICY_STR_MAX);
    return 0;
}

/* src[key] or a new reference to def when absent. */
static json_t *member_or(const json_t *src, const char *key, json_t *def)
{
    json_t *v = json_object_get(src, key);
    if (!v)
        return def;
    json_decref(def);
    return json_incref(v);
}

/* doc[key] = a copy of src[key], or def when absent (def is consumed), so later edits of src
 * cannot reach the document. */
static void copy_or(json_t *doc, const json_t *src, const char *key, json_t *def)
{
    json_t *v = member_or(src, key, def);
    json_object_set_new(doc, key, json_deep_copy(v));
    json_decref(v);
}

static int check_ports(const json_t *a, gm_error *err)
{
    if (!json_is_array(a) || json_array_size(a) > GM_NETPOLICY_MAX_ITEMS)
        return gm_error_set(err, GM_EFORMAT, "\"allowed_ports\" must be an array of at most %d integers",
                            GM_NETPOLICY_MAX_ITEMS);
    for (size_t i = 0; i < json_array_size(a); i++) {
        const json_t *v = json_array_get(a, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 65535)
            return gm_error_set(err, GM_EFORMAT, "\"allowed_ports\"[%zu] must be an integer 0..65535", i);
    }
    return 0;
}

static int check_strings(const json_t *a, const char *what, gm_error *err)
{
    if (!json_is_array(a) || json_array_size(a) > GM_NETPOLICY_MAX_ITEMS)
        return gm_error_set(err, GM_EFORMAT, "\"%s\" must be an array of at most %d strings", what,
                            GM_NETPOLICY_MAX_ITEMS);
    for (size_t i = 0; i < json_array_size(a); i++)
        if (check_str(json_array_get(a, i), what, 1, err) != 0)
            return gm_error_set(err, GM_EFORMAT, "\"%s\"[%zu] must be a string of 1..%d characters", what, i,
                                GM_NETPOLICY_STR_MAX);
    return 0;
}

/* routing {preferred_transports, max_hops}, defaults filled, unknown members dropped. */
static json_t *norm_routing(const json_t *src, gm_error *err)
{
    if (src && !json_is_object(src))
        return gm_error_set(err, GM_EFORMAT, "\"routing\" must be an object"), NULL;
    json_t *tr = member_or(src, "preferred_transports", json_pack("[s,s]", "quic", "wireguard"));
    json_t *hops = member_or(src, "max_hops", json_integer(6));
    json_t *out = NULL;
    if (check_strings(tr, "routing.preferred_transports", err) == 0) {
        if (!json_is_integer(hops) || json_integer_value(hops) < 0 ||
            json_integer_value(hops) > GM_NETPOLICY_MAX_HOPS)
            gm_error_set(err, GM_EFORMAT, "\"routing.max_hops\" must be an integer 0..%d", GM_NETPOLICY_MAX_HOPS);
        else
            out = json_pack("{s:O,s:O}", "preferred_transports", tr, "max_hops", hops);
    }
    json_decref(tr);
    json_decref(hops);
    return out;
}

static int normalize(const json_t *src, gm_netpolicy *p, gm_error *err)
{
    if (!json_is_object(src))
        return gm_error_set(err, GM_EFORMAT, "network policy must be a JSON object");
    static const char *const required[] = {"policy_id", "issued_by"};
    for (size_t i = 0; i < 2; i++) {
        const json_t *v = json_object_get(src, required[i]);
        if (!v)
            return gm_error_set(err, GM_EFORMAT, "network policy: missing \"%s\"", required[i]);
        if (check_str(v, required[i], 1, err) != 0)
            return gm_error_prefix(err, "network policy");
    }
    if (!json_object_get(src, "issued_at"))
        return gm_error_set(err, GM_EFORMAT, "network policy: missing \"issued_at\"");
    json_t *doc = json_object();
    if (!doc)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    p->doc = doc;
    copy_or(doc, src, "policy_id", NULL);
    copy_or(doc, src, "issued_by", NULL);
    copy_or(doc, src, "issued_at", NULL);
    copy_or(doc, src, "min_client_version", json_string("0.1.0"));
    copy_or(doc, src, "allowed_ports", json_pack("[i,i]", 443, 8443));
    copy_or(doc, src, "allowed_services", json_array());
    copy_or(doc, src, "signatures", json_array());
    int rc;
    if ((rc = check_str(json_object_get(doc, "min_client_version"), "min_client_version", 0, err)) ||
        (rc = check_ports(json_object_get(doc, "allowed_ports"), err)) ||
        (rc = check_strings(json_object_get(doc, "allowed_services"), "allowed_services", err)))
        return gm_error_prefix(err, "network policy");
    json_t *routing = norm_routing(json_object_get(src, "routing"), err);
    if (!routing)
        return gm_error_prefix(err, "network policy");
    json_object_set_new(doc, "routing", json_deep_copy(routing));
    json_decref(routing);
    if ((rc = gm_json_norm_time(doc, "issued_at", &p->issued_at, err)) || (rc = gm_sigdoc_check_shape(doc, err)))
        return gm_error_prefix(err, "network policy");
    p->policy_id = json_string_value(json_object_get(doc, "policy_id"));
    p->issued_by = json_string_value(json_object_get(doc, "issued_by"));
    return 0;
}

static int gm_netpolicy_from_json(const json_t *doc, gm_netpolicy *p, gm_error *err)
{
    memset(p, 0, sizeof *p);
    int rc = normalize(doc, p, err);
    if (rc != 0)
        gm_netpolicy_free(p);
    return rc;
}

static int netpolicy_from_json(const json_t *src, void *out, gm_error *err)
{
    return gm_netpolicy_from_json(src, out, err);
}

static const gm_sigdoc_kind netpolicy_kind = {"network policy", GM_NETPOLICY_MAX_BYTES, sizeof(gm_netpolicy),
                                              netpolicy_from_json};

int gm_netpolicy_parse(const char *text, size_t len, gm_netpolicy *p, gm_error *err)
{
    return gm_sigdoc_parse(&netpolicy_kind, text, len, p, err);
}

int gm_netpolicy_load(const char *path, gm_netpolicy *p, gm_error *err)
{
    return gm_sigdoc_load(&netpolicy_kind, path, p, err);
}

json_t *gm_netpolicy_default_settings(const char *network_name, const char *network_version)
{
    char id[2 * GM_NETPOLICY_STR_MAX];
    snprintf(id, sizeof id, "policy-%s-%s", network_name, network_version ? network_version : "v0");
    return json_pack("{s:s,s:s,s:[i,i],s:[s,s],s:{s:[s,s],s:i}}", "policy_id", id, "min_client_version", "0.1.0",
                     "allowed_ports", 443, 8443, "allowed_services", "service-1", "service-2", "routing",
                     "preferred_transports", "quic", "wireguard", "max_hops", 6);
}

int gm_netpolicy_issue(gm_netpolicy *p, const gm_signer *na, const json_t *settings, gm_time issued_at,
                       gm_error *err)
{
    static const char *const known[] = {"policy_id", "min_client_version", "allowed_ports", "allowed_services",
                                        "routing", NULL};
    char ia[GM_TIME_STRLEN];
    const char *key;
    json_t *val;
    memset(p, 0, sizeof *p);
    if (!json_is_object(settings))
        return gm_error_set(err, GM_EINVAL, "network policy settings must be a JSON object");
    json_object_foreach((json_t *)settings, key, val)
    {
        int ok = 0;
        for (size_t i = 0; known[i] && !ok; i++)
            ok = !strcmp(key, known[i]);
        if (!ok)
            return gm_error_set(err, GM_EINVAL,
                                "unknown network policy setting \"%.64s\" (policy_id, min_client_version, "
                                "allowed_ports, allowed_services, routing)",
                                key);
    }
    json_t *src = json_deep_copy(settings);
    gm_time_format(&issued_at, ia);
    if (!src || json_object_set_new(src, "issued_at", json_string(ia)) ||
        json_object_set_new(src, "issued_by", json_string(na->key_id)) ||
        json_object_set_new(src, "signatures", json_array())) {
        json_decref(src);
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    }
    /* normalize first so that the signed bytes are exactly what a parser will see */
    gm_netpolicy tmp;
    int rc = gm_netpolicy_from_json(src, &tmp, err);
    json_decref(src);
    if (rc != 0)
        return rc;
    if ((rc = gm_sigdoc_sign(tmp.doc, na, err)) != 0) {
        gm_netpolicy_free(&tmp);
        return rc;
    }
    *p = tmp;
    return 0;
}

int gm_netpolicy_verify(const gm_netpolicy *p, const uint8_t na_pk[GM_PK_LEN], gm_error *err)
{
    int rc = gm_sigdoc_verify_any(p->doc, na_pk, err);
    if (rc != 0)
        gm_error_prefix(err, "network policy %s is not signed by this network's NA", p->policy_id);
    return rc;
}

char *gm_netpolicy_dump(const gm_netpolicy *p, int pretty)
{
    return json_dumps(p->doc, pretty ? JSON_INDENT(2) | JSON_SORT_KEYS : JSON_COMPACT | JSON_SORT_KEYS);
}

void gm_netpolicy_free(gm_netpolicy *p)
{
    if (p && p->doc)
        json_decref(p->doc);
    if (p)
        memset(p, 0, sizeof *p);
}
