/* The operator console (docs/na-api.md "Console"): GET /console and /console/<asset> serve the
 * page compiled into the library from lib/na/console/ (public: it shows nothing without the
 * token), and GET /console/api/state returns the NA's state as JSON to a holder of the
 * console token (D/console.token, "Authorization: Bearer <token>", compared in constant
 * time), the issuance log's size, root and last entries included. The state has an ETag over its bytes, so the page polls with If-None-Match and
 * gets a 304 while nothing changed. Invite tokens and private material never enter it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "gm/agent.h"
#include "gm/util.h"
#include "gm/version.h"
#include "na_internal.h"

/* Bounds on what one state answer lists (the page says when a list was cut). */
#define CONSOLE_CERTS_MAX 5000
#define CONSOLE_INVITES_MAX 500
#define CONSOLE_AGENTS_MAX 1000
#define CONSOLE_CRL_HISTORY 50
#define CONSOLE_LOG_ENTRIES 50
#define CONSOLE_TOKEN_BYTES 32

_Static_assert(GM_NA_CONSOLE_TOKEN_LEN == 2 * CONSOLE_TOKEN_BYTES, "hex of the token bytes");

/* ---- the token file ---- */

static int token_hex_valid(const char *s, size_t n)
{
    if (n != GM_NA_CONSOLE_TOKEN_LEN)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* A new token file, or GM_ECONFLICT when someone else made it first (then it is read). */
static int token_create(const char *path, char token[GM_NA_CONSOLE_TOKEN_LEN + 1], gm_error *err)
{
    uint8_t raw[CONSOLE_TOKEN_BYTES];
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST)
        return GM_ECONFLICT;
    if (fd < 0)
        return gm_error_set(err, GM_EIO, "cannot create %s: %s", path, strerror(errno));
    randombytes_buf(raw, sizeof raw);
    gm_hex_encode(raw, sizeof raw, token);
    sodium_memzero(raw, sizeof raw);
    token[GM_NA_CONSOLE_TOKEN_LEN] = '\n';
    ssize_t w = write(fd, token, GM_NA_CONSOLE_TOKEN_LEN + 1);
    token[GM_NA_CONSOLE_TOKEN_LEN] = '\0';
    int rc = 0;
    if (w != GM_NA_CONSOLE_TOKEN_LEN + 1 || fsync(fd) != 0)
        rc = gm_error_set(err, GM_EIO, "cannot write %s: %s", path, strerror(errno ? errno : EIO));
    close(fd);
    if (rc != 0) {
        unlink(path);
        sodium_memzero(token, GM_NA_CONSOLE_TOKEN_LEN + 1);
    }
    return rc;
}

int gm_na_console_token(const char *dir, int create, char token[GM_NA_CONSOLE_TOKEN_LEN + 1], gm_error *err)
{
    char path[4096];
    memset(token, 0, GM_NA_CONSOLE_TOKEN_LEN + 1);
    int rc = gm_path_join(path, sizeof path, dir && *dir ? dir : ".", "console.token", err);
    if (rc != 0)
        return rc;
    if (create && (rc = token_create(path, token, err)) != GM_ECONFLICT)
        return rc;
    struct stat st;
    if (lstat(path, &st) != 0)
        return gm_error_set(err, errno == ENOENT ? GM_ENOTFOUND : GM_EIO,
                            "cannot read the console token %s: %s (the NA creates it at its first start)", path,
                            strerror(errno));
    if (!S_ISREG(st.st_mode))
        return gm_error_set(err, GM_EINVAL, "%s is not a regular file", path);
    if (st.st_mode & 077)
        return gm_error_set(err, GM_EINVAL, "%s is readable by others (mode %03o): chmod 600 %s", path,
                            (unsigned)(st.st_mode & 0777), path);
    char *text = NULL;
    size_t len = 0;
    if ((rc = gm_file_read(path, 256, &text, &len, err)) != 0)
        return rc;
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        len--;
    if (!token_hex_valid(text, len))
        rc = gm_error_set(err, GM_EFORMAT, "%s must hold %d lowercase hex characters (delete it to make a new one)",
                          path, GM_NA_CONSOLE_TOKEN_LEN);
    else
        memcpy(token, text, GM_NA_CONSOLE_TOKEN_LEN);
    sodium_memzero(text, len);
    free(text);
    return rc;
}

