/* gm_http: one libcurl easy handle per request at a time (kept for the next one), bounded
 * responses, errors a user can act on. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>

#include "gm/error.h"
#include "gm/http_client.h"
#include "gm/tls.h"
#include "gm/util.h"
#include "http_internal.h"
#include "core_internal.h"

#define URL_DISPLAY_MAX 200
#define ETAG_MAX 1024

/* Servers a URL list may name (replicas of the NA, see gm_http_request). */
#define GM_HTTP_URL_LIST_MAX 8

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static CURLcode g_curl_init_rc = CURLE_FAILED_INIT;

/* Connections of GET requests are kept open and reused: discovery, CRL and log reads to the NA
 * reuse a connection instead of a new TCP (and TLS) handshake each. Other methods get a
 * connection of their own unless the caller asks (gm_http_req.keep_alive); such a request is
 * sent at most once (send_once), so one that changes state is never re-sent by curl on a
 * connection the server closed meanwhile.
 *
 * The connections are kept by easy handles kept between requests, one request on a handle at a
 * time (libcurl does not support a connection cache shared by concurrent threads, which is how
 * they were kept before: a curl share of CURL_LOCK_DATA_CONNECT; with its default size of 5
 * and many threads it closed most connections after one request, and the bench client with 32
 * to 128 threads once died of a corrupted heap on it, a cause not traced further). A request
 * takes the last handle given back, with its connections, and gives it back reset
 * (curl_easy_reset: no option, header list or callback of the last request stays); so a client
 * keeps about one connection per thread that calls at once, up to HANDLES_KEPT. Keeping the
 * handle also spares libcurl building its implicit multi handle per request (a socket pair,
 * fcntls, sigactions, its buffers: about a sixth of the client CPU of a kept-alive join). What a reset keeps is made inert per request: a request not kept alive takes a
 * new connection and closes it after (FRESH_CONNECT, FORBID_REUSE), the DNS cache times out at
 * once, TLS sessions are not cached. */
#define HANDLES_KEPT 32

static pthread_mutex_t g_handles_lock = PTHREAD_MUTEX_INITIALIZER;
static CURL *g_handles[HANDLES_KEPT];
static size_t g_n_handles;

