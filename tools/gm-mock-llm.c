/*
 * gm-mock-llm: a deterministic OpenAI-compatible chat server for tests.
 *
 *   gm-mock-llm --port N [--host 127.0.0.1] [--require-key KEY] [--port-file F] [--model NAME]
 *
 * --port 0 picks a free port. The bound port is always printed on stdout and,
 * with --port-file, written to F (atomically, so a poller never reads half of it).
 *
 * POST /v1/chat/completions answers a chat.completion whose content is
 *     "[mock:<model>] <P> (fnv1a32=<H>)"
 * where <P> is the first 200 bytes of the last user message (cut back to a
 * UTF-8 boundary) and <H> the 8 lowercase hex digits of the 32-bit FNV-1a hash
 * of the whole message. Tokens are counted as ceil(bytes/4) per message
 * content; "created" is always 1700000000; finish_reason is always "stop".
 * Triggers in the last user message: "__mock_error_500__" gives HTTP 500,
 * "__mock_garbage__" an HTTP 200 body that is not JSON, "__mock_slow__" a 3 s delay.
 * Real providers' habits, for the client's retries and marks (N, S, MS are decimal):
 *   __mock_fail_N_STATUS__  the first N requests with this exact message get STATUS (429, 5xx)
 *                           with an OpenAI-style error; __mock_retry_after_S__ adds Retry-After: S
 *   __mock_drop_N__         the first N requests with this exact message: connection closed, no answer
 *   __mock_sleep_MS__       answer after MS ms
 *   __mock_trickle_MS__     the answer's body sent in 10 pieces spread over MS ms (a slow stream)
 *   __mock_empty__          content ""            __mock_length__   finish_reason "length"
 *   __mock_big_N__          content of N KiB      __mock_badutf8__  content with invalid UTF-8
 *   __mock_escape__         content with terminal escape sequences and other control characters
 * A model named "reasoning-*" behaves like OpenAI's reasoning models: a request with max_tokens
 * or a temperature other than 1 gets a 400 naming the unsupported parameter.
 * POST /openai/deployments/<name>/chat/completions?api-version=V is Azure's classic endpoint: 404
 * without api-version, and with --require-key the key must come in an "api-key" header.
 *
 * GET /v1/models lists --model (default "gm-mock-model"). With --require-key a
 * missing or wrong "Authorization: Bearer" gives 401 whose message quotes the
 * received key, as some real providers do, so clients can prove they redact it.
 * Malformed JSON gives 400, bodies over 1 MiB 413, all as OpenAI-style errors.
 * SIGTERM or SIGINT stops it cleanly (exit 0).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "gm/util.h"

#if MHD_VERSION < 0x00097002
typedef int mhd_result;
#else
typedef enum MHD_Result mhd_result;
#endif

#define MAX_BODY (1024 * 1024)
#define ECHO_MAX 200
#define CREATED 1700000000
#define SLOW_MS 3000
#define COUNTERS 256
#define TRICKLE_PIECES 10

struct options {
    const char *host;
    long port;
    const char *key;
    const char *port_file;
    const char *model;
};

struct req_state {
    gm_buf body;
    int too_big;
};

static atomic_int g_stopping;

/* How many times each message (by hash) asked for a failure, for __mock_fail_N__ / __mock_drop_N__. */
static struct {
    uint32_t hash;
    int used, count;
} g_counters[COUNTERS];
static pthread_mutex_t g_counter_lock = PTHREAD_MUTEX_INITIALIZER;

/* The decimal after prefix in msg ("__mock_sleep_" then "250__"), or -1 when absent. */
static long trigger_num(const char *msg, const char *prefix)
{
    const char *p = strstr(msg, prefix);
    if (!p)
        return -1;
    p += strlen(prefix);
    long v = 0;
    int digits = 0;
    for (; *p >= '0' && *p <= '9' && digits < 9; p++, digits++)
        v = v * 10 + (*p - '0');
    return digits > 0 ? v : -1;
}

