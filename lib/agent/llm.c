/* gm_llm: OpenAI-compatible chat over gm_http. The API key stays in sodium_malloc'd
 * memory; provider answers to failed calls are never copied anywhere. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "gm/error.h"
#include "gm/http_client.h"
#include "gm/llm.h"
#include "llm_internal.h"

#define ENV_FILE_MAX (64 * 1024)
#define MODEL_MAX 256
#define API_KEY_MAX 4096
#define BASE_URL_MAX 2048
#define SYSTEM_PROMPT_MAX (64 * 1024)
#define CHAT_PATH "/chat/completions"
#define REDACTED "[REDACTED]"

enum { V_MODEL, V_API_KEY, V_BASE_URL, V_MAX_TOKENS, V_TEMPERATURE, V_SYSTEM_PROMPT, V_COUNT };

static const char *const var_names[V_COUNT] = {
    "LLM_MODEL", "LLM_API_KEY", "LLM_BASE_URL", "LLM_MAX_TOKENS", "LLM_TEMPERATURE",
    "LLM_SYSTEM_PROMPT",
};

/* Values found in the .env file, each in its own sodium_malloc'd buffer. */
struct file_vars {
    char *val[V_COUNT];
};

static void file_vars_free(struct file_vars *fv)
{
    for (int i = 0; i < V_COUNT; i++) {
        if (fv->val[i])
            sodium_free(fv->val[i]);
        fv->val[i] = NULL;
    }
}

static char *secure_strndup(const char *s, size_t n)
{
    char *p = sodium_malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* A user-supplied value as shown in messages: short, printable only. */
static void show_value(const char *v, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = v; *p && n + 4 < cap; p++)
        out[n++] = ((unsigned char)*p < 0x20 || *p == 0x7f) ? '?' : *p;
    if (v[n] && cap >= 4) {
        if (n + 3 >= cap)
            n = cap - 4;
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

static int is_ws(char c)
{
    return c == ' ' || c == '\t';
}

static char *skip_ws(char *s)
{
    while (is_ws(*s))
        s++;
    return s;
}

static int is_key_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int is_key_char(char c)
{
    return is_key_start(c) || (c >= '0' && c <= '9');
}

/* Parse one NUL-terminated line; the value is decoded in place. */
static int parse_env_line(char *s, const char *path, int lineno, struct file_vars *fv,
                          gm_error *err)
{
    s = skip_ws(s);
    if (*s == '\0' || *s == '#')
        return 0;
    if (strncmp(s, "export", 6) == 0 && is_ws(s[6]))
        s = skip_ws(s + 6);
    char *key = s;
    if (!is_key_start(*s))
        return gm_error_set(err, GM_EFORMAT, "%s line %d: expected KEY=VALUE", path, lineno);
    while (is_key_char(*s))
        s++;
    size_t klen = (size_t)(s - key);
    s = skip_ws(s);
    if (*s != '=')
        return gm_error_set(err, GM_EFORMAT, "%s line %d: expected KEY=VALUE", path, lineno);
    s = skip_ws(s + 1);

    char *val = s, *out = s;
    if (*s == '"' || *s == '\'') {
        char quote = *s++;
        for (;;) {
            if (*s == '\0')
                return gm_error_set(err, GM_EFORMAT, "%s line %d: quoted value is not closed",
                                    path, lineno);
            if (*s == quote) {
                s++;
                break;
            }
            if (quote == '"' && *s == '\\' && s[1]) {
                switch (s[1]) {
                case 'n': *out++ = '\n'; break;
                case 't': *out++ = '\t'; break;
                case '"': *out++ = '"'; break;
                case '\\': *out++ = '\\'; break;
                default:
                    *out++ = '\\';
                    *out++ = s[1];
                    break;
                }
                s += 2;
            } else {
                *out++ = *s++;
            }
        }
        s = skip_ws(s);
        if (*s != '\0' && *s != '#')
            return gm_error_set(err, GM_EFORMAT,
                                "%s line %d: unexpected text after the closing quote", path,
                                lineno);
        *out = '\0';
    } else {
        /* Unquoted: a '#' after whitespace starts a comment (val[-1] is '=' or blank). */
        char *q = s;
        while (*q && !(*q == '#' && is_ws(q[-1])))
            q++;
        while (q > val && is_ws(q[-1]))
            q--;
        *q = '\0';
    }

    for (int i = 0; i < V_COUNT; i++) {
        if (strlen(var_names[i]) != klen || memcmp(var_names[i], key, klen) != 0)
            continue;
        if (fv->val[i])
            return gm_error_set(err, GM_EFORMAT, "%s line %d: %s is set a second time", path,
                                lineno, var_names[i]);
        fv->val[i] = secure_strndup(val, strlen(val));
        if (!fv->val[i])
            return gm_error_set(err, GM_ENOMEM, "out of memory reading %s", path);
    }
    return 0;
}

static int parse_env_buf(char *buf, size_t len, const char *path, struct file_vars *fv, gm_error *err);

static int read_env_file(const char *path, struct file_vars *fv, gm_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return gm_error_set(err, errno == ENOENT ? GM_ENOTFOUND : GM_EIO, "cannot open %s: %s",
                            path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return gm_error_set(err, GM_EIO, "%s is not a regular file", path);
    }
    /* The file holds the API key: read it into guarded memory that is wiped on free. */
    char *buf = sodium_malloc(ENV_FILE_MAX + 1);
    if (!buf) {
        close(fd);
        return gm_error_set(err, GM_ENOMEM, "out of memory reading %s", path);
    }
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, ENV_FILE_MAX + 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            sodium_free(buf);
            return gm_error_set(err, GM_EIO, "cannot read %s: %s", path, strerror(e));
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len > ENV_FILE_MAX) {
            close(fd);
            sodium_free(buf);
            return gm_error_set(err, GM_ETOOBIG, "%s is larger than %d bytes", path,
                                ENV_FILE_MAX);
        }
    }
    close(fd);
    buf[len] = '\0';
    int rc = parse_env_buf(buf, len, path, fv, err);
    sodium_free(buf);
    return rc;
}

