/* Wire formats of peer links: the 2-byte length framing that carries Noise messages
 * over TCP, and the typed messages carried inside decrypted transport frames.
 * Pure code: no I/O, no clock; only the frame reader allocates (its buffer).
 *
 * Carrier frame:  u16 length (big-endian, 1..max) || body (one Noise message).
 * Transport message (the plaintext of one Noise transport message, at most
 * GM_WIRE_MSG_MAX bytes):  u8 type || type-specific body, all integers big-endian.
 *
 *   type  name          body
 *   1     ROUTE_UPDATE  u16 count (1..GM_WIRE_ROUTE_MAX_ENTRIES), then count entries:
 *                         dest[32] || seqno u64 || metric u16 || hops u8 || flags u8
 *                         || cert_id[16] if flags & GM_WIRE_ROUTE_F_CERT_ID
 *                         || origin_time u64 || first_hop[32] || origin_sig[64]
 *                            if flags & GM_WIRE_ROUTE_F_ORIGIN (needs cert_id)
 *                       flags: bit 0 = cert_id present, bit 1 = seqno request
 *                       (metric must then be 0xFFFF and no cert_id; seqno is the
 *                       requested seqno, hops the remaining forwarding budget >= 1),
 *                       bit 2 = signed route origin present (lib/net/route_origin.h);
 *                       other bits must be 0. metric 0xFFFF = unreachable (retraction).
 *   2     DATA          src[32] || dst[32] || ttl u8 || payload (1..GM_WIRE_DATA_PAYLOAD_MAX)
 *   3     CRL_ANNOUNCE  sequence u64
 *   4     CRL_REQUEST   (empty)
 *   5     CRL_DATA      one chunk of the signed CRL JSON: sequence u64 || total_len u32
 *                       || offset u32 || chunk (1..GM_WIRE_CRL_CHUNK_MAX bytes);
 *                       1 <= total_len <= GM_WIRE_CRL_TOTAL_MAX, offset + chunk <= total_len.
 *                       A CRL is sent as consecutive chunks with offsets 0, 60000, ...
 *   6     PING          nonce u64
 *   7     PONG          nonce u64 (echo of the PING's)
 *   8     CLOSE         reason u8 || UTF-8 text (0..GM_WIRE_CLOSE_TEXT_MAX bytes, no NUL)
 *   9     CERT          certificate JSON (1..GM_WIRE_BLOB_MAX bytes)
 *   16    POLICY_ANNOUNCE  \
 *   17    POLICY_REQUEST    } the access policy, laid out as CRL_ANNOUNCE, CRL_REQUEST, CRL_DATA
 *   18    POLICY_DATA      /
 *   19    GENESIS_ANNOUNCE \
 *   20    GENESIS_REQUEST   } the newest genesis block held (NA key rotation), same layouts; the
 *   21    GENESIS_DATA     /  announced number is the block's network_version (gm_genesis_version)
 *
 * Decoders reject unknown types, wrong lengths and trailing bytes; decoded byte
 * fields that point into the message stay valid as long as the message buffer. */
#ifndef GM_WIRE_H
#define GM_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "gm/crl.h"
#include "gm/error.h"
#include "gm/wire.h"

#define GM_WIRE_FRAME_HEADER 2
/* Largest carrier frame body: one Noise message. */
#define GM_WIRE_FRAME_MAX 65535
/* Largest transport message: one Noise message minus its 16-byte tag. */
#define GM_WIRE_MSG_MAX (GM_WIRE_FRAME_MAX - 16)

#define GM_WIRE_KEY_LEN 32
#define GM_WIRE_CERT_ID_LEN 16
#define GM_WIRE_METRIC_INF 0xFFFF

