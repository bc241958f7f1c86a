/* The NA's HTTP layer on libmicrohttpd (event-driven: a pool of threads each polls its share
 * of the connections with epoll, so a held connection costs a socket, not a thread; a handler
 * blocking on SQLite holds only its own thread): connection limits, a deadline for each whole
 * request, per-address rate limits, body collection with a hard cap, routing, admin
 * authentication, the error envelope, response headers, metrics and the access log. A CRL
 * watch (GET /crl?after=N&wait=S) is held by suspending its connection (no thread, no timer
 * per watch): a newer CRL or the end of its wait resumes it, and the handler answers. A reply
 * that rests on a commit not yet on disk is parked the same way (its connection suspended, its
 * reply kept) while the store's group commit syncs it, so the thread serves its other
 * connections meanwhile; the store's thread resumes it once durable, and it is answered then. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include <sodium.h>

#include "gm/gmtime.h"
#include "gm/tls.h"
#include "gm/util.h"
#include "na_internal.h"
#include "store.h"

/* A body over the limit is read and dropped, then answered 413 (answering before it is read
 * makes the close reset the connection under the client, who then never sees the 413). Past
 * this many bytes the NA stops reading: an announced length that large is answered at once,
 * a stream that long is cut. */
#define NA_DRAIN_MAX ((size_t)16 * 1024 * 1024)

/* State MHD keeps for one request while its body arrives. A request over the body limit or
 * over its rate limit has its body read and dropped (never buffered), then is refused. */
typedef struct conn_ctx {
    gm_buf body;
    int too_big;
    unsigned retry_after; /* rate-limited: seconds until the bucket has a token again */
    na_rl_kind rl_kind;
    size_t drained;
    struct timespec started;
    /* a CRL watch held (suspended) until a CRL newer than `after` or until_ms (na_watch.waiters) */
    struct conn_ctx *wprev, *wnext;
    struct MHD_Connection *conn;
    uint64_t after;
    int64_t until_ms;
    int fd;      /* the connection's socket, probed while held */
    int held;    /* it was suspended at least once: the answer comes now, never another hold */
    int listed;  /* in the waiters list */
    /* a reply parked until the store has made what it rests on durable (na_watch.dlock) */
    gm_store_waiter dw;
    na_req parked;
    int parked_route;
    int parking;   /* parked is set: the next call of the handler answers it */
    int durable;   /* dw.done ran */
    int suspended; /* suspended for it, not yet resumed */
} conn_ctx;

/* ---- replies ---- */

int na_reply_text(na_req *r, int status, const char *content_type, const char *text, size_t len)
{
    free(r->reply);
    r->reply = malloc(len + 1);
    if (!r->reply) {
        r->status = 500;
        return 500;
    }
    memcpy(r->reply, text, len);
    r->reply[len] = '\0';
    r->status = status;
    r->content_type = content_type;
    return status;
}

int na_reply_json(na_req *r, int status, json_t *v)
{
    char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    free(r->reply);
    r->reply = text;
    r->content_type = "application/json";
    r->status = text ? status : 500;
    return r->status;
}

static int reply_error_v(na_req *r, int status, const char *code, const char *reason, const char *fmt, va_list ap)
{
    char msg[768];
    vsnprintf(msg, sizeof msg, fmt, ap);
    /* Messages may quote client input: keep them printable ASCII so they always encode. */
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            *p = '?';
    json_t *e = json_pack("{s:s,s:s,s:s}", "code", code, "message", msg, "request_id", r->request_id);
    if (e && reason)
        json_object_set_new(e, "reason", json_string(reason));
    return na_reply_json(r, status, json_pack("{s:o}", "error", e));
}

int na_reply_error(na_req *r, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int st = reply_error_v(r, status, code, NULL, fmt, ap);
    va_end(ap);
    return st;
}

int na_reply_error_reason(na_req *r, int status, const char *code, const char *reason, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int st = reply_error_v(r, status, code, reason, fmt, ap);
    va_end(ap);
    return st;
}

