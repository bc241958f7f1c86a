/* Fuzz the routing table with arbitrary sequences of neighbour changes, updates
 * (valid or not), ticks, withdrawals and update builds; after every operation the
 * table must stay within its bounds, route only through neighbours, within the
 * hop limit, never to a withdrawn destination, and build encodable updates. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "route.h"
#include "wire.h"

#define NKEYS 8

static uint8_t keys[NKEYS][32];
static gm_wire_route_entry e[GM_WIRE_ROUTE_MAX_ENTRIES];
static uint8_t buf[GM_WIRE_MSG_MAX];

static int visit(void *ud, const gm_route_info *info)
{
    (void)ud;
    if (info->hops == 0 || info->metric == 0)
        abort();
    return 0;
}

static void check(gm_route_t *t, const gm_route_config *c, uint64_t now)
{
    for (int d = 0; d < NKEYS; d++) {
        uint8_t nh[32], hops;
        uint16_t metric;
        if (gm_route_lookup(t, keys[d], nh, &metric, &hops) != 0)
            continue;
        if (d == 0 || gm_route_is_banned(t, keys[d]) || !gm_route_is_neighbour(t, nh) ||
            hops > c->hop_limit || hops == 0 || metric == GM_ROUTE_INF)
            abort();
    }
    gm_route_stats st;
    gm_route_stats_get(t, &st);
    if (st.destinations > c->max_destinations || st.routes > c->max_routes ||
        st.neighbours > c->max_neighbours || st.reachable > st.destinations)
        abort();
    gm_route_foreach(t, now, visit, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int i = 0; i < NKEYS; i++) {
        memset(keys[i], 0x5a, 32);
        keys[i][0] = (uint8_t)i;
    }
    gm_route_config c;
    gm_route_config_default(&c);
    c.max_destinations = 6;
    c.max_routes = 12;
    c.max_neighbours = 4;
    c.max_banned = 3;
    c.hop_limit = 6;
    gm_route_t *t;
    if (gm_route_new(&t, keys[0], 100, &c, NULL) != 0)
        abort();
    uint64_t now = 1000;
    size_t i = 0;
#define NEXT() (i < size ? data[i++] : 0)
    while (i < size) {
        uint8_t op = NEXT() % 8, k = NEXT() % NKEYS;
        switch (op) {
        case 0:
            gm_route_neighbour_up(t, keys[k], NEXT(), now, NULL);
            break;
        case 1:
            gm_route_neighbour_down(t, keys[k], now);
            break;
        case 2: {
            size_t n = NEXT() % 9;
            memset(e, 0, n * sizeof *e);
            for (size_t j = 0; j < n; j++) {
                uint8_t dk = NEXT() % NKEYS, m = NEXT(), flags = NEXT();
                memcpy(e[j].dest, keys[dk], 32);
                e[j].seqno = 98 + NEXT() % 8;
                e[j].metric = m == 0xff ? GM_ROUTE_INF : m % 12;
                e[j].hops = NEXT() % 10;
                e[j].request = flags & 1;
                e[j].has_cert_id = (flags >> 1) & 1;
                e[j].cert_id[0] = flags;
            }
            gm_route_update(t, keys[k], e, n, now, NULL);
            break;
        }
        case 3:
            now += (uint64_t)NEXT() * 500;
            gm_route_tick(t, now);
            break;
        case 4:
            gm_route_withdraw_destination(t, keys[k], now, NULL);
            break;
        case 5:
            gm_route_unban(t, keys[k]);
            break;
        case 6: {
            size_t cursor = 0, n, len;
            int rc, mode = NEXT() & 1;
            size_t cap = 2 + NEXT() % 5;
            do {
                rc = gm_route_build_update(t, keys[k], mode, now, &cursor, e, cap, &n, NULL);
                if (rc < 0)
                    break;
                if (n > cap)
                    abort();
                if (n && gm_wire_route_update_encode(e, n, buf, sizeof buf, &len, NULL) != 0)
                    abort();
            } while (rc == 1);
            if (NEXT() & 1)
                gm_route_clear_changed(t);
            break;
        }
        default:
            if (k & 1)
                gm_route_bump_seqno(t);
            gm_route_set_self_cert_id(t, (k & 2) ? keys[k] : NULL);
            gm_route_changed(t);
            break;
        }
        check(t, &c, now);
    }
    gm_route_free(t);
    return 0;
}
