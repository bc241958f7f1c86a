/* Noise Protocol Framework, revision 34: HandshakeState / SymmetricState /
 * CipherState for 25519_ChaChaPoly_SHA256 and the NN, KK, IK, XX patterns.
 * Every primitive comes from libsodium; this file only does the Noise bookkeeping.
 * Any failure during a handshake wipes it: a half-failed handshake is never reused. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "noise.h"

/* Handshake state holds secrets: guard pages (sodium_malloc) in production. Fuzzing builds
 * take it from the heap: ASan then sees overflows of it, and a handshake costs no mprotect or
 * munmap (each a TLB shootdown across the fuzzer's threads: they took 40% of fuzz_node_api's
 * time and half the CPU of its end-to-end inputs). */
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define hs_alloc(n) malloc(n)
#define hs_release(p) free(p)
#else
#define hs_alloc(n) sodium_malloc(n)
#define hs_release(p) sodium_free(p)
#endif

enum { TOK_END = 0, TOK_E, TOK_S, TOK_EE, TOK_ES, TOK_SE, TOK_SS };

#define MAX_MSGS 3
#define MAX_TOKS 4
#define NONCELEN crypto_aead_chacha20poly1305_IETF_NPUBBYTES

typedef struct pattern_def {
    const char *protocol;
    const char *name;
    uint8_t pre_initiator_s; /* "-> s" before the handshake */
    uint8_t pre_responder_s; /* "<- s" before the handshake */
    uint8_t nmsgs;
    uint8_t msgs[MAX_MSGS][MAX_TOKS + 1];
} pattern_def;

static const pattern_def patterns[] = {
    [GM_NOISE_NN] = {"Noise_NN_25519_ChaChaPoly_SHA256", "NN", 0, 0, 2,
                     {{TOK_E}, {TOK_E, TOK_EE}}},
    [GM_NOISE_KK] = {"Noise_KK_25519_ChaChaPoly_SHA256", "KK", 1, 1, 2,
                     {{TOK_E, TOK_ES, TOK_SS}, {TOK_E, TOK_EE, TOK_SE}}},
    [GM_NOISE_IK] = {"Noise_IK_25519_ChaChaPoly_SHA256", "IK", 0, 1, 2,
                     {{TOK_E, TOK_ES, TOK_S, TOK_SS}, {TOK_E, TOK_EE, TOK_SE}}},
    [GM_NOISE_XX] = {"Noise_XX_25519_ChaChaPoly_SHA256", "XX", 0, 0, 3,
                     {{TOK_E}, {TOK_E, TOK_EE, TOK_S, TOK_ES}, {TOK_S, TOK_SE}}},
};

struct gm_noise_handshake {
    uint8_t ck[GM_NOISE_HASHLEN];
    uint8_t h[GM_NOISE_HASHLEN];
    gm_noise_cipher cs; /* handshake CipherState; no key = plaintext pass-through */
    uint8_t s_sk[GM_NOISE_DHLEN], s_pk[GM_NOISE_DHLEN];
    uint8_t e_sk[GM_NOISE_DHLEN], e_pk[GM_NOISE_DHLEN];
    uint8_t rs[GM_NOISE_DHLEN], re[GM_NOISE_DHLEN];
    uint8_t has_s, has_e, has_rs, has_re;
    uint8_t initiator, failed, split_done, msg_index;
    const pattern_def *pat;
};

/* ---- CipherState ------------------------------------------------------- */

/* Noise nonce for ChaChaPoly: 32 zero bits then the 64-bit counter, little-endian. */
static void encode_nonce(uint8_t out[NONCELEN], uint64_t n)
{
    memset(out, 0, 4);
    for (int i = 0; i < 8; i++)
        out[4 + i] = (uint8_t)(n >> (8 * i));
}

