/* The Network Authority at the scale of a large network, over real HTTPS on loopback: an NA
 * whose store holds --certs certificates (default 100,000, real ones signed by its NA key, each
 * in the issuance log), --agents registered agents (default 10,000, real signed descriptors, 100
 * capabilities) and a CRL of --revoked entries (default 10,000), next to an empty NA measured in
 * the same run (the limit: what the same request costs when nothing has grown), and the ratio.
 * Medians and p99 over --samples requests (default 30) of:
 *   - join (invite made beforehand; the join alone: proof of possession, store, log, reply);
 *   - revoke (admin revoke of one certificate: the CRL re-signed with every entry);
 *   - CRL fetch (full GET /crl, parsed and verified);
 *   - discovery (GET /agents?capability=..., 100 agents of that capability in the big NA);
 *   - issuance-log checkpoint (GET /log/checkpoint right after a join: a new tree size).
 * Discovery and the log are read by an enrolled node (node-signed requests, as for members).
 * The store is filled before the NA starts (directly through the store, in batches), which is
 * what a long-lived network accumulates; the requests then go through the real NA process.
 *
 * usage: bench_na_scale [--bin GENESIS_MESH] [--certs N] [--agents N] [--revoked N] [--samples N] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "gm/agent.h"
#include "gm/canon.h"
#include "gm/cert.h"
#include "gm/crl.h"
#include "gm/genesis.h"
#include "gm/http_client.h"
#include "gm/keys.h"
#include "gm/merkle.h"
#include "gm/na_client.h"
#include "gm/util.h"

#include "bench_spawn.h"
#include "bench_util.h"
#include "core_internal.h"
#include "merkle_internal.h"
#include "store.h"

#define PROG "bench_na_scale"
#define NETWORK "bench-scale"
#define CAPS 100

static void die(const char *what, const gm_error *err)
{
    bench_die(PROG, what, err ? err->msg : NULL);
}

/* Append an issuance-log entry as the NA does (lib/na/na_issuance.c): canonical JSON, RFC 9162
 * leaf hash. */
static void log_append(gm_store_t *s, const char *kind, const char *cert_id, const char *pk_b64, json_t *extra,
                       const char *ts)
{
    gm_error e = {0};
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s}", "kind", kind, "cert_id", cert_id, "node_public_key", pk_b64,
                          "time", ts, "network_name", NETWORK);
    if (!o || json_object_update(o, extra) != 0)
        die("building a log entry", NULL);
    json_decref(extra);
    char *text = NULL;
    size_t len = 0;
    if (gm_canon_dump(o, &text, &len, &e) != 0)
        die("canonical JSON", &e);
    json_decref(o);
    gm_merkle_hash leaf;
    gm_merkle_leaf_hash(text, len, leaf);
    if (gm_store_log_append(s, kind, cert_id, text, leaf, NULL, &e) != 0)
        die("log append", &e);
    free(text);
}

