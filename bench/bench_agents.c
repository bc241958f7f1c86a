/* Agent figures against a running network (driven by bench/bench_agents.sh):
 *   bench_agents --dir D --invoke CAP [--input-json J] [--n N] [--runs R]
 *       capability invocations per second and latency p10/p50/p99 through the node at D
 *       (discovery, the requester's own certificate/CRL checks, the mesh round trip);
 *   bench_agents --dir D --discover CAP [--n N] [--runs R]
 *       discovery queries per second at the NA (GET /agents?capability=CAP, signed by D's key);
 *   --target-ms T prints the p50 next to the target T and their ratio (issue 10: direct call
 *   < 1 ms, planner.answer < 3 ms with the mock LLM);
 *   --limit-ms L prints the p50 next to L, the bare mesh round trip measured by --ping in the
 *   same run, and their ratio; --cpu "name=pid,..." prints the CPU each of those processes
 *   (and this one) spent per call, from each thread's schedstat (proc_cpu_s).
 *   bench_agents --dir D --echo
 *       the echo client: subscribed to the port bench.echo with binary frames, it sends every
 *       message back to its sender on the same connection (no agent logic), until killed;
 *   bench_agents --dir D --ping KEY [--n N] [--runs R]
 *       round trip of a bare 1 KiB message to the echo client on the node KEY over the same
 *       path as a call: per message one local-API connection, subscribed with frames, the
 *       message sent as a frame on it, the echo read as a frame.
 * Prints medians over the runs; never asserts. Without arguments it only says how to run. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <unistd.h>

#include "gm/agent.h"
#include "gm/node.h"
#include "gm/util.h"
#include "client_internal.h"

#include "bench_util.h"

#define ECHO_PORT "bench.echo"
#define CPU_MAX 8

/* CPU seconds of process pid so far: the nanoseconds on CPU of each of its threads
 * (the schedstat file of each task in /proc/PID/task; a provider keeps its worker threads, so none of the time is in
 * threads that are gone), not /proc/PID/stat's 10 ms ticks, which over a run of a few tenths of
 * a second read a process's CPU per call in steps of 0.05 ms. Ticks where schedstat is
 * missing; -1 when unreadable. */
static double proc_cpu_s(long pid)
{
    char path[96], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/task", pid);
    DIR *d = opendir(path);
    double ns = 0;
    int seen = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/%ld/task/%.20s/schedstat", pid, e->d_name);
        FILE *f = fopen(path, "r");
        unsigned long long run = 0;
        if (f && fscanf(f, "%llu", &run) == 1) {
            ns += (double)run;
            seen++;
        }
        if (f)
            fclose(f);
    }
    if (d)
        closedir(d);
    if (seen)
        return ns / 1e9;
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t k = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[k] = 0;
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* The echo client: every message on ECHO_PORT goes back to its sender. */
static int echo_serve(const char *sock)
{
    gm_node_conn_t *c = NULL;
    gm_error err = {0};
    if (gm_node_conn_open_path(sock, &c, &err) != 0 || gm_node_conn_subscribe_frames(c, ECHO_PORT, 5000, &err) != 0) {
        fprintf(stderr, "bench_agents --echo: %s\n", err.msg);
        gm_node_conn_close(c);
        return 1;
    }
    for (uint32_t seq = 1;; seq++) {
        json_t *line = NULL;
        gm_node_msg m;
        int rc = gm_node_conn_read_msg(c, &line, &m, 0, &err);
        json_decref(line);
        if (rc < 0) {
            fprintf(stderr, "bench_agents --echo: %s\n", err.msg);
            break;
        }
        if (rc == 1 && gm_node_conn_post(c, m.from, ECHO_PORT, m.data, m.len, seq, &err) != 0) {
            fprintf(stderr, "bench_agents --echo: %s\n", err.msg);
            break;
        }
    }
    gm_node_conn_close(c);
    return 1;
}

