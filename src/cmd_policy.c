/* genesis-mesh policy: show the access policy a node or NA directory holds (or the NA
 * serves) and answer "may role R do this?" with the rule that decides. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "gm/genesis.h"
#include "gm/http_client.h"
#include "gm/policy.h"
#include "gm/util.h"

#define MAX_ROLES 32
#define EXIT_DENIED 3

typedef struct policy_src {
    const char *dir, *na, *rules, *tls_ca, *tls_pin;
    int json;
} policy_src;

/* Verify p under D/genesis.json when there is one; 1 verified, 0 no genesis, negative refused. */
static int verify_with_genesis(const policy_src *s, const gm_policy *p, gm_error *err)
{
    char path[4200];
    gm_genesis g;
    char *text = NULL;
    size_t len;
    int rc = gm_path_join(path, sizeof path, s->dir, "genesis.json", err);
    if (rc != 0 || !gm_file_exists(path))
        return 0;
    if ((rc = gm_file_read(path, 1 << 20, &text, &len, err)) != 0)
        return rc;
    rc = gm_genesis_parse(text, len, &g, err);
    free(text);
    if (rc != 0)
        return gm_error_prefix(err, "%s", path);
    rc = gm_policy_verify(p, g.na_pk, err);
    gm_genesis_free(&g);
    return rc == 0 ? 1 : rc;
}

static int load(const policy_src *s, gm_policy *p, int *verified, gm_error *err)
{
    char path[4200], *text = NULL;
    size_t len = 0;
    int rc;
    *verified = 0;
    if (s->rules) {
        /* A draft: sign it with a throwaway key only to reuse the one decision function. */
        json_t *body = NULL;
        gm_signer tmp;
        if ((rc = gm_file_read(s->rules, GM_POLICY_MAX_BYTES, &text, &len, err)) != 0)
            return rc;
        rc = gm_policy_rules_parse(text, len, &body, err);
        free(text);
        if (rc != 0)
            return gm_error_prefix(err, "%s", s->rules);
        if ((rc = gm_signer_generate(&tmp, "draft", err)) == 0)
            rc = gm_policy_issue(p, &tmp, 0, body, gm_time_now(), err);
        gm_signer_wipe(&tmp);
        json_decref(body);
        return rc;
    }
    if (s->na) {
        char url[1100];
        gm_http_resp resp = {0};
        snprintf(url, sizeof url, "%s/access-policy", s->na);
        /* the NA's TLS trust: --na-ca/--na-pin, the environment, or what D's join kept */
        if ((rc = cli_na_trust(s->na, s->tls_ca, s->tls_pin, s->dir, err)) != 0)
            return rc;
        gm_http_req r = {.method = "GET", .url = url, .timeout_ms = 5000, .max_response = GM_POLICY_MAX_BYTES};
        rc = gm_http_request(&r, &resp, err);
        if (rc == 0 && resp.status != 200)
            rc = gm_error_set(err, GM_ENET, "%s answered HTTP %d", url, resp.status);
        if (rc == 0)
            rc = gm_policy_parse(resp.body, resp.len, p, err);
        gm_http_resp_free(&resp);
    } else {
        if ((rc = gm_path_join(path, sizeof path, s->dir, "access-policy.json", err)) != 0)
            return rc;
        if (!gm_file_exists(path))
            return gm_error_set(err, GM_ENOTFOUND,
                                "%s does not exist: this directory holds no access policy yet (a node gets it from "
                                "the NA when it starts; use --na URL to ask the NA)",
                                path);
        if ((rc = gm_file_read(path, GM_POLICY_MAX_BYTES, &text, &len, err)) != 0)
            return rc;
        rc = gm_policy_parse(text, len, p, err);
        free(text);
        if (rc != 0)
            gm_error_prefix(err, "%s", path);
    }
    if (rc != 0)
        return rc;
    int v = verify_with_genesis(s, p, err);
    if (v < 0) {
        gm_policy_free(p);
        return v;
    }
    *verified = v;
    return 0;
}

static void src_from(const cli_args *a, policy_src *s)
{
    s->dir = cli_str(a, "dir", ".");
    s->na = cli_str(a, "na", NULL);
    s->rules = cli_str(a, "rules", NULL);
    s->tls_ca = cli_str(a, "na-ca", NULL);
    s->tls_pin = cli_str(a, "na-pin", NULL);
    s->json = cli_has(a, "json");
}

static int do_show(const cli_args *a)
{
    policy_src src, *s = &src;
    src_from(a, s);
    gm_policy p;
    gm_error err = {0};
    int verified;
    if (load(s, &p, &verified, &err) != 0)
        return cli_fail("policy show", &err);
    if (s->json) {
        char *text = gm_policy_dump(&p, 1);
        printf("%s\n", text ? text : "null");
        free(text);
        gm_policy_free(&p);
        return 0;
    }
    char ia[GM_TIME_STRLEN], safe[400];
    gm_time_format(&p.issued_at, ia);
    printf("access policy sequence %llu (%s), issued %s by %s%s\n", (unsigned long long)p.sequence, p.policy_id, ia,
           cli_safe(p.issuer, safe, sizeof safe), verified ? ", signature verified" : ", signature NOT checked");
    const json_t *rules = json_object_get(p.doc, "rules");
    for (size_t i = 0; i < json_array_size(rules); i++) {
        char *t = gm_policy_rule_text(json_array_get(rules, i));
        printf("  %3zu  %s\n", i + 1, t ? t : "?");
        free(t);
    }
    printf("  default %s\n", p.default_allow ? "allow" : "deny");
    gm_policy_free(&p);
    return 0;
}

