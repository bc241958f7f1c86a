/* Tests for gm_http, gm_llm and the gm-mock-llm server they are run against. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <cmocka.h>
#include <jansson.h>

#include "gm/error.h"
#include "gm/http_client.h"
#include "gm/llm.h"
#include "core_internal.h"

#define GOOD_KEY "sk-test-good-key-0123456789abcdef"
#define WRONG_KEY "sk-WRONG-leaky-key-9876543210zyxwv"
#define MODEL "test-model"

static struct {
    char tmpdir[PATH_MAX];
    char bin[PATH_MAX];
    pid_t pid;
    int port;
} g = { .pid = -1 };

/* ---------- helpers: processes, ports, environment ---------- */

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static int find_mock_binary(char *out, size_t cap)
{
    const char *build = getenv("GM_BUILD");
    if (build && *build) {
        if ((size_t)snprintf(out, cap, "%s/gm-mock-llm", build) >= cap)
            return -1;
        return access(out, X_OK);
    }
    /* Fallback: <build>/tests/test_http_llm -> <build>/gm-mock-llm. */
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    for (int i = 0; i < 2; i++) {
        char *slash = strrchr(self, '/');
        if (!slash)
            return -1;
        *slash = '\0';
    }
    if ((size_t)snprintf(out, cap, "%s/gm-mock-llm", self) >= cap)
        return -1;
    return access(out, X_OK);
}

/* Start gm-mock-llm on a free port; returns its pid and port, or -1. */
static pid_t start_mock(const char *key, const char *port_file, int *port)
{
    unlink(port_file);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* Die with the test, even if it crashes before teardown. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, STDOUT_FILENO);
        char *argv[10];
        int a = 0;
        argv[a++] = g.bin;
        argv[a++] = "--port";
        argv[a++] = "0";
        argv[a++] = "--port-file";
        argv[a++] = (char *)port_file;
        if (key) {
            argv[a++] = "--require-key";
            argv[a++] = (char *)key;
        }
        argv[a] = NULL;
        execv(g.bin, argv);
        _exit(127);
    }
    for (int i = 0; i < 1500; i++) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid)
            return -1;
        FILE *f = fopen(port_file, "r");
        if (f) {
            int ok = fscanf(f, "%d", port) == 1;
            fclose(f);
            if (ok && *port > 0)
                return pid;
        }
        sleep_ms(20);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

/* SIGTERM, then SIGKILL if it lingers; returns the wait status. */
static int stop_mock(pid_t pid)
{
    int status = 0;
    if (pid <= 0)
        return -1;
    kill(pid, SIGTERM);
    for (int i = 0; i < 500; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return status;
        sleep_ms(20);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return status;
}

/* A loopback port nobody listens on (bound, then released). */
static int dead_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    assert_true(s >= 0);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    close(s);
    return ntohs(a.sin_port);
}

static const char *const llm_vars[] = {
    "LLM_MODEL", "LLM_API_KEY", "LLM_BASE_URL", "LLM_MAX_TOKENS", "LLM_TEMPERATURE",
    "LLM_SYSTEM_PROMPT", "LLM_MAX_TOKENS_PARAM", "LLM_API_VERSION", "LLM_AUTH", "LLM_MAX_RETRIES",
};

static void clear_llm_env(void)
{
    for (size_t i = 0; i < sizeof llm_vars / sizeof llm_vars[0]; i++)
        unsetenv(llm_vars[i]);
}

static void mock_url(char *out, size_t cap, const char *path)
{
    snprintf(out, cap, "http://127.0.0.1:%d%s", g.port, path);
}

/* Environment pointing at the mock with the given key (NULL = none). */
static void load_mock_config(gm_llm_config *cfg, const char *key)
{
    char base[128];
    gm_error err = { 0 };
    clear_llm_env();
    mock_url(base, sizeof base, "");
    setenv("LLM_BASE_URL", base, 1);
    setenv("LLM_MODEL", MODEL, 1);
    if (key)
        setenv("LLM_API_KEY", key, 1);
    assert_int_equal(gm_llm_config_load(cfg, NULL, &err), 0);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void env_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", g.tmpdir, name);
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

/* ---------- helper: a one-shot raw HTTP server for what the mock cannot do ---------- */

struct raw_server {
    int listen_fd;
    int port;
    const char *response; /* sent after the request headers; NULL = never answer */
    size_t filler;        /* extra 'x' bytes after response (body without length) */
    pthread_t thread;
};

static void *raw_server_main(void *arg)
{
    struct raw_server *rs = arg;
    struct pollfd p = { .fd = rs->listen_fd, .events = POLLIN };
    if (poll(&p, 1, 10000) != 1)
        return NULL;
    int c = accept(rs->listen_fd, NULL, NULL);
    if (c < 0)
        return NULL;
    char buf[8192];
    size_t got = 0;
    while (got < sizeof buf - 1) {
        struct pollfd cp = { .fd = c, .events = POLLIN };
        if (poll(&cp, 1, 10000) != 1)
            break;
        ssize_t r = recv(c, buf + got, sizeof buf - 1 - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
        buf[got] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            break;
    }
    if (rs->response) {
        send(c, rs->response, strlen(rs->response), MSG_NOSIGNAL);
        char chunk[4096];
        memset(chunk, 'x', sizeof chunk);
        for (size_t sent = 0; sent < rs->filler;) {
            size_t n = rs->filler - sent < sizeof chunk ? rs->filler - sent : sizeof chunk;
            ssize_t w = send(c, chunk, n, MSG_NOSIGNAL);
            if (w <= 0)
                break;
            sent += (size_t)w;
        }
    } else {
        /* Say nothing until the client gives up and closes. */
        struct pollfd cp = { .fd = c, .events = POLLIN };
        while (poll(&cp, 1, 10000) == 1 && recv(c, buf, sizeof buf, 0) > 0)
            ;
    }
    close(c);
    return NULL;
}

static void raw_server_start(struct raw_server *rs, const char *response, size_t filler)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    rs->response = response;
    rs->filler = filler;
    rs->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(rs->listen_fd >= 0);
    assert_int_equal(bind(rs->listen_fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(rs->listen_fd, 4), 0);
    assert_int_equal(getsockname(rs->listen_fd, (struct sockaddr *)&a, &len), 0);
    rs->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&rs->thread, NULL, raw_server_main, rs), 0);
}

static void raw_server_stop(struct raw_server *rs)
{
    pthread_join(rs->thread, NULL);
    close(rs->listen_fd);
}

/* ---------- group setup: one keyed mock for the whole run ---------- */

static int group_setup(void **state)
{
    (void)state;
    char port_file[PATH_MAX + 16];
    snprintf(g.tmpdir, sizeof g.tmpdir, "%s/gm-http-llm-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(g.tmpdir))
        return -1;
    if (find_mock_binary(g.bin, sizeof g.bin) != 0) {
        fprintf(stderr, "gm-mock-llm not found (set GM_BUILD to the build directory)\n");
        return -1;
    }
    snprintf(port_file, sizeof port_file, "%s/mock.port", g.tmpdir);
    g.pid = start_mock(GOOD_KEY, port_file, &g.port);
    if (g.pid < 0) {
        fprintf(stderr, "cannot start %s\n", g.bin);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (g.pid > 0)
        stop_mock(g.pid);
    g.pid = -1;
    clear_llm_env();
    /* The directory only ever holds plain files written by these tests. */
    DIR *d = g.tmpdir[0] ? opendir(g.tmpdir) : NULL;
    if (d) {
        struct dirent *e;
        char path[PATH_MAX + 300];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof path, "%s/%s", g.tmpdir, e->d_name);
            unlink(path);
        }
        closedir(d);
        if (rmdir(g.tmpdir) != 0)
            fprintf(stderr, "could not remove %s\n", g.tmpdir);
    }
    return 0;
}

