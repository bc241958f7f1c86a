/* Routing table: unit checks of the feasibility rules, bounds and seqno requests,
 * and simulated meshes of N tables exchanging encoded ROUTE_UPDATEs over links
 * with per-link FIFO queues delivered in random interleavings. After every send
 * and every delivery the simulator checks that no forwarding loop exists (no two
 * nodes point at each other, no next-hop chain cycles) and that no metric exceeds
 * the hop limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <sodium.h>

#include "route.h"
#include "route_origin.h"
#include "wire.h"

#define MAXN 24
#define STEP_MS 1000
#define FULL_EVERY 10 /* rounds between periodic full updates */

static uint64_t rng_state;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void make_key(uint8_t key[32], int i)
{
    for (int k = 0; k < 32; k++)
        key[k] = (uint8_t)(0xa5 ^ (i * 31 + k));
    key[0] = (uint8_t)(0x10 + i);
}

static void test_config(gm_route_config *c)
{
    gm_route_config_default(c);
    c->max_destinations = 64;
    c->max_routes = 512;
    c->max_neighbours = 16;
}

/* ---- simulator ---- */

typedef struct qmsg {
    size_t len;
    uint8_t *buf;
    struct qmsg *next;
} qmsg;

typedef struct sim {
    int n;
    gm_route_t *t[MAXN];
    uint8_t key[MAXN][32];
    int link[MAXN][MAXN];
    int alive[MAXN];
    qmsg *qhead[MAXN][MAXN], *qtail[MAXN][MAXN]; /* directed link i -> j */
    uint64_t now;
    uint64_t round;
    int hop_limit;
    int ceiling[MAXN];     /* if > 0: no route to this dest may have a larger metric */
    int banned[MAXN][MAXN]; /* banned[i][d]: node i must never route to d */
    uint64_t steps;
} sim;

static int key_index(const sim *s, const uint8_t *key)
{
    for (int i = 0; i < s->n; i++)
        if (memcmp(s->key[i], key, 32) == 0)
            return i;
    return -1;
}

static sim *sim_new(int n, uint64_t seed)
{
    sim *s = calloc(1, sizeof *s);
    assert_non_null(s);
    rng_state = seed;
    s->n = n;
    s->now = 1000000;
    gm_route_config c;
    test_config(&c);
    s->hop_limit = c.hop_limit;
    for (int i = 0; i < n; i++) {
        make_key(s->key[i], i);
        assert_int_equal(gm_route_new(&s->t[i], s->key[i], 1000 + (uint64_t)i, &c, NULL), 0);
        s->alive[i] = 1;
    }
    return s;
}

static void queue_drop(sim *s, int i, int j)
{
    while (s->qhead[i][j]) {
        qmsg *m = s->qhead[i][j];
        s->qhead[i][j] = m->next;
        free(m->buf);
        free(m);
    }
    s->qtail[i][j] = NULL;
}

static void sim_free(sim *s)
{
    for (int i = 0; i < s->n; i++) {
        for (int j = 0; j < s->n; j++)
            queue_drop(s, i, j);
        gm_route_free(s->t[i]);
    }
    free(s);
}

static void check_invariants(sim *s)
{
    for (int d = 0; d < s->n; d++) {
        for (int i = 0; i < s->n; i++) {
            if (i == d || !s->alive[i])
                continue;
            uint8_t nh[32];
            uint16_t metric;
            uint8_t hops;
            if (gm_route_lookup(s->t[i], s->key[d], nh, &metric, &hops) != 0)
                continue;
            if (s->banned[i][d])
                fail_msg("node %d routes to withdrawn %d", i, d);
            if (metric > s->hop_limit || hops > s->hop_limit)
                fail_msg("node %d: metric %u hops %u to %d beyond hop limit", i, metric, hops, d);
            if (s->ceiling[d] && metric > s->ceiling[d])
                fail_msg("node %d: metric to %d grew to %u (ceiling %d): counting to infinity", i,
                         d, metric, s->ceiling[d]);
            int j = key_index(s, nh);
            assert_true(j >= 0);
            if (!s->link[i][j])
                fail_msg("node %d routes to %d via %d without a link", i, d, j);
            uint8_t nh2[32];
            if (s->alive[j] && gm_route_lookup(s->t[j], s->key[d], nh2, NULL, NULL) == 0 &&
                key_index(s, nh2) == i)
                fail_msg("nodes %d and %d point at each other for %d", i, j, d);
            /* Follow the chain: it must end (at d, a dead node or a blackhole). */
            int cur = i, len = 0;
            while (cur != d && s->alive[cur] &&
                   gm_route_lookup(s->t[cur], s->key[d], nh2, NULL, NULL) == 0) {
                cur = key_index(s, nh2);
                if (++len > s->n)
                    fail_msg("forwarding loop towards %d starting at %d", d, i);
            }
        }
    }
}

static void enqueue(sim *s, int i, int j, const uint8_t *buf, size_t len)
{
    qmsg *m = calloc(1, sizeof *m);
    m->buf = malloc(len);
    memcpy(m->buf, buf, len);
    m->len = len;
    if (s->qtail[i][j])
        s->qtail[i][j]->next = m;
    else
        s->qhead[i][j] = m;
    s->qtail[i][j] = m;
}

/* Node i builds its update for every neighbour, encodes and queues it. */
static void sim_send(sim *s, int i, int mode)
{
    static gm_wire_route_entry e[GM_WIRE_ROUTE_MAX_ENTRIES];
    static uint8_t buf[GM_WIRE_MSG_MAX];
    for (int j = 0; j < s->n; j++) {
        if (!s->link[i][j])
            continue;
        size_t cursor = 0, n, len;
        int more;
        do {
            /* Small pages so multi-message updates are exercised too. */
            more = gm_route_build_update(s->t[i], s->key[j], mode, s->now, &cursor, e, 5, &n,
                                         NULL);
            assert_true(more == 0 || more == 1);
            if (n == 0)
                continue;
            assert_int_equal(gm_wire_route_update_encode(e, n, buf, sizeof buf, &len, NULL), 0);
            if (s->alive[j])
                enqueue(s, i, j, buf, len);
        } while (more);
    }
    gm_route_clear_changed(s->t[i]);
    s->steps++;
    check_invariants(s);
}

static void sim_deliver(sim *s, int i, int j)
{
    static gm_wire_route_entry e[GM_WIRE_ROUTE_MAX_ENTRIES];
    qmsg *m = s->qhead[i][j];
    s->qhead[i][j] = m->next;
    if (!s->qhead[i][j])
        s->qtail[i][j] = NULL;
    size_t n;
    assert_int_equal(gm_wire_route_update_decode(m->buf, m->len, e, GM_WIRE_ROUTE_MAX_ENTRIES,
                                                 &n, NULL),
                     0);
    assert_int_equal(gm_route_update(s->t[j], s->key[i], e, n, s->now, NULL), 0);
    free(m->buf);
    free(m);
    s->steps++;
    check_invariants(s);
}

/* Random interleaving of sends (by nodes with something to say) and deliveries
 * (FIFO per link) until nothing is pending. */