static void curl_init_once(void)
{
    g_curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static CURL *handle_take(void)
{
    CURL *h = NULL;
    pthread_mutex_lock(&g_handles_lock);
    if (g_n_handles > 0)
        h = g_handles[--g_n_handles];
    pthread_mutex_unlock(&g_handles_lock);
    return h ? h : curl_easy_init();
}

/* Past HANDLES_KEPT the handle is freed, and its connections closed. */
static void handle_give_back(CURL *h)
{
    curl_easy_reset(h);
    pthread_mutex_lock(&g_handles_lock);
    if (g_n_handles < HANDLES_KEPT) {
        g_handles[g_n_handles++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&g_handles_lock);
    if (h)
        curl_easy_cleanup(h);
}

/* ---- TLS trust per origin ---- */

#define TRUST_MAX 16
#define ORIGIN_MAX 300

typedef struct trust_entry {
    char origin[ORIGIN_MAX];
    char ca_file[4096];
    char pin[8 * GM_TLS_PIN_LEN];
} trust_entry;

static pthread_mutex_t g_trust_lock = PTHREAD_MUTEX_INITIALIZER;
static trust_entry g_trust[TRUST_MAX];
static size_t g_n_trust;

/* "scheme://host:port" in lower case, the default port filled in; userinfo dropped. */
static int origin_of(const char *url, char out[ORIGIN_MAX])
{
    const char *sep = strstr(url, "://");
    if (!sep)
        return -1;
    size_t slen = (size_t)(sep - url);
    const char *auth = sep + 3;
    size_t alen = strcspn(auth, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < alen; i++)
        if (auth[i] == '@')
            at = auth + i;
    if (at) {
        alen -= (size_t)(at + 1 - auth);
        auth = at + 1;
    }
    const char *close = auth[0] == '[' ? memchr(auth, ']', alen) : NULL;
    const char *colon = NULL;
    for (const char *p = close ? close : auth; p < auth + alen; p++)
        if (*p == ':')
            colon = p;
    const char *dflt = (slen == 5 && strncasecmp(url, "https", 5) == 0) ? "443" : "80";
    int n = snprintf(out, ORIGIN_MAX, "%.*s://%.*s%s%s", (int)slen, url, (int)alen, auth, colon ? "" : ":",
                     colon ? "" : dflt);
    if (n < 0 || n >= ORIGIN_MAX || alen == 0)
        return -1;
    for (char *p = out; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return 0;
}

static size_t url_list_split(const char *url, const char *start[GM_HTTP_URL_LIST_MAX],
                             size_t len[GM_HTTP_URL_LIST_MAX], const char **path);

int gm_http_trust_set(const char *url, const char *ca_file, const char *pin, gm_error *err)
{
    char origin[ORIGIN_MAX];
    const char *start[GM_HTTP_URL_LIST_MAX], *path;
    size_t len[GM_HTTP_URL_LIST_MAX], n = url ? url_list_split(url, start, len, &path) : 1;
    /* a list of replicas: the same trust for each */
    for (size_t i = 0; n > 1 && i < n; i++) {
        char one[ORIGIN_MAX];
        snprintf(one, sizeof one, "%.*s", (int)len[i], start[i]);
        int rc = gm_http_trust_set(one, ca_file, pin, err);
        if (rc != 0 || i == n - 1)
            return rc;
    }
    if (!url || origin_of(url, origin) != 0)
        return gm_error_set(err, GM_EINVAL, "cannot tell the server of URL '%.200s'", url ? url : "");
    if (ca_file && !*ca_file)
        ca_file = NULL;
    if (pin && !*pin)
        pin = NULL;
    int rc;
    if (pin && (rc = gm_tls_pin_check(pin, err)) != 0)
        return rc;
    if (pin && strlen(pin) >= sizeof g_trust[0].pin)
        return gm_error_set(err, GM_EINVAL, "too many TLS pins");
    if (ca_file && (strlen(ca_file) >= sizeof g_trust[0].ca_file || !gm_file_exists(ca_file)))
        return gm_error_set(err, GM_ENOTFOUND, "CA file %.300s not found", ca_file);
    pthread_mutex_lock(&g_trust_lock);
    size_t i = 0;
    while (i < g_n_trust && strcmp(g_trust[i].origin, origin) != 0)
        i++;
    if (i == TRUST_MAX) {
        pthread_mutex_unlock(&g_trust_lock);
        return gm_error_set(err, GM_EINVAL, "TLS trust is set for too many servers (at most %d)", TRUST_MAX);
    }
    if (i == g_n_trust)
        g_n_trust++;
    trust_entry *t = &g_trust[i];
    snprintf(t->origin, sizeof t->origin, "%s", origin);
    snprintf(t->ca_file, sizeof t->ca_file, "%s", ca_file ? ca_file : "");
    snprintf(t->pin, sizeof t->pin, "%s", pin ? pin : "");
    pthread_mutex_unlock(&g_trust_lock);
    return 0;
}

int gm_http_trust_load_dir(const char *dir, const char *url, gm_error *err)
{
    char ca[4096], pinfile[4096], *pin = NULL;
    size_t len = 0;
    int rc;
    if ((rc = gm_path_join(ca, sizeof ca, dir, GM_HTTP_TRUST_CA_FILE, err)) ||
        (rc = gm_path_join(pinfile, sizeof pinfile, dir, GM_HTTP_TRUST_PIN_FILE, err)))
        return rc;
    int have_ca = gm_file_exists(ca);
    if (gm_file_exists(pinfile)) {
        if ((rc = gm_file_read(pinfile, 4096, &pin, &len, err)) != 0)
            return rc;
        while (len > 0 && (pin[len - 1] == '\n' || pin[len - 1] == '\r' || pin[len - 1] == ' '))
            pin[--len] = '\0';
    }
    if (have_ca || pin)
        rc = gm_http_trust_set(url, have_ca ? ca : NULL, pin, err);
    if (rc != 0)
        gm_error_prefix(err, "NA trust kept in %s", dir);
    free(pin);
    return rc;
}

/* The trust of url's server into t; 0 when there is none. */
static int trust_find(const char *url, trust_entry *t)
{
    char origin[ORIGIN_MAX];
    int found = 0;
    if (origin_of(url, origin) != 0)
        return 0;
    pthread_mutex_lock(&g_trust_lock);
    for (size_t i = 0; i < g_n_trust && !found; i++)
        if (!strcmp(g_trust[i].origin, origin)) {
            *t = g_trust[i];
            found = 1;
        }
    pthread_mutex_unlock(&g_trust_lock);
    return found;
}

struct body_sink {
    char *buf;
    size_t len, cap, max;
    int too_big, oom;
};

struct header_sink {
    char *etag;
    long retry_after_ms;
};

/* The URL as shown in messages: any user:password@ removed, long ones shortened. */
static void url_for_display(const char *url, char *out, size_t cap)
{
    char tmp[URL_DISPLAY_MAX + 8];
    const char *sep = strstr(url, "://");
    const char *auth = sep ? sep + 3 : url;
    size_t auth_len = strcspn(auth, "/?#");
    const char *host = auth;
    for (size_t i = 0; i < auth_len; i++)
        if (auth[i] == '@')
            host = auth + i + 1;
    size_t prefix = (size_t)(auth - url);
    size_t n = 0;
    for (size_t i = 0; i < prefix && n < URL_DISPLAY_MAX; i++)
        tmp[n++] = ((unsigned char)url[i] < 0x20 || url[i] == 0x7f) ? '?' : url[i];
    for (const char *p = host; *p && n < URL_DISPLAY_MAX; p++)
        tmp[n++] = ((unsigned char)*p < 0x20 || *p == 0x7f) ? '?' : *p;
    tmp[n] = '\0';
    if (n == URL_DISPLAY_MAX && strlen(host) + prefix > URL_DISPLAY_MAX)
        memcpy(tmp + n, "...", 4);
    snprintf(out, cap, "%s", tmp);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    struct body_sink *s = ud;
    size_t n = size * nmemb;
    if (n > s->max - s->len) {
        s->too_big = 1;
        return 0;
    }
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + n + 1)
            cap *= 2;
        if (cap > s->max + 1)
            cap = s->max + 1;
        /* Copy by hand so the old block can be wiped: bodies may echo credentials. */
        char *nb = malloc(cap);
        if (!nb) {
            s->oom = 1;
            return 0;
        }
        if (s->buf) {
            memcpy(nb, s->buf, s->len);
            sodium_memzero(s->buf, s->cap);
            free(s->buf);
        }
        s->buf = nb;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data, n);
    s->len += n;
    s->buf[s->len] = '\0';
    return n;
}

/* Month of an IMF-fixdate ("Jan".."Dec"), 0..11, or -1. */
static int month_of(const char *m)
{
    static const char names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    for (int i = 0; i < 12; i++)
        if (strncmp(m, names + 3 * i, 3) == 0)
            return i;
    return -1;
}

long gm_http_parse_retry_after(const char *v, size_t n, int in_ms)
{
    char s[64];
    if (n == 0 || n >= sizeof s)
        return -1;
    memcpy(s, v, n);
    s[n] = '\0';
    if (strspn(s, "0123456789") == n) {
        if (n > 9)
            return GM_HTTP_RETRY_AFTER_MAX_MS;
        long x = strtol(s, NULL, 10);
        long ms = in_ms ? x : x * 1000;
        return ms > GM_HTTP_RETRY_AFTER_MAX_MS ? GM_HTTP_RETRY_AFTER_MAX_MS : ms;
    }
    if (in_ms)
        return -1;
    struct tm tm = {0};
    char mon[4] = "", tail;
    int consumed = 0;
    if (sscanf(s, "%*3[A-Za-z], %2d %3s %4d %2d:%2d:%2d GMT%n%c", &tm.tm_mday, mon, &tm.tm_year, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &consumed, &tail) != 6 || consumed != (int)n ||
        (tm.tm_mon = month_of(mon)) < 0)
        return -1;
    tm.tm_year -= 1900;
    time_t at = timegm(&tm), now = time(NULL);
    if (at == (time_t)-1)
        return -1;
    if (at <= now)
        return 0;
    double ms = difftime(at, now) * 1000;
    return ms > GM_HTTP_RETRY_AFTER_MAX_MS ? GM_HTTP_RETRY_AFTER_MAX_MS : (long)ms;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    struct header_sink *h = ud;
    size_t n = size * nmemb;
    /* A new status line (after 100 Continue, say) starts a new header block. */
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        free(h->etag);
        h->etag = NULL;
        h->retry_after_ms = -1;
    } else if ((n > 12 && strncasecmp(data, "retry-after:", 12) == 0) ||
               (n > 15 && strncasecmp(data, "retry-after-ms:", 15) == 0)) {
        int in_ms = data[11] != ':';
        const char *v = data + (in_ms ? 15 : 12), *end = data + n;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
            end--;
        long ms = gm_http_parse_retry_after(v, (size_t)(end - v), in_ms);
        /* retry-after-ms is the more precise of the two when both are sent. */
        if (ms >= 0 && (in_ms || h->retry_after_ms < 0))
            h->retry_after_ms = ms;
    } else if (n > 5 && strncasecmp(data, "etag:", 5) == 0) {
        const char *v = data + 5, *end = data + n;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
            end--;
        size_t len = (size_t)(end - v);
        free(h->etag);
        h->etag = NULL;
        if (len > 0 && len <= ETAG_MAX) {
            h->etag = malloc(len + 1);
            if (h->etag) {
                memcpy(h->etag, v, len);
                h->etag[len] = '\0';
            }
        }
    }
    return n;
}

