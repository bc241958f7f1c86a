/* The one client of the node's local API (lib/client/node_client.c) against a test socket
 * server: a thread that listens on a Unix socket in a temp dir and plays a script (partial
 * lines, several lines at once, an oversized line, silence, closing mid-line, refusals),
 * plus signals arriving while the client waits. Timeouts are only checked to end the wait,
 * never for how long it took. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "gm/keys.h"
#include "gm/node.h"
#include "gm/util.h"
#include "client_internal.h"

static char g_dir[64], g_sock[100];

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- the test server: one connection, one script ---- */

typedef struct server {
    int listen_fd;
    pthread_t th;
    void (*script)(int fd, struct server *s);
    char got[4096];           /* the request line the client sent */
    uint8_t frame[128];       /* the binary frame the client sent */
    size_t big;               /* oversized line length */
} server;

static void write_all(int fd, const char *p, size_t len)
{
    while (len) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        len -= (size_t)w;
    }
}

static void say(int fd, const char *s)
{
    write_all(fd, s, strlen(s));
}

/* Read the client's request line into s->got. */
static void read_request(int fd, server *s)
{
    size_t k = 0;
    char ch;
    while (k < sizeof s->got - 1 && read(fd, &ch, 1) == 1 && ch != '\n')
        s->got[k++] = ch;
    s->got[k] = 0;
}

