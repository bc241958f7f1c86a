/* Fuzz target for the LLM client's parsers: the input is tried as a .env file (through
 * gm_llm_config_load's own code), as a provider's chat.completion answer, and as
 * "key\ntext" for redaction. A loaded configuration must satisfy its documented rules
 * and survive a write-as-.env -> load round trip; an answer never carries the API key;
 * redaction counts and removes every occurrence. Violations abort(). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "gm/llm.h"
#include "llm_internal.h"

#define REDACTED "[REDACTED]"

#define FAIL(why)                                                                  \
    do {                                                                           \
        fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, why); \
        abort();                                                                   \
    } while (0)

static const char *const vars[] = {"LLM_MODEL",       "LLM_API_KEY",      "LLM_BASE_URL",
                                   "LLM_MAX_TOKENS",  "LLM_TEMPERATURE",  "LLM_SYSTEM_PROMPT"};
static int ready;

static void setup(void)
{
    /* the .env text alone decides: nothing may come from the environment */
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
    ready = 1;
}

static int has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

/* Append KEY="value" with the .env escapes. */
static void put_quoted(char **p, char *end, const char *key, const char *v)
{
    *p += snprintf(*p, (size_t)(end - *p), "%s=\"", key);
    for (; *v && *p + 4 < end; v++) {
        if (*v == '"' || *v == '\\') {
            *(*p)++ = '\\';
            *(*p)++ = *v;
        } else if (*v == '\n') {
            *(*p)++ = '\\';
            *(*p)++ = 'n';
        } else if (*v == '\t') {
            *(*p)++ = '\\';
            *(*p)++ = 't';
        } else {
            *(*p)++ = *v;
        }
    }
    *p += snprintf(*p, (size_t)(end - *p), "\"\n");
}

static void check_config(const gm_llm_config *c)
{
    size_t n;
    if (!c->model || !*c->model || strlen(c->model) > 256 || has_ctl(c->model))
        FAIL("LLM_MODEL accepted empty, too long or with control characters");
    if (!c->base_url || (strncasecmp(c->base_url, "https://", 8) && strncasecmp(c->base_url, "http://", 7)))
        FAIL("base URL is not http(s)");
    /* the path (after scheme://host) is kept, non-empty, without trailing '/' or a pasted endpoint */
    const char *path = c->base_url + (c->base_url[4] == ':' ? 7 : 8);
    path += strcspn(path, "/");
    n = strlen(path);
    if (n == 0 || path[n - 1] == '/' || strpbrk(c->base_url, "?# \t") || has_ctl(c->base_url) ||
        (n >= 17 && !strcmp(path + n - 17, "/chat/completions")))
        FAIL("base URL not normalised");
    if (c->max_tokens < 1 || c->max_tokens > GM_LLM_MAX_TOKENS_LIMIT || !(c->temperature >= 0 && c->temperature <= 2))
        FAIL("LLM_MAX_TOKENS or LLM_TEMPERATURE out of range");
    if (c->api_key) {
        if (c->api_key_len == 0 || c->api_key_len != strlen(c->api_key))
            FAIL("api_key_len wrong");
        for (const char *k = c->api_key; *k; k++)
            if ((unsigned char)*k < 0x21 || (unsigned char)*k > 0x7e)
                FAIL("LLM_API_KEY accepted with a space or non-printable byte (header injection)");
    }
    if (c->system_prompt && !*c->system_prompt)
        FAIL("empty system prompt kept");
    n = strlen(c->base_url);

    /* Write the configuration back as a .env and load it again: same values. */
    size_t cap = 64 + 2 * (strlen(c->model) + n + (c->api_key ? c->api_key_len : 0) +
                           (c->system_prompt ? strlen(c->system_prompt) : 0)) + 200;
    char *env = malloc(cap), *p = env, *end = env + cap;
    if (!env)
        FAIL("out of memory");
    put_quoted(&p, end, "LLM_MODEL", c->model);
    put_quoted(&p, end, "export LLM_BASE_URL", c->base_url);
    if (c->api_key)
        put_quoted(&p, end, "LLM_API_KEY", c->api_key);
    if (c->system_prompt)
        put_quoted(&p, end, "LLM_SYSTEM_PROMPT", c->system_prompt);
    p += snprintf(p, (size_t)(end - p), "LLM_MAX_TOKENS=%d # comment\n", c->max_tokens);
    gm_llm_config back;
    gm_error err = {0};
    if ((size_t)(p - env) <= 64 * 1024) {
        if (llm_config_load_text(&back, "round-trip.env", env, (size_t)(p - env), &err) != 0)
            FAIL("a configuration written back as .env does not load");
        if (strcmp(back.model, c->model) || strcmp(back.base_url, c->base_url) || back.max_tokens != c->max_tokens ||
            !back.api_key != !c->api_key || (c->api_key && strcmp(back.api_key, c->api_key)) ||
            !back.system_prompt != !c->system_prompt ||
            (c->system_prompt && strcmp(back.system_prompt, c->system_prompt)))
            FAIL("a configuration written back as .env loads differently");
        gm_llm_config_free(&back);
    }
    free(env);
}

