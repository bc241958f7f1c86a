/* The issuance log: every certificate the NA issues (join), renews or revokes is appended, in
 * the same transaction, as one canonical-JSON entry of a Merkle tree (RFC 9162 hashing,
 * lib/core/merkle.c). The NA publishes signed checkpoints (tree size and root) and the proofs
 * that let anyone check that a certificate is in the log and that a later log extends an
 * earlier one: GET /log/checkpoint, /log/entries, /log/proof, /log/consistency. A node keeps
 * the last checkpoint it saw and refuses one that does not extend it (lib/node/node_docsync.c);
 * `genesis-mesh audit` does the same checks by hand. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "gm/canon.h"
#include "gm/util.h"
#include "merkle_internal.h"
#include "na_internal.h"

#define LOG_ENTRIES_PER_PAGE 256

int na_issuance_entry(gm_na_t *na, const char *kind, const char *cert_id, const char *node_pk_b64, json_t *extra,
                      gm_time now, char **text, gm_merkle_hash leaf, gm_error *err)
{
    char ts[GM_TIME_STRLEN];
    gm_time_format(&now, ts);
    json_t *e = json_pack("{s:s,s:s,s:s,s:s,s:s}", "kind", kind, "cert_id", cert_id, "node_public_key", node_pk_b64,
                          "time", ts, "network_name", na->cfg.network_name);
    if (!e || (extra && json_object_update(e, extra) != 0)) {
        json_decref(e);
        json_decref(extra);
        return gm_error_set(err, GM_ENOMEM, "out of memory building an issuance log entry");
    }
    json_decref(extra);
    size_t len = 0;
    *text = NULL;
    int rc = gm_canon_dump(e, text, &len, err);
    json_decref(e);
    if (rc == 0)
        gm_merkle_leaf_hash(*text, len, leaf);
    return rc;
}

int na_issuance_append(gm_na_t *na, const char *kind, const char *cert_id, const char *node_pk_b64,
                       json_t *extra, gm_time now, gm_error *err)
{
    char *text = NULL;
    gm_merkle_hash leaf;
    int rc = na_issuance_entry(na, kind, cert_id, node_pk_b64, extra, now, &text, leaf, err);
    if (rc == 0)
        rc = gm_store_log_append(na->store, kind, cert_id, text, leaf, NULL, err);
    free(text);
    return rc;
}

/* The leaf hashes of the log, read from the store once and then only the new ones, with the
 * frontier that gives the root of any prefix's end in O(log n). A row changed in the database
 * behind the NA's back shows when its entry is read (read_entry), or at the next start. */
struct na_log_cache {
    gm_merkle_hash *leaves;
    uint64_t n, cap;
    gm_merkle_frontier front;
};

void na_issuance_free(gm_na_t *na)
{
    if (na->log_cache)
        free(na->log_cache->leaves);
    free(na->log_cache);
    na->log_cache = NULL;
}

/* Caches the first n leaf hashes (n <= the store's committed size); log_lock held. A few new
 * entries are read one by one, many in one read. */
static int cache_extend(gm_na_t *na, uint64_t n, gm_error *e)
{
    if (!na->log_cache && !(na->log_cache = calloc(1, sizeof *na->log_cache)))
        return gm_error_set(e, GM_ENOMEM, "out of memory for the issuance log's hashes");
    struct na_log_cache *c = na->log_cache;
    if (n <= c->n)
        return 0;
    if (n > c->cap) {
        uint64_t cap = c->cap ? c->cap : 1024;
        while (cap < n)
            cap *= 2;
        gm_merkle_hash *l = realloc(c->leaves, cap * sizeof *l);
        if (!l)
            return gm_error_set(e, GM_ENOMEM, "out of memory for the issuance log's hashes");
        c->leaves = l;
        c->cap = cap;
    }
    if (n - c->n > 32) {
        uint8_t *h = NULL;
        int rc = gm_store_log_hashes(na->store, n, &h, e);
        if (rc != 0)
            return rc;
        memcpy(c->leaves + c->n, h + c->n * GM_MERKLE_HASH_LEN, (n - c->n) * GM_MERKLE_HASH_LEN);
        free(h);
    } else {
        for (uint64_t i = c->n; i < n; i++) {
            char *text = NULL;
            int rc = gm_store_log_entry(na->store, i, &text, c->leaves[i], e);
            free(text);
            if (rc != 0)
                return rc;
        }
    }
    for (uint64_t i = c->n; i < n; i++)
        gm_merkle_frontier_push(&c->front, c->leaves[i]);
    c->n = n;
    return 0;
}

