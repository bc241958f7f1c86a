/* Per-source-address token buckets for the NA: per address, one bucket for the expensive
 * unauthenticated endpoints, one for discovery reads and one for failed admin authentications. The table is bounded:
 * when it is full the least recently seen address is forgotten (its bucket has usually refilled
 * by then, so forgetting it gives away little). A keyed hash (SipHash) indexes it, so clients
 * cannot choose addresses that collide. One mutex: handlers run on many threads. */
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>
#include <sodium.h>

#include "na_internal.h"

/* family byte + up to 16 address bytes + 16 bytes naming a claimed identity (0 = none) */
#define KEY_LEN 33
#define TAG_OFF 17

struct na_rl_entry {
    uint8_t key[KEY_LEN];
    int32_t hnext;       /* next entry in the same hash chain */
    int32_t prev, next;  /* LRU list: prev is more recently seen */
    double tokens[NA_RL_KINDS];
    int64_t stamp_ms[NA_RL_KINDS];
};

/* IPv4 and IPv4-mapped IPv6 by address; other IPv6 by /64 (one host usually has a whole /64). */
static void addr_key(const struct sockaddr *sa, uint8_t key[KEY_LEN])
{
    memset(key, 0, KEY_LEN);
    if (sa && sa->sa_family == AF_INET) {
        key[0] = 4;
        memcpy(key + 1, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
    } else if (sa && sa->sa_family == AF_INET6) {
        const uint8_t *a = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a, mapped, sizeof mapped) == 0) {
            key[0] = 4;
            memcpy(key + 1, a + 12, 4);
        } else {
            key[0] = 6;
            memcpy(key + 1, a, 8);
        }
    }
    /* anything else (unknown address) shares the all-zero key */
}

static void set_rates(na_ratelimit *rl, const gm_na_rate_limit *cfg)
{
    rl->rate[NA_RL_REQUESTS] = cfg->per_ip_per_s;
    rl->burst[NA_RL_REQUESTS] = cfg->burst;
    rl->rate[NA_RL_AUTH_FAILURES] = cfg->auth_failures_per_ip_per_s;
    rl->burst[NA_RL_AUTH_FAILURES] = cfg->auth_failures_burst;
    rl->rate[NA_RL_READS] = cfg->reads_per_ip_per_s;
    rl->burst[NA_RL_READS] = cfg->reads_burst;
}

void na_ratelimit_set(na_ratelimit *rl, const gm_na_rate_limit *cfg)
{
    pthread_mutex_lock(&rl->lock);
    set_rates(rl, cfg);
    pthread_mutex_unlock(&rl->lock);
}

int na_ratelimit_init(na_ratelimit *rl, const gm_na_rate_limit *cfg)
{
    memset(rl, 0, sizeof *rl);
    set_rates(rl, cfg);
    rl->cap = cfg->tracked_ips ? cfg->tracked_ips : GM_NA_DEFAULT_RATE_TRACKED_IPS;
    uint32_t heads = 16;
    while (heads < rl->cap * 2u)
        heads *= 2;
    rl->mask = heads - 1;
    rl->entries = calloc(rl->cap, sizeof *rl->entries);
    rl->heads = malloc(heads * sizeof *rl->heads);
    if (!rl->entries || !rl->heads) {
        free(rl->entries);
        free(rl->heads);
        rl->entries = NULL;
        rl->heads = NULL;
        return -1;
    }
    memset(rl->heads, 0xff, heads * sizeof *rl->heads); /* all -1 */
    rl->lru_head = rl->lru_tail = -1;
    randombytes_buf(rl->hash_key, sizeof rl->hash_key);
    pthread_mutex_init(&rl->lock, NULL);
    return 0;
}

void na_ratelimit_free(na_ratelimit *rl)
{
    if (!rl->entries)
        return;
    free(rl->entries);
    free(rl->heads);
    rl->entries = NULL;
    rl->heads = NULL;
    pthread_mutex_destroy(&rl->lock);
}

static uint32_t bucket_of(const na_ratelimit *rl, const uint8_t key[KEY_LEN])
{
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, key, KEY_LEN, rl->hash_key);
    uint32_t v;
    memcpy(&v, h, sizeof v);
    return v & rl->mask;
}

static void lru_unlink(na_ratelimit *rl, int32_t i)
{
    struct na_rl_entry *e = &rl->entries[i];
    if (e->prev >= 0)
        rl->entries[e->prev].next = e->next;
    else
        rl->lru_head = e->next;
    if (e->next >= 0)
        rl->entries[e->next].prev = e->prev;
    else
        rl->lru_tail = e->prev;
}

