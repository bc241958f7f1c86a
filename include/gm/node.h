/* The persistent node runtime: peer links (Noise XX over TCP), trust checks of peer
 * certificates, CRL polling and gossip, distance-vector routing, hop-by-hop DATA
 * forwarding, end-to-end sessions (Noise IK inside DATA) and the local API on D/node.sock.
 * The pure pieces (trust check, CRL acceptance, replay window) are private: lib/node/node_checks.h. */
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
    long crl_poll_ms;        /* 0 = default (CRL: 60000 with the watch on, else 2000; access
                                policy: 2000); <0 disables polling */
    long crl_watch_s;        /* CRL watch on the NA (GET /crl?after=N&wait=S): 0 = default S
                                1800; <0 = no watch */
    long renew_after_s;      /* 0 = renew at 2/3 of the certificate's lifetime; >0 = this many
                                seconds after start and after each renewal (drills, tests) */
    const char *log_file;    /* NULL = the process log (gm_log_set_handler); else JSON lines here */
    gm_node_log_level log_level;
    int crl_stale_refuse;    /* CRL past next_update: 0 = warn only, 1 = also refuse new links
                                (except to fetch a fresher CRL from the peer) */
    long na_warn_s;          /* warn this long before the NA key's window ends; 0 = 30 days */
    long heartbeat_s;        /* POST /heartbeat to the NA at start and then every this many
                                seconds; 0 = every 60 s, <0 = never */
    const char *metrics_listen;    /* "host:port": serve GET /metrics (plain HTTP) there; NULL = off */
    const char *metrics_port_file; /* where to write the metrics port actually bound, or NULL */
    int check_only;          /* load and check everything, bind nothing, return (node start --check) */
} gm_node_config;

/* Load the state directory, run until SIGTERM/SIGINT, close sessions and free everything.
 * Returns 0 after a clean stop, or a negative code (err filled) when the node cannot start:
 * incomplete directory, certificate invalid / expired / revoked, cannot listen. */
int gm_node_run(const gm_node_config *cfg, gm_error *err) GM_MUST_CHECK;

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
int gm_node_conn_open(const char *dir, gm_node_conn_t **out, gm_error *err) GM_MUST_CHECK;
/* Send one request line and read its response: the next line, or, when req has a string
 * "id" (local API version 2), the line with that id (lines before it are dropped). A response
 * {"ok":false,...} is still returned (0); *resp is owned by the caller. */
int gm_node_conn_request(gm_node_conn_t *c, const json_t *req, json_t **resp, int timeout_ms,
                         gm_error *err) GM_MUST_CHECK;
/* Read the next JSON line (e.g. a subscribe event). GM_ETIMEOUT at the deadline, GM_EIO when
 * the node closed the connection (a partial last line is dropped). */
int gm_node_conn_read(gm_node_conn_t *c, json_t **msg, int timeout_ms, gm_error *err) GM_MUST_CHECK;
/* Connect to the node's socket at sock_path; GM_ENOTFOUND when nothing listens there. */
int gm_node_conn_open_path(const char *sock_path, gm_node_conn_t **out, gm_error *err) GM_MUST_CHECK;
/* Send one JSON value as one line. */
int gm_node_conn_send(gm_node_conn_t *c, const json_t *msg, gm_error *err) GM_MUST_CHECK;
/* Negotiate version 2 of the local API (docs/local-api.md "Versions and hello"): sends
 * {"op":"hello","id":"hello","versions":[2]} and reads the answer. 0, GM_EPROTO when the node
 * does not speak version 2 (an older node), or a connection error. */
int gm_node_conn_hello(gm_node_conn_t *c, int timeout_ms, gm_error *err) GM_MUST_CHECK;
/* A message received by gm_node_conn_read_msg: data points into the connection's buffer and
 * stays valid until the next read on it. note: the node's note on it, as compact JSON of
 * note_len bytes (not NUL-terminated), owned by the connection like data and valid as long;
 * NULL (note_len 0) when it has none. The node adds one to a capability request its access
 * policy let in: {"sequence":N,"rule":"..."} (docs/local-api.md "Binary frames"). */