static void sim_quiesce(sim *s)
{
    for (int guard = 0; guard < 100000; guard++) {
        int cand[MAXN * MAXN + MAXN][2], nc = 0;
        for (int i = 0; i < s->n; i++) {
            if (s->alive[i] && gm_route_changed(s->t[i]))
                cand[nc][0] = i, cand[nc][1] = -1, nc++;
            for (int j = 0; j < s->n; j++)
                if (s->qhead[i][j])
                    cand[nc][0] = i, cand[nc][1] = j, nc++;
        }
        if (nc == 0)
            return;
        int k = (int)(rng() % (uint64_t)nc);
        if (cand[k][1] < 0)
            sim_send(s, cand[k][0], GM_ROUTE_CHANGED);
        else
            sim_deliver(s, cand[k][0], cand[k][1]);
    }
    fail_msg("simulation did not quiesce");
}

/* One second: tick every table, periodic full updates every FULL_EVERY rounds,
 * then let triggered updates and deliveries run out. */
static void sim_round(sim *s)
{
    s->now += STEP_MS;
    s->round++;
    for (int i = 0; i < s->n; i++)
        if (s->alive[i])
            gm_route_tick(s->t[i], s->now);
    check_invariants(s);
    if (s->round % FULL_EVERY == 0)
        for (int i = 0; i < s->n; i++)
            if (s->alive[i])
                sim_send(s, i, GM_ROUTE_FULL);
    sim_quiesce(s);
}

static void sim_rounds(sim *s, int n)
{
    for (int r = 0; r < n; r++)
        sim_round(s);
}

/* Run until the forwarding state has not changed for 2.5 full-update periods. */
static void sim_settle(sim *s)
{
    static uint8_t snap[MAXN][MAXN][36], prev[MAXN][MAXN][36];
    int stable = 0;
    for (int r = 0; r < 600; r++) {
        sim_round(s);
        memset(snap, 0, sizeof snap);
        for (int i = 0; i < s->n; i++)
            for (int d = 0; d < s->n; d++)
                if (s->alive[i])
                    gm_route_lookup(s->t[i], s->key[d], snap[i][d], (uint16_t *)&snap[i][d][32],
                                    &snap[i][d][34]);
        if (memcmp(snap, prev, sizeof snap) == 0) {
            if (++stable >= FULL_EVERY * 5 / 2)
                return;
        } else {
            stable = 0;
            memcpy(prev, snap, sizeof snap);
        }
    }
    fail_msg("routing did not settle");
}

static void sim_link_up(sim *s, int a, int b)
{
    s->link[a][b] = s->link[b][a] = 1;
    assert_int_equal(gm_route_neighbour_up(s->t[a], s->key[b], 0, s->now, NULL), 0);
    assert_int_equal(gm_route_neighbour_up(s->t[b], s->key[a], 0, s->now, NULL), 0);
    /* A new connection starts with a full update each way. */
    sim_send(s, a, GM_ROUTE_FULL);
    sim_send(s, b, GM_ROUTE_FULL);
}

static void sim_link_down(sim *s, int a, int b)
{
    s->link[a][b] = s->link[b][a] = 0;
    queue_drop(s, a, b);
    queue_drop(s, b, a);
    if (s->alive[a])
        assert_true(gm_route_neighbour_down(s->t[a], s->key[b], s->now) >= 0);
    if (s->alive[b])
        assert_true(gm_route_neighbour_down(s->t[b], s->key[a], s->now) >= 0);
    check_invariants(s);
}

/* Node stops without anybody noticing: no more messages, links stay "up". */
static void sim_silence(sim *s, int a)
{
    s->alive[a] = 0;
    for (int j = 0; j < s->n; j++) {
        queue_drop(s, a, j);
        queue_drop(s, j, a);
    }
}

static int route_of(sim *s, int i, int d, int *via, uint16_t *metric)
{
    uint8_t nh[32];
    uint16_t m;
    if (gm_route_lookup(s->t[i], s->key[d], nh, &m, NULL) != 0)
        return 0;
    if (via)
        *via = key_index(s, nh);
    if (metric)
        *metric = m;
    return 1;
}

static void assert_route(sim *s, int i, int d, int via, uint16_t metric)
{
    int v = -1;
    uint16_t m = 0;
    if (!route_of(s, i, d, &v, &m))
        fail_msg("node %d has no route to %d", i, d);
    if (v != via || m != metric)
        fail_msg("node %d -> %d: via %d metric %u, expected via %d metric %u", i, d, v, m, via,
                 metric);
}

static void assert_no_route(sim *s, int i, int d)
{
    if (route_of(s, i, d, NULL, NULL))
        fail_msg("node %d still has a route to %d", i, d);
}

/* ---- simulated topologies ---- */

enum { A, B, C, D, E };

static void test_line_reaches_far_end_through_middle(void **state)
{
    (void)state;
    sim *s = sim_new(3, 1);
    sim_link_up(s, A, B);
    sim_link_up(s, B, C);
    sim_settle(s);
    assert_route(s, A, C, B, 2);
    assert_route(s, C, A, B, 2);
    assert_route(s, B, A, A, 1);
    assert_route(s, B, C, C, 1);
    assert_route(s, A, B, B, 1);
    assert_no_route(s, A, A);
    uint8_t hops, nh[32];
    assert_int_equal(gm_route_lookup(s->t[A], s->key[C], nh, NULL, &hops), 0);
    assert_int_equal(hops, 2);
    sim_free(s);
}

static void test_triangle_link_failure_reroutes_without_loops(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 8; seed++) {
        sim *s = sim_new(3, seed * 7919);
        sim_link_up(s, A, B);
        sim_link_up(s, B, C);
        sim_link_up(s, A, C);
        sim_settle(s);
        assert_route(s, A, C, C, 1);
        assert_route(s, C, A, A, 1);
        sim_link_down(s, A, C);
        sim_settle(s);
        assert_route(s, A, C, B, 2);
        assert_route(s, C, A, B, 2);
        assert_route(s, B, A, A, 1);
        /* The detour was infeasible at first: a seqno request resolved it. */
        gm_route_stats st;
        uint64_t req = 0;
        for (int i = 0; i < 3; i++) {
            gm_route_stats_get(s->t[i], &st);
            req += st.requests_sent;
        }
        assert_true(req > 0);
        sim_link_up(s, A, C);
        sim_settle(s);
        assert_route(s, A, C, C, 1);
        assert_route(s, C, A, A, 1);
        sim_free(s);
    }
}

static void test_count_to_infinity_line_retracts(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 8; seed++) {
        sim *s = sim_new(3, seed * 104729);
        sim_link_up(s, A, B);
        sim_link_up(s, B, C);
        sim_settle(s);
        s->ceiling[C] = 2;
        sim_link_down(s, B, C);
        sim_silence(s, C);
        sim_rounds(s, 100); /* well past the hold time, with periodic updates */
        assert_no_route(s, A, C);
        assert_no_route(s, B, C);
        assert_route(s, A, B, B, 1);
        sim_free(s);
    }
}

