/* Noise Protocol Framework (revision 34) handshakes and transport ciphers for
 * Noise_{NN,KK,IK,XX}_25519_ChaChaPoly_SHA256, on libsodium. XX secures peer links,
 * IK/KK end-to-end sessions between mesh endpoints. Static keys are X25519 keys
 * converted from the nodes' Ed25519 keys (see gm_noise_static_from_ed25519_seed). */
#ifndef GM_NOISE_H
#define GM_NOISE_H

#include <stddef.h>
#include <stdint.h>

#include "gm/error.h"

#define GM_NOISE_DHLEN 32
#define GM_NOISE_HASHLEN 32
#define GM_NOISE_KEYLEN 32
#define GM_NOISE_TAG 16
/* Largest Noise message (handshake or transport ciphertext), per the spec. */
#define GM_NOISE_MAX_MSG 65535
/* Largest transport plaintext: one message minus its tag. */
#define GM_NOISE_MAX_PLAINTEXT (GM_NOISE_MAX_MSG - GM_NOISE_TAG)
/* Nonce 2^64-1 is reserved by Noise (used by REKEY); a cipher refuses to reach it. */
#define GM_NOISE_NONCE_MAX UINT64_MAX
/* Nonce from which gm_noise_cipher_needs_rekey() reports true. */
#define GM_NOISE_REKEY_AFTER (UINT64_C(1) << 60)

typedef enum gm_noise_pattern {
    GM_NOISE_NN = 0, /* -> e; <- e, ee  (no authentication) */
    GM_NOISE_KK,     /* both statics known in advance */
    GM_NOISE_IK,     /* initiator knows responder's static, sends its own encrypted */
    GM_NOISE_XX      /* statics exchanged (encrypted) during the handshake */
} gm_noise_pattern;

/* Transport cipher state after gm_noise_split: key and next nonce. Plain struct
 * so it can live in the connection; wipe it with gm_noise_cipher_wipe. */
typedef struct gm_noise_cipher {
    uint8_t k[GM_NOISE_KEYLEN];
    uint64_t n;
    int has_key; /* 0 before split, after wipe, or after a failed decrypt */
} gm_noise_cipher;

/* Opaque handshake state (held in sodium_malloc'd memory). */
typedef struct gm_noise_handshake gm_noise_handshake_t;

/* Start a handshake. local_static_sk is the X25519 private key (NULL for NN);
 * remote_static_pk is the peer's X25519 public key when the pattern requires it
 * up front (KK both sides, IK initiator), NULL otherwise. */
int gm_noise_handshake_new(gm_noise_handshake_t **hs, gm_noise_pattern pattern, int initiator,
                           const uint8_t *prologue, size_t prologue_len,
                           const uint8_t *local_static_sk, const uint8_t *remote_static_pk,
                           gm_error *err);
/* Tests only: use sk as the ephemeral private key instead of a random one. */
int gm_noise_handshake_set_ephemeral(gm_noise_handshake_t *hs, const uint8_t *sk, gm_error *err);
/* Write the next handshake message carrying payload into out (must not overlap payload).
 * On any error the handshake is wiped and unusable. */
int gm_noise_write_message(gm_noise_handshake_t *hs, const uint8_t *payload, size_t payload_len,
                           uint8_t *out, size_t out_cap, size_t *out_len, gm_error *err);
/* Read the next handshake message; its authenticated payload goes to payload_out
 * (must not overlap msg). On any error the handshake is wiped and unusable. */
int gm_noise_read_message(gm_noise_handshake_t *hs, const uint8_t *msg, size_t msg_len,
                          uint8_t *payload_out, size_t payload_cap, size_t *payload_len,
                          gm_error *err) GM_MUST_CHECK;
/* 1 when it is this side's turn to write, 0 when it must read (or the handshake is over). */
int gm_noise_handshake_is_writer(const gm_noise_handshake_t *hs);
/* 1 once every handshake message has been written or read successfully. */
int gm_noise_handshake_done(const gm_noise_handshake_t *hs);
/* Peer's X25519 static public key (32 bytes), or NULL while unknown or after a failure. */
const uint8_t *gm_noise_remote_static(const gm_noise_handshake_t *hs);
/* Handshake hash h (32 bytes) for channel binding, final once done; NULL after a failure. */
const uint8_t *gm_noise_handshake_hash(const gm_noise_handshake_t *hs);
/* Derive the transport ciphers (once, after done) and wipe the chaining key. */
int gm_noise_split(gm_noise_handshake_t *hs, gm_noise_cipher *send, gm_noise_cipher *recv,
                   gm_error *err);
/* Wipe every secret of the handshake and free it (NULL is fine). */
void gm_noise_handshake_free(gm_noise_handshake_t *hs);

/* Encrypt pt (up to GM_NOISE_MAX_PLAINTEXT) into out (len + GM_NOISE_TAG bytes);
 * refuses once the nonce reaches GM_NOISE_NONCE_MAX. out may equal pt. */
int gm_noise_encrypt(gm_noise_cipher *cs, const uint8_t *ad, size_t ad_len, const uint8_t *pt,
                     size_t pt_len, uint8_t *out, size_t out_cap, size_t *out_len, gm_error *err);
/* Decrypt and authenticate ct; on any failure the cipher is wiped (fail closed). out may equal ct. */
int gm_noise_decrypt(gm_noise_cipher *cs, const uint8_t *ad, size_t ad_len, const uint8_t *ct,
                     size_t ct_len, uint8_t *out, size_t out_cap, size_t *out_len, gm_error *err) GM_MUST_CHECK;
/* Noise REKEY: k = first 32 bytes of ENCRYPT(k, 2^64-1, "", 32 zeros); the nonce is kept. */
int gm_noise_rekey(gm_noise_cipher *cs, gm_error *err);
/* 1 once the nonce reaches GM_NOISE_REKEY_AFTER: replace the session with a new
 * handshake (REKEY refreshes the key but does not reset the nonce). */
int gm_noise_cipher_needs_rekey(const gm_noise_cipher *cs);
/* Wipe a transport cipher (key, nonce); it refuses to work afterwards. */
void gm_noise_cipher_wipe(gm_noise_cipher *cs);

/* X25519 static key pair of a node from its 32-byte Ed25519 seed. */
int gm_noise_static_from_ed25519_seed(const uint8_t *seed, uint8_t *x_sk, uint8_t *x_pk,
                                      gm_error *err);
/* X25519 public key of a peer from its Ed25519 public key (rejects invalid points). */
int gm_noise_static_pub_from_ed25519(const uint8_t *ed_pk, uint8_t *x_pk, gm_error *err);

#endif
