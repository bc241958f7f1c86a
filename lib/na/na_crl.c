/* Revocation and the CRL: GET /crl (cached, ETag / If-None-Match), POST /admin/revoke, and
 * na_crl_publish_in_tx, the one place a CRL is built (revocation, and at start).
 * A revocation is one transaction: record the revocations, block the key on key_compromise,
 * run the revoke hooks, build the CRL from the revocations whose certificates have not
 * expired, store it with sequence + 1, commit. Concurrent revocations are serialized by the
 * write lock, so none is lost and the sequence only goes up. Without revocations
 * the CRL is still re-signed every crl_resign_interval_s (a thread, na_crl_resign), so a node
 * can tell a CRL that stopped arriving (past next_update) from one that has nothing new. A CRL
 * larger than GM_CRL_MAX_BYTES (what every node accepts) is never stored: the request fails instead.
 * A renewal records the certificate it replaced as superseded with revoked_at = now +
 * supersede_grace_s: CRLs leave it out until then (the overlap), and the same thread publishes
 * a CRL listing it when that time comes. Revoking it during the overlap makes it effective at once. */
#include <errno.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gm/crl.h"
#include "gm/util.h"
#include "na_internal.h"

/* Does an If-None-Match header value (a list of tags, or *) name etag? */
static int etag_matches(const char *header, const char *etag)
{
    size_t n = strlen(etag);
    const char *p = header;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '*')
            return 1;
        if (p[0] == 'W' && p[1] == '/')
            p += 2;
        if (strncmp(p, etag, n) == 0 && (p[n] == '\0' || p[n] == ',' || p[n] == ' ' || p[n] == '\t'))
            return 1;
        while (*p && *p != ',')
            p++;
    }
    return 0;
}

int na_reply_tagged(na_req *r, const char *text, const char *etag)
{
    snprintf(r->etag, sizeof r->etag, "%s", etag);
    const char *inm = na_req_header(r, "If-None-Match");
    if (inm && etag_matches(inm, etag)) {
        r->status = 304;
        r->reply = NULL;
        r->reply = calloc(1, 1);
        return 304;
    }
    return na_reply_text(r, 200, "application/json", text, strlen(text));
}

/* A query argument that must be a whole number in 0..max, or absent (*v unchanged). */
static int query_uint(na_req *r, const char *name, uint64_t max, uint64_t *v)
{
    const char *t = na_req_query(r, name);
    if (!t)
        return 0;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(t, &end, 10);
    if (!*t || *t == '-' || *t == '+' || *end || errno || n > max)
        return na_reply_error(r, 400, "invalid_query", "\"%s\" must be a whole number 0..%llu", name,
                              (unsigned long long)max),
               -1;
    *v = n;
    return 0;
}

/* GET /crl: the current CRL (ETag / If-None-Match). A watch, GET /crl?after=N&wait=S, answers
 * at once with the CRL when its sequence is above N; otherwise the request is held until one
 * is published (then 200 with it) or S seconds pass (then 304): docs/na-api.md. */
int na_handle_crl(na_req *r)
{
    uint64_t seq, after = 0, wait = 0;
    char etag[80];
    int watch = na_req_query(r, "after") != NULL;
    if (query_uint(r, "after", (uint64_t)INT64_MAX, &after) != 0 ||
        query_uint(r, "wait", NA_CRL_WAIT_MAX_S, &wait) != 0)
        return r->status;
    if (!watch && na_req_query(r, "wait"))
        return na_reply_error(r, 400, "invalid_query", "\"wait\" needs \"after\" (the CRL sequence the client holds)");
    char *text = na_crl_cache_get(r->na, &seq, etag);
    if (!text)
        return na_reply_error(r, 503, "crl_unavailable", "no CRL has been issued yet");
    int st;
    if (!watch) {
        st = na_reply_tagged(r, text, etag);
    } else if (seq > after) {
        snprintf(r->etag, sizeof r->etag, "%s", etag);
        st = na_reply_text(r, 200, "application/json", text, strlen(text));
    } else if (wait > 0 && !r->watch_done) {
        r->hold = 1;
        r->hold_after = after;
        r->hold_until_ms = gm_mono_ms() + (int64_t)wait * 1000;
        st = 0;
    } else {
        snprintf(r->etag, sizeof r->etag, "%s", etag);
        r->reply = calloc(1, 1);
        st = r->status = 304;
    }
    free(text);
    return st;
}

