/* NA key rotation on the node. Besides the current genesis block (D/genesis.json) a node may
 * hold the successor the root signed (D/genesis.next.json: fetched from the NA's
 * GET /genesis?next with the CRL poll, or gossiped by peers as GENESIS_* messages) and the
 * block before the current one (D/genesis.prev.json). Certificates, CRLs and access policies
 * signed by the NA key of any of them whose window holds now are accepted: that is the overlap
 * in which peers on the old and the new block keep talking (the Noise prologues bind the
 * network's identity, which a successor keeps). The node renews its certificate as soon as the
 * NA signs with the new key, and makes the successor current once its own certificate is
 * signed by the new key (or the old window is over). Rules: docs/formats-notes.md, "Successor
 * genesis blocks"; behaviour: docs/node-runtime.md, "NA key rotation". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gm/sigdoc.h"
#include "gm/util.h"
#include "core_internal.h"
#include "node_internal.h"

#define GEN_NEXT "genesis.next.json"
#define GEN_PREV "genesis.prev.json"
#define GEN_TICK_MS 1000
#define NA_WARN_DEFAULT_S (30L * 86400)

static int in_window(const gm_genesis *g, gm_time now)
{
    gm_error e = {0};
    return gm_genesis_check_na_window(g, now, &e) == 0;
}

static const char *version_of(const gm_genesis *g)
{
    const char *v = json_string_value(json_object_get(g->doc, "network_version"));
    return v ? v : "";
}

static int block_path(gm_node *n, const char *name, char *out, size_t cap, gm_error *err)
{
    return gm_path_join(out, cap, n->dir, name, err);
}

/* GM_ENOTFOUND when the file is absent. */
static int load_block(gm_node *n, const char *name, gm_genesis *g, gm_error *err)
{
    char path[4200];
    int rc = block_path(n, name, path, sizeof path, err);
    if (rc == 0 && !gm_file_exists(path))
        return GM_ENOTFOUND;
    return rc ? rc : gm_genesis_load(path, g, err);
}

static int write_block(gm_node *n, const char *name, const gm_genesis *g, gm_error *err)
{
    char path[4200];
    char *text = gm_genesis_dump(g);
    int rc = text ? block_path(n, name, path, sizeof path, err) : gm_error_set(err, GM_ENOMEM, "out of memory");
    if (rc == 0)
        rc = gm_file_write_atomic(path, text, strlen(text), 0644, err);
    free(text);
    return rc;
}

static void unlink_block(gm_node *n, const char *name)
{
    char path[4200];
    gm_error e = {0};
    if (block_path(n, name, path, sizeof path, &e) == 0)
        unlink(path);
}

static void log_block(gm_node *n, gm_node_log_level lvl, const char *event, const gm_genesis *g, const char *source)
{
    char pk[GM_PK_B64_LEN + 1], from[GM_TIME_STRLEN], to[GM_TIME_STRLEN];
    gm_pk_encode(g->na_pk, pk);
    gm_time_format(&g->na_valid_from, from);
    gm_time_format(&g->na_valid_to, to);
    json_t *f = json_pack("{s:s,s:s,s:s,s:s}", "network_version", version_of(g), "na_public_key", pk, "valid_from",
                          from, "valid_to", to);
    if (source)
        json_object_set_new(f, "source", json_string(source));
    node_log(n, lvl, event, f);
}

/* The successor becomes current; the current block becomes the previous one. Files first, in
 * an order that a crash at any point leaves loadable (a stale next file is dropped at load). */
static int promote(gm_node *n, gm_error *err)
{
    int rc = write_block(n, GEN_PREV, &n->genesis, err);
    if (rc == 0)
        rc = write_block(n, "genesis.json", &n->genesis_next, err);
    if (rc != 0) {
        node_log(n, GM_LOG_WARN, "genesis_switch_failed", json_pack("{s:s}", "error", err->msg));
        return rc;
    }
    unlink_block(n, GEN_NEXT);
    if (n->have_genesis_prev)
        gm_genesis_free(&n->genesis_prev);
    n->genesis_prev = n->genesis;
    n->have_genesis_prev = 1;
    n->genesis = n->genesis_next;
    memset(&n->genesis_next, 0, sizeof n->genesis_next);
    n->have_genesis_next = 0;
    n->na_expiry_warned = 0;
    log_block(n, GM_LOG_INFO, "genesis_switched", &n->genesis, NULL);
    return 0;
}

