/* The persistent node runtime: peer links (Noise XX over TCP), trust checks of peer
 * certificates, CRL polling and gossip, distance-vector routing, hop-by-hop DATA
 * forwarding, end-to-end sessions (Noise IK inside DATA) and the local API on D/node.sock.
 * The pure pieces (trust check, CRL acceptance, replay window) are exposed for tests. */
#ifndef GM_NODE_H
#define GM_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "gm/cert.h"
#include "gm/crl.h"
#include "gm/error.h"
#include "gm/genesis.h"
#include "gm/gmtime.h"
#include "gm/log.h"
#include <jansson.h>

/* Noise prologue label; the network's identity (gm_genesis_network_id) follows it. */
#define GM_NODE_PROLOGUE_LABEL "genesis-mesh/v1/noise-xx"
#define GM_NODE_PROLOGUE_LEN (sizeof(GM_NODE_PROLOGUE_LABEL) - 1 + 32)

#define GM_NODE_MAX_PEER_ARGS 64

typedef gm_log_level gm_node_log_level; /* the levels of gm/log.h */

/* What `genesis-mesh node start` passes to the runtime (strings borrowed). */
typedef struct gm_node_config {
    const char *dir;         /* state directory D (required) */
    const char *listen;      /* "host:port", default "127.0.0.1:0" */
    const char *port_file;   /* where to write the bound port, or NULL */
    const char *peers[GM_NODE_MAX_PEER_ARGS];
    size_t n_peers;
    const char *na_url;      /* overrides node.json "na_url" */
    long crl_poll_ms;        /* 0 = default 2000; <0 disables polling */
    long renew_after_s;      /* 0 = renew at 2/3 of the certificate's lifetime; >0 = this many
                                seconds after start and after each renewal (drills, tests) */
    const char *log_file;    /* NULL = the process log (gm_log_set_handler); else JSON lines here */
    gm_node_log_level log_level;
    int crl_stale_refuse;    /* CRL past next_update: 0 = warn only, 1 = also refuse new links
                                (except to fetch a fresher CRL from the peer) */
    long na_warn_s;          /* warn this long before the NA key's window ends; 0 = 30 days */
} gm_node_config;

/* Load the state directory, run until SIGTERM/SIGINT, close sessions and free everything.
 * Returns 0 after a clean stop, or a negative code (err filled) when the node cannot start:
 * incomplete directory, certificate invalid / expired / revoked, cannot listen. */
int gm_node_run(const gm_node_config *cfg, gm_error *err);

/* ---- trust check (node_trust.c): the one place a peer certificate is judged ---- */

/* Refusal reasons, also the label of the handshake_refused metric. */
typedef enum gm_trust_reason {
    GM_TRUST_OK = 0,
    GM_TRUST_MALFORMED,     /* not a parsable certificate */
    GM_TRUST_BAD_SIGNATURE, /* not signed by the genesis NA key */
    GM_TRUST_WRONG_NETWORK, /* names another network */
    GM_TRUST_EXPIRED,       /* outside issued_at..expires_at (with skew) */
    GM_TRUST_REVOKED,       /* cert_id in the current CRL */
    GM_TRUST_KEY_MISMATCH,  /* node_public_key does not convert to the Noise remote static */
    GM_TRUST_N
} gm_trust_reason;

const char *gm_trust_reason_name(gm_trust_reason r);

/* Judge a peer certificate received during a handshake. remote_x25519 (32 bytes) is the
 * Noise remote static key; NULL skips that check (certificates relayed in CERT messages).
 * On success *out holds the parsed certificate (free with gm_cert_free) and 0 is returned;
 * otherwise a negative code, *reason says why and out is left empty. crl may be NULL. */
int gm_node_trust_check(const gm_genesis *g, const gm_crl *crl, const uint8_t *cert_json,
                        size_t cert_len, const uint8_t *remote_x25519, gm_time now, gm_cert *out,
                        gm_trust_reason *reason, gm_error *err);

