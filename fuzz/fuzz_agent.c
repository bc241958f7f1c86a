/* Fuzz target for what agents receive: the input is tried as an agent descriptor, a
 * capability_request, a capability_response (with its provenance), one provenance step
 * or a chain, an NA agent listing for discovery, and (when short) a capability name.
 * Whatever is accepted must re-serialize to something that parses to the same thing,
 * verification must be stable across that round trip, and discovery must only call
 * usable what passes every check. Violations abort(). Keys and clock are fixed so the
 * seeds (fuzz/corpus/fuzz_agent/) keep verifying. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gm/agent.h"
#include "gm/canon.h"
#include "gm/cert.h"
#include "gm/genesis.h"
#include "gm/gmtime.h"
#include "gm/keys.h"
#include "agent_internal.h"
#include "core_internal.h"

#define FAIL(why)                                                                  \
    do {                                                                           \
        fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, why); \
        abort();                                                                   \
    } while (0)

#define FUZZ_T0 INT64_C(1780000000)
#define FUZZ_NOW_S (FUZZ_T0 + 1000)

static gm_genesis genesis; /* TESTNET, root seed 0x00.., NA seed 0x40.. */
static gm_signer node;     /* the agent's node key, seed 0x80.. */
static gm_cert node_cert;  /* node's certificate from the NA */
static int ready;

static void signer_seeded(gm_signer *k, uint8_t base, const char *id)
{
    uint8_t seed[GM_SEED_LEN];
    gm_error err = {0};
    for (int i = 0; i < GM_SEED_LEN; i++)
        seed[i] = (uint8_t)(base + i);
    if (gm_signer_from_seed(k, seed, id, &err) != 0)
        FAIL("cannot derive a key");
}

static void setup(void)
{
    gm_signer root, na;
    gm_error err = {0};
    signer_seeded(&root, 0x00, "rs-local");
    signer_seeded(&na, 0x40, "na-local");
    signer_seeded(&node, 0x80, "node");
    gm_time from = gm_time_from_unix(FUZZ_T0);
    json_t *roles = json_pack("[s]", "role:agent");
    if (gm_genesis_create(&genesis, "TESTNET", root.pk, na.pk, from, gm_time_add(from, 365 * 86400), NULL, &err) != 0 ||
        gm_genesis_sign(&genesis, &root, &err) != 0 ||
        gm_cert_issue(&node_cert, &na, "TESTNET", node.pk, roles, from, gm_time_add(from, 30 * 86400), &err) != 0)
        FAIL("cannot build the fixed genesis or certificate");
    json_decref(roles);
    gm_signer_wipe(&root);
    gm_signer_wipe(&na);
    ready = 1;
}

static char *canon(const json_t *v)
{
    char *out = NULL;
    size_t len;
    gm_error err = {0};
    if (gm_canon_dump(v, &out, &len, &err) != 0)
        return NULL;
    return out;
}

static void same_canon_or_abort(const json_t *a, const json_t *b)
{
    char *x = canon(a), *y = canon(b);
    if (!x || !y || strcmp(x, y) != 0)
        FAIL("canonical JSON refused the signed part of two documents or they differ");
    free(x);
    free(y);
}

