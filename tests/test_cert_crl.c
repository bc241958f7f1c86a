/* Tests for gm/cert.h and gm/crl.h: the spec's certificate and CRL vectors (exact signatures),
 * gm_cert_verify's checks (network, window with skew, CRL, signer, tampering) and CRL parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "gm/canon.h"
#include "gm/cert.h"
#include "gm/crl.h"
#include "gm/genesis.h"
#include "gm/sigdoc.h"
#include "core_internal.h"

#define NODE_PK "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg="
#define CERT_ID "00000000-0000-4000-8000-0000000000cc"
#define CERT_SIG "8AQCB642cvO2NW0hrMjMIj+Lh289sIBq++DOB9W+kZBQcVY3stMypYOKnm67Skp1K50guJoAQdlP8ddti6RlAg=="
#define CERT_BYTES                                                                                                 \
    "{\"cert_id\":\"" CERT_ID "\",\"expires_at\":\"2026-06-13T10:00:00Z\",\"issued_at\":\"2026-06-06T10:00:00Z\"," \
    "\"issued_by\":\"na-local\",\"network_name\":\"TESTNET\",\"node_public_key\":\"" NODE_PK "\","               \
    "\"roles\":[\"role:anchor\"]}"
#define CRL_SIG "6YYcQL3hSOH7sgp8let2vfCPNmJvCfDuaBEhi2VNqWGBB1jo3z1gglj3jcgj29lz0vsZKCjWbQnCP5X/D1kGAw=="
#define CRL_BYTES                                                                                                   \
    "{\"crl_id\":\"00000000-0000-4000-8000-0000000000dd\",\"issued_at\":\"2026-06-06T10:05:00.500000Z\","          \
    "\"issuer\":\"na-local\",\"next_update\":\"2026-06-07T10:05:00.500000Z\",\"revoked_certificates\":"           \
    "[{\"certificate_id\":\"" CERT_ID "\",\"issuer\":\"na-local\",\"reason\":\"key_compromise\","                 \
    "\"revoked_at\":\"2026-06-06T10:05:00.250000Z\"}],\"sequence\":1}"

static gm_signer na, root, other;
static gm_genesis genesis;

static void seed_signer(uint8_t first, const char *id, gm_signer *k)
{
    uint8_t seed[GM_SEED_LEN];
    gm_error err = {0};
    for (int i = 0; i < GM_SEED_LEN; i++)
        seed[i] = (uint8_t)(first + i);
    assert_int_equal(gm_signer_from_seed(k, seed, id, &err), 0);
}

static gm_time at(const char *s)
{
    gm_time t;
    gm_error err = {0};
    if (gm_time_parse(s, &t, &err) != 0)
        fail_msg("%s", err.msg);
    return t;
}

static void make_genesis(const char *network, gm_genesis *g)
{
    gm_error err = {0};
    assert_int_equal(gm_genesis_create(g, network, root.pk, na.pk, at("2026-01-01T00:00:00Z"),
                                       at("2027-01-01T00:00:00Z"), NULL, &err),
                     0);
    assert_int_equal(gm_genesis_sign(g, &root, &err), 0);
}

static int setup(void **state)
{
    (void)state;
    seed_signer(0x40, "na-local", &na);
    seed_signer(0x00, "rs-local", &root);
    seed_signer(0x20, "operator-local", &other);
    make_genesis("TESTNET", &genesis);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gm_genesis_free(&genesis);
    gm_signer_wipe(&na);
    gm_signer_wipe(&root);
    gm_signer_wipe(&other);
    return 0;
}

/* The spec's certificate: its unsigned bytes plus the spec signature. */
static json_t *spec_cert_json(void)
{
    json_t *doc = json_loads(CERT_BYTES, 0, NULL);
    assert_non_null(doc);
    json_object_set_new(doc, "signatures", json_pack("[{s:s,s:s}]", "key_id", "na-local", "sig", CERT_SIG));
    return doc;
}

static json_t *spec_crl_json(void)
{
    json_t *doc = json_loads(CRL_BYTES, 0, NULL);
    assert_non_null(doc);
    json_object_set_new(doc, "signatures", json_pack("[{s:s,s:s}]", "key_id", "na-local", "sig", CRL_SIG));
    return doc;
}

