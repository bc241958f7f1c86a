/* Inside the Network Authority: the service state, the request a handler sees, reply and
 * validation helpers, and the handlers. To add an endpoint: write lib/na_<concern>.c with
 * an `int na_handle_...(na_req *r)` declared here, and add one line to the table in
 * lib/na/na_routes.c. */
#ifndef GM_NA_INTERNAL_H
#define GM_NA_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "gm/genesis.h"
#include "gm/gmtime.h"
#include "gm/keys.h"
#include "gm/merkle.h"
#include "gm/na.h"
#include "gm/reqsig.h"
#include "core_internal.h"
#include "store.h"

struct MHD_Daemon;
struct MHD_Connection;
typedef struct na_req na_req;
typedef int (*na_handler)(na_req *r);

/* ---- revocation hooks and the store handle (na_core.c) ---- */

/* Called inside the revocation transaction for every certificate revoked, so that state
 * tied to the node key (e.g. registered agents) is dropped atomically with the CRL
 * update. A non-zero return aborts the revocation (nothing is committed). */
typedef int (*gm_na_revoke_hook)(gm_na_t *na, gm_store_t *store, const char *cert_id,
                                 const char *node_pk_b64, const char *reason, void *ctx,
                                 gm_error *err);
#define GM_NA_MAX_REVOKE_HOOKS 8
/* The store, e.g. for a later module that keeps its own tables next to the NA's. */
gm_store_t *gm_na_store(gm_na_t *na);
/* Register before gm_na_start. */
int gm_na_add_revoke_hook(gm_na_t *na, gm_na_revoke_hook fn, void *ctx, gm_error *err);

/* ---- routing (na_routes.c) ---- */

enum {
    NA_ROUTE_ADMIN = 1 << 0,   /* operator-signed: the router checks X-Admin-* before the handler;
                                  failed authentications are rate-limited per claimed key and address
                                  (a correctly signed request is never refused for others' failures) */
    NA_ROUTE_PREFIX = 1 << 1,  /* path is a prefix ("/agents/"); the rest is in r->path_rest */
    NA_ROUTE_LIMITED = 1 << 2, /* unauthenticated and costly: per-address token bucket (rate_limit) */
    NA_ROUTE_READ_LIMITED = 1 << 3, /* unauthenticated read that takes the store lock: its own,
                                       larger per-address bucket (rate_limit.reads_*) */
    NA_ROUTE_MEMBER = 1 << 4,  /* members only: the router checks the X-Node-* read signature and
                                  the signer's certificate before the handler (na_member.c) */
};

typedef struct na_route {
    const char *method;
    const char *path;
    unsigned flags;
    na_handler fn;
} na_route;

extern const na_route na_routes[];
extern const size_t na_n_routes;
/* Index of the route for method+path, or -1 with *path_known set when only the method is wrong. */
int na_route_find(const char *method, const char *path, int *path_known, const char **rest);

/* ---- rate limiting (na_ratelimit.c) ---- */

typedef enum na_rl_kind {
    NA_RL_REQUESTS = 0,      /* NA_ROUTE_LIMITED routes: one token per request */
    NA_RL_AUTH_FAILURES = 1, /* admin routes: one token per failed authentication, per claimed key and
                                address, taken after the signature was checked */
    NA_RL_READS = 2,         /* NA_ROUTE_READ_LIMITED routes: one token per request */
    NA_RL_KINDS = 3
} na_rl_kind;

struct sockaddr;
struct na_rl_entry;
typedef struct na_ratelimit {
    pthread_mutex_t lock;
    _Atomic unsigned rate[NA_RL_KINDS], burst[NA_RL_KINDS]; /* na_ratelimit_set changes them (SIGHUP) */
    struct na_rl_entry *entries; /* cap slots, the first used in use */
    int32_t *heads;              /* hash chains, mask + 1 of them */
    uint32_t cap, used, mask;
    int32_t lru_head, lru_tail;  /* most / least recently seen */
    uint8_t hash_key[16];
} na_ratelimit;

int na_ratelimit_init(na_ratelimit *rl, const gm_na_rate_limit *cfg);
void na_ratelimit_free(na_ratelimit *rl);
/* New rates and bursts (tracked_ips is kept: the table is sized at start). */
void na_ratelimit_set(na_ratelimit *rl, const gm_na_rate_limit *cfg);
/* 0 when addr may go ahead (taking one token of kind if take), otherwise the whole seconds
 * until a token is back. A kind whose rate is 0 always answers 0. */