typedef struct revoke_target {
    char cert_id[37];
    char node_pk[GM_PK_B64_LEN + 1];
    int pending; /* already recorded as a supersession not yet effective */
} revoke_target;

typedef struct collect_ctx {
    int64_t now;
    revoke_target *t;
    size_t n, cap, total;
} collect_ctx;

int na_cert_supersession_pending(const gm_store_cert *c, int64_t now)
{
    gm_time at;
    return c->revoked && !strcmp(c->reason, "superseded") && gm_time_parse(c->revoked_at, &at, NULL) == 0 &&
           at.unix_s > now;
}

void na_crl_pending_note(gm_na_t *na, int64_t at)
{
    if (!na->resign_running)
        return;
    pthread_mutex_lock(&na->resign_lock);
    if (na->resign_pending_at == 0 || at < na->resign_pending_at) {
        na->resign_pending_at = at;
        pthread_cond_signal(&na->resign_cond);
    }
    pthread_mutex_unlock(&na->resign_lock);
}

/* The earliest revoked_at after now among entries (0 if none): a renewal's supersession not
 * effective yet. With drop, such entries are also removed (a CRL issued now leaves them out). */
static int64_t pending_entries(json_t *entries, int64_t now, int drop)
{
    int64_t next = 0;
    for (size_t i = 0; i < json_array_size(entries);) {
        const char *when = json_string_value(json_object_get(json_array_get(entries, i), "revoked_at"));
        gm_time at;
        if (gm_time_parse(when, &at, NULL) == 0 && at.unix_s > now) {
            next = next == 0 || at.unix_s < next ? at.unix_s : next;
            if (drop) {
                json_array_remove(entries, i);
                continue;
            }
        }
        i++;
    }
    return next;
}

static int collect_unrevoked(const gm_store_cert *c, void *ctx)
{
    collect_ctx *cc = ctx;
    cc->total++;
    /* a renewal's supersession still in its overlap is made effective now, with this reason */
    if (c->revoked && !na_cert_supersession_pending(c, cc->now))
        return 0;
    if (cc->n == cc->cap) {
        size_t cap = cc->cap ? cc->cap * 2 : 8;
        revoke_target *nt = realloc(cc->t, cap * sizeof *nt);
        if (!nt)
            return GM_ENOMEM;
        cc->t = nt;
        cc->cap = cap;
    }
    snprintf(cc->t[cc->n].cert_id, sizeof cc->t[cc->n].cert_id, "%s", c->cert_id);
    snprintf(cc->t[cc->n].node_pk, sizeof cc->t[cc->n].node_pk, "%s", c->node_pk);
    cc->t[cc->n].pending = c->revoked;
    cc->n++;
    return 0;
}

int na_crl_publish_in_tx(gm_na_t *na, gm_time now, char **text_out, uint64_t *seq_out, gm_error *err)
{
    uint64_t seq = 0;
    int rc = gm_store_crl_latest(na->store, &seq, NULL, err);
    int have = rc == 0;
    if (rc == GM_ENOTFOUND)
        rc = 0;
    if (rc != 0)
        return rc;
    uint64_t next = have ? seq + 1 : 0;
    json_t *entries = NULL;
    gm_crl crl;
    memset(&crl, 0, sizeof crl);
    /* an entry whose certificate has expired protects no one: no node accepts that certificate */
    rc = gm_store_revocations_json(na->store, now.unix_s, &entries, err);
    int64_t next_pending = rc == 0 ? pending_entries(entries, now.unix_s, 1) : 0;
    if (next_pending)
        na_crl_pending_note(na, next_pending);
    size_t n = json_array_size(entries);
    if (rc == 0)
        rc = gm_crl_issue(&crl, &na->key, next, entries, now, na_crl_next_update_s(na), err);
    json_decref(entries);
    char *text = rc == 0 ? gm_crl_dump(&crl, 0) : NULL;
    gm_crl_free(&crl);
    if (rc == 0 && !text)
        rc = gm_error_set(err, GM_ENOMEM, "out of memory");
    size_t len = text ? strlen(text) : 0;
    if (rc == 0 && len > na->cfg.crl_max_bytes) {
        rc = gm_error_set(err, GM_ETOOBIG,
                          "CRL %llu would be %zu bytes (%zu entries), over the %zu-byte cap every node enforces; "
                          "it was not published and nothing was changed",
                          (unsigned long long)next, len, n, na->cfg.crl_max_bytes);
        na_metrics_add(&na->metrics, &na->metrics.crl_refused, 1);
        na_log(na, "ALERT: %s", err->msg);
    }
    if (rc == 0)
        rc = gm_store_crl_add(na->store, next, text, now.unix_s, err);
    if (rc != 0) {
        free(text);
        return rc;
    }
    *text_out = text;
    *seq_out = next;
    return 0;
}

