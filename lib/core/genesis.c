/* Genesis block: parse/normalize, create, sign with the root key, verify, hash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "gm/canon.h"
#include "gm/genesis.h"
#include "gm/sigdoc.h"
#include "gm/util.h"
#include "core_internal.h"

#define GENESIS_MAX_BYTES (256 * 1024)

static json_t *copy_string_array_or(const json_t *v, const char *a, const char *b)
{
    if (v)
        return json_deep_copy(v);
    return json_pack("[ss]", a, b);
}

/* Build the normalized document from src (known members only, defaults filled). */
static int normalize(const json_t *src, gm_genesis *g, gm_error *err)
{
    const char *name, *version;
    int rc;
    if (!json_is_object(src))
        return gm_error_set(err, GM_EFORMAT, "genesis block must be a JSON object");
    if ((rc = gm_json_get_string(src, "network_name", &name, err)) ||
        (rc = gm_json_get_string(src, "network_version", &version, err)) ||
        (rc = gm_json_get_pk(src, "root_public_key", g->root_pk, err)))
        return rc;
    if (name[0] == '\0')
        return gm_error_set(err, GM_EFORMAT, "\"network_name\" must not be empty");
    const json_t *na = json_object_get(src, "network_authority");
    if (!json_is_object(na))
        return gm_error_set(err, GM_EFORMAT, "\"network_authority\" must be an object {public_key, valid_from, valid_to}");
    json_t *doc = json_object(), *nadoc = json_object();
    json_object_set_new(doc, "network_name", json_string(name));
    json_object_set_new(doc, "network_version", json_string(version));
    json_object_set(doc, "root_public_key", json_object_get(src, "root_public_key"));
    json_object_set_new(doc, "network_authority", nadoc);
    g->doc = doc;
    if ((rc = gm_json_get_pk(na, "public_key", g->na_pk, err)) != 0)
        return gm_error_prefix(err, "network_authority");
    json_object_set(nadoc, "public_key", json_object_get(na, "public_key"));
    json_object_set(nadoc, "valid_from", json_object_get(na, "valid_from"));
    json_object_set(nadoc, "valid_to", json_object_get(na, "valid_to"));
    if ((rc = gm_json_norm_time(nadoc, "valid_from", &g->na_valid_from, err)) ||
        (rc = gm_json_norm_time(nadoc, "valid_to", &g->na_valid_to, err)))
        return gm_error_prefix(err, "network_authority");
    const json_t *suites = json_object_get(src, "allowed_crypto_suites");
    const json_t *transports = json_object_get(src, "allowed_transports");
    if ((suites && (rc = gm_json_check_string_array(suites, "allowed_crypto_suites", err))) ||
        (transports && (rc = gm_json_check_string_array(transports, "allowed_transports", err))))
        return rc;
    json_object_set_new(doc, "allowed_crypto_suites", copy_string_array_or(suites, "ed25519", "x25519"));
    json_object_set_new(doc, "allowed_transports", copy_string_array_or(transports, "quic", "wireguard"));
    const json_t *pm = json_object_get(src, "policy_manifest");
    const json_t *hash = json_object_get(pm, "hash"), *url = json_object_get(pm, "url");
    if (!json_is_object(pm) || !json_is_string(hash) || (url && !json_is_string(url) && !json_is_null(url)))
        return gm_error_set(err, GM_EFORMAT, "\"policy_manifest\" must be {\"hash\": string, \"url\": string or null}");
    json_object_set_new(doc, "policy_manifest",
                        json_pack("{s:O,s:O}", "hash", hash, "url", url ? url : json_null()));
    const json_t *anchors = json_object_get(src, "bootstrap_anchors");
    json_t *an = json_array();
    json_object_set_new(doc, "bootstrap_anchors", an);
    if (anchors && !json_is_array(anchors))
        return gm_error_set(err, GM_EFORMAT, "\"bootstrap_anchors\" must be an array of {id, endpoint}");
    for (size_t i = 0; i < json_array_size(anchors); i++) {
        const json_t *a = json_array_get(anchors, i);
        const char *id, *ep;
        if ((rc = gm_json_get_string(a, "id", &id, err)) || (rc = gm_json_get_string(a, "endpoint", &ep, err)))
            return gm_error_prefix(err, "bootstrap_anchors[%zu]", i);
        json_array_append_new(an, json_pack("{s:s,s:s}", "id", id, "endpoint", ep));
    }
    const json_t *sigs = json_object_get(src, "signatures");
    json_object_set_new(doc, "signatures", sigs ? json_deep_copy(sigs) : json_array());
    if ((rc = gm_sigdoc_check_shape(doc, err)) != 0)
        return rc;
    g->network_name = json_string_value(json_object_get(doc, "network_name"));
    return 0;
}

static int genesis_from_json(const json_t *src, void *out, gm_error *err)
{
    gm_genesis *g = out;
    int rc = normalize(src, g, err);
    if (rc != 0)
        gm_genesis_free(g);
    return rc;
}

static const gm_sigdoc_kind genesis_kind = {"genesis block", GENESIS_MAX_BYTES, sizeof(gm_genesis),
                                            genesis_from_json};

