/* gm_llm: OpenAI-compatible chat over gm_http, with retries within the caller's deadline and
 * fallbacks for parameters a model refuses. The API key stays in sodium_malloc'd memory; of a
 * failed call's answer only the provider's message is kept, with the key redacted. */
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
#include "gm/gmtime.h"
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

enum {
    V_MODEL, V_API_KEY, V_BASE_URL, V_MAX_TOKENS, V_TEMPERATURE, V_SYSTEM_PROMPT,
    V_MAX_TOKENS_PARAM, V_API_VERSION, V_AUTH, V_MAX_RETRIES, V_COUNT
};

static const char *const var_names[V_COUNT] = {
    "LLM_MODEL", "LLM_API_KEY", "LLM_BASE_URL", "LLM_MAX_TOKENS", "LLM_TEMPERATURE",
    "LLM_SYSTEM_PROMPT", "LLM_MAX_TOKENS_PARAM", "LLM_API_VERSION", "LLM_AUTH", "LLM_MAX_RETRIES",
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

/* The base URL's ?query: printable ASCII, no '#'; *out malloc'd, NULL when empty. */
static int split_query(char *u, const char *src, char **out, gm_error *err)
{
    char *q = strchr(u, '?');
    *out = NULL;
    if (!q)
        return 0;
    *q++ = '\0';
    if (!*q)
        return 0;
    if (!printable_ascii(q))
        return gm_error_set(err, GM_EINVAL, "LLM_BASE_URL has a query with spaces or control characters (from %s)",
                            src);
    if (!(*out = strdup(q)))
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    return 0;
}

static int normalize_base_url(const char *in, const char *src, char **out, char **query, gm_error *err)
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
    if (auth_len == 0 || strpbrk(in, "# \t") || has_control(in))
        return gm_error_set(err, GM_EINVAL,
                            "LLM_BASE_URL must be a plain URL such as https://api.openai.com/v1 "
                            "(no fragment or spaces), got \"%s\" (from %s)", shown, src);

    char *u = malloc(n + sizeof "/v1");
    if (!u)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    memcpy(u, in, n + 1);
    int rc = split_query(u, src, query, err);
    if (rc) {
        free(u);
        return rc;
    }
    n = strlen(u);
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
    free(cfg->query);
    if (cfg->api_key)
        sodium_free(cfg->api_key); /* sodium_free wipes before unmapping */
    free(cfg->system_prompt);
    memset(cfg, 0, sizeof *cfg);
}

static int config_from_vars(gm_llm_config *cfg, const char *env_file, struct file_vars *fv,
                            gm_error *err);

/* One of names[] (n of them), or -1. */
static int pick(const char *v, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(v, names[i]) == 0)
            return i;
    return -1;
}

/* The host of an http(s) URL ends with suffix (case-insensitive). */
static int host_ends_with(const char *url, const char *suffix)
{
    const char *h = strstr(url, "://");
    h = h ? h + 3 : url;
    size_t n = strcspn(h, ":/?#"), sl = strlen(suffix);
    return n >= sl && strncasecmp(h + n - sl, suffix, sl) == 0;
}