#define GM_WIRE_ROUTE_MAX_ENTRIES 512
#define GM_WIRE_ROUTE_F_CERT_ID 0x01
#define GM_WIRE_ROUTE_F_REQUEST 0x02
#define GM_WIRE_ROUTE_F_ORIGIN 0x04
#define GM_WIRE_ORIGIN_SIG_LEN 64
/* Encoded origin: time u64 || first_hop[32] || signature[64]. */
#define GM_WIRE_ORIGIN_LEN (8 + GM_WIRE_KEY_LEN + GM_WIRE_ORIGIN_SIG_LEN)
/* Largest encoded entry (with cert_id and origin): 32 + 8 + 2 + 1 + 1 + 16 + 104. */
#define GM_WIRE_ROUTE_ENTRY_MAX (60 + GM_WIRE_ORIGIN_LEN)
/* Entries of the largest size that fit in one transport message. */
#define GM_WIRE_ROUTE_FIT_ENTRIES ((GM_WIRE_MSG_MAX - 3) / GM_WIRE_ROUTE_ENTRY_MAX)

#define GM_WIRE_DATA_HEADER (1 + 2 * GM_WIRE_KEY_LEN + 1)
#define GM_WIRE_DATA_PAYLOAD_MAX (GM_WIRE_MSG_MAX - GM_WIRE_DATA_HEADER)
/* Largest CERT document. */
#define GM_WIRE_BLOB_MAX (GM_WIRE_MSG_MAX - 1)
/* CRL_DATA: header after the type byte, largest chunk, largest whole CRL (the CRL parser's cap). */
#define GM_WIRE_CRL_DATA_HEADER 16
#define GM_WIRE_CRL_CHUNK_MAX 60000
#define GM_WIRE_CRL_TOTAL_MAX ((unsigned)GM_CRL_MAX_BYTES)
#define GM_WIRE_CLOSE_TEXT_MAX 256

typedef enum gm_wire_type {
    GM_WIRE_ROUTE_UPDATE = 1,
    GM_WIRE_DATA = 2,
    GM_WIRE_CRL_ANNOUNCE = 3,
    GM_WIRE_CRL_REQUEST = 4,
    GM_WIRE_CRL_DATA = 5,
    GM_WIRE_PING = 6,
    GM_WIRE_PONG = 7,
    GM_WIRE_CLOSE = 8,
    GM_WIRE_CERT = 9,
    GM_WIRE_POLICY_ANNOUNCE = 16,
    GM_WIRE_POLICY_REQUEST = 17,
    GM_WIRE_POLICY_DATA = 18,
    GM_WIRE_GENESIS_ANNOUNCE = 19,
    GM_WIRE_GENESIS_REQUEST = 20,
    GM_WIRE_GENESIS_DATA = 21
} gm_wire_type;

/* CLOSE reason codes. Decoders accept any value (the text explains); these are
 * the ones we send. */
typedef enum gm_wire_close_reason {
    GM_WIRE_CLOSE_NORMAL = 0,
    GM_WIRE_CLOSE_PROTOCOL = 1,   /* peer broke the protocol */
    GM_WIRE_CLOSE_REVOKED = 2,    /* peer's certificate is in our CRL */
    GM_WIRE_CLOSE_BAD_CERT = 3,   /* certificate invalid, expired or for another network */
    GM_WIRE_CLOSE_SHUTDOWN = 4,   /* this node is stopping */
    GM_WIRE_CLOSE_OVERLOADED = 5, /* too many peers / out of resources */
    GM_WIRE_CLOSE_TIMEOUT = 6,    /* peer was idle too long */
    GM_WIRE_CLOSE_FORBIDDEN = 7   /* the access policy forbids a link between our roles */
} gm_wire_close_reason;

/* ---- carrier framing ---- */

/* Write the 2-byte header of a frame whose body is len bytes (1..GM_WIRE_FRAME_MAX). */
int gm_wire_frame_header(size_t len, uint8_t hdr[GM_WIRE_FRAME_HEADER], gm_error *err);
/* Write header || body into out (cap >= len + 2). */
int gm_wire_frame_encode(const uint8_t *body, size_t len, uint8_t *out, size_t cap,
                         size_t *out_len, gm_error *err);

/* Streaming frame reader: feed it whatever the socket returned, get whole frames. */
typedef struct gm_wire_reader gm_wire_reader_t;

/* New reader accepting frame bodies of 1..max_frame bytes (max_frame <= GM_WIRE_FRAME_MAX).
 * It allocates no frame buffer up front: only a frame that arrives split across feeds is
 * buffered, in memory grown to that frame's size (a large buffer is released after use). */
