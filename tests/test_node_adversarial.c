/* A malicious peer against a real node: the test starts an NA and two real node processes
 * (target and friend, friend dialling target) through the genesis-mesh binary, then talks
 * to the target with the library's own Noise and wire code the way an attacker would:
 * another network's genesis (other prologue), a certificate of another network, an expired
 * certificate, a certificate whose key is not the Noise static key, a forged certificate,
 * a replayed handshake message, garbage bytes, oversized and empty frames, garbage after a
 * handshake, a relay advertising identities without certificates, DATA with a spoofed
 * source or no way forward, half-open connection floods from one and from many addresses,
 * a peer that stops reading while a local sender bursts, and a subscriber that stops
 * reading. After each: the target still serves (status works, the friend is still its peer,
 * a fresh legitimate peer completes a handshake and gets a PONG), and the counter of
 * refused/failed handshakes went up.
 *
 * The binary: $GM_BIN, else $GM_BUILD/genesis-mesh, else ../genesis-mesh next to this test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "gm/cert.h"
#include "gm/crl.h"
#include "gm/genesis.h"
#include "gm/keys.h"
#include "gm/na_client.h"
#include "gm/node.h"
#include "noise.h"
#include "gm/util.h"
#include "gm/http_client.h"
#include "route_origin.h"
#include "wire.h"
#include "core_internal.h"
#include "node_checks.h"

#define WAIT_MS 30000 /* failure bound of every poll; never asserted as a duration */
#define HS_FRAME_MAX 16384

static char g_bin[4096];
static char g_tmp[256];
static pid_t g_pids[16];
static size_t g_npids;
static char g_na_url[128];
static int g_target_port;
static int g_friend_port;
static char g_target_sock[512];
static char g_target_pk_b64[GM_PK_B64_LEN + 1];
static char g_friend_pk_b64[GM_PK_B64_LEN + 1];
static char *g_friend_cert;  /* friend's certificate JSON (valid, of this network) */
static gm_genesis g_genesis, g_other_genesis;
static gm_signer g_na, g_other_na;
static uint8_t g_prologue[GM_NODE_PROLOGUE_LEN], g_other_prologue[GM_NODE_PROLOGUE_LEN];

/* ------------------------------------------------------------------ processes */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void find_binary(void)
{
    const char *b = getenv("GM_BIN"), *build = getenv("GM_BUILD");
    if (b && access(b, X_OK) == 0) {
        snprintf(g_bin, sizeof g_bin, "%s", b);
        return;
    }
    if (build) {
        snprintf(g_bin, sizeof g_bin, "%s/genesis-mesh", build);
        if (access(g_bin, X_OK) == 0)
            return;
    }
    char self[3800];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(n > 0);
    self[n] = 0;
    char *slash = strrchr(self, '/');
    *slash = 0;
    snprintf(g_bin, sizeof g_bin, "%s/../genesis-mesh", self);
    assert_int_equal(access(g_bin, X_OK), 0);
}

/* Start argv in the background, stdout+stderr appended to log. The child dies with us. */
static pid_t spawn(const char *log, char *const argv[])
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    g_pids[g_npids++] = pid;
    return pid;
}