/* ---------- gm_http ---------- */

static void test_http_get_returns_status_body_and_etag(void **state)
{
    (void)state;
    struct raw_server rs;
    raw_server_start(&rs, "HTTP/1.1 200 OK\r\nETag: \"v42\"\r\nContent-Type: application/json\r\n"
                          "Content-Length: 11\r\nConnection: close\r\n\r\n{\"ok\":true}", 0);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/crl", rs.port);
    gm_http_req req = { .url = url };
    gm_http_resp resp;
    gm_error err = { 0 };
    assert_int_equal(gm_http_request(&req, &resp, &err), 0);
    raw_server_stop(&rs);
    assert_int_equal(resp.status, 200);
    assert_int_equal(resp.len, 11);
    assert_string_equal(resp.body, "{\"ok\":true}");
    assert_non_null(resp.etag);
    assert_string_equal(resp.etag, "\"v42\"");
    gm_http_resp_free(&resp);
    assert_null(resp.body);
    gm_http_resp_free(&resp);
}

/* Replicas given as one URL list: a server that cannot be reached, then one answering 503,
 * are passed over for the next; a 4xx answer is final; a listed origin with a path of its
 * own is a bad list. */
static void test_http_url_list_fails_over_to_the_next_server(void **state)
{
    (void)state;
    struct raw_server busy, ok;
    raw_server_start(&busy, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 0);
    raw_server_start(&ok, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nB3", 0);
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d,http://127.0.0.1:%d,http://127.0.0.1:%d/crl", dead_port(),
             busy.port, ok.port);
    gm_http_req req = { .url = url };
    gm_http_resp resp;
    gm_error err = { 0 };
    assert_int_equal(gm_http_request(&req, &resp, &err), 0);
    raw_server_stop(&busy);
    raw_server_stop(&ok);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.body, "B3");
    gm_http_resp_free(&resp);

    struct raw_server denied;
    raw_server_start(&denied, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%d,http://127.0.0.1:%d/x", denied.port, dead_port());
    assert_int_equal(gm_http_request(&req, &resp, &err), 0);
    raw_server_stop(&denied);
    assert_int_equal(resp.status, 403);
    gm_http_resp_free(&resp);

    /* none reachable: the last one's error */
    snprintf(url, sizeof url, "http://127.0.0.1:%d,http://127.0.0.1:%d/x", dead_port(), dead_port());
    assert_int_equal(gm_http_request(&req, &resp, &err), GM_ENET);
    assert_non_null(strstr(err.msg, "cannot reach"));

    snprintf(url, sizeof url, "http://127.0.0.1:1/a,http://127.0.0.1:2/x");
    assert_int_equal(gm_http_request(&req, &resp, &err), GM_EINVAL);
    assert_non_null(strstr(err.msg, "URL list"));
}

static void test_http_get_json_returns_4xx_json_body(void **state)
{
    (void)state;
    char url[128];
    int status = 0;
    json_t *j = NULL;
    gm_error err = { 0 };
    mock_url(url, sizeof url, "/v1/models");
    /* No key: the mock refuses with an OpenAI-style JSON error, which is still a response. */
    assert_int_equal(gm_http_get_json(url, NULL, 0, 5000, &status, &j, &err), 0);
    assert_int_equal(status, 401);
    assert_non_null(j);
    assert_true(json_is_string(json_object_get(json_object_get(j, "error"), "message")));
    assert_null(json_object_get(j, "data"));
    json_decref(j);

    const char *hdr[] = { "Authorization: Bearer " GOOD_KEY };
    assert_int_equal(gm_http_get_json(url, hdr, 1, 5000, &status, &j, &err), 0);
    assert_int_equal(status, 200);
    json_t *first = json_array_get(json_object_get(j, "data"), 0);
    assert_string_equal(json_string_value(json_object_get(first, "id")), "gm-mock-model");
    json_decref(j);
}

static void test_http_connection_refused_names_url(void **state)
{
    (void)state;
    char url[128], want[256];
    int port = dead_port();
    int status = -1;
    json_t *j = NULL;
    gm_error err = { 0 };
    snprintf(url, sizeof url, "http://127.0.0.1:%d/health", port);
    assert_int_equal(gm_http_get_json(url, NULL, 0, 5000, &status, &j, &err), GM_ENET);
    assert_int_equal(err.code, GM_ENET);
    snprintf(want, sizeof want, "cannot reach http://127.0.0.1:%d/health: connection refused",
             port);
    assert_string_equal(err.msg, want);
    assert_null(j);
    assert_int_equal(status, 0);
}

static void test_http_error_hides_url_credentials(void **state)
{
    (void)state;
    char url[128];
    gm_http_resp resp;
    gm_error err = { 0 };
    snprintf(url, sizeof url, "http://admin:hunter2secret@127.0.0.1:%d/x", dead_port());
    gm_http_req req = { .url = url };
    assert_int_equal(gm_http_request(&req, &resp, &err), GM_ENET);
    assert_null(strstr(err.msg, "hunter2secret"));
    assert_non_null(strstr(err.msg, "http://127.0.0.1:"));
}

static void test_http_times_out_on_silent_server(void **state)
{
    (void)state;
    struct raw_server rs;
    raw_server_start(&rs, NULL, 0);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/slow", rs.port);
    gm_http_req req = { .url = url, .timeout_ms = 300 };
    gm_http_resp resp;
    gm_error err = { 0 };
    assert_int_equal(gm_http_request(&req, &resp, &err), GM_ETIMEOUT);
    raw_server_stop(&rs);
    assert_non_null(strstr(err.msg, url));
    assert_null(resp.body);
}

static void test_http_refuses_response_over_declared_limit(void **state)
{
    (void)state;
    char url[128];
    const char *hdr[] = { "Authorization: Bearer " GOOD_KEY };
    mock_url(url, sizeof url, "/v1/models");
    gm_http_req req = { .url = url, .headers = hdr, .n_headers = 1, .max_response = 16 };
    gm_http_resp resp;
    gm_error err = { 0 };
    assert_int_equal(gm_http_request(&req, &resp, &err), GM_ETOOBIG);
    assert_non_null(strstr(err.msg, "16-byte limit"));
    assert_null(resp.body);
    /* The same request fits under the default limit. */
    req.max_response = 0;
    assert_int_equal(gm_http_request(&req, &resp, &err), 0);
    assert_int_equal(resp.status, 200);
    gm_http_resp_free(&resp);
}

static void test_http_refuses_unbounded_response_over_limit(void **state)
{
    (void)state;
    struct raw_server rs;
    /* No Content-Length: only the byte count while reading can stop it. */
    raw_server_start(&rs, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", 256 * 1024);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/big", rs.port);
    gm_http_req req = { .url = url, .max_response = 1000 };
    gm_http_resp resp;
    gm_error err = { 0 };
    assert_int_equal(gm_http_request(&req, &resp, &err), GM_ETOOBIG);
    raw_server_stop(&rs);
    assert_null(resp.body);
}

