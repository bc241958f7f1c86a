/* Tests for gm/genesis.h: the Python reference blocks verify; any change to a signed member
 * breaks them; unknown members are ignored; clear errors on malformed input; create/sign/verify;
 * the NA validity window. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "gm/canon.h"
#include "gm/genesis.h"
#include "gm/sigdoc.h"
#include "gm/util.h"
#include "core_internal.h"

static const char *const vectors[] = {
    "genesis-001.signed.json",
    "genesis-naive-times.signed.json",
    "genesis-ons-a.signed.json",
};
#define N_VECTORS (sizeof vectors / sizeof vectors[0])

static void vector_path(const char *name, char *out, size_t cap)
{
    const char *dir = getenv("GM_VECTORS");
    snprintf(out, cap, "%s/python-reference/%s", dir ? dir : "tests/vectors", name);
}

/* The vector file as a jansson value (to be tampered with). */
static json_t *load_vector_json(const char *name)
{
    char path[1024];
    json_error_t je;
    vector_path(name, path, sizeof path);
    json_t *v = json_load_file(path, 0, &je);
    if (!v)
        fail_msg("cannot load %s (is GM_VECTORS set?): %s", path, je.text);
    return v;
}

/* Serialize v and parse it as a genesis block; returns the parse result. */
static int parse_json(const json_t *v, gm_genesis *g, gm_error *err)
{
    char *text = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    assert_non_null(text);
    int rc = gm_genesis_parse(text, strlen(text), g, err);
    free(text);
    return rc;
}

/* Parse v (must succeed) and return the verify result. */
static int verify_json(const json_t *v, gm_error *err)
{
    gm_genesis g;
    int rc = parse_json(v, &g, err);
    if (rc != 0)
        fail_msg("tampered block no longer parses: %s", err->msg);
    rc = gm_genesis_verify(&g, err);
    gm_genesis_free(&g);
    return rc;
}

static void seed_signer(uint8_t first, const char *id, gm_signer *k)
{
    uint8_t seed[GM_SEED_LEN];
    gm_error err = {0};
    for (int i = 0; i < GM_SEED_LEN; i++)
        seed[i] = (uint8_t)(first + i);
    assert_int_equal(gm_signer_from_seed(k, seed, id, &err), 0);
}

static void test_python_reference_blocks_verify(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_VECTORS; i++) {
        char path[1024];
        gm_genesis g;
        gm_error err = {0};
        vector_path(vectors[i], path, sizeof path);
        if (gm_genesis_load(path, &g, &err) != 0)
            fail_msg("%s: %s", vectors[i], err.msg);
        if (gm_genesis_verify(&g, &err) != 0)
            fail_msg("%s does not verify: %s", vectors[i], err.msg);
        gm_genesis_free(&g);
    }
}

static void test_vector_members_parsed(void **state)
{
    (void)state;
    char path[1024];
    gm_genesis g;
    gm_error err = {0};
    vector_path("genesis-001.signed.json", path, sizeof path);
    assert_int_equal(gm_genesis_load(path, &g, &err), 0);
    assert_string_equal(g.network_name, "001-NA");
    char b64[GM_PK_B64_LEN + 1], t[GM_TIME_STRLEN];
    gm_pk_encode(g.root_pk, b64);
    assert_string_equal(b64, "RHWZ762yWDnEXZUvQnGZxV4dV+Q4edcti706j44+4oU=");
    gm_pk_encode(g.na_pk, b64);
    assert_string_equal(b64, "pbOLSgoxEWU69cVbn3P9We+WqRr1Zz3zi0vtpoCPPFY=");
    gm_time_format(&g.na_valid_from, t);
    assert_string_equal(t, "2026-06-06T10:22:05.230676Z");
    gm_time_format(&g.na_valid_to, t);
    assert_string_equal(t, "2026-09-04T10:22:05.230676Z");
    gm_genesis_free(&g);
}

typedef void (*tamper_fn)(json_t *doc);

