/* Provenance: an ordered list of steps, each signed by the node key of the agent that
 * added it, so a requester can check who did what for which request, and that every
 * signer holds a valid, unrevoked certificate of its network. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gm/agent.h"
#include "gm/canon.h"
#include "gm/cert.h"
#include "gm/util.h"
#include "agent_internal.h"
#include "core_internal.h"

static const char *const actions[] = {"discovered", "executed", "combined", "failed", "routed"};

int gm_agent_action_valid(const char *action)
{
    for (size_t i = 0; action && i < sizeof actions / sizeof actions[0]; i++)
        if (!strcmp(action, actions[i]))
            return 1;
    return 0;
}

/* Canonical bytes of the step without "sig". */
static int step_bytes(const json_t *step, char **out, size_t *len, gm_error *err)
{
    json_t *copy = json_copy((json_t *)step);
    if (!copy)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    json_object_del(copy, "sig");
    int rc = gm_canon_dump(copy, out, len, err);
    json_decref(copy);
    return rc;
}

int gm_agent_step_add(json_t *steps, const gm_signer *node, const char *agent_id, const char *action,
                      const char *capability, const char *request_id, const char *detail, gm_error *err)
{
    return gm_agent_step_add_at(steps, node, agent_id, action, capability, request_id, detail, gm_time_now(), err);
}

int gm_agent_step_add_at(json_t *steps, const gm_signer *node, const char *agent_id, const char *action,
                         const char *capability, const char *request_id, const char *detail, gm_time at_time,
                         gm_error *err)
{
    char at[GM_TIME_STRLEN], d[GM_AGENT_DETAIL_MAX + 1], sig[GM_SIG_B64_LEN + 1];
    if (!json_is_array(steps))
        return gm_error_set(err, GM_EINVAL, "provenance must be an array");
    if (!gm_agent_action_valid(action))
        return gm_error_set(err, GM_EINVAL, "unknown provenance action '%s'", action ? action : "");
    if (json_array_size(steps) >= GM_AGENT_STEPS_MAX)
        return gm_error_set(err, GM_ETOOBIG, "provenance longer than %d steps", GM_AGENT_STEPS_MAX);
    gm_time_format(&at_time, at);
    snprintf(d, sizeof d, "%s", detail ? detail : "");
    json_t *step = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "agent", agent_id ? agent_id : "", "action", action,
                             "capability", capability ? capability : "", "detail", d, "at", at, "request_id",
                             request_id ? request_id : "", "signer", node->pk_b64);
    if (!step) /* detail cut inside a UTF-8 sequence, or not UTF-8 */
        step = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "agent", agent_id ? agent_id : "", "action", action,
                         "capability", capability ? capability : "", "detail", "(detail not UTF-8)", "at", at,
                         "request_id", request_id ? request_id : "", "signer", node->pk_b64);
    if (!step)
        return gm_error_set(err, GM_EINVAL, "cannot build provenance step (agent id or capability not UTF-8)");
    char *bytes;
    size_t len;
    int rc = step_bytes(step, &bytes, &len, err);
    if (rc != 0) {
        json_decref(step);
        return rc;
    }
    gm_sign_b64(node, (const uint8_t *)bytes, len, sig);
    free(bytes);
    json_object_set_new(step, "sig", json_string(sig));
    json_array_append_new(steps, step);
    return 0;
}

/* Everything about a step but its signature: its shape, and the key and canonical bytes
 * (malloc'd into *bytes) its signature must verify under. */
static int step_check(const json_t *step, uint8_t pk[GM_PK_LEN], char **bytes, size_t *len, gm_error *err)
{
    static const char *const members[] = {"agent", "action", "capability", "detail", "at", "request_id", "signer", "sig"};
    *bytes = NULL;
    if (!json_is_object(step))
        return gm_error_set(err, GM_EPROTO, "provenance step is not an object");
    for (size_t i = 0; i < sizeof members / sizeof members[0]; i++)
        if (!json_is_string(json_object_get(step, members[i])))
            return gm_error_set(err, GM_EPROTO, "provenance step lacks string \"%s\"", members[i]);
    if (json_object_size(step) != sizeof members / sizeof members[0])
        return gm_error_set(err, GM_EPROTO, "provenance step has unexpected members");
    const char *action = json_string_value(json_object_get(step, "action"));
    if (!gm_agent_action_valid(action))
        return gm_error_set(err, GM_EPROTO, "provenance step has unknown action");
    if (json_string_length(json_object_get(step, "detail")) > GM_AGENT_DETAIL_MAX)
        return gm_error_set(err, GM_EPROTO, "provenance step detail too long");
    gm_time t;
    if (gm_time_parse(json_string_value(json_object_get(step, "at")), &t, err) != 0)
        return gm_error_set(err, GM_EPROTO, "provenance step has a bad \"at\" timestamp");
    if (gm_pk_decode(json_string_value(json_object_get(step, "signer")), pk, err) != 0)
        return gm_error_set(err, GM_EPROTO, "provenance step has a bad \"signer\" key");
    return step_bytes(step, bytes, len, err);
}

