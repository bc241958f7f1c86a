/* Bare programs with the shape of a node's data paths, the physical ceilings of those paths on
 * this machine (driven by bench/bench_node.sh; never a test).
 *
 * The floor of a relay: what moving bytes through a process over TCP on loopback costs the
 * kernel, with no crypto and no framing:
 *   bench_tcp_relay [MB] [WRITE_SIZE]
 * A writer process sends MB (default 256) in writes of WRITE_SIZE bytes (default 60000, one
 * 60 kB message) to this process, which reads them in 256 KiB reads (as a node reads a link)
 * and writes them on to a reader process that discards them. Prints the CPU this middle
 * process spent per MB (user + system, its own only) and its MB per CPU-second. A node
 * relaying on a link does at least this plus two AEAD passes per byte, so
 *   relay ceiling = 1 / (2 passes of the AEAD + this floor)
 * is the most MB per CPU-second any relay over TCP can reach here.
 *
 * The ceiling of one hop: the processes, socket crossings and AEAD passes of
 * "sender -> node -> TCP -> node -> receiver", and nothing else:
 *   bench_tcp_relay hop [MB] [SIZE]
 * A sender process writes MB (default 256) of SIZE-byte messages (default 60000), each behind a
 * 4-byte length, into a Unix socket (1 MiB send buffer, as gm_node_conn_post's); process A
 * reads them in 256 KiB reads, encrypts each twice with ChaCha20-Poly1305 through gm_noise (an
 * end-to-end pass with an AD of node_e2e.c's 77 bytes, then a link pass behind a 2-byte frame
 * header; the node's few bytes of port, e2e and DATA headers aside, the same bytes) and writes what one read gave in one write on loopback TCP (TCP_NODELAY); process B
 * reads 256 KiB, decrypts each frame twice and writes the messages, each behind its length, in
 * one write into a Unix socket (1 MiB send buffer, as a node's to a frames client); a receiver
 * process reads 256 KiB at a time and counts them.
 * Prints "MB/s CPU_MS_PER_MB SENDER A B RECEIVER": payload MB per wall-clock second at the
 * receiver after the first eighth (the sockets and the TCP connection warmed up, as a node's
 * are), the CPU of all four processes per MB over the whole run (ms), and each one's. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "noise.h"
#include "gm/util.h"

#include "bench_util.h"

#define RELAY_READ (256 << 10)

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static int listen_loopback(int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t n = sizeof a;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 2) != 0 ||
        getsockname(l, (struct sockaddr *)&a, &n) != 0)
        die("bench_tcp_relay: listen on loopback");
    *port = ntohs(a.sin_port);
    return l;
}

static int connect_loopback(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1, s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) != 0)
        die("bench_tcp_relay: connect");
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* as a node's links */
    return s;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static double rusage_s(const struct rusage *r)
{
    return (double)(r->ru_utime.tv_sec + r->ru_stime.tv_sec) + (double)(r->ru_utime.tv_usec + r->ru_stime.tv_usec) / 1e6;
}

static double cpu_s(void)
{
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return rusage_s(&r);
}

/* ---- one hop ---- */

#define HOP_LEN 4  /* a message's length ahead of it on the Unix sockets */
#define HOP_AD 77  /* node_e2e.c's AD: source key, destination key, 13-byte header */

/* Big-endian lengths, with the byte-order calls of <arpa/inet.h>. */
static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return ntohl(v);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    v = htonl(v);
    memcpy(p, &v, sizeof v);
}

/* A stream of records, each behind a hlen-byte big-endian length: read RELAY_READ bytes at
 * a time, hand every complete record to fn (which may fill out), write out after each read or
 * when it holds RELAY_READ bytes (as a link's batch), keep the partial record's bytes for the
 * next read (as a node's frame reader). Returns the number of records. */
typedef size_t (*hop_fn)(void *ctx, const uint8_t *rec, size_t len, uint8_t *out);
static size_t hop_stream(int in, int out_fd, size_t hlen, hop_fn fn, void *ctx)
{
    uint8_t *buf = malloc(RELAY_READ + GM_NOISE_MAX_MSG + HOP_LEN),
            *out = malloc(RELAY_READ + 2 * GM_NOISE_MAX_MSG);
    size_t have = 0, n_rec = 0;
    if (!buf || !out)
        die("bench_tcp_relay: malloc");
    for (ssize_t k; (k = read(in, buf + have, RELAY_READ)) > 0;) {
        size_t off = 0, olen = 0, end = have + (size_t)k;
        for (;;) {
            if (end - off < hlen)
                break;
            size_t len = hlen == 2 ? (size_t)(buf[off] << 8 | buf[off + 1]) : get_u32(buf + off);
            if (end - off - hlen < len)
                break;
            if (olen >= RELAY_READ && out_fd >= 0) {
                if (write_all(out_fd, (char *)out, olen) != 0)
                    die("bench_tcp_relay: write");
                olen = 0;
            }
            olen += fn(ctx, buf + off + hlen, len, out + olen);
            off += hlen + len;
            n_rec++;
        }
        memmove(buf, buf + off, end - off);
        have = end - off;
        if (olen && out_fd >= 0 && write_all(out_fd, (char *)out, olen) != 0)
            die("bench_tcp_relay: write");
    }
    return n_rec;
}