static void aead_encrypt(const uint8_t *k, uint64_t n, const uint8_t *ad, size_t ad_len,
                         const uint8_t *pt, size_t pt_len, uint8_t *out)
{
    static const uint8_t empty[1];
    uint8_t nonce[NONCELEN];
    unsigned long long clen;
    encode_nonce(nonce, n);
    crypto_aead_chacha20poly1305_ietf_encrypt(out, &clen, pt_len ? pt : empty, pt_len,
                                              ad_len ? ad : empty, ad_len, NULL, nonce, k);
}

static int aead_decrypt(const uint8_t *k, uint64_t n, const uint8_t *ad, size_t ad_len,
                        const uint8_t *ct, size_t ct_len, uint8_t *out)
{
    static const uint8_t empty[1];
    uint8_t scratch[1];
    uint8_t nonce[NONCELEN];
    unsigned long long mlen;
    encode_nonce(nonce, n);
    return crypto_aead_chacha20poly1305_ietf_decrypt(ct_len > GM_NOISE_TAG ? out : scratch, &mlen,
                                                     NULL, ct, ct_len, ad_len ? ad : empty,
                                                     ad_len, nonce, k);
}

/* ---- SymmetricState ---------------------------------------------------- */

static void mix_hash(gm_noise_handshake_t *hs, const uint8_t *data, size_t len)
{
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, hs->h, sizeof hs->h);
    if (len)
        crypto_hash_sha256_update(&st, data, len);
    crypto_hash_sha256_final(&st, hs->h);
}

static void hmac(const uint8_t key[GM_NOISE_HASHLEN], const uint8_t *a, size_t a_len,
                 const uint8_t *b, size_t b_len, uint8_t out[GM_NOISE_HASHLEN])
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, GM_NOISE_HASHLEN);
    if (a_len)
        crypto_auth_hmacsha256_update(&st, a, a_len);
    if (b_len)
        crypto_auth_hmacsha256_update(&st, b, b_len);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof st);
}

/* Noise HKDF with two outputs; out1/out2 may alias ck. */
static void hkdf2(const uint8_t ck[GM_NOISE_HASHLEN], const uint8_t *ikm, size_t ikm_len,
                  uint8_t out1[GM_NOISE_HASHLEN], uint8_t out2[GM_NOISE_HASHLEN])
{
    static const uint8_t one = 0x01, two = 0x02;
    uint8_t temp_key[GM_NOISE_HASHLEN], o1[GM_NOISE_HASHLEN], o2[GM_NOISE_HASHLEN];
    hmac(ck, ikm, ikm_len, NULL, 0, temp_key);
    hmac(temp_key, &one, 1, NULL, 0, o1);
    hmac(temp_key, o1, sizeof o1, &two, 1, o2);
    memcpy(out1, o1, sizeof o1);
    memcpy(out2, o2, sizeof o2);
    sodium_memzero(temp_key, sizeof temp_key);
    sodium_memzero(o1, sizeof o1);
    sodium_memzero(o2, sizeof o2);
}

static void mix_key(gm_noise_handshake_t *hs, const uint8_t *ikm, size_t ikm_len)
{
    hkdf2(hs->ck, ikm, ikm_len, hs->ck, hs->cs.k);
    hs->cs.n = 0;
    hs->cs.has_key = 1;
}

static int encrypt_and_hash(gm_noise_handshake_t *hs, const uint8_t *pt, size_t len, uint8_t *out,
                            size_t *out_len, gm_error *err)
{
    if (!hs->cs.has_key) {
        if (len)
            memmove(out, pt, len);
        *out_len = len;
    } else {
        if (hs->cs.n == GM_NOISE_NONCE_MAX)
            return gm_error_set(err, GM_EEXPIRED, "Noise handshake nonce exhausted");
        aead_encrypt(hs->cs.k, hs->cs.n, hs->h, sizeof hs->h, pt, len, out);
        hs->cs.n++;
        *out_len = len + GM_NOISE_TAG;
    }
    mix_hash(hs, out, *out_len);
    return 0;
}

