/* Routing at the scale of a thousand nodes, on the in-process simulator: BENCH_N route tables
 * (the real lib/net/route.c, with the node's default limits unless a topology cannot fit them)
 * exchange encoded ROUTE_UPDATEs through the real wire codec. Delivery goes in rounds: every
 * message sent in round r is delivered in round r+1, so a round is one hop of propagation and
 * "rounds x one-hop latency" is the wall time a real mesh needs. Topologies: star, tree (fan-out
 * 4), ring with chords (a chord from every 5th node to a random one), random (ring + 2 random
 * links a node). A destination farther than the hop limit (16) is unreachable by design: the
 * checks expect exactly that, and the pairs beyond it are printed. For each it prints:
 *   - cold start: rounds to full routes next to the graph's diameter (no update can travel
 *     faster than a hop a round), messages and route entries received per node, CPU per
 *     received entry next to the wire decoder's cost per entry (measured here);
 *   - join of one new node (2 links; 1 in the star): rounds, messages per node, entries per
 *     node next to 1 (the least a node must hear);
 *   - loss of one link: rounds until every table agrees with the graph again;
 *   - revocation of one node (every node withdraws it, as when the CRL arrives): no node holds
 *     a route to it from round 0; rounds and messages per node until the routes that went
 *     through it are replaced (every table agrees with the graph without it);
 *   - memory: resident bytes per node (the tables are preallocated to the node's bounds) and
 *     per stored route, next to the bytes of one route as the wire carries it.
 * "+N s of timers": simulated seconds of seqno-request retries and periodic updates that a
 * phase needed besides its rounds.
 * Signed route origins are off here (they add one Ed25519 verification per destination per node
 * at cold start: printed as a separate figure measured in the same run; bench_route measures
 * them in full). Knobs: BENCH_N (1000), BENCH_TOPO (all | star | tree | ring | random). */
#include <malloc.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "bench_util.h"
#include "route.h"
#include "wire.h"

#define MAXN 4097

typedef struct msg {
    int from, to;
    size_t len;
    uint8_t *buf;
    struct msg *next;
} msg;

typedef struct node {
    gm_route_t *t;
    uint8_t pk[32];
    int *nb, deg, cap; /* neighbours */
} node;

typedef struct counters {
    uint64_t msgs, entries;
} counters;

static node nodes[MAXN];
static int n_nodes;
static msg *q_head, *q_tail;
static counters cnt;
static gm_wire_route_entry ebuf[GM_WIRE_ROUTE_MAX_ENTRIES];
static uint8_t mbuf[GM_WIRE_MSG_MAX];
static uint64_t now_ms = 1000000;

static void die(const char *what)
{
    fprintf(stderr, "bench_mesh_scale: %s\n", what);
    exit(1);
}

static int linked(int a, int b)
{
    for (int k = 0; k < nodes[a].deg; k++)
        if (nodes[a].nb[k] == b)
            return 1;
    return 0;
}

static void add_nb(int a, int b)
{
    node *x = &nodes[a];
    if (x->deg == x->cap) {
        x->cap = x->cap ? 2 * x->cap : 8;
        x->nb = realloc(x->nb, (size_t)x->cap * sizeof *x->nb);
        if (!x->nb)
            die("out of memory");
    }
    x->nb[x->deg++] = b;
}

static void del_nb(int a, int b)
{
    node *x = &nodes[a];
    for (int k = 0; k < x->deg; k++)
        if (x->nb[k] == b) {
            x->nb[k] = x->nb[--x->deg];
            return;
        }
}

/* Graph edge only (tables are told later). */
static void edge(int a, int b)
{
    if (a == b || linked(a, b))
        return;
    add_nb(a, b);
    add_nb(b, a);
}

static void enqueue(int from, int to, size_t k)
{
    size_t len;
    if (gm_wire_route_update_encode(ebuf, k, mbuf, sizeof mbuf, &len, NULL) != 0)
        die("encoding a route update failed");
    msg *m = calloc(1, sizeof *m);
    if (!m || !(m->buf = malloc(len)))
        die("out of memory");
    m->from = from;
    m->to = to;
    m->len = len;
    memcpy(m->buf, mbuf, len);
    if (q_tail)
        q_tail->next = m;
    else
        q_head = m;
    q_tail = m;
}