/* Count one more request for this message; returns how many came before it. */
static int count_seen(uint32_t hash)
{
    int before = 0;
    pthread_mutex_lock(&g_counter_lock);
    size_t i = hash % COUNTERS;
    for (size_t n = 0; n < COUNTERS; n++, i = (i + 1) % COUNTERS) {
        if (!g_counters[i].used || g_counters[i].hash == hash) {
            g_counters[i].used = 1;
            g_counters[i].hash = hash;
            before = g_counters[i].count++;
            break;
        }
    }
    pthread_mutex_unlock(&g_counter_lock);
    return before;
}

static uint32_t fnv1a32(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

static json_int_t tokens_of(size_t bytes)
{
    return (json_int_t)((bytes + 3) / 4);
}

static mhd_result send_text(struct MHD_Connection *c, unsigned status, char *text,
                            const char *type)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    mhd_result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

struct trickle {
    char *text;
    size_t len;
    long piece_ms;
};

static ssize_t trickle_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct trickle *t = cls;
    size_t piece = t->len / TRICKLE_PIECES + 1;
    if (pos >= t->len)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (pos > 0) {
        struct timespec ts = { t->piece_ms / 1000, (t->piece_ms % 1000) * 1000000L };
        if (atomic_load(&g_stopping))
            return MHD_CONTENT_READER_END_WITH_ERROR;
        nanosleep(&ts, NULL);
    }
    size_t n = t->len - (size_t)pos < piece ? t->len - (size_t)pos : piece;
    if (n > max)
        n = max;
    memcpy(buf, t->text + pos, n);
    return (ssize_t)n;
}

static void trickle_free(void *cls)
{
    struct trickle *t = cls;
    free(t->text);
    free(t);
}

