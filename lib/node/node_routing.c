/* Routing glue: the route table (route.h) fed by peer links. Routes carry a reference
 * to the destination's certificate; before a ROUTE_UPDATE names a certificate on a link,
 * that certificate goes out in a CERT message, and a receiver accepts a route only to a
 * destination whose certificate it verified (signature, network, validity, CRL).
 * Every route also carries the destination's signed origin (route_origin.h): we sign ours
 * for each neighbour, and accept a route only when its origin passes the checks and its
 * signature verifies under the destination's certified key (verified origins are cached).
 * A relay that sends a forged signature is closed: honest relays never pass one on.
 * Triggered updates go out on the next tick, full updates every NODE_ROUTE_REFRESH_MS. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route.h"
#include "route_origin.h"
#include "node_internal.h"

#define NODE_ROUTE_REFRESH_MS 5000
#define NODE_ROUTE_TICK_MS 1000
/* A path reported as not delivering is avoided this long, doubled per repeat. */
#define NODE_ROUTE_SUSPECT_MS 60000
#define NODE_ROUTE_SUSPECT_MAX_MS (30 * 60000)

struct node_routing {
    gm_route_t *rt;
    gm_route_origin_cache_t *origins;
    uint64_t origin_time;     /* unix seconds our current origin signatures carry */
    uint64_t next_full_ms;
    uint64_t next_tick_ms;
};

/* Certificates already sent on one link, and our origin as signed for that neighbour. */
typedef struct link_route_state {
    uint8_t (*ids)[16];
    size_t n, cap;
    int has_self;
    gm_wire_route_entry self;
} link_route_state;

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int uuid_to_bytes(const char *s, uint8_t out[16])
{
    size_t k = 0;
    for (const char *p = s; *p && k < 32; p++) {
        if (*p == '-')
            continue;
        int v = hexval(*p);
        if (v < 0)
            return -1;
        if (k % 2 == 0)
            out[k / 2] = (uint8_t)(v << 4);
        else
            out[k / 2] |= (uint8_t)v;
        k++;
    }
    return k == 32 ? 0 : -1;
}

static void uuid_from_bytes(const uint8_t b[16], char out[37])
{
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3],
             b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

static void on_route_change(void *ud, const uint8_t dest[GM_ROUTE_KEY_LEN], const uint8_t *next_hop, uint16_t metric,
                            uint8_t hops)
{
    char d[GM_PK_B64_LEN + 1], h[GM_PK_B64_LEN + 1] = "";
    node_pk_b64(dest, d);
    if (next_hop)
        node_pk_b64(next_hop, h);
    node_log(ud, GM_LOG_DEBUG, "route_changed",
             json_pack("{s:s,s:s,s:i,s:i}", "destination", d, "next_hop", h, "metric", (int)metric, "hops", (int)hops));
}

int node_routing_init(gm_node *n, gm_error *err)
{
    node_routing *r = calloc(1, sizeof *r);
    if (!r)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    /* Seeded from the wall clock so a restarted node outranks its previous run. */
    uint64_t seq = (uint64_t)gm_time_now().unix_s * 1000;
    int rc = gm_route_new(&r->rt, n->key.pk, seq, NULL, err);
    if (rc != 0) {
        free(r);
        return rc;
    }
    rc = gm_route_origin_cache_new(&r->origins, 0, err);
    if (rc != 0) {
        gm_route_free(r->rt);
        free(r);
        return rc;
    }
    r->origin_time = (uint64_t)gm_time_now().unix_s;
    uint8_t id[16];
    if (uuid_to_bytes(n->cert.cert_id, id) == 0)
        gm_route_set_self_cert_id(r->rt, id);
    gm_route_set_change_cb(r->rt, on_route_change, n);
    n->routing = r;
    return 0;
}

void node_routing_free(gm_node *n)
{
    if (!n->routing)
        return;
    gm_route_free(n->routing->rt);
    gm_route_origin_cache_free(n->routing->origins);
    free(n->routing);
    n->routing = NULL;
}