typedef struct hop_keys {
    gm_noise_cipher e2e, link;
    uint8_t ad[HOP_AD];
    uint8_t tmp[GM_NOISE_MAX_MSG];
} hop_keys;

static size_t hop_seal(void *ctx, const uint8_t *msg, size_t len, uint8_t *out)
{
    hop_keys *h = ctx;
    size_t elen, flen;
    if (gm_noise_encrypt(&h->e2e, h->ad, sizeof h->ad, msg, len, h->tmp, sizeof h->tmp, &elen, NULL) != 0 ||
        gm_noise_encrypt(&h->link, NULL, 0, h->tmp, elen, out + 2, GM_NOISE_MAX_MSG, &flen, NULL) != 0)
        die("bench_tcp_relay: encrypt");
    out[0] = (uint8_t)(flen >> 8);
    out[1] = (uint8_t)flen;
    return 2 + flen;
}

static size_t hop_open(void *ctx, const uint8_t *frame, size_t len, uint8_t *out)
{
    hop_keys *h = ctx;
    size_t elen, mlen;
    if (gm_noise_decrypt(&h->link, NULL, 0, frame, len, h->tmp, sizeof h->tmp, &elen, NULL) != 0 ||
        gm_noise_decrypt(&h->e2e, h->ad, sizeof h->ad, h->tmp, elen, out + HOP_LEN, GM_NOISE_MAX_MSG, &mlen, NULL) != 0)
        die("bench_tcp_relay: decrypt");
    put_u32(out, (uint32_t)mlen);
    return HOP_LEN + mlen;
}

/* What the receiver saw, in memory shared with the parent: the clock starts once the first
 * eighth has arrived (new sockets and a new TCP connection past their first growth, as a node's
 * long-lived link and its pump's first message are). */
typedef struct hop_recv {
    size_t got, warm;
    double t_warm, t_end;
} hop_recv;

static size_t hop_count(void *ctx, const uint8_t *msg, size_t len, uint8_t *out)
{
    hop_recv *r = ctx;
    (void)msg;
    (void)out;
    if (r->got < r->warm && r->got + len >= r->warm)
        r->t_warm = now_s();
    r->got += len;
    return 0;
}

static pid_t hop_spawn(int keep1, int keep2, int *close_fds, int n_close)
{
    pid_t pid = fork();
    if (pid < 0)
        die("bench_tcp_relay: fork");
    if (pid == 0)
        for (int i = 0; i < n_close; i++)
            if (close_fds[i] != keep1 && close_fds[i] != keep2)
                close(close_fds[i]);
    return pid;
}