static void *server_main(void *arg)
{
    server *s = arg;
    sigset_t set;
    /* Signals are for the client's thread. */
    sigemptyset(&set);
    sigaddset(&set, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    int fd = accept(s->listen_fd, NULL, NULL);
    if (fd >= 0) {
        s->script(fd, s);
        close(fd);
    }
    return NULL;
}

static void server_start(server *s, void (*script)(int, server *))
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    s->script = script;
    unlink(g_sock);
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", g_sock);
    s->listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(s->listen_fd >= 0);
    assert_int_equal(bind(s->listen_fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(s->listen_fd, 4), 0);
    assert_int_equal(pthread_create(&s->th, NULL, server_main, s), 0);
}

static void server_join(server *s)
{
    pthread_join(s->th, NULL);
    close(s->listen_fd);
    unlink(g_sock);
}

/* ---- scripts ---- */

static void script_byte_by_byte(int fd, server *s)
{
    read_request(fd, s);
    const char *answer = "{\"ok\":true,\"n\":1}\n";
    for (const char *p = answer; *p; p++) {
        write_all(fd, p, 1);
        sleep_ms(2);
    }
}

static void script_three_lines_at_once(int fd, server *s)
{
    read_request(fd, s);
    say(fd, "{\"ok\":true}\n{\"event\":\"message\",\"n\":2}\nnot json\n{\"event\":\"message\",\"n\":3}\n{\"partial\":");
}

static void script_oversized_line(int fd, server *s)
{
    size_t chunk = 1 << 16;
    char *buf = malloc(chunk);
    memset(buf, 'x', chunk);
    say(fd, "{\"big\":\"");
    for (size_t sent = 0; sent < s->big; sent += chunk)
        write_all(fd, buf, s->big - sent < chunk ? s->big - sent : chunk);
    say(fd, "\"}\n");
    free(buf);
}

static void script_silent_then_close(int fd, server *s)
{
    char ch;
    (void)s;
    /* Hold the connection until the client gives up and closes it. */
    while (read(fd, &ch, 1) > 0)
        ;
}

static void script_close_mid_line(int fd, server *s)
{
    read_request(fd, s);
    say(fd, "{\"ok\":tr");
}

static void script_late_answer(int fd, server *s)
{
    read_request(fd, s);
    sleep_ms(300);
    say(fd, "{\"ok\":true,\"late\":true}\n");
}

/* A node of before binary frames: hello answered without "frames", then a JSON send. */
static void script_no_route(int fd, server *s)
{
    read_request(fd, s);
    say(fd, "{\"ok\":true,\"id\":\"hello\",\"version\":2}\n");
    read_request(fd, s);
    say(fd, "{\"ok\":false,\"id\":\"send\",\"error\":{\"code\":\"no_route\",\"message\":\"no route to that node\"}}\n");
}

/* A node of frames 1 (the client asks for 2): the send comes as a 44-byte head, the port
 * "capability" and 2 bytes. */
static void script_frames_no_route(int fd, server *s)
{
    size_t want = 44 + 10 + 2, k = 0;
    read_request(fd, s);
    say(fd, "{\"ok\":true,\"id\":\"hello\",\"version\":2,\"frames\":1}\n");
    while (k < want) {
        ssize_t r = read(fd, s->frame + k, want - k);
        if (r <= 0)
            return;
        k += (size_t)r;
    }
    say(fd, "{\"event\":\"send_failed\",\"seq\":1,\"error\":{\"code\":\"no_route\",\"message\":\"no route to that node\"}}\n");
}

static void script_subscribe_refused(int fd, server *s)
{
    read_request(fd, s);
    say(fd, "{\"ok\":false,\"error\":{\"code\":\"bad_request\",\"message\":\"bad port\"}}\n");
}

/* A node with frames: hello, subscribe, then a message frame in two pieces, a JSON line, and an
 * empty message frame. */
static void script_frames_subscriber(int fd, server *s)
{
    static const uint8_t frame[] = {2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 3, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
                                    9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 'p', 0, '\n', 0xff};
    static const uint8_t empty[] = {2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
                                    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 'q'};
    read_request(fd, s);
    say(fd, "{\"ok\":true,\"id\":\"hello\",\"version\":2,\"frames\":1}\n");
    read_request(fd, s);
    say(fd, "{\"ok\":true,\"id\":\"subscribe\"}\n");
    write_all(fd, (const char *)frame, 20);
    sleep_ms(20);
    write_all(fd, (const char *)frame + 20, sizeof frame - 20);
    say(fd, "{\"event\":\"other\"}\n");
    write_all(fd, (const char *)empty, sizeof empty);
    sleep_ms(200);
}

/* A node that answers only once both lines are in: the client must send hello and subscribe
 * together (one round trip), not wait for hello's answer before sending subscribe. */
static void script_hello_and_subscribe_together(int fd, server *s)
{
    read_request(fd, s);
    if (!strstr(s->got, "\"hello\""))
        return;
    read_request(fd, s);
    if (!strstr(s->got, "\"subscribe\""))
        return;
    say(fd, "{\"ok\":true,\"id\":\"hello\",\"version\":2,\"frames\":1}\n{\"ok\":true,\"id\":\"subscribe\"}\n");
    sleep_ms(200);
}

/* A requester's parked connection subscribed again: the subscription must not go out alone
 * (it waits for the post, one write for both); then, held again with nothing posted, it goes
 * out before the client waits for an answer. The client posts when g_checked says the test node
 * looked, once g_held said the subscription was held. */
static sem_t g_held, g_checked;

static void script_resubscribe_held(int fd, server *s)
{
    size_t want = 44 + 1 + 2, k = 0;
    read_request(fd, s);
    say(fd, "{\"ok\":true,\"id\":\"hello\",\"version\":2,\"frames\":1}\n");
    read_request(fd, s);
    say(fd, "{\"ok\":true,\"id\":\"subscribe\"}\n");
    while (sem_wait(&g_held) != 0)
        ;
    read_request(fd, s); /* the park, written before the subscription was held */
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (!strstr(s->got, "\"unsubscribe\"") || !strstr(s->got, "\"quiet\":true") || poll(&pfd, 1, 0) != 0)
        s->big = 1; /* not a quiet park, or the subscription came before the post */
    sem_post(&g_checked);
    read_request(fd, s);
    if (!strstr(s->got, "\"subscribe\"") || !strstr(s->got, "\"quiet\":true"))
        s->big = 2;
    while (k < want) {
        ssize_t r = read(fd, s->frame + k, want - k);
        if (r <= 0)
            return;
        k += (size_t)r;
    }
    read_request(fd, s); /* held again, then a read: it must come */
    if (strstr(s->got, "\"subscribe\""))
        say(fd, "{\"event\":\"after\"}\n");
    sleep_ms(200);
}

/* A message frame from the key 5...5 on port "p" into out: flags, then the payload length
 * written in the head (claimed) and the payload; its length. */
static size_t message_frame(uint8_t *out, uint8_t flags, uint32_t claimed, const void *payload, size_t len)
{
    uint8_t head[44] = {2, flags, 1, 0, 0, 0, 0, 0, (uint8_t)(claimed >> 24), (uint8_t)(claimed >> 16),
                        (uint8_t)(claimed >> 8), (uint8_t)claimed};
    memset(head + 12, 5, 32);
    memcpy(out, head, sizeof head);
    out[44] = 'p';
    memcpy(out + 45, payload, len);
    return 45 + len;
}

/* A node of frames 2 (the client must ask for 2): a request with the access policy's note as a
 * noted frame, a plain message frame, a noted request as a JSON event (as a node of frames 1
 * sends it), then a noted frame whose note length is one more than its payload holds. */
static void script_noted_frames(int fd, server *s)
{
    static const char note[] = "{\"sequence\":3,\"rule\":\"rule 1: allow role:a capability x\"}";
    uint8_t payload[128], buf[256];
    size_t nl = sizeof note - 1;
    payload[0] = 0;
    payload[1] = (uint8_t)nl;
    memcpy(payload + 2, note, nl);
    memcpy(payload + 2 + nl, "hi", 2);
    read_request(fd, s);
    if (!strstr(s->got, "\"frames_max\":2"))
        s->big = 1;
    say(fd, "{\"ok\":true,\"id\":\"hello\",\"version\":2,\"frames\":2}\n");
    read_request(fd, s);
    say(fd, "{\"ok\":true,\"id\":\"subscribe\"}\n");
    write_all(fd, (const char *)buf, message_frame(buf, 2, (uint32_t)(2 + nl + 2), payload, 2 + nl + 2));
    write_all(fd, (const char *)buf, message_frame(buf, 0, 1, "x", 1));
    say(fd, "{\"event\":\"message\",\"from\":\"AQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"port\":\"p\",\"data\":\"AAr/\","
            "\"authorized\":{\"sequence\":4,\"rule\":\"default allow\"}}\n");
    payload[1] = 3; /* the payload after the note length is 2 bytes */
    write_all(fd, (const char *)buf, message_frame(buf, 2, 4, payload, 4));
    sleep_ms(200);
}

/* A node that agreed to frames 1 but sends a noted frame. */
static void script_noted_frame_on_frames_1(int fd, server *s)
{
    uint8_t buf[64];
    read_request(fd, s);
    say(fd, "{\"ok\":true,\"id\":\"hello\",\"version\":2,\"frames\":1}\n");
    read_request(fd, s);
    say(fd, "{\"ok\":true,\"id\":\"subscribe\"}\n");
    write_all(fd, (const char *)buf, message_frame(buf, 2, 4, "\0\0hi", 4));
    sleep_ms(200);
}

/* A node without frames: the message comes as a JSON event with base64 data. */
static void script_json_subscriber(int fd, server *s)
{
    read_request(fd, s);
    say(fd, "{\"ok\":true,\"id\":\"hello\",\"version\":2}\n");
    read_request(fd, s);
    say(fd, "{\"ok\":true,\"id\":\"subscribe\"}\n");
    say(fd, "{\"event\":\"message\",\"from\":\"AQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"port\":\"p\",\"data\":\"AAr/\"}\n");
    sleep_ms(200);
}

/* One connection for a call: subscribe with frames, then a send frame on the same connection
 * (no confirmation asked); the node answers with a message frame from the destination, a
 * send_failed for another seq that is not ours, then (second round) a bad frame. */
static void script_call_on_one_connection(int fd, server *s)
{
    static const uint8_t answer[] = {2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0,
                                     0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 'p', 'o', 'k'};
    static const uint8_t bad[] = {2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0,
                                  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 'o', 'k'};
    size_t want = 44 + 1 + 2, k = 0;
    read_request(fd, s);
    say(fd, "{\"ok\":true,\"id\":\"hello\",\"version\":2,\"frames\":1}\n");
    read_request(fd, s);
    say(fd, "{\"ok\":true,\"id\":\"subscribe\"}\n");
    while (k < want) {
        ssize_t r = read(fd, s->frame + k, want - k);
        if (r <= 0)
            return;
        k += (size_t)r;
    }
    say(fd, "{\"event\":\"send_failed\",\"seq\":9,\"error\":{\"code\":\"no_route\",\"message\":\"x\"}}\n");
    write_all(fd, (const char *)answer, sizeof answer);
    say(fd, "{\"event\":\"send_failed\",\"seq\":1,\"error\":{\"code\":\"no_route\",\"message\":\"gone\"}}\n");
    write_all(fd, (const char *)bad, sizeof bad);
    sleep_ms(200);
}

/* A node without frames: the send is a JSON line with the id send-<seq>, refused by id. */
static void script_call_json_fallback(int fd, server *s)
{
    read_request(fd, s);
    say(fd, "{\"ok\":true,\"id\":\"hello\",\"version\":2}\n");
    read_request(fd, s);
    say(fd, "{\"ok\":true,\"id\":\"subscribe\"}\n");
    read_request(fd, s);
    say(fd, "{\"ok\":true,\"id\":\"send-3\"}\n");
    say(fd, "{\"event\":\"message\",\"from\":\"AQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"port\":\"p\",\"data\":\"b2s=\"}\n");
    say(fd, "{\"ok\":false,\"id\":\"send-3\",\"error\":{\"code\":\"too_big\",\"message\":\"big\"}}\n");
    sleep_ms(200);
}

/* A sender's stream to a node of frames 1: hello asking for frames 2, two send frames (port "p",
 * 2 bytes each), then the flush request; the node reports the second send failed before the
 * answer. */
static void script_stream_with_frames(int fd, server *s)
{
    size_t want = 2 * (44 + 1 + 2), k = 0;
    read_request(fd, s);
    if (!strstr(s->got, "\"frames_max\":2")) /* the client asks up to 2; this node speaks 1 */
        return;
    say(fd, "{\"ok\":true,\"id\":\"hello\",\"version\":2,\"frames\":1}\n");
    while (k < want) {
        ssize_t r = read(fd, s->frame + k, want - k);
        if (r <= 0)
            return;
        k += (size_t)r;
    }
    read_request(fd, s);
    if (!strstr(s->got, "\"flush\""))
        return;
    say(fd, "{\"event\":\"send_failed\",\"seq\":2,\"error\":{\"code\":\"no_route\",\"message\":\"x\"}}\n");
    say(fd, "{\"event\":\"other\"}\n{\"ok\":true,\"id\":\"flush\"}\n");
    sleep_ms(200);
}

/* The same stream to a node without frames: JSON sends, each answered by its id. */
static void script_stream_json_fallback(int fd, server *s)
{
    read_request(fd, s);
    say(fd, "{\"ok\":true,\"id\":\"hello\",\"version\":2}\n");
    read_request(fd, s);
    say(fd, "{\"ok\":true,\"id\":\"send-1\"}\n");
    read_request(fd, s);
    say(fd, "{\"ok\":false,\"id\":\"send-2\",\"error\":{\"code\":\"too_big\",\"message\":\"big\"}}\n");
    read_request(fd, s);
    say(fd, "{\"ok\":true,\"id\":\"flush\"}\n");
    sleep_ms(200);
}

/* A stream: 40 message frames of 60000 bytes (frame i filled with the byte i) written at once,
 * a JSON line after the 20th, more bytes than the client's read buffer ever holds. */
#define STREAM_N 40
#define STREAM_LEN 60000
static void script_long_stream(int fd, server *s)
{
    size_t fl = 44 + 1 + STREAM_LEN;
    uint8_t *all = malloc(STREAM_N * fl + 32), *p = all;
    read_request(fd, s);
    say(fd, "{\"ok\":true,\"id\":\"hello\",\"version\":2,\"frames\":1}\n");
    read_request(fd, s);
    say(fd, "{\"ok\":true,\"id\":\"subscribe\"}\n");
    for (int i = 0; i < STREAM_N; i++) {
        static const uint8_t head[12] = {2, 0, 1, 0, 0, 0, 0, 0, 0, 0, STREAM_LEN >> 8, STREAM_LEN & 0xff};
        memcpy(p, head, sizeof head);
        memset(p + 12, 7, GM_PK_LEN);
        p[44] = 'p';
        memset(p + 45, i, STREAM_LEN);
        p += fl;
        if (i == 19) {
            memcpy(p, "{\"event\":\"mid\"}\n", 16);
            p += 16;
        }
    }
    write_all(fd, (const char *)all, (size_t)(p - all));
    free(all);
    sleep_ms(200);
}

/* ---- tests ---- */

/* Start the test node with script and open a connection subscribed to port "p" with frames. */
static gm_node_conn_t *open_subscribed(server *s, void (*script)(int, server *))
{
    gm_error err = {0};
    gm_node_conn_t *c = NULL;
    server_start(s, script);
    assert_int_equal(gm_node_conn_open_path(g_sock, &c, &err), 0);
    assert_int_equal(gm_node_conn_subscribe_frames(c, "p", 10000, &err), 0);
    return c;
}

static void test_call_sends_and_reads_on_its_subscription(void **state)
{
    (void)state;
    server s = {0};
    gm_error err = {0};
    gm_node_conn_t *c;
    json_t *line;
    gm_node_msg m;
    uint8_t to[GM_PK_LEN] = {1, 2, 3};
    c = open_subscribed(&s, script_call_on_one_connection);
    assert_int_equal(gm_node_conn_frames(c), 1);
    assert_int_equal(gm_node_conn_post(c, to, "p", "hi", 2, 1, &err), 0);
    /* a failure of another send is not ours */
    assert_int_equal(gm_node_conn_read_msg(c, &line, &m, 10000, &err), 0);
    assert_int_equal(gm_node_conn_post_failed(line, 1, to, &err), 0);
    json_decref(line);
    assert_int_equal(gm_node_conn_read_msg(c, &line, &m, 10000, &err), 1);
    assert_memory_equal(m.from, to, GM_PK_LEN);
    assert_int_equal(m.len, 2);
    assert_memory_equal(m.data, "ok", 2);
    assert_int_equal(gm_node_conn_read_msg(c, &line, &m, 10000, &err), 0);
    assert_int_equal(gm_node_conn_post_failed(line, 1, to, &err), GM_ENET);
    assert_non_null(strstr(err.msg, "no_route"));
    assert_non_null(strstr(err.msg, "gone"));
    json_decref(line);
    /* a frame the client cannot follow is a clear error, not a hang or a guess */
    assert_int_equal(gm_node_conn_read_msg(c, &line, &m, 10000, &err), GM_EPROTO);
    assert_non_null(strstr(err.msg, "bad frame"));
    gm_node_conn_close(c);
    server_join(&s);
    /* send, no confirmation asked, port length 1, seq 1, 2 bytes, the key, the port, the payload */
    static const uint8_t head[12] = {1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 2};
    assert_memory_equal(s.frame, head, sizeof head);
    assert_memory_equal(s.frame + 12, to, GM_PK_LEN);
    assert_memory_equal(s.frame + 44, "phi", 3);
}

static void test_hello_and_subscribe_in_one_round_trip(void **state)
{
    (void)state;
    server s = {0};
    gm_error err = {0};
    gm_node_conn_t *c;
    server_start(&s, script_hello_and_subscribe_together);
    assert_int_equal(gm_node_conn_open_path(g_sock, &c, &err), 0);
    /* waiting for hello's answer before sending subscribe would meet a silent node here */
    assert_int_equal(gm_node_conn_subscribe_frames(c, "p", 5000, &err), 0);
    assert_int_equal(gm_node_conn_frames(c), 1);
    gm_node_conn_close(c);
    server_join(&s);
}

static void test_call_on_a_node_without_frames_uses_json(void **state)
{
    (void)state;
    server s = {0};
    gm_error err = {0};
    gm_node_conn_t *c;
    json_t *line;
    gm_node_msg m;
    uint8_t to[GM_PK_LEN] = {1, 2, 3};
    c = open_subscribed(&s, script_call_json_fallback);
    assert_int_equal(gm_node_conn_frames(c), 0);
    assert_int_equal(gm_node_conn_post(c, to, "p", "hi", 2, 3, &err), 0);
    assert_int_equal(gm_node_conn_read_msg(c, &line, &m, 10000, &err), 0);
    assert_int_equal(gm_node_conn_post_failed(line, 3, to, &err), 0); /* {"ok":true}: taken */
    json_decref(line);
    assert_int_equal(gm_node_conn_read_msg(c, &line, &m, 10000, &err), 1);
    assert_memory_equal(m.from, to, 3);
    assert_int_equal(m.len, 2);
    assert_memory_equal(m.data, "ok", 2);
    assert_int_equal(gm_node_conn_read_msg(c, &line, &m, 10000, &err), 0);
    assert_int_equal(gm_node_conn_post_failed(line, 4, to, &err), 0); /* another send's answer */
    assert_int_equal(gm_node_conn_post_failed(line, 3, to, &err), GM_EPROTO);
    assert_non_null(strstr(err.msg, "too_big"));
    json_decref(line);
    gm_node_conn_close(c);
    server_join(&s);
    json_t *sent = json_loads(s.got, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(sent, "op")), "send");
    assert_string_equal(json_string_value(json_object_get(sent, "id")), "send-3");
    assert_string_equal(json_string_value(json_object_get(sent, "data")), "aGk=");
    json_decref(sent);
}