typedef struct gm_node_msg {
    uint8_t from[GM_PK_LEN];
    char port[33];
    const uint8_t *data;
    size_t len;
    const char *note;
    size_t note_len;
} gm_node_msg;
/* Subscribe c to port ("*": all), asking for binary frames (docs/local-api.md "Binary frames")
 * so that payloads arrive as raw bytes; with a node that has none they come as JSON events. */
int gm_node_conn_subscribe_frames(gm_node_conn_t *c, const char *port, int timeout_ms, gm_error *err) GM_MUST_CHECK;
/* Read the next message or other line: 1 and *m for a message (a binary frame, or a JSON
 * message event decoded), 0 and *msg (owned by the caller) for any other JSON line; errors as
 * gm_node_conn_read. */
int gm_node_conn_read_msg(gm_node_conn_t *c, json_t **msg, gm_node_msg *m, int timeout_ms, gm_error *err) GM_MUST_CHECK;
void gm_node_conn_close(gm_node_conn_t *c);
/* ---- streaming data: many sends on one connection without a round trip each ---- */
/* Negotiate version 2 with binary frames (docs/local-api.md "Binary frames"), for a connection
 * that sends (gm_node_conn_post) and does not subscribe. 0 also from a node without frames
 * (gm_node_conn_frames then says 0 and posts go as JSON sends); GM_EPROTO from a node that does
 * not speak version 2. */
int gm_node_conn_hello_frames(gm_node_conn_t *c, int timeout_ms, gm_error *err) GM_MUST_CHECK;
/* The binary frames version c negotiated (gm_node_conn_hello_frames, gm_node_conn_subscribe_frames):
 * 2, 1 with a node without noted frames, 0 for none. */
int gm_node_conn_frames(const gm_node_conn_t *c);
/* Send data to the node key `to` on port over c without waiting for the node: one send frame
 * numbered seq on a frames connection (the payload is not copied), else a JSON `send` with the
 * id "send-<seq>". Blocks while the node does not read c: the node stops reading a sender
 * whose path is congested, so a stream is slowed, never dropped from. Only a failure is
 * answered, later, among c's lines (gm_node_conn_post_flush counts them). Safe from another
 * thread than c's reader (writes only), one writer at a time. */
int gm_node_conn_post(gm_node_conn_t *c, const uint8_t to[GM_PK_LEN], const char *port, const void *data, size_t len,
                      uint32_t seq, gm_error *err) GM_MUST_CHECK;
/* Wait until the node has taken every post before on c (a request answered after them) and
 * count in *failed the posts it could not send (no route, too big: their `send_failed` events
 * or JSON refusals). Other lines and message frames read meanwhile are dropped: flush a
 * connection that is not subscribed. 0, or a connection error (GM_ETIMEOUT at the deadline). */
int gm_node_conn_post_flush(gm_node_conn_t *c, int timeout_ms, size_t *failed, gm_error *err) GM_MUST_CHECK;
/* Send data to the node key `to` on port through the node at sock_path, as a binary frame when
 * the node speaks them (else JSON); a refusal is an error: GM_ENET when the node has no route,
 * else GM_EPROTO (the message names the node's error code). */
int gm_node_api_send(const char *sock_path, const uint8_t to[GM_PK_LEN], const char *port, const void *data,
                     size_t len, int timeout_ms, gm_error *err) GM_MUST_CHECK;
/* One request on a fresh connection (to D/node.sock, or to sock_path). */
/* Discovery for agents, which hold no key: the node at sock_path asks the NA (a member read
 * it signs; the NA filters by the node's roles) with local API op "discover". *agents (owned)
 * is the listing, an array of {descriptor, certificate}; capability NULL lists all. */
int gm_node_discover(const char *sock_path, const char *capability, int timeout_ms, json_t **agents,
                     gm_error *err) GM_MUST_CHECK;
int gm_node_api_call(const char *dir, const json_t *req, json_t **resp, int timeout_ms, gm_error *err) GM_MUST_CHECK;
int gm_node_api_call_path(const char *sock_path, const json_t *req, json_t **resp, int timeout_ms,
                          gm_error *err) GM_MUST_CHECK;

#endif
