/* Tests for gm/reqsig.h: the two spec vectors byte for byte (node proof of possession,
 * operator admin request), then freshness, replay and tampering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "gm/keys.h"
#include "gm/reqsig.h"
#include "gm/util.h"
#include "core_internal.h"

static const char *NODE_BYTES =
    "{\"invite_token\":\"7d0f1e5c-0000-4000-8000-000000000001\",\"node_public_key\":\"A6EHv/POEL4dcN0Y50vAmWfk1jCb"
    "pQ1fHdyGZBJVMbg=\",\"nonce\":\"00000000-0000-4000-8000-0000000000aa\",\"roles\":[\"role:client\"],"
    "\"timestamp\":\"2026-06-06T10:00:00.000000+00:00\",\"validity_hours\":168}";
static const char *NODE_SIG = "wqi51TPnTg5obRJYcd/VPg5LQxRvQzp4G5aovjZ8jZkxAAyGmGCyyIQ229LbGfSPvWWLZn7fdNqZNV1ftKflAA==";
static const char *ADMIN_BYTES =
    "{\"body\":{\"max_validity_hours\":168,\"roles\":[\"role:anchor\"],\"token_expiry_hours\":24},\"key_id\":"
    "\"operator-local\",\"nonce\":\"00000000-0000-4000-8000-0000000000bb\",\"timestamp\":\"2026-06-06T10:00:00+00:00\"}";
static const char *ADMIN_SIG =
    "8z4tOV3w95EL9v1hFBkKUbx4xRNMAQDqT3G/mbcSwAEttzUpcGz2FuBRuJh/ni/LNJgeQbNdCY2N59JXYvDQDQ==";

static void seeded(gm_signer *k, uint8_t first, const char *key_id)
{
    uint8_t seed[GM_SEED_LEN];
    for (int i = 0; i < GM_SEED_LEN; i++)
        seed[i] = (uint8_t)(first + i);
    assert_int_equal(gm_signer_from_seed(k, seed, key_id, NULL), 0);
}

/* The vector's body before signing, members in a different order than the signed bytes. */
static json_t *vector_join_body(void)
{
    json_t *b = json_pack("{s:I,s:[s],s:s,s:s}", "validity_hours", (json_int_t)168, "roles", "role:client",
                          "node_public_key", "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=", "invite_token",
                          "7d0f1e5c-0000-4000-8000-000000000001");
    assert_non_null(b);
    return b;
}

static gm_time vector_time(void)
{
    gm_time t;
    assert_int_equal(gm_time_parse("2026-06-06T10:00:00Z", &t, NULL), 0);
    return t;
}

static void test_node_vector_bytes_and_signature(void **state)
{
    gm_signer k;
    seeded(&k, 0x00, "node");
    assert_string_equal(k.pk_b64, "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=");
    json_t *b = vector_join_body();
    gm_error err = {0};
    assert_int_equal(gm_reqsig_node_sign(b, &k, "2026-06-06T10:00:00.000000+00:00",
                                         "00000000-0000-4000-8000-0000000000aa", &err),
                     0);
    char *bytes = NULL;
    size_t len;
    assert_int_equal(gm_reqsig_node_bytes(b, &bytes, &len, &err), 0);
    assert_string_equal(bytes, NODE_BYTES);
    assert_int_equal(len, strlen(NODE_BYTES));
    assert_string_equal(json_string_value(json_object_get(b, "signature")), NODE_SIG);
    /* the timestamp is signed verbatim, not re-rendered */
    assert_string_equal(json_string_value(json_object_get(b, "timestamp")), "2026-06-06T10:00:00.000000+00:00");
    assert_int_equal(gm_reqsig_node_verify(b, k.pk, &err), 0);
    free(bytes);
    json_decref(b);
    gm_signer_wipe(&k);
}

static void test_node_vector_verifies_as_received(void **state)
{
    /* What the NA receives: the vector body as text, signature included. */
    char text[1024];
    snprintf(text, sizeof text, "%.*s,\"signature\":\"%s\"}", (int)strlen(NODE_BYTES) - 1, NODE_BYTES, NODE_SIG);
    json_t *b = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(b);
    uint8_t pk[GM_PK_LEN];
    assert_int_equal(gm_pk_decode("A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=", pk, NULL), 0);
    gm_error err = {0};
    gm_time now = gm_time_add(vector_time(), 120);
    assert_int_equal(gm_reqsig_node_check(b, pk, now, GM_REQSIG_WINDOW_S, NULL, NULL, NULL, &err), 0);
    json_decref(b);
}