static int method_valid(const char *m)
{
    size_t n = strlen(m);
    if (n == 0 || n > 16)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (m[i] < 'A' || m[i] > 'Z')
            return 0;
    return 1;
}

static int url_valid(const char *url)
{
    if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)
        return 0;
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        if (*p <= 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

static int header_valid(const char *h)
{
    const char *colon = strchr(h, ':');
    if (!colon || colon == h)
        return 0;
    for (const char *p = h; p < colon; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return 0;
    return strpbrk(h, "\r\n") == NULL;
}

static void slist_wipe_free(struct curl_slist *list)
{
    /* Headers carry bearer tokens; curl's copies are ours to wipe before freeing. */
    for (struct curl_slist *p = list; p; p = p->next)
        if (p->data)
            sodium_memzero(p->data, strlen(p->data));
    curl_slist_free_all(list);
}

static const char *connect_reason(long os_errno)
{
    switch (os_errno) {
    case ECONNREFUSED: return "connection refused";
    case ENETUNREACH: return "network unreachable";
    case EHOSTUNREACH: return "no route to host";
    case ECONNRESET: return "connection reset";
    case EADDRNOTAVAIL: return "address not available";
    default: return NULL;
    }
}

/* libcurl calls this before it sends the request on a connection, new or reused: a second call
 * is its re-send on a fresh connection after the kept one died unanswered, which a request
 * kept alive by choice refuses (the first may have reached the server). */
struct send_once {
    int sends;
};

static int on_prereq(void *ctx, char *ip, char *local_ip, int port, int local_port)
{
    (void)ip, (void)local_ip, (void)port, (void)local_port;
    struct send_once *so = ctx;
    return so->sends++ ? CURL_PREREQFUNC_ABORT : CURL_PREREQFUNC_OK;
}

/* The NA closes connections idle for its connection_timeout_s (10 s by default, 1 s at least): a
 * kept POST does not reuse one idle for longer than this (curl counts whole seconds, so up to
 * 2 s), so the usual race (the server closes while the request goes out) does not happen; it
 * remains possible, and then fails clearly. */
#define KEEP_ALIVE_MAX_IDLE_S 1L

/* libcurl calls this at least once a second during a transfer: a non-zero return aborts it. */
static int on_progress(void *cancel, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    return *(const volatile int *)cancel != 0;
}

static int map_curl_error(CURLcode rc, CURL *h, const char *shown, const char *errbuf,
                          const struct body_sink *sink, long timeout_ms, const struct send_once *so, gm_error *err)
{
    if (rc == CURLE_ABORTED_BY_CALLBACK && so->sends > 1)
        return gm_error_set(err, GM_ENET,
                            "request to %s failed: connection closed before a complete response (a kept-alive "
                            "connection; the request was not re-sent: it may have reached the server, and a "
                            "one-time nonce would be refused as a replay): check its effect, or make it anew",
                            shown);
    const char *detail = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    long os_errno = 0;
    const char *reason;

    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        return gm_error_set(err, GM_ETIMEOUT, "no answer from %s within %ld ms", shown, timeout_ms);
    case CURLE_FILESIZE_EXCEEDED:
        return gm_error_set(err, GM_ETOOBIG, "response from %s is larger than the %zu-byte limit",
                            shown, sink->max);
    case CURLE_WRITE_ERROR:
        if (sink->too_big)
            return gm_error_set(err, GM_ETOOBIG,
                                "response from %s is larger than the %zu-byte limit", shown,
                                sink->max);
        if (sink->oom)
            return gm_error_set(err, GM_ENOMEM, "out of memory reading the response from %s",
                                shown);
        break;
    case CURLE_OUT_OF_MEMORY:
        return gm_error_set(err, GM_ENOMEM, "out of memory talking to %s", shown);
    case CURLE_ABORTED_BY_CALLBACK:
        return gm_error_set(err, GM_ENET, "gave up on %s: cancelled", shown);
    case CURLE_COULDNT_CONNECT:
        curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
        reason = connect_reason(os_errno);
        return gm_error_set(err, GM_ENET, "cannot reach %s: %s", shown,
                            reason ? reason : detail);
    case CURLE_COULDNT_RESOLVE_HOST:
        return gm_error_set(err, GM_ENET, "cannot reach %s: host name not found", shown);
    case CURLE_COULDNT_RESOLVE_PROXY:
        return gm_error_set(err, GM_ENET, "cannot reach %s: proxy host name not found", shown);
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return gm_error_set(err, GM_EINVAL, "bad URL %s: %s", shown, detail);
    case CURLE_PEER_FAILED_VERIFICATION:
        return gm_error_set(err, GM_ENET,
                            "cannot reach %s: TLS certificate not trusted (%s); give the NA's "
                            "certificate with --na-ca FILE or its key pin with --na-pin sha256//...",
                            shown, detail);
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        return gm_error_set(err, GM_ENET,
                            "cannot reach %s: the server's TLS key does not match the pinned key "
                            "(wrong server, or its key changed)",
                            shown);
    case CURLE_SSL_CACERT_BADFILE:
        return gm_error_set(err, GM_ENET, "cannot reach %s: cannot read the CA file (%s)", shown,
                            detail);
    case CURLE_SSL_CONNECT_ERROR:
        return gm_error_set(err, GM_ENET, "cannot reach %s: TLS handshake failed (%s)", shown,
                            detail);
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        return gm_error_set(err, GM_ENET,
                            "request to %s failed: connection closed before a complete response",
                            shown);
    default:
        break;
    }
    return gm_error_set(err, GM_ENET, "request to %s failed: %s", shown, detail);
}

/* One request to one server; *unsent is set when it failed before reaching the server. */
static int request_one(const gm_http_req *req, gm_http_resp *resp, int *unsent, gm_error *err)
{
    *unsent = 0;
    if (resp)
        memset(resp, 0, sizeof *resp);
    if (!req || !resp || !req->url)
        return gm_error_set(err, GM_EINVAL, "HTTP request needs a URL and a response holder");
    if (req->n_headers && !req->headers)
        return gm_error_set(err, GM_EINVAL, "HTTP request lists headers but gives none");
    if (req->timeout_ms < 0)
        return gm_error_set(err, GM_EINVAL, "HTTP timeout must not be negative");

    char shown[URL_DISPLAY_MAX + 8];
    url_for_display(req->url, shown, sizeof shown);
    if (!url_valid(req->url))
        return gm_error_set(err, GM_EINVAL,
                            "bad URL %s: must start with http:// or https:// and contain no "
                            "spaces or control characters", shown);
    const char *method = req->method ? req->method : (req->body ? "POST" : "GET");
    if (!method_valid(method))
        return gm_error_set(err, GM_EINVAL, "bad HTTP method (expected e.g. GET or POST)");

    long timeout_ms = req->timeout_ms ? req->timeout_ms : GM_HTTP_DEFAULT_TIMEOUT_MS;
    size_t max = req->max_response ? req->max_response : GM_HTTP_DEFAULT_MAX_RESPONSE;

    pthread_once(&g_curl_once, curl_init_once);
    if (g_curl_init_rc != CURLE_OK)
        return gm_error_set(err, GM_EINTERNAL, "cannot initialise libcurl: %s",
                            curl_easy_strerror(g_curl_init_rc));

    struct curl_slist *hdrs = NULL;
    int has_expect = 0;
    for (size_t i = 0; i < req->n_headers; i++) {
        const char *hv = req->headers[i];
        if (!hv || !header_valid(hv)) {
            slist_wipe_free(hdrs);
            return gm_error_set(err, GM_EINVAL,
                                "HTTP header #%zu is not a single \"Name: value\" line", i + 1);
        }
        if (strncasecmp(hv, "Expect:", 7) == 0)
            has_expect = 1;
        struct curl_slist *n = curl_slist_append(hdrs, hv);
        if (!n) {
            slist_wipe_free(hdrs);
            return gm_error_set(err, GM_ENOMEM, "out of memory building HTTP headers");
        }
        hdrs = n;
    }
    /* Without this curl waits for "100 Continue" before sending larger bodies. */
    if (!has_expect) {
        struct curl_slist *n = curl_slist_append(hdrs, "Expect:");
        if (!n) {
            slist_wipe_free(hdrs);
            return gm_error_set(err, GM_ENOMEM, "out of memory building HTTP headers");
        }
        hdrs = n;
    }

    CURL *h = handle_take();
    if (!h) {
        slist_wipe_free(hdrs);
        return gm_error_set(err, GM_ENOMEM, "cannot create a libcurl handle");
    }

    struct body_sink sink = { .max = max };
    struct header_sink hs = { .retry_after_ms = -1 };
    char errbuf[CURL_ERROR_SIZE];
    errbuf[0] = '\0';

    curl_easy_setopt(h, CURLOPT_URL, req->url);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "genesis-mesh");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &hs);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    if (req->cancel) {
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)(uintptr_t)req->cancel);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    }
    struct send_once so = {0};
    int idempotent = (!strcmp(method, "GET") || !strcmp(method, "HEAD")) && !req->body;
    curl_easy_setopt(h, CURLOPT_DNS_CACHE_TIMEOUT, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_SESSIONID_CACHE, 0L);
    if (!idempotent && !req->keep_alive) {
        curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L); /* a connection of its own, closed after */
        curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
    }
    if (!idempotent && req->keep_alive) {
        curl_easy_setopt(h, CURLOPT_PREREQFUNCTION, on_prereq);
        curl_easy_setopt(h, CURLOPT_PREREQDATA, &so);
        curl_easy_setopt(h, CURLOPT_MAXAGE_CONN, KEEP_ALIVE_MAX_IDLE_S);
    }
    trust_entry trust;
    if (trust_find(req->url, &trust)) {
        if (trust.ca_file[0])
            curl_easy_setopt(h, CURLOPT_CAINFO, trust.ca_file);
        if (trust.pin[0]) {
            curl_easy_setopt(h, CURLOPT_PINNEDPUBLICKEY, trust.pin);
            /* The pin is the identity: with no CA file there is no chain or name to check. */
            if (!trust.ca_file[0]) {
                curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
                curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
                curl_easy_setopt(h, CURLOPT_CAINFO, NULL); /* no system CA bundle to load */
                curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
            }
        }
    }

    int sends_body = req->body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
                     strcmp(method, "PATCH") == 0;
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (sends_body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? (const char *)req->body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(req->body ? req->body_len : 0));
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }

    CURLcode rc = curl_easy_perform(h);
    int ret = 0;
    if (rc != CURLE_OK) {
        *unsent = rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY;
        ret = map_curl_error(rc, h, shown, errbuf, &sink, timeout_ms, &so, err);
    } else {
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (!sink.buf) {
            sink.buf = malloc(1);
            if (!sink.buf)
                ret = gm_error_set(err, GM_ENOMEM, "out of memory reading the response from %s",
                                   shown);
            else
                sink.buf[0] = '\0';
        }
        if (ret == 0) {
            resp->status = (int)status;
            resp->body = sink.buf;
            resp->len = sink.len;
            resp->etag = hs.etag;
            resp->retry_after_ms = hs.retry_after_ms;
            sink.buf = NULL;
            hs.etag = NULL;
        }
    }
    handle_give_back(h);
    slist_wipe_free(hdrs);
    if (sink.buf) {
        sodium_memzero(sink.buf, sink.cap);
        free(sink.buf);
    }
    free(hs.etag);
    return ret;
}