static void try_desc(const char *text, size_t len)
{
    gm_agent_desc d, back;
    gm_error err = {0};
    gm_time now = gm_time_from_unix(FUZZ_NOW_S);
    if (gm_agent_desc_parse(text, len, &d, &err) != 0)
        return;
    if (!gm_agent_id_valid(d.agent_id) || d.n_caps == 0 || d.n_caps > GM_AGENT_MAX_CAPS)
        FAIL("accepted descriptor with an invalid agent_id or capability count");
    for (size_t i = 0; i < d.n_caps; i++) {
        char norm[GM_AGENT_CAP_MAX + 1];
        const char *cap = gm_agent_desc_cap(&d, i);
        /* capabilities are stored normalised */
        if (!cap || gm_agent_cap_normalize(cap, norm, &err) != 0 || strcmp(cap, norm) != 0 ||
            !gm_agent_desc_has_cap(&d, cap))
            FAIL("descriptor capability not stored normalised");
    }
    int verified = gm_agent_desc_verify(&d, &err) == 0;
    /* Any verdict is fine on fuzzed input; both checks run. */
    if (gm_agent_desc_check_window(&d, now, GM_AGENT_TTL_MAX_S, &err) != 0) {
    }
    if (gm_agent_desc_check_live(&d, now, &err) != 0) {
    }
    char *dump = canon(d.doc);
    if (!dump || gm_agent_desc_parse(dump, strlen(dump), &back, &err) != 0)
        FAIL("a normalized descriptor does not parse again");
    same_canon_or_abort(d.doc, back.doc);
    if (memcmp(d.node_pk, back.node_pk, GM_PK_LEN) != 0 || gm_time_cmp(&d.registered_at, &back.registered_at) != 0 ||
        gm_time_cmp(&d.expires_at, &back.expires_at) != 0 || (gm_agent_desc_verify(&back, &err) == 0) != verified)
        FAIL("descriptor changes meaning or verification over a round trip");
    free(dump);
    gm_agent_desc_free(&back);
    gm_agent_desc_free(&d);
}

static void try_request(const char *text, size_t len)
{
    gm_agent_request r, back;
    gm_error err = {0};
    char *out;
    size_t olen;
    if (gm_agent_request_parse(text, len, &r, &err) != 0)
        return;
    if (!r.request_id || !r.capability || !r.input)
        FAIL("accepted request lacks request_id, capability or input");
    if (gm_agent_envelope_dump(r.doc, &out, &olen, &err) != 0)
        goto done; /* numbers may re-render longer than the limit; refusing is fine */
    if (gm_agent_request_parse(out, olen, &back, &err) != 0)
        FAIL("a dumped request does not parse again");
    if (strcmp(r.request_id, back.request_id) || strcmp(r.capability, back.capability) ||
        memcmp(r.requester, back.requester, GM_PK_LEN) || gm_time_cmp(&r.deadline, &back.deadline) ||
        !json_equal((json_t *)r.input, (json_t *)back.input))
        FAIL("request changes over a dump -> parse round trip");
    gm_agent_request_free(&back);
    free(out);
done:
    gm_agent_request_free(&r);
}

static void try_response(const char *text, size_t len)
{
    gm_agent_response r, back;
    gm_error err = {0};
    char *out;
    size_t olen;
    if (gm_agent_response_parse(text, len, &r, &err) != 0)
        return;
    if (!r.request_id || !r.capability || !json_is_array(r.provenance) ||
        (r.output == NULL) == (r.error_code == NULL) || (r.error_code && !r.error_message))
        FAIL("accepted response breaks the output-xor-error rule");
    int chain_ok = gm_agent_provenance_verify(r.provenance, r.request_id, r.provider, &err) == 0;
    if (gm_agent_envelope_dump(r.doc, &out, &olen, &err) != 0)
        goto done;
    if (gm_agent_response_parse(out, olen, &back, &err) != 0)
        FAIL("a dumped response does not parse again");
    if (strcmp(r.request_id, back.request_id) || strcmp(r.capability, back.capability) ||
        memcmp(r.provider, back.provider, GM_PK_LEN) || !r.error_code != !back.error_code ||
        (r.error_code && (strcmp(r.error_code, back.error_code) || strcmp(r.error_message, back.error_message))) ||
        (r.output && !json_equal((json_t *)r.output, (json_t *)back.output)) ||
        (gm_agent_provenance_verify(back.provenance, back.request_id, back.provider, &err) == 0) != chain_ok)
        FAIL("response or its provenance verification changes over the wire round trip");
    gm_agent_response_free(&back);
    free(out);
done:
    gm_agent_response_free(&r);
}

