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

void gm_merkle_leaf_hash(const void *data, size_t len, gm_merkle_hash out);
/* Root of the tree of leaves[0..n) (n = 0: SHA-256 of nothing). */
void gm_merkle_root(const gm_merkle_hash *leaves, uint64_t n, gm_merkle_hash out);
/* 0 if leaf (a leaf hash) is entry m of the tree of size n with root. GM_ESIG otherwise. */
int gm_merkle_verify_inclusion(const gm_merkle_hash leaf, uint64_t m, uint64_t n,
                               const gm_merkle_hash *path, size_t count, const gm_merkle_hash root,
                               gm_error *err);
/* 0 if the tree of size m with root_m is a prefix of the tree of size n with root_n. */
int gm_merkle_verify_consistency(uint64_t m, uint64_t n, const gm_merkle_hash root_m,
                                 const gm_merkle_hash root_n, const gm_merkle_hash *path, size_t count,
                                 gm_error *err);

/* A signed tree head of the issuance log. */
typedef struct gm_checkpoint {
    json_t *doc; /* the whole signed document (owned) */
    char network_name[256];
    uint64_t tree_size;
    gm_merkle_hash root;
    gm_time timestamp;
} gm_checkpoint;

#define GM_CHECKPOINT_MAX_BYTES 4096

int gm_checkpoint_parse(const char *text, size_t len, gm_checkpoint *c, gm_error *err);
int gm_checkpoint_load(const char *path, gm_checkpoint *c, gm_error *err);
/* Signature under na_pk and the network's name. */
int gm_checkpoint_verify(const gm_checkpoint *c, const uint8_t na_pk[GM_PK_LEN], const char *network_name,
                         gm_error *err);
/* Compact JSON (caller frees). */
char *gm_checkpoint_dump(const gm_checkpoint *c, int pretty);
void gm_checkpoint_free(gm_checkpoint *c);

/* Hashes as lowercase hex ("" + 64 chars + NUL) and back. */
void gm_merkle_hex(const gm_merkle_hash h, char out[2 * GM_MERKLE_HASH_LEN + 1]);
int gm_merkle_unhex(const char *hex, gm_merkle_hash out, gm_error *err);

#endif