static void test_http_rejects_bad_arguments(void **state)
{
    (void)state;
    gm_http_resp resp;
    gm_error err = { 0 };
    gm_http_req req = { .url = "file:///etc/passwd" };
    assert_int_equal(gm_http_request(&req, &resp, &err), GM_EINVAL);
    req.url = "http://127.0.0.1:1/a b";
    assert_int_equal(gm_http_request(&req, &resp, &err), GM_EINVAL);
    req.url = "http://127.0.0.1:1/";
    req.method = "get";
    assert_int_equal(gm_http_request(&req, &resp, &err), GM_EINVAL);
    req.method = "GET";
    const char *inject[] = { "X-Test: a\r\nX-Evil: b" };
    req.headers = inject;
    req.n_headers = 1;
    assert_int_equal(gm_http_request(&req, &resp, &err), GM_EINVAL);
    assert_null(strstr(err.msg, "X-Evil"));
    assert_int_equal(gm_http_request(NULL, &resp, &err), GM_EINVAL);
}

/* ---------- gm-mock-llm itself ---------- */

static void test_mock_rejects_malformed_json_with_400(void **state)
{
    (void)state;
    char url[128];
    const char *hdr[] = { "Authorization: Bearer " GOOD_KEY, "Content-Type: application/json" };
    const char body[] = "{\"model\": \"x\", \"messages\": [";
    mock_url(url, sizeof url, "/v1/chat/completions");
    gm_http_req req = { .method = "POST", .url = url, .headers = hdr, .n_headers = 2,
                        .body = body, .body_len = sizeof body - 1 };
    gm_http_resp resp;
    gm_error err = { 0 };
    assert_int_equal(gm_http_request(&req, &resp, &err), 0);
    assert_int_equal(resp.status, 400);
    json_t *j = json_loads(resp.body, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "type")),
                        "invalid_request_error");
    json_decref(j);
    gm_http_resp_free(&resp);
}

static void test_mock_rejects_body_over_1mib_with_413(void **state)
{
    (void)state;
    char url[128];
    const char *hdr[] = { "Authorization: Bearer " GOOD_KEY };
    size_t n = 1024 * 1024 + 1;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, ' ', n);
    mock_url(url, sizeof url, "/v1/chat/completions");
    gm_http_req req = { .method = "POST", .url = url, .headers = hdr, .n_headers = 1,
                        .body = big, .body_len = n };
    gm_http_resp resp;
    gm_error err = { 0 };
    assert_int_equal(gm_http_request(&req, &resp, &err), 0);
    free(big);
    assert_int_equal(resp.status, 413);
    gm_http_resp_free(&resp);
}

static void test_mock_unknown_path_is_404(void **state)
{
    (void)state;
    char url[128];
    int status;
    json_t *j = NULL;
    gm_error err = { 0 };
    const char *hdr[] = { "Authorization: Bearer " GOOD_KEY };
    mock_url(url, sizeof url, "/v1/nothing-here");
    assert_int_equal(gm_http_get_json(url, hdr, 1, 5000, &status, &j, &err), 0);
    assert_int_equal(status, 404);
    json_decref(j);
}

