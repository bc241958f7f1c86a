/* Signers of a provenance chain: a requester accepts an answer only when the key behind every
 * step, nested ones included, holds a valid, unrevoked certificate of its own network, and
 * providers attach (and pass on) exactly those certificates. */
#include "agent_testkit.h"
#include "agent_internal.h"
#include "core_internal.h"

static const char *RID = "00000000-0000-4000-8000-000000000001";
static const char *SUB = "00000000-0000-4000-8000-000000000002";
static const char *SUB2 = "00000000-0000-4000-8000-000000000003";

typedef struct fx {
    tk_net net;
    gm_signer planner, repo, llm, other_na;
    gm_cert c_planner, c_repo, c_llm;
    gm_crl crl0;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    tk_net_init(&f->net, "TESTNET");
    tk_signer(&f->planner, 0x60, "planner");
    tk_signer(&f->repo, 0x70, "repo");
    tk_signer(&f->llm, 0x80, "llm");
    tk_signer(&f->other_na, 0x90, "na-other");
    tk_cert(&f->c_planner, &f->net.na, "TESTNET", &f->planner);
    tk_cert(&f->c_repo, &f->net.na, "TESTNET", &f->repo);
    tk_cert(&f->c_llm, &f->net.na, "TESTNET", &f->llm);
    tk_empty_crl(&f->crl0, &f->net.na);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    gm_cert_free(&f->c_planner);
    gm_cert_free(&f->c_repo);
    gm_cert_free(&f->c_llm);
    gm_crl_free(&f->crl0);
    gm_signer_wipe(&f->planner);
    gm_signer_wipe(&f->repo);
    gm_signer_wipe(&f->llm);
    gm_signer_wipe(&f->other_na);
    tk_net_free(&f->net);
    free(f);
    return 0;
}

/* What planner-1 returns: its own steps around the nested steps of repo-agent-a and llm-1. */
static json_t *planner_chain(fx *f)
{
    gm_error err = {0};
    json_t *s = json_array();
    assert_int_equal(gm_agent_step_add(s, &f->planner, "planner-1", "discovered", "repo.summary", RID, "2 usable", &err), 0);
    assert_int_equal(gm_agent_step_add(s, &f->planner, "planner-1", "routed", "repo.summary", RID, "to repo-agent-a", &err), 0);
    assert_int_equal(gm_agent_step_add(s, &f->repo, "repo-agent-a", "executed", "repo.summary", SUB, "summarized", &err), 0);
    assert_int_equal(gm_agent_step_add(s, &f->planner, "planner-1", "routed", "llm.chat", RID, "to llm-1", &err), 0);
    assert_int_equal(gm_agent_step_add(s, &f->llm, "llm-1", "executed", "llm.chat", SUB2, "chat", &err), 0);
    assert_int_equal(gm_agent_step_add(s, &f->planner, "planner-1", "executed", "planner.answer", RID, "done", &err), 0);
    assert_int_equal(gm_agent_provenance_verify(s, RID, f->planner.pk, &err), 0); /* signatures are fine */
    return s;
}

static json_t *certs_of(const gm_cert *a, const gm_cert *b, const gm_cert *c)
{
    json_t *v = json_array();
    if (a)
        json_array_append(v, a->doc);
    if (b)
        json_array_append(v, b->doc);
    if (c)
        json_array_append(v, c->doc);
    return v;
}

static const char *cert_pk(const json_t *c)
{
    return json_string_value(json_object_get(c, "node_public_key"));
}

static void test_valid_nested_chain_accepted(void **state)
{
    fx *f = *state;
    gm_error err = {0};
    json_t *steps = planner_chain(f);
    /* any order; a certificate nobody signed with is ignored */
    gm_cert stranger;
    gm_signer s;
    tk_signer(&s, 0xa0, "s");
    tk_cert(&stranger, &f->net.na, "TESTNET", &s);
    json_t *certs = certs_of(&f->c_llm, &stranger, &f->c_repo);
    json_array_append(certs, f->c_planner.doc);
    json_t *vouched = json_array();
    assert_int_equal(gm_agent_provenance_check_signers(steps, certs, &f->net.g, &f->crl0, gm_time_now(), vouched, &err),
                     0);
    /* one certificate per signer, in step order */
    assert_int_equal(json_array_size(vouched), 3);
    assert_string_equal(cert_pk(json_array_get(vouched, 0)), f->planner.pk_b64);
    assert_string_equal(cert_pk(json_array_get(vouched, 1)), f->repo.pk_b64);
    assert_string_equal(cert_pk(json_array_get(vouched, 2)), f->llm.pk_b64);
    /* with no CRL at hand the signature/network/validity checks still apply */
    assert_int_equal(gm_agent_provenance_check_signers(steps, certs, &f->net.g, NULL, gm_time_now(), NULL, &err), 0);
    json_decref(vouched);
    json_decref(certs);
    json_decref(steps);
    gm_cert_free(&stranger);
    gm_signer_wipe(&s);
}