unsigned na_ratelimit_check(na_ratelimit *rl, const struct sockaddr *addr, na_rl_kind kind, int take,
                            int64_t now_ms);
/* The same for the bucket of (addr, claim): claim is what the client says it is (an operator
 * key id, "" for none), so failures under one claim never empty another's bucket. */
unsigned na_ratelimit_check_claim(na_ratelimit *rl, const struct sockaddr *addr, const char *claim, na_rl_kind kind,
                                  int take, int64_t now_ms);
/* Addresses in the table now. */
size_t na_ratelimit_tracked(na_ratelimit *rl);

/* ---- metrics (na_metrics.c) ---- */

#define NA_METRIC_STATUSES 16
typedef struct na_metrics {
    pthread_mutex_t lock;
    /* requests[route][status slot]; the last route row counts unknown paths */
    uint64_t *requests;
    int statuses[NA_METRIC_STATUSES];
    uint64_t joins, renewals, revocations, invites;
    uint64_t connections; /* client connections accepted since start */
    uint64_t crl_refused;  /* CRLs not published because they would pass GM_CRL_MAX_BYTES */
    uint64_t rate_limited[NA_RL_KINDS]; /* 429s by na_rl_kind */
    /* latency[route][bucket] (cumulative counts are made when printing), with sums per route */
    uint64_t *latency;
    double *latency_sum;
} na_metrics;

int na_metrics_init(na_metrics *m);
void na_metrics_free(na_metrics *m);
/* One answered request: its route (-1 unknown), status and time from arrival to answer. */
void na_metrics_count(na_metrics *m, int route, int status, double seconds);
void na_metrics_add(na_metrics *m, uint64_t *counter, uint64_t n);

/* ---- the service ---- */

typedef struct na_revoke_hook_entry {
    gm_na_revoke_hook fn;
    void *ctx;
} na_revoke_hook_entry;

struct gm_na {
    gm_na_config cfg;
    gm_signer key; /* the NA signing key */
    gm_genesis genesis;
    char *genesis_text; /* served verbatim by GET /genesis */
    size_t genesis_len;
    /* NA key rotation (na_genesis.c): the successor (genesis_lock) and the block before */
    pthread_mutex_t genesis_lock;
    gm_genesis genesis_next, genesis_prev;
    char *next_text;
    size_t next_len;
    int have_next, have_prev;
    gm_store_t *store;
    struct MHD_Daemon *daemon;
    struct na_watch *watch; /* request deadlines (na_server.c) */
    char *tls_cert_pem, *tls_key_pem; /* read at start, kept while serving (the key wiped after) */
    size_t tls_key_len;
    int tls;
    uint16_t port;
    gm_na_log_fn log;
    void *log_ctx;
    na_metrics metrics;
    na_ratelimit ratelimit;
    na_revoke_hook_entry hooks[GM_NA_MAX_REVOKE_HOOKS];
    size_t n_hooks;
    /* the latest CRL, served without touching the database */
    pthread_mutex_t crl_lock;
    uint64_t crl_seq;
    char *crl_text;
    char crl_etag[80];
    int64_t crl_next_update; /* of the cached CRL, unix seconds (0 if unreadable) */
    int64_t tls_not_after;   /* the TLS certificate's expiry, unix seconds (0: no TLS) */
    /* scheduled re-signing (na_crl.c) */
    pthread_t resign_thread;
    int resign_running, resign_stop;
    pthread_mutex_t resign_lock;
    pthread_cond_t resign_cond;
    int64_t resign_pending_at; /* earliest supersession the CRL does not list yet (0 = none); resign_lock */
    /* the CRLs of other replicas on the same database (na_follow.c) */
    pthread_t follow_thread;
    int follow_running;
    atomic_int follow_stop;
    /* the current access policy (na_policy.c), also in D/access-policy.json */
    pthread_mutex_t policy_lock;
    uint64_t policy_seq;
    char *policy_text;
    char policy_etag[80];
    /* the network policy manifest (na_netpolicy.c), also in D/network-policy.json; fixed at start */
    char *netpolicy_text;
    _Atomic int64_t nonce_pruned_at;
    /* the issuance log's latest checkpoint, signed once per size, and its leaf hashes read
     * once from the store and extended as the log grows (na_issuance.c); log_lock */
    pthread_mutex_t log_lock;
    uint64_t log_cp_size;
    char *log_cp_text;
    struct na_log_cache *log_cache;
    char console_token[GM_NA_CONSOLE_TOKEN_LEN + 1]; /* D/console.token (na_console.c) */
};

