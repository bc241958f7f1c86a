/* genesis-mesh audit: check the NA's issuance log. Fetches the signed checkpoint (verified under
 * the genesis NA key, or during an NA key rotation the NA key of the directory's
 * genesis.prev.json / genesis.next.json), proves it extends the checkpoint held before (a node's
 * D/log-checkpoint.json or --from FILE), and proves that certificates are in it (the node's own, or
 * --cert-id). The log is for members only: every read is signed with the key of the node
 * directory D (D/node). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "gm/cert.h"
#include "gm/genesis.h"
#include "gm/http_client.h"
#include "gm/merkle.h"
#include "gm/na_client.h"
#include "gm/util.h"

#define AUDIT_TIMEOUT_MS 10000
#define AUDIT_MAX_CERTS 32

typedef struct audit_ctx {
    const char *dir;
    char na_url[1024];
    gm_genesis g;
    int have_genesis;
    gm_signer node; /* D's node key: signs the reads */
    int have_node;
    uint8_t na_pks[3][GM_PK_LEN]; /* g's NA key, then its predecessor's and successor's held in dir */
    size_t n_pks;
    json_t *report;
} audit_ctx;

/* The NA keys a checkpoint may be signed by: g's, and those of the blocks around it that the node
 * directory holds (an NA key rotation in progress or just done). */
static void load_na_keys(audit_ctx *c, int from_dir)
{
    static const char *const files[] = {"genesis.prev.json", "genesis.next.json"};
    memcpy(c->na_pks[0], c->g.na_pk, GM_PK_LEN);
    c->n_pks = 1;
    for (size_t i = 0; from_dir && i < 2; i++) {
        char path[4096];
        gm_genesis o;
        if (gm_path_join(path, sizeof path, c->dir, files[i], NULL) != 0 || !gm_file_exists(path) ||
            gm_genesis_load(path, &o, NULL) != 0)
            continue;
        if ((i == 0 ? gm_genesis_check_successor(&o, &c->g, NULL) : gm_genesis_check_successor(&c->g, &o, NULL)) == 0)
            memcpy(c->na_pks[c->n_pks++], o.na_pk, GM_PK_LEN);
        gm_genesis_free(&o);
    }
}

static int load_dir(audit_ctx *c, const char *na, const char *genesis, gm_error *err)
{
    char path[4096], *text = NULL;
    size_t len;
    int rc = genesis ? 0 : gm_path_join(path, sizeof path, c->dir, "genesis.json", err);
    if (rc == 0)
        rc = gm_genesis_load(genesis ? genesis : path, &c->g, err);
    if (rc != 0)
        return gm_error_prefix(err, "the network's genesis block (give --genesis FILE or a directory holding one)");
    c->have_genesis = 1;
    if ((rc = gm_genesis_verify(&c->g, err)) != 0)
        return rc;
    load_na_keys(c, genesis == NULL);
    if (na) {
        snprintf(c->na_url, sizeof c->na_url, "%s", na);
    } else if (gm_path_join(path, sizeof path, c->dir, "node.json", NULL) == 0 &&
               gm_file_read(path, 256 * 1024, &text, &len, NULL) == 0) {
        json_t *o = json_loadb(text, len, 0, NULL);
        const char *u = json_string_value(json_object_get(o, "na_url"));
        snprintf(c->na_url, sizeof c->na_url, "%s", u ? u : "");
        json_decref(o);
        free(text);
    }
    if (!c->na_url[0])
        return gm_error_set(err, GM_EINVAL, "no NA URL: give --na URL (or a node directory with node.json)");
    if (gm_path_join(path, sizeof path, c->dir, "node", err) != 0 || gm_signer_load(&c->node, path, "node", err) != 0)
        return gm_error_prefix(err, "the issuance log is for members of the network: audit signs its reads with the "
                                    "key of an enrolled node directory (--dir D, holding D/node.key)");
    c->have_node = 1;
    return 0;
}

