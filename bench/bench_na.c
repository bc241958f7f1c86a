/* Network Authority throughput over real HTTP on loopback: enrollments per second (admin
 * invite + node join, each with proof of possession and a durable SQLite commit, and the node's
 * check of the certificate it got, as `genesis-mesh join` does), CRL
 * fetches per second (full: parse + verify; conditional: 304), compared with the cost of
 * one Ed25519 verification on this machine. Medians of RUNS runs.
 *
 * usage: bench_na [--na URL --dir OPERATOR_DIR] [--bin GENESIS_MESH] [--joins N] [--fetches N]
 *                 [--gc-joins N] [--gc-clients 1,4,32,128] [--plain-http] [--threads N]
 * Without --na it spawns its own NA: `genesis-mesh init` in a temp dir, then
 * `genesis-mesh na start --listen 127.0.0.1:0 --port-file ... --quiet` (binary from --bin,
 * else $GM_BIN, else ../genesis-mesh next to this program), and stops it at the end. */
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "gm/cert.h"
#include "gm/genesis.h"
#include "gm/gmtime.h"
#include "gm/http_client.h"
#include "gm/keys.h"
#include "gm/na_client.h"
#include "gm/util.h"

#include "bench_spawn.h"
#include "bench_util.h"

#define RUNS 3
#define THREADS 4
#define GC_RUNS 3
#define GC_MAX 8
static int gc_clients[GC_MAX] = {1, 4, 32, 128};
static size_t gc_n = 4; /* --gc-clients */

static void die(const char *what, const gm_error *err)
{
    fprintf(stderr, "bench_na: %s: %s\n", what, err ? err->msg : "failed");
    exit(1);
}

typedef struct bench {
    const char *url;
    gm_signer op;
    uint8_t na_pk[GM_PK_LEN];
    gm_genesis genesis;
    int joins;
} bench;

/* What an enrolling node does with the certificate it got (genesis-mesh join): it parses it,
 * verifies the NA's signature under the genesis block and its window, and checks its key. */
static void check_cert(const bench *b, const gm_signer *node, const json_t *doc)
{
    gm_error err = {0};
    gm_cert c;
    if (gm_cert_from_json(doc, &c, &err) != 0)
        die("certificate", &err);
    if (gm_cert_verify(&c, &b->genesis, NULL, gm_time_now(), &err) != 0)
        die("certificate", &err);
    if (sodium_memcmp(c.node_pk, node->pk, GM_PK_LEN) != 0)
        die("certificate for another key", NULL);
    gm_cert_free(&c);
}

/* One enrollment as an operator and a new node would do it. */
static void enroll(const bench *b)
{
    gm_error err = {0};
    gm_signer node;
    json_t *resp = NULL, *cert = NULL;
    json_t *body = json_pack("{s:[s],s:i,s:i}", "roles", "role:bench", "token_expiry_hours", 1, "max_validity_hours", 24);
    if (gm_na_admin_call(b->url, &b->op, "POST", "/admin/invite", body, 0, NULL, &resp, &err) != 0)
        die("invite", &err);
    json_decref(body);
    if (gm_signer_generate(&node, "node", &err) != 0)
        die("node key", &err);
    if (gm_na_join(b->url, &node, json_string_value(json_object_get(resp, "token")), 0, 0, &cert, &err) != 0)
        die("join", &err);
    check_cert(b, &node, cert);
    json_decref(resp);
    json_decref(cert);
    gm_signer_wipe(&node);
}

static void *enroll_thread(void *arg)
{
    const bench *b = arg;
    for (int i = 0; i < b->joins / THREADS; i++)
        enroll(b);
    return NULL;
}

/* Enrollments per second: sequential, then THREADS clients at once. */
static void measure_enroll(const bench *b, double *seq, double *par)
{
    double t0 = now_s();
    for (int i = 0; i < b->joins; i++)
        enroll(b);
    *seq = b->joins / (now_s() - t0);
    pthread_t t[THREADS];
    t0 = now_s();
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, enroll_thread, (void *)b);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    *par = (b->joins / THREADS * THREADS) / (now_s() - t0);
}