/* h is advanced before decrypting (with the old h as AD) so out may be ct itself. */
static int decrypt_and_hash(gm_noise_handshake_t *hs, const uint8_t *ct, size_t len, uint8_t *out,
                            gm_error *err)
{
    uint8_t ad[GM_NOISE_HASHLEN];
    memcpy(ad, hs->h, sizeof ad);
    mix_hash(hs, ct, len);
    if (!hs->cs.has_key) {
        if (len)
            memmove(out, ct, len);
        return 0;
    }
    if (hs->cs.n == GM_NOISE_NONCE_MAX)
        return gm_error_set(err, GM_EEXPIRED, "Noise handshake nonce exhausted");
    if (aead_decrypt(hs->cs.k, hs->cs.n, ad, sizeof ad, ct, len, out) != 0)
        return gm_error_set(err, GM_EAUTH,
                            "Noise handshake message failed authentication (tampered message, "
                            "wrong keys or different prologue)");
    hs->cs.n++;
    return 0;
}

/* ---- HandshakeState ---------------------------------------------------- */

static void wipe_secrets(gm_noise_handshake_t *hs)
{
    sodium_memzero(hs->ck, sizeof hs->ck);
    sodium_memzero(&hs->cs, sizeof hs->cs);
    sodium_memzero(hs->s_sk, sizeof hs->s_sk);
    sodium_memzero(hs->e_sk, sizeof hs->e_sk);
}

/* Fail closed: the handshake can never be used again. */
static int fail(gm_noise_handshake_t *hs, int rc)
{
    wipe_secrets(hs);
    sodium_memzero(hs->h, sizeof hs->h);
    sodium_memzero(hs->rs, sizeof hs->rs);
    sodium_memzero(hs->re, sizeof hs->re);
    hs->has_s = hs->has_e = hs->has_rs = hs->has_re = 0;
    hs->failed = 1;
    return rc;
}

static int dh_mix(gm_noise_handshake_t *hs, int tok, gm_error *err)
{
    const uint8_t *sk, *pk;
    int ok;
    switch (tok) {
    case TOK_EE:
        sk = hs->e_sk, pk = hs->re, ok = hs->has_e && hs->has_re;
        break;
    case TOK_ES:
        if (hs->initiator)
            sk = hs->e_sk, pk = hs->rs, ok = hs->has_e && hs->has_rs;
        else
            sk = hs->s_sk, pk = hs->re, ok = hs->has_s && hs->has_re;
        break;
    case TOK_SE:
        if (hs->initiator)
            sk = hs->s_sk, pk = hs->re, ok = hs->has_s && hs->has_re;
        else
            sk = hs->e_sk, pk = hs->rs, ok = hs->has_e && hs->has_rs;
        break;
    default: /* TOK_SS */
        sk = hs->s_sk, pk = hs->rs, ok = hs->has_s && hs->has_rs;
        break;
    }
    if (!ok)
        return gm_error_set(err, GM_EINTERNAL, "Noise DH with a key that is not set");
    uint8_t shared[GM_NOISE_DHLEN];
    if (crypto_scalarmult(shared, sk, pk) != 0) {
        sodium_memzero(shared, sizeof shared);
        return gm_error_set(err, GM_EPROTO,
                            "Noise peer key is a low-order X25519 point (all-zero shared secret)");
    }
    mix_key(hs, shared, sizeof shared);
    sodium_memzero(shared, sizeof shared);
    return 0;
}

/* Bytes a message adds around its payload (keys and tags), given the current key state. */
static size_t msg_overhead(const gm_noise_handshake_t *hs, const uint8_t *toks)
{
    int has_key = hs->cs.has_key;
    size_t n = 0;
    for (; *toks != TOK_END; toks++) {
        if (*toks == TOK_E)
            n += GM_NOISE_DHLEN;
        else if (*toks == TOK_S)
            n += GM_NOISE_DHLEN + (has_key ? GM_NOISE_TAG : 0);
        else
            has_key = 1;
    }
    return n + (has_key ? GM_NOISE_TAG : 0);
}