int gm_genesis_parse(const char *text, size_t len, gm_genesis *g, gm_error *err)
{
    return gm_sigdoc_parse(&genesis_kind, text, len, g, err);
}

int gm_genesis_load(const char *path, gm_genesis *g, gm_error *err)
{
    return gm_sigdoc_load(&genesis_kind, path, g, err);
}

int gm_genesis_create(gm_genesis *g, const char *network_name, const uint8_t root_pk[GM_PK_LEN],
                      const uint8_t na_pk[GM_PK_LEN], gm_time na_from, gm_time na_to, json_t *anchors,
                      gm_error *err)
{
    char root_b64[GM_PK_B64_LEN + 1], na_b64[GM_PK_B64_LEN + 1], from[GM_TIME_STRLEN], to[GM_TIME_STRLEN];
    gm_pk_encode(root_pk, root_b64);
    gm_pk_encode(na_pk, na_b64);
    gm_time_format(&na_from, from);
    gm_time_format(&na_to, to);
    /* json_pack's "O" takes its own reference; ours is dropped below whether or not it succeeded */
    json_t *an = anchors ? json_incref(anchors) : json_array();
    json_t *src = json_pack("{s:s,s:s,s:s,s:{s:s,s:s,s:s},s:[ss],s:[sss],s:{s:s,s:n},s:O,s:[]}", "network_name",
                            network_name, "network_version", "v0.1", "root_public_key", root_b64,
                            "network_authority", "public_key", na_b64, "valid_from", from, "valid_to", to,
                            "allowed_crypto_suites", "ed25519", "x25519", "allowed_transports", "quic", "wireguard",
                            "gm-noise-tcp", "policy_manifest", "hash", "sha256:placeholder", "url",
                            "bootstrap_anchors", an, "signatures");
    json_decref(an);
    memset(g, 0, sizeof *g);
    if (!src)
        return gm_error_set(err, GM_EINVAL, "cannot build genesis block (bad network name?)");
    int rc = normalize(src, g, err);
    json_decref(src);
    if (rc != 0)
        gm_genesis_free(g);
    return rc;
}

int gm_genesis_sign(gm_genesis *g, const gm_signer *root, gm_error *err)
{
    if (sodium_memcmp(root->pk, g->root_pk, GM_PK_LEN) != 0)
        return gm_error_set(err, GM_EDENIED, "this key (%s) is not the genesis root_public_key", root->pk_b64);
    return gm_sigdoc_sign(g->doc, root, err);
}

int gm_genesis_verify(const gm_genesis *g, gm_error *err)
{
    int rc = gm_sigdoc_verify_all(g->doc, g->root_pk, err);
    if (rc != 0)
        gm_error_prefix(err, "genesis block");
    return rc;
}

int gm_genesis_check_na_window(const gm_genesis *g, gm_time now, gm_error *err)
{
    gm_time lo = gm_time_add(g->na_valid_from, -GM_CLOCK_SKEW_S), hi = gm_time_add(g->na_valid_to, GM_CLOCK_SKEW_S);
    char a[GM_TIME_STRLEN], b[GM_TIME_STRLEN];
    gm_time_format(&g->na_valid_from, a);
    gm_time_format(&g->na_valid_to, b);
    if (gm_time_cmp(&now, &lo) < 0)
        return gm_error_set(err, GM_EEXPIRED, "the NA key is not valid yet (valid from %s, skew %ds)", a,
                            GM_CLOCK_SKEW_S);
    if (gm_time_cmp(&now, &hi) > 0)
        return gm_error_set(err, GM_EEXPIRED, "the NA key expired at %s (skew %ds); a new genesis block is needed", b,
                            GM_CLOCK_SKEW_S);
    return 0;
}

int gm_genesis_hash(const gm_genesis *g, uint8_t out[32], gm_error *err)
{
    char *bytes;
    size_t len;
    int rc = gm_canon_dump_unsigned(g->doc, &bytes, &len, err);
    if (rc != 0)
        return rc;
    crypto_hash_sha256(out, (const uint8_t *)bytes, len);
    free(bytes);
    return 0;
}

void gm_genesis_network_id(const gm_genesis *g, uint8_t out[32])
{
    static const char label[] = "genesis-mesh/v1/network-id";
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const uint8_t *)label, sizeof label); /* with its NUL */
    crypto_hash_sha256_update(&st, g->root_pk, GM_PK_LEN);
    crypto_hash_sha256_update(&st, (const uint8_t *)g->network_name, strlen(g->network_name));
    crypto_hash_sha256_final(&st, out);
}

/* One decimal component: 1..9 digits, no leading zero unless it is "0". */
static const char *version_part(const char *p, uint32_t *out)
{
    size_t n = 0;
    uint32_t v = 0;
    while (p[n] >= '0' && p[n] <= '9' && n < 10)
        v = v * 10 + (uint32_t)(p[n++] - '0');
    if (n == 0 || n > 9 || (n > 1 && p[0] == '0'))
        return NULL;
    *out = v;
    return p + n;
}