int na_reply_gm_error(na_req *r, const gm_error *err)
{
    switch (err->code) {
    case GM_EINVAL:
    case GM_EFORMAT: return na_reply_error(r, 400, "invalid_request", "%s", err->msg);
    case GM_EAUTH:
    case GM_ESIG: return na_reply_error(r, 401, "unauthorized", "%s", err->msg);
    case GM_EDENIED: return na_reply_error(r, 403, "forbidden", "%s", err->msg);
    case GM_ENOTFOUND: return na_reply_error(r, 404, "not_found", "%s", err->msg);
    case GM_ECONFLICT: return na_reply_error(r, 409, "conflict", "%s", err->msg);
    case GM_ETOOBIG: return na_reply_error(r, 413, "body_too_large", "%s", err->msg);
    /* Storage and internal errors name files and paths of the NA: the detail goes to the log,
     * the client gets the request id to quote. */
    case GM_EDB:
        na_log(r->na, "%s storage error: %s", r->request_id, err->msg);
        return na_reply_error(r, 503, "storage_unavailable",
                              "the NA's storage is unavailable; try again later (the NA log has the details under "
                              "request id %s)",
                              r->request_id);
    default:
        na_log(r->na, "%s internal error: %s", r->request_id, err->msg);
        return na_reply_error(r, 500, "internal_error",
                              "internal error in the NA (the NA log has the details under request id %s)",
                              r->request_id);
    }
}

const char *na_req_header(na_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *na_req_query(na_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

static enum MHD_Result has_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    (void)value;
    if (strcmp(key, ((const char **)cls)[0]) != 0)
        return MHD_YES;
    ((const char **)cls)[1] = key;
    return MHD_NO;
}

int na_req_has_query(na_req *r, const char *name)
{
    const char *st[2] = {name, NULL};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, has_arg, st);
    return st[1] != NULL;
}

/* ---- admin authentication ---- */

int na_admin_authenticate(na_req *r)
{
    gm_na_t *na = r->na;
    gm_admin_auth a;
    gm_error e = {0};
    if (gm_reqsig_admin_from_headers(&a, na_req_header(r, GM_ADMIN_HDR_KEY_ID),
                                     na_req_header(r, GM_ADMIN_HDR_TIMESTAMP), na_req_header(r, GM_ADMIN_HDR_NONCE),
                                     na_req_header(r, GM_ADMIN_HDR_SIGNATURE), &e) != 0)
        return na_reply_error(r, 401, "missing_admin_auth", "%s", e.msg), -1;
    const gm_na_operator *op = NULL;
    for (size_t i = 0; i < na->cfg.n_operators; i++)
        if (!strcmp(na->cfg.operators[i].key_id, a.key_id))
            op = &na->cfg.operators[i];
    if (!op)
        return na_reply_error(r, 401, "unknown_admin_key", "operator key id '%s' is not configured on this NA",
                              a.key_id),
               -1;
    /* GET signs {}; a POST without a body signs {} too. */
    if (strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0 || r->body_len == 0) {
        r->json = json_object();
    } else {
        json_error_t je;
        r->json = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &je);
        if (!r->json)
            return na_reply_error(r, 400, "malformed_json", "request body is not valid JSON: %s (line %d)", je.text,
                                  je.line),
                   -1;
        if (!json_is_object(r->json))
            return na_reply_error(r, 400, "invalid_body", "request body must be a JSON object"), -1;
    }
    char *bytes = NULL;
    if (gm_reqsig_admin_bytes(r->json, a.key_id, a.nonce, a.timestamp, &bytes, NULL, &e) != 0)
        return na_reply_error(r, 400, "invalid_body", "%s", e.msg), -1;
    free(bytes);
    int rc = gm_reqsig_admin_check(&a, r->json, op->pk, r->now, GM_REQSIG_WINDOW_S, na_nonce_record, na, &e);
    switch (rc) {
    case 0: r->admin_key_id = op->key_id; return 0;
    case GM_EFORMAT: return na_reply_error(r, 401, "invalid_admin_auth", "%s", e.msg), -1;
    case GM_EEXPIRED: return na_reply_error(r, 401, "stale_timestamp", "%s", e.msg), -1;
    case GM_ESIG: return na_reply_error(r, 401, "bad_signature", "%s", e.msg), -1;
    case GM_ECONFLICT: return na_reply_error(r, 401, "replayed_nonce", "%s", e.msg), -1;
    default: return na_reply_gm_error(r, &e), -1;
    }
}

/* ---- request deadlines ----
 * libmicrohttpd's timeout only closes idle connections: a client sending one header byte
 * every few seconds would hold its slot for ever. Every connection gets a deadline by which
 * its current request (headers and body) must have arrived; a watchdog thread shuts down the
 * socket of a connection past it, and libmicrohttpd then closes it as if the client had. The
 * deadline restarts when a request completes (keep-alive). */

typedef struct na_watch_conn {
    struct na_watch_conn *prev, *next;
    int fd;
    int handling;        /* the handler runs: its reply is on its way, not the client's fault */
    int64_t deadline_ms;
} na_watch_conn;

