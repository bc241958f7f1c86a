/* Discovery and the issuance log are for members only, against a real NA served in-process
 * on a loopback port: an unsigned read is refused with a clear error, and so are a node key of
 * another network, a revoked node, a replayed signed read and a read whose target was changed
 * after signing; a member sees exactly the agents its roles may invoke under the access
 * policy, with or without ?capability=. */
#include <sys/stat.h>
#include <unistd.h>

#include "agent_testkit.h"
#include "na_testkit.h"
#include "gm/http_client.h"
#include "gm/na.h"
#include "gm/policy.h"
#include "client_internal.h"
#include "core_internal.h"
#include "na_internal.h"
#include "store.h"

#define POLICY_RULES                                                                                                   \
    "default deny\n"                                                                                                   \
    "deny  role:crm capability finance.*\n"                                                                            \
    "allow role:crm capability crm.*\n"                                                                                \
    "allow role:finance capability finance.*,repo.summary\n"                                                           \
    "allow role:service:* capability repo.*\n"

typedef struct fx {
    char dir[256];
    char url[128];
    tk_net net, other;
    gm_na_t *na;
    gm_signer svc, crm, fin, revoked, stranger;
    gm_cert c_svc, c_crm, c_fin, c_revoked, c_stranger;
} fx;

static void cert_with_role(gm_cert *c, const gm_signer *na, const char *network, const gm_signer *node, const char *role)
{
    gm_error err = {0};
    json_t *roles = json_pack("[s]", role);
    gm_time now = gm_time_now();
    assert_int_equal(gm_cert_issue(c, na, network, node->pk, roles, gm_time_add(now, -60), gm_time_add(now, 86400), &err),
                     0);
    json_decref(roles);
}

/* GET target (sent to url_target, NULL = the same) with the X-Node-* headers of a (NULL =
 * unsigned). Returns the status; *code the error code or ""; *body (optional) the answer. */
static int get(fx *f, const gm_read_auth *a, const char *url_target, char code[64], json_t **body)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", f->url, url_target);
    gm_http_req req = {.method = "GET", .url = url, .headers = a ? a->headers : NULL, .n_headers = a ? 4 : 0};
    gm_http_resp resp = {0};
    gm_error err = {0};
    if (gm_http_request(&req, &resp, &err) != 0)
        fail_msg("GET %s: %s", url_target, err.msg);
    json_t *j = json_loadb(resp.body ? resp.body : "", resp.len, 0, NULL);
    const char *c = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
    snprintf(code, 64, "%s", c ? c : "");
    if (body)
        *body = j;
    else
        json_decref(j);
    int st = resp.status;
    gm_http_resp_free(&resp);
    return st;
}

