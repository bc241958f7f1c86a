/* Merkle trees of the issuance log (RFC 9162 section 2.1) and the NA's signed checkpoints. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "gm/merkle.h"
#include "gm/sigdoc.h"
#include "core_internal.h"
#include "merkle_internal.h"

static void node_hash(const gm_merkle_hash l, const gm_merkle_hash r, gm_merkle_hash out)
{
    crypto_hash_sha256_state st;
    const uint8_t prefix = 0x01;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, &prefix, 1);
    crypto_hash_sha256_update(&st, l, GM_MERKLE_HASH_LEN);
    crypto_hash_sha256_update(&st, r, GM_MERKLE_HASH_LEN);
    crypto_hash_sha256_final(&st, out);
}

void gm_merkle_leaf_hash(const void *data, size_t len, gm_merkle_hash out)
{
    crypto_hash_sha256_state st;
    const uint8_t prefix = 0x00;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, &prefix, 1);
    crypto_hash_sha256_update(&st, data, len);
    crypto_hash_sha256_final(&st, out);
}

/* The largest power of two strictly below n (n >= 2). */
static uint64_t split(uint64_t n)
{
    uint64_t k = 1;
    while (k << 1 < n)
        k <<= 1;
    return k;
}

void gm_merkle_root(const gm_merkle_hash *leaves, uint64_t n, gm_merkle_hash out)
{
    if (n == 0) {
        crypto_hash_sha256(out, (const uint8_t *)"", 0);
        return;
    }
    if (n == 1) {
        memcpy(out, leaves[0], GM_MERKLE_HASH_LEN);
        return;
    }
    uint64_t k = split(n);
    gm_merkle_hash l, r;
    gm_merkle_root(leaves, k, l);
    gm_merkle_root(leaves + k, n - k, r);
    node_hash(l, r, out);
}

static int push(gm_merkle_hash *path, size_t *count, const gm_merkle_hash h, gm_error *err)
{
    if (*count >= GM_MERKLE_PROOF_MAX)
        return gm_error_set(err, GM_ETOOBIG, "Merkle proof longer than %d hashes", GM_MERKLE_PROOF_MAX);
    memcpy(path[(*count)++], h, GM_MERKLE_HASH_LEN);
    return 0;
}

/* PATH(m, D[n]) of RFC 6962 2.1.1, deepest hash first. */
static int inclusion(const gm_merkle_hash *d, uint64_t n, uint64_t m, gm_merkle_hash *path, size_t *count,
                     gm_error *err)
{
    if (n <= 1)
        return 0;
    uint64_t k = split(n);
    gm_merkle_hash h;
    int rc;
    if (m < k) {
        if ((rc = inclusion(d, k, m, path, count, err)) != 0)
            return rc;
        gm_merkle_root(d + k, n - k, h);
    } else {
        if ((rc = inclusion(d + k, n - k, m - k, path, count, err)) != 0)
            return rc;
        gm_merkle_root(d, k, h);
    }
    return push(path, count, h, err);
}

int gm_merkle_inclusion_proof(const gm_merkle_hash *leaves, uint64_t n, uint64_t m,
                              gm_merkle_hash path[GM_MERKLE_PROOF_MAX], size_t *count, gm_error *err)
{
    *count = 0;
    if (m >= n)
        return gm_error_set(err, GM_EINVAL, "entry %llu is not in a log of %llu entries", (unsigned long long)m,
                            (unsigned long long)n);
    return inclusion(leaves, n, m, path, count, err);
}

/* SUBPROOF(m, D[n], b) of RFC 6962 2.1.2. */
static int subproof(const gm_merkle_hash *d, uint64_t m, uint64_t n, int b, gm_merkle_hash *path, size_t *count,
                    gm_error *err)
{
    gm_merkle_hash h;
    if (m == n) {
        if (b)
            return 0;
        gm_merkle_root(d, n, h);
        return push(path, count, h, err);
    }
    uint64_t k = split(n);
    int rc;
    if (m <= k) {
        if ((rc = subproof(d, m, k, b, path, count, err)) != 0)
            return rc;
        gm_merkle_root(d + k, n - k, h);
    } else {
        if ((rc = subproof(d + k, m - k, n - k, 0, path, count, err)) != 0)
            return rc;
        gm_merkle_root(d, k, h);
    }
    return push(path, count, h, err);
}

int gm_merkle_consistency_proof(const gm_merkle_hash *leaves, uint64_t m, uint64_t n,
                                gm_merkle_hash path[GM_MERKLE_PROOF_MAX], size_t *count, gm_error *err)
{
    *count = 0;
    if (m == 0 || m > n)
        return gm_error_set(err, GM_EINVAL, "no consistency proof from %llu to %llu entries", (unsigned long long)m,
                            (unsigned long long)n);
    return subproof(leaves, m, n, 1, path, count, err);
}

