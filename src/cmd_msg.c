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

int cmd_send(int argc, char **argv)
{
    const char *dir = NULL, *to = NULL, *port = "default", *message = NULL;
    gm_error err = {0};
    for (int i = 1; i < argc; i++) {
        const char *v;
        int m;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: genesis-mesh send --dir D --to NODE_PUBLIC_KEY [--port NAME] [MESSAGE | -]\n");
            return 0;
        }
        if ((m = cli_opt(argc, argv, &i, "--dir", &v)) != 0) {
            if (m < 0) return cli_usage("send: --dir needs a value");
            dir = v;
        } else if ((m = cli_opt(argc, argv, &i, "--to", &v)) != 0) {
            if (m < 0) return cli_usage("send: --to needs a node public key");
            to = v;
        } else if ((m = cli_opt(argc, argv, &i, "--port", &v)) != 0) {
            if (m < 0) return cli_usage("send: --port needs a name");
            port = v;
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            return cli_usage("send: unknown option '%s'", argv[i]);
        } else if (!message) {
            message = argv[i];
        } else {
            return cli_usage("send: one MESSAGE only (quote it)");
        }
    }
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
    char *b64 = malloc(gm_b64_len(len) + 1);
    if (!b64) {
        free(data);
        return 1;
    }
    b64[0] = 0;
    if (len)
        gm_b64_encode((const uint8_t *)data, len, b64, gm_b64_len(len) + 1);
    free(data);
    json_t *req = json_pack("{s:s,s:s,s:s,s:s}", "op", "send", "to", to, "port", port, "data", b64), *resp = NULL;
    free(b64);
    int rc = gm_node_api_call(dir, req, &resp, API_TIMEOUT_MS, &err);
    json_decref(req);
    if (rc != 0)
        return cli_fail("send", &err);
    int ok = json_is_true(json_object_get(resp, "ok"));
    if (!ok) {
        json_t *e = json_object_get(resp, "error");
        const char *code = json_string_value(json_object_get(e, "code"));
        const char *msg = json_string_value(json_object_get(e, "message"));
        if (code && !strcmp(code, "no_route"))
            fprintf(stderr, "genesis-mesh: send: no route to %s\n", to);
        else
            fprintf(stderr, "genesis-mesh: send: %s\n", msg ? msg : "refused by the node");
    }
    json_decref(resp);
    return ok ? 0 : 1;
}

static void print_message(json_t *ev, int as_json)
{
    const char *from = json_string_value(json_object_get(ev, "from"));
    const char *port = json_string_value(json_object_get(ev, "port"));
    const char *data = json_string_value(json_object_get(ev, "data"));
    size_t dl = data ? strlen(data) : 0, len = 0;
    uint8_t *buf = malloc(dl / 4 * 3 + 4);
    if (!buf)
        return;
    if (dl && gm_b64_decode(data, buf, dl / 4 * 3 + 3, &len, NULL) != 0)
        len = 0;
    int utf8 = gm_wire_utf8_valid(buf, len);
    if (as_json) {
        json_t *o = json_pack("{s:s,s:s,s:s}", "from", from ? from : "", "port", port ? port : "", "data", data ? data : "");
        if (utf8)
            json_object_set_new(o, "text", json_stringn((const char *)buf, len));
        char *s = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (s)
            printf("%s\n", s);
        free(s);
    } else if (utf8) {
        printf("from %s [%s]: %.*s\n", from ? from : "?", port ? port : "", (int)len, (const char *)buf);
    } else {
        printf("from %s [%s]: (%zu bytes, base64) %s\n", from ? from : "?", port ? port : "", len, data ? data : "");
    }
    fflush(stdout);
    free(buf);
}

int cmd_recv(int argc, char **argv)
{
    const char *dir = NULL, *port = "*";
    long count = 0, timeout_ms = 0;
    int as_json = 0;
    gm_error err = {0};
    for (int i = 1; i < argc; i++) {
        const char *v;
        int m;
        char *end;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: genesis-mesh recv --dir D [--port NAME] [--count N] [--timeout-ms T] [--json]\n");
            return 0;
        }
        if (cli_flag(argv, i, "--json")) {
            as_json = 1;
        } else if ((m = cli_opt(argc, argv, &i, "--dir", &v)) != 0) {
            if (m < 0) return cli_usage("recv: --dir needs a value");
            dir = v;
        } else if ((m = cli_opt(argc, argv, &i, "--port", &v)) != 0) {
            if (m < 0) return cli_usage("recv: --port needs a name");
            port = v;
        } else if ((m = cli_opt(argc, argv, &i, "--count", &v)) != 0) {
            if (m < 0 || (count = strtol(v, &end, 10), *end || count < 0)) return cli_usage("recv: --count needs a number");
        } else if ((m = cli_opt(argc, argv, &i, "--timeout-ms", &v)) != 0) {
            if (m < 0 || (timeout_ms = strtol(v, &end, 10), *end || timeout_ms < 0))
                return cli_usage("recv: --timeout-ms needs a number");
        } else {
            return cli_usage("recv: unknown option '%s'", argv[i]);
        }
    }
    if (!dir)
        return cli_usage("recv: --dir D is required");
    gm_node_conn_t *c;
    if (gm_node_conn_open(dir, &c, &err) != 0)
        return cli_fail("recv", &err);
    json_t *req = json_pack("{s:s,s:s}", "op", "subscribe", "port", port), *resp = NULL;
    int rc = gm_node_conn_request(c, req, &resp, API_TIMEOUT_MS, &err);
    json_decref(req);
    if (rc != 0 || !json_is_true(json_object_get(resp, "ok"))) {
        const char *msg = json_string_value(json_object_get(json_object_get(resp, "error"), "message"));
        if (rc == 0)
            gm_error_set(&err, GM_EINVAL, "%s", msg ? msg : "subscribe refused");
        json_decref(resp);
        gm_node_conn_close(c);
        return cli_fail("recv", &err);
    }
    json_decref(resp);
    long got = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (count == 0 || got < count) {
        int wait = 0;
        if (timeout_ms > 0) {
            struct timespec t;
            clock_gettime(CLOCK_MONOTONIC, &t);
            long el = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
            if (el >= timeout_ms)
                break;
            wait = (int)(timeout_ms - el);
        }
        json_t *ev;
        rc = gm_node_conn_read(c, &ev, wait, &err);
        if (rc == GM_ETIMEOUT)
            break;
        if (rc != 0) {
            gm_node_conn_close(c);
            return cli_fail("recv", &err);
        }
        const char *e = json_string_value(json_object_get(ev, "event"));
        if (e && !strcmp(e, "message")) {
            print_message(ev, as_json);
            got++;
        }
        json_decref(ev);
    }
    gm_node_conn_close(c);
    if (got == 0 && timeout_ms > 0) {
        fprintf(stderr, "genesis-mesh: recv: no message within %ld ms\n", timeout_ms);
        return 1;
    }
    return 0;
}
