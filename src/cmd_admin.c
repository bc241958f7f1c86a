/* genesis-mesh admin: operator requests to the NA, signed with the operator key of an
 * operator directory (operator.key, and config.json for the NA URL). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "gm/crl.h"
#include "gm/keys.h"
#include "gm/na_client.h"
#include "gm/policy.h"
#include "gm/util.h"

#define MAX_ROLES 32

static void usage(FILE *f)
{
    fprintf(f,
            "usage: genesis-mesh admin invite --role R [--role R ...] [--hours H] [--max-validity-hours H] [--json]\n"
            "       genesis-mesh admin revoke (--cert-id ID | --node-key B64) --reason R [--json]\n"
            "       genesis-mesh admin nodes [--node-key B64] [--json]\n"
            "       genesis-mesh admin clear-key --node-key B64\n"
            "       genesis-mesh admin policy set FILE [--json]\n"
            "       genesis-mesh admin request METHOD PATH [--body JSON] [--timestamp T] [--nonce N]\n"
            "common options: [--dir D] (operator directory, default .) [--na URL] (default: config.json na_url)\n"
            "\n"
            "invite     one-time enrollment token; a bare role 'finance' means 'role:finance'.\n"
            "           --hours: token lifetime (default 24); --max-validity-hours: longest certificate (168).\n"
            "revoke     reason: key_compromise | cessation_of_operation | superseded | unspecified.\n"
            "           key_compromise also blocks the node key until 'admin clear-key'.\n"
            "nodes      every certificate with its state (active, expired, revoked).\n"
            "clear-key  lift the key_compromise block of a node key (it still needs a new invite).\n"
            "policy set the access policy to the rules in FILE (docs/access-policy.md); the NA signs\n"
            "           it as the next sequence and nodes pick it up within seconds.\n"
            "request    send any signed admin request and print the JSON answer (debugging).\n");
}

typedef struct admin_opts {
    const char *dir, *na;
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
    if (o->na) {
        snprintf(o->url, sizeof o->url, "%s", o->na);
        return 0;
    }
    char *text = NULL;
    size_t len;
    if ((rc = gm_path_join(path, sizeof path, o->dir, "config.json", err)) == 0 &&
        (rc = gm_file_read(path, 256 * 1024, &text, &len, err)) == 0) {
        json_t *cfg = json_loadb(text, len, 0, NULL);
        const char *u = json_string_value(json_object_get(cfg, "na_url"));
        if (u)
            snprintf(o->url, sizeof o->url, "%s", u);
        else
            rc = gm_error_set(err, GM_EFORMAT, "%s has no \"na_url\"; pass --na URL", path);
        json_decref(cfg);
        free(text);
    } else {
        gm_error_prefix(err, "no NA URL (pass --na URL)");
    }
    return rc;
}

/* Common options; returns 1 if argv[*i] was one of them, -1 on a missing value. */
static int common_opt(int argc, char **argv, int *i, admin_opts *o)
{
    int m;
    if ((m = cli_opt(argc, argv, i, "--dir", &o->dir)) || (m = cli_opt(argc, argv, i, "--na", &o->na)))
        return m;
    if (cli_flag(argv, *i, "--json")) {
        o->json = 1;
        return 1;
    }
    return 0;
}

static void print_json(const json_t *v)
{
    char *t = json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (t)
        printf("%s\n", t);
    free(t);
}

static int parse_hours(const char *s, const char *what, long long *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*s == '\0' || *end || v < 1 || v > 24 * 3660)
        return cli_usage("admin: %s must be a whole number of hours (1..%d)", what, 24 * 3660);
    *out = v;
    return 0;
}