static void t_network_name(json_t *d) { json_object_set_new(d, "network_name", json_string("001-NA ")); }
static void t_network_version(json_t *d) { json_object_set_new(d, "network_version", json_string("v0.2")); }
static void t_root_key(json_t *d)
{
    /* another valid key: the document now claims a root that did not sign it */
    json_object_set_new(d, "root_public_key", json_string("A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg="));
}
static void t_na_key(json_t *d)
{
    json_object_set_new(json_object_get(d, "network_authority"), "public_key",
                        json_string("JUO5L/EJVRFHatyDadtt3JM2ZaEZeN2hQE7hBmypVZ0="));
}
static void t_valid_from(json_t *d)
{
    json_object_set_new(json_object_get(d, "network_authority"), "valid_from",
                        json_string("2020-01-01T00:00:00Z"));
}
static void t_valid_to(json_t *d)
{
    json_object_set_new(json_object_get(d, "network_authority"), "valid_to", json_string("2099-01-01T00:00:00Z"));
}
static void t_add_transport(json_t *d) { json_array_append_new(json_object_get(d, "allowed_transports"), json_string("tcp")); }
static void t_swap_transports(json_t *d)
{
    json_object_set_new(d, "allowed_transports", json_pack("[ss]", "wireguard", "quic"));
}
static void t_suites(json_t *d) { json_object_set_new(d, "allowed_crypto_suites", json_pack("[s]", "ed25519")); }
static void t_policy_hash(json_t *d)
{
    json_object_set_new(json_object_get(d, "policy_manifest"), "hash", json_string("sha256:other"));
}
static void t_policy_url(json_t *d)
{
    json_object_set_new(json_object_get(d, "policy_manifest"), "url", json_string("https://example.org/p"));
}
static void t_add_anchor(json_t *d)
{
    json_array_append_new(json_object_get(d, "bootstrap_anchors"),
                          json_pack("{s:s,s:s}", "id", "anchor-1", "endpoint", "203.0.113.7:7000"));
}

static const struct {
    const char *what;
    tamper_fn fn;
} tampers[] = {
    {"network_name", t_network_name},
    {"network_version", t_network_version},
    {"root_public_key", t_root_key},
    {"network_authority.public_key", t_na_key},
    {"network_authority.valid_from", t_valid_from},
    {"network_authority.valid_to", t_valid_to},
    {"allowed_transports (added)", t_add_transport},
    {"allowed_transports (reordered)", t_swap_transports},
    {"allowed_crypto_suites", t_suites},
    {"policy_manifest.hash", t_policy_hash},
    {"policy_manifest.url", t_policy_url},
    {"bootstrap_anchors (added)", t_add_anchor},
};

static void test_changing_any_signed_member_breaks_every_vector(void **state)
{
    (void)state;
    for (size_t v = 0; v < N_VECTORS; v++) {
        for (size_t i = 0; i < sizeof tampers / sizeof tampers[0]; i++) {
            json_t *doc = load_vector_json(vectors[v]);
            gm_error err = {0};
            tampers[i].fn(doc);
            int rc = verify_json(doc, &err);
            if (rc != GM_ESIG)
                fail_msg("%s: changing %s left rc=%d (%s)", vectors[v], tampers[i].what, rc, err.msg);
            assert_non_null(strstr(err.msg, "genesis block"));
            json_decref(doc);
        }
    }
}

static void test_unknown_members_are_ignored(void **state)
{
    (void)state;
    for (size_t v = 0; v < N_VECTORS; v++) {
        json_t *doc = load_vector_json(vectors[v]);
        gm_error err = {0};
        json_object_set_new(doc, "comment", json_string("added later, not signed"));
        json_object_set_new(doc, "x_future", json_pack("{s:[i,f]}", "n", 1, 2.5)); /* even a float */
        json_object_set_new(json_object_get(doc, "network_authority"), "note", json_string("ignored"));
        json_object_set_new(json_object_get(doc, "policy_manifest"), "extra", json_true());
        if (verify_json(doc, &err) != 0)
            fail_msg("%s with unknown members: %s", vectors[v], err.msg);
        /* and they are dropped from the normalized document */
        gm_genesis g;
        assert_int_equal(parse_json(doc, &g, &err), 0);
        assert_null(json_object_get(g.doc, "comment"));
        assert_null(json_object_get(json_object_get(g.doc, "network_authority"), "note"));
        gm_genesis_free(&g);
        json_decref(doc);
    }
}

static void test_absent_optional_members_take_their_defaults(void **state)
{
    (void)state;
    /* the vectors carry the default values, so leaving them out signs the same bytes */
    json_t *doc = load_vector_json("genesis-001.signed.json");
    gm_error err = {0};
    json_object_del(doc, "allowed_crypto_suites");
    json_object_del(doc, "allowed_transports");
    json_object_del(doc, "bootstrap_anchors");
    json_object_del(json_object_get(doc, "policy_manifest"), "url");
    assert_int_equal(verify_json(doc, &err), 0);
    json_decref(doc);
}

static void test_equivalent_timestamp_spellings_still_verify(void **state)
{
    (void)state;
    json_t *doc = load_vector_json("genesis-ons-a.signed.json");
    gm_error err = {0};
    json_t *na = json_object_get(doc, "network_authority");
    /* same instant, same rendering: "+00:00" signs as "Z" */
    json_object_set_new(na, "valid_from", json_string("2026-06-07T06:42:56.612940+00:00"));
    assert_int_equal(verify_json(doc, &err), 0);
    /* same instant, other offset: a different signed rendering */
    json_object_set_new(na, "valid_from", json_string("2026-06-07T08:42:56.612940+02:00"));
    assert_int_equal(verify_json(doc, &err), GM_ESIG);
    json_decref(doc);
}

