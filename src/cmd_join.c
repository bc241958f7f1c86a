/* genesis-mesh join: enroll this node with an invite token (or renew its certificate).
 * The node directory D ends up with node.key/.pub, genesis.json, cert.json and node.json. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "cli.h"
#include "gm/cert.h"
#include "gm/genesis.h"
#include "gm/keys.h"
#include "gm/na_client.h"
#include "gm/util.h"

#define NODE_KEY_ID "node"

static int path_in(char *out, size_t cap, const char *dir, const char *name, gm_error *err)
{
    return gm_path_join(out, cap, dir, name, err);
}

/* Load D/node.key, or create it when absent. */
static int node_key(const char *dir, int create, gm_signer *k, gm_error *err)
{
    char base[4096], keyfile[4096];
    int rc;
    if ((rc = path_in(base, sizeof base, dir, "node", err)) || (rc = path_in(keyfile, sizeof keyfile, dir, "node.key", err)))
        return rc;
    if (gm_file_exists(keyfile)) {
        if ((rc = gm_signer_load(k, base, NODE_KEY_ID, err)) == 0)
            fprintf(stderr, "using the existing node key %s (%s)\n", keyfile, k->pk_b64);
        return rc;
    }
    if (!create)
        return gm_error_set(err, GM_ENOTFOUND, "%s not found: run 'genesis-mesh join' first", keyfile);
    if ((rc = gm_signer_generate(k, NODE_KEY_ID, err)) == 0 && (rc = gm_signer_save(k, base, 0, err)) == 0)
        fprintf(stderr, "created node key %s (%s)\n", keyfile, k->pk_b64);
    return rc;
}

static int same_genesis(const gm_genesis *a, const gm_genesis *b)
{
    uint8_t ha[32], hb[32];
    return gm_genesis_hash(a, ha, NULL) == 0 && gm_genesis_hash(b, hb, NULL) == 0 && sodium_memcmp(ha, hb, 32) == 0;
}

/* The NA's genesis, verified, and equal to the pinned one when there is a pin. */
static int fetch_genesis(const char *na_url, const char *pin_path, gm_genesis *g, char **text, gm_error *err)
{
    int rc = gm_na_fetch_genesis(na_url, 0, g, text, err);
    if (rc != 0 || !pin_path || !gm_file_exists(pin_path))
        return rc;
    gm_genesis pin;
    if ((rc = gm_genesis_load(pin_path, &pin, err)) == 0 && (rc = gm_genesis_verify(&pin, err)) != 0)
        gm_error_prefix(err, "%s", pin_path);
    if (rc == 0 && !same_genesis(g, &pin))
        rc = gm_error_set(err, GM_EDENIED,
                          "the NA at %s serves a different genesis block than %s; refusing to join "
                          "(wrong NA, or the network was re-created)",
                          na_url, pin_path);
    gm_genesis_free(&pin);
    if (rc != 0) {
        gm_genesis_free(g);
        free(*text);
        *text = NULL;
    }
    return rc;
}

/* Check the certificate the NA returned: it verifies, is for our key and has roles. */
static int check_cert(const json_t *doc, const gm_genesis *g, const gm_signer *k, gm_cert *c, gm_error *err)
{
    int rc = gm_cert_from_json(doc, c, err);
    if (rc != 0)
        return gm_error_prefix(err, "the NA returned a malformed certificate");
    if ((rc = gm_cert_verify(c, g, NULL, gm_time_now(), err)) != 0) {
        gm_error_prefix(err, "the NA returned a certificate that does not verify");
    } else if (sodium_memcmp(c->node_pk, k->pk, GM_PK_LEN) != 0) {
        rc = gm_error_set(err, GM_EPROTO, "the NA returned a certificate for another key (%s)", c->node_pk_b64);
    } else if (c->n_roles == 0) {
        rc = gm_error_set(err, GM_EPROTO, "the NA returned a certificate without roles");
    }
    if (rc != 0)
        gm_cert_free(c);
    return rc;
}

static int write_cert(const char *dir, const gm_cert *c, gm_error *err)
{
    char path[4096], *text = gm_cert_dump(c, 1);
    int rc = text ? path_in(path, sizeof path, dir, "cert.json", err) : gm_error_set(err, GM_ENOMEM, "out of memory");
    if (rc == 0)
        rc = gm_file_write_atomic(path, text, strlen(text), 0644, err);
    free(text);
    return rc;
}