static int do_invite(int argc, char **argv, admin_opts *o)
{
    const char *roles[MAX_ROLES], *v;
    size_t n = 0;
    long long hours = 24, maxv = 168;
    for (int i = 1; i < argc; i++) {
        int m;
        if ((m = common_opt(argc, argv, &i, o))) {
            if (m < 0)
                return cli_usage("admin invite: %s needs a value", argv[i]);
        } else if ((m = cli_opt(argc, argv, &i, "--role", &v))) {
            if (m < 0)
                return cli_usage("admin invite: --role needs a value");
            if (n == MAX_ROLES)
                return cli_usage("admin invite: at most %d roles", MAX_ROLES);
            roles[n++] = v;
        } else if ((m = cli_opt(argc, argv, &i, "--hours", &v))) {
            if (m < 0 || parse_hours(v, "--hours", &hours))
                return 2;
        } else if ((m = cli_opt(argc, argv, &i, "--max-validity-hours", &v))) {
            if (m < 0 || parse_hours(v, "--max-validity-hours", &maxv))
                return 2;
        } else {
            return cli_usage("admin invite: unknown option '%s'", argv[i]);
        }
    }
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
    if (rc != 0)
        return cli_fail("admin invite", &err);
    if (o->json) {
        print_json(resp);
    } else {
        printf("%s\n", json_string_value(json_object_get(resp, "token")));
        fprintf(stderr, "invite for %s expires %s; certificates valid up to %lld h. Give the token to the node:\n"
                        "  genesis-mesh join --na %s --token <token>\n",
                json_string_value(json_array_get(json_object_get(resp, "roles"), 0)),
                json_string_value(json_object_get(resp, "expires_at")),
                (long long)json_integer_value(json_object_get(resp, "max_validity_hours")), o->url);
    }
    json_decref(resp);
    return 0;
}

static int do_revoke(int argc, char **argv, admin_opts *o)
{
    const char *cert_id = NULL, *node_key = NULL, *reason = NULL;
    for (int i = 1; i < argc; i++) {
        int m;
        if ((m = common_opt(argc, argv, &i, o)) || (m = cli_opt(argc, argv, &i, "--cert-id", &cert_id)) ||
            (m = cli_opt(argc, argv, &i, "--node-key", &node_key)) ||
            (m = cli_opt(argc, argv, &i, "--reason", &reason))) {
            if (m < 0)
                return cli_usage("admin revoke: %s needs a value", argv[i]);
        } else {
            return cli_usage("admin revoke: unknown option '%s'", argv[i]);
        }
    }
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
    if (rc != 0)
        return cli_fail("admin revoke", &err);
    if (o->json) {
        print_json(resp);
    } else {
        const json_t *ids = json_object_get(resp, "revoked");
        for (size_t i = 0; i < json_array_size(ids); i++)
            printf("revoked %s\n", json_string_value(json_array_get(ids, i)));
        printf("CRL sequence %lld\n", (long long)json_integer_value(json_object_get(resp, "sequence")));
    }
    json_decref(resp);
    return 0;
}

static void print_nodes_table(const json_t *nodes)
{
    printf("%-36s  %-14s  %-24s  %-20s  %s\n", "CERT ID", "NODE KEY", "ROLES", "EXPIRES", "STATUS");
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
        printf("%-36s  %.12s..  %-24s  %-20s  %s\n", json_string_value(json_object_get(n, "cert_id")),
               json_string_value(json_object_get(n, "node_public_key")), roles,
               json_string_value(json_object_get(n, "expires_at")), st);
    }
    if (json_array_size(nodes) == 0)
        printf("(no certificates issued yet)\n");
}

static int do_nodes(int argc, char **argv, admin_opts *o)
{
    const char *node_key = NULL;
    for (int i = 1; i < argc; i++) {
        int m;
        if ((m = common_opt(argc, argv, &i, o)) || (m = cli_opt(argc, argv, &i, "--node-key", &node_key))) {
            if (m < 0)
                return cli_usage("admin nodes: %s needs a value", argv[i]);
        } else {
            return cli_usage("admin nodes: unknown option '%s'", argv[i]);
        }
    }
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
    if (rc != 0)
        return cli_fail("admin nodes", &err);
    if (o->json)
        print_json(resp);
    else
        print_nodes_table(json_object_get(resp, "nodes"));
    json_decref(resp);
    return 0;
}

