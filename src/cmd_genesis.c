/* genesis-mesh genesis keygen|create|sign|verify|show|rotate: the offline root ceremony.
 * Thin over lib/core/genesis.c and lib/core/keys.c; every check lives in the library. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "gm/canon.h"
#include "gm/genesis.h"
#include "gm/keys.h"
#include "gm/sigdoc.h"
#include "gm/util.h"

#define MAX_ANCHORS 64
#define NAME_MAX_LEN 64

static int fail(const char *what, gm_error *err)
{
    char m[sizeof err->msg];
    cli_safe(err->msg, m, sizeof m);
    memcpy(err->msg, m, sizeof m);
    return cli_fail(what, err);
}

static int write_text(const char *path, const char *text, int force, gm_error *err)
{
    if (!force && gm_file_exists(path))
        return gm_error_set(err, GM_EEXIST, "%s already exists; refusing to overwrite it (use --force)", path);
    size_t n = strlen(text);
    char *buf = malloc(n + 2);
    if (!buf)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    memcpy(buf, text, n);
    buf[n] = '\n';
    int rc = gm_file_write_atomic(path, buf, n + 1, 0644, err);
    free(buf);
    return rc;
}

/* A public key file, given as FILE or as a key base path (FILE.pub). */
static int load_pub(const char *path, uint8_t pk[GM_PK_LEN], gm_error *err)
{
    char alt[4096];
    if (!gm_file_exists(path) && snprintf(alt, sizeof alt, "%s.pub", path) < (int)sizeof alt &&
        gm_file_exists(alt))
        path = alt;
    return gm_pk_load(path, pk, err);
}

static int valid_label(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
            return 0;
    return 1;
}

static int valid_key_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= GM_KEY_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._:@-", s[i]))
            return 0;
    return 1;
}

/* "id=host:port" -> {"id", "endpoint": "host:port"}; host may be a [v6] literal. */
static json_t *parse_anchor(const char *spec, gm_error *err)
{
    const char *eq = strchr(spec, '=');
    if (!eq || eq == spec)
        return gm_error_set(err, GM_EINVAL, "--anchor '%s': expected ID=HOST:PORT", spec), NULL;
    char id[128];
    size_t idlen = (size_t)(eq - spec);
    if (idlen >= sizeof id)
        return gm_error_set(err, GM_EINVAL, "--anchor '%s': id too long", spec), NULL;
    memcpy(id, spec, idlen);
    id[idlen] = '\0';
    const char *ep = eq + 1, *colon = strrchr(ep, ':');
    if (!valid_label(id, sizeof id - 1))
        return gm_error_set(err, GM_EINVAL, "--anchor '%s': id may only use letters, digits, '.', '_', '-'", spec),
               NULL;
    if (!colon || colon == ep || !colon[1] || strlen(ep) > 255)
        return gm_error_set(err, GM_EINVAL, "--anchor '%s': endpoint must be HOST:PORT", spec), NULL;
    for (const char *p = ep; p < colon; p++)
        if (!isalnum((unsigned char)*p) && !strchr(".-_:[]", *p))
            return gm_error_set(err, GM_EINVAL, "--anchor '%s': bad character in host", spec), NULL;
    if (strchr(ep, ':') != colon && (ep[0] != '[' || colon[-1] != ']'))
        return gm_error_set(err, GM_EINVAL, "--anchor '%s': write IPv6 hosts as [ADDR]:PORT", spec), NULL;
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (*end || errno || port < 1 || port > 65535 || !isdigit((unsigned char)colon[1]))
        return gm_error_set(err, GM_EINVAL, "--anchor '%s': port must be 1..65535", spec), NULL;
    return json_pack("{s:s,s:s}", "id", id, "endpoint", ep);
}

static int do_keygen(const cli_args *a)
{
    const char *out = cli_str(a, "out", NULL), *key_id = cli_str(a, "key-id", NULL);
    if (!out || !*out)
        return cli_usage("genesis keygen: --out BASE is required");
    if (!key_id) {
        const char *slash = strrchr(out, '/');
        key_id = slash ? slash + 1 : out;
    }
    if (!valid_key_id(key_id))
        return cli_usage("genesis keygen: key id '%s' must be 1..%d of letters, digits, '.', '_', ':', '@', '-'",
                         key_id, GM_KEY_ID_MAX - 1);
    gm_signer k;
    gm_error err = {0};
    int rc = gm_signer_generate(&k, key_id, &err);
    if (rc == 0 && (rc = gm_signer_save(&k, out, 0, &err)) == GM_EEXIST)
        gm_error_set(&err, rc, "%s.key or %s.pub already exists; refusing to overwrite a key (move it away first)",
                     out, out);
    if (rc != 0) {
        gm_signer_wipe(&k);
        return fail("genesis keygen", &err);
    }
    printf("wrote %s.key (mode 0600, keep it offline) and %s.pub\nkey id: %s\npublic key: %s\n", out, out, k.key_id,
           k.pk_b64);
    gm_signer_wipe(&k);
    return 0;
}