/* Check, then write cert.json (renewals: the roles are the NA's to keep). */
static int accept_cert(const char *dir, const json_t *doc, const gm_genesis *g, const gm_signer *k, gm_cert *c,
                       gm_error *err)
{
    int rc = check_cert(doc, g, k, c, err);
    if (rc == 0 && (rc = write_cert(dir, c, err)) != 0)
        gm_cert_free(c);
    return rc;
}

static int has_role(const gm_cert *c, const char *role)
{
    for (size_t i = 0; i < c->n_roles; i++)
        if (!strcmp(gm_cert_role(c, i), role))
            return 1;
    return 0;
}

static void roles_text(const gm_cert *c, char *out, size_t cap)
{
    out[0] = 0;
    for (size_t i = 0; i < c->n_roles; i++) {
        size_t l = strlen(out);
        snprintf(out + l, cap - l, "%s%s", i ? "," : "", gm_cert_role(c, i));
    }
}

/* A directory that holds a certificate keeps its roles: a join whose invite gives other roles
 * does not replace it unless --force-role. */
static int check_same_roles(const char *dir, const gm_cert *old, const gm_cert *c, gm_error *err)
{
    int same = old->n_roles == c->n_roles;
    for (size_t i = 0; same && i < c->n_roles; i++)
        same = has_role(old, gm_cert_role(c, i));
    if (same)
        return 0;
    char was[512], now[512];
    roles_text(old, was, sizeof was);
    roles_text(c, now, sizeof now);
    return gm_error_set(err, GM_EEXIST,
                        "%s/cert.json is for roles %s, but this invite gives roles %s: refusing to replace it (nothing "
                        "in %s changed). The invite is used up and the NA issued certificate %s: ask the operator to "
                        "revoke it ('admin revoke --cert-id %s --reason superseded'); to change this node's roles, "
                        "join again with a new invite and --force-role",
                        dir, was, now, dir, c->cert_id, c->cert_id);
}

/* join --new-key: move node.key and node.pub aside as <name>.old-<UTC time> (0600, never
 * overwriting), then save k as the node key. */
static int rotate_key(const char *dir, const gm_signer *k, gm_error *err)
{
    char stamp[32], base[4096];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    static const char *const names[] = {"node.key", "node.pub"};
    for (size_t i = 0; i < 2; i++) {
        char from[4096], to[4200];
        int rc = path_in(from, sizeof from, dir, names[i], err);
        if (rc != 0)
            return rc;
        if (!gm_file_exists(from))
            continue;
        for (int n = 0;; n++) {
            if (n == 0)
                snprintf(to, sizeof to, "%s.old-%s", from, stamp);
            else
                snprintf(to, sizeof to, "%s.old-%s-%d", from, stamp, n);
            if (link(from, to) == 0)
                break;
            if (errno != EEXIST || n > 100)
                return gm_error_set(err, GM_EIO, "cannot keep %s as %s: %s", from, to, strerror(errno));
        }
        if (chmod(to, 0600) != 0 || unlink(from) != 0)
            return gm_error_set(err, GM_EIO, "cannot move %s aside: %s", from, strerror(errno));
        fprintf(stderr, "kept the previous %s as %s\n", names[i], to);
    }
    int rc = path_in(base, sizeof base, dir, "node", err);
    if (rc == 0 && (rc = gm_signer_save(k, base, 0, err)) == 0)
        fprintf(stderr, "new node key %s/node.key (%s)\n", dir, k->pk_b64);
    return rc;
}

static int write_node_json(const char *dir, const char *na_url, gm_error *err)
{
    char path[4096], *old = NULL;
    size_t len;
    int rc = path_in(path, sizeof path, dir, "node.json", err);
    if (rc != 0)
        return rc;
    json_t *o = NULL;
    if (gm_file_read(path, 256 * 1024, &old, &len, NULL) == 0) {
        o = json_loadb(old, len, 0, NULL);
        free(old);
    }
    if (!json_is_object(o)) {
        json_decref(o);
        o = json_object();
    }
    json_object_set_new(o, "na_url", json_string(na_url));
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(o);
    if (!text)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    rc = gm_file_write_atomic(path, text, strlen(text), 0644, err);
    free(text);
    return rc;
}

static void print_cert(const char *verb, const gm_cert *c)
{
    char exp[GM_TIME_STRLEN];
    gm_time_format(&c->expires_at, exp);
    printf("%s network '%s' as %s\n  certificate %s\n  roles ", verb, c->network_name, c->node_pk_b64, c->cert_id);
    for (size_t i = 0; i < c->n_roles; i++)
        printf("%s%s", i ? "," : "", gm_cert_role(c, i));
    printf("\n  valid until %s\n", exp);
}

