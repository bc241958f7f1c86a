/* planner.answer: composes two capabilities found at run time. It discovers repo.summary
 * and llm.chat through the NA, invokes both over the mesh (failing over when a provider
 * fails or is revoked), combines them and returns the answer with the whole signed chain. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gm/agent.h"

#define QUESTION_MAX 4096
#define SUB_TIMEOUT_MS 5000

int gm_agent_planner_init(gm_agent_planner *p, gm_error *err)
{
    memset(p, 0, sizeof *p);
    p->sub_timeout_ms = SUB_TIMEOUT_MS;
    pthread_mutex_t *m = malloc(sizeof *m);
    if (!m || pthread_mutex_init(m, NULL) != 0) {
        free(m);
        return gm_error_set(err, GM_ENOMEM, "cannot create the planner lock");
    }
    p->lock = m;
    return 0;
}

void gm_agent_planner_free(gm_agent_planner *p)
{
    if (p && p->lock) {
        pthread_mutex_destroy(p->lock);
        free(p->lock);
    }
    if (p)
        memset(p, 0, sizeof *p);
}

static long time_left_ms(const gm_agent_request *req)
{
    gm_time now = gm_time_now();
    return (long)((req->deadline.unix_s - now.unix_s) * 1000 + (req->deadline.usec - now.usec) / 1000);
}

/* Before calling cap: if the provider used last time is no longer selectable, say so in the
 * chain (why, as far as our own checks tell), so the failover is visible to the requester. */
static void note_failover(gm_agent_planner *p, const gm_agent_call_in *in, const char *cap, const char *last)
{
    char prev[GM_AGENT_ID_MAX + 1], detail[GM_AGENT_DETAIL_MAX + 1];
    gm_error e = {0};
    pthread_mutex_lock(p->lock);
    snprintf(prev, sizeof prev, "%s", last);
    pthread_mutex_unlock(p->lock);
    if (!prev[0])
        return;
    gm_agent_candidates cs;
    if (gm_agent_discover(in->ctx, cap, NULL, 0, &cs, &e) != 0)
        return;
    const char *why = "no longer registered with the NA (revoked or unregistered)";
    int usable = 0;
    for (size_t i = 0; i < cs.n; i++)
        if (cs.v[i].desc.agent_id && !strcmp(cs.v[i].desc.agent_id, prev)) {
            usable = cs.v[i].usable;
            why = cs.v[i].reason;
        }
    if (!usable) {
        snprintf(detail, sizeof detail, "failover: %s, which served %s before, is %.300s; selecting another provider",
                 prev, cap, why);
        gm_agent_step_add(in->steps, &in->ctx->node, in->ctx->agent_id, "failed", cap, in->req->request_id, detail, &e);
    }
    gm_agent_candidates_free(&cs);
}

static void remember(gm_agent_planner *p, char *last, const char *used)
{
    pthread_mutex_lock(p->lock);
    snprintf(last, GM_AGENT_ID_MAX + 1, "%s", used);
    pthread_mutex_unlock(p->lock);
}

static int sub_call(gm_agent_planner *p, const gm_agent_call_in *in, const char *cap, json_t *input,
                    gm_agent_response *resp, char chosen[GM_AGENT_ID_MAX + 1], gm_error *err)
{
    long left = time_left_ms(in->req) - 200;
    long t = p->sub_timeout_ms < left ? p->sub_timeout_ms : left;
    if (t < 100)
        return gm_error_set(err, GM_ETIMEOUT, "no time left for %s before the requester's deadline", cap);
    int rc = gm_agent_call_collect(in->ctx, cap, input, t, in->steps, in->certs, in->req->request_id, resp, chosen,
                                   err);
    if (rc == 0 && resp->error_code) {
        rc = gm_error_set(err, GM_EPROTO, "%s provider %s answered %s: %s", cap, chosen, resp->error_code,
                          resp->error_message);
        gm_agent_response_free(resp);
    }
    return rc;
}

int gm_agent_planner_handle(void *user, const gm_agent_call_in *in, json_t **output, gm_error *err)
{
    gm_agent_planner *p = user;
    const char *q = json_string_value(json_object_get(in->req->input, "question"));
    if (!q || !*q || strlen(q) > QUESTION_MAX)
        return gm_error_set(err, GM_EINVAL, "planner.answer expects {\"question\": \"1..%d bytes of text\"}",
                            QUESTION_MAX);
    gm_agent_response rr, lr;
    char repo_agent[GM_AGENT_ID_MAX + 1], llm_agent[GM_AGENT_ID_MAX + 1];
    json_t *rin = json_pack("{s:s}", "question", q);
    note_failover(p, in, "repo.summary", p->last_repo);
    int rc = sub_call(p, in, "repo.summary", rin, &rr, repo_agent, err);
    json_decref(rin);
    if (rc != 0)
        return gm_error_prefix(err, "repo.summary");
    remember(p, p->last_repo, repo_agent);
    const char *summary = json_string_value(json_object_get(rr.output, "summary"));
    char *prompt = NULL;
    size_t plen = strlen(q) + (summary ? strlen(summary) : 0) + 256;
    if (!(prompt = malloc(plen))) {
        gm_agent_response_free(&rr);
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    }
    snprintf(prompt, plen, "Answer the question using the repository summary.\nQuestion: %s\nRepository summary: %s", q,
             summary ? summary : "(none)");
    json_t *lin = json_pack("{s:s}", "prompt", prompt);
    free(prompt);
    note_failover(p, in, "llm.chat", p->last_llm);
    rc = sub_call(p, in, "llm.chat", lin, &lr, llm_agent, err);
    json_decref(lin);
    if (rc != 0) {
        gm_agent_response_free(&rr);
        return gm_error_prefix(err, "llm.chat");
    }
    remember(p, p->last_llm, llm_agent);
    const char *text = json_string_value(json_object_get(lr.output, "text"));
    char detail[GM_AGENT_DETAIL_MAX + 1];
    gm_error e = {0};
    snprintf(detail, sizeof detail, "answer = llm.chat by %s over repo.summary by %s", llm_agent, repo_agent);
    gm_agent_step_add(in->steps, &in->ctx->node, in->ctx->agent_id, "combined", in->req->capability,
                      in->req->request_id, detail, &e);
    *output = json_pack("{s:s,s:s?,s:[{s:s,s:s},{s:s,s:s}]}", "answer", text ? text : "", "summary", summary,
                        "sources", "capability", "repo.summary", "agent", repo_agent, "capability", "llm.chat",
                        "agent", llm_agent);
    snprintf(in->detail, GM_AGENT_DETAIL_MAX + 1, "answered from repo.summary (%s) and llm.chat (%s)", repo_agent,
             llm_agent);
    gm_agent_response_free(&rr);
    gm_agent_response_free(&lr);
    return *output ? 0 : gm_error_set(err, GM_EINTERNAL, "cannot build the planner answer");
}
