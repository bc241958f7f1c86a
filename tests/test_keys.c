/* Tests for gm/keys.h: the spec's deterministic key and signature vectors, key files
 * (mode, comments, key ids, no overwrite) and strict base64. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "gm/keys.h"
#include "gm/util.h"
#include "core_internal.h"

#define NODE_PK "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg="
#define OPERATOR_PK "Kay64UG8yvCyLhqU000LxzYeUm0L/hLIl5S8kyKWbdc="
#define NA_PK "JUO5L/EJVRFHatyDadtt3JM2ZaEZeN2hQE7hBmypVZ0="

static char tmpdir[256];

static void seed_from(uint8_t first, uint8_t seed[GM_SEED_LEN])
{
    for (int i = 0; i < GM_SEED_LEN; i++)
        seed[i] = (uint8_t)(first + i);
}

static void signer_from(uint8_t first, const char *key_id, gm_signer *k)
{
    uint8_t seed[GM_SEED_LEN];
    gm_error err = {0};
    seed_from(first, seed);
    assert_int_equal(gm_signer_from_seed(k, seed, key_id, &err), 0);
}

static void path_in_tmp(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/gm-test-keys-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_spec_seed_vectors_give_spec_public_keys(void **state)
{
    (void)state;
    gm_signer k;
    signer_from(0x00, "node", &k);
    assert_string_equal(k.pk_b64, NODE_PK);
    assert_string_equal(k.key_id, "node");
    signer_from(0x20, "operator-local", &k);
    assert_string_equal(k.pk_b64, OPERATOR_PK);
    signer_from(0x40, "na-local", &k);
    assert_string_equal(k.pk_b64, NA_PK);
    /* the secret key is seed || pk */
    uint8_t seed[GM_SEED_LEN];
    seed_from(0x40, seed);
    assert_memory_equal(k.sk, seed, GM_SEED_LEN);
    assert_memory_equal(k.sk + GM_SEED_LEN, k.pk, GM_PK_LEN);
    gm_signer_wipe(&k);
}

static void assert_sign_vector(uint8_t first, const char *bytes, const char *expected_sig)
{
    gm_signer k;
    gm_error err = {0};
    char sig[GM_SIG_B64_LEN + 1];
    signer_from(first, "k", &k);
    gm_sign_b64(&k, (const uint8_t *)bytes, strlen(bytes), sig);
    assert_string_equal(sig, expected_sig);
    assert_int_equal(gm_verify_b64(k.pk, (const uint8_t *)bytes, strlen(bytes), expected_sig, &err), 0);
    gm_signer_wipe(&k);
}

static void test_spec_signature_vectors_reproduced_exactly(void **state)
{
    (void)state;
    assert_sign_vector(0x00,
                       "{\"invite_token\":\"7d0f1e5c-0000-4000-8000-000000000001\",\"node_public_key\":\"" NODE_PK
                       "\",\"nonce\":\"00000000-0000-4000-8000-0000000000aa\",\"roles\":[\"role:client\"],"
                       "\"timestamp\":\"2026-06-06T10:00:00.000000+00:00\",\"validity_hours\":168}",
                       "wqi51TPnTg5obRJYcd/VPg5LQxRvQzp4G5aovjZ8jZkxAAyGmGCyyIQ229LbGfSPvWWLZn7fdNqZNV1ftKflAA==");
    assert_sign_vector(0x20,
                       "{\"body\":{\"max_validity_hours\":168,\"roles\":[\"role:anchor\"],\"token_expiry_hours\":24},"
                       "\"key_id\":\"operator-local\",\"nonce\":\"00000000-0000-4000-8000-0000000000bb\","
                       "\"timestamp\":\"2026-06-06T10:00:00+00:00\"}",
                       "8z4tOV3w95EL9v1hFBkKUbx4xRNMAQDqT3G/mbcSwAEttzUpcGz2FuBRuJh/ni/LNJgeQbNdCY2N59JXYvDQDQ==");
    assert_sign_vector(0x40,
                       "{\"cert_id\":\"00000000-0000-4000-8000-0000000000cc\",\"expires_at\":\"2026-06-13T10:00:00Z\","
                       "\"issued_at\":\"2026-06-06T10:00:00Z\",\"issued_by\":\"na-local\",\"network_name\":\"TESTNET\","
                       "\"node_public_key\":\"" NODE_PK "\",\"roles\":[\"role:anchor\"]}",
                       "8AQCB642cvO2NW0hrMjMIj+Lh289sIBq++DOB9W+kZBQcVY3stMypYOKnm67Skp1K50guJoAQdlP8ddti6RlAg==");
}

