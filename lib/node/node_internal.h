/* Private state of the node runtime shared by lib/node/node_*.c (one libuv loop thread).
 * The node is a set of subsystems, each owning its state: the peer links (node_link.c,
 * node_connect.c, node_handshake.c, node_transport.c, node_dispatch.c; their own interface
 * is node_link.h), routing (node_routing.c), forwarding (node_forward.c), trust and the
 * certificate store (node_trust.c), the CRL (node_crl.c), end-to-end sessions (node_e2e.c),
 * the local API (node_api.c), renewal (node_renew.c) and the process (node_main.c). Each
 * owner's part of struct gm_node is marked below; others use the owner's functions. */
#ifndef GM_NODE_INTERNAL_H
#define GM_NODE_INTERNAL_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <uv.h>

#include "gm/cert.h"
#include "gm/crl.h"
#include "gm/merkle.h"
#include "gm/genesis.h"
#include "gm/keys.h"
#include "gm/node.h"
#include "noise.h"
#include "gm/policy.h"
#include "wire.h"
#include "node_checks.h"
#include "api_frame.h"

/* ---- bounds ---- */
#define NODE_MAX_LINKS 256          /* connections of any state */
#define NODE_MAX_HANDSHAKES 64      /* concurrent half-open inbound handshakes (then evict) */
#define NODE_MAX_HALFOPEN_PER_IP 8  /* half-open connections from one source address */
#define NODE_HS_TIMEOUT_MS 5000     /* connect + handshake must finish within this */
#define NODE_HS_MSG1_MS 1000        /* an inbound connection must deliver message 1 within this */
#define NODE_HS_FRAME_MAX 16384     /* largest handshake message (carries a certificate) */
#define NODE_SENDQ_MAX (4u << 20)   /* bytes queued to a peer that does not read: drop link */
/* Backpressure: above HIGH unsent bytes a link is congested; local senders (API clients) and
 * links whose DATA would be relayed onto it stop being read until it drains below LOW. */
#define NODE_SENDQ_HIGH (1u << 20)
#define NODE_SENDQ_LOW (256u << 10)
/* A relay holds DATA for a congested next hop at most this long per congestion episode;
 * after that the next hop is treated as not reading and DATA for it is dropped. */
#define NODE_RELAY_HOLD_MS 2000
/* A local sender also waits while this many messages wait for an end-to-end session. */
#define NODE_E2E_BACKLOG_MAX 32
#define NODE_PING_MS 5000
#define NODE_PING_MISSES 3
#define NODE_CLOSE_GRACE_MS 1000
#define NODE_TICK_MS 100
#define NODE_REDIAL_MIN_MS 500
#define NODE_REDIAL_MAX_MS 30000
/* Both sides apply Noise REKEY to a direction's key after every this many messages in it;
 * TCP keeps order, so the two ends switch keys on the same message. */
#ifndef NODE_LINK_REKEY_EVERY
#define NODE_LINK_REKEY_EVERY (UINT64_C(1) << 20)
#endif
#define NODE_DEFAULT_TTL 32
#define NODE_MAX_PORT_LEN 32
#define NODE_API_LINE_MAX (256 * 1024)
#define NODE_API_MAX_CLIENTS 64
#define NODE_API_VERSION 2          /* highest local API version spoken (docs/local-api.md) */
#define NODE_API_ID_MAX 64          /* characters of a string request id */
#define NODE_API_DEADLINE_MAX_MS 600000
#define NODE_INBOX_MAX 1024         /* messages kept for a port nobody subscribed to yet */
/* A subscriber with more than HIGH bytes unread is behind: DATA for this node waits (its link
 * is not read) until it is below LOW. One that reads nothing for NODE_API_HOLD_MS while behind
 * is cut off (told with an overflow event, counted in api_overflow) and DATA flows again. */
#define NODE_API_SUBQ_HIGH (1u << 20)
#define NODE_API_SUBQ_LOW (256u << 10)
#define NODE_API_HOLD_MS 5000
#define NODE_MALLOC_TRIM (64 << 20) /* glibc keeps this much freed heap (node_main.c) */
#define NODE_MALLOC_MMAP (2 << 20)  /* smaller blocks come from the heap, not mmap (node_main.c) */

typedef struct gm_node gm_node;
typedef struct node_link node_link;

