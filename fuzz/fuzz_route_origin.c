/* Fuzz the signed route origin: input = sender[32] || self[32] || now u64 (big-endian) ||
 * a ROUTE_UPDATE message. Every decoded entry goes through gm_route_origin_check and
 * gm_route_origin_verify (cached and uncached must agree, and a cache hit must only ever
 * follow a good verification); the entries re-encode to the same bytes; an entry signed
 * here verifies, and the same entry with one signed byte changed does not. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "route_origin.h"
#include "wire.h"

static gm_wire_route_entry e[GM_WIRE_ROUTE_MAX_ENTRIES];
static uint8_t buf[GM_WIRE_MSG_MAX];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static gm_route_origin_cache_t *cache;
    static uint8_t pk[32], sk[64];
    if (!cache) {
        if (sodium_init() < 0 || gm_route_origin_cache_new(&cache, 64, NULL) != 0)
            abort();
        uint8_t seed[32] = {7};
        crypto_sign_seed_keypair(pk, sk, seed);
    }
    if (size < 72)
        return 0;
    const uint8_t *sender = data, *self = data + 32;
    uint64_t now = 0;
    for (int i = 0; i < 8; i++)
        now = now << 8 | data[64 + i];
    const uint8_t *msg = data + 72;
    size_t len = size - 72, n = 0, olen = 0;
    if (gm_wire_route_update_decode(msg, len, e, GM_WIRE_ROUTE_MAX_ENTRIES, &n, NULL) != 0)
        return 0;
    if (gm_wire_route_update_encode(e, n, buf, sizeof buf, &olen, NULL) != 0 || olen != len ||
        memcmp(buf, msg, len) != 0)
        abort();
    for (size_t i = 0; i < n; i++) {
        gm_route_origin_fault f = gm_route_origin_check(&e[i], sender, self, now);
        if ((unsigned)f >= GM_ORIGIN_N || !gm_route_origin_fault_name(f)[0])
            abort();
        int plain = gm_route_origin_verify(NULL, &e[i], NULL);
        int cached = gm_route_origin_verify(cache, &e[i], NULL);
        if (plain != cached || (plain != 0 && plain != GM_ESIG))
            abort();
        /* Our own signature over this entry's fields verifies; a changed seqno does not. */
        if (!e[i].request && e[i].has_cert_id) {
            gm_wire_route_entry s = e[i];
            memcpy(s.dest, pk, 32);
            if (gm_route_origin_sign(&s, sender, now, sk, NULL) != 0 || gm_route_origin_verify(cache, &s, NULL) != 0)
                abort();
            s.seqno ^= 1;
            if (gm_route_origin_verify(cache, &s, NULL) == 0)
                abort();
        }
    }
    return 0;
}
