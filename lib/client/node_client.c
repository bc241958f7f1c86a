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
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "gm/gmtime.h"
#include "gm/node.h"
#include "gm/util.h"
#include "core_internal.h"
#include "api_frame.h"
#include "client_internal.h"

struct gm_node_conn {
    int fd;
    char path[GM_NODE_SOCK_PATH_MAX];
    char *buf;                /* received: buf[off..len) not returned yet */
    size_t off, len, cap;
    int frames;               /* binary frames version negotiated (subscribe_frames, hello), or 0 */
    int can_park;             /* the node lists "unsubscribe" among its operations */
    uint8_t *msg;             /* decoded data of a JSON message event (node without frames) */
    char *note;               /* its "authorized" note (an object) as compact JSON */
    char *pend;               /* a request line that goes out with the next write (or before a read) */
    size_t pend_len;
};

static int send_iov(gm_node_conn_t *c, struct iovec *iov, int n, gm_error *err);

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

/* A frames connection may stream: with a send buffer of CONN_SNDBUF a sender writes about 16
 * messages of 60 kB between two wake-ups instead of 3 (the default ~208 KiB); the node's
 * backpressure still blocks it, one buffer later. Best effort: the system may cap it. */
#define CONN_SNDBUF (1 << 20)
static void set_frames(gm_node_conn_t *c, int version)
{
    int sz = CONN_SNDBUF;
    c->frames = version;
    if (version)
        (void)setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
}

/* Free room to read into: a frames connection reads several messages per system call. */
#define CONN_READ_MIN 4096
#define CONN_READ_FRAMES (256u << 10)

/* Take one complete line out of the buffer and parse it; 1 when there was one. */
static int take_line(gm_node_conn_t *c, json_t **msg, int *rc, gm_error *err)
{
    char *start = c->buf + c->off;
    char *nl = c->len > c->off ? memchr(start, '\n', c->len - c->off) : NULL;
    if (!nl)
        return 0;
    size_t ll = (size_t)(nl - start);
    json_error_t je;
    json_t *o = json_loadb(start, ll, 0, &je);
    c->off += ll + 1;
    if (!o)
        *rc = gm_error_set(err, GM_EPROTO, "the node at %s sent a line that is not JSON: %s", c->path, je.text);
    else
        *rc = 0;
    *msg = o;
    return 1;
}

/* A message frame at the read position: 1 when complete (m points into the buffer, where it
 * stays until the next read), 0 when more is needed, < 0 when it cannot be parsed (it stays at
 * the read position: the connection cannot be followed any more). */
static int take_frame(gm_node_conn_t *c, gm_node_msg *m, gm_error *err)
{
    gm_api_frame f;
    char why[160];
    size_t avail = c->len - c->off;
    int r = gm_api_frame_parse((const uint8_t *)c->buf + c->off, avail, GM_API_FRAME_MAX_DATA, &f, why, sizeof why);
    if (r < 0 || (r > 0 && (f.type != GM_API_FRAME_MESSAGE || f.too_big)))
        return gm_error_set(err, GM_EPROTO, "the node at %s sent a bad frame: %s", c->path,
                            r < 0 ? why : "not a message frame of at most 65535 bytes");
    if (r == 0 || avail < f.head + f.len)
        return 0;
    const uint8_t *payload = (const uint8_t *)c->buf + c->off + f.head, *note = NULL;
    size_t note_len = 0;
    m->data = payload;
    m->len = f.len;
    if (f.flags & GM_API_FRAME_F_NOTED) {
        if (c->frames < GM_API_FRAMES_V2)
            return gm_error_set(err, GM_EPROTO, "the node at %s sent a noted frame on a frames %d connection", c->path,
                                c->frames);
        if (gm_api_frame_note(&f, payload, &note, &note_len, &m->data, &m->len, why, sizeof why) != 0)
            return gm_error_set(err, GM_EPROTO, "the node at %s sent a bad frame: %s", c->path, why);
    }
    memcpy(m->from, f.key, GM_PK_LEN);
    memcpy(m->port, f.port, sizeof m->port);
    m->note = (const char *)note;
    m->note_len = note_len;
    c->off += f.head + f.len;
    return 1;
}

