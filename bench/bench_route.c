/* Routing with and without signed route origins, on the in-process simulator: N route
 * tables in a random connected mesh exchange encoded ROUTE_UPDATEs (FIFO delivery).
 * "before" feeds updates straight to the table (the code before route origins); "after"
 * signs each node's own entry per neighbour and checks + verifies every received route
 * (gm_route_origin_check, gm_route_origin_verify through a per-node cache), as
 * lib/node/node_routing.c does. Printed, medians of BENCH_RUNS runs:
 *   - cold convergence: CPU seconds from all links up to every node holding a route to
 *     every other (every origin verified once);
 *   - steady state: CPU microseconds per received route entry over periodic full updates
 *     (origins already cached);
 * each with the figure before and after, the ratio after/before, and the limit we accept.
 * Knobs: BENCH_N (nodes, 60), BENCH_DEGREE (extra random links per node, 2), BENCH_RUNS (5). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "bench_util.h"
#include "route.h"
#include "route_origin.h"
#include "wire.h"

#define MAXN 256

typedef struct msg {
    int from, to;
    size_t len;
    uint8_t *buf;
    struct msg *next;
} msg;

typedef struct node {
    gm_route_t *t;
    uint8_t pk[32], sk[64];
    gm_route_origin_cache_t *cache;
    gm_wire_route_entry signed_self[MAXN]; /* our entry as signed for each neighbour */
    int has_signed[MAXN];
} node;

static node nodes[MAXN];
static int adj[MAXN][MAXN], n_nodes;
static msg *q_head, *q_tail;
static uint64_t entries_in;
static gm_wire_route_entry ebuf[GM_WIRE_ROUTE_MAX_ENTRIES];
static uint8_t mbuf[GM_WIRE_MSG_MAX];

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng_state;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void send_updates(int i, int mode, int origins, uint64_t now)
{
    for (int j = 0; j < n_nodes; j++) {
        if (!adj[i][j])
            continue;
        size_t cursor = 0, k, len;
        int more;
        do {
            more = gm_route_build_update(nodes[i].t, nodes[j].pk, mode, now, &cursor, ebuf, GM_WIRE_ROUTE_FIT_ENTRIES,
                                         &k, NULL);
            if (k == 0)
                continue;
            for (size_t e = 0; origins && e < k; e++) {
                if (ebuf[e].request || memcmp(ebuf[e].dest, nodes[i].pk, 32) != 0)
                    continue;
                node *me = &nodes[i];
                if (!me->has_signed[j] || me->signed_self[j].seqno != ebuf[e].seqno) {
                    gm_route_origin_sign(&ebuf[e], nodes[j].pk, 1800000000, me->sk, NULL);
                    me->signed_self[j] = ebuf[e];
                    me->has_signed[j] = 1;
                } else {
                    ebuf[e].has_origin = 1;
                    ebuf[e].origin = me->signed_self[j].origin;
                }
            }
            if (gm_wire_route_update_encode(ebuf, k, mbuf, sizeof mbuf, &len, NULL) != 0)
                abort();
            msg *m = calloc(1, sizeof *m);
            m->from = i;
            m->to = j;
            m->len = len;
            m->buf = malloc(len);
            memcpy(m->buf, mbuf, len);
            if (q_tail)
                q_tail->next = m;
            else
                q_head = m;
            q_tail = m;
        } while (more == 1);
    }
    gm_route_clear_changed(nodes[i].t);
}

static void deliver(msg *m, int origins, uint64_t now)
{
    size_t k, kept = 0;
    node *to = &nodes[m->to];
    if (gm_wire_route_update_decode(m->buf, m->len, ebuf, GM_WIRE_ROUTE_MAX_ENTRIES, &k, NULL) != 0)
        abort();
    entries_in += k;
    for (size_t e = 0; e < k; e++) {
        if (origins && gm_route_origin_check(&ebuf[e], nodes[m->from].pk, to->pk, 1800000000) != GM_ORIGIN_OK)
            continue;
        if (origins && !ebuf[e].request && ebuf[e].metric != GM_WIRE_METRIC_INF &&
            gm_route_origin_verify(to->cache, &ebuf[e], NULL) != 0)
            abort();
        ebuf[kept++] = ebuf[e];
    }
    if (kept)
        gm_route_update(to->t, nodes[m->from].pk, ebuf, kept, now, NULL);
}

/* Triggered updates and deliveries until nothing is pending. */
static void quiesce(int origins, uint64_t now)
{
    for (;;) {
        int sent = 0;
        for (int i = 0; i < n_nodes; i++)
            if (gm_route_changed(nodes[i].t)) {
                send_updates(i, GM_ROUTE_CHANGED, origins, now);
                sent = 1;
            }
        if (!q_head && !sent)
            return;
        while (q_head) {
            msg *m = q_head;
            q_head = m->next;
            if (!q_head)
                q_tail = NULL;
            deliver(m, origins, now);
            free(m->buf);
            free(m);
        }
    }
}