/* Send text as a 200 in TRICKLE_PIECES pieces spread over total_ms. */
static mhd_result send_trickle(struct MHD_Connection *c, char *text, long total_ms)
{
    struct trickle *t = malloc(sizeof *t);
    if (!t) {
        free(text);
        return MHD_NO;
    }
    *t = (struct trickle){ .text = text, .len = strlen(text), .piece_ms = total_ms / TRICKLE_PIECES };
    struct MHD_Response *r = MHD_create_response_from_callback(t->len, 1024, trickle_read, t, trickle_free);
    if (!r) {
        trickle_free(t);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    mhd_result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static mhd_result send_json(struct MHD_Connection *c, unsigned status, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text)
        return MHD_NO;
    return send_text(c, status, text, "application/json");
}

static mhd_result send_error(struct MHD_Connection *c, unsigned status, const char *message,
                             const char *type, const char *code)
{
    json_t *e = json_pack("{s:{s:s, s:s, s:n, s:s?}}", "error", "message", message, "type", type,
                          "param", "code", code);
    return send_json(c, status, e);
}

/* An OpenAI-style error with "Retry-After: retry_after_s" when that is >= 0. */
static mhd_result send_error_retry(struct MHD_Connection *c, unsigned status, const char *message,
                                   const char *type, long retry_after_s)
{
    json_t *e = json_pack("{s:{s:s, s:s, s:n, s:n}}", "error", "message", message, "type", type,
                          "param", "code");
    char *text = e ? json_dumps(e, JSON_COMPACT) : NULL;
    json_decref(e);
    if (!text)
        return MHD_NO;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    if (retry_after_s >= 0) {
        char v[24];
        snprintf(v, sizeof v, "%ld", retry_after_s);
        MHD_add_response_header(r, "Retry-After", v);
    }
    mhd_result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static int sleep_unless_stopping(int ms)
{
    for (int waited = 0; waited < ms; waited += 50) {
        if (atomic_load(&g_stopping))
            return -1;
        struct timespec ts = { 0, 50 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    return 0;
}

static mhd_result check_key(struct MHD_Connection *c, const struct options *o, int azure, int *ok)
{
    *ok = 1;
    if (!o->key)
        return MHD_YES;
    *ok = 0;
    if (azure) {
        const char *k = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "api-key");
        if (k && strcmp(k, o->key) == 0) {
            *ok = 1;
            return MHD_YES;
        }
        return send_error(c, 401,
                          "Access denied due to invalid subscription key or wrong API endpoint. "
                          "Make sure to provide a valid key for an active subscription and use a "
                          "correct regional API endpoint for your resource.", "invalid_request_error", "401");
    }
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!auth || strncmp(auth, "Bearer ", 7) != 0)
        return send_error(c, 401,
                          "You didn't provide an API key. You need to provide your API key in "
                          "an Authorization header using Bearer auth (i.e. Authorization: Bearer "
                          "YOUR_KEY).", "invalid_request_error", NULL);
    const char *got = auth + 7;
    if (strlen(got) == strlen(o->key) && strcmp(got, o->key) == 0) {
        *ok = 1;
        return MHD_YES;
    }
    char msg[1024];
    snprintf(msg, sizeof msg,
             "Incorrect API key provided: %s. You can find your API key at "
             "https://platform.openai.com/account/api-keys.", got);
    return send_error(c, 401, msg, "invalid_request_error", "invalid_api_key");
}

static mhd_result handle_models(struct MHD_Connection *c, const struct options *o)
{
    json_t *j = json_pack("{s:s, s:[{s:s, s:s, s:i, s:s}]}", "object", "list", "data", "id",
                          o->model, "object", "model", "created", CREATED, "owned_by",
                          "genesis-mesh-mock");
    return send_json(c, 200, j);
}

static mhd_result send_error_param(struct MHD_Connection *c, const char *message, const char *param,
                                   const char *code)
{
    json_t *e = json_pack("{s:{s:s, s:s, s:s, s:s}}", "error", "message", message, "type",
                          "invalid_request_error", "param", param, "code", code);
    return send_json(c, 400, e);
}

/* A reasoning model's refusals (OpenAI o-series): NULL when the request is acceptable. */
static mhd_result refuse_reasoning(struct MHD_Connection *c, const json_t *max_tokens, const json_t *temp,
                                   int *refused)
{
    *refused = 1;
    if (max_tokens)
        return send_error_param(c, "Unsupported parameter: 'max_tokens' is not supported with this model. "
                                   "Use 'max_completion_tokens' instead.", "max_tokens", "unsupported_parameter");
    if (temp && json_number_value(temp) != 1.0)
        return send_error_param(c, "Unsupported value: 'temperature' does not support 0.2 with this model. "
                                   "Only the default (1) value is supported.", "temperature", "unsupported_value");
    *refused = 0;
    return MHD_YES;
}

/* The answer's content for the triggers in the last user message (malloc'd), or NULL. */
static char *mock_content(const char *mname, const char *last_user, size_t last_len)
{
    long big = trigger_num(last_user, "__mock_big_");
    if (strstr(last_user, "__mock_empty__"))
        return strdup("");
    if (strstr(last_user, "__mock_escape__"))
        return strdup("[mock] \x1b[2J\x1b]0;pwned\x07visible \x1b[31mred\x1b[0m\xc2\x9b" "31m\r\nsecond line");
    if (big > 0 && big <= 1024) {
        size_t n = (size_t)big * 1024;
        char *t = malloc(n + 1);
        if (t) {
            static const char pattern[] = "lorem ipsum dolor sit amet ";
            for (size_t i = 0; i < n; i++)
                t[i] = pattern[i % (sizeof pattern - 1)];
            t[n] = '\0';
        }
        return t;
    }
    size_t n = last_len < ECHO_MAX ? last_len : ECHO_MAX;
    while (n > 0 && n < last_len && ((unsigned char)last_user[n] & 0xC0) == 0x80)
        n--;
    size_t cap = strlen(mname) + n + 64;
    char *content = malloc(cap);
    if (content)
        snprintf(content, cap, "[mock:%s] %.*s (fnv1a32=%08" PRIx32 ")", mname, (int)n, last_user,
                 fnv1a32(last_user, last_len));
    return content;
}

static mhd_result handle_chat(struct MHD_Connection *c, const struct req_state *st, const char *deployment)
{
    json_error_t jerr;
    json_t *root = json_loadb(st->body.p ? st->body.p : "", st->body.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return send_error(c, 400,
                          "We could not parse the JSON body of your request. (HINT: This likely "
                          "means you aren't using your HTTP library correctly.)",
                          "invalid_request_error", NULL);
    }
    mhd_result ret;
    json_t *model = json_object_get(root, "model");
    json_t *msgs = json_object_get(root, "messages");
    json_t *max_tokens = json_object_get(root, "max_tokens");
    json_t *temp = json_object_get(root, "temperature");
    if (!deployment && (!json_is_string(model) || json_string_length(model) == 0)) {
        ret = send_error(c, 400, "you must provide a model parameter", "invalid_request_error",
                         NULL);
        goto out;
    }
    if (max_tokens && (!json_is_integer(max_tokens) || json_integer_value(max_tokens) < 1)) {
        ret = send_error(c, 400, "max_tokens must be a positive integer",
                         "invalid_request_error", "invalid_value");
        goto out;
    }
    if (temp && (!json_is_number(temp) || json_number_value(temp) < 0 ||
                 json_number_value(temp) > 2)) {
        ret = send_error(c, 400, "temperature must be a number from 0 to 2",
                         "invalid_request_error", "invalid_value");
        goto out;
    }
    if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
        ret = send_error(c, 400, "messages must be a non-empty array", "invalid_request_error",
                         NULL);
        goto out;
    }
    const char *last_user = NULL;
    size_t last_len = 0;
    json_int_t prompt_tokens = 0;
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        json_t *role = json_object_get(m, "role");
        json_t *content = json_object_get(m, "content");
        if (!json_is_string(role) || !json_is_string(content)) {
            ret = send_error(c, 400, "each message needs string role and content",
                             "invalid_request_error", NULL);
            goto out;
        }
        prompt_tokens += tokens_of(json_string_length(content));
        if (strcmp(json_string_value(role), "user") == 0) {
            last_user = json_string_value(content);
            last_len = json_string_length(content);
        }
    }
    if (!last_user) {
        ret = send_error(c, 400, "messages must include a user message", "invalid_request_error",
                         NULL);
        goto out;
    }

    const char *mname = deployment ? deployment : json_string_value(model);
    if (strncmp(mname, "reasoning-", 10) == 0) {
        int refused;
        ret = refuse_reasoning(c, max_tokens, temp, &refused);
        if (refused)
            goto out;
    }
    uint32_t hash = fnv1a32(last_user, last_len);
    long n_fail = -1, status = -1, n_drop = trigger_num(last_user, "__mock_drop_");
    const char *fail = strstr(last_user, "__mock_fail_");
    if (fail && sscanf(fail, "__mock_fail_%ld_%ld__", &n_fail, &status) == 2 && status >= 400 && status <= 599 &&
        count_seen(hash) < n_fail) {
        ret = send_error_retry(c, (unsigned)status,
                               status == 429 ? "Rate limit reached for requests. Please try again in 1s."
                                             : "The server is overloaded or not ready yet.",
                               status == 429 ? "requests" : "server_error",
                               trigger_num(last_user, "__mock_retry_after_"));
        goto out;
    }
    if (n_drop >= 0 && count_seen(hash) < n_drop) {
        ret = MHD_NO; /* closes the connection without an answer */
        goto out;
    }
    if (strstr(last_user, "__mock_error_500__")) {
        ret = send_error(c, 500, "The server had an error while processing your request.",
                         "server_error", NULL);
        goto out;
    }
    if (strstr(last_user, "__mock_garbage__")) {
        char *g = strdup("<html><body><h1>502 Bad Gateway</h1>{\"choices\": [ garbage");
        ret = g ? send_text(c, 200, g, "text/html") : MHD_NO;
        goto out;
    }
    long sleep_ms = strstr(last_user, "__mock_slow__") ? SLOW_MS : trigger_num(last_user, "__mock_sleep_");
    if (sleep_ms > 0 && sleep_unless_stopping((int)sleep_ms) != 0) {
        ret = send_error(c, 503, "shutting down", "server_error", NULL);
        goto out;
    }
    if (strstr(last_user, "__mock_badutf8__")) {
        /* jansson cannot produce this: raw bytes that are not UTF-8 inside the string. */
        char *b = strdup("{\"id\":\"chatcmpl-mock-bad\",\"object\":\"chat.completion\",\"created\":1700000000,"
                         "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"bad \xff\xfe "
                         "bytes\"},\"finish_reason\":\"stop\"}]}");
        ret = b ? send_text(c, 200, b, "application/json") : MHD_NO;
        goto out;
    }

    char *content = mock_content(mname, last_user, last_len);
    if (!content) {
        ret = MHD_NO;
        goto out;
    }
    char id[64];
    snprintf(id, sizeof id, "chatcmpl-mock-%08" PRIx32, hash);
    json_int_t completion_tokens = tokens_of(strlen(content));
    json_t *resp = json_pack(
        "{s:s, s:s, s:i, s:s, s:[{s:i, s:{s:s, s:s}, s:s}], s:{s:I, s:I, s:I}}", "id", id,
        "object", "chat.completion", "created", CREATED, "model", mname, "choices", "index", 0,
        "message", "role", "assistant", "content", content, "finish_reason",
        strstr(last_user, "__mock_length__") ? "length" : "stop", "usage",
        "prompt_tokens", prompt_tokens, "completion_tokens", completion_tokens, "total_tokens",
        prompt_tokens + completion_tokens);
    free(content);
    long trickle_ms = trigger_num(last_user, "__mock_trickle_");
    if (trickle_ms > 0) {
        char *text = resp ? json_dumps(resp, JSON_COMPACT) : NULL;
        json_decref(resp);
        ret = text ? send_trickle(c, text, trickle_ms) : MHD_NO;
        goto out;
    }
    ret = send_json(c, 200, resp);
out:
    json_decref(root);
    return ret;
}