/* ---- CRL acceptance (node_crl.c) ---- */

/* Accept text as the new CRL only if it parses, its signature verifies under na_pk and its
 * sequence is strictly higher than current's (current NULL = none held yet: any valid
 * sequence). On success *out holds it. GM_ECONFLICT for an old or equal sequence. */
int gm_node_crl_accept(const gm_crl *current, const uint8_t na_pk[32], const char *text,
                       size_t len, gm_crl *out, gm_error *err);

/* ---- end-to-end replay window (node_e2e.c), WireGuard-style ---- */

#define GM_REPLAY_WINDOW_BITS 2048
typedef struct gm_replay_window {
    uint64_t top;    /* highest counter accepted + 1 (0 = none yet) */
    uint64_t bitmap[GM_REPLAY_WINDOW_BITS / 64];
} gm_replay_window;

void gm_replay_init(gm_replay_window *w);
/* 0 if counter was never accepted and is not too old to tell; -1 otherwise. No change. */
int gm_replay_check(const gm_replay_window *w, uint64_t counter);
/* Record counter as accepted (call only after the message authenticated). */
void gm_replay_mark(gm_replay_window *w, uint64_t counter);


/* ---- client side of the local API (node_client.c): blocking, for the CLI and agents ---- */

typedef struct gm_node_conn gm_node_conn_t;

/* The longest line the client accepts from the node (GM_ETOOBIG beyond). */
#define GM_NODE_CONN_LINE_MAX (16u << 20)
#define GM_NODE_SOCK_PATH_MAX 4200

/* Every wait below runs to a monotonic deadline timeout_ms from the call (<= 0: no deadline);
 * a signal (EINTR) neither ends it early nor extends it. After GM_EIO or GM_ETOOBIG the
 * connection is unusable (close it); after GM_EPROTO (a line that is not JSON) or
 * GM_ETIMEOUT it can be read again. */

/* Connect to D/node.sock. GM_ENOTFOUND (with a message saying how to start one) when no
 * node is running there. */
int gm_node_conn_open(const char *dir, gm_node_conn_t **out, gm_error *err);
/* Connect to the node's socket at sock_path; GM_ENOTFOUND when nothing listens there. */
int gm_node_conn_open_path(const char *sock_path, gm_node_conn_t **out, gm_error *err);
/* Send one JSON value as one line. */
int gm_node_conn_send(gm_node_conn_t *c, const json_t *msg, gm_error *err);
/* Send one request line and read its response. A response {"ok":false,...} is still
 * returned (0); *resp is owned by the caller. */
int gm_node_conn_request(gm_node_conn_t *c, const json_t *req, json_t **resp, int timeout_ms,
                         gm_error *err);
/* Read the next JSON line (e.g. a subscribe event). GM_ETIMEOUT at the deadline, GM_EIO when
 * the node closed the connection (a partial last line is dropped). */
int gm_node_conn_read(gm_node_conn_t *c, json_t **msg, int timeout_ms, gm_error *err);
/* Subscribe c to port: later lines are {"event":"message",...}. An {"ok":false} answer is an
 * error (GM_EPROTO). */
int gm_node_conn_subscribe(gm_node_conn_t *c, const char *port, int timeout_ms, gm_error *err);
void gm_node_conn_close(gm_node_conn_t *c);
/* One request on a fresh connection (to D/node.sock, or to sock_path). */
int gm_node_api_call(const char *dir, const json_t *req, json_t **resp, int timeout_ms, gm_error *err);
int gm_node_api_call_path(const char *sock_path, const json_t *req, json_t **resp, int timeout_ms,
                          gm_error *err);
/* Send data to the node key `to` on port through the node at sock_path; an {"ok":false}
 * answer is an error: GM_ENET when the node has no route, else GM_EPROTO. */
int gm_node_api_send(const char *sock_path, const uint8_t to[GM_PK_LEN], const char *port,
                     const void *data, size_t len, int timeout_ms, gm_error *err);

#endif