/* The NA's signed documents a node keeps current (node_docsync.c). */
enum { NODE_DOC_CRL = 0, NODE_DOC_POLICY = 1, NODE_DOC_GENESIS = 2, NODE_DOCS = 3 };
typedef struct node_doc_state {
    char etag[256];           /* of the last answer from the NA */
    int poll_busy;
    uint64_t next_poll_ms;
    /* the CRL watch (GET /crl?after=N&wait=S, node_docsync.c); CRL only */
    int watch_busy;
    uint64_t next_watch_ms;
    unsigned watch_failures;  /* in a row: the retry waits 1, 2, 4 .. 16 s */
} node_doc_state;
/* What node_docsync.c needs to know of one document. */
typedef struct node_doc_kind {
    const char *event;        /* log events "<event>_fetch_failed", "<event>_poll_failed" */
    const char *path;         /* at the NA: "/crl" */
    int optional;             /* the NA answers 404 while there is none (not an error) */
    uint8_t t_announce, t_request, t_data; /* its gossip messages */
    int (*held)(gm_node *n, uint64_t *seq);    /* 1 (and its sequence) when the node holds one */
    char *(*dump)(gm_node *n);                 /* the exact signed text to send, malloc'd */
    /* Accept text if signed and newer: 0 installed, GM_ECONFLICT not newer (silent), else
     * refused (logged and counted). While starting there are no links yet. */
    int (*offer)(gm_node *n, const char *text, size_t len, const char *source, int starting);
    void (*refused)(gm_node *n, const char *source, const char *why); /* log and count */
} node_doc_kind;
extern const node_doc_kind node_doc_crl, node_doc_policy, node_doc_genesis;

/* LINK_CONFIRM: the initiator sent message 3 and waits for the responder's first transport
 * message (proof that the responder accepted our certificate) before the link counts as up. */
enum link_state { LINK_CONNECTING = 0, LINK_HANDSHAKE, LINK_CONFIRM, LINK_UP, LINK_CLOSING };

/* A configured address we keep dialing (--peer, node.json, bootstrap anchors). */
typedef struct node_target {
    char host[256];
    char port[8];
    char addr[272];           /* "host:port" as configured */
    node_link *link;          /* current outbound link, if any */
    uv_getaddrinfo_t *resolving;
    uint64_t next_dial_ms;
    uint32_t backoff_ms;
    int known_pk;             /* pk learnt from the last successful handshake */
    uint8_t pk[GM_PK_LEN];
    struct node_target *next;
} node_target;

/* One peer link. Owners as marked; every subsystem may read the peer's identity
 * (state, peer_pk, peer_cert, has_cert, addr, outbound). */
struct node_link {
    /* node_link.c */
    gm_node *node;
    uv_tcp_t tcp;
    uint64_t id;
    int state;
    int outbound;
    int closing_handle;       /* uv_close called */
    int shutdown_pending;
    char addr[64];            /* remote ip:port */
    char ip[48];
    uint64_t created_ms;
    uint64_t deadline_ms;     /* handshake or close grace deadline */
    int64_t since_unix;
    uint64_t next_ping_ms;    /* heartbeat */
    uint64_t ping_nonce;
    int pings_missed;
    node_link *next;
    /* node_connect.c */
    node_target *target;
    /* node_handshake.c */
    int counted_hs;           /* counted in n->net.n_handshakes */
    int got_msg1;             /* inbound: handshake message 1 arrived */
    gm_noise_handshake_t *hs;
    uint8_t peer_pk[GM_PK_LEN];
    gm_cert peer_cert;        /* valid once state == LINK_UP */
    int has_cert;
    /* node_transport.c */
    int keys;                 /* tx/rx transport ciphers are set (after Split) */
    gm_wire_reader_t *reader;
    gm_noise_cipher tx, rx;
    /* node_crl.c: --crl-stale refuse with a stale CRL: CRL gossip only, no routes/DATA */
    int crl_hold;
    uint64_t crl_hold_until_ms;
    /* Backpressure (send side): congested from above NODE_SENDQ_HIGH until below NODE_SENDQ_LOW. */
    int congested;
    uint64_t congested_since_ms;
    /* Backpressure (receive side): reading stopped while a held DATA waits for its next hop. */
    int paused;
    uint8_t *held;            /* decrypted DATA message waiting to be relayed */
    size_t held_len;
    /* Frames encrypted this loop iteration, written together (one writev) before the loop
     * polls again (node_transport.c). */
    struct write_req *out_head, *out_tail;
    unsigned out_n;
    size_t out_bytes;
    uint8_t *rest;            /* received bytes not processed yet */
    size_t rest_len;
    /* node_docsync.c: per gossiped document (CRL, access policy), chunks in flight */
    void *doc_state[NODE_DOCS];
    /* node_routing.c */
    void *route_state;
};

/* A peer certificate we verified (from a handshake or a CERT message). */
typedef struct node_certent {
    gm_cert cert;
    uint64_t used_ms;         /* last time a route or link used it (0: never) */
    int pushed;               /* came in a CERT message from the neighbour from_pk */
    uint8_t from_pk[GM_PK_LEN];
    struct node_certent *next;
} node_certent;

