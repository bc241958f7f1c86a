/* Counters of the node runtime, as a JSON object {name: number} for `status` and as
 * Prometheus text for `{"op":"metrics"}` and the --metrics-listen endpoint. JSON names are the
 * Prometheus names without the "gm_node_" prefix and "_total" suffix (except where the
 * Prometheus name carries a unit: bytes_in is gm_node_received_bytes_total); labelled series
 * become name_label. Every Prometheus series has # HELP and # TYPE. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gm/version.h"
#include "node_internal.h"

typedef struct metric_def {
    const char *name;
    const char *help;
    size_t off;
    int gauge;
    const char *prom; /* the Prometheus name when it is not gm_node_<name>_total */
} metric_def;

#define C(field, help) {#field, help, offsetof(node_metrics, field), 0, NULL}
#define CN(name, field, help) {name, help, offsetof(node_metrics, field), 0, NULL}
static const metric_def defs[] = {
    C(handshakes_ok, "peer handshakes completed and trusted"),
    C(handshakes_failed, "peer handshakes that failed (Noise error, timeout, bad frame)"),
    C(connections_refused_limit, "inbound connections refused by a bound"),
    C(connections_evicted, "half-open inbound connections closed to make room for a new one"),
    C(handshakes_rejected, "our handshakes the peer refused (CLOSE before the link was up)"),
    C(links_dropped_sendq, "links dropped because the peer did not read"),
    C(links_dropped_ping, "links dropped after 3 missed heartbeats"),
    C(links_dropped_decrypt, "links dropped because a transport message did not decrypt"),
    C(links_paused, "times a link stopped being read while its DATA waited for a congested next hop"),
    C(api_paused, "times a local API client stopped being read while its send waited for a congested link"),
    C(api_overflow, "subscribers disconnected after an overflow line because they did not read"),
    C(api_held, "times DATA for this node waited (its link not read) for a local subscriber that was behind"),
    C(api_send_failed, "local API sends refused and reported to their sender (no route, too big, ...)"),
    C(api_frames_in, "binary send frames received on the local API"),
    C(api_accepted, "local API connections accepted"),
    C(api_subscribes, "local API subscriptions (a requester's parked connection subscribing again counts)"),
    C(api_unsubscribes, "local API unsubscriptions (a requester parking its connection between calls)"),
    C(api_frames_out, "binary message frames written on the local API"),
    C(api_writes, "writes to local-API clients (what a frames client gets in one event-loop iteration is written together)"),
    C(api_writes_queued, "writes to local-API clients that their socket did not take at once (queued in the node until it has room)"),
    C(agents_unavailable, "capability requests answered unavailable at once: no agent serves them here any more"),
    C(links_duplicate, "second links to an already connected peer"),
    {"bytes_in", "bytes received on peer links", offsetof(node_metrics, bytes_in), 0, "gm_node_received_bytes_total"},
    {"bytes_out", "bytes sent on peer links", offsetof(node_metrics, bytes_out), 0, "gm_node_sent_bytes_total"},
    C(frames_in, "frames received on peer links"),
    C(frames_out, "frames sent on peer links"),
    C(link_writes, "writes on peer links (the frames of one event-loop iteration are written together)"),
    C(data_forwarded, "DATA messages relayed for others"),
    C(data_delivered, "DATA messages addressed to this node"),
    C(data_drop_ttl, "DATA dropped: hop limit reached"),
    C(data_drop_no_route, "DATA dropped: no route"),
    C(data_drop_revoked, "DATA dropped: revoked source or destination"),
    C(data_drop_congested, "DATA dropped: next hop congested for longer than a relay holds"),
    C(e2e_sent, "end-to-end messages sent"),
    C(e2e_received, "end-to-end messages received"),
    C(e2e_handshakes_ok, "end-to-end sessions established"),
    C(e2e_drop_auth, "end-to-end messages dropped: authentication failed"),
    C(e2e_drop_replay, "end-to-end messages dropped: replayed"),
    C(e2e_drop_unknown_session, "end-to-end messages dropped: unknown session"),
    C(e2e_drop_handshake, "end-to-end handshake messages dropped"),
    C(e2e_drop_queue, "end-to-end messages dropped while waiting for a session"),
    C(crl_updates, "newer CRLs accepted"),
    C(crl_refused, "CRLs refused (bad signature or malformed)"),
    C(policy_updates, "newer access policies accepted"),
    C(policy_refused, "access policies refused (bad signature or malformed)"),
    CN("policy_denied_capability", policy_denied[GM_POLICY_CAPABILITY], "capability requests refused by the access policy"),
    CN("policy_denied_port", policy_denied[GM_POLICY_PORT], "data messages refused by the access policy (port)"),
    CN("policy_denied_peer", policy_denied[GM_POLICY_PEER], "links refused or closed by the access policy"),
    CN("policy_denied_relay", policy_denied[GM_POLICY_RELAY], "DATA not relayed because the access policy forbids it"),
    C(routes_refused_no_cert, "route entries refused: destination certificate unknown or invalid"),
    C(routes_refused_origin, "route entries refused: route origin missing, stale, forged or claiming a false adjacency"),
    C(route_origins_forged, "route origins whose signature did not verify (the link is closed)"),
    C(route_origins_verified, "route origin signatures verified"),
    C(route_origin_cache_hits, "route origins found already verified in the cache"),
    C(routes_suspected, "paths avoided because end-to-end traffic stopped arriving through them"),
    C(e2e_path_failures, "end-to-end handshakes or probes that went unanswered"),
    C(certs_refused, "relayed certificates refused"),
    C(certs_refused_limit, "valid certificates refused by a store limit (per key, per peer, full)"),
    C(certs_evicted, "stored certificates dropped to make room (superseded or unused)"),
    C(revoked_links_closed, "links closed because the peer was revoked"),
    C(log_forks, "issuance log checkpoints that did not extend the one held (a fork)"),
    {"crl_stale", "1 while the CRL is past its next_update (the NA and gossip stopped delivering)",
     offsetof(node_metrics, crl_stale), 1, "gm_node_crl_stale"},
    C(crl_stale_refused, "new links refused because our CRL is stale (--crl-stale refuse)"),
    C(renewals_ok, "certificate renewals"),
    C(renewals_failed, "failed renewal attempts"),
};
#undef C
#undef CN

