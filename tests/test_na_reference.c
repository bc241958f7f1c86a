/* The Python reference's client requests against OUR real NA (issue 13), served in-process on
 * a loopback port with its real SQLite store. Each node request is built and signed here the
 * way the reference's clients do it (shared spec python-reference-na-api.md §5.2): the body's
 * members in the reference's order, a timestamp "YYYY-MM-DDTHH:MM:SS.000000+00:00", a UUID4
 * nonce, and an Ed25519 signature (libsodium directly) over the canonical JSON of the body
 * without "signature", written out by hand here rather than by our canonicalizer:
 * join -> GET /policy (signature verified, the reference's shape) -> POST /heartbeat ->
 * POST /renew with roles and validity_hours -> admin invite's token_id -> admin revoke's
 * crl_sequence / revoked_count; and bad input (wrong signature, stale timestamp, replayed
 * nonce, validity_hours out of range, another key's certificate) gets a clear error. */
#include <pthread.h>
#include <sodium.h>
#include <time.h>
#include <unistd.h>

#include "agent_testkit.h"
#include "gm/cert.h"
#include "gm/http_client.h"
#include "gm/na.h"
#include "gm/na_client.h"
#include "gm/netpolicy.h"

#define INVITE_MAX_HOURS 48

typedef struct fx {
    char dir[256];
    char url[128];
    tk_net net;
    gm_signer op;
    gm_na_t *na;
} fx;

static fx *F;

static void ignore_log(void *ctx, const char *line)
{
    (void)ctx;
    (void)line;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    gm_error err = {0};
    char path[512];
    snprintf(f->dir, sizeof f->dir, "%s/gm-test-ref.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(f->dir));
    tk_net_init(&f->net, "TESTNET");
    snprintf(path, sizeof path, "%s/na", f->dir);
    assert_int_equal(gm_signer_save(&f->net.na, path, 0, &err), 0);
    char *g = gm_genesis_dump(&f->net.g);
    snprintf(path, sizeof path, "%s/genesis.json", f->dir);
    assert_int_equal(gm_file_write_atomic(path, g, strlen(g), 0600, &err), 0);
    free(g);
    tk_signer(&f->op, 0x20, "operator-local");
    json_t *cfg = json_pack("{s:s,s:s,s:s,s:[{s:s,s:s}]}", "network_name", "TESTNET", "na_url", "http://127.0.0.1:1",
                            "listen", "127.0.0.1:0", "operator_keys", "key_id", "operator-local", "public_key",
                            f->op.pk_b64);
    char *text = json_dumps(cfg, 0);
    snprintf(path, sizeof path, "%s/config.json", f->dir);
    assert_int_equal(gm_file_write_atomic(path, text, strlen(text), 0600, &err), 0);
    free(text);
    json_decref(cfg);
    gm_na_config c;
    if (gm_na_config_load(&c, f->dir, &err) != 0)
        fail_msg("config: %s", err.msg);
    if (gm_na_new(&f->na, &c, ignore_log, f, &err) != 0 || gm_na_start(f->na, "127.0.0.1:0", &err) != 0)
        fail_msg("NA: %s", err.msg);
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%u", (unsigned)gm_na_port(f->na));
    F = f;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    char cmd[400];
    gm_na_free(f->na);
    gm_signer_wipe(&f->op);
    tk_net_free(&f->net);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* ---- the reference's client, by hand ---- */

/* Python's datetime.now(timezone.utc).isoformat() with microseconds 0, age_s in the past. */
static void ref_timestamp(char out[40], long age_s)
{
    time_t t = time(NULL) - age_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 40, "%Y-%m-%dT%H:%M:%S.000000+00:00", &tm);
}

/* One member of a body: "key": value (value already JSON). The signed bytes are the members
 * sorted by key, the body sent adds "signature" (the reference sends them in its own order). */
typedef struct member {
    const char *key;
    char value[512];
} member;

static int cmp_member(const void *a, const void *b)
{
    return strcmp(((const member *)a)->key, ((const member *)b)->key);
}

/* Sign members (n, sorted here) with k as the reference does and POST them to path; returns the
 * status and *resp the JSON answer. bad_sig flips one byte of the signature. */
static int ref_post(const char *path, member *m, size_t n, const gm_signer *k, int bad_sig, json_t **resp)
{
    char signed_bytes[4096] = "{", body[4400], url[256], sig_b64[GM_SIG_B64_LEN + 1];
    uint8_t sig[crypto_sign_BYTES];
    qsort(m, n, sizeof *m, cmp_member);
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(signed_bytes);
        snprintf(signed_bytes + l, sizeof signed_bytes - l, "%s\"%s\":%s", i ? "," : "", m[i].key, m[i].value);
    }
    strcat(signed_bytes, "}");
    crypto_sign_detached(sig, NULL, (const uint8_t *)signed_bytes, strlen(signed_bytes), k->sk);
    if (bad_sig)
        sig[5] ^= 1;
    sodium_bin2base64(sig_b64, sizeof sig_b64, sig, sizeof sig, sodium_base64_VARIANT_ORIGINAL);
    /* what is sent: the same members plus the signature, in the reference's (unsorted) order */
    snprintf(body, sizeof body, "{\"signature\":\"%s\",%s", sig_b64, signed_bytes + 1);
    snprintf(url, sizeof url, "%s%s", F->url, path);
    const char *headers[] = {"Content-Type: application/json"};
    gm_http_req req = {.method = "POST", .url = url, .headers = headers, .n_headers = 1, .body = body,
                       .body_len = strlen(body), .timeout_ms = 20000};
    gm_http_resp r = {0};
    gm_error err = {0};
    if (gm_http_request(&req, &r, &err) != 0)
        fail_msg("POST %s: %s", path, err.msg);
    *resp = json_loadb(r.body, r.len, 0, NULL);
    int st = r.status;
    gm_http_resp_free(&r);
    return st;
}