/* The case split horizon alone does not fix: a loop of three next to the lost node. */
static void test_count_to_infinity_triangle_with_pendant(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 12; seed++) {
        sim *s = sim_new(4, seed * 15485863);
        sim_link_up(s, A, B);
        sim_link_up(s, B, C);
        sim_link_up(s, A, C);
        sim_link_up(s, C, D);
        sim_settle(s);
        assert_route(s, A, D, C, 2);
        assert_route(s, B, D, C, 2);
        s->ceiling[D] = 2;
        sim_link_down(s, C, D);
        sim_silence(s, D);
        sim_rounds(s, 100);
        for (int i = A; i <= C; i++)
            assert_no_route(s, i, D);
        sim_free(s);
    }
}

static void test_silent_neighbour_routes_expire_after_hold_time(void **state)
{
    (void)state;
    gm_route_config c;
    test_config(&c);
    sim *s = sim_new(3, 42);
    sim_link_up(s, A, B);
    sim_link_up(s, B, C);
    sim_settle(s);
    /* Align with a full update so C's last refresh is now. */
    while (s->round % FULL_EVERY != 0)
        sim_round(s);
    uint64_t died = s->now;
    sim_silence(s, C);
    s->ceiling[C] = 2;
    while (s->now + STEP_MS < died + c.hold_time_ms) {
        sim_round(s);
        assert_route(s, B, C, C, 1);
        assert_route(s, A, C, B, 2);
    }
    sim_rounds(s, 2);
    assert_no_route(s, B, C);
    assert_no_route(s, A, C); /* B's retraction reached A before A's own copy expired */
    sim_rounds(s, 60);
    assert_no_route(s, A, C);
    assert_route(s, A, B, B, 1);
    sim_free(s);
}

static void test_withdrawal_at_neighbour_propagates_as_retraction(void **state)
{
    (void)state;
    sim *s = sim_new(4, 7);
    enum { R = 3 };
    sim_link_up(s, A, B);
    sim_link_up(s, B, C);
    sim_link_up(s, C, R);
    sim_settle(s);
    assert_route(s, A, R, B, 3);
    /* C learns R was revoked: drops the link and bans R. A and B have no CRL yet. */
    s->link[C][R] = s->link[R][C] = 0;
    queue_drop(s, C, R);
    queue_drop(s, R, C);
    assert_int_equal(gm_route_withdraw_destination(s->t[C], s->key[R], s->now, NULL), 0);
    assert_false(gm_route_is_neighbour(s->t[C], s->key[R]));
    gm_route_neighbour_down(s->t[R], s->key[C], s->now);
    s->banned[C][R] = 1;
    assert_true(gm_route_changed(s->t[C]));
    sim_quiesce(s);
    assert_no_route(s, B, R);
    assert_no_route(s, A, R);
    sim_rounds(s, 50);
    assert_no_route(s, A, R);
    assert_no_route(s, B, R);
    sim_free(s);
}

static void test_withdrawn_destination_not_relearned_from_stale_neighbour(void **state)
{
    (void)state;
    sim *s = sim_new(4, 99);
    enum { R = 3 };
    sim_link_up(s, A, B);
    sim_link_up(s, B, C);
    sim_link_up(s, C, R);
    sim_settle(s);
    /* A gets the CRL first: B and C are stale and keep advertising R to it. */
    assert_int_equal(gm_route_withdraw_destination(s->t[A], s->key[R], s->now, NULL), 0);
    s->banned[A][R] = 1;
    assert_no_route(s, A, R);
    sim_rounds(s, 30);
    gm_route_stats st;
    gm_route_stats_get(s->t[A], &st);
    assert_true(st.ignored_banned > 0);
    assert_int_equal(st.banned, 1);
    /* Then B. */
    assert_int_equal(gm_route_withdraw_destination(s->t[B], s->key[R], s->now, NULL), 0);
    s->banned[B][R] = 1;
    sim_rounds(s, 30);
    /* Then C, R's own neighbour, which also disconnects it. */
    assert_int_equal(gm_route_withdraw_destination(s->t[C], s->key[R], s->now, NULL), 0);
    s->banned[C][R] = 1;
    s->link[C][R] = s->link[R][C] = 0;
    queue_drop(s, C, R);
    queue_drop(s, R, C);
    gm_route_neighbour_down(s->t[R], s->key[C], s->now);
    sim_rounds(s, 60);
    for (int i = A; i <= C; i++)
        assert_no_route(s, i, R);
    assert_int_equal(gm_route_neighbour_up(s->t[C], s->key[R], 0, s->now, NULL), GM_EREVOKED);
    /* Unbanned everywhere (e.g. a new certificate), R is learned again. */
    for (int i = A; i <= C; i++) {
        assert_int_equal(gm_route_unban(s->t[i], s->key[R]), 0);
        assert_int_equal(gm_route_unban(s->t[i], s->key[R]), GM_ENOTFOUND);
        s->banned[i][R] = 0;
    }
    sim_link_up(s, C, R);
    sim_settle(s);
    assert_route(s, A, R, B, 3);
    sim_free(s);
}

static int has_entry(const gm_wire_route_entry *e, size_t n, const uint8_t *key, uint16_t *metric)
{
    for (size_t i = 0; i < n; i++)
        if (!e[i].request && memcmp(e[i].dest, key, 32) == 0) {
            if (metric)
                *metric = e[i].metric;
            return 1;
        }
    return 0;
}

static size_t build_all(gm_route_t *t, const uint8_t *nb, int mode, uint64_t now,
                        gm_wire_route_entry *e)
{
    size_t cursor = 0, n;
    assert_int_equal(gm_route_build_update(t, nb, mode, now, &cursor, e, GM_WIRE_ROUTE_MAX_ENTRIES,
                                           &n, NULL),
                     0);
    return n;
}

static void test_split_horizon_never_advertises_route_back(void **state)
{
    (void)state;
    static gm_wire_route_entry e[GM_WIRE_ROUTE_MAX_ENTRIES];
    sim *s = sim_new(3, 5);
    sim_link_up(s, A, B);
    sim_link_up(s, B, C);
    sim_settle(s);
    size_t n = build_all(s->t[B], s->key[C], GM_ROUTE_FULL, s->now, e);
    assert_true(has_entry(e, n, s->key[A], NULL));
    assert_true(has_entry(e, n, s->key[B], NULL));
    assert_false(has_entry(e, n, s->key[C], NULL));
    n = build_all(s->t[B], s->key[A], GM_ROUTE_FULL, s->now, e);
    assert_true(has_entry(e, n, s->key[C], NULL));
    assert_false(has_entry(e, n, s->key[A], NULL));
    n = build_all(s->t[A], s->key[B], GM_ROUTE_FULL, s->now, e);
    assert_int_equal(n, 1); /* only A itself: C was learned through B */
    assert_true(has_entry(e, n, s->key[A], NULL));
    /* A retraction goes to everybody, including the old next hop. */
    gm_route_clear_changed(s->t[B]);
    assert_true(gm_route_neighbour_down(s->t[B], s->key[C], s->now) > 0);
    uint16_t m = 0;
    n = build_all(s->t[B], s->key[A], GM_ROUTE_CHANGED, s->now, e);
    assert_true(has_entry(e, n, s->key[C], &m));
    assert_int_equal(m, GM_ROUTE_INF);
    s->link[B][C] = s->link[C][B] = 0;
    sim_free(s);
}