static void send_to(int i, int j, int mode)
{
    size_t cursor = 0, k;
    int more;
    do {
        more = gm_route_build_update(nodes[i].t, nodes[j].pk, mode, now_ms, &cursor, ebuf, GM_WIRE_ROUTE_FIT_ENTRIES,
                                     &k, NULL);
        if (more < 0)
            die("building a route update failed");
        if (k)
            enqueue(i, j, k);
    } while (more == 1);
}

static void deliver(msg *m)
{
    size_t k;
    if (gm_wire_route_update_decode(m->buf, m->len, ebuf, GM_WIRE_ROUTE_MAX_ENTRIES, &k, NULL) != 0)
        die("decoding a route update failed");
    cnt.msgs++;
    cnt.entries += k;
    /* A message on a link that went down in the meantime is lost, as on a real link. */
    if (gm_route_is_neighbour(nodes[m->to].t, nodes[m->from].pk))
        gm_route_update(nodes[m->to].t, nodes[m->from].pk, ebuf, k, now_ms, NULL);
}

/* Triggered updates, delivered a round at a time, until nothing is pending; then, if asked,
 * ticks the clock (seqno request retries, hold-time expiry) until done() holds or max_s
 * simulated seconds pass. Returns the rounds that carried messages. */
static int waited_s; /* simulated seconds of timers the last quiesce needed */

static int quiesce(int (*done)(void), int max_s)
{
    int rounds = 0;
    for (int waited = waited_s = 0;; waited_s = waited) {
        for (;;) {
            for (int i = 0; i < n_nodes; i++)
                if (gm_route_changed(nodes[i].t)) {
                    for (int k = 0; k < nodes[i].deg; k++)
                        send_to(i, nodes[i].nb[k], GM_ROUTE_CHANGED);
                    gm_route_clear_changed(nodes[i].t);
                }
            if (!q_head)
                break;
            msg *batch = q_head;
            q_head = q_tail = NULL;
            rounds++;
            now_ms += 1;
            while (batch) {
                msg *m = batch;
                batch = m->next;
                deliver(m);
                free(m->buf);
                free(m);
            }
        }
        if (!done || done() || waited >= max_s)
            return rounds;
        now_ms += 1000;
        waited++;
        for (int i = 0; i < n_nodes; i++)
            gm_route_tick(nodes[i].t, now_ms);
        if (waited % (GM_ROUTE_UPDATE_INTERVAL_MS / 1000) == 0) /* periodic full updates, as nodes do */
            for (int i = 0; i < n_nodes; i++)
                for (int k = 0; k < nodes[i].deg; k++)
                    send_to(i, nodes[i].nb[k], GM_ROUTE_FULL);
    }
}

/* ---- checks: every table agrees with the graph ---- */

static int revoked = -1;
static gm_route_config cfg;
static int *bfs_dist, *bfs_q;

/* Hop distances from s over live links, skipping the revoked node. */
static void bfs(int s)
{
    for (int i = 0; i < n_nodes; i++)
        bfs_dist[i] = -1;
    int h = 0, t = 0;
    bfs_dist[s] = 0;
    bfs_q[t++] = s;
    while (h < t) {
        int u = bfs_q[h++];
        for (int k = 0; k < nodes[u].deg; k++) {
            int v = nodes[u].nb[k];
            if (v != revoked && bfs_dist[v] < 0) {
                bfs_dist[v] = bfs_dist[u] + 1;
                bfs_q[t++] = v;
            }
        }
    }
}

static size_t beyond_hop_limit(void)
{
    size_t k = 0;
    for (int s = 0; s < n_nodes; s++) {
        bfs(s);
        for (int i = 0; i < n_nodes; i++)
            k += bfs_dist[i] > cfg.hop_limit;
    }
    return k;
}

static int diameter(void)
{
    int d = 0;
    for (int s = 0; s < n_nodes; s++) {
        if (s == revoked)
            continue;
        bfs(s);
        for (int i = 0; i < n_nodes; i++)
            if (bfs_dist[i] > d)
                d = bfs_dist[i];
    }
    return d;
}

