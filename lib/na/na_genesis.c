/* NA key rotation at the NA: the successor genesis block (POST /admin/genesis hands it over,
 * GET /genesis?next serves it ahead of time) and the switch to it when the NA starts with the
 * successor's NA key. Files in the NA directory: genesis.json (the current block, served by
 * GET /genesis), genesis.next.json (the successor waiting for its key) and genesis.prev.json
 * (the block before the current one, kept while its NA window lasts; certificates it issued
 * renew like any other, the store knows them). See docs/formats-notes.md, "Successor genesis
 * blocks", and docs/operator-guide.md, "Rotating the NA key". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "gm/util.h"
#include "na_internal.h"

#define NEXT_FILE "genesis.next.json"
#define PREV_FILE "genesis.prev.json"
#define GENESIS_FILE_MAX (256 * 1024)

/* The pretty text of g with a final newline (malloc'd), as written to files and served. */
static char *text_of(const gm_genesis *g)
{
    char *t = gm_genesis_dump(g);
    size_t n = t ? strlen(t) : 0;
    char *out = t ? realloc(t, n + 2) : NULL;
    if (!out) {
        free(t);
        return NULL;
    }
    out[n] = '\n';
    out[n + 1] = '\0';
    return out;
}

static int load_file(gm_na_t *na, const char *name, gm_genesis *g, char **text, size_t *len, gm_error *err)
{
    char path[4096];
    int rc = gm_na_config_path(&na->cfg, name, path, sizeof path, err);
    if (rc == 0 && !gm_file_exists(path))
        return GM_ENOTFOUND;
    if (rc == 0)
        rc = gm_file_read(path, GENESIS_FILE_MAX, text, len, err);
    if (rc == 0 && (rc = gm_genesis_parse(*text, *len, g, err)) != 0) {
        free(*text);
        *text = NULL;
    }
    if (rc != 0)
        gm_error_prefix(err, "%s", path);
    return rc;
}

static void remove_file(gm_na_t *na, const char *name)
{
    char path[4096];
    gm_error e = {0};
    if (gm_na_config_path(&na->cfg, name, path, sizeof path, &e) == 0)
        unlink(path);
}

static int write_file(gm_na_t *na, const char *name, const char *text, gm_error *err)
{
    char path[4096];
    int rc = gm_na_config_path(&na->cfg, name, path, sizeof path, err);
    return rc ? rc : gm_file_write_atomic(path, text, strlen(text), 0644, err);
}

int na_genesis_load_versions(gm_na_t *na, gm_error *err)
{
    gm_genesis g;
    gm_error e = {0};
    char *text = NULL;
    size_t len = 0;
    (void)err;
    int rc = load_file(na, NEXT_FILE, &g, &text, &len, &e);
    if (rc == 0 && (rc = gm_genesis_check_successor(&na->genesis, &g, &e)) != 0)
        gm_genesis_free(&g);
    if (rc == 0) {
        na->genesis_next = g;
        na->next_text = text;
        na->next_len = len;
        na->have_next = 1;
        text = NULL;
    } else if (rc != GM_ENOTFOUND) {
        na_log(na, "ignoring %s: %s", NEXT_FILE, e.msg);
    }
    free(text);
    text = NULL;
    memset(&e, 0, sizeof e);
    rc = load_file(na, PREV_FILE, &g, &text, &len, &e);
    if (rc == 0 && (rc = gm_genesis_check_successor(&g, &na->genesis, &e)) != 0)
        gm_genesis_free(&g);
    if (rc == 0) {
        na->genesis_prev = g;
        na->have_prev = 1;
    } else if (rc != GM_ENOTFOUND) {
        na_log(na, "ignoring %s: %s", PREV_FILE, e.msg);
    }
    free(text);
    return 0;
}

int na_genesis_promote(gm_na_t *na, const uint8_t key_pk[GM_PK_LEN], gm_error *err)
{
    if (!na->have_next || sodium_memcmp(na->genesis_next.na_pk, key_pk, GM_PK_LEN) != 0)
        return GM_ENOTFOUND;
    /* Nothing is switched for a key that could not sign yet: the current key keeps working. */
    int rc = gm_genesis_check_na_window(&na->genesis_next, gm_time_now(), err);
    if (rc != 0)
        return gm_error_prefix(err, "this is the successor's NA key; keep the current key until then");
    char *cur_text = text_of(&na->genesis);
    rc = cur_text ? 0 : gm_error_set(err, GM_ENOMEM, "out of memory");
    /* Order for a crash at any point: prev first, then current; a left-over next file is not a
     * successor of the new current one and is ignored (and removed) at the next start. */
    if (rc == 0)
        rc = write_file(na, PREV_FILE, cur_text, err);
    if (rc == 0)
        rc = write_file(na, na->cfg.genesis_path, na->next_text, err);
    free(cur_text);
    if (rc != 0)
        return gm_error_prefix(err, "switching to the successor genesis block");
    remove_file(na, NEXT_FILE);
    if (na->have_prev)
        gm_genesis_free(&na->genesis_prev);
    na->genesis_prev = na->genesis;
    na->have_prev = 1;
    na->genesis = na->genesis_next;
    memset(&na->genesis_next, 0, sizeof na->genesis_next);
    free(na->genesis_text);
    na->genesis_text = na->next_text;
    na->genesis_len = na->next_len;
    na->next_text = NULL;
    na->have_next = 0;
    na_log(na, "switched to the successor genesis block %s: signing with the new NA key %s",
           json_string_value(json_object_get(na->genesis.doc, "network_version")), na->key.pk_b64);
    return 0;
}