static void test_naive_timestamps_stay_without_offset_in_signed_bytes(void **state)
{
    (void)state;
    json_t *doc = load_vector_json("genesis-naive-times.signed.json");
    gm_genesis g;
    gm_error err = {0};
    char *bytes;
    size_t len;
    assert_int_equal(parse_json(doc, &g, &err), 0);
    assert_int_equal(g.na_valid_from.has_offset, 0);
    assert_int_equal(gm_canon_dump_unsigned(g.doc, &bytes, &len, &err), 0);
    assert_non_null(strstr(bytes, "\"valid_from\":\"2026-01-21T16:44:37.925424\""));
    assert_non_null(strstr(bytes, "\"valid_to\":\"2026-04-21T16:44:37.925424\""));
    free(bytes);
    gm_genesis_free(&g);
    /* giving it an offset changes the signed bytes */
    json_object_set_new(json_object_get(doc, "network_authority"), "valid_from",
                        json_string("2026-01-21T16:44:37.925424Z"));
    assert_int_equal(verify_json(doc, &err), GM_ESIG);
    json_decref(doc);
}

static void test_signature_by_another_key_refused(void **state)
{
    (void)state;
    json_t *doc = load_vector_json("genesis-001.signed.json");
    gm_genesis g;
    gm_signer other;
    gm_error err = {0};
    seed_signer(0x20, "rs-local", &other);
    assert_int_equal(parse_json(doc, &g, &err), 0);
    /* replace the root signature by one from another key over the same bytes */
    json_array_clear(json_object_get(g.doc, "signatures"));
    assert_int_equal(gm_sigdoc_sign(g.doc, &other, &err), 0);
    assert_int_equal(gm_genesis_verify(&g, &err), GM_ESIG);
    assert_non_null(strstr(err.msg, "does not verify"));
    /* gm_genesis_sign refuses a key that is not the root */
    assert_int_equal(gm_genesis_sign(&g, &other, &err), GM_EDENIED);
    assert_non_null(strstr(err.msg, "not the genesis root_public_key"));
    gm_genesis_free(&g);
    json_decref(doc);
    gm_signer_wipe(&other);
}

static void test_every_signature_must_verify(void **state)
{
    (void)state;
    json_t *doc = load_vector_json("genesis-001.signed.json");
    json_t *sigs = json_object_get(doc, "signatures");
    gm_error err = {0};
    /* a second, bad signature next to the good one */
    json_array_append_new(sigs, json_pack("{s:s,s:s}", "key_id", "rs-extra", "sig",
                                          "8AQCB642cvO2NW0hrMjMIj+Lh289sIBq++DOB9W+kZBQcVY3stMypYOKnm67Skp1K50guJoAQdlP8ddti6RlAg=="));
    assert_int_equal(verify_json(doc, &err), GM_ESIG);
    assert_non_null(strstr(err.msg, "rs-extra"));
    json_decref(doc);
}

static void test_flipped_signature_byte_refused(void **state)
{
    (void)state;
    json_t *doc = load_vector_json("genesis-ons-a.signed.json");
    json_t *s = json_array_get(json_object_get(doc, "signatures"), 0);
    char sig[GM_SIG_B64_LEN + 1];
    snprintf(sig, sizeof sig, "%s", json_string_value(json_object_get(s, "sig")));
    sig[20] = sig[20] == 'A' ? 'B' : 'A';
    json_object_set_new(s, "sig", json_string(sig));
    gm_error err = {0};
    assert_int_equal(verify_json(doc, &err), GM_ESIG);
    json_decref(doc);
}

static void test_missing_or_empty_signatures_refused(void **state)
{
    (void)state;
    json_t *doc = load_vector_json("genesis-001.signed.json");
    gm_error err = {0};
    json_object_set_new(doc, "signatures", json_array());
    assert_int_equal(verify_json(doc, &err), GM_ESIG);
    assert_non_null(strstr(err.msg, "not signed"));
    json_object_del(doc, "signatures");
    assert_int_equal(verify_json(doc, &err), GM_ESIG);
    assert_non_null(strstr(err.msg, "not signed"));
    json_decref(doc);
}

