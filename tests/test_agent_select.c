/* Selection: only providers whose descriptor and certificate check out under our own
 * genesis and CRL are usable, in a deterministic order (agent_id, then node key). */
#include "agent_testkit.h"
#include "agent_internal.h"
#include "core_internal.h"

typedef struct fx {
    tk_net net;
    gm_signer a, b, c;
    gm_cert ca, cb, cc;
    gm_agent_desc da, db, dc;
    gm_crl crl0;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    tk_net_init(&f->net, "TESTNET");
    tk_signer(&f->a, 0x60, "a");
    tk_signer(&f->b, 0x70, "b");
    tk_signer(&f->c, 0x80, "c");
    tk_cert(&f->ca, &f->net.na, "TESTNET", &f->a);
    tk_cert(&f->cb, &f->net.na, "TESTNET", &f->b);
    tk_cert(&f->cc, &f->net.na, "TESTNET", &f->c);
    tk_desc(&f->da, &f->a, "repo-agent-a", "TESTNET", "repo.summary");
    tk_desc(&f->db, &f->b, "repo-agent-b", "TESTNET", "repo.summary");
    tk_desc(&f->dc, &f->c, "repo-agent-c", "TESTNET", "repo:summary");
    tk_empty_crl(&f->crl0, &f->net.na);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    gm_agent_desc_free(&f->da);
    gm_agent_desc_free(&f->db);
    gm_agent_desc_free(&f->dc);
    gm_cert_free(&f->ca);
    gm_cert_free(&f->cb);
    gm_cert_free(&f->cc);
    gm_crl_free(&f->crl0);
    gm_signer_wipe(&f->a);
    gm_signer_wipe(&f->b);
    gm_signer_wipe(&f->c);
    tk_net_free(&f->net);
    free(f);
    return 0;
}

static void test_selection_is_deterministic(void **state)
{
    fx *f = *state;
    gm_error err = {0};
    gm_agent_candidates cs;
    /* listed out of order */
    json_t *l = json_pack("[o,o,o]", tk_entry(&f->dc, &f->cc), tk_entry(&f->db, &f->cb), tk_entry(&f->da, &f->ca));
    assert_int_equal(gm_agent_select(l, "repo.summary", &f->net.g, &f->crl0, gm_time_now(), NULL, 0, &cs, &err), 0);
    assert_int_equal(cs.n_usable, 3);
    assert_string_equal(cs.v[0].desc.agent_id, "repo-agent-a");
    assert_string_equal(cs.v[1].desc.agent_id, "repo-agent-b");
    assert_string_equal(cs.v[2].desc.agent_id, "repo-agent-c");
    gm_agent_candidates_free(&cs);
    /* colon form of the asked capability is the same capability */
    assert_int_equal(gm_agent_select(l, "repo:summary", &f->net.g, &f->crl0, gm_time_now(), NULL, 0, &cs, &err), 0);
    assert_int_equal(cs.n_usable, 3);
    gm_agent_candidates_free(&cs);
    json_decref(l);
}

static void test_revoked_provider_never_selected(void **state)
{
    fx *f = *state;
    gm_error err = {0};
    gm_agent_candidates cs;
    gm_crl crl1;
    json_t *rev = json_pack("[{s:s,s:s,s:s,s:s}]", "certificate_id", f->ca.cert_id, "revoked_at", "2026-01-01T00:00:00Z",
                            "reason", "key_compromise", "issuer", "na-local");
    assert_int_equal(gm_crl_issue(&crl1, &f->net.na, 1, rev, gm_time_now(), 86400, &err), 0);
    json_t *l = json_pack("[o,o]", tk_entry(&f->da, &f->ca), tk_entry(&f->db, &f->cb));
    /* the NA still lists repo-agent-a (a stale or lying NA): our CRL check drops it */
    assert_int_equal(gm_agent_select(l, "repo.summary", &f->net.g, &crl1, gm_time_now(), NULL, 0, &cs, &err), 0);
    assert_int_equal(cs.n_usable, 1);
    assert_string_equal(cs.v[0].desc.agent_id, "repo-agent-b");
    assert_false(cs.v[1].usable);
    assert_non_null(strstr(cs.v[1].reason, "revoked"));
    gm_agent_candidates_free(&cs);
    json_decref(l);
    json_decref(rev);
    gm_crl_free(&crl1);
}

static void test_unproven_providers_never_selected(void **state)
{
    fx *f = *state;
    gm_error err = {0};
    gm_agent_candidates cs;
    gm_signer rogue_na;
    gm_cert rogue_cert, wrongnet_cert;
    gm_agent_desc wrongnet_desc;
    tk_signer(&rogue_na, 0x90, "na-local");
    tk_cert(&rogue_cert, &rogue_na, "TESTNET", &f->a);          /* not signed by our NA */
    tk_cert(&wrongnet_cert, &f->net.na, "OTHERNET", &f->b);     /* another network */
    tk_desc(&wrongnet_desc, &f->c, "repo-agent-c", "OTHERNET", "repo.summary");
    json_t *tampered = json_deep_copy(f->db.doc);
    json_object_set_new(tampered, "metadata", json_pack("{s:s}", "evil", "yes"));
    json_t *l = json_pack("[o,o,o,o,{s:O,s:O},{s:O}]", tk_entry(&f->da, &rogue_cert), tk_entry(&f->db, &wrongnet_cert),
                          tk_entry(&wrongnet_desc, &f->cc), tk_entry(&f->da, &f->cb), "descriptor", tampered,
                          "certificate", f->cb.doc, "descriptor", f->dc.doc);
    assert_int_equal(gm_agent_select(l, "repo.summary", &f->net.g, &f->crl0, gm_time_now(), NULL, 0, &cs, &err), 0);
    assert_int_equal(cs.n, 6);
    assert_int_equal(cs.n_usable, 0);
    for (size_t i = 0; i < cs.n; i++)
        assert_true(cs.v[i].reason[0] != '\0');
    gm_agent_candidates_free(&cs);
    /* wrong capability and expired descriptors are not usable either */
    json_decref(l);
    l = json_pack("[o]", tk_entry(&f->da, &f->ca));
    assert_int_equal(gm_agent_select(l, "llm.chat", &f->net.g, &f->crl0, gm_time_now(), NULL, 0, &cs, &err), 0);
    assert_int_equal(cs.n_usable, 0);
    gm_agent_candidates_free(&cs);
    assert_int_equal(gm_agent_select(l, "repo.summary", &f->net.g, &f->crl0, gm_time_add(gm_time_now(), 3600), NULL, 0,
                                     &cs, &err), 0);
    assert_int_equal(cs.n_usable, 0);
    gm_agent_candidates_free(&cs);
    json_decref(l);
    json_decref(tampered);
    gm_agent_desc_free(&wrongnet_desc);
    gm_cert_free(&rogue_cert);
    gm_cert_free(&wrongnet_cert);
    gm_signer_wipe(&rogue_na);
}