static int do_create(const cli_args *a)
{
    const char *network = cli_str(a, "network", NULL), *root_pub = cli_str(a, "root-pub", NULL),
               *na_pub = cli_str(a, "na-pub", NULL), *from_s = cli_str(a, "valid-from", NULL),
               *out = cli_str(a, "out", NULL), *specs[MAX_ANCHORS + 1];
    int force = cli_has(a, "force"), rc;
    gm_error err = {0};
    size_t n_specs = cli_all(a, "anchor", specs, MAX_ANCHORS + 1);
    if (n_specs > MAX_ANCHORS)
        return cli_usage("genesis create: at most %d anchors", MAX_ANCHORS);
    long long days;
    if (cli_int(a, "valid-days", 1, 3650, 90, &days))
        return 2;
    json_t *anchors = json_array();
    for (size_t i = 0; i < n_specs; i++) {
        json_t *an = parse_anchor(specs[i], &err);
        if (!an) {
            json_decref(anchors);
            return cli_usage("genesis create: %s", err.msg);
        }
        for (size_t k = 0; k < json_array_size(anchors); k++)
            if (!strcmp(json_string_value(json_object_get(json_array_get(anchors, k), "id")),
                        json_string_value(json_object_get(an, "id")))) {
                json_decref(an);
                json_decref(anchors);
                return cli_usage("genesis create: anchor id given twice");
            }
        json_array_append_new(anchors, an);
    }
    const char *missing = !network ? "--network NAME" : !root_pub ? "--root-pub FILE" : !na_pub ? "--na-pub FILE"
                                                      : !out      ? "--out FILE"
                                                                  : NULL;
    if (missing) {
        json_decref(anchors);
        return cli_usage("genesis create: %s is required (see --help)", missing);
    }
    gm_time from = gm_time_now();
    from.usec = 0;
    if (from_s && (gm_time_parse(from_s, &from, &err) != 0 ||
                   (!from.has_offset && gm_error_set(&err, GM_EINVAL, "'%s' has no offset (add Z or +HH:MM)", from_s)))) {
        json_decref(anchors);
        return cli_usage("genesis create: --valid-from: %s", err.msg);
    }
    if (!valid_label(network, NAME_MAX_LEN)) {
        json_decref(anchors);
        return cli_usage("genesis create: network name '%s' must be 1..%d of letters, digits, '.', '_', '-'",
                         network, NAME_MAX_LEN);
    }
    uint8_t root_pk[GM_PK_LEN], na_pk[GM_PK_LEN];
    gm_genesis g;
    if ((rc = load_pub(root_pub, root_pk, &err)) != 0 || (rc = load_pub(na_pub, na_pk, &err)) != 0) {
        json_decref(anchors);
        return fail("genesis create", &err);
    }
    if (!memcmp(root_pk, na_pk, GM_PK_LEN)) {
        json_decref(anchors);
        gm_error_set(&err, GM_EINVAL, "the root key and the NA key are the same key; use two different keys");
        return fail("genesis create", &err);
    }
    gm_time to = gm_time_add(from, days * 86400);
    rc = gm_genesis_create(&g, network, root_pk, na_pk, from, to, anchors, &err);
    json_decref(anchors);
    if (rc != 0)
        return fail("genesis create", &err);
    char *text = gm_genesis_dump(&g);
    rc = text ? write_text(out, text, force, &err) : gm_error_set(&err, GM_ENOMEM, "out of memory");
    free(text);
    if (rc != 0) {
        gm_genesis_free(&g);
        return fail("genesis create", &err);
    }
    char vf[GM_TIME_STRLEN], vt[GM_TIME_STRLEN], rb[GM_PK_B64_LEN + 1], nb[GM_PK_B64_LEN + 1];
    gm_time_format(&g.na_valid_from, vf);
    gm_time_format(&g.na_valid_to, vt);
    gm_pk_encode(g.root_pk, rb);
    gm_pk_encode(g.na_pk, nb);
    printf("wrote unsigned genesis block for network %s to %s\n  root key %s\n  NA key   %s, valid %s .. %s\n"
           "next: genesis-mesh genesis sign --in %s --root-key ROOT_KEY_BASE\n",
           g.network_name, out, rb, nb, vf, vt, out);
    gm_genesis_free(&g);
    return 0;
}