typedef struct node_api_client node_api_client;
typedef struct node_e2e node_e2e;
typedef struct node_routing node_routing;
typedef struct node_inbox_msg node_inbox_msg;

struct node_inbox_msg {
    uint8_t from[GM_PK_LEN];
    char port[NODE_MAX_PORT_LEN + 1];
    uint8_t *data;
    size_t len;
    struct node_inbox_msg *next;
};

/* Counters (node_metrics.c lists them). */
typedef struct node_metrics {
    uint64_t handshakes_ok;
    uint64_t handshakes_failed;          /* Noise-level failure, timeout, protocol */
    uint64_t handshake_refused[GM_TRUST_N];
    uint64_t connections_refused_limit;
    uint64_t connections_evicted;
    uint64_t handshakes_rejected;        /* the peer refused us (CLOSE before the link was up) */
    uint64_t links_dropped_sendq;
    uint64_t links_dropped_ping;
    uint64_t links_dropped_decrypt;
    uint64_t links_paused;               /* relay backpressure: a link stopped being read */
    uint64_t api_paused;                 /* local backpressure: an API client stopped being read */
    uint64_t api_overflow;               /* subscribers cut off because they did not read */
    uint64_t api_held;                   /* DATA for us waited for a subscriber behind */
    uint64_t api_send_failed;            /* sends refused and reported to their sender */
    uint64_t api_frames_in, api_frames_out; /* binary frames on the local API */
    uint64_t api_writes;                 /* writes to local-API clients (a frames client's of one loop iteration go together) */
    uint64_t api_writes_queued;          /* of those, the ones the client's socket did not take at once (queued in the node) */
    uint64_t api_accepted;               /* local API connections accepted */
    uint64_t api_subscribes, api_unsubscribes; /* local API subscribe and unsubscribe (park) operations */
    uint64_t agents_unavailable;         /* requests for a capability no agent serves here any more */
    uint64_t links_duplicate;
    uint64_t bytes_in, bytes_out;
    uint64_t frames_in, frames_out;
    uint64_t link_writes;                /* writes of frames on links (the frames of one loop iteration go together) */
    uint64_t data_forwarded, data_delivered;
    uint64_t data_drop_ttl, data_drop_no_route, data_drop_revoked, data_drop_congested;
    uint64_t e2e_sent, e2e_received;
    uint64_t e2e_handshakes_ok;
    uint64_t e2e_drop_auth, e2e_drop_replay, e2e_drop_unknown_session, e2e_drop_handshake;
    uint64_t e2e_drop_queue;
    uint64_t crl_updates, crl_refused;
    uint64_t policy_updates, policy_refused;
    uint64_t policy_denied[GM_POLICY_KINDS]; /* refusals by gm_policy_kind */
    uint64_t routes_refused_no_cert, certs_refused;
    uint64_t certs_refused_limit, certs_evicted;
    uint64_t routes_refused_origin, route_origins_forged;  /* route origins (node_routing.c) */
    uint64_t route_origins_verified, route_origin_cache_hits;
    uint64_t routes_suspected, e2e_path_failures;           /* dropping relays (node_e2e.c) */
    uint64_t crl_stale;                                     /* gauge: 1 while past next_update */
    uint64_t crl_stale_refused;                             /* links refused in refuse mode */
    uint64_t revoked_links_closed;
    uint64_t renewals_ok, renewals_failed;
    uint64_t log_forks, log_checkpoint_size;                /* node_auditlog.c */
} node_metrics;

/* node_auditlog.c: the issuance log checkpoint this node holds. */
typedef struct node_auditlog_state {
    gm_checkpoint held;
    int have_held;
    int busy;
    int forked;       /* a fork was seen (status) */
    uint64_t next_ms;
} node_auditlog_state;
/* Capability requests that reached this node for its agents, by capability (node_policy.c
 * counts them, node_metrics.c shows them): a bounded table, the rest counted as "other". */
#define NODE_CAP_COUNTED 32
typedef struct node_cap_count {
    char name[65];
    uint64_t allowed, denied;
} node_cap_count;

/* node_metrics_http.c: the opt-in Prometheus listener (--metrics-listen). */
struct mhttp_conn;
typedef struct node_mhttp {
    uv_tcp_t listener;
    int open, port, n_conns;
    struct mhttp_conn *conns;
} node_mhttp;

/* node_connect.c: the listening socket and the addresses we keep dialing. */
typedef struct node_conn_state {
    uv_tcp_t listener;
    int listener_open;
    char listen_addr[300];
    int listen_port;
    node_target *targets;
} node_conn_state;

/* node_link.c: counts over gm_node.links. */
typedef struct node_net_state {
    int n_links;
    int n_handshakes;
    uint64_t next_link_id;
} node_net_state;

