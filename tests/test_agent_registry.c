/* The NA's agent registry, against a real NA served in-process on a loopback port: who may
 * register (valid, unrevoked certificate of this network, fresh window, good signature),
 * listing by capability (colon form too, signed by a member) with each provider's certificate, DELETE by the
 * owner only, replays, and revocation dropping a key's agents. */
#include <sys/stat.h>
#include <unistd.h>

#include "agent_testkit.h"
#include "na_testkit.h"
#include "gm/http_client.h"
#include "gm/na.h"
#include "na_agents.h"
#include "gm/reqsig.h"
#include "store.h"
#include "core_internal.h"
#include "na_internal.h"
#include "store_testkit.h"

typedef struct fx {
    char dir[256];
    char url[128];
    tk_net net;
    gm_na_t *na;
    gm_signer a, b, stranger;
    gm_cert ca, cb;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    char path[512];
    snprintf(f->dir, sizeof f->dir, "%s/gm-test-registry.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(f->dir));
    tk_net_init(&f->net, "TESTNET");
    tk_na_dir(f->dir, &f->net);
    /* SQLite in the directory, or PostgreSQL under the *_pg variant (tests/store_testkit.h) */
    if (tk_store_location(f->dir, "na.db", path, sizeof path) != 0)
        fail_msg("no store for the NA");
    tk_na_start(f->dir, path, 0, &f->na, f->url, sizeof f->url);
    tk_signer(&f->a, 0x60, "a");
    tk_signer(&f->b, 0x70, "b");
    tk_signer(&f->stranger, 0x80, "s");
    tk_cert(&f->ca, &f->net.na, "TESTNET", &f->a);
    tk_cert(&f->cb, &f->net.na, "TESTNET", &f->b);
    tk_na_store_cert(f->na, &f->ca);
    tk_na_store_cert(f->na, &f->cb);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    char cmd[400];
    gm_na_free(f->na);
    gm_cert_free(&f->ca);
    gm_cert_free(&f->cb);
    gm_signer_wipe(&f->a);
    gm_signer_wipe(&f->b);
    gm_signer_wipe(&f->stranger);
    tk_net_free(&f->net);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* POST/DELETE raw JSON; returns the status, *code the error code if any (static buffer). */
static int call(fx *f, const char *method, const char *path, const json_t *body, char code[64])
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", f->url, path);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    const char *hdr[] = {"Content-Type: application/json"};
    gm_http_req req = {.method = method, .url = url, .headers = hdr, .n_headers = 1, .body = text,
                       .body_len = text ? strlen(text) : 0};
    gm_http_resp resp = {0};
    gm_error err = {0};
    if (gm_http_request(&req, &resp, &err) != 0)
        fail_msg("%s %s: %s", method, path, err.msg);
    free(text);
    json_t *j = json_loadb(resp.body ? resp.body : "", resp.len, 0, NULL);
    const char *c = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
    snprintf(code, 64, "%s", c ? c : "");
    json_decref(j);
    int st = resp.status;
    gm_http_resp_free(&resp);
    return st;
}

static int post_desc(fx *f, const gm_agent_desc *d, char code[64])
{
    return call(f, "POST", "/agents", d->doc, code);
}

static json_t *list(fx *f, const char *cap)
{
    json_t *out = NULL;
    gm_error err = {0};
    if (gm_agent_list(f->url, &f->b, cap, 5000, &out, &err) != 0)
        fail_msg("list: %s", err.msg);
    return out;
}

static void test_registers_and_lists_with_certificate(void **state)
{
    fx *f = *state;
    char code[64];
    gm_agent_desc d;
    tk_desc(&d, &f->a, "llm-1", "TESTNET", "llm.chat");
    assert_int_equal(post_desc(f, &d, code), 201);
    json_t *l = list(f, "llm:chat");
    assert_int_equal(json_array_size(l), 1);
    const json_t *e = json_array_get(l, 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(e, "descriptor"), "agent_id")), "llm-1");
    assert_string_equal(json_string_value(json_object_get(json_object_get(e, "certificate"), "cert_id")), f->ca.cert_id);
    json_decref(l);
    l = list(f, "llm.chat.extra");
    assert_int_equal(json_array_size(l), 0); /* exact tag match, no prefixes */
    json_decref(l);
    l = list(f, "llm");
    assert_int_equal(json_array_size(l), 0);
    json_decref(l);
    /* the requester's own checks pass on what the NA returns */
    l = list(f, "llm.chat");
    gm_crl crl;
    gm_error err = {0};
    json_t *none = json_array();
    assert_int_equal(gm_crl_issue(&crl, &f->net.na, 0, none, gm_time_now(), 3600, &err), 0);
    gm_agent_candidates cs;
    assert_int_equal(gm_agent_select(l, "llm.chat", &f->net.g, &crl, gm_time_now(), NULL, 0, &cs, &err), 0);
    assert_int_equal(cs.n_usable, 1);
    gm_agent_candidates_free(&cs);
    gm_crl_free(&crl);
    json_decref(none);
    json_decref(l);
    /* the same signed descriptor a second time is a replay */
    assert_int_equal(post_desc(f, &d, code), 409);
    assert_string_equal(code, "replayed_descriptor");
    gm_agent_desc_free(&d);
}

