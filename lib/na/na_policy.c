/* The access policy at the NA: GET /access-policy (cached, ETag / If-None-Match, like /crl)
 * and POST /admin/policy (the operator's rules file, validated with its line numbers, signed
 * as the next sequence). The signed policy lives in the NA directory as access-policy.json,
 * written atomically before the answer; policy_lock serializes updates so the sequence only
 * goes up. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gm/policy.h"
#include "gm/util.h"
#include "na_internal.h"

#define POLICY_FILE "access-policy.json"

static int policy_path(gm_na_t *na, char *out, size_t cap, gm_error *err)
{
    return gm_na_config_path(&na->cfg, POLICY_FILE, out, cap, err);
}

/* Under policy_lock: write p to the NA directory and make it the one served. */
static int publish(gm_na_t *na, const gm_policy *p, gm_error *err)
{
    char path[4200];
    char *text = gm_policy_dump(p, 0);
    int rc = text ? policy_path(na, path, sizeof path, err) : gm_error_set(err, GM_ENOMEM, "out of memory");
    if (rc == 0)
        rc = gm_file_write_atomic(path, text, strlen(text), 0644, err);
    if (rc != 0) {
        free(text);
        return rc;
    }
    free(na->policy_text);
    na->policy_text = text;
    na->policy_seq = p->sequence;
    /* The policy_id makes the tag unique even if the file is replaced by another network's. */
    snprintf(na->policy_etag, sizeof na->policy_etag, "\"p%llu-%.8s\"", (unsigned long long)p->sequence,
             p->policy_id);
    return 0;
}

int na_policy_bootstrap(gm_na_t *na, gm_error *err)
{
    char path[4200];
    char *text = NULL;
    size_t len = 0;
    gm_policy p;
    int rc = policy_path(na, path, sizeof path, err);
    if (rc != 0)
        return rc;
    if (!gm_file_exists(path)) {
        /* A network from before access policies: start permissive so nothing changes. */
        if ((rc = gm_policy_issue_default(&p, &na->key, gm_time_now(), err)) != 0)
            return rc;
        rc = publish(na, &p, err);
        gm_policy_free(&p);
        return rc;
    }
    if ((rc = gm_file_read(path, GM_POLICY_MAX_BYTES, &text, &len, err)) != 0)
        return rc;
    rc = gm_policy_parse(text, len, &p, err);
    free(text);
    if (rc != 0)
        return gm_error_prefix(err, "%s (fix or remove it; refusing to start)", path);
    gm_error e2 = {0};
    if (gm_policy_verify(&p, na->key.pk, &e2) != 0) {
        /* Signed by a previous NA key: every node would refuse it, so sign the same rules again. */
        gm_policy q;
        na_log(na, "%s: %s; issuing access policy %llu with the same rules", path, e2.msg,
               (unsigned long long)p.sequence + 1);
        rc = gm_policy_issue(&q, &na->key, p.sequence + 1, p.doc, gm_time_now(), err);
        gm_policy_free(&p);
        if (rc != 0)
            return rc;
        p = q;
    }
    rc = publish(na, &p, err);
    gm_policy_free(&p);
    return rc;
}

int na_handle_access_policy(na_req *r)
{
    gm_na_t *na = r->na;
    char etag[80];
    pthread_mutex_lock(&na->policy_lock);
    char *text = na->policy_text ? strdup(na->policy_text) : NULL;
    memcpy(etag, na->policy_etag, sizeof etag);
    pthread_mutex_unlock(&na->policy_lock);
    if (!text)
        return na_reply_error(r, 503, "policy_unavailable", "no access policy has been issued yet");
    int st = na_reply_tagged(r, text, etag);
    free(text);
    return st;
}

int na_handle_policy_set(na_req *r)
{
    static const char *const allowed[] = {"rules", NULL};
    gm_na_t *na = r->na;
    const char *rules;
    if (na_check_members(r, r->json, allowed) != 0 ||
        na_get_string(r, r->json, "rules", 1, GM_POLICY_MAX_BYTES, &rules) != 0)
        return r->status;
    if (na_check_key_window(r) != 0)
        return r->status;
    gm_error e = {0};
    json_t *body = NULL;
    if (gm_policy_rules_parse(rules, strlen(rules), &body, &e) != 0)
        return na_reply_error(r, 400, "invalid_policy", "%s", e.msg);
    gm_policy p;
    pthread_mutex_lock(&na->policy_lock);
    uint64_t seq = na->policy_seq + 1;
    int rc = gm_policy_issue(&p, &na->key, seq, body, r->now, &e);
    if (rc == 0) {
        rc = publish(na, &p, &e);
        gm_policy_free(&p);
    }
    char *text = rc == 0 ? strdup(na->policy_text) : NULL;
    pthread_mutex_unlock(&na->policy_lock);
    size_t n_rules = json_array_size(json_object_get(body, "rules"));
    json_decref(body);
    if (rc != 0)
        return na_reply_gm_error(r, &e);
    na_log(na, "%s access policy %llu (%zu rules) set by %s", r->request_id, (unsigned long long)seq, n_rules,
           r->admin_key_id);
    json_t *doc = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    return na_reply_json(r, 200, json_pack("{s:I,s:o}", "sequence", (json_int_t)seq, "policy",
                                           doc ? doc : json_null()));
}
