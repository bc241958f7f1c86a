/* Agent descriptors: what a node says it offers, signed by its own node key
 * (formats.md "Agent descriptor"); plus capability and agent id syntax. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gm/agent.h"
#include "gm/canon.h"
#include "gm/sigdoc.h"
#include "gm/util.h"
#include "core_internal.h"

int gm_agent_cap_normalize(const char *in, char out[GM_AGENT_CAP_MAX + 1], gm_error *err)
{
    size_t n = in ? strlen(in) : 0;
    if (n == 0 || n > GM_AGENT_CAP_MAX)
        return gm_error_set(err, GM_EINVAL, "capability name must be 1..%d characters", GM_AGENT_CAP_MAX);
    for (size_t i = 0; i < n; i++) {
        char ch = in[i];
        if (ch == ':' || ch == '.') {
            if (i == 0 || i + 1 == n || out[i - 1] == '.')
                return gm_error_set(err, GM_EINVAL, "capability '%.*s' has an empty segment (use e.g. llm.chat)",
                                    GM_AGENT_CAP_MAX, in);
            out[i] = '.';
        } else if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-') {
            out[i] = ch;
        } else {
            return gm_error_set(err, GM_EINVAL,
                                "capability '%.*s': only lowercase letters, digits, '_', '-' and '.' (or ':') allowed",
                                GM_AGENT_CAP_MAX, in);
        }
    }
    out[n] = '\0';
    return 0;
}

int gm_agent_id_valid(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > GM_AGENT_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = id[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
              ch == '_' || ch == '-'))
            return 0;
    }
    return 1;
}

static int norm_endpoint(const json_t *ep, json_t **out, gm_error *err)
{
    const json_t *host = json_object_get(ep, "host"), *port = json_object_get(ep, "port"),
                 *scheme = json_object_get(ep, "scheme");
    if (!json_is_object(ep) || !json_is_string(host) || !json_is_integer(port) || !json_is_string(scheme))
        return gm_error_set(err, GM_EFORMAT, "\"endpoint\" must be {\"host\": string, \"port\": integer, \"scheme\": string}");
    if (json_integer_value(port) < 0 || json_integer_value(port) > 65535 || json_string_length(host) > 255 ||
        json_string_length(scheme) == 0 || json_string_length(scheme) > 32)
        return gm_error_set(err, GM_EFORMAT, "\"endpoint\" out of range (port 0..65535, host <= 255, scheme 1..32 chars)");
    *out = json_pack("{s:O,s:O,s:O}", "host", host, "port", port, "scheme", scheme);
    return *out ? 0 : gm_error_set(err, GM_ENOMEM, "out of memory");
}

static int normalize(const json_t *src, gm_agent_desc *d, gm_error *err)
{
    const char *id, *pk, *net;
    int rc;
    if (!json_is_object(src))
        return gm_error_set(err, GM_EFORMAT, "descriptor must be a JSON object");
    if ((rc = gm_json_get_string(src, "agent_id", &id, err)) || (rc = gm_json_get_string(src, "node_public_key", &pk, err)) ||
        (rc = gm_json_get_string(src, "network_name", &net, err)))
        return rc;
    if (!gm_agent_id_valid(id))
        return gm_error_set(err, GM_EFORMAT, "\"agent_id\" must be 1..%d characters of [A-Za-z0-9._-]", GM_AGENT_ID_MAX);
    if ((rc = gm_pk_decode(pk, d->node_pk, err)) != 0)
        return gm_error_prefix(err, "\"node_public_key\"");
    if (strlen(net) == 0 || strlen(net) > 128)
        return gm_error_set(err, GM_EFORMAT, "\"network_name\" must be 1..128 characters");
    const json_t *caps = json_object_get(src, "capabilities");
    if ((rc = gm_json_check_string_array(caps, "capabilities", err)) != 0)
        return rc;
    if (json_array_size(caps) == 0 || json_array_size(caps) > GM_AGENT_MAX_CAPS)
        return gm_error_set(err, GM_EFORMAT, "\"capabilities\" must list 1..%d names", GM_AGENT_MAX_CAPS);
    json_t *ncaps = json_array();
    for (size_t i = 0; i < json_array_size(caps); i++) {
        char c[GM_AGENT_CAP_MAX + 1];
        if ((rc = gm_agent_cap_normalize(json_string_value(json_array_get(caps, i)), c, err)) != 0) {
            json_decref(ncaps);
            return gm_error_prefix(err, "\"capabilities\"[%zu]", i);
        }
        json_array_append_new(ncaps, json_string(c));
    }
    json_t *ep = NULL;
    if ((rc = norm_endpoint(json_object_get(src, "endpoint"), &ep, err)) != 0) {
        json_decref(ncaps);
        return rc;
    }
    const json_t *md = json_object_get(src, "metadata");
    if (md && !json_is_null(md) && !json_is_object(md)) {
        json_decref(ncaps);
        json_decref(ep);
        return gm_error_set(err, GM_EFORMAT, "\"metadata\" must be an object");
    }
    json_t *doc = json_pack("{s:s,s:s,s:s,s:o,s:o,s:O,s:O,s:O}", "agent_id", id, "node_public_key", pk,
                            "network_name", net, "capabilities", ncaps, "endpoint", ep, "registered_at",
                            json_object_get(src, "registered_at"), "expires_at", json_object_get(src, "expires_at"),
                            "signatures", json_object_get(src, "signatures"));
    if (!doc)
        return gm_error_set(err, GM_EFORMAT, "descriptor: missing \"registered_at\", \"expires_at\" or \"signatures\"");
    json_object_set_new(doc, "metadata", json_is_object(md) ? json_deep_copy(md) : json_object());
    d->doc = doc;
    char *mbytes = NULL;
    size_t mlen = 0;
    if ((rc = gm_canon_dump(json_object_get(doc, "metadata"), &mbytes, &mlen, err)) != 0)
        return gm_error_prefix(err, "\"metadata\"");
    free(mbytes);
    if (mlen > GM_AGENT_METADATA_MAX)
        return gm_error_set(err, GM_ETOOBIG, "\"metadata\" larger than %d bytes", GM_AGENT_METADATA_MAX);
    if ((rc = gm_json_norm_time(doc, "registered_at", &d->registered_at, err)) ||
        (rc = gm_json_norm_time(doc, "expires_at", &d->expires_at, err)) || (rc = gm_sigdoc_check_shape(doc, err)))
        return rc;
    d->agent_id = json_string_value(json_object_get(doc, "agent_id"));
    d->network_name = json_string_value(json_object_get(doc, "network_name"));
    gm_pk_encode(d->node_pk, d->node_pk_b64);
    d->n_caps = json_array_size(ncaps);
    return 0;
}

int gm_agent_desc_from_json(const json_t *src, gm_agent_desc *d, gm_error *err)
{
    memset(d, 0, sizeof *d);
    int rc = normalize(src, d, err);
    if (rc != 0) {
        gm_error_prefix(err, "agent descriptor");
        gm_agent_desc_free(d);
    }
    return rc;
}

static int desc_from_json(const json_t *src, void *out, gm_error *err)
{
    return gm_agent_desc_from_json(src, out, err);
}

static const gm_sigdoc_kind desc_kind = {"agent descriptor", GM_AGENT_DESC_MAX, sizeof(gm_agent_desc),
                                         desc_from_json};

int gm_agent_desc_parse(const char *text, size_t len, gm_agent_desc *d, gm_error *err)
{
    return gm_sigdoc_parse(&desc_kind, text, len, d, err);
}

int gm_agent_desc_build(gm_agent_desc *d, const gm_signer *node, const char *agent_id, const char *network_name,
                        const json_t *caps, const char *endpoint_host, int endpoint_port, gm_time registered_at,
                        int ttl_s, const json_t *metadata, gm_error *err)
{
    char ra[GM_TIME_STRLEN], ea[GM_TIME_STRLEN];
    memset(d, 0, sizeof *d);
    if (ttl_s <= 0)
        return gm_error_set(err, GM_EINVAL, "descriptor lifetime must be positive");
    gm_time exp = gm_time_add(registered_at, ttl_s);
    gm_time_format(&registered_at, ra);
    gm_time_format(&exp, ea);
    json_t *src = json_pack("{s:s,s:s,s:s,s:O,s:{s:s,s:i,s:s},s:s,s:s,s:[]}", "agent_id", agent_id ? agent_id : "",
                            "node_public_key", node->pk_b64, "network_name", network_name ? network_name : "",
                            "capabilities", caps, "endpoint", "host", endpoint_host ? endpoint_host : "", "port",
                            endpoint_port, "scheme", "mesh", "registered_at", ra, "expires_at", ea, "signatures");
    if (!src)
        return gm_error_set(err, GM_EINVAL, "cannot build descriptor (bad capabilities)");
    json_object_set_new(src, "metadata", metadata ? json_deep_copy(metadata) : json_object());
    /* Normalise first, so what is signed is exactly what a verifier re-derives. */
    gm_agent_desc tmp;
    int rc = gm_agent_desc_from_json(src, &tmp, err);
    json_decref(src);
    if (rc != 0)
        return rc;
    /* The signature names the node public key, whatever label the key file had. */
    gm_signer k = *node;
    snprintf(k.key_id, sizeof k.key_id, "%s", node->pk_b64);
    rc = gm_sigdoc_sign(tmp.doc, &k, err);
    gm_signer_wipe(&k);
    if (rc != 0) {
        gm_agent_desc_free(&tmp);
        return rc;
    }
    *d = tmp;
    return 0;
}

