/* gm-agent-planner: serves planner.answer by composing two capabilities found at run time. It
 * discovers repo.summary and llm.chat through the NA, invokes both over the mesh (failing over
 * when a provider fails or is revoked), combines them and returns the answer with the whole
 * signed chain. Nested calls share the requester's deadline: repo.summary gets a third of the
 * time left, llm.chat all that remains (less a margin for our own answer); --sub-timeout-ms
 * caps each. Input {"question"}; output {"answer","summary","sources"}, with the LLM's
 * "empty" / "truncated" marks passed on. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_cli.h"

#define QUESTION_MAX 4096
#define REPLY_MARGIN_MS 300 /* for our own answer to reach the requester */
#define SUB_MIN_MS 100

struct planner {
    long sub_timeout_ms; /* cap of each nested call; 0 = none */
    /* last provider used per capability, to record a failover in the provenance */
    char last_repo[GM_AGENT_ID_MAX + 1], last_llm[GM_AGENT_ID_MAX + 1];
    pthread_mutex_t lock;
};

static void remember(struct planner *p, char *last, const char *used)
{
    pthread_mutex_lock(&p->lock);
    snprintf(last, GM_AGENT_ID_MAX + 1, "%s", used);
    pthread_mutex_unlock(&p->lock);
}

/* calls_left: nested calls still to make, this one included; last: the provider that served cap
 * the time before (a failover from it is noted in the chain). */
static int sub_call(struct planner *p, const gm_agent_call_in *in, const char *cap, int calls_left, const char *last,
                    json_t *input, gm_agent_response *resp, char chosen[GM_AGENT_ID_MAX + 1], gm_error *err)
{
    char prev[GM_AGENT_ID_MAX + 1];
    pthread_mutex_lock(&p->lock);
    snprintf(prev, sizeof prev, "%s", last);
    pthread_mutex_unlock(&p->lock);
    long left = gm_agent_request_time_left_ms(in->req) - REPLY_MARGIN_MS;
    long t = calls_left > 1 ? left / 3 : left;
    if (p->sub_timeout_ms > 0 && t > p->sub_timeout_ms)
        t = p->sub_timeout_ms;
    if (t < SUB_MIN_MS)
        return gm_error_set(err, GM_ETIMEOUT, "no time left for %s before the requester's deadline", cap);
    int rc = gm_agent_call_after(in->ctx, cap, input, t, in->steps, in->certs, in->req->request_id, prev, resp, chosen,
                                 err);
    if (rc == 0 && resp->error_code) {
        rc = gm_error_set(err, GM_EPROTO, "%s provider %s answered %s: %s", cap, chosen, resp->error_code,
                          resp->error_message);
        gm_agent_response_free(resp);
    }
    return rc;
}

static int planner_handle(void *user, const gm_agent_call_in *in, json_t **output, gm_error *err)
{
    struct planner *p = user;
    const char *q = json_string_value(json_object_get(in->req->input, "question"));
    if (!q || !*q || strlen(q) > QUESTION_MAX)
        return gm_error_set(err, GM_EINVAL, "planner.answer expects {\"question\": \"1..%d bytes of text\"}",
                            QUESTION_MAX);
    gm_agent_response rr, lr;
    char repo_agent[GM_AGENT_ID_MAX + 1], llm_agent[GM_AGENT_ID_MAX + 1];
    json_t *rin = json_pack("{s:s}", "question", q);
    int rc = sub_call(p, in, "repo.summary", 2, p->last_repo, rin, &rr, repo_agent, err);
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
    rc = sub_call(p, in, "llm.chat", 1, p->last_llm, lin, &lr, llm_agent, err);
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
    if (gm_agent_step_add(in->steps, &in->ctx->node, in->ctx->agent_id, "combined", in->req->capability,
                          in->req->request_id, detail, &e) != 0) {
        /* the "combined" note only explains the answer; without it (out of memory) the chain still verifies */
    }
    *output = json_pack("{s:s,s:s?,s:[{s:s,s:s},{s:s,s:s}]}", "answer", text ? text : "", "summary", summary,
                        "sources", "capability", "repo.summary", "agent", repo_agent, "capability", "llm.chat",
                        "agent", llm_agent);
    const json_t *empty = json_object_get(lr.output, "empty"), *trunc = json_object_get(lr.output, "truncated");
    size_t kept, total;
    if (*output && json_is_true(empty))
        json_object_set_new(*output, "empty", json_true());
    if (*output && json_is_string(trunc))
        json_object_set_new(*output, "truncated", json_string(json_string_value(trunc)));
    if (*output && gm_agent_output_fit(*output, "answer", &kept, &total, &e) != 0) {
        json_decref(*output);
        *output = NULL;
    }
    const char *cut = json_string_value(json_object_get(*output, "truncated"));
    snprintf(in->detail, GM_AGENT_DETAIL_MAX + 1, "answered from repo.summary (%s) and llm.chat (%s)%s%s%s", repo_agent,
             llm_agent, json_is_true(empty) ? "; EMPTY answer from llm.chat" : "", cut ? "; TRUNCATED answer: " : "",
             cut ? cut : "");
    gm_agent_response_free(&rr);
    gm_agent_response_free(&lr);
    return *output ? 0 : gm_error_set(err, GM_EINTERNAL, "cannot build the planner answer");
}

struct planner_args {
    const struct agent_cli *c;
    struct planner *p;
};

/* --sub-timeout-ms N */
static int own_option(void *ctx, int opt, const char *val)
{
    struct planner_args *pa = ctx;
    (void)opt;
    return agent_cli_long(pa->c, "sub-timeout-ms", val, SUB_MIN_MS, 3600000, &pa->p->sub_timeout_ms) != 0 ? 2 : 0;
}

int main(int argc, char **argv)
{
    struct agent_cli c = {
        .log_format = -1,
        .log_level = GM_LOG_INFO,
        .program = "gm-agent-planner",
        .capability = "planner.answer",
        .usage = "usage: gm-agent-planner --dir D --agent-id ID [--sub-timeout-ms N] [options]\n"
                 "Serves planner.answer through the node running at D: discovers repo.summary and llm.chat,\n"
                 "calls both within the requester's deadline (repo.summary gets a third of the time left,\n"
                 "llm.chat the rest) and combines them.\n"
                 "  --sub-timeout-ms N at most N ms for each nested call (default: no cap)\n" AGENT_CLI_COMMON_USAGE,
    };
    static const struct option opts[] = {{"sub-timeout-ms", required_argument, NULL, 's'}, AGENT_CLI_COMMON_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    struct planner p = {0};
    struct planner_args pa = {&c, &p};
    int rc = agent_cli_parse(&c, argc, argv, opts, own_option, &pa);
    if (rc >= 0)
        return rc;
    gm_error err = {0};
    if (pthread_mutex_init(&p.lock, NULL) != 0) {
        gm_error_set(&err, GM_ENOMEM, "cannot create the planner lock");
        return agent_cli_fail(&c, "starting", &err);
    }
    rc = agent_cli_serve(&c, planner_handle, &p, &err) != 0 ? agent_cli_fail(&c, "serving", &err) : 0;
    pthread_mutex_destroy(&p.lock);
    return rc;
}
