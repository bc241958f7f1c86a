/* The issuance log's Merkle trees and checkpoints: the Certificate Transparency reference
 * roots (RFC 6962 test data: the 8 leaves "", 00, 10, 2021, 3031, 40414243, 50..57, 60..6f),
 * every inclusion and consistency proof of trees up to 40 leaves, and the proofs that must fail
 * (a changed entry, a changed hash, another root, a fork of the same size, a shrunk log). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "agent_testkit.h"
#include "gm/merkle.h"
#include "merkle_internal.h"

#define N 40

static gm_merkle_hash leaves[N];

static void fill(void)
{
    for (int i = 0; i < N; i++) {
        char d[32];
        int len = snprintf(d, sizeof d, "entry %d", i);
        gm_merkle_leaf_hash(d, (size_t)len, leaves[i]);
    }
}

static void test_reference_roots(void **state)
{
    (void)state;
    static const char *const hex_leaves[] = {"", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                             "606162636465666768696a6b6c6d6e6f"};
    static const char *const roots[] = {
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    };
    gm_merkle_hash h[8], root;
    for (int i = 0; i < 8; i++) {
        uint8_t bin[16];
        size_t len = 0;
        assert_int_equal(sodium_hex2bin(bin, sizeof bin, hex_leaves[i], strlen(hex_leaves[i]), NULL, &len, NULL), 0);
        gm_merkle_leaf_hash(bin, len, h[i]);
    }
    for (int n = 1; n <= 8; n++) {
        char hex[65];
        gm_merkle_root(h, (uint64_t)n, root);
        gm_merkle_hex(root, hex);
        assert_string_equal(hex, roots[n - 1]);
    }
    gm_merkle_root(h, 0, root);
    char hex[65];
    gm_merkle_hex(root, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_every_inclusion_proof_verifies_and_a_change_fails(void **state)
{
    (void)state;
    fill();
    for (uint64_t n = 1; n <= N; n++) {
        gm_merkle_hash root, path[GM_MERKLE_PROOF_MAX];
        gm_merkle_root(leaves, n, root);
        for (uint64_t m = 0; m < n; m++) {
            size_t count = 0;
            assert_int_equal(gm_merkle_inclusion_proof(leaves, n, m, path, &count, NULL), 0);
            assert_int_equal(gm_merkle_verify_inclusion(leaves[m], m, n, path, count, root, NULL), 0);
            /* another entry, another position, a changed hash, another root: all refused */
            assert_int_equal(gm_merkle_verify_inclusion(leaves[(m + 1) % N], m, n, path, count, root, NULL),
                             n == 1 && N == 1 ? 0 : GM_ESIG);
            if (n > 1)
                assert_int_equal(gm_merkle_verify_inclusion(leaves[m], (m + 1) % n, n, path, count, root, NULL),
                                 GM_ESIG);
            if (count > 0) {
                path[count - 1][3] ^= 1;
                assert_int_equal(gm_merkle_verify_inclusion(leaves[m], m, n, path, count, root, NULL), GM_ESIG);
                path[count - 1][3] ^= 1;
            }
            gm_merkle_hash other;
            gm_merkle_root(leaves, n == 1 ? 2 : n - 1, other);
            assert_int_equal(gm_merkle_verify_inclusion(leaves[m], m, n, path, count, other, NULL), GM_ESIG);
        }
    }
    size_t count;
    gm_merkle_hash path[GM_MERKLE_PROOF_MAX];
    gm_error err = {0};
    assert_int_equal(gm_merkle_inclusion_proof(leaves, 4, 4, path, &count, &err), GM_EINVAL);
    assert_non_null(strstr(err.msg, "not in a log of 4 entries"));
}