static void test_messages_arrive_as_raw_bytes_with_frames_or_json(void **state)
{
    (void)state;
    server s = {0};
    gm_error err = {0};
    gm_node_conn_t *c;
    json_t *ev;
    gm_node_msg m;
    c = open_subscribed(&s, script_frames_subscriber);
    assert_int_equal(gm_node_conn_read_msg(c, &ev, &m, 10000, &err), 1);
    assert_null(ev);
    assert_int_equal(m.len, 3);
    assert_memory_equal(m.data, "\0\n\xff", 3);
    assert_string_equal(m.port, "p");
    assert_int_equal(m.from[0], 9);
    assert_int_equal(gm_node_conn_read_msg(c, &ev, &m, 10000, &err), 0);
    assert_string_equal(json_string_value(json_object_get(ev, "event")), "other");
    json_decref(ev);
    assert_int_equal(gm_node_conn_read_msg(c, &ev, &m, 10000, &err), 1);
    assert_int_equal(m.len, 0);
    assert_string_equal(m.port, "q");
    gm_node_conn_close(c);
    server_join(&s);

    c = open_subscribed(&s, script_json_subscriber);
    assert_int_equal(gm_node_conn_read_msg(c, &ev, &m, 10000, &err), 1);
    assert_null(ev);
    assert_int_equal(m.len, 3);
    assert_memory_equal(m.data, "\0\n\xff", 3);
    assert_int_equal(m.from[0], 1);
    assert_int_equal(m.from[2], 3);
    gm_node_conn_close(c);
    server_join(&s);
}

