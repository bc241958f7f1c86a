/* The one place a peer certificate is judged: NA signature under the genesis key, network,
 * validity window, CRL, and (for handshakes) that its node key is the Noise remote static.
 * Also the store of certificates we verified, which routing consults before accepting a
 * route, so a relay cannot invent identities. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "node_internal.h"
#include "core_internal.h"

#define NODE_MAX_CERTS 4096
#define NODE_CERTS_PER_KEY 2
#define NODE_CERTS_PER_PEER (NODE_MAX_CERTS / 2)
#define NODE_CERT_IDLE_MS 60000

static const char *const reason_names[GM_TRUST_N] = {
    [GM_TRUST_OK] = "ok",
    [GM_TRUST_MALFORMED] = "malformed_cert",
    [GM_TRUST_BAD_SIGNATURE] = "bad_signature",
    [GM_TRUST_WRONG_NETWORK] = "wrong_network",
    [GM_TRUST_EXPIRED] = "expired",
    [GM_TRUST_REVOKED] = "revoked",
    [GM_TRUST_KEY_MISMATCH] = "key_mismatch",
};

const char *gm_trust_reason_name(gm_trust_reason r)
{
    return (unsigned)r < GM_TRUST_N ? reason_names[r] : "unknown";
}

int gm_node_trust_check(const gm_genesis *g, const gm_crl *crl, const uint8_t *cert_json,
                        size_t cert_len, const uint8_t *remote_x25519, gm_time now, gm_cert *out,
                        gm_trust_reason *reason, gm_error *err)
{
    gm_cert c;
    *reason = GM_TRUST_MALFORMED;
    memset(out, 0, sizeof *out);
    int rc = gm_cert_parse((const char *)cert_json, cert_len, &c, err);
    if (rc != 0)
        return rc;
    rc = gm_cert_verify(&c, g, crl, now, err);
    /* certificates are only as good as the NA key that signed them: enforce its genesis window */
    if (rc == 0 && (rc = gm_genesis_check_na_window(g, now, err)) != 0)
        gm_error_prefix(err, "certificate %s", c.cert_id);
    if (rc != 0) {
        switch (rc) {
        case GM_ESIG: *reason = GM_TRUST_BAD_SIGNATURE; break;
        case GM_EEXPIRED: *reason = GM_TRUST_EXPIRED; break;
        case GM_EREVOKED: *reason = GM_TRUST_REVOKED; break;
        default:
            *reason = strcmp(c.network_name, g->network_name) ? GM_TRUST_WRONG_NETWORK : GM_TRUST_MALFORMED;
        }
        gm_cert_free(&c);
        return rc;
    }
    if (remote_x25519) {
        uint8_t x[32];
        gm_error e2 = {0};
        if (gm_noise_static_pub_from_ed25519(c.node_pk, x, &e2) != 0 ||
            sodium_memcmp(x, remote_x25519, 32) != 0) {
            *reason = GM_TRUST_KEY_MISMATCH;
            rc = gm_error_set(err, GM_EAUTH,
                              "certificate %s names key %s, which is not the key that completed the handshake",
                              c.cert_id, c.node_pk_b64);
            gm_cert_free(&c);
            return rc;
        }
    }
    *reason = GM_TRUST_OK;
    *out = c;
    return 0;
}

/* ---- store of verified certificates ---- */

/* Entries are bounded three ways, so one peer cannot fill the store and blind the node
 * (every limit hit is counted and logged):
 * - per key: at most NODE_CERTS_PER_KEY certificates of one node key (the current one and a
 *   renewal overlap); a later-expiring certificate replaces the one that expires first;
 * - per peer: at most NODE_CERTS_PER_PEER certificates pushed by one neighbour key in CERT
 *   messages; beyond that its oldest unused one makes room, else the new one is refused;
 * - in all: NODE_MAX_CERTS; when full, expired entries go, then the oldest unused entry.
 * An entry is in use while a link's peer holds it or a route named it (routing looks the
 * certificate up on every update it accepts, at least every full update) within
 * NODE_CERT_IDLE_MS. */

static int usable(gm_node *n, const gm_cert *c)
{
    gm_time now = gm_time_now(), hi = gm_time_add(c->expires_at, GM_CLOCK_SKEW_S);
    if (gm_time_cmp(&now, &hi) > 0)
        return 0;
    return !(n->have_crl && gm_crl_contains(&n->crl, c->cert_id, NULL));
}

const gm_cert *node_cert_lookup(gm_node *n, const uint8_t pk[GM_PK_LEN])
{
    node_certent *best = NULL;
    if (memcmp(pk, n->key.pk, GM_PK_LEN) == 0)
        return &n->cert;
    for (node_certent *e = n->certs; e; e = e->next)
        if (memcmp(e->cert.node_pk, pk, GM_PK_LEN) == 0 && usable(n, &e->cert) &&
            (!best || gm_time_cmp(&e->cert.expires_at, &best->cert.expires_at) > 0))
            best = e;
    if (!best)
        return NULL;
    best->used_ms = node_now_ms(n);
    return &best->cert;
}

