/* Discovery: ask the NA who offers a capability (a member read, signed by the node key), then
 * check every answer ourselves (descriptor signature, certificate under our genesis, our node's
 * verified CRL) and pick deterministically. The NA's list is a hint; the certificate is the
 * proof. Listings, the node's CRL and the policy decision are cached per capability while the
 * node's CRL, access policy and certificate files are unchanged, for a short TTL. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gm/agent.h"
#include "gm/http_client.h"
#include "gm/util.h"
#include "client_internal.h"
#include "agent_internal.h"
#include "core_internal.h"

#define NODE_JSON_MAX (64 * 1024)
#define LISTING_MAX 1024
#define CACHE_CAPS 32


/* What is known of one listed item under the cached CRL. */
typedef struct item_memo {
    gm_time ok_until;     /* its signatures, liveness and certificate checked until then (zero:
                             not checked yet) */
    int parsed;           /* desc and cert hold its documents, parsed (shared with each call's
                             candidates: parsed once per listing, not once per call) */
    gm_agent_desc desc;
    gm_cert cert;
} item_memo;

static void memos_free(item_memo *m, size_t n)
{
    for (size_t i = 0; m && i < n; i++) {
        gm_agent_desc_free(&m[i].desc);
        gm_cert_free(&m[i].cert);
    }
    free(m);
}

typedef struct cache_entry {
    char cap[GM_AGENT_CAP_MAX + 1];
    json_t *listing;
    int allowed;          /* the access policy lets this node call cap */
    char why[300];        /* why not */
    int64_t at_ms;
    item_memo *memo;      /* per listed item */
} cache_entry;

struct gm_agent_cache {
    pthread_mutex_t lock;
    agent_file_stamp crl_file, policy_file, cert_file;
    gm_crl crl;           /* the node's verified CRL (or the NA's, when the node has none yet) */
    int have_crl;
    int64_t crl_at_ms;    /* when the NA's was fetched (no node CRL) */
    cache_entry e[CACHE_CAPS];
};

void agent_file_stamp_of(const char *dir, const char *name, agent_file_stamp *st)
{
    char path[1200];
    struct stat sb;
    memset(st, 0, sizeof *st);
    if (gm_path_join(path, sizeof path, dir, name, NULL) != 0 || stat(path, &sb) != 0)
        return;
    st->exists = 1;
    st->dev = sb.st_dev;
    st->ino = sb.st_ino;
    st->size = sb.st_size;
    st->mtime = sb.st_mtim;
}