/* Every node holds a route to exactly the nodes the graph connects it to (none to the revoked
 * node), with a next hop that is a live link. */
static int agrees(void)
{
    uint8_t nh[32];
    for (int s = 0; s < n_nodes; s++) {
        if (s == revoked)
            continue;
        bfs(s);
        for (int d = 0; d < n_nodes; d++) {
            if (d == s)
                continue;
            int has = gm_route_lookup(nodes[s].t, nodes[d].pk, nh, NULL, NULL) == 0;
            if (has != (d != revoked && bfs_dist[d] >= 0 && bfs_dist[d] <= cfg.hop_limit))
                return 0;
            if (has && !gm_route_is_neighbour(nodes[s].t, nh))
                return 0;
        }
    }
    return 1;
}

/* ---- topologies ---- */

static const char *const topo_names[] = {"star", "tree", "ring", "random"};

static void build(int topo, int n)
{
    for (int i = 0; i < n; i++) {
        if (topo == 0 && i > 0)
            edge(0, i);
        if (topo == 1 && i > 0)
            edge((i - 1) / 4, i);
        if (topo == 2) {
            edge(i, (i + 1) % n);
            if (i % 5 == 0) /* a chord from every 5th node to a random one (small world) */
                edge(i, (int)(bench_rng() % (uint64_t)n));
        }
        if (topo == 3) {
            edge(i, (i + 1) % n);
            for (int k = 0; k < 2; k++)
                edge(i, (int)(bench_rng() % (uint64_t)n));
        }
    }
}

static void new_table(int i)
{
    uint8_t seed[32] = {0};
    uint8_t sk[64];
    seed[0] = (uint8_t)i;
    seed[1] = (uint8_t)(i >> 8);
    seed[2] = 0x5c;
    crypto_sign_seed_keypair(nodes[i].pk, sk, seed);
    sodium_memzero(sk, sizeof sk);
    if (gm_route_new(&nodes[i].t, nodes[i].pk, 1000, &cfg, NULL) != 0)
        die("creating a route table failed");
}

static void link_up(int a, int b)
{
    gm_error e = {0};
    if (gm_route_neighbour_up(nodes[a].t, nodes[b].pk, 0, now_ms, &e) != 0 ||
        gm_route_neighbour_up(nodes[b].t, nodes[a].pk, 0, now_ms, &e) != 0)
        die(e.msg[0] ? e.msg : "neighbour_up failed");
}

static void report(const char *phase, int rounds, int limit_rounds, const counters *c, int nodes_n)
{
    printf("  %-11s rounds %4d  limit %4d  ratio %5.2f  +%3d s of timers   msgs/node %7.1f   entries/node %8.1f\n",
           phase, rounds, limit_rounds, limit_rounds ? (double)rounds / limit_rounds : 0, waited_s,
           (double)c->msgs / nodes_n, (double)c->entries / nodes_n);
}

/* Resident memory of this process (the route tables are preallocated and touched at creation). */
static long rss_bytes(void)
{
    long pages = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld %ld", &pages, &res) != 2)
        die("cannot read /proc/self/statm");
    fclose(f);
    return res * sysconf(_SC_PAGESIZE);
}

static double decode_us_per_entry(void)
{
    gm_wire_route_entry e[64];
    memset(e, 0, sizeof e);
    for (int i = 0; i < 64; i++) {
        e[i].dest[0] = (uint8_t)i;
        e[i].seqno = 1000 + (uint64_t)i;
        e[i].metric = 3;
        e[i].hops = 3;
        e[i].has_cert_id = 1;
    }
    size_t len, k;
    if (gm_wire_route_update_encode(e, 64, mbuf, sizeof mbuf, &len, NULL) != 0)
        die("encode");
    double t0 = bench_cpu_s();
    for (int r = 0; r < 20000; r++)
        if (gm_wire_route_update_decode(mbuf, len, ebuf, GM_WIRE_ROUTE_MAX_ENTRIES, &k, NULL) != 0)
            die("decode");
    return (bench_cpu_s() - t0) * 1e6 / (20000.0 * 64);
}

