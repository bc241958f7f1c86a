/* Data throughput through two nodes' local APIs, on the public C API only (gm/node.h), as a
 * program that streams data would use it (driven by bench/bench_node.sh):
 *   bench_pump SOCK_FROM SOCK_TO KEY_TO SIZE COUNT
 * subscribes a frames connection on the node at SOCK_TO to a port of its own, then sends COUNT
 * messages of SIZE random bytes to KEY_TO (base64) through the node at SOCK_FROM on one
 * connection, pipelined (gm_node_conn_post: no round trip per message; the node slows the
 * sender down when the path is congested) and flushed at the end (gm_node_conn_post_flush
 * counts the sends the node refused). Prints "MB/s received sent send_failed cpu_s": payload
 * bytes per second from the first to the last message received, messages received, sends taken,
 * sends refused and this program's CPU seconds (both threads). A subscriber cut off by the node (overflow) or 30 s without a message ends the
 * count early: the messages missing are the loss. Never asserts. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "gm/keys.h"
#include "gm/node.h"

#include "bench_util.h"

#define TIMEOUT_MS 30000

typedef struct pump {
    gm_node_conn_t *sub;
    char port[33];
    size_t count;
    size_t got;            /* messages received */
    double first, last;    /* when the first and the last arrived */
} pump;

static void *receive(void *arg)
{
    pump *p = arg;
    gm_error err = {0};
    while (p->got < p->count) {
        json_t *line = NULL;
        gm_node_msg m;
        int rc = gm_node_conn_read_msg(p->sub, &line, &m, TIMEOUT_MS, &err);
        if (rc == 1) {
            if (strcmp(m.port, p->port) != 0)
                continue;
            p->last = now_s();
            if (p->got++ == 0)
                p->first = p->last;
            continue;
        }
        const char *ev = rc == 0 ? json_string_value(json_object_get(line, "event")) : NULL;
        int cut = ev && !strcmp(ev, "overflow");
        json_decref(line);
        if (rc != 0 || cut) {
            fprintf(stderr, "bench_pump: receiver stops after %zu messages: %s\n", p->got,
                    rc != 0 ? err.msg : "cut off by the node (overflow)");
            break;
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    uint8_t to[GM_PK_LEN];
    gm_error err = {0};
    pump p = {0};
    gm_node_conn_t *c = NULL;
    pthread_t th;
    size_t failed = 0;
    if (argc != 6) {
        fprintf(stderr, "usage: bench_pump SOCK_FROM SOCK_TO KEY_TO SIZE COUNT\n");
        return 2;
    }
    size_t size = strtoul(argv[4], NULL, 10);
    p.count = strtoul(argv[5], NULL, 10);
    if (sodium_init() < 0 || gm_pk_decode(argv[3], to, &err) != 0 || p.count == 0) {
        fprintf(stderr, "bench_pump: bad arguments: %s\n", err.msg[0] ? err.msg : "COUNT must be > 0");
        return 2;
    }
    snprintf(p.port, sizeof p.port, "bench%ld", (long)getpid());
    uint8_t *body = malloc(size ? size : 1);
    if (!body)
        return 1;
    randombytes_buf(body, size);
    if (gm_node_conn_open_path(argv[2], &p.sub, &err) != 0 ||
        gm_node_conn_subscribe_frames(p.sub, p.port, TIMEOUT_MS, &err) != 0 ||
        gm_node_conn_open_path(argv[1], &c, &err) != 0 || gm_node_conn_hello_frames(c, TIMEOUT_MS, &err) != 0) {
        fprintf(stderr, "bench_pump: %s\n", err.msg);
        return 1;
    }
    if (!gm_node_conn_frames(c)) /* still measured, but not the binary data path */
        fprintf(stderr, "bench_pump: the node at %s has no binary frames: sending JSON lines\n", argv[1]);
    if (pthread_create(&th, NULL, receive, &p) != 0)
        return 1;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < p.count; i++)
        rc = gm_node_conn_post(c, to, p.port, body, size, (uint32_t)i + 1, &err);
    if (rc == 0)
        rc = gm_node_conn_post_flush(c, 2 * TIMEOUT_MS, &failed, &err);
    if (rc != 0)
        fprintf(stderr, "bench_pump: sending: %s\n", err.msg);
    pthread_join(th, NULL);
    double dt = p.last - p.first;
    double mbps = p.got > 1 && dt > 0 ? (double)(p.got - 1) * (double)size / dt / 1e6 : 0.0;
    printf("%.1f %zu %zu %zu %.6f\n", mbps, p.got, p.count - failed, failed, bench_cpu_s());
    gm_node_conn_close(c);
    gm_node_conn_close(p.sub);
    free(body);
    return rc == 0 ? 0 : 1;
}
