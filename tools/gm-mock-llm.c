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

static mhd_result check_key(struct MHD_Connection *c, const struct options *o, int *ok)
{
    *ok = 1;
    if (!o->key)
        return MHD_YES;
    *ok = 0;
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

static mhd_result handle_chat(struct MHD_Connection *c, const struct req_state *st)
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
    if (!json_is_string(model) || json_string_length(model) == 0) {
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
    if (strstr(last_user, "__mock_slow__") && sleep_unless_stopping(SLOW_MS) != 0) {
        ret = send_error(c, 503, "shutting down", "server_error", NULL);
        goto out;
    }

    size_t n = last_len < ECHO_MAX ? last_len : ECHO_MAX;
    while (n > 0 && n < last_len && ((unsigned char)last_user[n] & 0xC0) == 0x80)
        n--;
    const char *mname = json_string_value(model);
    size_t cap = strlen(mname) + n + 64;
    char *content = malloc(cap);
    if (!content) {
        ret = MHD_NO;
        goto out;
    }
    snprintf(content, cap, "[mock:%s] %.*s (fnv1a32=%08" PRIx32 ")", mname, (int)n, last_user,
             fnv1a32(last_user, last_len));
    char id[64];
    snprintf(id, sizeof id, "chatcmpl-mock-%08" PRIx32, fnv1a32(last_user, last_len));
    json_int_t completion_tokens = tokens_of(strlen(content));
    json_t *resp = json_pack(
        "{s:s, s:s, s:i, s:s, s:[{s:i, s:{s:s, s:s}, s:s}], s:{s:I, s:I, s:I}}", "id", id,
        "object", "chat.completion", "created", CREATED, "model", mname, "choices", "index", 0,
        "message", "role", "assistant", "content", content, "finish_reason", "stop", "usage",
        "prompt_tokens", prompt_tokens, "completion_tokens", completion_tokens, "total_tokens",
        prompt_tokens + completion_tokens);
    free(content);
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
    int ok;
    mhd_result r = check_key(c, o, &ok);
    if (!ok)
        return r;

    int is_chat = strcmp(url, "/v1/chat/completions") == 0;
    int is_models = strcmp(url, "/v1/models") == 0;
    if (is_chat && strcmp(method, "POST") == 0)
        return handle_chat(c, st);
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
