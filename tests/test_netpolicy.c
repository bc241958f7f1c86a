/* Tests for gm/netpolicy.h, the network policy manifest (the Python reference's PolicyManifest,
 * GET /policy): its recorded policy verifies under the genesis NA key and any change to a signed
 * member breaks it; defaults are filled and unknown members dropped (formats.md); wrong types
 * and bounds are refused naming the member; what we issue parses back to the same bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gm/genesis.h"
#include "gm/netpolicy.h"
#include "gm/util.h"
#include "core_internal.h"

static gm_signer na;

static void vector_path(char *out, size_t cap, const char *name)
{
    const char *dir = getenv("GM_VECTORS");
    snprintf(out, cap, "%s/reference-answers/%s", dir ? dir : "tests/vectors", name);
}

static char *read_vector(const char *name, size_t *len)
{
    char path[512], *text = NULL;
    gm_error err = {0};
    vector_path(path, sizeof path, name);
    if (gm_file_read(path, 1 << 20, &text, len, &err) != 0)
        fail_msg("%s", err.msg);
    return text;
}

/* text with the first from replaced by to (malloc'd) */
static char *replaced(const char *text, const char *from, const char *to)
{
    const char *hit = strstr(text, from);
    assert_non_null(hit);
    size_t head = (size_t)(hit - text), n = strlen(text) - strlen(from) + strlen(to);
    char *out = malloc(n + 1);
    memcpy(out, text, head);
    strcpy(out + head, to);
    strcat(out, hit + strlen(from));
    return out;
}

static void test_reference_policy_verifies_and_tampering_breaks_it(void **state)
{
    (void)state;
    gm_genesis g;
    gm_netpolicy p;
    gm_error err = {0};
    char path[512];
    size_t len;
    vector_path(path, sizeof path, "genesis.json");
    assert_int_equal(gm_genesis_load(path, &g, &err), 0);
    assert_int_equal(gm_genesis_verify(&g, &err), 0);
    char *text = read_vector("policy-200.json", &len);
    assert_int_equal(gm_netpolicy_parse(text, len, &p, &err), 0);
    assert_int_equal(gm_netpolicy_verify(&p, g.na_pk, &err), 0);
    assert_string_equal(p.policy_id, "policy-REFNET-v0.1");
    assert_string_equal(p.issued_by, "na-local");
    /* another spelling of the same instant signs the same bytes */
    gm_netpolicy_free(&p);
    char *same = replaced(text, "10:00:00.123456+00:00", "10:00:00.123456Z");
    assert_int_equal(gm_netpolicy_parse(same, strlen(same), &p, &err), 0);
    assert_int_equal(gm_netpolicy_verify(&p, g.na_pk, &err), 0);
    gm_netpolicy_free(&p);
    free(same);
    /* any signed member changed: refused */
    static const char *const from[] = {"\"max_hops\":6", "8443", "service-2", "\"0.1.0\"", "\"quic\"",
                                       "[443,"};
    static const char *const to[] = {"\"max_hops\":7", "8444", "service-3", "\"0.1.1\"", "\"tcp\"",
                                     "[80,443,"};
    for (size_t i = 0; i < sizeof from / sizeof from[0]; i++) {
        char *t = replaced(text, from[i], to[i]);
        assert_int_equal(gm_netpolicy_parse(t, strlen(t), &p, &err), 0);
        assert_int_equal(gm_netpolicy_verify(&p, g.na_pk, &err), GM_ESIG);
        assert_non_null(strstr(err.msg, "not signed by this network's NA"));
        gm_netpolicy_free(&p);
        free(t);
    }
    free(text);
    gm_genesis_free(&g);
}

static void test_defaults_filled_and_unknown_members_dropped(void **state)
{
    (void)state;
    gm_netpolicy p;
    gm_error err = {0};
    const char *doc = "{\"policy_id\":\"p1\",\"issued_at\":\"2026-06-06T10:00:00+00:00\",\"issued_by\":\"na-local\","
                      "\"routing\":{\"max_hops\":3,\"extra\":true},\"extra\":[1],\"signatures\":[]}";
    assert_int_equal(gm_netpolicy_parse(doc, strlen(doc), &p, &err), 0);
    char *out = gm_netpolicy_dump(&p, 0);
    assert_string_equal(out, "{\"allowed_ports\":[443,8443],\"allowed_services\":[],\"issued_at\":\"2026-06-06T10:00:00Z\","
                             "\"issued_by\":\"na-local\",\"min_client_version\":\"0.1.0\",\"policy_id\":\"p1\","
                             "\"routing\":{\"max_hops\":3,\"preferred_transports\":[\"quic\",\"wireguard\"]},"
                             "\"signatures\":[]}");
    free(out);
    gm_netpolicy_free(&p);
}

