/* Tests for gm/canon.h: every rule of formats.md "Canonical JSON", checked against the
 * bytes Python's json.dumps(sort_keys=True, separators=(",",":"), ensure_ascii=True) gives. */
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
#include "core_internal.h"

/* Canonical form of a JSON text (parsed by jansson); asserts success. */
static void assert_canon(const char *json_text, const char *expected)
{
    json_error_t je;
    json_t *v = json_loads(json_text, JSON_DECODE_ANY, &je);
    if (!v)
        fail_msg("test input does not parse: %s", je.text);
    char *out = NULL;
    size_t len = 0;
    gm_error err = {0};
    int rc = gm_canon_dump(v, &out, &len, &err);
    if (rc != 0)
        fail_msg("canon failed: %s", err.msg);
    assert_string_equal(out, expected);
    assert_int_equal(len, strlen(expected));
    free(out);
    json_decref(v);
}

/* Canonical form of a value built in C; returns rc, fills err. */
static int canon_value(json_t *v, char **out, gm_error *err)
{
    size_t len;
    *out = NULL;
    int rc = gm_canon_dump(v, out, &len, err);
    json_decref(v);
    return rc;
}

static void test_keys_sorted_by_code_point_at_every_level(void **state)
{
    (void)state;
    assert_canon("{\"b\":1,\"a\":{\"d\":[{\"z\":1,\"y\":2}],\"c\":2},\"B\":0}",
                 "{\"B\":0,\"a\":{\"c\":2,\"d\":[{\"y\":2,\"z\":1}]},\"b\":1}");
    /* prefixes sort before longer keys */
    assert_canon("{\"ab\":1,\"a\":2,\"\":3}", "{\"\":3,\"a\":2,\"ab\":1}");
}

static void test_non_ascii_keys_sort_after_ascii_by_code_point(void **state)
{
    (void)state;
    /* é (U+00E9) after z; U+FF21 after é; U+1F600 (4-byte UTF-8) after U+FF21 */
    assert_canon("{\"\xf0\x9f\x98\x80\":4,\"\xef\xbc\xa1\":3,\"\xc3\xa9\":2,\"z\":1}",
                 "{\"z\":1,\"\\u00e9\":2,\"\\uff21\":3,\"\\ud83d\\ude00\":4}");
}

static void test_arrays_keep_their_order(void **state)
{
    (void)state;
    assert_canon("[3,1,2,\"b\",\"a\",[2,1],{}]", "[3,1,2,\"b\",\"a\",[2,1],{}]");
}

static void test_no_whitespace_between_tokens(void **state)
{
    (void)state;
    assert_canon(" { \"a\" : [ 1 , 2 ] ,\n\t\"b\" : { } , \"c\" : [ ] } ", "{\"a\":[1,2],\"b\":{},\"c\":[]}");
}

static void test_short_escapes_for_quote_backslash_and_controls(void **state)
{
    (void)state;
    assert_canon("\"q\\\"b\\\\b\\bf\\fn\\nr\\rt\\t\"", "\"q\\\"b\\\\b\\bf\\fn\\nr\\rt\\t\"");
}

static void test_other_controls_and_del_escaped_lowercase(void **state)
{
    (void)state;
    assert_canon("\"\\u0001\\u001f\\u000b\\u007f\\u001F\"", "\"\\u0001\\u001f\\u000b\\u007f\\u001f\"");
    /* NUL inside a string (not loadable by default, but buildable) is \u0000 */
    char *out;
    gm_error err = {0};
    assert_int_equal(canon_value(json_stringn("a\0b", 3), &out, &err), 0);
    assert_string_equal(out, "\"a\\u0000b\"");
    free(out);
}

static void test_non_ascii_escaped_as_lowercase_u_escapes(void **state)
{
    (void)state;
    assert_canon("\"caf\xc3\xa9 \xe2\x80\xa8 \xef\xbf\xbf \xc2\x80\"", "\"caf\\u00e9 \\u2028 \\uffff \\u0080\"");
    /* input given as uppercase \u escape still renders lowercase */
    assert_canon("\"\\u00C9\\u00e9\"", "\"\\u00c9\\u00e9\"");
}