/* "Authorization: Bearer <token>"; replies 401 and returns -1 otherwise. */
static int console_authorized(na_req *r)
{
    const char *h = na_req_header(r, "Authorization");
    if (!h || strncmp(h, "Bearer ", 7) != 0) {
        na_reply_error(r, 401, "console_token_required",
                       "send the console token as \"Authorization: Bearer <token>\" "
                       "(genesis-mesh admin console-url prints the console's address with it)");
        return -1;
    }
    const char *t = h + 7;
    /* The length is no secret; the bytes are compared in constant time. */
    if (strlen(t) != GM_NA_CONSOLE_TOKEN_LEN || sodium_memcmp(t, r->na->console_token, GM_NA_CONSOLE_TOKEN_LEN) != 0) {
        na_reply_error(r, 401, "console_token_invalid", "wrong console token (it is in console.token of the NA directory)");
        return -1;
    }
    return 0;
}

/* ---- the state ---- */

static json_t *time_json(int64_t unix_s)
{
    char s[GM_TIME_STRLEN];
    gm_time t = gm_time_from_unix(unix_s);
    gm_time_format(&t, s);
    return json_string(s);
}

typedef struct state_ctx {
    gm_na_t *na;
    int64_t now;
    json_t *nodes;   /* array of nodes in order of first enrollment */
    json_t *by_key;  /* node key -> its object in nodes (borrowed) */
    json_t *by_cert; /* certificate id -> node key */
    size_t n_certs;
    int truncated;
} state_ctx;

static int add_cert(const gm_store_cert *c, void *ctx)
{
    state_ctx *sc = ctx;
    if (sc->n_certs++ >= CONSOLE_CERTS_MAX) {
        sc->truncated = 1;
        return 1;
    }
    json_t *node = json_object_get(sc->by_key, c->node_pk);
    if (!node) {
        int blocked = 0;
        gm_store_key_blocked(sc->na->store, c->node_pk, &blocked, NULL);
        node = json_pack("{s:s,s:b,s:[]}", "node_public_key", c->node_pk, "key_blocked", blocked, "certificates");
        if (!node || json_array_append_new(sc->nodes, node) != 0 || json_object_set(sc->by_key, c->node_pk, node) != 0)
            return GM_ENOMEM;
    }
    json_t *roles = json_loads(c->roles_json, 0, NULL);
    /* a renewal retires the certificate it replaced as revoked "superseded" (in its overlap
     * nodes still accept it): the console calls that superseded, not revoked */
    const char *state = c->revoked && !strcmp(c->reason, "superseded") ? "superseded"
                        : c->revoked                                  ? "revoked"
                        : c->expires_at < sc->now                     ? "expired"
                                                                      : "active";
    json_t *o = json_pack("{s:s,s:o,s:o,s:o,s:s,s:o,s:o}", "cert_id", c->cert_id, "roles",
                          json_is_array(roles) ? roles : json_array(), "issued_at", time_json(c->issued_at),
                          "expires_at", time_json(c->expires_at), "state", state, "reason",
                          c->revoked ? json_string(c->reason) : json_null(), "revoked_at",
                          c->revoked ? json_string(c->revoked_at) : json_null());
    if (!json_is_array(roles))
        json_decref(roles);
    if (!o || json_array_append_new(json_object_get(node, "certificates"), o) != 0 ||
        json_object_set_new(sc->by_cert, c->cert_id, json_string(c->node_pk)) != 0)
        return GM_ENOMEM;
    return 0;
}

/* A valid certificate with a newer one of the same key is superseded (the renewal rule: only the
 * newest is renewed); the node shows its newest certificate. */
static int finish_nodes(json_t *nodes)
{
    size_t i;
    json_t *node;
    json_array_foreach(nodes, i, node) {
        json_t *certs = json_object_get(node, "certificates");
        size_t n = json_array_size(certs);
        for (size_t k = 0; k + 1 < n; k++) {
            json_t *c = json_array_get(certs, k);
            if (!strcmp(json_string_value(json_object_get(c, "state")), "active"))
                json_object_set_new(c, "state", json_string("superseded"));
        }
        json_t *newest = json_array_get(certs, n - 1);
        if (json_object_set(node, "roles", json_object_get(newest, "roles")) != 0 ||
            json_object_set(node, "cert_id", json_object_get(newest, "cert_id")) != 0 ||
            json_object_set(node, "state", json_object_get(newest, "state")) != 0 ||
            json_object_set(node, "expires_at", json_object_get(newest, "expires_at")) != 0)
            return GM_ENOMEM;
    }
    return 0;
}