static void test_hop_limit_makes_far_nodes_unreachable(void **state)
{
    (void)state;
    sim *s = sim_new(20, 3);
    for (int i = 0; i + 1 < 20; i++)
        sim_link_up(s, i, i + 1);
    sim_settle(s);
    assert_route(s, 0, 16, 1, 16);
    assert_route(s, 16, 0, 15, 16);
    assert_no_route(s, 0, 17);
    assert_no_route(s, 19, 2);
    assert_route(s, 19, 3, 18, 16);
    sim_free(s);
}

static void test_random_meshes_stay_loop_free_and_converge_to_shortest_paths(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 6; seed++) {
        const int n = 8;
        sim *s = sim_new(n, seed * 2654435761ULL);
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++)
                if (rng() % 100 < 35)
                    sim_link_up(s, i, j);
        for (int flap = 0; flap < 25; flap++) {
            int a = (int)(rng() % n), b = (int)(rng() % n);
            if (a != b) {
                if (s->link[a][b])
                    sim_link_down(s, a, b);
                else
                    sim_link_up(s, a, b);
            }
            sim_rounds(s, (int)(rng() % 4));
        }
        sim_settle(s);
        /* Compare with breadth-first distances. */
        for (int src = 0; src < n; src++) {
            int dist[MAXN], queue[MAXN], qh = 0, qt = 0;
            for (int i = 0; i < n; i++)
                dist[i] = -1;
            dist[src] = 0;
            queue[qt++] = src;
            while (qh < qt) {
                int u = queue[qh++];
                for (int v = 0; v < n; v++)
                    if (s->link[u][v] && dist[v] < 0) {
                        dist[v] = dist[u] + 1;
                        queue[qt++] = v;
                    }
            }
            for (int d = 0; d < n; d++) {
                if (d == src)
                    continue;
                uint16_t m;
                int have = route_of(s, src, d, NULL, &m);
                if (dist[d] < 0 && have)
                    fail_msg("seed %d: %d routes to unreachable %d", (int)seed, src, d);
                if (dist[d] > 0 && (!have || m != dist[d]))
                    fail_msg("seed %d: %d -> %d metric %d, shortest %d", (int)seed, src, d,
                             have ? m : -1, dist[d]);
            }
        }
        sim_free(s);
    }
}

/* ---- single-table rules ---- */

typedef struct fixture {
    gm_route_t *t;
    uint8_t self[32], n1[32], n2[32], dst[32];
} fixture;

static int fx_setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    make_key(f->self, 0);
    make_key(f->n1, 1);
    make_key(f->n2, 2);
    make_key(f->dst, 3);
    gm_route_config c;
    test_config(&c);
    assert_int_equal(gm_route_new(&f->t, f->self, 500, &c, NULL), 0);
    assert_int_equal(gm_route_neighbour_up(f->t, f->n1, 0, 0, NULL), 0);
    assert_int_equal(gm_route_neighbour_up(f->t, f->n2, 0, 0, NULL), 0);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fixture *f = *state;
    gm_route_free(f->t);
    free(f);
    return 0;
}

static void feed(fixture *f, const uint8_t *from, const uint8_t *dest, uint64_t seqno,
                 uint16_t metric, uint8_t hops, uint64_t now)
{
    gm_wire_route_entry e;
    memset(&e, 0, sizeof e);
    memcpy(e.dest, dest, 32);
    e.seqno = seqno;
    e.metric = metric;
    e.hops = hops;
    assert_int_equal(gm_route_update(f->t, from, &e, 1, now, NULL), 0);
}

static int via(fixture *f, const uint8_t *dest, const uint8_t *nb, uint16_t metric)
{
    uint8_t nh[32];
    uint16_t m;
    return gm_route_lookup(f->t, dest, nh, &m, NULL) == 0 && memcmp(nh, nb, 32) == 0 &&
           m == metric;
}

static void test_feasibility_condition(void **state)
{
    fixture *f = *state;
    feed(f, f->n1, f->dst, 5, 1, 1, 10); /* FD becomes (5, 2) */
    assert_true(via(f, f->dst, f->n1, 2));
    feed(f, f->n2, f->dst, 5, 2, 2, 10); /* advertised 2 is not < FD 2: infeasible */
    assert_true(via(f, f->dst, f->n1, 2));
    /* Losing the feasible route leaves only the infeasible one: unreachable. */
    feed(f, f->n1, f->dst, 5, GM_ROUTE_INF, 0, 20);
    uint8_t nh[32];
    assert_int_equal(gm_route_lookup(f->t, f->dst, nh, NULL, NULL), GM_ENOTFOUND);
    /* ... and a seqno request for 6 goes to n2. */
    gm_wire_route_entry e[8];
    size_t n = build_all(f->t, f->n2, GM_ROUTE_CHANGED, 20, e);
    int found = 0;
    for (size_t i = 0; i < n; i++)
        if (e[i].request && memcmp(e[i].dest, f->dst, 32) == 0) {
            assert_true(e[i].seqno == 6);
            assert_int_equal(e[i].metric, GM_ROUTE_INF);
            assert_true(e[i].hops >= 2);
            found = 1;
        }
    assert_true(found);
    /* Same seqno with a strictly smaller metric is feasible. */
    feed(f, f->n2, f->dst, 5, 1, 1, 30);
    assert_true(via(f, f->dst, f->n2, 2));
    /* A newer seqno is feasible whatever its metric, but among feasible routes the
     * lower metric is still preferred. */
    feed(f, f->n1, f->dst, 7, 9, 9, 40);
    assert_true(via(f, f->dst, f->n2, 2));
    feed(f, f->n2, f->dst, 5, GM_ROUTE_INF, 0, 41);
    assert_true(via(f, f->dst, f->n1, 10));
    gm_route_stats st;
    gm_route_stats_get(f->t, &st);
    assert_true(st.infeasible >= 1);
}

static void test_newer_seqno_wins_over_better_metric(void **state)
{
    fixture *f = *state;
    feed(f, f->n1, f->dst, 5, 1, 1, 10);
    assert_true(via(f, f->dst, f->n1, 2));
    feed(f, f->n1, f->dst, 6, 4, 4, 11); /* our selected route gets worse but newer: FD (6,5) */
    assert_true(via(f, f->dst, f->n1, 5));
    feed(f, f->n2, f->dst, 5, 0, 0, 12); /* old seqno: infeasible even with metric 0 */
    assert_true(via(f, f->dst, f->n1, 5));
    feed(f, f->n2, f->dst, 6, 3, 3, 13); /* same seqno, 3 < 5: feasible and better */
    assert_true(via(f, f->dst, f->n2, 4));
}

static void test_selected_route_getting_worse_becomes_unfeasible(void **state)
{
    fixture *f = *state;
    feed(f, f->n1, f->dst, 5, 1, 1, 10); /* FD (5, 2) */
    feed(f, f->n1, f->dst, 5, 3, 3, 11); /* same seqno, worse: may not be used */
    uint8_t nh[32];
    assert_int_equal(gm_route_lookup(f->t, f->dst, nh, NULL, NULL), GM_ENOTFOUND);
    assert_true(gm_route_changed(f->t));
}