static void cert_from(const json_t *doc, gm_cert *c)
{
    gm_error err = {0};
    char *text = json_dumps(doc, JSON_INDENT(2));
    if (gm_cert_parse(text, strlen(text), c, &err) != 0)
        fail_msg("certificate does not parse: %s", err.msg);
    free(text);
}

static void crl_from(const json_t *doc, gm_crl *c)
{
    gm_error err = {0};
    char *text = json_dumps(doc, JSON_INDENT(2));
    if (gm_crl_parse(text, strlen(text), c, &err) != 0)
        fail_msg("CRL does not parse: %s", err.msg);
    free(text);
}

/* Verify a certificate document (json) at a time; returns the rc. */
static int verify_cert_json(const json_t *doc, const gm_genesis *g, const gm_crl *crl, const char *now, gm_error *err)
{
    gm_cert c;
    cert_from(doc, &c);
    int rc = gm_cert_verify(&c, g, crl, at(now), err);
    gm_cert_free(&c);
    return rc;
}

static void test_spec_certificate_signature_reproduced_and_verifies(void **state)
{
    (void)state;
    gm_error err = {0};
    json_t *doc = json_loads(CERT_BYTES, 0, NULL);
    /* signing the spec document with the NA seed gives the spec signature */
    assert_int_equal(gm_sigdoc_sign(doc, &na, &err), 0);
    json_t *s = json_array_get(json_object_get(doc, "signatures"), 0);
    assert_string_equal(json_string_value(json_object_get(s, "sig")), CERT_SIG);
    assert_string_equal(json_string_value(json_object_get(s, "key_id")), "na-local");
    json_decref(doc);
    /* the parsed spec certificate signs the exact spec bytes and verifies */
    gm_cert c;
    char *bytes;
    size_t len;
    doc = spec_cert_json();
    cert_from(doc, &c);
    assert_int_equal(gm_canon_dump_unsigned(c.doc, &bytes, &len, &err), 0);
    assert_string_equal(bytes, CERT_BYTES);
    free(bytes);
    assert_string_equal(c.cert_id, CERT_ID);
    assert_string_equal(c.node_pk_b64, NODE_PK);
    assert_string_equal(c.network_name, "TESTNET");
    assert_string_equal(c.issued_by, "na-local");
    assert_int_equal(c.n_roles, 1);
    assert_true(gm_cert_has_role(&c, "role:anchor"));
    assert_false(gm_cert_has_role(&c, "role:supervisor"));
    assert_int_equal(gm_cert_verify(&c, &genesis, NULL, at("2026-06-08T00:00:00Z"), &err), 0);
    gm_cert_free(&c);
    json_decref(doc);
}

static void test_spec_crl_signature_reproduced_and_verifies(void **state)
{
    (void)state;
    gm_error err = {0};
    json_t *doc = json_loads(CRL_BYTES, 0, NULL);
    assert_int_equal(gm_sigdoc_sign(doc, &na, &err), 0);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(doc, "signatures"), 0), "sig")),
                        CRL_SIG);
    json_decref(doc);
    gm_crl c;
    char *bytes;
    size_t len;
    doc = spec_crl_json();
    /* spelled differently in the input, rendered canonically in the signed bytes */
    json_object_set_new(doc, "issued_at", json_string("2026-06-06T10:05:00.5+00:00"));
    json_object_set_new(json_array_get(json_object_get(doc, "revoked_certificates"), 0), "revoked_at",
                        json_string("2026-06-06T10:05:00.25Z"));
    crl_from(doc, &c);
    assert_int_equal(gm_canon_dump_unsigned(c.doc, &bytes, &len, &err), 0);
    assert_string_equal(bytes, CRL_BYTES);
    free(bytes);
    assert_int_equal(gm_crl_verify(&c, na.pk, &err), 0);
    assert_int_equal(c.sequence, 1);
    assert_int_equal(c.n_revoked, 1);
    assert_string_equal(c.issuer, "na-local");
    assert_string_equal(c.crl_id, "00000000-0000-4000-8000-0000000000dd");
    assert_int_equal(gm_crl_verify(&c, other.pk, &err), GM_ESIG);
    assert_non_null(strstr(err.msg, "not signed by this network's NA"));
    gm_crl_free(&c);
    json_decref(doc);
}

