/* Small HTTP client over libcurl: how the CLI, nodes and agents talk to the
 * Network Authority and to LLM providers. Any thread may call it (a call takes an
 * easy handle of its own, kept with its connections for later calls); the
 * connections of GET requests are kept alive and reused by later calls; redirects
 * are never followed; only http:// and https://. */
#ifndef GM_HTTP_CLIENT_H
#define GM_HTTP_CLIENT_H

#include <stddef.h>

#include <jansson.h>

#include "gm/error.h"

#define GM_HTTP_DEFAULT_TIMEOUT_MS 30000L
#define GM_HTTP_DEFAULT_MAX_RESPONSE ((size_t)8 * 1024 * 1024)

typedef struct gm_http_req {
    const char *method;          /* "GET", "POST", ...; NULL means GET, or POST when body is set */
    const char *url;             /* http:// or https://; replicas of one service as their origins joined by
                                    commas, the path after the last ("https://a:1,https://b:2/crl"): tried in
                                    order while one cannot be reached or answers 503 */
    const char *const *headers;  /* n_headers entries of "Name: value" (no CR/LF) */
    size_t n_headers;
    const void *body;            /* NULL for no body */
    size_t body_len;
    long timeout_ms;             /* whole request, connect included; 0 = GM_HTTP_DEFAULT_TIMEOUT_MS */
    size_t max_response;         /* larger bodies fail with GM_ETOOBIG; 0 = GM_HTTP_DEFAULT_MAX_RESPONSE */
    const volatile int *cancel;  /* optional: set non-zero (from any thread) to give up within
                                    about a second with GM_ENET (long polls) */
    int keep_alive;              /* a POST (any method) on a kept-alive connection reused by later requests,
                                    as GETs always are (the NA client's calls, the LLM's). It is sent at most
                                    once: libcurl would re-send it on a new connection when the kept one turns
                                    out closed before any answer (an uncounted retry; a request signed with a
                                    one-time nonce refused as a replay); instead it fails with GM_ENET
                                    "connection closed before a complete response ... not re-sent" and the
                                    caller's own retry policy decides */
} gm_http_req;

typedef struct gm_http_resp {
    int status;                  /* HTTP status of the final response */
    char *body;                  /* malloc'd, NUL-terminated (may hold NULs before len) */
    size_t len;
    char *etag;                  /* ETag header value verbatim (quotes kept), or NULL */
    long retry_after_ms;         /* Retry-After (seconds or HTTP-date) or retry-after-ms, in ms,
                                    capped at GM_HTTP_RETRY_AFTER_MAX_MS; -1 when absent or unusable */
} gm_http_resp;

#define GM_HTTP_RETRY_AFTER_MAX_MS (24L * 3600 * 1000)

/*
 * Perform one request. Returns 0 once any HTTP response arrived, whatever its
 * status (the caller judges 4xx/5xx); resp must then be freed with
 * gm_http_resp_free. On failure resp is left empty and the code is:
 *   GM_EINVAL   bad arguments (method, URL scheme, header with CR/LF)
 *   GM_ENET     "cannot reach <url>: connection refused", DNS, TLS, reset
 *   GM_ETIMEOUT no complete answer within timeout_ms
 *   GM_ETOOBIG  response body larger than max_response
 * Error messages name the URL without any user:password part.
 */
int gm_http_request(const gm_http_req *req, gm_http_resp *resp, gm_error *err) GM_MUST_CHECK;

/* Wipe (bodies may echo credentials) and free the response; safe on an empty or freed one. */
void gm_http_resp_free(gm_http_resp *resp);

/*
 * TLS trust for one server (scheme://host:port of url; the path is ignored): every request
 * to it verifies the server with ca_file (a PEM file of trusted certificates; the NA's
 * self-signed certificate is its own CA) and/or pin ("sha256//<base64>", ';' between
 * several: the server key must be one of them). With a pin and no CA file the certificate
 * chain and host name are not checked, only the key. Servers without an entry use the
 * system's CA store. This is process-wide state (like curl_global_init): programs set it
 * once, at start, for the NA they talk to. Setting the same origin again replaces it.
 */
int gm_http_trust_set(const char *url, const char *ca_file, const char *pin, gm_error *err) GM_MUST_CHECK;

/*
 * The NA trust kept in a node directory by `join` (D/na-ca.pem, D/na-tls.pin), set for url
 * with gm_http_trust_set. Nothing kept: returns 0 and sets nothing.
 */
int gm_http_trust_load_dir(const char *dir, const char *url, gm_error *err) GM_MUST_CHECK;

#define GM_HTTP_TRUST_CA_FILE "na-ca.pem"
#define GM_HTTP_TRUST_PIN_FILE "na-tls.pin"

#endif