static void test_refuses_unknown_key_bad_signature_wrong_network_and_window(void **state)
{
    fx *f = *state;
    char code[64];
    gm_agent_desc d;
    gm_error err = {0};
    tk_desc(&d, &f->stranger, "x", "TESTNET", "llm.chat");
    assert_int_equal(post_desc(f, &d, code), 403);
    assert_string_equal(code, "no_valid_certificate");
    gm_agent_desc_free(&d);

    tk_desc(&d, &f->a, "x", "TESTNET", "llm.chat");
    json_object_set_new(d.doc, "metadata", json_pack("{s:s}", "added", "after signing"));
    assert_int_equal(post_desc(f, &d, code), 401);
    assert_string_equal(code, "bad_signature");
    gm_agent_desc_free(&d);

    tk_desc(&d, &f->a, "x", "OTHERNET", "llm.chat");
    assert_int_equal(post_desc(f, &d, code), 403);
    assert_string_equal(code, "wrong_network");
    gm_agent_desc_free(&d);

    json_t *caps = json_pack("[s]", "llm.chat");
    assert_int_equal(gm_agent_desc_build(&d, &f->a, "x", "TESTNET", caps, "", 0, gm_time_add(gm_time_now(), -3600), 600,
                                         NULL, &err), 0);
    assert_int_equal(post_desc(f, &d, code), 403);
    assert_string_equal(code, "outside_window");
    gm_agent_desc_free(&d);
    assert_int_equal(gm_agent_desc_build(&d, &f->a, "x", "TESTNET", caps, "", 0, gm_time_now(), 2 * 3600, NULL, &err), 0);
    assert_int_equal(post_desc(f, &d, code), 403);
    gm_agent_desc_free(&d);
    json_decref(caps);

    json_t *l = list(f, NULL);
    assert_int_equal(json_array_size(l), 0);
    json_decref(l);
}

static void test_agent_id_belongs_to_one_key(void **state)
{
    fx *f = *state;
    char code[64];
    gm_agent_desc d;
    tk_desc(&d, &f->a, "repo-agent-a", "TESTNET", "repo.summary");
    assert_int_equal(post_desc(f, &d, code), 201);
    gm_agent_desc_free(&d);
    tk_desc(&d, &f->b, "repo-agent-a", "TESTNET", "repo.summary");
    assert_int_equal(post_desc(f, &d, code), 409);
    assert_string_equal(code, "agent_id_taken");
    gm_agent_desc_free(&d);
}