static int check_turn(const gm_noise_handshake_t *hs, int writing, gm_error *err)
{
    if (hs->failed)
        return gm_error_set(err, GM_EINVAL, "Noise handshake already failed; start a new one");
    if (hs->msg_index >= hs->pat->nmsgs)
        return gm_error_set(err, GM_EINVAL, "Noise handshake already finished");
    if (gm_noise_handshake_is_writer(hs) != writing)
        return gm_error_set(err, GM_EINVAL, "Noise handshake: it is not this side's turn to %s",
                            writing ? "write" : "read");
    return 0;
}

int gm_noise_handshake_new(gm_noise_handshake_t **hsp, gm_noise_pattern pattern, int initiator,
                           const uint8_t *prologue, size_t prologue_len,
                           const uint8_t *local_static_sk, const uint8_t *remote_static_pk,
                           gm_error *err)
{
    if (!hsp)
        return gm_error_set(err, GM_EINVAL, "Noise handshake: no output pointer");
    *hsp = NULL;
    if ((unsigned)pattern >= sizeof patterns / sizeof patterns[0])
        return gm_error_set(err, GM_EINVAL, "unknown Noise pattern %d", (int)pattern);
    if (!prologue && prologue_len)
        return gm_error_set(err, GM_EINVAL, "Noise prologue is NULL but has a length");
    const pattern_def *pat = &patterns[pattern];
    int need_s = pattern != GM_NOISE_NN;
    int need_rs = initiator ? (pat->pre_responder_s != 0) : (pat->pre_initiator_s != 0);
    if (need_s && !local_static_sk)
        return gm_error_set(err, GM_EINVAL, "Noise %s needs the local static key", pat->name);
    if (!need_s && local_static_sk)
        return gm_error_set(err, GM_EINVAL, "Noise %s takes no static key", pat->name);
    if (need_rs && !remote_static_pk)
        return gm_error_set(err, GM_EINVAL,
                            "Noise %s %s needs the peer's static public key in advance", pat->name,
                            initiator ? "initiator" : "responder");
    if (!need_rs && remote_static_pk)
        return gm_error_set(err, GM_EINVAL,
                            "Noise %s %s learns the peer's static key in the handshake; pass NULL",
                            pat->name, initiator ? "initiator" : "responder");
    if (sodium_init() < 0)
        return gm_error_set(err, GM_ECRYPTO, "libsodium failed to initialise");

    gm_noise_handshake_t *hs = hs_alloc(sizeof *hs);
    if (!hs)
        return gm_error_set(err, GM_ENOMEM, "out of memory for a Noise handshake");
    memset(hs, 0, sizeof *hs);
    hs->pat = pat;
    hs->initiator = initiator ? 1 : 0;

    size_t name_len = strlen(pat->protocol);
    if (name_len <= GM_NOISE_HASHLEN)
        memcpy(hs->h, pat->protocol, name_len);
    else
        crypto_hash_sha256(hs->h, (const uint8_t *)pat->protocol, name_len);
    memcpy(hs->ck, hs->h, sizeof hs->ck);
    mix_hash(hs, prologue, prologue_len);

    if (local_static_sk) {
        memcpy(hs->s_sk, local_static_sk, GM_NOISE_DHLEN);
        if (crypto_scalarmult_base(hs->s_pk, hs->s_sk) != 0) {
            gm_noise_handshake_free(hs);
            return gm_error_set(err, GM_ECRYPTO, "Noise local static key is not a usable X25519 key");
        }
        hs->has_s = 1;
    }
    if (remote_static_pk) {
        memcpy(hs->rs, remote_static_pk, GM_NOISE_DHLEN);
        hs->has_rs = 1;
    }
    /* Pre-message keys are hashed initiator's first, whatever side we are. */
    if (pat->pre_initiator_s)
        mix_hash(hs, initiator ? hs->s_pk : hs->rs, GM_NOISE_DHLEN);
    if (pat->pre_responder_s)
        mix_hash(hs, initiator ? hs->rs : hs->s_pk, GM_NOISE_DHLEN);
    *hsp = hs;
    return 0;
}

