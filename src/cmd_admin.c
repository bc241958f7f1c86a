/* genesis-mesh admin: operator requests to the NA, signed with the operator key of an
 * operator directory (operator.key, and config.json for the NA URL). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "cli.h"
#include "gm/crl.h"
#include "gm/genesis.h"
#include "gm/http_client.h"
#include "gm/keys.h"
#include "gm/na.h"
#include "gm/na_client.h"
#include "gm/policy.h"
#include "gm/util.h"

#define MAX_ROLES 32

typedef struct admin_opts {
    const char *dir, *na, *tls_ca, *tls_pin;
    int json;
    gm_signer op;
    char url[1024];
} admin_opts;

/* Operator key and NA URL from the operator directory. */
static int load_operator(admin_opts *o, gm_error *err)
{
    char path[4096];
    int rc = gm_path_join(path, sizeof path, o->dir, "operator", err);
    if (rc == 0 && (rc = gm_signer_load(&o->op, path, "operator-local", err)) != 0)
        gm_error_prefix(err, "operator key (use --dir with the directory holding operator.key)");
    if (rc != 0)
        return rc;
    char *text = NULL, ca[4096] = "";
    size_t len;
    json_t *cfg = NULL;
    if (o->na)
        snprintf(o->url, sizeof o->url, "%s", o->na);
    if ((rc = gm_path_join(path, sizeof path, o->dir, "config.json", err)) == 0 &&
        (rc = gm_file_read(path, 256 * 1024, &text, &len, o->na ? NULL : err)) == 0) {
        cfg = json_loadb(text, len, 0, NULL);
        free(text);
        const char *u = json_string_value(json_object_get(cfg, "na_url"));
        /* The NA's own certificate is its CA: the operator directory is the NA's directory. */
        const char *crt = json_string_value(json_object_get(cfg, "tls_cert"));
        if (crt && crt[0] == '/')
            snprintf(ca, sizeof ca, "%s", crt);
        else if (crt && *crt && gm_path_join(ca, sizeof ca, o->dir, crt, NULL) != 0)
            ca[0] = '\0';
        if (u && !o->na)
            snprintf(o->url, sizeof o->url, "%s", u);
        else if (!o->na)
            rc = gm_error_set(err, GM_EFORMAT, "%s has no \"na_url\"; pass --na URL", path);
        json_decref(cfg);
    } else if (o->na) {
        rc = 0;
    } else {
        gm_error_prefix(err, "no NA URL (pass --na URL)");
    }
    if (rc == 0 && !o->tls_ca && !o->tls_pin && !getenv("GM_NA_CA") && !getenv("GM_NA_PIN") && ca[0] &&
        gm_file_exists(ca))
        rc = gm_http_trust_set(o->url, ca, NULL, err);
    else if (rc == 0)
        rc = cli_na_trust(o->url, o->tls_ca, o->tls_pin, NULL, err);
    return rc;
}

static void print_json(const json_t *v)
{
    char *t = json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (t)
        printf("%s\n", t);
    free(t);
}

static int do_invite(const cli_args *a, admin_opts *o)
{
    const char *roles[MAX_ROLES];
    size_t n = cli_all(a, "role", roles, MAX_ROLES);
    long long hours, maxv;
    if (cli_int(a, "hours", 1, 24 * 3660, 24, &hours) || cli_int(a, "max-validity-hours", 1, 24 * 3660, 168, &maxv))
        return 2;
    if (n > MAX_ROLES)
        return cli_usage("admin invite: at most %d roles", MAX_ROLES);
    if (n == 0)
        return cli_usage("admin invite: give at least one --role (e.g. --role finance)");
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        char role[256];
        snprintf(role, sizeof role, "%s%s", strncmp(roles[i], "role:", 5) ? "role:" : "", roles[i]);
        json_array_append_new(arr, json_string(role));
    }
    json_t *body = json_pack("{s:o,s:I,s:I}", "roles", arr, "token_expiry_hours", (json_int_t)hours,
                             "max_validity_hours", (json_int_t)maxv);
    gm_error err = {0};
    json_t *resp = NULL;
    int rc = load_operator(o, &err);
    if (rc == 0)
        rc = gm_na_admin_call(o->url, &o->op, "POST", "/admin/invite", body, 0, NULL, &resp, &err);
    json_decref(body);
    gm_na_invite_answer inv;
    if (rc == 0 && (rc = gm_na_invite_answer_check(resp, &inv, &err)) != 0)
        json_decref(resp);
    if (rc != 0)
        return cli_fail("admin invite", &err);
    if (o->json) {
        print_json(resp);
    } else {
        char safe[300];
        printf("%s\n", cli_safe(inv.token, safe, sizeof safe));
        /* an NA like the Python reference's answers only token_id and expires_at */
        fprintf(stderr, "invite for %s expires %s", inv.first_role ? inv.first_role : "the roles asked for",
                inv.expires_at);
        if (inv.max_validity_hours > 0)
            fprintf(stderr, "; certificates valid up to %lld h", (long long)inv.max_validity_hours);
        fprintf(stderr, ". Give the token to the node:\n  genesis-mesh join --na %s --token <token>\n", o->url);
    }
    json_decref(resp);
    return 0;
}

