/* Client side of the node's local API: a blocking Unix-socket connection exchanging
 * newline-delimited JSON. The one client of D/node.sock, used by the CLI (`send`, `recv`,
 * `status`, `dev`) and by agents (invocation, provider loop). One behaviour for all of them:
 * a line is at most GM_NODE_CONN_LINE_MAX bytes, every wait runs to a monotonic deadline, and
 * a signal (EINTR) never ends a wait early nor stretches it. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "gm/gmtime.h"
#include "gm/node.h"
#include "gm/util.h"
#include "client_internal.h"

struct gm_node_conn {
    int fd;
    char path[GM_NODE_SOCK_PATH_MAX];
    char *buf;
    size_t len, cap;
};

int gm_node_conn_open_path(const char *sock_path, gm_node_conn_t **out, gm_error *err)
{
    struct sockaddr_un sa;
    *out = NULL;
    if (strlen(sock_path) >= sizeof sa.sun_path)
        return gm_error_set(err, GM_EINVAL, "socket path %s is too long", sock_path);
    gm_node_conn_t *c = calloc(1, sizeof *c);
    if (!c)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    snprintf(c->path, sizeof c->path, "%s", sock_path);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        free(c);
        return gm_error_set(err, GM_EIO, "socket: %s", strerror(errno));
    }
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1); /* length checked above */
    int rc;
    while ((rc = connect(c->fd, (struct sockaddr *)&sa, sizeof sa)) != 0 && errno == EINTR)
        ;
    if (rc != 0) {
        int e = errno;
        gm_node_conn_close(c);
        if (e == ENOENT || e == ECONNREFUSED)
            return gm_error_set(err, GM_ENOTFOUND, "no node is listening on %s (is 'genesis-mesh node start' running?)",
                                sock_path);
        return gm_error_set(err, GM_EIO, "cannot connect to %s: %s", sock_path, strerror(e));
    }
    *out = c;
    return 0;
}

int gm_node_conn_open(const char *dir, gm_node_conn_t **out, gm_error *err)
{
    char path[GM_NODE_SOCK_PATH_MAX];
    int rc = gm_path_join(path, sizeof path, dir, "node.sock", err);
    *out = NULL;
    if (rc != 0)
        return rc;
    rc = gm_node_conn_open_path(path, out, err);
    if (rc == GM_ENOTFOUND)
        gm_error_set(err, GM_ENOTFOUND, "no node is running in %s (start one with 'genesis-mesh node start --dir %s')",
                     dir, dir);
    return rc;
}

/* Take one complete line out of the buffer and parse it; 1 when there was one. */
static int take_line(gm_node_conn_t *c, json_t **msg, int *rc, gm_error *err)
{
    char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;
    if (!nl)
        return 0;
    size_t ll = (size_t)(nl - c->buf);
    json_error_t je;
    json_t *o = json_loadb(c->buf, ll, 0, &je);
    memmove(c->buf, nl + 1, c->len - ll - 1);
    c->len -= ll + 1;
    if (!o)
        *rc = gm_error_set(err, GM_EPROTO, "the node at %s sent a line that is not JSON: %s", c->path, je.text);
    else
        *rc = 0;
    *msg = o;
    return 1;
}

int gm_node_conn_read(gm_node_conn_t *c, json_t **msg, int timeout_ms, gm_error *err)
{
    int64_t deadline = timeout_ms > 0 ? gm_mono_ms() + timeout_ms : 0;
    int rc;
    *msg = NULL;
    for (;;) {
        if (take_line(c, msg, &rc, err))
            return rc;
        if (c->len > GM_NODE_CONN_LINE_MAX)
            return gm_error_set(err, GM_ETOOBIG, "the node at %s sent a line longer than %u bytes", c->path,
                                GM_NODE_CONN_LINE_MAX);
        /* Room to read; the buffer never grows past one byte more than the longest line. */
        if (c->cap - c->len < 4096 && c->cap < GM_NODE_CONN_LINE_MAX + 1u) {
            size_t nc = c->cap ? c->cap * 2 : 16384;
            if (nc > GM_NODE_CONN_LINE_MAX + 1u)
                nc = GM_NODE_CONN_LINE_MAX + 1u;
            char *p = realloc(c->buf, nc);
            if (!p)
                return gm_error_set(err, GM_ENOMEM, "out of memory");
            c->buf = p;
            c->cap = nc;
        }
        int wait = -1;
        if (deadline) {
            int64_t left = deadline - gm_mono_ms();
            if (left <= 0)
                return gm_error_set(err, GM_ETIMEOUT, "nothing from the node at %s within %d ms", c->path, timeout_ms);
            wait = (int)left;
        }
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        int pr = poll(&pfd, 1, wait);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0)
            return gm_error_set(err, GM_EIO, "poll: %s", strerror(errno));
        if (pr == 0)
            continue;
        ssize_t k = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (k < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (k < 0)
            return gm_error_set(err, GM_EIO, "reading from the node at %s: %s", c->path, strerror(errno));
        if (k == 0)
            return gm_error_set(err, GM_EIO, "the node at %s closed the connection%s", c->path,
                                c->len ? " in the middle of a line" : "");
        c->len += (size_t)k;
    }
}

