/* The floor of a relay on this machine: what moving bytes through a process over TCP on
 * loopback costs the kernel, with no crypto and no framing (driven by bench/bench_node.sh):
 *   bench_tcp_relay [MB] [WRITE_SIZE]
 * A writer process sends MB (default 256) in writes of WRITE_SIZE bytes (default 60000, one
 * 60 kB message) to this process, which reads them in 256 KiB reads (as a node reads a link)
 * and writes them on to a reader process that discards them. Prints the CPU this middle
 * process spent per MB (user + system, its own only) and its MB per CPU-second. A node
 * relaying on a link does at least this plus two AEAD passes per byte, so
 *   relay ceiling = 1 / (2 passes of the AEAD + this floor)
 * is the most MB per CPU-second any relay over TCP can reach here. Never a test. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

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

static double cpu_s(void)
{
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return (double)(r.ru_utime.tv_sec + r.ru_stime.tv_sec) + (double)(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

int main(int argc, char **argv)
{
    long mb_arg = argc > 1 ? atol(argv[1]) : 256, wsize = argc > 2 ? atol(argv[2]) : 60000;
    if (mb_arg < 1 || mb_arg > 1 << 16 || wsize < 1 || wsize > 1 << 24) {
        fprintf(stderr, "usage: bench_tcp_relay [MB 1..65536] [WRITE_SIZE 1..16777216]\n");
        return 2;
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