static void test_admin_vector_bytes_and_signature(void **state)
{
    gm_signer op;
    seeded(&op, 0x20, "operator-local");
    assert_string_equal(op.pk_b64, "Kay64UG8yvCyLhqU000LxzYeUm0L/hLIl5S8kyKWbdc=");
    json_t *body = json_pack("{s:[s],s:I,s:I}", "roles", "role:anchor", "token_expiry_hours", (json_int_t)24,
                             "max_validity_hours", (json_int_t)168);
    char *bytes = NULL;
    size_t len;
    gm_error err = {0};
    assert_int_equal(gm_reqsig_admin_bytes(body, "operator-local", "00000000-0000-4000-8000-0000000000bb",
                                           "2026-06-06T10:00:00+00:00", &bytes, &len, &err),
                     0);
    assert_string_equal(bytes, ADMIN_BYTES);
    gm_admin_auth a;
    assert_int_equal(gm_reqsig_admin_sign(&a, body, &op, "2026-06-06T10:00:00+00:00",
                                          "00000000-0000-4000-8000-0000000000bb", &err),
                     0);
    assert_string_equal(a.signature, ADMIN_SIG);
    assert_string_equal(a.key_id, "operator-local");
    assert_int_equal(gm_reqsig_admin_verify(&a, body, op.pk, &err), 0);
    free(bytes);
    json_decref(body);
    gm_signer_wipe(&op);
}

static void test_admin_get_signs_empty_body(void **state)
{
    char *a = NULL, *b = NULL;
    json_t *empty = json_object();
    assert_int_equal(gm_reqsig_admin_bytes(NULL, "k", "n", "t", &a, NULL, NULL), 0);
    assert_int_equal(gm_reqsig_admin_bytes(empty, "k", "n", "t", &b, NULL, NULL), 0);
    assert_string_equal(a, "{\"body\":{},\"key_id\":\"k\",\"nonce\":\"n\",\"timestamp\":\"t\"}");
    assert_string_equal(a, b);
    free(a);
    free(b);
    json_decref(empty);
}

/* A nonce store for the tests: remembers up to 16 (scope, nonce) pairs. */
typedef struct memo {
    char seen[16][160];
    int n;
} memo;

static int memo_record(void *ctx, const char *scope, const char *nonce, int64_t now, gm_error *err)
{
    memo *m = ctx;
    char key[160];
    snprintf(key, sizeof key, "%s|%s", scope, nonce);
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->seen[i], key))
            return gm_error_set(err, GM_ECONFLICT, "replayed");
    snprintf(m->seen[m->n++], sizeof m->seen[0], "%s", key);
    return 0;
}

static void test_admin_check_refuses_stale_replayed_and_forged(void **state)
{
    gm_signer op, other;
    seeded(&op, 0x20, "operator-local");
    seeded(&other, 0x40, "operator-local");
    json_t *body = json_pack("{s:[s]}", "roles", "role:x");
    gm_time now = gm_time_now();
    char ts[GM_TIME_STRLEN];
    memo m = {.n = 0};
    gm_error err = {0};
    gm_admin_auth a;

    /* fresh: accepted once, then the same nonce is a replay */
    assert_int_equal(gm_reqsig_admin_sign(&a, body, &op, NULL, NULL, &err), 0);
    assert_int_equal(gm_reqsig_admin_check(&a, body, op.pk, now, 300, memo_record, &m, &err), 0);
    assert_int_equal(gm_reqsig_admin_check(&a, body, op.pk, now, 300, memo_record, &m, &err), GM_ECONFLICT);

    /* 301 s old or ahead: stale, and the nonce is not burnt */
    gm_time old = gm_time_add(now, -301);
    gm_time_format(&old, ts);
    assert_int_equal(gm_reqsig_admin_sign(&a, body, &op, ts, NULL, &err), 0);
    assert_int_equal(gm_reqsig_admin_check(&a, body, op.pk, now, 300, memo_record, &m, &err), GM_EEXPIRED);
    assert_int_equal(m.n, 1);
    gm_time ahead = gm_time_add(now, 301);
    gm_time_format(&ahead, ts);
    assert_int_equal(gm_reqsig_admin_sign(&a, body, &op, ts, NULL, &err), 0);
    assert_int_equal(gm_reqsig_admin_check(&a, body, op.pk, now, 300, memo_record, &m, &err), GM_EEXPIRED);
    /* 299 s old is still fine */
    old = gm_time_add(now, -299);
    gm_time_format(&old, ts);
    assert_int_equal(gm_reqsig_admin_sign(&a, body, &op, ts, NULL, &err), 0);
    assert_int_equal(gm_reqsig_admin_check(&a, body, op.pk, now, 300, memo_record, &m, &err), 0);

    /* signed by another key, or body changed after signing: bad signature, nonce not recorded */
    int before = m.n;
    assert_int_equal(gm_reqsig_admin_sign(&a, body, &other, NULL, NULL, &err), 0);
    assert_int_equal(gm_reqsig_admin_check(&a, body, op.pk, now, 300, memo_record, &m, &err), GM_ESIG);
    assert_int_equal(gm_reqsig_admin_sign(&a, body, &op, NULL, NULL, &err), 0);
    json_t *changed = json_pack("{s:[s]}", "roles", "role:admin");
    assert_int_equal(gm_reqsig_admin_check(&a, changed, op.pk, now, 300, memo_record, &m, &err), GM_ESIG);
    /* key id is covered too */
    snprintf(a.key_id, sizeof a.key_id, "someone-else");
    assert_int_equal(gm_reqsig_admin_check(&a, body, op.pk, now, 300, memo_record, &m, &err), GM_ESIG);
    assert_int_equal(m.n, before);

    /* malformed headers */
    assert_int_equal(gm_reqsig_admin_from_headers(&a, "k", NULL, "n", "s", &err), GM_EAUTH);
    assert_int_equal(gm_reqsig_admin_from_headers(&a, "k", "t", "n", "short", &err), GM_EAUTH);
    assert_int_equal(gm_reqsig_admin_sign(&a, body, &op, "yesterday", NULL, &err), 0);
    assert_int_equal(gm_reqsig_admin_check(&a, body, op.pk, now, 300, memo_record, &m, &err), GM_EFORMAT);
    assert_int_equal(gm_reqsig_admin_sign(&a, body, &op, NULL, "not-a-uuid", &err), 0);
    assert_int_equal(gm_reqsig_admin_check(&a, body, op.pk, now, 300, memo_record, &m, &err), GM_EFORMAT);

    json_decref(changed);
    json_decref(body);
    gm_signer_wipe(&op);
    gm_signer_wipe(&other);
}