static int do_revoke(const cli_args *a, admin_opts *o)
{
    const char *cert_id = cli_str(a, "cert-id", NULL), *node_key = cli_str(a, "node-key", NULL),
               *reason = cli_str(a, "reason", NULL);
    if (!cert_id == !node_key)
        return cli_usage("admin revoke: give exactly one of --cert-id or --node-key");
    if (!reason || !gm_crl_reason_valid(reason))
        return cli_usage("admin revoke: --reason must be key_compromise, cessation_of_operation, superseded or "
                         "unspecified");
    json_t *body = json_pack("{s:s,s:s}", cert_id ? "cert_id" : "node_public_key", cert_id ? cert_id : node_key,
                             "reason", reason);
    gm_error err = {0};
    json_t *resp = NULL;
    int rc = load_operator(o, &err);
    if (rc == 0)
        rc = gm_na_admin_call(o->url, &o->op, "POST", "/admin/revoke", body, 0, NULL, &resp, &err);
    json_decref(body);
    gm_na_revoke_answer rev;
    if (rc == 0 && (rc = gm_na_revoke_answer_check(resp, &rev, &err)) != 0)
        json_decref(resp);
    if (rc != 0)
        return cli_fail("admin revoke", &err);
    if (o->json) {
        print_json(resp);
    } else {
        char safe[300];
        for (size_t i = 0; i < json_array_size(rev.revoked); i++)
            printf("revoked %s\n", cli_safe(json_string_value(json_array_get(rev.revoked, i)), safe, sizeof safe));
        /* an NA like the Python reference's answers only how many */
        if (!rev.revoked)
            printf("revoked %lld certificate(s)\n", (long long)rev.count);
        printf("CRL sequence %lld\n", (long long)rev.sequence);
    }
    json_decref(resp);
    return 0;
}

/* wide: whole node keys (44 characters) instead of their first 12. */
static void print_nodes_table(const json_t *nodes, int wide)
{
    printf("%-36s  %-*s  %-24s  %-20s  %-20s  %s\n", "CERT ID", wide ? 44 : 14, "NODE KEY", "ROLES", "EXPIRES",
           "LAST SEEN", "STATUS");
    for (size_t i = 0; i < json_array_size(nodes); i++) {
        const json_t *n = json_array_get(nodes, i);
        char roles[256] = "";
        const json_t *rs = json_object_get(n, "roles");
        for (size_t j = 0; j < json_array_size(rs); j++) {
            size_t l = strlen(roles);
            snprintf(roles + l, sizeof roles - l, "%s%s", j ? "," : "", json_string_value(json_array_get(rs, j)));
        }
        const char *status = json_string_value(json_object_get(n, "status"));
        const char *reason = json_string_value(json_object_get(n, "reason"));
        char st[128];
        snprintf(st, sizeof st, "%s%s%s%s%s", status ? status : "?", reason ? " (" : "", reason ? reason : "",
                 reason ? ")" : "", json_is_true(json_object_get(n, "key_blocked")) ? " [key blocked]" : "");
        const char *seen = json_string_value(json_object_get(n, "last_heartbeat"));
        const char *key = json_string_value(json_object_get(n, "node_public_key"));
        if (wide)
            printf("%-36s  %-44s  %-24s  %-20s  %-20s  %s\n", json_string_value(json_object_get(n, "cert_id")), key,
                   roles, json_string_value(json_object_get(n, "expires_at")), seen ? seen : "never", st);
        else
            printf("%-36s  %.12s..  %-24s  %-20s  %-20s  %s\n", json_string_value(json_object_get(n, "cert_id")), key,
                   roles, json_string_value(json_object_get(n, "expires_at")), seen ? seen : "never", st);
    }
    if (json_array_size(nodes) == 0)
        printf("(no certificates issued yet)\n");
}

