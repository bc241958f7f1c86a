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

/* Which member carries LLM_MAX_TOKENS (LLM_MAX_TOKENS_PARAM). */
enum { GM_LLM_TOKENS_MAX_TOKENS, GM_LLM_TOKENS_MAX_COMPLETION_TOKENS, GM_LLM_TOKENS_NONE };
/* How the key is sent (LLM_AUTH): "Authorization: Bearer KEY" or Azure's "api-key: KEY". */
enum { GM_LLM_AUTH_BEARER, GM_LLM_AUTH_API_KEY };

#define GM_LLM_DEFAULT_MAX_RETRIES 3
#define GM_LLM_MAX_RETRIES_LIMIT 10

typedef struct gm_llm_config {
    char *model;           /* LLM_MODEL (required) */
    char *base_url;        /* LLM_BASE_URL after normalisation (no query), see gm_llm_config_load */
    char *query;           /* query for chat requests (base URL's ?query, LLM_API_VERSION); NULL if none */
    char *api_key;         /* LLM_API_KEY in sodium_malloc'd memory; NULL when unset or empty */
    size_t api_key_len;
    int auth;              /* LLM_AUTH: GM_LLM_AUTH_BEARER, or GM_LLM_AUTH_API_KEY (default for *.azure.com) */
    int max_tokens;        /* LLM_MAX_TOKENS, 1..GM_LLM_MAX_TOKENS_LIMIT */
    int max_tokens_param;  /* LLM_MAX_TOKENS_PARAM: GM_LLM_TOKENS_* */
    double temperature;    /* LLM_TEMPERATURE, 0..2 */
    int omit_temperature;  /* LLM_TEMPERATURE=none: the member is not sent (reasoning models) */
    int max_retries;       /* LLM_MAX_RETRIES, 0..GM_LLM_MAX_RETRIES_LIMIT: for 429, 5xx, dropped connections */
    char *system_prompt;   /* LLM_SYSTEM_PROMPT, NULL when unset or empty */
    long timeout_ms;       /* whole chat call, retries included; GM_LLM_DEFAULT_TIMEOUT_MS, callers may change it */
    size_t max_response;   /* larger provider answers fail with GM_ETOOBIG; callers may change it */
} gm_llm_config;

/* One chat answer. */
typedef struct gm_llm_answer {
    char *text;                /* malloc'd, NUL-terminated, key redacted; "" for an empty answer */
    size_t len;                /* strlen(text) */
    char finish_reason[32];    /* as the provider said ("stop", "length", ...), printable; "" if absent */
    int truncated_by_provider; /* finish_reason "length": the model hit its token limit */
    int attempts;              /* HTTP requests made for this answer (retries and parameter fallbacks) */
} gm_llm_answer;

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
 * https://host/v1beta/openai work). Chat requests go to
 * <base_url>/chat/completions[?query]. It must be http:// or https://, with no
 * user:password@ or #fragment; a ?query (Azure's ?api-version=...) is kept for
 * chat requests. LLM_API_VERSION=V adds api-version=V to it (not both).
 *
 * Numbers are strict: LLM_MAX_TOKENS is plain decimal digits (1..1000000),
 * LLM_TEMPERATURE is digits with an optional "." and digits (0..2, no sign or
 * exponent) or "none"; LLM_MAX_RETRIES is digits (0..10, default 3).
 * LLM_MAX_TOKENS_PARAM is max_tokens (default), max_completion_tokens or none;
 * LLM_AUTH is bearer or api-key (default api-key for hosts under .azure.com).
 * On error cfg is left empty (safe to gm_llm_config_free).
 */
int gm_llm_config_load(gm_llm_config *cfg, const char *env_file, gm_error *err) GM_MUST_CHECK;

/* Wipe the API key and free everything; cfg is left zeroed. Safe on a zeroed cfg. */
void gm_llm_config_free(gm_llm_config *cfg);

/*
 * Send [system prompt,] user_prompt to <base_url>/chat/completions[?query] with
 * the key (see auth) and fill *answer (free with gm_llm_answer_free) from
 * choices[0].message.content and finish_reason; an empty text is an answer
 * (answer->len == 0), for the caller to mark. The whole call, retries
 * included, ends within timeout_ms:
 * - 429, 5xx and dropped connections are retried up to max_retries times,
 *   after the provider's Retry-After or else an exponential backoff with
 *   jitter; a wait that would pass the deadline is not started;
 * - a 400 that names max_tokens or temperature as unsupported is retried once
 *   without it (max_tokens becomes max_completion_tokens when the provider
 *   says so).
 * Refusals read "LLM provider at <url> returned HTTP 401 (authentication
 * failed; check LLM_API_KEY): <the provider's message, key redacted, control
 * characters removed, at most 300 bytes>". Codes: GM_EAUTH (401), GM_EDENIED
 * (403), GM_ENOTFOUND (404), GM_ETOOBIG (413 or answer over max_response),
 * GM_ENET (other statuses, unreachable), GM_ETIMEOUT, GM_EPROTO (answer not an
 * OpenAI chat.completion, or not UTF-8), GM_EINVAL (400, bad arguments).
 */
int gm_llm_chat(const gm_llm_config *cfg, const char *user_prompt, gm_llm_answer *answer,
                gm_error *err) GM_MUST_CHECK;

/* Wipe and free the text; answer is left zeroed. Safe on a zeroed answer. */
void gm_llm_answer_free(gm_llm_answer *answer);

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