static uint64_t val(gm_node *n, const metric_def *d)
{
    return *(const uint64_t *)((const char *)&n->m + d->off);
}

json_t *node_metrics_json(gm_node *n)
{
    json_t *o = json_object();
    for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++)
        json_object_set_new(o, defs[i].name, json_integer((json_int_t)val(n, &defs[i])));
    uint64_t refused = 0;
    for (int r = 1; r < GM_TRUST_N; r++) {
        char name[64];
        snprintf(name, sizeof name, "handshake_refused_%s", gm_trust_reason_name((gm_trust_reason)r));
        json_object_set_new(o, name, json_integer((json_int_t)n->m.handshake_refused[r]));
        refused += n->m.handshake_refused[r];
    }
    json_object_set_new(o, "handshake_refused", json_integer((json_int_t)refused));
    size_t peers = 0;
    for (node_link *l = n->links; l; l = l->next)
        peers += l->state == LINK_UP;
    json_object_set_new(o, "peers", json_integer((json_int_t)peers));
    json_object_set_new(o, "links", json_integer(n->net.n_links));
    json_object_set_new(o, "routes", json_integer((json_int_t)node_routing_count(n)));
    json_object_set_new(o, "crl_sequence", json_integer(n->have_crl ? (json_int_t)n->crl.sequence : -1));
    json_object_set_new(o, "policy_sequence", json_integer(n->have_policy ? (json_int_t)n->policy.sequence : -1));
    return o;
}

static int append(char **buf, size_t *len, size_t *cap, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int k = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
        va_end(ap);
        if (k < 0)
            return -1;
        if ((size_t)k < *cap - *len) {
            *len += (size_t)k;
            return 0;
        }
        char *p = realloc(*buf, *cap * 2 + (size_t)k);
        if (!p)
            return -1;
        *buf = p;
        *cap = *cap * 2 + (size_t)k;
    }
}