/* Run argv to completion; its stdout (NUL-terminated) into out. Returns the exit status. */
static int run(char *out, size_t cap, char *const argv[])
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char log[300];
        snprintf(log, sizeof log, "%s/commands.log", g_tmp);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        dup2(p[1], 1);
        if (fd >= 0)
            dup2(fd, 2);
        close(p[0]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    size_t len = 0;
    ssize_t r;
    while ((r = read(p[0], out + len, cap - 1 - len)) > 0 && len + (size_t)r < cap - 1)
        len += (size_t)r;
    if (r > 0)
        len += (size_t)r;
    out[len] = 0;
    close(p[0]);
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void stop_all(void)
{
    for (size_t i = 0; i < g_npids; i++)
        if (g_pids[i] > 0)
            kill(g_pids[i], SIGTERM);
    for (size_t i = 0; i < g_npids; i++) {
        if (g_pids[i] <= 0)
            continue;
        uint64_t end = now_ms() + 10000;
        int st;
        while (waitpid(g_pids[i], &st, WNOHANG) == 0) {
            if (now_ms() > end) {
                kill(g_pids[i], SIGKILL);
                waitpid(g_pids[i], &st, 0);
                break;
            }
            sleep_ms(50);
        }
        g_pids[i] = 0;
    }
    g_npids = 0;
}

static int read_int_file(const char *path)
{
    FILE *f = fopen(path, "r");
    int v = -1;
    if (f) {
        if (fscanf(f, "%d", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

static int wait_port_file(const char *path, pid_t pid)
{
    uint64_t end = now_ms() + WAIT_MS;
    int st;
    while (now_ms() < end) {
        int v = read_int_file(path);
        if (v > 0)
            return v;
        if (waitpid(pid, &st, WNOHANG) == pid)
            fail_msg("process writing %s exited early (see logs in %s)", path, g_tmp);
        sleep_ms(50);
    }
    fail_msg("timed out waiting for %s", path);
    return -1;
}

static void path_in(char *out, size_t cap, const char *a, const char *b)
{
    snprintf(out, cap, "%s/%s%s%s", g_tmp, a, b ? "/" : "", b ? b : "");
}

static void read_pub(const char *dir, char out[GM_PK_B64_LEN + 1])
{
    char p[400];
    uint8_t pk[GM_PK_LEN];
    gm_error err = {0};
    path_in(p, sizeof p, dir, "node.pub");
    assert_int_equal(gm_pk_load(p, pk, &err), 0);
    gm_pk_encode(pk, out);
}

/* ------------------------------------------------------------------ local API */

static json_t *api(const char *sock_path, const char *line)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(sock_path) >= sizeof sa.sun_path) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (write(fd, line, strlen(line)) != (ssize_t)strlen(line) || write(fd, "\n", 1) != 1) {
        close(fd);
        return NULL;
    }
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        ssize_t r = read(fd, buf + len, cap - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        if (memchr(buf, '\n', len) || len >= cap - 1)
            break;
    }
    close(fd);
    buf[len] = 0;
    json_t *j = json_loads(buf, JSON_DISABLE_EOF_CHECK, NULL);
    free(buf);
    return j;
}

/* The status object of the target (fields at top level, or under "status"). */
static json_t *target_status(void)
{
    json_t *r = api(g_target_sock, "{\"op\":\"status\"}");
    if (!r)
        return NULL;
    json_t *s = json_object_get(r, "status");
    if (json_is_object(s)) {
        json_incref(s);
        json_decref(r);
        return s;
    }
    return r;
}

/* Sum of the target's counters whose name contains every one of the words (NULL-ended). */
static long long metric_sum(const char *w1, const char *w2)
{
    json_t *s = target_status();
    assert_non_null(s);
    json_t *m = json_object_get(s, "metrics");
    assert_true(json_is_object(m));
    const char *k;
    json_t *v;
    long long sum = 0;
    json_object_foreach(m, k, v)
    {
        if (strstr(k, w1) && (!w2 || strstr(k, w2)) && json_is_number(v))
            sum += (long long)json_number_value(v);
    }
    json_decref(s);
    return sum;
}

/* The metric selected like metric_sum(w1, w2) rises above before (polled: counters are
 * updated after the connection closes). */
static void assert_metric_rises(const char *w1, const char *w2, long long before)
{
    uint64_t end = now_ms() + WAIT_MS;
    while (metric_sum(w1, w2) <= before && now_ms() < end)
        sleep_ms(50);
    assert_true(metric_sum(w1, w2) > before);
}

/* Everything the node counts as a refused or failed connection attempt. */
static long long refused_total(void)
{
    return metric_sum("handshake", "refused") + metric_sum("handshake", "failed") +
           metric_sum("connections_refused", NULL);
}

static int has_peer(const char *pk_b64)
{
    json_t *s = target_status();
    if (!s)
        return 0;
    json_t *peers = json_object_get(s, "peers"), *p;
    size_t i;
    int found = 0;
    json_array_foreach(peers, i, p)
    {
        const char *k = json_string_value(json_object_get(p, "node_public_key"));
        if (k && strcmp(k, pk_b64) == 0)
            found = 1;
    }
    json_decref(s);
    return found;
}

static int has_route(const char *pk_b64)
{
    json_t *s = target_status();
    if (!s)
        return 0;
    json_t *routes = json_object_get(s, "routes"), *r;
    size_t i;
    int found = 0;
    json_array_foreach(routes, i, r)
    {
        const char *k = json_string_value(json_object_get(r, "destination"));
        json_int_t m = json_integer_value(json_object_get(r, "metric"));
        if (k && strcmp(k, pk_b64) == 0 && m < 0xFFFF)
            found = 1;
    }
    json_decref(s);
    return found;
}

/* ------------------------------------------------------------------ identities */

typedef struct ident {
    gm_signer key;
    uint8_t x_sk[32], x_pk[32];
    char *cert; /* JSON sent as handshake payload */
    size_t cert_len;
    char cert_id[37];
} ident;

/* A fresh key with a certificate for network, signed by issuer, valid from..to. */
static void ident_make(ident *id, const gm_signer *issuer, const char *network, gm_time from, gm_time to)
{
    gm_error err = {0};
    gm_cert c;
    memset(id, 0, sizeof *id);
    assert_int_equal(gm_signer_generate(&id->key, "adv", &err), 0);
    assert_int_equal(gm_noise_static_from_ed25519_seed(id->key.sk, id->x_sk, id->x_pk, &err), 0);
    json_t *roles = json_pack("[s]", "role:test");
    assert_int_equal(gm_cert_issue(&c, issuer, network, id->key.pk, roles, from, to, &err), 0);
    json_decref(roles);
    id->cert = gm_cert_dump(&c, 0);
    id->cert_len = strlen(id->cert);
    memcpy(id->cert_id, c.cert_id, sizeof id->cert_id);
    gm_cert_free(&c);
}

static void ident_valid(ident *id)
{
    gm_time now = gm_time_now();
    ident_make(id, &g_na, g_genesis.network_name, gm_time_add(now, -60), gm_time_add(now, 86400));
}

static void ident_free(ident *id)
{
    free(id->cert);
    gm_signer_wipe(&id->key);
    sodium_memzero(id->x_sk, sizeof id->x_sk);
}

static ident g_victim;          /* joined as "victim" by victim_join() */
static long long g_victim_crl;  /* sequence of the NA's CRL that lists it, after victim_revoke() */

/* ------------------------------------------------------------------ the attacker's socket */

/* A TCP connection to the target from src_ip (NULL: any); rcvbuf > 0 shrinks our receive
 * buffer (set before connecting, so the advertised window stays small). */
static int tcp_connect_rcvbuf(const char *src_ip, int rcvbuf, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (src_ip) {
        struct sockaddr_in src = {.sin_family = AF_INET};
        inet_pton(AF_INET, src_ip, &src.sin_addr);
        assert_int_equal(bind(fd, (struct sockaddr *)&src, sizeof src), 0);
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)(port ? port : g_target_port))};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int tcp_connect(const char *src_ip)
{
    return tcp_connect_rcvbuf(src_ip, 0, 0);
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static int send_frame(int fd, const uint8_t *body, size_t len)
{
    uint8_t hdr[2] = {(uint8_t)(len >> 8), (uint8_t)len};
    return write_all(fd, hdr, 2) || write_all(fd, body, len) ? -1 : 0;
}

/* 1: got len bytes; 0: EOF or reset; -1: nothing within timeout_ms. */
static int read_exact(int fd, uint8_t *p, size_t len, int timeout_ms)
{
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    while (len) {
        struct pollfd pf = {fd, POLLIN, 0};
        int64_t left = (int64_t)(end - now_ms());
        if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
            return -1;
        ssize_t r = recv(fd, p, len, 0);
        if (r <= 0)
            return 0;
        p += r;
        len -= (size_t)r;
    }
    return 1;
}

static int recv_frame(int fd, uint8_t *out, size_t cap, size_t *len, int timeout_ms)
{
    uint8_t hdr[2];
    int rc = read_exact(fd, hdr, 2, timeout_ms);
    if (rc != 1)
        return rc;
    *len = ((size_t)hdr[0] << 8) | hdr[1];
    if (*len > cap)
        return 0;
    return read_exact(fd, out, *len, timeout_ms);
}

/* 1 when the node closed the connection (EOF/reset) within the bound. */
static int wait_closed(int fd)
{
    uint8_t b[4096];
    uint64_t end = now_ms() + WAIT_MS;
    while (now_ms() < end) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, 200) > 0) {
            ssize_t r = recv(fd, b, sizeof b, 0);
            if (r <= 0)
                return 1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ handshakes */

enum { HS_ACCEPTED = 1, HS_CLOSED = 2, HS_OUR_READ_FAILED = 3 };

typedef struct hs_opts {
    const uint8_t *prologue;
    const uint8_t *x_sk;      /* our X25519 static key */
    const char *payload;      /* certificate sent in message 3 */
    size_t payload_len;
    const char *src_ip;       /* bind the source address, NULL = any */
    const uint8_t *msg1;      /* replay these instead of computing them */
    size_t msg1_len;
    const uint8_t *msg3;
    size_t msg3_len;
    uint8_t cap1[512], cap3[HS_FRAME_MAX]; /* what we sent, for later replays */
    size_t cap1_len, cap3_len;
    int keep_open;            /* leave the link up: fd/tx/rx stay valid */
    int listen_only;          /* after message 3 send nothing: wait for the node's first message */
    int rcvbuf;               /* > 0: small receive buffer on our socket */
    int port;                 /* node to dial (0: the target) */
    int fd;
    gm_noise_cipher tx, rx;
    char responder_cert[HS_FRAME_MAX + 1];
    uint8_t responder_static[32];
} hs_opts;

/* Reason of the last CLOSE a ping_pong received from the node, -1 if none. */
static int g_close_reason = -1;

/* Send PING on an established link, wait for the PONG (skipping other messages; a CLOSE
 * ends the wait and is remembered in g_close_reason). */
static int ping_pong(int fd, gm_noise_cipher *tx, gm_noise_cipher *rx)
{
    static uint8_t frame[GM_WIRE_FRAME_MAX], msg[GM_WIRE_FRAME_MAX];
    uint8_t ping[16], ct[64];
    size_t plen, clen, flen, mlen;
    uint64_t nonce = 0x5eed5eed12345678ULL, got;
    gm_error err = {0};
    assert_int_equal(gm_wire_ping_encode(nonce, ping, sizeof ping, &plen, &err), 0);
    assert_int_equal(gm_noise_encrypt(tx, NULL, 0, ping, plen, ct, sizeof ct, &clen, &err), 0);
    if (send_frame(fd, ct, clen) != 0)
        return 0;
    uint64_t end = now_ms() + WAIT_MS;
    while (now_ms() < end) {
        if (recv_frame(fd, frame, sizeof frame, &flen, (int)(end - now_ms())) != 1)
            return 0;
        if (gm_noise_decrypt(rx, NULL, 0, frame, flen, msg, sizeof msg, &mlen, &err) != 0)
            fail_msg("cannot decrypt a transport message from the node: %s", err.msg);
        if (mlen > 0 && msg[0] == GM_WIRE_PONG && gm_wire_pong_decode(msg, mlen, &got, &err) == 0 && got == nonce)
            return 1;
        /* Answer the node's heartbeat, so a session kept open stays up. */
        if (mlen > 0 && msg[0] == GM_WIRE_PING && gm_wire_ping_decode(msg, mlen, &got, &err) == 0 &&
            gm_wire_pong_encode(got, ping, sizeof ping, &plen, &err) == 0 &&
            gm_noise_encrypt(tx, NULL, 0, ping, plen, ct, sizeof ct, &clen, &err) == 0 && send_frame(fd, ct, clen) != 0)
            return 0;
        gm_wire_close c;
        if (mlen > 0 && msg[0] == GM_WIRE_CLOSE && gm_wire_close_decode(msg, mlen, &c, &err) == 0) {
            g_close_reason = c.reason;
            return 0;
        }
    }
    return 0;
}

/* The node's first transport message on a new link: HS_CLOSED for a CLOSE (its reason in
 * g_close_reason) or the end of the connection, HS_ACCEPTED for anything else. Sending nothing
 * ourselves keeps a refused link from ending in a reset that would drop the CLOSE. */
static int first_message(int fd, gm_noise_cipher *rx)
{
    static uint8_t frame[GM_WIRE_FRAME_MAX], msg[GM_WIRE_FRAME_MAX];
    size_t flen, mlen;
    gm_error err = {0};
    gm_wire_close c;
    if (recv_frame(fd, frame, sizeof frame, &flen, WAIT_MS) != 1)
        return HS_CLOSED;
    if (gm_noise_decrypt(rx, NULL, 0, frame, flen, msg, sizeof msg, &mlen, &err) != 0)
        fail_msg("cannot decrypt a transport message from the node: %s", err.msg);
    if (mlen > 0 && msg[0] == GM_WIRE_CLOSE && gm_wire_close_decode(msg, mlen, &c, &err) == 0) {
        g_close_reason = c.reason;
        return HS_CLOSED;
    }
    return HS_ACCEPTED;
}

/* Run an XX handshake as initiator. Returns HS_ACCEPTED when the node answered our PING on
 * the new link, HS_CLOSED when it closed the connection, HS_OUR_READ_FAILED when its message
 * 2 did not authenticate on our side (then we send random bytes as message 3 and wait for
 * the node to close). */
static int handshake(hs_opts *o)
{
    gm_noise_handshake_t *hs = NULL;
    gm_error err = {0};
    static uint8_t buf[HS_FRAME_MAX], payload[HS_FRAME_MAX];
    size_t len, plen;
    int result;
    o->fd = tcp_connect_rcvbuf(o->src_ip, o->rcvbuf, o->port);
    assert_int_equal(gm_noise_handshake_new(&hs, GM_NOISE_XX, 1, o->prologue, GM_NODE_PROLOGUE_LEN, o->x_sk, NULL, &err), 0);
    if (o->msg1) {
        assert_int_equal(send_frame(o->fd, o->msg1, o->msg1_len), 0);
        /* Our state does not match the replayed message: we cannot read message 2. */
    } else {
        assert_int_equal(gm_noise_write_message(hs, NULL, 0, o->cap1, sizeof o->cap1, &o->cap1_len, &err), 0);
        assert_int_equal(send_frame(o->fd, o->cap1, o->cap1_len), 0);
    }
    int rc = recv_frame(o->fd, buf, sizeof buf, &len, WAIT_MS);
    if (rc != 1) {
        result = HS_CLOSED;
        goto out;
    }
    if (o->msg3) {
        /* Replay: message 3 of an earlier session. */
        assert_int_equal(send_frame(o->fd, o->msg3, o->msg3_len), 0);
        result = wait_closed(o->fd) ? HS_CLOSED : HS_ACCEPTED;
        goto out;
    }
    if (o->msg1 || gm_noise_read_message(hs, buf, len, payload, sizeof payload - 1, &plen, &err) != 0) {
        uint8_t junk[200];
        randombytes_buf(junk, sizeof junk);
        send_frame(o->fd, junk, sizeof junk);
        result = wait_closed(o->fd) ? HS_OUR_READ_FAILED : -1;
        goto out;
    }
    memcpy(o->responder_cert, payload, plen);
    o->responder_cert[plen] = 0;
    memcpy(o->responder_static, gm_noise_remote_static(hs), 32);
    assert_int_equal(gm_noise_write_message(hs, (const uint8_t *)o->payload, o->payload_len, o->cap3, sizeof o->cap3,
                                            &o->cap3_len, &err), 0);
    assert_int_equal(send_frame(o->fd, o->cap3, o->cap3_len), 0);
    assert_int_equal(gm_noise_split(hs, &o->tx, &o->rx, &err), 0);
    result = o->listen_only ? first_message(o->fd, &o->rx) : ping_pong(o->fd, &o->tx, &o->rx) ? HS_ACCEPTED : HS_CLOSED;
out:
    gm_noise_handshake_free(hs);
    if (!(o->keep_open && result == HS_ACCEPTED)) {
        close(o->fd);
        o->fd = -1;
        gm_noise_cipher_wipe(&o->tx);
        gm_noise_cipher_wipe(&o->rx);
    }
    return result;
}

static int handshake_as(const ident *id, const uint8_t *prologue)
{
    hs_opts *o = calloc(1, sizeof *o);
    o->prologue = prologue;
    o->x_sk = id->x_sk;
    o->payload = id->cert;
    o->payload_len = id->cert_len;
    int r = handshake(o);
    free(o);
    return r;
}

/* The target is still fine: local API answers, friend still a peer, a new legitimate peer
 * completes a handshake and gets a PONG. */
static void assert_still_serving(void)
{
    json_t *s = target_status();
    assert_non_null(s);
    assert_true(json_is_true(json_object_get(s, "running")));
    json_decref(s);
    assert_true(has_peer(g_friend_pk_b64));
    ident good;
    ident_valid(&good);
    assert_int_equal(handshake_as(&good, g_prologue), HS_ACCEPTED);
    ident_free(&good);
}

/* A session the target accepted, as identity id, left open for the test to use. */
static hs_opts *open_session(const ident *id)
{
    hs_opts *o = calloc(1, sizeof *o);
    assert_non_null(o);
    o->prologue = g_prologue;
    o->x_sk = id->x_sk;
    o->payload = id->cert;
    o->payload_len = id->cert_len;
    o->keep_open = 1;
    assert_int_equal(handshake(o), HS_ACCEPTED);
    return o;
}

static void close_session(hs_opts *o)
{
    close(o->fd);
    gm_noise_cipher_wipe(&o->tx);
    gm_noise_cipher_wipe(&o->rx);
    free(o);
}

/* The refused/failed counters rise above before (they are updated after the close). */
static void assert_counted(long long before, const char *w1, const char *w2)
{
    uint64_t end = now_ms() + WAIT_MS;
    while (now_ms() < end) {
        if (refused_total() > before && (!w1 || metric_sum(w1, w2) > 0))
            return;
        sleep_ms(50);
    }
    fail_msg("refused/failed counters did not rise (%lld -> %lld; %s %s = %lld)", before, refused_total(),
             w1 ? w1 : "", w2 ? w2 : "", w1 ? metric_sum(w1, w2) : 0);
}

/* ------------------------------------------------------------------ setup */

static void load_network(const char *dir, gm_genesis *g, gm_signer *na, uint8_t prologue[GM_NODE_PROLOGUE_LEN])
{
    char p[400];
    gm_error err = {0};
    path_in(p, sizeof p, dir, "genesis.json");
    assert_int_equal(gm_genesis_load(p, g, &err), 0);
    path_in(p, sizeof p, dir, "na");
    if (gm_signer_load(na, p, "na-local", &err) != 0)
        fail_msg("cannot load the NA key %s.key: %s", p, err.msg);
    assert_memory_equal(na->pk, g->na_pk, GM_PK_LEN);
    uint8_t h[32];
    gm_genesis_network_id(g, h);
    memcpy(prologue, GM_NODE_PROLOGUE_LABEL, sizeof GM_NODE_PROLOGUE_LABEL - 1);
    memcpy(prologue + sizeof GM_NODE_PROLOGUE_LABEL - 1, h, 32);
}

static void join(const char *name, const char *role)
{
    char out[4096], dir[400];
    char net[300];
    path_in(net, sizeof net, "net", NULL);
    path_in(dir, sizeof dir, name, NULL);
    char *inv[] = {g_bin, "admin", "invite", "--role", (char *)role, "--json", "--dir", net, "--na", g_na_url, NULL};
    if (run(out, sizeof out, inv) != 0)
        fail_msg("admin invite failed (see %s/commands.log)", g_tmp);
    json_t *j = json_loads(out, 0, NULL);
    assert_non_null(j);
    const char *tok = json_string_value(json_object_get(j, "token"));
    if (!tok)
        tok = json_string_value(json_object_get(j, "invite_token"));
    assert_non_null(tok);
    char token[256];
    snprintf(token, sizeof token, "%s", tok);
    json_decref(j);
    char ca[400];
    path_in(ca, sizeof ca, "net", "tls.crt");
    char *jn[] = {g_bin, "join", "--na", g_na_url, "--na-ca", ca, "--token", token, "--dir", dir, NULL};
    if (run(out, sizeof out, jn) != 0)
        fail_msg("join of %s failed (see %s/commands.log)", name, g_tmp);
}

static pid_t start_node(const char *name, const char *peer, int *port)
{
    char dir[400], pf[400], log[400];
    path_in(dir, sizeof dir, name, NULL);
    path_in(pf, sizeof pf, name, "port");
    path_in(log, sizeof log, name, "node.log");
    char *argv[16] = {g_bin, "node", "start", "--dir", dir, "--listen", "127.0.0.1:0", "--port-file", pf,
                      "--log-level", "debug", NULL};
    size_t k = 11;
    if (peer) {
        argv[k++] = "--peer";
        argv[k++] = (char *)peer;
    }
    argv[k] = NULL;
    pid_t pid = spawn(log, argv);
    *port = wait_port_file(pf, pid);
    return pid;
}

static int group_setup(void **state)
{
    (void)state;
    gm_error err = {0};
    char out[4096], net[300], other[300], pf[300], log[300];
    assert_int_equal(gm_init(&err), 0);
    signal(SIGPIPE, SIG_IGN);
    find_binary();
    snprintf(g_tmp, sizeof g_tmp, "%s/gm-adv.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(g_tmp));
    path_in(net, sizeof net, "net", NULL);
    path_in(other, sizeof other, "other", NULL);

    char *init1[] = {g_bin, "init", "--dir", net, "--network", "ADVNET", NULL};
    assert_int_equal(run(out, sizeof out, init1), 0);
    /* Another network of the same name: only its genesis (and NA key) differ. */
    char *init2[] = {g_bin, "init", "--dir", other, "--network", "ADVNET", NULL};
    assert_int_equal(run(out, sizeof out, init2), 0);
    load_network("net", &g_genesis, &g_na, g_prologue);
    load_network("other", &g_other_genesis, &g_other_na, g_other_prologue);
    assert_memory_not_equal(g_prologue, g_other_prologue, GM_NODE_PROLOGUE_LEN);

    path_in(pf, sizeof pf, "na.port", NULL);
    path_in(log, sizeof log, "na.log", NULL);
    char *na[] = {g_bin, "na", "start", "--dir", net, "--listen", "127.0.0.1:0", "--port-file", pf, NULL};
    pid_t na_pid = spawn(log, na);
    /* The NA serves HTTPS with the certificate init made; joins verify it with that file. */
    snprintf(g_na_url, sizeof g_na_url, "https://127.0.0.1:%d", wait_port_file(pf, na_pid));
    char na_ca[400];
    path_in(na_ca, sizeof na_ca, "net", "tls.crt");
    assert_int_equal(gm_http_trust_set(g_na_url, na_ca, NULL, &err), 0); /* our own CRL fetches */

    join("target", "role:supervisor");
    join("friend", "role:finance");
    read_pub("target", g_target_pk_b64);
    read_pub("friend", g_friend_pk_b64);
    char p[400];
    size_t len;
    path_in(p, sizeof p, "friend", "cert.json");
    assert_int_equal(gm_file_read(p, 65536, &g_friend_cert, &len, &err), 0);
    path_in(g_target_sock, sizeof g_target_sock, "target", "node.sock");

    start_node("target", NULL, &g_target_port);
    char peer[64];
    snprintf(peer, sizeof peer, "127.0.0.1:%d", g_target_port);
    start_node("friend", peer, &g_friend_port);
    uint64_t end = now_ms() + WAIT_MS;
    while (!has_peer(g_friend_pk_b64)) {
        if (now_ms() > end)
            fail_msg("friend never became a peer of target (logs in %s)", g_tmp);
        sleep_ms(100);
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    stop_all();
    free(g_friend_cert);
    ident_free(&g_victim);
    gm_genesis_free(&g_genesis);
    gm_genesis_free(&g_other_genesis);
    gm_signer_wipe(&g_na);
    gm_signer_wipe(&g_other_na);
    if (!getenv("GM_KEEP_TMP")) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", g_tmp);
    }
    return 0;
}

/* ------------------------------------------------------------------ tests */

static void test_legitimate_peer_is_accepted_and_node_cert_matches_its_static(void **state)
{
    (void)state;
    ident good;
    ident_valid(&good);
    hs_opts *o = calloc(1, sizeof *o);
    o->prologue = g_prologue;
    o->x_sk = good.x_sk;
    o->payload = good.cert;
    o->payload_len = good.cert_len;
    assert_int_equal(handshake(o), HS_ACCEPTED);
    /* The node proved its identity: its certificate names the key that did the DH. */
    gm_cert c;
    gm_trust_reason why;
    gm_error err = {0};
    assert_int_equal(gm_node_trust_check(&g_genesis, NULL, (const uint8_t *)o->responder_cert,
                                         strlen(o->responder_cert), o->responder_static, gm_time_now(), &c, &why, &err), 0);
    assert_string_equal(c.node_pk_b64, g_target_pk_b64);
    gm_cert_free(&c);
    free(o);
    ident_free(&good);
}

static void test_node_of_another_network_fails_handshake(void **state)
{
    (void)state;
    long long before = refused_total();
    ident alien;
    gm_time now = gm_time_now();
    /* A perfectly valid member of the other network: its prologue is not ours. */
    ident_make(&alien, &g_other_na, g_other_genesis.network_name, gm_time_add(now, -60), gm_time_add(now, 86400));
    assert_int_equal(handshake_as(&alien, g_other_prologue), HS_OUR_READ_FAILED);
    assert_counted(before, NULL, NULL);
    /* Same member pretending to be on our network (our prologue): its NA is not ours. */
    before = refused_total();
    assert_int_equal(handshake_as(&alien, g_prologue), HS_CLOSED);
    assert_counted(before, "refused", NULL);
    ident_free(&alien);
    assert_still_serving();
}

static void test_certificate_for_another_network_name_is_refused(void **state)
{
    (void)state;
    long long before = metric_sum("refused", "network");
    ident id;
    gm_time now = gm_time_now();
    /* Signed by our own NA key, but for another network name. */
    ident_make(&id, &g_na, "SOMEWHERE-ELSE", gm_time_add(now, -60), gm_time_add(now, 86400));
    assert_int_equal(handshake_as(&id, g_prologue), HS_CLOSED);
    assert_metric_rises("refused", "network", before);
    ident_free(&id);
    assert_still_serving();
}

static void test_expired_certificate_is_refused(void **state)
{
    (void)state;
    long long before = metric_sum("refused", "expired");
    ident id;
    gm_time now = gm_time_now();
    ident_make(&id, &g_na, g_genesis.network_name, gm_time_add(now, -10 * 86400), gm_time_add(now, -86400));
    assert_int_equal(handshake_as(&id, g_prologue), HS_CLOSED);
    assert_metric_rises("refused", "expired", before);
    ident_free(&id);
    /* Not yet valid (issued in the future beyond the skew) is refused too. */
    before = refused_total();
    ident_make(&id, &g_na, g_genesis.network_name, gm_time_add(now, 86400), gm_time_add(now, 2 * 86400));
    assert_int_equal(handshake_as(&id, g_prologue), HS_CLOSED);
    assert_counted(before, NULL, NULL);
    ident_free(&id);
    assert_still_serving();
}

static void test_certificate_of_another_key_is_refused(void **state)
{
    (void)state;
    long long before = metric_sum("refused", "mismatch");
    ident id;
    ident_valid(&id);
    /* Our Noise static key, but the friend's (valid) certificate. */
    hs_opts *o = calloc(1, sizeof *o);
    o->prologue = g_prologue;
    o->x_sk = id.x_sk;
    o->payload = g_friend_cert;
    o->payload_len = strlen(g_friend_cert);
    assert_int_equal(handshake(o), HS_CLOSED);
    free(o);
    assert_metric_rises("refused", "mismatch", before);
    ident_free(&id);
    assert_still_serving();
}

static void test_forged_certificate_is_refused(void **state)
{
    (void)state;
    long long before = metric_sum("refused", "signature");
    gm_signer forger;
    gm_error err = {0};
    assert_int_equal(gm_signer_generate(&forger, g_na.key_id, &err), 0);
    ident id;
    gm_time now = gm_time_now();
    ident_make(&id, &forger, g_genesis.network_name, gm_time_add(now, -60), gm_time_add(now, 86400));
    assert_int_equal(handshake_as(&id, g_prologue), HS_CLOSED);
    assert_metric_rises("refused", "signature", before);
    ident_free(&id);
    /* A legitimate certificate with one byte of a signed member changed. */
    ident_valid(&id);
    char *roles = strstr(id.cert, "role:test");
    assert_non_null(roles);
    memcpy(roles, "role:TEST", 9);
    before = refused_total();
    assert_int_equal(handshake_as(&id, g_prologue), HS_CLOSED);
    assert_counted(before, NULL, NULL);
    ident_free(&id);
    gm_signer_wipe(&forger);
    assert_still_serving();
}

static void test_replayed_handshake_message_is_refused(void **state)
{
    (void)state;
    ident id;
    ident_valid(&id);
    hs_opts *first = calloc(1, sizeof *first);
    first->prologue = g_prologue;
    first->x_sk = id.x_sk;
    first->payload = id.cert;
    first->payload_len = id.cert_len;
    assert_int_equal(handshake(first), HS_ACCEPTED);
    uint64_t end = now_ms() + WAIT_MS;
    char pk[GM_PK_B64_LEN + 1];
    gm_pk_encode(id.key.pk, pk);
    while (has_peer(pk) && now_ms() < end)
        sleep_ms(50);
    assert_false(has_peer(pk));

    /* Replay message 1 and message 3 of that session into a new connection: message 3 was
     * bound to the old responder ephemeral and must not authenticate. */
    long long before = refused_total();
    hs_opts *replay = calloc(1, sizeof *replay);
    replay->prologue = g_prologue;
    replay->x_sk = id.x_sk;
    replay->msg1 = first->cap1;
    replay->msg1_len = first->cap1_len;
    replay->msg3 = first->cap3;
    replay->msg3_len = first->cap3_len;
    assert_int_equal(handshake(replay), HS_CLOSED);
    assert_counted(before, NULL, NULL);
    assert_false(has_peer(pk));

    /* Fresh message 1, replayed message 3. */
    before = refused_total();
    memset(replay, 0, sizeof *replay);
    replay->prologue = g_prologue;
    replay->x_sk = id.x_sk;
    replay->payload = id.cert;
    replay->payload_len = id.cert_len;
    replay->msg3 = first->cap3;
    replay->msg3_len = first->cap3_len;
    assert_int_equal(handshake(replay), HS_CLOSED);
    assert_counted(before, NULL, NULL);
    assert_false(has_peer(pk));
    free(first);
    free(replay);
    ident_free(&id);
    assert_still_serving();
}

static void test_garbage_bytes_are_refused(void **state)
{
    (void)state;
    for (int round = 0; round < 3; round++) {
        long long before = refused_total();
        int fd = tcp_connect(NULL);
        uint8_t junk[4096];
        randombytes_buf(junk, sizeof junk);
        if (round == 0) {
            /* A plausible frame header, random body, then more random frames. */
            junk[0] = 0;
            junk[1] = 200;
        }
        write_all(fd, junk, round == 2 ? 7 : sizeof junk);
        shutdown(fd, SHUT_WR);
        assert_true(wait_closed(fd));
        close(fd);
        assert_counted(before, NULL, NULL);
    }
    assert_still_serving();
}

static void test_oversized_and_empty_frames_are_refused(void **state)
{
    (void)state;
    const uint16_t lens[] = {0xFFFF, HS_FRAME_MAX + 1, 0};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        long long before = refused_total();
        int fd = tcp_connect(NULL);
        uint8_t hdr[2] = {(uint8_t)(lens[i] >> 8), (uint8_t)lens[i]};
        write_all(fd, hdr, 2);
        /* Start streaming a body: the node must not wait for (or buffer) 64 KiB. */
        uint8_t body[1024];
        memset(body, 0x41, sizeof body);
        write_all(fd, body, sizeof body);
        assert_true(wait_closed(fd));
        close(fd);
        assert_counted(before, NULL, NULL);
    }
    assert_still_serving();
}

static void test_garbage_after_handshake_closes_only_that_link(void **state)
{
    (void)state;
    ident id;
    ident_valid(&id);
    hs_opts *o = open_session(&id);
    long long decrypt_drops = metric_sum("links_dropped_decrypt", NULL);
    uint8_t junk[300];
    randombytes_buf(junk, sizeof junk);
    assert_int_equal(send_frame(o->fd, junk, sizeof junk), 0);
    assert_true(wait_closed(o->fd));
    /* Counted as a transport decrypt failure. */
    assert_metric_rises("links_dropped_decrypt", NULL, decrypt_drops);
    close_session(o);
    ident_free(&id);
    assert_still_serving();
}

static void test_relay_cannot_advertise_identities_without_certificates(void **state)
{
    (void)state;
    ident id;
    ident_valid(&id);
    hs_opts *o = open_session(&id);
    long long refused_before = metric_sum("routes_refused_no_cert", NULL);
    /* Advertise a destination nobody certified, one hop behind us. */
    gm_wire_route_entry e;
    memset(&e, 0, sizeof e);
    randombytes_buf(e.dest, sizeof e.dest);
    e.seqno = 1000;
    e.metric = 1;
    e.hops = 1;
    uint8_t msg[256], ct[300];
    size_t mlen, clen;
    gm_error err = {0};
    assert_int_equal(gm_wire_route_update_encode(&e, 1, msg, sizeof msg, &mlen, &err), 0);
    assert_int_equal(gm_noise_encrypt(&o->tx, NULL, 0, msg, mlen, ct, sizeof ct, &clen, &err), 0);
    assert_int_equal(send_frame(o->fd, ct, clen), 0);
    /* The PONG to a later PING proves the update was processed (one TCP stream, in order). */
    assert_true(ping_pong(o->fd, &o->tx, &o->rx));
    char ghost[GM_PK_B64_LEN + 1], pk[GM_PK_B64_LEN + 1];
    gm_pk_encode(e.dest, ghost);
    gm_pk_encode(id.key.pk, pk);
    assert_false(has_route(ghost));
    assert_true(metric_sum("routes_refused_no_cert", NULL) > refused_before);
    /* Our own identity (certified in the handshake) is routable. */
    uint64_t end = now_ms() + WAIT_MS;
    while (!has_peer(pk) && now_ms() < end)
        sleep_ms(50);
    assert_true(has_peer(pk));
    close_session(o);
    ident_free(&id);
    assert_still_serving();
}

/* Send one DATA message on an established link. */
static void send_data(hs_opts *o, const uint8_t *src, const uint8_t *dst, uint8_t ttl, const uint8_t *payload,
                      size_t len)
{
    static uint8_t msg[GM_WIRE_MSG_MAX], ct[GM_WIRE_FRAME_MAX];
    gm_wire_data d;
    size_t mlen, clen;
    gm_error err = {0};
    memcpy(d.src, src, 32);
    memcpy(d.dst, dst, 32);
    d.ttl = ttl;
    d.payload = payload;
    d.payload_len = len;
    assert_int_equal(gm_wire_data_encode(&d, msg, sizeof msg, &mlen, &err), 0);
    assert_int_equal(gm_noise_encrypt(&o->tx, NULL, 0, msg, mlen, ct, sizeof ct, &clen, &err), 0);
    assert_int_equal(send_frame(o->fd, ct, clen), 0);
}

static void test_spoofed_and_misrouted_data_is_dropped(void **state)
{
    (void)state;
    ident id;
    ident_valid(&id);
    hs_opts *o = open_session(&id);
    uint8_t target[32], friend_pk[32], nobody[32], junk[200];
    gm_error err = {0};
    assert_int_equal(gm_pk_decode(g_target_pk_b64, target, &err), 0);
    assert_int_equal(gm_pk_decode(g_friend_pk_b64, friend_pk, &err), 0);
    randombytes_buf(nobody, sizeof nobody);
    long long e2e_drops = metric_sum("e2e_drop", NULL), received = metric_sum("e2e_received", NULL);
    long long no_route = metric_sum("data_drop_no_route", NULL), ttl = metric_sum("data_drop_ttl", NULL);
    /* End-to-end messages that claim to come from the friend: handshake init, handshake
     * response and transport, each with random contents. */
    for (uint8_t kind = 1; kind <= 3; kind++) {
        randombytes_buf(junk, sizeof junk);
        junk[0] = kind;
        send_data(o, friend_pk, target, 8, junk, sizeof junk);
    }
    /* Misrouted: to a key nobody has, and with the hop limit exhausted. */
    send_data(o, id.key.pk, nobody, 8, junk, sizeof junk);
    send_data(o, id.key.pk, friend_pk, 1, junk, sizeof junk);
    /* One TCP stream: the PONG comes after all of the above were processed. */
    assert_true(ping_pong(o->fd, &o->tx, &o->rx));
    assert_true(metric_sum("e2e_drop", NULL) >= e2e_drops + 3);
    assert_int_equal(metric_sum("e2e_received", NULL), received);
    assert_true(metric_sum("data_drop_no_route", NULL) > no_route);
    assert_true(metric_sum("data_drop_ttl", NULL) > ttl);
    close_session(o);
    ident_free(&id);
    assert_still_serving();
}

static void test_halfopen_flood_from_one_address_does_not_block_peers(void **state)
{
    (void)state;
    long long before = metric_sum("connections_refused", NULL);
    int fds[40];
    /* Silent connections from 127.0.0.2: they hold handshake slots until they time out. */
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        fds[i] = tcp_connect("127.0.0.2");
    assert_metric_rises("connections_refused", NULL, before);
    /* A legitimate peer from another address completes its handshake meanwhile. */
    ident good;
    ident_valid(&good);
    assert_int_equal(handshake_as(&good, g_prologue), HS_ACCEPTED);
    ident_free(&good);
    assert_true(has_peer(g_friend_pk_b64));
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        close(fds[i]);
    assert_still_serving();
}


static void test_halfopen_flood_from_many_addresses_does_not_block_peers(void **state)
{
    (void)state;
    enum { ADDRS = 12, PER_ADDR = 8 }; /* 96 half-open connections: more than the 64 slots */
    int fds[ADDRS * PER_ADDR];
    long long evicted = metric_sum("connections_evicted", NULL);
    gm_error err = {0};
    /* Round 0: silent connections. Round 1: each sends a valid message 1 and stalls (it then
     * holds its slot until the full handshake timeout). */
    for (int round = 0; round < 2; round++) {
        size_t k = 0;
        for (int a = 0; a < ADDRS; a++) {
            char ip[32];
            snprintf(ip, sizeof ip, "127.0.0.%d", 10 + round * 20 + a);
            for (int i = 0; i < PER_ADDR; i++) {
                fds[k] = tcp_connect(ip);
                if (round == 1) {
                    gm_noise_handshake_t *hs = NULL;
                    uint8_t m1[128], x_sk[32];
                    size_t m1_len;
                    randombytes_buf(x_sk, sizeof x_sk); /* message 1 carries only the ephemeral key */
                    assert_int_equal(gm_noise_handshake_new(&hs, GM_NOISE_XX, 1, g_prologue, GM_NODE_PROLOGUE_LEN,
                                                            x_sk, NULL, &err), 0);
                    assert_int_equal(gm_noise_write_message(hs, NULL, 0, m1, sizeof m1, &m1_len, &err), 0);
                    assert_int_equal(send_frame(fds[k], m1, m1_len), 0);
                    gm_noise_handshake_free(hs);
                }
                k++;
            }
        }
        /* A legitimate peer completes its handshake while the flood connections are open. */
        ident good;
        ident_valid(&good);
        assert_int_equal(handshake_as(&good, g_prologue), HS_ACCEPTED);
        ident_free(&good);
        assert_true(metric_sum("connections_evicted", NULL) > evicted);
        evicted = metric_sum("connections_evicted", NULL);
        for (size_t i = 0; i < k; i++)
            close(fds[i]);
    }
    assert_still_serving();
}

/* ---- a peer that stops reading while a local client sends through the API ---- */

static void put32be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void uuid_bytes(const char *s, uint8_t out[16])
{
    size_t k = 0;
    for (; *s && k < 32; s++) {
        if (*s == '-')
            continue;
        int v = *s <= '9' ? *s - '0' : (*s | 0x20) - 'a' + 10;
        out[k / 2] = k % 2 ? (uint8_t)(out[k / 2] | v) : (uint8_t)(v << 4);
        k++;
    }
    assert_int_equal(k, 32);
}

static void link_send_msg(hs_opts *o, const uint8_t *msg, size_t len)
{
    static uint8_t ct[GM_WIRE_FRAME_MAX];
    size_t clen;
    gm_error err = {0};
    assert_int_equal(gm_noise_encrypt(&o->tx, NULL, 0, msg, len, ct, sizeof ct, &clen, &err), 0);
    assert_int_equal(send_frame(o->fd, ct, clen), 0);
}

/* Announce our own identity (with its certificate id) so the target routes to us. */
static void announce_self(hs_opts *o, const ident *id)
{
    gm_wire_route_entry e;
    uint8_t msg[256];
    size_t mlen;
    gm_error err = {0};
    memset(&e, 0, sizeof e);
    memcpy(e.dest, id->key.pk, 32);
    e.seqno = 1;
    e.has_cert_id = 1;
    uuid_bytes(id->cert_id, e.cert_id);
    /* Our own route, with its origin signed for the target (our neighbour). */
    uint8_t target[32];
    assert_int_equal(gm_pk_decode(g_target_pk_b64, target, &err), 0);
    assert_int_equal(gm_route_origin_sign(&e, target, (uint64_t)gm_time_now().unix_s, id->key.sk, &err), 0);
    assert_int_equal(gm_wire_route_update_encode(&e, 1, msg, sizeof msg, &mlen, &err), 0);
    link_send_msg(o, msg, mlen);
}

/* A peer that announces a newer CRL and drops the target's first CRL_REQUEST (as a peer does
 * with a second request within a second): the target must ask again after its request timeout
 * instead of waiting for the chunks forever (the bug: its "requested" flag never cleared). */
static void test_dropped_doc_request_is_asked_again(void **state)
{
    (void)state;
    static uint8_t frame[GM_WIRE_FRAME_MAX], msg[GM_WIRE_FRAME_MAX];
    ident id;
    ident_valid(&id);
    hs_opts *o = open_session(&id);
    uint8_t ann[16], pong[16];
    size_t alen, flen, mlen, plen;
    gm_error err = {0};
    assert_int_equal(gm_wire_crl_announce_encode((uint64_t)1 << 40, ann, sizeof ann, &alen, &err), 0);
    link_send_msg(o, ann, alen);
    int requests = 0;
    uint64_t end = now_ms() + WAIT_MS;
    while (requests < 2 && now_ms() < end) {
        if (recv_frame(o->fd, frame, sizeof frame, &flen, (int)(end - now_ms())) != 1)
            break;
        if (gm_noise_decrypt(&o->rx, NULL, 0, frame, flen, msg, sizeof msg, &mlen, &err) != 0)
            fail_msg("cannot decrypt a transport message from the node: %s", err.msg);
        uint64_t nonce;
        if (mlen > 0 && msg[0] == GM_WIRE_CRL_REQUEST)
            requests++; /* never answered: dropped */
        else if (mlen > 0 && msg[0] == GM_WIRE_PING && gm_wire_ping_decode(msg, mlen, &nonce, &err) == 0 &&
                 gm_wire_pong_encode(nonce, pong, sizeof pong, &plen, &err) == 0)
            link_send_msg(o, pong, plen);
    }
    close_session(o);
    ident_free(&id);
    if (requests < 2)
        fail_msg("the target asked for the announced CRL %d time(s) and then waited forever", requests);
    assert_still_serving();
}

/* What a minimal end-to-end responder does with the target's messages on our link: answer
 * PINGs and HS_INIT, count transport messages. */
typedef struct fake_peer {
    hs_opts *o;
    ident *id;
    uint8_t target_pk[32];
    size_t transports;
} fake_peer;

static void fake_answer_hs_init(fake_peer *f, const uint8_t *p, size_t len)
{
    static const char label[] = "genesis-mesh/v1/e2e-ik";
    uint8_t prologue[sizeof label - 1 + 32], ts[16], out[256], msg[512];
    size_t tlen, olen, mlen;
    gm_noise_handshake_t *hs = NULL;
    gm_error err = {0};
    memcpy(prologue, label, sizeof label - 1);
    memcpy(prologue + sizeof label - 1, g_prologue + sizeof GM_NODE_PROLOGUE_LABEL - 1, 32);
    assert_true(len > 5);
    assert_int_equal(gm_noise_handshake_new(&hs, GM_NOISE_IK, 0, prologue, sizeof prologue, f->id->x_sk, NULL, &err), 0);
    assert_int_equal(gm_noise_read_message(hs, p + 5, len - 5, ts, sizeof ts, &tlen, &err), 0);
    out[0] = 2; /* HS_RESP || our index || their index || IK message 2 */
    put32be(out + 1, 0x5eed0001);
    memcpy(out + 5, p + 1, 4);
    assert_int_equal(gm_noise_write_message(hs, NULL, 0, out + 9, sizeof out - 9, &olen, &err), 0);
    gm_noise_handshake_free(hs);
    gm_wire_data d;
    memcpy(d.src, f->id->key.pk, 32);
    memcpy(d.dst, f->target_pk, 32);
    d.ttl = 8;
    d.payload = out;
    d.payload_len = olen + 9;
    assert_int_equal(gm_wire_data_encode(&d, msg, sizeof msg, &mlen, &err), 0);
    link_send_msg(f->o, msg, mlen);
}

/* Read and handle one message from the target (the caller saw the socket readable). */
static void fake_read_one(fake_peer *f)
{
    static uint8_t frame[GM_WIRE_FRAME_MAX], msg[GM_WIRE_FRAME_MAX];
    size_t flen = 0, mlen = 0;
    gm_error err = {0};
    if (recv_frame(f->o->fd, frame, sizeof frame, &flen, WAIT_MS) != 1)
        fail_msg("the target closed our link (logs in %s)", g_tmp);
    if (gm_noise_decrypt(&f->o->rx, NULL, 0, frame, flen, msg, sizeof msg, &mlen, &err) != 0)
        fail_msg("cannot decrypt a message from the target: %s", err.msg);
    if (mlen == 0)
        return;
    if (msg[0] == GM_WIRE_PING) {
        uint64_t nonce;
        uint8_t pong[16];
        size_t plen;
        assert_int_equal(gm_wire_ping_decode(msg, mlen, &nonce, &err), 0);
        assert_int_equal(gm_wire_pong_encode(nonce, pong, sizeof pong, &plen, &err), 0);
        link_send_msg(f->o, pong, plen);
    } else if (msg[0] == GM_WIRE_DATA) {
        gm_wire_data d;
        assert_int_equal(gm_wire_data_decode(msg, mlen, &d, &err), 0);
        if (d.payload_len > 0 && d.payload[0] == 1)
            fake_answer_hs_init(f, d.payload, d.payload_len);
        else if (d.payload_len > 0 && d.payload[0] == 3 && d.payload_len != 13 + 2 + 16)
            f->transports++; /* (13 + 2 + 16 bytes: a path probe, not a message) */
    }
}

/* A local API client sending `count` copies of one request line without waiting, counting
 * the answers (non-blocking: the node may stop reading us). */
typedef struct api_pump {
    int fd;
    char *line;
    size_t line_len, count, written, off, answered, ok;
    char rbuf[65536];
    size_t rlen;
} api_pump;

static int api_connect(void)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    assert_true(fd >= 0 && strlen(g_target_sock) < sizeof sa.sun_path);
    memcpy(sa.sun_path, g_target_sock, strlen(g_target_sock) + 1);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static void pump_init(api_pump *p, const char *to_b64, const char *port, size_t size, size_t count)
{
    uint8_t *data = malloc(size);
    char *b64 = malloc(gm_b64_len(size) + 1);
    memset(p, 0, sizeof *p);
    randombytes_buf(data, size);
    gm_b64_encode(data, size, b64, gm_b64_len(size) + 1);
    p->line_len = strlen(b64) + 200;
    p->line = malloc(p->line_len);
    p->line_len = (size_t)snprintf(p->line, p->line_len, "{\"op\":\"send\",\"to\":\"%s\",\"port\":\"%s\",\"data\":\"%s\"}\n",
                                   to_b64, port, b64);
    p->count = count;
    p->fd = api_connect();
    fcntl(p->fd, F_SETFL, fcntl(p->fd, F_GETFL) | O_NONBLOCK);
    free(data);
    free(b64);
}

static void pump_free(api_pump *p)
{
    close(p->fd);
    free(p->line);
}

static short pump_events(const api_pump *p)
{
    return (short)(POLLIN | (p->written < p->count ? POLLOUT : 0));
}

static void pump_io(api_pump *p)
{
    while (p->written < p->count) {
        ssize_t w = send(p->fd, p->line + p->off, p->line_len - p->off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        p->off += (size_t)w;
        if (p->off == p->line_len) {
            p->off = 0;
            p->written++;
        }
    }
    for (;;) {
        ssize_t r = recv(p->fd, p->rbuf + p->rlen, sizeof p->rbuf - p->rlen, 0);
        if (r <= 0)
            break;
        p->rlen += (size_t)r;
        char *nl;
        while ((nl = memchr(p->rbuf, '\n', p->rlen))) {
            *nl = 0;
            p->answered++;
            if (strstr(p->rbuf, "\"ok\":true"))
                p->ok++;
            else
                fprintf(stderr, "send answered: %s\n", p->rbuf);
            size_t used = (size_t)(nl - p->rbuf) + 1;
            memmove(p->rbuf, nl + 1, p->rlen - used);
            p->rlen -= used;
        }
    }
}

static void test_local_sender_burst_waits_for_a_peer_that_stops_reading(void **state)
{
    (void)state;
    enum { SIZE = 60000, COUNT = 400 }; /* 24 MB: far beyond kernel buffers and the 4 MiB cap */
    gm_error err = {0};
    ident id;
    ident_valid(&id);
    hs_opts *o = calloc(1, sizeof *o);
    o->prologue = g_prologue;
    o->x_sk = id.x_sk;
    o->payload = id.cert;
    o->payload_len = id.cert_len;
    o->keep_open = 1;
    o->rcvbuf = 16384;
    assert_int_equal(handshake(o), HS_ACCEPTED);
    fake_peer f = {.o = o, .id = &id};
    assert_int_equal(gm_pk_decode(g_target_pk_b64, f.target_pk, &err), 0);
    char pk[GM_PK_B64_LEN + 1];
    gm_pk_encode(id.key.pk, pk);
    announce_self(o, &id);
    uint64_t end = now_ms() + WAIT_MS;
    while (!has_route(pk) && now_ms() < end)
        sleep_ms(50);
    assert_true(has_route(pk));
    long long dropped = metric_sum("links_dropped_sendq", NULL), paused = metric_sum("api_paused", NULL);
    long long queue_drops = metric_sum("e2e_drop_queue", NULL);

    /* One message first: the end-to-end session (we answer the IK handshake). */
    api_pump first;
    pump_init(&first, pk, "burst", 10, 1);
    end = now_ms() + WAIT_MS;
    while ((first.answered < 1 || f.transports < 1) && now_ms() < end) {
        struct pollfd pf[2] = {{first.fd, pump_events(&first), 0}, {o->fd, POLLIN, 0}};
        if (poll(pf, 2, 100) > 0 && (pf[1].revents & POLLIN))
            fake_read_one(&f);
        pump_io(&first);
    }
    assert_int_equal(first.ok, 1);
    assert_int_equal(f.transports, 1);
    pump_free(&first);

    /* We stop reading; the client keeps sending. The node must stop reading the client
     * (backpressure) instead of queueing without bound and dropping our link. */
    api_pump p;
    pump_init(&p, pk, "burst", SIZE, COUNT);
    end = now_ms() + 2 * WAIT_MS;
    uint64_t next_check = 0;
    while (p.answered < COUNT && now_ms() < end) {
        struct pollfd pf = {p.fd, pump_events(&p), 0};
        poll(&pf, 1, 50);
        pump_io(&p);
        if (now_ms() >= next_check) {
            if (metric_sum("api_paused", NULL) > paused)
                break;
            next_check = now_ms() + 100;
        }
    }
    assert_true(metric_sum("api_paused", NULL) > paused);
    assert_true(p.answered < COUNT);
    assert_int_equal(metric_sum("links_dropped_sendq", NULL), dropped);
    assert_true(has_peer(pk));

    /* We read again: every message arrives, every send is answered ok, the link stayed up. */
    end = now_ms() + 4 * WAIT_MS;
    while ((p.answered < COUNT || f.transports < COUNT + 1) && now_ms() < end) {
        struct pollfd pf[2] = {{p.fd, pump_events(&p), 0}, {o->fd, POLLIN, 0}};
        if (poll(pf, 2, 100) > 0 && (pf[1].revents & POLLIN))
            fake_read_one(&f);
        pump_io(&p);
    }
    assert_int_equal(p.ok, COUNT);
    assert_int_equal(f.transports, COUNT + 1);
    assert_int_equal(metric_sum("links_dropped_sendq", NULL), dropped);
    assert_int_equal(metric_sum("e2e_drop_queue", NULL), queue_drops);
    assert_true(has_peer(pk));
    pump_free(&p);
    close_session(o);
    ident_free(&id);
    assert_still_serving();
}

/* Read from fd until EOF (or the bound); returns the bytes (NUL-terminated), *len their count. */
static char *read_until_eof(int fd, size_t *len)
{
    size_t cap = 1 << 20;
    char *buf = malloc(cap + 1);
    *len = 0;
    uint64_t end = now_ms() + 2 * WAIT_MS;
    while (now_ms() < end) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, 200) <= 0)
            continue;
        if (*len == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
        }
        ssize_t r = recv(fd, buf + *len, cap - *len, 0);
        if (r <= 0)
            break;
        *len += (size_t)r;
    }
    buf[*len] = 0;
    return buf;
}

static void test_slow_subscriber_gets_whole_lines_then_an_overflow_notice(void **state)
{
    (void)state;
    enum { SIZE = 60000, COUNT = 300 }; /* ~24 MB of event lines: more than the 16 MiB queue */
    long long overflows = metric_sum("api_overflow", NULL);
    int sub = api_connect();
    const char *req = "{\"op\":\"subscribe\",\"port\":\"ovf\"}\n";
    assert_int_equal(write_all(sub, (const uint8_t *)req, strlen(req)), 0);
    char ok[64];
    size_t k = 0;
    while (k < sizeof ok - 1 && read(sub, ok + k, 1) == 1 && ok[k] != '\n')
        k++;
    ok[k] = 0;
    assert_non_null(strstr(ok, "\"ok\":true"));
    /* Messages to the target itself go to its subscribers; ours does not read for now. */
    api_pump p;
    pump_init(&p, g_target_pk_b64, "ovf", SIZE, COUNT);
    uint64_t end = now_ms() + 4 * WAIT_MS;
    while (p.answered < COUNT && now_ms() < end) {
        struct pollfd pf = {p.fd, pump_events(&p), 0};
        poll(&pf, 1, 100);
        pump_io(&p);
    }
    assert_int_equal(p.ok, COUNT);
    pump_free(&p);
    end = now_ms() + WAIT_MS;
    while (metric_sum("api_overflow", NULL) <= overflows && now_ms() < end)
        sleep_ms(50);
    assert_true(metric_sum("api_overflow", NULL) > overflows);
    /* Now read: only whole JSON lines, the messages queued before the overflow, then one
     * overflow line saying how many were dropped, then the end of the connection. */
    size_t len;
    char *all = read_until_eof(sub, &len);
    close(sub);
    assert_true(len > 0 && all[len - 1] == '\n');
    size_t messages = 0, lines = 0;
    long long dropped = -1;
    for (char *line = all, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
        *nl = 0;
        lines++;
        json_t *j = json_loads(line, 0, NULL);
        if (!j)
            fail_msg("line %zu is not JSON (%zu bytes)", lines, strlen(line));
        const char *ev = json_string_value(json_object_get(j, "event"));
        assert_non_null(ev);
        assert_true(dropped < 0); /* nothing after the overflow line */
        if (!strcmp(ev, "message"))
            messages++;
        else if (!strcmp(ev, "overflow"))
            dropped = (long long)json_integer_value(json_object_get(j, "dropped"));
        json_decref(j);
    }
    free(all);
    assert_true(dropped > 0);
    assert_int_equal(messages + (size_t)dropped, COUNT);
    assert_still_serving();
}

/* A valid certificate of this network (signed by the NA key) for a fresh key, valid from
 * now - 60 s for lifetime_s, sent on o as a CERT message. */
static void push_cert(hs_opts *o, const gm_signer *key, long lifetime_s)
{
    static uint8_t msg[GM_WIRE_MSG_MAX], ct[GM_WIRE_FRAME_MAX];
    gm_error err = {0};
    gm_cert c;
    gm_time now = gm_time_now();
    json_t *roles = json_pack("[s]", "role:test");
    assert_int_equal(gm_cert_issue(&c, &g_na, g_genesis.network_name, key->pk, roles, gm_time_add(now, -60),
                                   gm_time_add(now, lifetime_s), &err), 0);
    json_decref(roles);
    char *json = gm_cert_dump(&c, 0);
    size_t mlen, clen;
    assert_int_equal(gm_wire_cert_encode((const uint8_t *)json, strlen(json), msg, sizeof msg, &mlen, &err), 0);
    assert_int_equal(gm_noise_encrypt(&o->tx, NULL, 0, msg, mlen, ct, sizeof ct, &clen, &err), 0);
    assert_int_equal(send_frame(o->fd, ct, clen), 0);
    free(json);
    gm_cert_free(&c);
}

static void test_certificate_flood_cannot_blind_the_node(void **state)
{
    (void)state;
    enum { FLOOD = 5000, SESSIONS = 2 };
    ident id;
    ident_valid(&id);
    gm_error err = {0};
    long long evicted = metric_sum("certs_evicted", NULL), refused = metric_sum("certs_refused_limit", NULL);
    /* One enrolled peer pushes 5,000 valid certificates of fresh keys, over two sessions so a
     * reconnect does not earn it a fresh share of the store. */
    for (int s = 0; s < SESSIONS; s++) {
        hs_opts *o = open_session(&id);
        for (int i = 0; i < FLOOD / SESSIONS; i++) {
            gm_signer k;
            assert_int_equal(gm_signer_generate(&k, "flood", &err), 0);
            push_cert(o, &k, 86400);
            gm_signer_wipe(&k);
        }
        /* The PONG comes after the node handled every CERT (one TCP stream, in order). */
        assert_true(ping_pong(o->fd, &o->tx, &o->rx));
        close_session(o);
    }
    assert_true(metric_sum("certs_evicted", NULL) > evicted);
    /* Per key: a third certificate of one key that expires before the two held is refused. */
    hs_opts *o = open_session(&id);
    gm_signer k;
    assert_int_equal(gm_signer_generate(&k, "renewer", &err), 0);
    push_cert(o, &k, 3 * 86400);
    push_cert(o, &k, 2 * 86400);
    push_cert(o, &k, 86400);
    assert_true(ping_pong(o->fd, &o->tx, &o->rx));
    gm_signer_wipe(&k);
    assert_true(metric_sum("certs_refused_limit", NULL) > refused);

    /* A node that joins afterwards, behind the friend: the target learns its certificate
     * (relayed in a CERT message) and a route to it, while the flooder is still connected. */
    char late_pk[GM_PK_B64_LEN + 1], peer[64];
    int late_port;
    join("late", "role:finance");
    read_pub("late", late_pk);
    snprintf(peer, sizeof peer, "127.0.0.1:%d", g_friend_port);
    start_node("late", peer, &late_port);
    uint64_t end = now_ms() + WAIT_MS;
    while (!has_route(late_pk) && now_ms() < end) {
        sleep_ms(100);
        /* Keep the flooder's link up (ping_pong also answers the node's heartbeat). */
        assert_true(ping_pong(o->fd, &o->tx, &o->rx));
    }
    if (!has_route(late_pk))
        fail_msg("no route to the node that joined after the flood (routes_refused_no_cert=%lld; logs in %s)",
                 metric_sum("routes_refused_no_cert", NULL), g_tmp);
    close_session(o);
    ident_free(&id);
    assert_still_serving();
}


/* ------------------------------------------------------------------ routing attacks */

/* A chain behind the friend, started by the first test that needs it:
 * target - friend - mid - far (far is 3 hops from the target on the honest path). */
static char g_far_pk_b64[GM_PK_B64_LEN + 1], g_mid_pk_b64[GM_PK_B64_LEN + 1], g_far_sock[512];
static int g_far_port;

/* The target's selected route to dest: 1 with next hop (base64) and metric, else 0. */
static int route_of(const char *dest_b64, char nh[GM_PK_B64_LEN + 1], int *metric)
{
    json_t *s = target_status();
    if (!s)
        return 0;
    json_t *routes = json_object_get(s, "routes"), *r;
    size_t i;
    int found = 0;
    json_array_foreach(routes, i, r)
    {
        const char *k = json_string_value(json_object_get(r, "destination"));
        const char *h = json_string_value(json_object_get(r, "next_hop"));
        if (k && h && strcmp(k, dest_b64) == 0) {
            snprintf(nh, GM_PK_B64_LEN + 1, "%s", h);
            *metric = (int)json_integer_value(json_object_get(r, "metric"));
            found = 1;
        }
    }
    json_decref(s);
    return found;
}

static int route_is(const char *dest_b64, const char *nh_b64, int metric)
{
    char nh[GM_PK_B64_LEN + 1];
    int m;
    return route_of(dest_b64, nh, &m) && strcmp(nh, nh_b64) == 0 && (metric < 0 || m == metric);
}

static void wait_route_is(const char *dest_b64, const char *nh_b64, int metric, const char *what)
{
    uint64_t end = now_ms() + WAIT_MS;
    while (!route_is(dest_b64, nh_b64, metric) && now_ms() < end)
        sleep_ms(100);
    if (!route_is(dest_b64, nh_b64, metric))
        fail_msg("the target's route to far is not %s (logs in %s)", what, g_tmp);
}

static void start_chain(void)
{
    if (g_far_port)
        return;
    char peer[64];
    int mid_port;
    join("mid", "role:crm");
    join("far", "role:support");
    snprintf(peer, sizeof peer, "127.0.0.1:%d", g_friend_port);
    start_node("mid", peer, &mid_port);
    snprintf(peer, sizeof peer, "127.0.0.1:%d", mid_port);
    start_node("far", peer, &g_far_port);
    read_pub("far", g_far_pk_b64);
    read_pub("mid", g_mid_pk_b64);
    path_in(g_far_sock, sizeof g_far_sock, "far", "node.sock");
    wait_route_is(g_far_pk_b64, g_friend_pk_b64, 3, "via the friend, metric 3");
}

/* Read what the target sends on o (answering PINGs) until a ROUTE_UPDATE announces dest
 * with a signed origin; the entry goes to *out. */
static void await_route_entry(hs_opts *o, const uint8_t dest[32], gm_wire_route_entry *out)
{
    static uint8_t frame[GM_WIRE_FRAME_MAX], msg[GM_WIRE_FRAME_MAX];
    static gm_wire_route_entry e[GM_WIRE_ROUTE_MAX_ENTRIES];
    uint64_t end = now_ms() + WAIT_MS;
    gm_error err = {0};
    while (now_ms() < end) {
        size_t flen = 0, mlen, n;
        if (recv_frame(o->fd, frame, sizeof frame, &flen, WAIT_MS) != 1)
            fail_msg("the target closed our link (logs in %s)", g_tmp);
        assert_int_equal(gm_noise_decrypt(&o->rx, NULL, 0, frame, flen, msg, sizeof msg, &mlen, &err), 0);
        if (mlen > 0 && msg[0] == GM_WIRE_PING) {
            uint64_t nonce;
            uint8_t pong[16];
            size_t plen;
            assert_int_equal(gm_wire_ping_decode(msg, mlen, &nonce, &err), 0);
            assert_int_equal(gm_wire_pong_encode(nonce, pong, sizeof pong, &plen, &err), 0);
            link_send_msg(o, pong, plen);
        }
        if (mlen == 0 || msg[0] != GM_WIRE_ROUTE_UPDATE)
            continue;
        assert_int_equal(gm_wire_route_update_decode(msg, mlen, e, GM_WIRE_ROUTE_MAX_ENTRIES, &n, &err), 0);
        for (size_t i = 0; i < n; i++)
            if (!e[i].request && e[i].has_origin && memcmp(e[i].dest, dest, 32) == 0) {
                *out = e[i];
                return;
            }
    }
    fail_msg("the target never announced the destination to us");
}

static void send_entries(hs_opts *o, const gm_wire_route_entry *e, size_t n)
{
    static uint8_t msg[GM_WIRE_MSG_MAX];
    size_t mlen;
    gm_error err = {0};
    assert_int_equal(gm_wire_route_update_encode(e, n, msg, sizeof msg, &mlen, &err), 0);
    link_send_msg(o, msg, mlen);
}

/* Send text from the target to far on port "routing" and wait until far has it (far's
 * inbox keeps messages that arrive before we subscribe). 1 when it arrived. */
static int target_to_far_arrives(const char *text)
{
    char line[512], b64[256];
    gm_b64_encode((const uint8_t *)text, strlen(text), b64, sizeof b64);
    snprintf(line, sizeof line, "{\"op\":\"send\",\"to\":\"%s\",\"port\":\"routing\",\"data\":\"%s\"}", g_far_pk_b64, b64);
    json_t *r = api(g_target_sock, line);
    int sent = r && json_is_true(json_object_get(r, "ok"));
    json_decref(r);
    if (!sent)
        return 0;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, g_far_sock, strlen(g_far_sock) + 1);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    const char *sub = "{\"op\":\"subscribe\",\"port\":\"routing\"}\n";
    assert_int_equal(write(fd, sub, strlen(sub)), (ssize_t)strlen(sub));
    static char buf[1 << 16];
    size_t len = 0;
    int found = 0;
    uint64_t end = now_ms() + WAIT_MS;
    while (!found && now_ms() < end && len < sizeof buf - 1) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, 200) <= 0)
            continue;
        ssize_t got = read(fd, buf + len, sizeof buf - 1 - len);
        if (got <= 0)
            break;
        len += (size_t)got;
        buf[len] = 0;
        found = strstr(buf, b64) != NULL;
    }
    close(fd);
    return found;
}

