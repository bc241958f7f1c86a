/* Unit tests of the node runtime's pure parts: the peer trust check, CRL acceptance
 * rules, reassembly of CRL_DATA chunks and the end-to-end replay window. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "gm/cert.h"
#include "gm/crl.h"
#include "gm/genesis.h"
#include "gm/node.h"
#include "noise.h"
#include "gm/util.h"
#include "wire.h"
#include "node_internal.h"
#include "core_internal.h"
#include "node_checks.h"

typedef struct fixture {
    gm_signer root, na, other_na, node, stranger;
    gm_genesis g;
    gm_time now;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    gm_error err = {0};
    assert_non_null(f);
    assert_int_equal(gm_init(&err), 0);
    assert_int_equal(gm_signer_generate(&f->root, "rs-local", &err), 0);
    assert_int_equal(gm_signer_generate(&f->na, "na-local", &err), 0);
    assert_int_equal(gm_signer_generate(&f->other_na, "na-local", &err), 0);
    assert_int_equal(gm_signer_generate(&f->node, "node", &err), 0);
    assert_int_equal(gm_signer_generate(&f->stranger, "node", &err), 0);
    f->now = gm_time_now();
    assert_int_equal(gm_genesis_create(&f->g, "UNITNET", f->root.pk, f->na.pk, gm_time_add(f->now, -3600),
                                       gm_time_add(f->now, 86400 * 30), NULL, &err),
                     0);
    assert_int_equal(gm_genesis_sign(&f->g, &f->root, &err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    gm_genesis_free(&f->g);
    gm_signer_wipe(&f->root);
    gm_signer_wipe(&f->na);
    gm_signer_wipe(&f->other_na);
    gm_signer_wipe(&f->node);
    gm_signer_wipe(&f->stranger);
    free(f);
    return 0;
}

/* Issue a certificate for pk and return its compact JSON (malloc'd); *id gets its cert_id. */
static char *issue(const gm_signer *na, const char *network, const uint8_t *pk, gm_time from, gm_time to, char id[37])
{
    gm_cert c;
    gm_error err = {0};
    json_t *roles = json_pack("[s]", "role:test");
    assert_int_equal(gm_cert_issue(&c, na, network, pk, roles, from, to, &err), 0);
    json_decref(roles);
    if (id)
        memcpy(id, c.cert_id, 37);
    char *s = gm_cert_dump(&c, 0);
    gm_cert_free(&c);
    return s;
}

static void x25519_of(const gm_signer *k, uint8_t x[32])
{
    assert_int_equal(gm_noise_static_pub_from_ed25519(k->pk, x, NULL), 0);
}

static gm_trust_reason check(fixture *f, const gm_crl *crl, const char *json, const uint8_t *rs)
{
    gm_cert out;
    gm_trust_reason why = GM_TRUST_N;
    gm_error err = {0};
    int rc = gm_node_trust_check(&f->g, crl, (const uint8_t *)json, strlen(json), rs, f->now, &out, &why, &err);
    if (rc == 0) {
        assert_int_equal(why, GM_TRUST_OK);
        gm_cert_free(&out);
    } else {
        assert_int_not_equal(why, GM_TRUST_OK);
        assert_true(err.msg[0] != 0);
    }
    return why;
}

static void test_trust_accepts_good_cert(void **state)
{
    fixture *f = *state;
    uint8_t x[32];
    x25519_of(&f->node, x);
    char *c = issue(&f->na, "UNITNET", f->node.pk, gm_time_add(f->now, -60), gm_time_add(f->now, 3600), NULL);
    assert_int_equal(check(f, NULL, c, x), GM_TRUST_OK);
    /* Relayed certificates are checked without a handshake key. */
    assert_int_equal(check(f, NULL, c, NULL), GM_TRUST_OK);
    free(c);
}

static void test_trust_refuses_expired_cert(void **state)
{
    fixture *f = *state;
    uint8_t x[32];
    x25519_of(&f->node, x);
    char *c = issue(&f->na, "UNITNET", f->node.pk, gm_time_add(f->now, -7200), gm_time_add(f->now, -3600), NULL);
    assert_int_equal(check(f, NULL, c, x), GM_TRUST_EXPIRED);
    free(c);
    /* Not yet valid (beyond the skew) is refused the same way. */
    c = issue(&f->na, "UNITNET", f->node.pk, gm_time_add(f->now, 3600), gm_time_add(f->now, 7200), NULL);
    assert_int_equal(check(f, NULL, c, x), GM_TRUST_EXPIRED);
    free(c);
}