static void test_node_check_refuses_stale_replayed_and_tampered(void **state)
{
    gm_signer k, other;
    seeded(&k, 0x00, "node");
    seeded(&other, 0x40, "node");
    gm_time now = gm_time_now();
    memo m = {.n = 0};
    gm_error err = {0};
    char ts[GM_TIME_STRLEN];

    json_t *b = json_pack("{s:s,s:s}", "node_public_key", k.pk_b64, "invite_token", "t");
    assert_int_equal(gm_reqsig_node_sign(b, &k, NULL, NULL, &err), 0);
    assert_int_equal(gm_reqsig_node_check(b, k.pk, now, 300, "node:a", memo_record, &m, &err), 0);
    assert_int_equal(gm_reqsig_node_check(b, k.pk, now, 300, "node:a", memo_record, &m, &err), GM_ECONFLICT);
    /* nonces are per key: another scope may use the same one */
    assert_int_equal(gm_reqsig_node_check(b, k.pk, now, 300, "node:b", memo_record, &m, &err), 0);

    /* an added member (e.g. claimed roles) after signing breaks the signature */
    json_object_set_new(b, "roles", json_pack("[s]", "role:admin"));
    assert_int_equal(gm_reqsig_node_check(b, k.pk, now, 300, NULL, NULL, NULL, &err), GM_ESIG);
    json_object_del(b, "roles");
    assert_int_equal(gm_reqsig_node_check(b, other.pk, now, 300, NULL, NULL, NULL, &err), GM_ESIG);

    /* stale, naive (no offset), missing members */
    gm_time old = gm_time_add(now, -400);
    gm_time_format(&old, ts);
    assert_int_equal(gm_reqsig_node_sign(b, &k, ts, NULL, &err), 0);
    assert_int_equal(gm_reqsig_node_check(b, k.pk, now, 300, NULL, NULL, NULL, &err), GM_EEXPIRED);
    gm_time naive = now;
    naive.has_offset = 0;
    gm_time_format(&naive, ts);
    assert_int_equal(gm_reqsig_node_sign(b, &k, ts, NULL, &err), 0);
    assert_int_equal(gm_reqsig_node_check(b, k.pk, now, 300, NULL, NULL, NULL, &err), GM_EFORMAT);
    assert_int_equal(gm_reqsig_node_sign(b, &k, NULL, NULL, &err), 0);
    json_object_del(b, "signature");
    assert_int_equal(gm_reqsig_node_check(b, k.pk, now, 300, NULL, NULL, NULL, &err), GM_EFORMAT);
    json_object_set_new(b, "signature", json_string("!!!!"));
    assert_int_equal(gm_reqsig_node_check(b, k.pk, now, 300, NULL, NULL, NULL, &err), GM_EFORMAT);
    /* floats cannot be signed canonically */
    assert_int_equal(gm_reqsig_node_sign(b, &k, NULL, NULL, &err), 0);
    json_object_set_new(b, "validity_hours", json_real(1.5));
    assert_int_not_equal(gm_reqsig_node_check(b, k.pk, now, 300, NULL, NULL, NULL, &err), 0);

    json_decref(b);
    gm_signer_wipe(&k);
    gm_signer_wipe(&other);
}

int main(void)
{
    if (gm_init(NULL) != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_vector_bytes_and_signature),
        cmocka_unit_test(test_node_vector_verifies_as_received),
        cmocka_unit_test(test_admin_vector_bytes_and_signature),
        cmocka_unit_test(test_admin_get_signs_empty_body),
        cmocka_unit_test(test_admin_check_refuses_stale_replayed_and_forged),
        cmocka_unit_test(test_node_check_refuses_stale_replayed_and_tampered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