static void test_signer_without_certificate_rejected(void **state)
{
    fx *f = *state;
    gm_error err = {0};
    json_t *steps = planner_chain(f);
    /* the provider's own certificate is there, the nested repo agent's is not */
    json_t *certs = certs_of(&f->c_planner, &f->c_llm, NULL);
    json_t *vouched = json_array();
    assert_int_equal(gm_agent_provenance_check_signers(steps, certs, &f->net.g, &f->crl0, gm_time_now(), vouched, &err),
                     GM_EAUTH);
    assert_non_null(strstr(err.msg, "step 3"));
    assert_non_null(strstr(err.msg, "repo-agent-a"));
    assert_non_null(strstr(err.msg, "no certificate"));
    assert_int_equal(json_array_size(vouched), 0); /* nothing vouched for a rejected answer */
    /* no certificates at all (an answer without the member) */
    assert_int_equal(gm_agent_provenance_check_signers(steps, NULL, &f->net.g, &f->crl0, gm_time_now(), NULL, &err),
                     GM_EAUTH);
    assert_non_null(strstr(err.msg, "step 1"));
    /* a certificate for another key does not cover the step */
    json_t *wrong = certs_of(&f->c_planner, &f->c_llm, &f->c_llm);
    assert_int_equal(gm_agent_provenance_check_signers(steps, wrong, &f->net.g, &f->crl0, gm_time_now(), NULL, &err),
                     GM_EAUTH);
    json_decref(wrong);
    json_decref(vouched);
    json_decref(certs);
    json_decref(steps);
}

static void test_signer_with_revoked_certificate_rejected(void **state)
{
    fx *f = *state;
    gm_error err = {0};
    gm_crl crl1;
    json_t *rev = json_pack("[{s:s,s:s,s:s,s:s}]", "certificate_id", f->c_llm.cert_id, "revoked_at",
                            "2026-01-01T00:00:00Z", "reason", "key_compromise", "issuer", "na-local");
    assert_int_equal(gm_crl_issue(&crl1, &f->net.na, 1, rev, gm_time_now(), 86400, &err), 0);
    json_decref(rev);
    json_t *steps = planner_chain(f);
    json_t *certs = certs_of(&f->c_planner, &f->c_repo, &f->c_llm);
    assert_int_equal(gm_agent_provenance_check_signers(steps, certs, &f->net.g, &crl1, gm_time_now(), NULL, &err),
                     GM_EREVOKED);
    assert_non_null(strstr(err.msg, "step 5"));
    assert_non_null(strstr(err.msg, "llm-1"));
    assert_non_null(strstr(err.msg, "revoked"));
    /* the same key with another, unrevoked certificate (renewed) is fine */
    gm_cert renewed;
    tk_cert(&renewed, &f->net.na, "TESTNET", &f->llm);
    json_array_append(certs, renewed.doc);
    json_t *vouched = json_array();
    assert_int_equal(gm_agent_provenance_check_signers(steps, certs, &f->net.g, &crl1, gm_time_now(), vouched, &err),
                     0);
    assert_string_equal(json_string_value(json_object_get(json_array_get(vouched, 2), "cert_id")), renewed.cert_id);
    json_decref(vouched);
    gm_cert_free(&renewed);
    json_decref(certs);
    json_decref(steps);
    gm_crl_free(&crl1);
}

