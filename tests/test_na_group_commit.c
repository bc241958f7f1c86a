/* Group commit at the NA's HTTP layer (issue 10, item 3), against a real NA served in-process
 * with one worker thread and its SQLite store:
 * - a join whose commit waits for its sync does not hold the worker: with the store's syncs held
 *   (as if one were running), the join is parked, and another request on the same worker is
 *   answered meanwhile; released, the join is answered with its certificate, which is stored;
 * - a POST kept alive (the NA client's) is never re-sent by libcurl: against a server that
 *   answers the first request of a connection and closes it on the second without an answer,
 *   the second fails with a message saying it was not re-sent, and the server never sees a
 *   third request (curl would otherwise re-send it on a new connection, and a one-time nonce
 *   would be refused as a replay). Without the check the new connection carries it;
 * - kept-alive connections are kept for every thread of a client: 16 threads, 5 rounds of one
 *   kept-alive POST each (all idle between rounds), open 16 connections at the NA, not one per
 *   request (when each request's handle, and its connection, was freed after it; and with the
 *   earlier shared cache of libcurl's default size 5, 11 of them were closed after every round);
 * - a request on a handle used before carries nothing of the last one over: no header of it, and
 *   a POST not kept alive after kept-alive ones gets a connection of its own. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent_testkit.h"
#include "na_testkit.h"
#include "gm/http_client.h"
#include "gm/na.h"
#include "gm/na_client.h"
#include "core_internal.h"
#include "na_internal.h"
#include "store.h"

#define TIMEOUT_MS 120000L

typedef struct fx {
    char dir[256];
    char url[128];
    tk_net net;
    gm_signer op;
    gm_na_t *na;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "%s/gm-test-gc.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(f->dir));
    tk_net_init(&f->net, "TESTNET");
    tk_na_dir(f->dir, &f->net);
    tk_signer(&f->op, 0x20, "operator-local");
    tk_na_start(f->dir, NULL, 1, &f->na, f->url, sizeof f->url); /* every connection on the same worker */
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    char cmd[400];
    gm_na_free(f->na);
    gm_signer_wipe(&f->op);
    tk_net_free(&f->net);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

typedef struct joiner {
    fx *f;
    const char *token;
    gm_signer node;
    json_t *cert;
    int rc;
    gm_error err;
    atomic_int done;
} joiner;

static void *join_thread(void *arg)
{
    joiner *j = arg;
    j->rc = gm_na_join(j->f->url, &j->node, j->token, 0, TIMEOUT_MS, &j->cert, &j->err);
    atomic_store(&j->done, 1);
    return NULL;
}

static void test_a_join_waiting_for_its_sync_leaves_the_worker_free(void **state)
{
    fx *f = *state;
    gm_error err = {0};
    json_t *inv = NULL;
    int status = 0;
    json_t *body = json_pack("{s:[s]}", "roles", "role:x");
    assert_int_equal(gm_na_admin_call(f->url, &f->op, "POST", "/admin/invite", body, TIMEOUT_MS, &status, &inv, &err), 0);
    json_decref(body);
    assert_int_equal(status, 201);
    gm_store_t *store = gm_na_store(f->na);
    assert_int_equal(gm_store_hold_syncs(store, 1, &err), 0);

    joiner j = {.f = f, .token = json_string_value(json_object_get(inv, "token"))};
    assert_non_null(j.token);
    tk_signer(&j.node, 0x31, "node");
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, join_thread, &j), 0);
    /* the join is parked once its commit waits for the (held) sync; before the change it held
     * the only worker in that wait and was never parked */
    for (int spins = 0; na_server_parked(f->na) == 0; spins++) {
        assert_false(atomic_load(&j.done)); /* answered without its sync: not durable */
        if (spins > 60 * 500)
            fail_msg("the join was never parked (its commit's wait holds the worker thread)");
        usleep(2000);
    }
    /* another connection on the same worker is served while the join waits */
    char url[200];
    snprintf(url, sizeof url, "%s/health", f->url);
    gm_http_req req = {.method = "GET", .url = url, .timeout_ms = TIMEOUT_MS};
    gm_http_resp resp = {0};
    assert_int_equal(gm_http_request(&req, &resp, &err), 0);
    assert_int_equal(resp.status, 200);
    gm_http_resp_free(&resp);
    assert_int_equal(na_server_parked(f->na), 1);
    assert_false(atomic_load(&j.done));

    /* released: the join is answered, with a certificate the store holds */
    assert_int_equal(gm_store_hold_syncs(store, 0, &err), 0);
    pthread_join(t, NULL);
    if (j.rc != 0)
        fail_msg("join: %s", j.err.msg);
    const char *cert_id = json_string_value(json_object_get(j.cert, "cert_id"));
    assert_non_null(cert_id);
    gm_store_cert sc;
    memset(&sc, 0, sizeof sc);
    assert_int_equal(gm_store_cert_get(store, cert_id, &sc, &err), 0);
    gm_store_cert_clear(&sc);
    assert_int_equal(na_server_parked(f->na), 0);
    json_decref(j.cert);
    json_decref(inv);
    gm_signer_wipe(&j.node);
}

