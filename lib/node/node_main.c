/* Node runtime entry point: load the state directory (key, certificate, genesis, CRL,
 * node.json), fetch the NA's current CRL, refuse to run with an invalid or revoked
 * certificate, start the listener, the local API and the dialers, drive everything from one
 * libuv loop with a 100 ms tick (SIGHUP reopens the log and fetches the CRL and policy now), and on SIGTERM/SIGINT (or when a new CRL revokes us) close
 * every session (CLOSE frame), every handle and free it all. */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "gm/http_client.h"
#include "gm/log.h"
#include "gm/util.h"
#include "core_internal.h"
#include "node_internal.h"

#define NODE_STOP_GRACE_MS 2000
#define NODE_JSON_MAX (1u << 20)

uint64_t node_now_ms(gm_node *n)
{
    return uv_now(n->loop);
}

void node_pk_b64(const uint8_t pk[GM_PK_LEN], char out[GM_PK_B64_LEN + 1])
{
    gm_pk_encode(pk, out);
}

uint32_t node_jitter(uint32_t max)
{
    return max ? randombytes_uniform(max) : 0;
}

static void on_handle_closed(uv_handle_t *h)
{
    (void)h;
}

static void stop_with(gm_node *n, uint8_t reason, const char *text)
{
    if (n->stopping)
        return;
    n->stopping = 1;
    n->stop_deadline_ms = node_now_ms(n) + NODE_STOP_GRACE_MS;
    node_log(n, GM_LOG_INFO, "node_stopping", json_pack("{s:s}", "reason", text));
    node_api_shutdown(n);
    node_metrics_http_stop(n);
    node_doc_stop(n);
    node_peer_shutdown(n, reason, text);
}

void node_stop(gm_node *n)
{
    stop_with(n, GM_WIRE_CLOSE_SHUTDOWN, "node stopping");
}

void node_stop_revoked(gm_node *n, const char *reason)
{
    if (n->self_revoked)
        return;
    n->self_revoked = 1;
    node_log(n, GM_LOG_ERROR, "self_revoked",
             json_pack("{s:s,s:s,s:I}", "cert_id", n->cert.cert_id, "reason", reason ? reason : "",
                       "crl_sequence", (json_int_t)n->crl.sequence));
    if (!n->exit_rc) {
        n->exit_rc = GM_EREVOKED;
        snprintf(n->exit_msg, sizeof n->exit_msg, "certificate %s is revoked (%s, CRL sequence %llu): node stopped",
                 n->cert.cert_id, reason ? reason : "unspecified", (unsigned long long)n->crl.sequence);
    }
    stop_with(n, GM_WIRE_CLOSE_REVOKED, "revoked");
}

static void on_signal(uv_signal_t *s, int signum)
{
    gm_node *n = s->data;
    if (n->stopping)
        return;
    node_log(n, GM_LOG_INFO, "signal", json_pack("{s:i}", "signal", signum));
    node_stop(n);
}

/* SIGHUP never stops the node: the log file is reopened (rotation) and the CRL and access
 * policy are fetched from the NA now instead of at the next poll. */
static void on_sighup(uv_signal_t *s, int signum)
{
    gm_node *n = s->data;
    (void)signum;
    int rc = gm_log_reopen();
    if (n->logf) {
        gm_log_file lf = {.f = n->logf, .path = n->cfg.log_file};
        rc |= gm_log_file_reopen(&lf);
    }
    node_doc_poll_soon(n, NODE_DOC_CRL);
    node_doc_poll_soon(n, NODE_DOC_POLICY);
    node_log(n, rc ? GM_LOG_ERROR : GM_LOG_INFO, "reloaded",
             json_pack("{s:s,s:b}", "signal", "SIGHUP", "log_reopened", rc == 0));
}

static void on_tick(uv_timer_t *t)
{
    gm_node *n = t->data;
    uint64_t now = node_now_ms(n);
    node_peer_tick(n, now);
    if (n->stopping) {
        if (n->net.n_links == 0 || now >= n->stop_deadline_ms) {
            node_peer_shutdown(n, GM_WIRE_CLOSE_SHUTDOWN, "node stopping"); /* anything left: hard close on the next pass */
            for (node_link *l = n->links; l; l = l->next)
                if (!l->closing_handle && l->state == LINK_CLOSING)
                    l->deadline_ms = 0;
            node_peer_tick(n, now);
            uv_timer_stop(&n->tick);
            uv_close((uv_handle_t *)&n->tick, on_handle_closed);
            /* Signal watchers stay until here so a second SIGTERM cannot kill a clean stop. */
            uv_close((uv_handle_t *)&n->sigterm, on_handle_closed);
            uv_close((uv_handle_t *)&n->sigint, on_handle_closed);
            uv_close((uv_handle_t *)&n->sighup, on_handle_closed);
        }
        return;
    }
    /* Waiting senders and relays: a held message may have to give up on its next hop. */
    if (node_any_paused(n) || node_e2e_backlog(n, NULL))
        node_peer_retry_paused(n);
    node_routing_tick(n, now);
    node_e2e_tick(n, now);
    node_doc_tick(n, now);
    node_crl_tick(n, now);
    node_renew_tick(n, now);
    node_genesis_tick(n, now);
    node_auditlog_tick(n, now);
    node_heartbeat_tick(n, now);
    node_agents_tick(n, now);
}