static json_t *delete_body(const gm_signer *k, const char *agent_id)
{
    gm_error err = {0};
    json_t *b = json_pack("{s:s,s:s}", "agent_id", agent_id, "node_public_key", k->pk_b64);
    assert_int_equal(gm_reqsig_node_sign(b, k, NULL, NULL, &err), 0);
    return b;
}

static void test_delete_only_by_owner(void **state)
{
    fx *f = *state;
    char code[64];
    gm_agent_desc d;
    tk_desc(&d, &f->a, "repo-agent-a", "TESTNET", "repo.summary");
    assert_int_equal(post_desc(f, &d, code), 201);
    gm_agent_desc_free(&d);
    json_t *unsigned_body = json_pack("{s:s,s:s}", "agent_id", "repo-agent-a", "node_public_key", f->a.pk_b64);
    assert_int_equal(call(f, "DELETE", "/agents/repo-agent-a", unsigned_body, code), 400);
    json_decref(unsigned_body);
    json_t *b = delete_body(&f->b, "repo-agent-a"); /* b signs for itself: not its agent */
    assert_int_equal(call(f, "DELETE", "/agents/repo-agent-a", b, code), 404);
    json_decref(b);
    b = delete_body(&f->b, "repo-agent-a"); /* b's body, but claiming a's key: bad signature */
    json_object_set_new(b, "node_public_key", json_string(f->a.pk_b64));
    assert_int_equal(call(f, "DELETE", "/agents/repo-agent-a", b, code), 401);
    json_decref(b);
    b = delete_body(&f->a, "repo-agent-a");
    assert_int_equal(call(f, "DELETE", "/agents/other-id", b, code), 400); /* path and body disagree */
    json_decref(b);
    b = delete_body(&f->a, "repo-agent-a");
    assert_int_equal(call(f, "DELETE", "/agents/repo-agent-a", b, code), 200);
    assert_int_equal(call(f, "DELETE", "/agents/repo-agent-a", b, code), 401); /* replayed nonce */
    json_decref(b);
    json_t *l = list(f, "repo.summary");
    assert_int_equal(json_array_size(l), 0);
    json_decref(l);
}

static void test_revocation_drops_agents(void **state)
{
    fx *f = *state;
    char code[64];
    gm_error err = {0};
    gm_agent_desc d;
    tk_desc(&d, &f->a, "repo-agent-a", "TESTNET", "repo.summary");
    assert_int_equal(post_desc(f, &d, code), 201);
    gm_agent_desc_free(&d);
    tk_desc(&d, &f->b, "repo-agent-b", "TESTNET", "repo.summary");
    assert_int_equal(post_desc(f, &d, code), 201);
    gm_agent_desc_free(&d);
    /* revoked in the store (as the NA's revoke handler does): listing filters it at once */
    gm_store_t *s = gm_na_store(f->na);
    assert_int_equal(gm_store_revocation_add(s, f->ca.cert_id, "2026-01-01T00:00:00Z", "key_compromise", "na-local", &err), 0);
    json_t *l = list(f, "repo.summary");
    assert_int_equal(json_array_size(l), 1);
    assert_string_equal(json_string_value(json_object_get(json_object_get(json_array_get(l, 0), "descriptor"), "agent_id")),
                        "repo-agent-b");
    json_decref(l);
    /* and the hook removes its rows */
    assert_int_equal(gm_store_begin(s, &err), 0);
    assert_int_equal(gm_na_agents_on_revoke(s, f->a.pk_b64, &err), 0);
    assert_int_equal(gm_store_commit(s, &err), 0);
    /* a revoked key may not register again */
    tk_desc(&d, &f->a, "repo-agent-a", "TESTNET", "repo.summary");
    assert_int_equal(post_desc(f, &d, code), 403);
    assert_string_equal(code, "no_valid_certificate");
    gm_agent_desc_free(&d);
}

int main(void)
{
    gm_error err = {0};
    if (gm_init(&err) != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_registers_and_lists_with_certificate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_unknown_key_bad_signature_wrong_network_and_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_id_belongs_to_one_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_only_by_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revocation_drops_agents, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
