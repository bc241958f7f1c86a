/* genesis-mesh policy create | verify: the network policy manifest (the Python reference's
 * PolicyManifest, served by the NA at GET /policy; include/gm/netpolicy.h). Not the access
 * policy of 'policy show' (cmd_policy.c, GET /access-policy). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "cli.h"
#include "gm/genesis.h"
#include "gm/http_client.h"
#include "gm/netpolicy.h"
#include "gm/util.h"

#define NETPOLICY_FILE "network-policy.json"

int cli_netpolicy_write(const char *path, const gm_signer *na, const json_t *settings, gm_time now, gm_error *err)
{
    gm_netpolicy p;
    int rc = gm_netpolicy_issue(&p, na, settings, now, err);
    if (rc != 0)
        return rc;
    char *text = gm_netpolicy_dump(&p, 1);
    gm_netpolicy_free(&p);
    if (!text)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    size_t n = strlen(text);
    char *t = realloc(text, n + 2);
    if (t) {
        text = t;
        memcpy(text + n, "\n", 2);
    }
    rc = gm_file_write_atomic(path, text, strlen(text), 0644, err);
    free(text);
    return rc;
}

static int load_genesis(const char *path, gm_genesis *g, gm_error *err)
{
    int rc = gm_genesis_load(path, g, err);
    if (rc == 0 && (rc = gm_genesis_verify(g, err)) != 0) {
        gm_error_prefix(err, "%s", path);
        gm_genesis_free(g);
    }
    return rc;
}

/* settings from the options, over the network's defaults */
static int settings_from(const cli_args *a, const gm_genesis *g, json_t **out)
{
    const char *v, *vals[CLI_MAX_VALUES];
    const char *version = json_string_value(json_object_get(g->doc, "network_version"));
    json_t *s = gm_netpolicy_default_settings(g->network_name, version ? version : "v0");
    long long n;
    if ((v = cli_str(a, "policy-id", NULL)))
        json_object_set_new(s, "policy_id", json_string(v));
    if ((v = cli_str(a, "min-client-version", NULL)))
        json_object_set_new(s, "min_client_version", json_string(v));
    size_t k = cli_all(a, "port", vals, CLI_MAX_VALUES);
    if (k > 0) {
        json_t *ports = json_array();
        for (size_t i = 0; i < k; i++) {
            if (cli_parse_int("policy create", "--port", vals[i], 0, 65535, &n) != 0) {
                json_decref(ports);
                json_decref(s);
                return 2;
            }
            json_array_append_new(ports, json_integer(n));
        }
        json_object_set_new(s, "allowed_ports", ports);
    }
    static const char *const lists[][2] = {{"service", "allowed_services"}, {"transport", "preferred_transports"}};
    for (size_t l = 0; l < 2; l++) {
        if ((k = cli_all(a, lists[l][0], vals, CLI_MAX_VALUES)) == 0)
            continue;
        json_t *arr = json_array();
        for (size_t i = 0; i < k; i++)
            json_array_append_new(arr, json_string(vals[i]));
        json_object_set_new(l == 0 ? s : json_object_get(s, "routing"), lists[l][1], arr);
    }
    if (cli_int(a, "max-hops", 0, GM_NETPOLICY_MAX_HOPS, 6, &n) != 0) {
        json_decref(s);
        return 2;
    }
    json_object_set_new(json_object_get(s, "routing"), "max_hops", json_integer(n));
    *out = s;
    return 0;
}