/* Does doc already carry exactly this signature? */
static int has_signature(const json_t *doc, const char *sig)
{
    const json_t *sigs = json_object_get(doc, "signatures");
    for (size_t i = 0; i < json_array_size(sigs); i++) {
        const char *s = json_string_value(json_object_get(json_array_get(sigs, i), "sig"));
        if (s && !strcmp(s, sig))
            return 1;
    }
    return 0;
}

static int do_sign(const cli_args *a)
{
    const char *in = cli_str(a, "in", NULL), *key = cli_str(a, "root-key", NULL), *out = cli_str(a, "out", NULL);
    int force = cli_has(a, "force");
    if (!in || !key)
        return cli_usage("genesis sign: --in FILE and --root-key BASE are required (see --help)");
    if (strlen(key) > 4 && !strcmp(key + strlen(key) - 4, ".key"))
        return cli_usage("genesis sign: give --root-key as the base path, without .key");
    int in_place = !out || !strcmp(out, in);
    if (!out)
        out = in;
    gm_genesis g;
    gm_signer root;
    gm_error err = {0};
    int rc = gm_genesis_load(in, &g, &err);
    if (rc != 0)
        return fail("genesis sign", &err);
    if ((rc = gm_signer_load(&root, key, "rs-local", &err)) != 0) {
        gm_genesis_free(&g);
        return fail("genesis sign", &err);
    }
    /* Ed25519 is deterministic: the same key over the same bytes gives the same signature */
    char *bytes = NULL, *text = NULL, sig[GM_SIG_B64_LEN + 1];
    size_t len;
    if ((rc = gm_canon_dump_unsigned(g.doc, &bytes, &len, &err)) != 0)
        goto done;
    gm_sign_b64(&root, (const uint8_t *)bytes, len, sig);
    free(bytes);
    if (!memcmp(root.pk, g.root_pk, GM_PK_LEN) && has_signature(g.doc, sig)) {
        if (!in_place && (text = gm_genesis_dump(&g)) != NULL && (rc = write_text(out, text, force, &err)) == 0)
            printf("%s is already signed by this root key (%s); copied it to %s\n", in, root.key_id, out);
        else if (in_place)
            printf("%s is already signed by this root key (%s); nothing to do\n", in, root.key_id);
        else if (!text)
            rc = gm_error_set(&err, GM_ENOMEM, "out of memory");
        free(text);
        goto done;
    }
    if (memcmp(root.pk, g.root_pk, GM_PK_LEN) != 0) {
        char rb[GM_PK_B64_LEN + 1];
        gm_pk_encode(g.root_pk, rb);
        rc = gm_error_set(&err, GM_EDENIED,
                          "%s.key (public key %s) is not this block's root_public_key %s; refusing to sign", key,
                          root.pk_b64, rb);
        goto done;
    }
    if ((rc = gm_genesis_sign(&g, &root, &err)) != 0)
        goto done;
    /* never write a block that would not verify (e.g. an old signature from before an edit) */
    if ((rc = gm_genesis_verify(&g, &err)) != 0) {
        gm_error_prefix(&err, "refusing to write %s: an existing signature does not match the block; remove it", out);
        goto done;
    }
    text = gm_genesis_dump(&g);
    rc = text ? write_text(out, text, force || in_place, &err) : gm_error_set(&err, GM_ENOMEM, "out of memory");
    free(text);
    if (rc == 0) {
        char name[256];
        printf("signed genesis block of network %s with root key %s (key id %s); wrote %s\n",
               cli_safe(g.network_name, name, sizeof name), root.pk_b64, root.key_id, out);
        gm_error e2 = {0};
        if (gm_genesis_check_na_window(&g, gm_time_now(), &e2) != 0)
            fprintf(stderr, "genesis-mesh: genesis sign: warning: %s\n", e2.msg);
    }
done:
    gm_signer_wipe(&root);
    gm_genesis_free(&g);
    return rc == 0 ? 0 : fail("genesis sign", &err);
}

