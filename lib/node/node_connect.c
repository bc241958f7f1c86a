/* Opening links: accepting TCP connections within bounds (evicting the oldest half-open
 * inbound connection when all handshake slots are taken) and dialing the configured targets,
 * redialing with exponential backoff and jitter. Owns n->conn (listener, targets). */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "gm/util.h"
#include "node_internal.h"
#include "node_link.h"

static void sockaddr_str(const struct sockaddr_storage *ss, char *ip, size_t ipcap, char *addr, size_t cap)
{
    int port = 0;
    ip[0] = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        uv_ip4_name(a, ip, ipcap);
        port = ntohs(a->sin_port);
        snprintf(addr, cap, "%s:%d", ip, port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(a, ip, ipcap);
        port = ntohs(a->sin6_port);
        snprintf(addr, cap, "[%s]:%d", ip, port);
    } else {
        snprintf(ip, ipcap, "?");
        snprintf(addr, cap, "?");
    }
}

/* Split "host:port" or "[v6]:port". */
static int split_hostport(const char *s, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *colon;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':' || (size_t)(rb - s - 1) >= hcap)
            return -1;
        memcpy(host, s + 1, (size_t)(rb - s - 1));
        host[rb - s - 1] = 0;
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || (size_t)(colon - s) >= hcap || colon == s)
            return -1;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = 0;
    }
    const char *p = colon + 1;
    if (!*p || strlen(p) >= pcap)
        return -1;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9')
            return -1;
    long v = strtol(p, NULL, 10);
    if (v < 0 || v > 65535)
        return -1;
    snprintf(port, pcap, "%s", p);
    return 0;
}

/* ---- accepting ---- */

static int halfopen_from(gm_node *n, const char *ip)
{
    int k = 0;
    for (node_link *l = n->links; l; l = l->next)
        if (!l->outbound && l->counted_hs && !l->closing_handle && strcmp(l->ip, ip) == 0)
            k++;
    return k;
}

/* Handshakes in progress that we accepted (outbound = 0) or dialled (outbound = 1). */
static int halfopen_count(gm_node *n, int outbound)
{
    int k = 0;
    for (node_link *l = n->links; l; l = l->next)
        if (!l->outbound == !outbound && l->counted_hs && !l->closing_handle)
            k++;
    return k;
}

/* All inbound handshake slots are taken: close the oldest half-open inbound connection that
 * has not even sent message 1 (else the oldest one) so a flood cannot lock peers out. */
static void evict_halfopen(gm_node *n, node_link *except)
{
    node_link *v = NULL;
    for (node_link *l = n->links; l; l = l->next) {
        if (l == except || l->outbound || !l->counted_hs || l->closing_handle)
            continue;
        if (!v || (v->got_msg1 && !l->got_msg1) || (v->got_msg1 == l->got_msg1 && l->id < v->id))
            v = l;
    }
    if (!v)
        return;
    n->m.connections_evicted++;
    node_log(n, GM_LOG_DEBUG, "connection_evicted",
             json_pack("{s:s,s:s}", "addr", v->addr, "reason", v->got_msg1 ? "oldest_halfopen" : "no_message_1"));
    node_link_hard_close(v);
}

static void on_connection(uv_stream_t *server, int status)
{
    gm_node *n = server->data;
    if (status < 0 || n->stopping)
        return;
    node_link *l = node_link_new(n, 0);
    if (!l) {
        uv_tcp_t *tmp = malloc(sizeof *tmp);
        if (tmp && uv_tcp_init(n->loop, tmp) == 0 && uv_accept(server, (uv_stream_t *)tmp) == 0)
            uv_close((uv_handle_t *)tmp, (uv_close_cb)free);
        else
            free(tmp);
        return;
    }
    if (uv_accept(server, (uv_stream_t *)&l->tcp) != 0) {
        node_link_hard_close(l);
        return;
    }
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    memset(&ss, 0, sizeof ss);
    uv_tcp_getpeername(&l->tcp, (struct sockaddr *)&ss, &sl);
    sockaddr_str(&ss, l->ip, sizeof l->ip, l->addr, sizeof l->addr);
    const char *limit = NULL;
    if (n->net.n_links > NODE_MAX_LINKS)
        limit = "max_connections";
    else if (halfopen_from(n, l->ip) > NODE_MAX_HALFOPEN_PER_IP)
        limit = "max_halfopen_per_address";
    if (limit) {
        n->m.connections_refused_limit++;
        node_log(n, GM_LOG_DEBUG, "connection_refused", json_pack("{s:s,s:s}", "reason", limit, "addr", l->addr));
        node_link_hard_close(l);
        return;
    }
    if (halfopen_count(n, 0) > NODE_MAX_HANDSHAKES)
        evict_halfopen(n, l);
    node_log(n, GM_LOG_DEBUG, "connection_accepted", json_pack("{s:s}", "addr", l->addr));
    node_hs_begin(l);
}