static int add_invite(const gm_store_invite *inv, void *ctx)
{
    json_t *list = ctx;
    json_t *roles = json_loads(inv->roles_json, 0, NULL);
    /* A short prefix of the token's hash tells invites apart; the token itself is never stored. */
    char id[13];
    snprintf(id, sizeof id, "%.12s", inv->token_hash);
    json_t *o = json_pack("{s:s,s:o,s:o,s:o,s:I}", "id", id, "roles", json_is_array(roles) ? roles : json_array(),
                          "created_at", time_json(inv->created_at), "expires_at", time_json(inv->expires_at),
                          "max_validity_hours", (json_int_t)inv->max_validity_hours);
    if (!json_is_array(roles))
        json_decref(roles);
    return o && json_array_append_new(list, o) == 0 ? 0 : GM_ENOMEM;
}

static int add_crl(uint64_t sequence, int64_t created_at, void *ctx)
{
    json_t *o = json_pack("{s:I,s:o}", "sequence", (json_int_t)sequence, "published_at", time_json(created_at));
    return o && json_array_append_new(ctx, o) == 0 ? 0 : GM_ENOMEM;
}

typedef struct agents_ctx {
    json_t *list, *by_key;
} agents_ctx;

static int add_agent(const char *pk, const char *doc, void *ctx)
{
    agents_ctx *ac = ctx;
    gm_agent_desc d;
    if (gm_agent_desc_parse(doc, strlen(doc), &d, NULL) != 0)
        return 0; /* stored after checking; one that no longer parses is left out */
    char ra[GM_TIME_STRLEN], ea[GM_TIME_STRLEN];
    gm_time_format(&d.registered_at, ra);
    gm_time_format(&d.expires_at, ea);
    json_t *caps = json_array();
    for (size_t i = 0; caps && i < d.n_caps; i++)
        json_array_append_new(caps, json_string(gm_agent_desc_cap(&d, i)));
    json_t *node = json_object_get(ac->by_key, pk);
    json_t *o = json_pack("{s:s,s:s,s:o,s:s,s:s,s:s}", "agent_id", d.agent_id, "node_public_key", pk, "capabilities",
                          caps ? caps : json_array(), "registered_at", ra, "expires_at", ea, "node_state",
                          node ? json_string_value(json_object_get(node, "state")) : "unknown");
    gm_agent_desc_free(&d);
    return o && json_array_append_new(ac->list, o) == 0 ? 0 : GM_ENOMEM;
}

/* The current CRL from the cache, its entries with their node keys. */
static json_t *crl_json(gm_na_t *na, const json_t *by_cert)
{
    uint64_t seq = 0;
    char etag[80];
    char *text = na_crl_cache_get(na, &seq, etag);
    json_t *doc = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    json_t *entries = json_array(), *e;
    size_t i;
    json_array_foreach(json_object_get(doc, "revoked_certificates"), i, e) {
        const char *cid = json_string_value(json_object_get(e, "certificate_id"));
        json_t *o = json_pack("{s:O,s:O,s:O,s:O}", "certificate_id", json_object_get(e, "certificate_id"), "reason",
                              json_object_get(e, "reason"), "revoked_at", json_object_get(e, "revoked_at"), "issuer",
                              json_object_get(e, "issuer"));
        json_t *pk = cid ? json_object_get(by_cert, cid) : NULL;
        if (o)
            json_object_set(o, "node_public_key", pk ? pk : json_null());
        json_array_append_new(entries, o);
    }
    json_t *out = json_pack("{s:I,s:O,s:O,s:o}", "sequence", (json_int_t)seq, "issued_at",
                            json_object_get(doc, "issued_at") ? json_object_get(doc, "issued_at") : json_null(),
                            "next_update",
                            json_object_get(doc, "next_update") ? json_object_get(doc, "next_update") : json_null(),
                            "entries", entries);
    json_decref(doc);
    return out;
}

static json_t *network_json(gm_na_t *na)
{
    uint8_t h[32];
    char hash[65] = "", from[GM_TIME_STRLEN], to[GM_TIME_STRLEN];
    if (gm_genesis_hash(&na->genesis, h, NULL) == 0)
        gm_hex_encode(h, sizeof h, hash);
    gm_time_format(&na->genesis.na_valid_from, from);
    gm_time_format(&na->genesis.na_valid_to, to);
    return json_pack("{s:s,s:s,s:b,s:s,s:s,s:s,s:s,s:s,s:O}", "name", na->cfg.network_name, "na_url",
                     na->cfg.na_url, "tls", na->tls, "version", gm_version(), "na_public_key", na->key.pk_b64,
                     "na_key_valid_from", from, "na_key_valid_to", to, "genesis_hash", hash, "genesis",
                     na->genesis.doc);
}

