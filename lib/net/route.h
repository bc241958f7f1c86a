/* Distance-vector routing table (Babel-style, RFC 8966 ideas) keyed by the 32-byte
 * Ed25519 public keys of nodes. Pure state machine: no I/O and no clock; every
 * call that depends on time takes now_ms (any monotonic millisecond clock).
 *
 * - Every node originates a route to itself with its own sequence number (seqno,
 *   u64, never wraps; seed it from the wall clock so a restarted node outranks
 *   what the mesh remembers of its previous run).
 * - A route learned from neighbour N has metric = N's advertised metric + link
 *   cost (saturating; 0xFFFF = unreachable) and hops = N's hops + 1; more hops
 *   than the hop limit is unreachable.
 * - Feasibility: per destination we keep the feasibility distance FD = (seqno,
 *   metric) of the best route we have advertised. An update (s, m) is feasible iff
 *   there is no FD, s > FD.seqno, or s == FD.seqno and m < FD.metric (m being the
 *   neighbour's advertised metric). Only feasible routes are selected, which keeps
 *   the mesh loop-free at every instant and rules out counting to infinity.
 *   Retractions (metric 0xFFFF) are always accepted.
 * - When a destination has routes but none feasible (starvation) we ask its
 *   originator for a newer seqno with a seqno request entry (forwarded hop by hop
 *   towards the originator, at most hop-limit hops); the originator bumps its
 *   seqno and the fresh routes are feasible again.
 * - Split horizon: a route is not advertised to the neighbour it goes through
 *   (retractions are sent to everybody). Stale copies at that neighbour expire.
 * - Entries may carry the destination's signed origin (route_origin.h): the table stores
 *   it with the route and relays it unchanged; checking it is the caller's job. A
 *   neighbour's seqno for a destination never goes down (an older one is refused).
 * - A route reported as not delivering (gm_route_suspect) is selected only when no other
 *   route to its destination exists.
 * - Routes not refreshed within hold_time_ms expire; a destination that becomes
 *   unreachable is advertised as a retraction for hold_time_ms.
 */
#ifndef GM_ROUTE_H
#define GM_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "gm/error.h"
#include "wire.h"

#define GM_ROUTE_KEY_LEN GM_WIRE_KEY_LEN
#define GM_ROUTE_INF GM_WIRE_METRIC_INF
/* Suggested period of full updates; hold time defaults to 3.5 periods. */
#define GM_ROUTE_UPDATE_INTERVAL_MS 10000

typedef struct gm_route gm_route_t;

typedef struct gm_route_config {
    size_t max_destinations; /* distinct destinations remembered (default 4096) */
    size_t max_routes;       /* (destination, neighbour) routes stored (default 16384) */
    size_t max_neighbours;   /* default 64 */
    size_t max_banned;       /* withdrawn destinations remembered (default 4096) */
    uint8_t hop_limit;       /* default 16 */
    uint16_t link_cost;      /* cost of a neighbour link when none is given (default 1) */
    uint64_t hold_time_ms;   /* route expiry (default 35000) */
    uint64_t source_gc_ms;   /* how long a forgotten destination's FD is kept (default 180000) */
    uint64_t request_retry_ms; /* resend an unanswered seqno request after (default 2000) */
} gm_route_config;

void gm_route_config_default(gm_route_config *cfg);

/* One stored route, as shown by status output. */
typedef struct gm_route_info {
    uint8_t dest[GM_ROUTE_KEY_LEN];
    uint8_t next_hop[GM_ROUTE_KEY_LEN]; /* neighbour it was learned from */
    uint64_t seqno;
    uint16_t metric;     /* ours: advertised + link cost */
    uint8_t hops;
    uint8_t selected;    /* the route used for forwarding and advertised */
    uint8_t feasible;
    uint8_t has_cert_id;
    uint8_t cert_id[GM_WIRE_CERT_ID_LEN];
    uint64_t age_ms;     /* since last refreshed */
} gm_route_info;

typedef struct gm_route_stats {
    size_t destinations; /* records, reachable or not */
    size_t reachable;
    size_t routes;
    size_t neighbours;
    size_t banned;
    uint64_t refused_full;    /* entries dropped because a bound was reached */
    uint64_t ignored_banned;  /* entries about withdrawn destinations */
    uint64_t infeasible;      /* updates stored but not selectable */
    uint64_t requests_sent;   /* seqno requests emitted (originated or forwarded) */
    uint64_t stale_seqno;     /* updates refused: seqno below what that neighbour said before */
    uint64_t suspected;       /* paths reported as not delivering (gm_route_suspect) */
} gm_route_stats;

/* Called whenever the selected route of a destination changes: next_hop is NULL
 * when it became unreachable. Must not call back into the table. */
typedef void (*gm_route_change_fn)(void *ud, const uint8_t dest[GM_ROUTE_KEY_LEN],
                                   const uint8_t *next_hop, uint16_t metric, uint8_t hops);

/* cfg NULL = defaults. initial_seqno: this node's first seqno. */
int gm_route_new(gm_route_t **out, const uint8_t self_key[GM_ROUTE_KEY_LEN],
                 uint64_t initial_seqno, const gm_route_config *cfg, gm_error *err);