/* LLM_MAX_TOKENS_PARAM, LLM_API_VERSION, LLM_AUTH, LLM_MAX_RETRIES (base_url and query set). */
static int config_provider_vars(gm_llm_config *cfg, const char *const *val, const char *const *src,
                                gm_error *err)
{
    static const char *const tokens_names[] = { "max_tokens", "max_completion_tokens", "none" };
    static const char *const auth_names[] = { "bearer", "api-key" };
    char shown[48];
    const char *v = val[V_MAX_TOKENS_PARAM];
    cfg->max_tokens_param = GM_LLM_TOKENS_MAX_TOKENS;
    if (v && *v && (cfg->max_tokens_param = pick(v, tokens_names, 3)) < 0) {
        show_value(v, shown, sizeof shown);
        return gm_error_set(err, GM_EINVAL,
                            "LLM_MAX_TOKENS_PARAM must be max_tokens, max_completion_tokens or none, "
                            "got \"%s\" (from %s)", shown, src[V_MAX_TOKENS_PARAM]);
    }
    v = val[V_AUTH];
    cfg->auth = host_ends_with(cfg->base_url, ".azure.com") ? GM_LLM_AUTH_API_KEY : GM_LLM_AUTH_BEARER;
    if (v && *v && (cfg->auth = pick(v, auth_names, 2)) < 0) {
        show_value(v, shown, sizeof shown);
        return gm_error_set(err, GM_EINVAL, "LLM_AUTH must be bearer or api-key, got \"%s\" (from %s)", shown,
                            src[V_AUTH]);
    }
    v = val[V_MAX_RETRIES];
    cfg->max_retries = GM_LLM_DEFAULT_MAX_RETRIES;
    if (v && *v) {
        size_t n = strlen(v);
        if (n > 2 || strspn(v, "0123456789") != n || atoi(v) > GM_LLM_MAX_RETRIES_LIMIT) {
            show_value(v, shown, sizeof shown);
            return gm_error_set(err, GM_EINVAL, "LLM_MAX_RETRIES must be a whole number from 0 to %d, got \"%s\" (from %s)",
                                GM_LLM_MAX_RETRIES_LIMIT, shown, src[V_MAX_RETRIES]);
        }
        cfg->max_retries = atoi(v);
    }
    v = val[V_API_VERSION];
    if (v && *v) {
        size_t n = strlen(v);
        if (n > 64 || strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") != n) {
            show_value(v, shown, sizeof shown);
            return gm_error_set(err, GM_EINVAL,
                                "LLM_API_VERSION must be at most 64 characters of [A-Za-z0-9._-] such as "
                                "2024-10-21, got \"%s\" (from %s)", shown, src[V_API_VERSION]);
        }
        if (cfg->query && strstr(cfg->query, "api-version="))
            return gm_error_set(err, GM_EINVAL,
                                "LLM_API_VERSION is set and LLM_BASE_URL has an api-version query too; keep one");
        size_t qn = (cfg->query ? strlen(cfg->query) + 1 : 0) + sizeof "api-version=" + n;
        char *q = malloc(qn);
        if (!q)
            return gm_error_set(err, GM_ENOMEM, "out of memory");
        snprintf(q, qn, "%s%sapi-version=%s", cfg->query ? cfg->query : "", cfg->query ? "&" : "", v);
        free(cfg->query);
        cfg->query = q;
    }
    return 0;
}

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
    if ((rc = normalize_base_url(base, src[V_BASE_URL], &cfg->base_url, &cfg->query, err)))
        goto out;
    if ((rc = config_provider_vars(cfg, val, src, err)))
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
    if (val[V_TEMPERATURE] && strcmp(val[V_TEMPERATURE], "none") == 0) {
        cfg->omit_temperature = 1;
    } else if (val[V_TEMPERATURE] && parse_temperature(val[V_TEMPERATURE], &cfg->temperature) != 0) {
        show_value(val[V_TEMPERATURE], shown, sizeof shown);
        rc = gm_error_set(err, GM_EINVAL,
                          "LLM_TEMPERATURE must be a decimal number from 0 to 2 such as 0.2, or none, "
                          "got \"%s\" (from %s)", shown, src[V_TEMPERATURE]);
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

/* Length of the valid UTF-8 sequence at s (n bytes available), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    size_t len = s[0] < 0x80 ? 1 : (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3 : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || len > n || (len == 2 && s[0] < 0xC2) || (len == 4 && s[0] > 0xF4))
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((len == 3 && s[0] == 0xE0 && s[1] < 0xA0) || (len == 3 && s[0] == 0xED && s[1] >= 0xA0) ||
        (len == 4 && s[0] == 0xF0 && s[1] < 0x90) || (len == 4 && s[0] == 0xF4 && s[1] >= 0x90))
        return 0;
    return len;
}

/* Copy text for an error message: control characters (C0, DEL, C1) become one space, invalid
 * UTF-8 '?', at most cap-1 bytes cut at a character boundary ("..." when cut). */
static void sanitize_into(const char *text, char *out, size_t cap)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t n = 0, left = strlen(text);
    while (*p && n + 4 < cap) {
        size_t l = utf8_seq(p, left);
        int ctl = l == 1 ? (*p < 0x20 || *p == 0x7f) : (l == 2 && p[0] == 0xC2 && p[1] < 0xA0);
        if (ctl) {
            if (n > 0 && out[n - 1] != ' ')
                out[n++] = ' ';
        } else if (l == 0) {
            out[n++] = '?';
        } else {
            if (n + l + 4 > cap)
                break;
            memcpy(out + n, p, l);
            n += l;
        }
        l = l ? l : 1;
        p += l;
        left -= l;
    }
    while (n > 0 && out[n - 1] == ' ')
        n--;
    if (*p && cap >= 4) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

/* The provider's own explanation in an error answer: error.message, error (a string), message or
 * detail (FastAPI's, in vLLM), else a non-HTML body. The key is redacted from the whole text
 * before anything is cut. param gets error.param (or "") for the parameter fallback. */
static void provider_message(const gm_llm_config *cfg, const gm_http_resp *resp, char *out, size_t cap,
                             char *param, size_t pcap)
{
    out[0] = param[0] = '\0';
    json_t *root = json_loadb(resp->body ? resp->body : "", resp->len, 0, NULL);
    const json_t *e = json_object_get(root, "error"), *m = NULL;
    if (json_is_object(e)) {
        m = json_object_get(e, "message");
        const char *pv = json_string_value(json_object_get(e, "param"));
        if (pv)
            sanitize_into(pv, param, pcap);
    } else if (json_is_string(e)) {
        m = e;
    }
    if (!json_is_string(m))
        m = json_object_get(root, "message");
    if (!json_is_string(m))
        m = json_object_get(root, "detail");
    if (!json_is_string(m) && json_is_array(m))
        m = json_object_get(json_array_get(m, 0), "msg");
    const char *text = json_string_value(m);
    if (!text && !root && resp->body && resp->len > 0 && resp->body[0] != '<')
        text = resp->body;
    char *copy = text ? strdup(text) : NULL;
    if (copy) {
        gm_llm_redact(cfg, copy);
        sanitize_into(copy, out, cap);
        sodium_memzero(copy, strlen(copy));
        free(copy);
    }
    json_decref(root);
}

/* A case-insensitive search. */
static int mentions(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return 1;
    return 0;
}

enum { REFUSED_NONE, REFUSED_MAX_TOKENS, REFUSED_TEMPERATURE };

/* Which parameter a 400 refuses as unsupported by the model (OpenAI's reasoning models:
 * "Unsupported parameter: 'max_tokens' is not supported with this model. Use
 * 'max_completion_tokens' instead.", "Unsupported value: 'temperature' does not support 0.2"). */
static int refused_param(const char *param, const char *msg)
{
    int unsupported = mentions(msg, "unsupported") || mentions(msg, "not supported") ||
                      mentions(msg, "does not support") || mentions(msg, "not allowed");
    if (!unsupported)
        return REFUSED_NONE;
    if (!strcmp(param, "max_tokens") || (!param[0] && mentions(msg, "'max_tokens'")))
        return REFUSED_MAX_TOKENS;
    if (!strcmp(param, "temperature") || (!param[0] && mentions(msg, "temperature")))
        return REFUSED_TEMPERATURE;
    return REFUSED_NONE;
}

/* The credential header (Bearer, or Azure's api-key) into out, which the caller wipes after the
 * request; NULL when the key does not fit. On the caller's stack rather than in sodium_malloc'd
 * memory: libcurl copies headers into ordinary memory anyway (wiped by gm_http), and a
 * sodium_malloc per request is mmap, mlock, mprotect and munmap, each unmap and protect change a
 * TLB shootdown across the threads of an agent, most of an llm.chat call's CPU. */
#define AUTH_HEADER_MAX (API_KEY_MAX + 32)
static const char *auth_header(const gm_llm_config *cfg, char out[AUTH_HEADER_MAX])
{
    const char *prefix = cfg->auth == GM_LLM_AUTH_API_KEY ? "api-key: " : "Authorization: Bearer ";
    size_t pn = strlen(prefix), n = pn + cfg->api_key_len;
    if (n >= AUTH_HEADER_MAX)
        return NULL;
    memcpy(out, prefix, pn);
    memcpy(out + pn, cfg->api_key, cfg->api_key_len);
    out[n] = '\0';
    return out;
}

static char *chat_body(const gm_llm_config *cfg, const char *user_prompt, int tokens_param,
                       int omit_temperature, gm_error *err)
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
    json_t *body = json_pack("{s:s, s:o}", "model", cfg->model, "messages", msgs);
    if (body && tokens_param != GM_LLM_TOKENS_NONE)
        json_object_set_new(body, tokens_param == GM_LLM_TOKENS_MAX_TOKENS ? "max_tokens" : "max_completion_tokens",
                            json_integer(cfg->max_tokens));
    if (body && !omit_temperature)
        json_object_set_new(body, "temperature", json_real(cfg->temperature));
    /* 15 digits print the decimal the user wrote (0.2, not 0.20000000000000001). */
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
    json_decref(body);
    if (!text)
        gm_error_set(err, GM_ENOMEM, "out of memory building the LLM request");
    return text;
}