int gm_agent_desc_verify(const gm_agent_desc *d, gm_error *err)
{
    const json_t *sigs = json_object_get(d->doc, "signatures");
    int named = 0;
    for (size_t i = 0; i < json_array_size(sigs); i++)
        if (!strcmp(json_string_value(json_object_get(json_array_get(sigs, i), "key_id")), d->node_pk_b64))
            named = 1;
    int rc = gm_sigdoc_verify_all(d->doc, d->node_pk, err);
    if (rc != 0)
        return gm_error_prefix(err, "descriptor of agent '%s' is not signed by its node key", d->agent_id);
    if (!named)
        return gm_error_set(err, GM_ESIG, "descriptor of agent '%s': no signature has key_id = the node public key",
                            d->agent_id);
    return 0;
}

int gm_agent_desc_check_window(const gm_agent_desc *d, gm_time now, int max_ttl_s, gm_error *err)
{
    gm_time lo = gm_time_add(now, -GM_AGENT_WINDOW_S), hi = gm_time_add(now, GM_AGENT_WINDOW_S);
    if (gm_time_cmp(&d->registered_at, &lo) < 0 || gm_time_cmp(&d->registered_at, &hi) > 0)
        return gm_error_set(err, GM_EEXPIRED, "descriptor registered_at is more than %d s from the NA's clock",
                            GM_AGENT_WINDOW_S);
    gm_time maxexp = gm_time_add(d->registered_at, max_ttl_s);
    if (gm_time_cmp(&d->expires_at, &d->registered_at) <= 0 || gm_time_cmp(&d->expires_at, &maxexp) > 0)
        return gm_error_set(err, GM_EEXPIRED, "descriptor expires_at must be after registered_at and at most %d s later",
                            max_ttl_s);
    return 0;
}

int gm_agent_desc_check_live(const gm_agent_desc *d, gm_time now, gm_error *err)
{
    gm_time hi = gm_time_add(d->expires_at, GM_CLOCK_SKEW_S);
    if (gm_time_cmp(&now, &hi) > 0)
        return gm_error_set(err, GM_EEXPIRED, "descriptor of agent '%s' has expired", d->agent_id);
    return 0;
}

const char *gm_agent_desc_cap(const gm_agent_desc *d, size_t i)
{
    return json_string_value(json_array_get(json_object_get(d->doc, "capabilities"), i));
}

int gm_agent_desc_has_cap(const gm_agent_desc *d, const char *cap)
{
    for (size_t i = 0; i < d->n_caps; i++)
        if (!strcmp(gm_agent_desc_cap(d, i), cap))
            return 1;
    return 0;
}

void gm_agent_desc_share(const gm_agent_desc *src, gm_agent_desc *dst)
{
    *dst = *src; /* agent_id and network_name point into the shared document */
    json_incref(dst->doc);
}

void gm_agent_desc_free(gm_agent_desc *d)
{
    if (d && d->doc)
        json_decref(d->doc);
    if (d)
        memset(d, 0, sizeof *d);
}