static void expect_parse_error(json_t *doc, const char *needle)
{
    gm_genesis g;
    gm_error err = {0};
    int rc = parse_json(doc, &g, &err);
    if (rc != GM_EFORMAT)
        fail_msg("expected a format error mentioning '%s', got rc=%d '%s'", needle, rc, err.msg);
    if (!strstr(err.msg, needle))
        fail_msg("error '%s' does not mention '%s'", err.msg, needle);
    assert_null(g.doc);
    json_decref(doc);
}

static void test_wrong_types_give_clear_errors(void **state)
{
    (void)state;
    json_t *d;
    d = load_vector_json(vectors[0]);
    json_object_set_new(d, "network_name", json_integer(7));
    expect_parse_error(d, "network_name");
    d = load_vector_json(vectors[0]);
    json_object_del(d, "network_name");
    expect_parse_error(d, "missing \"network_name\"");
    d = load_vector_json(vectors[0]);
    json_object_set_new(d, "network_name", json_string(""));
    expect_parse_error(d, "network_name");
    d = load_vector_json(vectors[0]);
    json_object_set_new(d, "network_version", json_real(0.1));
    expect_parse_error(d, "network_version");
    d = load_vector_json(vectors[0]);
    json_object_set_new(d, "root_public_key", json_string("not base64"));
    expect_parse_error(d, "root_public_key");
    d = load_vector_json(vectors[0]);
    json_object_set_new(d, "network_authority", json_string("pbOLSgoxEWU69cVbn3P9We+WqRr1Zz3zi0vtpoCPPFY="));
    expect_parse_error(d, "network_authority");
    d = load_vector_json(vectors[0]);
    json_object_del(json_object_get(d, "network_authority"), "valid_to");
    expect_parse_error(d, "valid_to");
    d = load_vector_json(vectors[0]);
    json_object_set_new(json_object_get(d, "network_authority"), "valid_from", json_string("2026-02-30T00:00:00Z"));
    expect_parse_error(d, "valid_from");
    d = load_vector_json(vectors[0]);
    json_object_set_new(json_object_get(d, "network_authority"), "public_key", json_string("AAAA"));
    expect_parse_error(d, "public_key");
    d = load_vector_json(vectors[0]);
    json_array_append_new(json_object_get(d, "allowed_transports"), json_integer(1));
    expect_parse_error(d, "allowed_transports");
    d = load_vector_json(vectors[0]);
    json_object_set_new(d, "allowed_crypto_suites", json_string("ed25519"));
    expect_parse_error(d, "allowed_crypto_suites");
    d = load_vector_json(vectors[0]);
    json_object_del(d, "policy_manifest");
    expect_parse_error(d, "policy_manifest");
    d = load_vector_json(vectors[0]);
    json_object_set_new(json_object_get(d, "policy_manifest"), "url", json_integer(3));
    expect_parse_error(d, "policy_manifest");
    d = load_vector_json(vectors[0]);
    json_object_set_new(d, "bootstrap_anchors", json_object());
    expect_parse_error(d, "bootstrap_anchors");
    d = load_vector_json(vectors[0]);
    json_array_append_new(json_object_get(d, "bootstrap_anchors"), json_pack("{s:s}", "id", "a"));
    expect_parse_error(d, "bootstrap_anchors[0]");
    d = load_vector_json(vectors[0]);
    json_object_set_new(d, "signatures", json_string("x"));
    expect_parse_error(d, "signatures");
    d = load_vector_json(vectors[0]);
    json_object_set_new(json_array_get(json_object_get(d, "signatures"), 0), "sig", json_string("short"));
    expect_parse_error(d, "signature 0");
    d = load_vector_json(vectors[0]);
    json_object_del(json_array_get(json_object_get(d, "signatures"), 0), "key_id");
    expect_parse_error(d, "signature 0");
    expect_parse_error(json_pack("[s]", "not an object"), "JSON object");
}

static void test_malformed_json_refused_with_position(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "{",
        "{\"network_name\": \"x\",}",
        "{\"network_name\": \"x\"} trailing",
        "{\"network_name\": \"x\", \"network_name\": \"y\"}",
        "\"just a string\"",
        "{\"network_name\": \"\\u0000\"}",
        "{\"network_name\": \"\xff\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gm_genesis g;
        gm_error err = {0};
        if (gm_genesis_parse(bad[i], strlen(bad[i]), &g, &err) != GM_EFORMAT)
            fail_msg("accepted malformed #%zu", i);
        assert_non_null(strstr(err.msg, "not valid JSON"));
    }
    gm_genesis g;
    gm_error err = {0};
    size_t big = 300 * 1024;
    char *text = malloc(big);
    memset(text, ' ', big);
    assert_int_equal(gm_genesis_parse(text, big, &g, &err), GM_ETOOBIG);
    free(text);
    assert_int_equal(gm_genesis_load("/nonexistent/genesis.json", &g, &err), GM_ENOTFOUND);
}