int gm_node_conn_send(gm_node_conn_t *c, const json_t *msg, gm_error *err)
{
    char *s = json_dumps(msg, JSON_COMPACT);
    if (!s)
        return gm_error_set(err, GM_EINVAL, "cannot encode the request to the node");
    size_t len = strlen(s), off = 0;
    s[len] = '\n'; /* replaces the NUL: we write len + 1 bytes */
    while (off < len + 1) {
        ssize_t k = send(c->fd, s + off, len + 1 - off, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            int e = k < 0 ? errno : EPIPE;
            free(s);
            return gm_error_set(err, GM_EIO, "cannot send to the node at %s: %s", c->path, strerror(e));
        }
        off += (size_t)k;
    }
    free(s);
    return 0;
}

int gm_node_conn_request(gm_node_conn_t *c, const json_t *req, json_t **resp, int timeout_ms, gm_error *err)
{
    *resp = NULL;
    int rc = gm_node_conn_send(c, req, err);
    /* version 2: the answer is the line with the request's id; other lines are skipped */
    const char *id = json_string_value(json_object_get(req, "id"));
    int64_t end = gm_mono_ms() + timeout_ms;
    while (rc == 0) {
        int64_t left = end - gm_mono_ms();
        rc = gm_node_conn_read(c, resp, left > 0 ? (int)left : 1, err);
        if (rc != 0 || !id)
            break;
        const char *got = json_string_value(json_object_get(*resp, "id"));
        if (got && !strcmp(got, id))
            break;
        json_decref(*resp);
        *resp = NULL;
    }
    return rc;
}

/* A {"ok":false,"error":{code,message}} answer as an error: GM_ENET when the node has no
 * route, else GM_EPROTO. */
static int answer_error(const json_t *resp, const char *what, gm_error *err)
{
    const json_t *e = json_object_get(resp, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    int rc = code && !strcmp(code, "no_route") ? GM_ENET : GM_EPROTO;
    return gm_error_set(err, rc, "%s: %s%s%s", what, code ? code : "refused", msg ? ": " : "", msg ? msg : "");
}

int gm_node_conn_subscribe(gm_node_conn_t *c, const char *port, int timeout_ms, gm_error *err)
{
    json_t *req = json_pack("{s:s,s:s}", "op", "subscribe", "port", port), *resp = NULL;
    if (!req)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    int rc = gm_node_conn_request(c, req, &resp, timeout_ms, err);
    json_decref(req);
    if (rc == 0 && !json_is_true(json_object_get(resp, "ok")))
        rc = answer_error(resp, "subscribing to the local node", err);
    json_decref(resp);
    return rc;
}

int gm_node_conn_hello(gm_node_conn_t *c, int timeout_ms, gm_error *err)
{
    json_t *req = json_pack("{s:s,s:s,s:[i]}", "op", "hello", "id", "hello", "versions", 2), *resp = NULL;
    if (!req)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    int rc = gm_node_conn_request(c, req, &resp, timeout_ms, err);
    json_decref(req);
    if (rc == 0 && !json_is_true(json_object_get(resp, "ok")))
        rc = answer_error(resp, "negotiating version 2 of the local API (is the node older?)", err);
    else if (rc == 0 && json_integer_value(json_object_get(resp, "version")) != 2)
        rc = gm_error_set(err, GM_EPROTO, "the node at %s did not agree on version 2 of the local API", c->path);
    json_decref(resp);
    return rc;
}

void gm_node_conn_close(gm_node_conn_t *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    free(c->buf);
    free(c);
}

int gm_node_api_call_path(const char *sock_path, const json_t *req, json_t **resp, int timeout_ms, gm_error *err)
{
    gm_node_conn_t *c;
    *resp = NULL;
    int rc = gm_node_conn_open_path(sock_path, &c, err);
    if (rc != 0)
        return rc;
    rc = gm_node_conn_request(c, req, resp, timeout_ms, err);
    gm_node_conn_close(c);
    return rc;
}

int gm_node_api_call(const char *dir, const json_t *req, json_t **resp, int timeout_ms, gm_error *err)
{
    gm_node_conn_t *c;
    *resp = NULL;
    int rc = gm_node_conn_open(dir, &c, err);
    if (rc != 0)
        return rc;
    rc = gm_node_conn_request(c, req, resp, timeout_ms, err);
    gm_node_conn_close(c);
    return rc;
}

int gm_node_api_send(const char *sock_path, const uint8_t to[GM_PK_LEN], const char *port, const void *data,
                     size_t len, int timeout_ms, gm_error *err)
{
    char pk[GM_PK_B64_LEN + 1];
    gm_pk_encode(to, pk);
    char *b64 = malloc(gm_b64_len(len) + 1);
    if (!b64)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    b64[0] = 0;
    if (len)
        gm_b64_encode(data, len, b64, gm_b64_len(len) + 1);
    json_t *req = json_pack("{s:s,s:s,s:s,s:s}", "op", "send", "to", pk, "port", port, "data", b64), *resp = NULL;
    free(b64);
    if (!req)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    int rc = gm_node_api_call_path(sock_path, req, &resp, timeout_ms, err);
    json_decref(req);
    if (rc == 0 && !json_is_true(json_object_get(resp, "ok"))) {
        char what[128];
        snprintf(what, sizeof what, "sending to %.12s...", pk);
        rc = answer_error(resp, what, err);
    }
    json_decref(resp);
    return rc;
}
