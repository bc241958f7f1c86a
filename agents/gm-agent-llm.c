/* gm-agent-llm: serves llm.chat by forwarding a prompt to an OpenAI-compatible provider through
 * gm_llm_chat (retries and parameter fallbacks within the requester's deadline). Input
 * {"prompt"}; output {"text","model","finish_reason"}, plus "empty": true for an empty answer
 * and "truncated": "max_tokens" (the model stopped at its token limit) or "size" (cut to fit
 * the envelope, with a marker at the end); the "executed" step says the same. The API key stays
 * in the gm_llm_config; anything returned is redacted once more. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_cli.h"
#include "gm/llm.h"

#define PROMPT_MAX (GM_AGENT_INPUT_MAX - 64)
#define REPLY_MARGIN_MS 50 /* for our own answer to leave before the deadline */

static int llm_handle(void *user, const gm_agent_call_in *in, json_t **output, gm_error *err)
{
    const gm_llm_config *cfg = user;
    const char *prompt = json_string_value(json_object_get(in->req->input, "prompt"));
    if (!prompt || !*prompt)
        return gm_error_set(err, GM_EINVAL, "llm.chat expects {\"prompt\": \"non-empty text\"}");
    if (strlen(prompt) > PROMPT_MAX)
        return gm_error_set(err, GM_ETOOBIG, "prompt longer than %d bytes", PROMPT_MAX);
    /* Never run past the requester's deadline, retries included. */
    long left = gm_agent_request_time_left_ms(in->req) - REPLY_MARGIN_MS;
    if (left < 50)
        return gm_error_set(err, GM_ETIMEOUT, "no time left before the requester's deadline");
    gm_llm_config c = *cfg;
    if (c.timeout_ms <= 0 || c.timeout_ms > left)
        c.timeout_ms = left;
    gm_llm_answer a;
    int rc = gm_llm_chat(&c, prompt, &a, err);
    if (rc != 0) {
        gm_llm_redact(cfg, err->msg);
        return rc;
    }
    gm_llm_redact(cfg, a.text);
    const char *model = cfg->model ? cfg->model : "";
    *output = json_pack("{s:s,s:s,s:s}", "text", a.text, "model", model, "finish_reason", a.finish_reason);
    if (!*output) {
        gm_llm_answer_free(&a);
        return gm_error_set(err, GM_EPROTO, "the LLM answer is not UTF-8");
    }
    size_t kept, total;
    char note[160] = "";
    if (a.len == 0) {
        json_object_set_new(*output, "empty", json_true());
        snprintf(note, sizeof note, "; EMPTY answer (finish_reason %.31s)", a.finish_reason[0] ? a.finish_reason : "absent");
    } else if (a.truncated_by_provider) {
        json_object_set_new(*output, "truncated", json_string("max_tokens"));
        snprintf(note, sizeof note, "; TRUNCATED: the model stopped at its token limit (finish_reason %.31s)",
                 a.finish_reason);
    }
    if ((rc = gm_agent_output_fit(*output, "text", &kept, &total, err)) != 0) {
        json_decref(*output);
        *output = NULL;
        gm_llm_answer_free(&a);
        return rc;
    }
    if (kept < total) {
        size_t n = strlen(note);
        snprintf(note + n, sizeof note - n, "; TRUNCATED to %zu of %zu bytes to fit the answer envelope", kept, total);
    }
    char tries[32] = "";
    if (a.attempts > 1)
        snprintf(tries, sizeof tries, ", %d attempts", a.attempts);
    snprintf(in->detail, GM_AGENT_DETAIL_MAX + 1, "chat completion by model %.200s (%zu bytes%s)%s", model, a.len,
             tries, note);
    gm_llm_answer_free(&a);
    return 0;
}

int main(int argc, char **argv)
{
    struct agent_cli c = {
        .log_format = -1,
        .log_level = GM_LOG_INFO,
        .program = "gm-agent-llm",
        .capability = "llm.chat",
        .usage = "usage: gm-agent-llm --dir D --agent-id ID [--env-file .env] [options]\n"
                 "Serves llm.chat through the node running at D with an OpenAI-compatible provider\n"
                 "configured by LLM_* variables from the environment or --env-file (docs/agents.md).\n"
                 "  --env-file FILE    .env file with LLM_* variables the environment does not set\n" AGENT_CLI_COMMON_USAGE,
    };
    static const struct option opts[] = {{"env-file", required_argument, NULL, 'e'}, AGENT_CLI_COMMON_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    const char *env_file = NULL;
    int rc = agent_cli_parse(&c, argc, argv, opts, agent_cli_store_string, &env_file);
    if (rc >= 0)
        return rc;
    gm_llm_config llm;
    gm_error err = {0};
    if (gm_llm_config_load(&llm, env_file, &err) != 0)
        return agent_cli_fail(&c, "LLM configuration", &err);
    rc = 0;
    if (agent_cli_serve(&c, llm_handle, &llm, &err) != 0) {
        gm_llm_redact(&llm, err.msg);
        rc = agent_cli_fail(&c, "serving", &err);
    }
    gm_llm_config_free(&llm);
    return rc;
}