static void test_signer_with_foreign_certificate_rejected(void **state)
{
    fx *f = *state;
    gm_error err = {0};
    json_t *steps = planner_chain(f);
    /* another network's NA vouches for the repo agent */
    gm_cert foreign;
    tk_cert(&foreign, &f->other_na, "OTHERNET", &f->repo);
    json_t *certs = certs_of(&f->c_planner, &foreign, &f->c_llm);
    assert_int_equal(gm_agent_provenance_check_signers(steps, certs, &f->net.g, &f->crl0, gm_time_now(), NULL, &err),
                     GM_ESIG);
    assert_non_null(strstr(err.msg, "step 3"));
    assert_non_null(strstr(err.msg, "not signed by this network's NA"));
    json_decref(certs);
    gm_cert_free(&foreign);
    /* a foreign NA using our network's name is still foreign */
    tk_cert(&foreign, &f->other_na, "TESTNET", &f->repo);
    certs = certs_of(&f->c_planner, &foreign, &f->c_llm);
    assert_int_equal(gm_agent_provenance_check_signers(steps, certs, &f->net.g, &f->crl0, gm_time_now(), NULL, &err),
                     GM_ESIG);
    json_decref(certs);
    gm_cert_free(&foreign);
    /* our NA, but for another network name */
    tk_cert(&foreign, &f->net.na, "OTHERNET", &f->repo);
    certs = certs_of(&f->c_planner, &foreign, &f->c_llm);
    assert_int_equal(gm_agent_provenance_check_signers(steps, certs, &f->net.g, &f->crl0, gm_time_now(), NULL, &err),
                     GM_EFORMAT);
    assert_non_null(strstr(err.msg, "OTHERNET"));
    json_decref(certs);
    gm_cert_free(&foreign);
    json_decref(steps);
}

static void test_expired_or_malformed_certificate_rejected(void **state)
{
    fx *f = *state;
    gm_error err = {0};
    json_t *steps = planner_chain(f);
    json_t *certs = certs_of(&f->c_planner, &f->c_repo, &f->c_llm);
    /* checked a week later, the one-day certificates have expired */
    assert_int_equal(gm_agent_provenance_check_signers(steps, certs, &f->net.g, &f->crl0,
                                                       gm_time_add(gm_time_now(), 7 * 86400), NULL, &err),
                     GM_EEXPIRED);
    /* a tampered certificate (roles added after the NA signed it) */
    json_t *tampered = json_deep_copy(f->c_repo.doc);
    json_object_set_new(tampered, "roles", json_pack("[s]", "role:supervisor"));
    json_array_set_new(certs, 1, tampered);
    assert_int_equal(gm_agent_provenance_check_signers(steps, certs, &f->net.g, &f->crl0, gm_time_now(), NULL, &err),
                     GM_ESIG);
    assert_non_null(strstr(err.msg, "step 3"));
    /* something that is not a certificate at all */
    json_array_set_new(certs, 1, json_pack("{s:s}", "hello", "world"));
    assert_int_equal(gm_agent_provenance_check_signers(steps, certs, &f->net.g, &f->crl0, gm_time_now(), NULL, &err),
                     GM_EPROTO);
    json_t *notarray = json_object();
    assert_int_equal(gm_agent_provenance_check_signers(steps, notarray, &f->net.g, &f->crl0, gm_time_now(), NULL, &err),
                     GM_EPROTO);
    json_decref(notarray);
    json_decref(certs);
    json_decref(steps);
}

/* Failover after a revocation: the planner's "failed" step names the revoked agent, but it is
 * the planner that signed it, so the answer stands. */
static void test_step_about_revoked_agent_signed_by_planner_accepted(void **state)
{
    fx *f = *state;
    gm_error err = {0};
    gm_crl crl1;
    json_t *rev = json_pack("[{s:s,s:s,s:s,s:s}]", "certificate_id", f->c_repo.cert_id, "revoked_at",
                            "2026-01-01T00:00:00Z", "reason", "key_compromise", "issuer", "na-local");
    assert_int_equal(gm_crl_issue(&crl1, &f->net.na, 1, rev, gm_time_now(), 86400, &err), 0);
    json_decref(rev);
    json_t *steps = json_array();
    assert_int_equal(gm_agent_step_add(steps, &f->planner, "planner-1", "failed", "repo.summary", RID,
                                       "failover: repo-agent-a, which served repo.summary before, is revoked", &err),
                     0);
    assert_int_equal(gm_agent_step_add(steps, &f->llm, "llm-1", "executed", "llm.chat", SUB2, "chat", &err), 0);
    assert_int_equal(gm_agent_step_add(steps, &f->planner, "planner-1", "executed", "planner.answer", RID, "ok", &err),
                     0);
    json_t *certs = certs_of(&f->c_planner, &f->c_llm, &f->c_repo);
    assert_int_equal(gm_agent_provenance_check_signers(steps, certs, &f->net.g, &crl1, gm_time_now(), NULL, &err), 0);
    /* ...whereas a step the revoked key signed itself is reported */
    assert_int_equal(gm_agent_step_add(steps, &f->repo, "repo-agent-a", "executed", "repo.summary", SUB, "x", &err), 0);
    assert_int_equal(gm_agent_provenance_check_signers(steps, certs, &f->net.g, &crl1, gm_time_now(), NULL, &err),
                     GM_EREVOKED);
    assert_non_null(strstr(err.msg, "step 4"));
    assert_non_null(strstr(err.msg, "repo-agent-a"));
    json_decref(certs);
    json_decref(steps);
    gm_crl_free(&crl1);
}