/* a string member (v needs no escaping: keys, UUIDs, timestamps, tokens) */
static void set_str(member *m, const char *key, const char *v)
{
    m->key = key;
    snprintf(m->value, sizeof m->value, "\"%s\"", v);
}

/* a member whose value is JSON text already */
static void set_raw(member *m, const char *key, const char *v)
{
    m->key = key;
    snprintf(m->value, sizeof m->value, "%s", v);
}

static void new_nonce(char out[37])
{
    gm_uuid4(out);
}

/* The reference's join body: node_public_key, invite_token, validity_hours, roles, timestamp, nonce. */
static int ref_join(const gm_signer *k, const char *token, const char *roles, json_t **resp)
{
    char ts[40], nonce[37];
    member m[6];
    ref_timestamp(ts, 0);
    new_nonce(nonce);
    set_str(&m[0], "node_public_key", k->pk_b64);
    set_str(&m[1], "invite_token", token);
    set_raw(&m[2], "validity_hours", "168");
    set_raw(&m[3], "roles", roles);
    set_str(&m[4], "timestamp", ts);
    set_str(&m[5], "nonce", nonce);
    return ref_post("/join", m, 6, k, 0, resp);
}

/* The reference's heartbeat body: cert_id, node_public_key, status, timestamp, nonce. */
static int ref_heartbeat(const gm_signer *k, const char *cert_id, const char *nonce, long age_s, int bad_sig,
                         json_t **resp)
{
    char ts[40], fresh[37];
    member m[5];
    ref_timestamp(ts, age_s);
    if (!nonce) {
        new_nonce(fresh);
        nonce = fresh;
    }
    set_str(&m[0], "cert_id", cert_id);
    set_str(&m[1], "node_public_key", k->pk_b64);
    set_str(&m[2], "status", "healthy");
    set_str(&m[3], "timestamp", ts);
    set_str(&m[4], "nonce", nonce);
    return ref_post("/heartbeat", m, 5, k, bad_sig, resp);
}

/* The reference's renew body: cert_id, node_public_key, validity_hours, roles, timestamp, nonce
 * (validity NULL: left out). */
static int ref_renew(const gm_signer *k, const char *cert_id, const char *validity, const char *nonce,
                     json_t **resp)
{
    char ts[40], fresh[37];
    member m[6];
    size_t n = 0;
    ref_timestamp(ts, 0);
    if (!nonce) {
        new_nonce(fresh);
        nonce = fresh;
    }
    set_str(&m[n++], "cert_id", cert_id);
    set_str(&m[n++], "node_public_key", k->pk_b64);
    if (validity)
        set_raw(&m[n++], "validity_hours", validity);
    set_raw(&m[n++], "roles", "[\"role:operator\"]");
    set_str(&m[n++], "timestamp", ts);
    set_str(&m[n++], "nonce", nonce);
    return ref_post("/renew", m, n, k, 0, resp);
}

/* ---- checks ---- */

