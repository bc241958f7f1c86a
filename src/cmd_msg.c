/* genesis-mesh send / recv: end-to-end messages through the local node (D/node.sock). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "gm/keys.h"
#include "gm/node.h"
#include "gm/util.h"
#include "gm/wire.h"

#define MSG_STDIN_MAX (1u << 20)
#define API_TIMEOUT_MS 10000

static char *read_stdin(size_t *len)
{
    size_t cap = 65536, n = 0;
    char *b = malloc(cap);
    while (b) {
        size_t k = fread(b + n, 1, cap - n, stdin);
        n += k;
        if (k == 0)
            break;
        if (n == cap) {
            if (cap >= MSG_STDIN_MAX) {
                free(b);
                return NULL;
            }
            char *p = realloc(b, cap * 2);
            if (!p) {
                free(b);
                return NULL;
            }
            b = p;
            cap *= 2;
        }
    }
    *len = n;
    return b;
}

static int run_send(const cli_args *a)
{
    const char *dir = cli_str(a, "dir", NULL), *to = cli_str(a, "to", NULL), *port = cli_str(a, "port", "default"),
               *message = a->pos[0];
    gm_error err = {0};
    if (!dir || !to)
        return cli_usage("send: --dir D and --to NODE_PUBLIC_KEY are required");
    uint8_t pk[GM_PK_LEN];
    if (gm_pk_decode(to, pk, &err) != 0)
        return cli_fail("send: --to", &err);
    char *data;
    size_t len;
    if (!message || !strcmp(message, "-")) {
        data = read_stdin(&len);
        if (!data) {
            gm_error_set(&err, GM_ETOOBIG, "message on stdin is larger than %u bytes", MSG_STDIN_MAX);
            return cli_fail("send", &err);
        }
    } else {
        len = strlen(message);
        data = malloc(len + 1);
        if (data)
            memcpy(data, message, len + 1);
    }
    if (!data)
        return 1;
    /* A binary frame: the payload travels as it is (docs/local-api.md "Binary frames"). */
    char sock[GM_NODE_SOCK_PATH_MAX];
    int rc = gm_path_join(sock, sizeof sock, dir, "node.sock", &err);
    if (rc == 0)
        rc = gm_node_api_send(sock, pk, port, data, len, API_TIMEOUT_MS, &err);
    free(data);
    if (rc == GM_ENET) {
        fprintf(stderr, "genesis-mesh: send: no route to %s\n", to);
        return 1;
    }
    return rc == 0 ? 0 : cli_fail("send", &err);
}

static void print_message(const gm_node_msg *m, int as_json)
{
    char from[GM_PK_B64_LEN + 1];
    char *b64 = malloc(gm_b64_len(m->len) + 1);
    if (!b64)
        return;
    gm_pk_encode(m->from, from);
    b64[0] = 0;
    if (m->len)
        gm_b64_encode(m->data, m->len, b64, gm_b64_len(m->len) + 1);
    int utf8 = gm_wire_utf8_valid(m->data, m->len);
    if (as_json) {
        json_t *o = json_pack("{s:s,s:s,s:s}", "from", from, "port", m->port, "data", b64);
        if (utf8)
            json_object_set_new(o, "text", json_stringn((const char *)m->data, m->len));
        char *s = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (s)
            printf("%s\n", s);
        free(s);
    } else if (utf8) {
        printf("from %s [%s]: %.*s\n", from, m->port, (int)m->len, (const char *)m->data);
    } else {
        printf("from %s [%s]: (%zu bytes, base64) %s\n", from, m->port, m->len, b64);
    }
    fflush(stdout);
    free(b64);
}

static int run_recv(const cli_args *a)
{
    const char *dir = cli_str(a, "dir", NULL), *port = cli_str(a, "port", "*");
    long long count, timeout_ms;
    int as_json = cli_has(a, "json");
    gm_error err = {0};
    if (cli_int(a, "count", 0, 1000000000, 0, &count) || cli_int(a, "timeout-ms", 0, 86400000, 0, &timeout_ms))
        return 2;
    if (!dir)
        return cli_usage("recv: --dir D is required");
    gm_node_conn_t *c;
    if (gm_node_conn_open(dir, &c, &err) != 0)
        return cli_fail("recv", &err);
    /* Binary frames: payloads arrive as raw bytes (docs/local-api.md "Binary frames"). */
    int rc = gm_node_conn_subscribe_frames(c, port, API_TIMEOUT_MS, &err);
    if (rc != 0) {
        gm_node_conn_close(c);
        return cli_fail("recv", &err);
    }
    long long got = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (count == 0 || got < count) {
        int wait = 0;
        if (timeout_ms > 0) {
            struct timespec t;
            clock_gettime(CLOCK_MONOTONIC, &t);
            long long el = (long long)(t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
            if (el >= timeout_ms)
                break;
            wait = (int)(timeout_ms - el);
        }
        json_t *ev;
        gm_node_msg m;
        rc = gm_node_conn_read_msg(c, &ev, &m, wait, &err);
        if (rc == GM_ETIMEOUT)
            break;
        if (rc < 0) {
            gm_node_conn_close(c);
            return cli_fail("recv", &err);
        }
        if (rc == 1) {
            print_message(&m, as_json);
            got++;
        }
        json_decref(ev);
    }
    gm_node_conn_close(c);
    if (got == 0 && timeout_ms > 0) {
        fprintf(stderr, "genesis-mesh: recv: no message within %lld ms\n", timeout_ms);
        return 1;
    }
    return 0;
}

static const cli_opt send_opts[] = {
    {"dir", "D", "the node directory; its node must be running (required)"},
    {"to", "NODE_PUBLIC_KEY", "the destination node (required)"},
    {"port", "NAME", "the destination port (default \"default\")"},
    {NULL},
};
const cli_cmd cli_send = {"send", "send a message to a node key through the local node",
                          "--dir D --to NODE_PUBLIC_KEY [--port NAME] [MESSAGE | -]",
                          "Without MESSAGE, or with -, the message is read from stdin.\n", run_send, send_opts, 1,
                          NULL};

static const cli_opt recv_opts[] = {
    {"dir", "D", "the node directory; its node must be running (required)"},
    {"port", "NAME", "only messages to this port (default: all)"},
    {"count", "N", "stop after N messages (default 0: no limit)"},
    {"timeout-ms", "T", "stop after T ms (default 0: no limit); exit 1 if nothing came"},
    {"json", NULL, "one JSON object per message"},
    {NULL},
};
const cli_cmd cli_recv = {"recv", "receive messages from the local node",
                          "--dir D [--port NAME] [--count N] [--timeout-ms T] [--json]", NULL, run_recv, recv_opts, 0,
                          NULL};