static int parse_at(const char *at, gm_time *now, const char *who)
{
    gm_error err = {0};
    if (!at) {
        *now = gm_time_now();
        return 0;
    }
    if (gm_time_parse(at, now, &err) != 0)
        return cli_usage("%s: --at: %s", who, err.msg);
    return 0;
}

static int do_verify(const cli_args *a)
{
    const char *file = a->pos[0], *at = cli_str(a, "at", NULL);
    if (!file)
        return cli_usage("genesis verify: FILE is required (see --help)");
    gm_time now;
    int rc = parse_at(at, &now, "genesis verify");
    if (rc != 0)
        return rc;
    gm_genesis g;
    gm_error err = {0};
    if ((rc = gm_genesis_load(file, &g, &err)) != 0)
        return fail("genesis verify", &err);
    char rb[GM_PK_B64_LEN + 1], name[256];
    gm_pk_encode(g.root_pk, rb);
    cli_safe(g.network_name, name, sizeof name);
    size_t nsig = json_array_size(json_object_get(g.doc, "signatures"));
    if ((rc = gm_genesis_verify(&g, &err)) != 0) {
        gm_error_prefix(&err, "%s: NOT verified (network %s, root key %s)", file, name, rb);
    } else if ((rc = gm_genesis_check_na_window(&g, now, &err)) != 0) {
        gm_error_prefix(&err, "%s: signatures OK (%zu, root key %s) but the NA key is outside its validity window "
                              "(clock skew allowance %ds)",
                        file, nsig, rb, GM_CLOCK_SKEW_S);
    } else {
        char vf[GM_TIME_STRLEN], vt[GM_TIME_STRLEN], nb[GM_PK_B64_LEN + 1];
        gm_time_format(&g.na_valid_from, vf);
        gm_time_format(&g.na_valid_to, vt);
        gm_pk_encode(g.na_pk, nb);
        printf("OK: genesis of network %s verified (%zu signature%s, root key %s)\n"
               "NA key %s valid %s .. %s (clock skew allowance %ds)\n",
               name, nsig, nsig == 1 ? "" : "s", rb, nb, vf, vt, GM_CLOCK_SKEW_S);
    }
    gm_genesis_free(&g);
    return rc == 0 ? 0 : fail("genesis verify", &err);
}

/* Does signature i verify on its own? */
static int signature_ok(const gm_genesis *g, size_t i)
{
    json_t *doc = json_deep_copy(g->doc), *one = json_array();
    json_array_append(one, json_array_get(json_object_get(g->doc, "signatures"), i));
    json_object_set_new(doc, "signatures", one);
    gm_error e = {0};
    int ok = gm_sigdoc_verify_all(doc, g->root_pk, &e) == 0;
    json_decref(doc);
    return ok;
}

/* The normalized document plus what show found out about it. */
static json_t *show_json(const gm_genesis *g, const char *hash_hex, int verified, const char *why,
                         const char *window)
{
    json_t *o = json_deep_copy(g->doc);
    const json_t *sigs = json_object_get(o, "signatures");
    for (size_t i = 0; i < json_array_size(sigs); i++)
        json_object_set_new(json_array_get(sigs, i), "valid", json_boolean(signature_ok(g, i)));
    json_object_set_new(o, "network_hash", json_string(hash_hex));
    json_object_set_new(o, "verified", json_boolean(verified));
    json_object_set_new(o, "verify_error", why ? json_string(why) : json_null());
    json_object_set_new(o, "na_window_now", json_string(window));
    json_object_set_new(o, "clock_skew_s", json_integer(GM_CLOCK_SKEW_S));
    return o;
}

static void print_list(const char *label, const json_t *arr)
{
    char buf[256];
    printf("  %-19s", label);
    if (json_array_size(arr) == 0)
        printf("(none)");
    for (size_t i = 0; i < json_array_size(arr); i++)
        printf("%s%s", i ? ", " : "", cli_safe(json_string_value(json_array_get(arr, i)), buf, sizeof buf));
    printf("\n");
}

