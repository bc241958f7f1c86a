/* Fuzz target for gm/noise: arbitrary bytes as the peer's handshake messages and
 * transport ciphertexts, for every pattern and both roles.
 * Input: byte 0 picks the pattern (bits 0-1) and our role (bit 2: 1 = initiator);
 * then pieces of [2-byte big-endian length][bytes], used in order as each message
 * we must read, then as transport ciphertexts after split. Keys and ephemerals are
 * fixed so that seeds holding a valid peer transcript stay valid. */
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "noise.h"

#define FUZZ_PROLOGUE "gm-fuzz"

static uint8_t fz_i_sk[32], fz_i_pk[32], fz_r_sk[32], fz_r_pk[32], fz_i_e[32], fz_r_e[32];

static void fuzz_keys(void)
{
    static int ready;
    if (ready)
        return;
    if (sodium_init() < 0)
        __builtin_trap();
    memset(fz_i_sk, 0x01, 32);
    memset(fz_r_sk, 0x02, 32);
    memset(fz_i_e, 0x03, 32);
    memset(fz_r_e, 0x04, 32);
    crypto_scalarmult_base(fz_i_pk, fz_i_sk);
    crypto_scalarmult_base(fz_r_pk, fz_r_sk);
    ready = 1;
}

/* Our side of the fuzzed session, set up as a real peer would. */
static gm_noise_handshake_t *fuzz_side(gm_noise_pattern p, int initiator)
{
    gm_noise_handshake_t *hs = NULL;
    const uint8_t *s = p == GM_NOISE_NN ? NULL : initiator ? fz_i_sk : fz_r_sk;
    const uint8_t *rs = NULL;
    if (p == GM_NOISE_KK || (p == GM_NOISE_IK && initiator))
        rs = initiator ? fz_r_pk : fz_i_pk;
    if (gm_noise_handshake_new(&hs, p, initiator, (const uint8_t *)FUZZ_PROLOGUE,
                               sizeof FUZZ_PROLOGUE - 1, s, rs, NULL) != 0)
        __builtin_trap();
    if (gm_noise_handshake_set_ephemeral(hs, initiator ? fz_i_e : fz_r_e, NULL) != 0)
        __builtin_trap();
    return hs;
}

static int next_piece(const uint8_t **data, size_t *size, const uint8_t **piece, size_t *len)
{
    if (*size < 2)
        return 0;
    size_t n = ((size_t)(*data)[0] << 8) | (*data)[1];
    if (n > *size - 2)
        n = *size - 2;
    *piece = *data + 2;
    *len = n;
    *data += 2 + n;
    *size -= 2 + n;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t out[GM_NOISE_MAX_MSG + 1], payload[GM_NOISE_MAX_MSG + 1];
    if (size < 1)
        return 0;
    fuzz_keys();
    gm_noise_pattern p = (gm_noise_pattern)(data[0] & 3);
    int initiator = (data[0] >> 2) & 1;
    data++, size--;

    gm_noise_handshake_t *hs = fuzz_side(p, initiator);
    const uint8_t *piece;
    size_t len, n;
    while (!gm_noise_handshake_done(hs)) {
        if (gm_noise_handshake_is_writer(hs)) {
            if (gm_noise_write_message(hs, (const uint8_t *)"fuzz", 4, out, sizeof out, &n, NULL))
                break;
        } else {
            if (!next_piece(&data, &size, &piece, &len))
                break;
            if (gm_noise_read_message(hs, piece, len, payload, sizeof payload, &n, NULL) != 0) {
                if (gm_noise_handshake_hash(hs) || gm_noise_handshake_done(hs))
                    __builtin_trap(); /* a failed handshake must stay dead */
                break;
            }
            if (n > len)
                __builtin_trap();
        }
    }
    if (gm_noise_handshake_done(hs)) {
        gm_noise_cipher send, recv;
        if (gm_noise_split(hs, &send, &recv, NULL) != 0)
            __builtin_trap();
        while (next_piece(&data, &size, &piece, &len)) {
            if (gm_noise_decrypt(&recv, NULL, 0, piece, len, payload, sizeof payload, &n, NULL) == 0) {
                if (n + GM_NOISE_TAG != len)
                    __builtin_trap();
                if (gm_noise_encrypt(&send, NULL, 0, payload, n, out, sizeof out, &n, NULL) != 0)
                    __builtin_trap();
            } else if (recv.has_key) {
                __builtin_trap(); /* failed decrypt must close the cipher */
            }
        }
        gm_noise_cipher_wipe(&send);
        gm_noise_cipher_wipe(&recv);
    }
    gm_noise_handshake_free(hs);
    return 0;
}