static void test_astral_chars_as_lowercase_surrogate_pairs(void **state)
{
    (void)state;
    assert_canon("\"\xf0\x9f\x98\x80\"", "\"\\ud83d\\ude00\"");
    assert_canon("\"\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\"", "\"\\ud800\\udc00\\udbff\\udfff\"");
    /* a pair given escaped in the input comes out the same */
    assert_canon("\"\\uD83D\\uDE00\"", "\"\\ud83d\\ude00\"");
}

static void test_slash_and_printable_ascii_not_escaped(void **state)
{
    (void)state;
    assert_canon("\"a/b\\/c ~!<>&'\"", "\"a/b/c ~!<>&'\"");
}

static void test_null_true_false_literals(void **state)
{
    (void)state;
    assert_canon("{\"n\":null,\"t\":true,\"f\":false}", "{\"f\":false,\"n\":null,\"t\":true}");
    assert_canon("null", "null");
}

static void test_integers_plain_decimal_negative_and_large(void **state)
{
    (void)state;
    assert_canon("[0,-0,-1,42,-42,1000000]", "[0,0,-1,42,-42,1000000]");
    assert_canon("[9223372036854775807,-9223372036854775808]", "[9223372036854775807,-9223372036854775808]");
}

static void test_floats_refused_anywhere(void **state)
{
    (void)state;
    char *out;
    gm_error err = {0};
    assert_int_equal(canon_value(json_real(1.5), &out, &err), GM_EFORMAT);
    assert_non_null(strstr(err.msg, "floating"));
    assert_null(out);
    assert_int_equal(canon_value(json_loads("{\"a\":[1,{\"b\":1.0}]}", 0, NULL), &out, &err), GM_EFORMAT);
    assert_null(out);
    assert_int_equal(canon_value(json_loads("[1e2]", 0, NULL), &out, &err), GM_EFORMAT);
}

static void test_invalid_utf8_refused_in_values_and_keys(void **state)
{
    (void)state;
    static const char *bad[] = {
        "\xff",             /* never valid */
        "\xc0\xaf",         /* overlong "/" */
        "\xe0\x80\xaf",     /* overlong 3-byte */
        "\xed\xa0\x80",     /* UTF-16 surrogate encoded in UTF-8 */
        "\xe2\x82",         /* truncated */
        "\xf4\x90\x80\x80", /* above U+10FFFF */
        "a\x80",            /* stray continuation */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *out;
        gm_error err = {0};
        assert_int_equal(canon_value(json_stringn_nocheck(bad[i], strlen(bad[i])), &out, &err), GM_EFORMAT);
        assert_non_null(strstr(err.msg, "UTF-8"));
        assert_null(out);
        json_t *o = json_object();
        json_object_set_new_nocheck(o, bad[i], json_integer(1));
        assert_int_equal(canon_value(o, &out, &err), GM_EFORMAT);
        assert_null(out);
    }
}

static void test_unsigned_form_omits_only_top_level_signatures(void **state)
{
    (void)state;
    json_t *doc = json_loads("{\"b\":1,\"signatures\":[{\"key_id\":\"k\",\"sig\":\"x\"}],"
                             "\"a\":{\"signatures\":[1]}}",
                             0, NULL);
    char *out;
    size_t len;
    gm_error err = {0};
    assert_int_equal(gm_canon_dump_unsigned(doc, &out, &len, &err), 0);
    assert_string_equal(out, "{\"a\":{\"signatures\":[1]},\"b\":1}");
    free(out);
    /* the plain dump keeps it */
    assert_int_equal(gm_canon_dump(doc, &out, &len, &err), 0);
    assert_string_equal(out, "{\"a\":{\"signatures\":[1]},\"b\":1,\"signatures\":[{\"key_id\":\"k\",\"sig\":\"x\"}]}");
    free(out);
    json_decref(doc);
}

static void test_unsigned_form_requires_an_object(void **state)
{
    (void)state;
    json_t *arr = json_array();
    char *out = NULL;
    size_t len;
    gm_error err = {0};
    assert_int_equal(gm_canon_dump_unsigned(arr, &out, &len, &err), GM_EFORMAT);
    assert_null(out);
    json_decref(arr);
    assert_int_equal(gm_canon_dump(NULL, &out, &len, &err), GM_EINVAL);
}

