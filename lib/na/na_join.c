/* Enrollment: POST /join (invite token -> join certificate), POST /renew (the key's newest
 * valid certificate -> a fresh one) and POST /heartbeat (a node with a valid certificate says
 * it is alive: its "last seen"). Each runs in one write transaction: nonce, key block
 * check, invite consumption (UPDATE ... WHERE used = 0) or supersession, and the certificate
 * insert commit together before the answer, so a certificate returned is durable and a token
 * is used exactly once.
 *
 * Renewal supersedes (docs/formats-notes.md "Renewal and the CRL"): it is accepted only with
 * the newest valid certificate of the key, and only while that is the key's one valid
 * certificate. In the same transaction the certificate renewed is recorded as revoked with
 * reason "superseded", effective supersede_grace_s later (default 10 minutes): during that
 * short overlap peers that still hold it keep their links while the node announces the new one;
 * then the next CRL lists it and every node refuses it. So a key holds at most 2 valid
 * certificates (1 after the overlap), and since a renewal is also refused while the key has 2
 * superseded certificates that have not expired, renewals add at most 2 live CRL entries per key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gm/cert.h"
#include "gm/util.h"
#include "na_internal.h"

#define VALIDITY_HOURS_MAX (24 * 3660)
#define ROLES_IGNORED_MAX 64
/* The code of every refused invite, as the Python reference's NA answers it. */
#define INVITE_REFUSED "invalid_invite_token"
#define HEARTBEAT_STATUS_DEFAULT "unknown"

/* "roles" on /join and /renew (the Python reference's clients send their requested roles):
 * covered by the signature, checked for shape, never used, since roles come from the invite. */
static int check_ignored_roles(na_req *r, const json_t *body)
{
    const json_t *roles = json_object_get(body, "roles");
    if (!roles)
        return 0;
    if (!json_is_array(roles) || json_array_size(roles) > ROLES_IGNORED_MAX)
        return na_reply_error(r, 400, "invalid_field", "\"roles\" must be an array of at most %d strings",
                              ROLES_IGNORED_MAX),
               -1;
    for (size_t i = 0; i < json_array_size(roles); i++)
        if (!json_is_string(json_array_get(roles, i)))
            return na_reply_error(r, 400, "invalid_field", "\"roles\"[%zu] must be a string", i), -1;
    return 0;
}

/* A certificate signed and ready to store: its row (its document in sc.doc), its roles, and its
 * issuance log entry. */
typedef struct issued_cert {
    gm_store_cert sc;
    char *roles_json; /* sc.roles_json points here */
    const char *kind; /* "issue" or "renew" */
    char *log_text;
    gm_merkle_hash leaf;
} issued_cert;

static void issued_clear(issued_cert *ic)
{
    free(ic->sc.doc);
    free(ic->roles_json);
    free(ic->log_text);
    memset(ic, 0, sizeof *ic);
}

/* Sign a certificate for pk with roles and build its issuance log entry ("renew" when
 * renewed_from names the certificate renewed, "issue" otherwise). No store access: it runs
 * before the transaction or inside it. Replies on failure. */
static int issue_cert(na_req *r, const uint8_t pk[GM_PK_LEN], const char *pk_b64, const char *roles_json,
                      int64_t validity_s, int64_t max_validity_hours, const char *renewed_from, issued_cert *ic)
{
    gm_na_t *na = r->na;
    gm_error e = {0};
    json_error_t je;
    memset(ic, 0, sizeof *ic);
    json_t *roles = json_loads(roles_json, 0, &je);
    if (!roles)
        return na_reply_error(r, 500, "internal_error", "stored roles are not JSON"), -1;
    gm_time issued = r->now, expires = gm_time_add(r->now, validity_s);
    /* A certificate never outlives the NA key that signs it. */
    if (gm_time_cmp(&expires, &na->genesis.na_valid_to) > 0)
        expires = na->genesis.na_valid_to;
    gm_cert c;
    int rc = gm_cert_issue(&c, &na->key, na->cfg.network_name, pk, roles, issued, expires, &e);
    json_decref(roles);
    if (rc != 0)
        return na_reply_gm_error(r, &e), -1;
    snprintf(ic->sc.cert_id, sizeof ic->sc.cert_id, "%s", c.cert_id);
    snprintf(ic->sc.node_pk, sizeof ic->sc.node_pk, "%s", pk_b64);
    ic->sc.issued_at = issued.unix_s;
    ic->sc.expires_at = expires.unix_s;
    ic->sc.max_validity_hours = max_validity_hours;
    ic->sc.doc = gm_cert_dump(&c, 0);
    ic->roles_json = strdup(roles_json);
    ic->sc.roles_json = ic->roles_json;
    ic->kind = renewed_from ? "renew" : "issue";
    /* the log holds the certificate as signed: its document, shared (not dumped and parsed back) */
    json_t *logged = NULL;
    if (ic->sc.doc && ic->roles_json)
        logged = renewed_from ? json_pack("{s:O,s:s}", "certificate", c.doc, "renewed_from", renewed_from)
                              : json_pack("{s:O}", "certificate", c.doc);
    gm_cert_free(&c);
    if (!logged) {
        issued_clear(ic);
        return na_reply_error(r, 500, "internal_error", "out of memory"), -1;
    }
    if (na_issuance_entry(na, ic->kind, ic->sc.cert_id, pk_b64, logged, r->now, &ic->log_text, ic->leaf, &e) != 0) {
        issued_clear(ic);
        return na_reply_gm_error(r, &e), -1;
    }
    return 0;
}