int gm_noise_handshake_set_ephemeral(gm_noise_handshake_t *hs, const uint8_t *sk, gm_error *err)
{
    if (!hs || !sk)
        return gm_error_set(err, GM_EINVAL, "Noise set_ephemeral: missing argument");
    if (hs->failed || hs->has_e)
        return fail(hs, gm_error_set(err, GM_EINVAL,
                                     "Noise ephemeral key can only be set before it is used"));
    memcpy(hs->e_sk, sk, GM_NOISE_DHLEN);
    if (crypto_scalarmult_base(hs->e_pk, hs->e_sk) != 0)
        return fail(hs, gm_error_set(err, GM_ECRYPTO, "Noise ephemeral key is not usable"));
    hs->has_e = 1;
    return 0;
}

int gm_noise_write_message(gm_noise_handshake_t *hs, const uint8_t *payload, size_t payload_len,
                           uint8_t *out, size_t out_cap, size_t *out_len, gm_error *err)
{
    if (out_len)
        *out_len = 0;
    if (!hs)
        return gm_error_set(err, GM_EINVAL, "Noise write: no handshake");
    if (!out_len || !out || (!payload && payload_len))
        return fail(hs, gm_error_set(err, GM_EINVAL, "Noise write: missing argument"));
    int rc = check_turn(hs, 1, err);
    if (rc)
        return fail(hs, rc);
    const uint8_t *toks = hs->pat->msgs[hs->msg_index];
    size_t overhead = msg_overhead(hs, toks);
    if (payload_len > GM_NOISE_MAX_MSG - overhead)
        return fail(hs, gm_error_set(err, GM_ETOOBIG,
                                     "Noise handshake payload of %zu bytes exceeds the %d-byte "
                                     "message limit",
                                     payload_len, GM_NOISE_MAX_MSG));
    if (out_cap < overhead + payload_len)
        return fail(hs, gm_error_set(err, GM_ETOOBIG,
                                     "Noise write: output buffer of %zu bytes, need %zu", out_cap,
                                     overhead + payload_len));
    size_t pos = 0, n;
    for (; *toks != TOK_END; toks++) {
        switch (*toks) {
        case TOK_E:
            if (!hs->has_e) {
                randombytes_buf(hs->e_sk, sizeof hs->e_sk);
                if (crypto_scalarmult_base(hs->e_pk, hs->e_sk) != 0)
                    return fail(hs, gm_error_set(err, GM_ECRYPTO, "Noise ephemeral generation failed"));
                hs->has_e = 1;
            }
            memcpy(out + pos, hs->e_pk, GM_NOISE_DHLEN);
            mix_hash(hs, hs->e_pk, GM_NOISE_DHLEN);
            pos += GM_NOISE_DHLEN;
            break;
        case TOK_S:
            if ((rc = encrypt_and_hash(hs, hs->s_pk, GM_NOISE_DHLEN, out + pos, &n, err)) != 0)
                return fail(hs, rc);
            pos += n;
            break;
        default:
            if ((rc = dh_mix(hs, *toks, err)) != 0)
                return fail(hs, rc);
        }
    }
    if ((rc = encrypt_and_hash(hs, payload, payload_len, out + pos, &n, err)) != 0)
        return fail(hs, rc);
    pos += n;
    hs->msg_index++;
    *out_len = pos;
    return 0;
}