static void lru_push_front(na_ratelimit *rl, int32_t i)
{
    struct na_rl_entry *e = &rl->entries[i];
    e->prev = -1;
    e->next = rl->lru_head;
    if (rl->lru_head >= 0)
        rl->entries[rl->lru_head].prev = i;
    rl->lru_head = i;
    if (rl->lru_tail < 0)
        rl->lru_tail = i;
}

static void hash_unlink(na_ratelimit *rl, int32_t i)
{
    int32_t *p = &rl->heads[bucket_of(rl, rl->entries[i].key)];
    while (*p >= 0 && *p != i)
        p = &rl->entries[*p].hnext;
    if (*p == i)
        *p = rl->entries[i].hnext;
}

/* The entry of key, created (with full buckets) if needed, moved to the LRU front. */
static struct na_rl_entry *lookup(na_ratelimit *rl, const uint8_t key[KEY_LEN], int64_t now_ms)
{
    uint32_t b = bucket_of(rl, key);
    int32_t i = rl->heads[b];
    while (i >= 0 && memcmp(rl->entries[i].key, key, KEY_LEN) != 0)
        i = rl->entries[i].hnext;
    if (i >= 0) {
        lru_unlink(rl, i);
    } else {
        if (rl->used < rl->cap) {
            i = (int32_t)rl->used++;
        } else {
            i = rl->lru_tail;
            lru_unlink(rl, i);
            hash_unlink(rl, i);
        }
        struct na_rl_entry *e = &rl->entries[i];
        memcpy(e->key, key, KEY_LEN);
        for (int k = 0; k < NA_RL_KINDS; k++) {
            e->tokens[k] = rl->burst[k];
            e->stamp_ms[k] = now_ms;
        }
        e->hnext = rl->heads[b];
        rl->heads[b] = i;
    }
    lru_push_front(rl, i);
    return &rl->entries[i];
}

static unsigned check_key(na_ratelimit *rl, const uint8_t key[KEY_LEN], na_rl_kind kind, int take, int64_t now_ms)
{
    pthread_mutex_lock(&rl->lock);
    struct na_rl_entry *e = lookup(rl, key, now_ms);
    double rate = rl->rate[kind], burst = rl->burst[kind];
    if (now_ms > e->stamp_ms[kind]) {
        e->tokens[kind] += (double)(now_ms - e->stamp_ms[kind]) * rate / 1000.0;
        if (e->tokens[kind] > burst)
            e->tokens[kind] = burst;
        e->stamp_ms[kind] = now_ms;
    }
    unsigned wait = 0;
    if (e->tokens[kind] >= 1.0) {
        if (take)
            e->tokens[kind] -= 1.0;
    } else {
        /* Whole seconds until one token is back (Retry-After has no fractions). */
        double s = (1.0 - e->tokens[kind]) / rate;
        wait = (unsigned)s;
        if ((double)wait < s || wait == 0)
            wait++;
    }
    pthread_mutex_unlock(&rl->lock);
    return wait;
}

unsigned na_ratelimit_check(na_ratelimit *rl, const struct sockaddr *addr, na_rl_kind kind, int take,
                            int64_t now_ms)
{
    if (!rl->entries || rl->rate[kind] == 0)
        return 0;
    uint8_t key[KEY_LEN];
    addr_key(addr, key);
    return check_key(rl, key, kind, take, now_ms);
}

unsigned na_ratelimit_check_claim(na_ratelimit *rl, const struct sockaddr *addr, const char *claim, na_rl_kind kind,
                                  int take, int64_t now_ms)
{
    if (!rl->entries || rl->rate[kind] == 0)
        return 0;
    uint8_t key[KEY_LEN];
    addr_key(addr, key);
    /* The tag is a keyed hash of the claim, never all zero: the plain per-address bucket stays apart. */
    crypto_generichash(key + TAG_OFF, KEY_LEN - TAG_OFF, (const uint8_t *)(claim ? claim : ""),
                       claim ? strlen(claim) : 0, rl->hash_key, sizeof rl->hash_key);
    key[TAG_OFF] |= 1;
    return check_key(rl, key, kind, take, now_ms);
}

size_t na_ratelimit_tracked(na_ratelimit *rl)
{
    if (!rl->entries)
        return 0;
    pthread_mutex_lock(&rl->lock);
    size_t n = rl->used;
    pthread_mutex_unlock(&rl->lock);
    return n;
}