static void test_retraction_always_accepted(void **state)
{
    fixture *f = *state;
    feed(f, f->n1, f->dst, 9, 1, 1, 10);
    assert_true(via(f, f->dst, f->n1, 2));
    feed(f, f->n1, f->dst, 2, GM_ROUTE_INF, 0, 11); /* older seqno, still a retraction */
    uint8_t nh[32];
    assert_int_equal(gm_route_lookup(f->t, f->dst, nh, NULL, NULL), GM_ENOTFOUND);
    /* Retractions about unknown destinations create nothing. */
    uint8_t other[32];
    make_key(other, 9);
    feed(f, f->n1, other, 1, GM_ROUTE_INF, 0, 12);
    gm_route_stats st;
    gm_route_stats_get(f->t, &st);
    assert_int_equal(st.destinations, 1);
}

static void test_hop_limit_entry_is_a_retraction(void **state)
{
    fixture *f = *state;
    feed(f, f->n1, f->dst, 1, 15, 15, 10);
    uint8_t nh[32], hops;
    assert_int_equal(gm_route_lookup(f->t, f->dst, nh, NULL, &hops), 0);
    assert_int_equal(hops, 16);
    feed(f, f->n1, f->dst, 2, 16, 16, 11);
    assert_int_equal(gm_route_lookup(f->t, f->dst, nh, NULL, NULL), GM_ENOTFOUND);
    /* Metric overflow saturates to unreachable. */
    feed(f, f->n2, f->dst, 3, 0xFFFE, 1, 12);
    assert_int_equal(gm_route_lookup(f->t, f->dst, nh, NULL, NULL), GM_ENOTFOUND);
}

static void test_updates_about_self_and_from_strangers_ignored(void **state)
{
    fixture *f = *state;
    feed(f, f->n1, f->self, 99, 1, 1, 10);
    uint8_t nh[32];
    assert_int_equal(gm_route_lookup(f->t, f->self, nh, NULL, NULL), GM_ENOTFOUND);
    gm_wire_route_entry e;
    memset(&e, 0, sizeof e);
    memcpy(e.dest, f->dst, 32);
    gm_error err;
    assert_int_equal(gm_route_update(f->t, f->dst, &e, 1, 10, &err), GM_ENOTFOUND);
    assert_int_equal(gm_route_neighbour_up(f->t, f->self, 0, 0, &err), GM_EINVAL);
    assert_int_equal(gm_route_withdraw_destination(f->t, f->self, 0, &err), GM_EINVAL);
}

static void test_seqno_request_bumps_originator(void **state)
{
    fixture *f = *state;
    gm_wire_route_entry e;
    memset(&e, 0, sizeof e);
    memcpy(e.dest, f->self, 32);
    e.request = 1;
    e.metric = GM_ROUTE_INF;
    e.hops = 5;
    e.seqno = 400; /* not newer than ours (500): just re-announce */
    gm_route_clear_changed(f->t);
    assert_int_equal(gm_route_update(f->t, f->n1, &e, 1, 10, NULL), 0);
    assert_true(gm_route_self_seqno(f->t) == 500);
    assert_true(gm_route_changed(f->t));
    gm_route_clear_changed(f->t);
    e.seqno = 507;
    assert_int_equal(gm_route_update(f->t, f->n1, &e, 1, 10, NULL), 0);
    assert_true(gm_route_self_seqno(f->t) == 507);
    assert_true(gm_route_changed(f->t));
    gm_wire_route_entry out[4];
    size_t n = build_all(f->t, f->n1, GM_ROUTE_CHANGED, 10, out);
    assert_int_equal(n, 1);
    assert_true(out[0].seqno == 507);
    assert_int_equal(out[0].metric, 0);
    gm_route_bump_seqno(f->t);
    assert_true(gm_route_self_seqno(f->t) == 508);
}

static void test_seqno_request_forwarded_towards_originator(void **state)
{
    fixture *f = *state;
    feed(f, f->n1, f->dst, 5, 1, 1, 10);
    gm_route_clear_changed(f->t);
    gm_wire_route_entry e, out[8];
    memset(&e, 0, sizeof e);
    memcpy(e.dest, f->dst, 32);
    e.request = 1;
    e.metric = GM_ROUTE_INF;
    /* A request we can answer from our own route: no forwarding, a triggered update. */
    e.seqno = 5;
    e.hops = 4;
    assert_int_equal(gm_route_update(f->t, f->n2, &e, 1, 11, NULL), 0);
    assert_true(gm_route_changed(f->t));
    size_t n = build_all(f->t, f->n1, GM_ROUTE_CHANGED, 11, out);
    assert_int_equal(n, 0); /* split horizon: nothing for n1 */
    n = build_all(f->t, f->n2, GM_ROUTE_CHANGED, 11, out);
    assert_int_equal(n, 1);
    assert_false(out[0].request);
    gm_route_clear_changed(f->t);
    /* A newer seqno: forwarded to our next hop with one hop less. */
    e.seqno = 6;
    assert_int_equal(gm_route_update(f->t, f->n2, &e, 1, 12, NULL), 0);
    n = build_all(f->t, f->n1, GM_ROUTE_CHANGED, 12, out);
    assert_int_equal(n, 1);
    assert_true(out[0].request);
    assert_true(out[0].seqno == 6);
    assert_int_equal(out[0].hops, 3);
    /* Sent once; a duplicate is suppressed. */
    assert_int_equal(gm_route_update(f->t, f->n2, &e, 1, 13, NULL), 0);
    assert_int_equal(build_all(f->t, f->n1, GM_ROUTE_CHANGED, 13, out), 0);
    /* Out of hop budget: dropped. */
    e.seqno = 8;
    e.hops = 1;
    assert_int_equal(gm_route_update(f->t, f->n2, &e, 1, 14, NULL), 0);
    assert_int_equal(build_all(f->t, f->n1, GM_ROUTE_CHANGED, 14, out), 0);
}