static int check_certs(audit_ctx *c, const cli_args *a, const gm_checkpoint *now, gm_error *err)
{
    const char *ids[AUDIT_MAX_CERTS + 1];
    size_t n = cli_all(a, "cert-id", ids, AUDIT_MAX_CERTS + 1);
    if (n > AUDIT_MAX_CERTS)
        return gm_error_set(err, GM_EINVAL, "at most %d --cert-id", AUDIT_MAX_CERTS);
    gm_cert own;
    int have_own = 0;
    char path[4096];
    if (n == 0 && gm_path_join(path, sizeof path, c->dir, "cert.json", NULL) == 0 &&
        gm_cert_load(path, &own, NULL) == 0) {
        ids[n++] = own.cert_id;
        have_own = 1;
    }
    json_t *certs = json_array();
    json_object_set_new(c->report, "certificates", certs);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        json_t *entry = NULL;
        uint64_t index = 0;
        rc = gm_na_log_prove(c->na_url, &c->node, ids[i], now, AUDIT_TIMEOUT_MS, &entry, &index, err);
        if (rc != 0) {
            gm_error_prefix(err, "certificate %s", ids[i]);
            break;
        }
        json_array_append_new(certs, json_pack("{s:s,s:I,s:O,s:O}", "cert_id", ids[i], "index", (json_int_t)index,
                                               "kind", json_object_get(entry, "kind"), "time",
                                               json_object_get(entry, "time")));
        json_decref(entry);
    }
    if (have_own)
        gm_cert_free(&own);
    return rc;
}

