/* Tests for lib/net/noise.h: cacophony vectors replayed on both sides, failure modes
 * (tampering, prologue mismatch, low-order keys, sizes, nonce limits), rekey. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "noise.h"

#define BUF 65536

static uint8_t *buf_a, *buf_b, *buf_c; /* big scratch buffers, allocated in main */

static int hex_decode(const char *hex, uint8_t *out, size_t cap, size_t *len)
{
    size_t bin_len;
    if (sodium_hex2bin(out, cap, hex, strlen(hex), NULL, &bin_len, NULL) != 0)
        return -1;
    *len = bin_len;
    return 0;
}

/* Decode a 32-byte key member; returns 0 if absent, 1 if present. */
static int key_member(json_t *v, const char *name, uint8_t key[32])
{
    json_t *m = json_object_get(v, name);
    if (!m)
        return 0;
    size_t len;
    assert_true(json_is_string(m));
    assert_int_equal(hex_decode(json_string_value(m), key, 32, &len), 0);
    assert_int_equal(len, 32);
    return 1;
}

static char *vectors_path(void)
{
    static char path[4096];
    const char *vectors = getenv("GM_VECTORS");
    snprintf(path, sizeof path, "%s/noise/cacophony-subset.json", vectors ? vectors : "tests/vectors");
    return path;
}

/* 1: supported suite (pattern filled); 0: unsupported, skip. */
static int parse_protocol(const char *proto, gm_noise_pattern *p)
{
    static const char suffix[] = "_25519_ChaChaPoly_SHA256";
    static const struct { const char *name; gm_noise_pattern p; } pats[] = {
        {"Noise_NN", GM_NOISE_NN}, {"Noise_KK", GM_NOISE_KK},
        {"Noise_IK", GM_NOISE_IK}, {"Noise_XX", GM_NOISE_XX}};
    size_t len = strlen(proto);
    if (len != 8 + strlen(suffix) || strcmp(proto + 8, suffix) != 0)
        return 0;
    for (size_t i = 0; i < sizeof pats / sizeof pats[0]; i++)
        if (strncmp(proto, pats[i].name, 8) == 0) {
            *p = pats[i].p;
            return 1;
        }
    return 0;
}

static void replay_vector(json_t *v, gm_noise_pattern pattern)
{
    uint8_t prologue[256], key[32], sk[32], rs[32], expect[BUF];
    size_t plen = 0, elen = 0;
    gm_noise_handshake_t *side[2] = {NULL, NULL};
    const char *pfx[2] = {"init_", "resp_"};
    gm_error err = {0};

    for (int s = 0; s < 2; s++) {
        char name[64];
        snprintf(name, sizeof name, "%sprologue", pfx[s]);
        assert_int_equal(hex_decode(json_string_value(json_object_get(v, name)), prologue,
                                    sizeof prologue, &plen), 0);
        snprintf(name, sizeof name, "%sstatic", pfx[s]);
        int has_s = key_member(v, name, sk);
        snprintf(name, sizeof name, "%sremote_static", pfx[s]);
        int has_rs = key_member(v, name, rs);
        int rc = gm_noise_handshake_new(&side[s], pattern, s == 0, prologue, plen,
                                        has_s ? sk : NULL, has_rs ? rs : NULL, &err);
        assert_int_equal(rc, 0);
        snprintf(name, sizeof name, "%sephemeral", pfx[s]);
        assert_int_equal(key_member(v, name, key), 1);
        assert_int_equal(gm_noise_handshake_set_ephemeral(side[s], key, &err), 0);
    }

    gm_noise_cipher send[2], recv[2];
    int split = 0;
    json_t *msgs = json_object_get(v, "messages");
    assert_true(json_array_size(msgs) > 0);
    for (size_t i = 0; i < json_array_size(msgs); i++) {
        json_t *m = json_array_get(msgs, i);
        int from = (int)(i % 2), to = 1 - from;
        size_t pl_len = 0, out_len = 0, got_len = 0;
        assert_int_equal(hex_decode(json_string_value(json_object_get(m, "payload")), buf_a, BUF,
                                    &pl_len), 0);
        assert_int_equal(hex_decode(json_string_value(json_object_get(m, "ciphertext")), expect,
                                    sizeof expect, &elen), 0);
        if (!split && gm_noise_handshake_done(side[0]) && gm_noise_handshake_done(side[1])) {
            uint8_t hh[32];
            size_t hh_len;
            assert_int_equal(hex_decode(json_string_value(json_object_get(v, "handshake_hash")),
                                        hh, sizeof hh, &hh_len), 0);
            assert_int_equal(hh_len, 32);
            assert_memory_equal(gm_noise_handshake_hash(side[0]), hh, 32);
            assert_memory_equal(gm_noise_handshake_hash(side[1]), hh, 32);
            assert_int_equal(gm_noise_split(side[0], &send[0], &recv[0], &err), 0);
            assert_int_equal(gm_noise_split(side[1], &send[1], &recv[1], &err), 0);
            split = 1;
        }
        if (!split) {
            assert_true(gm_noise_handshake_is_writer(side[from]));
            assert_int_equal(gm_noise_write_message(side[from], buf_a, pl_len, buf_b, BUF,
                                                    &out_len, &err), 0);
            assert_int_equal(out_len, elen);
            assert_memory_equal(buf_b, expect, elen);
            assert_int_equal(gm_noise_read_message(side[to], buf_b, out_len, buf_c, BUF, &got_len,
                                                   &err), 0);
            memcpy(buf_b, buf_c, got_len);
        } else {
            assert_int_equal(gm_noise_encrypt(&send[from], NULL, 0, buf_a, pl_len, buf_b, BUF,
                                              &out_len, &err), 0);
            assert_int_equal(out_len, elen);
            assert_memory_equal(buf_b, expect, elen);
            assert_int_equal(gm_noise_decrypt(&recv[to], NULL, 0, buf_b, out_len, buf_b, BUF,
                                              &got_len, &err), 0);
        }
        assert_int_equal(got_len, pl_len);
        assert_memory_equal(buf_b, buf_a, pl_len);
    }
    assert_int_equal(split, 1);
    if (pattern != GM_NOISE_NN) {
        uint8_t pk[32];
        for (int s = 0; s < 2; s++) {
            char name[64];
            snprintf(name, sizeof name, "%sstatic", pfx[1 - s]);
            assert_int_equal(key_member(v, name, sk), 1);
            crypto_scalarmult_base(pk, sk);
            assert_non_null(gm_noise_remote_static(side[s]));
            assert_memory_equal(gm_noise_remote_static(side[s]), pk, 32);
        }
    }
    for (int s = 0; s < 2; s++) {
        gm_noise_cipher_wipe(&send[s]);
        gm_noise_cipher_wipe(&recv[s]);
        gm_noise_handshake_free(side[s]);
    }
}