void na_genesis_free_versions(gm_na_t *na)
{
    gm_genesis_free(&na->genesis_next);
    gm_genesis_free(&na->genesis_prev);
    free(na->next_text);
    na->next_text = NULL;
    na->have_next = na->have_prev = 0;
}

/* GET /genesis (the current block as signed) and GET /genesis?next (the successor, 404 when
 * there is none). Both public: a genesis block is what every member holds anyway. */
int na_handle_genesis(na_req *r)
{
    gm_na_t *na = r->na;
    if (!na_req_has_query(r, "next"))
        return na_reply_text(r, 200, "application/json", na->genesis_text, na->genesis_len);
    pthread_mutex_lock(&na->genesis_lock);
    int rc = na->have_next ? na_reply_text(r, 200, "application/json", na->next_text, na->next_len)
                           : na_reply_error(r, 404, "no_successor",
                                            "no successor genesis block has been published (admin genesis publish)");
    pthread_mutex_unlock(&na->genesis_lock);
    return rc;
}

/* POST /admin/genesis {"genesis": <signed successor>}: checked against the current block,
 * written to genesis.next.json, served at GET /genesis?next. Publishing again replaces a
 * successor not in force yet (a redone ceremony). */
int na_handle_genesis_publish(na_req *r)
{
    static const char *const allowed[] = {"genesis", NULL};
    gm_na_t *na = r->na;
    gm_genesis g;
    gm_error e = {0};
    if (na_check_members(r, r->json, allowed) != 0)
        return r->status;
    const json_t *doc = json_object_get(r->json, "genesis");
    if (!json_is_object(doc))
        return na_reply_error(r, 400, "missing_field", "\"genesis\" must be the signed successor genesis block (an object)");
    char *in = json_dumps(doc, JSON_COMPACT);
    if (!in)
        return na_reply_error(r, 500, "internal_error", "out of memory");
    int rc = gm_genesis_parse(in, strlen(in), &g, &e);
    free(in);
    if (rc != 0)
        return na_reply_error(r, 400, "invalid_genesis", "%s", e.msg);
    if ((rc = gm_genesis_check_successor(&na->genesis, &g, &e)) != 0) {
        gm_genesis_free(&g);
        return na_reply_error(r, rc == GM_ESIG ? 401 : 403, "not_a_successor", "%s", e.msg);
    }
    char from[GM_TIME_STRLEN], to[GM_TIME_STRLEN], version[64], na_b64[GM_PK_B64_LEN + 1];
    snprintf(version, sizeof version, "%s", json_string_value(json_object_get(g.doc, "network_version")));
    gm_pk_encode(g.na_pk, na_b64);
    gm_time_format(&g.na_valid_from, from);
    gm_time_format(&g.na_valid_to, to);
    char *text = text_of(&g);
    rc = text ? 0 : gm_error_set(&e, GM_ENOMEM, "out of memory");
    pthread_mutex_lock(&na->genesis_lock);
    if (rc == 0)
        rc = write_file(na, NEXT_FILE, text, &e);
    if (rc == 0) {
        gm_genesis_free(&na->genesis_next);
        free(na->next_text);
        na->genesis_next = g;
        na->next_text = text;
        na->next_len = strlen(text);
        na->have_next = 1;
    }
    pthread_mutex_unlock(&na->genesis_lock);
    if (rc != 0) {
        gm_genesis_free(&g);
        free(text);
        return na_reply_gm_error(r, &e);
    }
    na_log(na, "%s admin %s published successor genesis %s (NA key %s, valid %s .. %s)", r->request_id,
           r->admin_key_id, version, na_b64, from, to);
    return na_reply_json(r, 200,
                         json_pack("{s:s,s:s,s:s,s:s,s:s}", "network_version", version, "na_public_key", na_b64,
                                   "valid_from", from, "valid_to", to, "status", "published"));
}