/* Inside the open transaction: store the certificate and log it. Replies on failure; on
 * success *doc_out is the compact JSON (taken from ic, which is cleared either way). */
static int store_issued(na_req *r, issued_cert *ic, char **doc_out)
{
    gm_error e = {0};
    if (gm_store_cert_add(r->na->store, &ic->sc, &e) != 0 ||
        gm_store_log_append(r->na->store, ic->kind, ic->sc.cert_id, ic->log_text, ic->leaf, NULL, &e) != 0) {
        issued_clear(ic);
        return na_reply_gm_error(r, &e), -1;
    }
    *doc_out = ic->sc.doc;
    ic->sc.doc = NULL;
    issued_clear(ic);
    return 0;
}

/* Inside the request's transaction: the nonce is new (and now recorded) and the key is not
 * blocked for key_compromise. Non-zero means refused, with the reply set. */
static int record_nonce_and_check_key(na_req *r, const json_t *body, const char *pk_b64)
{
    int blocked = 0;
    gm_error e = {0};
    int rc = na_record_node_nonce(r, body, pk_b64);
    if (rc != 0)
        return rc;
    if (gm_store_key_blocked(r->na->store, pk_b64, &blocked, &e) != 0)
        return na_reply_gm_error(r, &e), -1;
    if (blocked)
        return na_reply_error(r, 403, "key_compromised",
                              "node key %s was revoked for key_compromise; generate a new key, or ask the "
                              "operator to clear it (admin clear-key) and issue a new invite",
                              pk_b64),
               -1;
    return 0;
}

/* Commit and answer 201 with the certificate, or roll back (the reply is already set). The
 * commit is deferred: the server sends the answer only once it is durable (na_server.c
 * finish), and its thread serves other connections while the sync runs. */
static int finish_tx(na_req *r, int rc, char *doc, uint64_t *counter, const char *what)
{
    gm_error e = {0};
    if (rc != 0) {
        gm_store_rollback(r->na->store);
        free(doc);
        return r->status;
    }
    if (gm_store_commit_deferred(r->na->store, &e) != 0) {
        free(doc);
        return na_reply_gm_error(r, &e);
    }
    if (counter)
        na_metrics_add(&r->na->metrics, counter, 1);
    na_log(r->na, "%s %s", r->request_id, what);
    int st = na_reply_text(r, 201, "application/json", doc, strlen(doc));
    free(doc);
    return st;
}

/* The validity of a join's certificate: the hours asked for, at most the invite's maximum. */
static int64_t join_validity_s(int64_t want_hours, const gm_store_invite *inv)
{
    int64_t hours = want_hours > 0 && want_hours < inv->max_validity_hours ? want_hours : inv->max_validity_hours;
    return hours * 3600;
}