/* node_transport.c: backpressure (node_paused_add / node_any_congested for the others). */
typedef struct node_bp_state {
    int n_congested;          /* links above the high-water mark */
    int n_paused;             /* links and API clients waiting for a congested link */
    int retrying;             /* inside node_peer_retry_paused */
    uint8_t *read_buf;        /* the one read buffer of every link (node_on_alloc) */
    uint8_t *data_buf;        /* where a DATA message is built before it is sent (node_forward_buf) */
    uv_prepare_t flush;       /* writes the links' frames of this iteration before the loop polls */
    int flush_init, flush_on;
} node_bp_state;

/* node_api.c: the local API socket, its clients, and messages nobody subscribed to yet. */
typedef struct node_api_state {
    uv_pipe_t pipe;
    int open;
    char sock_path[4200];
    node_api_client *clients;
    int n_clients;
    node_inbox_msg *inbox, *inbox_tail;
    size_t inbox_len;
    uint64_t next_serial;     /* of the last connection accepted */
    int n_behind;             /* subscribers above NODE_API_SUBQ_HIGH */
} node_api_state;

/* node_renew.c */
typedef struct node_renew_state {
    int busy;
    uint64_t next_ms;
    int hb_busy;         /* a POST /heartbeat in flight */
    uint64_t hb_next_ms; /* when the next one is due (0: at the first tick) */
} node_renew_state;

struct gm_node {
    /* node_main.c: the process, configuration and identity (read by every subsystem) */
    uv_loop_t *loop;
    gm_node_config cfg;
    char dir[4096];
    char na_url[512];
    FILE *logf;
    int own_logf;
    gm_node_log_level log_level;
    gm_signer key;
    uint8_t x_sk[32], x_pk[32];
    gm_cert cert;             /* ours; node_renew.c replaces it */
    char *cert_json;          /* compact JSON of our certificate, sent in handshakes */
    size_t cert_json_len;
    gm_genesis genesis;       /* the current block (D/genesis.json); node_genesis.c replaces it */
    uint8_t prologue[GM_NODE_PROLOGUE_LEN];
    int self_revoked;
    int exit_rc;              /* set when the node stops on its own (revoked): gm_node_run's result */
    char exit_msg[256];
    uv_timer_t tick;
    uv_signal_t sigterm, sigint, sighup;
    int pending_work;         /* uv_queue_work requests in flight (CRL poll, renewal) */
    volatile int http_cancel; /* set when stopping: a held CRL watch gives up (node_docsync.c) */
    int stopping;
    uint64_t stop_deadline_ms;

    /* node_crl.c: the CRL in force (crl and have_crl are read by every subsystem) */
    gm_crl crl;
    int have_crl;
    int crl_stale;            /* the CRL is past its next_update */
    node_doc_state docs[NODE_DOCS]; /* NA polling of the CRL and the access policy (node_docsync.c) */
    size_t crl_rx_bytes;      /* bytes held by document reassemblies of all links (CRL, policy) */
    gm_policy policy;         /* the access policy (node_policy.c) */
    int have_policy;

    /* The peer-link subsystem (node_link.h); every subsystem reads the list of links. */
    node_link *links;
    node_net_state net;
    node_conn_state conn;
    node_bp_state bp;

    node_certent *certs;      /* node_trust.c */
    node_e2e *e2e;            /* node_e2e.c */
    node_routing *routing;    /* node_routing.c */
    node_api_state api;
    struct node_agents *agents; /* node_agents.c: the agent operations of the local API */
    node_renew_state renew;
    node_auditlog_state auditlog;
    /* node_genesis.c: NA key rotation, the blocks around the current one */
    gm_genesis genesis_prev, genesis_next; /* D/genesis.prev.json, D/genesis.next.json */
    int have_genesis_prev, have_genesis_next;
    char renew_asked_for[37]; /* cert_id whose renewal the rotation asked for */
    int na_expiry_warned;     /* the "NA key ends soon" warning was logged for this block */
    uint64_t genesis_next_tick_ms;
    node_metrics m;           /* counted by every subsystem, listed by node_metrics.c */
    node_mhttp mhttp;         /* --metrics-listen (node_metrics_http.c) */
    node_cap_count caps[NODE_CAP_COUNTED + 1]; /* the last one is "other" */
    size_t n_caps;
};

uint64_t node_now_ms(gm_node *n);
/* node_auditlog.c: load D/log-checkpoint.json at start, check the NA's log now and then. */
void node_auditlog_load(gm_node *n);
void node_auditlog_tick(gm_node *n, uint64_t now);
void node_auditlog_free(gm_node *n);

/* node_log.c: one JSON object per line; fields (may be NULL) is consumed. */
void node_log(gm_node *n, gm_node_log_level lvl, const char *event, json_t *fields);