void gm_llm_answer_free(gm_llm_answer *a)
{
    if (!a)
        return;
    if (a->text) {
        sodium_memzero(a->text, a->len);
        free(a->text);
    }
    memset(a, 0, sizeof *a);
}

int llm_parse_answer(const gm_llm_config *cfg, const char *shown_url, const gm_http_resp *resp,
                     gm_llm_answer *answer, gm_error *err)
{
    json_error_t jerr;
    memset(answer, 0, sizeof *answer);
    json_t *root = json_loadb(resp->body, resp->len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root && json_error_code(&jerr) == json_error_invalid_utf8)
        return gm_error_set(err, GM_EPROTO,
                            "LLM provider at %s returned HTTP %d with text that is not valid UTF-8 "
                            "(byte offset %d)", shown_url, resp->status, jerr.position);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return gm_error_set(err, GM_EPROTO,
                            "LLM provider at %s returned HTTP %d with a body that is not a JSON "
                            "object", shown_url, resp->status);
    }
    int rc = 0;
    json_t *choice = json_array_get(json_object_get(root, "choices"), 0);
    json_t *msg = json_object_get(choice, "message");
    json_t *content = json_object_get(msg, "content");
    const char *finish = json_string_value(json_object_get(choice, "finish_reason"));
    if (json_object_get(root, "error")) {
        char shown[240], param[64];
        provider_message(cfg, resp, shown, sizeof shown, param, sizeof param);
        rc = gm_error_set(err, GM_ENET, "LLM provider at %s reported an error in an HTTP %d answer: %s",
                          shown_url, resp->status, shown[0] ? shown : "(no message)");
    } else if (!json_is_object(msg) || !(json_is_string(content) || json_is_null(content))) {
        rc = gm_error_set(err, GM_EPROTO,
                          "LLM provider at %s answered without choices[0].message.content text",
                          shown_url);
    } else if (json_is_string(content) &&
               strlen(json_string_value(content)) != json_string_length(content)) {
        rc = gm_error_set(err, GM_EPROTO, "LLM provider at %s answered text with NUL characters",
                          shown_url);
    } else if (!(answer->text = strdup(json_is_string(content) ? json_string_value(content) : ""))) {
        rc = gm_error_set(err, GM_ENOMEM, "out of memory");
    } else {
        gm_llm_redact(cfg, answer->text);
        answer->len = strlen(answer->text);
        if (finish)
            sanitize_into(finish, answer->finish_reason, sizeof answer->finish_reason);
        answer->truncated_by_provider = finish && (!strcmp(finish, "length") || !strcmp(finish, "max_tokens"));
    }
    json_decref(root);
    return rc;
}

