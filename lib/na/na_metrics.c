/* NA metrics in the Prometheus text format: requests by endpoint and status, their latency
 * by endpoint (route pattern, so the label set is bounded by the routing table) and 429s by
 * limit (in memory, since start), gauges read from the store (certificates, CRL sequence,
 * open invites) and the expiry times an operator alerts on (NA key, TLS certificate, CRL). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "gm/crl.h"
#include "gm/util.h"
#include "gm/version.h"
#include "na_internal.h"

/* Status slots: the codes the NA answers with; anything else lands in the last slot. */
static const int known_statuses[NA_METRIC_STATUSES] = {200, 201, 304, 400, 401, 403, 404, 405,
                                                       409, 413, 429, 500, 503, 0,   0,   0};

/* Upper bounds of the latency buckets, seconds (+Inf is the count). */
static const double latency_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define N_BOUNDS (sizeof latency_bounds / sizeof latency_bounds[0])
#define N_BUCKETS (N_BOUNDS + 1)

static int slot_of(int status)
{
    for (int i = 0; i < NA_METRIC_STATUSES - 1; i++)
        if (known_statuses[i] == status)
            return i;
    return NA_METRIC_STATUSES - 1;
}

int na_metrics_init(na_metrics *m)
{
    memset(m, 0, sizeof *m);
    m->requests = calloc((na_n_routes + 1) * NA_METRIC_STATUSES, sizeof *m->requests);
    m->latency = calloc((na_n_routes + 1) * N_BUCKETS, sizeof *m->latency);
    m->latency_sum = calloc(na_n_routes + 1, sizeof *m->latency_sum);
    if (!m->requests || !m->latency || !m->latency_sum) {
        free(m->requests);
        free(m->latency);
        free(m->latency_sum);
        m->requests = NULL;
        return -1;
    }
    pthread_mutex_init(&m->lock, NULL);
    return 0;
}

void na_metrics_free(na_metrics *m)
{
    if (!m->requests)
        return;
    free(m->requests);
    free(m->latency);
    free(m->latency_sum);
    m->requests = NULL;
    pthread_mutex_destroy(&m->lock);
}

void na_metrics_count(na_metrics *m, int route, int status, double seconds)
{
    size_t row = route < 0 ? na_n_routes : (size_t)route, b = 0;
    while (b < N_BOUNDS && seconds > latency_bounds[b])
        b++;
    pthread_mutex_lock(&m->lock);
    m->requests[row * NA_METRIC_STATUSES + (size_t)slot_of(status)]++;
    m->latency[row * N_BUCKETS + b]++;
    m->latency_sum[row] += seconds;
    pthread_mutex_unlock(&m->lock);
}

/* The latency histogram of every endpoint that answered at least once (caller holds the lock). */
static void print_latency(gm_buf *b, const na_metrics *m)
{
    gm_buf_printf(b, "# HELP gm_na_request_duration_seconds Time from a request's arrival to its answer, by "
                     "endpoint.\n# TYPE gm_na_request_duration_seconds histogram\n");
    for (size_t row = 0; row <= na_n_routes; row++) {
        const uint64_t *h = &m->latency[row * N_BUCKETS];
        uint64_t cum = 0;
        for (size_t i = 0; i < N_BUCKETS; i++)
            cum += h[i];
        if (!cum)
            continue;
        const char *method = row < na_n_routes ? na_routes[row].method : "any";
        const char *path = row < na_n_routes ? na_routes[row].path : "other";
        uint64_t total = cum;
        cum = 0;
        for (size_t i = 0; i < N_BOUNDS; i++) {
            cum += h[i];
            gm_buf_printf(b, "gm_na_request_duration_seconds_bucket{method=\"%s\",endpoint=\"%s\",le=\"%g\"} %llu\n",
                          method, path, latency_bounds[i], (unsigned long long)cum);
        }
        gm_buf_printf(b, "gm_na_request_duration_seconds_bucket{method=\"%s\",endpoint=\"%s\",le=\"+Inf\"} %llu\n"
                         "gm_na_request_duration_seconds_sum{method=\"%s\",endpoint=\"%s\"} %.6f\n"
                         "gm_na_request_duration_seconds_count{method=\"%s\",endpoint=\"%s\"} %llu\n",
                      method, path, (unsigned long long)total, method, path, m->latency_sum[row], method, path,
                      (unsigned long long)total);
    }
}