/* ---- loading the state directory ---- */

static int load_node_json(gm_node *n, gm_error *err)
{
    char path[4200], *text;
    size_t len;
    int rc;
    if ((rc = gm_path_join(path, sizeof path, n->dir, "node.json", err)) != 0)
        return rc;
    if (!gm_file_exists(path))
        return 0;
    if ((rc = gm_file_read(path, NODE_JSON_MAX, &text, &len, err)) != 0)
        return rc;
    json_error_t je;
    json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    free(text);
    if (!json_is_object(o)) {
        json_decref(o);
        return gm_error_set(err, GM_EFORMAT, "%s is not a JSON object", path);
    }
    const char *url = json_string_value(json_object_get(o, "na_url"));
    if (url && !n->na_url[0])
        snprintf(n->na_url, sizeof n->na_url, "%s", url);
    json_t *peers = json_object_get(o, "peers"), *p;
    size_t i;
    json_array_foreach(peers, i, p) if (json_is_string(p)) node_peer_add_target(n, json_string_value(p));
    json_decref(o);
    return 0;
}

static int load_state(gm_node *n, gm_error *err)
{
    char path[4200], base[4200];
    int rc;
    gm_time now = gm_time_now();
    if ((rc = gm_path_join(base, sizeof base, n->dir, "node", err)) != 0)
        return rc;
    if ((rc = gm_signer_load(&n->key, base, "node", err)) != 0)
        return gm_error_prefix(err, "state directory %s is incomplete (run 'genesis-mesh join --dir %s')", n->dir, n->dir);
    if ((rc = gm_path_join(path, sizeof path, n->dir, "genesis.json", err)) != 0 ||
        (rc = gm_genesis_load(path, &n->genesis, err)) != 0)
        return gm_error_prefix(err, "state directory %s is incomplete", n->dir);
    if ((rc = gm_genesis_verify(&n->genesis, err)) != 0)
        return gm_error_prefix(err, "%s", path);
    if ((rc = node_genesis_load(n, err)) != 0)
        return rc;
    if ((rc = gm_genesis_check_na_window(&n->genesis, now, err)) != 0)
        return rc;
    if ((rc = gm_path_join(path, sizeof path, n->dir, "cert.json", err)) != 0 ||
        (rc = gm_cert_load(path, &n->cert, err)) != 0)
        return gm_error_prefix(err, "state directory %s is incomplete", n->dir);
    if (memcmp(n->cert.node_pk, n->key.pk, GM_PK_LEN) != 0)
        return gm_error_set(err, GM_EAUTH, "%s is for key %s, not this node's key %s", path, n->cert.node_pk_b64,
                            n->key.pk_b64);
    if ((rc = load_node_json(n, err)) != 0)
        return rc;
    /* Strip a trailing slash so "<na>/crl" is well formed. */
    size_t ul = strlen(n->na_url);
    while (ul && n->na_url[ul - 1] == '/')
        n->na_url[--ul] = 0;
    /* The NA's TLS trust that join kept in the directory (CA file or key pin). */
    if (n->na_url[0] && (rc = gm_http_trust_load_dir(n->dir, n->na_url, err)) != 0)
        return rc;
    /* a successor first: the NA's CRL may already be signed by its new key */
    if (!n->cfg.check_only)
        node_doc_fetch_startup(n, NODE_DOC_GENESIS);
    if ((rc = node_crl_load(n, err)) != 0)
        return rc;
    if (!n->cfg.check_only)
        node_crl_fetch_startup(n);
    if ((rc = node_policy_load(n, err)) != 0)
        return rc;
    if (!n->cfg.check_only)
        node_policy_fetch_startup(n);
    node_auditlog_load(n);
    if ((rc = node_cert_verify(n, &n->cert, now, err)) != 0)
        return gm_error_prefix(err, "refusing to run");
    n->cert_json = gm_cert_dump(&n->cert, 0);
    if (!n->cert_json)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    n->cert_json_len = strlen(n->cert_json);
    if ((rc = gm_noise_static_from_ed25519_seed(n->key.sk, n->x_sk, n->x_pk, err)) != 0)
        return rc;
    /* the network's identity, not one genesis version: links survive an NA key rotation */
    memcpy(n->prologue, GM_NODE_PROLOGUE_LABEL, sizeof GM_NODE_PROLOGUE_LABEL - 1);
    gm_genesis_network_id(&n->genesis, n->prologue + sizeof GM_NODE_PROLOGUE_LABEL - 1);
    return 0;
}