static void test_cacophony_vectors_replay_on_both_sides(void **state)
{
    (void)state;
    json_error_t jerr;
    const char *path = vectors_path();
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root)
        fail_msg("cannot load Noise vectors %s: %s", path, jerr.text);
    json_t *vectors = json_object_get(root, "vectors");
    assert_true(json_is_array(vectors));
    int seen[4] = {0}, replayed = 0, skipped = 0;
    for (size_t i = 0; i < json_array_size(vectors); i++) {
        json_t *v = json_array_get(vectors, i);
        const char *proto = json_string_value(json_object_get(v, "protocol_name"));
        assert_non_null(proto);
        gm_noise_pattern p;
        if (!parse_protocol(proto, &p)) {
            printf("note: skipping %s (unsupported suite; only 25519_ChaChaPoly_SHA256)\n", proto);
            skipped++;
            continue;
        }
        replay_vector(v, p);
        seen[p]++;
        replayed++;
    }
    printf("noise vectors: %d replayed, %d skipped\n", replayed, skipped);
    for (int p = 0; p < 4; p++)
        assert_true(seen[p] > 0);
    json_decref(root);
}

/* ---- helpers for live handshakes ---------------------------------------- */

typedef struct keys {
    uint8_t i_sk[32], i_pk[32], r_sk[32], r_pk[32];
} keys;

static void make_keys(keys *k)
{
    crypto_box_keypair(k->i_pk, k->i_sk);
    crypto_box_keypair(k->r_pk, k->r_sk);
}

static void new_pair(gm_noise_pattern p, const keys *k, gm_noise_handshake_t **ini,
                     gm_noise_handshake_t **res)
{
    gm_error err = {0};
    const uint8_t *i_s = p == GM_NOISE_NN ? NULL : k->i_sk;
    const uint8_t *r_s = p == GM_NOISE_NN ? NULL : k->r_sk;
    const uint8_t *i_rs = (p == GM_NOISE_KK || p == GM_NOISE_IK) ? k->r_pk : NULL;
    const uint8_t *r_rs = p == GM_NOISE_KK ? k->i_pk : NULL;
    assert_int_equal(gm_noise_handshake_new(ini, p, 1, (const uint8_t *)"gm", 2, i_s, i_rs, &err), 0);
    assert_int_equal(gm_noise_handshake_new(res, p, 0, (const uint8_t *)"gm", 2, r_s, r_rs, &err), 0);
}