static int forged(const json_t *step, gm_error *err)
{
    return gm_error_set(err, GM_ESIG, "provenance step '%s' by agent '%.64s' is not signed by its signer (forged?)",
                        json_string_value(json_object_get(step, "action")),
                        json_string_value(json_object_get(step, "agent")));
}

int gm_agent_step_verify(const json_t *step, gm_error *err)
{
    uint8_t pk[GM_PK_LEN];
    char *bytes;
    size_t len;
    int rc = step_check(step, pk, &bytes, &len, err);
    if (rc != 0)
        return rc;
    rc = gm_verify_b64(pk, (const uint8_t *)bytes, len, json_string_value(json_object_get(step, "sig")), err);
    free(bytes);
    return rc != 0 ? forged(step, err) : 0;
}

int gm_agent_provenance_verify(const json_t *steps, const char *request_id, const uint8_t provider[GM_PK_LEN],
                               gm_error *err)
{
    char ppk[GM_PK_B64_LEN + 1];
    gm_pk_encode(provider, ppk);
    if (!json_is_array(steps) || json_array_size(steps) > GM_AGENT_STEPS_MAX)
        return gm_error_set(err, GM_EPROTO, "provenance must be an array of at most %d steps", GM_AGENT_STEPS_MAX);
    /* The shapes first (up to the first bad one, whose error comes after those of the steps
     * before it), then the signatures of those steps together (on both cores: a planner's
     * answer carries 8), then each step's claim, in step order as when checked one by one. */
    size_t n = json_array_size(steps), ok = 0, own = 0;
    uint8_t(*pks)[GM_PK_LEN] = n ? malloc(n * sizeof *pks) : NULL;
    char **bytes = n ? calloc(n, sizeof *bytes) : NULL;
    gm_verify_item *items = n ? calloc(n, sizeof *items) : NULL;
    gm_error shape = {0};
    int rc = 0;
    if (n && (!pks || !bytes || !items)) {
        rc = gm_error_set(err, GM_ENOMEM, "out of memory");
        goto out;
    }
    for (; ok < n; ok++) {
        const json_t *s = json_array_get(steps, ok);
        if (step_check(s, pks[ok], &bytes[ok], &items[ok].len, &shape) != 0)
            break;
        items[ok].pk = pks[ok];
        items[ok].msg = (const uint8_t *)bytes[ok];
        items[ok].sig_b64 = json_string_value(json_object_get(s, "sig"));
    }
    gm_verify_b64_many(items, ok);
    for (size_t i = 0; i < ok && rc == 0; i++) {
        const json_t *s = json_array_get(steps, i);
        if (items[i].rc != 0) {
            rc = forged(s, err);
            gm_error_prefix(err, "step %zu", i + 1);
        } else if (!strcmp(json_string_value(json_object_get(s, "request_id")), request_id)) {
            if (strcmp(json_string_value(json_object_get(s, "signer")), ppk) != 0)
                rc = gm_error_set(err, GM_ESIG,
                                  "step %zu claims this request but is signed by another key than the provider's",
                                  i + 1);
            own++;
        }
    }
    if (rc == 0 && ok < n) {
        rc = shape.code;
        if (err)
            *err = shape;
        gm_error_prefix(err, "step %zu", ok + 1);
    }
    if (rc == 0 && own == 0)
        rc = gm_error_set(err, GM_EPROTO, "provenance holds no step signed by the provider for this request");
out:
    for (size_t i = 0; bytes && i < n; i++)
        free(bytes[i]);
    free(bytes);
    free(pks);
    free(items);
    return rc;
}

/* The signer key of a step, or -1 when it has none that decodes. */
static int step_signer(const json_t *step, uint8_t pk[GM_PK_LEN])
{
    gm_error e = {0};
    const char *b64 = json_string_value(json_object_get(step, "signer"));
    return b64 && gm_pk_decode(b64, pk, &e) == 0 ? 0 : -1;
}

static int cert_key(const json_t *cert, uint8_t pk[GM_PK_LEN])
{
    gm_error e = {0};
    const char *b64 = json_string_value(json_object_get(cert, "node_public_key"));
    return b64 && gm_pk_decode(b64, pk, &e) == 0 ? 0 : -1;
}

static int key_seen(const uint8_t (*keys)[GM_PK_LEN], size_t n, const uint8_t pk[GM_PK_LEN])
{
    for (size_t i = 0; i < n; i++)
        if (!memcmp(keys[i], pk, GM_PK_LEN))
            return 1;
    return 0;
}

