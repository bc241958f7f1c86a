/* Building the issuance log's proofs and checkpoints (the NA's side; verification is public in
 * gm/merkle.h). */
#ifndef GM_MERKLE_INTERNAL_H
#define GM_MERKLE_INTERNAL_H

#include "gm/merkle.h"

/* Hashing and verifying (the node and the NA client; the CLI goes through gm/na_client.h). */
void gm_merkle_leaf_hash(const void *data, size_t len, gm_merkle_hash out);
/* Root of the tree of leaves[0..n) (n = 0: SHA-256 of nothing). */
void gm_merkle_root(const gm_merkle_hash *leaves, uint64_t n, gm_merkle_hash out);
/* 0 if leaf (a leaf hash) is entry m of the tree of size n with root. GM_ESIG otherwise. */
int gm_merkle_verify_inclusion(const gm_merkle_hash leaf, uint64_t m, uint64_t n,
                               const gm_merkle_hash *path, size_t count, const gm_merkle_hash root,
                               gm_error *err) GM_MUST_CHECK;
/* 0 if the tree of size m with root_m is a prefix of the tree of size n with root_n. */
int gm_merkle_verify_consistency(uint64_t m, uint64_t n, const gm_merkle_hash root_m,
                                 const gm_merkle_hash root_n, const gm_merkle_hash *path, size_t count,
                                 gm_error *err) GM_MUST_CHECK;
int gm_checkpoint_parse(const char *text, size_t len, gm_checkpoint *c, gm_error *err) GM_MUST_CHECK;
int gm_merkle_unhex(const char *hex, gm_merkle_hash out, gm_error *err) GM_MUST_CHECK;

/* Audit path of leaf m in the tree of leaves[0..n); *count hashes in path. */
int gm_merkle_inclusion_proof(const gm_merkle_hash *leaves, uint64_t n, uint64_t m,
                              gm_merkle_hash path[GM_MERKLE_PROOF_MAX], size_t *count, gm_error *err) GM_MUST_CHECK;
/* Proof that the tree of size m is a prefix of the tree of size n (0 < m <= n). */
int gm_merkle_consistency_proof(const gm_merkle_hash *leaves, uint64_t m, uint64_t n,
                                gm_merkle_hash path[GM_MERKLE_PROOF_MAX], size_t *count, gm_error *err) GM_MUST_CHECK;
/* Sign a checkpoint of the tree of tree_size leaves with root. */
int gm_checkpoint_issue(gm_checkpoint *c, const gm_signer *na, const char *network_name, uint64_t tree_size,
                        const gm_merkle_hash root, gm_time now, gm_error *err) GM_MUST_CHECK;

#endif