/* One message from whoever's turn it is; returns the reader's result. */
static int step(gm_noise_handshake_t *a, gm_noise_handshake_t *b)
{
    gm_noise_handshake_t *w = gm_noise_handshake_is_writer(a) ? a : b, *r = w == a ? b : a;
    size_t len, plen;
    gm_error err = {0};
    int rc = gm_noise_write_message(w, (const uint8_t *)"hi", 2, buf_a, BUF, &len, &err);
    if (rc)
        return rc;
    return gm_noise_read_message(r, buf_a, len, buf_b, BUF, &plen, &err);
}

static void run_handshake(gm_noise_handshake_t *a, gm_noise_handshake_t *b)
{
    while (!gm_noise_handshake_done(a) || !gm_noise_handshake_done(b))
        assert_int_equal(step(a, b), 0);
    assert_memory_equal(gm_noise_handshake_hash(a), gm_noise_handshake_hash(b), 32);
}

static void assert_unusable(gm_noise_handshake_t *hs)
{
    size_t len;
    gm_error err = {0};
    assert_false(gm_noise_handshake_done(hs));
    assert_false(gm_noise_handshake_is_writer(hs));
    assert_null(gm_noise_handshake_hash(hs));
    assert_null(gm_noise_remote_static(hs));
    assert_true(gm_noise_write_message(hs, NULL, 0, buf_a, BUF, &len, &err) < 0);
    assert_true(gm_noise_read_message(hs, buf_a, 100, buf_b, BUF, &len, &err) < 0);
}

/* ---- behaviour tests ---------------------------------------------------- */

static void test_all_patterns_complete_and_agree(void **state)
{
    (void)state;
    keys k;
    make_keys(&k);
    for (int p = GM_NOISE_NN; p <= GM_NOISE_XX; p++) {
        gm_noise_handshake_t *a, *b;
        gm_noise_cipher as, ar, bs, br;
        gm_error err = {0};
        size_t len;
        new_pair((gm_noise_pattern)p, &k, &a, &b);
        if (p != GM_NOISE_KK)
            assert_null(gm_noise_remote_static(b));
        run_handshake(a, b);
        if (p != GM_NOISE_NN) {
            assert_memory_equal(gm_noise_remote_static(a), k.r_pk, 32);
            assert_memory_equal(gm_noise_remote_static(b), k.i_pk, 32);
        }
        assert_int_equal(gm_noise_split(a, &as, &ar, &err), 0);
        assert_int_equal(gm_noise_split(b, &bs, &br, &err), 0);
        assert_memory_equal(as.k, br.k, 32);
        assert_memory_equal(bs.k, ar.k, 32);
        assert_memory_not_equal(as.k, ar.k, 32);
        /* Handshake hash and remote static stay readable after split. */
        assert_non_null(gm_noise_handshake_hash(a));
        assert_int_equal(gm_noise_split(a, &as, &ar, &err), GM_EINVAL);
        assert_true(gm_noise_write_message(b, NULL, 0, buf_a, BUF, &len, &err) < 0);
        gm_noise_handshake_free(a);
        gm_noise_handshake_free(b);
    }
}

static void test_tampered_handshake_message_rejected(void **state)
{
    (void)state;
    keys k;
    make_keys(&k);
    gm_error err = {0};
    /* XX message 2 and 3, IK message 1: every byte flipped in turn must be caught. */
    struct { gm_noise_pattern p; int msg; } cases[] = {{GM_NOISE_XX, 1}, {GM_NOISE_XX, 2},
                                                       {GM_NOISE_IK, 0}, {GM_NOISE_KK, 1}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (size_t byte = 0;; byte++) {
            gm_noise_handshake_t *ini, *res;
            new_pair(cases[c].p, &k, &ini, &res);
            for (int m = 0; m < cases[c].msg; m++)
                assert_int_equal(step(ini, res), 0);
            gm_noise_handshake_t *w = gm_noise_handshake_is_writer(ini) ? ini : res;
            gm_noise_handshake_t *r = w == ini ? res : ini;
            size_t len, plen;
            assert_int_equal(gm_noise_write_message(w, (const uint8_t *)"payload", 7, buf_a, BUF,
                                                    &len, &err), 0);
            int last = byte + 1 >= len;
            buf_a[byte] ^= 0x04;
            assert_true(gm_noise_read_message(r, buf_a, len, buf_b, BUF, &plen, &err) < 0);
            assert_unusable(r);
            gm_noise_handshake_free(ini);
            gm_noise_handshake_free(res);
            if (last)
                break;
        }
    }
}