struct na_watch {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    int stopping, started;
    int64_t timeout_ms;
    na_watch_conn *head;
    uint64_t expired;
    gm_na_t *na;
    /* CRL watches held: suspended connections, resumed by a newer CRL, their wait's end, or
     * the server stopping. wlock is never taken inside a libmicrohttpd callback other than
     * the access handler that suspends, so holding it across MHD_suspend_connection is safe. */
    pthread_mutex_t wlock;
    conn_ctx *waiters;
    unsigned n_waiters;
    int closing;
    unsigned ticks; /* of the watchdog thread */
    /* replies parked for durability: dw.done resumes them under dlock; stopping waits for none */
    pthread_mutex_t dlock;
    pthread_cond_t dcond;
    unsigned n_parked;
};

#define WAKE_BATCH 256

/* A held watch whose client went away or sent something (libmicrohttpd does not poll a
 * suspended connection, so it would otherwise hold its slot until its wait ends). */
static int watch_gone(const conn_ctx *c)
{
    char b;
    if (c->fd < 0)
        return 0;
    ssize_t r = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return r >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* Unlink the waiters that pass (all when newer_than is UINT64_MAX: stopping; by deadline, or
 * gone when probe, when now_ms >= 0; else those holding less than newer_than) and resume
 * them, outside wlock: the handler answers each (200, or 304). */
static void waiters_wake(struct na_watch *w, uint64_t newer_than, int64_t now_ms, int probe)
{
    for (;;) {
        struct MHD_Connection *batch[WAKE_BATCH];
        size_t n = 0;
        pthread_mutex_lock(&w->wlock);
        conn_ctx *c = w->waiters;
        while (c && n < WAKE_BATCH) {
            conn_ctx *next = c->wnext;
            if (newer_than == UINT64_MAX || (now_ms < 0 && c->after < newer_than) ||
                (now_ms >= 0 && (c->until_ms <= now_ms || (probe && watch_gone(c))))) {
                if (c->wprev)
                    c->wprev->wnext = c->wnext;
                else
                    w->waiters = c->wnext;
                if (c->wnext)
                    c->wnext->wprev = c->wprev;
                c->listed = 0;
                w->n_waiters--;
                batch[n++] = c->conn;
            }
            c = next;
        }
        pthread_mutex_unlock(&w->wlock);
        for (size_t i = 0; i < n; i++)
            MHD_resume_connection(batch[i]);
        if (n < WAKE_BATCH)
            return;
    }
}

void na_server_crl_published(gm_na_t *na, uint64_t seq)
{
    if (na->watch)
        waiters_wake(na->watch, seq, -1, 0);
}

unsigned na_server_parked(gm_na_t *na)
{
    struct na_watch *w = na->watch;
    if (!w)
        return 0;
    pthread_mutex_lock(&w->dlock);
    unsigned n = w->n_parked;
    pthread_mutex_unlock(&w->dlock);
    return n;
}

unsigned na_server_crl_watchers(gm_na_t *na)
{
    struct na_watch *w = na->watch;
    if (!w)
        return 0;
    pthread_mutex_lock(&w->wlock);
    unsigned n = w->n_waiters;
    pthread_mutex_unlock(&w->wlock);
    return n;
}

/* Hold cx's connection until a CRL newer than cx->after: 1 when held (suspended), 0 when the
 * answer must come now (a newer CRL is already cached, or the server is stopping). Checked
 * under wlock, which na_server_crl_published takes after the cache changed: no wake is lost. */
static int waiters_hold(gm_na_t *na, conn_ctx *cx)
{
    struct na_watch *w = na->watch;
    uint64_t seq;
    if (!w)
        return 0;
    pthread_mutex_lock(&w->wlock);
    pthread_mutex_lock(&na->crl_lock);
    seq = na->crl_text ? na->crl_seq : 0;
    int newer = na->crl_text && seq > cx->after;
    pthread_mutex_unlock(&na->crl_lock);
    if (newer || w->closing) {
        pthread_mutex_unlock(&w->wlock);
        return 0;
    }
    MHD_suspend_connection(cx->conn);
    cx->wprev = NULL;
    cx->wnext = w->waiters;
    if (w->waiters)
        w->waiters->wprev = cx;
    w->waiters = cx;
    w->n_waiters++;
    cx->listed = 1;
    cx->held = 1;
    pthread_mutex_unlock(&w->wlock);
    return 1;
}

static void *watch_main(void *arg)
{
    struct na_watch *w = arg;
    pthread_mutex_lock(&w->lock);
    while (!w->stopping) {
        int64_t now = gm_mono_ms();
        unsigned n = 0;
        for (na_watch_conn *c = w->head; c; c = c->next)
            if (!c->handling && c->deadline_ms <= now && c->fd >= 0) {
                /* Under the lock: the CLOSED notification (which runs before libmicrohttpd
                 * closes the fd) cannot have happened, so the fd is still this connection's. */
                shutdown(c->fd, SHUT_RDWR);
                c->fd = -1;
                n++;
            }
        w->expired += n;
        if (n)
            na_log(w->na, "closed %u connection(s) whose request did not arrive within %lld s", n,
                   (long long)(w->timeout_ms / 1000));
        /* CRL watches whose wait is over (answered 304), and once a second those whose client left */
        pthread_mutex_unlock(&w->lock);
        waiters_wake(w, 0, now, (++w->ticks & 3) == 0);
        pthread_mutex_lock(&w->lock);
        if (w->stopping)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 250 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&w->wake, &w->lock, &ts);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    gm_na_t *na = cls;
    struct na_watch *w = na->watch;
    if (code == MHD_CONNECTION_NOTIFY_STARTED)
        na_metrics_add(&na->metrics, &na->metrics.connections, 1);
    if (!w)
        return;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        na_watch_conn *c = calloc(1, sizeof *c);
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!c)
            return;
        c->fd = ci ? ci->connect_fd : -1;
        pthread_mutex_lock(&w->lock);
        c->deadline_ms = gm_mono_ms() + w->timeout_ms;
        c->next = w->head;
        if (w->head)
            w->head->prev = c;
        w->head = c;
        pthread_mutex_unlock(&w->lock);
        *socket_context = c;
    } else if (*socket_context) {
        na_watch_conn *c = *socket_context;
        pthread_mutex_lock(&w->lock);
        if (c->prev)
            c->prev->next = c->next;
        else
            w->head = c->next;
        if (c->next)
            c->next->prev = c->prev;
        pthread_mutex_unlock(&w->lock);
        free(c);
        *socket_context = NULL;
    }
}

