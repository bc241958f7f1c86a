/* Agents on the mesh: signed capability descriptors, request/response envelopes,
 * signed provenance, discovery through the NA with the requester's own checks,
 * invocation over the local node API, and the provider loop that serves a capability.
 * See docs/agents.md. */
#ifndef GM_AGENT_H
#define GM_AGENT_H

#include <jansson.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "gm/cert.h"
#include "gm/crl.h"
#include "gm/error.h"
#include "gm/genesis.h"
#include "gm/gmtime.h"
#include "gm/keys.h"

/* The mesh port every agent and requester uses. */
#define GM_AGENT_PORT "capability"
#define GM_AGENT_ID_MAX 64
#define GM_AGENT_CAP_MAX 64          /* characters of one capability name */
#define GM_AGENT_MAX_CAPS 16
#define GM_AGENT_DESC_MAX (16 * 1024)  /* serialized descriptor */
#define GM_AGENT_METADATA_MAX 4096     /* canonical bytes of metadata */
#define GM_AGENT_TTL_MAX_S 3600        /* expires_at - registered_at */
#define GM_AGENT_WINDOW_S 300          /* registered_at vs the NA's clock */
/* One envelope travels as one mesh message, which must stay under the wire's DATA
 * payload (about 64 KiB minus the end-to-end encryption overhead). */
#define GM_AGENT_MSG_MAX 60000
#define GM_AGENT_INPUT_MAX (32 * 1024)  /* canonical bytes of a request's input */
#define GM_AGENT_OUTPUT_MAX (32 * 1024) /* canonical bytes of a response's output */
#define GM_AGENT_STEPS_MAX 64
#define GM_AGENT_CERTS_MAX GM_AGENT_STEPS_MAX /* signer certificates in one response */
#define GM_AGENT_DETAIL_MAX 512
#define GM_AGENT_DEFAULT_TIMEOUT_MS 10000

/* ---- capability names ---- */

/* Normalise a capability name: "llm:chat" and "llm.chat" both give "llm.chat".
 * Accepts 1..GM_AGENT_CAP_MAX chars of [a-z0-9_-] segments separated by '.' or ':'. */
int gm_agent_cap_normalize(const char *in, char out[GM_AGENT_CAP_MAX + 1], gm_error *err) GM_MUST_CHECK;
/* agent ids: 1..GM_AGENT_ID_MAX chars of [A-Za-z0-9._-]. */
int gm_agent_id_valid(const char *id);

/* ---- descriptors (agent_desc.c) ---- */

typedef struct gm_agent_desc {
    json_t *doc;                 /* normalized document (owned) */
    const char *agent_id;        /* the rest point into doc */
    const char *network_name;
    uint8_t node_pk[GM_PK_LEN];
    char node_pk_b64[GM_PK_B64_LEN + 1];
    gm_time registered_at, expires_at;
    size_t n_caps;
} gm_agent_desc;

/* ---- envelopes (agent_envelope.c) ---- */

typedef struct gm_agent_request {
    json_t *doc;           /* owned */
    const char *request_id, *capability;
    const json_t *input;
    uint8_t requester[GM_PK_LEN];
    gm_time deadline;
} gm_agent_request;

typedef struct gm_agent_response {
    json_t *doc;           /* owned */
    const char *request_id, *capability;
    uint8_t provider[GM_PK_LEN];
    const json_t *output;  /* NULL when error is set */
    const char *error_code, *error_message; /* NULL on success */
    const json_t *provenance;
    const json_t *certificates; /* signers' certificate documents (array); NULL if absent */
} gm_agent_response;

/* Milliseconds left before the request's deadline (negative once past): the budget of
 * everything a handler does, nested calls included. */
long gm_agent_request_time_left_ms(const gm_agent_request *req);

void gm_agent_response_free(gm_agent_response *r);
/* Make output fit GM_AGENT_OUTPUT_MAX by shortening its string member (a long text): cut at a
 * UTF-8 boundary and ended with "\n[truncated by genesis-mesh: K of N bytes kept]", and
 * output's "truncated" set to "size". *kept and
 * *total receive the text's bytes kept and received (equal when nothing was cut). GM_ETOOBIG
 * when even an empty text does not fit, GM_EINVAL when member is not a string. */
int gm_agent_output_fit(json_t *output, const char *member, size_t *kept, size_t *total,
                        gm_error *err) GM_MUST_CHECK;

/* ---- provenance (agent_provenance.c) ---- */

/* Append a step signed by node to steps: {agent, action, capability, detail, at,
 * request_id, signer, sig}; sig covers the canonical JSON of the step without "sig". */
int gm_agent_step_add(json_t *steps, const gm_signer *node, const char *agent_id,
                      const char *action, const char *capability, const char *request_id,
                      const char *detail, gm_error *err) GM_MUST_CHECK;

/* ---- discovery (agent_discover.c) ---- */

typedef struct gm_agent_candidate {
    gm_agent_desc desc;
    gm_cert cert;
    int usable;            /* passed every check */
    char reason[600];      /* why not, when !usable */
} gm_agent_candidate;

typedef struct gm_agent_candidates {
    gm_agent_candidate *v; /* usable first, in selection order (agent_id, then node key) */
    size_t n, n_usable;
    uint64_t crl_sequence; /* CRL used for the checks */
    gm_crl crl;            /* that CRL, kept by gm_agent_discover (empty after gm_agent_select) */
} gm_agent_candidates;