void gm_route_free(gm_route_t *t);

/* cert_id of our own certificate, advertised with our self route (NULL: none). */
void gm_route_set_self_cert_id(gm_route_t *t, const uint8_t *cert_id);
uint64_t gm_route_self_seqno(const gm_route_t *t);
/* Increase our own seqno (triggered change, e.g. new certificate); marks a change. */
void gm_route_bump_seqno(gm_route_t *t);

/* Add a neighbour, or change its link cost (cost 0 = configured default). Routes
 * are learned from it only once added. GM_ETOOBIG beyond max_neighbours. */
int gm_route_neighbour_up(gm_route_t *t, const uint8_t key[GM_ROUTE_KEY_LEN], uint16_t cost,
                          uint64_t now_ms, gm_error *err);
/* Forget a neighbour and every route learned through it; destinations left
 * without a route are retracted in the next updates. Returns the number of
 * destinations whose selected route changed, or GM_ENOTFOUND. */
int gm_route_neighbour_down(gm_route_t *t, const uint8_t key[GM_ROUTE_KEY_LEN], uint64_t now_ms);
int gm_route_is_neighbour(const gm_route_t *t, const uint8_t key[GM_ROUTE_KEY_LEN]);

/* Apply a ROUTE_UPDATE received from neighbour (route entries and seqno
 * requests). Entries beyond the table's bounds or about banned destinations are
 * dropped (counted in stats). GM_ENOTFOUND if neighbour was never added. */
int gm_route_update(gm_route_t *t, const uint8_t neighbour[GM_ROUTE_KEY_LEN],
                    const gm_wire_route_entry *entries, size_t n, uint64_t now_ms, gm_error *err);

/* Revoked identity: drop every route to key and through key (if a neighbour),
 * retract it, and ignore updates about it until gm_route_unban. Idempotent. */
int gm_route_withdraw_destination(gm_route_t *t, const uint8_t key[GM_ROUTE_KEY_LEN],
                                  uint64_t now_ms, gm_error *err);
/* Returns 0, or GM_ENOTFOUND if key was not banned. */
int gm_route_unban(gm_route_t *t, const uint8_t key[GM_ROUTE_KEY_LEN]);
int gm_route_is_banned(const gm_route_t *t, const uint8_t key[GM_ROUTE_KEY_LEN]);

/* Housekeeping, call every second or so: expire routes not refreshed within the
 * hold time, resend unanswered seqno requests, forget dead destinations.
 * Returns the number of destinations whose selected route changed. */
int gm_route_tick(gm_route_t *t, uint64_t now_ms);

/* 1 when a triggered update should be sent (a selected route changed, our seqno
 * changed, or a seqno request is waiting to go out). */
int gm_route_changed(const gm_route_t *t);
/* Call after the triggered updates for every neighbour have been built. */
void gm_route_clear_changed(gm_route_t *t);
void gm_route_set_change_cb(gm_route_t *t, gm_route_change_fn fn, void *ud);

#define GM_ROUTE_FULL 0    /* every destination: periodic update, new neighbour */
#define GM_ROUTE_CHANGED 1 /* only what changed since gm_route_clear_changed */

/* Build the entries of the update for neighbour (split horizon applied; seqno
 * requests addressed to it included and marked sent). Fills out[0..cap) (cap >= 2,
 * at most GM_WIRE_ROUTE_MAX_ENTRIES are used) and sets *n. Start with *cursor = 0;
 * returns 1 if more entries remain (send this batch, call again with the same
 * cursor), 0 when done, or a negative code. Do not modify the table between the
 * calls of one round. *n may be 0 (nothing to send). */
int gm_route_build_update(gm_route_t *t, const uint8_t neighbour[GM_ROUTE_KEY_LEN], int mode,
                          uint64_t now_ms, size_t *cursor, gm_wire_route_entry *out, size_t cap,
                          size_t *n, gm_error *err);

/* Next hop towards dest; 0, or GM_ENOTFOUND if unreachable, banned or dest is us.
 * metric/hops may be NULL. */
int gm_route_lookup(const gm_route_t *t, const uint8_t dest[GM_ROUTE_KEY_LEN],
                    uint8_t next_hop[GM_ROUTE_KEY_LEN], uint16_t *metric, uint8_t *hops);

/* The path to dest through neighbour stopped delivering (end-to-end evidence): for base_ms,
 * doubled at every repeated report (at most max_ms), it is not selected while any other
 * route exists; if the others are not feasible, dest is unreachable until its newer seqno
 * (requested through the best other route) arrives. 0, or GM_ENOTFOUND: no such route. */
int gm_route_suspect(gm_route_t *t, const uint8_t dest[GM_ROUTE_KEY_LEN],
                     const uint8_t neighbour[GM_ROUTE_KEY_LEN], uint64_t base_ms, uint64_t max_ms,
                     uint64_t now_ms);

/* Visit every stored route (by destination key order, then neighbour); fn returns
 * nonzero to stop. */
void gm_route_foreach(const gm_route_t *t, uint64_t now_ms,
                      int (*fn)(void *ud, const gm_route_info *info), void *ud);
void gm_route_stats_get(const gm_route_t *t, gm_route_stats *s);

#endif
