/* Signed route origins: a destination's own statement "I am dest, my sequence number is
 * seqno, my certificate is cert_id, and first_hop is my neighbour", made at time and signed
 * with dest's node key. It travels unchanged with every announcement of dest, so a relay
 * can only repeat what dest said (docs/protocol.md "Route origins" lists what a relay can
 * and cannot claim). Pure code: no I/O, no clock (times are passed in).
 *
 * Signed bytes: "genesis-mesh/v1/route-origin" || dest[32] || seqno u64 || time u64
 *               || cert_id[16] || first_hop[32]   (integers big-endian)
 *
 * Checks on a route entry received from neighbour sender by node self (gm_route_origin_check):
 *  - a route (not a request, not a retraction) carries a cert_id and an origin;
 *  - seqno is the origin's (it is signed), time is within [now - max_age, now + skew];
 *  - sender == dest: hops 0, metric 0 and first_hop == self (dest signed it for us);
 *  - sender != dest: hops >= 1; hops == 1 only when first_hop == sender (dest vouched that
 *    sender is its neighbour); otherwise hops >= 2; metric >= hops (every link costs >= 1);
 *    first_hop != dest; first_hop == self means the path runs through us: not usable.
 * The signature is then verified under dest's key (gm_route_origin_verify), through a
 * cache of origins already verified so a steady mesh does not verify twice. */
#ifndef GM_ROUTE_ORIGIN_H
#define GM_ROUTE_ORIGIN_H

#include <stddef.h>
#include <stdint.h>

#include "gm/error.h"
#include "wire.h"

#define GM_ROUTE_ORIGIN_LABEL "genesis-mesh/v1/route-origin"
/* An origin older than this is refused; nodes re-sign theirs every quarter of it. */
#define GM_ROUTE_ORIGIN_MAX_AGE_S 3600
#define GM_ROUTE_ORIGIN_REFRESH_S (GM_ROUTE_ORIGIN_MAX_AGE_S / 4)
/* Origins dated this far in the future (clock skew) are still accepted. */
#define GM_ROUTE_ORIGIN_SKEW_S 300

/* Why gm_route_origin_check refused an entry (0 = acceptable). */
typedef enum gm_route_origin_fault {
    GM_ORIGIN_OK = 0,
    GM_ORIGIN_MISSING,      /* route without cert_id or origin */
    GM_ORIGIN_STALE,        /* time outside [now - max age, now + skew] */
    GM_ORIGIN_IMPERSONATION,/* hops/metric 0 from someone who is not dest */
    GM_ORIGIN_FALSE_ADJACENCY, /* hops 1 but dest did not sign for sender */
    GM_ORIGIN_BAD_METRIC,   /* metric < hops, or dest's own entry not hops 0 metric 0 */
    GM_ORIGIN_NOT_FOR_US,   /* dest's own entry signed for another neighbour */
    GM_ORIGIN_LOOP,         /* the path runs through us (first_hop == self) */
    GM_ORIGIN_N
} gm_route_origin_fault;

const char *gm_route_origin_fault_name(gm_route_origin_fault f);

/* The bytes signed for e's origin (e->dest, e->seqno, e->cert_id, e->origin.time and
 * e->origin.first_hop); out must hold GM_ROUTE_ORIGIN_SIGNED_LEN bytes. */
#define GM_ROUTE_ORIGIN_SIGNED_LEN (sizeof(GM_ROUTE_ORIGIN_LABEL) - 1 + 32 + 8 + 8 + 16 + 32)
void gm_route_origin_signed_bytes(const gm_wire_route_entry *e, uint8_t out[GM_ROUTE_ORIGIN_SIGNED_LEN]);

/* Sign e as its destination: e->dest must be the public half of sk (libsodium 64-byte
 * secret key), e->has_cert_id set. Fills e->origin and sets e->has_origin. */
int gm_route_origin_sign(gm_wire_route_entry *e, const uint8_t first_hop[GM_WIRE_KEY_LEN],
                         uint64_t time_s, const uint8_t sk[64], gm_error *err);

/* Structural checks above (no signature); retractions and requests are always GM_ORIGIN_OK. */
gm_route_origin_fault gm_route_origin_check(const gm_wire_route_entry *e,
                                            const uint8_t sender[GM_WIRE_KEY_LEN],
                                            const uint8_t self[GM_WIRE_KEY_LEN], uint64_t now_s);

/* Cache of verified origins: 4-way set-associative (LRU within a set), keyed by a keyed hash
 * of the whole origin; an entry is only a hit when every signed byte and the signature are
 * identical. */
typedef struct gm_route_origin_cache gm_route_origin_cache_t;

typedef struct gm_route_origin_stats {
    uint64_t verified;  /* signatures checked and good */
    uint64_t failed;    /* signatures checked and bad */
    uint64_t hits;      /* answered from the cache */
} gm_route_origin_stats;

/* slots 0 = default (4096). */
int gm_route_origin_cache_new(gm_route_origin_cache_t **out, size_t slots, gm_error *err);
void gm_route_origin_cache_free(gm_route_origin_cache_t *c);
/* Verify e's origin signature under e->dest (c may be NULL: no caching). 0, or GM_ESIG. */
int gm_route_origin_verify(gm_route_origin_cache_t *c, const gm_wire_route_entry *e, gm_error *err);
void gm_route_origin_stats_get(const gm_route_origin_cache_t *c, gm_route_origin_stats *s);

#endif