static mhd_result on_request(void *cls, struct MHD_Connection *c, const char *url,
                             const char *method, const char *version, const char *upload_data,
                             size_t *upload_data_size, void **con_cls)
{
    const struct options *o = cls;
    struct req_state *st = *con_cls;
    (void)version;

    if (!st) {
        st = calloc(1, sizeof *st);
        if (!st)
            return MHD_NO;
        *con_cls = st;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        /* Over the cap: keep reading (and dropping) so the client sees the 413, not a reset. */
        if (st->too_big || n > MAX_BODY - st->body.len) {
            st->too_big = 1;
            return MHD_YES;
        }
        gm_buf_append(&st->body, upload_data, n);
        return st->body.oom ? MHD_NO : MHD_YES;
    }

    if (st->too_big)
        return send_error(c, 413, "Request body is larger than 1 MiB.", "invalid_request_error",
                          "request_too_large");
    /* Azure's classic endpoint: /openai/deployments/<name>/chat/completions?api-version=V */
    char deployment[128] = "";
    const char *tail = "/chat/completions";
    size_t ulen = strlen(url), tl = strlen(tail);
    int azure = strncmp(url, "/openai/deployments/", 20) == 0 && ulen > 20 + tl && ulen - 20 - tl < sizeof deployment &&
                strcmp(url + ulen - tl, tail) == 0;
    if (azure) {
        memcpy(deployment, url + 20, ulen - 20 - tl);
        deployment[ulen - 20 - tl] = '\0';
        if (strchr(deployment, '/'))
            azure = 0;
    }
    int ok;
    mhd_result r = check_key(c, o, azure, &ok);
    if (!ok)
        return r;
    if (azure && strcmp(method, "POST") == 0) {
        if (!MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "api-version"))
            return send_error(c, 404, "Resource not found", "invalid_request_error", "404");
        return handle_chat(c, st, deployment);
    }

    int is_chat = strcmp(url, "/v1/chat/completions") == 0;
    int is_models = strcmp(url, "/v1/models") == 0;
    if (is_chat && strcmp(method, "POST") == 0)
        return handle_chat(c, st, NULL);
    if (is_models && strcmp(method, "GET") == 0)
        return handle_models(c, o);
    char msg[256];
    snprintf(msg, sizeof msg, "Unknown request URL: %.16s %.128s.", method, url);
    if (is_chat || is_models)
        return send_error(c, 405, msg, "invalid_request_error", "method_not_allowed");
    return send_error(c, 404, msg, "invalid_request_error", "unknown_url");
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct req_state *st = *con_cls;
    if (st) {
        gm_buf_free(&st->body);
        free(st);
        *con_cls = NULL;
    }
}