static int console_state(gm_na_t *na, int64_t now, json_t **out, gm_error *e)
{
    state_ctx sc = {.na = na, .now = now, .nodes = json_array(), .by_key = json_object(), .by_cert = json_object()};
    json_t *invites = json_array(), *history = json_array();
    agents_ctx ac = {.list = json_array(), .by_key = sc.by_key};
    int rc = sc.nodes && sc.by_key && sc.by_cert && invites && history && ac.list ? 0 : GM_ENOMEM;
    if (rc == 0 && (rc = gm_store_certs_foreach(na->store, NULL, add_cert, &sc, e)) == 1)
        rc = 0; /* stopped at CONSOLE_CERTS_MAX */
    if (rc == 0)
        rc = finish_nodes(sc.nodes);
    if (rc == 0)
        rc = gm_store_invites_foreach(na->store, now, CONSOLE_INVITES_MAX, add_invite, invites, e);
    if (rc == 0)
        rc = gm_store_crls_foreach(na->store, CONSOLE_CRL_HISTORY, add_crl, history, e);
    if (rc == 0)
        rc = gm_store_agents_foreach(na->store, NULL, now - GM_CLOCK_SKEW_S, CONSOLE_AGENTS_MAX, add_agent, &ac, e);
    json_t *log = NULL;
    if (rc == 0)
        rc = na_issuance_summary(na, CONSOLE_LOG_ENTRIES, &log, e);
    json_t *crl = rc == 0 ? crl_json(na, sc.by_cert) : NULL;
    if (rc == 0 && crl)
        json_object_set_new(crl, "history", json_incref(history));
    *out = rc == 0 && crl ? json_pack("{s:o,s:O,s:b,s:O,s:O,s:o,s:O}", "network", network_json(na), "nodes",
                                      sc.nodes, "nodes_truncated", sc.truncated, "invites", invites, "agents",
                                      ac.list, "crl", crl, "log", log)
                          : NULL;
    if (rc == 0 && !*out) {
        json_decref(crl);
        rc = GM_ENOMEM;
    }
    json_decref(log);
    if (rc == GM_ENOMEM)
        gm_error_set(e, GM_ENOMEM, "out of memory building the console state");
    json_decref(sc.nodes);
    json_decref(sc.by_key);
    json_decref(sc.by_cert);
    json_decref(invites);
    json_decref(history);
    json_decref(ac.list);
    return rc;
}

int na_handle_console_state(na_req *r)
{
    if (console_authorized(r) != 0)
        return r->status;
    json_t *state = NULL;
    gm_error e = {0};
    if (console_state(r->na, r->now.unix_s, &state, &e) != 0)
        return na_reply_gm_error(r, &e);
    char *text = json_dumps(state, JSON_COMPACT);
    json_decref(state);
    if (!text)
        return na_reply_error(r, 500, "internal_error", "out of memory building the console state");
    /* The ETag names the bytes, so a poll gets 304 until anything in the state changed. */
    uint8_t h[32];
    char hex[65], etag[80];
    crypto_hash_sha256(h, (const uint8_t *)text, strlen(text));
    gm_hex_encode(h, sizeof h, hex);
    snprintf(etag, sizeof etag, "\"console-%.32s\"", hex);
    int st = na_reply_tagged(r, text, etag);
    free(text);
    return st;
}

/* ---- the page ---- */

static const char *content_type_of(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {{".html", "text/html; charset=utf-8"},
                 {".js", "text/javascript; charset=utf-8"},
                 {".css", "text/css; charset=utf-8"},
                 {".svg", "image/svg+xml"}};
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(dot, types[i].ext))
            return types[i].type;
    return "application/octet-stream";
}

static int serve_asset(na_req *r, const char *name)
{
    for (size_t i = 0; i < na_console_n_assets; i++) {
        const na_console_asset *a = &na_console_assets[i];
        if (!strcmp(a->name, name))
            return na_reply_text(r, 200, content_type_of(name), (const char *)a->data, a->len);
    }
    return na_reply_error(r, 404, "not_found", "no console file %s", r->path);
}

int na_handle_console_page(na_req *r)
{
    return serve_asset(r, "index.html");
}

int na_handle_console_asset(na_req *r)
{
    return serve_asset(r, r->path_rest[0] ? r->path_rest : "index.html");
}
