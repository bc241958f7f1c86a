/* Agent descriptors: building, signing, strict parsing, the registry time window, and
 * capability names (colon form accepted as the dotted one). */
#include "agent_testkit.h"
#include "core_internal.h"

static void test_capability_colon_form_normalizes_to_dotted(void **state)
{
    (void)state;
    char out[GM_AGENT_CAP_MAX + 1];
    gm_error err = {0};
    assert_int_equal(gm_agent_cap_normalize("llm:chat", out, &err), 0);
    assert_string_equal(out, "llm.chat");
    assert_int_equal(gm_agent_cap_normalize("planner.answer", out, &err), 0);
    assert_string_equal(out, "planner.answer");
    assert_int_equal(gm_agent_cap_normalize("a:b.c_d-1", out, &err), 0);
    assert_string_equal(out, "a.b.c_d-1");
}

static void test_capability_bad_names_refused(void **state)
{
    (void)state;
    char out[GM_AGENT_CAP_MAX + 1];
    gm_error err = {0};
    const char *bad[] = {"", "LLM.chat", "llm..chat", ".llm", "llm.", "llm chat", "llm/chat", "llm:", "é"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(gm_agent_cap_normalize(bad[i], out, &err), GM_EINVAL);
    char longname[GM_AGENT_CAP_MAX + 2];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(gm_agent_cap_normalize(longname, out, &err), GM_EINVAL);
}

static void test_descriptor_signed_by_node_key_verifies(void **state)
{
    (void)state;
    gm_signer node;
    gm_agent_desc d;
    gm_error err = {0};
    tk_signer(&node, 0x60, "node");
    tk_desc(&d, &node, "llm-1", "TESTNET", "llm:chat");
    assert_int_equal(gm_agent_desc_verify(&d, &err), 0);
    assert_string_equal(gm_agent_desc_cap(&d, 0), "llm.chat");
    assert_true(gm_agent_desc_has_cap(&d, "llm.chat"));
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(d.doc, "signatures"), 0), "key_id")),
                        node.pk_b64);
    assert_true(json_is_object(json_object_get(d.doc, "metadata")));
    /* a round trip through text keeps it verifiable */
    char *text = json_dumps(d.doc, JSON_COMPACT);
    gm_agent_desc d2;
    assert_int_equal(gm_agent_desc_parse(text, strlen(text), &d2, &err), 0);
    assert_int_equal(gm_agent_desc_verify(&d2, &err), 0);
    free(text);
    gm_agent_desc_free(&d2);
    gm_agent_desc_free(&d);
    gm_signer_wipe(&node);
}

static void test_descriptor_tampered_or_signed_by_other_key_refused(void **state)
{
    (void)state;
    gm_signer node, other;
    gm_agent_desc d;
    gm_error err = {0};
    tk_signer(&node, 0x60, "node");
    tk_signer(&other, 0x70, "other");
    tk_desc(&d, &node, "llm-1", "TESTNET", "llm.chat");
    json_object_set_new(d.doc, "metadata", json_pack("{s:s}", "tampered", "yes"));
    assert_int_equal(gm_agent_desc_verify(&d, &err), GM_ESIG);
    gm_agent_desc_free(&d);
    /* signed by another key but claiming node's public key */
    tk_desc(&d, &other, "llm-1", "TESTNET", "llm.chat");
    json_t *src = json_deep_copy(d.doc);
    json_object_set_new(src, "node_public_key", json_string(node.pk_b64));
    gm_agent_desc d2;
    assert_int_equal(gm_agent_desc_from_json(src, &d2, &err), 0);
    assert_int_equal(gm_agent_desc_verify(&d2, &err), GM_ESIG);
    json_decref(src);
    gm_agent_desc_free(&d2);
    gm_agent_desc_free(&d);
    gm_signer_wipe(&node);
    gm_signer_wipe(&other);
}