static void test_relay_cannot_forge_routes_for_another_nodes_key(void **state)
{
    (void)state;
    gm_error err = {0};
    start_chain();
    uint8_t far[32];
    assert_int_equal(gm_pk_decode(g_far_pk_b64, far, &err), 0);
    ident id;
    ident_valid(&id);
    hs_opts *o = open_session(&id);
    /* The relay learns far's real, signed announcement from the target itself. */
    gm_wire_route_entry real, f[4];
    await_route_entry(o, far, &real);
    long long refused = metric_sum("routes_refused_origin", NULL);
    /* Forged seqno and metric 0 without a signature: what used to black-hole far. */
    f[0] = real;
    f[0].has_origin = 0;
    f[0].seqno = real.seqno + 1000000;
    f[0].metric = 0;
    f[0].hops = 0;
    /* far's real origin, claiming to be far, to be its neighbour, or a metric below the hops. */
    f[1] = real;
    f[1].metric = 0;
    f[1].hops = 0;
    f[2] = real;
    f[2].metric = 1;
    f[2].hops = 1;
    f[3] = real;
    f[3].metric = 1;
    f[3].hops = 2;
    send_entries(o, f, 4);
    assert_true(ping_pong(o->fd, &o->tx, &o->rx));
    assert_true(metric_sum("routes_refused_origin", NULL) >= refused + 4);
    wait_route_is(g_far_pk_b64, g_friend_pk_b64, 3, "still via the friend, metric 3");
    /* What a relay may still claim: 2 hops through far's real neighbour. Accepted, but it
     * does not beat the honest route (metric 3 through us too). */
    f[0] = real;
    f[0].metric = 2;
    f[0].hops = 2;
    refused = metric_sum("routes_refused_origin", NULL);
    send_entries(o, f, 1);
    assert_true(ping_pong(o->fd, &o->tx, &o->rx));
    assert_int_equal(metric_sum("routes_refused_origin", NULL), refused);
    wait_route_is(g_far_pk_b64, g_friend_pk_b64, 3, "still via the friend after a legal claim");
    assert_true(target_to_far_arrives("through the honest route"));
    /* A seqno raised under far's signature is a forgery: the link is closed. */
    long long forged = metric_sum("route_origins_forged", NULL);
    f[0].seqno = real.seqno + 1;
    send_entries(o, f, 1);
    assert_true(wait_closed(o->fd));
    assert_metric_rises("route_origins_forged", NULL, forged);
    close_session(o);
    ident_free(&id);
    wait_route_is(g_far_pk_b64, g_friend_pk_b64, 3, "via the friend");
    assert_still_serving();
}