#define ATTEMPT_MIN_MS 200     /* no attempt is started with less time left than this */
#define BACKOFF_FIRST_MS 250
#define BACKOFF_MAX_MS 8000

/* Exponential backoff with jitter: 250 ms, 500 ms, 1 s, ... (at most 8 s), each from 75% to 125%. */
static long backoff_ms(int retry)
{
    long base = BACKOFF_FIRST_MS << (retry < 5 ? retry : 5);
    if (base > BACKOFF_MAX_MS)
        base = BACKOFF_MAX_MS;
    return base * 3 / 4 + (long)randombytes_uniform((uint32_t)(base / 2 + 1));
}

/* <base_url>/chat/completions[?query], malloc'd. */
static char *chat_url(const gm_llm_config *cfg)
{
    size_t ulen = strlen(cfg->base_url) + sizeof CHAT_PATH + (cfg->query ? strlen(cfg->query) + 1 : 0);
    char *url = malloc(ulen);
    if (url)
        snprintf(url, ulen, "%s%s%s%s", cfg->base_url, CHAT_PATH, cfg->query ? "?" : "", cfg->query ? cfg->query : "");
    return url;
}

/* One request's outcome: 0 with the answer, or an error in e; *retry_in_ms >= 0 when a retry may help. */
static int chat_once(const gm_llm_config *cfg, const char *url, const gm_http_req *req, gm_llm_answer *answer,
                     int *refused, long *retry_in_ms, int retries, gm_error *e)
{
    gm_http_resp resp;
    *refused = REFUSED_NONE;
    *retry_in_ms = -1;
    int rc = gm_http_request(req, &resp, e);
    if (rc) {
        gm_llm_redact(cfg, e->msg);
        gm_error_prefix(e, "LLM provider");
        /* Refused, reset or closed early: the provider may be restarting or overloaded. */
        if (rc == GM_ENET)
            *retry_in_ms = backoff_ms(retries);
        return rc;
    }
    if (resp.status >= 200 && resp.status <= 299) {
        rc = llm_parse_answer(cfg, url, &resp, answer, e);
    } else {
        int code;
        char shown[240], param[64];
        const char *hint = status_hint(resp.status, &code, cfg->api_key != NULL);
        provider_message(cfg, &resp, shown, sizeof shown, param, sizeof param);
        rc = gm_error_set(e, code, "LLM provider at %s returned HTTP %d (%s)%s%s", url, resp.status, hint,
                          shown[0] ? ": " : "", shown);
        if (resp.status == 400)
            *refused = refused_param(param, shown);
        if (resp.status == 429 || resp.status == 408 || resp.status >= 500)
            *retry_in_ms = resp.retry_after_ms >= 0 ? resp.retry_after_ms : backoff_ms(retries);
    }
    gm_http_resp_free(&resp);
    return rc;
}

