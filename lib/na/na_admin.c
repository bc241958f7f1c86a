/* Operator endpoints (authenticated by the router): POST /admin/invite, GET /admin/nodes,
 * POST /admin/clear-key. Revocation lives with the CRL in na_crl.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "gm/util.h"
#include "na_internal.h"

#define INVITE_MAX_ROLES 32
#define ROLE_MAX_LEN 128
#define TOKEN_BYTES 32

void na_token_hash(const char *token, char out[65])
{
    uint8_t h[32];
    crypto_hash_sha256(h, (const uint8_t *)token, strlen(token));
    gm_hex_encode(h, sizeof h, out);
}

static int role_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > ROLE_MAX_LEN)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ':' || c == '.' ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int na_handle_invite(na_req *r)
{
    static const char *const allowed[] = {"roles", "token_expiry_hours", "max_validity_hours", NULL};
    const json_t *body = r->json;
    if (na_check_members(r, body, allowed) != 0)
        return r->status;
    const json_t *roles = json_object_get(body, "roles");
    if (!roles)
        return na_reply_error(r, 400, "missing_field", "missing \"roles\" (e.g. [\"role:finance\"])");
    if (!json_is_array(roles) || json_array_size(roles) == 0 || json_array_size(roles) > INVITE_MAX_ROLES)
        return na_reply_error(r, 400, "invalid_field", "\"roles\" must be an array of 1..%d strings",
                              INVITE_MAX_ROLES);
    for (size_t i = 0; i < json_array_size(roles); i++) {
        const char *role = json_string_value(json_array_get(roles, i));
        if (!role || !role_valid(role))
            return na_reply_error(r, 400, "invalid_field",
                                  "roles[%zu] must be 1..%d characters of A-Z a-z 0-9 : . _ - (e.g. role:finance)",
                                  i, ROLE_MAX_LEN);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(role, json_string_value(json_array_get(roles, j))))
                return na_reply_error(r, 400, "invalid_field", "role '%s' is listed twice", role);
    }
    int64_t expiry_h, max_validity_h;
    if (na_get_int(r, body, "token_expiry_hours", 0, 1, 24 * 366, 24, &expiry_h) != 0 ||
        na_get_int(r, body, "max_validity_hours", 0, 1, 24 * 3660, 168, &max_validity_h) != 0)
        return r->status;

    uint8_t raw[TOKEN_BYTES];
    char token[sodium_base64_ENCODED_LEN(TOKEN_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    char hash[65];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(token, sizeof token, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    na_token_hash(token, hash);
    char *roles_text = json_dumps(roles, JSON_COMPACT);
    gm_time expires = gm_time_add(r->now, expiry_h * 3600);
    expires.usec = 0;
    gm_error e = {0};
    int rc = roles_text ? gm_store_invite_add(r->na->store, hash, roles_text, r->now.unix_s, expires.unix_s,
                                              max_validity_h, &e)
                        : gm_error_set(&e, GM_ENOMEM, "out of memory");
    free(roles_text);
    if (rc != 0) {
        sodium_memzero(token, sizeof token);
        return na_reply_gm_error(r, &e);
    }
    char exp_s[GM_TIME_STRLEN];
    gm_time_format(&expires, exp_s);
    na_metrics_add(&r->na->metrics, &r->na->metrics.invites, 1);
    na_log(r->na, "%s invite created by %s: roles %s, max validity %lldh", r->request_id, r->admin_key_id,
           json_string_value(json_array_get(roles, 0)), (long long)max_validity_h);
    /* "token_id" is the same token under the Python reference's name, for its clients */
    rc = na_reply_json(r, 201,
                       json_pack("{s:s,s:s,s:O,s:s,s:I,s:I}", "token", token, "token_id", token, "roles", roles,
                                 "expires_at", exp_s,
                                 "max_validity_hours", (json_int_t)max_validity_h, "token_expiry_hours",
                                 (json_int_t)expiry_h));
    sodium_memzero(token, sizeof token);
    return rc;
}

typedef struct nodes_ctx {
    json_t *list;
    gm_store_t *store;
    int64_t now;
} nodes_ctx;

static int add_node(const gm_store_cert *c, void *ctx)
{
    nodes_ctx *n = ctx;
    json_error_t je;
    json_t *roles = json_loads(c->roles_json, 0, &je);
    char ia[GM_TIME_STRLEN], ea[GM_TIME_STRLEN];
    gm_time t = gm_time_from_unix(c->issued_at);
    gm_time_format(&t, ia);
    t = gm_time_from_unix(c->expires_at);
    gm_time_format(&t, ea);
    int blocked = 0;
    gm_store_key_blocked(n->store, c->node_pk, &blocked, NULL);
    const char *status = c->revoked ? "revoked" : c->expires_at < n->now ? "expired" : "active";
    json_t *seen = json_null();
    if (c->last_heartbeat) {
        char ls[GM_TIME_STRLEN];
        t = gm_time_from_unix(c->last_heartbeat);
        gm_time_format(&t, ls);
        seen = json_string(ls);
    }
    json_t *o = json_pack("{s:s,s:s,s:o,s:s,s:s,s:s,s:o,s:o,s:b,s:o,s:o}", "cert_id", c->cert_id, "node_public_key",
                          c->node_pk, "roles", roles ? roles : json_array(), "issued_at", ia, "expires_at", ea,
                          "status", status, "reason", c->revoked ? json_string(c->reason) : json_null(),
                          "revoked_at", c->revoked ? json_string(c->revoked_at) : json_null(), "key_blocked",
                          blocked, "last_heartbeat", seen, "heartbeat_status",
                          c->last_heartbeat ? json_string(c->heartbeat_status) : json_null());
    if (!o || json_array_append_new(n->list, o) != 0)
        return GM_ENOMEM;
    return 0;
}

int na_handle_nodes(na_req *r)
{
    const char *filter = na_req_query(r, "node_public_key");
    uint8_t pk[GM_PK_LEN];
    if (filter && gm_pk_decode(filter, pk, NULL) != 0)
        return na_reply_error(r, 400, "bad_base64", "node_public_key is not a base64 Ed25519 key");
    nodes_ctx n = {json_array(), r->na->store, r->now.unix_s};
    gm_error e = {0};
    int rc = n.list ? gm_store_certs_foreach(r->na->store, filter, add_node, &n, &e) : GM_ENOMEM;
    if (rc != 0) {
        json_decref(n.list);
        if (rc == GM_ENOMEM)
            gm_error_set(&e, GM_ENOMEM, "out of memory listing nodes");
        return na_reply_gm_error(r, &e);
    }
    return na_reply_json(r, 200, json_pack("{s:o}", "nodes", n.list));
}

int na_handle_clear_key(na_req *r)
{
    const char *pk_b64;
    uint8_t pk[GM_PK_LEN];
    static const char *const allowed[] = {"node_public_key", NULL};
    if (na_check_members(r, r->json, allowed) != 0)
        return r->status;
    if (na_get_pk(r, r->json, "node_public_key", pk, &pk_b64) != 0)
        return r->status;
    gm_error e = {0};
    int rc = gm_store_key_unblock(r->na->store, pk_b64, &e);
    if (rc == GM_ENOTFOUND)
        return na_reply_error(r, 404, "not_blocked", "node key %s is not blocked", pk_b64);
    if (rc != 0)
        return na_reply_gm_error(r, &e);
    na_log(r->na, "%s key %s cleared by %s", r->request_id, pk_b64, r->admin_key_id);
    return na_reply_json(r, 200, json_pack("{s:s,s:b}", "node_public_key", pk_b64, "cleared", 1));
}