static void test_trust_refuses_cert_when_na_key_outside_genesis_window(void **state)
{
    fixture *f = *state;
    gm_error err = {0};
    uint8_t x[32];
    x25519_of(&f->node, x);
    /* same network and NA key, but the genesis says the NA key stopped being valid an hour ago */
    gm_genesis old = f->g;
    assert_int_equal(gm_genesis_create(&f->g, "UNITNET", f->root.pk, f->na.pk, gm_time_add(f->now, -86400 * 30),
                                       gm_time_add(f->now, -3600), NULL, &err),
                     0);
    assert_int_equal(gm_genesis_sign(&f->g, &f->root, &err), 0);
    char *c = issue(&f->na, "UNITNET", f->node.pk, gm_time_add(f->now, -60), gm_time_add(f->now, 3600), NULL);
    assert_int_equal(check(f, NULL, c, x), GM_TRUST_EXPIRED);
    free(c);
    gm_genesis_free(&f->g);
    f->g = old;
}

static void test_trust_refuses_other_network(void **state)
{
    fixture *f = *state;
    uint8_t x[32];
    x25519_of(&f->node, x);
    char *c = issue(&f->na, "OTHERNET", f->node.pk, gm_time_add(f->now, -60), gm_time_add(f->now, 3600), NULL);
    assert_int_equal(check(f, NULL, c, x), GM_TRUST_WRONG_NETWORK);
    free(c);
}

static void test_trust_refuses_forged_cert(void **state)
{
    fixture *f = *state;
    uint8_t x[32];
    x25519_of(&f->node, x);
    /* Signed by a key that is not the genesis NA key, same key id. */
    char *c = issue(&f->other_na, "UNITNET", f->node.pk, gm_time_add(f->now, -60), gm_time_add(f->now, 3600), NULL);
    assert_int_equal(check(f, NULL, c, x), GM_TRUST_BAD_SIGNATURE);
    free(c);
    /* A genuine certificate with one byte of a signed member changed. */
    c = issue(&f->na, "UNITNET", f->node.pk, gm_time_add(f->now, -60), gm_time_add(f->now, 3600), NULL);
    char *r = strstr(c, "role:test");
    assert_non_null(r);
    r[5] = 'T';
    assert_int_equal(check(f, NULL, c, x), GM_TRUST_BAD_SIGNATURE);
    free(c);
    assert_int_equal(check(f, NULL, "{\"cert_id\":", NULL), GM_TRUST_MALFORMED);
}

static gm_crl make_crl(fixture *f, const gm_signer *signer, uint64_t seq, const char *revoked_id)
{
    gm_crl crl;
    gm_error err = {0};
    char ts[GM_TIME_STRLEN];
    gm_time_format(&f->now, ts);
    json_t *rev = json_array();
    if (revoked_id)
        json_array_append_new(rev, json_pack("{s:s,s:s,s:s,s:s}", "certificate_id", revoked_id, "revoked_at", ts, "reason",
                                             "key_compromise", "issuer", "na-local"));
    assert_int_equal(gm_crl_issue(&crl, signer, seq, rev, f->now, 86400, &err), 0);
    json_decref(rev);
    return crl;
}

static void test_trust_refuses_revoked_cert(void **state)
{
    fixture *f = *state;
    uint8_t x[32];
    char id[37];
    x25519_of(&f->node, x);
    char *c = issue(&f->na, "UNITNET", f->node.pk, gm_time_add(f->now, -60), gm_time_add(f->now, 3600), id);
    gm_crl other = make_crl(f, &f->na, 1, "00000000-0000-4000-8000-000000000001");
    gm_crl crl = make_crl(f, &f->na, 2, id);
    assert_int_equal(check(f, &other, c, x), GM_TRUST_OK);
    assert_int_equal(check(f, &crl, c, x), GM_TRUST_REVOKED);
    assert_int_equal(check(f, &crl, c, NULL), GM_TRUST_REVOKED);
    gm_crl_free(&crl);
    gm_crl_free(&other);
    free(c);
}