/* Parse .env content held in buf[0..len] (buf[len] == '\0'; lines are cut in place). */
static int parse_env_buf(char *buf, size_t len, const char *path, struct file_vars *fv, gm_error *err)
{
    int rc = 0;
    if (memchr(buf, '\0', len))
        rc = gm_error_set(err, GM_EFORMAT, "%s contains NUL bytes; is it a text file?", path);
    char *p = buf, *end = buf + len;
    int lineno = 0;
    while (rc == 0 && p < end) {
        lineno++;
        char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        char *le = eol;
        if (le > p && le[-1] == '\r')
            le--;
        *le = '\0';
        rc = parse_env_line(p, path, lineno, fv, err);
        p = eol + 1;
    }
    if (rc)
        file_vars_free(fv);
    return rc;
}

static int parse_max_tokens(const char *s, int *out)
{
    long v = 0;
    if (*s == '\0')
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
        if (v > GM_LLM_MAX_TOKENS_LIMIT)
            return -1;
    }
    if (v < 1)
        return -1;
    *out = (int)v;
    return 0;
}

/* Locale-independent and exact: digits[.digits], at most 15 significant digits. */
static int parse_temperature(const char *s, double *out)
{
    long long num = 0, den = 1;
    int digits = 0, frac = 0;
    if (*s < '0' || *s > '9')
        return -1;
    /* Stop at 16 digits: more are refused anyway and would overflow num or den. */
    for (; *s >= '0' && *s <= '9' && digits <= 15; s++, digits++)
        num = num * 10 + (*s - '0');
    if (*s == '.') {
        s++;
        for (; *s >= '0' && *s <= '9' && digits <= 15; s++, digits++, frac++) {
            num = num * 10 + (*s - '0');
            den *= 10;
        }
        if (frac == 0)
            return -1;
    }
    if (*s != '\0' || digits > 15)
        return -1;
    if (num > 2 * den)
        return -1;
    *out = (double)num / (double)den;
    return 0;
}

static int printable_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
            return 0;
    return 1;
}

static int has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