/* Inside the open transaction: revocation rows, key block, hooks, new CRL. On success
 * *crl_text (malloc'd) and *seq_out describe the stored CRL. Replies on failure. */
static int revoke_in_tx(na_req *r, const revoke_target *t, size_t n, const char *reason, char **crl_text,
                        uint64_t *seq_out)
{
    gm_na_t *na = r->na;
    gm_error e = {0};
    char when[GM_TIME_STRLEN];
    gm_time_format(&r->now, when);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = t[i].pending ? gm_store_revocation_update(na->store, t[i].cert_id, when, reason, &e)
                          : gm_store_revocation_add(na->store, t[i].cert_id, when, reason, na->key.key_id, &e);
        if (rc == 0)
            rc = na_issuance_append(na, "revoke", t[i].cert_id, t[i].node_pk,
                                    json_pack("{s:s,s:s}", "reason", reason, "revoked_at", when), r->now, &e);
        if (rc == 0 && !strcmp(reason, "key_compromise"))
            rc = gm_store_key_block(na->store, t[i].node_pk, reason, r->now.unix_s, &e);
        for (size_t h = 0; rc == 0 && h < na->n_hooks; h++)
            rc = na->hooks[h].fn(na, na->store, t[i].cert_id, t[i].node_pk, reason, na->hooks[h].ctx, &e);
    }
    if (rc == 0)
        rc = na_crl_publish_in_tx(na, r->now, crl_text, seq_out, &e);
    if (rc == GM_ECONFLICT)
        return na_reply_error(r, 409, "already_revoked", "%s", e.msg), -1;
    if (rc == GM_ETOOBIG)
        return na_reply_error(r, 507, "crl_too_large",
                              "%s; nodes would refuse it. Wait until revoked certificates expire (their entries "
                              "then leave the CRL), or see docs/operator-guide.md (CRL size)",
                              e.msg),
               -1;
    if (rc != 0)
        return na_reply_gm_error(r, &e), -1;
    return 0;
}