static void test_trust_refuses_key_mismatch(void **state)
{
    fixture *f = *state;
    uint8_t x[32];
    /* The certificate is valid, but the handshake was done with another static key. */
    x25519_of(&f->stranger, x);
    char *c = issue(&f->na, "UNITNET", f->node.pk, gm_time_add(f->now, -60), gm_time_add(f->now, 3600), NULL);
    assert_int_equal(check(f, NULL, c, x), GM_TRUST_KEY_MISMATCH);
    free(c);
}

static void test_trust_reason_names(void **state)
{
    (void)state;
    assert_string_equal(gm_trust_reason_name(GM_TRUST_REVOKED), "revoked");
    assert_string_equal(gm_trust_reason_name(GM_TRUST_KEY_MISMATCH), "key_mismatch");
    assert_string_equal(gm_trust_reason_name(GM_TRUST_N), "unknown");
}

/* ---- CRL acceptance ---- */

static int offer(fixture *f, const gm_crl *current, const gm_crl *incoming, uint64_t *seq)
{
    gm_crl out;
    gm_error err = {0};
    char *text = gm_crl_dump(incoming, 0);
    int rc = gm_node_crl_accept(current, f->na.pk, text, strlen(text), &out, &err);
    free(text);
    if (rc == 0) {
        *seq = out.sequence;
        gm_crl_free(&out);
    } else {
        assert_true(err.msg[0] != 0);
    }
    return rc;
}

static void test_crl_accepts_first_and_higher(void **state)
{
    fixture *f = *state;
    uint64_t seq = 99;
    gm_crl c0 = make_crl(f, &f->na, 0, NULL), c3 = make_crl(f, &f->na, 3, "00000000-0000-4000-8000-000000000002");
    assert_int_equal(offer(f, NULL, &c0, &seq), 0);
    assert_int_equal(seq, 0);
    assert_int_equal(offer(f, &c0, &c3, &seq), 0);
    assert_int_equal(seq, 3);
    gm_crl_free(&c0);
    gm_crl_free(&c3);
}

static void test_crl_refuses_lower_or_equal_sequence(void **state)
{
    fixture *f = *state;
    uint64_t seq;
    gm_crl c2 = make_crl(f, &f->na, 2, NULL), c2b = make_crl(f, &f->na, 2, "00000000-0000-4000-8000-000000000003"),
           c1 = make_crl(f, &f->na, 1, NULL);
    assert_int_equal(offer(f, &c2, &c2b, &seq), GM_ECONFLICT);
    assert_int_equal(offer(f, &c2, &c1, &seq), GM_ECONFLICT);
    gm_crl_free(&c2);
    gm_crl_free(&c2b);
    gm_crl_free(&c1);
}

static void test_crl_refuses_bad_signature(void **state)
{
    fixture *f = *state;
    uint64_t seq;
    gm_crl c1 = make_crl(f, &f->na, 1, NULL), forged = make_crl(f, &f->other_na, 5, NULL);
    assert_int_equal(offer(f, &c1, &forged, &seq), GM_ESIG);
    assert_int_equal(offer(f, NULL, &forged, &seq), GM_ESIG);
    /* Tampered after signing: sequence raised by hand. */
    gm_crl c5 = make_crl(f, &f->na, 5, NULL);
    char *text = gm_crl_dump(&c5, 0), *p = strstr(text, "\"sequence\":5");
    assert_non_null(p);
    p[11] = '7';
    gm_crl out;
    assert_int_not_equal(gm_node_crl_accept(&c1, f->na.pk, text, strlen(text), &out, NULL), 0);
    assert_int_not_equal(gm_node_crl_accept(&c1, f->na.pk, "not json", 8, &out, NULL), 0);
    free(text);
    gm_crl_free(&c5);
    gm_crl_free(&c1);
    gm_crl_free(&forged);
}

/* ---- replay window ---- */

static int take(gm_replay_window *w, uint64_t c)
{
    if (gm_replay_check(w, c) != 0)
        return -1;
    gm_replay_mark(w, c);
    return 0;
}