static void test_mock_exits_cleanly_on_sigterm(void **state)
{
    (void)state;
    char port_file[PATH_MAX + 16];
    int port = 0;
    snprintf(port_file, sizeof port_file, "%s/second.port", g.tmpdir);
    pid_t pid = start_mock(NULL, port_file, &port);
    assert_true(pid > 0);
    int status = stop_mock(pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---------- gm_llm_chat ---------- */

static void test_llm_chat_round_trip_is_deterministic(void **state)
{
    (void)state;
    gm_llm_config cfg;
    gm_error err = { 0 };
    gm_llm_answer answer;
    char want[512];
    load_mock_config(&cfg, GOOD_KEY);

    const char *prompt = "hello mesh";
    assert_int_equal(gm_llm_chat(&cfg, prompt, &answer, &err), 0);
    snprintf(want, sizeof want, "[mock:" MODEL "] hello mesh (fnv1a32=%08x)",
             fnv1a32(prompt, strlen(prompt)));
    assert_string_equal(answer.text, want);
    assert_string_equal(answer.finish_reason, "stop");
    assert_int_equal(answer.truncated_by_provider, 0);
    assert_int_equal(answer.attempts, 1);
    gm_llm_answer_free(&answer);

    /* Long prompts are echoed up to 200 bytes; the hash covers all of it. */
    char longp[301];
    memset(longp, 'a', 300);
    longp[300] = '\0';
    assert_int_equal(gm_llm_chat(&cfg, longp, &answer, &err), 0);
    snprintf(want, sizeof want, "[mock:" MODEL "] %.200s (fnv1a32=%08x)", longp,
             fnv1a32(longp, 300));
    assert_string_equal(answer.text, want);
    gm_llm_answer_free(&answer);
    gm_llm_config_free(&cfg);
}

static void test_llm_wrong_key_error_does_not_leak_key(void **state)
{
    (void)state;
    char url[128];
    gm_error err = { 0 };

    /* The mock echoes the received key in its 401 body... */
    const char *hdr[] = { "Authorization: Bearer " WRONG_KEY };
    mock_url(url, sizeof url, "/v1/models");
    gm_http_req req = { .url = url, .headers = hdr, .n_headers = 1 };
    gm_http_resp resp;
    assert_int_equal(gm_http_request(&req, &resp, &err), 0);
    assert_int_equal(resp.status, 401);
    assert_non_null(strstr(resp.body, WRONG_KEY));
    gm_http_resp_free(&resp);

    /* ...and gm_llm_chat reports the refusal without it or the body. */
    gm_llm_config cfg;
    gm_llm_answer answer;
    load_mock_config(&cfg, WRONG_KEY);
    assert_int_equal(gm_llm_chat(&cfg, "hi", &answer, &err), GM_EAUTH);
    assert_null(answer.text);
    assert_non_null(strstr(err.msg, "returned HTTP 401 (authentication failed"));
    assert_null(strstr(err.msg, WRONG_KEY));
    /* The provider's own words are shown, with the key redacted. */
    assert_non_null(strstr(err.msg, "Incorrect API key provided: [REDACTED]. You can find"));
    gm_llm_config_free(&cfg);
}

static void test_llm_missing_key_says_so(void **state)
{
    (void)state;
    gm_llm_config cfg;
    gm_error err = { 0 };
    gm_llm_answer answer;
    load_mock_config(&cfg, NULL);
    assert_null(cfg.api_key);
    assert_int_equal(gm_llm_chat(&cfg, "hi", &answer, &err), GM_EAUTH);
    assert_non_null(strstr(err.msg, "LLM_API_KEY is not set"));
    gm_llm_config_free(&cfg);
}

static void test_llm_key_echoed_in_answer_is_redacted(void **state)
{
    (void)state;
    gm_llm_config cfg;
    gm_error err = { 0 };
    gm_llm_answer answer;
    load_mock_config(&cfg, GOOD_KEY);
    assert_int_equal(gm_llm_chat(&cfg, "repeat after me: " GOOD_KEY, &answer, &err), 0);
    assert_null(strstr(answer.text, GOOD_KEY));
    assert_non_null(strstr(answer.text, "repeat after me: [REDACTED] (fnv1a32="));
    gm_llm_answer_free(&answer);
    gm_llm_config_free(&cfg);
}

static void test_llm_provider_500_is_clear_error(void **state)
{
    (void)state;
    gm_llm_config cfg;
    gm_error err = { 0 };
    gm_llm_answer answer;
    load_mock_config(&cfg, GOOD_KEY);
    cfg.max_retries = 1;
    assert_int_equal(gm_llm_chat(&cfg, "please __mock_error_500__", &answer, &err), GM_ENET);
    assert_null(answer.text);
    assert_non_null(strstr(err.msg, "gave up after 2 attempts: LLM provider at "));
    assert_non_null(strstr(err.msg, "returned HTTP 500 (provider error; try again later): The server had an error"));
    gm_llm_config_free(&cfg);
}

static void test_llm_garbage_answer_is_protocol_error(void **state)
{
    (void)state;
    gm_llm_config cfg;
    gm_error err = { 0 };
    gm_llm_answer answer;
    load_mock_config(&cfg, GOOD_KEY);
    assert_int_equal(gm_llm_chat(&cfg, "__mock_garbage__", &answer, &err), GM_EPROTO);
    assert_null(answer.text);
    assert_non_null(strstr(err.msg, "not a JSON object"));
    assert_null(strstr(err.msg, "Bad Gateway"));
    gm_llm_config_free(&cfg);
}

static void test_llm_slow_provider_times_out(void **state)
{
    (void)state;
    gm_llm_config cfg;
    gm_error err = { 0 };
    gm_llm_answer answer;
    load_mock_config(&cfg, GOOD_KEY);
    cfg.timeout_ms = 300;
    assert_int_equal(gm_llm_chat(&cfg, "__mock_slow__", &answer, &err), GM_ETIMEOUT);
    assert_null(answer.text);
    assert_non_null(strstr(err.msg, "LLM provider: no answer from"));
    gm_llm_config_free(&cfg);
}

static void test_llm_dead_port_is_enet_with_url(void **state)
{
    (void)state;
    gm_llm_config cfg;
    gm_error err = { 0 };
    gm_llm_answer answer;
    char base[64], want[160];
    int port = dead_port();
    clear_llm_env();
    snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
    setenv("LLM_BASE_URL", base, 1);
    setenv("LLM_MODEL", MODEL, 1);
    setenv("LLM_API_KEY", GOOD_KEY, 1);
    assert_int_equal(gm_llm_config_load(&cfg, NULL, &err), 0);
    assert_int_equal(gm_llm_chat(&cfg, "hi", &answer, &err), GM_ENET);
    snprintf(want, sizeof want, "cannot reach http://127.0.0.1:%d/v1/chat/completions: "
             "connection refused", port);
    assert_non_null(strstr(err.msg, want));
    assert_null(strstr(err.msg, GOOD_KEY));
    gm_llm_config_free(&cfg);
}

static void test_llm_oversized_answer_refused(void **state)
{
    (void)state;
    gm_llm_config cfg;
    gm_error err = { 0 };
    gm_llm_answer answer;
    load_mock_config(&cfg, GOOD_KEY);
    cfg.max_response = 64;
    assert_int_equal(gm_llm_chat(&cfg, "hello", &answer, &err), GM_ETOOBIG);
    assert_null(answer.text);
    gm_llm_config_free(&cfg);
}

struct chat_job {
    const gm_llm_config *cfg;
    int ok;
};

static void *chat_worker(void *arg)
{
    struct chat_job *job = arg;
    char prompt[64], want[160];
    for (int i = 0; i < 5; i++) {
        gm_llm_answer answer;
        gm_error err = { 0 };
        snprintf(prompt, sizeof prompt, "thread %p call %d", (void *)job, i);
        snprintf(want, sizeof want, "[mock:" MODEL "] %s (fnv1a32=%08x)", prompt,
                 fnv1a32(prompt, strlen(prompt)));
        if (gm_llm_chat(job->cfg, prompt, &answer, &err) == 0 && strcmp(answer.text, want) == 0)
            job->ok++;
        gm_llm_answer_free(&answer);
    }
    return NULL;
}

static void test_llm_chat_from_several_threads(void **state)
{
    (void)state;
    gm_llm_config cfg;
    pthread_t t[4];
    struct chat_job jobs[4];
    load_mock_config(&cfg, GOOD_KEY);
    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct chat_job){ .cfg = &cfg };
        assert_int_equal(pthread_create(&t[i], NULL, chat_worker, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(jobs[i].ok, 5);
    }
    gm_llm_config_free(&cfg);
}

/* ---------- gm_llm_config_load ---------- */

static void test_llm_config_env_wins_over_file(void **state)
{
    (void)state;
    char path[PATH_MAX + 32];
    gm_llm_config cfg;
    gm_error err = { 0 };
    env_path(path, sizeof path, "wins.env");
    write_file(path,
               "# settings for the agent\n"
               "\n"
               "export LLM_MODEL=file-model\n"
               "LLM_API_KEY='sk-file-key-abcdefghij'\r\n"
               "  LLM_BASE_URL = \"http://127.0.0.1:9/\"   # local server\n"
               "LLM_MAX_TOKENS=64 # small\n"
               "LLM_TEMPERATURE=0.7\n"
               "LLM_SYSTEM_PROMPT=\"be \\\"brief\\\"\\nplease\"\n"
               "OTHER_SERVICE_TOKEN=ignored\n");
    clear_llm_env();
    setenv("LLM_MODEL", "env-model", 1);
    setenv("LLM_TEMPERATURE", "1.5", 1);
    assert_int_equal(gm_llm_config_load(&cfg, path, &err), 0);
    assert_string_equal(cfg.model, "env-model");
    assert_string_equal(cfg.api_key, "sk-file-key-abcdefghij");
    assert_int_equal(cfg.api_key_len, strlen("sk-file-key-abcdefghij"));
    assert_string_equal(cfg.base_url, "http://127.0.0.1:9/v1");
    assert_int_equal(cfg.max_tokens, 64);
    assert_true(cfg.temperature == 1.5);
    assert_string_equal(cfg.system_prompt, "be \"brief\"\nplease");
    gm_llm_config_free(&cfg);
    assert_null(cfg.api_key);

    /* Set-but-empty in the environment still wins over the file. */
    setenv("LLM_API_KEY", "", 1);
    assert_int_equal(gm_llm_config_load(&cfg, path, &err), 0);
    assert_null(cfg.api_key);
    assert_true(cfg.temperature == 1.5);
    gm_llm_config_free(&cfg);
    clear_llm_env();
}

static void test_llm_config_defaults(void **state)
{
    (void)state;
    gm_llm_config cfg;
    gm_error err = { 0 };
    clear_llm_env();
    setenv("LLM_MODEL", "gpt-4o-mini", 1);
    assert_int_equal(gm_llm_config_load(&cfg, NULL, &err), 0);
    assert_string_equal(cfg.base_url, "https://api.openai.com/v1");
    assert_int_equal(cfg.max_tokens, 512);
    assert_true(cfg.temperature == 0.2);
    assert_null(cfg.api_key);
    assert_null(cfg.system_prompt);
    gm_llm_config_free(&cfg);
    clear_llm_env();
}

static void test_llm_config_requires_model(void **state)
{
    (void)state;
    gm_llm_config cfg;
    gm_error err = { 0 };
    clear_llm_env();
    setenv("LLM_API_KEY", GOOD_KEY, 1);
    assert_int_equal(gm_llm_config_load(&cfg, NULL, &err), GM_EINVAL);
    assert_non_null(strstr(err.msg, "LLM_MODEL is not set"));
    assert_null(cfg.api_key);
    gm_llm_config_free(&cfg);
    clear_llm_env();
}

static void test_llm_config_rejects_bad_max_tokens(void **state)
{
    (void)state;
    char path[PATH_MAX + 32];
    gm_llm_config cfg;
    gm_error err = { 0 };
    env_path(path, sizeof path, "badtokens.env");
    write_file(path, "LLM_MODEL=m\nLLM_MAX_TOKENS=12abc\n");
    clear_llm_env();
    assert_int_equal(gm_llm_config_load(&cfg, path, &err), GM_EINVAL);
    assert_non_null(strstr(err.msg, "LLM_MAX_TOKENS must be a whole number"));
    assert_non_null(strstr(err.msg, "\"12abc\""));
    assert_non_null(strstr(err.msg, path));

    const char *bad[] = { "", "0", "-5", "+5", " 5", "5 ", "5.0", "0x10", "1000001",
                          "99999999999999999999999" };
    setenv("LLM_MODEL", "m", 1);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("LLM_MAX_TOKENS", bad[i], 1);
        assert_int_equal(gm_llm_config_load(&cfg, NULL, &err), GM_EINVAL);
        assert_non_null(strstr(err.msg, "(from environment)"));
    }
    setenv("LLM_MAX_TOKENS", "1000000", 1);
    assert_int_equal(gm_llm_config_load(&cfg, NULL, &err), 0);
    assert_int_equal(cfg.max_tokens, 1000000);
    gm_llm_config_free(&cfg);
    clear_llm_env();
}

static void test_llm_config_rejects_bad_temperature(void **state)
{
    (void)state;
    gm_llm_config cfg;
    gm_error err = { 0 };
    const char *bad[] = { "", "abc", "2.1", "-0.1", "1e-1", ".5", "1.", "0,5", "nan", "inf",
                          "0.2 ", "0.0000000000000001",
                          /* more digits than a long long holds (was a signed overflow) */
                          "04444444444444444444444444444444444444", "0.00000000000000000000000000000000001" };
    clear_llm_env();
    setenv("LLM_MODEL", "m", 1);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("LLM_TEMPERATURE", bad[i], 1);
        assert_int_equal(gm_llm_config_load(&cfg, NULL, &err), GM_EINVAL);
        assert_non_null(strstr(err.msg, "LLM_TEMPERATURE"));
    }
    const char *good[] = { "0", "2", "2.0", "0.25", "1" };
    const double want[] = { 0, 2, 2, 0.25, 1 };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        setenv("LLM_TEMPERATURE", good[i], 1);
        assert_int_equal(gm_llm_config_load(&cfg, NULL, &err), 0);
        assert_true(cfg.temperature == want[i]);
        gm_llm_config_free(&cfg);
    }
    clear_llm_env();
}