int na_handle_revoke(na_req *r)
{
    static const char *const allowed[] = {"cert_id", "node_public_key", "reason", NULL};
    gm_na_t *na = r->na;
    const char *cert_id = NULL, *pk_b64 = NULL, *reason;
    uint8_t pk[GM_PK_LEN];
    if (na_check_members(r, r->json, allowed) != 0)
        return r->status;
    int has_cert = json_object_get(r->json, "cert_id") != NULL, has_key = json_object_get(r->json, "node_public_key") != NULL;
    if (has_cert == has_key)
        return na_reply_error(r, 400, "invalid_body", "give exactly one of \"cert_id\" or \"node_public_key\"");
    if ((has_cert && na_get_string(r, r->json, "cert_id", 1, 36, &cert_id) != 0) ||
        (has_key && na_get_pk(r, r->json, "node_public_key", pk, &pk_b64) != 0) ||
        na_get_string(r, r->json, "reason", 0, 64, &reason) != 0)
        return r->status;
    if (!reason)
        reason = "unspecified"; /* as the Python reference's NA (its admin revoke may omit it) */
    if (cert_id && !gm_uuid_valid(cert_id))
        return na_reply_error(r, 400, "invalid_field", "\"cert_id\" must be a UUID");
    if (!gm_crl_reason_valid(reason))
        return na_reply_error(r, 400, "invalid_field",
                              "\"reason\" must be key_compromise, cessation_of_operation, superseded or unspecified");
    if (na_check_key_window(r) != 0)
        return r->status;

    gm_error e = {0};
    collect_ctx cc = {.now = r->now.unix_s};
    char *crl_text = NULL;
    uint64_t seq = 0;
    if (gm_store_begin(na->store, &e) != 0)
        return na_reply_gm_error(r, &e);
    int rc;
    if (cert_id) {
        gm_store_cert c;
        rc = gm_store_cert_get(na->store, cert_id, &c, &e);
        if (rc == 0) {
            rc = collect_unrevoked(&c, &cc);
            gm_store_cert_clear(&c);
        }
        if (rc == GM_ENOTFOUND)
            na_reply_error(r, 404, "unknown_certificate", "no certificate %s", cert_id);
    } else {
        rc = gm_store_certs_foreach(na->store, pk_b64, collect_unrevoked, &cc, &e);
        if (rc == 0 && cc.total == 0)
            rc = na_reply_error(r, 404, "unknown_node", "no certificate was ever issued to node key %s", pk_b64);
    }
    if (rc == GM_ENOMEM)
        na_reply_error(r, 500, "internal_error", "out of memory");
    else if (rc < 0 && rc != GM_ENOTFOUND)
        na_reply_gm_error(r, &e);
    if (rc == 0 && cc.n == 0)
        rc = na_reply_error(r, 409, "already_revoked", "%s is already revoked", cert_id ? cert_id : "every certificate of this key");
    if (rc == 0)
        rc = revoke_in_tx(r, cc.t, cc.n, reason, &crl_text, &seq);
    if (rc == 0 && gm_store_commit(na->store, &e) != 0) {
        free(crl_text);
        free(cc.t);
        return na_reply_gm_error(r, &e);
    }
    if (rc != 0) {
        gm_store_rollback(na->store);
        free(cc.t);
        return r->status;
    }
    json_t *revoked = json_array();
    for (size_t i = 0; i < cc.n; i++)
        json_array_append_new(revoked, json_string(cc.t[i].cert_id));
    json_error_t je;
    json_t *crl = json_loads(crl_text, 0, &je);
    na_crl_cache_set(na, seq, crl_text);
    na_metrics_add(&na->metrics, &na->metrics.revocations, cc.n);
    na_log(na, "%s revoked %zu certificate(s) (%s) by %s; CRL sequence %llu", r->request_id, cc.n, reason,
           r->admin_key_id, (unsigned long long)seq);
    free(cc.t);
    /* crl_sequence and revoked_count: the Python reference's answer, beside ours */
    return na_reply_json(r, 200, json_pack("{s:o,s:o,s:I,s:I,s:I}", "crl", crl ? crl : json_null(), "revoked", revoked,
                                           "sequence", (json_int_t)seq, "crl_sequence", (json_int_t)seq,
                                           "revoked_count", (json_int_t)cc.n));
}

int64_t na_crl_next_update_s(const gm_na_t *na)
{
    if (na->cfg.crl_resign_interval_s > 0)
        return na->cfg.crl_resign_interval_s * na->cfg.crl_next_update_multiple;
    return na->cfg.crl_next_update_hours * 3600;
}

int na_crl_resign(gm_na_t *na, gm_error *err)
{
    char *text = NULL;
    uint64_t seq = 0;
    int rc = gm_store_begin(na->store, err);
    if (rc != 0)
        return rc;
    rc = na_crl_publish_in_tx(na, gm_time_now(), &text, &seq, err);
    if (rc == 0)
        rc = gm_store_commit(na->store, err);
    else
        gm_store_rollback(na->store);
    if (rc != 0) {
        free(text);
        return rc;
    }
    na_crl_cache_set(na, seq, text);
    return 0;
}

