/* genesis-mesh status: what this node holds. The report is one JSON object (the contract
 * in docs/node-cli.md) filled by a list of sections; each also prints its text lines. To
 * report more (the running node's peers and routes), add or replace a collect/print pair
 * in `sections`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "gm/cert.h"
#include "gm/crl.h"
#include "gm/genesis.h"
#include "gm/http_client.h"
#include "gm/keys.h"
#include "gm/na_client.h"
#include "gm/node.h"
#include "gm/util.h"

#define STATUS_NA_TIMEOUT_MS 3000L

typedef struct status_ctx {
    const char *dir;
    gm_time now;
    gm_genesis g;
    int have_genesis;
    gm_genesis next;          /* D/genesis.next.json: the successor the node holds (NA key rotation) */
    int have_next;
    long long warn_s;         /* --na-warn-before */
    uint8_t node_pk[GM_PK_LEN];
    int have_key;
    gm_cert cert;
    int have_cert;
    char na_url[1024];
    gm_error load_err;
} status_ctx;

/* A section adds its members to the report (one flat JSON object, see docs/node-cli.md)
 * and prints its lines from the report. */
typedef struct status_section {
    void (*collect)(status_ctx *c, json_t *report);
    void (*print)(const json_t *report);
} status_section;

static const char *str(const json_t *s, const char *k)
{
    const char *v = json_string_value(json_object_get(s, k));
    return v ? v : "";
}

static void set(json_t *report, const char *key, json_t *v)
{
    json_object_set_new(report, key, v ? v : json_null());
}

/* ---- network ---- */

static void collect_network(status_ctx *c, json_t *r)
{
    set(r, "na_url", c->na_url[0] ? json_string(c->na_url) : NULL);
    if (!c->have_genesis) {
        set(r, "network", NULL);
        set(r, "genesis_error", json_string(c->load_err.msg));
        return;
    }
    uint8_t h[32];
    char hex[65] = "", na[GM_PK_B64_LEN + 1], to[GM_TIME_STRLEN];
    if (gm_genesis_hash(&c->g, h, NULL) == 0)
        gm_hex_encode(h, sizeof h, hex);
    gm_pk_encode(c->g.na_pk, na);
    gm_time_format(&c->g.na_valid_to, to);
    set(r, "network", json_string(c->g.network_name));
    set(r, "genesis_hash", json_string(hex));
    set(r, "na_public_key", json_string(na));
    set(r, "na_valid_to", json_string(to));
    set(r, "network_version", json_string(json_string_value(json_object_get(c->g.doc, "network_version"))));
    /* the NA key's end: of the successor when the node holds one */
    const gm_genesis *last = c->have_next ? &c->next : &c->g;
    long long left = last->na_valid_to.unix_s - c->now.unix_s;
    set(r, "genesis_successor",
        c->have_next ? json_string(json_string_value(json_object_get(c->next.doc, "network_version"))) : NULL);
    set(r, "na_key_seconds_left", json_integer(left));
    set(r, "na_key_warning", left < c->warn_s ? json_string(left < 0 ? "the NA key has expired"
                                                                      : "the NA key ends soon and no successor genesis "
                                                                        "block is known")
                                              : NULL);
}

static void print_duration(long long s);

static void print_network(const json_t *r)
{
    if (!json_is_string(json_object_get(r, "network"))) {
        printf("network:      (no usable genesis.json: %s)\n", str(r, "genesis_error"));
        return;
    }
    printf("network:      %s (genesis %.16s...)\n", str(r, "network"), str(r, "genesis_hash"));
    printf("NA:           %s (NA key valid until %s)\n", str(r, "na_url")[0] ? str(r, "na_url") : "(no node.json)",
           str(r, "na_valid_to"));
    if (json_is_string(json_object_get(r, "genesis_successor")))
        printf("rotation:     successor genesis %s held (the NA key rotates; nothing to do)\n",
               str(r, "genesis_successor"));
    if (json_is_string(json_object_get(r, "na_key_warning"))) {
        printf("warning:      %s (", str(r, "na_key_warning"));
        print_duration((long long)json_integer_value(json_object_get(r, "na_key_seconds_left")));
        printf(" %s): the operator rotates it with 'genesis rotate' and 'admin genesis publish'\n",
               json_integer_value(json_object_get(r, "na_key_seconds_left")) < 0 ? "ago" : "left");
    }
}

/* ---- node ---- */

static void collect_node(status_ctx *c, json_t *r)
{
    char pk[GM_PK_B64_LEN + 1] = "";
    if (c->have_key)
        gm_pk_encode(c->node_pk, pk);
    set(r, "dir", json_string(c->dir));
    set(r, "node_public_key", c->have_key ? json_string(pk) : NULL);
}