static void test_create_sign_verify_round_trip(void **state)
{
    (void)state;
    gm_signer root, na;
    gm_genesis g, back;
    gm_error err = {0};
    seed_signer(0x00, "rs-local", &root);
    seed_signer(0x40, "na-local", &na);
    gm_time from = gm_time_from_unix(1767225600), to = gm_time_add(from, 90 * 86400);
    json_t *anchors = json_pack("[{s:s,s:s}]", "id", "anchor-1", "endpoint", "198.51.100.1:7000");
    assert_int_equal(gm_genesis_create(&g, "TESTNET", root.pk, na.pk, from, to, anchors, &err), 0);
    json_decref(anchors);
    assert_string_equal(g.network_name, "TESTNET");
    /* unsigned: does not verify yet */
    assert_int_equal(gm_genesis_verify(&g, &err), GM_ESIG);
    assert_int_equal(gm_genesis_sign(&g, &root, &err), 0);
    assert_int_equal(gm_genesis_verify(&g, &err), 0);
    char *text = gm_genesis_dump(&g);
    assert_int_equal(gm_genesis_parse(text, strlen(text), &back, &err), 0);
    assert_int_equal(gm_genesis_verify(&back, &err), 0);
    assert_string_equal(back.network_name, "TESTNET");
    assert_memory_equal(back.na_pk, na.pk, GM_PK_LEN);
    assert_memory_equal(back.root_pk, root.pk, GM_PK_LEN);
    assert_int_equal(gm_time_cmp(&back.na_valid_to, &to), 0);
    json_t *an = json_object_get(back.doc, "bootstrap_anchors");
    assert_int_equal(json_array_size(an), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(an, 0), "endpoint")), "198.51.100.1:7000");
    const char *key_id = json_string_value(json_object_get(json_array_get(json_object_get(back.doc, "signatures"), 0), "key_id"));
    assert_string_equal(key_id, "rs-local");
    /* a second root signature is fine: every one verifies */
    assert_int_equal(gm_genesis_sign(&back, &root, &err), 0);
    assert_int_equal(gm_genesis_verify(&back, &err), 0);
    free(text);
    gm_genesis_free(&g);
    gm_genesis_free(&back);
    gm_signer_wipe(&root);
    gm_signer_wipe(&na);
}

static void test_create_refuses_bad_input_without_leaking(void **state)
{
    (void)state;
    gm_signer root;
    gm_genesis g;
    gm_error err = {0};
    seed_signer(0x00, "rs", &root);
    gm_time from = gm_time_from_unix(1767225600), to = gm_time_add(from, 86400);
    assert_int_equal(gm_genesis_create(&g, "", root.pk, root.pk, from, to, NULL, &err), GM_EFORMAT);
    assert_null(g.doc);
    assert_int_equal(gm_genesis_create(&g, "bad\xff", root.pk, root.pk, from, to, NULL, &err), GM_EINVAL);
    assert_null(g.doc);
    json_t *anchors = json_pack("[{s:s}]", "id", "no-endpoint");
    assert_int_equal(gm_genesis_create(&g, "NET", root.pk, root.pk, from, to, anchors, &err), GM_EFORMAT);
    json_decref(anchors);
    gm_signer_wipe(&root);
}

static void test_na_window_enforced_with_skew(void **state)
{
    (void)state;
    char path[1024];
    gm_genesis g;
    gm_error err = {0};
    vector_path("genesis-001.signed.json", path, sizeof path);
    assert_int_equal(gm_genesis_load(path, &g, &err), 0);
    gm_time from = g.na_valid_from, to = g.na_valid_to;
    assert_int_equal(gm_genesis_check_na_window(&g, gm_time_add(from, 86400), &err), 0);
    assert_int_equal(gm_genesis_check_na_window(&g, gm_time_add(from, -(GM_CLOCK_SKEW_S - 1)), &err), 0);
    assert_int_equal(gm_genesis_check_na_window(&g, gm_time_add(from, -GM_CLOCK_SKEW_S), &err), 0);
    assert_int_equal(gm_genesis_check_na_window(&g, gm_time_add(from, -(GM_CLOCK_SKEW_S + 1)), &err), GM_EEXPIRED);
    assert_non_null(strstr(err.msg, "not valid yet"));
    assert_non_null(strstr(err.msg, "2026-06-06T10:22:05.230676Z"));
    assert_int_equal(gm_genesis_check_na_window(&g, gm_time_add(to, GM_CLOCK_SKEW_S), &err), 0);
    assert_int_equal(gm_genesis_check_na_window(&g, gm_time_add(to, GM_CLOCK_SKEW_S + 1), &err), GM_EEXPIRED);
    assert_non_null(strstr(err.msg, "expired"));
    assert_non_null(strstr(err.msg, "2026-09-04T10:22:05.230676Z"));
    gm_genesis_free(&g);
    /* naive window times are read as UTC */
    vector_path("genesis-naive-times.signed.json", path, sizeof path);
    assert_int_equal(gm_genesis_load(path, &g, &err), 0);
    gm_time t;
    assert_int_equal(gm_time_parse("2026-02-01T00:00:00Z", &t, &err), 0);
    assert_int_equal(gm_genesis_check_na_window(&g, t, &err), 0);
    assert_int_equal(gm_time_parse("2026-04-21T16:50:00Z", &t, &err), 0);
    assert_int_equal(gm_genesis_check_na_window(&g, t, &err), GM_EEXPIRED);
    gm_genesis_free(&g);
}