const gm_cert *node_cert_lookup_id(gm_node *n, const uint8_t pk[GM_PK_LEN], const char *cert_id)
{
    if (memcmp(pk, n->key.pk, GM_PK_LEN) == 0)
        return strcasecmp(n->cert.cert_id, cert_id) == 0 ? &n->cert : NULL;
    for (node_certent *e = n->certs; e; e = e->next)
        if (memcmp(e->cert.node_pk, pk, GM_PK_LEN) == 0 && strcasecmp(e->cert.cert_id, cert_id) == 0) {
            if (!usable(n, &e->cert))
                return NULL;
            e->used_ms = node_now_ms(n);
            return &e->cert;
        }
    return NULL;
}

static node_certent *find_id(gm_node *n, const char *cert_id)
{
    for (node_certent *e = n->certs; e; e = e->next)
        if (strcmp(e->cert.cert_id, cert_id) == 0)
            return e;
    return NULL;
}

static size_t count(gm_node *n)
{
    size_t k = 0;
    for (node_certent *e = n->certs; e; e = e->next)
        k++;
    return k;
}

static void entry_free(node_certent *e)
{
    gm_cert_free(&e->cert);
    free(e);
}

/* Drop expired entries to make room. */
static void prune_expired(gm_node *n)
{
    gm_time now = gm_time_now();
    for (node_certent **pp = &n->certs; *pp;) {
        gm_time hi = gm_time_add((*pp)->cert.expires_at, GM_CLOCK_SKEW_S);
        if (gm_time_cmp(&now, &hi) > 0) {
            node_certent *e = *pp;
            *pp = e->next;
            entry_free(e);
        } else {
            pp = &(*pp)->next;
        }
    }
}

static int recently_used(const node_certent *e, uint64_t now)
{
    return e->used_ms && now - e->used_ms < NODE_CERT_IDLE_MS;
}

/* The certificate an up link to its key authenticated with. */
static int pinned_by_link(gm_node *n, const node_certent *e)
{
    node_link *l = node_link_by_pk(n, e->cert.node_pk);
    return l && l->has_cert && strcmp(l->peer_cert.cert_id, e->cert.cert_id) == 0;
}

static void evict(gm_node *n, node_certent *victim, const char *why)
{
    for (node_certent **pp = &n->certs; *pp; pp = &(*pp)->next)
        if (*pp == victim) {
            *pp = victim->next;
            break;
        }
    n->m.certs_evicted++;
    node_log(n, GM_LOG_DEBUG, "cert_evicted",
             json_pack("{s:s,s:s,s:s}", "cert_id", victim->cert.cert_id, "node", victim->cert.node_pk_b64, "reason", why));
    entry_free(victim);
}

/* The oldest unused entry (pushed by from when from is not NULL), or NULL. The list is
 * newest first: walk the candidates backwards, checking links only for those. */
static node_certent *oldest_unused(gm_node *n, const uint8_t *from)
{
    uint64_t now = node_now_ms(n);
    size_t k = 0, cap = count(n);
    node_certent **cand = cap ? malloc(cap * sizeof *cand) : NULL, *v = NULL;
    if (!cand)
        return NULL;
    for (node_certent *e = n->certs; e; e = e->next)
        if ((!from || (e->pushed && memcmp(e->from_pk, from, GM_PK_LEN) == 0)) && !recently_used(e, now))
            cand[k++] = e;
    while (k > 0 && !v)
        if (!pinned_by_link(n, cand[--k]))
            v = cand[k];
    free(cand);
    return v;
}

static int refuse(gm_node *n, const gm_cert *c, const uint8_t *from, const char *why)
{
    char peer[GM_PK_B64_LEN + 1] = "";
    if (from)
        node_pk_b64(from, peer);
    n->m.certs_refused++;
    n->m.certs_refused_limit++;
    node_log(n, GM_LOG_WARN, "cert_refused",
             json_pack("{s:s,s:s,s:s,s:s}", "reason", why, "cert_id", c->cert_id, "node", c->node_pk_b64, "peer", peer));
    return GM_ETOOBIG;
}