static void test_every_consistency_proof_verifies_and_a_fork_fails(void **state)
{
    (void)state;
    fill();
    for (uint64_t n = 1; n <= N; n++) {
        gm_merkle_hash rn;
        gm_merkle_root(leaves, n, rn);
        for (uint64_t m = 1; m <= n; m++) {
            gm_merkle_hash rm, path[GM_MERKLE_PROOF_MAX];
            size_t count = 0;
            gm_merkle_root(leaves, m, rm);
            assert_int_equal(gm_merkle_consistency_proof(leaves, m, n, path, &count, NULL), 0);
            assert_int_equal(gm_merkle_verify_consistency(m, n, rm, rn, path, count, NULL), 0);
            if (m == n)
                continue;
            /* a log whose first m entries changed does not extend the one held */
            gm_merkle_hash forged[N], froot;
            memcpy(forged, leaves, sizeof forged);
            forged[m - 1][0] ^= 0x80;
            gm_merkle_root(forged, n, froot);
            gm_merkle_hash fpath[GM_MERKLE_PROOF_MAX];
            size_t fcount = 0;
            assert_int_equal(gm_merkle_consistency_proof(forged, m, n, fpath, &fcount, NULL), 0);
            assert_int_equal(gm_merkle_verify_consistency(m, n, rm, froot, fpath, fcount, NULL), GM_ESIG);
            /* nor does a changed proof, or the right proof against another new root */
            path[0][5] ^= 1;
            assert_int_equal(gm_merkle_verify_consistency(m, n, rm, rn, path, count, NULL), GM_ESIG);
            path[0][5] ^= 1;
            assert_int_equal(gm_merkle_verify_consistency(m, n, rm, froot, path, count, NULL), GM_ESIG);
            assert_int_equal(gm_merkle_verify_consistency(m, n, rm, rn, path, 0, NULL), GM_ESIG);
        }
    }
    /* the same size with another root is a fork; a smaller log is a rollback */
    gm_merkle_hash a, b;
    gm_merkle_root(leaves, 7, a);
    gm_merkle_root(leaves + 1, 7, b);
    gm_error err = {0};
    assert_int_equal(gm_merkle_verify_consistency(7, 7, a, b, NULL, 0, &err), GM_ESIG);
    assert_non_null(strstr(err.msg, "fork"));
    assert_int_equal(gm_merkle_verify_consistency(7, 6, a, b, NULL, 0, &err), GM_ESIG);
    assert_non_null(strstr(err.msg, "shrank"));
    assert_int_equal(gm_merkle_verify_consistency(0, 7, a, a, NULL, 0, NULL), 0);
}

static void test_checkpoint_signed_parsed_and_checked(void **state)
{
    (void)state;
    tk_net net;
    tk_net_init(&net, "LOGNET");
    gm_merkle_hash root;
    fill();
    gm_merkle_root(leaves, 5, root);
    gm_checkpoint c, back;
    gm_error err = {0};
    assert_int_equal(gm_checkpoint_issue(&c, &net.na, "LOGNET", 5, root, gm_time_now(), &err), 0);
    char *text = gm_checkpoint_dump(&c, 0);
    assert_non_null(text);
    assert_int_equal(gm_checkpoint_parse(text, strlen(text), &back, &err), 0);
    assert_int_equal(back.tree_size, 5);
    assert_memory_equal(back.root, root, sizeof root);
    assert_int_equal(gm_checkpoint_verify(&back, net.na.pk, "LOGNET", &err), 0);
    assert_int_equal(gm_checkpoint_verify(&back, net.na.pk, "OTHER", &err), GM_EAUTH);
    assert_int_equal(gm_checkpoint_verify(&back, net.root.pk, "LOGNET", &err), GM_ESIG);
    gm_checkpoint_free(&back);
    /* a changed size keeps its signature but no longer verifies; unknown members are refused */
    json_t *doc = json_loads(text, 0, NULL);
    json_object_set_new(doc, "tree_size", json_integer(6));
    char *t2 = json_dumps(doc, JSON_COMPACT);
    assert_int_equal(gm_checkpoint_parse(t2, strlen(t2), &back, &err), 0);
    assert_int_equal(gm_checkpoint_verify(&back, net.na.pk, "LOGNET", &err), GM_ESIG);
    gm_checkpoint_free(&back);
    free(t2);
    json_object_set_new(doc, "extra", json_true());
    t2 = json_dumps(doc, JSON_COMPACT);
    assert_int_equal(gm_checkpoint_parse(t2, strlen(t2), &back, &err), GM_EFORMAT);
    assert_non_null(strstr(err.msg, "unknown member"));
    free(t2);
    json_object_del(doc, "extra");
    json_object_set_new(doc, "root_hash", json_string("ABCD"));
    t2 = json_dumps(doc, JSON_COMPACT);
    assert_int_equal(gm_checkpoint_parse(t2, strlen(t2), &back, &err), GM_EFORMAT);
    free(t2);
    json_decref(doc);
    free(text);
    gm_checkpoint_free(&c);
    tk_net_free(&net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_roots),
        cmocka_unit_test(test_every_inclusion_proof_verifies_and_a_change_fails),
        cmocka_unit_test(test_every_consistency_proof_verifies_and_a_fork_fails),
        cmocka_unit_test(test_checkpoint_signed_parsed_and_checked),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