static void test_excluded_provider_skipped(void **state)
{
    fx *f = *state;
    gm_error err = {0};
    gm_agent_candidates cs;
    uint8_t ex[1][GM_PK_LEN];
    memcpy(ex[0], f->a.pk, GM_PK_LEN);
    json_t *l = json_pack("[o,o]", tk_entry(&f->da, &f->ca), tk_entry(&f->db, &f->cb));
    assert_int_equal(gm_agent_select(l, "repo.summary", &f->net.g, &f->crl0, gm_time_now(),
                                     (const uint8_t(*)[GM_PK_LEN])ex, 1, &cs, &err), 0);
    assert_int_equal(cs.n_usable, 1);
    assert_string_equal(cs.v[0].desc.agent_id, "repo-agent-b");
    gm_agent_candidates_free(&cs);
    json_decref(l);
    json_t *notarray = json_object();
    assert_int_equal(gm_agent_select(notarray, "repo.summary", &f->net.g, &f->crl0, gm_time_now(), NULL, 0, &cs, &err),
                     GM_EPROTO);
    json_decref(notarray);
}

/* Issue 17: after an NA key rotation a provider renews under the new NA key; a requester that
 * trusts the old and the new key (its node holds both blocks) selects it, one that trusts only
 * the old key does not, and a context handed both blocks (gm_agent_ctx_trust) trusts both. */
static void test_provider_under_a_successor_na_key_selected_when_trusted(void **state)
{
    fx *f = *state;
    gm_error err = {0};
    gm_signer na2;
    gm_genesis g2;
    gm_cert cb2;
    gm_agent_candidates cs;
    gm_time now = gm_time_now();
    tk_signer(&na2, 0x50, "na-2");
    assert_int_equal(gm_genesis_create(&g2, "TESTNET", f->net.root.pk, na2.pk, gm_time_add(now, -3600),
                                       gm_time_add(now, 86400), NULL, &err), 0);
    assert_int_equal(gm_genesis_sign(&g2, &f->net.root, &err), 0);
    tk_cert(&cb2, &na2, "TESTNET", &f->b);
    json_t *l = json_pack("[o,o]", tk_entry(&f->da, &f->ca), tk_entry(&f->db, &cb2));
    assert_int_equal(gm_agent_select(l, "repo.summary", &f->net.g, &f->crl0, now, NULL, 0, &cs, &err), 0);
    assert_int_equal(cs.n_usable, 1);
    assert_non_null(strstr(cs.v[1].reason, "not signed by this network's NA"));
    gm_agent_candidates_free(&cs);
    const gm_genesis *both[2] = {&g2, &f->net.g};
    assert_int_equal(gm_agent_select_any(l, "repo.summary", both, 2, &f->crl0, now, NULL, 0, &cs, &err), 0);
    assert_int_equal(cs.n_usable, 2);
    gm_agent_candidates_free(&cs);
    assert_int_not_equal(gm_agent_select_any(l, "repo.summary", both, 0, &f->crl0, now, NULL, 0, &cs, &err), 0);

    gm_agent_ctx c;
    const gm_genesis *gs[3], *others[1] = {&f->net.g};
    memset(&c, 0, sizeof c);
    assert_int_equal(gm_genesis_dup(&f->net.g, &c.genesis, &err), 0);
    assert_int_equal(gm_agent_ctx_trusted(&c, gs), 1);
    assert_int_equal(gm_agent_ctx_trust(&c, &g2, others, 1, &err), 0);
    assert_int_equal(gm_agent_ctx_trusted(&c, gs), 2);
    assert_memory_equal(gs[0]->na_pk, na2.pk, GM_PK_LEN);
    assert_memory_equal(gs[1]->na_pk, f->net.na.pk, GM_PK_LEN);
    assert_int_equal(gm_agent_select_any(l, "repo.summary", gs, 2, &f->crl0, now, NULL, 0, &cs, &err), 0);
    assert_int_equal(cs.n_usable, 2);
    gm_agent_candidates_free(&cs);
    gm_agent_ctx_close(&c);
    assert_int_equal(c.n_also, 0);

    json_decref(l);
    gm_cert_free(&cb2);
    gm_genesis_free(&g2);
    gm_signer_wipe(&na2);
}

int main(void)
{
    gm_error err = {0};
    if (gm_init(&err) != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_selection_is_deterministic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoked_provider_never_selected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unproven_providers_never_selected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_excluded_provider_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_provider_under_a_successor_na_key_selected_when_trusted, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