static void test_suspect_path_is_avoided_and_a_newer_seqno_requested(void **state)
{
    fixture *f = *state;
    gm_wire_route_entry out[8];
    feed(f, f->n1, f->dst, 5, 1, 1, 10); /* via n1, metric 2, FD (5, 2) */
    feed(f, f->n2, f->dst, 5, 2, 2, 10); /* infeasible: advertised 2 is not < 2 */
    assert_true(via(f, f->dst, f->n1, 2));
    gm_route_clear_changed(f->t);
    assert_int_equal(gm_route_suspect(f->t, f->dst, f->dst, 1000, 8000, 20), GM_ENOTFOUND);
    /* n1 stops delivering: n2 is not feasible yet, so dst is unreachable while a newer
     * seqno is requested through n2 (never through the suspect n1). */
    assert_int_equal(gm_route_suspect(f->t, f->dst, f->n1, 1000, 8000, 20), 0);
    uint8_t nh[32];
    assert_int_equal(gm_route_lookup(f->t, f->dst, nh, NULL, NULL), GM_ENOTFOUND);
    assert_true(gm_route_changed(f->t));
    size_t n = build_all(f->t, f->n2, GM_ROUTE_CHANGED, 20, out);
    size_t k;
    for (k = 0; k < n && !out[k].request; k++)
        ;
    assert_true(k < n);
    assert_true(out[k].seqno == 6);
    /* The suspect n1 brings the newer seqno first: still not selected. Then n2's answer. */
    feed(f, f->n1, f->dst, 6, 1, 1, 25);
    assert_int_equal(gm_route_lookup(f->t, f->dst, nh, NULL, NULL), GM_ENOTFOUND);
    feed(f, f->n2, f->dst, 6, 2, 2, 30);
    assert_true(via(f, f->dst, f->n2, 3));
    feed(f, f->n1, f->dst, 6, 1, 1, 31);
    assert_true(via(f, f->dst, f->n2, 3));
    gm_route_stats st;
    gm_route_stats_get(f->t, &st);
    assert_true(st.suspected == 1);
    /* The suspicion ends (1000 ms from 20): n1 is back once n2 advertises 6 no better. */
    feed(f, f->n1, f->dst, 7, 1, 1, 1500);
    gm_route_tick(f->t, 1500);
    feed(f, f->n2, f->dst, 7, 2, 2, 1500);
    feed(f, f->n1, f->dst, 7, 1, 1, 1501);
    assert_true(via(f, f->dst, f->n1, 2));
    /* A second report holds the path off twice as long. */
    assert_int_equal(gm_route_suspect(f->t, f->dst, f->n1, 1000, 8000, 2000), 0);
    feed(f, f->n2, f->dst, 8, 2, 2, 2001);
    assert_true(via(f, f->dst, f->n2, 3));
    /* With no other route at all, the suspect path is still better than nothing. */
    assert_int_equal(gm_route_neighbour_down(f->t, f->n2, 2002), 1);
    feed(f, f->n1, f->dst, 8, 1, 1, 2002);
    assert_true(via(f, f->dst, f->n1, 2));
    assert_int_equal(gm_route_neighbour_up(f->t, f->n2, 0, 2003, NULL), 0);
    feed(f, f->n2, f->dst, 9, 2, 2, 2004);
    assert_true(via(f, f->dst, f->n2, 3));
    gm_route_tick(f->t, 3500);
    feed(f, f->n1, f->dst, 9, 1, 1, 3500);
    assert_true(via(f, f->dst, f->n2, 3));
}

static void test_older_seqno_from_same_neighbour_refused(void **state)
{
    fixture *f = *state;
    feed(f, f->n1, f->dst, 9, 3, 3, 10);
    feed(f, f->n1, f->dst, 8, 1, 1, 11); /* a replay of an older announcement */
    assert_true(via(f, f->dst, f->n1, 4));
    gm_route_stats st;
    gm_route_stats_get(f->t, &st);
    assert_true(st.stale_seqno == 1);
}

static void test_neighbour_down_retracts_and_cost_change_reroutes(void **state)
{
    fixture *f = *state;
    feed(f, f->n1, f->dst, 5, 1, 1, 10);
    feed(f, f->n2, f->dst, 5, 0, 0, 10); /* n2 ... claims to be one hop: metric 1 */
    assert_true(via(f, f->dst, f->n2, 1));
    assert_int_equal(gm_route_neighbour_up(f->t, f->n2, 5, 11, NULL), 0); /* now costs 5 */
    /* n2's advertisement stays feasible (0 < FD 1) while n1's is not (1 is not < 1):
     * keep n2 at the higher cost rather than risk a loop through n1. */
    assert_true(via(f, f->dst, f->n2, 5));
    feed(f, f->n1, f->dst, 6, 1, 1, 12);
    assert_true(via(f, f->dst, f->n1, 2));
    gm_route_clear_changed(f->t);
    assert_int_equal(gm_route_neighbour_down(f->t, f->n1, 13), 1);
    assert_int_equal(gm_route_neighbour_down(f->t, f->n1, 13), GM_ENOTFOUND);
    assert_false(gm_route_is_neighbour(f->t, f->n1));
    gm_wire_route_entry out[8];
    uint16_t m = 0;
    size_t n = build_all(f->t, f->n2, GM_ROUTE_CHANGED, 13, out);
    assert_true(has_entry(out, n, f->dst, &m));
    assert_int_equal(m, GM_ROUTE_INF);
    /* Retractions stay in full updates for the hold time, then stop. */
    n = build_all(f->t, f->n2, GM_ROUTE_FULL, 13 + 1000, out);
    assert_true(has_entry(out, n, f->dst, &m));
    n = build_all(f->t, f->n2, GM_ROUTE_FULL, 13 + 3600000, out);
    assert_false(has_entry(out, n, f->dst, NULL));
}

static int changes;
static void on_change(void *ud, const uint8_t *dest, const uint8_t *next_hop, uint16_t metric,
                      uint8_t hops)
{
    fixture *f = ud;
    assert_memory_equal(dest, f->dst, 32);
    if (changes == 0) {
        assert_non_null(next_hop);
        assert_memory_equal(next_hop, f->n1, 32);
        assert_int_equal(metric, 3);
        assert_int_equal(hops, 3);
    } else {
        assert_null(next_hop);
        assert_int_equal(metric, GM_ROUTE_INF);
    }
    changes++;
}

static void test_change_callback_reports_selection(void **state)
{
    fixture *f = *state;
    changes = 0;
    gm_route_set_change_cb(f->t, on_change, f);
    feed(f, f->n1, f->dst, 5, 2, 2, 10);
    feed(f, f->n1, f->dst, 5, 2, 2, 11); /* refresh only: no callback */
    assert_int_equal(changes, 1);
    assert_int_equal(gm_route_withdraw_destination(f->t, f->dst, 12, NULL), 0);
    assert_int_equal(changes, 2);
    assert_true(gm_route_is_banned(f->t, f->dst));
    feed(f, f->n1, f->dst, 6, 1, 1, 13); /* ignored while banned */
    assert_int_equal(changes, 2);
}

static int count_routes(void *ud, const gm_route_info *info)
{
    int *n = ud;
    (*n)++;
    assert_true(info->age_ms == 90);
    return 0;
}

static void test_foreach_and_stats(void **state)
{
    fixture *f = *state;
    uint8_t cert[16];
    memset(cert, 0x42, sizeof cert);
    gm_wire_route_entry e;
    memset(&e, 0, sizeof e);
    memcpy(e.dest, f->dst, 32);
    e.seqno = 3;
    e.metric = 1;
    e.hops = 1;
    e.has_cert_id = 1;
    memcpy(e.cert_id, cert, 16);
    assert_int_equal(gm_route_update(f->t, f->n1, &e, 1, 10, NULL), 0);
    e.metric = 4;
    assert_int_equal(gm_route_update(f->t, f->n2, &e, 1, 10, NULL), 0);
    int n = 0;
    gm_route_foreach(f->t, 100, count_routes, &n);
    assert_int_equal(n, 2);
    gm_route_stats st;
    gm_route_stats_get(f->t, &st);
    assert_int_equal(st.destinations, 1);
    assert_int_equal(st.reachable, 1);
    assert_int_equal(st.routes, 2);
    assert_int_equal(st.neighbours, 2);
    /* The cert_id travels on with the route. */
    gm_wire_route_entry out[8];
    uint8_t other[32];
    make_key(other, 7);
    assert_int_equal(gm_route_neighbour_up(f->t, other, 0, 10, NULL), 0);
    size_t k = build_all(f->t, other, GM_ROUTE_FULL, 10, out);
    int seen = 0;
    for (size_t i = 0; i < k; i++)
        if (memcmp(out[i].dest, f->dst, 32) == 0) {
            assert_true(out[i].has_cert_id);
            assert_memory_equal(out[i].cert_id, cert, 16);
            seen = 1;
        }
    assert_true(seen);
    /* Our own cert_id goes with our self route. */
    gm_route_set_self_cert_id(f->t, cert);
    k = build_all(f->t, other, GM_ROUTE_FULL, 10, out);
    assert_memory_equal(out[0].dest, f->self, 32);
    assert_true(out[0].has_cert_id);
}