static int normalize_base_url(const char *in, const char *src, char **out, gm_error *err)
{
    char shown[96];
    show_value(in, shown, sizeof shown);
    size_t n = strlen(in);
    if (n > BASE_URL_MAX)
        return gm_error_set(err, GM_EINVAL, "LLM_BASE_URL is longer than %d characters (from %s)",
                            BASE_URL_MAX, src);
    size_t skip;
    if (strncasecmp(in, "https://", 8) == 0)
        skip = 8;
    else if (strncasecmp(in, "http://", 7) == 0)
        skip = 7;
    else
        return gm_error_set(err, GM_EINVAL,
                            "LLM_BASE_URL must start with http:// or https://, got \"%s\" (from %s)",
                            shown, src);
    const char *auth = in + skip;
    size_t auth_len = strcspn(auth, "/?#");
    if (memchr(auth, '@', auth_len))
        return gm_error_set(err, GM_EINVAL,
                            "LLM_BASE_URL must not contain user:password@; put the key in "
                            "LLM_API_KEY (from %s)", src);
    if (auth_len == 0 || strpbrk(in, "?# \t") || has_control(in))
        return gm_error_set(err, GM_EINVAL,
                            "LLM_BASE_URL must be a plain URL such as https://api.openai.com/v1 "
                            "(no query, fragment or spaces), got \"%s\" (from %s)", shown, src);

    char *u = malloc(n + sizeof "/v1");
    if (!u)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    memcpy(u, in, n + 1);
    size_t host_end = skip + auth_len;
    while (n > host_end && u[n - 1] == '/')
        u[--n] = '\0';
    size_t cl = strlen(CHAT_PATH);
    if (n >= host_end + cl && strcmp(u + n - cl, CHAT_PATH) == 0) {
        n -= cl;
        u[n] = '\0';
        while (n > host_end && u[n - 1] == '/')
            u[--n] = '\0';
    }
    if (n == host_end)
        memcpy(u + n, "/v1", sizeof "/v1");
    *out = u;
    return 0;
}

void gm_llm_config_free(gm_llm_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->model);
    free(cfg->base_url);
    if (cfg->api_key)
        sodium_free(cfg->api_key); /* sodium_free wipes before unmapping */
    free(cfg->system_prompt);
    memset(cfg, 0, sizeof *cfg);
}

static int config_from_vars(gm_llm_config *cfg, const char *env_file, struct file_vars *fv,
                            gm_error *err);

int gm_llm_config_load(gm_llm_config *cfg, const char *env_file, gm_error *err)
{
    if (!cfg)
        return gm_error_set(err, GM_EINVAL, "no LLM configuration to fill");
    memset(cfg, 0, sizeof *cfg);
    if (sodium_init() < 0)
        return gm_error_set(err, GM_ECRYPTO, "cannot initialise libsodium");

    struct file_vars fv = { { 0 } };
    if (env_file) {
        int rc = read_env_file(env_file, &fv, err);
        if (rc)
            return rc;
    }
    return config_from_vars(cfg, env_file, &fv, err);
}

int llm_config_load_text(gm_llm_config *cfg, const char *name, const char *text, size_t len,
                         gm_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    if (sodium_init() < 0)
        return gm_error_set(err, GM_ECRYPTO, "cannot initialise libsodium");
    if (len > ENV_FILE_MAX)
        return gm_error_set(err, GM_ETOOBIG, "%s is larger than %d bytes", name, ENV_FILE_MAX);
    struct file_vars fv = { { 0 } };
    char *buf = sodium_malloc(len + 1);
    if (!buf)
        return gm_error_set(err, GM_ENOMEM, "out of memory reading %s", name);
    memcpy(buf, text, len);
    buf[len] = '\0';
    int rc = parse_env_buf(buf, len, name, &fv, err);
    sodium_free(buf);
    return rc ? rc : config_from_vars(cfg, name, &fv, err);
}