static int do_nodes(const cli_args *a, admin_opts *o)
{
    const char *node_key = cli_str(a, "node-key", NULL);
    gm_error err = {0};
    json_t *resp = NULL;
    char path[512] = "/admin/nodes";
    if (node_key) {
        uint8_t pk[GM_PK_LEN];
        if (gm_pk_decode(node_key, pk, &err) != 0)
            return cli_fail("admin nodes: --node-key", &err);
        /* base64 '+' and '/' must be escaped in a query string */
        size_t l = strlen(path);
        l += (size_t)snprintf(path + l, sizeof path - l, "?node_public_key=");
        for (const char *p = node_key; *p && l + 4 < sizeof path; p++)
            l += (size_t)(*p == '+' || *p == '/' || *p == '=' ? snprintf(path + l, sizeof path - l, "%%%02X", *p)
                                                               : snprintf(path + l, sizeof path - l, "%c", *p));
    }
    int rc = load_operator(o, &err);
    if (rc == 0)
        rc = gm_na_admin_call(o->url, &o->op, "GET", path, NULL, 0, NULL, &resp, &err);
    if (rc == 0 && (rc = gm_na_nodes_answer_check(resp, &err)) != 0)
        json_decref(resp);
    if (rc != 0)
        return cli_fail("admin nodes", &err);
    if (o->json)
        print_json(resp);
    else
        print_nodes_table(json_object_get(resp, "nodes"), cli_has(a, "wide"));
    json_decref(resp);
    return 0;
}

static int do_clear_key(const cli_args *a, admin_opts *o)
{
    const char *node_key = cli_str(a, "node-key", NULL);
    if (!node_key)
        return cli_usage("admin clear-key: --node-key is required");
    gm_error err = {0};
    json_t *resp = NULL, *body = json_pack("{s:s}", "node_public_key", node_key);
    int rc = load_operator(o, &err);
    if (rc == 0)
        rc = gm_na_admin_call(o->url, &o->op, "POST", "/admin/clear-key", body, 0, NULL, &resp, &err);
    json_decref(body);
    if (rc == 0 && (rc = gm_na_clear_key_answer_check(resp, &err)) != 0)
        json_decref(resp);
    if (rc != 0)
        return cli_fail("admin clear-key", &err);
    if (o->json)
        print_json(resp);
    else
        printf("cleared the key_compromise block of %s; it can join again with a new invite\n", node_key);
    json_decref(resp);
    return 0;
}

static int do_request(const cli_args *a, admin_opts *o)
{
    const char *method = a->pos[0], *path = a->pos[1], *body_text = cli_str(a, "body", NULL),
               *ts = cli_str(a, "timestamp", NULL), *nonce = cli_str(a, "nonce", NULL);
    if (!method || !path || path[0] != '/')
        return cli_usage("admin request: METHOD and PATH (starting with /) are required");
    json_t *body = NULL;
    if (body_text) {
        json_error_t je;
        body = json_loads(body_text, JSON_REJECT_DUPLICATES, &je);
        if (!json_is_object(body)) {
            json_decref(body);
            return cli_usage("admin request: --body must be a JSON object (%s)", je.text);
        }
    }
    gm_error err = {0};
    json_t *resp = NULL;
    int status = 0;
    int rc = load_operator(o, &err);
    if (rc == 0)
        rc = gm_na_admin_call_ex(o->url, &o->op, method, path, body, ts, nonce, 0, &status, &resp, &err);
    json_decref(body);
    if (status)
        fprintf(stderr, "HTTP %d\n", status);
    if (rc != 0)
        return cli_fail("admin request", &err);
    if (resp)
        print_json(resp);
    json_decref(resp);
    return 0;
}