static int write_port_file(const char *path, unsigned port)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return -1;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    int bad = fprintf(f, "%u\n", port) < 0;
    bad |= fflush(f) != 0;
    bad |= fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: gm-mock-llm --port N [--host 127.0.0.1] [--require-key KEY] "
                    "[--port-file F] [--model NAME]\n");
}

static int parse_args(int argc, char **argv, struct options *o)
{
    o->host = "127.0.0.1";
    o->port = -1;
    o->model = "gm-mock-model";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage();
            exit(0);
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "gm-mock-llm: %s needs a value\n", a);
            return -1;
        }
        const char *v = argv[++i];
        if (strcmp(a, "--port") == 0) {
            char *end;
            errno = 0;
            o->port = strtol(v, &end, 10);
            if (errno || *end || end == v || o->port < 0 || o->port > 65535) {
                fprintf(stderr, "gm-mock-llm: --port must be 0..65535\n");
                return -1;
            }
        } else if (strcmp(a, "--host") == 0) {
            o->host = v;
        } else if (strcmp(a, "--require-key") == 0) {
            o->key = v;
        } else if (strcmp(a, "--port-file") == 0) {
            o->port_file = v;
        } else if (strcmp(a, "--model") == 0) {
            o->model = v;
        } else {
            fprintf(stderr, "gm-mock-llm: unknown option %s\n", a);
            return -1;
        }
    }
    if (o->port < 0) {
        fprintf(stderr, "gm-mock-llm: --port is required (0 picks a free port)\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct options o = { 0 };
    if (parse_args(argc, argv, &o) != 0) {
        usage();
        return 2;
    }

    struct sockaddr_storage ss;
    socklen_t ss_len;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_ERROR_LOG;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, o.host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)o.port);
        ss_len = sizeof *sin;
    } else if (inet_pton(AF_INET6, o.host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)o.port);
        ss_len = sizeof *sin6;
        flags |= MHD_USE_IPv6;
    } else {
        fprintf(stderr, "gm-mock-llm: --host must be a numeric IPv4 or IPv6 address\n");
        return 2;
    }
    (void)ss_len;

    /* Block the stop signals before any thread exists so only sigwait() sees them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, &o, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)30, MHD_OPTION_CONNECTION_LIMIT, (unsigned)128, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "gm-mock-llm: cannot listen on %s port %ld: %s\n", o.host, o.port,
                strerror(errno));
        return 1;
    }

    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_LISTEN_FD);
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    if (!info || getsockname(info->listen_fd, (struct sockaddr *)&bound, &blen) != 0) {
        fprintf(stderr, "gm-mock-llm: cannot read the bound port\n");
        MHD_stop_daemon(d);
        return 1;
    }
    unsigned port = bound.ss_family == AF_INET6
                        ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                        : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    if (o.port_file && write_port_file(o.port_file, port) != 0) {
        fprintf(stderr, "gm-mock-llm: cannot write %s: %s\n", o.port_file, strerror(errno));
        MHD_stop_daemon(d);
        return 1;
    }
    printf("%u\n", port);
    fflush(stdout);

    int sig = 0;
    while (sigwait(&stop, &sig) != 0)
        ;
    atomic_store(&g_stopping, 1);
    MHD_stop_daemon(d);
    if (o.port_file)
        unlink(o.port_file);
    return 0;
}