static link_route_state *lstate(node_link *l)
{
    if (!l->route_state)
        l->route_state = calloc(1, sizeof(link_route_state));
    return l->route_state;
}

static void lstate_free(node_link *l)
{
    link_route_state *s = l->route_state;
    if (s) {
        free(s->ids);
        free(s);
    }
    l->route_state = NULL;
}

static int cert_sent(link_route_state *s, const uint8_t id[16])
{
    for (size_t i = 0; i < s->n; i++)
        if (memcmp(s->ids[i], id, 16) == 0)
            return 1;
    return 0;
}

static void mark_sent(link_route_state *s, const uint8_t id[16])
{
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 16;
        void *p = realloc(s->ids, nc * 16);
        if (!p)
            return;
        s->ids = p;
        s->cap = nc;
    }
    memcpy(s->ids[s->n++], id, 16);
}

/* Send CERT for every certificate the entries name that this link has not seen yet. */
static void send_certs(gm_node *n, node_link *l, const gm_wire_route_entry *e, size_t k)
{
    link_route_state *s = lstate(l);
    if (!s)
        return;
    for (size_t i = 0; i < k && l->state == LINK_UP; i++) {
        if (!e[i].has_cert_id || memcmp(e[i].dest, l->peer_pk, GM_PK_LEN) == 0 || cert_sent(s, e[i].cert_id))
            continue;
        char id[37];
        uuid_from_bytes(e[i].cert_id, id);
        const gm_cert *c = node_cert_lookup_id(n, e[i].dest, id);
        if (!c)
            continue;
        char *json = gm_cert_dump(c, 0);
        size_t jl = json ? strlen(json) : 0;
        uint8_t *buf = json ? malloc(jl + 8) : NULL;
        size_t olen;
        if (buf && gm_wire_cert_encode((const uint8_t *)json, jl, buf, jl + 8, &olen, NULL) == 0 &&
            node_link_send(l, buf, olen) == 0)
            mark_sent(s, e[i].cert_id);
        free(buf);
        free(json);
    }
}

/* Our own entry in an update for l: the origin signed for l's peer (signed again only
 * when seqno, certificate or origin time changed). */
static void sign_self(gm_node *n, node_link *l, gm_wire_route_entry *e)
{
    link_route_state *s = lstate(l);
    gm_error err = {0};
    if (s && s->has_self && s->self.seqno == e->seqno && s->self.origin.time == n->routing->origin_time &&
        memcmp(s->self.cert_id, e->cert_id, sizeof e->cert_id) == 0) {
        e->has_origin = 1;
        e->origin = s->self.origin;
        return;
    }
    if (gm_route_origin_sign(e, l->peer_pk, n->routing->origin_time, n->key.sk, &err) != 0) {
        node_log(n, GM_LOG_WARN, "route_origin_sign_failed", json_pack("{s:s}", "error", err.msg));
        return;
    }
    if (s) {
        s->self = *e;
        s->has_self = 1;
    }
}

static void send_update(gm_node *n, node_link *l, int mode)
{
    gm_wire_route_entry *e = malloc(GM_WIRE_ROUTE_FIT_ENTRIES * sizeof *e);
    uint8_t *buf = malloc(GM_WIRE_MSG_MAX);
    size_t cursor = 0, k, olen;
    uint64_t now = node_now_ms(n);
    gm_error err = {0};
    int more = 1;
    while (e && buf && more == 1 && l->state == LINK_UP) {
        more = gm_route_build_update(n->routing->rt, l->peer_pk, mode, now, &cursor, e, GM_WIRE_ROUTE_FIT_ENTRIES, &k, &err);
        if (more < 0) {
            node_log(n, GM_LOG_WARN, "route_update_failed", json_pack("{s:s}", "error", err.msg));
            break;
        }
        if (k == 0)
            continue;
        for (size_t i = 0; i < k; i++)
            if (!e[i].request && e[i].metric == 0 && memcmp(e[i].dest, n->key.pk, GM_PK_LEN) == 0)
                sign_self(n, l, &e[i]);
        send_certs(n, l, e, k);
        if (l->state == LINK_UP && gm_wire_route_update_encode(e, k, buf, GM_WIRE_MSG_MAX, &olen, &err) == 0)
            node_link_send(l, buf, olen);
    }
    free(e);
    free(buf);
}

