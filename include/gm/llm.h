/* OpenAI-compatible chat client: configuration from the environment and .env,
 * one blocking chat call, and redaction of the API key from any text. */
#ifndef GM_LLM_H
#define GM_LLM_H

#include <stddef.h>

#include "gm/error.h"

#define GM_LLM_DEFAULT_BASE_URL "https://api.openai.com/v1"
#define GM_LLM_DEFAULT_MAX_TOKENS 512
#define GM_LLM_DEFAULT_TEMPERATURE 0.2
#define GM_LLM_DEFAULT_TIMEOUT_MS 120000L
#define GM_LLM_DEFAULT_MAX_RESPONSE ((size_t)4 * 1024 * 1024)
#define GM_LLM_MAX_TOKENS_LIMIT 1000000

typedef struct gm_llm_config {
    char *model;           /* LLM_MODEL (required) */
    char *base_url;        /* LLM_BASE_URL after normalisation, see gm_llm_config_load */
    char *api_key;         /* LLM_API_KEY in sodium_malloc'd memory; NULL when unset or empty */
    size_t api_key_len;
    int max_tokens;        /* LLM_MAX_TOKENS, 1..GM_LLM_MAX_TOKENS_LIMIT */
    double temperature;    /* LLM_TEMPERATURE, 0..2 */
    char *system_prompt;   /* LLM_SYSTEM_PROMPT, NULL when unset or empty */
    long timeout_ms;       /* per chat call; GM_LLM_DEFAULT_TIMEOUT_MS, callers may change it */
    size_t max_response;   /* larger provider answers fail with GM_ETOOBIG; callers may change it */
} gm_llm_config;

/*
 * Fill cfg (overwritten, not freed first) from the environment, with env_file
 * (a .env file, or NULL for none) supplying variables the environment does not
 * set; a variable set to the empty string in the environment still wins.
 *
 * .env syntax: KEY=VALUE lines; blank lines and lines starting with # ignored;
 * an "export " prefix is allowed; VALUE may be "double quoted" (\" \\ \n \t
 * escapes) or 'single quoted' (literal), and an unquoted VALUE ends at " #".
 * Any other line is an error naming the file and line (never its content).
 * Variables other than LLM_* are ignored.
 *
 * LLM_BASE_URL rule (default https://api.openai.com/v1): trailing "/" and a
 * pasted "/chat/completions" are dropped; a URL with no path gets "/v1"
 * appended; any other path is kept as is (so https://host/openai/v1 and
 * https://host/v1beta/openai work). Chat requests go to <base_url>/chat/completions.
 * It must be http:// or https://, with no user:password@, ?query or #fragment.
 *
 * Numbers are strict: LLM_MAX_TOKENS is plain decimal digits (1..1000000),
 * LLM_TEMPERATURE is digits with an optional "." and digits (0..2, no sign or exponent).
 * On error cfg is left empty (safe to gm_llm_config_free).
 */
int gm_llm_config_load(gm_llm_config *cfg, const char *env_file, gm_error *err);

/* Wipe the API key and free everything; cfg is left zeroed. Safe on a zeroed cfg. */
void gm_llm_config_free(gm_llm_config *cfg);

/*
 * Send [system prompt,] user_prompt to <base_url>/chat/completions with
 * "Authorization: Bearer <key>" and return choices[0].message.content in
 * *answer_out (malloc'd, caller frees; the key redacted if it appears).
 * Provider refusals read "LLM provider at <url> returned HTTP 401
 * (authentication failed; check LLM_API_KEY)": the response body and the key
 * never reach the message. Codes: GM_EAUTH (401), GM_EDENIED (403),
 * GM_ENOTFOUND (404), GM_ETOOBIG (413 or answer over max_response),
 * GM_ENET (other statuses, unreachable), GM_ETIMEOUT, GM_EPROTO (answer not
 * an OpenAI chat.completion), GM_EINVAL (bad arguments, prompt not UTF-8).
 */
int gm_llm_chat(const gm_llm_config *cfg, const char *user_prompt, char **answer_out,
                gm_error *err);

/*
 * Replace every occurrence of the API key in text with "[REDACTED]", in place,
 * and return how many were replaced. A key of 12 characters or more is also
 * redacted where only a piece of it (12+ characters) appears, and where it
 * appears base64-encoded (standard or URL-safe alphabet, any alignment). A key
 * shorter than "[REDACTED]" is overwritten with as many '*' instead, since text
 * cannot grow. NULL-safe.
 */
size_t gm_llm_redact(const gm_llm_config *cfg, char *text);

#endif
