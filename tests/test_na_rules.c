/* The NA's enrollment rules, each on its own, against the real service: the NA runs in this
 * process (gm_na_new + gm_na_start on a free loopback port) over a real SQLite store in a
 * temp directory made by `genesis-mesh init`, and the test talks HTTP to it as a node and
 * as the operator would. Rules: roles come from the invite, never from the client; an
 * invite is used once; a key revoked for key_compromise is blocked on /join and on /renew
 * of another still-valid certificate of that key (until clear-key); /renew keeps the roles
 * and takes no "roles" member. Each refusal is pinned by HTTP status, error code and text.
 *
 * The binary (for init only): $GM_BIN, else $GM_BUILD/genesis-mesh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "gm/cert.h"
#include "gm/http_client.h"
#include "gm/keys.h"
#include "gm/na.h"
#include "gm/na_client.h"
#include "gm/reqsig.h"
#include "gm/util.h"
#include "core_internal.h"

static char g_tmp[256], g_net[300], g_url[64];
static gm_na_t *g_na;
static gm_signer g_op;
static gm_genesis g_genesis;

static void init_network(void)
{
    const char *bin = getenv("GM_BIN"), *build = getenv("GM_BUILD");
    char path[4096];
    if (!bin && build) {
        snprintf(path, sizeof path, "%s/genesis-mesh", build);
        bin = path;
    }
    if (!bin || access(bin, X_OK) != 0)
        fail_msg("genesis-mesh binary not found (set GM_BIN)");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout))
            _exit(126);
        execl(bin, bin, "init", "--dir", g_net, "--network", "NARULES", (char *)NULL);
        _exit(127);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static int group_setup(void **state)
{
    (void)state;
    gm_error err = {0};
    gm_na_config cfg;
    char p[400];
    assert_int_equal(gm_init(&err), 0);
    snprintf(g_tmp, sizeof g_tmp, "%s/gm-na-rules.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(g_tmp));
    snprintf(g_net, sizeof g_net, "%s/net", g_tmp);
    init_network();
    if (gm_na_config_load(&cfg, g_net, &err) != 0)
        fail_msg("config: %s", err.msg);
    if (gm_na_new(&g_na, &cfg, NULL, NULL, &err) != 0 || gm_na_start(g_na, "127.0.0.1:0", &err) != 0)
        fail_msg("NA: %s", err.msg);
    /* init made a TLS certificate: the NA serves HTTPS, and this test trusts that certificate */
    snprintf(g_url, sizeof g_url, "https://127.0.0.1:%u", (unsigned)gm_na_port(g_na));
    snprintf(p, sizeof p, "%s/tls.crt", g_net);
    assert_int_equal(gm_http_trust_set(g_url, p, NULL, &err), 0);
    snprintf(p, sizeof p, "%s/operator", g_net);
    assert_int_equal(gm_signer_load(&g_op, p, "operator-local", &err), 0);
    snprintf(p, sizeof p, "%s/genesis.json", g_net);
    assert_int_equal(gm_genesis_load(p, &g_genesis, &err), 0);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    gm_na_free(g_na);
    gm_signer_wipe(&g_op);
    gm_genesis_free(&g_genesis);
    if (!getenv("GM_KEEP_TMP")) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", g_tmp);
    }
    return 0;
}

/* ------------------------------------------------------------------ HTTP helpers */

/* An invite for roles (a JSON array text); the token is copied into token. */
static void invite(const char *roles, char token[256])
{
    gm_error err = {0};
    json_t *body = json_pack("{s:o}", "roles", json_loads(roles, 0, NULL)), *resp = NULL;
    int status = 0;
    if (gm_na_admin_call(g_url, &g_op, "POST", "/admin/invite", body, 0, &status, &resp, &err) != 0)
        fail_msg("invite: %s", err.msg);
    json_decref(body);
    const char *t = json_string_value(json_object_get(resp, "token"));
    assert_non_null(t);
    snprintf(token, 256, "%s", t);
    json_decref(resp);
}

static void admin_post(const char *path, json_t *body)
{
    gm_error err = {0};
    int status = 0;
    if (gm_na_admin_call(g_url, &g_op, "POST", path, body, 0, &status, NULL, &err) != 0)
        fail_msg("%s: %s", path, err.msg);
    json_decref(body);
}

/* POST path with body (stolen) signed by k as a node request. Returns the HTTP status;
 * *resp is the JSON answer. */
static int node_post(const char *path, const gm_signer *k, json_t *body, json_t **resp)
{
    gm_error err = {0};
    char url[128];
    int status = 0;
    snprintf(url, sizeof url, "%s%s", g_url, path);
    assert_int_equal(gm_reqsig_node_sign(body, k, NULL, NULL, &err), 0);
    *resp = NULL;
    if (gm_http_post_json(url, NULL, 0, body, 0, &status, resp, &err) != 0)
        fail_msg("POST %s: %s", path, err.msg);
    json_decref(body);
    return status;
}