/* One step (object) or a chain (array): verification must survive canonical re-serialization. */
static void try_steps(const json_t *v)
{
    gm_error err = {0};
    if (json_is_object(v)) {
        if (gm_agent_step_verify(v, &err) != 0)
            return;
        char *c = canon(v);
        json_t *again = c ? json_loads(c, 0, NULL) : NULL;
        if (!again || gm_agent_step_verify(again, &err) != 0)
            FAIL("a verified step no longer verifies after canonical re-serialization");
        json_decref(again);
        free(c);
    } else if (json_is_array(v)) {
        const json_t *first = json_array_get(v, 0);
        const char *rid = json_string_value(json_object_get(first, "request_id"));
        uint8_t pk[GM_PK_LEN];
        if (!rid || gm_pk_decode(json_string_value(json_object_get(first, "signer")), pk, &err) != 0) {
            if (gm_agent_provenance_verify(v, "00000000-0000-4000-8000-000000000000", node.pk, &err) != 0) {
                /* any verdict is fine on fuzzed input */
            }
            return;
        }
        if (gm_agent_provenance_verify(v, rid, pk, &err) != 0)
            return;
        /* every step verifies on its own, and the chain holds a step of rid by pk */
        for (size_t i = 0; i < json_array_size(v); i++)
            if (gm_agent_step_verify(json_array_get(v, i), &err) != 0)
                FAIL("a verified chain holds a step that does not verify");
    }
}

/* An NA listing: [{descriptor, certificate}, ...]. */
static void try_listing(const json_t *v)
{
    gm_agent_candidates cs;
    gm_error err = {0};
    gm_time now = gm_time_from_unix(FUZZ_NOW_S);
    static const char *const caps[] = {"llm.chat", "repo:summary"};
    for (size_t k = 0; k < 2; k++) {
        uint8_t exclude[1][GM_PK_LEN];
        memcpy(exclude[0], node.pk, GM_PK_LEN);
        if (gm_agent_select(v, caps[k], &genesis, NULL, now, (const uint8_t(*)[GM_PK_LEN])exclude, k, &cs, &err) != 0)
            continue;
        size_t usable = 0;
        for (size_t i = 0; i < cs.n; i++) {
            gm_agent_candidate *c = &cs.v[i];
            if (!c->usable) {
                if (i < cs.n_usable || !c->reason[0])
                    FAIL("unusable candidate sorted first or without a reason");
                continue;
            }
            usable++;
            char norm[GM_AGENT_CAP_MAX + 1];
            if (i >= cs.n_usable || gm_agent_cap_normalize(caps[k], norm, &err) != 0 ||
                !gm_agent_desc_has_cap(&c->desc, norm) || gm_agent_desc_verify(&c->desc, &err) != 0 ||
                memcmp(c->cert.node_pk, c->desc.node_pk, GM_PK_LEN) != 0 ||
                gm_cert_verify(&c->cert, &genesis, NULL, now, &err) != 0 || (k == 1 && !memcmp(c->desc.node_pk, node.pk, GM_PK_LEN)))
                FAIL("discovery called a candidate usable that fails a check");
            if (i > 0 && cs.v[i - 1].usable && strcmp(cs.v[i - 1].desc.agent_id, c->desc.agent_id) > 0)
                FAIL("usable candidates not sorted by agent_id");
        }
        if (usable != cs.n_usable)
            FAIL("n_usable does not count the usable candidates");
        gm_agent_candidates_free(&cs);
    }
}

static void try_cap(const char *s)
{
    char a[GM_AGENT_CAP_MAX + 1], b[GM_AGENT_CAP_MAX + 1];
    gm_error err = {0};
    if (gm_agent_cap_normalize(s, a, &err) != 0)
        return;
    if (strchr(a, ':') || gm_agent_cap_normalize(a, b, &err) != 0 || strcmp(a, b) != 0)
        FAIL("capability normalisation is not idempotent");
    (void)gm_agent_id_valid(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ready)
        setup();
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    try_desc(text, size);
    try_request(text, size);
    try_response(text, size);
    json_t *v = json_loadb(text, size, JSON_REJECT_DUPLICATES, NULL);
    if (v) {
        try_steps(v);
        if (json_is_array(v))
            try_listing(v);
        json_decref(v);
    }
    if (size <= 2 * GM_AGENT_CAP_MAX)
        try_cap(text);
    free(text);
    return 0;
}