static void send_all(gm_node *n, int mode)
{
    for (node_link *l = n->links; l; l = l->next)
        if (l->state == LINK_UP && !l->crl_hold)
            send_update(n, l, mode);
    gm_route_clear_changed(n->routing->rt);
}

void node_routing_cert_ok(gm_node *n, const gm_cert *c)
{
    /* A valid certificate for a key withdrawn earlier (rejoined after revocation). */
    if (n->routing && gm_route_is_banned(n->routing->rt, c->node_pk)) {
        gm_route_unban(n->routing->rt, c->node_pk);
        node_log(n, GM_LOG_INFO, "route_unbanned", json_pack("{s:s,s:s}", "destination", c->node_pk_b64, "cert_id", c->cert_id));
    }
}

void node_routing_link_up(gm_node *n, node_link *l)
{
    node_routing_cert_ok(n, &l->peer_cert);
    gm_error err = {0};
    if (gm_route_neighbour_up(n->routing->rt, l->peer_pk, 0, node_now_ms(n), &err) != 0) {
        node_log(n, GM_LOG_WARN, "route_neighbour_refused", json_pack("{s:s,s:s}", "peer", l->peer_cert.node_pk_b64, "error", err.msg));
        node_link_close(l, GM_WIRE_CLOSE_OVERLOADED, "too many neighbours");
        return;
    }
    send_update(n, l, GM_ROUTE_FULL);
}

void node_routing_link_down(gm_node *n, node_link *l)
{
    lstate_free(l);
    if (n->routing && l->has_cert)
        gm_route_neighbour_down(n->routing->rt, l->peer_pk, node_now_ms(n));
}

