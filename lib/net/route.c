/* Distance-vector routing table with Babel's feasibility condition, seqno
 * requests, split horizon and hold-time expiry (behaviour documented in
 * lib/net/route.h). Storage is preallocated and bounded: destinations in a
 * pool indexed by a key-sorted array (binary search), routes in a pool chained
 * per destination, neighbours in a small array. */
#include <stdlib.h>
#include <string.h>

#include "route.h"

#define KEYLEN GM_ROUTE_KEY_LEN
#define NONE (-1)

struct nb {
    uint8_t key[KEYLEN];
    uint16_t cost;
    uint8_t used;
};

struct rt {
    int32_t dest, nb;
    int32_t next; /* next route of the same destination, or next free */
    uint64_t seqno;
    uint16_t adv_metric; /* as the neighbour advertised it */
    uint16_t metric;     /* adv_metric + link cost, or INF */
    uint8_t adv_hops;
    uint8_t hops;
    uint8_t has_cert;
    uint8_t cert_id[GM_WIRE_CERT_ID_LEN];
    uint8_t has_origin;
    gm_wire_route_origin origin; /* the destination's signature, relayed unchanged */
    uint64_t refreshed_ms;
    uint64_t suspect_until_ms;   /* path reported as not delivering until then */
    uint32_t strikes;            /* times it was reported */
};

struct dst {
    uint8_t key[KEYLEN];
    int32_t routes;   /* head of this destination's route chain */
    int32_t selected; /* route index or NONE */
    int32_t next_free;
    /* feasibility distance: best (seqno, metric) we have advertised */
    uint8_t has_fd;
    uint64_t fd_seqno;
    uint16_t fd_metric;
    uint64_t fd_time_ms;
    /* what we advertise (from the selected route), to detect changes */
    uint8_t adv_reach;
    uint64_t adv_seqno;
    uint16_t adv_metric;
    uint8_t adv_hops;
    int32_t adv_nb;
    uint8_t adv_has_cert;
    uint8_t adv_cert[GM_WIRE_CERT_ID_LEN];
    uint8_t adv_has_origin;
    gm_wire_route_origin adv_origin;
    uint64_t retract_until_ms; /* keep advertising a retraction until then */
    uint8_t changed;
    /* pending seqno request (ours, or forwarded for req_from) */
    uint8_t req_pending, req_unsent;
    uint8_t req_hops;
    uint64_t req_seqno;
    int32_t req_to, req_from;
    uint64_t req_created_ms, req_sent_ms;
};

struct gm_route {
    gm_route_config cfg;
    uint8_t self[KEYLEN];
    uint64_t self_seqno;
    uint8_t self_has_cert, self_changed;
    uint8_t self_cert[GM_WIRE_CERT_ID_LEN];
    struct nb *nbs;
    struct rt *rts;
    int32_t rt_free;
    size_t n_rts;
    struct dst *dsts;
    int32_t dst_free;
    int32_t *sorted; /* destination indices ordered by key */
    size_t n_dsts;
    uint8_t (*banned)[KEYLEN]; /* sorted */
    size_t n_banned;
    gm_route_change_fn cb;
    void *cb_ud;
    uint64_t refused_full, ignored_banned, infeasible, requests_sent, stale_seqno, suspected;
};

void gm_route_config_default(gm_route_config *cfg)
{
    cfg->max_destinations = 4096;
    cfg->max_routes = 16384;
    cfg->max_neighbours = 64;
    cfg->max_banned = 4096;
    cfg->hop_limit = 16;
    cfg->link_cost = 1;
    cfg->hold_time_ms = GM_ROUTE_UPDATE_INTERVAL_MS * 7 / 2;
    cfg->source_gc_ms = 180000;
    cfg->request_retry_ms = 2000;
}

static uint64_t age(uint64_t now, uint64_t then) { return now > then ? now - then : 0; }

/* ---- storage ---- */