int gm_noise_read_message(gm_noise_handshake_t *hs, const uint8_t *msg, size_t msg_len,
                          uint8_t *payload_out, size_t payload_cap, size_t *payload_len,
                          gm_error *err)
{
    if (payload_len)
        *payload_len = 0;
    if (!hs)
        return gm_error_set(err, GM_EINVAL, "Noise read: no handshake");
    if (!payload_len || (!msg && msg_len) || (!payload_out && payload_cap))
        return fail(hs, gm_error_set(err, GM_EINVAL, "Noise read: missing argument"));
    int rc = check_turn(hs, 0, err);
    if (rc)
        return fail(hs, rc);
    if (msg_len > GM_NOISE_MAX_MSG)
        return fail(hs, gm_error_set(err, GM_ETOOBIG,
                                     "Noise handshake message of %zu bytes exceeds the %d-byte limit",
                                     msg_len, GM_NOISE_MAX_MSG));
    const uint8_t *toks = hs->pat->msgs[hs->msg_index];
    size_t overhead = msg_overhead(hs, toks);
    if (msg_len < overhead)
        return fail(hs, gm_error_set(err, GM_EPROTO,
                                     "Noise handshake message %u too short: %zu bytes, need %zu",
                                     (unsigned)hs->msg_index + 1, msg_len, overhead));
    size_t plen = msg_len - overhead;
    if (plen > payload_cap)
        return fail(hs, gm_error_set(err, GM_ETOOBIG,
                                     "Noise read: payload buffer of %zu bytes, need %zu",
                                     payload_cap, plen));
    size_t pos = 0;
    for (; *toks != TOK_END; toks++) {
        switch (*toks) {
        case TOK_E:
            memcpy(hs->re, msg + pos, GM_NOISE_DHLEN);
            hs->has_re = 1;
            mix_hash(hs, hs->re, GM_NOISE_DHLEN);
            pos += GM_NOISE_DHLEN;
            break;
        case TOK_S: {
            size_t slen = GM_NOISE_DHLEN + (hs->cs.has_key ? GM_NOISE_TAG : 0);
            if ((rc = decrypt_and_hash(hs, msg + pos, slen, hs->rs, err)) != 0)
                return fail(hs, rc);
            hs->has_rs = 1;
            pos += slen;
            break;
        }
        default:
            if ((rc = dh_mix(hs, *toks, err)) != 0)
                return fail(hs, rc);
        }
    }
    uint8_t scratch[1];
    rc = decrypt_and_hash(hs, msg + pos, msg_len - pos, plen ? payload_out : scratch, err);
    if (rc) {
        if (plen)
            sodium_memzero(payload_out, plen);
        return fail(hs, rc);
    }
    hs->msg_index++;
    *payload_len = plen;
    return 0;
}

int gm_noise_handshake_is_writer(const gm_noise_handshake_t *hs)
{
    if (!hs || hs->failed || hs->msg_index >= hs->pat->nmsgs)
        return 0;
    return ((hs->msg_index % 2) == 0) == (hs->initiator != 0);
}

int gm_noise_handshake_done(const gm_noise_handshake_t *hs)
{
    return hs && !hs->failed && hs->msg_index >= hs->pat->nmsgs;
}

const uint8_t *gm_noise_remote_static(const gm_noise_handshake_t *hs)
{
    return hs && !hs->failed && hs->has_rs ? hs->rs : NULL;
}

const uint8_t *gm_noise_handshake_hash(const gm_noise_handshake_t *hs)
{
    return hs && !hs->failed ? hs->h : NULL;
}