/* issued_at of the cached CRL (0 if none or unreadable). */
static int64_t cached_issued_at(gm_na_t *na)
{
    uint64_t seq;
    char etag[80];
    char *text = na_crl_cache_get(na, &seq, etag);
    gm_crl c;
    int64_t t = 0;
    if (text && gm_crl_parse(text, strlen(text), &c, NULL) == 0) {
        t = c.issued_at.unix_s;
        gm_crl_free(&c);
    }
    free(text);
    return t;
}

static void *resign_main(void *arg)
{
    gm_na_t *na = arg;
    pthread_mutex_lock(&na->resign_lock);
    while (!na->resign_stop) {
        /* the next scheduled re-signing, or a supersession becoming effective, whichever is first */
        int64_t due = na->cfg.crl_resign_interval_s > 0 ? cached_issued_at(na) + na->cfg.crl_resign_interval_s : 0;
        if (na->resign_pending_at && (!due || na->resign_pending_at < due))
            due = na->resign_pending_at;
        if (!due) {
            pthread_cond_wait(&na->resign_cond, &na->resign_lock);
            continue;
        }
        struct timespec at = {due, 0};
        if (at.tv_sec > time(NULL)) {
            int w = pthread_cond_timedwait(&na->resign_cond, &na->resign_lock, &at);
            if (w != ETIMEDOUT)
                continue; /* stop requested, a new pending supersession, or spurious: recompute */
        }
        /* the CRL published now lists what is due; it notes the next pending one itself */
        if (na->resign_pending_at && na->resign_pending_at <= time(NULL))
            na->resign_pending_at = 0;
        pthread_mutex_unlock(&na->resign_lock);
        gm_error e = {0};
        if (na_crl_resign(na, &e) == 0) {
            na_log(na, "CRL re-signed on schedule: sequence %llu", (unsigned long long)na->crl_seq);
        } else {
            na_log(na, "scheduled CRL re-signing failed (retrying in 60 s): %s", e.msg);
            struct timespec retry = {time(NULL) + 60, 0};
            pthread_mutex_lock(&na->resign_lock);
            if (!na->resign_stop)
                pthread_cond_timedwait(&na->resign_cond, &na->resign_lock, &retry);
            continue;
        }
        pthread_mutex_lock(&na->resign_lock);
    }
    pthread_mutex_unlock(&na->resign_lock);
    return NULL;
}

/* The earliest supersession that became effective after the served CRL was issued, or is not
 * effective yet (0 if none), from the store. One whose overlap ended while the NA was stopped
 * is due at once: the CRL served since it started (published during the overlap) leaves it out. */
static int64_t stored_pending_at(gm_na_t *na, int64_t now)
{
    json_t *entries = NULL;
    if (gm_store_revocations_json(na->store, now, &entries, NULL) != 0)
        return now + 60; /* look again soon */
    int64_t issued = cached_issued_at(na);
    int64_t next = pending_entries(entries, issued && issued < now ? issued : now, 0);
    json_decref(entries);
    return next;
}

int na_crl_resign_start(gm_na_t *na, gm_error *err)
{
    /* runs even without scheduled re-signing: supersessions become effective on their own time */
    if (na->resign_running)
        return 0;
    na->resign_pending_at = stored_pending_at(na, gm_time_now().unix_s);
    pthread_mutex_init(&na->resign_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_REALTIME);
    pthread_cond_init(&na->resign_cond, &ca);
    pthread_condattr_destroy(&ca);
    na->resign_stop = 0;
    if (pthread_create(&na->resign_thread, NULL, resign_main, na) != 0) {
        pthread_cond_destroy(&na->resign_cond);
        pthread_mutex_destroy(&na->resign_lock);
        return gm_error_set(err, GM_EINTERNAL, "cannot start the CRL re-signing thread");
    }
    na->resign_running = 1;
    return 0;
}

void na_crl_resign_stop(gm_na_t *na)
{
    if (!na->resign_running)
        return;
    pthread_mutex_lock(&na->resign_lock);
    na->resign_stop = 1;
    pthread_cond_signal(&na->resign_cond);
    pthread_mutex_unlock(&na->resign_lock);
    pthread_join(na->resign_thread, NULL);
    pthread_cond_destroy(&na->resign_cond);
    pthread_mutex_destroy(&na->resign_lock);
    na->resign_running = 0;
}
