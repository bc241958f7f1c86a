/* Certificate renewal: at two thirds of the certificate's lifetime the node POSTs a signed
 * /renew to the NA (on the thread pool), checks the answer like any peer certificate,
 * writes D/cert.json atomically and announces the new certificate to the mesh.
 * Heartbeats: at start and then every heartbeat interval the node POSTs a signed /heartbeat
 * (the NA's "last seen" of the certificate, shown by admin nodes), the same way. */
#include <stdlib.h>
#include <string.h>

#include "gm/http_client.h"
#include "gm/reqsig.h"
#include "gm/util.h"
#include "node_internal.h"

#define RENEW_HTTP_TIMEOUT_MS 10000
#define RENEW_RETRY_MIN_MS 5000
#define RENEW_RETRY_MAX_MS 300000
#define HEARTBEAT_DEFAULT_S 60

typedef struct renew_job {
    uv_work_t req;
    gm_node *node;
    char url[600];
    char *body;
    int rc;
    int status;
    char *resp;
    size_t resp_len;
    long retry_after_ms; /* the answer's Retry-After (0: none) */
    gm_error err;
} renew_job;

static void renew_work(uv_work_t *req);

/* A node-signed POST of body (consumed) to path on the thread pool; done runs on the loop. */
static int queue_signed_post(gm_node *n, const char *path, json_t *body, uv_after_work_cb done)
{
    gm_error err = {0};
    renew_job *j = calloc(1, sizeof *j);
    if (!j || !body || gm_reqsig_node_sign(body, &n->key, NULL, NULL, &err) != 0 ||
        !(j->body = json_dumps(body, JSON_COMPACT))) {
        json_decref(body);
        free(j);
        return -1;
    }
    json_decref(body);
    j->node = n;
    j->req.data = j;
    snprintf(j->url, sizeof j->url, "%s%s", n->na_url, path);
    if (uv_queue_work(n->loop, &j->req, renew_work, done) != 0) {
        free(j->body);
        free(j);
        return -1;
    }
    n->pending_work++;
    return 0;
}

void node_renew_schedule(gm_node *n)
{
    int64_t life = n->cert.expires_at.unix_s - n->cert.issued_at.unix_s;
    int64_t at = n->cert.issued_at.unix_s + life * 2 / 3, now = gm_time_now().unix_s;
    int64_t wait_s = at > now ? at - now : 0;
    if (n->cfg.renew_after_s > 0)
        wait_s = n->cfg.renew_after_s;
    n->renew.next_ms = node_now_ms(n) + (uint64_t)wait_s * 1000;
}

void node_renew_soon(gm_node *n)
{
    if (!n->renew.busy)
        n->renew.next_ms = 0;
}

static void retry_later(gm_node *n)
{
    int64_t left_ms = (n->cert.expires_at.unix_s - gm_time_now().unix_s) * 1000;
    uint64_t wait = left_ms > 0 ? (uint64_t)left_ms / 10 : RENEW_RETRY_MIN_MS;
    if (wait < RENEW_RETRY_MIN_MS)
        wait = RENEW_RETRY_MIN_MS;
    if (wait > RENEW_RETRY_MAX_MS)
        wait = RENEW_RETRY_MAX_MS;
    n->renew.next_ms = node_now_ms(n) + wait;
}

static void renew_work(uv_work_t *req)
{
    renew_job *j = req->data;
    gm_http_resp resp = {0};
    const char *hdrs[] = {"Content-Type: application/json"};
    gm_http_req r = {.method = "POST", .url = j->url, .headers = hdrs, .n_headers = 1, .body = j->body,
                     .body_len = strlen(j->body), .timeout_ms = RENEW_HTTP_TIMEOUT_MS, .max_response = 1 << 20};
    j->rc = gm_http_request(&r, &resp, &j->err);
    if (j->rc != 0)
        return;
    j->status = resp.status;
    j->retry_after_ms = resp.retry_after_ms;
    j->resp = resp.body;
    j->resp_len = resp.len;
    resp.body = NULL;
    gm_http_resp_free(&resp);
}

/* Install a renewed certificate: verify, persist, announce. */
static int install(gm_node *n, const char *text, size_t len, gm_error *err)
{
    gm_cert c;
    gm_trust_reason why;
    char path[4200];
    int rc = node_trust_check(n, (const uint8_t *)text, len, n->x_pk, gm_time_now(), &c, &why, err);
    if (rc != 0)
        return rc;
    if (memcmp(c.node_pk, n->key.pk, GM_PK_LEN) != 0) {
        gm_cert_free(&c);
        return gm_error_set(err, GM_EAUTH, "renewed certificate names another key");
    }
    char *pretty = gm_cert_dump(&c, 1), *compact = gm_cert_dump(&c, 0);
    if (!pretty || !compact || (rc = gm_path_join(path, sizeof path, n->dir, "cert.json", err)) != 0 ||
        (rc = gm_file_write_atomic(path, pretty, strlen(pretty), 0644, err)) != 0) {
        free(pretty);
        free(compact);
        gm_cert_free(&c);
        return rc ? rc : gm_error_set(err, GM_ENOMEM, "out of memory");
    }
    free(pretty);
    gm_cert_free(&n->cert);
    free(n->cert_json);
    n->cert = c;
    n->cert_json = compact;
    n->cert_json_len = strlen(compact);
    node_routing_self_cert_changed(n);
    return 0;
}

