/* Shared fixtures of the agent unit tests: a small network (root, NA, genesis) and nodes
 * with certificates, all from fixed seeds. Header-only, included by tests/test_agent_*.c. */
#ifndef GM_AGENT_TESTKIT_H
#define GM_AGENT_TESTKIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "gm/agent.h"
#include "gm/util.h"
#include "core_internal.h"

typedef struct tk_net {
    gm_signer root, na;
    gm_genesis g;
} tk_net;

static inline void tk_signer(gm_signer *k, uint8_t first, const char *id)
{
    uint8_t seed[GM_SEED_LEN];
    gm_error err = {0};
    for (int i = 0; i < GM_SEED_LEN; i++)
        seed[i] = (uint8_t)(first + i);
    assert_int_equal(gm_signer_from_seed(k, seed, id, &err), 0);
}

static inline void tk_net_init(tk_net *n, const char *network)
{
    gm_error err = {0};
    assert_int_equal(gm_init(&err), 0);
    tk_signer(&n->root, 0x10, "rs-local");
    tk_signer(&n->na, 0x40, "na-local");
    gm_time now = gm_time_now();
    assert_int_equal(gm_genesis_create(&n->g, network, n->root.pk, n->na.pk, gm_time_add(now, -86400),
                                       gm_time_add(now, 86400 * 365), NULL, &err), 0);
    assert_int_equal(gm_genesis_sign(&n->g, &n->root, &err), 0);
}

static inline void tk_net_free(tk_net *n)
{
    gm_genesis_free(&n->g);
    gm_signer_wipe(&n->root);
    gm_signer_wipe(&n->na);
}

/* A certificate for node signed by na (the network's NA or another key) for network. */
/* The first, empty CRL (sequence 0) of the network whose NA key is na. */
static inline void tk_empty_crl(gm_crl *c, const gm_signer *na)
{
    gm_error err = {0};
    json_t *none = json_array();
    assert_int_equal(gm_crl_issue(c, na, 0, none, gm_time_now(), 86400, &err), 0);
    json_decref(none);
}

static inline void tk_cert(gm_cert *c, const gm_signer *na, const char *network, const gm_signer *node)
{
    gm_error err = {0};
    json_t *roles = json_pack("[s]", "role:service:agent");
    gm_time now = gm_time_now();
    assert_int_equal(gm_cert_issue(c, na, network, node->pk, roles, gm_time_add(now, -60), gm_time_add(now, 86400), &err), 0);
    json_decref(roles);
}

/* A descriptor by node offering cap, registered now. */
static inline void tk_desc(gm_agent_desc *d, const gm_signer *node, const char *agent_id, const char *network,
                           const char *cap)
{
    gm_error err = {0};
    json_t *caps = json_pack("[s]", cap);
    int rc = gm_agent_desc_build(d, node, agent_id, network, caps, "", 0, gm_time_now(), 600, NULL, &err);
    if (rc != 0)
        fail_msg("descriptor build: %s", err.msg);
    json_decref(caps);
}

/* One listing entry {descriptor, certificate} (new reference). */
static inline json_t *tk_entry(const gm_agent_desc *d, const gm_cert *c)
{
    return json_pack("{s:O,s:O}", "descriptor", d->doc, "certificate", c->doc);
}

#endif
