/* Provenance: each step signed by its agent's node key; a requester rejects forged,
 * tampered or misattributed steps. */
#include "agent_testkit.h"
#include "agent_internal.h"

static const char *RID = "00000000-0000-4000-8000-000000000001";
static const char *SUB = "00000000-0000-4000-8000-000000000002";

static void chain(json_t *steps, const gm_signer *planner, const gm_signer *repo)
{
    gm_error err = {0};
    assert_int_equal(gm_agent_step_add(steps, planner, "planner-1", "discovered", "repo.summary", RID, "2 usable", &err), 0);
    assert_int_equal(gm_agent_step_add(steps, planner, "planner-1", "routed", "repo.summary", RID, "to repo-agent-a", &err), 0);
    assert_int_equal(gm_agent_step_add(steps, repo, "repo-agent-a", "executed", "repo.summary", SUB, "answered", &err), 0);
    assert_int_equal(gm_agent_step_add(steps, planner, "planner-1", "combined", "planner.answer", RID, "done", &err), 0);
}

static void test_valid_chain_verifies(void **state)
{
    (void)state;
    gm_signer planner, repo;
    gm_error err = {0};
    tk_signer(&planner, 0x60, "p");
    tk_signer(&repo, 0x70, "r");
    json_t *steps = json_array();
    chain(steps, &planner, &repo);
    assert_int_equal(gm_agent_provenance_verify(steps, RID, planner.pk, &err), 0);
    json_decref(steps);
    gm_signer_wipe(&planner);
    gm_signer_wipe(&repo);
}

static void test_forged_step_rejected(void **state)
{
    (void)state;
    gm_signer planner, repo;
    gm_error err = {0};
    tk_signer(&planner, 0x60, "p");
    tk_signer(&repo, 0x70, "r");
    json_t *steps = json_array();
    chain(steps, &planner, &repo);
    /* the planner rewrites what the repo agent said: the repo's signature no longer matches */
    json_object_set_new(json_array_get(steps, 2), "detail", json_string("I said something else"));
    assert_int_equal(gm_agent_provenance_verify(steps, RID, planner.pk, &err), GM_ESIG);
    assert_non_null(strstr(err.msg, "step 3"));
    json_decref(steps);
    /* a step signed by the planner but claiming to be by the repo's key */
    steps = json_array();
    chain(steps, &planner, &repo);
    json_t *forged = json_array();
    assert_int_equal(gm_agent_step_add(forged, &planner, "repo-agent-a", "executed", "repo.summary", SUB, "x", &err), 0);
    json_object_set_new(json_array_get(forged, 0), "signer", json_string(repo.pk_b64));
    json_array_append(steps, json_array_get(forged, 0));
    assert_int_equal(gm_agent_provenance_verify(steps, RID, planner.pk, &err), GM_ESIG);
    json_decref(forged);
    json_decref(steps);
    gm_signer_wipe(&planner);
    gm_signer_wipe(&repo);
}

static void test_step_for_our_request_must_be_by_provider(void **state)
{
    (void)state;
    gm_signer planner, repo;
    gm_error err = {0};
    tk_signer(&planner, 0x60, "p");
    tk_signer(&repo, 0x70, "r");
    json_t *steps = json_array();
    chain(steps, &planner, &repo);
    /* the answer came from repo, yet steps for our request id are by the planner */
    assert_int_equal(gm_agent_provenance_verify(steps, RID, repo.pk, &err), GM_ESIG);
    /* no step at all for our request */
    assert_int_equal(gm_agent_provenance_verify(steps, "00000000-0000-4000-8000-000000000009", planner.pk, &err),
                     GM_EPROTO);
    json_decref(steps);
    gm_signer_wipe(&planner);
    gm_signer_wipe(&repo);
}

/* A step signed after the fact (the caller's records of a request, signed while the provider
 * works) carries the time it happened, not the time of signing, and verifies; its time cannot
 * be changed afterwards. */
static void test_step_signed_later_keeps_its_time(void **state)
{
    (void)state;
    gm_signer planner;
    gm_error err = {0};
    tk_signer(&planner, 0x60, "p");
    gm_time then;
    assert_int_equal(gm_time_parse("2026-01-02T03:04:05.123456Z", &then, &err), 0);
    json_t *steps = json_array();
    assert_int_equal(gm_agent_step_add_at(steps, &planner, "planner-1", "routed", "repo.summary", RID, "to repo-agent-a",
                                          then, &err),
                     0);
    json_t *s0 = json_array_get(steps, 0);
    gm_time got;
    assert_int_equal(gm_time_parse(json_string_value(json_object_get(s0, "at")), &got, &err), 0);
    assert_int_equal(gm_time_cmp(&got, &then), 0);
    assert_int_equal(gm_agent_step_verify(s0, &err), 0);
    json_object_set_new(s0, "at", json_string("2026-01-02T03:04:06.123456Z"));
    assert_int_equal(gm_agent_step_verify(s0, &err), GM_ESIG);
    json_decref(steps);
    gm_signer_wipe(&planner);
}

static void test_step_shape_strict(void **state)
{
    (void)state;
    gm_signer p;
    gm_error err = {0};
    tk_signer(&p, 0x60, "p");
    json_t *steps = json_array();
    assert_int_equal(gm_agent_step_add(steps, &p, "a", "teleported", "x.y", RID, "", &err), GM_EINVAL);
    assert_int_equal(gm_agent_step_add(steps, &p, "a", "executed", "x.y", RID, "", &err), 0);
    json_t *s = json_array_get(steps, 0);
    assert_int_equal(gm_agent_step_verify(s, &err), 0);
    json_object_set_new(s, "extra", json_true());
    assert_int_equal(gm_agent_step_verify(s, &err), GM_EPROTO);
    json_object_del(s, "extra");
    json_object_set_new(s, "action", json_string("teleported"));
    assert_int_equal(gm_agent_step_verify(s, &err), GM_EPROTO);
    json_object_set_new(s, "action", json_string("failed")); /* valid action, but not what was signed */
    assert_int_equal(gm_agent_step_verify(s, &err), GM_ESIG);
    json_decref(steps);
    gm_signer_wipe(&p);
}

int main(void)
{
    gm_error err = {0};
    if (gm_init(&err) != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_chain_verifies),
        cmocka_unit_test(test_forged_step_rejected),
        cmocka_unit_test(test_step_for_our_request_must_be_by_provider),
        cmocka_unit_test(test_step_shape_strict),
        cmocka_unit_test(test_step_signed_later_keeps_its_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
