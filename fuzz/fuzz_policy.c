/* Fuzz target for the access policy parsers: the input is tried as an operator rules file and
 * as a signed policy document. A rules file that parses must issue, verify, dump and parse
 * back with the same decisions; a document that parses must dump and parse back to the same
 * bytes (else abort). Every decision on a parsed policy must name a rule or the default. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gm/policy.h"
#include "gm/util.h"
#include "core_internal.h"

static gm_signer na;
static int ready;

static void setup(void)
{
    uint8_t seed[GM_SEED_LEN];
    gm_error err = {0};
    for (int i = 0; i < GM_SEED_LEN; i++)
        seed[i] = (uint8_t)(0x40 + i);
    if (gm_init(&err) != 0 || gm_signer_from_seed(&na, seed, "na-local", &err) != 0)
        abort();
    ready = 1;
}

static void decide_some(const gm_policy *p)
{
    static const char *const roles[] = {"role:crm", "role:supervisor", "service:llm"};
    static const char *const names[] = {"finance.report", "capability", "role:finance", "x"};
    for (int k = 0; k < GM_POLICY_KINDS; k++)
        for (size_t i = 0; i < 3; i++)
            for (size_t j = 0; j < 4; j++) {
                gm_policy_decision d;
                int a = gm_policy_decide(p, (gm_policy_kind)k, &roles[i], 1, &names[j], 1, &d);
                if (a != d.allowed || d.rule < 0 || (size_t)d.rule > p->n_rules || !d.text[0])
                    abort();
            }
}

static void round_trip(const gm_policy *p)
{
    gm_policy q;
    gm_error err = {0};
    char *a = gm_policy_dump(p, 0);
    if (!a || gm_policy_parse(a, strlen(a), &q, &err) != 0)
        abort();
    char *b = gm_policy_dump(&q, 0);
    if (!b || strcmp(a, b) != 0 || q.sequence != p->sequence || q.n_rules != p->n_rules)
        abort();
    free(a);
    free(b);
    gm_policy_free(&q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gm_error err = {0};
    json_t *body = NULL;
    gm_policy p;
    if (!ready)
        setup();
    if (gm_policy_rules_parse((const char *)data, size, &body, &err) == 0) {
        if (gm_policy_issue(&p, &na, 1, body, gm_time_now(), &err) != 0 || gm_policy_verify(&p, na.pk, &err) != 0)
            abort();
        decide_some(&p);
        round_trip(&p);
        gm_policy_free(&p);
        json_decref(body);
    }
    if (gm_policy_parse((const char *)data, size, &p, &err) == 0) {
        if (gm_policy_verify(&p, na.pk, &err) != 0) {
            /* any verdict is fine on fuzzed input; the decisions below run either way */
        }
        decide_some(&p);
        round_trip(&p);
        gm_policy_free(&p);
    }
    return 0;
}