/* CRL fetches per second: full (parsed and verified), and conditional (304). */
static void measure_crl(const bench *b, int n, double *full, double *cond)
{
    gm_error err = {0};
    char etag[128] = "";
    gm_crl crl;
    int nm;
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        if (gm_na_fetch_crl(b->url, b->na_pk, NULL, 0, &crl, &nm, etag, sizeof etag, &err) != 0)
            die("GET /crl", &err);
        gm_crl_free(&crl);
    }
    *full = n / (now_s() - t0);
    t0 = now_s();
    for (int i = 0; i < n; i++) {
        if (gm_na_fetch_crl(b->url, b->na_pk, etag, 0, &crl, &nm, NULL, 0, &err) != 0 || !nm)
            die("GET /crl with If-None-Match", &err);
    }
    *cond = n / (now_s() - t0);
}

/* Microseconds per Ed25519 verification of a certificate-sized message. */
static double verify_us(void)
{
    uint8_t pk[32], sk[64], sig[64], msg[300];
    crypto_sign_keypair(pk, sk);
    randombytes_buf(msg, sizeof msg);
    crypto_sign_detached(sig, NULL, msg, sizeof msg, sk);
    int n = 4000;
    double t0 = now_s();
    for (int i = 0; i < n; i++)
        if (crypto_sign_verify_detached(sig, msg, sizeof msg, pk) != 0)
            abort();
    return (now_s() - t0) * 1e6 / n;
}

/* Microseconds per Ed25519 signature of a certificate-sized message (the NA signs each). */
static double sign_us(void)
{
    uint8_t pk[32], sk[64], sig[64], msg[600];
    crypto_sign_keypair(pk, sk);
    randombytes_buf(msg, sizeof msg);
    int n = 4000;
    double t0 = now_s();
    for (int i = 0; i < n; i++)
        crypto_sign_detached(sig, NULL, msg, sizeof msg, sk);
    sodium_memzero(sk, sizeof sk);
    return (now_s() - t0) * 1e6 / n;
}

/* ---- group commit: joins of pre-made invites by N clients at once ---- */

typedef struct gc_job {
    const bench *b;
    char **tokens;
    int from, to;
} gc_job;

static void *gc_thread(void *arg)
{
    gc_job *j = arg;
    gm_error err = {0};
    for (int i = j->from; i < j->to; i++) {
        gm_signer node;
        json_t *cert = NULL;
        if (gm_signer_generate(&node, "node", &err) != 0)
            die("node key", &err);
        if (gm_na_join(j->b->url, &node, j->tokens[i], 0, 0, &cert, &err) != 0)
            die("join", &err);
        check_cert(j->b, &node, cert);
        json_decref(cert);
        gm_signer_wipe(&node);
    }
    return NULL;
}

static char **make_invites(const bench *b, int n)
{
    gm_error err = {0};
    char **t = calloc((size_t)n, sizeof *t);
    for (int i = 0; i < n; i++) {
        json_t *resp = NULL;
        json_t *body = json_pack("{s:[s],s:i,s:i}", "roles", "role:bench", "token_expiry_hours", 1, "max_validity_hours", 24);
        if (gm_na_admin_call(b->url, &b->op, "POST", "/admin/invite", body, 0, NULL, &resp, &err) != 0)
            die("invite", &err);
        json_decref(body);
        t[i] = strdup(json_string_value(json_object_get(resp, "token")));
        json_decref(resp);
    }
    return t;
}

static bench_na own;
static pid_t na_pid;
static char tmpdir[256];