static void test_verify_refuses_tampered_message_wrong_key_and_bad_encoding(void **state)
{
    (void)state;
    gm_signer k, other;
    gm_error err = {0};
    char sig[GM_SIG_B64_LEN + 1];
    const char *msg = "hello";
    signer_from(0x00, "k", &k);
    signer_from(0x20, "o", &other);
    gm_sign_b64(&k, (const uint8_t *)msg, 5, sig);
    assert_int_equal(gm_verify_b64(k.pk, (const uint8_t *)"hellp", 5, sig, &err), GM_ESIG);
    assert_int_equal(gm_verify_b64(other.pk, (const uint8_t *)msg, 5, sig, &err), GM_ESIG);
    char bad[GM_SIG_B64_LEN + 1];
    memcpy(bad, sig, sizeof bad);
    bad[10] = bad[10] == 'A' ? 'B' : 'A';
    assert_int_equal(gm_verify_b64(k.pk, (const uint8_t *)msg, 5, bad, &err), GM_ESIG);
    assert_int_equal(gm_verify_b64(k.pk, (const uint8_t *)msg, 5, "AAAA", &err), GM_EFORMAT);
    assert_int_equal(gm_verify_b64(k.pk, (const uint8_t *)msg, 5, NULL, &err), GM_EFORMAT);
    /* signature with stray bits in its last character */
    memcpy(bad, sig, sizeof bad);
    bad[85] = 'B';
    assert_int_equal(gm_verify_b64(k.pk, (const uint8_t *)msg, 5, bad, &err), GM_EFORMAT);
}

/* Successes are remembered (lib/core/keys.c): a signature that verified, even many times,
 * never makes another message, key or signature pass. */
static void test_remembered_verification_never_lets_a_tampered_one_pass(void **state)
{
    (void)state;
    gm_signer k, other;
    gm_error err = {0};
    char sig[GM_SIG_B64_LEN + 1], bad[GM_SIG_B64_LEN + 1];
    const char *msg = "remembered";
    signer_from(0x40, "k", &k);
    signer_from(0x60, "o", &other);
    gm_sign_b64(&k, (const uint8_t *)msg, 10, sig);
    for (int i = 0; i < 3; i++)
        assert_int_equal(gm_verify_b64(k.pk, (const uint8_t *)msg, 10, sig, &err), 0);
    assert_int_equal(gm_verify_b64(k.pk, (const uint8_t *)"rememberee", 10, sig, &err), GM_ESIG);
    assert_int_equal(gm_verify_b64(k.pk, (const uint8_t *)msg, 9, sig, &err), GM_ESIG);
    assert_int_equal(gm_verify_b64(other.pk, (const uint8_t *)msg, 10, sig, &err), GM_ESIG);
    memcpy(bad, sig, sizeof bad);
    bad[20] = bad[20] == 'A' ? 'B' : 'A';
    assert_int_equal(gm_verify_b64(k.pk, (const uint8_t *)msg, 10, bad, &err), GM_ESIG);
    assert_int_equal(gm_verify_b64(k.pk, (const uint8_t *)msg, 10, sig, &err), 0);
}

/* A batch of signature checks split between two cores gives each item exactly what checking
 * it alone gives: good ones pass; a tampered message, another key and bad base64 fail; also
 * with several threads sending batches at once (one of them uses the helper, the others
 * check alone). */
#define BATCH_N 12
#define BATCH_ROUNDS 40
#define BATCH_THREADS 4

struct batch_case {
    gm_signer k, other;
    int seed;
    int failures;
};