/* The rest of gm_llm_config_load once the .env values are known (fv is freed). */
static int config_from_vars(gm_llm_config *cfg, const char *env_file, struct file_vars *fv,
                            gm_error *err)
{
    const char *val[V_COUNT], *src[V_COUNT];
    for (int i = 0; i < V_COUNT; i++) {
        val[i] = getenv(var_names[i]);
        src[i] = "environment";
        if (!val[i] && fv->val[i]) {
            val[i] = fv->val[i];
            src[i] = env_file;
        }
    }

    int rc = 0;
    char shown[48];
    cfg->timeout_ms = GM_LLM_DEFAULT_TIMEOUT_MS;
    cfg->max_response = GM_LLM_DEFAULT_MAX_RESPONSE;

    const char *model = val[V_MODEL];
    if (!model || !*model) {
        rc = gm_error_set(err, GM_EINVAL,
                          "LLM_MODEL is not set; set it in the environment or the .env file "
                          "(e.g. LLM_MODEL=gpt-4o-mini)");
        goto out;
    }
    if (strlen(model) > MODEL_MAX || has_control(model)) {
        rc = gm_error_set(err, GM_EINVAL,
                          "LLM_MODEL must be at most %d printable characters (from %s)", MODEL_MAX,
                          src[V_MODEL]);
        goto out;
    }
    if (!(cfg->model = strdup(model))) {
        rc = gm_error_set(err, GM_ENOMEM, "out of memory");
        goto out;
    }

    const char *key = val[V_API_KEY];
    if (key && *key) {
        size_t klen = strlen(key);
        /* The key goes into a header line: CR/LF or spaces would corrupt or inject headers. */
        if (klen > API_KEY_MAX || !printable_ascii(key)) {
            rc = gm_error_set(err, GM_EINVAL,
                              "LLM_API_KEY must be at most %d printable characters without "
                              "spaces (from %s)", API_KEY_MAX, src[V_API_KEY]);
            goto out;
        }
        if (!(cfg->api_key = secure_strndup(key, klen))) {
            rc = gm_error_set(err, GM_ENOMEM, "out of memory");
            goto out;
        }
        cfg->api_key_len = klen;
    }

    const char *base = val[V_BASE_URL];
    if (!base || !*base) {
        base = GM_LLM_DEFAULT_BASE_URL;
        src[V_BASE_URL] = "default";
    }
    if ((rc = normalize_base_url(base, src[V_BASE_URL], &cfg->base_url, err)))
        goto out;

    cfg->max_tokens = GM_LLM_DEFAULT_MAX_TOKENS;
    if (val[V_MAX_TOKENS] && parse_max_tokens(val[V_MAX_TOKENS], &cfg->max_tokens) != 0) {
        show_value(val[V_MAX_TOKENS], shown, sizeof shown);
        rc = gm_error_set(err, GM_EINVAL,
                          "LLM_MAX_TOKENS must be a whole number from 1 to %d, got \"%s\" "
                          "(from %s)", GM_LLM_MAX_TOKENS_LIMIT, shown, src[V_MAX_TOKENS]);
        goto out;
    }

    cfg->temperature = GM_LLM_DEFAULT_TEMPERATURE;
    if (val[V_TEMPERATURE] && parse_temperature(val[V_TEMPERATURE], &cfg->temperature) != 0) {
        show_value(val[V_TEMPERATURE], shown, sizeof shown);
        rc = gm_error_set(err, GM_EINVAL,
                          "LLM_TEMPERATURE must be a decimal number from 0 to 2 such as 0.2, got "
                          "\"%s\" (from %s)", shown, src[V_TEMPERATURE]);
        goto out;
    }

    const char *sys = val[V_SYSTEM_PROMPT];
    if (sys && *sys) {
        json_t *probe = strlen(sys) <= SYSTEM_PROMPT_MAX ? json_string(sys) : NULL;
        if (!probe) {
            rc = gm_error_set(err, GM_EINVAL,
                              "LLM_SYSTEM_PROMPT must be valid UTF-8 of at most %d bytes (from %s)",
                              SYSTEM_PROMPT_MAX, src[V_SYSTEM_PROMPT]);
            goto out;
        }
        json_decref(probe);
        if (!(cfg->system_prompt = strdup(sys))) {
            rc = gm_error_set(err, GM_ENOMEM, "out of memory");
            goto out;
        }
    }

out:
    file_vars_free(fv);
    if (rc)
        gm_llm_config_free(cfg);
    return rc;
}

/* A piece of the key this long is as good as the key to whoever reads it (and cannot be a
 * coincidence in ordinary text); shorter keys are only matched whole. */
#define REDACT_MIN_PIECE 12