/* CPU seconds (user + system) the NA process used so far. */
static double na_cpu_s(void)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)na_pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* A counter of the NA's /metrics (-1 when absent: an NA without group commit). */
static double na_metric(const bench *b, const char *name)
{
    char url[300];
    gm_error err = {0};
    gm_http_resp resp = {0};
    snprintf(url, sizeof url, "%s/metrics", b->url);
    gm_http_req r = {.method = "GET", .url = url};
    double v = -1;
    if (gm_http_request(&r, &resp, &err) == 0 && resp.body) {
        size_t n = strlen(name);
        for (const char *p = resp.body; (p = strstr(p, name)); p += n)
            if ((p == resp.body || p[-1] == '\n') && p[n] == ' ') {
                v = atof(p + n + 1);
                break;
            }
    }
    gm_http_resp_free(&resp);
    return v;
}

typedef struct gc_result {
    double joins_s, cpu_ms, syncs_per_join, commits_per_join, client_cpu_ms;
    /* from the NA's own counters over the run: ms per sync, WAL bytes per join, share of the
     * run spent syncing, in checkpoints inside commits and in the store's checkpointer thread
     * (-1: not reported) */
    double sync_ms, wal_per_join, sync_share, ckpt_share, ckpt_thread_share;
} gc_result;

static double self_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static gc_result measure_gc(const bench *b, int clients, int n)
{
    n = n / clients * clients;
    char **tokens = make_invites(b, n);
    pthread_t *t = calloc((size_t)clients, sizeof *t);
    gc_job *jobs = calloc((size_t)clients, sizeof *jobs);
    double c0 = na_metric(b, "gm_na_store_commits_total"), s0 = na_metric(b, "gm_na_store_syncs_total");
    double ss0 = na_metric(b, "gm_na_store_sync_seconds_total"), w0 = na_metric(b, "gm_na_store_wal_bytes_total");
    double k0 = na_metric(b, "gm_na_store_checkpoint_inline_seconds_total");
    double ka0 = na_metric(b, "gm_na_store_checkpoint_seconds_total");
    double cpu0 = na_cpu_s(), me0 = self_cpu_s(), t0 = now_s();
    for (int i = 0; i < clients; i++) {
        jobs[i] = (gc_job){.b = b, .tokens = tokens, .from = i * (n / clients), .to = (i + 1) * (n / clients)};
        pthread_create(&t[i], NULL, gc_thread, &jobs[i]);
    }
    for (int i = 0; i < clients; i++)
        pthread_join(t[i], NULL);
    double el = now_s() - t0, cpu = na_cpu_s() - cpu0, me = self_cpu_s() - me0;
    double c1 = na_metric(b, "gm_na_store_commits_total"), s1 = na_metric(b, "gm_na_store_syncs_total");
    double ss1 = na_metric(b, "gm_na_store_sync_seconds_total"), w1 = na_metric(b, "gm_na_store_wal_bytes_total");
    double k1 = na_metric(b, "gm_na_store_checkpoint_inline_seconds_total");
    double ka1 = na_metric(b, "gm_na_store_checkpoint_seconds_total");
    gc_result r = {.joins_s = n / el, .cpu_ms = cpu * 1e3 / n, .client_cpu_ms = me * 1e3 / n,
                   .commits_per_join = c0 >= 0 ? (c1 - c0) / n : -1,
                   .syncs_per_join = s0 >= 0 ? (s1 - s0) / n : -1,
                   .sync_ms = ss0 >= 0 && s1 > s0 ? (ss1 - ss0) * 1e3 / (s1 - s0) : -1,
                   .wal_per_join = w0 >= 0 ? (w1 - w0) / n : -1,
                   .sync_share = ss0 >= 0 ? (ss1 - ss0) / el : -1,
                   .ckpt_share = k0 >= 0 ? (k1 - k0) / el : -1,
                   .ckpt_thread_share = k0 >= 0 && ka0 >= 0 ? (ka1 - ka0 - (k1 - k0)) / el : -1};
    for (int i = 0; i < n; i++)
        free(tokens[i]);
    free(tokens);
    free(t);
    free(jobs);
    return r;
}