/* handling 1: the request arrived whole (stop the clock); 0: it is done (restart it). */
static void watch_mark(gm_na_t *na, struct MHD_Connection *conn, int handling)
{
    struct na_watch *w = na->watch;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    na_watch_conn *c = ci ? ci->socket_context : NULL;
    if (!w || !c)
        return;
    pthread_mutex_lock(&w->lock);
    c->handling = handling;
    if (!handling)
        c->deadline_ms = gm_mono_ms() + w->timeout_ms;
    pthread_mutex_unlock(&w->lock);
}

static int watch_start(gm_na_t *na, unsigned timeout_s, gm_error *err)
{
    struct na_watch *w = calloc(1, sizeof *w);
    if (!w)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    pthread_mutex_init(&w->wlock, NULL);
    pthread_mutex_init(&w->dlock, NULL);
    pthread_cond_init(&w->dcond, NULL);
    w->timeout_ms = (int64_t)timeout_s * 1000;
    w->na = na;
    if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
        pthread_cond_destroy(&w->dcond);
        pthread_mutex_destroy(&w->dlock);
        pthread_mutex_destroy(&w->wlock);
        pthread_cond_destroy(&w->wake);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return gm_error_set(err, GM_EIO, "cannot start the request deadline thread");
    }
    w->started = 1;
    na->watch = w;
    return 0;
}

/* After the daemon stopped (every connection notified closed). */
static void watch_stop(gm_na_t *na)
{
    struct na_watch *w = na->watch;
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = 1;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    if (w->started)
        pthread_join(w->thread, NULL);
    while (w->head) {
        na_watch_conn *c = w->head;
        w->head = c->next;
        free(c);
    }
    pthread_cond_destroy(&w->dcond);
    pthread_mutex_destroy(&w->dlock);
    pthread_mutex_destroy(&w->wlock);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    free(w);
    na->watch = NULL;
}

/* Each connection is a file descriptor: raise the soft limit toward the hard one so that
 * max_connections fit, and lower max_connections when the hard limit is below. */
static unsigned fit_fd_limit(gm_na_t *na, unsigned want)
{
    struct rlimit rl;
    const rlim_t spare = 128; /* database, log, listening socket, epoll, clients of other threads */
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return want;
    rlim_t need = (rlim_t)want + spare;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        rlim_t to = (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need) ? need : rl.rlim_max;
        struct rlimit nl = {.rlim_cur = to, .rlim_max = rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &nl) == 0)
            rl.rlim_cur = to;
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        unsigned fit = rl.rlim_cur > spare + 4 ? (unsigned)(rl.rlim_cur - spare) : 4;
        na_log(na, "max_connections %u lowered to %u: the file descriptor limit is %llu", want, fit,
               (unsigned long long)rl.rlim_cur);
        return fit;
    }
    return want;
}

