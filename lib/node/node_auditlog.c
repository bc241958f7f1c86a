/* Watching the NA's issuance log (lib/na/na_issuance.c): every GM_LOG_CHECK_EVERY_POLLS CRL
 * polls the node fetches the NA's signed checkpoint on the thread pool and checks that it
 * extends the one it holds (the same root at the same size, or a consistency proof that
 * verifies). A checkpoint that does is kept in D/log-checkpoint.json (atomic write), so the
 * history a node has seen survives restarts; one that does not is a fork (the NA showed this
 * node two different histories, or its database was changed): logged as an error each time,
 * counted in log_forks, and the held checkpoint is kept, never replaced by the forked one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gm/na_client.h"
#include "merkle_internal.h"
#include "gm/util.h"
#include "node_internal.h"

#define LOG_HTTP_TIMEOUT_MS 5000
#define LOG_DEFAULT_EVERY_MS 30000

typedef struct log_job {
    uv_work_t req;
    gm_node *node;
    char url[512];
    int has_held;
    gm_checkpoint held;  /* a copy for the worker */
    gm_checkpoint now;
    uint8_t na_pks[3][GM_PK_LEN]; /* the NA keys trusted when the job started (a rotation) */
    size_t n_pks;
    char network_name[256];
    int rc;
    gm_error err;
} log_job;

static long check_every(gm_node *n)
{
    if (n->cfg.crl_poll_ms < 0)
        return -1; /* the node does not talk to the NA on its own */
    long every = (n->cfg.crl_poll_ms == 0 ? 2000 : n->cfg.crl_poll_ms) * 15;
    return every > LOG_DEFAULT_EVERY_MS ? LOG_DEFAULT_EVERY_MS : every;
}

static int copy_checkpoint(const gm_checkpoint *src, gm_checkpoint *dst)
{
    *dst = *src;
    dst->doc = json_deep_copy(src->doc);
    return dst->doc ? 0 : GM_ENOMEM;
}

void node_auditlog_load(gm_node *n)
{
    char path[4200];
    gm_error err = {0};
    if (gm_path_join(path, sizeof path, n->dir, "log-checkpoint.json", NULL) != 0)
        return;
    int rc = gm_checkpoint_load(path, &n->auditlog.held, &err);
    if (rc == GM_ENOTFOUND)
        return;
    /* This node accepted it: any NA key of the blocks it holds, in its window now or not. */
    if (rc == 0) {
        const gm_genesis *gs[3] = {&n->genesis, n->have_genesis_prev ? &n->genesis_prev : NULL,
                                   n->have_genesis_next ? &n->genesis_next : NULL};
        rc = GM_ESIG;
        for (size_t i = 0; i < 3 && rc != 0; i++)
            if (gs[i])
                rc = gm_checkpoint_verify(&n->auditlog.held, gs[i]->na_pk, n->genesis.network_name, &err);
        if (rc != 0)
            gm_checkpoint_free(&n->auditlog.held);
    }
    if (rc != 0) {
        node_log(n, GM_LOG_WARN, "log_checkpoint_unusable", json_pack("{s:s}", "error", err.msg));
        return;
    }
    n->auditlog.have_held = 1;
}

static void check_work(uv_work_t *req)
{
    log_job *j = req->data;
    gm_node *n = j->node;
    j->rc = gm_na_log_checkpoint_any(j->url, &n->key, (const uint8_t(*)[GM_PK_LEN])j->na_pks, j->n_pks,
                                     j->network_name, LOG_HTTP_TIMEOUT_MS, &j->now, &j->err);
    if (j->rc == 0 && j->has_held) {
        j->rc = gm_na_log_check_extends(j->url, &n->key, &j->held, &j->now, LOG_HTTP_TIMEOUT_MS, &j->err);
        if (j->rc == GM_ESIG)
            j->rc = GM_ECONFLICT; /* a fork, told apart from a failed fetch */
    }
}

static void keep(gm_node *n, gm_checkpoint *now)
{
    char path[4200];
    gm_error err = {0};
    char *text = gm_checkpoint_dump(now, 1);
    if (!text || gm_path_join(path, sizeof path, n->dir, "log-checkpoint.json", &err) != 0 ||
        gm_file_write_atomic(path, text, strlen(text), 0600, &err) != 0) {
        node_log(n, GM_LOG_WARN, "log_checkpoint_not_saved", json_pack("{s:s}", "error", text ? err.msg : "out of memory"));
    }
    free(text);
    if (n->auditlog.have_held)
        gm_checkpoint_free(&n->auditlog.held);
    n->auditlog.held = *now;
    n->auditlog.have_held = 1;
    memset(now, 0, sizeof *now);
}

static void check_done(uv_work_t *req, int status)
{
    log_job *j = req->data;
    gm_node *n = j->node;
    n->pending_work--;
    n->auditlog.busy = 0;
    if (!n->stopping && status == 0) {
        if (j->rc == GM_ECONFLICT) {
            n->m.log_forks++;
            n->auditlog.forked = 1;
            node_log(n, GM_LOG_ERROR, "log_fork",
                     json_pack("{s:s,s:I,s:I}", "error", j->err.msg, "held_size", (json_int_t)j->held.tree_size,
                               "served_size", (json_int_t)j->now.tree_size));
        } else if (j->rc != 0) {
            node_log(n, GM_LOG_DEBUG, "log_check_failed", json_pack("{s:s}", "error", j->err.msg));
        } else if (!n->auditlog.have_held || j->now.tree_size > n->auditlog.held.tree_size ||
                   (j->now.tree_size == n->auditlog.held.tree_size && !json_equal(j->now.doc, n->auditlog.held.doc))) {
            /* the same tree signed again (an NA restart, a new NA key) replaces the held one too,
             * so the checkpoint kept stays verifiable after the old NA key is gone */
            uint64_t size = j->now.tree_size;
            keep(n, &j->now);
            n->m.log_checkpoint_size = size;
            node_log(n, GM_LOG_DEBUG, "log_checkpoint", json_pack("{s:I}", "tree_size", (json_int_t)size));
        }
    }
    if (j->has_held)
        gm_checkpoint_free(&j->held);
    gm_checkpoint_free(&j->now);
    free(j);
}

void node_auditlog_tick(gm_node *n, uint64_t now)
{
    long every = check_every(n);
    if (every < 0 || !n->na_url[0] || n->auditlog.busy || n->stopping || now < n->auditlog.next_ms)
        return;
    n->auditlog.next_ms = now + (uint64_t)every;
    log_job *j = calloc(1, sizeof *j);
    if (!j)
        return;
    j->node = n;
    j->req.data = j;
    snprintf(j->url, sizeof j->url, "%s", n->na_url);
    snprintf(j->network_name, sizeof j->network_name, "%s", n->genesis.network_name);
    const gm_genesis *gs[3];
    j->n_pks = node_genesis_trusted(n, gm_time_now(), gs);
    for (size_t i = 0; i < j->n_pks; i++)
        memcpy(j->na_pks[i], gs[i]->na_pk, GM_PK_LEN);
    if (n->auditlog.have_held && copy_checkpoint(&n->auditlog.held, &j->held) == 0)
        j->has_held = 1;
    if (uv_queue_work(n->loop, &j->req, check_work, check_done) != 0) {
        if (j->has_held)
            gm_checkpoint_free(&j->held);
        free(j);
        return;
    }
    n->auditlog.busy = 1;
    n->pending_work++;
}

void node_auditlog_free(gm_node *n)
{
    if (n->auditlog.have_held)
        gm_checkpoint_free(&n->auditlog.held);
    n->auditlog.have_held = 0;
}
