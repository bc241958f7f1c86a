/* Merkle trees of the issuance log, as in Certificate Transparency (RFC 9162 section 2.1):
 * leaf hash SHA-256(0x00 || data), interior node SHA-256(0x01 || left || right), the tree of
 * n leaves split at the largest power of two below n; inclusion and consistency proofs.
 * And the signed checkpoint the NA publishes: {network_name, tree_size, root_hash, timestamp,
 * issuer, signatures}, signed with the NA key by the usual canonical recipe. */
#ifndef GM_MERKLE_H
#define GM_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "gm/error.h"
#include "gm/gmtime.h"
#include "gm/keys.h"

#define GM_MERKLE_HASH_LEN 32
/* Proofs are at most this many hashes (trees up to 2^62 leaves, far above any log here). */
#define GM_MERKLE_PROOF_MAX 64

typedef uint8_t gm_merkle_hash[GM_MERKLE_HASH_LEN];


/* A signed tree head of the issuance log. */
typedef struct gm_checkpoint {
    json_t *doc; /* the whole signed document (owned) */
    char network_name[256];
    uint64_t tree_size;
    gm_merkle_hash root;
    gm_time timestamp;
} gm_checkpoint;

#define GM_CHECKPOINT_MAX_BYTES 4096

int gm_checkpoint_load(const char *path, gm_checkpoint *c, gm_error *err) GM_MUST_CHECK;
/* Signature under na_pk and the network's name. */
int gm_checkpoint_verify(const gm_checkpoint *c, const uint8_t na_pk[GM_PK_LEN], const char *network_name,
                         gm_error *err) GM_MUST_CHECK;
/* Compact JSON (caller frees). */
char *gm_checkpoint_dump(const gm_checkpoint *c, int pretty);
void gm_checkpoint_free(gm_checkpoint *c);

/* A hash as lowercase hex (64 chars + NUL). */
void gm_merkle_hex(const gm_merkle_hash h, char out[2 * GM_MERKLE_HASH_LEN + 1]);

#endif