/* ---- a POST kept alive is sent once ---- */

typedef struct fake {
    int lfd;
    atomic_int requests;
} fake;

/* Read one request (headers and the body its Content-Length announces); 0 at EOF. */
static int read_request(int fd)
{
    char buf[8192];
    size_t len = 0;
    for (;;) {
        ssize_t n = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (n <= 0)
            return 0;
        len += (size_t)n;
        buf[len] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        const char *cl = strstr(buf, "Content-Length:") /* as libcurl spells it */;
        if (end && (!cl || len >= (size_t)(end + 4 - buf) + strtoul(cl + 15, NULL, 10)))
            return 1;
        if (len >= sizeof buf - 1)
            return 0;
    }
}

/* The first connection: answer its first request (kept alive), close on the second unanswered. */
static void *fake_main(void *arg)
{
    fake *s = arg;
    int c = accept(s->lfd, NULL, NULL);
    if (c < 0)
        return NULL;
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
    if (read_request(c)) {
        atomic_fetch_add(&s->requests, 1);
        if (send(c, ok, sizeof ok - 1, MSG_NOSIGNAL) < 0)
            return NULL;
    }
    if (read_request(c))
        atomic_fetch_add(&s->requests, 1);
    close(c);
    return NULL;
}

static void test_a_kept_alive_post_is_never_re_sent(void **state)
{
    (void)state;
    fake s = {.lfd = socket(AF_INET, SOCK_STREAM, 0)};
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    assert_true(s.lfd >= 0);
    assert_int_equal(bind(s.lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s.lfd, 8), 0);
    assert_int_equal(getsockname(s.lfd, (struct sockaddr *)&a, &alen), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fake_main, &s), 0);
    char url[100];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/join", (unsigned)ntohs(a.sin_port));
    gm_http_req req = {.method = "POST", .url = url, .body = "{}", .body_len = 2, .timeout_ms = 10000,
                       .keep_alive = 1};
    gm_http_resp resp = {0};
    gm_error err = {0};
    assert_int_equal(gm_http_request(&req, &resp, &err), 0);
    assert_int_equal(resp.status, 200);
    gm_http_resp_free(&resp);
    /* on the kept connection, which the server closes unanswered */
    assert_int_equal(gm_http_request(&req, &resp, &err), GM_ENET);
    assert_non_null(strstr(err.msg, "not re-sent"));
    pthread_join(t, NULL);
    assert_int_equal(atomic_load(&s.requests), 2);
    /* curl may have opened a new connection for its re-send (before returning), but sent
     * nothing on it: the check runs once connected, before the request goes out */
    fcntl(s.lfd, F_SETFL, O_NONBLOCK);
    int c = accept(s.lfd, NULL, NULL);
    if (c >= 0) {
        char b;
        assert_true(recv(c, &b, 1, MSG_DONTWAIT) <= 0);
        close(c);
    }
    close(s.lfd);
}

#define KEPT_THREADS 16
#define KEPT_ROUNDS 5

typedef struct kept_job {
    const char *url;
    pthread_barrier_t *round;
    atomic_int failed;
} kept_job;

static void *kept_thread(void *arg)
{
    kept_job *j = arg;
    for (int i = 0; i < KEPT_ROUNDS; i++) {
        gm_http_req req = {.method = "POST", .url = j->url, .body = "{}", .body_len = 2, .timeout_ms = TIMEOUT_MS,
                           .keep_alive = 1};
        gm_http_resp resp = {0};
        gm_error err = {0};
        /* every thread's connection is back in the cache before the next round starts */
        pthread_barrier_wait(j->round);
        if (gm_http_request(&req, &resp, &err) != 0 || resp.status != 400)
            atomic_fetch_add(&j->failed, 1);
        gm_http_resp_free(&resp);
        pthread_barrier_wait(j->round);
    }
    return NULL;
}

/* A counter of the NA's /metrics. */
static long long na_counter(const char *base, const char *name)
{
    char url[200];
    snprintf(url, sizeof url, "%s/metrics", base);
    gm_http_req req = {.url = url, .timeout_ms = TIMEOUT_MS};
    gm_http_resp resp = {0};
    gm_error err = {0};
    assert_int_equal(gm_http_request(&req, &resp, &err), 0);
    char key[120];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(resp.body, key);
    assert_non_null(p);
    long long v = strtoll(p + strlen(key), NULL, 10);
    gm_http_resp_free(&resp);
    return v;
}

