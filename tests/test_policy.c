/* Tests for gm/policy.h: the rules file (errors name the line), the signed document (tampering,
 * wrong key, strict members) and the decisions for a table of roles x capabilities x ports x
 * links under the seed's deny-by-default example of docs/access-policy.md. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "gm/policy.h"
#include "gm/sigdoc.h"
#include "gm/util.h"
#include "wire.h"
#include "core_internal.h"

/* The example of docs/access-policy.md (dev up installs it). */
#define seed_rules gm_policy_seed_example

static gm_signer na, other;

static void seed_signer(uint8_t first, const char *id, gm_signer *k)
{
    uint8_t seed[GM_SEED_LEN];
    gm_error err = {0};
    for (int i = 0; i < GM_SEED_LEN; i++)
        seed[i] = (uint8_t)(first + i);
    assert_int_equal(gm_signer_from_seed(k, seed, id, &err), 0);
}

static void issue(const char *rules, uint64_t seq, gm_policy *p)
{
    gm_error err = {0};
    json_t *body = NULL;
    if (gm_policy_rules_parse(rules, strlen(rules), &body, &err) != 0)
        fail_msg("%s", err.msg);
    if (gm_policy_issue(p, &na, seq, body, gm_time_now(), &err) != 0)
        fail_msg("%s", err.msg);
    json_decref(body);
}

static int setup(void **state)
{
    gm_error err = {0};
    assert_int_equal(gm_init(&err), 0);
    seed_signer(1, "na-local", &na);
    seed_signer(50, "na-local", &other);
    return 0;
}

static void test_policy_decisions_table(void **state)
{
    gm_policy p;
    issue(seed_rules, 3, &p);
    static const struct {
        const char *role;
        int kind;
        const char *object;
        int allowed, rule;
    } table[] = {
        {"role:supervisor", GM_POLICY_CAPABILITY, "finance.report", 1, 1},
        {"role:supervisor", GM_POLICY_CAPABILITY, "anything", 1, 1},
        {"role:crm", GM_POLICY_CAPABILITY, "finance.report", 0, 2},
        {"role:crm", GM_POLICY_CAPABILITY, "finance.ledger.read", 0, 2},
        {"role:crm", GM_POLICY_CAPABILITY, "crm.lookup", 1, 3},
        {"role:crm", GM_POLICY_CAPABILITY, "financeX", 0, 0},
        {"role:crm", GM_POLICY_CAPABILITY, "planner.answer", 0, 0},
        {"role:finance", GM_POLICY_CAPABILITY, "finance.report", 1, 4},
        {"role:finance", GM_POLICY_CAPABILITY, "crm.lookup", 0, 0},
        {"role:support", GM_POLICY_CAPABILITY, "crm.lookup", 1, 5},
        {"role:support", GM_POLICY_CAPABILITY, "crm.export", 0, 0},
        {"role:service:llm", GM_POLICY_CAPABILITY, "repo.summary", 1, 6},
        {"role:service:planner", GM_POLICY_CAPABILITY, "finance.report", 0, 0},
        {"service:llm", GM_POLICY_CAPABILITY, "repo.summary", 0, 0},
        {"role:supervisor", GM_POLICY_PORT, "billing", 1, 7},
        {"role:support", GM_POLICY_PORT, "billing", 0, 8},
        {"role:support", GM_POLICY_PORT, "capability", 1, 9},
        {"role:crm", GM_POLICY_PORT, "chat", 1, 9},
        {"role:crm", GM_POLICY_PORT, "billing", 0, 0},
        {"role:crm", GM_POLICY_PEER, "role:finance", 0, 10},
        {"role:crm", GM_POLICY_PEER, "role:support", 1, 11},
        {"role:finance", GM_POLICY_PEER, "role:crm", 1, 11},
        {"role:crm", GM_POLICY_RELAY, "role:finance", 0, 12},
        {"role:crm", GM_POLICY_RELAY, "role:supervisor", 1, 13},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        gm_policy_decision d;
        const char *roles[] = {table[i].role};
        const char *obj[] = {table[i].object};
        int a = gm_policy_decide(&p, (gm_policy_kind)table[i].kind, roles, 1, obj, 1, &d);
        if (a != table[i].allowed || d.allowed != a || d.rule != table[i].rule || d.sequence != 3)
            fail_msg("row %zu: %s %s %s: got %s by %s (rule %d), want %s by rule %d", i, table[i].role,
                     gm_policy_kind_name((gm_policy_kind)table[i].kind), table[i].object, a ? "allow" : "deny", d.text,
                     d.rule, table[i].allowed ? "allow" : "deny", table[i].rule);
    }
    /* A node holding several roles: the first matching rule decides for all of them. */
    gm_policy_decision d;
    const char *both[] = {"role:crm", "role:supervisor"};
    const char *cap[] = {"finance.report"};
    assert_int_equal(gm_policy_decide(&p, GM_POLICY_CAPABILITY, both, 2, cap, 1, &d), 1);
    assert_int_equal(d.rule, 1);
    assert_string_equal(d.text, "rule 1: allow role:supervisor capability *");
    const char *crm[] = {"role:crm"};
    gm_policy_decide(&p, GM_POLICY_CAPABILITY, crm, 1, cap, 1, &d);
    assert_string_equal(d.text, "rule 2: deny role:crm capability finance.*");
    const char *none[] = {"role:nobody"};
    gm_policy_decide(&p, GM_POLICY_CAPABILITY, none, 1, cap, 1, &d);
    assert_string_equal(d.text, "default deny");
    /* No policy held: everything allowed (networks from before policies keep working). */
    assert_int_equal(gm_policy_decide(NULL, GM_POLICY_CAPABILITY, crm, 1, cap, 1, &d), 1);
    gm_policy_free(&p);
}