static void test_truncated_or_extended_handshake_message_rejected(void **state)
{
    (void)state;
    keys k;
    make_keys(&k);
    gm_error err = {0};
    for (int delta = -1; delta <= 1; delta += 2) {
        gm_noise_handshake_t *ini, *res;
        size_t len, plen;
        new_pair(GM_NOISE_XX, &k, &ini, &res);
        assert_int_equal(step(ini, res), 0);
        assert_int_equal(gm_noise_write_message(res, (const uint8_t *)"x", 1, buf_a, BUF, &len,
                                                &err), 0);
        assert_true(gm_noise_read_message(ini, buf_a, len + (size_t)delta, buf_b, BUF, &plen,
                                          &err) < 0);
        assert_unusable(ini);
        gm_noise_handshake_free(ini);
        gm_noise_handshake_free(res);
    }
}

static void test_short_handshake_message_rejected(void **state)
{
    (void)state;
    keys k;
    make_keys(&k);
    gm_error err = {0};
    gm_noise_handshake_t *ini, *res;
    size_t plen;
    new_pair(GM_NOISE_XX, &k, &ini, &res);
    memset(buf_a, 0x42, 31);
    assert_int_equal(gm_noise_read_message(res, buf_a, 31, buf_b, BUF, &plen, &err), GM_EPROTO);
    assert_unusable(res);
    gm_noise_handshake_free(res);
    gm_noise_handshake_free(ini);
    /* XX message 2 needs e (32) + encrypted s (48) + tag (16). */
    new_pair(GM_NOISE_XX, &k, &ini, &res);
    assert_int_equal(step(ini, res), 0);
    assert_int_equal(gm_noise_read_message(ini, buf_a, 95, buf_b, BUF, &plen, &err), GM_EPROTO);
    gm_noise_handshake_free(res);
    gm_noise_handshake_free(ini);
}

static void test_wrong_prologue_fails_handshake(void **state)
{
    (void)state;
    keys k;
    make_keys(&k);
    gm_error err = {0};
    for (int p = GM_NOISE_NN; p <= GM_NOISE_XX; p++) {
        gm_noise_handshake_t *ini, *res;
        const uint8_t *i_s = p == GM_NOISE_NN ? NULL : k.i_sk;
        const uint8_t *r_s = p == GM_NOISE_NN ? NULL : k.r_sk;
        const uint8_t *i_rs = (p == GM_NOISE_KK || p == GM_NOISE_IK) ? k.r_pk : NULL;
        const uint8_t *r_rs = p == GM_NOISE_KK ? k.i_pk : NULL;
        assert_int_equal(gm_noise_handshake_new(&ini, (gm_noise_pattern)p, 1,
                                                (const uint8_t *)"genesis-mesh v1", 15, i_s, i_rs,
                                                &err), 0);
        assert_int_equal(gm_noise_handshake_new(&res, (gm_noise_pattern)p, 0,
                                                (const uint8_t *)"genesis-mesh v2", 15, r_s, r_rs,
                                                &err), 0);
        int rc = 0;
        while (rc == 0 && !(gm_noise_handshake_done(ini) && gm_noise_handshake_done(res)))
            rc = step(ini, res);
        assert_int_equal(rc, GM_EAUTH);
        assert_false(gm_noise_handshake_done(ini) && gm_noise_handshake_done(res));
        gm_noise_handshake_free(ini);
        gm_noise_handshake_free(res);
    }
}

static void test_xx_remote_static_is_converted_ed25519_key(void **state)
{
    (void)state;
    uint8_t seed_i[32], seed_r[32], ed_pk_i[32], ed_pk_r[32], ed_sk[64];
    uint8_t x_sk_i[32], x_pk_i[32], x_sk_r[32], x_pk_r[32], conv_i[32], conv_r[32], base[32];
    gm_error err = {0};
    memset(seed_i, 0x11, 32);
    memset(seed_r, 0x22, 32);
    crypto_sign_seed_keypair(ed_pk_i, ed_sk, seed_i);
    crypto_sign_seed_keypair(ed_pk_r, ed_sk, seed_r);
    assert_int_equal(gm_noise_static_from_ed25519_seed(seed_i, x_sk_i, x_pk_i, &err), 0);
    assert_int_equal(gm_noise_static_from_ed25519_seed(seed_r, x_sk_r, x_pk_r, &err), 0);
    assert_int_equal(gm_noise_static_pub_from_ed25519(ed_pk_i, conv_i, &err), 0);
    assert_int_equal(gm_noise_static_pub_from_ed25519(ed_pk_r, conv_r, &err), 0);
    assert_memory_equal(x_pk_i, conv_i, 32);
    crypto_scalarmult_base(base, x_sk_i);
    assert_memory_equal(base, conv_i, 32);

    gm_noise_handshake_t *ini, *res;
    assert_int_equal(gm_noise_handshake_new(&ini, GM_NOISE_XX, 1, NULL, 0, x_sk_i, NULL, &err), 0);
    assert_int_equal(gm_noise_handshake_new(&res, GM_NOISE_XX, 0, NULL, 0, x_sk_r, NULL, &err), 0);
    run_handshake(ini, res);
    assert_memory_equal(gm_noise_remote_static(ini), conv_r, 32);
    assert_memory_equal(gm_noise_remote_static(res), conv_i, 32);
    gm_noise_handshake_free(ini);
    gm_noise_handshake_free(res);
}