static void test_provider_attaches_one_certificate_per_signer(void **state)
{
    fx *f = *state;
    gm_error err = {0};
    json_t *steps = planner_chain(f);
    /* the planner's pool: its own certificate, then what nested calls vouched for (with repeats) */
    json_t *pool = certs_of(&f->c_planner, &f->c_repo, &f->c_repo);
    json_array_append(pool, f->c_llm.doc);
    json_t *att = gm_agent_provenance_certs_for(steps, pool);
    assert_int_equal(json_array_size(att), 3);
    assert_string_equal(cert_pk(json_array_get(att, 0)), f->planner.pk_b64);
    assert_string_equal(cert_pk(json_array_get(att, 1)), f->repo.pk_b64);
    assert_string_equal(cert_pk(json_array_get(att, 2)), f->llm.pk_b64);
    assert_int_equal(gm_agent_provenance_check_signers(steps, att, &f->net.g, &f->crl0, gm_time_now(), NULL, &err), 0);
    json_decref(att);
    /* a signer missing from the pool is left out, and the requester then refuses */
    json_t *small = certs_of(&f->c_planner, &f->c_llm, NULL);
    att = gm_agent_provenance_certs_for(steps, small);
    assert_int_equal(json_array_size(att), 2);
    assert_int_equal(gm_agent_provenance_check_signers(steps, att, &f->net.g, &f->crl0, gm_time_now(), NULL, &err),
                     GM_EAUTH);
    json_decref(att);
    json_decref(small);
    json_decref(pool);
    json_decref(steps);
}

static void test_response_carries_certificates(void **state)
{
    fx *f = *state;
    gm_error err = {0};
    gm_agent_response r, back;
    json_t *steps = planner_chain(f), *out = json_pack("{s:s}", "answer", "42");
    json_t *certs = certs_of(&f->c_planner, &f->c_repo, &f->c_llm);
    assert_int_equal(gm_agent_response_new(&r, RID, "planner.answer", f->planner.pk, out, NULL, NULL, steps, &err), 0);
    assert_int_equal(json_array_size(r.certificates), 0);
    assert_int_equal(gm_agent_response_set_certificates(&r, certs, &err), 0);
    char *text;
    size_t len;
    assert_int_equal(gm_agent_envelope_dump(r.doc, &text, &len, &err), 0);
    assert_int_equal(gm_agent_response_parse(text, len, &back, &err), 0);
    assert_int_equal(json_array_size(back.certificates), 3);
    assert_int_equal(gm_agent_provenance_check_signers(back.provenance, back.certificates, &f->net.g, &f->crl0,
                                                       gm_time_now(), NULL, &err),
                     0);
    gm_agent_response_free(&back);
    free(text);
    /* strict on the wire: an array of objects, bounded */
    json_t *bad = json_pack("[s]", "not a certificate");
    assert_int_equal(gm_agent_response_set_certificates(&r, bad, &err), GM_EINVAL);
    json_object_set_new(r.doc, "certificates", json_string("x"));
    assert_int_equal(gm_agent_envelope_dump(r.doc, &text, &len, &err), 0);
    assert_int_equal(gm_agent_response_parse(text, len, &back, &err), GM_EPROTO);
    free(text);
    json_object_set(r.doc, "certificates", bad);
    assert_int_equal(gm_agent_envelope_dump(r.doc, &text, &len, &err), 0);
    assert_int_equal(gm_agent_response_parse(text, len, &back, &err), GM_EPROTO);
    free(text);
    /* absent: parses, but vouches for nobody */
    json_object_del(r.doc, "certificates");
    assert_int_equal(gm_agent_envelope_dump(r.doc, &text, &len, &err), 0);
    assert_int_equal(gm_agent_response_parse(text, len, &back, &err), 0);
    assert_null(back.certificates);
    assert_int_equal(gm_agent_provenance_check_signers(back.provenance, back.certificates, &f->net.g, &f->crl0,
                                                       gm_time_now(), NULL, &err),
                     GM_EAUTH);
    gm_agent_response_free(&back);
    free(text);
    json_decref(bad);
    gm_agent_response_free(&r);
    json_decref(certs);
    json_decref(out);
    json_decref(steps);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_valid_nested_chain_accepted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signer_without_certificate_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signer_with_revoked_certificate_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signer_with_foreign_certificate_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_or_malformed_certificate_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_step_about_revoked_agent_signed_by_planner_accepted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_provider_attaches_one_certificate_per_signer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_carries_certificates, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