static void test_policy_patterns(void **state)
{
    assert_true(gm_policy_match("*", "x"));
    assert_true(gm_policy_match("finance.*", "finance.a"));
    assert_false(gm_policy_match("finance.*", "finance."));
    assert_false(gm_policy_match("finance.*", "finance"));
    assert_false(gm_policy_match("finance.*", "financeX.a"));
    assert_true(gm_policy_match("service:*", "service:llm"));
    assert_false(gm_policy_match("role:crm", "role:crm2"));
}

static void expect_rules_error(const char *text, const char *want)
{
    json_t *body = NULL;
    gm_error err = {0};
    assert_int_not_equal(gm_policy_rules_parse(text, strlen(text), &body, &err), 0);
    assert_null(body);
    if (!strstr(err.msg, want))
        fail_msg("error '%s' does not say '%s'", err.msg, want);
}

static void test_policy_rules_errors_name_the_line(void **state)
{
    expect_rules_error("default deny\nallow role:a capabilities x\n", "line 2: unknown kind 'capabilities'");
    expect_rules_error("# c\n\ndefault deny\nallow role:a capability\n", "line 4:");
    expect_rules_error("default deny\npermit role:a port x\n", "line 2: a rule starts with");
    expect_rules_error("allow * port x\n", "no 'default allow' or 'default deny' line");
    expect_rules_error("default deny\ndefault allow\n", "line 2: a second 'default'");
    expect_rules_error("default maybe\n", "line 1: write 'default allow'");
    expect_rules_error("default deny\nallow role:a capability fin*ance\n", "line 2: bad capability 'fin*ance'");
    expect_rules_error("default deny\nallow role:a,,role:b port x\n", "line 2: empty or too long role");
    expect_rules_error("default deny\nallow ro\"le port x\n", "line 2: bad role");
    expect_rules_error("default deny\nallow a port x y z\n", "line 2: a rule is");
    const char nul[] = "default deny\n\0allow";
    json_t *body = NULL;
    gm_error err = {0};
    assert_int_not_equal(gm_policy_rules_parse(nul, sizeof nul - 1, &body, &err), 0);
}