/* Make room for c (pushed by from, NULL for a handshake) within the limits above. */
static int make_room(gm_node *n, const gm_cert *c, const uint8_t *from)
{
    size_t same_key = 0, pushed = 0;
    node_certent *first_expiring = NULL;
    for (node_certent *e = n->certs; e; e = e->next) {
        if (memcmp(e->cert.node_pk, c->node_pk, GM_PK_LEN) == 0) {
            same_key++;
            if (!first_expiring || gm_time_cmp(&e->cert.expires_at, &first_expiring->cert.expires_at) < 0)
                first_expiring = e;
        }
        if (from && e->pushed && memcmp(e->from_pk, from, GM_PK_LEN) == 0)
            pushed++;
    }
    if (same_key >= NODE_CERTS_PER_KEY) {
        if (gm_time_cmp(&c->expires_at, &first_expiring->cert.expires_at) <= 0)
            return refuse(n, c, from, "per_key_limit");
        if (first_expiring->pushed && from && memcmp(first_expiring->from_pk, from, GM_PK_LEN) == 0)
            pushed--;
        evict(n, first_expiring, "superseded");
    }
    if (from && pushed >= NODE_CERTS_PER_PEER) {
        node_certent *v = oldest_unused(n, from);
        if (!v)
            return refuse(n, c, from, "per_peer_limit");
        evict(n, v, "per_peer_limit");
    }
    if (count(n) >= NODE_MAX_CERTS)
        prune_expired(n);
    if (count(n) >= NODE_MAX_CERTS) {
        node_certent *v = oldest_unused(n, NULL);
        if (!v)
            return refuse(n, c, from, "store_full");
        evict(n, v, "store_full");
    }
    return 0;
}

/* Keep c (taken over) as a new entry pushed by from (NULL: from a handshake). */
static node_certent *insert(gm_node *n, gm_cert *c, const uint8_t *from)
{
    node_certent *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->cert = *c;
    if (from) {
        e->pushed = 1;
        memcpy(e->from_pk, from, GM_PK_LEN);
    } else {
        e->used_ms = node_now_ms(n);
    }
    e->next = n->certs;
    n->certs = e;
    return e;
}

void node_cert_store_copy(gm_node *n, const gm_cert *c)
{
    gm_cert copy;
    if (memcmp(c->node_pk, n->key.pk, GM_PK_LEN) == 0 || find_id(n, c->cert_id))
        return;
    if (make_room(n, c, NULL) != 0)
        return;
    if (gm_cert_from_json(c->doc, &copy, NULL) != 0)
        return;
    if (!insert(n, &copy, NULL))
        gm_cert_free(&copy);
}

int node_cert_store(gm_node *n, const uint8_t *json, size_t len, const gm_cert **out)
{
    return node_cert_store_from(n, NULL, json, len, out);
}

int node_cert_store_from(gm_node *n, const uint8_t *from, const uint8_t *json, size_t len, const gm_cert **out)
{
    gm_cert c;
    gm_trust_reason why;
    gm_error err = {0};
    *out = NULL;
    int rc = node_trust_check(n, json, len, NULL, gm_time_now(), &c, &why, &err);
    if (rc != 0) {
        n->m.certs_refused++;
        node_log(n, GM_LOG_WARN, "cert_refused",
                 json_pack("{s:s,s:s}", "reason", gm_trust_reason_name(why), "error", err.msg));
        return rc;
    }
    if (memcmp(c.node_pk, n->key.pk, GM_PK_LEN) == 0) {
        gm_cert_free(&c);
        *out = &n->cert;
        return 0;
    }
    node_certent *e = find_id(n, c.cert_id);
    if (e) {
        gm_cert_free(&c);
        *out = &e->cert;
        return 0;
    }
    if ((rc = make_room(n, &c, from)) != 0) {
        gm_cert_free(&c);
        return rc;
    }
    if (!(e = insert(n, &c, from))) {
        gm_cert_free(&c);
        return GM_ENOMEM;
    }
    *out = &e->cert;
    return 0;
}

void node_cert_purge_revoked(gm_node *n)
{
    if (!n->have_crl)
        return;
    for (node_certent **pp = &n->certs; *pp;) {
        if (gm_crl_contains(&n->crl, (*pp)->cert.cert_id, NULL)) {
            node_certent *e = *pp;
            *pp = e->next;
            gm_cert_free(&e->cert);
            free(e);
        } else {
            pp = &(*pp)->next;
        }
    }
}

/* A key counts as revoked when the CRL lists one of its certificates and this node holds no
 * other certificate of it that is still valid: a node that renewed has its previous
 * certificate listed as superseded while its new one is in use. */
int node_pk_revoked(gm_node *n, const uint8_t pk[GM_PK_LEN])
{
    if (!n->have_crl)
        return 0;
    int listed = 0, valid = 0;
    gm_time now = gm_time_now(), hi;
    for (node_certent *e = n->certs; e; e = e->next) {
        if (memcmp(e->cert.node_pk, pk, GM_PK_LEN) != 0)
            continue;
        if (gm_crl_contains(&n->crl, e->cert.cert_id, NULL)) {
            listed = 1;
            continue;
        }
        hi = gm_time_add(e->cert.expires_at, GM_CLOCK_SKEW_S);
        valid |= gm_time_cmp(&now, &hi) <= 0;
    }
    return listed && !valid;
}

void node_cert_free_all(gm_node *n)
{
    while (n->certs) {
        node_certent *e = n->certs;
        n->certs = e->next;
        gm_cert_free(&e->cert);
        free(e);
    }
}