static void test_hash_covers_signed_bytes_only(void **state)
{
    (void)state;
    json_t *doc = load_vector_json("genesis-001.signed.json");
    gm_genesis a, b;
    gm_error err = {0};
    uint8_t ha[32], hb[32];
    assert_int_equal(parse_json(doc, &a, &err), 0);
    assert_int_equal(gm_genesis_hash(&a, ha, &err), 0);
    /* compact vs pretty text, unknown members and extra signatures: same network */
    char *compact = json_dumps(doc, JSON_COMPACT);
    json_object_set_new(doc, "comment", json_string("x"));
    json_array_append_new(json_object_get(doc, "signatures"),
                          json_pack("{s:s,s:s}", "key_id", "k", "sig", json_string_value(json_object_get(
                                                                           json_array_get(json_object_get(doc, "signatures"), 0), "sig"))));
    assert_int_equal(parse_json(doc, &b, &err), 0);
    assert_int_equal(gm_genesis_hash(&b, hb, &err), 0);
    assert_memory_equal(ha, hb, 32);
    gm_genesis_free(&b);
    assert_int_equal(gm_genesis_parse(compact, strlen(compact), &b, &err), 0);
    assert_int_equal(gm_genesis_hash(&b, hb, &err), 0);
    assert_memory_equal(ha, hb, 32);
    gm_genesis_free(&b);
    /* a signed member changes it */
    t_policy_hash(doc);
    assert_int_equal(parse_json(doc, &b, &err), 0);
    assert_int_equal(gm_genesis_hash(&b, hb, &err), 0);
    assert_memory_not_equal(ha, hb, 32);
    gm_genesis_free(&b);
    gm_genesis_free(&a);
    free(compact);
    json_decref(doc);
}

/* ---- successors (NA key rotation) ---- */

/* A signed genesis for net, root (seed first byte) and NA key, window from..to. */
static void make_signed(gm_genesis *g, const char *net, const gm_signer *root, const gm_signer *na, gm_time from,
                        gm_time to)
{
    gm_error err = {0};
    assert_int_equal(gm_genesis_create(g, net, root->pk, na->pk, from, to, NULL, &err), 0);
    assert_int_equal(gm_genesis_sign(g, root, &err), 0);
}

/* A signed successor of cur by signer (which need not be cur's root). */
static int make_successor(const gm_genesis *cur, gm_genesis *next, const gm_signer *signer, const gm_signer *na,
                          gm_time from, gm_time to, gm_error *err)
{
    int rc = gm_genesis_successor(cur, next, na->pk, from, to, err);
    if (rc == 0)
        rc = gm_sigdoc_sign(next->doc, signer, err);
    return rc;
}