/* The dropping relay, in a child process: answers PINGs on both links, tells the target
 * the truth about far (one hop, with far's origin signed for us) and drops every DATA. */
static void dropping_relay(hs_opts *t, hs_opts *f, const uint8_t far[32])
{
    static uint8_t frame[GM_WIRE_FRAME_MAX], msg[GM_WIRE_FRAME_MAX], out[GM_WIRE_FRAME_MAX];
    static gm_wire_route_entry e[GM_WIRE_ROUTE_MAX_ENTRIES];
    uint64_t end = now_ms() + 4 * WAIT_MS;
    while (now_ms() < end) {
        struct pollfd pf[2] = {{t->fd, POLLIN, 0}, {f->fd, POLLIN, 0}};
        if (poll(pf, 2, 200) <= 0)
            continue;
        for (int side = 0; side < 2; side++) {
            hs_opts *o = side ? f : t;
            size_t flen, mlen, n, olen, k = 0;
            gm_error err = {0};
            if (!(pf[side].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (recv_frame(o->fd, frame, sizeof frame, &flen, 2000) != 1 ||
                gm_noise_decrypt(&o->rx, NULL, 0, frame, flen, msg, sizeof msg, &mlen, &err) != 0)
                return;
            if (mlen > 0 && msg[0] == GM_WIRE_PING) {
                uint64_t nonce;
                if (gm_wire_ping_decode(msg, mlen, &nonce, &err) == 0 &&
                    gm_wire_pong_encode(nonce, out, sizeof out, &olen, &err) == 0 &&
                    gm_noise_encrypt(&o->tx, NULL, 0, out, olen, frame, sizeof frame, &flen, &err) == 0)
                    send_frame(o->fd, frame, flen);
                continue;
            }
            if (side != 1 || mlen == 0 || msg[0] != GM_WIRE_ROUTE_UPDATE ||
                gm_wire_route_update_decode(msg, mlen, e, GM_WIRE_ROUTE_MAX_ENTRIES, &n, &err) != 0)
                continue; /* DATA from the target ends here */
            for (size_t i = 0; i < n; i++)
                if (!e[i].request && e[i].has_origin && e[i].hops == 0 && memcmp(e[i].dest, far, 32) == 0) {
                    e[k] = e[i];
                    e[k].metric = 1;
                    e[k++].hops = 1;
                }
            if (k && gm_wire_route_update_encode(e, k, out, sizeof out, &olen, &err) == 0 &&
                gm_noise_encrypt(&t->tx, NULL, 0, out, olen, frame, sizeof frame, &flen, &err) == 0)
                send_frame(t->fd, frame, flen);
        }
    }
}

static void test_dropping_relay_is_routed_around(void **state)
{
    (void)state;
    gm_error err = {0};
    start_chain();
    uint8_t far[32];
    assert_int_equal(gm_pk_decode(g_far_pk_b64, far, &err), 0);
    ident id;
    ident_valid(&id);
    char relay_pk[GM_PK_B64_LEN + 1];
    gm_pk_encode(id.key.pk, relay_pk);
    /* The relay is a real neighbour of both the target and far. */
    hs_opts *t = open_session(&id);
    hs_opts *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->prologue = g_prologue;
    f->x_sk = id.x_sk;
    f->payload = id.cert;
    f->payload_len = id.cert_len;
    f->keep_open = 1;
    f->port = g_far_port;
    assert_int_equal(handshake(f), HS_ACCEPTED);
    long long failures = metric_sum("e2e_path_failures", NULL), suspected = metric_sum("routes_suspected", NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dropping_relay(t, f, far);
        _exit(0);
    }
    g_pids[g_npids++] = pid;
    close(t->fd);
    close(f->fd);
    t->fd = f->fd = -1; /* the child owns the links now */
    /* Its true one-hop claim makes it the best next hop (metric 2 against 3)... */
    wait_route_is(g_far_pk_b64, relay_pk, 2, "via the relay, metric 2");
    /* ...until end-to-end traffic through it goes unanswered (probes or the handshake): the
     * node then prefers the friend. A message lost on the way is not resent by the mesh,
     * so we send until one arrives (bounded). */
    int arrived = 0;
    for (int i = 0; i < 10 && !arrived; i++)
        arrived = target_to_far_arrives(i ? "around the dropping relay, again" : "around the dropping relay");
    assert_true(arrived);
    assert_true(metric_sum("e2e_path_failures", NULL) > failures);
    assert_true(metric_sum("routes_suspected", NULL) > suspected);
    wait_route_is(g_far_pk_b64, g_friend_pk_b64, -1, "via the friend");
    kill(pid, SIGKILL);
    close_session(t);
    close_session(f);
    ident_free(&id);
    assert_still_serving();
}


/* ---- revocation: a real member of the network, revoked by the operator ---- */

/* The identity of a node joined through the NA: its key (Noise static from it) and cert. */
static void ident_of_node(ident *id, const char *name)
{
    char p[400];
    size_t len;
    gm_error err = {0};
    gm_cert c;
    memset(id, 0, sizeof *id);
    path_in(p, sizeof p, name, "node");
    if (gm_signer_load(&id->key, p, "node", &err) != 0)
        fail_msg("cannot load %s's key: %s", name, err.msg);
    assert_int_equal(gm_noise_static_from_ed25519_seed(id->key.sk, id->x_sk, id->x_pk, &err), 0);
    path_in(p, sizeof p, name, "cert.json");
    assert_int_equal(gm_file_read(p, 65536, &id->cert, &len, &err), 0);
    id->cert_len = len;
    assert_int_equal(gm_cert_parse(id->cert, len, &c, &err), 0);
    memcpy(id->cert_id, c.cert_id, sizeof id->cert_id);
    gm_cert_free(&c);
}

static long long target_crl_sequence(void)
{
    json_t *s = target_status();
    assert_non_null(s);
    long long seq = json_is_integer(json_object_get(s, "crl_sequence")) ? json_integer_value(json_object_get(s, "crl_sequence")) : -1;
    json_decref(s);
    return seq;
}

/* Join g_victim (once) and show that the target accepts its identity, so that what changes
 * after victim_revoke() is the CRL alone. Returns when the target no longer lists it. */
static void victim_join(void)
{
    char b64[GM_PK_B64_LEN + 1];
    if (g_victim.cert)
        return;
    join("victim", "role:crm");
    ident_of_node(&g_victim, "victim");
    assert_int_equal(handshake_as(&g_victim, g_prologue), HS_ACCEPTED);
    gm_pk_encode(g_victim.key.pk, b64);
    uint64_t end = now_ms() + WAIT_MS;
    while (has_peer(b64) && now_ms() < end)
        sleep_ms(50);
    assert_false(has_peer(b64));
}

/* Revoke g_victim at the NA (once; key_compromise); the NA's CRL sequence then. */
static long long victim_revoke(void)
{
    char out[4096], net[300];
    gm_error err = {0};
    if (g_victim_crl > 0)
        return g_victim_crl;
    path_in(net, sizeof net, "net", NULL);
    char *rv[] = {g_bin, "admin", "revoke", "--cert-id", g_victim.cert_id, "--reason", "key_compromise",
                  "--dir", net, "--na", g_na_url, NULL};
    if (run(out, sizeof out, rv) != 0)
        fail_msg("admin revoke failed (see %s/commands.log)", g_tmp);
    gm_crl crl;
    int not_modified = 0;
    assert_int_equal(gm_na_fetch_crl(g_na_url, g_genesis.na_pk, NULL, 0, &crl, &not_modified, NULL, 0, &err), 0);
    assert_true(gm_crl_contains(&crl, g_victim.cert_id, NULL));
    g_victim_crl = (long long)crl.sequence;
    gm_crl_free(&crl);
    return g_victim_crl;
}

/* Send the victim's certificate and a route to it, metric 1 behind us (the relay), on our
 * link; the route's origin is signed by the victim for the relay, as a real neighbour of the
 * victim would hold it. */
static void advertise_victim(hs_opts *o, const ident *relay, uint64_t seqno)
{
    static uint8_t msg[GM_WIRE_MSG_MAX];
    size_t mlen;
    gm_error err = {0};
    assert_int_equal(gm_wire_cert_encode((const uint8_t *)g_victim.cert, g_victim.cert_len, msg, sizeof msg, &mlen, &err), 0);
    link_send_msg(o, msg, mlen);
    gm_wire_route_entry e;
    memset(&e, 0, sizeof e);
    memcpy(e.dest, g_victim.key.pk, 32);
    e.seqno = seqno;
    e.metric = 1;
    e.hops = 1;
    e.has_cert_id = 1;
    uuid_bytes(g_victim.cert_id, e.cert_id);
    assert_int_equal(gm_route_origin_sign(&e, relay->key.pk, (uint64_t)gm_time_now().unix_s, g_victim.key.sk, &err), 0);
    assert_int_equal(gm_wire_route_update_encode(&e, 1, msg, sizeof msg, &mlen, &err), 0);
    link_send_msg(o, msg, mlen);
}

/* A relay that is not revoked and never hears of the CRL keeps advertising a revoked node:
 * the target withdraws that route the moment it installs the CRL (not when the relay stops
 * refreshing it: the hold time is far longer than this test takes), and does not take it back
 * when the relay advertises it again with a newer sequence number. */
static void test_route_through_an_unaware_relay_is_withdrawn_when_its_destination_is_revoked(void **state)
{
    (void)state;
    char victim_b64[GM_PK_B64_LEN + 1];
    victim_join();
    gm_pk_encode(g_victim.key.pk, victim_b64);
    ident relay;
    ident_valid(&relay);
    hs_opts *o = open_session(&relay);
    advertise_victim(o, &relay, 1);
    assert_true(ping_pong(o->fd, &o->tx, &o->rx)); /* the update was processed */
    assert_true(has_route(victim_b64));
    victim_revoke();

    /* The target polls the NA. One status snapshot: the CRL it holds and its routes. */
    uint64_t end = now_ms() + WAIT_MS;
    json_t *s = NULL;
    for (;;) {
        s = target_status();
        assert_non_null(s);
        if (json_integer_value(json_object_get(s, "crl_sequence")) >= g_victim_crl)
            break;
        json_decref(s);
        if (now_ms() > end)
            fail_msg("the target never installed CRL %lld (logs in %s)", g_victim_crl, g_tmp);
        sleep_ms(20);
    }
    json_t *routes = json_object_get(s, "routes"), *r;
    size_t i;
    json_array_foreach(routes, i, r)
    {
        const char *d = json_string_value(json_object_get(r, "destination"));
        if (d && strcmp(d, victim_b64) == 0 && json_integer_value(json_object_get(r, "metric")) < 0xFFFF)
            fail_msg("CRL %lld installed, but the route to the revoked node via the relay is still there", g_victim_crl);
    }
    json_decref(s);

    /* The relay, unaware, advertises it again (newer seqno, certificate first). */
    long long refused = metric_sum("routes_refused_no_cert", NULL) + metric_sum("certs_refused", NULL);
    for (uint64_t seq = 2; seq < 5; seq++) {
        advertise_victim(o, &relay, seq);
        assert_true(ping_pong(o->fd, &o->tx, &o->rx));
        assert_false(has_route(victim_b64));
    }
    assert_true(metric_sum("routes_refused_no_cert", NULL) + metric_sum("certs_refused", NULL) > refused);
    /* The relay itself is not revoked: its own link stays up. */
    char relay_b64[GM_PK_B64_LEN + 1];
    gm_pk_encode(relay.key.pk, relay_b64);
    assert_true(has_peer(relay_b64));
    close_session(o);
    ident_free(&relay);
    assert_still_serving();
}

/* A node whose CRL lists the dialling peer's certificate refuses the handshake and tells
 * the peer why: CLOSE with reason revoked, counted as handshake_refused_revoked. */
static void test_revoked_peer_is_refused_at_handshake_with_reason_revoked(void **state)
{
    (void)state;
    victim_join();
    long long seq = victim_revoke();
    uint64_t end = now_ms() + WAIT_MS;
    while (target_crl_sequence() < seq && now_ms() < end)
        sleep_ms(50);
    assert_true(target_crl_sequence() >= seq);
    long long before = metric_sum("handshake_refused_revoked", NULL);
    g_close_reason = -1;
    hs_opts *o = calloc(1, sizeof *o);
    assert_non_null(o);
    o->prologue = g_prologue;
    o->x_sk = g_victim.x_sk;
    o->payload = g_victim.cert;
    o->payload_len = g_victim.cert_len;
    o->listen_only = 1;
    assert_int_equal(handshake(o), HS_CLOSED);
    free(o);
    assert_int_equal(g_close_reason, GM_WIRE_CLOSE_REVOKED);
    assert_metric_rises("handshake_refused_revoked", NULL, before);
    char victim_b64[GM_PK_B64_LEN + 1];
    gm_pk_encode(g_victim.key.pk, victim_b64);
    assert_false(has_peer(victim_b64));
    assert_still_serving();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_legitimate_peer_is_accepted_and_node_cert_matches_its_static),
        cmocka_unit_test(test_node_of_another_network_fails_handshake),
        cmocka_unit_test(test_certificate_for_another_network_name_is_refused),
        cmocka_unit_test(test_expired_certificate_is_refused),
        cmocka_unit_test(test_certificate_of_another_key_is_refused),
        cmocka_unit_test(test_forged_certificate_is_refused),
        cmocka_unit_test(test_replayed_handshake_message_is_refused),
        cmocka_unit_test(test_garbage_bytes_are_refused),
        cmocka_unit_test(test_oversized_and_empty_frames_are_refused),
        cmocka_unit_test(test_garbage_after_handshake_closes_only_that_link),
        cmocka_unit_test(test_relay_cannot_advertise_identities_without_certificates),
        cmocka_unit_test(test_spoofed_and_misrouted_data_is_dropped),
        cmocka_unit_test(test_halfopen_flood_from_one_address_does_not_block_peers),
        cmocka_unit_test(test_halfopen_flood_from_many_addresses_does_not_block_peers),
        cmocka_unit_test(test_local_sender_burst_waits_for_a_peer_that_stops_reading),
        cmocka_unit_test(test_slow_subscriber_gets_whole_lines_then_an_overflow_notice),
        cmocka_unit_test(test_certificate_flood_cannot_blind_the_node),
        cmocka_unit_test(test_relay_cannot_forge_routes_for_another_nodes_key),
        cmocka_unit_test(test_dropping_relay_is_routed_around),
        cmocka_unit_test(test_route_through_an_unaware_relay_is_withdrawn_when_its_destination_is_revoked),
        cmocka_unit_test(test_revoked_peer_is_refused_at_handshake_with_reason_revoked),
        cmocka_unit_test(test_dropped_doc_request_is_asked_again),
    };
    if (getenv("GM_TEST_FILTER")) /* e.g. GM_TEST_FILTER='*relay*' */
        cmocka_set_test_filter(getenv("GM_TEST_FILTER"));
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
