/* Agent figures against a running network (driven by bench/bench_agents.sh):
 *   bench_agents --dir D --invoke CAP [--input-json J] [--n N] [--runs R]
 *       capability invocations per second and latency p50/p99 through the node at D
 *       (discovery, the requester's own certificate/CRL checks, the mesh round trip);
 *   bench_agents --dir D --discover CAP [--n N] [--runs R]
 *       discovery queries per second at the NA (GET /agents?capability=CAP, signed by D's key);
 *   --target-ms T prints the p50 next to the target T and their ratio (issue 10: direct call
 *   < 1 ms, planner.answer < 3 ms with the mock LLM).
 * Prints medians over the runs; never asserts. Without arguments it only says how to run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gm/agent.h"
#include "gm/util.h"

#include "bench_util.h"

int main(int argc, char **argv)
{
    const char *dir = NULL, *invoke = NULL, *discover = NULL, *input_json = "{\"question\":\"bench\"}";
    int n = 200, runs = 3;
    double target_ms = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--dir")) dir = argv[i + 1];
        else if (!strcmp(argv[i], "--invoke")) invoke = argv[i + 1];
        else if (!strcmp(argv[i], "--discover")) discover = argv[i + 1];
        else if (!strcmp(argv[i], "--input-json")) input_json = argv[i + 1];
        else if (!strcmp(argv[i], "--n")) n = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--runs")) runs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--target-ms")) target_ms = atof(argv[i + 1]);
    }
    if (!dir || (!invoke && !discover) || n <= 0 || runs <= 0) {
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
    double *p50 = calloc((size_t)runs, sizeof *p50), *p99 = calloc((size_t)runs, sizeof *p99);
    int failures = 0;
    for (int r = 0; r < runs; r++) {
        double t0 = now_s();
        for (int i = 0; i < n; i++) {
            double s = now_s();
            if (invoke) {
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
        p50[r] = lat[n / 2];
        p99[r] = lat[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1];
    }
    qsort(rate, (size_t)runs, sizeof *rate, cmp_d);
    qsort(p50, (size_t)runs, sizeof *p50, cmp_d);
    qsort(p99, (size_t)runs, sizeof *p99, cmp_d);
    printf("%-28s %9.1f ops/s   p50 %7.2f ms   p99 %7.2f ms   (median of %d runs x %d, %d failed)\n",
           invoke ? invoke : discover, rate[runs / 2], p50[runs / 2], p99[runs / 2], runs, n, failures);
    if (target_ms > 0)
        printf("%-28s p50 %7.2f ms   target < %.2f ms   ratio p50/target %.2f (%s)\n", "", p50[runs / 2], target_ms,
               p50[runs / 2] / target_ms, p50[runs / 2] < target_ms ? "met" : "NOT met");
    free(lat);
    free(rate);
    free(p50);
    free(p99);
    json_decref(input);
    gm_agent_ctx_close(&ctx);
    return 0;
}