static void test_successor_accepted_and_ordered(void **state)
{
    (void)state;
    gm_signer root, na1, na2, na3;
    gm_genesis g1, g2, g3, back;
    gm_error err = {0};
    uint64_t v1, v2, v3;
    seed_signer(0x00, "rs-local", &root);
    seed_signer(0x40, "na-local", &na1);
    seed_signer(0x60, "na-local", &na2);
    seed_signer(0x80, "na-local", &na3);
    gm_time t0 = gm_time_from_unix(1767225600);
    make_signed(&g1, "TESTNET", &root, &na1, t0, gm_time_add(t0, 100));
    assert_int_equal(make_successor(&g1, &g2, &root, &na2, gm_time_add(t0, 50), gm_time_add(t0, 200), &err), 0);
    assert_int_equal(gm_genesis_check_successor(&g1, &g2, &err), 0);
    assert_string_equal(json_string_value(json_object_get(g2.doc, "network_version")), "v0.2");
    /* every other member is kept: the network's identity does not change */
    assert_string_equal(g2.network_name, "TESTNET");
    assert_true(json_equal(json_object_get(g1.doc, "allowed_transports"), json_object_get(g2.doc, "allowed_transports")));
    uint8_t id1[32], id2[32], h1[32], h2[32];
    gm_genesis_network_id(&g1, id1);
    gm_genesis_network_id(&g2, id2);
    assert_memory_equal(id1, id2, 32);
    assert_int_equal(gm_genesis_hash(&g1, h1, &err), 0);
    assert_int_equal(gm_genesis_hash(&g2, h2, &err), 0);
    assert_memory_not_equal(h1, h2, 32);
    /* it survives the text round trip (what the NA serves and nodes store) */
    char *text = gm_genesis_dump(&g2);
    assert_int_equal(gm_genesis_parse(text, strlen(text), &back, &err), 0);
    assert_int_equal(gm_genesis_check_successor(&g1, &back, &err), 0);
    free(text);
    gm_genesis_free(&back);
    /* a second rotation: successor of the successor, not of the first */
    assert_int_equal(make_successor(&g2, &g3, &root, &na3, gm_time_add(t0, 150), gm_time_add(t0, 300), &err), 0);
    assert_int_equal(gm_genesis_check_successor(&g2, &g3, &err), 0);
    assert_int_not_equal(gm_genesis_check_successor(&g1, &g3, &err), 0); /* no overlap with g1 */
    assert_int_not_equal(gm_genesis_check_successor(&g2, &g1, &err), 0); /* going back */
    assert_int_not_equal(gm_genesis_check_successor(&g2, &g2, &err), 0); /* not higher */
    assert_int_equal(gm_genesis_version(&g1, &v1, &err), 0);
    assert_int_equal(gm_genesis_version(&g2, &v2, &err), 0);
    assert_int_equal(gm_genesis_version(&g3, &v3, &err), 0);
    assert_true(v1 < v2 && v2 < v3);
    gm_genesis_free(&g1);
    gm_genesis_free(&g2);
    gm_genesis_free(&g3);
    gm_signer_wipe(&root);
    gm_signer_wipe(&na1);
    gm_signer_wipe(&na2);
    gm_signer_wipe(&na3);
}

static void expect_not_successor(const gm_genesis *cur, const gm_genesis *next, const char *needle)
{
    gm_error err = {0};
    assert_int_not_equal(gm_genesis_check_successor(cur, next, &err), 0);
    if (!strstr(err.msg, needle))
        fail_msg("expected '%s' in: %s", needle, err.msg);
}

static void test_successor_refusals(void **state)
{
    (void)state;
    gm_signer root, other, na1, na2;
    gm_genesis g1, g;
    gm_error err = {0};
    seed_signer(0x00, "rs-local", &root);
    seed_signer(0x20, "rs-other", &other);
    seed_signer(0x40, "na-local", &na1);
    seed_signer(0x60, "na-local", &na2);
    gm_time t0 = gm_time_from_unix(1767225600), mid = gm_time_add(t0, 50), end = gm_time_add(t0, 200);
    make_signed(&g1, "TESTNET", &root, &na1, t0, gm_time_add(t0, 100));
    /* signed by another root (its root_public_key still says ours) */
    assert_int_equal(make_successor(&g1, &g, &other, &na2, mid, end, &err), 0);
    expect_not_successor(&g1, &g, "not a successor");
    gm_genesis_free(&g);
    /* a whole network of another root */
    make_signed(&g, "TESTNET", &other, &na2, mid, end);
    json_object_set_new(g.doc, "network_version", json_string("v0.2"));
    expect_not_successor(&g1, &g, "another root key");
    gm_genesis_free(&g);
    /* another network, same root */
    assert_int_equal(gm_genesis_successor(&g1, &g, na2.pk, mid, end, &err), 0);
    json_object_set_new(g.doc, "network_name", json_string("OTHERNET"));
    g.network_name = json_string_value(json_object_get(g.doc, "network_name"));
    assert_int_equal(gm_genesis_sign(&g, &root, &err), 0);
    expect_not_successor(&g1, &g, "for network 'OTHERNET'");
    gm_genesis_free(&g);
    /* windows: a gap, starting before the current one, ending inside it */
    assert_int_equal(make_successor(&g1, &g, &root, &na2, gm_time_add(t0, 100), end, &err), 0);
    expect_not_successor(&g1, &g, "must start inside the current one");
    gm_genesis_free(&g);
    assert_int_equal(make_successor(&g1, &g, &root, &na2, gm_time_add(t0, -10), end, &err), 0);
    expect_not_successor(&g1, &g, "must start inside");
    gm_genesis_free(&g);
    assert_int_equal(make_successor(&g1, &g, &root, &na2, mid, gm_time_add(t0, 90), &err), 0);
    expect_not_successor(&g1, &g, "end after it");
    gm_genesis_free(&g);
    /* the same NA key, or the root key as NA key */
    assert_int_equal(make_successor(&g1, &g, &root, &na1, mid, end, &err), 0);
    expect_not_successor(&g1, &g, "must be a new key");
    gm_genesis_free(&g);
    assert_int_equal(make_successor(&g1, &g, &root, &root, mid, end, &err), 0);
    expect_not_successor(&g1, &g, "must be a new key");
    gm_genesis_free(&g);
    /* unsigned, and tampered after signing */
    assert_int_equal(gm_genesis_successor(&g1, &g, na2.pk, mid, end, &err), 0);
    expect_not_successor(&g1, &g, "not a successor");
    gm_genesis_free(&g);
    assert_int_equal(make_successor(&g1, &g, &root, &na2, mid, end, &err), 0);
    assert_int_equal(gm_genesis_check_successor(&g1, &g, &err), 0);
    json_object_set_new(g.doc, "network_version", json_string("v0.9"));
    expect_not_successor(&g1, &g, "not a successor");
    gm_genesis_free(&g);
    gm_genesis_free(&g1);
    gm_signer_wipe(&root);
    gm_signer_wipe(&other);
    gm_signer_wipe(&na1);
    gm_signer_wipe(&na2);
}

