/* Signed route origins (format, checks and cache documented in lib/net/route_origin.h). */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "route_origin.h"

#define LABEL_LEN (sizeof(GM_ROUTE_ORIGIN_LABEL) - 1)
#define SLOT_LEN (GM_ROUTE_ORIGIN_SIGNED_LEN - LABEL_LEN + GM_WIRE_ORIGIN_SIG_LEN)

/* Set-associative: a key maps to one set of WAYS slots; a miss replaces the set's least
 * recently used slot (a direct-mapped cache would let two colliding origins evict each
 * other on every periodic update, and re-verify forever). */
#define WAYS 4

struct gm_route_origin_cache {
    size_t n; /* slots, a multiple of WAYS */
    uint8_t (*slots)[SLOT_LEN];
    uint64_t *used; /* 0 = empty, else the use stamp */
    uint64_t clock;
    uint8_t hash_key[crypto_shorthash_KEYBYTES];
    gm_route_origin_stats st;
};

static const char *const fault_names[GM_ORIGIN_N] = {
    "ok", "missing", "stale", "impersonation", "false_adjacency", "bad_metric", "not_for_us", "loop",
};

const char *gm_route_origin_fault_name(gm_route_origin_fault f)
{
    return (unsigned)f < GM_ORIGIN_N ? fault_names[f] : "unknown";
}

void gm_route_origin_signed_bytes(const gm_wire_route_entry *e, uint8_t out[GM_ROUTE_ORIGIN_SIGNED_LEN])
{
    uint8_t *p = out;
    memcpy(p, GM_ROUTE_ORIGIN_LABEL, LABEL_LEN);
    p += LABEL_LEN;
    memcpy(p, e->dest, GM_WIRE_KEY_LEN);
    p += GM_WIRE_KEY_LEN;
    for (int i = 0; i < 8; i++)
        *p++ = (uint8_t)(e->seqno >> (56 - 8 * i));
    for (int i = 0; i < 8; i++)
        *p++ = (uint8_t)(e->origin.time >> (56 - 8 * i));
    memcpy(p, e->cert_id, GM_WIRE_CERT_ID_LEN);
    p += GM_WIRE_CERT_ID_LEN;
    memcpy(p, e->origin.first_hop, GM_WIRE_KEY_LEN);
}

int gm_route_origin_sign(gm_wire_route_entry *e, const uint8_t first_hop[GM_WIRE_KEY_LEN], uint64_t time_s,
                         const uint8_t sk[64], gm_error *err)
{
    if (!e->has_cert_id || e->request)
        return gm_error_set(err, GM_EINVAL, "a route origin is signed for a route entry with a cert_id");
    if (memcmp(sk + 32, e->dest, GM_WIRE_KEY_LEN) != 0)
        return gm_error_set(err, GM_EINVAL, "only the destination itself signs its route origin");
    uint8_t m[GM_ROUTE_ORIGIN_SIGNED_LEN];
    e->origin.time = time_s;
    memcpy(e->origin.first_hop, first_hop, GM_WIRE_KEY_LEN);
    gm_route_origin_signed_bytes(e, m);
    if (crypto_sign_detached(e->origin.sig, NULL, m, sizeof m, sk) != 0)
        return gm_error_set(err, GM_ECRYPTO, "signing the route origin failed");
    e->has_origin = 1;
    return 0;
}

