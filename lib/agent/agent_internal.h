/* The agent layer's private API: envelopes, provenance and registration with the NA, used by
 * lib/agent/ itself (invocation, the provider loop) and by the unit tests and fuzz targets, but
 * by no program (agents call gm_agent_call and gm_agent_provider_run, gm/agent.h). */
#ifndef GM_AGENT_INTERNAL_H
#define GM_AGENT_INTERNAL_H

#include <sys/types.h>
#include <time.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "gm/agent.h"
#include "gm/error.h"

/* The blocks whose NA key c trusts: genesis, then the others (gm_agent_ctx_trust); returns how
 * many. Certificates, CRLs and policies verify under any of them. */
size_t gm_agent_ctx_trusted(const gm_agent_ctx *c, const gm_genesis *out[3]);
/* Trust current (the block c->genesis becomes) and others[0..n) (n <= 2: the next and previous
 * blocks of an NA key rotation) instead of what c trusted: all are copied. On failure c is unchanged. */
int gm_agent_ctx_trust(gm_agent_ctx *c, const gm_genesis *current, const gm_genesis *const others[], size_t n,
                       gm_error *err) GM_MUST_CHECK;
/* gm_agent_select under every block of gs[0..k) (a provider's certificate may be signed by any
 * trusted NA key). */
int gm_agent_select_any(const json_t *listing, const char *capability, const gm_genesis *const gs[], size_t k,
                        const gm_crl *crl, gm_time now, const uint8_t (*exclude)[GM_PK_LEN], size_t n_exclude,
                        gm_agent_candidates *out, gm_error *err) GM_MUST_CHECK;

/* New request: fresh request_id, deadline = now + timeout_ms. input is borrowed, copied;
 * its canonical form must be at most GM_AGENT_INPUT_MAX bytes (GM_ETOOBIG). */
int gm_agent_request_new(gm_agent_request *r, const char *capability, const json_t *input,
                         const uint8_t requester[GM_PK_LEN], long timeout_ms, gm_error *err);
/* Strict parse of a received request (size, type, members, limits). */
int gm_agent_request_parse(const char *text, size_t len, gm_agent_request *r, gm_error *err) GM_MUST_CHECK;
void gm_agent_request_free(gm_agent_request *r);
/* New response: exactly one of output (borrowed, shared) or error_code/message. provenance
 * (steps, borrowed: a new array of the same step objects, which are never changed once signed)
 * may be NULL. "certificates" starts empty. */
int gm_agent_response_new(gm_agent_response *r, const char *request_id, const char *capability,
                          const uint8_t provider[GM_PK_LEN], const json_t *output,
                          const char *error_code, const char *error_message,
                          const json_t *provenance, gm_error *err);
/* Replace the response's "certificates" with certs (array of at most GM_AGENT_CERTS_MAX
 * objects; borrowed: a new array of the same documents, which nobody changes). */
int gm_agent_response_set_certificates(gm_agent_response *r, const json_t *certs, gm_error *err);
int gm_agent_response_parse(const char *text, size_t len, gm_agent_response *r, gm_error *err) GM_MUST_CHECK;
/* Compact JSON text of an envelope's doc (malloc'd); GM_ETOOBIG above GM_AGENT_MSG_MAX. */
int gm_agent_envelope_dump(const json_t *doc, char **out, size_t *len, gm_error *err);
/* Actions a step may record. */
int gm_agent_action_valid(const char *action); /* discovered executed combined failed routed */
/* Verify one step: shape, action, and sig under its signer. */
int gm_agent_step_verify(const json_t *step, gm_error *err) GM_MUST_CHECK;
/* Verify a whole chain returned for request_id by provider: every step verifies; every
 * step of this request_id is signed by provider, and there is at least one. */
int gm_agent_provenance_verify(const json_t *steps, const char *request_id,
                               const uint8_t provider[GM_PK_LEN], gm_error *err) GM_MUST_CHECK;
/* Check who signed: the signer of every step must hold, among certs (array of certificate
 * documents, may be NULL), a certificate for its key that gm_cert_verify accepts under g and
 * crl at now (NA signature, network, validity window, not revoked). Fails at the first step
 * whose signer has none, naming the step, its agent and the reason: GM_EAUTH (no certificate
 * for that key), or the certificate's error (GM_EREVOKED, GM_EEXPIRED, GM_ESIG, GM_EFORMAT);
 * GM_EPROTO when certs holds something that is not a certificate. On success, vouched (may be
 * NULL) receives one accepted certificate per distinct signer, in step order. */
int gm_agent_provenance_check_signers(const json_t *steps, const json_t *certs, const gm_genesis *g,
                                      const gm_crl *crl, gm_time now, json_t *vouched,
                                      gm_error *err) GM_MUST_CHECK;