static int do_create(const cli_args *a)
{
    const char *dir = cli_str(a, "dir", ".");
    char gpath[4200], base[4200], out[4200];
    gm_error err = {0};
    gm_genesis g;
    gm_signer na;
    json_t *settings = NULL;
    if (gm_path_join(gpath, sizeof gpath, dir, "genesis.json", &err) || gm_path_join(base, sizeof base, dir, "na", &err) ||
        gm_path_join(out, sizeof out, dir, NETPOLICY_FILE, &err))
        return cli_fail("policy create", &err);
    const char *path = cli_str(a, "out", out);
    if (gm_file_exists(path) && !cli_has(a, "force")) {
        gm_error_set(&err, GM_EEXIST, "%s already exists (use --force to replace it; the NA reads it when it starts)",
                     path);
        return cli_fail("policy create", &err);
    }
    if (load_genesis(gpath, &g, &err) != 0)
        return cli_fail("policy create", &err);
    int rc = settings_from(a, &g, &settings);
    if (rc != 0) {
        gm_genesis_free(&g);
        return rc;
    }
    rc = gm_signer_load(&na, base, "na-local", &err);
    if (rc == 0 && sodium_memcmp(na.pk, g.na_pk, GM_PK_LEN) != 0)
        rc = gm_error_set(&err, GM_EDENIED, "%s.key is not the NA key of %s", base, gpath);
    if (rc == 0)
        rc = cli_netpolicy_write(path, &na, settings, gm_time_now(), &err);
    if (rc == 0)
        printf("network policy %s written to %s, signed by the NA key (%s)\n",
               json_string_value(json_object_get(settings, "policy_id")), path, na.key_id);
    if (rc == 0 && strcmp(path, out) == 0)
        printf("the NA serves it at GET /policy after its next start\n");
    gm_signer_wipe(&na);
    json_decref(settings);
    gm_genesis_free(&g);
    return rc == 0 ? 0 : cli_fail("policy create", &err);
}

static void print_list(const char *label, const json_t *arr)
{
    printf("  %-20s", label);
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *v = json_array_get(arr, i);
        char safe[300];
        if (json_is_integer(v))
            printf("%s%lld", i ? ", " : "", (long long)json_integer_value(v));
        else
            printf("%s%s", i ? ", " : "", cli_safe(json_string_value(v), safe, sizeof safe));
    }
    printf("%s\n", json_array_size(arr) ? "" : "(none)");
}

static int do_verify(const cli_args *a)
{
    const char *dir = cli_str(a, "dir", "."), *na_url = cli_str(a, "na", NULL);
    char gpath[4200], path[4200];
    gm_error err = {0};
    gm_genesis g;
    gm_netpolicy p;
    if (a->n_pos > 0 && na_url)
        return cli_usage("policy verify: give a FILE or --na URL, not both");
    if (gm_path_join(gpath, sizeof gpath, dir, "genesis.json", &err) ||
        gm_path_join(path, sizeof path, dir, NETPOLICY_FILE, &err))
        return cli_fail("policy verify", &err);
    int rc;
    if (na_url) {
        char url[1100];
        gm_http_resp resp = {0};
        snprintf(url, sizeof url, "%s/policy", na_url);
        rc = cli_na_trust(na_url, cli_str(a, "na-ca", NULL), cli_str(a, "na-pin", NULL), dir, &err);
        gm_http_req r = {.method = "GET", .url = url, .timeout_ms = 5000, .max_response = GM_NETPOLICY_MAX_BYTES};
        if (rc == 0)
            rc = gm_http_request(&r, &resp, &err);
        if (rc == 0 && resp.status != 200)
            rc = gm_error_set(&err, GM_ENET, "%s answered HTTP %d", url, resp.status);
        if (rc == 0 && (rc = gm_netpolicy_parse(resp.body, resp.len, &p, &err)) != 0)
            gm_error_prefix(&err, "%s", url);
        gm_http_resp_free(&resp);
    } else {
        rc = gm_netpolicy_load(a->n_pos > 0 ? a->pos[0] : path, &p, &err);
    }
    if (rc != 0)
        return cli_fail("policy verify", &err);
    if ((rc = load_genesis(cli_str(a, "genesis", gpath), &g, &err)) != 0) {
        gm_netpolicy_free(&p);
        return cli_fail("policy verify", &err);
    }
    rc = gm_netpolicy_verify(&p, g.na_pk, &err);
    gm_genesis_free(&g);
    if (rc != 0) {
        gm_netpolicy_free(&p);
        return cli_fail("policy verify", &err);
    }
    if (cli_has(a, "json")) {
        char *text = gm_netpolicy_dump(&p, 1);
        printf("%s\n", text ? text : "null");
        free(text);
    } else {
        char ia[GM_TIME_STRLEN], s1[300], s2[300], s3[300];
        const json_t *routing = json_object_get(p.doc, "routing");
        gm_time_format(&p.issued_at, ia);
        printf("network policy %s issued %s by %s: signature verified under the genesis NA key\n",
               cli_safe(p.policy_id, s1, sizeof s1), ia, cli_safe(p.issued_by, s2, sizeof s2));
        printf("  %-20s%s\n", "min client version",
               cli_safe(json_string_value(json_object_get(p.doc, "min_client_version")), s3, sizeof s3));
        print_list("allowed ports", json_object_get(p.doc, "allowed_ports"));
        print_list("allowed services", json_object_get(p.doc, "allowed_services"));
        print_list("transports", json_object_get(routing, "preferred_transports"));
        printf("  %-20s%lld\n", "max hops", (long long)json_integer_value(json_object_get(routing, "max_hops")));
    }
    gm_netpolicy_free(&p);
    return 0;
}