int gm_noise_split(gm_noise_handshake_t *hs, gm_noise_cipher *send, gm_noise_cipher *recv,
                   gm_error *err)
{
    if (!hs)
        return gm_error_set(err, GM_EINVAL, "Noise split: no handshake");
    if (!send || !recv || send == recv)
        return fail(hs, gm_error_set(err, GM_EINVAL, "Noise split: need two distinct cipher states"));
    if (!gm_noise_handshake_done(hs))
        return fail(hs, gm_error_set(err, GM_EINVAL, "Noise split before the handshake finished"));
    if (hs->split_done)
        return fail(hs, gm_error_set(err, GM_EINVAL, "Noise split called twice"));
    uint8_t k1[GM_NOISE_KEYLEN], k2[GM_NOISE_KEYLEN];
    hkdf2(hs->ck, NULL, 0, k1, k2);
    gm_noise_cipher *c1 = hs->initiator ? send : recv, *c2 = hs->initiator ? recv : send;
    memcpy(c1->k, k1, sizeof k1);
    memcpy(c2->k, k2, sizeof k2);
    c1->n = c2->n = 0;
    c1->has_key = c2->has_key = 1;
    sodium_memzero(k1, sizeof k1);
    sodium_memzero(k2, sizeof k2);
    wipe_secrets(hs);
    hs->split_done = 1;
    return 0;
}

void gm_noise_handshake_free(gm_noise_handshake_t *hs)
{
    if (!hs)
        return;
    sodium_memzero(hs, sizeof *hs);
    hs_release(hs);
}

/* ---- Transport --------------------------------------------------------- */

int gm_noise_encrypt(gm_noise_cipher *cs, const uint8_t *ad, size_t ad_len, const uint8_t *pt,
                     size_t pt_len, uint8_t *out, size_t out_cap, size_t *out_len, gm_error *err)
{
    if (out_len)
        *out_len = 0;
    if (!cs || !out || !out_len || (!pt && pt_len) || (!ad && ad_len))
        return gm_error_set(err, GM_EINVAL, "Noise encrypt: missing argument");
    if (!cs->has_key)
        return gm_error_set(err, GM_EINVAL,
                            "Noise transport cipher has no key (not split, wiped, or closed after "
                            "a failed decrypt)");
    if (pt_len > GM_NOISE_MAX_PLAINTEXT)
        return gm_error_set(err, GM_ETOOBIG,
                            "Noise transport plaintext of %zu bytes exceeds the %d-byte limit",
                            pt_len, GM_NOISE_MAX_PLAINTEXT);
    if (out_cap < pt_len + GM_NOISE_TAG)
        return gm_error_set(err, GM_ETOOBIG, "Noise encrypt: output buffer of %zu bytes, need %zu",
                            out_cap, pt_len + GM_NOISE_TAG);
    if (cs->n >= GM_NOISE_NONCE_MAX)
        return gm_error_set(err, GM_EEXPIRED,
                            "Noise transport nonce exhausted; start a new handshake");
    aead_encrypt(cs->k, cs->n, ad, ad_len, pt, pt_len, out);
    cs->n++;
    *out_len = pt_len + GM_NOISE_TAG;
    return 0;
}

int gm_noise_decrypt(gm_noise_cipher *cs, const uint8_t *ad, size_t ad_len, const uint8_t *ct,
                     size_t ct_len, uint8_t *out, size_t out_cap, size_t *out_len, gm_error *err)
{
    if (out_len)
        *out_len = 0;
    if (!cs || !out_len || (!ct && ct_len) || (!ad && ad_len) || (!out && out_cap))
        return gm_error_set(err, GM_EINVAL, "Noise decrypt: missing argument");
    if (!cs->has_key)
        return gm_error_set(err, GM_EINVAL,
                            "Noise transport cipher has no key (not split, wiped, or closed after "
                            "a failed decrypt)");
    int rc = 0;
    if (ct_len > GM_NOISE_MAX_MSG)
        rc = gm_error_set(err, GM_ETOOBIG,
                          "Noise transport message of %zu bytes exceeds the %d-byte limit", ct_len,
                          GM_NOISE_MAX_MSG);
    else if (ct_len < GM_NOISE_TAG)
        rc = gm_error_set(err, GM_EPROTO, "Noise transport message of %zu bytes is shorter than a tag",
                          ct_len);
    else if (out_cap < ct_len - GM_NOISE_TAG)
        rc = gm_error_set(err, GM_ETOOBIG, "Noise decrypt: output buffer of %zu bytes, need %zu",
                          out_cap, ct_len - GM_NOISE_TAG);
    else if (cs->n >= GM_NOISE_NONCE_MAX)
        rc = gm_error_set(err, GM_EEXPIRED,
                          "Noise transport nonce exhausted; start a new handshake");
    else if (aead_decrypt(cs->k, cs->n, ad, ad_len, ct, ct_len, out) != 0)
        rc = gm_error_set(err, GM_EAUTH,
                          "Noise transport message failed authentication (tampered, replayed or "
                          "out of order); the session is closed");
    if (rc) {
        gm_noise_cipher_wipe(cs);
        return rc;
    }
    cs->n++;
    *out_len = ct_len - GM_NOISE_TAG;
    return 0;
}