static void test_bounds_refuse_beyond_limits(void **state)
{
    (void)state;
    gm_route_config c;
    gm_route_config_default(&c);
    c.max_destinations = 8;
    c.max_routes = 10;
    c.max_neighbours = 2;
    c.max_banned = 2;
    uint8_t self[32], n[3][32], d[20][32];
    make_key(self, 0);
    gm_route_t *t;
    gm_error err;
    assert_int_equal(gm_route_new(&t, self, 1, &c, NULL), 0);
    for (int i = 0; i < 3; i++)
        make_key(n[i], 1 + i);
    assert_int_equal(gm_route_neighbour_up(t, n[0], 0, 0, NULL), 0);
    assert_int_equal(gm_route_neighbour_up(t, n[1], 0, 0, NULL), 0);
    assert_int_equal(gm_route_neighbour_up(t, n[2], 0, 0, &err), GM_ETOOBIG);
    assert_int_equal(gm_route_neighbour_up(t, n[1], 3, 0, NULL), 0); /* cost change is fine */
    gm_wire_route_entry e[20];
    memset(e, 0, sizeof e);
    for (int i = 0; i < 20; i++) {
        make_key(d[i], 10 + i);
        memcpy(e[i].dest, d[i], 32);
        e[i].seqno = 1;
        e[i].metric = 1;
        e[i].hops = 1;
    }
    assert_int_equal(gm_route_update(t, n[0], e, 20, 0, NULL), 0);
    assert_int_equal(gm_route_update(t, n[1], e, 20, 0, NULL), 0);
    gm_route_stats st;
    gm_route_stats_get(t, &st);
    assert_int_equal(st.destinations, 8);
    assert_int_equal(st.routes, 10);
    assert_true(st.refused_full == 12 + 18);
    assert_int_equal(gm_route_withdraw_destination(t, d[0], 1, NULL), 0);
    assert_int_equal(gm_route_withdraw_destination(t, d[0], 1, NULL), 0); /* idempotent */
    assert_int_equal(gm_route_withdraw_destination(t, d[1], 1, NULL), 0);
    assert_int_equal(gm_route_withdraw_destination(t, d[2], 1, &err), GM_ETOOBIG);
    /* Freed room is usable again once the dead records age out. */
    gm_route_tick(t, 1 + c.hold_time_ms); /* routes expire, retractions start */
    gm_route_tick(t, 2 + 2 * c.hold_time_ms + c.source_gc_ms);
    gm_route_stats_get(t, &st);
    assert_int_equal(st.destinations, 0);
    assert_int_equal(st.routes, 0);
    gm_route_free(t);
    /* Nonsense configurations are refused. */
    c.hop_limit = 0;
    assert_int_equal(gm_route_new(&t, self, 1, &c, &err), GM_EINVAL);
    assert_null(t);
}

static void test_build_update_pages_large_tables(void **state)
{
    (void)state;
    gm_route_config c;
    gm_route_config_default(&c);
    uint8_t self[32], nb[32], other[32];
    make_key(self, 0);
    make_key(nb, 1);
    make_key(other, 2);
    gm_route_t *t;
    assert_int_equal(gm_route_new(&t, self, 1, &c, NULL), 0);
    assert_int_equal(gm_route_neighbour_up(t, nb, 0, 0, NULL), 0);
    assert_int_equal(gm_route_neighbour_up(t, other, 0, 0, NULL), 0);
    static gm_wire_route_entry e[1200];
    memset(e, 0, sizeof e);
    for (int i = 0; i < 1200; i++) {
        e[i].dest[0] = 0x80;
        e[i].dest[1] = (uint8_t)(i >> 8);
        e[i].dest[2] = (uint8_t)i;
        e[i].seqno = 1;
        e[i].metric = 2;
        e[i].hops = 2;
    }
    assert_int_equal(gm_route_update(t, nb, e, 1200, 0, NULL), 0);
    static gm_wire_route_entry out[GM_WIRE_ROUTE_MAX_ENTRIES];
    static uint8_t buf[GM_WIRE_MSG_MAX];
    size_t cursor = 0, n, total = 0, len;
    int rc, pages = 0;
    do {
        rc = gm_route_build_update(t, other, GM_ROUTE_FULL, 0, &cursor, out,
                                   GM_WIRE_ROUTE_MAX_ENTRIES, &n, NULL);
        assert_true(rc == 0 || rc == 1);
        assert_true(n <= GM_WIRE_ROUTE_MAX_ENTRIES);
        if (n)
            assert_int_equal(gm_wire_route_update_encode(out, n, buf, sizeof buf, &len, NULL), 0);
        total += n;
        pages++;
    } while (rc == 1);
    assert_int_equal(total, 1201);
    assert_int_equal(pages, 3);
    gm_route_free(t);
}

/* ---- signed route origins ---- */