static void test_invalid_ed25519_public_key_refused(void **state)
{
    (void)state;
    uint8_t bad[32] = {0}, x[32];
    gm_error err = {0};
    bad[0] = 1; /* the identity point: small order */
    assert_int_equal(gm_noise_static_pub_from_ed25519(bad, x, &err), GM_ECRYPTO);
    assert_true(strlen(err.msg) > 0);
}

static void test_low_order_peer_keys_rejected(void **state)
{
    (void)state;
    keys k;
    make_keys(&k);
    gm_error err = {0};
    for (int u = 0; u <= 1; u++) {
        gm_noise_handshake_t *ini, *res;
        size_t len, plen;
        /* IK responder: the es DH of message 1 hits the bad ephemeral. */
        new_pair(GM_NOISE_IK, &k, &ini, &res);
        assert_int_equal(gm_noise_write_message(ini, NULL, 0, buf_a, BUF, &len, &err), 0);
        memset(buf_a, 0, 32);
        buf_a[0] = (uint8_t)u;
        assert_int_equal(gm_noise_read_message(res, buf_a, len, buf_b, BUF, &plen, &err), GM_EPROTO);
        assert_unusable(res);
        gm_noise_handshake_free(ini);
        gm_noise_handshake_free(res);
        /* XX responder: message 1 has no DH; writing message 2 (ee) must fail. */
        new_pair(GM_NOISE_XX, &k, &ini, &res);
        memset(buf_a, 0, 32);
        buf_a[0] = (uint8_t)u;
        assert_int_equal(gm_noise_read_message(res, buf_a, 32, buf_b, BUF, &plen, &err), 0);
        assert_int_equal(gm_noise_write_message(res, NULL, 0, buf_a, BUF, &len, &err), GM_EPROTO);
        assert_unusable(res);
        gm_noise_handshake_free(ini);
        gm_noise_handshake_free(res);
        /* KK/IK initiator given a low-order responder static. */
        uint8_t low[32] = {0};
        low[0] = (uint8_t)u;
        assert_int_equal(gm_noise_handshake_new(&ini, GM_NOISE_IK, 1, NULL, 0, k.i_sk, low, &err), 0);
        assert_int_equal(gm_noise_write_message(ini, NULL, 0, buf_a, BUF, &len, &err), GM_EPROTO);
        gm_noise_handshake_free(ini);
    }
}