/* The peer links, as the rest of the node sees them. */
/* node_connect.c */
int node_peer_listen(gm_node *n, gm_error *err);
void node_peer_add_target(gm_node *n, const char *hostport);
/* "HOST:PORT" ("[v6]:PORT") with HOST an IP address, for option what; 0 or GM_EINVAL. */
int node_listen_addr(const char *spec, const char *what, struct sockaddr_storage *ss, gm_error *err);
/* "HOST:PORT" with any host name; 0 or GM_EINVAL. */
int node_hostport_check(const char *spec, const char *what, gm_error *err);
void node_connect_free(gm_node *n);
/* node_link.c */
/* Deadlines and heartbeats of every link, then dialing. */
void node_peer_tick(gm_node *n, uint64_t now);
/* Send CLOSE (when transport keys exist) and close the link; reason is a gm_wire_close_reason. */
void node_link_close(node_link *l, uint8_t reason, const char *text);
node_link *node_link_by_pk(gm_node *n, const uint8_t pk[GM_PK_LEN]);
/* Close every link (CLOSE with reason when up) and the listener. */
void node_peer_shutdown(gm_node *n, uint8_t reason, const char *text);
json_t *node_peers_json(gm_node *n);
/* node_transport.c */
/* Encrypt and queue one transport message; 0 or negative (link is then being closed). */
int node_link_send(node_link *l, const uint8_t *msg, size_t len);
/* Retry everything waiting for a congested link: held DATA, paused links, API clients,
 * end-to-end queues (called when a link drains, and on every tick while anything waits). */
void node_peer_retry_paused(gm_node *n);
/* 1 while l's send queue is above the high-water mark (since node_link_congested_since). */
int node_link_congested(const node_link *l);
uint64_t node_link_congested_since(const node_link *l);
/* Backpressure bookkeeping for the local API: a client starts (+1) or stops (-1) waiting. */
void node_paused_add(gm_node *n, int delta);
/* 1 when some link is congested; 1 when something (link or API client) waits for one. */
int node_any_congested(gm_node *n);
int node_any_paused(gm_node *n);
/* uv_alloc_cb of links: the node's one reusable read buffer. */
void node_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
/* Write what links and local-API clients batched in this loop iteration at its end (a prepare
 * handle); 0, or GM_EIO when it cannot be scheduled (write at once then). */
int node_flush_soon(gm_node *n);

/* node_trust.c */
/* The verified certificate we hold for pk, or NULL. */
const gm_cert *node_cert_lookup(gm_node *n, const uint8_t pk[GM_PK_LEN]);
const gm_cert *node_cert_lookup_id(gm_node *n, const uint8_t pk[GM_PK_LEN], const char *cert_id);
/* Verify a relayed certificate and remember it (0, or negative: refused). */
int node_cert_store(gm_node *n, const uint8_t *json, size_t len, const gm_cert **out);
/* node_cert_store for a certificate pushed in a CERT message by the neighbour key from:
 * counted against that neighbour's share of the store. */
int node_cert_store_from(gm_node *n, const uint8_t *from, const uint8_t *json, size_t len, const gm_cert **out);
void node_cert_store_copy(gm_node *n, const gm_cert *c);
void node_cert_purge_revoked(gm_node *n);
void node_cert_free_all(gm_node *n);
/* 1 if the CRL lists a certificate of pk and no other stored certificate of pk is valid. */
int node_pk_revoked(gm_node *n, const uint8_t pk[GM_PK_LEN]);

/* node_crl.c */
int node_crl_load(gm_node *n, gm_error *err);
/* At start: fetch the NA's current CRL synchronously (bounded) and install it if newer.
 * An unreachable NA only logs a warning. */
void node_crl_fetch_startup(gm_node *n);
/* A peer closed our handshake saying we are revoked: poll the NA soon. */
void node_crl_poll_soon(gm_node *n);
void node_crl_tick(gm_node *n, uint64_t now);
/* In --crl-stale refuse mode with a stale CRL, hold a new link to CRL gossip (1): it is
 * released when a fresh CRL arrives, closed after NODE_CRL_STALE_HOLD_MS otherwise. */
#define NODE_CRL_STALE_HOLD_MS 5000
int node_crl_hold_link(gm_node *n, node_link *l);

/* Reassembly of one CRL sent in CRL_DATA chunks (one in flight per link). Chunks must come in
 * order without gaps or overlaps; a chunk at offset 0 starts over. The buffer grows with the
 * chunks received (never to the announced total up front). */