/* ---- MHD glue ---- */

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static enum MHD_Result send_reply(struct MHD_Connection *conn, na_req *r)
{
    size_t len = r->reply ? strlen(r->reply) : 0;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, r->reply ? r->reply : (void *)"", r->reply ? MHD_RESPMEM_MUST_FREE
                                                                                         : MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    r->reply = NULL; /* MHD frees it now */
    if (len)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                r->content_type ? r->content_type : "application/json");
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    /* Every answer, the console's page included: nothing from elsewhere, no inline script,
     * no framing, no sniffing, no referrer (docs/na-api.md "Console"). */
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
                            "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    if (r->etag[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, r->etag);
    if (r->retry_after) {
        char ra[16];
        snprintf(ra, sizeof ra, "%u", r->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void req_init(na_req *r, gm_na_t *na, struct MHD_Connection *conn, const char *method, const char *url)
{
    memset(r, 0, sizeof *r);
    r->na = na;
    r->conn = conn;
    r->method = method;
    r->path = url;
    r->body = "";
    r->now = gm_time_now();
    gm_uuid4(r->request_id);
}

static const struct sockaddr *client_addr(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    return ci ? ci->client_addr : NULL;
}

/* The client address as text, for the log line of a refused request. */
static void addr_text(const struct sockaddr *sa, char out[INET6_ADDRSTRLEN])
{
    snprintf(out, INET6_ADDRSTRLEN, "?");
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out, INET6_ADDRSTRLEN);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out, INET6_ADDRSTRLEN);
}

/* A routine poll that went well: a CRL or policy not modified (nodes poll every few seconds),
 * a health, readiness or metrics scrape answered 200. It is counted in /metrics but not
 * logged, so the log keeps what happened; every error is still logged. */
static int quiet_poll(int route, int status)
{
    if (route < 0)
        return 0;
    na_handler fn = na_routes[route].fn;
    if (status == 304)
        return fn == na_handle_crl || fn == na_handle_access_policy;
    return status == 200 && (fn == na_handle_health || fn == na_handle_ready || fn == na_handle_metrics);
}

/* Log, count and send the reply; the request is done. */
static enum MHD_Result answer(gm_na_t *na, na_req *r, int route, conn_ctx *cx)
{
    na_metrics_count(&na->metrics, route, r->status, ms_since(&cx->started) / 1e3);
    if (r->status == 429) {
        char from[INET6_ADDRSTRLEN];
        addr_text(client_addr(r->conn), from);
        na_log(na, "%s %s %s -> 429 %.1fms (rate limited: %s)", r->request_id, r->method, r->path,
               ms_since(&cx->started), from);
    } else if (!quiet_poll(route, r->status)) {
        na_log(na, "%s %s %s -> %d %.1fms", r->request_id, r->method, r->path, r->status, ms_since(&cx->started));
    }
    enum MHD_Result ret = send_reply(r->conn, r);
    free(r->reply);
    json_decref(r->json);
    json_decref(r->member);
    return ret;
}

/* The store made the parked reply's data durable (or failed to): resume its connection. On a
 * store thread, possibly before the handler that parked it has returned. */
static void parked_durable(gm_store_waiter *dw)
{
    conn_ctx *cx = dw->arg;
    struct na_watch *w = cx->parked.na->watch;
    pthread_mutex_lock(&w->dlock);
    cx->durable = 1;
    if (cx->suspended) {
        cx->suspended = 0;
        MHD_resume_connection(cx->conn); /* under dlock: na_server_stop waits for none parked */
        if (--w->n_parked == 0)
            pthread_cond_broadcast(&w->dcond);
    }
    pthread_mutex_unlock(&w->dlock);
}

static enum MHD_Result finish(gm_na_t *na, na_req *r, int route, conn_ctx *cx)
{
    if (!r->reply)
        na_reply_error(r, 500, "internal_error", "the handler produced no reply");
    /* Nothing is answered from a commit a crash could still take back (group commit). While
     * another thread's sync runs, the reply is parked and the thread serves other connections. */
    gm_error de = {0};
    struct na_watch *w = na->watch;
    int rc;
    if (!w) {
        rc = gm_store_durable_wait(na->store, &de);
    } else {
        cx->parked = *r;
        cx->parked_route = route;
        cx->conn = r->conn;
        cx->durable = 0;
        cx->dw = (gm_store_waiter){.done = parked_durable, .arg = cx};
        rc = gm_store_durable_notify(na->store, &cx->dw, &de);
        if (rc == 1) {
            pthread_mutex_lock(&w->dlock);
            if (!cx->durable) {
                MHD_suspend_connection(r->conn);
                cx->suspended = 1;
                cx->parking = 1;
                w->n_parked++;
            }
            pthread_mutex_unlock(&w->dlock);
            if (cx->parking)
                return MHD_YES; /* answered when resumed: on_request calls dispatch again */
            rc = cx->dw.rc;
            de = cx->dw.err;
        }
    }
    if (rc != 0)
        na_reply_gm_error(r, &de);
    return answer(na, r, route, cx);
}