int gm_llm_chat(const gm_llm_config *cfg, const char *user_prompt, gm_llm_answer *answer,
                gm_error *err)
{
    if (answer)
        memset(answer, 0, sizeof *answer);
    if (!cfg || !cfg->model || !cfg->base_url || !user_prompt || !answer)
        return gm_error_set(err, GM_EINVAL, "LLM chat needs a loaded configuration and a prompt");

    char *url = chat_url(cfg);
    if (!url)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    char auth[AUTH_HEADER_MAX];
    const char *headers[3] = { "Content-Type: application/json", "Accept: application/json" };
    size_t n_headers = 2;
    if (cfg->api_key) {
        if (!auth_header(cfg, auth)) {
            free(url);
            return gm_error_set(err, GM_EINVAL, "the LLM API key is longer than %d characters", API_KEY_MAX);
        }
        headers[n_headers++] = auth;
    }

    long budget = cfg->timeout_ms > 0 ? cfg->timeout_ms : GM_LLM_DEFAULT_TIMEOUT_MS;
    int64_t deadline = gm_mono_ms() + budget;
    int tokens_param = cfg->max_tokens_param, omit_temperature = cfg->omit_temperature;
    int retries = 0, attempts = 0, rc;
    gm_error e = { 0 };
    for (;;) {
        int64_t left = deadline - gm_mono_ms();
        if (attempts > 0 && left < ATTEMPT_MIN_MS) {
            rc = gm_error_set(&e, GM_ETIMEOUT, "LLM provider at %s: no answer within %ld ms", url, budget);
            break;
        }
        char *body = chat_body(cfg, user_prompt, tokens_param, omit_temperature, &e);
        if (!body) {
            rc = e.code;
            break;
        }
        gm_http_req req = {
            .method = "POST", .url = url, .headers = headers, .n_headers = n_headers,
            .body = body, .body_len = strlen(body), .timeout_ms = left > 1 ? (long)left : 1,
            .max_response = cfg->max_response,
            .keep_alive = 1, /* one connection to the model for call after call; never re-sent unseen */
        };
        int refused;
        long wait_ms;
        attempts++;
        rc = chat_once(cfg, url, &req, answer, &refused, &wait_ms, retries, &e);
        free(body);
        if (rc == 0)
            break;
        /* A model that refuses a parameter: once per parameter, without it. */
        if (refused == REFUSED_MAX_TOKENS && tokens_param != GM_LLM_TOKENS_NONE) {
            tokens_param = tokens_param == GM_LLM_TOKENS_MAX_TOKENS && mentions(e.msg, "max_completion_tokens")
                               ? GM_LLM_TOKENS_MAX_COMPLETION_TOKENS
                               : GM_LLM_TOKENS_NONE;
            continue;
        }
        if (refused == REFUSED_TEMPERATURE && !omit_temperature) {
            omit_temperature = 1;
            continue;
        }
        if (wait_ms < 0)
            break;
        if (retries >= cfg->max_retries) {
            if (retries > 0)
                gm_error_prefix(&e, "gave up after %d attempts", attempts);
            break;
        }
        left = deadline - gm_mono_ms();
        if (wait_ms + ATTEMPT_MIN_MS > left) {
            gm_error_prefix(&e, "not retried: waiting %ld ms would pass the deadline (%ld ms left)", wait_ms,
                            (long)(left > 0 ? left : 0));
            break;
        }
        gm_sleep_ms(wait_ms);
        retries++;
    }
    sodium_memzero(auth, sizeof auth);
    free(url);
    if (rc) {
        gm_llm_answer_free(answer);
        gm_llm_redact(cfg, e.msg);
        if (err)
            *err = e;
    } else {
        answer->attempts = attempts;
    }
    return rc;
}
