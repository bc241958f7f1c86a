/* Fuzz target for the request reading of the node's metrics listener (node --metrics-listen):
 * any bytes, up to the 4 KiB head it keeps, get one of the four answers, and 200 only for a
 * request line that is exactly GET or HEAD of /metrics. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node_internal.h"

#define FAIL(msg)                                                                                        \
    do {                                                                                                 \
        fprintf(stderr, "fuzz_metrics_http: %s\n", msg);                                                 \
        abort();                                                                                         \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char head[4097];
    size_t n = size < 4096 ? size : 4096;
    memcpy(head, data, n);
    head[n] = '\0';
    int head_only = -1;
    int st = node_mhttp_route(head, &head_only);
    if (st != 200 && st != 400 && st != 404 && st != 405)
        FAIL("unexpected status");
    if (head_only != 0 && head_only != 1)
        FAIL("head_only not set");
    if (st == 200 && strncmp(head, "GET /metrics ", 13) != 0 && strncmp(head, "HEAD /metrics ", 14) != 0)
        FAIL("200 for something else than GET or HEAD /metrics");
    if (head_only && strncmp(head, "HEAD ", 5) != 0)
        FAIL("head_only without HEAD");
    return 0;
}