static void renew_done(uv_work_t *req, int status)
{
    renew_job *j = req->data;
    gm_node *n = j->node;
    gm_error err = {0};
    n->pending_work--;
    n->renew.busy = 0;
    if (!n->stopping && status == 0) {
        if (j->rc != 0) {
            n->m.renewals_failed++;
            node_log(n, GM_LOG_WARN, "renew_failed", json_pack("{s:s}", "error", j->err.msg));
            retry_later(n);
        } else if ((j->status != 200 && j->status != 201) || !j->resp) {
            n->m.renewals_failed++;
            node_log(n, GM_LOG_WARN, "renew_failed", json_pack("{s:i,s:s%}", "status", j->status, "body",
                                                               j->resp ? j->resp : "", j->resp ? j->resp_len : 0));
            retry_later(n);
            /* renewing_too_often says when the previous certificate's overlap ends: renew then
             * (a rotation right after a renewal must not wait a tenth of the certificate's life) */
            uint64_t when = node_now_ms(n) + (uint64_t)(j->retry_after_ms > 1000 ? j->retry_after_ms : 1000);
            if (j->status == 429 && j->retry_after_ms > 0 && when < n->renew.next_ms)
                n->renew.next_ms = when;
        } else if (install(n, j->resp, j->resp_len, &err) != 0) {
            n->m.renewals_failed++;
            node_log(n, GM_LOG_WARN, "renew_failed", json_pack("{s:s}", "error", err.msg));
            retry_later(n);
        } else {
            char exp[GM_TIME_STRLEN];
            gm_time_format(&n->cert.expires_at, exp);
            n->m.renewals_ok++;
            node_log(n, GM_LOG_INFO, "cert_renewed", json_pack("{s:s,s:s}", "cert_id", n->cert.cert_id, "expires_at", exp));
            node_renew_schedule(n);
        }
    }
    free(j->body);
    free(j->resp);
    free(j);
}

void node_renew_tick(gm_node *n, uint64_t now)
{
    if (n->renew.busy || n->stopping || !n->na_url[0] || now < n->renew.next_ms || n->self_revoked)
        return;
    json_t *body = json_pack("{s:s,s:s}", "node_public_key", n->key.pk_b64, "cert_id", n->cert.cert_id);
    if (queue_signed_post(n, "/renew", body, renew_done) != 0) {
        retry_later(n);
        return;
    }
    n->renew.busy = 1;
    node_log(n, GM_LOG_INFO, "renew_started", json_pack("{s:s}", "cert_id", n->cert.cert_id));
}

static void heartbeat_done(uv_work_t *req, int status)
{
    renew_job *j = req->data;
    gm_node *n = j->node;
    n->pending_work--;
    n->renew.hb_busy = 0;
    if (!n->stopping && status == 0) {
        if (j->rc != 0)
            node_log(n, GM_LOG_WARN, "heartbeat_failed", json_pack("{s:s}", "error", j->err.msg));
        else if (j->status != 200)
            node_log(n, GM_LOG_WARN, "heartbeat_failed", json_pack("{s:i,s:s%}", "status", j->status, "body",
                                                                   j->resp ? j->resp : "", j->resp ? j->resp_len : 0));
        else
            node_log(n, GM_LOG_DEBUG, "heartbeat_sent", json_pack("{s:s}", "cert_id", n->cert.cert_id));
    }
    free(j->body);
    free(j->resp);
    free(j);
}

void node_heartbeat_tick(gm_node *n, uint64_t now)
{
    long every_s = n->cfg.heartbeat_s ? n->cfg.heartbeat_s : HEARTBEAT_DEFAULT_S;
    if (every_s < 0 || n->renew.hb_busy || n->stopping || !n->na_url[0] || now < n->renew.hb_next_ms ||
        n->self_revoked)
        return;
    n->renew.hb_next_ms = now + (uint64_t)every_s * 1000;
    json_t *body = json_pack("{s:s,s:s,s:s}", "node_public_key", n->key.pk_b64, "cert_id", n->cert.cert_id, "status",
                             "healthy");
    if (queue_signed_post(n, "/heartbeat", body, heartbeat_done) == 0)
        n->renew.hb_busy = 1;
}