static void test_route_origin_checks_what_a_relay_may_claim(void **state)
{
    (void)state;
    uint8_t dpk[32], dsk[64], seed[32] = {3}, self[32], relay[32], fh[32];
    assert_int_equal(sodium_init() < 0, 0);
    crypto_sign_seed_keypair(dpk, dsk, seed);
    memset(self, 0x11, 32);
    memset(relay, 0x22, 32);
    memset(fh, 0x33, 32);
    const uint64_t now = 1800000000;
    gm_wire_route_entry e, r;
    memset(&e, 0, sizeof e);
    memcpy(e.dest, dpk, 32);
    e.seqno = 77;
    e.has_cert_id = 1;
    memset(e.cert_id, 0xcd, 16);
    /* Only the destination signs, and only a route with a certificate. */
    uint8_t other_sk[64], other_pk[32];
    crypto_sign_keypair(other_pk, other_sk);
    assert_int_equal(gm_route_origin_sign(&e, self, now, other_sk, NULL), GM_EINVAL);
    assert_int_equal(gm_route_origin_sign(&e, self, now, dsk, NULL), 0);
    assert_true(e.has_origin);
    /* dest's own entry, signed for us. */
    assert_int_equal(gm_route_origin_check(&e, dpk, self, now), GM_ORIGIN_OK);
    assert_int_equal(gm_route_origin_check(&e, dpk, relay, now), GM_ORIGIN_NOT_FOR_US);
    r = e;
    r.metric = 1;
    assert_int_equal(gm_route_origin_check(&r, dpk, self, now), GM_ORIGIN_BAD_METRIC);
    /* A relay repeating it: not as dest, not as dest's neighbour (dest signed for us, not it). */
    r = e;
    assert_int_equal(gm_route_origin_check(&r, relay, self, now), GM_ORIGIN_IMPERSONATION);
    r.metric = 1;
    r.hops = 1;
    assert_int_equal(gm_route_origin_check(&r, relay, self, now), GM_ORIGIN_LOOP);
    /* Signed for the relay: it may say "one hop", with metric >= hops. */
    assert_int_equal(gm_route_origin_sign(&r, relay, now, dsk, NULL), 0);
    assert_int_equal(gm_route_origin_check(&r, relay, self, now), GM_ORIGIN_OK);
    r.metric = 5;
    assert_int_equal(gm_route_origin_check(&r, relay, self, now), GM_ORIGIN_OK);
    /* Signed for fh: the relay is at least 2 hops away. */
    assert_int_equal(gm_route_origin_sign(&r, fh, now, dsk, NULL), 0);
    r.metric = 1;
    r.hops = 1;
    assert_int_equal(gm_route_origin_check(&r, relay, self, now), GM_ORIGIN_FALSE_ADJACENCY);
    r.hops = 2;
    assert_int_equal(gm_route_origin_check(&r, relay, self, now), GM_ORIGIN_BAD_METRIC);
    r.metric = 2;
    assert_int_equal(gm_route_origin_check(&r, relay, self, now), GM_ORIGIN_OK);
    /* Age: at most max age old, at most the skew in the future. */
    assert_int_equal(gm_route_origin_check(&r, relay, self, now + GM_ROUTE_ORIGIN_MAX_AGE_S), GM_ORIGIN_OK);
    assert_int_equal(gm_route_origin_check(&r, relay, self, now + GM_ROUTE_ORIGIN_MAX_AGE_S + 1), GM_ORIGIN_STALE);
    assert_int_equal(gm_route_origin_check(&r, relay, self, now - GM_ROUTE_ORIGIN_SKEW_S - 1), GM_ORIGIN_STALE);
    /* Missing origin or certificate; retractions and requests need none. */
    gm_wire_route_entry m = r;
    m.has_origin = 0;
    assert_int_equal(gm_route_origin_check(&m, relay, self, now), GM_ORIGIN_MISSING);
    m.metric = GM_ROUTE_INF;
    assert_int_equal(gm_route_origin_check(&m, relay, self, now), GM_ORIGIN_OK);
    assert_string_equal(gm_route_origin_fault_name(GM_ORIGIN_FALSE_ADJACENCY), "false_adjacency");

    /* Signatures, through the cache: one verification, then hits; any changed byte fails. */
    gm_route_origin_cache_t *c;
    gm_route_origin_stats st;
    assert_int_equal(gm_route_origin_cache_new(&c, 16, NULL), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(gm_route_origin_verify(c, &r, NULL), 0);
    gm_route_origin_stats_get(c, &st);
    assert_true(st.verified == 1 && st.hits == 2 && st.failed == 0);
    /* Metric and hops are not signed (a relay's own costs): same origin, still a hit. */
    r.metric = 9;
    assert_int_equal(gm_route_origin_verify(c, &r, NULL), 0);
    gm_wire_route_entry t = r;
    t.seqno++;
    assert_int_equal(gm_route_origin_verify(c, &t, NULL), GM_ESIG);
    t = r;
    t.cert_id[0] ^= 1;
    assert_int_equal(gm_route_origin_verify(c, &t, NULL), GM_ESIG);
    t = r;
    t.origin.first_hop[3] ^= 1;
    assert_int_equal(gm_route_origin_verify(c, &t, NULL), GM_ESIG);
    t = r;
    t.origin.time++;
    assert_int_equal(gm_route_origin_verify(c, &t, NULL), GM_ESIG);
    t = r;
    t.origin.sig[63] ^= 1;
    assert_int_equal(gm_route_origin_verify(c, &t, NULL), GM_ESIG);
    gm_route_origin_stats_get(c, &st);
    assert_true(st.verified == 1 && st.failed == 5);
    gm_route_origin_cache_free(c);

    /* On the wire: the origin round-trips; an origin without cert_id is malformed. */
    uint8_t buf[512], buf2[512];
    size_t len, n;
    gm_wire_route_entry out[2];
    assert_int_equal(gm_wire_route_update_encode(&r, 1, buf, sizeof buf, &len, NULL), 0);
    assert_int_equal(len, 3 + GM_WIRE_ROUTE_ENTRY_MAX);
    assert_int_equal(gm_wire_route_update_decode(buf, len, out, 2, &n, NULL), 0);
    assert_int_equal(n, 1);
    assert_true(out[0].has_origin && out[0].origin.time == r.origin.time);
    assert_memory_equal(out[0].origin.sig, r.origin.sig, 64);
    assert_int_equal(gm_route_origin_verify(NULL, &out[0], NULL), 0);
    t = r;
    t.has_cert_id = 0;
    assert_int_equal(gm_wire_route_update_encode(&t, 1, buf2, sizeof buf2, &len, NULL), GM_EPROTO);
    buf[3 + 43] = GM_WIRE_ROUTE_F_ORIGIN; /* flags: origin without cert_id */
    assert_int_not_equal(gm_wire_route_update_decode(buf, 3 + GM_WIRE_ROUTE_ENTRY_MAX - 16, out, 2, &n, NULL), 0);
    assert_true(GM_WIRE_ROUTE_FIT_ENTRIES * GM_WIRE_ROUTE_ENTRY_MAX + 3 <= GM_WIRE_MSG_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_reaches_far_end_through_middle),
        cmocka_unit_test(test_triangle_link_failure_reroutes_without_loops),
        cmocka_unit_test(test_count_to_infinity_line_retracts),
        cmocka_unit_test(test_count_to_infinity_triangle_with_pendant),
        cmocka_unit_test(test_silent_neighbour_routes_expire_after_hold_time),
        cmocka_unit_test(test_withdrawal_at_neighbour_propagates_as_retraction),
        cmocka_unit_test(test_withdrawn_destination_not_relearned_from_stale_neighbour),
        cmocka_unit_test(test_split_horizon_never_advertises_route_back),
        cmocka_unit_test(test_hop_limit_makes_far_nodes_unreachable),
        cmocka_unit_test(test_random_meshes_stay_loop_free_and_converge_to_shortest_paths),
        cmocka_unit_test_setup_teardown(test_feasibility_condition, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_newer_seqno_wins_over_better_metric, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_selected_route_getting_worse_becomes_unfeasible,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_retraction_always_accepted, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_hop_limit_entry_is_a_retraction, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_updates_about_self_and_from_strangers_ignored,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_seqno_request_bumps_originator, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_seqno_request_forwarded_towards_originator,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_suspect_path_is_avoided_and_a_newer_seqno_requested,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_older_seqno_from_same_neighbour_refused, fx_setup,
                                        fx_teardown),
        cmocka_unit_test(test_route_origin_checks_what_a_relay_may_claim),
        cmocka_unit_test_setup_teardown(test_neighbour_down_retracts_and_cost_change_reroutes,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_change_callback_reports_selection, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_foreach_and_stats, fx_setup, fx_teardown),
        cmocka_unit_test(test_bounds_refuse_beyond_limits),
        cmocka_unit_test(test_build_update_pages_large_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