int na_handle_join(na_req *r)
{
    /* "roles" is accepted (and covered by the signature) but never used: roles come from the invite. */
    static const char *const allowed[] = {"node_public_key", "invite_token", "validity_hours", "roles",
                                          "timestamp",       "nonce",        "signature",      NULL};
    gm_na_t *na = r->na;
    json_t *body = na_body_object(r, allowed);
    if (!body)
        return r->status;
    const char *pk_b64, *token;
    uint8_t pk[GM_PK_LEN];
    int64_t want_hours;
    char hash[65], *doc = NULL;
    gm_error e = {0};
    if (na_get_pk(r, body, "node_public_key", pk, &pk_b64) != 0 ||
        na_get_string(r, body, "invite_token", 1, 256, &token) != 0 ||
        na_get_int(r, body, "validity_hours", 0, 1, VALIDITY_HOURS_MAX, 0, &want_hours) != 0 ||
        check_ignored_roles(r, body) != 0 || na_check_pop(r, body, pk) != 0 || na_check_key_window(r) != 0) {
        json_decref(body);
        return r->status;
    }
    na_token_hash(token, hash);
    /* When the invite reads open, the certificate is signed before the transaction: an
     * invite's roles and maximum validity never change, and the store's lock (one for every
     * request) is then held for the writes only, not for the signature. The transaction still
     * consumes the invite, or refuses it as before; a certificate signed for an invite it
     * refuses is dropped unseen. */
    issued_cert ic;
    int signed_early = 0;
    gm_store_invite inv;
    memset(&ic, 0, sizeof ic);
    memset(&inv, 0, sizeof inv);
    if (gm_store_invite_get(na->store, hash, &inv, NULL) == 0) {
        if (!inv.used && inv.expires_at > r->now.unix_s) {
            if (issue_cert(r, pk, pk_b64, inv.roles_json, join_validity_s(want_hours, &inv), inv.max_validity_hours,
                           NULL, &ic) != 0) {
                gm_store_invite_clear(&inv);
                json_decref(body);
                return r->status;
            }
            signed_early = 1;
        }
        gm_store_invite_clear(&inv);
    }
    if (gm_store_begin(na->store, &e) != 0) {
        issued_clear(&ic);
        json_decref(body);
        return na_reply_gm_error(r, &e);
    }
    int rc = record_nonce_and_check_key(r, body, pk_b64);
    if (rc == 0) {
        switch (gm_store_invite_consume(na->store, hash, pk_b64, r->now.unix_s, &inv, &e)) {
        case 0: break;
        /* the Python reference's status and code (its clients read them), our cause in "reason" */
        case GM_ENOTFOUND:
            rc = na_reply_error_reason(r, 403, INVITE_REFUSED, "unknown_invite", "unknown invite token");
            break;
        case GM_ECONFLICT:
            rc = na_reply_error_reason(r, 403, INVITE_REFUSED, "invite_used", "invite token was already used");
            break;
        case GM_EEXPIRED:
            rc = na_reply_error_reason(r, 403, INVITE_REFUSED, "invite_expired", "invite token expired; ask for a new one");
            break;
        default: rc = na_reply_gm_error(r, &e); break;
        }
    }
    if (rc == 0) {
        if (!signed_early || strcmp(ic.roles_json, inv.roles_json) != 0 ||
            ic.sc.max_validity_hours != inv.max_validity_hours) {
            issued_clear(&ic);
            rc = issue_cert(r, pk, pk_b64, inv.roles_json, join_validity_s(want_hours, &inv), inv.max_validity_hours,
                            NULL, &ic);
        }
        if (rc == 0)
            rc = store_issued(r, &ic, &doc);
    }
    issued_clear(&ic);
    char what[160];
    snprintf(what, sizeof what, "join: node %s enrolled with roles %s", pk_b64, inv.roles_json ? inv.roles_json : "");
    gm_store_invite_clear(&inv);
    json_decref(body);
    return finish_tx(r, rc, doc, &na->metrics.joins, what);
}

/* The certificates of one key as a renewal at now sees them. */
typedef struct key_certs {
    int64_t now;
    const char *cert_id;   /* the one presented */
    char newest[37];       /* newest unrevoked, unexpired certificate ("" if none) */
    int64_t newest_issued;
    char other[37];        /* another certificate nodes still accept ("" if none) */
    int64_t other_until;   /* when nodes stop accepting it (the end of its overlap) */
    int superseded;        /* superseded certificates the CRL lists (or will) until they expire */
    int64_t superseded_until; /* when the first of them leaves the CRL */
} key_certs;