static int do_clear_key(int argc, char **argv, admin_opts *o)
{
    const char *node_key = NULL;
    for (int i = 1; i < argc; i++) {
        int m;
        if ((m = common_opt(argc, argv, &i, o)) || (m = cli_opt(argc, argv, &i, "--node-key", &node_key))) {
            if (m < 0)
                return cli_usage("admin clear-key: %s needs a value", argv[i]);
        } else {
            return cli_usage("admin clear-key: unknown option '%s'", argv[i]);
        }
    }
    if (!node_key)
        return cli_usage("admin clear-key: --node-key is required");
    gm_error err = {0};
    json_t *resp = NULL, *body = json_pack("{s:s}", "node_public_key", node_key);
    int rc = load_operator(o, &err);
    if (rc == 0)
        rc = gm_na_admin_call(o->url, &o->op, "POST", "/admin/clear-key", body, 0, NULL, &resp, &err);
    json_decref(body);
    if (rc != 0)
        return cli_fail("admin clear-key", &err);
    if (o->json)
        print_json(resp);
    else
        printf("cleared the key_compromise block of %s; it can join again with a new invite\n", node_key);
    json_decref(resp);
    return 0;
}

static int do_request(int argc, char **argv, admin_opts *o)
{
    const char *method = NULL, *path = NULL, *body_text = NULL, *ts = NULL, *nonce = NULL;
    for (int i = 1; i < argc; i++) {
        int m;
        if ((m = common_opt(argc, argv, &i, o)) || (m = cli_opt(argc, argv, &i, "--body", &body_text)) ||
            (m = cli_opt(argc, argv, &i, "--timestamp", &ts)) || (m = cli_opt(argc, argv, &i, "--nonce", &nonce))) {
            if (m < 0)
                return cli_usage("admin request: %s needs a value", argv[i]);
        } else if (argv[i][0] != '-' && !method) {
            method = argv[i];
        } else if (argv[i][0] != '-' && !path) {
            path = argv[i];
        } else {
            return cli_usage("admin request: unexpected argument '%s'", argv[i]);
        }
    }
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

static int do_policy(int argc, char **argv, admin_opts *o)
{
    const char *file = NULL;
    if (argc < 2 || strcmp(argv[1], "set") != 0)
        return cli_usage("admin policy: the only subcommand is 'set FILE'");
    for (int i = 2; i < argc; i++) {
        int m = common_opt(argc, argv, &i, o);
        if (m < 0)
            return cli_usage("admin policy set: %s needs a value", argv[i]);
        if (m == 0 && (argv[i][0] == '-' || file))
            return cli_usage("admin policy set: unknown option '%s'", argv[i]);
        if (m == 0)
            file = argv[i];
    }
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

int cmd_admin(int argc, char **argv)
{
    if (argc < 2 || cli_flag(argv, 1, "--help") || cli_flag(argv, 1, "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    admin_opts o;
    memset(&o, 0, sizeof o);
    o.dir = ".";
    int rc;
    const char *sub = argv[1];
    if (!strcmp(sub, "invite"))
        rc = do_invite(argc - 1, argv + 1, &o);
    else if (!strcmp(sub, "revoke"))
        rc = do_revoke(argc - 1, argv + 1, &o);
    else if (!strcmp(sub, "nodes"))
        rc = do_nodes(argc - 1, argv + 1, &o);
    else if (!strcmp(sub, "clear-key"))
        rc = do_clear_key(argc - 1, argv + 1, &o);
    else if (!strcmp(sub, "policy"))
        rc = do_policy(argc - 1, argv + 1, &o);
    else if (!strcmp(sub, "request"))
        rc = do_request(argc - 1, argv + 1, &o);
    else {
        usage(stderr);
        rc = cli_usage("admin: unknown subcommand '%s'", sub);
    }
    gm_signer_wipe(&o.op);
    return rc;
}