int agent_file_stamp_eq(const agent_file_stamp *a, const agent_file_stamp *b)
{
    return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static void cache_drop_listings(struct gm_agent_cache *k)
{
    for (size_t i = 0; i < CACHE_CAPS; i++) {
        memos_free(k->e[i].memo, json_array_size(k->e[i].listing));
        json_decref(k->e[i].listing);
        memset(&k->e[i], 0, sizeof k->e[i]);
    }
}

/* The node's blocks around its current one during an NA key rotation (docs/node-runtime.md):
 * trusted too when they chain with c->genesis and their NA window holds now, as the node judges
 * them. A file missing or refused is no error: only genesis.json is then trusted. */
static void load_rotation_blocks(gm_agent_ctx *c, const char *dir)
{
    static const char *const names[2] = {"genesis.next.json", "genesis.prev.json"};
    gm_time now = gm_time_now();
    for (int i = 0; i < 2; i++) {
        char path[1200];
        gm_genesis g = {0};
        gm_error e = {0};
        if (gm_path_join(path, sizeof path, dir, names[i], &e) != 0 || !gm_file_exists(path) ||
            gm_genesis_load(path, &g, &e) != 0)
            continue;
        int chained = i == 0 ? gm_genesis_check_successor(&c->genesis, &g, &e) == 0
                             : gm_genesis_check_successor(&g, &c->genesis, &e) == 0;
        if (chained && gm_genesis_check_na_window(&g, now, &e) == 0)
            c->also[c->n_also++] = g;
        else
            gm_genesis_free(&g);
    }
}

int gm_agent_ctx_open(gm_agent_ctx *c, const char *dir, const char *na_url, gm_error *err)
{
    char path[1200];
    int rc;
    memset(c, 0, sizeof *c);
    c->http_timeout_ms = 5000;
    if (!dir || snprintf(c->dir, sizeof c->dir, "%s", dir) >= (int)sizeof c->dir)
        return gm_error_set(err, GM_EINVAL, "node directory path missing or too long");
    snprintf(c->sock, sizeof c->sock, "%s/node.sock", dir);
    if ((rc = gm_path_join(path, sizeof path, dir, "genesis.json", err)) ||
        (rc = gm_genesis_load(path, &c->genesis, err)))
        return gm_error_prefix(err, "node directory %s", dir);
    if ((rc = gm_genesis_verify(&c->genesis, err)) != 0) {
        gm_agent_ctx_close(c);
        return gm_error_prefix(err, "%s/genesis.json", dir);
    }
    load_rotation_blocks(c, dir);
    if ((rc = gm_path_join(path, sizeof path, dir, "node", err)) ||
        (rc = gm_signer_load(&c->node, path, "node", err))) {
        gm_agent_ctx_close(c);
        return gm_error_prefix(err, "node directory %s", dir);
    }
    if (na_url && *na_url) {
        snprintf(c->na_url, sizeof c->na_url, "%s", na_url);
    } else {
        char *text = NULL;
        size_t len;
        json_error_t je;
        if ((rc = gm_path_join(path, sizeof path, dir, "node.json", err)) ||
            (rc = gm_file_read(path, NODE_JSON_MAX, &text, &len, err))) {
            gm_agent_ctx_close(c);
            return gm_error_prefix(err, "reading the NA address");
        }
        json_t *nj = json_loadb(text, len, 0, &je);
        free(text);
        const char *u = json_string_value(json_object_get(nj, "na_url"));
        if (!u || !*u || strlen(u) >= sizeof c->na_url) {
            json_decref(nj);
            gm_agent_ctx_close(c);
            return gm_error_set(err, GM_EFORMAT, "%s has no \"na_url\" (the NA address)", path);
        }
        snprintf(c->na_url, sizeof c->na_url, "%s", u);
        json_decref(nj);
    }
    size_t n = strlen(c->na_url);
    while (n > 0 && c->na_url[n - 1] == '/')
        c->na_url[--n] = '\0';
    /* The NA's TLS trust that join kept in the node directory. */
    if ((rc = gm_http_trust_load_dir(dir, c->na_url, err)) != 0) {
        gm_agent_ctx_close(c);
        return rc;
    }
    if (!(c->cache = calloc(1, sizeof *c->cache)) || pthread_mutex_init(&c->cache->lock, NULL) != 0) {
        free(c->cache);
        c->cache = NULL;
        gm_agent_ctx_close(c);
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    }
    return 0;
}

size_t gm_agent_ctx_trusted(const gm_agent_ctx *c, const gm_genesis *out[3])
{
    size_t k = 0;
    out[k++] = &c->genesis;
    for (size_t i = 0; i < c->n_also && i < 2; i++)
        out[k++] = &c->also[i];
    return k;
}

int gm_agent_ctx_trust(gm_agent_ctx *c, const gm_genesis *current, const gm_genesis *const others[], size_t n,
                       gm_error *err)
{
    gm_genesis g = {0}, also[2] = {{0}};
    size_t done = 0;
    if (n > 2)
        return gm_error_set(err, GM_EINVAL, "at most 2 NA keys are trusted besides the current one");
    int rc = gm_genesis_dup(current, &g, err);
    for (; rc == 0 && done < n; done++)
        if ((rc = gm_genesis_dup(others[done], &also[done], err)) != 0)
            break;
    if (rc != 0) {
        gm_genesis_free(&g);
        while (done > 0)
            gm_genesis_free(&also[--done]);
        return rc;
    }
    gm_genesis_free(&c->genesis);
    for (size_t i = 0; i < c->n_also; i++)
        gm_genesis_free(&c->also[i]);
    c->genesis = g;
    for (size_t i = 0; i < n; i++)
        c->also[i] = also[i];
    c->n_also = n;
    return 0;
}

void gm_agent_ctx_close(gm_agent_ctx *c)
{
    if (!c)
        return;
    gm_genesis_free(&c->genesis);
    for (size_t i = 0; i < c->n_also && i < 2; i++)
        gm_genesis_free(&c->also[i]);
    c->n_also = 0;
    gm_signer_wipe(&c->node);
    if (c->cache) {
        cache_drop_listings(c->cache);
        if (c->cache->have_crl)
            gm_crl_free(&c->cache->crl);
        pthread_mutex_destroy(&c->cache->lock);
        free(c->cache);
        c->cache = NULL;
    }
}

/* A CRL signed by any NA key c trusts. */
static int crl_verify_trusted(const gm_agent_ctx *c, const gm_crl *crl, gm_error *err)
{
    const gm_genesis *gs[3];
    const uint8_t *na_pk = gm_genesis_na_key_for(gs, gm_agent_ctx_trusted(c, gs), crl->doc);
    return gm_crl_verify(crl, na_pk ? na_pk : c->genesis.na_pk, err);
}

static int load_local_crl(const gm_agent_ctx *c, gm_crl *crl)
{
    char path[1200];
    gm_error e = {0};
    if (gm_path_join(path, sizeof path, c->dir, "crl.json", &e) != 0 || !gm_file_exists(path))
        return -1;
    int rc = gm_crl_load(path, crl, &e);
    if (rc == 0 && crl_verify_trusted(c, crl, &e) != 0) {
        gm_crl_free(crl);
        rc = -1;
    }
    return rc;
}

int gm_agent_fetch_crl(const gm_agent_ctx *c, gm_crl *crl, gm_error *err)
{
    char url[700];
    int status = 0;
    json_t *body = NULL;
    memset(crl, 0, sizeof *crl);
    snprintf(url, sizeof url, "%s/crl", c->na_url);
    int rc = gm_http_get_json(url, NULL, 0, c->http_timeout_ms, &status, &body, err);
    if (rc == 0 && (status != 200 || !json_is_object(body))) {
        rc = gm_error_set(err, GM_ENET, "NA at %s answered HTTP %d to GET /crl", c->na_url, status);
    }
    if (rc == 0) {
        const json_t *doc = json_is_object(json_object_get(body, "crl")) ? json_object_get(body, "crl") : body;
        if ((rc = gm_crl_from_json(doc, crl, err)) == 0 && (rc = crl_verify_trusted(c, crl, err)) != 0) {
            gm_crl_free(crl);
            gm_error_prefix(err, "CRL from the NA");
        }
    }
    json_decref(body);
    gm_crl local;
    if (load_local_crl(c, &local) == 0) {
        if (rc != 0 || gm_crl_is_newer(local.sequence, 1, crl->sequence)) {
            if (rc == 0)
                gm_crl_free(crl);
            *crl = local;
            rc = 0;
        } else {
            gm_crl_free(&local);
        }
    }
    return rc;
}

static int cand_cmp(const void *a, const void *b)
{
    const gm_agent_candidate *x = a, *y = b;
    if (x->usable != y->usable)
        return x->usable ? -1 : 1;
    int c = strcmp(x->desc.agent_id ? x->desc.agent_id : "", y->desc.agent_id ? y->desc.agent_id : "");
    if (c != 0)
        return c;
    return memcmp(x->desc.node_pk, y->desc.node_pk, GM_PK_LEN);
}

/* m (may be NULL): what is known of the item under this CRL. Checks it passed before, until
 * m->ok_until, are skipped (two Ed25519 verifications and canonical dumps), and documents parsed
 * before are shared, not parsed again; m is filled with what is learnt now. */
static void check_one(gm_agent_candidate *cd, const json_t *item, const char *cap, const gm_genesis *const gs[],
                      size_t k, const gm_crl *crl, gm_time now, const uint8_t (*exclude)[GM_PK_LEN], size_t n_exclude,
                      item_memo *m)
{
    gm_error e = {0};
    int checked = m && gm_time_cmp(&now, &m->ok_until) < 0, parsed = m && m->parsed;
    const json_t *dj = json_object_get(item, "descriptor"), *cj = json_object_get(item, "certificate");
#define REJECT(...)                                                                                                    \
    do {                                                                                                               \
        snprintf(cd->reason, sizeof cd->reason, __VA_ARGS__);                                                          \
        return;                                                                                                        \
    } while (0)
    if (parsed)
        gm_agent_desc_share(&m->desc, &cd->desc);
    else if (gm_agent_desc_from_json(dj, &cd->desc, &e) != 0)
        REJECT("malformed descriptor: %.500s", e.msg);
    if (!checked && gm_agent_desc_verify(&cd->desc, &e) != 0)
        REJECT("%.500s", e.msg);
    if (strcmp(cd->desc.network_name, gs[0]->network_name) != 0)
        REJECT("descriptor is for network '%s'", cd->desc.network_name);
    if (!gm_agent_desc_has_cap(&cd->desc, cap))
        REJECT("does not offer %s", cap);
    if (!checked && gm_agent_desc_check_live(&cd->desc, now, &e) != 0)
        REJECT("%.500s", e.msg);
    if (!cj)
        REJECT("the NA sent no certificate for it");
    if (parsed) {
        gm_cert_share(&m->cert, &cd->cert);
    } else if (gm_cert_from_json(cj, &cd->cert, &e) != 0) {
        REJECT("malformed certificate: %.500s", e.msg);
    } else if (m) {
        gm_agent_desc_share(&cd->desc, &m->desc);
        gm_cert_share(&cd->cert, &m->cert);
        m->parsed = 1;
    }
    if (memcmp(cd->cert.node_pk, cd->desc.node_pk, GM_PK_LEN) != 0)
        REJECT("certificate is for another key than the descriptor's");
    if (!checked && gm_cert_verify_any(&cd->cert, gs, k, crl, now, &e) != 0)
        REJECT("%.500s", e.msg);
    if (m && !checked)
        m->ok_until = gm_time_cmp(&cd->desc.expires_at, &cd->cert.expires_at) < 0 ? cd->desc.expires_at
                                                                                 : cd->cert.expires_at;
    for (size_t i = 0; i < n_exclude; i++)
        if (!memcmp(exclude[i], cd->desc.node_pk, GM_PK_LEN))
            REJECT("excluded (failed earlier in this call)");
#undef REJECT
    cd->usable = 1;
}

int gm_agent_select(const json_t *listing, const char *capability, const gm_genesis *g, const gm_crl *crl,
                    gm_time now, const uint8_t (*exclude)[GM_PK_LEN], size_t n_exclude, gm_agent_candidates *out,
                    gm_error *err)
{
    const gm_genesis *gs[1] = {g};
    return gm_agent_select_any(listing, capability, gs, 1, crl, now, exclude, n_exclude, out, err);
}

static int select_checked(const json_t *listing, const char *capability, const gm_genesis *const gs[], size_t k,
                          const gm_crl *crl, gm_time now, const uint8_t (*exclude)[GM_PK_LEN], size_t n_exclude,
                          item_memo *memo, gm_agent_candidates *out, gm_error *err)
{
    char cap[GM_AGENT_CAP_MAX + 1];
    memset(out, 0, sizeof *out);
    int rc = gm_agent_cap_normalize(capability, cap, err);
    if (rc != 0)
        return rc;
    if (k == 0)
        return gm_error_set(err, GM_EINVAL, "no trusted NA key to check providers under");
    if (!json_is_array(listing))
        return gm_error_set(err, GM_EPROTO, "the NA's agent list is not an array");
    size_t n = json_array_size(listing);
    if (n > LISTING_MAX)
        return gm_error_set(err, GM_EPROTO, "the NA listed more than %d agents", LISTING_MAX);
    out->v = calloc(n ? n : 1, sizeof *out->v);
    if (!out->v)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    out->n = n;
    out->crl_sequence = crl ? crl->sequence : 0;
    for (size_t i = 0; i < n; i++) {
        check_one(&out->v[i], json_array_get(listing, i), cap, gs, k, crl, now, exclude, n_exclude,
                  memo ? &memo[i] : NULL);
        out->n_usable += out->v[i].usable;
    }
    qsort(out->v, n, sizeof *out->v, cand_cmp);
    return 0;
}

int gm_agent_select_any(const json_t *listing, const char *capability, const gm_genesis *const gs[], size_t k,
                        const gm_crl *crl, gm_time now, const uint8_t (*exclude)[GM_PK_LEN], size_t n_exclude,
                        gm_agent_candidates *out, gm_error *err)
{
    return select_checked(listing, capability, gs, k, crl, now, exclude, n_exclude, NULL, out, err);
}

int gm_agent_list(const char *na_url, const gm_signer *node, const char *capability, long timeout_ms, json_t **out,
                  gm_error *err)
{
    char target[100], cap[GM_AGENT_CAP_MAX + 1];
    int rc;
    gm_http_resp r = {0};
    json_t *body = NULL;
    *out = NULL;
    if (capability) {
        if ((rc = gm_agent_cap_normalize(capability, cap, err)) != 0)
            return rc;
        snprintf(target, sizeof target, "/agents?capability=%s", cap);
    } else {
        snprintf(target, sizeof target, "/agents");
    }
    if ((rc = gm_na_member_get(na_url, node, target, timeout_ms, 0, &r, err)) != 0)
        return gm_error_prefix(err, "asking the NA for agents");
    body = r.len ? json_loadb(r.body, r.len, JSON_REJECT_DUPLICATES, NULL) : NULL;
    int status = r.status;
    gm_http_resp_free(&r);
    /* a proxy's own error page while the NA is down is the NA being unreachable */
    if (status >= 500 && !body)
        return gm_error_set(err, GM_ENET, "NA at %s is unreachable (HTTP %d to GET /agents, not JSON)", na_url, status);
    if (status != 200) {
        const char *m = json_string_value(json_object_get(json_object_get(body, "error"), "message"));
        rc = gm_error_set(err, status == 404 ? GM_ENOTFOUND : status == 401 || status == 403 ? GM_EDENIED : GM_ENET,
                          "NA at %s answered HTTP %d to GET /agents%s%s", na_url, status, m ? ": " : "", m ? m : "");
        json_decref(body);
        return rc;
    }
    json_t *agents = json_object_get(body, "agents");
    if (!json_is_array(agents)) {
        json_decref(body);
        return gm_error_set(err, GM_EPROTO, "NA at %s answered GET /agents without an \"agents\" array", na_url);
    }
    *out = json_incref(agents);
    json_decref(body);
    return 0;
}

/* Under k->lock: the node's CRL as it is now (reloaded and verified only when D/crl.json
 * changed; without one, the NA's, fetched at most once a TTL). Every cached listing goes
 * when the node's CRL, access policy or certificate file changed. */
static int cache_refresh(const gm_agent_ctx *c, struct gm_agent_cache *k, gm_error *err)
{
    agent_file_stamp crl, pol, cert;
    agent_file_stamp_of(c->dir, "crl.json", &crl);
    agent_file_stamp_of(c->dir, "access-policy.json", &pol);
    agent_file_stamp_of(c->dir, "cert.json", &cert);
    int64_t now = gm_mono_ms();
    int crl_stale = !k->have_crl || !agent_file_stamp_eq(&crl, &k->crl_file) ||
                    (!crl.exists && now - k->crl_at_ms >= GM_AGENT_DISCOVERY_TTL_MS);
    if (!crl_stale && agent_file_stamp_eq(&pol, &k->policy_file) && agent_file_stamp_eq(&cert, &k->cert_file))
        return 0;
    cache_drop_listings(k);
    k->policy_file = pol;
    k->cert_file = cert;
    if (!crl_stale)
        return 0;
    gm_crl fresh;
    /* The node keeps D/crl.json current (and verified it before writing it); we verify it once
     * per change. Without one (no node ran here yet), the NA's. */
    int rc = crl.exists && load_local_crl(c, &fresh) == 0 ? 0 : gm_agent_fetch_crl(c, &fresh, err);
    if (rc != 0)
        return rc;
    if (k->have_crl)
        gm_crl_free(&k->crl);
    k->crl = fresh;
    k->have_crl = 1;
    k->crl_file = crl;
    k->crl_at_ms = now;
    return 0;
}

static cache_entry *cache_find(struct gm_agent_cache *k, const char *cap)
{
    for (size_t i = 0; i < CACHE_CAPS; i++)
        if (k->e[i].listing && !strcmp(k->e[i].cap, cap))
            return &k->e[i];
    return NULL;
}

static void cache_put(struct gm_agent_cache *k, const char *cap, json_t *listing, int allowed, const char *why)
{
    cache_entry *slot = cache_find(k, cap);
    for (size_t i = 0; !slot && i < CACHE_CAPS; i++)
        if (!k->e[i].listing)
            slot = &k->e[i];
    for (size_t i = 0; !slot && i < CACHE_CAPS; i++) /* full: the oldest goes */
        if (!slot || k->e[i].at_ms < slot->at_ms)
            slot = &k->e[i];
    memos_free(slot->memo, json_array_size(slot->listing));
    json_decref(slot->listing);
    snprintf(slot->cap, sizeof slot->cap, "%s", cap);
    slot->listing = json_incref(listing);
    slot->memo = calloc(json_array_size(listing) ? json_array_size(listing) : 1, sizeof *slot->memo);
    slot->allowed = allowed;
    snprintf(slot->why, sizeof slot->why, "%s", why);
    slot->at_ms = gm_mono_ms();
}

/* The listing for cap, the CRL to check it with (a copy in *crl) and the policy decision:
 * from the cache when fresh, else from the NA (and then cached). */
static int discover_inputs(const gm_agent_ctx *c, const char *cap, int fresh, json_t **listing, gm_crl *crl,
                           int *allowed, char *why, size_t why_cap, int *cached, gm_error *err)
{
    struct gm_agent_cache *k = c->cache;
    int rc;
    *listing = NULL;
    *cached = 0;
    memset(crl, 0, sizeof *crl);
    if (!k) { /* a context not made by gm_agent_ctx_open: no cache */
        if ((rc = gm_agent_list(c->na_url, &c->node, cap, c->http_timeout_ms, listing, err)) != 0)
            return rc;
        if ((rc = gm_agent_fetch_crl(c, crl, err)) != 0) {
            json_decref(*listing);
            *listing = NULL;
            return gm_error_prefix(err, "cannot check providers without a verified CRL");
        }
        *allowed = gm_agent_policy_allows(c, cap, why, why_cap);
        return 0;
    }
    pthread_mutex_lock(&k->lock);
    if ((rc = cache_refresh(c, k, err)) != 0) {
        pthread_mutex_unlock(&k->lock);
        return gm_error_prefix(err, "cannot check providers without a verified CRL");
    }
    cache_entry *e = fresh ? NULL : cache_find(k, cap);
    if (e && gm_mono_ms() - e->at_ms < GM_AGENT_DISCOVERY_TTL_MS) {
        *listing = json_incref(e->listing);
        *cached = 1;
        *allowed = e->allowed;
        snprintf(why, why_cap, "%s", e->why);
    }
    gm_crl_share(&k->crl, crl);
    uint64_t seq = k->crl.sequence;
    pthread_mutex_unlock(&k->lock);
    if (*listing)
        return 0;
    /* Asked outside the lock: other capabilities need not wait for this round trip. */
    if ((rc = gm_agent_list(c->na_url, &c->node, cap, c->http_timeout_ms, listing, err)) != 0) {
        gm_crl_free(crl);
        return rc;
    }
    *allowed = gm_agent_policy_allows(c, cap, why, why_cap);
    pthread_mutex_lock(&k->lock);
    /* Not superseded meanwhile; an empty list is not kept, so a provider that registers
     * now is found by the next call. */
    if (k->have_crl && k->crl.sequence == seq && json_array_size(*listing) > 0)
        cache_put(k, cap, *listing, *allowed, why);
    pthread_mutex_unlock(&k->lock);
    return 0;
}

/* A copy of what is known of listing's items when it is the cached one (NULL when not): the
 * documents are shared, not copied. */
static item_memo *memos_get(const gm_agent_ctx *c, const json_t *listing)
{
    struct gm_agent_cache *k = c->cache;
    item_memo *copy = NULL;
    size_t n = json_array_size(listing);
    if (!k)
        return NULL;
    pthread_mutex_lock(&k->lock);
    for (size_t i = 0; i < CACHE_CAPS && !copy; i++) {
        const item_memo *m = k->e[i].memo;
        if (k->e[i].listing != listing || !m || !(copy = calloc(n ? n : 1, sizeof *copy)))
            continue;
        for (size_t j = 0; j < n; j++) {
            copy[j].ok_until = m[j].ok_until;
            if ((copy[j].parsed = m[j].parsed)) {
                gm_agent_desc_share(&m[j].desc, &copy[j].desc);
                gm_cert_share(&m[j].cert, &copy[j].cert);
            }
        }
    }
    pthread_mutex_unlock(&k->lock);
    return copy;
}

/* Keep what was learnt of listing's items while it is still the cached one. */
static void memos_put(const gm_agent_ctx *c, const json_t *listing, const item_memo *learnt)
{
    struct gm_agent_cache *k = c->cache;
    size_t n = json_array_size(listing);
    if (!k || !learnt)
        return;
    pthread_mutex_lock(&k->lock);
    for (size_t i = 0; i < CACHE_CAPS; i++) {
        item_memo *m = k->e[i].memo;
        if (k->e[i].listing != listing || !m)
            continue;
        for (size_t j = 0; j < n; j++) {
            m[j].ok_until = learnt[j].ok_until;
            if (!m[j].parsed && learnt[j].parsed) {
                gm_agent_desc_share(&learnt[j].desc, &m[j].desc);
                gm_cert_share(&learnt[j].cert, &m[j].cert);
                m[j].parsed = 1;
            }
        }
    }
    pthread_mutex_unlock(&k->lock);
}

/* gm_agent_select_any on a listing, skipping the checks its items passed before under the
 * same cached CRL and the parsing of their documents. */
static int select_cached(const gm_agent_ctx *c, const json_t *listing, const char *cap, const gm_crl *crl,
                         const uint8_t (*exclude)[GM_PK_LEN], size_t n_exclude, gm_agent_candidates *out,
                         gm_error *err)
{
    const gm_genesis *gs[3];
    size_t k = gm_agent_ctx_trusted(c, gs);
    item_memo *memo = memos_get(c, listing);
    int rc = select_checked(listing, cap, gs, k, crl, gm_time_now(), exclude, n_exclude, memo, out, err);
    if (rc == 0)
        memos_put(c, listing, memo);
    memos_free(memo, json_array_size(listing));
    return rc;
}

int gm_agent_discover(const gm_agent_ctx *c, const char *capability, const uint8_t (*exclude)[GM_PK_LEN],
                      size_t n_exclude, gm_agent_candidates *out, gm_error *err)
{
    json_t *listing = NULL;
    gm_crl crl;
    char cap[GM_AGENT_CAP_MAX + 1], why[sizeof out->v[0].reason];
    int allowed = 1, cached = 0;
    memset(out, 0, sizeof *out);
    int rc = gm_agent_cap_normalize(capability, cap, err);
    if (rc != 0 ||
        (rc = discover_inputs(c, cap, n_exclude > 0, &listing, &crl, &allowed, why, sizeof why, &cached, err)) != 0)
        return rc;
    rc = select_cached(c, listing, cap, &crl, exclude, n_exclude, out, err);
    if (rc == 0 && cached && out->n_usable == 0) {
        /* Nobody usable in the kept list (expired descriptors): ask the NA itself. */
        gm_agent_candidates_free(out);
        gm_crl_free(&crl);
        json_decref(listing);
        if ((rc = discover_inputs(c, cap, 1, &listing, &crl, &allowed, why, sizeof why, &cached, err)) != 0)
            return rc;
        rc = select_cached(c, listing, cap, &crl, exclude, n_exclude, out, err);
    }
    if (rc == 0 && out->n == 0 && !allowed) {
        /* The NA shows members only what their roles may call: say why the list is empty. */
        gm_agent_candidates_free(out);
        rc = gm_error_set(err, GM_EDENIED, "%s may not be called by this node: %s (the NA lists no provider of it "
                                           "to this node)", cap, why);
    }
    if (rc == 0 && out->n_usable > 0 && !allowed) {
        /* The provider's node would answer "forbidden": do not pick any. */
        for (size_t i = 0; i < out->n_usable; i++) {
            out->v[i].usable = 0;
            snprintf(out->v[i].reason, sizeof out->v[i].reason, "%s", why);
        }
        out->n_usable = 0;
    }
    if (rc == 0)
        out->crl = crl; /* the caller checks the answer's signers against the same CRL */
    else
        gm_crl_free(&crl);
    json_decref(listing);
    return rc;
}

void gm_agent_candidates_free(gm_agent_candidates *cs)
{
    if (!cs)
        return;
    for (size_t i = 0; i < cs->n; i++) {
        gm_agent_desc_free(&cs->v[i].desc);
        gm_cert_free(&cs->v[i].cert);
    }
    free(cs->v);
    gm_crl_free(&cs->crl);
    memset(cs, 0, sizeof *cs);
}