int gm_genesis_version(const gm_genesis *g, uint64_t *out, gm_error *err)
{
    const char *v = json_string_value(json_object_get(g->doc, "network_version")), *p;
    uint32_t major = 0, minor = 0;
    if (!v || v[0] != 'v' || !(p = version_part(v + 1, &major)) || *p != '.' || !(p = version_part(p + 1, &minor)) ||
        *p != '\0')
        return gm_error_set(err, GM_EFORMAT,
                            "network_version '%s' is not of the form vMAJOR.MINOR (e.g. v0.1): it cannot be ordered",
                            v ? v : "");
    *out = (uint64_t)major << 32 | minor;
    return 0;
}

int gm_genesis_check_successor(const gm_genesis *cur, const gm_genesis *next, gm_error *err)
{
    uint64_t vc, vn;
    char a[GM_TIME_STRLEN], b[GM_TIME_STRLEN];
    int rc;
    if (sodium_memcmp(cur->root_pk, next->root_pk, GM_PK_LEN) != 0)
        return gm_error_set(err, GM_EDENIED, "not a successor: it names another root key");
    if ((rc = gm_genesis_verify(next, err)) != 0)
        return gm_error_prefix(err, "not a successor");
    if (strcmp(cur->network_name, next->network_name) != 0)
        return gm_error_set(err, GM_EDENIED, "not a successor: it is for network '%s', not '%s'", next->network_name,
                            cur->network_name);
    if ((rc = gm_genesis_version(cur, &vc, err)) != 0 || (rc = gm_genesis_version(next, &vn, err)) != 0)
        return gm_error_prefix(err, "not a successor");
    if (vn <= vc)
        return gm_error_set(err, GM_ECONFLICT, "not a successor: network_version %s is not higher than %s",
                            json_string_value(json_object_get(next->doc, "network_version")),
                            json_string_value(json_object_get(cur->doc, "network_version")));
    if (sodium_memcmp(cur->na_pk, next->na_pk, GM_PK_LEN) == 0 ||
        sodium_memcmp(next->root_pk, next->na_pk, GM_PK_LEN) == 0)
        return gm_error_set(err, GM_EDENIED, "not a successor: the NA key must be a new key (not the current NA key "
                                             "nor the root key)");
    gm_time_format(&cur->na_valid_to, a);
    gm_time_format(&next->na_valid_from, b);
    if (gm_time_cmp(&next->na_valid_from, &cur->na_valid_from) < 0 ||
        gm_time_cmp(&next->na_valid_from, &cur->na_valid_to) >= 0 ||
        gm_time_cmp(&next->na_valid_to, &cur->na_valid_to) <= 0)
        return gm_error_set(err, GM_EDENIED,
                            "not a successor: its NA window (from %s) must start inside the current one (which ends "
                            "%s) and end after it",
                            b, a);
    return 0;
}

int gm_genesis_successor(const gm_genesis *cur, gm_genesis *next, const uint8_t na_pk[GM_PK_LEN], gm_time from,
                         gm_time to, gm_error *err)
{
    uint64_t v;
    char na_b64[GM_PK_B64_LEN + 1], f[GM_TIME_STRLEN], t[GM_TIME_STRLEN], ver[32];
    memset(next, 0, sizeof *next);
    int rc = gm_genesis_version(cur, &v, err);
    if (rc != 0)
        return rc;
    if ((v & 0xffffffffu) >= 999999999u)
        return gm_error_set(err, GM_EINVAL, "network_version has no next minor version");
    snprintf(ver, sizeof ver, "v%u.%u", (unsigned)(v >> 32), (unsigned)(v & 0xffffffffu) + 1);
    gm_pk_encode(na_pk, na_b64);
    gm_time_format(&from, f);
    gm_time_format(&to, t);
    json_t *src = json_deep_copy(cur->doc);
    if (!src)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    json_object_set_new(src, "network_version", json_string(ver));
    json_object_set_new(src, "network_authority", json_pack("{s:s,s:s,s:s}", "public_key", na_b64, "valid_from", f,
                                                            "valid_to", t));
    json_object_set_new(src, "signatures", json_array());
    rc = normalize(src, next, err);
    json_decref(src);
    if (rc != 0)
        gm_genesis_free(next);
    return rc;
}

char *gm_genesis_dump(const gm_genesis *g)
{
    return json_dumps(g->doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
}

const uint8_t *gm_genesis_na_key_for(const gm_genesis *const gs[], size_t k, const json_t *doc)
{
    for (size_t i = 0; i < k; i++)
        if (gm_sigdoc_verify_any(doc, gs[i]->na_pk, NULL) == 0)
            return gs[i]->na_pk;
    return NULL;
}

int gm_genesis_dup(const gm_genesis *src, gm_genesis *dst, gm_error *err)
{
    char *text = gm_genesis_dump(src);
    if (!text)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    int rc = gm_genesis_parse(text, strlen(text), dst, err);
    free(text);
    return rc;
}

void gm_genesis_free(gm_genesis *g)
{
    if (g && g->doc)
        json_decref(g->doc);
    if (g)
        memset(g, 0, sizeof *g);
}