/* Index in sorted[] where key is or would be inserted; *found set accordingly. */
static size_t dest_pos(const gm_route_t *t, const uint8_t *key, int *found)
{
    size_t lo = 0, hi = t->n_dsts;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp(t->dsts[t->sorted[mid]].key, key, KEYLEN);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

static int32_t dest_find(const gm_route_t *t, const uint8_t *key)
{
    int found;
    size_t pos = dest_pos(t, key, &found);
    return found ? t->sorted[pos] : NONE;
}

static int32_t dest_new(gm_route_t *t, const uint8_t *key)
{
    int found;
    size_t pos = dest_pos(t, key, &found);
    if (found)
        return t->sorted[pos];
    if (t->dst_free == NONE)
        return NONE;
    int32_t di = t->dst_free;
    struct dst *d = &t->dsts[di];
    t->dst_free = d->next_free;
    memset(d, 0, sizeof *d);
    memcpy(d->key, key, KEYLEN);
    d->routes = d->selected = d->adv_nb = d->req_to = d->req_from = NONE;
    d->next_free = NONE;
    memmove(&t->sorted[pos + 1], &t->sorted[pos], (t->n_dsts - pos) * sizeof *t->sorted);
    t->sorted[pos] = di;
    t->n_dsts++;
    return di;
}

static void dest_free(gm_route_t *t, int32_t di)
{
    int found;
    size_t pos = dest_pos(t, t->dsts[di].key, &found);
    if (!found)
        return;
    memmove(&t->sorted[pos], &t->sorted[pos + 1], (t->n_dsts - pos - 1) * sizeof *t->sorted);
    t->n_dsts--;
    t->dsts[di].next_free = t->dst_free;
    t->dst_free = di;
}

static int32_t nb_find(const gm_route_t *t, const uint8_t *key)
{
    for (size_t i = 0; i < t->cfg.max_neighbours; i++)
        if (t->nbs[i].used && memcmp(t->nbs[i].key, key, KEYLEN) == 0)
            return (int32_t)i;
    return NONE;
}

static int32_t route_find(const gm_route_t *t, const struct dst *d, int32_t ni)
{
    for (int32_t r = d->routes; r != NONE; r = t->rts[r].next)
        if (t->rts[r].nb == ni)
            return r;
    return NONE;
}

/* New route of destination di through neighbour ni, chained in neighbour-key order. */
static int32_t route_new(gm_route_t *t, int32_t di, int32_t ni)
{
    if (t->rt_free == NONE)
        return NONE;
    int32_t ri = t->rt_free;
    struct rt *r = &t->rts[ri];
    t->rt_free = r->next;
    memset(r, 0, sizeof *r);
    r->dest = di;
    r->nb = ni;
    int32_t *link = &t->dsts[di].routes;
    while (*link != NONE && memcmp(t->nbs[t->rts[*link].nb].key, t->nbs[ni].key, KEYLEN) < 0)
        link = &t->rts[*link].next;
    r->next = *link;
    *link = ri;
    t->n_rts++;
    return ri;
}

static void route_free(gm_route_t *t, int32_t ri)
{
    struct dst *d = &t->dsts[t->rts[ri].dest];
    for (int32_t *link = &d->routes; *link != NONE; link = &t->rts[*link].next) {
        if (*link == ri) {
            *link = t->rts[ri].next;
            break;
        }
    }
    if (d->selected == ri)
        d->selected = NONE;
    t->rts[ri].next = t->rt_free;
    t->rt_free = ri;
    t->n_rts--;
}

static size_t ban_pos(const gm_route_t *t, const uint8_t *key, int *found)
{
    size_t lo = 0, hi = t->n_banned;
    *found = 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp(t->banned[mid], key, KEYLEN);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int gm_route_is_banned(const gm_route_t *t, const uint8_t key[KEYLEN])
{
    int found;
    ban_pos(t, key, &found);
    return found;
}

/* ---- selection ---- */

static int feasible(const struct dst *d, uint64_t seqno, uint16_t adv_metric)
{
    return !d->has_fd || seqno > d->fd_seqno ||
           (seqno == d->fd_seqno && adv_metric < d->fd_metric);
}

static uint16_t link_metric(uint16_t adv, uint16_t cost)
{
    uint32_t m = (uint32_t)adv + cost;
    return adv >= GM_ROUTE_INF || m >= GM_ROUTE_INF ? GM_ROUTE_INF : (uint16_t)m;
}

/* Our metric and hops for a route advertised as (adv_metric, adv_hops) over cost. */
static void route_set_metric(const gm_route_t *t, struct rt *r, uint16_t cost)
{
    r->metric = link_metric(r->adv_metric, cost);
    r->hops = r->adv_hops == UINT8_MAX ? UINT8_MAX : (uint8_t)(r->adv_hops + 1);
    if (r->hops > t->cfg.hop_limit)
        r->metric = GM_ROUTE_INF;
}

/* Is a better than b for selection? Ties keep the current route, then fewer
 * hops, then the lower neighbour key, so the choice is stable and deterministic. */
static int route_better(const gm_route_t *t, int32_t a, int32_t b, int32_t current)
{
    const struct rt *ra = &t->rts[a], *rb = &t->rts[b];
    if (ra->metric != rb->metric)
        return ra->metric < rb->metric;
    if (a == current || b == current)
        return a == current;
    if (ra->hops != rb->hops)
        return ra->hops < rb->hops;
    return memcmp(t->nbs[ra->nb].key, t->nbs[rb->nb].key, KEYLEN) < 0;
}

static int suspect(const struct rt *r, uint64_t now) { return r->suspect_until_ms > now; }

/* Lowest-metric finite route, feasible or not, through a neighbour other than except
 * (and not suspect when trusted_only). */
static int32_t best_any_of(const gm_route_t *t, const struct dst *d, int32_t except, int trusted_only,
                           uint64_t now)
{
    int32_t best = NONE;
    for (int32_t r = d->routes; r != NONE; r = t->rts[r].next) {
        if (t->rts[r].metric >= GM_ROUTE_INF || t->rts[r].nb == except ||
            (trusted_only && suspect(&t->rts[r], now)))
            continue;
        if (best == NONE || route_better(t, r, best, d->selected))
            best = r;
    }
    return best;
}

static int32_t best_any(const gm_route_t *t, const struct dst *d, int32_t except)
{
    return best_any_of(t, d, except, 0, 0);
}

static void request_clear(struct dst *d)
{
    d->req_pending = d->req_unsent = 0;
    d->req_to = d->req_from = NONE;
}

/* Starving: routes exist but none is feasible (or only a suspect one is). Ask the
 * originator for a newer seqno through the neighbour with the best (trusted) route, unless
 * a request is already on its way. */
static void maybe_request(gm_route_t *t, struct dst *d, uint64_t now)
{
    if (d->selected != NONE || !d->has_fd)
        return;
    int32_t r = best_any_of(t, d, NONE, 1, now);
    if (r == NONE)
        r = best_any(t, d, NONE);
    if (r == NONE)
        return;
    uint64_t want = d->fd_seqno == UINT64_MAX ? UINT64_MAX : d->fd_seqno + 1;
    if (d->req_pending && d->req_seqno >= want &&
        (d->req_unsent || age(now, d->req_sent_ms) < t->cfg.request_retry_ms))
        return;
    if (!d->req_pending)
        d->req_created_ms = now;
    d->req_pending = d->req_unsent = 1;
    d->req_seqno = want;
    d->req_hops = t->cfg.hop_limit;
    d->req_to = t->rts[r].nb;
    d->req_from = NONE;
}

/* Recompute the selected route of di; returns 1 if what we advertise changed. */
static int reselect(gm_route_t *t, int32_t di, uint64_t now)
{
    struct dst *d = &t->dsts[di];
    int32_t best = NONE, fallback = NONE;
    for (int32_t r = d->routes; r != NONE; r = t->rts[r].next) {
        const struct rt *rr = &t->rts[r];
        if (rr->metric >= GM_ROUTE_INF || !feasible(d, rr->seqno, rr->adv_metric))
            continue;
        /* A path reported as not delivering is used only when nothing else is feasible. */
        int32_t *slot = suspect(rr, now) ? &fallback : &best;
        if (*slot == NONE || route_better(t, r, *slot, d->selected))
            *slot = r;
    }
    /* Only when no other path exists at all: otherwise starve briefly and ask for a newer
     * seqno (the suspect route must not raise the FD above what the others can meet). */
    if (best == NONE && best_any_of(t, d, NONE, 1, now) == NONE)
        best = fallback;
    d->selected = best;
    if (best != NONE) {
        const struct rt *b = &t->rts[best];
        /* FD only ever improves: what we advertise is never below it. */
        if (!d->has_fd || b->seqno > d->fd_seqno) {
            d->has_fd = 1;
            d->fd_seqno = b->seqno;
            d->fd_metric = b->metric;
        } else if (b->metric < d->fd_metric) {
            d->fd_metric = b->metric;
        }
        d->fd_time_ms = now;
        d->retract_until_ms = 0;
        if (d->req_pending && b->seqno >= d->req_seqno)
            request_clear(d);
    } else {
        maybe_request(t, d, now);
    }

    const struct rt *b = best != NONE ? &t->rts[best] : NULL;
    if (b) {
        /* The freshest signature of the same route goes out with the next full update. */
        d->adv_has_origin = b->has_origin;
        d->adv_origin = b->origin;
    }
    int changed;
    if (b)
        changed = !d->adv_reach || d->adv_seqno != b->seqno || d->adv_metric != b->metric ||
                  d->adv_hops != b->hops || d->adv_nb != b->nb || d->adv_has_cert != b->has_cert ||
                  memcmp(d->adv_cert, b->cert_id, GM_WIRE_CERT_ID_LEN) != 0;
    else
        changed = d->adv_reach;
    if (!changed)
        return 0;
    if (b) {
        d->adv_reach = 1;
        d->adv_seqno = b->seqno;
        d->adv_metric = b->metric;
        d->adv_hops = b->hops;
        d->adv_nb = b->nb;
        d->adv_has_cert = b->has_cert;
        memcpy(d->adv_cert, b->cert_id, GM_WIRE_CERT_ID_LEN);
    } else {
        d->adv_reach = 0;
        d->adv_nb = NONE;
        d->retract_until_ms = now + t->cfg.hold_time_ms;
    }
    d->changed = 1;
    if (t->cb)
        t->cb(t->cb_ud, d->key, b ? t->nbs[b->nb].key : NULL, b ? b->metric : GM_ROUTE_INF,
              b ? b->hops : 0);
    return 1;
}

/* Free a destination record once nothing refers to it and its FD has aged out. */
static int dest_collectable(const gm_route_t *t, const struct dst *d, uint64_t now)
{
    return d->routes == NONE && !d->req_pending && now >= d->retract_until_ms &&
           (!d->has_fd || age(now, d->fd_time_ms) >= t->cfg.source_gc_ms);
}

/* ---- lifecycle ---- */

int gm_route_new(gm_route_t **out, const uint8_t self_key[KEYLEN], uint64_t initial_seqno,
                 const gm_route_config *cfg, gm_error *err)
{
    *out = NULL;
    gm_route_config c;
    if (cfg)
        c = *cfg;
    else
        gm_route_config_default(&c);
    if (c.max_destinations == 0 || c.max_destinations > INT32_MAX / 2 || c.max_routes == 0 ||
        c.max_routes > INT32_MAX / 2 || c.max_neighbours == 0 || c.max_neighbours > 65536 ||
        c.hop_limit == 0 || c.hop_limit == UINT8_MAX || c.link_cost == 0 ||
        c.link_cost >= GM_ROUTE_INF || c.hold_time_ms == 0)
        return gm_error_set(err, GM_EINVAL,
                            "routing table configuration out of range (sizes and hop limit must "
                            "be positive, link cost 1..65534, hop limit < 255)");
    gm_route_t *t = calloc(1, sizeof *t);
    if (!t)
        return gm_error_set(err, GM_ENOMEM, "out of memory for the routing table");
    t->cfg = c;
    memcpy(t->self, self_key, KEYLEN);
    t->self_seqno = initial_seqno;
    t->nbs = calloc(c.max_neighbours, sizeof *t->nbs);
    t->rts = calloc(c.max_routes, sizeof *t->rts);
    t->dsts = calloc(c.max_destinations, sizeof *t->dsts);
    t->sorted = calloc(c.max_destinations, sizeof *t->sorted);
    t->banned = c.max_banned ? calloc(c.max_banned, sizeof *t->banned) : NULL;
    if (!t->nbs || !t->rts || !t->dsts || !t->sorted || (c.max_banned && !t->banned)) {
        gm_route_free(t);
        return gm_error_set(err, GM_ENOMEM, "out of memory for the routing table");
    }
    for (size_t i = 0; i < c.max_routes; i++)
        t->rts[i].next = i + 1 < c.max_routes ? (int32_t)(i + 1) : NONE;
    for (size_t i = 0; i < c.max_destinations; i++)
        t->dsts[i].next_free = i + 1 < c.max_destinations ? (int32_t)(i + 1) : NONE;
    t->rt_free = 0;
    t->dst_free = 0;
    t->self_changed = 1;
    *out = t;
    return 0;
}

void gm_route_free(gm_route_t *t)
{
    if (!t)
        return;
    free(t->nbs);
    free(t->rts);
    free(t->dsts);
    free(t->sorted);
    free(t->banned);
    free(t);
}

void gm_route_set_self_cert_id(gm_route_t *t, const uint8_t *cert_id)
{
    uint8_t has = cert_id != NULL;
    if (has == t->self_has_cert &&
        (!has || memcmp(t->self_cert, cert_id, GM_WIRE_CERT_ID_LEN) == 0))
        return;
    t->self_has_cert = has;
    if (has)
        memcpy(t->self_cert, cert_id, GM_WIRE_CERT_ID_LEN);
    else
        memset(t->self_cert, 0, GM_WIRE_CERT_ID_LEN);
    t->self_changed = 1;
}

uint64_t gm_route_self_seqno(const gm_route_t *t) { return t->self_seqno; }

void gm_route_bump_seqno(gm_route_t *t)
{
    if (t->self_seqno < UINT64_MAX)
        t->self_seqno++;
    t->self_changed = 1;
}

void gm_route_set_change_cb(gm_route_t *t, gm_route_change_fn fn, void *ud)
{
    t->cb = fn;
    t->cb_ud = ud;
}

/* ---- neighbours ---- */

int gm_route_is_neighbour(const gm_route_t *t, const uint8_t key[KEYLEN])
{
    return nb_find(t, key) != NONE;
}

int gm_route_neighbour_up(gm_route_t *t, const uint8_t key[KEYLEN], uint16_t cost,
                          uint64_t now_ms, gm_error *err)
{
    if (memcmp(key, t->self, KEYLEN) == 0)
        return gm_error_set(err, GM_EINVAL, "a node cannot be its own neighbour");
    if (gm_route_is_banned(t, key))
        return gm_error_set(err, GM_EREVOKED, "neighbour's identity has been withdrawn");
    if (cost == 0)
        cost = t->cfg.link_cost;
    if (cost >= GM_ROUTE_INF)
        return gm_error_set(err, GM_EINVAL, "link cost %u out of range 1..65534", cost);
    int32_t ni = nb_find(t, key);
    if (ni == NONE) {
        for (size_t i = 0; i < t->cfg.max_neighbours && ni == NONE; i++)
            if (!t->nbs[i].used)
                ni = (int32_t)i;
        if (ni == NONE)
            return gm_error_set(err, GM_ETOOBIG, "already %zu neighbours, the configured maximum",
                                t->cfg.max_neighbours);
        memcpy(t->nbs[ni].key, key, KEYLEN);
        t->nbs[ni].used = 1;
        t->nbs[ni].cost = cost;
        return 0;
    }
    if (t->nbs[ni].cost == cost)
        return 0;
    t->nbs[ni].cost = cost;
    for (size_t i = 0; i < t->n_dsts; i++) {
        int32_t di = t->sorted[i];
        int32_t r = route_find(t, &t->dsts[di], ni);
        if (r != NONE) {
            route_set_metric(t, &t->rts[r], cost);
            reselect(t, di, now_ms);
        }
    }
    return 0;
}

int gm_route_neighbour_down(gm_route_t *t, const uint8_t key[KEYLEN], uint64_t now_ms)
{
    int32_t ni = nb_find(t, key);
    if (ni == NONE)
        return GM_ENOTFOUND;
    int changed = 0;
    for (size_t i = 0; i < t->n_dsts; i++) {
        int32_t di = t->sorted[i];
        struct dst *d = &t->dsts[di];
        if (d->req_pending && (d->req_to == ni || d->req_from == ni))
            request_clear(d);
        int32_t r = route_find(t, d, ni);
        if (r != NONE)
            route_free(t, r);
        /* Also re-run when a request was dropped, so a starving one asks elsewhere. */
        changed += reselect(t, di, now_ms);
    }
    memset(&t->nbs[ni], 0, sizeof t->nbs[ni]);
    return changed;
}

/* ---- updates ---- */

static void handle_request(gm_route_t *t, int32_t ni, const gm_wire_route_entry *e, uint64_t now)
{
    if (memcmp(e->dest, t->self, KEYLEN) == 0) {
        /* Jump to the requested seqno: a restarted node catches up with the FD the
         * mesh remembers in one round trip. */
        if (e->seqno > t->self_seqno)
            t->self_seqno = e->seqno;
        t->self_changed = 1;
        return;
    }
    int32_t di = dest_find(t, e->dest);
    if (di == NONE)
        return;
    struct dst *d = &t->dsts[di];
    if (d->selected != NONE && t->rts[d->selected].nb != ni &&
        t->rts[d->selected].seqno >= e->seqno) {
        d->changed = 1; /* our triggered update answers it */
        return;
    }
    if (e->hops < 2 || (d->req_pending && d->req_seqno >= e->seqno))
        return;
    int32_t r = d->selected != NONE && t->rts[d->selected].nb != ni ? d->selected
                                                                     : best_any(t, d, ni);
    if (r == NONE)
        return;
    if (!d->req_pending)
        d->req_created_ms = now;
    d->req_pending = d->req_unsent = 1;
    d->req_seqno = e->seqno;
    d->req_hops = (uint8_t)(e->hops - 1);
    d->req_to = t->rts[r].nb;
    d->req_from = ni;
}

static void handle_route(gm_route_t *t, int32_t ni, const gm_wire_route_entry *e, uint64_t now)
{
    if (memcmp(e->dest, t->self, KEYLEN) == 0)
        return;
    struct rt probe = {.adv_metric = e->metric, .adv_hops = e->hops};
    route_set_metric(t, &probe, t->nbs[ni].cost);
    int32_t di = dest_find(t, e->dest);
    if (probe.metric >= GM_ROUTE_INF) {
        /* Retraction (or beyond the hop limit): always accepted. */
        if (di == NONE)
            return;
        int32_t r = route_find(t, &t->dsts[di], ni);
        if (r != NONE) {
            route_free(t, r);
            reselect(t, di, now);
        }
        return;
    }
    int created = 0;
    if (di == NONE) {
        di = dest_new(t, e->dest);
        if (di == NONE) {
            t->refused_full++;
            return;
        }
        created = 1;
    }
    struct dst *d = &t->dsts[di];
    int32_t r = route_find(t, d, ni);
    if (r == NONE) {
        r = route_new(t, di, ni);
        if (r == NONE) {
            t->refused_full++;
            if (created)
                dest_free(t, di);
            return;
        }
    }
    struct rt *rr = &t->rts[r];
    /* A neighbour's seqno for a destination only goes up: an older origin is a replay. */
    if (!created && rr->refreshed_ms && e->seqno < rr->seqno) {
        t->stale_seqno++;
        return;
    }
    if (!feasible(d, e->seqno, e->metric))
        t->infeasible++;
    rr->seqno = e->seqno;
    rr->adv_metric = e->metric;
    rr->adv_hops = e->hops;
    rr->metric = probe.metric;
    rr->hops = probe.hops;
    rr->has_cert = e->has_cert_id;
    if (e->has_cert_id)
        memcpy(rr->cert_id, e->cert_id, GM_WIRE_CERT_ID_LEN);
    else
        memset(rr->cert_id, 0, GM_WIRE_CERT_ID_LEN);
    rr->has_origin = e->has_origin;
    rr->origin = e->origin;
    rr->refreshed_ms = now;
    reselect(t, di, now);
}

int gm_route_update(gm_route_t *t, const uint8_t neighbour[KEYLEN],
                    const gm_wire_route_entry *entries, size_t n, uint64_t now_ms, gm_error *err)
{
    int32_t ni = nb_find(t, neighbour);
    if (ni == NONE)
        return gm_error_set(err, GM_ENOTFOUND, "route update from a peer that is not a neighbour");
    for (size_t i = 0; i < n; i++) {
        const gm_wire_route_entry *e = &entries[i];
        if (gm_route_is_banned(t, e->dest)) {
            t->ignored_banned++;
            continue;
        }
        if (e->request)
            handle_request(t, ni, e, now_ms);
        else
            handle_route(t, ni, e, now_ms);
    }
    return 0;
}

/* ---- withdrawal ---- */

int gm_route_withdraw_destination(gm_route_t *t, const uint8_t key[KEYLEN], uint64_t now_ms,
                                  gm_error *err)
{
    if (memcmp(key, t->self, KEYLEN) == 0)
        return gm_error_set(err, GM_EINVAL, "cannot withdraw our own identity from routing");
    int found;
    size_t pos = ban_pos(t, key, &found);
    if (!found) {
        if (t->n_banned >= t->cfg.max_banned)
            return gm_error_set(err, GM_ETOOBIG,
                                "already %zu withdrawn destinations, the configured maximum",
                                t->cfg.max_banned);
        memmove(&t->banned[pos + 1], &t->banned[pos], (t->n_banned - pos) * sizeof *t->banned);
        memcpy(t->banned[pos], key, KEYLEN);
        t->n_banned++;
    }
    int32_t di = dest_find(t, key);
    if (di != NONE) {
        struct dst *d = &t->dsts[di];
        while (d->routes != NONE)
            route_free(t, d->routes);
        request_clear(d);
        reselect(t, di, now_ms);
    }
    if (nb_find(t, key) != NONE)
        gm_route_neighbour_down(t, key, now_ms);
    return 0;
}

int gm_route_unban(gm_route_t *t, const uint8_t key[KEYLEN])
{
    int found;
    size_t pos = ban_pos(t, key, &found);
    if (!found)
        return GM_ENOTFOUND;
    memmove(&t->banned[pos], &t->banned[pos + 1], (t->n_banned - pos - 1) * sizeof *t->banned);
    t->n_banned--;
    return 0;
}

/* ---- time ---- */

int gm_route_tick(gm_route_t *t, uint64_t now_ms)
{
    int changed = 0;
    /* Backwards, so freeing a destination does not skip the next one. */
    for (size_t i = t->n_dsts; i-- > 0;) {
        int32_t di = t->sorted[i];
        struct dst *d = &t->dsts[di];
        int expired = 0;
        for (int32_t r = d->routes; r != NONE;) {
            int32_t next = t->rts[r].next;
            if (age(now_ms, t->rts[r].refreshed_ms) >= t->cfg.hold_time_ms) {
                route_free(t, r);
                expired = 1;
            } else if (t->rts[r].suspect_until_ms && t->rts[r].suspect_until_ms <= now_ms) {
                t->rts[r].suspect_until_ms = 0;
                expired = 1; /* selection may go back to it */
            }
            r = next;
        }
        if (d->req_pending && d->req_from != NONE &&
            age(now_ms, d->req_created_ms) >= t->cfg.hold_time_ms)
            request_clear(d);
        if (d->req_pending && d->req_from == NONE && d->selected != NONE)
            request_clear(d);
        if (expired)
            changed += reselect(t, di, now_ms);
        else
            maybe_request(t, d, now_ms);
        if (dest_collectable(t, d, now_ms))
            dest_free(t, di);
    }
    return changed;
}

/* ---- output ---- */

int gm_route_changed(const gm_route_t *t)
{
    if (t->self_changed)
        return 1;
    for (size_t i = 0; i < t->n_dsts; i++) {
        const struct dst *d = &t->dsts[t->sorted[i]];
        if (d->changed || (d->req_pending && d->req_unsent))
            return 1;
    }
    return 0;
}

void gm_route_clear_changed(gm_route_t *t)
{
    t->self_changed = 0;
    for (size_t i = 0; i < t->n_dsts; i++)
        t->dsts[t->sorted[i]].changed = 0;
}

int gm_route_build_update(gm_route_t *t, const uint8_t neighbour[KEYLEN], int mode,
                          uint64_t now_ms, size_t *cursor, gm_wire_route_entry *out, size_t cap,
                          size_t *n, gm_error *err)
{
    *n = 0;
    int32_t ni = nb_find(t, neighbour);
    if (ni == NONE)
        return gm_error_set(err, GM_ENOTFOUND, "building an update for a peer that is not a neighbour");
    if (cap < 2 || !out)
        return gm_error_set(err, GM_EINVAL, "update buffer needs room for at least 2 entries");
    if (mode != GM_ROUTE_FULL && mode != GM_ROUTE_CHANGED)
        return gm_error_set(err, GM_EINVAL, "unknown update mode %d", mode);
    if (cap > GM_WIRE_ROUTE_MAX_ENTRIES)
        cap = GM_WIRE_ROUTE_MAX_ENTRIES;
    int full = mode == GM_ROUTE_FULL;
    size_t k = 0, pos = *cursor;
    if (pos == 0) {
        if (full || t->self_changed) {
            gm_wire_route_entry *e = &out[k++];
            memset(e, 0, sizeof *e);
            memcpy(e->dest, t->self, KEYLEN);
            e->seqno = t->self_seqno;
            e->has_cert_id = t->self_has_cert;
            memcpy(e->cert_id, t->self_cert, GM_WIRE_CERT_ID_LEN);
        }
        pos = 1;
    }
    for (; pos - 1 < t->n_dsts; pos++) {
        if (k + 2 > cap) {
            *cursor = pos;
            *n = k;
            return 1;
        }
        struct dst *d = &t->dsts[t->sorted[pos - 1]];
        if ((full || d->changed) && memcmp(d->key, neighbour, KEYLEN) != 0) {
            if (d->adv_reach && d->adv_nb != ni) {
                gm_wire_route_entry *e = &out[k++];
                memset(e, 0, sizeof *e);
                memcpy(e->dest, d->key, KEYLEN);
                e->seqno = d->adv_seqno;
                e->metric = d->adv_metric;
                e->hops = d->adv_hops;
                e->has_cert_id = d->adv_has_cert;
                memcpy(e->cert_id, d->adv_cert, GM_WIRE_CERT_ID_LEN);
                e->has_origin = d->adv_has_origin;
                e->origin = d->adv_origin;
            } else if (!d->adv_reach && now_ms < d->retract_until_ms) {
                gm_wire_route_entry *e = &out[k++];
                memset(e, 0, sizeof *e);
                memcpy(e->dest, d->key, KEYLEN);
                e->seqno = d->adv_seqno;
                e->metric = GM_ROUTE_INF;
            }
        }
        if (d->req_pending && d->req_unsent && d->req_to == ni) {
            gm_wire_route_entry *e = &out[k++];
            memset(e, 0, sizeof *e);
            memcpy(e->dest, d->key, KEYLEN);
            e->seqno = d->req_seqno;
            e->metric = GM_ROUTE_INF;
            e->hops = d->req_hops;
            e->request = 1;
            d->req_unsent = 0;
            d->req_sent_ms = now_ms;
            t->requests_sent++;
        }
    }
    *cursor = pos;
    *n = k;
    return 0;
}

int gm_route_lookup(const gm_route_t *t, const uint8_t dest[KEYLEN], uint8_t next_hop[KEYLEN],
                    uint16_t *metric, uint8_t *hops)
{
    int32_t di = dest_find(t, dest);
    if (di == NONE || t->dsts[di].selected == NONE)
        return GM_ENOTFOUND;
    const struct rt *r = &t->rts[t->dsts[di].selected];
    memcpy(next_hop, t->nbs[r->nb].key, KEYLEN);
    if (metric)
        *metric = r->metric;
    if (hops)
        *hops = r->hops;
    return 0;
}

void gm_route_foreach(const gm_route_t *t, uint64_t now_ms,
                      int (*fn)(void *ud, const gm_route_info *info), void *ud)
{
    for (size_t i = 0; i < t->n_dsts; i++) {
        const struct dst *d = &t->dsts[t->sorted[i]];
        for (int32_t r = d->routes; r != NONE; r = t->rts[r].next) {
            const struct rt *rr = &t->rts[r];
            gm_route_info info;
            memset(&info, 0, sizeof info);
            memcpy(info.dest, d->key, KEYLEN);
            memcpy(info.next_hop, t->nbs[rr->nb].key, KEYLEN);
            info.seqno = rr->seqno;
            info.metric = rr->metric;
            info.hops = rr->hops;
            info.selected = r == d->selected;
            info.feasible = rr->metric < GM_ROUTE_INF && feasible(d, rr->seqno, rr->adv_metric);
            info.has_cert_id = rr->has_cert;
            memcpy(info.cert_id, rr->cert_id, GM_WIRE_CERT_ID_LEN);
            info.age_ms = age(now_ms, rr->refreshed_ms);
            if (fn(ud, &info))
                return;
        }
    }
}

void gm_route_stats_get(const gm_route_t *t, gm_route_stats *s)
{
    memset(s, 0, sizeof *s);
    s->destinations = t->n_dsts;
    for (size_t i = 0; i < t->n_dsts; i++)
        s->reachable += t->dsts[t->sorted[i]].selected != NONE;
    s->routes = t->n_rts;
    for (size_t i = 0; i < t->cfg.max_neighbours; i++)
        s->neighbours += t->nbs[i].used;
    s->banned = t->n_banned;
    s->refused_full = t->refused_full;
    s->ignored_banned = t->ignored_banned;
    s->infeasible = t->infeasible;
    s->requests_sent = t->requests_sent;
    s->stale_seqno = t->stale_seqno;
    s->suspected = t->suspected;
}

int gm_route_suspect(gm_route_t *t, const uint8_t dest[KEYLEN], const uint8_t neighbour[KEYLEN],
                     uint64_t base_ms, uint64_t max_ms, uint64_t now_ms)
{
    int32_t di = dest_find(t, dest), ni = nb_find(t, neighbour);
    if (di == NONE || ni == NONE)
        return GM_ENOTFOUND;
    int32_t r = route_find(t, &t->dsts[di], ni);
    if (r == NONE)
        return GM_ENOTFOUND;
    struct rt *rr = &t->rts[r];
    uint64_t hold = base_ms;
    for (uint32_t i = 0; i < rr->strikes && hold < max_ms; i++)
        hold *= 2;
    if (hold > max_ms)
        hold = max_ms;
    if (rr->strikes < UINT32_MAX)
        rr->strikes++;
    rr->suspect_until_ms = now_ms + hold;
    t->suspected++;
    reselect(t, di, now_ms);
    return 0;
}
