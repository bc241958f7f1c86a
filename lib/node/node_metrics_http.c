/* The node's opt-in Prometheus listener (`node start --metrics-listen HOST:PORT`): plain HTTP
 * served from the node's own libuv loop, so the metrics are read where they are counted (no
 * lock, no thread). Deliberately small and bounded: GET /metrics only (HEAD too), one request
 * per connection (answered with Connection: close), a request head of at most 4 KiB that must
 * arrive within 5 s, at most 16 connections at once (more are closed at once). Anything else
 * is answered 400, 404, 405 or 431 and closed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node_internal.h"

#define MHTTP_HEAD_MAX 4096
#define MHTTP_TIMEOUT_MS 5000
#define MHTTP_MAX_CONNS 16

typedef struct mhttp_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wr;
    gm_node *node;
    char head[MHTTP_HEAD_MAX + 1];
    size_t len;
    char *reply;
    int closing, handles; /* handles still to close before the struct is freed */
    struct mhttp_conn *next;
} mhttp_conn;

static void conn_freed(uv_handle_t *h)
{
    mhttp_conn *c = h->data;
    if (--c->handles > 0)
        return;
    gm_node *n = c->node;
    for (mhttp_conn **p = &n->mhttp.conns; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    n->mhttp.n_conns--;
    free(c->reply);
    free(c);
}

static void conn_close(mhttp_conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, conn_freed);
    uv_close((uv_handle_t *)&c->tcp, conn_freed);
}

static void on_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

static void on_written(uv_write_t *w, int status)
{
    (void)status;
    conn_close(w->data);
}

static void reply(mhttp_conn *c, int status, const char *reason, const char *type, const char *body, int head_only)
{
    size_t blen = body ? strlen(body) : 0;
    size_t cap = blen + 256;
    c->reply = malloc(cap);
    if (!c->reply) {
        conn_close(c);
        return;
    }
    int k = snprintf(c->reply, cap,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n"
                     "Cache-Control: no-store\r\n\r\n",
                     status, reason, type, blen);
    size_t len = (size_t)k;
    if (!head_only && blen) {
        memcpy(c->reply + len, body, blen);
        len += blen;
    }
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_buf_t buf = uv_buf_init(c->reply, (unsigned)len);
    c->wr.data = c;
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &buf, 1, on_written) != 0)
        conn_close(c);
}

int node_mhttp_route(const char *head, int *head_only)
{
    /* Strictly "METHOD SP TARGET SP HTTP/1.x CRLF": one space each, nothing else between. */
    size_t m = strspn(head, "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
    *head_only = 0;
    if (m == 0 || m > 7 || head[m] != ' ')
        return 400;
    const char *target = head + m + 1;
    size_t t = strcspn(target, " \r\n\t");
    if (t == 0 || target[t] != ' ' ||
        (strncmp(target + t + 1, "HTTP/1.1\r\n", 10) != 0 && strncmp(target + t + 1, "HTTP/1.0\r\n", 10) != 0))
        return 400;
    *head_only = m == 4 && !strncmp(head, "HEAD", 4);
    if (!(m == 3 && !strncmp(head, "GET", 3)) && !*head_only)
        return 405;
    return t == 8 && !strncmp(target, "/metrics", 8) ? 200 : 404;
}

/* A complete head: only GET (or HEAD) /metrics is served. */
static void answer(mhttp_conn *c)
{
    int head_only;
    c->head[c->len] = '\0';
    switch (node_mhttp_route(c->head, &head_only)) {
    case 400:
        reply(c, 400, "Bad Request", "text/plain", "bad request\n", 0);
        return;
    case 405:
        reply(c, 405, "Method Not Allowed", "text/plain", "only GET /metrics\n", 0);
        return;
    case 404:
        reply(c, 404, "Not Found", "text/plain", "only GET /metrics\n", head_only);
        return;
    }
    char *text = node_metrics_prometheus(c->node);
    if (!text) {
        reply(c, 500, "Internal Server Error", "text/plain", "out of memory\n", head_only);
        return;
    }
    reply(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", text, head_only);
    free(text);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    mhttp_conn *c = h->data;
    (void)suggested;
    buf->base = c->head + c->len;
    buf->len = MHTTP_HEAD_MAX - c->len;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    mhttp_conn *c = s->data;
    (void)buf;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    c->len += (size_t)nread;
    c->head[c->len] = '\0';
    if (strstr(c->head, "\r\n\r\n"))
        answer(c);
    else if (c->len >= MHTTP_HEAD_MAX)
        reply(c, 431, "Request Header Fields Too Large", "text/plain", "request head too large\n", 0);
}

static void on_connection(uv_stream_t *server, int status)
{
    gm_node *n = server->data;
    if (status < 0)
        return;
    mhttp_conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->node = n;
    uv_tcp_init(n->loop, &c->tcp);
    uv_timer_init(n->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    c->next = n->mhttp.conns;
    n->mhttp.conns = c;
    n->mhttp.n_conns++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || n->stopping || n->mhttp.n_conns > MHTTP_MAX_CONNS) {
        conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, on_timeout, MHTTP_TIMEOUT_MS, 0);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        conn_close(c);
}

int node_metrics_http_start(gm_node *n, gm_error *err)
{
    const char *spec = n->cfg.metrics_listen;
    struct sockaddr_storage ss;
    if (!spec)
        return 0;
    int rc = node_listen_addr(spec, "--metrics-listen", &ss, err);
    if (rc != 0)
        return rc;
    uv_tcp_init(n->loop, &n->mhttp.listener);
    n->mhttp.listener.data = n;
    n->mhttp.open = 1;
    int u = uv_tcp_bind(&n->mhttp.listener, (const struct sockaddr *)&ss, 0);
    if (u == 0)
        u = uv_listen((uv_stream_t *)&n->mhttp.listener, 32, on_connection);
    if (u != 0)
        return gm_error_set(err, GM_EIO, "--metrics-listen %s: cannot listen: %s", spec, uv_strerror(u));
    int sl = sizeof ss;
    uv_tcp_getsockname(&n->mhttp.listener, (struct sockaddr *)&ss, &sl);
    n->mhttp.port = ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                                            : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    node_log(n, GM_LOG_INFO, "metrics_listening", json_pack("{s:s,s:i}", "listen", spec, "port", n->mhttp.port));
    return 0;
}

void node_metrics_http_stop(gm_node *n)
{
    if (n->mhttp.open) {
        n->mhttp.open = 0;
        uv_close((uv_handle_t *)&n->mhttp.listener, NULL);
    }
    for (mhttp_conn *c = n->mhttp.conns; c; c = c->next)
        conn_close(c);
}