int node_genesis_load(gm_node *n, gm_error *err)
{
    gm_genesis g;
    gm_error e = {0};
    gm_time now = gm_time_now();
    int rc = load_block(n, GEN_NEXT, &g, &e);
    if (rc == 0 && (rc = gm_genesis_check_successor(&n->genesis, &g, &e)) != 0)
        gm_genesis_free(&g);
    if (rc == 0) {
        n->genesis_next = g;
        n->have_genesis_next = 1;
    } else if (rc != GM_ENOTFOUND) {
        node_log(n, GM_LOG_WARN, "genesis_ignored", json_pack("{s:s,s:s}", "file", GEN_NEXT, "error", e.msg));
        if (!n->cfg.check_only)
            unlink_block(n, GEN_NEXT);
    }
    memset(&e, 0, sizeof e);
    rc = load_block(n, GEN_PREV, &g, &e);
    if (rc == 0 && (rc = gm_genesis_check_successor(&g, &n->genesis, &e)) != 0)
        gm_genesis_free(&g);
    if (rc == 0) {
        n->genesis_prev = g;
        n->have_genesis_prev = 1;
    } else if (rc != GM_ENOTFOUND) {
        node_log(n, GM_LOG_WARN, "genesis_ignored", json_pack("{s:s,s:s}", "file", GEN_PREV, "error", e.msg));
        if (!n->cfg.check_only)
            unlink_block(n, GEN_PREV);
    }
    /* Stopped through the end of the current window: the successor is what is in force now
     * (node start --check writes nothing: the start will switch). */
    if (n->have_genesis_next && !in_window(&n->genesis, now) && in_window(&n->genesis_next, now) &&
        !n->cfg.check_only)
        return promote(n, err);
    return 0;
}

void node_genesis_free(gm_node *n)
{
    gm_genesis_free(&n->genesis_prev);
    gm_genesis_free(&n->genesis_next);
    n->have_genesis_prev = n->have_genesis_next = 0;
}

size_t node_genesis_trusted(gm_node *n, gm_time now, const gm_genesis *out[3])
{
    size_t k = 0;
    if (n->have_genesis_next && in_window(&n->genesis_next, now))
        out[k++] = &n->genesis_next;
    out[k++] = &n->genesis; /* always: its window is judged (and reported) by the checks */
    if (n->have_genesis_prev && in_window(&n->genesis_prev, now))
        out[k++] = &n->genesis_prev;
    return k;
}

int node_trust_check(gm_node *n, const uint8_t *cert_json, size_t cert_len, const uint8_t *remote_x25519,
                     gm_time now, gm_cert *out, gm_trust_reason *reason, gm_error *err)
{
    const gm_genesis *gs[3];
    size_t k = node_genesis_trusted(n, now, gs);
    int rc = GM_ESIG;
    for (size_t i = 0; i < k && rc == GM_ESIG; i++)
        rc = gm_node_trust_check(gs[i], n->have_crl ? &n->crl : NULL, cert_json, cert_len, remote_x25519, now, out,
                                 reason, err);
    return rc;
}

int node_cert_verify(gm_node *n, const gm_cert *c, gm_time now, gm_error *err)
{
    const gm_genesis *gs[3];
    size_t k = node_genesis_trusted(n, now, gs);
    return gm_cert_verify_any(c, gs, k, n->have_crl ? &n->crl : NULL, now, err);
}

const uint8_t *node_na_key_for(gm_node *n, const json_t *doc)
{
    const gm_genesis *gs[3];
    size_t k = node_genesis_trusted(n, gm_time_now(), gs);
    return gm_genesis_na_key_for(gs, k, doc);
}

/* ---- the successor as a gossiped document (node_docsync.c) ---- */

static const gm_genesis *newest(gm_node *n)
{
    return n->have_genesis_next ? &n->genesis_next : &n->genesis;
}

static int held(gm_node *n, uint64_t *seq)
{
    gm_error e = {0};
    return gm_genesis_version(newest(n), seq, &e) == 0;
}

static char *dump(gm_node *n)
{
    return json_dumps(newest(n)->doc, JSON_COMPACT);
}

static void refused(gm_node *n, const char *source, const char *why)
{
    node_log(n, GM_LOG_WARN, "genesis_refused", json_pack("{s:s,s:s}", "source", source, "error", why));
}

/* May the successor we hold become current now? */
static int switch_due(gm_node *n, gm_time now)
{
    if (!n->have_genesis_next || !in_window(&n->genesis_next, now))
        return 0;
    return gm_sigdoc_verify_any(n->cert.doc, n->genesis_next.na_pk, NULL) == 0 || !in_window(&n->genesis, now);
}

static int offer(gm_node *n, const char *text, size_t len, const char *source, int starting)
{
    gm_error err = {0};
    gm_genesis g;
    uint64_t have = 0, got = 0;
    int rc = gm_genesis_parse(text, len, &g, &err);
    if (rc != 0) {
        refused(n, source, err.msg);
        return rc;
    }
    if (gm_genesis_version(&g, &got, &err) == 0 && held(n, &have) && got <= have) {
        gm_genesis_free(&g);
        return GM_ECONFLICT; /* what we hold already (the NA serves it until it is current) */
    }
    if (n->have_genesis_next) {
        /* A second rotation while the first is still in overlap: only when the first is done. */
        gm_error e2 = {0};
        if (!switch_due(n, gm_time_now()) || promote(n, &e2) != 0) {
            gm_genesis_free(&g);
            node_log(n, GM_LOG_DEBUG, "genesis_deferred", json_pack("{s:s}", "source", source));
            return GM_ECONFLICT;
        }
    }
    if ((rc = gm_genesis_check_successor(&n->genesis, &g, &err)) != 0 ||
        (rc = write_block(n, GEN_NEXT, &g, &err)) != 0) {
        refused(n, source, err.msg);
        gm_genesis_free(&g);
        return rc;
    }
    n->genesis_next = g;
    n->have_genesis_next = 1;
    n->na_expiry_warned = 0;
    log_block(n, GM_LOG_INFO, "genesis_successor", &n->genesis_next, source);
    if (!starting)
        node_doc_announce(n, NODE_DOC_GENESIS);
    return 0;
}