static int run_audit(const cli_args *a)
{
    audit_ctx c;
    memset(&c, 0, sizeof c);
    c.dir = cli_str(a, "dir", ".");
    const char *from = cli_str(a, "from", NULL), *save = cli_str(a, "save", NULL);
    gm_error err = {0};
    gm_checkpoint now, held;
    int have_held = 0, rc;
    memset(&now, 0, sizeof now);
    c.report = json_object();
    if ((rc = load_dir(&c, cli_str(a, "na", NULL), cli_str(a, "genesis", NULL), &err)) != 0)
        goto out;
    if ((rc = cli_na_trust(c.na_url, cli_str(a, "na-ca", NULL), cli_str(a, "na-pin", NULL), c.dir, &err)) != 0)
        goto out;
    char held_path[4096];
    if (from)
        snprintf(held_path, sizeof held_path, "%s", from);
    else if (gm_path_join(held_path, sizeof held_path, c.dir, "log-checkpoint.json", NULL) != 0)
        held_path[0] = '\0';
    if (held_path[0]) {
        rc = gm_checkpoint_load(held_path, &held, &err);
        if (rc == 0) {
            rc = GM_ESIG;
            for (size_t i = 0; i < c.n_pks && rc != 0; i++)
                rc = gm_checkpoint_verify(&held, c.na_pks[i], c.g.network_name, &err);
            if (rc != 0)
                gm_checkpoint_free(&held);
        }
        if (rc == 0)
            have_held = 1;
        else if (rc == GM_ENOTFOUND && !from)
            rc = 0; /* a node that has not kept one yet */
        else
            goto out;
    }
    if ((rc = gm_na_log_checkpoint_any(c.na_url, &c.node, (const uint8_t(*)[GM_PK_LEN])c.na_pks, c.n_pks,
                                       c.g.network_name, AUDIT_TIMEOUT_MS, &now, &err)) != 0)
        goto out;
    char hex[2 * GM_MERKLE_HASH_LEN + 1], ts[GM_TIME_STRLEN];
    gm_merkle_hex(now.root, hex);
    gm_time_format(&now.timestamp, ts);
    json_object_set_new(c.report, "checkpoint", json_pack("{s:I,s:s,s:s}", "tree_size", (json_int_t)now.tree_size,
                                                          "root_hash", hex, "timestamp", ts));
    if (have_held) {
        if ((rc = gm_na_log_check_extends(c.na_url, &c.node, &held, &now, AUDIT_TIMEOUT_MS, &err)) != 0) {
            gm_error_prefix(&err, "THE LOG DOES NOT EXTEND the checkpoint of %llu entries in %s",
                            (unsigned long long)held.tree_size, held_path);
            goto out;
        }
        json_object_set_new(c.report, "consistent_with",
                            json_pack("{s:s,s:I}", "file", held_path, "tree_size", (json_int_t)held.tree_size));
    }
    if ((rc = check_certs(&c, a, &now, &err)) != 0)
        goto out;
    if (save) {
        char *text = gm_checkpoint_dump(&now, 1);
        rc = text ? gm_file_write_atomic(save, text, strlen(text), 0644, &err) : GM_ENOMEM;
        free(text);
        if (rc != 0)
            goto out;
    }
out:
    if (rc == 0) {
        if (cli_has(a, "json")) {
            char *t = json_dumps(c.report, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
            printf("%s\n", t ? t : "{}");
            free(t);
        } else {
            const json_t *cp = json_object_get(c.report, "checkpoint"), *cw = json_object_get(c.report, "consistent_with");
            printf("issuance log of %lld entries, root %s, signed by the NA at %s\n",
                   (long long)json_integer_value(json_object_get(cp, "tree_size")),
                   json_string_value(json_object_get(cp, "root_hash")),
                   json_string_value(json_object_get(cp, "timestamp")));
            if (cw)
                printf("  extends the checkpoint of %lld entries held in %s\n",
                       (long long)json_integer_value(json_object_get(cw, "tree_size")),
                       json_string_value(json_object_get(cw, "file")));
            size_t i;
            json_t *e;
            json_array_foreach(json_object_get(c.report, "certificates"), i, e)
                printf("  certificate %s: entry %lld (%s at %s), inclusion proven\n",
                       json_string_value(json_object_get(e, "cert_id")),
                       (long long)json_integer_value(json_object_get(e, "index")),
                       json_string_value(json_object_get(e, "kind")), json_string_value(json_object_get(e, "time")));
        }
    }
    json_decref(c.report);
    if (have_held)
        gm_checkpoint_free(&held);
    gm_checkpoint_free(&now);
    if (c.have_genesis)
        gm_genesis_free(&c.g);
    if (c.have_node)
        gm_signer_wipe(&c.node);
    return rc == 0 ? 0 : cli_fail("audit", &err);
}

static const cli_opt audit_opts[] = {
    {"dir", "D", "a node directory: its key (signs the reads: the log is for members), genesis, NA URL, TLS trust, "
            "certificate and kept checkpoint (default .)"},
    {"na", "URL", "the NA (default: na_url of D/node.json)"},
    {"genesis", "FILE", "the network's genesis block (default D/genesis.json)"},
    {"from", "FILE", "a checkpoint saved earlier; the log must extend it (default D/log-checkpoint.json if any)"},
    {"cert-id", "ID", "prove this certificate is in the log (repeatable; default: D's own certificate)"},
    {"save", "FILE", "write the NA's current checkpoint to FILE once every check passed"},
    {"na-ca", "FILE", "verify the NA's TLS certificate with this CA file (default $GM_NA_CA, else D's kept trust)"},
    {"na-pin", "PIN", "or with this public-key pin, sha256//BASE64 (default $GM_NA_PIN)"},
    {"json", NULL, "print the report as JSON"},
    {NULL},
};
const cli_cmd cli_audit = {
    "audit", "check the NA's issuance log: signed checkpoint, no fork, certificates included",
    "[--dir D] [--na URL] [--from FILE] [--cert-id ID]... [--save FILE] [--json]",
    "Exit status 0 when every check passed; 1 with the reason otherwise (a log that does not\n"
    "extend the checkpoint held is a fork: the NA showed different histories).\n",
    run_audit, audit_opts, 0, NULL};
