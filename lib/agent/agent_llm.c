/* llm.chat: forwards a prompt to an OpenAI-compatible provider through gm_llm_chat. The API
 * key stays in the gm_llm_config; anything returned is redacted once more. */
#include <stdlib.h>
#include <string.h>

#include "gm/agent.h"
#include "gm/llm.h"

#define PROMPT_MAX (GM_AGENT_INPUT_MAX - 64)

int gm_agent_llm_handle(void *user, const gm_agent_call_in *in, json_t **output, gm_error *err)
{
    const gm_llm_config *cfg = user;
    const char *prompt = json_string_value(json_object_get(in->req->input, "prompt"));
    if (!prompt || !*prompt)
        return gm_error_set(err, GM_EINVAL, "llm.chat expects {\"prompt\": \"non-empty text\"}");
    if (strlen(prompt) > PROMPT_MAX)
        return gm_error_set(err, GM_ETOOBIG, "prompt longer than %d bytes", PROMPT_MAX);
    char *answer = NULL;
    gm_llm_config c = *cfg;
    gm_time now = gm_time_now();
    /* Never run past the requester's deadline. */
    int64_t left = (in->req->deadline.unix_s - now.unix_s) * 1000 + (in->req->deadline.usec - now.usec) / 1000;
    if (left < 100)
        return gm_error_set(err, GM_ETIMEOUT, "no time left before the requester's deadline");
    if (c.timeout_ms <= 0 || c.timeout_ms > left - 50)
        c.timeout_ms = (long)(left - 50);
    int rc = gm_llm_chat(&c, prompt, &answer, err);
    if (rc != 0) {
        gm_llm_redact(cfg, err->msg);
        return rc;
    }
    gm_llm_redact(cfg, answer);
    snprintf(in->detail, GM_AGENT_DETAIL_MAX + 1, "chat completion by model %.200s (%zu bytes)",
             cfg->model ? cfg->model : "?", strlen(answer));
    *output = json_pack("{s:s,s:s}", "text", answer, "model", cfg->model ? cfg->model : "");
    free(answer);
    if (!*output)
        return gm_error_set(err, GM_EPROTO, "the LLM answer is not UTF-8");
    return 0;
}