static int get_signed(fx *f, const gm_signer *k, const char *target, char code[64], json_t **body)
{
    gm_read_auth a;
    gm_error err = {0};
    if (gm_reqsig_read_sign(&a, k, "GET", target, &err) != 0)
        fail_msg("sign %s: %s", target, err.msg);
    return get(f, &a, target, code, body);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    gm_error err = {0};
    snprintf(f->dir, sizeof f->dir, "%s/gm-test-member.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(f->dir));
    tk_net_init(&f->net, "TESTNET");
    tk_net_init(&f->other, "OTHERNET");
    /* the other network's NA key differs from ours */
    gm_signer_wipe(&f->other.na);
    tk_signer(&f->other.na, 0x90, "na-other");
    tk_na_dir(f->dir, &f->net);
    /* the access policy the NA starts with */
    json_t *rules = NULL;
    gm_policy p;
    assert_int_equal(gm_policy_rules_parse(POLICY_RULES, strlen(POLICY_RULES), &rules, &err), 0);
    assert_int_equal(gm_policy_issue(&p, &f->net.na, 1, rules, gm_time_now(), &err), 0);
    char *text = gm_policy_dump(&p, 0);
    tk_write_file(f->dir, "access-policy.json", text);
    free(text);
    gm_policy_free(&p);
    json_decref(rules);
    tk_na_start(f->dir, NULL, 0, &f->na, f->url, sizeof f->url);
    tk_signer(&f->svc, 0x60, "svc");
    tk_signer(&f->crm, 0x70, "crm");
    tk_signer(&f->fin, 0x80, "fin");
    tk_signer(&f->revoked, 0xa0, "rev");
    tk_signer(&f->stranger, 0xb0, "str");
    cert_with_role(&f->c_svc, &f->net.na, "TESTNET", &f->svc, "role:service:agent");
    cert_with_role(&f->c_crm, &f->net.na, "TESTNET", &f->crm, "role:crm");
    cert_with_role(&f->c_fin, &f->net.na, "TESTNET", &f->fin, "role:finance");
    cert_with_role(&f->c_revoked, &f->net.na, "TESTNET", &f->revoked, "role:finance");
    cert_with_role(&f->c_stranger, &f->other.na, "OTHERNET", &f->stranger, "role:finance");
    tk_na_store_cert(f->na, &f->c_svc);
    tk_na_store_cert(f->na, &f->c_crm);
    tk_na_store_cert(f->na, &f->c_fin);
    tk_na_store_cert(f->na, &f->c_revoked);
    tk_na_register(f->url, &f->svc, "repo-1", "TESTNET", "repo.summary");
    tk_na_register(f->url, &f->crm, "crm-1", "TESTNET", "crm.lookup");
    tk_na_register(f->url, &f->fin, "ledger-1", "TESTNET", "finance.report");
    assert_int_equal(gm_store_revocation_add(gm_na_store(f->na), f->c_revoked.cert_id, "2026-01-01T00:00:00Z",
                                             "key_compromise", "na-local", &err),
                     0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    char cmd[400];
    gm_na_free(f->na);
    gm_cert *certs[] = {&f->c_svc, &f->c_crm, &f->c_fin, &f->c_revoked, &f->c_stranger};
    gm_signer *keys[] = {&f->svc, &f->crm, &f->fin, &f->revoked, &f->stranger};
    for (size_t i = 0; i < 5; i++) {
        gm_cert_free(certs[i]);
        gm_signer_wipe(keys[i]);
    }
    tk_net_free(&f->net);
    tk_net_free(&f->other);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* The agent ids of a GET /agents answer, sorted, joined by ','. */
static void ids_of(const json_t *body, char *out, size_t cap)
{
    const char *ids[16];
    size_t n = 0, i;
    const json_t *e;
    json_array_foreach(json_object_get(body, "agents"), i, e)
        if (n < 16)
            ids[n++] = json_string_value(json_object_get(json_object_get(e, "descriptor"), "agent_id"));
    for (size_t a = 0; a < n; a++)
        for (size_t b = a + 1; b < n; b++)
            if (strcmp(ids[a], ids[b]) > 0) {
                const char *t = ids[a];
                ids[a] = ids[b];
                ids[b] = t;
            }
    out[0] = '\0';
    for (size_t a = 0; a < n; a++)
        snprintf(out + strlen(out), cap - strlen(out), "%s%s", a ? "," : "", ids[a]);
}

static void test_unsigned_reads_are_refused_with_a_clear_error(void **state)
{
    fx *f = *state;
    char code[64];
    json_t *body = NULL;
    const char *paths[] = {"/agents", "/agents?capability=repo.summary", "/log/checkpoint", "/log/entries?start=0",
                           "/log/consistency?first=1&second=2"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        assert_int_equal(get(f, NULL, paths[i], code, &body), 401);
        assert_string_equal(code, "member_auth_required");
        const char *msg = json_string_value(json_object_get(json_object_get(body, "error"), "message"));
        assert_non_null(strstr(msg, "members of network 'TESTNET'"));
        assert_non_null(strstr(msg, GM_NODE_HDR_SIGNATURE));
        json_decref(body);
    }
    /* public on purpose */
    assert_int_equal(get(f, NULL, "/genesis", code, NULL), 200);
    assert_int_equal(get(f, NULL, "/crl", code, NULL), 200);
    assert_int_equal(get(f, NULL, "/health", code, NULL), 200);
    assert_int_equal(get(f, NULL, "/policy", code, NULL), 200);
    /* the client library says why before asking */
    json_t *l = NULL;
    gm_error err = {0};
    assert_int_equal(gm_agent_list(f->url, NULL, "repo.summary", 5000, &l, &err), GM_EINVAL);
    assert_non_null(strstr(err.msg, "members"));
}

static void test_foreign_and_revoked_nodes_are_refused(void **state)
{
    fx *f = *state;
    char code[64];
    /* a node of another network: its key holds no certificate here */
    assert_int_equal(get_signed(f, &f->stranger, "/agents", code, NULL), 403);
    assert_string_equal(code, "not_a_member");
    assert_int_equal(get_signed(f, &f->stranger, "/log/checkpoint", code, NULL), 403);
    assert_string_equal(code, "not_a_member");
    /* a revoked node of this network */
    assert_int_equal(get_signed(f, &f->revoked, "/agents?capability=finance.report", code, NULL), 403);
    assert_string_equal(code, "not_a_member");
    json_t *l = NULL;
    gm_error err = {0};
    assert_int_equal(gm_agent_list(f->url, &f->revoked, "finance.report", 5000, &l, &err), GM_EDENIED);
    assert_non_null(strstr(err.msg, "no valid, unrevoked certificate"));
    /* and a member still gets in */
    assert_int_equal(get_signed(f, &f->fin, "/log/checkpoint", code, NULL), 200);
}

static void test_replayed_or_retargeted_reads_are_refused(void **state)
{
    fx *f = *state;
    char code[64];
    gm_read_auth a;
    gm_error err = {0};
    assert_int_equal(gm_reqsig_read_sign(&a, &f->fin, "GET", "/agents?capability=finance.report", &err), 0);
    /* signed for one capability, sent for another: the signature covers the query */
    assert_int_equal(get(f, &a, "/agents?capability=repo.summary", code, NULL), 401);
    assert_string_equal(code, "bad_signature");
    /* and for another path */
    assert_int_equal(get(f, &a, "/log/checkpoint", code, NULL), 401);
    assert_string_equal(code, "bad_signature");
    /* a forged signature did not burn the nonce: the genuine request goes through once */
    assert_int_equal(get(f, &a, "/agents?capability=finance.report", code, NULL), 200);
    assert_int_equal(get(f, &a, "/agents?capability=finance.report", code, NULL), 401);
    assert_string_equal(code, "replayed_nonce");
    /* another key's headers with our key named: the signature is checked under the named key */
    gm_read_auth b;
    assert_int_equal(gm_reqsig_read_sign(&b, &f->stranger, "GET", "/agents", &err), 0);
    snprintf(b.line[0], sizeof b.line[0], "%s: %s", GM_NODE_HDR_KEY, f->fin.pk_b64);
    assert_int_equal(get(f, &b, "/agents", code, NULL), 401);
    assert_string_equal(code, "bad_signature");
    /* targets the signer refuses to sign rather than guess their encoding */
    assert_int_equal(gm_reqsig_read_sign(&a, &f->fin, "GET", "/agents?capability=a%2Eb", &err), GM_EINVAL);
    assert_int_equal(gm_reqsig_read_sign(&a, &f->fin, "GET", "/agents?x=1&x=2", &err), GM_EINVAL);
}

static void test_member_sees_exactly_what_its_roles_allow(void **state)
{
    fx *f = *state;
    char code[64], ids[256];
    json_t *body = NULL;
    struct {
        const gm_signer *k;
        const char *target, *want;
    } cases[] = {
        {&f->fin, "/agents", "ledger-1,repo-1"},
        {&f->crm, "/agents", "crm-1"},
        {&f->svc, "/agents", "repo-1"},
        {&f->fin, "/agents?capability=finance.report", "ledger-1"},
        {&f->crm, "/agents?capability=finance.report", ""},
        {&f->crm, "/agents?capability=crm.lookup", "crm-1"},
        {&f->svc, "/agents?capability=repo.summary", "repo-1"},
        {&f->svc, "/agents?capability=crm.lookup", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(get_signed(f, cases[i].k, cases[i].target, code, &body), 200);
        ids_of(body, ids, sizeof ids);
        if (strcmp(ids, cases[i].want) != 0)
            fail_msg("%s as %s: saw '%s', want '%s'", cases[i].target, cases[i].k->key_id, ids, cases[i].want);
        assert_int_equal(json_integer_value(json_object_get(body, "count")), json_array_size(json_object_get(body, "agents")));
        json_decref(body);
    }
    /* the client library signs the same way */
    json_t *l = NULL;
    gm_error err = {0};
    assert_int_equal(gm_agent_list(f->url, &f->crm, NULL, 5000, &l, &err), 0);
    assert_int_equal(json_array_size(l), 1);
    json_decref(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unsigned_reads_are_refused_with_a_clear_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_and_revoked_nodes_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replayed_or_retargeted_reads_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_member_sees_exactly_what_its_roles_allow, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