/* Replace every run of text of min or more characters that also occurs in needle. */
static size_t redact_pieces(char *text, const char *needle, size_t nlen, size_t min)
{
    const size_t rlen = strlen(REDACTED);
    size_t count = 0, tlen = strlen(text);
    for (size_t i = 0; i + min <= tlen;) {
        size_t best = 0;
        for (size_t j = 0; j + min <= nlen; j++) {
            size_t l = 0;
            while (j + l < nlen && i + l < tlen && text[i + l] == needle[j + l])
                l++;
            if (l > best)
                best = l;
        }
        if (best < min) {
            i++;
            continue;
        }
        memcpy(text + i, REDACTED, rlen); /* min >= rlen: the text only shrinks */
        memmove(text + i + rlen, text + i + best, tlen - i - best + 1);
        tlen -= best - rlen;
        i += rlen;
        count++;
    }
    return count;
}

size_t gm_llm_redact(const gm_llm_config *cfg, char *text)
{
    if (!cfg || !cfg->api_key || cfg->api_key_len == 0 || !text)
        return 0;
    const size_t klen = cfg->api_key_len, rlen = strlen(REDACTED);
    size_t count = 0;
    char *p = text;
    if (klen >= REDACT_MIN_PIECE) {
        count = redact_pieces(text, cfg->api_key, klen, REDACT_MIN_PIECE);
        /* Base64 of the key, however it was aligned inside what was encoded: starting at key
         * byte s (0..2), whole 3-byte groups encode to the same characters wherever they sit. */
        for (size_t s = 0; s < 3 && klen - s >= 9; s++) {
            size_t n = (klen - s) / 3 * 3;
            size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
            char *enc = malloc(cap);
            if (!enc)
                break;
            sodium_bin2base64(enc, cap, (const unsigned char *)cfg->api_key + s, n,
                              sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
            count += redact_pieces(text, enc, strlen(enc), REDACT_MIN_PIECE);
            for (char *c = enc; *c; c++) /* the URL-safe alphabet too */
                *c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
            count += redact_pieces(text, enc, strlen(enc), REDACT_MIN_PIECE);
            sodium_memzero(enc, cap);
            free(enc);
        }
        return count;
    }
    while ((p = strstr(p, cfg->api_key)) != NULL) {
        if (klen >= rlen) {
            memcpy(p, REDACTED, rlen);
            memmove(p + rlen, p + klen, strlen(p + klen) + 1);
            p += rlen;
        } else {
            memset(p, '*', klen);
            p += klen;
        }
        count++;
    }
    return count;
}

static const char *status_hint(int status, int *code, int have_key)
{
    switch (status) {
    case 400: *code = GM_EINVAL; return "request rejected; check LLM_MODEL and LLM_MAX_TOKENS";
    case 401:
        *code = GM_EAUTH;
        return have_key ? "authentication failed; check LLM_API_KEY"
                        : "authentication failed; LLM_API_KEY is not set";
    case 403: *code = GM_EDENIED; return "access denied for this key or model";
    case 404: *code = GM_ENOTFOUND; return "not found; check LLM_BASE_URL and LLM_MODEL";
    case 408: *code = GM_ETIMEOUT; return "provider timed out";
    case 413: *code = GM_ETOOBIG; return "request too large";
    case 429: *code = GM_ENET; return "rate limited or quota exceeded; try again later";
    default:
        *code = GM_ENET;
        return status >= 500 ? "provider error; try again later" : "unexpected status";
    }
}

static char *bearer_header(const gm_llm_config *cfg)
{
    static const char prefix[] = "Authorization: Bearer ";
    size_t n = sizeof prefix - 1 + cfg->api_key_len;
    char *h = sodium_malloc(n + 1);
    if (h) {
        memcpy(h, prefix, sizeof prefix - 1);
        memcpy(h + sizeof prefix - 1, cfg->api_key, cfg->api_key_len);
        h[n] = '\0';
    }
    return h;
}

static char *chat_body(const gm_llm_config *cfg, const char *user_prompt, gm_error *err)
{
    json_t *user = json_string(user_prompt);
    if (!user) {
        gm_error_set(err, GM_EINVAL, "the prompt is not valid UTF-8");
        return NULL;
    }
    json_t *msgs = json_array();
    if (cfg->system_prompt)
        json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "system", "content",
                                              cfg->system_prompt));
    json_array_append_new(msgs, json_pack("{s:s, s:o}", "role", "user", "content", user));
    json_t *body = json_pack("{s:s, s:o, s:i, s:f}", "model", cfg->model, "messages", msgs,
                             "max_tokens", cfg->max_tokens, "temperature", cfg->temperature);
    /* 15 digits print the decimal the user wrote (0.2, not 0.20000000000000001). */
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
    json_decref(body);
    if (!text)
        gm_error_set(err, GM_ENOMEM, "out of memory building the LLM request");
    return text;
}