/* One gauge with its HELP and TYPE. */
static void gauge(char **b, size_t *len, size_t *cap, const char *name, const char *help, long long v)
{
    append(b, len, cap, "# HELP %s %s\n# TYPE %s gauge\n%s %lld\n", name, help, name, name, v);
}

char *node_metrics_prometheus(gm_node *n)
{
    size_t len = 0, cap = 8192;
    char *b = malloc(cap);
    if (!b)
        return NULL;
    b[0] = 0;
    for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++) {
        const metric_def *d = &defs[i];
        char name[96];
        if (d->prom)
            snprintf(name, sizeof name, "%s", d->prom);
        else
            snprintf(name, sizeof name, "gm_node_%s%s", d->name, d->gauge ? "" : "_total");
        append(&b, &len, &cap, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, d->help, name,
               d->gauge ? "gauge" : "counter", name, (unsigned long long)val(n, d));
    }
    append(&b, &len, &cap, "# HELP gm_node_handshake_refused_total peer handshakes refused by the trust check\n"
                           "# TYPE gm_node_handshake_refused_total counter\n");
    for (int r = 1; r < GM_TRUST_N; r++)
        append(&b, &len, &cap, "gm_node_handshake_refused_total{reason=\"%s\"} %llu\n",
               gm_trust_reason_name((gm_trust_reason)r), (unsigned long long)n->m.handshake_refused[r]);
    size_t peers = 0;
    for (node_link *l = n->links; l; l = l->next)
        peers += l->state == LINK_UP;
    gauge(&b, &len, &cap, "gm_node_peers", "peer links up (handshake done, certificate trusted)", (long long)peers);
    gauge(&b, &len, &cap, "gm_node_links", "peer connections open, in any state", n->net.n_links);
    gauge(&b, &len, &cap, "gm_node_routes", "destinations in the routing table", (long long)node_routing_count(n));
    gauge(&b, &len, &cap, "gm_node_crl_sequence", "sequence of the CRL in force (-1: none yet)",
          n->have_crl ? (long long)n->crl.sequence : -1LL);
    gauge(&b, &len, &cap, "gm_node_crl_next_update_timestamp_seconds",
          "next_update of the CRL in force, unix time (0: none yet)",
          n->have_crl ? (long long)n->crl.next_update.unix_s : 0LL);
    gauge(&b, &len, &cap, "gm_node_policy_sequence", "sequence of the access policy in force (-1: none yet)",
          n->have_policy ? (long long)n->policy.sequence : -1LL);
    gauge(&b, &len, &cap, "gm_node_cert_expiry_timestamp_seconds",
          "end of this node's certificate validity, unix time (renewed at two thirds of its lifetime)",
          (long long)n->cert.expires_at.unix_s);
    gauge(&b, &len, &cap, "gm_node_na_key_expiry_timestamp_seconds",
          "end of the NA key's validity in the genesis block, unix time", (long long)n->genesis.na_valid_to.unix_s);
    append(&b, &len, &cap, "# HELP gm_node_capability_requests_total capability requests that reached this node's "
                           "agents, by capability (the first %d seen; the rest as \"other\") and access policy "
                           "result\n# TYPE gm_node_capability_requests_total counter\n",
           NODE_CAP_COUNTED);
    for (size_t i = 0; i <= NODE_CAP_COUNTED; i++) {
        const node_cap_count *c = &n->caps[i];
        if (i < NODE_CAP_COUNTED && i >= n->n_caps)
            continue;
        const char *name = i < NODE_CAP_COUNTED ? c->name : "other";
        append(&b, &len, &cap,
               "gm_node_capability_requests_total{capability=\"%s\",result=\"allowed\"} %llu\n"
               "gm_node_capability_requests_total{capability=\"%s\",result=\"denied\"} %llu\n",
               name, (unsigned long long)c->allowed, name, (unsigned long long)c->denied);
    }
    append(&b, &len, &cap, "# HELP genesis_mesh_build_info The version of this build.\n"
                           "# TYPE genesis_mesh_build_info gauge\ngenesis_mesh_build_info{version=\"%s\"} 1\n",
           gm_version());
    return b;
}