static void test_cert_for_another_network_refused(void **state)
{
    (void)state;
    gm_genesis g2;
    gm_error err = {0};
    make_genesis("OTHERNET", &g2); /* same NA key, other network */
    json_t *doc = spec_cert_json();
    assert_int_equal(verify_cert_json(doc, &g2, NULL, "2026-06-08T00:00:00Z", &err), GM_EFORMAT);
    assert_non_null(strstr(err.msg, "for network 'TESTNET', not 'OTHERNET'"));
    json_decref(doc);
    gm_genesis_free(&g2);
}

static void test_cert_window_enforced_with_five_minute_skew(void **state)
{
    (void)state;
    gm_error err = {0};
    json_t *doc = spec_cert_json();
    /* expires 2026-06-13T10:00:00Z */
    assert_int_equal(verify_cert_json(doc, &genesis, NULL, "2026-06-13T10:04:59Z", &err), 0);
    assert_int_equal(verify_cert_json(doc, &genesis, NULL, "2026-06-13T10:05:00Z", &err), 0);
    assert_int_equal(verify_cert_json(doc, &genesis, NULL, "2026-06-13T10:05:00.000001Z", &err), GM_EEXPIRED);
    assert_non_null(strstr(err.msg, "expired at 2026-06-13T10:00:00Z"));
    assert_int_equal(verify_cert_json(doc, &genesis, NULL, "2026-07-01T00:00:00Z", &err), GM_EEXPIRED);
    /* issued 2026-06-06T10:00:00Z */
    assert_int_equal(verify_cert_json(doc, &genesis, NULL, "2026-06-06T09:55:00Z", &err), 0);
    assert_int_equal(verify_cert_json(doc, &genesis, NULL, "2026-06-06T09:54:59Z", &err), GM_EEXPIRED);
    assert_non_null(strstr(err.msg, "not valid before 2026-06-06T10:00:00Z"));
    /* the window is compared as instants: an offset "now" works */
    assert_int_equal(verify_cert_json(doc, &genesis, NULL, "2026-06-13T12:04:00+02:00", &err), 0);
    assert_int_equal(verify_cert_json(doc, &genesis, NULL, "2026-06-13T12:06:00+02:00", &err), GM_EEXPIRED);
    json_decref(doc);
}

static void test_cert_revoked_by_crl(void **state)
{
    (void)state;
    gm_error err = {0};
    gm_crl crl, empty;
    json_t *doc = spec_cert_json(), *cd = spec_crl_json();
    crl_from(cd, &crl);
    assert_int_equal(verify_cert_json(doc, &genesis, &crl, "2026-06-08T00:00:00Z", &err), GM_EREVOKED);
    assert_non_null(strstr(err.msg, "revoked (key_compromise, CRL sequence 1)"));
    /* a CRL that does not list it */
    json_t *none = json_array();
    assert_int_equal(gm_crl_issue(&empty, &na, 0, none, at("2026-06-06T00:00:00Z"), 86400, &err), 0);
    json_decref(none);
    assert_int_equal(verify_cert_json(doc, &genesis, &empty, "2026-06-08T00:00:00Z", &err), 0);
    gm_crl_free(&crl);
    gm_crl_free(&empty);
    json_decref(doc);
    json_decref(cd);
}

static void test_cert_signed_by_other_key_refused(void **state)
{
    (void)state;
    gm_error err = {0};
    json_t *doc = json_loads(CERT_BYTES, 0, NULL);
    json_object_set_new(doc, "signatures", json_array());
    assert_int_equal(gm_sigdoc_sign(doc, &other, &err), 0);
    assert_int_equal(verify_cert_json(doc, &genesis, NULL, "2026-06-08T00:00:00Z", &err), GM_ESIG);
    assert_non_null(strstr(err.msg, "not signed by this network's NA"));
    /* signed by the root key is not good enough either */
    json_object_set_new(doc, "signatures", json_array());
    assert_int_equal(gm_sigdoc_sign(doc, &root, &err), 0);
    assert_int_equal(verify_cert_json(doc, &genesis, NULL, "2026-06-08T00:00:00Z", &err), GM_ESIG);
    /* unsigned */
    json_object_set_new(doc, "signatures", json_array());
    assert_int_equal(verify_cert_json(doc, &genesis, NULL, "2026-06-08T00:00:00Z", &err), GM_ESIG);
    json_decref(doc);
}