#define NODE_CRL_RX_TIMEOUT_MS 30000
/* All reassemblies of a node together hold at most this many bytes. */
#define NODE_CRL_RX_BUDGET (32u << 20)
typedef struct node_crl_rx {
    int active;
    uint64_t sequence;
    uint32_t total, have;
    uint8_t *buf;
    uint64_t started_ms;
} node_crl_rx;
/* Add chunk c received at now. Returns 1 when the CRL is complete (rx->buf[0..rx->total)
 * holds it; call node_crl_rx_reset after use), 0 when more chunks are needed, or a negative
 * code (the reassembly is dropped) for a chunk that does not continue it, a timeout, or when
 * *budget (bytes held by all reassemblies, updated) would exceed NODE_CRL_RX_BUDGET. */
int node_crl_rx_feed(node_crl_rx *rx, const gm_wire_crl_chunk *c, uint64_t now, size_t *budget, gm_error *err);
void node_crl_rx_reset(node_crl_rx *rx, size_t *budget);

/* node_docsync.c */
/* At start: fetch kind from the NA synchronously (bounded); an unreachable NA only warns. */
void node_doc_fetch_startup(gm_node *n, int kind);
void node_doc_poll_soon(gm_node *n, int kind);
/* Announce the sequence of kind held to every link that is up (after installing a new one). */
void node_doc_announce(gm_node *n, int kind);
void node_doc_tick(gm_node *n, uint64_t now);
/* The node stops: a CRL watch held at the NA gives up within about a second. */
void node_doc_stop(gm_node *n);
void node_doc_on_link_up(gm_node *n, node_link *l);
/* A CRL_* or POLICY_* message from l. */
void node_doc_on_message(gm_node *n, node_link *l, uint8_t type, const uint8_t *msg, size_t len);
/* Free l's transfer state (when the link is freed). */
void node_doc_link_free(node_link *l);

/* node_policy.c */
int node_policy_load(gm_node *n, gm_error *err);
/* At start: fetch the NA's current policy (bounded) and install it if newer. */
void node_policy_fetch_startup(gm_node *n);
/* Parse text, check the NA signature and that it is newer than current (may be NULL):
 * 0 and *out, GM_ECONFLICT when not newer, another code when refused. */
int node_policy_accept(const gm_policy *current, const uint8_t na_pk[GM_PK_LEN], const char *text, size_t len,
                       gm_policy *out, gm_error *err);
/* The decision for subject's roles (NULL: no roles) and object (a capability or port), or
 * for peer/relay object_cert's roles. No policy held: allowed. Does not log. */
int node_policy_decide(gm_node *n, gm_policy_kind kind, const gm_cert *subject, const char *object,
                       const gm_cert *object_cert, gm_policy_decision *d);
/* May we hold a link with peer (its roles with ours)? A refusal is logged and counted. */
int node_policy_link_ok(gm_node *n, const gm_cert *peer);
/* May we forward DATA from src (our roles relaying for src's)? A refusal is logged and counted. */
int node_policy_relay_ok(gm_node *n, const uint8_t src[GM_PK_LEN]);
/* A message from `from` (its authenticated key) for a local port: deliver it unless the policy
 * forbids the port or, on port "capability", the capability requested. A refused request is
 * answered with a signed capability_response "forbidden" naming the rule; an allowed one is
 * delivered with the rule that allowed it ("authorized" in the event). */
void node_policy_deliver(gm_node *n, const uint8_t from[GM_PK_LEN], const char *port, const uint8_t *data,
                         size_t len);
json_t *node_policy_status_json(gm_node *n);

/* node_routing.c */
int node_routing_init(gm_node *n, gm_error *err);
void node_routing_free(gm_node *n);
void node_routing_link_up(gm_node *n, node_link *l);
/* A certificate for c->node_pk verified: lift a withdrawal of that key. */
void node_routing_cert_ok(gm_node *n, const gm_cert *c);
void node_routing_link_down(gm_node *n, node_link *l);
void node_routing_on_message(gm_node *n, node_link *l, uint8_t type, const uint8_t *msg, size_t len);
void node_routing_tick(gm_node *n, uint64_t now);
/* Next hop towards dst (an Ed25519 node key), NULL when unreachable. */
node_link *node_routing_next_hop(gm_node *n, const uint8_t dst[GM_PK_LEN]);
/* After a CRL change: withdraw every route whose destination is revoked. */
void node_routing_revoked(gm_node *n);
/* End-to-end evidence that the path to dst through neighbour via stopped delivering: avoid it. */
void node_routing_path_failed(gm_node *n, const uint8_t dst[GM_PK_LEN], const uint8_t via[GM_PK_LEN]);
/* 1 if pk was withdrawn (revoked) and not seen with a valid certificate since. */
int node_routing_banned(gm_node *n, const uint8_t pk[GM_PK_LEN]);
/* After our certificate changed: re-announce ourselves with the new cert reference. */
void node_routing_self_cert_changed(gm_node *n);
json_t *node_routes_json(gm_node *n);
size_t node_routing_count(gm_node *n);