const node_doc_kind node_doc_genesis = {.event = "genesis",
                                        .path = "/genesis?next",
                                        .optional = 1,
                                        .t_announce = GM_WIRE_GENESIS_ANNOUNCE,
                                        .t_request = GM_WIRE_GENESIS_REQUEST,
                                        .t_data = GM_WIRE_GENESIS_DATA,
                                        .held = held,
                                        .dump = dump,
                                        .offer = offer,
                                        .refused = refused};

/* ---- over time ---- */

static long warn_before_s(gm_node *n)
{
    return n->cfg.na_warn_s > 0 ? n->cfg.na_warn_s : NA_WARN_DEFAULT_S;
}

void node_genesis_tick(gm_node *n, uint64_t now_ms)
{
    gm_error err = {0};
    if (now_ms < n->genesis_next_tick_ms || n->stopping)
        return;
    n->genesis_next_tick_ms = now_ms + GEN_TICK_MS;
    gm_time now = gm_time_now();
    if (switch_due(n, now))
        promote(n, &err);
    if (n->have_genesis_prev && !in_window(&n->genesis_prev, now)) {
        log_block(n, GM_LOG_INFO, "genesis_previous_ended", &n->genesis_prev, NULL);
        gm_genesis_free(&n->genesis_prev);
        n->have_genesis_prev = 0;
        unlink_block(n, GEN_PREV);
    }
    /* The NA signs with the successor's key (its CRL says so): renew under it now rather than
     * at two thirds of the certificate's life, which may be after the old window. */
    const gm_genesis *gs[3];
    node_genesis_trusted(n, now, gs);
    const uint8_t *na_now = n->have_crl ? node_na_key_for(n, n->crl.doc) : NULL;
    if (na_now && memcmp(na_now, gs[0]->na_pk, GM_PK_LEN) == 0 &&
        gm_sigdoc_verify_any(n->cert.doc, na_now, NULL) != 0 && strcmp(n->renew_asked_for, n->cert.cert_id) != 0) {
        snprintf(n->renew_asked_for, sizeof n->renew_asked_for, "%s", n->cert.cert_id);
        node_log(n, GM_LOG_INFO, "renew_for_rotation",
                 json_pack("{s:s,s:s}", "cert_id", n->cert.cert_id, "network_version", version_of(gs[0])));
        node_renew_soon(n);
    }
    const gm_genesis *g = newest(n);
    int64_t left = g->na_valid_to.unix_s - now.unix_s;
    if (left < warn_before_s(n) && !n->na_expiry_warned) {
        char to[GM_TIME_STRLEN];
        gm_time_format(&g->na_valid_to, to);
        n->na_expiry_warned = 1;
        node_log(n, GM_LOG_WARN, "na_key_expiring",
                 json_pack("{s:s,s:s,s:I,s:s}", "network_version", version_of(g), "valid_to", to, "seconds_left",
                           (json_int_t)left, "hint",
                           "the NA key ends soon and no successor genesis block is known: the operator rotates it "
                           "(genesis rotate, admin genesis publish, restart the NA with the new key)"));
    }
}

static json_t *block_json(const gm_genesis *g)
{
    char pk[GM_PK_B64_LEN + 1], from[GM_TIME_STRLEN], to[GM_TIME_STRLEN];
    gm_pk_encode(g->na_pk, pk);
    gm_time_format(&g->na_valid_from, from);
    gm_time_format(&g->na_valid_to, to);
    return json_pack("{s:s,s:s,s:s,s:s}", "network_version", version_of(g), "na_public_key", pk, "valid_from", from,
                     "valid_to", to);
}

json_t *node_genesis_status_json(gm_node *n)
{
    gm_time now = gm_time_now();
    const gm_genesis *g = newest(n);
    int64_t left = g->na_valid_to.unix_s - now.unix_s;
    json_t *o = block_json(&n->genesis);
    json_object_set_new(o, "successor", n->have_genesis_next ? block_json(&n->genesis_next) : json_null());
    json_object_set_new(o, "previous", n->have_genesis_prev ? block_json(&n->genesis_prev) : json_null());
    json_object_set_new(o, "own_cert_na_key_current",
                        json_boolean(gm_sigdoc_verify_any(n->cert.doc, n->genesis.na_pk, NULL) == 0));
    json_object_set_new(o, "na_key_seconds_left", json_integer((json_int_t)left));
    json_object_set_new(o, "warning", left < warn_before_s(n)
                                          ? json_string("the NA key ends soon and no successor genesis block is known")
                                          : json_null());
    return o;
}
