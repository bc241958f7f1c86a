/* Client side of the node's local API: a blocking Unix-socket connection exchanging
 * newline-delimited JSON, used by `send`, `recv`, `status` and agents. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "gm/gmtime.h"
#include "gm/node.h"
#include "gm/util.h"

#define CONN_LINE_MAX (64u << 20)

struct gm_node_conn {
    int fd;
    char *buf;
    size_t len, cap;
};

int gm_node_conn_open(const char *dir, gm_node_conn_t **out, gm_error *err)
{
    char path[4200];
    struct sockaddr_un sa;
    int rc = gm_path_join(path, sizeof path, dir, "node.sock", err);
    *out = NULL;
    if (rc != 0)
        return rc;
    if (strlen(path) >= sizeof sa.sun_path)
        return gm_error_set(err, GM_EINVAL, "socket path %s is too long", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return gm_error_set(err, GM_EIO, "socket: %s", strerror(errno));
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1); /* length checked above */
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        int e = errno;
        close(fd);
        if (e == ENOENT || e == ECONNREFUSED)
            return gm_error_set(err, GM_ENOTFOUND, "no node is running in %s (start one with 'genesis-mesh node start --dir %s')",
                                dir, dir);
        return gm_error_set(err, GM_EIO, "cannot connect to %s: %s", path, strerror(e));
    }
    gm_node_conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    }
    c->fd = fd;
    *out = c;
    return 0;
}

int gm_node_conn_read(gm_node_conn_t *c, json_t **msg, int timeout_ms, gm_error *err)
{
    int64_t deadline = timeout_ms > 0 ? gm_mono_ms() + timeout_ms : 0;
    *msg = NULL;
    for (;;) {
        char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;
        if (nl) {
            size_t ll = (size_t)(nl - c->buf);
            json_error_t je;
            json_t *o = json_loadb(c->buf, ll, 0, &je);
            memmove(c->buf, nl + 1, c->len - ll - 1);
            c->len -= ll + 1;
            if (!o)
                return gm_error_set(err, GM_EPROTO, "node sent a line that is not JSON: %s", je.text);
            *msg = o;
            return 0;
        }
        if (c->len + 65536 > c->cap) {
            if (c->cap >= CONN_LINE_MAX)
                return gm_error_set(err, GM_ETOOBIG, "node sent a line longer than %u bytes", CONN_LINE_MAX);
            size_t nc = c->cap ? c->cap * 2 : 131072;
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
                return gm_error_set(err, GM_ETIMEOUT, "nothing from the node within %d ms", timeout_ms);
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
        ssize_t k = read(c->fd, c->buf + c->len, c->cap - c->len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return gm_error_set(err, GM_EIO, "the node closed the connection");
        c->len += (size_t)k;
    }
}

int gm_node_conn_request(gm_node_conn_t *c, const json_t *req, json_t **resp, int timeout_ms, gm_error *err)
{
    char *s = json_dumps(req, JSON_COMPACT);
    *resp = NULL;
    if (!s)
        return gm_error_set(err, GM_EINVAL, "cannot encode request");
    size_t len = strlen(s), off = 0;
    s[len] = '\n'; /* replaces the NUL: we write len + 1 bytes */
    while (off < len + 1) {
        ssize_t k = send(c->fd, s + off, len + 1 - off, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            free(s);
            return gm_error_set(err, GM_EIO, "cannot send to the node: %s", strerror(errno));
        }
        off += (size_t)k;
    }
    free(s);
    return gm_node_conn_read(c, resp, timeout_ms, err);
}

void gm_node_conn_close(gm_node_conn_t *c)
{
    if (!c)
        return;
    close(c->fd);
    free(c->buf);
    free(c);
}

int gm_node_api_call(const char *dir, const json_t *req, json_t **resp, int timeout_ms, gm_error *err)
{
    gm_node_conn_t *c;
    int rc = gm_node_conn_open(dir, &c, err);
    if (rc != 0)
        return rc;
    rc = gm_node_conn_request(c, req, resp, timeout_ms, err);
    gm_node_conn_close(c);
    return rc;
}