static int scan_key_cert(const gm_store_cert *c, void *ctx)
{
    key_certs *k = ctx;
    int64_t until = c->expires_at + GM_CLOCK_SKEW_S;
    if (until < k->now)
        return 0;
    int pending = na_cert_supersession_pending(c, k->now);
    if (c->revoked && !strcmp(c->reason, "superseded")) {
        k->superseded++;
        k->superseded_until = !k->superseded_until || until < k->superseded_until ? until : k->superseded_until;
    }
    if (c->revoked && !pending)
        return 0;
    if (strcmp(c->cert_id, k->cert_id) != 0 && (!k->other[0] || until > k->other_until)) {
        gm_time at = {0};
        if (pending && gm_time_parse(c->revoked_at, &at, NULL) == 0 && at.unix_s < until)
            until = at.unix_s;
        snprintf(k->other, sizeof k->other, "%s", c->cert_id);
        k->other_until = until;
    }
    if (c->revoked)
        return 0; /* a pending supersession is never the newest */
    /* foreach walks oldest first, so ">=" makes the later of two equal issue times win */
    if (c->expires_at >= k->now && (!k->newest[0] || c->issued_at >= k->newest_issued)) {
        snprintf(k->newest, sizeof k->newest, "%s", c->cert_id);
        k->newest_issued = c->issued_at;
    }
    return 0;
}

/* Inside the renewal's transaction: cert_id must be the key's newest valid certificate and
 * its only one. Replies (409 / 429) and returns non-zero otherwise. */
static int check_renewable(na_req *r, const char *pk_b64, const char *cert_id)
{
    gm_error e = {0};
    key_certs k = {.now = r->now.unix_s, .cert_id = cert_id};
    if (gm_store_certs_foreach(r->na->store, pk_b64, scan_key_cert, &k, &e) != 0)
        return na_reply_gm_error(r, &e);
    if (strcmp(k.newest, cert_id) != 0)
        return na_reply_error(r, 409, "not_newest_certificate",
                              "certificate %s was already renewed; renew with the newest certificate of this key (%s)",
                              cert_id, k.newest[0] ? k.newest : "none");
    if (k.other[0]) {
        int64_t wait = k.other_until - r->now.unix_s + 1;
        char until[GM_TIME_STRLEN];
        gm_time t = {.unix_s = k.other_until, .has_offset = 1};
        gm_time_format(&t, until);
        r->retry_after = wait > 86400 ? 86400 : (unsigned)wait;
        return na_reply_error(r, 429, "renewing_too_often",
                              "this key already holds 2 valid certificates (%s is accepted until %s); renew after that, "
                              "or have the operator revoke it with reason superseded",
                              k.other, until);
    }
    if (k.superseded >= 2) {
        int64_t wait = k.superseded_until - r->now.unix_s + 1;
        char until[GM_TIME_STRLEN];
        gm_time t = {.unix_s = k.superseded_until, .has_offset = 1};
        gm_time_format(&t, until);
        r->retry_after = wait > 86400 ? 86400 : (unsigned)wait;
        return na_reply_error(r, 429, "renewing_too_often",
                              "this key renewed twice within the lifetime of its certificates (the CRL lists 2 "
                              "superseded ones until %s); renew after that",
                              until);
    }
    return 0;
}

/* Inside the renewal's transaction: retire the certificate renewed (docs at the top). */
static int supersede(na_req *r, const char *cert_id)
{
    gm_na_t *na = r->na;
    gm_error e = {0};
    gm_time at = gm_time_add(r->now, na->cfg.supersede_grace_s);
    char when[GM_TIME_STRLEN];
    gm_time_format(&at, when);
    if (gm_store_revocation_add(na->store, cert_id, when, "superseded", na->key.key_id, &e) != 0)
        return na_reply_gm_error(r, &e);
    na_crl_pending_note(na, at.unix_s);
    return 0;
}

/* Inside the request's transaction: cert_id is pk_b64's, unrevoked and inside its validity
 * window at now. Replies (404 / 403) and returns non-zero otherwise; on success *c holds it. */