static void test_descriptor_window_enforced(void **state)
{
    (void)state;
    gm_signer node;
    gm_agent_desc d;
    gm_error err = {0};
    tk_signer(&node, 0x60, "node");
    json_t *caps = json_pack("[s]", "repo.summary");
    gm_time now = gm_time_now();
    assert_int_equal(gm_agent_desc_build(&d, &node, "a", "T", caps, "", 0, now, 600, NULL, &err), 0);
    assert_int_equal(gm_agent_desc_check_window(&d, now, GM_AGENT_TTL_MAX_S, &err), 0);
    assert_int_equal(gm_agent_desc_check_window(&d, gm_time_add(now, 301), GM_AGENT_TTL_MAX_S, &err), GM_EEXPIRED);
    assert_int_equal(gm_agent_desc_check_window(&d, gm_time_add(now, -301), GM_AGENT_TTL_MAX_S, &err), GM_EEXPIRED);
    assert_int_equal(gm_agent_desc_check_live(&d, gm_time_add(now, 600), &err), 0);
    assert_int_equal(gm_agent_desc_check_live(&d, gm_time_add(now, 600 + GM_CLOCK_SKEW_S + 1), &err), GM_EEXPIRED);
    gm_agent_desc_free(&d);
    /* a lifetime over the maximum is refused by the window check */
    assert_int_equal(gm_agent_desc_build(&d, &node, "a", "T", caps, "", 0, now, GM_AGENT_TTL_MAX_S + 1, NULL, &err), 0);
    assert_int_equal(gm_agent_desc_check_window(&d, now, GM_AGENT_TTL_MAX_S, &err), GM_EEXPIRED);
    gm_agent_desc_free(&d);
    json_decref(caps);
    gm_signer_wipe(&node);
}

static void test_descriptor_strict_parse(void **state)
{
    (void)state;
    gm_signer node;
    gm_agent_desc d, d2;
    gm_error err = {0};
    tk_signer(&node, 0x60, "node");
    tk_desc(&d, &node, "x", "T", "llm.chat");
    const char *drop[] = {"agent_id", "node_public_key", "network_name", "capabilities", "endpoint", "registered_at",
                          "expires_at", "signatures"};
    for (size_t i = 0; i < sizeof drop / sizeof drop[0]; i++) {
        json_t *src = json_deep_copy(d.doc);
        json_object_del(src, drop[i]);
        assert_int_not_equal(gm_agent_desc_from_json(src, &d2, &err), 0);
        json_decref(src);
    }
    json_t *src = json_deep_copy(d.doc);
    json_object_set_new(src, "agent_id", json_string("bad id with spaces"));
    assert_int_equal(gm_agent_desc_from_json(src, &d2, &err), GM_EFORMAT);
    json_object_set_new(src, "agent_id", json_string("x"));
    json_object_set_new(src, "capabilities", json_array());
    assert_int_equal(gm_agent_desc_from_json(src, &d2, &err), GM_EFORMAT);
    json_object_set_new(src, "capabilities", json_pack("[s]", "Bad Cap"));
    assert_int_not_equal(gm_agent_desc_from_json(src, &d2, &err), 0);
    json_object_set_new(src, "capabilities", json_pack("[s]", "llm.chat"));
    json_object_set_new(src, "metadata", json_pack("{s:f}", "float", 1.5));
    assert_int_not_equal(gm_agent_desc_from_json(src, &d2, &err), 0);
    json_decref(src);
    assert_int_equal(gm_agent_desc_parse("{\"agent_id\":1", 13, &d2, &err), GM_EFORMAT);
    gm_agent_desc_free(&d);
    gm_signer_wipe(&node);
}

int main(void)
{
    gm_error err = {0};
    if (gm_init(&err) != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_capability_colon_form_normalizes_to_dotted),
        cmocka_unit_test(test_capability_bad_names_refused),
        cmocka_unit_test(test_descriptor_signed_by_node_key_verifies),
        cmocka_unit_test(test_descriptor_tampered_or_signed_by_other_key_refused),
        cmocka_unit_test(test_descriptor_window_enforced),
        cmocka_unit_test(test_descriptor_strict_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
