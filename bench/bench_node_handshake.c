/* Peer-link handshakes per second, in process: Noise XX with the certificates as payloads
 * and the node's trust check (gm_node_trust_check: parse, NA signature, network, window,
 * CRL, key binding) on both sides, exactly as lib/node/node_handshake.c does it. Printed next to the
 * limit set by the public-key operations one side needs, measured in the same run:
 *   one side = 1 X25519 key generation + 3 X25519 DH (XX: ee, es|se, se|es)
 *            + 1 Ed25519 verify (the peer's certificate) + 1 Ed25519->X25519 conversion.
 * Medians of RUNS runs. Never a test. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>

#include "gm/cert.h"
#include "gm/crl.h"
#include "gm/genesis.h"
#include "gm/keys.h"
#include "gm/node.h"
#include "noise.h"
#include "gm/util.h"

#include "bench_util.h"
#include "core_internal.h"
#include "node_checks.h"

#define RUNS 7

static void die(const char *what, const gm_error *err)
{
    fprintf(stderr, "bench_node_handshake: %s: %s\n", what, err ? err->msg : "");
    exit(1);
}

typedef struct party {
    gm_signer key;
    uint8_t x_sk[32], x_pk[32];
    char *cert;
    size_t cert_len;
} party;

static gm_genesis genesis;
static gm_crl crl;
static party A, B;

static void make_party(party *p, const gm_signer *na)
{
    gm_error err = {0};
    gm_cert c;
    gm_time now = gm_time_now();
    if (gm_signer_generate(&p->key, "node", &err) || gm_noise_static_from_ed25519_seed(p->key.sk, p->x_sk, p->x_pk, &err))
        die("key", &err);
    json_t *roles = json_pack("[s]", "role:bench");
    if (gm_cert_issue(&c, na, "BENCHNET", p->key.pk, roles, gm_time_add(now, -60), gm_time_add(now, 86400), &err))
        die("cert", &err);
    json_decref(roles);
    p->cert = gm_cert_dump(&c, 0);
    p->cert_len = strlen(p->cert);
    gm_cert_free(&c);
}

static void setup(void)
{
    gm_error err = {0};
    gm_signer root, na;
    gm_time now = gm_time_now();
    if (gm_init(&err) || gm_signer_generate(&root, "rs-local", &err) || gm_signer_generate(&na, "na-local", &err))
        die("init", &err);
    if (gm_genesis_create(&genesis, "BENCHNET", root.pk, na.pk, gm_time_add(now, -3600), gm_time_add(now, 86400 * 365),
                          NULL, &err) ||
        gm_genesis_sign(&genesis, &root, &err))
        die("genesis", &err);
    /* A CRL with 100 entries, so the revocation lookup is not free. */
    json_t *rev = json_array();
    for (int i = 0; i < 100; i++) {
        char id[37], ts[GM_TIME_STRLEN];
        gm_uuid4(id);
        gm_time_format(&now, ts);
        json_array_append_new(rev, json_pack("{s:s,s:s,s:s,s:s}", "certificate_id", id, "revoked_at", ts, "reason",
                                             "superseded", "issuer", "na-local"));
    }
    if (gm_crl_issue(&crl, &na, 100, rev, now, 86400, &err))
        die("crl", &err);
    json_decref(rev);
    make_party(&A, &na);
    make_party(&B, &na);
    gm_signer_wipe(&root);
    gm_signer_wipe(&na);
}

/* One full XX handshake A (initiator) <-> B (responder) with trust checks. Adds each side's
 * own CPU time to t_init / t_resp. */
static void one_handshake(const uint8_t *prologue, double *t_init, double *t_resp)
{
    static uint8_t m1[256], m2[4096], m3[4096], pl[4096];
    size_t l1, l2, l3, pl_len;
    gm_noise_handshake_t *i = NULL, *r = NULL;
    gm_noise_cipher it, ir, rt, rr;
    gm_error err = {0};
    gm_cert c;
    gm_trust_reason why;
    gm_time now = gm_time_now();
    double t0 = now_s();
    if (gm_noise_handshake_new(&i, GM_NOISE_XX, 1, prologue, GM_NODE_PROLOGUE_LEN, A.x_sk, NULL, &err) ||
        gm_noise_write_message(i, NULL, 0, m1, sizeof m1, &l1, &err))
        die("msg1", &err);
    double t1 = now_s();
    if (gm_noise_handshake_new(&r, GM_NOISE_XX, 0, prologue, GM_NODE_PROLOGUE_LEN, B.x_sk, NULL, &err) ||
        gm_noise_read_message(r, m1, l1, pl, sizeof pl, &pl_len, &err) ||
        gm_noise_write_message(r, (const uint8_t *)B.cert, B.cert_len, m2, sizeof m2, &l2, &err))
        die("msg2", &err);
    double t2 = now_s();
    if (gm_noise_read_message(i, m2, l2, pl, sizeof pl, &pl_len, &err) ||
        gm_node_trust_check(&genesis, &crl, pl, pl_len, gm_noise_remote_static(i), now, &c, &why, &err))
        die("initiator check", &err);
    gm_cert_free(&c);
    if (gm_noise_write_message(i, (const uint8_t *)A.cert, A.cert_len, m3, sizeof m3, &l3, &err) ||
        gm_noise_split(i, &it, &ir, &err))
        die("msg3", &err);
    double t3 = now_s();
    if (gm_noise_read_message(r, m3, l3, pl, sizeof pl, &pl_len, &err) ||
        gm_node_trust_check(&genesis, &crl, pl, pl_len, gm_noise_remote_static(r), now, &c, &why, &err) ||
        gm_noise_split(r, &rt, &rr, &err))
        die("responder check", &err);
    gm_cert_free(&c);
    double t4 = now_s();
    gm_noise_handshake_free(i);
    gm_noise_handshake_free(r);
    *t_init += (t1 - t0) + (t3 - t2);
    *t_resp += (t2 - t1) + (t4 - t3);
}