static void assert_error(json_t *resp, int status, int want_status, const char *code, const char *text)
{
    json_t *e = json_object_get(resp, "error");
    const char *c = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    if (status != want_status || !c || strcmp(c, code) != 0 || !msg || !strstr(msg, text)) {
        char *dump = resp ? json_dumps(resp, JSON_COMPACT) : NULL;
        fail_msg("want HTTP %d %s (\"%s\"), got HTTP %d %s", want_status, code, text, status, dump ? dump : "(none)");
    }
}

static void invite(const char *roles, int64_t max_hours, char token[128])
{
    gm_error err = {0};
    json_t *resp = NULL, *body = json_pack("{s:o,s:I}", "roles", json_loads(roles, 0, NULL), "max_validity_hours",
                                           (json_int_t)max_hours);
    if (gm_na_admin_call(F->url, &F->op, "POST", "/admin/invite", body, 0, NULL, &resp, &err) != 0)
        fail_msg("invite: %s", err.msg);
    json_decref(body);
    /* the reference's admin invite reads token_id: the same token as ours */
    const char *t = json_string_value(json_object_get(resp, "token")),
               *id = json_string_value(json_object_get(resp, "token_id"));
    assert_non_null(t);
    assert_non_null(id);
    assert_string_equal(t, id);
    assert_non_null(json_string_value(json_object_get(resp, "expires_at")));
    snprintf(token, 128, "%s", id);
    json_decref(resp);
}

/* A 201 answer as a verified certificate of k with the invite's roles. */
static void assert_cert(json_t *resp, int status, const gm_signer *k, gm_cert *c)
{
    gm_error err = {0};
    if (status != 201) {
        char *dump = resp ? json_dumps(resp, JSON_COMPACT) : NULL;
        fail_msg("want 201, got %d %s", status, dump ? dump : "");
    }
    assert_int_equal(gm_cert_from_json(resp, c, &err), 0);
    assert_int_equal(gm_cert_verify(c, &F->net.g, NULL, gm_time_now(), &err), 0);
    char *pk = json_dumps(json_object_get(c->doc, "node_public_key"), JSON_ENCODE_ANY);
    assert_non_null(strstr(pk, k->pk_b64));
    free(pk);
    char *roles = json_dumps(json_object_get(c->doc, "roles"), JSON_COMPACT);
    assert_string_equal(roles, "[\"role:client\"]");
    free(roles);
    json_decref(resp);
}

static int64_t lifetime_h(const gm_cert *c)
{
    return (c->expires_at.unix_s - c->issued_at.unix_s) / 3600;
}

/* The node row of cert_id in GET /admin/nodes (new reference). */
static json_t *node_row(const char *cert_id)
{
    gm_error err = {0};
    json_t *resp = NULL, *row = NULL, *n;
    size_t i;
    if (gm_na_admin_call(F->url, &F->op, "GET", "/admin/nodes", NULL, 0, NULL, &resp, &err) != 0)
        fail_msg("admin nodes: %s", err.msg);
    assert_int_equal(gm_na_nodes_answer_check(resp, &err), 0);
    json_array_foreach(json_object_get(resp, "nodes"), i, n) if (!strcmp(json_string_value(json_object_get(n, "cert_id")),
                                                                         cert_id)) row = json_incref(n);
    json_decref(resp);
    assert_non_null(row);
    return row;
}

static int strcmp_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The member names of a JSON object, sorted, comma-separated. */
static void key_set(const json_t *o, char *out, size_t cap)
{
    const char *keys[32];
    size_t n = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) if (n < 32) keys[n++] = k;
    qsort(keys, n, sizeof keys[0], strcmp_ptr);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        snprintf(out + strlen(out), cap - strlen(out), "%s%s", i ? "," : "", keys[i]);
}

/* ---- the tests ---- */