/* The next JSON line (0, *msg) or, on a frames connection, message frame (1, *m). */
static int read_unit(gm_node_conn_t *c, json_t **msg, gm_node_msg *m, int timeout_ms, gm_error *err)
{
    int64_t deadline = timeout_ms > 0 ? gm_mono_ms() + timeout_ms : 0;
    int rc;
    *msg = NULL;
    /* A line held for the next write goes now: its answer may be what we wait for. */
    if (c->pend_len && (rc = send_iov(c, NULL, 0, err)) != 0)
        return rc;
    for (;;) {
        if (c->frames && c->len > c->off && c->buf[c->off] == GM_API_FRAME_MESSAGE) {
            if ((rc = take_frame(c, m, err)) != 0)
                return rc;
        } else if (take_line(c, msg, &rc, err)) {
            return rc;
        }
        if (c->len - c->off > GM_NODE_CONN_LINE_MAX)
            return gm_error_set(err, GM_ETOOBIG, "the node at %s sent a line longer than %u bytes", c->path,
                                GM_NODE_CONN_LINE_MAX);
        /* Room to read: what is left moves to the front only when the end has too little room
         * (not after every message), and the buffer never grows past one byte more than the
         * longest line. */
        size_t want = c->frames ? CONN_READ_FRAMES : CONN_READ_MIN;
        if (c->off == c->len)
            c->off = c->len = 0;
        if (c->cap - c->len < want && c->off) {
            memmove(c->buf, c->buf + c->off, c->len - c->off);
            c->len -= c->off;
            c->off = 0;
        }
        if (c->cap - c->len < want && c->cap < GM_NODE_CONN_LINE_MAX + 1u) {
            size_t nc = c->cap ? c->cap * 2 : 16384;
            while (nc - c->len < want && nc < GM_NODE_CONN_LINE_MAX + 1u)
                nc *= 2;
            if (nc > GM_NODE_CONN_LINE_MAX + 1u)
                nc = GM_NODE_CONN_LINE_MAX + 1u;
            char *p = realloc(c->buf, nc);
            if (!p)
                return gm_error_set(err, GM_ENOMEM, "out of memory");
            c->buf = p;
            c->cap = nc;
        }
        /* Read what is there first; wait only when nothing is (one system call per read while
         * the node keeps the socket full, not a poll and a recv). */
        ssize_t k = recv(c->fd, c->buf + c->len, c->cap - c->len, MSG_DONTWAIT);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return gm_error_set(err, GM_EIO, "reading from the node at %s: %s", c->path, strerror(errno));
        if (k == 0)
            return gm_error_set(err, GM_EIO, "the node at %s closed the connection%s", c->path,
                                c->len > c->off ? " in the middle of a line" : "");
        if (k > 0) {
            c->len += (size_t)k;
            continue;
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
        if (pr < 0 && errno != EINTR)
            return gm_error_set(err, GM_EIO, "poll: %s", strerror(errno));
    }
}

int gm_node_conn_read(gm_node_conn_t *c, json_t **msg, int timeout_ms, gm_error *err)
{
    gm_node_msg m;
    int rc;
    /* Message frames are for gm_node_conn_read_msg: skipped here. */
    while ((rc = read_unit(c, msg, &m, timeout_ms, err)) == 1)
        ;
    return rc;
}

int gm_node_conn_read_msg(gm_node_conn_t *c, json_t **msg, gm_node_msg *m, int timeout_ms, gm_error *err)
{
    int rc = read_unit(c, msg, m, timeout_ms, err);
    const char *e = rc == 0 ? json_string_value(json_object_get(*msg, "event")) : NULL;
    if (!e || strcmp(e, "message") != 0)
        return rc;
    /* A node without frames: the same message as a JSON event, decoded here. */
    const char *from = json_string_value(json_object_get(*msg, "from"));
    const char *port = json_string_value(json_object_get(*msg, "port"));
    const char *data = json_string_value(json_object_get(*msg, "data"));
    size_t dl = data ? strlen(data) : 0;
    free(c->msg);
    c->msg = malloc(dl / 4 * 3 + 3);
    if (!c->msg)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    m->len = 0;
    if (!from || gm_pk_decode(from, m->from, NULL) != 0 || !port || strlen(port) >= sizeof m->port ||
        (dl && gm_b64_decode(data, c->msg, dl / 4 * 3 + 3, &m->len, NULL) != 0))
        return gm_error_set(err, GM_EPROTO, "the node at %s sent a malformed message event", c->path);
    snprintf(m->port, sizeof m->port, "%s", port);
    m->data = c->msg;
    /* A request with the access policy's note (from a node of frames 1 or none): the same note
     * as a noted frame brings. */
    const json_t *au = json_is_object(json_object_get(*msg, "authorized")) ? json_object_get(*msg, "authorized") : NULL;
    free(c->note);
    c->note = au ? json_dumps(au, JSON_COMPACT) : NULL;
    if (au && !c->note)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    m->note = c->note;
    m->note_len = c->note ? strlen(c->note) : 0;
    json_decref(*msg);
    *msg = NULL;
    return 1;
}

/* msg as one request line: compact JSON and '\n' (no NUL), its length in *len; NULL when it
 * cannot be encoded. */
static char *request_line(const json_t *msg, size_t *len)
{
    char *s = json_dumps(msg, JSON_COMPACT);
    if (!s)
        return NULL;
    *len = strlen(s) + 1;
    s[*len - 1] = '\n'; /* replaces the NUL */
    return s;
}

int gm_node_conn_send(gm_node_conn_t *c, const json_t *msg, gm_error *err)
{
    struct iovec iov;
    if (!(iov.iov_base = request_line(msg, &iov.iov_len)))
        return gm_error_set(err, GM_EINVAL, "cannot encode the request to the node");
    int rc = send_iov(c, &iov, 1, err);
    free(iov.iov_base);
    return rc;
}

/* The answer to the request named id (version 2: lines with other ids are skipped; with no id,
 * the next line), by the monotonic time end. */
static int await_answer(gm_node_conn_t *c, const char *id, json_t **resp, int64_t end, gm_error *err)
{
    int rc = 0;
    *resp = NULL;
    for (;;) {
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

int gm_node_conn_request(gm_node_conn_t *c, const json_t *req, json_t **resp, int timeout_ms, gm_error *err)
{
    *resp = NULL;
    int rc = gm_node_conn_send(c, req, err);
    if (rc != 0)
        return rc;
    return await_answer(c, json_string_value(json_object_get(req, "id")), resp, gm_mono_ms() + timeout_ms, err);
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

/* Send req without waiting for its answer, and free it (NULL: out of memory). */
static int send_owned(gm_node_conn_t *c, json_t *req, gm_error *err)
{
    int rc = req ? gm_node_conn_send(c, req, err) : gm_error_set(err, GM_ENOMEM, "out of memory");
    json_decref(req);
    return rc;
}

/* {"op":"subscribe","id":"subscribe","port":port}, with "requests_only":true when asked. */
static json_t *subscribe_req(const char *port, int requests_only)
{
    json_t *req = json_pack("{s:s,s:s,s:s}", "op", "subscribe", "id", "subscribe", "port", port);
    if (req && requests_only)
        json_object_set_new(req, "requests_only", json_true());
    return req;
}

/* {"op":"hello","id":"hello","versions":[2]}, asking for binary frames (the highest version we
 * speak) when frames is 1. */
static json_t *hello_req(int frames)
{
    json_t *req = json_pack("{s:s,s:s,s:[i]}", "op", "hello", "id", "hello", "versions", 2);
    /* 1, and the highest we speak apart: a node from before frames 2 answers any "frames" but 1
     * with 0 (JSON only) and ignores "frames_max" */
    if (req && frames) {
        json_object_set_new(req, "frames", json_integer(GM_API_FRAMES_V1));
        json_object_set_new(req, "frames_max", json_integer(GM_API_FRAMES_VERSION));
    }
    return req;
}

/* The frames version the node's answer to hello agrees to (1 from a node without noted frames),
 * 0 for none. */
static int frames_agreed(const json_t *resp)
{
    json_int_t v = json_integer_value(json_object_get(resp, "frames"));
    return v >= GM_API_FRAMES_V1 && v <= GM_API_FRAMES_VERSION ? (int)v : 0;
}

static int subscribe_frames(gm_node_conn_t *c, const char *port, int requests_only, int timeout_ms, gm_error *err);

int gm_node_conn_subscribe_frames(gm_node_conn_t *c, const char *port, int timeout_ms, gm_error *err)
{
    return subscribe_frames(c, port, 0, timeout_ms, err);
}

int gm_node_conn_subscribe_requests(gm_node_conn_t *c, const char *port, int timeout_ms, gm_error *err)
{
    return subscribe_frames(c, port, 1, timeout_ms, err);
}

static int subscribe_frames(gm_node_conn_t *c, const char *port, int requests_only, int timeout_ms, gm_error *err)
{
    /* hello and subscribe go out together (the node answers the lines of a connection in order,
     * so the subscription follows the negotiation): one round trip to the node, not two. */
    json_t *resp = NULL;
    int64_t end = gm_mono_ms() + timeout_ms;
    int rc = send_owned(c, hello_req(1), err);
    if (rc == 0)
        rc = send_owned(c, subscribe_req(port, requests_only), err);
    if (rc == 0)
        rc = await_answer(c, "hello", &resp, end, err);
    /* A node without frames (or without hello) streams JSON events instead: read_msg decodes them. */
    set_frames(c, rc == 0 ? frames_agreed(resp) : 0);
    const json_t *ops = json_object_get(resp, "ops");
    c->can_park = 0;
    for (size_t i = 0; rc == 0 && i < json_array_size(ops); i++) {
        const char *op = json_string_value(json_array_get(ops, i));
        if (op && !strcmp(op, "unsubscribe"))
            c->can_park = 1;
    }
    json_decref(resp);
    resp = NULL;
    if (rc == 0)
        rc = await_answer(c, "subscribe", &resp, end, err);
    if (rc == 0 && !json_is_true(json_object_get(resp, "ok")))
        rc = answer_error(resp, "subscribing to the local node", err);
    json_decref(resp);
    return rc;
}

/* hello for version 2, asking for binary frames when frames is 1 (c->frames says what the node
 * agreed to). */
static int hello(gm_node_conn_t *c, int frames, int timeout_ms, gm_error *err)
{
    json_t *req = hello_req(frames), *resp = NULL;
    if (!req)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    int rc = gm_node_conn_request(c, req, &resp, timeout_ms, err);
    json_decref(req);
    if (rc == 0 && !json_is_true(json_object_get(resp, "ok")))
        rc = answer_error(resp, "negotiating version 2 of the local API (is the node older?)", err);
    else if (rc == 0 && json_integer_value(json_object_get(resp, "version")) != 2)
        rc = gm_error_set(err, GM_EPROTO, "the node at %s did not agree on version 2 of the local API", c->path);
    if (frames)
        set_frames(c, rc == 0 ? frames_agreed(resp) : 0);
    json_decref(resp);
    return rc;
}

int gm_node_conn_hello(gm_node_conn_t *c, int timeout_ms, gm_error *err)
{
    return hello(c, 0, timeout_ms, err);
}

int gm_node_conn_hello_frames(gm_node_conn_t *c, int timeout_ms, gm_error *err)
{
    return hello(c, 1, timeout_ms, err);
}

void gm_node_conn_close(gm_node_conn_t *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    free(c->buf);
    free(c->msg);
    free(c->note);
    free(c->pend);
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

/* Write iov[0..n) whole (a head and a payload: one sendmsg), after the line held for the next
 * write if any, through EINTR and partial writes. */
static int send_iov(gm_node_conn_t *c, struct iovec *iov, int n, gm_error *err)
{
    struct iovec all[4];
    if (c->pend_len) {
        if (n > 3)
            return gm_error_set(err, GM_EINVAL, "internal: %d pieces to send with a held line", n);
        all[0] = (struct iovec){c->pend, c->pend_len};
        for (int i = 0; i < n; i++)
            all[i + 1] = iov[i];
        iov = all;
        n++;
        c->pend_len = 0; /* sent below, or the connection is broken and useless anyway */
    }
    while (n > 0) {
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t k = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return gm_error_set(err, GM_EIO, "cannot send to the node at %s: %s", c->path,
                                strerror(k < 0 ? errno : EPIPE));
        while (n > 0 && (size_t)k >= iov->iov_len) {
            k -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + k;
            iov->iov_len -= (size_t)k;
        }
    }
    return 0;
}

/* The payload as one binary send frame (docs/local-api.md "Binary frames") with its
 * confirmation asked for; 0 once the node answered {"event":"sent"}. */
static int send_frame(gm_node_conn_t *c, const uint8_t to[GM_PK_LEN], const char *port, const void *data, size_t len,
                      int timeout_ms, gm_error *err)
{
    uint8_t head[GM_API_FRAME_HEAD_MAX];
    size_t hl = gm_api_frame_head(head, GM_API_FRAME_SEND, GM_API_FRAME_F_ACK, 1, (uint32_t)len, to, port);
    struct iovec iov[2] = {{head, hl}, {(void *)data, len}};
    int rc = send_iov(c, iov, len ? 2 : 1, err);
    int64_t end = gm_mono_ms() + timeout_ms;
    while (rc == 0) {
        json_t *ev = NULL;
        int64_t left = end - gm_mono_ms();
        if ((rc = gm_node_conn_read(c, &ev, left > 0 ? (int)left : 1, err)) != 0)
            break;
        const char *e = json_string_value(json_object_get(ev, "event"));
        if (e && !strcmp(e, "sent")) {
            json_decref(ev);
            break;
        }
        if ((e && !strcmp(e, "send_failed")) || json_is_false(json_object_get(ev, "ok"))) {
            char pk[GM_PK_B64_LEN + 1], what[128];
            gm_pk_encode(to, pk);
            snprintf(what, sizeof what, "sending to %.12s...", pk);
            rc = answer_error(ev, what, err);
        }
        json_decref(ev);
    }
    return rc;
}

int gm_node_api_send(const char *sock_path, const uint8_t to[GM_PK_LEN], const char *port, const void *data,
                     size_t len, int timeout_ms, gm_error *err)
{
    char pk[GM_PK_B64_LEN + 1];
    gm_node_conn_t *c;
    if (!gm_api_port_valid(port))
        return gm_error_set(err, GM_EINVAL, "port \"%s\" must be 1-32 characters of [a-z0-9._-]", port);
    int rc = gm_node_conn_open_path(sock_path, &c, err);
    if (rc != 0)
        return rc;
    /* Binary frames when the node speaks them; JSON and base64 with an older node. */
    json_t *hello = hello_req(1), *resp = NULL;
    rc = hello ? gm_node_conn_request(c, hello, &resp, timeout_ms, err) : gm_error_set(err, GM_ENOMEM, "out of memory");
    json_decref(hello);
    int frames = rc == 0 ? frames_agreed(resp) : 0;
    json_decref(resp);
    resp = NULL;
    if (rc != 0) {
        gm_node_conn_close(c);
        return rc;
    }
    if (frames) {
        rc = send_frame(c, to, port, data, len, timeout_ms, err);
        gm_node_conn_close(c);
        return rc;
    }
    gm_pk_encode(to, pk);
    char *b64 = malloc(gm_b64_len(len) + 1);
    if (!b64) {
        gm_node_conn_close(c);
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    }
    b64[0] = 0;
    if (len)
        gm_b64_encode(data, len, b64, gm_b64_len(len) + 1);
    json_t *req = json_pack("{s:s,s:s,s:s,s:s,s:s}", "op", "send", "id", "send", "to", pk, "port", port, "data", b64);
    free(b64);
    rc = req ? gm_node_conn_request(c, req, &resp, timeout_ms, err) : gm_error_set(err, GM_ENOMEM, "out of memory");
    json_decref(req);
    gm_node_conn_close(c);
    if (rc == 0 && !json_is_true(json_object_get(resp, "ok"))) {
        char what[128];
        snprintf(what, sizeof what, "sending to %.12s...", pk);
        rc = answer_error(resp, what, err);
    }
    json_decref(resp);
    return rc;
}

int gm_node_discover(const char *sock_path, const char *capability, int timeout_ms, json_t **agents, gm_error *err)
{
    gm_node_conn_t *conn = NULL;
    json_t *resp = NULL, *req = json_pack("{s:s,s:s,s:i}", "op", "discover", "id", "discover", "deadline_ms",
                                          timeout_ms);
    *agents = NULL;
    if (!req)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    if (capability)
        json_object_set_new(req, "capability", json_string(capability));
    int rc = gm_node_conn_open_path(sock_path, &conn, err);
    if (rc == 0)
        rc = gm_node_conn_hello(conn, timeout_ms, err);
    if (rc == 0)
        rc = gm_node_conn_request(conn, req, &resp, timeout_ms + 1000, err);
    if (rc == 0 && !json_is_true(json_object_get(resp, "ok")))
        rc = answer_error(resp, "discovery through the local node", err);
    else if (rc == 0 && !json_is_array(json_object_get(resp, "agents")))
        rc = gm_error_set(err, GM_EPROTO, "the node answered discover without an \"agents\" array");
    if (rc == 0)
        *agents = json_incref(json_object_get(resp, "agents"));
    gm_node_conn_close(conn);
    json_decref(req);
    json_decref(resp);
    return rc;
}

int gm_node_conn_frames(const gm_node_conn_t *c)
{
    return c->frames;
}

int gm_node_conn_can_park(const gm_node_conn_t *c)
{
    return c->can_park;
}

int gm_node_conn_resubscribe(gm_node_conn_t *c, const char *port, gm_error *err)
{
    json_t *req = subscribe_req(port, 0);
    size_t len = 0;
    char *s = req && json_object_set_new(req, "quiet", json_true()) == 0 ? request_line(req, &len) : NULL;
    json_decref(req);
    if (!s)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    free(c->pend);
    c->pend = s;
    c->pend_len = len;
    return 0;
}

int gm_node_conn_park(gm_node_conn_t *c, gm_error *err)
{
    return send_owned(c, json_pack("{s:s,s:s,s:b}", "op", "unsubscribe", "id", "park", "quiet", 1), err);
}

int gm_node_conn_read_unit(gm_node_conn_t *c, json_t **msg, gm_node_msg *m, int timeout_ms, gm_error *err)
{
    return read_unit(c, msg, m, timeout_ms, err);
}

int gm_node_conn_post(gm_node_conn_t *c, const uint8_t to[GM_PK_LEN], const char *port, const void *data, size_t len,
                      uint32_t seq, gm_error *err)
{
    if (!gm_api_port_valid(port))
        return gm_error_set(err, GM_EINVAL, "port \"%s\" must be 1-32 characters of [a-z0-9._-]", port);
    if (c->frames) {
        uint8_t head[GM_API_FRAME_HEAD_MAX];
        size_t hl = gm_api_frame_head(head, GM_API_FRAME_SEND, 0, seq, (uint32_t)len, to, port);
        struct iovec iov[2] = {{head, hl}, {(void *)data, len}};
        return send_iov(c, iov, len ? 2 : 1, err);
    }
    /* A node without frames: the JSON `send`, its answer named by the id "send-<seq>". */
    char pk[GM_PK_B64_LEN + 1], id[24];
    char *b64 = malloc(gm_b64_len(len) + 1);
    if (!b64)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    b64[0] = 0;
    if (len)
        gm_b64_encode(data, len, b64, gm_b64_len(len) + 1);
    gm_pk_encode(to, pk);
    snprintf(id, sizeof id, "send-%u", seq);
    json_t *req = json_pack("{s:s,s:s,s:s,s:s,s:s}", "op", "send", "id", id, "to", pk, "port", port, "data", b64);
    free(b64);
    int rc = req ? gm_node_conn_send(c, req, err) : gm_error_set(err, GM_ENOMEM, "out of memory");
    json_decref(req);
    return rc;
}

int gm_node_conn_post_failed(const json_t *line, uint32_t seq, const uint8_t to[GM_PK_LEN], gm_error *err)
{
    const char *ev = json_string_value(json_object_get(line, "event"));
    const json_t *id = json_object_get(line, "id");
    char want[24], pk[GM_PK_B64_LEN + 1], what[128];
    snprintf(want, sizeof want, "send-%u", seq);
    int failed = ev ? !strcmp(ev, "send_failed") && json_integer_value(json_object_get(line, "seq")) == (json_int_t)seq
                    : json_is_false(json_object_get(line, "ok")) &&
                          (!id || json_is_null(id) || (json_is_string(id) && !strcmp(json_string_value(id), want)));
    if (!failed)
        return 0;
    gm_pk_encode(to, pk);
    snprintf(what, sizeof what, "sending to %.12s...", pk);
    return answer_error(line, what, err);
}

int gm_node_conn_post_flush(gm_node_conn_t *c, int timeout_ms, size_t *failed, gm_error *err)
{
    /* Lines are answered in order: every failure of a post before this request comes first. */
    json_t *req = json_pack("{s:s,s:s}", "op", "status", "id", "flush"), *line = NULL;
    int64_t end = gm_mono_ms() + timeout_ms;
    *failed = 0;
    int rc = send_owned(c, req, err);
    while (rc == 0) {
        int64_t left = end - gm_mono_ms();
        if (timeout_ms > 0 && left <= 0)
            return gm_error_set(err, GM_ETIMEOUT, "the node at %s did not take the posts within %d ms", c->path,
                                timeout_ms);
        if ((rc = gm_node_conn_read(c, &line, timeout_ms > 0 ? (int)left : 0, err)) != 0)
            break;
        const char *ev = json_string_value(json_object_get(line, "event"));
        const char *id = json_string_value(json_object_get(line, "id"));
        int done = id && !strcmp(id, "flush");
        if ((ev && !strcmp(ev, "send_failed")) ||
            (!ev && id && !strncmp(id, "send-", 5) && json_is_false(json_object_get(line, "ok"))))
            (*failed)++;
        json_decref(line);
        if (done)
            break;
    }
    return rc;
}