static const cli_opt create_opts[] = {
    {"dir", "D", "the NA directory: signs with D/na.key for D/genesis.json (default .)"},
    {"out", "FILE", "write here instead of D/network-policy.json (what the NA serves)"},
    {"force", NULL, "replace an existing file"},
    {"policy-id", "ID", "the policy id (default policy-<network_name>-<network_version>)"},
    {"min-client-version", "V", "oldest client version the network serves (default 0.1.0)"},
    {"port", "P", "an allowed port, repeatable (default 443 and 8443)"},
    {"service", "NAME", "an allowed service, repeatable (default service-1 and service-2)"},
    {"transport", "NAME", "a preferred transport, repeatable, in order (default quic, wireguard)"},
    {"max-hops", "N", "routing.max_hops, 0..255 (default 6)"},
    {NULL},
};
const cli_cmd cli_policy_create = {
    "create", "sign a network policy manifest (served at GET /policy) with the NA key",
    "[--dir D] [--out FILE] [--force] [--policy-id ID] [--min-client-version V]\n"
    "       [--port P]... [--service NAME]... [--transport NAME]... [--max-hops N]",
    "The network policy manifest is the Python reference's PolicyManifest: ports, services and\n"
    "transports the network expects and the oldest client it serves (docs/na-api.md, GET /policy).\n"
    "It is not the access policy ('policy show', 'admin policy set'). The NA reads\n"
    "D/network-policy.json when it starts ('init' writes the defaults).\n",
    do_create, create_opts, 0, NULL};

static const cli_opt verify_opts[] = {
    {"dir", "D", "a node or NA directory: D/network-policy.json, checked against D/genesis.json (default .)"},
    {"genesis", "FILE", "check against this genesis block instead of D/genesis.json"},
    {"na", "URL", "fetch GET /policy from this NA instead of reading a file"},
    {"na-ca", "FILE", "with --na: verify the NA's TLS certificate with this CA file (default $GM_NA_CA)"},
    {"na-pin", "sha256//...", "with --na: verify the NA by its TLS key pin (default $GM_NA_PIN)"},
    {"json", NULL, "print the normalized document"},
    {NULL},
};
const cli_cmd cli_policy_verify = {
    "verify", "verify a network policy manifest under the genesis NA key and print it",
    "[FILE | --na URL] [--dir D] [--genesis FILE] [--json]",
    "Exit status 0 when the signature verifies under the NA key of the genesis block (itself\n"
    "verified under its root key), 1 otherwise.\n",
    do_verify, verify_opts, 1, NULL};