static void print_node(const json_t *r)
{
    const char *pk = json_string_value(json_object_get(r, "node_public_key"));
    printf("node key:     %s\n", pk ? pk : "(none: run 'genesis-mesh join')");
}

/* ---- certificate ---- */

static void collect_cert(status_ctx *c, json_t *r)
{
    if (!c->have_cert) {
        set(r, "cert_id", NULL);
        set(r, "roles", json_array());
        set(r, "expires_at", NULL);
        set(r, "certificate_state", json_string("none"));
        return;
    }
    char ia[GM_TIME_STRLEN], ea[GM_TIME_STRLEN];
    gm_time_format(&c->cert.issued_at, ia);
    gm_time_format(&c->cert.expires_at, ea);
    json_t *roles = json_deep_copy(json_object_get(c->cert.doc, "roles"));
    gm_error e = {0};
    const char *state;
    if (!c->have_genesis) {
        state = "unverified";
        snprintf(e.msg, sizeof e.msg, "no genesis block to verify against");
    } else {
        int rc = gm_cert_verify(&c->cert, &c->g, NULL, c->now, &e);
        /* renewed under the successor's NA key during a rotation's overlap */
        if (rc == GM_ESIG && c->have_next && gm_cert_verify(&c->cert, &c->next, NULL, c->now, NULL) == 0)
            rc = 0, e.msg[0] = '\0';
        state = rc == 0 ? "valid" : rc == GM_EEXPIRED ? "expired" : "invalid";
    }
    set(r, "cert_id", json_string(c->cert.cert_id));
    set(r, "roles", roles ? roles : json_array());
    set(r, "issued_at", json_string(ia));
    set(r, "expires_at", json_string(ea));
    set(r, "remaining_s", json_integer(c->cert.expires_at.unix_s - c->now.unix_s));
    set(r, "certificate_state", json_string(state));
    if (e.msg[0])
        set(r, "certificate_detail", json_string(e.msg));
}

static void print_duration(long long s)
{
    long long a = s < 0 ? -s : s;
    if (a >= 86400)
        printf("%lldd %lldh", a / 86400, a % 86400 / 3600);
    else if (a >= 3600)
        printf("%lldh %lldm", a / 3600, a % 3600 / 60);
    else
        printf("%lldm %llds", a / 60, a % 60);
}

static void print_cert(const json_t *r)
{
    if (!strcmp(str(r, "certificate_state"), "none")) {
        printf("certificate:  none (not joined: run 'genesis-mesh join --na URL --token T')\n");
        return;
    }
    const char *detail = str(r, "certificate_detail");
    printf("certificate:  %s (%s%s%s)\n", str(r, "cert_id"), str(r, "certificate_state"), detail[0] ? ": " : "",
           detail);
    printf("roles:        ");
    const json_t *roles = json_object_get(r, "roles");
    for (size_t i = 0; i < json_array_size(roles); i++)
        printf("%s%s", i ? ", " : "", json_string_value(json_array_get(roles, i)));
    long long rem = (long long)json_integer_value(json_object_get(r, "remaining_s"));
    printf("\nexpires:      %s (", str(r, "expires_at"));
    if (rem >= 0) {
        printf("in ");
        print_duration(rem);
    } else {
        print_duration(rem);
        printf(" ago");
    }
    printf(")\n");
}

/* ---- revocation ---- */

static json_t *crl_state(status_ctx *c, const gm_crl *crl, const char *source)
{
    const char *reason = NULL;
    int revoked = gm_crl_contains(crl, c->cert.cert_id, &reason);
    return json_pack("{s:s,s:I,s:s?,s:s}", "state", revoked ? "revoked" : "not revoked", "crl_sequence",
                     (json_int_t)crl->sequence, "reason", revoked ? reason : NULL, "source", source);
}