/* A copy of the first n leaf hashes (n <= the store's committed size), for proofs. */
static int load_hashes(na_req *r, uint64_t n, gm_merkle_hash **out)
{
    gm_error e = {0};
    *out = malloc((n ? n : 1) * sizeof **out);
    if (!*out)
        return na_reply_error(r, 500, "internal_error", "out of memory"), -1;
    pthread_mutex_lock(&r->na->log_lock);
    int rc = cache_extend(r->na, n, &e);
    if (rc == 0 && n)
        memcpy(*out, r->na->log_cache->leaves, n * sizeof **out);
    pthread_mutex_unlock(&r->na->log_lock);
    if (rc != 0) {
        free(*out);
        *out = NULL;
        return na_reply_gm_error(r, &e), -1;
    }
    return 0;
}

/* The current size and the checkpoint of it (signed once per size, then cached). */
static int current_checkpoint(na_req *r, uint64_t *size, char **text)
{
    gm_na_t *na = r->na;
    gm_error e = {0};
    uint64_t n = 0;
    if (gm_store_log_size(na->store, &n, &e) != 0)
        return na_reply_gm_error(r, &e), -1;
    pthread_mutex_lock(&na->log_lock);
    if (na->log_cp_text && na->log_cp_size == n) {
        *text = strdup(na->log_cp_text);
        pthread_mutex_unlock(&na->log_lock);
        *size = n;
        return *text ? 0 : (na_reply_error(r, 500, "internal_error", "out of memory"), -1);
    }
    gm_merkle_hash root;
    int rc = cache_extend(na, n, &e);
    /* Another request may have cached a larger size meanwhile: sign the latest. */
    if (rc == 0) {
        n = na->log_cache->n;
        gm_merkle_frontier_root(&na->log_cache->front, root);
    }
    pthread_mutex_unlock(&na->log_lock);
    if (rc != 0)
        return na_reply_gm_error(r, &e), -1;
    gm_checkpoint c;
    if (gm_checkpoint_issue(&c, &na->key, na->cfg.network_name, n, root, r->now, &e) != 0)
        return na_reply_gm_error(r, &e), -1;
    char *t = gm_checkpoint_dump(&c, 0);
    gm_checkpoint_free(&c);
    if (!t)
        return na_reply_error(r, 500, "internal_error", "out of memory"), -1;
    pthread_mutex_lock(&na->log_lock);
    if (!na->log_cp_text || na->log_cp_size < n) {
        free(na->log_cp_text);
        na->log_cp_text = strdup(t);
        na->log_cp_size = n;
    }
    pthread_mutex_unlock(&na->log_lock);
    *size = n;
    *text = t;
    return 0;
}

/* The stored entry text parsed, or NULL when it no longer matches its stored leaf hash (the
 * database was changed behind the NA's back). */
static json_t *entry_if_intact(const char *text, const gm_merkle_hash leaf)
{
    gm_merkle_hash h;
    gm_merkle_leaf_hash(text, strlen(text), h);
    return sodium_memcmp(h, leaf, GM_MERKLE_HASH_LEN) == 0 ? json_loads(text, 0, NULL) : NULL;
}