static void test_policy_signed_document(void **state)
{
    gm_policy p, q;
    gm_error err = {0};
    issue(seed_rules, 7, &p);
    assert_int_equal(gm_policy_verify(&p, na.pk, &err), 0);
    assert_int_not_equal(gm_policy_verify(&p, other.pk, &err), 0);
    assert_int_equal(p.n_rules, 13);
    assert_int_equal(p.default_allow, 0);
    /* Round trip through the exact bytes served. */
    char *text = gm_policy_dump(&p, 0);
    assert_int_equal(gm_policy_parse(text, strlen(text), &q, &err), 0);
    assert_int_equal(q.sequence, 7);
    assert_int_equal(gm_policy_verify(&q, na.pk, &err), 0);
    gm_policy_free(&q);
    /* Tampering with a rule breaks the signature. */
    json_t *doc = json_loads(text, 0, NULL);
    json_t *r1 = json_array_get(json_object_get(doc, "rules"), 1);
    json_object_set_new(r1, "effect", json_string("allow"));
    assert_int_equal(gm_policy_from_json(doc, &q, &err), 0);
    assert_int_equal(gm_policy_verify(&q, na.pk, &err), GM_ESIG);
    gm_policy_free(&q);
    /* An unknown member is refused, not ignored. */
    json_object_set_new(doc, "extra", json_true());
    assert_int_equal(gm_policy_from_json(doc, &q, &err), GM_EFORMAT);
    json_object_del(doc, "extra");
    json_object_set_new(doc, "default", json_string("maybe"));
    assert_int_equal(gm_policy_from_json(doc, &q, &err), GM_EFORMAT);
    json_decref(doc);
    free(text);
    assert_int_not_equal(gm_policy_parse("{", 1, &q, &err), 0);
    gm_policy_free(&p);
}

/* POLICY_ANNOUNCE / REQUEST / DATA: the CRL's layouts under their own types, never mistaken
 * for the CRL's. */
static void test_policy_wire_messages(void **state)
{
    uint8_t buf[128];
    size_t len;
    uint64_t seq = 0;
    uint8_t type = 0;
    gm_error err = {0};
    assert_int_equal(gm_wire_doc_announce_encode(GM_WIRE_POLICY_ANNOUNCE, 42, buf, sizeof buf, &len, &err), 0);
    assert_int_equal(gm_wire_msg_type(buf, len, &type, &err), 0);
    assert_int_equal(type, GM_WIRE_POLICY_ANNOUNCE);
    assert_string_equal(gm_wire_type_name(type), "POLICY_ANNOUNCE");
    assert_int_equal(gm_wire_doc_announce_decode(GM_WIRE_POLICY_ANNOUNCE, buf, len, &seq, &err), 0);
    assert_int_equal(seq, 42);
    assert_int_equal(gm_wire_crl_announce_decode(buf, len, &seq, &err), GM_EPROTO);
    assert_int_equal(gm_wire_doc_request_encode(GM_WIRE_POLICY_REQUEST, buf, sizeof buf, &len, &err), 0);
    assert_int_equal(gm_wire_doc_request_decode(GM_WIRE_POLICY_REQUEST, buf, len, &err), 0);
    assert_int_equal(gm_wire_crl_request_decode(buf, len, &err), GM_EPROTO);
    const uint8_t text[] = "{\"sequence\":3}";
    gm_wire_crl_chunk c = {.sequence = 3, .total_len = 40, .offset = 10, .data = text, .len = sizeof text - 1}, d;
    assert_int_equal(gm_wire_doc_data_encode(GM_WIRE_POLICY_DATA, &c, buf, sizeof buf, &len, &err), 0);
    assert_int_equal(gm_wire_doc_data_decode(GM_WIRE_POLICY_DATA, buf, len, &d, &err), 0);
    assert_int_equal(d.sequence, 3);
    assert_int_equal(d.offset, 10);
    assert_memory_equal(d.data, text, sizeof text - 1);
    assert_int_equal(gm_wire_crl_data_decode(buf, len, &d, &err), GM_EPROTO);
    c.offset = 35; /* overruns total_len */
    assert_int_equal(gm_wire_doc_data_encode(GM_WIRE_POLICY_DATA, &c, buf, sizeof buf, &len, &err), GM_ETOOBIG);
    assert_non_null(strstr(err.msg, "POLICY_DATA"));
}

/* docs/access-policy.md shows the example dev up installs, verbatim. */
static void test_policy_docs_show_the_seed_example(void **state)
{
    const char *src = getenv("GM_SOURCE");
    char path[4096], *text = NULL;
    size_t len;
    gm_error err = {0};
    if (!src)
        skip();
    snprintf(path, sizeof path, "%s/docs/access-policy.md", src);
    assert_int_equal(gm_file_read(path, 1 << 20, &text, &len, &err), 0);
    if (!strstr(text, gm_policy_seed_example))
        fail_msg("%s does not show gm_policy_seed_example verbatim", path);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_decisions_table),
        cmocka_unit_test(test_policy_patterns),
        cmocka_unit_test(test_policy_rules_errors_name_the_line),
        cmocka_unit_test(test_policy_signed_document),
        cmocka_unit_test(test_policy_docs_show_the_seed_example),
        cmocka_unit_test(test_policy_wire_messages),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