static int converged(void)
{
    uint8_t nh[32];
    for (int i = 0; i < n_nodes; i++)
        for (int d = 0; d < n_nodes; d++)
            if (i != d && gm_route_lookup(nodes[i].t, nodes[d].pk, nh, NULL, NULL) != 0)
                return 0;
    return 1;
}

/* One run: build the mesh, converge from cold, then full-update rounds. */
static void run(int n, int degree, int origins, uint64_t seed, double *cold_s, double *steady_us,
                double *verifies)
{
    gm_route_config c;
    gm_route_config_default(&c);
    n_nodes = n;
    rng_state = seed;
    memset(adj, 0, sizeof adj);
    for (int i = 0; i < n; i++) {
        node *x = &nodes[i];
        memset(x, 0, sizeof *x);
        uint8_t s[32] = {0};
        s[0] = (uint8_t)i;
        s[1] = (uint8_t)(i >> 8);
        crypto_sign_seed_keypair(x->pk, x->sk, s);
        if (gm_route_new(&x->t, x->pk, 1000, &c, NULL) != 0 || gm_route_origin_cache_new(&x->cache, 0, NULL) != 0)
            abort();
        uint8_t id[16];
        memset(id, i, sizeof id);
        gm_route_set_self_cert_id(x->t, id);
    }
    for (int i = 0; i < n; i++) {
        int j = (i + 1) % n;
        adj[i][j] = adj[j][i] = 1;
        for (int k = 0; k < degree; k++) {
            int r = (int)(rng() % (uint64_t)n);
            if (r != i)
                adj[i][r] = adj[r][i] = 1;
        }
    }
    uint64_t now = 1000000;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if (adj[i][j])
                gm_route_neighbour_up(nodes[i].t, nodes[j].pk, 0, now, NULL);
    entries_in = 0;
    double t0 = cpu_s();
    for (int i = 0; i < n; i++)
        send_updates(i, GM_ROUTE_FULL, origins, now);
    quiesce(origins, now);
    *cold_s = cpu_s() - t0;
    if (!converged())
        abort();
    gm_route_origin_stats st;
    gm_route_origin_stats_get(nodes[0].cache, &st);
    uint64_t cold_verified = st.verified;
    entries_in = 0;
    t0 = cpu_s();
    for (int round = 0; round < 5; round++) {
        now += GM_ROUTE_UPDATE_INTERVAL_MS;
        for (int i = 0; i < n; i++)
            gm_route_tick(nodes[i].t, now);
        for (int i = 0; i < n; i++)
            send_updates(i, GM_ROUTE_FULL, origins, now);
        quiesce(origins, now);
    }
    *steady_us = (cpu_s() - t0) * 1e6 / (double)(entries_in ? entries_in : 1);
    gm_route_origin_stats_get(nodes[0].cache, &st);
    verifies[0] = (double)cold_verified;
    verifies[1] = (double)(st.verified - cold_verified);
    for (int i = 0; i < n; i++) {
        gm_route_free(nodes[i].t);
        gm_route_origin_cache_free(nodes[i].cache);
    }
}

static void line(const char *what, const char *unit, double before, double after, double limit)
{
    printf("%-38s before %8.3f %-2s after %8.3f %-2s ratio %6.2f  limit %5.1f %-2s %s\n", what, before, unit, after,
           unit, before > 0 ? after / before : 0, limit, unit, after <= limit ? "ok" : "OVER");
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    int n = getenv("BENCH_N") ? atoi(getenv("BENCH_N")) : 60;
    int degree = getenv("BENCH_DEGREE") ? atoi(getenv("BENCH_DEGREE")) : 2;
    int runs = getenv("BENCH_RUNS") ? atoi(getenv("BENCH_RUNS")) : 5;
    if (n < 2 || n > MAXN || runs < 1 || runs > 100)
        return fprintf(stderr, "BENCH_N must be 2..%d, BENCH_RUNS 1..100\n", MAXN), 2;
    double cold[2][100], steady[2][100], ver[2][100], ver_steady[100];
    for (int r = 0; r < runs; r++)
        for (int o = 0; o < 2; o++) {
            double v[2];
            run(n, degree, o, 0x9e3779b97f4a7c15ULL + (uint64_t)r, &cold[o][r], &steady[o][r], v);
            ver[o][r] = v[0];
            if (o)
                ver_steady[r] = v[1];
            cold[o][r] = cold[o][r] * 1e3 / n;
        }
    printf("routing simulator: %d nodes, ring + %d random links each, medians of %d runs\n", n, degree, runs);
    /* Limits on the figure after: a cold start pays one Ed25519 verification per
     * (destination, first hop) a node hears of, some 50 us each; a steady mesh verifies
     * nothing (cache hits) and stays within a few microseconds per received entry. */
    line("cold convergence, CPU per node", "ms", median(cold[0], runs), median(cold[1], runs), 50.0);
    line("steady state, CPU per received entry", "us", median(steady[0], runs), median(steady[1], runs), 5.0);
    printf("origin signatures verified by node 0: %.0f at cold start, %.0f in 5 steady rounds\n", median(ver[1], runs),
           median(ver_steady, runs));
    return 0;
}