static void test_replay_refuses_duplicates(void **state)
{
    (void)state;
    gm_replay_window w;
    gm_replay_init(&w);
    assert_int_equal(take(&w, 0), 0);
    assert_int_equal(take(&w, 0), -1);
    assert_int_equal(take(&w, 1), 0);
    assert_int_equal(take(&w, 1), -1);
    assert_int_equal(take(&w, 0), -1);
}

static void test_replay_accepts_reordering_inside_window(void **state)
{
    (void)state;
    gm_replay_window w;
    gm_replay_init(&w);
    assert_int_equal(take(&w, 10), 0);
    assert_int_equal(take(&w, 5), 0);
    assert_int_equal(take(&w, 9), 0);
    assert_int_equal(take(&w, 5), -1);
    assert_int_equal(take(&w, 0), 0);
    assert_int_equal(take(&w, 11), 0);
    assert_int_equal(take(&w, 10), -1);
}

static void test_replay_refuses_too_old(void **state)
{
    (void)state;
    gm_replay_window w;
    gm_replay_init(&w);
    assert_int_equal(take(&w, 5000), 0);
    assert_int_equal(take(&w, 5000 - GM_REPLAY_WINDOW_BITS + 1), 0); /* oldest still tracked */
    assert_int_equal(take(&w, 5000 - GM_REPLAY_WINDOW_BITS), -1);     /* too old to tell */
    /* A large jump forgets everything below the new window. */
    assert_int_equal(take(&w, 1000000), 0);
    assert_int_equal(take(&w, 5001), -1);
    assert_int_equal(take(&w, 1000000 - 1), 0);
    assert_int_equal(take(&w, 1000000 - 1), -1);
    assert_int_equal(gm_replay_check(&w, UINT64_MAX), -1);
}

static void test_replay_slots_reused_after_advance(void **state)
{
    (void)state;
    gm_replay_window w;
    gm_replay_init(&w);
    /* Every counter in order, then each one again: all replays refused. */
    for (uint64_t c = 0; c < 3 * GM_REPLAY_WINDOW_BITS; c++)
        assert_int_equal(take(&w, c), 0);
    for (uint64_t c = 2 * GM_REPLAY_WINDOW_BITS; c < 3 * GM_REPLAY_WINDOW_BITS; c++)
        assert_int_equal(take(&w, c), -1);
    /* Skipped counters stay acceptable once, slot reuse does not mark them as seen. */
    assert_int_equal(take(&w, 3 * GM_REPLAY_WINDOW_BITS + 10), 0);
    assert_int_equal(take(&w, 3 * GM_REPLAY_WINDOW_BITS + 3), 0);
    assert_int_equal(take(&w, 3 * GM_REPLAY_WINDOW_BITS + 3), -1);
}

/* ---- CRL_DATA reassembly ---- */

static gm_crl make_big_crl(fixture *f, uint64_t seq, int n)
{
    gm_crl crl;
    gm_error err = {0};
    char ts[GM_TIME_STRLEN], id[40];
    gm_time_format(&f->now, ts);
    json_t *rev = json_array();
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof id, "00000000-0000-4000-8000-%012d", i);
        json_array_append_new(rev, json_pack("{s:s,s:s,s:s,s:s}", "certificate_id", id, "revoked_at", ts, "reason",
                                             "key_compromise", "issuer", "na-local"));
    }
    assert_int_equal(gm_crl_issue(&crl, &f->na, seq, rev, f->now, 86400, &err), 0);
    json_decref(rev);
    return crl;
}

/* Send text as a sender does (chunks through the wire codec), feed every chunk to rx.
 * Returns the last feed result; *chunks counts the chunks. */
static int transfer(node_crl_rx *rx, size_t *budget, uint64_t seq, const char *text, size_t len, int *chunks)
{
    static uint8_t msg[GM_WIRE_MSG_MAX];
    int rc = 0;
    *chunks = 0;
    for (size_t off = 0; off < len; off += GM_WIRE_CRL_CHUNK_MAX) {
        size_t n = len - off < GM_WIRE_CRL_CHUNK_MAX ? len - off : GM_WIRE_CRL_CHUNK_MAX, mlen;
        gm_wire_crl_chunk c = {.sequence = seq, .total_len = (uint32_t)len, .offset = (uint32_t)off,
                               .data = (const uint8_t *)text + off, .len = n}, d;
        assert_int_equal(gm_wire_crl_data_encode(&c, msg, sizeof msg, &mlen, NULL), 0);
        assert_int_equal(gm_wire_crl_data_decode(msg, mlen, &d, NULL), 0);
        rc = node_crl_rx_feed(rx, &d, 1000, budget, NULL);
        (*chunks)++;
        if (off + n < len)
            assert_int_equal(rc, 0);
    }
    return rc;
}