int gm_merkle_verify_inclusion(const gm_merkle_hash leaf, uint64_t m, uint64_t n, const gm_merkle_hash *path,
                               size_t count, const gm_merkle_hash root, gm_error *err)
{
    if (m >= n)
        return gm_error_set(err, GM_ESIG, "entry %llu cannot be in a log of %llu entries", (unsigned long long)m,
                            (unsigned long long)n);
    uint64_t fn = m, sn = n - 1;
    gm_merkle_hash r;
    memcpy(r, leaf, GM_MERKLE_HASH_LEN);
    for (size_t i = 0; i < count; i++) {
        if (sn == 0)
            return gm_error_set(err, GM_ESIG, "inclusion proof of entry %llu is too long", (unsigned long long)m);
        if ((fn & 1) || fn == sn) {
            node_hash(path[i], r, r);
            if (!(fn & 1))
                while (!(fn & 1) && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
        } else {
            node_hash(r, path[i], r);
        }
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0 || sodium_memcmp(r, root, GM_MERKLE_HASH_LEN) != 0)
        return gm_error_set(err, GM_ESIG, "entry %llu is not in the log of %llu entries with this root",
                            (unsigned long long)m, (unsigned long long)n);
    return 0;
}

int gm_merkle_verify_consistency(uint64_t m, uint64_t n, const gm_merkle_hash root_m, const gm_merkle_hash root_n,
                                 const gm_merkle_hash *path, size_t count, gm_error *err)
{
    if (m > n)
        return gm_error_set(err, GM_ESIG, "the log shrank from %llu to %llu entries", (unsigned long long)m,
                            (unsigned long long)n);
    if (m == n) {
        if (count != 0 || sodium_memcmp(root_m, root_n, GM_MERKLE_HASH_LEN) != 0)
            return gm_error_set(err, GM_ESIG, "two different logs of %llu entries (a fork)", (unsigned long long)n);
        return 0;
    }
    if (m == 0)
        return count == 0 ? 0 : gm_error_set(err, GM_ESIG, "consistency proof from an empty log must be empty");
    if (count == 0 || count > GM_MERKLE_PROOF_MAX - 1)
        return gm_error_set(err, GM_ESIG, "consistency proof from %llu to %llu entries has %zu hashes",
                            (unsigned long long)m, (unsigned long long)n, count);
    gm_merkle_hash p[GM_MERKLE_PROOF_MAX];
    size_t np = 0;
    if ((m & (m - 1)) == 0) /* m is a power of two: the proof starts from root_m */
        memcpy(p[np++], root_m, GM_MERKLE_HASH_LEN);
    memcpy(p + np, path, count * GM_MERKLE_HASH_LEN);
    np += count;
    uint64_t fn = m - 1, sn = n - 1;
    while (fn & 1) {
        fn >>= 1;
        sn >>= 1;
    }
    gm_merkle_hash fr, sr;
    memcpy(fr, p[0], GM_MERKLE_HASH_LEN);
    memcpy(sr, p[0], GM_MERKLE_HASH_LEN);
    for (size_t i = 1; i < np; i++) {
        if (sn == 0)
            return gm_error_set(err, GM_ESIG, "consistency proof from %llu to %llu entries is too long",
                                (unsigned long long)m, (unsigned long long)n);
        if ((fn & 1) || fn == sn) {
            node_hash(p[i], fr, fr);
            node_hash(p[i], sr, sr);
            if (!(fn & 1))
                while (!(fn & 1) && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
        } else {
            node_hash(sr, p[i], sr);
        }
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0 || sodium_memcmp(fr, root_m, GM_MERKLE_HASH_LEN) != 0 ||
        sodium_memcmp(sr, root_n, GM_MERKLE_HASH_LEN) != 0)
        return gm_error_set(err, GM_ESIG,
                            "the log of %llu entries does not extend the log of %llu entries held (a fork, or "
                            "entries changed)",
                            (unsigned long long)n, (unsigned long long)m);
    return 0;
}

void gm_merkle_hex(const gm_merkle_hash h, char out[2 * GM_MERKLE_HASH_LEN + 1])
{
    sodium_bin2hex(out, 2 * GM_MERKLE_HASH_LEN + 1, h, GM_MERKLE_HASH_LEN);
}

int gm_merkle_unhex(const char *hex, gm_merkle_hash out, gm_error *err)
{
    size_t got = 0;
    const char *end = NULL;
    if (!hex || strlen(hex) != 2 * GM_MERKLE_HASH_LEN ||
        sodium_hex2bin(out, GM_MERKLE_HASH_LEN, hex, strlen(hex), NULL, &got, &end) != 0 ||
        got != GM_MERKLE_HASH_LEN || *end != '\0')
        return gm_error_set(err, GM_EFORMAT, "a hash must be %d hexadecimal characters", 2 * GM_MERKLE_HASH_LEN);
    for (const char *c = hex; *c; c++)
        if (*c >= 'A' && *c <= 'F')
            return gm_error_set(err, GM_EFORMAT, "hashes are written in lowercase hexadecimal");
    return 0;
}

/* ---- checkpoints ---- */

static int checkpoint_normalize(const json_t *src, gm_checkpoint *c, gm_error *err)
{
    static const char *const known[] = {"network_name", "tree_size", "root_hash", "timestamp", "issuer",
                                        "signatures", NULL};
    const char *name, *root, *issuer;
    int rc;
    if (!json_is_object(src))
        return gm_error_set(err, GM_EFORMAT, "checkpoint must be a JSON object");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)src, key, v)
    {
        int ok = 0;
        for (size_t i = 0; known[i]; i++)
            ok |= !strcmp(key, known[i]);
        if (!ok)
            return gm_error_set(err, GM_EFORMAT, "checkpoint: unknown member \"%.64s\"", key);
    }
    if ((rc = gm_json_get_string(src, "network_name", &name, err)) ||
        (rc = gm_json_get_string(src, "root_hash", &root, err)) ||
        (rc = gm_json_get_string(src, "issuer", &issuer, err)))
        return gm_error_prefix(err, "checkpoint");
    const json_t *size = json_object_get(src, "tree_size");
    if (!json_is_integer(size) || json_integer_value(size) < 0)
        return gm_error_set(err, GM_EFORMAT, "checkpoint: \"tree_size\" must be a non-negative integer");
    if (snprintf(c->network_name, sizeof c->network_name, "%s", name) >= (int)sizeof c->network_name)
        return gm_error_set(err, GM_EFORMAT, "checkpoint: \"network_name\" is too long");
    if ((rc = gm_merkle_unhex(root, c->root, err)) != 0)
        return gm_error_prefix(err, "checkpoint \"root_hash\"");
    c->tree_size = (uint64_t)json_integer_value(size);
    json_t *doc = json_deep_copy(src);
    if (!doc)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    c->doc = doc;
    if ((rc = gm_json_norm_time(doc, "timestamp", &c->timestamp, err)) || (rc = gm_sigdoc_check_shape(doc, err)))
        return gm_error_prefix(err, "checkpoint");
    return 0;
}