/* 1 when the note of m is a JSON object with this sequence and rule. */
static int note_is(const gm_node_msg *m, long long sequence, const char *rule)
{
    json_t *o = m->note ? json_loadb(m->note, m->note_len, 0, NULL) : NULL;
    const char *r = json_string_value(json_object_get(o, "rule"));
    int ok = json_is_object(o) && json_integer_value(json_object_get(o, "sequence")) == sequence && r &&
             !strcmp(r, rule);
    json_decref(o);
    return ok;
}

static void test_noted_requests_arrive_with_their_note_as_frames_or_json(void **state)
{
    (void)state;
    server s = {0};
    gm_error err = {0};
    gm_node_conn_t *c;
    json_t *ev;
    gm_node_msg m;
    c = open_subscribed(&s, script_noted_frames);
    assert_int_equal(gm_node_conn_frames(c), 2);
    assert_int_equal(gm_node_conn_read_msg(c, &ev, &m, 10000, &err), 1);
    assert_null(ev);
    assert_int_equal(m.len, 2);
    assert_memory_equal(m.data, "hi", 2);
    assert_int_equal(m.from[0], 5);
    assert_true(note_is(&m, 3, "rule 1: allow role:a capability x"));
    /* a frame without the flag has no note */
    assert_int_equal(gm_node_conn_read_msg(c, &ev, &m, 10000, &err), 1);
    assert_int_equal(m.len, 1);
    assert_null(m.note);
    assert_int_equal(m.note_len, 0);
    /* the same note from a JSON event, one way for callers */
    assert_int_equal(gm_node_conn_read_msg(c, &ev, &m, 10000, &err), 1);
    assert_null(ev);
    assert_int_equal(m.len, 3);
    assert_memory_equal(m.data, "\0\n\xff", 3);
    assert_true(note_is(&m, 4, "default allow"));
    /* a note length past the payload is a clear error, and the stream cannot be followed after it */
    assert_int_equal(gm_node_conn_read_msg(c, &ev, &m, 10000, &err), GM_EPROTO);
    assert_non_null(strstr(err.msg, "note length 3 is more than the 2 bytes after it"));
    assert_int_equal(gm_node_conn_read_msg(c, &ev, &m, 10000, &err), GM_EPROTO);
    gm_node_conn_close(c);
    server_join(&s);
    assert_int_equal(s.big, 0); /* the client asked for frames 2 */

    c = open_subscribed(&s, script_noted_frame_on_frames_1);
    assert_int_equal(gm_node_conn_frames(c), 1);
    assert_int_equal(gm_node_conn_read_msg(c, &ev, &m, 10000, &err), GM_EPROTO);
    assert_non_null(strstr(err.msg, "noted frame on a frames 1 connection"));
    gm_node_conn_close(c);
    server_join(&s);
}