/* A trivial request, `clients` threads at once: GET /health (its connection kept alive) or
 * POST /join with an empty object (refused with 400; kept alive, as a join's through gm_na_join).
 * What the NA spends on it is the transport's share of a join. */
static _Atomic int triv_failed;

typedef struct triv_job {
    const bench *b;
    int n, post;
} triv_job;

static void *triv_thread(void *arg)
{
    triv_job *j = arg;
    char url[300];
    snprintf(url, sizeof url, "%s/%s", j->b->url, j->post ? "join" : "health");
    for (int i = 0; i < j->n; i++) {
        gm_error err = {0};
        gm_http_resp resp = {0};
        gm_http_req r = {.method = j->post ? "POST" : "GET", .url = url, .body = j->post ? "{}" : NULL,
                         .body_len = j->post ? 2 : 0, .keep_alive = 1};
        /* a failure is counted and shown, not fatal: exit() from one of many threads is no way out */
        if (gm_http_request(&r, &resp, &err) != 0 || resp.status != (j->post ? 400 : 200))
            atomic_fetch_add(&triv_failed, 1);
        gm_http_resp_free(&resp);
    }
    return NULL;
}

/* NA and client CPU milliseconds per trivial request (and requests/s). */
static void measure_trivial(const bench *b, int clients, int n, int post, double *na_ms, double *client_ms,
                            double *rate)
{
    pthread_t *t = calloc((size_t)clients, sizeof *t);
    triv_job j = {.b = b, .n = n / clients, .post = post};
    n = j.n * clients;
    double cpu0 = na_cpu_s(), me0 = self_cpu_s(), t0 = now_s();
    for (int i = 0; i < clients; i++)
        pthread_create(&t[i], NULL, triv_thread, &j);
    for (int i = 0; i < clients; i++)
        pthread_join(t[i], NULL);
    double el = now_s() - t0;
    *na_ms = (na_cpu_s() - cpu0) * 1e3 / n;
    *client_ms = (self_cpu_s() - me0) * 1e3 / n;
    *rate = n / el;
    free(t);
}

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Median microseconds of a write of `blocks` 4 KiB blocks + fdatasync in dir, in place in a file
 * already that long (as the WAL is rewritten after each checkpoint), over `runs` runs: with one
 * block, a durable commit's floor; with a batch's WAL bytes, that batch's sync. */