/* Several servers of one service (replicas of the NA) given as one URL: their origins joined
 * by commas, the last one followed by the path, "https://na1:8700,https://na2:8700/crl". Returns
 * the number of origins (1 for a plain URL) and where the path starts; 0 when a listed origin
 * carries a path of its own. */
static size_t url_list_split(const char *url, const char *start[GM_HTTP_URL_LIST_MAX],
                             size_t len[GM_HTTP_URL_LIST_MAX], const char **path)
{
    size_t n = 0;
    const char *p = url;
    for (;;) {
        const char *next = strstr(p, ",http://"), *next_s = strstr(p, ",https://");
        if (!next || (next_s && next_s < next))
            next = next_s;
        const char *sep = strstr(p, "://");
        const char *auth_end = sep ? sep + 3 + strcspn(sep + 3, "/?#,") : p + strlen(p);
        if (n == GM_HTTP_URL_LIST_MAX || (next && auth_end != next))
            return 0;
        start[n] = p;
        len[n] = (size_t)(auth_end - p);
        n++;
        if (!next) {
            *path = auth_end;
            return n;
        }
        p = next + 1;
    }
}

int gm_http_request(const gm_http_req *req, gm_http_resp *resp, gm_error *err)
{
    const char *start[GM_HTTP_URL_LIST_MAX], *path = NULL;
    size_t len[GM_HTTP_URL_LIST_MAX], n = req && req->url ? url_list_split(req->url, start, len, &path) : 1;
    int unsent = 0;
    if (n == 1 || !req || !req->url)
        return request_one(req, resp, &unsent, err);
    if (n == 0)
        return gm_error_set(err, GM_EINVAL,
                            "bad URL list: give at most %d servers' origins (scheme://host:port) joined by commas",
                            GM_HTTP_URL_LIST_MAX);
    /* the next server when one cannot be reached, or answers 503 (e.g. a replica without its
     * database); never after a request may have been handled */
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        char url[2048];
        gm_http_req one = *req;
        if (snprintf(url, sizeof url, "%.*s%s", (int)len[i], start[i], path) >= (int)sizeof url)
            return gm_error_set(err, GM_EINVAL, "URL too long");
        one.url = url;
        if (i > 0)
            gm_http_resp_free(resp);
        rc = request_one(&one, resp, &unsent, err);
        if ((rc == 0 && resp->status != 503) || (rc != 0 && !unsent))
            return rc;
    }
    return rc;
}