static void test_request_answered_byte_by_byte(void **state)
{
    (void)state;
    server s = {0};
    server_start(&s, script_byte_by_byte);
    json_t *req = json_pack("{s:s}", "op", "status"), *resp = NULL;
    gm_error err = {0};
    assert_int_equal(gm_node_api_call(g_dir, req, &resp, 10000, &err), 0);
    assert_true(json_is_true(json_object_get(resp, "ok")));
    assert_int_equal(json_integer_value(json_object_get(resp, "n")), 1);
    json_decref(req);
    json_decref(resp);
    server_join(&s);
    assert_string_equal(s.got, "{\"op\":\"status\"}");
}

static void test_several_lines_in_one_read_bad_line_then_partial_at_close(void **state)
{
    (void)state;
    server s = {0};
    server_start(&s, script_three_lines_at_once);
    gm_node_conn_t *c;
    gm_error err = {0};
    json_t *m = NULL;
    assert_int_equal(gm_node_conn_open_path(g_sock, &c, &err), 0);
    assert_int_equal(gm_node_conn_subscribe(c, "p", 10000, &err), 0);
    assert_int_equal(gm_node_conn_read(c, &m, 10000, &err), 0);
    assert_int_equal(json_integer_value(json_object_get(m, "n")), 2);
    json_decref(m);
    /* A line that is not JSON is an error of its own; the next line still reads. */
    assert_int_equal(gm_node_conn_read(c, &m, 10000, &err), GM_EPROTO);
    assert_null(m);
    assert_int_equal(gm_node_conn_read(c, &m, 10000, &err), 0);
    assert_int_equal(json_integer_value(json_object_get(m, "n")), 3);
    json_decref(m);
    /* The server closed after half a line: the half is not a message. */
    assert_int_equal(gm_node_conn_read(c, &m, 10000, &err), GM_EIO);
    assert_null(m);
    assert_non_null(strstr(err.msg, "closed"));
    gm_node_conn_close(c);
    server_join(&s);
    assert_string_equal(s.got, "{\"op\":\"subscribe\",\"port\":\"p\"}");
}

