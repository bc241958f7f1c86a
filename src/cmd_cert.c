/* genesis-mesh cert verify: judge a join certificate offline against a genesis block and a CRL.
 * Order: genesis signatures and NA window, CRL signature under the genesis NA key, then the
 * certificate (NA signature, network, validity window with skew, revocation). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "gm/cert.h"
#include "gm/crl.h"
#include "gm/genesis.h"
#include "gm/util.h"

typedef struct result {
    const char *stage; /* "genesis", "crl", "certificate" */
    int rc;
    gm_error err;
} result;

static void print_json(const result *r, const gm_cert *c, const gm_crl *crl, const char *at)
{
    char t1[GM_TIME_STRLEN], t2[GM_TIME_STRLEN];
    json_t *o = json_pack("{s:b,s:s,s:i}", "valid", r->rc == 0, "checked_at", at, "clock_skew_s", GM_CLOCK_SKEW_S);
    if (c && c->doc) {
        gm_time_format(&c->issued_at, t1);
        gm_time_format(&c->expires_at, t2);
        json_object_set_new(o, "cert_id", json_string(c->cert_id));
        json_object_set_new(o, "node_public_key", json_string(c->node_pk_b64));
        json_object_set_new(o, "network_name", json_string(c->network_name));
        json_object_set(o, "roles", json_object_get(c->doc, "roles"));
        json_object_set_new(o, "issued_at", json_string(t1));
        json_object_set_new(o, "expires_at", json_string(t2));
        json_object_set_new(o, "issued_by", json_string(c->issued_by));
    }
    json_object_set_new(o, "crl_sequence", crl && crl->doc ? json_integer((json_int_t)crl->sequence) : json_null());
    if (r->rc != 0)
        json_object_set_new(o, "error", json_pack("{s:s,s:s,s:s}", "stage", r->stage, "code", gm_err_name(r->rc),
                                                  "message", r->err.msg));
    else
        json_object_set_new(o, "error", json_null());
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (text)
        printf("%s\n", text);
    free(text);
    json_decref(o);
}

static void print_text(const gm_cert *c, const gm_crl *crl, const char *at)
{
    char t1[GM_TIME_STRLEN], t2[GM_TIME_STRLEN], buf[512], role[256];
    gm_time_format(&c->issued_at, t1);
    gm_time_format(&c->expires_at, t2);
    printf("OK: certificate %s is valid at %s\n", c->cert_id, at);
    printf("  node key:   %s\n", c->node_pk_b64);
    printf("  network:    %s\n", cli_safe(c->network_name, buf, sizeof buf));
    printf("  roles:      ");
    if (c->n_roles == 0)
        printf("(none)");
    for (size_t i = 0; i < c->n_roles; i++)
        printf("%s%s", i ? ", " : "", cli_safe(gm_cert_role(c, i), role, sizeof role));
    printf("\n  issued by:  %s (signature verified under the genesis NA key)\n", cli_safe(c->issued_by, buf, sizeof buf));
    printf("  valid:      %s .. %s (clock skew allowance %ds)\n", t1, t2, GM_CLOCK_SKEW_S);
    if (crl && crl->doc)
        printf("  revocation: not on CRL sequence %llu\n", (unsigned long long)crl->sequence);
    else
        printf("  revocation: not checked (no --crl given)\n");
}

static int verify(const char *file, const char *genesis_path, const char *crl_path, gm_time now, gm_cert *c,
                  gm_crl *crl, result *r)
{
    gm_genesis g;
    r->stage = "genesis";
    if ((r->rc = gm_genesis_load(genesis_path, &g, &r->err)) != 0)
        return r->rc;
    if ((r->rc = gm_genesis_verify(&g, &r->err)) != 0 || (r->rc = gm_genesis_check_na_window(&g, now, &r->err)) != 0) {
        gm_error_prefix(&r->err, "%s", genesis_path);
        gm_genesis_free(&g);
        return r->rc;
    }
    if (crl_path) {
        r->stage = "crl";
        if ((r->rc = gm_crl_load(crl_path, crl, &r->err)) != 0 ||
            ((r->rc = gm_crl_verify(crl, g.na_pk, &r->err)) != 0 && gm_error_prefix(&r->err, "%s", crl_path))) {
            gm_genesis_free(&g);
            return r->rc;
        }
    }
    r->stage = "certificate";
    if ((r->rc = gm_cert_load(file, c, &r->err)) == 0)
        r->rc = gm_cert_verify(c, &g, crl_path ? crl : NULL, now, &r->err);
    gm_genesis_free(&g);
    return r->rc;
}