void na_log(gm_na_t *na, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Replace the cached CRL if seq is newer (takes ownership of text). */
void na_crl_cache_set(gm_na_t *na, uint64_t seq, char *text);
/* Copy of the cached CRL text and its ETag (caller frees). */
char *na_crl_cache_get(gm_na_t *na, uint64_t *seq, char etag[80]);
/* Issue CRL 0 if the store has none (or a new one if the stored one is unusable: another
 * NA key, unreadable, over the size cap); load the latest into the cache. */
int na_crl_bootstrap(gm_na_t *na, gm_error *err);
/* Seconds from issue to next_update for a CRL issued now. */
int64_t na_crl_next_update_s(const gm_na_t *na);
/* Issue the next CRL (same revocations, sequence + 1, fresh issued_at/next_update). */
int na_crl_resign(gm_na_t *na, gm_error *err);
/* Thread that calls na_crl_resign every crl_resign_interval_s (nothing when 0); stop joins it. */
int na_crl_resign_start(gm_na_t *na, gm_error *err);
void na_crl_resign_stop(gm_na_t *na);
/* Follow the CRLs other replicas publish into this one's cache (na_follow.c); a no-op on a
 * store without notifications across processes. */
int na_follow_start(gm_na_t *na, gm_error *err);
void na_follow_stop(gm_na_t *na);
/* 1 if c is revoked only by a renewal's supersession that is not effective at now yet: nodes
 * still accept it (the overlap) and the CRL does not list it. */
int na_cert_supersession_pending(const gm_store_cert *c, int64_t now);
/* A supersession becomes effective at `at`: have the re-signing thread publish a CRL then. */
void na_crl_pending_note(gm_na_t *na, int64_t at);
/* Load D/access-policy.json (issuing the permissive sequence 0 when there is none). */
int na_policy_bootstrap(gm_na_t *na, gm_error *err); /* na_policy.c */
/* Load D/network-policy.json (issuing the reference's default when there is none). */
int na_netpolicy_bootstrap(gm_na_t *na, gm_error *err); /* na_netpolicy.c */
/* Reply 200 with text (application/json) tagged etag, or 304 when If-None-Match names it. */
int na_reply_tagged(na_req *r, const char *text, const char *etag); /* na_crl.c */
/* Inside an open transaction: build the CRL the store's revocations call for at now (entries
 * of expired certificates left out), sign it with the next sequence and store it. On success
 * *text (malloc'd) and *seq describe it; call na_crl_cache_set after the commit. GM_ETOOBIG,
 * with nothing stored, an alert logged and crl_refused counted, when it would be larger than
 * GM_CRL_MAX_BYTES, since every node would refuse it. (na_crl.c) */
int na_crl_publish_in_tx(gm_na_t *na, gm_time now, char **text, uint64_t *seq, gm_error *err);
/* gm_nonce_record_fn over the store, pruning old nonces now and then. */
int na_nonce_record(void *ctx, const char *scope, const char *nonce, int64_t now, gm_error *err);

/* ---- one request ---- */

struct na_req {
    gm_na_t *na;
    struct MHD_Connection *conn;
    const char *method;
    const char *path;
    const char *path_rest; /* after the route prefix, for NA_ROUTE_PREFIX routes */
    const char *body;      /* NUL-terminated (body_len excludes it); "" when none */
    size_t body_len;
    json_t *json;          /* admin routes: the parsed body ({} for GET), already authenticated */
    const char *admin_key_id;
    json_t *member;        /* member routes: the signer's current certificate document */
    char request_id[37];
    gm_time now;           /* one clock reading per request */
    /* the reply */
    int status;
    char *reply;           /* malloc'd */
    const char *content_type;
    char etag[80];
    unsigned retry_after; /* seconds, sent as Retry-After when not 0 */
    /* A handler may ask to hold the request (a CRL watch): set hold and return; the server
     * suspends the connection and calls the handler again, with watch_done set, when a CRL
     * newer than hold_after is cached or at hold_until_ms (gm_mono_ms). */
    int hold;
    uint64_t hold_after;
    int64_t hold_until_ms;
    int watch_done;
};

/* Reply with a JSON value (stolen) and a status. */
int na_reply_json(na_req *r, int status, json_t *v);
/* Reply with text already formatted (copied). */
int na_reply_text(na_req *r, int status, const char *content_type, const char *text, size_t len);
/* The one error envelope {"error":{"code","message","request_id"}}. Returns status. */
int na_reply_error(na_req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The same with "reason" in the envelope: a finer cause under a code shared with the Python
 * reference's NA (403 invalid_invite_token, reason invite_used). */
int na_reply_error_reason(na_req *r, int status, const char *code, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Map a library error to a status and code (for store/crypto failures mid-request). */
int na_reply_gm_error(na_req *r, const gm_error *err);
/* A request header value or NULL. */
const char *na_req_header(na_req *r, const char *name);
/* A query-string argument or NULL. */
const char *na_req_query(na_req *r, const char *name);
/* 1 when the query string has the argument name, with or without a value ("?next"). */
int na_req_has_query(na_req *r, const char *name);

/* Parse the body as one JSON object (duplicates and trailing data refused) whose members
 * are all in allowed (NULL-terminated). Replies 400 and returns NULL otherwise. */
json_t *na_body_object(na_req *r, const char *const *allowed);
/* Every member of o is in allowed; replies 400 unknown_field and returns -1 otherwise. */
int na_check_members(na_req *r, const json_t *o, const char *const *allowed);
/* Member checks that reply 400 (missing_field / invalid_field / bad_base64) and return -1. */
int na_get_string(na_req *r, const json_t *o, const char *key, int required, size_t max_len,
                  const char **out);
int na_get_int(na_req *r, const json_t *o, const char *key, int required, int64_t min, int64_t max,
               int64_t def, int64_t *out);
int na_get_pk(na_req *r, const json_t *o, const char *key, uint8_t pk[GM_PK_LEN], const char **b64);
/* Shape of "timestamp", "nonce", "signature" (400), freshness and signature under pk (401).
 * Returns 0, or -1 after replying. Does not touch the store. */
int na_check_pop(na_req *r, const json_t *body, const uint8_t pk[GM_PK_LEN]);
/* Record the body's nonce for the node key (call inside the request's transaction so a
 * refused request leaves nothing behind); 401 replayed_nonce and -1 if seen. */
int na_record_node_nonce(na_req *r, const json_t *body, const char *pk_b64);

/* Member routes: the X-Node-* signature over the request line (401), the signer holding a
 * valid, unrevoked certificate of this network (403), its nonce recorded (401 if replayed).
 * Sets r->member; returns 0, or -1 after replying. (na_member.c) */
int na_member_authenticate(na_req *r);
/* The newest certificate of pk_b64 unrevoked and valid at now (*doc malloc'd, NULL if none);
 * call inside a transaction. (na_agents.c) */
int na_current_cert(gm_na_t *na, const char *pk_b64, int64_t now, char **doc, gm_error *e);

/* The NA key must be inside its genesis window to sign anything; replies 503 otherwise. */
int na_check_key_window(na_req *r);

/* Hex SHA-256 of an invite token: the only form in which tokens are stored. */
void na_token_hash(const char *token, char out[65]);

/* ---- handlers ---- */

int na_handle_health(na_req *r);     /* na_public.c */
int na_handle_ready(na_req *r);      /* na_public.c */
int na_handle_genesis(na_req *r);    /* na_genesis.c */
int na_handle_genesis_publish(na_req *r); /* na_genesis.c */
int na_handle_crl(na_req *r);        /* na_crl.c */
int na_handle_access_policy(na_req *r); /* na_policy.c */
int na_handle_policy_set(na_req *r);    /* na_policy.c */
int na_handle_netpolicy(na_req *r);     /* na_netpolicy.c */
int na_handle_revoke(na_req *r);     /* na_crl.c */
int na_handle_metrics(na_req *r);    /* na_metrics.c */
int na_handle_invite(na_req *r);     /* na_admin.c */
int na_handle_nodes(na_req *r);      /* na_admin.c */
int na_handle_clear_key(na_req *r);  /* na_admin.c */
int na_handle_join(na_req *r);       /* na_join.c */
int na_handle_renew(na_req *r);      /* na_join.c */
int na_handle_heartbeat(na_req *r);  /* na_join.c */
int na_handle_agents_register(na_req *r); /* na_agents.c */
int na_handle_agents_list(na_req *r);     /* na_agents.c */
int na_handle_agents_delete(na_req *r);   /* na_agents.c */
/* NA key rotation (na_genesis.c). After the current genesis is loaded: load genesis.next.json
 * and genesis.prev.json when they are a valid successor / predecessor (others are logged and
 * ignored). */
int na_genesis_load_versions(gm_na_t *na, gm_error *err);
/* The NA key is not the current block's: when it is the successor's NA key, make the successor
 * current (files rewritten: genesis.prev.json, genesis.json; genesis.next.json removed) and
 * return 0; GM_ENOTFOUND when it is not. */
int na_genesis_promote(gm_na_t *na, const uint8_t key_pk[GM_PK_LEN], gm_error *err);
void na_genesis_free_versions(gm_na_t *na);
int na_handle_log_checkpoint(na_req *r);  /* na_issuance.c */
void na_issuance_free(gm_na_t *na);       /* na_issuance.c: the cached leaf hashes */
/* The log's size, root and its last entries (newest first; an entry whose stored hash does not
 * match shows intact false and nothing else), for the console (na_issuance.c). */
int na_issuance_summary(gm_na_t *na, size_t last, json_t **out, gm_error *err);
int na_handle_log_entries(na_req *r);     /* na_issuance.c */
int na_handle_log_proof(na_req *r);       /* na_issuance.c */
int na_handle_log_consistency(na_req *r); /* na_issuance.c */
/* The issuance log entry {kind, cert_id, node_public_key, time, network_name} plus the members
 * of extra (stolen; may be NULL): its canonical JSON (*text, malloc'd) and its Merkle leaf hash.
 * No store access. (na_issuance.c) */
int na_issuance_entry(gm_na_t *na, const char *kind, const char *cert_id, const char *node_pk_b64, json_t *extra,
                      gm_time now, char **text, gm_merkle_hash leaf, gm_error *err);
/* Inside the open transaction: append that entry to the issuance log. (na_issuance.c) */
int na_issuance_append(gm_na_t *na, const char *kind, const char *cert_id, const char *node_pk_b64,
                       json_t *extra, gm_time now, gm_error *err);
int na_handle_console_page(na_req *r);    /* na_console.c */
int na_handle_console_asset(na_req *r);   /* na_console.c */
int na_handle_console_state(na_req *r);   /* na_console.c */

/* The console's files (lib/na/console/), compiled in by cmake/gm_embed.cmake. */
typedef struct na_console_asset {
    const char *name; /* file name, no directory */
    const unsigned char *data;
    size_t len;
} na_console_asset;
extern const na_console_asset na_console_assets[];
extern const size_t na_console_n_assets;
/* Register the agent registry's revoke hook (called by gm_na_new). */
int gm_na_agents_install(gm_na_t *na, gm_error *err); /* na_agents.c */

/* Listening (na_server.c). */
int na_server_start(gm_na_t *na, const char *listen, gm_error *err);
void na_server_stop(gm_na_t *na);
/* A CRL with seq is cached now: answer the watches waiting for one newer than they hold. */
void na_server_crl_published(gm_na_t *na, uint64_t seq);
/* CRL watches held now. */
unsigned na_server_crl_watchers(gm_na_t *na);
/* Replies parked until the commit they rest on is durable (their connections suspended). */
unsigned na_server_parked(gm_na_t *na);
/* Longest wait a CRL watch may ask for, in seconds. */
#define NA_CRL_WAIT_MAX_S 3600
/* 0 if listen ("HOST:PORT") would be accepted by na_server_start. */
int na_listen_check(const char *listen, gm_error *err);

/* Admin authentication of r (headers, operator key, window, signature, nonce); replies 401. */
int na_admin_authenticate(na_req *r);

#endif