static void try_env(const uint8_t *data, size_t size)
{
    gm_llm_config c;
    gm_error err = {0};
    if (llm_config_load_text(&c, "fuzz.env", (const char *)data, size, &err) != 0) {
        if (c.model || c.base_url || c.api_key)
            FAIL("a failed load left values in the configuration");
        return;
    }
    check_config(&c);
    gm_llm_config_free(&c);
}

static void try_answer(const uint8_t *data, size_t size)
{
    static char key_long[] = "sk-Fuzz_key-0123456789", key_short[] = "k9";
    gm_llm_config c = {0};
    c.model = "m";
    c.base_url = "http://127.0.0.1:9/v1";
    c.api_key = (size & 1) ? key_short : key_long;
    c.api_key_len = strlen(c.api_key);
    gm_http_resp r = {0};
    r.status = 200;
    r.len = size;
    r.body = malloc(size + 1);
    if (!r.body)
        return;
    memcpy(r.body, data, size);
    r.body[size] = '\0';
    gm_llm_answer answer;
    gm_error err = {0};
    if (llm_parse_answer(&c, "http://127.0.0.1:9/v1/chat/completions", &r, &answer, &err) == 0) {
        if (!answer.text || strstr(answer.text, c.api_key) || strlen(answer.text) != answer.len)
            FAIL("the API key came back in an answer");
        gm_llm_answer_free(&answer);
    } else if (answer.text) {
        FAIL("a refused answer still set answer->text");
    }
    if (strstr(err.msg, c.api_key) && c.api_key == key_long)
        FAIL("the API key reached an error message");
    free(r.body);
}

static int key_alphabet(const char *k)
{
    for (; *k; k++)
        if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') || (*k >= '0' && *k <= '9') || *k == '-' ||
              *k == '_'))
            return 0;
    return 1;
}

/* "key\ntext": count and remove every occurrence of key. */
static void try_redact(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    if (!nl || nl == data)
        return;
    size_t klen = (size_t)(nl - data), tlen = size - klen - 1;
    char *key = malloc(klen + 1), *text = malloc(tlen + 1), *orig = malloc(tlen + 1);
    if (!key || !text || !orig)
        FAIL("out of memory");
    memcpy(key, data, klen);
    key[klen] = '\0';
    memcpy(text, nl + 1, tlen);
    text[tlen] = '\0';
    klen = strlen(key);
    tlen = strlen(text);
    memcpy(orig, text, tlen + 1);
    gm_llm_config c = {0};
    c.api_key = key;
    c.api_key_len = klen;
    size_t expect = 0;
    for (const char *p = orig; klen && (p = strstr(p, key)) != NULL; p += klen)
        expect++;
    size_t got = gm_llm_redact(&c, text);
    size_t rlen = strlen(REDACTED);
    if (klen < 12) {
        /* short keys: only whole occurrences, each replaced in place */
        size_t want_len = klen >= rlen ? tlen - expect * (klen - rlen) : tlen;
        if (got != expect || strlen(text) != want_len)
            FAIL("redaction count or resulting length wrong");
    } else {
        /* longer keys: pieces of 12+ characters and base64 forms go too; text only shrinks */
        if ((expect && !got) || strlen(text) > tlen)
            FAIL("redaction count or resulting length wrong");
        if (key_alphabet(key))
            for (size_t i = 0; i + 12 <= klen; i++) {
                char piece[13];
                memcpy(piece, key + i, 12);
                piece[12] = '\0';
                if (strstr(text, piece))
                    FAIL("a 12-character piece of the API key survived redaction");
            }
    }
    if (klen && key_alphabet(key) && strstr(text, key))
        FAIL("an API-key-like string survived redaction");
    free(key);
    free(text);
    free(orig);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ready)
        setup();
    try_env(data, size);
    try_answer(data, size);
    try_redact(data, size);
    return 0;
}