static void add_anchor_targets(gm_node *n)
{
    json_t *anchors = json_object_get(n->genesis.doc, "bootstrap_anchors"), *a;
    size_t i;
    json_array_foreach(anchors, i, a)
    {
        const char *ep = json_string_value(json_object_get(a, "endpoint"));
        if (ep)
            node_peer_add_target(n, ep);
    }
}

static int write_small_file(gm_node *n, const char *path, const char *text, gm_error *err)
{
    (void)n;
    return gm_file_write_atomic(path, text, strlen(text), 0644, err);
}

static void walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void node_free(gm_node *n)
{
    node_connect_free(n);
    node_e2e_free(n);
    node_routing_free(n);
    node_cert_free_all(n);
    node_inbox_free(n);
    node_agents_free(n);
    if (n->have_crl)
        gm_crl_free(&n->crl);
    if (n->have_policy)
        gm_policy_free(&n->policy);
    node_auditlog_free(n);
    gm_cert_free(&n->cert);
    gm_genesis_free(&n->genesis);
    node_genesis_free(n);
    free(n->cert_json);
    free(n->bp.read_buf);
    free(n->bp.data_buf);
    gm_signer_wipe(&n->key);
    sodium_memzero(n->x_sk, sizeof n->x_sk);
    if (n->own_logf && n->logf)
        fclose(n->logf);
    free(n->loop);
    free(n);
}

/* node start --check: what start would refuse, found without binding or contacting anything. */
static int check_config(gm_node *n, gm_error *err)
{
    char path[4200];
    struct sockaddr_storage ss;
    int rc;
    if ((rc = gm_file_check_private(n->dir, 1, err)) != 0)
        return rc;
    if ((rc = gm_path_join(path, sizeof path, n->dir, "node.key", err)) != 0 ||
        (rc = gm_file_check_private(path, 0, err)) != 0)
        return rc;
    if ((rc = load_state(n, err)) != 0)
        return rc;
    if ((rc = node_listen_addr(n->cfg.listen ? n->cfg.listen : "127.0.0.1:0", "--listen", &ss, err)) != 0)
        return rc;
    if (n->cfg.metrics_listen && (rc = node_listen_addr(n->cfg.metrics_listen, "--metrics-listen", &ss, err)) != 0)
        return rc;
    for (size_t i = 0; i < n->cfg.n_peers; i++)
        if ((rc = node_hostport_check(n->cfg.peers[i], "--peer", err)) != 0)
            return rc;
    if (n->na_url[0] && strncmp(n->na_url, "https://", 8) != 0 && strncmp(n->na_url, "http://", 7) != 0)
        return gm_error_set(err, GM_EINVAL, "the NA URL '%s' is not http:// or https://", n->na_url);
    return 0;
}