static void test_reference_client_flow(void **state)
{
    (void)state;
    gm_signer k;
    gm_cert c, r;
    gm_error err = {0};
    json_t *resp;
    char token[128];
    tk_signer(&k, 0x00, "node");
    invite("[\"role:client\"]", INVITE_MAX_HOURS, token);

    /* join: the reference's body (roles asked for are ignored, validity 168 capped at 48) */
    int st = ref_join(&k, token, "[\"role:operator\"]", &resp);
    assert_cert(resp, st, &k, &c);
    assert_int_equal(lifetime_h(&c), INVITE_MAX_HOURS);
    /* the same token again: the reference's status and code, our cause beside them */
    gm_signer k2;
    tk_signer(&k2, 0x70, "node2");
    st = ref_join(&k2, token, "[\"role:client\"]", &resp);
    assert_error(resp, st, 403, "invalid_invite_token", "already used");
    assert_string_equal(json_string_value(json_object_get(json_object_get(resp, "error"), "reason")), "invite_used");
    json_decref(resp);

    /* GET /policy: signed by the NA, the reference's shape, id policy-<name>-<version> */
    char url[256];
    snprintf(url, sizeof url, "%s/policy", F->url);
    gm_http_req req = {.method = "GET", .url = url, .timeout_ms = 20000};
    gm_http_resp hr = {0};
    assert_int_equal(gm_http_request(&req, &hr, &err), 0);
    assert_int_equal(hr.status, 200);
    gm_netpolicy p, ref;
    assert_int_equal(gm_netpolicy_parse(hr.body, hr.len, &p, &err), 0);
    assert_int_equal(gm_netpolicy_verify(&p, F->net.g.na_pk, &err), 0);
    assert_string_equal(p.policy_id, "policy-TESTNET-v0.1");
    json_t *served = json_loadb(hr.body, hr.len, 0, NULL);
    gm_http_resp_free(&hr);
    char path[600], ours[256], theirs[256];
    snprintf(path, sizeof path, "%s/reference-answers/policy-200.json", getenv("GM_VECTORS"));
    assert_int_equal(gm_netpolicy_load(path, &ref, &err), 0);
    json_t *recorded = json_load_file(path, 0, NULL);
    key_set(served, ours, sizeof ours);
    key_set(recorded, theirs, sizeof theirs);
    assert_string_equal(ours, theirs);
    key_set(json_object_get(served, "routing"), ours, sizeof ours);
    key_set(json_object_get(recorded, "routing"), theirs, sizeof theirs);
    assert_string_equal(ours, theirs);
    assert_true(json_equal(json_object_get(p.doc, "allowed_services"), json_object_get(ref.doc, "allowed_services")));
    assert_true(json_equal(json_object_get(p.doc, "allowed_ports"), json_object_get(ref.doc, "allowed_ports")));
    json_decref(served);
    json_decref(recorded);
    gm_netpolicy_free(&ref);
    gm_netpolicy_free(&p);

    /* POST /heartbeat: {ack, server_time}; admin nodes shows when it was last seen */
    json_t *row = node_row(c.cert_id);
    assert_true(json_is_null(json_object_get(row, "last_heartbeat")));
    json_decref(row);
    char nonce[37];
    new_nonce(nonce);
    st = ref_heartbeat(&k, c.cert_id, nonce, 0, 0, &resp);
    assert_int_equal(st, 200);
    assert_true(json_is_true(json_object_get(resp, "ack")));
    gm_time server_time;
    assert_int_equal(gm_time_parse(json_string_value(json_object_get(resp, "server_time")), &server_time, &err), 0);
    json_decref(resp);
    row = node_row(c.cert_id);
    gm_time seen;
    assert_int_equal(gm_time_parse(json_string_value(json_object_get(row, "last_heartbeat")), &seen, &err), 0);
    assert_int_equal(seen.unix_s, server_time.unix_s);
    assert_string_equal(json_string_value(json_object_get(row, "heartbeat_status")), "healthy");
    json_decref(row);

    /* bad heartbeats: each refused with its reason, none recorded */
    st = ref_heartbeat(&k, c.cert_id, nonce, 0, 0, &resp);
    assert_error(resp, st, 401, "replayed_nonce", "nonce");
    json_decref(resp);
    st = ref_heartbeat(&k, c.cert_id, NULL, 400, 0, &resp);
    assert_error(resp, st, 401, "stale_timestamp", "");
    json_decref(resp);
    st = ref_heartbeat(&k, c.cert_id, NULL, 0, 1, &resp);
    assert_error(resp, st, 401, "bad_signature", "");
    json_decref(resp);
    st = ref_heartbeat(&k2, c.cert_id, NULL, 0, 0, &resp);
    assert_error(resp, st, 404, "unknown_certificate", "no certificate");
    json_decref(resp);
    /* a heartbeat's nonce is spent for /renew too (one scope per node key, as the reference) */
    st = ref_renew(&k, c.cert_id, NULL, nonce, &resp);
    assert_error(resp, st, 401, "replayed_nonce", "nonce");
    json_decref(resp);

    /* POST /renew with the reference's members: bad validity_hours refused with a clear error */
    static const char *const bad_validity[] = {"0", "-3", "\"5\"", "1.5", "true", "87841"};
    for (size_t i = 0; i < sizeof bad_validity / sizeof bad_validity[0]; i++) {
        st = ref_renew(&k, c.cert_id, bad_validity[i], NULL, &resp);
        assert_error(resp, st, 400, "invalid_field", "\"validity_hours\" must be");
        json_decref(resp);
    }
    /* above the invite's maximum: capped at it; roles asked for: ignored */
    st = ref_renew(&k, c.cert_id, "1000", NULL, &resp);
    assert_cert(resp, st, &k, &r);
    assert_int_equal(lifetime_h(&r), INVITE_MAX_HOURS);
    /* the renewal rules stay: the renewed one cannot renew again while the first is valid */
    st = ref_renew(&k, r.cert_id, "2", NULL, &resp);
    assert_error(resp, st, 429, "renewing_too_often", "");
    json_decref(resp);

    /* admin revoke: ours and the reference's members; reason may be left out (unspecified) */
    json_t *body = json_pack("{s:s}", "cert_id", c.cert_id);
    assert_int_equal(gm_na_admin_call(F->url, &F->op, "POST", "/admin/revoke", body, 0, NULL, &resp, &err), 0);
    json_decref(body);
    gm_na_revoke_answer rev;
    assert_int_equal(gm_na_revoke_answer_check(resp, &rev, &err), 0);
    assert_int_equal(json_integer_value(json_object_get(resp, "crl_sequence")), 1);
    assert_int_equal(json_integer_value(json_object_get(resp, "sequence")), 1);
    assert_int_equal(json_integer_value(json_object_get(resp, "revoked_count")), 1);
    assert_int_equal(rev.count, 1);
    json_decref(resp);
    row = node_row(c.cert_id);
    assert_string_equal(json_string_value(json_object_get(row, "reason")), "unspecified");
    json_decref(row);
    /* a revoked certificate's heartbeat is refused; the renewed one still beats */
    st = ref_heartbeat(&k, c.cert_id, NULL, 0, 0, &resp);
    assert_error(resp, st, 403, "certificate_revoked", "revoked");
    json_decref(resp);
    st = ref_heartbeat(&k, r.cert_id, NULL, 0, 0, &resp);
    assert_int_equal(st, 200);
    json_decref(resp);

    gm_cert_free(&r);
    gm_cert_free(&c);
    gm_signer_wipe(&k2);
    gm_signer_wipe(&k);
}

