/* capability_request / capability_response: round trips, limits, and garbage refused. */
#include "agent_testkit.h"
#include "agent_internal.h"
#include "core_internal.h"

static void test_request_round_trip(void **state)
{
    (void)state;
    gm_signer me;
    gm_agent_request r, r2;
    gm_error err = {0};
    tk_signer(&me, 0x60, "node");
    json_t *in = json_pack("{s:s}", "question", "why?");
    assert_int_equal(gm_agent_request_new(&r, "planner:answer", in, me.pk, 5000, &err), 0);
    assert_string_equal(r.capability, "planner.answer");
    assert_true(gm_uuid_valid(r.request_id));
    char *text;
    size_t len;
    assert_int_equal(gm_agent_envelope_dump(r.doc, &text, &len, &err), 0);
    assert_int_equal(gm_agent_request_parse(text, len, &r2, &err), 0);
    assert_string_equal(r2.request_id, r.request_id);
    assert_string_equal(json_string_value(json_object_get(r2.input, "question")), "why?");
    assert_memory_equal(r2.requester, me.pk, GM_PK_LEN);
    assert_int_equal(gm_time_cmp(&r2.deadline, &r.deadline), 0);
    free(text);
    gm_agent_request_free(&r2);
    gm_agent_request_free(&r);
    json_decref(in);
    gm_signer_wipe(&me);
}

static void test_oversized_input_refused(void **state)
{
    (void)state;
    gm_signer me;
    gm_agent_request r;
    gm_error err = {0};
    tk_signer(&me, 0x60, "node");
    char *big = malloc(GM_AGENT_INPUT_MAX + 1);
    memset(big, 'x', GM_AGENT_INPUT_MAX);
    big[GM_AGENT_INPUT_MAX] = '\0';
    json_t *in = json_pack("{s:s}", "prompt", big);
    assert_int_equal(gm_agent_request_new(&r, "llm.chat", in, me.pk, 5000, &err), GM_ETOOBIG);
    assert_non_null(strstr(err.msg, "limit"));
    /* the same input arriving from the network is refused as well */
    char pk[GM_PK_B64_LEN + 1];
    gm_pk_encode(me.pk, pk);
    json_t *doc = json_pack("{s:s,s:s,s:s,s:O,s:s,s:s}", "type", "capability_request", "request_id",
                            "00000000-0000-4000-8000-000000000001", "capability", "llm.chat", "input", in, "requester",
                            pk, "deadline", "2030-01-01T00:00:00Z");
    char *text = json_dumps(doc, JSON_COMPACT);
    assert_int_equal(gm_agent_request_parse(text, strlen(text), &r, &err), GM_ETOOBIG);
    free(text);
    json_decref(doc);
    json_decref(in);
    free(big);
    gm_signer_wipe(&me);
}

static void test_garbage_requests_refused(void **state)
{
    (void)state;
    gm_agent_request r;
    gm_error err = {0};
    const char *bad[] = {
        "not json",
        "[]",
        "{\"type\":\"capability_response\"}",
        "{\"type\":\"capability_request\",\"request_id\":\"x\",\"capability\":\"a.b\",\"input\":{},"
        "\"requester\":\"A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=\",\"deadline\":\"2030-01-01T00:00:00Z\"}",
        "{\"type\":\"capability_request\",\"request_id\":\"00000000-0000-4000-8000-000000000001\",\"capability\":\"A B\","
        "\"input\":{},\"requester\":\"A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=\",\"deadline\":\"2030-01-01T00:00:00Z\"}",
        "{\"type\":\"capability_request\",\"request_id\":\"00000000-0000-4000-8000-000000000001\",\"capability\":\"a.b\","
        "\"requester\":\"A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=\",\"deadline\":\"2030-01-01T00:00:00Z\"}",
        "{\"type\":\"capability_request\",\"request_id\":\"00000000-0000-4000-8000-000000000001\",\"capability\":\"a.b\","
        "\"input\":{},\"requester\":\"short\",\"deadline\":\"2030-01-01T00:00:00Z\"}",
        "{\"type\":\"capability_request\",\"request_id\":\"00000000-0000-4000-8000-000000000001\",\"capability\":\"a.b\","
        "\"input\":{},\"requester\":\"A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=\",\"deadline\":\"tomorrow\"}",
        "{\"type\":\"capability_request\",\"type\":\"capability_request\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_not_equal(gm_agent_request_parse(bad[i], strlen(bad[i]), &r, &err), 0);
}

static void test_response_output_or_error_exactly_one(void **state)
{
    (void)state;
    gm_signer p;
    gm_agent_response r, r2;
    gm_error err = {0};
    tk_signer(&p, 0x60, "node");
    const char *rid = "00000000-0000-4000-8000-000000000001";
    json_t *out = json_pack("{s:s}", "text", "hi");
    assert_int_equal(gm_agent_response_new(&r, rid, "llm.chat", p.pk, out, "x", "y", NULL, &err), GM_EINVAL);
    assert_int_equal(gm_agent_response_new(&r, rid, "llm.chat", p.pk, NULL, NULL, NULL, NULL, &err), GM_EINVAL);
    assert_int_equal(gm_agent_response_new(&r, rid, "llm.chat", p.pk, out, NULL, NULL, NULL, &err), 0);
    char *text;
    size_t len;
    assert_int_equal(gm_agent_envelope_dump(r.doc, &text, &len, &err), 0);
    assert_int_equal(gm_agent_response_parse(text, len, &r2, &err), 0);
    assert_null(r2.error_code);
    assert_string_equal(json_string_value(json_object_get(r2.output, "text")), "hi");
    free(text);
    gm_agent_response_free(&r2);
    gm_agent_response_free(&r);
    assert_int_equal(gm_agent_response_new(&r, rid, "llm.chat", p.pk, NULL, "unknown_capability", "no", NULL, &err), 0);
    assert_int_equal(gm_agent_envelope_dump(r.doc, &text, &len, &err), 0);
    assert_int_equal(gm_agent_response_parse(text, len, &r2, &err), 0);
    assert_string_equal(r2.error_code, "unknown_capability");
    assert_null(r2.output);
    free(text);
    gm_agent_response_free(&r2);
    /* both members set on the wire: refused */
    json_object_set_new(r.doc, "output", json_string("also"));
    text = json_dumps(r.doc, JSON_COMPACT);
    assert_int_equal(gm_agent_response_parse(text, strlen(text), &r2, &err), GM_EPROTO);
    free(text);
    gm_agent_response_free(&r);
    assert_int_equal(gm_agent_response_parse("garbage", 7, &r2, &err), GM_EPROTO);
    json_decref(out);
    gm_signer_wipe(&p);
}

static size_t compact_size(const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT);
    size_t n = strlen(s);
    free(s);
    return n;
}

