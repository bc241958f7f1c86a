/* Reads for members only (GET /agents, /log/...): the request line signed by a node key
 * (core_internal.h "node-signed reads", the node-signed scheme over a body both sides build),
 * fresh, not replayed, and the key holding a valid, unrevoked certificate of this network.
 * The certificate is kept in r->member so the handler can filter by its roles. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "gm/util.h"
#include "na_internal.h"

struct query_ctx {
    json_t *q;
    int bad;
};

static enum MHD_Result add_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    struct query_ctx *c = cls;
    (void)kind;
    if (!key || json_object_get(c->q, key) || json_object_size(c->q) >= GM_REQSIG_QUERY_MAX ||
        json_object_set_new(c->q, key, json_string(value ? value : "")) != 0) {
        c->bad = 1;
        return MHD_NO;
    }
    return MHD_YES;
}

int na_member_authenticate(na_req *r)
{
    gm_na_t *na = r->na;
    gm_error e = {0};
    const char *pk_b64 = na_req_header(r, GM_NODE_HDR_KEY), *ts = na_req_header(r, GM_NODE_HDR_TIMESTAMP),
               *nonce = na_req_header(r, GM_NODE_HDR_NONCE), *sig = na_req_header(r, GM_NODE_HDR_SIGNATURE);
    uint8_t pk[GM_PK_LEN];
    if (!pk_b64 || !ts || !nonce || !sig)
        return na_reply_error(r, 401, "member_auth_required",
                              "%s is for members of network '%s' only: sign the request with a node key holding a "
                              "certificate of this network (headers %s, %s, %s, %s; docs/na-api.md \"Member reads\"; "
                              "agents ask their node: local API op \"discover\")",
                              r->path, na->cfg.network_name, GM_NODE_HDR_KEY, GM_NODE_HDR_TIMESTAMP,
                              GM_NODE_HDR_NONCE, GM_NODE_HDR_SIGNATURE),
               -1;
    if (strlen(pk_b64) > GM_PK_B64_LEN || gm_pk_decode(pk_b64, pk, &e) != 0)
        return na_reply_error(r, 401, "invalid_member_auth", "%s is not a node public key in standard base64",
                              GM_NODE_HDR_KEY),
               -1;
    struct query_ctx qc = {.q = json_object()};
    if (!qc.q)
        return na_reply_error(r, 500, "internal_error", "out of memory"), -1;
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, add_arg, &qc);
    if (qc.bad) {
        json_decref(qc.q);
        return na_reply_error(r, 400, "invalid_query", "a query parameter is repeated, or there are more than %d",
                              GM_REQSIG_QUERY_MAX),
               -1;
    }
    /* HEAD is a GET without the body: the client signed GET. */
    json_t *body = gm_reqsig_read_body(strcmp(r->method, "HEAD") ? r->method : "GET", r->path, qc.q, pk_b64, ts, nonce);
    json_decref(qc.q);
    if (!body || json_object_set_new(body, "signature", json_string(sig)) != 0) {
        json_decref(body);
        return na_reply_error(r, 401, "invalid_member_auth", "the %s headers must be UTF-8", "X-Node-*"), -1;
    }
    int rc = gm_reqsig_node_check(body, pk, r->now, GM_REQSIG_WINDOW_S, NULL, NULL, NULL, &e);
    switch (rc) {
    case 0: break;
    case GM_EEXPIRED: na_reply_error(r, 401, "stale_timestamp", "%s", e.msg); break;
    case GM_ESIG: na_reply_error(r, 401, "bad_signature", "%s", e.msg); break;
    case GM_EFORMAT: na_reply_error(r, 401, "invalid_member_auth", "%s", e.msg); break;
    default: na_reply_gm_error(r, &e); break;
    }
    if (rc != 0) {
        json_decref(body);
        return -1;
    }
    /* Membership and the nonce in one transaction: a refused request records nothing. */
    char *cert = NULL;
    int blocked = 0;
    if (gm_store_begin(na->store, &e) != 0) {
        json_decref(body);
        return na_reply_gm_error(r, &e), -1;
    }
    if (gm_store_key_blocked(na->store, pk_b64, &blocked, &e) != 0 ||
        na_current_cert(na, pk_b64, r->now.unix_s, &cert, &e) != 0)
        rc = na_reply_gm_error(r, &e);
    else if (blocked || !cert)
        rc = na_reply_error(r, 403, "not_a_member",
                            "node key %s holds no valid, unrevoked certificate of network '%s'", pk_b64,
                            na->cfg.network_name);
    else
        rc = na_record_node_nonce(r, body, pk_b64);
    json_decref(body);
    /* deferred: the read answered after it waits for this nonce to be durable (na_server.c) */
    if (rc == 0 && gm_store_commit_deferred(na->store, &e) != 0)
        rc = na_reply_gm_error(r, &e);
    else if (rc != 0)
        gm_store_rollback(na->store);
    if (rc == 0 && !(r->member = json_loads(cert, 0, NULL)))
        rc = na_reply_error(r, 500, "internal_error", "a stored certificate does not parse");
    free(cert);
    return rc == 0 ? 0 : -1;
}