static int do_join(const char *dir, const char *na_url, const char *token, long long hours, const char *pin,
                   const char *tls_ca, const char *tls_pin, int force_role, int new_key)
{
    gm_error err = {0};
    gm_signer k;
    gm_genesis g;
    gm_cert c, old;
    char *gtext = NULL, gpath[4096], cpath[4096], kpath[4096];
    json_t *doc = NULL;
    if (gm_mkdir_p(dir, 0700, &err) != 0 || path_in(gpath, sizeof gpath, dir, "genesis.json", &err) != 0 ||
        path_in(cpath, sizeof cpath, dir, "cert.json", &err) != 0 || path_in(kpath, sizeof kpath, dir, "node.key", &err))
        return cli_fail("join", &err);
    if (cli_na_trust(na_url, tls_ca, tls_pin, dir, &err) != 0)
        return cli_fail("join", &err);
    /* The certificate D holds now, whose roles a join keeps (unless --force-role). */
    int have_old = !force_role && gm_file_exists(cpath) && gm_cert_load(cpath, &old, NULL) == 0;
    /* --new-key: the fresh key stays in memory until the NA has certified it. */
    new_key = new_key && gm_file_exists(kpath);
    if (new_key ? gm_signer_generate(&k, NODE_KEY_ID, &err) != 0 : node_key(dir, 1, &k, &err) != 0) {
        if (have_old)
            gm_cert_free(&old);
        return cli_fail("join: node key", &err);
    }
    if (new_key)
        fprintf(stderr, "generated a new node key (%s); the previous one is kept once the NA certifies this one\n",
                k.pk_b64);
    int rc = fetch_genesis(na_url, pin ? pin : gpath, &g, &gtext, &err);
    if (rc == 0 && (rc = gm_genesis_check_na_window(&g, gm_time_now(), &err)) != 0)
        gm_genesis_free(&g);
    if (rc != 0) {
        gm_signer_wipe(&k);
        free(gtext);
        if (have_old)
            gm_cert_free(&old);
        return cli_fail("join: genesis", &err);
    }
    rc = gm_na_join(na_url, &k, token, hours, 0, &doc, &err);
    int got = 0;
    if (rc == 0)
        got = (rc = check_cert(doc, &g, &k, &c, &err)) == 0;
    if (rc == 0 && have_old)
        rc = check_same_roles(dir, &old, &c, &err);
    if (rc == 0 && new_key)
        rc = rotate_key(dir, &k, &err);
    if (rc == 0)
        rc = write_cert(dir, &c, &err);
    if (rc == 0)
        rc = gm_file_write_atomic(gpath, gtext, strlen(gtext), 0644, &err);
    if (rc == 0)
        rc = write_node_json(dir, na_url, &err);
    if (rc == 0)
        rc = cli_na_trust_keep(dir, tls_ca, tls_pin, &err);
    if (rc == 0)
        print_cert("joined", &c);
    if (got)
        gm_cert_free(&c);
    if (have_old)
        gm_cert_free(&old);
    json_decref(doc);
    free(gtext);
    gm_genesis_free(&g);
    gm_signer_wipe(&k);
    return rc == 0 ? 0 : cli_fail("join", &err);
}

static int do_renew(const char *dir, const char *na_override, const char *tls_ca, const char *tls_pin)
{
    gm_error err = {0};
    gm_signer k;
    gm_genesis g;
    gm_cert old, c;
    char path[4096], url[1024] = "", *text = NULL;
    size_t len;
    json_t *doc = NULL;
    if (node_key(dir, 0, &k, &err) != 0)
        return cli_fail("join --renew", &err);
    int rc = path_in(path, sizeof path, dir, "genesis.json", &err);
    if (rc == 0 && (rc = gm_genesis_load(path, &g, &err)) == 0 && (rc = gm_genesis_verify(&g, &err)) != 0)
        gm_genesis_free(&g);
    if (rc != 0) {
        gm_signer_wipe(&k);
        return cli_fail("join --renew", &err);
    }
    if (na_override) {
        snprintf(url, sizeof url, "%s", na_override);
    } else if (path_in(path, sizeof path, dir, "node.json", &err) == 0 &&
               gm_file_read(path, 256 * 1024, &text, &len, &err) == 0) {
        json_t *o = json_loadb(text, len, 0, NULL);
        const char *u = json_string_value(json_object_get(o, "na_url"));
        snprintf(url, sizeof url, "%s", u ? u : "");
        json_decref(o);
        free(text);
    }
    if (!url[0])
        rc = gm_error_set(&err, GM_ENOTFOUND, "no NA URL in %s/node.json; pass --na URL", dir);
    if (rc == 0)
        rc = cli_na_trust(url, tls_ca, tls_pin, dir, &err);
    if (rc == 0 && (rc = path_in(path, sizeof path, dir, "cert.json", &err)) == 0)
        rc = gm_cert_load(path, &old, &err);
    if (rc == 0) {
        rc = gm_na_renew(url, &k, old.cert_id, 0, &doc, &err);
        gm_cert_free(&old);
    }
    if (rc == 0)
        rc = accept_cert(dir, doc, &g, &k, &c, &err);
    if (rc == 0) {
        print_cert("renewed in", &c);
        gm_cert_free(&c);
    }
    json_decref(doc);
    gm_genesis_free(&g);
    gm_signer_wipe(&k);
    return rc == 0 ? 0 : cli_fail("join --renew", &err);
}