static int do_show(const cli_args *a)
{
    const char *file = a->pos[0];
    int as_json = cli_has(a, "json");
    if (!file)
        return cli_usage("genesis show: FILE is required (see --help)");
    gm_genesis g;
    gm_error err = {0}, verr = {0};
    uint8_t hash[32];
    char hex[65];
    int rc = gm_genesis_load(file, &g, &err);
    if (rc == 0 && (rc = gm_genesis_hash(&g, hash, &err)) != 0)
        gm_genesis_free(&g);
    if (rc != 0)
        return fail("genesis show", &err);
    gm_hex_encode(hash, sizeof hash, hex);
    int verified = gm_genesis_verify(&g, &verr) == 0;
    gm_error werr = {0};
    gm_time now = gm_time_now();
    int win = gm_genesis_check_na_window(&g, now, &werr);
    const char *window = win == 0 ? "valid" : gm_time_cmp(&now, &g.na_valid_from) < 0 ? "not_yet_valid" : "expired";
    if (as_json) {
        json_t *o = show_json(&g, hex, verified, verified ? NULL : verr.msg, window);
        char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (text)
            printf("%s\n", text);
        free(text);
        json_decref(o);
        gm_genesis_free(&g);
        return 0;
    }
    char buf[512], b2[512], rb[GM_PK_B64_LEN + 1], nb[GM_PK_B64_LEN + 1], vf[GM_TIME_STRLEN], vt[GM_TIME_STRLEN];
    gm_pk_encode(g.root_pk, rb);
    gm_pk_encode(g.na_pk, nb);
    gm_time_format(&g.na_valid_from, vf);
    gm_time_format(&g.na_valid_to, vt);
    const json_t *doc = g.doc, *pm = json_object_get(doc, "policy_manifest");
    const json_t *url = json_object_get(pm, "url");
    printf("genesis block %s\n", cli_safe(file, buf, sizeof buf));
    printf("  %-19s%s (version %s)\n", "network:", cli_safe(g.network_name, buf, sizeof buf),
           cli_safe(json_string_value(json_object_get(doc, "network_version")), b2, sizeof b2));
    printf("  %-19s%s\n", "network hash:", hex);
    printf("  %-19s%s\n", "root public key:", rb);
    printf("  %-19s%s\n", "NA public key:", nb);
    printf("  %-19s%s .. %s (%s now%s)\n", "NA valid:", vf, vt,
           win == 0 ? "valid" : (!strcmp(window, "expired") ? "EXPIRED" : "NOT YET VALID"),
           win == 0 ? "" : "; clock skew allowance 300s");
    print_list("crypto suites:", json_object_get(doc, "allowed_crypto_suites"));
    print_list("transports:", json_object_get(doc, "allowed_transports"));
    printf("  %-19s%s (url: %s)\n", "policy manifest:", cli_safe(json_string_value(json_object_get(pm, "hash")), buf, sizeof buf),
           json_is_string(url) ? cli_safe(json_string_value(url), b2, sizeof b2) : "none");
    const json_t *an = json_object_get(doc, "bootstrap_anchors");
    printf(json_array_size(an) ? "  bootstrap anchors:\n" : "  %-19s(none)\n", "bootstrap anchors:");
    for (size_t i = 0; i < json_array_size(an); i++) {
        const json_t *anc = json_array_get(an, i);
        printf("    %s at %s\n", cli_safe(json_string_value(json_object_get(anc, "id")), buf, sizeof buf),
               cli_safe(json_string_value(json_object_get(anc, "endpoint")), b2, sizeof b2));
    }
    const json_t *sigs = json_object_get(doc, "signatures");
    printf(json_array_size(sigs) ? "  signatures:\n" : "  %-19s(none: unsigned)\n", "signatures:");
    for (size_t i = 0; i < json_array_size(sigs); i++)
        printf("    %zu. key id %s: %s\n", i + 1,
               cli_safe(json_string_value(json_object_get(json_array_get(sigs, i), "key_id")), buf, sizeof buf),
               signature_ok(&g, i) ? "valid under root key" : "INVALID");
    printf("  %-19s%s\n", "status:", verified ? "verified" : cli_safe(verr.msg, buf, sizeof buf));
    gm_genesis_free(&g);
    return 0;
}