static void test_cert_tampering_breaks_signature(void **state)
{
    (void)state;
    static const char *const edits[][2] = {
        {"roles", "[\"role:supervisor\"]"},
        {"roles", "[\"role:anchor\",\"role:finance\"]"},
        {"roles", "[]"},
        {"expires_at", "\"2027-06-13T10:00:00Z\""},
        {"issued_at", "\"2026-06-06T10:00:01Z\""},
        {"node_public_key", "\"Kay64UG8yvCyLhqU000LxzYeUm0L/hLIl5S8kyKWbdc=\""},
        {"cert_id", "\"00000000-0000-4000-8000-0000000000cd\""},
        {"issued_by", "\"na-other\""},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        gm_error err = {0};
        json_t *doc = spec_cert_json();
        json_object_set_new(doc, edits[i][0], json_loads(edits[i][1], JSON_DECODE_ANY, NULL));
        int rc = verify_cert_json(doc, &genesis, NULL, "2026-06-08T00:00:00Z", &err);
        if (rc != GM_ESIG)
            fail_msg("changing %s to %s gave rc=%d (%s)", edits[i][0], edits[i][1], rc, err.msg);
        json_decref(doc);
    }
}

static void test_cert_unknown_members_and_equivalent_times_still_verify(void **state)
{
    (void)state;
    gm_error err = {0};
    json_t *doc = spec_cert_json();
    json_object_set_new(doc, "note", json_string("not signed"));
    json_object_set_new(doc, "expires_at", json_string("2026-06-13T10:00:00.000000+00:00"));
    assert_int_equal(verify_cert_json(doc, &genesis, NULL, "2026-06-08T00:00:00Z", &err), 0);
    json_decref(doc);
}

static void test_issued_cert_round_trips_and_keeps_role_order(void **state)
{
    (void)state;
    gm_error err = {0};
    gm_cert c, back;
    json_t *roles = json_pack("[sss]", "role:service:llm", "role:client", "role:anchor");
    assert_int_equal(gm_cert_issue(&c, &na, "TESTNET", other.pk, roles, at("2026-06-06T10:00:00Z"),
                                   at("2026-06-13T10:00:00Z"), &err),
                     0);
    json_decref(roles);
    assert_string_equal(c.issued_by, "na-local");
    assert_int_equal(c.n_roles, 3);
    assert_string_equal(gm_cert_role(&c, 0), "role:service:llm");
    assert_string_equal(gm_cert_role(&c, 2), "role:anchor");
    assert_null(gm_cert_role(&c, 3));
    char *text = gm_cert_dump(&c, 0);
    assert_int_equal(gm_cert_parse(text, strlen(text), &back, &err), 0);
    assert_int_equal(gm_cert_verify(&back, &genesis, NULL, at("2026-06-07T00:00:00Z"), &err), 0);
    assert_string_equal(back.cert_id, c.cert_id);
    assert_string_equal(gm_cert_role(&back, 1), "role:client");
    free(text);
    gm_cert_free(&back);
    /* certificate ids are UUIDs of version 7, in the order issued (the NA's indexes by
     * cert_id then grow at their end) */
    assert_int_equal(c.cert_id[14], '7');
    gm_cert next;
    json_t *one = json_pack("[s]", "role:client");
    assert_int_equal(gm_cert_issue(&next, &na, "TESTNET", other.pk, one, at("2026-06-06T10:00:00Z"),
                                   at("2026-06-13T10:00:00Z"), &err),
                     0);
    json_decref(one);
    assert_true(strcmp(c.cert_id, next.cert_id) < 0);
    gm_cert_free(&next);
    gm_cert_free(&c);
    /* a certificate without roles: the member may be left out (default []) */
    json_t *none = json_array();
    assert_int_equal(gm_cert_issue(&c, &na, "TESTNET", other.pk, none, at("2026-06-06T10:00:00Z"),
                                   at("2026-06-13T10:00:00Z"), &err),
                     0);
    json_decref(none);
    json_t *doc = json_deep_copy(c.doc);
    json_object_del(doc, "roles");
    assert_int_equal(verify_cert_json(doc, &genesis, NULL, "2026-06-07T00:00:00Z", &err), 0);
    json_decref(doc);
    gm_cert_free(&c);
}