int llm_parse_answer(const gm_llm_config *cfg, const char *shown_url, const gm_http_resp *resp,
                     char **answer_out, gm_error *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(resp->body, resp->len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return gm_error_set(err, GM_EPROTO,
                            "LLM provider at %s returned HTTP %d with a body that is not a JSON "
                            "object", shown_url, resp->status);
    }
    int rc = 0;
    json_t *choices = json_object_get(root, "choices");
    json_t *msg = json_object_get(json_array_get(choices, 0), "message");
    json_t *content = json_object_get(msg, "content");
    if (json_object_get(root, "error")) {
        rc = gm_error_set(err, GM_ENET, "LLM provider at %s reported an error in an HTTP %d answer",
                          shown_url, resp->status);
    } else if (!json_is_string(content)) {
        rc = gm_error_set(err, GM_EPROTO,
                          "LLM provider at %s answered without choices[0].message.content text",
                          shown_url);
    } else if (strlen(json_string_value(content)) != json_string_length(content)) {
        rc = gm_error_set(err, GM_EPROTO, "LLM provider at %s answered text with NUL characters",
                          shown_url);
    } else if (!(*answer_out = strdup(json_string_value(content)))) {
        rc = gm_error_set(err, GM_ENOMEM, "out of memory");
    } else {
        gm_llm_redact(cfg, *answer_out);
    }
    json_decref(root);
    return rc;
}

int gm_llm_chat(const gm_llm_config *cfg, const char *user_prompt, char **answer_out,
                gm_error *err)
{
    if (answer_out)
        *answer_out = NULL;
    if (!cfg || !cfg->model || !cfg->base_url || !user_prompt || !answer_out)
        return gm_error_set(err, GM_EINVAL, "LLM chat needs a loaded configuration and a prompt");

    size_t ulen = strlen(cfg->base_url) + sizeof CHAT_PATH;
    char *url = malloc(ulen);
    if (!url)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    snprintf(url, ulen, "%s%s", cfg->base_url, CHAT_PATH);

    char *body = chat_body(cfg, user_prompt, err);
    if (!body) {
        free(url);
        return err ? err->code : GM_EINVAL;
    }

    char *auth = NULL;
    const char *headers[3] = { "Content-Type: application/json", "Accept: application/json" };
    size_t n_headers = 2;
    if (cfg->api_key) {
        if (!(auth = bearer_header(cfg))) {
            free(url);
            free(body);
            return gm_error_set(err, GM_ENOMEM, "out of memory");
        }
        headers[n_headers++] = auth;
    }

    gm_http_req req = {
        .method = "POST", .url = url, .headers = headers, .n_headers = n_headers,
        .body = body, .body_len = strlen(body), .timeout_ms = cfg->timeout_ms,
        .max_response = cfg->max_response,
    };
    gm_http_resp resp;
    int rc = gm_http_request(&req, &resp, err);
    if (auth)
        sodium_free(auth);
    free(body);

    if (rc) {
        if (err) {
            gm_llm_redact(cfg, err->msg);
            gm_error_prefix(err, "LLM provider");
        }
    } else if (resp.status < 200 || resp.status > 299) {
        int code;
        const char *hint = status_hint(resp.status, &code, cfg->api_key != NULL);
        rc = gm_error_set(err, code, "LLM provider at %s returned HTTP %d (%s)", url, resp.status,
                          hint);
    } else {
        rc = llm_parse_answer(cfg, url, &resp, answer_out, err);
    }
    if (rc && err)
        gm_llm_redact(cfg, err->msg);
    gm_http_resp_free(&resp);
    free(url);
    return rc;
}