int node_hostport_check(const char *spec, const char *what, gm_error *err)
{
    char host[256], port[8];
    if (split_hostport(spec, host, sizeof host, port, sizeof port) != 0)
        return gm_error_set(err, GM_EINVAL, "%s %s: expected HOST:PORT (IPv6 as [ADDR]:PORT, port 0..65535)", what,
                            spec);
    return 0;
}

int node_listen_addr(const char *spec, const char *what, struct sockaddr_storage *ss, gm_error *err)
{
    char host[256], port[8];
    memset(ss, 0, sizeof *ss);
    if (split_hostport(spec, host, sizeof host, port, sizeof port) != 0)
        return gm_error_set(err, GM_EINVAL, "%s %s: expected HOST:PORT (IPv6 as [ADDR]:PORT, port 0..65535)", what,
                            spec);
    if (uv_ip4_addr(host, atoi(port), (struct sockaddr_in *)ss) != 0 &&
        uv_ip6_addr(host, atoi(port), (struct sockaddr_in6 *)ss) != 0)
        return gm_error_set(err, GM_EINVAL, "%s %s: HOST must be an IP address", what, spec);
    return 0;
}

int node_peer_listen(gm_node *n, gm_error *err)
{
    struct sockaddr_storage ss;
    const char *spec = n->cfg.listen ? n->cfg.listen : "127.0.0.1:0";
    int prc = node_listen_addr(spec, "--listen", &ss, err);
    if (prc != 0)
        return prc;
    uv_tcp_init(n->loop, &n->conn.listener);
    n->conn.listener.data = n;
    n->conn.listener_open = 1;
    int rc = uv_tcp_bind(&n->conn.listener, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&n->conn.listener, 128, on_connection);
    if (rc != 0)
        return gm_error_set(err, GM_EIO, "cannot listen on %s: %s", spec, uv_strerror(rc));
    int sl = sizeof ss;
    char ip[64];
    uv_tcp_getsockname(&n->conn.listener, (struct sockaddr *)&ss, &sl);
    sockaddr_str(&ss, ip, sizeof ip, n->conn.listen_addr, sizeof n->conn.listen_addr);
    n->conn.listen_port = ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                                             : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

/* ---- dialing ---- */

void node_peer_add_target(gm_node *n, const char *hostport)
{
    node_target *t = calloc(1, sizeof *t);
    if (!t)
        return;
    if (split_hostport(hostport, t->host, sizeof t->host, t->port, sizeof t->port) != 0) {
        node_log(n, GM_LOG_WARN, "peer_ignored", json_pack("{s:s,s:s}", "peer", hostport, "reason", "expected HOST:PORT"));
        free(t);
        return;
    }
    snprintf(t->addr, sizeof t->addr, "%s", hostport);
    for (node_target *o = n->conn.targets; o; o = o->next)
        if (strcmp(o->addr, t->addr) == 0) {
            free(t);
            return;
        }
    /* Our own listening address is not a peer. */
    if (n->conn.listen_port && atoi(t->port) == n->conn.listen_port &&
        (!strcmp(t->host, "127.0.0.1") || !strcmp(t->host, "localhost") || strstr(n->conn.listen_addr, t->host) == n->conn.listen_addr)) {
        free(t);
        return;
    }
    t->backoff_ms = NODE_REDIAL_MIN_MS;
    t->next_dial_ms = 0;
    t->next = n->conn.targets;
    n->conn.targets = t;
}

static void on_connect(uv_connect_t *req, int status)
{
    node_link *l = req->data;
    free(req);
    if (l->closing_handle)
        return;
    if (status < 0) {
        node_log(l->node, GM_LOG_DEBUG, "dial_failed", json_pack("{s:s,s:s}", "addr", l->addr, "error", uv_strerror(status)));
        node_link_hard_close(l);
        return;
    }
    node_hs_begin(l);
}

static void dial_resolved(gm_node *n, node_target *t, const struct sockaddr *sa)
{
    node_link *l = node_link_new(n, 1);
    if (!l) {
        t->next_dial_ms = node_now_ms(n) + t->backoff_ms;
        return;
    }
    l->target = t;
    t->link = l;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    memcpy(&ss, sa, sa->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
    sockaddr_str(&ss, l->ip, sizeof l->ip, l->addr, sizeof l->addr);
    uv_connect_t *c = malloc(sizeof *c);
    if (!c) {
        node_link_hard_close(l);
        return;
    }
    c->data = l;
    int rc = uv_tcp_connect(c, &l->tcp, sa, on_connect);
    if (rc != 0) {
        free(c);
        node_log(n, GM_LOG_DEBUG, "dial_failed", json_pack("{s:s,s:s}", "addr", t->addr, "error", uv_strerror(rc)));
        node_link_hard_close(l);
    }
}

typedef struct resolve_req {
    uv_getaddrinfo_t req;
    gm_node *node;
    node_target *target;
} resolve_req;

static void on_resolved2(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    resolve_req *r = (resolve_req *)req;
    gm_node *n = r->node;
    node_target *t = r->target;
    free(r);
    if (status == UV_ECANCELED || n->stopping) {
        if (t)
            t->resolving = NULL;
        uv_freeaddrinfo(res);
        return;
    }
    t->resolving = NULL;
    if (status < 0 || !res) {
        node_log(n, GM_LOG_WARN, "dial_failed", json_pack("{s:s,s:s}", "addr", t->addr, "error", uv_strerror(status)));
        t->next_dial_ms = node_now_ms(n) + t->backoff_ms + node_jitter(t->backoff_ms / 2 + 1);
        t->backoff_ms = t->backoff_ms * 2 > NODE_REDIAL_MAX_MS ? NODE_REDIAL_MAX_MS : t->backoff_ms * 2;
        uv_freeaddrinfo(res);
        return;
    }
    dial_resolved(n, t, res->ai_addr);
    uv_freeaddrinfo(res);
}

static void dial(gm_node *n, node_target *t)
{
    struct sockaddr_storage ss;
    int port = atoi(t->port);
    if (uv_ip4_addr(t->host, port, (struct sockaddr_in *)&ss) == 0 ||
        uv_ip6_addr(t->host, port, (struct sockaddr_in6 *)&ss) == 0) {
        dial_resolved(n, t, (const struct sockaddr *)&ss);
        return;
    }
    resolve_req *r = calloc(1, sizeof *r);
    if (!r)
        return;
    r->node = n;
    r->target = t;
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    t->resolving = &r->req;
    if (uv_getaddrinfo(n->loop, &r->req, on_resolved2, t->host, t->port, &hints) != 0) {
        t->resolving = NULL;
        free(r);
        t->next_dial_ms = node_now_ms(n) + t->backoff_ms;
    }
}

void node_connect_tick(gm_node *n, uint64_t now)
{
    for (node_target *t = n->conn.targets; t; t = t->next) {
        if (t->link || t->resolving || now < t->next_dial_ms)
            continue;
        if (t->known_pk && node_link_by_pk(n, t->pk)) {
            /* Already connected to that peer through another link. */
            t->next_dial_ms = now + NODE_PING_MS;
            continue;
        }
        if (n->net.n_links >= NODE_MAX_LINKS || halfopen_count(n, 1) >= NODE_MAX_HANDSHAKES) {
            t->next_dial_ms = now + NODE_REDIAL_MIN_MS + node_jitter(NODE_REDIAL_MIN_MS);
            continue;
        }
        dial(n, t);
    }
}

/* ---- what links tell their target ---- */

void node_connect_link_authenticated(node_link *l)
{
    /* This address is that key (no redial while it is connected). */
    if (l->target) {
        l->target->known_pk = 1;
        memcpy(l->target->pk, l->peer_pk, GM_PK_LEN);
    }
}

void node_connect_link_up(node_link *l)
{
    if (l->target) {
        l->target->known_pk = 1;
        memcpy(l->target->pk, l->peer_pk, GM_PK_LEN);
        l->target->backoff_ms = NODE_REDIAL_MIN_MS;
    }
}

void node_connect_link_self(node_link *l)
{
    if (l->target)
        l->target->next_dial_ms = UINT64_MAX; /* never dial ourselves again */
}

void node_connect_link_freed(node_link *l)
{
    if (l->target && l->target->link == l) {
        node_target *t = l->target;
        t->link = NULL;
        uint64_t now = node_now_ms(l->node);
        t->next_dial_ms = now + t->backoff_ms + node_jitter(t->backoff_ms / 2 + 1);
        t->backoff_ms = t->backoff_ms * 2 > NODE_REDIAL_MAX_MS ? NODE_REDIAL_MAX_MS : t->backoff_ms * 2;
    }
}

/* ---- stopping ---- */

void node_connect_stop(gm_node *n)
{
    if (n->conn.listener_open) {
        n->conn.listener_open = 0;
        uv_close((uv_handle_t *)&n->conn.listener, NULL);
    }
    for (node_target *t = n->conn.targets; t; t = t->next)
        if (t->resolving) {
            resolve_req *r = (resolve_req *)t->resolving;
            r->target = NULL;
            t->resolving = NULL;
            uv_cancel((uv_req_t *)&r->req);
        }
}

void node_connect_free(gm_node *n)
{
    while (n->conn.targets) {
        node_target *t = n->conn.targets;
        n->conn.targets = t->next;
        free(t);
    }
}