int gm_agent_provenance_check_signers(const json_t *steps, const json_t *certs, const gm_genesis *g,
                                      const gm_crl *crl, gm_time now, json_t *vouched, gm_error *err)
{
    const gm_genesis *gs[1] = {g};
    return gm_agent_provenance_check_signers_any(steps, certs, gs, 1, crl, now, vouched, err);
}

int gm_agent_provenance_check_signers_any(const json_t *steps, const json_t *certs, const gm_genesis *const gs[],
                                          size_t k, const gm_crl *crl, gm_time now, json_t *vouched, gm_error *err)
{
    if (!json_is_array(steps) || json_array_size(steps) > GM_AGENT_STEPS_MAX)
        return gm_error_set(err, GM_EPROTO, "provenance must be an array of at most %d steps", GM_AGENT_STEPS_MAX);
    if (certs && (!json_is_array(certs) || json_array_size(certs) > GM_AGENT_CERTS_MAX))
        return gm_error_set(err, GM_EPROTO, "the answer's certificates must be an array of at most %d",
                            GM_AGENT_CERTS_MAX);
    size_t nc = certs ? json_array_size(certs) : 0, ns = json_array_size(steps), n_ok = 0;
    gm_cert *cv = calloc(nc ? nc : 1, sizeof *cv);
    uint8_t(*ok)[GM_PK_LEN] = calloc(ns ? ns : 1, sizeof *ok);
    json_t *mine = json_array();
    int rc = 0;
    gm_error e = {0};
    if (!cv || !ok || !mine) {
        rc = gm_error_set(err, GM_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t j = 0; j < nc; j++)
        if (gm_cert_from_json(json_array_get(certs, j), &cv[j], &e) != 0) {
            rc = gm_error_set(err, GM_EPROTO, "certificate %zu of the answer is malformed: %.400s", j + 1, e.msg);
            goto out;
        }
    for (size_t i = 0; i < ns && rc == 0; i++) {
        const json_t *st = json_array_get(steps, i);
        const char *action = json_string_value(json_object_get(st, "action"));
        const char *agent = json_string_value(json_object_get(st, "agent"));
        uint8_t pk[GM_PK_LEN];
        if (step_signer(st, pk) != 0) {
            rc = gm_error_set(err, GM_EPROTO, "step %zu has no valid \"signer\" key", i + 1);
            break;
        }
        if (key_seen((const uint8_t(*)[GM_PK_LEN])ok, n_ok, pk))
            continue;
        char kb[GM_PK_B64_LEN + 1];
        gm_pk_encode(pk, kb);
        int found = 0, vrc = 0;
        size_t hit = 0;
        for (size_t j = 0; j < nc; j++) {
            if (memcmp(cv[j].node_pk, pk, GM_PK_LEN) != 0)
                continue;
            found = 1;
            if ((vrc = gm_cert_verify_any(&cv[j], gs, k, crl, now, &e)) == 0) {
                hit = j;
                break;
            }
        }
        if (!found)
            rc = gm_error_set(err, GM_EAUTH,
                              "step %zu ('%s' by agent '%.64s') is signed by %.12s..., a key that holds no "
                              "certificate in the answer (unknown signer)",
                              i + 1, action ? action : "?", agent ? agent : "?", kb);
        else if (vrc != 0)
            rc = gm_error_set(err, vrc, "step %zu ('%s' by agent '%.64s') is signed by %.12s..., whose certificate "
                              "is not valid here: %.300s",
                              i + 1, action ? action : "?", agent ? agent : "?", kb, e.msg);
        else {
            memcpy(ok[n_ok++], pk, GM_PK_LEN);
            json_array_append(mine, json_array_get(certs, hit)); /* shared, as certificates are only read */
        }
    }
    if (rc == 0 && vouched)
        json_array_extend(vouched, mine);
out:
    for (size_t j = 0; cv && j < nc; j++)
        gm_cert_free(&cv[j]);
    free(cv);
    free(ok);
    json_decref(mine);
    return rc;
}

json_t *gm_agent_provenance_certs_for(const json_t *steps, const json_t *pool)
{
    json_t *out = json_array();
    size_t ns = json_array_size(steps), n_done = 0;
    uint8_t(*done)[GM_PK_LEN] = calloc(ns ? ns : 1, sizeof *done);
    if (!out || !done) {
        free(done);
        return out;
    }
    for (size_t i = 0; i < ns; i++) {
        uint8_t pk[GM_PK_LEN], ck[GM_PK_LEN];
        if (step_signer(json_array_get(steps, i), pk) != 0 ||
            key_seen((const uint8_t(*)[GM_PK_LEN])done, n_done, pk))
            continue;
        memcpy(done[n_done++], pk, GM_PK_LEN);
        for (size_t j = 0; j < json_array_size(pool); j++) {
            const json_t *c = json_array_get(pool, j);
            if (cert_key(c, ck) == 0 && !memcmp(ck, pk, GM_PK_LEN)) {
                json_array_append(out, (json_t *)c);
                break;
            }
        }
    }
    free(done);
    return out;
}