static void test_llm_config_rejects_malformed_env_file(void **state)
{
    (void)state;
    char path[PATH_MAX + 32];
    gm_llm_config cfg;
    gm_error err = { 0 };
    clear_llm_env();
    env_path(path, sizeof path, "malformed.env");

    /* The offending line may itself be a secret: never quote it. */
    write_file(path, "LLM_MODEL=m\nsk-pasted-secret-without-key\n");
    assert_int_equal(gm_llm_config_load(&cfg, path, &err), GM_EFORMAT);
    assert_non_null(strstr(err.msg, "line 2"));
    assert_null(strstr(err.msg, "sk-pasted-secret"));

    write_file(path, "LLM_MODEL=m\nLLM_API_KEY=\"sk-unterminated\n");
    assert_int_equal(gm_llm_config_load(&cfg, path, &err), GM_EFORMAT);
    assert_non_null(strstr(err.msg, "not closed"));
    assert_null(strstr(err.msg, "sk-unterminated"));

    write_file(path, "LLM_MODEL='m' trailing\n");
    assert_int_equal(gm_llm_config_load(&cfg, path, &err), GM_EFORMAT);

    write_file(path, "LLM_MODEL=a\nLLM_MODEL=b\n");
    assert_int_equal(gm_llm_config_load(&cfg, path, &err), GM_EFORMAT);
    assert_non_null(strstr(err.msg, "second time"));

    env_path(path, sizeof path, "does-not-exist.env");
    assert_int_equal(gm_llm_config_load(&cfg, path, &err), GM_ENOTFOUND);
    assert_null(cfg.model);
}

static void test_llm_config_base_url_rule(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        { "http://127.0.0.1:8080", "http://127.0.0.1:8080/v1" },
        { "http://127.0.0.1:8080/", "http://127.0.0.1:8080/v1" },
        { "https://api.openai.com/v1", "https://api.openai.com/v1" },
        { "https://api.openai.com/v1/", "https://api.openai.com/v1" },
        { "https://api.openai.com/v1/chat/completions", "https://api.openai.com/v1" },
        { "https://api.groq.com/openai/v1", "https://api.groq.com/openai/v1" },
        { "https://generativelanguage.googleapis.com/v1beta/openai/",
          "https://generativelanguage.googleapis.com/v1beta/openai" },
    };
    static const char *const bad[] = {
        "ftp://example.com/v1", "api.openai.com/v1", "https://user:pw@example.com/v1",
        "https://", "https://example.com/v 1", "https://example.com/v1#frag",
    };
    gm_llm_config cfg;
    gm_error err = { 0 };
    clear_llm_env();
    setenv("LLM_MODEL", "m", 1);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        setenv("LLM_BASE_URL", cases[i].in, 1);
        assert_int_equal(gm_llm_config_load(&cfg, NULL, &err), 0);
        assert_string_equal(cfg.base_url, cases[i].out);
        gm_llm_config_free(&cfg);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("LLM_BASE_URL", bad[i], 1);
        assert_int_equal(gm_llm_config_load(&cfg, NULL, &err), GM_EINVAL);
        assert_non_null(strstr(err.msg, "LLM_BASE_URL"));
        assert_null(strstr(err.msg, ":pw@"));
    }
    clear_llm_env();
}

static void test_llm_config_rejects_key_that_could_inject_headers(void **state)
{
    (void)state;
    gm_llm_config cfg;
    gm_error err = { 0 };
    clear_llm_env();
    setenv("LLM_MODEL", "m", 1);
    setenv("LLM_API_KEY", "sk-abc\r\nX-Evil: 1", 1);
    assert_int_equal(gm_llm_config_load(&cfg, NULL, &err), GM_EINVAL);
    assert_null(strstr(err.msg, "sk-abc"));
    setenv("LLM_API_KEY", "sk with spaces", 1);
    assert_int_equal(gm_llm_config_load(&cfg, NULL, &err), GM_EINVAL);
    clear_llm_env();
}

/* Issue 7: a truncated key, or the key base64-encoded (alone or inside a longer encoded
 * string, e.g. "Bearer <key>"), leaks as much as the whole key. */