static double verify_us(void)
{
    uint8_t pk[32], sk[64], sig[64], m[96] = {1};
    crypto_sign_keypair(pk, sk);
    crypto_sign_detached(sig, NULL, m, sizeof m, sk);
    double t0 = bench_cpu_s();
    for (int r = 0; r < 2000; r++)
        if (crypto_sign_verify_detached(sig, m, sizeof m, pk) != 0)
            die("verify");
    return (bench_cpu_s() - t0) * 1e6 / 2000.0;
}

static void run(int topo, int n, double dec_us, double ver_us)
{
    gm_route_config_default(&cfg);
    int fits = 1;
    if (topo == 0 && (size_t)n > cfg.max_neighbours) {
        /* The node's defaults cap a node at 64 neighbours: a hub of n-1 leaves needs more. */
        cfg.max_neighbours = (size_t)n + 1;
        fits = 0;
    }
    if ((size_t)n * 8 > cfg.max_routes) {
        cfg.max_routes = (size_t)n * 8;
        fits = 0;
    }
    bench_rng_state = 0x9e3779b97f4a7c15ULL + (uint64_t)topo;
    revoked = -1;
    n_nodes = n;
    long rss0 = rss_bytes();
    for (int i = 0; i < n + 1; i++)
        new_table(i);
    build(topo, n);
    size_t links = 0;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < nodes[i].deg; k++)
            if (nodes[i].nb[k] > i) {
                link_up(i, nodes[i].nb[k]);
                links++;
            }
    printf("%s: %d nodes, %zu links%s\n", topo_names[topo], n, links,
           fits ? "" : " (needs limits above the node's defaults: max_neighbours 64, max_routes 16384)");

    /* Cold start: every link up at once, full updates both ways. */
    memset(&cnt, 0, sizeof cnt);
    double t0 = bench_cpu_s();
    for (int i = 0; i < n; i++)
        for (int k = 0; k < nodes[i].deg; k++)
            send_to(i, nodes[i].nb[k], GM_ROUTE_FULL);
    int rounds = quiesce(agrees, 60);
    double cpu = bench_cpu_s() - t0;
    if (!agrees())
        die("cold start did not converge");
    int diam = diameter();
    report("cold start", rounds, diam < cfg.hop_limit ? diam : cfg.hop_limit, &cnt, n);
    if (diam > cfg.hop_limit)
        printf("  %-11s diameter %d is above the hop limit %d: %zu ordered pairs are out of reach by design\n", "", diam,
               cfg.hop_limit, beyond_hop_limit());
    printf("  %-11s CPU per received entry %.3f us  limit %.3f us (decode only)  ratio %.1f;  all %d tables %.2f s CPU\n",
           "", cpu * 1e6 / (double)cnt.entries, dec_us, cpu * 1e6 / (double)cnt.entries / dec_us, n, cpu);
    printf("  %-11s signed origins would add %d verifications a node: %.1f ms CPU a node (%.1f us each)\n", "",
           n - 1, (n - 1) * ver_us / 1e3, ver_us);
    long rss1 = rss_bytes();
    size_t routes = 0;
    for (int i = 0; i < n; i++) {
        gm_route_stats st;
        gm_route_stats_get(nodes[i].t, &st);
        routes += st.routes;
    }
    double per_node = (double)(rss1 - rss0) / (n + 1), per_slot = per_node / (double)cfg.max_routes;
    int wire = (int)(GM_WIRE_ROUTE_ENTRY_MAX - GM_WIRE_ORIGIN_LEN);
    printf("  %-11s memory %.2f MB a node, preallocated for %zu routes and %zu destinations (%.0f routes stored a "
           "node): %.0f bytes a route slot  limit %d bytes (a route on the wire)  ratio %.1f\n",
           "", per_node / 1e6, cfg.max_routes, cfg.max_destinations, (double)routes / n, per_slot, wire,
           per_slot / wire);

    /* Join: node n comes up with 2 links (1 to the hub of a star). */
    int j = n;
    n_nodes = n + 1;
    int a = topo == 0 ? 0 : (int)(bench_rng() % (uint64_t)n), b = (int)(bench_rng() % (uint64_t)n);
    memset(&cnt, 0, sizeof cnt);
    edge(j, a);
    link_up(j, a);
    if (topo != 0 && b != a) {
        edge(j, b);
        link_up(j, b);
    }
    for (int k = 0; k < nodes[j].deg; k++) {
        send_to(j, nodes[j].nb[k], GM_ROUTE_FULL);
        send_to(nodes[j].nb[k], j, GM_ROUTE_FULL);
    }
    rounds = quiesce(agrees, 60);
    if (!agrees())
        die("join did not converge");
    bfs(j);
    int ecc = 0;
    for (int i = 0; i < n_nodes; i++)
        if (bfs_dist[i] > ecc)
            ecc = bfs_dist[i];
    report("join", rounds, ecc, &cnt, n_nodes);

    /* Link loss: the first link of a node in the middle of the numbering (a spoke in the
     * star: that leaf is cut off, and every table must drop it). */
    int x = n / 2, y = nodes[x].nb[0];
    memset(&cnt, 0, sizeof cnt);
    del_nb(x, y);
    del_nb(y, x);
    gm_route_neighbour_down(nodes[x].t, nodes[y].pk, now_ms);
    gm_route_neighbour_down(nodes[y].t, nodes[x].pk, now_ms);
    rounds = quiesce(agrees, 120);
    if (!agrees())
        die("link loss did not converge within 120 simulated seconds");
    report("link loss", rounds, diameter(), &cnt, n_nodes);

    /* Revocation of a node that is not the hub: every node withdraws it (the CRL reached
     * all of them, as with the NA watch), its links go down. */
    revoked = topo == 0 ? 1 : n / 3;
    memset(&cnt, 0, sizeof cnt);
    for (int i = 0; i < n_nodes; i++)
        if (i != revoked && gm_route_withdraw_destination(nodes[i].t, nodes[revoked].pk, now_ms, NULL) != 0)
            die("withdraw failed");
    while (nodes[revoked].deg) {
        int v = nodes[revoked].nb[0];
        del_nb(revoked, v);
        del_nb(v, revoked);
        gm_route_neighbour_down(nodes[revoked].t, nodes[v].pk, now_ms);
    }
    uint8_t nh[32];
    for (int i = 0; i < n_nodes; i++)
        if (i != revoked && gm_route_lookup(nodes[i].t, nodes[revoked].pk, nh, NULL, NULL) == 0)
            die("a node kept a route to the revoked node");
    rounds = quiesce(agrees, 120);
    if (!agrees())
        die("revocation did not converge within 120 simulated seconds");
    report("revocation", rounds, diameter(), &cnt, n_nodes - 1);

    for (int i = 0; i < n + 1; i++) {
        gm_route_free(nodes[i].t);
        free(nodes[i].nb);
        memset(&nodes[i], 0, sizeof nodes[i]);
    }
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    mallopt(M_MMAP_THRESHOLD, 64 * 1024); /* big tables in their own mappings: freed back between runs */
    int n = getenv("BENCH_N") ? atoi(getenv("BENCH_N")) : 1000;
    const char *want = getenv("BENCH_TOPO") ? getenv("BENCH_TOPO") : "all";
    if (n < 10 || n >= MAXN)
        return fprintf(stderr, "BENCH_N must be 10..%d\n", MAXN - 1), 2;
    bfs_dist = malloc((size_t)MAXN * sizeof *bfs_dist);
    bfs_q = malloc((size_t)MAXN * sizeof *bfs_q);
    if (!bfs_dist || !bfs_q)
        die("out of memory");
    double dec = decode_us_per_entry(), ver = verify_us();
    printf("routing at scale: real route tables and wire codec in one process; a round = one hop of propagation\n");
    for (int t = 0; t < 4; t++)
        if (!strcmp(want, "all") || !strcmp(want, topo_names[t]))
            run(t, n, dec, ver);
    free(bfs_dist);
    free(bfs_q);
    return 0;
}