/* A failed admin authentication takes a token from the bucket of (claimed key id, address);
 * with none left the answer is 429. The signature was checked first, so a correctly signed
 * request never lands here, whatever others sent from the same address. */
static void auth_failed(gm_na_t *na, na_req *r)
{
    const char *claim = na_req_header(r, GM_ADMIN_HDR_KEY_ID);
    char shown[GM_KEY_ID_MAX];
    snprintf(shown, sizeof shown, "%s", claim ? claim : "");
    unsigned wait = na_ratelimit_check_claim(&na->ratelimit, client_addr(r->conn), claim ? claim : "",
                                             NA_RL_AUTH_FAILURES, 1, gm_mono_ms());
    if (!wait)
        return;
    r->retry_after = wait;
    na_metrics_add(&na->metrics, &na->metrics.rate_limited[NA_RL_AUTH_FAILURES], 1);
    na_reply_error(r, 429, "rate_limited",
                   "too many failed admin authentications for key id '%s' from this address; retry in %u s",
                   shown, wait);
}

static enum MHD_Result dispatch(gm_na_t *na, struct MHD_Connection *conn, const char *url, const char *method,
                                conn_ctx *cx)
{
    na_req r;
    if (cx->parking) { /* resumed: what its reply rests on is durable now, or failed */
        r = cx->parked;
        cx->parking = 0;
        if (cx->dw.rc != 0)
            na_reply_gm_error(&r, &cx->dw.err);
        return answer(na, &r, cx->parked_route, cx);
    }
    watch_mark(na, conn, 1);
    req_init(&r, na, conn, method, url);
    int known = 0;
    const char *rest = "";
    int route = na_route_find(method, url, &known, &rest);
    if (cx->retry_after) {
        r.retry_after = cx->retry_after;
        na_metrics_add(&na->metrics, &na->metrics.rate_limited[cx->rl_kind], 1);
        if (cx->rl_kind == NA_RL_READS)
            na_reply_error(&r, 429, "rate_limited", "too many discovery reads from this address; retry in %u s",
                           cx->retry_after);
        else
            na_reply_error(&r, 429, "rate_limited", "too many requests from this address; retry in %u s",
                           cx->retry_after);
    } else if (cx->too_big) {
        na_reply_error(&r, 413, "body_too_large", "request body is larger than %zu bytes", na->cfg.max_body_bytes);
    } else if (route < 0) {
        if (known)
            na_reply_error(&r, 405, "method_not_allowed", "%s is not allowed on %s", method, url);
        else
            na_reply_error(&r, 404, "not_found", "no endpoint %s", url);
    } else {
        const na_route *rt = &na_routes[route];
        r.path_rest = rest;
        if (cx->body.p) {
            r.body = cx->body.p;
            r.body_len = cx->body.len;
        }
        r.watch_done = cx->held;
        if (rt->flags & NA_ROUTE_MEMBER) {
            if (na_member_authenticate(&r) == 0)
                rt->fn(&r);
        } else if (!(rt->flags & NA_ROUTE_ADMIN) || na_admin_authenticate(&r) == 0)
            rt->fn(&r);
        else if (r.status >= 400 && r.status < 500) /* not 503: the client is not at fault */
            auth_failed(na, &r);
        if (r.hold) {
            const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
            cx->fd = ci ? ci->connect_fd : -1;
            cx->conn = conn;
            cx->after = r.hold_after;
            cx->until_ms = r.hold_until_ms;
            free(r.reply);
            r.reply = NULL;
            if (waiters_hold(na, cx))
                return MHD_YES; /* answered when resumed: on_request calls dispatch again */
            req_init(&r, na, conn, method, url);
            r.watch_done = 1;
            rt->fn(&r);
        }
    }
    return finish(na, &r, route, cx);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    gm_na_t *na = cls;
    conn_ctx *cx = *con_cls;
    size_t max = na->cfg.max_body_bytes;
    if (!cx) {
        cx = calloc(1, sizeof *cx);
        if (!cx)
            return MHD_NO;
        clock_gettime(CLOCK_MONOTONIC, &cx->started);
        *con_cls = cx;
        /* Rate limits are decided when the headers arrive, before any body is kept. */
        int known;
        const char *rest;
        int route = na_route_find(method, url, &known, &rest);
        unsigned flags = route >= 0 ? na_routes[route].flags : 0;
        /* Admin routes are not limited here: their failures are counted after the signature
         * check (auth_failed), so nobody can lock the operator out. */
        if (flags & (NA_ROUTE_LIMITED | NA_ROUTE_READ_LIMITED)) {
            cx->rl_kind = (flags & NA_ROUTE_LIMITED) ? NA_RL_REQUESTS : NA_RL_READS;
            cx->retry_after = na_ratelimit_check(&na->ratelimit, client_addr(conn), cx->rl_kind, 1, gm_mono_ms());
        }
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno || *end || n > max) {
                cx->too_big = 1;
                /* Too much to drain: answer now; MHD then closes the connection. */
                if (errno || *end || n > NA_DRAIN_MAX)
                    return dispatch(na, conn, url, method, cx);
            }
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (cx->too_big || cx->retry_after) {
            cx->drained += n;
            return cx->drained > NA_DRAIN_MAX ? MHD_NO : MHD_YES;
        }
        if (n > max || cx->body.len > max - n) {
            cx->too_big = 1;
            gm_buf_free(&cx->body);
            return MHD_YES;
        }
        gm_buf_append(&cx->body, upload_data, n);
        return cx->body.oom ? MHD_NO : MHD_YES;
    }
    return dispatch(na, conn, url, method, cx);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    conn_ctx *cx = *con_cls;
    watch_mark(cls, conn, 0);
    gm_na_t *na = cls;
    if (cx && cx->listed && na->watch) { /* only if the daemon closed a held watch itself */
        struct na_watch *w = na->watch;
        pthread_mutex_lock(&w->wlock);
        if (cx->listed) {
            if (cx->wprev)
                cx->wprev->wnext = cx->wnext;
            else
                w->waiters = cx->wnext;
            if (cx->wnext)
                cx->wnext->wprev = cx->wprev;
            cx->listed = 0;
            w->n_waiters--;
        }
        pthread_mutex_unlock(&w->wlock);
    }
    if (cx) {
        if (cx->parking) { /* closed before its parked reply was sent */
            free(cx->parked.reply);
            json_decref(cx->parked.json);
            json_decref(cx->parked.member);
        }
        gm_buf_free(&cx->body);
        free(cx);
        *con_cls = NULL;
    }
}

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && line[n - 1] == '\n')
        line[--n] = '\0';
    na_log(cls, "microhttpd: %s", line);
}