void node_routing_on_message(gm_node *n, node_link *l, uint8_t type, const uint8_t *msg, size_t len)
{
    gm_error err = {0};
    if (type == GM_WIRE_CERT) {
        const uint8_t *cert;
        size_t clen;
        const gm_cert *c;
        if (gm_wire_cert_decode(msg, len, &cert, &clen, &err) != 0) {
            node_link_close(l, GM_WIRE_CLOSE_PROTOCOL, "bad CERT");
            return;
        }
        if (node_cert_store_from(n, l->peer_pk, cert, clen, &c) != 0)
            return;
        node_routing_cert_ok(n, c);
        /* A neighbour renewed: its link now lives on the newer certificate. */
        if (memcmp(c->node_pk, l->peer_pk, GM_PK_LEN) == 0 && strcmp(c->cert_id, l->peer_cert.cert_id) != 0 &&
            gm_time_cmp(&c->expires_at, &l->peer_cert.expires_at) > 0) {
            gm_cert fresh;
            if (gm_cert_from_json(c->doc, &fresh, NULL) == 0) {
                gm_cert_free(&l->peer_cert);
                l->peer_cert = fresh;
                node_log(n, GM_LOG_INFO, "peer_cert_renewed", json_pack("{s:s,s:s}", "peer", fresh.node_pk_b64, "cert_id", fresh.cert_id));
            }
        }
        return;
    }
    gm_wire_route_entry *e = malloc(GM_WIRE_ROUTE_MAX_ENTRIES * sizeof *e);
    size_t k = 0, kept = 0;
    if (!e)
        return;
    if (gm_wire_route_update_decode(msg, len, e, GM_WIRE_ROUTE_MAX_ENTRIES, &k, &err) != 0) {
        free(e);
        node_link_close(l, GM_WIRE_CLOSE_PROTOCOL, "bad ROUTE_UPDATE");
        return;
    }
    uint64_t now_s = (uint64_t)gm_time_now().unix_s;
    int warned = 0; /* one warning per message: a hostile peer cannot flood the log */
    for (size_t i = 0; i < k; i++) {
        if (!e[i].request && e[i].metric != GM_WIRE_METRIC_INF) {
            /* A route is only as good as the certificate it names... */
            char id[37];
            if (!e[i].has_cert_id) {
                n->m.routes_refused_no_cert++;
                continue;
            }
            uuid_from_bytes(e[i].cert_id, id);
            if (!node_cert_lookup_id(n, e[i].dest, id)) {
                n->m.routes_refused_no_cert++;
                continue;
            }
            /* ...and as what its destination signed. */
            gm_route_origin_fault f = gm_route_origin_check(&e[i], l->peer_pk, n->key.pk, now_s);
            if (f != GM_ORIGIN_OK) {
                n->m.routes_refused_origin++;
                if (f != GM_ORIGIN_LOOP && f != GM_ORIGIN_STALE && !warned++) {
                    char d[GM_PK_B64_LEN + 1];
                    node_pk_b64(e[i].dest, d);
                    node_log(n, GM_LOG_WARN, "route_refused", json_pack("{s:s,s:s,s:s}", "peer", l->peer_cert.node_pk_b64,
                                                                       "destination", d, "reason", gm_route_origin_fault_name(f)));
                }
                continue;
            }
            if (gm_route_origin_verify(n->routing->origins, &e[i], &err) != 0) {
                n->m.routes_refused_origin++;
                n->m.route_origins_forged++;
                node_log(n, GM_LOG_WARN, "route_origin_forged", json_pack("{s:s,s:s}", "peer", l->peer_cert.node_pk_b64, "error", err.msg));
                free(e);
                node_link_close(l, GM_WIRE_CLOSE_PROTOCOL, "forged route origin");
                return;
            }
        }
        e[kept++] = e[i];
    }
    gm_route_origin_stats os;
    gm_route_origin_stats_get(n->routing->origins, &os);
    n->m.route_origins_verified = os.verified;
    n->m.route_origin_cache_hits = os.hits;
    if (kept && gm_route_update(n->routing->rt, l->peer_pk, e, kept, node_now_ms(n), &err) != 0)
        node_log(n, GM_LOG_DEBUG, "route_update_refused", json_pack("{s:s}", "error", err.msg));
    free(e);
}

void node_routing_tick(gm_node *n, uint64_t now)
{
    node_routing *r = n->routing;
    if (n->stopping)
        return;
    if (now >= r->next_tick_ms) {
        r->next_tick_ms = now + NODE_ROUTE_TICK_MS;
        gm_route_tick(r->rt, now);
        /* Re-sign our origin long before receivers would find it too old. */
        uint64_t now_s = (uint64_t)gm_time_now().unix_s;
        if (now_s >= r->origin_time + GM_ROUTE_ORIGIN_REFRESH_S || now_s + GM_ROUTE_ORIGIN_SKEW_S < r->origin_time) {
            r->origin_time = now_s;
            gm_route_bump_seqno(r->rt);
        }
    }
    if (now >= r->next_full_ms) {
        r->next_full_ms = now + NODE_ROUTE_REFRESH_MS;
        send_all(n, GM_ROUTE_FULL);
    } else if (gm_route_changed(r->rt)) {
        send_all(n, GM_ROUTE_CHANGED);
    }
}

node_link *node_routing_next_hop(gm_node *n, const uint8_t dst[GM_PK_LEN])
{
    uint8_t nh[GM_PK_LEN];
    if (!n->routing || gm_route_lookup(n->routing->rt, dst, nh, NULL, NULL) != 0)
        return NULL;
    return node_link_by_pk(n, nh);
}