static void test_llm_redact_catches_pieces_and_base64(void **state)
{
    (void)state;
    gm_llm_config cfg;
    gm_error err = { 0 };
    clear_llm_env();
    setenv("LLM_MODEL", "m", 1);
    const char *key = "sk-live-4f9a8b7c6d5e4f3a2b1c0d9e";
    setenv("LLM_API_KEY", key, 1);
    assert_int_equal(gm_llm_config_load(&cfg, NULL, &err), 0);

    char trunc[] = "the key starts sk-live-4f9a8b7c6d5e... and ends 6d5e4f3a2b1c0d9e.";
    assert_true(gm_llm_redact(&cfg, trunc) >= 2);
    assert_null(strstr(trunc, "4f9a8b7c6d5e"));
    assert_null(strstr(trunc, "4f3a2b1c0d9e"));

    char b64[256], text[512];
    for (size_t pre = 0; pre < 3; pre++) {
        char plain[128];
        snprintf(plain, sizeof plain, "%.*sBearer %s", (int)pre, "xyz", key);
        sodium_bin2base64(b64, sizeof b64, (const unsigned char *)plain, strlen(plain),
                          sodium_base64_VARIANT_ORIGINAL);
        snprintf(text, sizeof text, "echo: %s end", b64);
        assert_true(gm_llm_redact(&cfg, text) >= 1);
        /* what is left of the encoding no longer decodes to any 12-character piece of the key */
        assert_non_null(strstr(text, "[REDACTED]"));
        assert_true(strlen(text) < strlen(b64) + 10);
    }
    sodium_bin2base64(b64, sizeof b64, (const unsigned char *)key, strlen(key),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    snprintf(text, sizeof text, "url-safe %s!", b64);
    assert_true(gm_llm_redact(&cfg, text) >= 1);
    assert_null(strstr(text, b64));

    char clean[] = "a perfectly ordinary answer about sk- prefixes and 4f9a numbers";
    assert_int_equal(gm_llm_redact(&cfg, clean), 0);
    gm_llm_config_free(&cfg);
    clear_llm_env();
}

static void test_llm_redact_replaces_every_occurrence(void **state)
{
    (void)state;
    gm_llm_config cfg;
    gm_error err = { 0 };
    clear_llm_env();
    setenv("LLM_MODEL", "m", 1);
    setenv("LLM_API_KEY", "sk-0123456789abcdef", 1);
    assert_int_equal(gm_llm_config_load(&cfg, NULL, &err), 0);
    char text[] = "a sk-0123456789abcdef b sk-0123456789abcdefsk-0123456789abcdef c";
    assert_int_equal(gm_llm_redact(&cfg, text), 3);
    assert_string_equal(text, "a [REDACTED] b [REDACTED][REDACTED] c");
    char clean[] = "nothing to hide";
    assert_int_equal(gm_llm_redact(&cfg, clean), 0);
    assert_string_equal(clean, "nothing to hide");
    assert_int_equal(gm_llm_redact(&cfg, NULL), 0);
    gm_llm_config_free(&cfg);

    /* A key shorter than "[REDACTED]" cannot be replaced in place: it is starred out. */
    setenv("LLM_API_KEY", "abc", 1);
    assert_int_equal(gm_llm_config_load(&cfg, NULL, &err), 0);
    char shorttext[] = "xabcyabc";
    assert_int_equal(gm_llm_redact(&cfg, shorttext), 2);
    assert_string_equal(shorttext, "x***y***");
    gm_llm_config_free(&cfg);

    /* No key: nothing to redact. */
    unsetenv("LLM_API_KEY");
    assert_int_equal(gm_llm_config_load(&cfg, NULL, &err), 0);
    char plain[] = "abc";
    assert_int_equal(gm_llm_redact(&cfg, plain), 0);
    gm_llm_config_free(&cfg);
    clear_llm_env();
}

/* ---------- real providers' habits (issue 13): retries, fallbacks, Azure, marks ---------- */

/* A one-shot raw server answering status_line_and_headers with body; returns resp of a GET. */
static void raw_get(const char *response, gm_http_resp *resp)
{
    struct raw_server rs;
    raw_server_start(&rs, response, 0);
    char url[128];
    gm_error err = { 0 };
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x", rs.port);
    gm_http_req req = { .url = url };
    assert_int_equal(gm_http_request(&req, resp, &err), 0);
    raw_server_stop(&rs);
}

static void test_http_reads_retry_after(void **state)
{
    (void)state;
    gm_http_resp resp;
    raw_get("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", &resp);
    assert_int_equal(resp.status, 429);
    assert_int_equal(resp.retry_after_ms, 7000);
    gm_http_resp_free(&resp);
    /* retry-after-ms (sent by OpenAI) is the more precise one */
    raw_get("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 2\r\nretry-after-ms: 1500\r\nContent-Length: 0\r\n"
            "Connection: close\r\n\r\n", &resp);
    assert_int_equal(resp.retry_after_ms, 1500);
    gm_http_resp_free(&resp);
    /* an HTTP-date in the past means now */
    raw_get("HTTP/1.1 503 Service Unavailable\r\nRetry-After: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 0\r\n"
            "Connection: close\r\n\r\n", &resp);
    assert_int_equal(resp.retry_after_ms, 0);
    gm_http_resp_free(&resp);
    /* unusable values and no header: -1 */
    raw_get("HTTP/1.1 503 Service Unavailable\r\nRetry-After: soon\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            &resp);
    assert_int_equal(resp.retry_after_ms, -1);
    gm_http_resp_free(&resp);
    raw_get("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 99999999999999\r\nContent-Length: 0\r\n"
            "Connection: close\r\n\r\n", &resp);
    assert_int_equal(resp.retry_after_ms, GM_HTTP_RETRY_AFTER_MAX_MS);
    gm_http_resp_free(&resp);
    raw_get("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", &resp);
    assert_int_equal(resp.retry_after_ms, -1);
    gm_http_resp_free(&resp);
}

/* Each test uses its own prompt text: the mock counts failures per exact message. */
static void test_llm_retries_429_after_retry_after(void **state)
{
    (void)state;
    gm_llm_config cfg;
    gm_error err = { 0 };
    gm_llm_answer a;
    load_mock_config(&cfg, GOOD_KEY);
    assert_int_equal(gm_llm_chat(&cfg, "rate me __mock_fail_2_429__ __mock_retry_after_1__", &a, &err), 0);
    assert_int_equal(a.attempts, 3);
    assert_non_null(strstr(a.text, "rate me"));
    gm_llm_answer_free(&a);
    gm_llm_config_free(&cfg);
}

static void test_llm_does_not_wait_past_the_deadline(void **state)
{
    (void)state;
    gm_llm_config cfg;
    gm_error err = { 0 };
    gm_llm_answer a;
    load_mock_config(&cfg, GOOD_KEY);
    cfg.timeout_ms = 3000;
    /* The provider asks for 30 s; the caller gave 3 s: fail now, saying why, with its message. */
    assert_int_equal(gm_llm_chat(&cfg, "later __mock_fail_5_429__ __mock_retry_after_30__", &a, &err), GM_ENET);
    assert_null(a.text);
    assert_non_null(strstr(err.msg, "not retried: waiting 30000 ms would pass the deadline"));
    assert_non_null(strstr(err.msg, "returned HTTP 429 (rate limited"));
    assert_non_null(strstr(err.msg, "Rate limit reached for requests"));
    gm_llm_config_free(&cfg);
}

static void test_llm_retries_5xx_then_gives_up(void **state)
{
    (void)state;
    gm_llm_config cfg;
    gm_error err = { 0 };
    gm_llm_answer a;
    load_mock_config(&cfg, GOOD_KEY);
    assert_int_equal(gm_llm_chat(&cfg, "flaky __mock_fail_2_503__", &a, &err), 0);
    assert_int_equal(a.attempts, 3);
    gm_llm_answer_free(&a);
    cfg.max_retries = 2;
    assert_int_equal(gm_llm_chat(&cfg, "down __mock_fail_9_502__", &a, &err), GM_ENET);
    assert_non_null(strstr(err.msg, "gave up after 3 attempts"));
    assert_non_null(strstr(err.msg, "HTTP 502 (provider error; try again later): The server is overloaded"));
    /* 4xx other than 408 and 429 are not retried */
    cfg.max_retries = 3;
    assert_int_equal(gm_llm_chat(&cfg, "no __mock_fail_1_422__", &a, &err), GM_ENET);
    assert_null(strstr(err.msg, "attempts"));
    gm_llm_config_free(&cfg);
}

static void test_llm_retries_dropped_connection(void **state)
{
    (void)state;
    gm_llm_config cfg;
    gm_error err = { 0 };
    gm_llm_answer a;
    load_mock_config(&cfg, GOOD_KEY);
    assert_int_equal(gm_llm_chat(&cfg, "hang up __mock_drop_2__", &a, &err), 0);
    assert_int_equal(a.attempts, 3);
    gm_llm_answer_free(&a);
    cfg.max_retries = 0;
    assert_int_equal(gm_llm_chat(&cfg, "hang up again __mock_drop_1__", &a, &err), GM_ENET);
    assert_non_null(strstr(err.msg, "connection closed before a complete response"));
    gm_llm_config_free(&cfg);
}

static void test_llm_slow_stream_within_and_past_deadline(void **state)
{
    (void)state;
    gm_llm_config cfg;
    gm_error err = { 0 };
    gm_llm_answer a;
    load_mock_config(&cfg, GOOD_KEY);
    cfg.timeout_ms = 20000;
    assert_int_equal(gm_llm_chat(&cfg, "drip __mock_trickle_500__", &a, &err), 0);
    assert_non_null(strstr(a.text, "drip"));
    gm_llm_answer_free(&a);
    /* A stream that outlasts the whole budget is a timeout, not retried. */
    cfg.timeout_ms = 400;
    assert_int_equal(gm_llm_chat(&cfg, "drip drip __mock_trickle_5000__", &a, &err), GM_ETIMEOUT);
    assert_null(a.text);
    assert_null(strstr(err.msg, "attempts"));
    gm_llm_config_free(&cfg);
}

static void test_llm_reasoning_model_parameter_fallbacks(void **state)
{
    (void)state;
    gm_llm_config cfg;
    gm_error err = { 0 };
    gm_llm_answer a;
    load_mock_config(&cfg, GOOD_KEY);
    free(cfg.model);
    cfg.model = strdup("reasoning-o9");
    /* max_tokens refused -> max_completion_tokens; temperature refused -> left out. */
    assert_int_equal(gm_llm_chat(&cfg, "think", &a, &err), 0);
    assert_int_equal(a.attempts, 3);
    assert_non_null(strstr(a.text, "[mock:reasoning-o9] think"));
    gm_llm_answer_free(&a);
    gm_llm_config_free(&cfg);

    /* Configured for it: one request. */
    load_mock_config(&cfg, GOOD_KEY);
    gm_llm_config_free(&cfg);
    setenv("LLM_MAX_TOKENS_PARAM", "max_completion_tokens", 1);
    setenv("LLM_TEMPERATURE", "none", 1);
    assert_int_equal(gm_llm_config_load(&cfg, NULL, &err), 0);
    assert_int_equal(cfg.max_tokens_param, GM_LLM_TOKENS_MAX_COMPLETION_TOKENS);
    assert_int_equal(cfg.omit_temperature, 1);
    free(cfg.model);
    cfg.model = strdup("reasoning-o9");
    assert_int_equal(gm_llm_chat(&cfg, "think again", &a, &err), 0);
    assert_int_equal(a.attempts, 1);
    gm_llm_answer_free(&a);
    gm_llm_config_free(&cfg);
    clear_llm_env();
}

static void test_llm_error_message_shown_redacted_and_clean(void **state)
{
    (void)state;
    gm_llm_config cfg;
    gm_error err = { 0 };
    gm_llm_answer a;
    struct raw_server rs;
    const char *resp = "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
                       "{\"error\":{\"message\":\"model 'nope' does not exist for key " GOOD_KEY
                       "\\u001b[31m\\nsee docs\",\"type\":\"invalid_request_error\",\"param\":\"model\"}}";
    raw_server_start(&rs, resp, 0);
    char base[64];
    clear_llm_env();
    snprintf(base, sizeof base, "http://127.0.0.1:%d", rs.port);
    setenv("LLM_BASE_URL", base, 1);
    setenv("LLM_MODEL", "nope", 1);
    setenv("LLM_API_KEY", GOOD_KEY, 1);
    assert_int_equal(gm_llm_config_load(&cfg, NULL, &err), 0);
    assert_int_equal(gm_llm_chat(&cfg, "hi", &a, &err), GM_EINVAL);
    raw_server_stop(&rs);
    assert_non_null(strstr(err.msg, "returned HTTP 400 (request rejected; check LLM_MODEL and LLM_MAX_TOKENS): "
                                    "model 'nope' does not exist for key [REDACTED] [31m see docs"));
    assert_null(strstr(err.msg, GOOD_KEY));
    assert_null(strchr(err.msg, '\x1b'));
    assert_null(strchr(err.msg, '\n'));
    gm_llm_config_free(&cfg);
    clear_llm_env();
}

static void test_llm_empty_and_truncated_answers_are_marked(void **state)
{
    (void)state;
    gm_llm_config cfg;
    gm_error err = { 0 };
    gm_llm_answer a;
    load_mock_config(&cfg, GOOD_KEY);
    assert_int_equal(gm_llm_chat(&cfg, "__mock_empty__", &a, &err), 0);
    assert_int_equal(a.len, 0);
    assert_string_equal(a.text, "");
    assert_int_equal(a.truncated_by_provider, 0);
    gm_llm_answer_free(&a);
    assert_int_equal(gm_llm_chat(&cfg, "long story __mock_length__", &a, &err), 0);
    assert_string_equal(a.finish_reason, "length");
    assert_int_equal(a.truncated_by_provider, 1);
    gm_llm_answer_free(&a);
    /* Long answers come through whole (bounded by max_response); cutting is the caller's. */
    assert_int_equal(gm_llm_chat(&cfg, "__mock_big_40__", &a, &err), 0);
    assert_int_equal(a.len, 40 * 1024);
    gm_llm_answer_free(&a);
    gm_llm_config_free(&cfg);
}

static void test_llm_non_utf8_answer_is_named(void **state)
{
    (void)state;
    gm_llm_config cfg;
    gm_error err = { 0 };
    gm_llm_answer a;
    load_mock_config(&cfg, GOOD_KEY);
    assert_int_equal(gm_llm_chat(&cfg, "__mock_badutf8__", &a, &err), GM_EPROTO);
    assert_null(a.text);
    assert_non_null(strstr(err.msg, "not valid UTF-8"));
    assert_null(strstr(err.msg, "not a JSON object"));
    gm_llm_config_free(&cfg);
}

static void test_llm_azure_classic_endpoint(void **state)
{
    (void)state;
    gm_llm_config cfg;
    gm_error err = { 0 };
    gm_llm_answer a;
    char base[160];
    clear_llm_env();
    setenv("LLM_MODEL", "gpt-4o", 1);
    setenv("LLM_API_KEY", GOOD_KEY, 1);
    setenv("LLM_AUTH", "api-key", 1);
    /* api-version in the base URL's query */
    mock_url(base, sizeof base, "/openai/deployments/dep1?api-version=2024-10-21");
    setenv("LLM_BASE_URL", base, 1);
    assert_int_equal(gm_llm_config_load(&cfg, NULL, &err), 0);
    assert_string_equal(cfg.query, "api-version=2024-10-21");
    assert_int_equal(gm_llm_chat(&cfg, "hello azure", &a, &err), 0);
    assert_non_null(strstr(a.text, "[mock:dep1] hello azure"));
    gm_llm_answer_free(&a);
    gm_llm_config_free(&cfg);
    /* or in LLM_API_VERSION */
    mock_url(base, sizeof base, "/openai/deployments/dep2");
    setenv("LLM_BASE_URL", base, 1);
    setenv("LLM_API_VERSION", "2024-10-21", 1);
    assert_int_equal(gm_llm_config_load(&cfg, NULL, &err), 0);
    assert_int_equal(gm_llm_chat(&cfg, "hello again", &a, &err), 0);
    assert_non_null(strstr(a.text, "[mock:dep2] hello again"));
    gm_llm_answer_free(&a);
    gm_llm_config_free(&cfg);
    /* without api-version Azure answers 404; with a Bearer header 401 */
    unsetenv("LLM_API_VERSION");
    assert_int_equal(gm_llm_config_load(&cfg, NULL, &err), 0);
    assert_int_equal(gm_llm_chat(&cfg, "hi", &a, &err), GM_ENOTFOUND);
    assert_non_null(strstr(err.msg, "Resource not found"));
    gm_llm_config_free(&cfg);
    setenv("LLM_API_VERSION", "2024-10-21", 1);
    setenv("LLM_AUTH", "bearer", 1);
    assert_int_equal(gm_llm_config_load(&cfg, NULL, &err), 0);
    assert_int_equal(gm_llm_chat(&cfg, "hi", &a, &err), GM_EAUTH);
    gm_llm_config_free(&cfg);
    clear_llm_env();
}

static void test_llm_config_provider_variables(void **state)
{
    (void)state;
    gm_llm_config cfg;
    gm_error err = { 0 };
    clear_llm_env();
    setenv("LLM_MODEL", "m", 1);
    /* Azure hosts get the api-key header by default, and keep their query */
    setenv("LLM_BASE_URL", "https://res.openai.azure.com/openai/deployments/d/?api-version=2024-10-21", 1);
    assert_int_equal(gm_llm_config_load(&cfg, NULL, &err), 0);
    assert_string_equal(cfg.base_url, "https://res.openai.azure.com/openai/deployments/d");
    assert_string_equal(cfg.query, "api-version=2024-10-21");
    assert_int_equal(cfg.auth, GM_LLM_AUTH_API_KEY);
    assert_int_equal(cfg.max_retries, GM_LLM_DEFAULT_MAX_RETRIES);
    assert_int_equal(cfg.max_tokens_param, GM_LLM_TOKENS_MAX_TOKENS);
    gm_llm_config_free(&cfg);
    /* the api-version once, not twice */
    setenv("LLM_API_VERSION", "2025-01-01", 1);
    assert_int_equal(gm_llm_config_load(&cfg, NULL, &err), GM_EINVAL);
    assert_non_null(strstr(err.msg, "keep one"));
    setenv("LLM_BASE_URL", "https://api.openai.com/v1", 1);
    assert_int_equal(gm_llm_config_load(&cfg, NULL, &err), 0);
    assert_string_equal(cfg.query, "api-version=2025-01-01");
    assert_int_equal(cfg.auth, GM_LLM_AUTH_BEARER);
    gm_llm_config_free(&cfg);
    unsetenv("LLM_API_VERSION");
    static const struct {
        const char *var, *value, *says;
    } bad[] = {
        { "LLM_MAX_TOKENS_PARAM", "max_output_tokens", "LLM_MAX_TOKENS_PARAM must be" },
        { "LLM_AUTH", "basic", "LLM_AUTH must be" },
        { "LLM_MAX_RETRIES", "11", "LLM_MAX_RETRIES must be" },
        { "LLM_MAX_RETRIES", "-1", "LLM_MAX_RETRIES must be" },
        { "LLM_API_VERSION", "2024 10", "LLM_API_VERSION must be" },
        { "LLM_TEMPERATURE", "None", "LLM_TEMPERATURE must be" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv(bad[i].var, bad[i].value, 1);
        assert_int_equal(gm_llm_config_load(&cfg, NULL, &err), GM_EINVAL);
        assert_non_null(strstr(err.msg, bad[i].says));
        unsetenv(bad[i].var);
    }
    setenv("LLM_MAX_TOKENS_PARAM", "none", 1);
    setenv("LLM_MAX_RETRIES", "0", 1);
    assert_int_equal(gm_llm_config_load(&cfg, NULL, &err), 0);
    assert_int_equal(cfg.max_tokens_param, GM_LLM_TOKENS_NONE);
    assert_int_equal(cfg.max_retries, 0);
    gm_llm_config_free(&cfg);
    clear_llm_env();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_get_returns_status_body_and_etag),
        cmocka_unit_test(test_http_get_json_returns_4xx_json_body),
        cmocka_unit_test(test_http_url_list_fails_over_to_the_next_server),
        cmocka_unit_test(test_http_connection_refused_names_url),
        cmocka_unit_test(test_http_error_hides_url_credentials),
        cmocka_unit_test(test_http_times_out_on_silent_server),
        cmocka_unit_test(test_http_refuses_response_over_declared_limit),
        cmocka_unit_test(test_http_refuses_unbounded_response_over_limit),
        cmocka_unit_test(test_http_rejects_bad_arguments),
        cmocka_unit_test(test_mock_rejects_malformed_json_with_400),
        cmocka_unit_test(test_mock_rejects_body_over_1mib_with_413),
        cmocka_unit_test(test_mock_unknown_path_is_404),
        cmocka_unit_test(test_mock_exits_cleanly_on_sigterm),
        cmocka_unit_test(test_llm_chat_round_trip_is_deterministic),
        cmocka_unit_test(test_llm_wrong_key_error_does_not_leak_key),
        cmocka_unit_test(test_llm_missing_key_says_so),
        cmocka_unit_test(test_llm_key_echoed_in_answer_is_redacted),
        cmocka_unit_test(test_llm_provider_500_is_clear_error),
        cmocka_unit_test(test_llm_garbage_answer_is_protocol_error),
        cmocka_unit_test(test_llm_slow_provider_times_out),
        cmocka_unit_test(test_llm_dead_port_is_enet_with_url),
        cmocka_unit_test(test_llm_oversized_answer_refused),
        cmocka_unit_test(test_llm_chat_from_several_threads),
        cmocka_unit_test(test_llm_config_env_wins_over_file),
        cmocka_unit_test(test_llm_config_defaults),
        cmocka_unit_test(test_llm_config_requires_model),
        cmocka_unit_test(test_llm_config_rejects_bad_max_tokens),
        cmocka_unit_test(test_llm_config_rejects_bad_temperature),
        cmocka_unit_test(test_llm_config_rejects_malformed_env_file),
        cmocka_unit_test(test_llm_config_base_url_rule),
        cmocka_unit_test(test_llm_config_rejects_key_that_could_inject_headers),
        cmocka_unit_test(test_llm_redact_replaces_every_occurrence),
        cmocka_unit_test(test_http_reads_retry_after),
        cmocka_unit_test(test_llm_retries_429_after_retry_after),
        cmocka_unit_test(test_llm_does_not_wait_past_the_deadline),
        cmocka_unit_test(test_llm_retries_5xx_then_gives_up),
        cmocka_unit_test(test_llm_retries_dropped_connection),
        cmocka_unit_test(test_llm_slow_stream_within_and_past_deadline),
        cmocka_unit_test(test_llm_reasoning_model_parameter_fallbacks),
        cmocka_unit_test(test_llm_error_message_shown_redacted_and_clean),
        cmocka_unit_test(test_llm_empty_and_truncated_answers_are_marked),
        cmocka_unit_test(test_llm_non_utf8_answer_is_named),
        cmocka_unit_test(test_llm_azure_classic_endpoint),
        cmocka_unit_test(test_llm_config_provider_variables),
        cmocka_unit_test(test_llm_redact_catches_pieces_and_base64),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