static int load_own_valid_cert(na_req *r, const char *pk_b64, const char *cert_id, gm_store_cert *c)
{
    gm_error e = {0};
    int g = gm_store_cert_get(r->na->store, cert_id, c, &e);
    /* Someone else's certificate reads as unknown: no probing of other keys' serials. */
    if (g == GM_ENOTFOUND || (g == 0 && strcmp(c->node_pk, pk_b64) != 0))
        return na_reply_error(r, 404, "unknown_certificate", "no certificate %s for this node key", cert_id);
    if (g != 0)
        return na_reply_gm_error(r, &e);
    /* renewed and still in its overlap: the node should use the certificate it got */
    if (na_cert_supersession_pending(c, r->now.unix_s))
        return na_reply_error(r, 409, "not_newest_certificate",
                              "certificate %s was renewed; use the newest certificate of this key", cert_id);
    if (c->revoked)
        return na_reply_error(r, 403, "certificate_revoked", "certificate %s is revoked (%s); join again with a new invite",
                              cert_id, c->reason);
    if (c->expires_at < r->now.unix_s)
        return na_reply_error(r, 403, "certificate_expired", "certificate %s has expired; join again with a new invite",
                              cert_id);
    if (c->issued_at - GM_CLOCK_SKEW_S > r->now.unix_s)
        return na_reply_error(r, 403, "certificate_not_yet_valid", "certificate %s is not valid yet (check the clocks)",
                              cert_id);
    return 0;
}

/* Inside the request's transaction: the nonce, the key block, then cert_id must be this key's
 * valid certificate (*c). Non-zero means refused, with the reply set. */
static int check_node_cert_in_tx(na_req *r, const json_t *body, const char *pk_b64, const char *cert_id,
                                 gm_store_cert *c)
{
    memset(c, 0, sizeof *c);
    int rc = record_nonce_and_check_key(r, body, pk_b64);
    return rc != 0 ? rc : load_own_valid_cert(r, pk_b64, cert_id, c);
}

/* node_public_key and cert_id of a node request, then its proof of possession. */
static int read_node_cert_request(na_req *r, const json_t *body, uint8_t pk[GM_PK_LEN], const char **pk_b64,
                                  const char **cert_id)
{
    if (na_get_pk(r, body, "node_public_key", pk, pk_b64) != 0 ||
        na_get_string(r, body, "cert_id", 1, 36, cert_id) != 0)
        return -1;
    if (!gm_uuid_valid(*cert_id))
        return na_reply_error(r, 400, "invalid_field", "\"cert_id\" must be a UUID"), -1;
    return na_check_pop(r, body, pk);
}

/* Inside the renewal's transaction: cert_id is pk_b64's and was already renewed (superseded, in
 * its overlap or past it), so the node most likely lost the answer. *doc_out gets the key's
 * newest certificate (issued after cert_id, valid, unrevoked) and nothing new is issued, so a
 * repeated renewal is idempotent. Returns 0 with *doc_out NULL when that does not apply (the
 * usual checks then answer), non-zero when the store failed (reply set). */
static int renewed_already(na_req *r, const char *pk_b64, const char *cert_id, char **doc_out)
{
    gm_error e = {0};
    gm_store_cert c, s;
    memset(&c, 0, sizeof c);
    memset(&s, 0, sizeof s);
    *doc_out = NULL;
    int g = gm_store_cert_get(r->na->store, cert_id, &c, &e);
    if (g == GM_ENOTFOUND)
        return 0;
    if (g != 0)
        return na_reply_gm_error(r, &e);
    int rc = 0;
    if (!strcmp(c.node_pk, pk_b64) && c.revoked && !strcmp(c.reason, "superseded")) {
        key_certs k = {.now = r->now.unix_s, .cert_id = cert_id};
        if (gm_store_certs_foreach(r->na->store, pk_b64, scan_key_cert, &k, &e) != 0)
            rc = na_reply_gm_error(r, &e);
        else if (k.newest[0] && strcmp(k.newest, cert_id) != 0 && k.newest_issued >= c.issued_at) {
            if (gm_store_cert_get(r->na->store, k.newest, &s, &e) != 0)
                rc = na_reply_gm_error(r, &e);
            else if (s.issued_at - GM_CLOCK_SKEW_S <= r->now.unix_s && !(*doc_out = strdup(s.doc)))
                rc = na_reply_error(r, 500, "internal_error", "out of memory");
        }
    }
    gm_store_cert_clear(&c);
    gm_store_cert_clear(&s);
    return rc;
}