static void test_crl_chunks_reassemble_large_crl(void **state)
{
    fixture *f = *state;
    gm_crl c1 = make_crl(f, &f->na, 1, NULL), big = make_big_crl(f, 2, 1200);
    char *text = gm_crl_dump(&big, 0);
    size_t len = strlen(text);
    assert_true(len > 2 * GM_WIRE_CRL_CHUNK_MAX); /* would never fit one transport message */
    node_crl_rx rx = {0};
    size_t budget = 0;
    int chunks;
    assert_int_equal(transfer(&rx, &budget, 2, text, len, &chunks), 1);
    assert_true(chunks >= 3);
    assert_int_equal(rx.total, len);
    assert_int_equal(budget, len);
    assert_memory_equal(rx.buf, text, len);
    gm_crl out;
    gm_error err = {0};
    assert_int_equal(gm_node_crl_accept(&c1, f->na.pk, (const char *)rx.buf, rx.total, &out, &err), 0);
    assert_int_equal(out.sequence, 2);
    assert_int_equal(out.n_revoked, 1200);
    const char *why = NULL;
    assert_true(gm_crl_contains(&out, "00000000-0000-4000-8000-000000001199", &why));
    gm_crl_free(&out);
    node_crl_rx_reset(&rx, &budget);
    assert_int_equal(budget, 0);
    assert_null(rx.buf);

    /* One byte changed in a middle chunk (still valid JSON): the whole CRL fails the signature. */
    char *p = strstr(text, "8000-000000000600");
    assert_non_null(p);
    assert_true((size_t)(p - text) > GM_WIRE_CRL_CHUNK_MAX);
    p[5] = '9'; /* ...-900000000600: a revocation no one issued */
    assert_int_equal(transfer(&rx, &budget, 2, text, len, &chunks), 1);
    assert_int_equal(gm_node_crl_accept(&c1, f->na.pk, (const char *)rx.buf, rx.total, &out, &err), GM_ESIG);
    node_crl_rx_reset(&rx, &budget);
    assert_int_equal(budget, 0);
    free(text);
    gm_crl_free(&big);
    gm_crl_free(&c1);
}

static void test_crl_chunks_refuse_bad_sequences(void **state)
{
    (void)state;
    static uint8_t data[100];
    memset(data, 'x', sizeof data);
    node_crl_rx rx = {0};
    size_t budget = 0;
    gm_wire_crl_chunk c = {.sequence = 7, .total_len = 30, .offset = 0, .data = data, .len = 10};

    /* A chunk without its start. */
    c.offset = 10;
    assert_int_equal(node_crl_rx_feed(&rx, &c, 0, &budget, NULL), GM_EPROTO);
    /* Gap: 0..10 then 20..30. */
    c.offset = 0;
    assert_int_equal(node_crl_rx_feed(&rx, &c, 0, &budget, NULL), 0);
    assert_int_equal(budget, 10);
    c.offset = 20;
    assert_int_equal(node_crl_rx_feed(&rx, &c, 0, &budget, NULL), GM_EPROTO);
    assert_false(rx.active);
    assert_null(rx.buf);
    assert_int_equal(budget, 0);
    /* Overlap: 0..10 then 5..15. */
    c.offset = 0;
    assert_int_equal(node_crl_rx_feed(&rx, &c, 0, &budget, NULL), 0);
    c.offset = 5;
    assert_int_equal(node_crl_rx_feed(&rx, &c, 0, &budget, NULL), GM_EPROTO);
    assert_int_equal(budget, 0);
    /* Sequence or total changes mid-transfer. */
    c.offset = 0;
    assert_int_equal(node_crl_rx_feed(&rx, &c, 0, &budget, NULL), 0);
    c.offset = 10;
    c.sequence = 8;
    assert_int_equal(node_crl_rx_feed(&rx, &c, 0, &budget, NULL), GM_EPROTO);
    c.sequence = 7;
    c.offset = 0;
    assert_int_equal(node_crl_rx_feed(&rx, &c, 0, &budget, NULL), 0);
    c.offset = 10;
    c.total_len = 40;
    assert_int_equal(node_crl_rx_feed(&rx, &c, 0, &budget, NULL), GM_EPROTO);
    c.total_len = 30;
    /* A new start replaces the transfer in flight. */
    c.offset = 0;
    assert_int_equal(node_crl_rx_feed(&rx, &c, 0, &budget, NULL), 0);
    c.sequence = 9;
    assert_int_equal(node_crl_rx_feed(&rx, &c, 0, &budget, NULL), 0);
    assert_int_equal(rx.sequence, 9);
    assert_int_equal(budget, 10);
    /* Too slow. */
    c.offset = 10;
    assert_int_equal(node_crl_rx_feed(&rx, &c, NODE_CRL_RX_TIMEOUT_MS + 1, &budget, NULL), GM_ETIMEOUT);
    assert_int_equal(budget, 0);
    /* In order it completes. */
    for (uint32_t off = 0; off < 30; off += 10) {
        c.offset = off;
        assert_int_equal(node_crl_rx_feed(&rx, &c, 5, &budget, NULL), off == 20 ? 1 : 0);
    }
    node_crl_rx_reset(&rx, &budget);
    assert_int_equal(budget, 0);
}