int gm_noise_rekey(gm_noise_cipher *cs, gm_error *err)
{
    if (!cs || !cs->has_key)
        return gm_error_set(err, GM_EINVAL, "Noise rekey: cipher has no key");
    static const uint8_t zeros[GM_NOISE_KEYLEN];
    uint8_t out[GM_NOISE_KEYLEN + GM_NOISE_TAG];
    aead_encrypt(cs->k, GM_NOISE_NONCE_MAX, NULL, 0, zeros, sizeof zeros, out);
    memcpy(cs->k, out, GM_NOISE_KEYLEN);
    sodium_memzero(out, sizeof out);
    return 0;
}

int gm_noise_cipher_needs_rekey(const gm_noise_cipher *cs)
{
    return cs && cs->has_key && cs->n >= GM_NOISE_REKEY_AFTER;
}

void gm_noise_cipher_wipe(gm_noise_cipher *cs)
{
    if (cs)
        sodium_memzero(cs, sizeof *cs);
}

/* ---- Static keys from Ed25519 identities -------------------------------- */

int gm_noise_static_from_ed25519_seed(const uint8_t *seed, uint8_t *x_sk, uint8_t *x_pk,
                                      gm_error *err)
{
    if (!seed || !x_sk || !x_pk)
        return gm_error_set(err, GM_EINVAL, "Ed25519 to X25519: missing argument");
    if (sodium_init() < 0)
        return gm_error_set(err, GM_ECRYPTO, "libsodium failed to initialise");
    uint8_t ed_pk[crypto_sign_PUBLICKEYBYTES], ed_sk[crypto_sign_SECRETKEYBYTES];
    int rc = 0;
    if (crypto_sign_seed_keypair(ed_pk, ed_sk, seed) != 0 ||
        crypto_sign_ed25519_sk_to_curve25519(x_sk, ed_sk) != 0 ||
        crypto_sign_ed25519_pk_to_curve25519(x_pk, ed_pk) != 0) {
        sodium_memzero(x_sk, GM_NOISE_DHLEN);
        rc = gm_error_set(err, GM_ECRYPTO, "could not convert the Ed25519 key to an X25519 key");
    }
    sodium_memzero(ed_sk, sizeof ed_sk);
    return rc;
}

int gm_noise_static_pub_from_ed25519(const uint8_t *ed_pk, uint8_t *x_pk, gm_error *err)
{
    if (!ed_pk || !x_pk)
        return gm_error_set(err, GM_EINVAL, "Ed25519 to X25519: missing argument");
    if (sodium_init() < 0)
        return gm_error_set(err, GM_ECRYPTO, "libsodium failed to initialise");
    if (crypto_sign_ed25519_pk_to_curve25519(x_pk, ed_pk) != 0)
        return gm_error_set(err, GM_ECRYPTO,
                            "peer Ed25519 public key is not a valid curve point; cannot derive "
                            "its X25519 transport key");
    return 0;
}