static void test_handshake_arguments_checked(void **state)
{
    (void)state;
    keys k;
    make_keys(&k);
    gm_error err = {0};
    gm_noise_handshake_t *hs = (gm_noise_handshake_t *)&err;
    size_t len;
    assert_int_equal(gm_noise_handshake_new(&hs, GM_NOISE_KK, 1, NULL, 0, k.i_sk, NULL, &err),
                     GM_EINVAL);
    assert_null(hs);
    assert_int_equal(gm_noise_handshake_new(&hs, GM_NOISE_XX, 1, NULL, 0, NULL, NULL, &err),
                     GM_EINVAL);
    assert_int_equal(gm_noise_handshake_new(&hs, GM_NOISE_NN, 1, NULL, 0, k.i_sk, NULL, &err),
                     GM_EINVAL);
    assert_int_equal(gm_noise_handshake_new(&hs, GM_NOISE_XX, 0, NULL, 0, k.r_sk, k.i_pk, &err),
                     GM_EINVAL);
    assert_int_equal(gm_noise_handshake_new(&hs, GM_NOISE_IK, 0, NULL, 0, k.r_sk, k.i_pk, &err),
                     GM_EINVAL);
    assert_int_equal(gm_noise_handshake_new(&hs, (gm_noise_pattern)7, 1, NULL, 0, NULL, NULL, &err),
                     GM_EINVAL);
    assert_int_equal(gm_noise_handshake_new(&hs, GM_NOISE_NN, 1, NULL, 5, NULL, NULL, &err),
                     GM_EINVAL);
    /* The responder may not write first, and the misuse kills the handshake. */
    assert_int_equal(gm_noise_handshake_new(&hs, GM_NOISE_NN, 0, NULL, 0, NULL, NULL, &err), 0);
    assert_false(gm_noise_handshake_is_writer(hs));
    assert_int_equal(gm_noise_write_message(hs, NULL, 0, buf_a, BUF, &len, &err), GM_EINVAL);
    assert_unusable(hs);
    gm_noise_handshake_free(hs);
    /* Split before the end is refused. */
    gm_noise_cipher s, r;
    assert_int_equal(gm_noise_handshake_new(&hs, GM_NOISE_NN, 1, NULL, 0, NULL, NULL, &err), 0);
    assert_int_equal(gm_noise_split(hs, &s, &r, &err), GM_EINVAL);
    gm_noise_handshake_free(hs);
    /* An ephemeral cannot be replaced once used. */
    uint8_t e[32] = {1};
    assert_int_equal(gm_noise_handshake_new(&hs, GM_NOISE_NN, 1, NULL, 0, NULL, NULL, &err), 0);
    assert_int_equal(gm_noise_write_message(hs, NULL, 0, buf_a, BUF, &len, &err), 0);
    assert_int_equal(gm_noise_handshake_set_ephemeral(hs, e, &err), GM_EINVAL);
    gm_noise_handshake_free(hs);
    gm_noise_handshake_free(NULL);
}

static void test_oversized_messages_refused(void **state)
{
    (void)state;
    keys k;
    make_keys(&k);
    gm_error err = {0};
    gm_noise_handshake_t *ini, *res;
    size_t len, plen;
    /* XX message 1 = e (32) + plaintext payload: at most 65503 bytes of payload. */
    new_pair(GM_NOISE_XX, &k, &ini, &res);
    memset(buf_b, 0x5a, BUF);
    assert_int_equal(gm_noise_write_message(ini, buf_b, GM_NOISE_MAX_MSG - 31, buf_a, BUF, &len,
                                            &err), GM_ETOOBIG);
    gm_noise_handshake_free(ini);
    new_pair(GM_NOISE_XX, &k, &ini, &res);
    assert_int_equal(gm_noise_write_message(ini, buf_b, GM_NOISE_MAX_MSG - 32, buf_a, BUF, &len,
                                            &err), 0);
    assert_int_equal(len, GM_NOISE_MAX_MSG);
    assert_int_equal(gm_noise_read_message(res, buf_a, GM_NOISE_MAX_MSG + 1, buf_b, BUF, &plen,
                                           &err), GM_ETOOBIG);
    gm_noise_handshake_free(res);
    /* Too small an output buffer is refused, not overrun. */
    new_pair(GM_NOISE_XX, &k, &ini, &res);
    assert_int_equal(gm_noise_write_message(ini, buf_b, 10, buf_a, 41, &len, &err), GM_ETOOBIG);
    gm_noise_handshake_free(ini);
    new_pair(GM_NOISE_XX, &k, &ini, &res);
    assert_int_equal(gm_noise_write_message(ini, buf_b, 10, buf_a, 42, &len, &err), 0);
    assert_int_equal(gm_noise_read_message(res, buf_a, len, buf_b, 9, &plen, &err), GM_ETOOBIG);
    gm_noise_handshake_free(ini);
    gm_noise_handshake_free(res);

    /* Transport: 65519 plaintext bytes fit, 65520 do not. */
    gm_noise_cipher as, ar, bs, br;
    new_pair(GM_NOISE_NN, &k, &ini, &res);
    run_handshake(ini, res);
    assert_int_equal(gm_noise_split(ini, &as, &ar, &err), 0);
    assert_int_equal(gm_noise_split(res, &bs, &br, &err), 0);
    assert_int_equal(gm_noise_encrypt(&as, NULL, 0, buf_b, GM_NOISE_MAX_PLAINTEXT + 1, buf_a, BUF,
                                      &len, &err), GM_ETOOBIG);
    assert_int_equal(as.n, 0);
    assert_int_equal(gm_noise_encrypt(&as, NULL, 0, buf_b, GM_NOISE_MAX_PLAINTEXT, buf_a, BUF,
                                      &len, &err), 0);
    assert_int_equal(len, GM_NOISE_MAX_MSG);
    assert_int_equal(gm_noise_decrypt(&br, NULL, 0, buf_a, len, buf_a, BUF, &plen, &err), 0);
    assert_int_equal(plen, GM_NOISE_MAX_PLAINTEXT);
    assert_int_equal(gm_noise_decrypt(&br, NULL, 0, buf_a, GM_NOISE_MAX_MSG + 1, buf_b, BUF, &plen,
                                      &err), GM_ETOOBIG);
    assert_false(br.has_key);
    assert_int_equal(gm_noise_decrypt(&ar, NULL, 0, buf_a, GM_NOISE_TAG - 1, buf_b, BUF, &plen,
                                      &err), GM_EPROTO);
    gm_noise_handshake_free(ini);
    gm_noise_handshake_free(res);
}