static void *batch_thread(void *arg)
{
    struct batch_case *bc = arg;
    char msgs[BATCH_N][48], sigs[BATCH_N][GM_SIG_B64_LEN + 1];
    gm_verify_item it[BATCH_N];
    int want[BATCH_N];
    for (int r = 0; r < BATCH_ROUNDS; r++) {
        for (int i = 0; i < BATCH_N; i++) {
            int len = snprintf(msgs[i], sizeof msgs[i], "batch %d round %d item %d", bc->seed, r, i);
            gm_sign_b64(&bc->k, (const uint8_t *)msgs[i], (size_t)len, sigs[i]);
            it[i] = (gm_verify_item){.pk = bc->k.pk, .msg = (const uint8_t *)msgs[i], .len = (size_t)len,
                                     .sig_b64 = sigs[i], .rc = 99};
            want[i] = 0;
            switch ((i + r + bc->seed) % 5) {
            case 1: /* the message changed after signing */
                msgs[i][0] = 'B';
                want[i] = GM_ESIG;
                break;
            case 2: /* another key */
                it[i].pk = bc->other.pk;
                want[i] = GM_ESIG;
                break;
            case 3: /* not base64 */
                sigs[i][5] = '*';
                want[i] = GM_EFORMAT;
                break;
            default:
                break;
            }
        }
        gm_verify_b64_many(it, BATCH_N);
        for (int i = 0; i < BATCH_N; i++) {
            gm_error e = {0};
            int alone = gm_verify_b64(it[i].pk, it[i].msg, it[i].len, it[i].sig_b64, &e);
            if (it[i].rc != want[i] || alone != want[i])
                bc->failures++;
        }
    }
    return NULL;
}

static void test_batch_verification_on_two_cores_matches_one_by_one(void **state)
{
    (void)state;
    struct batch_case bc[BATCH_THREADS];
    pthread_t th[BATCH_THREADS];
    for (int t = 0; t < BATCH_THREADS; t++) {
        signer_from((uint8_t)(0x20 + t), "k", &bc[t].k);
        signer_from((uint8_t)(0x70 + t), "o", &bc[t].other);
        bc[t].seed = t;
        bc[t].failures = 0;
    }
    batch_thread(&bc[0]); /* alone first: starts the helper */
    assert_int_equal(bc[0].failures, 0);
    for (int t = 0; t < BATCH_THREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, batch_thread, &bc[t]), 0);
    for (int t = 0; t < BATCH_THREADS; t++) {
        pthread_join(th[t], NULL);
        assert_int_equal(bc[t].failures, 0);
    }
    gm_verify_b64_many(NULL, 0); /* an empty batch is nothing to do */
}

/* A child after fork() checks its batches alone and gets them right: the parent's helper thread
 * is not in it (a child that waited for it would hang: the alarm ends such a child). */
