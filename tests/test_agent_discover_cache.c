/* The requester's discovery cache (lib/agent/agent_discover.c), against a real NA served
 * in-process and a node directory on disk: a listing is reused within its TTL, dropped at
 * once when the node's CRL (D/crl.json) changes, and checked against that CRL (a provider
 * the node knows revoked is refused although the NA still lists it); a failover asks the NA
 * again; an empty listing is never kept. Timing-dependent checks only run when the calls
 * really came within the TTL (tests never assert on wall-clock time). */
#include <sys/stat.h>
#include <unistd.h>

#include "agent_testkit.h"
#include "na_testkit.h"
#include "gm/http_client.h"
#include "gm/na.h"
#include "agent_internal.h"
#include "core_internal.h"
#include "na_internal.h"
#include "store.h"

typedef struct fx {
    char dir[256], node[300];
    char url[128];
    tk_net net;
    gm_na_t *na;
    gm_signer req, p1, p2, p3;
    gm_cert c_req, c_p1, c_p2, c_p3;
    gm_agent_ctx ctx;
} fx;

/* D/crl.json: sequence seq, revoking cert (NULL: nobody). */
static void node_crl(fx *f, uint64_t seq, const gm_cert *cert)
{
    gm_crl c;
    gm_error err = {0};
    json_t *revoked = cert ? json_pack("[{s:s,s:s,s:s,s:s}]", "certificate_id", cert->cert_id, "revoked_at",
                                       "2026-01-01T00:00:00Z", "reason", "key_compromise", "issuer", "na-local")
                           : json_array();
    assert_int_equal(gm_crl_issue(&c, &f->net.na, seq, revoked, gm_time_now(), 86400, &err), 0);
    char *text = gm_crl_dump(&c, 0);
    tk_write_file(f->node, "crl.json", text);
    free(text);
    gm_crl_free(&c);
    json_decref(revoked);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    gm_error err = {0};
    char path[512];
    snprintf(f->dir, sizeof f->dir, "%s/gm-test-dcache.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(f->dir));
    tk_net_init(&f->net, "TESTNET");
    tk_na_dir(f->dir, &f->net);
    tk_na_start(f->dir, NULL, 0, &f->na, f->url, sizeof f->url);
    tk_signer(&f->req, 0x60, "req");
    tk_signer(&f->p1, 0x70, "p1");
    tk_signer(&f->p2, 0x80, "p2");
    tk_signer(&f->p3, 0x90, "p3");
    tk_cert(&f->c_req, &f->net.na, "TESTNET", &f->req);
    tk_cert(&f->c_p1, &f->net.na, "TESTNET", &f->p1);
    tk_cert(&f->c_p2, &f->net.na, "TESTNET", &f->p2);
    tk_cert(&f->c_p3, &f->net.na, "TESTNET", &f->p3);
    tk_na_store_cert(f->na, &f->c_req);
    tk_na_store_cert(f->na, &f->c_p1);
    tk_na_store_cert(f->na, &f->c_p2);
    tk_na_store_cert(f->na, &f->c_p3);
    /* the requester's node directory */
    snprintf(f->node, sizeof f->node, "%s/node", f->dir);
    assert_int_equal(mkdir(f->node, 0700), 0);
    char *g = gm_genesis_dump(&f->net.g);
    tk_write_file(f->node, "genesis.json", g);
    free(g);
    snprintf(path, sizeof path, "%s/node", f->node);
    assert_int_equal(gm_signer_save(&f->req, path, 0, &err), 0);
    node_crl(f, 0, NULL);
    if (gm_agent_ctx_open(&f->ctx, f->node, f->url, &err) != 0)
        fail_msg("ctx: %s", err.msg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    char cmd[400];
    gm_agent_ctx_close(&f->ctx);
    gm_na_free(f->na);
    gm_cert *certs[] = {&f->c_req, &f->c_p1, &f->c_p2, &f->c_p3};
    gm_signer *keys[] = {&f->req, &f->p1, &f->p2, &f->p3};
    for (size_t i = 0; i < 4; i++) {
        gm_cert_free(certs[i]);
        gm_signer_wipe(keys[i]);
    }
    tk_net_free(&f->net);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void discover(fx *f, const char *cap, const uint8_t (*ex)[GM_PK_LEN], size_t n_ex, size_t *n, size_t *usable)
{
    gm_agent_candidates cs;
    gm_error err = {0};
    if (gm_agent_discover(&f->ctx, cap, ex, n_ex, &cs, &err) != 0)
        fail_msg("discover %s: %s", cap, err.msg);
    *n = cs.n;
    *usable = cs.n_usable;
    gm_agent_candidates_free(&cs);
}

static void test_listing_kept_until_the_node_crl_changes(void **state)
{
    fx *f = *state;
    size_t n, usable;
    tk_na_register(f->url, &f->p1, "repo-1", "TESTNET", "repo.summary");
    int64_t t0 = gm_mono_ms();
    discover(f, "repo.summary", NULL, 0, &n, &usable);
    assert_int_equal(n, 1);
    assert_int_equal(usable, 1);
    tk_na_register(f->url, &f->p2, "repo-2", "TESTNET", "repo.summary");
    discover(f, "repo.summary", NULL, 0, &n, &usable);
    if (gm_mono_ms() - t0 < GM_AGENT_DISCOVERY_TTL_MS)
        assert_int_equal(n, 1); /* the kept listing: the NA was not asked again */
    /* The node learns a new CRL revoking repo-1's key: the cache goes at once, and the node's
     * CRL decides although the NA still lists repo-1. */
    node_crl(f, 1, &f->c_p1);
    discover(f, "repo.summary", NULL, 0, &n, &usable);
    assert_int_equal(n, 2);
    assert_int_equal(usable, 1);
}

/* A kept listing's documents are parsed once: the next call's candidates share them (the same
 * descriptor and certificate documents, and the cached CRL's), and read the same; a new CRL
 * starts over. */
static void test_kept_listing_parsed_once_and_shared(void **state)
{
    fx *f = *state;
    gm_agent_candidates a, b, c;
    gm_error err = {0};
    tk_na_register(f->url, &f->p1, "repo-1", "TESTNET", "repo.summary");
    int64_t t0 = gm_mono_ms();
    if (gm_agent_discover(&f->ctx, "repo.summary", NULL, 0, &a, &err) != 0 ||
        gm_agent_discover(&f->ctx, "repo.summary", NULL, 0, &b, &err) != 0)
        fail_msg("discover: %s", err.msg);
    assert_int_equal(a.n_usable, 1);
    assert_int_equal(b.n_usable, 1);
    assert_string_equal(b.v[0].desc.agent_id, "repo-1");
    assert_memory_equal(b.v[0].cert.node_pk, f->p1.pk, GM_PK_LEN);
    assert_ptr_equal(a.crl.doc, b.crl.doc);
    if (gm_mono_ms() - t0 < GM_AGENT_DISCOVERY_TTL_MS) { /* the kept listing both times */
        assert_ptr_equal(a.v[0].desc.doc, b.v[0].desc.doc);
        assert_ptr_equal(a.v[0].cert.doc, b.v[0].cert.doc);
    }
    /* freeing one call's candidates leaves the next call's intact (ASan: no use after free) */
    gm_agent_candidates_free(&a);
    assert_string_equal(b.v[0].desc.agent_id, "repo-1");
    assert_int_equal(gm_cert_verify(&b.v[0].cert, &f->net.g, &b.crl, gm_time_now(), &err), 0);
    node_crl(f, 1, NULL);
    if (gm_agent_discover(&f->ctx, "repo.summary", NULL, 0, &c, &err) != 0)
        fail_msg("discover: %s", err.msg);
    assert_int_equal(c.crl.sequence, 1);
    assert_ptr_not_equal(c.v[0].desc.doc, b.v[0].desc.doc);
    assert_int_equal(c.n_usable, 1);
    gm_agent_candidates_free(&b);
    gm_agent_candidates_free(&c);
}

static void test_failover_and_empty_listings_ask_the_na(void **state)
{
    fx *f = *state;
    size_t n, usable;
    /* nobody offers it yet: an empty answer is not kept */
    discover(f, "repo.summary", NULL, 0, &n, &usable);
    assert_int_equal(n, 0);
    tk_na_register(f->url, &f->p1, "repo-1", "TESTNET", "repo.summary");
    discover(f, "repo.summary", NULL, 0, &n, &usable);
    assert_int_equal(n, 1);
    /* a failover (exclude set) asks the NA again and sees the newcomer at once */
    tk_na_register(f->url, &f->p3, "repo-3", "TESTNET", "repo.summary");
    uint8_t ex[1][GM_PK_LEN];
    memcpy(ex[0], f->p1.pk, GM_PK_LEN);
    discover(f, "repo.summary", (const uint8_t(*)[GM_PK_LEN])ex, 1, &n, &usable);
    assert_int_equal(n, 2);
    assert_int_equal(usable, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_listing_kept_until_the_node_crl_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kept_listing_parsed_once_and_shared, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failover_and_empty_listings_ask_the_na, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