int gm_wire_reader_new(gm_wire_reader_t **out, size_t max_frame, gm_error *err);
void gm_wire_reader_free(gm_wire_reader_t *r);
/* Bytes the reader holds allocated now (its state and its frame buffer). */
size_t gm_wire_reader_mem(const gm_wire_reader_t *r);
/* Consume bytes from data[0..len) until a frame completes or the input runs out.
 * Returns 1 with *frame and *frame_len set when a frame is complete, 0 when all input
 * was consumed without completing one, or a negative code (GM_EPROTO for a
 * zero-length frame, GM_ETOOBIG for one over max_frame) after which the reader
 * refuses everything: close the connection. *consumed always tells how many bytes
 * of data were used; call again with the rest. *frame points into the reader's
 * buffer or into data and is valid until the next call (and while data is unchanged). */
int gm_wire_reader_feed(gm_wire_reader_t *r, const uint8_t *data, size_t len, size_t *consumed,
                        const uint8_t **frame, size_t *frame_len, gm_error *err);
/* Bytes of an incomplete frame held by the reader; nonzero at EOF means the peer
 * stopped mid-frame. */
size_t gm_wire_reader_pending(const gm_wire_reader_t *r);

/* ---- transport messages ---- */

/* Type of a transport message; GM_EPROTO if empty or of an unknown type. */
int gm_wire_msg_type(const uint8_t *msg, size_t len, uint8_t *type, gm_error *err);
/* "ROUTE_UPDATE", "DATA", ...; "unknown" otherwise. */
const char *gm_wire_type_name(uint8_t type);
const char *gm_wire_close_reason_name(uint8_t reason);

/* The destination's signature over its own route origin (lib/net/route_origin.h):
 * dest, seqno and cert_id of the entry, plus these fields. */
typedef struct gm_wire_route_origin {
    uint64_t time;                         /* unix seconds when dest signed it */
    uint8_t first_hop[GM_WIRE_KEY_LEN];    /* the neighbour of dest it was signed for */
    uint8_t sig[GM_WIRE_ORIGIN_SIG_LEN];   /* Ed25519 by dest */
} gm_wire_route_origin;

typedef struct gm_wire_route_entry {
    uint8_t dest[GM_WIRE_KEY_LEN]; /* destination node's Ed25519 public key */
    uint64_t seqno;                /* originator-owned sequence number */
    uint16_t metric;               /* GM_WIRE_METRIC_INF = unreachable */
    uint8_t hops;
    uint8_t request;               /* 1: seqno request for dest, not a route */
    uint8_t has_cert_id;
    uint8_t cert_id[GM_WIRE_CERT_ID_LEN]; /* UUID bytes of dest's certificate */
    uint8_t has_origin;
    gm_wire_route_origin origin;
} gm_wire_route_entry;

/* Encoded size of a ROUTE_UPDATE carrying these entries. */
size_t gm_wire_route_update_size(const gm_wire_route_entry *entries, size_t n);
int gm_wire_route_update_encode(const gm_wire_route_entry *entries, size_t n, uint8_t *out,
                                size_t cap, size_t *out_len, gm_error *err);
/* Decode into entries[0..cap); GM_ETOOBIG if the message holds more than cap. */
int gm_wire_route_update_decode(const uint8_t *msg, size_t len, gm_wire_route_entry *entries,
                                size_t cap, size_t *n, gm_error *err);

typedef struct gm_wire_data {
    uint8_t src[GM_WIRE_KEY_LEN];
    uint8_t dst[GM_WIRE_KEY_LEN];
    uint8_t ttl;            /* hops left; a forwarder decrements and drops at 0 */
    const uint8_t *payload; /* end-to-end ciphertext; points into the message when decoded */
    size_t payload_len;
} gm_wire_data;

/* The payload may already sit at out + GM_WIRE_DATA_HEADER (a message built or relayed in
 * place): then only the header is written. */
int gm_wire_data_encode(const gm_wire_data *d, uint8_t *out, size_t cap, size_t *out_len,
                        gm_error *err);