static int do_policy_set(const cli_args *a, admin_opts *o)
{
    const char *file = a->n_pos == 1 ? a->pos[0] : NULL;
    if (!file)
        return cli_usage("admin policy set: give the rules FILE");
    gm_error err = {0};
    char *text = NULL;
    size_t len;
    json_t *rules = NULL, *resp = NULL;
    /* Check locally first so a mistake names its line before anything is signed. */
    int rc = gm_file_read(file, GM_POLICY_MAX_BYTES, &text, &len, &err);
    if (rc == 0 && (rc = gm_policy_rules_parse(text, len, &rules, &err)) != 0)
        gm_error_prefix(&err, "%s", file);
    json_decref(rules);
    json_t *body = rc == 0 ? json_pack("{s:s%}", "rules", text, len) : NULL;
    free(text);
    if (rc == 0 && !body)
        rc = gm_error_set(&err, GM_EFORMAT, "%s is not UTF-8 text", file);
    if (rc == 0)
        rc = load_operator(o, &err);
    if (rc == 0)
        rc = gm_na_admin_call(o->url, &o->op, "POST", "/admin/policy", body, 0, NULL, &resp, &err);
    json_decref(body);
    if (rc != 0)
        return cli_fail("admin policy set", &err);
    if (o->json)
        print_json(resp);
    else
        printf("access policy sequence %lld published\n", (long long)json_integer_value(json_object_get(resp, "sequence")));
    json_decref(resp);
    return 0;
}

/* admin genesis publish --file F: hand the root-signed successor genesis block to the NA. */
static int do_genesis_publish(const cli_args *a, admin_opts *o)
{
    const char *file = cli_str(a, "file", NULL);
    if (!file)
        return cli_usage("admin genesis publish: --file FILE (the signed successor from 'genesis rotate') is required");
    gm_error err = {0};
    gm_genesis g;
    json_t *resp = NULL, *body = NULL;
    /* Parsed here first: the body carries the normalized block, as the root signed it. */
    int rc = gm_genesis_load(file, &g, &err);
    if (rc == 0 && (rc = gm_genesis_verify(&g, &err)) != 0)
        gm_error_prefix(&err, "%s", file);
    if (rc == 0)
        body = json_pack("{s:O}", "genesis", g.doc);
    gm_genesis_free(&g);
    if (rc == 0)
        rc = load_operator(o, &err);
    if (rc == 0)
        rc = gm_na_admin_call(o->url, &o->op, "POST", "/admin/genesis", body, 0, NULL, &resp, &err);
    json_decref(body);
    if (rc != 0)
        return cli_fail("admin genesis publish", &err);
    if (o->json)
        print_json(resp);
    else
        printf("successor genesis %s published (NA key %s, valid %s .. %s)\n"
               "the NA serves it at GET /genesis?next; nodes fetch and gossip it. When they all hold it, restart the\n"
               "NA with the new NA key (docs/operator-guide.md, \"Rotating the NA key\").\n",
               json_string_value(json_object_get(resp, "network_version")),
               json_string_value(json_object_get(resp, "na_public_key")),
               json_string_value(json_object_get(resp, "valid_from")), json_string_value(json_object_get(resp, "valid_to")));
    json_decref(resp);
    return 0;
}

/* The operator key is loaded by each subcommand and wiped here. */
static int with_operator(const cli_args *a, int (*fn)(const cli_args *, admin_opts *))
{
    admin_opts o;
    memset(&o, 0, sizeof o);
    o.dir = cli_str(a, "dir", ".");
    o.na = cli_str(a, "na", NULL);
    o.tls_ca = cli_str(a, "na-ca", NULL);
    o.tls_pin = cli_str(a, "na-pin", NULL);
    o.json = cli_has(a, "json");
    int rc = fn(a, &o);
    gm_signer_wipe(&o.op);
    return rc;
}