static int hop_main(size_t total, size_t size)
{
    int up[2], down[2], sz = 1 << 20, one = 1, port;
    if (size > GM_NOISE_MAX_PLAINTEXT - HOP_LEN || socketpair(AF_UNIX, SOCK_STREAM, 0, up) != 0 ||
        socketpair(AF_UNIX, SOCK_STREAM, 0, down) != 0)
        die("bench_tcp_relay hop: SIZE up to 65500, socketpair");
    int l = listen_loopback(&port), ta = connect_loopback(port), tb = accept(l, NULL, NULL);
    if (tb < 0)
        die("bench_tcp_relay hop: accept");
    setsockopt(tb, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    close(l);
    hop_keys *k = malloc(sizeof *k);
    if (!k)
        die("bench_tcp_relay: malloc");
    memset(k, 0, sizeof *k);
    randombytes_buf(k->e2e.k, sizeof k->e2e.k);
    randombytes_buf(k->link.k, sizeof k->link.k);
    randombytes_buf(k->ad, sizeof k->ad);
    k->e2e.has_key = k->link.has_key = 1;
    int fds[] = {up[0], up[1], down[0], down[1], ta, tb};
    size_t n_msg = (total + size - 1) / size;
    hop_recv *rcv = mmap(NULL, sizeof *rcv, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (rcv == MAP_FAILED)
        die("bench_tcp_relay hop: mmap");
    memset(rcv, 0, sizeof *rcv);
    rcv->warm = n_msg / 8 * size;
    pid_t pids[4];
    if ((pids[0] = hop_spawn(up[0], -1, fds, 6)) == 0) { /* sender */
        uint8_t *m = calloc(1, HOP_LEN + size);
        setsockopt(up[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
        for (size_t i = 0; m && i < n_msg; i++) {
            put_u32(m, (uint32_t)size);
            if (write_all(up[0], (char *)m, HOP_LEN + size) != 0)
                _exit(1);
        }
        _exit(0);
    }
    if ((pids[1] = hop_spawn(up[1], ta, fds, 6)) == 0) /* node A */
        _exit(hop_stream(up[1], ta, HOP_LEN, hop_seal, k) == n_msg ? 0 : 1);
    if ((pids[2] = hop_spawn(tb, down[0], fds, 6)) == 0) { /* node B */
        setsockopt(down[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
        _exit(hop_stream(tb, down[0], 2, hop_open, k) == n_msg ? 0 : 1);
    }
    if ((pids[3] = hop_spawn(down[1], -1, fds, 6)) == 0) { /* receiver: checks what it got */
        size_t n = hop_stream(down[1], -1, HOP_LEN, hop_count, rcv);
        rcv->t_end = now_s();
        _exit(n == n_msg && rcv->got == n_msg * size ? 0 : 1);
    }
    for (int i = 0; i < 6; i++)
        close(fds[i]);
    int bad = 0, st;
    double each[4], cpu = 0;
    for (int i = 0; i < 4; i++) {
        struct rusage r = {0};
        if (wait4(pids[i], &st, 0, &r) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bad = 1;
        each[i] = rusage_s(&r);
        cpu += each[i];
    }
    gm_noise_cipher_wipe(&k->e2e);
    gm_noise_cipher_wipe(&k->link);
    free(k);
    if (bad || rcv->t_end <= rcv->t_warm) {
        fprintf(stderr, "bench_tcp_relay hop: a process failed or a message was lost\n");
        munmap(rcv, sizeof *rcv);
        return 1;
    }
    double mb = (double)(n_msg * size) / 1e6, timed = (double)(n_msg * size - rcv->warm) / 1e6;
    printf("%.1f %.3f %.3f %.3f %.3f %.3f\n", timed / (rcv->t_end - rcv->t_warm), cpu * 1000.0 / mb, each[0] * 1000.0 / mb,
           each[1] * 1000.0 / mb, each[2] * 1000.0 / mb, each[3] * 1000.0 / mb);
    munmap(rcv, sizeof *rcv);
    return 0;
}

int main(int argc, char **argv)
{
    int hop = argc > 1 && strcmp(argv[1], "hop") == 0;
    argv += hop, argc -= hop;
    long mb_arg = argc > 1 ? atol(argv[1]) : 256, wsize = argc > 2 ? atol(argv[2]) : 60000;
    if (mb_arg < 1 || mb_arg > 1 << 16 || wsize < 1 || wsize > (hop ? 65500 : 1 << 24)) {
        fprintf(stderr, "usage: bench_tcp_relay [MB 1..65536] [WRITE_SIZE 1..16777216]\n"
                        "       bench_tcp_relay hop [MB 1..65536] [SIZE 1..65500]\n");
        return 2;
    }
    if (hop) {
        gm_error err = {0};
        if (gm_init(&err) != 0)
            die("bench_tcp_relay: gm_init");
        return hop_main((size_t)mb_arg * 1000000, (size_t)wsize);
    }
    size_t total = (size_t)mb_arg * 1000000, chunk = (size_t)wsize;
    int p_in, p_out, l_in = listen_loopback(&p_in), l_out = listen_loopback(&p_out);
    signal(SIGPIPE, SIG_IGN);
    pid_t writer = fork();
    if (writer == 0) {
        int s = connect_loopback(p_in);
        char *b = calloc(1, chunk);
        for (size_t sent = 0; b && sent < total; sent += chunk)
            if (write_all(s, b, chunk < total - sent ? chunk : total - sent) != 0)
                _exit(1);
        _exit(0);
    }
    pid_t reader = fork();
    if (reader == 0) {
        int s = connect_loopback(p_out);
        char *b = malloc(RELAY_READ);
        while (b && read(s, b, RELAY_READ) > 0) {
        }
        _exit(0);
    }
    if (writer < 0 || reader < 0)
        die("bench_tcp_relay: fork");
    int in = accept(l_in, NULL, NULL), out = accept(l_out, NULL, NULL);
    char *buf = malloc(RELAY_READ);
    if (in < 0 || out < 0 || !buf)
        die("bench_tcp_relay: accept");
    size_t moved = 0;
    double c0 = cpu_s();
    for (ssize_t k; (k = read(in, buf, RELAY_READ)) > 0; moved += (size_t)k)
        if (write_all(out, buf, (size_t)k) != 0)
            die("bench_tcp_relay: write");
    double cpu = cpu_s() - c0;
    close(out);
    waitpid(writer, NULL, 0);
    waitpid(reader, NULL, 0);
    if (moved != total || cpu <= 0) {
        fprintf(stderr, "bench_tcp_relay: moved %zu of %zu bytes\n", moved, total);
        return 1;
    }
    double mb = (double)moved / 1e6;
    printf("%.3f %.0f\n", cpu * 1000.0 / mb, mb / cpu);
    return 0;
}