static void collect_revocation(status_ctx *c, json_t *r)
{
    set(r, "crl_sequence", NULL);
    if (!c->have_cert || !c->have_genesis)
        return;
    gm_crl crl;
    gm_error e = {0};
    int nm = 0;
    json_t *out;
    if (c->na_url[0] &&
        (gm_na_fetch_crl(c->na_url, c->g.na_pk, NULL, STATUS_NA_TIMEOUT_MS, &crl, &nm, NULL, 0, &e) == 0 ||
         (c->have_next &&
          gm_na_fetch_crl(c->na_url, c->next.na_pk, NULL, STATUS_NA_TIMEOUT_MS, &crl, &nm, NULL, 0, &e) == 0)) &&
        !nm) {
        out = crl_state(c, &crl, "na");
        set(r, "crl_sequence", json_integer((json_int_t)crl.sequence));
        /* a signed, unexpired certificate on the CRL is not "valid" */
        if (!strcmp(str(out, "state"), "revoked"))
            set(r, "certificate_state", json_string("revoked"));
        gm_crl_free(&crl);
        set(r, "revocation", out);
        return;
    }
    out = json_pack("{s:s,s:s}", "state", c->na_url[0] ? "unknown (NA unreachable)" : "unknown (no NA URL)", "error",
                    e.msg);
    /* The node runtime keeps the last CRL it accepted in D/crl.json. */
    char path[4096], *text = NULL;
    size_t len;
    if (gm_path_join(path, sizeof path, c->dir, "crl.json", NULL) == 0 &&
        gm_file_read(path, 8 * 1024 * 1024, &text, &len, NULL) == 0) {
        if (gm_crl_parse(text, len, &crl, NULL) == 0) {
            if (gm_crl_verify(&crl, c->g.na_pk, NULL) == 0 ||
                (c->have_next && gm_crl_verify(&crl, c->next.na_pk, NULL) == 0)) {
                json_object_set_new(out, "cached", crl_state(c, &crl, "crl.json"));
                set(r, "crl_sequence", json_integer((json_int_t)crl.sequence));
            }
            gm_crl_free(&crl);
        }
        free(text);
    }
    set(r, "revocation", out);
}

static void print_revocation(const json_t *r)
{
    const json_t *s = json_object_get(r, "revocation");
    if (!s)
        return;
    const char *state = str(s, "state");
    if (json_object_get(s, "crl_sequence")) {
        int has_reason = json_is_string(json_object_get(s, "reason"));
        printf("revocation:   %s%s%s%s (CRL sequence %lld from the NA)\n", state, has_reason ? " (" : "",
               str(s, "reason"), has_reason ? ")" : "",
               (long long)json_integer_value(json_object_get(s, "crl_sequence")));
        return;
    }
    printf("revocation:   %s", state);
    const json_t *cached = json_object_get(s, "cached");
    if (cached)
        printf("; last known: %s (CRL sequence %lld, crl.json)", str(cached, "state"),
               (long long)json_integer_value(json_object_get(cached, "crl_sequence")));
    printf("\n");
}

/* ---- the running node ---- */

#define STATUS_NODE_TIMEOUT_MS 3000

/* Ask the node running in D (D/node.sock) for its status (docs/node-cli.md): peers, routes,
 * metrics and the CRL it holds. Without a running node: "running": false. */
static void collect_runtime(status_ctx *c, json_t *r)
{
    json_t *req = json_pack("{s:s}", "op", "status"), *resp = NULL;
    int rc = gm_node_api_call(c->dir, req, &resp, STATUS_NODE_TIMEOUT_MS, NULL);
    json_decref(req);
    if (rc != 0 || !json_is_true(json_object_get(resp, "ok"))) {
        json_decref(resp);
        set(r, "running", json_false());
        return;
    }
    static const char *const from_node[] = {"running", "peers", "routes", "metrics", "crl_sequence"};
    for (size_t i = 0; i < sizeof from_node / sizeof from_node[0]; i++) {
        json_t *v = json_object_get(resp, from_node[i]);
        if (v)
            json_object_set(r, from_node[i], v);
    }
    /* anything else the node reports, without overriding what the files said */
    const char *key;
    json_t *v;
    json_object_foreach(resp, key, v)
    {
        if (strcmp(key, "ok") != 0 && !json_object_get(r, key))
            json_object_set(r, key, v);
    }
    if (!json_is_boolean(json_object_get(r, "running")))
        set(r, "running", json_true());
    json_decref(resp);
}

static void print_runtime(const json_t *r)
{
    if (!json_is_true(json_object_get(r, "running"))) {
        printf("node:         not running\n");
        return;
    }
    const json_t *peers = json_object_get(r, "peers"), *routes = json_object_get(r, "routes");
    printf("node:         running; CRL sequence %lld\n",
           (long long)json_integer_value(json_object_get(r, "crl_sequence")));
    if (json_is_true(json_object_get(r, "crl_stale")))
        printf("warning:      the node's CRL is stale (next_update %s passed): revocations since then are "
               "unknown to it; check that it reaches the NA\n", str(r, "crl_next_update"));
    printf("peers:        %zu\n", json_array_size(peers));
    for (size_t i = 0; i < json_array_size(peers); i++) {
        const json_t *p = json_array_get(peers, i);
        printf("  %s  %-22s %s", str(p, "node_public_key"), str(p, "address"), str(p, "direction"));
        const json_t *roles = json_object_get(p, "roles");
        for (size_t j = 0; j < json_array_size(roles); j++)
            printf("%s%s", j ? "," : "  ", json_string_value(json_array_get(roles, j)));
        printf("\n");
    }
    printf("routes:       %zu\n", json_array_size(routes));
    for (size_t i = 0; i < json_array_size(routes); i++) {
        const json_t *rt = json_array_get(routes, i);
        printf("  %s via %s  metric %lld, %lld hop(s)\n", str(rt, "destination"), str(rt, "next_hop"),
               (long long)json_integer_value(json_object_get(rt, "metric")),
               (long long)json_integer_value(json_object_get(rt, "hops")));
    }
}

