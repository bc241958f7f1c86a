/* Network Authority throughput over real HTTP on loopback: enrollments per second (admin
 * invite + node join, each with proof of possession and a durable SQLite commit), CRL
 * fetches per second (full: parse + verify; conditional: 304), compared with the cost of
 * one Ed25519 verification on this machine. Medians of RUNS runs.
 *
 * usage: bench_na [--na URL --dir OPERATOR_DIR] [--bin GENESIS_MESH] [--joins N] [--fetches N]
 * Without --na it spawns its own NA: `genesis-mesh init` in a temp dir, then
 * `genesis-mesh na start --listen 127.0.0.1:0 --port-file ... --quiet` (binary from --bin,
 * else $GM_BIN, else ../genesis-mesh next to this program), and stops it at the end. */
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "gm/genesis.h"
#include "gm/http_client.h"
#include "gm/keys.h"
#include "gm/na_client.h"
#include "gm/util.h"

#include "bench_util.h"

#define RUNS 5
#define THREADS 4

static void die(const char *what, const gm_error *err)
{
    fprintf(stderr, "bench_na: %s: %s\n", what, err ? err->msg : "failed");
    exit(1);
}

typedef struct bench {
    const char *url;
    gm_signer op;
    uint8_t na_pk[GM_PK_LEN];
    int joins;
} bench;

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

/* ---- an NA of our own ---- */

static pid_t na_pid;
static char tmpdir[256];

static const char *find_bin(const char *arg0, const char *opt)
{
    static char path[4096];
    if (opt)
        return opt;
    if (getenv("GM_BIN"))
        return getenv("GM_BIN");
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return "genesis-mesh";
    self[n] = '\0';
    snprintf(path, sizeof path, "%s/../genesis-mesh", dirname(self));
    return path;
}

static void spawn_na(const char *bin, char *url, size_t cap)
{
    char cmd[8192], port_file[512];
    snprintf(tmpdir, sizeof tmpdir, "/tmp/gm-bench-na-XXXXXX");
    if (!mkdtemp(tmpdir))
        die("mkdtemp", NULL);
    snprintf(cmd, sizeof cmd, "'%s' init --dir '%s' >/dev/null", bin, tmpdir);
    if (system(cmd) != 0)
        die("genesis-mesh init (pass --bin or set GM_BIN)", NULL);
    snprintf(port_file, sizeof port_file, "%s/port", tmpdir);
    na_pid = fork();
    if (na_pid == 0) {
        execl(bin, bin, "na", "start", "--dir", tmpdir, "--listen", "127.0.0.1:0", "--port-file", port_file,
              "--quiet", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 300; i++) {
        FILE *f = fopen(port_file, "r");
        unsigned port = 0;
        if (f && fscanf(f, "%u", &port) == 1 && port) {
            fclose(f);
            /* init made a TLS certificate: the NA serves HTTPS, trusted here as its own CA */
            char ca[300];
            gm_error terr = {0};
            snprintf(url, cap, "https://127.0.0.1:%u", port);
            snprintf(ca, sizeof ca, "%s/tls.crt", tmpdir);
            if (gm_http_trust_set(url, ca, NULL, &terr) != 0)
                die("NA TLS certificate", &terr);
            return;
        }
        if (f)
            fclose(f);
        usleep(20000);
    }
    die("the NA did not start", NULL);
}

static void stop_na(void)
{
    if (na_pid > 0) {
        kill(na_pid, SIGTERM);
        waitpid(na_pid, NULL, 0);
    }
    if (tmpdir[0]) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
            fprintf(stderr, "bench_na: could not remove %s\n", tmpdir);
    }
}

int main(int argc, char **argv)
{
    const char *url_opt = NULL, *dir = NULL, *bin_opt = NULL;
    int joins = 100, fetches = 1000;
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
        else {
            fprintf(stderr, "usage: bench_na [--na URL --dir OPERATOR_DIR] [--bin GENESIS_MESH] [--joins N] "
                            "[--fetches N]\n");
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
        spawn_na(find_bin(argv[0], bin_opt), url, sizeof url);
        dir = tmpdir;
        atexit(stop_na);
    }
    b.url = url;
    snprintf(path, sizeof path, "%s/operator", dir);
    if (gm_signer_load(&b.op, path, "operator-local", &err) != 0)
        die("operator key", &err);
    gm_genesis g;
    if (gm_na_fetch_genesis(url, 0, &g, NULL, &err) != 0)
        die("GET /genesis", &err);
    memcpy(b.na_pk, g.na_pk, GM_PK_LEN);
    gm_genesis_free(&g);

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
    gm_signer_wipe(&b.op);
    return 0;
}
