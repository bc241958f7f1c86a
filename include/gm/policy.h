/* The access policy: which roles may invoke which capabilities, send to which mesh ports,
 * and peer with or relay for which roles. Written by the operator as a rules file (one rule a
 * line, docs/access-policy.md), signed by the NA like the CRL; the sequence only goes up. */
#ifndef GM_POLICY_H
#define GM_POLICY_H

#include <jansson.h>
#include <stdint.h>

#include "gm/error.h"
#include "gm/gmtime.h"
#include "gm/keys.h"

#define GM_POLICY_MAX_BYTES (1024 * 1024)
#define GM_POLICY_MAX_RULES 1024
#define GM_POLICY_MAX_NAMES 64   /* roles or patterns in one rule */
#define GM_POLICY_NAME_MAX 128   /* characters of one role, capability, port or pattern */

typedef enum gm_policy_kind {
    GM_POLICY_CAPABILITY = 0, /* subject roles invoke a capability */
    GM_POLICY_PORT = 1,       /* subject roles send a data message to a mesh port */
    GM_POLICY_PEER = 2,       /* subject roles hold a link with a node of the object roles */
    GM_POLICY_RELAY = 3,      /* subject roles forward traffic from a node of the object roles */
    GM_POLICY_KINDS = 4
} gm_policy_kind;

typedef struct gm_policy {
    json_t *doc; /* normalized document (owned) */
    char policy_id[37];
    uint64_t sequence;
    gm_time issued_at;
    const char *issuer;
    int default_allow;
    size_t n_rules;
} gm_policy;

/* What decided a question: the first rule that matches, or the default. */
typedef struct gm_policy_decision {
    int allowed;
    int rule;            /* 1-based rule number, 0 = the default */
    uint64_t sequence;   /* of the policy that decided */
    char text[320];      /* "rule 2: deny role:crm capability finance.*" or "default deny" */
} gm_policy_decision;

/* The deny-by-default rules file for the seed's four agents and the demo's services. */
extern const char gm_policy_seed_example[];

/* "capability", "port", "peer", "relay". */
const char *gm_policy_kind_name(gm_policy_kind k);

/* Parse the operator's rules file into {"default": "allow"|"deny", "rules": [...]} (new
 * reference in *out). Errors name the line: "line 4: unknown kind 'ports' (capability, ...)". */
int gm_policy_rules_parse(const char *text, size_t len, json_t **out, gm_error *err) GM_MUST_CHECK;
/* Render a normalized rule back as one line of the rules file (malloc'd). */
char *gm_policy_rule_text(const json_t *rule) GM_MUST_CHECK;

int gm_policy_parse(const char *text, size_t len, gm_policy *p, gm_error *err) GM_MUST_CHECK;
/* Build and sign policy `sequence` from body ({"default", "rules"} as gm_policy_rules_parse
 * makes it; borrowed). */
int gm_policy_issue(gm_policy *p, const gm_signer *na, uint64_t sequence, const json_t *body, gm_time issued_at,
                    gm_error *err) GM_MUST_CHECK;
/* The permissive policy a new network starts with ("default allow", no rules), sequence 0. */
int gm_policy_issue_default(gm_policy *p, const gm_signer *na, gm_time issued_at, gm_error *err) GM_MUST_CHECK;
/* Signature under the genesis NA key. */
int gm_policy_verify(const gm_policy *p, const uint8_t na_pk[GM_PK_LEN], gm_error *err) GM_MUST_CHECK;
/* Decide kind for a subject holding roles (n of them) and an object: a capability or port
 * name (objects has one entry) or the roles of the other node (peer, relay). p NULL (no
 * policy held) allows everything. Fills d and returns d->allowed. */
int gm_policy_decide(const gm_policy *p, gm_policy_kind kind, const char *const *roles, size_t n,
                     const char *const *objects, size_t n_objects, gm_policy_decision *d);
/* Compact canonical JSON (exact bytes to serve / store), malloc'd. */
char *gm_policy_dump(const gm_policy *p, int pretty) GM_MUST_CHECK;
void gm_policy_free(gm_policy *p);

#endif