int gm_wire_data_decode(const uint8_t *msg, size_t len, gm_wire_data *d, gm_error *err);

int gm_wire_crl_announce_encode(uint64_t sequence, uint8_t *out, size_t cap, size_t *out_len,
                                gm_error *err);
int gm_wire_crl_announce_decode(const uint8_t *msg, size_t len, uint64_t *sequence,
                                gm_error *err);
int gm_wire_crl_request_encode(uint8_t *out, size_t cap, size_t *out_len, gm_error *err);
int gm_wire_crl_request_decode(const uint8_t *msg, size_t len, gm_error *err);
/* One CRL_DATA chunk: bytes [offset, offset + len) of a CRL of total_len bytes. */
typedef struct gm_wire_crl_chunk {
    uint64_t sequence;   /* sequence of the CRL (as the sender says; the signed text decides) */
    uint32_t total_len;  /* 1..GM_WIRE_CRL_TOTAL_MAX */
    uint32_t offset;     /* offset + len <= total_len */
    const uint8_t *data; /* points into the message when decoded */
    size_t len;          /* 1..GM_WIRE_CRL_CHUNK_MAX */
} gm_wire_crl_chunk;

int gm_wire_crl_data_encode(const gm_wire_crl_chunk *c, uint8_t *out, size_t cap,
                            size_t *out_len, gm_error *err);
int gm_wire_crl_data_decode(const uint8_t *msg, size_t len, gm_wire_crl_chunk *c,
                            gm_error *err);

/* The same three messages for any gossiped document: type is the document's ANNOUNCE,
 * REQUEST or DATA type (CRL_*, POLICY_* or GENESIS_*); the gm_wire_crl_* functions are these for the CRL. */
int gm_wire_doc_announce_encode(uint8_t type, uint64_t sequence, uint8_t *out, size_t cap, size_t *out_len,
                                gm_error *err);
int gm_wire_doc_announce_decode(uint8_t type, const uint8_t *msg, size_t len, uint64_t *sequence, gm_error *err);
int gm_wire_doc_request_encode(uint8_t type, uint8_t *out, size_t cap, size_t *out_len, gm_error *err);
int gm_wire_doc_request_decode(uint8_t type, const uint8_t *msg, size_t len, gm_error *err);
int gm_wire_doc_data_encode(uint8_t type, const gm_wire_crl_chunk *c, uint8_t *out, size_t cap, size_t *out_len,
                            gm_error *err);
int gm_wire_doc_data_decode(uint8_t type, const uint8_t *msg, size_t len, gm_wire_crl_chunk *c, gm_error *err);

int gm_wire_ping_encode(uint64_t nonce, uint8_t *out, size_t cap, size_t *out_len,
                        gm_error *err);
int gm_wire_ping_decode(const uint8_t *msg, size_t len, uint64_t *nonce, gm_error *err);
int gm_wire_pong_encode(uint64_t nonce, uint8_t *out, size_t cap, size_t *out_len,
                        gm_error *err);
int gm_wire_pong_decode(const uint8_t *msg, size_t len, uint64_t *nonce, gm_error *err);

typedef struct gm_wire_close {
    uint8_t reason;
    char text[GM_WIRE_CLOSE_TEXT_MAX + 1]; /* NUL-terminated, valid UTF-8 */
} gm_wire_close;

/* text (NUL-terminated, may be NULL) must be valid UTF-8; longer than
 * GM_WIRE_CLOSE_TEXT_MAX bytes it is cut at a character boundary. */
int gm_wire_close_encode(uint8_t reason, const char *text, uint8_t *out, size_t cap,
                         size_t *out_len, gm_error *err);
int gm_wire_close_decode(const uint8_t *msg, size_t len, gm_wire_close *c, gm_error *err);

int gm_wire_cert_encode(const uint8_t *cert, size_t cert_len, uint8_t *out, size_t cap,
                        size_t *out_len, gm_error *err);
/* *cert points into msg. */
int gm_wire_cert_decode(const uint8_t *msg, size_t len, const uint8_t **cert, size_t *cert_len,
                        gm_error *err);

#endif