void node_routing_path_failed(gm_node *n, const uint8_t dst[GM_PK_LEN], const uint8_t via[GM_PK_LEN])
{
    const uint8_t *nh = via;
    uint64_t now = node_now_ms(n);
    if (!n->routing ||
        gm_route_suspect(n->routing->rt, dst, nh, NODE_ROUTE_SUSPECT_MS, NODE_ROUTE_SUSPECT_MAX_MS, now) != 0)
        return;
    n->m.routes_suspected++;
    char d[GM_PK_B64_LEN + 1], h[GM_PK_B64_LEN + 1], now_nh[GM_PK_B64_LEN + 1] = "";
    node_pk_b64(dst, d);
    node_pk_b64(nh, h);
    uint8_t nh2[GM_PK_LEN];
    if (gm_route_lookup(n->routing->rt, dst, nh2, NULL, NULL) == 0)
        node_pk_b64(nh2, now_nh);
    node_log(n, GM_LOG_WARN, "route_path_failed", json_pack("{s:s,s:s,s:s}", "destination", d, "next_hop", h, "now_via", now_nh));
}

int node_routing_banned(gm_node *n, const uint8_t pk[GM_PK_LEN])
{
    return n->routing && gm_route_is_banned(n->routing->rt, pk);
}

void node_routing_revoked(gm_node *n)
{
    if (!n->have_crl)
        return;
    for (node_certent *e = n->certs; e; e = e->next)
        if (gm_crl_contains(&n->crl, e->cert.cert_id, NULL) && node_pk_revoked(n, e->cert.node_pk)) {
            gm_route_withdraw_destination(n->routing->rt, e->cert.node_pk, node_now_ms(n), NULL);
            node_log(n, GM_LOG_INFO, "route_withdrawn", json_pack("{s:s,s:s}", "destination", e->cert.node_pk_b64, "reason", "revoked"));
        }
}

void node_routing_self_cert_changed(gm_node *n)
{
    uint8_t id[16];
    if (uuid_to_bytes(n->cert.cert_id, id) == 0)
        gm_route_set_self_cert_id(n->routing->rt, id);
    gm_route_bump_seqno(n->routing->rt);
    /* Direct neighbours hold the certificate from the handshake; send them the new one. */
    char *json = gm_cert_dump(&n->cert, 0);
    size_t jl = json ? strlen(json) : 0, olen;
    uint8_t *buf = json ? malloc(jl + 8) : NULL;
    if (buf && gm_wire_cert_encode((const uint8_t *)json, jl, buf, jl + 8, &olen, NULL) == 0)
        for (node_link *l = n->links; l; l = l->next)
            if (l->state == LINK_UP && node_link_send(l, buf, olen) == 0) {
                link_route_state *s = lstate(l);
                if (s)
                    mark_sent(s, id);
            }
    free(buf);
    free(json);
}

struct routes_ctx {
    json_t *arr;
};

static int route_cb(void *ud, const gm_route_info *ri)
{
    struct routes_ctx *c = ud;
    if (!ri->selected || ri->metric == GM_ROUTE_INF)
        return 0;
    char d[GM_PK_B64_LEN + 1], nh[GM_PK_B64_LEN + 1];
    node_pk_b64(ri->dest, d);
    node_pk_b64(ri->next_hop, nh);
    json_array_append_new(c->arr, json_pack("{s:s,s:s,s:i,s:I,s:i}", "destination", d, "next_hop", nh, "metric",
                                            (int)ri->metric, "seqno", (json_int_t)ri->seqno, "hops", (int)ri->hops));
    return 0;
}

json_t *node_routes_json(gm_node *n)
{
    struct routes_ctx c = {json_array()};
    if (n->routing)
        gm_route_foreach(n->routing->rt, node_now_ms(n), route_cb, &c);
    return c.arr;
}

size_t node_routing_count(gm_node *n)
{
    gm_route_stats s;
    if (!n->routing)
        return 0;
    gm_route_stats_get(n->routing->rt, &s);
    return s.reachable;
}
