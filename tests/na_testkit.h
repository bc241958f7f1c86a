/* An NA in the test's own process, for the unit tests that talk to one over HTTP
 * (test_agent_registry, test_agent_discover_cache, test_na_member): its directory (NA key,
 * genesis, config with one operator key), certificates put straight into its store, agents
 * registered through POST /agents. Header-only; needs agent_testkit.h first. */
#ifndef GM_NA_TESTKIT_H
#define GM_NA_TESTKIT_H

#include "gm/http_client.h"
#include "gm/na.h"
#include "na_internal.h"
#include "store.h"

static inline void tk_write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    gm_error err = {0};
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(gm_file_write_atomic(path, text, strlen(text), 0600, &err), 0);
}

/* dir holds an NA of net: its key, genesis.json and a config.json naming the operator key of
 * seed 0x20 ("operator-local"). Files the test adds (an access policy) go in before tk_na_start. */
static inline void tk_na_dir(const char *dir, const tk_net *net)
{
    char path[512];
    gm_error err = {0};
    snprintf(path, sizeof path, "%s/na", dir);
    assert_int_equal(gm_signer_save(&net->na, path, 0, &err), 0);
    char *g = gm_genesis_dump(&net->g);
    tk_write_file(dir, "genesis.json", g);
    free(g);
    gm_signer op;
    tk_signer(&op, 0x20, "operator-local");
    json_t *cfg = json_pack("{s:s,s:s,s:s,s:[{s:s,s:s}]}", "network_name", net->g.network_name, "na_url",
                            "http://127.0.0.1:1", "listen", "127.0.0.1:0", "operator_keys", "key_id", "operator-local",
                            "public_key", op.pk_b64);
    char *text = json_dumps(cfg, 0);
    tk_write_file(dir, "config.json", text);
    free(text);
    json_decref(cfg);
    gm_signer_wipe(&op);
}

/* Start the NA of dir on a free loopback port; db, when not NULL, replaces its database path
 * (tk_store_location); threads, when not 0, its number of HTTP threads. url receives its base URL. */
static inline void tk_na_start(const char *dir, const char *db, unsigned threads, gm_na_t **na, char *url, size_t cap)
{
    gm_error err = {0};
    gm_na_config c;
    if (gm_na_config_load(&c, dir, &err) != 0)
        fail_msg("config: %s", err.msg);
    if (db)
        snprintf(c.db_path, sizeof c.db_path, "%s", db);
    if (threads)
        c.threads = threads;
    if (gm_na_new(na, &c, NULL, NULL, &err) != 0 || gm_na_start(*na, "127.0.0.1:0", &err) != 0)
        fail_msg("NA: %s", err.msg);
    snprintf(url, cap, "http://127.0.0.1:%u", (unsigned)gm_na_port(*na));
}

/* Certificate c in the NA's store, as if the NA had issued it (its roles from the document). */
static inline void tk_na_store_cert(gm_na_t *na, const gm_cert *c)
{
    gm_error err = {0};
    gm_store_cert sc;
    char *roles = json_dumps(json_object_get(c->doc, "roles"), JSON_COMPACT);
    memset(&sc, 0, sizeof sc);
    snprintf(sc.cert_id, sizeof sc.cert_id, "%s", c->cert_id);
    snprintf(sc.node_pk, sizeof sc.node_pk, "%s", c->node_pk_b64);
    sc.roles_json = roles;
    sc.issued_at = c->issued_at.unix_s;
    sc.expires_at = c->expires_at.unix_s;
    sc.max_validity_hours = 168;
    sc.doc = gm_cert_dump(c, 0);
    assert_int_equal(gm_store_cert_add(gm_na_store(na), &sc, &err), 0);
    free(sc.doc);
    free(roles);
}

/* Register agent_id of node k offering cap, on the NA at url (201 expected). */
static inline void tk_na_register(const char *url, const gm_signer *k, const char *agent_id, const char *network,
                                  const char *cap)
{
    gm_agent_desc d;
    char target[256], *text;
    gm_error err = {0};
    tk_desc(&d, k, agent_id, network, cap);
    text = json_dumps(d.doc, JSON_COMPACT);
    snprintf(target, sizeof target, "%s/agents", url);
    const char *hdr[] = {"Content-Type: application/json"};
    gm_http_req req = {.method = "POST", .url = target, .headers = hdr, .n_headers = 1, .body = text,
                       .body_len = strlen(text)};
    gm_http_resp resp = {0};
    assert_int_equal(gm_http_request(&req, &resp, &err), 0);
    if (resp.status != 201)
        fail_msg("register %s: %d %s", agent_id, resp.status, resp.body);
    gm_http_resp_free(&resp);
    free(text);
    gm_agent_desc_free(&d);
}

#endif