static void test_line_over_the_limit_is_refused(void **state)
{
    (void)state;
    server s = {0};
    s.big = GM_NODE_CONN_LINE_MAX + (1u << 16);
    server_start(&s, script_oversized_line);
    gm_node_conn_t *c;
    gm_error err = {0};
    json_t *m = NULL;
    assert_int_equal(gm_node_conn_open(g_dir, &c, &err), 0);
    assert_int_equal(gm_node_conn_read(c, &m, 30000, &err), GM_ETOOBIG);
    assert_null(m);
    assert_non_null(strstr(err.msg, "longer than"));
    gm_node_conn_close(c);
    server_join(&s);
}

static void test_line_at_the_limit_is_read(void **state)
{
    (void)state;
    server s = {0};
    s.big = GM_NODE_CONN_LINE_MAX - 10; /* the line {"big":"x...x"} is exactly the limit */
    server_start(&s, script_oversized_line);
    gm_node_conn_t *c;
    gm_error err = {0};
    json_t *m = NULL;
    assert_int_equal(gm_node_conn_open(g_dir, &c, &err), 0);
    if (gm_node_conn_read(c, &m, 30000, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(json_string_length(json_object_get(m, "big")), s.big);
    json_decref(m);
    gm_node_conn_close(c);
    server_join(&s);
}

static void test_silent_node_times_out(void **state)
{
    (void)state;
    server s = {0};
    server_start(&s, script_silent_then_close);
    json_t *req = json_pack("{s:s}", "op", "status"), *resp = NULL;
    gm_error err = {0};
    assert_int_equal(gm_node_api_call_path(g_sock, req, &resp, 100, &err), GM_ETIMEOUT);
    assert_null(resp);
    json_decref(req);
    server_join(&s);
}

static volatile sig_atomic_t g_alarms;

static void on_alarm(int sig)
{
    (void)sig;
    g_alarms++;
}

/* SIGALRM every 5 ms without SA_RESTART: every blocking call sees EINTR. */
static void alarms(int on)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on ? on_alarm : SIG_DFL;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, on ? 5000 : 0}, {0, on ? 5000 : 0}};
    setitimer(ITIMER_REAL, &it, NULL);
}

static void test_signals_neither_end_nor_stretch_a_wait(void **state)
{
    (void)state;
    server s = {0};
    gm_error err = {0};
    json_t *req = json_pack("{s:s}", "op", "status"), *resp = NULL;
    /* The answer comes after many signals: still read. */
    server_start(&s, script_late_answer);
    g_alarms = 0;
    alarms(1);
    int rc = gm_node_api_call_path(g_sock, req, &resp, 20000, &err);
    alarms(0);
    server_join(&s);
    if (rc != 0)
        fail_msg("interrupted: %s", err.msg);
    assert_true(g_alarms > 0);
    assert_true(json_is_true(json_object_get(resp, "late")));
    json_decref(resp);
    /* Nothing comes: signals every 5 ms do not restart the 200 ms deadline forever. */
    server_start(&s, script_silent_then_close);
    alarms(1);
    rc = gm_node_api_call_path(g_sock, req, &resp, 200, &err);
    alarms(0);
    server_join(&s);
    assert_int_equal(rc, GM_ETIMEOUT);
    json_decref(req);
}

static void test_no_node_is_not_found(void **state)
{
    (void)state;
    gm_node_conn_t *c = NULL;
    gm_error err = {0};
    unlink(g_sock);
    assert_int_equal(gm_node_conn_open(g_dir, &c, &err), GM_ENOTFOUND);
    assert_null(c);
    assert_non_null(strstr(err.msg, "node start"));
    assert_int_equal(gm_node_conn_open_path(g_sock, &c, &err), GM_ENOTFOUND);
    char longp[200];
    memset(longp, 'a', sizeof longp - 1);
    longp[sizeof longp - 1] = 0;
    assert_int_equal(gm_node_conn_open_path(longp, &c, &err), GM_EINVAL);
}