static int do_verify(const cli_args *a)
{
    const char *file = a->pos[0], *genesis = cli_str(a, "genesis", NULL), *crl_path = cli_str(a, "crl", NULL),
               *at = cli_str(a, "at", NULL);
    int as_json = cli_has(a, "json");
    if (!file || !genesis)
        return cli_usage("cert verify: FILE and --genesis GENESIS are required (see --help)");
    gm_time now = gm_time_now();
    gm_error err = {0};
    if (at && gm_time_parse(at, &now, &err) != 0)
        return cli_usage("cert verify: --at: %s", err.msg);
    char at_s[GM_TIME_STRLEN];
    gm_time_format(&now, at_s);
    gm_cert c;
    gm_crl crl;
    result r = {0};
    memset(&c, 0, sizeof c);
    memset(&crl, 0, sizeof crl);
    verify(file, genesis, crl_path, now, &c, &crl, &r);
    if (as_json)
        print_json(&r, &c, &crl, at_s);
    else if (r.rc == 0)
        print_text(&c, &crl, at_s);
    if (r.rc == 0 && crl.doc && gm_time_cmp(&now, &crl.next_update) > 0) {
        char nu[GM_TIME_STRLEN];
        gm_time_format(&crl.next_update, nu);
        fprintf(stderr, "genesis-mesh: cert verify: warning: the CRL's next_update (%s) has passed; a newer CRL may "
                        "revoke this certificate\n", nu);
    }
    gm_cert_free(&c);
    gm_crl_free(&crl);
    if (r.rc == 0)
        return 0;
    if (as_json)
        return 1;
    char what[64], m[sizeof r.err.msg];
    if (r.rc == GM_EEXPIRED)
        snprintf(what, sizeof what, "cert verify: INVALID (%s, clock skew allowance %ds)", r.stage, GM_CLOCK_SKEW_S);
    else
        snprintf(what, sizeof what, "cert verify: INVALID (%s)", r.stage);
    cli_safe(r.err.msg, m, sizeof m);
    memcpy(r.err.msg, m, sizeof m);
    return cli_fail(what, &r.err);
}

static const cli_opt verify_opts[] = {
    {"genesis", "GENESIS", "the genesis block to verify against (required)"},
    {"crl", "CRL", "the CRL to check revocation against (signed by the genesis NA key)"},
    {"at", "TIMESTAMP", "judge at this time, ISO-8601 (default now)"},
    {"json", NULL, "print the result as a JSON object"},
    {NULL},
};
static const cli_cmd cert_verify = {
    "verify", "judge a join certificate offline", "FILE --genesis GENESIS [--crl CRL] [--at TIMESTAMP] [--json]",
    "Checks a join certificate offline:\n"
    "  - the genesis block verifies under its root key and its NA key is inside its window;\n"
    "  - the CRL (if given) is signed by the genesis NA key;\n"
    "  - the certificate is signed by the genesis NA key, names the genesis network,\n"
    "    is inside issued_at..expires_at at TIMESTAMP (default now) with a clock skew\n"
    "    allowance of 300s, and is not revoked by the CRL.\n"
    "exit status: 0 valid, 1 invalid (the message says why), 2 usage error\n",
    do_verify, verify_opts, 1, NULL};
static const cli_cmd *const cert_subs[] = {&cert_verify, NULL};
const cli_cmd cli_cert = {"cert", "verify a join certificate against genesis and CRL", NULL, NULL, NULL, NULL, 0,
                          cert_subs};
