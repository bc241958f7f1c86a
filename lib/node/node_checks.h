/* The node runtime's pure pieces, private to lib/ (the runtime, its unit tests, fuzz targets
 * and benchmarks): the trust check of a peer certificate, CRL acceptance and the end-to-end
 * replay window. No I/O, no clock of their own. */
#ifndef GM_NODE_CHECKS_H
#define GM_NODE_CHECKS_H

#include <stddef.h>
#include <stdint.h>

#include "gm/cert.h"
#include "gm/crl.h"
#include "gm/error.h"
#include "gm/genesis.h"
#include "gm/gmtime.h"

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
                        gm_trust_reason *reason, gm_error *err) GM_MUST_CHECK;

/* ---- CRL acceptance (node_crl.c) ---- */

/* Accept text as the new CRL only if it parses, its signature verifies under na_pk and its
 * sequence is strictly higher than current's (current NULL = none held yet: any valid
 * sequence). On success *out holds it. GM_ECONFLICT for an old or equal sequence. */
int gm_node_crl_accept(const gm_crl *current, const uint8_t na_pk[32], const char *text,
                       size_t len, gm_crl *out, gm_error *err) GM_MUST_CHECK;

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

#endif