static const status_section sections[] = {
    {collect_network, print_network},
    {collect_node, print_node},
    {collect_cert, print_cert},
    {collect_revocation, print_revocation},
    {collect_runtime, print_runtime},
};

/* ---- loading the node directory ---- */

static void load(status_ctx *c, const char *na_override)
{
    char path[4096], *text = NULL;
    size_t len;
    if (gm_path_join(path, sizeof path, c->dir, "genesis.json", &c->load_err) == 0 &&
        gm_genesis_load(path, &c->g, &c->load_err) == 0) {
        if (gm_genesis_verify(&c->g, &c->load_err) == 0)
            c->have_genesis = 1;
        else
            gm_genesis_free(&c->g);
    }
    if (c->have_genesis && gm_path_join(path, sizeof path, c->dir, "genesis.next.json", NULL) == 0 &&
        gm_file_exists(path) && gm_genesis_load(path, &c->next, NULL) == 0) {
        if (gm_genesis_check_successor(&c->g, &c->next, NULL) == 0)
            c->have_next = 1;
        else
            gm_genesis_free(&c->next);
    }
    if (gm_path_join(path, sizeof path, c->dir, "node.pub", NULL) == 0 && gm_pk_load(path, c->node_pk, NULL) == 0)
        c->have_key = 1;
    if (gm_path_join(path, sizeof path, c->dir, "cert.json", NULL) == 0 && gm_cert_load(path, &c->cert, NULL) == 0)
        c->have_cert = 1;
    if (na_override) {
        snprintf(c->na_url, sizeof c->na_url, "%s", na_override);
    } else if (gm_path_join(path, sizeof path, c->dir, "node.json", NULL) == 0 &&
               gm_file_read(path, 256 * 1024, &text, &len, NULL) == 0) {
        json_t *o = json_loadb(text, len, 0, NULL);
        const char *u = json_string_value(json_object_get(o, "na_url"));
        snprintf(c->na_url, sizeof c->na_url, "%s", u ? u : "");
        json_decref(o);
        free(text);
    }
    /* The NA trust join kept; if it is unreadable the NA check below says the NA is unreachable. */
    if (c->na_url[0] && gm_http_trust_load_dir(c->dir, c->na_url, NULL) != 0) {
    }
}

static int run_status(const cli_args *a)
{
    const char *dir = cli_str(a, "dir", "."), *na = cli_str(a, "na", NULL);
    int as_json = cli_has(a, "json");
    status_ctx c;
    memset(&c, 0, sizeof c);
    c.dir = dir;
    c.now = gm_time_now();
    if (cli_duration(a, "na-warn-before", 1, 3650LL * 86400, 30LL * 86400, &c.warn_s))
        return 2;
    load(&c, na);
    json_t *report = json_object();
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++)
        sections[i].collect(&c, report);
    if (as_json) {
        char *t = json_dumps(report, JSON_INDENT(2));
        if (t)
            printf("%s\n", t);
        free(t);
    } else {
        for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++)
            sections[i].print(report);
    }
    json_decref(report);
    int joined = c.have_cert && c.have_key;
    if (c.have_genesis)
        gm_genesis_free(&c.g);
    if (c.have_next)
        gm_genesis_free(&c.next);
    if (c.have_cert)
        gm_cert_free(&c.cert);
    return joined ? 0 : 1;
}

static const cli_opt status_opts[] = {
    {"dir", "D", "the node directory (default .)"},
    {"na", "URL", "ask this NA for the CRL (default: na_url of D/node.json)"},
    {"json", NULL, "print the report as one JSON object (docs/node-cli.md)"},
    {"na-warn-before", "DURATION", "warn when the NA key ends within this (default 30d)"},
    {NULL},
};
const cli_cmd cli_status = {"status", "what this node holds (and, if running, its peers and routes)",
                            "[--dir D] [--na URL] [--json] [--na-warn-before DURATION]",
                            "Exit status 0 when the node has joined (key and certificate), else 1.\n", run_status,
                            status_opts, 0, NULL};