/* genesis rotate: the successor of a genesis block, signed offline, with a new NA key. */
static int do_rotate(const cli_args *a)
{
    const char *root_key = cli_str(a, "root-key", NULL), *in = cli_str(a, "genesis", NULL),
               *na_out = cli_str(a, "na-key-out", NULL), *out = cli_str(a, "out", NULL),
               *from_s = cli_str(a, "valid-from", NULL);
    int force = cli_has(a, "force"), rc;
    long long validity;
    gm_error err = {0};
    if (cli_duration(a, "validity", 60, 3650LL * 86400, 90LL * 86400, &validity))
        return 2;
    const char *missing = !root_key ? "--root-key BASE" : !in ? "--genesis FILE" : !na_out ? "--na-key-out BASE"
                                                        : !out ? "--out FILE"
                                                               : NULL;
    if (missing)
        return cli_usage("genesis rotate: %s is required (see --help)", missing);
    gm_time from = gm_time_now();
    from.usec = 0;
    if (from_s && (gm_time_parse(from_s, &from, &err) != 0 ||
                   (!from.has_offset && gm_error_set(&err, GM_EINVAL, "'%s' has no offset (add Z or +HH:MM)", from_s))))
        return cli_usage("genesis rotate: --valid-from: %s", err.msg);
    if (!force && gm_file_exists(out)) {
        gm_error_set(&err, GM_EEXIST, "%s already exists; refusing to overwrite it (use --force)", out);
        return fail("genesis rotate", &err);
    }
    gm_genesis cur, next;
    gm_signer root, na;
    memset(&next, 0, sizeof next);
    if ((rc = gm_genesis_load(in, &cur, &err)) != 0)
        return fail("genesis rotate", &err);
    if ((rc = gm_genesis_verify(&cur, &err)) != 0) {
        gm_genesis_free(&cur);
        return fail("genesis rotate", &err);
    }
    if ((rc = gm_signer_load(&root, root_key, "rs-local", &err)) != 0) {
        gm_genesis_free(&cur);
        return fail("genesis rotate: root key", &err);
    }
    if ((rc = gm_signer_generate(&na, "na-local", &err)) == 0 &&
        (rc = gm_genesis_successor(&cur, &next, na.pk, from, gm_time_add(from, validity), &err)) == 0 &&
        (rc = gm_genesis_sign(&next, &root, &err)) == 0)
        rc = gm_genesis_check_successor(&cur, &next, &err);
    gm_signer_wipe(&root);
    /* the NA key is written only for a valid successor, and never over another key */
    if (rc == 0 && (rc = gm_signer_save(&na, na_out, 0, &err)) == GM_EEXIST)
        gm_error_set(&err, rc, "%s.key or %s.pub already exists; refusing to overwrite a key (move it away first)",
                     na_out, na_out);
    char *text = rc == 0 ? gm_genesis_dump(&next) : NULL;
    if (rc == 0)
        rc = text ? write_text(out, text, force, &err) : gm_error_set(&err, GM_ENOMEM, "out of memory");
    free(text);
    if (rc != 0) {
        gm_signer_wipe(&na);
        gm_genesis_free(&cur);
        gm_genesis_free(&next);
        return fail("genesis rotate", &err);
    }
    char vf[GM_TIME_STRLEN], vt[GM_TIME_STRLEN], ot[GM_TIME_STRLEN];
    gm_time_format(&next.na_valid_from, vf);
    gm_time_format(&next.na_valid_to, vt);
    gm_time_format(&cur.na_valid_to, ot);
    printf("wrote successor genesis %s of network %s to %s (signed by the root key)\n"
           "  new NA key %s (%s.key, mode 0600), valid %s .. %s\n"
           "  the current NA key stays valid until %s: the overlap\n"
           "next: genesis-mesh admin genesis publish --file %s, then restart the NA with %s.key\n",
           json_string_value(json_object_get(next.doc, "network_version")), next.network_name, out, na.pk_b64, na_out,
           vf, vt, ot, out, na_out);
    gm_signer_wipe(&na);
    gm_genesis_free(&cur);
    gm_genesis_free(&next);
    return 0;
}

static const cli_opt keygen_opts[] = {
    {"out", "BASE", "write BASE.key (the 32-byte seed, mode 0600) and BASE.pub; never overwrites (required)"},
    {"key-id", "ID", "label stored in the key files (default: the file name of BASE)"},
    {NULL},
};
static const cli_cmd genesis_keygen = {"keygen", "new Ed25519 key: BASE.key (mode 0600) and BASE.pub",
                                       "--out BASE [--key-id ID]", NULL, do_keygen, keygen_opts, 0, NULL};