static void xx_transport(gm_noise_cipher *as, gm_noise_cipher *ar, gm_noise_cipher *bs,
                         gm_noise_cipher *br)
{
    keys k;
    make_keys(&k);
    gm_error err = {0};
    gm_noise_handshake_t *ini, *res;
    new_pair(GM_NOISE_XX, &k, &ini, &res);
    run_handshake(ini, res);
    assert_int_equal(gm_noise_split(ini, as, ar, &err), 0);
    assert_int_equal(gm_noise_split(res, bs, br, &err), 0);
    gm_noise_handshake_free(ini);
    gm_noise_handshake_free(res);
}

static void test_transport_nonce_counts_and_rekey_agrees(void **state)
{
    (void)state;
    gm_noise_cipher as, ar, bs, br;
    gm_error err = {0};
    uint8_t msg[64], ct[80], pt[64], old_key[32];
    size_t len, plen;
    static const uint8_t ad[] = "frame header";
    xx_transport(&as, &ar, &bs, &br);
    for (unsigned i = 0; i < 10; i++) {
        memset(msg, (int)i, sizeof msg);
        assert_int_equal(gm_noise_encrypt(&as, ad, sizeof ad, msg, sizeof msg, ct, sizeof ct, &len,
                                          &err), 0);
        assert_int_equal(gm_noise_decrypt(&br, ad, sizeof ad, ct, len, pt, sizeof pt, &plen, &err), 0);
        assert_memory_equal(pt, msg, sizeof msg);
        assert_int_equal(as.n, i + 1);
        assert_int_equal(br.n, i + 1);
    }
    assert_int_equal(gm_noise_encrypt(&bs, NULL, 0, msg, 3, ct, sizeof ct, &len, &err), 0);
    assert_int_equal(gm_noise_decrypt(&ar, NULL, 0, ct, len, pt, sizeof pt, &plen, &err), 0);
    assert_int_equal(ar.n, 1);

    /* Both sides rekey at the same point: new key, nonce unchanged, traffic still flows. */
    memcpy(old_key, as.k, 32);
    assert_int_equal(gm_noise_rekey(&as, &err), 0);
    assert_int_equal(gm_noise_rekey(&br, &err), 0);
    assert_memory_not_equal(as.k, old_key, 32);
    assert_memory_equal(as.k, br.k, 32);
    assert_int_equal(as.n, 10);
    assert_int_equal(gm_noise_encrypt(&as, NULL, 0, msg, 5, ct, sizeof ct, &len, &err), 0);
    assert_int_equal(gm_noise_decrypt(&br, NULL, 0, ct, len, pt, sizeof pt, &plen, &err), 0);
    assert_memory_equal(pt, msg, 5);

    /* Only one side rekeys: the next message fails and closes the receiver. */
    assert_int_equal(gm_noise_rekey(&bs, &err), 0);
    assert_int_equal(gm_noise_encrypt(&bs, NULL, 0, msg, 5, ct, sizeof ct, &len, &err), 0);
    assert_int_equal(gm_noise_decrypt(&ar, NULL, 0, ct, len, pt, sizeof pt, &plen, &err), GM_EAUTH);
    assert_false(ar.has_key);
    assert_int_equal(gm_noise_decrypt(&ar, NULL, 0, ct, len, pt, sizeof pt, &plen, &err), GM_EINVAL);
    assert_int_equal(gm_noise_rekey(&ar, &err), GM_EINVAL);
}