/* node_forward.c */
#define NODE_FWD_HOLD 1
/* Handle a DATA message from a link. NODE_FWD_HOLD: its next hop is congested; the caller
 * keeps msg and offers it again later (reading from `from` should stop meanwhile). */
int node_forward_on_data(gm_node *n, node_link *from, uint8_t *msg, size_t len);
/* 1 when a local send to dst should wait: its next hop is congested or its end-to-end
 * queue is long. */
int node_send_blocked(gm_node *n, const uint8_t dst[GM_PK_LEN]);
/* Send an end-to-end payload to dst through the next hop; 0, or GM_ENOTFOUND (no route). */
int node_forward_send(gm_node *n, const uint8_t dst[GM_PK_LEN], const uint8_t *payload, size_t len);
/* The node's buffer for building one DATA message in place (GM_WIRE_MSG_MAX bytes; NULL when out
 * of memory): write the payload at buf + GM_WIRE_DATA_HEADER, then node_forward_send_built.
 * Valid until the next send; nothing is kept in it. */
uint8_t *node_forward_buf(gm_node *n);
/* node_forward_send for a payload of len bytes already at buf + GM_WIRE_DATA_HEADER (buf from
 * node_forward_buf): the DATA header is written in front of it and the link encrypts from there. */
int node_forward_send_built(gm_node *n, const uint8_t dst[GM_PK_LEN], uint8_t *buf, size_t len);

/* node_e2e.c */
int node_e2e_init(gm_node *n, gm_error *err);
void node_e2e_free(gm_node *n);
/* Queue data for dst on port; GM_ENOTFOUND when there is no route, GM_ETOOBIG when too long. */
int node_e2e_send(gm_node *n, const uint8_t dst[GM_PK_LEN], const char *port, const uint8_t *data,
                  size_t len, gm_error *err);
/* An end-to-end message from src; p is decrypted in place (and the plaintext wiped). */
void node_e2e_on_payload(gm_node *n, const uint8_t src[GM_PK_LEN], uint8_t *p, size_t len);
void node_e2e_tick(gm_node *n, uint64_t now);
/* Forget sessions with revoked peers. */
void node_e2e_revoked(gm_node *n);
size_t node_e2e_max_data(void);
/* Messages waiting in the end-to-end queue for dst (all destinations when dst is NULL). */
size_t node_e2e_backlog(gm_node *n, const uint8_t *dst);
/* Send what waits in end-to-end queues while next hops are not congested. */
void node_e2e_flush(gm_node *n);

/* node_api.c */
int node_api_start(gm_node *n, gm_error *err);
void node_api_shutdown(gm_node *n);
/* Let paused API clients go on when what they wait for is no longer congested. */
void node_api_resume(gm_node *n);
/* Write what frames clients were given in this loop iteration (node_flush_soon's work). */
void node_api_flush(gm_node *n);
/* 1 if p is a port name: 1..32 of [a-z0-9._-] (or "*" when allow_star). */
int node_port_valid(const char *p, int allow_star);
/* Deliver a received message to subscribers (or keep it in the inbox). */
void node_api_deliver(gm_node *n, const uint8_t from[GM_PK_LEN], const char *port, const uint8_t *data,
                      size_t len);
/* Same, adding note (stolen, may be NULL) to the event as "authorized". */
void node_api_deliver_note(gm_node *n, const uint8_t from[GM_PK_LEN], const char *port, const uint8_t *data,
                           size_t len, json_t *note);
json_t *node_status_json(gm_node *n);
void node_inbox_free(gm_node *n);
/* {"ok":false,"error":{code,message}} (code from the fixed list of docs/local-api.md). */
json_t *node_api_error(const char *code, const char *msg);
/* Write o (stolen) to the connection serial, if it is still open. */
void node_api_send_to(gm_node *n, uint64_t serial, json_t *o);
/* 1 while DATA for this node should wait: a subscriber is behind (NODE_API_SUBQ_HIGH) and still
 * reading (subscribers that read nothing for NODE_API_HOLD_MS are cut off here). */
int node_api_behind(gm_node *n);
/* 1 when some connection is subscribed to port (or to "*"). */
int node_api_port_subscribed(gm_node *n, const char *port);
/* Pure checks of one request line (fuzzed by fuzz/fuzz_local_api.c): NULL when req is an
 * object with "op", an "id" as the version requires and a valid "deadline_ms" (then *op and
 * *id, borrowed, are set), else the error response to send. */
json_t *node_api_check_request(const json_t *req, int version, const char **op, const json_t **id);
/* The version a hello request picks: 1..NODE_API_VERSION, 0 when none offered is spoken,
 * -1 when "versions" is malformed (why says so in both cases). */