static void test_batch_verification_in_a_forked_child(void **state)
{
    (void)state;
    struct batch_case bc;
    signer_from(0x31, "k", &bc.k);
    signer_from(0x32, "o", &bc.other);
    bc.seed = 7;
    bc.failures = 0;
    batch_thread(&bc); /* the helper runs in this process */
    assert_int_equal(bc.failures, 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(20);
        bc.failures = 0;
        batch_thread(&bc);
        _exit(bc.failures == 0 ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_generated_keys_differ_and_sign(void **state)
{
    (void)state;
    gm_signer a, b;
    gm_error err = {0};
    char sig[GM_SIG_B64_LEN + 1];
    assert_int_equal(gm_signer_generate(&a, "a", &err), 0);
    assert_int_equal(gm_signer_generate(&b, "b", &err), 0);
    assert_memory_not_equal(a.pk, b.pk, GM_PK_LEN);
    gm_sign_b64(&a, (const uint8_t *)"x", 1, sig);
    assert_int_equal(gm_verify_b64(a.pk, (const uint8_t *)"x", 1, sig, &err), 0);
    gm_signer_wipe(&a);
    uint8_t zero[sizeof a] = {0};
    assert_memory_equal(&a, zero, sizeof a);
    gm_signer_wipe(&b);
}

static void test_saved_key_file_is_mode_0600_even_with_open_umask(void **state)
{
    (void)state;
    gm_signer k, back;
    gm_error err = {0};
    char base[512], path[600];
    struct stat st;
    signer_from(0x40, "na-local", &k);
    path_in_tmp(base, sizeof base, "mode");
    mode_t old = umask(0);
    int rc = gm_signer_save(&k, base, 0, &err);
    umask(old);
    assert_int_equal(rc, 0);
    snprintf(path, sizeof path, "%s.key", base);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    snprintf(path, sizeof path, "%s.pub", base);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0077, 0044); /* public: world-readable */
    assert_int_equal(gm_signer_load(&back, base, "default", &err), 0);
    assert_memory_equal(back.sk, k.sk, sizeof k.sk);
    assert_string_equal(back.key_id, "na-local");
    uint8_t pk[GM_PK_LEN];
    assert_int_equal(gm_pk_load(path, pk, &err), 0);
    assert_memory_equal(pk, k.pk, GM_PK_LEN);
    gm_signer_wipe(&k);
    gm_signer_wipe(&back);
}

static void test_save_refuses_overwrite_without_force(void **state)
{
    (void)state;
    gm_signer a, b, back;
    gm_error err = {0};
    char base[512];
    signer_from(0x00, "first", &a);
    signer_from(0x20, "second", &b);
    path_in_tmp(base, sizeof base, "noclobber");
    assert_int_equal(gm_signer_save(&a, base, 0, &err), 0);
    assert_int_equal(gm_signer_save(&b, base, 0, &err), GM_EEXIST);
    assert_non_null(strstr(err.msg, "refusing to overwrite"));
    assert_int_equal(gm_signer_load(&back, base, NULL, &err), 0);
    assert_memory_equal(back.pk, a.pk, GM_PK_LEN); /* untouched */
    assert_int_equal(gm_signer_save(&b, base, 1, &err), 0);
    assert_int_equal(gm_signer_load(&back, base, NULL, &err), 0);
    assert_memory_equal(back.pk, b.pk, GM_PK_LEN);
    assert_string_equal(back.key_id, "second");
    /* an existing .pub alone also blocks */
    char pub[600];
    path_in_tmp(base, sizeof base, "pubonly");
    snprintf(pub, sizeof pub, "%s.pub", base);
    write_file(pub, NODE_PK "\n");
    assert_int_equal(gm_signer_save(&a, base, 0, &err), GM_EEXIST);
}

static void test_key_file_comments_blank_lines_and_whitespace_skipped(void **state)
{
    (void)state;
    gm_signer k;
    gm_error err = {0};
    char base[512], path[600], seed_b64[64];
    uint8_t seed[GM_SEED_LEN];
    seed_from(0x20, seed);
    gm_b64_encode(seed, sizeof seed, seed_b64, sizeof seed_b64);
    path_in_tmp(base, sizeof base, "comments");
    snprintf(path, sizeof path, "%s.key", base);
    char text[512];
    snprintf(text, sizeof text, "\n# Ed25519 Private Key\r\n\n#another comment\n   \t\n# Key ID:   operator-local  \r\n"
                                "  %s \r\n\n# trailing comment\n",
             seed_b64);
    write_file(path, text);
    assert_int_equal(gm_signer_load(&k, base, "fallback", &err), 0);
    assert_string_equal(k.pk_b64, OPERATOR_PK);
    assert_string_equal(k.key_id, "operator-local");
    /* no "# Key ID:" line: the default id is used */
    snprintf(text, sizeof text, "# Ed25519 Private Key\n%s", seed_b64);
    write_file(path, text);
    assert_int_equal(gm_signer_load(&k, base, "fallback", &err), 0);
    assert_string_equal(k.key_id, "fallback");
    gm_signer_wipe(&k);
}

static void test_key_file_without_key_or_with_two_keys_refused(void **state)
{
    (void)state;
    gm_signer k;
    gm_error err = {0};
    char base[512], path[600];
    path_in_tmp(base, sizeof base, "broken");
    snprintf(path, sizeof path, "%s.key", base);
    write_file(path, "# only a comment\n\n");
    assert_int_equal(gm_signer_load(&k, base, NULL, &err), GM_EFORMAT);
    assert_non_null(strstr(err.msg, "no key"));
    write_file(path, "");
    assert_int_equal(gm_signer_load(&k, base, NULL, &err), GM_EFORMAT);
    write_file(path, NODE_PK "\n" OPERATOR_PK "\n");
    assert_int_equal(gm_signer_load(&k, base, NULL, &err), GM_EFORMAT);
    assert_non_null(strstr(err.msg, "more than one"));
    path_in_tmp(base, sizeof base, "does-not-exist");
    assert_int_equal(gm_signer_load(&k, base, NULL, &err), GM_ENOTFOUND);
}

/* Every one of these must be refused as a public key, a key file line, and a seed. */
static const char *const bad_b64[] = {
    "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMb=",   /* 43 chars */
    "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbgA=", /* 45 chars */
    "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg",   /* missing padding */
    "A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=",  /* url-safe alphabet */
    "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMb-=",  /* url-safe alphabet */
    "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbh=",  /* non-canonical trailing bits */
    "A6EHv/POEL4dcN0Y50vAmWfk1jCb pQ1fHdyGZBJVMbg=", /* whitespace inside */
    "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=\n", /* trailing newline */
    "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVM===",  /* too much padding */
    "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJV=bg=",  /* padding inside */
    "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMb.=",  /* foreign character */
    "",
};

static void test_public_key_base64_strictness(void **state)
{
    (void)state;
    uint8_t pk[GM_PK_LEN];
    gm_error err = {0};
    assert_int_equal(gm_pk_decode(NODE_PK, pk, &err), 0);
    char back[GM_PK_B64_LEN + 1];
    gm_pk_encode(pk, back);
    assert_string_equal(back, NODE_PK);
    for (size_t i = 0; i < sizeof bad_b64 / sizeof bad_b64[0]; i++) {
        if (gm_pk_decode(bad_b64[i], pk, &err) != GM_EFORMAT)
            fail_msg("accepted bad public key #%zu '%s'", i, bad_b64[i]);
    }
    assert_int_equal(gm_pk_decode(NULL, pk, &err), GM_EFORMAT);
}

static void test_key_files_with_bad_base64_refused(void **state)
{
    (void)state;
    gm_signer k;
    uint8_t pk[GM_PK_LEN];
    gm_error err = {0};
    char base[512], path[600], text[256];
    path_in_tmp(base, sizeof base, "strict");
    for (size_t i = 0; i < sizeof bad_b64 / sizeof bad_b64[0]; i++) {
        /* the loader strips whitespace around the line, so those two cases are fine there */
        if (strchr(bad_b64[i], '\n') || bad_b64[i][0] == '\0')
            continue;
        snprintf(text, sizeof text, "# Key ID: x\n%s\n", bad_b64[i]);
        snprintf(path, sizeof path, "%s.key", base);
        write_file(path, text);
        if (gm_signer_load(&k, base, NULL, &err) != GM_EFORMAT)
            fail_msg("accepted bad seed #%zu '%s'", i, bad_b64[i]);
        assert_non_null(strstr(err.msg, path)); /* the message says which file */
        snprintf(path, sizeof path, "%s.pub", base);
        write_file(path, text);
        if (gm_pk_load(path, pk, &err) != GM_EFORMAT)
            fail_msg("accepted bad .pub #%zu '%s'", i, bad_b64[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_seed_vectors_give_spec_public_keys),
        cmocka_unit_test(test_spec_signature_vectors_reproduced_exactly),
        cmocka_unit_test(test_verify_refuses_tampered_message_wrong_key_and_bad_encoding),
        cmocka_unit_test(test_remembered_verification_never_lets_a_tampered_one_pass),
        cmocka_unit_test(test_batch_verification_on_two_cores_matches_one_by_one),
        cmocka_unit_test(test_batch_verification_in_a_forked_child),
        cmocka_unit_test(test_generated_keys_differ_and_sign),
        cmocka_unit_test(test_saved_key_file_is_mode_0600_even_with_open_umask),
        cmocka_unit_test(test_save_refuses_overwrite_without_force),
        cmocka_unit_test(test_key_file_comments_blank_lines_and_whitespace_skipped),
        cmocka_unit_test(test_key_file_without_key_or_with_two_keys_refused),
        cmocka_unit_test(test_public_key_base64_strictness),
        cmocka_unit_test(test_key_files_with_bad_base64_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