/* The same under every block of gs[0..k): a signer's certificate may be signed by any trusted NA key. */
int gm_agent_provenance_check_signers_any(const json_t *steps, const json_t *certs, const gm_genesis *const gs[],
                                          size_t k, const gm_crl *crl, gm_time now, json_t *vouched,
                                          gm_error *err) GM_MUST_CHECK;
/* What a provider attaches to its answer: for each distinct signer of steps, the first
 * certificate for its key found in pool (array of certificate documents), in step order.
 * Signers without one are left out (the requester will then reject). New reference. */
json_t *gm_agent_provenance_certs_for(const json_t *steps, const json_t *pool);
/* gm_agent_step_add with the time the step happened (at_time) rather than now: a caller that
 * signs its record of a step after the fact, off the call's critical path. */
int gm_agent_step_add_at(json_t *steps, const gm_signer *node, const char *agent_id, const char *action,
                         const char *capability, const char *request_id, const char *detail, gm_time at_time,
                         gm_error *err) GM_MUST_CHECK;
/* Send req to provider over the node at sock and wait for its response until the request's
 * deadline. Verifies the response (request_id, capability, provider, provenance chain, and
 * every signer's certificate under any of gs[0..k) and crl, see gm_agent_provenance_check_signers); on
 * success resp->certificates holds exactly one accepted certificate per signer.
 * Returns 0 with *resp set even when the provider answered an error; GM_ETIMEOUT when it
 * never answered, GM_EPROTO for garbage, forged provenance or an uncertified signer,
 * GM_ENET for no route. */
int gm_agent_invoke(const char *sock, const gm_agent_request *req,
                    const uint8_t provider[GM_PK_LEN], const gm_genesis *const gs[], size_t k, const gm_crl *crl,
                    gm_agent_response *resp, gm_error *err);
/* POST /agents a freshly signed descriptor. */
int gm_agent_register(const gm_agent_ctx *c, const char *capability, int ttl_s,
                      const json_t *metadata, gm_error *err);
/* DELETE /agents/<agent_id> with a node-signed body. */
int gm_agent_unregister(const gm_agent_ctx *c, gm_error *err);

/* The capability_response text a provider sends (malloc'd): output, or error code/message, with
 * the provenance steps and the certificate of every signer of steps found in pool (array of
 * certificate documents). When that cannot be encoded (too big), *text is instead a too_big
 * error answer with one "failed" step signed by node, *replaced is 1 and err says why. The
 * provider loop and the node's local API (`answer`) both answer through it. */
int gm_agent_reply_dump(const gm_signer *node, const char *agent_id, const char *rid, const char *cap,
                        const json_t *output, const char *code, const char *msg, const json_t *steps,
                        const json_t *pool, char **text, size_t *len, int *replaced, gm_error *err);

/* What a file of a node directory looked like (agent_discover.c): any change (the node wrote
 * a new CRL, policy or certificate) shows as a different stamp. exists 0: no such file. */
typedef struct agent_file_stamp {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    int exists;
} agent_file_stamp;

void agent_file_stamp_of(const char *dir, const char *name, agent_file_stamp *st);
int agent_file_stamp_eq(const agent_file_stamp *a, const agent_file_stamp *b);

/* Discovery and the call with certificates, for the library (node_agents.c) and the tests;
 * programs use gm_agent_call and gm_agent_call_after (gm/agent.h). */
/* GET na/agents?capability=... (signed by c->node: members only), then gm_agent_select with
 * the node's own verified CRL (kept in out->crl for checking the answer). Cached in c->cache
 * per capability while the node's CRL (D/crl.json), access policy and certificate stay the
 * same, for at most GM_AGENT_DISCOVERY_TTL_MS (a new or removed registration shows after
 * that); a call with exclude set (a failover) always asks the NA again. */
#define GM_AGENT_DISCOVERY_TTL_MS 2000
int gm_agent_discover(const gm_agent_ctx *c, const char *capability,
                      const uint8_t (*exclude)[GM_PK_LEN], size_t n_exclude,
                      gm_agent_candidates *out, gm_error *err) GM_MUST_CHECK;
/* gm_agent_call that also appends to certs (may be NULL) the verified certificates of the
 * signers of the provider steps it appends to steps, so a provider can pass them on. */
int gm_agent_call_collect(const gm_agent_ctx *c, const char *capability, const json_t *input,
                          long timeout_ms, json_t *steps, json_t *certs,
                          const char *request_id_for_steps, gm_agent_response *resp,
                          char chosen[GM_AGENT_ID_MAX + 1], gm_error *err) GM_MUST_CHECK;
/* On a provider's job thread (agent_provider.c), around one request: the calls made meanwhile
 * keep this thread's connection to the node subscribed from one to the next (no unsubscribe
 * and subscribe between a planner's nested calls); agent_calls_settle parks it, once the job's
 * answer left. */
void agent_calls_hold(void);
void agent_calls_settle(void);

#endif