int na_handle_renew(na_req *r)
{
    /* "roles" and "validity_hours" as the Python reference's clients send them: roles are
     * ignored (they come from the invite), validity_hours is capped by the invite's maximum */
    static const char *const allowed[] = {"node_public_key", "cert_id", "roles", "validity_hours", "timestamp",
                                          "nonce",           "signature", NULL};
    gm_na_t *na = r->na;
    json_t *body = na_body_object(r, allowed);
    if (!body)
        return r->status;
    const char *pk_b64, *cert_id;
    uint8_t pk[GM_PK_LEN];
    int64_t want_hours;
    char *doc = NULL;
    gm_error e = {0};
    if (na_get_int(r, body, "validity_hours", 0, 1, VALIDITY_HOURS_MAX, 0, &want_hours) != 0 ||
        check_ignored_roles(r, body) != 0 || read_node_cert_request(r, body, pk, &pk_b64, &cert_id) != 0 ||
        na_check_key_window(r) != 0) {
        json_decref(body);
        return r->status;
    }
    if (gm_store_begin(na->store, &e) != 0) {
        json_decref(body);
        return na_reply_gm_error(r, &e);
    }
    gm_store_cert old;
    memset(&old, 0, sizeof old);
    int rc = record_nonce_and_check_key(r, body, pk_b64);
    if (rc == 0 && (rc = renewed_already(r, pk_b64, cert_id, &doc)) == 0 && doc) {
        char again[160];
        snprintf(again, sizeof again, "renew: node %s asked again for certificate %s (renewed already, answer repeated)",
                 pk_b64, cert_id);
        json_decref(body);
        return finish_tx(r, 0, doc, NULL, again);
    }
    if (rc == 0)
        rc = load_own_valid_cert(r, pk_b64, cert_id, &old);
    if (rc == 0)
        rc = check_renewable(r, pk_b64, cert_id);
    if (rc == 0) {
        /* the length asked for, or the presented certificate's; never past the invite's maximum */
        int64_t len = want_hours > 0 ? want_hours * 3600 : old.expires_at - old.issued_at;
        int64_t cap = old.max_validity_hours * 3600;
        issued_cert ic;
        rc = issue_cert(r, pk, pk_b64, old.roles_json, len < cap ? len : cap, old.max_validity_hours, cert_id, &ic);
        if (rc == 0)
            rc = store_issued(r, &ic, &doc);
    }
    if (rc == 0)
        rc = supersede(r, cert_id);
    char what[160];
    snprintf(what, sizeof what, "renew: node %s renewed certificate %s", pk_b64, cert_id);
    gm_store_cert_clear(&old);
    json_decref(body);
    return finish_tx(r, rc, doc, &na->metrics.renewals, what);
}

/* printable ASCII, 1..GM_STORE_STATUS_MAX characters */
static int status_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > GM_STORE_STATUS_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

int na_handle_heartbeat(na_req *r)
{
    static const char *const allowed[] = {"node_public_key", "cert_id", "status", "timestamp", "nonce", "signature",
                                          NULL};
    gm_na_t *na = r->na;
    json_t *body = na_body_object(r, allowed);
    if (!body)
        return r->status;
    const char *pk_b64, *cert_id, *status = NULL;
    uint8_t pk[GM_PK_LEN];
    gm_error e = {0};
    if (na_get_string(r, body, "status", 0, GM_STORE_STATUS_MAX, &status) != 0 ||
        (status && !status_valid(status) &&
         na_reply_error(r, 400, "invalid_field", "\"status\" must be 1..%d printable ASCII characters",
                        GM_STORE_STATUS_MAX)) ||
        read_node_cert_request(r, body, pk, &pk_b64, &cert_id) != 0) {
        json_decref(body);
        return r->status;
    }
    if (gm_store_begin(na->store, &e) != 0) {
        json_decref(body);
        return na_reply_gm_error(r, &e);
    }
    gm_store_cert c;
    int rc = check_node_cert_in_tx(r, body, pk_b64, cert_id, &c);
    gm_store_cert_clear(&c);
    if (rc == 0 && gm_store_cert_heartbeat(na->store, cert_id, r->now.unix_s,
                                           status ? status : HEARTBEAT_STATUS_DEFAULT, &e) != 0)
        rc = na_reply_gm_error(r, &e);
    if (rc == 0 && gm_store_commit_deferred(na->store, &e) != 0) /* the server answers once durable */
        rc = na_reply_gm_error(r, &e);
    else if (rc != 0)
        gm_store_rollback(na->store);
    json_decref(body);
    if (rc != 0)
        return r->status;
    char now[GM_TIME_STRLEN];
    /* the instant recorded as last_heartbeat (whole seconds), so both say the same */
    gm_time t = gm_time_from_unix(r->now.unix_s);
    gm_time_format(&t, now);
    return na_reply_json(r, 200, json_pack("{s:b,s:s}", "ack", 1, "server_time", now));
}