static void expect_cert_error(json_t *doc, const char *needle)
{
    gm_cert c;
    gm_error err = {0};
    char *text = json_dumps(doc, JSON_ENCODE_ANY);
    int rc = gm_cert_parse(text, strlen(text), &c, &err);
    free(text);
    if (rc != GM_EFORMAT || !strstr(err.msg, needle))
        fail_msg("expected a format error mentioning '%s', got rc=%d '%s'", needle, rc, err.msg);
    assert_null(c.doc);
    json_decref(doc);
}

static void test_malformed_certificates_refused(void **state)
{
    (void)state;
    json_t *d;
    d = spec_cert_json();
    json_object_set_new(d, "cert_id", json_string("not-a-uuid"));
    expect_cert_error(d, "cert_id");
    d = spec_cert_json();
    json_object_set_new(d, "node_public_key", json_string("A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg="));
    expect_cert_error(d, "node_public_key");
    d = spec_cert_json();
    json_object_set_new(d, "roles", json_pack("[si]", "role:a", 1));
    expect_cert_error(d, "roles");
    d = spec_cert_json();
    json_object_set_new(d, "roles", json_string("role:anchor"));
    expect_cert_error(d, "roles");
    d = spec_cert_json();
    json_t *many = json_array();
    for (int i = 0; i < 65; i++)
        json_array_append_new(many, json_string("role:x"));
    json_object_set_new(d, "roles", many);
    expect_cert_error(d, "roles");
    d = spec_cert_json();
    json_object_del(d, "issued_at");
    expect_cert_error(d, "issued_at");
    d = spec_cert_json();
    json_object_set_new(d, "expires_at", json_string("2026-06-13"));
    expect_cert_error(d, "expires_at");
    d = spec_cert_json();
    json_object_set_new(d, "expires_at", json_integer(1781344800));
    expect_cert_error(d, "expires_at");
    d = spec_cert_json();
    json_object_del(d, "signatures");
    expect_cert_error(d, "signatures");
    d = spec_cert_json();
    json_object_set_new(d, "network_name", json_null());
    expect_cert_error(d, "network_name");
    d = spec_cert_json();
    json_object_del(d, "issued_by");
    expect_cert_error(d, "issued_by");
    expect_cert_error(json_pack("[]"), "JSON object");
    gm_cert c;
    gm_error err = {0};
    assert_int_equal(gm_cert_parse("{\"cert_id\":", 11, &c, &err), GM_EFORMAT);
    assert_non_null(strstr(err.msg, "not valid JSON"));
    assert_int_equal(gm_cert_load("/nonexistent/cert.json", &c, &err), GM_ENOTFOUND);
}

static void test_crl_contains_reports_reason(void **state)
{
    (void)state;
    gm_crl c;
    const char *reason = NULL;
    json_t *doc = spec_crl_json();
    crl_from(doc, &c);
    assert_true(gm_crl_contains(&c, CERT_ID, &reason));
    assert_string_equal(reason, "key_compromise");
    assert_true(gm_crl_contains(&c, CERT_ID, NULL));
    assert_false(gm_crl_contains(&c, "00000000-0000-4000-8000-0000000000ce", &reason));
    assert_false(gm_crl_contains(&c, "", NULL));
    gm_crl_free(&c);
    json_decref(doc);
}

static void test_crl_removing_a_revocation_breaks_signature(void **state)
{
    (void)state;
    gm_crl c;
    gm_error err = {0};
    json_t *doc = spec_crl_json();
    json_array_clear(json_object_get(doc, "revoked_certificates"));
    crl_from(doc, &c);
    assert_int_equal(gm_crl_verify(&c, na.pk, &err), GM_ESIG);
    gm_crl_free(&c);
    json_decref(doc);
    doc = spec_crl_json();
    json_object_set_new(doc, "sequence", json_integer(2));
    crl_from(doc, &c);
    assert_int_equal(gm_crl_verify(&c, na.pk, &err), GM_ESIG);
    gm_crl_free(&c);
    json_decref(doc);
}

static void expect_crl_error(json_t *doc, const char *needle)
{
    gm_crl c;
    gm_error err = {0};
    char *text = json_dumps(doc, JSON_ENCODE_ANY);
    int rc = gm_crl_parse(text, strlen(text), &c, &err);
    free(text);
    if (rc != GM_EFORMAT || !strstr(err.msg, needle))
        fail_msg("expected a format error mentioning '%s', got rc=%d '%s'", needle, rc, err.msg);
    assert_null(c.doc);
    json_decref(doc);
}