gm_route_origin_fault gm_route_origin_check(const gm_wire_route_entry *e, const uint8_t sender[GM_WIRE_KEY_LEN],
                                            const uint8_t self[GM_WIRE_KEY_LEN], uint64_t now_s)
{
    if (e->request || e->metric >= GM_WIRE_METRIC_INF)
        return GM_ORIGIN_OK;
    if (!e->has_cert_id || !e->has_origin)
        return GM_ORIGIN_MISSING;
    uint64_t t = e->origin.time;
    if (t > now_s + GM_ROUTE_ORIGIN_SKEW_S || (now_s > GM_ROUTE_ORIGIN_MAX_AGE_S && t < now_s - GM_ROUTE_ORIGIN_MAX_AGE_S))
        return GM_ORIGIN_STALE;
    if (memcmp(sender, e->dest, GM_WIRE_KEY_LEN) == 0) {
        if (e->hops != 0 || e->metric != 0)
            return GM_ORIGIN_BAD_METRIC;
        return memcmp(e->origin.first_hop, self, GM_WIRE_KEY_LEN) == 0 ? GM_ORIGIN_OK : GM_ORIGIN_NOT_FOR_US;
    }
    if (e->hops == 0 || e->metric == 0)
        return GM_ORIGIN_IMPERSONATION;
    if (memcmp(e->origin.first_hop, e->dest, GM_WIRE_KEY_LEN) == 0)
        return GM_ORIGIN_FALSE_ADJACENCY;
    if (memcmp(e->origin.first_hop, self, GM_WIRE_KEY_LEN) == 0)
        return GM_ORIGIN_LOOP;
    if (e->hops == 1 && memcmp(e->origin.first_hop, sender, GM_WIRE_KEY_LEN) != 0)
        return GM_ORIGIN_FALSE_ADJACENCY;
    if (e->metric < e->hops)
        return GM_ORIGIN_BAD_METRIC;
    return GM_ORIGIN_OK;
}

int gm_route_origin_cache_new(gm_route_origin_cache_t **out, size_t slots, gm_error *err)
{
    *out = NULL;
    if (slots == 0)
        slots = 4096;
    slots = (slots + WAYS - 1) / WAYS * WAYS;
    if (slots > (1u << 24))
        return gm_error_set(err, GM_EINVAL, "route origin cache of %zu slots is too large", slots);
    gm_route_origin_cache_t *c = calloc(1, sizeof *c);
    if (c) {
        c->slots = calloc(slots, sizeof *c->slots);
        c->used = calloc(slots, sizeof *c->used);
    }
    if (!c || !c->slots || !c->used) {
        gm_route_origin_cache_free(c);
        return gm_error_set(err, GM_ENOMEM, "out of memory for the route origin cache");
    }
    c->n = slots;
    randombytes_buf(c->hash_key, sizeof c->hash_key);
    *out = c;
    return 0;
}

void gm_route_origin_cache_free(gm_route_origin_cache_t *c)
{
    if (!c)
        return;
    free(c->slots);
    free(c->used);
    free(c);
}

int gm_route_origin_verify(gm_route_origin_cache_t *c, const gm_wire_route_entry *e, gm_error *err)
{
    if (!e->has_origin)
        return gm_error_set(err, GM_ESIG, "route entry carries no origin");
    uint8_t m[GM_ROUTE_ORIGIN_SIGNED_LEN], key[SLOT_LEN];
    gm_route_origin_signed_bytes(e, m);
    size_t slot = 0;
    if (c) {
        memcpy(key, m + LABEL_LEN, GM_ROUTE_ORIGIN_SIGNED_LEN - LABEL_LEN);
        memcpy(key + GM_ROUTE_ORIGIN_SIGNED_LEN - LABEL_LEN, e->origin.sig, GM_WIRE_ORIGIN_SIG_LEN);
        uint8_t h[crypto_shorthash_BYTES];
        crypto_shorthash(h, key, sizeof key, c->hash_key);
        uint64_t v = 0;
        for (size_t i = 0; i < sizeof h; i++)
            v = v << 8 | h[i];
        size_t set = (size_t)(v % (c->n / WAYS)) * WAYS;
        slot = set;
        for (size_t w = set; w < set + WAYS; w++) {
            if (c->used[w] && memcmp(c->slots[w], key, SLOT_LEN) == 0) {
                c->st.hits++;
                c->used[w] = ++c->clock;
                return 0;
            }
            if (c->used[w] < c->used[slot])
                slot = w;
        }
    }
    if (crypto_sign_verify_detached(e->origin.sig, m, sizeof m, e->dest) != 0) {
        if (c)
            c->st.failed++;
        return gm_error_set(err, GM_ESIG, "route origin signature does not verify under the destination's key");
    }
    if (c) {
        c->st.verified++;
        memcpy(c->slots[slot], key, SLOT_LEN);
        c->used[slot] = ++c->clock;
    }
    return 0;
}

void gm_route_origin_stats_get(const gm_route_origin_cache_t *c, gm_route_origin_stats *s)
{
    memset(s, 0, sizeof *s);
    if (c)
        *s = c->st;
}
