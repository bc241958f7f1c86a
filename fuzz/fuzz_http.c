/* Fuzz target for the HTTP client's header parsers: Retry-After (delta-seconds or an HTTP date)
 * and retry-after-ms. Input: 'M' (milliseconds) or anything else (seconds), then the value. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gm/http_client.h"
#include "http_internal.h"

#define FAIL(msg)                                                                                        \
    do {                                                                                                 \
        fprintf(stderr, "fuzz_http: %s\n", msg);                                                         \
        abort();                                                                                         \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    int in_ms = data[0] == 'M';
    size_t n = size - 1;
    /* An exact-size copy, not NUL-terminated: the parser must stay within n bytes. */
    char *v = malloc(n ? n : 1);
    if (!v)
        return 0;
    memcpy(v, data + 1, n);
    long ms = gm_http_parse_retry_after(v, n, in_ms);
    if (ms < -1 || ms > GM_HTTP_RETRY_AFTER_MAX_MS)
        FAIL("value out of range");
    size_t digits = 0;
    while (digits < n && v[digits] >= '0' && v[digits] <= '9')
        digits++;
    if (n > 0 && digits == n) {
        long long want = GM_HTTP_RETRY_AFTER_MAX_MS;
        if (n <= 9) {
            long long x = 0;
            for (size_t i = 0; i < n; i++)
                x = x * 10 + (v[i] - '0');
            want = in_ms ? x : x * 1000;
            if (want > GM_HTTP_RETRY_AFTER_MAX_MS)
                want = GM_HTTP_RETRY_AFTER_MAX_MS;
        }
        if (ms != want)
            FAIL("delta value parsed wrongly");
    } else if (in_ms && ms != -1) {
        FAIL("retry-after-ms accepted something other than digits");
    }
    free(v);
    return 0;
}