static void test_crl_sequence_parsing(void **state)
{
    (void)state;
    gm_crl c;
    json_t *d = spec_crl_json();
    json_object_set_new(d, "sequence", json_integer(0));
    crl_from(d, &c);
    assert_int_equal(c.sequence, 0);
    gm_crl_free(&c);
    json_object_set_new(d, "sequence", json_integer(INT64_MAX));
    crl_from(d, &c);
    assert_int_equal(c.sequence, (uint64_t)INT64_MAX);
    gm_crl_free(&c);
    json_decref(d);
    d = spec_crl_json();
    json_object_set_new(d, "sequence", json_integer(-1));
    expect_crl_error(d, "sequence");
    d = spec_crl_json();
    json_object_set_new(d, "sequence", json_string("1"));
    expect_crl_error(d, "sequence");
    d = spec_crl_json();
    json_object_set_new(d, "sequence", json_real(1.0));
    expect_crl_error(d, "sequence");
    d = spec_crl_json();
    json_object_del(d, "sequence");
    expect_crl_error(d, "sequence");
    gm_error err = {0};
    const char *huge = "{\"crl_id\":\"x\",\"issuer\":\"na\",\"sequence\":99999999999999999999}";
    assert_int_equal(gm_crl_parse(huge, strlen(huge), &c, &err), GM_EFORMAT);
}

static void test_crl_unknown_reason_refused(void **state)
{
    (void)state;
    assert_true(gm_crl_reason_valid("key_compromise"));
    assert_true(gm_crl_reason_valid("cessation_of_operation"));
    assert_true(gm_crl_reason_valid("superseded"));
    assert_true(gm_crl_reason_valid("unspecified"));
    assert_false(gm_crl_reason_valid("Key_Compromise"));
    assert_false(gm_crl_reason_valid(""));
    assert_false(gm_crl_reason_valid(NULL));
    json_t *d = spec_crl_json();
    json_object_set_new(json_array_get(json_object_get(d, "revoked_certificates"), 0), "reason",
                        json_string("because"));
    expect_crl_error(d, "reason");
    d = spec_crl_json();
    json_object_set_new(json_array_get(json_object_get(d, "revoked_certificates"), 0), "reason", json_integer(1));
    expect_crl_error(d, "reason");
    /* the NA never signs one either */
    gm_crl c;
    gm_error err = {0};
    json_t *bad = json_pack("[{s:s,s:s,s:s,s:s}]", "certificate_id", CERT_ID, "revoked_at", "2026-06-06T10:00:00Z",
                            "reason", "because", "issuer", "na-local");
    assert_int_equal(gm_crl_issue(&c, &na, 1, bad, at("2026-06-06T10:00:00Z"), 86400, &err), GM_EFORMAT);
    assert_non_null(strstr(err.msg, "because"));
    assert_null(c.doc);
    json_decref(bad);
}

static void test_malformed_crl_entries_refused(void **state)
{
    (void)state;
    json_t *d = spec_crl_json();
    json_object_del(json_array_get(json_object_get(d, "revoked_certificates"), 0), "revoked_at");
    expect_crl_error(d, "revoked_at");
    d = spec_crl_json();
    json_object_set_new(json_array_get(json_object_get(d, "revoked_certificates"), 0), "revoked_at",
                        json_string("yesterday"));
    expect_crl_error(d, "revoked_at");
    d = spec_crl_json();
    json_array_append_new(json_object_get(d, "revoked_certificates"), json_string(CERT_ID));
    expect_crl_error(d, "CRL entry 1");
    d = spec_crl_json();
    json_object_del(json_array_get(json_object_get(d, "revoked_certificates"), 0), "certificate_id");
    expect_crl_error(d, "certificate_id");
    d = spec_crl_json();
    json_object_set_new(d, "revoked_certificates", json_object());
    expect_crl_error(d, "revoked_certificates");
    d = spec_crl_json();
    json_object_del(d, "next_update");
    expect_crl_error(d, "next_update");
    d = spec_crl_json();
    json_object_del(d, "issuer");
    expect_crl_error(d, "issuer");
}