static void fill(const char *dir, int n_certs, int n_agents, int n_revoked)
{
    char path[600];
    gm_error e = {0};
    gm_signer na;
    snprintf(path, sizeof path, "%s/na", dir);
    if (gm_signer_load(&na, path, "na-local", &e) != 0)
        die("NA key", &e);
    gm_store_t *s = NULL;
    snprintf(path, sizeof path, "%s/na.db", dir);
    if (gm_store_open(&s, path, &e) != 0)
        die("opening the store", &e);
    char(*ids)[37] = calloc((size_t)n_certs, 37);
    gm_signer *agents = calloc((size_t)(n_agents ? n_agents : 1), sizeof *agents);
    if (!ids || !agents)
        die("out of memory", NULL);
    json_t *roles = json_pack("[s]", "role:member");
    gm_time now = gm_time_now(), exp = gm_time_add(now, 30 * 86400);
    char ts[GM_TIME_STRLEN];
    gm_time_format(&now, ts);
    double t0 = now_s();
    for (int i = 0; i < n_certs; i++) {
        if (i % 2000 == 0 && (i ? gm_store_commit(s, &e) : 0) + gm_store_begin(s, &e) != 0)
            die("store transaction", &e);
        uint8_t pk[GM_PK_LEN];
        if (i < n_agents) {
            if (gm_signer_generate(&agents[i], "node", &e) != 0)
                die("node key", &e);
            memcpy(pk, agents[i].pk, GM_PK_LEN);
        } else {
            randombytes_buf(pk, sizeof pk);
        }
        gm_cert c;
        if (gm_cert_issue(&c, &na, NETWORK, pk, roles, now, exp, &e) != 0)
            die("issuing a certificate", &e);
        gm_store_cert sc;
        memset(&sc, 0, sizeof sc);
        snprintf(sc.cert_id, sizeof sc.cert_id, "%s", c.cert_id);
        snprintf(sc.node_pk, sizeof sc.node_pk, "%s", c.node_pk_b64);
        sc.roles_json = "[\"role:member\"]";
        sc.issued_at = now.unix_s;
        sc.expires_at = exp.unix_s;
        sc.max_validity_hours = 24 * 30;
        if (!(sc.doc = gm_cert_dump(&c, 0)))
            die("out of memory", NULL);
        if (gm_store_cert_add(s, &sc, &e) != 0)
            die("storing a certificate", &e);
        log_append(s, "issue", sc.cert_id, sc.node_pk, json_pack("{s:o}", "certificate", json_loads(sc.doc, 0, NULL)),
                   ts);
        memcpy(ids[i], c.cert_id, 37);
        free(sc.doc);
        gm_cert_free(&c);
    }
    if (gm_store_commit(s, &e) != 0)
        die("store commit", &e);
    double t1 = now_s();
    /* Revoked: the certificates after the agents' (the agents' nodes stay valid). */
    for (int i = 0; i < n_revoked && n_agents + i < n_certs; i++) {
        if (i % 2000 == 0 && (i ? gm_store_commit(s, &e) : 0) + gm_store_begin(s, &e) != 0)
            die("store transaction", &e);
        if (gm_store_revocation_add(s, ids[n_agents + i], ts, "cessation_of_operation", na.key_id, &e) != 0)
            die("recording a revocation", &e);
        log_append(s, "revoke", ids[n_agents + i], "-", json_pack("{s:s}", "reason", "cessation_of_operation"), ts);
    }
    if (n_revoked && gm_store_commit(s, &e) != 0)
        die("store commit", &e);
    for (int i = 0; i < n_agents; i++) {
        if (i % 2000 == 0 && (i ? gm_store_commit(s, &e) : 0) + gm_store_begin(s, &e) != 0)
            die("store transaction", &e);
        char id[32], cap[32];
        snprintf(id, sizeof id, "agent-%05d", i);
        snprintf(cap, sizeof cap, "cap-%02d", i % CAPS);
        json_t *caps = json_pack("[s]", cap);
        gm_agent_desc d;
        if (gm_agent_desc_build(&d, &agents[i], id, NETWORK, caps, "", 0, now, GM_AGENT_TTL_MAX_S, NULL, &e) != 0)
            die("agent descriptor", &e);
        json_decref(caps);
        char *doc = json_dumps(d.doc, JSON_COMPACT);
        const char *capv[1] = {cap};
        gm_store_agent a = {.agent_id = id, .node_pk = d.node_pk_b64, .caps = capv, .n_caps = 1,
                            .registered_at = d.registered_at.unix_s, .expires_at = d.expires_at.unix_s, .doc = doc};
        if (!doc || gm_store_agent_put(s, &a, &e) != 0)
            die("storing an agent", &e);
        free(doc);
        gm_agent_desc_free(&d);
        gm_signer_wipe(&agents[i]);
    }
    if (n_agents && gm_store_commit(s, &e) != 0)
        die("store commit", &e);
    printf("filled the store: %d certificates (%.1f s), %d revocations, %d agents (%.1f s in all)\n", n_certs, t1 - t0,
           n_revoked, n_agents, now_s() - t0);
    json_decref(roles);
    free(ids);
    free(agents);
    gm_signer_wipe(&na);
    gm_store_close(s);
}