static void test_server_closing_mid_answer_is_an_error(void **state)
{
    (void)state;
    server s = {0};
    server_start(&s, script_close_mid_line);
    json_t *req = json_pack("{s:s}", "op", "status"), *resp = NULL;
    gm_error err = {0};
    assert_int_equal(gm_node_api_call(g_dir, req, &resp, 10000, &err), GM_EIO);
    assert_non_null(strstr(err.msg, "middle of a line"));
    assert_null(resp);
    json_decref(req);
    server_join(&s);
}

static void test_send_refusals_become_errors(void **state)
{
    (void)state;
    server s = {0};
    uint8_t to[GM_PK_LEN] = {1, 2, 3};
    gm_error err = {0};
    server_start(&s, script_no_route);
    assert_int_equal(gm_node_api_send(g_sock, to, "capability", "hi", 2, 10000, &err), GM_ENET);
    assert_non_null(strstr(err.msg, "no_route"));
    server_join(&s);
    json_t *sent = json_loads(s.got, 0, NULL);
    assert_non_null(sent);
    assert_string_equal(json_string_value(json_object_get(sent, "op")), "send");
    assert_string_equal(json_string_value(json_object_get(sent, "data")), "aGk=");
    json_decref(sent);

    server_start(&s, script_frames_no_route);
    memset(&err, 0, sizeof err);
    assert_int_equal(gm_node_api_send(g_sock, to, "capability", "hi", 2, 10000, &err), GM_ENET);
    assert_non_null(strstr(err.msg, "no_route"));
    server_join(&s);
    json_t *hello = json_loads(s.got, 0, NULL);
    /* 1 (all a node from before frames 2 understands) and the highest we speak apart */
    assert_int_equal(json_integer_value(json_object_get(hello, "frames")), 1);
    assert_int_equal(json_integer_value(json_object_get(hello, "frames_max")), 2);
    json_decref(hello);
    /* send, ack asked, port length 10, seq 1, 2 bytes, the key, the port, the payload */
    static const uint8_t head[12] = {1, 1, 10, 0, 0, 0, 0, 1, 0, 0, 0, 2};
    assert_memory_equal(s.frame, head, sizeof head);
    assert_memory_equal(s.frame + 12, to, GM_PK_LEN);
    assert_memory_equal(s.frame + 44, "capabilityhi", 12);

    server_start(&s, script_subscribe_refused);
    gm_node_conn_t *c;
    assert_int_equal(gm_node_conn_open_path(g_sock, &c, &err), 0);
    assert_int_equal(gm_node_conn_subscribe(c, "p", 10000, &err), GM_EPROTO);
    assert_non_null(strstr(err.msg, "bad port"));
    gm_node_conn_close(c);
    server_join(&s);
}

static int setup(void **state)
{
    (void)state;
    gm_error err = {0};
    assert_int_equal(gm_init(&err), 0);
    signal(SIGPIPE, SIG_IGN);
    snprintf(g_dir, sizeof g_dir, "/tmp/gm-client.XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    snprintf(g_sock, sizeof g_sock, "%s/node.sock", g_dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(g_sock);
    rmdir(g_dir);
    return 0;
}

/* Two posts and a flush against the scripted node: frames (1) or JSON sends (0) as wanted, and
 * the flush counts the one send the script refuses. */
static void stream_two_posts(server *s, void (*script)(int, server *), int want_frames, const uint8_t to[GM_PK_LEN])
{
    gm_error err = {0};
    gm_node_conn_t *c;
    size_t failed = 9;
    server_start(s, script);
    assert_int_equal(gm_node_conn_open_path(g_sock, &c, &err), 0);
    assert_int_equal(gm_node_conn_hello_frames(c, 10000, &err), 0);
    assert_int_equal(gm_node_conn_frames(c), want_frames);
    assert_int_equal(gm_node_conn_post(c, to, "p", "ab", 2, 1, &err), 0);
    assert_int_equal(gm_node_conn_post(c, to, "p", "cd", 2, 2, &err), 0);
    assert_int_equal(gm_node_conn_post_flush(c, 10000, &failed, &err), 0);
    assert_int_equal(failed, 1);
    gm_node_conn_close(c);
    server_join(s);
}

/* A program streams with the public API: posts without a round trip each, then one flush
 * that counts the sends the node could not take. */
static void test_stream_posts_then_flush_counts_failures(void **state)
{
    (void)state;
    server s = {0};
    uint8_t to[GM_PK_LEN] = {4, 5, 6};
    stream_two_posts(&s, script_stream_with_frames, 1, to);
    static const uint8_t head2[12] = {1, 0, 1, 0, 0, 0, 0, 2, 0, 0, 0, 2};
    assert_memory_equal(s.frame + 47, head2, sizeof head2);
    assert_memory_equal(s.frame + 47 + 12, to, GM_PK_LEN);
    assert_memory_equal(s.frame + 47 + 44, "pcd", 3);
}

static void test_stream_to_a_node_without_frames_uses_json(void **state)
{
    (void)state;
    server s = {0};
    uint8_t to[GM_PK_LEN] = {4, 5, 6};
    stream_two_posts(&s, script_stream_json_fallback, 0, to);
}

/* Many messages read at once: each arrives whole and in order, the JSON line between them too
 * (the client keeps its read position instead of moving the rest after every message). */
static void test_a_long_stream_of_frames_arrives_whole(void **state)
{
    (void)state;
    server s = {0};
    gm_error err = {0};
    gm_node_conn_t *c;
    json_t *line;
    gm_node_msg m;
    int got = 0;
    c = open_subscribed(&s, script_long_stream);
    while (got < STREAM_N) {
        int rc = gm_node_conn_read_msg(c, &line, &m, 10000, &err);
        if (rc == 0) {
            assert_int_equal(got, 20);
            assert_string_equal(json_string_value(json_object_get(line, "event")), "mid");
            json_decref(line);
            continue;
        }
        assert_int_equal(rc, 1);
        assert_int_equal(m.len, STREAM_LEN);
        assert_int_equal(m.data[0], got);
        assert_int_equal(m.data[STREAM_LEN - 1], got);
        assert_int_equal(m.from[31], 7);
        got++;
    }
    gm_node_conn_close(c);
    server_join(&s);
}

/* SO_SNDBUF of every socket of this process, by descriptor (-1: not a socket). */
#define FD_SCAN 256
static void sndbufs(int out[FD_SCAN])
{
    for (int fd = 0; fd < FD_SCAN; fd++) {
        int v = -1;
        socklen_t l = sizeof v;
        if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, &l) != 0)
            v = -1;
        out[fd] = v;
    }
}