static void test_crl_chunks_refuse_oversize_without_allocating(void **state)
{
    (void)state;
    static uint8_t data[GM_WIRE_CRL_CHUNK_MAX];
    memset(data, 'x', sizeof data);
    node_crl_rx rx = {0};
    size_t budget = 0;
    /* Announced total above the cap: refused before anything is held. */
    gm_wire_crl_chunk c = {.sequence = 1, .total_len = GM_WIRE_CRL_TOTAL_MAX + 1, .offset = 0, .data = data, .len = 10};
    assert_int_equal(node_crl_rx_feed(&rx, &c, 0, &budget, NULL), GM_EPROTO);
    assert_null(rx.buf);
    assert_false(rx.active);
    assert_int_equal(budget, 0);
    c.total_len = UINT32_MAX;
    assert_int_equal(node_crl_rx_feed(&rx, &c, 0, &budget, NULL), GM_EPROTO);
    assert_null(rx.buf);
    /* The largest total is accepted, but only what arrived is held. */
    c.total_len = GM_WIRE_CRL_TOTAL_MAX;
    assert_int_equal(node_crl_rx_feed(&rx, &c, 0, &budget, NULL), 0);
    assert_int_equal(rx.have, 10);
    assert_int_equal(budget, 10);
    node_crl_rx_reset(&rx, &budget);
    /* The node-wide budget bounds all reassemblies together. */
    node_crl_rx other = {0};
    size_t full = NODE_CRL_RX_BUDGET - 5;
    c.len = 10;
    assert_int_equal(node_crl_rx_feed(&other, &c, 0, &full, NULL), GM_ETOOBIG);
    assert_null(other.buf);
    assert_int_equal(full, NODE_CRL_RX_BUDGET - 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_trust_accepts_good_cert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trust_refuses_expired_cert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trust_refuses_cert_when_na_key_outside_genesis_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trust_refuses_other_network, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trust_refuses_forged_cert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trust_refuses_revoked_cert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trust_refuses_key_mismatch, setup, teardown),
        cmocka_unit_test(test_trust_reason_names),
        cmocka_unit_test_setup_teardown(test_crl_accepts_first_and_higher, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crl_refuses_lower_or_equal_sequence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crl_refuses_bad_signature, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crl_chunks_reassemble_large_crl, setup, teardown),
        cmocka_unit_test(test_crl_chunks_refuse_bad_sequences),
        cmocka_unit_test(test_crl_chunks_refuse_oversize_without_allocating),
        cmocka_unit_test(test_replay_refuses_duplicates),
        cmocka_unit_test(test_replay_accepts_reordering_inside_window),
        cmocka_unit_test(test_replay_refuses_too_old),
        cmocka_unit_test(test_replay_slots_reused_after_advance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
