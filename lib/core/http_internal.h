/* Pieces of lib/core/http_client.c exposed so fuzz/fuzz_http.c can reach the header parsers. */
#ifndef GM_HTTP_INTERNAL_H
#define GM_HTTP_INTERNAL_H

#include <stddef.h>

/* A Retry-After value (n bytes, not NUL-terminated): delta-seconds or an IMF-fixdate
 * ("Sun, 06 Nov 1994 08:49:37 GMT"); in_ms for the non-standard retry-after-ms header
 * (milliseconds). Returns ms, capped at GM_HTTP_RETRY_AFTER_MAX_MS, or -1 when unusable. */
long gm_http_parse_retry_after(const char *v, size_t n, int in_ms);

#endif