/* A sender on a frames connection writes several messages between two wake-ups: its socket's
 * send buffer is raised to 1 MiB (the kernel doubles it; capped by net.core.wmem_max). */
static void test_a_frames_connection_gets_a_larger_send_buffer(void **state)
{
    (void)state;
    server s = {0};
    gm_error err = {0};
    gm_node_conn_t *c;
    int before[FD_SCAN], after[FD_SCAN], raised = 0;
    long wmem_max = 0;
    FILE *f = fopen("/proc/sys/net/core/wmem_max", "r");
    if (f) {
        if (fscanf(f, "%ld", &wmem_max) != 1)
            wmem_max = 0;
        fclose(f);
    }
    long want = 2 * (wmem_max < (1 << 20) ? wmem_max : (1 << 20));
    server_start(&s, script_stream_with_frames);
    assert_int_equal(gm_node_conn_open_path(g_sock, &c, &err), 0);
    sndbufs(before);
    assert_int_equal(gm_node_conn_hello_frames(c, 10000, &err), 0);
    sndbufs(after);
    for (int fd = 0; fd < FD_SCAN; fd++)
        if (after[fd] != before[fd] && before[fd] >= 0 && after[fd] == want)
            raised++;
    gm_node_conn_close(c);
    server_join(&s);
    if (wmem_max == 0)
        skip(); /* no /proc to read the cap from */
    assert_int_equal(raised, 1);
}

static void test_a_held_subscription_goes_with_the_post_or_before_a_read(void **state)
{
    (void)state;
    server s = {0};
    gm_error err = {0};
    gm_node_conn_t *c;
    json_t *line;
    uint8_t to[GM_PK_LEN] = {1, 2, 3};
    assert_int_equal(sem_init(&g_held, 0, 0), 0);
    assert_int_equal(sem_init(&g_checked, 0, 0), 0);
    c = open_subscribed(&s, script_resubscribe_held);
    assert_int_equal(gm_node_conn_park(c, &err), 0);
    assert_int_equal(gm_node_conn_resubscribe(c, "p", &err), 0);
    sem_post(&g_held);
    while (sem_wait(&g_checked) != 0)
        ;
    assert_int_equal(gm_node_conn_post(c, to, "p", "hi", 2, 1, &err), 0);
    assert_int_equal(gm_node_conn_resubscribe(c, "p", &err), 0);
    /* no post: the held line goes out before the wait, or this read would wait for nothing */
    assert_int_equal(gm_node_conn_read(c, &line, 10000, &err), 0);
    assert_string_equal(json_string_value(json_object_get(line, "event")), "after");
    json_decref(line);
    gm_node_conn_close(c);
    server_join(&s);
    sem_destroy(&g_held);
    sem_destroy(&g_checked);
    assert_int_equal(s.big, 0);
    assert_memory_equal(s.frame + 44, "phi", 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_answered_byte_by_byte),
        cmocka_unit_test(test_a_held_subscription_goes_with_the_post_or_before_a_read),
        cmocka_unit_test(test_several_lines_in_one_read_bad_line_then_partial_at_close),
        cmocka_unit_test(test_line_over_the_limit_is_refused),
        cmocka_unit_test(test_line_at_the_limit_is_read),
        cmocka_unit_test(test_silent_node_times_out),
        cmocka_unit_test(test_signals_neither_end_nor_stretch_a_wait),
        cmocka_unit_test(test_no_node_is_not_found),
        cmocka_unit_test(test_server_closing_mid_answer_is_an_error),
        cmocka_unit_test(test_send_refusals_become_errors),
        cmocka_unit_test(test_messages_arrive_as_raw_bytes_with_frames_or_json),
        cmocka_unit_test(test_noted_requests_arrive_with_their_note_as_frames_or_json),
        cmocka_unit_test(test_call_sends_and_reads_on_its_subscription),
        cmocka_unit_test(test_hello_and_subscribe_in_one_round_trip),
        cmocka_unit_test(test_call_on_a_node_without_frames_uses_json),
        cmocka_unit_test(test_stream_posts_then_flush_counts_failures),
        cmocka_unit_test(test_a_long_stream_of_frames_arrives_whole),
        cmocka_unit_test(test_a_frames_connection_gets_a_larger_send_buffer),
        cmocka_unit_test(test_stream_to_a_node_without_frames_uses_json),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