int na_issuance_summary(gm_na_t *na, size_t last, json_t **out, gm_error *err)
{
    uint64_t n = 0;
    gm_merkle_hash root;
    *out = NULL;
    int rc = gm_store_log_size(na->store, &n, err);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&na->log_lock);
    rc = cache_extend(na, n, err);
    if (rc == 0) {
        n = na->log_cache->n;
        gm_merkle_frontier_root(&na->log_cache->front, root);
    }
    pthread_mutex_unlock(&na->log_lock);
    if (rc != 0)
        return rc;
    char hex[2 * GM_MERKLE_HASH_LEN + 1];
    gm_merkle_hex(root, hex);
    /* Newest first, as the page lists them. */
    json_t *entries = json_array();
    for (uint64_t i = n; entries && i > 0 && n - i < last; i--) {
        char *text = NULL;
        gm_merkle_hash leaf;
        if ((rc = gm_store_log_entry(na->store, i - 1, &text, leaf, err)) != 0) {
            json_decref(entries);
            return rc;
        }
        json_t *e = entry_if_intact(text, leaf);
        free(text);
        json_array_append_new(entries, json_pack("{s:I,s:O,s:O,s:O,s:O,s:b}", "index", (json_int_t)(i - 1), "kind",
                                                 e ? json_object_get(e, "kind") : json_null(), "cert_id",
                                                 e ? json_object_get(e, "cert_id") : json_null(), "node_public_key",
                                                 e ? json_object_get(e, "node_public_key") : json_null(), "time",
                                                 e ? json_object_get(e, "time") : json_null(), "intact", e != NULL));
        json_decref(e);
    }
    *out = entries ? json_pack("{s:I,s:s,s:o}", "tree_size", (json_int_t)n, "root_hash", hex, "entries", entries)
                   : NULL;
    return *out ? 0 : gm_error_set(err, GM_ENOMEM, "out of memory summarizing the issuance log");
}

int na_handle_log_checkpoint(na_req *r)
{
    uint64_t n;
    char *text = NULL;
    if (current_checkpoint(r, &n, &text) != 0)
        return r->status;
    int st = na_reply_text(r, 200, "application/json", text, strlen(text));
    free(text);
    return st;
}

/* A non-negative integer query argument (strict); def when absent. -1 after replying. */
static int query_u64(na_req *r, const char *name, int required, uint64_t def, uint64_t *out)
{
    const char *v = na_req_query(r, name);
    if (!v) {
        if (required)
            return na_reply_error(r, 400, "missing_field", "query argument \"%s\" is required", name), -1;
        *out = def;
        return 0;
    }
    char *end = NULL;
    if (!*v || *v == '-' || *v == '+' || strlen(v) > 19)
        return na_reply_error(r, 400, "invalid_field", "query argument \"%s\" must be a non-negative integer", name),
               -1;
    unsigned long long x = strtoull(v, &end, 10);
    if (*end)
        return na_reply_error(r, 400, "invalid_field", "query argument \"%s\" must be a non-negative integer", name),
               -1;
    *out = x;
    return 0;
}

static json_t *hex_array(const gm_merkle_hash *path, size_t count)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < count; i++) {
        char hex[2 * GM_MERKLE_HASH_LEN + 1];
        gm_merkle_hex(path[i], hex);
        json_array_append_new(a, json_string(hex));
    }
    return a;
}

/* Entry index as stored, its hash checked: a stored entry that no longer matches its hash
 * means the database was changed behind the NA's back. */
static int read_entry(na_req *r, uint64_t index, json_t **entry, gm_merkle_hash leaf)
{
    gm_error e = {0};
    char *text = NULL;
    int rc = gm_store_log_entry(r->na->store, index, &text, leaf, &e);
    if (rc == GM_ENOTFOUND)
        return na_reply_error(r, 404, "unknown_entry", "%s", e.msg), -1;
    if (rc != 0)
        return na_reply_gm_error(r, &e), -1;
    *entry = entry_if_intact(text, leaf);
    free(text);
    if (!*entry) {
        na_log(r->na, "ALERT: issuance log entry %llu does not match its stored hash: the database was changed",
               (unsigned long long)index);
        return na_reply_error(r, 500, "log_damaged",
                              "issuance log entry %llu does not match its hash; the operator has been alerted",
                              (unsigned long long)index),
               -1;
    }
    return 0;
}

