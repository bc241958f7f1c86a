/* The requester's side of the access policy: may this node (its certificate's roles) call a
 * capability, under the policy its node holds (D/access-policy.json, checked under the
 * genesis NA key)? Discovery marks providers it may not call, so a requester does not pick
 * them; the provider's node enforces the same decision whatever the requester does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gm/agent.h"
#include "gm/policy.h"
#include "gm/util.h"
#include "agent_internal.h"
#include "core_internal.h"

#define MAX_ROLES 64

int gm_agent_policy_allows(const gm_agent_ctx *c, const char *capability, char *why, size_t why_cap)
{
    char path[1200], *text = NULL;
    size_t len;
    gm_error e = {0};
    gm_policy p;
    gm_cert cert;
    if (why_cap)
        why[0] = '\0';
    /* No policy, or none this node can check: the provider's node decides alone. */
    if (gm_path_join(path, sizeof path, c->dir, "access-policy.json", &e) != 0 || !gm_file_exists(path) ||
        gm_file_read(path, GM_POLICY_MAX_BYTES, &text, &len, &e) != 0)
        return 1;
    int rc = gm_policy_parse(text, len, &p, &e);
    free(text);
    if (rc != 0)
        return 1;
    const gm_genesis *gs[3];
    const uint8_t *na_pk = gm_genesis_na_key_for(gs, gm_agent_ctx_trusted(c, gs), p.doc);
    if (!na_pk || gm_policy_verify(&p, na_pk, &e) != 0 || gm_path_join(path, sizeof path, c->dir, "cert.json", &e) ||
        gm_cert_load(path, &cert, &e) != 0) {
        gm_policy_free(&p);
        return 1;
    }
    const char *roles[MAX_ROLES], *port = GM_AGENT_PORT;
    size_t n = 0;
    for (size_t i = 0; i < cert.n_roles && n < MAX_ROLES; i++)
        if ((roles[n] = gm_cert_role(&cert, i)) != NULL)
            n++;
    gm_policy_decision d;
    int ok = gm_policy_decide(&p, GM_POLICY_PORT, roles, n, &port, 1, &d) &&
             gm_policy_decide(&p, GM_POLICY_CAPABILITY, roles, n, &capability, 1, &d);
    if (!ok && why_cap)
        snprintf(why, why_cap, "forbidden for this node's roles by the access policy (sequence %llu): %s",
                 (unsigned long long)d.sequence, d.text);
    gm_cert_free(&cert);
    gm_policy_free(&p);
    return ok;
}