/* A long text (a model's answer) is cut to fit the envelope, at a character boundary, with a
 * marker saying how much was kept; the response then builds. */
static void test_output_fit_cuts_long_text_with_marker(void **state)
{
    (void)state;
    static const char *const units[] = {"a", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\x01", "\""};
    gm_signer me;
    gm_error err = {0};
    tk_signer(&me, 0x61, "node");
    for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
        size_t ul = strlen(units[u]), n = 40000 / ul * ul;
        char *text = malloc(n + 1);
        for (size_t i = 0; i < n; i += ul)
            memcpy(text + i, units[u], ul);
        text[n] = '\0';
        json_t *out = json_pack("{s:s,s:s}", "text", text, "model", "m");
        size_t kept, total;
        assert_int_equal(gm_agent_output_fit(out, "text", &kept, &total, &err), 0);
        assert_int_equal(total, n);
        assert_true(kept < total && kept > 0 && kept % ul == 0);
        assert_true(compact_size(out) <= GM_AGENT_OUTPUT_MAX);
        assert_string_equal(json_string_value(json_object_get(out, "truncated")), "size");
        const char *t = json_string_value(json_object_get(out, "text"));
        char marker[96];
        snprintf(marker, sizeof marker, "\n[truncated by genesis-mesh: %zu of %zu bytes kept]", kept, total);
        assert_int_equal(memcmp(t, text, kept), 0);
        assert_string_equal(t + kept, marker);
        gm_agent_response resp;
        uint8_t pk[GM_PK_LEN] = {1};
        assert_int_equal(gm_agent_response_new(&resp, "0b7e4bde-5d25-4d4b-9f0a-1e7c3c3b8b01", "llm.chat", pk, out, NULL,
                                               NULL, NULL, &err), 0);
        gm_agent_response_free(&resp);
        json_decref(out);
        free(text);
    }
    /* Fits already: untouched. Not a string, or too big without it: refused. */
    json_t *small = json_pack("{s:s}", "text", "short");
    size_t kept, total;
    assert_int_equal(gm_agent_output_fit(small, "text", &kept, &total, &err), 0);
    assert_int_equal(kept, 5);
    assert_int_equal(total, 5);
    assert_string_equal(json_string_value(json_object_get(small, "text")), "short");
    assert_null(json_object_get(small, "truncated"));
    assert_int_equal(gm_agent_output_fit(small, "nope", &kept, &total, &err), GM_EINVAL);
    json_decref(small);
    char *pad = malloc(40000);
    memset(pad, 'p', 39999);
    pad[39999] = '\0';
    json_t *fat = json_pack("{s:s,s:s}", "text", "x", "other", pad);
    assert_int_equal(gm_agent_output_fit(fat, "text", &kept, &total, &err), GM_ETOOBIG);
    json_decref(fat);
    free(pad);
    gm_signer_wipe(&me);
}

static void test_request_time_left_follows_deadline(void **state)
{
    (void)state;
    gm_agent_request r;
    gm_error err = {0};
    uint8_t pk[GM_PK_LEN] = {2};
    json_t *in = json_pack("{s:s}", "question", "q");
    assert_int_equal(gm_agent_request_new(&r, "planner.answer", in, pk, 20000, &err), 0);
    long left = gm_agent_request_time_left_ms(&r);
    assert_true(left > 0 && left <= 20000);
    r.deadline.unix_s -= 60;
    assert_true(gm_agent_request_time_left_ms(&r) < 0);
    gm_agent_request_free(&r);
    json_decref(in);
}

int main(void)
{
    gm_error err = {0};
    if (gm_init(&err) != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_round_trip),
        cmocka_unit_test(test_output_fit_cuts_long_text_with_marker),
        cmocka_unit_test(test_request_time_left_follows_deadline),
        cmocka_unit_test(test_oversized_input_refused),
        cmocka_unit_test(test_garbage_requests_refused),
        cmocka_unit_test(test_response_output_or_error_exactly_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