static uint8_t g_sk[32], g_pk[32], g_out[32], g_sig[64], g_msg[200];
static volatile int sink;

static void op_keygen(void) { randombytes_buf(g_sk, 32); sink += crypto_scalarmult_base(g_out, g_sk); }
static void op_dh(void) { sink += crypto_scalarmult(g_out, g_sk, g_pk); }
static void op_verify(void) { sink += crypto_sign_verify_detached(g_sig, g_msg, sizeof g_msg, A.key.pk); }
static void op_convert(void) { sink += crypto_sign_ed25519_pk_to_curve25519(g_out, A.key.pk); }

/* ops/s of fn over about 0.3 s. */
static double ops_per_s(void (*fn)(void))
{
    long n = 0;
    double s = now_s(), e;
    do {
        for (int k = 0; k < 64; k++)
            fn();
        n += 64;
    } while ((e = now_s()) - s < 0.3);
    return n / (e - s);
}

int main(void)
{
    setup();
    uint8_t prologue[GM_NODE_PROLOGUE_LEN], h[32];
    gm_genesis_network_id(&genesis, h);
    memcpy(prologue, GM_NODE_PROLOGUE_LABEL, sizeof GM_NODE_PROLOGUE_LABEL - 1);
    memcpy(prologue + sizeof GM_NODE_PROLOGUE_LABEL - 1, h, 32);

    double keygen[RUNS], dh[RUNS], verify[RUNS], conv[RUNS], pair[RUNS], init_side[RUNS], resp_side[RUNS];
    randombytes_buf(g_sk, sizeof g_sk);
    crypto_scalarmult_base(g_pk, g_sk);
    randombytes_buf(g_msg, sizeof g_msg);
    crypto_sign_detached(g_sig, NULL, g_msg, sizeof g_msg, A.key.sk);
    for (int run = 0; run < RUNS; run++) {
        keygen[run] = ops_per_s(op_keygen);
        dh[run] = ops_per_s(op_dh);
        verify[run] = ops_per_s(op_verify);
        conv[run] = ops_per_s(op_convert);
        long n = 0;
        double ti = 0, tr = 0, s = now_s(), e;
        do {
            one_handshake(prologue, &ti, &tr);
            n++;
        } while ((e = now_s()) - s < 0.5);
        pair[run] = n / (e - s);
        init_side[run] = n / ti;
        resp_side[run] = n / tr;
    }
    double k = median(keygen, RUNS), d = median(dh, RUNS), v = median(verify, RUNS), c = median(conv, RUNS);
    double side_limit = 1.0 / (1.0 / k + 3.0 / d + 1.0 / v + 1.0 / c);
    double pair_limit = side_limit / 2;
    double p = median(pair, RUNS), i = median(init_side, RUNS), r = median(resp_side, RUNS);
    printf("primitives (ops/s, median of %d)\n", RUNS);
    printf("  X25519 key generation        %10.0f\n", k);
    printf("  X25519 DH                    %10.0f\n", d);
    printf("  Ed25519 verify               %10.0f\n", v);
    printf("  Ed25519->X25519 pk convert   %10.0f\n", c);
    printf("handshakes/s (XX + certificate trust check, CRL of 100 entries)\n");
    printf("  %-28s %10s %12s %8s\n", "", "measured", "crypto limit", "ratio");
    printf("  %-28s %10.0f %12.0f %7.0f%%\n", "one side: initiator", i, side_limit, 100 * i / side_limit);
    printf("  %-28s %10.0f %12.0f %7.0f%%\n", "one side: responder", r, side_limit, 100 * r / side_limit);
    printf("  %-28s %10.0f %12.0f %7.0f%%\n", "full pair (both sides)", p, pair_limit, 100 * p / pair_limit);
    printf("  certificate: %zu bytes; limit = 1 / (keygen + 3 DH + verify + convert) per side\n", A.cert_len);
    gm_genesis_free(&genesis);
    gm_crl_free(&crl);
    free(A.cert);
    free(B.cert);
    gm_signer_wipe(&A.key);
    gm_signer_wipe(&B.key);
    return 0;
}