/* "HOST:PORT" or "[V6]:PORT" into a socket address. */
static int parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *sslen, gm_error *err)
{
    char host[256], port[16];
    const char *colon;
    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (!close || close[1] != ':' || (size_t)(close - listen - 1) >= sizeof host)
            return gm_error_set(err, GM_EINVAL, "listen address '%s' must be HOST:PORT or [IPv6]:PORT", listen);
        memcpy(host, listen + 1, (size_t)(close - listen - 1));
        host[close - listen - 1] = '\0';
        colon = close + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon || (size_t)(colon - listen) >= sizeof host)
            return gm_error_set(err, GM_EINVAL, "listen address '%s' must be HOST:PORT", listen);
        memcpy(host, listen, (size_t)(colon - listen));
        host[colon - listen] = '\0';
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end || p < 0 || p > 65535)
        return gm_error_set(err, GM_EINVAL, "listen port in '%s' must be 0..65535", listen);
    snprintf(port, sizeof port, "%ld", p);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_PASSIVE}, *res = NULL;
    int g = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (g != 0 || !res)
        return gm_error_set(err, GM_EINVAL, "cannot resolve listen host '%s': %s", host, gai_strerror(g));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sslen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

int na_listen_check(const char *listen, gm_error *err)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    return parse_listen(listen, &ss, &sslen, err);
}

static void tls_files_free(gm_na_t *na)
{
    if (na->tls_key_pem) {
        sodium_memzero(na->tls_key_pem, na->tls_key_len);
        free(na->tls_key_pem);
    }
    free(na->tls_cert_pem);
    na->tls_key_pem = na->tls_cert_pem = NULL;
    na->tls_key_len = 0;
}