static int run_invite(const cli_args *a)
{
    return with_operator(a, do_invite);
}

static int run_revoke(const cli_args *a)
{
    return with_operator(a, do_revoke);
}

static int run_nodes(const cli_args *a)
{
    return with_operator(a, do_nodes);
}

static int run_clear_key(const cli_args *a)
{
    return with_operator(a, do_clear_key);
}

static int run_request(const cli_args *a)
{
    return with_operator(a, do_request);
}

/* The console's address with its token in the fragment (browsers never send a fragment, so
 * the token stays out of every server and proxy log). */
static int run_console_url(const cli_args *a)
{
    const char *dir = cli_str(a, "dir", "."), *na = cli_str(a, "na", NULL);
    gm_error err = {0};
    gm_na_config cfg;
    char token[GM_NA_CONSOLE_TOKEN_LEN + 1];
    if (!na) {
        if (gm_na_config_load(&cfg, dir, &err) != 0)
            return cli_fail("admin console-url", &err);
        na = cfg.na_url;
    }
    if (strncmp(na, "https://", 8) != 0 && strncmp(na, "http://", 7) != 0)
        return cli_usage("admin console-url: --na must be an http:// or https:// URL, not '%s'", na);
    if (gm_na_console_token(dir, 0, token, &err) != 0)
        return cli_fail("admin console-url", &err);
    size_t n = strlen(na);
    while (n > 0 && na[n - 1] == '/')
        n--;
    printf("%.*s/console#token=%s\n", (int)n, na, token);
    sodium_memzero(token, sizeof token);
    if (!strncmp(na, "https://", 8))
        fprintf(stderr, "Open it in a browser. The NA's certificate is its own (%s/tls.crt): the browser asks once "
                        "whether to trust it.\n",
                dir);
    return 0;
}

#define ADMIN_COMMON                                                                                     \
    {"dir", "D", "operator directory holding operator.key and config.json (default .)"},                 \
        {"na", "URL", "NA URL (default: na_url of D/config.json)"},                                        \
        {"na-ca", "FILE", "verify the NA's TLS certificate with this CA file (default $GM_NA_CA, else D's tls.crt)"}, \
        {"na-pin", "sha256//...", "verify the NA by its TLS key pin (default $GM_NA_PIN)"},               \
        {"json", NULL, "print the NA's JSON answer"}

static const cli_opt invite_opts[] = {
    {"role", "R", "role of the certificate, repeatable; a bare 'finance' means 'role:finance'"},
    {"hours", "H", "lifetime of the token in hours, 1..87840 (default 24)"},
    {"max-validity-hours", "H", "longest certificate the token can get, 1..87840 (default 168)"},
    ADMIN_COMMON,
    {NULL},
};
static const cli_cmd admin_invite = {
    "invite", "one-time enrollment token for a node",
    "--role R [--role R ...] [--hours H] [--max-validity-hours H] [--dir D] [--na URL] [--json]",
    "Prints the token; give it to the node for 'genesis-mesh join'.\n", run_invite, invite_opts, 0, NULL};

static const cli_opt revoke_opts[] = {
    {"cert-id", "ID", "the certificate to revoke"},
    {"node-key", "B64", "revoke every certificate of this node key"},
    {"reason", "R", "key_compromise | cessation_of_operation | superseded | unspecified"},
    ADMIN_COMMON,
    {NULL},
};
static const cli_cmd admin_revoke = {
    "revoke", "revoke a certificate or a node key (new CRL)",
    "(--cert-id ID | --node-key B64) --reason R [--dir D] [--na URL] [--json]",
    "key_compromise also blocks the node key until 'admin clear-key'.\n", run_revoke, revoke_opts, 0, NULL};

static const cli_opt nodes_opts[] = {
    {"node-key", "B64", "only the certificates of this node key"},
    {"wide", NULL, "show whole node keys (default: their first 12 characters)"},
    ADMIN_COMMON,
    {NULL},
};
static const cli_cmd admin_nodes = {"nodes", "every certificate with its state (active, expired, revoked)",
                                    "[--node-key B64] [--wide] [--dir D] [--na URL] [--json]", NULL, run_nodes, nodes_opts, 0,
                                    NULL};