static void test_spec_certificate_bytes_reproduced_from_pretty_input(void **state)
{
    (void)state;
    assert_canon("{\n  \"roles\": [\"role:anchor\"],\n  \"issued_by\": \"na-local\",\n"
                 "  \"node_public_key\": \"A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=\",\n"
                 "  \"network_name\": \"TESTNET\", \"issued_at\": \"2026-06-06T10:00:00Z\",\n"
                 "  \"expires_at\": \"2026-06-13T10:00:00Z\", \"cert_id\": \"00000000-0000-4000-8000-0000000000cc\"\n}",
                 "{\"cert_id\":\"00000000-0000-4000-8000-0000000000cc\",\"expires_at\":\"2026-06-13T10:00:00Z\","
                 "\"issued_at\":\"2026-06-06T10:00:00Z\",\"issued_by\":\"na-local\",\"network_name\":\"TESTNET\","
                 "\"node_public_key\":\"A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=\",\"roles\":[\"role:anchor\"]}");
}

static json_t *nest_arrays(int depth)
{
    json_t *v = json_array();
    for (int i = 1; i < depth; i++) {
        json_t *outer = json_array();
        json_array_append_new(outer, v);
        v = outer;
    }
    return v;
}

static void test_moderate_nesting_accepted(void **state)
{
    (void)state;
    char *out;
    gm_error err = {0};
    assert_int_equal(canon_value(nest_arrays(64), &out, &err), 0);
    assert_int_equal(strlen(out), 128);
    free(out);
}

static void test_deep_nesting_refused_without_deep_recursion(void **state)
{
    (void)state;
    char *out;
    gm_error err = {0};
    assert_int_equal(canon_value(nest_arrays(100), &out, &err), GM_EFORMAT);
    assert_non_null(strstr(err.msg, "nested"));
    assert_null(out);
    /* far deeper than any stack could recurse: refused at the limit, not crashed */
    assert_int_equal(canon_value(nest_arrays(5000), &out, &err), GM_EFORMAT);
    /* objects count too */
    json_t *v = json_object();
    for (int i = 0; i < 100; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "k", v);
        v = o;
    }
    assert_int_equal(canon_value(v, &out, &err), GM_EFORMAT);
}

static void test_canonical_output_is_a_fixed_point(void **state)
{
    (void)state;
    const char *in = "{\"z\":[\"\xc3\xa9\\n\",{\"b\":null,\"a\":true}],\"\xf0\x9f\x98\x80\":-7,\"a/b\":\"\\u007f\"}";
    json_t *v = json_loads(in, 0, NULL);
    char *once, *twice;
    size_t l1, l2;
    gm_error err = {0};
    assert_int_equal(gm_canon_dump(v, &once, &l1, &err), 0);
    json_t *w = json_loads(once, 0, NULL);
    assert_non_null(w);
    assert_int_equal(gm_canon_dump(w, &twice, &l2, &err), 0);
    assert_string_equal(once, twice);
    assert_true(json_equal(v, w));
    free(once);
    free(twice);
    json_decref(v);
    json_decref(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_sorted_by_code_point_at_every_level),
        cmocka_unit_test(test_non_ascii_keys_sort_after_ascii_by_code_point),
        cmocka_unit_test(test_arrays_keep_their_order),
        cmocka_unit_test(test_no_whitespace_between_tokens),
        cmocka_unit_test(test_short_escapes_for_quote_backslash_and_controls),
        cmocka_unit_test(test_other_controls_and_del_escaped_lowercase),
        cmocka_unit_test(test_non_ascii_escaped_as_lowercase_u_escapes),
        cmocka_unit_test(test_astral_chars_as_lowercase_surrogate_pairs),
        cmocka_unit_test(test_slash_and_printable_ascii_not_escaped),
        cmocka_unit_test(test_null_true_false_literals),
        cmocka_unit_test(test_integers_plain_decimal_negative_and_large),
        cmocka_unit_test(test_floats_refused_anywhere),
        cmocka_unit_test(test_invalid_utf8_refused_in_values_and_keys),
        cmocka_unit_test(test_unsigned_form_omits_only_top_level_signatures),
        cmocka_unit_test(test_unsigned_form_requires_an_object),
        cmocka_unit_test(test_spec_certificate_bytes_reproduced_from_pretty_input),
        cmocka_unit_test(test_moderate_nesting_accepted),
        cmocka_unit_test(test_deep_nesting_refused_without_deep_recursion),
        cmocka_unit_test(test_canonical_output_is_a_fixed_point),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