/* Read tls_cert and tls_key (paths relative to the NA directory) for libmicrohttpd. */
static int tls_files_load(gm_na_t *na, gm_error *err)
{
    char path[4096];
    size_t len;
    int rc;
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        return gm_error_set(err, GM_EINVAL, "this libmicrohttpd was built without TLS support; cannot serve HTTPS");
    if ((rc = gm_na_config_path(&na->cfg, na->cfg.tls_cert, path, sizeof path, err)) ||
        (rc = gm_file_read(path, 1024 * 1024, &na->tls_cert_pem, &len, err)))
        return gm_error_prefix(err, "TLS certificate");
    /* Only for the expiry gauge: MHD refuses a certificate that does not parse, and an
     * expired one still has its expiry time shown. */
    if (gm_tls_cert_check(path, NULL, &na->tls_not_after, NULL) != 0 && !na->tls_not_after)
        na->tls_not_after = 0;
    if ((rc = gm_na_config_path(&na->cfg, na->cfg.tls_key, path, sizeof path, err)) ||
        (rc = gm_file_read(path, 1024 * 1024, &na->tls_key_pem, &na->tls_key_len, err))) {
        tls_files_free(na);
        return gm_error_prefix(err, "TLS key");
    }
    return 0;
}

int gm_na_tls(const gm_na_t *na)
{
    return na ? na->tls : 0;
}

int na_server_start(gm_na_t *na, const char *listen, gm_error *err)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    int rc = parse_listen(listen, &ss, &sslen, err);
    if (rc != 0)
        return rc;
    /* A slow client holds a socket and a slot: idle ones are dropped after the idle timeout,
     * every request must arrive whole before its deadline, and one address cannot take more
     * than max_connections_per_ip of the slots. */
    unsigned timeout = na->cfg.connection_timeout_s ? na->cfg.connection_timeout_s : GM_NA_DEFAULT_CONNECTION_TIMEOUT_S;
    unsigned req_timeout = na->cfg.request_timeout_s ? na->cfg.request_timeout_s : GM_NA_DEFAULT_REQUEST_TIMEOUT_S;
    unsigned max_conns = na->cfg.max_connections ? na->cfg.max_connections : GM_NA_DEFAULT_MAX_CONNECTIONS;
    unsigned threads = na->cfg.threads ? na->cfg.threads : GM_NA_DEFAULT_THREADS;
    max_conns = fit_fd_limit(na, max_conns);
    if (threads > max_conns)
        threads = max_conns;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    flags |= MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES ? MHD_USE_EPOLL : MHD_USE_POLL;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    na->tls = na->cfg.tls_cert[0] && na->cfg.tls_key[0];
    if (na->tls && (rc = tls_files_load(na, err)) != 0)
        return rc;
    if (na->tls)
        flags |= MHD_USE_TLS;
    if ((rc = watch_start(na, req_timeout, err)) != 0) {
        tls_files_free(na);
        return rc;
    }
    /* With TLS off, these two options are skipped: MHD_OPTION_ARRAY ends at the first
     * MHD_OPTION_END. */
    struct MHD_OptionItem tls_opts[] = {
        {na->tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, na->tls_cert_pem},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, na->tls_key_pem},
        {MHD_OPTION_END, 0, NULL},
    };
    na->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, na, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, na,
                                  MHD_OPTION_ARRAY, tls_opts,
                                  MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_NOTIFY_COMPLETED,
                                  on_completed, na, MHD_OPTION_NOTIFY_CONNECTION, on_connection, na,
                                  MHD_OPTION_CONNECTION_TIMEOUT, timeout, MHD_OPTION_CONNECTION_LIMIT, max_conns,
                                  MHD_OPTION_PER_IP_CONNECTION_LIMIT, na->cfg.max_connections_per_ip,
                                  MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024,
                                  MHD_OPTION_END);
    if (!na->daemon) {
        watch_stop(na);
        tls_files_free(na);
        return gm_error_set(err, GM_EIO,
                            na->tls ? "cannot listen on %s (address in use or not allowed, or the TLS certificate "
                                      "and key are unusable or do not match: see the log)"
                                    : "cannot listen on %s (address in use or not allowed?)",
                            listen);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(na->daemon, MHD_DAEMON_INFO_BIND_PORT);
    na->port = di ? di->port : 0;
    return 0;
}

void na_server_stop(gm_na_t *na)
{
    /* Held CRL watches are answered first: libmicrohttpd cannot stop with suspended connections. */
    if (na->watch) {
        pthread_mutex_lock(&na->watch->wlock);
        na->watch->closing = 1;
        pthread_mutex_unlock(&na->watch->wlock);
        waiters_wake(na->watch, UINT64_MAX, -1, 0);
        /* and replies parked for durability are resumed by the store's thread */
        pthread_mutex_lock(&na->watch->dlock);
        while (na->watch->n_parked)
            pthread_cond_wait(&na->watch->dcond, &na->watch->dlock);
        pthread_mutex_unlock(&na->watch->dlock);
    }
    if (na->daemon) {
        MHD_stop_daemon(na->daemon);
        na->daemon = NULL;
    }
    watch_stop(na);
    tls_files_free(na);
}