static void test_bad_documents_are_refused_naming_the_member(void **state)
{
    (void)state;
    static const struct {
        const char *doc, *msg;
    } cases[] = {
        {"[]", "must be a JSON object"},
        {"{\"issued_at\":\"2026-06-06T10:00:00Z\",\"issued_by\":\"na\"}", "missing \"policy_id\""},
        {"{\"policy_id\":\"p\",\"issued_by\":\"na\"}", "missing \"issued_at\""},
        {"{\"policy_id\":\"\",\"issued_at\":\"2026-06-06T10:00:00Z\",\"issued_by\":\"na\"}", "\"policy_id\" must be"},
        {"{\"policy_id\":\"p\",\"issued_at\":\"yesterday\",\"issued_by\":\"na\"}", "issued_at"},
        {"{\"policy_id\":\"p\",\"issued_at\":\"2026-06-06T10:00:00Z\",\"issued_by\":\"na\",\"allowed_ports\":[65536]}",
         "\"allowed_ports\"[0] must be an integer 0..65535"},
        {"{\"policy_id\":\"p\",\"issued_at\":\"2026-06-06T10:00:00Z\",\"issued_by\":\"na\",\"allowed_ports\":[1.5]}",
         "\"allowed_ports\"[0]"},
        {"{\"policy_id\":\"p\",\"issued_at\":\"2026-06-06T10:00:00Z\",\"issued_by\":\"na\",\"allowed_services\":[3]}",
         "\"allowed_services\"[0] must be a string"},
        {"{\"policy_id\":\"p\",\"issued_at\":\"2026-06-06T10:00:00Z\",\"issued_by\":\"na\",\"min_client_version\":1}",
         "\"min_client_version\" must be a string"},
        {"{\"policy_id\":\"p\",\"issued_at\":\"2026-06-06T10:00:00Z\",\"issued_by\":\"na\",\"routing\":[]}",
         "\"routing\" must be an object"},
        {"{\"policy_id\":\"p\",\"issued_at\":\"2026-06-06T10:00:00Z\",\"issued_by\":\"na\",\"routing\":{\"max_hops\":256}}",
         "\"routing.max_hops\" must be an integer 0..255"},
        {"{\"policy_id\":\"p\",\"issued_at\":\"2026-06-06T10:00:00Z\",\"issued_by\":\"na\",\"routing\":"
         "{\"preferred_transports\":[\"\"]}}",
         "\"routing.preferred_transports\"[0]"},
        {"{\"policy_id\":\"p\",\"issued_at\":\"2026-06-06T10:00:00Z\",\"issued_by\":\"na\",\"signatures\":{}}",
         "\"signatures\" must be an array"},
        {"{\"policy_id\":\"p\",\"policy_id\":\"q\"}", "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gm_netpolicy p;
        gm_error err = {0};
        int rc = gm_netpolicy_parse(cases[i].doc, strlen(cases[i].doc), &p, &err);
        if (rc == 0 || !strstr(err.msg, cases[i].msg))
            fail_msg("case %zu: want \"%s\", got rc %d \"%s\"", i, cases[i].msg, rc, err.msg);
        assert_null(p.doc);
    }
    /* oversized */
    size_t big = GM_NETPOLICY_MAX_BYTES + 1;
    char *text = malloc(big);
    memset(text, ' ', big);
    gm_netpolicy p;
    gm_error err = {0};
    assert_int_equal(gm_netpolicy_parse(text, big, &p, &err), GM_ETOOBIG);
    free(text);
}

static void test_issue_signs_what_a_parser_sees(void **state)
{
    (void)state;
    gm_netpolicy p, q;
    gm_error err = {0};
    json_t *s = gm_netpolicy_default_settings("TESTNET", "v0.1");
    assert_int_equal(gm_netpolicy_issue(&p, &na, s, gm_time_now(), &err), 0);
    assert_string_equal(p.policy_id, "policy-TESTNET-v0.1");
    assert_int_equal(gm_netpolicy_verify(&p, na.pk, &err), 0);
    char *a = gm_netpolicy_dump(&p, 0);
    assert_int_equal(gm_netpolicy_parse(a, strlen(a), &q, &err), 0);
    assert_int_equal(gm_netpolicy_verify(&q, na.pk, &err), 0);
    char *b = gm_netpolicy_dump(&q, 0);
    assert_string_equal(a, b);
    free(a);
    free(b);
    gm_netpolicy_free(&q);
    gm_netpolicy_free(&p);
    /* bad settings: refused naming them, nothing issued */
    json_object_set_new(s, "colour", json_string("blue"));
    assert_int_equal(gm_netpolicy_issue(&p, &na, s, gm_time_now(), &err), GM_EINVAL);
    assert_non_null(strstr(err.msg, "unknown network policy setting \"colour\""));
    json_object_del(s, "colour");
    json_object_set_new(s, "allowed_ports", json_pack("[i]", -1));
    assert_int_equal(gm_netpolicy_issue(&p, &na, s, gm_time_now(), &err), GM_EFORMAT);
    assert_non_null(strstr(err.msg, "allowed_ports"));
    assert_null(p.doc);
    json_decref(s);
    /* no network version: "v0" */
    s = gm_netpolicy_default_settings("N", NULL);
    assert_string_equal(json_string_value(json_object_get(s, "policy_id")), "policy-N-v0");
    json_decref(s);
}

static int setup(void **state)
{
    (void)state;
    uint8_t seed[GM_SEED_LEN];
    gm_error err = {0};
    for (int i = 0; i < GM_SEED_LEN; i++)
        seed[i] = (uint8_t)(0x40 + i);
    assert_int_equal(gm_init(&err), 0);
    assert_int_equal(gm_signer_from_seed(&na, seed, "na-local", &err), 0);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_policy_verifies_and_tampering_breaks_it),
        cmocka_unit_test(test_defaults_filled_and_unknown_members_dropped),
        cmocka_unit_test(test_bad_documents_are_refused_naming_the_member),
        cmocka_unit_test(test_issue_signs_what_a_parser_sees),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