/* What a requester knows: its node dir (node.key, genesis.json, node.json with na_url). */
typedef struct gm_agent_ctx {
    char dir[1024];
    char na_url[512];
    char sock[1100];
    gm_genesis genesis;
    gm_signer node;        /* the node's key (for signing provenance steps, descriptors) */
    char agent_id[GM_AGENT_ID_MAX + 1]; /* "" for a plain requester */
    long http_timeout_ms;
    struct gm_agent_cache *cache; /* discovery cache (agent_discover.c), shared by shallow copies */
    /* NA keys trusted besides genesis's: a node's next and previous blocks during an NA key
     * rotation (gm_agent_ctx_open, or set by the node); owned, freed by gm_agent_ctx_close. */
    gm_genesis also[2];
    size_t n_also;
} gm_agent_ctx;

/* Load dir (genesis, node key, node.json na_url; na_url overrides when not NULL). The node's
 * genesis.next.json and genesis.prev.json (an NA key rotation) are trusted too when they chain
 * with genesis.json and their NA window holds now. */
int gm_agent_ctx_open(gm_agent_ctx *c, const char *dir, const char *na_url, gm_error *err) GM_MUST_CHECK;
void gm_agent_ctx_close(gm_agent_ctx *c);

/* Fetch the NA's CRL, verify it under a trusted NA key; if dir/crl.json holds a verified
 * CRL with a higher sequence, that one wins. *crl must be freed. */
int gm_agent_fetch_crl(const gm_agent_ctx *c, gm_crl *crl, gm_error *err) GM_MUST_CHECK;

/* Pure part of discovery: check each listed {descriptor, certificate} (descriptor signature,
 * network, capability, liveness, cert under genesis + crl, cert key = descriptor key), skip
 * keys in exclude (n_exclude keys), then sort usable ones by agent_id then node key. */
int gm_agent_select(const json_t *listing, const char *capability, const gm_genesis *g,
                    const gm_crl *crl, gm_time now, const uint8_t (*exclude)[GM_PK_LEN],
                    size_t n_exclude, gm_agent_candidates *out, gm_error *err) GM_MUST_CHECK;
void gm_agent_candidates_free(gm_agent_candidates *cs);
/* 1 if this node's certificate roles may call capability under the access policy its node
 * holds (or it holds none it can check); 0 with why filled otherwise (agent_policy.c). */
int gm_agent_policy_allows(const gm_agent_ctx *c, const char *capability, char *why, size_t why_cap);
/* The raw listing (array of {descriptor, certificate}) for display, as the NA shows it to the
 * member node (it signs the request; the NA filters by its roles); *out owned. */
int gm_agent_list(const char *na_url, const gm_signer *node, const char *capability, long timeout_ms,
                  json_t **out, gm_error *err) GM_MUST_CHECK;

/* ---- invocation (agent_invoke.c) ---- */

/* Discover + select + invoke with failover: tries usable providers in order, re-discovering
 * after a failure; steps (may be NULL) receives signed "discovered"/"routed"/"failed" steps
 * by c->node and the providers' verified steps. *chosen gets the provider's agent_id. */
int gm_agent_call(const gm_agent_ctx *c, const char *capability, const json_t *input,
                  long timeout_ms, json_t *steps, const char *request_id_for_steps,
                  gm_agent_response *resp, char chosen[GM_AGENT_ID_MAX + 1], gm_error *err) GM_MUST_CHECK;
/* gm_agent_call that also appends to certs (may be NULL) the verified certificates of the
 * signers of the provider steps it appends to steps, so a provider can pass them on; for a
 * caller that remembers which provider served capability last (previous, an agent_id; NULL or
 * "" when none, as for a single call): when the call's own discovery finds previous
 * no longer usable, a signed "failed" step "failover: <previous>, which served <capability>
 * before, is <why>; selecting another provider" goes into steps before the new choice, so the
 * failover is visible to the requester. One discovery serves both. */
int gm_agent_call_after(const gm_agent_ctx *c, const char *capability, const json_t *input,
                        long timeout_ms, json_t *steps, json_t *certs,
                        const char *request_id_for_steps, const char *previous,
                        gm_agent_response *resp, char chosen[GM_AGENT_ID_MAX + 1],
                        gm_error *err) GM_MUST_CHECK;

/* ---- provider loop (agent_provider.c) ---- */

typedef struct gm_agent_call_in {
    const gm_agent_ctx *ctx;     /* the provider's own context (node key, NA, sock) */
    const gm_agent_request *req;
    json_t *steps;               /* the handler may append signed steps and nested chains */
    json_t *certs;               /* ...and the verified certificates of their signers */
    char *detail;                /* GM_AGENT_DETAIL_MAX+1 bytes: text of the "executed" step */
} gm_agent_call_in;

/* A capability handler: fill *output (owned by the loop afterwards) or return an error whose
 * message is returned to the requester (error code = gm_err_name(rc)). */
typedef int (*gm_agent_handler)(void *user, const gm_agent_call_in *in, json_t **output,
                                gm_error *err);

typedef struct gm_agent_provider {
    gm_agent_ctx ctx;
    const char *capability;       /* normalised */
    gm_agent_handler handler;
    void *user;
    int ttl_s;                    /* descriptor lifetime; refreshed at 2/3 of it */
    json_t *metadata;             /* borrowed, may be NULL */
    volatile sig_atomic_t *stop;  /* set by a signal handler to stop the loop */
    int max_inflight;
    const char *detail;           /* text of the "executed" step (NULL = "answered") */
    const char *fault;            /* testing aid: "silent", "garbage", "forge" or "uncertified"
                                     (no certificates attached); NULL normally */
    /* progress callback (NULL = the process log, gm/log.h, component "agent"): event name and text */
    void (*log)(void *user, const char *level, const char *event, const char *text);
} gm_agent_provider;

/* Register with the NA, subscribe, serve until *stop, then DELETE the registration: the
 * provider runtime of every agent (the shipped ones in agents/ are written on it). */
int gm_agent_provider_run(gm_agent_provider *p, gm_error *err) GM_MUST_CHECK;

#endif