static void test_issued_crl_round_trips(void **state)
{
    (void)state;
    gm_crl c, back;
    gm_error err = {0};
    json_t *list = json_pack("[{s:s,s:s,s:s,s:s},{s:s,s:s,s:s,s:s}]", "certificate_id", CERT_ID, "revoked_at",
                             "2026-06-06T10:00:00+00:00", "reason", "superseded", "issuer", "na-local",
                             "certificate_id", "00000000-0000-4000-8000-0000000000ee", "revoked_at",
                             "2026-06-06T11:00:00.5Z", "reason", "unspecified", "issuer", "na-local");
    assert_int_equal(gm_crl_issue(&c, &na, 2, list, at("2026-06-06T12:00:00Z"), 3600, &err), 0);
    json_decref(list);
    assert_int_equal(c.sequence, 2);
    assert_int_equal(c.n_revoked, 2);
    char t[GM_TIME_STRLEN];
    gm_time_format(&c.next_update, t);
    assert_string_equal(t, "2026-06-06T13:00:00Z");
    char *text = gm_crl_dump(&c, 0);
    assert_int_equal(gm_crl_parse(text, strlen(text), &back, &err), 0);
    assert_int_equal(gm_crl_verify(&back, na.pk, &err), 0);
    const char *reason;
    assert_true(gm_crl_contains(&back, "00000000-0000-4000-8000-0000000000ee", &reason));
    assert_string_equal(reason, "unspecified");
    free(text);
    text = gm_crl_dump(&c, 1);
    gm_crl_free(&back);
    assert_int_equal(gm_crl_parse(text, strlen(text), &back, &err), 0);
    assert_int_equal(gm_crl_verify(&back, na.pk, &err), 0);
    free(text);
    gm_crl_free(&back);
    gm_crl_free(&c);
    /* revoked_certificates may be left out of an empty CRL */
    json_t *none = json_array();
    assert_int_equal(gm_crl_issue(&c, &na, 0, none, at("2026-06-06T12:00:00Z"), 3600, &err), 0);
    json_decref(none);
    json_t *doc = json_deep_copy(c.doc);
    json_object_del(doc, "revoked_certificates");
    crl_from(doc, &back);
    assert_int_equal(back.n_revoked, 0);
    assert_int_equal(gm_crl_verify(&back, na.pk, &err), 0);
    gm_crl_free(&back);
    gm_crl_free(&c);
    json_decref(doc);
}

static void test_from_json_copies_the_document(void **state)
{
    (void)state;
    gm_error err = {0};
    gm_cert c;
    gm_crl crl;
    /* later changes to the caller's JSON must not reach the parsed certificate or CRL */
    json_t *doc = spec_cert_json();
    assert_int_equal(gm_cert_from_json(doc, &c, &err), 0);
    json_array_clear(json_object_get(doc, "signatures"));
    assert_int_equal(gm_cert_verify(&c, &genesis, NULL, at("2026-06-08T00:00:00Z"), &err), 0);
    gm_cert_free(&c);
    json_decref(doc);
    doc = spec_crl_json();
    assert_int_equal(gm_crl_from_json(doc, &crl, &err), 0);
    json_array_clear(json_object_get(doc, "signatures"));
    assert_int_equal(gm_crl_verify(&crl, na.pk, &err), 0);
    gm_crl_free(&crl);
    json_decref(doc);
}

/* A shared CRL outlives the one it was shared from, and reads the same (its issuer points into
 * the shared document): the agents' discovery cache hands each call such a share. */
static void test_crl_share_outlives_its_source(void **state)
{
    (void)state;
    gm_error err = {0};
    gm_crl c, shared;
    json_t *list = json_pack("[{s:s,s:s,s:s,s:s}]", "certificate_id", CERT_ID, "revoked_at",
                             "2026-06-06T10:00:00Z", "reason", "key_compromise", "issuer", "na-local");
    assert_int_equal(gm_crl_issue(&c, &na, 7, list, at("2026-06-06T12:00:00Z"), 3600, &err), 0);
    json_decref(list);
    gm_crl_share(&c, &shared);
    gm_crl_free(&c);
    assert_null(c.doc);
    assert_int_equal(shared.sequence, 7);
    assert_int_equal(shared.n_revoked, 1);
    assert_string_equal(shared.issuer, na.key_id);
    const char *reason;
    assert_true(gm_crl_contains(&shared, CERT_ID, &reason));
    assert_string_equal(reason, "key_compromise");
    assert_int_equal(gm_crl_verify(&shared, na.pk, &err), 0);
    gm_crl_free(&shared);
}