static const cli_opt create_opts[] = {
    {"network", "NAME", "network name (letters, digits, '.', '_', '-'; at most 64)"},
    {"root-pub", "FILE", "Root Sovereign public key file (BASE.pub)"},
    {"na-pub", "FILE", "Network Authority public key file (BASE.pub)"},
    {"valid-days", "N", "NA key validity, 1..3650 days (default 90)"},
    {"valid-from", "TIMESTAMP", "start of the NA key validity, ISO-8601 (default now)"},
    {"anchor", "ID=HOST:PORT", "bootstrap anchor, repeatable (e.g. anchor-1=203.0.113.7:7000)"},
    {"out", "FILE", "where to write the unsigned block"},
    {"force", NULL, "overwrite --out"},
    {NULL},
};
static const cli_cmd genesis_create = {
    "create", "write an unsigned genesis block",
    "--network NAME --root-pub FILE --na-pub FILE\n"
    "           [--valid-days N] [--valid-from TIMESTAMP] [--anchor ID=HOST:PORT]... --out FILE [--force]",
    "The NA key is valid from now (or --valid-from) for N days.\n", do_create, create_opts, 0, NULL};

static const cli_opt sign_opts[] = {
    {"in", "FILE", "genesis block to sign"},
    {"root-key", "BASE", "key base path (BASE.key is read); must match root_public_key"},
    {"out", "FILE", "where to write the signed block (default: --in, in place)"},
    {"force", NULL, "replace an existing other --out file"},
    {NULL},
};
static const cli_cmd genesis_sign = {"sign", "sign with the root key (default: in place)",
                                     "--in FILE --root-key BASE [--out FILE] [--force]", NULL, do_sign, sign_opts, 0,
                                     NULL};

static const cli_opt verify_opts[] = {
    {"at", "TIMESTAMP", "judge the NA key window at this time, ISO-8601 (default now)"},
    {NULL},
};
static const cli_cmd genesis_verify = {
    "verify", "check every signature and the NA key window", "FILE [--at TIMESTAMP]",
    "Checks every signature under root_public_key and the NA key window at TIMESTAMP\n"
    "with a clock skew allowance of 300s.\n",
    do_verify, verify_opts, 1, NULL};

static const cli_opt show_opts[] = {
    {"json", NULL, "print the block with what was found out about it as JSON"},
    {NULL},
};
static const cli_cmd genesis_show = {"show", "readable summary, including the network hash", "FILE [--json]",
                                     "Prints the block's members, signature status and network hash (SHA-256 of the\n"
                                     "signed bytes).\n",
                                     do_show, show_opts, 1, NULL};

static const cli_opt rotate_opts[] = {
    {"root-key", "BASE", "Root Sovereign key base path (BASE.key is read); must match root_public_key"},
    {"genesis", "FILE", "the current genesis block (signed)"},
    {"na-key-out", "BASE", "where to write the new NA key: BASE.key (mode 0600) and BASE.pub; never overwrites"},
    {"out", "FILE", "where to write the signed successor"},
    {"validity", "DURATION", "new NA key validity: a number and s, m, h or d, 60s..3650d (default 90d)"},
    {"valid-from", "TIMESTAMP", "start of the new NA key validity, ISO-8601 (default now); must be inside the "
                                "current window"},
    {"force", NULL, "overwrite --out"},
    {NULL},
};
static const cli_cmd genesis_rotate = {
    "rotate", "successor genesis block with a new NA key (NA key rotation, offline)",
    "--root-key BASE --genesis FILE --na-key-out BASE --out FILE [--validity DURATION] [--valid-from TIMESTAMP]",
    "Same root key and network name, network_version MINOR + 1, a new NA key whose window starts\n"
    "inside the current one and ends after it. Then: admin genesis publish --file FILE, and restart\n"
    "the NA with the new key (docs/operator-guide.md, \"Rotating the NA key\").\n",
    do_rotate, rotate_opts, 0, NULL};

static const cli_cmd *const genesis_subs[] = {&genesis_keygen, &genesis_create, &genesis_sign, &genesis_verify,
                                              &genesis_show, &genesis_rotate, NULL};
const cli_cmd cli_genesis = {
    "genesis", "create | sign | verify | show a genesis block (offline ceremony)", NULL,
    "Offline root ceremony for a network's genesis block (signed by the Root Sovereign key).\n"
    "exit status: 0 ok, 1 failed (the message says why), 2 usage error\n",
    NULL, NULL, 0, genesis_subs};