static int do_check(const cli_args *a)
{
    policy_src src, *s = &src;
    src_from(a, s);
    const char *roles[MAX_ROLES], *object = NULL;
    size_t n_roles = cli_all(a, "role", roles, MAX_ROLES);
    if (n_roles > MAX_ROLES)
        return cli_usage("policy check: at most %d --role", MAX_ROLES);
    int kind = -1;
    static const char *const kinds[] = {"capability", "port", "peer", "relay"};
    for (int k = 0; k < 4; k++) {
        const char *v = cli_str(a, kinds[k], NULL);
        if (!v)
            continue;
        if (object)
            return cli_usage("policy check: give one of --capability, --port, --peer or --relay");
        object = v;
        kind = k;
    }
    if (n_roles == 0 || !object)
        return cli_usage("policy check: give --role and one of --capability, --port, --peer or --relay");
    gm_policy p;
    gm_error err = {0};
    int verified;
    if (load(s, &p, &verified, &err) != 0)
        return cli_fail("policy check", &err);
    gm_policy_decision d;
    int allowed = gm_policy_decide(&p, (gm_policy_kind)kind, roles, n_roles, &object, 1, &d);
    char who[256] = "", safe[300];
    for (size_t i = 0; i < n_roles; i++) {
        size_t l = strlen(who);
        snprintf(who + l, sizeof who - l, "%s%s", i ? "," : "", roles[i]);
    }
    if (s->json) {
        json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:i,s:s,s:I}", "decision", allowed ? "allow" : "deny", "roles", who,
                              "kind", gm_policy_kind_name((gm_policy_kind)kind), "name", object, "rule", d.rule,
                              "by", d.text, "sequence", (json_int_t)d.sequence);
        char *t = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        printf("%s\n", t ? t : "null");
        free(t);
        json_decref(o);
    } else {
        printf("%s: %s %s %s %s\n  by %s (policy sequence %llu%s)\n", allowed ? "allow" : "deny",
               cli_safe(who, safe, sizeof safe), allowed ? "may" : "may not",
               kind == GM_POLICY_CAPABILITY ? "invoke capability"
               : kind == GM_POLICY_PORT     ? "send to port"
               : kind == GM_POLICY_PEER     ? "peer with"
                                            : "relay for",
               object, d.text, (unsigned long long)d.sequence, s->rules ? ", draft" : "");
    }
    gm_policy_free(&p);
    return allowed ? 0 : EXIT_DENIED;
}

#define POLICY_SOURCE_OPTS                                                                               \
    {"dir", "D", "a node or NA directory: its access-policy.json, checked against its genesis.json (default .)"}, \
        {"na", "URL", "fetch GET /access-policy from this NA instead"},                                       \
        {"na-ca", "FILE", "with --na: verify the NA's TLS certificate with this CA file (default $GM_NA_CA)"},  \
        {"na-pin", "sha256//...", "with --na: verify the NA by its TLS key pin (default $GM_NA_PIN)"},         \
        {"json", NULL, "print JSON"}

static const cli_opt show_opts[] = {POLICY_SOURCE_OPTS, {NULL}};
static const cli_cmd policy_show_cmd = {
    "show", "print the access policy and its rules", "[--dir D | --na URL] [--json]", NULL, do_show, show_opts, 0,
    NULL};

static const cli_opt check_opts[] = {
    {"role", "R", "a role of the subject, repeatable (e.g. role:crm)"},
    {"capability", "C", "may R invoke capability C?"},
    {"port", "P", "may R send to mesh port P?"},
    {"peer", "ROLE", "may R peer with a node of ROLE?"},
    {"relay", "ROLE", "may R relay for a node of ROLE?"},
    {"rules", "FILE", "judge this rules file (unsigned, before 'admin policy set') instead"},
    POLICY_SOURCE_OPTS,
    {NULL},
};
static const cli_cmd policy_check_cmd = {
    "check", "may a role do this? prints the decision and the rule that decides",
    "--role R [--role R ...] (--capability C | --port P | --peer ROLE | --relay ROLE)\n"
    "       [--dir D | --na URL | --rules FILE] [--json]",
    "Exit status 0 = allowed, 3 = denied. Rules file format: docs/access-policy.md.\n", do_check, check_opts, 0,
    NULL};

static const cli_cmd *const policy_subs[] = {&policy_show_cmd, &policy_check_cmd, &cli_policy_create,
                                             &cli_policy_verify, NULL};
const cli_cmd cli_policy = {"policy",
                            "show the access policy; check what a role may do; create or verify the network policy",
                            NULL,
                            "show, check: the access policy, D/access-policy.json (a node or NA directory),\n"
                            "checked against D/genesis.json; --na fetches GET /access-policy instead.\n"
                            "create, verify: the network policy manifest (the Python reference's PolicyManifest),\n"
                            "D/network-policy.json, served by the NA at GET /policy.\n",
                            NULL, NULL, 0, policy_subs};