typedef struct figures {
    double join[2], revoke[2], crl[2], discover[2], checkpoint[2]; /* p50, p99 in ms */
    size_t crl_entries, listed;
} figures;

static void p50_p99(double *v, int n, double out[2])
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    out[0] = v[n / 2] * 1e3;
    out[1] = v[(int)((n - 1) * 0.99 + 0.5)] * 1e3;
}

static void measure(const bench_na *na, int samples, figures *f)
{
    gm_error e = {0};
    gm_signer op;
    char path[600];
    snprintf(path, sizeof path, "%s/operator", na->dir);
    if (gm_signer_load(&op, path, "operator-local", &e) != 0)
        die("operator key", &e);
    gm_genesis g;
    if (gm_na_fetch_genesis(na->url, 0, &g, NULL, &e) != 0)
        die("GET /genesis", &e);
    /* Discovery and the log are for members: one enrolled node signs those reads. */
    gm_signer member;
    json_t *resp0 = NULL, *cert0 = NULL,
           *body0 = json_pack("{s:[s],s:i,s:i}", "roles", "role:member", "token_expiry_hours", 1,
                              "max_validity_hours", 24);
    if (gm_na_admin_call(na->url, &op, "POST", "/admin/invite", body0, 0, NULL, &resp0, &e) != 0 ||
        gm_signer_generate(&member, "node", &e) != 0 ||
        gm_na_join(na->url, &member, json_string_value(json_object_get(resp0, "token")), 0, 0, &cert0, &e) != 0)
        die("enrolling the member that reads", &e);
    json_decref(body0);
    json_decref(resp0);
    json_decref(cert0);
    double *t[5];
    for (int k = 0; k < 5; k++)
        if (!(t[k] = calloc((size_t)samples, sizeof(double))))
            die("out of memory", NULL);
    for (int i = 0; i < samples; i++) {
        json_t *resp = NULL, *cert = NULL, *body;
        body = json_pack("{s:[s],s:i,s:i}", "roles", "role:member", "token_expiry_hours", 1, "max_validity_hours", 24);
        if (gm_na_admin_call(na->url, &op, "POST", "/admin/invite", body, 0, NULL, &resp, &e) != 0)
            die("invite", &e);
        json_decref(body);
        gm_signer node;
        if (gm_signer_generate(&node, "node", &e) != 0)
            die("node key", &e);
        double t0 = now_s();
        if (gm_na_join(na->url, &node, json_string_value(json_object_get(resp, "token")), 0, 0, &cert, &e) != 0)
            die("join", &e);
        t[0][i] = now_s() - t0;
        json_decref(resp);
        gm_signer_wipe(&node);

        gm_checkpoint cp;
        t0 = now_s();
        if (gm_na_log_checkpoint_any(na->url, &member, (const uint8_t(*)[GM_PK_LEN])g.na_pk, 1, NETWORK, 30000, &cp,
                                     &e) != 0)
            die("GET /log/checkpoint", &e);
        t[4][i] = now_s() - t0;
        gm_checkpoint_free(&cp);

        const char *cert_id = json_string_value(json_object_get(cert, "cert_id"));
        body = json_pack("{s:s,s:s}", "cert_id", cert_id ? cert_id : "", "reason", "cessation_of_operation");
        resp = NULL;
        t0 = now_s();
        if (gm_na_admin_call(na->url, &op, "POST", "/admin/revoke", body, 0, NULL, &resp, &e) != 0)
            die("revoke", &e);
        t[1][i] = now_s() - t0;
        json_decref(body);
        json_decref(resp);
        json_decref(cert);

        gm_crl crl;
        int not_modified = 0;
        t0 = now_s();
        if (gm_na_fetch_crl(na->url, g.na_pk, NULL, 0, &crl, &not_modified, NULL, 0, &e) != 0)
            die("GET /crl", &e);
        t[2][i] = now_s() - t0;
        f->crl_entries = crl.n_revoked;
        gm_crl_free(&crl);

        json_t *listing = NULL;
        char cap[32];
        snprintf(cap, sizeof cap, "cap-%02d", i % CAPS);
        t0 = now_s();
        if (gm_agent_list(na->url, &member, cap, 30000, &listing, &e) != 0)
            die("GET /agents", &e);
        t[3][i] = now_s() - t0;
        f->listed = json_array_size(listing);
        json_decref(listing);
    }
    p50_p99(t[0], samples, f->join);
    p50_p99(t[1], samples, f->revoke);
    p50_p99(t[2], samples, f->crl);
    p50_p99(t[3], samples, f->discover);
    p50_p99(t[4], samples, f->checkpoint);
    for (int k = 0; k < 5; k++)
        free(t[k]);
    gm_genesis_free(&g);
    gm_signer_wipe(&member);
    gm_signer_wipe(&op);
}

