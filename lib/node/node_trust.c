/* The one place a peer certificate is judged: NA signature under the genesis key, network,
 * validity window, CRL, and (for handshakes) that its node key is the Noise remote static.
 * Also the store of certificates we verified, which routing consults before accepting a
 * route, so a relay cannot invent identities. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "node_internal.h"

#define NODE_MAX_CERTS 4096

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

static int usable(gm_node *n, const gm_cert *c)
{
    gm_time now = gm_time_now(), hi = gm_time_add(c->expires_at, GM_CLOCK_SKEW_S);
    if (gm_time_cmp(&now, &hi) > 0)
        return 0;
    return !(n->have_crl && gm_crl_contains(&n->crl, c->cert_id, NULL));
}

const gm_cert *node_cert_lookup(gm_node *n, const uint8_t pk[GM_PK_LEN])
{
    const gm_cert *best = NULL;
    if (memcmp(pk, n->key.pk, GM_PK_LEN) == 0)
        return &n->cert;
    for (node_certent *e = n->certs; e; e = e->next)
        if (memcmp(e->cert.node_pk, pk, GM_PK_LEN) == 0 && usable(n, &e->cert) &&
            (!best || gm_time_cmp(&e->cert.expires_at, &best->expires_at) > 0))
            best = &e->cert;
    return best;
}

const gm_cert *node_cert_lookup_id(gm_node *n, const uint8_t pk[GM_PK_LEN], const char *cert_id)
{
    if (memcmp(pk, n->key.pk, GM_PK_LEN) == 0)
        return strcasecmp(n->cert.cert_id, cert_id) == 0 ? &n->cert : NULL;
    for (node_certent *e = n->certs; e; e = e->next)
        if (memcmp(e->cert.node_pk, pk, GM_PK_LEN) == 0 && strcasecmp(e->cert.cert_id, cert_id) == 0)
            return usable(n, &e->cert) ? &e->cert : NULL;
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

/* Drop expired entries to make room. */
static void prune_expired(gm_node *n)
{
    gm_time now = gm_time_now();
    for (node_certent **pp = &n->certs; *pp;) {
        gm_time hi = gm_time_add((*pp)->cert.expires_at, GM_CLOCK_SKEW_S);
        if (gm_time_cmp(&now, &hi) > 0) {
            node_certent *e = *pp;
            *pp = e->next;
            gm_cert_free(&e->cert);
            free(e);
        } else {
            pp = &(*pp)->next;
        }
    }
}

void node_cert_store_copy(gm_node *n, const gm_cert *c)
{
    if (memcmp(c->node_pk, n->key.pk, GM_PK_LEN) == 0 || find_id(n, c->cert_id))
        return;
    if (count(n) >= NODE_MAX_CERTS)
        prune_expired(n);
    if (count(n) >= NODE_MAX_CERTS)
        return;
    node_certent *e = calloc(1, sizeof *e);
    if (!e)
        return;
    if (gm_cert_from_json(c->doc, &e->cert, NULL) != 0) {
        free(e);
        return;
    }
    e->next = n->certs;
    n->certs = e;
}

int node_cert_store(gm_node *n, const uint8_t *json, size_t len, const gm_cert **out)
{
    gm_cert c;
    gm_trust_reason why;
    gm_error err = {0};
    *out = NULL;
    int rc = gm_node_trust_check(&n->genesis, n->have_crl ? &n->crl : NULL, json, len, NULL,
                                 gm_time_now(), &c, &why, &err);
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
    if (count(n) >= NODE_MAX_CERTS)
        prune_expired(n);
    if (count(n) >= NODE_MAX_CERTS) {
        gm_cert_free(&c);
        return GM_ETOOBIG;
    }
    e = calloc(1, sizeof *e);
    if (!e) {
        gm_cert_free(&c);
        return GM_ENOMEM;
    }
    e->cert = c;
    e->next = n->certs;
    n->certs = e;
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

int node_pk_revoked(gm_node *n, const uint8_t pk[GM_PK_LEN])
{
    if (!n->have_crl)
        return 0;
    for (node_certent *e = n->certs; e; e = e->next)
        if (memcmp(e->cert.node_pk, pk, GM_PK_LEN) == 0 && gm_crl_contains(&n->crl, e->cert.cert_id, NULL))
            return 1;
    return 0;
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