int na_handle_log_entries(na_req *r)
{
    uint64_t start, count, n;
    gm_error e = {0};
    if (query_u64(r, "start", 0, 0, &start) != 0 || query_u64(r, "count", 0, LOG_ENTRIES_PER_PAGE, &count) != 0)
        return r->status;
    if (count == 0 || count > LOG_ENTRIES_PER_PAGE)
        return na_reply_error(r, 400, "invalid_field", "\"count\" must be 1 to %d", LOG_ENTRIES_PER_PAGE);
    if (gm_store_log_size(r->na->store, &n, &e) != 0)
        return na_reply_gm_error(r, &e);
    json_t *arr = json_array();
    for (uint64_t i = start; i < n && i - start < count; i++) {
        json_t *entry;
        gm_merkle_hash leaf;
        char hex[2 * GM_MERKLE_HASH_LEN + 1];
        if (read_entry(r, i, &entry, leaf) != 0) {
            json_decref(arr);
            return r->status;
        }
        gm_merkle_hex(leaf, hex);
        json_array_append_new(arr, json_pack("{s:I,s:o,s:s}", "index", (json_int_t)i, "entry", entry, "leaf_hash", hex));
    }
    return na_reply_json(r, 200, json_pack("{s:I,s:o}", "tree_size", (json_int_t)n, "entries", arr));
}

int na_handle_log_proof(na_req *r)
{
    const char *cert_id = na_req_query(r, "cert_id");
    uint64_t size, index, n;
    gm_error e = {0};
    if (!cert_id || !gm_uuid_valid(cert_id))
        return na_reply_error(r, 400, "invalid_field", "query argument \"cert_id\" must be a certificate id (UUID)");
    if (gm_store_log_size(r->na->store, &n, &e) != 0)
        return na_reply_gm_error(r, &e);
    if (query_u64(r, "tree_size", 0, n, &size) != 0)
        return r->status;
    if (size > n)
        return na_reply_error(r, 400, "invalid_field", "\"tree_size\" %llu is larger than the log (%llu entries)",
                              (unsigned long long)size, (unsigned long long)n);
    int rc = gm_store_log_find(r->na->store, "issue", cert_id, &index, &e);
    if (rc == GM_ENOTFOUND)
        rc = gm_store_log_find(r->na->store, "renew", cert_id, &index, &e);
    if (rc == GM_ENOTFOUND)
        return na_reply_error(r, 404, "unknown_certificate", "the issuance log has no certificate %s", cert_id);
    if (rc != 0)
        return na_reply_gm_error(r, &e);
    if (index >= size)
        return na_reply_error(r, 404, "not_in_tree", "certificate %s is entry %llu, after the first %llu entries",
                              cert_id, (unsigned long long)index, (unsigned long long)size);
    json_t *entry;
    gm_merkle_hash leaf, *h = NULL, path[GM_MERKLE_PROOF_MAX];
    size_t count = 0;
    if (read_entry(r, index, &entry, leaf) != 0)
        return r->status;
    if (load_hashes(r, size, &h) != 0) {
        json_decref(entry);
        return r->status;
    }
    rc = gm_merkle_inclusion_proof(h, size, index, path, &count, &e);
    free(h);
    if (rc != 0) {
        json_decref(entry);
        return na_reply_gm_error(r, &e);
    }
    char hex[2 * GM_MERKLE_HASH_LEN + 1];
    gm_merkle_hex(leaf, hex);
    return na_reply_json(r, 200, json_pack("{s:I,s:I,s:s,s:o,s:o}", "index", (json_int_t)index, "tree_size",
                                           (json_int_t)size, "leaf_hash", hex, "entry", entry, "path",
                                           hex_array(path, count)));
}

int na_handle_log_consistency(na_req *r)
{
    uint64_t first, second, n;
    gm_error e = {0};
    if (query_u64(r, "first", 1, 0, &first) != 0 || query_u64(r, "second", 1, 0, &second) != 0)
        return r->status;
    if (gm_store_log_size(r->na->store, &n, &e) != 0)
        return na_reply_gm_error(r, &e);
    if (first == 0 || first > second || second > n)
        return na_reply_error(r, 400, "invalid_field",
                              "need 0 < first <= second <= %llu (the log's size); got first %llu, second %llu",
                              (unsigned long long)n, (unsigned long long)first, (unsigned long long)second);
    gm_merkle_hash *h = NULL, path[GM_MERKLE_PROOF_MAX];
    size_t count = 0;
    if (load_hashes(r, second, &h) != 0)
        return r->status;
    int rc = gm_merkle_consistency_proof(h, first, second, path, &count, &e);
    free(h);
    if (rc != 0)
        return na_reply_gm_error(r, &e);
    return na_reply_json(r, 200, json_pack("{s:I,s:I,s:o}", "first", (json_int_t)first, "second", (json_int_t)second,
                                           "path", hex_array(path, count)));
}