/* The error envelope has code, and its message contains text. */
static void assert_refused(json_t *resp, int status, int want_status, const char *code, const char *text)
{
    json_t *e = json_object_get(resp, "error");
    /* "code/reason" names the finer cause under a code shared with the Python reference */
    char both[128];
    const char *c = json_string_value(json_object_get(e, "code"));
    const char *why = json_string_value(json_object_get(e, "reason"));
    if (c && why && strchr(code, '/')) {
        snprintf(both, sizeof both, "%s/%s", c, why);
        c = both;
    }
    const char *m = json_string_value(json_object_get(e, "message"));
    if (status != want_status || !c || strcmp(c, code) != 0 || !m || !strstr(m, text)) {
        char *dump = json_dumps(resp, JSON_COMPACT);
        fail_msg("want HTTP %d %s (\"%s\"), got HTTP %d %s", want_status, code, text, status, dump ? dump : "(none)");
    }
}

static int join_raw(const gm_signer *k, const char *token, const char *claimed_roles, json_t **resp)
{
    json_t *body = json_pack("{s:s,s:s}", "node_public_key", k->pk_b64, "invite_token", token);
    if (claimed_roles)
        json_object_set_new(body, "roles", json_loads(claimed_roles, 0, NULL));
    return node_post("/join", k, body, resp);
}

/* A successful join; the certificate is verified and returned in *c. */
static void join_ok(const gm_signer *k, const char *token, const char *claimed_roles, gm_cert *c)
{
    gm_error err = {0};
    json_t *resp;
    int st = join_raw(k, token, claimed_roles, &resp);
    if (st != 201) {
        char *dump = json_dumps(resp, JSON_COMPACT);
        fail_msg("join: HTTP %d %s", st, dump ? dump : "");
    }
    assert_int_equal(gm_cert_from_json(resp, c, &err), 0);
    json_decref(resp);
    assert_int_equal(gm_cert_verify(c, &g_genesis, NULL, gm_time_now(), &err), 0);
    assert_memory_equal(c->node_pk, k->pk, GM_PK_LEN);
}

static int renew_raw(const gm_signer *k, const char *cert_id, const char *claimed_roles, json_t **resp)
{
    json_t *body = json_pack("{s:s,s:s}", "node_public_key", k->pk_b64, "cert_id", cert_id);
    if (claimed_roles)
        json_object_set_new(body, "roles", json_loads(claimed_roles, 0, NULL));
    return node_post("/renew", k, body, resp);
}

/* The certificate's roles, as a compact JSON array text (caller frees). */
static char *roles_of(const gm_cert *c)
{
    return json_dumps(json_object_get(c->doc, "roles"), JSON_COMPACT);
}

static void assert_roles(const gm_cert *c, const char *want)
{
    char *r = roles_of(c);
    json_t *a = json_loads(r, 0, NULL), *b = json_loads(want, 0, NULL);
    if (!json_equal(a, b))
        fail_msg("roles %s, want %s", r, want);
    json_decref(a);
    json_decref(b);
    free(r);
}

static void new_key(gm_signer *k)
{
    gm_error err = {0};
    assert_int_equal(gm_signer_generate(k, "node", &err), 0);
}

/* ------------------------------------------------------------------ tests */

static void test_join_takes_roles_from_the_invite_not_from_the_client(void **state)
{
    (void)state;
    gm_signer k;
    gm_cert c;
    char token[256];
    new_key(&k);
    invite("[\"role:finance\"]", token);
    /* The client claims more (signed, so it is not a transport accident): ignored. */
    join_ok(&k, token, "[\"role:supervisor\",\"role:admin\"]", &c);
    assert_roles(&c, "[\"role:finance\"]");
    assert_false(gm_cert_has_role(&c, "role:supervisor"));
    gm_cert_free(&c);
    gm_signer_wipe(&k);
}

static void test_invite_is_used_once_over_http(void **state)
{
    (void)state;
    gm_signer a, b;
    gm_cert c;
    char token[256];
    json_t *resp;
    new_key(&a);
    new_key(&b);
    invite("[\"role:crm\"]", token);
    join_ok(&a, token, NULL, &c);
    /* Another key, and the same key again, with the same token. */
    int st = join_raw(&b, token, NULL, &resp);
    assert_refused(resp, st, 403, "invalid_invite_token/invite_used", "invite token was already used");
    json_decref(resp);
    st = join_raw(&a, token, NULL, &resp);
    assert_refused(resp, st, 403, "invalid_invite_token/invite_used", "invite token was already used");
    json_decref(resp);
    /* A token nobody issued. */
    st = join_raw(&b, "not-a-token-anybody-issued", NULL, &resp);
    assert_refused(resp, st, 403, "invalid_invite_token/unknown_invite", "unknown invite token");
    json_decref(resp);
    gm_cert_free(&c);
    gm_signer_wipe(&a);
    gm_signer_wipe(&b);
}