void na_metrics_add(na_metrics *m, uint64_t *counter, uint64_t n)
{
    pthread_mutex_lock(&m->lock);
    *counter += n;
    pthread_mutex_unlock(&m->lock);
}

int na_handle_metrics(na_req *r)
{
    gm_na_t *na = r->na;
    na_metrics *m = &na->metrics;
    gm_buf b = {0};
    int64_t certs = -1, open_invites = -1;
    gm_store_cert_count(na->store, &certs, NULL);
    gm_store_invites_outstanding(na->store, r->now.unix_s, &open_invites, NULL);
    char etag[80];
    uint64_t seq = 0;
    free(na_crl_cache_get(na, &seq, etag));

    gm_buf_printf(&b, "# HELP gm_na_requests_total HTTP requests handled, by endpoint and status.\n"
                  "# TYPE gm_na_requests_total counter\n");
    pthread_mutex_lock(&m->lock);
    for (size_t row = 0; row <= na_n_routes; row++) {
        for (int s = 0; s < NA_METRIC_STATUSES; s++) {
            uint64_t n = m->requests[row * NA_METRIC_STATUSES + (size_t)s];
            if (!n)
                continue;
            const char *method = row < na_n_routes ? na_routes[row].method : "any";
            const char *path = row < na_n_routes ? na_routes[row].path : "other";
            if (s == NA_METRIC_STATUSES - 1)
                gm_buf_printf(&b, "gm_na_requests_total{method=\"%s\",endpoint=\"%s\",status=\"other\"} %llu\n",
                          method, path, (unsigned long long)n);
            else
                gm_buf_printf(&b, "gm_na_requests_total{method=\"%s\",endpoint=\"%s\",status=\"%d\"} %llu\n", method,
                          path, known_statuses[s], (unsigned long long)n);
        }
    }
    print_latency(&b, m);
    uint64_t joins = m->joins, renewals = m->renewals, revocations = m->revocations, invites = m->invites;
    uint64_t limited_req = m->rate_limited[NA_RL_REQUESTS], limited_auth = m->rate_limited[NA_RL_AUTH_FAILURES];
    uint64_t limited_reads = m->rate_limited[NA_RL_READS];
    pthread_mutex_unlock(&m->lock);
    size_t tracked = na_ratelimit_tracked(&na->ratelimit);
    gm_buf_printf(&b,
              "# HELP gm_na_joins_total Certificates issued by POST /join since start.\n"
              "# TYPE gm_na_joins_total counter\ngm_na_joins_total %llu\n"
              "# HELP gm_na_renewals_total Certificates issued by POST /renew since start.\n"
              "# TYPE gm_na_renewals_total counter\ngm_na_renewals_total %llu\n"
              "# HELP gm_na_revocations_total Certificates revoked since start.\n"
              "# TYPE gm_na_revocations_total counter\ngm_na_revocations_total %llu\n"
              "# HELP gm_na_invites_created_total Invites created since start.\n"
              "# TYPE gm_na_invites_created_total counter\ngm_na_invites_created_total %llu\n"
              "# HELP gm_na_rate_limited_total Requests refused with 429, by limit: requests (per-address "
              "bucket of the unauthenticated endpoints), reads (GET /agents) or admin_auth_failures.\n"
              "# TYPE gm_na_rate_limited_total counter\n"
              "gm_na_rate_limited_total{limit=\"requests\"} %llu\n"
              "gm_na_rate_limited_total{limit=\"reads\"} %llu\n"
              "gm_na_rate_limited_total{limit=\"admin_auth_failures\"} %llu\n"
              "# HELP gm_na_rate_limit_addresses Client addresses the rate limiter remembers now.\n"
              "# TYPE gm_na_rate_limit_addresses gauge\ngm_na_rate_limit_addresses %zu\n"
              "# HELP gm_na_crl_sequence Sequence of the current CRL.\n"
              "# TYPE gm_na_crl_sequence gauge\ngm_na_crl_sequence %llu\n"
              "# HELP gm_na_invites_outstanding Unused, unexpired invites.\n"
              "# TYPE gm_na_invites_outstanding gauge\ngm_na_invites_outstanding %lld\n"
              "# HELP gm_na_certificates Certificates in the store (all states).\n"
              "# TYPE gm_na_certificates gauge\ngm_na_certificates %lld\n",
              (unsigned long long)joins, (unsigned long long)renewals, (unsigned long long)revocations,
              (unsigned long long)invites, (unsigned long long)limited_req, (unsigned long long)limited_reads,
              (unsigned long long)limited_auth, tracked, (unsigned long long)seq, (long long)open_invites, (long long)certs);
    pthread_mutex_lock(&na->crl_lock);
    int64_t crl_next = na->crl_next_update;
    pthread_mutex_unlock(&na->crl_lock);
    gm_buf_printf(&b,
                  "# HELP gm_na_key_expiry_timestamp_seconds End of the NA key's validity in the genesis block "
                  "(unix time); the NA signs nothing after it.\n"
                  "# TYPE gm_na_key_expiry_timestamp_seconds gauge\ngm_na_key_expiry_timestamp_seconds %lld\n"
                  "# HELP gm_na_key_valid_from_timestamp_seconds Start of the NA key's validity in the genesis block "
                  "(unix time).\n"
                  "# TYPE gm_na_key_valid_from_timestamp_seconds gauge\ngm_na_key_valid_from_timestamp_seconds %lld\n"
                  "# HELP gm_na_crl_next_update_timestamp_seconds next_update of the CRL served now (unix time).\n"
                  "# TYPE gm_na_crl_next_update_timestamp_seconds gauge\ngm_na_crl_next_update_timestamp_seconds %lld\n",
                  (long long)na->genesis.na_valid_to.unix_s, (long long)na->genesis.na_valid_from.unix_s,
                  (long long)crl_next);
    if (na->tls_not_after)
        gm_buf_printf(&b,
                      "# HELP gm_na_tls_cert_expiry_timestamp_seconds End of the TLS certificate's validity (unix "
                      "time).\n# TYPE gm_na_tls_cert_expiry_timestamp_seconds gauge\n"
                      "gm_na_tls_cert_expiry_timestamp_seconds %lld\n",
                      (long long)na->tls_not_after);
    gm_buf_printf(&b, "# HELP genesis_mesh_build_info The version of this build.\n"
                  "# TYPE genesis_mesh_build_info gauge\ngenesis_mesh_build_info{version=\"%s\"} 1\n", gm_version());
    /* Lets a test wait until the NA really holds the connections it opened (no sleeps). */
    const union MHD_DaemonInfo *ci = na->daemon ? MHD_get_daemon_info(na->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS) : NULL;
    pthread_mutex_lock(&m->lock);
    uint64_t accepted = m->connections;
    pthread_mutex_unlock(&m->lock);
    gm_buf_printf(&b, "# HELP gm_na_connections Client connections open now (this one included).\n"
                      "# TYPE gm_na_connections gauge\ngm_na_connections %u\n"
                      "# HELP gm_na_connections_accepted_total Client connections accepted since start (per request "
                      "when clients do not keep them alive).\n"
                      "# TYPE gm_na_connections_accepted_total counter\ngm_na_connections_accepted_total %llu\n",
                  ci ? ci->num_connections : 0u, (unsigned long long)accepted);
    gm_store_counters sc;
    gm_store_stats(na->store, &sc);
    gm_buf_printf(&b, "# HELP gm_na_crl_watchers CRL watches (GET /crl?after=N&wait=S) held open now.\n"
                      "# TYPE gm_na_crl_watchers gauge\ngm_na_crl_watchers %u\n"
                      "# HELP gm_na_store_commits_total Database transactions committed since start.\n"
                      "# TYPE gm_na_store_commits_total counter\ngm_na_store_commits_total %llu\n"
                      "# HELP gm_na_store_syncs_total Disk syncs that made them durable (group commit: one sync "
                      "covers every commit queued while the previous one ran).\n"
                      "# TYPE gm_na_store_syncs_total counter\ngm_na_store_syncs_total %llu\n"
                      "# HELP gm_na_store_sync_seconds_total Time spent in those syncs (SQLite group commit; divided "
                      "by gm_na_store_syncs_total: the disk's latency for one batch).\n"
                      "# TYPE gm_na_store_sync_seconds_total counter\ngm_na_store_sync_seconds_total %.6f\n"
                      "# HELP gm_na_store_wal_bytes_total Bytes appended to SQLite's write-ahead log (what the "
                      "syncs write).\n"
                      "# TYPE gm_na_store_wal_bytes_total counter\ngm_na_store_wal_bytes_total %llu\n"
                      "# HELP gm_na_store_checkpoints_total Write-ahead log checkpoints (SQLite: by the store's "
                      "checkpointer thread each 1000 pages of log, beside the commits).\n"
                      "# TYPE gm_na_store_checkpoints_total counter\ngm_na_store_checkpoints_total %llu\n"
                      "# HELP gm_na_store_checkpoint_seconds_total Time spent in them.\n"
                      "# TYPE gm_na_store_checkpoint_seconds_total counter\ngm_na_store_checkpoint_seconds_total %.6f\n"
                      "# HELP gm_na_store_checkpoints_inline_total Of those, run inside a commit (the log reached "
                      "%d pages, or there is no checkpointer thread).\n"
                      "# TYPE gm_na_store_checkpoints_inline_total counter\ngm_na_store_checkpoints_inline_total %llu\n"
                      "# HELP gm_na_store_checkpoint_inline_seconds_total Time spent in them: no other request "
                      "reaches the database meanwhile.\n"
                      "# TYPE gm_na_store_checkpoint_inline_seconds_total counter\n"
                      "gm_na_store_checkpoint_inline_seconds_total %.6f\n",
                  na_server_crl_watchers(na), (unsigned long long)sc.commits, (unsigned long long)sc.syncs,
                  (double)sc.sync_ns / 1e9, (unsigned long long)sc.wal_bytes, (unsigned long long)sc.checkpoints,
                  (double)sc.checkpoint_ns / 1e9, GM_STORE_WAL_BOUND_PAGES, (unsigned long long)sc.checkpoints_inline,
                  (double)sc.checkpoint_inline_ns / 1e9);
    pthread_mutex_lock(&m->lock);
    uint64_t crl_refused = m->crl_refused;
    pthread_mutex_unlock(&m->lock);
    gm_buf_printf(&b,
                  "# HELP gm_na_crl_refused_total CRLs not published because they would be larger than the %d bytes "
                  "every node accepts (the revocation or renewal failed instead).\n"
                  "# TYPE gm_na_crl_refused_total counter\ngm_na_crl_refused_total %llu\n",
                  GM_CRL_MAX_BYTES, (unsigned long long)crl_refused);
    if (b.oom) {
        gm_buf_free(&b);
        return na_reply_error(r, 500, "internal_error", "out of memory building metrics");
    }
    int st = na_reply_text(r, 200, "text/plain; version=0.0.4", b.p, b.len);
    gm_buf_free(&b);
    return st;
}