int node_api_hello_version(const json_t *req, char *why, size_t why_len);

/* node_agents.c: provide/withdraw/answer/ask and request events (docs/local-api.md). */
/* Size libuv's thread pool for asks (called before the loop runs any work). */
void node_agents_init(gm_node *n);
/* 1 if op is one of the agent operations (version 2). */
int node_agents_op_known(const char *op);
/* Run an agent operation for connection serial: the response (id added by the caller), or NULL
 * when it will be sent later (to serial, with id). */
json_t *node_agents_op(gm_node *n, uint64_t serial, const char *op, const json_t *req, const json_t *id);
/* A message on the capability port: 1 when the node handled it (then note, may be NULL, is
 * consumed): a request for an agent of the local API, or for no agent at all. */
int node_agents_deliver(gm_node *n, const uint8_t from[GM_PK_LEN], const uint8_t *data, size_t len,
                        json_t *note);
void node_agents_client_closed(gm_node *n, uint64_t serial);
/* Deadlines of pending requests and refreshes of registrations. */
void node_agents_tick(gm_node *n, uint64_t now);
json_t *node_agents_limits_json(void);
void node_agents_free(gm_node *n);
/* Pure argument checks of the agent operations (fuzzed): 0, or -1 with why filled. */
typedef struct node_provide_args {
    char cap[65];
    char agent_id[65];        /* "" for the default */
    int ttl_s;
    json_t *metadata;         /* new reference, may be NULL */
} node_provide_args;
int node_agents_parse_provide(const json_t *req, node_provide_args *a, char *why, size_t why_len);
typedef struct node_answer_args {
    const char *request_id;
    const json_t *output;     /* borrowed from req; NULL for an error */
    char code[24];
    const char *message, *detail;
} node_answer_args;
int node_agents_parse_answer(const json_t *req, node_answer_args *a, char *why, size_t why_len);

/* node_metrics.c */
json_t *node_metrics_json(gm_node *n);
char *node_metrics_prometheus(gm_node *n);
/* node_metrics_http.c: listen on cfg.metrics_listen (nothing when NULL); stop closes it all. */
int node_metrics_http_start(gm_node *n, gm_error *err);
void node_metrics_http_stop(gm_node *n);
/* The answer to a request head (NUL-terminated): 200 for GET or HEAD /metrics (*head_only set
 * for HEAD), 404 another path, 405 another method, 400 no request line. */
int node_mhttp_route(const char *head, int *head_only);

/* node_genesis.c: NA key rotation (docs/node-runtime.md, "NA key rotation") */
/* After D/genesis.json is loaded and verified: load D/genesis.prev.json and D/genesis.next.json
 * (kept only when they chain with the current block), and switch to the successor when the
 * current NA window is over. */
int node_genesis_load(gm_node *n, gm_error *err);
void node_genesis_free(gm_node *n);
/* The blocks whose NA key is inside its window at now (with skew), newest first; returns how many. */
size_t node_genesis_trusted(gm_node *n, gm_time now, const gm_genesis *out[3]);
/* gm_node_trust_check under every trusted block: a certificate signed by any of their NA keys. */
int node_trust_check(gm_node *n, const uint8_t *cert_json, size_t cert_len, const uint8_t *remote_x25519,
                     gm_time now, gm_cert *out, gm_trust_reason *reason, gm_error *err);
/* gm_cert_verify under every trusted block. */
int node_cert_verify(gm_node *n, const gm_cert *c, gm_time now, gm_error *err);
/* The NA public key of the trusted block that verifies a signed document (doc's signatures),
 * or NULL. */
const uint8_t *node_na_key_for(gm_node *n, const json_t *doc);
/* Switch to the successor when due, forget the previous block when its window is over, ask for
 * a renewal under the new NA key, warn before the NA key ends. */
void node_genesis_tick(gm_node *n, uint64_t now);
json_t *node_genesis_status_json(gm_node *n);

/* node_renew.c */
void node_renew_schedule(gm_node *n);
/* Renew at the next tick (unless a renewal is in flight). */
void node_renew_soon(gm_node *n);
void node_renew_tick(gm_node *n, uint64_t now);
void node_heartbeat_tick(gm_node *n, uint64_t now);

/* node_main.c */
void node_stop(gm_node *n);
/* Our own certificate is revoked: close every link (CLOSE revoked), stop, exit with status 1. */
void node_stop_revoked(gm_node *n, const char *reason);

/* Small helpers (node_main.c). */
void node_pk_b64(const uint8_t pk[GM_PK_LEN], char out[GM_PK_B64_LEN + 1]);
uint32_t node_jitter(uint32_t max);

#endif