static int checkpoint_from_json(const json_t *src, void *out, gm_error *err)
{
    gm_checkpoint *c = out;
    memset(c, 0, sizeof *c);
    int rc = checkpoint_normalize(src, c, err);
    if (rc != 0)
        gm_checkpoint_free(c);
    return rc;
}

static const gm_sigdoc_kind checkpoint_kind = {"checkpoint", GM_CHECKPOINT_MAX_BYTES, sizeof(gm_checkpoint),
                                               checkpoint_from_json};

int gm_checkpoint_parse(const char *text, size_t len, gm_checkpoint *c, gm_error *err)
{
    return gm_sigdoc_parse(&checkpoint_kind, text, len, c, err);
}

int gm_checkpoint_load(const char *path, gm_checkpoint *c, gm_error *err)
{
    return gm_sigdoc_load(&checkpoint_kind, path, c, err);
}

int gm_checkpoint_issue(gm_checkpoint *c, const gm_signer *na, const char *network_name, uint64_t tree_size,
                        const gm_merkle_hash root, gm_time now, gm_error *err)
{
    char hex[2 * GM_MERKLE_HASH_LEN + 1], ts[GM_TIME_STRLEN];
    gm_merkle_hex(root, hex);
    gm_time_format(&now, ts);
    json_t *src = json_pack("{s:s,s:I,s:s,s:s,s:s,s:[]}", "network_name", network_name, "tree_size",
                            (json_int_t)tree_size, "root_hash", hex, "timestamp", ts, "issuer", na->key_id,
                            "signatures");
    if (!src)
        return gm_error_set(err, GM_ENOMEM, "out of memory building a checkpoint");
    gm_checkpoint tmp;
    int rc = checkpoint_from_json(src, &tmp, err);
    json_decref(src);
    if (rc == 0 && (rc = gm_sigdoc_sign(tmp.doc, na, err)) != 0)
        gm_checkpoint_free(&tmp);
    if (rc == 0)
        *c = tmp;
    return rc;
}

int gm_checkpoint_verify(const gm_checkpoint *c, const uint8_t na_pk[GM_PK_LEN], const char *network_name,
                         gm_error *err)
{
    if (network_name && strcmp(c->network_name, network_name) != 0)
        return gm_error_set(err, GM_EAUTH, "checkpoint of network '%.64s', not '%.64s'", c->network_name,
                            network_name);
    int rc = gm_sigdoc_verify_any(c->doc, na_pk, err);
    if (rc != 0)
        gm_error_prefix(err, "checkpoint of %llu entries is not signed by this network's NA",
                        (unsigned long long)c->tree_size);
    return rc;
}

char *gm_checkpoint_dump(const gm_checkpoint *c, int pretty)
{
    return c->doc ? json_dumps(c->doc, JSON_SORT_KEYS | (pretty ? JSON_INDENT(2) : JSON_COMPACT)) : NULL;
}

void gm_checkpoint_free(gm_checkpoint *c)
{
    json_decref(c->doc);
    memset(c, 0, sizeof *c);
}