void gm_http_resp_free(gm_http_resp *resp)
{
    if (!resp)
        return;
    if (resp->body) {
        sodium_memzero(resp->body, resp->len + 1);
        free(resp->body);
    }
    free(resp->etag);
    memset(resp, 0, sizeof *resp);
}

static int request_json(const char *method, const char *url, const char *const *headers,
                        size_t n_headers, const char *body, size_t body_len, long timeout_ms,
                        int *status_out, json_t **json_out, gm_error *err)
{
    if (status_out)
        *status_out = 0;
    if (json_out)
        *json_out = NULL;
    if (!url || !json_out)
        return gm_error_set(err, GM_EINVAL, "JSON request needs a URL and a result holder");
    if (n_headers && !headers)
        return gm_error_set(err, GM_EINVAL, "HTTP request lists headers but gives none");
    if (n_headers > 64)
        return gm_error_set(err, GM_EINVAL, "too many HTTP headers (at most 64)");

    const char *all[66];
    size_t n = 0;
    all[n++] = "Accept: application/json";
    if (body)
        all[n++] = "Content-Type: application/json";
    for (size_t i = 0; i < n_headers; i++)
        all[n++] = headers[i];

    gm_http_req req = {
        .method = method, .url = url, .headers = all, .n_headers = n,
        .body = body, .body_len = body_len, .timeout_ms = timeout_ms,
    };
    gm_http_resp resp;
    int rc = gm_http_request(&req, &resp, err);
    if (rc)
        return rc;
    if (status_out)
        *status_out = resp.status;
    if (resp.len > 0) {
        json_error_t jerr;
        json_t *j = json_loadb(resp.body, resp.len, JSON_REJECT_DUPLICATES, &jerr);
        if (!j) {
            char shown[URL_DISPLAY_MAX + 8];
            url_for_display(url, shown, sizeof shown);
            /* jerr.text can quote the body; only its position goes into the message. */
            rc = gm_error_set(err, GM_EPROTO,
                              "response from %s (HTTP %d) is not valid JSON (line %d, column %d)",
                              shown, resp.status, jerr.line, jerr.column);
        } else {
            *json_out = j;
        }
    }
    gm_http_resp_free(&resp);
    return rc;
}

int gm_http_get_json(const char *url, const char *const *headers, size_t n_headers,
                     long timeout_ms, int *status_out, json_t **json_out, gm_error *err)
{
    return request_json("GET", url, headers, n_headers, NULL, 0, timeout_ms, status_out, json_out,
                        err);
}

int gm_http_post_json(const char *url, const char *const *headers, size_t n_headers,
                      const json_t *body, long timeout_ms, int *status_out, json_t **json_out,
                      gm_error *err)
{
    if (status_out)
        *status_out = 0;
    if (json_out)
        *json_out = NULL;
    if (!body)
        return gm_error_set(err, GM_EINVAL, "JSON POST needs a body");
    char *text = json_dumps(body, JSON_COMPACT);
    if (!text)
        return gm_error_set(err, GM_EINVAL,
                            "JSON POST body must be an object or array of valid UTF-8 strings");
    int rc = request_json("POST", url, headers, n_headers, text, strlen(text), timeout_ms,
                          status_out, json_out, err);
    free(text);
    return rc;
}