static int run_join(const cli_args *a)
{
    const char *dir = cli_str(a, "dir", "."), *na = cli_str(a, "na", NULL), *token = cli_str(a, "token", NULL),
               *pin = cli_str(a, "genesis", NULL), *tls_ca = cli_str(a, "na-ca", NULL),
               *tls_pin = cli_str(a, "na-pin", NULL);
    long long hours;
    if (cli_int(a, "validity-hours", 1, 24 * 3660, 0, &hours))
        return 2;
    if (tls_ca && tls_pin)
        return cli_usage("join: give --na-ca or --na-pin, not both");
    if (tls_ca && !gm_file_exists(tls_ca))
        return cli_usage("join: --na-ca %s does not exist", tls_ca);
    if (cli_has(a, "renew"))
        return do_renew(dir, na, tls_ca, tls_pin);
    if (!na || !token)
        return cli_usage("join: --na URL and --token T are required (see 'genesis-mesh join --help')");
    if (pin && !gm_file_exists(pin))
        return cli_usage("join: --genesis %s does not exist", pin);
    if (cli_has(a, "new-key") && cli_has(a, "renew"))
        return cli_usage("join: --new-key needs an invite (--token); --renew keeps the key");
    return do_join(dir, na, token, hours, pin, tls_ca, tls_pin, cli_has(a, "force-role"), cli_has(a, "new-key"));
}

static const cli_opt join_opts[] = {
    {"na", "URL", "the NA to enroll with (required to join)"},
    {"token", "T", "the invite token from 'genesis-mesh admin invite' (required to join)"},
    {"dir", "D", "the node directory (default .)"},
    {"validity-hours", "H", "ask for a certificate valid H hours, 1..87840 (the invite caps it)"},
    {"genesis", "FILE", "pin the genesis block: refuse an NA that serves another one"},
    {"na-ca", "FILE", "verify an https:// NA with this CA or certificate file (e.g. tls.crt of its directory)"},
    {"na-pin", "sha256//...", "verify an https:// NA by its key pin (printed by init and na start)"},
    {"renew", NULL, "trade the valid certificate of D for a new one"},
    {"force-role", NULL, "replace the certificate of D even when the invite gives other roles"},
    {"new-key", NULL, "enroll a fresh node key (after a compromise); the old one is kept as node.key.old-<time>"},
    {NULL},
};
const cli_cmd cli_join = {
    "join", "enroll this node with an invite token",
    "--na URL --token T [--dir D] [--validity-hours H] [--genesis FILE] [--force-role] [--new-key]\n"
    "                         [--na-ca FILE | --na-pin sha256//...]\n"
    "       genesis-mesh join --renew [--dir D] [--na URL] [--na-ca FILE | --na-pin sha256//...]",
    "Enrolls the node of directory D: creates D/node.key (or reuses it), fetches and verifies\n"
    "the genesis block (pinned by --genesis FILE or an existing D/genesis.json), proves possession\n"
    "of the key to the NA, verifies the certificate it returns, and writes D/cert.json,\n"
    "D/genesis.json and D/node.json. --renew trades a valid certificate for a new one.\n"
    "A D that holds a certificate keeps its roles: a join whose invite gives other roles changes\n"
    "nothing in D unless --force-role. --new-key enrolls a fresh key (re-enrolling after a key\n"
    "compromise): the old node.key/node.pub are kept as node.key.old-<UTC time> (0600) once the\n"
    "NA has certified the new key.\n"
    "An https:// NA is verified with --na-ca FILE or --na-pin, or $GM_NA_CA / $GM_NA_PIN; what is\n"
    "given is kept in D (na-ca.pem, na-tls.pin) for every later command of this node.\n",
    run_join, join_opts, 0, NULL};