static void test_kept_alive_connections_are_kept_for_every_thread(void **state)
{
    fx *f = *state;
    char url[200];
    snprintf(url, sizeof url, "%s/join", f->url);
    long long before = na_counter(f->url, "gm_na_connections_accepted_total");
    pthread_barrier_t round;
    assert_int_equal(pthread_barrier_init(&round, NULL, KEPT_THREADS), 0);
    kept_job j = {.url = url, .round = &round};
    pthread_t t[KEPT_THREADS];
    for (int i = 0; i < KEPT_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, kept_thread, &j), 0);
    for (int i = 0; i < KEPT_THREADS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&round);
    assert_int_equal(atomic_load(&j.failed), 0);
    long long opened = na_counter(f->url, "gm_na_connections_accepted_total") - before;
    /* one per thread (the counter's own GET may take one more); 80 when no connection is kept */
    assert_true(opened >= 1);
    assert_true(opened <= KEPT_THREADS + 1);
}

/* Counts the requests of each connection; answers each with the headers it got as its body. */
typedef struct echo {
    int lfd;
    atomic_int conns;
    char last[4096]; /* the last request's head */
} echo;

static echo g_echo;

/* One connection, request after request until the client closes it (a kept one stays open). */
static void *echo_conn(void *arg)
{
    echo *s = &g_echo;
    int c = (int)(intptr_t)arg;
    for (;;) {
        char buf[4096];
        size_t len = 0;
        char *end = NULL;
        while (!end) {
            ssize_t n = recv(c, buf + len, sizeof buf - 1 - len, 0);
            if (n <= 0 || len + (size_t)n >= sizeof buf - 1)
                break;
            len += (size_t)n;
            buf[len] = '\0';
            end = strstr(buf, "\r\n\r\n");
        }
        if (!end)
            break;
        /* the bodies here are "{}" or none: read what was announced */
        const char *cl = strstr(buf, "Content-Length: ");
        size_t want = (size_t)(end + 4 - buf) + (cl ? strtoul(cl + 16, NULL, 10) : 0);
        while (len < want) {
            ssize_t n = recv(c, buf + len, sizeof buf - 1 - len, 0);
            if (n <= 0)
                break;
            len += (size_t)n;
        }
        *end = '\0';
        snprintf(s->last, sizeof s->last, "%s", buf);
        char head[128];
        int n = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
        if (send(c, head, (size_t)n, MSG_NOSIGNAL) < 0)
            break;
    }
    close(c);
    return NULL;
}

static void *echo_main(void *arg)
{
    echo *s = arg;
    for (;;) {
        int c = accept(s->lfd, NULL, NULL);
        if (c < 0)
            return NULL;
        atomic_fetch_add(&s->conns, 1);
        pthread_t t;
        if (pthread_create(&t, NULL, echo_conn, (void *)(intptr_t)c) != 0)
            close(c);
        else
            pthread_detach(t);
    }
}

static void test_a_reused_handle_carries_nothing_over(void **state)
{
    (void)state;
    echo *s = &g_echo;
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    assert_true(s->lfd >= 0);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->lfd, 8), 0);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &alen), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, echo_main, s), 0);
    char url[100];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/x", (unsigned)ntohs(a.sin_port));
    const char *hdr[] = {"X-Secret-Marker: 1"};
    gm_http_resp resp = {0};
    gm_error err = {0};
    /* kept alive, with a header: one connection for both */
    for (int i = 0; i < 2; i++) {
        gm_http_req req = {.method = "POST", .url = url, .body = "{}", .body_len = 2, .timeout_ms = 10000,
                           .headers = hdr, .n_headers = 1, .keep_alive = 1};
        assert_int_equal(gm_http_request(&req, &resp, &err), 0);
        assert_int_equal(resp.status, 200);
        gm_http_resp_free(&resp);
    }
    assert_non_null(strstr(s->last, "X-Secret-Marker"));
    assert_int_equal(atomic_load(&s->conns), 1);
    /* the next request, on the same thread (the same handle): none of the header, and a POST not
     * kept alive connects anew, twice */
    for (int i = 0; i < 2; i++) {
        gm_http_req req = {.method = "POST", .url = url, .body = "{}", .body_len = 2, .timeout_ms = 10000};
        assert_int_equal(gm_http_request(&req, &resp, &err), 0);
        assert_int_equal(resp.status, 200);
        gm_http_resp_free(&resp);
        assert_null(strstr(s->last, "X-Secret-Marker"));
    }
    assert_int_equal(atomic_load(&s->conns), 3);
    shutdown(s->lfd, SHUT_RDWR);
    close(s->lfd);
    pthread_join(t, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_join_waiting_for_its_sync_leaves_the_worker_free, setup, teardown),
        cmocka_unit_test(test_a_kept_alive_post_is_never_re_sent),
        cmocka_unit_test_setup_teardown(test_kept_alive_connections_are_kept_for_every_thread, setup, teardown),
        cmocka_unit_test(test_a_reused_handle_carries_nothing_over),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