static void test_network_version_parsing(void **state)
{
    (void)state;
    static const struct {
        const char *v;
        uint64_t want; /* 0 with ok 0: refused */
        int ok;
    } cases[] = {
        {"v0.1", 1, 1},          {"v1.0", UINT64_C(1) << 32, 1},
        {"v0.10", 10, 1},        {"v2.999999999", (UINT64_C(2) << 32) | 999999999u, 1},
        {"0.1", 0, 0},           {"v01.1", 0, 0},
        {"v0.01", 0, 0},         {"v0", 0, 0},
        {"v0.1.2", 0, 0},        {"v0.1 ", 0, 0},
        {"v1234567890.1", 0, 0}, {"V0.1", 0, 0},
        {"v.1", 0, 0},           {"", 0, 0},
    };
    gm_signer root, na;
    gm_genesis g;
    gm_error err = {0};
    seed_signer(0x00, "rs-local", &root);
    seed_signer(0x40, "na-local", &na);
    gm_time t0 = gm_time_from_unix(1767225600);
    make_signed(&g, "TESTNET", &root, &na, t0, gm_time_add(t0, 100));
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t v = 0;
        json_object_set_new(g.doc, "network_version", json_string(cases[i].v));
        int rc = gm_genesis_version(&g, &v, &err);
        if (cases[i].ok) {
            assert_int_equal(rc, 0);
            assert_true(v == cases[i].want);
        } else {
            assert_int_equal(rc, GM_EFORMAT);
            assert_non_null(strstr(err.msg, "vMAJOR.MINOR"));
        }
    }
    /* no successor of a version that cannot be ordered */
    gm_genesis next;
    json_object_set_new(g.doc, "network_version", json_string("1.0-beta"));
    assert_int_equal(gm_genesis_successor(&g, &next, na.pk, t0, t0, &err), GM_EFORMAT);
    gm_genesis_free(&g);
    gm_signer_wipe(&root);
    gm_signer_wipe(&na);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_python_reference_blocks_verify),
        cmocka_unit_test(test_vector_members_parsed),
        cmocka_unit_test(test_changing_any_signed_member_breaks_every_vector),
        cmocka_unit_test(test_unknown_members_are_ignored),
        cmocka_unit_test(test_absent_optional_members_take_their_defaults),
        cmocka_unit_test(test_equivalent_timestamp_spellings_still_verify),
        cmocka_unit_test(test_naive_timestamps_stay_without_offset_in_signed_bytes),
        cmocka_unit_test(test_signature_by_another_key_refused),
        cmocka_unit_test(test_every_signature_must_verify),
        cmocka_unit_test(test_flipped_signature_byte_refused),
        cmocka_unit_test(test_missing_or_empty_signatures_refused),
        cmocka_unit_test(test_wrong_types_give_clear_errors),
        cmocka_unit_test(test_malformed_json_refused_with_position),
        cmocka_unit_test(test_create_sign_verify_round_trip),
        cmocka_unit_test(test_create_refuses_bad_input_without_leaking),
        cmocka_unit_test(test_na_window_enforced_with_skew),
        cmocka_unit_test(test_hash_covers_signed_bytes_only),
        cmocka_unit_test(test_successor_accepted_and_ordered),
        cmocka_unit_test(test_successor_refusals),
        cmocka_unit_test(test_network_version_parsing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