int gm_node_run(const gm_node_config *cfg, gm_error *err)
{
    int rc;
    char path[4200];
    if (gm_init(err) != 0)
        return GM_ECRYPTO;
    if (!cfg->dir)
        return gm_error_set(err, GM_EINVAL, "--dir is required");
    /* Each message passes through buffers of up to 64 KiB freed at the top of the heap: with
     * glibc's default trim threshold every message gave that memory back (brk) and took it
     * again, a TLB flush on every core each time (perf: 45 % of a sender's CPU). */
    mallopt(M_TRIM_THRESHOLD, NODE_MALLOC_TRIM);
    /* Setting the trim threshold also freezes glibc's mmap threshold at 128 KiB: the 256 KiB
     * read buffer of each frames client of the local API (and the link read buffers) would then
     * be an mmap and an munmap each (page faults, a TLB flush on every core), 0.35 ms of the
     * node's CPU for every short-lived connection. They come from the heap instead. */
    mallopt(M_MMAP_THRESHOLD, NODE_MALLOC_MMAP);
    gm_node *n = calloc(1, sizeof *n);
    if (!n)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    n->cfg = *cfg;
    n->log_level = cfg->log_level;
    snprintf(n->dir, sizeof n->dir, "%s", cfg->dir);
    if (cfg->na_url)
        snprintf(n->na_url, sizeof n->na_url, "%s", cfg->na_url);
    if (cfg->log_file) {
        n->logf = fopen(cfg->log_file, "a");
        if (!n->logf) {
            rc = gm_error_set(err, GM_EIO, "cannot open log file %s: %s", cfg->log_file, strerror(errno));
            free(n);
            return rc;
        }
        n->own_logf = 1;
    }
    if (cfg->check_only) {
        rc = check_config(n, err);
        node_free(n);
        return rc;
    }
    n->loop = malloc(sizeof *n->loop);
    if (!n->loop || uv_loop_init(n->loop) != 0) {
        free(n->loop);
        n->loop = NULL;
        node_free(n);
        return gm_error_set(err, GM_EINTERNAL, "cannot start the event loop");
    }
    int loop_ready = 1;
    /* A peer that vanishes must not kill us with SIGPIPE on the next write. */
    signal(SIGPIPE, SIG_IGN);
    if ((rc = load_state(n, err)) != 0)
        goto out;
    if ((rc = node_routing_init(n, err)) != 0 || (rc = node_e2e_init(n, err)) != 0)
        goto out;
    if ((rc = node_peer_listen(n, err)) != 0)
        goto out;
    if ((rc = node_api_start(n, err)) != 0)
        goto out;
    if ((rc = node_metrics_http_start(n, err)) != 0)
        goto out;
    if (cfg->metrics_port_file) {
        char buf[32];
        snprintf(buf, sizeof buf, "%d\n", n->mhttp.port);
        if ((rc = write_small_file(n, cfg->metrics_port_file, buf, err)) != 0)
            goto out;
    }
    if (cfg->port_file) {
        char buf[32];
        snprintf(buf, sizeof buf, "%d\n", n->conn.listen_port);
        if ((rc = write_small_file(n, cfg->port_file, buf, err)) != 0)
            goto out;
    }
    char pid[32];
    snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (gm_path_join(path, sizeof path, n->dir, "node.pid", err) == 0)
        write_small_file(n, path, pid, NULL);
    for (size_t i = 0; i < cfg->n_peers; i++)
        node_peer_add_target(n, cfg->peers[i]);
    add_anchor_targets(n);

    uv_signal_init(n->loop, &n->sigterm);
    uv_signal_init(n->loop, &n->sigint);
    uv_signal_init(n->loop, &n->sighup);
    n->sigterm.data = n->sigint.data = n->sighup.data = n;
    uv_signal_start(&n->sigterm, on_signal, SIGTERM);
    uv_signal_start(&n->sigint, on_signal, SIGINT);
    uv_signal_start(&n->sighup, on_sighup, SIGHUP);
    uv_timer_init(n->loop, &n->tick);
    n->tick.data = n;
    uv_timer_start(&n->tick, on_tick, NODE_TICK_MS, NODE_TICK_MS);
    node_renew_schedule(n);

    char exp[GM_TIME_STRLEN];
    gm_time_format(&n->cert.expires_at, exp);
    node_log(n, GM_LOG_INFO, "node_started",
             json_pack("{s:s,s:s,s:s,s:i,s:s,s:s,s:o,s:s}", "node_public_key", n->key.pk_b64, "network",
                       n->genesis.network_name, "listen", n->conn.listen_addr, "port", n->conn.listen_port, "cert_id",
                       n->cert.cert_id, "expires_at", exp, "crl_sequence",
                       n->have_crl ? json_integer((json_int_t)n->crl.sequence) : json_null(), "na_url", n->na_url));
    uv_run(n->loop, UV_RUN_DEFAULT);
    node_log(n, GM_LOG_INFO, "node_stopped", NULL);
    rc = n->exit_rc ? gm_error_set(err, n->exit_rc, "%s", n->exit_msg) : 0;
    if (gm_path_join(path, sizeof path, n->dir, "node.pid", NULL) == 0)
        unlink(path);
out:
    if (rc != 0 && loop_ready) {
        /* Startup failed after some handles were opened. */
        n->stopping = 1;
        node_api_shutdown(n);
        node_metrics_http_stop(n);
        node_peer_shutdown(n, GM_WIRE_CLOSE_SHUTDOWN, "node stopping");
    }
    if (loop_ready) {
        if (uv_loop_close(n->loop) == UV_EBUSY) {
            uv_walk(n->loop, walk_close, NULL);
            uv_run(n->loop, UV_RUN_DEFAULT);
            uv_loop_close(n->loop);
        }
    }
    node_free(n);
    return rc;
}