/* One bare round trip to the echo client at `to`, as a call does it: 0 or -1. */
static int ping_once(const char *sock, const uint8_t to[GM_PK_LEN], const uint8_t *msg, size_t len, gm_error *err)
{
    gm_node_conn_t *c = NULL;
    int rc = gm_node_conn_open_path(sock, &c, err);
    if (rc == 0)
        rc = gm_node_conn_subscribe_frames(c, ECHO_PORT, 5000, err);
    if (rc == 0)
        rc = gm_node_conn_post(c, to, ECHO_PORT, msg, len, 1, err);
    while (rc == 0) {
        json_t *line = NULL;
        gm_node_msg m;
        int r = gm_node_conn_read_msg(c, &line, &m, 5000, err);
        if (r == 0)
            rc = gm_node_conn_post_failed(line, 1, to, err);
        json_decref(line);
        if (r < 0)
            rc = r;
        else if (r == 1 && !memcmp(m.from, to, GM_PK_LEN) && m.len == len && !memcmp(m.data, msg, len))
            break;
    }
    gm_node_conn_close(c);
    return rc == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *invoke = NULL, *discover = NULL, *input_json = "{\"question\":\"bench\"}";
    const char *ping = NULL, *cpu = NULL;
    int n = 200, runs = 3, echo = 0;
    double target_ms = 0, limit_ms = 0;
    char names[CPU_MAX][32];
    long pids[CPU_MAX];
    double cpu0[CPU_MAX + 1];
    int n_cpu = 0;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--echo"))
            echo = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--dir")) dir = argv[i + 1];
        else if (!strcmp(argv[i], "--invoke")) invoke = argv[i + 1];
        else if (!strcmp(argv[i], "--discover")) discover = argv[i + 1];
        else if (!strcmp(argv[i], "--input-json")) input_json = argv[i + 1];
        else if (!strcmp(argv[i], "--n")) n = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--runs")) runs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--target-ms")) target_ms = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--limit-ms")) limit_ms = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--ping")) ping = argv[i + 1];
        else if (!strcmp(argv[i], "--cpu")) cpu = argv[i + 1];
    }
    for (const char *q = cpu; q && *q && n_cpu < CPU_MAX; q = strchr(q, ',') ? strchr(q, ',') + 1 : "") {
        if (sscanf(q, "%31[^=]=%ld", names[n_cpu], &pids[n_cpu]) == 2)
            n_cpu++;
    }
    if (dir && echo) {
        char sock[GM_NODE_SOCK_PATH_MAX];
        snprintf(sock, sizeof sock, "%s/node.sock", dir);
        return echo_serve(sock);
    }
    if (!dir || (!invoke && !discover && !ping) || n <= 0 || runs <= 0) {
        printf("bench_agents: needs a running network; run bench/bench_agents.sh\n");
        return 0;
    }
    gm_error err = {0};
    gm_agent_ctx ctx;
    if (gm_init(&err) != 0 || gm_agent_ctx_open(&ctx, dir, NULL, &err) != 0) {
        fprintf(stderr, "bench_agents: %s\n", err.msg);
        return 1;
    }
    json_t *input = json_loads(input_json, 0, NULL);
    double *lat = calloc((size_t)n, sizeof *lat), *rate = calloc((size_t)runs, sizeof *rate);
    double *p10 = calloc((size_t)runs, sizeof *p10), *p50 = calloc((size_t)runs, sizeof *p50),
           *p99 = calloc((size_t)runs, sizeof *p99);
    int failures = 0;
    uint8_t ping_to[GM_PK_LEN], ping_msg[1024];
    if (ping && gm_pk_decode(ping, ping_to, &err) != 0) {
        fprintf(stderr, "bench_agents --ping: %s\n", err.msg);
        return 1;
    }
    memset(ping_msg, 'x', sizeof ping_msg);
    for (int i = 0; i < n_cpu; i++)
        cpu0[i] = proc_cpu_s(pids[i]);
    cpu0[n_cpu] = bench_cpu_s();
    for (int r = 0; r < runs; r++) {
        double t0 = now_s();
        for (int i = 0; i < n; i++) {
            double s = now_s();
            if (ping) {
                failures += ping_once(ctx.sock, ping_to, ping_msg, sizeof ping_msg, &err) != 0;
            } else if (invoke) {
                gm_agent_response resp;
                if (gm_agent_call(&ctx, invoke, input, 10000, NULL, "", &resp, NULL, &err) == 0) {
                    failures += resp.error_code != NULL;
                    gm_agent_response_free(&resp);
                } else {
                    failures++;
                }
            } else {
                json_t *l = NULL;
                if (gm_agent_list(ctx.na_url, &ctx.node, discover, 5000, &l, &err) != 0)
                    failures++;
                json_decref(l);
            }
            lat[i] = (now_s() - s) * 1000.0;
        }
        rate[r] = n / (now_s() - t0);
        qsort(lat, (size_t)n, sizeof *lat, cmp_d);
        p10[r] = lat[n / 10];
        p50[r] = lat[n / 2];
        p99[r] = lat[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1];
    }
    qsort(rate, (size_t)runs, sizeof *rate, cmp_d);
    qsort(p10, (size_t)runs, sizeof *p10, cmp_d);
    qsort(p50, (size_t)runs, sizeof *p50, cmp_d);
    qsort(p99, (size_t)runs, sizeof *p99, cmp_d);
    double calls = (double)n * runs;
    printf("%-28s %9.1f ops/s   p10 %7.2f ms   p50 %7.2f ms   p99 %7.2f ms   (median of %d runs x %d, %d failed)\n",
           ping ? "bare mesh round trip" : invoke ? invoke : discover, rate[runs / 2], p10[runs / 2], p50[runs / 2],
           p99[runs / 2], runs, n, failures);
    if (n_cpu) {
        printf("%-28s CPU ms per call:", "");
        for (int i = 0; i < n_cpu; i++) {
            double c1 = proc_cpu_s(pids[i]);
            if (c1 >= 0 && cpu0[i] >= 0)
                printf(" %s %.3f", names[i], (c1 - cpu0[i]) * 1000.0 / calls);
        }
        printf(" requester %.3f\n", (bench_cpu_s() - cpu0[n_cpu]) * 1000.0 / calls);
    }
    if (limit_ms > 0)
        printf("%-28s p50 %7.2f ms   bare mesh round trip %.2f ms   ratio p50/round trip %.2f\n", "",
               p50[runs / 2], limit_ms, p50[runs / 2] / limit_ms);
    if (target_ms > 0)
        printf("%-28s p50 %7.2f ms   target < %.2f ms   ratio p50/target %.2f (%s)\n", "", p50[runs / 2], target_ms,
               p50[runs / 2] / target_ms, p50[runs / 2] < target_ms ? "met" : "NOT met");
    free(lat);
    free(rate);
    free(p10);
    free(p50);
    free(p99);
    json_decref(input);
    gm_agent_ctx_close(&ctx);
    return 0;
}