static void row(const char *what, const double big[2], const double small[2])
{
    printf("  %-34s p50 %8.2f ms  p99 %8.2f ms   limit (empty NA) p50 %7.2f ms  ratio %6.1f\n", what, big[0], big[1],
           small[0], small[0] > 0 ? big[0] / small[0] : 0);
}

static bench_na small_na, big_na;

static void cleanup(void)
{
    bench_na_stop(&small_na, PROG);
    bench_na_stop(&big_na, PROG);
}

int main(int argc, char **argv)
{
    const char *bin_opt = NULL;
    int certs = 100000, agents = 10000, revoked = 10000, samples = 30;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--bin") && i + 1 < argc)
            bin_opt = argv[++i];
        else if (!strcmp(argv[i], "--certs") && i + 1 < argc)
            certs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--agents") && i + 1 < argc)
            agents = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--revoked") && i + 1 < argc)
            revoked = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--samples") && i + 1 < argc)
            samples = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--bin GENESIS_MESH] [--certs N] [--agents N] [--revoked N] [--samples N]\n",
                    PROG);
            return 2;
        }
    }
    if (certs < 1 || agents < 0 || revoked < 0 || agents + revoked > certs || samples < 2) {
        fprintf(stderr, "%s: need --certs >= --agents + --revoked and --samples >= 2\n", PROG);
        return 2;
    }
    gm_error err = {0};
    if (gm_init(&err) != 0)
        die("init", &err);
    const char *bin = bench_find_bin(bin_opt);
    atexit(cleanup);
    figures small = {0}, big = {0};
    bench_na_init(&small_na, PROG, bin, "--network " NETWORK);
    bench_na_start(&small_na, PROG, bin);
    measure(&small_na, samples, &small);
    bench_na_stop(&small_na, PROG);

    bench_na_init(&big_na, PROG, bin, "--network " NETWORK);
    fill(big_na.dir, certs, agents, revoked);
    double t0 = now_s();
    bench_na_start(&big_na, PROG, bin);
    double start_s = now_s() - t0;
    measure(&big_na, samples, &big);
    bench_na_stop(&big_na, PROG);

    printf("NA with %d certificates (%d in the log), %d agents, a CRL of %zu entries, %d samples each; NA start %.2f s\n",
           certs, certs + revoked, agents, big.crl_entries, samples, start_s);
    row("join", big.join, small.join);
    row("revoke (CRL re-signed)", big.revoke, small.revoke);
    row("CRL fetch (full, verified)", big.crl, small.crl);
    char what[64];
    snprintf(what, sizeof what, "discovery (%zu agents listed)", big.listed);
    row(what, big.discover, small.discover);
    row("log checkpoint after a join", big.checkpoint, small.checkpoint);
    return 0;
}