static void test_key_compromise_blocks_join_and_renew_of_another_valid_cert(void **state)
{
    (void)state;
    gm_signer k;
    gm_cert c1, c2, c3;
    char t1[256], t2[256], t3[256];
    json_t *resp;
    new_key(&k);
    invite("[\"role:support\"]", t1);
    invite("[\"role:support\"]", t2);
    invite("[\"role:support\"]", t3);
    join_ok(&k, t1, NULL, &c1);
    join_ok(&k, t2, NULL, &c2); /* a second, independent certificate of the same key */
    admin_post("/admin/revoke", json_pack("{s:s,s:s}", "cert_id", c1.cert_id, "reason", "key_compromise"));

    /* c2 was never revoked and is still valid: the key itself is blocked. */
    int st = renew_raw(&k, c2.cert_id, NULL, &resp);
    assert_refused(resp, st, 403, "key_compromised", "was revoked for key_compromise");
    json_decref(resp);
    st = join_raw(&k, t3, NULL, &resp);
    assert_refused(resp, st, 403, "key_compromised", "was revoked for key_compromise");
    json_decref(resp);

    /* The refused join did not use up t3: after clear-key the same token works. */
    admin_post("/admin/clear-key", json_pack("{s:s}", "node_public_key", k.pk_b64));
    join_ok(&k, t3, NULL, &c3);
    /* ... and the key renews again, with its newest certificate, once c2 (still valid, so a
     * third would be one too many) is retired as superseded; c1 stays revoked. */
    admin_post("/admin/revoke", json_pack("{s:s,s:s}", "cert_id", c2.cert_id, "reason", "superseded"));
    st = renew_raw(&k, c3.cert_id, NULL, &resp);
    assert_int_equal(st, 201);
    json_decref(resp);
    gm_cert_free(&c3);
    st = renew_raw(&k, c1.cert_id, NULL, &resp);
    assert_refused(resp, st, 403, "certificate_revoked", "is revoked (key_compromise)");
    json_decref(resp);
    gm_cert_free(&c1);
    gm_cert_free(&c2);
    gm_signer_wipe(&k);
}

static void test_revocation_for_another_reason_does_not_block_the_key(void **state)
{
    (void)state;
    gm_signer k;
    gm_cert c1, c2;
    char t1[256], t2[256];
    new_key(&k);
    invite("[\"role:crm\"]", t1);
    invite("[\"role:crm\"]", t2);
    join_ok(&k, t1, NULL, &c1);
    admin_post("/admin/revoke", json_pack("{s:s,s:s}", "cert_id", c1.cert_id, "reason", "superseded"));
    join_ok(&k, t2, NULL, &c2);
    gm_cert_free(&c1);
    gm_cert_free(&c2);
    gm_signer_wipe(&k);
}

static void test_renew_keeps_the_roles_and_ignores_a_roles_member(void **state)
{
    (void)state;
    gm_signer k;
    gm_cert c, r;
    gm_error err = {0};
    char token[256];
    json_t *resp;
    new_key(&k);
    invite("[\"role:finance\",\"role:reports\"]", token);
    join_ok(&k, token, NULL, &c);
    /* A "roles" member (the Python reference's clients send their requested roles) is
     * ignored: the renewed certificate has the invite's roles, never the ones asked for. */
    int st = renew_raw(&k, c.cert_id, "[\"role:supervisor\"]", &resp);
    assert_int_equal(st, 201);
    assert_int_equal(gm_cert_from_json(resp, &r, &err), 0);
    json_decref(resp);
    assert_int_equal(gm_cert_verify(&r, &g_genesis, NULL, gm_time_now(), &err), 0);
    assert_string_not_equal(r.cert_id, c.cert_id);
    assert_roles(&r, "[\"role:finance\",\"role:reports\"]");
    /* The renewed certificate cannot renew again while the one it replaced is still valid
     * (at most 2 valid certificates per key; docs/formats-notes.md "Renewal and the CRL"). */
    st = renew_raw(&k, r.cert_id, NULL, &resp);
    assert_refused(resp, st, 429, "renewing_too_often", "");
    json_decref(resp);
    /* Someone else's key cannot renew this certificate. */
    gm_signer other;
    new_key(&other);
    st = renew_raw(&other, c.cert_id, NULL, &resp);
    assert_refused(resp, st, 404, "unknown_certificate", "no certificate");
    json_decref(resp);
    gm_signer_wipe(&other);
    gm_cert_free(&r);
    gm_cert_free(&c);
    gm_signer_wipe(&k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_join_takes_roles_from_the_invite_not_from_the_client),
        cmocka_unit_test(test_invite_is_used_once_over_http),
        cmocka_unit_test(test_key_compromise_blocks_join_and_renew_of_another_valid_cert),
        cmocka_unit_test(test_revocation_for_another_reason_does_not_block_the_key),
        cmocka_unit_test(test_renew_keeps_the_roles_and_ignores_a_roles_member),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