static void test_replayed_or_tampered_transport_message_closes_session(void **state)
{
    (void)state;
    gm_noise_cipher as, ar, bs, br;
    gm_error err = {0};
    uint8_t ct[80], pt[64];
    size_t len, plen;
    xx_transport(&as, &ar, &bs, &br);
    assert_int_equal(gm_noise_encrypt(&as, NULL, 0, (const uint8_t *)"abc", 3, ct, sizeof ct, &len,
                                      &err), 0);
    assert_int_equal(gm_noise_decrypt(&br, NULL, 0, ct, len, pt, sizeof pt, &plen, &err), 0);
    assert_int_equal(gm_noise_decrypt(&br, NULL, 0, ct, len, pt, sizeof pt, &plen, &err), GM_EAUTH);
    assert_false(br.has_key);

    xx_transport(&as, &ar, &bs, &br);
    assert_int_equal(gm_noise_encrypt(&as, (const uint8_t *)"ad", 2, (const uint8_t *)"abc", 3, ct,
                                      sizeof ct, &len, &err), 0);
    assert_int_equal(gm_noise_decrypt(&br, (const uint8_t *)"AD", 2, ct, len, pt, sizeof pt, &plen,
                                      &err), GM_EAUTH);
    assert_int_equal(gm_noise_encrypt(&bs, NULL, 0, (const uint8_t *)"abc", 3, ct, sizeof ct, &len,
                                      &err), 0);
    ct[len - 1] ^= 1;
    assert_int_equal(gm_noise_decrypt(&ar, NULL, 0, ct, len, pt, sizeof pt, &plen, &err), GM_EAUTH);
    assert_int_equal(plen, 0);
}

static void test_encrypt_refuses_at_nonce_max(void **state)
{
    (void)state;
    gm_noise_cipher as, ar, bs, br;
    gm_error err = {0};
    uint8_t ct[32], pt[16];
    size_t len, plen;
    xx_transport(&as, &ar, &bs, &br);
    as.n = GM_NOISE_NONCE_MAX;
    assert_int_equal(gm_noise_encrypt(&as, NULL, 0, (const uint8_t *)"x", 1, ct, sizeof ct, &len,
                                      &err), GM_EEXPIRED);
    as.n = GM_NOISE_NONCE_MAX - 1;
    br.n = GM_NOISE_NONCE_MAX - 1;
    assert_int_equal(gm_noise_encrypt(&as, NULL, 0, (const uint8_t *)"x", 1, ct, sizeof ct, &len,
                                      &err), 0);
    assert_int_equal(as.n, GM_NOISE_NONCE_MAX);
    size_t ct_len = len;
    assert_int_equal(gm_noise_decrypt(&br, NULL, 0, ct, ct_len, pt, sizeof pt, &plen, &err), 0);
    assert_int_equal(gm_noise_encrypt(&as, NULL, 0, (const uint8_t *)"x", 1, ct, sizeof ct, &len,
                                      &err), GM_EEXPIRED);
    assert_int_equal(gm_noise_decrypt(&br, NULL, 0, ct, ct_len, pt, sizeof pt, &plen, &err),
                     GM_EEXPIRED);
    assert_false(br.has_key);
}

static void test_needs_rekey_threshold(void **state)
{
    (void)state;
    gm_noise_cipher as, ar, bs, br;
    xx_transport(&as, &ar, &bs, &br);
    assert_false(gm_noise_cipher_needs_rekey(&as));
    as.n = GM_NOISE_REKEY_AFTER - 1;
    assert_false(gm_noise_cipher_needs_rekey(&as));
    as.n = GM_NOISE_REKEY_AFTER;
    assert_true(gm_noise_cipher_needs_rekey(&as));
    gm_noise_cipher_wipe(&as);
    assert_false(gm_noise_cipher_needs_rekey(&as));
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    buf_a = malloc(BUF);
    buf_b = malloc(BUF);
    buf_c = malloc(BUF);
    if (!buf_a || !buf_b || !buf_c)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cacophony_vectors_replay_on_both_sides),
        cmocka_unit_test(test_all_patterns_complete_and_agree),
        cmocka_unit_test(test_tampered_handshake_message_rejected),
        cmocka_unit_test(test_truncated_or_extended_handshake_message_rejected),
        cmocka_unit_test(test_short_handshake_message_rejected),
        cmocka_unit_test(test_wrong_prologue_fails_handshake),
        cmocka_unit_test(test_xx_remote_static_is_converted_ed25519_key),
        cmocka_unit_test(test_invalid_ed25519_public_key_refused),
        cmocka_unit_test(test_low_order_peer_keys_rejected),
        cmocka_unit_test(test_handshake_arguments_checked),
        cmocka_unit_test(test_oversized_messages_refused),
        cmocka_unit_test(test_transport_nonce_counts_and_rekey_agrees),
        cmocka_unit_test(test_replayed_or_tampered_transport_message_closes_session),
        cmocka_unit_test(test_encrypt_refuses_at_nonce_max),
        cmocka_unit_test(test_needs_rekey_threshold),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(buf_a);
    free(buf_b);
    free(buf_c);
    return rc;
}