#define PROBE_RUNS_MAX 101
static double fsync_us(const char *dir, int blocks, int runs, double *cpu_us)
{
    double c[PROBE_RUNS_MAX], v[PROBE_RUNS_MAX];
    *cpu_us = 0;
    if (runs > PROBE_RUNS_MAX)
        runs = PROBE_RUNS_MAX;
    char path[512];
    snprintf(path, sizeof path, "%s/fsync-probe", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return 0;
    size_t len = (size_t)blocks * 4096;
    char *buf = malloc(len);
    if (!buf) {
        close(fd);
        return 0;
    }
    memset(buf, 'x', len);
    int n = 0;
    if (write(fd, buf, len) == (ssize_t)len && fsync(fd) == 0)
        for (; n < runs; n++) {
            double t0 = now_s(), c0 = thread_cpu_s();
            if (pwrite(fd, buf, len, 0) != (ssize_t)len || fdatasync(fd) != 0)
                break;
            v[n] = (now_s() - t0) * 1e6;
            c[n] = (thread_cpu_s() - c0) * 1e6;
        }
    free(buf);
    close(fd);
    unlink(path);
    if (!n)
        return 0;
    *cpu_us = median(c, n);
    return median(v, n);
}

/* ---- an NA of our own ---- */

/* init (--no-tls for plain HTTP), the config opened to one client address with many
 * connections, then na start (bench_spawn.h). */
static void spawn_na(const char *bin, int plain, int threads, char *url, size_t cap)
{
    char path[600];
    bench_na_init(&own, "bench_na", bin, plain ? "--no-tls" : "");
    snprintf(tmpdir, sizeof tmpdir, "%s", own.dir);
    /* the bench's clients all come from 127.0.0.1 */
    snprintf(path, sizeof path, "%s/config.json", tmpdir);
    json_t *cfg = json_load_file(path, 0, NULL);
    if (!cfg)
        die("config.json", NULL);
    json_object_set_new(cfg, "max_connections_per_ip", json_integer(0));
    if (threads)
        json_object_set_new(cfg, "threads", json_integer(threads));
    json_t *rl = json_object_get(cfg, "rate_limit");
    if (!json_is_object(rl))
        json_object_set_new(cfg, "rate_limit", rl = json_object());
    json_object_set_new(rl, "per_ip_per_s", json_integer(0));
    if (json_dump_file(cfg, path, JSON_INDENT(2)) != 0)
        die("config.json", NULL);
    json_decref(cfg);
    bench_na_start(&own, "bench_na", bin);
    na_pid = own.pid;
    snprintf(url, cap, "%s", own.url);
}

static void stop_na(void)
{
    bench_na_stop(&own, "bench_na");
    na_pid = 0;
}

int main(int argc, char **argv)
{
    const char *url_opt = NULL, *dir = NULL, *bin_opt = NULL;
    int joins = 100, fetches = 1000, plain = 0, threads = 0, gc_joins = 512;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--na") && i + 1 < argc)
            url_opt = argv[++i];
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--bin") && i + 1 < argc)
            bin_opt = argv[++i];
        else if (!strcmp(argv[i], "--joins") && i + 1 < argc)
            joins = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--fetches") && i + 1 < argc)
            fetches = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--gc-joins") && i + 1 < argc)
            gc_joins = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--gc-clients") && i + 1 < argc) {
            char *p = argv[++i];
            for (gc_n = 0; gc_n < GC_MAX && *p; p += *p == ',')
                if ((gc_clients[gc_n++] = (int)strtol(p, &p, 10)) < 1 || (*p && *p != ',')) {
                    fprintf(stderr, "bench_na: --gc-clients wants a list like 1,4,32\n");
                    return 2;
                }
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--plain-http"))
            plain = 1;
        else {
            fprintf(stderr, "usage: bench_na [--na URL --dir OPERATOR_DIR] [--bin GENESIS_MESH] [--joins N] "
                            "[--fetches N] [--gc-joins N] [--gc-clients 1,4,32,128] [--plain-http] [--threads N]\n");
            return 2;
        }
    }
    if (joins < THREADS || fetches < 1 || (url_opt && !dir)) {
        fprintf(stderr, "bench_na: --joins >= %d, --fetches >= 1, and --na needs --dir\n", THREADS);
        return 2;
    }
    gm_error err = {0};
    if (gm_init(&err) != 0)
        die("init", &err);
    bench b = {.joins = joins};
    char url[256], path[4096];
    if (url_opt) {
        snprintf(url, sizeof url, "%s", url_opt);
    } else {
        spawn_na(bench_find_bin(bin_opt), plain, threads, url, sizeof url);
        dir = tmpdir;
        atexit(stop_na);
    }
    b.url = url;
    snprintf(path, sizeof path, "%s/operator", dir);
    if (gm_signer_load(&b.op, path, "operator-local", &err) != 0)
        die("operator key", &err);
    if (gm_na_fetch_genesis(url, 0, &b.genesis, NULL, &err) != 0)
        die("GET /genesis", &err);
    memcpy(b.na_pk, b.genesis.na_pk, GM_PK_LEN);

    double seq[RUNS], par[RUNS], full[RUNS], cond[RUNS], ver[RUNS];
    for (int r = 0; r < RUNS; r++) {
        measure_enroll(&b, &seq[r], &par[r]);
        measure_crl(&b, fetches, &full[r], &cond[r]);
        ver[r] = verify_us();
    }
    double v = median(ver, RUNS), s = median(seq, RUNS), p = median(par, RUNS);
    double f = median(full, RUNS), c = median(cond, RUNS);
    printf("NA at %s, medians of %d runs (%d enrollments, %d CRL fetches per run)\n", url, RUNS, joins, fetches);
    printf("  Ed25519 verify:                 %8.1f us\n", v);
    printf("  enrollments/s, 1 client:        %8.1f  (%.2f ms each = %.0f x one verify)\n", s, 1e3 / s,
           1e6 / s / v);
    printf("  enrollments/s, %d clients:       %8.1f  (%.2f x one client)\n", THREADS, p, p / s);
    printf("  CRL fetches/s, full + verify:   %8.1f  (%.3f ms each = %.0f x one verify)\n", f, 1e3 / f, 1e6 / f / v);
    printf("  CRL fetches/s, 304 Not Modified:%8.1f  (%.3f ms each = %.0f x one verify)\n", c, 1e3 / c, 1e6 / c / v);

    /* Group commit: joins of pre-made invites (one request, one durable transaction each),
     * each figure next to the floors measured in this run. */
    if (na_pid > 0 && gc_joins >= 128) {
        double fs_cpu, fs = fsync_us(tmpdir, 1, 101, &fs_cpu), sg = sign_us(), crypto = (v + sg) / 1e3;
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        printf("group commit: joins of pre-made invites, medians of %d runs of %d joins (NA %s, %s)\n", GC_RUNS,
               gc_joins, plain ? "plain HTTP" : "HTTPS, a TLS handshake per request", threads ? "threads set" : "default threads");
        printf("  4 KiB write + fdatasync in place in the NA's directory: %.0f us (%.0f us of CPU) -> %.0f durable "
               "commits/s one after another\n", fs, fs_cpu, 1e6 / fs);
        printf("  the join's crypto in the NA (one Ed25519 verify + one sign): %.3f ms of CPU\n", crypto);
        double one = 0;
        for (size_t k = 0; k < gc_n; k++) {
            int nc_ = gc_clients[k];
            double js[GC_RUNS], cpu[GC_RUNS], sy[GC_RUNS], cm[GC_RUNS], cl[GC_RUNS];
            double sms[GC_RUNS], wpj[GC_RUNS], ssh[GC_RUNS], ksh[GC_RUNS], kth[GC_RUNS];
            double tg[GC_RUNS], tgc[GC_RUNS], tgr[GC_RUNS], tp[GC_RUNS], tpc[GC_RUNS], tpr[GC_RUNS];
            for (int r = 0; r < GC_RUNS; r++) {
                gc_result gr = measure_gc(&b, nc_, gc_joins);
                js[r] = gr.joins_s, cpu[r] = gr.cpu_ms, sy[r] = gr.syncs_per_join, cm[r] = gr.commits_per_join,
                cl[r] = gr.client_cpu_ms;
                sms[r] = gr.sync_ms, wpj[r] = gr.wal_per_join, ssh[r] = gr.sync_share, ksh[r] = gr.ckpt_share;
                kth[r] = gr.ckpt_thread_share;
                measure_trivial(&b, nc_, gc_joins, 0, &tg[r], &tgc[r], &tgr[r]);
                measure_trivial(&b, nc_, gc_joins, 1, &tp[r], &tpc[r], &tpr[r]);
            }
            double j = median(js, GC_RUNS), nc = median(cpu, GC_RUNS), y = median(sy, GC_RUNS);
            double m = median(cm, GC_RUNS), ccl = median(cl, GC_RUNS);
            double hg = median(tg, GC_RUNS), gcl = median(tgc, GC_RUNS), gr_ = median(tgr, GC_RUNS);
            double pp = median(tp, GC_RUNS), pcl = median(tpc, GC_RUNS), pr = median(tpr, GC_RUNS);
            double sync_ms = median(sms, GC_RUNS), wal = median(wpj, GC_RUNS);
            double sync_share = median(ssh, GC_RUNS), ckpt_share = median(ksh, GC_RUNS);
            double ckpt_thread_share = median(kth, GC_RUNS);
            if (k == 0)
                one = j;
            /* limits: the disk and the CPU (NA + client per join on all cores). The disk's: each
             * client has one join in flight and it is answered only after a sync of the WAL bytes
             * of its batch, so at best every batch holds all clients' joins: <= clients / (the
             * time to write and fdatasync clients x the WAL bytes per join), measured here in the
             * NA's directory. Without the NA's sync counters: the 4 KiB probe x syncs per join. */
            double batch_us = 0, batch_cpu = 0, disk_lim = y > 0 ? 1e6 / (fs * y) : 0, cpu_lim = cores * 1e3 / (nc + ccl);
            int blocks = wal > 0 ? (int)(nc_ * wal / 4096 + 1) : 0;
            if (blocks > 0 && (batch_us = fsync_us(tmpdir, blocks, 21, &batch_cpu)) > 0)
                disk_lim = nc_ * 1e6 / batch_us;
            /* the NA's floor per join: a request on a kept-alive connection + the crypto + its share of a sync */
            double floor_ms = pp + crypto + y * fs_cpu / 1e3;
            printf("  %3d clients: %7.1f joins/s (%.2f x 1 client)  NA CPU %.3f ms/join (limit 0.5: %s)  "
                   "client CPU %.3f ms/join  commits/join %.2f  syncs/join %.3f\n"
                   "               limits: disk %.0f joins/s (%s), CPU %.0f joins/s (%ld cores); "
                   "%.0f %% of the lower; target 3000/s at 32 clients: %s\n",
                   nc_, j, j / one, nc, nc <= 0.5 ? "ok" : "OVER", ccl, m, y, disk_lim,
                   batch_us > 0 ? "all clients in every sync" : "4 KiB probe x syncs/join", cpu_lim, cores,
                   100 * j / (disk_lim > 0 && disk_lim < cpu_lim ? disk_lim : cpu_lim),
                   nc_ != 32 ? "-" : j >= 3000 ? "ok" : "OVER");
            printf("               trivial requests at %d clients: GET /health kept alive %.0f/s, NA %.3f ms, client "
                   "%.3f ms; POST refused (400), kept alive %.0f/s, NA %.3f ms, client %.3f ms\n"
                   "               NA floor per join = that POST %.3f + crypto %.3f + syncs/join x sync CPU %.3f = "
                   "%.3f ms: the join costs %.2f x its floor; CPU limit at the floors (NA + client POST) %.0f joins/s\n",
                   nc_, gr_, hg, gcl, pr, pp, pcl, pp, crypto, y * fs_cpu / 1e3, floor_ms, nc / floor_ms,
                   cores * 1e3 / (floor_ms + pcl));
            if (batch_us > 0)
                printf("               the NA's syncs: %.1f joins each, %.2f ms each (%.0f %% of the run syncing; "
                       "at this batch size syncs one after another allow %.0f joins/s); WAL %.1f KiB per join; "
                       "checkpoints inside commits %.0f %% of the run, in the checkpointer thread %.0f %%; "
                       "a write of %d clients' WAL (%d KiB) + "
                       "fdatasync here: %.2f ms\n",
                       y > 0 ? 1 / y : 0, sync_ms, 100 * sync_share, y > 0 && sync_ms > 0 ? 1e3 / (y * sync_ms) : 0,
                       wal / 1024, 100 * ckpt_share, 100 * ckpt_thread_share, nc_, blocks * 4, batch_us / 1e3);
            if (atomic_load(&triv_failed))
                printf("               (%d trivial requests failed or got another status: those rows are optimistic)\n",
                       atomic_exchange(&triv_failed, 0));
        }
    }
    gm_signer_wipe(&b.op);
    gm_genesis_free(&b.genesis);
    return 0;
}