static void test_crl_newer_only_with_a_strictly_higher_sequence(void **state)
{
    (void)state;
    assert_true(gm_crl_is_newer(0, 0, 0));  /* none held: any CRL */
    assert_true(gm_crl_is_newer(5, 0, 9));
    assert_true(gm_crl_is_newer(10, 1, 9));
    assert_false(gm_crl_is_newer(9, 1, 9)); /* the same sequence is not newer */
    assert_false(gm_crl_is_newer(8, 1, 9));
    assert_true(gm_crl_is_newer(UINT64_MAX, 1, UINT64_MAX - 1));
}

/* Every kind of signed document goes through gm_sigdoc_parse/load: the same size cap,
 * strict JSON, a message naming the kind (and the file), and nothing left to free. */
static void test_one_loader_for_every_signed_document(void **state)
{
    (void)state;
    gm_error err = {0};
    char dir[] = "/tmp/gm-test-sigdoc.XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/crl.json", dir);
    gm_crl c;
    json_t *none = json_array();
    assert_int_equal(gm_crl_issue(&c, &na, 7, none, at("2026-06-06T12:00:00Z"), 3600, &err), 0);
    json_decref(none);
    char *text = gm_crl_dump(&c, 0);
    gm_crl_free(&c);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    free(text);
    assert_int_equal(gm_crl_load(path, &c, &err), 0);
    assert_int_equal(c.sequence, 7);
    assert_int_equal(gm_crl_verify(&c, na.pk, &err), 0);
    gm_crl_free(&c);
    /* duplicate members are refused, with the file named */
    f = fopen(path, "w");
    fputs("{\"sequence\":1,\"sequence\":2}", f);
    fclose(f);
    assert_int_equal(gm_crl_load(path, &c, &err), GM_EFORMAT);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "CRL is not valid JSON"));
    assert_null(c.doc);
    /* the size cap of each kind */
    size_t big = GM_CRL_MAX_BYTES + 1;
    char *huge = malloc(big + 1);
    memset(huge, ' ', big);
    huge[big] = '\0';
    assert_int_equal(gm_crl_parse(huge, big, &c, &err), GM_ETOOBIG);
    assert_non_null(strstr(err.msg, "CRL larger than 8388608 bytes"));
    gm_cert cert;
    assert_int_equal(gm_cert_parse(huge, 64 * 1024 + 1, &cert, &err), GM_ETOOBIG);
    assert_non_null(strstr(err.msg, "certificate larger than"));
    gm_genesis g;
    assert_int_equal(gm_genesis_parse(huge, 256 * 1024 + 1, &g, &err), GM_ETOOBIG);
    assert_non_null(strstr(err.msg, "genesis block larger than"));
    assert_null(g.doc);
    free(huge);
    /* a schema error after parsing leaves nothing behind either */
    assert_int_equal(gm_cert_parse("{\"cert_id\":\"x\"}", 15, &cert, &err), GM_EFORMAT);
    assert_null(cert.doc);
    remove(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_certificate_signature_reproduced_and_verifies),
        cmocka_unit_test(test_spec_crl_signature_reproduced_and_verifies),
        cmocka_unit_test(test_cert_for_another_network_refused),
        cmocka_unit_test(test_cert_window_enforced_with_five_minute_skew),
        cmocka_unit_test(test_cert_revoked_by_crl),
        cmocka_unit_test(test_cert_signed_by_other_key_refused),
        cmocka_unit_test(test_cert_tampering_breaks_signature),
        cmocka_unit_test(test_cert_unknown_members_and_equivalent_times_still_verify),
        cmocka_unit_test(test_issued_cert_round_trips_and_keeps_role_order),
        cmocka_unit_test(test_malformed_certificates_refused),
        cmocka_unit_test(test_crl_contains_reports_reason),
        cmocka_unit_test(test_crl_removing_a_revocation_breaks_signature),
        cmocka_unit_test(test_crl_sequence_parsing),
        cmocka_unit_test(test_crl_unknown_reason_refused),
        cmocka_unit_test(test_malformed_crl_entries_refused),
        cmocka_unit_test(test_issued_crl_round_trips),
        cmocka_unit_test(test_from_json_copies_the_document),
        cmocka_unit_test(test_crl_share_outlives_its_source),
        cmocka_unit_test(test_crl_newer_only_with_a_strictly_higher_sequence),
        cmocka_unit_test(test_one_loader_for_every_signed_document),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
