/* The genesis block: the network's constitution, signed by the Root Sovereign key. */
#ifndef GM_GENESIS_H
#define GM_GENESIS_H

#include <jansson.h>
#include <stdint.h>

#include "gm/error.h"
#include "gm/gmtime.h"
#include "gm/keys.h"

/* Clock skew allowed on every validity window we enforce (seconds). */
#define GM_CLOCK_SKEW_S 300

typedef struct gm_genesis {
    json_t *doc;              /* normalized document (owned) */
    const char *network_name; /* points into doc */
    uint8_t root_pk[GM_PK_LEN];
    uint8_t na_pk[GM_PK_LEN];
    gm_time na_valid_from, na_valid_to;
} gm_genesis;

/* Parse and normalize (defaults filled, unknown members dropped, timestamps canonical).
 * Does not verify signatures. */
int gm_genesis_parse(const char *text, size_t len, gm_genesis *g, gm_error *err) GM_MUST_CHECK;
int gm_genesis_load(const char *path, gm_genesis *g, gm_error *err) GM_MUST_CHECK;
/* A new unsigned genesis block. anchors may be NULL (array of {id, endpoint}). */
int gm_genesis_create(gm_genesis *g, const char *network_name, const uint8_t root_pk[GM_PK_LEN],
                      const uint8_t na_pk[GM_PK_LEN], gm_time na_from, gm_time na_to,
                      json_t *anchors, gm_error *err) GM_MUST_CHECK;
/* Sign with the root key (must be the genesis root_public_key). */
int gm_genesis_sign(gm_genesis *g, const gm_signer *root, gm_error *err) GM_MUST_CHECK;
/* Valid when it has signatures and every one verifies under root_public_key. */
int gm_genesis_verify(const gm_genesis *g, gm_error *err) GM_MUST_CHECK;
/* Is the NA key inside its valid_from..valid_to window at now (with skew)? */
int gm_genesis_check_na_window(const gm_genesis *g, gm_time now, gm_error *err) GM_MUST_CHECK;
/* SHA-256 of the canonical signed bytes of this one version of the block. */
int gm_genesis_hash(const gm_genesis *g, uint8_t out[32], gm_error *err) GM_MUST_CHECK;

/* NA key rotation (docs/formats-notes.md, "Successor genesis blocks"). */
/* Is next a valid successor of cur: signed (every signature) by cur's root key, same
 * root_public_key and network_name, a higher network_version, another NA key (not the root
 * key), and an NA window that overlaps cur's (cur.valid_from <= next.valid_from < cur.valid_to
 * < next.valid_to). 0, or an error saying which rule failed. */
int gm_genesis_check_successor(const gm_genesis *cur, const gm_genesis *next, gm_error *err) GM_MUST_CHECK;
/* An unsigned successor of cur: every member kept, network_version MINOR + 1, the NA key na_pk
 * valid from..to. Sign it with gm_genesis_sign. */
int gm_genesis_successor(const gm_genesis *cur, gm_genesis *next, const uint8_t na_pk[GM_PK_LEN], gm_time from,
                         gm_time to, gm_error *err) GM_MUST_CHECK;
/* Pretty JSON text of the document (malloc'd). */
char *gm_genesis_dump(const gm_genesis *g) GM_MUST_CHECK;
void gm_genesis_free(gm_genesis *g);

#endif