static void test_renew_honours_a_shorter_validity(void **state)
{
    (void)state;
    gm_signer k;
    gm_cert c, r;
    json_t *resp;
    char token[128];
    tk_signer(&k, 0x30, "node3");
    invite("[\"role:client\"]", INVITE_MAX_HOURS, token);
    int st = ref_join(&k, token, "[\"role:client\"]", &resp);
    assert_cert(resp, st, &k, &c);
    st = ref_renew(&k, c.cert_id, "2", NULL, &resp);
    assert_cert(resp, st, &k, &r);
    assert_int_equal(lifetime_h(&r), 2);
    gm_cert_free(&r);
    gm_cert_free(&c);
    gm_signer_wipe(&k);
}

static void test_heartbeat_refuses_malformed_bodies(void **state)
{
    (void)state;
    static const struct {
        const char *body, *code, *text;
    } cases[] = {
        {"", "malformed_json", "empty"},
        {"[1]", "invalid_body", "JSON object"},
        {"{\"cert_id\":\"x\",\"extra\":1}", "unknown_field", "\"extra\""},
        {"{\"status\":\"up\"}", "missing_field", "node_public_key"},
        {"{\"status\":\"a\\u0001b\"}", "invalid_field", "printable"},
        {"{\"status\":7}", "invalid_field", "\"status\" must be a string"},
    };
    char url[256];
    snprintf(url, sizeof url, "%s/heartbeat", F->url);
    const char *headers[] = {"Content-Type: application/json"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gm_http_req req = {.method = "POST", .url = url, .headers = headers, .n_headers = 1, .body = cases[i].body,
                           .body_len = strlen(cases[i].body), .timeout_ms = 20000};
        gm_http_resp r = {0};
        gm_error err = {0};
        assert_int_equal(gm_http_request(&req, &r, &err), 0);
        json_t *resp = json_loadb(r.body, r.len, 0, NULL);
        assert_error(resp, r.status, 400, cases[i].code, cases[i].text);
        json_decref(resp);
        gm_http_resp_free(&r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_client_flow),
        cmocka_unit_test(test_renew_honours_a_shorter_validity),
        cmocka_unit_test(test_heartbeat_refuses_malformed_bodies),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