static const cli_opt clear_key_opts[] = {
    {"node-key", "B64", "the blocked node key"},
    ADMIN_COMMON,
    {NULL},
};
static const cli_cmd admin_clear_key = {
    "clear-key", "lift the key_compromise block of a node key", "--node-key B64 [--dir D] [--na URL] [--json]",
    "The node still needs a new invite to join again.\n", run_clear_key, clear_key_opts, 0, NULL};

static const cli_opt request_opts[] = {
    {"body", "JSON", "the request body (a JSON object)"},
    {"timestamp", "T", "signed timestamp to use instead of now (testing)"},
    {"nonce", "N", "signed nonce to use instead of a random one (testing)"},
    ADMIN_COMMON,
    {NULL},
};
static const cli_cmd admin_request = {
    "request", "send any signed admin request and print the JSON answer (debugging)",
    "METHOD PATH [--body JSON] [--timestamp T] [--nonce N] [--dir D] [--na URL]", NULL, run_request, request_opts, 2,
    NULL};

static int run_policy_set(const cli_args *a)
{
    return with_operator(a, do_policy_set);
}

static const cli_opt policy_set_opts[] = {ADMIN_COMMON, {NULL}};
static const cli_cmd admin_policy_set = {
    "set", "publish the access policy of a rules file (the NA signs the next sequence)", "FILE [--dir D] [--na URL] [--json]",
    "The rules are checked here first (a mistake names its line); format: docs/access-policy.md.\n"
    "Nodes pick the new policy up within seconds.\n",
    run_policy_set, policy_set_opts, 1, NULL};
static const cli_cmd *const admin_policy_subs[] = {&admin_policy_set, NULL};
static const cli_cmd admin_policy = {"policy", "the access policy: set FILE", NULL, NULL, NULL, NULL, 0,
                                     admin_policy_subs};

static int run_genesis_publish(const cli_args *a)
{
    return with_operator(a, do_genesis_publish);
}

static const cli_opt genesis_publish_opts[] = {
    {"file", "FILE", "the signed successor genesis block ('genesis rotate --out')"},
    ADMIN_COMMON,
    {NULL},
};
static const cli_cmd admin_genesis_publish = {
    "publish", "hand a successor genesis block (NA key rotation) to the NA", "--file FILE [--dir D] [--na URL] [--json]",
    "The NA checks that it is a valid successor of its current block (same root key and network,\n"
    "higher network_version, new NA key, overlapping window), keeps it and serves it at\n"
    "GET /genesis?next. It takes effect when the NA is restarted with the new NA key.\n",
    run_genesis_publish, genesis_publish_opts, 0, NULL};
static const cli_cmd *const admin_genesis_subs[] = {&admin_genesis_publish, NULL};
static const cli_cmd admin_genesis = {"genesis", "NA key rotation: publish FILE", NULL, NULL, NULL, NULL, 0,
                                      admin_genesis_subs};

static const cli_opt console_url_opts[] = {
    {"dir", "D", "the NA directory holding console.token and config.json (default .)"},
    {"na", "URL", "the NA's address as the browser reaches it (default: na_url of D/config.json)"},
    {NULL},
};
static const cli_cmd admin_console_url = {
    "console-url", "print the web console's address with its access token", "[--dir D] [--na URL]",
    "The token is in the fragment (#token=...), which the browser keeps to itself: it never reaches\n"
    "a log. Anyone holding the address sees the nodes, invites and CRL: treat it as a password.\n",
    run_console_url, console_url_opts, 0, NULL};

static const cli_cmd *const admin_subs[] = {&admin_invite, &admin_revoke, &admin_nodes, &admin_clear_key,
                                            &admin_policy, &admin_genesis, &admin_console_url, &admin_request, NULL};
const cli_cmd cli_admin = {"admin", "invite | revoke | nodes | clear-key | policy set | genesis publish | console-url: operator requests to the NA", NULL,
                           "Operator requests to the NA, signed with the operator key of an operator directory.\n",
                           NULL, NULL, 0, admin_subs};
